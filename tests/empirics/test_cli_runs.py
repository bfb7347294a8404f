"""The CLI's behaviour on results: divergence, Ctrl-C, fail reasons, table width, the cache."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest
from rich.console import Console

from momentumlab.empirics import eos as eos_mod
from momentumlab.empirics.cli import main
from momentumlab.empirics.report import ClaimRow, fail_reason, render_table
from momentumlab.theory.claims import REGISTRY, CheckResult, Claim, Derivation, register


def _diverged_run(steps=40):
    s = eos_mod.settings("heavy_ball", quick=True, steps=steps, eig_every=5, n=50, width=4)
    run = eos_mod.EosRun(eos_mod.asdict(s), "cpu")
    run.loss = [1.0, 2.0, 50.0, 1e200, math.inf]
    run.eta = [s.lr] * 5
    run.eval_step, run.sharpness, run.threshold = [1], [3.0], [4.47]
    run.diverged_at = 5
    return run


def test_divergence_is_a_result(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(eos_mod, "run_eos", lambda *a, **k: _diverged_run())
    png, js = tmp_path / "d.png", tmp_path / "d.json"
    code = main(["eos", "--optimizer", "heavy_ball", "--steps", "40", "--eig-every", "5",
                 "--png", str(png), "--json", str(js)])
    out = capsys.readouterr()
    assert code == 1
    assert "DIVERGED" in out.out and "step 5" in out.out and "nan" not in out.out.lower()
    assert out.err == ""  # no numpy warnings
    summary = json.loads(js.read_text())["summary"]
    assert summary["diverged_at_step"] == 5 and summary["measured_eta_times_S"] is None
    assert png.stat().st_size > 10_000


@pytest.fixture
def claims_for_interrupt():
    calls = []

    def ok(**kw):
        calls.append(1)
        return CheckResult(1.0, 1.0, 0.0, 1e-9, True, {})

    def interrupt(**kw):
        raise KeyboardInterrupt

    made = [register(Claim("zz_int.a_first", "passes", "test", "1 = 1", (),
                           lambda: Derivation.from_steps(None, []), check_fn=ok)),
            register(Claim("zz_int.b_second", "interrupted", "test", "-", (),
                           lambda: Derivation.from_steps(None, []), check_fn=interrupt))]
    yield
    for c in made:
        REGISTRY.pop(c.id)


def test_ctrl_c_keeps_the_finished_claims(claims_for_interrupt, tmp_path, capsys):
    out = tmp_path / "r.json"
    code = main(["verify", "--only", "zz_int", "--json", str(out), "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 130 and "interrupted: 1 of 2" in err and "Traceback" not in err
    report = json.loads(out.read_text())
    assert [r["id"] for r in report["claims"]] == ["zz_int.a_first"]
    assert report["interrupted"] == {"finished": 1, "selected": 2}


def test_fail_reason_is_never_empty():
    row = ClaimRow("t.x", "t", "s", status="fail", predicted=2.0, measured=3.0, error=0.5,
                   tolerance=0.1)
    assert "0.5" in fail_reason(row) and "0.1" in fail_reason(row)
    row = ClaimRow("t.y", "t", "s", status="fail", predicted=3.8, measured=None)
    assert "no finite measurement" in fail_reason(row)


def test_table_fits_80_columns():
    rows = [ClaimRow(f"convergence.vradam_bound{k}", "t", "s", symbolic="proved from lemmas",
                     status="pass", predicted=-0.123456789, measured=-8.87e-17, error=1.23e-15,
                     tolerance=1e-10, resolution=1e-3,
                     controls=[{"name": "x", "rejected": True, "error": 1.0}] * 4,
                     details={"paper_claim": "partly refuted: long explanation " * 5})
            for k in range(3)]
    console = Console(width=80, record=True, force_terminal=False)
    render_table(rows, console)
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "vradam_bound0" in text and "PASS r" in text and "res:" in text


def test_list_answers_from_the_cache_without_sympy(tmp_path):
    env = {**os.environ, "MOMENTUMLAB_CACHE": str(tmp_path)}
    code = ("import sys; from momentumlab.empirics.cli import main; main(['list']); "
            "print('SYMPY' if 'sympy' in sys.modules else 'LEAN')")
    first = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    second = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert first.stdout.splitlines()[:-1] == second.stdout.splitlines()[:-1]
    assert "adamp.lemma2.1" in second.stdout
    assert second.stdout.strip().endswith("LEAN"), second.stdout[-200:]


def test_cached_derivation_round_trip(tmp_path, monkeypatch):
    monkeypatch.setenv("MOMENTUMLAB_CACHE", str(tmp_path))
    from momentumlab import cache
    from momentumlab.empirics.checks import load_claims

    claim = load_claims()["adamp.corollary2.3"]
    cache.prime([claim])
    stored = cache.load_derivation(claim.id)
    fresh = claim.derive()
    assert stored is not None and stored.status == fresh.status == "proved from lemmas"
    assert stored.lemmas == fresh.lemmas and stored.expression == fresh.expression


def test_every_claim_says_what_its_columns_are_and_when_it_passes():
    """``explain``, the claim pages and the Markdown report show ``quantities`` and ``pass_rule``;
    every claim module fills them in."""
    from momentumlab.empirics.checks import load_claims

    missing = [c.id for c in load_claims().values()
               if not c.id.startswith("zz_") and not (c.quantities and c.pass_rule)]
    assert not missing, f"claims without quantities/pass_rule: {missing}"
