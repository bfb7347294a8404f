"""AdamP and SGDP: momentum optimizers that project out the radial part of the update.

Heo, Chun, Oh, Han, Yun, Kim, Uh, Ha, "AdamP: Slowing Down the Slowdown for
Momentum Optimizers on Scale-invariant Weights", ICLR 2021 (arXiv 2006.08217),
Algorithms 1-2 and Sec. 3.1; the authors' code is the ``adamp`` package v0.3.0
(https://github.com/clovaai/AdamP), which the tests match to 1e-6 relative.
The update rules are :func:`theory.rules.adamp` and :func:`theory.rules.sgdp`.

The cosine test and the projection are computed on the device without a host
synchronisation: per row of the channel view we reduce ``g.w``, ``|g|^2``,
``|w|^2`` and ``w.u`` (the layer view's sums are the sums of those rows), and
the projection ``u - w_hat (w_hat.u)`` becomes a per-row factor on ``w``:
``w (1 - lr wd r + s c_row) - s u``.
"""
from __future__ import annotations

import torch

from momentumlab.empirics.optim import cuda
from momentumlab.empirics.optim._base import (LOW_PRECISION, Bucket, MomentumlabOptimizer, acc_dtype,
                                              adam_moments_, check_betas, check_flag, check_real)

__all__ = ["AdamP", "SGDP"]

_FUSED_DEVICES = ("cpu", "cuda")
_FUSED_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def _rows(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(t.shape[0], -1)


def _row_dot(x: torch.Tensor, y: torch.Tensor, acc, scratch: torch.Tensor) -> torch.Tensor:
    """Per-row inner products of two channel views, the product in a persistent buffer
    (``linalg.vecdot`` would allocate a full-size temporary every step)."""
    prod = torch.mul(x, y, out=scratch[:x.numel()].view(x.shape))
    return prod.sum(1, dtype=None if prod.dtype == acc else acc)


def _row_sq(x: torch.Tensor, acc) -> torch.Tensor:
    n = torch.linalg.vector_norm(x, dim=1, dtype=None if x.dtype == acc else acc)
    return n * n


def _projection(stats, wus, params, delta: float, wd_ratio: float, eps: float, segments):
    """AdamP's cosine test and projection coefficients (authors' ``_projection``, branch-free),
    for several tensors at once.

    Channel view: project when ``max_rows |cos(g, w)| < delta/sqrt(row length)``;
    otherwise layer view with ``delta/sqrt(numel)``.  Returns ``(c, r)``: per tensor the
    per-row ``c = <w, u>/(|w| + eps)^2`` of the chosen view (0 when neither passes), so that
    ``Pi(u) = u - c w``, and the weight-decay factors ``r`` (``wd_ratio`` or 1).  The rows of
    all tensors are concatenated; ``segments`` gives each row's tensor, the row counts and the
    two thresholds per tensor.
    """
    seg, rows, thr_c, thr_l = segments
    n = len(params)
    gw, gg, ww, wu = (torch.cat(x) for x in (*zip(*stats), wus))
    cos_c = gw.abs() / torch.clamp(torch.sqrt(gg * ww), min=eps)
    max_c = torch.full((n,), -1.0, dtype=cos_c.dtype, device=cos_c.device)
    max_c = max_c.scatter_reduce(0, seg, cos_c, reduce="amax")
    take_c = max_c < thr_c
    sums = torch.zeros(n, 4, dtype=gw.dtype, device=gw.device).index_add_(0, seg, torch.stack([gw, gg, ww, wu], 1))
    sgw, sgg, sww, swu = sums.unbind(1)
    cos_l = sgw.abs() / torch.clamp(torch.sqrt(sgg * sww), min=eps)
    take_l = (cos_l < thr_l) & ~take_c
    coef_c = wu / (torch.sqrt(ww) + eps) ** 2
    coef_l = (swu / (torch.sqrt(sww) + eps) ** 2)[seg]
    coef = torch.where(take_c[seg], coef_c, torch.where(take_l[seg], coef_l, 0.0))
    taken = (take_c | take_l).to(coef.dtype)
    ratio = taken * wd_ratio + (1 - taken)  # exact; torch.where on python floats is float32
    return coef.split(rows), ratio.unbind()


class _Projected(MomentumlabOptimizer):
    """Shared by AdamP and SGDP: phase 1 computes the cosine statistics of tensors with dim > 1."""

    def _validate_projection(self, group):
        name = type(self).__name__
        check_real(name, "lr", group["lr"])
        check_real(name, "eps", group["eps"])
        check_real(name, "weight_decay", group["weight_decay"])
        check_real(name, "delta", group["delta"])
        check_real(name, "wd_ratio", group["wd_ratio"])
        check_flag(name, "nesterov", group["nesterov"])

    def _row_scratch(self, tensors) -> torch.Tensor:
        t0 = tensors[0]
        return self._flat_buffer(t0.device, t0.dtype, max(t.numel() for t in tensors), slot=2)

    def _compiled_stats(self, b: Bucket, witnesses: list) -> None:
        """Phase 1 of the compiled path: per row ``(g.w, |g|^2, |w|^2, w.u)`` in one read."""
        h = b.group
        proj = [i for i, p in enumerate(b.params) if p.dim() > 1]
        flat = [b.grads[i] for i, p in enumerate(b.params) if p.dim() <= 1]
        b.extra["stats"], b.extra["wus"] = [None] * len(b.params), {}
        if flat:
            witnesses.extend(torch._foreach_norm(flat))
        if not proj:
            return
        pick = lambda xs: [xs[i] for i in proj]  # noqa: E731
        adam = isinstance(self, AdamP)
        moment = "exp_avg" if adam else "momentum_buffer"
        b1, b2 = h["betas"] if adam else (0.0, 0.0)
        bc2 = self._bias_corrections(b, proj, 1, b2) if adam else [None] * len(proj)
        stats = cuda.projection_stats(
            pick(b.params), pick(b.grads), pick([s[moment] for s in b.states]),
            pick([s.get("exp_avg_sq") for s in b.states]), bc2, "adamp" if adam else "sgdp",
            b1, b2, h["eps"], -1.0 if h["maximize"] else 1.0, h["nesterov"],
            h.get("momentum", 0.0), h.get("dampening", 0.0))
        for i, st in zip(proj, stats):
            gw, gg, ww, wu = st.unbind(1)
            b.extra["stats"][i], b.extra["wus"][i] = (gw, gg, ww), wu
            witnesses.append(gg)

    @staticmethod
    def _bias_corrections(b: Bucket, idx, ahead: int, beta: float) -> list:
        """``1 - beta^(step + ahead)`` of the tensors ``idx`` as 0-dim device tensors (one copy)."""
        vals = [1 - beta ** (b.states[i]["step"] + ahead) for i in idx]
        return list(MomentumlabOptimizer._to_device(vals, acc_dtype(b.dtype), b.device).unbind())

    def _compiled_projection(self, b: Bucket):
        """Per tensor the row coefficients ``c`` (0-dim 0 where not projected) and decay factors."""
        h, acc = b.group, acc_dtype(b.dtype)
        proj = [i for i, st in enumerate(b.extra["stats"]) if st is not None]
        zero, one = torch.zeros((), dtype=acc, device=b.device), torch.ones((), dtype=acc, device=b.device)
        coefs, ratios = [zero] * len(b.params), [one] * len(b.params)
        if proj:
            ps = [b.params[i] for i in proj]
            c, r = _projection([b.extra["stats"][i] for i in proj], [b.extra["wus"][i] for i in proj],
                               ps, h["delta"], h["wd_ratio"], h["eps"], self._segments(ps, h["delta"], acc))
            for i, ci, ri in zip(proj, c, r):
                coefs[i], ratios[i] = ci, ri
        return coefs, ratios

    def _prepare(self, buckets):
        witnesses = []
        for b in buckets:
            if self._compiled(b.group, b.params):
                self._compiled_stats(b, witnesses)
                continue
            acc = acc_dtype(b.dtype)
            stats, flat = [], []
            scratch = self._row_scratch(b.params)
            for p, g in zip(b.params, b.grads):
                if p.dim() > 1:
                    gr, wr = _rows(g), _rows(p)
                    s = (_row_dot(gr, wr, acc, scratch), _row_sq(gr, acc), _row_sq(wr, acc))
                    witnesses.append(s[1])
                    stats.append(s)
                else:
                    stats.append(None)
                    flat.append(g)
            if flat:
                witnesses.extend(torch._foreach_norm(flat))
            b.extra["stats"] = stats
        return witnesses

    def _segments(self, params, delta, acc):
        """Row-to-tensor index, row counts and thresholds of a list of tensors (cached)."""
        key = ("segments", params[0].device, acc, delta, tuple(tuple(p.shape) for p in params))
        if key not in self._buffers:
            rows = [p.shape[0] for p in params]
            seg = torch.cat([torch.full((r,), i, dtype=torch.long) for i, r in enumerate(rows)])
            thr_c = torch.tensor([delta / p[0].numel() ** 0.5 for p in params], dtype=acc)
            thr_l = torch.tensor([delta / p.numel() ** 0.5 for p in params], dtype=acc)
            dev = params[0].device
            self._buffers[key] = (seg.to(dev), rows, thr_c.to(dev), thr_l.to(dev))
        return self._buffers[key]

    def _project_and_step(self, h, params, updates, scales, stats_list, decay, in_place=False):
        """``p <- p (1 - decay r + s c) - s u`` per tensor (``s = scales[i]``, ``u = updates[i]``).

        ``in_place``: project ``u`` itself (``u <- u - c w``, the authors' SGDP buffer) and
        step with ``p <- p (1 - decay r) - s u``."""
        proj = [i for i, st in enumerate(stats_list) if st is not None]
        coefs, ratios = {}, {}
        if proj:
            ps = [params[i] for i in proj]
            acc = acc_dtype(ps[0].dtype)
            scratch = self._row_scratch(ps)
            wus = [_row_dot(_rows(params[i]), _rows(updates[i]), acc, scratch) for i in proj]
            c, r = _projection([stats_list[i] for i in proj], wus, ps, h["delta"], h["wd_ratio"],
                               h["eps"], self._segments(ps, h["delta"], acc))
            coefs, ratios = dict(zip(proj, c)), dict(zip(proj, r))
        for i, (p, u, s) in enumerate(zip(params, updates, scales)):
            if i not in coefs:
                if decay:
                    p.mul_(1 - decay)
            else:
                shape = (-1, *([1] * (p.dim() - 1)))
                if in_place:
                    u.addcmul_(p, coefs[i].to(p.dtype).view(shape), value=-1)
                    factor = (1 - decay * ratios[i]).expand(p.shape[0])
                else:
                    factor = 1 - decay * ratios[i] + s * coefs[i]
                p.mul_(factor.to(p.dtype).view(shape))
            p.add_(u, alpha=-s)


class AdamP(_Projected):
    r"""AdamP (arXiv 2006.08217, Algorithm 2 with the authors' code v0.3.0).

    .. math::
        m_t = \beta_1 m + (1-\beta_1) g_t,\quad v_t = \beta_2 v + (1-\beta_2) g_t^2,\quad
        u = \frac{m_t}{\sqrt{v_t}/\sqrt{1-\beta_2^t} + \epsilon}
        \ (\text{nesterov: } \tfrac{\beta_1 m_t + (1-\beta_1) g_t}{\cdot}),

        u \leftarrow \Pi_w(u) = u - \hat w\langle\hat w, u\rangle
        \ \text{ if } \max_{\rm rows}|\cos(g_t, w)| < \delta/\sqrt{\dim},\quad
        w \leftarrow w(1 - \eta\lambda r) - \frac{\eta}{1-\beta_1^t} u .

    The test runs on the *current gradient*, first on the channel view (one row
    per output channel, all rows must pass), then on the layer view (the whole
    tensor); a channel projection pre-empts the layer test.  :math:`\hat w =
    w/(\|w\| + \epsilon)` per row; ``r = wd_ratio`` when projected, else 1; the
    decay is decoupled and uses the plain ``lr`` (authors' code).  1-D
    parameters (biases, norm gains) are never projected.  The paper's test
    lacks the absolute value; the authors confirmed |cos| (clovaai/AdamP #6).

    Constructor arguments and defaults are the authors' (lr 1e-3, betas (0.9,
    0.999), eps 1e-8, weight_decay 0, delta 0.1, wd_ratio 0.1, nesterov False);
    keyword-only extras: ``maximize``, ``foreach`` (default on CUDA),
    ``nonfinite`` (see :class:`VRAdam`) and ``fused`` (default when the tensors
    are float on CPU or CUDA and ``nesterov=False``): torch's fused AdamW
    kernel, run with rate 1 on a zeroed buffer, writes the Adam direction
    ``-u/(1 - beta1^t)`` and updates the moments in one pass; the projection then
    rescales rows.  ``fused=False`` computes the same with ``torch._foreach_*``.
    Dtypes and the CUDA path: as every class of :mod:`empirics.optim` (its module docstring).
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 delta=0.1, wd_ratio=0.1, nesterov=False, *, maximize=False, foreach=None,
                 fused=None, nonfinite="raise"):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, delta=delta,
                        wd_ratio=wd_ratio, nesterov=nesterov, maximize=maximize, foreach=foreach,
                        fused=fused)
        super().__init__(params, defaults, nonfinite)

    def _validate_group(self, group):
        self._validate_projection(group)
        check_betas("AdamP", group["betas"])
        if group["fused"] and not self._compiled(group, group["params"]) and (group["nesterov"] or any(
                p.device.type not in _FUSED_DEVICES or p.dtype not in _FUSED_DTYPES for p in group["params"])):
            raise ValueError("AdamP: fused=True needs nesterov=False and floating-point parameters "
                             "on CPU or CUDA")

    def _fused(self, b: Bucket) -> bool:
        flag = b.group["fused"]
        if flag is None:
            return (not b.group["nesterov"] and b.device.type in _FUSED_DEVICES
                    and b.dtype in _FUSED_DTYPES)
        return flag

    def _foreach(self, group, params) -> bool:
        if group["fused"] is None and not group["nesterov"] and all(
                p.device.type in _FUSED_DEVICES and p.dtype in _FUSED_DTYPES for p in params):
            return True  # the fused kernel is multi-tensor
        return bool(group["fused"]) or super()._foreach(group, params)

    def _init_state(self, p, state, group):
        state["step"] = 0
        state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)

    def _apply(self, buckets):
        for b in buckets:
            if self._compiled(b.group, b.params):
                self._compiled_step(b)
            elif self._fused(b):
                self._fused_step(b)
            else:
                self._apply_in_float32(b, self._eager_step)

    def _compiled_step(self, b: Bucket):
        h = b.group
        beta1, beta2 = h["betas"]
        everything = range(len(b.params))
        bc1 = self._bias_corrections(b, everything, 1, beta1)
        bc2 = self._bias_corrections(b, everything, 1, beta2)
        for state in b.states:
            state["step"] += 1
        coefs, ratios = self._compiled_projection(b)
        cuda.adamp_update(b.params, b.grads, [s["exp_avg"] for s in b.states],
                          [s["exp_avg_sq"] for s in b.states], bc1, bc2, coefs, ratios,
                          self._hyper(b, "lr"), self._hyper(b, "weight_decay"), beta1, beta2,
                          h["eps"], -1.0 if h["maximize"] else 1.0, h["nesterov"])

    def _fused_step(self, b: Bucket):
        """torch's fused AdamW kernel: on 1-D tensors it is AdamP's step; on the others it writes
        the Adam direction ``-u/bc1`` into a zeroed buffer (lr 1, no decay) and updates m, v."""
        h = b.group
        beta1, beta2 = h["betas"]
        kw = dict(beta1=beta1, beta2=beta2, eps=h["eps"], amsgrad=False, maximize=h["maximize"],
                  grad_scale=None, found_inf=None)
        steps = []
        for state in b.states:
            state["step"] += 1
            steps.append(torch.full((), float(state["step"]), dtype=torch.float32, device=b.device))
        proj = [i for i, s in enumerate(b.extra["stats"]) if s is not None]
        flat = [i for i, s in enumerate(b.extra["stats"]) if s is None]
        pick = lambda xs, idx: [xs[i] for i in idx]  # noqa: E731
        ms = [s["exp_avg"] for s in b.states]
        vs = [s["exp_avg_sq"] for s in b.states]
        if flat:
            torch._fused_adamw_(pick(b.params, flat), pick(b.grads, flat), pick(ms, flat), pick(vs, flat),
                                [], pick(steps, flat), lr=h["lr"], weight_decay=h["weight_decay"], **kw)
        if proj:
            params = pick(b.params, proj)
            dirs = self._scratch(params)
            torch._foreach_zero_(dirs)
            torch._fused_adamw_(dirs, pick(b.grads, proj), pick(ms, proj), pick(vs, proj), [],
                                pick(steps, proj), lr=1.0, weight_decay=0.0, **kw)
            # p (1 - lr wd r) - (lr/bc1) Pi(u) with u = -bc1 d: step -lr along d; in bfloat16 and
            # float16 on float32 copies, so that the parameter is rounded once, not per factor
            low = b.dtype in LOW_PRECISION
            work = [p.to(torch.float32) for p in params] if low else params
            self._project_and_step(h, work, [d.to(torch.float32) for d in dirs] if low else dirs,
                                   [-h["lr"]] * len(proj), pick(b.extra["stats"], proj),
                                   h["lr"] * h["weight_decay"])
            if low:
                torch._foreach_copy_(params, work)

    def _eager_step(self, b: Bucket):
        """The fast path of :func:`theory.rules.adamp` (its Adam direction and preconditioner in
        persistent buffers), tested against the rule in every dtype."""
        h = b.group
        beta1, beta2 = h["betas"]
        ps, gs = b.params, b.grads
        ms = [s["exp_avg"] for s in b.states]
        vs = [s["exp_avg_sq"] for s in b.states]
        sign = -1.0 if h["maximize"] else 1.0
        adam_moments_(ms, vs, gs, h["betas"], h["maximize"])
        scales, eps_scaled = [], []
        for state in b.states:
            state["step"] += 1
            bc1, bc2 = 1 - beta1 ** state["step"], 1 - beta2 ** state["step"]
            # u = m/(sqrt(v)/sqrt(bc2) + eps) = sqrt(bc2) m/(sqrt(v) + eps sqrt(bc2))
            scales.append(h["lr"] / bc1 * bc2 ** 0.5)
            eps_scaled.append(h["eps"] * bc2 ** 0.5)
        us = self._scratch(ps)
        for v, u in zip(vs, us):
            torch.sqrt(v, out=u)
        torch._foreach_add_(us, eps_scaled)
        if h["nesterov"]:
            nums = self._scratch(ps, slot=1)
            for m, g, n in zip(ms, gs, nums):
                torch.mul(m, beta1, out=n)
                n.add_(g, alpha=sign * (1 - beta1))
        else:
            nums = ms
        for n, u in zip(nums, us):
            torch.div(n, u, out=u)
        self._project_and_step(h, ps, us, scales, b.extra["stats"], h["lr"] * h["weight_decay"])


class SGDP(_Projected):
    r"""SGDP (arXiv 2006.08217, Algorithm 1 with the authors' code v0.3.0).

    .. math::
        b_t = \mu b_{t-1} + (1-\tau) g_t,\quad d = b_t\ (\text{nesterov: } g_t + \mu b_t),\quad
        d \leftarrow \Pi_w(d)\ \text{(same test as AdamP)},\quad
        w \leftarrow w\Big(1 - \frac{\eta\lambda r}{1-\mu}\Big) - \eta d .

    ``momentum`` :math:`\mu`, ``dampening`` :math:`\tau`; ``b_0 = 0``.  The
    decoupled decay is divided by :math:`1-\mu` as in the authors' code (with
    :math:`\mu = 0.9` their README's ``weight_decay=1e-5`` acts as 1e-4), so
    ``momentum`` must be below 1.  Arguments are the authors' except that
    ``momentum`` defaults to 0.9 instead of 0: with 0 SGDP has no momentum,
    which is what the method is for (users found the 0 default pointless,
    jettify/pytorch-optimizer #354).  ``lr`` is required, as theirs.

    ``project_buffer`` (keyword, default True, the authors' code): without
    ``nesterov`` their update ``d`` is the momentum buffer itself and is
    projected in place, so the next step starts from :math:`\Pi_w(b_t)`;
    ``False`` keeps the unprojected :math:`b_t` as in the paper's Algorithm 1.
    Extras as in :class:`AdamP`, except ``fused=True``, which is refused (the
    projection needs the new buffer before the parameter update, which no torch
    fused kernel allows) except on CUDA, where ``fused=True`` is the compiled path.
    Dtypes and the CUDA path: as every class of :mod:`empirics.optim` (its module docstring).
    """

    def __init__(self, params, lr, momentum=0.9, dampening=0.0, weight_decay=0.0, nesterov=False,
                 eps=1e-8, delta=0.1, wd_ratio=0.1, *, project_buffer=True, maximize=False,
                 foreach=None, fused=None, nonfinite="raise"):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, eps=eps, delta=delta, wd_ratio=wd_ratio,
                        project_buffer=project_buffer, maximize=maximize, foreach=foreach,
                        fused=fused)
        super().__init__(params, defaults, nonfinite)

    def _validate_group(self, group):
        self._validate_projection(group)
        if group["fused"] and not self._compiled(group, group["params"]):
            raise ValueError("SGDP: fused=True needs CUDA parameters with Triton (the compiled "
                             "path; no torch fused kernel fits SGDP); use foreach")
        check_real("SGDP", "momentum", group["momentum"], 0.0, 1.0, hi_open=True)
        check_real("SGDP", "dampening", group["dampening"], 0.0, 1.0)
        check_flag("SGDP", "project_buffer", group["project_buffer"])

    def _init_state(self, p, state, group):
        state["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)

    def _compiled_step(self, b: Bucket):
        h = b.group
        coefs, ratios = self._compiled_projection(b)
        lr = self._hyper(b, "lr")
        decay = lr * self._hyper(b, "weight_decay") / (1 - h["momentum"])
        cuda.sgdp_update(b.params, b.grads, [s["momentum_buffer"] for s in b.states], coefs, ratios,
                         lr, decay, h["momentum"], h["dampening"], -1.0 if h["maximize"] else 1.0,
                         h["nesterov"], h["project_buffer"] and not h["nesterov"])

    def _eager_step(self, b: Bucket):
        h = b.group
        mu = h["momentum"]
        ps, gs = b.params, b.grads
        bufs = [s["momentum_buffer"] for s in b.states]
        sign = -1.0 if h["maximize"] else 1.0
        torch._foreach_mul_(bufs, mu)
        torch._foreach_add_(bufs, gs, alpha=sign * (1 - h["dampening"]))
        if h["nesterov"]:
            ds = self._scratch(ps)
            for g, buf, d in zip(gs, bufs, ds):
                torch.mul(buf, mu, out=d)
                d.add_(g, alpha=sign)
        else:
            ds = bufs
        decay = h["lr"] * h["weight_decay"] / (1 - mu)
        in_place = h["project_buffer"] and not h["nesterov"]
        self._project_and_step(h, ps, ds, [h["lr"]] * len(ps), b.extra["stats"], decay, in_place)
