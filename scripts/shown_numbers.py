"""Fill or check every number the README and the docs show about a run.

A shown number is written inside a marker that names where it was recorded::

    <!-- num: results/verify_quick.json#claims.3.measured .4g -->0.1234<!-- /num -->

``PATH`` is relative to the repository root, ``#``, then dot-separated keys (integer list
indexes allowed; ``[ID]`` picks the list element whose ``id`` is ID, e.g.
``claims[eos.gd].measured``, or the dict key ID when it holds dots, e.g. ``[momentum 0.9]``; a key may contain spaces: the format is the last word), then a
Python format spec (``.3g``, ``.1f``, ``.0%``, ``d``, ``s``).  The value between the markers is the recorded
value rendered with that spec.

    python scripts/shown_numbers.py --check   # exit 1 listing every stale or broken marker
    python scripts/shown_numbers.py --write   # re-render every marker from its recorded file

Files: ``README.md``, ``docs/**/*.md`` and ``notebooks/*.py`` (in their Markdown cells).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KEY = re.compile(r"\[[^\]]*\]|[^.\[]+")
MARKER = re.compile(r"<!-- num: (?P<spec>[^>]*?) -->(?P<value>.*?)<!-- /num -->", re.S)


@dataclass(frozen=True)
class Marker:
    file: Path
    line: int
    path: str
    keys: tuple[str, ...]
    fmt: str
    shown: str


class MarkerError(ValueError):
    pass


def documents(root: Path = ROOT) -> list[Path]:
    """The README, the docs' Markdown and the notebooks' sources (their Markdown cells)."""
    return [root / "README.md", *sorted((root / "docs").rglob("*.md")),
            *sorted((root / "notebooks").glob("*.py"))]


def parse(spec: str) -> tuple[str, tuple[str, ...], str]:
    """``"results/x.json#a.0.b .3g"`` -> ``("results/x.json", ("a", "0", "b"), ".3g")``."""
    where, _, fmt = spec.strip().rpartition(" ")
    path, sep, keys = where.partition("#")
    if not sep or not path or not keys or not fmt:
        raise MarkerError(f"malformed marker {spec!r}: expected 'PATH#key.path FORMAT'")
    return path, tuple(KEY.findall(keys)), fmt


def markers(file: Path) -> list[Marker]:
    text = file.read_text()
    out = []
    for m in MARKER.finditer(text):
        path, keys, fmt = parse(m.group("spec"))
        out.append(Marker(file, text.count("\n", 0, m.start()) + 1, path, keys, fmt, m.group("value")))
    return out


_loaded: dict[Path, object] = {}


def lookup(path: str, keys, root: Path = ROOT):
    file = root / path
    if file not in _loaded:
        if not file.exists():
            raise MarkerError(f"{path} does not exist (record it: scripts/record_results.sh)")
        _loaded[file] = json.loads(file.read_text())
    value = _loaded[file]
    for k in keys:
        try:
            if k.startswith("[") and isinstance(value, dict):  # a key that holds dots
                value = value[k[1:-1]]
            elif k.startswith("["):
                value = next(v for v in value if v.get("id") == k[1:-1])
            else:
                value = value[int(k)] if isinstance(value, list) else value[k]
        except (KeyError, IndexError, ValueError, TypeError, StopIteration, AttributeError):
            raise MarkerError(f"{path}#{''.join(keys)}: no key {k!r}") from None
    return value


def render(value, fmt: str) -> str:
    if value is None:
        return "–"
    try:
        return format(value, fmt)
    except (ValueError, TypeError) as exc:
        raise MarkerError(f"cannot format {value!r} with {fmt!r}: {exc}") from None


def check(root: Path = ROOT) -> list[str]:
    """One message per marker whose shown value differs from the recorded one (or is broken)."""
    problems = []
    for doc in documents(root):
        for m in _safe_markers(doc, problems):
            where = f"{doc.relative_to(root)}:{m.line}"
            try:
                want = render(lookup(m.path, m.keys, root), m.fmt)
            except MarkerError as exc:
                problems.append(f"{where}: {exc}")
                continue
            if m.shown != want:
                problems.append(f"{where}: shows {m.shown!r}, recorded {m.path}#"
                                f"{'.'.join(m.keys)} renders {want!r}")
    return problems


def _safe_markers(doc, problems):
    try:
        found = markers(doc)
    except MarkerError as exc:
        problems.append(f"{doc}: {exc}")
        return []
    opened = doc.read_text().count("<!-- num:")
    if opened != len(found):  # an opening tag without its closing one shows an unchecked value
        problems.append(f"{doc}: {opened - len(found)} marker(s) without '<!-- /num -->'")
    return found


def write(root: Path = ROOT) -> int:
    """Re-render every marker in place; returns how many changed."""
    changed = 0
    for doc in documents(root):
        text = doc.read_text()

        def sub(m):
            nonlocal changed
            path, keys, fmt = parse(m.group("spec"))
            value = render(lookup(path, keys, root), fmt)
            changed += value != m.group("value")
            return f"<!-- num: {m.group('spec')} -->{value}<!-- /num -->"

        new = MARKER.sub(sub, text)
        if new != text:
            doc.write_text(new)
    return changed


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="fill or check the shown numbers")
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", action="store_true")
    mode.add_argument("--write", action="store_true")
    args = ap.parse_args(argv)
    if args.write:
        try:
            print(f"{write()} shown numbers updated")
        except MarkerError as exc:
            print(f"shown_numbers: error: {exc}", file=sys.stderr)
            return 1
        return 0
    problems = check()
    for p in problems:
        print(p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
