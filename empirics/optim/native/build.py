"""Compile ``kernels.c`` into a shared library at first use and load it with ctypes.

Why at first use and not at ``pip install``: the library is built for the instruction set
torch itself dispatches to (``torch.backends.cpu.get_cpu_capability()``: AVX512, AVX2 or
the portable DEFAULT), which is known only on the machine that runs it, and a missing
compiler must never break an install.  One ``cc -O3`` run takes about a second (measured
in the speed guide), against ~46 s for ``torch.utils.cpp_extension.load_inline``.  The
library is cached under ``$MOMENTUMLAB_CACHE`` (default ``$XDG_CACHE_HOME/momentumlab``
or ``~/.cache/momentumlab``), named by the hash of the source, the flags and the ISA, and
written atomically, so parallel test workers share one build.

``-fno-math-errno`` lets GCC vectorise ``sqrtf``; there is no ``-ffast-math`` (reductions
are reassociated only where ``#pragma omp simd reduction`` says so).  The library links
torch's own ``libgomp.so.1`` (same soname, loaded already), so one OpenMP runtime serves
both, and the kernels use torch's thread count.

``MOMENTUMLAB_NATIVE=0`` turns the kernels off; ``CC`` names the compiler.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

__all__ = ["load", "ISA_FLAGS", "BASE_FLAGS", "fresh_build_seconds"]

SOURCE = Path(__file__).with_name("kernels.c")
ABI_VERSION = 2
BASE_FLAGS = ("-O3", "-fPIC", "-shared", "-fno-math-errno", "-std=gnu11")
#: -march per torch CPU capability (x86-64 only; every other machine builds portable code)
ISA_FLAGS = {"AVX512": ("-march=x86-64-v4", "-mprefer-vector-width=512"),
             "AVX2": ("-march=x86-64-v3",), "DEFAULT": ()}


def cache_dir() -> Path:
    root = os.environ.get("MOMENTUMLAB_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "momentumlab")
    return Path(root) / "native"


def capability() -> str:
    import torch

    cap = torch.backends.cpu.get_cpu_capability()
    return cap if platform.machine().lower() in ("x86_64", "amd64") and cap in ISA_FLAGS else "DEFAULT"


def _torch_gomp() -> Path | None:
    import torch

    lib = Path(torch.__file__).parent / "lib" / "libgomp.so.1"
    return lib if lib.exists() else None


def _flag_sets(isa: str):
    """Compiler flag sets to try, best first: the ISA with OpenMP, portable with OpenMP,
    portable without OpenMP (the kernels then run on one thread)."""
    gomp = _torch_gomp()
    omp = ("-fopenmp",) + ((f"-Wl,-rpath,{gomp.parent}", str(gomp)) if gomp else ())
    sets = [ISA_FLAGS[isa] + omp]
    if ISA_FLAGS[isa]:
        sets.append(omp)
    sets.append(())
    return [BASE_FLAGS + s for s in sets]


def _compile(cc: str, flags, target: Path) -> str | None:
    """Build ``target`` atomically; returns an error text or None."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix=".so", dir=target.parent)
        os.close(fd)
    except OSError as exc:  # an unwritable cache: the torch code runs
        return str(exc)
    try:
        proc = subprocess.run([cc, *flags, str(SOURCE), "-o", tmp, "-lm"], capture_output=True,
                              text=True, timeout=120)
        if proc.returncode != 0:
            lines = (proc.stderr or proc.stdout or "failed").strip().splitlines()
            return lines[-1] if lines else "failed"
        os.replace(tmp, target)
        return None
    except (OSError, subprocess.SubprocessError) as exc:
        return str(exc)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load() -> tuple[ctypes.CDLL | None, dict]:
    """The loaded library (or None) and a status dict: ``available``, ``reason``, ``isa``,
    ``flags``, ``path``, ``build_seconds`` (0 when taken from the cache), ``openmp``."""
    info = {"available": False, "reason": "", "isa": None, "flags": None, "path": None,
            "build_seconds": 0.0, "openmp": None}
    if os.environ.get("MOMENTUMLAB_NATIVE", "1").strip().lower() in ("0", "false", "off", "no"):
        info["reason"] = "disabled by MOMENTUMLAB_NATIVE=0"
        return None, info
    cc = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        info["reason"] = "no C compiler found (set CC); the torch code runs"
        return None, info
    isa = info["isa"] = capability()
    source = SOURCE.read_bytes()
    errors = []
    for flags in _flag_sets(isa):
        key = hashlib.sha256(source + repr((flags, cc, ABI_VERSION)).encode()).hexdigest()[:16]
        target = cache_dir() / f"kernels-{isa.lower()}-{key}.so"
        if not target.exists():
            t0 = time.perf_counter()
            err = _compile(cc, flags, target)
            if err is not None:
                errors.append(err)
                continue
            info["build_seconds"] = time.perf_counter() - t0
        try:
            lib = ctypes.CDLL(str(target))
        except OSError as exc:
            errors.append(str(exc))
            continue
        if lib.native_abi_version() != ABI_VERSION:
            errors.append("stale library")
            continue
        info.update(available=True, flags=" ".join(flags[:len(flags) - 2] if "-fopenmp" in flags
                                                    and _torch_gomp() else flags),
                    path=str(target), openmp="-fopenmp" in flags)
        return lib, info
    info["reason"] = "compilation failed: " + "; ".join(errors)[:300]
    return None, info


def fresh_build_seconds() -> float | None:
    """Seconds one uncached build takes here (into a temporary cache), or None without a compiler."""
    cc = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        err = _compile(cc, _flag_sets(capability())[0], Path(tmp) / "kernels.so")
        return None if err else time.perf_counter() - t0
