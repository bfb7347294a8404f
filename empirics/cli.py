"""``momentumlab`` command line.

``verify`` derives and checks claims and prints the table; ``list`` and
``explain`` are the catalogue and the teaching view.  Further subcommands come
from modules listed in :data:`SUBCOMMAND_MODULES`, each exposing
``add_subcommand(subparsers)`` that sets ``func`` on its parser.
Exit status: 0 all selected claims pass, 1 one fails, 2 bad usage.
"""
from __future__ import annotations

import importlib
import json
import sys

from momentumlab.empirics.executors import executor_arg
from momentumlab.empirics.cliargs import (EXIT_FAIL, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, Parser,
                                          UsageError, check_output_paths, integer, output_path)

__all__ = ["main", "build_parser", "SUBCOMMAND_MODULES"]

SUBCOMMAND_MODULES = ("momentumlab.empirics.bench", "momentumlab.empirics.explore", "momentumlab.empirics.eos_cli",
                      "momentumlab.empirics.analyze_cli", "momentumlab.empirics.rodflow_cli")


def _console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=False)


def _cmd_verify(args) -> int:
    from momentumlab.cache import prime
    from momentumlab.empirics.backend import resolve_device
    from momentumlab.empirics.checks import load_claims
    from momentumlab.empirics.executors import use_executor
    from momentumlab.empirics.report import build_report, render_table, run_claim, to_markdown
    from momentumlab.theory.claims import select
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    try:
        device = resolve_device(args.device)
    except ValueError as exc:
        raise UsageError(f"argument --device: {exc}") from None
    load_claims()
    claims = select(args.only)
    rows, interrupted = [], False
    err = _console(stderr=True)
    with use_executor(args.executor), Progress(
            TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(), console=err, transient=False) as progress:
        task = progress.add_task("verify", total=len(claims))
        try:
            for claim in claims:
                progress.update(task, description=f"verify {claim.id:<28}")
                prime([claim])
                rows.append(run_claim(claim, device, args.seed, args.quick))
                progress.advance(task)
        except KeyboardInterrupt:
            interrupted = True
    report = build_report(rows, device, args.seed, args.quick)
    if interrupted:
        report["interrupted"] = {"finished": len(rows), "selected": len(claims)}
    render_table(rows, _console())
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    if args.markdown:
        args.markdown.write_text(to_markdown(report))
    if interrupted:
        written = " and ".join(str(p) for p in (args.json, args.markdown) if p)
        print(f"momentumlab verify: interrupted: {len(rows)} of {len(claims)} claims finished"
              + (f"; their report is in {written}" if written else ""), file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_OK if all(r.status == "pass" for r in rows) else EXIT_FAIL


def _catalogue(prefixes) -> list[dict]:
    """id, title, source of the selected claims: from the cache, else from the registry."""
    from momentumlab import cache

    rows = cache.load_catalogue()
    if rows is None:
        from momentumlab.empirics.checks import load_claims

        cache.save_catalogue(load_claims().values())
        rows = cache.load_catalogue() or [{"id": c.id, "title": c.title, "source": c.source}
                                          for c in load_claims().values()]
    if not prefixes:
        return rows
    chosen = []
    for prefix in prefixes:
        hits = [r for r in rows if r["id"].startswith(prefix)]
        if not hits:  # the registry's error names the nearest ids
            from momentumlab.empirics.checks import load_claims
            from momentumlab.theory.claims import select

            load_claims()
            select([prefix])
        chosen += [r for r in hits if r not in chosen]
    return chosen


def _cmd_list(args) -> int:
    for row in _catalogue(args.only):
        print(f"{row['id']:<28} {row['title']}  [{row['source']}]")
    return EXIT_OK


def _cmd_explain(args) -> int:
    from momentumlab import cache

    text = cache.load_explain(args.id)
    if text is None:
        from momentumlab.empirics.checks import load_claims
        from momentumlab.theory.claims import get_claim

        load_claims()
        claim = get_claim(args.id)
        cache.prime([claim])
        text = claim.explain()
        cache.save_explain(args.id, text)
    print(text)
    return EXIT_OK


#: the commands defined here; the others come from :data:`SUBCOMMAND_MODULES`
CORE_COMMANDS = ("verify", "list", "explain")


def build_parser(subcommands: bool = True) -> Parser:
    """The ``momentumlab`` parser; ``subcommands=False`` leaves out the modules of
    :data:`SUBCOMMAND_MODULES` (they import sympy and torch: ``list`` must answer fast)."""
    from momentumlab import __version__

    parser = Parser(
        prog="momentumlab",
        description="Theory of momentum optimizers as executable, checkable claims.")
    parser.add_argument("--version", action="version", version=f"momentumlab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    v = sub.add_parser("verify", help="derive every claim, run its check, print predicted vs measured")
    v.add_argument("--quick", action="store_true", help="small experiments (seconds per claim)")
    v.add_argument("--only", nargs="+", metavar="PREFIX", help="claim ids starting with PREFIX")
    v.add_argument("--device", default="auto", help="auto|cpu|cuda (default auto)")
    v.add_argument("--seed", type=integer(0), default=0, help="seed for every experiment (default 0)")
    v.add_argument("--json", metavar="PATH", type=output_path, help="write the JSON report here")
    v.add_argument("--markdown", metavar="PATH", type=output_path, help="write a Markdown report here")
    v.add_argument("--executor", default=None, type=executor_arg, help="many-seed claims (convergence): where the "
                   "chunks run: local, threads, processes or dask:ADDRESS (default local)")
    v.set_defaults(func=_cmd_verify)

    ls = sub.add_parser("list", help="list the claims")
    ls.add_argument("--only", nargs="+", metavar="PREFIX")
    ls.set_defaults(func=_cmd_list)

    ex = sub.add_parser("explain", help="statement, assumptions, derivation steps and source of a claim")
    ex.add_argument("id", help="claim id, e.g. adamp.lemma2.2")
    ex.set_defaults(func=_cmd_explain)

    for name in SUBCOMMAND_MODULES if subcommands else ():
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        module.add_subcommand(sub)
    return parser


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    first = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(subcommands=first not in CORE_COMMANDS)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # a usage error (one line, printed), --help or --version
        return int(exc.code or 0)
    try:
        check_output_paths(args)
        return int(args.func(args) or 0)
    except UsageError as exc:
        print(f"momentumlab {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyError as exc:  # an unknown claim id (theory.claims imports sympy: only now)
        from momentumlab.theory.claims import UnknownClaimError

        if not isinstance(exc, UnknownClaimError):
            raise
        print(f"momentumlab {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"momentumlab {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
