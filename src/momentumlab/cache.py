"""On-disk cache of what the sympy derivations produce, keyed by the package version and source.

Deriving every claim with sympy takes seconds per claim; the result depends only on the code.
The cache key is the package version and a SHA-256 of every source file of
:mod:`momentumlab.theory` and :mod:`momentumlab.empirics.checks` (which define and register
the claims), so any edit to them -- or a new version -- starts a fresh cache.  Stored per key:

* ``catalogue.json``: id, title and source of every claim in registry order (``momentumlab
  list`` answers from it without importing sympy or torch);
* ``explain/<id>.txt``: the teaching view of a claim (``momentumlab explain``);
* ``derivations/<id>.pickle``: the :class:`~momentumlab.theory.claims.Derivation` itself,
  put back into the claim object by :func:`prime` (``verify`` and the docs build).

Location: ``$MOMENTUMLAB_CACHE``, else ``$XDG_CACHE_HOME/momentumlab``, else
``~/.cache/momentumlab``.  ``MOMENTUMLAB_CACHE=off`` turns it off.  A file that cannot be
read or unpickled is treated as absent; writes are atomic (write, then rename).
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import pickle
import tempfile
from pathlib import Path

__all__ = ["cache_dir", "source_key", "load_catalogue", "save_catalogue", "load_explain",
           "save_explain", "load_derivation", "save_derivation", "prime"]

_PACKAGES = ("momentumlab.theory", "momentumlab.empirics.checks")


def _package_dir(name: str) -> Path:
    import importlib.util

    spec = importlib.util.find_spec(name)
    return Path(next(iter(spec.submodule_search_locations)))


@functools.lru_cache(maxsize=1)
def source_key() -> str:
    """``<version>-<sha256 of the claim sources, 16 hex digits>``."""
    from momentumlab import __version__

    digest = hashlib.sha256()
    for pkg in _PACKAGES:
        for path in sorted(_package_dir(pkg).glob("*.py")):
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return f"{__version__}-{digest.hexdigest()[:16]}"


def cache_dir() -> Path | None:
    """The folder of the current key (None when the cache is off)."""
    root = os.environ.get("MOMENTUMLAB_CACHE")
    if root == "off":
        return None
    if not root:
        base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        root = Path(base) / "momentumlab"
    return Path(root) / source_key()


def _write(path: Path, data: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except OSError:  # a read-only home: the cache is an optimisation, never an error
        pass


def _read(path: Path | None) -> bytes | None:
    try:
        return path.read_bytes() if path is not None else None
    except OSError:
        return None


def _file(*parts: str) -> Path | None:
    root = cache_dir()
    return None if root is None else root.joinpath(*parts)


def load_catalogue() -> list[dict] | None:
    """``[{"id", "title", "source"}, ...]`` in registry order, or None when not cached."""
    data = _read(_file("catalogue.json"))
    try:
        return None if data is None else json.loads(data)
    except ValueError:
        return None


def save_catalogue(claims) -> None:
    path = _file("catalogue.json")
    if path is not None:
        rows = [{"id": c.id, "title": c.title, "source": c.source} for c in claims]
        _write(path, json.dumps(rows, indent=0).encode())


def load_explain(claim_id: str) -> str | None:
    data = _read(_file("explain", f"{claim_id}.txt"))
    return None if data is None else data.decode()


def save_explain(claim_id: str, text: str) -> None:
    path = _file("explain", f"{claim_id}.txt")
    if path is not None:
        _write(path, text.encode())


def load_derivation(claim_id: str):
    """The cached derivation of ``claim_id``, or None.

    Unpickled with sympy's evaluation off: pickle rebuilds a sympy object by calling its class
    on the stored arguments, which would *evaluate* a step's expression that was built
    unevaluated for display (``Ge(x, 0, evaluate=False)`` with ``x`` known nonnegative came back
    as ``True``, ``And`` of two such as ``True`` with no arguments).  The stored arguments are
    those of the final object, so rebuilding them unevaluated gives the same expression.
    """
    data = _read(_file("derivations", f"{claim_id}.pickle"))
    if data is None:
        return None
    import sympy

    try:
        with sympy.evaluate(False):
            return pickle.loads(data)
    except Exception:  # noqa: BLE001 - an unreadable entry is a miss
        return None


def save_derivation(claim_id: str, derivation) -> None:
    path = _file("derivations", f"{claim_id}.pickle")
    if path is None:
        return
    try:
        data = pickle.dumps(derivation)
    except Exception:  # noqa: BLE001 - some sympy objects do not pickle: not cached
        return
    _write(path, data)


def prime(claims) -> None:
    """Give each claim its cached derivation, and cache the ones not cached yet.

    Sets the claim's memoised derivation (``Claim.derive`` computes once per process), so
    later ``derive()`` calls return the cached object.
    """
    for claim in claims:
        if "_derivation" in claim.__dict__:  # derived in this process: make sure it is stored
            path = _file("derivations", f"{claim.id}.pickle")
            if path is not None and not path.exists():
                save_derivation(claim.id, claim.__dict__["_derivation"])
            continue
        cached = load_derivation(claim.id)
        if cached is not None:
            claim.__dict__["_derivation"] = cached
            continue
        try:
            derivation = claim.derive()
        except Exception:  # noqa: BLE001 - verify reports it on the claim's row
            continue
        save_derivation(claim.id, derivation)
