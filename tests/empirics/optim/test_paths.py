"""Implementation paths and torch conventions: foreach == for-loop, VRAdam's fused kernel,
LR schedulers, state_dict round trips, closures, CUDA (skipped without a GPU).

foreach == for-loop is asserted bit for bit because both paths fix the reduction order
themselves: the same torch reduction per tensor, then the scope's partial sums in the
canonical order (group, position) added by ``ordered_sum``'s fixed pairwise tree of
elementwise additions, which round identically on every CPU (AVX-512, AVX2, scalar:
run this file under ``ATEN_CPU_CAPABILITY=default`` and ``=avx2``) and on GPUs.
"""
import io

import numpy as np

import pytest
import torch

from momentumlab.empirics.optim import OPTIMIZERS
from momentumlab.empirics.optim._base import ordered_sum
from tests.empirics.optim.harness import (BASE_KW, SHAPES, clone_run, gradients, make_params,
                                          run_parity, set_grads, split_groups)

NAMES = list(OPTIMIZERS)
#: variants that exercise every branch of each class's update
VARIANTS = {
    "VRAdam": [{"weight_decay": 0.1}, {"maximize": True, "norm_scope": "tensor"}],
    "AdamP": [{"weight_decay": 0.1, "nesterov": True}, {"maximize": True}],
    "SGDP": [{"weight_decay": 0.01, "nesterov": True}, {"maximize": True, "dampening": 0.2}],
    "TAM": [{"weight_decay": 0.1}, {"maximize": True, "cosine_scope": "global"}],
    "AdaTAM": [{"weight_decay": 0.1, "bias_correction": True}, {"maximize": True}],
}
CASES = [(n, kw) for n in NAMES for kw in VARIANTS[n]]
IDS = [f"{n}-{i}" for i, (n, _) in enumerate(CASES)]
GROUPS = [(slice(0, 3), {}), (slice(3, None), {"weight_decay": 0.0})]


@pytest.mark.parametrize("name,kw", CASES, ids=IDS)
def test_foreach_equals_for_loop(name, kw):
    extra = {"fused": False} if name in ("VRAdam", "AdamP", "TAM") else {}
    runs = [clone_run(name, 12, {**kw, **extra, "foreach": flag}, groups=GROUPS) for flag in (False, True)]
    (p0, o0, _), (p1, o1, _) = runs
    for a, b in zip(p0, p1):
        assert torch.equal(a, b)
    for a, b in zip(o0.state.values(), o1.state.values()):
        for key in a:
            assert torch.equal(torch.as_tensor(a[key]), torch.as_tensor(b[key])), key


@pytest.mark.parametrize("n", [1, 2, 3, 7, 8, 100])
def test_ordered_sum_is_the_fixed_pairwise_tree(n):
    """Against the same tree written over numpy float32 scalars (each + one IEEE rounding); a
    running sum of the same numbers differs, so the test sees the association."""
    rng = np.random.default_rng(n)
    x = (rng.standard_normal((n, 3)) * 10.0 ** rng.uniform(-4, 4, (n, 3))).astype(np.float32)

    def tree(rows):
        if len(rows) == 1:
            return rows[0]
        half = 1
        while 2 * half < len(rows):
            half *= 2
        # pairing adjacent rows level by level equals splitting at the largest power of two
        return tree(rows[:half]) + tree(rows[half:])
    got = ordered_sum(torch.from_numpy(x)).numpy()
    assert np.array_equal(got, tree(list(x)))
    if n == 100:
        running = x[0].copy()
        for row in x[1:]:
            running = running + row
        assert not np.array_equal(got, running)


@pytest.mark.parametrize("name,kw", [("VRAdam", {}), ("VRAdam", {"norm_scope": "group"}),
                                     ("TAM", {"cosine_scope": "global"}),
                                     ("AdaTAM", {"cosine_scope": "global"})])
def test_foreach_equals_for_loop_when_buckets_reorder_the_tensors(name, kw):
    """Mixed float32/float64 tensors in one group: foreach makes one bucket per dtype, so its
    tensors come in another order than the group's; the shared sum must not notice."""
    def run(foreach):
        gen = torch.Generator().manual_seed(1)
        params = [torch.randn(s, generator=gen, dtype=torch.float64 if i % 2 else torch.float32)
                  .requires_grad_() for i, s in enumerate(SHAPES * 3)]
        extra = {"fused": False} if name in ("VRAdam", "TAM") else {}
        opt = OPTIMIZERS[name](params, foreach=foreach, **{**BASE_KW[name], **kw, **extra})
        for t in range(6):
            for p, g in zip(params, gradients(params, t)):
                p.grad = g.to(p.dtype)
            opt.step()
        return params
    for a, b in zip(run(False), run(True)):
        assert torch.equal(a, b)


FUSED = [("VRAdam", {}), ("VRAdam", {"weight_decay": 0.1, "maximize": True}),
         ("VRAdam", {"norm_scope": "tensor"}), ("AdamP", {}),
         ("AdamP", {"weight_decay": 0.1, "maximize": True, "delta": 0.5}),
         ("TAM", {"weight_decay": 0.1, "maximize": True, "cosine_scope": "global"})]


@pytest.mark.parametrize("name,kw", FUSED, ids=[f"{n}-{i}" for i, (n, _) in enumerate(FUSED)])
def test_fused_kernel_path_equals_foreach_path(name, kw):
    """torch's fused kernels (AdamW for VRAdam and AdamP, SGD for TAM on the CPU) vs the
    _foreach_ path, float64."""
    (p0, o0, _), (p1, o1, _) = (clone_run(name, 12, {**kw, "fused": f, "foreach": True}, groups=GROUPS)
                                for f in (True, False))
    for a, b in zip(p0, p1):
        torch.testing.assert_close(a, b, rtol=1e-13, atol=1e-15)
    if name == "VRAdam":
        torch.testing.assert_close(o0.last_eta[0], o1.last_eta[0], rtol=1e-14, atol=0)


@pytest.mark.parametrize("name", NAMES)
def test_scheduler_changes_the_rate_as_the_rule_expects(name):
    """StepLR multiplies ``lr`` by 0.5 every 3 steps; the class keeps matching the rule that
    reads the group's ``lr`` each step (for VRAdam ``lr`` is alpha_0, so eta_t scales too)."""
    sched = lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)
    opt, _ = run_parity(name, steps=8, schedule=sched)
    base = {**BASE_KW[name]}.get("lr", opt.defaults["lr"])
    assert opt.param_groups[0]["lr"] == pytest.approx(base * 0.5 ** 2)
    if name == "VRAdam":
        eta, n = opt.last_eta[0], opt.last_norm_sq[0]
        lr7 = base * 0.5 ** 2  # the rate used by the 8th step (after 6 scheduler steps)
        assert float(eta) == pytest.approx(lr7 / (1 + min(float(n), 10.0)), rel=1e-12)


@pytest.mark.parametrize("name,kw", CASES, ids=IDS)
def test_state_dict_round_trip_continues_identically(name, kw):
    params, opt, t = clone_run(name, 7, kw, groups=GROUPS)
    saved_params = [p.detach().clone() for p in params]
    buf = io.BytesIO()
    torch.save(opt.state_dict(), buf)
    full, _, _ = clone_run(name, 6, kw, start=(params, opt, t))

    fresh = [p.clone().requires_grad_() for p in saved_params]
    opt2 = OPTIMIZERS[name](split_groups(fresh, GROUPS), **{**BASE_KW[name], **kw})
    buf.seek(0)
    opt2.load_state_dict(torch.load(buf, weights_only=True))
    resumed, _, _ = clone_run(name, 6, kw, start=(fresh, opt2, t))
    for a, b in zip(full, resumed):
        assert torch.equal(a, b)


@pytest.mark.parametrize("name", NAMES)
def test_closure_is_evaluated_with_grad_and_its_loss_returned(name):
    w = torch.tensor([1.0, -2.0], dtype=torch.float64, requires_grad=True)
    opt = OPTIMIZERS[name]([w], **BASE_KW[name])

    def closure():
        opt.zero_grad()
        loss = (w ** 2).sum()
        loss.backward()
        return loss

    before = w.detach().clone()
    loss = opt.step(closure)
    assert float(loss.detach()) == pytest.approx(5.0)
    assert not torch.equal(w.detach(), before)
    assert (w.detach().abs() < before.abs()).all()  # a descent step on |w|^2


@pytest.mark.parametrize("name", NAMES)
def test_parameters_without_grad_are_left_alone(name):
    params = make_params()
    opt = OPTIMIZERS[name](params, **BASE_KW[name])
    grads = gradients(params, 0)
    set_grads(opt, grads)
    params[1].grad = None
    before = params[1].detach().clone()
    opt.step()
    assert torch.equal(params[1].detach(), before) and not opt.state[params[1]]


@pytest.mark.parametrize("name", NAMES)
def test_float32_training_decreases_a_loss(name):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    x, y = torch.randn(64, 8), torch.randn(64, 1)
    lr = {"VRAdam": 1e-2, "AdamP": 1e-2, "SGDP": 0.05, "TAM": 0.05, "AdaTAM": 2e-3}[name]
    opt = OPTIMIZERS[name](model.parameters(), lr=lr)
    losses = []
    for _ in range(60):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.7 * losses[0]


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@cuda
@pytest.mark.cuda
@pytest.mark.parametrize("name,kw", CASES, ids=IDS)
def test_cuda_equals_rule(name, kw):
    run_parity(name, steps=20, device="cuda", rtol=1e-10, **kw)


@cuda
@pytest.mark.cuda
@pytest.mark.parametrize("name", NAMES)
def test_cuda_foreach_equals_for_loop(name):
    def run(flag):
        params = make_params(SHAPES, 0, device="cuda")
        opt = OPTIMIZERS[name](params, foreach=flag, **BASE_KW[name])
        for t in range(10):
            set_grads(opt, gradients(params, t))
            opt.step()
        return params
    for a, b in zip(run(False), run(True)):
        torch.testing.assert_close(a, b, rtol=1e-13, atol=1e-15)


@cuda
@pytest.mark.cuda
@pytest.mark.parametrize("name", NAMES)
def test_cuda_step_makes_no_host_synchronisation(name):
    params = make_params(SHAPES, 0, dtype=torch.float32, device="cuda")
    opt = OPTIMIZERS[name](params, nonfinite="ignore", **BASE_KW[name])
    set_grads(opt, gradients(params, 0))
    opt.step()  # state initialisation may synchronise
    set_grads(opt, gradients(params, 1))
    torch.cuda.set_sync_debug_mode("error")
    try:
        opt.step()
    finally:
        torch.cuda.set_sync_debug_mode("default")
