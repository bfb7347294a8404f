"""``theory.analyze`` on rules it was not written for: thresholds, statuses, refusals.

The shipped thresholds come from the ``stability.*`` claims (a hand-written Model per
optimizer); here a rule file written independently (examples/my_momentum.py, state
``velocity``, parameter ``beta``) goes through the generic path, and sympy must reduce the
difference of the two closed forms to 0 -- a different derivation path, not a restatement.
Literature values (Gitman et al. 2019 for QHM, the scaling argument for dampening, the
degenerate AggMo) are independent formulas typed from their sources.
"""
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

from momentumlab.theory.analyze import NotAnalyzable, analyze, default_symbolic, load_rule
from momentumlab.theory.claims import is_zero
from momentumlab.theory.stability import analyse

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
USER = str(EXAMPLES / "my_momentum.py")
B = sp.Symbol("beta", real=True)


@pytest.mark.parametrize("name,shipped", [("heavy_ball", "heavy_ball"), ("nesterov", "nesterov"),
                                          ("ema", "ema_momentum")])
def test_user_file_reproduces_shipped_threshold(name, shipped):
    an = analyze(f"{USER}:{name}")
    assert an.status == "proved" and an.threshold_kind == "closed form"
    assert is_zero(an.threshold - analyse(shipped).threshold)  # both in the symbol beta
    assert an.flip is not None and is_zero(an.flip - an.threshold)  # the -1 crossing binds


def test_shipped_values_at_beta_09():
    """2 + 2 beta = 3.8, (2 + 2 beta)/(1 + 2 beta) = 19/14, (2 + 2 beta)/(1 - beta) = 38."""
    got = [analyze(f"{USER}:{n}").threshold_value() for n in ("heavy_ball", "nesterov", "ema")]
    np.testing.assert_allclose(got, [3.8, 19 / 14, 38.0], rtol=1e-12)


def test_qhm_matches_gitman_et_al_region():
    """QHM stability, derived by hand from p(-1) = 2(1+beta) - h(1+beta-2 nu beta) (the form we
    recall from Gitman, Lang, Zhang & Xiao, NeurIPS 2019): 0 < alpha lambda <
    2 (1 + beta) / (1 + beta (1 - 2 nu)); nu = 1 gives EMA momentum, nu = 0 plain GD."""
    an = analyze("qhm")
    beta, nu = sp.symbols("momentum nu", real=True)
    assert an.status == "proved"
    assert is_zero(an.threshold - 2 * (1 + beta) / (1 + beta * (1 - 2 * nu)))
    assert is_zero(an.threshold.subs(nu, 1) - 2 * (1 + beta) / (1 - beta))
    assert sp.simplify(an.threshold.subs(nu, 0)) == 2


def test_dampened_sgd_is_heavy_ball_with_a_smaller_step():
    """b = mu b + (1 - tau) g, w -= lr b is heavy ball at lr (1 - tau): threshold / (1 - tau)."""
    an = analyze("sgd")
    mu, tau = sp.symbols("momentum dampening", real=True)
    assert an.status == "proved" and "step" in an.assumptions[1]  # late time: first-step copy gone
    assert is_zero(an.threshold - (2 + 2 * mu) / (1 - tau))


def test_aggmo_candidate_is_derived_not_proved_and_degenerates_to_gd():
    an = analyze("aggmo")  # betas (0, 0.9, 0.99): beta2, beta3 symbolic, the 0 buffer decouples
    assert an.threshold_kind == "candidate" and an.status == "derived"
    b2, b3 = sp.symbols("beta2 beta3", real=True)
    assert sp.simplify(an.threshold.subs({b2: 0, b3: 0})) == 2  # all betas 0: (lr/3) * 3 g = plain GD
    assert an.state_names == ("w", "momentum_buffers[1]", "momentum_buffers[2]")


def test_adan_frozen_preconditioner_and_traced_boundary_agree():
    an = analyze("adan")
    assert an.frozen_sqrt and an.status == "derived"
    assert "exp_avg_sq" not in an.state_names and "previous_grad" in an.state_names
    ys = np.linspace(0.0, 0.99, 7)
    traced = an.traced_threshold("beta1", ys)
    closed = [an.threshold_value(beta1=y) for y in ys]
    np.testing.assert_allclose(traced, closed, rtol=1e-8)  # bisection to 2^-50 of the scan step


def test_eos_sharpness_is_threshold_over_lr():
    an = analyze(load_rule(f"{USER}:heavy_ball"), {"lr": 0.05})
    s = an.summary()
    assert s["eos_sharpness_at_values"] == pytest.approx(3.8 / 0.05, rel=1e-12)


@pytest.mark.parametrize("spec,reason", [
    ("lion", "step function"),
    (f"{EXAMPLES / 'not_analyzable.py'}:normalized", "vanishes there"),
    (f"{EXAMPLES / 'not_analyzable.py'}:decaying", "does not settle"),
    (f"{EXAMPLES / 'not_analyzable.py'}:push", "not a fixed point"),
])
def test_refusals_name_their_reason(spec, reason):
    with pytest.raises(NotAnalyzable, match=reason):
        analyze(spec)


def test_default_symbolic_and_bad_input():
    assert default_symbolic({"lr": 0.1, "betas": (0.0, 0.9), "eps": 1e-8, "nesterov": False}) == ["beta2"]
    with pytest.raises(ValueError, match="FILE.py:NAME"):
        load_rule("no_such_rule")
    with pytest.raises(ValueError, match="no Rule named"):
        load_rule(f"{USER}:missing")
    with pytest.raises(TypeError, match="no hyperparameter"):
        analyze("qhm", {"gamma": 0.5})
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        analyze("qhm", {"momentum": 1.5}, symbolic=["momentum"])


def test_inverse_square_root_preconditioner_and_settled_scalar_state():
    """Défossez et al.'s Adam divides by sqrt(eps + v) (sympy: v**(-1/2)) and scales the step by
    Omega = sqrt(sum_j beta2^j) -> 1/sqrt(1 - beta2), a scalar state that settles: the map is
    heavy ball with step lr (1 - beta1) Omega / P, threshold 2(1 + beta1) sqrt(1 - beta2)/(1 - beta1)."""
    an = analyze("defossez_adam")
    b1, b2 = sp.symbols("beta1 beta2", real=True)
    assert an.frozen_sqrt and any("omega_sq" in a for a in an.assumptions)
    q = sp.Symbol("q", positive=True)  # beta2 = 1 - q < 1, so that sympy may combine the roots
    assert is_zero((an.threshold - 2 * (1 + b1) * sp.sqrt(1 - b2) / (1 - b1)).subs(b2, 1 - q))
