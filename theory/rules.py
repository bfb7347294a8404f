"""Every optimizer's update rule, written once.

A rule is a pure map ``(w, g, state, hyper, ops) -> (w', state')`` over one
parameter tensor.  It uses only ``+ - * /``, python numbers and the functions in
an :class:`theory.ops.Ops` namespace, so the same code

* runs on sympy expressions (:mod:`theory.norm_growth` proves identities with
  it, the stability analysis linearises it),
* runs on numpy arrays and torch tensors, batched over grids of
  hyperparameters (``empirics.sweeps``),
* is the float64 oracle the fast ``torch.optim`` classes in
  ``empirics.optim`` are tested against.

Hyperparameters are plain numbers or sympy symbols.  ``state`` is a dict; rules
never mutate their inputs.  Conventions follow PyTorch where a paper leaves
them open, and each rule's docstring names its equations and source.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from theory.ops import Ops

__all__ = [
    "Rule",
    "RULES",
    "get_rule",
    "radial_projection",
    "adamp_projection",
    "projection_masks",
    "gd",
    "heavy_ball",
    "sgdp",
    "adam",
    "adamp",
]

State = dict


@dataclass(frozen=True)
class Rule:
    """An optimizer's update rule: ``init`` builds the state, ``step`` applies one update.

    ``defaults`` lists every hyperparameter the rule reads, with its default;
    ``source`` names the paper, section and equation it implements.
    """

    name: str
    init: Callable[[Any, Ops], State]
    step: Callable[[Any, Any, State, Mapping[str, Any], Ops], tuple[Any, State]]
    defaults: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""

    def hyper(self, **overrides) -> dict:
        """Defaults merged with ``overrides``; unknown names raise ``TypeError``."""
        unknown = set(overrides) - set(self.defaults)
        if unknown:
            raise TypeError(
                f"rule {self.name!r} has no hyperparameter(s) {sorted(unknown)}; "
                f"known: {sorted(self.defaults)}"
            )
        return {**self.defaults, **overrides}

    def __call__(self, w, g, state, hyper, ops):
        return self.step(w, g, state, hyper, ops)

    def run(self, w, grad_fn, steps: int, ops: Ops, **hyper):
        """Iterate ``steps`` times with ``g = grad_fn(w)``; returns the list of iterates."""
        h = self.hyper(**hyper)
        state = self.init(w, ops)
        iterates = [w]
        for _ in range(steps):
            w, state = self.step(w, grad_fn(w), state, h, ops)
            iterates.append(w)
        return iterates


def _signed(g, h):
    """The descent direction's gradient: ``-g`` when maximising (PyTorch's ``maximize``)."""
    return -g if h.get("maximize", False) else g


# --------------------------------------------------------------------- SGD family
def _no_state(w, ops):
    return {}


def gd(w, g, state, h, ops):
    """Gradient descent ``w <- w - lr * g`` (AdamP, Lemma 2.1 setting)."""
    g = _signed(g, h)
    return w - h["lr"] * g, {}


def _momentum_init(w, ops):
    return {"momentum_buffer": ops.zeros_like(w)}


def heavy_ball(w, g, state, h, ops):
    """PyTorch SGD with momentum (dampening 0):

    ``g <- g + wd*w``;  ``p_t = beta*p_{t-1} + g_t``;  ``w <- w - lr*d`` with
    ``d = p_t`` or, for ``nesterov=True``, ``d = g_t + beta*p_t``.
    With ``p_{-1} = 0`` this is AdamP's notation (Heo et al. 2021, Sec. 2.2,
    Lemma 2.2) and torch.optim.SGD's (which copies ``g`` on the first step: the same
    value when dampening is 0).
    """
    g = _signed(g, h)
    if h["weight_decay"]:
        g = g + h["weight_decay"] * w
    beta = h["momentum"]
    buf = beta * state["momentum_buffer"] + g
    d = g + beta * buf if h["nesterov"] else buf
    return w - h["lr"] * d, {"momentum_buffer": buf}


# ------------------------------------------------------------- AdamP projection
def radial_projection(w, x, ops: Ops, eps=0):
    """``Pi_w(x) = x - (w_hat . x) w_hat`` with ``w_hat = w / (||w|| + eps)``.

    AdamP paper (Heo et al., ICLR 2021), Sec. 3.1: removes the radial component
    of ``x``.  ``eps = 0`` is the paper's operator; the authors' code adds
    ``eps`` (1e-8) to the norm, which leaves a radial residue of order
    ``eps/||w||``.  Works row-wise on a channel/layer view (``ops.row_inner``).
    """
    inner = ops.row_inner
    w_hat = w / (ops.sqrt(inner(w, w)) + eps)
    return x - w_hat * inner(w_hat, x)


def _abs_cosine_rows(x, y, ops: Ops, eps):
    """Per-row ``|cos(x, y)| = |x.y| / max(||x|| ||y||, eps)`` (torch's cosine_similarity)."""
    inner = ops.row_inner
    return ops.abs(inner(x, y)) / ops.maximum(ops.sqrt(inner(x, x) * inner(y, y)), eps)


def adamp_projection(w, g, update, delta, wd_ratio, eps, ops: Ops):
    """The authors' projection test and step (AdamP paper eq. 11 with |cos|, code v0.3.0).

    For the channel view (one row per output channel) and then the layer view
    (the whole tensor as one row): if ``max_rows |cos(g, w)| < delta/sqrt(row
    length)``, project ``update`` row-wise with :func:`radial_projection` and
    scale the weight decay by ``wd_ratio``.  A channel-wise projection pre-empts
    the layer-wise test; if neither passes the update is unchanged and the
    factor is 1.  Written branch-free with ``ops.where`` so that a device
    implementation needs no host synchronisation.  Numeric backends only.

    Returns ``(update', wd_factor)``.
    """
    out, factor = update, 1.0
    for view, take in zip((ops.rows, ops.flat), projection_masks(w, g, delta, eps, ops)):
        projected = ops.unview(radial_projection(view(w), view(update), ops, eps), update)
        out = ops.where(take, projected, out)
        factor = ops.where(take, wd_ratio, factor)
    return out, factor


def projection_masks(w, g, delta, eps, ops: Ops):
    """``(channel, layer)``: which view AdamP's cosine test selects (at most one is true).

    ``channel`` when every row of the channel view has ``|cos(g, w)| <
    delta/sqrt(row length)``; ``layer`` when the channel test fails and the
    whole tensor passes it.
    """
    masks = []
    for view in (ops.rows, ops.flat):
        wv, gv = view(w), view(g)
        masks.append(ops.amax_rows(_abs_cosine_rows(gv, wv, ops, eps)) < delta / wv.shape[-1] ** 0.5)
    channel, layer = masks
    return channel, layer & ~channel


def _should_project(w, h, ops: Ops) -> bool:
    project = h.get("project")
    return ops.ndim(w) > 1 if project is None else bool(project)


def _projected_update(w, g, update, h, ops: Ops):
    """``update`` after AdamP's projection; ``delta=None`` projects unconditionally (Prop. 3.1)."""
    if not _should_project(w, h, ops):
        return update, 1.0
    if h["delta"] is None:
        return radial_projection(w, update, ops, h["eps"]), h["wd_ratio"]
    return adamp_projection(w, g, update, h["delta"], h["wd_ratio"], h["eps"], ops)


def sgdp(w, g, state, h, ops):
    """SGDP (Heo et al. 2021, Algorithm 1; authors' code ``adamp/sgdp.py`` v0.3.0).

    ``buf = momentum*buf + (1 - dampening)*g``; ``d = g + momentum*buf`` if
    ``nesterov`` else ``buf``; ``d <- Pi(d)`` when the cosine test passes (see
    :func:`adamp_projection`; ``delta=None`` always projects with the plain
    ``Pi_w`` of Proposition 3.1); decoupled decay
    ``w <- w (1 - lr*wd*r/(1 - momentum))`` with ``r = wd_ratio`` if projected,
    as in the authors' code; then ``w <- w - lr*d``.  1-D tensors are never
    projected unless ``project=True``.
    """
    g = _signed(g, h)
    beta = h["momentum"]
    buf = beta * state["momentum_buffer"] + (1 - h["dampening"]) * g
    d = g + beta * buf if h["nesterov"] else buf
    d, factor = _projected_update(w, g, d, h, ops)
    if h["weight_decay"]:
        w = w * (1 - h["lr"] * h["weight_decay"] * factor / (1 - beta))
    return w - h["lr"] * d, {"momentum_buffer": buf}


# ------------------------------------------------------------------ Adam family
def _adam_init(w, ops):
    return {"step": 0, "exp_avg": ops.zeros_like(w), "exp_avg_sq": ops.zeros_like(w)}


def _adam_moments(g, state, h):
    b1, b2 = h["betas"]
    m = b1 * state["exp_avg"] + (1 - b1) * g
    v = b2 * state["exp_avg_sq"] + (1 - b2) * g * g
    return state["step"] + 1, m, v


def adam(w, g, state, h, ops):
    """Adam / AdamW as in torch.optim (Kingma & Ba 2015, Alg. 1; Loshchilov & Hutter 2019).

    ``m = b1 m + (1-b1) g``; ``v = b2 v + (1-b2) g^2``;
    ``w <- w - (lr/bc1) m / (sqrt(v)/sqrt(bc2) + eps)`` with ``bc_i = 1 - b_i^t``.
    ``decoupled=False`` (Adam) adds ``wd*w`` to the gradient; ``decoupled=True``
    (AdamW) first scales ``w <- w (1 - lr*wd)``.
    """
    g = _signed(g, h)
    wd = h["weight_decay"]
    if wd and not h["decoupled"]:
        g = g + wd * w
    t, m, v = _adam_moments(g, state, h)
    b1, b2 = h["betas"]
    bc1, bc2 = 1 - b1**t, 1 - b2**t
    if wd and h["decoupled"]:
        w = w * (1 - h["lr"] * wd)
    w = w - (h["lr"] / bc1) * m / (ops.sqrt(v) / bc2**0.5 + h["eps"])
    return w, {"step": t, "exp_avg": m, "exp_avg_sq": v}


def adamp(w, g, state, h, ops):
    """AdamP (Heo et al. 2021, Algorithm 2; authors' code ``adamp/adamp.py`` v0.3.0).

    Adam moments; ``perturb = m/denom`` (``nesterov``: ``(b1 m + (1-b1) g)/denom``)
    with ``denom = sqrt(v)/sqrt(bc2) + eps``; projection of ``perturb`` when the
    cosine test on the current gradient passes (1-D tensors never); decoupled
    decay with the plain ``lr``: ``w <- w (1 - lr*wd*r)``; then
    ``w <- w - (lr/bc1) perturb``.
    """
    g = _signed(g, h)
    t, m, v = _adam_moments(g, state, h)
    b1, b2 = h["betas"]
    bc1, bc2 = 1 - b1**t, 1 - b2**t
    denom = ops.sqrt(v) / bc2**0.5 + h["eps"]
    perturb = (b1 * m + (1 - b1) * g) / denom if h["nesterov"] else m / denom
    perturb, factor = _projected_update(w, g, perturb, h, ops)
    if h["weight_decay"]:
        w = w * (1 - h["lr"] * h["weight_decay"] * factor)
    w = w - (h["lr"] / bc1) * perturb
    return w, {"step": t, "exp_avg": m, "exp_avg_sq": v}


_PROJ = {"delta": 0.1, "wd_ratio": 0.1, "project": None}

RULES: dict[str, Rule] = {}


def _register(rule: Rule) -> Rule:
    RULES[rule.name] = rule
    return rule


_register(Rule("gd", _no_state, gd, {"lr": 0.1, "maximize": False},
               "AdamP paper, Sec. 2.2, Lemma 2.1 (plain gradient descent)"))
_register(Rule("heavy_ball", _momentum_init, heavy_ball,
               {"lr": 0.1, "momentum": 0.9, "nesterov": False, "weight_decay": 0.0,
                "maximize": False},
               "torch.optim.SGD(momentum, dampening=0); AdamP paper Sec. 2.2, Lemma 2.2"))
_register(Rule("nesterov", _momentum_init, heavy_ball,
               {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.0,
                "maximize": False},
               "torch.optim.SGD(momentum, nesterov=True)"))
_register(Rule("sgdp", _momentum_init, sgdp,
               {"lr": 0.1, "momentum": 0.9, "dampening": 0.0, "nesterov": False,
                "weight_decay": 0.0, "eps": 1e-8, "maximize": False, **_PROJ},
               "AdamP paper, Algorithm 1 (SGDP) and Sec. 3.1; clovaai/AdamP sgdp.py v0.3.0"))
_register(Rule("adam", _adam_init, adam,
               {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0,
                "decoupled": False, "maximize": False},
               "Kingma & Ba 2015, Algorithm 1; torch.optim.Adam"))
_register(Rule("adamw", _adam_init, adam,
               {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 1e-2,
                "decoupled": True, "maximize": False},
               "Loshchilov & Hutter 2019, Algorithm 2; torch.optim.AdamW"))
_register(Rule("adamp", _adam_init, adamp,
               {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0,
                "nesterov": False, "maximize": False, **_PROJ},
               "AdamP paper, Algorithm 2 and Sec. 3.1; clovaai/AdamP adamp.py v0.3.0"))


def get_rule(name: str) -> Rule:
    """The registered rule called ``name``; a ``KeyError`` lists the known names."""
    try:
        return RULES[name]
    except KeyError:
        raise KeyError(f"unknown update rule {name!r}; known rules: {', '.join(sorted(RULES))}") from None
