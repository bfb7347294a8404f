"""TAM and AdaTAM: momentum damped by the alignment of the new gradient with the momentum.

Malviya, Mordido, Baratin, Babanezhad Harikandeh, Dziugaite, Pascanu, Chandar,
"Torque-Aware Momentum", arXiv 2412.18790 (2024), Sec. 3.  No authors' code
is public; the update rules are :func:`theory.rules.tam` and
:func:`theory.rules.adatam`, which the tests run against these classes.

The widely used ``pytorch_optimizer.TAM`` / ``AdaTAM`` (kozistr) do not take a
cosine: they multiply the dim-0-normalised momentum and gradient *elementwise*
and never sum, so each "correlation" entry is about ``1/rows`` and the damping
stays near 1/2 whatever the angle (see the README and the tests).
"""
from __future__ import annotations

import torch

from momentumlab.empirics.optim import cuda
from momentumlab.empirics.optim._base import (DEVICE_OPS, Bucket, MomentumlabOptimizer, acc_dtype,
                                              check_betas, check_choice, check_flag, check_real,
                                              scope_sums)
from momentumlab.theory.rules import _tam_damping

__all__ = ["TAM", "AdaTAM"]

COSINE_SCOPES = ("tensor", "global")
#: torch's fused SGD kernel: float32 and float64 only.  For bfloat16 and float16 (torch 2.12.1,
#: 2.13.0) it skips its vectorised blocks and corrupts the momentum buffer (garbage or NaN).
_FUSED_DTYPES = (torch.float32, torch.float64)


class _Torque(MomentumlabOptimizer):
    """Shared by TAM and AdaTAM: phase 1 computes the cosine and the damping."""

    _moment = "momentum_buffer"

    def _validate_common(self, group):
        name = type(self).__name__
        check_real(name, "lr", group["lr"])
        check_real(name, "decay", group["decay"], 0.0, 1.0, hi_open=True)
        check_real(name, "eps", group["eps"])
        check_real(name, "weight_decay", group["weight_decay"])
        check_choice(name, "cosine_scope", group["cosine_scope"], COSINE_SCOPES)

    @staticmethod
    def _scope(b: Bucket):
        return "global" if b.group["cosine_scope"] == "global" else None

    def _prepare(self, buckets):
        """``(m.g, |m|^2, |g|^2)`` per tensor, summed over the cosine's scope in the canonical
        order of :func:`scope_sums` (every path gets the same bits); then ``s_hat`` and ``d``
        for all tensors of a bucket at once (a few ops per bucket, not per tensor)."""
        witnesses = []
        for b in buckets:
            if self._compiled(b.group, b.params):
                sign = -1.0 if b.group["maximize"] else 1.0
                terms = cuda.alignment_terms([s[self._moment] for s in b.states], b.grads, sign)
                b.extra["terms"] = terms
                witnesses.append(terms[:, 2])
                continue
            acc = acc_dtype(b.dtype)
            parts = []
            for state, g in zip(b.states, b.grads):
                mf, gf = state[self._moment].reshape(-1), g.reshape(-1)
                if mf.dtype != acc:
                    mf, gf = mf.to(acc), gf.to(acc)
                # sums of squares by vecdot: multi-threaded, unlike vector_norm
                parts += [torch.dot(mf, gf), torch.linalg.vecdot(mf, mf), torch.linalg.vecdot(gf, gf)]
            terms = torch.stack(parts).view(-1, 3)
            if b.group["maximize"]:
                terms[:, 0].neg_()
            b.extra["terms"] = terms
            witnesses.append(terms[:, 2])
        shared = scope_sums(buckets, "terms", self._scope)
        for b in buckets:
            h, acc = b.group, acc_dtype(b.dtype)
            terms = b.extra["terms"]
            if self._scope(b) is not None:
                terms = shared["global"].to(b.device, acc).expand_as(terms)
            # the rule's cosine, EMA and damping, for all tensors of the bucket at once
            s_prev = {"s_hat": torch.stack([st["s_hat"] for st in b.states]).to(acc)}
            s_hat, d = _tam_damping(terms.unbind(1), s_prev, h, DEVICE_OPS)
            b.extra["s_hat"] = s_hat.unbind()
            b.extra["coef"] = h["eps"] + d
        return witnesses

    def _init_common(self, p, state):
        state["s_hat"] = torch.zeros((), dtype=acc_dtype(p.dtype), device=p.device)

    def _damped_momentum(self, b: Bucket, beta: float):
        """``m <- beta m + (eps + d) g`` (``-g`` when maximising); stores ``s_hat``."""
        ms = [s[self._moment] for s in b.states]
        torch._foreach_mul_(ms, beta)
        value = -1.0 if b.group["maximize"] else 1.0
        coefs = b.extra["coef"].to(b.dtype)
        for i, (m, g, state, s_hat) in enumerate(zip(ms, b.grads, b.states, b.extra["s_hat"])):
            m.addcmul_(g, coefs[i], value=value)
            state["s_hat"] = s_hat
        return ms


class TAM(_Torque):
    r"""Torque-aware momentum (arXiv 2412.18790, Sec. 3).

    .. math::
        s_t = \cos(m_{t-1}, g_t),\quad \hat s_t = \gamma\hat s_{t-1} + (1-\gamma)s_t,\quad
        d_t = \tfrac{1 + \hat s_t}{2},\quad m_t = \beta m_{t-1} + (\epsilon + d_t) g_t,\quad
        w \leftarrow w(1 - \eta\lambda) - \eta m_t .

    ``momentum`` :math:`\beta`, ``decay`` :math:`\gamma` (the correlation's
    EMA), ``eps`` :math:`\epsilon`, ``weight_decay`` :math:`\lambda`
    (decoupled).  A gradient aligned with the momentum keeps heavy-ball
    momentum (:math:`d \to 1`); an opposed one is damped (:math:`d \to 0`).
    The cosine is one scalar per parameter tensor (``cosine_scope="tensor"``,
    default) or over all parameters (``"global"``); the paper leaves the scope
    open.  Choices the paper leaves open: :math:`m_0 = 0` (so :math:`s_1 = 0`
    and :math:`d_1 = 1/2`) and :math:`\hat s_0 = 0`; ``pytorch_optimizer``
    instead starts from :math:`m_0 = g_1`.  ``lr`` defaults to 1e-3 as
    ``torch.optim.SGD``; with uncorrelated gradients :math:`d \approx 1/2`, so
    TAM moves about half as far as SGD with momentum at the same ``lr``.
    ``state["s_hat"]`` holds :math:`\hat s_t` per tensor.
    ``fused`` (default on the CPU for float32 and float64; refused for bfloat16 and
    float16, whose fused SGD kernel in torch 2.13 corrupts the momentum buffer):
    the momentum and parameter update run in torch's fused SGD kernel, one call per tensor with dampening
    :math:`1 - (\epsilon + d_t)`, whose value is read from the CPU (no device
    to synchronise); on CUDA the ``torch._foreach_*`` path keeps :math:`d_t` on
    the device.  Extras as in :class:`AdamP`.
    Dtypes and the CUDA path: as every class of :mod:`empirics.optim` (its module docstring).
    """

    def __init__(self, params, lr=1e-3, momentum=0.9, decay=0.9, eps=1e-8, weight_decay=0.0, *,
                 cosine_scope="tensor", maximize=False, foreach=None, fused=None, nonfinite="raise"):
        defaults = dict(lr=lr, momentum=momentum, decay=decay, eps=eps, weight_decay=weight_decay,
                        cosine_scope=cosine_scope, maximize=maximize, foreach=foreach, fused=fused)
        super().__init__(params, defaults, nonfinite)

    def _validate_group(self, group):
        self._validate_common(group)
        check_real("TAM", "momentum", group["momentum"], 0.0, 1.0, hi_open=True)
        if group["fused"] and not self._compiled(group, group["params"]) and any(
                p.device.type != "cpu" or p.dtype not in _FUSED_DTYPES for p in group["params"]):
            raise ValueError("TAM: fused=True needs float32 or float64 parameters on the CPU (torch's "
                             "fused SGD kernel corrupts bfloat16/float16 momentum) or CUDA "
                             "parameters with Triton; use fused=False")

    @staticmethod
    def _fused(b: Bucket) -> bool:
        flag, h = b.group["fused"], b.group
        if b.device.type != "cpu":
            return False
        if flag is None:
            flag = b.device.type == "cpu" and b.dtype in _FUSED_DTYPES
        return flag and h["momentum"] > 0

    def _init_state(self, p, state, group):
        state["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        self._init_common(p, state)

    def _apply(self, buckets):
        for b in buckets:
            h = b.group
            if self._compiled(h, b.params):
                cuda.tam_update(b.params, b.grads, [s["momentum_buffer"] for s in b.states],
                                list(b.extra["coef"].unbind()), self._hyper(b, "lr"),
                                self._hyper(b, "weight_decay"),
                                h["momentum"], -1.0 if h["maximize"] else 1.0)
                for state, s_hat in zip(b.states, b.extra["s_hat"]):
                    state["s_hat"] = s_hat
            elif self._fused(b):
                self._fused_step(b)
            else:
                self._apply_in_float32(b, self._eager_step)

    def _eager_step(self, b: Bucket):
        h = b.group
        ms = self._damped_momentum(b, h["momentum"])
        if h["weight_decay"]:
            torch._foreach_mul_(b.params, 1 - h["lr"] * h["weight_decay"])
        torch._foreach_add_(b.params, ms, alpha=-h["lr"])

    @staticmethod
    def _fused_step(b: Bucket):
        """CPU: torch's fused SGD kernel does ``m <- beta m + (1 - tau) g; p <- p - lr m`` in one
        pass; ``tau = 1 - (eps + d)`` is read from the CPU scalar (no device to synchronise)."""
        h = b.group
        if h["weight_decay"]:
            torch._foreach_mul_(b.params, 1 - h["lr"] * h["weight_decay"])
        for p, g, state, c, s_hat in zip(b.params, b.grads, b.states, b.extra["coef"].tolist(),
                                         b.extra["s_hat"]):
            torch._fused_sgd_([p], [g], [state["momentum_buffer"]], weight_decay=0.0,
                              momentum=h["momentum"], lr=h["lr"], dampening=1.0 - c,
                              nesterov=False, maximize=h["maximize"], is_first_step=False)
            state["s_hat"] = s_hat


class AdaTAM(_Torque):
    r"""AdaTAM (arXiv 2412.18790, Sec. 3): TAM's damped first moment with Adam's second moment.

    .. math::
        m_t = \beta_1 m_{t-1} + (\epsilon + d_t) g_t,\quad v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2,
        \quad w \leftarrow w(1 - \eta\lambda) - \eta \frac{m_t}{\sqrt{\hat v_t} + \epsilon},

    with :math:`d_t` as in :class:`TAM` (cosine of :math:`m_{t-1}` and
    :math:`g_t`).  Choices the paper leaves open, documented: the first moment
    has no :math:`(1-\beta_1)` factor (the paper's form, questioned by an
    ICLR reviewer), so in steady state it is about :math:`d/(1-\beta_1)`
    times the gradient and steps are ~5x Adam's at the same ``lr``;
    :math:`m_0 = v_0 = 0`, :math:`\hat s_0 = 0`; no bias correction by default
    (``bias_correction=True`` uses :math:`\hat v_t = v_t/(1-\beta_2^t)`; the
    first moment is not an average, so it is never corrected).  ``eps`` is
    used both in :math:`d_t` and in the denominator.  The decay (AdaTAMW) is
    decoupled.  Extras as in :class:`AdamP`, except ``fused=True``, which is
    refused on the CPU (no torch fused kernel fits the damped first moment).
    Dtypes and the CUDA path: as every class of :mod:`empirics.optim` (its module docstring).
    """

    _moment = "exp_avg"

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), decay=0.9, eps=1e-8, weight_decay=0.0,
                 *, bias_correction=False, cosine_scope="tensor", maximize=False, foreach=None,
                 fused=None, nonfinite="raise"):
        defaults = dict(lr=lr, betas=betas, decay=decay, eps=eps, weight_decay=weight_decay,
                        bias_correction=bias_correction, cosine_scope=cosine_scope,
                        maximize=maximize, foreach=foreach, fused=fused)
        super().__init__(params, defaults, nonfinite)

    def _validate_group(self, group):
        self._validate_common(group)
        if group["fused"] and not self._compiled(group, group["params"]):
            raise ValueError("AdaTAM: fused=True needs CUDA parameters with Triton (the compiled "
                             "path; no torch fused kernel fits AdaTAM's damped first moment); "
                             "use foreach")
        check_betas("AdaTAM", group["betas"])
        check_flag("AdaTAM", "bias_correction", group["bias_correction"])

    def _init_state(self, p, state, group):
        state["step"] = 0
        state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        self._init_common(p, state)

    def _compiled_step(self, b: Bucket):
        h = b.group
        beta1, beta2 = h["betas"]
        bc2 = []
        for state, s_hat in zip(b.states, b.extra["s_hat"]):
            state["step"] += 1
            state["s_hat"] = s_hat
            bc2.append(1 - beta2 ** state["step"] if h["bias_correction"] else 1.0)
        bc2 = self._to_device(bc2, acc_dtype(b.dtype), b.device)
        cuda.adatam_update(b.params, b.grads, [s["exp_avg"] for s in b.states],
                           [s["exp_avg_sq"] for s in b.states], list(b.extra["coef"].unbind()),
                           list(bc2.unbind()),
                           self._hyper(b, "lr"), self._hyper(b, "weight_decay"), beta1, beta2,
                           h["eps"], -1.0 if h["maximize"] else 1.0)

    def _eager_step(self, b: Bucket):
        """A fast copy of :func:`theory.rules.adatam`'s update (persistent buffers), tested
        against the rule in every dtype."""
        h = b.group
        beta1, beta2 = h["betas"]
        ms = self._damped_momentum(b, beta1)
        vs = [s["exp_avg_sq"] for s in b.states]
        torch._foreach_mul_(vs, beta2)
        torch._foreach_addcmul_(vs, b.grads, b.grads, value=1 - beta2)
        denoms = self._scratch(b.params)
        for v, d, state in zip(vs, denoms, b.states):
            state["step"] += 1
            torch.sqrt(v, out=d)
            if h["bias_correction"]:
                d.div_((1 - beta2 ** state["step"]) ** 0.5)
        torch._foreach_add_(denoms, h["eps"])
        if h["weight_decay"]:
            torch._foreach_mul_(b.params, 1 - h["lr"] * h["weight_decay"])
        torch._foreach_addcdiv_(b.params, ms, denoms, value=-h["lr"])
