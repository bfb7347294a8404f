"""The edge-of-stability claims in quick mode (runs shared through the cache)."""
import pytest

from momentumlab.empirics.checks import load_claims
from momentumlab.theory.claims import CheckResult, get_claim, select
from momentumlab.theory.eos import HOVER_TOL

load_claims()
IDS = [c.id for c in select(["eos"])]
#: claims that pass honestly in quick mode on this setup (see README, section eos)
PASSING = {"eos.gd", "eos.heavy_ball", "eos.adam", "eos.vradam"}


def test_ids():
    assert IDS == ["eos.gd", "eos.heavy_ball", "eos.adam", "eos.vradam"]


@pytest.mark.parametrize("claim_id", IDS)
def test_quick_check(claim_id):
    claim = get_claim(claim_id)
    assert claim.derive().status == "proved"  # the threshold; the hovering is measured
    res = claim.check(device="cpu", seed=0, quick=True)
    assert isinstance(res, CheckResult)
    assert res.tolerance == HOVER_TOL
    assert res.predicted == pytest.approx(claim.predict(lr=1.0), rel=1e-12)
    assert "window" in res.details and "last 40%" in res.details["window"]
    assert res.passed is (res.error <= HOVER_TOL)
    if claim_id in PASSING:
        assert res.passed, res.details
    if claim_id == "eos.vradam":
        assert res.details["oscillation_ratio_vradam_over_adam"] > 0


def test_gated_run_summary_quick():
    from momentumlab.empirics.checks.eos import GATED_BETA3, gated_run_summary

    g = gated_run_summary("cpu", 0, quick=True)
    assert g["beta3"] == GATED_BETA3
    assert g["late_median_eta_over_alpha0"] < 1
    assert g["gate_active_evals"] >= 0 and g["oscillation_ratio_vradam_over_adam"] > 0


def test_hover_measurement_separates_the_thresholds():
    """The measured late eta*S of GD is not within the tolerance of heavy ball's 2 + 2*0.9, and vice
    versa: the ±10% criterion can fail."""
    gd = get_claim("eos.gd").check(quick=True).measured
    hb = get_claim("eos.heavy_ball").check(quick=True).measured
    assert abs(gd / 3.8 - 1) > HOVER_TOL and abs(hb / 2.0 - 1) > HOVER_TOL
