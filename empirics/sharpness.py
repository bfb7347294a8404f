"""Hessian-vector products, top Hessian eigenvalues and the preconditioned sharpness.

The sharpness of Cohen et al. (ICLR 2021, arXiv 2103.00065) is ``lambda_max(H)``;
for an Adam-family method with diagonal preconditioner ``P`` it is
``lambda_max(P^{-1/2} H P^{-1/2})`` -- the same spectrum as ``P^{-1} H``
(Cohen et al. 2022, arXiv 2207.14484, Sec. 3).

Two Hessian-vector products:

* :func:`closure_hvp` -- for a *zero-argument closure* ``loss_fn()`` that reads
  the tensors ``params`` directly.  A torch.func transform needs the loss as a
  function of the parameter *values*, which an arbitrary closure does not give
  (it holds references to the leaf tensors), so this path is **reverse-over-
  reverse**: one ``create_graph`` backward, then ``Hv = d<g, v>/dw`` by a second
  backward per product (the double backprop of Cohen et al.'s code).
* :func:`functional_hvp` -- for a function ``f(values)`` of a list of tensors
  (e.g. :func:`module_loss`: a model evaluated by ``torch.func.functional_call``):
  **forward-over-reverse**, ``Hv = jvp(grad(f), (w,), (v,))``.

Eigenvalues: scipy ``eigsh`` (implicitly restarted Lanczos) on a float64
``LinearOperator`` with ``v0`` the previous top eigenvector, or scipy ``lobpcg``
warm-started from the previous ``k`` eigenvectors (the EoS loop passes them).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from scipy.sparse.linalg import LinearOperator, eigsh, lobpcg

__all__ = ["closure_hvp", "functional_hvp", "module_loss", "top_eigenvalues", "Eigen",
           "top_eigenpairs", "batched_top_eigenpair", "flatten", "unflatten"]

DEFAULT_TOL = 1e-10


def flatten(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    return torch.cat([t.reshape(-1) for t in tensors])


def unflatten(vec: torch.Tensor, like: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    out, i = [], 0
    for t in like:
        out.append(vec[i:i + t.numel()].view_as(t))
        i += t.numel()
    return out


def closure_hvp(loss_fn: Callable[[], torch.Tensor], params: Sequence[torch.Tensor]):
    """``v -> H v`` (flat vectors) by reverse-over-reverse on the closure ``loss_fn()``.

    The gradient graph is built once; each product is one more backward.
    """
    params = list(params)
    with torch.enable_grad():
        grads = torch.autograd.grad(loss_fn(), params, create_graph=True)
    g = flatten(grads)

    def hvp(v: torch.Tensor) -> torch.Tensor:
        hv = torch.autograd.grad(g, params, grad_outputs=v.to(g.dtype), retain_graph=True,
                                 allow_unused=True)
        return flatten([torch.zeros_like(p) if h is None else h for h, p in zip(hv, params)])

    return hvp


def functional_hvp(f: Callable[[list], torch.Tensor], params: Sequence[torch.Tensor]):
    """``v -> H v`` by forward-over-reverse: ``jvp(grad(f), (w,), (v,))`` (torch.func)."""
    values = [p.detach() for p in params]
    grad_f = torch.func.grad(f)

    def hvp(v: torch.Tensor) -> torch.Tensor:
        tangents = [t.to(w.dtype) for t, w in zip(unflatten(v, values), values)]
        return flatten(torch.func.jvp(grad_f, (values,), (tangents,))[1])

    return hvp


def module_loss(model: torch.nn.Module, loss: Callable, *, train: bool):
    """``(f, names)``: ``f(values)`` is ``loss(functional_call(model, values))`` in the given mode.

    ``train`` sets BatchNorm/Dropout mode explicitly (``model.train(train)``) for the
    evaluation; the model's own mode is restored afterwards.  In training mode
    BatchNorm uses batch statistics and updates *copies* of its running buffers
    (the model's are left alone).  ``loss(forward)`` receives a callable
    ``forward(*inputs)`` bound to the substituted values.
    """
    names = [n for n, _ in model.named_parameters()]

    def f(values):
        was = model.training
        model.train(train)
        state = {n: b.clone() for n, b in model.named_buffers()}
        state.update(zip(names, values))
        try:
            return loss(lambda *a: torch.func.functional_call(model, state, a))
        finally:
            model.train(was)

    return f, names


@dataclass
class Eigen:
    """Top eigenpairs: ``values`` descending (1-D tensor), ``vectors`` ``(n, k)`` float64 numpy."""

    values: torch.Tensor
    vectors: np.ndarray
    matvecs: int


def _operator(hvp, n, dtype, device, preconditioner):
    scale = None
    if preconditioner is not None:
        d = flatten([p.detach() for p in preconditioner]).to(torch.float64)
        if d.numel() != n or not bool((d > 0).all()):
            raise ValueError("preconditioner must hold n positive diagonal entries of P")
        scale = d.rsqrt()
    count = [0]

    def matvec(x):
        x = np.asarray(x, dtype=np.float64).reshape(-1)
        v = torch.as_tensor(x, device=device)
        if scale is not None:
            v = v * scale.to(device)
        hv = hvp(v.to(dtype)).detach().to(torch.float64)
        if scale is not None:
            hv = hv * scale.to(device)
        count[0] += 1
        return hv.cpu().numpy()

    def matmat(X):
        return np.stack([matvec(c) for c in np.asarray(X).T], axis=1)

    return LinearOperator((n, n), matvec=matvec, matmat=matmat, dtype=np.float64), count


def top_eigenpairs(hvp, n: int, k: int = 1, *, preconditioner=None, tol: float = DEFAULT_TOL,
                   method: str = "lanczos", warm_start: np.ndarray | None = None,
                   dtype=torch.float64, device="cpu", seed: int = 0) -> Eigen:
    """Top ``k`` eigenpairs of ``H`` (or ``P^{-1/2} H P^{-1/2}``) given ``hvp``, descending.

    ``method="lanczos"``: scipy ``eigsh(which="LA")`` with ``v0`` = first column of
    ``warm_start``; ``method="lobpcg"``: scipy ``lobpcg(largest=True)`` started at
    ``warm_start`` (``(n, k)``; random when absent), falling back to Lanczos when
    ``n < 5 k`` (LOBPCG's regime) or when it does not reach ``tol``.
    """
    op, count = _operator(hvp, n, dtype, device, preconditioner)
    rng = np.random.default_rng(seed)
    if method not in ("lanczos", "lobpcg"):
        raise ValueError(f"method must be 'lanczos' or 'lobpcg', got {method!r}")
    vals = vecs = None
    if method == "lobpcg" and n >= 5 * k:
        X = warm_start if warm_start is not None and warm_start.shape == (n, k) else None
        X = rng.standard_normal((n, k)) if X is None else X
        try:
            with warnings.catch_warnings():  # not converged: checked below, then Lanczos
                warnings.simplefilter("ignore", UserWarning)
                vals, vecs, res = lobpcg(op, X, tol=tol, maxiter=200, largest=True,
                                         retResidualNormsHistory=True)[:3]
            if np.max(res[-1]) > max(tol, 1e-8) * max(1.0, abs(vals).max()):
                vals = None
        except Exception:  # ill-conditioned block: Lanczos below
            vals = None
    if vals is None:
        if k >= n:  # eigsh needs k < n: dense fallback for tiny problems
            dense = op.matmat(np.eye(n))
            vals, vecs = np.linalg.eigh((dense + dense.T) / 2)
        else:
            v0 = warm_start[:, 0] if warm_start is not None else rng.standard_normal(n)
            vals, vecs = eigsh(op, k=k, which="LA", tol=tol, v0=v0)
    order = np.argsort(vals)[::-1][:k]
    return Eigen(torch.as_tensor(vals[order].copy(), dtype=torch.float64), vecs[:, order],
                 count[0])


def top_eigenvalues(loss_fn: Callable[[], torch.Tensor], params: Sequence[torch.Tensor], k: int = 1,
                    preconditioner: Sequence[torch.Tensor] | None = None, tol: float = DEFAULT_TOL,
                    *, method: str = "lanczos", warm_start: np.ndarray | None = None,
                    return_vectors: bool = False):
    r"""The ``k`` largest eigenvalues (descending, 1-D float64 tensor) of the Hessian of ``loss_fn()``.

    ``loss_fn`` is a zero-argument closure returning the scalar loss of ``params``
    (a list of tensors with ``requires_grad``); products are reverse-over-reverse
    (:func:`closure_hvp`, see the module docstring).  With ``preconditioner`` (tensors
    shaped like ``params`` holding the diagonal of ``P``) the eigenvalues are those of
    :math:`P^{-1/2} H P^{-1/2}` (= those of :math:`P^{-1}H`).  ``return_vectors`` also
    returns the :class:`Eigen` (eigenvectors in the scaled coordinates) for warm starts.
    """
    params = list(params)
    n = sum(p.numel() for p in params)
    eig = top_eigenpairs(closure_hvp(loss_fn, params), n, k, preconditioner=preconditioner,
                         tol=tol, method=method, warm_start=warm_start, dtype=params[0].dtype,
                         device=params[0].device)
    return (eig.values, eig) if return_vectors else eig.values


def batched_top_eigenpair(hvp: Callable[[torch.Tensor], torch.Tensor], v0: torch.Tensor, *,
                          tol: float = 1e-6, krylov: int = 8, restarts: int = 25,
                          seed: int = 0):
    r"""Top (largest algebraic) eigenpair of ``B`` symmetric operators at once.

    ``hvp`` maps ``(B, n)`` to ``(B, n)``, row ``b`` multiplied by ``H_b`` (one batched call per
    Krylov vector: for a vmapped loss one double backward serves every row); ``v0`` ``(B, n)`` is
    the start (the previous eigenvector when warm).  Restarted Lanczos: a Krylov basis of
    ``krylov`` vectors from the current vector, fully re-orthogonalised (twice), Rayleigh-Ritz
    on ``V^T H V``, restart from the top Ritz vector; stop when every row meets the acceptance
    rule of :func:`top_eigenpairs`' LOBPCG, ``||H u - theta u|| <= tol max(1, |theta|)``.

    Why not scipy: ``lobpcg``/``eigsh`` take one operator, so ``B`` rows cost ``B`` sequential
    solves at ~1 ms of Python and autograd overhead per product; here one product serves all
    rows.  Returns ``(values (B,), vectors (B, n), converged (B,) bool, products)``; rows not
    converged after ``restarts`` are for the caller to re-solve (e.g. by :func:`top_eigenpairs`).
    """
    if v0.dim() != 2:
        raise ValueError(f"v0 must be (B, n), got shape {tuple(v0.shape)}")
    gen = torch.Generator(device="cpu").manual_seed(seed)
    u = v0 / v0.norm(dim=1, keepdim=True).clamp_min(1e-300)
    products = 0
    lam = conv = None
    for _ in range(restarts):
        V, HV = [u], []
        for j in range(krylov):
            h = hvp(V[j])
            products += 1
            HV.append(h)
            if j == krylov - 1:
                break
            q = h
            for _twice in range(2):
                for v in V:
                    q = q - (q * v).sum(dim=1, keepdim=True) * v
            qn = q.norm(dim=1, keepdim=True)
            dead = qn <= 1e-12 * h.norm(dim=1, keepdim=True).clamp_min(1e-300)
            if bool(dead.any()):  # invariant subspace: continue with a fresh direction
                r = torch.randn(q.shape, generator=gen, dtype=q.dtype).to(q.device)
                for _twice in range(2):
                    for v in V:
                        r = r - (r * v).sum(dim=1, keepdim=True) * v
                q = torch.where(dead, r, q)
                qn = q.norm(dim=1, keepdim=True)
            V.append(q / qn)
        Vm, HVm = torch.stack(V, dim=2), torch.stack(HV, dim=2)
        T = Vm.transpose(1, 2) @ HVm
        theta, C = torch.linalg.eigh((T + T.transpose(1, 2)) / 2)
        top = C[:, :, -1:]
        u = (Vm @ top)[:, :, 0]
        hu = (HVm @ top)[:, :, 0]
        lam = theta[:, -1]
        u_norm = u.norm(dim=1)
        u, hu = u / u_norm[:, None], hu / u_norm[:, None]
        res = (hu - lam[:, None] * u).norm(dim=1)
        conv = res <= tol * lam.abs().clamp_min(1.0)
        if bool(conv.all()):
            break
    return lam, u, conv, products
