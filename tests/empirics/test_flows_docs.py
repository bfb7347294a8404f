"""The numbers in docs/guide/rod-flow.md come from results/rodflow.json (num markers)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "guide" / "rod-flow.md"
MARK = re.compile(r"<!-- num: (?P<path>[^#]+)#(?P<keys>\S+) (?P<fmt>\S+) -->(?P<val>.*?)<!-- /num -->")


def _lookup(data, keys):
    for k in keys.split("."):
        data = data[int(k)] if isinstance(data, list) else data[k]
    return data


def test_every_number_matches_the_recorded_json():
    text = DOC.read_text()
    marks = list(MARK.finditer(text))
    assert len(marks) >= 10
    for m in marks:
        data = json.loads((ROOT / m["path"]).read_text())
        value = _lookup(data, m["keys"])
        assert format(value, m["fmt"]) == m["val"], m.group(0)


def test_no_marker_is_malformed():
    text = DOC.read_text()
    assert text.count("<!-- num:") == len(MARK.findall(text))
