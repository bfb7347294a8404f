"""Analyze any update rule: its linearised stability on ``f(w) = lam w^2/2``, from the rule itself.

``analyze(rule)`` takes a :class:`theory.rules.Rule` -- the project's or one a user wrote in
their own file (:func:`load_rule` reads ``path/to/file.py:NAME``) -- and derives, without a
hand-written model:

1. **the one-step map.**  ``init`` and one ``step`` on sympy symbols reveal the state: an
   entry whose value after a step depends on ``w`` is *dynamic* (a buffer, a tuple of
   buffers); an integer entry that grows by one is the step counter, set to the late-time
   symbol ``T`` (powers ``beta^T -> 0``: bias corrections 1); any other number must settle to
   the fixed point of its own recursion (else: refusal, "the state does not settle").
2. **what is frozen** (each an assumption of the report): a square root whose argument holds
   a dynamic entry other than ``w`` -- the preconditioner ``sqrt(v_hat)`` -- is held at
   ``P`` (Cohen et al. 2022, arXiv 2207.14484, Sec. 3, "frozen Adam"); an entry that then no
   longer reaches ``w`` (the second moment itself) leaves the state.  The curvature becomes
   the preconditioned ``lam_t = lam / D`` (``D = P + eps``, read off the update).
3. **non-smooth nodes.**  ``Min``/``Max``/``Abs``/``ops.where``: when the branch taken at the
   fixed point is strict, the node equals that branch near it (exact, no assumption); when
   the fixed point sits on the switch -- Lion's ``sign(c)`` with ``c = 0``, a square root of a
   quantity that vanishes there (a normalised step) -- the map has no Jacobian: **refusal**.
4. **the iteration matrix** ``A`` (:func:`theory.linearize.linearize`), ``p(mu) = det(mu I -
   A)`` in ``h = eta lam`` (:data:`theory.stability.H`), and the Schur conditions of
   :func:`theory.schur.labelled_conditions`, each labelled by the crossing it guards.
5. **the threshold on ``h``.**  Each condition is classified on the parameter domain by the
   positivity certificates of :mod:`theory.stability`; when all are certified the smallest
   upper bound is the closed form, status ``proved``.  Otherwise the root of the ``mu = -1``
   (or ``+1``) condition is a candidate, kept as ``derived`` when it coincides with the
   numerically traced boundary (a check at sample values is never a proof), else only the
   traced curve is reported.
6. **the rod-flow flip threshold** ``det(I + A) = 0`` (the ``mu = -1`` crossing:
   ``det(I + A) = (-1)^n p(-1)``, checked by sympy) and the predicted edge-of-stability
   sharpness ``S = threshold / eta`` (of ``P^{-1} H`` when a preconditioner is frozen).

Hyperparameters: ``lr`` is ``eta``; by default every float hyperparameter in ``[1e-3, 1)``
(momenta, dampening, ``nu``; tuple entries one by one) stays a symbol on ``[0, 1)`` and the
others keep their values (``eps``, zero weight decay, switches).  ``symbolic=`` overrides.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import sympy as sp

from momentumlab.theory.claims import Derivation, Step, is_zero
from momentumlab.theory.linearize import MU, T, OneStep, characteristic_polynomial, linearize
from momentumlab.theory.ops import SYMPY_SCALAR
from momentumlab.theory.rules import RULES, Rule
from momentumlab.theory.schur import labelled_conditions
from momentumlab.theory.stability_analysis import Analysis
from momentumlab.theory.stability_certificates import Role, classify_condition, positivity_certificate
from momentumlab.theory.stability_display import display_form
from momentumlab.theory.stability_models import H, Model, Param

__all__ = ["NotAnalyzable", "Binding", "RuleAnalysis", "analyze", "load_rule", "default_symbolic", "bind",
           "SYMBOLIC_RANGE"]

#: float hyperparameters in this range stay symbolic by default (momenta, dampening, nu)
SYMBOLIC_RANGE = (1e-3, 1.0)
_ETA = sp.Symbol("eta", positive=True)
_LAM = sp.Symbol("lambda", positive=True)
_LAMT = sp.Symbol("lambda_t", positive=True)  # the (preconditioned) curvature
_P = sp.Symbol("P", positive=True)  # a frozen preconditioner sqrt(v_hat)
_CERT_OPS = 20  # differences of bounds larger than this (sympy count_ops) are not certified
_SAMPLES = 64  # parameter points at which a candidate closed form is compared with the boundary


class NotAnalyzable(ValueError):
    """The rule has no linearisation at the minimum; ``reason`` says why (one line)."""

    def __init__(self, rule: str, reason: str):
        super().__init__(f"{rule}: not analyzable: {reason}")
        self.rule, self.reason = rule, reason


# ------------------------------------------------------------------ loading a user's rule
def load_rule(spec: str) -> Rule:
    """``"path/to/file.py:NAME"`` -> the :class:`Rule` ``NAME`` of that file; a bare name is a
    rule of :mod:`theory.rules`.  Raises ``ValueError`` with a one-line reason."""
    if ":" not in spec or not spec.split(":")[0].endswith(".py"):
        if spec in RULES:
            return RULES[spec]
        raise ValueError(f"rule must be FILE.py:NAME or a shipped rule ({', '.join(sorted(RULES))}), "
                         f"got {spec!r}")
    path, _, name = spec.rpartition(":")
    file = Path(path)
    if not file.is_file():
        raise ValueError(f"rule file {path!r} does not exist")
    mod_name = f"_momentumlab_user_rule_{abs(hash(str(file.resolve())))}"
    module = sys.modules.get(mod_name)
    if module is None:
        loader = importlib.util.spec_from_file_location(mod_name, file)
        module = importlib.util.module_from_spec(loader)
        sys.modules[mod_name] = module
        loader.loader.exec_module(module)
    obj = getattr(module, name, None)
    if not isinstance(obj, Rule):
        raise ValueError(f"{path} has no Rule named {name!r} (found: "
                         f"{', '.join(k for k, v in vars(module).items() if isinstance(v, Rule)) or 'none'})")
    return obj


# ------------------------------------------------------------------ hyperparameters
@dataclass(frozen=True)
class Binding:
    """A symbolic parameter: its name, the hyperparameter key and tuple index it stands for."""

    name: str
    key: str
    index: int | None
    value: float

    @property
    def symbol(self) -> sp.Symbol:
        return Param(self.name, self.value).symbol


def _momentum_like(v) -> bool:
    return isinstance(v, float) and SYMBOLIC_RANGE[0] <= v < SYMBOLIC_RANGE[1]


def default_symbolic(values: Mapping[str, Any]) -> list[str]:
    """Names of the hyperparameters kept symbolic by default (see the module docstring)."""
    out = []
    for key, v in values.items():
        if key == "lr":
            continue
        if isinstance(v, tuple):
            out += [_elem_name(key, i) for i, e in enumerate(v) if _momentum_like(e)]
        elif _momentum_like(v):
            out.append(key)
    return out


def _elem_name(key: str, i: int) -> str:
    return f"{key[:-1] if key.endswith('s') else key}{i + 1}"


def _bindings(values: Mapping[str, Any], symbolic: Sequence[str]) -> list[Binding]:
    known = {}
    for key, v in values.items():
        if isinstance(v, tuple):
            known.update({_elem_name(key, i): (key, i, e) for i, e in enumerate(v)})
        else:
            known[key] = (key, None, v)
    out = []
    for name in symbolic:
        if name not in known or name == "lr":
            raise ValueError(f"symbolic parameter {name!r} is not a numeric hyperparameter; "
                             f"known: {', '.join(k for k in known if k != 'lr')}")
        key, i, v = known[name]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < 1:
            raise ValueError(f"symbolic parameter {name!r} must have a value in [0, 1), got {v!r}")
        out.append(Binding(name, key, i, float(v)))
    return out


def bind(values: Mapping[str, Any], bindings: Sequence[Binding], assign: Mapping[str, Any]) -> dict:
    """``values`` with each binding's slot set to ``assign[name]`` (a symbol, number or array)."""
    out = dict(values)
    for b in bindings:
        if b.name not in assign:
            continue
        if b.index is None:
            out[b.key] = assign[b.name]
        else:
            t = list(out[b.key])
            t[b.index] = assign[b.name]
            out[b.key] = tuple(t)
    return out


# ------------------------------------------------------------------ the report
@dataclass
class RuleAnalysis:
    """What :func:`analyze` derives for one rule (see the module docstring)."""

    rule: Rule
    values: dict
    bindings: list
    state_names: tuple
    assumptions: list
    notes: list
    analysis: Analysis  # matrix, charpoly, conditions, stable(), spectral_radius(), derivation()
    threshold_kind: str  # "closed form" | "candidate" | "traced"
    flip: sp.Expr | None
    preconditioner: sp.Expr | None  # D in lam_t = lam / D, or None
    fixed_state: dict = field(default_factory=dict)  # state entries held at a value (simulation)
    counter: str | None = None
    frozen_sqrt: bool = False

    @property
    def matrix(self) -> sp.Matrix:
        return self.analysis.matrix

    @property
    def charpoly(self) -> sp.Expr:
        return self.analysis.charpoly

    @property
    def conditions(self) -> list:
        return self.analysis.conditions

    @property
    def threshold(self) -> sp.Expr | None:
        return self.analysis.threshold

    def derivation(self) -> Derivation:
        return Derivation.from_steps(self.analysis.threshold_display, self.analysis.steps)

    @property
    def status(self) -> str:
        """The project's status of the threshold (:data:`theory.claims.STATUSES`), or
        ``"traced numerically"`` when there is no closed form."""
        return "traced numerically" if self.threshold is None else self.derivation().status

    def point(self, **overrides) -> dict:
        """Symbolic parameter values (defaults from the rule's hyperparameters)."""
        return {**{b.name: b.value for b in self.bindings}, **overrides}

    def threshold_value(self, **overrides) -> float | None:
        return self.analysis.threshold_value(self.point(**overrides))

    def traced_threshold(self, y_name: str | None = None, ys=None, x_max: float = 1e3,
                         n: int = 4001, **overrides) -> np.ndarray:
        """Boundary ``h*(y)``: end of the first stable interval ``(0, h*)``: ``n`` scan points of
        ``(0, x_max]``, 50 bisections (in ``(0, h_1)`` if ``h_1`` is unstable; 0: none stable)."""
        ys = np.atleast_1d(np.asarray(ys if ys is not None else [0.0], dtype=float))
        params = self.point(**overrides)
        if y_name is not None:
            params[y_name] = ys[:, None]
        h = np.linspace(0, x_max, n)[1:]
        stable = np.broadcast_to(self.analysis.stable(h[None, :], params), (len(ys), len(h)))
        first_bad = np.where(~stable.all(axis=1), np.argmin(stable, axis=1), len(h))
        lo = np.where(first_bad > 0, h[np.maximum(first_bad - 1, 0)], 0.0)
        hi = np.where(first_bad < len(h), h[np.minimum(first_bad, len(h) - 1)], np.inf)
        for _ in range(50):
            mid = np.where(np.isfinite(hi), (lo + hi) / 2, lo)
            ok = np.broadcast_to(self.analysis.stable(mid[:, None], params), (len(ys), 1))[:, 0]
            lo, hi = np.where(ok, mid, lo), np.where(ok, hi, mid)
        return np.where(lo == 0, 0.0, np.where(np.isfinite(hi), (lo + hi) / 2, np.inf))

    def lr_scale(self) -> float:
        """``D`` at ``P = 1`` and the parameter values: ``lr = x D / lam`` puts a simulation with
        ``sqrt(v_hat)`` frozen at 1 at ``eta*lambda_t = x`` (1 without a preconditioner)."""
        if self.preconditioner is None:
            return 1.0
        point = {b.symbol: b.value for b in self.bindings}
        return float(self.preconditioner.subs(_P, 1).subs(point))

    def eos_sharpness(self) -> sp.Expr | None:
        """Predicted edge-of-stability (preconditioned) sharpness ``threshold / eta``."""
        return None if self.threshold is None else self.analysis.threshold_display / _ETA

    def summary(self) -> dict:
        """JSON-ready report."""
        an = self.analysis
        thr = an.threshold_display
        at = self.threshold_value()
        lr = float(self.values["lr"])
        return {
            "rule": self.rule.name,
            "source": self.rule.source,
            "hyperparameters": {k: (list(v) if isinstance(v, tuple) else v)
                                for k, v in self.values.items()},
            "symbolic": {b.name: f"{b.key}" + ("" if b.index is None else f"[{b.index}]")
                         for b in self.bindings},
            "state": list(self.state_names),
            "assumptions": list(self.assumptions),
            "notes": list(self.notes),
            "x": "eta_lambda = eta * lambda" + (" (lambda an eigenvalue of P^{-1} H, "
                                                  f"P^{{-1}} = 1/({sp.sstr(self.preconditioner)}))"
                                                  if self.preconditioner is not None else ""),
            "iteration_matrix": sp.sstr(an.matrix),
            "characteristic_polynomial": sp.sstr(an.charpoly),
            "schur_conditions": [{"condition": str(c), "crossing": c.label, "role": r.text}
                                 for c, r in zip(an.conditions, an.roles)],
            "threshold": None if thr is None else sp.sstr(thr),
            "threshold_latex": None if thr is None else sp.latex(thr),
            "threshold_kind": self.threshold_kind,
            "status": self.status,
            "threshold_at_values": at,
            "rod_flow_flip_threshold": None if self.flip is None else sp.sstr(self.flip),
            "rod_flow_flip_at_values": None if self.flip is None else
            float(self.flip.subs({b.symbol: b.value for b in self.bindings})),
            "eos_sharpness": None if thr is None else sp.sstr(self.eos_sharpness()),
            "eos_sharpness_at_values": None if at is None else at / lr,
            "derivation": [s.render() for s in an.steps],
        }


# ------------------------------------------------------------------ analysis
def _flatten(state: Mapping[str, Any]) -> dict:
    """``{(key, index or None): value}`` over a state dict (tuples entry by entry)."""
    out = {}
    for k, v in state.items():
        if isinstance(v, (tuple, list)):
            out.update({(k, i): e for i, e in enumerate(v)})
        else:
            out[(k, None)] = v
    return out


def _unflatten(flat: Mapping, like: Mapping[str, Any]) -> dict:
    out = dict(like)
    for (k, i), v in flat.items():
        if i is None:
            out[k] = v
        else:
            t = list(out[k]) if isinstance(out[k], (tuple, list)) else [None] * (i + 1)
            t += [None] * (i + 1 - len(t))
            t[i] = v
            out[k] = tuple(t)
    return out


def _label(key) -> str:
    k, i = key
    return k if i is None else f"{k}[{i}]"


def _run(rule, w, g, state, hyper):
    try:
        return rule.step(w, g, state, hyper, SYMPY_SCALAR)
    except (TypeError, ValueError, AttributeError) as exc:
        raise NotAnalyzable(rule.name, f"the rule does not run on sympy symbols ({exc})") from None


def _classify_state(rule, hyper, w, lam):
    """Dynamic entries, the step counter and settled scalar entries (see the module docstring)."""
    s0 = rule.init(w, SYMPY_SCALAR)
    w1, s1 = _run(rule, w, lam * w, s0, hyper)
    _, s2 = _run(rule, w1, lam * w1, s1, hyper)  # a difference g - g_prev is 0 after one step
    f0, f1, f2 = _flatten(s0), _flatten(s1), _flatten(s2)
    dynamic, counter, scalars = [], None, {}
    for key, v1 in f1.items():
        if v1 is None:
            continue
        v0 = f0.get(key)
        if sp.sympify(v1).has(w) or sp.sympify(f2.get(key, 0)).has(w):
            dynamic.append(key)
        elif isinstance(v0, int) and not isinstance(v0, bool) and sp.sympify(v1 - v0) == 1 \
                and _counts(rule, hyper, w, lam, s0, key):
            counter = key
        else:
            scalars[key] = v0
    return dynamic, counter, scalars, s1


def _counts(rule, hyper, w, lam, s0, key) -> bool:
    """``key`` is a step counter: its image is itself + 1 for a symbolic value (not ``b s + 1``)."""
    t = sp.Symbol("t_probe", positive=True, integer=True)
    _, s1 = _run(rule, w, lam * w, _unflatten({**_flatten(s0), key: t}, s0), hyper)
    return sp.simplify(_flatten(s1)[key] - t) == 1


def _settle_scalars(rule, hyper, w, lam, dynamic, counter, scalars, like, point):
    """Fixed point of each scalar entry's late-time recursion ``s' = c s + b`` (``|c| < 1``)."""
    if not scalars:
        return {}
    syms = {key: sp.Symbol(f"s_{_label(key)}") for key in scalars}
    flat = {key: sp.Symbol(f"z_{_label(key)}", real=True) for key in dynamic}
    if counter is not None:
        flat[counter] = T
    flat.update(syms)
    _, s1 = _run(rule, w, lam * w, _unflatten(flat, like), hyper)
    f1 = _flatten(s1)
    out = {}
    for key, s in syms.items():
        img = _late(sp.sympify(f1[key]), rule)
        c = sp.diff(img, s)
        if c.has(s) or img.free_symbols & (set(flat.values()) - {s}) - {T}:
            raise NotAnalyzable(rule.name, f"the state does not settle: {_label(key)!r} follows "
                                f"{sp.sstr(img)}, not an affine recursion in itself alone")
        cv = complex(c.subs(point))
        if not abs(cv) < 1:
            raise NotAnalyzable(rule.name, f"the state does not settle: {_label(key)!r} follows "
                                f"s' = {sp.sstr(img)} with |ds'/ds| = {abs(cv):.4g} >= 1")
        out[key] = sp.simplify((img - c * s) / (1 - c))
    return out


def _late(expr, rule):
    """Powers ``b^(..T..)`` -> 0; the counter must not survive (else: does not settle)."""
    expr = sp.sympify(expr).replace(lambda e: isinstance(e, sp.Pow) and e.exp.has(T),
                                    lambda *_: sp.Integer(0))
    if expr.has(T):
        raise NotAnalyzable(rule.name, "the state does not settle: the step counter t enters the "
                            f"map other than through powers beta^t ({sp.sstr(expr)}), so the "
                            "late-time map is not time-invariant")
    return expr


_HALF = (sp.Rational(1, 2), sp.Float(0.5), sp.Rational(-1, 2), sp.Float(-0.5))


def _is_sqrt(e) -> bool:
    """``sqrt(x)`` or ``1/sqrt(x)`` (sympy writes ``m / sqrt(x)`` with ``x**(-1/2)``)."""
    return isinstance(e, sp.Pow) and e.exp in _HALF


def _freeze_preconditioner(images, inner_syms):
    """Replace each square root holding a dynamic entry other than ``w`` by ``P``."""
    found = []

    def match(e):
        hit = _is_sqrt(e) and bool(e.base.free_symbols & inner_syms)
        if hit:
            found.append(e)
        return hit

    out = [sp.sympify(e).replace(match, lambda e: _P if e.exp > 0 else 1 / _P) for e in images]
    return out, found


def _resolve_nonsmooth(images, zero, point, rule_name):
    """Replace non-smooth nodes by the branch active at the fixed point, or refuse."""
    notes = []

    def at0(e):
        v = sp.sympify(e).subs(zero).subs(point)
        v = sp.simplify(v)
        return v

    def where_jump(e):
        for cond_expr, cond in e.args:
            if cond is sp.true or cond is True:
                continue
            if isinstance(cond, sp.core.relational.Relational):
                gap = at0(cond.lhs - cond.rhs)
                if gap == 0 and (cond.lhs - cond.rhs).has(*zero):
                    return cond
        return None

    def resolve(e):
        if isinstance(e, sp.Piecewise):
            cond = where_jump(e)
            if cond is not None:
                raise NotAnalyzable(rule_name, "not differentiable at the fixed point: a step "
                                    f"function (ops.where) switches on {sp.sstr(cond)}, whose two "
                                    "sides are equal at w = 0 with the state at 0 -- e.g. a "
                                    "sign-based update (Lion): the update jumps there and has no "
                                    "Jacobian")
            for val, cond in e.args:
                c = sp.sympify(cond).subs(zero).subs(point)
                if c is sp.true:
                    notes.append(f"ops.where: the branch taken at the fixed point is {sp.sstr(val)} "
                                 "(condition strict there, so the node equals it nearby)")
                    return val
            raise NotAnalyzable(rule_name, f"cannot decide which branch of {sp.sstr(e)} holds at "
                                "the fixed point")
        if isinstance(e, (sp.Abs, sp.sign)):
            x = e.args[0]
            x0 = at0(x)
            if x0 == 0 and x.has(*zero):
                raise NotAnalyzable(rule_name, f"not differentiable at the fixed point: "
                                    f"{type(e).__name__.lower()}({sp.sstr(x)}) of a quantity that "
                                    "vanishes there (a sign, or a normalised step g/||g||)")
            s = 1 if x0 > 0 else -1
            return s * x if isinstance(e, sp.Abs) else sp.Integer(s)
        if isinstance(e, (sp.Min, sp.Max)):
            vals = [at0(a) for a in e.args]
            best = min(vals) if isinstance(e, sp.Min) else max(vals)
            ties = [a for a, v in zip(e.args, vals) if v == best]
            if len(ties) > 1 and any(a.has(*zero) for a in ties):
                raise NotAnalyzable(rule_name, f"not differentiable at the fixed point: "
                                    f"{sp.sstr(e)} has tied arguments there")
            notes.append(f"{type(e).__name__}: the argument active at the fixed point is "
                         f"{sp.sstr(ties[0])} (strictly, at the parameter values)")
            return ties[0]
        if isinstance(e, sp.Pow) and not e.exp.is_integer and e.base.has(*zero):
            if at0(e.base) == 0:
                raise NotAnalyzable(rule_name, f"not differentiable at the fixed point: "
                                    f"{sp.sstr(e)} is a fractional power of a quantity that "
                                    "vanishes there (a normalised step)")
        return None

    def walk(e):
        if not isinstance(e, sp.Basic) or e.is_Atom:
            return e
        e = e.func(*[walk(a) for a in e.args]) if e.args else e
        r = resolve(e)
        return e if r is None else r

    return [walk(sp.sympify(e)) for e in images], notes


def _denominator_with_p(expr, variables):
    """``D`` with ``lam_t = lam / D``: the smallest sum of ``P`` and parameters (``P + eps``)
    in the update, or ``P``."""
    sums = [a for a in sp.preorder_traversal(expr)
            if isinstance(a, sp.Add) and a.has(_P) and not a.has(*variables)]
    if not sums:
        return _P
    return min(sums, key=sp.count_ops)


def analyze(rule: Rule | str, params: Mapping[str, Any] | None = None,
            symbolic: Sequence[str] | None = None) -> RuleAnalysis:
    """Derive ``rule``'s stability on ``f = lam w^2/2`` (see the module docstring).

    ``params`` sets hyperparameter values (``rule.hyper(**params)``); ``symbolic`` names the
    parameters kept as symbols (``betas`` entries as ``beta1, beta2, ...``); default
    :func:`default_symbolic`.  Raises :class:`NotAnalyzable` with the reason when the map
    has no Jacobian at the minimum or its state does not settle; ``ValueError`` on bad input.
    """
    if isinstance(rule, str):
        rule = load_rule(rule)
    if "lr" not in rule.defaults:
        raise ValueError(f"rule {rule.name!r} has no 'lr' hyperparameter (the step size eta)")
    values = rule.hyper(**(params or {}))
    names = default_symbolic(values) if symbolic is None else list(symbolic)
    bindings = _bindings(values, names)
    point = {b.symbol: sp.nsimplify(b.value, rational=True) for b in bindings}
    hyper = bind(values, bindings, {b.name: b.symbol for b in bindings})
    hyper["lr"] = _ETA
    w = sp.Symbol("w", real=True)
    assumptions = [f"quadratic model f(w) = lambda w^2/2, g = lambda w (one eigen-direction)"]
    notes = []

    dynamic, counter, scalars, like = _classify_state(rule, hyper, w, _LAM)
    if counter is not None:
        assumptions.append(f"late time: the step counter {_label(counter)!r} -> oo, powers "
                           "beta^t -> 0 (bias corrections 1)")
    settled = _settle_scalars(rule, hyper, w, _LAM, dynamic, counter, scalars, like, point)
    for key, val in settled.items():
        assumptions.append(f"state entry {_label(key)!r} at the fixed point of its recursion: "
                           f"{sp.sstr(val)}")
    z = {key: sp.Symbol(f"z_{_label(key)}", real=True) for key in dynamic}
    flat = {**z, **settled}
    if counter is not None:
        flat[counter] = T
    w_new, s_new = _run(rule, w, _LAM * w, _unflatten(flat, like), hyper)
    f_new = _flatten(s_new)
    images = [w_new] + [f_new[k] for k in dynamic]
    images = [_late(e, rule) for e in images]

    images, frozen = _freeze_preconditioner(images, set(z.values()))
    if frozen:
        assumptions.append("preconditioner frozen: every square root of the state "
                           f"({', '.join(sorted({sp.sstr(f) for f in frozen}))}) held at P while "
                           "w and the buffers move (Cohen et al. 2022, arXiv 2207.14484, Sec. 3, "
                           "'frozen Adam'); lambda is then an eigenvalue of P^{-1} H")
    keep = _coupled(images, dynamic, z)
    dropped = [k for k in dynamic if k not in keep]
    if dropped:
        notes.append(f"state {', '.join(_label(k) for k in dropped)} does not reach w"
                     + (" once the preconditioner is frozen" if frozen else "")
                     + ": left out of the state vector (its block of the Jacobian is decoupled)")
    idx = [0] + [1 + dynamic.index(k) for k in keep]
    images = [images[i] for i in idx]
    variables = [w] + [z[k] for k in keep]
    zero = dict.fromkeys(variables, 0)
    images, smooth_notes = _resolve_nonsmooth(images, zero, point, rule.name)
    notes += smooth_notes
    at_fixed = [sp.simplify(e.subs(zero)) for e in images]
    if not all(v == 0 for v in at_fixed):
        raise NotAnalyzable(rule.name, "z = 0 is not a fixed point: the update does not vanish at "
                            f"the minimum ({sp.sstr(at_fixed)})")

    D = None
    if frozen:
        D = _denominator_with_p(images[0], variables)
        images = [sp.sympify(e).subs(_LAM, _LAMT * D) for e in images]
    else:
        images = [sp.sympify(e).subs(_LAM, _LAMT) for e in images]
    names_ = ("w",) + tuple(_label(k) for k in keep)
    step = OneStep(tuple(variables), tuple(images), names_)
    lin = linearize(step)
    steps = [Step(f"rule {rule.name!r} run once on sympy symbols, f = lambda w^2/2, state z = "
                  f"{names_}", sp.Matrix(images)),
             Step("A = Jacobian of the map at z = 0" + ("; the map is linear: F(z) - A z = 0"
                                                         if lin.linear else
                                                         " (the map is nonlinear; A governs "
                                                         "small perturbations)"),
                  sp.Matrix(lin.residual), True if lin.linear else None)]
    A = lin.matrix.subs(_ETA, H / _LAMT)
    A = A.applyfunc(lambda e: sp.nsimplify(sp.simplify(e), rational=True))
    p = sp.collect(sp.expand(sp.nsimplify(characteristic_polynomial(A), rational=True)), MU)
    if D is not None:
        free = p - p.subs(_P, 1)
        if not is_zero(free):
            raise NotAnalyzable(rule.name, "with the preconditioner frozen at P the characteristic "
                                "polynomial still depends on P apart from eta*lambda/"
                                f"({sp.sstr(D)})")
        steps.append(Step(f"with lambda = lambda_t ({sp.sstr(D)}), p depends on P only through "
                          "eta*lambda_t", free, True))
        p = p.subs(_P, 1)
    lam_free = p - p.subs(_LAMT, 1)
    if not is_zero(lam_free):
        raise NotAnalyzable(rule.name, "det(mu I - A) depends on eta and lambda separately (e.g. "
                            "weight decay), not only through eta*lambda; set it to 0")
    steps.append(Step("det(mu I - A) depends on eta and lambda only through eta*lambda",
                      lam_free, True))
    A = A.subs(_LAMT, 1)
    coeffs = sp.Poly(p.subs(_LAMT, 1), MU).all_coeffs()
    p = sum(sp.factor(sp.cancel(c)) * MU**k for k, c in enumerate(reversed(coeffs)))
    steps.append(Step("characteristic polynomial p(mu) = det(mu I - A)", p))

    model = Model(rule.name, rule.name, f"analyze({rule.name})", rule.source,
                  tuple(Param(b.name, b.value, "unit", (0.0, 0.99)) for b in bindings),
                  lambda v: dict(v), tuple(names_[1:]), preconditioned=D is not None,
                  assumptions=tuple(assumptions))
    conds = labelled_conditions(p, MU)
    roles, threshold, kind, region_steps = _threshold(model, p, conds)
    steps += region_steps
    an = Analysis(model, A, p, conds, roles, threshold, steps, kind == "closed form")
    out = RuleAnalysis(rule, dict(values), bindings, names_, assumptions, notes, an, kind, None, D,
                       fixed_state=dict(settled), counter=None if counter is None else counter[0],
                       frozen_sqrt=bool(frozen))
    if kind == "candidate":
        _check_candidate(out)
    out.flip = _flip(out)
    if out.threshold is not None:
        steps.append(Step("predicted edge-of-stability sharpness (of P^{-1} H when preconditioned): "
                          "S = threshold / eta", out.eos_sharpness()))
    return out


def _coupled(images, dynamic, z):
    """Dynamic entries that reach ``w`` (closure of 'appears in the image of a kept one')."""
    keep, grow = set(), True
    reach = {sp.Symbol("w", real=True)}
    img = dict(zip([None] + list(dynamic), images))
    while grow:
        grow = False
        for k in dynamic:
            if k in keep:
                continue
            if any(sp.sympify(img[j]).has(z[k]) for j in [None] + list(keep)):
                keep.add(k)
                grow = True
    return [k for k in dynamic if k in keep]


def _domain(model):
    subs, variables = {}, []
    for prm in model.params:
        u = sp.Symbol(f"u_{prm.name}", nonnegative=True)
        subs[prm.symbol] = u / (1 + u)  # [0, 1)
        variables.append(u)
    return subs, variables


def _threshold(model, p, conds):
    """Classify the conditions; closed form, candidate (mu = -1 root) or nothing."""
    subs, variables = _domain(model)
    dom = ", ".join(f"{prm.name} in [0, 1)" for prm in model.params) or "no parameters"
    steps = [Step("Schur conditions (bilinear map + Lienard-Chipart), all > 0; the region is "
                  "their conjunction", sp.And(*[c.expr > 0 for c in conds]))]
    roles = []
    for c in conds:
        try:
            role = classify_condition(c.expr, subs, variables)
        except (sp.PolynomialError, TypeError, ValueError) as exc:  # e.g. sqrt(beta) terms
            role = Role("unknown", None, False, f"not classified ({type(exc).__name__})")
        roles.append(role)
        steps.append(Step(f"[{c.label}] {sp.sstr(c.expr)} > 0 on {dom}: {role.text}", c.expr,
                          role.certified))
    uppers = [r.bound for r in roles if r.kind == "upper"]
    chosen = None
    at = {prm.symbol: prm.default for prm in model.params}
    for cand in sorted(uppers, key=lambda e: float(e.subs(at))):  # numerically smallest first
        others = [o - cand for o in uppers if o is not cand]
        if any(sp.count_ops(d) > _CERT_OPS for d in others):
            break  # a certificate of so large a difference is beyond this test's reach
        if all(positivity_certificate(d.subs(subs), variables, strict=False) for d in others):
            chosen = cand
            break
    if (chosen is not None and all(r.certified for r in roles)
            and any(r.kind == "lower" for r in roles)):
        if len(uppers) > 1:
            steps.append(Step(f"{sp.sstr(chosen)} is the smallest upper bound", None, True))
        steps.append(Step(f"stable region: 0 < eta*lambda < {sp.sstr(chosen)}",
                          sp.And(H > 0, H < chosen)))
        return roles, chosen, "closed form", steps
    cand = chosen
    if cand is None:  # root of the mu = -1 condition, then of mu = +1
        n = sp.degree(p, MU)
        for edge in ((-1) ** n * p.subs(MU, -1), p.subs(MU, 1)):
            roots = [r for r in sp.solve(sp.Eq(sp.expand(edge), 0), H)
                     if r != 0 and not r.has(sp.I)]
            if roots:
                cand = sp.factor(roots[0])
                break
    if cand is None:
        steps.append(Step("no condition gives a closed-form bound on eta*lambda: the boundary is "
                          "traced numerically"))
        return roles, None, "traced", steps
    steps.append(Step("not every Schur condition is linear in eta*lambda with certified signs; "
                      f"candidate bound from the crossing conditions: {sp.sstr(cand)}", cand))
    return roles, cand, "candidate", steps


def _check_candidate(out: RuleAnalysis) -> None:
    """Keep a candidate closed form as ``derived`` if it equals the traced boundary at sample
    points of the domain (seeded); else drop it (the boundary is then only traced)."""
    an = out.analysis
    rng = np.random.default_rng(0)
    pts = [{b.name: b.value for b in out.bindings}]
    pts += [{b.name: float(u) for b, u in zip(out.bindings, row)}
            for row in rng.uniform(0.0, 0.99, (_SAMPLES - 1, len(out.bindings)))]
    worst = 0.0
    for pt in pts:
        cand = an.threshold_value(pt)
        traced = float(out.traced_threshold(None, None, x_max=max(4 * cand, 1.0), **pt)[0])
        worst = max(worst, abs(traced - cand) / cand if np.isfinite(traced) else np.inf)
    if worst < 1e-6:
        an.steps.append(Step(f"the candidate equals the numerically traced boundary of the Schur "
                             f"region at {len(pts)} parameter points (the values and seeded uniform "
                             f"samples of [0, 0.99)), max relative gap {worst:.1e} -- a check at "
                             "sample values, not a proof", None, False))
        an.steps.append(Step(f"stable region: 0 < eta*lambda < {sp.sstr(an.threshold)}",
                             sp.And(H > 0, H < an.threshold)))
        return
    an.steps.append(Step(f"the candidate differs from the traced boundary (max relative gap "
                         f"{worst:.3g}): no closed form; the boundary is traced numerically"))
    an.threshold = None
    out.threshold_kind = "traced"


def _flip(out: RuleAnalysis):
    """Rod-flow flip threshold: ``det(I + A) = 0`` solved for ``h`` (the mu = -1 crossing)."""
    A, p, an = out.matrix, out.charpoly, out.analysis
    n = A.shape[0]
    det = sp.expand(sp.factor((sp.eye(n) + A).det(method="berkowitz")))
    same = sp.expand(det - (-1) ** n * p.subs(MU, -1))
    roots = [r for r in sp.solve(sp.Eq(det, 0), H) if not r.has(sp.I) and r != 0] if det.has(H) else []
    an.steps.append(Step("rod-flow flip condition det(I + A) = (-1)^n p(-1): a root of A at "
                         "mu = -1 (the period-2 crossing)", same, is_zero(same)))
    if not roots:
        an.steps.append(Step("det(I + A) has no positive root in eta*lambda: no flip"))
        return None
    flip = display_form(sp.factor(roots[0]), {b.symbol: b.value for b in out.bindings})
    an.steps.append(Step(f"rod-flow flip threshold: eta*lambda = {sp.sstr(flip)}", flip))
    if out.threshold is not None:
        gap = sp.simplify(roots[0] - out.threshold)
        an.steps.append(Step("the flip threshold is the stability threshold (the -1 crossing "
                             "binds)" if is_zero(gap) else "the flip threshold differs from the "
                             "stability threshold (another crossing binds)", gap,
                             None))
    return flip
