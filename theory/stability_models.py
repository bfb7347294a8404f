"""Stability models: each optimizer's rule, hyperparameters and what its analysis freezes.

A :class:`Model` names the rule of :mod:`theory.rules`, its hyperparameters (:class:`Param`:
default, domain, explorer range), the dynamic state, what is held fixed (late-time step
counter, frozen second moment ``sqrt(v_hat) = P``, VRAdam's gate ``G``) and the closed form
the literature states.  :mod:`theory.stability_analysis` derives the thresholds;
:mod:`theory.stability` registers the claims.

Sources: Cohen et al., "Adaptive Gradient Methods at the Edge of Stability",
arXiv 2207.14484, Sec. 3 (frozen preconditioner, 38/eta); Cohen et al. ICLR 2021
(2/eta); Vaidhyanathan et al., VRAdam, arXiv 2505.13196, Sec. 4 (gated threshold);
Malviya et al., TAM, arXiv 2412.18790, Sec. 3 (damped momentum).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import sympy as sp

from momentumlab.theory.linearize import Freeze, min_node, sqrt_containing

__all__ = ["H", "B", "DOMAINS", "Param", "Model", "MODELS", "get_model"]

#: ``h = eta * lam``: the x axis of every region (``lam`` preconditioned for adaptive rules).
H = sp.Symbol("eta_lambda", positive=True)
_LAMT = sp.Symbol("lambda_t", positive=True)  # the (preconditioned) curvature
_P = sp.Symbol("P", positive=True)  # the frozen preconditioner sqrt(v_hat)
_V = sp.Symbol("V", positive=True)  # the frozen second moment
_EPS = sp.Symbol("epsilon", nonnegative=True)


def B(beta):
    """``B(beta) = (2 + 2 beta)/(1 - beta)``: EMA momentum (and Adam, frozen P) is stable iff
    ``eta lam < B(beta)`` (VRAdam paper, arXiv 2505.13196, Sec. 4.1; Cohen et al. 2022, Sec. 3).

    The one definition of B in the project; numbers or sympy expressions.  The stability
    analysis *derives* it (``stability.ema_momentum``) and compares with this stated form.
    """
    return (2 + 2 * beta) / (1 - beta)


#: hyperparameter domains and their positivity substitutions (theory.stability_certificates)
DOMAINS = {
    "unit": "[0, 1)",  # beta = u/(1+u)
    "unit_right": "(0, 1]",  # d = 1/(1+u)
    "nonneg": "[0, oo)",
}


@dataclass(frozen=True)
class Param:
    """A hyperparameter of a model: name (also the sympy symbol), default, domain, explorer range."""

    name: str
    default: float
    domain: str = "unit"
    range: tuple[float, float] = (0.0, 0.99)
    doc: str = ""

    @property
    def symbol(self) -> sp.Symbol:
        return sp.Symbol(self.name, real=True)


@dataclass(frozen=True)
class Model:
    """An optimizer's stability model: its rule, hyperparameters and what is frozen.

    ``hyper(v)`` maps values (``lr`` plus the params; numbers, symbols or tensors)
    to the rule's hyperparameters; ``state(v, step, second_moment)`` gives the
    non-dynamic state entries (late-time step counter, frozen second moment,
    TAM's frozen cosine average).  ``freeze(v)`` lists what the linearisation
    holds fixed.  ``stated`` is the closed form the issue/literature states.
    """

    name: str
    rule: str
    title: str
    source: str
    params: tuple[Param, ...]
    hyper: Callable[[Mapping[str, Any]], dict]
    dynamic: tuple[str, ...]
    state: Callable[[Mapping[str, Any], Any, Any], dict] = lambda v, step, vv: {}
    preconditioned: bool = False
    gate: bool = False
    stated: Callable[[Mapping[str, sp.Symbol]], sp.Expr] | None = None
    assumptions: tuple[str, ...] = ()
    x_range: tuple[float, float] = (0.0, 5.0)
    y_default: str | None = "beta"
    extra: tuple[str, ...] = ()
    running_hyper: Callable[[Mapping[str, Any]], dict] | None = None
    running_state: Callable[[Mapping[str, Any], Any, Any], dict] | None = None
    display_subs: Callable[[Mapping[str, sp.Symbol]], dict] | None = None

    @property
    def modes(self) -> dict:
        """Simulation modes: ``frozen`` (the analysed map) and, when it differs, ``running``."""
        out = {"frozen": "the map analysed here"
               + (": sqrt(v_hat) frozen at P" if self.preconditioned else "")
               + ("; TAM damping d fixed (decay 1, s_hat = 2d - 1)" if self.running_hyper else "")
               + ("; gate live" if self.gate else "")}
        if self.preconditioned:
            out["running"] = "the rule as written: running second moment"
        if self.running_hyper is not None:
            out["running"] = "the rule as written: cosine-driven damping (decay gamma, s_hat_0 = 0)"
        return out

    def setup(self, v: Mapping[str, Any], step, second_moment, mode: str = "frozen"):
        """``(hyper overrides, state overrides)`` for ``mode`` (see :attr:`modes`)."""
        if mode not in self.modes:
            raise ValueError(f"{self.name}: mode must be one of {sorted(self.modes)}, got {mode!r}")
        if mode == "running" and self.running_hyper is not None:
            return self.running_hyper(v), (self.running_state or self.state)(v, step, second_moment)
        return self.hyper(v), self.state(v, step, second_moment)

    def defaults(self) -> dict:
        return {p.name: p.default for p in self.params}

    def param(self, name: str) -> Param:
        """The :class:`Param` called ``name``; ``KeyError`` lists the known ones."""
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(f"{self.name} has no hyperparameter {name!r}; known: "
                       f"{', '.join(p.name for p in self.params) or 'none'}")

    def symbols(self) -> dict:
        return {p.name: p.symbol for p in self.params}

    def freezes(self) -> tuple[Freeze, ...]:
        out = []
        if self.preconditioned:
            out.append(sqrt_containing(_V, _P, "preconditioner sqrt(v_hat)"))
        if self.gate:
            out.append(min_node(self.param("G").symbol, "VRAdam gate"))
        return tuple(out)


MODELS: dict[str, Model] = {}


def _model(m: Model) -> Model:
    MODELS[m.name] = m
    return m


def get_model(name: str) -> Model:
    """The stability model ``name``; a ``KeyError`` lists the known ones."""
    try:
        return MODELS[name]
    except KeyError:
        raise KeyError(f"unknown optimizer {name!r}; known: {', '.join(MODELS)}") from None


_BETA = Param("beta", 0.9, "unit", (0.0, 0.99), "momentum coefficient")
_BETA2 = Param("beta2", 0.999, "unit", (0.9, 0.9999), "second-moment decay (frozen: irrelevant)")
_EPSP = Param("epsilon", 1e-8, "nonneg", (0.0, 1e-3), "denominator epsilon")
_FROZEN = ("the preconditioner P = sqrt(v_hat) (+ epsilon) is frozen: lambda is an eigenvalue "
           "of P^{-1} H (Cohen et al. 2022, 'frozen Adam'); modes decouple along the "
           "eigenvectors of P^{-1/2} H P^{-1/2}")
_LATE = "late time t -> oo: bias corrections 1 - beta^t -> 1"
_QUAD = "quadratic model f(w) = lambda w^2/2 (one eigen-direction of a quadratic)"
_B = lambda s: B(s["beta"])  # noqa: E731  stated B(beta) in a model's symbols


def _late_adam_state(v, step, vv):
    return {"step": step, "exp_avg_sq": vv}


_model(Model(
    "gd", "gd", "Gradient descent is stable iff eta*lambda < 2",
    "Cohen et al., ICLR 2021 (arXiv 2103.00065), Sec. 1; classical", (),
    lambda v: {"lr": v["lr"]}, (), stated=lambda s: sp.Integer(2), assumptions=(_QUAD,),
    x_range=(0.0, 3.0), y_default=None))
_model(Model(
    "heavy_ball", "heavy_ball", "Heavy ball (PyTorch SGD momentum): eta*lambda < 2 + 2 beta",
    "Cohen et al. 2022 (arXiv 2207.14484), Sec. 3; torch.optim.SGD(momentum)", (_BETA,),
    lambda v: {"lr": v["lr"], "momentum": v["beta"]}, ("momentum_buffer",),
    stated=lambda s: 2 + 2 * s["beta"], assumptions=(_QUAD, "dampening 0, no weight decay"),
    x_range=(0.0, 5.0)))
_model(Model(
    "ema_momentum", "ema_momentum",
    "EMA momentum: eta*lambda < (2 + 2 beta)/(1 - beta)  (38 at beta = 0.9)",
    "Cohen et al. 2022 (arXiv 2207.14484), Sec. 3; VRAdam paper Sec. 4.1, B(beta)", (_BETA,),
    lambda v: {"lr": v["lr"], "momentum": v["beta"]}, ("momentum_buffer",),
    stated=_B, assumptions=(_QUAD, "m = beta m + (1-beta) g, w = w - eta m"),
    x_range=(0.0, 60.0)))
_model(Model(
    "nesterov", "nesterov", "Nesterov (PyTorch nesterov=True): eta*lambda < (2 + 2 beta)/(1 + 2 beta)",
    "Cohen et al. 2022 (arXiv 2207.14484), Sec. 3; torch.optim.SGD(nesterov=True)", (_BETA,),
    lambda v: {"lr": v["lr"], "momentum": v["beta"]}, ("momentum_buffer",),
    stated=lambda s: (2 + 2 * s["beta"]) / (1 + 2 * s["beta"]),
    assumptions=(_QUAD, "dampening 0, no weight decay"), x_range=(0.0, 2.5)))
_model(Model(
    "nadam", "nadam",
    "NAdam (torch, constant momentum mu = beta1): eta*lambda < 2(1+beta)/((1-beta)(1+2 beta))",
    "Dozat 2016, Alg. 2; torch.optim.NAdam; threshold derived here", (_BETA, _BETA2, _EPSP),
    lambda v: {"lr": v["lr"], "betas": (v["beta"], v["beta2"]), "eps": v["epsilon"]},
    ("exp_avg",), lambda v, step, vv: {"step": step, "exp_avg_sq": vv, "mu_product": 0},
    preconditioned=True, stated=None, extra=("nadam_psi0",),
    assumptions=(_QUAD, _FROZEN, _LATE + "; the schedule mu_t = beta1 (1 - 0.96^(t psi)/2) "
                 "reaches its constant value beta1 (psi = momentum_decay > 0), so "
                 "prod mu_i -> 0"), x_range=(0.0, 20.0)))
_model(Model(
    "rmsprop", "rmsprop", "RMSprop: eta*lambda < 2 (+2 beta with momentum beta) on P^{-1} H",
    "Cohen et al. 2022 (arXiv 2207.14484), Sec. 3; torch.optim.RMSprop",
    (Param("beta", 0.0, "unit", (0.0, 0.99), "momentum (torch default 0)"),
     Param("alpha", 0.99, "unit", (0.9, 0.999), "second-moment decay (frozen: irrelevant)"), _EPSP),
    lambda v: {"lr": v["lr"], "momentum": v["beta"], "alpha": v["alpha"], "eps": v["epsilon"]},
    ("momentum_buffer",), lambda v, step, vv: {"step": step, "square_avg": vv},
    preconditioned=True, stated=lambda s: 2 + 2 * s["beta"],
    assumptions=(_QUAD, _FROZEN, "centered=False, no weight decay"), x_range=(0.0, 5.0)))
_model(Model(
    "adam", "adam", "Adam: eta*lambda < (2 + 2 beta1)/(1 - beta1) on P^{-1} H (38 at beta1 = 0.9)",
    "Cohen et al. 2022 (arXiv 2207.14484), Sec. 3 (adaptive edge of stability, 38/eta)",
    (_BETA, _BETA2, _EPSP),
    lambda v: {"lr": v["lr"], "betas": (v["beta"], v["beta2"]), "eps": v["epsilon"]},
    ("exp_avg",), _late_adam_state, preconditioned=True, stated=_B,
    assumptions=(_QUAD, _FROZEN, _LATE, "no weight decay"), x_range=(0.0, 60.0)))


_GATE = Param("G", 0.0, "nonneg", (0.0, 10.0),
              "frozen gate min(beta3 ||v||^2, alpha1); 0 at the minimum (v = 0)")
_model(Model(
    "vradam", "vradam",
    "VRAdam: the gate raises the threshold on alpha0*lambda to B(beta1)(1 + min(beta3 ||v||^2, alpha1))",
    "Vaidhyanathan et al., VRAdam (arXiv 2505.13196), Sec. 4 (Thm 4.1, gated EoS threshold)",
    (_BETA, _BETA2, Param("beta3", 1.0, "nonneg", (0.0, 10.0), "velocity penalty"),
     Param("alpha1", 10.0, "nonneg", (0.0, 30.0), "gate cap"), _EPSP, _GATE),
    lambda v: {"lr": v["lr"], "betas": (v["beta"], v["beta2"]), "beta3": v["beta3"],
               "alpha1": v["alpha1"], "eps": v["epsilon"]},
    ("exp_avg",), _late_adam_state, preconditioned=True, gate=True,
    stated=lambda s: _B(s) * (1 + s["G"]),
    assumptions=(_QUAD, _FROZEN, _LATE, "gate frozen at G = min(beta3 ||v||^2, alpha1) in "
                 "[0, alpha1] while w and v move (the switched system of Thm 4.1); G = 0 at the "
                 "minimum", "global norm over one tensor; gate on the velocity (paper, code)",
                 "no weight decay"),
    x_range=(0.0, 500.0), extra=("vradam_saturation",),
    display_subs=lambda s: {s["G"]: sp.Min(s["beta3"] * sp.Symbol("||v||") ** 2, s["alpha1"])}))
_model(Model(
    "tam", "tam",
    "TAM: fixed damping d gives eta*lambda < (2 + 2 beta)/(d + eps); an oscillation drives the "
    "cosine to -1 and d to 0",
    "Malviya et al., TAM (arXiv 2412.18790), Sec. 3; threshold and cosine analysis derived here",
    (_BETA, Param("d", 1.0, "unit_right", (0.05, 1.0), "fixed damping (1 + s_hat)/2"),
     Param("gamma", 0.9, "unit", (0.0, 0.99), "decay of the cosine average (running mode)"),
     Param("epsilon", 1e-8, "nonneg", (0.0, 1e-3), "added to the damping")),
    lambda v: {"lr": v["lr"], "momentum": v["beta"], "decay": 1, "eps": v["epsilon"]},
    ("momentum_buffer",), lambda v, step, vv: {"s_hat": 2 * v["d"] - 1},
    stated=lambda s: (2 + 2 * s["beta"]) / (s["d"] + s["epsilon"]),
    assumptions=(_QUAD, "fixed damping: decay gamma = 1 and s_hat = 2d - 1, d in (0, 1]",
                 "cosine over the one tensor, m_0 = 0", "no weight decay"),
    x_range=(0.0, 40.0), extra=("tam_cosine",),
    running_hyper=lambda v: {"lr": v["lr"], "momentum": v["beta"], "decay": v["gamma"],
                             "eps": v["epsilon"]},
    running_state=lambda v, step, vv: {}))


