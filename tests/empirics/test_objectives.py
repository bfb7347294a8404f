"""The stated constants of the objectives hold numerically (these tests can fail)."""
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from momentumlab.empirics.objectives import OBJECTIVES, PseudoHuberToy, get_objective

NAMES = list(OBJECTIVES)


def _points(obj, seed, count=4):
    """Random points at several scales, including far from the origin (saturated regimes)."""
    gen = torch.Generator().manual_seed(seed)
    scales = torch.tensor([0.1, 1.0, 3.0, 10.0], dtype=torch.float64)[:count, None]
    return obj.x0 + scales * torch.randn(count, obj.d, generator=gen, dtype=torch.float64)


@pytest.mark.parametrize("name", NAMES)
def test_sizes_and_constants_are_finite(name):
    obj = get_objective(name)
    c = obj.constants()
    assert c["d"] <= 31 and c["M"] >= 400
    assert all(math.isfinite(c[k]) and c[k] > 0 for k in ("L", "R_g", "R"))
    assert c["F_star"] == 0.0 and c["delta"] > 0


@pytest.mark.parametrize("name", NAMES)
def test_full_gradient_is_autograd_and_the_sample_mean(name):
    obj = get_objective(name)
    x = _points(obj, 1)
    xr = x.clone().requires_grad_(True)
    auto = torch.autograd.grad(obj.value(xr).sum(), xr)[0]
    assert torch.allclose(obj.full_grad(x), auto, atol=1e-13)
    # unbiasedness: the average of grad f_i over all samples is grad F
    xs = x[:1].expand(obj.M, obj.d)
    per_sample = obj.stochastic_grad(xs, torch.arange(obj.M))
    assert torch.allclose(per_sample.mean(0), obj.full_grad(x[:1])[0], atol=1e-13)


@settings(max_examples=25)  # each example: a d x d Hessian of the full objective at 4 points
@given(st.sampled_from(NAMES), st.integers(0, 2**31 - 1))
def test_hessian_norm_never_exceeds_L(name, seed):
    obj = get_objective(name)
    for x in _points(obj, seed):
        H = torch.autograd.functional.hessian(lambda z: obj.value(z), x)
        assert torch.linalg.matrix_norm(H, ord=2) <= obj.L


@settings(max_examples=25)  # each example evaluates all M per-sample gradients at 4 points
@given(st.sampled_from(NAMES), st.integers(0, 2**31 - 1))
def test_every_sample_gradient_is_bounded_by_R(name, seed):
    obj = get_objective(name)
    for x in _points(obj, seed):
        g = obj.stochastic_grad(x.expand(obj.M, obj.d), torch.arange(obj.M))
        assert g.abs().max() <= obj.R_g
        assert obj.value(x) >= obj.F_star


def test_R_is_nearly_attained_for_the_regression():
    """R_g = max|a_ij| is the sup of |phi'(r) a_ij| (|phi'| -> 1 at r = 1): the bound is tight."""
    obj = get_objective("robust_regression")
    i, j = np.unravel_index(int(obj.A.abs().argmax()), obj.A.shape)
    a = obj.A[i]
    x = a / (a @ a) * (1 + obj.b[i])  # residual r = 1, where phi' = 1
    g = obj.stochastic_grad(x[None], torch.tensor([int(i)]))
    assert g.abs().max() == pytest.approx(obj.R_g, rel=1e-12)


def test_L_is_not_vacuous_for_the_regression():
    """At the least-squares point (small residuals, phi'' near its maximum 2) the Hessian's norm,
    by autograd, is a sizeable fraction of L: the bound is within a small factor of being attained."""
    obj = get_objective("robust_regression")
    x = torch.linalg.lstsq(obj.A, obj.b[:, None]).solution[:, 0]
    H = torch.autograd.functional.hessian(lambda z: obj.value(z), x)
    assert 0.3 * obj.L < torch.linalg.matrix_norm(H, ord=2) <= obj.L


def test_pseudo_huber_toy():
    toy = PseudoHuberToy()
    x = torch.linspace(-5, 5, 101, dtype=torch.float64)[:, None]
    assert torch.all(toy.full_grad(x).abs() < toy.c)
    g = torch.stack([toy.stochastic_grad(x, torch.full((101,), i)) for i in (0, 1)])
    assert torch.allclose(g.mean(0), toy.full_grad(x)) and g.abs().max() <= toy.R_g
    second = toy.c * (1 + x**2) ** -1.5
    assert second.max() <= toy.L
