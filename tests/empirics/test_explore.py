"""`momentumlab explore stability`: PNG and JSON for every optimizer, usage errors exit 2."""
import json

import pytest

from momentumlab.empirics.cli import main
from momentumlab.theory.stability import MODELS

KEYS = {"optimizer", "hyperparameters", "threshold", "conditions", "x", "y", "symbolic_stable",
        "simulated", "agreement"}


@pytest.mark.parametrize("name", list(MODELS))
def test_png_and_json_for_every_optimizer(name, tmp_path, capsys):
    png, js = tmp_path / "r.png", tmp_path / "r.json"
    code = main(["explore", "stability", "--optimizer", name, "--grid", "12", "--steps", "200",
                 "--png", str(png), "--json", str(js), "--device", "cpu"])
    assert code == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rep = json.loads(js.read_text())
    assert KEYS <= set(rep) and rep["optimizer"] == name
    nx = len(rep["x"]["values"])
    ny = 1 if rep["y"]["values"] is None else len(rep["y"]["values"])
    assert rep["x"]["name"] == "eta_lambda" and nx == 12
    assert len(rep["symbolic_stable"]) == ny and len(rep["symbolic_stable"][0]) == nx
    assert all(isinstance(v, bool) for row in rep["symbolic_stable"] for v in row)
    assert {v for row in rep["simulated"] for v in row} <= {"converged", "bounded", "diverged"}
    assert rep["threshold"] and all(c.endswith("> 0") for c in rep["conditions"])
    # the reported agreement, recomputed from the JSON's own grids (a different path)
    cells = [(sim == "converged") == sym for rs, rb in zip(rep["simulated"], rep["symbolic_stable"])
             for sim, sym in zip(rs, rb)]
    assert rep["agreement"]["fraction_all_cells"] == pytest.approx(sum(cells) / len(cells), abs=1e-12)
    assert name in capsys.readouterr().out


def test_json_values_and_options(tmp_path):
    js = tmp_path / "a.json"
    assert main(["explore", "stability", "--optimizer", "adam", "--grid", "8", "--steps", "100",
                 "--beta2", "0.99", "--x-range", "1", "50", "--json", str(js)]) == 0
    rep = json.loads(js.read_text())
    assert rep["threshold"] == "(2*beta + 2)/(1 - beta)"
    assert rep["hyperparameters"]["beta2"] == 0.99 and "beta" not in rep["hyperparameters"]
    assert rep["x"]["values"][0] == 1.0 and rep["x"]["values"][-1] == 50.0
    assert rep["y"]["name"] == "beta"


def test_running_mode_and_other_y_axis(tmp_path):
    # running TAM reads the cosine decay gamma (never the fixed damping d: refused, see
    # tests/empirics/test_cli_errors.py)
    js = tmp_path / "t.json"
    assert main(["explore", "stability", "--optimizer", "tam", "--y", "gamma", "--grid", "8",
                 "--steps", "100", "--mode", "running", "--json", str(js)]) == 0
    rep = json.loads(js.read_text())
    assert rep["y"]["name"] == "gamma" and rep["mode"] == "running"


def test_unknown_optimizer_exits_2_and_lists_known(capsys):
    assert main(["explore", "stability", "--optimizer", "sgdx"]) == 2
    err = capsys.readouterr().err
    assert "sgdx" in err and all(n in err for n in MODELS)


@pytest.mark.parametrize("argv, needle", [
    (["--optimizer", "heavy_ball", "--y", "alpha1"], "alpha1"),
    (["--optimizer", "adam", "--d", "0.5"], "--d"),
    (["--optimizer", "gd", "--mode", "running"], "mode"),
    (["--optimizer", "gd", "--x", "beta"], "eta_lambda"),
    (["--optimizer", "gd", "--device", "tpu"], "device"),
])
def test_bad_usage_exits_2(argv, needle, capsys):
    assert main(["explore", "stability", *argv]) == 2
    assert needle in capsys.readouterr().err


def test_unknown_target_exits_2(capsys):
    assert main(["explore", "landscape", "--optimizer", "gd"]) == 2
    assert "stability" in capsys.readouterr().err
