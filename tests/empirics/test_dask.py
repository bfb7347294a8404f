"""Sweeps over a ``dask.distributed.LocalCluster`` equal the in-process run bit for bit.

Why bit-identity is a legitimate assertion here: both runs submit the *same* chunk function
on the *same* row chunks (``chunk_cells`` fixed, so the chunk boundaries agree) with one
intra-op torch thread each (``threads=1``); inside a chunk every cell evolves by elementwise
float64 operations (``+ - * /``, ``numpy.sqrt``: each correctly rounded, no reduction across
cells, so neither SIMD width nor memory alignment can change a result); the chunks are joined
in submission order.  The reduction order is therefore fixed by us, not by the scheduler, and
any difference would be a real bug (a chunk lost, reordered or run with other settings).

Measured on the 2-core test machine: ``processes=False`` (worker threads in this process)
starts in ~0.2 s; ``processes=True`` spawns two worker processes that import torch (~25 s
under load), so that case -- which also checks that a worker loads a *user's* rule file from
its path -- is marked slow.
"""
import numpy as np
import pytest

distributed = pytest.importorskip("distributed")

from momentumlab.empirics.analyze_cli import region  # noqa: E402
from momentumlab.empirics.executors import InlineExecutor, executor_from_spec  # noqa: E402
from momentumlab.empirics.sweeps import sweep  # noqa: E402
from momentumlab.theory.analyze import analyze  # noqa: E402

X = np.linspace(0, 5, 33)[1:]
Y = np.linspace(0, 0.99, 24)


def _cluster(processes: bool):
    return distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=processes,
                                    dashboard_address=None)


def _same(a, b):
    return (np.array_equal(a.extra["amp_last_quarter"], b.extra["amp_last_quarter"])
            and np.array_equal(a.outcome, b.outcome))


def test_sweep_over_local_cluster_is_bit_identical_to_inline():
    ref = sweep("heavy_ball", X, "beta", Y, steps=400, chunk_cells=128, executor=InlineExecutor(),
                threads=1)
    with _cluster(processes=False) as cluster:
        with executor_from_spec(f"dask:{cluster.scheduler_address}") as (ex, threads):
            got = sweep("heavy_ball", X, "beta", Y, steps=400, chunk_cells=128, executor=ex,
                        threads=threads)
    assert _same(got, ref)
    assert 0.2 < (ref.outcome == 0).mean() < 0.8  # both outcomes present: a real comparison


def test_comparison_can_fail():
    """Negative control: another step count changes the amplitudes, and _same sees it."""
    a = sweep("heavy_ball", X, "beta", Y, steps=400, chunk_cells=128, executor=InlineExecutor())
    b = sweep("heavy_ball", X, "beta", Y, steps=404, chunk_cells=128, executor=InlineExecutor())
    assert not _same(a, b)


@pytest.mark.slow
def test_user_rule_region_over_worker_processes(tmp_path):
    spec = str(tmp_path / "mine.py") + ":rule"
    (tmp_path / "mine.py").write_text(
        "from momentumlab.theory.rules import Rule\n"
        "def init(w, ops):\n    return {'v': ops.zeros_like(w)}\n"
        "def step(w, g, s, h, ops):\n    v = h['beta'] * s['v'] + g\n"
        "    return w - h['lr'] * v, {'v': v}\n"
        "rule = Rule('mine', init, step, {'lr': 0.1, 'beta': 0.9})\n")
    an = analyze(spec)
    ref = region(an, spec, "beta", grid=24, steps=400, executor=InlineExecutor(), threads=1,
                 chunk_cells=96)
    with _cluster(processes=True) as cluster:
        with executor_from_spec(f"dask:{cluster.scheduler_address}") as (ex, threads):
            got = region(an, spec, "beta", grid=24, steps=400, executor=ex, threads=threads,
                         chunk_cells=96)
    assert _same(got, ref) and got.agreement["fraction"] == 1.0


def test_many_seed_convergence_chunks_over_dask_equal_inline():
    """verify --executor: each horizon of a convergence curve is one chunk (seeded generator)."""
    from momentumlab.empirics.checks.convergence import _horizon
    from momentumlab.empirics.sweeps import run_chunks

    chunks = [dict(name="pseudo_huber_toy", device="cpu", N=n, alpha0=1.0, beta1=0.9, eps=1e-8,
                   seed=7 + n, seeds=16, draws=4) for n in (50, 80)]
    ref = run_chunks(_horizon, chunks, InlineExecutor(), 1)
    with _cluster(processes=False) as cluster:
        with executor_from_spec(f"dask:{cluster.scheduler_address}") as (ex, threads):
            got = run_chunks(_horizon, chunks, ex, threads)
    assert all(np.array_equal(a, b) for a, b in zip(got, ref))
    assert not np.array_equal(ref[0], ref[1][:16])  # the two horizons differ: order is checked


@pytest.mark.parametrize("argv", [["explore", "stability", "--optimizer", "heavy_ball",
                                   "--executor", "mpi"],
                                  ["verify", "--only", "stability.gd", "--executor", "dask:"]])
def test_executor_flag_is_validated_before_work(argv, capsys):
    from momentumlab.empirics.cli import main

    assert main(argv) == 2
    assert "--executor" in capsys.readouterr().err
