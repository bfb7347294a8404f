"""The documentation site builds in strict mode (no broken links, no missing pages), and a real
browser renders its math and figures (tests/test_docs_browser.py)."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

pytest.importorskip("mkdocs")
pytest.importorskip("mkdocstrings")

ROOT = Path(__file__).resolve().parents[1]


def load_build_docs():
    spec = importlib.util.spec_from_file_location("build_docs", ROOT / "scripts" / "build_docs.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("build_docs", module)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def site():
    """Build the whole site once per test run (strict: any warning fails the build).

    Under pytest-xdist every worker asks for it: a file lock lets the first one build and the
    others reuse its site (the run's id names the marker file).
    """
    import fcntl
    import os

    build_docs = load_build_docs()
    build_docs.BUILD.mkdir(exist_ok=True)
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID", f"pid{os.getpid()}")
    done = build_docs.BUILD / f".site-built-{run}"
    with open(build_docs.BUILD / ".site.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            for old in build_docs.BUILD.glob(".site-built-*"):
                old.unlink()
            build_docs.build()
            done.touch()
    return build_docs.SITE


def test_site_builds_with_every_page(site):
    from momentumlab.empirics.checks import load_claims

    assert (site / "index.html").exists()
    for claim_id in load_claims():
        page = site / "claims" / claim_id / "index.html"
        assert page.exists(), claim_id
    for nb in (ROOT / "notebooks").glob("[0-9]*.py"):
        assert (site / "notebooks" / nb.stem / "index.html").exists()
    api = (site / "api" / "optimizers" / "index.html").read_text()
    assert "VRAdam" in api and "doc-heading" in api  # rendered from the docstrings


def test_claim_page_has_statement_derivation_result_and_figure(site):
    html = (site / "claims" / "stability.vradam" / "index.html").read_text()
    for part in ("Statement", "Assumptions", "Derivation", "The check", "Latest recorded result",
                 "Figure", "arithmatex"):
        assert part in html, part
    assert (site / "claims" / "stability.vradam" / "stability.vradam.png").exists() or \
        'src="../stability.vradam.png"' in html or "stability.vradam.png" in html


def test_notebook_pages_have_outputs(site):
    for nb in (ROOT / "notebooks").glob("[0-9]*.py"):
        html = (site / "notebooks" / nb.stem / "index.html").read_text()
        assert "<img" in html, nb.stem


def test_readme_status_column_is_what_the_code_derives(site):
    """The README's claims table shows the statuses of the recorded ``verify --quick`` run; the
    site build derives every claim from the code now (claims/index.md).  They must agree, so a
    change of status in the code cannot leave the README (and its recorded run) behind."""
    import re

    build_docs = sys.modules["build_docs"]
    code = dict(re.findall(r"^\| \[`([^`]+)`\]\([^)]*\) \| .*? \| ([a-z ]+) \| [^|]* \|$",
                           (build_docs.STAGE / "claims" / "index.md").read_text(), re.M))
    shown = dict(re.findall(r"claims\[([^\]]+)\]\.symbolic s -->([^<]*)<!-- /num -->",
                            (ROOT / "README.md").read_text()))
    assert len(code) >= 30 and shown.keys() == code.keys()
    assert {k: v for k, v in shown.items() if code[k] != v} == {}
