"""``momentumlab bench optimizers``: smoke run at a tiny size, argument checks, and the speed
guide's numbers against the recorded figures (benchmarks/optimizers_cpu.json)."""
import json
import math
from pathlib import Path

import pytest

from momentumlab.empirics.bench import TARGETS, model_shapes, slug
from momentumlab.empirics.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_model_shapes_mix_kernels_matrices_vectors_at_the_requested_size():
    shapes = model_shapes(25e6)
    total = sum(math.prod(s) for s in shapes)
    assert 20e6 < total < 30e6
    assert {len(s) for s in shapes} == {1, 2, 4}


def test_bench_command_reports_both_paths_both_phases_and_the_load(tmp_path, capsys):
    out = tmp_path / "bench.json"
    code = main(["bench", "optimizers", "--device", "cpu", "--size", "0.02", "--repeat", "2",
                 "--warmup", "1", "--json", str(out)])
    assert code == 0
    report = json.loads(out.read_text())
    rows = report["results"]
    base = rows["torch_adamw_fused"]
    assert base["one_thread"]["ratio"] == 1.0 and base["all_threads"]["ratio"] == 1.0
    for name, target in TARGETS.items():
        ours, fallback = rows[slug(name)], rows[slug(f"{name} (torch)")]
        assert ours["target"] == target and ours["one_thread"]["min_ms"] > 0
        assert fallback["path"] == "torch"
        assert ours["path"] == ("native" if report["native"]["available"] else "torch")
    assert any(r["kind"] == "reference" for r in rows.values())  # adamp / pytorch_optimizer installed
    assert len(report["load_average"]["before"]) == 3
    printed = capsys.readouterr().out
    assert "compiled kernels:" in printed and "load average" in printed


@pytest.mark.parametrize("args,word", [
    (["--size", "-1"], "--size"), (["--size", "0"], "--size"), (["--size", "nan"], "--size"),
    (["--size", "1e9"], "--size"), (["--repeat", "0"], "--repeat"), (["--warmup", "-1"], "--warmup"),
    (["--seed", "-3"], "--seed"), (["--device", "tpu"], "device"),
    (["--json", "/nonexistent/dir/x.json"], "--json")])
def test_bench_rejects_bad_arguments_in_one_line_before_work(args, word, capsys):
    assert main(["bench", "optimizers", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and word in err


def test_bench_rejects_an_unknown_optimizer_name(capsys):
    assert main(["bench", "optimizers", "--only", "nosuch", "--size", "0.01"]) == 2
    err = capsys.readouterr().err
    assert "nosuch" in err and "VRAdam" in err


def test_recorded_figures_hold_both_paths_of_every_optimizer():
    report = json.loads((ROOT / "benchmarks/optimizers_cpu.json").read_text())
    rows = report["results"]
    for name in TARGETS:
        assert rows[slug(name)]["path"] == "native" and rows[slug(f"{name} (torch)")]["path"] == "torch"
        assert rows[slug(name)]["one_thread"]["ratio"] > 0
    assert report["load_average"]["before"] is not None


def test_target_summary_counts_the_compiled_rows_and_names_the_misses():
    from momentumlab.empirics.bench import _target_summary

    def row(name, ratio, target):
        return {"name": name, "one_thread": {"ratio": ratio}, "target": target, "meets_target": ratio <= target}

    results = {"vradam": row("VRAdam", 1.3841, 1.35), "vradam_torch": row("VRAdam (torch)", 1.9, 1.35),
               "tam": row("TAM", 1.10, 1.15), "torch_adamw_fused": {"name": "torch AdamW (fused)", "one_thread": {"ratio": 1.0}}}
    summary = _target_summary(results)
    assert summary == {"met": 1, "of": 2, "missed": "VRAdam 1.384 > 1.35", "verdict": "1 of 2 targets met"}
    results["vradam"] = row("VRAdam", 1.30, 1.35)
    assert _target_summary(results)["verdict"] == "every target met"
    assert _target_summary(results)["missed"] == "none"
