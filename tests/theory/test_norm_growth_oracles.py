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
