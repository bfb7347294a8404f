"""The rules added for ``analyze`` (QHM, AggMo, SGD with dampening, Adan, Lion) against
independent torch implementations, in float64.

The oracles are written by others: ``torch.optim.SGD`` for dampening (including its
undamped first step) and pytorch_optimizer's ``QHM``, ``AggMo``, ``Adan`` and ``Lion``.
Tolerance: those classes order the float operations differently (``lerp``, one ``add_`` per
AggMo buffer, ``addcdiv``), so agreement is to rounding, not bit-for-bit: 20 steps of
O(1) values accumulate a few ulps, far below ``rtol = 1e-12``; a wrong coefficient (e.g.
``1 - beta`` for ``beta``) is an O(1) error.
"""
import pytest
import torch

pytorch_optimizer = pytest.importorskip("pytorch_optimizer")

from momentumlab.empirics.backend import TORCH  # noqa: E402
from momentumlab.theory.rules import get_rule  # noqa: E402

SHAPES = [(), (5,), (4, 3)]
CASES = [
    ("sgd", torch.optim.SGD, {"lr": 0.1, "momentum": 0.9, "dampening": 0.5}, {}),
    ("sgd", torch.optim.SGD, {"lr": 0.05, "momentum": 0.8, "dampening": 0.3, "nesterov": False,
                              "weight_decay": 0.01}, {}),
    ("sgd", torch.optim.SGD, {"lr": 0.05, "momentum": 0.8, "dampening": 0.0, "nesterov": True}, {}),
    ("qhm", pytorch_optimizer.QHM, {"lr": 0.1, "momentum": 0.9, "nu": 0.7}, {}),
    ("qhm", pytorch_optimizer.QHM, {"lr": 0.1, "momentum": 0.99, "nu": 0.3, "weight_decay": 0.01},
     {"weight_decouple": False}),
    ("aggmo", pytorch_optimizer.AggMo, {"lr": 0.1, "betas": (0.0, 0.9, 0.99)}, {}),
    ("aggmo", pytorch_optimizer.AggMo, {"lr": 0.05, "betas": (0.5, 0.95)}, {}),
    ("aggmo", pytorch_optimizer.AggMo, {"lr": 0.05, "betas": (0.5, 0.95), "weight_decay": 0.1},
     {"weight_decouple": False}),
    ("adan", pytorch_optimizer.Adan, {"lr": 1e-2, "betas": (0.98, 0.92, 0.99)}, {}),
    ("adan", pytorch_optimizer.Adan, {"lr": 1e-2, "betas": (0.9, 0.8, 0.95), "eps": 1e-6,
                                      "weight_decay": 0.1}, {"weight_decouple": False}),
    ("lion", pytorch_optimizer.Lion, {"lr": 1e-2, "betas": (0.9, 0.99)}, {}),
    ("lion", pytorch_optimizer.Lion, {"lr": 1e-2, "betas": (0.8, 0.9), "weight_decay": 0.1}, {}),
]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("rule_name,cls,kw,extra", CASES, ids=lambda x: str(x)[:40])
def test_new_rule_equals_torch_implementation(rule_name, cls, kw, extra, shape):
    gen = torch.Generator().manual_seed(1)
    w0 = torch.randn(shape, generator=gen, dtype=torch.float64)
    grads = [torch.randn(shape, generator=gen, dtype=torch.float64) for _ in range(20)]
    p = w0.clone().requires_grad_(True)
    opt = cls([p], foreach=False, **kw, **extra)
    rule = get_rule(rule_name)
    h = rule.hyper(**kw)
    w, state = w0.clone(), rule.init(w0, TORCH)
    for g in grads:
        p.grad = g.clone()
        opt.step()
        w, state = rule(w, g, state, h, TORCH)
        torch.testing.assert_close(w, p.detach(), rtol=1e-12, atol=1e-14)


def test_dampening_matters_so_the_sgd_case_can_fail():
    """The first-step copy and the (1 - dampening) factor are visible: heavy ball differs."""
    gen = torch.Generator().manual_seed(2)
    w0, g = torch.randn(5, generator=gen, dtype=torch.float64), torch.randn(5, generator=gen,
                                                                              dtype=torch.float64)
    sgd, hb = get_rule("sgd"), get_rule("heavy_ball")
    ws, ss = sgd(w0, g, sgd.init(w0, TORCH), sgd.hyper(dampening=0.5), TORCH)
    wh, sh = hb(w0, g, hb.init(w0, TORCH), hb.hyper(), TORCH)
    torch.testing.assert_close(ws, wh, rtol=0, atol=0)  # first step: undamped copy
    ws, _ = sgd(ws, g, ss, sgd.hyper(dampening=0.5), TORCH)
    wh, _ = hb(wh, g, sh, hb.hyper(), TORCH)
    assert (ws - wh).abs().max() > 1e-3
