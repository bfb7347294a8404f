"""Symbolic side of the AdamP claims and the numeric predictors derived from it."""
import numpy as np
import pytest
import sympy as sp

from momentumlab.theory import norm_growth as ng
from momentumlab.theory.claims import get_claim

ADAMP = ["adamp.lemma2.1", "adamp.lemma2.2", "adamp.corollary2.3", "adamp.lemmaA.1",
         "adamp.proposition3.1"]


STATUS = {"adamp.lemma2.1": ("proved from lemmas", {"chain rule"}),
          "adamp.lemma2.2": ("proved from lemmas", {"chain rule"}),
          "adamp.corollary2.3": ("proved from lemmas", {"algebra of limits"}),
          "adamp.lemmaA.1": ("proved from lemmas", {"monotonicity of finite sums"}),
          "adamp.proposition3.1": ("proved", set())}


@pytest.mark.parametrize("claim_id", ADAMP)
def test_every_adamp_claim_has_its_earned_status(claim_id):
    d = get_claim(claim_id).derive()
    status, lemmas = STATUS[claim_id]
    assert d.status == status, get_claim(claim_id).explain()
    assert lemmas <= set(d.lemmas)
    assert not [s for s in d.steps if s.kind == "stated"]


def test_euler_identity_is_reduced_in_symbolic_dimension():
    """No step is evaluated in a fixed number of coordinates: the dimension is the symbol n."""
    steps = [s for s in ng.euler_identity_steps() if s.kind == "reduced"]
    assert len(steps) == 2
    for claim_id in ("adamp.lemma2.1", "adamp.lemma2.2"):
        assert not any("d=" in s.text for s in get_claim(claim_id).derive().steps)


def test_corollary_closed_form_is_computed_for_an_undefined_sequence():
    d = get_claim("adamp.corollary2.3").derive()
    b = sp.Symbol("beta", positive=True)
    assert sp.simplify(d.expression - (1 + b) / (1 - b)) == 0
    assert any("undefined sequence" in s.text and s.kind == "reduced" for s in d.steps)


def test_numeric_predictor_matches_the_sympy_closed_form():
    """lemma_norm_sq's recursion equals Lemma 2.2's closed form evaluated by sympy."""
    rng = np.random.default_rng(0)
    P = rng.uniform(0.1, 2.0, size=7)
    beta, lr, w0 = 0.7, 0.3, 1.5
    expr = get_claim("adamp.lemma2.2").derive().expression.rhs
    W = w0
    for t in range(len(P)):
        step = expr.subs({ng.t: t}).doit()
        step = step.subs({ng.beta: beta, ng.eta: lr, sp.Function("W")(t): W})
        step = step.replace(ng.P, lambda k: sp.Float(P[int(k)]))
        W = float(step)
    pred = ng.lemma_norm_sq(w0, P, lr, beta)
    assert abs(pred[-1] - W) / W < 1e-12


def test_growth_ratio_limit_from_derived_expression():
    assert ng.growth_ratio_limit(0.9) == pytest.approx(19.0, rel=1e-12)
    assert ng.growth_ratio_limit(0.99) == pytest.approx(199.0, rel=1e-12)


def test_finite_horizon_ratio_tends_to_limit_for_constant_updates():
    r = [ng.growth_ratio(np.ones(T), 0.9) for T in (10, 100, 10_000)]
    assert r[0] < r[1] < r[2] < 19.0
    assert 19.0 - r[2] < 0.02


def test_great_circle_residual_detects_points_off_the_plane():
    w, wo = np.array([1.0, 0.0, 0.0]), np.array([1.0, 1.0, 0.0])
    assert ng.great_circle_residual(w, wo, np.array([2.0, 0.5, 0.0])) < 1e-15
    assert ng.great_circle_residual(w, wo, np.array([2.0, 0.5, 0.1])) > 1e-2


def test_explain_lists_steps_and_source():
    text = get_claim("adamp.lemma2.2").explain()
    assert "Lemma 2.2" in text and "[proved]" in text and "assumptions" in text
