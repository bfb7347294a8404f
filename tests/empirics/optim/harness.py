"""Helpers for the optimizer tests: random parameters, gradients, and the rule-driven oracle.

The oracle is :func:`theory.rules.step_many` on the registered rule with the
numpy ops namespace in float64 -- the single definition of each update, run on
arrays independent of torch's kernels -- so no second hand-written reference
lives in the tests.
"""
from __future__ import annotations

import torch

from momentumlab.empirics.optim import OPTIMIZERS, RULE_NAMES
from momentumlab.theory.ops import NUMPY
from momentumlab.theory.rules import get_rule, step_many

#: scalar, vector, matrix, conv kernel (and a (1, k) row, where both AdamP views coincide)
SHAPES = [(), (7,), (6, 5), (4, 3, 3, 3), (1, 9)]
#: minimal constructor arguments of each class
BASE_KW = {"VRAdam": {}, "AdamP": {}, "SGDP": {"lr": 0.1}, "TAM": {"lr": 0.05}, "AdaTAM": {"lr": 1e-3}}


def make_params(shapes=SHAPES, seed=0, dtype=torch.float64, device="cpu"):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=gen, dtype=dtype).to(device).requires_grad_() for s in shapes]


def split_groups(params, groups):
    """``groups`` is a list of (slice, overrides) or None (one group)."""
    if not groups:
        return params
    return [{"params": params[sl], **over} for sl, over in groups]


def _orthogonal(g, w, rows: bool):
    """``g`` minus its radial part w.r.t. ``w``: per row (channel view) or for the whole tensor."""
    gv, wv = (g.reshape(g.shape[0], -1), w.reshape(w.shape[0], -1)) if rows else (g.reshape(1, -1), w.reshape(1, -1))
    wn = wv / wv.norm(dim=1, keepdim=True)
    return (gv - wn * (wn * gv).sum(1, keepdim=True)).reshape(g.shape)


def gradients(params, step, seed=0, scale=1.0):
    """Deterministic gradients; tensors with dim > 1 alternate between random, channel-orthogonal
    and layer-orthogonal to the current weights, so AdamP's both projections and no projection
    all occur."""
    gen = torch.Generator().manual_seed(7919 + 1000 * seed + step)  # not make_params' stream
    out = []
    for i, p in enumerate(params):
        g = torch.randn(p.shape, generator=gen, dtype=torch.float64).to(p.dtype) * scale
        g = g.to(p.device)
        if p.dim() > 1:
            mode = (step + i) % 3
            if mode:
                g = _orthogonal(g, p.detach(), rows=mode == 1)
        out.append(g)
    return out


def rule_hyper(rule, group):
    return rule.hyper(**{k: group[k] for k in rule.defaults if k in group and k != "coupled"})


def scope_key(group, gi, index):
    scope = group.get("norm_scope", group.get("cosine_scope", "tensor"))
    if scope == "global":
        return "global"
    if scope == "group":
        return ("group", gi)
    return ("tensor", gi, index)


class Oracle:
    """The rule of an optimizer class run on float64 copies of its parameters."""

    def __init__(self, opt):
        self.rule = get_rule(RULE_NAMES[type(opt).__name__])
        self.opt = opt
        self.ws = [[_np(p) for p in g["params"]] for g in opt.param_groups]
        self.states = [[self.rule.init(w, NUMPY) for w in ws] for ws in self.ws]

    def step(self, grads_by_group):
        flat_w, flat_g, flat_s, hypers, scopes, where = [], [], [], [], [], []
        for gi, group in enumerate(self.opt.param_groups):
            h = rule_hyper(self.rule, group)
            for i, (w, g, s) in enumerate(zip(self.ws[gi], grads_by_group[gi], self.states[gi])):
                if g is None:
                    continue
                flat_w.append(w); flat_g.append(_np(g)); flat_s.append(s)
                hypers.append(h); scopes.append(scope_key(group, gi, i)); where.append((gi, i))
        new_w, new_s = step_many(self.rule, flat_w, flat_g, flat_s, hypers, NUMPY, scopes)
        for (gi, i), w, s in zip(where, new_w, new_s):
            self.ws[gi][i], self.states[gi][i] = w, s


def _np(t):
    return t.detach().to("cpu", torch.float64).numpy().copy()


def assert_close(actual, expected, rtol=1e-12, what=""):
    actual = torch.as_tensor(actual).detach().to("cpu", torch.float64)
    expected = torch.as_tensor(expected).detach().to("cpu", torch.float64)
    scale = float(expected.abs().max()) if expected.numel() else 0.0
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=rtol * max(scale, 1e-300),
                               msg=lambda m: f"{what}: {m}")


def compare(opt, oracle, rtol=1e-12, what=""):
    """Parameters and every state entry of the rule equal the class's."""
    for gi, group in enumerate(opt.param_groups):
        for i, p in enumerate(group["params"]):
            assert_close(p, oracle.ws[gi][i], rtol, f"{what} param {gi}.{i}")
            state, ref = opt.state[p], oracle.states[gi][i]
            if not state:
                continue
            for key, value in ref.items():
                if value is None:
                    continue
                assert key in state, f"{what}: state key {key!r} missing"
                got = state[key]
                if isinstance(value, int):
                    assert float(got) == value, f"{what}: {key} {got} != {value}"
                else:
                    assert_close(got, value, rtol, f"{what} state {gi}.{i}.{key}")


def set_grads(opt, grads):
    it = iter(grads)
    for group in opt.param_groups:
        for p in group["params"]:
            p.grad = next(it).clone()


def grads_by_group(opt, grads):
    it = iter(grads)
    return [[next(it) for _ in g["params"]] for g in opt.param_groups]


def run_parity(name, steps=20, groups=None, shapes=SHAPES, seed=0, device="cpu", rtol=1e-12,
               schedule=None, **kw):
    """Run class and rule side by side for ``steps`` steps; compare after every step."""
    params = make_params(shapes, seed, device=device)
    opt = OPTIMIZERS[name](split_groups(params, groups), **{**BASE_KW[name], **kw})
    oracle = Oracle(opt)
    sched = schedule(opt) if schedule else None
    for t in range(steps):
        grads = gradients(params, t, seed)
        set_grads(opt, grads)
        oracle.step(grads_by_group(opt, grads))
        opt.step()
        compare(opt, oracle, rtol, f"{name} step {t + 1}")
        if sched is not None:
            sched.step()
    return opt, oracle


def clone_run(name, steps, kw, seed=0, shapes=SHAPES, groups=None, start=None):
    """Parameters and optimizer after ``steps`` steps (optionally continuing ``start``)."""
    if start is None:
        params = make_params(shapes, seed)
        opt = OPTIMIZERS[name](split_groups(params, groups), **{**BASE_KW[name], **kw})
        first = 0
    else:
        params, opt, first = start
    for t in range(first, first + steps):
        set_grads(opt, gradients(params, t, seed))
        opt.step()
    return params, opt, first + steps
