"""theory.claims.piecewise_branch selects a Piecewise branch by deciding its condition."""
import pytest
import sympy as sp

from momentumlab.theory.claims import piecewise_branch

q = sp.Symbol("q", positive=True)
k = sp.Symbol("k", integer=True, nonnegative=True)
n = sp.Symbol("n", integer=True, positive=True)
a = 1 / (1 + q)  # a ratio in (0, 1)


def test_finite_geometric_sum_takes_the_ratio_not_one_branch():
    """Piecewise((n, Eq(a, 1)), (..., True)): Eq(a, 1) is decided False for q > 0 (the old
    'last branch' helper happened to agree; the condition, not the position, decides now)."""
    got = piecewise_branch(sp.summation(a**k, (k, 0, n - 1)))
    assert sp.simplify(got - (1 - a**n) / (1 - a)) == 0


def test_infinite_series_takes_the_convergent_branch():
    """Piecewise((1/(1-a), Abs(a) < 1), (Sum(...), True)): the first branch holds."""
    assert sp.simplify(piecewise_branch(sp.summation(a**k, (k, 0, sp.oo))) - 1 / (1 - a)) == 0


def test_a_branch_holding_under_an_assumption():
    j, m = sp.symbols("j m", integer=True, positive=True)
    pw = sp.Piecewise((1, (j <= m) & (j >= 1)), (0, True))
    assert piecewise_branch(pw, (j <= m) & (j >= 1)) == 1


def test_undecidable_condition_raises_instead_of_guessing():
    x = sp.Symbol("x", real=True)
    with pytest.raises(ValueError, match="cannot decide"):
        piecewise_branch(sp.Piecewise((1, x > 0), (2, True)))


def test_a_false_first_condition_is_skipped():
    assert piecewise_branch(sp.Piecewise((1, sp.Eq(q + 1, 0)), (2, True))) == 2
