"""VRAdam's dynamics claims (``vradam.*``): Lagrangian, period-2 orbit, step bound, Lyapunov.

Vaidhyanathan, Schorling, Ares, Osborne, "A Physics-Inspired Optimizer: Velocity Regularized
Adam", arXiv 2505.13196, Sec. 2-4.  Every map below is
the rule of :mod:`theory.rules` (``vr_momentum``: EMA momentum with VRAdam's gate; ``vradam``
with the second moment frozen) run on sympy symbols; closed forms are solved from it and
checked by sympy with symbolic parameters.

The gate ``eta_t = alpha0 / (1 + min(beta3 ||m_t||^2, alpha1))`` has two branches; each
derivation says which one it uses and substitutes it for sympy's ``Min``:
*open* (``beta3 ||m||^2 <= alpha1``, ``min -> beta3 ||m||^2``) or *saturated*
(``min -> alpha1``).
"""
from __future__ import annotations

import dataclasses
import functools

import numpy as np
import sympy as sp

from momentumlab.theory.claims import Claim, Derivation, Step, is_true, is_zero, register
from momentumlab.theory.linearize import T, min_node, one_step, sqrt_containing
from momentumlab.theory.ops import INDEX, SYMPY_INDEXED, SYMPY_SCALAR
from momentumlab.theory.rules import get_rule, vr_gate
from momentumlab.theory.stability_models import B

__all__ = ["B", "period2_orbit", "period2_radius", "vr_map", "two_step_jacobian",
           "effective_mass", "el_system", "step_bound", "switched_matrix",
           "adam_ratio_bound", "COUNTEREXAMPLE", "FEASIBLE", "feasible_rho2"]

# ------------------------------------------------------------------ symbols
lam = sp.Symbol("lambda", positive=True)        # curvature of f = lam w^2 / 2
alpha0 = sp.Symbol("alpha0", positive=True)     # maximal learning rate
alpha1 = sp.Symbol("alpha1", positive=True)     # cap of the penalty
beta3 = sp.Symbol("beta3", positive=True)       # velocity penalty
beta = sp.Symbol("beta1", positive=True)        # momentum (< 1)
r = sp.Symbol("r", positive=True)               # r = alpha0 lam / B(beta1)
h = sp.Symbol("h", positive=True)               # h = eta_t lam
mass = sp.Symbol("m", positive=True)            # the Lagrangian's mass
_w, _m = sp.Symbol("w", real=True), sp.Symbol("m_prev", real=True)


def _zero(e) -> bool:
    """``is_zero`` entry by entry for matrices and tuples."""
    if isinstance(e, (sp.MatrixBase, sp.Tuple, list, tuple)):
        return all(_zero(x) for x in e)
    return is_zero(e)


#: gate on its open branch, beta3 ||m||^2 <= alpha1: ``min(a, alpha1) -> a``
OPEN = dataclasses.replace(SYMPY_SCALAR, name="sympy-scalar+open-gate", minimum=lambda a, cap: a)
#: gate saturated, beta3 ||m||^2 >= alpha1: ``min(a, alpha1) -> alpha1``
SATURATED = dataclasses.replace(SYMPY_SCALAR, name="sympy-scalar+saturated-gate",
                                minimum=lambda a, cap: cap)
_GATE_H = {"beta3": beta3, "alpha1": alpha1}  # the gate's hyperparameters as symbols


# ============================================================ 1. Euler-Lagrange
# Index notation in a symbolic dimension n: v_i, x_i (i = 1..n), |v|^2 = Sum(v_k^2, (k, 1, n)).
DIM = sp.Symbol("n", integer=True, positive=True)
_i, _j, _k = sp.symbols("i j k", integer=True, positive=True)
_v, _x, _a, _u = (sp.IndexedBase(s) for s in ("v", "x", "a", "u"))  # a = dv/dt; u _|_ v
_q = sp.Symbol("q", integer=True, nonnegative=True)


def _canon(e):
    """Every ``Sum`` over ``(dummy, 1, n)`` re-indexed by ``k``, constant factors pulled out:
    equal sums then compare equal."""
    def one(S):
        (d, lo, hi), = S.limits
        c, rest = sp.expand(S.function.subs(d, _k)).as_independent(_k, as_Add=False)
        return c * sp.Sum(rest, (_k, lo, hi))
    return sp.expand(e).replace(lambda z: isinstance(z, sp.Sum), one)


def _in_range(e):
    """``e.doit()`` with each ``Piecewise`` (from a ``KroneckerDelta`` summed over ``1..n``)
    replaced by its branch whose condition holds for free indices ``1 <= i, j <= n`` (checked
    with ``n = i + j + q``, ``q >= 0``: the condition must reduce to True), then :func:`_canon`."""
    def branch(pw):
        for val, cond in pw.args:
            if cond is sp.true or sp.simplify(cond.subs(DIM, _i + _j + _q)) is sp.true:
                return val
        raise ValueError(f"no branch of {pw} holds for 1 <= i, j <= n")
    return _canon(e.doit().replace(lambda z: isinstance(z, sp.Piecewise), branch))


@functools.lru_cache(maxsize=None)
def _el():
    """Lagrangian, momentum, mass tensor, energy in dimension ``n`` (index notation)."""
    s = sp.Sum(_v[_k] ** 2, (_k, 1, DIM))
    V = sp.Function("V")
    T_kin = mass * s / 2 + beta3 * s**2 / 4
    p = _in_range(sp.diff(T_kin, _v[_i]))                  # p_i = dL/dv_i
    M = _in_range(sp.diff(p, _v[_j]))                      # M_ij = d^2 T / dv_i dv_j
    E = _canon(sp.Sum(_v[_i] * p, (_i, 1, DIM)).doit() - T_kin)  # v.p - L, less V(x)
    return dict(s=s, V=V, T=T_kin, p=p, M=M, E_kin=E)


def _derive_el() -> Derivation:
    e = _el()
    s, p, M, E = e["s"], e["p"], e["M"], e["E_kin"]
    steps = [Step("L(x, v) = m|v|^2/2 + beta3 |v|^4/4 - V(x), x, v in R^n, n symbolic, "
                  "|v|^2 = Sum(v_k^2, k = 1..n) (paper Sec. 3, Eq. 3)", e["T"] - e["V"](_x))]
    d = sp.simplify(p - _canon((mass + beta3 * s) * _v[_i]))
    steps.append(Step("momentum p_i = dL/dv_i = (m + beta3|v|^2) v_i", d, is_zero(d)))
    d = sp.simplify(M - _canon((mass + beta3 * s) * sp.KroneckerDelta(_i, _j)
                               + 2 * beta3 * _v[_i] * _v[_j]))
    steps.append(Step("mass tensor M_ij = d^2T/dv_i dv_j = (m + beta3|v|^2) delta_ij + 2 beta3 v_i v_j",
                      d, is_zero(d)))
    d = sp.simplify(M - M.subs({_i: _j, _j: _i}, simultaneous=True))
    steps.append(Step("M is symmetric: M_ij - M_ji = 0", d, is_zero(d)))
    along = _in_range(sp.Sum(M * _v[_j], (_j, 1, DIM)))
    d = sp.simplify(along - _canon((mass + 3 * beta3 * s) * _v[_i]))
    steps.append(Step("along v: sum_j M_ij v_j = (m + 3 beta3|v|^2) v_i  (longitudinal effective mass)",
                      d, is_zero(d)))
    across = _in_range(sp.Sum(M * _u[_j], (_j, 1, DIM)))
    d = sp.simplify((across - _canon((mass + beta3 * s) * _u[_i]))
                    .subs(sp.Sum(_u[_k] * _v[_k], (_k, 1, DIM)), 0))
    steps.append(Step("across v (u.v = 0): sum_j M_ij u_j = (m + beta3|v|^2) u_i (transverse "
                      "effective mass)", d, is_zero(d)))
    steps.append(Step("Euler-Lagrange d/dt dL/dv = dL/dx with d/dt p_i(v(t)) = sum_j M_ij dv_j/dt: "
                      "the ODE M(v) dv/dt = -grad V(x), dx/dt = v", lemma="chain rule"))
    d = sp.simplify(E - _canon(mass * s / 2 + 3 * beta3 * s**2 / 4))
    steps.append(Step("energy E = v.p - L = m|v|^2/2 + 3 beta3 |v|^4/4 + V(x)", d, is_zero(d)))
    dEdv = _in_range(sp.diff(E, _v[_i]))
    d = sp.simplify(dEdv - along)
    steps.append(Step("dE/dv_i = sum_j M_ij v_j (the longitudinal mass times v_i)", d, is_zero(d)))
    bracket = _in_range(sp.Sum(_v[_i] * M, (_i, 1, DIM))).subs(_j, _i) - along
    d = sp.simplify(bracket)
    steps.append(Step("dE/dt = sum_i dE/dv_i a_i + sum_i dV/dx_i v_i with a = dv/dt, M a = -grad V: "
                      "= sum_j a_j (sum_i M_ij v_i - sum_i v_i M_ij) after exchanging the finite "
                      "sums; the bracket is 0 by symmetry", d, is_zero(d)))
    steps.append(Step("the exchange of the two finite sums over i, j used above",
                      lemma="exchange of finite sums"))
    U = sp.Function("U")
    r2 = sp.Sum(_x[_k] ** 2, (_k, 1, DIM))
    gradV = _in_range(sp.diff(U(r2), _x[_j]))
    pi, pj = p, p.subs(_i, _j)
    pdot_i, pdot_j = -gradV.subs(_j, _i), -gradV
    dJ = sp.simplify(_v[_i] * pj + _x[_i] * pdot_j - _v[_j] * pi - _x[_j] * pdot_i)
    steps.append(Step("central V = U(|x|^2): every angular momentum J_ij = x_i p_j - x_j p_i is "
                      "conserved (Noether): dJ_ij/dt = v_i p_j + x_i dp_j/dt - (i <-> j) with "
                      "dp/dt = -grad V = -2 U'(|x|^2) x", dJ, is_zero(dJ)))
    x1, v1 = sp.Symbol("x", real=True), sp.Symbol("v", real=True)
    M1 = _in_range(along.subs(DIM, 1) / _v[_i]).subs(_i, 1).doit().subs(_v[1], v1)
    d = sp.simplify(M1 - (mass + 3 * beta3 * v1**2))
    ode1 = sp.Eq(sp.Symbol("vdot"), -sp.diff(sp.Function("V")(x1), x1) / M1)
    steps.append(Step("1-D (n = 1, v parallel to the motion): dv/dt = -V'(x)/(m + 3 beta3 v^2) "
                      "(paper Sec. 3)", d, is_zero(d)))
    b3p = sp.Symbol("beta3'", positive=True)
    sv = sp.Symbol("s", nonnegative=True)  # |v|^2
    inv_mass = (alpha0 / (mass + 3 * beta3 * sv)).subs(mass, 1).subs(beta3, b3p / 3)
    d = sp.simplify(inv_mass - vr_gate(alpha0, sv, {"beta3": b3p, "alpha1": alpha1}, OPEN))
    steps.append(Step("paper's eta_t: the inverse longitudinal mass, reparametrised (m -> 1, "
                      "3 beta3 -> beta3'), scales alpha0: alpha0/(m + 3 beta3 |v|^2) is "
                      "rules.vr_gate on its open branch, alpha0/(1 + beta3' |v|^2); clipping the "
                      "penalty at alpha1 gives Alg. 1 l.7.  Only the longitudinal mass is used: "
                      "the transverse one has no counterpart in the optimizer, and the ODE itself "
                      "is never integrated by it", d, is_zero(d)))
    return Derivation.from_steps(ode1, steps)


def _at_dim2(e):
    """An index-notation expression at ``n = 2`` in the symbols ``v1, v2``."""
    vs = sp.symbols("v1 v2", real=True)
    return e.subs(DIM, 2).doit().subs({_v[1]: vs[0], _v[2]: vs[1]}), vs


@functools.lru_cache(maxsize=None)
def el_system():
    """Numeric pieces of the derived ODE in two dimensions (lambdified):
    ``(mass_tensor, kinetic, momentum)``.

    ``mass_tensor(v1, v2, m, beta3)`` is ``M_ij`` (2x2), ``kinetic`` the kinetic part
    ``E - V`` of the conserved energy, ``momentum`` ``p = dL/dv``; all taken from the
    symbolic-dimension derivation at ``n = 2``, so a numeric check of them tests it.
    """
    e = _el()
    M = sp.Matrix(2, 2, lambda r, c: _at_dim2(e["M"].subs({_i: r + 1, _j: c + 1}))[0])
    p = sp.Matrix(2, 1, lambda r, c: _at_dim2(e["p"].subs(_i, r + 1))[0])
    kin, vs = _at_dim2(e["E_kin"])
    args = [*vs, mass, beta3]
    return (sp.lambdify(args, M, "numpy"), sp.lambdify(args, kin, "numpy"),
            sp.lambdify(args, p, "numpy"))


@functools.lru_cache(maxsize=None)
def _effective_masses():
    """``(along, across)`` coefficients ``M v = along v``, ``M u = across u`` from the derivation,
    as functions of ``(m, beta3, speed)``."""
    e = _el()
    speed = sp.Symbol("speed", nonnegative=True)
    s_sub = {e["s"]: speed**2}
    along = sp.simplify((_in_range(sp.Sum(e["M"] * _v[_j], (_j, 1, DIM))) / _v[_i]).subs(s_sub))
    across = _in_range(sp.Sum(e["M"] * _u[_j], (_j, 1, DIM)))
    across = sp.simplify((across.subs(sp.Sum(_u[_k] * _v[_k], (_k, 1, DIM)), 0) / _u[_i]).subs(s_sub))
    return sp.lambdify((mass, beta3, speed), (along, across), "numpy")


def effective_mass(m=1.0, beta3=1.0, speed=1.0) -> dict:
    """The derived effective masses ``{"along": m + 3 beta3 |v|^2, "across": m + beta3 |v|^2}``
    (evaluated from the sympy derivation, numpy-broadcasting)."""
    along, across = _effective_masses()(m, beta3, speed)
    return {"along": along, "across": across}


register(Claim(
    id="vradam.euler_lagrange",
    title="Quartic kinetic energy: Euler-Lagrange ODE, effective mass m + 3 beta3|v|^2 along v "
          "and m + beta3|v|^2 across, and the gate eta_t as the inverse longitudinal mass",
    source="VRAdam (arXiv 2505.13196), Sec. 3, Eq. 3 and Alg. 1 l.7",
    statement=r"L=\tfrac m2\|v\|^2+\tfrac{\beta_3}{4}\|v\|^4-V(x)\Rightarrow "
              r"\big((m+\beta_3\|v\|^2)I+2\beta_3vv^\top\big)\dot v=-\nabla V,\ "
              r"E=\tfrac m2\|v\|^2+\tfrac{3\beta_3}{4}\|v\|^4+V\ \text{conserved}",
    assumptions=("x, v in R^n, n symbolic (index notation, sums over 1..n)",
                 "V twice differentiable; m, beta3 > 0"),
    derive_fn=_derive_el, predict_fn=effective_mass,
    quantities="predicted: effective masses (along, across v) at sample (m, beta3, |v|) from the "
               "derivation; measured: the same from a finite-difference Hessian of T(v) written "
               "in numpy; error: max relative difference (also: drift of E and J along the "
               "integrated ODE)",
    pass_rule="masses within 1e-6 relative and E (and J) conserved to 1e-6 along DOP853 "
              "trajectories; wrong (isotropic) mass tensors must break conservation"))


# ============================================================ 2. period-2 orbit
def vr_map(ops=OPEN, rule: str = "vr_momentum"):
    """One step of ``rules.vr_momentum`` on ``f = lam w^2/2`` as a map of ``(w, m_prev)``.

    Returns the images ``(w', m')`` as sympy expressions in ``_w, _m`` (``ops=OPEN``: the gate
    on its open branch).
    """
    rul = get_rule(rule)
    hyper = rul.hyper(lr=alpha0, momentum=beta, beta3=beta3, alpha1=alpha1)
    w1, st = rul.step(_w, lam * _w, {"momentum_buffer": _m}, hyper, ops)
    return sp.Matrix([w1, st["momentum_buffer"]])


def _compose(F, G):
    """``F(G(z))`` for maps given as images in ``(_w, _m)``."""
    return F.subs({_w: G[0], _m: G[1]}, simultaneous=True)


Vamp = sp.Symbol("V", positive=True)  # velocity amplitude on the orbit


def _orbit_subs():
    """The orbit in rational form: ``alpha0 = r B/lam``, ``beta3 = (r-1)/V^2`` (i.e.
    ``V^2 = (r-1)/beta3``), point ``(X, m_prev) = ((1+beta1) V/((1-beta1) lam), -V)``."""
    X = (1 + beta) / ((1 - beta) * lam) * Vamp
    return {alpha0: r * B(beta) / lam, beta3: (r - 1) / Vamp**2}, X, Vamp


def _rat(M):
    return M.applyfunc(lambda e: sp.factor(sp.cancel(sp.together(e))))


@functools.lru_cache(maxsize=None)
def _orbit():
    F = vr_map()
    Xs, Ms = sp.symbols("X M", real=True)
    F_at = F.subs({_w: Xs, _m: Ms}, simultaneous=True)
    sols = sp.solve([F_at[0] + Xs, F_at[1] + Ms], [Xs, Ms], dict=True)
    return F, Xs, Ms, sols


def two_step_jacobian():
    """``(J2, DF)`` at the orbit point ``(X, -V)``: the two-step Jacobian and the one-step one."""
    F = vr_map()
    F2 = _compose(F, F)
    subs, X, Vv = _orbit_subs()
    at = {_w: X, _m: -Vv}
    J2 = F2.jacobian([_w, _m]).subs(subs).subs(at, simultaneous=True)
    DF = F.jacobian([_w, _m]).subs(subs).subs(at, simultaneous=True)
    return _rat(J2), _rat(DF)


def _derive_orbit() -> Derivation:
    F, Xs, Ms, sols = _orbit()
    steps = [Step("one step of rules.vr_momentum on sympy symbols, f = lambda w^2/2, state "
                  "z = (w, m_{t-1}); gate on its open branch (beta3 m^2 <= alpha1: Min -> "
                  "beta3 m_t^2)", F)]
    odd = (F.subs({_w: -_w, _m: -_m}, simultaneous=True) + F).applyfunc(sp.simplify)
    steps.append(Step("the map is odd, F(-z) = -F(z): a point with F(z) = -z lies on a period-2 "
                      "orbit z, -z, z, ... (F(F(z)) = F(-z) = z)", odd, _zero(odd)))
    nontrivial = [s for s in sols if s[Ms] != 0]
    steps.append(Step("solve F(X, M) = (-X, -M) for (X, M): the nontrivial solutions", nontrivial))
    eta_orbit = vr_gate(alpha0, Ms**2, _GATE_H, OPEN)
    ok_eta = [sp.simplify(eta_orbit.subs(s) - B(beta) / lam) for s in nontrivial]
    steps.append(Step("on each solution the rate is pinned at the threshold: eta_t - B(beta1)/lambda = 0",
                      sp.Matrix(ok_eta), all(_zero(e) for e in ok_eta)))
    V2 = (alpha0 * lam / B(beta) - 1) / beta3
    ok_v = [sp.simplify(s[Ms]**2 - V2) for s in nontrivial]
    steps.append(Step("velocity amplitude V^2 = m_t^2 = (alpha0 lambda/B - 1)/beta3",
                      sp.Matrix(ok_v), all(_zero(e) for e in ok_v)))
    ok_x = [sp.simplify(s[Xs]**2 - (B(beta) / (2 * lam))**2 * s[Ms]**2) for s in nontrivial]
    steps.append(Step("position amplitude |X| = B |V|/(2 lambda) (X^2 - (B/(2 lambda))^2 V^2 = 0; "
                      "X and the velocity m_t = -M have the same sign)", sp.Matrix(ok_x),
                      all(_zero(e) for e in ok_x)))
    subs, X, Vv = _orbit_subs()
    F2 = _compose(F, F)
    res = _rat(F2.subs(subs).subs({_w: X, _m: -Vv}, simultaneous=True) - sp.Matrix([X, -Vv]))
    steps.append(Step("the two-step map (the rule composed twice) returns the point: with "
                      "alpha0 = r B/lambda, V^2 = (r-1)/beta3, X = (1+beta1) V/((1-beta1) lambda): "
                      "F(F(X, -V)) - (X, -V) = 0", res, _zero(res)))
    gate = sp.simplify((beta3 * Vv**2).subs(subs) - (r - 1))
    steps.append(Step("existence: V^2 > 0 iff r > 1 (alpha0 lambda > B); the open branch holds iff "
                      "beta3 V^2 = r - 1 <= alpha1, i.e. alpha0 lambda <= B(1 + alpha1).  On the "
                      "saturated branch eta = alpha0/(1+alpha1) is constant and the map linear: a "
                      "2-cycle needs eta lambda = B exactly (the end point r = 1 + alpha1)",
                      gate, _zero(gate)))
    J2, DF = two_step_jacobian()
    d = _rat(J2 - DF * DF)
    steps.append(Step("two-step Jacobian at the orbit: F odd makes DF even, so "
                      "J2 = DF(-z) DF(z) = DF(z)^2; eigenvalues of J2 are squares of those of DF",
                      d, _zero(d)))
    mu = sp.Symbol("mu")
    p = DF.charpoly(mu).as_expr()
    he = B(beta) * (2 - r) / r
    ema = mu**2 - (1 + beta - he * (1 - beta)) * mu + beta
    d = sp.simplify(p - ema)
    steps.append(Step("det(mu I - DF) is EMA momentum's p(mu) with an effective eta lambda = "
                      "B (2 - r)/r (the slope of eta(m) m at the orbit)", d, _zero(d)))
    p1, pm1 = sp.factor(p.subs(mu, 1)), sp.factor(p.subs(mu, -1))
    c1 = _zero(p1 - 2 * (1 + beta) * (2 - r) / r)
    c2 = _zero(pm1 - 4 * (1 + beta) * (r - 1) / r)
    steps.append(Step("Jury: p(0) = beta1 in [0, 1); p(1) = 2(1+beta1)(2-r)/r; "
                      "p(-1) = 4(1+beta1)(r-1)/r", sp.Tuple(p.subs(mu, 0), p1, pm1), c1 and c2))
    region = sp.And(r > 1, r < 2)
    steps.append(Step("so (2(1+beta1)/r > 0, |p(0)| < 1) the orbit attracts (rho(J2) < 1) iff "
                      "1 < r < 2: B(beta1) < alpha0 lambda < 2 B(beta1), for every beta1 in [0, 1) "
                      "-- with existence, B < alpha0 lambda < B min(2, 1 + alpha1).  For alpha1 > 1 "
                      "the orbit exists but repels on 2B < alpha0 lambda <= B(1 + alpha1)", region))
    steps.append(Step("full VRAdam, second moment frozen (sqrt(v_hat) = P, late time): see "
                      "_vradam_conjugacy -- the same orbit with lambda~ = lambda/(P + eps)", None))
    steps += _vradam_conjugacy()
    V_cl = sp.sqrt((alpha0 * lam / B(beta) - 1) / beta3)
    expr = sp.Tuple(B(beta) * V_cl / (2 * lam), V_cl, B(beta) / lam)
    return Derivation.from_steps(expr, steps)


def _vradam_conjugacy() -> list[Step]:
    """Frozen VRAdam (P + eps = Q) equals VRMomentum with lam~ = lam/Q, beta3~ = beta3 Q^2, m = Q m~."""
    Vs, P, eps = sp.Symbol("V_2nd", positive=True), sp.Symbol("P", positive=True), \
        sp.Symbol("epsilon", nonnegative=True)
    lt = sp.Symbol("lambda_t", positive=True)
    rule = get_rule("vradam")
    hyper = rule.hyper(lr=alpha0, betas=(beta, sp.Symbol("beta2", positive=True)), beta3=beta3,
                       alpha1=alpha1, eps=eps)
    st = one_step(rule, hyper, lt * (P + eps), dynamic=("exp_avg",),
                  fixed_state={"step": T, "exp_avg_sq": Vs},
                  freeze=(sqrt_containing(Vs, P, "preconditioner sqrt(v_hat)"),), ops=OPEN)
    Fv = sp.Matrix(st.images).subs(dict(zip(st.variables, (_w, _m))))
    Q = P + eps
    Fm = vr_map().subs({lam: lt, beta3: beta3 * Q**2}, simultaneous=True)
    conj = (Fv.subs(_m, Q * _m) - sp.Matrix([Fm[0], Q * Fm[1]])).applyfunc(sp.simplify)
    return [Step("rules.vradam on symbols, sqrt(v_hat) frozen at P, late time (bias corrections "
                 "1), open gate, f = lambda w^2/2 with lambda = lambda_t (P + eps)", Fv),
            Step("with m = (P+eps) m~ it is rules.vr_momentum with curvature lambda_t = "
                 "lambda/(P+eps) and penalty beta3 (P+eps)^2: so eta = B/lambda_t, "
                 "V^2 = m^2 = (alpha0 lambda_t/B - 1)/beta3, |X| = B|V|/(2 lambda), same range "
                 "in alpha0 lambda_t", conj, _zero(conj))]


@functools.lru_cache(maxsize=None)
def _orbit_fns():
    expr = _derive_orbit_expression()
    args = (lam, alpha0, beta, beta3)
    return sp.lambdify(args, expr, "numpy")


def _derive_orbit_expression():
    """(X, V, eta) from the sympy solution of F(X, M) = -(X, M) (velocity m_t = -M > 0 branch)."""
    _, Xs, Ms, sols = _orbit()
    sample = {lam: 1, alpha0: 57, beta: sp.Rational(9, 10), beta3: 1}  # picks the branch only
    sol = next(s for s in sols if s[Ms] != 0 and float(s[Ms].subs(sample)) < 0)
    eta = vr_gate(alpha0, sol[Ms]**2, _GATE_H, OPEN)
    return sp.Tuple(sp.Abs(sol[Xs]), -sol[Ms], sp.simplify(eta))


def period2_orbit(lam, alpha0, beta1, beta3, alpha1):
    """Predicted period-2 orbit ``(|X|, V, eta)`` of VRMomentum on ``f = lam w^2/2``.

    From the solved two-step equations (lambdified); ``nan`` outside the existence range
    ``B(beta1) < alpha0 lam <= B(beta1)(1 + alpha1)``.  For full VRAdam with the second
    moment frozen at ``P`` pass ``lam / (P + eps)`` (then ``|X|`` is ``B V / (2 lam_true)``
    = the returned ``|X|`` divided by ``P + eps``).  Numpy-broadcasting.
    """
    lam_, a0 = np.asarray(lam, float), np.asarray(alpha0, float)
    with np.errstate(invalid="ignore"):
        X, V, eta = (np.asarray(v, float) for v in _orbit_fns()(lam_, a0, beta1, beta3))
    ratio = a0 * lam_ / B(beta1)
    ok = (ratio > 1) & (ratio <= 1 + np.asarray(alpha1, float))
    nan = np.nan
    return np.where(ok, X, nan), np.where(ok, V, nan), np.where(ok, eta, nan)


@functools.lru_cache(maxsize=None)
def _radius_fn():
    _, DF = two_step_jacobian()
    ev = list(DF.eigenvals())
    return sp.lambdify((r, beta, lam, Vamp), [e**2 for e in ev], "numpy")


def period2_radius(ratio, beta1):
    """Spectral radius of the two-step Jacobian at the orbit, ``ratio = alpha0 lam / B(beta1)``."""
    ev = _radius_fn()(np.asarray(ratio, complex), beta1, 1.0, 1.0)
    return np.max(np.abs(np.asarray(ev, complex)), axis=0)


register(Claim(
    id="vradam.period2_orbit",
    title="Period-2 orbit at the edge of stability: rate pinned at B/lambda, "
          "V^2 = (alpha0 lambda/B - 1)/beta3, |X| = B|V|/(2 lambda); exists on "
          "B < alpha0 lambda <= B(1+alpha1) but attracts only for alpha0 lambda < 2B",
    source="VRAdam (arXiv 2505.13196), Sec. 4 (gated EoS, damped oscillations); orbit derived "
           "here from the rule (see the derivation steps)",
    statement=r"\eta=\tfrac{B}{\lambda},\ V^2=\tfrac{\alpha_0\lambda/B-1}{\beta_3},\ |X|=\tfrac{B|V|}"
              r"{2\lambda}\ \text{for}\ B<\alpha_0\lambda\le B(1+\alpha_1);\ \rho(J_2)<1\iff "
              r"B<\alpha_0\lambda<2B",
    assumptions=("f = lambda w^2/2; VRMomentum (rules.vr_momentum) or full VRAdam with "
                 "sqrt(v_hat) frozen and late time (then lambda -> lambda/(P + eps))",
                 "gate on its open branch beta3 m^2 <= alpha1 (the orbit's own condition)",
                 "beta1 in [0, 1); 'attracts' = linear (local) stability of the orbit"),
    derive_fn=_derive_orbit,
    quantities="predicted: edge of the attracting range r = alpha0 lambda/B = 2 (per beta1) and "
               "the orbit (|X|, V) per grid cell; measured: from long simulations of "
               "rules.vr_momentum, the cells that end on a period-2 pair, their amplitude, and the "
               "last such r; error: relative error of the edge",
    pass_rule="edge within half a grid cell, amplitude within 1e-6 on every decided 2-cycle cell, "
              "2-cycle cells = cells with derived rho(J2) < 1, frozen-P VRAdam likewise",
    predict_fn=lambda lam=1.0, alpha0=1.5 * 38, beta1=0.9, beta3=1.0, alpha1=10.0:
        tuple(float(x) for x in period2_orbit(lam, alpha0, beta1, beta3, alpha1))))


# ============================================================ 3. update bound
_b1, _b2 = sp.Symbol("beta1", positive=True), sp.Symbol("beta2", positive=True)


@functools.lru_cache(maxsize=None)
def _ratio_bound_expr():
    """``C(beta1, beta2) = (1-beta1) sqrt(sum_j (beta1^2/beta2)^j / (1-beta2))`` with the series
    summed by sympy on its convergent branch (``beta1^2 < beta2``)."""
    j = sp.Symbol("j", integer=True, nonnegative=True)
    geo = sp.summation((_b1**2 / _b2) ** j, (j, 0, sp.oo))
    if isinstance(geo, sp.Piecewise):  # the branch whose condition is the convergence |b1^2/b2| < 1
        geo = next(val for val, cond in geo.args if cond.has(sp.Abs) or cond.has(sp.StrictLessThan))
    return sp.simplify(geo), (1 - _b1) * sp.sqrt(geo / (1 - _b2))


@functools.lru_cache(maxsize=None)
def _ratio_bound_fn():
    return sp.lambdify((_b1, _b2), _ratio_bound_expr()[1], "numpy")


def adam_ratio_bound(beta1, beta2):
    """``C = sup |m_t|/sqrt(v_t) = (1-beta1)/sqrt((1-beta2)(1 - beta1^2/beta2))`` (beta1^2 < beta2),
    evaluated from the derivation of ``vradam.update_bound`` (Cauchy-Schwarz on
    ``m_t = (1-b1) sum b1^j g_{t-j}`` against ``v_t = (1-b2) sum b2^j g_{t-j}^2``, zero initial
    moments, late time); equality in the limit ``|g_{t-j}| ~ (b1/b2)^j``."""
    return _ratio_bound_fn()(beta1, beta2)


@functools.lru_cache(maxsize=None)
def _bound_pieces():
    """The open-branch supremum, the saturated step, and their max (the derived bound) in ``s``."""
    s = sp.Symbol("s", positive=True)  # s = ||m_t||
    step_open = vr_gate(alpha0, s**2, _GATE_H, OPEN) * s
    crit = sp.solve(sp.diff(step_open, s), s)
    sup_open = sp.simplify(step_open.subs(s, crit[0]))
    step_sat = vr_gate(alpha0, s**2, _GATE_H, SATURATED) * s
    return s, step_open, crit, sup_open, step_sat, alpha0 * sp.Max(sup_open / alpha0, step_sat / alpha0)


def _derive_bound() -> Derivation:
    w, g, mp = (sp.IndexedBase(x)[INDEX] for x in ("w", "g", "p"))
    rule = get_rule("vr_momentum")
    w1, st = rule.step(w, g, {"momentum_buffer": mp},
                       rule.hyper(lr=alpha0, momentum=beta, beta3=beta3, alpha1=alpha1),
                       SYMPY_INDEXED)
    dw, m, eta = w1 - w, st["momentum_buffer"], st["eta"]
    gap = sp.simplify(_canon(SYMPY_INDEXED.inner(dw, dw) - eta**2 * SYMPY_INDEXED.inner(m, m)))
    steps = [Step("rules.vr_momentum on n-vectors (n symbolic, sympy indexed mode): "
                  "||w_t - w_(t-1)||^2 - eta_t^2 ||m_t||^2 = 0", gap, is_zero(gap))]
    s, step_open, crit, sup_open, step_sat, bound = _bound_pieces()
    steps.append(Step("open gate (beta3 s^2 <= alpha1), s = ||m_t||: the step alpha0 s/(1 + beta3 "
                      "s^2) (rules.vr_gate) is stationary only at s = 1/sqrt(beta3)",
                      sp.Tuple(*crit), len(crit) == 1 and is_zero(crit[0] - 1 / sp.sqrt(beta3))))
    slack = sup_open - step_open
    square = alpha0 * (1 - sp.sqrt(beta3) * s)**2 / (2 * sp.sqrt(beta3) * (1 + beta3 * s**2))
    ident = sp.simplify(slack - square)
    steps.append(Step(f"so the open-branch step is at most its value there, {sp.sstr(sup_open)}: "
                      "the slack equals alpha0 (1 - sqrt(beta3) s)^2/(2 sqrt(beta3)(1 + beta3 s^2)), "
                      "a square over positives (>= 0; = 0 at s = 1/sqrt(beta3))", ident,
                      is_zero(ident) and bool(square.is_nonnegative)))
    lim = sp.limit(step_sat, s, sp.oo)
    steps.append(Step(f"saturated gate (beta3 s^2 > alpha1): the step is {sp.sstr(step_sat)}, "
                      "unbounded in s -- the cap the paper says 'only lowers' the step removes "
                      "the bound", lim, lim is sp.oo))
    s_star = sp.solve(sp.Eq(step_sat, sup_open), s)
    amgm = sp.factor(s_star[0]**2 - alpha1 / beta3) if s_star else sp.nan
    steps.append(Step("the saturated step exceeds alpha0/(2 sqrt(beta3)) iff s > s* = "
                      f"{sp.sstr(s_star[0]) if s_star else '?'}; s* is past the saturation point "
                      "sqrt(alpha1/beta3): s*^2 - alpha1/beta3 = (1 - alpha1)^2/(4 beta3) >= 0",
                      amgm, bool(s_star) and is_zero(amgm - (1 - alpha1)**2 / (4 * beta3))))
    steps.append(Step("hence (each branch below its own term) ||w_t - w_(t-1)|| <= "
                      f"{sp.sstr(bound)}", bound))
    t, jj = sp.Symbol("t", integer=True, positive=True), sp.Symbol("j", integer=True, nonnegative=True)
    weights = sp.simplify(sp.summation((1 - beta) * beta**jj, (jj, 0, t - 1)) - (1 - beta**t))
    steps.append(Step("with m_0 = 0, m_t = (1 - beta1) sum_{j<t} beta1^j g_{t-j}: weights summing to "
                      "1 - beta1^t <= 1", weights, is_zero(weights)))
    steps.append(Step("so ||m_t|| <= max_k ||g_k||, and bounded gradients G give the bound at s = G",
                      lemma="triangle inequality"))
    geo, C = _ratio_bound_expr()
    d = sp.simplify(geo - 1 / (1 - _b1**2 / _b2))
    steps.append(Step("full VRAdam, per coordinate (late time, eps = 0): the geometric series "
                      "sum_j (beta1^2/beta2)^j = 1/(1 - beta1^2/beta2) for beta1^2 < beta2", d,
                      is_zero(d)))
    steps.append(Step("|m_t| = (1-b1)|sum_j b1^j g_{t-j}| <= (1-b1) sqrt(sum_j (b1^2/b2)^j) "
                      "sqrt(sum_j b2^j g_{t-j}^2) and v_t = (1-b2) sum_j b2^j g_{t-j}^2 (v_0 = 0), "
                      "so |m_t|/sqrt(v_t) <= C(b1, b2) = " + sp.sstr(C)
                      + " (7.27 at 0.9, 0.999); eta_t <= alpha0, so ||w_t - w_(t-1)||_inf <= "
                      "alpha0 C: a bound without beta3 (measured in the check)",
                      lemma="Cauchy-Schwarz"))
    return Derivation.from_steps(bound, steps)


@functools.lru_cache(maxsize=None)
def _bound_fn():
    s, *_, bound = _bound_pieces()
    return sp.lambdify((alpha0, beta3, alpha1, s), bound, "numpy")


def step_bound(alpha0=1.0, beta3=1.0, alpha1=10.0, norm_m=None):
    """The derived bound ``alpha0 max(1/(2 sqrt beta3), ||m_t||/(1 + alpha1))`` on VRMomentum's
    step (from the derivation; ``norm_m=None``: the paper's open-branch value, ``||m|| = 0``)."""
    return _bound_fn()(alpha0, beta3, alpha1, 0.0 if norm_m is None else norm_m)


register(Claim(
    id="vradam.update_bound",
    title="[paper bound refuted once the gate saturates] momentum-only step "
          "eta_t||m_t|| <= alpha0/(2 sqrt beta3) holds iff ||m_t|| <= (1+alpha1)/(2 sqrt beta3); "
          "in general <= alpha0 max(1/(2 sqrt beta3), ||m_t||/(1+alpha1)); full VRAdam: <= alpha0 C "
          "per coordinate, no beta3 bound",
    source="VRAdam (arXiv 2505.13196), Sec. 4, update-norm bound",
    statement=r"\|w_t-w_{t-1}\|=\eta_t\|m_t\|\le\alpha_0\max\big(\tfrac{1}{2\sqrt{\beta_3}},"
              r"\tfrac{\|m_t\|}{1+\alpha_1}\big);\ \le\tfrac{\alpha_0}{2\sqrt{\beta_3}}\iff "
              r"\|m_t\|\le\tfrac{1+\alpha_1}{2\sqrt{\beta_3}}",
    assumptions=("VRMomentum (rules.vr_momentum), any dimension (n symbolic), gate on the norm "
                 "of m_t after the update", "full VRAdam: late time, eps = 0, beta1^2 < beta2"),
    derive_fn=_derive_bound, predict_fn=step_bound,
    quantities="predicted: the derived bound's constants (1/(2 sqrt beta3), 1/(1 + alpha1)) and "
               "C(beta1, beta2); measured: per run the max step and max ||m_t|| of simulated "
               "rules.vr_momentum, and full VRAdam's max step under the extremal gradients; "
               "error: max over runs of step/bound - 1",
    pass_rule="step <= bound to round-off (1e-12) on every run, the bound attained (max ratio > "
              "0.99), the paper's alpha0/(2 sqrt beta3) exceeded exactly when ||m|| > "
              "(1 + alpha1)/(2 sqrt beta3), and full VRAdam's extremal step within 1% of alpha0 C"))


# ============================================================ 4. Lyapunov (switched system)
@functools.lru_cache(maxsize=None)
def _switched():
    """A(h) of the momentum-only map in coordinates (u, m) = (lam w, m), gate frozen at eta."""
    G, eta = sp.Symbol("G", nonnegative=True), sp.Symbol("eta", positive=True)
    rule = get_rule("vr_momentum")
    st = one_step(rule, rule.hyper(lr=alpha0, momentum=beta, beta3=beta3, alpha1=alpha1), lam,
                  dynamic=("momentum_buffer",), freeze=(min_node(G, "VRAdam gate"),), late=False)
    F = sp.Matrix(st.images).subs(dict(zip(st.variables, (_w, _m))))
    frozen = dataclasses.replace(SYMPY_SCALAR, minimum=lambda a, cap: G)
    a0_of_eta = sp.solve(sp.Eq(eta, vr_gate(alpha0, 0, _GATE_H, frozen)), alpha0)[0]
    F = F.subs(alpha0, a0_of_eta)  # eta_t = rules.vr_gate frozen at G: any gate value
    u = sp.Symbol("u", real=True)
    Fu = sp.Matrix([lam * F[0], F[1]]).subs(_w, u / lam)
    A = Fu.jacobian([u, _m]).subs(eta, h / lam).applyfunc(sp.simplify)
    return F, Fu, A, u, eta


@functools.lru_cache(maxsize=None)
def _switched_fn():
    return sp.lambdify((h, beta), list(_switched()[2]), "numpy")


def switched_matrix(hv, beta1):
    """Numeric ``A(h)`` (state ``(lam w, m)``) from the symbolic matrix; ``h`` may be an array
    (result shape ``h.shape + (2, 2)``)."""
    hv = np.asarray(hv, float)
    entries = [np.broadcast_to(np.asarray(e, float), hv.shape) for e in _switched_fn()(hv, beta1)]
    return np.stack(entries, axis=-1).reshape(hv.shape + (2, 2))


#: exact counterexample to the arbitrary-gate claim: beta1 = 9/10 (B = 38), alpha0 lam = 36 < 38,
#: alpha1 = 10; gates alternate eta = alpha0, alpha0/11.
COUNTEREXAMPLE = {"beta1": sp.Rational(9, 10), "h_hi": sp.Integer(36), "h_lo": sp.Rational(36, 11)}


def _derive_lyapunov() -> Derivation:
    F, Fu, A, u, eta = _switched()
    steps = [Step("rules.vr_momentum on symbols with the gate frozen at any value G "
                  "(eta_t = alpha0/(1+G) in [alpha0/(1+alpha1), alpha0]): the map of (w, m)", F)]
    d = (Fu.subs(eta, h / lam) - A * sp.Matrix([u, _m])).applyfunc(sp.simplify)
    steps.append(Step("in coordinates (u, m) = (lambda w, m) the map is z -> A(h) z with h = eta_t "
                      "lambda only: linear, and lambda enters only through h", d, _zero(d)))
    steps.append(Step("A(h)", A))
    d2 = A.diff(h, 2)
    steps.append(Step("A(h) is affine in h: d^2 A/dh^2 = 0", d2, _zero(d2)))
    p11, p12, p22, rho2_ = sp.symbols("p11 p12 p22 rho2", real=True)
    Pm = sp.Matrix([[p11, p12], [p12, p22]])
    lmi = sp.BlockMatrix([[rho2_ * Pm, A.T * Pm], [Pm * A, Pm]]).as_explicit()
    d2 = lmi.diff(h, 2).applyfunc(sp.simplify)
    steps.append(Step("so the LMI L(h) = [[rho2 P, A^T P], [P A, P]] is affine in h for any "
                      "symmetric P: d^2 L/dh^2 = 0", d2, _zero(d2)))
    steps.append(Step("for P > 0, L(h) > 0 iff rho2 P - A(h)^T P A(h) > 0, i.e. V(A z) < rho2 V(z) "
                      "for all z != 0", lemma="Schur complement"))
    steps.append(Step("an affine L(h) that is positive definite at h_lo and h_hi is so on "
                      "[h_lo, h_hi]: a CQLF for every gate sequence and curvature exists iff the "
                      "two-vertex LMI is feasible", lemma="convexity of the positive-definite cone"))
    one = sp.factor((sp.eye(2) - A).det())
    steps.append(Step("det(I - A(h)) = (1-beta1) h: at zero curvature (h = 0) A has the eigenvalue 1, "
                      "so V(z_t) <= (1-eps) V(z_(t-1)) needs curvature >= mu > 0 (the issue's "
                      "[0, L] must be [mu, L])", one, _zero(one - (1 - beta) * h)))
    rho2, dl = sp.Symbol("rho2", positive=True), sp.Symbol("delta", positive=True)
    A0 = A.subs(beta, 0)
    P0 = sp.diag(1, dl)
    gap = (rho2 * P0 - A0.T * P0 * A0 - sp.diag(rho2 - (1 - h)**2 - dl, rho2 * dl)).applyfunc(sp.simplify)
    steps.append(Step("beta1 = 0 (gradient descent): P = diag(1, delta) gives rho2 P - A^T P A = "
                      "diag(rho2 - (1-h)^2 - delta, rho2 delta): a CQLF with rho2 = max (1-h)^2 + "
                      "delta < 1 for every gate sequence iff alpha0 L < 2 = B(0), as claimed", gap,
                      _zero(gap)))
    ce = COUNTEREXAMPLE
    Ah, Al = A.subs({beta: ce["beta1"], h: ce["h_hi"]}), A.subs({beta: ce["beta1"], h: ce["h_lo"]})
    M = Ah * Al
    ev = list(M.eigenvals())
    big = max(ev, key=lambda e: abs(float(e)))
    grows = is_true(sp.Abs(big) > 1)
    steps.append(Step("beta1 > 0: the paper's claim (a CQLF for every gate sequence whenever "
                      "alpha0 L < B) is false.  Exact counterexample: beta1 = 9/10 (B = 38), "
                      "alpha0 lambda = 36 < 38, alpha1 = 10, gates alternating eta = alpha0, "
                      "alpha0/11: A(36) A(36/11) has an eigenvalue of modulus > 1, so the "
                      "switched system grows and no Lyapunov function at all can exist",
                      sp.Tuple(M, big), grows))
    steps += _feasible_steps(A)
    return Derivation.from_steps(sp.Tuple(A, big), steps)


#: a feasible case: beta1 = 1/2 (B = 6), alpha0 L = 18/5, alpha1 = 1/5, curvature in [L/1.25, L]
#: -> h in [12/5, 18/5]; P is a certificate (any P > 0 would do), checked exactly here.
FEASIBLE = {"beta1": sp.Rational(1, 2), "h_lo": sp.Rational(12, 5), "h_hi": sp.Rational(18, 5),
            "P": sp.Matrix([[1, 1], [1, 3]])}


def feasible_rho2():
    """Exact contraction ``max_vertex lambda_max(A^T P A, P)`` of the feasible case."""
    A = _switched()[2]
    x = sp.Symbol("x")
    out = []
    for hv in (FEASIBLE["h_lo"], FEASIBLE["h_hi"]):
        Ah = A.subs({beta: FEASIBLE["beta1"], h: hv})
        out += sp.solve((Ah.T * FEASIBLE["P"] * Ah - x * FEASIBLE["P"]).det(), x)
    return sp.Max(*out)


def _feasible_steps(A):
    rho2 = feasible_rho2()
    return [Step("a feasible case: beta1 = 1/2 (B = 6), alpha0 L = 18/5, alpha1 = 1/5, curvature in "
                 "[L/1.25, L], so h in [12/5, 18/5]; P = [[1, 1], [1, 3]]: the largest generalized "
                 "eigenvalue of (A^T P A, P) at both vertices is rho2 = (109 + 3 sqrt(209))/200 < 1, "
                 "so V(z_t) <= rho2 V(z_(t-1)) for every gate sequence and curvature (vertex "
                 "reduction above)", rho2,
                 _zero(rho2 - (109 + 3 * sp.sqrt(209)) / 200) and is_true(rho2 < 1))]


register(Claim(
    id="vradam.lyapunov",
    title="[paper claim refuted for beta1 > 0] a common quadratic Lyapunov function for every gate "
          "sequence exists for beta1 = 0 (alpha0 L < 2) or when the two-vertex LMI is feasible; for "
          "beta1 = 0.9, alpha0 L = 36 < 38, alpha1 = 10 a gate sequence diverges",
    source="VRAdam (arXiv 2505.13196), Sec. 4, Thm 4.1 (uniform exponential stability of "
           "VRMomentum)",
    statement=r"z_t=A(\eta_t\lambda)z_{t-1},\ \eta_t\in[\tfrac{\alpha_0}{1+\alpha_1},\alpha_0]:\ "
              r"\exists P\succ0\ \forall t\ V(z_t)\le(1-\epsilon)V(z_{t-1})\iff\text{LMI at }"
              r"h\in\{\tfrac{\alpha_0\mu}{1+\alpha_1},\alpha_0L\};\ \text{not implied by }\alpha_0L<B",
    assumptions=("quadratic model, curvature in [mu, L] with mu > 0, eigen-directions decouple",
                 "arbitrary (not state-fed) gate sequences, as in Thm 4.1",
                 "P may depend on the eigen-direction's lambda through u = lambda w"),
    derive_fn=_derive_lyapunov,
    quantities="predicted: growth per period |mu| of the exact counterexample and the exact "
               "contraction rho2 of the certificate P; measured: the same with rules.ema_momentum "
               "(simulated growth; numpy eigenvalues of the rule's own matrices); error: max "
               "relative difference",
    pass_rule="both within 1e-9, growth > 1 > rho2, random gate sequences never exceed rho2, "
              "and the side facts (growth past B, beta1 = 0 case, no CQLF at the paper's "
              "setting) hold"))
