"""Plumbing shared by momentumlab's optimizers: validation, buckets, the non-finite policy.

A step runs in two phases so that a bad gradient loses nothing:

1. ``_prepare`` reads gradients and state (never writes them) and computes what
   the update needs beyond the current tensor -- VRAdam's norm, TAM's cosine,
   AdamP's cosine test -- and one finiteness witness per tensor;
2. after one host synchronisation per step (none with ``nonfinite="ignore"``)
   ``_apply`` updates parameters and state.

Tensors are processed in *buckets*: with ``foreach`` one bucket per parameter
group, device and dtype driven by ``torch._foreach_*`` kernels; without it one
bucket per tensor through the same code, so both paths share every formula.

Statistics shared by several tensors (VRAdam's global or group norm, TAM's global
cosine) are reduced in one canonical order whatever the buckets: one partial sum
per tensor (the same torch reduction on the same tensor in both paths), then the
partials of a scope, in the order (group, position in group), added by
:func:`ordered_sum`'s fixed pairwise tree of elementwise additions.  Elementwise
IEEE additions round the same on every CPU (AVX-512, AVX2, scalar) and GPU, so the
foreach and for-loop paths agree bit for bit on any one machine and thread count.

Low-precision tensors (bfloat16, float16) are updated, on every eager path, in
float32 and rounded once when stored (:meth:`MomentumlabOptimizer._apply_in_float32`),
as torch's fused kernels do; scalar statistics (``s_hat``, ``eta``, ``norm_sq``)
stay float32 and are not cast by :meth:`load_state_dict`.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field, replace
from itertools import chain

import torch
from torch.optim import Optimizer

from momentumlab.empirics.backend import TORCH
from momentumlab.empirics.optim import cuda

__all__ = ["MomentumlabOptimizer", "NonFiniteGradientError", "NONFINITE_POLICIES", "ordered_sum",
           "LOW_PRECISION"]

NONFINITE_POLICIES = ("raise", "skip", "ignore")
#: dtypes whose eager updates run in float32 (torch's fused kernels' "opmath")
LOW_PRECISION = (torch.bfloat16, torch.float16)
#: torch's ops for the rules' scalar algebra on device tensors (VRAdam's gate, TAM's damping):
#: ``min``/``max`` with a python bound as a clamp, so no tensor is made of the bound
DEVICE_OPS = replace(TORCH, minimum=lambda x, cap: torch.clamp(x, max=cap),
                     maximum=lambda x, floor: torch.clamp(x, min=floor))


class NonFiniteGradientError(FloatingPointError):
    """A gradient held NaN or inf; the step was refused and nothing was modified."""


def _interval(lo, hi, lo_open, hi_open) -> str:
    hi_s = "inf" if hi == math.inf else repr(hi)
    return f"{'(' if lo_open else '['}{lo!r}, {hi_s}{')' if hi_open else ']'}"


def check_real(owner: str, name: str, value, lo=0.0, hi=math.inf, *, lo_open=False,
               hi_open=None) -> float:
    """``value`` as a float when it is a real number in the interval, else a ``ValueError``
    naming ``owner``, ``name`` and the allowed range.  An infinite upper bound is open
    unless ``hi_open=False`` is given."""
    if hi_open is None:
        hi_open = hi == math.inf
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if ok:
        v = float(value)
        ok = (lo < v if lo_open else lo <= v) and (v < hi if hi_open else v <= hi)
    if not ok:
        raise ValueError(f"{owner}: {name} must be a real number in "
                         f"{_interval(lo, hi, lo_open, hi_open)}, got {value!r}")
    return float(value)


def check_betas(owner: str, betas, names=("betas[0]", "betas[1]")) -> tuple[float, float]:
    """Two coefficients in ``[0, 1)``."""
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise ValueError(f"{owner}: betas must be a pair (beta1, beta2) in [0, 1), got {betas!r}")
    return tuple(check_real(owner, n, b, 0.0, 1.0, hi_open=True) for n, b in zip(names, betas))


def check_choice(owner: str, name: str, value, choices):
    if value not in choices:
        raise ValueError(f"{owner}: {name} must be one of {', '.join(map(repr, choices))}, "
                         f"got {value!r}")
    return value


def check_flag(owner: str, name: str, value, allow_none=False):
    if not (isinstance(value, bool) or (allow_none and value is None)):
        raise ValueError(f"{owner}: {name} must be {'True, False or None' if allow_none else 'True or False'}, "
                         f"got {value!r}")
    return value


@dataclass
class Bucket:
    """Tensors of one parameter group (and device, dtype) updated together."""

    group: dict
    group_index: int
    params: list
    grads: list
    states: list
    positions: list  # index of each tensor in its group's "params"
    extra: dict = field(default_factory=dict)

    @property
    def device(self):
        return self.params[0].device

    @property
    def dtype(self):
        return self.params[0].dtype


def ordered_sum(rows: torch.Tensor) -> torch.Tensor:
    """Sum of ``rows`` over dim 0 by a fixed pairwise tree: ``((r0 + r1) + (r2 + r3)) + ...``.

    Each level adds adjacent pairs elementwise (an odd last row passes up unchanged), so
    the association depends only on the number of rows -- never on vector width, thread
    count or device -- and every addition is one correctly rounded IEEE operation.
    """
    while rows.shape[0] > 1:
        n = rows.shape[0] - rows.shape[0] % 2
        pairs = rows[0:n:2] + rows[1:n:2]
        rows = torch.cat((pairs, rows[n:])) if n < rows.shape[0] else pairs
    return rows[0]


def scope_sums(buckets, terms_key: str, scope_of) -> dict:
    """Per scope, the :func:`ordered_sum` of the per-tensor rows ``bucket.extra[terms_key]``
    taken in canonical order (group index, position in the group), whatever the bucketing.

    ``scope_of(bucket)`` names the bucket's scope (``None``: not shared).  Rows are
    promoted to float64 when any tensor of the scope is float64, and gathered on the
    device of the scope's first bucket; they are permuted only when the buckets' order
    is not already the canonical one (mixed dtypes or devices in a group).
    """
    parts: dict = {}
    for b in buckets:
        key = scope_of(b)
        if key is not None:
            parts.setdefault(key, []).append(b)
    sums = {}
    for key, bs in parts.items():
        dtype = torch.float64 if any(b.extra[terms_key].dtype == torch.float64 for b in bs) else \
            bs[0].extra[terms_key].dtype
        device = bs[0].extra[terms_key].device
        rows = torch.cat([b.extra[terms_key].to(device, dtype) for b in bs])
        where = [(b.group_index, pos) for b in bs for pos in b.positions]
        order = sorted(range(len(where)), key=where.__getitem__)
        if order != list(range(len(where))):
            rows = rows[torch.tensor(order, device=device)]
        sums[key] = ordered_sum(rows)
    return sums


def acc_dtype(dtype: torch.dtype) -> torch.dtype:
    """Dtype of the scalar statistics (norms, cosines, rates): float64 for float64, else float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def adam_moments_(ms, vs, gs, betas, maximize: bool) -> None:
    """In place, over tensor lists: ``m <- b1 m + (1-b1) g``, ``v <- b2 v + (1-b2) g^2``.

    Adam's moments (Kingma & Ba 2015, Alg. 1) with ``g`` negated when ``maximize``
    (the square is unchanged); shared by the eager paths of VRAdam and AdamP.  The fast
    in-place copy of :func:`theory.rules._adam_moments`, tested against the rule.
    """
    beta1, beta2 = betas
    if maximize:
        torch._foreach_mul_(ms, beta1)
        torch._foreach_add_(ms, gs, alpha=-(1 - beta1))
    else:
        torch._foreach_lerp_(ms, gs, 1 - beta1)
    torch._foreach_mul_(vs, beta2)
    torch._foreach_addcmul_(vs, gs, gs, value=1 - beta2)


class MomentumlabOptimizer(Optimizer):
    """Base class: subclasses define ``_validate_group``, ``_init_state``, ``_prepare``, ``_apply``."""

    def __init__(self, params, defaults: dict, nonfinite: str = "raise"):
        self.nonfinite = check_choice(type(self).__name__, "nonfinite", nonfinite, NONFINITE_POLICIES)
        self.skipped_steps = 0
        self._buffers: dict = {}
        super().__init__(params, defaults)

    def __setstate__(self, state):
        super().__setstate__(state)
        self.__dict__.setdefault("_buffers", {})
        self.__dict__.setdefault("nonfinite", "raise")
        self.__dict__.setdefault("skipped_steps", 0)

    #: float32 scalar state entries of low-precision parameters, kept float32 on load
    _scalar_state = ("s_hat", "eta", "norm_sq", "step")

    def load_state_dict(self, state_dict: dict) -> None:
        """torch's ``load_state_dict``, except that the scalar statistics (``s_hat``, ``eta``,
        ``norm_sq``, tensor ``step``) keep their saved dtype: torch would cast them to a
        bfloat16/float16 parameter's dtype, and the resumed run would differ from the saved."""
        super().load_state_dict(state_dict)
        saved = state_dict["state"]
        ids = chain.from_iterable(g["params"] for g in state_dict["param_groups"])
        params = chain.from_iterable(g["params"] for g in self.param_groups)
        for pid, p in zip(ids, params):
            for key in self._scalar_state:
                value = saved.get(pid, {}).get(key)
                if torch.is_tensor(value) and key in self.state[p]:
                    self.state[p][key] = value.to(device=p.device, copy=True)

    # ------------------------------------------------------------ validation
    def add_param_group(self, param_group: dict) -> None:
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        name = type(self).__name__
        for p in group["params"]:
            if torch.is_complex(p):
                self.param_groups.pop()
                raise ValueError(f"{name} does not support complex parameters (got {p.dtype}); "
                                 "optimize torch.view_as_real(p) instead")
        try:
            check_flag(name, "maximize", group["maximize"])
            check_flag(name, "foreach", group["foreach"], allow_none=True)
            check_flag(name, "fused", group["fused"], allow_none=True)
            self._validate_group(group)
        except ValueError:
            self.param_groups.pop()
            raise

    def _validate_group(self, group: dict) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    # ------------------------------------------------------------ buckets
    @staticmethod
    def _compiled(group, params) -> bool:
        """The compiled CUDA path (:mod:`empirics.optim.cuda`): ``fused=True`` on devices it serves."""
        return group["fused"] is True and bool(params) and all(cuda.available(p.device) for p in params)

    def _hyper(self, b: Bucket, name: str) -> torch.Tensor:
        """``b.group[name]`` as a 0-dim tensor on the bucket's device, kept between steps and
        refilled (no host synchronisation) when a scheduler changes the value."""
        value, acc = b.group[name], acc_dtype(b.dtype)
        key = ("hyper", b.group_index, name, b.device, acc)
        cached = self._buffers.get(key)
        if cached is None:
            cached = (value, torch.full((), value, dtype=acc, device=b.device))
        elif cached[0] != value:
            cached = (value, cached[1].fill_(value))
        self._buffers[key] = cached
        return cached[1]

    @staticmethod
    def _to_device(values: list, dtype, device) -> torch.Tensor:
        """Host numbers (e.g. bias corrections of integer step counts) as one device tensor:
        pinned and copied asynchronously on CUDA, so the step does not wait for the device."""
        t = torch.tensor(values, dtype=dtype)
        if device.type == "cuda":
            t = t.pin_memory()
        return t.to(device, non_blocking=True)

    def _foreach(self, group, params) -> bool:
        if self._compiled(group, params):
            return True
        flag = group["foreach"]
        if flag is None:
            return all(p.device.type == "cuda" for p in params)
        return flag

    def _buckets(self) -> list[Bucket]:
        name = type(self).__name__
        buckets = []
        for gi, group in enumerate(self.param_groups):
            items = [(i, p) for i, p in enumerate(group["params"]) if p.grad is not None]
            for _, p in items:
                if p.grad.is_sparse:
                    raise RuntimeError(f"{name} does not support sparse gradients")
            if not items:
                continue
            if self._foreach(group, [p for _, p in items]):
                keyed: dict = {}
                for i, p in items:
                    keyed.setdefault((p.device, p.dtype), []).append((i, p))
                chunks = list(keyed.values())
            else:
                chunks = [[item] for item in items]
            for chunk in chunks:
                ps = [p for _, p in chunk]
                buckets.append(Bucket(group, gi, ps, [p.grad for p in ps],
                                      [self.state[p] for p in ps], [i for i, _ in chunk]))
        return buckets

    def _flat_buffer(self, device, dtype, numel: int, slot: int = 0) -> torch.Tensor:
        """A persistent 1-D buffer of at least ``numel`` values (grown when needed)."""
        key = (device, dtype, slot)
        buf = self._buffers.get(key)
        if buf is None or buf.numel() < numel:
            buf = self._buffers[key] = torch.empty(numel, dtype=dtype, device=device)
        return buf

    def _scratch(self, tensors, slot: int = 0) -> list[torch.Tensor]:
        """Views shaped like ``tensors`` into a persistent buffer (no allocation per step)."""
        t0 = tensors[0]
        buf = self._flat_buffer(t0.device, t0.dtype, sum(t.numel() for t in tensors), slot)
        views, off = [], 0
        for t in tensors:
            views.append(buf[off:off + t.numel()].view(t.shape))
            off += t.numel()
        return views

    # ------------------------------------------------------------ step
    def _init_state(self, p: torch.Tensor, state: dict, group: dict) -> None:  # pragma: no cover
        raise NotImplementedError

    def _prepare(self, buckets: list[Bucket]) -> list[torch.Tensor]:  # pragma: no cover
        raise NotImplementedError

    def _apply(self, buckets: list[Bucket]) -> None:
        """Per bucket: the compiled CUDA step when it applies, else ``_eager_step`` (in
        float32 for bfloat16/float16 buckets).  Classes with more paths override this."""
        for b in buckets:
            if self._compiled(b.group, b.params):
                self._compiled_step(b)
            else:
                self._apply_in_float32(b, self._eager_step)

    def _apply_in_float32(self, b: Bucket, step) -> None:
        """Run ``step(bucket)`` on float32 copies of a bfloat16/float16 bucket's parameters,
        gradients and state tensors, then store the results rounded once to the bucket's
        dtype (torch's fused kernels compute in float32 likewise).  In low precision the
        eager formulas would round every intermediate, and in float16 ``eps = 1e-8``
        becomes 0 and ``sqrt(v) + eps`` can be 0: these paths then agree with the fused ones.
        """
        if b.dtype not in LOW_PRECISION:
            step(b)
            return
        f32 = lambda t: t.to(torch.float32)  # noqa: E731
        states = [{k: f32(v) if torch.is_tensor(v) and v.dtype == b.dtype else v for k, v in st.items()}
                  for st in b.states]
        shadow = replace(b, params=[f32(p) for p in b.params], grads=[f32(g) for g in b.grads],
                         states=states)
        step(shadow)
        for p, p32 in zip(b.params, shadow.params):
            p.copy_(p32)
        for st, st32 in zip(b.states, shadow.states):
            for k, v in st32.items():
                if torch.is_tensor(st.get(k)) and st[k].dtype == b.dtype:
                    st[k].copy_(v)
                else:
                    st[k] = v

    @staticmethod
    def _all_finite(witnesses: list[torch.Tensor]) -> bool:
        by_device: dict = {}
        for w in witnesses:
            by_device.setdefault(w.device, []).append(w.reshape(-1))
        return all(bool(torch.cat(ws).isfinite().all()) for ws in by_device.values())

    @torch.no_grad()
    def step(self, closure=None):
        """One update.  ``closure`` re-evaluates the model and returns the loss."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        # --- compiled CPU kernels (empirics/optim/native); the torch code below is the fallback
        from momentumlab.empirics.optim import native
        if native.step(self):
            return loss
        # --- end of the compiled path
        buckets = self._buckets()
        fresh = []
        for b in buckets:
            for p, state in zip(b.params, b.states):
                if not state:
                    self._init_state(p, state, b.group)
                    fresh.append(p)
        witnesses = self._prepare(buckets)
        if self.nonfinite != "ignore" and witnesses and not self._all_finite(witnesses):
            self._refuse_step(fresh)
            return loss
        self._apply(buckets)
        return loss

    def _refuse_step(self, fresh) -> None:
        """A gradient was not finite: forget the states created for this step, then raise
        (``nonfinite="raise"``) or count the skipped step."""
        for p in fresh:
            del self.state[p]
        if self.nonfinite == "raise":
            raise NonFiniteGradientError(
                f"{type(self).__name__}: a gradient holds NaN or inf; the step was refused and "
                "parameters and state are unchanged (nonfinite='skip' skips such steps, "
                "'ignore' applies them)")
        self.skipped_steps += 1

    @property
    def native_active(self) -> bool:
        """Whether the compiled CPU kernels take the next step (see ``empirics.optim.native``;
        set ``optimizer.native = False`` to use the torch code)."""
        from momentumlab.empirics.optim import native
        return native.covers(self)
