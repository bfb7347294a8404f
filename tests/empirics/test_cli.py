"""`momentumlab verify | list | explain`."""
import json

import sympy

import pytest

from momentumlab.empirics.checks import load_claims
from momentumlab.empirics.cli import main
from momentumlab.theory.claims import REGISTRY, CheckResult, Claim, Derivation, register

load_claims()
KEYS = {"id", "title", "source", "symbolic", "lemmas", "resolution", "controls", "expression",
        "status", "predicted", "measured", "error", "tolerance", "details", "seconds",
        "quantities", "pass_rule"}


def test_verify_json_and_markdown(tmp_path, capsys):
    out, md = tmp_path / "r.json", tmp_path / "r.md"
    code = main(["verify", "--quick", "--only", "adamp.corollary", "--device", "cpu",
                 "--json", str(out), "--markdown", str(md)])
    assert code == 0
    report = json.loads(out.read_text())
    assert set(report) == {"momentumlab", "device", "seed", "quick", "versions", "claims"}
    assert report["device"] == "cpu" and report["quick"] is True and report["seed"] == 0
    assert set(report["versions"]) == {"python", "torch", "sympy"}
    (row,) = report["claims"]
    assert set(row) == KEYS
    assert row["id"] == "adamp.corollary2.3" and row["symbolic"] == "proved from lemmas"
    assert row["lemmas"] and 0 < row["resolution"] < 1 and all(c["rejected"] for c in row["controls"])
    beta = sympy.Symbol("beta")
    assert row["status"] == "pass"
    got = sympy.sympify(row["expression"], locals={"beta": beta})
    assert sympy.simplify(got - (1 + beta) / (1 - beta)) == 0
    assert "adamp.corollary2.3" in md.read_text()
    assert "PASS" in capsys.readouterr().out


def test_unknown_claim_exits_2_with_nearest(capsys):
    assert main(["verify", "--only", "adamp.lema2"]) == 2
    assert "adamp.lemma2" in capsys.readouterr().err
    assert main(["explain", "adamp.corolary2.3"]) == 2
    assert "adamp.corollary2.3" in capsys.readouterr().err


def test_bad_device_exits_2(capsys):
    assert main(["verify", "--only", "adamp.lemmaA", "--device", "tpu"]) == 2


def test_argparse_errors_exit_2(capsys):
    assert main(["verify", "--seed", "notanint"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


@pytest.fixture
def failing_claim():
    claim = register(Claim("zz_test.failing", "always fails", "test", "0 = 1", (),
                           lambda: Derivation.from_steps(None, []),
                           check_fn=lambda **kw: CheckResult(0.0, 1.0, 1.0, 1e-10, False,
                                                             {"summary": "by construction"})))
    yield claim
    REGISTRY.pop(claim.id)


def test_failing_claim_exits_1_and_is_reported(failing_claim, tmp_path):
    out = tmp_path / "r.json"
    assert main(["verify", "--only", "zz_test", "--json", str(out)]) == 1
    (row,) = json.loads(out.read_text())["claims"]
    assert row["status"] == "fail" and row["symbolic"] == "empirical"
    assert "by construction" in row["details"]["summary"]


def test_crashing_check_is_an_error_row(tmp_path):
    claim = register(Claim("zz_test.crash", "crashes", "test", "-", (),
                           lambda: Derivation.from_steps(None, []),
                           check_fn=lambda **kw: 1 / 0))
    try:
        out = tmp_path / "r.json"
        assert main(["verify", "--only", "zz_test.crash", "--json", str(out)]) == 1
        (row,) = json.loads(out.read_text())["claims"]
        assert row["status"] == "error" and "ZeroDivisionError" in row["details"]["exception"]
    finally:
        REGISTRY.pop(claim.id)


def test_list_and_explain(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "adamp.lemma2.2" in out and "adamp.proposition3.1" in out
    assert main(["explain", "adamp.proposition3.1"]) == 0
    out = capsys.readouterr().out
    assert "statement" in out and "derivation (proved)" in out and "Proposition 3.1" in out


def test_refuted_paper_claim_is_plain_in_table_and_markdown(tmp_path, capsys):
    claim = register(Claim("zz_test.refuted", "paper says x", "test", "-", (),
                           lambda: Derivation.from_steps(None, []),
                           check_fn=lambda **kw: CheckResult(1.0, 1.0, 0.0, 1e-9, True, {
                               "paper_claim": "refuted: the counterexample grows"})))
    try:
        md = tmp_path / "r.md"
        assert main(["verify", "--only", "zz_test.refuted", "--markdown", str(md)]) == 0
        out = capsys.readouterr().out
        assert "PASS R" in out and "the counterexample grows" in out
        text = md.read_text()
        assert "PASS (paper refuted)" in text and "## Findings" in text
    finally:
        REGISTRY.pop(claim.id)
