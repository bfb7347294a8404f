"""Argument types and checks shared by every ``momentumlab`` subcommand.

Every numeric and path argument is checked when the command line is parsed, before any work
starts: a bad value is one line on stderr naming the argument and its allowed range, exit
status 2 (:class:`Parser`).  The types here are ``argparse`` ``type=`` callables; they raise
:class:`argparse.ArgumentTypeError`, which :class:`Parser` prints as
``momentumlab COMMAND: error: argument --steps: must be an integer >= 1, got '-5'``.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

__all__ = ["Parser", "UsageError", "integer", "real", "output_path", "check_output_paths",
           "OUTPUT_FLAGS", "EXIT_OK", "EXIT_FAIL", "EXIT_USAGE", "EXIT_INTERRUPTED"]

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

#: the argument names (dests) that are files a command writes
OUTPUT_FLAGS = ("json", "png", "markdown")


class UsageError(Exception):
    """Bad usage found after parsing: printed on one line, exit status 2."""


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line on stderr (no usage block), exit 2.

    Sub-parsers made by ``add_subparsers`` are of the same class, so every subcommand
    answers a mistake the same way.
    """

    def error(self, message: str):  # noqa: D401 - argparse's hook
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        self.exit(EXIT_USAGE)


def _interval(lo, hi, lo_open, hi_open) -> str:
    left = "(" if lo_open else "["
    right = ")" if hi_open else "]"
    lo_s = "-inf" if lo is None else f"{lo:g}"
    hi_s = "inf" if hi is None else f"{hi:g}"
    return f"{left}{lo_s}, {hi_s}{right}"


def _check(value, lo, hi, lo_open, hi_open) -> bool:
    if lo is not None and (value < lo or (lo_open and value == lo)):
        return False
    if hi is not None and (value > hi or (hi_open and value == hi)):
        return False
    return True


def integer(lo: int | None = None, hi: int | None = None):
    """An integer in ``[lo, hi]`` (either end may be None)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or not _check(value, lo, hi, False, False):
            if lo is not None and hi is None:
                need = f"an integer >= {lo}"
            elif lo is None and hi is not None:
                need = f"an integer <= {hi}"
            elif lo is None:
                need = "an integer"
            else:
                need = f"an integer in [{lo}, {hi}]"
            raise argparse.ArgumentTypeError(f"must be {need}, got {text!r}")
        return value

    parse.__name__ = "integer"
    return parse


def real(lo: float | None = None, hi: float | None = None, lo_open: bool = False,
         hi_open: bool = False):
    """A finite float in the interval from ``lo`` to ``hi`` (open ends as asked)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or not _check(value, lo, hi, lo_open, hi_open):
            raise argparse.ArgumentTypeError(
                f"must be a finite number in {_interval(lo, hi, lo_open, hi_open)}, got {text!r}")
        return value

    parse.__name__ = "number"
    return parse


def output_path(text: str) -> Path:
    """A file to write: its folder must exist and the path must not be a folder."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a folder, not a file")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise argparse.ArgumentTypeError(f"folder {str(parent)!r} does not exist "
                                         "(create it first; nothing was run)")
    return path


def check_output_paths(args) -> None:
    """Check every output path of a parsed command (``--json``, ``--png``, ``--markdown``).

    Run by ``momentumlab`` before any subcommand starts, so that a typo in a folder name
    never costs a whole computation.  Raises :class:`UsageError`.
    """
    for dest in OUTPUT_FLAGS:
        value = getattr(args, dest, None)
        if value is None:
            continue
        try:
            output_path(str(value))
        except argparse.ArgumentTypeError as exc:
            raise UsageError(f"argument --{dest}: {exc}") from None
