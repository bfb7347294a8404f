"""momentumlab.cache: a derivation comes back from the on-disk cache exactly as it was derived."""
from __future__ import annotations

import sympy as sp

from momentumlab import cache
from momentumlab.theory.claims import Derivation, Step


def test_unevaluated_steps_survive_the_cache_round_trip(tmp_path, monkeypatch):
    # pickle rebuilds sympy objects by calling their classes: Ge(x, 0) with x known nonnegative
    # evaluates to True, and And of two such to True with no arguments -- the displayed step
    # would then read "True" (seen under pytest-xdist, when a worker had primed the claims)
    monkeypatch.setenv("MOMENTUMLAB_CACHE", str(tmp_path))
    b, p = sp.symbols("b p", nonnegative=True)
    ge = sp.GreaterThan(b**2 * p, 0, evaluate=False)
    both = sp.And(ge, sp.GreaterThan(p / (1 + p), 0, evaluate=False))
    assert sp.GreaterThan(b**2 * p, 0) is sp.true  # what an evaluating rebuild gives
    closed = 2 * b + sp.Rational(1, 3) * p**2
    der = Derivation.from_steps(closed, [Step("a displayed inequality", ge, True),
                                         Step("two of them", both, True),
                                         Step("an evaluated identity", sp.expand((b + p)**2 - b**2), True)])
    cache.save_derivation("test.claim", der)
    back = cache.load_derivation("test.claim")
    assert back is not None
    assert isinstance(back.steps[0].expr, sp.GreaterThan) and back.steps[0].expr == ge
    assert len(back.steps[1].expr.args) == 2 and back.steps[1].expr == both
    # evaluated expressions come back equal as well (their stored arguments are canonical)
    assert back.steps[2].expr == der.steps[2].expr and back.expression == closed


def test_off_and_unreadable_cache_are_misses(tmp_path, monkeypatch):
    monkeypatch.setenv("MOMENTUMLAB_CACHE", "off")
    assert cache.load_derivation("test.claim") is None
    monkeypatch.setenv("MOMENTUMLAB_CACHE", str(tmp_path))
    path = cache.cache_dir() / "derivations" / "bad.pickle"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a pickle")
    assert cache.load_derivation("bad") is None
