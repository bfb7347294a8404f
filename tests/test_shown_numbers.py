"""Every number the README and the docs show about a run equals the recorded one."""
from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("shown_numbers", ROOT / "scripts" / "shown_numbers.py")
shown = importlib.util.module_from_spec(spec)
sys.modules["shown_numbers"] = shown
spec.loader.exec_module(shown)


def test_every_shown_number_is_the_recorded_one():
    problems = shown.check()
    assert not problems, "\n".join(problems[:20]) + "\n(fix: python scripts/shown_numbers.py --write)"


def test_docs_show_recorded_numbers_at_all():
    count = sum(len(shown.markers(d)) for d in shown.documents())
    assert count >= 30


def _tree(tmp_path, value_shown: str):
    (tmp_path / "docs").mkdir()
    (tmp_path / "r.json").write_text(json.dumps({"claims": [{"id": "eos.gd", "measured": 2.0871},
                                                            {"id": "x", "measured": 1.0}],
                                                 "d": {"momentum 0.9": 3.5}}))
    (tmp_path / "README.md").write_text(
        f"a <!-- num: r.json#claims[eos.gd].measured .3g -->{value_shown}<!-- /num --> b\n"
        "c <!-- num: r.json#d[momentum 0.9] .1f -->3.5<!-- /num -->\n")


def test_a_retyped_number_is_caught(tmp_path):
    _tree(tmp_path, "2.1")
    problems = shown.check(tmp_path)
    assert len(problems) == 1 and "2.09" in problems[0] and "README.md:1" in problems[0]
    assert shown.write(tmp_path) == 1
    assert shown.check(tmp_path) == []
    assert "-->2.09<!--" in (tmp_path / "README.md").read_text()


def test_a_missing_key_or_file_is_caught(tmp_path):
    _tree(tmp_path, "2.09")
    (tmp_path / "docs" / "p.md").write_text("<!-- num: r.json#claims[nope].measured .3g -->1<!-- /num -->\n"
                                            "<!-- num: missing.json#a .3g -->1<!-- /num -->\n")
    problems = shown.check(tmp_path)
    assert len(problems) == 2 and "nope" in problems[0] and "does not exist" in problems[1]


@pytest.mark.parametrize("bad", ["r.json .3g", "r.json#a", "#a .3g"])
def test_malformed_markers(bad):
    with pytest.raises(shown.MarkerError):
        shown.parse(bad)


def test_no_references_outside_the_repository():
    pattern = re.compile(r"\.\./shared|shared/reference|shared/DESIGN")
    for doc in shown.documents():
        assert not pattern.search(doc.read_text()), doc


def test_an_unclosed_marker_is_caught(tmp_path):
    _tree(tmp_path, "2.09")
    (tmp_path / "docs" / "p.md").write_text("<!-- num: r.json#claims[eos.gd].measured .3g -->2.1\n")
    problems = shown.check(tmp_path)
    assert len(problems) == 1 and "without" in problems[0]
