"""Experiments for the stability claims (``theory.stability``).

Each threshold is *located* by simulating the rule of :mod:`theory.rules` (batched
torch, float64, :mod:`empirics.sweeps`) -- never read off the formula: for every
row (a value of ``beta``, ...) a geometric grid of ``x = eta*lam`` between 1e-2
and 1e4 is simulated, the first ``x`` past the threshold is found from the
simulated iterates, and the bracket is refined (``ROUNDS`` times ``POINTS``
points).  "Past the threshold" for a linear map is a growing envelope: the
estimate ``ln rho = (ln max|w| over the last quarter - ln max|w| over the second
quarter)/(T/2)`` is positive.  For a period-2 (real negative) dominant root the
window maxima sit at the window ends, so the estimate is exact up to round-off
and the subdominant mode (``(|mu_2|/|mu_1|)^(T/4)``): the located threshold is
the midpoint of a bracket of relative width ``< 5e-5`` and sits within ``1e-4`` of
the true crossing.  Tolerance for the linear claims: ``1e-3`` relative (a 10x
margin); a wrong closed form (e.g. ``2 + beta`` for ``2 + 2 beta``) misses by
> 5%.
"""
from __future__ import annotations

import math

import numpy as np

from momentumlab.empirics.checks import attach
from momentumlab.empirics.sweeps import PY_FLOAT, classify, growth_rate, simulate, sweep
from momentumlab.theory.claims import CheckResult, Control, get_claim
from momentumlab.theory.rules import get_rule
from momentumlab.theory.stability import MODELS, analyse, get_model

__all__ = ["locate", "LINEAR_TOL", "linear_check", "vradam_check", "tam_check", "tam_cosine_phase"]

LINEAR_TOL = 1e-3
NONLINEAR_TOL = 1e-2
BETAS = (0.0, 0.5, 0.9)


def _settings(quick: bool) -> dict:
    return dict(steps=2000, rounds=4, points=32) if quick else dict(steps=8000, rounds=5, points=48)


def locate(optimizer, predicate, y_name=None, ys=None, fixed=None, *, steps, rounds, points,
           device="cpu", mode="frozen", lo=1e-2, hi=1e4) -> np.ndarray:
    """Per row, the smallest ``x`` where ``predicate(simulate(...))`` turns True (geometric midpoint).

    ``nan`` where the grid never brackets a change (past everywhere or nowhere).
    """
    ny = 1 if ys is None else len(ys)
    lo_r, hi_r = np.full(ny, float(lo)), np.full(ny, float(hi))
    ok = np.ones(ny, dtype=bool)
    for _ in range(rounds):
        X = np.exp(np.linspace(np.log(lo_r), np.log(hi_r), points, axis=1))
        past = np.asarray(predicate(simulate(optimizer, X, y_name, ys, fixed, steps, device, mode)))
        for r in range(ny):
            idx = np.flatnonzero(past[r])
            if len(idx) == 0 or idx[0] == 0:
                ok[r] = False
                continue
            lo_r[r], hi_r[r] = X[r, idx[0] - 1], X[r, idx[0]]
    return np.where(ok, np.sqrt(lo_r * hi_r), np.nan)


def _growing(res) -> np.ndarray:
    return growth_rate(res) > 0


def _rel(measured, predicted) -> np.ndarray:
    return np.abs(np.asarray(measured) / np.asarray(predicted) - 1)


def _result(predicted, measured, rows, tol, extra=None, also=True) -> CheckResult:
    """Rows ``{"predicted", "measured", ...}`` judged by max relative error <= ``tol``;
    ``also``: the rest of the verdict, a measured fact that does not depend on the prediction."""
    located = np.array([r["measured"] for r in rows], dtype=float)

    def compare(prediction):
        """Max relative error of the located thresholds against ``prediction`` (one per row)."""
        errors = _rel(located, np.asarray(prediction, dtype=float))
        err = float(np.max(errors)) if rows and np.all(np.isfinite(errors)) else math.inf
        return err, bool(err <= tol and also)

    prediction = np.array([r["predicted"] for r in rows], dtype=float)
    err, passed = compare(prediction)
    details = {"rows": rows, "tolerance_kind": "relative, max over rows", **(extra or {})}
    return CheckResult(predicted, measured, err, tol, passed, details, compare=compare,
                       prediction=prediction)


def linear_check(name: str, device="cpu", seed: int = 0, quick: bool = True) -> CheckResult:
    """Locate the threshold of the (frozen) rule for beta in BETAS and compare with the formula."""
    model, an, cfg = get_model(name), analyse(name), _settings(quick)
    has_beta = "beta" in model.defaults()
    ys = np.array(sorted(set(BETAS) | {model.defaults()["beta"]})) if has_beta else None
    measured = locate(name, _growing, "beta" if has_beta else None, ys, device=device, **cfg)
    params = [{"beta": float(b)} for b in ys] if has_beta else [{}]
    predicted = [an.threshold_value(p) for p in params]
    rows = [{**p, "predicted": pr, "measured": float(m), "rel_error": float(_rel(m, pr))}
            for p, pr, m in zip(params, predicted, measured)]
    head = next(r for r in rows if not has_beta or r["beta"] == model.defaults()["beta"])
    extra = {"steps": cfg["steps"], "mode": "frozen", "criterion": "envelope growth rate > 0"}
    if name == "adam":
        extra["running_second_moment"] = _adam_running(device, quick)
    return _result(head["predicted"], head["measured"], rows, LINEAR_TOL, extra)


def _adam_running(device, quick) -> dict:
    """Adam as written (running v, beta2 = 0.999) on the same grid: what happens past 38."""
    x = np.geomspace(1, 1000, 48)
    sw = sweep("adam", x, "beta", np.array([0.9]), steps=2000 if quick else 8000,
               device=device, mode="running")
    past = x > analyse("adam").threshold_value({"beta": 0.9})
    out = sw.outcome[0]
    return {"cells_past_threshold": int(past.sum()),
            "diverged_past_threshold": int((out[past] == 2).sum()),
            "converged_past_threshold": int((out[past] == 0).sum()),
            "note": "with the running second moment the instability inflates v and P until "
                    "eta*lambda/P falls back below the threshold: no cell diverges (adaptive EoS)"}


def vradam_check(device="cpu", seed: int = 0, quick: bool = True) -> CheckResult:
    """VRAdam (gate live, P frozen): convergence lost at B(beta1), divergence from B(beta1)(1+alpha1)."""
    an, cfg = analyse("vradam"), _settings(quick)
    model = get_model("vradam")
    ys = np.array(BETAS)
    a1 = model.defaults()["alpha1"]
    # past B: no longer decaying; past B(1+alpha1): the envelope grows again (gate saturated)
    lost = locate("vradam", lambda r: growth_rate(r) > -1e-3, "beta", ys, device=device, **cfg)
    grows = locate("vradam", lambda r: growth_rate(r) > 1e-3, "beta", ys, device=device, **cfg)
    rows = []
    for b, m1, m2 in zip(ys, lost, grows):
        p1 = an.threshold_value({"beta": float(b), "G": 0.0})
        p2 = an.threshold_value({"beta": float(b), "G": a1})
        rows.append({"beta": float(b), "kind": "fixed point loses stability (G = 0)",
                     "predicted": p1, "measured": float(m1), "rel_error": float(_rel(m1, p1))})
        rows.append({"beta": float(b), "kind": "divergence once the gate saturates (G = alpha1)",
                     "predicted": p2, "measured": float(m2), "rel_error": float(_rel(m2, p2))})
    between = _vradam_bounded(device, quick)
    head = rows[-1]
    return _result(head["predicted"], head["measured"], rows, NONLINEAR_TOL,
                   {"steps": cfg["steps"], "alpha1": a1, "beta3": model.defaults()["beta3"],
                    "bounded_between": between,
                    "criteria": "lost: envelope rate > -1e-3; diverging: envelope rate > +1e-3"},
                   also=between["all_bounded"])


def _vradam_bounded(device, quick) -> dict:
    """Between B and B(1+alpha1) the gate keeps the motion bounded (no convergence, no divergence)."""
    an = analyse("vradam")
    lo, hi = an.threshold_value({"G": 0.0}), an.threshold_value({"G": 10.0})
    x = np.linspace(lo, hi, 34)[1:-1] * np.r_[1.02, np.ones(30), 0.98]
    sw = sweep("vradam", x, "beta", np.array([0.9]), steps=2000 if quick else 8000, device=device)
    labels = sw.labels()[0]
    return {"x_range": [float(x[0]), float(x[-1])], "outcomes": sorted(set(labels)),
            "all_bounded": all(v == "bounded" for v in labels)}


def tam_cosine_phase(beta: float, f: float, gamma: float = 0.9, eps: float = 1e-8,
                     after: int = 3000) -> dict:
    """Actual TAM from the unstable period-2 mode of the d = 1 map with s_hat_0 = 1.

    Predicted (theory.stability, stability.tam): cos(m_{t-1}, g_t) = -1 on every step
    of the growth phase, so ``s_hat_t = -1 + 2 gamma^t`` exactly, and the phase ends
    after ``ceil(ln f / ln(1/gamma))`` steps (when ``x (gamma^t + eps) <= 2 + 2 beta``).
    """
    rule = get_rule("tam")
    x = f * (2 + 2 * beta) / (1 + eps)
    A = np.array([[1 - x * (1 + eps), -x * beta], [1 + eps, beta]])
    ev, vec = np.linalg.eig(A)
    i = int(np.argmin(ev.real))
    W, M = vec[:, i].real / abs(vec[0, i].real)
    h = rule.hyper(lr=x, momentum=beta, decay=gamma, eps=eps)
    w, st = float(W), {"momentum_buffer": float(M), "s_hat": 1.0}
    cos, err, t = [], 0.0, 0
    while x * ((1 + st["s_hat"]) / 2 + eps) > 2 + 2 * beta and t < 10_000:
        cos.append(float(np.sign(st["momentum_buffer"] * w)))
        w, st = rule.step(w, w, st, h, PY_FLOAT)
        t += 1
        err = max(err, abs(st["s_hat"] - (-1 + 2 * gamma**t)))
    amp = 0.0
    for k in range(after):
        w, st = rule.step(w, w, st, h, PY_FLOAT)
        if not math.isfinite(w):
            amp = math.inf
            break
        if k >= after * 3 // 4:
            amp = max(amp, abs(w))
    outcome = "diverged" if not amp < 1e6 else "converged" if amp < 1e-6 else "bounded"
    return {"beta": beta, "f": f, "eta_lambda": x, "unstable_root": float(ev[i].real),
            "phase_steps": t, "predicted_phase_steps": math.ceil(math.log(f) / math.log(1 / gamma)),
            "cos_all_minus_one": bool(cos) and all(c == -1 for c in cos),
            "s_hat_max_error": err, "outcome_after": outcome}


def tam_check(device="cpu", seed: int = 0, quick: bool = True) -> CheckResult:
    """Fixed-d thresholds located by simulation; the cosine phase against its prediction."""
    an, cfg = analyse("tam"), _settings(quick)
    ys = np.array(BETAS)
    rows = []
    for d in (1.0, 0.5, 0.25):
        m = locate("tam", _growing, "beta", ys, {"d": d}, device=device, **cfg)
        for b, mb in zip(ys, m):
            p = an.threshold_value({"beta": float(b), "d": d})
            rows.append({"beta": float(b), "d": d, "predicted": p, "measured": float(mb),
                         "rel_error": float(_rel(mb, p))})
    phases = [tam_cosine_phase(b, f) for b in BETAS for f in (1.5, 3.0, 6.0)]
    cos_ok = all(p["cos_all_minus_one"] and p["s_hat_max_error"] < 1e-12
                 and p["phase_steps"] == p["predicted_phase_steps"] for p in phases)
    running = locate("tam", lambda r: classify(r) == 2, "beta", ys, device=device,
                     mode="running", lo=0.5, **{**cfg, "rounds": 2})
    head = next(r for r in rows if r["beta"] == 0.9 and r["d"] == 1.0)
    return _result(head["predicted"], head["measured"], rows, LINEAR_TOL, {
        "steps": cfg["steps"], "mode": "frozen (decay 1, s_hat = 2d - 1)",
        "cosine_phase": phases, "cosine_prediction_holds": cos_ok,
        "cosine_tam_divergence_from_w0_1": [
            {"beta": float(b), "first_diverging_eta_lambda": float(m),
             "fixed_d1_threshold": an.threshold_value({"beta": float(b), "d": 1.0})}
            for b, m in zip(ys, running)]}, also=cos_ok)


def _row_params(row: dict) -> dict:
    return {k: row[k] for k in ("beta", "d") if k in row} | (
        {"G": 0.0 if row["kind"].startswith("fixed") else get_model("vradam").defaults()["alpha1"]}
        if "kind" in row else {})


def _formula_control(name: str, title: str, wrong):
    """The claim's threshold with ``wrong(params) -> params or factor`` applied, per check row."""
    an = analyse(name)

    def fn(r):
        out = []
        for row in r.details["rows"]:
            params, factor = wrong(_row_params(row))
            out.append(an.threshold_value(params) * factor)
        return np.array(out)

    return Control(title, fn)


def _controls(name: str) -> tuple:
    """beta -> beta^2, and 2 + 2 beta -> 2 + beta in the numerator (rows with beta > 0 catch it)."""
    if "beta" not in get_model(name).defaults():
        return ()
    return (_formula_control(name, "beta -> beta^2 in the threshold",
                             lambda p: ({**p, "beta": p["beta"] ** 2}, 1.0)),
            _formula_control(name, "2 + 2 beta -> 2 + beta (a wrong factor in B(beta))",
                             lambda p: (p, (2 + p["beta"]) / (2 + 2 * p["beta"]))))


QUANTITIES = ("predicted: the derived threshold on eta*lambda per row (beta, ...); measured: the "
              "threshold located by simulating the rule (bisection on the envelope growth); "
              "error: max relative difference over rows")
PASS_RULE = {"vradam": "every row within 1e-2 (both G = 0 and G = alpha1 rows) and bounded motion "
                       "(no convergence, no divergence) between B and B(1 + alpha1)",
             "tam": "every (beta, d) row within 1e-3 and the cosine phase as predicted "
                    "(cos = -1, s_hat = -1 + 2 gamma^t, phase length)"}


def _attach_all() -> None:
    for name in MODELS:
        claim = get_claim(f"stability.{name}")
        claim.controls = _controls(name)
        claim.quantities = QUANTITIES
        claim.pass_rule = PASS_RULE.get(name, "every row within 1e-3 relative")
        if name == "vradam":
            attach("stability.vradam")(vradam_check)
        elif name == "tam":
            attach("stability.tam")(tam_check)
        else:
            attach(f"stability.{name}")(
                lambda device="cpu", seed=0, quick=True, _n=name: linear_check(_n, device, seed, quick))


_attach_all()
