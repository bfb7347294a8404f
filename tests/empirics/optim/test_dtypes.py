"""bfloat16 and float16: every class, every path, against the float64 rule of theory.rules.

Tolerances come from the dtype's unit roundoff u (2^-8 for bfloat16, 2^-11 for float16:
round-to-nearest with 8 and 11 significand bits) and are argued where they are used:

* one step (``test_one_step_equals_the_rule``): the rule is run in float64 from the class's
  own state (low-precision values are exact in float64), so the only differences are the
  roundings of this step.  The eager paths compute in float32 and round each stored tensor
  once (error <= u |x_new|); the fused kernels do the same, except AdamP's fused path,
  which stores the Adam direction and the per-row factor in the parameters' dtype before
  the projection (two more roundings, each <= u of the step's change).  So
  ``|x_class - x_rule| <= u (|x_rule| + K |x_rule - x_prev|) + u * smallest_normal`` with
  K = 4 (the second term bounds the roundings inside the step's change, the last is
  half the spacing of subnormals; float32 arithmetic adds ~2^-24 relative, below u/100).
* a trajectory (``test_trajectory_stays_within_rounding_of_the_rule``): T steps from the
  same start, rule in float64 throughout.  Each step rounds the parameter (<= u|w|) and the
  state; a state error is at most T roundings of it, and it moves the parameter by at most
  that relative error of the step, so ``|w_T - w_rule| <= T u (max|w| + 2 T max|dw|)``.
"""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from momentumlab.empirics.optim import OPTIMIZERS, RULE_NAMES, TAM
from momentumlab.theory.ops import NUMPY
from momentumlab.theory.rules import get_rule, step_many
from tests.empirics.optim.harness import (BASE_KW, gradients, make_params, rule_hyper, scope_key,
                                          set_grads, split_groups)

#: unit roundoff of each dtype (significand bits 8 and 11)
UNIT = {torch.bfloat16: 2.0 ** -8, torch.float16: 2.0 ** -11}
DTYPES = list(UNIT)
#: every path of every class (fused: torch's fused kernels; foreach; for-loop; the default)
PATHS = {
    "VRAdam": [{}, {"fused": True}, {"fused": False, "foreach": True}, {"fused": False, "foreach": False}],
    "AdamP": [{}, {"fused": True}, {"fused": False, "foreach": True}, {"fused": False, "foreach": False}],
    "TAM": [{}, {"fused": False, "foreach": True}, {"fused": False, "foreach": False}],
    "SGDP": [{}, {"foreach": True}, {"foreach": False}],
    "AdaTAM": [{}, {"foreach": True}, {"foreach": False}],
}
#: options that reach every branch (global scopes, decay, maximize, nesterov)
OPTIONS = {
    "VRAdam": [{"weight_decay": 0.1}, {"maximize": True, "norm_scope": "tensor"}],
    "AdamP": [{"weight_decay": 0.1}, {"maximize": True, "delta": 0.5}],
    "SGDP": [{"weight_decay": 0.01, "nesterov": True}, {"maximize": True, "dampening": 0.2}],
    "TAM": [{"weight_decay": 0.1}, {"maximize": True, "cosine_scope": "global"}],
    "AdaTAM": [{"weight_decay": 0.1, "bias_correction": True}, {"maximize": True, "cosine_scope": "global"}],
}
CASES = [(n, path, opt) for n in OPTIMIZERS for path in PATHS[n] for opt in OPTIONS[n]]
IDS = [f"{n}-{'-'.join(f'{k}={v}' for k, v in path.items()) or 'default'}-{i % len(OPTIONS[n])}"
       for i, (n, path, _) in enumerate(CASES)]
K = 4


def _f64(x):
    return x.detach().to("cpu", torch.float64).numpy().copy()


def _rule_state(state, template):
    """The class's state as the rule's state (float64 arrays, python scalars)."""
    out = {}
    for key, ref in template.items():
        value = state[key] if key in state else ref
        if isinstance(ref, np.ndarray):
            out[key] = _f64(value)
        elif isinstance(ref, int):
            out[key] = int(round(float(value)))
        elif isinstance(ref, float):
            out[key] = float(value)
        else:
            out[key] = ref
    return out


def _within(actual, expected, before, u, smallest_normal, what):
    actual, expected = np.asarray(_f64(torch.as_tensor(actual))), np.asarray(expected, dtype=np.float64)
    before = np.zeros_like(expected) if before is None else np.asarray(before, dtype=np.float64)
    tol = u * (np.abs(expected) + K * np.abs(expected - before)) + u * smallest_normal
    err = np.abs(actual - expected)
    worst = float(np.max(err / tol)) if err.size else 0.0
    assert worst <= 1.0, f"{what}: error {float(np.max(err)):.3g} is {worst:.2f} x the tolerance"


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name,path,options", CASES, ids=IDS)
def test_one_step_equals_the_rule(name, path, options, dtype):
    check_one_step(name, {**path, **options}, dtype)


def check_one_step(name, kw, dtype, device="cpu", steps=8, scale=1.0):
    """``steps`` steps of the class, each compared with one float64 rule step from its state."""
    rule = get_rule(RULE_NAMES[name])
    u = UNIT[dtype]
    tiny = torch.finfo(dtype).smallest_normal
    params = make_params(dtype=dtype, device=device)
    groups = [(slice(0, 3), {}), (slice(3, None), {"weight_decay": 0.0})]
    opt = OPTIMIZERS[name](split_groups(params, groups), **{**BASE_KW[name], **kw})
    for t in range(steps):
        grads = gradients(params, t, scale=scale)
        set_grads(opt, grads)
        ws, gs, states, hypers, scopes, where = [], [], [], [], [], []
        for gi, group in enumerate(opt.param_groups):
            for i, p in enumerate(group["params"]):
                template = rule.init(_f64(p), NUMPY)
                states.append(_rule_state(opt.state[p], template) if opt.state[p] else template)
                ws.append(_f64(p)); gs.append(_f64(p.grad)); hypers.append(rule_hyper(rule, group))
                scopes.append(scope_key(group, gi, i)); where.append(p)
        new_ws, new_states = step_many(rule, ws, gs, states, hypers, NUMPY, scopes)
        opt.step()
        for p, w0, w1, s0, s1 in zip(where, ws, new_ws, states, new_states):
            what = f"{name} {dtype} step {t + 1} shape {tuple(p.shape)}"
            assert p.dtype == dtype
            _within(p, w1, w0, u, tiny, what + " param")
            for key, value in s1.items():
                if value is None:
                    continue
                got = opt.state[p][key]
                if isinstance(value, int):
                    assert float(got) == value, f"{what}: {key}"
                else:
                    prev = s0.get(key)
                    _within(got, value, None if prev is None else prev, u, tiny, f"{what} {key}")


@pytest.mark.parametrize("name,path", [(n, p) for n in ("VRAdam", "AdamP", "AdaTAM") for p in PATHS[n]],
                         ids=lambda x: x if isinstance(x, str) else "-".join(f"{k}={v}" for k, v in x.items()) or "default")
def test_float16_small_gradients_stay_finite_on_every_path(name, path):
    """The review's case: gradients ~1e-3 make (1 - b2) g^2 ~ 1e-9, below float16's range, and
    eps = 1e-8 rounds to 0 in float16; the eager paths gave inf/NaN at step 1 while the fused
    kernel stayed finite.  Every path now computes the step in float32 and equals the rule."""
    check_one_step(name, path, torch.float16, steps=3, scale=1e-3)


TRAJ = [(n, path) for n in OPTIMIZERS for path in PATHS[n]]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name,path", TRAJ, ids=[f"{n}-{i}" for i, (n, _) in enumerate(TRAJ)])
def test_trajectory_stays_within_rounding_of_the_rule(name, path, dtype):
    """The review's case: a 64-element parameter, 30 steps of one fixed gradient (TAM's fused
    SGD kernel in bfloat16 left the momentum unchanged and ended 0.69 away)."""
    rule, u, steps = get_rule(RULE_NAMES[name]), UNIT[dtype], 30
    gen = torch.Generator().manual_seed(3)
    w0 = torch.randn(64, generator=gen, dtype=torch.float64)
    # |g| in [0.5, 2]: Adam's v = (1 - b2) g^2 stays above float16's smallest normal (6.1e-5);
    # below it v is stored as a subnormal or 0 (absolute, not relative, rounding) on every
    # path, torch's AdamW included, and the bound above does not hold
    g = (torch.rand(64, generator=gen, dtype=torch.float64) * 1.5 + 0.5)
    g = (g * torch.randn(64, generator=gen, dtype=torch.float64).sign()).to(dtype)
    p = w0.to(dtype).requires_grad_()
    opt = OPTIMIZERS[name]([p], **{**BASE_KW[name], **path})
    h = rule_hyper(rule, opt.param_groups[0])
    w, state, gf = _f64(p), rule.init(_f64(p), NUMPY), _f64(g)
    ws = [w]
    for _ in range(steps):
        p.grad = g.clone()
        opt.step()
        w, state = rule(w, gf, state, h, NUMPY)
        ws.append(w)
    ws = np.stack(ws)
    bound = steps * u * (np.abs(ws).max() + 2 * steps * np.abs(np.diff(ws, axis=0)).max())
    err = float(np.abs(_f64(p) - ws[-1]).max())
    assert err <= bound, f"{name} {dtype}: {err:.3g} > {bound:.3g}"
    assert np.isfinite(_f64(p)).all()


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_tam_refuses_the_fused_sgd_kernel_in_low_precision(dtype):
    p = torch.zeros(64, dtype=dtype, requires_grad=True)
    with pytest.raises(ValueError, match="fused=True needs float32 or float64"):
        TAM([p], lr=0.05, fused=True)
    opt = TAM([p], lr=0.05)  # default: the foreach/loop path
    for _ in range(3):
        p.grad = torch.ones_like(p)
        opt.step()
    m = opt.state[p]["momentum_buffer"].float()
    # the rule from m0 = 0, s_hat0 = 0, g = 1: cos(m, g) = 0 then 1, 1 -> m_3 = 1.62 (float64)
    rule, state, w = get_rule("tam"), get_rule("tam").init(np.zeros(64), NUMPY), np.zeros(64)
    for _ in range(3):
        w, state = rule(w, np.ones(64), state, rule_hyper(rule, opt.param_groups[0]), NUMPY)
    torch.testing.assert_close(m, torch.as_tensor(state["momentum_buffer"], dtype=torch.float32),
                               rtol=UNIT[dtype], atol=0)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_resumed_state_equals_the_saved_one(name, dtype):
    """load_state_dict keeps the float32 scalars (s_hat, eta, norm_sq) float32: torch would cast
    them to the parameters' dtype."""
    params = make_params(dtype=dtype)
    opt = OPTIMIZERS[name](params, **BASE_KW[name])
    for t in range(3):
        set_grads(opt, gradients(params, t))
        opt.step()
    buf = io.BytesIO()
    torch.save(opt.state_dict(), buf)
    buf.seek(0)
    opt2 = OPTIMIZERS[name]([p.detach().clone().requires_grad_() for p in params], **BASE_KW[name])
    opt2.load_state_dict(torch.load(buf, weights_only=True))
    saved, loaded = opt.state_dict()["state"], opt2.state_dict()["state"]
    assert saved.keys() == loaded.keys()
    for i in saved:
        for key, value in saved[i].items():
            other = loaded[i][key]
            if torch.is_tensor(value):
                assert other.dtype == value.dtype and torch.equal(other, value), (i, key)
            else:
                assert other == value, (i, key)
