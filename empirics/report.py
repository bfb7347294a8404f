"""Running claims and reporting them: the verify table, JSON and Markdown (DESIGN.md contracts)."""
from __future__ import annotations

import platform
import time
import traceback
from dataclasses import dataclass, field

import sympy as sp
import torch

from momentumlab.theory.claims import Claim, finite, resolution, run_controls

__all__ = ["ClaimRow", "run_claim", "build_report", "to_markdown", "render_table", "version"]


def version() -> str:
    try:
        from importlib.metadata import version as _v

        return _v("momentumlab")
    except Exception:  # pragma: no cover - running from a source tree
        return "0+unknown"


@dataclass
class ClaimRow:
    """One line of the verify report (the JSON ``claims`` entry)."""

    id: str
    title: str
    source: str
    symbolic: str = "empirical"
    lemmas: list = field(default_factory=list)
    resolution: float | None = None
    controls: list = field(default_factory=list)
    expression: str | None = None
    status: str = "error"
    predicted: float | None = None
    measured: float | None = None
    error: float | None = None
    tolerance: float | None = None
    details: dict = field(default_factory=dict)
    seconds: float = 0.0

    def as_json(self) -> dict:
        return dict(self.__dict__)


def run_claim(claim: Claim, device, seed: int, quick: bool) -> ClaimRow:
    """Derive, then check; an exception becomes status ``error`` with its message in details."""
    row = ClaimRow(claim.id, claim.title, claim.source)
    start = time.perf_counter()
    try:
        derivation = claim.derive()
        row.symbolic = derivation.status
        row.lemmas = list(derivation.lemmas)
        if derivation.expression is not None:
            row.expression = sp.sstr(derivation.expression)
        result = claim.check(device=device, seed=seed, quick=quick)
        row.predicted, row.measured = finite(result.predicted), finite(result.measured)
        row.error, row.tolerance = finite(result.error), finite(result.tolerance)
        row.details = _json_safe(result.details)
        row.status = "pass" if result.passed else "fail"
        row.controls = [{"name": c.name, "rejected": c.rejected, "error": c.error}
                        for c in run_controls(claim.all_controls, result)]
        row.resolution = finite(resolution(result))
    except Exception as exc:  # a claim that crashes is reported, not hidden
        row.status = "error"
        row.details = {"exception": f"{type(exc).__name__}: {exc}",
                       "traceback": traceback.format_exc(limit=6)}
    row.seconds = round(time.perf_counter() - start, 3)
    return row


def _json_safe(obj):
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, bool) or obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, int):
        return obj
    try:
        return finite(obj)
    except (TypeError, ValueError):
        return str(obj)


def build_report(rows: list[ClaimRow], device, seed: int, quick: bool) -> dict:
    """The verify JSON report, exactly the DESIGN.md contract."""
    return {
        "momentumlab": version(),
        "device": str(device),
        "seed": seed,
        "quick": quick,
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "sympy": sp.__version__},
        "claims": [r.as_json() for r in rows],
    }


def _fmt(x) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.6g}"
    return str(x)


COLUMNS = ("id", "symbolic", "predicted", "measured", "error", "tolerance", "resolution",
           "controls", "verdict", "seconds")


def controls_cell(r: ClaimRow) -> str:
    """``k/n`` negative controls rejected; ``none`` when the check cannot be re-judged."""
    if not r.controls:
        return "none"
    return f"{sum(c['rejected'] for c in r.controls)}/{len(r.controls)}"


def resolution_cell(r: ClaimRow) -> str:
    """The smallest relative error detected; ``none`` (cannot detect a 2x error) flagged."""
    if r.resolution is None or r.resolution >= 1:
        return "none (misses 2x)"
    return f"{r.resolution:.0e}"


def weak(r: ClaimRow) -> bool:
    """A passing row whose check accepted a negative control or cannot detect a 2x error."""
    return r.status == "pass" and (r.resolution is None or r.resolution >= 1
                                   or not all(c["rejected"] for c in r.controls))


def paper_verdict(r: ClaimRow) -> str | None:
    """``"refuted"`` / ``"partly refuted"`` when the check found the paper's statement false.

    A check that measures the truth where a paper's statement fails records it in
    ``details["paper_claim"]`` (text starting with that word); the row then passes on
    what it asserts, and the table says plainly that the paper's version is refuted.
    """
    text = str(r.details.get("paper_claim", "")).lower()
    for verdict in ("partly refuted", "refuted"):
        if text.startswith(verdict):
            return verdict
    return None


def findings(r: ClaimRow) -> str | None:
    """The finding a row reports (a refuted paper claim, or another measured departure)."""
    return r.details.get("paper_claim") or r.details.get("finding")


def _cells(r: ClaimRow) -> list[str]:
    verdict = r.status.upper()
    if paper_verdict(r):
        verdict += f" (paper {paper_verdict(r)})"
    if weak(r):
        verdict += " (weak check)"
    return [r.id, r.symbolic, _fmt(r.predicted), _fmt(r.measured), _fmt(r.error),
            _fmt(r.tolerance), resolution_cell(r), controls_cell(r), verdict, f"{r.seconds:.1f}"]


def to_markdown(report: dict) -> str:
    rows = [ClaimRow(**c) for c in report["claims"]]
    lines = [f"# momentumlab verify ({report['momentumlab']})", "",
             f"device `{report['device']}`, seed {report['seed']}, quick {report['quick']}, "
             f"torch {report['versions']['torch']}, sympy {report['versions']['sympy']}", "",
             "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_cells(r)) + " |" for r in rows]
    lemma_rows = [r for r in rows if r.lemmas]
    if lemma_rows:
        lines += ["", "## Lemmas used by claims proved from lemmas", ""]
        lines += [f"- `{r.id}`: {', '.join(r.lemmas)}" for r in lemma_rows]
    accepted = [(r, c) for r in rows for c in r.controls if not c["rejected"]]
    if accepted:
        lines += ["", "## Negative controls the check accepted", ""]
        lines += [f"- `{r.id}`: {c['name']} (error {_fmt(c['error'])})" for r, c in accepted]
    noted = [r for r in rows if findings(r)]
    if noted:
        lines += ["", "## Findings", ""]
        lines += [f"- `{r.id}`: {findings(r)}" for r in noted]
    failing = [r for r in rows if r.status != "pass"]
    if failing:
        lines += ["", "## Not passing", ""]
        lines += [f"- `{r.id}`: {r.status} -- {r.details.get('exception') or r.details.get('summary', '')}"
                  for r in failing]
    return "\n".join(lines) + "\n"


def render_table(rows: list[ClaimRow], console) -> None:
    """Print the verify table with rich."""
    from rich.table import Table

    table = Table(title="momentumlab verify", show_lines=False)
    for col in COLUMNS:
        table.add_column(col, justify="left" if col in ("id", "symbolic", "verdict") else "right",
                         no_wrap=col == "id")
    style = {"pass": "green", "fail": "red", "error": "magenta"}
    for r in rows:
        cells = _cells(r)
        cells[8] = f"[{style[r.status]}]{cells[8]}[/]"
        table.add_row(*cells)
    console.print(table)
    for r in rows:
        if findings(r):
            console.print(f"[yellow]finding[/] {r.id}: {findings(r)}", highlight=False)
    for r in rows:
        if r.status != "pass":
            msg = r.details.get("exception") or r.details.get("summary", "")
            console.print(f"[{style[r.status]}]{r.id}: {r.status}[/] {msg}", highlight=False)
