"""The claim spine: registry, prefix selection, unknown ids, what counts as proved."""
import pytest
import sympy as sp

import momentumlab.theory.norm_growth  # noqa: F401  (registers the adamp claims)
from momentumlab.theory.claims import (DEFAULT_CONTROLS, REGISTRY, CheckResult, Claim, Control,
                                      Derivation, Step, UnknownClaimError, get_claim, is_true,
                                      is_zero, resolution, run_controls, select)


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


def test_status_is_earned_by_the_weakest_step():
    reduced, note = Step("a", 0, True), Step("a definition")
    lemma = Step("b", sp.Symbol("x") >= 0, lemma="Cauchy-Schwarz")
    stated = Step("c", sp.Symbol("x"), False)
    assert Derivation.from_steps(None, [reduced, note]).status == "proved"
    assert Derivation.from_steps(None, [reduced, lemma, note]).status == "proved from lemmas"
    assert Derivation.from_steps(None, [reduced, lemma, stated]).status == "derived"
    assert Derivation.from_steps(None, [note]).status == "empirical"
    assert Derivation.measurement("threshold from stability.gd").status == "empirical"
    # a measurement stays empirical even when a note-like reduced step is attached
    assert Derivation(None, (reduced,), measured_only=True).status == "empirical"


def test_lemmas_are_listed_once_in_order_of_use():
    steps = [Step("a", None, lemma="descent lemma"), Step("b", None, lemma="AM-GM"),
             Step("c", None, lemma="descent lemma"), Step("d", 0, True)]
    d = Derivation.from_steps(None, steps)
    assert d.lemmas == ("descent lemma", "AM-GM")
    assert d.proved and d.status == "proved from lemmas"


def _threshold_result(measured=2.0, tol=1e-3):
    """A check that located a threshold at ``measured`` and predicted 2 (relative tolerance)."""
    def compare(prediction):
        err = abs(measured / prediction - 1)
        return err, err <= tol

    err, ok = compare(2.0)
    return CheckResult(2.0, measured, err, tol, ok, compare=compare)


def test_controls_are_rejected_by_a_sharp_check():
    outcomes = run_controls(DEFAULT_CONTROLS, _threshold_result())
    assert [o.name for o in outcomes] == [c.name for c in DEFAULT_CONTROLS]
    assert all(o.rejected for o in outcomes)


def test_a_check_that_accepts_anything_is_exposed():
    blind = CheckResult(2.0, 2.0, 0.0, 1.0, True, compare=lambda p: (0.0, True))
    assert not any(o.rejected for o in run_controls(DEFAULT_CONTROLS, blind))
    assert resolution(blind) is None
    assert resolution(CheckResult(2.0, 2.0, 0.0, 1.0, True)) is None  # no compare: no resolution


def test_resolution_is_the_tolerance_on_the_grid():
    # a relative tolerance of 1e-3 is detected from the first grid point above it
    res = resolution(_threshold_result(tol=1e-3))
    assert 1e-3 < res <= 10 ** (-3 + 0.25) * 1.0000001
    assert resolution(_threshold_result(tol=0.3)) > 0.3
    # a 20% tolerance cannot see a 10% error but sees a 2x error
    assert 0.1 < resolution(_threshold_result(tol=0.2)) < 1


def test_claim_specific_control_and_skipped_no_op_control():
    r = _threshold_result()
    beta_squared = Control("beta -> beta^2", lambda res: 2.0 * 0.9)
    no_op = Control("same prediction", lambda res: 2.0)
    outcomes = run_controls((beta_squared, no_op), r)
    assert [(o.name, o.rejected) for o in outcomes] == [("beta -> beta^2", True)]


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
