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

from momentumlab.theory.claims import (Claim, Control, Derivation, Step, is_true, is_zero, piecewise_branch,
                                       register)
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
_j, _l = sp.Symbol("j", integer=True, positive=True), sp.Symbol("l", integer=True, positive=True)


def _unit(w_base, j_, scale=1):
    """``(scale w)_j / ||scale w||``: the ``j``-th coordinate of the direction, symbolic dimension."""
    return scale * w_base[j_] / sp.sqrt(sp.Sum((scale * w_base[INDEX]) ** 2, (INDEX, 1, DIM)))


def _split_sum(s: sp.Sum) -> sp.Expr:
    """Linearity: ``sum_i (c_1 a_i + c_2 b_i) = c_1 sum_i a_i + c_2 sum_i b_i`` (constants out),
    the summation index renamed to :data:`INDEX` (a bound variable: the value is unchanged)."""
    (var, lo, hi), = s.limits
    out = sp.Integer(0)
    for term in sp.Add.make_args(sp.expand(s.function)):
        const, rest = term.as_independent(var)
        out += const * sp.Sum(rest.subs(var, INDEX), (INDEX, lo, hi))
    return out


def euler_identity_steps() -> list[Step]:
    """Scale invariance => ``w . grad f(w) = 0`` for ``f = G(w/||w||)``, in symbolic dimension ``n``.

    Every scale-invariant ``f`` (``f(cw) = f(w)``, ``c > 0``) equals ``G(w/||w||)`` with ``G = f``
    on the unit sphere, ``G`` arbitrary.  Sympy reduces, with symbolic ``n``, ``c`` and index
    ``j``: the direction ``u_j = w_j/||w||`` is unchanged by ``w -> c w``; and
    ``sum_l w_l du_j/dw_l = 0`` (sympy's own derivative of the indexed expression, a
    ``KroneckerDelta`` sum).  The chain rule ``df/dw_l = sum_j (d_j G)(u) du_j/dw_l`` is the
    one named lemma; with it ``w . grad f = sum_j (d_j G)(u) sum_l w_l du_j/dw_l = 0``.
    """
    w, c = sp.IndexedBase("w", real=True), sp.Symbol("c", positive=True)
    scaled = _unit(w, _j, c) - _unit(w, _j)
    steps = [Step("scale invariance of the direction, any dimension n: u_j(c w) - u_j(w) = 0, "
                  "u_j = w_j/||w||, c > 0 (so f(c w) = G(u(c w)) = f(w))",
                  sp.simplify(scaled), is_zero(scaled))]
    du = sp.diff(_unit(w, _j), w[_l])  # KroneckerDelta(j, l)/||w|| - w_j w_l/||w||^3
    radial = sp.Sum(w[_l] * du, (_l, 1, DIM)).doit()
    radial = piecewise_branch(radial, (_j <= DIM) & (_l <= DIM))
    radial = radial.replace(lambda x: isinstance(x, sp.Sum) and x.limits[0][0] == _l, _split_sum)
    steps.append(Step("sympy's derivative of u_j = w_j/||w|| in symbolic dimension: "
                      "sum_l w_l du_j/dw_l = 0 for every j = 1..n (the direction has no radial derivative)",
                      sp.simplify(radial), is_zero(radial)))
    steps.append(Step("df/dw_l = sum_j (d_j G)(u) du_j/dw_l for f = G(u(w)); so w . grad f = "
                      "sum_j (d_j G)(u) sum_l w_l du_j/dw_l = 0 (finite sums swapped): Euler's identity "
                      "w . grad f(w) = 0", lemma="chain rule"))
    return steps


def _fresh_state():
    return {"momentum_buffer": p_i}  # p_{t-1}, symbolic


# ------------------------------------------------------------------ Lemma 2.1
def _derive_lemma21() -> Derivation:
    steps = euler_identity_steps()
    gd = get_rule("gd")
    w_next, _ = gd(w_i, g_i, {}, gd.hyper(lr=eta), IX)
    expanded = _split_sum(inner(w_next, w_next))
    gap = inner(w_next, w_next) - expanded
    steps.append(Step("rules.gd on symbolic vectors (any dimension n), sums split by linearity: "
                      "||w_{t+1}||^2 = ||w_t||^2 - 2 eta w_t.g_t + eta^2 ||g_t||^2", gap, is_zero(gap)))
    W_t, G_t = sp.Symbol("W_t"), sp.Symbol("G_t")
    rhs = expanded.subs({inner(w_i, g_i): 0}).subs({inner(w_i, w_i): W_t, inner(g_i, g_i): G_t})
    steps.append(Step("substituting Euler's identity w_t.g_t = 0 (g_t = grad f(w_t)) and W_t = ||w_t||^2, "
                      "G_t = ||g_t||^2 gives the closed form", sp.Eq(sp.Symbol("W_{t+1}"), rhs)))
    return Derivation.from_steps(sp.Eq(sp.Symbol("W_{t+1}"), rhs), steps)


# ------------------------------------------------------------------ Lemma 2.2
def momentum_increment(t_=t):
    """Lemma 2.2's increment ``eta^2 P_t + 2 eta^2 sum_{k<t} beta^(t-k) P_k`` (sympy)."""
    return eta**2 * P(t_) + 2 * eta**2 * sp.Sum(beta ** (t_ - k) * P(k), (k, 0, t_ - 1))


def _peel(s: sp.Sum) -> sp.Expr:
    """``sum_{k=lo}^{hi} f = sum_{k=lo}^{hi-1} f + f(hi)`` (valid for hi >= lo)."""
    (var, lo, hi), = s.limits
    return sp.Sum(s.function, (var, lo, hi - 1)) + s.function.subs(var, hi)


def _derive_lemma22() -> Derivation:
    steps = euler_identity_steps()
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
    steps.append(Step("the two reduced steps together: a_t = beta (a_{t-1} - eta P_{t-1}), and "
                      "a_0 = w_0.g_0 = 0 (p_{-1} = 0, Euler)"))
    closed = lambda T: -eta * sp.Sum(beta ** (T - k) * P(k), (k, 0, T - 1))  # noqa: E731
    rec = closed(t) - beta * (closed(t - 1) - eta * P(t - 1))
    rec = rec.subs(closed(t), -eta * _peel(sp.Sum(beta ** (t - k) * P(k), (k, 0, t - 1))))
    steps.append(Step("closed form a_t = -eta sum_{k<t} beta^(t-k) P_k solves the recurrence "
                      "for every t >= 1 (last term peeled off the sum)", rec, is_zero(rec)))
    base = closed(sp.Integer(0)).doit()
    steps.append(Step("and a_0 = 0 (empty sum)", base, is_zero(base)))
    W = sp.Function("W")  # W(t) = ||w_t||^2
    derived = W(t) - 2 * eta * closed(t) + eta**2 * P(t)  # step 1 with a_t in closed form
    lemma = derived - (W(t) + momentum_increment())
    steps.append(Step("substituting a_t into the first step gives the paper's form ||w_{t+1}||^2 = "
                      "||w_t||^2 + eta^2 P_t + 2 eta^2 sum_{k<t} beta^(t-k) P_k", lemma, is_zero(lemma)))
    return Derivation.from_steps(sp.Eq(W(t + 1), derived), steps)


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
_q = sp.Symbol("q", positive=True)
_T = sp.Symbol("T", integer=True, positive=True)
_tt = sp.Symbol("t", integer=True, nonnegative=True)


def _peel_last(summand, var, lo, hi):
    """``sum_{var=lo}^{hi} summand = sum_{var=lo}^{hi-1} summand + summand(hi)`` (hi >= lo)."""
    return sp.Sum(summand, (var, lo, hi - 1)) + summand.subs(var, hi)


def _derive_corollary23() -> Derivation:
    """Swap of sums for an undefined sequence ``P_k``, then the limit under ``0 < sum P < oo``.

    ``beta = 1/(1+q)``, ``q > 0``, covers ``0 < beta < 1``.  ``P = sp.Function("P")`` is an
    arbitrary nonnegative sequence: nothing is evaluated at sample sequences.
    """
    b = 1 / (1 + _q)
    steps = [Step("GD and momentum from the same w_0 with identical update norms P_t: growth_GD(T) = "
                  "eta^2 S_T, S_T = sum_{t<T} P_t (Lemma 2.1), growth_GDM(T) = eta^2 [S_T + 2 D_T], "
                  "D_T = sum_{t<T} sum_{k<t} beta^(t-k) P_k (Lemma 2.2); beta = 1/(1+q), q > 0")]
    weight = sp.summation(b ** (_tt - k), (_tt, k + 1, _T - 1))  # sum_{t=k+1}^{T-1} beta^(t-k)
    double = lambda T_: sp.Sum(b ** (_tt - k) * P(k), (k, 0, _tt - 1), (_tt, 0, T_ - 1))  # noqa: E731
    swapped = lambda T_: sp.Sum(P(k) * weight.subs(_T, T_), (k, 0, T_ - 1))  # noqa: E731
    base = sp.Sum((b ** (_tt - k) * P(k)).subs(_tt, 0), (k, 0, -1)).doit() - swapped(1).doit()
    steps.append(Step("swap of sums, T = 1: D_1 = 0 = sum_{k<1} P_k sum_{t=k+1}^{0} beta^(t-k) (empty sums)",
                      base, is_zero(base)))
    increment = sp.Sum(b ** (_T - k) * P(k), (k, 0, _T - 1))
    step_d = (sp.Sum(b ** (_tt - k) * P(k), (k, 0, _tt - 1), (_tt, 0, _T - 1))
              + sp.Sum(b ** (_T - k) * P(k), (k, 0, _T - 1))) - double(_T) - increment
    step_s = _peel_last(P(k) * weight.subs(_T, _T + 1), k, 0, _T) - swapped(_T) - increment
    steps.append(Step("swap of sums, T -> T+1, for an undefined sequence P_k: both D_T and "
                      "sum_{k<T} P_k w_k(T), w_k(T) = sum_{t=k+1}^{T-1} beta^(t-k) (summed by sympy), "
                      "grow by sum_{k<T} beta^(T-k) P_k (last term peeled off)",
                      sp.simplify(step_d) + sp.simplify(step_s), is_zero(step_d) and is_zero(step_s)))
    steps.append(Step("by induction on T: D_T = sum_{k<T} P_k w_k(T) for every T >= 1"))
    S_T, E_T = sp.Sum(P(k), (k, 0, _T - 1)), sp.Sum(b ** (_T - 1 - k) * P(k), (k, 0, _T - 1))
    split = swapped(_T) - (b / (1 - b) * S_T - b / (1 - b) * E_T)
    steps.append(Step("w_k(T) = beta (1 - beta^(T-1-k))/(1 - beta), so D_T = beta/(1-beta) (S_T - E_T), "
                      "E_T = sum_{k<T} beta^(T-1-k) P_k", split, is_zero(split)))
    steps.append(Step("E_T is the (T-1)-th term of the Cauchy product of sum_k P_k (finite by assumption) "
                      "and sum_j beta^j; both converge absolutely, so the product series converges and "
                      "E_T -> 0; S_T -> S in (0, oo) by assumption",
                      lemma="Mertens' theorem (Cauchy product of absolutely convergent series)"))
    S, e = sp.Symbol("S", positive=True), sp.Symbol("E", nonnegative=True)
    ratio = (S + 2 * b / (1 - b) * (S - e)) / S
    limit = sp.limit(ratio, e, 0)
    beta_s = sp.Symbol("beta", positive=True)
    closed = sp.factor(sp.simplify(limit.subs(_q, (1 - beta_s) / beta_s)))
    steps.append(Step("ratio (S_T + 2 D_T)/S_T = 1 + 2 beta/(1-beta) (1 - E_T/S_T); its limit, computed by "
                      "sympy at E_T -> 0 (S_T -> S > 0) and written with beta = 1/(1+q)",
                      sp.Eq(sp.Limit(ratio, e, 0), closed), lemma="algebra of limits"))
    return Derivation.from_steps(closed, steps)


def growth_ratio(update_sq, beta_: float) -> float:
    """Finite-horizon ratio (momentum growth)/(GD growth) for recorded ``P_t`` (Lemmas 2.1, 2.2)."""
    P_ = np.asarray(update_sq, dtype=np.float64)
    grown = lemma_norm_sq(0.0, P_, 1.0, beta_)[-1]
    return float(grown / P_.sum())


def growth_ratio_limit(beta_: float) -> float:
    """Corollary 2.3's limit ``(1+beta)/(1-beta)``, evaluated from the derived closed form."""
    if not 0 < beta_ < 1:
        raise ValueError(f"beta must be in (0, 1), got {beta_}")
    return float(_COROLLARY.derive().expression.subs(sp.Symbol("beta", positive=True), beta_))


# ------------------------------------------------------------------ Lemma A.1
def _derive_lemmaA1() -> Derivation:
    j = sp.Symbol("j", integer=True, positive=True)
    summand = beta**j * P(t - j)
    steps = [Step("Lemma 2.2: increment Delta_t = eta^2 P_t + 2 eta^2 sum_{j=1}^{t} beta^j P_{t-j}"),
             Step("summand beta^j P_{t-j} >= 0 for beta >= 0, P >= 0", sp.GreaterThan(summand, 0, evaluate=False),
                  is_true(summand >= 0) or bool(summand.is_nonnegative)),
             Step("a finite sum of nonnegative terms is nonnegative, so Delta_t - eta^2 P_t = "
                  "2 eta^2 sum(...) >= 0 and Delta_t >= eta^2 P_t >= 0: the norm never decreases and "
                  "grows at least by GD's increment eta^2 P_t for the same update norms",
                  lemma="monotonicity of finite sums"),
             Step("(remark) beta < 0 breaks it: Delta_1 = eta^2 (P_1 + 2 beta P_0) < 0 when P_1 < -2 beta P_0,"
                  " e.g. beta = -1/2, P_1 = 0, P_0 = 1",
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
    cond = sp.GreaterThan(-2 * eta * a + eta**2 * a**2 / r2, 0, evaluate=False)  # shown, not evaluated to True
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


# ------------------------------------------------------------------ negative controls
def _wrong_norms(result, *, beta=None, lr_power=2, incr_factor=1.0, raw=False):
    """Predicted ``||w_t||^2`` per run from the check's inputs (``result.inputs``), with a
    deliberate error: ``beta -> beta(b)``, ``lr^2 -> lr^lr_power``, increments x ``incr_factor``,
    or (``raw``) the unprojected update norms with the momentum law (SGDP without projection)."""
    out = {}
    for label, x in result.inputs.items():
        P, b = (x["raw_update_sq"], x["raw_beta"]) if raw else (x["update_sq"], x["beta"])
        b = beta(b) if beta else b
        lr = x["lr"] ** (lr_power / 2)
        out[label] = lemma_norm_sq(x["w0_sq"], incr_factor * np.asarray(P), lr, b)
    return out


def _wrong_increments(result, **kw):
    return {k: np.diff(v, axis=0) for k, v in _wrong_norms(result, **kw).items()}


_IDENTITY_QUANTITIES = ("predicted/measured: final sum of ||w_T||^2 of the first run (predicted from the "
                        "recorded update norms, measured by running rules.* in float64); error: max over "
                        "runs, steps and tensors of |predicted - measured|/measured ||w_t||^2; tolerance 1e-10")
_IDENTITY_RULE = "error <= 1e-10 (float64 round-off over the run is ~1e-14)"

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
    controls=(Control("increment eta instead of eta^2", lambda r: _wrong_norms(r, lr_power=1)),
              Control("increment x 2 (2 eta^2 ||g||^2)", lambda r: _wrong_norms(r, incr_factor=2.0))),
    quantities=_IDENTITY_QUANTITIES + " (runs: network and toy, GD)",
    pass_rule=_IDENTITY_RULE,
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
    controls=(Control("beta -> beta^2", lambda r: _wrong_norms(r, beta=lambda b: b * b)),
              Control("no momentum cross term (beta -> 0, Lemma 2.1's law)", lambda r: _wrong_norms(r, beta=lambda b: 0.0))),
    quantities=_IDENTITY_QUANTITIES + " (runs: network and toy, momentum 0.9 and 0.99); details: the toy "
               "against the paper's Fig. 1 (0.9 = calibration, 0.99 and SGDP = out of sample)",
    pass_rule=_IDENTITY_RULE,
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
    controls=(Control("beta -> beta^2", lambda r: growth_ratio_limit(r.details["beta"] ** 2)),
              Control("compounded 1/(1-beta)^2", lambda r: 1 / (1 - r.details["beta"]) ** 2)),
    quantities=("predicted: (1+beta)/(1-beta) at beta = 0.9; measured: (||w_T||^2 - ||w_0||^2)/(lr^2 sum_t "
                "||p_t||^2) on the converged 2-D toy (summable update norms); error: relative difference"),
    pass_rule="error <= 1e-6 (the finite-T gap, reported in details, is far smaller)",
))

register(Claim(
    id="adamp.lemmaA.1",
    title="Momentum never decreases the norm and outgrows GD",
    source=f"{_SRC}, App. A, Lemma A.1",
    statement=(r"\beta\ge0:\ \|w_{t+1}\|^2-\|w_t\|^2 \ge \eta^2\|p_t\|^2 \ge 0"),
    assumptions=(_SI, "heavy-ball momentum with beta >= 0, no weight decay"),
    derive_fn=_derive_lemmaA1,
    predict_fn=lambda update_sq, lr, beta: np.diff(lemma_norm_sq(0.0, update_sq, lr, beta), axis=0),
    controls=(Control("momentum adds nothing (GD's increment, beta -> 0)",
                      lambda r: _wrong_increments(r, beta=lambda b: 0.0)),
              Control("beta -> beta^2", lambda r: _wrong_increments(r, beta=lambda b: b * b))),
    quantities=("predicted: 0, the lemma's lower bound on (increment - GD increment); measured: its minimum over "
                "all steps relative to ||w_t||^2; error: max |recorded - predicted increment|/||w_t||^2"),
    pass_rule="error <= 1e-10 and the minimum (increment - GD increment)/||w_t||^2 >= -1e-10",
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
    controls=(Control("unprojected growth (heavy ball's Lemma 2.2 law)", lambda r: _wrong_norms(r, raw=True)),),
    quantities=_IDENTITY_QUANTITIES + " (runs: network and toy, SGDP); error also covers the great-circle "
               "residual and the radial part of the update",
    pass_rule=_IDENTITY_RULE + ", and no step with w.p <= 0 ends above the unprojected step",
))

__all__ += ["DIM"]
