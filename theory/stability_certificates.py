"""Positivity certificates: the sign of a Schur condition on the whole hyperparameter domain.

Every condition is classified on the hyperparameter domain (``beta`` in [0, 1),
``d`` in (0, 1], ``epsilon, G >= 0``) by a *positivity certificate*: after the
substitutions ``beta = u/(1+u)``, ``d = 1/(1+u)`` (``u >= 0``), the numerator and
denominator are polynomials in nonnegative variables whose coefficients all
have one sign and whose constant term is nonzero -- sign-definite on the whole
domain.  A linear condition ``a h + b > 0`` is then one of: ``h > 0`` (``b = 0``,
``a > 0``), always true for ``h >= 0`` (``a >= 0``, ``b > 0``), or an upper bound
``h < -b/a`` (``a < 0 < b``).
"""
from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from momentumlab.theory.claims import is_zero
from momentumlab.theory.stability_models import H, Model

__all__ = ["domain_substitution", "positivity_certificate", "Role", "classify_condition"]


def domain_substitution(model: Model) -> tuple[dict, list[sp.Symbol]]:
    """Map each parameter to an expression in nonnegative variables covering its domain."""
    subs, variables = {}, []
    for p in model.params:
        u = sp.Symbol(f"u_{p.name}", nonnegative=True)
        if p.domain == "unit":
            subs[p.symbol] = u / (1 + u)
        elif p.domain == "unit_right":
            subs[p.symbol] = 1 / (1 + u)
        else:
            subs[p.symbol] = u
        variables.append(u)
    return subs, variables


def positivity_certificate(expr, variables, strict: bool = True, positive=()) -> bool:
    """True when ``expr`` (rational in nonnegative ``variables``) is sign-definite positive.

    Numerator and denominator, expanded as polynomials in ``variables``, must
    each have numeric coefficients of one sign, the same sign for both, and --
    for ``strict`` -- a monomial in the strictly positive variables ``positive``
    alone (the constant term counts): then ``expr > 0`` (``>= 0`` when not
    ``strict``) wherever ``variables >= 0`` and ``positive > 0``.
    """
    variables = list(variables) + [p for p in positive if p not in variables]
    pos = [variables.index(p) for p in positive]
    num, den = sp.fraction(sp.together(sp.expand(expr)))
    signs = []
    for part, need in ((num, strict), (den, True)):
        part = sp.expand(part)
        if part == 0:
            return False
        terms = sp.Poly(part, *variables).terms() if variables else [((), part)]
        if not all(c.is_number for _, c in terms):
            return False
        s = {bool(c > 0) for _, c in terms if c != 0}
        if len(s) != 1:
            return False
        only_pos = any(all(e == 0 or i in pos for i, e in enumerate(m)) for m, _ in terms)
        if need and not only_pos:
            return False
        signs.append(s.pop())
    return signs[0] == signs[1]


@dataclass(frozen=True)
class Role:
    """How one Schur condition constrains ``h`` on the domain."""

    kind: str  # "lower" (h > 0), "always", "upper", "domain", "unknown"
    bound: sp.Expr | None
    certified: bool
    text: str


def classify_condition(c: sp.Expr, subs: dict, variables) -> Role:
    """Classify ``c > 0`` (linear in ``h``) on the domain; see the module docstring."""
    c = sp.expand(c)
    dom = lambda e, strict=True: positivity_certificate(sp.sympify(e).subs(subs), variables, strict)  # noqa: E731
    if not c.has(H):
        ok = dom(c)
        return Role("domain", None, ok, "independent of eta*lambda; > 0 on the whole domain"
                    if ok else "independent of eta*lambda; sign not certified")
    poly = sp.Poly(c, H)
    if poly.degree() != 1:
        return Role("unknown", None, False, f"degree {poly.degree()} in eta*lambda: not classified")
    a, b = poly.all_coeffs()
    if is_zero(b):
        ok = dom(a)
        return Role("lower", sp.Integer(0), ok, "= a*eta_lambda with a > 0: holds iff eta*lambda > 0")
    if dom(b) and (dom(a, strict=False) or is_zero(a)):
        return Role("always", None, True, "a >= 0 and b > 0: holds for every eta*lambda >= 0")
    if dom(-a) and dom(b):
        bound = sp.factor(sp.cancel(-b / a))
        return Role("upper", bound, True, f"a < 0 < b: holds iff eta*lambda < {sp.sstr(bound)}")
    return Role("unknown", None, False, "sign of the coefficients not certified")

