"""Stochastic nonconvex objectives with known constants (L, gradient bound R, F*).

Each objective is ``F(x) = (1/M) sum_i f_i(x)`` over shipped data (scikit-learn's
``load_diabetes``, ``load_breast_cancer``, ``load_digits``: nothing is downloaded);
the stochastic gradient is ``grad f_i(x)`` with ``i`` uniform, so it is unbiased.
The constants are the assumptions of Défossez et al. (TMLR 2022, Sec. 2.3) and
of :mod:`theory.convergence`:

* ``L``: a rigorous bound on the Lipschitz constant of ``grad F`` (a bound on
  ``sup_x ||Hess F(x)||_2``), derived in each class docstring;
* ``R_g``: a bound on ``||grad f_i(x)||_inf`` for every ``i`` and every ``x``
  (the theorem's ``R`` is ``R_g + sqrt(eps)``);
* ``F_star = 0``: every loss is nonnegative, so 0 is a lower bound of ``inf F``
  (the bound uses ``F(x0) - F_star``, which only grows when ``F_star`` is lowered).

All methods take ``x`` with any leading batch axes ``(..., d)`` (seeds, draws of
``tau``) and use closed-form gradients, so that 100+ seeds run as one tensor
computation.  ``lambda_max(A^T A / M)`` is computed in float64 by
``numpy.linalg.eigvalsh`` and inflated by ``1 + 1e-9`` against round-off.
"""
from __future__ import annotations

import functools
import math

import numpy as np
import torch

__all__ = ["Objective", "RobustRegression", "SigmoidClassifier", "TanhNetwork",
           "PseudoHuberToy", "OBJECTIVES", "get_objective", "SAFETY"]

SAFETY = 1 + 1e-9
#: ``max |tanh''| = 4/(3 sqrt 3)`` and ``max |sigma''| = 1/(6 sqrt 3)`` (attained at
#: ``tanh = 1/sqrt 3`` and ``sigma = 1/2 - 1/(2 sqrt 3)``).
TANH2_MAX = 4 / (3 * math.sqrt(3))
SIGMOID2_MAX = 1 / (6 * math.sqrt(3))


def _standardise(x: np.ndarray, clip: float | None = None) -> np.ndarray:
    z = (x - x.mean(axis=0)) / (x.std(axis=0) + 1e-12)
    return np.clip(z, -clip, clip) if clip is not None else z


def _with_bias(z: np.ndarray) -> np.ndarray:
    return np.concatenate([z, np.ones((len(z), 1))], axis=1)


def _lambda_max(a: np.ndarray) -> float:
    """Largest eigenvalue of ``A^T A / M`` (float64), inflated by :data:`SAFETY`."""
    return float(np.linalg.eigvalsh(a.T @ a / len(a)).max()) * SAFETY


class Objective:
    """Base class: data ``A`` (M, p), the constants, and ``value``/``full_grad``/``stochastic_grad``."""

    name = "objective"
    data = ""
    L_derivation = ""
    R_derivation = ""

    def __init__(self, device="cpu", dtype=torch.float64):
        self.device, self.dtype = torch.device(device), dtype
        self.F_star = 0.0

    def _t(self, x) -> torch.Tensor:
        return torch.as_tensor(x, dtype=self.dtype, device=self.device)

    # interface -----------------------------------------------------------
    def value(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def full_grad(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def stochastic_grad(self, x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        """``grad f_{idx}(x)``: ``x`` (S, d), ``idx`` (S,) sample indices, one per row."""
        raise NotImplementedError

    def sample_indices(self, steps: int, seeds: int, gen: torch.Generator) -> torch.Tensor:
        """``(steps, seeds)`` indices, uniform over the ``M`` samples (unbiased gradients)."""
        return torch.randint(self.M, (steps, seeds), generator=gen, device=gen.device)

    # constants -------------------------------------------------------------
    @functools.cached_property
    def F_x0(self) -> float:
        return float(self.value(self.x0))

    def R(self, eps: float) -> float:
        """The theorem's ``R``: ``||g||_inf <= R - sqrt(eps)`` (Défossez et al. 2022, Sec. 2.3)."""
        return self.R_g + math.sqrt(eps)

    def constants(self, eps: float = 1e-8) -> dict:
        return {"name": self.name, "data": self.data, "d": self.d, "M": self.M, "L": self.L,
                "R_g": self.R_g, "R": self.R(eps), "F_star": self.F_star, "F_x0": self.F_x0,
                "delta": self.F_x0 - self.F_star, "L_derivation": self.L_derivation,
                "R_derivation": self.R_derivation}

    def theorem_constants(self, eps: float) -> dict:
        """The keyword arguments of :func:`theory.convergence.adam_bound_value`."""
        return {"d": self.d, "L": self.L, "R": self.R(eps), "delta": self.F_x0 - self.F_star}


class _Linear(Objective):
    """Shared by the linear models: ``A`` (M, d) with a bias column, targets ``b``."""

    def _setup(self, a: np.ndarray, b: np.ndarray):
        self.A, self.b = self._t(a), self._t(b)
        self.M, self.d = a.shape
        self.lam_max = _lambda_max(a)
        self.a_inf = float(np.abs(a).max())
        self.x0 = torch.zeros(self.d, dtype=self.dtype, device=self.device)

    def _margins(self, x):
        return x @ self.A.T  # (..., M)


class RobustRegression(_Linear):
    """Cauchy (Lorentzian) regression on diabetes: ``f_i(x) = log(1 + (a_i.x - b_i)^2)``.

    ``phi(r) = log(1 + r^2)``: ``phi' = 2r/(1+r^2)`` in ``[-1, 1]``, ``phi'' =
    2(1-r^2)/(1+r^2)^2`` in ``[-1/4, 2]`` (nonconvex for ``|r| > 1``).
    ``Hess F = (1/M) sum phi''(r_i) a_i a_i^T`` so ``|u^T Hess F u| <= 2 u^T(A^T A/M)u``:
    ``L = 2 lambda_max(A^T A/M)``; ``grad f_i = phi'(r_i) a_i`` so ``R_g = max |a_ij|``.
    Data: 442 x 10 features z-scored, target z-scored, bias column: ``d = 11``.
    """

    name = "robust_regression"
    data = "sklearn load_diabetes, 442 x (10 + bias), z-scored features and target"
    L_derivation = "2 lambda_max(A^T A / M)  (|phi''| <= 2)"
    R_derivation = "max_ij |a_ij|  (|phi'| <= 1)"

    def __init__(self, device="cpu", dtype=torch.float64):
        super().__init__(device, dtype)
        from sklearn.datasets import load_diabetes

        x, y = load_diabetes(return_X_y=True)
        self._setup(_with_bias(_standardise(x)), (y - y.mean()) / y.std())
        self.L = 2 * self.lam_max
        self.R_g = self.a_inf

    def value(self, x):
        r = self._margins(self._t(x)) - self.b
        return torch.log1p(r * r).mean(-1)

    def full_grad(self, x):
        r = self._margins(self._t(x)) - self.b
        return (2 * r / (1 + r * r)) @ self.A / self.M

    def stochastic_grad(self, x, idx):
        a = self.A[idx]
        r = (a * x).sum(-1) - self.b[idx]
        return (2 * r / (1 + r * r)).unsqueeze(-1) * a


class SigmoidClassifier(_Linear):
    """Sigmoid-loss linear classifier on breast cancer: ``f_i(x) = sigma(-y_i a_i.x)``.

    ``psi(z) = sigma(-z)``: ``|psi'| = sigma(z) sigma(-z) <= 1/4``, ``|psi''| <=
    1/(6 sqrt 3)``; bounded, nonconvex.  ``L = lambda_max(A^T A/M)/(6 sqrt 3)``,
    ``R_g = max |a_ij| / 4``.  Data: 569 x 30 features z-scored and clipped to
    ``[-3, 3]``, bias column, labels ``+-1``: ``d = 31``.
    """

    name = "sigmoid_classifier"
    data = "sklearn load_breast_cancer, 569 x (30 + bias), z-scored, clipped to [-3, 3]"
    L_derivation = "lambda_max(A^T A / M) / (6 sqrt 3)  (|sigma''| <= 1/(6 sqrt 3))"
    R_derivation = "max_ij |a_ij| / 4  (|sigma'| <= 1/4)"

    def __init__(self, device="cpu", dtype=torch.float64):
        super().__init__(device, dtype)
        from sklearn.datasets import load_breast_cancer

        x, y = load_breast_cancer(return_X_y=True)
        self._setup(_with_bias(_standardise(x, clip=3.0)), 2.0 * y - 1.0)
        self.L = self.lam_max * SIGMOID2_MAX
        self.R_g = self.a_inf / 4

    def value(self, x):
        return torch.sigmoid(-self.b * self._margins(self._t(x))).mean(-1)

    def full_grad(self, x):
        z = self.b * self._margins(self._t(x))
        s = torch.sigmoid(z)
        return (-(s * (1 - s)) * self.b) @ self.A / self.M

    def stochastic_grad(self, x, idx):
        a, y = self.A[idx], self.b[idx]
        s = torch.sigmoid(y * (a * x).sum(-1))
        return (-(s * (1 - s)) * y).unsqueeze(-1) * a


class TanhNetwork(Objective):
    """One hidden tanh layer with fixed output signs, logistic loss, on digits (even vs odd).

    ``h(a) = (1/J) sum_j c_j tanh(w_j.a)`` with ``c_j = (-1)^j`` fixed (trained: ``W``,
    ``d = J p``); ``f_i = log(1 + exp(-s y_i h(a_i)))``, ``s`` a margin scale.
    ``|l'| <= s``, ``|l''| <= s^2/4``, ``|tanh'| <= 1``, ``|tanh''| <= 4/(3 sqrt 3)``.
    ``U^T Hess f_i U = l'' (sum_j c_j tanh'_j u_j.a/J)^2 + l' sum_j c_j tanh''_j (u_j.a)^2/J``
    ``<= (s^2/4 + s 4/(3 sqrt 3)) sum_j (u_j.a)^2 / J`` (Cauchy-Schwarz on the first sum);
    averaging over ``i``: ``L = (s^2/4 + 4s/(3 sqrt 3)) lambda_max(A^T A/M) / J``.
    ``grad_{w_j} f_i = l' (c_j/J) tanh'(w_j.a) a``: ``R_g = s max|a_ij| / J``.
    Data: 1,797 digits, 64 pixels z-scored, projected on the top ``p - 1 = 8`` principal
    components, z-scored and clipped to ``[-3, 3]``, bias column; ``J = 3``: ``d = 27``.
    """

    name = "tanh_network"
    data = "sklearn load_digits, 1797 x (8 PCA + bias), even vs odd; 3 tanh units, fixed output signs"
    L_derivation = "(s^2/4 + 4 s/(3 sqrt 3)) lambda_max(A^T A / M) / J"
    R_derivation = "s max_ij |a_ij| / J"

    def __init__(self, device="cpu", dtype=torch.float64, hidden: int = 3, components: int = 8,
                 scale: float = 2.0):
        super().__init__(device, dtype)
        from sklearn.datasets import load_digits

        x, y = load_digits(return_X_y=True)
        z = _standardise(x)
        _, _, vt = np.linalg.svd(z, full_matrices=False)
        a = _with_bias(_standardise(z @ vt[:components].T, clip=3.0))
        self.A, self.b = self._t(a), self._t(np.where(y % 2 == 0, 1.0, -1.0))
        self.M, self.p = a.shape
        self.J, self.s = hidden, scale
        self.d = self.J * self.p
        self.c = self._t([(-1.0) ** j for j in range(self.J)])
        self.lam_max = _lambda_max(a)
        self.L = (scale**2 / 4 + scale * TANH2_MAX) * self.lam_max / self.J
        self.R_g = scale * float(np.abs(a).max()) / self.J
        gen = np.random.default_rng(0)
        self.x0 = self._t(0.5 * gen.standard_normal(self.d))

    def _forward(self, x, a):
        """``x`` (..., d), ``a`` (..., n, p) or (n, p) -> hidden tanh (..., n, J) and output h."""
        w = x.reshape(*x.shape[:-1], self.J, self.p)
        t = torch.tanh(a @ w.transpose(-1, -2))
        return w, t, (t * self.c).mean(-1)

    def value(self, x):
        x = self._t(x)
        _, _, h = self._forward(x, self.A)
        return torch.nn.functional.softplus(-self.s * self.b * h).mean(-1)

    def full_grad(self, x):
        x = self._t(x)
        _, t, h = self._forward(x, self.A)
        dl_dh = -self.s * self.b * torch.sigmoid(-self.s * self.b * h)  # (..., M)
        coef = dl_dh.unsqueeze(-1) * (self.c / self.J) * (1 - t * t)  # (..., M, J)
        grad = coef.transpose(-1, -2) @ self.A / self.M  # (..., J, p)
        return grad.reshape(*x.shape[:-1], self.d)

    def stochastic_grad(self, x, idx):
        a, y = self.A[idx], self.b[idx]  # (S, p), (S,)
        w = x.reshape(-1, self.J, self.p)
        t = torch.tanh((w * a.unsqueeze(1)).sum(-1))  # (S, J)
        h = (t * self.c).mean(-1)
        dl_dh = -self.s * y * torch.sigmoid(-self.s * y * h)
        coef = dl_dh.unsqueeze(-1) * (self.c / self.J) * (1 - t * t)  # (S, J)
        return (coef.unsqueeze(-1) * a.unsqueeze(1)).reshape(x.shape)


class PseudoHuberToy(Objective):
    """1-D ``F(x) = c (sqrt(1 + x^2) - 1)`` with two-point gradient noise: ``f_i = F + xi_i x``.

    ``xi_i = +-s`` with probability 1/2 (``M = 2``): unbiased, ``|grad f_i| <= c + s = R_g``;
    ``F'' = c (1+x^2)^(-3/2) <= c = L``; ``F >= 0 = F_star``; convex.  Used to show that
    VRAdam's gate, which depends on the current gradient, can make the expected step point
    uphill (see ``theory.convergence``, the gate counterexample).
    """

    name = "pseudo_huber_toy"
    data = "synthetic: 1-D pseudo-Huber with +-s gradient noise"
    L_derivation = "c  (F'' = c (1+x^2)^(-3/2))"
    R_derivation = "c + s"

    def __init__(self, device="cpu", dtype=torch.float64, c: float = 2.5, s: float = 2.0,
                 x0: float = 0.0):
        super().__init__(device, dtype)
        self.c, self.s = c, s
        self.M, self.d = 2, 1
        self.xi = self._t([s, -s])
        self.L, self.R_g = c, c + s
        self.x0 = self._t([x0])

    def value(self, x):
        x = self._t(x)[..., 0]
        return self.c * (torch.sqrt(1 + x * x) - 1)

    def full_grad(self, x):
        x = self._t(x)
        return self.c * x / torch.sqrt(1 + x * x)

    def stochastic_grad(self, x, idx):
        return self.full_grad(x) + self.xi[idx].unsqueeze(-1)


#: the objectives of the convergence check (the toy is a counterexample, not one of them)
OBJECTIVES = {cls.name: cls for cls in (RobustRegression, SigmoidClassifier, TanhNetwork)}


@functools.lru_cache(maxsize=16)
def get_objective(name: str, device: str = "cpu") -> Objective:
    """A cached instance of the objective ``name`` (including ``pseudo_huber_toy``) on ``device``."""
    cls = {**OBJECTIVES, PseudoHuberToy.name: PseudoHuberToy}[name]
    return cls(device=device)
