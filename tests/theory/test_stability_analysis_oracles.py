"""The displayed steps of theory.stability_analysis, each against an independent path.

`momentumlab explain` shows every step's expression; a wrong one is a wrong statement even when
the closed form is right.  Here each shown expression is evaluated at points and compared with a
number obtained another way: the float iteration matrix rebuilt by finite differences of the rule
(tests/theory/test_stability.py's path: stable iff its spectral radius < 1, and
p(-1) = det(-I - A)), or the papers' closed forms typed here, in exact rationals where the step is
symbolic.  Found by the mutation run of scripts/mutation.py (results/mutation.json).
"""
import numpy as np
import pytest
import sympy as sp

from momentumlab.theory.schur import Condition
from momentumlab.theory.stability import MODELS, H, analyse, get_model
from momentumlab.theory.stability_analysis import _region_steps
from tests.theory.test_stability import _float_matrix
from tests.theory.test_stability_oracles import _draw, _rho

NAMES = list(MODELS)
RNG = np.random.default_rng(23)


def _paper_B(beta):
    """B(beta) = (2 + 2 beta)/(1 - beta), typed from VRAdam Sec. 4.1 / Cohen et al. 2022 Sec. 3."""
    return (2 + 2 * beta) / (1 - beta)


def _step(name, prefix):
    found = [s for s in analyse(name).steps if s.text.startswith(prefix)]
    assert len(found) == 1, (name, prefix, [s.text[:40] for s in analyse(name).steps])
    return found[0]


def _at(expr, values):
    """``expr`` with its symbols (looked up by name) at the given exact values."""
    names = {s.name: s for s in expr.free_symbols}
    return expr.subs({names[k]: v for k, v in values.items() if k in names})


def _relation_at(expr, name, x, params):
    """The shown relation in (eta_lambda, params) at a point, in exact rationals."""
    vals = {k: sp.Rational(v) for k, v in params.items()}
    out = _at(expr, {H.name: sp.Rational(x), **vals})
    assert out in (sp.true, sp.false), (name, out)
    return bool(out)


@pytest.mark.parametrize("name", NAMES)
def test_shown_region_and_conjunction_are_the_float_matrix_stability(name):
    """Step "Schur conditions ... region = their conjunction" and step "stable region: 0 <
    eta*lambda < ...": both shown relations hold exactly where the float matrix is stable, at
    points well inside, just inside (0.999), just outside (1.001) and far outside."""
    conj = _step(name, "Schur conditions").expr
    region = _step(name, "stable region").expr
    an = analyse(name)
    for _ in range(2):
        params = _draw(name, RNG)
        thr = an.threshold_value(params)
        for f in (0.01, 0.5, 0.999, 1.001, 2.0):
            x = float(f * thr)
            stable = _rho(name, x, params) < 1
            assert _relation_at(conj, name, x, params) == stable, (f, params)
            assert _relation_at(region, name, x, params) == stable, (f, params)


@pytest.mark.parametrize("order", ["wide first", "tight first"])
def test_smallest_of_several_upper_bounds_is_the_region_edge(order):
    """No registered model has two upper bounds, so the branch that keeps the smallest is run on
    made-up conditions h > 0, h < 4 + 4 beta, h < 2 + 2 beta (in both orders): the threshold
    must be where the conjunction of the conditions, evaluated directly, stops holding."""
    model = get_model("heavy_ball")
    beta = model.param("beta").symbol
    wide, tight = Condition(4 + 4 * beta - H, "wide"), Condition(2 + 2 * beta - H, "tight")
    conds = [Condition(H, "lower")] + ([wide, tight] if order == "wide first" else [tight, wide])
    roles, threshold, steps, ok = _region_steps(model, conds)
    assert ok and threshold is not None
    for b in (sp.Integer(0), sp.Rational(1, 3), sp.Rational(9, 10)):
        edge = threshold.subs(beta, b)

        def inside(h):
            return all(bool(c.expr.subs({beta: b, H: h}) > 0) for c in conds)

        assert inside(edge * (1 - sp.Rational(1, 10**6)))
        assert not inside(edge * (1 + sp.Rational(1, 10**6)))


_POINTS = [(sp.Rational(b), sp.Rational(g), sp.Rational(r)) for b, g, r in
           [(0, 0, 1), ("1/3", "1/2", "5/7"), ("9/10", 3, "1/10"), ("1/2", 7, 4)]]


def test_vradam_cap_step_is_B_times_the_gate_headroom():
    """Step "the gate is capped": B(beta)(1 + alpha1) - B(beta)(1 + G) with alpha1 = G + r,
    i.e. B(beta) r, from the paper's B at exact points."""
    shown = _step("vradam", "the gate is capped").expr
    for b, g, r in _POINTS:
        want = _paper_B(b) * (1 + g + r) - _paper_B(b) * (1 + g)
        assert _at(shown, {"beta": b, "G": g, "r": r}) == want


def test_vradam_past_the_cap_step_is_minus_p_at_minus_one_of_the_float_matrix():
    """Step "for alpha0*lambda = B(beta)(1 + alpha1) + sigma": -p_G(-1) = -det(I + A) of the
    float matrix (2x2, so det(-I - A) = det(I + A)) at alpha0*lambda = B(beta)(1 + G + r) + sigma,
    the gate frozen at G (rate alpha0/(1 + G), tests/theory/test_stability_oracles._rho)."""
    shown = _step("vradam", "for alpha0*lambda = B(beta)(1 + alpha1) + sigma").expr
    for (b, g, r), sigma in zip(_POINTS, ("1/2", 2, "1/5", 3)):
        sigma = sp.Rational(sigma)
        x = float(_paper_B(b) * (1 + g + r) + sigma)
        A = _float_matrix("vradam", x / (1 + float(g)), {"beta": float(b), "G": 0.0})
        want = -np.linalg.det(np.eye(2) + A)
        got = float(_at(shown, {"beta": b, "G": g, "r": r, "sigma": sigma}))
        # finite differences of a linear map: entries to ~1e-16 x, so det(I + A) to ~1e-16 x^2
        # (x <= 156 here: <= 3e-12; measured <= 5e-14)
        assert got == pytest.approx(want, rel=0, abs=1e-10), (b, g, r, sigma)
        assert want > 0


def test_vradam_at_the_minimum_step_is_adams_threshold():
    """Step "at the minimum v = 0, so G = 0": the paper's B(beta1), and where the float matrix
    with the gate at 0 leaves the unit disc."""
    shown = _step("vradam", "at the minimum v = 0").expr
    for b in (sp.Integer(0), sp.Rational(1, 3), sp.Rational(9, 10)):
        value = _at(shown, {"beta": b})
        assert value == _paper_B(b)
        rho = [np.abs(np.linalg.eigvals(_float_matrix("vradam", f * float(value),
                                                      {"beta": float(b), "G": 0.0}))).max()
               for f in (0.99, 1.01)]
        assert rho[0] < 1 < rho[1], b


def test_tam_d_to_zero_step_is_where_the_d0_float_matrix_leaves_the_disc():
    """Step "so the damping switches the gradient off": the limit d -> 0 of the threshold is
    (2 + 2 beta)/epsilon (TAM's (2 + 2 beta)/(d + eps) at d = 0), and the float matrix of the
    rule with d = 0 (s_hat = -1) leaves the unit disc there."""
    shown = _step("tam", "so the damping switches").expr
    for b, e in ((0, "1/4"), ("1/2", "1/10"), ("9/10", "3/2")):
        b, e = sp.Rational(b), sp.Rational(e)
        value = _at(shown, {"beta": b, "epsilon": e})
        assert value == (2 + 2 * b) / e
        params = {"beta": float(b), "d": 0.0, "epsilon": float(e)}
        rho = [np.abs(np.linalg.eigvals(_float_matrix("tam", f * float(value), params))).max()
               for f in (0.99, 1.01)]
        assert rho[0] < 1 < rho[1], (b, e)
