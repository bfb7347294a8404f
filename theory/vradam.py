"""VRAdam's dynamics claims (``vradam.*``): Lagrangian, period-2 orbit, step bound, Lyapunov.

Vaidhyanathan, Schorling, Ares, Osborne, "A Physics-Inspired Optimizer: Velocity Regularized
Adam", arXiv 2505.13196 (notes: ``shared/reference/vradam.md`` Sec. 1-3).  Every map below is
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
from momentumlab.theory.ops import SYMPY_SCALAR
from momentumlab.theory.rules import get_rule

__all__ = ["B", "period2_orbit", "period2_radius", "vr_map", "two_step_jacobian",
           "effective_mass", "el_system", "lyapunov_matrix", "switched_matrix",
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


def B(b):
    """``B(beta) = 2(1+beta)/(1-beta)``: EMA momentum is stable iff ``eta lam < B`` (paper Sec. 4)."""
    return 2 * (1 + b) / (1 - b)


#: gate on its open branch, beta3 ||m||^2 <= alpha1: ``min(a, alpha1) -> a``
OPEN = dataclasses.replace(SYMPY_SCALAR, name="sympy-scalar+open-gate", minimum=lambda a, cap: a)


# ============================================================ 1. Euler-Lagrange
def _vectors(d=2):
    x = sp.Matrix(sp.symbols(f"x1:{d + 1}", real=True))
    v = sp.Matrix(sp.symbols(f"v1:{d + 1}", real=True))
    return x, v


def effective_mass(v: sp.Matrix) -> sp.Matrix:
    """Hessian of ``T(v) = m|v|^2/2 + beta3 |v|^4/4``: the mass tensor of the Euler-Lagrange ODE."""
    s = (v.T * v)[0]
    T_kin = mass * s / 2 + beta3 * s**2 / 4
    return sp.hessian(T_kin, list(v))


@functools.lru_cache(maxsize=None)
def _el():
    x, v = _vectors(2)
    s = (v.T * v)[0]
    V = sp.Function("V")(*x)
    L = mass * s / 2 + beta3 * s**2 / 4 - V
    p = sp.Matrix([sp.diff(L, vi) for vi in v])
    H = effective_mass(v)
    gradV = sp.Matrix([sp.diff(V, xi) for xi in x])
    vdot = -H.inv() * gradV
    E = (v.T * p)[0] - L
    U = sp.Function("U")  # central potential V = U(|x|^2)
    Vc = U((x.T * x)[0])
    vdot_c = -H.inv() * sp.Matrix([sp.diff(Vc, xi) for xi in x])
    J = x[0] * p[1] - x[1] * p[0]
    return dict(x=x, v=v, s=s, V=V, L=L, p=p, H=H, gradV=gradV, vdot=vdot, E=E, Vc=Vc,
                vdot_c=vdot_c, J=J)


def _derive_el() -> Derivation:
    e = _el()
    x, v, s, H, p = e["x"], e["v"], e["s"], e["H"], e["p"]
    steps = [Step("L(x, v) = m|v|^2/2 + beta3 |v|^4/4 - V(x), x, v in R^2 (paper Sec. 3, Eq. 3)",
                  e["L"])]
    d = p - (mass + beta3 * s) * v
    steps.append(Step("momentum p = dL/dv = (m + beta3|v|^2) v", d, _zero(d)))
    d = H - ((mass + beta3 * s) * sp.eye(2) + 2 * beta3 * v * v.T)
    steps.append(Step("Hessian of the kinetic energy: d^2T/dv^2 = (m + beta3|v|^2) I + 2 beta3 v v^T",
                      d, _zero(d)))
    d = H * v - (mass + 3 * beta3 * s) * v
    steps.append(Step("along v: (d^2T/dv^2) v = (m + 3 beta3|v|^2) v  (longitudinal effective mass)",
                      d, _zero(d)))
    u = sp.Matrix([-v[1], v[0]])
    d = H * u - (mass + beta3 * s) * u
    steps.append(Step("across v (u = (-v2, v1) _|_ v): (d^2T/dv^2) u = (m + beta3|v|^2) u "
                      "(transverse effective mass)", d, _zero(d)))
    t = sp.Symbol("t", real=True)
    vt = sp.Matrix([sp.Function(f"v{i + 1}")(t) for i in range(2)])
    sub = dict(zip(v, vt))
    d = p.subs(sub).diff(t) - H.subs(sub) * vt.diff(t)
    steps.append(Step("chain rule: d/dt p(v(t)) = (d^2T/dv^2) dv/dt, so Euler-Lagrange "
                      "d/dt dL/dv = dL/dx reads  (d^2T/dv^2) dv/dt = -grad V,  dx/dt = v", d,
                      _zero(d)))
    steps.append(Step("the ODE: dv/dt = -(d^2T/dv^2)^{-1} grad V(x)", e["vdot"]))
    d = e["E"] - (mass * s / 2 + 3 * beta3 * s**2 / 4 + e["V"])
    steps.append(Step("conserved energy E = v.p - L = m|v|^2/2 + 3 beta3 |v|^4/4 + V(x)", d, _zero(d)))
    dE = sum(sp.diff(e["E"], vi) * vd for vi, vd in zip(v, e["vdot"])) + \
        sum(sp.diff(e["E"], xi) * vi for xi, vi in zip(x, v))
    steps.append(Step("dE/dt = grad_v E . dv/dt + grad_x E . v = 0 along the ODE", dE, _zero(dE)))
    J = e["J"]
    dJ = sum(sp.diff(J, vi) * vd for vi, vd in zip(v, e["vdot_c"])) + \
        sum(sp.diff(J, xi) * vi for xi, vi in zip(x, v))
    steps.append(Step("central V = U(|x|^2): angular momentum J = x1 p2 - x2 p1 is conserved "
                      "(Noether); dJ/dt = 0", dJ, _zero(dJ)))
    x1, v1 = sp.Symbol("x", real=True), sp.Symbol("v", real=True)
    V1 = sp.Function("V")(x1)
    ode1 = sp.Eq(sp.Symbol("vdot"), -sp.diff(V1, x1) / (mass + 3 * beta3 * v1**2))
    steps.append(Step("1-D (v parallel to the motion): dv/dt = -V'(x)/(m + 3 beta3 v^2) "
                      "(paper Sec. 3)", ode1))
    b3p = sp.Symbol("beta3'", positive=True)
    inv_mass = (1 / (mass + 3 * beta3 * s)).subs(mass, 1).subs(beta3, b3p / 3)
    d = alpha0 * inv_mass - alpha0 / (1 + b3p * s)
    steps.append(Step("paper's eta_t: the inverse longitudinal mass, reparametrised (m -> 1, "
                      "3 beta3 -> beta3'), scales alpha0: alpha0/(m + 3 beta3 |v|^2) = "
                      "alpha0/(1 + beta3' |v|^2); clipping the penalty at alpha1 gives Alg. 1 l.7, "
                      "alpha0/(1 + min(beta3' ||v_t||^2, alpha1)).  Only the longitudinal mass is "
                      "used: the transverse one (m + beta3|v|^2) has no counterpart in the "
                      "optimizer, and the ODE itself is never integrated by it", d, _zero(d)))
    return Derivation.from_steps(ode1, steps)


@functools.lru_cache(maxsize=None)
def el_system():
    """Numeric pieces of the derived 2-D ODE (lambdified): ``(mass_tensor, kinetic, momentum)``.

    ``mass_tensor(v1, v2, m, beta3)`` is ``d^2T/dv^2`` (2x2), ``kinetic`` the kinetic part
    ``E - V`` of the conserved energy, ``momentum`` ``p = dL/dv``; all taken from the
    sympy derivation, so a numeric check of them tests the derivation.
    """
    e = _el()
    args = [*e["v"], mass, beta3]
    return (sp.lambdify(args, e["H"], "numpy"), sp.lambdify(args, e["E"] - e["V"], "numpy"),
            sp.lambdify(args, e["p"], "numpy"))


register(Claim(
    id="vradam.euler_lagrange",
    title="Quartic kinetic energy: Euler-Lagrange ODE, effective mass m + 3 beta3|v|^2 along v "
          "and m + beta3|v|^2 across, and the gate eta_t as the inverse longitudinal mass",
    source="VRAdam (arXiv 2505.13196), Sec. 3, Eq. 3 and Alg. 1 l.7",
    statement=r"L=\tfrac m2\|v\|^2+\tfrac{\beta_3}{4}\|v\|^4-V(x)\Rightarrow "
              r"\big((m+\beta_3\|v\|^2)I+2\beta_3vv^\top\big)\dot v=-\nabla V,\ "
              r"E=\tfrac m2\|v\|^2+\tfrac{3\beta_3}{4}\|v\|^4+V\ \text{conserved}",
    assumptions=("x, v in R^2 (the identities are checked in two dimensions; the mass tensor "
                 "is rotation-invariant, so any dimension reduces to span(v, grad V))",
                 "V twice differentiable; m, beta3 > 0"),
    derive_fn=_derive_el,
    predict_fn=lambda m=1.0, beta3=1.0, speed=1.0: {
        "along": m + 3 * beta3 * speed**2, "across": m + beta3 * speed**2}))


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
    eta_orbit = alpha0 / (1 + beta3 * Ms**2)
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
    eta = alpha0 / (1 + beta3 * sol[Ms]**2)
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
           "here (shared/reference/vradam.md Sec. 3)",
    statement=r"\eta=\tfrac{B}{\lambda},\ V^2=\tfrac{\alpha_0\lambda/B-1}{\beta_3},\ |X|=\tfrac{B|V|}"
              r"{2\lambda}\ \text{for}\ B<\alpha_0\lambda\le B(1+\alpha_1);\ \rho(J_2)<1\iff "
              r"B<\alpha_0\lambda<2B",
    assumptions=("f = lambda w^2/2; VRMomentum (rules.vr_momentum) or full VRAdam with "
                 "sqrt(v_hat) frozen and late time (then lambda -> lambda/(P + eps))",
                 "gate on its open branch beta3 m^2 <= alpha1 (the orbit's own condition)",
                 "beta1 in [0, 1); 'attracts' = linear (local) stability of the orbit"),
    derive_fn=_derive_orbit,
    predict_fn=lambda lam=1.0, alpha0=1.5 * 38, beta1=0.9, beta3=1.0, alpha1=10.0:
        tuple(float(x) for x in period2_orbit(lam, alpha0, beta1, beta3, alpha1))))


# ============================================================ 3. update bound
def adam_ratio_bound(beta1, beta2):
    """``sup |m_t|/sqrt(v_t) = (1-beta1)/sqrt((1-beta2)(1 - beta1^2/beta2))`` (beta1^2 < beta2).

    Cauchy-Schwarz on ``m_t = (1-b1) sum b1^j g_{t-j}`` against ``v_t >= (1-b2) sum b2^j g_{t-j}^2``
    (zero initial moments, no bias correction = late time); equality in the limit
    ``|g_{t-j}| ~ (b1/b2)^j``.
    """
    return (1 - beta1) / np.sqrt((1 - beta2) * (1 - beta1**2 / beta2))


def _derive_bound() -> Derivation:
    d = 3
    ops = dataclasses.replace(SYMPY_SCALAR, name="sympy-3-vector", inner=lambda a, b: a.dot(b))
    w = sp.Matrix(sp.symbols("w1:4", real=True))
    g = sp.Matrix(sp.symbols("g1:4", real=True))
    mp = sp.Matrix(sp.symbols("p1:4", real=True))
    rule = get_rule("vr_momentum")
    w1, st = rule.step(w, g, {"momentum_buffer": mp},
                       rule.hyper(lr=alpha0, momentum=beta, beta3=beta3, alpha1=alpha1), ops)
    dw, m, eta = w1 - w, st["momentum_buffer"], st["eta"]
    gap = sp.expand(dw.dot(dw) - eta**2 * m.dot(m))
    steps = [Step(f"rules.vr_momentum on {d}-vectors: ||w_t - w_(t-1)||^2 - eta_t^2 ||m_t||^2 = 0",
                  gap, _zero(gap))]
    s = sp.Symbol("s", positive=True)  # s = ||m_t||
    step_open = alpha0 * s / (1 + beta3 * s**2)
    slack = alpha0 / (2 * sp.sqrt(beta3)) - step_open
    ident = slack - alpha0 * (1 - sp.sqrt(beta3) * s)**2 / (2 * sp.sqrt(beta3) * (1 + beta3 * s**2))
    steps.append(Step("open gate (beta3 s^2 <= alpha1), s = ||m_t||: alpha0/(2 sqrt(beta3)) - "
                      "alpha0 s/(1+beta3 s^2) = alpha0 (1 - sqrt(beta3) s)^2/(2 sqrt(beta3)(1 + "
                      "beta3 s^2)) >= 0, equality at s = 1/sqrt(beta3)", ident, _zero(ident)))
    sat = alpha0 * s / (1 + alpha1)
    lim = sp.limit(sat, s, sp.oo)
    steps.append(Step("saturated gate (beta3 s^2 > alpha1): eta_t = alpha0/(1+alpha1) is constant, "
                      "the step alpha0 s/(1+alpha1) grows without bound in s -- the cap the issue "
                      "says 'only lowers' the step removes the bound", lim))
    s_star = (1 + alpha1) / (2 * sp.sqrt(beta3))
    amgm = sp.factor(s_star**2 - alpha1 / beta3)
    steps.append(Step("the step exceeds alpha0/(2 sqrt(beta3)) iff s > (1 + alpha1)/(2 sqrt(beta3)); "
                      "this is >= sqrt(alpha1/beta3) (the saturation point): s*^2 - alpha1/beta3 = "
                      "(1 - alpha1)^2/(4 beta3) >= 0", amgm,
                      _zero(amgm - (1 - alpha1)**2 / (4 * beta3))))
    bound = alpha0 * sp.Max(1 / (2 * sp.sqrt(beta3)), s / (1 + alpha1))
    steps.append(Step("hence the exact bound ||w_t - w_(t-1)|| <= alpha0 max(1/(2 sqrt beta3), "
                      "||m_t||/(1+alpha1)); with m_0 = 0, ||m_t|| <= max_k ||g_k|| (m_t is a convex "
                      "combination of g_1..g_t and 0), so bounded gradients G give "
                      "alpha0 max(1/(2 sqrt beta3), G/(1+alpha1))", bound))
    b1, b2, j = sp.Symbol("beta1", positive=True), sp.Symbol("beta2", positive=True), \
        sp.Symbol("j", integer=True, nonnegative=True)
    geo = sp.summation((b1**2 / b2)**j, (j, 0, sp.oo))
    steps.append(Step("full VRAdam: per coordinate |m_t| <= (1-b1) sum_j b1^j |g_{t-j}| <= (1-b1) "
                      "sqrt(sum_j (b1^2/b2)^j) sqrt(v_t/(1-b2)) (Cauchy-Schwarz); the geometric sum "
                      "(b1^2 < b2) gives |m_t|/sqrt(v_t) <= (1-b1)/sqrt((1-b2)(1-b1^2/b2)) =: C "
                      "(7.27 at 0.9, 0.999): ||w_t - w_(t-1)||_inf <= eta_t C <= alpha0 C, a bound "
                      "that does not involve beta3 (measured in the check)",
                      sp.simplify(geo.args[0][0]) if isinstance(geo, sp.Piecewise) else geo))
    return Derivation.from_steps(bound, steps)


register(Claim(
    id="vradam.update_bound",
    title="[paper bound refuted once the gate saturates] momentum-only step "
          "eta_t||m_t|| <= alpha0/(2 sqrt beta3) holds iff ||m_t|| <= (1+alpha1)/(2 sqrt beta3); "
          "in general <= alpha0 max(1/(2 sqrt beta3), ||m_t||/(1+alpha1)); full VRAdam: <= alpha0 C "
          "per coordinate, no beta3 bound",
    source="VRAdam (arXiv 2505.13196), Sec. 4 update-norm bound (shared/reference/vradam.md Sec. 3)",
    statement=r"\|w_t-w_{t-1}\|=\eta_t\|m_t\|\le\alpha_0\max\big(\tfrac{1}{2\sqrt{\beta_3}},"
              r"\tfrac{\|m_t\|}{1+\alpha_1}\big);\ \le\tfrac{\alpha_0}{2\sqrt{\beta_3}}\iff "
              r"\|m_t\|\le\tfrac{1+\alpha_1}{2\sqrt{\beta_3}}",
    assumptions=("VRMomentum (rules.vr_momentum), any dimension (checked in 3), gate on the norm "
                 "of m_t after the update", "full VRAdam: late time, eps = 0, beta1^2 < beta2"),
    derive_fn=_derive_bound,
    predict_fn=lambda alpha0=1.0, beta3=1.0, alpha1=10.0, norm_m=None: (
        alpha0 / (2 * np.sqrt(beta3)) if norm_m is None
        else alpha0 * max(1 / (2 * np.sqrt(beta3)), norm_m / (1 + alpha1)))))


# ============================================================ 4. Lyapunov (switched system)
@functools.lru_cache(maxsize=None)
def _switched():
    """A(h) of the momentum-only map in coordinates (u, m) = (lam w, m), gate frozen at eta."""
    G, eta = sp.Symbol("G", nonnegative=True), sp.Symbol("eta", positive=True)
    rule = get_rule("vr_momentum")
    st = one_step(rule, rule.hyper(lr=alpha0, momentum=beta, beta3=beta3, alpha1=alpha1), lam,
                  dynamic=("momentum_buffer",), freeze=(min_node(G, "VRAdam gate"),), late=False)
    F = sp.Matrix(st.images).subs(dict(zip(st.variables, (_w, _m))))
    F = F.subs(alpha0, eta * (1 + G))  # eta_t = alpha0/(1+G): any gate value
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


def lyapunov_matrix(h_lo, h_hi, beta1, starts=6):
    """Best common quadratic Lyapunov function for ``A(h)``, ``h in [h_lo, h_hi]``.

    Minimises ``max_vertex lambda_max(P^{-1/2} A^T P A P^{-1/2})`` over ``P = [[1, p], [p,
    p^2 + e^q]]`` (every positive definite 2x2 matrix up to scale; vertices suffice, see the
    derivation) with scipy Nelder-Mead from several starts.  Returns ``(P, rho2)``: a CQLF with
    ``V(z_t) <= rho2 V(z_(t-1))`` exists iff ``rho2 < 1``.
    """
    from scipy.optimize import minimize

    As = [switched_matrix(x, beta1) for x in (h_lo, h_hi)]

    def P_of(p):
        return np.array([[1.0, p[0]], [p[0], p[0] ** 2 + np.exp(p[1])]])

    def worst(p):
        P = P_of(p)
        Li = np.linalg.inv(np.linalg.cholesky(P))
        return max(np.linalg.eigvalsh(Li @ A.T @ P @ A @ Li.T).max() for A in As)

    rng = np.random.default_rng(0)
    x0s = [(0.0, 0.0)] + [tuple(rng.normal(0, 2, 2)) for _ in range(starts - 1)]
    best = min((minimize(worst, x0, method="Nelder-Mead",
                         options=dict(xatol=1e-10, fatol=1e-13, maxiter=4000)) for x0 in x0s),
               key=lambda res: res.fun)
    return P_of(best.x), float(best.fun)


def _derive_lyapunov() -> Derivation:
    F, Fu, A, u, eta = _switched()
    steps = [Step("rules.vr_momentum on symbols with the gate frozen at any value G "
                  "(eta_t = alpha0/(1+G) in [alpha0/(1+alpha1), alpha0]): the map of (w, m)", F)]
    d = (Fu.subs(eta, h / lam) - A * sp.Matrix([u, _m])).applyfunc(sp.simplify)
    steps.append(Step("in coordinates (u, m) = (lambda w, m) the map is z -> A(h) z with h = eta_t "
                      "lambda only: linear, and lambda enters only through h", d, _zero(d)))
    steps.append(Step("A(h)", A))
    d2 = A.diff(h, 2)
    steps.append(Step("A(h) is affine in h, so the LMI [[rho P, A^T P], [P A, P]] > 0 (Schur "
                      "complement: rho P - A^T P A > 0) is affine in h: it holds on an interval "
                      "[h_lo, h_hi] iff at both ends -- a CQLF for every gate sequence and "
                      "curvature exists iff the two-vertex LMI is feasible", d2, _zero(d2)))
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
#: -> h in [12/5, 18/5]; P found by the scipy LMI search, checked exactly here.
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
           "VRMomentum); shared/reference/vradam.md Sec. 3",
    statement=r"z_t=A(\eta_t\lambda)z_{t-1},\ \eta_t\in[\tfrac{\alpha_0}{1+\alpha_1},\alpha_0]:\ "
              r"\exists P\succ0\ \forall t\ V(z_t)\le(1-\epsilon)V(z_{t-1})\iff\text{LMI at }"
              r"h\in\{\tfrac{\alpha_0\mu}{1+\alpha_1},\alpha_0L\};\ \text{not implied by }\alpha_0L<B",
    assumptions=("quadratic model, curvature in [mu, L] with mu > 0, eigen-directions decouple",
                 "arbitrary (not state-fed) gate sequences, as in Thm 4.1",
                 "P may depend on the eigen-direction's lambda through u = lambda w"),
    derive_fn=_derive_lyapunov))
