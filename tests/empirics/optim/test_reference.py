"""Against the reference implementations: the authors' ``adamp`` package (v0.3.0) and
``pytorch_optimizer``'s TAM, whose "correlation" is not a cosine."""

import pytest
import torch

from momentumlab.empirics.optim import SGDP, TAM, AdamP, AdaTAM
from momentumlab.empirics.backend import TORCH
from momentumlab.theory.rules import projection_masks

adamp_pkg = pytest.importorskip("adamp")
po = pytest.importorskip("pytorch_optimizer")


def _bn_net():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
        torch.nn.Conv2d(8, 8, 3, padding=1, bias=False), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(2), torch.nn.Flatten(), torch.nn.Linear(32, 10),
    ).double()


def _train(model, opt, steps, data):
    x, y = data
    for t in range(steps):
        opt.zero_grad()
        i = (t * 16) % 64
        loss = torch.nn.functional.cross_entropy(model(x[i:i + 16]), y[i:i + 16])
        loss.backward()
        opt.step()


REFERENCE_CASES = [
    ("AdamP", {"lr": 1e-2}),
    ("AdamP", {"lr": 1e-2, "weight_decay": 1e-2, "nesterov": True}),
    ("SGDP", {"lr": 0.1, "momentum": 0.9}),
    ("SGDP", {"lr": 0.1, "momentum": 0.9, "weight_decay": 1e-3, "nesterov": True, "dampening": 0.1}),
]


@pytest.mark.parametrize("name,kw", REFERENCE_CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(REFERENCE_CASES)])
def test_matches_authors_adamp_package_after_100_steps(name, kw):
    """float64, a network with BatchNorm (scale-invariant conv weights: projected), 100 steps,
    parameters within 1e-6 relative of ``adamp`` v0.3.0."""
    gen = torch.Generator().manual_seed(1)
    data = (torch.randn(64, 3, 8, 8, generator=gen, dtype=torch.float64),
            torch.randint(0, 10, (64,), generator=gen))
    ours, theirs = _bn_net(), _bn_net()
    mine = {"AdamP": AdamP, "SGDP": SGDP}[name](ours.parameters(), **kw)
    ref = getattr(adamp_pkg, name)(theirs.parameters(), **kw)

    # the test is not vacuous: the first conv kernel (followed by BN) is projected
    x, y = data
    torch.nn.functional.cross_entropy(ours(x[:16]), y[:16]).backward()
    w = ours[3].weight
    channel, layer = projection_masks(w.detach(), w.grad, 0.1, 1e-8, TORCH)
    assert bool(channel | layer)
    ours.zero_grad()

    _train(ours, mine, 100, data)
    _train(theirs, ref, 100, data)
    for (n, a), b in zip(ours.named_parameters(), theirs.parameters()):
        scale = float(b.detach().abs().max())
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6 * scale, msg=lambda m: f"{n}: {m}")
        assert not torch.equal(a, _bn_net().state_dict()[n]), "parameters moved"


def test_sgdp_momentum_default_differs_from_the_authors_on_purpose():
    w = torch.zeros(2, requires_grad=True)
    assert SGDP([w], lr=0.1).defaults["momentum"] == 0.9
    assert adamp_pkg.SGDP([w], lr=0.1).defaults["momentum"] == 0


def _constant_gradient_run(make_opt, shape=(64, 32), steps=60):
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(shape, generator=gen, dtype=torch.float64, requires_grad=True)
    g = torch.randn(shape, generator=gen, dtype=torch.float64)
    opt = make_opt([w])
    start = w.detach().clone()
    last = None
    for _ in range(steps):
        prev = w.detach().clone()
        w.grad = g.clone()
        opt.step()
        last = (prev - w.detach()).norm() / g.norm()
    return opt, w, float(last), start


def test_pytorch_optimizer_tam_multiplies_elementwise_instead_of_a_cosine():
    """A constant gradient is perfectly aligned with the momentum.  Our TAM (the paper's cosine)
    drives s_hat to 1 and the damping d to 1, so the momentum reaches (1 + eps)/(1 - beta) = 10
    gradients.  pytorch_optimizer's TAM multiplies the dim-0-normalised momentum and gradient
    elementwise without summing: each entry is about 1/rows, so s stays near 1/64 and d near 1/2,
    and its momentum reaches about 5 gradients."""
    ours, _, step_ours, _ = _constant_gradient_run(lambda p: TAM(p, lr=0.01, momentum=0.9))
    theirs, _, step_theirs, _ = _constant_gradient_run(lambda p: po.TAM(p, lr=0.01, momentum=0.9))
    (s_ours,) = [st["s_hat"] for st in ours.state.values()]
    (st_theirs,) = list(theirs.state.values())
    assert float(s_ours) > 0.99                       # cosine of aligned vectors -> 1
    assert 0.0 < float(st_theirs["s"].mean()) < 0.03  # ~ 1/rows, not 1
    assert float(st_theirs["s"].max()) < 0.2
    assert step_ours / 0.01 == pytest.approx(10.0, rel=0.02)   # |m| / |g| -> 1/(1 - beta)
    assert step_theirs / 0.01 == pytest.approx(5.0, rel=0.05)  # ~ (1/2)/(1 - beta)


def test_pytorch_optimizer_adatam_has_the_same_elementwise_correlation():
    ours, _, _, _ = _constant_gradient_run(lambda p: AdaTAM(p, lr=1e-3))
    theirs, _, _, _ = _constant_gradient_run(lambda p: po.AdaTAM(p, lr=1e-3))
    assert float(next(iter(ours.state.values()))["s_hat"]) > 0.99
    assert float(next(iter(theirs.state.values()))["s"].mean()) < 0.03
