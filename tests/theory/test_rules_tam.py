"""``theory.rules.tam`` / ``adatam``: the damping, its range, the global cosine, and the
authors' SGDP buffer (``project_buffer``)."""
import numpy as np
from hypothesis import given, strategies as st

from momentumlab.theory.ops import NUMPY
from momentumlab.theory.rules import get_rule, step_many

TAM, ADATAM, SGDP = get_rule("tam"), get_rule("adatam"), get_rule("sgdp")
vec = st.lists(st.floats(-5, 5, allow_nan=False), min_size=5, max_size=5)


@given(st.lists(vec, min_size=2, max_size=8), st.floats(0, 0.99), st.floats(0, 0.99))
def test_s_hat_stays_a_cosine_average_and_d_in_unit_interval(grads, momentum, decay):
    w = np.zeros(5)
    for rule in (TAM, ADATAM):
        h = rule.hyper(momentum=momentum, decay=decay) if rule is TAM else rule.hyper(decay=decay)
        s = rule.init(w, NUMPY)
        x = w
        for g in grads:
            x, s = rule(x, np.array(g), s, h, NUMPY)
            assert -1 - 1e-12 <= s["s_hat"] <= 1 + 1e-12


def test_first_step_damping_is_one_half_and_momentum_starts_at_zero():
    w, g = np.ones(3), np.array([1.0, -2.0, 0.5])
    w1, s = TAM(w, g, TAM.init(w, NUMPY), TAM.hyper(lr=0.1, eps=0.0), NUMPY)
    assert s["s_hat"] == 0.0
    np.testing.assert_allclose(s["momentum_buffer"], 0.5 * g)
    np.testing.assert_allclose(w1, w - 0.05 * g)


@given(st.lists(st.floats(-3, 3, allow_nan=False), min_size=6, max_size=6))
def test_global_cosine_on_split_tensors_equals_one_concatenated_tensor(g):
    g = np.array(g)
    w = np.linspace(-1, 1, 6)
    for rule in (TAM, ADATAM):
        h = rule.hyper(weight_decay=0.1)
        whole, parts = [w], [w[:1], w[1:4], w[4:]]
        s_whole = [rule.init(w, NUMPY)]
        s_parts = [rule.init(x, NUMPY) for x in parts]
        for t in range(4):
            gt = g * np.cos(t) + 0.1 * t
            whole, s_whole = step_many(rule, whole, [gt], s_whole, [h], NUMPY)
            parts, s_parts = step_many(rule, parts, [gt[:1], gt[1:4], gt[4:]], s_parts, [h] * 3,
                                       NUMPY, ["g"] * 3)
        np.testing.assert_allclose(np.concatenate(parts), whole[0], rtol=1e-12, atol=1e-14)


def test_adatam_bias_correction_divides_the_second_moment():
    w, g = np.zeros(2), np.array([0.3, -0.2])
    plain, _ = ADATAM(w, g, ADATAM.init(w, NUMPY), ADATAM.hyper(eps=0.0), NUMPY)
    corrected, _ = ADATAM(w, g, ADATAM.init(w, NUMPY), ADATAM.hyper(eps=0.0, bias_correction=True), NUMPY)
    # step 1: m = g/2 (d = 1/2), v = (1-b2) g^2: plain |dw| = lr/2/sqrt(1-b2), corrected lr/2
    np.testing.assert_allclose(np.abs(plain), 1e-3 * 0.5 / np.sqrt(1e-3))
    np.testing.assert_allclose(np.abs(corrected), 1e-3 * 0.5)


def test_sgdp_authors_code_stores_the_projected_buffer():
    w = np.array([[3.0, 4.0], [1.0, 0.0]])
    g = np.array([[-4.0, 3.0], [0.0, 2.0]])  # each row orthogonal to w: channel projection
    buf0 = {"momentum_buffer": np.array([[1.0, 1.0], [1.0, 1.0]])}
    _, authors = SGDP(w, g, buf0, SGDP.hyper(eps=0.0), NUMPY)
    _, paper = SGDP(w, g, buf0, SGDP.hyper(eps=0.0, project_buffer=False), NUMPY)
    np.testing.assert_allclose((authors["momentum_buffer"] * w).sum(1), 0.0, atol=1e-12)
    np.testing.assert_allclose(paper["momentum_buffer"], 0.9 * buf0["momentum_buffer"] + g)
