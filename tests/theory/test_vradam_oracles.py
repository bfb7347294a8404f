"""``theory.vradam``: each claim's status, and its *returned* closed form against an independent
numeric oracle (the rule of ``theory.rules`` run in numpy, finite differences, numpy eigenvalues).

Written as the fast test selection of the mutation run (``scripts/mutation.py``, issue 9): the
claims are derived cheapest first, and every closed form is evaluated at seeded random
parameters and compared with a number computed another way -- never with the formula itself.
"""
import numpy as np
import pytest
import sympy as sp

import momentumlab.theory.vradam as vr
from momentumlab.theory.claims import get_claim
from momentumlab.theory.ops import NUMPY
from momentumlab.theory.rules import get_rule

RNG = np.random.default_rng(20261201)


def _status(cid):
    d = get_claim(cid).derive()
    return d.status, set(d.lemmas), [s.text[:60] for s in d.steps if s.kind == "stated"]


def _num(e, subs):
    return complex(sp.sympify(e).subs(subs).evalf(30))


def _ema_matrix(h, b1):
    """A(h) of the momentum rule on f = w^2/2 in (u, m) = (w, m), built by running the rule of
    ``theory.rules`` on the basis states (the numeric oracle of the symbolic ``A``)."""
    rule = get_rule("ema_momentum")
    cols = []
    for z in np.eye(2):
        w1, s = rule.step(z[0], z[0], {"momentum_buffer": z[1]}, rule.hyper(lr=h, momentum=b1), NUMPY)
        cols.append([w1, s["momentum_buffer"]])
    return np.array(cols).T


def test_orbit_parametrisation_is_a_two_cycle_of_the_rule():
    """_orbit_subs (alpha0 = r B/lambda, beta3 = (r-1)/V^2, X = (1+beta1)V/((1-beta1)lambda)) at
    numbers: (X, -V) is a 2-cycle of rules.vr_momentum in numpy -- checked first, since a wrong
    parametrisation makes the symbolic orbit derivation slow."""
    subs, X, V = vr._orbit_subs()
    rule = get_rule("vr_momentum")
    lam, r, b1s, Vs = (sp.Symbol(n, positive=True) for n in ("lambda", "r", "beta1", "V"))
    for lv, rv, bv, Vv in ((1.3, 1.4, 0.6, 0.8), (0.4, 1.9, 0.1, 2.0)):
        at = {lam: lv, r: rv, b1s: bv, Vs: Vv}
        a0 = float(subs[sp.Symbol("alpha0", positive=True)].subs(at))
        b3 = float(subs[sp.Symbol("beta3", positive=True)].subs(at))
        x = float(X.subs(at))
        h = rule.hyper(lr=a0, momentum=bv, beta3=b3, alpha1=1e6)
        w1, s1 = rule.step(x, lv * x, {"momentum_buffer": -Vv}, h, NUMPY)
        assert (w1, s1["momentum_buffer"]) == pytest.approx((-x, Vv), rel=1e-12)
        assert float(V.subs(at)) == Vv


# ------------------------------------------------------------------ Lyapunov (cheapest)
def test_lyapunov_status_and_lemmas():
    assert _status("vradam.lyapunov")[:2] == ("proved from lemmas",
                                               {"Schur complement", "convexity of the positive-definite cone"})


def test_lyapunov_matrix_and_counterexample_against_the_rule():
    A, big = get_claim("vradam.lyapunov").derive().expression
    hs, bs = sp.Symbol("h", positive=True), sp.Symbol("beta1", positive=True)
    for hv, bv in zip(RNG.uniform(0.1, 5.0, 4), RNG.uniform(0.0, 0.95, 4)):
        An = np.array(A.subs({hs: hv, bs: bv}).evalf(), dtype=float)
        np.testing.assert_allclose(An, _ema_matrix(hv, bv), rtol=1e-12, atol=1e-14)
    M = _ema_matrix(36.0, 0.9) @ _ema_matrix(36.0 / 11, 0.9)
    assert abs(complex(big)) == pytest.approx(max(abs(np.linalg.eigvals(M))), rel=1e-10)
    assert abs(complex(big)) > 1
    # the feasible certificate's contraction against numpy generalized eigenvalues
    P = np.array([[1.0, 1.0], [1.0, 3.0]])
    rho2 = max(max(np.linalg.eigvals(np.linalg.solve(P, _ema_matrix(hv, 0.5).T @ P
                                                      @ _ema_matrix(hv, 0.5))).real)
               for hv in (2.4, 3.6))
    step = [s for s in get_claim("vradam.lyapunov").derive().steps if "feasible case" in s.text][0]
    assert float(step.expr) == pytest.approx(rho2, rel=1e-12)


def test_lyapunov_gd_case_and_det_steps_against_numpy():
    """The derivation's beta1 = 0 matrix gap and det(I - A) = (1 - beta1) h, evaluated at random
    points, against the rule's numeric matrices."""
    d = get_claim("vradam.lyapunov").derive()
    hs, bs = sp.Symbol("h", positive=True), sp.Symbol("beta1", positive=True)
    shown_A = [s for s in d.steps if s.text == "A(h)"][0].expr
    for hv, bv in zip(RNG.uniform(0.1, 5.0, 3), RNG.uniform(0.0, 0.95, 3)):
        An = _ema_matrix(hv, bv)
        np.testing.assert_allclose(np.array(shown_A.subs({hs: hv, bs: bv}), dtype=float), An,
                                   rtol=1e-12, atol=1e-14)
        assert np.linalg.det(np.eye(2) - An) == pytest.approx((1 - bv) * hv, rel=1e-10)


# ------------------------------------------------------------------ update bound
def test_update_bound_status_and_lemmas():
    assert _status("vradam.update_bound")[:2] == ("proved from lemmas",
                                                   {"Cauchy-Schwarz", "triangle inequality"})


def _vr_step_norm(norm_m, a0, b3, a1, n=3):
    """||w_t - w_{t-1}|| of rules.vr_momentum (numpy) with beta1 = 0, so m_t = g_t."""
    rule = get_rule("vr_momentum")
    g = np.full(n, norm_m / np.sqrt(n))
    w1, _ = rule.step(np.zeros(n), g, {"momentum_buffer": np.zeros(n)},
                      rule.hyper(lr=a0, momentum=0.0, beta3=b3, alpha1=a1), NUMPY)
    return float(np.linalg.norm(w1))


def test_update_bound_expression_is_the_rules_supremum():
    """For alpha1 >= 1 and a saturated ||m|| = s, the derived bound equals the largest step of the
    numeric rule over all ||m|| <= s: max(step at 1/sqrt(beta3), step at s); a grid scan never
    exceeds it."""
    bound = get_claim("vradam.update_bound").derive().expression
    a0s, b3s, a1s = sp.Symbol("alpha0", positive=True), sp.Symbol("beta3", positive=True), \
        sp.Symbol("alpha1", positive=True)
    s = sp.Symbol("s", positive=True)
    for a0, b3, a1 in zip(RNG.uniform(0.1, 2.0, 4), RNG.uniform(0.2, 3.0, 4), RNG.uniform(1.0, 5.0, 4)):
        for sv in (np.sqrt(a1 / b3) * 1.01, np.sqrt(a1 / b3) * 40):
            got = float(bound.subs({a0s: a0, b3s: b3, a1s: a1, s: sv}))
            want = max(_vr_step_norm(1 / np.sqrt(b3), a0, b3, a1), _vr_step_norm(sv, a0, b3, a1))
            assert got == pytest.approx(want, rel=1e-12)
            grid = np.linspace(0, sv, 401)
            assert max(_vr_step_norm(x, a0, b3, a1) for x in grid) <= got * (1 + 1e-12)
    assert float(vr.step_bound(0.5, 0.8, 10.0)) == pytest.approx(_vr_step_norm(1 / np.sqrt(0.8), 0.5, 0.8, 10.0),
                                                                rel=1e-12)


def test_update_bound_steps_against_numbers():
    """The shown pieces: critical point 1/sqrt(beta3) (numeric argmax of the rule's open step),
    s* (where the saturated step reaches the open supremum) and C(beta1, beta2) (the series)."""
    d = get_claim("vradam.update_bound").derive()
    a0s, b3s, a1s = sp.Symbol("alpha0", positive=True), sp.Symbol("beta3", positive=True), \
        sp.Symbol("alpha1", positive=True)
    crit = [st for st in d.steps if "stationary only" in st.text][0].expr
    b3 = 0.7
    grid = np.linspace(0.01, 5, 20001)
    steps = [_vr_step_norm(x, 1.0, b3, 1e9, n=1) for x in grid]
    assert float(crit[0].subs(b3s, b3)) == pytest.approx(grid[int(np.argmax(steps))], abs=3e-4)
    amgm = [st for st in d.steps if "s*^2 - alpha1/beta3" in st.text][0].expr
    a1 = 3.0
    s_star = 1.0 / np.sqrt(b3) / 2 * (1 + a1)  # s*: alpha0 s/(1+alpha1) = alpha0/(2 sqrt(beta3))
    assert float(amgm.subs({b3s: b3, a1s: a1, a0s: 1.0})) == pytest.approx(s_star**2 - a1 / b3, rel=1e-12)
    b1, b2 = 0.8, 0.95
    series = (1 - b1) * np.sqrt(sum((b1**2 / b2) ** j for j in range(3000)) / (1 - b2))
    assert float(vr.adam_ratio_bound(b1, b2)) == pytest.approx(series, rel=1e-12)


# ------------------------------------------------------------------ Euler-Lagrange
def test_euler_lagrange_status_and_lemmas():
    assert _status("vradam.euler_lagrange")[:2] == ("proved from lemmas",
                                                     {"chain rule", "exchange of finite sums"})


def _kinetic(v, m, b3):
    s = v @ v
    return m * s / 2 + b3 * s**2 / 4


def _fd_hessian(f, v, eps=1e-4):
    n = len(v)
    H = np.empty((n, n))
    for i in range(n):
        for j in range(n):
            ei, ej = np.eye(n)[i] * eps, np.eye(n)[j] * eps
            H[i, j] = (f(v + ei + ej) - f(v + ei - ej) - f(v - ei + ej) + f(v - ei - ej)) / (4 * eps**2)
    return H


def test_euler_lagrange_ode_against_finite_differences():
    """The returned 1-D ODE dv/dt = -V'(x)/M(v) with V = k x^2/2: M against the finite-difference
    second derivative of the kinetic energy written here in numpy."""
    ode = get_claim("vradam.euler_lagrange").derive().expression
    x, v = sp.Symbol("x", real=True), sp.Symbol("v", real=True)
    m, b3 = sp.Symbol("m", positive=True), sp.Symbol("beta3", positive=True)
    k = 1.7
    rhs = ode.rhs.subs(sp.Function("V")(x), k * x**2 / 2).doit()
    for xv, vv, mv, bv in RNG.uniform(0.2, 2.0, (4, 4)):
        M_fd = _fd_hessian(lambda u: _kinetic(u, mv, bv), np.array([vv]))[0, 0]
        got = float(rhs.subs({x: xv, v: vv, m: mv, b3: bv}))
        assert got == pytest.approx(-k * xv / M_fd, rel=1e-6)  # fd error ~ eps^2


def test_el_system_and_masses_against_finite_differences():
    """The 2-D mass tensor, momentum and energy (lambdified from the n-dimensional derivation)
    against numpy finite differences of T(v) = m|v|^2/2 + beta3|v|^4/4."""
    H, kin, mom = vr.el_system()
    for row in RNG.uniform(-1.5, 1.5, (3, 2)):
        mv, bv = RNG.uniform(0.3, 2.0, 2)
        T = lambda u: _kinetic(u, mv, bv)  # noqa: E731
        np.testing.assert_allclose(np.asarray(H(*row, mv, bv), float), _fd_hessian(T, row),
                                   rtol=1e-6, atol=1e-6)
        eps = 1e-6
        grad = np.array([(T(row + eps * e) - T(row - eps * e)) / (2 * eps) for e in np.eye(2)])
        np.testing.assert_allclose(np.asarray(mom(*row, mv, bv), float).ravel(), grad, rtol=1e-7)
        assert float(kin(*row, mv, bv)) == pytest.approx(row @ grad - T(row), rel=1e-7)
        speed = float(np.hypot(*row))
        em = vr.effective_mass(mv, bv, speed)
        Hn = _fd_hessian(T, row)
        u = np.array([-row[1], row[0]])
        assert em["along"] == pytest.approx((Hn @ row)[0] / row[0], rel=1e-6)
        assert em["across"] == pytest.approx((Hn @ u)[0] / u[0], rel=1e-6)


def test_euler_lagrange_gate_step_is_the_rules_gate():
    """The last step's shown difference (inverse mass vs rules.vr_gate) and the numeric gate: the
    rule's eta_t at beta3 ||m||^2 <= alpha1 is alpha0 / (1 + beta3 ||m||^2)."""
    rule = get_rule("vr_momentum")
    for a0, b3, g in RNG.uniform(0.1, 1.0, (3, 3)):
        _, s = rule.step(np.zeros(1), np.array([g]), {"momentum_buffer": np.zeros(1)},
                         rule.hyper(lr=a0, momentum=0.0, beta3=b3, alpha1=10.0), NUMPY)
        assert float(s["eta"]) == pytest.approx(a0 / (1 + b3 * g * g), rel=1e-12)


# ------------------------------------------------------------------ period-2 orbit (dearest)
def test_period2_status():
    assert _status("vradam.period2_orbit")[:2] == ("proved", set())


def test_period2_expression_is_a_two_cycle_of_the_numeric_rule():
    """The returned (|X|, V, eta) at random (lambda, r, beta1, beta3): (w, m_prev) = (X, -V) is a
    2-cycle of rules.vr_momentum run in numpy, with gate eta."""
    X_, V_, eta_ = get_claim("vradam.period2_orbit").derive().expression
    lam, a0, b1s, b3s = (sp.Symbol(n, positive=True) for n in ("lambda", "alpha0", "beta1", "beta3"))
    rule = get_rule("vr_momentum")
    for lv, ratio, bv, b3 in zip(RNG.uniform(0.2, 3, 4), RNG.uniform(1.05, 1.9, 4),
                                 RNG.uniform(0.0, 0.95, 4), RNG.uniform(0.3, 3, 4)):
        a0v = ratio * 2 * (1 + bv) / (1 - bv) / lv  # B(beta) = 2(1+beta)/(1-beta), typed here
        at = {lam: lv, a0: a0v, b1s: bv, b3s: b3}
        X, V, eta = (float(e.subs(at)) for e in (X_, V_, eta_))
        h = rule.hyper(lr=a0v, momentum=bv, beta3=b3, alpha1=1e6)
        w1, s1 = rule.step(X, lv * X, {"momentum_buffer": -V}, h, NUMPY)
        assert (w1, s1["momentum_buffer"], s1["eta"]) == pytest.approx((-X, V, eta), rel=1e-10)
        w2, s2 = rule.step(w1, lv * w1, s1, h, NUMPY)
        assert (w2, s2["momentum_buffer"]) == pytest.approx((X, -V), rel=1e-10)


def _two_step_radius(h, lv, z0):
    """Spectral radius of the central finite-difference Jacobian of two steps of the numpy rule
    rules.vr_momentum at z0 = (w, m_prev) on f = lv w^2/2, after checking z0 is a 2-cycle."""
    rule = get_rule("vr_momentum")

    def F2(z):
        w, st = rule.step(z[0], lv * z[0], {"momentum_buffer": z[1]}, h, NUMPY)
        w, st = rule.step(w, lv * w, st, h, NUMPY)
        return np.array([w, st["momentum_buffer"]])

    np.testing.assert_allclose(F2(z0), z0, rtol=1e-10)
    eps = 1e-6
    J = np.column_stack([(F2(z0 + eps * e) - F2(z0 - eps * e)) / (2 * eps) for e in np.eye(2)])
    return max(abs(np.linalg.eigvals(J)))


def test_period2_numeric_pieces_against_the_rule():
    """period2_orbit (the lambdified solution) and period2_radius against the rule: a 2-cycle,
    and the finite-difference two-step Jacobian's spectral radius; outside the range: nan."""
    rule = get_rule("vr_momentum")
    for bv, ratio in ((0.3, 1.4), (0.8, 2.6)):
        lv, b3, a1 = 1.3, 0.9, 10.0
        a0v = ratio * 2 * (1 + bv) / (1 - bv) / lv
        X, V, eta = (float(x) for x in vr.period2_orbit(lv, a0v, bv, b3, a1))
        h = rule.hyper(lr=a0v, momentum=bv, beta3=b3, alpha1=a1)
        rho = _two_step_radius(h, lv, np.array([X, -V]))
        assert float(vr.period2_radius(ratio, bv)) == pytest.approx(rho, rel=1e-5)
    X, V, _ = vr.period2_orbit(1.0, [0.99 * 6, 12.0 * 6], 0.5, 1.0, 10.0)
    assert np.all(np.isnan(X)) and np.all(np.isnan(V))
    X, V, _ = vr.period2_orbit(1.0, 1.01 * 6, 0.5, 1.0, 10.0)
    assert np.isfinite(X) and np.isfinite(V)


def test_period2_steps_against_numbers():
    """Shown steps of the derivation at a numeric point against numpy: the Jury values p(1), p(-1)
    of the one-step Jacobian at the orbit (finite differences of the rule)."""
    d = get_claim("vradam.period2_orbit").derive()
    jury = [s for s in d.steps if s.text.startswith("Jury")][0].expr
    r, b1s = sp.Symbol("r", positive=True), sp.Symbol("beta1", positive=True)
    lam, b3s, Vs = sp.Symbol("lambda", positive=True), sp.Symbol("beta3", positive=True), \
        sp.Symbol("V", positive=True)
    rule = get_rule("vr_momentum")
    rv, bv, lv, b3 = 1.6, 0.6, 1.0, 1.0
    a0v = rv * 2 * (1 + bv) / (1 - bv) / lv
    X, V, _ = (float(x) for x in vr.period2_orbit(lv, a0v, bv, b3, 1e6))
    h = rule.hyper(lr=a0v, momentum=bv, beta3=b3, alpha1=1e6)

    def F(z):
        w, st = rule.step(z[0], lv * z[0], {"momentum_buffer": z[1]}, h, NUMPY)
        return np.array([w, st["momentum_buffer"]])

    eps = 1e-7
    z0 = np.array([X, -V])
    DF = np.column_stack([(F(z0 + eps * e) - F(z0 - eps * e)) / (2 * eps) for e in np.eye(2)])
    p = lambda mu: np.linalg.det(mu * np.eye(2) - DF)  # noqa: E731
    at = {r: rv, b1s: bv, lam: lv, b3s: b3, Vs: V}
    vals = [float(sp.sympify(e).subs(at)) for e in jury]
    np.testing.assert_allclose(vals, [p(0.0), p(1.0), p(-1.0)], rtol=1e-6, atol=1e-7)


def test_period2_attracting_region_against_the_rules_two_step_jacobian():
    """The shown region 1 < r < 2 (the orbit attracts) against the rule: at the orbit point
    (X, -V) of rules.vr_momentum with alpha0 = r B/lambda, beta3 = (r-1)/V^2 (a 2-cycle of the
    numpy rule, checked), the finite-difference two-step Jacobian has spectral radius < 1
    exactly where the region holds, on both sides of r = 2."""
    region = [s for s in get_claim("vradam.period2_orbit").derive().steps
              if s.text.startswith("so (2(1+beta1)/r > 0")][0].expr
    r = sp.Symbol("r", positive=True)
    rule = get_rule("vr_momentum")
    lv, Vv = 1.3, 0.7
    for rv, bv in ((1.1, 0.0), (1.5, 0.8), (1.9, 0.3), (2.1, 0.6), (2.6, 0.9), (3.5, 0.2)):
        B = 2 * (1 + bv) / (1 - bv)  # EMA momentum's threshold, typed here
        h = rule.hyper(lr=rv * B / lv, momentum=bv, beta3=(rv - 1) / Vv**2, alpha1=1e6)
        rho = _two_step_radius(h, lv, np.array([(1 + bv) * Vv / ((1 - bv) * lv), -Vv]))
        assert abs(rho - 1) > 1e-3, (rv, bv, rho)  # away from the edge: the finite difference decides
        assert bool(region.subs(r, rv)) == (rho < 1), (rv, bv, rho)


# ------------------------------------------------------------------ what explain() shows
_VALUES = ("det(I - A(h))", "beta1 > 0: the paper", "a feasible case", "open gate", "saturated gate",
           "the saturated step exceeds", "Jury")


def _shown(e):
    e = sp.sympify(e)
    return list(e) if isinstance(e, (sp.MatrixBase, sp.Tuple)) else [e]


@pytest.mark.parametrize("cid", ["vradam.lyapunov", "vradam.euler_lagrange", "vradam.update_bound",
                                 "vradam.period2_orbit"])
def test_every_reduced_step_shows_a_zero_residual(cid):
    """A reduced step's shown expression is its residual, 0; the steps that show a value instead
    (listed in _VALUES) are compared with numbers in the tests above and here."""
    for s in get_claim(cid).derive().steps:
        if s.kind != "reduced" or s.text.startswith(_VALUES):
            continue
        assert all(sp.simplify(x) == 0 for x in _shown(s.expr)), s.text[:60]


def test_lyapunov_shown_values_against_numpy():
    d = get_claim("vradam.lyapunov").derive()
    hs, bs = sp.Symbol("h", positive=True), sp.Symbol("beta1", positive=True)
    det = [s for s in d.steps if s.text.startswith("det(I - A(h))")][0].expr
    for hv, bv in ((0.7, 0.3), (3.1, 0.85)):
        assert float(det.subs({hs: hv, bs: bv})) == pytest.approx(np.linalg.det(np.eye(2) - _ema_matrix(hv, bv)),
                                                                  rel=1e-12)
    M, big = [s for s in d.steps if s.text.startswith("beta1 > 0: the paper")][0].expr
    np.testing.assert_allclose(np.array(M, dtype=float), _ema_matrix(36.0, 0.9) @ _ema_matrix(36.0 / 11, 0.9),
                               rtol=1e-12)
    sat = [s for s in get_claim("vradam.update_bound").derive().steps
           if s.text.startswith("saturated gate")][0].expr
    assert sat is sp.oo and _vr_step_norm(1e6, 1.0, 1.0, 10.0) > 1e4  # grows without bound


def test_euler_lagrange_shown_lagrangian_is_kinetic_minus_potential():
    """The Lagrangian the derivation shows, at n = 2 with V = 7, against T(v) - 7 in numpy."""
    L = get_claim("vradam.euler_lagrange").derive().steps[0].expr
    L = L.replace(sp.Function("V"), sp.Lambda(sp.Dummy("y"), 7)).subs(vr.DIM, 2).doit()
    v = sp.IndexedBase("v")
    m, b3 = sp.Symbol("m", positive=True), sp.Symbol("beta3", positive=True)
    got = float(L.subs({v[1]: 0.3, v[2]: -1.1, m: 1.4, b3: 0.6}))
    assert got == pytest.approx(_kinetic(np.array([0.3, -1.1]), 1.4, 0.6) - 7, rel=1e-12)


def test_step_bound_default_is_the_open_branch_supremum():
    """norm_m=None: the paper's value, the largest step of the rule on its open branch (alpha1
    huge), also where the saturated term ||m||/(1 + alpha1) would exceed it at ||m|| = 1."""
    grid = np.linspace(0.0, 5.0, 5001)
    sup = max(_vr_step_norm(x, 1.0, 4.0, 1e9, n=1) for x in grid)
    assert float(vr.step_bound(1.0, 4.0, 0.5)) == pytest.approx(sup, rel=1e-6)
