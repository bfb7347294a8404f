"""Each optimizer equals its update rule in float64 over 20 steps: parameters and state.

Shapes: scalar, vector, matrix, conv kernel, (1, k); with and without weight
decay, ``maximize``, several parameter groups, every scope and variant.
"""
import pytest

from tests.empirics.optim.harness import run_parity

TWO_GROUPS = [(slice(0, 2), {}), (slice(2, None), {"lr": 3e-3, "weight_decay": 0.05})]
TWO_GROUPS_SGD = [(slice(0, 2), {}), (slice(2, None), {"lr": 0.03, "weight_decay": 0.05})]

CASES = [
    ("VRAdam", {}, None),
    ("VRAdam", {"weight_decay": 0.1, "maximize": True}, None),
    ("VRAdam", {"lr": 0.01, "beta3": 5.0, "alpha1": 3.0, "weight_decay": 0.01}, TWO_GROUPS),
    ("VRAdam", {"norm_scope": "group", "fused": False}, TWO_GROUPS),
    ("VRAdam", {"norm_scope": "tensor", "weight_decay": 0.1}, TWO_GROUPS),
    ("VRAdam", {"norm_scope": "tensor", "fused": False, "maximize": True}, None),
    ("VRAdam", {"gate": "gradient", "alpha1": 19.0}, TWO_GROUPS),
    ("VRAdam", {"power": 3.0, "beta3": 0.3, "fused": False, "weight_decay": 0.1}, None),
    ("VRAdam", {"power": 1.5, "gate": "gradient", "maximize": True}, None),
    ("AdamP", {}, None),
    ("AdamP", {"weight_decay": 0.1, "maximize": True}, None),
    ("AdamP", {"nesterov": True, "weight_decay": 0.1, "delta": 0.5, "wd_ratio": 0.3}, TWO_GROUPS),
    ("AdamP", {"nesterov": True, "maximize": True, "foreach": True}, None),
    ("AdamP", {"fused": False, "weight_decay": 0.1, "maximize": True}, TWO_GROUPS),
    ("AdamP", {"fused": False, "foreach": True, "delta": 0.5}, None),
    ("SGDP", {}, None),
    ("SGDP", {"weight_decay": 0.01, "maximize": True}, None),
    ("SGDP", {"weight_decay": 0.01, "project_buffer": False}, TWO_GROUPS_SGD),
    ("SGDP", {"nesterov": True, "weight_decay": 0.01}, TWO_GROUPS_SGD),
    ("SGDP", {"dampening": 0.3, "momentum": 0.5, "nesterov": True, "maximize": True,
              "foreach": True}, None),
    ("TAM", {}, None),
    ("TAM", {"weight_decay": 0.1, "maximize": True}, None),
    ("TAM", {"cosine_scope": "global", "momentum": 0.8, "decay": 0.5}, TWO_GROUPS_SGD),
    ("TAM", {"cosine_scope": "global", "maximize": True, "weight_decay": 0.1, "foreach": True}, None),
    ("TAM", {"fused": False, "weight_decay": 0.1, "maximize": True}, TWO_GROUPS_SGD),
    ("TAM", {"momentum": 0.0, "weight_decay": 0.1}, None),
    ("AdaTAM", {}, None),
    ("AdaTAM", {"weight_decay": 0.1, "maximize": True, "bias_correction": True}, None),
    ("AdaTAM", {"cosine_scope": "global", "eps": 1e-3}, TWO_GROUPS),
    ("AdaTAM", {"cosine_scope": "global", "maximize": True, "foreach": True}, None),
]


@pytest.mark.parametrize("name,kw,groups", CASES,
                         ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(CASES)])
def test_class_equals_rule(name, kw, groups):
    run_parity(name, steps=20, groups=groups, **kw)
