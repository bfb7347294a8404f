"""Every adamp.* and convergence.* check passes and rejects each of its negative controls.

Each check runs once (module-scoped fixture); the controls re-judge the same measurement.
"""
import pytest
import sympy as sp

import momentumlab.theory.convergence as cv
from momentumlab.empirics.checks import load_claims
from momentumlab.empirics.checks.convergence import CHAIN, chain_check, chain_trajectory
from momentumlab.theory.claims import get_claim, resolution, run_controls

load_claims()
IDS = ["adamp.lemma2.1", "adamp.lemma2.2", "adamp.corollary2.3", "adamp.lemmaA.1", "adamp.proposition3.1",
       "convergence.adam_bound", "convergence.vradam_bound", "convergence.rate"]


@pytest.fixture(scope="module")
def results():
    return {cid: get_claim(cid).check(device="cpu", seed=0, quick=True) for cid in IDS}


@pytest.mark.parametrize("cid", IDS)
def test_check_passes_and_rejects_every_control(results, cid):
    claim, result = get_claim(cid), results[cid]
    assert result.passed, result.details.get("summary")
    outcomes = run_controls(claim.all_controls, result)
    assert len(outcomes) >= len(claim.all_controls) - 1  # a control equal to the prediction is skipped
    assert [o.name for o in outcomes if not o.rejected] == []
    assert len(claim.controls) >= 1 and claim.quantities and claim.pass_rule
    res = resolution(result)
    assert res is not None and res < 1e-3


def test_adam_bound_reports_per_step_slack(results):
    chains = results["convergence.adam_bound"].details["chain_tightness"]
    for steps in chains.values():
        for name in ("descent_lemma", "C_bound", "B_bound", "U_coefficient", "log_sum_lemma", "series_sqrt",
                     "series_k32"):
            assert 1e-4 < steps[name] <= 1  # holds, and tight enough that a 1000x error would show


@pytest.fixture
def restore_constants():
    yield
    cv.clear_caches()
    get_claim("convergence.adam_bound").__dict__.pop("_derivation", None)


def test_dividing_the_12dR2_term_by_1000_fails_the_check(results, monkeypatch, restore_constants):
    """The issue's mutation: U_COEF (3, the only constant of the 12 d R^2 term besides the published
    form's 12 = 2 x U_COEF x SERIES_SQRT) divided by 1000.  The derivation stops being proved, the
    chain's U-coefficient inequality fails on the recorded trajectories, and the check fails."""
    monkeypatch.setattr(cv, "U_COEF", cv.U_COEF / 1000)
    cv.clear_caches()
    claim = get_claim("convergence.adam_bound")
    claim.__dict__.pop("_derivation", None)
    assert claim.derive().status == "derived"
    N, seeds = CHAIN["quick"]
    tight = chain_check(chain_trajectory("robust_regression", N, seeds))
    assert tight["U_coefficient"] > 1
    result = claim.check(device="cpu", seed=0, quick=True)
    assert not result.passed
    assert "robust_regression.U_coefficient" in result.details["chain_violations"]


def test_published_12_divided_by_1000_fails_the_check(results, monkeypatch, restore_constants):
    """The same mutation in the published form: the bound no longer equals it."""
    original = cv._E_published

    def mutated(a=cv.alpha, b2=cv.beta2):
        g = 1 - cv.beta1 / b2
        term = 12 * cv.d * cv.R**2 * sp.sqrt(1 - cv.beta1) / (g ** sp.Rational(3, 2) * sp.sqrt(1 - b2))
        return original(a, b2) - term + term / 1000

    monkeypatch.setattr(cv, "_E_published", mutated)
    cv.clear_caches()
    result = get_claim("convergence.adam_bound").check(device="cpu", seed=0, quick=True)
    assert not result.passed and result.error > 0.5
