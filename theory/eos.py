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

from momentumlab.theory.claims import Claim, Derivation, Step, is_zero, register
from momentumlab.theory.stability import H, analyse, display_form

__all__ = ["threshold", "threshold_times_lr", "HOVER_TOL", "LATE_FRACTION", "OPTIMIZERS"]

#: relative tolerance of "hovers" and the late window (fraction of the run's steps)
HOVER_TOL = 0.10
LATE_FRACTION = 0.4
#: eos optimizer -> stability model whose threshold applies (VRAdam: gate G = 0 at rate eta_t)
OPTIMIZERS = {"gd": "gd", "heavy_ball": "heavy_ball", "adam": "adam", "vradam": "vradam"}

_ETA = sp.Symbol("eta", positive=True)
_ETA_T = sp.Symbol("eta_t", positive=True)
_ALPHA0 = sp.Symbol("alpha0", positive=True)


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
    an = analyse(OPTIMIZERS[optimizer])
    steps = list(an.steps)
    h = an.threshold
    if optimizer == "vradam":
        G = an.model.param("G").symbol
        eta_t = _ALPHA0 / (1 + G)
        crit = h / _ALPHA0
        target = h.subs(G, 0) / eta_t
        diff = sp.simplify(crit - target)
        steps.append(Step("VRAdam: alpha0*lambda < B(beta)(1 + G) with eta_t = alpha0/(1 + G) is "
                          "lambda < B(beta)/eta_t", diff, is_zero(diff)))
        expr = h.subs(G, 0) / _ETA_T
    else:
        expr = h / _ETA
        crit = sp.solve(sp.Eq(H, h), H)[0] / _ETA
        steps.append(Step("eta*lambda = threshold  <=>  lambda = threshold/eta (the sharpness "
                          "S at which a period-2 mode appears)", sp.simplify(crit - expr),
                          is_zero(crit - expr)))
    steps.append(Step("the network claim (measured, not derived): full-batch training drives the "
                      "(preconditioned) sharpness up to this value and it hovers there "
                      "(Cohen et al. 2021, 2022)"))
    point = {p.symbol: p.default for p in an.model.params}
    if not an.proved:
        steps.append(Step("some Schur-Cohn condition was not closed by sympy", proved=False))
    return Derivation.from_steps(display_form(expr, point), steps)


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
                f"the steps within {int(HOVER_TOL * 100)}% of the threshold times eta",
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
