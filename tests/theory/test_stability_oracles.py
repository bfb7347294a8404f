"""Fast oracles for the stability pipeline (linearize -> Schur -> threshold), at random
hyperparameters: the spectral radius from the derived characteristic polynomial against numpy's
eigenvalues of the iteration matrix rebuilt by finite differences of the rule on floats
(tests/theory/test_stability.py's independent path), and the threshold against the place where
that float matrix leaves the unit disc.  Also the paper's stated closed form of each model, typed
here from the sources, against the derived threshold at random points."""
import numpy as np
import pytest
import sympy as sp

from momentumlab.theory.linearize import sqrt_containing
from momentumlab.theory.stability import B, MODELS, analyse, get_model
from tests.theory.test_stability import _float_matrix

NAMES = list(MODELS)
RNG = np.random.default_rng(11)


def _draw(name, rng):
    """Random values of every hyperparameter in its explorer range (beta kept below 0.95)."""
    out = {}
    for p in get_model(name).params:
        lo, hi = p.range
        hi = min(hi, 0.95) if p.domain == "unit" else hi
        lo = max(lo, 1e-3) if p.name == "epsilon" else lo
        out[p.name] = float(rng.uniform(lo, hi))
    return out


def _rho(name, x, params):
    """Float path.  VRAdam's gate is live in the rule (0 near v = 0); a gate frozen at G is
    the rate alpha0/(1 + G) (rules.vr_gate), so G enters as x/(1 + G) with the gate at 0."""
    if name == "vradam":
        x, params = x / (1 + params["G"]), {**params, "G": 0.0}
    return np.abs(np.linalg.eigvals(_float_matrix(name, x, params))).max()


@pytest.mark.parametrize("name", NAMES)
def test_spectral_radius_and_stability_match_the_float_matrix(name):
    an = analyse(name)
    for _ in range(3):
        params = _draw(name, RNG)
        thr = an.threshold_value(params)
        for x in (0.3 * thr, 0.9 * thr, 1.1 * thr, 2.0 * thr):
            want = _rho(name, x, params)
            assert float(an.spectral_radius(x, params)) == pytest.approx(want, rel=1e-5), (x, params)
            assert bool(an.stable(x, params)) == (want < 1), (x, params)


@pytest.mark.parametrize("name", NAMES)
def test_threshold_is_where_the_float_matrix_leaves_the_disc(name):
    an = analyse(name)
    for _ in range(3):
        params = _draw(name, RNG)
        thr = an.threshold_value(params)
        assert _rho(name, 0.995 * thr, params) < 1 < _rho(name, 1.005 * thr, params), params


PAPER = {  # the closed forms as the sources state them (see stability_models' docstrings)
    "gd": lambda v: 2.0,
    "heavy_ball": lambda v: 2 + 2 * v["beta"],
    "ema_momentum": lambda v: (2 + 2 * v["beta"]) / (1 - v["beta"]),
    "nesterov": lambda v: (2 + 2 * v["beta"]) / (1 + 2 * v["beta"]),
    "nadam": lambda v: 2 * (1 + v["beta"]) / ((1 - v["beta"]) * (1 + 2 * v["beta"])),
    "rmsprop": lambda v: 2 + 2 * v["beta"],
    "adam": lambda v: (2 + 2 * v["beta"]) / (1 - v["beta"]),
    "vradam": lambda v: (2 + 2 * v["beta"]) / (1 - v["beta"]) * (1 + v["G"]),
    "tam": lambda v: (2 + 2 * v["beta"]) / (v["d"] + v["epsilon"]),
}


@pytest.mark.parametrize("name", NAMES)
def test_threshold_and_stated_form_are_the_papers(name):
    model, an = get_model(name), analyse(name)
    for _ in range(3):
        params = _draw(name, RNG)
        want = PAPER[name](params)
        assert an.threshold_value(params) == pytest.approx(want, rel=1e-12)
        if model.stated is not None:
            stated = model.stated(model.symbols())
            got = float(sp.sympify(stated).subs({model.param(k).symbol: v
                                                 for k, v in params.items()}))
            assert got == pytest.approx(want, rel=1e-12)


def test_B_is_vradams_formula():
    for beta in RNG.uniform(0, 0.99, 5):
        assert B(beta) == pytest.approx((2 + 2 * beta) / (1 - beta), rel=1e-14)


def test_a_float_square_root_is_frozen_too():
    V, P = sp.symbols("V P", positive=True)
    assert sqrt_containing(V, P).apply(2 * V**0.5 + V**1.5) == 2 * P + V**1.5


def test_linearize_takes_the_jacobian_at_zero_and_sees_nonlinearity():
    from momentumlab.theory.linearize import OneStep, linearize

    w, m = sp.symbols("w m", real=True)
    lin = linearize(OneStep((w, m), (w - w**2 + 3 * m, 2 * w + m / 2), ("w", "m")))
    assert lin.matrix == sp.Matrix([[1, 3], [2, sp.Rational(1, 2)]])  # d/dw (w - w^2) at w = 0
    assert not lin.linear and lin.residual == (-w**2, 0)
    assert linearize(OneStep((w, m), (w + 3 * m, 2 * w), ("w", "m"))).linear


def test_characteristic_polynomial_against_numpy():
    from momentumlab.theory.linearize import MU, characteristic_polynomial

    for n in (1, 2, 3):
        A = RNG.integers(-5, 6, size=(n, n))
        p = sp.Poly(characteristic_polynomial(sp.Matrix(A), MU), MU).all_coeffs()
        assert np.allclose(np.array(p, dtype=float), np.poly(A.astype(float)), rtol=1e-12)


def test_vradam_threshold_display_shows_the_gate():
    """The displayed threshold with G = min(beta3 ||v||^2, alpha1), at random values, against
    the paper's B(beta1)(1 + min(beta3 ||v||^2, alpha1))."""
    shown = analyse("vradam").threshold_display
    names = {s.name: s for s in shown.free_symbols}
    for _ in range(4):
        b, b3, a1, v = RNG.uniform(0, 0.95), RNG.uniform(0, 5), RNG.uniform(0, 5), RNG.uniform(0, 3)
        got = float(shown.subs({names["beta"]: b, names["beta3"]: b3, names["alpha1"]: a1,
                                names["||v||"]: v}))
        assert got == pytest.approx((2 + 2 * b) / (1 - b) * (1 + min(b3 * v * v, a1)), rel=1e-12)


def test_nadam_aside_without_momentum_decay_against_the_float_rule():
    """The aside's threshold (momentum_decay = 0, so mu_t = beta1/2) is where the float
    Jacobian of torch's NAdam rule with momentum_decay = 0 leaves the unit disc."""
    import math

    from momentumlab.theory.claims import get_claim
    from momentumlab.theory.ops import frozen_sqrt
    from momentumlab.theory.rules import get_rule
    from tests.theory.test_stability import PY

    aside = [s for s in get_claim("stability.nadam").derive().steps if s.text.startswith("aside")]
    thr_expr = aside[0].expr
    beta = {s.name: s for s in thr_expr.free_symbols}["beta"]
    model, rule = get_model("nadam"), get_rule("nadam")
    for b in (0.3, 0.9):
        thr = float(thr_expr.subs(beta, b))

        def rho(x):
            v = {**model.defaults(), "beta": b, "lr": x * (1 + model.defaults()["epsilon"])}
            hyper, st0 = model.setup(v, 10**15, 1.0, "frozen")
            h = rule.hyper(**{**hyper, "momentum_decay": 0.0})
            ops = frozen_sqrt(PY, 1.0)
            state = {**rule.init(0.0, ops), **st0}
            cols = []
            for z in ((1e-7, 0.0), (0.0, 1e-7)):
                w1, s1 = rule.step(z[0], z[0], {**state, "exp_avg": z[1]}, h, ops)
                cols.append([w1 / 1e-7, s1["exp_avg"] / 1e-7])
            return np.abs(np.linalg.eigvals(np.array(cols).T)).max()

        assert math.isfinite(thr) and rho(0.99 * thr) < 1 < rho(1.01 * thr)
