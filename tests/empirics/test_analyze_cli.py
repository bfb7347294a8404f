"""``momentumlab analyze``: the simulated region of each new rule against its Schur region,
refusal exit status, and one-line usage errors (exit 2) before any work.

Agreement is required to be exact (fraction 1.0) outside the band ``steps |ln rho| < KAPPA``:
there a linear map's outcome is decided within the run (sweeps' module docstring), so one
disagreeing cell is a wrong region.  Negative control: the same simulation judged against the
threshold scaled by 1.1 or 0.9 must disagree -- the grid resolves a 10% error in the threshold.
"""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from momentumlab.empirics.analyze_cli import region
from momentumlab.empirics.cli import main
from momentumlab.theory.analyze import analyze

ROOT = Path(__file__).resolve().parents[2]
USER = ROOT / "examples" / "my_momentum.py"


@pytest.mark.parametrize("spec,params,y", [
    ("qhm", {"momentum": 0.9}, "nu"),  # the paper's beta = 0.999 converges too slowly for 600 steps
    ("aggmo", {}, "beta3"), ("sgd", {}, "dampening"), ("adan", {}, "beta1"),
    (f"{USER}:nesterov", {}, "beta")])
def test_simulated_region_agrees_with_schur_region(spec, params, y):
    an = analyze(spec, params)
    sw = region(an, spec, y_name=y, grid=48, steps=600)
    a = sw.agreement
    assert a["cells_compared"] > 0.7 * sw.outcome.size
    assert a["fraction"] == 1.0
    if an.threshold is not None:  # negative control: a 10% wrong threshold is visible
        thr = np.array([an.threshold_value(**{y: v}) for v in sw.y])[:, None]
        for factor in (0.9, 1.1):
            wrong = sw.x[None, :] < factor * thr
            out = ~sw.in_band
            assert ((sw.outcome == 0) == wrong)[out].mean() < 1.0


def test_cli_user_file_writes_json_and_png(tmp_path, capsys):
    js, png = tmp_path / "r.json", tmp_path / "r.png"
    rc = main(["analyze", f"{USER}:heavy_ball", "--params", "beta=0.5", "--grid", "16",
               "--steps", "200", "--json", str(js), "--png", str(png), "--latex",
               "--executor", "local"])
    assert rc == 0
    out = json.loads(js.read_text())
    assert out["threshold"] == "2*beta + 2" and out["status"] == "proved"
    assert out["threshold_at_values"] == pytest.approx(3.0, rel=1e-12)
    assert out["simulation"]["agreement"]["fraction"] == 1.0
    assert png.stat().st_size > 10_000
    assert "\\eta\\lambda <" in capsys.readouterr().out


def test_cli_refuses_lion_with_reason(tmp_path, capsys):
    js = tmp_path / "lion.json"
    assert main(["analyze", "lion", "--json", str(js)]) == 1
    assert "not differentiable at the fixed point" in capsys.readouterr().out
    assert "sign" in json.loads(js.read_text())["refused"]


@pytest.mark.parametrize("argv,needle", [
    (["nope"], "FILE.py:NAME"),
    ([f"{ROOT}/missing.py:x"], "does not exist"),
    (["qhm", "--params", "gamma=1"], "unknown hyperparameter"),
    (["qhm", "--params", "momentum"], "NAME=VALUE"),
    (["qhm", "--params", "momentum=abc"], "cannot read"),
    (["qhm", "--params", "lr=-1"], "lr must be > 0"),
    (["qhm", "--grid", "1"], "--grid"),
    (["qhm", "--steps", "2"], "--steps"),
    (["qhm", "--x-range", "3", "1"], "--x-range"),
    (["qhm", "--y-range", "0", "1.5"], "--y-range"),
    (["qhm", "--executor", "mpi"], "--executor"),
    (["qhm", "--executor", "dask:"], "address"),
    (["qhm", "--json", "/no/such/dir/x.json"], "--json"),
    (["qhm", "--y", "gamma"], "--y"),
    (["qhm", "--symbolic", "eps"], "symbolic parameter"),
])
def test_bad_arguments_exit_2_with_one_line(argv, needle, capsys):
    assert main(["analyze", *argv, "--no-simulation"]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], err


def test_usage_error_from_the_console_script():
    """The installed entry point maps a usage error to exit status 2 (one subprocess)."""
    done = subprocess.run([sys.executable, "-m", "momentumlab.empirics.cli", "analyze", "qhm",
                           "--grid", "0"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_guide_numbers_come_from_the_recorded_json():
    """Every <!-- num: FILE#KEYS SPEC -->VALUE<!-- /num --> of docs/guide/analyze.md renders
    the recorded value (examples/record_analyze.py writes results/analyze.json)."""
    import re

    text = (ROOT / "docs" / "guide" / "analyze.md").read_text()
    marks = re.findall(r"<!-- num: (\S+?)#(\S+) (\S+) -->(.*?)<!-- /num -->", text)
    assert len(marks) >= 14
    for file, keys, spec, shown in marks:
        value = json.loads((ROOT / file).read_text())
        for k in keys.split("."):
            value = value[int(k)] if isinstance(value, list) else value[k]
        assert format(value, spec) == shown, (keys, shown)
