"""The stability claims' experiments in quick mode, and that they can fail."""
import numpy as np
import pytest

from momentumlab.empirics.checks import load_claims
from momentumlab.empirics.checks.stability import LINEAR_TOL, _growing, _settings, locate, tam_cosine_phase
from momentumlab.theory.claims import get_claim, resolution, run_controls, select

load_claims()
IDS = [c.id for c in select(["stability"])]


@pytest.fixture(scope="module")
def results():
    """Each check once (quick)."""
    return {cid: get_claim(cid).check(device="cpu", seed=0, quick=True) for cid in IDS}


@pytest.mark.parametrize("claim_id", IDS)
def test_claim_passes_and_rejects_every_control(claim_id, results):
    claim = get_claim(claim_id)
    assert claim.derive().status == ("proved from lemmas" if claim_id == "stability.vradam" else "proved")
    res = results[claim_id]
    assert res.passed, res.details
    assert res.error <= res.tolerance
    outcomes = run_controls(claim.all_controls, res)
    n_controls = 3 if claim_id == "stability.gd" else 5  # gd has no beta: no formula controls
    assert len(outcomes) == n_controls and all(o.rejected for o in outcomes), outcomes
    assert resolution(res) < 1


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


def test_vradam_details_report_both_thresholds(results):
    res = results["stability.vradam"]
    kinds = {r["kind"] for r in res.details["rows"]}
    assert len(kinds) == 2 and res.details["bounded_between"]["all_bounded"]


def test_adam_running_details(results):
    res = results["stability.adam"]
    run = res.details["running_second_moment"]
    assert run["cells_past_threshold"] > 0 and run["diverged_past_threshold"] == 0
