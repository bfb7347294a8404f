"""``momentumlab bench optimizers``: time one optimizer step on a model-sized parameter set.

Every optimizer of :mod:`empirics.optim` -- on its compiled CPU kernels
(:mod:`empirics.optim.native`) and on its torch code (``native = False``) --, torch's
AdamW (fused, foreach) and SGD, and the reference implementations that are installed
(the authors' ``adamp`` AdamP/SGDP; ``pytorch_optimizer``'s AdamP, SGDP, TAM, AdaTAM)
step the same parameters: about 25M float32 values (``--size``, in millions) in a
ResNet-like mix of conv kernels, matrices and vectors, too large for the CPU cache.
Conv-kernel gradients are orthogonal to their rows, as behind BatchNorm, so AdamP/SGDP's
projection runs.

A busy machine (issue 11): torch's fused AdamW opens a parallel region per tensor, so
with all threads its time swings 20-800 ms when another process holds a core, and median
ratios mean nothing.  So the CPU benchmark runs two phases of interleaved rounds: one
thread, timed in CPU time (``time.process_time``: what a step costs, whatever else runs),
and all of torch's threads, timed in wall time; each optimizer reports its minimum over
rounds (the least disturbed step) as a ratio to fused AdamW's minimum in the same phase,
and the report keeps the load average before and after.  The targets (issue 11) are on
the one-thread ratio.  On CUDA there is one phase, in wall time after synchronising.
"""
from __future__ import annotations

import importlib
import json
import math
import os
import platform
import re
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

__all__ = ["add_subcommand", "model_shapes", "run_benchmark", "TARGETS", "validate_args"]

#: CPU targets on the one-thread ratio: step CPU time / torch fused AdamW step CPU time
TARGETS = {"VRAdam": 1.35, "TAM": 1.15, "AdaTAM": 1.45, "AdamP": 1.60, "SGDP": 1.25}
WIDTHS = (64, 128, 256, 512)
BASELINE = "torch AdamW (fused)"
#: argument ranges checked before any work: (low, high) inclusive, low exclusive for size
LIMITS = {"size": (0.0, 1000.0), "repeat": (1, 1000), "warmup": (0, 100), "seed": (0, 2**63 - 1)}


def model_shapes(numel: float) -> list[tuple]:
    """A ResNet-like list of shapes totalling about ``numel`` values (at least one block)."""
    scale = 1.0
    block = _block(WIDTHS)
    size = sum(_numel(s) for s in block)
    if numel < size:  # shrink the widths for smoke tests
        scale = max((numel / size) ** 0.5, 1 / 16)
        block = _block(tuple(max(4, int(c * scale)) for c in WIDTHS))
        size = sum(_numel(s) for s in block)
    reps = max(1, round(numel / size))
    return [s for _ in range(reps) for s in block]


def _block(widths) -> list[tuple]:
    shapes = []
    for c in widths:
        shapes += [(c, c, 3, 3), (c,), (c,), (c, c, 3, 3), (c,), (c,), (4 * c, c), (4 * c,)]
    shapes += [(1000, widths[-1]), (1000,)]
    return shapes


def _numel(shape) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def slug(label: str) -> str:
    """The key of a result row: ``"VRAdam (torch)"`` -> ``"vradam_torch"``."""
    return re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")


def _candidates(has_cuda_params: bool):
    """(label, optimizer family, kind, path, factory) for everything that can run here."""
    import torch

    from momentumlab.empirics.optim import SGDP, TAM, AdamP, AdaTAM, VRAdam

    def torch_code(make):
        def build(p):
            opt = make(p)
            opt.native = False
            return opt
        return build

    ours = [("VRAdam", "VRAdam", lambda p: VRAdam(p, lr=1e-3)),
            ("TAM", "TAM", lambda p: TAM(p, lr=1e-3)),
            ("AdaTAM", "AdaTAM", lambda p: AdaTAM(p, lr=1e-4)),
            ("AdamP", "AdamP", lambda p: AdamP(p, lr=1e-3, weight_decay=1e-2)),
            ("SGDP", "SGDP", lambda p: SGDP(p, lr=1e-3, weight_decay=1e-5))]
    out = [
        (BASELINE, "AdamW", "torch", None, lambda p: torch.optim.AdamW(p, lr=1e-3, fused=True)),
        ("torch AdamW (foreach)", "AdamW", "torch", None, lambda p: torch.optim.AdamW(p, lr=1e-3, foreach=True)),
        ("torch SGD momentum (foreach)", "SGD", "torch", None,
         lambda p: torch.optim.SGD(p, lr=1e-3, momentum=0.9, foreach=True)),
    ]
    for label, family, make in ours:
        out.append((label, family, "ours", "native", make))
        if not has_cuda_params:
            out.append((f"{label} (torch)", family, "ours", "torch", torch_code(make)))
    refs = {
        "adamp": [("adamp AdamP (authors)", "AdamP", "AdamP", dict(lr=1e-3, weight_decay=1e-2)),
                  ("adamp SGDP (authors)", "SGDP", "SGDP", dict(lr=1e-3, momentum=0.9, weight_decay=1e-5))],
        "pytorch_optimizer": [
            ("pytorch_optimizer AdamP", "AdamP", "AdamP", dict(lr=1e-3, weight_decay=1e-2)),
            ("pytorch_optimizer SGDP", "SGDP", "SGDP", dict(lr=1e-3, momentum=0.9, weight_decay=1e-5)),
            ("pytorch_optimizer TAM", "TAM", "TAM", dict(lr=1e-3)),
            ("pytorch_optimizer AdaTAM", "AdaTAM", "AdaTAM", dict(lr=1e-4)),
        ],
    }
    for module, entries in refs.items():
        try:
            mod = importlib.import_module(module)
        except ImportError:
            continue
        for label, family, cls_name, kw in entries:
            cls = getattr(mod, cls_name)
            out.append((label, family, "reference", None, lambda p, cls=cls, kw=kw: cls(p, **kw)))
    return out


def _orthogonal_rows(g, w):
    gv, wv = g.view(g.shape[0], -1), w.view(w.shape[0], -1)
    wn = wv / wv.norm(dim=1, keepdim=True)
    gv -= wn * (wn * gv).sum(1, keepdim=True)


def _phase(opts, params, snapshot, rounds: int, warmup: int, clock, sync, log, name) -> dict:
    """Interleaved rounds: every optimizer steps once per round; the minimum after warm-up."""
    import torch

    best = {label: math.inf for label, *_ in opts}
    for r in range(warmup + rounds):
        for label, *_, opt in opts:
            sync()
            t0 = clock()
            opt.step()
            sync()
            if r >= warmup:
                best[label] = min(best[label], clock() - t0)
        with torch.no_grad():  # keep the parameters in range whatever the optimizers did
            for p, s in zip(params, snapshot):
                p.copy_(s)
        log(f"{name}: round {r + 1}/{warmup + rounds}")
    return best


def pass_profile(params, rounds: int = 5) -> dict:
    """One thread, CPU time: each kernel pass alone, and a torch sum over the gradients (one
    read stream), as ratios to a fused AdamW step on the same tensors (min over rounds)."""
    import numpy as np
    import torch

    from momentumlab.empirics.optim import native
    from momentumlab.empirics.optim.native import _call, _ptrs

    lib = native._library()
    ps = [p.detach() for p in params]
    gs = [p.grad for p in params]
    ms = [torch.zeros_like(p) for p in ps]
    vs = [torch.full_like(p, 1e-4) for p in ps]
    steps = [torch.tensor(1.0) for _ in ps]
    n, sizes = len(ps), np.array([p.numel() for p in ps], dtype=np.int64)
    rows = np.array([p.shape[0] if p.dim() > 1 else 1 for p in ps], dtype=np.int64)
    ones, out, ww = np.ones(n), np.empty((int(rows.sum()), 4)), np.ones(int(rows.sum()))
    kw = dict(lr=1e-3, beta1=0.9, beta2=0.999, weight_decay=0.0, eps=1e-8, amsgrad=False, maximize=False)
    passes = {
        "fused_adamw": lambda: torch._fused_adamw_(ps, gs, ms, vs, [], steps, **kw),
        "torch_sum_of_gradients": lambda: [g.sum() for g in gs],
        "stats_vradam": lambda: _call(lib.tensor_sums_f32, n, _ptrs(ms), _ptrs(gs), sizes, 0, 0.9, 0.1, out, 1),
        "stats_tam": lambda: _call(lib.tensor_sums_f32, n, _ptrs(ms), _ptrs(gs), sizes, 2, 0.0, 0.0, out, 1),
        "stats_projection": lambda: _call(lib.row_stats_f32, n, _ptrs(ps), _ptrs(gs), sizes, sizes // rows, out, 1),
        "update_adam_channel": lambda: _call(lib.channel_update_f32, n, _ptrs(ps), _ptrs(gs), _ptrs(ms), _ptrs(vs),
                                             sizes, sizes // rows, ww, 0, 0.9, 0.999, 1e-8, ones * 0.1, ones,
                                             ones * 1e-9, ones, 0, 1),
        "update_adam": lambda: _call(lib.adam_update_f32, n, _ptrs(ps), _ptrs(gs), _ptrs(ms), _ptrs(vs), sizes,
                                     0.9, 0.999, 1e-8, ones * 0.1, ones, ones * 1e-9, ones, 1),
        "update_momentum": lambda: _call(lib.momentum_update_f32, n, _ptrs(ps), _ptrs(gs), _ptrs(ms), sizes,
                                         0.9, ones * 0.1, ones * 1e-9, ones, None, 0, 1),
    }
    threads = torch.get_num_threads()
    best = dict.fromkeys(passes, math.inf)
    try:
        torch.set_num_threads(1)
        for _ in range(rounds):
            for name, fn in passes.items():
                t0 = time.process_time()
                fn()
                best[name] = min(best[name], time.process_time() - t0)
    finally:
        torch.set_num_threads(threads)
    return {name: round(t / best["fused_adamw"], 3) for name, t in best.items()}


def run_benchmark(device: str = "auto", size: float = 25.0, repeat: int = 10, warmup: int = 2,
                  seed: int = 0, only=None, log=print) -> dict:
    """Run the benchmark; returns the report (see :func:`add_subcommand`)."""
    import torch

    from momentumlab.empirics.backend import resolve_device
    from momentumlab.empirics.optim import native

    dev = resolve_device(device)
    everything = _candidates(dev.type == "cuda")
    unmatched = [o for o in only or () if not any(o.lower() in c[0].lower() for c in everything)]
    if unmatched:
        known = ", ".join(c[0] for c in everything)
        raise ValueError(f"--only {' '.join(unmatched)} matches no optimizer; known: {known}")
    cands = [c for c in everything if not only or any(o.lower() in c[0].lower() for o in only)]
    if not any(c[0] == BASELINE for c in cands):
        cands.insert(0, everything[0])
    gen = torch.Generator().manual_seed(seed)
    shapes = model_shapes(size * 1e6)
    params = [torch.randn(s, generator=gen).to(dev).requires_grad_() for s in shapes]
    for p in params:
        g = torch.randn(p.shape, generator=gen).to(dev)
        if p.dim() == 4:
            _orthogonal_rows(g, p.detach())
        p.grad = g
    snapshot = [p.detach().clone() for p in params]
    opts = [(label, family, kind, path, make(params)) for label, family, kind, path, make in cands]

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    threads = torch.get_num_threads()
    load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
    phases = {}
    if dev.type == "cpu":
        try:
            torch.set_num_threads(1)
            phases["one_thread"] = _phase(opts, params, snapshot, repeat, warmup, time.process_time,
                                          sync, log, "one thread")
        finally:
            torch.set_num_threads(threads)
    phases["all_threads"] = _phase(opts, params, snapshot, repeat, warmup, time.perf_counter, sync,
                                   log, f"{threads} threads")
    load_after = os.getloadavg() if hasattr(os, "getloadavg") else None
    results = {}
    for label, family, kind, path, opt in opts:
        row = {"name": label, "optimizer": family, "kind": kind}
        if kind == "ours":
            row["path"] = "native" if getattr(opt, "native_active", False) else "torch"
        for phase, best in phases.items():
            row[phase] = {"min_ms": round(1e3 * best[label], 3),
                          "ratio": round(best[label] / best[BASELINE], 4)}
        target = TARGETS.get(family) if kind == "ours" else None
        if target is not None:
            key = "one_thread" if "one_thread" in phases else "all_threads"
            row["target"] = target
            row["meets_target"] = row[key]["ratio"] <= target
            row["target_status"] = "met" if row["meets_target"] else "missed"
        results[slug(label)] = row
    versions = {"torch": torch.__version__, "python": platform.python_version()}
    for dist in ("adamp", "pytorch_optimizer"):
        try:
            versions[dist] = version(dist)
        except PackageNotFoundError:
            pass
    st = native.status()
    from momentumlab.empirics.optim.native.build import fresh_build_seconds

    with torch.no_grad():
        for p, s in zip(params, snapshot):
            p.copy_(s)
    passes = pass_profile(params, repeat) if dev.type == "cpu" and st["available"] else None

    build_s = fresh_build_seconds() if st["available"] else None
    return {
        "benchmark": "optimizers", "device": str(dev),
        "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or platform.machine(),
        "threads": threads, "dtype": "float32",
        "numel": sum(p.numel() for p in params), "tensors": len(params),
        "warmup": warmup, "rounds": repeat, "baseline": BASELINE,
        "timing": {"one_thread": "CPU time (process_time), minimum over rounds",
                   "all_threads": "wall time, minimum over rounds"},
        "load_average": {"before": list(load_before) if load_before else None,
                         "after": list(load_after) if load_after else None},
        "native": {**{k: st.get(k) for k in ("available", "reason", "isa", "flags", "openmp")},
                   "fresh_build_seconds": None if build_s is None else round(build_s, 2)},
        "versions": versions, "targets": TARGETS, "results": results,
        "passes_one_thread": passes,
        "target_summary": _target_summary(results),
    }


def _target_summary(results: dict) -> dict:
    """How many targets the run met, and the misses in words (for the speed guide's text)."""
    rows = [r for r in results.values() if r["name"] in TARGETS]  # the compiled-path rows
    key = "one_thread" if rows and "one_thread" in rows[0] else "all_threads"
    missed = [f"{r['name']} {r[key]['ratio']:.3f} > {r['target']:g}" for r in rows if not r["meets_target"]]
    met = len(rows) - len(missed)
    return {"met": met, "of": len(rows), "missed": ", ".join(missed) or "none",
            "verdict": "every target met" if not missed else f"{met} of {len(rows)} targets met"}


def native_line(report: dict) -> str:
    nat = report["native"]
    if nat["available"]:
        return f"compiled kernels: available ({nat['isa']}, {'OpenMP' if nat['openmp'] else 'one thread'})"
    return f"compiled kernels: unavailable ({nat['reason']}); every class runs its torch code"


def _print_table(report: dict) -> None:
    phases = [p for p in ("one_thread", "all_threads") if p in next(iter(report["results"].values()))]
    load = report["load_average"]
    print(f"optimizer step on {report['numel'] / 1e6:.1f}M values in {report['tensors']} tensors, "
          f"{report['device']}; minimum over {report['rounds']} interleaved rounds after "
          f"{report['warmup']} warm-up; ratio to torch AdamW (fused)")
    print(native_line(report))
    if load["before"]:
        print(f"load average (1 min) before/after: {load['before'][0]:.2f} / {load['after'][0]:.2f}")
    cols = {"one_thread": "1 thread (CPU ms, ratio)", "all_threads": f"{report['threads']} threads (wall ms, ratio)"}
    head = f"{'optimizer':<30}{'path':<8}" + "".join(f"{cols[p]:>30}" for p in phases) + "  target"
    print(head)
    print("-" * len(head))
    for r in report["results"].values():
        cells = "".join(f"{r[p]['min_ms']:>20.2f}{r[p]['ratio']:>10.2f}" for p in phases)
        target = ""
        if r.get("target") is not None:
            target = f"<={r['target']:g} {'ok' if r['meets_target'] else 'MISS'}"
        print(f"{r['name']:<30}{r.get('path', ''):<8}{cells}  {target}")
    summary = report.get("target_summary")
    if summary:
        print(f"targets: {summary['verdict']}" + (f" (missed: {summary['missed']})" if summary["missed"] != "none" else ""))
    if report.get("passes_one_thread"):
        print("kernel passes alone (1 thread, CPU time / fused AdamW): " + ", ".join(
            f"{k} {v:.2f}" for k, v in report["passes_one_thread"].items() if k != "fused_adamw"))


def validate_args(args) -> str | None:
    """The first out-of-range argument as a one-line message, or None."""
    lo, hi = LIMITS["size"]
    if not (isinstance(args.size, float) and math.isfinite(args.size) and lo < args.size <= hi):
        return f"--size must be in ({lo:g}, {hi:g}] millions of values, got {args.size:g}"
    for name in ("repeat", "warmup", "seed"):
        lo, hi = LIMITS[name]
        value = getattr(args, name)
        if not lo <= value <= hi:
            return f"--{name} must be an integer in [{lo}, {hi}], got {value}"
    if args.json is not None and not Path(args.json).resolve().parent.is_dir():
        return f"--json: the folder of {args.json} does not exist"
    return None


def _cmd_bench(args) -> int:
    import sys

    if args.target != "optimizers":  # pragma: no cover - argparse restricts choices
        return 2
    problem = validate_args(args)
    if problem is None:
        from momentumlab.empirics.backend import resolve_device
        try:
            resolve_device(args.device)
        except ValueError as exc:
            problem = f"--{exc}"
    if problem is not None:
        print(f"momentumlab bench: error: {problem}", file=sys.stderr)
        return 2
    try:
        report = run_benchmark(args.device, args.size, args.repeat, args.warmup, args.seed, args.only,
                               log=lambda m: print(m, file=sys.stderr, end="\r") if sys.stderr.isatty() else None)
    except ValueError as exc:
        print(f"momentumlab bench: error: {exc}", file=sys.stderr)
        return 2
    print(file=sys.stderr)
    _print_table(report)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
    return 0


def add_subcommand(subparsers) -> None:
    """Register ``bench`` on the ``momentumlab`` command line."""
    p = subparsers.add_parser("bench", help="time optimizer steps against torch and reference implementations")
    p.add_argument("target", choices=["optimizers"], help="what to benchmark")
    p.add_argument("--device", default="auto", help="auto|cpu|cuda (default auto)")
    p.add_argument("--json", metavar="PATH", help="write the figures as JSON here")
    p.add_argument("--size", type=float, default=25.0, help="millions of parameter values, in (0, 1000] (default 25)")
    p.add_argument("--repeat", type=int, default=10, help="timed rounds per phase, 1-1000 (default 10)")
    p.add_argument("--warmup", type=int, default=2, help="untimed rounds first, 0-100 (default 2)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--only", nargs="+", metavar="NAME", help="optimizers whose label contains NAME "
                   "(torch's fused AdamW always runs as the baseline)")
    p.set_defaults(func=_cmd_bench)
