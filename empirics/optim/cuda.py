"""The CUDA path: each optimizer step as two foreach-style passes compiled by ``torch.compile``.

Used for parameters on a CUDA device with ``fused=True`` when Triton is importable
(it ships with CUDA builds of torch); ``MOMENTUMLAB_COMPILE=0`` turns it off.  Each
class's step becomes

1. a read-only statistics pass (VRAdam's ``||m_t||^2``, TAM's ``(m.g, |m|^2, |g|^2)``,
   AdamP's and SGDP's per-row ``(g.w, |g|^2, |w|^2, w.u)``), one fused reduction per tensor;
2. after the class's small scalar algebra on the device (the gate, the cosine, AdamP's
   projection test), one elementwise update pass per tensor that reads parameters,
   gradients and state once and writes them once.

Memory streams per step (AdamW = 7): VRAdam 9, TAM 7, AdaTAM 9, AdamP 11, SGDP 8.
Hyperparameters that schedulers change (``lr``, ``weight_decay``) and every per-step
quantity (step counts, gated rates, damping, projection coefficients) enter as device
tensors, so an LR schedule does not recompile and nothing waits for the host.  The
arithmetic runs in float32 for bfloat16/float16 (Inductor's upcast) and float64 for
float64, one rounding per stored value.

The functions below are plain torch code: without CUDA they run eagerly (the tests do
that on the CPU against :mod:`theory.rules`), on CUDA they are compiled once per
tensor-list structure.  They are fast copies of the rules, tested against them.
"""
from __future__ import annotations

import functools
import os

import torch

__all__ = ["available", "ENV", "vradam_terms", "adam_update", "alignment_terms", "tam_update",
           "adatam_update", "projection_stats", "adamp_update", "sgdp_update"]

#: environment variable: "0" disables the compiled CUDA path
ENV = "MOMENTUMLAB_COMPILE"
#: devices the path serves; the CPU tests add "cpu" to run the same code eagerly
DEVICES = ["cuda"]
#: compile on CUDA (False: run the same functions eagerly, e.g. to bisect a compiler problem)
COMPILE = True
#: devices whose tensors go through torch.compile, and its backend (tests trace on the CPU
#: with "aot_eager": Dynamo and functionalisation without code generation)
COMPILE_DEVICES = ("cuda",)
BACKEND = "inductor"
_RECOMPILE_LIMIT = 256
#: tensors per compiled call: long lists are cut into chunks, so that a graph stays small and
#: chunks of the same ranks share one compiled graph (shapes are dynamic)
CHUNK = 16


@functools.cache
def triton_available() -> bool:
    try:
        from torch.utils._triton import has_triton
        return bool(has_triton())
    except Exception:  # noqa: BLE001 - any import problem means no Triton
        return False


def available(device: torch.device) -> bool:
    """Whether the compiled path serves tensors on ``device``."""
    if os.environ.get(ENV, "1") == "0" or device.type not in DEVICES:
        return False
    return device.type == "cpu" or (torch.cuda.is_available() and triton_available())


def _compiled(fn):
    """``fn`` compiled (once per structure of its tensor lists) when its tensors are on CUDA."""
    cache: dict = {}

    @functools.wraps(fn)
    def run(*args, **kw):
        n = len(args[0])
        if n > CHUNK:  # every list argument of length n holds one entry per tensor
            cut = lambda a, i: a[i:i + CHUNK] if isinstance(a, (list, tuple)) and len(a) == n else a  # noqa: E731
            return _join([run(*(cut(a, i) for a in args), **kw) for i in range(0, n, CHUNK)])
        if not (COMPILE and args[0] and args[0][0].device.type in COMPILE_DEVICES):
            return fn(*args, **kw)
        if cache.get("backend") != BACKEND:
            import torch._dynamo as dynamo
            for name in ("recompile_limit", "cache_size_limit"):  # one per model and option set
                if getattr(dynamo.config, name, _RECOMPILE_LIMIT) < _RECOMPILE_LIMIT:
                    setattr(dynamo.config, name, _RECOMPILE_LIMIT)
            # dynamic shapes: tensors of one rank share one kernel source, so a model's
            # hundred tensors compile to a handful of kernels
            cache["fn"], cache["backend"] = torch.compile(fn, dynamic=True, backend=BACKEND), BACKEND
        return cache["fn"](*map(_no_scalars, args), **kw)
    return run


def _join(outs):
    """The chunks' results as one: nothing, a concatenated tensor, or a concatenated list."""
    if outs[0] is None:
        return None
    if torch.is_tensor(outs[0]):
        return torch.cat(outs)
    return [x for out in outs for x in out]


def _no_scalars(arg):
    """0-dim tensors of a list as 1-element views: Dynamo (torch 2.13, any backend) drops the
    in-place writes to 0-dim CPU tensor inputs it treats as scalars; a view writes through."""
    if isinstance(arg, (list, tuple)) and any(torch.is_tensor(t) and t.dim() == 0 for t in arg):
        return [t.view(1) if torch.is_tensor(t) and t.dim() == 0 else t for t in arg]
    return arg


def _acc(t: torch.Tensor) -> torch.dtype:
    return torch.float64 if t.dtype == torch.float64 else torch.float32


# ------------------------------------------------------------------ VRAdam
@_compiled
def vradam_terms(ms, gs, beta1: float, sign: float, velocity: bool):
    """``sum x^2`` per tensor with ``x = b1 m + (1-b1) sign g`` (``m_t``, not stored) or ``g``."""
    out = []
    for m, g in zip(ms, gs):
        acc = _acc(g)
        x = m.to(acc) * beta1 + g.to(acc) * (sign * (1 - beta1)) if velocity else g.to(acc)
        out.append((x * x).sum())
    return torch.stack(out)


@_compiled
def adam_update(ps, gs, ms, vs, steps, etas, wd, beta1: float, beta2: float, eps: float, sign: float):
    """Adam with decoupled decay at the per-tensor rate ``etas[i]`` (VRAdam's gated rate):
    ``m <- b1 m + (1-b1) g``, ``v <- b2 v + (1-b2) g^2``,
    ``p <- p (1 - eta wd) - (eta/bc1) m / (sqrt(v/bc2) + eps)``; ``steps`` already counts this step."""
    for p, g, m, v, t, eta in zip(ps, gs, ms, vs, steps, etas):
        acc = _acc(p)
        t, eta = t.to(acc), eta.to(acc)
        gf = g.to(acc) * sign
        mf = m.to(acc) * beta1 + gf * (1 - beta1)
        vf = v.to(acc) * beta2 + gf * gf * (1 - beta2)
        denom = torch.sqrt(vf) / torch.sqrt(1 - beta2 ** t) + eps
        pf = p.to(acc) * (1 - eta * wd) - (eta / (1 - beta1 ** t)) * mf / denom
        p.copy_(pf)
        m.copy_(mf)
        v.copy_(vf)


# ------------------------------------------------------------------ TAM, AdaTAM
@_compiled
def alignment_terms(ms, gs, sign: float):
    """``(sign m.g, |m|^2, |g|^2)`` per tensor, shape ``(n, 3)``, in one read of ``m`` and ``g``."""
    out = []
    for m, g in zip(ms, gs):
        acc = _acc(g)
        mf, gf = m.to(acc), g.to(acc)
        out.append(torch.stack(((mf * gf).sum() * sign, (mf * mf).sum(), (gf * gf).sum())))
    return torch.stack(out)


@_compiled
def tam_update(ps, gs, ms, coefs, lr, wd, momentum: float, sign: float):
    """``m <- beta m + c_i sign g``; ``p <- p (1 - lr wd) - lr m`` (``c_i = eps + d_i``, a list of
    0-dim tensors)."""
    for i, (p, g, m) in enumerate(zip(ps, gs, ms)):
        acc = _acc(p)
        mf = m.to(acc) * momentum + g.to(acc) * (coefs[i].to(acc) * sign)
        p.copy_(p.to(acc) * (1 - lr * wd) - lr * mf)
        m.copy_(mf)


@_compiled
def adatam_update(ps, gs, ms, vs, coefs, bc2s, lr, wd, beta1: float, beta2: float, eps: float,
                  sign: float):
    """``m <- b1 m + c_i sign g``, ``v <- b2 v + (1-b2) g^2``,
    ``p <- p (1 - lr wd) - lr m / (sqrt(v / bc2_i) + eps)`` (``bc2_i = 1`` without correction;
    ``coefs`` and ``bc2s`` are lists of 0-dim tensors)."""
    for i, (p, g, m, v) in enumerate(zip(ps, gs, ms, vs)):
        acc = _acc(p)
        gf = g.to(acc)
        mf = m.to(acc) * beta1 + gf * (coefs[i].to(acc) * sign)
        vf = v.to(acc) * beta2 + gf * gf * (1 - beta2)
        denom = torch.sqrt(vf) / torch.sqrt(bc2s[i].to(acc)) + eps
        p.copy_(p.to(acc) * (1 - lr * wd) - lr * mf / denom)
        m.copy_(mf)
        v.copy_(vf)


# ------------------------------------------------------------------ AdamP, SGDP
def _adamp_direction(g, m, v, bc2, beta1, beta2, eps, sign, nesterov):
    acc = _acc(g)
    gf = g.to(acc) * sign
    mf = m.to(acc) * beta1 + gf * (1 - beta1)
    vf = v.to(acc) * beta2 + gf * gf * (1 - beta2)
    num = mf * beta1 + gf * (1 - beta1) if nesterov else mf
    return num / (torch.sqrt(vf) / torch.sqrt(bc2.to(acc)) + eps), mf, vf


def _sgdp_direction(g, b, momentum, dampening, sign, nesterov):
    acc = _acc(g)
    gf = g.to(acc) * sign
    bf = b.to(acc) * momentum + gf * (1 - dampening)
    return (gf + bf * momentum if nesterov else bf), bf


def _rows(t):
    return t.reshape(t.shape[0], -1)


@_compiled
def projection_stats(ps, gs, ms, vs, bc2s, kind: str, beta1: float, beta2: float, eps: float,
                     sign: float, nesterov: bool, momentum: float, dampening: float):
    """Per row of each tensor's channel view: ``(g.w, |g|^2, |w|^2, w.u)`` with ``u`` this step's
    update direction, computed but not stored (AdamP: the Adam direction; SGDP: the new
    buffer, or its Nesterov step).  One read of ``p, g`` and the state; ``vs``/``bc2s`` are
    unused for SGDP."""
    out = []
    for i, (p, g, m) in enumerate(zip(ps, gs, ms)):
        if kind == "adamp":
            u, _, _ = _adamp_direction(g, m, vs[i], bc2s[i], beta1, beta2, eps, sign, nesterov)
        else:
            u, _ = _sgdp_direction(g, m, momentum, dampening, sign, nesterov)
        acc = _acc(g)
        w, gr, ur = _rows(p.to(acc)), _rows(g.to(acc)), _rows(u)
        out.append(torch.stack(((gr * w).sum(1), (gr * gr).sum(1), (w * w).sum(1), (w * ur).sum(1)), 1))
    return out


@_compiled
def adamp_update(ps, gs, ms, vs, bc1s, bc2s, coefs, ratios, lr, wd, beta1: float, beta2: float,
                 eps: float, sign: float, nesterov: bool):
    """``p <- p (1 - lr wd r + s c_row) - s u`` with ``s = lr/bc1``, ``u`` the Adam direction and
    ``Pi(u) = u - c_row w`` (``c = 0``, ``r = 1`` where not projected); stores ``m, v``."""
    for i, (p, g, m, v) in enumerate(zip(ps, gs, ms, vs)):
        acc = _acc(p)
        u, mf, vf = _adamp_direction(g, m, v, bc2s[i], beta1, beta2, eps, sign, nesterov)
        s = lr / bc1s[i].to(acc)
        shape = (-1,) + (1,) * (p.dim() - 1) if p.dim() else ()
        c = coefs[i].to(acc).reshape(shape)
        p.copy_(p.to(acc) * (1 - lr * wd * ratios[i].to(acc) + s * c) - s * u)
        m.copy_(mf)
        v.copy_(vf)


@_compiled
def sgdp_update(ps, gs, bufs, coefs, ratios, lr, decay, momentum: float, dampening: float,
                sign: float, nesterov: bool, project_buffer: bool):
    """``b <- mu b + (1-tau) g``; ``d = b`` (Nesterov ``g + mu b``); with the buffer projected in
    place ``b <- b - c w`` and ``p <- p (1 - decay r) - lr b``, else
    ``p <- p (1 - decay r + lr c) - lr d``."""
    for i, (p, g, b) in enumerate(zip(ps, gs, bufs)):
        acc = _acc(p)
        d, bf = _sgdp_direction(g, b, momentum, dampening, sign, nesterov)
        shape = (-1,) + (1,) * (p.dim() - 1) if p.dim() else ()
        c, r = coefs[i].to(acc).reshape(shape), ratios[i].to(acc)
        w = p.to(acc)
        if project_buffer and not nesterov:
            bf = bf - c * w
            p.copy_(w * (1 - decay * r) - lr * bf)
        else:
            p.copy_(w * (1 - decay * r + lr * c) - lr * d)
        b.copy_(bf)
