"""Headless Chromium opens the built site: math is typeset by KaTeX and every figure decodes.

Needs Debian's ``chromium`` (``.ci/run`` installs it); skipped, saying why, where it is absent.
``docs/assets/javascripts/selfcheck.js`` records on ``<html>`` what rendered once the page has
loaded; the test reads those attributes from the DOM that Chromium dumps.
"""
from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from tests.test_docs import site  # noqa: F401  (the session fixture that builds the site)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on this machine "
                                "(Debian: apt-get install chromium; .ci/run installs it)")

PAGES = ["index.html", "claims/stability.vradam/index.html", "claims/adamp.lemma2.2/index.html",
         "claims/convergence.adam_bound/index.html", "notebooks/03_stability_regions/index.html",
         "notebooks/05_convergence_bound/index.html", "guide/stability/index.html"]


def rendered(page) -> dict:
    out = subprocess.run(
        [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--allow-file-access-from-files", "--virtual-time-budget=15000", "--dump-dom",
         page.as_uri()], capture_output=True, text=True, timeout=120).stdout
    head = re.search(r"<html[^>]*>", out)
    assert head, f"Chromium returned no page for {page}"
    return {k: int(v) for k, v in re.findall(r'data-([a-z-]+)="(\d+)"', head.group(0))}


@pytest.mark.parametrize("name", PAGES)
def test_page_renders_math_and_figures(site, name):  # noqa: F811
    state = rendered(site / name)
    assert "math-rendered" in state, f"the self-check did not run on {name}: {state}"
    assert state["math-errors"] == 0, state
    if state["math-source"]:
        assert state["math-rendered"] >= state["math-source"], state
    assert state["images-loaded"] == state["images-total"], state
    if name.startswith(("notebooks/", "claims/stability")):
        assert state["images-total"] >= 1, state
