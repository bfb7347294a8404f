"""VRAdam dynamics claims: the quick checks pass, and the experiments can fail."""
import numpy as np
import pytest

from momentumlab.empirics.checks import load_claims
from momentumlab.empirics.checks.vradam import (MASS_TOL, ODE_TOL, ORBIT_TOL, _isotropic, _vr_steps,
                                                bound_ratio, energy_drift, fd_masses, lyapunov_matrix,
                                                orbit_grid, random_decrease, rule_matrix)
from momentumlab.theory.claims import get_claim, resolution, run_controls, select
from momentumlab.theory.vradam import effective_mass, switched_matrix

load_claims()
IDS = [c.id for c in select(["vradam"])]


def test_four_claims():
    assert IDS == ["vradam.euler_lagrange", "vradam.period2_orbit", "vradam.update_bound",
                   "vradam.lyapunov"]


@pytest.fixture(scope="module")
def results():
    """Each check once (quick): ~1 min in all."""
    return {cid: get_claim(cid).check(device="cpu", seed=0, quick=True) for cid in IDS}


@pytest.mark.parametrize("claim_id", IDS)
def test_claim_passes_and_rejects_every_control(claim_id, results):
    res = results[claim_id]
    assert res.passed, res.details
    assert res.error <= res.tolerance
    claim = get_claim(claim_id)
    outcomes = run_controls(claim.all_controls, res)
    assert len(outcomes) >= 4 and all(o.rejected for o in outcomes), outcomes
    assert resolution(res) is not None and resolution(res) < 1


def test_wrong_mass_breaks_conservation():
    assert energy_drift("quadratic", 1.0, 2.0, 30.0)["energy_drift"] <= ODE_TOL
    bad = energy_drift("quadratic", 1.0, 2.0, 30.0, _isotropic(False))
    assert bad["energy_drift"] > 100 * ODE_TOL


def test_orbit_is_reached_where_it_attracts_and_left_where_it_repels():
    _, _, dev = orbit_grid(0.9, np.array([1.3, 1.6]), 3000)
    assert np.all(dev <= ORBIT_TOL)
    _, _, dev_far = orbit_grid(0.9, np.array([2.5]), 3000)  # past r = 2 the orbit repels
    assert dev_far[0] > 1e3 * ORBIT_TOL


def test_effective_masses_match_finite_differences():
    """Derived masses (sympy, symbolic dimension) against a numpy kinetic term's curvature."""
    for m, b3, v in ((1.5, 0.7, (0.3, -1.2)), (0.4, 3.0, (1.0, 2.0))):
        along, across = fd_masses(m, b3, v)
        pred = effective_mass(m, b3, np.linalg.norm(v))
        assert along == pytest.approx(pred["along"], rel=MASS_TOL)
        assert across == pytest.approx(pred["across"], rel=MASS_TOL)


def test_rule_matrix_equals_the_symbolic_switched_matrix():
    """The rule run on basis states (numpy) and the lambdified sympy A(h): float64 identity."""
    for h, b1 in ((0.5, 0.0), (3.3, 0.5), (36.0, 0.9)):
        assert rule_matrix(h, b1) == pytest.approx(switched_matrix(h, b1), rel=1e-12, abs=1e-12)


def test_paper_step_bound_is_exceeded():
    dw, nm = _vr_steps(np.array([[100.0, 0.0, 0.0, 0.0], [0.1, 0.0, 0.0, 0.0]]), 50)
    big = dw.max(axis=1)
    assert big[0] > 0.5 and big[1] <= 0.5  # alpha0/(2 sqrt beta3) = 0.5
    assert np.all(bound_ratio(dw, nm, 1.0, 0.5, 1 / 11) <= 1 + 1e-12)
    assert bound_ratio(dw, nm, 1.0, 0.5, 0.0)[0] > 1  # the paper's bound alone fails


def test_non_lyapunov_P_is_detected():
    rng = np.random.default_rng(1)
    worst_id = random_decrease(np.eye(2), 0.5, 2.4, 3.6, 64, 20, rng)
    P, rho2 = lyapunov_matrix(2.4, 3.6, 0.5)
    assert worst_id > 1 > rho2


def test_scipy_lmi_search_feasible_and_refuted_default():
    assert lyapunov_matrix(2.4, 3.6, 0.5)[1] < 0.8
    assert lyapunov_matrix(36 / 11, 36.0, 0.9)[1] > 1  # no CQLF: the paper's setting
