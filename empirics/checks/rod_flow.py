"""Experiments for the rod-flow claims (``theory.rod_flow``).

* ``rodflow.identities``: forward Euler (dt = 1) of the rod ODE, built from each optimizer's
  rule, against the rule's own iterates (frozen second moment), float64; tolerance 1e-12
  relative (round-off of ~20 steps of O(1) arithmetic is ~1e-15).
* ``rodflow.threshold``: the rod ODE on ``f = w^2/2`` (``lambda = 1``, ``sqrt(nu) = 1``) is
  integrated (RK4) for a geometric grid of ``eta*lambda``; the first grid point where ``|d|``
  grows is bracketed and refined -- located by simulation, never read off the formula.
  Tolerance 1e-2 relative (bracket width < 2e-3 after the refinements).
* ``rodflow.quartic``: :func:`empirics.flows.race` (GD and rod) on ``w^2/2 - w^4/4`` at
  ``eta S`` = 2.5, 2.9 (rod |d| at rest and GD's 2-cycle amplitude against ``sqrt(1 - 2/eta)``,
  tolerance 1e-6) and 3.3 > 1 + sqrt 5 (GD leaves period 2; the rod rests).
* ``rodflow.self_stabilization``: the rod on ``1/2 y x^2 - a y`` loops around ``y = 2/eta``; the
  time average of ``d_x^2`` over whole loops against ``sigma^2 = 2a`` (tolerance 2e-2: the loop
  is sampled once per step, about 25 samples per loop).
* ``rodflow.toys``: the race on the toys of :data:`empirics.flows.TOYS`, several seeds (w0
  perturbed by 1e-3 N(0, 1)) batched.  Prediction: the rod's iterates.  The abstract's "better
  captures GD dynamics for simple toy examples" (than central flow) is judged per toy on the
  ratio rod/central of mean iterate errors after the discrete onset, with a 95% Student-t
  interval over seeds (:func:`toys_check`); the central flow solves the SDCP (every critical
  eigenvalue).  Pass when it holds on every toy; where it is refuted, that is the finding.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from momentumlab.empirics.checks import attach
from momentumlab.empirics.flows import TOYS, onset_step, parity_aligned, race, toy
from momentumlab.theory.claims import CheckResult, Control, REGISTRY
from momentumlab.theory.ops import numpy_ops
from momentumlab.theory.rod_flow import (SPACES, get_space, phase_map, rod_field,
                                         threshold_value)

__all__ = ["identities_check", "threshold_check", "quartic_check", "self_stabilization_check",
           "toys_check", "locate_rod_threshold", "TOYS_CONFIDENCE"]

_NP = numpy_ops(batch_dims=1)


def _rel_max(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def _z0(space, w, rng):
    z = {"w": w}
    for k in space.dynamic:
        z[k] = rng.standard_normal(w.shape) * 0.1 if k != "s_hat" else np.full((w.shape[0], 1), 0.5)
    return z


def _zarith(op, a, b):
    return {k: op(a[k], b[k] if isinstance(b, dict) else b) for k in a}


class _V(dict):
    def __add__(self, o):
        return _V(_zarith(lambda x, y: x + y, self, o))

    def __sub__(self, o):
        return _V(_zarith(lambda x, y: x - y, self, o))

    def __mul__(self, o):
        return _V(_zarith(lambda x, y: x * y, self, o))

    __rmul__ = __mul__

    def __truediv__(self, o):
        return _V(_zarith(lambda x, y: x / y, self, o))

    def __neg__(self):
        return _V({k: -v for k, v in self.items()})


def _grad_fn(w):
    """A non-quadratic landscape: grad of sum(w^2/2 + w^4/8 - w^3/6) (elementwise)."""
    return w + w**3 / 2 - w**2 / 2


# ------------------------------------------------------------------ identities
def identities_check(device="cpu", seed: int = 0, quick: bool = True) -> CheckResult:
    rng = np.random.default_rng(seed)
    T = 20
    pred, meas, rows = [], [], []
    for name, space in SPACES.items():
        v = space.values(**({"lr": 0.2} if "lr" in space.defaults else {}))
        w = rng.standard_normal((2, 3)) * 0.5
        root = np.full((2, 3), 1.3) if space.second_moment == "component" else (
            np.full((2, 1), 1.3) if space.second_moment else None)
        step = phase_map(space, v, _grad_fn, _NP, root)
        F = lambda z: _V(step(z)[0])  # noqa: E731
        z = _V(_z0(space, w, rng))
        traj = [z]
        for _ in range(T + 1):
            traj.append(traj[-1] + F(traj[-1]))
        c, d = (traj[0] + traj[1]) / 2, (traj[1] - traj[0]) / 2
        rod = []
        for t in range(T + 1):
            rod.append((c - d * ((-1.0) ** t))["w"])
            dc, dd = rod_field(F, c, d)
            c, d = c + dc, d + dd
        p = np.stack(rod)
        m = np.stack([z["w"] for z in traj[:T + 1]])
        pred.append(p)
        meas.append(m)
        rows.append({"optimizer": name, "max_rel_error": _rel_max(m, p)})
    prediction = np.stack(pred)
    measured = np.stack(meas)
    tol = 1e-12

    def compare(pr):
        err = _rel_max(measured, pr)
        return err, bool(err <= tol)

    err, ok = compare(prediction)
    details = {"rows": rows, "steps": T, "landscape": "sum(w^2/2 + w^4/8 - w^3/6), 2 x 3 batch",
               "note": "the rod is the flipped rod: Euler(dt = 1) of the ODE gives c_t and "
                       "(-1)^t d_t, so w_t = c_t - (-1)^t d_t"}
    return CheckResult(0.0, err, err, tol, ok, details, compare=compare, prediction=prediction)


def _identities_wrong_sign(r: CheckResult):
    """The iterate read off with the other sign, ``c + (-1)^t d``: ``2 c - w_hat``... per step."""
    p = np.asarray(r.prediction)
    # w_t and w_{t+1} swap: c + (-1)^t d = w_{t+1} for even t, w_{t-1}...: shift by one step
    return np.concatenate([p[:, 1:2], p[:, :-1]], axis=1)


# ------------------------------------------------------------------ threshold
def _rod_growth(name, x, steps=80, dt=0.25, seed=0):
    """Growth rate of |d| of the rod ODE of ``name`` on f = w^2/2 (frozen sqrt(nu) = 1)."""
    space = get_space(name)
    B = len(x)
    lr = np.asarray(x, float).reshape(B, 1)
    over = {"lr": lr}
    if name == "tam":
        over["gamma"] = 1.0  # fixed damping (decay 1), s_hat = 1: d = 1
    v = space.values(**over)
    if name == "vradam":
        v["beta3"] = 1.0
    root = np.ones((B, 1))
    step = phase_map(space, v, lambda w: w, _NP, root if space.second_moment else None)
    F = lambda z: _V(step(z)[0])  # noqa: E731
    rng = np.random.default_rng(seed)
    c = _V({"w": np.zeros((B, 1))})
    d = _V({"w": np.full((B, 1), 1e-8)})
    for k in space.dynamic:
        c[k] = np.full((B, 1), 1.0) if k == "s_hat" else np.zeros((B, 1))
        d[k] = np.zeros((B, 1)) if k == "s_hat" else rng.standard_normal((B, 1)) * 1e-8
    norms = []
    for i in range(int(steps / dt)):
        k1 = rod_field(F, c, d)
        k2 = rod_field(F, c + k1[0] * (dt / 2), d + k1[1] * (dt / 2))
        k3 = rod_field(F, c + k2[0] * (dt / 2), d + k2[1] * (dt / 2))
        k4 = rod_field(F, c + k3[0] * dt, d + k3[1] * dt)
        c = c + (k1[0] + k2[0] * 2 + k3[0] * 2 + k4[0]) * (dt / 6)
        d = d + (k1[1] + k2[1] * 2 + k3[1] * 2 + k4[1]) * (dt / 6)
        n = np.sqrt(sum(np.sum(d[k] ** 2, axis=1) for k in d if k != "s_hat"))
        norms.append(n)
        # renormalise (linear regime): keep |d| at 1e-8, accumulate the log
        scale = 1e-8 / np.maximum(n, 1e-300)
        d = d * scale.reshape(B, 1)
        norms[-1] = np.log(n / 1e-8)
    logs = np.asarray(norms)
    half = logs.shape[0] // 2
    return logs[half:].sum(axis=0) / (steps - steps * half / logs.shape[0])


def locate_rod_threshold(name, lo=0.1, hi=200.0, rounds=4, points=24):
    """First ``eta*lambda`` on a refined geometric grid where the rod's |d| grows."""
    for _ in range(rounds):
        x = np.geomspace(lo, hi, points)
        grows = _rod_growth(name, x) > 1e-6
        idx = np.flatnonzero(grows)
        if len(idx) == 0 or idx[0] == 0:
            return float("nan")
        lo, hi = x[idx[0] - 1], x[idx[0]]
    return float(np.sqrt(lo * hi))


def threshold_check(device="cpu", seed: int = 0, quick: bool = True) -> CheckResult:
    names = list(SPACES)
    measured = np.array([locate_rod_threshold(n, rounds=3 if quick else 5) for n in names])
    prediction = np.array([threshold_value(n) for n in names])
    tol = 1e-2

    def compare(pr):
        e = np.abs(measured / np.asarray(pr, float) - 1)
        err = float(np.max(e)) if np.all(np.isfinite(e)) else math.inf
        return err, bool(err <= tol)

    err, ok = compare(prediction)
    rows = [{"optimizer": n, "predicted": float(p), "measured": float(m)}
            for n, p, m in zip(names, prediction, measured)]
    return CheckResult(float(prediction[names.index("adam")]), float(measured[names.index("adam")]),
                       err, tol, ok, {"rows": rows, "criterion": "log-growth of |d| per unit time "
                                      "> 1e-6 over the second half of 80 time units"},
                       compare=compare, prediction=prediction)


def _threshold_beta_squared(r: CheckResult):
    """Every threshold formula with beta -> beta^2 (at beta = 0.9: 0.81)."""
    out = []
    for row in r.details["rows"]:
        n = row["optimizer"]
        v = get_space(n).defaults
        out.append(threshold_value(n, beta=v["beta"] ** 2) if "beta" in v else 2.2)
    return np.array(out)


# ------------------------------------------------------------------ quartic
def quartic_check(device="cpu", seed: int = 0, quick: bool = True) -> CheckResult:
    steps = 400 if quick else 2000
    lrs = [2.5, 2.9, 3.3]
    w0 = torch.tensor([[0.45], [0.5], [0.5]], dtype=torch.float64)
    w0 = w0 + 1e-6 * torch.randn(w0.shape, generator=torch.Generator().manual_seed(seed),
                                 dtype=torch.float64)
    r = race(lambda w: (w**2).sum() / 2 - (w**4).sum() / 4, w0, "gd", {"lr": lrs}, steps,
             flows=("discrete", "rod"), sharpness_every=0)
    d_end = r.amplitude["rod"][-1]
    w = r.iterates["discrete"][:steps + 1, :, 0]
    gd_amp = np.abs(w[-1])
    prediction = np.array([math.sqrt(1 - 2 / e) for e in lrs[:2]] * 2)
    measured = np.array([d_end[0], d_end[1], gd_amp[0], gd_amp[1]])
    tol = 1e-6

    def compare(pr):
        err = float(np.max(np.abs(measured / np.asarray(pr, float) - 1)))
        return err, bool(err <= tol)

    err, ok = compare(prediction)
    period2_gap = float(abs(w[-1, 2] - w[-3, 2]))
    rod_rest = float(abs(r.amplitude["rod"][-1, 2] - r.amplitude["rod"][-2, 2]))
    beyond = {"eta_S": 3.3, "gd_period2_gap": period2_gap, "rod_rest_change": rod_rest,
              "gd_leaves_period_2": period2_gap > 1e-3, "rod_at_rest": rod_rest < 1e-8}
    passed = ok and beyond["gd_leaves_period_2"] and beyond["rod_at_rest"]
    return CheckResult(float(prediction[0]), float(measured[0]), err, tol, passed,
                       {"eta_S": lrs[:2], "rod_d": measured[:2].tolist(),
                        "gd_amplitude": measured[2:].tolist(), "past_period_doubling": beyond,
                        "steps": steps}, compare=compare, prediction=prediction)


# ------------------------------------------------------------------ self-stabilization
def self_stabilization_check(device="cpu", seed: int = 0, quick: bool = True) -> CheckResult:
    eta, a = 0.3, 0.01
    steps = 1500 if quick else 6000
    loss = lambda w: 0.5 * w[1] * w[0] ** 2 - a * w[1]  # noqa: E731
    w0 = torch.tensor([[1e-2, 2 / eta - 0.05 + 0.01 * s] for s in range(2)], dtype=torch.float64)
    r = race(loss, w0, "gd", {"lr": eta}, steps, flows=("discrete", "rod"), sharpness_every=0)
    d2 = r.amplitude["rod"] ** 2
    # centre y of the rod = the iterate mean; loops: between the first and last maximum of d^2
    measured = []
    loops = []
    for b in range(d2.shape[1]):
        x = d2[:, b]
        peaks = [t for t in range(1, len(x) - 1) if x[t] > x[t - 1] and x[t] >= x[t + 1]
                 and x[t] > 0.5 * np.max(x)]
        lo, hi = peaks[1], peaks[-1]
        measured.append(float(np.mean(x[lo:hi])))
        loops.append(len(peaks) - 2)
    measured = np.array(measured)
    prediction = np.full_like(measured, 2 * a / 1.0)
    tol = 2e-2

    def compare(pr):
        err = float(np.max(np.abs(measured / np.asarray(pr, float) - 1)))
        return err, bool(err <= tol)

    err, ok = compare(prediction)
    return CheckResult(float(prediction[0]), float(measured[0]), err, tol, ok,
                       {"loss": "1/2 y x^2 - a y, a = 0.01, eta = 0.3", "alpha": a, "beta": 1.0,
                        "whole_loops_averaged": loops, "steps": steps},
                       compare=compare, prediction=prediction)


# ------------------------------------------------------------------ toys
#: the abstract's comparison is judged on the 95% Student-t interval of the mean ratio over seeds
TOYS_CONFIDENCE = 0.95
#: quick mode: 400 steps (onsets at 80-130 steps with eps = 0.06: >= 270 steps of EoS), 6 seeds
TOYS_QUICK_STEPS = 400
TOYS_QUICK_SEEDS = 6


def _ratio_ci(ratios):
    """Mean and two-sided ``TOYS_CONFIDENCE`` Student-t interval of per-seed ratios (magnitude)."""
    from scipy import stats

    r = np.asarray(ratios, float)
    if not np.all(np.isfinite(r)):
        return math.inf, (math.inf, math.inf)
    m = float(np.mean(r))
    half = float(stats.t.ppf((1 + TOYS_CONFIDENCE) / 2, len(r) - 1) * np.std(r, ddof=1) / math.sqrt(len(r)))
    return m, (m - half, m + half)


def _better_ci(ratios):
    """Seeds where the rod is better (ratio < 1), of all, and the exact (Clopper-Pearson)
    ``TOYS_CONFIDENCE`` interval of the probability that it is better in a run."""
    from scipy import stats

    r = np.asarray(ratios, float)
    k = int(np.sum(np.isfinite(r) & (r < 1)))
    ci = stats.binomtest(k, len(r)).proportion_ci(TOYS_CONFIDENCE, method="exact")
    return k, (float(ci.low), float(ci.high))


def _toy_verdict(ci):
    """``holds`` when the rod is better in most runs (interval above 1/2), ``refuted`` when the
    central flow is (interval below 1/2), ``undecided`` otherwise."""
    return "holds" if ci[0] > 0.5 else "refuted" if ci[1] < 0.5 else "undecided"


def _align_rod(r, starts):
    """The rod's iterates with its oscillation parity aligned at each run's ``starts`` step
    (:func:`empirics.flows.parity_aligned`), and the race's rod error replaced by theirs.
    Returns ``(aligned iterates, agrees, rod error as predicted)``."""
    aligned, agrees = parity_aligned(r, starts)
    raw = r.error["rod"]
    r.error["rod"] = np.linalg.norm(r.iterates["discrete"][:r.steps + 1] - aligned, axis=-1)
    return aligned, agrees, raw


def _after(err, starts):
    """Per-seed mean of ``err`` ``(T+1, S)`` from each seed's ``start``."""
    return np.array([float(np.nanmean(err[s:, b])) for b, s in enumerate(starts)])


def toys_check(device="cpu", seed: int = 0, quick: bool = True) -> CheckResult:
    """Rod against central flow (SDCP) on each toy: which tracks GD better, run by run.

    Rule: per toy and seed, ``r = mean_t ||w_t - w_hat_rod(t)|| / mean_t ||w_t - w_central(t)||``
    over the steps from that seed's discrete onset on (the edge-of-stability phase, where the two
    models differ; before it both are gradient flow up to the oscillation's seed), with the rod's
    oscillation parity aligned at the onset (:func:`empirics.flows.parity_aligned`: which end of
    the rod GD sits on is set by the rounding-level seed, as the onset step is; the parity
    agreement and the error as predicted are reported beside it, ``parity_agrees``,
    ``rod_error_after_onset_as_predicted``); the rod "better captures GD dynamics" in a run when
    ``r < 1``.  The abstract's statement holds on a
    toy when the exact 95% (Clopper-Pearson) interval of the probability that the rod is better
    in a run lies above 1/2, is refuted when it lies below 1/2, and is undecided otherwise (a
    sign test over seeds: with 6 seeds only a unanimous outcome decides, so the verdict cannot
    flip with one seed).  The claim passes when it holds on every toy.  The magnitude is reported
    beside it (mean ratio, its t-interval, its range).  The central flow is the SDCP central flow
    (every critical eigenvalue); the one-eigenvalue closed form is reported beside it where more
    than one eigenvalue was critical.
    """
    seeds = TOYS_QUICK_SEEDS if quick else 8
    names = list(TOYS)
    rows, preds, meas, stab, cent, starts, cerr = [], {}, {}, {}, {}, {}, {}
    for name in names:
        f, w0, steps = toy(name, quick)
        steps = min(steps, TOYS_QUICK_STEPS) if quick else steps
        gen = torch.Generator().manual_seed(seed)
        W0 = w0 + 1e-3 * torch.randn(seeds, w0.numel(), generator=gen, dtype=torch.float64)
        r = race(f, W0, "gd", {"lr": 0.3}, steps, sharpness_every=5, device=device)
        s = r.summary()
        onset = np.asarray(s["onset"]["discrete"])
        start = np.where(onset >= 0, onset, steps // 2)
        T = steps + 1
        aligned, agrees, raw = _align_rod(r, start)
        meas[name], preds[name] = r.iterates["discrete"][:T], aligned
        stab[name], cent[name], starts[name] = r.iterates["stable"][:T], r.iterates["central"][:T], start
        e = {k: _after(v, start) for k, v in r.error.items()}
        as_predicted = _after(raw, start)
        cerr[name] = e["central"]
        ratio = e["rod"] / e["central"]
        mean, tci = _ratio_ci(ratio)
        n_better, ci = _better_ci(ratio)
        sdcp = r.costs["central"]["sdcp"]
        row = {"toy": name, "steps": steps, "eps": TOYS[name][4] if quick else 0.01,
               "onset_discrete": s["onset"]["discrete"], "onset_rod": s["onset"].get("rod"),
               "sharpness_crossing": s["sharpness_crossing"],
               "parity_agrees": agrees.tolist(),
               "rod_error_after_onset_as_predicted": as_predicted.tolist(),
               "error_all": s["error_all"], "error_after_onset": {k: v.tolist() for k, v in e.items()},
               "mean_error_after_onset": {k: float(np.mean(v)) for k, v in e.items()},
               "centre_error_second_half": s.get("centre_error_second_half"),
               "rod_over_central": ratio.tolist(), "ratio_mean": mean, "ratio_t_ci95": list(tci),
               "ratio_range": [float(np.min(ratio)), float(np.max(ratio))],
               "rod_better_seeds": n_better, "rod_better_probability_ci95": list(ci),
               "verdict": _toy_verdict(ci), "rod_better_fraction": float(np.mean(ratio < 1)),
               "rod_over_stable_max": float(np.max(e["rod"] / e["stable"])),
               "critical_eigenvalues": sdcp["critical_count_histogram"],
               "max_critical": sdcp["max_critical"], "costs": s["costs"]}
        if sdcp["max_critical"] > 1:  # the one-eigenvalue comparator, same seeds
            r1 = race(f, W0, "gd", {"lr": 0.3}, steps, flows=("discrete", "central"),
                      sharpness_every=0, central_sdcp="one", device=device)
            e1 = _after(r1.error["central"], start)
            row["error_after_onset"]["central_one_eigenvalue"] = e1.tolist()
            row["mean_error_after_onset"]["central_one_eigenvalue"] = float(np.mean(e1))
            row["error_all"]["central_one_eigenvalue"] = r1.summary()["error_all"]["central"]
            row["rod_over_central_one_eigenvalue_mean"] = float(np.mean(e["rod"] / e1))
            row["costs"]["central_one_eigenvalue"] = r1.costs["central"]
        rows.append(row)

    def verdicts(pr):
        out = {}
        for n in names:
            e = _after(np.linalg.norm(meas[n] - pr[n], axis=-1), starts[n])
            out[n] = _better_ci(e / cerr[n])[1]
        return out

    def compare(pr):
        """error = 1 - the smallest lower end over toys (0: the rod better in every run of every
        toy, with certainty); passes when the statement holds on every toy."""
        v = verdicts(pr)
        return 1 - min(ci[0] for ci in v.values()), bool(all(_toy_verdict(ci) == "holds"
                                                            for ci in v.values()))

    err, ok = compare(preds)
    held = [r["toy"] for r in rows if r["verdict"] == "holds"]
    refuted = [r["toy"] for r in rows if r["verdict"] == "refuted"]
    undecided = [r["toy"] for r in rows if r["verdict"] == "undecided"]
    evidence = "; ".join(f"{r['toy']}: rod better in {r['rod_better_seeds']}/{seeds} seeds, "
                         f"rod/central {r['ratio_mean']:.2f} (range {r['ratio_range'][0]:.2f}-"
                         f"{r['ratio_range'][1]:.2f}) -> {r['verdict']}" for r in rows)
    verdict = ("holds on every toy" if ok else
               "refuted on " + ", ".join(refuted) if refuted and not undecided else
               "not shown on " + ", ".join(refuted + undecided))
    tracking = {r["toy"]: r["rod_over_stable_max"] for r in rows}
    details = {"rows": rows, "seeds": seeds, "held_on": held, "refuted_on": refuted,
               "undecided_on": undecided, "rule": toys_check.__doc__.split("Rule: ")[1].strip(),
               "tracking_sanity": {"rod_over_stable_max": tracking,
                                   "rod_tracks": bool(max(tracking.values()) < 0.5)},
               "paper_claim": f"{verdict}: 'better captures GD dynamics for simple toy examples' "
                              f"than central flow (mean iterate error after onset, rod/central; "
                              f"sign test over seeds, 95%: {evidence})"}
    global _STABLE, _CENTRAL
    _STABLE, _CENTRAL = stab, cent
    return CheckResult(None, 1 - err, err, 0.5, ok, details, compare=compare, prediction=preds)


_STABLE = _CENTRAL = None

attach("rodflow.identities")(identities_check)
attach("rodflow.threshold")(threshold_check)
attach("rodflow.quartic")(quartic_check)
attach("rodflow.self_stabilization")(self_stabilization_check)
attach("rodflow.toys")(toys_check)

REGISTRY["rodflow.identities"].controls = (
    Control("iterate read with the other sign, c + (-1)^t d", _identities_wrong_sign),)
REGISTRY["rodflow.threshold"].controls = (Control("beta -> beta^2 in every threshold",
                                                  _threshold_beta_squared),)
REGISTRY["rodflow.quartic"].controls = (
    Control("amplitude of the stable-flow fixed point (d* = 0 -> use S/Q)", lambda r: np.full(4, 1.0)),
    Control("d*^2 = (S - 1/eta)/Q", lambda r: np.array([math.sqrt(1 - 1 / e) for e in (2.5, 2.9)] * 2)),)
REGISTRY["rodflow.self_stabilization"].controls = (
    Control("sigma^2 = alpha/beta (missing factor 2)", lambda r: np.full(2, 0.01)),)
REGISTRY["rodflow.toys"].controls = (
    Control("stable flow's iterates", lambda r: _STABLE),
    Control("central flow's own iterates (ratio 1: not better)", lambda r: _CENTRAL),)


# ------------------------------------------------------------------ networks
#: GD step size per network (digits MLP of width 8 / small CNN, n = 64): after the catapult of
#: the first steps the sharpness falls below 2/eta, sharpens back across it and the iterates
#: start to oscillate.  Scanned over initialisations 0..9 (discrete GD): MLP, crossing at
#: steps 5-70 for all ten; CNN, crossing at 20-40 and onset at 55-75 for eight, initialisation
#: 4 crosses at ~80 only and 5 diverges in the catapult (at 0.35 too)
NETWORK_LR = {"mlp": 0.7, "cnn": 0.4}
#: samples of the sharpness (every SHARP_EVERY steps); the oscillation onset level of the
#: discrete amplitude ||w_{t+1} - 2 w_t + w_{t-1}||/4
SHARP_EVERY = 5
NET_ONSET_LEVEL = 1e-2


#: a network race is judged on its EoS phase: at least this many steps after the discrete onset
NET_MIN_EOS_STEPS = 30
#: initialisations screened per race (network or optimizer), from ``seed`` on
RUN_CANDIDATES = 6
#: a run's discrete process has diverged when its loss exceeds this multiple of the loss at initialisation
RUN_DIVERGED = 1e3


def _window_start(ev) -> int:
    """Where a run's EoS phase starts: its discrete onset, else (a run at its threshold from the
    first steps, reached by hovering) its crossing."""
    return ev["onset"] if ev["onset"] >= 0 else max(ev["crossing"], 0)


def _eos_runs(make, optimizer, lr, n, T, seed, min_steps, warm=0, device="cpu"):
    """The runs of a race: the first ``n`` initialisations from ``seed`` on (``make(seeds) ->
    (loss_fn, w0)``; ``warm`` GD steps first) whose *discrete* process stays bounded and reaches
    the edge of stability (:func:`_eos_evidence`) at least ``min_steps`` steps before step ``T``.

    The claims are about tracking through the EoS: a run whose discrete process diverges (the
    CNN's initialisation 5 at lr 0.4: loss ~1e297) or starts to oscillate in the race's last
    steps has no EoS phase to judge, and a verdict that flipped on such a draw would flip with
    the seed a user picks.  The screen runs the discrete process alone -- no flow is consulted --
    so it cannot favour one.  ``n`` candidates at a time, at most ``max(RUN_CANDIDATES, n)``.
    Returns ``(loss_fn, w0 (<= n, P), seeds, skipped {seed: reason})``.
    """
    chosen, skipped, f = [], {}, None
    last = seed + max(RUN_CANDIDATES, n)
    for lo in range(seed, last, n):
        cand = tuple(range(lo, min(lo + n, last)))
        f, w0 = make(cand)
        loss0 = torch.vmap(f)(w0).cpu().numpy()
        w0 = _warm_start(f, w0, lr, warm, device)
        r = race(f, w0, optimizer, {"lr": lr}, T, flows=("discrete",), sharpness_every=SHARP_EVERY,
                 device=device)
        # diverged: the loss past RUN_DIVERGED x its value at initialisation
        with np.errstate(invalid="ignore"):
            bounded = (r.loss["discrete"] <= RUN_DIVERGED * loss0).all(axis=0)
        for b, ev in enumerate(_eos_evidence(r)):
            if len(chosen) == n:
                break
            if not bounded[b]:
                skipped[cand[b]] = "diverges"
            elif not ev["reached"]:
                skipped[cand[b]] = "no edge of stability inside the race"
            elif T - _window_start(ev) < min_steps:
                skipped[cand[b]] = f"EoS from step {_window_start(ev)} of {T}: under {min_steps} steps"
            else:
                chosen.append((cand[b], w0[b]))
        if len(chosen) == n:
            break
    if not chosen:
        raise RuntimeError(f"no initialisation from seed {seed} on reaches the edge of stability "
                           f"inside the race ({optimizer}): {skipped}")
    return f, torch.stack([w for _, w in chosen]), [s for s, _ in chosen], skipped


def _eos_initialisations(kind, lr, cfg, seed, device):
    """:func:`_eos_runs` for GD on network ``kind`` (warm start, :data:`NET_MIN_EOS_STEPS`)."""
    from momentumlab.empirics.flows import network

    def make(seeds):
        return network(kind, n=cfg["n"], width=cfg["width"], seeds=seeds, device=device)

    return _eos_runs(make, "gd", lr, len(cfg["seeds"]), cfg["steps"][kind], seed,
                     NET_MIN_EOS_STEPS, warm=cfg["warm"][kind], device=device)


def _net_sizes(quick):
    """Quick: sized for < 60 s of one CPU thread per claim; full: for a GPU."""
    if quick:
        return dict(n=64, width=8, seeds=(0, 1, 2), steps={"mlp": 100, "cnn": 80},
                    warm={"mlp": 60, "cnn": 30})
    return dict(n=1000, width=32, seeds=(0, 1, 2, 3), steps={"mlp": 1000, "cnn": 1000},
                warm={"mlp": 0, "cnn": 0})


class _one_thread:
    """Small networks are overhead-bound: one thread (CPU time is then what a step costs)."""

    def __enter__(self):
        self.n = torch.get_num_threads()
        torch.set_num_threads(1)

    def __exit__(self, *exc):
        torch.set_num_threads(self.n)


def _eos_evidence(r, level=NET_ONSET_LEVEL, growth=10.0) -> list[dict]:
    """Per batch row: did the run reach the edge of stability, and when.

    ``crossing``: first sampled step at which ``S_eff`` (``eta lambda_max(P^-1 H)``) rises across
    the :mod:`rodflow.threshold` value from a sample below it, else the first sample at or above
    it; ``from_below``: the former (the crossing happened inside the run); ``onset``: first step
    at or after the crossing where the discrete oscillation amplitude
    ``||w_{t+1} - 2 w_t + w_{t-1}||/4`` exceeds ``level`` or ``growth`` times its value at the
    crossing (the flip mode growing; before the EoS the amplitude decays); ``hover``: fraction of
    the samples from the crossing on within 10% of the threshold.  ``reached``: a crossing from
    below followed by the onset, or -- for a run at its threshold from the first steps (the
    adaptive methods, whose oscillation can stay below ``level``) -- the onset or hovering
    (``hover >= 1/2``).
    """
    S = r.sharpness / r.threshold
    amp = np.asarray(r.amplitude["discrete"])
    out = []
    for b in range(S.shape[1]):
        t_s = np.flatnonzero(np.isfinite(S[:, b]))
        s = S[t_s, b]
        up = np.flatnonzero((s[1:] >= 1) & (s[:-1] < 1)) + 1  # an up-crossing inside the run
        above = up if len(up) else np.flatnonzero(s >= 1)[:1]  # else: above from the start
        cross = int(t_s[above[0]]) if len(above) else -1
        onset = _onset(amp[:, b], cross, level, growth)
        late = s[t_s >= cross] if cross >= 0 else s[:0]
        hover = float(np.mean(np.abs(late - 1) <= 0.1)) if len(late) else 0.0
        below = bool(len(up))
        out.append({"crossing": cross, "from_below": below, "onset": onset,
                    "max_sharpness_over_threshold": float(np.max(s)) if len(s) else None,
                    "hover": hover,
                    "reached": bool(cross >= 0 and (onset >= 0 or (not below and hover >= 0.5)))})
        out[-1]["window_start"] = _window_start(out[-1])
    return out


def _onset(a, cross, level=NET_ONSET_LEVEL, growth=10.0) -> int:
    """First step ``t >= max(cross, 1)`` at which the amplitude ``a[t]`` exceeds ``level`` or
    ``growth`` times ``a`` at that first step (-1: none, or no crossing)."""
    if cross < 0:
        return -1
    t0 = max(cross, 1)
    hit = np.flatnonzero((a[t0:] > level) | (a[t0:] > growth * a[t0]))
    return int(hit[0] + t0) if len(hit) else -1


def _window_errors(r, flows, eos, start="crossing"):
    """Mean ``||w_t - w_hat_t||`` per flow over each row's window: from its ``start`` event
    (``eos[b]["crossing"]`` or ``["window_start"]``; whole run when it has none) to the end, on the
    steps where the stable flow still runs (a row stops when it diverges or its solver fails;
    stiff rows are integrated implicitly), so that every flow is averaged over the same steps;
    NaN when no step is left."""
    stable = np.asarray(r.error["stable"])
    out = {}
    for f in flows:
        e = np.asarray(r.error[f])
        vals = []
        for b, ev in enumerate(eos):
            t0 = max(ev[start], 0)
            keep = np.isfinite(stable[t0:, b])
            vals.append(float(np.mean(e[t0:, b][keep])) if _measurable(keep) else float("nan"))
        out[f] = vals
    return out


def _measurable(keep) -> bool:
    """A run is compared with the stable flow when that flow covers at least half its window."""
    return bool(len(keep) and keep.mean() >= 0.5)


def _warm_start(f, w0, lr, steps, device):
    """``steps`` discrete GD steps before the race (the central-flows code's ``--warm-start``)."""
    if steps == 0:
        return w0
    r = race(f, w0, "gd", {"lr": lr}, steps, flows=("discrete",), sharpness_every=0, device=device)
    return torch.as_tensor(r.iterates["discrete"][steps], dtype=torch.float64)


def _ratio_compare(meas, stab, windows):
    """``compare``: max over runs of mean ||w - pred|| / mean ||w - w_stable|| over each run's
    window (from its ``window_start``: the discrete onset, else the crossing), on the steps where the stable flow runs; a run where it
    stopped (diverged, or its solver failed) within the first half of its window is not measured
    and left out (the check's verdict then fails on completeness); pass when < 1 (the prediction beats the stable
    flow)."""
    def err_of(pr):
        out = 0.0
        for k in meas:
            for b, t0 in enumerate(windows[k]):
                m = meas[k][t0:, b]
                es = np.linalg.norm(m - stab[k][t0:, b], axis=-1)
                keep = np.isfinite(es)  # the steps where the stable flow still runs
                if not _measurable(keep):
                    continue
                e = np.linalg.norm(m - pr[k][t0:, b], axis=-1)[keep]
                r = float(np.mean(e) / np.mean(es[keep]))
                out = max(out, r if np.isfinite(r) else math.inf)
        return out

    def compare(pr):
        e = err_of(pr)
        return e, bool(e < 1.0)

    return compare


#: the central flow of the quick network races: the one-eigenvalue closed form, one tracked
#: eigenpair by batched Lanczos.  Tracking every effective eigenvalue above 1.5 for the SDCP (the
#: authors' rule) costs ~3-4x the whole quick budget on these networks (per-row LOBPCG with many
#: pairs: 223 CPU s for the claim, 1 for 1 -- measured), and on the toys the SDCP and the
#: one-eigenvalue flow differ by < 0.1% in iterate error (results/rodflow.json, codim2); the
#: full runs use the SDCP ("auto").
NETWORK_CENTRAL_SDCP = "one"


def networks_check(device="cpu", seed: int = 0, quick: bool = True) -> CheckResult:
    """GD on the digits MLP and the small CNN: rod vs central vs stable flow through the EoS.

    Quick: ``n = 64`` digits, MLP width 8 (``P`` = 578), CNN with 4 channels (``P`` = 1490), three
    initialisations batched, ``warm`` discrete GD steps (the catapult of the first steps; the
    central-flows code's ``--warm-start``) before a race of ``steps`` steps in which the
    sharpness crosses ``2/eta`` and the oscillation starts (checked per run,
    ``details.rows[].eos``).  One thread: under 60 s of CPU time here, most of it the central
    flow's eigensolves (batched Lanczos, :meth:`empirics.flows._Problem.top_eig`).

    Window: tracking is judged from each run's discrete oscillation onset (the EoS phase) to the
    end, with the rod's oscillation parity aligned there (:func:`empirics.flows.parity_aligned`);
    onset alignment -- the rod's onset step against the discrete one, and the parity -- is
    reported on its own (``rows[].onset_alignment``, ``parity_agrees``), as the toys do.
    Between the crossing and the onset the flip mode grows from the rounding-level seed of the
    oscillation, and the step at which it becomes visible is not a tracking property
    (reference, pitfalls; measured: the MLP's second initialisation crosses at step 15 and
    oscillates from step 60).  The runs are screened (:func:`_eos_initialisations`) to leave at
    least :data:`NET_MIN_EOS_STEPS` steps after the onset: with 15 (the earlier 75-step race)
    the window was the onset transient alone.

    Pass: the rod's mean iterate error after the onset is below the stable flow's in every run
    (and every run reached the EoS); the abstract's "matches the accuracy of Central Flow" is
    the finding, rod/central within a factor 1.5 either way.
    """
    cfg = _net_sizes(quick)
    rows, meas, pred, stab, windows = [], {}, {}, {}, {}
    with _one_thread():
        for kind, lr in NETWORK_LR.items():
            f, w0, seeds, skipped = _eos_initialisations(kind, lr, cfg, seed, device)
            T = cfg["steps"][kind]
            r = race(f, w0, "gd", {"lr": lr}, T, sharpness_every=SHARP_EVERY,
                     central_sdcp=NETWORK_CENTRAL_SDCP if quick else "auto", device=device)
            eos = _eos_evidence(r)
            windows[kind] = [ev["window_start"] for ev in eos]
            as_predicted = _window_errors(r, ("rod",), eos, start="window_start")["rod"]
            err_all = {k: np.nanmean(np.asarray(r.error[k]), axis=0).tolist()
                       for k in ("rod", "central", "stable")}  # as predicted
            aligned, agrees, _ = _align_rod(r, windows[kind])
            win = _window_errors(r, ("rod", "central", "stable"), eos, start="window_start")
            meas[kind], pred[kind], stab[kind] = (r.iterates["discrete"][:T + 1], aligned,
                                                  r.iterates["stable"][:T + 1])
            e = {k: np.asarray(v, float) for k, v in win.items()}
            rows.append({"network": kind, "lr": lr, "params": int(w0.shape[1]), "steps": T,
                         "seeds": seeds, "skipped_initialisations": skipped,
                         "warm_start_steps": cfg["warm"][kind], "eos": eos,
                         "onset_alignment": _onset_alignment(r, eos),
                         "parity_agrees": agrees.tolist(),
                         "rod_error_eos_as_predicted": as_predicted,
                         "error_eos": {k: v.tolist() for k, v in e.items()},
                         "error_all": err_all,
                         "rod_over_central": (e["rod"] / e["central"]).tolist(),
                         "rod_over_stable": (e["rod"] / e["stable"]).tolist(),
                         "costs": r.costs, "notes": r.notes})
    compare = _ratio_compare(meas, stab, windows)
    err, ok = compare(pred)
    reached = all(ev["reached"] for row in rows for ev in row["eos"]) and \
        all(len(row["seeds"]) == len(cfg["seeds"]) for row in rows)
    ratios = [x for row in rows for x in row["rod_over_central"]]
    verdict = ("holds" if all(0.67 <= x <= 1.5 for x in ratios) else
               "holds, rod more accurate" if all(x < 1.5 for x in ratios) else
               "refuted, rod less accurate" if all(x > 1.5 for x in ratios) else "mixed")
    per_net = "; ".join(f"{row['network']}: " + ", ".join(f"{x:.2f}" for x in row["rod_over_central"])
                        for row in rows)
    details = {"rows": rows, "central_flow": "one eigenvalue (closed form)" if quick else "SDCP (auto)",
               "eos_reached_in_every_run": reached,
               "runs": f"per network, the first {len(cfg['seeds'])} initialisations from seed {seed} "
                       f"whose discrete GD reaches the EoS >= {NET_MIN_EOS_STEPS} steps before the end",
               "window": "from each run's discrete oscillation onset to the end of the race",
               "paper_claim": f"{verdict}: 'matches the accuracy of Central Flow' (rod/central mean "
                              f"iterate error after the onset, per seed: {per_net}; 'matches' "
                              f"taken as within a factor 1.5)"}
    global _NET_STABLE
    _NET_STABLE = stab

    def judged(pr):
        e, passed = compare(pr)
        return e, bool(passed and reached)

    return CheckResult(1.0, err, err, 1.0, ok and reached, details, compare=judged, prediction=pred)


def _onset_alignment(r, eos) -> list[dict]:
    """Per row: the discrete onset and the rod's (its amplitude ``||d_w||`` by the same rule,
    :func:`_onset`), and their difference in steps (rod minus discrete; None when either is
    missing)."""
    out = []
    for b, ev in enumerate(eos):
        rod = _onset(np.asarray(r.amplitude["rod"])[:, b], ev["crossing"])
        d = ev["onset"]
        out.append({"discrete": d, "rod": rod,
                    "rod_minus_discrete": rod - d if min(rod, d) >= 0 else None})
    return out


_NET_STABLE = None
_OPT_STABLE = None


# ------------------------------------------------------------------ optimizers
#: an optimizer race is judged on at least this many steps of its EoS phase (quick: 50 steps)
OPT_MIN_EOS_STEPS = 10


def _opt_sizes(quick):
    # quick: two initialisations -- the stiff stable flows (Adam, VRAdam: implicit BDF per row,
    # ~5-10 s of CPU per row over 50 steps) set the cost
    return dict(n=64, width=8, seeds=(0, 1), steps=50) if quick else \
        dict(n=1000, width=32, seeds=(0, 1, 2, 3), steps=1000)


def _significance_verdict(held, failed, split) -> str:
    """The abstract's "significantly" over the eight paper optimizers: ``held`` (< 0.5 in every
    run), ``failed`` (in none), ``split`` (in some)."""
    if len(held) == 8:
        return "holds"
    seed_dependent = "(seed-dependent: < 0.5 for some seeds only)"
    if failed and split:
        return f"refuted for {', '.join(failed)} (every seed) and {', '.join(split)} {seed_dependent}"
    if failed:
        return f"refuted for {', '.join(failed)}"
    if split:
        return f"refuted for {', '.join(split)} {seed_dependent}"
    return "not measured"


def optimizers_check(device="cpu", seed: int = 0, quick: bool = True) -> CheckResult:
    """Each of the eight optimizers of arXiv 2605.06821, VRAdam and TAM on the digits MLP at the
    step size of :data:`empirics.flows.NETWORK_DEFAULT_LR` (past its threshold inside the run):
    rod vs stable flow, mean iterate error over each run's EoS phase -- from its discrete onset,
    or its crossing for a run at its threshold from the first steps (``eos[].window_start``) --
    with the rod's oscillation parity aligned there (:func:`empirics.flows.parity_aligned`).
    The runs: per optimizer, the first two initialisations from ``seed`` on whose discrete
    process reaches its EoS at least :data:`OPT_MIN_EOS_STEPS` steps before the end
    (:func:`_eos_runs`, a screen of the discrete process alone).

    Pass: the rod beats the stable flow in every run (optimizer x seed) and every run reached its
    EoS (crossing of the ``rodflow.threshold`` value and oscillation onset).  The abstract's
    "significantly more accurately" is the finding per optimizer (rod/stable < 0.5 for every seed).
    """
    from momentumlab.empirics.flows import PAPER_AND_PROJECT, network, NETWORK_DEFAULT_LR

    cfg = _opt_sizes(quick)
    T = cfg["steps"]
    rows, meas, pred, stab, windows = [], {}, {}, {}, {}

    def make(seeds):
        return network("mlp", n=cfg["n"], width=cfg["width"], seeds=seeds, device=device)

    with _one_thread():
        for name in PAPER_AND_PROJECT:
            lr = NETWORK_DEFAULT_LR[name]
            f, w0, seeds, skipped = _eos_runs(make, name, lr, len(cfg["seeds"]), T, seed,
                                              OPT_MIN_EOS_STEPS, device=device)
            r = race(f, w0, name, {"lr": lr}, T, flows=("discrete", "rod", "stable"),
                     sharpness_every=SHARP_EVERY, device=device)
            eos = _eos_evidence(r)
            windows[name] = [ev["window_start"] for ev in eos]
            aligned, agrees, _ = _align_rod(r, windows[name])
            win = _window_errors(r, ("rod", "stable"), eos, start="window_start")
            meas[name], pred[name], stab[name] = (r.iterates["discrete"][:T + 1], aligned,
                                                  r.iterates["stable"][:T + 1])
            e = {k: np.asarray(v, float) for k, v in win.items()}
            ratio = e["rod"] / e["stable"]  # NaN: the stable flow diverged before the window
            st = r.costs["stable"]
            rows.append({"optimizer": name, "lr": lr, "threshold_eta_lambda": r.threshold,
                         "seeds": seeds, "skipped_initialisations": skipped,
                         "parity_agrees": agrees.tolist(), "eos": eos, "error_eos": {k: v.tolist() for k, v in e.items()},
                         "rod_over_stable": ratio.tolist(),
                         "significantly": [bool(x < 0.5) for x in ratio],
                         "stable_solver": st["solver"], "stable_status": st["status"],
                         "costs": r.costs, "notes": r.notes})
    compare = _ratio_compare(meas, stab, windows)
    err, ok = compare(pred)
    reached = all(ev["reached"] for row in rows for ev in row["eos"]) and \
        all(len(row["seeds"]) == len(cfg["seeds"]) for row in rows)
    paper = [row for row in rows if row["optimizer"] in PAPER_AND_PROJECT[:8]]
    unmeasured = [row["optimizer"] for row in paper
                  if not all(np.isfinite(x) for x in row["rod_over_stable"])]
    held = [row["optimizer"] for row in paper if row["optimizer"] not in unmeasured
            and all(row["significantly"])]
    failed = [row["optimizer"] for row in paper if row["optimizer"] not in unmeasured
              and not any(row["significantly"])]
    split = [row["optimizer"] for row in paper if row["optimizer"] not in held + failed + unmeasured]
    verdict = _significance_verdict(held, failed, split)
    if unmeasured:
        why = "; ".join(f"{row['optimizer']}: " + ", ".join(
            f"seed {row['seeds'][b]} {st}" for b, st in enumerate(row["stable_status"]) if st != "ran")
            for row in paper if row["optimizer"] in unmeasured)
        verdict += f" (not measured for {', '.join(unmeasured)}: the stable flow stopped -- {why})"
    details = {"rows": rows, "steps": T, "eos_reached_in_every_run": reached,
               "runs": f"per optimizer, the first {len(cfg['seeds'])} initialisations from seed {seed} "
                       f"whose discrete process reaches its EoS >= {OPT_MIN_EOS_STEPS} steps before the end",
               "significantly_for": held, "not_significantly_for": failed, "seed_dependent": split,
               "not_measured_for": [row["optimizer"] for row in rows
                                    if not all(np.isfinite(x) for x in row["rod_over_stable"])],
               "paper_claim": f"{verdict}: 'tracks ... significantly more accurately than the "
                              "corresponding stable flow' for all eight ('significantly' taken as "
                              "rod/stable mean iterate error over the EoS phase < 0.5 for every seed)"}
    global _OPT_STABLE
    _OPT_STABLE = stab
    complete = not any(not np.isfinite(x) for row in rows for x in row["rod_over_stable"])
    details["complete"] = complete

    def judged(pr):
        e, passed = compare(pr)
        return e, bool(passed and reached and complete)

    return CheckResult(1.0, err, err, 1.0, ok and reached and complete, details, compare=judged,
                       prediction=pred)


attach("rodflow.networks")(networks_check)
attach("rodflow.optimizers")(optimizers_check)
REGISTRY["rodflow.networks"].controls = (Control("stable flow's iterates", lambda r: _NET_STABLE),)
REGISTRY["rodflow.optimizers"].controls = (Control("stable flow's iterates", lambda r: _OPT_STABLE),)


def record(path, quick: bool = True, only=None, seed: int = 0) -> dict:
    """Run the rodflow checks and write their verdicts and details to ``path`` (JSON).

    ``python -m momentumlab.empirics.checks.rod_flow results/rodflow.json [--full] [--only ...]``;
    the docs' num markers read this file.
    """
    import json
    import time
    from pathlib import Path

    from momentumlab.theory.claims import finite, resolution, run_controls

    out = {"quick": quick, "seed": seed, "claims": {}}
    if only and Path(path).exists():  # keep the claims recorded before
        out = json.loads(Path(path).read_text())
    for cid in (only or [c for c in REGISTRY if c.startswith("rodflow.")]):
        c = REGISTRY[cid]
        t0 = time.process_time()
        r = c.check(seed=seed, quick=quick)
        out["claims"][cid.split(".", 1)[1]] = {  # "toys": dots would split the docs' num keys
            "status": c.derive().status, "passed": bool(r.passed), "error": finite(r.error),
            "tolerance": finite(r.tolerance), "cpu_seconds": time.process_time() - t0,
            "controls_rejected": all(o.rejected for o in run_controls(c.all_controls, r)),
            "resolution": resolution(r), "details": r.details}
        with open(path, "w") as fh:
            json.dump(out, fh, indent=1, default=_jsonable)
    return out


def _jsonable(x):
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, (np.floating, np.integer, np.bool_)):
        return x.item()
    return str(x)


if __name__ == "__main__":  # pragma: no cover
    import argparse

    from momentumlab.empirics.checks import load_claims

    ap = argparse.ArgumentParser(description="record the rodflow claims to JSON")
    ap.add_argument("path")
    ap.add_argument("--full", action="store_true")
    ap.add_argument("--only", nargs="+")
    ap.add_argument("--seed", type=int, default=0, help="offset of the seeds (initialisations)")
    a = ap.parse_args()
    load_claims()
    record(a.path, quick=not a.full, only=a.only, seed=a.seed)
