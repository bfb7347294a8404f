"""Small networks for the experiments."""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["Normalization", "ScaleInvariantMLP", "TanhMLP"]


class Normalization(nn.Module):
    """Batch (``dim=0``) or layer (``dim=-1``) normalisation with affine gain and shift.

    ``(z - mean) / sqrt(var + eps) * weight + bias`` with the biased variance, as
    torch's BatchNorm (training mode) and LayerNorm compute it.  Written out
    because torch refuses ``eps = 0`` for batch norm in training, and ``eps = 0``
    is what makes the preceding weights exactly scale invariant.
    """

    def __init__(self, features: int, dim: int, eps: float = 0.0):
        super().__init__()
        self.dim, self.eps = dim, eps
        self.weight = nn.Parameter(torch.ones(features))
        self.bias = nn.Parameter(torch.zeros(features))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        mean = z.mean(dim=self.dim, keepdim=True)
        var = z.var(dim=self.dim, unbiased=False, keepdim=True)
        return (z - mean) / torch.sqrt(var + self.eps) * self.weight + self.bias


class ScaleInvariantMLP(nn.Module):
    """``64 -> Linear -> BatchNorm -> ReLU -> Linear -> LayerNorm -> ReLU -> Linear -> 10``.

    ``fc1.weight`` feeds batch normalisation, so each of its rows (output
    channel) is scale invariant; ``fc2.weight`` feeds layer normalisation, so
    the whole matrix is (AdamP paper, Sec. 2.1).  Both layers have no bias
    (normalisation would cancel it).  With ``norm_eps = 0`` the invariance is
    exact; the usual ``eps`` (1e-5) breaks it by a relative amount of order
    ``eps / variance``.
    """

    scale_invariant = ("fc1.weight", "fc2.weight")

    def __init__(self, d_in: int = 64, width: int = 32, classes: int = 10, norm_eps: float = 0.0):
        super().__init__()
        self.fc1 = nn.Linear(d_in, width, bias=False)
        self.bn = Normalization(width, dim=0, eps=norm_eps)
        self.fc2 = nn.Linear(width, width, bias=False)
        self.ln = Normalization(width, dim=-1, eps=norm_eps)
        self.head = nn.Linear(width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.bn(self.fc1(x)))
        h = torch.relu(self.ln(self.fc2(h)))
        return self.head(h)


class TanhMLP(nn.Module):
    """``64 -> (Linear -> tanh) x depth -> Linear -> 10``: Cohen et al.'s fc-tanh, small.

    No normalisation layers, so train/eval mode does not change the function.
    """

    def __init__(self, d_in: int = 64, width: int = 32, depth: int = 2, classes: int = 10):
        super().__init__()
        dims = [d_in] + [width] * depth
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.head = nn.Linear(dims[-1], classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.hidden:
            x = torch.tanh(layer(x))
        return self.head(x)
