"""Execute every teaching notebook (jupytext ``py:percent`` sources in ``notebooks/``).

Each notebook has a cell tagged ``parameters`` (papermill's convention) that sets
``QUICK = False``; ``QUICK = True`` is injected right after it so the notebook runs at small
sizes, and the notebook asserts its own key results by calling the claim objects.  The
executed notebooks are cached in ``build/notebooks`` (scripts/build_docs.py renders the same
ones into the documentation).  Each notebook must also *show* its figures: every cell that
draws one has an image output.
"""
from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

pytest.importorskip("jupytext")
pytest.importorskip("nbclient")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9]*.py"))
spec = importlib.util.spec_from_file_location("build_docs", ROOT / "scripts" / "build_docs.py")
build_docs = importlib.util.module_from_spec(spec)
sys.modules.setdefault("build_docs", build_docs)
spec.loader.exec_module(build_docs)

#: a code cell that draws a figure
DRAWS = re.compile(r"^(?!def )(?!\s).*\b(?:plt\.show|show|display)\(", re.M)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes_and_shows_its_figures(path, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    nb = build_docs.execute_notebook(path)
    drawing = [c for c in nb.cells if c.cell_type == "code" and DRAWS.search(c.source)]
    assert drawing, "a teaching notebook draws at least one figure"
    for cell in drawing:
        images = [o for o in cell.get("outputs", []) if "image/png" in o.get("data", {})]
        assert images, f"this cell drew no figure:\n{cell.source[:300]}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_says_how_long_it_takes(path):
    head = path.read_text()[:4000]
    assert re.search(r"[Rr]untime|takes about|minutes? at full size|at full size", head), \
        "say near the top how long the notebook takes at full size"
