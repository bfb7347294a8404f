"""``theory.rules.vradam``: the gate, its bounds, and the global norm through ``step_many``."""
import numpy as np
import sympy as sp
from hypothesis import given, strategies as st

from momentumlab.theory.ops import NUMPY, SYMPY_SCALAR
from momentumlab.theory.rules import get_rule, step_many

RULE = get_rule("vradam")
floats = st.floats(-3, 3, allow_nan=False)


def _run(ws, grads, scopes, steps=4, **hyper):
    h = RULE.hyper(**hyper)
    states = [RULE.init(w, NUMPY) for w in ws]
    for t in range(steps):
        ws, states = step_many(RULE, ws, [g * (1 + 0.3 * t) for g in grads], states,
                               [h] * len(ws), NUMPY, scopes)
    return ws, states


@given(st.lists(floats, min_size=6, max_size=6), st.lists(floats, min_size=6, max_size=6),
       st.sampled_from([0.1, 1.0, 30.0]), st.sampled_from(["velocity", "gradient"]))
def test_global_norm_on_split_tensors_equals_one_concatenated_tensor(w, g, beta3, gate):
    """norm_scope="global" is the norm of all parameters: splitting a vector into tensors that
    share the scope changes nothing (a metamorphic test of the coupling)."""
    w, g = np.array(w), np.array(g)
    kw = dict(lr=0.05, beta3=beta3, weight_decay=0.1, gate=gate)
    (whole,), (sw,) = _run([w], [g], None, **kw)
    parts, states = _run([w[:2], w[2:3], w[3:]], [g[:2], g[2:3], g[3:]], ["all"] * 3, **kw)
    np.testing.assert_allclose(np.concatenate(parts), whole, rtol=1e-13, atol=1e-15)
    assert all(np.isclose(s["eta"], sw["eta"], rtol=1e-13) for s in states)


@given(st.lists(floats, min_size=4, max_size=4), st.lists(floats, min_size=4, max_size=4))
def test_tensor_scope_is_each_tensor_alone(w, g):
    w, g = np.array(w), np.array(g)
    parts, _ = _run([w[:2], w[2:]], [g[:2], g[2:]], None)
    alone = [_run([w[:2]], [g[:2]], None)[0][0], _run([w[2:]], [g[2:]], None)[0][0]]
    np.testing.assert_array_equal(np.concatenate(parts), np.concatenate(alone))


@given(st.lists(floats, min_size=3, max_size=3), st.floats(0, 100), st.floats(0, 50),
       st.sampled_from([1.0, 2.0, 3.0]))
def test_rate_lies_between_lr_over_one_plus_alpha1_and_lr(g, beta3, alpha1, power):
    w = np.zeros(3)
    _, s = RULE(w, np.array(g), RULE.init(w, NUMPY),
                RULE.hyper(lr=0.1, beta3=beta3, alpha1=alpha1, power=power), NUMPY)
    assert 0.1 / (1 + alpha1) * (1 - 1e-12) <= s["eta"] <= 0.1
    m = 0.1 * np.array(g)
    assert np.isclose(s["norm_sq"], np.sum(np.abs(m) ** power), rtol=1e-12, atol=1e-300)
    assert np.isclose(s["eta"], 0.1 / (1 + min(beta3 * s["norm_sq"], alpha1)), rtol=1e-12)


def test_symbolic_first_step_on_the_quadratic_model():
    """One step from rest on f = lam w^2/2: m_1 = (1-b1) lam w, eta_1 = a0/(1 + min(b3 m_1^2, a1)),
    and the bias-corrected Adam step is eta_1 * sign(w) (up to eps)."""
    w, lam, a0, b3, a1 = sp.symbols("w lambda alpha_0 beta_3 alpha_1", positive=True)
    h = RULE.hyper(lr=a0, beta3=b3, alpha1=a1, eps=0, betas=(sp.Rational(9, 10), sp.Rational(999, 1000)))
    w1, s = RULE(w, lam * w, RULE.init(w, SYMPY_SCALAR), h, SYMPY_SCALAR)
    eta = a0 / (1 + sp.Min(b3 * (lam * w / 10) ** 2, a1))
    assert sp.simplify(s["eta"] - eta) == 0
    gap = w1 - (w - eta)  # bias corrections use ** 0.5, so sympy carries floats: evaluate
    for vals in ({w: 0.3, lam: 2.0, a0: 0.1, b3: 1.0, a1: 10.0}, {w: 5.0, lam: 7.0, a0: 1.0, b3: 3.0, a1: 2.0}):
        assert abs(float(gap.subs(vals))) < 1e-14
