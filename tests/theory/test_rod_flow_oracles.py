"""``theory.rod_flow``: statuses, returned closed forms and the numeric helpers against
independent oracles (direct simulation of the rules of ``theory.rules``, GD iterated in plain
numpy, numpy roots and finite differences).

The fast test selection of the mutation run (``scripts/mutation.py``, issue 9): claims derived
cheapest first; each closed form is evaluated at seeded random parameters and compared with a
number computed another way, never with the formula itself.
"""
import math

import numpy as np
import pytest
import sympy as sp

from momentumlab.theory import rod_flow as rf
from momentumlab.theory.claims import REGISTRY
from momentumlab.theory.ops import NUMPY, frozen_sqrt
from momentumlab.theory.rules import get_rule

RNG = np.random.default_rng(20261202)


def _d(cid):
    return REGISTRY[cid].derive()


# ------------------------------------------------------------------ the construction, numerically
def _rod_replays(F, z0, n=6):
    """Forward Euler (dt = 1) of the flipped rod from the first two iterates; the predicted
    iterates c_k + predicted_sign(k) d_k (the identities claim: exact for any map)."""
    z1 = z0 + F(z0)
    c, d = (z0 + z1) / 2, (z1 - z0) / 2
    out = []
    for k in range(n):
        out.append(c + rf.predicted_sign(k) * d)
        dc, dd = rf.rod_field(F, c, d)
        c, d = c + dc, d + dd
    return np.array(out)


def test_rod_replays_the_iterates_of_a_nonlinear_map():
    """The rod ODE's Euler steps with predicted_sign reproduce z_t of z -> z + F(z) exactly, for
    GD on a quartic (F written here in numpy) -- a simulation oracle for rod_field,
    rod_velocity and predicted_sign."""
    S, Q, eta = 2.3, 0.7, 1.0
    F = lambda z: -eta * (S * z - Q * z**3)  # noqa: E731
    z = np.array([0.31, -0.2])
    want = [z]
    for _ in range(5):
        want.append(want[-1] + F(want[-1]))
    np.testing.assert_allclose(_rod_replays(F, z.copy()), np.array(want), rtol=1e-12, atol=1e-14)


def test_rod_replays_heavy_ball_through_phase_map():
    """phase_map (the rule of theory.rules as F on (w, buffer)) inside the rod: the replayed
    iterates equal heavy ball run directly in numpy."""
    space = rf.get_space("heavy_ball")
    v = space.values(lr=0.7, beta=0.6)
    step = rf.phase_map(space, v, lambda w: 3.0 * w, NUMPY)

    def F(z):
        out, _ = step({"w": z[0], "momentum_buffer": z[1]})
        return np.array([out["w"], out["momentum_buffer"]])

    w, b = 0.4, 0.1
    want = [[w, b]]
    for _ in range(5):  # torch SGD momentum, by hand: b' = beta b + g, w' = w - lr b'
        b = 0.6 * b + 3.0 * w
        w = w - 0.7 * b
        want.append([w, b])
    np.testing.assert_allclose(_rod_replays(F, np.array([0.4, 0.1])), np.array(want),
                               rtol=1e-12, atol=1e-14)


def test_predicted_sign_and_endpoint_form():
    rng = np.random.default_rng(3)
    phi = lambda z: np.sin(z) + 0.5 * z[::-1]  # noqa: E731
    c, d = rng.standard_normal(2), rng.standard_normal(2)
    dc, dd = rf.rod_field(lambda z: phi(z) - z, c, d)
    da, db = rf.endpoint_field(phi, c - d, c + d)
    np.testing.assert_allclose(np.concatenate([da, db]), np.concatenate([dc - dd, dc + dd]), atol=1e-14)


# ------------------------------------------------------------------ second moment
def test_ema_update_is_the_rules_second_moment():
    """Component variant: rules.adam's exp_avg_sq after one step; scalar variant: the sum of the
    component EMA over coordinates (nu spread over them); nu_forcing averages the two ends."""
    rule = get_rule("adam")
    b2 = 0.93
    g = RNG.standard_normal(4)
    v0 = RNG.uniform(0.1, 1.0, 4)
    _, st = rule.step(np.zeros(4), g, {"step": 5, "exp_avg": np.zeros(4), "exp_avg_sq": v0.copy()},
                      rule.hyper(lr=0.1, betas=(0.9, b2), eps=1e-8), NUMPY)
    comp, scal = rf.get_space("adam"), rf.get_space("scalar_adam")
    np.testing.assert_allclose(rf.ema_update(comp, v0, g, b2, NUMPY), st["exp_avg_sq"], rtol=1e-14)
    assert float(rf.ema_update(scal, v0.sum(), g, b2, NUMPY)) == pytest.approx(st["exp_avg_sq"].sum(),
                                                                            rel=1e-13)
    gp, gm = RNG.standard_normal(4), RNG.standard_normal(4)
    for sp_ in (comp, scal):
        half = (rf.nu_forcing(sp_, gp, gp, NUMPY) + rf.nu_forcing(sp_, gm, gm, NUMPY)) / 2
        np.testing.assert_allclose(rf.nu_forcing(sp_, gp, gm, NUMPY), half, rtol=1e-14)
    np.testing.assert_allclose(rf.nu_forcing(comp, gp, gp, NUMPY), (rf.ema_update(comp, 0 * gp, gp, 0.0, NUMPY)),
                               rtol=1e-14)


def test_rates_one_unit_of_time_is_the_ema():
    """k = -log(beta2): the exact flow of dnu/dt = k(g2 - nu) over unit time is the EMA;
    k = (1-beta2)/beta2: backward Euler is; k = 1-beta2: forward Euler is (numbers)."""
    for b2 in (0.5, 0.9, 0.999):
        nu, g2 = 0.3, 1.7
        ema = b2 * nu + (1 - b2) * g2
        assert g2 + (nu - g2) * math.exp(-rf.nu_rate(b2, "-log(beta2)")) == pytest.approx(ema, rel=1e-12)
        k = rf.nu_rate(b2)
        assert (nu + k * g2) / (1 + k) == pytest.approx(ema, rel=1e-12)
        assert nu + rf.nu_rate(b2, "1-beta2") * (g2 - nu) == pytest.approx(ema, rel=1e-12)


def test_frozen_adam_phase_map_against_the_rule():
    """phase_map of scalar Adam with sqrt(nu) frozen at P: F equals rules.adam run with the
    same frozen root (late time), one step."""
    space = rf.get_space("adam")
    v = space.values(lr=0.05, beta=0.8, beta2=0.99)
    P = 0.7
    step = rf.phase_map(space, v, lambda w: 2.0 * w, NUMPY, root=P)
    F, g = step({"w": np.array([0.5]), "exp_avg": np.array([0.2])})
    m = 0.8 * 0.2 + 0.2 * 1.0  # exp_avg' = b1 m + (1-b1) g, g = 2 * 0.5
    assert float(F["exp_avg"][0]) == pytest.approx(m - 0.2, rel=1e-12)
    assert float(F["w"][0]) == pytest.approx(-0.05 * m / P, rel=1e-12)  # bias corrections 1
    assert float(g[0]) == 1.0
    assert frozen_sqrt(NUMPY, P).sqrt(np.array([9.0])) == P


# ------------------------------------------------------------------ claims, cheapest first
def test_identities_status_and_expression():
    d = _d("rodflow.identities")
    assert d.status == "proved"
    # the returned rod field for a linear F(z) = (A - I) z: (A - I) c and -(I + A) d
    A = np.array([[0.3, -1.2], [0.8, 0.1]])
    cs, ds = sp.symbols("c1:3", real=True), sp.symbols("d1:3", real=True)
    expr = d.expression
    for i, f in enumerate(("F1", "F2")):
        row = A[i] - np.eye(2)[i]
        expr = expr.replace(sp.Function(f), sp.Lambda(sp.symbols("x y"), row[0] * sp.Symbol("x")
                                                      + row[1] * sp.Symbol("y")))
    c, dd_ = np.array([0.4, -0.9]), np.array([1.1, 0.25])
    got = np.array(expr.subs({**dict(zip(cs, c)), **dict(zip(ds, dd_))}), dtype=float).ravel()
    np.testing.assert_allclose(got, np.concatenate([(A - np.eye(2)) @ c, -(np.eye(2) + A) @ dd_]),
                               rtol=1e-12, atol=1e-14)
    k_steps = [s for s in d.steps if "second moment, default rate" in s.text]
    assert len(k_steps) == 1 and k_steps[0].kind == "reduced"


def test_self_stabilization_status_and_expression():
    """(dd_x/dt, dc_y/dt) for S(y) = 2 + y^2, h(y) = y^3/3 against the rod field built in numpy
    from a finite-difference gradient of L."""
    d = _d("rodflow.self_stabilization")
    assert d.status == "proved from lemmas" and d.lemmas == (
        "fundamental theorem of calculus over one period of a closed orbit",)
    y = sp.Symbol("y")
    expr = d.expression.replace(sp.Function("S"), sp.Lambda(y, 2 + y**2)).replace(
        sp.Function("h"), sp.Lambda(y, y**3 / 3)).doit()
    eta, kap, cy, dx = 0.9, 0.4, 0.6, 0.3
    L = lambda z: (2 + z[1]**2) * z[0]**2 / 2 + kap * z[0]**3 / 6 + z[1]**3 / 3  # noqa: E731

    def F(z, e=1e-6):
        return -eta * np.array([(L(z + e * u) - L(z - e * u)) / (2 * e) for u in np.eye(2)])

    c, dvec = np.array([0.0, cy]), np.array([dx, 0.0])
    fp, fm = F(c + dvec), F(c - dvec)
    want = [-2 * dx - (fp - fm)[0] / 2, (fp + fm)[1] / 2]
    at = {sp.Symbol("eta", positive=True): eta, sp.Symbol("kappa", real=True): kap,
          sp.Symbol("c_y", real=True): cy, sp.Symbol("d_x", real=True): dx}
    got = [float(e.subs(at)) for e in expr]
    np.testing.assert_allclose(got, want, rtol=1e-7)
    # the first (shown) step: the whole field (dc_x, dc_y, dd_x, dd_y); dc_x carries the cubic term
    shown = d.steps[0].expr.replace(sp.Function("S"), sp.Lambda(y, 2 + y**2)).replace(
        sp.Function("h"), sp.Lambda(y, y**3 / 3)).doit()
    full = [(fp + fm)[0] / 2, (fp + fm)[1] / 2, -2 * dx - (fp - fm)[0] / 2, -(fp - fm)[1] / 2]
    np.testing.assert_allclose([float(e.subs(at)) for e in shown], full, rtol=1e-7, atol=1e-9)


def test_quartic_status_expression_and_cycles():
    """d*^2 at random (eta, S, Q) against GD iterated to its 2-cycle; the period-doubling point
    against the asymmetric cycle's multiplier found with numpy roots."""
    d = _d("rodflow.quartic")
    assert d.status == "proved"
    eta_s, S_s, Q_s = (sp.Symbol(n, positive=True) for n in ("eta", "S", "Q"))
    for eta, s, Q in zip(RNG.uniform(0.5, 2, 3), RNG.uniform(2.1, 2.9, 3), RNG.uniform(0.3, 3, 3)):
        S = s / eta
        w = math.sqrt((S - 2 / eta) / Q) * 1.05
        for _ in range(3000):
            w = w - eta * (S * w - Q * w**3)
        assert float(d.expression.subs({eta_s: eta, S_s: S, Q_s: Q})) == pytest.approx(w * w, rel=1e-10)
        assert rf.quartic_equilibrium(eta, S, Q) == pytest.approx(abs(w), rel=1e-10)
    assert math.isnan(rf.quartic_equilibrium(1.0, 1.5, 1.0))
    # x -> (1 - s) x + x^3: asymmetric 2-cycle a, b with ab = -1, a^2 + b^2 = s - 1
    s = rf.period_doubling_eta_s()
    a = max(np.roots([1, 0, -(s - 1), 0, 1]).real)  # a^2 + 1/a^2 = s - 1
    b = -1 / a
    phi = lambda x: (1 - s) * x + x**3  # noqa: E731
    assert phi(a) == pytest.approx(b, abs=1e-9) and phi(b) == pytest.approx(a, abs=1e-9)
    dphi = lambda x: 1 - s + 3 * x * x  # noqa: E731
    assert dphi(a) * dphi(b) == pytest.approx(-1.0, abs=1e-9)


def test_quartic_field_against_the_rod_of_gd():
    eta, S, Q, c, dv = 0.8, 2.9, 0.6, 0.2, 0.45
    dc, dd = rf.quartic_field()
    F = lambda x: -eta * (S * x - Q * x**3)  # noqa: E731
    at = {sp.Symbol("eta", positive=True): eta, sp.Symbol("S", positive=True): S,
          sp.Symbol("Q", positive=True): Q, sp.Symbol("c", real=True): c, sp.Symbol("d", real=True): dv}
    assert float(dc.subs(at)) == pytest.approx((F(c + dv) + F(c - dv)) / 2, rel=1e-12)
    assert float(dd.subs(at)) == pytest.approx(-2 * dv - (F(c + dv) - F(c - dv)) / 2, rel=1e-12)


def _shown(e):
    e = sp.sympify(e)
    return list(e) if isinstance(e, sp.MatrixBase) else [e]


@pytest.mark.parametrize("cid", ["rodflow.identities", "rodflow.self_stabilization", "rodflow.quartic"])
def test_every_reduced_step_shows_a_zero_residual(cid):
    """What explain() shows is what sympy reduced: a reduced step's expression is its residual,
    0 -- except the quartic's multiplier roots, shown as values and checked against numbers."""
    values = ("the multiplier is", "for a cycle multiplier")
    for s in _d(cid).steps:
        if s.kind != "reduced" or s.text.startswith(values):
            continue
        assert all(sp.simplify(x) == 0 for x in _shown(s.expr)), s.text[:60]
    if cid == "rodflow.quartic":
        shown = {s.text[:22]: _shown(s.expr) for s in _d(cid).steps if s.text.startswith(values)}
        assert 3 in shown["the multiplier is +1 a"]
        assert [float(x) for x in shown["the multiplier is -1 a"]] == pytest.approx([1 + math.sqrt(5)])
        assert [float(x) for x in shown["for a cycle multiplier"]] == [-1.0, -1.0]


def test_blindness_example_steps_are_reduced():
    """The blind-spot steps (rotation A = r R(theta)) on their own, before the full derivation;
    the example's eigenvalues against numpy: |mu| = 1.1 while the flip block decays."""
    steps = rf._blindness_steps()
    assert [s.kind for s in steps] == ["reduced", "reduced"]
    assert [sp.simplify(s.expr) for s in steps] == [0, 0]  # the residuals shown are 0
    th, r = np.pi / 2, 1.1
    A = r * np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    assert max(abs(np.linalg.eigvals(A))) == pytest.approx(1.1)
    assert max(np.linalg.eigvals(-(np.eye(2) + A)).real) == pytest.approx(-1.0)


def test_gd_and_heavy_ball_rod_thresholds_alone():
    """rod_threshold for two cheap spaces, every step reduced, against Cohen et al. 2021 (2 and
    2 + 2 beta) -- ahead of the full derivation over all spaces."""
    beta = sp.Symbol("beta", real=True)
    for name, want in (("gd", sp.Integer(2)), ("heavy_ball", 2 + 2 * beta)):
        rt = rf.rod_threshold(name)
        assert all(s.kind in ("reduced", "note") for s in rt.steps), name
        assert sp.simplify(rt.rod - want) == 0 and sp.simplify(rt.discrete - want) == 0


def test_threshold_status_and_expression_against_numpy_eigenvalues():
    """The returned rod thresholds (one per phase space) at the default values: just below the
    flip the frozen map's eigenvalues stay inside the unit disc, just above one leaves through -1
    (numpy eigenvalues of the rule's map, built by running phase_map on basis states)."""
    d = _d("rodflow.threshold")
    assert d.status == "proved"
    for name, thr in zip(rf.SPACES, d.expression):
        space = rf.get_space(name)
        if name == "tam":
            continue  # TAM's damping is state-driven; its threshold is checked by the literature test
        v = space.values()
        syms = {s_.name: s_ for s_ in sp.sympify(thr).free_symbols}
        model_vals = {"beta": v.get("beta", 0.0), "G": 0.0}  # RMSProp: no momentum
        h_star = float(sp.sympify(thr).subs({s_: model_vals[n] for n, s_ in syms.items()}))
        assert rf.threshold_value(name) == pytest.approx(h_star, rel=1e-12)  # G = 0: gate open at m = 0
        for f, outside in ((0.999, False), (1.001, True)):
            lam = f * h_star / v["lr"]  # preconditioned spaces: root P = 1, eps = 0
            root = 1.0 if space.second_moment is not None else None
            step = rf.phase_map(space, v, lambda w: lam * w, NUMPY, root=root)
            keys = ("w",) + space.dynamic
            cols = []
            for e in np.eye(len(keys)) * 1e-7:  # tiny: VRAdam's gate stays at G = 0
                F, _ = step(dict(zip(keys, e)))
                cols.append([(F[k] + e[i]) / 1e-7 for i, k in enumerate(keys)])
            ev = np.linalg.eigvals(np.array(cols, dtype=float).T)
            assert (max(abs(ev)) > 1) == outside, (name, f, ev)
            if outside:
                assert min(ev.real) < -1, name


def test_identities_prove_both_parities_of_the_flipped_rod():
    """The flipped-rod recursion is reduced once for even and once for odd t (s = (-1)^t = +1
    and -1): a derivation that proves one parity twice is not the claim."""
    steps = [s for s in _d("rodflow.identities").steps if s.text.startswith("flipped rod")]
    assert [("even" in s.text, "odd" in s.text, s.kind) for s in steps] == [
        (True, False, "reduced"), (False, True, "reduced")]
