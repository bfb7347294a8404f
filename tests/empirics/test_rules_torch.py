"""The update rules of theory.rules against torch.optim's own SGD, Adam and AdamW, in float64.

This pins the oracle to PyTorch's conventions (heavy-ball p = beta p + g,
Nesterov d = g + beta p, Adam's eps placement and bias correction).
"""
import pytest
import torch

from momentumlab.empirics.backend import TORCH
from momentumlab.theory.rules import get_rule

SHAPES = [(), (5,), (4, 3), (3, 2, 3, 3)]
CASES = [
    ("heavy_ball", torch.optim.SGD, {"lr": 0.1, "momentum": 0.9}),
    ("heavy_ball", torch.optim.SGD, {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.01}),
    ("nesterov", torch.optim.SGD, {"lr": 0.05, "momentum": 0.8, "nesterov": True}),
    ("gd", torch.optim.SGD, {"lr": 0.1}),
    ("heavy_ball", torch.optim.SGD, {"lr": 0.1, "momentum": 0.5, "maximize": True}),
    ("adam", torch.optim.Adam, {"lr": 1e-2, "betas": (0.8, 0.99), "weight_decay": 0.1}),
    ("adamw", torch.optim.AdamW, {"lr": 1e-2, "betas": (0.9, 0.999), "weight_decay": 0.1}),
    ("adam", torch.optim.Adam, {"lr": 1e-2, "maximize": True}),
]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("rule_name,cls,kw", CASES, ids=lambda x: str(x)[:40])
def test_rule_equals_torch_optimizer(rule_name, cls, kw, shape):
    gen = torch.Generator().manual_seed(0)
    w0 = torch.randn(shape, generator=gen, dtype=torch.float64)
    grads = [torch.randn(shape, generator=gen, dtype=torch.float64) for _ in range(20)]
    p = w0.clone().requires_grad_(True)
    opt = cls([p], foreach=False, **kw)
    rule = get_rule(rule_name)
    h = rule.hyper(**{k: v for k, v in kw.items() if k in rule.defaults})
    w, state = w0.clone(), rule.init(w0, TORCH)
    for g in grads:
        p.grad = g.clone()
        opt.step()
        w, state = rule(w, g, state, h, TORCH)
        torch.testing.assert_close(w, p.detach(), rtol=1e-13, atol=1e-15)
