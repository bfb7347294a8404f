"""The ``Claim`` type and the claim registry (DESIGN.md, "Claims -- contract").

A claim is a statement from a paper with

* ``derive()`` -> :class:`Derivation`: the sympy steps, the closed form, and
  whether sympy *proved* it (an identity reduced to zero or a condition to
  ``True`` with symbolic parameters -- never at sample values);
* ``predict(**params)``: numbers from the derived formula;
* ``check(device, seed, quick)`` -> :class:`CheckResult`: the experiment,
  attached by ``empirics.checks`` (``theory`` never imports torch).

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
    "Step",
    "Derivation",
    "CheckResult",
    "Claim",
    "REGISTRY",
    "register",
    "get_claim",
    "select",
    "UnknownClaimError",
    "is_zero",
    "is_true",
]


@dataclass(frozen=True)
class Step:
    """One step of a derivation: what it says, the sympy object, and whether sympy closed it."""

    text: str
    expr: Any = None
    proved: bool | None = None  # True: reduced to 0 / True; False: not reduced; None: not an identity

    def render(self) -> str:
        mark = {True: "[proved] ", False: "[not reduced] ", None: ""}[self.proved]
        if self.expr is None:
            return f"{mark}{self.text}"
        tail = {True: "   ->  reduces to 0 / True", False: "   ->  sympy could not reduce it",
                None: ""}[self.proved]
        return f"{mark}{self.text}\n      {sp.sstr(self.expr)}{tail}"


@dataclass(frozen=True)
class Derivation:
    """Result of ``Claim.derive()``.

    ``proved`` is True only when every identity step was reduced by sympy to
    zero or to ``True`` in general; ``expression`` is the derived closed form.
    """

    expression: Any
    steps: tuple[Step, ...]
    proved: bool

    @classmethod
    def from_steps(cls, expression, steps) -> "Derivation":
        steps = tuple(steps)
        identities = [s.proved for s in steps if s.proved is not None]
        return cls(expression, steps, bool(identities) and all(identities))

    @property
    def status(self) -> str:
        return "proved" if self.proved else "derived"


@dataclass
class CheckResult:
    """Measured against predicted for one claim.

    ``passed`` is decided by the check with its stated tolerance (relative
    unless ``details['tolerance_kind']`` says otherwise); ``error`` is the
    quantity compared with ``tolerance``.
    """

    predicted: float | None
    measured: float | None
    error: float | None
    tolerance: float | None
    passed: bool
    details: dict = field(default_factory=dict)


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
                f"claim {self.id} has no empirical check attached; import empirics.checks first"
            )
        return self.check_fn(device=device, seed=seed, quick=quick)

    def explain(self) -> str:
        """The teaching view: statement, assumptions, derivation steps, source."""
        d = self.derive()
        lines = [f"{self.id} -- {self.title}", f"source: {self.source}", "", "statement:",
                 f"  {self.statement}", "", "assumptions:"]
        lines += [f"  - {a}" for a in self.assumptions] or ["  (none)"]
        lines += ["", f"derivation ({d.status}):"]
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
