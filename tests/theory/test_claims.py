"""The claim spine: registry, prefix selection, unknown ids, what counts as proved."""
import pytest
import sympy as sp

import momentumlab.theory.norm_growth  # noqa: F401  (registers the adamp claims)
from momentumlab.theory.claims import (REGISTRY, Claim, Derivation, Step, UnknownClaimError, get_claim,
                           is_true, is_zero, select)


def test_select_prefix_and_order():
    ids = [c.id for c in select(["adamp.lemma2"])]
    assert ids == ["adamp.lemma2.1", "adamp.lemma2.2"]
    assert [c.id for c in select(["adamp"])][:2] == ["adamp.lemma2.1", "adamp.lemma2.2"]
    assert len(select(None)) == len(REGISTRY)


def test_unknown_id_lists_nearest():
    with pytest.raises(UnknownClaimError) as err:
        get_claim("adamp.lema2.1")
    assert "adamp.lemma2.1" in str(err.value)
    with pytest.raises(UnknownClaimError):
        select(["nosuchtopic"])


def test_proved_needs_every_identity_reduced():
    ok = Derivation.from_steps(None, [Step("a", 0, True), Step("text only")])
    partial = Derivation.from_steps(None, [Step("a", 0, True), Step("b", sp.Symbol("x"), False)])
    nothing = Derivation.from_steps(None, [Step("text only")])
    assert ok.status == "proved"
    assert partial.status == "derived"
    assert nothing.status == "derived"


def test_is_zero_and_is_true_do_not_accept_false_identities():
    x, y = sp.symbols("x y", positive=True)
    assert is_zero((x + y) ** 2 - x**2 - 2 * x * y - y**2)
    assert not is_zero((x + y) ** 2 - x**2 - y**2)
    assert is_true(x**2 + y >= 0)
    assert not is_true(x - y >= 0)


def test_claim_without_check_says_so():
    claim = Claim("tmp.x", "t", "s", "st", (), lambda: Derivation.from_steps(None, []))
    with pytest.raises(NotImplementedError, match="no empirical check"):
        claim.check()
