"""Positivity certificates: the domain substitution covers each hyperparameter domain and nothing
more (sampled), and each role's bound is where the condition changes sign."""
import numpy as np
import pytest
import sympy as sp

from momentumlab.theory.stability_certificates import classify_condition, domain_substitution
from momentumlab.theory.stability_models import DOMAINS, H, MODELS

U = np.concatenate([[0.0], np.logspace(-6, 6, 200)])


@pytest.mark.parametrize("name", list(MODELS))
def test_substitution_covers_the_domain_and_no_more(name):
    subs, variables = domain_substitution(MODELS[name])
    for p, u in zip(MODELS[name].params, variables):
        vals = np.array([float(subs[p.symbol].subs(u, x)) for x in U])
        lo, hi = {"[0, 1)": (0, 1), "(0, 1]": (0, 1), "[0, oo)": (0, np.inf)}[DOMAINS[p.domain]]
        assert np.all(vals >= lo) and np.all(vals <= hi), (p.name, vals.min(), vals.max())
        # both ends are reached (or approached): the whole domain is covered
        assert vals.min() == pytest.approx(lo, abs=1e-5)
        assert vals.max() == pytest.approx(hi, abs=1e-5) if np.isfinite(hi) else vals.max() > 1e5
        if DOMAINS[p.domain] == "(0, 1]":
            assert vals.min() > 0
        if DOMAINS[p.domain] == "[0, 1)":
            assert vals.max() < 1


def test_role_bounds_are_where_the_condition_changes_sign():
    u = sp.Symbol("u", nonnegative=True)
    beta = sp.Symbol("beta", real=True)
    subs = {beta: u / (1 + u)}
    lower = classify_condition(3 * H, subs, [u])
    assert lower.kind == "lower" and lower.bound == 0 and lower.certified
    upper = classify_condition(2 + 2 * beta - H, subs, [u])
    assert upper.kind == "upper" and sp.simplify(upper.bound - (2 + 2 * beta)) == 0
    assert classify_condition(H + 1, subs, [u]).kind == "always"
