"""Execute every teaching notebook (jupytext ``py:percent`` sources in ``notebooks/``).

Each notebook has a cell tagged ``parameters`` (papermill's convention) that
sets ``QUICK = False``; the test injects ``QUICK = True`` right after it so the
notebook runs at small sizes, and the notebook asserts its own key results by
calling the claim objects.
"""
from __future__ import annotations

from pathlib import Path

import pytest

jupytext = pytest.importorskip("jupytext")
nbclient = pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9]*.py"))


def _with_quick_parameters(nb):
    cells = nb.cells
    idx = next((i for i, c in enumerate(cells) if "parameters" in c.metadata.get("tags", [])), None)
    if idx is None:
        raise AssertionError("notebook has no cell tagged 'parameters'")
    injected = nbformat.v4.new_code_cell("QUICK = True  # injected by tests/test_notebooks.py")
    injected.metadata["tags"] = ["injected-parameters"]
    cells.insert(idx + 1, injected)
    return nb


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path, tmp_path, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = _with_quick_parameters(jupytext.read(path))
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
