"""Schur stability (every root strictly inside the unit disk) for symbolic polynomials.

sympy 1.14 has no Schur--Cohn or Jury test, so this module builds one from two
classical facts, both exact for real coefficients that are numbers, rationals
or sympy expressions:

1. **Bilinear map.**  ``z = (1 + s)/(1 - s)`` maps the open unit disk onto the open
   left half-plane, so every root of ``p(z) = a_n z^n + ... + a_0`` (``a_n != 0``)
   lies in ``|z| < 1`` iff ``q(s) = (1 - s)^n p((1 + s)/(1 - s))`` has degree ``n``
   and is Hurwitz (every root has ``Re s < 0``).  ``q(0) = p(1)`` and the leading
   coefficient of ``q`` is ``(-1)^n p(-1)``.
2. **Lienard--Chipart criterion** (Gantmacher, *The Theory of Matrices* II,
   ch. XV sec. 13): a real ``q(s) = b_n s^n + ... + b_0`` with ``b_n > 0`` is Hurwitz
   iff all ``b_k > 0`` and the Hurwitz determinants ``Delta_{n-1}, Delta_{n-3}, ...``
   are positive.  (All ``b_k > 0`` is necessary, so keeping every coefficient --
   a superset of Lienard--Chipart's alternate ones -- does not change the set.)

The sign of ``a_n`` is handled by working with ``a_n p``, which has the same roots
and a positive leading coefficient ``a_n^2``; its ``q`` has coefficients
``a_n b_k`` and determinants ``a_n^k Delta_k``.

Each condition has a meaning on the boundary of the stable region:
``p(1) > 0`` fails when a real root crosses ``z = 1``; ``(-1)^n p(-1) > 0`` when a
real root crosses ``z = -1``; ``Delta_{n-1} > 0`` when a complex pair crosses the
circle at ``e^{+-i theta}`` (``q`` gains a pair ``s = +-i omega``).  Jury's table
(Jury 1964, *Theory and Application of the z-Transform Method*, ch. 3) gives an
equivalent set; the tests compare both with ``numpy.roots``.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import sympy as sp

__all__ = [
    "Condition",
    "bilinear",
    "hurwitz_determinant",
    "schur_conditions",
    "labelled_conditions",
    "is_schur_stable",
    "jury_conditions_deg2",
    "jury_conditions_deg3",
]

_S = sp.Symbol("s")


@dataclass(frozen=True)
class Condition:
    """One Schur condition ``expr > 0`` and the boundary crossing it guards."""

    expr: sp.Expr
    label: str

    def __str__(self) -> str:
        return f"{sp.sstr(self.expr)} > 0"


def _coeffs(p, z) -> list:
    """Coefficients ``[a_0, ..., a_n]`` of ``p`` in ``z`` (``a_n`` the leading one)."""
    poly = sp.Poly(sp.expand(p), z)
    return list(reversed(poly.all_coeffs()))


def bilinear(p, z, s=_S) -> sp.Expr:
    """``q(s) = (1 - s)^n p((1 + s)/(1 - s))`` as an expanded polynomial in ``s``."""
    a = _coeffs(p, z)
    n = len(a) - 1
    return sp.expand(sum(a[k] * (1 + s) ** k * (1 - s) ** (n - k) for k in range(n + 1)))


def hurwitz_determinant(b, k: int):
    """``Delta_k`` of ``b_n s^n + ... + b_0`` given ``b = [b_0, ..., b_n]``.

    Hurwitz matrix ``H_ij = c_{2j-i}`` (1-based) with ``c_m = b_{n-m}`` and
    ``c_m = 0`` outside ``0..n``; ``Delta_k`` is its leading ``k x k`` minor.
    """
    n = len(b) - 1

    def c(m):
        return b[n - m] if 0 <= m <= n else 0

    H = sp.Matrix(k, k, lambda i, j: c(2 * (j + 1) - (i + 1)))
    return sp.expand(H.det(method="berkowitz"))


def _tidy(expr) -> sp.Expr:
    """Factor and drop positive numeric factors (the sign of ``expr`` is unchanged)."""
    expr = sp.factor(sp.expand(expr))
    if expr.is_Number:
        return expr
    coeff, rest = expr.as_coeff_Mul()
    return rest if coeff > 0 else -rest if coeff < 0 else expr


@lru_cache(maxsize=None)
def _generic_conditions(n: int) -> tuple[tuple[sp.Expr, str], ...]:
    """Conditions for the generic degree-``n`` polynomial with coefficients ``_a0 ... _an``."""
    a = sp.symbols(f"_a0:{n + 1}", real=True)
    z = sp.Symbol("_z")
    p = sum(a[k] * z**k for k in range(n + 1))
    b = _coeffs(bilinear(p, z), _S)
    b = b + [0] * (n + 1 - len(b))
    lead = a[n]
    out = []
    for k in range(n + 1):
        if k == 0:
            label = "z = 1 crossing: p(1) > 0"
        elif k == n:
            label = "z = -1 crossing: (-1)^n p(-1) > 0"
        elif k == n - 1 and n == 2:
            label = "complex-pair crossing z = exp(+-i theta): b_1 = Hurwitz Delta_1 > 0"
        else:
            label = f"coefficient b_{k} of the bilinear transform > 0"
        out.append((lead * b[k], label))
    for k in range(n - 1, 1, -2):
        d = hurwitz_determinant(b, k)
        label = ("complex-pair crossing z = exp(+-i theta): Hurwitz Delta_{n-1} > 0"
                 if k == n - 1 else f"Hurwitz Delta_{k} > 0")
        out.append((d * lead ** (k % 2), label))
    return tuple(out)


def labelled_conditions(p, z) -> list[Condition]:
    """Conditions ``c > 0`` that all hold exactly when every root of ``p`` has ``|z| < 1``.

    ``p`` is a polynomial in ``z`` with real (numeric, rational or symbolic)
    coefficients and nonzero leading coefficient; the conditions also fail when
    the leading coefficient is zero.  Duplicates are removed; numbers are kept
    (a nonpositive number means "never stable").
    """
    a = _coeffs(p, z)
    n = len(a) - 1
    if n < 1:
        raise ValueError("need a polynomial of degree >= 1 in z")
    gen = sp.symbols(f"_a0:{n + 1}", real=True)
    subs = dict(zip(gen, a))
    seen, out = set(), []
    for expr, label in _generic_conditions(n):
        c = _tidy(expr.xreplace(subs))
        if c.is_Number and c > 0:
            continue
        if c in seen:
            continue
        seen.add(c)
        out.append(Condition(c, label))
    return out


def schur_conditions(p, z) -> list[sp.Expr]:
    """The expressions ``c`` of :func:`labelled_conditions` (stable iff every ``c > 0``)."""
    return [c.expr for c in labelled_conditions(p, z)]


def is_schur_stable(p, z, subs=None) -> bool:
    """Exact decision for numeric/rational coefficients (after ``subs``)."""
    p = sp.sympify(p)
    if subs:
        p = p.subs(subs)
    return all(bool(c > 0) for c in schur_conditions(sp.nsimplify(p, rational=True)
                                                     if p.has(sp.Float) else p, z))


# ------------------------------------------------------------ Jury's table (reference)
def jury_conditions_deg2(p, z) -> list[sp.Expr]:
    """Jury's conditions for monic ``z^2 + a1 z + a0``: ``p(1) > 0, p(-1) > 0, 1 - |a0| > 0``.

    Written without ``Abs`` as ``1 - a0 > 0`` and ``1 + a0 > 0`` (Jury 1964).
    """
    a0, a1, a2 = _coeffs(p, z)
    a0, a1 = a0 / a2, a1 / a2
    return [1 + a1 + a0, 1 - a1 + a0, 1 - a0, 1 + a0]


def jury_conditions_deg3(p, z) -> list[sp.Expr]:
    """Jury's conditions for monic ``z^3 + a2 z^2 + a1 z + a0``.

    ``p(1) > 0``, ``-p(-1) > 0``, ``|a0| < 1`` and ``|a0^2 - 1| > |a0 a2 - a1|``
    (Jury 1964; Ogata, *Discrete-Time Control Systems*, sec. 4-3); with
    ``|a0| < 1`` the last one reads ``1 - a0^2 - |a0 a2 - a1| > 0``.
    """
    a0, a1, a2, a3 = _coeffs(p, z)
    a0, a1, a2 = a0 / a3, a1 / a3, a2 / a3
    return [1 + a2 + a1 + a0, 1 - a2 + a1 - a0, 1 - a0, 1 + a0,
            1 - a0**2 - (a0 * a2 - a1), 1 - a0**2 + (a0 * a2 - a1)]
