"""`momentumlab eos`: tiny runs write the JSON and PNG; an unknown optimizer exits 2."""
import json

import pytest

from momentumlab.empirics.cli import main
from momentumlab.empirics.eos import OPTIMIZERS, late_window, loss_oscillation, run_eos, settings
from momentumlab.theory.eos import threshold

KEYS = {"settings", "device", "loss", "eta", "norm_sq", "eval_step", "sharpness", "threshold",
        "matvecs", "seconds", "summary"}


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_json_and_png(name, tmp_path, capsys):
    png, js = tmp_path / "e.png", tmp_path / "e.json"
    code = main(["eos", "--optimizer", name, "--steps", "30", "--n", "64", "--width", "8",
                 "--eig-every", "10", "--png", str(png), "--json", str(js), "--device", "cpu"])
    assert code == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rep = json.loads(js.read_text())
    assert KEYS <= set(rep)
    assert len(rep["loss"]) == 30 and rep["eval_step"] == [1, 10, 20, 30]
    assert len(rep["sharpness"]) == len(rep["threshold"]) == 4
    assert (len(rep["norm_sq"]) == 30) is (name == "vradam")
    summ = rep["summary"]
    assert {"predicted_eta_times_S", "measured_eta_times_S", "window", "hovers"} <= set(summ)
    assert name in capsys.readouterr().out


def test_unknown_optimizer_exits_2(capsys):
    assert main(["eos", "--optimizer", "sgdx", "--steps", "5"]) == 2
    err = capsys.readouterr().err
    assert "sgdx" in err and all(n in err for n in OPTIMIZERS)


def test_threshold_uses_measured_eta_t():
    run = run_eos(settings("vradam", steps=12, n=64, width=8, eig_every=4, beta3=1e4))
    for step, thr in zip(run.eval_step, run.threshold):
        assert thr == pytest.approx(threshold("vradam", run.eta[step - 1]), rel=1e-12)
    assert min(run.eta) < run.settings["lr"]  # the gate acted


def test_window_and_oscillation():
    assert late_window([10, 20, 30, 40, 50, 60, 70, 80, 90, 100], 100) == slice(5, None)  # steps >= 60
    assert loss_oscillation([1.0] * 10, 10) == 0.0
    assert loss_oscillation([1.0, 2.0] * 5, 10) == pytest.approx(1.0)  # |1|/1, |-1|/2, |1|/1
