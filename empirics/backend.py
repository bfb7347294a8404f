"""The torch namespace for :mod:`theory.rules`, and device / seed selection.

Every experiment takes a device and a seed:
:func:`resolve_device` turns ``auto|cpu|cuda`` into a ``torch.device`` and
:func:`seeded` returns a generator so that runs are reproducible given both.
"""
from __future__ import annotations

import random

import numpy as np
import torch

from momentumlab.theory.ops import Ops

__all__ = ["torch_ops", "TORCH", "resolve_device", "seed_everything", "generator", "DEVICE_CHOICES"]

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def torch_ops(batch_dims: int = 0) -> Ops:
    """Torch namespace for the update rules; the first ``batch_dims`` axes are batch axes."""

    def param_dims(x):
        return tuple(range(batch_dims, x.dim()))

    def inner(x, y):
        prod = x * y
        dims = param_dims(prod)
        if not dims:
            return prod
        return prod.sum(dim=dims, keepdim=batch_dims > 0)

    def amax_rows(x):
        return x.amax(dim=(-2, -1), keepdim=batch_dims > 0)

    def where(c, a, b):
        if not torch.is_tensor(c):
            return a if c else b
        if not torch.is_tensor(a) and not torch.is_tensor(b):
            # python scalars: keep float64 (torch.where would make them float32); a 0-d
            # float64 tensor does not promote the dimensioned tensors it later multiplies
            a = torch.tensor(a, dtype=torch.float64, device=c.device)
        return torch.where(c, a, b)

    def _as_tensor(x, like):
        return x if torch.is_tensor(x) else torch.as_tensor(x, dtype=like.dtype, device=like.device)

    return Ops(
        name=f"torch[{batch_dims}]",
        sqrt=torch.sqrt,
        abs=torch.abs,
        minimum=lambda a, b: torch.minimum(a, _as_tensor(b, a)),
        maximum=lambda a, b: torch.maximum(a, _as_tensor(b, a)) if torch.is_tensor(a) else max(a, b),
        where=where,
        inner=inner,
        zeros_like=torch.zeros_like,
        ndim=lambda x: x.dim() - batch_dims,
        rows=lambda x: x.reshape(*x.shape[: batch_dims + 1], -1),
        flat=lambda x: x.reshape(*x.shape[:batch_dims], 1, -1),
        row_inner=lambda x, y: (x * y).sum(dim=-1, keepdim=True),
        amax_rows=amax_rows,
        unview=lambda x, like: x.reshape(like.shape),
    )


TORCH = torch_ops()


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` picks CUDA when available, else the CPU; asking for CUDA without one is an error."""
    if isinstance(device, torch.device):
        return device
    if device not in DEVICE_CHOICES and not str(device).startswith("cuda:"):
        raise ValueError(f"device must be one of {', '.join(DEVICE_CHOICES)} (or cuda:N), got {device!r}")
    if device == "auto":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but torch reports no CUDA device")
    return torch.device("cuda:0" if device == "cuda" else device)


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A torch generator on ``device`` seeded with ``seed``."""
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    return gen
