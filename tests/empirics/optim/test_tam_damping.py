"""TAM's damping: a gradient opposed to the momentum drives d = (1 + s_hat)/2 toward 0,
an aligned one toward 1, an orthogonal one toward 1/2 (arXiv 2412.18790, Sec. 3)."""
import pytest
import torch

from momentumlab.empirics.optim import TAM, AdaTAM


def _damping_trace(cls, relation, steps=40, **kw):
    """Feed gradients with a fixed relation to the current momentum; return d_t per step."""
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(20, 10, generator=gen, dtype=torch.float64, requires_grad=True)
    opt = cls([w], **kw)
    key = "momentum_buffer" if cls is TAM else "exp_avg"
    warm = torch.randn(20, 10, generator=gen, dtype=torch.float64)
    for _ in range(30):  # build up momentum along `warm`, s_hat -> 1
        w.grad = warm.clone()
        opt.step()
    trace = []
    for _ in range(steps):
        m = opt.state[w][key]
        m_hat = m / m.norm()
        if relation == "opposed":
            g = -m_hat
        elif relation == "aligned":
            g = m_hat
        else:  # orthogonal to the momentum
            r = torch.randn(20, 10, generator=gen, dtype=torch.float64)
            g = r - m_hat * (r * m_hat).sum()
            g = g / g.norm()
        w.grad = g.clone()
        opt.step()
        trace.append(float((1 + opt.state[w]["s_hat"]) / 2))
    return trace


@pytest.mark.parametrize("cls", [TAM, AdaTAM])
def test_opposed_gradient_drives_damping_to_zero(cls):
    d = _damping_trace(cls, "opposed")
    assert all(b < a for a, b in zip(d, d[1:]))  # strictly decreasing
    assert d[-1] < 0.05


@pytest.mark.parametrize("cls", [TAM, AdaTAM])
def test_aligned_gradient_drives_damping_to_one(cls):
    d = _damping_trace(cls, "aligned")
    assert d[-1] > 0.999


def test_orthogonal_gradient_drives_damping_to_one_half():
    d = _damping_trace(TAM, "orthogonal", steps=80)
    assert d[-1] == pytest.approx(0.5, abs=0.01)


def test_opposed_gradient_barely_moves_the_momentum():
    """With d ~ 0 the opposed gradient is ignored: m decays as beta^t instead of reversing."""
    gen = torch.Generator().manual_seed(1)
    w = torch.zeros(50, dtype=torch.float64, requires_grad=True)
    u = torch.randn(50, generator=gen, dtype=torch.float64)
    opt = TAM([w], lr=0.1, momentum=0.9, decay=0.5)
    for _ in range(20):
        w.grad = u.clone()
        opt.step()
    for _ in range(40):
        w.grad = -u.clone()
        opt.step()
    m = opt.state[w]["momentum_buffer"]
    # heavy ball would have reversed: 0.9^40 * 10 u - (1 - 0.9^40)/(0.1) u < 0
    assert float((m * u).sum()) > 0
