"""Sharpness: HVPs and top eigenvalues against dense float64 Hessians and finite differences."""
from __future__ import annotations

import pytest
import torch

from momentumlab.empirics.sharpness import (closure_hvp, flatten, functional_hvp, module_loss, top_eigenpairs,
                                top_eigenvalues, unflatten)

RTOL = 1e-6


def _tiny(seed=0, bn=False):
    torch.manual_seed(seed)
    layers = [torch.nn.Linear(4, 5)]
    if bn:
        layers.append(torch.nn.BatchNorm1d(5))
    layers += [torch.nn.Tanh(), torch.nn.Linear(5, 3)]
    model = torch.nn.Sequential(*layers).double()
    x = torch.randn(16, 4, dtype=torch.float64)
    y = torch.randn(16, 3, dtype=torch.float64)
    return model, x, y


def _dense(model, x, y, train):
    f, names = module_loss(model, lambda fwd: 0.5 * ((fwd(x) - y) ** 2).sum(1).mean(), train=train)
    params = [p.detach() for p in model.parameters()]

    def flat_f(w):
        return f(unflatten(w, params))

    return torch.func.hessian(flat_f)(flatten(params)), f, params


def _closure(model, x, y):
    return lambda: 0.5 * ((model(x) - y) ** 2).sum(1).mean()


def test_top_eigenvalues_match_dense_hessian():
    model, x, y = _tiny()
    H, _, _ = _dense(model, x, y, train=True)
    exact = torch.linalg.eigvalsh(H).flip(0)[:3]
    got = top_eigenvalues(_closure(model, x, y), list(model.parameters()), k=3)
    assert got.shape == (3,) and got.dtype == torch.float64
    assert torch.all(got[:-1] >= got[1:])  # descending
    assert torch.allclose(got, exact, rtol=RTOL, atol=0)


def test_preconditioned_matches_dense():
    model, x, y = _tiny(1)
    H, _, params = _dense(model, x, y, train=True)
    torch.manual_seed(3)
    pre = [torch.rand_like(p) + 0.1 for p in params]
    d = flatten(pre)
    M = H / torch.sqrt(d)[:, None] / torch.sqrt(d)[None, :]
    exact = torch.linalg.eigvalsh(M).flip(0)[:2]
    pinv_h = torch.linalg.eigvals(H / d[:, None]).real.sort(descending=True).values[:2]
    got = top_eigenvalues(_closure(model, x, y), list(model.parameters()), k=2, preconditioner=pre)
    assert torch.allclose(got, exact, rtol=RTOL, atol=0)
    assert torch.allclose(got, pinv_h, rtol=1e-6)  # same spectrum as P^{-1} H


def test_functional_hvp_batchnorm_eval_matches_dense():
    model, x, y = _tiny(2, bn=True)
    model.train(True)  # the model's own mode must not matter: eval is asked for
    H, f, params = _dense(model, x, y, train=False)
    assert model.training
    v = torch.randn(H.shape[0], dtype=torch.float64)
    assert torch.allclose(functional_hvp(f, params)(v), H @ v, rtol=1e-10, atol=1e-12)
    eig = top_eigenpairs(functional_hvp(f, params), H.shape[0], k=2)
    assert torch.allclose(eig.values, torch.linalg.eigvalsh(H).flip(0)[:2], rtol=RTOL)


def test_functional_hvp_batchnorm_train_matches_double_backward():
    """Train-mode BatchNorm (batch statistics).  torch.func.hessian (jacfwd over vmap) returns a
    non-symmetric matrix here, so the reference is double backward plus finite differences."""
    model, x, y = _tiny(3, bn=True)
    model.eval()
    f, _ = module_loss(model, lambda fwd: 0.5 * ((fwd(x) - y) ** 2).sum(1).mean(), train=True)
    params = list(model.parameters())
    v = torch.randn(sum(p.numel() for p in params), dtype=torch.float64)
    running = model[1].running_mean.clone()
    hv = functional_hvp(f, params)(v)
    assert not model.training
    assert torch.equal(model[1].running_mean, running)  # functional path leaves buffers alone
    model.train(True)
    ref = closure_hvp(_closure(model, x, y), params)(v)
    assert torch.allclose(hv, ref, rtol=1e-10, atol=1e-12)
    w0 = flatten([p.detach() for p in params])
    g = lambda w: flatten(torch.func.grad(f)(unflatten(w, params)))  # noqa: E731
    fd = (g(w0 + 1e-5 * v) - g(w0 - 1e-5 * v)) / 2e-5
    assert torch.allclose(hv, fd, rtol=1e-6, atol=1e-8)


def test_closure_hvp_against_finite_differences():
    model, x, y = _tiny(4)
    params = list(model.parameters())
    v = torch.randn(sum(p.numel() for p in params), dtype=torch.float64)
    hv = closure_hvp(_closure(model, x, y), params)(v)
    w0 = flatten([p.detach() for p in params]).clone()

    def grad_at(w):
        with torch.no_grad():
            for p, t in zip(params, unflatten(w, params)):
                p.copy_(t)
        g = torch.autograd.grad(_closure(model, x, y)(), params)
        return flatten(g)

    h = 1e-5
    fd = (grad_at(w0 + h * v) - grad_at(w0 - h * v)) / (2 * h)
    grad_at(w0)
    assert torch.allclose(hv, fd, rtol=1e-6, atol=1e-8)


def test_lobpcg_warm_start_agrees_and_is_cheaper():
    torch.manual_seed(5)
    n = 60
    Q, _ = torch.linalg.qr(torch.randn(n, n, dtype=torch.float64))
    spectrum = torch.cat([torch.tensor([10.0, 7.0, 5.0], dtype=torch.float64),
                          torch.linspace(-1, 1, n - 3, dtype=torch.float64)])
    A = Q @ torch.diag(spectrum) @ Q.T
    w = torch.zeros(n, dtype=torch.float64, requires_grad=True)
    loss = lambda: 0.5 * w @ A @ w  # noqa: E731  H = A
    cold_vals, cold = top_eigenvalues(loss, [w], k=3, method="lobpcg", return_vectors=True)
    assert torch.allclose(cold_vals, spectrum[:3], rtol=RTOL)
    warm_vals, warm = top_eigenvalues(loss, [w], k=3, method="lobpcg", warm_start=cold.vectors,
                                      return_vectors=True)
    assert torch.allclose(warm_vals, spectrum[:3], rtol=RTOL)
    assert warm.matvecs < cold.matvecs
    lz_vals, lz = top_eigenvalues(loss, [w], k=1, warm_start=cold.vectors, return_vectors=True)
    assert torch.allclose(lz_vals, spectrum[:1], rtol=RTOL)


def test_bad_preconditioner_rejected():
    w = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    with pytest.raises(ValueError):
        top_eigenvalues(lambda: (w ** 2).sum(), [w], preconditioner=[-torch.ones(3)])


def test_batched_top_eigenpair_matches_dense_eigh_per_row():
    # three different symmetric matrices (one with a near-degenerate top pair: gap 1e-3)
    from momentumlab.empirics.sharpness import batched_top_eigenpair

    gen = torch.Generator().manual_seed(0)
    n = 60
    mats = []
    for top in ((5.0, 4.0), (3.0, 2.999), (1.0, 0.5)):
        q, _ = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=torch.float64))
        spec = torch.cat([torch.tensor(top, dtype=torch.float64),
                          torch.linspace(-2.0, 0.4, n - 2, dtype=torch.float64)])
        mats.append(q @ torch.diag(spec) @ q.T)
    H = torch.stack(mats)
    lam, vec, conv, n_products = batched_top_eigenpair(lambda v: (H @ v[:, :, None])[:, :, 0],
                                                       torch.ones(3, n, dtype=torch.float64),
                                                       tol=1e-10, restarts=200)
    ref, refv = torch.linalg.eigh(H)
    assert bool(conv.all())
    # residual 1e-10 relative -> eigenvalue error <= r^2/gap ~ 1e-17: float64 round-off
    assert torch.allclose(lam, ref[:, -1], rtol=1e-12, atol=0)
    # eigenvector error ~ r / gap <= 1e-10/1e-3 = 1e-7 on the near-degenerate row
    assert float((1 - (vec * refv[:, :, -1]).sum(1).abs()).max()) < 1e-12 + 1e-7 ** 2 * 10
    assert n_products > 0


def test_batched_top_eigenpair_rejects_a_flat_start():
    from momentumlab.empirics.sharpness import batched_top_eigenpair

    with pytest.raises(ValueError, match="v0 must be"):
        batched_top_eigenpair(lambda v: v, torch.ones(4, dtype=torch.float64))
