"""norm_growth's closed forms and predictors through other paths: a numpy simulation of heavy
ball / GD / SGDP on a scale-invariant function (the update written here from the paper, not
rules.py), brute-force double sums, the derived expressions evaluated at random points, and each
negative control's wrong prediction against the formula its name states."""
from types import SimpleNamespace

import numpy as np
import pytest
import sympy as sp

from momentumlab.theory import norm_growth as ng
from momentumlab.theory.claims import get_claim

RNG = np.random.default_rng(5)


def _grad(w, a):
    """Gradient of the scale-invariant f(w) = a . w/||w|| (so w . grad f = 0)."""
    n = np.linalg.norm(w)
    return a / n - (a @ w) * w / n**3


def _simulate(beta, lr, steps, project=False, n=5):
    """||w_t||^2 and ||p_t||^2 (or ||Pi(p_t)||^2 with ``project``): p_t = beta p_{t-1} + g_t,
    w_{t+1} = w_t - lr p_t (Heo et al. Sec. 2.2; SGDP: the step uses Pi_w(p_t))."""
    a, w, p = RNG.normal(size=n), RNG.normal(size=n), np.zeros(n)
    W, Pn = [w @ w], []
    for _ in range(steps):
        p = beta * p + _grad(w, a)
        u = p - (p @ w) / (w @ w) * w if project else p
        Pn.append(u @ u)
        w = w - lr * u
        W.append(w @ w)
    return np.array(W), np.array(Pn)


@pytest.mark.parametrize("beta", [0.0, 0.5, 0.9])
def test_lemma_norm_sq_against_a_simulation(beta):
    W, Pn = _simulate(beta, 0.3, 40)
    np.testing.assert_allclose(ng.lemma_norm_sq(W[0], Pn, 0.3, beta), W, rtol=1e-11)
    claim = "adamp.lemma2.1" if beta == 0 else "adamp.lemma2.2"
    kw = {} if beta == 0 else {"beta": beta}
    np.testing.assert_allclose(get_claim(claim).predict(w0_sq=W[0], update_sq=Pn, lr=0.3, **kw), W,
                               rtol=1e-11)
    incr = get_claim("adamp.lemmaA.1").predict(update_sq=Pn, lr=0.3, beta=beta)
    np.testing.assert_allclose(incr, np.diff(W), rtol=1e-9, atol=1e-14)


def test_projected_norm_sq_against_sgdp_simulation():
    W, Pn = _simulate(0.9, 0.2, 30, project=True)
    np.testing.assert_allclose(ng.projected_norm_sq(W[:-1], Pn, 0.2), W[1:], rtol=1e-11)
    np.testing.assert_allclose(
        get_claim("adamp.proposition3.1").predict(w_sq=W[:-1], projected_update_sq=Pn, lr=0.2),
        W[1:], rtol=1e-11)


def test_growth_ratio_by_brute_force_double_sum():
    for beta in (0.3, 0.8):
        P = RNG.uniform(0.1, 2.0, size=12)
        D = sum(beta ** (t - k) * P[k] for t in range(12) for k in range(t))
        assert ng.growth_ratio(P, beta) == pytest.approx((P.sum() + 2 * D) / P.sum(), rel=1e-12)


def test_growth_ratio_limit_and_corollary_closed_form():
    b = sp.Symbol("beta", positive=True)
    expr = get_claim("adamp.corollary2.3").derive().expression
    for beta in RNG.uniform(0.05, 0.95, 4):
        want = (1 + beta) / (1 - beta)
        assert ng.growth_ratio_limit(beta) == pytest.approx(want, rel=1e-12)
        assert float(expr.subs(b, beta)) == pytest.approx(want, rel=1e-12)
        # a summable sequence: the finite-horizon ratio tends to the limit
        assert ng.growth_ratio(0.5 ** np.arange(200), beta) == pytest.approx(want, rel=1e-9)
    with pytest.raises(ValueError, match="beta"):
        ng.growth_ratio_limit(1.0)


def test_great_circle_residual_of_a_known_offset():
    w, wo, e = np.eye(4)[0], np.eye(4)[1], np.eye(4)[2]
    target = 3 * w - 2 * wo + 0.5 * e
    assert ng.great_circle_residual(w, wo, target) == pytest.approx(
        0.5 / np.linalg.norm(target), rel=1e-12)
    assert ng.great_circle_residual(w, wo, 2 * w + wo) == pytest.approx(0.0, abs=1e-14)


def _symbols(expr):
    return {s.name: s for s in expr.free_symbols}


def test_derived_closed_forms_at_random_points():
    e21 = get_claim("adamp.lemma2.1").derive().expression
    s = _symbols(e21.rhs)
    assert sp.expand(e21.rhs - (s["W_t"] + s["eta"] ** 2 * s["G_t"])) == 0
    d22 = get_claim("adamp.lemma2.2").derive().expression
    # the derived form at t = 3 with numbers: W_3 + eta^2 P_3 + 2 eta^2 sum_k beta^(3-k) P_k
    P, W = sp.Function("P", nonnegative=True), sp.Function("W")
    eta, beta, t = ng.eta, ng.beta, ng.t
    vals = {P(k): float(v) for k, v in enumerate(RNG.uniform(0.1, 1, 4))}
    got = d22.rhs.subs({t: 3, eta: 0.7, beta: 0.6}).doit().subs(vals).subs(W(3), 2.0)
    want = 2.0 + 0.49 * vals[P(3)] + 2 * 0.49 * sum(0.6 ** (3 - k) * vals[P(k)] for k in range(3))
    assert float(got) == pytest.approx(want, rel=1e-12)
    assert d22.lhs == W(t + 1)
    a1 = get_claim("adamp.lemmaA.1").derive().expression  # increment - eta^2 P_t >= 0
    num = (a1.lhs - a1.rhs).subs({t: 2, eta: 0.5, beta: 0.4}).doit().subs(
        {P(0): 1.0, P(1): 2.0, P(2): 3.0})
    assert float(num) == pytest.approx(2 * 0.25 * (0.4**2 * 1.0 + 0.4 * 2.0), rel=1e-12)
    assert isinstance(a1, sp.GreaterThan)
    p31 = get_claim("adamp.proposition3.1").derive().expression
    s = _symbols(p31.rhs)
    assert sp.expand(p31.rhs - (s["W_t"] + s["eta"] ** 2 * s["||Pi_w(p_t)||^2"])) == 0


def _result():
    W, Pn = _simulate(0.9, 0.3, 10)
    Wr, Pr = _simulate(0.9, 0.3, 10)
    x = {"update_sq": Pn, "beta": 0.9, "lr": 0.3, "w0_sq": W[0], "raw_update_sq": Pr,
         "raw_beta": 0.5}
    return SimpleNamespace(inputs={"run": x}, details={"beta": 0.9}), x


@pytest.mark.parametrize("claim_id, control, law", [
    ("adamp.lemma2.1", 0, lambda x: (x["w0_sq"], x["update_sq"], x["lr"] ** 0.5, x["beta"])),
    ("adamp.lemma2.1", 1, lambda x: (x["w0_sq"], 2 * x["update_sq"], x["lr"], x["beta"])),
    ("adamp.lemma2.2", 0, lambda x: (x["w0_sq"], x["update_sq"], x["lr"], x["beta"] ** 2)),
    ("adamp.lemma2.2", 1, lambda x: (x["w0_sq"], x["update_sq"], x["lr"], 0.0)),
    ("adamp.proposition3.1", 0,
     lambda x: (x["w0_sq"], x["raw_update_sq"], x["lr"], x["raw_beta"])),
])
def test_norm_controls_are_the_laws_their_names_say(claim_id, control, law):
    """The wrong law recomputed here by a plain loop: W_{t+1} = W_t + lr^2 (P_t + 2 S_t)."""
    r, x = _result()
    w0, P, lr, b = law(x)
    S, W = 0.0, [w0]
    for i in range(len(P)):
        S = b * (S + P[i - 1]) if i else 0.0
        W.append(W[-1] + lr**2 * (P[i] + 2 * S))
    claim = get_claim(claim_id)
    got = claim.controls[control].wrong(r)["run"]
    np.testing.assert_allclose(got, W, rtol=1e-12)


def test_increment_and_ratio_controls():
    r, x = _result()
    ctl = get_claim("adamp.lemmaA.1").controls
    for c, b in zip(ctl, (0.0, 0.81)):
        want = np.diff(ng.lemma_norm_sq(0.0, x["update_sq"], 0.3, b))
        np.testing.assert_allclose(c.wrong(r)["run"], want, rtol=1e-12)
    c1, c2 = get_claim("adamp.corollary2.3").controls
    assert c1.wrong(r) == pytest.approx((1 + 0.81) / (1 - 0.81), rel=1e-12)
    assert c2.wrong(r) == pytest.approx(1 / 0.1**2, rel=1e-12)


def _steps(claim_id, start):
    return [s for s in get_claim(claim_id).derive().steps if s.text.startswith(start)]


def test_euler_direction_is_numpys_w_over_its_norm_in_a_fixed_dimension():
    """The direction u_j = w_j/||w|| whose scale invariance and zero radial derivative Euler's
    identity reduces in symbolic dimension n, evaluated at n = 4 against numpy's w/||w||, for
    w and for c w (c > 0)."""
    w = sp.IndexedBase("w", real=True)
    x = RNG.normal(size=4)
    vals = {w[i + 1]: float(v) for i, v in enumerate(x)}
    for j in range(1, 5):
        for scale in (1, 2.5):
            u = ng._unit(w, j, scale).subs(ng.DIM, 4).doit().subs(vals)
            assert float(u) == pytest.approx(x[j - 1] / np.linalg.norm(x), rel=1e-12), (j, scale)


def test_corollary_limit_step_shows_the_ratio_at_vanishing_tail():
    """The last step shows lim_{E -> 0} (S + 2 D)/S = (1+beta)/(1-beta): its left side, a sympy
    Limit, evaluated at numbers (beta = 1/(1+q)) equals the paper's (1+beta)/(1-beta)."""
    step = _steps("adamp.corollary2.3", "ratio (S_T + 2 D_T)/S_T")[0]
    lhs, rhs = step.expr.lhs, step.expr.rhs
    names = {x.name: x for x in lhs.free_symbols | rhs.free_symbols}
    for beta in RNG.uniform(0.05, 0.95, 3):
        S = float(RNG.uniform(0.5, 5))
        got = lhs.doit().subs({names["q"]: (1 - beta) / beta, names["S"]: S})
        assert float(got) == pytest.approx((1 + beta) / (1 - beta), rel=1e-12)
        assert float(rhs.subs(names["beta"], beta)) == pytest.approx((1 + beta) / (1 - beta), rel=1e-12)


def test_lemma_a1_steps_show_the_summand_and_the_negative_beta_counterexample():
    """The nonnegativity step shows beta^j P_{t-j} >= 0 (Lemma 2.2's summand, j = t - k); the
    remark's example beta = -1/2, P_1 = 0, P_0 = 1 gives Delta_1 = eta^2 (0 + 2 (-1/2) 1) = -eta^2."""
    step = _steps("adamp.lemmaA.1", "summand beta^j P_{t-j}")[0]
    assert isinstance(step.expr, sp.GreaterThan) and step.expr.rhs == 0
    P = sp.Function("P", nonnegative=True)
    names = {x.name: x for x in step.expr.lhs.free_symbols}
    vals = {P(k): float(v) for k, v in enumerate(RNG.uniform(0.1, 2, 6))}
    for t_, j_ in ((5, 2), (3, 3), (4, 1)):
        got = step.expr.lhs.subs({names["beta"]: 0.6, names["t"]: t_, names["j"]: j_}).subs(vals)
        assert float(got) == pytest.approx(0.6**j_ * vals[P(t_ - j_)], rel=1e-12)
    remark = _steps("adamp.lemmaA.1", "(remark) beta < 0")[0]
    assert sp.expand(remark.expr + ng.eta**2) == 0


def test_projection_inequality_step_shows_the_norm_gap_of_a_numpy_step():
    """Prop. 3.1's last step shows (||w^o||^2 - ||w^p||^2) >= 0 as a function of a = w.p and
    r2 = ||w||^2; at random w, p with w.p <= 0 its left side is the gap of the two steps
    w - eta p and w - eta Pi_w(p) computed in numpy."""
    step = _steps("adamp.proposition3.1", "with a = w.p <= 0")[0]
    assert isinstance(step.expr, sp.GreaterThan) and step.expr.rhs == 0
    names = {x.name: x for x in step.expr.lhs.free_symbols}
    for _ in range(4):
        w, p, eta = RNG.normal(size=6), RNG.normal(size=6), float(RNG.uniform(0.05, 2))
        p = p if w @ p <= 0 else -p
        w_o, w_p = w - eta * p, w - eta * (p - (p @ w) / (w @ w) * w)
        got = float(step.expr.lhs.subs({names["a"]: w @ p, names["r2"]: w @ w, names["eta"]: eta}))
        assert got == pytest.approx(w_o @ w_o - w_p @ w_p, rel=1e-10)


def test_lemma_a1_predicts_tiny_increments_to_full_precision():
    """Increments Delta_t = lr^2 (P_t + 2 sum_{k<t} beta^(t-k) P_k) (brute-force double sum) far
    below 1e-16: the predictor must not lose them to a norm offset (e.g. lr = 1e-4, P ~ 1e-8)."""
    P, lr, beta = RNG.uniform(0.5, 2, 15) * 1e-8, 1e-4, 0.9
    want = [lr**2 * (P[t] + 2 * sum(beta ** (t - k) * P[k] for k in range(t))) for t in range(len(P))]
    got = get_claim("adamp.lemmaA.1").predict(update_sq=P, lr=lr, beta=beta)
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_lemma_norm_sq_with_a_trailing_axis_of_tensors_is_the_double_sum_per_tensor():
    """``update_sq`` of shape (T, m) -- m tensors recorded together -- gives ||w_t||^2 of shape
    (T+1, m): per tensor w0 + lr^2 sum_{s<t} (P_s + 2 sum_{k<s} beta^(s-k) P_k) (brute force)."""
    T, m, lr, beta = 9, 3, 0.4, 0.7
    P, w0 = RNG.uniform(0.1, 2, (T, m)), RNG.uniform(0.5, 2, m)
    got = ng.lemma_norm_sq(w0, P, lr, beta)
    assert got.shape == (T + 1, m)
    for c in range(m):
        want = [w0[c] + lr**2 * sum(P[s, c] + 2 * sum(beta ** (s - k) * P[k, c] for k in range(s))
                                    for s in range(t)) for t in range(T + 1)]
        np.testing.assert_allclose(got[:, c], want, rtol=1e-12)


def test_corollary_ratio_at_a_finite_horizon_is_the_brute_force_ratio():
    """The function under the last step's limit, (S_T + 2 D_T)/S_T written with S = S_T and
    E = E_T = sum_{k<T} beta^(T-1-k) P_k, equals at a finite T the ratio computed from the brute-force
    double sum D_T = sum_{t<T} sum_{k<t} beta^(t-k) P_k (before any limit is taken)."""
    step = _steps("adamp.corollary2.3", "ratio (S_T + 2 D_T)/S_T")[0]
    ratio = step.expr.lhs.args[0]
    names = {x.name: x for x in ratio.free_symbols}
    for beta in (0.3, 0.8):
        P = RNG.uniform(0.1, 2, 11)
        T = len(P)
        D = sum(beta ** (t - k) * P[k] for t in range(T) for k in range(t))
        E = sum(beta ** (T - 1 - k) * P[k] for k in range(T))
        got = ratio.subs({names["q"]: (1 - beta) / beta, names["S"]: P.sum(), names["E"]: E})
        assert float(got) == pytest.approx((P.sum() + 2 * D) / P.sum(), rel=1e-12)


def test_projection_steps_show_residuals_that_vanish_at_numbers():
    """Prop. 3.1's reduced identities show their residual (unsimplified, in symbolic dimension n);
    at n = 4, random w, p, eta and each component i it is 0 to float64 round-off."""
    w, p = sp.IndexedBase("w"), sp.IndexedBase("p")
    for step in get_claim("adamp.proposition3.1").derive().steps:
        e = step.expr
        if step.kind != "reduced" or isinstance(e, (sp.core.relational.Relational, sp.logic.boolalg.Boolean)):
            continue
        x, y, eta = RNG.normal(size=4), RNG.normal(size=4), float(RNG.uniform(0.1, 2))
        vals = {**{w[i + 1]: x[i] for i in range(4)}, **{p[i + 1]: y[i] for i in range(4)}, ng.eta: eta}
        for comp in range(1, 5):
            got = e.subs(ng.DIM, 4).subs(sp.Symbol("i", integer=True, positive=True), comp).doit().subs(vals)
            assert abs(complex(got)) < 1e-9 * max(1.0, eta**2 * (x @ x) * (y @ y)), (step.text[:50], got)
