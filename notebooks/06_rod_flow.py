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
# # 06 — Rod flow: the segment between consecutive iterates
#
# *Running time:* at full size (`QUICK = False`) the network races are sized for a GPU and
# their running time has not been recorded yet; the test suite runs this notebook at small size.
#
# **The picture.** At the edge of stability GD's iterates flip across a valley every step.
# Regis & Chewi (arXiv 2602.01480, 2605.06821) model the *rod*, the segment between two
# consecutive iterates, by an ODE. Their equations are not available, so momentumlab
# **derives** a rod flow from that construction (`theory/rod_flow.py`): for any one-step map
# $z_{t+1}=\Phi(z_t)=z_t+F(z_t)$ with centre $c_t=(z_t+z_{t+1})/2$ and half-difference
# $d_t=(z_{t+1}-z_t)/2$,
# $$c_{t+1}-c_t=\tfrac12[F(c+d)+F(c-d)],\qquad d_{t+1}=d_t+\tfrac12[F(c+d)-F(c-d)]$$
# exactly; the increment of $d$ is odd, so the flipped rod $(-1)^t d_t$ has the ODE
# $$\dot c=\tfrac12[F(c+d)+F(c-d)],\qquad \dot d=-2d-\tfrac12[F(c+d)-F(c-d)].$$
# The predicted iterate is $\hat w_t=c(t)-(-1)^t d(t)$.

# %% tags=["parameters"]
QUICK = False

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch

from momentumlab.empirics.checks import load_claims
from momentumlab.empirics.flows import race, toy
from momentumlab.theory.claims import REGISTRY

load_claims()
torch.set_num_threads(1)

# %% [markdown]
# ## The derivation: four claims proved by sympy
# The identities hold for a symbolic map; the flip mode of the linearised rod is
# $\dot d=-(I+A)d$, so it grows iff an eigenvalue of $A$ crosses $-1$ — the discrete
# threshold of every optimizer's `stability.*` claim.

# %%
for cid in ("rodflow.identities", "rodflow.threshold", "rodflow.quartic", "rodflow.self_stabilization"):
    d = REGISTRY[cid].derive()
    print(f"{cid:<28} {d.status}")
    assert d.status in ("proved", "proved from lemmas")
print(REGISTRY["rodflow.threshold"].derive().expression.T)

# %% [markdown]
# ## The quartic: the rod's equilibrium is GD's 2-cycle
# On $L=\tfrac S2w^2-\tfrac Q4w^4$ the rod rests at $d_*^2=(S-2/\eta)/Q$, stable for
# $2<\eta S<3$; past $\eta S=1+\sqrt5$ GD doubles its period, which the rod cannot follow.

# %%
from momentumlab.theory.rod_flow import quartic_field  # noqa: E402
import sympy as sp  # noqa: E402

eta_s = 2.5
dc, dd = quartic_field(eta=1, S=eta_s, Q=1)
f = sp.lambdify(sp.symbols("c d", real=True), [dc, dd])
C, D = np.meshgrid(np.linspace(-0.8, 0.8, 25), np.linspace(-0.9, 0.9, 25))
U, V = f(C, D)
fig, ax = plt.subplots(figsize=(5, 4))
ax.streamplot(C, D, np.asarray(U, float), np.asarray(V, float), density=1.0, color="0.5")
ax.plot([0, 0], [np.sqrt(1 - 2 / eta_s), -np.sqrt(1 - 2 / eta_s)], "ro", label="d* = GD 2-cycle")
ax.set_xlabel("centre c"); ax.set_ylabel("half-difference d"); ax.legend()
ax.set_title(f"rod flow on the quartic, eta S = {eta_s}")
plt.show()
res = REGISTRY["rodflow.quartic"].check(quick=True)
print(res.details["rod_d"], res.details["gd_amplitude"], res.details["past_period_doubling"])
assert res.passed

# %% [markdown]
# ## The race on Berthier's minimal example
# GD, rod flow, central flow and stable flow from the same start (`empirics.flows.race`).

# %%
loss, w0, steps = toy("minimal", quick=QUICK)
steps = 200 if QUICK else steps
r = race(loss, w0, "gd", {"lr": 0.3}, steps, sharpness_every=5)
s = r.summary()
print({k: round(v[0], 4) for k, v in s["error_all"].items()}, s["onset"])
t = np.arange(steps + 1)
fig, ax = plt.subplots(1, 2, figsize=(11, 3.5))
for fl in r.flows:
    ax[0].plot(t, r.iterates[fl][:steps + 1, 0, 0], lw=0.7, label=fl)
for fl, e in r.error.items():
    ax[1].semilogy(t, np.maximum(e[:, 0], 1e-16), label=fl)
ax[0].set_title("sharp coordinate x"); ax[1].set_title("distance to GD")
ax[0].legend(); ax[1].legend(); plt.show()
assert s["error_all"]["rod"][0] < s["error_all"]["stable"][0]

# %% [markdown]
# ## The race on the digits network
# Full-batch GD on the tanh MLP of `momentumlab eos` (small in QUICK mode).

# %%
from momentumlab.empirics.flows import network  # noqa: E402

f_net, w_net = network("mlp", n=64 if QUICK else 500, width=8 if QUICK else 32)
rn = race(f_net, w_net, "gd", {"lr": 0.7}, 20 if QUICK else 400,
          flows=("discrete", "rod", "stable") if QUICK else ("discrete", "rod", "central", "stable"),
          sharpness_every=10)
print({k: round(v[0], 4) for k, v in rn.summary()["error_all"].items()})
assert rn.summary()["error_all"]["rod"][0] < rn.summary()["error_all"]["stable"][0]
