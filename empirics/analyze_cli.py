"""``momentumlab analyze``: the stability theory of any update rule, checked by simulating it.

``momentumlab analyze FILE.py:NAME|RULE [--params k=v ...] [--symbolic NAME ...] [--y NAME|none]
[--grid N] [--steps T] [--x-range LO HI] [--y-range LO HI] [--json PATH] [--png PATH] [--latex]
[--executor local|threads|processes|dask:ADDRESS] [--device auto|cpu|cuda]``

:func:`theory.analyze.analyze` derives the iteration matrix, the characteristic polynomial,
the Schur conditions by crossing, the threshold on ``eta*lambda`` (closed form with its status,
or traced), the rod-flow flip threshold and the edge-of-stability sharpness; then the same rule
runs batched over a ``(y, eta*lambda)`` grid (:func:`empirics.sweeps.iterate`, row chunks through
:func:`empirics.sweeps.run_chunks`) and the simulated outcome is compared with the Schur region
outside the band ``steps |ln rho| < KAPPA`` where a run cannot decide.  The simulation runs the
analysed map: late time (step counter at ``LATE_STEP``), settled scalar state, and -- when a
preconditioner was frozen -- ``ops.sqrt`` held at ``P = 1`` with ``lr = x D(P=1)/lambda``.

Exit status: 0 analysed, 1 refused (not differentiable at the fixed point / state does not
settle: the reason is printed), 2 bad usage (one line on stderr, before any work).
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import sympy as sp

__all__ = ["add_subcommand", "region", "region_chunk", "plot_region", "report"]

EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2
_COLOURS = ("#3b8f4e", "#f2b134", "#c0392b")  # converged, bounded, diverged
_MAX_GRID = 4096


def add_subcommand(subparsers) -> None:
    """Add ``analyze`` to the ``momentumlab`` parser."""
    from momentumlab.empirics.cliargs import output_path
    from momentumlab.empirics.executors import EXECUTOR_HELP, executor_arg

    p = subparsers.add_parser("analyze", help="stability theory of any update rule (yours: "
                              "FILE.py:NAME), checked by a batched simulation")
    p.add_argument("rule", help="FILE.py:NAME (a theory.rules.Rule in your file) or a shipped "
                   "rule name (qhm, aggmo, sgd, adan, lion, heavy_ball, ...)")
    p.add_argument("--params", nargs="+", default=[], metavar="NAME=VALUE",
                   help="hyperparameter values, e.g. momentum=0.9 betas=0.9,0.99")
    p.add_argument("--symbolic", nargs="+", metavar="NAME", help="parameters kept symbolic "
                   "(default: float hyperparameters in [1e-3, 1); betas entries are beta1, ...)")
    p.add_argument("--y", default=None, help="y axis of the region: a symbolic parameter or "
                   "'none' (default: the first symbolic parameter)")
    p.add_argument("--grid", type=int, default=128, help=f"cells per axis, 2..{_MAX_GRID} "
                   "(default 128)")
    p.add_argument("--steps", type=int, default=1000, help="simulated steps, >= 8 (default 1000)")
    p.add_argument("--x-range", type=float, nargs=2, metavar=("LO", "HI"))
    p.add_argument("--y-range", type=float, nargs=2, metavar=("LO", "HI"))
    p.add_argument("--no-simulation", action="store_true", help="symbolic analysis only")
    p.add_argument("--json", metavar="PATH", type=output_path, help="write the report")
    p.add_argument("--png", metavar="PATH", type=output_path,
                   help="region figure: simulation and Schur boundary")
    p.add_argument("--latex", action="store_true", help="print A, p(mu), the conditions and the "
                   "threshold as LaTeX")
    p.add_argument("--executor", default=None, type=executor_arg, help=EXECUTOR_HELP + " (default: in-process "
                   "thread pool)")
    p.add_argument("--device", default="auto", help="auto|cpu|cuda (default auto)")
    p.set_defaults(func=_cmd_analyze)


def _usage(msg: str) -> int:
    print(f"momentumlab analyze: error: {msg}", file=sys.stderr)
    return EXIT_USAGE


def _parse_params(items, defaults) -> dict:
    out = {}
    for item in items:
        name, eq, text = item.partition("=")
        if not eq or not name:
            raise ValueError(f"--params takes NAME=VALUE, got {item!r}")
        if name not in defaults:
            raise ValueError(f"--params: unknown hyperparameter {name!r}; known: "
                             f"{', '.join(sorted(defaults))}")
        default = defaults[name]
        try:
            if isinstance(default, bool):
                if text.lower() not in ("true", "false", "1", "0"):
                    raise ValueError
                value = text.lower() in ("true", "1")
            elif isinstance(default, tuple):
                value = tuple(float(t) for t in text.split(","))
                if len(value) < 1:
                    raise ValueError
            else:
                value = float(text)
        except ValueError:
            raise ValueError(f"--params {name}: cannot read {text!r} as "
                             f"{type(default).__name__} (default {default!r})") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"--params {name} must be finite, got {text!r}")
        if name == "lr" and not value > 0:
            raise ValueError(f"--params lr must be > 0, got {text!r}")
        out[name] = value
    return out


def _check_path(opt: str, path) -> None:
    if path is not None and not Path(path).resolve().parent.is_dir():
        raise ValueError(f"{opt}: directory of {path!r} does not exist")


def _validate(args):
    """Everything checkable before the analysis; returns ``(rule, params)``."""
    from momentumlab.empirics.backend import resolve_device
    from momentumlab.empirics.executors import check_executor
    from momentumlab.theory.analyze import load_rule

    rule = load_rule(args.rule)
    params = _parse_params(args.params, rule.defaults)
    if not 2 <= args.grid <= _MAX_GRID:
        raise ValueError(f"--grid must be in 2..{_MAX_GRID}, got {args.grid}")
    if args.steps < 8:
        raise ValueError(f"--steps must be >= 8, got {args.steps}")
    for opt, rng, lo_min in (("--x-range", args.x_range, 0.0), ("--y-range", args.y_range, 0.0)):
        if rng is not None and not (math.isfinite(rng[0]) and math.isfinite(rng[1])
                                    and lo_min <= rng[0] < rng[1]):
            raise ValueError(f"{opt} needs {lo_min:g} <= LO < HI (finite), got {rng}")
    if args.y_range is not None and args.y_range[1] >= 1:
        raise ValueError(f"--y-range must lie in [0, 1) (symbolic parameters live there), "
                         f"got {args.y_range}")
    _check_path("--json", args.json)
    _check_path("--png", args.png)
    if args.executor is not None:
        check_executor(args.executor)
    resolve_device(args.device)
    return rule, params


def _cmd_analyze(args) -> int:
    from momentumlab.theory.analyze import NotAnalyzable, analyze

    try:
        rule, params = _validate(args)
    except (ValueError, TypeError) as exc:
        return _usage(str(exc))
    try:
        an = analyze(rule, params, args.symbolic)
    except NotAnalyzable as exc:
        print(f"{exc}")
        if args.json:
            Path(args.json).write_text(json.dumps({"rule": exc.rule, "refused": exc.reason},
                                                  indent=1) + "\n")
        return EXIT_REFUSED
    except (ValueError, TypeError) as exc:  # e.g. --symbolic names an unknown parameter
        return _usage(str(exc))
    names = [b.name for b in an.bindings]
    y = args.y if args.y is not None else (names[0] if names else "none")
    if y != "none" and y not in names:
        return _usage(f"--y must be a symbolic parameter ({', '.join(names) or 'none'}) or none, "
                      f"got {y!r}")
    out = an.summary()
    sw = None
    if not args.no_simulation:
        from momentumlab.empirics.executors import executor_from_spec

        spec = args.rule if ":" in args.rule else rule.name
        kw = dict(y_name=None if y == "none" else y, grid=args.grid, steps=args.steps,
                  x_range=args.x_range, y_range=args.y_range, device=args.device)
        if args.executor is None:
            sw = region(an, spec, **kw)
        else:
            with executor_from_spec(args.executor) as (executor, threads):
                sw = region(an, spec, executor=executor, threads=threads, **kw)
        out["simulation"] = _sweep_json(sw)
    _print(out, an, args.latex)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    if args.png and sw is not None:
        plot_region(sw, an, args.png)
    return EXIT_OK


# ------------------------------------------------------------------ simulation
def region_chunk(args: dict) -> dict:
    """Top-level (picklable) task: one row chunk of the region grid; returns ``iterate``'s arrays.

    ``args["rule"]`` is a rule spec (``FILE.py:NAME`` or a shipped name) resolved here, so
    that a worker process or a Dask worker loads the user's file itself.
    """
    import torch

    from momentumlab.empirics.backend import resolve_device
    from momentumlab.empirics.sweeps import LATE_STEP, _OPS2, iterate
    from momentumlab.theory.analyze import bind, load_rule
    from momentumlab.theory.ops import frozen_sqrt

    if args.get("threads") is not None:
        torch.set_num_threads(args["threads"])
    rule = load_rule(args["rule"]) if isinstance(args["rule"], str) else args["rule"]
    kw = dict(dtype=torch.float64, device=resolve_device(args["device"]))
    x = torch.as_tensor(np.asarray(args["x"], dtype=float), **kw)
    ys = None if args["y"] is None else torch.as_tensor(np.asarray(args["y"], dtype=float), **kw)
    w = torch.ones(1 if ys is None else len(ys), len(x), **kw)
    values = dict(args["values"])
    if ys is not None:
        values = bind(values, args["bindings"], {args["y_name"]: ys[:, None]})
    values["lr"] = x[None, :] * args["lr_scale"]
    ops = frozen_sqrt(_OPS2, 1.0) if args["frozen_sqrt"] else _OPS2
    state = dict(rule.init(w, ops))
    if args["counter"] is not None:
        state[args["counter"]] = LATE_STEP
    for (key, i), val in args["fixed_state"].items():
        full = torch.full_like(w, val)
        if i is None:
            state[key] = full
        else:
            t = list(state[key])
            t[i] = full
            state[key] = tuple(t)
    return iterate(rule, w, values, state, ops, args["steps"])


def _axes(an, y_name, grid, x_range, y_range):
    if y_range is None:
        y = None if y_name is None else np.linspace(0.0, 0.99, grid)
    else:
        y = np.linspace(*y_range, grid)
    if x_range is None:
        edge = an.traced_threshold(y_name, y if y is not None else None,
                                   x_max=max(4 * (an.threshold_value() or 10.0), 10.0))
        top = float(np.max(edge[np.isfinite(edge)])) if np.isfinite(edge).any() else 10.0
        x_range = (0.0, 1.5 * top)
    lo, hi = x_range
    x = np.linspace(lo, hi, grid + 1)[1:] if lo == 0 else np.linspace(lo, hi, grid)
    return x, y


def region(an, rule_spec, y_name=None, grid=64, steps=1000, x_range=None, y_range=None,
           device="cpu", executor=None, threads=None, chunk_cells=None):
    """Simulate ``an``'s rule over the ``(y, eta*lambda)`` grid; returns a :class:`Sweep`.

    ``rule_spec`` is what :func:`theory.analyze.load_rule` reads (or the Rule itself for
    in-process executors).  The symbolic side is ``an.analysis.stable`` / ``spectral_radius``.
    """
    import time

    import sympy as sp

    from momentumlab.empirics.backend import resolve_device
    from momentumlab.empirics.sweeps import KAPPA, Sweep, chunk_rows, classify, growth_rate, \
        join_chunks, run_chunks
    x, ys = _axes(an, y_name, grid, x_range, y_range)
    ny = 1 if ys is None else len(ys)
    point = {b.symbol: b.value for b in an.bindings}
    lr_scale = an.lr_scale()
    fixed_state = {k: float(sp.sympify(v).subs(point)) for k, v in an.fixed_state.items()}
    base = dict(rule=rule_spec, x=x, y_name=y_name, values=an.values, bindings=an.bindings,
                lr_scale=lr_scale, frozen_sqrt=an.frozen_sqrt, counter=an.counter,
                fixed_state=fixed_state, steps=steps, device=str(device))
    cpu = resolve_device(device).type == "cpu"
    rows = chunk_rows(ny, len(x), cpu, chunk_cells, own=executor is None)
    start = time.perf_counter()
    parts = run_chunks(region_chunk, [{**base, "y": None if ys is None else ys[r0:r0 + rows]}
                                      for r0 in range(0, ny, rows)], executor, threads, cpu)
    seconds = time.perf_counter() - start
    res = join_chunks(parts, steps)
    params = an.point() if ys is None else {**an.point(), y_name: ys[:, None]}
    sym = np.broadcast_to(an.analysis.stable(x[None, :], params), (ny, len(x)))
    rho = np.broadcast_to(an.analysis.spectral_radius(x[None, :], params), (ny, len(x)))
    with np.errstate(divide="ignore"):
        in_band = steps * np.abs(np.log(rho)) < KAPPA
    return Sweep(an.rule.name, x, y_name, ys, {k: v for k, v in an.point().items() if k != y_name},
                 steps, "frozen" if an.frozen_sqrt else "as written", classify(res),
                 growth_rate(res), np.array(sym), np.array(rho), in_band, seconds,
                 {"amp_last_quarter": res["amp"][3]})


def _sweep_json(sw) -> dict:
    return {"x": {"name": "eta_lambda", "values": sw.x.tolist()},
            "y": {"name": sw.y_name, "values": None if sw.y is None else sw.y.tolist()},
            "steps": sw.steps, "mode": sw.mode, "seconds": round(sw.seconds, 3),
            "agreement": sw.agreement,
            "simulated_converged_fraction": float((sw.outcome == 0).mean())}


# ------------------------------------------------------------------ output
def report(an) -> str:
    """The text report (what the command prints before the simulation summary)."""
    s = an.summary()
    lines = [f"rule {s['rule']}  [{s['source']}]",
             f"state z = {tuple(s['state'])}; symbolic: "
             f"{', '.join(f'{k} = {v}' for k, v in s['symbolic'].items()) or 'none'}",
             "assumptions:"] + [f"  - {a}" for a in s["assumptions"]]
    lines += [f"  - note: {n}" for n in s["notes"]]
    lines += [f"x = {s['x']}", "iteration matrix A:", f"  {s['iteration_matrix']}",
              f"characteristic polynomial p(mu) = {s['characteristic_polynomial']}",
              "Schur conditions (all > 0 <=> every root inside the unit circle):"]
    lines += [f"  [{c['crossing']}]  {c['condition']}   -- {c['role']}" for c in s["schur_conditions"]]
    if s["threshold"] is None:
        lines.append("threshold: no closed form; the boundary is traced numerically (see --png/--json)")
    else:
        lines.append(f"threshold: eta*lambda < {s['threshold']}   [{s['threshold_kind']}, status: "
                     f"{s['status']}] = {s['threshold_at_values']:.6g} at the values")
    if s["rod_flow_flip_threshold"] is not None:
        lines.append(f"rod-flow flip threshold det(I + A) = 0: eta*lambda = "
                     f"{s['rod_flow_flip_threshold']} = {s['rod_flow_flip_at_values']:.6g}")
    if s["eos_sharpness"] is not None:
        lines.append(f"edge-of-stability sharpness: S = {s['eos_sharpness']} = "
                     f"{s['eos_sharpness_at_values']:.6g} at lr = {s['hyperparameters']['lr']:g}")
    return "\n".join(lines)


def _print(out: dict, an, latex: bool) -> None:
    import sympy as sp

    print(report(an))
    sim = out.get("simulation")
    if sim is not None:
        a = sim["agreement"]
        frac = "n/a" if a["fraction"] is None else f"{100 * a['fraction']:.2f}%"
        print(f"simulation: {len(sim['x']['values'])} x "
              f"{1 if sim['y']['values'] is None else len(sim['y']['values'])} cells x "
              f"{sim['steps']} steps in {sim['seconds']:.2f} s; agreement with the Schur region "
              f"{frac} outside the undecidable band ({a['cells_compared']} cells, "
              f"{a['cells_in_band']} in the band)")
    if latex:
        print("LaTeX:")
        print(f"  A = {sp.latex(an.matrix)}")
        print(f"  p(\\mu) = {sp.latex(an.charpoly)}")
        for c in an.conditions:
            print(f"  {sp.latex(c.expr)} > 0 \\quad \\text{{({c.label})}}")
        if an.threshold is not None:
            print(f"  \\eta\\lambda < {sp.latex(an.analysis.threshold_display)}")


def plot_region(sw, an, path) -> None:
    """Simulated outcome per cell, Schur boundary (black), threshold curve (white dashed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import patheffects
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    fig, ax = plt.subplots(figsize=(9.0, 5.0), dpi=120)
    y = sw.y if sw.y is not None else np.array([0.0, 1.0])
    outcome = sw.outcome if sw.y is not None else np.vstack([sw.outcome, sw.outcome])
    ax.pcolormesh(sw.x, y, outcome, cmap=ListedColormap(_COLOURS), vmin=-0.5, vmax=2.5,
                  shading="nearest", rasterized=True)
    band = sw.in_band if sw.y is not None else np.vstack([sw.in_band, sw.in_band])
    ax.contourf(sw.x, y, band.astype(float), levels=[0.5, 1.5], colors="none", hatches=["////"])
    if sw.y is not None:
        xf, yf = np.linspace(sw.x[0], sw.x[-1], 4 * len(sw.x)), np.linspace(y[0], y[-1], 4 * len(y))
        stable = np.broadcast_to(an.analysis.stable(xf[None, :], {**an.point(), sw.y_name: yf[:, None]}),
                                 (len(yf), len(xf)))
        ax.contour(xf, yf, stable.astype(float), levels=[0.5], colors="k", linewidths=1.6)
        yy = np.linspace(y[0], y[-1], 300)
        if an.threshold is not None:
            params = {**an.point(), sw.y_name: yy}
            xx = np.array([an.analysis.threshold_value({**params, sw.y_name: v}) for v in yy])
            label = f"threshold ({an.threshold_kind}, {an.status})"
        else:
            xx = an.traced_threshold(sw.y_name, yy, x_max=sw.x[-1] * 4)
            label = "traced boundary"
        ax.plot(xx, yy, color="w", ls="--", lw=1.2, label=label,
                path_effects=[patheffects.withStroke(linewidth=2.6, foreground="k")])
    elif an.threshold is not None:
        v = an.threshold_value()
        ax.axvline(v, color="k", ls="--", lw=1.3, label=f"threshold {v:.4g}")
    ax.set_xlim(sw.x[0], sw.x[-1])
    ax.set_ylim(y[0], y[-1])
    pre = " (preconditioned: eigenvalue of $P^{-1}H$, frozen $P$)" if an.frozen_sqrt else ""
    ax.set_xlabel(r"$\eta\lambda$" + pre)
    ax.set_ylabel(rf"${sp.latex(sp.Symbol(sw.y_name))}$" if sw.y_name else "(no symbolic parameter)")
    if sw.y is None:
        ax.set_yticks([])
    a = sw.agreement
    frac = "n/a" if a["fraction"] is None else f"{100 * a['fraction']:.2f}%"
    thr = (rf"$\eta\lambda < {sp.latex(an.threshold)}$" if an.threshold is not None
           else "threshold traced numerically")
    ax.set_title(f"analyze {an.rule.name}: simulated outcome over {sw.steps} steps\n"
                 f"black: Schur boundary; hatched: undecidable band; agreement outside it {frac}\n"
                 f"{thr}", fontsize=8)
    handles = [Patch(color=c, label=l) for c, l in zip(_COLOURS, ("converged", "bounded", "diverged"))]
    handles.append(Patch(facecolor="none", hatch="////", label="band: steps|ln rho| < 24"))
    h2, _ = ax.get_legend_handles_labels()
    ax.legend(handles=handles + h2, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
