"""eos.* thresholds against the papers' published closed forms (a different path: theory.eos
derives them through stability's Schur test; here they are typed from Cohen et al. 2021/2022
and VRAdam Sec. 4), and the claims' derived form and status."""
import numpy as np
import pytest
import sympy as sp

from momentumlab.theory import eos
from momentumlab.theory.claims import get_claim

RNG = np.random.default_rng(7)
PAPER = {  # S_crit * lr as a function of beta (beta1)
    "gd": lambda b: 2.0,
    "heavy_ball": lambda b: 2.0 + 2.0 * b,
    "adam": lambda b: (2.0 + 2.0 * b) / (1.0 - b),
    "vradam": lambda b: (2.0 + 2.0 * b) / (1.0 - b),
}


@pytest.mark.parametrize("opt", sorted(PAPER))
def test_threshold_is_the_papers_closed_form(opt):
    for beta, lr in zip(RNG.uniform(0.05, 0.95, 4), RNG.uniform(0.01, 3.0, 4)):
        want = PAPER[opt](beta) / lr
        assert eos.threshold(opt, lr, beta) == pytest.approx(want, rel=1e-12)
        assert get_claim(f"eos.{opt}").predict(lr=lr, beta=beta) == pytest.approx(want, rel=1e-12)


def test_adam_is_38_over_eta_at_beta_09():
    assert eos.threshold("adam", 0.5, 0.9) == pytest.approx(76.0, rel=1e-12)


@pytest.mark.parametrize("opt", sorted(PAPER))
def test_derived_form_is_the_threshold_over_the_step(opt):
    d = get_claim(f"eos.{opt}").derive()
    assert d.status == "empirical"
    e = sp.sympify(d.expression)
    names = {s.name: s for s in e.free_symbols}
    step = names.pop("eta_t" if opt == "vradam" else "eta")
    beta = [names.pop(k) for k in list(names) if k.startswith("beta")]
    assert not names, names  # nothing but the step and beta (the gate is inside eta_t)
    for b, lr in zip(RNG.uniform(0.05, 0.95, 3), RNG.uniform(0.01, 3.0, 3)):
        got = float(e.subs({step: lr, **{s: b for s in beta}}))
        assert got == pytest.approx(PAPER[opt](b) / lr, rel=1e-12)
