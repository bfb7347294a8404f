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

from momentumlab.theory.ops import Ops

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
    "ema_momentum",
    "rmsprop",
    "nadam",
    "step_many",
    "vradam",
    "vradam_penalty",
    "tam",
    "tam_alignment",
    "adatam",
    "adatam_alignment",
    "vr_gate",
    "second_moment",
    "preconditioner",
    "defossez_adam",
    "vr_momentum",
]

State = dict


@dataclass(frozen=True)
class Rule:
    """An optimizer's update rule: ``init`` builds the state, ``step`` applies one update.

    ``defaults`` lists every hyperparameter the rule reads, with its default;
    ``source`` names the paper, section and equation it implements.
    ``coupling`` is set for rules whose step reads a statistic shared by several
    tensors (VRAdam's global norm, TAM's global cosine): it maps one tensor to
    its additive contributions, and :func:`step_many` passes their sums over
    the sharing scope to ``step`` as ``hyper["coupled"]``.
    """

    name: str
    init: Callable[[Any, Ops], State]
    step: Callable[[Any, Any, State, Mapping[str, Any], Ops], tuple[Any, State]]
    defaults: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""
    coupling: Callable[[Any, Any, State, Mapping[str, Any], Ops], tuple] | None = None

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


def step_many(rule: Rule, ws, gs, states, hypers, ops: Ops, scopes=None):
    """One step of ``rule`` on several tensors; returns ``(ws', states')``.

    ``hypers[i]`` are tensor ``i``'s hyperparameters (its parameter group) and
    ``scopes[i]`` names the scope it shares statistics with (equal names share;
    ``None``: every tensor alone).  For a rule with ``coupling`` the terms
    ``rule.coupling(w_i, g_i, state_i, hyper_i)`` are summed over each scope and
    every tensor of the scope steps with ``hyper["coupled"] =`` those sums: e.g.
    VRAdam with ``norm_scope="global"`` gates every tensor with the squared norm
    of the first moment of all parameters, ``"group"`` per parameter group.
    Summing first makes a global statistic one definition with three uses: a
    single tensor (the quadratic model) is its own scope, a sweep batches it,
    and the optimizer classes reduce it once over their parameters.
    """
    scopes = list(range(len(ws))) if scopes is None else list(scopes)
    if rule.coupling is None:
        out = [rule.step(w, g, s, h, ops) for w, g, s, h in zip(ws, gs, states, hypers)]
        return [w for w, _ in out], [s for _, s in out]
    sums: dict = {}
    for w, g, s, h, key in zip(ws, gs, states, hypers, scopes):
        terms = rule.coupling(w, g, s, h, ops)
        sums[key] = terms if key not in sums else tuple(a + b for a, b in zip(sums[key], terms))
    out = [rule.step(w, g, s, {**h, "coupled": sums[key]}, ops)
           for w, g, s, h, key in zip(ws, gs, states, hypers, scopes)]
    return [w for w, _ in out], [s for _, s in out]


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
    projected unless ``project=True``.  Without ``nesterov`` the authors' code
    projects ``d``, which *is* the buffer, in place, so the stored momentum is
    ``Pi(buf)`` (``project_buffer=True``); Algorithm 1 of the paper keeps the
    unprojected ``p_t`` (``project_buffer=False``).
    """
    g = _signed(g, h)
    beta = h["momentum"]
    buf = beta * state["momentum_buffer"] + (1 - h["dampening"]) * g
    d = g + beta * buf if h["nesterov"] else buf
    d, factor = _projected_update(w, g, d, h, ops)
    if h.get("project_buffer", True) and not h["nesterov"]:
        buf = d
    if h["weight_decay"]:
        w = w * (1 - h["lr"] * h["weight_decay"] * factor / (1 - beta))
    return w - h["lr"] * d, {"momentum_buffer": buf}


# ------------------------------------------------------------------ Adam family
def _adam_init(w, ops):
    return {"step": 0, "exp_avg": ops.zeros_like(w), "exp_avg_sq": ops.zeros_like(w)}


def second_moment(v, g, b2):
    """Adam's second moment ``v_t = b2 v_{t-1} + (1 - b2) g_t^2`` (Kingma & Ba 2015, Alg. 1;
    RMSprop's ``square_avg`` with ``b2 = alpha``).  The one definition in ``theory``."""
    return b2 * v + (1 - b2) * g * g


def preconditioner(v, t, b2, eps, ops: Ops, bias_correction: bool = True):
    """Adam's denominator ``sqrt(v_hat_t) + eps`` with ``v_hat_t = v_t/(1 - b2^t)``, written as
    ``sqrt(v_t)/sqrt(1 - b2^t) + eps`` (PyTorch's order of operations); ``bias_correction=False``
    gives ``sqrt(v_t) + eps``.  Kingma & Ba 2015, Alg. 1; Cohen et al. 2022 (arXiv 2207.14484)
    call ``P = diag(sqrt(v_hat)) + eps`` the preconditioner.  The one definition in ``theory``."""
    root = ops.sqrt(v)
    return (root / (1 - b2**t) ** 0.5 if bias_correction else root) + eps


def _adam_moments(g, state, h):
    b1, b2 = h["betas"]
    m = b1 * state["exp_avg"] + (1 - b1) * g
    v = second_moment(state["exp_avg_sq"], g, b2)
    return state["step"] + 1, m, v


def _adam_direction(lr, t, m, v, h, ops):
    """Bias-corrected Adam step ``(lr/bc1) m / (sqrt(v)/sqrt(bc2) + eps)``, ``bc_i = 1 - b_i^t``
    (Kingma & Ba 2015, Alg. 1, with PyTorch's eps placement)."""
    b1, b2 = h["betas"]
    return (lr / (1 - b1**t)) * m / preconditioner(v, t, b2, h["eps"], ops)


def vr_gate(lr, kinetic, h, ops):
    """VRAdam's rate ``lr / (1 + min(beta3 * kinetic, alpha1))`` with ``kinetic = ||m_t||^2``
    (Vaidhyanathan et al. 2025, arXiv 2505.13196, Alg. 1 l.7)."""
    return lr / (1 + ops.minimum(h["beta3"] * kinetic, h["alpha1"]))


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
    if wd and h["decoupled"]:
        w = w * (1 - h["lr"] * wd)
    w = w - _adam_direction(h["lr"], t, m, v, h, ops)
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
    bc1 = 1 - b1**t
    denom = preconditioner(v, t, b2, h["eps"], ops)
    perturb = (b1 * m + (1 - b1) * g) / denom if h["nesterov"] else m / denom
    perturb, factor = _projected_update(w, g, perturb, h, ops)
    if h["weight_decay"]:
        w = w * (1 - h["lr"] * h["weight_decay"] * factor)
    w = w - (h["lr"] / bc1) * perturb
    return w, {"step": t, "exp_avg": m, "exp_avg_sq": v}


# ------------------------------------------- EMA momentum, RMSprop, NAdam
def ema_momentum(w, g, state, h, ops):
    """EMA ("normalised") heavy ball: ``m = beta m + (1-beta) g``; ``w <- w - lr m``.

    Adam's first moment without the preconditioner; the momentum ablation
    ("VRMomentum" with gate 1) of the VRAdam paper (Vaidhyanathan et al. 2025,
    Sec. 4.1) and the "normalised heavy ball" of Cohen et al. 2022 (Sec. 3).
    """
    g = _signed(g, h)
    beta = h["momentum"]
    m = beta * state["momentum_buffer"] + (1 - beta) * g
    return w - h["lr"] * m, {"momentum_buffer": m}


def _rmsprop_init(w, ops):
    return {"step": 0, "square_avg": ops.zeros_like(w), "momentum_buffer": ops.zeros_like(w)}


def rmsprop(w, g, state, h, ops):
    """torch.optim.RMSprop (centered=False; Tieleman & Hinton 2012, lecture 6.5):

    ``g <- g + wd w``; ``v = alpha v + (1-alpha) g^2``; ``b = momentum b + g/(sqrt(v) + eps)``;
    ``w <- w - lr b``.  With ``momentum = 0`` this is torch's
    ``w <- w - lr g/(sqrt(v) + eps)`` (the buffer is then just the current step).
    """
    g = _signed(g, h)
    if h["weight_decay"]:
        g = g + h["weight_decay"] * w
    v = second_moment(state["square_avg"], g, h["alpha"])
    buf = h["momentum"] * state["momentum_buffer"] + g / preconditioner(
        v, None, h["alpha"], h["eps"], ops, bias_correction=False)
    return w - h["lr"] * buf, {"step": state["step"] + 1, "square_avg": v, "momentum_buffer": buf}


def _nadam_init(w, ops):
    return {"step": 0, "mu_product": 1.0, "exp_avg": ops.zeros_like(w),
            "exp_avg_sq": ops.zeros_like(w)}


def nadam(w, g, state, h, ops):
    """torch.optim.NAdam (Dozat 2016, "Incorporating Nesterov Momentum into Adam", Alg. 2).

    ``mu_t = b1 (1 - 0.5 * 0.96^(t psi))`` with ``psi = momentum_decay``;
    ``m = b1 m + (1-b1) g``; ``v = b2 v + (1-b2) g^2``; ``denom = sqrt(v/bc2) + eps``;
    ``w <- w - lr [(1-mu_t)/(1-prod_{i<=t} mu_i) g + mu_{t+1}/(1-prod_{i<=t+1} mu_i) m] / denom``.
    ``decoupled_weight_decay`` is NAdamW's ``w <- w (1 - lr wd)``.
    """
    g = _signed(g, h)
    b1, b2 = h["betas"]
    t = state["step"] + 1
    wd = h["weight_decay"]
    if wd and h["decoupled_weight_decay"]:
        w = w * (1 - h["lr"] * wd)
    elif wd:
        g = g + wd * w
    psi = h["momentum_decay"]
    mu = b1 * (1 - 0.5 * 0.96 ** (t * psi))
    mu_next = b1 * (1 - 0.5 * 0.96 ** ((t + 1) * psi))
    mu_product = state["mu_product"] * mu
    _, m, v = _adam_moments(g, state, h)
    denom = preconditioner(v, t, b2, h["eps"], ops)
    w = w - h["lr"] * (1 - mu) / (1 - mu_product) * g / denom
    w = w - h["lr"] * mu_next / (1 - mu_product * mu_next) * m / denom
    return w, {"step": t, "mu_product": mu_product, "exp_avg": m, "exp_avg_sq": v}


# ----------------------------------------------------------------------- VRAdam
def _power_sum(x, p, ops: Ops):
    """``sum_i |x_i|^p`` (``||x||^2`` for ``p = 2``)."""
    if p == 2:
        return ops.inner(x, x)
    y = ops.abs(x) ** (p / 2)
    return ops.inner(y, y)


def vradam_penalty(w, g, state, h, ops):
    """VRAdam's kinetic term of one tensor, ``(sum_i |x_i|^p,)`` (the coupling of :func:`vradam`).

    ``x = m_t = b1 m_{t-1} + (1-b1) g_t``, the first moment after this step's
    update and before bias correction (``gate="velocity"``, the paper and the
    authors' ``vradam.py``), or ``x = g_t`` (``gate="gradient"``, the
    ``normgrad=True`` of their earlier ``VRADAM.py``); ``p = power`` (2 in the paper).
    """
    g = _signed(g, h)
    x = _adam_moments(g, state, h)[1] if h["gate"] == "velocity" else g
    return (_power_sum(x, h["power"], ops),)


def vradam(w, g, state, h, ops):
    """VRAdam (Vaidhyanathan et al. 2025, arXiv 2505.13196, Algorithm 1; authors' ``vradam.py``).

    ``m = b1 m + (1-b1) g``; ``v = b2 v + (1-b2) g^2``;
    ``eta_t = lr / (1 + min(beta3 N_t, alpha1))`` with ``N_t = ||m_t||^2``
    (``sum |x|^p`` of :func:`vradam_penalty`) over the norm's scope;
    ``w <- w (1 - eta_t wd) - (eta_t/bc1) m / (sqrt(v)/sqrt(bc2) + eps)``.
    The paper takes ``N_t`` over all parameters: pass the scope's sum as
    ``hyper["coupled"]`` (:func:`step_many` does); ``None`` uses this tensor
    alone, which is the global norm when there is a single tensor.
    The state also records ``eta`` and ``norm_sq`` (``N_t``) of the step.
    """
    coupled = h.get("coupled")
    (n,) = vradam_penalty(w, g, state, h, ops) if coupled is None else coupled
    g = _signed(g, h)
    t, m, v = _adam_moments(g, state, h)
    eta = vr_gate(h["lr"], n, h, ops)
    if h["weight_decay"]:
        w = w * (1 - eta * h["weight_decay"])
    w = w - _adam_direction(eta, t, m, v, h, ops)
    return w, {"step": t, "exp_avg": m, "exp_avg_sq": v, "eta": eta, "norm_sq": n}


def _vradam_init(w, ops):
    return {**_adam_init(w, ops), "eta": None, "norm_sq": None}


# ------------------------------------------------------------------- TAM, AdaTAM
#: floor of ``||m|| ||g||`` in TAM's cosine: the cosine is 0 when ``m = 0`` (first step).
TAM_COS_FLOOR = 1e-30


def _alignment_terms(m, g, h, ops):
    g = _signed(g, h)
    return (ops.inner(m, g), ops.inner(m, m), ops.inner(g, g))


def tam_alignment(w, g, state, h, ops):
    """``(m_{t-1}.g_t, ||m_{t-1}||^2, ||g_t||^2)`` of one tensor (the coupling of :func:`tam`)."""
    return _alignment_terms(state["momentum_buffer"], g, h, ops)


def adatam_alignment(w, g, state, h, ops):
    """:func:`tam_alignment` with AdaTAM's first moment ``exp_avg``."""
    return _alignment_terms(state["exp_avg"], g, h, ops)


def _tam_damping(terms, state, h, ops):
    """``s_t = cos(m_{t-1}, g_t)``; ``s_hat = decay s_hat + (1-decay) s_t``; ``d = (1 + s_hat)/2``."""
    dot, mm, gg = terms
    s = dot / ops.maximum(ops.sqrt(mm) * ops.sqrt(gg), TAM_COS_FLOOR)
    s_hat = h["decay"] * state["s_hat"] + (1 - h["decay"]) * s
    return s_hat, (1 + s_hat) / 2


def tam(w, g, state, h, ops):
    """TAM, torque-aware momentum (Malviya et al. 2024, arXiv 2412.18790, Sec. 3).

    ``s_t = cos(m_{t-1}, g_t)`` (0 while ``m = 0``); ``s_hat_t = gamma s_hat + (1-gamma) s_t``
    (``gamma = decay``); ``d_t = (1 + s_hat_t)/2``; ``m_t = beta m + (eps + d_t) g_t``;
    ``w <- w (1 - lr wd) - lr m_t`` (decoupled decay).  ``m_0 = 0``, ``s_hat_0 = 0``.
    The cosine is over one tensor, or over a scope given as ``hyper["coupled"] =``
    the summed :func:`tam_alignment` terms (``cosine_scope="global"``).
    """
    coupled = h.get("coupled")
    terms = tam_alignment(w, g, state, h, ops) if coupled is None else coupled
    s_hat, d = _tam_damping(terms, state, h, ops)
    g = _signed(g, h)
    m = h["momentum"] * state["momentum_buffer"] + (h["eps"] + d) * g
    if h["weight_decay"]:
        w = w * (1 - h["lr"] * h["weight_decay"])
    return w - h["lr"] * m, {"momentum_buffer": m, "s_hat": s_hat}


def adatam(w, g, state, h, ops):
    """AdaTAM (Malviya et al. 2024, arXiv 2412.18790, Sec. 3): TAM's damped momentum with Adam's
    second moment.

    ``m_t = b1 m + (eps + d_t) g_t`` (no ``(1-b1)``: the paper's form); ``v_t = b2 v + (1-b2) g^2``;
    ``w <- w (1 - lr wd) - lr m_t / (sqrt(v_hat_t) + eps)`` with ``v_hat = v`` or, for
    ``bias_correction=True``, ``v/(1 - b2^t)``.  ``m_0 = v_0 = 0``, ``s_hat_0 = 0``.
    """
    coupled = h.get("coupled")
    terms = adatam_alignment(w, g, state, h, ops) if coupled is None else coupled
    s_hat, d = _tam_damping(terms, state, h, ops)
    g = _signed(g, h)
    b1, b2 = h["betas"]
    t = state["step"] + 1
    m = b1 * state["exp_avg"] + (h["eps"] + d) * g
    v = second_moment(state["exp_avg_sq"], g, b2)
    if h["weight_decay"]:
        w = w * (1 - h["lr"] * h["weight_decay"])
    w = w - h["lr"] * m / preconditioner(v, t, b2, h["eps"], ops, h["bias_correction"])
    return w, {"step": t, "exp_avg": m, "exp_avg_sq": v, "s_hat": s_hat}


def _tam_init(w, ops):
    return {"momentum_buffer": ops.zeros_like(w), "s_hat": 0.0}


def _adatam_init(w, ops):
    return {**_adam_init(w, ops), "s_hat": 0.0}


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
                "weight_decay": 0.0, "eps": 1e-8, "maximize": False, "project_buffer": True,
                **_PROJ},
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


_register(Rule("ema_momentum", _momentum_init, ema_momentum,
               {"lr": 0.1, "momentum": 0.9, "maximize": False},
               "EMA heavy ball (Adam's first moment, no preconditioner); VRAdam paper Sec. 4.1, "
               "Cohen et al. 2022 Sec. 3"))
_register(Rule("rmsprop", _rmsprop_init, rmsprop,
               {"lr": 1e-2, "alpha": 0.99, "eps": 1e-8, "weight_decay": 0.0, "momentum": 0.0,
                "maximize": False},
               "Tieleman & Hinton 2012; torch.optim.RMSprop (centered=False)"))
_register(Rule("nadam", _nadam_init, nadam,
               {"lr": 2e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0,
                "momentum_decay": 4e-3, "decoupled_weight_decay": False, "maximize": False},
               "Dozat 2016, Algorithm 2; torch.optim.NAdam"))


_register(Rule("vradam", _vradam_init, vradam,
               {"lr": 1e-3, "betas": (0.9, 0.999), "beta3": 1.0, "alpha1": 10.0, "eps": 1e-8,
                "weight_decay": 0.0, "power": 2, "gate": "velocity", "maximize": False,
                "coupled": None},
               "VRAdam paper (arXiv 2505.13196), Algorithm 1; pranavjv/vradam vradam.py",
               coupling=vradam_penalty))
_register(Rule("tam", _tam_init, tam,
               {"lr": 1e-3, "momentum": 0.9, "decay": 0.9, "eps": 1e-8, "weight_decay": 0.0,
                "maximize": False, "coupled": None},
               "TAM paper (arXiv 2412.18790), Sec. 3, TAM update",
               coupling=tam_alignment))
_register(Rule("adatam", _adatam_init, adatam,
               {"lr": 1e-3, "betas": (0.9, 0.999), "decay": 0.9, "eps": 1e-8, "weight_decay": 0.0,
                "bias_correction": False, "maximize": False, "coupled": None},
               "TAM paper (arXiv 2412.18790), Sec. 3, AdaTAM",
               coupling=adatam_alignment))


# ------------------------------------------------- Défossez et al.'s Adam (+ VRAdam gate)
def _defossez_init(w, ops):
    return {"step": 0, "omega_sq": 0, "exp_avg": ops.zeros_like(w),
            "exp_avg_sq": ops.zeros_like(w), "gate": 1}


def defossez_adam(w, g, state, h, ops):
    """Adam as analysed by Défossez, Bottou, Bach & Usunier (TMLR 2022, arXiv 2003.02395, Sec. 2).

    ``m_n = b1 m_{n-1} + g_n``, ``v_n = b2 v_{n-1} + g_n^2`` (no ``1-b`` factors, no bias
    correction of the first moment); ``Omega_n^2 = b2 Omega_{n-1}^2 + 1 = sum_{j<n} b2^j``;
    ``alpha_n = lr (1-b1) Omega_n = lr (1-b1) sqrt((1-b2^n)/(1-b2))``;
    ``w <- w - alpha_n gamma_n m_n / sqrt(eps + v_n)`` (``eps`` inside the root, as in the paper).
    ``gamma_n = 1/(1 + min(beta3 ||(1-b1) m_n||^2, alpha1))`` is VRAdam's gate (Vaidhyanathan et
    al. 2025, Alg. 1 l.7) on the un-bias-corrected velocity ``(1-b1) m_n`` after this step's
    update, the norm over the whole tensor (batch axes excluded); ``beta3 = 0`` gives plain
    Défossez Adam.  ``b2 = 1`` is their Adagrad.  The state records the gate.
    """
    g = _signed(g, h)
    b1, b2 = h["betas"]
    m = b1 * state["exp_avg"] + g
    v = b2 * state["exp_avg_sq"] + g * g
    omega_sq = b2 * state["omega_sq"] + 1
    omega = omega_sq**0.5 if isinstance(omega_sq, (int, float)) else ops.sqrt(omega_sq)
    gate = 1
    if not (isinstance(h["beta3"], (int, float)) and h["beta3"] == 0):
        vel = (1 - b1) * m
        gate = vr_gate(1, ops.inner(vel, vel), h, ops)
    w = w - h["lr"] * (1 - b1) * omega * gate * m / ops.sqrt(h["eps"] + v)
    return w, {"step": state["step"] + 1, "omega_sq": omega_sq, "exp_avg": m, "exp_avg_sq": v,
               "gate": gate}


_register(Rule("defossez_adam", _defossez_init, defossez_adam,
               {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "beta3": 0.0, "alpha1": 0.0,
                "maximize": False},
               "Défossez et al., TMLR 2022 (arXiv 2003.02395), Sec. 2 (Adam, alpha_n schedule); "
               "beta3 > 0: VRAdam's gate (arXiv 2505.13196, Alg. 1 l.7)"))


# ------------------------------------------------- VRMomentum: EMA momentum with VRAdam's gate
def vr_momentum(w, g, state, h, ops):
    """VRAdam's momentum ablation ("VRMomentum"; Vaidhyanathan et al. 2025, arXiv 2505.13196,
    Sec. 4, Thm 4.1 setting): no second moment, no bias correction.

    ``m_t = beta m_{t-1} + (1-beta) g_t``; ``eta_t = lr / (1 + min(beta3 ||m_t||^2, alpha1))``
    (Alg. 1 l.7, gate on the velocity after this step's update, as in the authors' code);
    ``w <- w - eta_t m_t``.  ``lr`` is the paper's alpha0.  The state records ``eta``.
    """
    g = _signed(g, h)
    m = h["momentum"] * state["momentum_buffer"] + (1 - h["momentum"]) * g
    eta = vr_gate(h["lr"], ops.inner(m, m), h, ops)
    return w - eta * m, {"momentum_buffer": m, "eta": eta}


def _vr_momentum_init(w, ops):
    return {"momentum_buffer": ops.zeros_like(w), "eta": None}


_register(Rule("vr_momentum", _vr_momentum_init, vr_momentum,
               {"lr": 0.1, "momentum": 0.9, "beta3": 1.0, "alpha1": 10.0, "maximize": False},
               "VRAdam paper (arXiv 2505.13196), Sec. 4 (VRMomentum, Thm 4.1); Alg. 1 l.7 gate"))


def get_rule(name: str) -> Rule:
    """The registered rule called ``name``; a ``KeyError`` lists the known names."""
    try:
        return RULES[name]
    except KeyError:
        raise KeyError(f"unknown update rule {name!r}; known rules: {', '.join(sorted(RULES))}") from None


# ============================================================ rules added for `analyze` (issue 13)
# QHM, AggMo, torch SGD with dampening, Adan, Lion.  Appended; the rules above are unchanged.
def qhm(w, g, state, h, ops):
    """Quasi-hyperbolic momentum (Ma & Yarats, ICLR 2019, arXiv 1810.06801, Sec. 3, eq. QHM):

    ``g_buf <- beta g_buf + (1 - beta) g``;  ``w <- w - lr [(1 - nu) g + nu g_buf]``.
    ``nu = 1`` is EMA momentum, ``nu = 0`` plain SGD; the paper recommends ``nu = 0.7``,
    ``beta = 0.999``.  ``weight_decay`` is added to the gradient (pytorch_optimizer's
    ``QHM(weight_decouple=False)``).
    """
    g = _signed(g, h)
    if h["weight_decay"]:
        g = g + h["weight_decay"] * w
    beta, nu = h["momentum"], h["nu"]
    buf = beta * state["momentum_buffer"] + (1 - beta) * g
    return w - h["lr"] * ((1 - nu) * g + nu * buf), {"momentum_buffer": buf}


def _aggmo_init(w, ops):
    return {"momentum_buffers": None}  # one buffer per beta, created at the first step


def aggmo(w, g, state, h, ops):
    """Aggregated momentum (Lucas, Sun, Zemel & Grosse, ICLR 2019, arXiv 1804.00325, eq. 3):

    ``v^(i) <- beta^(i) v^(i) - g`` for each of the ``K`` betas;
    ``w <- w + (lr/K) sum_i v^(i)``.  Written with ``b^(i) = -v^(i)`` (``b <- beta b + g``,
    ``w <- w - (lr/K) sum_i b^(i)``), as pytorch_optimizer's ``AggMo``.  The state holds the
    ``K`` buffers as a tuple (created at the first step: ``init`` does not see ``betas``).
    """
    g = _signed(g, h)
    if h["weight_decay"]:
        g = g + h["weight_decay"] * w
    betas = h["betas"]
    old = state["momentum_buffers"] or tuple(ops.zeros_like(w) for _ in betas)
    bufs = tuple(b * v + g for b, v in zip(betas, old))
    total = bufs[0]
    for v in bufs[1:]:
        total = total + v
    return w - (h["lr"] / len(betas)) * total, {"momentum_buffers": bufs}


def _counted_momentum_init(w, ops):
    return {"step": 0, "momentum_buffer": ops.zeros_like(w)}


def sgd(w, g, state, h, ops):
    """torch.optim.SGD in full (its documented algorithm; Sutskever et al. 2013 for Nesterov):

    ``g <- g + wd w``; ``b_1 = g_1`` (the first step copies the gradient, *undamped*),
    ``b_t = mu b_{t-1} + (1 - tau) g_t`` (``tau = dampening``); ``d = g + mu b`` if
    ``nesterov`` else ``b``; ``w <- w - lr d``.  With ``tau = 0`` this is :func:`heavy_ball`;
    the first-step copy is why the state counts steps.
    """
    g = _signed(g, h)
    if h["weight_decay"]:
        g = g + h["weight_decay"] * w
    mu = h["momentum"]
    first = isinstance(state["step"], int) and state["step"] == 0
    buf = g if first else mu * state["momentum_buffer"] + (1 - h["dampening"]) * g
    d = g + mu * buf if h["nesterov"] else buf
    return w - h["lr"] * d, {"step": state["step"] + 1, "momentum_buffer": buf}


def _adan_init(w, ops):
    return {"step": 0, "exp_avg": ops.zeros_like(w), "exp_avg_diff": ops.zeros_like(w),
            "exp_avg_sq": ops.zeros_like(w), "previous_grad": ops.zeros_like(w)}


def adan(w, g, state, h, ops):
    """Adan, adaptive Nesterov momentum (Xie, Zhou, Li, Lin & Yan 2022, arXiv 2208.06677,
    Algorithm 1), in the ``1 - beta`` convention of the authors' and pytorch_optimizer's code
    (the paper's ``beta_i`` is ``1 - betas[i]`` here):

    ``m = b1 m + (1-b1) g``; ``v = b2 v + (1-b2)(g - g_prev)``;
    ``n = b3 n + (1-b3) [g + b2 (g - g_prev)]^2``;
    ``w <- w - lr (m/bc1 + b2 v/bc2) / (sqrt(n/bc3) + eps)``, ``bc_i = 1 - b_i^t``;
    weight decay as in Alg. 1: ``w <- w / (1 + lr wd)`` after the step.  On the first step
    ``g_prev = g`` (no difference), as in both codes.
    """
    g = _signed(g, h)
    b1, b2, b3 = h["betas"]
    t = state["step"] + 1
    diff = 0 * g if isinstance(state["step"], int) and state["step"] == 0 else g - state["previous_grad"]
    m = b1 * state["exp_avg"] + (1 - b1) * g
    v = b2 * state["exp_avg_diff"] + (1 - b2) * diff
    corrected = g + b2 * diff
    n = b3 * state["exp_avg_sq"] + (1 - b3) * corrected * corrected
    denom = ops.sqrt(n) / (1 - b3**t) ** 0.5 + h["eps"]
    w = w - h["lr"] * (m / (1 - b1**t) + b2 * v / (1 - b2**t)) / denom
    if h["weight_decay"]:
        w = w / (1 + h["lr"] * h["weight_decay"])
    return w, {"step": t, "exp_avg": m, "exp_avg_diff": v, "exp_avg_sq": n, "previous_grad": g}


def sign(x, ops: Ops):
    """``sign(x)`` (0 at 0) through ``ops.where``: a step function, not differentiable at 0."""
    return ops.where(x > 0, 1.0, ops.where(x < 0, -1.0, 0.0))


def lion(w, g, state, h, ops):
    """Lion, evolved sign momentum (Chen et al. 2023, "Symbolic Discovery of Optimization
    Algorithms", arXiv 2302.06675, Program 1 / Algorithm 2):

    ``c = b1 m + (1 - b1) g``; ``w <- w - lr (sign(c) + wd w)``; ``m <- b2 m + (1 - b2) g``.
    The update has norm ``lr`` in every coordinate whatever the gradient: at the minimum
    ``sign`` jumps, so the map has no Jacobian there (``analyze`` refuses it).
    """
    g = _signed(g, h)
    b1, b2 = h["betas"]
    c = b1 * state["exp_avg"] + (1 - b1) * g
    if h["weight_decay"]:
        w = w * (1 - h["lr"] * h["weight_decay"])
    return w - h["lr"] * sign(c, ops), {"exp_avg": b2 * state["exp_avg"] + (1 - b2) * g}


def _lion_init(w, ops):
    return {"exp_avg": ops.zeros_like(w)}


_register(Rule("qhm", _momentum_init, qhm,
               {"lr": 1.0, "momentum": 0.999, "nu": 0.7, "weight_decay": 0.0, "maximize": False},
               "Ma & Yarats, ICLR 2019 (arXiv 1810.06801), Sec. 3 (QHM; defaults nu = 0.7, "
               "beta = 0.999 of Sec. 6); pytorch_optimizer.QHM"))
_register(Rule("aggmo", _aggmo_init, aggmo,
               {"lr": 0.1, "betas": (0.0, 0.9, 0.99), "weight_decay": 0.0, "maximize": False},
               "Lucas et al., ICLR 2019 (arXiv 1804.00325), eq. 3 (betas 0, 0.9, 0.99 of Sec. 5); "
               "pytorch_optimizer.AggMo"))
_register(Rule("sgd", _counted_momentum_init, sgd,
               {"lr": 0.1, "momentum": 0.9, "dampening": 0.5, "nesterov": False,
                "weight_decay": 0.0, "maximize": False},
               "torch.optim.SGD (momentum, dampening, first-step copy, nesterov)"))
_register(Rule("adan", _adan_init, adan,
               {"lr": 1e-3, "betas": (0.98, 0.92, 0.99), "eps": 1e-8, "weight_decay": 0.0,
                "maximize": False},
               "Xie et al. 2022 (arXiv 2208.06677), Algorithm 1; pytorch_optimizer.Adan "
               "(weight_decouple=False)"))
_register(Rule("lion", _lion_init, lion,
               {"lr": 1e-4, "betas": (0.9, 0.99), "weight_decay": 0.0, "maximize": False},
               "Chen et al. 2023 (arXiv 2302.06675), Program 1; pytorch_optimizer.Lion"))

__all__ += ["qhm", "aggmo", "sgd", "adan", "sign", "lion"]
