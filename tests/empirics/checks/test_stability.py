"""The stability claims' experiments in quick mode, and that they can fail."""
import numpy as np
import pytest

from momentumlab.empirics.checks import load_claims
from momentumlab.empirics.checks.stability import LINEAR_TOL, _growing, _settings, locate, tam_cosine_phase
from momentumlab.theory.claims import get_claim, select

load_claims()
IDS = [c.id for c in select(["stability"])]


@pytest.mark.parametrize("claim_id", IDS)
def test_claim_passes_in_quick_mode(claim_id):
    claim = get_claim(claim_id)
    assert claim.derive().status == "proved"
    res = claim.check(device="cpu", seed=0, quick=True)
    assert res.passed, res.details
    assert res.error <= res.tolerance
    if claim_id != "stability.vradam":  # VRAdam's headline is the saturated threshold (G = alpha1)
        assert res.predicted == pytest.approx(claim.predict(), rel=1e-12)


def test_located_threshold_rejects_a_wrong_formula():
    """The measurement is independent of the formula: 2 + beta (wrong) misses by far more
    than the tolerance, 2 + 2 beta (right) is within it."""
    betas = np.array([0.5, 0.9])
    m = locate("heavy_ball", _growing, "beta", betas, **_settings(True))
    right, wrong = 2 + 2 * betas, 2 + betas
    assert np.all(np.abs(m / right - 1) <= LINEAR_TOL)
    assert np.all(np.abs(m / wrong - 1) > 100 * LINEAR_TOL)


def test_tam_cosine_phase_prediction():
    out = tam_cosine_phase(0.9, 3.0)
    assert out["cos_all_minus_one"] and out["s_hat_max_error"] < 1e-12
    assert out["phase_steps"] == out["predicted_phase_steps"] == 11


def test_vradam_details_report_both_thresholds():
    res = get_claim("stability.vradam").check(quick=True)
    kinds = {r["kind"] for r in res.details["rows"]}
    assert len(kinds) == 2 and res.details["bounded_between"]["all_bounded"]


def test_adam_running_details():
    res = get_claim("stability.adam").check(quick=True)
    run = res.details["running_second_moment"]
    assert run["cells_past_threshold"] > 0 and run["diverged_past_threshold"] == 0
