"""``momentumlab explore stability``: simulated stability regions beside the symbolic ones.

``momentumlab explore stability --optimizer NAME [--x eta_lambda] [--y beta] [--grid N]
[--steps T] [--png PATH] [--json PATH] [--device auto|cpu|cuda] [--mode frozen|running]``
and every hyperparameter of the optimizer as an option (``--beta2 0.999``,
``--alpha1 10`` ...; paper defaults).  The grid is simulated with
:func:`empirics.sweeps.sweep` (the rule of :mod:`theory.rules`, batched) and
compared with the Schur conditions of :mod:`theory.stability`.
Exit status 0, or 2 on bad usage (an unknown optimizer lists the known ones).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from momentumlab.empirics.executors import executor_arg

import numpy as np

__all__ = ["add_subcommand", "run_stability", "stability_report", "plot_stability", "TARGETS"]

TARGETS = ("stability",)
EXIT_OK, EXIT_USAGE = 0, 2
_COLOURS = ("#3b8f4e", "#f2b134", "#c0392b")  # converged, bounded, diverged
#: flags are lower-case words: a hyperparameter whose name is not gets a flag of its own
_FLAGS = {"G": "gate-g"}


def _all_params() -> dict:
    from momentumlab.theory.stability import MODELS, get_model

    get_model("gd")  # registers the late models
    out = {}
    for m in MODELS.values():
        for p in m.params:
            out.setdefault(p.name, p)
    return out


def add_subcommand(subparsers) -> None:
    """Add ``explore`` (positional target ``stability``) to the ``momentumlab`` parser."""
    from momentumlab.empirics.cliargs import integer, output_path, real

    ex = subparsers.add_parser("explore", help="explore stability regions: simulation vs symbolic")
    ex.add_argument("target", choices=TARGETS, help="what to explore: stability")
    ex.add_argument("--optimizer", required=True, help="gd, heavy_ball, ema_momentum, nesterov, "
                    "nadam, rmsprop, adam, vradam, tam")
    ex.add_argument("--x", default="eta_lambda", help="x axis (eta_lambda: eta times the "
                    "(preconditioned) curvature)")
    ex.add_argument("--y", default=None, help="y axis: a hyperparameter of the optimizer, or "
                    "'none' (default: beta when the optimizer has one)")
    ex.add_argument("--grid", type=integer(2), default=256, help="cells per axis (default 256)")
    ex.add_argument("--steps", type=integer(8), default=1000, help="simulated steps (default 1000)")
    ex.add_argument("--x-range", type=float, nargs=2, metavar=("LO", "HI"))
    ex.add_argument("--y-range", type=float, nargs=2, metavar=("LO", "HI"))
    ex.add_argument("--mode", default="frozen", choices=("frozen", "running"), help="frozen (the analysed map: frozen "
                    "preconditioner, fixed TAM damping) or running (the rule as written)")
    ex.add_argument("--png", metavar="PATH", type=output_path, help="heat map with the symbolic boundary")
    ex.add_argument("--json", metavar="PATH", type=output_path, help="grid, conditions, threshold, agreement")
    ex.add_argument("--device", default="auto", help="auto|cpu|cuda (default auto)")
    ex.add_argument("--executor", default=None, type=executor_arg, help="where the row chunks run: local, threads, "
                    "processes or dask:ADDRESS (default: in-process thread pool)")
    for name, p in _all_params().items():
        ex.add_argument(f"--{_FLAGS.get(name, name)}", dest=name, type=real(), default=None,
                        help=f"{p.doc} (default: the optimizer's, e.g. {p.default:g})")
    ex.set_defaults(func=_cmd_explore)


def _usage(msg: str) -> int:
    print(f"momentumlab explore: error: {msg}", file=sys.stderr)
    return EXIT_USAGE


def _cmd_explore(args) -> int:
    if args.target not in TARGETS:
        return _usage(f"unknown target {args.target!r}; known: {', '.join(TARGETS)}")
    return run_stability(args)


def run_stability(args) -> int:
    """The ``stability`` target: validate, sweep, write PNG/JSON, print a summary."""
    from momentumlab.empirics.backend import resolve_device
    from momentumlab.empirics.cliargs import UsageError
    from momentumlab.empirics.executors import use_executor

    try:
        model, y, fixed = validate(args)
        device = resolve_device(args.device)
    except UsageError as exc:
        return _usage(str(exc))
    except ValueError as exc:
        return _usage(f"argument --device: {exc}")
    with use_executor(args.executor) as (executor, threads):
        report, sw = stability_report(model.name, y, args.grid, args.steps, fixed, device,
                                      args.mode, args.x_range, args.y_range,
                                      None if args.executor is None else executor, threads)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
    if args.png:
        plot_stability(sw, report, args.png)
    a = report["agreement"]
    frac = "n/a" if a["fraction"] is None else f"{100 * a['fraction']:.2f}%"
    print(f"{model.name}: threshold eta*lambda < {report['threshold']}; {sw.outcome.size} cells x "
          f"{args.steps} steps in {sw.seconds:.2f} s on {device}; agreement {frac} outside the "
          f"band ({a['cells_compared']} cells), {100 * a['fraction_all_cells']:.2f}% overall")
    return EXIT_OK


#: bytes per grid cell a sweep and its report hold at once (state, window maxima, labels, the
#: finer symbolic grid of the figure): a generous estimate, to refuse grids that cannot fit
BYTES_PER_CELL = 512
_DOMAIN_TEST = {
    "unit": (lambda v: 0 <= v < 1, "[0, 1)"),
    "unit_right": (lambda v: 0 < v <= 1, "(0, 1]"),
    "nonneg": (lambda v: v >= 0, "[0, inf)"),
}


def _in_domain(param, value) -> bool:
    ok, _ = _DOMAIN_TEST[param.domain]
    return bool(np.isfinite(value)) and ok(value)


def _available_memory() -> float:
    try:
        import os

        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES"))
    except (AttributeError, ValueError, OSError):  # not Linux: assume 8 GiB
        return 8.0 * 2**30


def ignored_parameters(optimizer: str, mode: str, names=None) -> list[str]:
    """Hyperparameters that the simulation in ``mode`` never reads.

    Found by running the rule, batched, for 64 steps on eight values of eta*lambda with the
    parameter at both ends of its explorer range: a parameter is ignored when every iterate
    is identical (e.g. ``beta2`` under a frozen preconditioner, TAM's fixed damping ``d`` in
    running mode, VRAdam's frozen gate ``G`` while the simulated gate is live).
    """
    from momentumlab.empirics.sweeps import simulate
    from momentumlab.theory.stability import get_model

    model = get_model(optimizer)
    lo, hi = model.x_range
    x = np.linspace(lo, hi, 9)[1:]
    out = []
    for p in model.params:
        if names is not None and p.name not in names:
            continue
        a, b = p.range
        amp = simulate(optimizer, x, p.name, np.array([a, b]), steps=64, mode=mode)["amp"]
        if np.array_equal(amp[:, 0], amp[:, 1]):
            out.append(p.name)
    return out


def validate(args):
    """Check every argument of ``explore stability`` before work: ``(model, y, fixed)``.

    Raises :class:`~momentumlab.empirics.cliargs.UsageError` with a one-line message naming the
    argument and its allowed range.
    """
    from momentumlab.empirics.cliargs import UsageError
    from momentumlab.theory.stability import MODELS, get_model

    try:
        model = get_model(args.optimizer)
    except KeyError:
        raise UsageError(f"argument --optimizer: unknown optimizer {args.optimizer!r}; known: "
                         f"{', '.join(MODELS)}") from None
    if args.x != "eta_lambda":
        raise UsageError(f"argument --x: must be eta_lambda (the threshold variable), got {args.x!r}")
    if args.mode not in model.modes:
        raise UsageError(f"argument --mode: {model.name} takes one of {', '.join(model.modes)}, "
                         f"got {args.mode!r}")
    names = list(model.defaults())
    y = args.y if args.y is not None else (model.y_default or "none")
    if y != "none" and y not in names:
        raise UsageError(f"argument --y: {model.name} has no hyperparameter {y!r}; --y takes one "
                         f"of: {', '.join(names) or '(none)'} or none")
    y = None if y == "none" else y
    fixed = {}
    for name in _all_params():
        val = getattr(args, name, None)
        if val is None:
            continue
        if name not in names:
            raise UsageError(f"argument --{name}: not a hyperparameter of {model.name}; its "
                             f"hyperparameters: {', '.join(names) or '(none)'}")
        param = model.param(name)
        if name == y:
            raise UsageError(f"argument --{name}: {name} is the y axis; set its span with "
                             f"--y-range LO HI (within {_DOMAIN_TEST[param.domain][1]})")
        if not _in_domain(param, val):
            raise UsageError(f"argument --{name}: must be in {_DOMAIN_TEST[param.domain][1]}, "
                             f"got {val:g}")
        fixed[name] = val
    if args.x_range is not None:
        lo, hi = args.x_range
        if not (np.isfinite(lo) and np.isfinite(hi) and 0 <= lo < hi):
            raise UsageError(f"argument --x-range: needs 0 <= LO < HI (finite), got {lo:g} {hi:g}")
    if args.y_range is not None:
        if y is None:
            raise UsageError("argument --y-range: there is no y axis (--y none)")
        lo, hi = args.y_range
        param = model.param(y)
        if not (lo < hi and _in_domain(param, lo) and _in_domain(param, hi)):
            raise UsageError(f"argument --y-range: needs LO < HI, both in "
                             f"{_DOMAIN_TEST[param.domain][1]} ({y}), got {lo:g} {hi:g}")
    need = args.grid ** (1 if y is None else 2) * BYTES_PER_CELL
    if need > 0.5 * _available_memory():
        raise UsageError(f"argument --grid: {args.grid} needs about {need / 2**30:.1f} GiB, more "
                         f"than half the {_available_memory() / 2**30:.1f} GiB available; use a "
                         f"smaller grid")
    if y is not None and y in ignored_parameters(model.name, args.mode, [y]):
        raise UsageError(f"argument --y: {args.mode} mode of {model.name} never reads {y!r} "
                         f"(every iterate is the same for any value); choose another axis or mode")
    return model, y, fixed


def _axes(model, y, grid, x_range, y_range):
    lo, hi = x_range or model.x_range
    if model.gate and x_range is None:  # VRAdam: B(beta1) ... B(beta1)(1 + alpha1) spans a decade
        x = np.geomspace(hi / 100, hi, grid)
    else:
        x = np.linspace(lo, hi, grid + 1)[1:] if lo == 0 else np.linspace(lo, hi, grid)
    if y is None:
        return x, None
    return x, np.linspace(*(y_range or model.param(y).range), grid)


def stability_report(optimizer: str, y: str | None = "beta", grid: int = 64, steps: int = 1000,
                     fixed=None, device="cpu", mode="frozen", x_range=None, y_range=None,
                     executor=None, threads=None):
    """Sweep the grid and build the explorer's JSON report; returns ``(report, sweep)``."""
    import sympy as sp

    from momentumlab.empirics.sweeps import sweep
    from momentumlab.theory.stability import analyse, display_form, get_model

    model = get_model(optimizer)
    an = analyse(optimizer)
    x, ys = _axes(model, y, grid, x_range, y_range)
    sw = sweep(optimizer, x, y, ys, fixed=fixed, steps=steps, device=device, mode=mode,
               executor=executor, threads=threads)
    hyper = {**model.defaults(), **(fixed or {})}
    if y is not None:
        hyper.pop(y)
    report = {
        "optimizer": optimizer,
        "rule": model.rule,
        "hyperparameters": hyper,
        "mode": mode,
        "mode_meaning": model.modes[mode],
        "threshold": None if an.threshold is None else str(an.threshold_display),
        "threshold_sympy": None if an.threshold is None else sp.sstr(an.threshold),
        "conditions": an.condition_strings(),
        "condition_labels": [c.label for c in an.conditions],
        "assumptions": list(model.assumptions),
        "x": {"name": "eta_lambda", "values": x.tolist()},
        "y": {"name": y, "values": None if ys is None else ys.tolist()},
        "symbolic_stable": sw.symbolic_stable.tolist(),
        "simulated": sw.labels(),
        "agreement": sw.agreement,
        "steps": steps,
        "device": str(device),
        "seconds": round(sw.seconds, 3),
    }
    if model.gate:  # VRAdam: no gate value helps beyond the saturated threshold
        sat = an.threshold.subs(model.param("G").symbol, model.param("alpha1").symbol)
        report["divergence_threshold"] = str(display_form(sat, {p.symbol: p.default
                                                                for p in model.params}))
    return report, sw


#: how figures name the optimizers and their hyperparameters (mathtext)
DISPLAY_NAMES = {"gd": "gradient descent", "heavy_ball": "heavy ball", "ema_momentum": "EMA momentum",
                 "nesterov": "Nesterov", "nadam": "NAdam", "rmsprop": "RMSprop", "adam": "Adam",
                 "vradam": "VRAdam", "tam": "TAM"}


def tex(expr) -> str:
    """``expr`` (sympy) as mathtext, e.g. ``\\min(\\alpha_1, \\beta_3\\|v\\|^2)``."""
    import sympy as sp

    names = {s: r"\|v\|" for s in expr.free_symbols if s.name == "||v||"}
    return sp.latex(expr, symbol_names=names)


def _symbol_tex(name: str) -> str:
    import sympy as sp

    return f"${sp.latex(sp.Symbol(name))}$"


def _boundary_curves(sw, an, model):
    """Threshold curves x*(y) to draw: the closed form and, for VRAdam, the saturation line."""
    import sympy as sp

    curves = []
    if an.threshold is None:
        return curves
    vals = {**model.defaults(), **sw.fixed}
    gate = model.param("G").symbol if model.gate else None
    forms = [("symbolic threshold", an.threshold)]
    if gate is not None:
        forms = [(r"threshold at the minimum ($G = 0$): $B(\beta_1)$", an.threshold.subs(gate, 0)),
                 (r"gate saturated ($G = \alpha_1$): $B(\beta_1)(1 + \alpha_1)$",
                  an.threshold.subs(gate, model.param("alpha1").symbol))]
    for label, expr in forms:
        subs = {p.symbol: vals[p.name] for p in model.params if p.name != sw.y_name}
        f = sp.lambdify([sp.Symbol(sw.y_name, real=True)] if sw.y_name else [],
                        expr.subs(subs), "numpy")
        yy = np.linspace(sw.y[0], sw.y[-1], 400) if sw.y is not None else None
        xx = np.broadcast_to(f(yy) if yy is not None else f(), (400,) if yy is not None else ())
        curves.append((label, xx, yy))
    return curves


def plot_stability(sw, report: dict, path=None):
    """Heat map of the simulated outcome with the symbolic region's boundary drawn over it.

    Returns the :class:`matplotlib.figure.Figure` (a notebook displays it); writes it to
    ``path`` only when one is given.  No backend is selected and pyplot's state is untouched.
    """
    from matplotlib import patheffects, ticker
    from matplotlib.colors import ListedColormap
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    from momentumlab.theory.stability import analyse, get_model

    model, an = get_model(sw.optimizer), analyse(sw.optimizer)
    fig = Figure(figsize=(9.0, 4.8), dpi=120, layout="constrained")
    ax = fig.add_subplot()
    x = sw.x
    geometric = len(x) > 2 and x[0] > 0 and bool(np.allclose(x[1:] / x[:-1], x[1] / x[0]))
    y = sw.y if sw.y is not None else np.array([0.0, 1.0])
    outcome = sw.outcome if sw.y is not None else np.vstack([sw.outcome, sw.outcome])
    ax.pcolormesh(x, y, outcome, cmap=ListedColormap(_COLOURS), vmin=-0.5, vmax=2.5,
                  shading="nearest", rasterized=True)
    if sw.y is not None:  # the Schur region itself, evaluated on a finer grid
        xf = (np.geomspace if geometric else np.linspace)(x[0], x[-1], 4 * len(x))
        yf = np.linspace(y[0], y[-1], 4 * len(y))
        params = {**sw.fixed, sw.y_name: yf[:, None]}
        stable = np.broadcast_to(an.stable(xf[None, :], params), (len(yf), len(xf)))
        ax.contour(xf, yf, stable.astype(float), levels=[0.5], colors="k", linewidths=1.6)
    styles = iter(["--", ":"])
    for label, xx, yy in _boundary_curves(sw, an, model):
        if yy is None:
            ax.axvline(float(xx), color="k", ls=next(styles), lw=1.3, label=f"{label}: {float(xx):.4g}")
        else:
            ax.plot(xx, yy, color="w", ls=next(styles), lw=1.4, label=label,
                    path_effects=[patheffects.withStroke(linewidth=2.8, foreground="k")])
    if geometric:  # VRAdam's grid: log axis with plain-number ticks
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(ticker.NullFormatter())
    ax.set_xlim(x[0], x[-1])
    ax.set_ylim(y[0], y[-1])
    pre = r" (eigenvalue of $P^{-1}H$)" if model.preconditioned else ""
    ax.set_xlabel(r"$\eta\lambda$" + pre)
    ax.set_ylabel(_symbol_tex(sw.y_name) if sw.y_name else "(no second parameter)")
    if sw.y is None:
        ax.set_yticks([])
    a = report["agreement"]
    frac = "n/a" if a["fraction"] is None else f"{100 * a['fraction']:.1f}%"
    threshold = "" if an.threshold is None else rf"stable iff $0 < \eta\lambda < {tex(an.threshold_display)}$; "
    ax.set_title(f"{DISPLAY_NAMES.get(sw.optimizer, sw.optimizer)} ({sw.mode}), {sw.steps} steps: "
                 f"simulated outcome, Schur boundary in black\n{threshold}agreement outside the "
                 f"undecided band {frac}", fontsize=10)
    handles = [Patch(color=c, label=l) for c, l in zip(_COLOURS, ("converged", "bounded",
                                                                  "diverged"))]
    h2, l2 = ax.get_legend_handles_labels()
    ax.legend(handles=handles + h2, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    if path is not None:
        fig.savefig(path)
    return fig
