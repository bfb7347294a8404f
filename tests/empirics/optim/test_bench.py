"""Smoke test of ``momentumlab bench optimizers`` (tiny size; the real figures are in benchmarks/)."""
import json

from momentumlab.empirics.bench import TARGETS, model_shapes
from momentumlab.empirics.cli import main


def test_model_shapes_mix_kernels_matrices_vectors_at_the_requested_size():
    shapes = model_shapes(25e6)
    total = sum(int(__import__("math").prod(s)) for s in shapes)
    assert 20e6 < total < 30e6
    assert {len(s) for s in shapes} == {1, 2, 4}


def test_bench_command_writes_every_optimizer_with_ratios(tmp_path, capsys):
    out = tmp_path / "bench.json"
    code = main(["bench", "optimizers", "--device", "cpu", "--size", "0.02", "--repeat", "2",
                 "--warmup", "1", "--json", str(out)])
    assert code == 0
    report = json.loads(out.read_text())
    rows = {r["name"]: r for r in report["results"]}
    assert rows["torch AdamW (fused)"]["ratio"] == 1.0
    for name in TARGETS:
        assert rows[name]["kind"] == "ours" and rows[name]["ratio"] > 0
        assert rows[name]["target"] == TARGETS[name]
    assert any(r["kind"] == "reference" for r in rows.values())  # adamp / pytorch_optimizer installed
    assert "ratio" in capsys.readouterr().out


def test_bench_rejects_a_bad_device():
    assert main(["bench", "optimizers", "--device", "tpu", "--size", "0.01"]) == 2


def test_bench_rejects_an_unknown_optimizer_name(capsys):
    assert main(["bench", "optimizers", "--only", "nosuch", "--size", "0.01"]) == 2
    err = capsys.readouterr().err
    assert "nosuch" in err and "VRAdam" in err
