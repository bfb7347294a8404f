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
per tensor (the statistics are plain host memory).  Per parameter group the sizes and
pointers are kept from one step to the next (:class:`_Entry`): parameters and state
tensors are recognised by identity and address, so the Python work per step is a few
attribute reads per gradient.

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
import weakref

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
    "row_stats": [_I, _P, _P, _P, _P, _P, _I],
    "layer_stats": [_I, _P, _P, _P, _P, _P, _P, _I, _D, _D, _D, _P, _P, _I],
    "adam_update": [_I, _P, _P, _P, _P, _P, _D, _D, _D, _P, _P, _P, _P, _I],
    "momentum_update": [_I, _P, _P, _P, _P, _D, _P, _P, _P, _P, _I, _I],
    "channel_update": [_I, _P, _P, _P, _P, _P, _P, _P, _I, _D, _D, _D, _P, _P, _P, _P, _I, _I],
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
    return np.array([t.data_ptr() for t in tensors], dtype=np.uintp)


def _call(fn, *args) -> None:
    """Call a kernel; numpy arrays become their addresses (``args`` keeps them alive)."""
    fn(*[a.ctypes.data if isinstance(a, np.ndarray) else a for a in args])


def _f64(values) -> np.ndarray:
    return np.ascontiguousarray(values, dtype=np.float64)


def _threads() -> int:
    return max(1, torch.get_num_threads())


class _Bucket:
    """The tensors of one parameter group and dtype with a gradient, with their pointers."""

    def __init__(self, gi, group, params, grads, states, entry):
        self.gi, self.group, self.params, self.grads, self.states = gi, group, params, grads, states
        self.dtype = params[0].dtype
        self.suffix = _DTYPES[self.dtype]
        self.n = len(params)
        self.entry = entry  # what is cached from step to step (_Entry)
        self.sizes, self.p_ptrs, self.g_ptrs = entry.sizes, entry.p_ptrs, _ptrs(grads)
        self._state_ptrs = entry.state_ptrs

    def fn(self, name):
        return getattr(_library(), f"{name}_{self.suffix}")

    def state_ptrs(self, key):
        return self._state_ptrs[key]

    def sub(self, idx):
        """The bucket of the tensors ``idx`` (same group and dtype)."""
        b = _Bucket.__new__(_Bucket)
        b.gi, b.group, b.dtype, b.suffix, b.entry = self.gi, self.group, self.dtype, self.suffix, None
        b.params = [self.params[i] for i in idx]
        b.grads = [self.grads[i] for i in idx]
        b.states = [self.states[i] for i in idx]
        b.n, b.sizes = len(idx), self.sizes[idx]
        b.p_ptrs, b.g_ptrs = self.p_ptrs[idx], self.g_ptrs[idx]
        b._state_ptrs = {k: v[idx] for k, v in self._state_ptrs.items()}
        return b


class _Entry:
    """Per parameter group and dtype, kept between steps: the parameters' sizes and pointers,
    and the state tensors' pointers (the tensors recognised by identity, held weakly, so a
    state replaced by ``load_state_dict`` is checked again and the old one is freed)."""

    def __init__(self, params, p_ptrs):
        self.params = params
        self.p_ptrs = np.array(p_ptrs, dtype=np.uintp)
        self.sizes = np.array([p.numel() for p in params], dtype=np.int64)
        self.state_refs, self.state_ptrs, self.scalars = {}, {}, {}

    def bind_states(self, states, keys) -> bool:
        """Pointers of the state tensors ``keys``; False when one is unusable (wrong dtype,
        size, device or layout)."""
        for key in keys:
            tensors = [s[key] for s in states]
            refs = self.state_refs.get(key)
            if refs is not None and all(r() is t for r, t in zip(refs, tensors)):
                continue
            if not all(isinstance(v, torch.Tensor) and _state_ok(v, p) for v, p in zip(tensors, self.params)):
                return False
            self.state_refs[key], self.state_ptrs[key] = [weakref.ref(t) for t in tensors], _ptrs(tensors)
        return True


_CPU = torch.device("cpu")
_STRIDED = torch.strided


def _eligible_tensor(t) -> bool:
    return (t.device == _CPU and t.dtype in _DTYPES and t.layout == _STRIDED
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


def _state_ok(v, p) -> bool:
    """A state tensor the kernels can use for ``p``: contiguous, on the CPU, of ``p``'s dtype
    and size."""
    return (v.dtype == p.dtype and v.device == _CPU and v.layout == _STRIDED and v.is_contiguous()
            and v.numel() == p.numel())


def _buckets(opt):
    """(group index, group, params, grads, entry) per group and dtype of the step, or None
    when any group or tensor is not covered.  A gradient has its parameter's shape and device
    (torch's ``.grad`` setter insists); its dtype, layout and contiguity are checked here."""
    cache = opt.__dict__.setdefault("_native_entries", {})
    out = []
    for gi, group in enumerate(opt.param_groups):
        params = [p for p in group["params"] if p.grad is not None]
        if not params:
            continue
        if not _group_ok(opt, group):
            return None
        grads = [p.grad for p in params]
        if not all(g.dtype == p.dtype and g.layout == _STRIDED and g.is_contiguous()
                   for p, g in zip(params, grads)):
            return None
        p_ptrs = [p.data_ptr() for p in params]
        known = cache.get(gi)
        if known is None or not (known[1] == p_ptrs and all(a is b for a, b in zip(known[0], params))):
            if not all(_eligible_tensor(p) for p in params):
                return None
            by_dtype: dict = {}
            for i, p in enumerate(params):
                by_dtype.setdefault(p.dtype, []).append(i)
            known = cache[gi] = (params, p_ptrs, [
                (idx, _Entry([params[i] for i in idx], [p_ptrs[i] for i in idx])) for idx in by_dtype.values()])
        for idx, entry in known[2]:
            if len(idx) == len(params):
                out.append((gi, group, params, grads, entry))
            else:  # a group of float32 and float64 tensors: one bucket per dtype
                out.append((gi, group, [params[i] for i in idx], [grads[i] for i in idx], entry))
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
    opt_state = opt.state
    keys = _TENSOR_STATE[name]
    for gi, group, ps, gs, entry in found:
        states = [opt_state[p] for p in ps]
        for p, state in zip(ps, states):
            if not state:
                opt._init_state(p, state, group)
                fresh.append(p)
        if not entry.bind_states(states, keys):
            for q in fresh:
                del opt_state[q]
            return False
        buckets.append(_Bucket(gi, group, ps, gs, states, entry))
    _, prepare, apply = KERNELS[name]
    witnesses = prepare(opt, buckets)
    if opt.nonfinite != "ignore" and not all(np.isfinite(w).all() for w in witnesses):
        opt._refuse_step(fresh)
        return True
    apply(opt, buckets)
    return True


def _packed(b, key) -> torch.Tensor:
    """The 0-dim state tensors ``key`` of a full bucket as one tensor whose views they are:
    made so on first use (``state[key]`` becomes a view, as the torch code stores them too),
    then recognised by identity, so reading and writing them is one tensor operation."""
    tensors = [s[key] for s in b.states]
    known = b.entry.scalars.get(key)
    if known is not None and all(r() is t for r, t in zip(known[1], tensors)):
        return known[0]
    packed = torch.stack([t.cpu() for t in tensors])
    views = packed.unbind()
    for s, v in zip(b.states, views):
        s[key] = v
    b.entry.scalars[key] = (packed, [weakref.ref(v) for v in views])
    return packed


# ----------------------------------------------------------------- VRAdam
def _vradam_ok(h) -> bool:
    return h["power"] == 2 and h["norm_scope"] in ("global", "group")


def _vradam_prepare(opt, buckets):
    """``|m_t|^2`` (velocity gate; ``m_t`` formed from ``m`` and ``g``, not written) or
    ``|g|^2`` per tensor (reads only); they are the witnesses."""
    for b in buckets:
        h = b.group
        b.terms = np.empty(b.n)
        beta1 = h["betas"][0]
        velocity = h["gate"] == "velocity"
        _call(b.fn("tensor_sums"), b.n, b.state_ptrs("exp_avg") if velocity else None, b.g_ptrs,
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
        steps = _packed(b, "step")  # the float32 counters, advanced in one operation
        steps.add_(1)
        t = steps.numpy().astype(np.float64)
        bc1, bc2 = 1 - beta1 ** t, 1 - beta2 ** t
        ones = np.ones(b.n)
        _adam_update(b, ones * (1 - beta1), 1 / np.sqrt(bc2), eta / bc1, ones * (1 - eta * h["weight_decay"]))
        eta_t, n_t = torch.tensor(eta, dtype=b.dtype), torch.tensor(n, dtype=b.dtype)
        for s in b.states:
            s["eta"], s["norm_sq"] = eta_t, n_t
        opt.last_eta[b.gi], opt.last_norm_sq[b.gi] = eta_t, n_t


# ----------------------------------------------------------------- TAM, AdaTAM
def _torque_prepare(opt, buckets):
    """``(m.g, |m|^2, |g|^2)`` per tensor (read-only); the witnesses are the ``|g|^2``."""
    for b in buckets:
        b.terms = np.empty((b.n, 3))
        _call(b.fn("tensor_sums"), b.n, b.state_ptrs(opt._moment), b.g_ptrs, b.sizes, 2,
              0.0, 0.0, b.terms, _threads())
    return [b.terms[:, 2] for b in buckets]


def _damping(buckets):
    """``s_hat`` and ``k = eps + d`` per tensor, over the cosine's scope (the rule's formula)."""
    shared = sum(b.terms.sum(0) for b in buckets if b.group["cosine_scope"] == "global")
    for b in buckets:
        terms = b.terms if b.group["cosine_scope"] == "tensor" else np.broadcast_to(shared, b.terms.shape)
        prev = _packed(b, "s_hat")
        b.s_hat, d = _tam_damping(tuple(terms.T), {"s_hat": prev.numpy().astype(np.float64)}, b.group, NUMPY)
        b.s_hat_packed = prev
        b.k1 = _f64(b.group["eps"] + d)


def _tam_apply(opt, buckets):
    _damping(buckets)
    for b in buckets:
        h = b.group
        ones = np.ones(b.n)
        _call(b.fn("momentum_update"), b.n, b.p_ptrs, b.g_ptrs, b.state_ptrs("momentum_buffer"),
              b.sizes, h["momentum"], b.k1, ones * h["lr"], ones * (1 - h["lr"] * h["weight_decay"]),
              None, 0, _threads())
        b.s_hat_packed.copy_(torch.from_numpy(b.s_hat))


def _advance_steps(b) -> np.ndarray:
    """``state["step"] += 1`` (python ints, as the torch code keeps them); the new counts."""
    out = np.empty(b.n)
    for i, st in enumerate(b.states):
        st["step"] = out[i] = st["step"] + 1
    return out


def _adam_update(b, k1, c1, scale, decay):
    beta1, beta2 = b.group["betas"]
    _call(b.fn("adam_update"), b.n, b.p_ptrs, b.g_ptrs, b.state_ptrs("exp_avg"),
          b.state_ptrs("exp_avg_sq"), b.sizes, beta1, beta2, b.group["eps"], _f64(k1),
          _f64(c1), _f64(scale), _f64(decay), _threads())


def _adatam_apply(opt, buckets):
    _damping(buckets)
    for b in buckets:
        h = b.group
        t = _advance_steps(b)
        c1 = 1 / np.sqrt(1 - h["betas"][1] ** t) if h["bias_correction"] else np.ones(b.n)
        _adam_update(b, b.k1, c1, np.full(b.n, h["lr"]), np.full(b.n, 1 - h["lr"] * h["weight_decay"]))
        b.s_hat_packed.copy_(torch.from_numpy(b.s_hat))


# ----------------------------------------------------------------- AdamP, SGDP
def _projected_ok(h) -> bool:
    return not h["nesterov"]


def _order_projected(b):
    """Tensors with dim > 1 first (their rows lead the statistics), then the others."""
    dims = [p.dim() > 1 for p in b.params]
    if not all(dims[i] >= dims[i + 1] for i in range(b.n - 1)):
        order = sorted(range(b.n), key=lambda i: not dims[i])
        b = b.sub(order)
        dims = [dims[i] for i in order]
    b.nproj = sum(dims)
    b.rows = np.array([p.shape[0] if d else 1 for p, d in zip(b.params, dims)], dtype=np.int64)
    b.rowlen = b.sizes // b.rows  # the statistics pass: every tensor in whole rows
    b.row_start = np.concatenate([[0], np.cumsum(b.rows)])
    return b


def _row_prepare(opt, buckets):
    """Per row of every tensor ``(g.w, |g|^2, |w|^2)`` (reads g, w only); the witnesses are
    the ``|g|^2``."""
    for i, b in enumerate(buckets):
        b = buckets[i] = _order_projected(b)
        b.stats = np.empty((int(b.row_start[-1]), 4))
        _call(b.fn("row_stats"), b.n, b.p_ptrs, b.g_ptrs, b.sizes, b.rowlen, b.stats, _threads())
    return [b.stats[:, 1] for b in buckets]


def _views(b):
    """AdamP's cosine test (the authors' ``_projection``, on the row statistics): indices of
    the tensors projected in the channel view, in the layer view, and of the others."""
    h, k = b.group, b.nproj
    if not k:
        return [], [], list(range(b.n))
    nrows = int(b.row_start[k])
    gw, gg, ww = b.stats[:nrows, :3].T
    starts = b.row_start[:k]
    cos_rows = np.abs(gw) / np.maximum(np.sqrt(gg * ww), h["eps"])
    take_c = np.maximum.reduceat(cos_rows, starts) < h["delta"] / np.sqrt(b.rowlen[:k])
    sgw, sgg, sww = (np.add.reduceat(x, starts) for x in (gw, gg, ww))
    cos_l = np.abs(sgw) / np.maximum(np.sqrt(sgg * sww), h["eps"])
    take_l = ~take_c & (cos_l < h["delta"] / np.sqrt(b.sizes[:k]))
    chan, layer = np.flatnonzero(take_c).tolist(), np.flatnonzero(take_l).tolist()
    taken = set(chan) | set(layer)
    return chan, layer, [i for i in range(b.n) if i not in taken]


def _row_ww(b, idx) -> np.ndarray:
    """``|w|^2`` of every row of the tensors ``idx``, in order (from the statistics pass)."""
    return np.ascontiguousarray(np.concatenate([b.stats[b.row_start[i]:b.row_start[i + 1], 2] for i in idx]))


def _layer_coefficients(sub, kind, a, c, c1):
    """The layer view's ``c = sum(w.u)/(|w| + eps)^2`` per tensor (reads g, w, m (, v))."""
    rows = np.array([p.shape[0] for p in sub.params], dtype=np.int64)
    stats = np.empty((int(rows.sum()), 4))
    ms = sub.state_ptrs("exp_avg" if kind == 0 else "momentum_buffer")
    vs = sub.state_ptrs("exp_avg_sq") if kind == 0 else None
    _call(sub.fn("layer_stats"), sub.n, sub.p_ptrs, sub.g_ptrs, ms, vs, sub.sizes,
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
            sub = b.sub(layer)
            coef = _layer_coefficients(sub, 0, beta1, beta2, c1[layer])
            _adam_update(sub, np.full(sub.n, 1 - beta1), c1[layer], scale[layer],
                         projected_decay + scale[layer] * coef)
        if chan:
            sub = b.sub(chan)
            _call(sub.fn("channel_update"), sub.n, sub.p_ptrs, sub.g_ptrs, sub.state_ptrs("exp_avg"),
                  sub.state_ptrs("exp_avg_sq"), sub.sizes, b.rowlen[chan], _row_ww(b, chan), 0,
                  beta1, beta2, h["eps"], np.full(sub.n, 1 - beta1), _f64(c1[chan]), _f64(scale[chan]),
                  np.full(sub.n, projected_decay), 0, _threads())
        if plain:
            sub = b.sub(plain) if len(plain) < b.n else b
            _adam_update(sub, np.full(sub.n, 1 - beta1), c1[plain], scale[plain], np.full(sub.n, decay))


def _sgdp_apply(opt, buckets):
    for b in buckets:
        h = b.group
        mu, k = h["momentum"], 1 - h["dampening"]
        chan, layer, plain = _views(b)
        decay = 1 - h["lr"] * h["weight_decay"] / (1 - mu)
        projected_decay = 1 - h["lr"] * h["weight_decay"] * h["wd_ratio"] / (1 - mu)
        keep = int(h["project_buffer"])
        if layer:
            sub = b.sub(layer)
            coef = _layer_coefficients(sub, 1, mu, k, np.ones(sub.n))
            _call(sub.fn("momentum_update"), sub.n, sub.p_ptrs, sub.g_ptrs, sub.state_ptrs("momentum_buffer"),
                  sub.sizes, mu, np.full(sub.n, k), np.full(sub.n, h["lr"]), np.full(sub.n, projected_decay),
                  _f64(coef), keep, _threads())
        if chan:
            sub = b.sub(chan)
            _call(sub.fn("channel_update"), sub.n, sub.p_ptrs, sub.g_ptrs, sub.state_ptrs("momentum_buffer"),
                  None, sub.sizes, b.rowlen[chan], _row_ww(b, chan), 1, mu, 0.0, h["eps"],
                  np.full(sub.n, k), np.ones(sub.n), np.full(sub.n, h["lr"]), np.full(sub.n, projected_decay),
                  keep, _threads())
        if plain:
            sub = b.sub(plain) if len(plain) < b.n else b
            _call(sub.fn("momentum_update"), sub.n, sub.p_ptrs, sub.g_ptrs, sub.state_ptrs("momentum_buffer"),
                  sub.sizes, mu, np.full(sub.n, k), np.full(sub.n, h["lr"]), np.full(sub.n, decay), None, 0,
                  _threads())


#: the state tensors each kernel reads and writes (besides the parameters and gradients)
_TENSOR_STATE = {"VRAdam": ("exp_avg", "exp_avg_sq"), "TAM": ("momentum_buffer",),
                 "AdaTAM": ("exp_avg", "exp_avg_sq"), "AdamP": ("exp_avg", "exp_avg_sq"),
                 "SGDP": ("momentum_buffer",)}
#: class name -> (group options covered?, read-only pass returning witnesses, update pass)
KERNELS = {
    "VRAdam": (_vradam_ok, _vradam_prepare, _vradam_apply),
    "TAM": (lambda h: True, _torque_prepare, _tam_apply),
    "AdaTAM": (lambda h: True, _torque_prepare, _adatam_apply),
    "AdamP": (_projected_ok, _row_prepare, _adamp_apply),
    "SGDP": (_projected_ok, _row_prepare, _sgdp_apply),
}
