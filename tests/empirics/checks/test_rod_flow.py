"""Checks of the rodflow claims: pass, reject every negative control, resolution < 1."""
from __future__ import annotations

import pytest

from momentumlab.empirics.checks import load_claims
from momentumlab.theory.claims import REGISTRY, resolution, run_controls

load_claims()


@pytest.mark.parametrize("cid", ["rodflow.identities", "rodflow.quartic", "rodflow.threshold",
                                 "rodflow.self_stabilization"])
def test_check_passes_and_rejects_controls(cid):
    claim = REGISTRY[cid]
    r = claim.check(quick=True)
    assert r.passed, r.details
    outcomes = run_controls(claim.all_controls, r)
    assert outcomes and all(o.rejected for o in outcomes)
    assert resolution(r) is not None and resolution(r) < 1


def test_quartic_sees_the_period_doubling():
    d = REGISTRY["rodflow.quartic"].check(quick=True).details["past_period_doubling"]
    assert d["gd_leaves_period_2"] and d["rod_at_rest"]


def test_verdict_does_not_flip_with_the_seed():
    a = REGISTRY["rodflow.quartic"].check(seed=0, quick=True)
    b = REGISTRY["rodflow.quartic"].check(seed=3, quick=True)
    assert a.passed == b.passed
