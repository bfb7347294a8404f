"""Stability analysis: rule -> iteration matrix -> Schur conditions -> threshold, with steps.

For each model of :mod:`theory.stability_models` the rule of :mod:`theory.rules` is linearised
on ``f(w) = lam w^2 / 2`` (:mod:`theory.linearize`), the characteristic polynomial of the
iteration matrix goes through the Schur test of :mod:`theory.schur`, and the conditions are
solved for ``h = eta * lam`` (``lam`` an eigenvalue of ``H``; for adaptive methods of
``P^{-1} H`` with the preconditioner ``P`` frozen).  Each condition is classified on the
hyperparameter domain by :mod:`theory.stability_certificates`; the analysis is *proved* when
every classification is certified and sympy reduces (stated closed form) - (derived bound)
to zero.  Every step becomes a :class:`theory.claims.Step` of the claim's derivation.
"""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import sympy as sp

from momentumlab.theory.claims import Derivation, Step, is_zero
from momentumlab.theory.linearize import MU, T, characteristic_polynomial, linearize, one_step
from momentumlab.theory.ops import SYMPY_SCALAR
from momentumlab.theory.rules import get_rule, vr_gate
from momentumlab.theory.schur import labelled_conditions
from momentumlab.theory.stability_certificates import (classify_condition, domain_substitution,
                                                       positivity_certificate)
from momentumlab.theory.stability_display import display_form
from momentumlab.theory.stability_models import (_EPS, _LAMT, _P, _V, DOMAINS, H, B, Model,
                                                 get_model)

__all__ = ["Analysis", "analyse", "analyse_model", "sqrt_only_on_second_moment"]


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
    subs, variables = domain_substitution(model)
    dom = ", ".join(f"{p.name} in {DOMAINS[p.domain]}" for p in model.params) or "no parameters"
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
                   for o in uppers if o != cand):  # the certificate rejects 0 = cand - cand
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
    subs, variables = domain_substitution(an.model)
    r, sig = sp.Symbol("r", nonnegative=True), sp.Symbol("sigma", positive=True)
    cap = sp.factor(B(sy["beta"]) * (1 + a1))
    below = (cap - an.threshold).subs(a1, G + r)
    an.steps.append(Step("the gate is capped, 0 <= G <= alpha1 (alpha1 = G + r, r >= 0): the "
                         f"threshold B(beta)(1 + G) <= B(beta)(1 + alpha1) = {sp.sstr(cap)}",
                         sp.factor(below), positivity_certificate(below.subs(subs),
                                                                  variables + [r], strict=False)))
    minus = sp.factor(-an.charpoly.subs(MU, -1).subs(H, cap + sig).subs(a1, G + r))
    an.steps.append(Step("for alpha0*lambda = B(beta)(1 + alpha1) + sigma, sigma > 0: -p_G(-1) > 0 "
                         "for every frozen gate G in [0, alpha1]", minus,
                         positivity_certificate(minus.subs(subs), variables + [r], positive=(sig,))))
    an.steps.append(Step("p_G is monic of degree 2, so p_G(mu) -> +oo as mu -> -oo; with p_G(-1) < 0 "
                         "it has a real root mu* < -1: every frozen map is unstable, no gate value "
                         "in [0, alpha1] restores stability", lemma="intermediate value theorem"))
    _vradam_divergence(an, cap, sig)


def _vradam_divergence(an: Analysis, cap, sig) -> None:
    """Past B(1 + alpha1) the gated rule itself diverges: an invariant saturated ray."""
    sy = an.model.symbols()
    a1, G = sy["alpha1"], sy["G"]
    a0, r = sp.Symbol("alpha0", positive=True), sp.Symbol("r", nonnegative=True)
    b3p = sp.Symbol("beta3", positive=True)
    sat = vr_gate(a0, (a1 + r) / b3p, {"beta3": b3p, "alpha1": a1}, SYMPY_SCALAR) - a0 / (1 + a1)
    an.steps.append(Step("saturated branch: where beta3 ||m_t||^2 = alpha1 + r >= alpha1 the rule's "
                         "gate rules.vr_gate is alpha0/(1 + alpha1), so the gated rule is exactly "
                         "the frozen map with G = alpha1", sat, is_zero(sat)))
    subs, variables = domain_substitution(an.model)
    A = an.matrix.subs({G: a1, H: cap + sig})
    c = A[1, 0]
    an.steps.append(Step("the momentum row of A couples to w: A[1,0] = (1 - beta)(P + epsilon) "
                         "!= 0, so the eigenvector e = (mu* - A[1,1], A[1,0]) of mu* has a nonzero "
                         "m-component", c, positivity_certificate(c.subs(subs), variables + [_P, _EPS],
                                                                  positive=(_P,))))
    ev = sp.Symbol("mu_star", real=True)
    e = sp.Matrix([ev - A[1, 1], A[1, 0]])
    pol = an.charpoly.subs({G: a1, H: cap + sig, MU: ev})
    res = sp.Matrix([(A * e - ev * e)[0] + pol, (A * e - ev * e)[1]]).applyfunc(sp.simplify)
    an.steps.append(Step("A e - mu* e = (-p(mu*), 0), which is 0 at the root mu*: e is its "
                         "eigenvector", res, all(is_zero(x) for x in res)))
    an.steps.append(Step("start on the ray z_0 = s e with beta3 (s e_m)^2 >= alpha1: if the gate is "
                         "saturated at step t the map is A, so z_(t+1) = mu* z_t and |m_(t+1)| = "
                         "|mu*| |m_t| >= |m_t| keeps it saturated; hence z_t = mu*^t z_0 and "
                         "|z_t| -> oo -- the gated rule (not only each frozen map) diverges past "
                         "alpha0*lambda = B(beta)(1 + alpha1)", lemma="induction on t"))
    an.steps.append(Step("between B(beta) and B(beta)(1 + alpha1) neither the frozen maps nor this "
                         "argument decide the motion of the gated rule: measured (bounded, no "
                         "divergence) by the check, not part of the derivation"))
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
    res = sp.Matrix([sp.simplify(s_k.subs(k, k + 1) - (gam * s_k + (1 - gam) * (-1))),
                     s_k.subs(k, 0) - s0])
    an.steps.append(Step("with S_t = -1 the average s_hat_k = -1 + gamma^k (s_hat_0 + 1) solves "
                         "s_hat_{k+1} = gamma s_hat_k - (1 - gamma) and equals s_hat_0 at k = 0: "
                         "s_hat -> -1 and d_k = (1 + s_hat_k)/2 = gamma^k d_0 -> 0", res,
                         all(is_zero(x) for x in res)))
    lim = sp.limit(an.threshold.subs(d, dp), dp, 0, "+")
    an.steps.append(Step("so the damping switches the gradient off during a period-2 oscillation: "
                         f"the fixed-d threshold rises to {sp.sstr(lim)} as d -> 0.  Started on the "
                         "unstable mode with s_hat_0 = 1 at eta*lambda = f (2 + 2 beta)/(1 + eps), "
                         "the growth lasts while eta*lambda (gamma^t + eps) > 2 + 2 beta, about "
                         "ln f / ln(1/gamma) steps; what the motion does afterwards (settles, or a "
                         "large catapult diverges) is measured by simulation", lim))


_EXTRAS["vradam_saturation"] = _vradam_saturation
_EXTRAS["tam_cosine"] = _tam_cosine
