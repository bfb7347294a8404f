"""Every subcommand answers bad input with exit 2 and one line on stderr, before any work."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from momentumlab.empirics import eos as eos_mod
from momentumlab.empirics import explore as explore_mod
from momentumlab.empirics.cli import main

BAD = [
    # explore
    ["explore", "stability", "--optimizer", "adam", "--y", "none", "--beta", "1.5"],
    ["explore", "stability", "--optimizer", "adam", "--y-range", "-3", "7"],
    ["explore", "stability", "--optimizer", "adam", "--beta", "0.5"],   # beta is the y axis
    ["explore", "stability", "--optimizer", "adam", "--grid", "100000"],
    ["explore", "stability", "--optimizer", "adam", "--grid", "1"],
    ["explore", "stability", "--optimizer", "adam", "--steps", "0"],
    ["explore", "stability", "--optimizer", "adam", "--x-range", "5", "1"],
    ["explore", "stability", "--optimizer", "tam", "--y", "d", "--mode", "running"],
    ["explore", "stability", "--optimizer", "adam", "--y", "beta2"],    # frozen P: never read
    ["explore", "stability", "--optimizer", "sgd"],
    ["explore", "stability", "--optimizer", "adam", "--mode", "fast"],
    ["explore", "stability", "--optimizer", "adam", "--beta", "nan", "--y", "none"],
    ["explore", "stability", "--optimizer", "adam", "--png", "no/such/folder/a.png"],
    # eos
    ["eos", "--optimizer", "gd", "--steps", "-5"],
    ["eos", "--optimizer", "gd", "--steps", "0"],
    ["eos", "--optimizer", "gd", "--eig-every", "0"],
    ["eos", "--optimizer", "gd", "--steps", "20", "--eig-every", "10"],
    ["eos", "--optimizer", "gd", "--lr", "-1"],
    ["eos", "--optimizer", "gd", "--n", "5000"],
    ["eos", "--optimizer", "gd", "--width", "0"],
    ["eos", "--optimizer", "sgd"],
    ["eos", "--optimizer", "gd", "--json", "no/such/folder/t.json"],
    # verify, list, explain
    ["verify", "--seed", "-1"],
    ["verify", "--seed", "x"],
    ["verify", "--device", "tpu"],
    ["verify", "--json", "no/such/folder/r.json"],
    ["verify", "--markdown", "no/such/folder/r.md"],
    ["verify", "--only", "adamp.lema2"],
    ["explain", "adamp.corolary2.3"],
    ["list", "--only", "nosuchtopic"],
    # bench (paths are checked by the front end for every subcommand)
    ["bench", "optimizers", "--json", "no/such/folder/b.json"],
    ["bench", "tpu"],
]
#: bench's numeric options belong to empirics/bench.py
BENCH_NUMERIC = [["bench", "optimizers", "--size", "-1"], ["bench", "optimizers", "--repeat", "0"]]


@pytest.fixture(autouse=True)
def no_work(monkeypatch):
    """Any experiment starting is a test failure: validation must come first."""
    def forbidden(*a, **k):
        raise AssertionError("work started before the arguments were validated")

    monkeypatch.setattr(eos_mod, "run_eos", forbidden)
    monkeypatch.setattr(explore_mod, "stability_report", forbidden)
    monkeypatch.setattr("momentumlab.empirics.report.run_claim", forbidden)
    monkeypatch.setattr("momentumlab.empirics.bench.run_benchmark", forbidden, raising=False)


def _run(argv, capsys):
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err


@pytest.mark.parametrize("argv", BAD, ids=[" ".join(a) for a in BAD])
def test_bad_input_exits_2_with_one_line(argv, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, err = _run(argv, capsys)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("momentumlab ") and "error:" in lines[0]


@pytest.mark.parametrize("argv", BENCH_NUMERIC, ids=[" ".join(a) for a in BENCH_NUMERIC])
def test_bench_numeric_arguments(argv, capsys):
    code, err = _run(argv, capsys)
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1


def test_error_names_argument_and_range(capsys):
    _, err = _run(["explore", "stability", "--optimizer", "adam", "--y", "none", "--beta", "1.5"], capsys)
    assert "--beta" in err and "[0, 1)" in err
    _, err = _run(["eos", "--optimizer", "gd", "--eig-every", "0"], capsys)
    assert "--eig-every" in err and ">= 1" in err


def test_version():
    out = subprocess.run([sys.executable, "-m", "momentumlab.empirics.cli", "--version"],
                         capture_output=True, text=True, check=True).stdout
    import momentumlab

    assert out.strip() == f"momentumlab {momentumlab.__version__}"


def test_ignored_parameters_found_by_simulation():
    # TAM running mode reads the cosine decay, never the fixed damping; frozen mode the reverse
    assert "d" in explore_mod.ignored_parameters("tam", "running")
    assert "d" not in explore_mod.ignored_parameters("tam", "frozen")
    assert "gamma" in explore_mod.ignored_parameters("tam", "frozen")
    assert "beta" not in explore_mod.ignored_parameters("adam", "frozen")


def test_sweeps_json_merges(tmp_path):
    from momentumlab.empirics.sweeps import merge_runs

    path = tmp_path / "s.json"
    path.write_text(json.dumps({"runs": [{"optimizer": "adam", "mode": "frozen", "v": 1},
                                         {"optimizer": "gd", "mode": "frozen", "v": 2}]}))
    merged = merge_runs(path, [{"optimizer": "adam", "mode": "frozen", "v": 3}])
    assert sorted((r["optimizer"], r["v"]) for r in merged) == [("adam", 3), ("gd", 2)]
