"""Update rule + quadratic model -> iteration matrix -> characteristic polynomial.

On ``f(w) = lam w^2 / 2`` (one eigen-direction of a quadratic, ``g = f'(w) = lam w``)
a rule from :mod:`theory.rules` is run **once, on sympy symbols** (ops
:data:`theory.ops.SYMPY_SCALAR`): ``w`` and the *dynamic* state entries (the
momentum buffers) are symbols, every other state entry gets a fixed value.
The one-step map ``z_{t+1} = F(z_t)``, ``z = (w, m, ...)``, is then
differentiated at the fixed point ``z = 0``; its Jacobian is the iteration
matrix ``A`` and ``det(mu I - A)`` the characteristic polynomial.

Two devices make adaptive rules time-invariant; each is an assumption that the
claims state:

* **late time** -- the step counter is the symbol :data:`T` and every power whose
  exponent contains ``T`` (``beta^T``, ``0.96^(T psi)``) is replaced by 0, the
  limit ``T -> oo`` for bases in ``(0, 1)``: bias corrections become 1 and NAdam's
  momentum schedule reaches its constant value ``beta1``;
* **freezing** (:class:`Freeze`) -- a subexpression of the one-step map (the
  square root of the second moment, VRAdam's gate ``min(beta3 ||v||^2, alpha1)``)
  is replaced by a symbol *before* differentiating, i.e. held fixed while
  ``w`` and the momentum move.  With the preconditioner frozen at ``P`` the
  curvature enters only as ``lam / (P + eps)``: an eigenvalue of ``P^{-1} H``
  (Cohen et al. 2022, arXiv 2207.14484, Sec. 3, "frozen Adam").
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import sympy as sp

from momentumlab.theory.ops import SYMPY_SCALAR
from momentumlab.theory.rules import Rule

__all__ = ["T", "MU", "Freeze", "sqrt_containing", "min_node", "late_time", "OneStep",
           "one_step", "Linearization", "linearize", "characteristic_polynomial"]

#: The step counter at late times (``T -> oo``).
T = sp.Symbol("T", positive=True, integer=True)
MU = sp.Symbol("mu")


@dataclass(frozen=True)
class Freeze:
    """Replace every subexpression matching ``match`` by ``value`` (held fixed)."""

    description: str
    match: Callable[[sp.Basic], bool]
    value: sp.Expr

    def apply(self, expr):
        return sp.sympify(expr).replace(self.match, lambda *_: self.value)


def sqrt_containing(sym: sp.Symbol, value: sp.Expr, what: str = "preconditioner") -> Freeze:
    """Freeze every square root whose argument contains ``sym`` (the second moment)."""

    def match(e):
        return (isinstance(e, sp.Pow) and e.exp in (sp.Rational(1, 2), sp.Float(0.5))
                and e.base.has(sym))

    return Freeze(f"{what}: sqrt(...{sym}...) frozen at {value}", match, value)


def min_node(value: sp.Expr, what: str = "gate") -> Freeze:
    """Freeze every ``Min(...)`` node (VRAdam's ``min(beta3 ||v||^2, alpha1)``)."""
    return Freeze(f"{what}: Min(...) frozen at {value}", lambda e: isinstance(e, sp.Min), value)


def late_time(expr, t: sp.Symbol = T):
    """Replace powers ``b**(...t...)`` by 0 (``t -> oo`` with ``|b| < 1``) and tidy."""
    expr = sp.sympify(expr)
    expr = expr.replace(lambda e: isinstance(e, sp.Pow) and e.exp.has(t), lambda *_: sp.Integer(0))
    return expr.subs(t, sp.oo) if expr.has(t) else expr


@dataclass(frozen=True)
class OneStep:
    """The one-step map on the state vector ``z = (w, *dynamic)``."""

    variables: tuple[sp.Symbol, ...]
    images: tuple[sp.Expr, ...]
    names: tuple[str, ...]


def one_step(rule: Rule, hyper: Mapping[str, Any], lam, *, dynamic: Sequence[str],
             fixed_state: Mapping[str, Any] | None = None, freeze: Sequence[Freeze] = (),
             ops=SYMPY_SCALAR, late: bool = True) -> OneStep:
    """Run ``rule`` once on symbols: ``g = d/dw (lam w^2/2)``; returns the map ``z -> z'``.

    ``dynamic`` names the state entries that move with ``w`` (momentum buffers);
    ``fixed_state`` gives the others (step counter, second moment, ...); keys not
    listed keep ``rule.init``'s value.  ``freeze`` is applied to the images and
    the late-time limit is taken (unless ``late=False``).
    """
    w = sp.Symbol("w", real=True)
    dyn = {k: sp.Symbol(f"z_{k}", real=True) for k in dynamic}
    state = dict(rule.init(w, ops))
    missing = set(dynamic) - set(state)
    if missing:
        raise KeyError(f"rule {rule.name!r} has no state entries {sorted(missing)}")
    state.update(fixed_state or {})
    state.update(dyn)
    g = sp.diff(lam * w**2 / 2, w)
    w_new, new_state = rule.step(w, g, state, dict(hyper), ops)
    images = [w_new] + [new_state[k] for k in dynamic]
    out = []
    for e in images:
        for f in freeze:
            e = f.apply(e)
        out.append(late_time(e) if late else e)
    return OneStep((w, *dyn.values()), tuple(out), ("w", *dynamic))


@dataclass(frozen=True)
class Linearization:
    """Iteration matrix ``A`` at ``z = 0``, and whether the map is exactly linear."""

    step: OneStep
    matrix: sp.Matrix
    linear: bool
    residual: tuple[sp.Expr, ...] = field(default=())

    def charpoly(self, mu: sp.Symbol = MU) -> sp.Expr:
        return characteristic_polynomial(self.matrix, mu)


def linearize(step: OneStep) -> Linearization:
    """Jacobian of ``step`` at the fixed point ``z = 0``; ``linear`` when ``F(z) - A z == 0``."""
    z = sp.Matrix(step.variables)
    F = sp.Matrix(step.images)
    at0 = dict.fromkeys(step.variables, 0)
    A = F.jacobian(z).subs(at0)
    A = A.applyfunc(sp.simplify)
    residual = tuple(sp.simplify(r) for r in (F - A * z))
    return Linearization(step, A, all(r == 0 for r in residual), residual)


def characteristic_polynomial(A: sp.Matrix, mu: sp.Symbol = MU) -> sp.Expr:
    """``det(mu I - A)``, expanded and collected in ``mu`` (monic)."""
    n = A.shape[0]
    p = (mu * sp.eye(n) - A).det(method="berkowitz")
    return sp.collect(sp.expand(sp.simplify(p)), mu)
