"""The convergence checks: quick mode passes, the measurement can fail, property tests measured <= bound."""
import math

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from momentumlab.empirics.backend import torch_ops
from momentumlab.empirics.checks import load_claims
from momentumlab.empirics.checks.convergence import (COUNTEREXAMPLE, HYPER, QUICK_NS, bound_for, measure_curve,
                                         simulate, tau_draws)
from momentumlab.empirics.objectives import OBJECTIVES, PseudoHuberToy, get_objective
from momentumlab.theory.claims import get_claim
from momentumlab.theory.rules import get_rule

load_claims()


def test_quick_checks_pass_and_report_bound_over_measured():
    """One test for the three claims so that the cached runs are shared (one xdist worker)."""
    for cid in ("convergence.adam_bound", "convergence.vradam_bound", "convergence.rate"):
        result = get_claim(cid).check(device="cpu", seed=0, quick=True)
        assert result.passed, result.details.get("summary")
        assert result.error <= result.tolerance
        if cid != "convergence.rate":
            for name in OBJECTIVES:
                ratios = result.details["objectives"][name]["bound_over_measured"]
                assert set(ratios) == set(QUICK_NS) and min(ratios.values()) > 1


def test_a_bound_with_shrunken_constants_is_violated():
    """Constants 1000x too small make a 'bound' the measurement exceeds: the check has teeth."""
    obj = get_objective("robust_regression")
    points = measure_curve("robust_regression", "adam", QUICK_NS, 0, "cpu")
    consts = obj.theorem_constants(HYPER["eps"])
    fake = {**consts, "L": consts["L"] / 1000, "R": consts["R"] / 1000}
    wrong = [get_claim("convergence.adam_bound").predict(N=p.N, **fake, eps=HYPER["eps"],
                                                         beta1=HYPER["beta1"], alpha0=HYPER["alpha0"])
             for p in points]
    assert any(p.ci[0] > b for p, b in zip(points, wrong))


def test_tau_draws_follow_the_theorem_distribution():
    N, beta1 = 30, 0.8
    gen = torch.Generator().manual_seed(0)
    tau = tau_draws(N, beta1, 4000, 8, gen).flatten().numpy()
    freq = np.bincount(tau, minlength=N) / tau.size
    w = 1 - beta1 ** (N - np.arange(N))
    assert np.abs(freq - w / w.sum()).max() < 0.004


def test_batched_gate_uses_each_seeds_own_norm():
    """VRAdam's gate on a (seeds, d) batch equals running every seed alone."""
    rule = get_rule("defossez_adam")
    h = rule.hyper(lr=0.1, betas=(0.9, 0.99), eps=1e-8, beta3=1.0, alpha1=10.0)
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(5, 7, generator=gen, dtype=torch.float64)
    gs = torch.randn(6, 5, 7, generator=gen, dtype=torch.float64) * torch.tensor([0.1, 1, 3, 10, 30.0])[:, None]
    batched, single = torch_ops(batch_dims=1), torch_ops(batch_dims=0)
    wb, sb = w.clone(), rule.init(w, batched)
    rows = [(w[i].clone(), rule.init(w[i], single)) for i in range(5)]
    for g in gs:
        wb, sb = rule(wb, g, sb, h, batched)
        rows = [rule(wi, g[i], si, h, single) for i, (wi, si) in enumerate(rows)]
    assert torch.allclose(wb, torch.stack([wi for wi, _ in rows]), rtol=1e-13, atol=0)
    assert torch.allclose(sb["gate"].flatten(), torch.stack([torch.as_tensor(si["gate"]) for _, si in rows]))
    assert len({round(float(x), 6) for x in sb["gate"].flatten()}) > 1  # the seeds differ


def test_gate_counterexample_vradam_does_not_converge():
    """1-D pseudo-Huber with +-2 noise, beta1 = 0, beta3 = 1, alpha1 = 10: VRAdam drifts to |F'| ~ 1.6."""
    toy = PseudoHuberToy()
    kw = {k: COUNTEREXAMPLE[k] for k in ("alpha0", "eps")}
    gate = {"beta3": COUNTEREXAMPLE["beta3"], "alpha1": COUNTEREXAMPLE["alpha1"]}
    adam = [simulate(toy, N, beta1=0.0, seed=N, seeds=64, **kw).mean() for N in (100, 3162)]
    vr = [simulate(toy, N, beta1=0.0, seed=N, seeds=64, **kw, **gate).mean() for N in (100, 3162)]
    assert adam[1] < adam[0] and vr[1] > vr[0] and vr[1] > 10 * adam[1]
    # where E[gamma(G + xi)(G + xi)] = 0: the expected gated step vanishes at G* ~ 1.6, not at 0
    G = np.linspace(0.5, 2.4, 2000)
    gate_fn = lambda g: 1 / (1 + np.minimum(g * g, 10.0))  # noqa: E731
    drift = 0.5 * (gate_fn(G + 2) * (G + 2) + gate_fn(G - 2) * (G - 2))
    g_star = G[np.argmax(drift > 0)]
    assert 1.4 < g_star < 1.8 and vr[1] < g_star**2 * 1.1


@settings(max_examples=20)  # each example is a batched run of up to 1,500 steps x 32 seeds
@given(st.sampled_from(list(OBJECTIVES)), st.floats(0.0, 0.95), st.floats(0.05, 3.0),
       st.sampled_from([1e-8, 1e-5, 1e-2]), st.integers(50, 1500), st.booleans(),
       st.floats(0.1, 5.0), st.floats(0.0, 20.0), st.integers(0, 2**20))
def test_property_measured_below_bound(name, beta1, alpha0, eps, N, gated, beta3, alpha1, seed):
    """Random objective and optimizer parameters: the measured E||grad F(x_tau)||^2 is below the bound."""
    N = max(N, math.ceil(1 / (1 - beta1)) + 2)  # the theorem needs beta1 < beta2 = 1 - 1/N
    obj = get_objective(name)
    hyper = {"alpha0": alpha0, "beta1": beta1, "eps": eps}
    gate = {"beta3": beta3, "alpha1": alpha1} if gated else {}
    values = simulate(obj, N, **hyper, **gate, seeds=32, draws=8, seed=seed)
    bound = bound_for(obj, N, "vradam" if gated else "adam", {**hyper, **gate})
    assert values.mean() <= bound
