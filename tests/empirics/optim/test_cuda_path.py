"""The compiled CUDA path (empirics.optim.cuda) against the float64 rule.

Its functions are plain torch code that ``torch.compile`` fuses on CUDA; here they also
run eagerly on the CPU (``cuda.DEVICES`` extended for the test), so every formula is
checked against :mod:`theory.rules` on machines without a GPU.  The tests marked
``cuda`` run the compiled kernels (``benchmarks/gpu_check.sh`` runs them all).
"""
import pytest
import torch

from momentumlab.empirics.optim import OPTIMIZERS, cuda
from tests.empirics.optim.harness import BASE_KW, gradients, make_params, run_parity, set_grads
from tests.empirics.optim.test_dtypes import PATHS, check_one_step

VARIANTS = {
    "VRAdam": [{"weight_decay": 0.1}, {"maximize": True, "norm_scope": "tensor"},
               {"gate": "gradient", "norm_scope": "group"}],
    "AdamP": [{"weight_decay": 0.1, "nesterov": True}, {"maximize": True, "delta": 0.5}],
    "SGDP": [{"weight_decay": 0.01, "nesterov": True}, {"maximize": True, "dampening": 0.2},
             {"weight_decay": 0.01, "project_buffer": False}],
    "TAM": [{"weight_decay": 0.1}, {"maximize": True, "cosine_scope": "global"}],
    "AdaTAM": [{"weight_decay": 0.1, "bias_correction": True}, {"maximize": True, "cosine_scope": "global"}],
}
CASES = [(n, kw) for n in OPTIMIZERS for kw in VARIANTS[n]]
IDS = [f"{n}-{i}" for i, (n, _) in enumerate(CASES)]
GROUPS = [(slice(0, 3), {}), (slice(3, None), {"weight_decay": 0.0})]
has_cuda = torch.cuda.is_available()
cuda_only = pytest.mark.skipif(not has_cuda, reason="needs a CUDA device")


@pytest.fixture
def on_cpu(monkeypatch):
    """Serve CPU tensors with the compiled path's functions, run eagerly."""
    monkeypatch.setattr(cuda, "DEVICES", ["cpu", "cuda"])


@pytest.mark.parametrize("name,kw", CASES, ids=IDS)
def test_compiled_path_functions_equal_the_rule_float64(on_cpu, name, kw):
    opt, _ = run_parity(name, steps=12, groups=GROUPS, fused=True, **kw)
    assert opt._compiled(opt.param_groups[0], opt.param_groups[0]["params"])


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_compiled_path_cuts_long_tensor_lists_into_chunks(on_cpu, monkeypatch, name):
    """Chunks of 2 tensors (CUDA default 16): every per-tensor list is cut alike and the
    statistics are joined in order."""
    monkeypatch.setattr(cuda, "CHUNK", 2)
    run_parity(name, steps=6, fused=True, **VARIANTS[name][-1])


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_compiled_path_functions_low_precision(on_cpu, name, dtype):
    check_one_step(name, {"fused": True, **VARIANTS[name][0]}, dtype)


def test_compiled_path_is_off_without_cuda_or_when_disabled(monkeypatch):
    assert not cuda.available(torch.device("cpu"))
    monkeypatch.setattr(cuda, "DEVICES", ["cpu", "cuda"])
    monkeypatch.setenv(cuda.ENV, "0")
    assert not cuda.available(torch.device("cpu"))


@pytest.mark.parametrize("name", ["AdaTAM", "SGDP"])
def test_fused_true_without_the_compiled_path_is_refused(name):
    with pytest.raises(ValueError, match="fused=True needs CUDA parameters with Triton"):
        OPTIMIZERS[name](make_params(), fused=True, **BASE_KW[name])


# ---------------------------------------------------------------------- on a GPU
@pytest.mark.slow
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_compiled_path_traces_without_graph_breaks(on_cpu, monkeypatch, name):
    """Dynamo and functionalisation (backend aot_eager, no code generation) on the CPU: the
    traced functions keep every in-place write and equal the rule."""
    monkeypatch.setattr(cuda, "COMPILE_DEVICES", ("cpu", "cuda"))
    monkeypatch.setattr(cuda, "BACKEND", "aot_eager")
    import torch._dynamo.utils as dynamo_utils
    run_parity(name, steps=2, groups=GROUPS, fused=True, **VARIANTS[name][0])
    assert not dynamo_utils.counters["graph_break"]


@pytest.mark.cuda
@cuda_only
@pytest.mark.parametrize("name,kw", CASES, ids=IDS)
def test_cuda_compiled_equals_the_rule_float64(name, kw):
    pytest.importorskip("triton")
    run_parity(name, steps=10, groups=GROUPS, device="cuda", rtol=1e-10, fused=True, **kw)


@pytest.mark.cuda
@cuda_only
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_cuda_compiled_low_precision_equals_the_rule(name, dtype):
    pytest.importorskip("triton")
    check_one_step(name, {"fused": True, **VARIANTS[name][0]}, dtype, device="cuda", steps=4)


@pytest.mark.cuda
@cuda_only
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
@pytest.mark.parametrize("name,path", [(n, p) for n in OPTIMIZERS for p in PATHS[n]],
                         ids=lambda x: x if isinstance(x, str) else "-".join(f"{k}={v}" for k, v in x.items()) or "default")
def test_cuda_every_path_low_precision_equals_the_rule(name, path, dtype):
    """The CPU's bf16/fp16 test on CUDA: torch's CUDA fused kernels, foreach, for-loop and
    (fused=True) the compiled path."""
    check_one_step(name, {**path, **VARIANTS[name][0]}, dtype, device="cuda", steps=4)


@pytest.mark.cuda
@cuda_only
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_cuda_compiled_step_neither_synchronises_nor_recompiles_under_a_schedule(name):
    pytest.importorskip("triton")
    import torch._dynamo.utils as dynamo_utils
    params = make_params(dtype=torch.float32, device="cuda")
    opt = OPTIMIZERS[name](params, fused=True, nonfinite="ignore", **BASE_KW[name])
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.9)
    for t in range(2):  # compile and initialise the state
        set_grads(opt, gradients(params, t))
        opt.step()
        sched.step()
    frames = dict(dynamo_utils.counters["stats"]).get("unique_graphs", 0)
    torch.cuda.set_sync_debug_mode("error")
    try:
        for t in range(2, 5):
            set_grads(opt, gradients(params, t))
            opt.step()
            sched.step()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert dict(dynamo_utils.counters["stats"]).get("unique_graphs", 0) == frames


@pytest.mark.cuda
@cuda_only
@pytest.mark.parametrize("fused", [None, True, False])
def test_cuda_vradam_float64_runs_on_every_path(fused):
    """The review's bug: the fused AdamW kernel read VRAdam's float64 rate as float32 and failed.
    fused=None now takes the foreach path for float64 (eta stays float64, rule to 1e-10); the
    compiled path computes in float64 too."""
    run_parity("VRAdam", steps=6, device="cuda", rtol=1e-10, fused=fused)


@pytest.mark.cuda
@cuda_only
def test_cuda_vradam_torch_fused_kernel_float64_reads_a_float32_rate(monkeypatch):
    """With the compiled path off, fused=True on float64 CUDA parameters uses torch's fused AdamW
    kernel with the rate rounded to float32 (what the kernel reads): rule to 2^-24 relative."""
    monkeypatch.setenv(cuda.ENV, "0")
    run_parity("VRAdam", steps=6, device="cuda", rtol=1e-6, fused=True)
