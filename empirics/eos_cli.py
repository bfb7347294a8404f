"""``momentumlab eos``: full-batch training at the edge of stability, sharpness tracked.

``momentumlab eos --optimizer gd|heavy_ball|adam|vradam [--lr LR] [--steps T] [--quick]
[--n N] [--width W] [--eig-every K] [--beta3 B3] [--seed S] [--json PATH] [--png PATH] [--device D]``

Trains the tanh MLP of :mod:`empirics.eos` on digits (MSE, float64), prints the
median late ``eta_t * S_t`` against the threshold of :mod:`theory.eos`, and writes
the trace (JSON) and the sharpness/threshold figure (PNG).  Default sizes are the
full run (n = 1000, 4000 steps); ``--quick`` uses the sizes of ``verify --quick``.
Exit status 0; 1 when the run diverged (the loss became non-finite: the step is printed and
the figure marks it); 2 on bad usage (one line naming the argument and its allowed range).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

__all__ = ["add_subcommand"]

EXIT_OK, EXIT_USAGE = 0, 2


def add_subcommand(subparsers) -> None:
    """Add the ``eos`` subcommand to the ``momentumlab`` parser."""
    from momentumlab.empirics.cliargs import integer, output_path, real
    from momentumlab.empirics.eos import OPTIMIZERS

    p = subparsers.add_parser("eos", help="edge of stability on a real network: sharpness vs "
                              "threshold over full-batch training")
    p.add_argument("--optimizer", required=True, choices=OPTIMIZERS, help=", ".join(OPTIMIZERS))
    p.add_argument("--lr", type=real(0, lo_open=True), help="step size (VRAdam: alpha0); default "
                   "per optimizer")
    p.add_argument("--steps", type=integer(MIN_STEPS), help="training steps (default 4000; "
                   "--quick: 500-800)")
    p.add_argument("--quick", action="store_true", help="the small sizes of verify --quick")
    p.add_argument("--n", type=integer(10, DIGITS), help=f"digits used, 10..{DIGITS} "
                   "(default 1000; --quick 500)")
    p.add_argument("--width", type=integer(1, 4096), default=32, help="hidden width (default 32)")
    p.add_argument("--eig-every", type=integer(1), help="steps between sharpness evaluations "
                   "(default 20; --quick 10); at most 40%% of --steps")
    p.add_argument("--beta3", type=real(0), default=1.0, help="VRAdam velocity penalty (default 1)")
    p.add_argument("--seed", type=integer(0), default=0)
    p.add_argument("--json", metavar="PATH", type=output_path, help="write the trace and summary")
    p.add_argument("--png", metavar="PATH", type=output_path, help="sharpness and threshold over time")
    p.add_argument("--device", default="auto", help="auto|cpu|cuda (default auto)")
    p.set_defaults(func=_cmd_eos)


#: digits in scikit-learn's data set; the fewest steps whose late window can hold an evaluation
DIGITS, MIN_STEPS = 1797, 10
EXIT_DIVERGED = 1


def _usage(msg: str) -> int:
    print(f"momentumlab eos: error: {msg}", file=sys.stderr)
    return EXIT_USAGE


def _cmd_eos(args) -> int:
    from momentumlab.empirics.backend import resolve_device
    from momentumlab.empirics.eos import plot_eos, run_eos, settings
    from momentumlab.theory.eos import LATE_FRACTION

    try:
        device = resolve_device(args.device)
    except ValueError as exc:
        return _usage(f"argument --device: {exc}")
    kw = {k: v for k, v in (("n", args.n), ("eig_every", args.eig_every)) if v is not None}
    s = settings(args.optimizer, quick=args.quick, lr=args.lr, steps=args.steps,
                 width=args.width, beta3=args.beta3, **kw)
    if s.eig_every > LATE_FRACTION * s.steps:
        return _usage(f"argument --eig-every: must be at most {LATE_FRACTION:.0%} of the "
                      f"{s.steps} steps (<= {int(LATE_FRACTION * s.steps)}) so that the late "
                      f"window holds a sharpness evaluation, got {s.eig_every}")
    run = run_eos(s, device, args.seed)
    summary = run.summary()
    if summary["diverged_at_step"] is not None:
        print(f"{s.optimizer}: lr {s.lr:g}, seed {args.seed}: DIVERGED -- the loss became "
              f"non-finite at step {summary['diverged_at_step']} of {s.steps} "
              f"({run.seconds:.1f} s); no edge-of-stability measurement")
    else:
        print(f"{s.optimizer}: lr {s.lr:g}, {len(run.loss)} steps, {run.seconds:.1f} s; "
              f"median eta_t*S over {summary['window']}: {summary['measured_eta_times_S']:.4g} "
              f"vs predicted {summary['predicted_eta_times_S']:.4g} "
              f"({'within' if summary['hovers'] else 'NOT within'} 10%)")
    if args.json:
        Path(args.json).write_text(json.dumps(run.to_json(), indent=1) + "\n")
    if args.png:
        plot_eos(run, args.png)
    return EXIT_OK if summary["diverged_at_step"] is None else EXIT_DIVERGED
