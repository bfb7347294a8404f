"""Faithful, fast ``torch.optim`` optimizers: VRAdam, AdamP, SGDP, TAM, AdaTAM.

Each class implements one update rule of :mod:`theory.rules` (``vradam``,
``adamp``, ``sgdp``, ``tam``, ``adatam``) and is tested against it in float64.
"""
from momentumlab.empirics.optim._base import NONFINITE_POLICIES, MomentumlabOptimizer, NonFiniteGradientError
from momentumlab.empirics.optim.adamp import SGDP, AdamP
from momentumlab.empirics.optim.tam import TAM, AdaTAM
from momentumlab.empirics.optim.vradam import VRAdam

__all__ = ["VRAdam", "AdamP", "SGDP", "TAM", "AdaTAM", "MomentumlabOptimizer",
           "NonFiniteGradientError", "NONFINITE_POLICIES", "OPTIMIZERS", "RULE_NAMES"]

#: the classes by name
OPTIMIZERS = {"VRAdam": VRAdam, "AdamP": AdamP, "SGDP": SGDP, "TAM": TAM, "AdaTAM": AdaTAM}
#: the :mod:`theory.rules` rule each class implements
RULE_NAMES = {"VRAdam": "vradam", "AdamP": "adamp", "SGDP": "sgdp", "TAM": "tam", "AdaTAM": "adatam"}
