"""Batched simulation of the update rules over hyperparameter grids (stability regions).

Every cell of a grid ``(y, x)`` -- ``x = eta * lam`` (``lam`` preconditioned for
adaptive rules), ``y`` one hyperparameter -- runs the rule of
:mod:`theory.rules` on ``f(w) = lam w^2 / 2`` from ``w_0 = 1``, all cells at once
as one float64 tensor computation (``empirics.backend.torch_ops(batch_dims=2)``),
on the GPU when present.  Nonlinear rules stay nonlinear.  ``mode="frozen"``
simulates the map the theory analyses: for adaptive rules the rule runs with
:func:`theory.ops.frozen_sqrt` -- ``sqrt(v_hat)`` held at ``P = 1``, valid because
every ``ops.sqrt`` of these rules acts on the second moment
(:func:`theory.stability.sqrt_only_on_second_moment`); TAM runs with a fixed
damping ``d`` (decay 1); VRAdam's gate stays live.  ``mode="running"`` runs the
rule as written: Adam's running second moment, TAM's cosine-driven damping.
Adaptive rules start at late time (step counter ``10**15``: bias corrections 1)
with a warm second moment ``v_0 = g_0^2 = 1``, so ``sqrt(v_0) = P = 1``
(``lam = 1``) and ``x = lr * lam / (P + eps)``.

Each cell is classified from the amplitude ``max |w_t|`` over the last quarter
of the run: **converged** below ``CONVERGED`` (1e-6), **diverged** above
``DIVERGED`` (1e6) or non-finite, **bounded** in between.  For a linear rule
``|w_t| ~ C rho^t``, so the outcome is decided within ``T`` steps only where
``T |ln rho| >= KAPPA`` (24: ``e^24 ~ 3e10`` covers the 1e-6 / 1e6 levels from the
last quarter plus a transient factor ``C`` up to ~50); the cells with
``T |ln rho| < KAPPA`` -- ``rho`` the spectral radius of the symbolic iteration
matrix -- form the *band around the boundary* excluded from the agreement.

Big grids are cut into row chunks submitted to a ``concurrent.futures.Executor``
(in-process by default; a ``ProcessPoolExecutor`` or a Dask client's
``get_executor()`` work the same way).  ``python -m momentumlab.empirics.sweeps --bench``
measures throughput against a per-cell Python loop over the same rule.
"""
from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import json
import math
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np
import torch

from momentumlab.empirics.backend import resolve_device, torch_ops
from momentumlab.empirics.executors import InlineExecutor
from momentumlab.theory.ops import Ops, frozen_sqrt
from momentumlab.theory.rules import get_rule
from momentumlab.theory.stability import analyse, get_model

__all__ = ["CONVERGED", "DIVERGED", "BLOWUP", "TINY", "KAPPA", "LATE_STEP", "OUTCOMES",
           "Sweep", "InlineExecutor", "simulate", "iterate", "chunk_rows", "run_chunks", "join_chunks", "sweep", "classify", "growth_rate",
           "PY_FLOAT", "loop_simulate", "bench"]

CONVERGED, DIVERGED, BLOWUP, TINY = 1e-6, 1e6, 1e150, 1e-200
KAPPA = 24.0
LATE_STEP = 10**15
OUTCOMES = ("converged", "bounded", "diverged")


def _sqrt(x):
    """Square root; CPU tensors go through ``numpy.sqrt`` (zero-copy).

    ``numpy.sqrt`` is the correctly rounded IEEE square root (equal to ``math.sqrt``);
    the float64 ``torch.sqrt`` kernel of the torch 2.13 CPU build measured here is
    off by one ulp on ~1% of inputs and takes ~10 ms for 16k elements >= 1 (0.02
    ms for numpy): a 500x slowdown of every adaptive-rule sweep.
    """
    if not torch.is_tensor(x):
        return math.sqrt(x)
    if x.device.type == "cpu" and not x.requires_grad:
        return torch.from_numpy(np.sqrt(x.numpy()))
    return torch.sqrt(x)


_OPS2 = dataclasses.replace(torch_ops(batch_dims=2), sqrt=_sqrt)


# ------------------------------------------------------------------ one chunk
def _values(model, x, y_name, y, fixed, lam):
    """Hyperparameter values per cell (tensors broadcasting to ``(ny, nx)``)."""
    v = {**model.defaults(), **(fixed or {})}
    if y_name is not None:
        v[y_name] = y[:, None]
    scale = (1.0 + v.get("epsilon", 0.0)) if model.preconditioned else 1.0
    v["lr"] = (x if x.dim() == 2 else x[None, :]) * scale / lam
    return v


def _ops(model, base: Ops, mode: str) -> Ops:
    if mode not in model.modes:
        raise ValueError(f"{model.name}: mode must be one of {sorted(model.modes)}, got {mode!r}")
    return frozen_sqrt(base, 1.0) if model.preconditioned and mode == "frozen" else base


def _setup(model, rule, w, v, ops, mode):
    """Rule hyperparameters and initial state (late time, warm ``v_0 = 1``) for ``mode``."""
    hyper, overrides = model.setup(v, LATE_STEP, 1.0, mode)
    state = dict(rule.init(w, ops))
    for key, val in overrides.items():
        state[key] = torch.full_like(w, val) if isinstance(val, float) and torch.is_tensor(w) else val
    return rule.hyper(**hyper), state


def simulate(optimizer: str, x, y_name=None, y=None, fixed=None, steps: int = 1000,
             device="cpu", mode: str = "frozen", lam: float = 1.0,
             check_every: int = 8) -> dict:
    """Run ``steps`` updates on every cell; returns numpy arrays (see :func:`classify`).

    ``x`` is shared by all rows (1-D) or given per cell (2-D, ``(ny, nx)``).

    ``amp[k]`` is ``max |w_t|`` over the ``k``-th quarter of the run, ``dead`` marks
    cells that became non-finite or exceeded ``BLOWUP`` (they are then zeroed so
    that the rest of the batch stays finite and fast).
    """
    model = get_model(optimizer)
    rule = get_rule(model.rule)
    dev = resolve_device(device)
    kw = dict(dtype=torch.float64, device=dev)
    x = torch.as_tensor(np.asarray(x, dtype=float), **kw)
    y = None if y is None else torch.as_tensor(np.asarray(y, dtype=float), **kw)
    ny = 1 if y is None else y.shape[0]
    v = _values(model, x, y_name, y, fixed, lam)
    ops = _ops(model, _OPS2, mode)
    w = torch.ones(ny, x.shape[-1], **kw)
    hyper, state = _setup(model, rule, w, v, ops, mode)
    return iterate(rule, w, hyper, state, ops, steps, lam, check_every)


def iterate(rule, w, hyper, state, ops: Ops, steps: int, lam: float = 1.0,
            check_every: int = 8) -> dict:
    """Run ``rule`` ``steps`` times on ``f = lam w^2/2`` from ``(w, state)``, every cell at once.

    Returns ``amp`` (``max |w_t|`` per quarter of the run), ``dead`` and ``steps`` (numpy).
    """
    kw = dict(dtype=w.dtype, device=w.device)
    dev = w.device
    quarter = max(steps // 4, 1)
    amp = torch.zeros(4, *w.shape, **kw)
    dead = torch.zeros(w.shape, dtype=torch.bool, device=dev)
    prev = torch.get_flush_denormal() if hasattr(torch, "get_flush_denormal") else None
    torch.set_flush_denormal(True)
    try:
        for t in range(steps):
            w, state = rule.step(w, lam * w, state, hyper, ops)
            k = min(t // quarter, 3)
            amp[k] = torch.maximum(amp[k], w.abs())
            if (t + 1) % check_every == 0 or t == steps - 1:
                bad = ~torch.isfinite(w) | (w.abs() > BLOWUP)
                if bool(bad.any()):
                    dead |= bad
                    w = torch.where(dead, torch.zeros_like(w), w)
                    state = {k_: _zero_dead(s, dead) for k_, s in state.items()}
    finally:
        torch.set_flush_denormal(bool(prev) if prev is not None else False)
    return {"amp": amp.cpu().numpy(), "dead": dead.cpu().numpy(), "steps": steps}


def _zero_dead(s, dead):
    """A state entry (tensor or tuple of tensors) with the dead cells zeroed."""
    if isinstance(s, tuple):
        return tuple(_zero_dead(e, dead) for e in s)
    if torch.is_tensor(s) and s.shape == dead.shape:
        return torch.where(dead, torch.zeros_like(s), s)
    return s


def _amp(result: Mapping) -> np.ndarray:
    """Window maxima with amplitudes below ``TINY`` read as 0 (converged).

    Under flush-to-zero an iterate near the smallest normal double can stop moving
    (its update rounds to 0); such cells are converged, not stuck.
    """
    amp = np.asarray(result["amp"])
    return np.where(amp < TINY, 0.0, amp)


def classify(result: Mapping) -> np.ndarray:
    """Outcome index per cell: 0 converged, 1 bounded, 2 diverged (see the module docstring)."""
    late = _amp(result)[3]
    out = np.ones(late.shape, dtype=np.int8)
    out[late < CONVERGED] = 0
    out[result["dead"] | ~np.isfinite(late) | (late > DIVERGED)] = 2
    return out


def growth_rate(result: Mapping) -> np.ndarray:
    """``ln rho`` estimated from the envelope: ``(ln amp[3] - ln amp[1]) / (T/2)``."""
    amp = _amp(result)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = (np.log(amp[3]) - np.log(amp[1])) / (result["steps"] / 2)
    rate = np.where(result["dead"], np.inf, rate)
    return np.where(np.isnan(rate), -np.inf, rate)


def _chunk_task(args: dict) -> dict:
    """Top-level (picklable) task for an executor: one row chunk.

    ``args["threads"]``, when given, sets torch's intra-op threads of the worker
    (process pools: one per worker avoids oversubscribing the cores).
    """
    args = dict(args)
    threads = args.pop("threads", None)
    if threads is not None:
        torch.set_num_threads(threads)
    return simulate(**args)


# ------------------------------------------------------------------ chunks
def chunk_rows(ny: int, nx: int, cpu: bool, chunk_cells: int | None = None, own: bool = True) -> int:
    """Grid rows per chunk: ``chunk_cells`` cells (default 2^16 on a CPU, 2^22 on a GPU); with
    the default executor on a CPU, at least one chunk per core."""
    chunk_cells = chunk_cells or ((1 << 16) if cpu else (1 << 22))
    rows = max(1, chunk_cells // max(nx, 1))
    if own and cpu:
        rows = max(1, min(rows, -(-ny // (os.cpu_count() or 1))))
    return rows


def run_chunks(fn, chunks: list, executor: cf.Executor | None = None, threads: int | None = None,
               cpu: bool = True) -> list:
    """``[fn(c) for c in chunks]`` through ``executor``, in order.

    Default (``executor=None``): on the CPU an in-process thread pool with one worker per
    core and torch's intra-op threads set to 1 for the duration (torch releases the GIL, so
    the chunks run in parallel; unlike intra-op OpenMP threads this does not collapse when
    other processes share the cores); on a GPU, :class:`InlineExecutor`.  ``threads`` is
    passed to each chunk as ``c["threads"]`` (its intra-op threads, e.g. 1 in a worker
    process); ``fn`` must be a top-level function so that process pools and Dask can ship it.
    """
    own = executor is None
    if own:
        workers = min(os.cpu_count() or 1, len(chunks)) if cpu else 1
        executor = cf.ThreadPoolExecutor(workers) if workers > 1 else InlineExecutor()
    prev_threads = torch.get_num_threads()
    if own and cpu:
        torch.set_num_threads(1)
    try:
        futures = [executor.submit(fn, c if threads is None else {**c, "threads": threads})
                   for c in chunks]
        return [f.result() for f in futures]
    finally:
        if own:
            executor.shutdown()
        torch.set_num_threads(prev_threads)


def join_chunks(parts: list, steps: int) -> dict:
    """Row chunks of :func:`iterate` results -> one result."""
    return {"amp": np.concatenate([p["amp"] for p in parts], axis=1),
            "dead": np.concatenate([p["dead"] for p in parts], axis=0), "steps": steps}


# ------------------------------------------------------------------ whole sweeps
@dataclass
class Sweep:
    """A simulated grid with its symbolic comparison."""

    optimizer: str
    x: np.ndarray
    y_name: str | None
    y: np.ndarray | None
    fixed: dict
    steps: int
    mode: str
    outcome: np.ndarray  # (ny, nx) int8
    growth: np.ndarray
    symbolic_stable: np.ndarray
    rho: np.ndarray
    in_band: np.ndarray
    seconds: float
    extra: dict = field(default_factory=dict)

    @property
    def agreement(self) -> dict:
        """Converged <=> symbolically stable, outside the band ``T |ln rho| < KAPPA``."""
        match = (self.outcome == 0) == self.symbolic_stable
        out = ~self.in_band
        n = int(out.sum())
        return {"fraction": float(match[out].mean()) if n else None,
                "cells_compared": n, "cells_in_band": int(self.in_band.sum()),
                "fraction_all_cells": float(match.mean()),
                "band": f"cells with steps*|ln rho(A)| < {KAPPA:g} excluded (rho: spectral radius "
                        "of the symbolic iteration matrix; the outcome is not decided within "
                        "the run there)",
                "compared": "simulated 'converged' <=> all Schur conditions > 0"}

    def labels(self) -> list[list[str]]:
        return [[OUTCOMES[k] for k in row] for row in self.outcome]


def _params_grid(sw_y_name, y, fixed, nx):
    p = dict(fixed or {})
    if sw_y_name is not None:
        p[sw_y_name] = np.asarray(y, dtype=float)[:, None]
    return p


def sweep(optimizer: str, x, y_name: str | None = None, y=None, fixed=None, steps: int = 1000,
          device="cpu", mode: str = "frozen", executor: cf.Executor | None = None,
          chunk_cells: int | None = None, threads: int | None = None) -> Sweep:
    """Simulate the grid in row chunks through ``executor`` and compare with the theory.

    Default executor: on the CPU, an in-process thread pool with one worker per core and
    torch's intra-op threads set to 1 for the duration (torch releases the GIL, so the
    chunks run in parallel; unlike intra-op OpenMP threads this does not collapse when
    other processes share the cores); on a GPU, :class:`InlineExecutor` with one chunk.
    Any ``concurrent.futures.Executor`` may be passed instead (``threads`` then sets the
    intra-op threads of each task, e.g. 1 for a process pool).
    """
    model = get_model(optimizer)
    if y_name is not None and y_name not in model.defaults():
        raise KeyError(f"{optimizer} has no hyperparameter {y_name!r}; known: {sorted(model.defaults())}")
    x = np.asarray(x, dtype=float)
    ys = None if y_name is None else np.asarray(y, dtype=float)
    ny = 1 if ys is None else len(ys)
    cpu = resolve_device(device).type == "cpu"
    rows = chunk_rows(ny, len(x), cpu, chunk_cells, own=executor is None)
    start = time.perf_counter()
    parts = run_chunks(_chunk_task, [dict(optimizer=optimizer, x=x, y_name=y_name,
                                          y=None if ys is None else ys[r0:r0 + rows], fixed=fixed,
                                          steps=steps, device=str(device), mode=mode)
                                     for r0 in range(0, ny, rows)], executor, threads, cpu)
    seconds = time.perf_counter() - start
    res = join_chunks(parts, steps)
    an = analyse(optimizer)
    params = _params_grid(y_name, ys, fixed, len(x))
    sym = np.broadcast_to(an.stable(x[None, :], params), (ny, len(x)))
    rho = np.broadcast_to(an.spectral_radius(x[None, :], params), (ny, len(x)))
    with np.errstate(divide="ignore"):
        in_band = steps * np.abs(np.log(rho)) < KAPPA
    return Sweep(optimizer, x, y_name, ys, dict(fixed or {}), steps, mode,
                 classify(res), growth_rate(res), np.array(sym), np.array(rho), in_band,
                 seconds, {"amp_last_quarter": res["amp"][3]})


# ------------------------------------------------------------------ benchmark
def _py_where(c, a, b):
    return a if c else b


PY_FLOAT = Ops(name="python-float", sqrt=math.sqrt, abs=abs, minimum=min, maximum=max,
               where=_py_where, inner=lambda x, y: x * y, zeros_like=lambda x: 0.0,
               ndim=lambda x: 0, row_inner=lambda x, y: x * y)
"""Plain Python floats: the per-cell loop of the benchmark."""


def loop_simulate(optimizer: str, x: float, y_name=None, y=None, fixed=None, steps=1000,
                  mode="frozen", lam: float = 1.0) -> float:
    """One cell with Python floats (same rule, same setup); returns ``max |w|`` of the last quarter."""
    model = get_model(optimizer)
    rule = get_rule(model.rule)
    v = {**model.defaults(), **(fixed or {})}
    if y_name is not None:
        v[y_name] = float(y)
    v["lr"] = x * ((1.0 + v.get("epsilon", 0.0)) if model.preconditioned else 1.0) / lam
    ops = _ops(model, PY_FLOAT, mode)
    w = 1.0
    hyper, state = _setup(model, rule, w, v, ops, mode)
    amp, start, dead = 0.0, steps - max(steps // 4, 1), False
    for t in range(steps):  # all steps, like the batch (a dead cell is zeroed, not dropped)
        w, state = rule.step(w, lam * w, state, hyper, ops)
        if not math.isfinite(w) or abs(w) > BLOWUP:
            dead = True
        if dead:
            w = 0.0
            state = {k: 0.0 if isinstance(s, float) else s for k, s in state.items()}
        if t >= start:
            amp = max(amp, abs(w))
    return math.inf if dead else amp


def bench(optimizer: str = "heavy_ball", grid: int = 512, steps: int = 1000,
          loop_cells: int = 256, device="cpu", repeats: int = 3, mode: str = "frozen") -> dict:
    """Throughput (cells x steps / s): one batched sweep vs a per-cell Python loop.

    Both run the same rule from the same setup; each is timed ``repeats`` times
    and the best time is kept (timeit practice: the machine is shared).  The loop
    runs ``loop_cells`` random cells of the grid and is scaled per cell-step.
    """
    model = get_model(optimizer)
    x = np.linspace(*model.x_range, grid + 1)[1:]
    y_name = model.y_default
    y = None if y_name is None else np.linspace(*model.param(y_name).range, grid)
    runs = [sweep(optimizer, x, y_name, y, steps=steps, device=device, mode=mode)
            for _ in range(repeats)]
    sw = runs[-1]
    batch_s = min(r.seconds for r in runs)
    batch_all = [round(r.seconds, 3) for r in runs]
    cells = len(x) * (1 if y is None else len(y))
    rng = np.random.default_rng(0)
    pick = rng.integers(0, len(x), loop_cells)
    ypick = rng.integers(0, 1 if y is None else len(y), loop_cells)
    loop_times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        loop_amp = [loop_simulate(optimizer, x[i], y_name, None if y is None else y[j], steps=steps,
                                  mode=mode) for i, j in zip(pick, ypick)]
        loop_times.append(time.perf_counter() - t0)
    loop_s = min(loop_times)
    loop_all = [round(t, 4) for t in loop_times]
    same = [classify({"amp": np.array([[a]] * 4), "dead": np.array([not math.isfinite(a)]),
                      "steps": steps})[0] == sw.outcome[j, i]
            for a, i, j in zip(loop_amp, pick, ypick)]
    batched, looped = cells * steps / batch_s, loop_cells * steps / loop_s
    return {"optimizer": optimizer, "mode": mode, "grid": [1 if y is None else len(y), len(x)],
            "steps": steps, "device": str(resolve_device(device)),
            "executor": "default: in-process thread pool, one worker per core, 1 intra-op thread"
            if resolve_device(device).type == "cpu" else "inline", "repeats": repeats,
            "batched_seconds": round(batch_s, 3), "batched_seconds_all_repeats": batch_all,
            "batched_cell_steps_per_s": round(batched),
            "loop_cells": loop_cells, "loop_seconds": round(loop_s, 4),
            "loop_seconds_all_repeats": loop_all,
            "loop_cell_steps_per_s": round(looped),
            "loop_seconds_extrapolated_to_grid": round(cells * steps / looped, 1),
            "speedup": round(batched / looped, 1),
            "loop_and_batch_same_outcome": float(np.mean(same)),
            "agreement": sw.agreement["fraction"],
            "cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
            "load_average_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
            "torch": torch.__version__}


def main(argv=None) -> int:
    from momentumlab.empirics.cliargs import Parser, integer, output_path

    ap = Parser(prog="python -m momentumlab.empirics.sweeps", description="sweep throughput benchmark")
    ap.add_argument("--bench", action="store_true", help="run the benchmark")
    ap.add_argument("--optimizer", nargs="+", default=["heavy_ball"],
                    help="NAME or NAME:MODE (mode frozen|running), e.g. adam:running")
    ap.add_argument("--grid", type=integer(2), default=512)
    ap.add_argument("--steps", type=integer(8), default=1000)
    ap.add_argument("--loop-cells", type=integer(1), default=256)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--json", metavar="PATH", type=output_path,
                    help="merge the figures into this file: a run replaces the earlier run of the "
                         "same optimizer and mode, the others are kept")
    args = ap.parse_args(argv)
    if not args.bench:
        ap.print_help()
        return 2
    for spec in args.optimizer:
        name, _, mode = spec.partition(":")
        try:
            get_model(name)
        except KeyError as exc:
            ap.error(f"argument --optimizer: {exc.args[0]}")
        if mode not in ("", "frozen", "running"):
            ap.error(f"argument --optimizer: mode of {spec!r} must be frozen or running")
    rows = []
    for spec in args.optimizer:
        name, _, mode = spec.partition(":")
        row = bench(name, args.grid, args.steps, args.loop_cells, args.device, mode=mode or "frozen")
        print(json.dumps(row))
        rows.append(row)
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": merge_runs(args.json, rows)}, indent=2) + "\n")
    return 0


def merge_runs(path, rows: list[dict]) -> list[dict]:
    """The runs already in ``path`` (if any) with each (optimizer, mode) replaced by ``rows``."""
    try:
        old = json.loads(Path(path).read_text())["runs"]
    except (OSError, ValueError, KeyError, TypeError):
        old = []
    new = {(r["optimizer"], r["mode"]) for r in rows}
    return [r for r in old if (r.get("optimizer"), r.get("mode")) not in new] + rows


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
