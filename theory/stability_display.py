"""Display forms of the stability thresholds (readable fractions, LaTeX of each claim)."""
from __future__ import annotations

from typing import Mapping

import sympy as sp

__all__ = ["display_form", "LATEX"]

#: the threshold of each model as the claim's statement shows it
LATEX = {
    "gd": "2", "heavy_ball": r"2+2\beta", "ema_momentum": r"\frac{2+2\beta}{1-\beta}",
    "nesterov": r"\frac{2+2\beta}{1+2\beta}", "nadam": r"\frac{2(1+\beta_1)}{(1-\beta_1)(1+2\beta_1)}",
    "rmsprop": r"2+2\beta\ (=2\ \text{without momentum})", "adam": r"\frac{2+2\beta_1}{1-\beta_1}",
    "vradam": r"B(\beta_1)\,(1+\min(\beta_3\|v\|^2,\alpha_1)),\ B(\beta)=\frac{2+2\beta}{1-\beta}",
    "tam": r"\frac{2+2\beta}{d+\epsilon}",
}



def display_form(expr, point: Mapping) -> sp.Expr:
    """``expr`` as an unevaluated fraction whose factors are positive at ``point``.

    Display only (``(2*beta + 2)/(1 - beta)`` rather than sympy's
    ``-2*(beta + 1)/(beta - 1)``); equal to ``expr``.
    """
    n, d = sp.fraction(sp.factor(expr))
    point = {**{s: 1 for s in sp.sympify(expr).free_symbols}, **point}
    sign = 1

    def parts(x):
        nonlocal sign
        out = []
        for f in sp.Mul.make_args(x):
            base, ex = f.as_base_exp()
            if f.is_Number:
                sign *= 1 if f > 0 else -1
                f = abs(f)
            elif base.is_Add and ex.is_integer and base.subs(point) < 0:
                base = sp.expand(-base)
                sign *= (-1) ** ex
                f = base**ex
            out.append(f)
        return sp.Mul(*out)

    num, den = parts(n), parts(d)
    out = num if den == 1 else sp.Mul(num, sp.Pow(den, -1, evaluate=False), evaluate=False)
    return out if sign > 0 else sp.Mul(-1, out, evaluate=False)

