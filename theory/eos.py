"""Edge of stability on networks (claims ``eos.*``): the sharpness thresholds.

The thresholds are those of :mod:`theory.stability` (rule -> iteration matrix ->
Schur test on ``f = lam w^2/2``, solved for ``h = eta*lam``), divided by the step
size: the (preconditioned) sharpness is predicted to rise and then hover at

* GD: ``2/eta`` (Cohen et al., ICLR 2021, arXiv 2103.00065);
* heavy ball (torch SGD momentum ``beta``): ``(2 + 2 beta)/eta`` (Cohen et al. 2022,
  arXiv 2207.14484, Sec. 3);
* Adam: ``lambda_max(P^{-1} H) = (2 + 2 beta1)/((1 - beta1) eta)``, 38/eta at
  ``beta1 = 0.9``, ``P = diag(sqrt(v_hat)) + eps`` (Cohen et al. 2022);
* VRAdam: ``(2 + 2 beta1)/((1 - beta1) eta_t)`` with the gated rate
  ``eta_t = alpha0/(1 + min(beta3 ||m_t||^2, alpha1))`` (Vaidhyanathan et al.,
  arXiv 2505.13196, Sec. 4) -- stability's ``B(beta1)(1 + G)/alpha0`` rewritten.

"Hovers" (issue 5): the median over the late window of ``eta_t * S_t`` is within
10% of the constant ``eta * threshold`` (2, 2 + 2 beta, B(beta1)).
"""
from __future__ import annotations

import sympy as sp

from momentumlab.theory.claims import Claim, Derivation, register
from momentumlab.theory.stability import analyse, display_form

__all__ = ["threshold", "threshold_times_lr", "HOVER_TOL", "LATE_FRACTION", "OPTIMIZERS"]

#: relative tolerance of "hovers" and the late window (fraction of the run's steps)
HOVER_TOL = 0.10
LATE_FRACTION = 0.4
#: eos optimizer -> stability model whose threshold applies (VRAdam: gate G = 0 at rate eta_t)
OPTIMIZERS = {"gd": "gd", "heavy_ball": "heavy_ball", "adam": "adam", "vradam": "vradam"}

_ETA = sp.Symbol("eta", positive=True)
_ETA_T = sp.Symbol("eta_t", positive=True)


def threshold_times_lr(optimizer: str, beta: float = 0.9) -> float:
    """``eta * S_crit`` (2, 2 + 2 beta, B(beta)); from :func:`theory.stability.analyse`."""
    model = OPTIMIZERS[optimizer]
    params = {"beta": beta} if analyse(model).model.params else {}
    if optimizer == "vradam":
        params["G"] = 0.0  # at the rate eta_t the gate is already inside eta_t
    return analyse(model).threshold_value(params)


def threshold(optimizer: str, lr: float, beta: float = 0.9) -> float:
    """The predicted sharpness ``S_crit = threshold_times_lr / lr`` (VRAdam: ``lr = eta_t``)."""
    return threshold_times_lr(optimizer, beta) / lr


def _derive(optimizer: str) -> Derivation:
    """An ``empirical`` claim: the prediction is another claim's threshold divided by the step.

    Nothing is proved here: sympy would only divide ``stability.<model>``'s threshold by eta.
    The derivation names that claim (and its own status) and what is measured.
    """
    model = OPTIMIZERS[optimizer]
    an = analyse(model)
    h = an.threshold
    if optimizer == "vradam":
        G = an.model.param("G").symbol
        expr, rate = h.subs(G, 0) / _ETA_T, ("eta_t, the gated rate alpha0/(1 + G) "
                                             "(rules.vr_gate) measured at each step")
        note = ("stability.vradam: alpha0*lambda < B(beta)(1 + G) with the gate frozen at G; "
                "with eta_t = alpha0/(1 + G) this is lambda < B(beta)/eta_t")
    else:
        expr, rate, note = h / _ETA, "eta, the constant step size", None
    point = {p.symbol: p.default for p in an.model.params}
    notes = [f"predicted: S_crit = (threshold of claim stability.{model}) / step size, with the "
             f"step size {rate}; that claim's status: {an.derivation().status}"]
    notes += [note] if note else []
    notes.append("measured (no symbolic statement): full-batch training of a network drives the "
                 "(preconditioned) sharpness up to S_crit and it hovers there (Cohen et al. 2021, "
                 "2022); the check compares the late-window median of eta_t * S_t with "
                 "eta * S_crit over several seeds")
    return Derivation.measurement(*notes, expression=display_form(expr, point))


_CLAIMS = {
    "gd": ("GD: the sharpness rises, then hovers at 2/eta", r"\lambda_{\max}(H_t)\to 2/\eta",
           "Cohen et al., ICLR 2021 (arXiv 2103.00065), Sec. 3"),
    "heavy_ball": ("Heavy ball: the sharpness hovers at (2 + 2 beta)/eta",
                   r"\lambda_{\max}(H_t)\to (2+2\beta)/\eta",
                   "Cohen et al. 2021 (arXiv 2103.00065), App.; Cohen et al. 2022 "
                   "(arXiv 2207.14484), Sec. 3"),
    "adam": ("Adam: lambda_max(P^-1 H) hovers at (2 + 2 beta1)/((1 - beta1) eta) = 38/eta",
             r"\lambda_{\max}(P_t^{-1}H_t)\to \frac{2+2\beta_1}{(1-\beta_1)\eta},\ "
             r"P_t=\mathrm{diag}(\sqrt{\hat v_t})+\epsilon",
             "Cohen et al. 2022 (arXiv 2207.14484), Sec. 3 (adaptive edge of stability)"),
    "vradam": ("VRAdam: lambda_max(P^-1 H) hovers at (2 + 2 beta1)/((1 - beta1) eta_t), eta_t measured",
               r"\lambda_{\max}(P_t^{-1}H_t)\to \frac{2+2\beta_1}{(1-\beta_1)\eta_t},\ "
               r"\eta_t=\frac{\alpha_0}{1+\min(\beta_3\|m_t\|^2,\alpha_1)}",
               "Vaidhyanathan et al., VRAdam (arXiv 2505.13196), Sec. 4 and Fig. 2"),
}

_ASSUMPTIONS = ("full-batch training (MSE, one-hot targets) of a small tanh MLP on digits",
                f"'hovers': median of eta_t*S_t over the last {int(LATE_FRACTION * 100)}% of "
                f"the steps within {int(HOVER_TOL * 100)}% of the threshold times eta, as the median "
                "over seeds (3 quick, 8 full) of the per-seed relative error; a seed whose loss "
                "becomes non-finite counts as an infinite error and is reported with its step",
                "preconditioner (adaptive methods): P = diag(sqrt(v_hat_t)) + eps, "
                "bias-corrected at the current step, frozen for the eigenvalue")


def _register(optimizer: str) -> Claim:
    title, statement, source = _CLAIMS[optimizer]
    return register(Claim(
        id=f"eos.{optimizer}", title=title, source=source, statement=statement,
        assumptions=_ASSUMPTIONS, derive_fn=lambda: _derive(optimizer),
        predict_fn=lambda lr=1.0, beta=0.9: threshold(optimizer, lr, beta)))


for _name in OPTIMIZERS:
    _register(_name)
