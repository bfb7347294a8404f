"""Edge-of-stability thresholds for every optimizer: the claims ``stability.*``.

The work is split by job: :mod:`theory.stability_models` (the registry of models),
:mod:`theory.stability_certificates` (positivity certificates on the hyperparameter domain),
:mod:`theory.stability_analysis` (rule -> iteration matrix -> Schur test -> threshold, with the
steps), :mod:`theory.stability_display` (readable forms); this module registers one claim per
model.  The names other code uses (``analyse``, ``get_model``, ``MODELS``, ``H``, ...) are
re-exported here.
"""
from __future__ import annotations

from momentumlab.theory.claims import Claim, register
from momentumlab.theory.stability_analysis import (Analysis, analyse, analyse_model,
                                                   sqrt_only_on_second_moment)
from momentumlab.theory.stability_certificates import classify_condition, positivity_certificate
from momentumlab.theory.stability_display import LATEX, display_form
from momentumlab.theory.stability_models import DOMAINS, MODELS, B, H, Model, Param, get_model

__all__ = ["Param", "Model", "MODELS", "get_model", "Analysis", "analyse", "analyse_model", "H",
           "B", "threshold", "sqrt_only_on_second_moment", "display_form", "positivity_certificate",
           "classify_condition"]


def threshold(name: str, **params) -> float | None:
    """The derived threshold on ``eta*lambda`` of model ``name`` at ``params`` (defaults for the
    rest), e.g. ``threshold("heavy_ball", beta=0.9) == 3.8``."""
    return analyse(name).threshold_value(params)


def _predict(name: str):
    def predict(**params):
        return threshold(name, **params)
    return predict


def _register_claim(name: str) -> Claim:
    model = get_model(name)
    lam = r"\lambda(P^{-1}H)" if model.preconditioned else r"\lambda"
    statement = (rf"\text{{{model.rule}}}\ \text{{on}}\ f=\tfrac{{{lam}}}{{2}}w^2:\ "
                 rf"\rho(A)<1\iff 0<\eta{lam}<{LATEX.get(name, '?')}")
    return register(Claim(
        id=f"stability.{name}", title=model.title, source=model.source, statement=statement,
        assumptions=model.assumptions + (
            "hyperparameter domain: " + (", ".join(f"{p.name} in {DOMAINS[p.domain]}"
                                                   for p in model.params) or "none"),),
        derive_fn=lambda: analyse(name).derivation(), predict_fn=_predict(name)))


for _name in MODELS:
    _register_claim(_name)
