"""Where chunked work runs: ``--executor local|threads|processes|dask:ADDRESS``.

Every batched experiment that can outgrow one machine (stability sweeps of ``explore`` and
``analyze``, the many-seed convergence runs) cuts its work into chunks -- a top-level,
picklable function and its arguments, each returning a small result (a few arrays) -- and
submits them to a :class:`concurrent.futures.Executor`:

* ``local``: :class:`InlineExecutor`, each chunk runs at submission, in this process;
* ``threads``: a ``ThreadPoolExecutor`` with one worker per core (torch releases the GIL);
* ``processes``: a ``ProcessPoolExecutor`` with one worker per core;
* ``dask:ADDRESS``: the ``concurrent.futures`` interface of a ``dask.distributed.Client``
  connected to the scheduler at ``ADDRESS`` (``tcp://host:8786``; ``Client.get_executor``).
  Dask is the optional extra ``momentumlab[dask]``.

Pools other than ``local`` run each chunk with one intra-op torch thread (``threads=1`` of
the chunk functions) so that workers do not oversubscribe the cores.  A result does not
depend on where its chunk ran: the chunks and their arithmetic are the same.
"""
from __future__ import annotations

import concurrent.futures as cf
import contextlib
import os
from typing import Iterator

__all__ = ["InlineExecutor", "EXECUTORS", "EXECUTOR_HELP", "check_executor", "executor_from_spec",
           "use_executor", "current_executor"]

EXECUTORS = ("local", "threads", "processes", "dask:ADDRESS")
EXECUTOR_HELP = ("where the chunks run: local (in-process, one by one), threads, processes, or "
                 "dask:ADDRESS (a dask.distributed scheduler, e.g. dask:tcp://127.0.0.1:8786; "
                 "pip install 'momentumlab[dask]')")


class InlineExecutor(cf.Executor):
    """A ``concurrent.futures.Executor`` that runs each task at submission, in-process."""

    def submit(self, fn, /, *args, **kwargs):
        fut = cf.Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - delivered through the future
            fut.set_exception(exc)
        return fut


def executor_arg(spec: str) -> str:
    """``argparse`` type for ``--executor``: :func:`check_executor` at parse time (exit 2)."""
    import argparse

    try:
        return check_executor(spec)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).replace("--executor ", "")) from None


def check_executor(spec: str) -> str:
    """Validate ``spec`` before any work; ``ValueError`` with a one-line reason."""
    if spec in ("local", "threads", "processes"):
        return spec
    if spec.startswith("dask:"):
        if not spec[5:]:
            raise ValueError("--executor dask:ADDRESS needs the scheduler address, e.g. "
                             "dask:tcp://127.0.0.1:8786")
        try:
            import distributed  # noqa: F401
        except ImportError:
            raise ValueError("--executor dask:... needs dask.distributed: pip install "
                             "'momentumlab[dask]'") from None
        return spec
    raise ValueError(f"--executor must be one of {', '.join(EXECUTORS)}, got {spec!r}")


@contextlib.contextmanager
def executor_from_spec(spec: str) -> Iterator[tuple[cf.Executor, int | None]]:
    """``(executor, threads)`` for ``spec``: ``threads`` is the intra-op thread count each chunk
    sets (``None``: leave it).  The pool is shut down (the Dask client closed) on exit."""
    check_executor(spec)
    cores = os.cpu_count() or 1
    if spec == "local":
        yield InlineExecutor(), None
    elif spec == "threads":
        with cf.ThreadPoolExecutor(cores) as pool:
            yield pool, 1
    elif spec == "processes":
        with cf.ProcessPoolExecutor(cores) as pool:
            yield pool, 1
    else:
        from distributed import Client

        with Client(spec[5:], timeout="20s") as client:
            yield client.get_executor(), 1


_CURRENT: list = []


@contextlib.contextmanager
def use_executor(spec: str | None):
    """Inside the block, :func:`current_executor` is ``spec``'s ``(executor, threads)``: how
    ``verify --executor`` reaches the many-seed claims without changing their signatures.
    ``None`` changes nothing."""
    if spec is None:
        yield current_executor()
        return
    with executor_from_spec(spec) as pair:
        _CURRENT.append(pair)
        try:
            yield pair
        finally:
            _CURRENT.pop()


def current_executor() -> tuple:
    """``(executor, threads)`` set by :func:`use_executor`, else ``(InlineExecutor(), None)``."""
    return _CURRENT[-1] if _CURRENT else (InlineExecutor(), None)
