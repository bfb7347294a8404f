"""Batched sweeps: agreement with the Schur region, batch = loop, executors, the new rules vs torch."""
import concurrent.futures as cf
import math

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from momentumlab.empirics.backend import TORCH
from momentumlab.empirics.sweeps import (KAPPA, InlineExecutor, _sqrt, bench, classify, growth_rate,
                             loop_simulate, simulate, sweep)
from momentumlab.theory.rules import get_rule
from momentumlab.theory.stability import MODELS, analyse, get_model

LINEAR = ("gd", "heavy_ball", "ema_momentum", "nesterov", "nadam", "rmsprop", "adam", "tam")


def _grid(name, n=40):
    model = get_model(name)
    x = np.linspace(*model.x_range, n + 1)[1:]
    y = None if model.y_default is None else np.linspace(0.0, 0.99, n)
    return x, model.y_default, y


@pytest.mark.parametrize("name", LINEAR)
def test_linear_rules_agree_with_the_schur_region(name):
    """Frozen preconditioner / fixed damping: the map is linear; target >= 99.5% outside the band."""
    x, y_name, y = _grid(name)
    sw = sweep(name, x, y_name, y, steps=1000)
    a = sw.agreement
    assert a["cells_compared"] > 0.8 * sw.outcome.size
    assert a["fraction"] >= 0.995, a


def test_vradam_gate_keeps_the_motion_bounded_between_the_thresholds():
    sw = sweep("vradam", np.linspace(5, 500, 100), "beta", np.array([0.9]), steps=1000)
    an = analyse("vradam")
    B, cap = an.threshold_value({"beta": 0.9}), an.threshold_value({"beta": 0.9, "G": 10.0})
    out = sw.outcome[0]
    assert np.all(out[sw.x < 0.97 * B] == 0)
    assert np.all(out[(sw.x > 1.03 * B) & (sw.x < 0.97 * cap)] == 1)
    assert np.all(out[sw.x > 1.03 * cap] == 2)


def test_adam_running_second_moment_never_diverges():
    sw = sweep("adam", np.geomspace(1, 1e3, 40), "beta", np.array([0.0, 0.9]), steps=600,
               mode="running")
    assert not np.any(sw.outcome == 2)


@pytest.mark.parametrize("name, mode", [(n, "frozen") for n in MODELS]
                         + [("adam", "running"), ("tam", "running"), ("vradam", "running")])
def test_batch_equals_per_cell_loop(name, mode):
    x, y_name, y = _grid(name, 6)
    sw = sweep(name, x, y_name, y, steps=300, mode=mode)
    for j in range(sw.outcome.shape[0]):
        for i in (0, 2, 5):
            amp = loop_simulate(name, x[i], y_name, None if y is None else y[j], steps=300,
                                mode=mode)
            res = {"amp": np.full((4, 1, 1), amp), "dead": np.array([[not math.isfinite(amp)]]),
                   "steps": 300}
            assert classify(res)[0, 0] == sw.outcome[j, i], (j, i, amp)


def test_process_pool_executor_matches_inline():
    x, y = np.linspace(0.2, 5, 8), np.linspace(0, 0.95, 8)
    inline = sweep("heavy_ball", x, "beta", y, steps=200, chunk_cells=16)
    with cf.ProcessPoolExecutor(max_workers=2) as pool:
        pooled = sweep("heavy_ball", x, "beta", y, steps=200, chunk_cells=16, executor=pool,
                       threads=1)
    assert np.array_equal(inline.outcome, pooled.outcome)
    assert np.array_equal(inline.growth, pooled.growth)


def test_inline_executor_delivers_exceptions():
    fut = InlineExecutor().submit(lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        fut.result()


def test_classification_levels():
    amp = np.array([1.0, 1.0, 1.0, 1e-7])[:, None, None] * np.ones((4, 1, 3))
    amp[3, 0, 1], amp[3, 0, 2] = 0.5, 1e7
    res = {"amp": amp, "dead": np.zeros((1, 3), bool), "steps": 400}
    assert classify(res).tolist() == [[0, 1, 2]]
    res["dead"][0, 1] = True
    assert classify(res).tolist() == [[0, 2, 2]]
    assert growth_rate({"amp": np.array([1, 1, 1, np.e]).reshape(4, 1, 1) * 1.0,
                        "dead": np.zeros((1, 1), bool), "steps": 2})[0, 0] == pytest.approx(1.0)


def test_band_is_where_the_run_cannot_decide():
    sw = sweep("gd", np.linspace(0.05, 3, 60), steps=100)
    rho = np.abs(1 - sw.x)
    with np.errstate(divide="ignore"):
        expected = 100 * np.abs(np.log(rho)) < KAPPA
    assert np.array_equal(sw.in_band[0], expected)


@settings(max_examples=25)  # each example simulates a batch of 32 random cells, 1000 steps
@given(st.sampled_from(LINEAR), st.lists(st.tuples(st.floats(0.0, 0.97), st.floats(0.02, 3.0)),
                                         min_size=32, max_size=32))
def test_property_schur_stable_iff_batched_iterates_decay(name, draws):
    """Cells drawn outside the band: "the Schur conditions say stable" <=> "the iterates decay"."""
    an = analyse(name)
    betas = np.array([b for b, _ in draws])
    if "beta" in get_model(name).defaults():
        x = np.array([f * an.threshold_value({"beta": b}) for b, f in draws])[:, None]
        p = {"beta": betas[:, None]}
        res = simulate(name, x, "beta", betas, steps=1000)
    else:
        x = np.array([f * an.threshold_value({}) for _, f in draws])[None, :]
        p = {}
        res = simulate(name, x, steps=1000)
    rho = an.spectral_radius(x, p)
    with np.errstate(divide="ignore"):
        outside = ~(1000 * np.abs(np.log(rho)) < KAPPA)
    assume(outside.any())
    assert np.array_equal(an.stable(x, p)[outside], (classify(res) == 0)[outside])


def test_fast_sqrt_is_the_correctly_rounded_one():
    x = torch.rand(2000, dtype=torch.float64) * 10.0 ** torch.randint(-200, 200, (2000,))
    assert torch.equal(_sqrt(x), torch.tensor([math.sqrt(v) for v in x.tolist()],
                                               dtype=torch.float64))


@pytest.mark.parametrize("name, cls, kw", [
    ("rmsprop", torch.optim.RMSprop, dict(lr=0.01, momentum=0.5, weight_decay=0.1)),
    ("rmsprop", torch.optim.RMSprop, dict(lr=0.01)),
    ("nadam", torch.optim.NAdam, dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.1,
                                      momentum_decay=0.01)),
    ("nadam", torch.optim.NAdam, dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)),
])
def test_new_rules_match_torch(name, cls, kw):
    """float64; NAdam's tolerance is 1e-8 because torch keeps ``mu_product`` in float32."""
    torch.manual_seed(0)
    w0 = torch.randn(5, 3, dtype=torch.float64)
    p = torch.nn.Parameter(w0.clone())
    opt = cls([p], **kw)
    rule = get_rule(name)
    h, w = rule.hyper(**kw), w0.clone()
    st_ = rule.init(w, TORCH)
    for _ in range(20):
        p.grad = torch.sin(3 * p.detach()) + p.detach() ** 2
        opt.step()
        w, st_ = rule(w, torch.sin(3 * w) + w**2, st_, h, TORCH)
    assert torch.allclose(w, p.detach(), rtol=0, atol=1e-8 if name == "nadam" else 1e-13)
    # the state too: the step count torch keeps (the rule's bookkeeping must match it)
    assert float(st_["step"]) == float(opt.state[p]["step"]) == 20


def test_ema_momentum_rule_is_the_ema():
    rule = get_rule("ema_momentum")
    h = rule.hyper(lr=0.5, momentum=0.8)
    w, st_ = 1.0, {"momentum_buffer": 0.0}
    w1, st1 = rule(w, 2.0, st_, h, None)
    assert st1["momentum_buffer"] == pytest.approx(0.2 * 2.0)
    assert w1 == pytest.approx(1.0 - 0.5 * 0.4)


def test_bench_reports_speedup_small():
    row = bench("heavy_ball", grid=32, steps=50, loop_cells=16, repeats=1)
    assert row["speedup"] > 1 and row["loop_and_batch_same_outcome"] == 1.0
