"""empirics.central_flow_sdcp: the multi-eigenvalue central flow (Cohen, Damian et al., ICLR 2025).

The loss below is cubic, so its Hessian is affine in w: the linearised next-substep constraint of
the SDCP is then the exact ``U^T (2P - H(w_next)) U`` for GD, which the first test checks.  The
closed form of the one-eigenvalue tests is a deliberately independent oracle (written here in
the sharpness S, its gradient and g, Euclidean unit eigenvector), not the module's assembly.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from momentumlab.empirics import flows
from momentumlab.empirics.central_flow_sdcp import (SDCPSolver, assemble, cvxpy_available,
                                                    one_eigenvalue_x)

needs_cvxpy = pytest.mark.skipif(not cvxpy_available(), reason="cvxpy (momentumlab[sdcp]) missing")
ETA, EPS = 0.3, 0.01


def cubic(w):
    """``1/2(y1 x1^2 + y2 x2^2) + y3 x1 x2 + (x1^3 + x2^3)/6 - eps(x1 + y1 + y2)`` (Berthier's
    codimension-2 shape): Hessian affine in ``w = (x1, x2, y1, y2, y3)``; the x-block
    ``[[y1, y3], [y3, y2]]`` (+ the cubic's ``diag(x)``) has two eigenvalues near ``y1, y2``,
    and each of its three entries is moved by its own coordinate, so the SDCP's X is unique."""
    x1, x2, y1, y2, y3 = w[0], w[1], w[2], w[3], w[4]
    return (0.5 * (y1 * x1**2 + y2 * x2**2) + y3 * x1 * x2 + (x1**3 + x2**3) / 6
            - EPS * (x1 + y1 + y2))


def _central(opt_name, w, lr=ETA, sdcp="auto", nu=None):
    w = torch.as_tensor(w, dtype=torch.float64).reshape(1, -1)
    problem = flows._Problem(cubic, 1, w.shape[1], torch.device("cpu"))
    opt = flows._Optimizer(opt_name, {"lr": lr}, 1, torch.device("cpu"), flows.DEFAULT_RATE)
    z0 = opt.z0(w)
    return problem, opt, flows.Central(opt, problem, z0, nu, sdcp=sdcp)


def _restricted(problem, w, U, pdiag):
    """``U^T (2P - H(w)) U`` for P-orthonormal ``U`` (B = 1)."""
    H = problem.hessian(w)[0]
    P = torch.diag(pdiag.expand(1, w.shape[1])[0])
    return U[0].T @ (2 * P - H) @ U[0]


@needs_cvxpy
def test_two_critical_eigenvalues_constraint_holds_after_a_step():
    w0 = [0.01, -0.02, 2 / ETA + 0.4, 2 / ETA + 0.25, 0.02]
    problem, opt, c = _central("gd", w0, sdcp="auto")
    lam, U, _ = problem.eigenpairs(c.w, 4, c._pdiag())
    assert int((lam > flows.SDCP_THRESHOLD).sum()) == 2
    w_before = c.w.clone()
    c._substep()
    X = c.X[0].numpy()
    assert X.shape == (2, 2) and np.linalg.eigvalsh(X).min() > 1e-4   # both directions active
    # H affine in w: the linearised constraint is exact, so it must hold, with complementarity
    nextA = _restricted(problem, c.w, U[:, :, :2], c._pdiag()).numpy()
    ev = np.linalg.eigvalsh(nextA)
    assert ev.min() > -1e-7
    assert abs(np.sum(X * nextA)) < 1e-7
    # X is full rank, so complementarity puts both restricted eigenvalues at the edge (= 0)
    np.testing.assert_allclose(ev, 0.0, atol=1e-7)
    # the one-eigenvalue flow from the same point leaves the second direction unstable
    _, _, one = _central("gd", w0, sdcp="one")
    one._substep()
    assert np.linalg.eigvalsh(_restricted(problem, one.w, U[:, :, :2], one._pdiag()).numpy()).min() < -1e-3
    assert not torch.equal(w_before, c.w)


def _oracle_gd_sigma2(problem, w, h):
    """The one-eigenvalue closed form in the sharpness: ``S(w_next) = 2/eta`` linearised,
    ``sigma^2 = 2(S - 2/eta - h eta <g, grad S>)/(h eta ||grad S||^2)``."""
    H = problem.hessian(w)[0]
    ev, vec = torch.linalg.eigh(H)
    S, u = ev[-1], vec[:, -1]
    g = problem.grad(w, "oracle")[0]
    x = w[0].clone().requires_grad_(True)
    with torch.enable_grad():
        gx = torch.autograd.grad(cubic(x), x, create_graph=True)[0]
        hu = torch.autograd.grad(gx, x, grad_outputs=u, create_graph=True)[0]
        gS = torch.autograd.grad(hu @ u, x)[0]
    return float(2 * (S - 2 / ETA - h * ETA * g @ gS) / (h * ETA * gS @ gS))


def _one_critical_point():
    return [0.01, -0.02, 2 / ETA + 0.3, 2 / ETA - 1.5, 0.02]


def test_one_eigenvalue_assembly_is_the_closed_form_gd():
    problem, opt, c = _central("gd", _one_critical_point(), sdcp="one")
    pdiag = c._pdiag()
    lam, U, _ = problem.eigenpairs(c.w, 1, pdiag)
    G = problem.third_contractions(c.w, U)
    g = problem.grad(c.w, "t")
    lin = assemble(g, lam, U, G, pdiag, c.dt)
    X = one_eigenvalue_x(float(lin.alpha[0, 0, 0]), float(lin.beta[0, 0, 0, 0, 0]))
    # Sigma = X u_P u_P^T with u_P = sqrt(eta) u: sigma^2 = eta X
    sigma2 = _oracle_gd_sigma2(problem, c.w, c.dt)
    assert sigma2 > 0.1
    assert ETA * X == pytest.approx(sigma2, rel=1e-10)


@needs_cvxpy
@pytest.mark.parametrize("opt_name", ["gd", "scalar_rmsprop", "rmsprop"])
def test_cvxpy_solves_the_one_eigenvalue_problem_as_the_closed_form(opt_name):
    w0 = _one_critical_point()
    nu = None
    lr = ETA
    if opt_name != "gd":   # sqrt(nu) = 2 and lr = 2 eta: the same effective eigenvalues
        nu = torch.full((1, 1 if opt_name == "scalar_rmsprop" else 5), 4.0, dtype=torch.float64)
        lr = 2 * ETA
    problem, opt, c = _central(opt_name, w0, lr=lr, nu=nu)
    pdiag = c._pdiag().expand(1, 5) if opt_name == "rmsprop" else c._pdiag()
    lam, U, _ = problem.eigenpairs(c.w, 1, pdiag)
    G = problem.third_contractions(c.w, U)
    g = problem.grad(c.w, "t")
    lin = assemble(g, lam, U, G, pdiag, c.dt, nu=nu, second_moment=opt.space.second_moment,
                   k_nu=opt.k, eta=opt.values["lr"])
    a, b = lin.alpha[0].numpy(), lin.beta[0].numpy()
    closed = one_eigenvalue_x(float(a[0, 0]), float(b[0, 0, 0, 0]))
    assert closed > 0.01
    got = SDCPSolver()(a, b)
    assert got[0, 0] == pytest.approx(closed, rel=1e-7)


def test_scalar_rmsprop_closed_form_against_the_euclidean_oracle():
    # 2P - H along the Euclidean unit eigenvector u, linearised one substep ahead with
    # dnu/dt = k(||g||^2 + sigma^2 S^2 - nu), dw/dt = -(eta/sqrt nu)(g + sigma^2 grad S / 2)
    nu = torch.full((1, 1), 4.0, dtype=torch.float64)
    lr = 2 * ETA
    problem, opt, c = _central("scalar_rmsprop", _one_critical_point(), lr=lr, nu=nu)
    pdiag = c._pdiag()
    lam, U, _ = problem.eigenpairs(c.w, 1, pdiag)
    G = problem.third_contractions(c.w, U)
    g = problem.grad(c.w, "t")
    lin = assemble(g, lam, U, G, pdiag, c.dt, nu=nu, second_moment="scalar", k_nu=opt.k,
                   eta=opt.values["lr"])
    X = one_eigenvalue_x(float(lin.alpha[0, 0, 0]), float(lin.beta[0, 0, 0, 0, 0]))
    H = problem.hessian(c.w)[0]
    ev, vec = torch.linalg.eigh(H)
    S, u = float(ev[-1]), vec[:, -1]
    x = c.w[0].clone().requires_grad_(True)
    with torch.enable_grad():
        gx = torch.autograd.grad(cubic(x), x, create_graph=True)[0]
        hu = torch.autograd.grad(gx, x, grad_outputs=u, create_graph=True)[0]
        gS = torch.autograd.grad(hu @ u, x)[0]
    gv = g[0]
    r, k, h = math.sqrt(4.0), opt.k, c.dt
    a = 2 * r / lr - S
    a0 = k * (float(gv @ gv) - 4.0) / (lr * r) + (lr / r) * float(gS @ gv)
    a1 = k * S**2 / (lr * r) + (lr / (2 * r)) * float(gS @ gS)
    sigma2 = -(a + h * a0) / (h * a1)
    assert sigma2 > 0.01
    # Sigma = X u_P u_P^T with u_P = u sqrt(eta / sqrt nu): sigma^2 = X eta / sqrt(nu)
    assert X * lr / r == pytest.approx(sigma2, rel=1e-10)


@pytest.mark.parametrize("opt_name", ["scalar_rmsprop", "rmsprop"])
def test_linearised_constraint_is_the_next_substep_to_second_order(opt_name):
    # next_A(X) = U^T(2P(nu + dt dnu) - H(w + dt dw))U up to O(dt^2) (H is affine in w; the
    # truncation is sqrt(nu)'s curvature): a wrong dP/dt or oscillation term would be first order
    nu = torch.tensor([[4.0]] if opt_name == "scalar_rmsprop" else [[4.0, 3.0, 5.0, 4.5, 3.5]],
                      dtype=torch.float64)
    lr = 2 * ETA
    problem, opt, c = _central(opt_name, [0.01, -0.02, 2 / ETA + 0.4, 2 / ETA + 0.25, 0.02], lr=lr,
                             nu=nu)
    pdiag = (torch.sqrt(nu) / lr).expand(1, 5) if opt_name == "rmsprop" else torch.sqrt(nu) / lr
    lam, U, _ = problem.eigenpairs(c.w, 2, pdiag)
    G = problem.third_contractions(c.w, U)
    g = problem.grad(c.w, "t")
    X = torch.tensor([[[0.02, 0.005], [0.005, 0.01]]], dtype=torch.float64)
    errs = []
    for dt in (0.1, 0.05):
        lin = assemble(g, lam, U, G, pdiag, dt, nu=nu, second_moment=opt.space.second_moment,
                       k_nu=opt.k, eta=opt.values["lr"])
        dw, dnu = lin.velocity(X)
        w1, nu1 = c.w + dt * dw, nu + dt * dnu
        exact = _restricted(problem, w1, U, (torch.sqrt(nu1) / lr).expand(1, 5))
        errs.append(float((lin.next_a(X)[0] - exact).abs().max()))
        if dt == 0.1:  # the change over the substep ~2e-3, its X part ~2e-4, truncation ~2e-7
            assert float((exact - torch.diag(2 - lam[0])).abs().max()) > 1e-3
            assert float((lin.next_a(X)[0] - lin.alpha[0]).abs().max()) > 1e-4
            assert errs[0] < 1e-6
    assert 3.5 < errs[0] / errs[1] < 4.5   # second order in dt: the first-order term is exact


@needs_cvxpy
def test_race_sdcp_path_equals_closed_form_with_one_critical_eigenvalue():
    # the minimal toy has one sharp direction: cvxpy on every 1 x 1 problem must give the
    # closed form's trajectory (solver tolerance 1e-12, 90 steps of amplification)
    f, w0, _ = flows.toy("minimal", quick=True)
    a = flows.race(f, w0, "gd", {"lr": 0.3}, 90, flows=("discrete", "central"),
                   sharpness_every=0, central_sdcp="sdcp")
    b = flows.race(f, w0, "gd", {"lr": 0.3}, 90, flows=("discrete", "central"),
                   sharpness_every=0, central_sdcp="one")
    assert a.costs["central"]["sdcp"]["sdcp_solves"] > 50
    assert a.costs["central"]["sdcp"]["max_critical"] == 1
    np.testing.assert_allclose(a.iterates["central"][:91], b.iterates["central"][:91],
                               rtol=0, atol=1e-6)


def test_without_cvxpy_the_notes_say_so(monkeypatch):
    import momentumlab.empirics.flows as fl

    monkeypatch.setattr(fl, "cvxpy_available", lambda: False)
    _, _, c = _central("gd", [0.01, -0.02, 2 / ETA + 0.4, 2 / ETA + 0.25, 0.02])
    c.step()
    assert c.X.shape == (1, 1, 1)           # the top eigenvalue only
    assert c.notes.summary()["max_critical"] == 2
    assert any("cvxpy is not installed" in n and "up to 2" in n for n in c.notes.lines())
    f, w0, _ = flows.toy("minimal", quick=True)
    with pytest.raises(ImportError, match="momentumlab\\[sdcp\\]"):
        flows.race(f, w0, "gd", {"lr": 0.3}, 2, flows=("central",), central_sdcp="sdcp")


def test_bad_sdcp_mode():
    f, w0, _ = flows.toy("minimal", quick=True)
    with pytest.raises(ValueError, match="sdcp must be one of"):
        flows.race(f, w0, "gd", {"lr": 0.3}, 2, flows=("central",), central_sdcp="two")


def test_eigenpairs_lobpcg_path_matches_dense():
    # P > 64 takes LOBPCG: the top 3 effective eigenpairs against dense eigh, U^T P U = I
    n = 80
    rng = np.random.default_rng(0)
    Q = torch.as_tensor(np.linalg.qr(rng.standard_normal((n, n)))[0])
    lam = torch.linspace(0.1, 10, n, dtype=torch.float64)
    A = Q @ torch.diag(lam) @ Q.T
    problem = flows._Problem(lambda w: 0.5 * w @ A @ w, 1, n, torch.device("cpu"))
    pdiag = torch.as_tensor(rng.uniform(0.5, 2, (1, n)))
    vals, U, _ = problem.eigenpairs(torch.zeros(1, n, dtype=torch.float64), 3, pdiag)
    s = torch.rsqrt(pdiag[0])
    ref = torch.linalg.eigvalsh(s[:, None] * A * s[None, :]).flip(0)[:3]
    np.testing.assert_allclose(vals[0].numpy(), ref.numpy(), rtol=1e-7)
    np.testing.assert_allclose((U[0].T * pdiag[0]) @ U[0], np.eye(3), atol=1e-7)
    np.testing.assert_allclose(A @ U[0], pdiag[0][:, None] * U[0] * vals[0], atol=1e-6)


@needs_cvxpy
@pytest.mark.parametrize("interior", [True, False])
def test_solver_satisfies_the_complementarity_conditions(interior):
    # random SDCPs, k = 1..3, beta a PSD Gram operator on symmetric matrices: the KKT conditions
    # X >= 0, alpha + beta[X] >= 0, <X, alpha + beta[X]> = 0, checked directly, for the
    # full-rank shortcut and for cvxpy alone
    rng = np.random.default_rng(1)
    solver = SDCPSolver(interior=interior)
    for _ in range(40):
        k = int(rng.integers(1, 4))
        A = rng.standard_normal((k, k))
        A = (A + A.T) / 2 - np.eye(k)
        swap = np.zeros((k * k, k * k))
        for i in range(k):
            for j in range(k):
                swap[i * k + j, j * k + i] = 1
        G = rng.standard_normal((k * k, k * k))
        G = G + swap @ G
        beta = (G @ G.T / 10).reshape(k, k, k, k)
        X = solver(A, beta)
        Z = A + np.einsum("ijkl,kl->ij", beta, X)
        scale = max(1.0, np.abs(X).max())
        assert np.linalg.eigvalsh(X).min() > -1e-8 * scale
        assert np.linalg.eigvalsh(Z).min() > -1e-6 * scale
        assert abs(np.sum(X * Z)) < 1e-6 * scale
    assert (solver.interior_solutions > 0) == interior and solver.solves > 0


def test_rmsprop_central_flow_runs_at_the_edge():
    # per-component RMSProp is now a central-flow optimizer: at lr = 0.2 on the minimal toy the
    # effective sharpness crosses 2 and the constraint becomes active; nu stays positive
    f, w0, _ = flows.toy("minimal", quick=True)
    r = flows.race(f, w0, "rmsprop", {"lr": 0.2}, 60, flows=("discrete", "central"),
                   sharpness_every=0)
    assert r.costs["central"]["sdcp"]["max_critical"] >= 1
    assert np.all(np.isfinite(r.error["central"]))


def test_one_eigenvalue_x_is_the_complementarity_solution_or_nan_when_none_exists():
    # X >= 0, alpha + beta X >= 0, X (alpha + beta X) = 0, checked on the returned X
    for alpha, beta in ((0.5, 2.0), (-0.5, 2.0), (0.0, 0.0), (-3.0, 0.25)):
        X = one_eigenvalue_x(alpha, beta)
        assert X >= 0 and alpha + beta * X >= -1e-15 and abs(X * (alpha + beta * X)) <= 1e-15
    # alpha < 0 and beta <= 0: no X >= 0 satisfies alpha + beta X >= 0 -- the flow ends (NaN)
    for beta in (0.0, -0.0, -1.0, float("nan")):
        assert math.isnan(one_eigenvalue_x(-0.5, beta))
