"""Targeted mutation analysis of momentumlab's formulas (issue: "every check can fail").

A full mutmut/cosmic-ray run over ``theory/`` re-imports torch and sympy and runs the whole
suite for each of thousands of mutants: days on a 2-core machine.  This harness does the same
thing for the mutants that matter -- the *formulas*: every arithmetic operator (``+ - * / **``),
every unary minus and every numeric constant inside the functions of a module -- and makes each
run cheap:

* the parent process imports the heavy libraries (torch, sympy, numpy, scipy, pytest) once;
* each mutant runs in a forked child that imports ``momentumlab`` afresh with the mutated
  source served by an import hook (the file on disk is never modified), then runs the
  module's test selection with ``pytest -x`` (stop at the first failure);
* with ``--warm`` (the default) the parent first runs the unmutated selection in-process, which
  fills sympy's cache with every symbolic result the tests need; a child then drops every module
  loaded from this tree (momentumlab, the tests) and re-imports them, so only the mutated
  module's *changed* expressions are computed afresh.  sympy's cache memoises pure functions of
  their (immutable) arguments, so a mutated expression is a different key and never gets an
  unmutated result;
* a mutant is *killed* when a test fails (or the mutated module fails to import), *survives*
  when the selection passes, *timeout* when it runs past ``--timeout`` (counted as killed:
  the mutant hangs or slows the code beyond use).

Survivors are listed with their line so that each one is either killed by a new test or
explained as equivalent in ``results/mutation.json`` (``"equivalent"`` entries, keyed by
``index:line:col:description`` within the module).

    python scripts/mutation.py --module theory/schur.py --tests tests/theory/test_schur.py \\
        --json results/mutation.json
    python scripts/mutation.py --module theory/eos.py --list       # the mutants, with their lines
    python scripts/mutation.py --summarise results/mutation.json   # recompute the summaries
                                                                   # (after merging modules)

``--resume`` skips the mutants already recorded in ``--json`` for this module (same key).
"""
from __future__ import annotations

import argparse
import ast
import importlib.abc
import importlib.util
import json
import os
import signal
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_OP_SWAPS = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult,
             ast.Pow: ast.Mult, ast.FloorDiv: ast.Div, ast.Mod: ast.Mult}


@dataclass
class Mutant:
    index: int
    line: int
    col: int
    description: str
    outcome: str = ""
    seconds: float = 0.0

    @property
    def key(self) -> str:
        """Unique within a module: nested operators can share a line, column and description."""
        return f"{self.index}:{self.line}:{self.col}:{self.description}"


def _is_docstring(node, parents) -> bool:
    parent = parents.get(node)
    return isinstance(parent, ast.Expr) and isinstance(node.value, str)


class _Mutator(ast.NodeTransformer):
    """Walks the tree in a fixed order; mutates the ``target``-th eligible node (or none)."""

    def __init__(self, target: int | None):
        self.target, self.count, self.found = target, 0, []
        self.depth = 0  # inside a function body?

    def _eligible(self, node, description):
        k = self.count
        self.count += 1
        self.found.append((node.lineno, node.col_offset, description))
        return k == self.target

    def visit_FunctionDef(self, node):
        self.depth += 1
        node.body = [self.visit(n) for n in node.body]  # skip decorators, defaults, annotations
        self.depth -= 1
        return node

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Lambda(self, node):
        self.depth += 1
        node.body = self.visit(node.body)
        self.depth -= 1
        return node

    def visit_BinOp(self, node):
        self.generic_visit(node)
        swap = _OP_SWAPS.get(type(node.op))
        if self.depth and swap and self._eligible(
                node, f"{type(node.op).__name__} -> {swap.__name__}"):
            node.op = swap()
        return node

    def visit_UnaryOp(self, node):
        self.generic_visit(node)
        if self.depth and isinstance(node.op, ast.USub) and self._eligible(node, "drop unary minus"):
            return node.operand
        return node

    def visit_Constant(self, node):
        v = node.value
        if (self.depth and isinstance(v, (int, float)) and not isinstance(v, bool)
                and self._eligible(node, f"constant {v!r} -> {_mutate_number(v)!r}")):
            return ast.copy_location(ast.Constant(_mutate_number(v)), node)
        return node


def _mutate_number(v):
    if v == 0:
        return 1
    if v == 1:
        return 2
    return v * 2 if isinstance(v, int) else v * 1.5


def mutants_of(source: str) -> list[Mutant]:
    m = _Mutator(None)
    m.visit(ast.parse(source))
    return [Mutant(i, line, col, d) for i, (line, col, d) in enumerate(m.found)]


def mutated_source(source: str, index: int) -> str:
    tree = _Mutator(index).visit(ast.parse(source))
    return ast.unparse(ast.fix_missing_locations(tree))


class _Hook(importlib.abc.MetaPathFinder):
    """Serve ``source`` for the module ``name`` (the file on disk stays as it is)."""

    def __init__(self, name, path, source):
        self.name, self.path, self.source = name, path, source

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.name:
            return None
        hook = self

        class Loader(importlib.abc.Loader):
            def create_module(self, spec):
                return None

            def exec_module(self, module):
                module.__file__ = str(hook.path)
                exec(compile(hook.source, str(hook.path), "exec"), module.__dict__)

        return importlib.util.spec_from_loader(fullname, Loader(), origin=str(self.path))


def _import_tree_package() -> None:
    """Import ``momentumlab`` from *this* tree (src/momentumlab plus theory/ and empirics/ as
    its subpackages), whatever an installed or editable copy says: the harness can then run
    on a snapshot worktree with any environment that has the dependencies."""
    init = ROOT / "src" / "momentumlab" / "__init__.py"
    spec = importlib.util.spec_from_file_location(
        "momentumlab", init, submodule_search_locations=[str(init.parent), str(ROOT)])
    module = importlib.util.module_from_spec(spec)
    sys.modules["momentumlab"] = module
    spec.loader.exec_module(module)


def _module_name(path: Path) -> str:
    rel = path.resolve().relative_to(ROOT).with_suffix("")
    return "momentumlab." + ".".join(rel.parts)


def _drop_tree_modules() -> None:
    """Forget every module loaded from this tree (momentumlab, tests, conftest), not the venv."""
    venv = Path(sys.prefix).resolve()
    for mod_name, mod in list(sys.modules.items()):
        f = getattr(mod, "__file__", None)
        if mod_name.split(".")[0] == "momentumlab":
            del sys.modules[mod_name]
            continue
        if not f:
            continue
        p = Path(f).resolve()
        if p.is_relative_to(ROOT) and not p.is_relative_to(venv):
            del sys.modules[mod_name]


KEYWORD: list[str] = []  # ["-k", EXPR] from --keyword


def _pytest_args(tests) -> list[str]:
    return [*tests, *KEYWORD, "-x", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", "-W", "ignore"]


def warm(tests) -> bool:
    """Run the unmutated selection in this process (fills sympy's cache); True if it passed."""
    import pytest

    devnull = os.open(os.devnull, os.O_WRONLY)
    saved = os.dup(1), os.dup(2)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    try:
        _import_tree_package()
        os.chdir(ROOT)
        code = pytest.main(_pytest_args(tests))
    finally:
        sys.stdout.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
    _drop_tree_modules()
    return code == 0


def run_one(name, path, source, tests, timeout) -> tuple[str, float]:
    """Fork, import the mutant, run the tests; outcome killed/survived/timeout."""
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # child
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            _drop_tree_modules()
            sys.meta_path.insert(0, _Hook(name, path, source))
            _import_tree_package()
            os.chdir(ROOT)
            import pytest

            code = pytest.main(_pytest_args(tests))
            os._exit(0 if code == 0 else 1)
        except BaseException:
            os._exit(1)
    deadline = start + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.perf_counter() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return "timeout", time.perf_counter() - start
        time.sleep(0.05)
    ok = os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    return ("survived" if ok else "killed"), time.perf_counter() - start


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--module", help="a .py file under theory/ or empirics/")
    ap.add_argument("--tests", nargs="+", help="test files or node ids to run")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds per mutant (default 300)")
    ap.add_argument("--json", help="merge the module's results into this JSON file")
    ap.add_argument("--only", type=int, nargs="*", help="run only these mutant indexes")
    ap.add_argument("-k", "--keyword", help="pytest -k expression applied to --tests")
    ap.add_argument("--resume", action="store_true",
                    help="skip the mutants already recorded in --json for this module")
    ap.add_argument("--no-warm", dest="warm", action="store_false",
                    help="do not run the unmutated selection in the parent first")
    ap.add_argument("--list", action="store_true", help="list the module's mutants and exit")
    ap.add_argument("--summarise", metavar="JSON",
                    help="recompute the summaries of this results file and exit")
    args = ap.parse_args(argv)
    if args.summarise:
        out = Path(args.summarise)
        if not out.is_file():
            ap.error(f"--summarise: no such file {args.summarise}")
        data = summarise(json.loads(out.read_text()))
        out.write_text(json.dumps(data, indent=1) + "\n")
        print(json.dumps(data["summary"]))
        return 0
    if not args.module:
        ap.error("--module is required (unless --summarise)")
    path = (ROOT / args.module).resolve()
    if not path.is_file():
        ap.error(f"--module: no such file {args.module}")
    if args.list:
        src = path.read_text().splitlines()
        for m in mutants_of(path.read_text()):
            print(f"[{m.index:4d}] {m.line:4d}:{m.col:<3d} {m.description:<28} "
                  f"{src[m.line - 1].strip()[:90]}")
        return 0
    if not args.tests:
        ap.error("--tests is required")
    if args.resume and not args.json:
        ap.error("--resume needs --json")
    if args.keyword:
        KEYWORD[:] = ["-k", args.keyword]
    os.environ.setdefault("HYPOTHESIS_PROFILE", "dev")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import numpy, scipy, sympy, torch, pytest, hypothesis  # noqa: F401,E401  warm the parent
    for optional in ("sklearn", "matplotlib.pyplot", "rich", "adamp", "pytorch_optimizer"):
        try:  # imported by the tests; loading them once here saves seconds per mutant
            __import__(optional)
        except ImportError:
            pass

    source, name = path.read_text(), _module_name(path)
    if args.warm and not warm(args.tests):
        print("baseline: the unmutated tests do not pass in-process; fix that first",
              file=sys.stderr)
        return 2
    base, secs = run_one(name, path, source, args.tests, args.timeout)
    if base != "survived":
        print(f"baseline: the unmutated tests do not pass ({base}); fix that first", file=sys.stderr)
        return 2
    mutants = mutants_of(source)
    chosen = [m for m in mutants if args.only is None or m.index in args.only]
    if args.resume and Path(args.json).is_file():
        done = {r["key"] for r in json.loads(Path(args.json).read_text())["modules"]
                .get(args.module, {}).get("mutants", [])}
        chosen = [m for m in chosen if m.key not in done]
    print(f"{name}: {len(mutants)} mutants, baseline {secs:.1f} s", flush=True)
    for m in chosen:
        m.outcome, m.seconds = run_one(name, path, mutated_source(source, m.index), args.tests,
                                       args.timeout)
        print(f"  [{m.index:4d}] line {m.line:4d} {m.description:<34} {m.outcome} "
              f"({m.seconds:.1f} s)", flush=True)
        if args.json:  # merge as we go: an interrupted run keeps what it measured
            _merge(Path(args.json), args.module, args.tests, [m])
    killed = sum(m.outcome in ("killed", "timeout") for m in chosen)
    print(f"score {killed}/{len(chosen)}")
    return 0


def _merge(out: Path, module: str, tests, chosen) -> None:
    data = json.loads(out.read_text()) if out.exists() else {"modules": {}}
    entry = data["modules"].setdefault(module, {})
    runs = {m["key"]: m for m in entry.get("mutants", [])}
    for m in chosen:
        runs[m.key] = {"key": m.key, **asdict(m)}
    entry["tests"] = sorted(set(entry.get("tests", [])) | set(tests) | (
        {f"-k {KEYWORD[1]}"} if KEYWORD else set()))
    entry["mutants"] = sorted(runs.values(), key=lambda r: r["index"])
    entry.setdefault("equivalent", {})
    summarise(data)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=1) + "\n")


def summarise(data: dict) -> dict:
    """Per module and in total: mutants run, killed (timeouts included, and counted apart),
    survivors explained as equivalent, unexplained survivors, and the score
    killed / (run - equivalent)."""
    total = {"run": 0, "killed": 0, "equivalent": 0, "unexplained": 0, "timeout": 0}
    for entry in data["modules"].values():
        runs, eq = entry["mutants"], entry.get("equivalent", {})
        killed = sum(m["outcome"] in ("killed", "timeout") for m in runs)
        survivors = [m["key"] for m in runs if m["outcome"] == "survived"]
        explained = sum(k in eq for k in survivors)
        s = {"run": len(runs), "killed": killed, "equivalent": explained,
             "unexplained": len(survivors) - explained,
             "timeout": sum(m["outcome"] == "timeout" for m in runs)}
        s["score"] = killed / max(1, s["run"] - explained)
        entry["summary"] = s
        for k in total:
            total[k] += s[k]
    total["score"] = total["killed"] / max(1, total["run"] - total["equivalent"])
    # the whole of theory/: every module's mutants, run or not (the runs so far are a part)
    mutants = {str(f.relative_to(ROOT)): len(mutants_of(f.read_text()))
               for f in sorted((ROOT / "theory").glob("*.py"))}
    total["theory_mutants"] = sum(mutants.values())
    total["not_run"] = sum(max(0, n - len(data["modules"].get(m, {}).get("mutants", [])))
                           for m, n in mutants.items())
    data["summary"] = total
    return data


if __name__ == "__main__":
    sys.exit(main())
