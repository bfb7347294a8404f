"""The claim spine's contract, seen from outside: what the default controls predict, where the
resolution lands for checks whose acceptance band is known by hand, is_zero on non-zeros, the
numbered steps of explain, and the suggestions of an unknown id."""
import numpy as np
import pytest
import sympy as sp

import momentumlab.theory.stability  # noqa: F401  (registers the stability claims)
from momentumlab.theory.claims import (DEFAULT_CONTROLS, CheckResult, Claim, Control, Derivation,
                                      Step, UnknownClaimError, is_zero, piecewise_branch,
                                      resolution, run_controls)


def test_only_the_two_proved_statuses_are_proved():
    x = sp.Symbol("x")
    assert not Derivation.from_steps(None, [Step("c", x, False)]).proved  # derived
    assert not Derivation.measurement("measured").proved  # empirical
    assert Derivation.from_steps(None, [Step("a", 0, True)]).proved


@pytest.mark.parametrize("prediction", [2.5, np.array([1.0, -3.0]), {"a": 2.0, "b": [1.0, 4.0]},
                                        (1.0, 2.0)])
def test_default_controls_predict_twice_half_and_minus(prediction):
    seen = []

    def compare(p):
        seen.append(p)
        return 1.0, False

    r = CheckResult(prediction, 0.0, 0.0, 0.0, True, compare=compare)
    run_controls(DEFAULT_CONTROLS, r)
    flat = lambda p: np.concatenate([np.ravel(v) for v in (  # noqa: E731
        [p["a"], p["b"]] if isinstance(p, dict) else [p])]).astype(float)
    base = flat(prediction)
    assert len(seen) == 3
    for got, factor in zip(seen, (2.0, 0.5, -1.0)):
        assert type(got) is type(prediction)
        assert np.array_equal(flat(got), factor * base)


def _band(lo, hi):
    """A check that accepts a prediction p' iff p'/2 lies in [lo, hi] (the right one is 2)."""
    def compare(p):
        ratio = p / 2.0
        return abs(ratio - 1), bool(lo <= ratio <= hi)
    return CheckResult(2.0, 2.0, 0.0, 0.0, True, compare=compare)


@pytest.mark.parametrize("lo, hi, want", [
    # worked by hand on the grid 10^(k/4): the first delta from which both 1 + delta and the
    # downward perturbation (1 - delta below 1, 1/(1 + delta) from 1 on) are rejected
    (0.85, 1.001, 10 ** -0.75),  # 1 - 0.1778 = 0.822 < 0.85; 1 - 0.1 = 0.9 is accepted
    (0.999, 1.2, 10 ** -0.5),    # 1.3162 > 1.2; 1.1778 is accepted
    (0.6, 1.5, 10 ** -0.25),     # 1.5623 and 0.4377 rejected; 1.3162 accepted
    (0.3, 1.5, 10 ** 0.5),       # delta = 1.778: 1/2.778 = 0.36 accepted; 3.16: 0.24 rejected
    (0.55, 2.5, 10 ** 0.25),     # delta = 1: 1 + 1 = 2 accepted; 1.778: 2.778 and 0.36 rejected
])
def test_resolution_for_known_bands(lo, hi, want):
    assert resolution(_band(lo, hi)) == pytest.approx(want, rel=1e-9)


def test_is_zero_rejects_one_and_constants():
    x = sp.Symbol("x", positive=True)
    assert not is_zero(1) and not is_zero(sp.Integer(1)) and not is_zero(x / x)
    assert not is_zero(sp.cos(x) ** 2 + sp.sin(x) ** 2)
    assert is_zero(sp.cos(x) ** 2 + sp.sin(x) ** 2 - 1) and is_zero(0)


def test_explain_numbers_the_steps_from_one():
    claim = Claim("tmp.y", "t", "s", "st", (), lambda: Derivation.from_steps(
        None, [Step("first", 0, True), Step("second", 0, True)]))
    text = claim.explain()
    assert "  1. " in text and "  2. " in text and "  0. " not in text and "  3. " not in text


def test_unknown_id_suggestions():
    # difflib ratio 0.4: a close match at the cutoff 0.3, whichever other claims are registered
    assert "stability.heavy_ball" in UnknownClaimError("heavy").near
    assert len(UnknownClaimError("stab").near) == 5  # at most five
    # no close match: the ids of the same topic
    near = UnknownClaimError("stability." + "z" * 100).near
    assert len(near) == 5 and all(n.startswith("stability.") for n in near)
    assert UnknownClaimError("nosuchtopic." + "z" * 100).near == []


def test_all_controls_are_the_defaults_then_the_claims_own():
    own = Control("beta -> beta^2", lambda r: 0.0)
    claim = Claim("tmp.z", "t", "s", "st", (), lambda: Derivation.from_steps(None, []),
                  controls=(own,))
    assert claim.all_controls == (*DEFAULT_CONTROLS, own)


@pytest.mark.parametrize("cond", ["eq", "gt"])
def test_piecewise_branch_refuses_an_undecidable_condition(cond):
    x, y = sp.symbols("x y", positive=True)
    c = sp.Eq(x, y) if cond == "eq" else x > y  # true for some positive x, y, false for others
    with pytest.raises(ValueError, match="cannot decide"):
        piecewise_branch(sp.Piecewise((1, c), (2, True)))
    # decided ones: x + y > 0 and x + y != 0 hold for positive symbols
    assert piecewise_branch(sp.Piecewise((1, sp.Eq(x + y, 0)), (2, True))) == 2
    assert piecewise_branch(sp.Piecewise((1, x + y > 0), (2, True))) == 1
