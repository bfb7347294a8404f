"""Norm growth of scale-invariant weights under GD, momentum and SGDP.

Heo et al., "AdamP: Slowing Down the Slowdown for Momentum Optimizers on
Scale-invariant Weights", ICLR 2021 (arXiv 2006.08217), Sec. 2-3 and App. A.

Symbolic derivations run the update rules of :mod:`theory.rules` in sympy
*indexed* mode (a vector is its ``i``-th component, inner products are sums over
``i = 1..n`` with symbolic ``n``), so each identity is proved in every
dimension, for symbolic ``eta``, ``beta`` and ``t``.  Numeric predictors
(numpy, float64) turn recorded update norms into predicted weight norms; the
experiments in ``empirics.checks.norm_growth`` and the property tests use them.
"""
from __future__ import annotations

import numpy as np
import sympy as sp

from momentumlab.theory.claims import Claim, Derivation, Step, is_true, is_zero, register
from momentumlab.theory.ops import DIM, INDEX, SYMPY_INDEXED as IX
from momentumlab.theory.rules import get_rule, radial_projection

__all__ = [
    "euler_identity_steps",
    "lemma_norm_sq",
    "momentum_increment",
    "growth_ratio",
    "growth_ratio_limit",
    "projected_norm_sq",
    "great_circle_residual",
]

eta = sp.Symbol("eta", positive=True)
beta = sp.Symbol("beta", nonnegative=True)
t = sp.Symbol("t", integer=True, positive=True)
k = sp.Symbol("k", integer=True, nonnegative=True)
P = sp.Function("P", nonnegative=True)  # P(k) = ||p_k||^2
_w, _g, _p = sp.IndexedBase("w"), sp.IndexedBase("g"), sp.IndexedBase("p")
w_i, g_i, p_i = _w[INDEX], _g[INDEX], _p[INDEX]
inner = IX.inner


# ------------------------------------------------------------------ Euler's identity
def euler_identity_steps(dims=(2, 3, 4)) -> list[Step]:
    """Scale invariance => ``w . grad f(w) = 0`` for ``f = G(w/||w||)``, ``G`` arbitrary.

    Every scale-invariant ``f`` (``f(cw) = f(w)``, ``c > 0``) equals ``G(w/||w||)``
    with ``G = f`` on the unit sphere, so an undefined sympy function ``G`` covers
    them all.  Sympy reduces ``f(cw) - f(w)`` and ``w . grad f`` to zero in
    ``d`` coordinates for each ``d`` in ``dims``.
    """
    c = sp.Symbol("c", positive=True)
    steps = []
    for d in dims:
        ws = sp.symbols(f"w1:{d + 1}", real=True)
        r = sp.sqrt(sum(x**2 for x in ws))
        G = sp.Function("G")
        f = G(*[x / r for x in ws])
        scaled = f.subs({x: c * x for x in ws}, simultaneous=True)
        euler = sum(x * sp.diff(f, x) for x in ws)
        steps.append(Step(f"d={d}: f(c w) - f(w) = 0 for f = G(w/||w||), c > 0",
                          sp.simplify(scaled - f), is_zero(scaled - f)))
        steps.append(Step(f"d={d}: Euler's identity  sum_i w_i df/dw_i = 0", sp.simplify(euler),
                          is_zero(euler)))
    return steps


def _fresh_state():
    return {"momentum_buffer": p_i}  # p_{t-1}, symbolic


# ------------------------------------------------------------------ Lemma 2.1
def _derive_lemma21() -> Derivation:
    steps = euler_identity_steps()
    gd = get_rule("gd")
    w_next, _ = gd(w_i, g_i, {}, gd.hyper(lr=eta), IX)
    gap = inner(w_next, w_next) - inner(w_i, w_i) - eta**2 * inner(g_i, g_i)
    steps.append(Step("rules.gd on symbolic vectors (any dimension n): "
                      "||w_{t+1}||^2 - ||w_t||^2 - eta^2||g_t||^2 + 2 eta w_t.g_t = 0",
                      gap + 2 * eta * inner(w_i, g_i), is_zero(gap + 2 * eta * inner(w_i, g_i))))
    steps.append(Step("with Euler's identity w_t.g_t = 0 the last term vanishes: "
                      "||w_{t+1}||^2 = ||w_t||^2 + eta^2 ||grad f(w_t)||^2"))
    # the whole lemma in one reduction, d = 3, arbitrary G, gradient taken by sympy
    ws = sp.symbols("w1:4", real=True)
    r = sp.sqrt(sum(x**2 for x in ws))
    f = sp.Function("G")(*[x / r for x in ws])
    grad = [sp.diff(f, x) for x in ws]
    after = [x - eta * gx for x, gx in zip(ws, grad)]
    whole = sum(a**2 for a in after) - sum(x**2 for x in ws) - eta**2 * sum(gx**2 for gx in grad)
    steps.append(Step("check in d=3 with sympy's own gradient of G(w/||w||): "
                      "||w - eta grad f||^2 - ||w||^2 - eta^2||grad f||^2 = 0", sp.simplify(whole),
                      is_zero(whole)))
    expr = sp.Symbol("W_t") + eta**2 * sp.Symbol("G_t")
    return Derivation.from_steps(sp.Eq(sp.Symbol("W_{t+1}"), expr), steps)


# ------------------------------------------------------------------ Lemma 2.2
def momentum_increment(t_=t):
    """Lemma 2.2's increment ``eta^2 P_t + 2 eta^2 sum_{k<t} beta^(t-k) P_k`` (sympy)."""
    return eta**2 * P(t_) + 2 * eta**2 * sp.Sum(beta ** (t_ - k) * P(k), (k, 0, t_ - 1))


def _peel(s: sp.Sum) -> sp.Expr:
    """``sum_{k=lo}^{hi} f = sum_{k=lo}^{hi-1} f + f(hi)`` (valid for hi >= lo)."""
    (var, lo, hi), = s.limits
    return sp.Sum(s.function, (var, lo, hi - 1)) + s.function.subs(var, hi)


def _derive_lemma22() -> Derivation:
    steps = euler_identity_steps(dims=(3,))
    hb = get_rule("heavy_ball")
    h = hb.hyper(lr=eta, momentum=beta)
    w_next, st = hb(w_i, g_i, _fresh_state(), h, IX)
    p_t = st["momentum_buffer"]  # beta p_{t-1} + g_t
    a_t = inner(w_i, p_t)
    one = inner(w_next, w_next) - inner(w_i, w_i) - eta**2 * inner(p_t, p_t) + 2 * eta * a_t
    steps.append(Step("rules.heavy_ball, one step on symbolic vectors: "
                      "||w_{t+1}||^2 = ||w_t||^2 - 2 eta a_t + eta^2 ||p_t||^2, a_t := w_t.p_t",
                      one, is_zero(one)))
    two = a_t - beta * inner(w_i, p_i) - inner(w_i, g_i)
    steps.append(Step("a_t = beta w_t.p_{t-1} + w_t.g_t, and w_t.g_t = 0 (Euler), so "
                      "a_t = beta w_t.p_{t-1}", two, is_zero(two)))
    # w_t = w_{t-1} - eta p_{t-1}: the previous heavy-ball step, written with its own update
    w_prev = sp.IndexedBase("v")[INDEX]
    w_t_from_prev = w_prev - eta * p_i
    three = inner(w_t_from_prev, p_i) - (inner(w_prev, p_i) - eta * inner(p_i, p_i))
    steps.append(Step("w_t.p_{t-1} = (w_{t-1} - eta p_{t-1}).p_{t-1} = a_{t-1} - eta P_{t-1}",
                      three, is_zero(three)))
    steps.append(Step("so a_t = beta (a_{t-1} - eta P_{t-1}) with a_0 = w_0.g_0 = 0 (p_{-1} = 0)"))
    closed = lambda T: -eta * sp.Sum(beta ** (T - k) * P(k), (k, 0, T - 1))  # noqa: E731
    rec = closed(t) - beta * (closed(t - 1) - eta * P(t - 1))
    rec = rec.subs(closed(t), -eta * _peel(sp.Sum(beta ** (t - k) * P(k), (k, 0, t - 1))))
    steps.append(Step("closed form a_t = -eta sum_{k<t} beta^(t-k) P_k solves the recurrence "
                      "for every t >= 1 (last term peeled off the sum)", rec, is_zero(rec)))
    base = closed(sp.Integer(0)).doit()
    steps.append(Step("and a_0 = 0 (empty sum)", base, is_zero(base)))
    W = sp.Function("W")  # W(t) = ||w_t||^2
    lemma = (W(t) - 2 * eta * closed(t) + eta**2 * P(t)) - (W(t) + momentum_increment())
    steps.append(Step("substituting: ||w_{t+1}||^2 = ||w_t||^2 + eta^2 P_t + "
                      "2 eta^2 sum_{k<t} beta^(t-k) P_k", lemma, is_zero(lemma)))
    return Derivation.from_steps(sp.Eq(W(t + 1), W(t) + momentum_increment()), steps)


def lemma_norm_sq(w0_sq: float, update_sq, lr: float, beta_: float = 0.0) -> np.ndarray:
    """Predicted ``||w_t||^2`` for ``t = 0..T`` from the recorded ``||p_t||^2`` (Lemmas 2.1, 2.2).

    ``||w_{t+1}||^2 = ||w_t||^2 + lr^2 P_t + 2 lr^2 S_t`` with
    ``S_t = sum_{k<t} beta^(t-k) P_k = beta (S_{t-1} + P_{t-1})``; ``beta = 0`` is
    Lemma 2.1.  ``update_sq`` may carry trailing axes (several tensors).
    """
    P_ = np.asarray(update_sq, dtype=np.float64)
    S = np.zeros_like(P_)
    for i in range(1, len(P_)):
        S[i] = beta_ * (S[i - 1] + P_[i - 1])
    incr = lr**2 * (P_ + 2 * S)
    out = np.empty((len(P_) + 1,) + P_.shape[1:])
    out[0] = w0_sq
    out[1:] = w0_sq + np.cumsum(incr, axis=0)
    return out


# ------------------------------------------------------------------ Corollary 2.3
_q, _r = sp.symbols("q r", positive=True)
_T = sp.Symbol("T", integer=True, positive=True)
_tt = sp.Symbol("t", integer=True, nonnegative=True)


def _generic(expr):
    """Keep the generic branch of sympy's geometric-sum Piecewise (ratio != 1)."""
    return expr.replace(lambda x: isinstance(x, sp.Piecewise), lambda x: x.args[-1][0])


def _ratio_limit(Pk) -> tuple[sp.Expr, sp.Expr]:
    """``lim_T (sum_t [P_t + 2 sum_{k<t} b^(t-k) P_k]) / sum_t P_t`` with ``b = 1/(1+q)``."""
    b = 1 / (1 + _q)
    inner_sum = _generic(sp.summation(b ** (_tt - k) * Pk(k), (k, 0, _tt - 1)))
    double = _generic(sp.summation(sp.expand(inner_sum), (_tt, 0, _T - 1)))
    gd_sum = _generic(sp.summation(Pk(_tt), (_tt, 0, _T - 1)))
    ratio = (gd_sum + 2 * double) / gd_sum
    return ratio, sp.limit(ratio, _T, sp.oo)


def _derive_corollary23() -> Derivation:
    b = 1 / (1 + _q)
    target = (1 + b) / (1 - b)
    steps = [Step("GD and momentum from the same w_0 with identical update norms P_t: "
                  "growth_GD(T) = eta^2 sum_t P_t (Lemma 2.1), growth_GDM(T) = eta^2 sum_t "
                  "[P_t + 2 sum_{k<t} beta^(t-k) P_k] (Lemma 2.2); beta = 1/(1+q), q > 0 "
                  "covers 0 < beta < 1")]
    swap = sp.summation(b ** (_tt - k), (_tt, k + 1, _T - 1))
    steps.append(Step("each P_k is counted sum_{t=k+1}^{T-1} beta^(t-k) times in the double sum",
                      sp.simplify(_generic(swap))))
    for label, Pk in (("constant update norms P_k = P", lambda x: sp.Integer(1)),
                      ("decaying update norms P_k = rho^k, rho = 1/(1+r) (rho != beta)",
                       lambda x: (1 / (1 + _r)) ** x)):
        ratio, lim = _ratio_limit(Pk)
        steps.append(Step(f"{label}: growth ratio at T", sp.simplify(ratio)))
        steps.append(Step(f"{label}: lim_(T->oo) ratio - (1+beta)/(1-beta) = 0",
                          sp.simplify(lim - target), is_zero(lim - target)))
    beta_s = sp.Symbol("beta", positive=True)
    return Derivation.from_steps((1 + beta_s) / (1 - beta_s), steps)


def growth_ratio(update_sq, beta_: float) -> float:
    """Finite-horizon ratio (momentum growth)/(GD growth) for recorded ``P_t`` (Lemmas 2.1, 2.2)."""
    P_ = np.asarray(update_sq, dtype=np.float64)
    grown = lemma_norm_sq(0.0, P_, 1.0, beta_)[-1]
    return float(grown / P_.sum())


def growth_ratio_limit(beta_: float) -> float:
    """Corollary 2.3's limit ``(1+beta)/(1-beta)``, evaluated from the derived closed form."""
    return float(_COROLLARY.derive().expression.subs(sp.Symbol("beta", positive=True), beta_))


# ------------------------------------------------------------------ Lemma A.1
def _derive_lemmaA1() -> Derivation:
    j = sp.Symbol("j", integer=True, positive=True)
    summand = beta**j * P(t - j)
    steps = [Step("Lemma 2.2: increment Delta_t = eta^2 P_t + 2 eta^2 sum_{j=1}^{t} beta^j P_{t-j}"),
             Step("summand beta^j P_{t-j} >= 0 for beta >= 0, P >= 0", summand >= 0,
                  is_true(summand >= 0) or bool(summand.is_nonnegative)),
             Step("a finite sum of nonnegative terms is nonnegative, so Delta_t >= eta^2 P_t >= 0: "
                  "the norm never decreases (momentum)"),
             Step("Delta_t - eta^2 P_t = 2 eta^2 sum(...) >= 0: momentum grows at least as fast as "
                  "GD with the same update norms (Lemma 2.1's increment eta^2 P_t)"),
             Step("beta < 0 breaks it: Delta_1 = eta^2 (P_1 + 2 beta P_0) < 0 when P_1 < -2 beta P_0",
                  (eta**2 * (P(1) + 2 * beta * P(0))).subs(beta, sp.Rational(-1, 2)).subs(
                      {P(1): 0, P(0): 1}), None)]
    return Derivation.from_steps(sp.Ge(momentum_increment() - eta**2 * P(t), 0), steps)


# ------------------------------------------------------------------ Proposition 3.1
def _derive_prop31() -> Derivation:
    steps = []
    pi_p = radial_projection(w_i, p_i, IX)
    orth = inner(pi_p, w_i)
    steps.append(Step("Pi_w(p) . w = 0", orth, is_zero(orth)))
    idem = radial_projection(w_i, pi_p, IX) - pi_p
    steps.append(Step("Pi_w(Pi_w(p)) = Pi_w(p) (component i)", idem, is_zero(idem)))
    hb, sg = get_rule("heavy_ball"), get_rule("sgdp")
    zero = {"momentum_buffer": 0}
    w_o, _ = hb(w_i, p_i, zero, hb.hyper(lr=eta, momentum=beta), IX)
    w_p, _ = sg(w_i, p_i, zero, sg.hyper(lr=eta, momentum=beta, delta=None, eps=0,
                                          project=True), IX)
    nrm2 = inner(w_i, w_i)
    span = w_p - w_o - eta * inner(w_i, p_i) / nrm2 * w_i
    steps.append(Step("rules.sgdp (delta=None: plain Pi) vs rules.heavy_ball from the same state: "
                      "w^p_{t+1} = w^o_{t+1} + (eta w.p/||w||^2) w_t, in span{w_t, w^o_{t+1}} with "
                      "coefficient +1 on w^o: w_hat^p lies on the great circle through w_hat_t and "
                      "w_hat^o, on the same side (same effective direction)", span, is_zero(span)))
    growth = inner(w_p, w_p) - nrm2 - eta**2 * inner(pi_p, pi_p)
    steps.append(Step("||w^p_{t+1}||^2 = ||w_t||^2 + eta^2 ||Pi_w(p)||^2", growth, is_zero(growth)))
    a, r2 = sp.Symbol("a", nonpositive=True), sp.Symbol("r2", positive=True)
    diff = inner(w_o, w_o) - inner(w_p, w_p)
    expected = -2 * eta * inner(w_i, p_i) + eta**2 * inner(w_i, p_i) ** 2 / nrm2
    steps.append(Step("||w^o||^2 - ||w^p||^2 = -2 eta w.p + eta^2 (w.p)^2/||w||^2",
                      diff - expected, is_zero(diff - expected)))
    cond = (-2 * eta * a + eta**2 * a**2 / r2) >= 0
    steps.append(Step("with a = w.p <= 0 that difference is >= 0", cond, is_true(cond)))
    return Derivation.from_steps(sp.Eq(sp.Symbol("W^p_{t+1}"), sp.Symbol("W_t")
                                       + eta**2 * sp.Symbol("||Pi_w(p_t)||^2")), steps)


def projected_norm_sq(w_sq, projected_update_sq, lr: float):
    """Proposition 3.1: ``||w_{t+1}||^2 = ||w_t||^2 + lr^2 ||Pi(p_t)||^2`` (vectorised)."""
    return np.asarray(w_sq) + lr**2 * np.asarray(projected_update_sq)


def great_circle_residual(w, w_o, w_p) -> float:
    """Distance of ``w_p`` from ``span{w, w_o}`` relative to ``||w_p||`` (0 on the great circle).

    Flat numpy vectors; the component of ``w_p`` orthogonal to the plane, by
    least squares.
    """
    basis = np.stack([np.ravel(w), np.ravel(w_o)], axis=1)
    target = np.ravel(w_p)
    coef, *_ = np.linalg.lstsq(basis, target, rcond=None)
    return float(np.linalg.norm(target - basis @ coef) / np.linalg.norm(target))


# ------------------------------------------------------------------ registration
_SRC = "Heo et al., AdamP, ICLR 2021 (arXiv 2006.08217)"
_SI = "f is scale invariant: f(cw) = f(w) for all c > 0 (weights feeding BatchNorm/LayerNorm)"

register(Claim(
    id="adamp.lemma2.1",
    title="Norm growth under gradient descent",
    source=f"{_SRC}, Sec. 2.2, Lemma 2.1 (Arora et al. 2019, Lemma 2.4)",
    statement=r"\|w_{t+1}\|_2^2 = \|w_t\|_2^2 + \eta^2 \|\nabla f(w_t)\|_2^2",
    assumptions=(_SI, "w_{t+1} = w_t - eta grad f(w_t), no weight decay"),
    derive_fn=_derive_lemma21,
    predict_fn=lambda w0_sq, update_sq, lr: lemma_norm_sq(w0_sq, update_sq, lr, 0.0),
))

register(Claim(
    id="adamp.lemma2.2",
    title="Norm growth under heavy-ball momentum",
    source=f"{_SRC}, Sec. 2.2, Lemma 2.2",
    statement=(r"\|w_{t+1}\|_2^2 = \|w_t\|_2^2 + \eta^2\|p_t\|_2^2 + 2\eta^2\sum_{k=0}^{t-1}"
               r"\beta^{t-k}\|p_k\|_2^2,\quad p_t = \beta p_{t-1} + \nabla f(w_t)"),
    assumptions=(_SI, "p_{-1} = 0, w_{t+1} = w_t - eta p_t (PyTorch SGD, dampening 0)",
                 "no weight decay"),
    derive_fn=_derive_lemma22,
    predict_fn=lambda w0_sq, update_sq, lr, beta: lemma_norm_sq(w0_sq, update_sq, lr, beta),
))

_COROLLARY = register(Claim(
    id="adamp.corollary2.3",
    title="Momentum multiplies accumulated norm growth by (1+beta)/(1-beta)",
    source=f"{_SRC}, Sec. 2.2, Corollary 2.3",
    statement=(r"\lim_{T\to\infty}\frac{\|w^{GDM}_T\|^2-\|w_0\|^2}{\|w^{GD}_T\|^2-\|w_0\|^2}"
               r"=\frac{1+\beta}{1-\beta}"),
    assumptions=("Lemmas 2.1 and 2.2 hold", "identical update norms ||p_t|| for GD and GDM",
                 "0 < beta < 1; 0 < sum_t ||p_t||^2 < oo (or constant update norms)"),
    derive_fn=_derive_corollary23,
    predict_fn=lambda beta: growth_ratio_limit(beta),
))

register(Claim(
    id="adamp.lemmaA.1",
    title="Momentum never decreases the norm and outgrows GD",
    source=f"{_SRC}, App. A, Lemma A.1",
    statement=(r"\beta\ge0:\ \|w_{t+1}\|^2-\|w_t\|^2 \ge \eta^2\|p_t\|^2 \ge 0"),
    assumptions=(_SI, "heavy-ball momentum with beta >= 0, no weight decay"),
    derive_fn=_derive_lemmaA1,
    predict_fn=lambda update_sq, lr, beta: np.diff(lemma_norm_sq(0.0, update_sq, lr, beta), axis=0),
))

register(Claim(
    id="adamp.proposition3.1",
    title="Projection keeps the effective direction and slows norm growth",
    source=f"{_SRC}, Sec. 3.1, Proposition 3.1",
    statement=(r"w^p_{t+1}=w_t-\eta\Pi_{w_t}(p_t)\in\mathrm{span}\{w_t,w^o_{t+1}\},\ "
               r"\|w^p_{t+1}\|^2=\|w_t\|^2+\eta^2\|\Pi_{w_t}(p_t)\|^2\le\|w^o_{t+1}\|^2"
               r"\ \text{if}\ w_t\cdot p_t\le0"),
    assumptions=("Pi_w(x) = x - (w_hat.x) w_hat", "w^o_{t+1} = w_t - eta p_t (unprojected)",
                 "the inequality needs w_t.p_t <= 0, which Lemma 2.2 gives under momentum"),
    derive_fn=_derive_prop31,
    predict_fn=lambda w_sq, projected_update_sq, lr: projected_norm_sq(w_sq, projected_update_sq, lr),
))

__all__ += ["DIM"]
