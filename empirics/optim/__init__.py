"""Faithful, fast ``torch.optim`` optimizers: VRAdam, AdamP, SGDP, TAM, AdaTAM.

Each class implements one update rule of :mod:`theory.rules` (``vradam``,
``adamp``, ``sgdp``, ``tam``, ``adatam``) and is tested against it in float64.

Dtypes, for every class: float64, float32, bfloat16 and float16.  In bfloat16/float16
every path computes the step in float32 and rounds each stored tensor once (as torch's
fused kernels do), so float16 with ``eps = 1e-8`` stays finite and all paths agree with
the float64 rule to the dtype's rounding; scalar statistics stay float32, also through
``load_state_dict``.  ``fused=True`` on CUDA parameters (with Triton) is the compiled CUDA
path of :mod:`empirics.optim.cuda` (docs/guide/optimizers-dtypes.md).
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
