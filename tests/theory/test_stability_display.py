"""display_form against its contract, checked from the outside: the shown expression equals the
input, and every factor it shows is positive at the point (a leading -1 carries the sign)."""
import pytest
import sympy as sp

from momentumlab.theory.stability_display import display_form

b, x = sp.symbols("beta x", real=True)
eta = sp.Symbol("eta", positive=True)


def _shown_factors(e):
    """(overall sign, the factors of numerator and denominator as shown)."""
    sign, factors = 1, []
    args = list(sp.Mul.make_args(e)) if isinstance(e, sp.Mul) else [e]
    if args and args[0] == -1:
        sign, args = -1, args[1:]
    for a in args:
        base, ex = (a.base, a.exp) if isinstance(a, sp.Pow) and a.exp == -1 else (a, 1)
        factors += [f.base if isinstance(f, sp.Pow) else f for f in sp.Mul.make_args(base)]
    return sign, factors


@pytest.mark.parametrize("expr, point, sign", [
    (-2 * (b + 1) / (b - 1), {b: 0.9}, 1),
    ((b + 1) / (b - 1), {b: 0.9}, -1),
    (-3 * (b + 1) / (b + 2), {b: 0.5}, -1),
    ((b - 1) ** 2 / (b + 2), {b: 0.3}, 1),
    ((b - 1) ** 3 / (b + 2), {b: 0.3}, -1),
    (2 * (b + 1) / ((1 - b) * eta), {b: 0.9}, 1),
    ((x - 3) / (x + 1), {}, -1),  # symbols the point leaves out are taken at 1
    ((2 * x - 3) / (x + 1), {}, -1),  # ... so 2x - 3 is shown as -(3 - 2x) (positive at x = 1)
    (sp.Integer(2) / eta, {}, 1),
    (1 / (b + 2), {b: 0.5}, 1),  # a numerator 1 is a positive number too
    (-1 / (b + 2), {b: 0.5}, -1),
    ((2 * b - 1) / (b + 2), {b: 0.9}, 1),  # a factor in (0, 1) at the point is kept as it is
    ((b + 1) / 2, {b: 0.5}, 1),
    (3 * (b + 1), {b: 0.5}, 1),
])
def test_display_form_is_equal_with_positive_factors(expr, point, sign):
    shown = display_form(expr, point)
    assert sp.simplify(shown - expr) == 0
    got_sign, factors = _shown_factors(shown)
    assert got_sign == sign, shown
    at = {**{s: 1 for s in expr.free_symbols}, **point}  # display_form takes a symbol the point leaves out at 1
    for f in factors:
        assert float(f.subs(at)) > 0, (shown, f)


def test_no_denominator_is_shown_without_one():
    shown = display_form(3 * (b + 1) * (b - 2), {b: 0.5})
    assert "/" not in str(shown) and sp.simplify(shown - 3 * (b + 1) * (b - 2)) == 0
