"""Independent oracles for the two analysed rules that no torch optimizer implements.

``defossez_adam`` (Défossez, Bottou, Bach & Usunier, TMLR 2022, Sec. 2) and ``vr_momentum``
(Vaidhyanathan et al. 2025, VRAdam Alg. 1 l.7 with no second moment) are written again here,
deliberately and independently, from the papers' equations in plain numpy: the rule in
``theory/rules.py`` must reproduce them step by step, state included.  Where the rule uses a
recursion, the oracle uses the closed form (Omega_n^2 = (1 - b2^n)/(1 - b2)).
"""
import numpy as np
import pytest

from momentumlab.theory.ops import NUMPY
from momentumlab.theory.rules import get_rule


def _gradients(seed, n, shape=(3, 4)):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape) for _ in range(n)]


@pytest.mark.parametrize("beta3, alpha1", [(0.0, 0.0), (0.7, 10.0), (1.0, 10.0), (50.0, 0.3)])
def test_defossez_adam_equals_the_papers_update(beta3, alpha1):
    lr, b1, b2, eps = 0.05, 0.8, 0.95, 1e-3
    rule = get_rule("defossez_adam")
    h = rule.hyper(lr=lr, betas=(b1, b2), eps=eps, beta3=beta3, alpha1=alpha1)
    w = np.linspace(-1, 1, 12).reshape(3, 4)
    state = rule.init(w, NUMPY)
    x, m, v = w.copy(), np.zeros_like(w), np.zeros_like(w)
    for n, g in enumerate(_gradients(1, 7), start=1):
        w, state = rule.step(w, g, state, h, NUMPY)
        m, v = b1 * m + g, b2 * v + g * g
        alpha_n = lr * (1 - b1) * np.sqrt((1 - b2**n) / (1 - b2))
        gamma = 1 / (1 + min(beta3 * np.sum(((1 - b1) * m) ** 2), alpha1))
        x = x - alpha_n * gamma * m / np.sqrt(eps + v)
        np.testing.assert_allclose(w, x, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(state["exp_avg"], m, rtol=1e-13)
        np.testing.assert_allclose(state["exp_avg_sq"], v, rtol=1e-13)
        assert state["step"] == n
        assert state["omega_sq"] == pytest.approx((1 - b2**n) / (1 - b2), rel=1e-13)
        assert float(state["gate"]) == pytest.approx(gamma, rel=1e-13)


@pytest.mark.parametrize("beta3, alpha1", [(0.0, 10.0), (0.5, 10.0), (80.0, 0.25)])
def test_vr_momentum_equals_the_papers_update(beta3, alpha1):
    lr, beta = 0.3, 0.85
    rule = get_rule("vr_momentum")
    h = rule.hyper(lr=lr, momentum=beta, beta3=beta3, alpha1=alpha1)
    w = np.linspace(-2, 1, 12).reshape(3, 4)
    state = rule.init(w, NUMPY)
    x, m = w.copy(), np.zeros_like(w)
    for g in _gradients(2, 6):
        w, state = rule.step(w, g, state, h, NUMPY)
        m = beta * m + (1 - beta) * g
        eta = lr / (1 + min(beta3 * np.sum(m * m), alpha1))
        x = x - eta * m
        np.testing.assert_allclose(w, x, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(state["momentum_buffer"], m, rtol=1e-13)
        assert float(state["eta"]) == pytest.approx(eta, rel=1e-13)


def test_adan_first_step_with_a_zero_gradient_component_is_finite():
    """On the first step Adan has no previous gradient and uses no difference (both codes):
    a gradient with exact zeros must give a finite step with a zero difference buffer."""
    rule = get_rule("adan")
    w = np.array([1.0, -2.0, 0.5])
    g = np.array([0.0, 0.3, -1.0])
    w1, state = rule.step(w, g, rule.init(w, NUMPY), rule.hyper(lr=0.1), NUMPY)
    assert np.all(np.isfinite(w1)) and np.all(state["exp_avg_diff"] == 0)
    assert w1[0] == w[0] and w1[1] < w[1] and w1[2] > w[2]  # descent where g != 0


def test_lion_sign_is_zero_at_zero_and_its_momentum_is_the_papers():
    """Lion (Chen et al. 2023, Program 1): ``sign(0) = 0`` (torch.sign), so a coordinate whose
    interpolation ``c`` is exactly 0 does not move; the state is ``m <- b2 m + (1 - b2) g``."""
    rule = get_rule("lion")
    b1, b2, lr = 0.9, 0.99, 0.01
    h = rule.hyper(lr=lr, betas=(b1, b2))
    w = np.array([1.0, -2.0, 0.5])
    state = rule.init(w, NUMPY)
    m = np.zeros(3)
    for g in (np.array([0.0, 0.3, -1.0]), np.array([0.0, -0.2, 2.0]), np.array([0.0, 0.7, 0.1])):
        c = b1 * m + (1 - b1) * g
        expected = w - lr * np.sign(c)
        w, state = rule.step(w, g, state, h, NUMPY)
        m = b2 * m + (1 - b2) * g
        np.testing.assert_array_equal(w, expected)
        np.testing.assert_allclose(state["exp_avg"], m, rtol=1e-14)
    assert w[0] == 1.0
