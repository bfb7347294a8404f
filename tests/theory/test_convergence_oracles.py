"""The convergence formulas through other paths: Défossez et al.'s Thm 4 typed here from the claim's
statement (numpy, an independent oracle of the derived expression), every reduced step of the three
derivations checked numerically at random points, the proof's coefficients against the inequalities
they must satisfy, and the negative controls against the wrong laws their names say."""
import math
from types import SimpleNamespace

import numpy as np
import pytest
import sympy as sp

import momentumlab.theory.convergence as cv
from momentumlab.theory.claims import get_claim

RNG = np.random.default_rng(17)
IDS = ("convergence.adam_bound", "convergence.vradam_bound", "convergence.rate")


def _paper(N, d, L, R, eps, beta1, alpha0, delta):
    """Thm 4 (as stated in the claim), term by term: descent, 12 d R^2 (noise), 2 a^2 d L^2 b1
    (momentum drift), a d R L (curvature); alpha = alpha0/sqrt N, beta2 = 1 - 1/N."""
    a, b2 = alpha0 / math.sqrt(N), 1 - 1 / N
    nt = N - beta1 / (1 - beta1)
    g = 1 - beta1 / b2
    ell = math.log(1 + R**2 / ((1 - b2) * eps)) - N * math.log(b2)
    return {"descent": 2 * R * delta / (a * nt),
            "noise": 12 * d * R**2 * math.sqrt(1 - beta1) / (g**1.5 * math.sqrt(1 - b2)) * ell / nt,
            "momentum_drift": 2 * a**2 * d * L**2 * beta1 / (g * (1 - b2) ** 1.5) * ell / nt,
            "curvature": a * d * R * L * (1 - beta1) / (g * (1 - b2)) * ell / nt}


def _draw():
    beta1 = float(RNG.uniform(0.0, 0.95))
    return dict(N=float(RNG.integers(int(3 / (1 - beta1)) + 2, 10**5)), d=int(RNG.integers(1, 50)),
                L=float(RNG.uniform(0.1, 10)), R=float(RNG.uniform(0.5, 5)),
                eps=float(10 ** RNG.uniform(-9, -2)), beta1=beta1, alpha0=float(RNG.uniform(0.05, 2)),
                delta=float(RNG.uniform(0.0, 3)))


def test_bound_values_and_terms_are_the_papers():
    for _ in range(6):
        p = _draw()
        want = _paper(**p)
        got = cv.bound_terms(**p)
        for k in want:
            assert float(got[k]) == pytest.approx(want[k], rel=1e-9), k
        total = sum(want.values())
        assert cv.adam_bound_value(**p) == pytest.approx(total, rel=1e-9)
        assert cv.published_bound_value(**p) == pytest.approx(total, rel=1e-9)
        a1 = float(RNG.uniform(0, 20))
        assert cv.vradam_bound_value(**p, alpha1=a1) == pytest.approx((1 + a1) * total, rel=1e-9)


def _subs_of(expr, p):
    names = {s.name: s for s in expr.free_symbols}
    key = {"N": "N", "d": "d", "L": "L", "R": "R", "epsilon": "eps", "beta_1": "beta1",
           "alpha_0": "alpha0", "Delta": "delta"}
    return {names[k]: p[v] for k, v in key.items() if k in names}


def test_derived_expressions_are_the_papers():
    adam = get_claim("convergence.adam_bound").derive().expression
    vr = get_claim("convergence.vradam_bound").derive().expression
    for _ in range(3):
        p = _draw()
        total = sum(_paper(**p).values())
        assert float(adam.subs(_subs_of(adam, p))) == pytest.approx(total, rel=1e-9)
        a1 = sp.Symbol("alpha_1", nonnegative=True)
        assert float(vr.subs(_subs_of(vr, p)).subs(a1, 3.0)) == pytest.approx(4 * total, rel=1e-9)


def test_rate_constant_is_the_papers_closed_form():
    C = get_claim("convergence.rate").derive().expression
    for _ in range(4):
        p = _draw()
        d, L, R, b1, a0 = p["d"], p["L"], p["R"], p["beta1"], p["alpha0"]
        want = 12 * d * R**2 / (1 - b1) + 2 * a0**2 * d * L**2 * b1 / (1 - b1) + a0 * d * R * L
        assert cv.rate_constant_value(d, L, R, b1, a0) == pytest.approx(want, rel=1e-12)
        assert get_claim("convergence.rate").predict(d=d, L=L, R=R, beta1=b1, alpha0=a0) == \
            pytest.approx(want, rel=1e-12)
        assert float(C.subs(_subs_of(C, p))) == pytest.approx(want, rel=1e-12)
        named = {str(s.expr.lhs): s.expr.rhs for s in get_claim("convergence.rate").derive().steps
                 if isinstance(s.expr, sp.Eq)}
        lim = named["lim E/sqrt(N)"]  # = C too: the descent term's share vanishes
        assert float(lim.subs(_subs_of(lim, p))) == pytest.approx(want, rel=1e-12)


def test_statuses_and_lemmas():
    adam = get_claim("convergence.adam_bound").derive()
    assert adam.status == "proved from lemmas"
    assert set(adam.lemmas) >= {"descent lemma", "Cauchy-Schwarz", "telescoping sum",
                                "tower property of conditional expectation"}
    assert get_claim("convergence.rate").derive().status == "proved from lemmas"
    vr = get_claim("convergence.vradam_bound").derive()
    assert vr.status == "derived" and [s.proved for s in vr.steps].count(False) == 1


def _value(e, rng):
    """``e`` at random values of its free symbols, drawn inside their assumptions (a positive
    symbol in (0.05, 3), a nonnegative one in [0, 3), a real one in (-3, 3), integers from 1 to 6, beta_2 in (0.5, 1)
    above beta_1 in [0, 0.5), the horizon N in (10, 1000)); symbols in name order (reproducible)."""
    vals = {}
    for s in sorted(e.free_symbols, key=lambda s: s.name):
        if s.name == "N":
            vals[s] = rng.uniform(10.0, 1000.0)
        elif s.name in ("beta_2",):
            vals[s] = rng.uniform(0.5, 0.99)
        elif s.name in ("beta_1", "beta"):
            vals[s] = rng.uniform(0.0, 0.5)
        elif s.is_integer:
            vals[s] = int(rng.integers(1, 7))
        elif s.is_nonnegative is not True:  # a real symbol of either sign (a gradient, a state)
            vals[s] = rng.uniform(-3.0, 3.0)
        elif s.is_nonnegative and not s.is_positive:
            vals[s] = rng.uniform(0.0, 3.0)
        else:
            vals[s] = rng.uniform(0.05, 3.0)
    _last_draw.clear()
    _last_draw.update(vals)
    return e.subs(vals)


_last_draw: dict = {}


@pytest.mark.parametrize("cid", IDS)
def test_every_reduced_step_holds_at_random_points(cid):
    """A step marked reduced displays an identity (its expression vanishes) or a true relation."""
    rng = np.random.default_rng(3)
    for step in get_claim(cid).derive().steps:
        if step.kind != "reduced" or step.expr is None:
            continue
        e = sp.sympify(step.expr)
        rels = e.args if isinstance(e, sp.And) else (e,)
        for _ in range(3):
            for r in rels:
                if isinstance(r, sp.Eq) and not isinstance(r.rhs, sp.Number) and all(
                        isinstance(a, sp.Symbol) for a in sp.Add.make_args(r.lhs)):
                    continue  # a computed quantity named by the step, checked below
                if not r.free_symbols and not isinstance(r, sp.core.relational.Relational):
                    assert r == 0 or r is sp.true, (step.text[:60], r)  # an identity's residual
                x = _value(r.doit(), rng)
                assert _holds(x), (step.text[:60], r, x)


def _holds(x) -> bool:
    """A numeric relation holds (to 1e-12 relative); a bare expression is a reduced gap (0) or a
    displayed nonnegative gap, e.g. AM-GM's (c x - y)^2/(2c): it must not be negative."""
    if x in (sp.true, sp.false):
        return x is sp.true
    if isinstance(x, sp.core.relational.Relational):
        lhs, rhs = complex(sp.N(x.lhs, 30)), complex(sp.N(x.rhs, 30))
        tol = 1e-12 * max(1.0, abs(lhs), abs(rhs))
        gap = (lhs - rhs).real
        if isinstance(x, sp.Eq):
            return abs(lhs - rhs) <= tol
        if isinstance(x, (sp.GreaterThan, sp.StrictGreaterThan)):
            return gap >= -tol
        return gap <= tol
    v = complex(sp.N(x, 30))
    return abs(v.imag) < 1e-12 and v.real >= -1e-12


def test_named_coefficients_of_the_steps():
    """coef_C = R sqrt(k+1)/(2c), c = sqrt(1-b1)/4; B_U + B_u = lambda_k/2 + L^2 a_n^2 k/(2 lambda_k),
    lambda_k = 2 R sqrt(k)/sqrt(1-b1); C = the rate's closed form (the AM-GM choices of the proof)."""
    steps = get_claim("convergence.adam_bound").derive().steps
    named = {str(s.expr.lhs): s.expr.rhs for s in steps if isinstance(s.expr, sp.Eq)}
    for _ in range(3):
        R, k, b1, L, an = RNG.uniform(0.5, 3), int(RNG.integers(1, 9)), RNG.uniform(0, 0.9), \
            RNG.uniform(0.1, 3), RNG.uniform(0.1, 2)
        vals = lambda e: {s: {"R": R, "k": k, "beta_1": b1, "L": L, "alpha_n": an}[s.name]  # noqa: E731
                          for s in e.free_symbols}
        c = math.sqrt(1 - b1) / 4
        e = named["coef_C"]
        assert float(e.subs(vals(e))) == pytest.approx(R * math.sqrt(k + 1) / (2 * c), rel=1e-12)
        e = named["B_U + B_u"]
        lam = 2 * R * math.sqrt(k) / math.sqrt(1 - b1)
        assert float(e.subs(vals(e))) == pytest.approx(lam / 2 + L**2 * an**2 * k / (2 * lam), rel=1e-12)


def test_chain_coefficients_satisfy_the_proofs_inequalities():
    c = cv.chain_coefficients()
    assert c["C_U"] * c["amgm_c"] / 2 == pytest.approx(0.25, rel=1e-15)  # AM-GM pair for C
    assert c["B_U"] * c["B_u"] == pytest.approx(0.25, rel=1e-15)  # AM-GM pair for B
    k = np.arange(0, 10_000, dtype=float)
    assert np.all(c["C_U"] * np.sqrt(k + 1) + c["B_U"] * np.sqrt(k) <= c["U"] * np.sqrt(k + 1))
    b1 = np.linspace(0, 0.999999, 1001)
    assert np.all(1 - c["amgm_c"] * np.sqrt(1 - b1) / 2 >= c["share"])
    for a in (0.1, 0.5, 0.9, 0.99):
        kk = np.arange(50_000, dtype=float)
        assert np.sum(a**kk * np.sqrt(kk + 1)) <= c["series_sqrt"] * (1 - a) ** -1.5
        assert np.sum(a**kk * kk**1.5) <= c["series_k32"] * a * (1 - a) ** -2.5
    assert (c["amgm_c"], c["share"], c["U"]) == (0.25, 0.5, 3.0)  # the constants of the published 12
    assert 2 * c["U"] * c["series_sqrt"] / c["share"] / 2 == 12  # 12 d R^2 = 2 U S1 R^2 d/(2 share)


def _result(alpha1=None):
    hyper = {"beta1": 0.8, "eps": 1e-8, "alpha0": 0.7, **({"alpha1": alpha1} if alpha1 else {})}
    c = {"d": 3, "L": 2.0, "R": 1.5, "delta": 0.4}
    return SimpleNamespace(details={"hyper": hyper, "objectives": {
        "o": {"constants": c, "rows": [{"N": 100.0}, {"N": 1000.0}]}}}), hyper, c


@pytest.mark.parametrize("alpha1", [None, 4.0])
def test_bound_controls_are_their_laws(alpha1):
    r, h, c = _result(alpha1)
    f = 1 + (alpha1 or 0.0)
    claim = get_claim("convergence.vradam_bound" if alpha1 else "convergence.adam_bound")
    ctl = {x.name: x for x in claim.controls}
    for b1, factor, name in ((0.64, 1.0, "beta_1 -> beta_1^2"), (0.8, 2.0, "12 d R^2 term x 2"),
                             (0.8, 1e-3, "12 d R^2 term / 1000")):
        want = []
        for N in (100.0, 1000.0):
            t = _paper(N, c["d"], c["L"], c["R"], h["eps"], b1, h["alpha0"], c["delta"])
            want.append(f * (sum(t.values()) + (factor - 1) * t["noise"]))
        np.testing.assert_allclose(ctl[name].wrong(r)["o"], want, rtol=1e-9)
    if alpha1:
        pred = {"o": np.array([10.0, 20.0])}
        r2 = SimpleNamespace(details=r.details, full_prediction=pred)
        np.testing.assert_allclose(ctl["(1 + alpha_1) factor dropped"].wrong(r2)["o"],
                                   pred["o"] / 5.0, rtol=1e-15)


def test_rate_controls_are_their_laws():
    r, h, c = _result()
    ctl = {x.name: x for x in get_claim("convergence.rate").controls}
    C = lambda b1, r2=1.0: (r2 * 12 * c["d"] * c["R"] ** 2 / (1 - b1)  # noqa: E731
                            + 2 * h["alpha0"] ** 2 * c["d"] * c["L"] ** 2 * b1 / (1 - b1)
                            + h["alpha0"] * c["d"] * c["R"] * c["L"])
    assert ctl["beta_1 -> beta_1^2"].wrong(r)["o"] == pytest.approx(C(0.64), rel=1e-12)
    assert ctl["12 d R^2 term x 2"].wrong(r)["o"] == pytest.approx(C(0.8, 2.0), rel=1e-12)


def test_tau_weights_log_slope_and_domain():
    w = cv.tau_weights(7, 0.5)
    want = np.array([1 - 0.5 ** (7 - j) for j in range(7)])
    np.testing.assert_allclose(w, want / want.sum(), rtol=1e-14)
    Ns = np.array([10.0, 100.0, 1000.0])
    assert cv.log_slope(Ns, 3 * Ns**-0.5) == pytest.approx(-0.5, rel=1e-12)
    with pytest.raises(ValueError, match="beta1"):
        cv.adam_bound_value(N=10, d=1, L=1, R=1, eps=1e-8, beta1=0.9, alpha0=1, delta=1)
    with pytest.raises(ValueError, match="beta1"):
        cv.adam_bound_value(N=10, d=1, L=1, R=1, eps=1e-8, beta1=-0.1, alpha0=1, delta=1)
    assert cv.adam_bound_value(N=11, d=1, L=1, R=1, eps=1e-8, beta1=0.89, alpha0=1, delta=1) > 0


def test_gate_counterexample_exact_rationals():
    mean, floor = cv.gate_counterexample()
    # g = 21/10: gate 1/(1 + 441/100) = 100/541; g = -19/10: 1/(1 + 361/100) = 100/461
    want = sp.Rational(1, 2) * (sp.Rational(100, 541) * sp.Rational(21, 10)
                                - sp.Rational(100, 461) * sp.Rational(19, 10))
    assert mean == want and floor == sp.Rational(1, 110)
    m2, f2 = cv.gate_counterexample(G=sp.Rational(1, 2), noise=1, beta3_=2, alpha1_=3)
    g = lambda x: 1 / (1 + min(2 * x * x, 3))  # noqa: E731
    assert float(m2) == pytest.approx(0.5 * (g(1.5) * 1.5 + g(-0.5) * -0.5), rel=1e-12)
    assert f2 == sp.Rational(1, 8)


def test_domain_error_names_the_smallest_horizon():
    for beta1, N, shown in ((0.9, 10, "N > 10)"), (0.5, 2, "N > 2)"), (0.75, 3, "N > 4)")):
        with pytest.raises(ValueError) as err:
            cv.adam_bound_value(N=N, d=1, L=1, R=1, eps=1e-8, beta1=beta1, alpha0=1, delta=1)
        assert shown in str(err.value)  # N > 1/(1 - beta1)


def test_u_coefficient_step_shows_the_proofs_numbers():
    """C's AM-GM gives (R/sqrt(1-b1)) 2 sqrt(k+1) (1/(2c) with c = 1/4), B's gives
    (R/sqrt(1-b1)) 1 sqrt(k) (lambda_k/2 with lambda_k = 2 R sqrt(k)/sqrt(1-b1)); 2 + 1 <= 3."""
    text = [s.text for s in get_claim("convergence.adam_bound").derive().steps
            if s.text.startswith("U coefficients")][0]
    assert "C's (R/sqrt(1-beta_1)) 2 sqrt(k+1) plus B's (R/sqrt(1-beta_1)) 1 sqrt(k) <= 3" in text


def test_bound_terms_take_a_vector_of_horizons():
    p = _draw()
    Ns = np.array([p["N"], 2 * p["N"], 5 * p["N"]])
    got = cv.bound_terms(**{**p, "N": Ns})
    for i, N in enumerate(Ns):
        want = _paper(**{**p, "N": float(N)})
        for k in want:
            assert float(got[k][i]) == pytest.approx(want[k], rel=1e-9), (k, N)


def test_the_two_sqrt_inequalities_show_the_gap_of_their_sides():
    """sqrt(a) - sqrt(b) <= (a - b)/sqrt(a) (a = (p+rho)^2, b = p^2) and sqrt(u) - u^2/w^(3/2) >= 0
    (u = P^2, w = (P+rho)^2): the displayed gap is (right side) - (left side), here in floats."""
    steps = {s.text[:20]: s for s in get_claim("convergence.adam_bound").derive().steps}
    first = steps["sqrt(eps+vt) - sqrt("].expr.lhs
    second = steps["D^2 sqrt(eps+vt) = ("].expr.lhs
    for _ in range(4):
        p_, rho = RNG.uniform(0.1, 3, 2)
        a, b = (p_ + rho) ** 2, p_**2
        names = {s.name: s for s in first.free_symbols}
        got = float(first.subs({names["p"]: p_, names["rho"]: rho}))
        assert got == pytest.approx((a - b) / math.sqrt(a) - (math.sqrt(a) - math.sqrt(b)), rel=1e-12)
        u, w = p_**2, (p_ + rho) ** 2
        names = {s.name: s for s in second.free_symbols}
        got = float(second.subs({names["P"]: p_, names["rho"]: rho}))
        assert got == pytest.approx(math.sqrt(u) - u**2 / w**1.5, rel=1e-12)


def test_the_padding_and_share_steps_show_the_gap_of_their_sides():
    """eps + R0^2 Omega^2 <= R^2 Omega^2 (R = R0 + sqrt(eps), Omega^2 = 1 + s) and
    1 - c/2 >= SHARE (c = sqrt(1-b1)/4, SHARE = 1/2, b1 = 1 - (t/(1+t))^2): displayed gaps in floats."""
    steps = {s.text[:20]: s for s in get_claim("convergence.adam_bound").derive().steps}
    pad = steps["eps + vt_{n,k,i} <= "].expr.lhs
    share = [s for s in get_claim("convergence.adam_bound").derive().steps
             if s.text.startswith("the A term keeps the share")][0].expr.lhs
    for _ in range(4):
        e_, r0, s_, t = RNG.uniform(0.01, 2), RNG.uniform(0, 3), RNG.uniform(0, 5), RNG.uniform(0.01, 5)
        names = {x.name: x for x in pad.free_symbols}
        got = float(pad.subs({names["epsilon"]: e_, names["R_0"]: r0, names["s"]: s_}))
        R, om2 = r0 + math.sqrt(e_), 1 + s_
        assert got == pytest.approx(R**2 * om2 - (e_ + r0**2 * om2), rel=1e-12)
        b1 = 1 - (t / (1 + t)) ** 2
        names = {x.name: x for x in share.free_symbols}
        got = float(share.subs({names["t"]: t}))
        assert got == pytest.approx(1 - math.sqrt(1 - b1) / 4 / 2 - 0.5, rel=1e-12, abs=1e-15)


def test_horizon_gap_u_squares_and_gate_range_steps():
    """Z - N~ = beta_1^(N+1)/(1 - beta_1) (beta_1 = 1/(1+r)); the U step's squares are
    (3 - 2)^2 (k+1) - 1^2 k = 1; the gate range shows 1/(1+mu) - 1/(1+alpha_1) and 1 - 1/(1+mu)
    with alpha_1 = mu + s."""
    adam = get_claim("convergence.adam_bound").derive().steps
    gap = [s for s in adam if s.text.startswith("Z >= N~")][0].expr.lhs
    for _ in range(3):
        r, N = RNG.uniform(0.05, 3), int(RNG.integers(1, 30))
        names = {x.name: x for x in gap.free_symbols}
        b1 = 1 / (1 + r)
        got = float(gap.subs({names["r"]: r, names["N"]: N}))
        assert got == pytest.approx(b1 ** (N + 1) / (1 - b1), rel=1e-12)
    squares = [s for s in adam if s.text.startswith("U coefficients")][0].expr.lhs
    assert squares == 1
    vr = get_claim("convergence.vradam_bound").derive().steps
    rng_ = [s for s in vr if s.text.startswith("gate range")][0].expr
    sides = sorted((a.lhs for a in rng_.args), key=lambda e: len(e.free_symbols))
    hi, lo = sides  # hi has mu only, lo has mu and s
    for _ in range(3):
        # exact rationals: in floats, 1/(1+mu) - 1/(1+mu+s) cancels for small s (the draw order,
        # hence the draws, depend on which tests share the module's RNG under xdist)
        mu, s_ = (sp.Rational(str(round(float(x), 6))) for x in RNG.uniform(0, 5, 2))
        n_lo, n_hi = ({x.name: x for x in e.free_symbols} for e in (lo, hi))
        assert sp.simplify(lo.subs({n_lo["mu"]: mu, n_lo["s"]: s_}) - (1 / (1 + mu) - 1 / (1 + mu + s_))) == 0
        assert sp.simplify(hi.subs({n_hi["mu"]: mu}) - (1 - 1 / (1 + mu))) == 0


@pytest.mark.parametrize("cid", IDS)
def test_reduced_identities_display_zero_and_the_three_gaps_their_values(cid):
    """A reduced step that shows a bare expression shows its identity's residual, 0 -- except
    AM-GM's gap (c x - y)^2/(2c), the log-sum step's eps (1 - beta_2) and the schedule step's bound,
    checked here against those values in floats."""
    special = {
        "AM-GM: x y <= (c/2) ": lambda v: (v["c"] * v["x"] - v["y"]) ** 2 / (2 * v["c"]),
        "eps + v_j - g_j^2 = ": lambda v: v["epsilon"] * (1 - v["beta_2"]),
        "schedule alpha = alp": lambda v: sum(_paper(v["N"], v["d"], v["L"], v["R"], v["epsilon"],
                                                     v["beta_1"], v["alpha_0"], v["Delta"]).values()),
    }
    for step in get_claim(cid).derive().steps:
        e = step.expr
        if step.kind != "reduced" or e is None or isinstance(e, (sp.core.relational.Relational, sp.And)) \
                or e in (sp.true, sp.false):
            continue
        want = special.get(step.text[:20])
        if want is None:
            assert e == 0, (step.text[:60], e)
            continue
        rng = np.random.default_rng(9)
        for _ in range(3):
            x = _value(e, rng)  # N in (10, 1000), beta_1 in [0, 0.5), beta_2 in (0.5, 0.99)
            vals = {s.name: float(v) for s, v in _last_draw.items()}
            assert float(x) == pytest.approx(want(vals), rel=1e-9), step.text[:60]


def test_second_series_constant_step_shows_the_squared_inequality():
    """'sqrt(2) <= SERIES_K32' is displayed squared: SERIES_K32^2 >= 2."""
    step = [s for s in get_claim("convergence.adam_bound").derive().steps
            if s.text.startswith("second series' constant")][0]
    k32 = cv.chain_coefficients()["series_k32"]
    assert isinstance(step.expr, sp.GreaterThan)
    assert float(step.expr.lhs) == k32**2 and float(step.expr.rhs) == 2.0


# the proof of Défossez et al.'s Thm 4 (Sec. 5 and App. A), ingredient by ingredient, in its order:
# how the step that carries each one begins
_ADAM_PROOF_OUTLINE = (
    "assumptions", "rules.defossez_adam", "Omega_n^2", "F(x_n) <= F(x_{n-1})", "split", "E_{n-k-1}[A]",
    "sqrt(eps+vt) - sqrt(eps+v)", "hence |C|", "AM-GM: x y", "D^2 sqrt(eps+vt)", "vt - v <= R0^2",
    "choose c", "|B| <=", "||G_n - G_{n-k}||", "(sum_{l=1}^k", "AM-GM with lambda_k", "eps + vt_{n,k,i}",
    "the A term keeps the share", "U coefficients", "per step, summing the split", "reindex the double sum",
    "so the weights are those of tau", "Z >= N~", "hence (SHARE alpha/R) Z", "log-sum lemma", "eps + v_j - g_j^2",
    "so g_j^2/(eps+v_j)", "sum_k a^k = 1/(1-a)", "momentum lemma", "first series:", "first series' constant",
    "sum_k a^k k = a/(1-a)^2", "second series:", "second series' constant", "swapping sums", "assemble",
    "schedule")


def test_adam_derivation_states_each_step_of_the_proof_once_in_its_order():
    """Every ingredient of the published proof is a step of the derivation, exactly once, in the
    proof's order (the descent lemma before the reindexing of the double sum, the log-sum lemma
    before the series, the assembly last but the schedule): a step dropped, duplicated or moved
    is a different proof, whatever the status says."""
    texts = [s.text for s in get_claim("convergence.adam_bound").derive().steps]
    assert len(set(texts)) == len(texts), "a step is stated twice"
    where = []
    for phrase in _ADAM_PROOF_OUTLINE:
        hits = [i for i, t in enumerate(texts) if t.startswith(phrase)]
        assert hits, f"no step carries {phrase!r}"
        where.append(hits[0])
    assert where == sorted(where), [p for p, i in zip(_ADAM_PROOF_OUTLINE, where)]
    assert len(texts) == len(_ADAM_PROOF_OUTLINE)


def test_rate_positivity_step_shows_the_papers_constant_at_beta1_r_over_1_plus_r():
    """The step 'C is finite and positive' displays C(beta_1 = r/(1+r)) > 0; its left side is the
    paper's 12 d R^2/(1-b1) + 2 a0^2 d L^2 b1/(1-b1) + a0 d R L at b1 = r/(1+r) (r >= 0 covers
    0 <= beta_1 < 1, r = 0 is beta_1 = 0)."""
    step = [s for s in get_claim("convergence.rate").derive().steps
            if s.text.startswith("C is finite and positive")][0]
    assert isinstance(step.expr, sp.StrictGreaterThan) and step.expr.rhs == 0
    lhs = step.expr.lhs
    names = {x.name: x for x in lhs.free_symbols}
    for r in (0.0, *RNG.uniform(0.01, 20, 3)):
        d, L, R, a0 = int(RNG.integers(1, 9)), *RNG.uniform(0.1, 3, 3)
        b1 = r / (1 + r)
        want = 12 * d * R**2 / (1 - b1) + 2 * a0**2 * d * L**2 * b1 / (1 - b1) + a0 * d * R * L
        vals = {"d": d, "L": L, "R": R, "alpha_0": a0, "r": r}
        got = float(lhs.subs({names[k]: v for k, v in vals.items() if k in names}))
        assert got == pytest.approx(want, rel=1e-12), r
