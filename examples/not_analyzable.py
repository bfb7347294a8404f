"""Rules that ``momentumlab analyze`` must refuse, each for a different reason."""
from momentumlab.theory.rules import Rule


def _none(w, ops):
    return {}


def _count(w, ops):
    return {"t": 0}


def normalized_gd(w, g, state, h, ops):
    """w <- w - lr g/||g||: the direction jumps at the minimum (a fractional power of 0)."""
    return w - h["lr"] * g / ops.sqrt(ops.inner(g, g)), {}


def decaying_lr(w, g, state, h, ops):
    """w <- w - lr g / sqrt(t): the step counter never leaves the map (no late-time limit)."""
    t = state["t"] + 1
    return w - h["lr"] * g / t**0.5, {"t": t}


def pushed(w, g, state, h, ops):
    """w <- w - lr (g + c): the minimum of f is not a fixed point of the update."""
    return w - h["lr"] * (g + h["c"]), {}


normalized = Rule("normalized_gd", _none, normalized_gd, {"lr": 0.1})
decaying = Rule("decaying_lr", _count, decaying_lr, {"lr": 0.1})
push = Rule("pushed", _none, pushed, {"lr": 0.1, "c": 1.0})
