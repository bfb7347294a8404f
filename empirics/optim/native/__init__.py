"""Compiled CPU kernels for VRAdam, TAM, AdaTAM, AdamP and SGDP (optional; torch is the fallback).

Each step is two passes over memory (issue 11): a read-only pass that reduces what the
update needs beyond one element -- VRAdam's ``|m_t|^2``, TAM's ``(m.g, |m|^2, |g|^2)``,
AdamP/SGDP's per-row ``(g.w, |g|^2, |w|^2)`` for the cosine test -- and then one update
pass.  Between them the few per-tensor numbers are turned into coefficients here, in
float64 numpy, with the rules' own scalar formulas (:func:`theory.rules.vr_gate` and the
TAM damping; AdamP's test as in :func:`empirics.optim.adamp._projection`).  AdamP/SGDP's
projection needs ``w.u`` per row: in the channel view each row is updated right after its
``w.u`` is summed, while it is in cache; the rare layer view reads the tensor once more.  Because the first pass writes nothing,
``nonfinite="raise"``/``"skip"`` refuse a step before anything changes.  Hyperparameters
travel as runtime arguments, so LR schedulers need no rebuild; nothing is synchronised
per tensor (the statistics are plain host memory).

A step takes this path when the library loaded (:func:`status`), the optimizer's
``native`` attribute is true (default), and every parameter group with gradients is
covered: ``fused`` and ``foreach`` left at None, float32 or float64 contiguous CPU tensors
with at least one element, ``maximize=False`` and

* VRAdam: ``power=2``, ``norm_scope`` "global" or "group" (either gate);
* TAM / AdaTAM: either ``cosine_scope`` (AdaTAM: either ``bias_correction``);
* AdamP: ``nesterov=False``;  SGDP: ``nesterov=False`` (either ``project_buffer``).

Anything else (``maximize``, ``nesterov``, VRAdam's tensor scope or other powers, bf16,
fp16, CUDA, non-contiguous tensors, an explicit ``fused``/``foreach``) runs the class's
torch code unchanged.  ``optimizer.native_active`` says which path the next step takes.
"""
from __future__ import annotations

import ctypes
import threading

import numpy as np
import torch

from momentumlab.empirics.optim.native.build import load
from momentumlab.theory.ops import NUMPY
from momentumlab.theory.rules import _tam_damping, vr_gate

__all__ = ["available", "status", "covers", "step", "KERNELS"]

_DTYPES = {torch.float32: "f32", torch.float64: "f64"}
_lock = threading.Lock()
_state: dict = {}

_P, _I, _D = ctypes.c_void_p, ctypes.c_int, ctypes.c_double
_SIGNATURES = {
    "tensor_sums": [_I, _P, _P, _P, _I, _D, _D, _P, _I],
    "row_stats": [_I, _P, _P, _P, _P, _P, _P, _I, _D, _D, _D, _P, _P, _I],
    "adam_update": [_I, _P, _P, _P, _P, _P, _P, _D, _D, _D, _P, _P, _P, _P, _I],
    "momentum_update": [_I, _P, _P, _P, _P, _P, _D, _P, _P, _P, _P, _I, _I],
    "channel_update": [_I, _P, _P, _P, _P, _P, _P, _I, _D, _D, _D, _P, _P, _P, _P, _I, _I],
}


def _library():
    if "lib" not in _state:
        with _lock:
            if "lib" not in _state:
                lib, info = load()
                if lib is not None:
                    for name, args in _SIGNATURES.items():
                        for suffix in _DTYPES.values():
                            fn = getattr(lib, f"{name}_{suffix}")
                            fn.argtypes, fn.restype = args, None
                _state["info"], _state["lib"] = info, lib
    return _state["lib"]


def available() -> bool:
    """Whether the compiled kernels are loaded (building them on first call)."""
    return _library() is not None


def status() -> dict:
    """``available``, ``reason`` (why not), ``isa`` (torch's CPU capability it was built
    for), ``flags``, ``path``, ``build_seconds`` and ``openmp``; plus the covered classes."""
    _library()
    return {**_state["info"], "kernels": sorted(KERNELS)}


# ----------------------------------------------------------------- plumbing
def _ptrs(tensors) -> np.ndarray:
    return np.fromiter((t.data_ptr() for t in tensors), dtype=np.uintp, count=len(tensors))


def _call(fn, *args) -> None:
    """Call a kernel; numpy arrays become their addresses (``args`` keeps them alive)."""
    fn(*[a.ctypes.data if isinstance(a, np.ndarray) else a for a in args])


def _f64(values) -> np.ndarray:
    return np.ascontiguousarray(values, dtype=np.float64)


def _threads() -> int:
    return max(1, torch.get_num_threads())


class _Bucket:
    """The tensors of one parameter group and dtype with a gradient."""

    def __init__(self, gi, group, params, states):
        self.gi, self.group, self.params, self.states = gi, group, params, states
        self.grads = [p.grad for p in params]
        self.dtype = params[0].dtype
        self.suffix = _DTYPES[self.dtype]
        self.n = len(params)
        self.sizes = np.fromiter((p.numel() for p in params), dtype=np.int64, count=self.n)

    def fn(self, name):
        return getattr(_library(), f"{name}_{self.suffix}")

    def state_ptrs(self, key):
        return _ptrs([s[key] for s in self.states])


def _eligible_tensor(t) -> bool:
    return (t.device.type == "cpu" and t.dtype in _DTYPES and t.layout == torch.strided
            and t.is_contiguous() and t.numel() > 0)


def _group_ok(opt, group) -> bool:
    if group.get("fused") is not None or group.get("foreach") is not None or group.get("maximize"):
        return False
    return KERNELS[type(opt).__name__][0](group)


def covers(opt) -> bool:
    """Whether the compiled kernels would take ``opt``'s next step (gradients aside)."""
    if type(opt).__name__ not in KERNELS or not getattr(opt, "native", True):
        return False
    return all(_group_ok(opt, g) and all(_eligible_tensor(p) for p in g["params"])
               for g in opt.param_groups) and available()


def _buckets(opt):
    """Buckets of the step, or None when any group or tensor is not covered."""
    out = []
    for gi, group in enumerate(opt.param_groups):
        params = [p for p in group["params"] if p.grad is not None]
        if not params:
            continue
        if not _group_ok(opt, group):
            return None
        for p in params:
            g = p.grad
            if not (_eligible_tensor(p) and g.layout == torch.strided and g.dtype == p.dtype
                    and g.device == p.device and g.is_contiguous()):
                return None
        for dtype in _DTYPES:
            ps = [p for p in params if p.dtype == dtype]
            if ps:
                out.append((gi, group, ps))
    return out


def step(opt) -> bool:
    """Take ``opt``'s step with the kernels; False (nothing done) when they do not cover it."""
    name = type(opt).__name__
    if name not in KERNELS or not getattr(opt, "native", True):
        return False
    found = _buckets(opt)  # before available(): CUDA or bf16 users never trigger a build
    if found is None or not available():
        return False
    fresh = []
    buckets = []
    for gi, group, ps in found:
        states = []
        for p in ps:
            state = opt.state[p]
            if not state:
                opt._init_state(p, state, group)
                fresh.append(p)
            states.append(state)
        buckets.append(_Bucket(gi, group, ps, states))
    for b in buckets:
        for s in b.states:
            for v in s.values():
                if isinstance(v, torch.Tensor) and v.dim() > 0 and not (
                        v.dtype == b.dtype and v.device.type == "cpu" and v.is_contiguous()):
                    return False
    _, prepare, apply = KERNELS[name]
    witnesses = prepare(opt, buckets)
    if opt.nonfinite != "ignore" and not all(np.isfinite(w).all() for w in witnesses):
        opt._refuse_step(fresh)
        return True
    apply(opt, buckets)
    return True


# ----------------------------------------------------------------- VRAdam
def _vradam_ok(h) -> bool:
    return h["power"] == 2 and h["norm_scope"] in ("global", "group")


def _vradam_prepare(opt, buckets):
    for b in buckets:
        h = b.group
        b.terms = np.empty(b.n)
        beta1 = h["betas"][0]
        velocity = h["gate"] == "velocity"
        _call(b.fn("tensor_sums"), b.n, b.state_ptrs("exp_avg") if velocity else None, _ptrs(b.grads),
                            b.sizes, 0 if velocity else 1, beta1, 1 - beta1, b.terms, _threads())
    return [b.terms for b in buckets]


def _vradam_apply(opt, buckets):
    sums: dict = {}
    for b in buckets:
        key = "global" if b.group["norm_scope"] == "global" else b.gi
        sums[key] = sums.get(key, 0.0) + float(b.terms.sum())
    opt.last_eta = [None] * len(opt.param_groups)
    opt.last_norm_sq = [None] * len(opt.param_groups)
    for b in buckets:
        h = b.group
        beta1, beta2 = h["betas"]
        n = sums["global" if h["norm_scope"] == "global" else b.gi]
        eta = float(vr_gate(h["lr"], n, h, NUMPY))
        steps = []
        for s in b.states:
            if s["step"].device.type != "cpu":
                s["step"] = s["step"].cpu()
            steps.append(s["step"])
        torch._foreach_add_(steps, 1)
        t = torch.stack(steps).double().numpy()
        bc1, bc2 = 1 - beta1 ** t, 1 - beta2 ** t
        _adam_update(b, np.zeros(b.n, np.int64), np.full(b.n, 1 - beta1), 1 / np.sqrt(bc2), eta / bc1,
                     np.full(b.n, 1 - eta * h["weight_decay"]))
        acc = b.dtype
        eta_t, n_t = torch.tensor(eta, dtype=acc), torch.tensor(n, dtype=acc)
        for s in b.states:
            s["eta"], s["norm_sq"] = eta_t, n_t
        opt.last_eta[b.gi], opt.last_norm_sq[b.gi] = eta_t, n_t


# ----------------------------------------------------------------- TAM, AdaTAM
def _torque_prepare(opt, buckets):
    """``(m.g, |m|^2, |g|^2)`` per tensor (read-only); the witnesses are the ``|g|^2``."""
    for b in buckets:
        b.terms = np.empty((b.n, 3))
        _call(b.fn("tensor_sums"), b.n, b.state_ptrs(opt._moment), _ptrs(b.grads), b.sizes, 2,
              0.0, 0.0, b.terms, _threads())
    return [b.terms[:, 2] for b in buckets]


def _damping(buckets):
    """``s_hat`` and ``k = eps + d`` per tensor, over the cosine's scope (the rule's formula)."""
    shared = sum(b.terms.sum(0) for b in buckets if b.group["cosine_scope"] == "global")
    for b in buckets:
        terms = b.terms if b.group["cosine_scope"] == "tensor" else np.broadcast_to(shared, b.terms.shape)
        prev = torch.stack([s["s_hat"] for s in b.states]).double().numpy()
        b.s_hat, d = _tam_damping(tuple(terms.T), {"s_hat": prev}, b.group, NUMPY)
        b.k1 = _f64(b.group["eps"] + d)


def _store_s_hat(b):
    for s, v in zip(b.states, torch.from_numpy(b.s_hat).to(b.dtype).unbind()):
        s["s_hat"] = v


def _tam_apply(opt, buckets):
    _damping(buckets)
    for b in buckets:
        h = b.group
        ones = np.ones(b.n)
        _call(b.fn("momentum_update"), b.n, _ptrs(b.params), _ptrs(b.grads),
                                b.state_ptrs("momentum_buffer"), b.sizes,
                                np.zeros(b.n, np.int64), h["momentum"], b.k1,
                                ones * h["lr"], ones * (1 - h["lr"] * h["weight_decay"]),
                                None, 0, _threads())
        _store_s_hat(b)


def _advance_steps(b) -> np.ndarray:
    """``state["step"] += 1`` (python ints, as the torch code keeps them); the new counts."""
    for st in b.states:
        st["step"] += 1
    return np.fromiter((st["step"] for st in b.states), dtype=np.float64, count=b.n)


def _adam_update(b, rowlen, k1, c1, scale, rowdecay):
    beta1, beta2 = b.group["betas"]
    _call(b.fn("adam_update"), b.n, _ptrs(b.params), _ptrs(b.grads), b.state_ptrs("exp_avg"),
          b.state_ptrs("exp_avg_sq"), b.sizes, rowlen, beta1, beta2, b.group["eps"], _f64(k1),
          _f64(c1), _f64(scale), _f64(rowdecay), _threads())


def _adatam_apply(opt, buckets):
    _damping(buckets)
    for b in buckets:
        h = b.group
        t = _advance_steps(b)
        c1 = 1 / np.sqrt(1 - h["betas"][1] ** t) if h["bias_correction"] else np.ones(b.n)
        _adam_update(b, np.zeros(b.n, np.int64), b.k1, c1, np.full(b.n, h["lr"]),
                     np.full(b.n, 1 - h["lr"] * h["weight_decay"]))
        _store_s_hat(b)


# ----------------------------------------------------------------- AdamP, SGDP
def _projected_ok(h) -> bool:
    return not h["nesterov"]


def _order_projected(b):
    """Tensors with dim > 1 first (their rows lead the statistics), then the others."""
    order = sorted(range(b.n), key=lambda i: b.params[i].dim() <= 1)
    for attr in ("params", "grads", "states"):
        setattr(b, attr, [getattr(b, attr)[i] for i in order])
    b.sizes = b.sizes[order]
    b.nproj = sum(p.dim() > 1 for p in b.params)
    rows = np.array([p.shape[0] if p.dim() > 1 else 1 for p in b.params], dtype=np.int64)
    b.rowlen = b.sizes // rows  # the statistics pass: every tensor in whole rows
    b.rows = rows


def _row_prepare(opt, buckets):
    """Per row of every tensor ``(g.w, |g|^2, |w|^2)`` (reads g, w only); the witnesses are
    the ``|g|^2``."""
    for b in buckets:
        _order_projected(b)
        b.stats = np.empty((int(b.rows.sum()), 4))
        _call(b.fn("row_stats"), b.n, _ptrs(b.params), _ptrs(b.grads), None, None, b.sizes, b.rowlen,
              2, 0.0, 0.0, b.group["eps"], np.ones(b.n), b.stats, _threads())
    return [b.stats[:, 1] for b in buckets]


def _views(b):
    """AdamP's cosine test (the authors' ``_projection``, on the row statistics): indices of
    the tensors projected in the channel view, in the layer view, and of the others."""
    h, k = b.group, b.nproj
    if not k:
        return [], [], list(range(b.n))
    nrows = int(b.rows[:k].sum())
    gw, gg, ww = b.stats[:nrows, :3].T
    starts = np.concatenate([[0], np.cumsum(b.rows[:k])[:-1]])
    cos_rows = np.abs(gw) / np.maximum(np.sqrt(gg * ww), h["eps"])
    take_c = np.maximum.reduceat(cos_rows, starts) < h["delta"] / np.sqrt(b.rowlen[:k])
    sgw, sgg, sww = (np.add.reduceat(x, starts) for x in (gw, gg, ww))
    cos_l = np.abs(sgw) / np.maximum(np.sqrt(sgg * sww), h["eps"])
    take_l = ~take_c & (cos_l < h["delta"] / np.sqrt(b.sizes[:k]))
    chan, layer = np.flatnonzero(take_c).tolist(), np.flatnonzero(take_l).tolist()
    return chan, layer, [i for i in range(b.n) if i not in set(chan) | set(layer)]


def _sub(b, idx):
    sub = _Bucket(b.gi, b.group, [b.params[i] for i in idx], [b.states[i] for i in idx])
    return sub


def _layer_coefficients(sub, kind, a, c, c1):
    """The layer view's ``c = sum(w.u)/(|w| + eps)^2`` per tensor (reads g, w, m (, v))."""
    rows = np.array([p.shape[0] for p in sub.params], dtype=np.int64)
    stats = np.empty((int(rows.sum()), 4))
    ms = sub.state_ptrs("exp_avg" if kind == 0 else "momentum_buffer")
    vs = sub.state_ptrs("exp_avg_sq") if kind == 0 else None
    _call(sub.fn("row_stats"), sub.n, _ptrs(sub.params), _ptrs(sub.grads), ms, vs, sub.sizes,
          sub.sizes // rows, kind, a, c, sub.group["eps"], _f64(c1), stats, _threads())
    starts = np.concatenate([[0], np.cumsum(rows)[:-1]])
    swu, sww = np.add.reduceat(stats[:, 3], starts), np.add.reduceat(stats[:, 2], starts)
    return swu / (np.sqrt(sww) + sub.group["eps"]) ** 2


def _adamp_apply(opt, buckets):
    for b in buckets:
        h = b.group
        beta1, beta2 = h["betas"]
        chan, layer, plain = _views(b)
        t = _advance_steps(b)
        scale, c1 = h["lr"] / (1 - beta1 ** t), 1 / np.sqrt(1 - beta2 ** t)
        decay, projected_decay = 1 - h["lr"] * h["weight_decay"], 1 - h["lr"] * h["weight_decay"] * h["wd_ratio"]
        if layer:
            sub = _sub(b, layer)
            coef = _layer_coefficients(sub, 0, beta1, beta2, c1[layer])
            _adam_update(sub, np.zeros(sub.n, np.int64), np.full(sub.n, 1 - beta1), c1[layer], scale[layer],
                         projected_decay + scale[layer] * coef)
        if chan:
            sub = _sub(b, chan)
            _call(sub.fn("channel_update"), sub.n, _ptrs(sub.params), _ptrs(sub.grads),
                  sub.state_ptrs("exp_avg"), sub.state_ptrs("exp_avg_sq"), sub.sizes, b.rowlen[chan], 0,
                  beta1, beta2, h["eps"], np.full(sub.n, 1 - beta1), _f64(c1[chan]), _f64(scale[chan]),
                  np.full(sub.n, projected_decay), 0, _threads())
        if plain:
            sub = _sub(b, plain)
            _adam_update(sub, np.zeros(sub.n, np.int64), np.full(sub.n, 1 - beta1), c1[plain], scale[plain],
                         np.full(sub.n, decay))


def _sgdp_apply(opt, buckets):
    for b in buckets:
        h = b.group
        mu, k = h["momentum"], 1 - h["dampening"]
        chan, layer, plain = _views(b)
        decay = 1 - h["lr"] * h["weight_decay"] / (1 - mu)
        projected_decay = 1 - h["lr"] * h["weight_decay"] * h["wd_ratio"] / (1 - mu)
        keep = int(h["project_buffer"])
        if layer:
            sub = _sub(b, layer)
            coef = _layer_coefficients(sub, 1, mu, k, np.ones(sub.n))
            _call(sub.fn("momentum_update"), sub.n, _ptrs(sub.params), _ptrs(sub.grads),
                  sub.state_ptrs("momentum_buffer"), sub.sizes, np.zeros(sub.n, np.int64), mu,
                  np.full(sub.n, k), np.full(sub.n, h["lr"]), np.full(sub.n, projected_decay), _f64(coef),
                  keep, _threads())
        if chan:
            sub = _sub(b, chan)
            _call(sub.fn("channel_update"), sub.n, _ptrs(sub.params), _ptrs(sub.grads),
                  sub.state_ptrs("momentum_buffer"), None, sub.sizes, b.rowlen[chan], 1, mu, 0.0, h["eps"],
                  np.full(sub.n, k), np.ones(sub.n), np.full(sub.n, h["lr"]), np.full(sub.n, projected_decay),
                  keep, _threads())
        if plain:
            sub = _sub(b, plain)
            _call(sub.fn("momentum_update"), sub.n, _ptrs(sub.params), _ptrs(sub.grads),
                  sub.state_ptrs("momentum_buffer"), sub.sizes, np.zeros(sub.n, np.int64), mu,
                  np.full(sub.n, k), np.full(sub.n, h["lr"]), np.full(sub.n, decay), None, 0, _threads())


#: class name -> (group options covered?, read-only pass returning witnesses, update pass)
KERNELS = {
    "VRAdam": (_vradam_ok, _vradam_prepare, _vradam_apply),
    "TAM": (lambda h: True, _torque_prepare, _tam_apply),
    "AdaTAM": (lambda h: True, _torque_prepare, _adatam_apply),
    "AdamP": (_projected_ok, _row_prepare, _adamp_apply),
    "SGDP": (_projected_ok, _row_prepare, _sgdp_apply),
}
