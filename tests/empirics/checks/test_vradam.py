"""VRAdam dynamics claims: the quick checks pass, and the experiments can fail."""
import numpy as np
import pytest

from momentumlab.empirics.checks import load_claims
from momentumlab.empirics.checks.vradam import (ODE_TOL, ORBIT_TOL, _isotropic, _vr_steps, energy_drift,
                                    orbit_grid, random_decrease)
from momentumlab.theory.claims import get_claim, select
from momentumlab.theory.vradam import lyapunov_matrix

load_claims()
IDS = [c.id for c in select(["vradam"])]


def test_four_claims():
    assert IDS == ["vradam.euler_lagrange", "vradam.period2_orbit", "vradam.update_bound",
                   "vradam.lyapunov"]


@pytest.mark.parametrize("claim_id", IDS)
def test_claim_passes_in_quick_mode(claim_id):
    res = get_claim(claim_id).check(device="cpu", seed=0, quick=True)
    assert res.passed, res.details
    assert res.error <= res.tolerance


def test_wrong_mass_breaks_conservation():
    assert energy_drift("quadratic", 1.0, 2.0, 30.0)["energy_drift"] <= ODE_TOL
    bad = energy_drift("quadratic", 1.0, 2.0, 30.0, _isotropic(False))
    assert bad["energy_drift"] > 100 * ODE_TOL


def test_orbit_amplitude_rejects_a_wrong_closed_form():
    """Simulated amplitude equals V, and is far from a wrong V' = V/sqrt(3)."""
    ratios = np.array([1.3, 1.6])
    X, V, dev = orbit_grid(0.9, ratios, 3000)
    assert np.all(dev <= ORBIT_TOL)
    wrong = V / np.sqrt(3)
    _, _, dev_far = orbit_grid(0.9, np.array([2.5]), 3000)  # past r = 2 the orbit repels
    assert dev_far[0] > 1e3 * ORBIT_TOL
    assert np.all(np.abs(V / wrong - 1) > 1e3 * ORBIT_TOL)


def test_paper_step_bound_is_exceeded():
    big, ratio, mmax = _vr_steps(np.array([[100.0, 0.0, 0.0, 0.0], [0.1, 0.0, 0.0, 0.0]]), 50)
    assert big[0] > 0.5 and big[1] <= 0.5  # alpha0/(2 sqrt beta3) = 0.5
    assert np.all(ratio <= 1 + 1e-12)


def test_non_lyapunov_P_is_detected():
    rng = np.random.default_rng(1)
    worst_id = random_decrease(np.eye(2), 0.5, 2.4, 3.6, 64, 20, rng)
    P, rho2 = lyapunov_matrix(2.4, 3.6, 0.5)
    assert worst_id > 1 > rho2
