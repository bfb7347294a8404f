"""Discrete optimizer, rod flow, central flow and stable flow, run side by side (issue 10).

:func:`race` starts four processes from the same point and runs them in lockstep on any
torch-differentiable ``loss_fn`` (a flat float64 tensor -> scalar), batched over a leading
axis of step sizes (``hyper["lr"]`` may be a list):

* ``discrete`` -- the optimizer's rule of :mod:`theory.rules` as the one-step map
  ``z_{t+1} = Phi_{nu_t}(z_t)`` of :func:`theory.rod_flow.phase_map` on ``z = (w, state)``, the
  second moment updated first, ``nu_t = beta2 nu_{t-1} + (1-beta2) g_t^2`` (as the
  central-flows code), late time (no bias correction), ``m_0 = 0`` and a warm ``nu_{-1} =
  g_0^2`` (``||g_0||^2`` for the scalar variants);
* ``rod`` -- :func:`theory.rod_flow.rod_velocity` integrated by RK4 with ``dt = 1/4``;
  ``c(0), d(0)`` the first discrete step; ``nu`` by ``dnu/dt = k (1/2(g_+^2 + g_-^2) - nu)``;
  prediction ``w_hat_t = c_w(t) - (-1)^t d_w(t)``, loss ``1/2[L(c+d) + L(c-d)]``;
* ``central`` -- Cohen, Damian et al. (ICLR 2025), discretised as the authors' code: Euler with
  ``dt = 1/4``; every effective eigenvalue above ``SDCP_THRESHOLD = 1.95`` is critical, and the
  covariance ``X`` solves the SDCP of the linearised next-substep constraint
  ``U^T (2P - H) U >= 0`` (:mod:`empirics.central_flow_sdcp`; cvxpy, optional: without it, or
  with one critical eigenvalue, the closed form ``X = max(0, -alpha/beta)`` on the top one, and
  the race's notes say how many were critical); GD, scalar RMSProp and RMSProp (other
  optimizers: not defined by the paper, skipped with a note);
* ``stable`` -- the rod with ``d = 0``: ``dz/dt = F_nu(z)`` with the same ``nu`` ODE
  (preconditioned gradient flow; phase-space flow for momentum): scipy RK45 over each unit of
  time while it is not stiff, then (``S_eff`` past ~100) scipy's implicit BDF per batch row
  with the exact Jacobian by ``torch.func.jacfwd`` (:class:`Stable`); a row that diverges is
  reported in the notes, not silently NaN.

Two numerical pitfalls are handled:

* **cancellation**: ``1/2[F(c+d) - F(c-d)]`` loses all digits once ``||d||`` is below the
  rounding of ``c``; where ``||d|| <= ODD_SWITCH (1 + ||c||)`` (``ODD_SWITCH = eps^(1/3) =
  6e-6``: the truncation ``O(d^3)`` and the cancellation ``eps/d`` balance) the odd part is the
  directional derivative ``dF(c)[d]``, computed as the central difference of the *rescaled*
  rod ``s d`` with ``||s d|| = ODD_SWITCH (1 + ||c||)``, divided by ``s`` (relative error
  ``~ eps^(2/3) = 4e-11``, no cancellation; two more gradients in the same batched call --
  for GD it is the HVP ``-eta H(c) d`` to that accuracy, tests/empirics/test_flows.py);
* **seed / onset**: ``d = 0`` is invariant, so after sharpening the rod regrows from whatever
  seed is left.  Seed policy (:data:`SEED_FLOOR`): after every unit step ``||d|| >= rho ||c_w||``
  with ``rho = 1e-16`` (float64 round-off, the level at which GD's own oscillation is seeded),
  enforced by rescaling ``d`` (its direction is kept).  Onset alignment (the step at which each
  process's oscillation first exceeds ``onset_level``) is reported separately from tracking
  after onset; the discrete process runs in the same precision (float64).

Costs: gradient evaluations and HVPs per step and CPU time per flow (``time.process_time``),
reported as ratios to the discrete step.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np
import torch

from momentumlab.empirics.backend import torch_ops
from momentumlab.empirics.central_flow_sdcp import (SDCP_MODES, SDCP_THRESHOLD, CentralNotes,
                                                    SDCPSolver, assemble, cvxpy_available,
                                                    solve_rows)
from momentumlab.theory.rod_flow import (DEFAULT_RATE, ema_update, get_space, nu_forcing, nu_rate,
                                         phase_map, rod_velocity, threshold_value)

__all__ = ["FLOWS", "race", "Race", "ROD_DT", "CENTRAL_DT", "SEED_FLOOR", "ODD_SWITCH",
           "CENTRAL_OPTIMIZERS", "SDCP_THRESHOLD", "onset_step"]

FLOWS = ("discrete", "rod", "central", "stable")
ROD_DT = 1 / 4
CENTRAL_DT = 1 / 4
SEED_FLOOR = 1e-16
ODD_SWITCH = float(np.finfo(np.float64).eps) ** (1 / 3)
#: RK45 right-hand sides per unit of time past which the stable flow is stiff (S_eff > ~100) and
#: switches to the implicit per-row BDF (:class:`Stable`)
MAX_STABLE_NFEV = 400
CENTRAL_OPTIMIZERS = ("gd", "scalar_rmsprop", "rmsprop")
#: restarts of the batched Lanczos eigensolver (x 16 products) before a Ritz pair is kept as is
EIG_RESTARTS = 4
#: LOBPCG tracks one more eigenpair while all tracked effective eigenvalues exceed this
TRACK_THRESHOLD = 1.5
#: relative residual tolerance of the central flow's LOBPCG eigenpairs
EIG_TOL = 1e-6
#: relative residual tolerance of the batched Lanczos top pair (:meth:`_Problem.top_eig`: the
#: sharpness, the one-eigenvalue central flow).  A residual r puts the Ritz value within
#: ~r^2 |lambda| / gap of lambda and the vector within ~r / gap: 1e-4 keeps the value to ~1e-8
#: relative.  Measured (digits MLP race, 100 steps, three rows): the same mean iterate errors
#: to four digits as 1e-6, with 92 instead of 136 products per step
LANCZOS_TOL = 1e-4
_OPS = torch_ops(batch_dims=1)


# ------------------------------------------------------------------ phase-space vectors
class Z(dict):
    """A phase-space point ``{"w": (B, P), <state>: (B, .)}`` with vector arithmetic."""

    def _map(self, other, fn):
        if isinstance(other, Z):
            return Z({k: fn(v, other[k]) for k, v in self.items()})
        return Z({k: fn(v, other) for k, v in self.items()})

    def __add__(self, o):
        return self._map(o, lambda a, b: a + b)

    def __sub__(self, o):
        return self._map(o, lambda a, b: a - b)

    def __mul__(self, o):
        return self._map(o, lambda a, b: a * b)

    __rmul__ = __mul__

    def __truediv__(self, o):
        return self._map(o, lambda a, b: a / b)

    def __neg__(self):
        return Z({k: -v for k, v in self.items()})

    def norm(self) -> torch.Tensor:
        """Per-batch Euclidean norm over every component, shape ``(B, 1)``."""
        return torch.sqrt(sum((v * v).sum(dim=1, keepdim=True) for v in self.values()))


def _as_batch(x, B, device):
    t = torch.as_tensor(x, dtype=torch.float64, device=device)
    return t.reshape(-1, 1).expand(B, 1) if t.numel() > 1 else t.reshape(1, 1).expand(B, 1)


# ------------------------------------------------------------------ the problem
@dataclass
class _Problem:
    loss_fn: Callable
    B: int
    P: int
    device: torch.device
    counts: dict = field(default_factory=dict)

    def __post_init__(self):
        self._loss = torch.func.vmap(self.loss_fn)

    def count(self, flow, kind, n=1):
        self.counts.setdefault(flow, {"gradients": 0, "hvps": 0})[kind] += n

    def grad(self, w, flow):
        """Row-wise gradients of ``(R, P)`` points (one reverse pass over the vmapped loss)."""
        self.count(flow, "gradients", w.shape[0] / self.B)
        with torch.enable_grad():
            x = w.detach().requires_grad_(True)
            return torch.autograd.grad(self._loss(x).sum(), x)[0]

    def loss(self, w):
        return self._loss(w)

    def hessian(self, w):
        """Dense row-wise Hessians ``(B, P, P)`` by ``P`` double-backward passes (small ``P``)."""
        with torch.enable_grad():
            x = w.detach().requires_grad_(True)
            g = torch.autograd.grad(self._loss(x).sum(), x, create_graph=True)[0]
            rows = [torch.autograd.grad(g[:, i].sum(), x, retain_graph=True)[0] for i in range(self.P)]
        return torch.stack(rows, dim=1)

    def grad_sharpness(self, w, u):
        """``grad_w (u^T H(w) u)`` (third derivative contracted twice), row-wise."""
        with torch.enable_grad():
            x = w.detach().requires_grad_(True)
            g = torch.autograd.grad(self._loss(x).sum(), x, create_graph=True)[0]
            hu = torch.autograd.grad(g, x, grad_outputs=u, create_graph=True)[0]
            return torch.autograd.grad((hu * u).sum(), x)[0]

    def hvp(self, w, scale=None):
        """``V -> S H(w) S V`` row-wise for ``(B, P)`` blocks (``S = diag(scale)``, default ``I``):
        the gradient graph is built once, each product is one batched double backward."""
        with torch.enable_grad():
            x = w.detach().requires_grad_(True)
            g = torch.autograd.grad(self._loss(x).sum(), x, create_graph=True)[0]

        def product(v):
            v = v if scale is None else v * scale
            with torch.enable_grad():
                hv = torch.autograd.grad(g, x, grad_outputs=v, retain_graph=True)[0].detach()
            return hv if scale is None else hv * scale

        return product

    def top_eig(self, w, warm=None, scale=None, flow="central_eig"):
        """Top eigenpair of ``S H S`` per batch row (``S = diag(scale)``, default ``I``).

        ``P <= 64``: dense Hessians and ``torch.linalg.eigh``.  Larger: restarted Lanczos batched
        over the rows (:func:`empirics.sharpness.batched_top_eigenpair`, Krylov dimension 16,
        warm-started at ``warm``, residual ``<= LANCZOS_TOL max(1, |lambda|)``, at most
        :data:`EIG_RESTARTS` restarts; a row still above the residual keeps its Ritz pair and is
        counted in ``counts[flow]["unconverged"]``).  Chosen by measurement (digits MLP, ``P`` = 578, three rows,
        one thread): per-row warm LOBPCG took ~35 products and ~45 ms per call for the three
        rows -- the central flow spent 59 of 61 s of a 130-step race there -- where one batched
        product costs ~2 ms; a dense Hessian (vmapped forward-over-reverse) plus ``eigh`` costs
        ~0.1 s per call at that size and wins only below ``P`` ~ 250 against per-row LOBPCG.
        """
        if self.P <= 64:
            H = self.hessian(w)
            if scale is not None:
                H = scale[:, :, None] * H * scale[:, None, :]
            ev, vec = torch.linalg.eigh(H)
            return ev[:, -1], vec[:, :, -1]
        from momentumlab.empirics.sharpness import batched_top_eigenpair

        v0 = warm if warm is not None else torch.ones_like(w) + 0.1 * torch.randn(
            w.shape, generator=torch.Generator().manual_seed(0), dtype=w.dtype).to(w.device)
        lam, vec, conv, n = batched_top_eigenpair(self.hvp(w, scale), v0, tol=LANCZOS_TOL, krylov=16,
                                                  restarts=EIG_RESTARTS)
        self.count(flow, "hvps", n)
        # not converged (a near-degenerate top pair: the central flow's second eigenvalue
        # reaching 2/eta): the Ritz value is still accurate to ~residual^2/gap, the vector is
        # some vector of the top cluster; counted, and reported as the flow's cost
        self.counts[flow]["unconverged"] = self.counts[flow].get("unconverged", 0) + int((~conv).sum())
        self.counts[flow]["solves"] = self.counts[flow].get("solves", 0) + self.B
        return lam, vec


    def eigenpairs(self, w, k, pdiag=None, warm=None):
        """Top ``k`` eigenpairs of the effective Hessian ``P^{-1} H`` per batch row, descending.

        ``pdiag`` ``(B, P)`` or ``(B, 1)`` is the diagonal of ``P`` (``None``: ``P = I``).
        Returns ``(lam (B, k), U (B, P, k), V (B, P, k))``: ``H U = P U diag(lam)`` with
        ``U^T P U = I`` (``U = P^{-1/2} V``, ``V`` orthonormal eigenvectors of
        ``P^{-1/2} H P^{-1/2}``, the warm start of the next call).  Dense ``eigh`` for
        ``P <= 64``; for ``k = 1`` the batched Lanczos of :meth:`top_eig`; else warm-started
        LOBPCG (tol :data:`EIG_TOL`; Lanczos fallback) per row.
        """
        B, n = w.shape
        s = torch.ones(B, n, dtype=w.dtype, device=w.device) if pdiag is None else \
            torch.rsqrt(pdiag).expand(B, n)
        k = min(k, n)
        if n <= 64:
            H = s[:, :, None] * self.hessian(w) * s[:, None, :]
            ev, vec = torch.linalg.eigh(H)
            lam, V = ev.flip(-1)[:, :k], vec.flip(-1)[:, :, :k]
        elif k == 1:  # the common case: one tracked pair, by the batched Lanczos of top_eig
            v0 = None if warm is None else warm[:, :, 0]
            top, vec = self.top_eig(w, v0, s, "central_eig")
            lam, V = top[:, None], vec[:, :, None]
        else:
            from momentumlab.empirics.sharpness import top_eigenpairs
            lams, vecs = [], []
            for b in range(B):
                hv = _row_hvp(self.loss_fn, w[b])
                ws = None if warm is None else _fit_columns(warm[b].detach().cpu().numpy(), k, b)
                pre = None if pdiag is None else [pdiag[b].expand(n)]
                e = top_eigenpairs(hv, n, k, tol=EIG_TOL, method="lobpcg", warm_start=ws,
                                   preconditioner=pre, device=w.device)
                lams.append(e.values.to(w.device))
                vecs.append(torch.as_tensor(e.vectors, device=w.device))
                self.count("central_eig", "hvps", e.matvecs / B)
            lam, V = torch.stack(lams), torch.stack(vecs)
        return lam, s[:, :, None] * V, V

    def dense_curvature(self, w, pdiag=None, flow="central"):
        """For small ``P``: ``(g, lam, U, contract)`` from one autograd graph -- the gradient, all
        effective eigenpairs as :meth:`eigenpairs` (dense), and ``contract(k)`` = the
        third-derivative contractions of :meth:`third_contractions` for the leading ``k``
        (the Hessian's graph is kept, so ``grad(u_i^T H u_j)`` costs one batched pass)."""
        B, n = w.shape
        s = torch.ones(B, n, dtype=w.dtype, device=w.device) if pdiag is None else \
            torch.rsqrt(pdiag).expand(B, n)
        with torch.enable_grad():
            x = w.detach().requires_grad_(True)
            g = torch.autograd.grad(self._loss(x).sum(), x, create_graph=True)[0]
            eye = torch.eye(n, dtype=w.dtype, device=w.device)[:, None, :].expand(n, B, n)
            H = torch.autograd.grad(g, x, grad_outputs=eye, is_grads_batched=True,
                                    create_graph=True)[0].transpose(0, 1)
        ev, vec = torch.linalg.eigh(s[:, :, None] * H.detach() * s[:, None, :])
        lam, U = ev.flip(-1), s[:, :, None] * vec.flip(-1)

        def contract(k):
            out = torch.zeros(B, k, k, n, dtype=w.dtype, device=w.device)
            if k == 0:
                return out
            Uk = U[:, :, :k]
            i, j = torch.triu_indices(k, k)
            with torch.enable_grad():
                q = torch.einsum("bpi,bpq,bqj->bij", Uk, H, Uk)[:, i, j]
                sel = torch.eye(len(i), dtype=w.dtype, device=w.device)[:, None, :].expand(-1, B, -1)
                G = torch.autograd.grad(q, x, grad_outputs=sel, is_grads_batched=True,
                                        retain_graph=True)[0]
            out[:, i, j] = G.transpose(0, 1)
            out[:, j, i] = G.transpose(0, 1)
            return out

        self.count(flow, "gradients", 1)
        return g.detach(), lam, U, contract

    def third_contractions(self, w, U):
        """``G_ij = grad_w (u_i^T H(w) u_j)`` ``(B, k, k, P)`` for ``U`` ``(B, P, k)`` (the
        authors' ``D(w, 3, u_i, u_j)``): one gradient, ``k`` HVPs and ``k(k+1)/2`` third-derivative
        passes of autograd."""
        B, n, k = U.shape
        out = torch.zeros(B, k, k, n, dtype=w.dtype, device=w.device)
        if k == 0:
            return out
        with torch.enable_grad():
            x = w.detach().requires_grad_(True)
            g = torch.autograd.grad(self._loss(x).sum(), x, create_graph=True)[0]
            HU = [torch.autograd.grad(g, x, grad_outputs=U[:, :, i], create_graph=True)[0]
                  for i in range(k)]
            for i in range(k):
                for j in range(i, k):
                    out[:, i, j] = torch.autograd.grad((HU[i] * U[:, :, j]).sum(), x,
                                                       retain_graph=True)[0]
                    out[:, j, i] = out[:, i, j]
        return out


def _fit_columns(X, k, seed):
    """A warm start with ``k`` columns: ``X`` truncated, or padded with random columns."""
    if X.shape[1] >= k:
        return X[:, :k]
    pad = np.random.default_rng(seed).standard_normal((X.shape[0], k - X.shape[1]))
    return np.concatenate([X, pad], axis=1)


def _row_hvp(loss_fn, w):
    """``v -> H(w) v`` for one point (empirics.sharpness.closure_hvp on a leaf copy of ``w``)."""
    from momentumlab.empirics.sharpness import closure_hvp

    x = w.detach().clone().requires_grad_(True)
    return closure_hvp(lambda: loss_fn(x), [x])


# ------------------------------------------------------------------ the processes
class _Optimizer:
    """The phase space of one optimizer at batched hyperparameters."""

    def __init__(self, name, hyper, B, device, rate):
        self.space = get_space(name)
        hyper = dict(hyper)
        self.values = self.space.values(**{k: _as_batch(v, B, device) if k == "lr" else v
                                           for k, v in hyper.items()})
        self.beta2 = self.values.get("beta2")
        self.k = nu_rate(self.beta2, rate) if self.space.second_moment else None

    def F(self, problem, flow, z, root, g=None, reps=1):
        """``F_nu(z)`` and ``g(z_w)`` for stacked points (``reps`` copies of the batch)."""
        grad_fn = (lambda w: problem.grad(w, flow)) if g is None else (lambda w: g)
        values = self.values if reps == 1 else {
            k: v.repeat(reps, 1) if torch.is_tensor(v) else v for k, v in self.values.items()}
        step = phase_map(self.space, values, grad_fn, _OPS, root)
        f, g = step(z)
        return Z(f), g

    def z0(self, w0):
        state = {}
        from momentumlab.theory.rules import get_rule
        init = get_rule(self.space.rule).init(w0, _OPS)
        for k in self.space.dynamic:
            v = init[k]
            state[k] = v if torch.is_tensor(v) else torch.full((w0.shape[0], 1), float(v),
                                                                dtype=w0.dtype, device=w0.device)
        return Z({"w": w0, **state})

    def nu0(self, g):
        if self.space.second_moment is None:
            return None
        return nu_forcing(self.space, g, g, _OPS)


def _root(nu):
    return None if nu is None else torch.sqrt(nu)


class Discrete:
    name = "discrete"

    def __init__(self, opt, problem, z0, nu0):
        self.opt, self.problem, self.z, self.nu = opt, problem, z0, nu0

    def next(self):
        """``(z_{t+1}, nu_t)``: the second moment first (it contains ``g_t``), then ``Phi_{nu_t}``."""
        p, opt = self.problem, self.opt
        g = p.grad(self.z["w"], self.name)
        nu = ema_update(opt.space, self.nu, g, opt.beta2, _OPS) if opt.space.second_moment else None
        f, _ = opt.F(p, self.name, self.z, _root(nu), g=g)
        return self.z + f, nu

    def step(self):
        self.z, self.nu = self.next()


class Rod:
    """RK4 on ``(c, d, nu)`` with the cancellation-free odd part and the seed floor."""

    name = "rod"

    def __init__(self, opt, problem, z0, z1, nu0, dt=ROD_DT, floor=SEED_FLOOR):
        self.opt, self.problem = opt, problem
        self.c, self.d, self.nu = (z0 + z1) / 2, (z1 - z0) / 2, nu0
        self.dt, self.floor, self.switched = dt, floor, 0

    def field(self, c, d, nu):
        """Rod velocity; the odd part by the rescaled difference where ``d`` is small."""
        p, opt = self.problem, self.opt
        B = p.B
        cn, dn = c.norm(), d.norm()
        small = dn <= ODD_SWITCH * (1 + cn)
        points = [c + d, c - d]
        if bool(small.any()):
            s = torch.where(small & (dn > 0), ODD_SWITCH * (1 + cn) / torch.where(dn > 0, dn, 1.0), 1.0)
            points += [c + d * s, c - d * s]
            self.switched += 1
        stack = Z({k: torch.cat([z[k] for z in points]) for k in c})
        reps = len(points)
        root = _root(nu)
        rroot = None if root is None else root.repeat(reps, 1)
        f, g = opt.F(p, self.name, stack, rroot, reps=reps)
        parts = [Z({k: v[i * B:(i + 1) * B] for k, v in f.items()}) for i in range(reps)]
        even, odd = (parts[0] + parts[1]) / 2, (parts[0] - parts[1]) / 2
        if reps == 4:
            odd = Z({k: torch.where(small, (parts[2][k] - parts[3][k]) / (2 * s), odd[k]) for k in odd})
        dc, dd = rod_velocity(even, odd, d)
        dnu = None
        if nu is not None:
            dnu = opt.k * (nu_forcing(opt.space, g[:B], g[B:2 * B], _OPS) - nu)
        return dc, dd, dnu

    def step(self):
        h = self.dt
        for _ in range(round(1 / h)):
            c, d, nu = self.c, self.d, self.nu
            k1 = self.field(c, d, nu)
            k2 = self.field(c + k1[0] * (h / 2), d + k1[1] * (h / 2), _adv(nu, k1[2], h / 2))
            k3 = self.field(c + k2[0] * (h / 2), d + k2[1] * (h / 2), _adv(nu, k2[2], h / 2))
            k4 = self.field(c + k3[0] * h, d + k3[1] * h, _adv(nu, k3[2], h))
            comb = lambda i: (k1[i] + k2[i] * 2 + k3[i] * 2 + k4[i]) * (h / 6)  # noqa: E731
            self.c, self.d = c + comb(0), d + comb(1)
            if nu is not None:
                self.nu = nu + (k1[2] + 2 * k2[2] + 2 * k3[2] + k4[2]) * (h / 6)
        self._floor()

    def _floor(self):
        if not self.floor:
            return
        dn, cn = self.d.norm(), torch.sqrt((self.c["w"] ** 2).sum(dim=1, keepdim=True))
        low = (dn < self.floor * cn) & (dn > 0)
        if bool(low.any()):
            scale = torch.where(low, self.floor * cn / torch.where(dn > 0, dn, 1.0), 1.0)
            self.d = self.d * scale

    def predicted(self, t):
        sign = -1.0 if t % 2 == 0 else 1.0
        return self.c["w"] + sign * self.d["w"]


def _adv(nu, dnu, h):
    return None if nu is None else nu + dnu * h


class _Stiff(Exception):
    """Raised by :meth:`Stable._rhs` past :data:`MAX_STABLE_NFEV` evaluations in one unit of time."""


#: relative tolerance of both stable-flow solvers; absolute: ATOL for ``w`` and the optimizer
#: state, ``rtol * nu / 1000`` per component for ``nu`` (it spans decades and must stay > 0)
STABLE_RTOL, STABLE_ATOL = 1e-6, 1e-9


class _SchurBDF:
    """Factory of scipy's ``BDF`` whose Newton systems ``(I - cJ) x = b`` are solved by the Schur
    complement on ``w`` when the block of the other phase-space entries is diagonal.

    The stable field's Jacobian ``J = [[J_ww, J_wD], [J_Dw, J_DD]]`` (``D``: momentum, first
    moment, ``nu``) has a dense ``J_ww`` (the preconditioned Hessian) but a diagonal ``J_DD``
    for every optimizer whose state entries relax independently (heavy ball, Nesterov, Adam,
    NAdam, RMSProp, VRAdam: ``dF_m/dm = -(1 - beta1) I``, ``dF_nu/dnu = -k I``).  Then
    ``A = I - cJ`` is factorised as ``S = A_ww - A_wD A_DD^{-1} A_Dw`` (``P x P``, one LAPACK LU)
    instead of ``A`` (``n x n``, ``n`` = 3P for Adam): on the digits MLP (``P`` = 578) one
    factorisation costs 5 ms against 200 ms dense or 45 ms with SuperLU (measured, one
    thread); ``A_wD A_DD^{-1} A_Dw`` is a sparse product when ``A_wD`` is diagonal blocks (Adam)
    and a BLAS one when dense (VRAdam: the gate couples ``w`` to ``||m||^2``).  Otherwise (a
    non-diagonal ``J_DD``, e.g. TAM's ``s_hat`` coupled to ``m``) the plain dense LU.  Hooks: the
    instance attributes ``lu`` and ``solve_lu`` that scipy's ``BDF.__init__`` sets (scipy
    1.4-1.17); without them the plain BDF runs.
    """

    def __new__(cls, fun, t0, y0, t_bound, P, **kw):
        from scipy.integrate import BDF
        from scipy.linalg import lu_factor, lu_solve
        from scipy.sparse import csr_matrix

        solver = BDF(fun, t0, y0, t_bound, **kw)
        if not (hasattr(solver, "lu") and hasattr(solver, "solve_lu")) or len(y0) == P:
            return solver
        dense_lu, dense_solve = solver.lu, solver.solve_lu

        def lu(A):
            a = np.diagonal(A[P:, P:]).copy()
            if np.count_nonzero(A[P:, P:]) != np.count_nonzero(a) or not np.all(a):
                return "dense", dense_lu(A)
            solver.nlu += 1
            ADw, AwD = A[P:, :P].copy(), A[:P, P:]
            if np.count_nonzero(AwD) < AwD.size // 8:  # diagonal blocks (Adam, heavy ball)
                AwD = csr_matrix(AwD)
            else:  # dense coupling (VRAdam's gate on ||m||^2): BLAS
                AwD = AwD.copy()
            S = A[:P, :P] - AwD @ (ADw / a[:, None])
            return "schur", (lu_factor(S, overwrite_a=True), AwD, ADw, a)

        def solve(LU, b):
            kind, f = LU
            if kind == "dense":
                return dense_solve(f, b)
            lu_s, AwD, ADw, a = f
            x_w = lu_solve(lu_s, b[:P] - AwD @ (b[P:] / a))
            return np.concatenate([x_w, (b[P:] - ADw @ x_w) / a])

        solver.lu, solver.solve_lu = lu, solve
        return solver


class Stable:
    """``dz/dt = F_nu(z)``, ``dnu/dt = k(g^2 - nu)``: the rod with ``d = 0`` (both ends at ``z``).

    The field is :func:`theory.rod_flow.phase_map` of the optimizer's rule (the same map as the
    discrete and rod processes).  Two integrators, chosen by measurement (digits MLP, ``P`` =
    578, 50 steps, one thread):

    * **explicit**, while not stiff: scipy ``RK45`` (``STABLE_RTOL``/``STABLE_ATOL``), all rows
      as one ODE, one solver kept across units (dense output at the integer times; restarting
      it every unit took ~1.5x the evaluations: heavy ball 1468 against 908, RMSProp 2854
      against 1952 over 50 steps, iterates equal to 2e-7) -- ~1-3 s for two rows for the
      non-stiff optimizers, less than the implicit path there (RMSProp: 4.4 s per-unit RK45
      against 5.5 s implicit);
    * **implicit**, from the first unit in which RK45 needs more than :data:`MAX_STABLE_NFEV`
      right-hand sides (stability bounds its step by ``~ 3/S_eff``, ``S_eff = eta
      lambda_max(P^-1 H)``, so this is ``S_eff`` past ~100 -- where the central-flows code
      stops its stable flow; Adam at its EoS step size on the digits MLP reaches it at step
      2, its early ``nu`` being tiny, VRAdam there stays just under it): scipy's ``BDF``
      (variable order 1-5, Shampine & Reichelt 1997, *The MATLAB ODE suite*, SIAM J. Sci.
      Comput. 18(1)), one solver **per
      batch row** so that the stiffest row sets no one else's step, kept across units (its
      step-size and order history; ``dense_output`` at the integer times), same tolerances.
      Its Jacobian ``d/dz [F_nu(z), k(g^2 - nu)]`` is exact: ``torch.func.jacfwd`` of the
      row's field (the preconditioned Hessian ``-eta P^-1 H`` and the state couplings: one
      forward-over-reverse product per coordinate of ``w``, the state's columns at the fixed
      gradient, :meth:`_row`), its Newton systems solved by
      :class:`_SchurBDF`.  It starts at RK45's last accepted step (nothing thrown away).
      Measured (both rows, 50 steps): Adam ~10-11 s of which the implicit part ~8 s (~490
      BDF steps, ~21 Jacobians, ~107 factorisations: right-hand sides 3.1 s, Jacobians 2.0 s,
      factorisations 1.7 s, solves 0.8 s); with a dense LU per row BDF took ~15 s,
      LSODA ~12 s, Radau ~26 s.  Implicit from the first step instead costs more (Adam 14.9 s;
      RMSProp, never stiff here, 5.5 s against 4.4 s with RK45), so the switch is automatic,
      on the stiffness RK45 detects.

    A row whose state stops being finite, or whose solver fails, is marked (``status[b]``: the
    step and the reason) and reads NaN from then on; the others go on.
    """

    name = "stable"

    def __init__(self, opt, problem, z0, nu0, horizon=None, rtol=STABLE_RTOL, atol=STABLE_ATOL):
        self.opt, self.problem, self.z, self.nu = opt, problem, z0, nu0
        self.rtol, self.atol, self.nfev, self.t = rtol, atol, 0, 0
        self.horizon = horizon
        self.keys = list(z0.keys())
        self.shapes = [z0[k].shape for k in self.keys]
        self.alive = np.ones(problem.B, dtype=bool)
        self.status = ["ran"] * problem.B
        self.solvers = None       # per-row BDF solvers once stiff
        self.rk = None            # the RK45 solver while not stiff
        self.implicit_from, self.frac = None, 0.0
        self.stats = {"jacobians": 0, "factorisations": 0, "implicit_steps": 0}

    @property
    def blown(self) -> bool:
        """Every row stopped (diverged or failed)."""
        return not self.alive.any()

    def w(self) -> torch.Tensor:
        """The current ``w``, NaN in rows that stopped."""
        w = self.z["w"].clone()
        w[torch.as_tensor(~self.alive, device=w.device)] = float("nan")
        return w

    def _pack(self, z, nu):
        parts = [z[k].reshape(-1) for k in self.keys] + ([] if nu is None else [nu.reshape(-1)])
        return torch.cat(parts).cpu().numpy()

    def _unpack(self, y):
        t = torch.as_tensor(y, dtype=torch.float64, device=self.z["w"].device)
        out, i = {}, 0
        for k, s in zip(self.keys, self.shapes):
            n = int(np.prod(s))
            out[k] = t[i:i + n].reshape(s)
            i += n
        nu = None if self.nu is None else t[i:].reshape(self.nu.shape)
        return Z(out), nu

    def _rhs(self, _t, y):
        self.nfev += 1
        if self.nfev > MAX_STABLE_NFEV:  # stiff: stop inside the solver, never after it
            raise _Stiff
        z, nu = self._unpack(y)
        f, g = self.opt.F(self.problem, self.name, z, _root(nu))
        dnu = None if nu is None else self.opt.k * (nu_forcing(self.opt.space, g, g, _OPS) - nu)
        return self._pack(f, dnu)

    def step(self):
        if self.blown:
            return
        if self.solvers is None and not self._explicit():
            self._start_implicit()
        if self.solvers is not None:
            self._implicit()
        self.t += 1

    def _explicit(self) -> bool:
        """Advance all rows (one ODE) to ``t + 1`` with one scipy ``RK45`` kept across units
        (dense output at the integer times); False when stiff or failed.  When stiff, the
        state is left at RK45's last accepted step ``self.t + self.frac``, where the implicit
        solver takes over (no work is thrown away)."""
        from scipy.integrate import RK45

        T = self.t + 1
        if self.rk is None:
            self.rk = RK45(self._rhs, float(self.t), self._pack(self.z, self.nu), self._t_end(),
                           rtol=self.rtol, atol=self.atol)
        s = self.rk
        # RK45 has no evaluation cap; a stiff unit (per-component preconditioner with a tiny
        # nu) otherwise runs for hours: the count per unit is enforced inside (``_rhs`` raises)
        self.nfev = 0
        try:
            while s.status == "running" and s.t < T:
                s.step()
        except _Stiff:  # raised inside a trial step: s.t, s.y are the last accepted
            if s.t > self.t and np.all(np.isfinite(s.y)):
                self.z, self.nu = self._unpack(s.y)
                self.frac = float(s.t - self.t)
            return False
        if s.t < T or not np.all(np.isfinite(s.y)):
            return False
        y = s.dense_output()(T) if s.t > T else s.y
        if not np.all(np.isfinite(y)):
            return False
        self.z, self.nu = self._unpack(y)
        return True

    def _t_end(self) -> float:
        return float(self.horizon if self.horizon is not None else 10**9)

    # ---------------------------------------------------------------- implicit, per row
    def _row(self, b):
        """The packed state ``y = (w, D)`` of row ``b``, its field and the field's Jacobian.

        ``field(y)`` is :func:`theory.rod_flow.phase_map` of the rule plus ``nu``'s ODE.  The
        Jacobian's ``w`` columns are ``torch.func.jacfwd`` through the gradient (forward over
        reverse: ``-eta P^-1 H`` and the state's ``H`` couplings); its ``D`` columns (momentum,
        ``nu``), where the gradient is fixed, are ``jacfwd`` of the same map at that gradient --
        exact, and ~3x cheaper than differentiating the gradient along every coordinate.
        """
        opt, B = self.opt, self.problem.B
        vals = {k: (v[b:b + 1] if torch.is_tensor(v) and v.dim() and v.shape[0] == B else v)
                for k, v in opt.values.items()}
        P = self.z["w"].shape[1]
        sizes = [self.z[k].shape[1] for k in self.keys[1:]] + ([] if self.nu is None else
                                                             [self.nu.shape[1]])
        gradf = torch.func.grad(self.problem.loss_fn)
        keys, space, k_nu, has_nu = self.keys[1:], opt.space, opt.k, self.nu is not None

        def at(w, rest, g):
            parts = torch.split(rest, sizes)
            z = {"w": w[None], **{k: p[None] for k, p in zip(keys, parts)}}
            nu = parts[-1][None] if has_nu else None
            f, g2 = phase_map(space, vals, lambda _w: g[None], _OPS, _root(nu))(z)
            out = [f["w"][0]] + [f[k][0] for k in keys]
            if has_nu:
                out.append((k_nu * (nu_forcing(space, g2, g2, _OPS) - nu))[0])
            return torch.cat(out)

        def field(y):
            return at(y[:P], y[P:], gradf(y[:P]))

        def jacobian(y):
            w, rest = y[:P], y[P:]
            Jw = torch.func.jacfwd(lambda v: at(v, rest, gradf(v)))(w)
            if not rest.numel():
                return Jw
            g = gradf(w)
            JD = torch.func.jacfwd(lambda r: at(w, r, g))(rest)
            return torch.cat([Jw, JD], dim=1)

        y = torch.cat([self.z[k][b] for k in self.keys] + ([self.nu[b]] if has_nu else []))
        return y, field, jacobian

    def _start_implicit(self):
        p, dev = self.problem, self.z["w"].device
        self.implicit_from, self.solvers = self.t, [None] * p.B
        t_end = self._t_end()
        for b in np.flatnonzero(self.alive):
            y0, field, jac = self._row(b)
            n = y0.numel()

            def rhs(_t, y, field=field):
                p.count(self.name, "gradients", 1 / p.B)
                return field(torch.as_tensor(y, device=dev)).cpu().numpy()

            def J(_t, y, jac=jac):
                p.count(self.name, "hvps", p.P / p.B)  # the w columns: one HVP each
                self.stats["jacobians"] += 1
                return jac(torch.as_tensor(y, device=dev)).cpu().numpy()

            y0 = y0.cpu().numpy()
            atol = np.full(n, self.atol)
            if self.nu is not None:
                m = self.nu.shape[1]
                atol[-m:] = np.maximum(self.rtol * 1e-3 * np.abs(y0[-m:]), 1e-300)
            self.solvers[b] = _SchurBDF(rhs, self.t + self.frac, y0, t_end, self.z["w"].shape[1],
                                        rtol=self.rtol, atol=atol, jac=J)

    def _implicit(self):
        T = float(self.t + 1)
        rows = {}
        for b in np.flatnonzero(self.alive):
            s = self.solvers[b]
            msg, raised = None, False
            try:
                while s.status == "running" and s.t < T:
                    msg = s.step()  # scipy: None, or why the step failed
                    self.stats["implicit_steps"] += 1
            except (ValueError, np.linalg.LinAlgError, RuntimeError) as e:  # singular, NaN
                msg, raised = str(e), True
            if raised or s.t < T:
                self._stop(b, f"solver failed in step {self.t} -> {self.t + 1} (t = {s.t:.4g}): "
                              f"{msg or 'stopped'}")
                continue
            y = s.dense_output()(T) if s.t > T else s.y
            if not np.all(np.isfinite(y)):
                self._stop(b, f"diverged (non-finite state) at step {self.t + 1}")
                continue
            rows[b] = y
        self.stats["factorisations"] = sum(s.nlu for s in self.solvers if s is not None)
        if not rows:
            return
        z = {k: v.clone() for k, v in self.z.items()}
        nu = None if self.nu is None else self.nu.clone()
        for b, y in rows.items():
            yt = torch.as_tensor(y, dtype=torch.float64, device=self.z["w"].device)
            i = 0
            for k in self.keys:
                n = z[k].shape[1]
                z[k][b] = yt[i:i + n]
                i += n
            if nu is not None:
                nu[b] = yt[i:]
        self.z, self.nu = Z(z), nu

    def _stop(self, b, why):
        self.alive[b] = False
        self.status[b] = why


class Central:
    """Central flow (Cohen, Damian et al., ICLR 2025) for GD, scalar RMSProp and RMSProp, in the
    conventions of the authors' code: Euler with ``dt = 1/4``; every substep the top effective
    eigenpairs, the critical ones (``S_eff > 1.95``), the third-derivative contractions
    ``grad(u_i^T H u_j)``, the linearised next-substep constraint ``U^T(2P - H)U >= 0`` and its
    SDCP (:mod:`empirics.central_flow_sdcp`; ``sdcp`` one of ``SDCP_MODES``), then
    ``dw/dt = -P^{-1}[g + 1/2 sum X_ij grad(u_i^T H u_j)]`` and ``nu``'s ODE with the
    oscillation's second moment."""

    name = "central"

    def __init__(self, opt, problem, z0, nu0, dt=CENTRAL_DT, sdcp="auto"):
        if opt.space.name not in CENTRAL_OPTIMIZERS:
            raise ValueError(f"central flow is defined here for {', '.join(CENTRAL_OPTIMIZERS)}")
        if sdcp not in SDCP_MODES:
            raise ValueError(f"sdcp must be one of {', '.join(SDCP_MODES)}, got {sdcp!r}")
        have = cvxpy_available()
        if sdcp == "sdcp" and not have:
            raise ImportError("sdcp='sdcp' needs cvxpy: pip install 'momentumlab[sdcp]'")
        self.opt, self.problem, self.w, self.nu, self.dt = opt, problem, z0["w"], nu0, dt
        self.mode = sdcp
        # "sdcp": cvxpy on every row (no full-rank shortcut), so it is an independent path
        self.solver = SDCPSolver(interior=sdcp != "sdcp") if have and sdcp != "one" else None
        self.notes = CentralNotes(sdcp, have, solver=self.solver)
        self.n_track = 1   # eigenpairs tracked by LOBPCG (large P), see _retrack
        self.V = None
        B = problem.B
        self.X = torch.zeros(B, 0, 0, dtype=torch.float64, device=self.w.device)
        self.lam = torch.zeros(B, 0, dtype=torch.float64, device=self.w.device)

    def step(self):
        for _ in range(round(1 / self.dt)):
            self._substep()

    def _retrack(self, lam):
        """The authors' rule: track every effective eigenvalue above ``TRACK_THRESHOLD`` (one more
        while all tracked exceed it; one fewer when the last two are both below it)."""
        if bool((lam[:, -1] > TRACK_THRESHOLD).all()) and self.n_track < self.problem.P // 5:
            self.n_track += 1
        elif self.n_track > 1 and bool((lam[:, -2] < TRACK_THRESHOLD).all()):
            self.n_track -= 1

    def _pdiag(self):
        """The diagonal of ``P``: ``1/eta`` (GD) or ``sqrt(nu)/eta``."""
        eta = self.opt.values["lr"]
        return 1 / eta if self.nu is None else torch.sqrt(self.nu) / eta

    def _substep(self):
        p, h, opt = self.problem, self.dt, self.opt
        w = self.w
        pdiag = self._pdiag()
        if p.P <= 64:
            g, lam, U, contract = p.dense_curvature(w, pdiag, self.name)
        else:
            g = p.grad(w, self.name)
            lam, U, self.V = p.eigenpairs(w, self.n_track, pdiag, warm=self.V)
            if self.solver is not None:  # more tracked pairs only serve the SDCP
                self._retrack(lam)
            contract = lambda k: p.third_contractions(w, U[:, :, :k])  # noqa: E731
        crit = (lam > SDCP_THRESHOLD).sum(dim=1)
        self.notes.critical.update(crit.tolist())
        if self.solver is None:  # the one-eigenvalue closed form on the top eigenvalue
            crit = crit.clamp(max=1)
        k = int(crit.max())
        Uk = U[:, :, :k]
        G = contract(k)
        p.count(self.name, "hvps", k + k * (k + 1) // 2)
        sm = opt.space.second_moment
        lin = assemble(g, lam[:, :k], Uk, G, pdiag.expand_as(w) if sm == "component" else
                       pdiag, h, nu=self.nu, second_moment=sm, k_nu=opt.k, eta=opt.values["lr"])
        X = solve_rows(lin, crit.tolist(), self.solver, closed_form_for_one=self.mode != "sdcp")
        dw, dnu = lin.velocity(X)
        self.w = w + h * dw
        if self.nu is not None:
            self.nu = self.nu + h * dnu
        self.X, self.lam = X, lam[:, :k]

    def predicted_loss(self, loss):
        """``L(w) + 1/2 <Sigma, H> = L + 1/2 tr(X diag(lam))`` (time-averaged loss)."""
        return loss + 0.5 * torch.einsum("bii,bi->b", self.X, self.lam)


# ------------------------------------------------------------------ the race
def onset_step(amplitude: np.ndarray, level: float, after: int = 0):
    """First step ``>= after`` with ``amplitude > level`` (per batch row), or -1."""
    a = np.asarray(amplitude)
    out = []
    for row in a.T:
        idx = np.flatnonzero(row[after:] > level)
        out.append(int(idx[0] + after) if len(idx) else -1)
    return np.asarray(out)


@dataclass
class Race:
    """Trajectories and metrics of one race; arrays are ``(steps + 1, B)`` unless noted."""

    optimizer: str
    hyper: dict
    flows: tuple
    steps: int
    iterates: dict            # flow -> (steps+1, B, P) float64 numpy (rod: predicted w_hat_t)
    loss: dict                # flow -> predicted loss per step
    error: dict               # flow -> ||w_t - w_hat_t||
    centre_error: np.ndarray  # rod: ||(w_t + w_{t+1})/2 - c_w(t)||
    amplitude: dict           # discrete: ||w_{t+1} - 2 w_t + w_{t-1}||/4 ; rod: ||d_w(t)||
    sharpness: np.ndarray     # eta * lambda_max(P^-1 H) of the discrete iterate (nan when skipped)
    threshold: float
    costs: dict
    notes: list = field(default_factory=list)
    rod_centre: np.ndarray | None = None  # rod: c_w(t), (steps+1, B, P)

    def summary(self, onset_level: float = 1e-2) -> dict:
        """Mean errors (all steps, second half, after the discrete onset) and onset steps."""
        T = self.steps
        amp_d = self.amplitude["discrete"]
        crossing = onset_step(np.nan_to_num(self.sharpness, nan=-np.inf), self.threshold)
        after = int(max(crossing.min(), 0))
        onset_d = onset_step(amp_d, onset_level, after=after)
        out = {"threshold_eta_lambda": self.threshold, "sharpness_crossing": crossing.tolist(),
               "onset_level": onset_level,
               "onset": {"discrete": onset_d.tolist()}, "error_all": {}, "error_second_half": {},
               "error_after_onset": {}, "final_error": {}}
        if "rod" in self.amplitude:
            out["onset"]["rod"] = onset_step(self.amplitude["rod"], onset_level, after=after).tolist()
        for f, e in self.error.items():
            e = np.asarray(e)
            out["error_all"][f] = np.nanmean(e, axis=0).tolist()
            out["error_second_half"][f] = np.nanmean(e[T // 2:], axis=0).tolist()
            out["error_after_onset"][f] = [float(np.nanmean(e[o:, b])) if o >= 0 else None
                                           for b, o in enumerate(onset_d)]
            out["final_error"][f] = e[-1].tolist()
        if self.centre_error is not None:
            out["centre_error_second_half"] = np.nanmean(self.centre_error[T // 2:], axis=0).tolist()
        out["costs"] = self.costs
        return out


def race(loss_fn: Callable[[torch.Tensor], torch.Tensor], w0, optimizer: str, hyper: Mapping,
         steps: int, flows: Sequence[str] = FLOWS, *, rate: str = DEFAULT_RATE,
         rod_dt: float = ROD_DT, seed_floor: float = SEED_FLOOR, sharpness_every: int = 1,
         central_sdcp: str = "auto", device="cpu", progress: Callable[[int], None] | None = None) -> Race:
    """Run ``flows`` from ``w0`` for ``steps`` optimizer steps of ``optimizer`` (see module doc).

    ``loss_fn`` maps a flat float64 tensor ``(P,)`` to a scalar (pure: it is vmapped);
    ``w0`` is ``(P,)`` or ``(B, P)``; ``hyper`` holds the optimizer's hyperparameters
    (:data:`theory.rod_flow.SPACES`), ``lr`` a number or a list of ``B`` step sizes;
    ``central_sdcp`` (:data:`empirics.central_flow_sdcp.SDCP_MODES`): "auto" solves the central
    flow's SDCP with cvxpy when two or more eigenvalues are critical (closed form for one; the
    top eigenvalue only, with a note, without cvxpy), "sdcp" always with cvxpy, "one" the
    one-eigenvalue closed form on the top eigenvalue.
    Returns a :class:`Race`; ``Race.summary()`` gives the error and onset table.
    """
    unknown = [f for f in flows if f not in FLOWS]
    if unknown:
        raise ValueError(f"unknown flow(s) {unknown}; known: {', '.join(FLOWS)}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    device = torch.device(device)
    lr = torch.as_tensor(hyper.get("lr", get_space(optimizer).defaults["lr"]), dtype=torch.float64)
    w0 = torch.as_tensor(w0, dtype=torch.float64, device=device)
    B = max(lr.numel(), 1 if w0.dim() == 1 else w0.shape[0])
    w0 = w0.reshape(1, -1).expand(B, -1).clone() if w0.dim() == 1 else w0
    problem = _Problem(loss_fn, B, w0.shape[1], device)
    opt = _Optimizer(optimizer, hyper, B, device, rate)
    notes = []
    flows = tuple(flows)
    if "central" in flows and optimizer not in CENTRAL_OPTIMIZERS:
        notes.append(f"central flow is defined (Cohen, Damian et al.) here only for "
                     f"{', '.join(CENTRAL_OPTIMIZERS)}: skipped for {optimizer}")
        flows = tuple(f for f in flows if f != "central")
    z0 = opt.z0(w0)
    g0 = problem.grad(w0, "setup")
    nu0 = opt.nu0(g0)
    disc = Discrete(opt, problem, z0, nu0)
    procs = {"discrete": disc}
    # the first discrete step defines the rod's initial condition
    z1 = disc.next()[0]
    if "rod" in flows:
        procs["rod"] = Rod(opt, problem, z0, z1, nu0, rod_dt, seed_floor)
    if "central" in flows:
        procs["central"] = Central(opt, problem, z0, nu0, sdcp=central_sdcp)
    if "stable" in flows:
        procs["stable"] = Stable(opt, problem, z0, nu0, horizon=steps)
    problem.counts.clear()
    P = w0.shape[1]
    W = {f: np.full((steps + 2, B, P), np.nan) for f in procs}
    loss = {f: np.full((steps + 1, B), np.nan) for f in procs}
    rod_c = np.full((steps + 1, B, P), np.nan)
    rod_amp = np.full((steps + 1, B), np.nan)
    sharp = np.full((steps + 1, B), np.nan)
    seconds = dict.fromkeys(procs, 0.0)
    thr = threshold_value(optimizer, **{k: v for k, v in hyper.items() if k != "lr"})

    def record(t):
        w = disc.z["w"]
        W["discrete"][t] = w.cpu().numpy()
        loss["discrete"][t] = problem.loss(w).cpu().numpy()
        if "rod" in procs:
            r = procs["rod"]
            W["rod"][t] = r.predicted(t).cpu().numpy()
            cw, dw = r.c["w"], r.d["w"]
            loss["rod"][t] = (0.5 * (problem.loss(cw + dw) + problem.loss(cw - dw))).cpu().numpy()
            rod_c[t] = cw.cpu().numpy()
            rod_amp[t] = torch.sqrt((dw * dw).sum(dim=1)).cpu().numpy()
        if "stable" in procs:
            s = procs["stable"]
            if not s.blown:
                W["stable"][t] = s.w().cpu().numpy()
                loss["stable"][t] = problem.loss(s.w()).cpu().numpy()
        if "central" in procs:
            c = procs["central"]
            W["central"][t] = c.w.cpu().numpy()
            loss["central"][t] = c.predicted_loss(problem.loss(c.w)).cpu().numpy()
        if sharpness_every and t % sharpness_every == 0:
            sharp[t] = _eff_sharpness(problem, opt, disc)

    for t in range(steps + 1):
        record(t)
        if t == steps:
            break
        for f, proc in procs.items():
            t0 = time.process_time()
            proc.step()
            seconds[f] += time.process_time() - t0
        if progress is not None:
            progress(t + 1)
    W["discrete"][steps + 1] = disc.next()[0]["w"].cpu().numpy()
    wd = W["discrete"]
    err = {f: np.linalg.norm(W[f][:steps + 1] - wd[:steps + 1], axis=-1) for f in procs if f != "discrete"}
    centre = None
    if "rod" in procs:
        centre = np.linalg.norm((wd[:steps + 1] + wd[1:steps + 2]) / 2 - rod_c, axis=-1)
    amp = {"discrete": np.full((steps + 1, B), np.nan)}
    amp["discrete"][1:] = np.linalg.norm(wd[2:steps + 2] - 2 * wd[1:steps + 1] + wd[:steps], axis=-1) / 4
    if "rod" in procs:
        amp["rod"] = rod_amp
    costs = {}
    base = max(seconds["discrete"], 1e-12)
    for f in procs:
        cnt = problem.counts.get(f, {"gradients": 0, "hvps": 0})
        costs[f] = {"gradients_per_step": cnt["gradients"] / steps, "hvps_per_step": cnt["hvps"] / steps,
                    "cpu_seconds": seconds[f], "time_ratio": seconds[f] / base}
    if "central" in procs:
        eig = problem.counts.get("central_eig", {})
        notes.extend(procs["central"].notes.lines())
        costs["central"]["sdcp"] = procs["central"].notes.summary()
        costs["central"]["eigen_hvps_per_step"] = eig.get("hvps", 0) / steps
        costs["central"]["eigen_unconverged_fraction"] = eig.get("unconverged", 0) / max(eig.get("solves", 0), 1)
    hyper_out = {k: (v.tolist() if torch.is_tensor(v) else v) for k, v in hyper.items()}
    if "stable" in procs:
        st = procs["stable"]
        costs["stable"].update(solver="explicit RK45" if st.implicit_from is None else
                               f"RK45, then per-row BDF from step {st.implicit_from} (stiff)",
                               implicit_from_step=st.implicit_from, status=list(st.status), **st.stats)
        if st.implicit_from is not None:
            notes.append(f"stable flow stiff at step {st.implicit_from} (RK45 past {MAX_STABLE_NFEV} "
                         f"evaluations in a unit step): per-row implicit BDF from there")
        notes.extend(f"stable flow, row {b}: {why}" for b, why in enumerate(st.status) if why != "ran")
    return Race(optimizer, hyper_out, tuple(procs), steps, W, loss, err, centre, amp, sharp, thr,
                costs, notes, rod_centre=rod_c if "rod" in procs else None)


#: steps from the discrete onset over which the rod's oscillation parity is read
PARITY_WINDOW = 10


def parity_aligned(r: Race, starts, window: int = PARITY_WINDOW):
    """The rod's predicted iterates with the oscillation's parity aligned at each run's onset.

    The rod predicts ``w_hat_t = c(t) - (-1)^t d(t)``; which end of the rod the iterate sits on
    at even steps is set by the sign of the oscillation's seed when the flip mode starts to
    grow -- a rounding-level quantity for GD itself, like the onset step (reference
    ``rod-flow.md``, pitfalls).  So the parity belongs to onset alignment, and tracking after the
    onset is judged with it aligned: per row ``b`` with start ``o = starts[b]``, the rod agrees
    when ``sum_{t=o}^{o+window-1} <w_t - c_t, w_hat_t - c_t> >= 0``; otherwise its other end,
    ``2 c - w_hat = c + (-1)^t d``, is used from the first step on (one sign per run, read from
    the onset window only).  Returns ``(aligned (steps+1, B, P), agrees (B,) bool)``.
    """
    if r.rod_centre is None:
        raise ValueError("parity_aligned needs a race with the rod flow")
    w = r.iterates["discrete"][:r.steps + 1]
    hat, c = r.iterates["rod"][:r.steps + 1], r.rod_centre
    agrees = np.ones(w.shape[1], dtype=bool)
    for b, o in enumerate(starts):
        o = int(max(o, 0))
        sl = slice(o, o + window)
        agrees[b] = float(np.nansum((w[sl, b] - c[sl, b]) * (hat[sl, b] - c[sl, b]))) >= 0
    aligned = np.where(agrees[None, :, None], hat, 2 * c - hat)
    return aligned, agrees


def _eff_sharpness(problem, opt, disc) -> np.ndarray:
    """``eta * lambda_max(P^{-1} H)`` of the discrete iterate (``P = sqrt(nu_t)``; 1 without nu),
    as ``lambda_max(P^{-1/2} H P^{-1/2})`` by :meth:`_Problem.top_eig` (warm-started)."""
    w = disc.z["w"]
    eta = opt.values["lr"].reshape(-1)
    nu = disc.nu
    scale = None if nu is None else nu.expand_as(w) ** -0.25
    ok = torch.isfinite(w).all(dim=1)
    if scale is not None:
        ok &= torch.isfinite(scale).all(dim=1)
    if not bool(ok.all()):  # a diverged iterate or nu = 0: no sharpness
        return np.full(problem.B, np.nan)
    lam, vec = problem.top_eig(w, getattr(problem, "_sharp_warm", None), scale, "sharpness")
    problem._sharp_warm = vec
    return (eta * lam).cpu().numpy()


# ------------------------------------------------------------------ toy problems
def berthier_minimal(zeta: float = 1.0, eps: float = 0.01):
    """Berthier (arXiv 2609.01034) eq. 4.1: ``f = 1/2 (y + zeta x) x^2 + eps (-x - y)``, valley
    ``x = 0`` with sharpness ``y``; progressive sharpening at rate ``eta eps`` per step."""

    def f(w):
        x, y = w[0], w[1]
        return 0.5 * (y + zeta * x) * x**2 - eps * (x + y)

    return f


def berthier_codim2(eps: float = 0.01):
    """Berthier Fig. 2: ``g = 1/2 x^T H[y] x + 1/2 (x1^3 + x2^3)``, ``H[y] = [[y1, y3/sqrt2],
    [y3/sqrt2, y2]]``, ``h = -x1 - 2 y1 - y2 - y3``; ``w = (x1, x2, y1, y2, y3)``."""
    r = 1 / math.sqrt(2)

    def f(w):
        x1, x2, y1, y2, y3 = w[0], w[1], w[2], w[3], w[4]
        g = 0.5 * (y1 * x1**2 + 2 * r * y3 * x1 * x2 + y2 * x2**2) + 0.5 * (x1**3 + x2**3)
        return g + eps * (-x1 - 2 * y1 - y2 - y3)

    return f


def quartic_valley(eps: float = 0.01, q: float = 1.0):
    """This project's toy: ``f = 1/2 y x^2 (1 - q x^2/6) - eps y``, a sharp coordinate whose
    curvature falls quartically away from the valley.

    The valley ``x = 0`` sharpens as ``y`` grows (rate ``eta eps``); the oscillation's force
    ``-1/2 x^2 (1 - q x^2/3)`` on ``y`` stabilises it, with a symmetric (no cubic) landscape,
    so the centre has no drift across the valley (unlike Berthier's ``zeta x^3``).
    """

    def f(w):
        x, y = w[0], w[1]
        return 0.5 * y * x**2 * (1 - q * x**2 / 6) - eps * y

    return f


#: toy name -> (loss factory, w0, steps (full), steps (quick), eps quick); Berthier's settings
TOYS = {
    "minimal": (berthier_minimal, (0.3, 5.5), 2500, 500, 0.06),
    "codim2": (berthier_codim2, (0.05, 0.05, 5.0, 5.0, 0.0), 2500, 500, 0.06),
    "quartic_valley": (quartic_valley, (0.3, 5.5), 2500, 500, 0.06),
}


def toy(name: str, quick: bool = False):
    """``(loss_fn, w0, steps)`` of toy ``name`` (full: the reference's settings, eps = 0.01)."""
    if name not in TOYS:
        raise KeyError(f"unknown toy {name!r}; known: {', '.join(TOYS)}")
    make, w0, full, fast, eps_q = TOYS[name]
    return make(eps=eps_q if quick else 0.01), torch.tensor(w0, dtype=torch.float64), \
        fast if quick else full


# ------------------------------------------------------------------ networks on digits
class SmallCNN(torch.nn.Module):
    """``8x8 digit -> Conv2d(1, c, 3) -> tanh -> Linear(c*36, 10)``: a small CNN for the race."""

    def __init__(self, channels: int = 4):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, channels, 3)
        self.head = torch.nn.Linear(channels * 36, 10)

    def forward(self, x):
        h = torch.tanh(self.conv(x.reshape(-1, 1, 8, 8)))
        return self.head(h.flatten(1))


NETWORKS = ("mlp", "cnn")
#: the eight optimizers of arXiv 2605.06821, then VRAdam and TAM
PAPER_AND_PROJECT = ("heavy_ball", "nesterov", "scalar_rmsprop", "rmsprop", "scalar_adam", "adam",
                     "scalar_nadam", "nadam", "vradam", "tam")
#: step size per optimizer on the digits MLP (width 8, n = 64, eps = 0), chosen by scanning
#: the discrete run's preconditioned sharpness over 60 steps (seed 0, a few step sizes each): heavy ball, Nesterov, TAM and GD
#: cross the threshold from below inside the run; the adaptive methods sit at theirs from the
#: first steps (Adam and VRAdam at ~0.9 of 38/eta, as Cohen et al. 2022 report).  Nesterov,
#: RMSProp and TAM re-scanned over initialisations 0-7 (50 steps, discrete only): at 0.45,
#: 0.004 and 1.0 only 3-4 of 8 reached their EoS inside the race; at 0.55, 0.006 and 1.4 all 8
#: do, none diverging (Nesterov at 0.65 diverges for some)
NETWORK_DEFAULT_LR = {"gd": 0.7, "heavy_ball": 1.0, "nesterov": 0.55, "scalar_rmsprop": 0.8,
                      "rmsprop": 0.006, "scalar_adam": 12.0, "adam": 0.12, "scalar_nadam": 6.0,
                      "nadam": 0.01, "vradam": 0.12, "tam": 1.4}


def network(kind: str = "mlp", n: int = 200, width: int = 16, seeds: Sequence[int] = (0,),
            device="cpu"):
    """``(loss_fn, w0)`` for full-batch MSE on the first ``n`` digits: the tanh MLP of
    ``momentumlab eos`` (:class:`empirics.models.TanhMLP`, depth 2) or :class:`SmallCNN`.

    ``loss_fn`` maps the flat float64 parameter vector to ``mean_i 1/2 ||f(x_i) - y_i||^2``
    (one-hot targets); ``w0`` is ``(len(seeds), P)``, one initialisation per seed.  The MLP reads
    only the pixels that vary over the ``n`` samples: a pixel constant there (zero after
    standardisation, at the border) leaves its first-layer weights with zero gradient and zero
    Hessian at every step, hence ``nu = 0`` and an undefined preconditioner ``P^{-1} H`` for
    every adaptive optimizer (``eps = 0``).
    """
    from momentumlab.empirics.data import digits
    from momentumlab.empirics.models import TanhMLP

    if kind not in NETWORKS:
        raise KeyError(f"unknown network {kind!r}; known: {', '.join(NETWORKS)}")
    x, y = digits(device=device, n=n)
    if kind == "mlp":  # pixels constant over the n samples feed weights with g = 0 and H = 0
        x = x[:, (x != x[:1]).any(dim=0)]  # forever: nu = 0 for every adaptive optimizer
    target = torch.nn.functional.one_hot(y, 10).to(torch.float64)
    inits = []
    for s in seeds:
        torch.manual_seed(s)
        model = (TanhMLP(d_in=x.shape[1], width=width) if kind == "mlp" else SmallCNN())
        model = model.to(torch.float64).to(device)
        inits.append(torch.cat([p.detach().reshape(-1) for p in model.parameters()]))
    names = [nm for nm, _ in model.named_parameters()]
    shapes = [p.shape for p in model.parameters()]
    sizes = [int(np.prod(s)) for s in shapes]

    def loss_fn(w):
        params = {nm: t.reshape(sh) for nm, t, sh in zip(names, torch.split(w, sizes), shapes)}
        out = torch.func.functional_call(model, params, (x,))
        return 0.5 * ((out - target) ** 2).sum(dim=1).mean()

    return loss_fn, torch.stack(inits)
