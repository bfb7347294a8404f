"""Record the numbers and figures of docs/guide/analyze.md: ``python examples/record_analyze.py``.

Writes ``results/analyze.json`` (per rule: threshold, status, value at the defaults, rod-flow
flip, simulated agreement) and ``docs/guide/figures/analyze_*.png``.  Grid 128 x 128, 1000 steps.
"""
import json
import platform
import time
from pathlib import Path

import sympy as sp

from momentumlab.empirics.analyze_cli import plot_region, region
from momentumlab.theory.analyze import NotAnalyzable, analyze
from momentumlab.theory.claims import is_zero

ROOT = Path(__file__).resolve().parents[1]
USER = "examples/my_momentum.py"
CASES = {  # name: (rule spec, params, y axis)
    "my_heavy_ball": (f"{USER}:heavy_ball", {}, "beta"),
    "my_nesterov": (f"{USER}:nesterov", {}, "beta"),
    "my_ema": (f"{USER}:ema", {}, "beta"),
    "qhm": ("qhm", {"momentum": 0.9}, "nu"),
    "aggmo": ("aggmo", {}, "beta3"),
    "sgd": ("sgd", {}, "dampening"),
    "adan": ("adan", {}, "beta1"),
    "lion": ("lion", {}, None),
}
FIGURES = ("my_heavy_ball", "qhm", "aggmo", "adan")


def main() -> None:
    out = {"grid": 128, "steps": 1000, "machine": platform.machine(), "rules": {}}
    figs = ROOT / "docs" / "guide" / "figures"
    figs.mkdir(parents=True, exist_ok=True)
    for name, (spec, params, y) in CASES.items():
        t0 = time.perf_counter()
        try:
            an = analyze(spec, params)
        except NotAnalyzable as exc:
            out["rules"][name] = {"refused": exc.reason}
            continue
        s = an.summary()
        row = {k: s[k] for k in ("threshold", "threshold_kind", "status", "threshold_at_values",
                                 "rod_flow_flip_threshold", "rod_flow_flip_at_values")}
        row["symbolic_seconds"] = time.perf_counter() - t0
        sw = region(an, spec, y, grid=128, steps=1000)
        row.update(agreement=sw.agreement["fraction"], cells_compared=sw.agreement["cells_compared"],
                   cells_in_band=sw.agreement["cells_in_band"], simulation_seconds=sw.seconds)
        if name == "qhm":  # Gitman, Lang, Zhang & Xiao, NeurIPS 2019: 2(1 + beta)/(1 + beta(1 - 2 nu))
            beta, nu = sp.symbols("momentum nu", real=True)
            row["gitman_2019_equal"] = is_zero(an.threshold - 2 * (1 + beta) / (1 + beta * (1 - 2 * nu)))
        out["rules"][name] = row
        if name in FIGURES:
            plot_region(sw, an, figs / f"analyze_{name}.png")
    path = ROOT / "results" / "analyze.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
