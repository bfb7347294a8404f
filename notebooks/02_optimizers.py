# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 02 — The optimizers at work: VRAdam, AdamP, TAM
#
# *Running time: about <!-- num: results/notebook_times.json#02_optimizers.full_minutes .0f -->1<!-- /num --> min at full size (`QUICK = False`) on a 2-core CPU;
# about <!-- num: results/notebook_times.json#02_optimizers.quick_seconds .0f -->39<!-- /num --> s with `QUICK = True`, the small sizes the tests and the docs run (measured by
# `scripts/time_notebooks.py`).*
#
# Three small experiments on a real task, scikit-learn's handwritten digits (1797 images of
# 8×8 pixels, shipped with scikit-learn), with the classes of `empirics.optim`:
#
# 1. **VRAdam** (arXiv 2505.13196): the learning rate
#    $\eta_t = \alpha_0 / (1 + \min(\beta_3\|m_t\|^2, \alpha_1))$ falls while the momentum
#    ("velocity") is large and returns to $\alpha_0$ as it settles — against AdamW's fixed rate.
# 2. **AdamP** (arXiv 2006.08217): weights followed by BatchNorm are scale-invariant; Adam's
#    momentum makes their norm grow, which shrinks the effective step. AdamP projects the radial
#    part out of the update and keeps the norm near its start.
# 3. **TAM** (arXiv 2412.18790): the damping $d_t = (1 + \hat s_t)/2$ follows the smoothed cosine
#    $\hat s_t$ between the new gradient and the momentum.
#
# Each cell asserts what it shows.

# %% tags=["parameters"]
QUICK = False

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.datasets import load_digits

from momentumlab.empirics.optim import TAM, AdamP, VRAdam

STEPS = 150 if QUICK else 600
torch.set_num_threads(1)  # tiny networks: one thread is fastest, and robust on a busy machine
torch.manual_seed(0)
digits = load_digits()
X = torch.tensor((digits.data - digits.data.mean(0)) / (digits.data.std(0) + 1e-6), dtype=torch.float32)
Y = torch.tensor(digits.target)
perm = torch.randperm(len(X))
X, Y = X[perm], Y[perm]
X_train, Y_train, X_test, Y_test = X[:1400], Y[:1400], X[1400:], Y[1400:]
BATCH = 128


def batches(step):
    i = (step * BATCH) % (len(X_train) - BATCH)
    return X_train[i:i + BATCH], Y_train[i:i + BATCH]


def mlp(batchnorm=False, seed=0):
    torch.manual_seed(seed)
    layers = [torch.nn.Linear(64, 128)]
    layers += [torch.nn.BatchNorm1d(128)] if batchnorm else []
    layers += [torch.nn.ReLU(), torch.nn.Linear(128, 128)]
    layers += [torch.nn.BatchNorm1d(128)] if batchnorm else []
    layers += [torch.nn.ReLU(), torch.nn.Linear(128, 10)]
    return torch.nn.Sequential(*layers)


def train(model, opt, steps=STEPS, record=None):
    losses = []
    for t in range(steps):
        x, y = batches(t)
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if record is not None:
            record(t)
    return np.array(losses)


def accuracy(model):
    model.eval()
    with torch.no_grad():
        acc = (model(X_test).argmax(1) == Y_test).float().mean().item()
    model.train()
    return acc

# %% [markdown]
# ## 1. VRAdam's effective rate against AdamW
#
# Same network, same $\alpha_0$ = AdamW's `lr`. VRAdam exposes `last_eta` and `last_norm_sq`
# (device tensors, no host synchronisation inside the step); we read them after each step.
# $\|m_t\|^2$ is a sum over all parameters, so its scale depends on the model: on this small
# network it peaks around 0.2, and $\beta_3 = 20$ (instead of the paper's 1) makes the gate act.

# %%
LR, BETA3, ALPHA1 = 3e-3, 20.0, 10.0
vr_model, aw_model = mlp(seed=1), mlp(seed=1)
vr = VRAdam(vr_model.parameters(), lr=LR, beta3=BETA3, alpha1=ALPHA1)
aw = torch.optim.AdamW(aw_model.parameters(), lr=LR, weight_decay=0.0)
eta, norm_sq = [], []
vr_loss = train(vr_model, vr, record=lambda t: (eta.append(vr.last_eta[0].item()),
                                                norm_sq.append(vr.last_norm_sq[0].item())))
aw_loss = train(aw_model, aw)
eta, norm_sq = np.array(eta), np.array(norm_sq)

fig, ax = plt.subplots(1, 3, figsize=(13, 3.2))
ax[0].plot(vr_loss, label="VRAdam"); ax[0].plot(aw_loss, label="AdamW", alpha=0.7)
ax[0].set(xlabel="step", ylabel="training loss", yscale="log"); ax[0].legend()
ax[1].plot(eta, label=r"VRAdam $\eta_t$"); ax[1].axhline(LR, color="C1", label="AdamW lr")
ax[1].axhline(LR / (1 + ALPHA1), color="gray", ls=":", label=r"$\alpha_0/(1+\alpha_1)$")
ax[1].set(xlabel="step", ylabel="rate"); ax[1].legend()
ax[2].plot(np.sqrt(norm_sq)); ax[2].set(xlabel="step", ylabel=r"$\|m_t\|$ (all parameters)")
plt.tight_layout(); plt.show()
print(f"test accuracy: VRAdam {accuracy(vr_model):.3f}, AdamW {accuracy(aw_model):.3f}")

# the rate is the paper's formula of the recorded norm, inside [a0/(1+a1), a0]
np.testing.assert_allclose(eta, LR / (1 + np.minimum(BETA3 * norm_sq, ALPHA1)), rtol=1e-6)
assert (eta >= LR / (1 + ALPHA1) * (1 - 1e-6)).all() and (eta <= LR).all()
# the gate acts early (large velocity) and relaxes as the momentum settles
assert eta[:50].min() < 0.5 * LR and eta[-20:].mean() > 0.8 * LR
assert vr_loss[-20:].mean() < 0.2 * vr_loss[:5].mean() and accuracy(vr_model) > 0.9

# %% [markdown]
# ## 2. AdamP keeps scale-invariant weights from growing
#
# With BatchNorm after the two hidden linear layers, their weights are scale-invariant:
# the loss does not change when they are multiplied by $c > 0$, their gradient is orthogonal
# to them, and only the direction $w/\|w\|$ matters — with a step that shrinks as $1/\|w\|$.
# Adam (no weight decay) lets $\|w\|$ grow; AdamP projects the radial part out of each update.

# %%
def weight_norms(model):
    return [model[i].weight.norm().item() for i in (0, 3)]


runs = {}
for name, make in {"Adam": lambda p: torch.optim.Adam(p, lr=3e-3),
                   "AdamP": lambda p: AdamP(p, lr=3e-3)}.items():
    model = mlp(batchnorm=True, seed=2)
    opt = make(model.parameters())
    norms = [weight_norms(model)]
    loss = train(model, opt, record=lambda t: norms.append(weight_norms(model)))
    runs[name] = (np.array(norms), loss, accuracy(model))

fig, ax = plt.subplots(1, 2, figsize=(10, 3.2))
for name, (norms, loss, acc) in runs.items():
    ax[0].plot(norms[:, 0] / norms[0, 0], label=f"{name}, layer 1")
    ax[0].plot(norms[:, 1] / norms[0, 1], ls="--", label=f"{name}, layer 2")
    ax[1].plot(loss, label=f"{name} (test acc {acc:.3f})")
ax[0].set(xlabel="step", ylabel=r"$\|w_t\| / \|w_0\|$"); ax[0].legend()
ax[1].set(xlabel="step", ylabel="training loss", yscale="log"); ax[1].legend()
plt.tight_layout(); plt.show()

growth = {name: norms[-1] / norms[0] - 1 for name, (norms, _, _) in runs.items()}
print({k: np.round(v, 4) for k, v in growth.items()})
assert (growth["AdamP"] < 0.25 * growth["Adam"]).all()  # far less norm growth per layer
assert runs["AdamP"][2] > 0.9

# %% [markdown]
# ## 3. TAM's smoothed cosine $\hat s_t$
#
# TAM keeps one $\hat s$ per tensor (`state["s_hat"]`): an EMA of the cosine between the new
# gradient and the momentum. Positive values keep the gradient (damping $d\to 1$); negative
# values — a gradient that turns against the momentum — damp it ($d\to 0$).
# `pytorch_optimizer`'s TAM takes no cosine: it multiplies normalised tensors elementwise, so its
# "correlation" entries are about $1/\text{rows}$ and its damping sits near $1/2$ (shown when
# `pytorch_optimizer` is installed).

# %%
tam_model = mlp(seed=3)
tam = TAM(tam_model.parameters(), lr=0.05, momentum=0.9)
named = [(n, p) for n, p in tam_model.named_parameters()]
s_hat = []
tam_loss = train(tam_model, tam, record=lambda t: s_hat.append([tam.state[p]["s_hat"].item() for _, p in named]))
s_hat = np.array(s_hat)

theirs = None
try:
    import pytorch_optimizer
    po_model = mlp(seed=3)
    po_tam = pytorch_optimizer.TAM(po_model.parameters(), lr=0.05, momentum=0.9)
    po_s = []
    train(po_model, po_tam, record=lambda t: po_s.append(
        [po_tam.state[p]["s"].mean().item() for p in po_model.parameters()]))
    theirs = np.array(po_s)
except ImportError:
    pass

fig, ax = plt.subplots(1, 2, figsize=(11, 3.2))
for j, (n, _) in enumerate(named):
    ax[0].plot(s_hat[:, j], label=n)
ax[0].set(xlabel="step", ylabel=r"$\hat s_t$ (ours, per tensor)", ylim=(-1, 1)); ax[0].legend(fontsize=7)
if theirs is not None:
    for j, (n, _) in enumerate(named):
        ax[1].plot(theirs[:, j], label=n)
    ax[1].set(xlabel="step", ylabel="pytorch_optimizer TAM: mean of s", ylim=(-1, 1))
plt.tight_layout(); plt.show()
print(f"TAM test accuracy {accuracy(tam_model):.3f}; mean s_hat over the last steps per tensor:",
      np.round(s_hat[-20:].mean(0), 3))

assert (np.abs(s_hat) <= 1 + 1e-6).all()
assert np.abs(s_hat[-50:]).mean() > 0.05         # the cosine signal is real, not ~0
if theirs is not None:
    assert np.abs(theirs[-50:]).mean() < np.abs(s_hat[-50:]).mean()
assert accuracy(tam_model) > 0.9
