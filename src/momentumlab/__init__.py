"""momentumlab: the theory of momentum optimizers as executable, checkable claims.

The distribution installs the repository's top-level folders ``theory/`` (sympy and numpy,
never torch) and ``empirics/`` (torch) as :mod:`momentumlab.theory` and
:mod:`momentumlab.empirics`.  This module is the short public API; everything it names is
imported lazily, so ``import momentumlab`` costs neither sympy derivations nor torch.

    >>> import momentumlab as ml
    >>> ml.get_claim("adamp.lemma2.2").derive().status      # doctest: +SKIP
    'proved'
"""
from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("momentumlab")
except PackageNotFoundError:  # pragma: no cover - running from an uninstalled tree
    __version__ = "0+unknown"

#: public name -> (module, attribute)
_PUBLIC = {
    # claims
    "Claim": ("momentumlab.theory.claims", "Claim"),
    "get_claim": ("momentumlab.theory.claims", "get_claim"),
    "select": ("momentumlab.theory.claims", "select"),
    "load_claims": ("momentumlab.empirics.checks", "load_claims"),
    # update rules
    "Rule": ("momentumlab.theory.rules", "Rule"),
    "get_rule": ("momentumlab.theory.rules", "get_rule"),
    "RULES": ("momentumlab.theory.rules", "RULES"),
    # optimizers
    "VRAdam": ("momentumlab.empirics.optim", "VRAdam"),
    "AdamP": ("momentumlab.empirics.optim", "AdamP"),
    "SGDP": ("momentumlab.empirics.optim", "SGDP"),
    "TAM": ("momentumlab.empirics.optim", "TAM"),
    "AdaTAM": ("momentumlab.empirics.optim", "AdaTAM"),
    # sharpness
    "top_eigenvalues": ("momentumlab.empirics.sharpness", "top_eigenvalues"),
    # your own rule's stability theory
    "analyze": ("momentumlab.theory.analyze", "analyze"),
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str):
    try:
        module, attr = _PUBLIC[name]
    except KeyError:
        raise AttributeError(f"module 'momentumlab' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__():
    return sorted(__all__)
