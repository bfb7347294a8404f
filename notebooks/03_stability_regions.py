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
# # 03 — Stability regions: where each optimizer converges, oscillates or diverges
#
# *Running time: about <!-- num: results/notebook_times.json#03_stability_regions.full_minutes .0f -->1<!-- /num --> min at full size (`QUICK = False`) on a 2-core CPU;
# about <!-- num: results/notebook_times.json#03_stability_regions.quick_seconds .0f -->69<!-- /num --> s with `QUICK = True`, the small sizes the tests and the docs run (measured by
# `scripts/time_notebooks.py`).*
#
# On the quadratic $f(w) = \lambda w^2/2$ — one eigen-direction of any quadratic, the model behind
# the *edge of stability* (Cohen et al. 2021, 2022) — an optimizer's update is a linear map
# $z_{t+1} = A z_t$ on its state $z = (w, m, \dots)$. It converges iff every root of
# $\det(\mu I - A)$ lies inside the unit disk. `theory/stability.py` runs each update rule of
# `theory/rules.py` on sympy symbols, takes the iteration matrix, applies a Schur test
# (bilinear map + Liénard–Chipart, `theory/schur.py`) and solves the conditions for
# $h = \eta\lambda$. Adaptive methods are analysed with the **preconditioner frozen**: $\lambda$ is
# then an eigenvalue of $P^{-1}H$.
#
# Every region below is also *simulated*: `empirics/sweeps.py` runs the same rule on a whole grid
# of $(\eta\lambda, \beta)$ as one batched tensor computation and classifies each cell as
# converged, bounded or diverged. The plots are the ones `momentumlab explore stability` writes.

# %% tags=["parameters"]
QUICK = False

# %%
import io

import matplotlib.pyplot as plt
from IPython.display import Image, display
import numpy as np

from momentumlab.empirics.checks import load_claims
from momentumlab.empirics.explore import plot_stability, stability_report
from momentumlab.empirics.sweeps import sweep
from momentumlab.theory.claims import get_claim

load_claims()
GRID = 48 if QUICK else 192
STEPS = 400 if QUICK else 1000


def show(name, **kw):
    """Simulate, draw the heat map with the Schur boundary, display it; returns the report."""
    report, sw = stability_report(name, grid=GRID, steps=STEPS, **kw)
    png = io.BytesIO()
    plot_stability(sw, report).savefig(png, format="png")  # what `explore --png` writes
    display(Image(png.getvalue()))
    return report


# %% [markdown]
# ## Gradient descent: the threshold 2
# $w_{t+1} = (1 - \eta\lambda) w_t$ converges iff $|1 - \eta\lambda| < 1$, i.e. $0 < \eta\lambda < 2$.
# Every claim carries its derivation; `explain()` is the teaching view (`momentumlab explain`).

# %%
gd = get_claim("stability.gd")
print(gd.explain())
assert gd.derive().status == "proved" and gd.predict() == 2

# %% [markdown]
# ## Momentum moves the threshold from 2 to 38
# PyTorch's heavy ball $p = \beta p + g$, $w \leftarrow w - \eta p$ has
# $p(\mu) = \mu^2 - (1 + \beta - \eta\lambda)\mu + \beta$; the Schur conditions are
# $\eta\lambda > 0$ (root at $+1$), $1 - \beta > 0$ (a complex pair on the circle) and
# $2 + 2\beta - \eta\lambda > 0$ (root at $-1$): the threshold is $2 + 2\beta$.
# The EMA form $m = \beta m + (1-\beta) g$ — Adam's first moment — divides the gradient by
# $1/(1-\beta)$ and the threshold becomes $(2+2\beta)/(1-\beta)$: **38 at $\beta = 0.9$**, the
# $38/\eta$ of Cohen et al.'s adaptive edge of stability.

# %%
for name in ("heavy_ball", "ema_momentum"):
    c = get_claim(f"stability.{name}")
    print(f"{name:14s} threshold {c.derive().expression}:  beta=0 -> {c.predict(beta=0.0):g}, "
          f"beta=0.9 -> {c.predict(beta=0.9):g}")
assert get_claim("stability.ema_momentum").predict(beta=0.0) == 2
assert abs(get_claim("stability.ema_momentum").predict(beta=0.9) - 38) < 1e-9
rep = show("ema_momentum")
assert rep["agreement"]["fraction"] >= 0.995

# %% [markdown]
# The black line is the Schur boundary, the colours the simulated outcome. The thin strip along
# the boundary (and near $\beta \to 1$, where $|\mu| = \sqrt\beta \to 1$) is the *band* where
# 1000 steps cannot decide — $T\,|\ln\rho(A)| < 24$; outside it simulation and theory agree cell
# for cell.
#
# ## Nesterov: the look-ahead costs stability
# `nesterov=True` steps along $g + \beta p$: $p(\mu) = \mu^2 - (1-h)(1+\beta)\mu + (1-h)\beta$ and
# the threshold **drops** to $(2+2\beta)/(1+2\beta)$ — 1.36 at $\beta = 0.9$, below plain GD's 2.
# Torch's NAdam (momentum $\mu_t \to \beta_1$, frozen $P$) combines both:
# $2(1+\beta)/((1-\beta)(1+2\beta))$ — 13.6 at $\beta_1 = 0.9$.

# %%
nest = get_claim("stability.nesterov")
assert abs(nest.predict(beta=0.9) - 2 * 1.9 / 2.8) < 1e-12 and nest.predict(beta=0.9) < 2
print("nadam:", get_claim("stability.nadam").derive().expression,
      "=", round(get_claim("stability.nadam").predict(beta=0.9), 4))
rep = show("nesterov")
assert rep["agreement"]["fraction"] >= 0.995

# %% [markdown]
# ## Adam: the frozen preconditioner, and what the running one does
# With $P = \sqrt{\hat v} + \epsilon$ frozen, Adam is EMA momentum on $P^{-1}H$: threshold 38 at
# $\beta_1 = 0.9$. With the running second moment (`mode="running"`) the story changes: past the
# threshold the oscillation inflates $v$, $P$ grows, $\eta\lambda/P$ falls back below 38 and the
# iterates come back — no cell diverges. The symbolic region predicts the *onset*, the
# preconditioner does the rest (Cohen et al. 2022's adaptive edge of stability).

# %%
frozen = sweep("adam", np.linspace(1, 80, GRID), "beta", np.array([0.9]), steps=STEPS)
running = sweep("adam", np.linspace(1, 80, GRID), "beta", np.array([0.9]), steps=STEPS,
                mode="running")
fig, ax = plt.subplots(figsize=(7.5, 2.6))
ax.plot(frozen.x, frozen.outcome[0], "o-", ms=3, label="frozen $P$")
ax.plot(running.x, running.outcome[0] + 0.05, "s-", ms=3, label=r"running $v$ ($\beta_2 = 0.999$)")
ax.axvline(38, color="k", ls="--", lw=1, label=r"threshold $B(\beta_1) = 38$")
ax.set_yticks([0, 1, 2], ["converged", "bounded", "diverged"])
ax.set_xlabel(r"$\eta\lambda$ (eigenvalue of $P^{-1}H$)")
ax.set_title(r"Adam at $\beta_1 = 0.9$: simulated outcome per $\eta\lambda$")
ax.legend(fontsize=8, loc="center left")
plt.tight_layout(); plt.show()
assert not np.any(running.outcome == 2)

# %% [markdown]
# ## VRAdam's gate: convergence lost at $B(\beta_1)$, divergence only beyond $B(\beta_1)(1+\alpha_1)$
# VRAdam divides the step by $1 + \min(\beta_3\|v\|^2, \alpha_1)$. Frozen at a value $G$, the map is
# EMA momentum with $\eta/(1+G)$, so the threshold on $\alpha_0\lambda$ rises to
# $B(\beta_1)(1+G)$, $B(\beta) = (2+2\beta)/(1-\beta)$. At the minimum $v = 0$, $G = 0$: the
# minimum is stable only below $B$ — the gate does not stabilise it. Between $B$ and
# $B(1+\alpha_1)$ the gate turns the period-2 blow-up into a bounded oscillation; once
# $\alpha_0\lambda > B(1+\alpha_1)$ no gate value helps and the iterates diverge.

# %%
vr = get_claim("stability.vradam")
print(vr.derive().expression)
rep = show("vradam")
print("divergence threshold:", rep["divergence_threshold"])
res = vr.check(quick=True)
for row in res.details["rows"]:
    print(f"beta={row['beta']}: {row['kind']}: predicted {row['predicted']:.4g}, "
          f"simulated {row['measured']:.4g}")
assert res.passed and res.details["bounded_between"]["all_bounded"]

# %% [markdown]
# ## TAM: fixed damping, and the cosine in one dimension
# With the damping frozen at $d$, TAM is heavy ball with gradient $(d+\epsilon)g$: threshold
# $(2+2\beta)/(d+\epsilon)$. In one dimension the cosine between the old momentum and the new
# gradient is $\pm 1$; on any oscillating mode ($\mu < 0$) it is $-1$, so $\hat s \to -1$,
# $d \to 0$ and the gradient is switched off — the period-2 growth stops after about
# $\ln f/\ln(1/\gamma)$ steps when started at $f$ times the threshold.

# %%
tam = get_claim("stability.tam")
res = tam.check(quick=True)
for ph in res.details["cosine_phase"][:3]:
    print(ph)
assert res.passed and res.details["cosine_prediction_holds"]
rep = show("tam", mode="running")

# %% [markdown]
# Run as written (cosine-driven damping from $\hat s_0 = 0$), TAM converges far beyond the
# fixed-$d$ boundary (dashed): every $\eta\lambda$ up to 1.8x the $d = 1$ threshold at
# $\beta = 0.9$ and about 20x at $\beta = 0$ converges, then an intricate fringe where large
# catapults diverge. No closed form describes that edge; the
# symbolic analysis explains why it lies beyond $2+2\beta$.
#
# ## Every claim, as `momentumlab verify --only stability` reports it

# %%
for c in [get_claim(f"stability.{n}") for n in ("gd", "heavy_ball", "ema_momentum", "nesterov",
                                                 "nadam", "rmsprop", "adam", "vradam", "tam")]:
    # VRAdam's divergence past B(1 + alpha1) uses two named lemmas (IVT, induction)
    assert c.derive().status in ("proved", "proved from lemmas")
    print(f"{c.id:24s} {c.derive().status:18s} eta*lambda < {c.derive().expression}")
