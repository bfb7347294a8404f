"""Edge-of-stability thresholds and regions for every optimizer (claims ``stability.*``).

For each optimizer the rule of :mod:`theory.rules` is linearised on
``f(w) = lam w^2 / 2`` (:mod:`theory.linearize`), the characteristic polynomial
of the iteration matrix goes through the Schur test of :mod:`theory.schur`, and
the conditions are solved for ``h = eta * lam`` (``lam`` an eigenvalue of ``H``;
for adaptive methods of ``P^{-1} H`` with the preconditioner ``P`` frozen).

Every condition is classified on the hyperparameter domain (``beta`` in [0, 1),
``d`` in (0, 1], ``epsilon, G >= 0``) by a *positivity certificate*: after the
substitutions ``beta = u/(1+u)``, ``d = 1/(1+u)`` (``u >= 0``), the numerator and
denominator are polynomials in nonnegative variables whose coefficients all
have one sign and whose constant term is nonzero -- sign-definite on the whole
domain.  A linear condition ``a h + b > 0`` is then one of: ``h > 0`` (``b = 0``,
``a > 0``), always true for ``h >= 0`` (``a >= 0``, ``b > 0``), or an upper bound
``h < -b/a`` (``a < 0 < b``).  The threshold is that upper bound; the claim is
*proved* when every classification is certified and sympy reduces (stated
closed form) - (derived bound) to zero.

Sources: Cohen et al., "Adaptive Gradient Methods at the Edge of Stability",
arXiv 2207.14484, Sec. 3 (frozen preconditioner, 38/eta); Cohen et al. ICLR 2021
(2/eta); Vaidhyanathan et al., VRAdam, arXiv 2505.13196, Sec. 4 (gated threshold);
Malviya et al., TAM, arXiv 2412.18790, Sec. 3 (damped momentum).
"""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np
import sympy as sp

from momentumlab.theory.claims import Claim, Derivation, Step, is_zero, register
from momentumlab.theory.linearize import (MU, T, Freeze, characteristic_polynomial, linearize, min_node,
                              one_step, sqrt_containing)
from momentumlab.theory.rules import RULES, get_rule
from momentumlab.theory.schur import labelled_conditions

__all__ = ["Param", "Model", "MODELS", "get_model", "Analysis", "analyse", "analyse_model", "H",
           "sqrt_only_on_second_moment", "display_form",
           "positivity_certificate", "classify_condition"]

#: ``h = eta * lam``: the x axis of every region (``lam`` preconditioned for adaptive rules).
H = sp.Symbol("eta_lambda", positive=True)
_LAMT = sp.Symbol("lambda_t", positive=True)  # the (preconditioned) curvature
_P = sp.Symbol("P", positive=True)  # the frozen preconditioner sqrt(v_hat)
_V = sp.Symbol("V", positive=True)  # the frozen second moment
_EPS = sp.Symbol("epsilon", nonnegative=True)

# ------------------------------------------------------------------ models
_DOMAINS = {
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
    _add_late_models()
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
_B = lambda s: 2 * (1 + s["beta"]) / (1 - s["beta"])  # noqa: E731  B(beta), VRAdam paper Sec. 4


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


def _add_late_models() -> None:
    """VRAdam and TAM models (their rules were added to :mod:`theory.rules` later)."""
    if "vradam" in RULES and "vradam" not in MODELS:
        _model(_VRADAM)
    if "tam" in RULES and "tam" not in MODELS:
        _model(_TAM)


_GATE = Param("G", 0.0, "nonneg", (0.0, 10.0),
              "frozen gate min(beta3 ||v||^2, alpha1); 0 at the minimum (v = 0)")
_VRADAM = Model(
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
    display_subs=lambda s: {s["G"]: sp.Min(s["beta3"] * sp.Symbol("||v||") ** 2, s["alpha1"])})
_TAM = Model(
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
    running_state=lambda v, step, vv: {})


# ------------------------------------------------------------------ certificates
def _domain_substitution(model: Model) -> tuple[dict, list[sp.Symbol]]:
    """Map each parameter to an expression in nonnegative variables covering its domain."""
    subs, variables = {}, []
    for p in model.params:
        u = sp.Symbol(f"u_{p.name}", nonnegative=True)
        if p.domain == "unit":
            subs[p.symbol] = u / (1 + u)
        elif p.domain == "unit_right":
            subs[p.symbol] = 1 / (1 + u)
        else:
            subs[p.symbol] = u
        variables.append(u)
    return subs, variables


def positivity_certificate(expr, variables, strict: bool = True, positive=()) -> bool:
    """True when ``expr`` (rational in nonnegative ``variables``) is sign-definite positive.

    Numerator and denominator, expanded as polynomials in ``variables``, must
    each have numeric coefficients of one sign, the same sign for both, and --
    for ``strict`` -- a monomial in the strictly positive variables ``positive``
    alone (the constant term counts): then ``expr > 0`` (``>= 0`` when not
    ``strict``) wherever ``variables >= 0`` and ``positive > 0``.
    """
    variables = list(variables) + [p for p in positive if p not in variables]
    pos = [variables.index(p) for p in positive]
    num, den = sp.fraction(sp.together(sp.expand(expr)))
    signs = []
    for part, need in ((num, strict), (den, True)):
        part = sp.expand(part)
        if part == 0:
            return False
        terms = sp.Poly(part, *variables).terms() if variables else [((), part)]
        if not all(c.is_number for _, c in terms):
            return False
        s = {bool(c > 0) for _, c in terms if c != 0}
        if len(s) != 1:
            return False
        only_pos = any(all(e == 0 or i in pos for i, e in enumerate(m)) for m, _ in terms)
        if need and not only_pos:
            return False
        signs.append(s.pop())
    return signs[0] == signs[1]


@dataclass(frozen=True)
class Role:
    """How one Schur condition constrains ``h`` on the domain."""

    kind: str  # "lower" (h > 0), "always", "upper", "domain", "unknown"
    bound: sp.Expr | None
    certified: bool
    text: str


def classify_condition(c: sp.Expr, subs: dict, variables) -> Role:
    """Classify ``c > 0`` (linear in ``h``) on the domain; see the module docstring."""
    c = sp.expand(c)
    dom = lambda e, strict=True: positivity_certificate(sp.sympify(e).subs(subs), variables, strict)  # noqa: E731
    if not c.has(H):
        ok = dom(c)
        return Role("domain", None, ok, "independent of eta*lambda; > 0 on the whole domain"
                    if ok else "independent of eta*lambda; sign not certified")
    poly = sp.Poly(c, H)
    if poly.degree() != 1:
        return Role("unknown", None, False, f"degree {poly.degree()} in eta*lambda: not classified")
    a, b = poly.all_coeffs()
    if is_zero(b):
        ok = dom(a)
        return Role("lower", sp.Integer(0), ok, "= a*eta_lambda with a > 0: holds iff eta*lambda > 0")
    if dom(b) and (dom(a, strict=False) or is_zero(a)):
        return Role("always", None, True, "a >= 0 and b > 0: holds for every eta*lambda >= 0")
    if dom(-a) and dom(b):
        bound = sp.factor(sp.cancel(-b / a))
        return Role("upper", bound, True, f"a < 0 < b: holds iff eta*lambda < {sp.sstr(bound)}")
    return Role("unknown", None, False, "sign of the coefficients not certified")


def display_form(expr, point: Mapping) -> sp.Expr:
    """``expr`` as an unevaluated fraction whose factors are positive at ``point``.

    Display only (``(2*beta + 2)/(1 - beta)`` rather than sympy's
    ``-2*(beta + 1)/(beta - 1)``); equal to ``expr``.
    """
    n, d = sp.fraction(sp.factor(expr))
    point = {**{s: 1 for s in sp.sympify(expr).free_symbols}, **point}
    sign = 1

    def parts(x):
        nonlocal sign
        out = []
        for f in sp.Mul.make_args(x):
            base, ex = f.as_base_exp()
            if f.is_Number:
                sign *= 1 if f > 0 else -1
                f = abs(f)
            elif base.is_Add and ex.is_integer and base.subs(point) < 0:
                base = sp.expand(-base)
                sign *= (-1) ** ex
                f = base**ex
            out.append(f)
        return sp.Mul(*out)

    num, den = parts(n), parts(d)
    out = num if den == 1 else sp.Mul(num, sp.Pow(den, -1, evaluate=False), evaluate=False)
    return out if sign > 0 else sp.Mul(-1, out, evaluate=False)


# ------------------------------------------------------------------ analysis
@dataclass
class Analysis:
    """Everything derived for one model (cached per process by :func:`analyse`)."""

    model: Model
    matrix: sp.Matrix
    charpoly: sp.Expr
    conditions: list  # list[theory.schur.Condition] in (H, params)
    roles: list
    threshold: sp.Expr | None
    steps: list = field(default_factory=list)
    proved: bool = False

    def derivation(self) -> Derivation:
        steps = list(self.steps)
        if not self.proved:
            steps.append(Step("some Schur-Cohn condition was not closed by sympy", proved=False))
        return Derivation.from_steps(self.threshold_display, steps)

    @property
    def threshold_display(self):
        """The threshold as a readable (unevaluated, equal) expression, or None."""
        if self.threshold is None:
            return None
        out = display_form(self.threshold, {p.symbol: p.default for p in self.model.params})
        if self.model.display_subs is not None:
            out = out.xreplace(self.model.display_subs(self.model.symbols()))
        return out

    def condition_strings(self) -> list[str]:
        return [str(c) for c in self.conditions]

    # ---- numbers
    @functools.cached_property
    def _cond_fns(self):
        args = [H] + [p.symbol for p in self.model.params]
        return [sp.lambdify(args, c.expr, "numpy") for c in self.conditions]

    def _args(self, h, params):
        vals = {**self.model.defaults(), **(params or {})}
        return [h] + [vals[p.name] for p in self.model.params]

    def stable(self, h, params=None) -> np.ndarray:
        """Boolean array: every Schur condition > 0 at ``h`` (numpy broadcasting)."""
        args = self._args(np.asarray(h, dtype=float), params)
        out = np.ones(np.broadcast(*[np.asarray(a) for a in args]).shape, dtype=bool)
        for fn in self._cond_fns:
            out &= np.asarray(fn(*args)) > 0
        return out

    @functools.cached_property
    def _coef_fns(self):
        args = [H] + [p.symbol for p in self.model.params]
        coeffs = sp.Poly(self.charpoly, MU).all_coeffs()
        return [sp.lambdify(args, c, "numpy") for c in coeffs]

    def spectral_radius(self, h, params=None) -> np.ndarray:
        """``max |mu|`` over the roots of the characteristic polynomial (vectorised)."""
        args = self._args(np.asarray(h, dtype=float), params)
        shape = np.broadcast(*[np.asarray(a) for a in args]).shape
        coeffs = [np.broadcast_to(np.asarray(f(*args), dtype=float), shape) for f in self._coef_fns]
        n = len(coeffs) - 1
        if n == 1:
            return np.abs(-coeffs[1] / coeffs[0])
        comp = np.zeros(shape + (n, n))
        for k in range(n):
            comp[..., 0, k] = -coeffs[k + 1] / coeffs[0]
        for k in range(1, n):
            comp[..., k, k - 1] = 1.0
        return np.abs(np.linalg.eigvals(comp)).max(axis=-1)

    def threshold_value(self, params=None) -> float | None:
        if self.threshold is None:
            return None
        vals = {**self.model.defaults(), **(params or {})}
        return float(self.threshold.subs({p.symbol: vals[p.name] for p in self.model.params}))


def _one_step(model: Model, freeze: bool = True, late: bool = True):
    rule = get_rule(model.rule)
    eta = sp.Symbol("eta", positive=True)
    v = {"lr": eta, **model.symbols()}
    lam = _LAMT * (_P + _EPS) if model.preconditioned else _LAMT
    if model.preconditioned:
        v["epsilon"] = _EPS
    hyper = rule.hyper(**model.hyper(v))
    step = one_step(rule, hyper, lam, dynamic=model.dynamic, fixed_state=model.state(v, T, _V),
                    freeze=model.freezes() if freeze else (), late=late)
    return step, eta


def sqrt_only_on_second_moment(model: Model) -> bool:
    """Every ``ops.sqrt`` of the rule (a ``Pow(., 1/2)``) acts on an expression containing ``v``.

    Then replacing ``ops.sqrt`` by a constant (:func:`theory.ops.frozen_sqrt`, used
    by the sweeps) freezes exactly the preconditioner ``sqrt(v_hat)``.
    """
    step, _ = _one_step(model, freeze=False, late=False)
    roots = [e for img in step.images for e in sp.preorder_traversal(img)
             if isinstance(e, sp.Pow) and e.exp == sp.Rational(1, 2)]
    return bool(roots) and all(r.base.has(_V) for r in roots)


def _linear_steps(model: Model):
    """Rule -> map -> matrix in (h, params) -> characteristic polynomial, with steps."""
    step, eta = _one_step(model)
    lin = linearize(step)
    steps = []
    if model.preconditioned:
        steps.append(Step("every ops.sqrt in the rule acts on the second moment v, so holding "
                          "sqrt(v_hat) at P freezes exactly the preconditioner",
                          None, sqrt_only_on_second_moment(model)))
    steps.append(Step(f"rules.{model.rule} run once on sympy symbols, f = lambda w^2/2, state "
                      f"z = {step.names}" + (" (second moment frozen, late time)"
                                             if model.preconditioned else ""),
                      sp.Matrix(step.images)))
    steps.append(Step("the map is linear in z: F(z) - A z = 0 (A = Jacobian at z = 0)",
                      sp.Matrix(lin.residual), lin.linear))
    A = lin.matrix.subs(eta, H / _LAMT)
    A = A.applyfunc(lambda e: sp.nsimplify(sp.simplify(e), rational=True))
    steps.append(Step("iteration matrix A with eta = eta_lambda / lambda", A))
    p = sp.collect(sp.expand(sp.nsimplify(characteristic_polynomial(A), rational=True)), MU)
    if model.preconditioned:
        free = p - p.subs({_P: 1, _EPS: 0})
        steps.append(Step("with lambda = lambda_t (P + epsilon) the characteristic polynomial "
                          "depends on P, epsilon only through eta*lambda_t", free, is_zero(free)))
    lam_free = p - p.subs(_LAMT, 1)
    steps.append(Step("det(mu I - A) depends on eta and lambda only through eta*lambda",
                      lam_free, is_zero(lam_free)))
    coeffs = sp.Poly(p.subs(_LAMT, 1), MU).all_coeffs()
    p = sum(sp.factor(sp.cancel(c)) * MU**k for k, c in enumerate(reversed(coeffs)))
    steps.append(Step("characteristic polynomial p(mu) = det(mu I - A)", p))
    return A.subs(_LAMT, 1), p, steps


def _region_steps(model: Model, conds):
    subs, variables = _domain_substitution(model)
    dom = ", ".join(f"{p.name} in {_DOMAINS[p.domain]}" for p in model.params) or "no parameters"
    steps = [Step(f"Schur conditions (bilinear map + Lienard-Chipart), all must be > 0; "
                  f"region = their conjunction", sp.And(*[c.expr > 0 for c in conds]))]
    roles = []
    for c in conds:
        role = classify_condition(c.expr, subs, variables)
        roles.append(role)
        steps.append(Step(f"[{c.label}] {sp.sstr(c.expr)} > 0 on {dom}: {role.text}",
                          c.expr, role.certified))
    uppers = [r.bound for r in roles if r.kind == "upper"]
    threshold = None
    if len(uppers) == 1:
        threshold = uppers[0]
    elif uppers:  # keep the smallest when a certificate orders them
        for cand in uppers:
            if all(positivity_certificate((o - cand).subs(subs), variables, strict=False)
                   for o in uppers):
                threshold = cand
                steps.append(Step(f"{sp.sstr(cand)} is the smallest upper bound", None, True))
                break
    ok = all(r.certified for r in roles) and any(r.kind == "lower" for r in roles) and \
        threshold is not None
    return roles, threshold, steps, ok


@functools.lru_cache(maxsize=None)
def analyse(name: str) -> Analysis:
    """Linearise, Schur-test and solve model ``name``; the steps become its derivation."""
    return analyse_model(get_model(name))


def analyse_model(model: Model) -> Analysis:
    """:func:`analyse` for a :class:`Model` object (not cached)."""
    A, p, steps = _linear_steps(model)
    conds = labelled_conditions(p, MU)
    roles, threshold, region_steps, ok = _region_steps(model, conds)
    steps += region_steps
    if threshold is not None:
        steps.append(Step(f"stable region: 0 < eta*lambda < {sp.sstr(threshold)}",
                          sp.And(H > 0, H < threshold)))
        at = sp.simplify(p.subs(MU, -1).subs(H, threshold))
        steps.append(Step("at the threshold a root sits at mu = -1: p(-1) = 0 (period-2 onset)",
                          at, is_zero(at)))
        if model.stated is not None:
            diff = sp.simplify(threshold - model.stated(model.symbols()))
            steps.append(Step(f"equals the stated closed form {sp.sstr(model.stated(model.symbols()))}",
                              diff, is_zero(diff)))
    an = Analysis(model, A, p, conds, roles, threshold, steps, ok)
    for extra in model.extra:
        _EXTRAS[extra](an)
    return an


_EXTRAS: dict[str, Callable[[Analysis], None]] = {}


def _nadam_psi0(an: Analysis) -> None:
    """NAdam with momentum_decay = 0: torch's mu is then beta1/2 at every step."""
    model = an.model
    sub = analyse_model(dataclasses.replace(
        model, hyper=lambda v: {**model.hyper(v), "momentum_decay": 0}, extra=()))
    an.steps.append(Step("aside (not part of the claim): with momentum_decay = 0 torch's mu_t is "
                         "beta1/2 at every step and the same analysis gives eta*lambda < "
                         f"{sp.sstr(sub.threshold)}", sub.threshold))


_EXTRAS["nadam_psi0"] = _nadam_psi0


def _vradam_saturation(an: Analysis) -> None:
    """Once alpha0*lambda > B(1 + alpha1) no gate value in [0, alpha1] gives a stable map."""
    sy = an.model.symbols()
    G, a1 = sy["G"], sy["alpha1"]
    subs, variables = _domain_substitution(an.model)
    r, sig = sp.Symbol("r", nonnegative=True), sp.Symbol("sigma", positive=True)
    cap = sp.factor(_B(sy) * (1 + a1))
    below = (cap - an.threshold).subs(a1, G + r)
    an.steps.append(Step("the gate is capped, 0 <= G <= alpha1 (alpha1 = G + r, r >= 0): the "
                         f"threshold B(beta)(1 + G) <= B(beta)(1 + alpha1) = {sp.sstr(cap)}",
                         sp.factor(below), positivity_certificate(below.subs(subs),
                                                                  variables + [r], strict=False)))
    minus = sp.factor(-an.charpoly.subs(MU, -1).subs(H, cap + sig).subs(a1, G + r))
    an.steps.append(Step("for alpha0*lambda = B(beta)(1 + alpha1) + sigma, sigma > 0: -p_G(-1) > 0 "
                         "for every frozen gate G in [0, alpha1] -- each frozen map has a real "
                         "root below -1; no gate value restores stability (bounded motion needs "
                         "the nonlinear gate: checked by simulation)", minus,
                         positivity_certificate(minus.subs(subs), variables + [r], positive=(sig,))))
    at0 = sp.factor(an.threshold.subs(G, 0))
    an.steps.append(Step("at the minimum v = 0, so G = 0: the fixed point is stable iff "
                         f"alpha0*lambda < {sp.sstr(at0)} = B(beta1), as for Adam", at0))


def _tam_cosine(an: Analysis) -> None:
    """In an oscillating mode of the fixed-d map the gradient opposes the momentum."""
    sy = an.model.symbols()
    beta, d, eps = sy["beta"], sy["d"], sy["epsilon"]
    A = an.matrix  # state (w_t, m_{t-1}), lambda = 1 (g = w)
    mu = sp.Symbol("mu", negative=True)
    W = sp.Symbol("W", real=True, nonzero=True)
    M = A[1, 0] * W / (mu - A[1, 1])
    rel = sp.simplify((mu - beta) * M * W - (d + eps) * W**2)
    an.steps.append(Step("eigenmode w_t = mu^t W, m_{t-1} = mu^t M of the fixed-d map: the momentum "
                         "row gives mu M = beta M + (d + eps) W, so (mu - beta) m_{t-1} g_t = "
                         "(d + eps) lambda w_t^2 mu^(2t)", rel, is_zero(rel)))
    bn, dp = sp.Symbol("beta", nonnegative=True), sp.Symbol("d", positive=True)
    sign = sp.Lt(mu - bn, 0)
    an.steps.append(Step("an oscillating mode has mu < 0 <= beta (the mu = -1 crossing that ends "
                         "the stable region included), so m_{t-1} g_t < 0: cos(m_{t-1}, g_t) = -1 "
                         "in one dimension -- the gradient opposes the momentum", sign,
                         sp.simplify(sign) is sp.true))
    k, gam, s0 = sp.Symbol("k", integer=True, nonnegative=True), sp.Symbol("gamma"), sp.Symbol("s_0")
    s_k = -1 + gam**k * (s0 + 1)
    rec = sp.simplify(s_k.subs(k, k + 1) - (gam * s_k + (1 - gam) * (-1)))
    an.steps.append(Step("with S_t = -1 the average s_hat_k = -1 + gamma^k (s_hat_0 + 1) solves "
                         "s_hat_{k+1} = gamma s_hat_k - (1 - gamma): s_hat -> -1 and "
                         "d_k = (1 + s_hat_k)/2 = gamma^k d_0 -> 0", rec, is_zero(rec)))
    lim = sp.limit(an.threshold.subs(d, dp), dp, 0, "+")
    an.steps.append(Step("so the damping switches the gradient off during a period-2 oscillation: "
                         f"the fixed-d threshold rises to {sp.sstr(lim)} as d -> 0.  Started on the "
                         "unstable mode with s_hat_0 = 1 at eta*lambda = f (2 + 2 beta)/(1 + eps), "
                         "the growth lasts while eta*lambda (gamma^t + eps) > 2 + 2 beta, about "
                         "ln f / ln(1/gamma) steps; what the motion does afterwards (settles, or a "
                         "large catapult diverges) is measured by simulation", lim))


_EXTRAS["vradam_saturation"] = _vradam_saturation
_EXTRAS["tam_cosine"] = _tam_cosine

# ------------------------------------------------------------------ claims

_LATEX = {
    "gd": "2", "heavy_ball": r"2+2\beta", "ema_momentum": r"\frac{2+2\beta}{1-\beta}",
    "nesterov": r"\frac{2+2\beta}{1+2\beta}", "nadam": r"\frac{2(1+\beta_1)}{(1-\beta_1)(1+2\beta_1)}",
    "rmsprop": r"2+2\beta\ (=2\ \text{without momentum})", "adam": r"\frac{2+2\beta_1}{1-\beta_1}",
    "vradam": r"B(\beta_1)\,(1+\min(\beta_3\|v\|^2,\alpha_1)),\ B(\beta)=\frac{2+2\beta}{1-\beta}",
    "tam": r"\frac{2+2\beta}{d+\epsilon}",
}


def _predict(name: str):
    def predict(**params):
        return analyse(name).threshold_value(params)
    return predict


def _register_claim(name: str) -> Claim:
    model = get_model(name)
    lam = r"\lambda(P^{-1}H)" if model.preconditioned else r"\lambda"
    statement = (rf"\text{{{model.rule}}}\ \text{{on}}\ f=\tfrac{{{lam}}}{{2}}w^2:\ "
                 rf"\rho(A)<1\iff 0<\eta{lam}<{_LATEX.get(name, '?')}")
    return register(Claim(
        id=f"stability.{name}", title=model.title, source=model.source, statement=statement,
        assumptions=model.assumptions + (
            "hyperparameter domain: " + (", ".join(f"{p.name} in {_DOMAINS[p.domain]}"
                                                   for p in model.params) or "none"),),
        derive_fn=lambda: analyse(name).derivation(), predict_fn=_predict(name)))


_add_late_models()
for _name in MODELS:
    _register_claim(_name)
