"""Time every teaching notebook at full size and at the small size the tests and docs use.

    python scripts/time_notebooks.py [--only 01_norm_growth ...]

Writes ``results/notebook_times.json`` (``{stem: {"full_minutes", "quick_seconds", "cpus",
"load_average"}}``, merged into the existing file); each notebook states its running time
near its top through a shown-number marker that reads this file.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results" / "notebook_times.json"
sys.path.insert(0, str(ROOT / "scripts"))


def run(path: Path, quick: bool) -> float:
    import jupytext
    import nbclient

    from build_docs import with_quick_parameters

    nb = jupytext.read(path)
    if quick:
        nb = with_quick_parameters(nb)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as work:
        nbclient.NotebookClient(nb, timeout=7200, kernel_name="python3",
                                resources={"metadata": {"path": work}}).execute()
    return time.perf_counter() - start


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="+", metavar="STEM")
    ap.add_argument("--keep", action="store_true", help="skip the runs already recorded")
    args = ap.parse_args(argv)
    times = json.loads(OUT.read_text()) if OUT.exists() else {}
    paths = [p for p in sorted((ROOT / "notebooks").glob("[0-9]*.py"))
             if not args.only or p.stem in args.only]
    for quick in (True, False):  # every small run first: they are what the tests wait for
        for path in paths:
            row = times.setdefault(path.stem, {"full_minutes": None, "quick_seconds": None})
            key = "quick_seconds" if quick else "full_minutes"
            if args.keep and row.get(key) is not None:
                continue
            try:
                seconds = run(path, quick=quick)
            except Exception as exc:  # noqa: BLE001 - a failing notebook is the tests' business
                print(f"{path.stem}: {'quick' if quick else 'full'} run failed: {exc!r}"[:500],
                      file=sys.stderr)
                row[key] = None
                continue
            row[key] = seconds if quick else seconds / 60
            row.update(cpus=os.cpu_count(), load_average=round(os.getloadavg()[0], 2))
            print(path.stem, row, flush=True)
            OUT.parent.mkdir(exist_ok=True)
            OUT.write_text(json.dumps(times, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
