"""``theory.analyze`` against a numeric oracle: the rule itself run in numpy.

For each analysed rule the oracle settles the state (many steps at the minimum, so counters grow
and scalar state reaches its fixed point), builds the one-step Jacobian by central finite
differences of ``rule.step`` (``sqrt`` frozen at 1 where the analysis freezes a preconditioner)
and takes numpy's spectral radius: it must cross 1 at the threshold ``analyze`` derives, at
seeded random parameter values.  Written as the fast test selection of the mutation run
(``scripts/mutation.py``, issue 9); the rules below marked "test rule" are written here from
their equations to reach branches no shipped rule reaches (a counter that starts at 1, a
settling scalar, an ``abs`` of a nonzero quantity, a stable set of two intervals, two crossing
upper bounds, crossing edges without a positive root, a crossing root of exactly 1).
"""
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

from momentumlab.theory.analyze import (NotAnalyzable, _flatten, _unflatten, analyze, bind,
                                        default_symbolic, load_rule)
from momentumlab.theory.linearize import MU
from momentumlab.theory.ops import NUMPY, frozen_sqrt
from momentumlab.theory.rules import Rule, get_rule
from momentumlab.theory.stability_models import H

USER = str(Path(__file__).resolve().parents[2] / "examples" / "my_momentum.py")
RNG = np.random.default_rng(20261203)


# ------------------------------------------------------------------ the numeric oracle
def _floats(state):
    """Keys ``(name, index or None)`` of the float entries of a numeric state (ints: counters)."""
    out = []
    for k, v in state.items():
        if isinstance(v, tuple):
            out += [(k, i) for i, e in enumerate(v) if not isinstance(e, (int, np.integer))]
        elif not isinstance(v, (int, np.integer)) and v is not None:
            out.append((k, None))
    return out


def _get(state, key):
    k, i = key
    return state[k] if i is None else state[k][i]


def _put(state, key, val):
    k, i = key
    s = dict(state)
    if i is None:
        s[k] = val
    else:
        t = list(s[k])
        t[i] = val
        s[k] = tuple(t)
    return s


def numeric_rho(rule, values, lam, frozen=False, settle=400):
    """Spectral radius of the numeric one-step Jacobian at the late-time fixed point."""
    return max(abs(numeric_eigenvalues(rule, values, lam, frozen, settle)))


def numeric_eigenvalues(rule, values, lam, frozen=False, settle=400):
    """Eigenvalues of the numeric one-step Jacobian at the late-time fixed point."""
    ops = frozen_sqrt(NUMPY, 1.0) if frozen else NUMPY
    h = rule.hyper(**values)
    w, st = 0.0, rule.init(np.float64(0.0), ops)
    for _ in range(settle):  # at the minimum: g = 0, only counters and scalars move
        w, st = rule.step(w, lam * w, st, h, ops)
    keys = [None] + _floats(st)

    def F(x):
        s = st
        for key, v in zip(keys[1:], x[1:]):
            s = _put(s, key, np.float64(v))
        w1, s1 = rule.step(np.float64(x[0]), lam * np.float64(x[0]), s, h, ops)
        return np.array([w1] + [float(_get(s1, k)) for k in keys[1:]], dtype=float)

    x0 = np.array([0.0] + [float(_get(st, k)) for k in keys[1:]])
    eps = 1e-6
    J = np.column_stack([(F(x0 + eps * e) - F(x0 - eps * e)) / (2 * eps) for e in np.eye(len(x0))])
    return np.linalg.eigvals(J)


def assert_crossing(an, point, frozen=False, lr=0.1, settle=400):
    """rho < 1 just below the derived threshold, > 1 just above (lr fixed, lambda varied)."""
    thr = an.threshold_value(**point)
    values = bind(an.values, an.bindings, point)
    values["lr"] = lr
    scale = an.lr_scale() if frozen else 1.0
    for f, above in ((0.995, False), (1.005, True)):
        lam = f * thr * scale / lr
        rho = numeric_rho(an.rule, values, lam, frozen=frozen, settle=settle)
        assert (rho > 1) == above, (an.rule.name, point, f, rho)
    return thr


def _random_point(an, n=2, hi=0.95):
    return [{b.name: float(u) for b, u in zip(an.bindings, row)}
            for row in RNG.uniform(0.0, hi, (n, len(an.bindings)))]


# ------------------------------------------------------------------ test rules (written here)
def _counted_init(w, ops):
    return {"t": 1, "m": ops.zeros_like(w), "s": 0.0}


def _counted_step(w, g, state, h, ops):
    """Bias-corrected EMA momentum whose counter starts at 1, and a scale s' = b2 s + 1 that
    settles at 1/(1 - b2): the step lr (1 - b2) s' m'/(1 - beta^t) is EMA momentum at late time."""
    t = state["t"] + 1
    m = h["beta"] * state["m"] + (1 - h["beta"]) * g
    s = h["b2"] * state["s"] + 1
    return w - h["lr"] * (1 - h["b2"]) * s * m / (1 - h["beta"] ** t), {"t": t, "m": m, "s": s}


COUNTED = Rule("counted_ema", _counted_init, _counted_step, {"lr": 0.1, "beta": 0.9, "b2": 0.5})


def _abs_init(w, ops):
    return {"v": ops.zeros_like(w)}


def _abs_step(w, g, state, h, ops):
    """Heavy ball with its step scaled by |1 - 2 beta| (nonzero at beta = 0.9, negative inside)."""
    v = h["beta"] * state["v"] + g
    return w - h["lr"] * ops.abs(1 - 2 * h["beta"]) * v, {"v": v}


ABS_HB = Rule("abs_scaled_heavy_ball", _abs_init, _abs_step, {"lr": 0.1, "beta": 0.9})


def _secant_init(w, ops):
    return {"v": ops.zeros_like(w), "k": 0.0}


def _secant_step(w, g, state, h, ops):
    """Heavy ball that logs the secant slope k = g/w through the minimum (a curvature estimate,
    exactly lambda on f = lambda w^2/2, whatever w): a scalar entry that is a function of g/w."""
    v = h["beta"] * state["v"] + g
    return w - h["lr"] * v, {"v": v, "k": g / w}


SECANT_HB = Rule("secant_logged_heavy_ball", _secant_init, _secant_step, {"lr": 0.1, "beta": 0.9})


def _growing_rule(c):
    """Heavy ball with a scalar entry s' = c s + 1 (c = 1: a float step count, as torch keeps
    ``step``; |c| > 1: a scale that grows geometrically): it has no fixed point to settle at."""
    def init(w, ops):
        return {"v": ops.zeros_like(w), "s": 0.0}

    def step(w, g, state, h, ops):
        v = h["beta"] * state["v"] + g
        return w - h["lr"] * v, {"v": v, "s": c * state["s"] + 1}

    return Rule(f"growing_scalar_{c}", init, step, {"lr": 0.1, "beta": 0.9})


# ------------------------------------------------------------------ helpers and bad input
def test_flatten_unflatten_round_trip_and_padding():
    state = {"a": 1.5, "b": (2.0, 3.0, 4.0), "c": None}
    assert _unflatten(_flatten(state), state) == state
    got = _unflatten({("b", 1): 9.0, ("d", 2): 7.0}, {"b": (2.0, 3.0), "d": None})
    assert got == {"b": (2.0, 9.0), "d": (None, None, 7.0)}
    # a tuple shorter than the index is padded with None up to it, its entries kept
    assert _unflatten({("b", 3): 9.0}, {"b": (2.0,)}) == {"b": (2.0, None, None, 9.0)}


def test_default_symbolic_and_bindings():
    vals = {"lr": 0.1, "betas": (0.0, 0.9, 0.5), "eps": 1e-8, "nu": 0.7, "flag": True, "wd": 0.0}
    assert default_symbolic(vals) == ["beta2", "beta3", "nu"]
    with pytest.raises(ValueError, match="not a numeric hyperparameter"):
        analyze("qhm", symbolic=["lr"])


# ------------------------------------------------------------------ thresholds vs the oracle
def test_user_heavy_ball_threshold_flip_and_sharpness_against_the_rule():
    an = analyze(f"{USER}:heavy_ball", {"lr": 0.05})
    for point in [an.point()] + _random_point(an):
        thr = assert_crossing(an, point)
        assert float(an.flip.subs(sp.Symbol("beta", real=True), point["beta"])) == pytest.approx(thr, rel=1e-12)
    s = an.summary()
    # predicted EoS sharpness: GD with lr = 0.05 flips at lambda = S (the rule, numerically)
    S = s["eos_sharpness_at_values"]
    assert numeric_rho(an.rule, an.values, 0.995 * S) < 1 < numeric_rho(an.rule, an.values, 1.005 * S)
    eta = sp.Symbol("eta", positive=True)
    assert float(an.eos_sharpness().subs({eta: 0.05, sp.Symbol("beta", real=True): 0.9})) == pytest.approx(S, rel=1e-12)
    assert s["rod_flow_flip_at_values"] == pytest.approx(s["threshold_at_values"], rel=1e-12)
    assert an.lr_scale() == 1.0


def test_characteristic_polynomial_against_numpy():
    """A and p(mu) = det(mu I - A) at random (beta, h) against the rule's numeric Jacobian
    (lr = h, lambda = 1) and numpy's characteristic polynomial of it, and the shown step with
    the same p."""
    an = analyze(f"{USER}:nesterov")
    b, H = sp.Symbol("beta", real=True), sp.Symbol("eta_lambda", positive=True)
    step = [s for s in an.analysis.steps if s.text.startswith("characteristic polynomial")][0]
    for bv, hv in RNG.uniform(0.05, 0.95, (3, 2)):
        h = an.rule.hyper(lr=hv, beta=bv)
        cols = []
        for z in np.eye(2):
            w1, s1 = an.rule.step(z[0], z[0], {"velocity": z[1]}, h, NUMPY)
            cols.append([w1, s1["velocity"]])
        J = np.array(cols).T
        # A itself (eta lambda = h at lambda = 1, state (w, velocity)) is the rule's Jacobian
        np.testing.assert_allclose(np.array(an.matrix.subs({b: bv, H: hv}), dtype=float), J,
                                   rtol=1e-12, atol=1e-14)
        want = np.poly(J)  # [1, c1, c0]
        for p in (an.charpoly, step.expr):
            got = [float(sp.expand(p).coeff(MU, k).subs({b: bv, sp.Symbol("h", positive=True): hv,
                                                         H: hv}))
                   for k in (2, 1, 0)]
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


def test_counter_from_one_and_settling_scalar_against_the_rule():
    an = analyze(COUNTED)
    assert an.counter == "t" and an.status == "proved"
    assert any("'s' at the fixed point" in a for a in an.assumptions)
    for point in [an.point()] + _random_point(an):
        assert_crossing(an, point)


def test_scalar_that_does_not_settle_is_refused_and_grows_under_the_rule():
    """|ds'/ds| >= 1: refused.  Oracle: the rule run in numpy, where s_t grows without bound
    (t for c = 1, |c|^t for |c| = 1.5) instead of reaching the fixed point 1/(1 - c)."""
    for c in (1.0, 1.5, -1.5):
        rule = _growing_rule(c)
        with pytest.raises(NotAnalyzable, match=r"does not settle.*>= 1"):
            analyze(rule)
        st, h = rule.init(np.float64(0.0), NUMPY), rule.hyper()
        for _ in range(200):
            _, st = rule.step(0.0, 0.0, st, h, NUMPY)
        assert abs(st["s"]) >= 200


def test_scalar_of_g_over_w_settles_at_the_curvature_the_rule_logs():
    """A scalar entry whose update reads g only as g/w is w-free on f = lambda w^2/2: held at its
    value (lambda), not made a dynamic coordinate.  Oracle: one numpy step of the rule at
    arbitrary w != 0 logs k = lambda (the numeric Jacobian oracle cannot run here: g/w is 0/0 at
    the minimum); the threshold is Polyak's heavy ball 2(1 + beta), typed from the literature."""
    an = analyze(SECANT_HB)
    assert an.state_names == ("w", "v")
    lam = sp.Symbol("lambda", positive=True)
    k = an.fixed_state[("k", None)]
    for lv, wv in RNG.uniform(0.1, 5.0, (3, 2)):
        _, st = SECANT_HB.step(wv, lv * wv, SECANT_HB.init(np.float64(wv), NUMPY),
                               SECANT_HB.hyper(), NUMPY)
        assert float(sp.sympify(k).subs(lam, lv)) == pytest.approx(st["k"], rel=1e-12)
    for beta in RNG.uniform(0.0, 0.95, 2):  # Polyak's heavy ball: lr lambda < 2(1 + beta)
        assert an.threshold_value(beta=float(beta)) == pytest.approx(2 * (1 + beta), rel=1e-12)


def test_sgd_counter_and_dampening_against_the_rule():
    an = analyze("sgd")
    for point in _random_point(an):
        assert_crossing(an, point)


def test_abs_of_a_nonzero_quantity_against_the_rule():
    """beta symbolic, so that |1 - 2 beta| stays an Abs node: resolved by its sign at the value
    (negative at 0.9, positive at 0.2), each side checked where that sign holds."""
    for value, side in ((0.9, (0.55, 0.95)), (0.2, (0.0, 0.45))):
        an = analyze(ABS_HB, {"beta": value})
        assert an.threshold.has(sp.Symbol("beta", real=True))
        assert_crossing(an, {})
        assert_crossing(an, {"beta": float(RNG.uniform(*side))})


def test_frozen_preconditioner_lr_scale_and_summary_against_the_rule():
    an = analyze("adam")
    assert an.frozen_sqrt and an.lr_scale() == pytest.approx(1 + 1e-8, rel=1e-15)
    for point in _random_point(an, 1, 0.9):  # beta2^t -> 0: bias corrections 1
        assert_crossing(an, point, frozen=True, settle=20000)
    # D(P) away from P = 1: the denominator the numpy rule divides its step by when
    # sqrt(v_hat) = P (late time, g = 0: w' = w - lr m'/D with m' = beta1 m)
    h = an.rule.hyper()
    for v0 in (9.0, 0.25):
        w1, st = an.rule.step(1.0, 0.0, {"step": 10**6, "exp_avg": 0.5, "exp_avg_sq": v0}, h,
                              NUMPY)
        D = h["lr"] * st["exp_avg"] / (1.0 - w1)
        got = an.preconditioner.subs(sp.Symbol("P", positive=True), np.sqrt(st["exp_avg_sq"]))
        assert float(got) == pytest.approx(D, rel=1e-10)
    s = an.summary()
    assert s["symbolic"] == {"beta1": "betas[0]", "beta2": "betas[1]"}
    assert "P^{-1}" in s["x"] and s["eos_sharpness_at_values"] == pytest.approx(
        s["threshold_at_values"] / an.values["lr"], rel=1e-12)


def test_vr_momentum_min_gate_resolved_against_the_rule():
    an = analyze("vr_momentum")
    assert any(n.startswith("Min") for n in an.notes)
    assert_crossing(an, _random_point(an, 1)[0])


def _shown_regions_against_the_rule(an, point, lr=0.1):
    """The shown Schur conjunction and stable region at eta*lambda = f * threshold (f on both
    sides of 1, some eta*lambda < 1) against the rule's numeric spectral radius; the shown
    flip verdict against the numeric eigenvalue that leaves the unit disc just past it."""
    H = sp.Symbol("eta_lambda", positive=True)
    at = {b.symbol: point[b.name] for b in an.bindings}
    steps = an.analysis.steps
    shown = [s.expr for s in steps if s.text.startswith(("Schur conditions", "stable region"))]
    assert len(shown) == 2
    thr = an.threshold_value(**point)
    values = {**bind(an.values, an.bindings, point), "lr": lr}
    for f in (0.1, 0.45, 0.9, 1.1, 1.6):
        stable = numeric_rho(an.rule, values, f * thr / lr) < 1
        for region in shown:
            assert bool(region.subs({**at, H: f * thr})) == stable, (an.rule.name, f, region)
    # det(I + A) = (-1)^n p(-1) holds for every square A: the shown residual is 0 at the point
    ident = [s for s in steps if s.text.startswith("rod-flow flip condition")][0]
    assert ident.proved is True and sp.simplify(ident.expr.subs({**at, H: 0.7 * thr})) == 0
    mu = numeric_eigenvalues(an.rule, values, 1.01 * thr / lr)
    flips = min(mu.real) < -1 and max(abs(mu[abs(mu.imag) > 1e-9]), default=0) < 1
    binds = [s.text for s in steps if s.text.startswith("the flip threshold")]
    assert binds and binds[0].startswith("the flip threshold is the stability threshold") == flips


def test_model_dynamic_entries_and_ranges_against_the_rule():
    """The Model that analyze builds: its dynamic entries are the state entries that respond
    linearly to w at the late-time fixed point of the numpy rule (finite differences: counters,
    settled scalars and w-free entries do not); over each parameter's explorer range the traced
    Schur boundary equals the closed form (the range stays where the threshold holds)."""
    for an in (analyze(f"{USER}:heavy_ball"), analyze(COUNTED)):
        model = an.analysis.model
        h = an.rule.hyper(**an.values)
        _, st = an.rule.step(0.0, 0.0, an.rule.init(np.float64(0.0), NUMPY), h, NUMPY)
        for _ in range(50):
            _, st = an.rule.step(0.0, 0.0, st, h, NUMPY)
        moved = {k for k in _floats(st)
                 if abs(float(_get(an.rule.step(1e-6, 1e-6, st, h, NUMPY)[1], k))
                        - float(_get(an.rule.step(-1e-6, -1e-6, st, h, NUMPY)[1], k))) > 1e-9}
        assert set(model.dynamic) == {k for k, _ in moved}, (an.rule.name, moved)
        for prm in model.params:
            ys = np.linspace(*prm.range, 5)
            traced = an.traced_threshold(prm.name, ys, x_max=4 * an.threshold_value(**{prm.name: ys[-1]}))
            closed = [an.threshold_value(**{prm.name: y}) for y in ys]
            np.testing.assert_allclose(traced, closed, rtol=1e-8)


DOUBLE_GD = Rule("double_step_gd", lambda w, ops: {},
                 lambda w, g, state, h, ops: (w - 2 * h["lr"] * g, {}), {"lr": 0.1})


def test_shown_regions_and_flip_against_the_rule():
    """Heavy ball (n = 2), the AggMo candidate (n = 3: (-1)^n matters) and gradient descent
    with a doubled step, whose threshold and flip are eta lambda = 1 (1 - 2 eta lambda = -1)."""
    an = analyze(DOUBLE_GD)
    assert an.threshold_value() == 1.0 and float(an.flip) == 1.0
    _shown_regions_against_the_rule(an, {})
    an = analyze(f"{USER}:heavy_ball")
    for point in [an.point()] + _random_point(an):
        _shown_regions_against_the_rule(an, point)
    an = analyze("aggmo")
    for point in _random_point(an, 1):
        _shown_regions_against_the_rule(an, point)


# ------------------------------------------------------------------ traced boundary
def test_traced_threshold_against_the_rule_and_edges():
    an = analyze(f"{USER}:ema")
    ys = np.array([0.0, 0.3, 0.8])
    traced = an.traced_threshold("beta", ys, x_max=100.0)
    for y, t in zip(ys, traced):
        assert numeric_rho(an.rule, {"lr": 0.1, "beta": y}, 0.99999 * t / 0.1) < 1
        assert numeric_rho(an.rule, {"lr": 0.1, "beta": y}, 1.00001 * t / 0.1) > 1
    np.testing.assert_allclose(traced, 2 * (1 + ys) / (1 - ys), rtol=1e-12)  # Cohen et al. 2021
    one = an.traced_threshold(x_max=100.0)
    assert one.shape == (1,) and one[0] == pytest.approx(38.0, rel=1e-12)
    # scan ending before the threshold: the boundary is beyond it (inf), not an index error
    assert np.isinf(an.traced_threshold("beta", np.array([0.9]), x_max=10.0)[0])
    # the last scan point is the first unstable one (h = 1.5, 3): the boundary 2 of GD (beta = 0)
    assert an.traced_threshold("beta", np.array([0.0]), x_max=3.0, n=3)[0] == pytest.approx(2.0, rel=1e-12)
    # first scan point (5000) already unstable: the boundary is bisected in (0, 5000) -- GD's 2,
    # to the bisection's resolution 5000 * 2^-50 ~ 4.4e-12 (absolute)
    assert an.traced_threshold("beta", np.array([0.0]), x_max=1e4, n=3)[0] == pytest.approx(2.0, abs=5e-12)


def _v_init(w, ops):
    """One momentum buffer v = 0 (the test rules EARLY, LATE and UNIT_EDGE)."""
    return {"v": ops.zeros_like(w)}


def _early_step(w, g, state, h, ops):
    """``w - lr (2 v - g/2)``, ``v = beta v + g``: stable only up to eta lambda ~0.22 at beta = 0.9."""
    v = h["beta"] * state["v"] + g
    return w - h["lr"] * (2 * v - 0.5 * g), {"v": v}


EARLY = Rule("early_boundary", _v_init, _early_step, {"lr": 0.1, "beta": 0.9})


def test_traced_threshold_finds_a_boundary_before_the_first_scan_point():
    # the default scan's step is 0.25; this rule leaves the unit disc near 0.222 (a finding of
    # the mutation run: the scan used to return 0 here); checked on the rule's numeric Jacobian
    an = analyze(EARLY)
    t = an.traced_threshold()[0]
    assert 0 < t < 0.25
    assert numeric_rho(EARLY, {"lr": 0.1, "beta": 0.9}, 0.999 * t / 0.1) < 1
    assert numeric_rho(EARLY, {"lr": 0.1, "beta": 0.9}, 1.001 * t / 0.1) > 1
    # unstable on all of (0, first point): still 0 (GD with a negative step: 1 + eta lambda > 1)
    neg = Rule("ascent", lambda w, ops: {}, lambda w, g, state, h, ops: (w + h["lr"] * g, {}),
               {"lr": 0.1})
    assert analyze(neg).traced_threshold()[0] == 0.0


def _two_init(w, ops):
    return {"v1": ops.zeros_like(w), "v2": ops.zeros_like(w)}


def _two_step(w, g, state, h, ops):
    """Test rule ``w - 2 lr (v2 - v1 + g)``, ``v_i = beta_i v_i + g``: at beta = (0.5, 0.95) its
    stable set is two intervals, about (0, 0.039) and (0.34, 1.18) (found by a numeric search)."""
    v1 = h["beta1"] * state["v1"] + g
    v2 = h["beta2"] * state["v2"] + g
    return w - 2 * h["lr"] * (v2 - v1 + g), {"v1": v1, "v2": v2}


TWO_WINDOWS = Rule("two_windows", _two_init, _two_step, {"lr": 0.1, "beta1": 0.5, "beta2": 0.95})


def test_traced_threshold_is_the_end_of_the_first_stable_interval():
    """A stable set that is not one interval: stable near 0, unstable at the first scan point
    (0.25), stable again at the second (0.5) and up to about 1.18.  The traced boundary is the end
    of the *first* interval, checked on the rule's numeric Jacobian (a scan that started later or
    skipped the first point would return about 1.18)."""
    values = {"lr": 0.1, "beta1": 0.5, "beta2": 0.95}
    rho = lambda x: numeric_rho(TWO_WINDOWS, values, x / values["lr"])  # noqa: E731
    assert rho(0.25) > 1 and rho(0.5) < 1 and rho(1.1) < 1  # the premise: a second window
    t = analyze(TWO_WINDOWS).traced_threshold()[0]
    assert 0 < t < 0.25
    assert rho(0.999 * t) < 1 < rho(1.001 * t)


def _kinked(update):
    return Rule("kinked", lambda w, ops: {}, lambda w, g, state, h, ops: (w - h["lr"] * update(g, ops),
                                                                         {}), {"lr": 0.1})


@pytest.mark.parametrize("update,reason", [
    (lambda g, ops: ops.where(g > 0, 1.0, -1.0), "step function"),
    (lambda g, ops: ops.where((1 + g) ** 2 > 1, 1.0, -1.0), "step function"),  # sides 1 = 1
    (lambda g, ops: ops.where(g > -g, 1.0, -1.0), "step function"),  # sides -g, g: sum 0
    (lambda g, ops: g / (g * g + g**4) ** 0.5, "fractional power"),  # a normalised step
    (lambda g, ops: ops.maximum(g, 0.0 * g), "tied arguments"),  # one-sided (ReLU) step
])
def test_kinks_at_the_minimum_are_refused_and_the_rule_shows_them(update, reason):
    """A sign step however its condition is written, a normalised step, a one-sided step: no
    Jacobian at w = 0.  Oracle: the numpy rule on f = w^2/2 near 0 (d = 1e-7) either jumps
    (|F(d) - F(-d)| > lr) or has one-sided slopes that differ by more than lr/2 (a kink), where
    a smooth map has neither."""
    rule = _kinked(update)
    with pytest.raises(NotAnalyzable, match=reason):
        analyze(rule)
    h, d = rule.hyper(), 1e-7
    F = {k: rule.step(k * d, k * d, {}, h, NUMPY)[0] for k in (-2, -1, 1, 2)}
    jump = abs(F[1] - F[-1])
    kink = abs((F[2] - F[1]) / d - (F[-1] - F[-2]) / d)
    assert jump > h["lr"] or kink > h["lr"] / 2, (jump, kink)


def test_refusals():
    for spec, reason in (("lion", "step function"),
                         (f"{Path(USER).parent / 'not_analyzable.py'}:normalized", "vanishes there"),
                         (f"{Path(USER).parent / 'not_analyzable.py'}:decaying", "does not settle"),
                         (f"{Path(USER).parent / 'not_analyzable.py'}:push", "not a fixed point")):
        with pytest.raises(NotAnalyzable, match=reason):
            analyze(spec)
    with pytest.raises(ValueError, match="no Rule named"):
        load_rule(f"{USER}:missing")


# ------------------------------------------------------------------ candidate path
def test_aggmo_candidate_against_the_rule():
    an = analyze("aggmo")
    assert an.threshold_kind == "candidate" and an.status == "derived"
    step = [s for s in an.analysis.steps if "traced boundary" in s.text][0]
    assert "64 parameter points" in step.text
    for point in _random_point(an, 2):
        assert_crossing(an, point)
    assert an.flip is not None


def _late_step(w, g, state, h, ops):
    """Test rule ``w - lr (v + 4 v')``, ``v' = beta v + g``: two certified upper bounds that
    cross at beta = 0.2: 1 - beta (from 1 - det A > 0) and 2 (1 + beta)/3 (from p(-1) > 0)."""
    v = h["beta"] * state["v"] + g
    return w - h["lr"] * (state["v"] + 4 * v), {"v": v}


LATE = Rule("crossing_upper_bounds", _v_init, _late_step, {"lr": 0.1, "beta": 0.9})


def test_crossing_upper_bounds_are_not_reported_as_one_closed_form():
    """Neither upper bound is the smaller on the whole domain, so neither may be reported as
    *the* threshold.  Whatever ``analyze`` reports (a closed form if any, else the traced
    boundary) must cross 1 where the rule's numeric Jacobian does, on both sides of beta = 0.2."""
    an = analyze(LATE)
    assert sorted(r.kind for r in an.analysis.roles) == ["lower", "upper", "upper"]
    assert all(r.certified for r in an.analysis.roles)
    for beta in (0.1, 0.9):
        values = {"lr": 0.1, "beta": beta}
        t = an.threshold_value(beta=beta) if an.threshold is not None else \
            an.traced_threshold(beta=beta)[0]
        assert numeric_rho(LATE, values, 0.999 * t / 0.1) < 1 < numeric_rho(LATE, values, 1.001 * t / 0.1)


def _filtered_init(w, ops):
    return {"v": ops.zeros_like(w), "gp": ops.zeros_like(w)}


def _filtered_step(w, g, state, h, ops):
    """Test rule: momentum on g + g_prev (a filter with a zero at mu = -1), step scaled by
    2 beta - 1 (ascent for beta < 1/2): p(-1) does not depend on eta*lambda, p(1) vanishes only at
    eta*lambda = 0, and no condition's signs are certified."""
    v = h["beta"] * state["v"] + g + state["gp"]
    return w - h["lr"] * (2 * h["beta"] - 1) * v, {"v": v, "gp": g}


FILTERED = Rule("filtered_momentum", _filtered_init, _filtered_step, {"lr": 0.1, "beta": 0.9})


def test_no_crossing_root_means_no_candidate():
    """Neither crossing edge has a positive root in eta*lambda (the filter makes p(-1) constant;
    p(1) = 2 (2 beta - 1) eta*lambda), so there is no candidate: the boundary is only traced, and
    the traced boundary crosses where the numeric Jacobian does.  (A candidate taken from p at
    another point than mu = +-1 would be a crossing the rule does not have.)"""
    an = analyze(FILTERED)
    p = an.charpoly
    assert not sp.expand(p.subs(MU, -1)).has(H) and sp.solve(p.subs(MU, 1), H) == []
    assert an.threshold_kind == "traced" and an.threshold is None
    assert not any("candidate" in s.text for s in an.analysis.steps)
    t = an.traced_threshold()[0]
    values = {"lr": 0.1, "beta": 0.9}
    assert numeric_rho(FILTERED, values, 0.999 * t / 0.1) < 1 < numeric_rho(FILTERED, values, 1.001 * t / 0.1)


def _unit_step(w, g, state, h, ops):
    """Test rule: momentum coefficient 2 beta - 1 and step 4 beta, ``v' = (2 beta - 1) v + g``,
    ``w - 4 beta lr v'``: p(-1) = 4 beta (1 - eta*lambda), stable iff eta*lambda < 1 for
    beta in (0, 1); at beta = 0 the step vanishes, so no sign is certified on [0, 1)."""
    v = (2 * h["beta"] - 1) * state["v"] + g
    return w - 4 * h["beta"] * h["lr"] * v, {"v": v}


UNIT_EDGE = Rule("unit_edge", _v_init, _unit_step, {"lr": 0.1, "beta": 0.9})


def test_candidate_root_one_is_kept():
    """No condition is certified, so the threshold is the mu = -1 crossing's root, exactly 1 --
    kept as a candidate (derived) and checked on the rule's numeric Jacobian at random beta."""
    an = analyze(UNIT_EDGE)
    assert not any(r.certified and r.kind == "upper" for r in an.analysis.roles)
    assert an.threshold_kind == "candidate" and an.threshold == 1 and an.status == "derived"
    for point in _random_point(an, 2):
        assert assert_crossing(an, point) == 1.0


def test_candidate_check_is_scale_free():
    """AggMo with its step divided by 10^8 has the candidate 10^8 times AggMo's, and the check
    against the traced boundary must keep it: the gap is judged relative to the candidate, so a
    scaled rule passes or fails exactly as the original does."""
    base = get_rule("aggmo")
    scaled = Rule("aggmo_step_over_1e8", base.init,
                  lambda w, g, state, h, ops: base.step(w, g, state, {**h, "lr": h["lr"] / 10**8}, ops),
                  base.defaults)
    an, an0 = analyze(scaled), analyze(base)
    assert an.threshold_kind == "candidate" and an.status == "derived"
    assert sp.simplify(an.threshold - 10**8 * an0.threshold) == 0
