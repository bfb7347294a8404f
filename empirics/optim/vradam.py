"""VRAdam: Adam whose learning rate falls with the momentum's kinetic energy.

Vaidhyanathan, Schorling, Ares, Osborne, "A Physics-Inspired Optimizer: Velocity
Regularized Adam", arXiv 2505.13196 (ICLR 2026), Algorithm 1; the authors' code
is https://github.com/pranavjv/vradam (``vradam.py``; earlier ``VRADAM.py``).
The update rule is :func:`theory.rules.vradam`, which the tests run against
this class in float64.
"""
from __future__ import annotations


import torch

from momentumlab.empirics.optim import cuda
from momentumlab.empirics.optim._base import (DEVICE_OPS, LOW_PRECISION, Bucket, MomentumlabOptimizer,
                                              acc_dtype, adam_moments_, check_betas, check_choice,
                                              check_real, scope_sums)
from momentumlab.theory.rules import vr_gate

__all__ = ["VRAdam"]

NORM_SCOPES = ("global", "group", "tensor")
GATES = ("velocity", "gradient")
_FUSED_DEVICES = ("cpu", "cuda")
_FUSED_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def _default_fused(p: torch.Tensor) -> bool:
    """torch's fused AdamW kernel by default: CPU in every float dtype; CUDA except float64,
    whose kernel reads a tensor rate as float32 (the foreach path keeps eta in float64)."""
    if p.device.type == "cpu":
        return p.dtype in _FUSED_DTYPES
    return p.device.type == "cuda" and p.dtype in _FUSED_DTYPES and p.dtype != torch.float64


class VRAdam(MomentumlabOptimizer):
    r"""Velocity-regularised Adam (arXiv 2505.13196, Algorithm 1).

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t,\qquad s_t = \beta_2 s_{t-1} + (1-\beta_2) g_t^2,

        \eta_t = \frac{\alpha_0}{1 + \min(\beta_3 \|m_t\|^2,\ \alpha_1)},\qquad
        \theta_t = \theta_{t-1}(1 - \eta_t\lambda)
                   - \eta_t \frac{m_t/(1-\beta_1^t)}{\sqrt{s_t/(1-\beta_2^t)} + \epsilon}.

    ``lr`` is :math:`\alpha_0` (the maximal rate; torch schedulers change it),
    ``beta3`` the velocity penaliser, ``alpha1`` the cap of the penalty (the
    smallest rate is ``lr/(1 + alpha1)``), ``weight_decay`` :math:`\lambda`,
    decoupled and scaled by the *dynamic* :math:`\eta_t` (Alg. 1 l.10).
    :math:`\|m_t\|` is the Euclidean norm of the first moment after this
    step's update and before bias correction, over all parameters of the
    optimizer (paper Sec. 3, "global scalar gate").

    Variants met in the authors' code, as options:

    * ``norm_scope="global"`` (paper; default) | ``"group"`` (the authors'
      ``vradam.py`` loops over ``param_groups``, so several groups get several
      gates) | ``"tensor"`` (a per-tensor gate, as in some ports);
    * ``gate="velocity"`` (paper, ``vradam.py``: ``normgrad=False``) |
      ``"gradient"`` (:math:`\|g_t\|`; ``normgrad=True``, the default of the
      earlier ``VRADAM.py``);
    * ``power`` :math:`p`: the gate uses :math:`\sum|x|^p` (the paper's
      kinetic-energy ablation, Table 4); 2 is the paper.

    The authors' two code versions disagree: ``VRADAM.py`` (commit 5ec6b82)
    has ``lr_cutoff`` (:math:`\alpha_1`) 19 and gates on the gradient,
    ``vradam.py`` (HEAD) has 10 and gates on the velocity; its docstring says
    ``weight_decay=0`` and its signature 1e-5.  Defaults here follow the
    paper and ``vradam.py``: lr 1e-3, betas (0.9, 0.999), beta3 1, alpha1 10,
    eps 1e-8, weight_decay 0, global velocity norm with :math:`p = 2`.

    After each step ``last_eta[i]`` and ``last_norm_sq[i]`` hold, for group
    ``i``, :math:`\eta_t` and :math:`\sum|x|^p` (:math:`\|m_t\|^2`) as device
    tensors -- 0-dim for the global and group scopes, one entry per parameter
    with a gradient for ``"tensor"``; every parameter's state has its own
    ``eta`` and ``norm_sq``.

    Speed: the norm is one reduction per tensor on the device, summed on the
    device in a fixed order, and :math:`\eta_t` never leaves it.  With ``fused``
    (default on the CPU in every float dtype and on CUDA except float64) the Adam
    part is torch's fused AdamW kernel driven with the tensor rate :math:`\eta_t`
    (on CUDA as float32, the type its kernel reads; float64 CUDA parameters take
    the foreach path by default, where :math:`\eta_t` stays float64); ``fused=False`` uses
    ``torch._foreach_*`` kernels (``foreach``, default on CUDA) or a loop over
    tensors.  ``maximize`` ascends; ``nonfinite`` is the policy for NaN/inf
    gradients (``"raise"``: :class:`NonFiniteGradientError` with nothing
    modified; ``"skip"``: the step is skipped and counted in
    ``skipped_steps``; ``"ignore"``: no check, no host synchronisation).
    Sparse gradients and complex parameters are refused.
    Dtypes and the CUDA path: as every class of :mod:`empirics.optim` (its module docstring).
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), beta3=1.0, alpha1=10.0, eps=1e-8,
                 weight_decay=0.0, *, norm_scope="global", gate="velocity", power=2.0,
                 maximize=False, foreach=None, fused=None, nonfinite="raise"):
        defaults = dict(lr=lr, betas=betas, beta3=beta3, alpha1=alpha1, eps=eps,
                        weight_decay=weight_decay, norm_scope=norm_scope, gate=gate, power=power,
                        maximize=maximize, foreach=foreach, fused=fused)
        self.last_eta: list = []
        self.last_norm_sq: list = []
        super().__init__(params, defaults, nonfinite)

    def _validate_group(self, group):
        name = "VRAdam"
        check_real(name, "lr", group["lr"])
        check_betas(name, group["betas"])
        check_real(name, "beta3", group["beta3"])
        check_real(name, "alpha1", group["alpha1"], hi_open=False)  # inf: no cap
        check_real(name, "eps", group["eps"])
        check_real(name, "weight_decay", group["weight_decay"])
        check_real(name, "power", group["power"], 0.0, lo_open=True, hi_open=True)
        check_choice(name, "norm_scope", group["norm_scope"], NORM_SCOPES)
        check_choice(name, "gate", group["gate"], GATES)
        if group["fused"] and any(p.device.type not in _FUSED_DEVICES or p.dtype not in _FUSED_DTYPES
                                  for p in group["params"]):
            raise ValueError("VRAdam: fused=True needs floating-point parameters on CPU or CUDA")

    def __setstate__(self, state):
        super().__setstate__(state)
        self.__dict__.setdefault("last_eta", [])
        self.__dict__.setdefault("last_norm_sq", [])

    def _init_state(self, p, state, group):
        # float32 step on the parameter's device, as torch's fused Adam keeps it
        state["step"] = torch.zeros((), dtype=torch.float32, device=p.device)
        state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)

    # ------------------------------------------------------------ phase 1
    def _penalty_terms(self, b: Bucket) -> list[torch.Tensor]:
        """``sum |x|^p`` per tensor (x = m_t or g_t) without writing any state."""
        h = b.group
        beta1, power, acc = h["betas"][0], h["power"], acc_dtype(b.dtype)
        if power == 2 and self._compiled(h, b.params):
            sign = -1.0 if h["maximize"] else 1.0
            ms = [s["exp_avg"] for s in b.states]
            return list(cuda.vradam_terms(ms, b.grads, beta1, sign, h["gate"] == "velocity").unbind())
        out = []
        low = b.dtype in LOW_PRECISION  # m_t in float32, as the fused kernel computes it
        if h["gate"] == "velocity":
            flat = self._flat_buffer(b.device, acc if low else b.dtype, max(g.numel() for g in b.grads))
        for m_prev, g in zip([s["exp_avg"] for s in b.states], b.grads):
            if h["gate"] == "velocity":
                x = flat[:g.numel()].view(g.shape)
                if low:
                    m_prev, g = m_prev.to(acc), g.to(acc)
                if h["maximize"]:
                    torch.mul(m_prev, beta1, out=x)
                    x.add_(g, alpha=-(1 - beta1))
                else:
                    torch.lerp(m_prev, g, 1 - beta1, out=x)
            else:
                x = g
            if power == 2:  # a multi-threaded sum of squares (vector_norm runs on one thread)
                xf = x.reshape(-1) if x.dtype == acc else x.reshape(-1).to(acc)
                out.append(torch.linalg.vecdot(xf, xf))
            else:
                norm = torch.linalg.vector_norm(x, ord=power, dtype=None if x.dtype == acc else acc)
                out.append(norm ** power)
        return out

    @staticmethod
    def _scope(b: Bucket):
        scope = b.group["norm_scope"]
        return None if scope == "tensor" else "global" if scope == "global" else b.group_index

    def _prepare(self, buckets):
        """Penalty terms per tensor, summed over the norm's scope in the canonical order of
        :func:`scope_sums` (so that every path gets the same bits); then ``eta_t`` per scope."""
        witnesses = []
        for b in buckets:
            terms = torch.stack(self._penalty_terms(b))
            b.extra["terms"] = terms
            witnesses.append(terms)
        sums = scope_sums(buckets, "terms", self._scope)
        for b in buckets:
            key, acc = self._scope(b), acc_dtype(b.dtype)
            n = b.extra["terms"] if key is None else sums[key].to(b.device, acc)
            eta = vr_gate(b.group["lr"], n, b.group, DEVICE_OPS)  # the rule's gate, on the device
            count = len(b.params)
            if key is None:
                b.extra["eta"], b.extra["norm_sq"] = list(eta.unbind()), list(n.unbind())
            else:
                b.extra["eta"], b.extra["norm_sq"] = [eta] * count, [n] * count
        return witnesses

    # ------------------------------------------------------------ phase 2
    @staticmethod
    def _fused_ok(group, params) -> bool:
        flag = group["fused"]
        if flag is None:
            return all(_default_fused(p) for p in params)
        return flag

    def _foreach(self, group, params) -> bool:
        # the fused kernel is multi-tensor: one call per group, device and dtype
        return self._fused_ok(group, params) or super()._foreach(group, params)

    def _use_fused(self, b: Bucket) -> bool:
        return self._fused_ok(b.group, b.params)

    def _apply(self, buckets):
        self.last_eta = [None] * len(self.param_groups)
        self.last_norm_sq = [None] * len(self.param_groups)
        per_group: dict = {}
        for b in buckets:
            steps = []
            for p, state in zip(b.params, b.states):
                if state["step"].device != p.device:
                    state["step"] = state["step"].to(p.device)
                steps.append(state["step"])
            torch._foreach_add_(steps, 1)
            if self._compiled(b.group, b.params):
                h = b.group
                cuda.adam_update(b.params, b.grads, [s["exp_avg"] for s in b.states],
                                 [s["exp_avg_sq"] for s in b.states], steps, b.extra["eta"],
                                 self._hyper(b, "weight_decay"), *h["betas"], h["eps"],
                                 -1.0 if h["maximize"] else 1.0)
            elif self._use_fused(b):
                self._fused_step(b, steps)
            else:
                self._apply_in_float32(b, lambda b32: self._eager_step(b32, steps))
            for state, eta, n, pos in zip(b.states, b.extra["eta"], b.extra["norm_sq"], b.positions):
                state["eta"], state["norm_sq"] = eta, n
                per_group.setdefault(b.group_index, []).append((pos, eta, n))
        for gi, rows in per_group.items():
            rows.sort(key=lambda r: r[0])
            if self.param_groups[gi]["norm_scope"] == "tensor":
                self.last_eta[gi] = torch.stack([r[1] for r in rows])
                self.last_norm_sq[gi] = torch.stack([r[2] for r in rows])
            else:
                self.last_eta[gi], self.last_norm_sq[gi] = rows[0][1], rows[0][2]

    def _fused_step(self, b: Bucket, steps):
        h = b.group
        beta1, beta2 = h["betas"]
        kw = dict(beta1=beta1, beta2=beta2, weight_decay=h["weight_decay"], eps=h["eps"],
                  amsgrad=False, maximize=h["maximize"], grad_scale=None, found_inf=None)
        ms = [s["exp_avg"] for s in b.states]
        vs = [s["exp_avg_sq"] for s in b.states]
        etas = b.extra["eta"]
        if b.device.type == "cuda":
            # the CUDA kernel reads a tensor rate as float32 whatever the parameters' dtype (a
            # float64 eta fails); the CPU kernel reads it with .item() (no device to wait for)
            etas = [e.to(torch.float32) for e in etas] if etas[0].dtype != torch.float32 else etas
        if all(e is etas[0] for e in etas):
            torch._fused_adamw_(b.params, b.grads, ms, vs, [], steps, lr=etas[0], **kw)
        else:
            for i in range(len(b.params)):
                torch._fused_adamw_([b.params[i]], [b.grads[i]], [ms[i]], [vs[i]], [], [steps[i]],
                                    lr=etas[i], **kw)

    def _eager_step(self, b: Bucket, steps):
        """The Adam part with the gated rate.  A fast copy of :func:`theory.rules._adam_direction`
        (persistent buffers, no temporaries), tested against the rule in every dtype."""
        h = b.group
        beta1, beta2 = h["betas"]
        ps, gs = b.params, b.grads
        ms = [s["exp_avg"] for s in b.states]
        vs = [s["exp_avg_sq"] for s in b.states]
        adam_moments_(ms, vs, gs, h["betas"], h["maximize"])
        acc = acc_dtype(b.dtype)
        denoms = self._scratch(ps)
        for v, d in zip(vs, denoms):
            torch.sqrt(v, out=d)
        for p, m, d, step, eta in zip(ps, ms, denoms, steps, b.extra["eta"]):
            t = step.to(acc)
            d.div_(torch.sqrt(1 - torch.pow(beta2, t)))
            d.add_(h["eps"])
            if h["weight_decay"]:
                p.mul_(1 - eta * h["weight_decay"])
            d.div_(eta / (1 - torch.pow(beta1, t)))
            p.addcdiv_(m, d, value=-1)
