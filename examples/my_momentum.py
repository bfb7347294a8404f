"""Three momentum methods written from their textbook equations, as a user would write them.

Written without looking at ``theory/rules.py`` (state named ``velocity``, no weight decay,
no ``maximize``) so that ``momentumlab analyze`` is tested on a rule file it has not seen:

    momentumlab analyze examples/my_momentum.py:heavy_ball
    momentumlab analyze examples/my_momentum.py:nesterov
    momentumlab analyze examples/my_momentum.py:ema

A rule is a ``Rule(name, init, step, defaults)``: ``init(w, ops)`` returns the state dict,
``step(w, g, state, hyper, ops)`` returns ``(new_w, new_state)`` using only ``+ - * /`` and
the functions of ``ops`` (``ops.zeros_like``, ``ops.sqrt`` ...), so the same code runs on
sympy symbols (the analysis) and on batched torch tensors (the simulation).
"""
from momentumlab.theory.rules import Rule


def zero_velocity(w, ops):
    return {"velocity": ops.zeros_like(w)}


def polyak_step(w, g, state, hyper, ops):
    """Polyak's heavy ball in PyTorch's form: v <- beta v + g; w <- w - lr v."""
    v = hyper["beta"] * state["velocity"] + g
    return w - hyper["lr"] * v, {"velocity": v}


def nesterov_step(w, g, state, hyper, ops):
    """Sutskever et al. 2013 / PyTorch nesterov=True: v <- beta v + g; w <- w - lr (g + beta v)."""
    v = hyper["beta"] * state["velocity"] + g
    return w - hyper["lr"] * (g + hyper["beta"] * v), {"velocity": v}


def ema_step(w, g, state, hyper, ops):
    """Exponential moving average of gradients: v <- beta v + (1 - beta) g; w <- w - lr v."""
    v = hyper["beta"] * state["velocity"] + (1 - hyper["beta"]) * g
    return w - hyper["lr"] * v, {"velocity": v}


heavy_ball = Rule("my_heavy_ball", zero_velocity, polyak_step, {"lr": 0.1, "beta": 0.9})
nesterov = Rule("my_nesterov", zero_velocity, nesterov_step, {"lr": 0.1, "beta": 0.9})
ema = Rule("my_ema", zero_velocity, ema_step, {"lr": 0.1, "beta": 0.9})
