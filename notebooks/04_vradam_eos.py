# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 04 — VRAdam at the edge of stability: physics, the period-2 orbit, a real network
#
# *Running time: about <!-- num: results/notebook_times.json#04_vradam_eos.full_minutes .0f -->11<!-- /num --> min at full size (`QUICK = False`) on a 2-core CPU;
# about <!-- num: results/notebook_times.json#04_vradam_eos.quick_seconds .0f -->94<!-- /num --> s with `QUICK = True`, the small sizes the tests and the docs run (measured by
# `scripts/time_notebooks.py`).*
#
# **Physics.** VRAdam (Vaidhyanathan et al., arXiv 2505.13196) adds a quartic kinetic term to
# the Lagrangian of a particle in the potential $V$ (the loss):
# $$L(x, v) = \tfrac{m}{2}\|v\|^2 + \tfrac{\beta_3}{4}\|v\|^4 - V(x).$$
# The Euler–Lagrange equation is $M(v)\,\dot v = -\nabla V(x)$ with the mass tensor
# $M(v) = \nabla_v^2 T = (m + \beta_3\|v\|^2) I + 2\beta_3 v v^\top$: the particle is heavier
# the faster it moves — $m + 3\beta_3\|v\|^2$ along $v$, $m + \beta_3\|v\|^2$ across.
# Discretised, this is the *braking rate* of Algorithm 1,
# $$\eta_t = \frac{\alpha_0}{1 + \min(\beta_3\|m_t\|^2, \alpha_1)},$$
# which lowers the step exactly when the velocity (the first moment $m_t$) is large.
#
# **Edge of stability.** On $f = \lambda w^2/2$ EMA momentum is stable iff
# $\eta\lambda < B(\beta) = (2+2\beta)/(1-\beta)$ (38 at $\beta = 0.9$, `theory.stability`). With the
# gate the threshold on the sharpness becomes $B(\beta_1)/\eta_t$ (`theory.eos`): a network
# trained by VRAdam should keep $\lambda_{\max}(P^{-1}H)$ at $B(\beta_1)/\eta_t$, as Adam keeps
# it at $B(\beta_1)/\eta$ (Cohen et al. 2022, arXiv 2207.14484).

# %% tags=["parameters"]
QUICK = False

# %%
import matplotlib.pyplot as plt
import numpy as np

import momentumlab.theory.vradam  # noqa: F401  (registers the vradam.* claims)
from momentumlab.empirics.checks import load_claims
from momentumlab.theory.claims import get_claim

load_claims()
el = get_claim("vradam.euler_lagrange")
print(el.statement)
mass = el.predict(m=1.0, beta3=1.0, speed=1.0)
print("effective mass along / across v at |v| = 1, m = beta3 = 1:", mass)
# a second path: the curvature of the kinetic term T(v) = m|v|^2/2 + beta3|v|^4/4 (numpy)
from momentumlab.empirics.checks.vradam import fd_masses

fd = fd_masses(1.0, 1.0, (0.6, 0.8))
print("finite differences of T along / across v:", fd)
assert abs(fd[0] / mass["along"] - 1) < 1e-9 and abs(fd[1] / mass["across"] - 1) < 1e-9

# %% [markdown]
# ## The period-2 orbit (VRMomentum on $f = \lambda w^2/2$)
#
# Above the threshold, $B < \alpha_0\lambda \le B(1+\alpha_1)$, the minimum is unstable but the gate
# creates a period-2 orbit $w_t = (-1)^t X$, $m_t = (-1)^t V$ on which the rate is *pinned at the
# threshold*: $\eta = B/\lambda$, $V^2 = (\alpha_0\lambda/B - 1)/\beta_3$, $|X| = B|V|/(2\lambda)$
# (`theory.vradam.period2_orbit`). Below we iterate the rule `theory.rules.vr_momentum` (numpy)
# from $w_0 = 1$ and draw the phase portrait $(w_t, m_t)$: even and odd steps land on the two
# predicted points $\pm(X, V)$.

# %%
from momentumlab.theory.ops import NUMPY
from momentumlab.theory.rules import get_rule
from momentumlab.theory.vradam import B, period2_orbit

beta1, beta3, alpha1, lam = 0.9, 1.0, 10.0, 1.0
rule = get_rule("vr_momentum")
fig, ax = plt.subplots(figsize=(6, 5))
for ratio, colour in ((1.2, "C0"), (1.4, "C1")):
    alpha0 = ratio * B(beta1) / lam
    h = rule.hyper(lr=alpha0, momentum=beta1, beta3=beta3, alpha1=alpha1)
    w, state = np.array(1.0), rule.init(np.array(1.0), NUMPY)
    ws, ms, etas = [], [], []
    for _ in range(400 if QUICK else 2000):
        w, state = rule.step(w, lam * w, state, h, NUMPY)
        ws.append(float(w))
        ms.append(float(state["momentum_buffer"]))
        etas.append(float(state["eta"]))
    X, V, eta = (float(v) for v in period2_orbit(lam, alpha0, beta1, beta3, alpha1))
    ax.plot(ws, ms, ".", ms=2, color=colour, alpha=0.5, label=rf"$\alpha_0\lambda/B = {ratio}$")
    ax.plot([X, -X], [-V, V], "x", ms=12, mew=2, color="k")
    assert abs(abs(ws[-1]) - X) < 1e-6 * X and abs(abs(ms[-1]) - V) < 1e-6 * V
    assert abs(etas[-1] * lam - B(beta1)) < 1e-6 * B(beta1)  # rate pinned at the threshold
    print(f"ratio {ratio}: |X| = {X:.5f}, V = {V:.5f}, eta*lam = {eta * lam:.3f} (B = {B(beta1):.1f});"
          f" simulated |w|, |m| = {abs(ws[-1]):.5f}, {abs(ms[-1]):.5f}")
ax.set_xlabel("$w_t$")
ax.set_ylabel("$m_t$")
ax.set_title("VRMomentum phase portrait (× = the predicted period-2 points)")
ax.legend()
plt.show()

# %%
orbit = get_claim("vradam.period2_orbit")
print(orbit.title)
print("derivation:", orbit.derive().status)

# %% [markdown]
# ## The network experiment
#
# Full-batch training of a tanh MLP on scikit-learn's digits (MSE on one-hot targets, float64,
# Cohen et al.'s setup, small). Every few steps the top eigenvalue of the preconditioned Hessian
# $P^{-1/2}HP^{-1/2}$, $P = \mathrm{diag}(\sqrt{\hat v_t}) + \epsilon$, is computed by Lanczos /
# LOBPCG on Hessian-vector products (`empirics.sharpness`), warm-started from the previous
# eigenvector. The dashed line is $B(\beta_1)/\eta_t$ with VRAdam's measured $\eta_t$ (Adam:
# $\eta$). "Hovers" = the median of $\eta_t\lambda_{\max}$ over the last 40% of the steps is within
# 10% of $B(\beta_1) = 38$ — the claims `eos.adam` and `eos.vradam` run this check.

# %%
from momentumlab.empirics.eos import cached_run, settings

fig, ax = plt.subplots(figsize=(7, 4))
results = {}
for name in ("adam", "vradam"):
    run = cached_run(settings(name, quick=QUICK), "cpu", 0)
    pretty = {"adam": "Adam", "vradam": "VRAdam"}[name]
    ax.semilogy(run.eval_step, run.sharpness, ".-", ms=3, label=pretty + r": $\lambda_{\max}(P^{-1}H)$")
    ax.semilogy(run.eval_step, run.threshold, "--", lw=1.2,
                label=pretty + (r": $B(\beta_1)/\eta_t$" if name == "vradam" else r": $B(\beta_1)/\eta$"))
    results[name] = get_claim(f"eos.{name}").check(device="cpu", seed=0, quick=QUICK)
ax.yaxis.set_major_locator(plt.LogLocator(subs=(1.0, 2.0, 5.0)))
ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:g}"))
ax.yaxis.set_minor_formatter(plt.NullFormatter())
ax.set_xlabel("step")
ax.set_ylabel("preconditioned sharpness")
ax.set_title("Adam and VRAdam at the edge of stability (digits, tanh MLP)")
ax.legend(fontsize=8)
plt.show()

for name, res in results.items():
    print(f"eos.{name}: predicted eta*S = {res.predicted:.2f}, measured (median, {res.details['window']})"
          f" = {res.measured:.2f}, error {res.error:.3f} -> {'PASS' if res.passed else 'FAIL'}")
vr = results["vradam"].details
print(f"VRAdam late median eta_t/alpha0 = {vr['late_median_eta_t'] / vr['lr']:.4f}, "
      f"min eta_t/alpha0 = {vr['min_eta_t'] / vr['lr']:.3f}, late ||m||^2 = {vr['late_median_norm_sq']:.2e}")
print(f"late loss oscillation VRAdam / Adam at the same alpha0: "
      f"{vr['oscillation_ratio_vradam_over_adam']:.3f}")
assert results["adam"].passed and results["vradam"].passed

# %% [markdown]
# **Reading.** Both optimizers drive $\lambda_{\max}(P^{-1}H)$ up to $38/\eta$ and keep it there. With
# the paper's $\beta_3 = 1$ the gate is almost idle on this network late in training
# ($\|m_t\|^2 \sim 10^{-6}$, so $\eta_t \approx \alpha_0$): VRAdam's edge of stability is Adam's, and
# its loss oscillations are of about the same size. A larger $\beta_3$ makes the gate act
# (`momentumlab eos --optimizer vradam --beta3 1e4`, full size): while $\eta_t < 0.9\alpha_0$ the
# median of $S\eta_t/B$ was 0.98 against $S\alpha_0/B = 1.37$ — the sharpness follows $B/\eta_t$ —
# and the late loss oscillation was 0.31× Adam's (README, section eos).
