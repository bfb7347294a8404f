"""The experiments that test each claim, one module per theory topic.

Importing a check module attaches ``check_fn`` to the claims of the matching
``theory`` module.  :func:`load_claims` imports them all and returns the registry.
"""
from __future__ import annotations

import importlib

from momentumlab.theory.claims import REGISTRY

__all__ = ["load_claims", "CHECK_MODULES"]

#: (theory module with the claims, empirics module with their checks)
CHECK_MODULES = (
    ("momentumlab.theory.norm_growth", "momentumlab.empirics.checks.norm_growth"),
    ("momentumlab.theory.convergence", "momentumlab.empirics.checks.convergence"),
    ("momentumlab.theory.stability", "momentumlab.empirics.checks.stability"),
    ("momentumlab.theory.vradam", "momentumlab.empirics.checks.vradam"),
    ("momentumlab.theory.eos", "momentumlab.empirics.checks.eos"),
    ("momentumlab.theory.rod_flow", "momentumlab.empirics.checks.rod_flow"),
)


def load_claims() -> dict:
    """Import every theory claim module and its checks; returns :data:`theory.claims.REGISTRY`."""
    for theory_mod, check_mod in CHECK_MODULES:
        importlib.import_module(theory_mod)
        importlib.import_module(check_mod)
    _order_by_topic()
    return REGISTRY


def _order_by_topic() -> None:
    """List claims in CHECK_MODULES order (imports elsewhere may have registered some first)."""
    rank = {mod: i for i, (mod, _) in enumerate(CHECK_MODULES)}
    claims = sorted(REGISTRY.values(),
                    key=lambda c: rank.get(getattr(c.derive_fn, "__module__", None), len(rank)))
    REGISTRY.clear()
    REGISTRY.update((c.id, c) for c in claims)


def attach(claim_id: str):
    """Decorator: make the function the ``check_fn`` of ``claim_id``."""

    def deco(fn):
        REGISTRY[claim_id].check_fn = fn
        return fn

    return deco
