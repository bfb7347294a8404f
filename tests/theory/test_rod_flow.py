"""Rod flow theory: the construction, the phase spaces, the thresholds, the quartic."""
from __future__ import annotations

import math

import numpy as np
import pytest

from momentumlab.theory import rod_flow as rf
from momentumlab.theory.claims import REGISTRY
from momentumlab.theory.ops import numpy_ops


@pytest.mark.parametrize("cid", ["rodflow.identities", "rodflow.threshold", "rodflow.quartic"])
def test_symbolic_claims_are_proved(cid):
    assert REGISTRY[cid].derive().status == "proved"


def test_self_stabilization_uses_one_named_lemma():
    d = REGISTRY["rodflow.self_stabilization"].derive()
    assert d.status == "proved from lemmas" and len(d.lemmas) == 1


def test_linear_map_decouples_into_stable_and_flip_modes():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((3, 3))
    c, d = rng.standard_normal(3), rng.standard_normal(3)
    dc, dd = rf.rod_field(lambda z: A @ z - z, c, d)
    np.testing.assert_allclose(dc, (A - np.eye(3)) @ c, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(dd, -(np.eye(3) + A) @ d, rtol=1e-13, atol=1e-13)


def test_endpoint_form_is_the_same_ode():
    rng = np.random.default_rng(1)
    phi = lambda z: np.tanh(z) + 0.3 * z[::-1]  # noqa: E731  any nonlinear map
    c, d = rng.standard_normal(2), rng.standard_normal(2)
    dc, dd = rf.rod_field(lambda z: phi(z) - z, c, d)
    da, db = rf.endpoint_field(phi, c - d, c + d)
    np.testing.assert_allclose(da, dc - dd, atol=1e-14)
    np.testing.assert_allclose(db, dc + dd, atol=1e-14)


@pytest.mark.parametrize("name, expected", [
    ("gd", 2.0), ("heavy_ball", 3.8), ("nesterov", 3.8 / 2.8), ("adam", 38.0),
    ("scalar_adam", 38.0), ("nadam", 2 * 1.9 / (0.1 * 2.8)), ("rmsprop", 2.0), ("tam", 3.8 / (1 + 1e-8)),
])
def test_rod_threshold_literature_values(name, expected):
    # Cohen et al. 2021/2022 (2, 2+2b, 38), Nesterov and NAdam from the reference table
    assert rf.threshold_value(name) == pytest.approx(expected, rel=1e-12)


def test_quartic_rod_equilibrium_is_gd_two_cycle_found_by_iteration():
    eta, S, Q = 1.0, 2.6, 1.0
    w = 0.5
    for _ in range(5000):  # independent oracle: plain GD on S/2 w^2 - Q/4 w^4
        w = w - eta * (S * w - Q * w**3)
    assert abs(w) == pytest.approx(rf.quartic_equilibrium(eta, S, Q), rel=1e-12)
    assert math.isnan(rf.quartic_equilibrium(1.0, 1.9, 1.0))


def test_rates_and_their_errors():
    assert rf.nu_rate(0.99) == pytest.approx(0.01 / 0.99)
    assert rf.nu_rate(0.99, "-log(beta2)") == pytest.approx(-math.log(0.99))
    with pytest.raises(ValueError, match="rate must be one of"):
        rf.nu_rate(0.9, "bogus")


def test_unknown_names_list_the_known_ones():
    with pytest.raises(KeyError, match="known: gd"):
        rf.get_space("sgdx")
    with pytest.raises(TypeError, match="known"):
        rf.get_space("adam").values(momentum=0.9)


def test_phase_map_runs_the_rule_once():
    # heavy ball on g(w) = 2 w: v' = b v + g, w' = w - lr v' (torch SGD), by hand
    ops = numpy_ops(batch_dims=1)
    space = rf.get_space("heavy_ball")
    step = rf.phase_map(space, space.values(lr=0.1, beta=0.5), lambda w: 2 * w, ops)
    z = {"w": np.array([[1.0]]), "momentum_buffer": np.array([[0.4]])}
    F, g = step(z)
    v_new = 0.5 * 0.4 + 2.0
    assert F["w"][0, 0] == pytest.approx(-0.1 * v_new)
    assert F["momentum_buffer"][0, 0] == pytest.approx(v_new - 0.4)


def test_adaptive_space_requires_the_frozen_root():
    space = rf.get_space("adam")
    with pytest.raises(ValueError, match="sqrt"):
        rf.phase_map(space, space.values(), lambda w: w, numpy_ops(1))
