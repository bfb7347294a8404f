"""The convergence bound: derivation status, numbers from the formula, and the proof's lemmas on random data."""
import math

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import momentumlab.theory.convergence as cv
from momentumlab.theory.claims import get_claim
from momentumlab.theory.ops import numpy_ops
from momentumlab.theory.rules import get_rule

IDS = ("convergence.adam_bound", "convergence.vradam_bound", "convergence.rate")
CONSTS = {"d": 11, "L": 8.0, "R": 4.2, "eps": 1e-8, "beta1": 0.9, "alpha0": 1.0, "delta": 0.6}


def test_statuses():
    adam = get_claim("convergence.adam_bound").derive()
    assert adam.status == "proved from lemmas"
    assert {"descent lemma", "Cauchy-Schwarz", "telescoping sum"} <= set(adam.lemmas)
    assert not [s for s in adam.steps if s.kind == "stated"]
    assert get_claim("convergence.rate").derive().status == "proved from lemmas"
    vr = get_claim("convergence.vradam_bound").derive()
    assert vr.status == "derived"  # the worst-case gate step is a [gap], marked not reduced
    gaps = [s for s in vr.steps if s.proved is False]
    assert len(gaps) == 1 and gaps[0].text.startswith("[gap]")


@pytest.mark.parametrize("cid", IDS)
def test_explain_shows_every_step(cid):
    claim = get_claim(cid)
    text = claim.explain()
    assert len(claim.derive().steps) >= 5
    for step in claim.derive().steps:
        assert step.text[:40] in text


def test_adam_derivation_contains_the_proof_landmarks():
    text = get_claim("convergence.adam_bound").explain()
    for landmark in ("descent lemma", "log-sum lemma", "P(tau = j)", "Cauchy-Schwarz", "AM-GM",
                     "assemble", "schedule alpha = alpha_0/sqrt(N)"):
        assert landmark in text


def test_prediction_matches_the_sympy_expression():
    expr = cv.adam_bound()
    subs = {cv.N: 5000, cv.d: CONSTS["d"], cv.L: CONSTS["L"], cv.R: CONSTS["R"], cv.eps: CONSTS["eps"],
            cv.beta1: CONSTS["beta1"], cv.alpha0: CONSTS["alpha0"], cv.delta: CONSTS["delta"]}
    exact = float(expr.subs(subs).evalf(30))
    assert get_claim("convergence.adam_bound").predict(N=5000, **CONSTS) == pytest.approx(exact, rel=1e-10)
    terms = cv.bound_terms(5000, **CONSTS)
    assert sum(terms.values()) == pytest.approx(exact, rel=1e-10)
    vr = get_claim("convergence.vradam_bound").predict(N=5000, **CONSTS, alpha1=10.0)
    assert vr == pytest.approx(11 * exact, rel=1e-10)


def test_closed_form_is_computed_not_retyped():
    """The derivation's expression is the assembled bound; it equals the published form (a
    separately written formula: the paper's statement) at a non-special point."""
    expr = get_claim("convergence.adam_bound").derive().expression
    pub = cv._schedule(cv.adam_bound_published())
    at = {cv.N: 777, cv.d: 3, cv.L: sp.Rational(7, 3), cv.R: sp.Rational(5, 2), cv.eps: sp.Rational(1, 1000),
          cv.beta1: sp.Rational(2, 3), cv.alpha0: sp.Rational(3, 7), cv.delta: sp.Rational(1, 5)}
    assert float(expr.subs(at)) == pytest.approx(float(pub.subs(at)), rel=1e-12)


@pytest.fixture
def restore_constants():
    yield
    cv.clear_caches()
    get_claim("convergence.adam_bound").__dict__.pop("_derivation", None)


@pytest.mark.parametrize("name, wrong", [("U_COEF", sp.Rational(3, 1000)), ("SERIES_SQRT", sp.Rational(1, 500)),
                                         ("SHARE", 1), ("B_LAMBDA", sp.Rational(1, 1000))])
def test_a_wrong_constant_in_the_chain_is_not_proved(monkeypatch, restore_constants, name, wrong):
    """Changing one of the proof's constants breaks the sympy comparison with the published form."""
    monkeypatch.setattr(cv, name, wrong)
    cv.clear_caches()
    claim = get_claim("convergence.adam_bound")
    claim.__dict__.pop("_derivation", None)
    assert claim.derive().status == "derived"


def test_domain_is_enforced():
    with pytest.raises(ValueError):
        cv.adam_bound_value(N=10, **{**CONSTS, "beta1": 0.95})  # beta1 >= beta2 = 0.9


def test_rate_constant_is_the_limit_numerically():
    """bound(N) sqrt(N)/ln N approaches C (slowly: ell(N)/ln N = 1 + O(ln(R^2/eps)/ln N))."""
    expr = cv.adam_bound() * sp.sqrt(cv.N) / sp.log(cv.N)
    subs = {cv.d: 11, cv.L: 8, cv.R: 4, cv.eps: sp.Rational(1, 10**8), cv.beta1: sp.Rational(9, 10),
            cv.alpha0: 1, cv.delta: 1}
    C = float(cv.rate_constant().subs(subs))
    # working precision beyond k digits: N ln(1 - 1/N) needs it
    at = [float(expr.subs({**subs, cv.N: sp.Integer(10) ** k}).evalf(k + 50)) / C for k in (10, 100, 1000)]
    assert at[0] > at[1] > at[2] > 1 and at[2] - 1 < 0.02


def test_tau_weights_are_the_reindexed_double_sum():
    """P(tau = j) is the weight of ||grad F(x_j)||^2 in sum_{n=1}^N sum_{k<n} beta1^k ||G_{n-k}||^2
    (G_n = grad F(x_{n-1})), counted here by brute force over (n, k), then normalised."""
    N, b1 = 50, 0.9
    count = np.zeros(N)
    for n in range(1, N + 1):
        for k in range(n):
            count[n - k - 1] += b1**k
    assert np.allclose(cv.tau_weights(N, b1), count / count.sum(), rtol=1e-12, atol=0)


def test_gate_counterexample_is_exact():
    mean, floor = cv.gate_counterexample()
    assert mean < 0 < floor
    # a direct float evaluation agrees
    gate = lambda g: 1 / (1 + min(g * g, 10))  # noqa: E731
    assert float(mean) == pytest.approx(0.5 * (gate(2.1) * 2.1 + gate(-1.9) * -1.9))


# ------------------------------------------------------------------ the lemmas of the proof, on data
@settings(max_examples=100)  # a 1-D sweep of a; 100 draws cover [0, 0.995] densely
@given(st.floats(0.0, 0.995))
def test_series_bounds(a):
    k = np.arange(20_000, dtype=np.float64)  # a^k k^1.5 < 1e-30 beyond, for a <= 0.995
    s1 = np.sum(a**k * np.sqrt(k + 1))
    s2 = np.sum(a**k * k**1.5)
    assert s1 <= (1 - a) ** -1.5 * (1 + 1e-9) <= 2 * (1 - a) ** -1.5
    assert s2 <= a * math.sqrt(1 + a) * (1 - a) ** -2.5 * (1 + 1e-9) + 1e-300
    assert s2 <= 4 * a * (1 - a) ** -2.5 + 1e-300


def _history(seed, n, d, r0):
    rng = np.random.default_rng(seed)
    scale = rng.uniform(0, r0, size=(n, 1)) * rng.choice([1e-3, 1.0], size=(n, 1))
    return np.clip(rng.standard_normal((n, d)) * scale, -r0, r0)


@settings(max_examples=60)  # each example is a 300-step history: enough to hit every branch
@given(st.integers(0, 10**6), st.floats(0.0, 0.95), st.floats(0.5, 0.9999), st.floats(1e-8, 1e-1))
def test_logsum_and_momentum_lemmas(seed, b1, b2, eps):
    """sum ||U_j||^2 <= d ell and sum ||u_n||^2 <= d ell/((1-b1)(1-b1/b2)) on random gradient histories."""
    if b1 >= b2:
        b1 = 0.9 * b2
    g = _history(seed, 300, 3, 2.0)
    R = 2.0 + math.sqrt(eps)
    m = np.zeros(3)
    v = np.zeros(3)
    sumU = sumu = 0.0
    for gn in g:
        m, v = b1 * m + gn, b2 * v + gn * gn
        sumU += np.sum(gn * gn / (eps + v))
        sumu += np.sum(m * m / (eps + v))
    ell = math.log(1 + R**2 / ((1 - b2) * eps)) - len(g) * math.log(b2)
    assert sumU <= 3 * ell * (1 + 1e-12)
    assert sumu <= sumU / ((1 - b1) * (1 - b1 / b2)) * (1 + 1e-12)


@settings(max_examples=60)  # pointwise inequality checked at every (n, k) of a 60-step history
@given(st.integers(0, 10**6), st.floats(0.0, 0.95), st.floats(0.5, 0.9999), st.floats(1e-8, 1e-1))
def test_mismatch_term_C_is_bounded_pointwise(seed, b1, b2, eps):
    """|C| <= (c/2) G^2/sqrt(eps+vt) + (2R sqrt(k+1)/sqrt(1-b1)) b2^-k U_{n-k}^2, c = sqrt(1-b1)/4."""
    if b1 >= b2:
        b1 = 0.9 * b2
    r0 = 1.5
    R = r0 + math.sqrt(eps)
    g = _history(seed, 60, 1, r0)[:, 0]
    G = np.clip(g + np.random.default_rng(seed + 1).standard_normal(60), -r0, r0)  # any |G| <= R0
    v = np.zeros(61)
    for n in range(1, 61):
        v[n] = b2 * v[n - 1] + g[n - 1] ** 2
    c = math.sqrt(1 - b1) / 4
    for n in range(1, 61):
        for k in range(n):
            vt = b2 ** (k + 1) * v[n - k - 1] + r0**2 * sum(b2**j for j in range(k + 1))
            assert vt >= v[n] - 1e-12
            gk, Gk = g[n - k - 1], G[n - k - 1]
            C = Gk * gk * (1 / math.sqrt(eps + v[n]) - 1 / math.sqrt(eps + vt))
            U2 = gk**2 / (eps + v[n - k])
            bound = c / 2 * Gk**2 / math.sqrt(eps + vt) + 2 * R * math.sqrt(k + 1) / math.sqrt(1 - b1) \
                * b2**-k * U2
            assert abs(C) <= bound * (1 + 1e-9) + 1e-15


def test_rule_is_defossez_adam_and_the_gate_is_in_range():
    rule = get_rule("defossez_adam")
    ops = numpy_ops()
    rng = np.random.default_rng(0)
    b1, b2, lr, eps = 0.8, 0.99, 0.1, 1e-6
    for beta3, alpha1 in ((0.0, 0.0), (2.0, 5.0)):
        w = rng.standard_normal(4)
        state = rule.init(w, ops)
        h = rule.hyper(lr=lr, betas=(b1, b2), eps=eps, beta3=beta3, alpha1=alpha1)
        m, v = np.zeros(4), np.zeros(4)
        for n in range(1, 6):
            g = rng.standard_normal(4)
            w_new, state = rule(w, g, state, h, ops)
            m, v = b1 * m + g, b2 * v + g * g
            gate = 1 / (1 + min(beta3 * np.sum(((1 - b1) * m) ** 2), alpha1))
            step = lr * (1 - b1) * math.sqrt((1 - b2**n) / (1 - b2)) * gate * m / np.sqrt(eps + v)
            assert np.allclose(w_new, w - step, rtol=1e-13, atol=1e-15)
            assert 1 / (1 + alpha1) - 1e-15 <= float(np.squeeze(state["gate"])) <= 1
            w = w_new
