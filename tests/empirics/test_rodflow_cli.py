"""``momentumlab rodflow``: bad usage exits 2 before work; a tiny run writes JSON and PNG."""
from __future__ import annotations

import json

import pytest

from momentumlab.empirics.cli import main


@pytest.mark.parametrize("argv, msg", [
    (["--optimizer", "sgdx"], "known: gd"),
    (["--model", "toy:nope"], "toy:minimal"),
    (["--lr", "-1"], "--lr"),
    (["--steps", "0"], "--steps"),
    (["--flows", "rod,edge"], "--flows"),
    (["--json", "/nonexistent/dir/x.json"], "--json"),
    (["--central-sdcp", "two"], "auto, sdcp, one"),
])
def test_bad_usage_exits_2(argv, msg, capsys):
    assert main(["rodflow", *argv]) == 2
    err = capsys.readouterr().err
    assert msg in err and len(err.strip().splitlines()) == 1


def test_tiny_run_writes_json_and_png(tmp_path):
    js, png = tmp_path / "r.json", tmp_path / "r.png"
    rc = main(["rodflow", "--quick", "--steps", "12", "--flows", "discrete,rod,stable",
               "--json", str(js), "--png", str(png)])
    assert rc == 0
    data = json.loads(js.read_text())
    assert set(data["summary"]["error_all"]) == {"rod", "stable"}
    assert png.stat().st_size > 10_000


def test_central_sdcp_reaches_the_race(tmp_path, monkeypatch):
    # the flag is passed to race(central_sdcp=...) and recorded in the JSON settings
    from momentumlab.empirics import flows

    seen = []
    real = flows.race

    def spy(*a, **k):
        seen.append(k.get("central_sdcp"))
        return real(*a, **k)

    monkeypatch.setattr(flows, "race", spy)
    js = tmp_path / "r.json"
    assert main(["rodflow", "--quick", "--steps", "4", "--flows", "discrete,central",
                 "--central-sdcp", "one", "--json", str(js)]) == 0
    assert seen == ["one"]
    assert json.loads(js.read_text())["settings"]["central_sdcp"] == "one"


def test_central_sdcp_without_cvxpy_exits_2(monkeypatch, capsys):
    from momentumlab.empirics import central_flow_sdcp

    monkeypatch.setattr(central_flow_sdcp, "cvxpy_available", lambda: False)
    assert main(["rodflow", "--central-sdcp", "sdcp"]) == 2
    assert "cvxpy" in capsys.readouterr().err
