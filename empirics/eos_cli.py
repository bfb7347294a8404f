"""``momentumlab eos``: full-batch training at the edge of stability, sharpness tracked.

``momentumlab eos --optimizer gd|heavy_ball|adam|vradam [--lr LR] [--steps T] [--quick]
[--n N] [--width W] [--eig-every K] [--beta3 B3] [--seed S] [--json PATH] [--png PATH] [--device D]``

Trains the tanh MLP of :mod:`empirics.eos` on digits (MSE, float64), prints the
median late ``eta_t * S_t`` against the threshold of :mod:`theory.eos`, and writes
the trace (JSON) and the sharpness/threshold figure (PNG).  Default sizes are the
full run (n = 1000, 4000 steps); ``--quick`` uses the sizes of ``verify --quick``.
Exit status 0, or 2 on bad usage (an unknown optimizer lists the known ones).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

__all__ = ["add_subcommand"]

EXIT_OK, EXIT_USAGE = 0, 2


def add_subcommand(subparsers) -> None:
    """Add the ``eos`` subcommand to the ``momentumlab`` parser."""
    p = subparsers.add_parser("eos", help="edge of stability on a real network: sharpness vs "
                              "threshold over full-batch training")
    p.add_argument("--optimizer", required=True, help="gd, heavy_ball, adam, vradam")
    p.add_argument("--lr", type=float, help="step size (VRAdam: alpha0); default per optimizer")
    p.add_argument("--steps", type=int, help="training steps (default 4000; --quick: 500-800)")
    p.add_argument("--quick", action="store_true", help="the small sizes of verify --quick")
    p.add_argument("--n", type=int, help="digits used (default 1000; --quick 500)")
    p.add_argument("--width", type=int, default=32, help="hidden width (default 32)")
    p.add_argument("--eig-every", type=int, help="steps between sharpness evaluations")
    p.add_argument("--beta3", type=float, default=1.0, help="VRAdam velocity penalty (default 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", metavar="PATH", help="write the trace and summary")
    p.add_argument("--png", metavar="PATH", help="sharpness and threshold over time")
    p.add_argument("--device", default="auto", help="auto|cpu|cuda (default auto)")
    p.set_defaults(func=_cmd_eos)


def _usage(msg: str) -> int:
    print(f"momentumlab eos: error: {msg}", file=sys.stderr)
    return EXIT_USAGE


def _cmd_eos(args) -> int:
    from momentumlab.empirics.backend import resolve_device
    from momentumlab.empirics.eos import OPTIMIZERS, plot_eos, run_eos, settings

    if args.optimizer not in OPTIMIZERS:
        return _usage(f"unknown optimizer {args.optimizer!r}; known: {', '.join(OPTIMIZERS)}")
    try:
        device = resolve_device(args.device)
    except ValueError as exc:
        return _usage(str(exc))
    kw = {k: v for k, v in (("n", args.n), ("eig_every", args.eig_every)) if v is not None}
    if args.lr is not None and not args.lr > 0:
        return _usage("--lr must be positive")
    s = settings(args.optimizer, quick=args.quick, lr=args.lr, steps=args.steps,
                 width=args.width, beta3=args.beta3, **kw)
    run = run_eos(s, device, args.seed)
    summary = run.summary()
    print(f"{s.optimizer}: lr {s.lr:g}, {len(run.loss)} steps, {run.seconds:.1f} s; "
          f"median eta_t*S over {summary['window']}: {summary['measured_eta_times_S']:.4g} "
          f"vs predicted {summary['predicted_eta_times_S']:.4g} "
          f"({'within' if summary['hovers'] else 'NOT within'} 10%)")
    if args.json:
        Path(args.json).write_text(json.dumps(run.to_json(), indent=1) + "\n")
    if args.png:
        plot_eos(run, args.png)
    return EXIT_OK
