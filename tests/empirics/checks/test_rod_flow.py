"""Checks of the rodflow claims: pass, reject every negative control, resolution < 1."""
from __future__ import annotations

import pytest

from momentumlab.empirics.checks import load_claims
from momentumlab.theory.claims import REGISTRY, resolution, run_controls

load_claims()


@pytest.mark.parametrize("cid", ["rodflow.identities", "rodflow.quartic", "rodflow.threshold",
                                 "rodflow.self_stabilization"])
def test_check_passes_and_rejects_controls(cid):
    claim = REGISTRY[cid]
    r = claim.check(quick=True)
    assert r.passed, r.details
    outcomes = run_controls(claim.all_controls, r)
    assert outcomes and all(o.rejected for o in outcomes)
    assert resolution(r) is not None and resolution(r) < 1


def test_quartic_sees_the_period_doubling():
    d = REGISTRY["rodflow.quartic"].check(quick=True).details["past_period_doubling"]
    assert d["gd_leaves_period_2"] and d["rod_at_rest"]


def test_verdict_does_not_flip_with_the_seed():
    a = REGISTRY["rodflow.quartic"].check(seed=0, quick=True)
    b = REGISTRY["rodflow.quartic"].check(seed=3, quick=True)
    assert a.passed == b.passed


# ------------------------------------------------------------------ network claims (tiny sizes)
import numpy as np  # noqa: E402
import torch  # noqa: E402

from momentumlab.empirics.checks import rod_flow as rf  # noqa: E402


def _tiny(monkeypatch):
    monkeypatch.setattr(rf, "_net_sizes", lambda quick: dict(
        n=16, width=2, seeds=(0, 1), steps={"mlp": 12, "cnn": 6}, warm={"mlp": 2, "cnn": 0}))
    monkeypatch.setattr(rf, "_opt_sizes", lambda quick: dict(n=16, width=2, seeds=(0, 1), steps=6))

    def first_seeds(kind, lr, cfg, seed, device):  # no EoS in 12 steps: the screen is tested apart
        from momentumlab.empirics.flows import network
        seeds = [seed + s for s in cfg["seeds"]]
        f, w0 = network(kind, n=cfg["n"], width=cfg["width"], seeds=seeds)
        return f, rf._warm_start(f, w0, lr, cfg["warm"][kind], device), seeds, {}

    monkeypatch.setattr(rf, "_eos_initialisations", first_seeds)

    def first_runs(make, optimizer, lr, n, T, seed, min_steps, warm=0, device="cpu"):
        seeds = list(range(seed, seed + n))
        f, w0 = make(tuple(seeds))
        return f, w0, seeds, {}

    monkeypatch.setattr(rf, "_eos_runs", first_runs)


def test_network_runs_skip_an_initialisation_whose_gd_diverges():
    # the CNN's initialisation 5 diverges in the catapult at lr 0.4 (GD itself: loss ~1e297);
    # the screen, on the discrete process alone, skips it and takes the next ones that reach
    # the EoS with room left in the race
    cfg = rf._net_sizes(True)
    f, w0, seeds, skipped = rf._eos_initialisations("cnn", rf.NETWORK_LR["cnn"], cfg, 5, "cpu")
    assert skipped.get(5) == "diverges"
    assert len(seeds) == len(cfg["seeds"]) and 5 not in seeds and seeds == sorted(seeds)
    assert w0.shape[0] == len(seeds) and bool(torch.isfinite(w0).all())


@pytest.mark.parametrize("cid", ["rodflow.networks", "rodflow.optimizers"])
def test_network_claims_run_and_reject_their_controls(monkeypatch, cid):
    _tiny(monkeypatch)
    claim = REGISTRY[cid]
    r = claim.check(quick=True)
    rows = r.details["rows"]
    assert rows and all(len(row["eos"]) == 2 for row in rows)  # evidence per run
    assert r.details["paper_claim"].split(":")[0]  # a verdict is always stated
    outcomes = run_controls(claim.all_controls, r)
    names = [o.name for o in outcomes]
    assert "stable flow's iterates" in names and "prediction x 2" in names
    assert all(o.rejected for o in outcomes)
    # the stable flow as the prediction is judged by its own error: ratio exactly 1, not < 1;
    # every run is measured (stiff stable flows are integrated implicitly, none stops)
    stable = next(o for o in outcomes if o.name == "stable flow's iterates")
    assert stable.error == pytest.approx(1.0, rel=1e-12)
    if cid == "rodflow.optimizers":
        assert r.details["complete"] and not r.details["not_measured_for"]
        assert all(st == "ran" for row in rows for st in row["stable_status"])
    if cid == "rodflow.networks":
        # rejected by the ratio itself, not only by the EoS gate: w -> 2 w misses by ~||w||
        doubled = next(o for o in outcomes if o.name == "prediction x 2")
        assert doubled.error > 10


def test_ratio_compare_accepts_a_better_prediction_and_rejects_a_worse_one():
    rng = np.random.default_rng(0)
    meas = {"a": rng.standard_normal((10, 2, 3))}
    stab = {"a": meas["a"] + 0.1}
    compare = rf._ratio_compare(meas, stab, {"a": [0, 5]})
    assert compare({"a": meas["a"] + 0.05})[1]          # half the stable flow's error
    err, ok = compare({"a": meas["a"] + 0.2})            # twice it
    assert not ok and err == pytest.approx(2.0)
    # a run whose stable flow stopped (NaN) in the first half of its window is left out
    stab["a"][3:, 1] = np.nan
    assert compare({"a": meas["a"] + 0.2 * np.array([0.25, 9.0])[None, :, None]})[1]


def test_eos_evidence_reads_the_crossing_from_below_and_the_onset():
    class _R:
        threshold = 2.0
        sharpness = np.full((21, 2), np.nan)
        amplitude = {"discrete": np.zeros((21, 2))}

    _R.sharpness[::5, 0] = [1.5, 1.9, 2.1, 2.0, 1.98]   # crosses at t = 10, hovers
    _R.sharpness[::5, 1] = [1.0, 1.1, 1.2, 1.3, 1.4]    # never reaches 2
    _R.amplitude["discrete"][:, 0] = 1e-4
    _R.amplitude["discrete"][14:, 0] = 2e-3             # 20x the amplitude at the crossing
    ev = rf._eos_evidence(_R)
    assert ev[0]["crossing"] == 10 and ev[0]["from_below"] and ev[0]["onset"] == 14
    assert ev[0]["reached"] and ev[0]["hover"] == 1.0
    assert ev[1]["crossing"] == -1 and not ev[1]["reached"]
    # a crossing from below that hovers without an oscillation onset is not the EoS
    _R.amplitude["discrete"][14:, 0] = 5e-4             # 5x: below both onset rules
    ev = rf._eos_evidence(_R)
    assert ev[0]["onset"] == -1 and not ev[0]["reached"]


# ------------------------------------------------------------------ rodflow.toys
def test_toys_rule_is_a_sign_test_over_seeds():
    from momentumlab.empirics.checks.rod_flow import _better_ci, _toy_verdict

    # unanimous over 6 seeds decides either way; one dissenting seed leaves it undecided
    assert _toy_verdict(_better_ci([0.3] * 6)[1]) == "holds"
    assert _toy_verdict(_better_ci([1.04, 1.5, 1.2, 1.1, 1.3, 1.05])[1]) == "refuted"
    assert _toy_verdict(_better_ci([0.9, 1.5, 1.2, 1.1, 1.3, 1.05])[1]) == "undecided"
    # a ratio of exactly 1 (the central flow against itself) is not "better"
    assert _toy_verdict(_better_ci([1.0] * 6)[1]) == "refuted"
    k, (lo, hi) = _better_ci([0.5, 2.0, 0.5, 2.0])
    assert k == 2 and lo < 0.5 < hi


@pytest.fixture(scope="module")
def small_toys():
    """The toys claim at a test size: two toys, 3 seeds, 170 steps (codim2 reaches two critical
    eigenvalues; the recorded run uses three toys, 6 seeds and 400 steps)."""
    import momentumlab.empirics.checks.rod_flow as rf

    old = rf.TOYS_QUICK_STEPS, rf.TOYS_QUICK_SEEDS, rf.TOYS
    rf.TOYS_QUICK_STEPS, rf.TOYS_QUICK_SEEDS = 170, 3
    rf.TOYS = {k: v for k, v in old[2].items() if k in ("minimal", "codim2")}
    try:
        yield REGISTRY["rodflow.toys"].check(quick=True)
    finally:
        rf.TOYS_QUICK_STEPS, rf.TOYS_QUICK_SEEDS, rf.TOYS = old


def test_toys_claim_reports_per_toy_and_rejects_controls(small_toys):
    r = small_toys
    rows = {row["toy"]: row for row in r.details["rows"]}
    assert set(rows) == {"minimal", "codim2"}
    for row in rows.values():
        assert row["verdict"] in ("holds", "refuted", "undecided")
        assert len(row["rod_over_central"]) == 3
        assert row["toy"] in r.details["paper_claim"]
    assert r.passed == all(row["verdict"] == "holds" for row in rows.values())
    # codim2 has two critical eigenvalues: the SDCP ran and the one-eigenvalue comparator too
    assert rows["codim2"]["max_critical"] == 2
    assert "central_one_eigenvalue" in rows["codim2"]["mean_error_after_onset"]
    assert rows["minimal"]["max_critical"] == 1
    assert set(r.details["tracking_sanity"]["rod_over_stable_max"]) == set(rows)
    outcomes = run_controls(REGISTRY["rodflow.toys"].all_controls, r)
    names = {o.name for o in outcomes}
    assert "central flow's own iterates (ratio 1: not better)" in names
    assert all(o.rejected for o in outcomes)
    # re-judging the rod's own prediction reproduces the verdict
    assert r.compare(r.prediction) == (r.error, r.passed)
