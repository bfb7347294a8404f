"""``momentumlab`` command line (DESIGN.md, "Command line -- contract").

``verify`` derives and checks claims and prints the table; ``list`` and
``explain`` are the catalogue and the teaching view.  Further subcommands come
from modules listed in :data:`SUBCOMMAND_MODULES`, each exposing
``add_subcommand(subparsers)`` that sets ``func`` on its parser.
Exit status: 0 all selected claims pass, 1 one fails, 2 bad usage.
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

__all__ = ["main", "build_parser"]

SUBCOMMAND_MODULES = ("momentumlab.empirics.bench", "momentumlab.empirics.explore", "momentumlab.empirics.eos_cli",
                      "momentumlab.empirics.rodflow_cli")

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad usage: printed and mapped to exit status 2."""


def _console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=False, width=160 if not stderr else None)


def _cmd_verify(args) -> int:
    from momentumlab.empirics.backend import resolve_device
    from momentumlab.empirics.checks import load_claims
    from momentumlab.empirics.report import build_report, render_table, run_claim, to_markdown
    from momentumlab.theory.claims import select
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    load_claims()
    claims = select(args.only)
    try:
        device = resolve_device(args.device)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    rows = []
    err = _console(stderr=True)
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), console=err, transient=False) as progress:
        task = progress.add_task("verify", total=len(claims))
        for claim in claims:
            progress.update(task, description=f"verify {claim.id:<28}")
            rows.append(run_claim(claim, device, args.seed, args.quick))
            progress.advance(task)
    report = build_report(rows, device, args.seed, args.quick)
    render_table(rows, _console())
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    if args.markdown:
        Path(args.markdown).write_text(to_markdown(report))
    return EXIT_OK if all(r.status == "pass" for r in rows) else EXIT_FAIL


def _cmd_list(args) -> int:
    from momentumlab.empirics.checks import load_claims
    from momentumlab.theory.claims import select

    load_claims()
    for claim in select(args.only):
        print(f"{claim.id:<28} {claim.title}  [{claim.source}]")
    return EXIT_OK


def _cmd_explain(args) -> int:
    from momentumlab.empirics.checks import load_claims
    from momentumlab.theory.claims import get_claim

    load_claims()
    print(get_claim(args.id).explain())
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="momentumlab",
        description="Theory of momentum optimizers as executable, checkable claims.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    v = sub.add_parser("verify", help="derive every claim, run its check, print predicted vs measured")
    v.add_argument("--quick", action="store_true", help="small experiments (seconds per claim)")
    v.add_argument("--only", nargs="+", metavar="PREFIX", help="claim ids starting with PREFIX")
    v.add_argument("--device", default="auto", help="auto|cpu|cuda (default auto)")
    v.add_argument("--seed", type=int, default=0, help="seed for every experiment (default 0)")
    v.add_argument("--json", metavar="PATH", help="write the JSON report here")
    v.add_argument("--markdown", metavar="PATH", help="write a Markdown report here")
    v.set_defaults(func=_cmd_verify)

    ls = sub.add_parser("list", help="list the claims")
    ls.add_argument("--only", nargs="+", metavar="PREFIX")
    ls.set_defaults(func=_cmd_list)

    ex = sub.add_parser("explain", help="statement, assumptions, derivation steps and source of a claim")
    ex.add_argument("id", help="claim id, e.g. adamp.lemma2.2")
    ex.set_defaults(func=_cmd_explain)

    for name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        module.add_subcommand(sub)
    return parser


def main(argv=None) -> int:
    from momentumlab.theory.claims import UnknownClaimError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (UnknownClaimError, UsageError) as exc:
        print(f"momentumlab {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
