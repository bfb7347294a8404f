"""``momentumlab rodflow``: discrete optimizer, rod, central and stable flow raced side by side.

``momentumlab rodflow --optimizer NAME --model toy:NAME|mlp|cnn [--lr LR] [--steps T]
[--flows discrete,rod,central,stable] [--central-sdcp auto|sdcp|one] [--seed S] [--json PATH]
[--png PATH] [--device D] [--quick]``

Runs :func:`empirics.flows.race`, shows a progress bar, prints the error table (mean iterate
error over all steps, over the second half and after the discrete onset; onset steps; cost
per step as a ratio to the discrete step) and writes the trace (JSON) and a four-panel figure.
Exit status 0, or 2 on bad usage (before any work; unknown names list the known ones).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

__all__ = ["add_subcommand", "DEFAULT_LR", "run", "plot_race"]

EXIT_OK, EXIT_USAGE = 0, 2

from momentumlab.empirics.flows import NETWORK_DEFAULT_LR as DEFAULT_LR  # noqa: E402
NETWORK_STEPS = {"quick": 150, "full": 1000}


def add_subcommand(subparsers) -> None:
    """Add ``rodflow`` to the ``momentumlab`` parser."""
    p = subparsers.add_parser("rodflow", help="race the discrete optimizer against rod, central "
                              "and stable flow; errors, onset, cost and a figure")
    p.add_argument("--optimizer", default="gd", help="gd, heavy_ball, nesterov, scalar_rmsprop, "
                   "rmsprop, scalar_adam, adam, scalar_nadam, nadam, vradam, tam (default gd)")
    p.add_argument("--model", default="toy:minimal",
                   help="toy:minimal|toy:codim2|toy:quartic_valley|mlp|cnn (default toy:minimal)")
    p.add_argument("--lr", type=float, help="step size (default: 0.3 on toys, per optimizer on networks)")
    p.add_argument("--steps", type=int, help="optimizer steps (default per model; --quick smaller)")
    p.add_argument("--flows", default="discrete,rod,central,stable", help="comma-separated subset")
    p.add_argument("--central-sdcp", default="auto", metavar="MODE",
                   help="central flow's covariance: auto (SDCP by cvxpy when two or more "
                        "eigenvalues are critical, else the one-eigenvalue closed form), sdcp "
                        "(always cvxpy), one (closed form on the top eigenvalue) (default auto)")
    p.add_argument("--seed", type=int, default=0, help="network initialisation seed (default 0)")
    p.add_argument("--quick", action="store_true", help="small sizes (seconds)")
    p.add_argument("--json", metavar="PATH", help="write the summary and traces")
    p.add_argument("--png", metavar="PATH", help="write the four-panel figure")
    p.add_argument("--device", default="cpu", help="auto|cpu|cuda (default cpu)")
    p.set_defaults(func=_cmd)


def _usage(msg: str) -> int:
    print(f"momentumlab rodflow: error: {msg}", file=sys.stderr)
    return EXIT_USAGE


def _validate(args):
    from momentumlab.empirics.backend import resolve_device
    from momentumlab.empirics.flows import FLOWS, NETWORKS, TOYS
    from momentumlab.theory.rod_flow import SPACES

    if args.optimizer not in SPACES:
        return f"unknown optimizer {args.optimizer!r}; known: {', '.join(SPACES)}"
    models = [f"toy:{t}" for t in TOYS] + list(NETWORKS)
    if args.model not in models:
        return f"unknown model {args.model!r}; known: {', '.join(models)}"
    flows = [f.strip() for f in args.flows.split(",") if f.strip()]
    bad = [f for f in flows if f not in FLOWS]
    if bad or "discrete" not in flows:
        return f"--flows must be a comma-separated subset of {', '.join(FLOWS)} including discrete"
    from momentumlab.empirics.central_flow_sdcp import SDCP_MODES, cvxpy_available

    if args.central_sdcp not in SDCP_MODES:
        return f"--central-sdcp must be one of {', '.join(SDCP_MODES)}, got {args.central_sdcp!r}"
    if args.central_sdcp == "sdcp" and "central" in flows and not cvxpy_available():
        return "--central-sdcp sdcp needs cvxpy: pip install 'momentumlab[sdcp]'"
    if args.lr is not None and not (args.lr > 0 and args.lr < 1e3):
        return "--lr must be in (0, 1000)"
    if args.steps is not None and not 1 <= args.steps <= 10**6:
        return "--steps must be in [1, 1000000]"
    for opt in ("json", "png"):
        path = getattr(args, opt)
        if path is not None and not Path(path).resolve().parent.is_dir():
            return f"--{opt}: directory of {path!r} does not exist"
    try:
        resolve_device(args.device)
    except ValueError as exc:
        return str(exc)
    args.flow_list = tuple(flows)
    return None


def setup(args):
    """``(loss_fn, w0, steps, lr, device)`` for validated ``args``."""
    from momentumlab.empirics.backend import resolve_device
    from momentumlab.empirics.flows import network, toy

    device = resolve_device(args.device)
    if args.model.startswith("toy:"):
        loss_fn, w0, steps = toy(args.model[4:], quick=args.quick)
        lr = args.lr or 0.3
    else:
        n, width = (64, 8) if args.quick else (500, 32)  # quick: the sizes of NETWORK_DEFAULT_LR
        loss_fn, w0 = network(args.model, n=n, width=width, seeds=(args.seed,), device=device)
        steps = NETWORK_STEPS["quick" if args.quick else "full"]
        lr = args.lr or DEFAULT_LR[args.optimizer]
    return loss_fn, w0.to(device), args.steps or steps, lr, device


def run(args, progress=None):
    """The race for validated ``args``; returns ``(race, summary, settings)``."""
    import torch

    from momentumlab.empirics.flows import race

    loss_fn, w0, steps, lr, device = setup(args)
    torch.set_num_threads(1)
    r = race(loss_fn, w0, args.optimizer, {"lr": lr}, steps, flows=args.flow_list,
             sharpness_every=1 if w0.shape[-1] <= 64 else 10, central_sdcp=args.central_sdcp,
             device=device, progress=progress)
    settings = {"optimizer": args.optimizer, "model": args.model, "lr": lr, "steps": steps,
                "flows": list(r.flows), "quick": bool(args.quick), "seed": args.seed,
                "central_sdcp": args.central_sdcp}
    return r, r.summary(), settings


def _cmd(args) -> int:
    msg = _validate(args)
    if msg:
        return _usage(msg)
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    err = Console(stderr=True)
    with Progress(TextColumn("rodflow {task.description}"), BarColumn(),
                  TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                  console=err) as bar:
        task = bar.add_task(f"{args.optimizer} on {args.model}", total=setup(args)[2])
        r, summary, settings = run(args, progress=lambda t: bar.update(task, completed=t))
    table = Table(title=f"{args.optimizer} on {args.model}, lr {settings['lr']:g}, "
                        f"{settings['steps']} steps: mean ||w_t - w_hat_t||")
    for col in ("flow", "all steps", "second half", "after onset", "gradients/step",
                "HVPs/step", "time / discrete"):
        table.add_column(col, justify="right")
    for f in r.flows:
        c = summary["costs"][f]
        e = (summary["error_all"].get(f, [float("nan")])[0],
             summary["error_second_half"].get(f, [float("nan")])[0],
             (summary["error_after_onset"].get(f) or [None])[0])
        table.add_row(f, *(("-" if x is None else f"{x:.4g}") for x in e),
                      f"{c['gradients_per_step']:.1f}", f"{c['hvps_per_step']:.1f}",
                      f"{c['time_ratio']:.1f}")
    Console(width=110).print(table)
    print(f"threshold eta*lambda = {summary['threshold_eta_lambda']:.4g}; sharpness crossing at "
          f"step {summary['sharpness_crossing'][0]}; onset (oscillation > "
          f"{summary['onset_level']:g}): " + ", ".join(f"{k} {v[0]}" for k, v in summary["onset"].items()))
    for note in r.notes:
        print(f"note: {note}")
    if args.json:
        Path(args.json).write_text(json.dumps({"settings": settings, "summary": summary,
                                               "trace": _trace(r)}, indent=1) + "\n")
    if args.png:
        plot_race(r, args.png, title=f"{args.optimizer} on {args.model}, lr {settings['lr']:g}")
    return EXIT_OK


def _trace(r) -> dict:
    import numpy as np

    def clean(a):
        return [None if not np.isfinite(x) else float(x) for x in np.asarray(a).reshape(-1)]

    out = {"error": {f: clean(e[:, 0]) for f, e in r.error.items()},
           "loss": {f: clean(v[:, 0]) for f, v in r.loss.items()},
           "eta_sharpness": clean(r.sharpness[:, 0])}
    return out


def plot_race(r, path, title=""):
    """Projection of the iterates, distance to the discrete iterates, sharpness, loss."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    T = r.steps
    t = np.arange(T + 1)
    wd = r.iterates["discrete"][:T + 1, 0]
    osc = wd[2:] - 2 * wd[1:-1] + wd[:-2]
    u = np.linalg.svd(osc - osc.mean(0), full_matrices=False)[2][0] if osc.shape[1] > 1 else np.ones(1)
    colors = {"discrete": "k", "rod": "tab:red", "central": "tab:blue", "stable": "tab:green"}
    fig, ax = plt.subplots(2, 2, figsize=(12, 8))
    for f in sorted(r.flows, key=lambda f: f == "discrete"):  # discrete drawn last, on top
        proj = r.iterates[f][:T + 1, 0] @ u
        ax[0, 0].plot(t, proj, color=colors[f], lw=0.6 if f == "discrete" else 1.0, label=f,
                      alpha=0.8)
    ax[0, 0].set_title("iterates projected on the oscillation direction")
    ax[0, 0].set_xlabel("step")
    for f, e in r.error.items():
        ax[0, 1].semilogy(t, np.maximum(e[:, 0], 1e-16), color=colors[f], label=f)
    ax[0, 1].set_title("distance to the discrete iterates ||w_t - w_hat_t||")
    ax[0, 1].set_xlabel("step")
    ok = np.isfinite(r.sharpness[:, 0])
    ax[1, 0].plot(t[ok], r.sharpness[ok, 0], "k.-", ms=2, lw=0.8, label="eta * lambda_max(P^-1 H)")
    ax[1, 0].axhline(r.threshold, color="tab:red", ls="--", label=f"threshold {r.threshold:.4g}")
    ax[1, 0].set_title("(preconditioned) sharpness of the discrete iterate vs threshold")
    ax[1, 0].set_xlabel("step")
    for f, v in r.loss.items():
        ax[1, 1].plot(t, v[:, 0], color=colors[f], lw=0.6 if f == "discrete" else 1.2,
                      label=f + ("" if f == "discrete" else " (prediction)"))
    ax[1, 1].set_title("loss and each flow's prediction")
    ax[1, 1].set_xlabel("step")
    for a in ax.flat:
        a.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
