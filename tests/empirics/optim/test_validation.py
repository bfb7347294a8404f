"""Bad input gets a clear error; NaN/inf gradients lose nothing (the ``nonfinite`` policy)."""
import copy
import math

import pytest
import torch

from momentumlab.empirics.optim import OPTIMIZERS, NonFiniteGradientError
from tests.empirics.optim.harness import BASE_KW, clone_run, gradients, make_params, set_grads

NAMES = list(OPTIMIZERS)

BAD = {  # (argument, bad value, text the message must contain)
    "VRAdam": [("lr", -1e-3, "[0.0, inf)"), ("betas", (0.9, 1.0), "[0.0, 1.0)"),
               ("betas", (-0.1, 0.9), "betas[0]"), ("betas", 0.9, "pair"),
               ("beta3", -1.0, "[0.0, inf)"), ("alpha1", float("nan"), "alpha1"),
               ("eps", -1e-8, "eps"), ("weight_decay", -0.1, "weight_decay"),
               ("power", 0.0, "(0.0, inf)"), ("norm_scope", "layer", "'global', 'group', 'tensor'"),
               ("gate", "momentum", "'velocity', 'gradient'"), ("maximize", 1, "maximize"),
               ("foreach", "yes", "foreach"), ("lr", "0.1", "lr")],
    "AdamP": [("lr", -1.0, "lr"), ("betas", (1.0, 0.999), "betas[0]"), ("delta", -0.1, "delta"),
              ("wd_ratio", -1.0, "wd_ratio"), ("nesterov", None, "nesterov"),
              ("weight_decay", math.inf, "weight_decay"), ("fused", "yes", "fused")],
    "SGDP": [("lr", -0.1, "lr"), ("momentum", 1.0, "[0.0, 1.0)"), ("dampening", 1.5, "[0.0, 1.0]"),
             ("eps", -1.0, "eps"), ("delta", float("nan"), "delta")],
    "TAM": [("lr", -1.0, "lr"), ("momentum", 1.0, "momentum"), ("decay", 1.0, "[0.0, 1.0)"),
            ("decay", -0.5, "decay"), ("eps", -1.0, "eps"), ("cosine_scope", "group", "cosine_scope"),
            ("weight_decay", -1.0, "weight_decay")],
    "AdaTAM": [("betas", (0.9, 1.5), "betas[1]"), ("decay", 2.0, "decay"),
               ("bias_correction", "no", "bias_correction"), ("nonfinite", "warn", "nonfinite")],
}
CASES = [(n, a, v, t) for n in NAMES for a, v, t in BAD[n]]


@pytest.mark.parametrize("name,arg,value,text", CASES,
                         ids=[f"{n}-{a}-{i}" for i, (n, a, _, _) in enumerate(CASES)])
def test_bad_hyperparameter_is_named_with_its_range(name, arg, value, text):
    w = torch.zeros(3, requires_grad=True)
    with pytest.raises(ValueError) as err:
        OPTIMIZERS[name]([w], **{**BASE_KW[name], arg: value})
    msg = str(err.value)
    assert name in msg and arg.split("[")[0] in msg and text in msg, msg


@pytest.mark.parametrize("name,kw", [("AdamP", {"nesterov": True}), ("SGDP", {"lr": 0.1}),
                                     ("AdaTAM", {})])
def test_fused_is_refused_where_no_fused_kernel_fits(name, kw):
    w = torch.zeros(3, requires_grad=True)
    with pytest.raises(ValueError, match="fused=True"):
        OPTIMIZERS[name]([w], fused=True, **kw)


@pytest.mark.parametrize("name", NAMES)
def test_bad_value_in_a_later_group_is_refused(name):
    a, b = torch.zeros(3, requires_grad=True), torch.zeros(2, requires_grad=True)
    opt = OPTIMIZERS[name]([a], **BASE_KW[name])
    with pytest.raises(ValueError, match="eps"):
        opt.add_param_group({"params": [b], "eps": -1.0})
    assert len(opt.param_groups) == 1


@pytest.mark.parametrize("name", NAMES)
def test_sparse_gradients_are_refused(name):
    emb = torch.nn.Embedding(10, 3, sparse=True)
    opt = OPTIMIZERS[name](emb.parameters(), **BASE_KW[name])
    emb(torch.tensor([1, 2])).sum().backward()
    with pytest.raises(RuntimeError, match="sparse gradients"):
        opt.step()


@pytest.mark.parametrize("name", NAMES)
def test_complex_parameters_are_refused(name):
    w = torch.zeros(3, dtype=torch.complex64, requires_grad=True)
    with pytest.raises(ValueError, match="complex"):
        OPTIMIZERS[name]([w], **BASE_KW[name])


def _state_copy(opt, params):
    return copy.deepcopy(([p.detach().clone() for p in params], opt.state_dict()))


def _same(a, b):
    (pa, sa), (pb, sb) = a, b
    assert all(torch.equal(x, y) for x, y in zip(pa, pb))
    assert sa["state"].keys() == sb["state"].keys()
    for k in sa["state"]:
        for key, v in sa["state"][k].items():
            assert torch.equal(torch.as_tensor(v), torch.as_tensor(sb["state"][k][key])), key


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("name", NAMES)
def test_nonfinite_gradient_raises_and_loses_nothing(name, bad):
    params, opt, t = clone_run(name, 4, {})
    before = _state_copy(opt, params)
    grads = gradients(params, t)
    grads[3].view(-1)[5] = bad
    set_grads(opt, grads)
    with pytest.raises(NonFiniteGradientError, match="unchanged"):
        opt.step()
    _same(before, _state_copy(opt, params))
    # the run continues exactly as one that never saw the bad gradient
    cont, _, _ = clone_run(name, 3, {}, start=(params, opt, t))
    ref, _, _ = clone_run(name, 7, {})
    assert all(torch.equal(a, b) for a, b in zip(cont, ref))


@pytest.mark.parametrize("name", NAMES)
def test_nonfinite_gradient_on_the_first_step_leaves_no_state(name):
    params = make_params()
    opt = OPTIMIZERS[name](params, **BASE_KW[name], nonfinite="skip")
    grads = gradients(params, 0)
    grads[0].fill_(float("nan"))
    set_grads(opt, grads)
    before = [p.detach().clone() for p in params]
    assert opt.step() is None
    assert opt.skipped_steps == 1 and not opt.state
    assert all(torch.equal(a, b) for a, b in zip(before, params))


@pytest.mark.parametrize("name", NAMES)
def test_nonfinite_ignore_applies_the_step(name):
    params = make_params()
    opt = OPTIMIZERS[name](params, **BASE_KW[name], nonfinite="ignore")
    grads = gradients(params, 0)
    grads[2].view(-1)[0] = float("nan")
    set_grads(opt, grads)
    opt.step()
    assert torch.isnan(params[2]).any()
