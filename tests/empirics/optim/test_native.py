"""The compiled CPU kernels (empirics/optim/native) against the rules of theory/rules.py.

Every option a kernel covers is run against the float64 rule (the harness's Oracle: numpy,
independent of the kernels and of torch); every option it does not cover must leave
``native_active`` False and run the torch code.  The kernel and torch paths are never
compared bit for bit.
"""
import copy
import math
import re

import pytest
import torch

from momentumlab.empirics.optim import OPTIMIZERS, NonFiniteGradientError, native
from momentumlab.empirics.optim.native import build
from tests.empirics.optim.harness import (BASE_KW, SHAPES, Oracle, compare, gradients, grads_by_group,
                                          make_params, run_parity, set_grads, split_groups)

needs_kernels = pytest.mark.skipif(not native.available(), reason=f"kernels unavailable: "
                                   f"{native.status()['reason']}")
GROUPS = [(slice(0, 3), {}), (slice(3, None), {"weight_decay": 0.0})]
#: every option combination each kernel covers
COVERED = {
    "VRAdam": [{}, {"weight_decay": 0.1, "beta3": 3.0, "alpha1": 2.0}, {"gate": "gradient"},
               {"norm_scope": "group"}, {"alpha1": math.inf, "weight_decay": 0.05}],
    "TAM": [{}, {"weight_decay": 0.1, "momentum": 0.5}, {"cosine_scope": "global"}],
    "AdaTAM": [{}, {"weight_decay": 0.1, "bias_correction": True}, {"cosine_scope": "global"}],
    "AdamP": [{}, {"weight_decay": 0.1, "delta": 0.5, "wd_ratio": 0.3}],
    "SGDP": [{}, {"weight_decay": 0.01, "dampening": 0.2}, {"project_buffer": False, "weight_decay": 0.1}],
}
CASES = [(n, kw) for n, kws in COVERED.items() for kw in kws]
IDS = [f"{n}-{i}" for i, (n, _) in enumerate(CASES)]
#: options (or tensors) the kernels do not cover: the torch code must run
UNCOVERED = [("VRAdam", {"maximize": True}), ("VRAdam", {"norm_scope": "tensor"}),
             ("VRAdam", {"power": 3.0}), ("VRAdam", {"fused": True}), ("VRAdam", {"fused": False}),
             ("AdamP", {"nesterov": True}), ("AdamP", {"maximize": True}), ("SGDP", {"nesterov": True}),
             ("TAM", {"maximize": True}), ("TAM", {"foreach": True}), ("AdaTAM", {"foreach": False}),
             ("AdaTAM", {"maximize": True})]


@needs_kernels
@pytest.mark.parametrize("name,kw", CASES, ids=IDS)
def test_kernel_float64_equals_the_rule(name, kw):
    """float64: the kernels reorder sums (blocks, lanes, chunks of 262144; float64 lanes)
    and use FMA; each step's rounding is ~1e-16 relative, 20 steps stay far below 1e-12 --
    the bound of the torch paths' own parity tests."""
    opt, _ = run_parity(name, steps=20, groups=GROUPS, **kw)
    assert opt.native_active


@needs_kernels
@pytest.mark.parametrize("name,kw", CASES, ids=IDS)
def test_kernel_float32_equals_the_float64_rule_to_rounding(name, kw):
    """float32 kernels against the float64 rule on the same (float32) gradients.  Each step
    adds a few float32 roundings (2^-24 ~ 6e-8 each; the statistics at most ~17 of them, see
    test_statistics_equal_float64_sums_within_the_block_bound) relative to the largest
    entry, and the moments carry them on:
    10 steps x ~20 roundings x 6e-8 < 2e-5.  A wrong coefficient (a beta, a bias
    correction, the gate) moves the result by >= 1e-3."""
    params = make_params(SHAPES, 0, dtype=torch.float32)
    opt = OPTIMIZERS[name](split_groups(params, GROUPS), **{**BASE_KW[name], **kw})
    assert opt.native_active
    oracle = Oracle(opt)
    for t in range(10):
        grads = gradients(params, t)
        set_grads(opt, grads)
        oracle.step(grads_by_group(opt, grads))
        opt.step()
        compare(opt, oracle, rtol=2e-5, what=f"{name} float32 step {t + 1}")


@needs_kernels
@pytest.mark.parametrize("name,kw", UNCOVERED, ids=[f"{n}-{i}" for i, (n, _) in enumerate(UNCOVERED)])
def test_uncovered_options_run_the_torch_code(name, kw, monkeypatch):
    calls = []
    monkeypatch.setattr(native, "KERNELS", {k: (ok, prep, lambda *a, f=fn: (calls.append(1), f(*a)))
                                            for k, (ok, prep, fn) in native.KERNELS.items()})
    opt, _ = run_parity(name, steps=3, groups=GROUPS, **kw)
    assert not opt.native_active and not calls


@needs_kernels
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_uncovered_tensors_run_the_torch_code(name):
    """bf16 (the torch code's business), a non-contiguous parameter, ``native = False``."""
    cases = [[torch.randn(6, 5, dtype=torch.bfloat16, requires_grad=True)],
             [torch.randn(6, 5, dtype=torch.float64).t().detach().requires_grad_()]]
    for params in cases:
        opt = OPTIMIZERS[name](params, **BASE_KW[name])
        assert not opt.native_active
        params[0].grad = torch.ones_like(params[0])
        opt.step()  # the torch code takes it
    params = make_params()
    opt = OPTIMIZERS[name](params, **BASE_KW[name])
    assert opt.native_active
    opt.native = False
    assert not opt.native_active
    run_parity(name, steps=2)  # and the parity of the default (kernel) path still holds


@needs_kernels
@pytest.mark.parametrize("name", list(OPTIMIZERS))
@pytest.mark.parametrize("policy", ["raise", "skip"])
def test_kernel_refuses_a_nonfinite_gradient_before_writing(name, policy):
    """A NaN in the *last* tensor: the read-only first pass sees it before any write, so the
    tensors before it, their states and the step counters are untouched."""
    params = make_params(SHAPES, 0, dtype=torch.float32)
    opt = OPTIMIZERS[name](params, nonfinite=policy, **BASE_KW[name])
    set_grads(opt, gradients(params, 0))
    opt.step()
    before = [p.detach().clone() for p in params]
    states = {p: {k: v.clone() if torch.is_tensor(v) else v for k, v in opt.state[p].items()} for p in params}
    grads = gradients(params, 1)
    grads[-1] = grads[-1].clone()
    grads[-1].view(-1)[0] = float("nan")
    set_grads(opt, grads)
    assert opt.native_active
    if policy == "raise":
        with pytest.raises(NonFiniteGradientError):
            opt.step()
    else:
        opt.step()
        assert opt.skipped_steps == 1
    for p, b in zip(params, before):
        assert torch.equal(p.detach(), b)
        for k, v in states[p].items():
            got = opt.state[p][k]
            assert torch.equal(got, v) if torch.is_tensor(v) else got == v, k


@needs_kernels
def test_kernel_refusal_forgets_fresh_states():
    params = make_params(SHAPES, 0, dtype=torch.float32)
    opt = OPTIMIZERS["TAM"](params, **BASE_KW["TAM"])
    grads = gradients(params, 0)
    grads[0] = torch.full_like(grads[0], float("inf"))
    set_grads(opt, grads)
    with pytest.raises(NonFiniteGradientError):
        opt.step()
    assert not any(opt.state[p] for p in params)


@needs_kernels
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_kernel_result_does_not_depend_on_the_thread_count(name):
    """Partial sums are per chunk and added in chunk order, so the statistics do not depend
    on the threads; a lost or doubled chunk would move the result by O(1).  (Not asserted
    bitwise: float32 results differed by one ulp between 1 and 2 threads inside pytest.)"""
    big = [(700, 400), (300000,), (64, 8, 3, 3)]  # several chunks of 262144 values per tensor
    runs = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        params = make_params(big, 0, dtype=torch.float32)
        opt = OPTIMIZERS[name](params, **BASE_KW[name])
        for t in range(3):
            set_grads(opt, gradients(params, t))
            opt.step()
        runs.append(params)
    for a, b in zip(*runs):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)


@needs_kernels
def test_scheduler_changes_the_rate_without_a_rebuild():
    params = make_params(SHAPES, 0)
    opt = OPTIMIZERS["VRAdam"](params)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 1.0 / (1 + t))
    path = native.status()["path"]
    for t in range(4):
        set_grads(opt, gradients(params, t))
        opt.step()
        sched.step()
    assert native.status()["path"] == path and opt.native_active
    assert float(opt.last_eta[0]) < 1e-3 / 3  # the 4th step's rate 1e-3/4, gated


@needs_kernels
def test_status_names_the_isa_torch_dispatches_to():
    st = native.status()
    assert st["available"] and st["isa"] == build.capability()
    assert set(st["kernels"]) == set(OPTIMIZERS)


_RUNTIMES = """
import re, sys, torch
from momentumlab.empirics.optim import native
assert native.available()
if sys.argv[1:] == ["sklearn"]:
    import sklearn.linear_model  # ships its own libgomp: the control
torch.ones(10).sum()
maps = open("/proc/self/maps").read()
print(len({m for m in re.findall(r"(/\\S*lib(?:gomp|iomp5|omp)[^/\\s]*\\.so[.\\d]*)", maps)}))
"""


@needs_kernels
@pytest.mark.skipif(not __import__("sys").platform.startswith("linux"), reason="reads /proc/self/maps")
def test_one_openmp_runtime_is_loaded():
    """The library links torch's libgomp.so.1: a second OpenMP runtime would fight torch's
    threads (issue 11).  Run in a fresh interpreter (torch and the kernels only), since other
    tests import packages that bring their own runtime; the control imports scikit-learn, whose
    vendored libgomp the same count must see."""
    import subprocess
    import sys

    count = lambda *args: int(subprocess.run([sys.executable, "-c", _RUNTIMES, *args], check=True,  # noqa: E731
                                             capture_output=True, text=True).stdout)
    assert count() == 1
    pytest.importorskip("sklearn")
    assert count("sklearn") == 2


def test_no_compiler_means_the_torch_code(monkeypatch, tmp_path):
    monkeypatch.setenv("CC", "/nonexistent/cc")
    monkeypatch.setenv("PATH", str(tmp_path))
    lib, info = build.load()
    assert lib is None and not info["available"] and "compiler" in info["reason"]


def test_disabled_by_the_environment(monkeypatch):
    monkeypatch.setenv("MOMENTUMLAB_NATIVE", "0")
    lib, info = build.load()
    assert lib is None and "MOMENTUMLAB_NATIVE" in info["reason"]


def test_a_failing_compiler_means_the_torch_code(monkeypatch, tmp_path):
    fake = tmp_path / "cc"
    fake.write_text("#!/bin/sh\necho 'cc: error: no' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("CC", str(fake))
    monkeypatch.setenv("MOMENTUMLAB_CACHE", str(tmp_path / "cache"))
    lib, info = build.load()
    assert lib is None and info["reason"].startswith("compilation failed")


def test_an_unwritable_cache_means_the_torch_code(monkeypatch, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("MOMENTUMLAB_CACHE", str(blocker / "cache"))  # below a file: mkdir fails
    lib, info = build.load()
    assert lib is None and info["reason"].startswith("compilation failed")


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_without_kernels_every_class_runs_its_torch_code(name, monkeypatch):
    monkeypatch.setattr(native, "_state", {"lib": None, "info": {"available": False, "reason": "test"}})
    opt, _ = run_parity(name, steps=3, groups=GROUPS)
    assert not opt.native_active


def _stats_inputs(seed=0):
    """float32 tensors of one, several and a part of a chunk (262144 values), odd sizes."""
    gen = torch.Generator().manual_seed(seed)
    shapes = [(600, 777), (3,), (300001,), (64, 8, 3, 3)]
    return ([torch.randn(s, generator=gen) for s in shapes], [torch.randn(s, generator=gen) for s in shapes])


def _run_sums(xs, ys, threads):
    import numpy as np
    lib = native._library()
    n, sizes = len(xs), np.array([x.numel() for x in xs], dtype=np.int64)
    rows = np.array([x.shape[0] if x.dim() > 1 else 1 for x in xs], dtype=np.int64)
    velocity, terms = np.empty(n), np.empty((n, 3))
    stats = np.empty((int(rows.sum()), 4))
    native._call(lib.tensor_sums_f32, n, native._ptrs(xs), native._ptrs(ys), sizes, 0, 0.9, 0.1, velocity, threads)
    native._call(lib.tensor_sums_f32, n, native._ptrs(xs), native._ptrs(ys), sizes, 2, 0.0, 0.0, terms, threads)
    native._call(lib.row_stats_f32, n, native._ptrs(ys), native._ptrs(xs), sizes, sizes // rows, stats, threads)
    return velocity, terms, stats[:, :3], rows


@needs_kernels
def test_statistics_are_bitwise_the_same_on_one_and_two_threads():
    """The kernels fix the summation order themselves (blocks, lanes, chunks, all from the
    sizes alone), so the statistics must not change by a single bit with the thread count."""
    import numpy as np
    xs, ys = _stats_inputs()
    one, two = _run_sums(xs, ys, 1)[:3], _run_sums(xs, ys, 2)[:3]
    for a, b in zip(one, two):
        assert np.array_equal(a, b)


@needs_kernels
def test_statistics_equal_float64_sums_within_the_block_bound():
    """float32 lanes sum at most 16 products per block before they are widened to double:
    the error of a sum is at most ~17 float32 roundings of the sum of |terms| (2^-24 each);
    a lost or doubled block would be off by O(1/blocks) of it, far above."""
    import numpy as np
    xs, ys = _stats_inputs(1)
    velocity, terms, stats, rows = _run_sums(xs, ys, 2)
    bound = 17 * 2.0 ** -24
    for i, (x, y) in enumerate(zip(xs, ys)):
        x64, y64 = x.double().numpy().ravel(), y.double().numpy().ravel()
        u = (0.9 * x.numpy().ravel() + 0.1 * y.numpy().ravel()).astype(np.float64)  # formed in float32
        assert abs(velocity[i] - (u * u).sum()) <= bound * (u * u).sum()
        for got, prods in zip(terms[i], (x64 * y64, x64 * x64, y64 * y64)):
            assert abs(got - prods.sum()) <= bound * np.abs(prods).sum()
    start = 0
    for x, y, r in zip(xs, ys, rows):  # row_stats(w=ys, g=xs): (g.w, g.g, w.w) per row
        g64, w64 = x.double().numpy().reshape(r, -1), y.double().numpy().reshape(r, -1)
        for got, prods in zip(stats[start:start + r].T, (g64 * w64, g64 * g64, w64 * w64)):
            assert np.all(np.abs(got - prods.sum(1)) <= bound * np.abs(prods).sum(1))
        start += r


@needs_kernels
@pytest.mark.parametrize("name", list(OPTIMIZERS))
@pytest.mark.parametrize("replaced", ["state", "parameter"])
def test_kernels_follow_replaced_state_and_parameter_storage(name, replaced):
    """The kernels cache pointers per group.  Rewind the state with ``load_state_dict`` (new
    tensors), or give a parameter new storage (``p.data = ...``): the next step must equal
    that of a fresh optimizer loaded with the same state (same kernels, same operations).
    The old tensors are kept alive, so a stale pointer would read and write them instead."""
    params = make_params(SHAPES, 0, dtype=torch.float32)
    opt = OPTIMIZERS[name](params, **BASE_KW[name])
    for t in range(2):
        set_grads(opt, gradients(params, t))
        opt.step()
    saved = copy.deepcopy(opt.state_dict())
    set_grads(opt, gradients(params, 2))
    opt.step()
    held = [dict(opt.state[p]) for p in params] + [params[2].data]
    opt.load_state_dict(copy.deepcopy(saved) if replaced == "state" else saved)  # back to step 2
    if replaced == "parameter":
        params[2].data = params[2].data.clone()
    twin = [p.detach().clone().requires_grad_() for p in params]
    fresh = OPTIMIZERS[name](twin, **BASE_KW[name])
    fresh.load_state_dict(copy.deepcopy(saved))
    for o, ps in ((opt, params), (fresh, twin)):
        set_grads(o, gradients(ps, 3))
        assert o.native_active
        o.step()
    for a, b in zip(params, twin):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert held


@needs_kernels
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_switching_between_kernels_and_torch_code_keeps_the_state(name):
    """Kernels, then the torch code, then the kernels again (the kernels keep the scalar
    state -- step counters, ``s_hat`` -- as views of one tensor; the torch code replaces or
    updates them in place): in float64 both paths equal the rule to ~1e-12, so the switched
    run equals a torch-code-only run to 1e-10; a lost or repeated state update is O(1e-3)."""
    runs = []
    for switch in (True, False):
        params = make_params(SHAPES, 0)
        opt = OPTIMIZERS[name](split_groups(params, GROUPS), **BASE_KW[name])
        for t in range(6):
            opt.native = switch and t not in (2, 3)
            set_grads(opt, gradients(params, t))
            opt.step()
        runs.append(params)
    for a, b in zip(*runs):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
