"""Stability claims: derivations, closed forms, and the rules iterated in plain Python floats.

The numeric checks here are independent of the symbolic pipeline: the iteration
matrix is rebuilt by finite differences of the rule on floats, and the property
test iterates the rule itself.
"""
import math

import numpy as np
import pytest
import sympy as sp
from hypothesis import assume, given
from hypothesis import strategies as st

from momentumlab.theory.claims import get_claim
from momentumlab.theory.linearize import T, late_time, min_node, sqrt_containing
from momentumlab.theory.ops import Ops, frozen_sqrt
from momentumlab.theory.rules import get_rule
from momentumlab.theory.stability import (H, MODELS, analyse, get_model, positivity_certificate,
                              sqrt_only_on_second_moment)

PY = Ops(name="py", sqrt=math.sqrt, abs=abs, minimum=min, maximum=max,
         where=lambda c, a, b: a if c else b, inner=lambda x, y: x * y,
         zeros_like=lambda x: 0.0, ndim=lambda x: 0, row_inner=lambda x, y: x * y)
NAMES = list(MODELS)
KAPPA, STEPS = 24.0, 1000
b = sp.Symbol("beta", real=True)


def test_every_issue_optimizer_has_a_claim():
    assert set(NAMES) >= {"gd", "heavy_ball", "ema_momentum", "nesterov", "nadam", "rmsprop",
                          "adam", "vradam", "tam"}


@pytest.mark.parametrize("name", NAMES)
def test_derivation_is_proved(name):
    d = get_claim(f"stability.{name}").derive()
    # VRAdam's divergence past B(1 + alpha1) uses the intermediate value theorem and induction
    want = "proved from lemmas" if name == "vradam" else "proved"
    assert d.status == want, get_claim(f"stability.{name}").explain()
    assert analyse(name).threshold is not None


@pytest.mark.parametrize("name, closed", [
    ("gd", sp.Integer(2)), ("heavy_ball", 2 + 2 * b), ("ema_momentum", (2 + 2 * b) / (1 - b)),
    ("nesterov", (2 + 2 * b) / (1 + 2 * b)), ("rmsprop", 2 + 2 * b), ("adam", (2 + 2 * b) / (1 - b)),
    # the EMA-Nesterov value of eos-and-rod-flow.md Sec. 3.2, derived there independently
    ("nadam", 2 * (1 + b) / ((1 - b) * (1 + 2 * b))),
])
def test_thresholds_equal_closed_forms(name, closed):
    assert sp.simplify(analyse(name).threshold - closed) == 0


def test_ema_threshold_is_38_at_beta_09():
    assert analyse("ema_momentum").threshold_value({"beta": 0.9}) == pytest.approx(38.0)
    assert get_claim("stability.adam").predict(beta=0.9) == pytest.approx(38.0)


def test_vradam_and_tam_closed_forms():
    sy = get_model("vradam").symbols()
    B = (2 + 2 * sy["beta"]) / (1 - sy["beta"])
    assert sp.simplify(analyse("vradam").threshold - B * (1 + sy["G"])) == 0
    st_ = get_model("tam").symbols()
    assert sp.simplify(analyse("tam").threshold
                       - (2 + 2 * st_["beta"]) / (st_["d"] + st_["epsilon"])) == 0
    text = get_claim("stability.tam").explain()
    assert "cos(m_{t-1}, g_t) = -1" in text


def test_full_region_includes_complex_crossing():
    labels = [c.label for c in analyse("nesterov").conditions]
    assert any("complex-pair" in lab for lab in labels)
    assert any(r.kind == "always" for r in analyse("nesterov").roles)


def test_adaptive_rules_use_sqrt_only_on_the_second_moment():
    for name in ("adam", "nadam", "rmsprop", "vradam"):
        assert sqrt_only_on_second_moment(get_model(name))


# ------------------------------------------------------------------ floats
def _float_setup(name, x, params):
    model = get_model(name)
    rule = get_rule(model.rule)
    v = {**model.defaults(), **params}
    v["lr"] = x * ((1 + v.get("epsilon", 0.0)) if model.preconditioned else 1.0)
    ops = frozen_sqrt(PY, 1.0) if model.preconditioned else PY
    hyper, state0 = model.setup(v, 10**15, 1.0, "frozen")
    state = {**rule.init(0.0, ops), **state0}
    return model, rule, rule.hyper(**hyper), state, ops


def _float_matrix(name, x, params, eps=1e-7):
    """Iteration matrix by finite differences of the rule on floats (lam = 1, g = w)."""
    model, rule, h, state, ops = _float_setup(name, x, params)
    keys = ("w",) + model.dynamic
    cols = []
    for j in range(len(keys)):
        z = [eps if i == j else 0.0 for i in range(len(keys))]
        st_ = {**state, **dict(zip(keys[1:], z[1:]))}
        w1, s1 = rule.step(z[0], z[0], st_, h, ops)
        cols.append([w1 / eps] + [s1[k] / eps for k in keys[1:]])
    return np.array(cols).T


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("beta", [0.0, 0.3, 0.9])
def test_float_jacobian_crosses_the_unit_circle_at_the_threshold(name, beta):
    params = {"beta": beta} if "beta" in get_model(name).defaults() else {}
    thr = analyse(name).threshold_value(params)
    rho = [np.abs(np.linalg.eigvals(_float_matrix(name, thr * f, params))).max()
           for f in (0.99, 1.01)]
    assert rho[0] < 1 < rho[1]


def _decays(name, x, params, steps=STEPS):
    model, rule, h, state, ops = _float_setup(name, x, params)
    w, late = 1.0, 0.0
    for t in range(steps):
        w, state = rule.step(w, w, state, h, ops)
        if not abs(w) < 1e150:
            return False
        if t >= steps - steps // 4:
            late = max(late, abs(w))
    return late < 1e-6


@pytest.mark.parametrize("name", NAMES)
@given(data=st.data())
def test_symbolic_stable_iff_iterates_decay(name, data):
    """Hyperparameters drawn outside the band ``steps |ln rho| < 24`` around the boundary."""
    model, an = get_model(name), analyse(name)
    params = {}
    if "beta" in model.defaults():
        params["beta"] = data.draw(st.floats(0.0, 0.97), label="beta")
    if name == "tam":
        params["d"] = data.draw(st.floats(0.1, 1.0), label="d")
    thr = an.threshold_value(params)
    x = data.draw(st.floats(0.01 * thr, 3.0 * thr), label="eta_lambda")
    rho = float(an.spectral_radius(x, params))
    assume(rho == 0 or STEPS * abs(math.log(rho)) >= KAPPA)
    assert bool(an.stable(x, params)) == _decays(name, x, params)


# ------------------------------------------------------------------ pieces
def test_positivity_certificate():
    u, v = sp.symbols("u v", nonnegative=True)
    assert positivity_certificate(1 + u + u * v, [u, v])
    assert positivity_certificate((2 + u) / (1 + v), [u, v])
    assert not positivity_certificate(1 - u, [u])
    assert not positivity_certificate(u, [u])  # zero at u = 0
    assert positivity_certificate(u, [u], strict=False)
    s = sp.Symbol("s", positive=True)
    assert positivity_certificate(s + u, [u], positive=(s,))


def test_late_time_and_freeze():
    b1, V, P, G = sp.symbols("b1 V P G", positive=True)
    assert late_time(1 - b1**T) == 1
    assert late_time(sp.Float(0.96) ** (T * sp.Rational(1, 250))) == 0
    assert sqrt_containing(V, P).apply(sp.sqrt(b1 * V + 1 - b1) + sp.sqrt(2)) == P + sp.sqrt(2)
    assert min_node(G).apply(1 / (1 + sp.Min(b1, 3))) == 1 / (1 + G)


def test_unknown_model_lists_known():
    with pytest.raises(KeyError, match="heavy_ball"):
        get_model("nope")


def test_threshold_string_is_readable():
    assert str(analyse("ema_momentum").threshold_display) == "(2*beta + 2)/(1 - beta)"
    assert H.name == "eta_lambda"


def test_threshold_function_is_reexported_with_the_split_modules():
    from momentumlab.theory import stability, stability_analysis, stability_models

    assert stability.analyse is stability_analysis.analyse
    assert stability.get_model is stability_models.get_model
    assert stability.threshold("heavy_ball", beta=0.5) == pytest.approx(3.0, rel=1e-12)
