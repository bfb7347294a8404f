"""The ``Claim`` type and the claim registry (the contract ``verify``, the tests and the docs rely on).

A claim is a statement from a paper with

* ``derive()`` -> :class:`Derivation`: the sympy steps, the closed form they
  compute, and the status earned by the steps (:data:`STATUSES`);
* ``predict(**params)``: numbers from the derived formula;
* ``check(device, seed, quick)`` -> :class:`CheckResult`: the experiment,
  attached by ``empirics.checks`` (``theory`` never imports torch), with a
  ``compare`` that re-judges the measurement against another prediction;
* negative controls (:data:`DEFAULT_CONTROLS` plus ``controls``): wrong
  predictions the check must reject, and :func:`resolution`, the smallest
  relative error in the prediction that the check detects.

``momentumlab verify``, the tests and the notebooks all use these objects.
"""
from __future__ import annotations

import difflib
import functools
import math
from dataclasses import dataclass, field
from typing import Any, Callable

import sympy as sp

__all__ = [
    "STATUSES",
    "Step",
    "Derivation",
    "CheckResult",
    "Control",
    "ControlOutcome",
    "DEFAULT_CONTROLS",
    "run_controls",
    "resolution",
    "Claim",
    "REGISTRY",
    "register",
    "get_claim",
    "select",
    "UnknownClaimError",
    "is_zero",
    "is_true",
    "piecewise_branch",
]


#: the four symbolic statuses, strongest first (README, "Statuses")
STATUSES = ("proved", "proved from lemmas", "derived", "empirical")


@dataclass(frozen=True)
class Step:
    """One step of a derivation.

    What a step is decides the claim's status (:attr:`Derivation.status`):

    * ``proved=True``: an identity or inequality that sympy reduced (to 0 / ``True``) with
      symbolic parameters;
    * ``lemma="Cauchy-Schwarz"`` (and ``proved`` not True): justified by that named textbook
      lemma, listed with the claim;
    * ``proved=False``: a logical step that is neither reduced nor a named lemma (a stated
      step): the claim is at most ``derived``;
    * ``proved=None`` and no lemma: a note -- a definition or a narrative line that asserts
      nothing to be proved.
    """

    text: str
    expr: Any = None
    proved: bool | None = None
    lemma: str | None = None

    @property
    def kind(self) -> str:
        """``"reduced"``, ``"lemma"``, ``"stated"`` or ``"note"``."""
        if self.proved is True:
            return "reduced"
        if self.lemma:
            return "lemma"
        return "stated" if self.proved is False else "note"

    def render(self) -> str:
        mark = {"reduced": "[proved] ", "lemma": f"[lemma: {self.lemma}] ",
                "stated": "[stated, not reduced] ", "note": ""}[self.kind]
        if self.expr is None:
            return f"{mark}{self.text}"
        tail = {"reduced": "   ->  reduces to 0 / True", "stated": "   ->  sympy did not reduce it"}
        return f"{mark}{self.text}\n      {sp.sstr(self.expr)}{tail.get(self.kind, '')}"


@dataclass(frozen=True)
class Derivation:
    """Result of ``Claim.derive()``: the steps, the closed form they computed, the status.

    ``status`` is earned from the steps (see :class:`Step`): ``proved`` when every logical
    step was reduced by sympy; ``proved from lemmas`` when the rest are named textbook lemmas
    (:attr:`lemmas`); ``derived`` when some step is neither; ``empirical`` for a claim that is
    a measurement (:meth:`measurement`).  ``expression`` must be *computed* by the steps,
    never retyped.
    """

    expression: Any
    steps: tuple[Step, ...]
    measured_only: bool = False

    @classmethod
    def from_steps(cls, expression, steps) -> "Derivation":
        return cls(expression, tuple(steps))

    @classmethod
    def measurement(cls, *notes: str, expression=None) -> "Derivation":
        """The derivation of an ``empirical`` claim: no symbolic statement, only notes
        (e.g. which claim supplies the predicted threshold)."""
        return cls(expression, tuple(Step(n) for n in notes), measured_only=True)

    @property
    def lemmas(self) -> tuple[str, ...]:
        """The named textbook lemmas the derivation uses, in order of first use."""
        return tuple(dict.fromkeys(s.lemma for s in self.steps if s.kind == "lemma"))

    @property
    def proved(self) -> bool:
        """True for ``proved`` and ``proved from lemmas``."""
        return self.status in STATUSES[:2]

    @property
    def status(self) -> str:
        kinds = [s.kind for s in self.steps]
        if self.measured_only or not any(k in ("reduced", "lemma", "stated") for k in kinds):
            return "empirical"
        if "stated" in kinds:
            return "derived"
        return "proved from lemmas" if "lemma" in kinds else "proved"


@dataclass
class CheckResult:
    """Measured against predicted for one claim.

    ``passed`` is decided by the check with its stated tolerance; ``error`` is the quantity
    compared with ``tolerance``.

    ``compare`` re-judges the *same* measurement against another prediction: it takes an
    object shaped like ``prediction`` (a number, an array, a dict -- whatever the check
    predicted; ``predicted`` when ``prediction`` is None) and returns ``(error, passed)``.
    The negative controls (:func:`run_controls`) and the resolution (:func:`resolution`) use
    it, so a check without ``compare`` has no resolution.
    """

    predicted: float | None
    measured: float | None
    error: float | None
    tolerance: float | None
    passed: bool
    details: dict = field(default_factory=dict)
    compare: Callable[[Any], tuple[float, bool]] | None = None
    prediction: Any = None

    @property
    def full_prediction(self):
        return self.predicted if self.prediction is None else self.prediction


@dataclass(frozen=True)
class Control:
    """A negative control: a deliberately wrong prediction the check must reject.

    ``wrong`` maps the check's result to the wrong prediction (same shape as
    :attr:`CheckResult.full_prediction`), e.g. the claim's formula with beta replaced by
    beta**2 evaluated at the check's parameters, or the prediction scaled by 2.
    """

    name: str
    wrong: Callable[[CheckResult], Any]


def _scaled(p, factor):
    """``p`` (number, array, or dict/list/tuple of them) times ``factor``."""
    if isinstance(p, dict):
        return {k: _scaled(v, factor) for k, v in p.items()}
    if isinstance(p, (list, tuple)):
        return type(p)(_scaled(v, factor) for v in p)
    return p * factor


#: the controls every claim gets: its whole prediction scaled by 2 and by 1/2, and negated
DEFAULT_CONTROLS = (
    Control("prediction x 2", lambda r: _scaled(r.full_prediction, 2.0)),
    Control("prediction x 1/2", lambda r: _scaled(r.full_prediction, 0.5)),
    Control("sign flipped", lambda r: _scaled(r.full_prediction, -1.0)),
)


@dataclass(frozen=True)
class ControlOutcome:
    name: str
    rejected: bool
    error: float | None


def run_controls(controls, result: CheckResult) -> list[ControlOutcome]:
    """Re-judge ``result``'s measurement against each control's wrong prediction.

    A control whose wrong prediction equals the right one (e.g. the sign of a zero) is
    skipped: it tests nothing.
    """
    if result.compare is None:
        return []
    right, out = result.full_prediction, []
    for c in controls:
        wrong = c.wrong(result)
        if _same(wrong, right):
            continue
        err, passed = result.compare(wrong)
        out.append(ControlOutcome(c.name, not passed, finite(err)))
    return out


def _same(a, b) -> bool:
    try:
        import numpy as np

        return bool(np.array_equal(np.asarray(a, dtype=float), np.asarray(b, dtype=float)))
    except (TypeError, ValueError):
        if isinstance(a, dict) and isinstance(b, dict):
            return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
        return a == b


#: relative perturbations tried by :func:`resolution`: 10^-14 ... 10^1 in steps of 10^(1/4)
RESOLUTION_GRID = tuple(10.0 ** (k / 4) for k in range(-56, 5))


def resolution(result: CheckResult) -> float | None:
    """The smallest relative error in the prediction that the check detects.

    The smallest delta on :data:`RESOLUTION_GRID` such that the prediction scaled by
    (1 + delta) and by (1 - delta) -- and by every larger delta on the grid -- is rejected
    by ``result.compare``.  None when the check has no ``compare`` or detects no
    perturbation up to delta = 10 (then not even a 2x error is caught).
    """
    if result.compare is None:
        return None
    p = result.full_prediction
    best = None
    for delta in reversed(RESOLUTION_GRID):
        factors = (1 + delta, 1 - delta) if delta < 1 else (1 + delta, 1 / (1 + delta))
        if all(not result.compare(_scaled(p, f))[1] for f in factors):
            best = delta
        else:
            break
    return best


def is_zero(expr) -> bool:
    """True when sympy reduces ``expr`` to exactly zero (simplify, then expand)."""
    expr = sp.sympify(expr)
    if expr == 0:
        return True
    for reduce in (sp.simplify, lambda e: sp.simplify(sp.expand(e)), lambda e: sp.simplify(e.doit())):
        try:
            if reduce(expr) == 0:
                return True
        except Exception:  # pragma: no cover - sympy failure means "not reduced"
            continue
    return False


def is_true(cond) -> bool:
    """True when sympy reduces the relational/boolean ``cond`` to ``True``."""
    cond = sp.sympify(cond)
    if cond is sp.true:
        return True
    try:
        return sp.simplify(cond) is sp.true
    except Exception:  # pragma: no cover
        return False


@dataclass
class Claim:
    """A checkable statement.  See the module docstring for the contract."""

    id: str
    title: str
    source: str
    statement: str
    assumptions: tuple[str, ...]
    derive_fn: Callable[[], Derivation]
    predict_fn: Callable[..., Any] | None = None
    check_fn: Callable[..., CheckResult] | None = None
    #: claim-specific negative controls, run after :data:`DEFAULT_CONTROLS`
    controls: tuple[Control, ...] = ()
    #: what the predicted / measured / error / tolerance columns are, and the pass rule
    quantities: str = ""
    pass_rule: str = ""

    @property
    def all_controls(self) -> tuple[Control, ...]:
        return DEFAULT_CONTROLS + tuple(self.controls)

    @functools.cached_property
    def _derivation(self) -> Derivation:
        return self.derive_fn()

    def derive(self) -> Derivation:
        """The sympy derivation (computed once per process)."""
        return self._derivation

    def predict(self, **params):
        """Numbers from the derived formula."""
        if self.predict_fn is None:
            raise NotImplementedError(f"claim {self.id} has no numeric prediction")
        return self.predict_fn(**params)

    def check(self, device="cpu", seed: int = 0, quick: bool = True) -> CheckResult:
        """Run the experiment (attached by ``empirics.checks``)."""
        if self.check_fn is None:
            raise NotImplementedError(
                f"claim {self.id} has no empirical check attached; import momentumlab.empirics.checks first"
            )
        return self.check_fn(device=device, seed=seed, quick=quick)

    def explain(self) -> str:
        """The teaching view: statement, assumptions, derivation steps, source."""
        d = self.derive()
        lines = [f"{self.id} -- {self.title}", f"source: {self.source}", "", "statement:",
                 f"  {self.statement}", "", "assumptions:"]
        lines += [f"  - {a}" for a in self.assumptions] or ["  (none)"]
        if self.quantities or self.pass_rule:
            lines += ["", "check:"]
            lines += [f"  columns: {self.quantities}"] if self.quantities else []
            lines += [f"  passes when: {self.pass_rule}"] if self.pass_rule else []
        lines += ["", f"derivation ({d.status}):"]
        if d.lemmas:
            lines += [f"  lemmas: {', '.join(d.lemmas)}"]
        lines += [f"  {k}. {s.render()}" for k, s in enumerate(d.steps, 1)]
        if d.expression is not None:
            lines += ["", f"closed form: {sp.sstr(d.expression)}"]
        return "\n".join(lines)


REGISTRY: dict[str, Claim] = {}


class UnknownClaimError(KeyError):
    """An id or prefix that matches no claim; the message lists the nearest ids."""

    def __init__(self, key: str):
        near = difflib.get_close_matches(key, list(REGISTRY), n=5, cutoff=0.3)
        if not near:
            near = [c for c in REGISTRY if c.split(".")[0] == key.split(".")[0]][:5]
        hint = f"; nearest known ids: {', '.join(near)}" if near else ""
        super().__init__(f"unknown claim id {key!r}{hint} (see `momentumlab list`)")
        self.key, self.near = key, near

    def __str__(self) -> str:
        return self.args[0]


def register(claim: Claim) -> Claim:
    if claim.id in REGISTRY:
        raise ValueError(f"claim {claim.id!r} registered twice")
    REGISTRY[claim.id] = claim
    return claim


def get_claim(claim_id: str) -> Claim:
    try:
        return REGISTRY[claim_id]
    except KeyError:
        raise UnknownClaimError(claim_id) from None


def select(prefixes=None) -> list[Claim]:
    """Claims whose id starts with any of ``prefixes`` (all when empty), in registry order.

    A prefix is a plain string prefix of the id (``adamp`` matches
    ``adamp.lemma2.1``; ``adamp.lemma2`` matches ``adamp.lemma2.1`` and
    ``adamp.lemma2.2``).  A prefix that matches nothing raises
    :class:`UnknownClaimError`.
    """
    if not prefixes:
        return list(REGISTRY.values())
    chosen = []
    for prefix in prefixes:
        hits = [c for c in REGISTRY.values() if c.id == prefix or c.id.startswith(prefix)]
        if not hits:
            raise UnknownClaimError(prefix)
        chosen += [c for c in hits if c not in chosen]
    return chosen


def finite(x) -> float | None:
    """``float(x)`` when finite, else ``None`` (JSON-safe)."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _decide(cond, assume) -> bool | None:
    """True / False when sympy decides ``cond`` under ``assume`` (a sympy boolean), else None."""
    cond = sp.sympify(cond)
    if cond in (sp.true, sp.false):
        return bool(cond)
    facts = set(assume.args) if isinstance(assume, sp.And) else {assume}
    if cond in facts or cond == assume:
        return True
    if sp.Not(cond) in facts:
        return False
    reduced = sp.simplify(cond)
    if reduced in (sp.true, sp.false):
        return bool(reduced)
    if isinstance(cond, (sp.Eq, sp.Ne)):
        gap = sp.simplify(cond.lhs - cond.rhs)
        if gap.is_nonzero:
            return isinstance(cond, sp.Ne)
        if gap.is_zero:
            return isinstance(cond, sp.Eq)
    if isinstance(cond, (sp.StrictLessThan, sp.LessThan, sp.StrictGreaterThan, sp.GreaterThan)):
        gap = sp.simplify(cond.gts - cond.lts)  # >= 0 (or > 0) when cond holds
        strict = isinstance(cond, (sp.StrictLessThan, sp.StrictGreaterThan))
        if (gap.is_positive if strict else gap.is_nonnegative):
            return True
        if (gap.is_nonpositive if strict else gap.is_negative):
            return False
    return None


def piecewise_branch(expr, assume=sp.true):
    """``expr`` with every sympy ``Piecewise`` replaced by the branch that holds under ``assume``.

    A Piecewise takes its first branch whose condition holds; so each earlier condition must be
    decided False and the chosen one True -- by sympy, from the symbols' assumptions plus the
    facts in ``assume`` (a sympy boolean, e.g. ``sp.Abs(a) < 1`` or ``(j <= n) & (k <= n)``).
    Raises ``ValueError`` naming the condition sympy could not decide (never a silent guess).
    E.g. a geometric sum ``Piecewise((n, Eq(a, 1)), ((1 - a**n)/(1 - a), True))`` with
    ``a = 1/(1+q)``, ``q > 0``, gives the second branch: ``Eq(a, 1)`` is decided False.
    """
    def pick(pw):
        for value, cond in pw.args:
            verdict = _decide(cond, assume)
            if verdict is True:
                return value
            if verdict is None:
                raise ValueError(f"piecewise_branch: cannot decide {cond} under {assume}")
        raise ValueError(f"piecewise_branch: no branch of {pw} holds under {assume}")

    return sp.sympify(expr).replace(lambda x: isinstance(x, sp.Piecewise), pick)
