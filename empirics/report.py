"""Running claims and reporting them: the verify table, JSON and Markdown."""
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
    #: what the predicted / measured / error / tolerance columns are, and the pass rule
    quantities: str = ""
    pass_rule: str = ""

    def as_json(self) -> dict:
        return dict(self.__dict__)


def run_claim(claim: Claim, device, seed: int, quick: bool) -> ClaimRow:
    """Derive, then check; an exception becomes status ``error`` with its message in details."""
    row = ClaimRow(claim.id, claim.title, claim.source, quantities=claim.quantities,
                   pass_rule=claim.pass_rule)
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
    """The verify JSON report, its keys are a stable contract."""
    return {
        "momentumlab": version(),
        "device": str(device),
        "seed": seed,
        "quick": quick,
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "sympy": sp.__version__},
        "claims": [r.as_json() for r in rows],
    }


def _fmt(x, digits: int = 6) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.{digits}g}"
    return str(x)


COLUMNS = ("id", "symbolic", "predicted", "measured", "error", "tolerance", "resolution",
           "controls", "verdict", "seconds")
#: the terminal table: short headers and 3 significant digits so that it fits 80 columns
TABLE_COLUMNS = ("claim", "symbolic", "predicted", "measured", "error", "tol", "res", "ctrl",
                 "verdict")
SHORT_STATUS = {"proved": "proved", "proved from lemmas": "lemmas", "derived": "derived",
                "empirical": "empir."}
LEGEND = (
    "symbolic: proved = sympy reduced every step with symbolic parameters; lemmas = proved "
    "from named textbook lemmas; derived = some step stated, not reduced; empir. = a "
    "measurement.  predicted/measured/error/tol: the claim's own quantities and pass rule "
    "(momentumlab explain ID, or the JSON's quantities and pass_rule).  res: smallest relative "
    "error in the prediction the check detects.  ctrl: negative controls rejected.  Full "
    "precision and seconds per claim: --json / --markdown.  verdict marks: R the paper's "
    "statement is refuted, r partly refuted (the claim asserts what holds; see the findings); "
    "w weak check (misses a 2x error in the prediction or accepts a negative control)."
)


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


def fail_reason(r: ClaimRow) -> str:
    """Why a row did not pass, in one line: the exception, the check's own reason, or the
    comparison that failed (error against tolerance, or no finite measurement)."""
    if r.status == "pass":
        return ""
    d = r.details
    for key in ("exception", "reason", "summary", "note"):
        if d.get(key):
            return str(d[key])
    if d.get("diverged_at_step") is not None:
        return f"the run diverged (non-finite loss) at step {d['diverged_at_step']}"
    if r.measured is None:
        return "no finite measurement (the experiment produced NaN or inf)"
    if r.error is not None and r.tolerance is not None:
        return (f"error {_fmt(r.error, 4)} > tolerance {_fmt(r.tolerance, 4)} "
                f"(measured {_fmt(r.measured, 6)}, predicted {_fmt(r.predicted, 6)})")
    return "the check's pass rule was not met" + (f": {r.pass_rule}" if r.pass_rule else "")


def _verdict(r: ClaimRow) -> str:
    verdict = r.status.upper()
    if paper_verdict(r):
        verdict += f" (paper {paper_verdict(r)})"
    if weak(r):
        verdict += " (weak check)"
    return verdict


def _cells(r: ClaimRow) -> list[str]:
    return [r.id, r.symbolic, _fmt(r.predicted), _fmt(r.measured), _fmt(r.error),
            _fmt(r.tolerance), resolution_cell(r), controls_cell(r), _verdict(r), f"{r.seconds:.1f}"]


def _table_cells(r: ClaimRow) -> list[str]:
    """The terminal row: the id without its topic (the topic heads its group), 3 digits, and
    the verdict with one-letter marks (see :data:`LEGEND`)."""
    res = "none" if r.resolution is None or r.resolution >= 1 else f"{r.resolution:.0e}"
    marks = {"refuted": "R", "partly refuted": "r", None: ""}[paper_verdict(r)]
    marks += "w" if weak(r) else ""
    verdict = r.status.upper() + (f" {marks}" if marks else "")
    return ["  " + r.id.partition(".")[2] if "." in r.id else r.id,
            SHORT_STATUS.get(r.symbolic, r.symbolic), _fmt(r.predicted, 3),
            _fmt(r.measured, 3), _fmt(r.error, 2), _fmt(r.tolerance, 2), res, controls_cell(r),
            verdict]


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
        lines += [f"- `{r.id}`: {r.status} -- {fail_reason(r)}" for r in failing]
    described = [r for r in rows if r.quantities or r.pass_rule]
    if described:
        lines += ["", "## What each row measures", ""]
        lines += [f"- `{r.id}`: {r.quantities}" + (f" Passes when: {r.pass_rule}" if r.pass_rule
                                                   else "") for r in described]
    if report.get("interrupted"):
        i = report["interrupted"]
        lines += ["", f"Interrupted: {i['finished']} of {i['selected']} selected claims finished."]
    return "\n".join(lines) + "\n"


def render_table(rows: list[ClaimRow], console) -> None:
    """Print the verify table with rich (fits an 80-column terminal), a legend, findings and
    the reason of every row that did not pass."""
    from rich import box
    from rich.table import Table

    table = Table(title="momentumlab verify", box=box.SIMPLE_HEAD, show_edge=False,
                  padding=0)
    for col in TABLE_COLUMNS:
        left = col in ("claim", "symbolic", "verdict")
        table.add_column(col, justify="left" if left else "right", no_wrap=col != "verdict")
    style = {"pass": "green", "fail": "red", "error": "magenta"}
    topic = None
    for r in rows:
        if r.id.partition(".")[0] != topic and "." in r.id:
            topic = r.id.partition(".")[0]
            table.add_row(f"[bold]{topic}[/]")
        cells = _table_cells(r)
        cells[-1] = f"[{style[r.status]}]{cells[-1]}[/]"
        table.add_row(*cells)
    console.print(table)
    total = sum(r.seconds for r in rows)
    passed = sum(r.status == "pass" for r in rows)
    console.print(f"{passed}/{len(rows)} pass, {total:.1f} s.  {LEGEND}", highlight=False,
                  style="dim")
    for r in rows:
        if findings(r):
            console.print(f"[yellow]finding[/] {r.id}: {findings(r)}", highlight=False)
    for r in rows:
        if r.status != "pass":
            console.print(f"[{style[r.status]}]{r.id}: {r.status}[/] -- {fail_reason(r)}",
                          highlight=False)
