"""Hypothesis: the AdamP identities hold on random scale-invariant functions, in float64.

f(w) = h(w/||w||) with h(u) = sum_j a_j sin(b_j . u) + u^T A u drawn at random, so
f is exactly scale invariant and grad f(w) = (I - w_hat w_hat^T) grad h(w_hat)/||w||.
The update rules are the ones of theory.rules, run with numpy.
"""
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from momentumlab.theory.norm_growth import great_circle_residual, lemma_norm_sq, projected_norm_sq
from momentumlab.theory.ops import NUMPY
from momentumlab.theory.rules import adamp_projection, get_rule, radial_projection

RTOL = 1e-10  # float64 identities: round-off over <= 60 steps is ~1e-14


def random_scale_invariant(rng, d):
    a, b = rng.normal(size=3), rng.normal(size=(3, d))
    A = rng.normal(size=(d, d))
    A = (A + A.T) / 2

    def grad(w):
        r = np.linalg.norm(w)
        u = w / r
        gh = (a * np.cos(b @ u)) @ b + 2 * A @ u
        return (gh - u * (u @ gh)) / r

    return grad


def run(rule_name, w0, grad, steps, **hyper):
    rule = get_rule(rule_name)
    h = rule.hyper(**hyper)
    state, w = rule.init(w0, NUMPY), w0
    norms, buffers, ws = [w0 @ w0], [], [w0]
    for _ in range(steps):
        g = grad(w)
        w, state = rule(w, g, state, h, NUMPY)
        buffers.append(state.get("momentum_buffer", g))
        norms.append(w @ w)
        ws.append(w)
    return np.array(norms), np.array(buffers), ws


problems = st.tuples(st.integers(0, 2**32 - 1), st.integers(2, 12))
betas = st.floats(0.0, 0.999, exclude_max=True)
lrs = st.floats(1e-3, 1.0)
steps = st.integers(1, 60)


def rel_err(pred, meas):
    return np.max(np.abs(pred - meas) / meas)


@given(problems, lrs, steps)
def test_lemma21_gd(problem, lr, n):
    rng = np.random.default_rng(problem[0])
    grad, w0 = random_scale_invariant(rng, problem[1]), rng.normal(size=problem[1])
    norms, grads, _ = run("gd", w0, grad, n, lr=lr)
    assert rel_err(lemma_norm_sq(norms[0], np.sum(grads**2, 1), lr), norms) < RTOL


@given(problems, betas, lrs, steps)
def test_lemma22_and_A1_momentum(problem, beta, lr, n):
    rng = np.random.default_rng(problem[0])
    grad, w0 = random_scale_invariant(rng, problem[1]), rng.normal(size=problem[1])
    norms, bufs, _ = run("heavy_ball", w0, grad, n, lr=lr, momentum=beta)
    P = np.sum(bufs**2, 1)
    assert rel_err(lemma_norm_sq(norms[0], P, lr, beta), norms) < RTOL
    # Lemma A.1: never decreases, and at least GD's increment lr^2 ||p_t||^2
    excess = (np.diff(norms) - lr**2 * P) / norms[:-1]
    assert excess.min() > -RTOL


@given(problems, betas, lrs, steps)
def test_proposition31_sgdp(problem, beta, lr, n):
    rng = np.random.default_rng(problem[0])
    grad, w0 = random_scale_invariant(rng, problem[1]), rng.normal(size=problem[1])
    norms, bufs, ws = run("sgdp", w0, grad, n, lr=lr, momentum=beta, delta=None, eps=0.0,
                          project=True, project_buffer=False)  # Algorithm 1: p_t unprojected
    for t in range(n):
        w, p, w_next = ws[t], bufs[t], ws[t + 1]
        proj = radial_projection(w, p, NUMPY)
        # round-off of x - (w_hat.x) w_hat is relative to the input ||p||, not to ||Pi(p)||
        assert abs(proj @ w) <= RTOL * np.linalg.norm(p) * np.linalg.norm(w)
        pred = projected_norm_sq(w @ w, proj @ proj, lr)
        assert abs(pred - norms[t + 1]) <= RTOL * norms[t + 1]
        assert great_circle_residual(w, w - lr * p, w_next) < RTOL
        if w @ p <= 0:  # Prop. 3.1's inequality
            assert norms[t + 1] <= (w - lr * p) @ (w - lr * p) * (1 + RTOL)


@given(st.integers(0, 2**32 - 1), st.integers(1, 30))
def test_projection_is_orthogonal_and_idempotent(seed, d):
    rng = np.random.default_rng(seed)
    w, x = rng.normal(size=d), rng.normal(size=d)
    px = radial_projection(w, x, NUMPY)
    scale = np.linalg.norm(x) * np.linalg.norm(w)
    assert abs(px @ w) <= 1e-12 * scale
    assert np.max(np.abs(radial_projection(w, px, NUMPY) - px)) <= 1e-12 * np.linalg.norm(x)


@given(st.integers(0, 2**32 - 1), st.integers(2, 8), st.integers(2, 20))
def test_adamp_projection_removes_radial_part_per_row(seed, rows, cols):
    """When the channel test passes, every row of the projected update is orthogonal to its weight row."""
    rng = np.random.default_rng(seed)
    w, upd = rng.normal(size=(rows, cols)), rng.normal(size=(rows, cols))
    g = rng.normal(size=(rows, cols))
    g -= w * (np.sum(w * g, 1, keepdims=True) / np.sum(w * w, 1, keepdims=True))  # s.i. per row
    out, factor = adamp_projection(w, g, upd, 0.1, 0.1, 1e-8, NUMPY)
    assert factor == 0.1
    wn = np.linalg.norm(w, axis=1)
    radial = np.abs(np.sum(out * w, 1)) / wn
    # w_hat = w/(||w|| + eps) leaves (w_hat.u)(1 - ||w||^2/(||w||+eps)^2) <= 2 eps/||w|| ||u||,
    # plus float64 round-off relative to the input row ||u||
    bound = (2 * 1e-8 / wn + 1e-12) * np.linalg.norm(upd, axis=1)
    assert np.all(radial <= bound)
