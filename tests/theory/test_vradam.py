"""VRAdam dynamics claims: derivations proved, closed forms against independent numerics."""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import momentumlab.theory.vradam as vr
from momentumlab.theory.claims import get_claim
from momentumlab.theory.ops import NUMPY
from momentumlab.theory.rules import get_rule

IDS = ["vradam.euler_lagrange", "vradam.period2_orbit", "vradam.update_bound", "vradam.lyapunov"]


STATUS = {"vradam.euler_lagrange": ("proved from lemmas", {"chain rule", "exchange of finite sums"}),
          "vradam.period2_orbit": ("proved", set()),
          "vradam.update_bound": ("proved from lemmas", {"Cauchy-Schwarz", "triangle inequality"}),
          "vradam.lyapunov": ("proved from lemmas", {"Schur complement",
                                                     "convexity of the positive-definite cone"})}


@pytest.mark.parametrize("claim_id", IDS)
def test_status_and_lemmas(claim_id):
    d = get_claim(claim_id).derive()
    status, lemmas = STATUS[claim_id]
    assert d.status == status, [s.text for s in d.steps if s.kind == "stated"]
    assert set(d.lemmas) == lemmas


def test_B_is_the_ema_momentum_threshold():
    """B(beta) (one definition, stability_models) against numpy eigenvalues of the EMA rule's
    iteration matrix, built by running the rule on basis states: rho crosses 1 at B."""
    rule = get_rule("ema_momentum")
    for b in (0.0, 0.5, 0.9):
        for f, side in ((0.999, -1), (1.001, 1)):
            h = f * vr.B(b)
            cols = []
            for z in np.eye(2):
                w1, s = rule.step(z[0], z[0], {"momentum_buffer": z[1]},
                                  rule.hyper(lr=h, momentum=b), NUMPY)
                cols.append([w1, s["momentum_buffer"]])
            rho = max(abs(np.linalg.eigvals(np.array(cols).T)))
            assert np.sign(rho - 1) == side


def _vr_step(w, m, lam, a0, b1, b3, a1):
    rule = get_rule("vr_momentum")
    w1, s = rule.step(w, lam * w, {"momentum_buffer": m},
                      rule.hyper(lr=a0, momentum=b1, beta3=b3, alpha1=a1), NUMPY)
    return w1, s["momentum_buffer"], s["eta"]


@pytest.mark.parametrize("b1,ratio,lam,b3", [(0.0, 1.5, 1.0, 1.0), (0.5, 1.2, 3.0, 0.5),
                                             (0.9, 1.9, 0.2, 2.0), (0.9, 7.0, 1.0, 1.0)])
def test_orbit_is_a_two_cycle_of_the_numeric_rule(b1, ratio, lam, b3):
    a0 = ratio * vr.B(b1) / lam
    X, V, eta = (float(x) for x in vr.period2_orbit(lam, a0, b1, b3, 10.0))
    w, m = X, -V  # velocity m_t = V > 0 after the step, w_t = -X
    w1, m1, e1 = _vr_step(w, m, lam, a0, b1, b3, 10.0)
    assert (w1, m1) == pytest.approx((-X, V), rel=1e-12)
    assert e1 == pytest.approx(eta, rel=1e-12) and eta == pytest.approx(vr.B(b1) / lam)
    w2, m2, _ = _vr_step(w1, m1, lam, a0, b1, b3, 10.0)
    assert (w2, m2) == pytest.approx((X, -V), rel=1e-12)


def test_orbit_outside_existence_range_is_nan():
    X, V, eta = vr.period2_orbit(1.0, [0.9 * 38, 12 * 38], 0.9, 1.0, 10.0)
    assert np.all(np.isnan(X)) and np.all(np.isnan(V))


@pytest.mark.parametrize("b1,ratio", [(0.0, 1.5), (0.5, 1.3), (0.9, 1.8), (0.9, 2.5), (0.5, 4.0)])
def test_two_step_radius_matches_finite_differences(b1, ratio):
    lam, b3, a1 = 1.0, 1.0, 10.0
    a0 = ratio * vr.B(b1) / lam
    X, V, _ = (float(x) for x in vr.period2_orbit(lam, a0, b1, b3, a1))
    z0 = np.array([X, -V])

    def F2(z):
        w, m, _ = _vr_step(z[0], z[1], lam, a0, b1, b3, a1)
        w, m, _ = _vr_step(w, m, lam, a0, b1, b3, a1)
        return np.array([w, m])

    eps = 1e-6
    J = np.column_stack([(F2(z0 + eps * e) - F2(z0 - eps * e)) / (2 * eps) for e in np.eye(2)])
    assert float(vr.period2_radius(ratio, b1)) == pytest.approx(
        max(abs(np.linalg.eigvals(J))), rel=1e-5)
    assert (float(vr.period2_radius(ratio, b1)) < 1) == (1 < ratio < 2)


def test_effective_mass_along_and_across():
    H, _, _ = vr.el_system()
    v = np.array([0.3, -1.2])
    M = np.asarray(H(v[0], v[1], 1.5, 0.7), float)
    s = v @ v
    u = np.array([-v[1], v[0]])
    assert M @ v == pytest.approx((1.5 + 3 * 0.7 * s) * v)
    assert M @ u == pytest.approx((1.5 + 0.7 * s) * u)
    p = get_claim("vradam.euler_lagrange").predict(m=1.5, beta3=0.7, speed=math.sqrt(s))
    assert (M @ v)[0] / v[0] == pytest.approx(p["along"], rel=1e-12)  # lambdified tensor vs eigen-mass
    assert (M @ u)[0] / u[0] == pytest.approx(p["across"], rel=1e-12)


def test_adam_ratio_bound_matches_the_series():
    b1, b2 = 0.9, 0.999
    series = (1 - b1) * math.sqrt(sum((b1**2 / b2) ** j for j in range(2000)) / (1 - b2))
    assert vr.adam_ratio_bound(b1, b2) == pytest.approx(series, rel=1e-12)


def test_switched_matrix_is_the_rules_jacobian():
    rule = get_rule("ema_momentum")
    b1, lam, eta = 0.7, 2.0, 0.9
    A = vr.switched_matrix(eta * lam, b1)
    for z in np.eye(2):
        w1, s = rule.step(z[0] / lam, z[0], {"momentum_buffer": z[1]},
                          rule.hyper(lr=eta, momentum=b1), NUMPY)
        assert np.array([lam * w1, s["momentum_buffer"]]) == pytest.approx(A @ z)


# ------------------------------------------------------------ Lyapunov properties
FEAS = dict(beta1=0.5, alpha0=1.2, L=3.0, alpha1=0.2)  # alpha0 L = 3.6 < B = 6; h in [2.4, 3.6]
#: the exact certificate of the derivation and its sympy contraction; the property test below
#: iterates the rule itself (a different path) and must never exceed it
_P = np.array(vr.FEASIBLE["P"], dtype=float)
_RHO2 = float(vr.feasible_rho2())


@settings(max_examples=200)
@given(gates=st.lists(st.floats(0, 1), min_size=1, max_size=30),
       curv=st.floats(1 / 1.25, 1.0), w0=st.floats(-10, 10), m0=st.floats(-10, 10))
def test_random_gate_sequences_decrease_V(gates, curv, w0, m0):
    """Rule ema_momentum with any gate eta_t in [alpha0/(1+alpha1), alpha0] and curvature in
    [L/1.25, L]: V(z) = z^T P z with z = (lam w, m) contracts by rho2 every step."""
    if w0 == 0 and m0 == 0:
        return
    rule = get_rule("ema_momentum")
    lam = curv * FEAS["L"]
    lo, hi = FEAS["alpha0"] / (1 + FEAS["alpha1"]), FEAS["alpha0"]
    w, st_ = w0, {"momentum_buffer": m0}
    for u in gates:
        z0 = np.array([lam * w, st_["momentum_buffer"]])
        w, st_ = rule.step(w, lam * w, st_, rule.hyper(lr=lo + u * (hi - lo), momentum=0.5), NUMPY)
        z1 = np.array([lam * w, st_["momentum_buffer"]])
        assert z1 @ _P @ z1 <= _RHO2 * (z0 @ _P @ z0) * (1 + 1e-9) + 1e-300


@settings(max_examples=200)
@given(h=st.floats(0.05, 1.95), beta_small=st.just(0.0), z=st.tuples(st.floats(-1, 1), st.floats(-1, 1)))
def test_gd_case_P_diag(h, beta_small, z):
    """beta1 = 0: P = diag(1, delta) decreases for every h in (0, 2) (derivation, step 'beta1 = 0')."""
    z = np.array(z)
    if not np.any(z):
        return
    P, delta = np.diag([1.0, 1e-3]), 1e-3
    A = vr.switched_matrix(h, beta_small)
    assert (A @ z) @ P @ (A @ z) <= ((1 - h) ** 2 + delta) * (z @ P @ z) + 1e-15


def test_past_the_condition_no_decrease():
    """alpha0 L > B: the constant gate alpha0 alone has spectral radius > 1."""
    A = vr.switched_matrix(1.05 * vr.B(0.9), 0.9)
    assert max(abs(np.linalg.eigvals(A))) > 1


def test_feasible_case_rho2_against_numpy_generalized_eigenvalues():
    """sympy's exact rho2 against numpy's eigenvalues of (A^T P A, P), A from the rule."""
    rule = get_rule("ema_momentum")
    worst = 0.0
    for h in (2.4, 3.6):
        cols = []
        for z in np.eye(2):
            w1, s = rule.step(z[0], z[0], {"momentum_buffer": z[1]}, rule.hyper(lr=h, momentum=0.5), NUMPY)
            cols.append([w1, s["momentum_buffer"]])
        A = np.array(cols).T
        worst = max(worst, max(np.linalg.eigvals(np.linalg.solve(_P, A.T @ _P @ A)).real))
    assert worst == pytest.approx(_RHO2, rel=1e-12) and _RHO2 < 1
