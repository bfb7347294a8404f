"""empirics.flows.Stable: the stiff (implicit, per-row BDF) path of the stable flow.

Oracles are closed forms of linear stable flows, ``z(t) = expm(M t) z0`` by scipy's ``expm``;
the matrices ``M`` are written out here from the update rules' textbook form, deliberately
independently of ``theory.rules`` (a second copy on purpose: it is the oracle).

Tolerance: both solvers run at ``rtol = 1e-6``, ``atol = 1e-9`` per step; the global error of
a contracting linear flow stays within a small multiple of that, so ``1e-5`` relative to the
largest component (plus ``1e-8`` absolute) is argued slack, and 1000x below the errors the
race measures (>= 1e-2).
"""
from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import scipy.sparse
import torch

from momentumlab.empirics import flows

RTOL, ATOL = 1e-5, 1e-8


def _rotated(eigs, seed=0):
    """A symmetric ``H`` with eigenvalues ``eigs`` in a random orthonormal basis."""
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((len(eigs), len(eigs))))
    return q @ np.diag(eigs) @ q.T


def _quad(H):
    Ht = torch.as_tensor(H, dtype=torch.float64)
    return lambda w: 0.5 * w @ (Ht @ w)


def _close(got, want):
    np.testing.assert_allclose(got, want, rtol=0, atol=ATOL + RTOL * np.abs(want).max())


def test_stiff_gd_stable_flow_is_exp_minus_eta_h_t():
    # eta lambda_max = 1000 > 100: RK45 exceeds MAX_STABLE_NFEV in the first unit step (the old
    # flow stopped there); the implicit path must finish and equal exp(-eta H t) w0
    H, eta, T = _rotated([1e4, 1.0, 0.3]), 0.1, 6
    w0 = np.array([1.0, -2.0, 0.5])
    r = flows.race(_quad(H), torch.tensor(w0), "gd", {"lr": eta}, T, flows=("discrete", "stable"),
                   sharpness_every=0)
    assert r.costs["stable"]["implicit_from_step"] == 0
    assert r.costs["stable"]["status"] == ["ran"]
    for t in range(T + 1):
        _close(r.iterates["stable"][t, 0], scipy.linalg.expm(-eta * H * t) @ w0)


def test_stiff_heavy_ball_phase_space_flow_is_the_matrix_exponential():
    # heavy ball z = (w, v): v' = beta v + H w, w' = w - eta v', so F_v = (beta - 1) v + H w and
    # F_w = -eta (beta v + H w): dz/dt = M z.  D = v has a diagonal block (Schur path).
    H, eta, beta, T = _rotated([3e3, 2.0, 0.5], seed=1), 0.1, 0.9, 5
    n = len(H)
    M = np.block([[-eta * H, -eta * beta * np.eye(n)], [H, (beta - 1) * np.eye(n)]])
    z0 = np.concatenate([[0.3, 1.0, -1.0], np.zeros(n)])  # torch SGD: buffer starts at 0
    r = flows.race(_quad(H), torch.tensor(z0[:n]), "heavy_ball", {"lr": eta, "beta": beta}, T,
                   flows=("discrete", "stable"), sharpness_every=0)
    assert r.costs["stable"]["implicit_from_step"] is not None
    for t in range(T + 1):
        _close(r.iterates["stable"][t, 0], (scipy.linalg.expm(M * t) @ z0)[:n])


def test_stiff_rmsprop_with_fixed_nu_is_preconditioned_gradient_flow():
    # beta2 = 1: k = 0 and nu = g_0^2 forever, so w(t) = expm(-eta D^-1 H t) w0 with
    # D = diag(|g_0|); one tiny |g_0| component makes S_eff ~ 1e5
    H, eta, T = _rotated([50.0, 1.0, 0.2], seed=2), 0.05, 5
    w0 = np.linalg.solve(H, np.array([1e-5, 1.0, 0.5]))  # g_0 = H w0
    A = -eta * np.diag(1 / np.abs(H @ w0)) @ H
    r = flows.race(_quad(H), torch.tensor(w0), "rmsprop", {"lr": eta, "beta2": 1.0}, T,
                   flows=("discrete", "stable"), sharpness_every=0)
    assert r.costs["stable"]["implicit_from_step"] is not None
    assert r.costs["stable"]["factorisations"] > 0
    for t in range(T + 1):
        _close(r.iterates["stable"][t, 0], scipy.linalg.expm(A * t) @ w0)


def test_rows_integrate_independently():
    # a stiff row and a mild one in one batch: each row equals its own closed form
    H, T = _rotated([2e3, 1.0]), 4
    w0 = np.array([1.0, 1.0])
    r = flows.race(_quad(H), torch.tensor(w0), "gd", {"lr": [0.1, 1e-3]}, T,
                   flows=("discrete", "stable"), sharpness_every=0)
    for b, eta in enumerate((0.1, 1e-3)):
        _close(r.iterates["stable"][T, b], scipy.linalg.expm(-eta * H * T) @ w0)


@pytest.mark.parametrize("coupling", ["diagonal", "dense"])
def test_schur_newton_solve_equals_dense_solve(coupling):
    # A = I - cJ with a diagonal D block; A_wD diagonal blocks (Adam: sparse product) or dense
    # (VRAdam's gate on ||m||^2: BLAS product); and a non-diagonal D block: the dense LU
    from scipy.integrate import BDF

    rng = np.random.default_rng(3)
    P, nD = 8, 16
    A = np.eye(P + nD) + 0.1 * rng.standard_normal((P + nD, P + nD))
    A[P:, P:] = np.diag(1 + rng.random(nD))
    if coupling == "diagonal":
        A[:P, P:] = 0.0
        A[np.arange(P), P + np.arange(P)] = rng.standard_normal(P)  # 8 of 128 entries
    b = rng.standard_normal(P + nD)
    s = flows._SchurBDF(lambda t, y: -y, 0.0, np.ones(P + nD), 1.0, P,
                        jac=lambda t, y: -np.eye(P + nD))
    assert isinstance(s, BDF)
    want = np.linalg.solve(A, b)
    LU = s.lu(A.copy())
    assert LU[0] == "schur"
    assert scipy.sparse.issparse(LU[1][1]) == (coupling == "diagonal")
    np.testing.assert_allclose(s.solve_lu(LU, b.copy()), want, rtol=1e-12, atol=1e-12)
    A[P, P + 1] = 0.5  # not diagonal: the dense LU (scipy's lu_solve overwrites b)
    want = np.linalg.solve(A, b)
    LU = s.lu(A.copy())
    assert LU[0] == "dense"
    np.testing.assert_allclose(s.solve_lu(LU, b.copy()), want, rtol=1e-12, atol=1e-12)


def test_diverging_stable_flow_is_reported_not_silently_nan():
    # L = -w^4/4: dw/dt = eta w^3 blows up at t = 1/(2 eta w0^2) = 2.5; the race goes on, the
    # stable row says why it stopped
    r = flows.race(lambda w: -0.25 * (w ** 4).sum(), torch.tensor([1.0]), "gd", {"lr": 0.2}, 5,
                   flows=("discrete", "stable"), sharpness_every=0)
    status = r.costs["stable"]["status"][0]
    assert status != "ran" and ("diverged" in status or "failed" in status)
    assert any("stable flow, row 0" in n for n in r.notes)
    assert np.isfinite(r.iterates["stable"][2, 0]).all()
    assert np.isnan(r.iterates["stable"][5, 0]).all()


@pytest.mark.parametrize("opt", ["adam", "nadam", "scalar_adam", "tam"])
def test_implicit_jacobian_is_the_fields_derivative(opt):
    # the analytic Jacobian (jacfwd, w columns through the gradient, D columns at fixed g)
    # against central differences of the same field
    torch.manual_seed(0)
    A = torch.randn(4, 4, dtype=torch.float64)
    f = lambda w: 0.25 * ((A @ w) ** 2).sum() + 0.1 * (w ** 4).sum()  # noqa: E731
    w0 = torch.randn(1, 4, dtype=torch.float64)
    o = flows._Optimizer(opt, {"lr": 0.01}, 1, "cpu", "(1-beta2)/beta2")
    prob = flows._Problem(f, 1, 4, torch.device("cpu"))
    z0 = o.z0(w0)
    z0 = flows.Z({k: v + 0.1 * torch.rand_like(v) for k, v in z0.items()})
    nu0 = o.nu0(prob.grad(w0, "x"))
    st = flows.Stable(o, prob, z0, nu0)
    y, field, jac = st._row(0)
    J = jac(y).numpy()
    h = 1e-6
    num = np.stack([(field(y + h * e) - field(y - h * e)).numpy() / (2 * h)
                    for e in torch.eye(len(y), dtype=torch.float64)], axis=1)
    np.testing.assert_allclose(J, num, rtol=1e-6, atol=1e-6 * np.abs(num).max())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_stiff_stable_flow_on_cuda_matches_the_closed_form():
    H, eta, T = _rotated([1e4, 1.0, 0.3]), 0.1, 3
    w0 = np.array([1.0, -2.0, 0.5])
    Ht = torch.as_tensor(H, dtype=torch.float64, device="cuda")
    r = flows.race(lambda w: 0.5 * w @ (Ht @ w), torch.tensor(w0, device="cuda"), "gd",
                   {"lr": eta}, T, flows=("discrete", "stable"), sharpness_every=0, device="cuda")
    assert r.costs["stable"]["implicit_from_step"] == 0
    _close(r.iterates["stable"][T, 0], scipy.linalg.expm(-eta * H * T) @ w0)
