"""The central flow with several critical eigenvalues: the semidefinite complementarity problem.

Cohen, Damian et al., "Understanding optimization in deep learning with central flows" (ICLR
2025), written in the conventions of the authors' code (``centralflows`` ``src/flows.py``,
recorded in ``shared/reference/rod-flow.md`` section 6).  With the preconditioner ``P``
(``P = I/eta`` for GD, ``sqrt(nu)/eta`` for RMSProp, ``sqrt(nu)/eta I`` for scalar RMSProp), the
effective Hessian ``P^{-1} H`` and its *critical* eigenpairs ``H U = P U diag(lambda)``,
``U^T P U = I`` (``lambda > SDCP_THRESHOLD = 1.95``), the oscillation covariance is
``Sigma = U X U^T`` with ``X >= 0`` (k x k), and one Euler substep of length ``dt`` is

    dw/dt   = -P^{-1} [ g + 1/2 sum_ij X_ij grad_w(u_i^T H u_j) ]
    dnu/dt  = k_nu ( g^2 - nu ) + k_nu diag( (HU) X (HU)^T )          (RMSProp; scalar: traces)

with ``X`` chosen so that the stability matrix ``A = 2P - H``, linearised one substep ahead and
restricted to ``span U``, stays positive semidefinite, with complementary slackness:

    next_A(X) = U^T A U + dt U^T (dA/dt) U = alpha + beta[X],   alpha = diag(2 - lambda) + dt(...)
    X >= 0,   alpha + beta[X] >= 0,   <X, alpha + beta[X]> = 0.

``beta`` is (up to the optimizer's ``dP/dt`` term) the Gram operator
``beta[X]_ij = dt/2 <grad(u_i^T H u_j), P^{-1} sum_kl X_kl grad(u_k^T H u_l)>``, positive
semidefinite, so the SDCP is the convex program ``min_{X >= 0} 1/2 <X, beta[X]> + <alpha, X>``
(its KKT conditions are the three lines above), solved here with cvxpy (Clarabel), an optional
dependency (``pip install momentumlab[sdcp]``).  As in the authors' code, ``beta`` is symmetrised
and its negative eigenvalues (possible only through RMSProp's ``dP/dt`` term) clipped.

With one critical eigenvalue the SDCP is the scalar problem ``X = max(0, -alpha/beta)`` -- the
one-eigenvalue closed form; it is used for ``k = 1`` (and for every ``k`` without cvxpy, on the top
eigenvalue only, which :class:`CentralNotes` reports together with how many eigenvalues were
critical).  tests/empirics/test_central_flow_sdcp.py checks that cvxpy's solution of the ``k = 1``
problem, and the assembly itself, reduce to that closed form.
"""
from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import torch

__all__ = ["SDCP_THRESHOLD", "SDCP_MODES", "cvxpy_available", "SDCPSolver", "Linearisation",
           "assemble", "solve_rows", "one_eigenvalue_x", "CentralNotes"]

#: effective eigenvalues above this enter the SDCP (the authors' ``sdcp_threshold``)
SDCP_THRESHOLD = 1.95
#: "auto": cvxpy for k >= 2 critical eigenvalues when installed, else the top one;
#: "sdcp": cvxpy for every k >= 1 (needs cvxpy); "one": the top eigenvalue only (closed form)
SDCP_MODES = ("auto", "sdcp", "one")


def cvxpy_available() -> bool:
    """Whether the optional dependency cvxpy imports."""
    try:
        import cvxpy  # noqa: F401
    except ImportError:
        return False
    return True


# ------------------------------------------------------------------ the linearised problem
@dataclass
class Linearisation:
    """One substep's SDCP data and the parts of the velocity linear in ``X`` (batched rows).

    ``alpha`` ``(B, k, k)``, ``beta`` ``(B, k, k, k, k)`` (``next_A_ij = alpha_ij + sum_kl
    beta_ijkl X_kl``), ``dw_stable`` ``(B, P)``, ``dw_x`` ``(B, k, k, P)``, ``dnu_stable`` and
    ``dnu_x`` (``None`` for GD).
    """

    alpha: torch.Tensor
    beta: torch.Tensor
    dw_stable: torch.Tensor
    dw_x: torch.Tensor
    dnu_stable: torch.Tensor | None = None
    dnu_x: torch.Tensor | None = None

    def velocity(self, X: torch.Tensor):
        """``(dw/dt, dnu/dt)`` at the covariance ``X`` ``(B, k, k)``."""
        dw = self.dw_stable + torch.einsum("bkl,bklp->bp", X, self.dw_x)
        dnu = None if self.dnu_stable is None else \
            self.dnu_stable + torch.einsum("bkl,bklp->bp", X, self.dnu_x)
        return dw, dnu

    def next_a(self, X: torch.Tensor) -> torch.Tensor:
        """``alpha + beta[X]``: the linearised ``U^T (2P - H) U`` one substep ahead."""
        return self.alpha + torch.einsum("bijkl,bkl->bij", self.beta, X)


def assemble(g, lam, U, G, pdiag, dt, *, nu=None, second_moment=None, k_nu=None,
             eta=None) -> Linearisation:
    """The linearised next-step constraint of the authors' code, restricted to ``span U``.

    ``g`` ``(B, P)``; ``lam`` ``(B, k)`` effective eigenvalues; ``U`` ``(B, P, k)`` with
    ``U^T P U = I``; ``G`` ``(B, k, k, P)`` = ``grad_w(u_i^T H u_j)``; ``pdiag`` ``(B, P)`` or
    ``(B, 1)``: the diagonal of ``P``.  For RMSProp (``second_moment`` "component" or "scalar")
    ``nu``, the rate ``k_nu`` and ``eta`` give ``P = sqrt(nu)/eta`` and its derivative
    ``dP/dt = dnu/dt / (2 eta sqrt(nu))``, with ``dnu/dt`` including the oscillation's
    ``1/2 grad_g^2 f[(HU) X (HU)^T]`` (``f = k_nu (g^2 - nu)``).
    """
    k = lam.shape[1]
    dw_stable = -g / pdiag
    dw_x = -0.5 * G / pdiag[:, None, None, :]
    dH_stable = torch.einsum("bijp,bp->bij", G, dw_stable)
    dH_x = torch.einsum("bijp,bklp->bijkl", G, dw_x)
    alpha = torch.diag_embed(2 - lam) - dt * dH_stable
    beta = -dt * dH_x
    dnu_stable = dnu_x = None
    if second_moment is not None:
        HU = pdiag[:, :, None] * U * lam[:, None, :]
        if second_moment == "component":
            dnu_stable = k_nu * (g * g - nu)
            dnu_x = k_nu * torch.einsum("bpk,bpl->bklp", HU, HU)
        else:
            dnu_stable = k_nu * ((g * g).sum(dim=1, keepdim=True) - nu)
            dnu_x = k_nu * torch.einsum("bpk,bpl->bkl", HU, HU)[..., None]
        P = g.shape[1]
        dP = (1 / (2 * eta * torch.sqrt(nu))).expand(-1, P)      # dP/dnu per coordinate
        # U^T (dP/dt) U: the part without X and the part linear in X (scalar nu: broadcast)
        alpha = alpha + 2 * dt * torch.einsum("bpi,bpj,bp->bij", U, U,
                                              dP * dnu_stable.expand(-1, P))
        beta = beta + 2 * dt * torch.einsum("bpi,bpj,bp,bklp->bijkl", U, U, dP,
                                            dnu_x.expand(-1, k, k, P))
    return Linearisation(alpha, beta, dw_stable, dw_x, dnu_stable, dnu_x)


# ------------------------------------------------------------------ the solvers
def one_eigenvalue_x(alpha: float, beta: float) -> float:
    """The 1 x 1 SDCP ``X >= 0, alpha + beta X >= 0, X (alpha + beta X) = 0`` (``beta > 0``):
    ``X = max(0, -alpha / beta)``.

    With ``alpha < 0`` and ``beta <= 0`` no ``X >= 0`` holds the sharpness at the threshold (the
    oscillation cannot lower it: e.g. a network whose tanh units saturate once GD has diverged,
    where the sharpness has no gradient); the central flow is undefined from there and the row
    ends: NaN.
    """
    if alpha >= 0:
        return 0.0
    if not beta > 0:
        return math.nan
    return -alpha / beta


class SDCPSolver:
    """``min_{X >= 0} 1/2 <X, beta[X]> + <alpha, X>`` with cvxpy, several independent rows at once.

    ``beta`` is scaled to unit RMS, symmetrised as a ``k^2 x k^2`` matrix, and factored
    ``beta = L L^T`` with negative eigenvalues clipped (as the authors' ``SDCPSolver``); the
    rows are independent blocks of one compiled problem per ``(rows, k)``, solved by Clarabel
    (an interior-point conic solver shipped with cvxpy), falling back to SCS.

    With ``interior`` (default) a row is first tried at the full-rank candidate
    ``alpha + beta[X] = 0`` (a linear system on the ``k(k+1)/2`` entries of a symmetric X, the
    same symmetrised, clipped ``beta``): when that ``X`` is positive semidefinite it satisfies all
    three KKT conditions exactly, so it is the solution (every critical direction at the edge --
    the usual state at the edge of stability), and cvxpy runs only for the other rows.
    """

    def __init__(self, solver: str = "CLARABEL", interior: bool = True):
        import cvxpy as cp

        self.cp, self.solver, self._problems, self.interior = cp, solver, {}, interior
        self.solves, self.seconds, self.clipped, self.interior_solutions = 0, 0.0, 0, 0

    def _problem(self, n, k):
        if (n, k) not in self._problems:
            cp = self.cp
            A = [cp.Parameter((k, k), symmetric=True) for _ in range(n)]
            L = [cp.Parameter((k * k, k * k)) for _ in range(n)]
            X = [cp.Variable((k, k), PSD=True) for _ in range(n)]
            obj = sum(0.5 * cp.sum_squares(l.T @ cp.vec(x, order="F")) + cp.sum(cp.multiply(a, x))
                      for a, l, x in zip(A, L, X))
            self._problems[(n, k)] = (cp.Problem(cp.Minimize(obj)), A, L, X)
        return self._problems[(n, k)]

    def __call__(self, alpha: np.ndarray, beta: np.ndarray) -> np.ndarray:
        """``X`` ``(k, k)`` for one ``alpha`` ``(k, k)`` and ``beta`` ``(k, k, k, k)``."""
        return self.rows(alpha[None], beta[None])[0]

    def rows(self, alpha: np.ndarray, beta: np.ndarray) -> np.ndarray:
        """``X`` ``(n, k, k)`` for ``alpha`` ``(n, k, k)``, ``beta`` ``(n, k, k, k, k)`` (float64);
        rows with ``alpha >= 0`` get ``X = 0`` (complementary) without a solve."""
        n, k = alpha.shape[:2]
        alpha = (alpha + np.swapaxes(alpha, 1, 2)) / 2
        out = np.zeros((n, k, k))
        todo = [r for r in range(n) if np.linalg.eigvalsh(alpha[r]).min() < 0]
        if not todo:
            return out
        t0 = time.process_time()
        factors = {}
        for r in todo:
            M = beta[r].reshape(k * k, k * k)
            size = float(np.sqrt(np.mean(M**2))) or 1.0
            M = M / size
            ev, V = np.linalg.eigh((M + M.T) / 2)
            if ev.min() < -1e-12 * max(abs(ev).max(), 1.0):
                self.clipped += 1
            L = V * np.sqrt(np.clip(ev, 0, None))
            x = _interior(alpha[r], size * (L @ L.T)) if self.interior else None
            if x is not None:
                out[r] = x
                self.interior_solutions += 1
            else:
                factors[r] = (size, L)
        todo = list(factors)
        if not todo:
            self.seconds += time.process_time() - t0
            return out
        prob, A, Lp, X = self._problem(len(todo), k)
        sizes = []
        for i, r in enumerate(todo):
            size, L = factors[r]
            A[i].value, Lp[i].value = alpha[r], L
            sizes.append(size)
        try:
            prob.solve(solver=self.solver, tol_gap_abs=1e-10, tol_gap_rel=1e-10, tol_feas=1e-10)
        except Exception:  # pragma: no cover - Clarabel failure: the first-order solver
            prob.solve(solver="SCS", eps=1e-10)
        for i, r in enumerate(todo):
            x = np.asarray(X[i].value, dtype=np.float64) / sizes[i]
            ev, V = np.linalg.eigh((x + x.T) / 2)
            out[r] = (V * np.clip(ev, 0, None)) @ V.T
        self.solves += len(todo)
        self.seconds += time.process_time() - t0
        return out


def _interior(alpha: np.ndarray, M: np.ndarray) -> np.ndarray | None:
    """The symmetric ``X`` with ``alpha + mat(M vec X) = 0`` if it exists and is ``>= 0``, else
    None (``M`` ``(k^2, k^2)`` acting on column-major ``vec X``)."""
    k = alpha.shape[0]
    iu, ju = np.triu_indices(k)
    E = np.zeros((k * k, len(iu)))          # upper entries -> vec of the symmetric matrix
    E[ju * k + iu, np.arange(len(iu))] = 1
    E[iu * k + ju, np.arange(len(iu))] = 1
    sys = (M @ E)[ju * k + iu]
    if np.linalg.cond(sys) > 1e10:
        return None
    x = np.linalg.solve(sys, -alpha[iu, ju])
    X = np.zeros((k, k))
    X[iu, ju] = x
    X[ju, iu] = x
    if np.linalg.eigvalsh(X).min() < 0:
        return None
    return X


def solve_rows(lin: Linearisation, ks, solver: SDCPSolver | None,
               closed_form_for_one: bool = True) -> torch.Tensor:
    """``X`` ``(B, k, k)``: row ``b`` solves the SDCP on its leading ``ks[b]`` eigenpairs
    (``alpha`` and ``beta`` are pairwise in the eigenvectors, so the leading block is the problem
    with only those); ``k = 1`` by the closed form (or by ``solver`` when
    ``closed_form_for_one`` is false), ``k >= 2`` by ``solver``, rows of equal ``k`` together."""
    B, k = lin.alpha.shape[:2]
    X = np.zeros((B, k, k))
    a = lin.alpha.detach().cpu().numpy()
    b = lin.beta.detach().cpu().numpy()
    groups = {}
    for r, kb in enumerate(int(x) for x in ks):
        if kb == 1 and (solver is None or closed_form_for_one):
            X[r, 0, 0] = one_eigenvalue_x(float(a[r, 0, 0]), float(b[r, 0, 0, 0, 0]))
        elif kb >= 1:
            groups.setdefault(kb, []).append(r)
    for kb, rows in groups.items():
        X[rows, :kb, :kb] = solver.rows(a[rows][:, :kb, :kb], b[rows][:, :kb, :kb, :kb, :kb])
    return torch.as_tensor(X, dtype=lin.alpha.dtype, device=lin.alpha.device)


@dataclass
class CentralNotes:
    """What the central flow did: critical-eigenvalue counts per substep and row, the solver."""

    mode: str
    have_cvxpy: bool
    critical: Counter = field(default_factory=Counter)
    solver: SDCPSolver | None = None

    def lines(self) -> list[str]:
        seen = max(self.critical) if self.critical else 0
        hist = ", ".join(f"{k}: {n}" for k, n in sorted(self.critical.items()))
        out = [f"central flow: critical eigenvalues (S_eff > {SDCP_THRESHOLD}) per substep and "
               f"row -> count: {hist or 'none'}"]
        if self.mode == "one" and seen > 1:
            out.append(f"central flow restricted to the top eigenvalue (one-eigenvalue closed "
                       f"form) although up to {seen} were critical")
        elif not self.have_cvxpy and seen > 1:
            out.append(f"cvxpy is not installed: the central flow used the one-eigenvalue closed "
                       f"form although up to {seen} eigenvalues were critical (pip install "
                       f"'momentumlab[sdcp]' for the SDCP)")
        elif self.solver is not None and (self.solver.solves or self.solver.interior_solutions):
            out.append(f"central flow SDCP: {self.solver.interior_solutions} full-rank (interior) "
                       f"solutions, {self.solver.solves} cvxpy solves, "
                       f"{self.solver.seconds:.2f} CPU s"
                       + (f", {self.solver.clipped} with beta clipped to PSD" if self.solver.clipped
                          else ""))
        return out

    def summary(self) -> dict:
        return {"mode": self.mode, "cvxpy": self.have_cvxpy,
                "critical_count_histogram": {str(k): n for k, n in sorted(self.critical.items())},
                "max_critical": max(self.critical) if self.critical else 0,
                "sdcp_solves": 0 if self.solver is None else self.solver.solves,
                "sdcp_interior_solutions": 0 if self.solver is None else self.solver.interior_solutions,
                "sdcp_cpu_seconds": 0.0 if self.solver is None else self.solver.seconds}
