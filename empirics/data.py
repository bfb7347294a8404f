"""Real data that a package ships: scikit-learn's 8x8 digits (1,797 images, 10 classes).

Nothing is downloaded: ``sklearn.datasets.load_digits`` reads a file inside the
scikit-learn wheel.
"""
from __future__ import annotations

import functools

import numpy as np
import torch

__all__ = ["digits", "minibatches"]


@functools.lru_cache(maxsize=1)
def _digits_numpy():
    from sklearn.datasets import load_digits

    data = load_digits()
    x = data.data.astype(np.float64)
    x = (x - x.mean(axis=0)) / (x.std(axis=0) + 1e-12)  # constant border pixels stay 0
    return x, data.target.astype(np.int64)


def digits(device="cpu", dtype=torch.float64, n: int | None = None):
    """Standardised digits features ``(N, 64)`` and labels ``(N,)`` on ``device``; first ``n`` if given."""
    x, y = _digits_numpy()
    if n is not None:
        x, y = x[:n], y[:n]
    return (torch.as_tensor(x, dtype=dtype, device=device),
            torch.as_tensor(y, device=device))


def minibatches(n_samples: int, batch_size: int, steps: int, seed: int) -> list[torch.Tensor]:
    """``steps`` index batches drawn without replacement within a batch, reproducible from ``seed``."""
    gen = torch.Generator().manual_seed(seed)
    return [torch.randperm(n_samples, generator=gen)[:batch_size] for _ in range(steps)]
