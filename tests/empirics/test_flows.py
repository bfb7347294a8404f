"""empirics.flows: the race, the cancellation-free odd part, batching, the stable flow."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from momentumlab.empirics import flows


def quad(lam):
    return lambda w: 0.5 * (lam * w * w).sum()


def test_stable_flow_is_gradient_flow_closed_form():
    lam = torch.tensor([1.0, 3.0], dtype=torch.float64)
    w0 = torch.tensor([1.0, -2.0], dtype=torch.float64)
    r = flows.race(quad(lam), w0, "gd", {"lr": 0.1}, 20, flows=("discrete", "stable"),
                   sharpness_every=0)
    exact = (w0 * torch.exp(-0.1 * lam * 20)).numpy()
    np.testing.assert_allclose(r.iterates["stable"][20, 0], exact, rtol=1e-5)


def test_odd_part_without_cancellation_is_the_hvp():
    # GD on a quadratic: 1/2[F(c+d) - F(c-d)] = -eta H d exactly; with ||d|| = 1e-13 ||c|| the
    # direct difference has no correct digit, the rescaled one must be accurate to ~1e-10
    lam = torch.tensor([2.0, 7.0, 0.5], dtype=torch.float64)
    loss = lambda w: 0.5 * (lam * w * w).sum() + 0.1 * (w ** 4).sum() * 0  # noqa: E731
    problem = flows._Problem(loss, 1, 3, torch.device("cpu"))
    opt = flows._Optimizer("gd", {"lr": 0.3}, 1, torch.device("cpu"), flows.DEFAULT_RATE)
    c = flows.Z({"w": torch.tensor([[1.0, -3.0, 2.0]], dtype=torch.float64)})
    d = flows.Z({"w": torch.tensor([[1e-13, 2e-13, -1e-13]], dtype=torch.float64)})
    rod = flows.Rod(opt, problem, c, c, None)
    dc, dd, _ = rod.field(c, d, None)
    odd = -dd["w"] - 2 * d["w"]
    exact = -0.3 * lam * d["w"]
    assert torch.allclose(odd, exact, rtol=1e-8, atol=0)


def test_batched_step_sizes_equal_separate_runs():
    f, w0, _ = flows.toy("minimal", quick=True)
    both = flows.race(f, w0, "gd", {"lr": [0.25, 0.3]}, 40, flows=("discrete", "rod"),
                      sharpness_every=0)
    one = flows.race(f, w0, "gd", {"lr": 0.3}, 40, flows=("discrete", "rod"), sharpness_every=0)
    np.testing.assert_allclose(both.iterates["rod"][:41, 1], one.iterates["rod"][:41, 0],
                               rtol=1e-10, atol=1e-12)


def test_rod_tracks_gd_on_a_stable_two_cycle():
    # w^2/2 - w^4/4 at eta S = 2.5: GD's 2-cycle is stable; the rod must land on it exactly
    r = flows.race(lambda w: (w ** 2).sum() / 2 - (w ** 4).sum() / 4, torch.tensor([0.4]), "gd",
                   {"lr": 2.5}, 300, flows=("discrete", "rod"), sharpness_every=0)
    assert r.error["rod"][-1, 0] < 1e-9
    assert r.amplitude["rod"][-1, 0] == pytest.approx(math.sqrt(1 - 2 / 2.5), rel=1e-9)


def test_seed_floor_keeps_the_rod_alive():
    f, w0, _ = flows.toy("minimal", quick=True)
    r = flows.race(f, w0, "gd", {"lr": 0.3}, 60, flows=("discrete", "rod"), sharpness_every=0)
    c = np.linalg.norm(r.iterates["rod"][:61, 0], axis=-1)
    assert np.all(r.amplitude["rod"][:61, 0] >= 0.99 * flows.SEED_FLOOR * c)


@pytest.mark.parametrize("opt", ["heavy_ball", "adam", "scalar_rmsprop", "tam", "vradam"])
def test_race_runs_every_kind_of_phase_space(opt):
    f, w0, _ = flows.toy("minimal", quick=True)
    r = flows.race(f, w0, opt, {"lr": 0.01}, 10, sharpness_every=5)
    assert np.all(np.isfinite(r.error["rod"]))
    if opt not in flows.CENTRAL_OPTIMIZERS:
        assert "central" not in r.flows and r.notes


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown flow"):
        flows.race(quad(torch.ones(1)), torch.ones(1), "gd", {"lr": 0.1}, 5, flows=("rod", "edge"))
    with pytest.raises(ValueError, match="steps"):
        flows.race(quad(torch.ones(1)), torch.ones(1), "gd", {"lr": 0.1}, 0)
    with pytest.raises(KeyError, match="known"):
        flows.toy("nope")
    with pytest.raises(KeyError, match="known"):
        flows.network("resnet")


def test_network_loss_is_the_eos_mlp_loss():
    f, w0 = flows.network("mlp", n=50, width=8, seeds=(0, 1))
    assert w0.shape[0] == 2 and torch.isfinite(f(w0[0]))
    assert not torch.equal(w0[0], w0[1])


def test_top_eig_batched_lanczos_matches_dense_hessian_on_a_network():
    # P > 64: the batched Lanczos path; its eigenpair against torch.linalg.eigh of the dense
    # Hessian (torch.func.hessian, an independent route), with and without a preconditioner
    f, w0 = flows.network("mlp", n=16, width=2, seeds=(0, 1))
    B, P = w0.shape
    assert P > 64
    problem = flows._Problem(f, B, P, torch.device("cpu"))
    H = torch.func.vmap(torch.func.hessian(f))(w0)
    scale = torch.rand(B, P, generator=torch.Generator().manual_seed(1), dtype=torch.float64) + 0.5
    for s in (None, scale):
        Hs = H if s is None else s[:, :, None] * H * s[:, None, :]
        ev = torch.linalg.eigvalsh(Hs)
        ref, gap = ev[:, -1], ev[:, -1] - ev[:, -2]
        lam, vec = problem.top_eig(w0, scale=s)
        res = (Hs @ vec[:, :, None])[:, :, 0] - lam[:, None] * vec
        r = res.norm(dim=1)
        # the acceptance rule: residual <= LANCZOS_TOL max(1, |lambda|)
        assert bool((r <= flows.LANCZOS_TOL * lam.abs().clamp_min(1)).all())
        # a Ritz value with residual r is within r^2 / gap of the eigenvalue (Kato-Temple), the
        # gap from the dense spectrum; 1e-12 |lambda| covers eigvalsh's own rounding
        assert bool(((lam - ref).abs() <= r**2 / gap + 1e-12 * ref.abs()).all())


def test_preconditioned_sharpness_dense_and_lanczos_paths_agree():
    # _eff_sharpness: P <= 64 dense, else Lanczos; both eta * lambda_max(P^-1/2 H P^-1/2) with
    # P = sqrt(nu): a wrong power of nu in either path shows as a factor nu^(1/4) ~ 0.3 here
    f, w0 = flows.network("mlp", n=16, width=2, seeds=(0,))
    P = w0.shape[1]
    nu = torch.full((1, P), 0.01, dtype=torch.float64)

    class _Disc:
        z = {"w": w0}

    _Disc.nu = nu
    opt = flows._Optimizer("rmsprop", {"lr": 0.1}, 1, torch.device("cpu"), flows.DEFAULT_RATE)
    lanczos = flows._eff_sharpness(flows._Problem(f, 1, P, torch.device("cpu")), opt, _Disc)
    H = torch.func.hessian(f)(w0[0])
    expected = 0.1 * float(torch.linalg.eigvalsh(H / 0.1)[-1])  # P^-1 H with P = sqrt(nu) = 0.1
    assert abs(lanczos[0] / expected - 1) < 1e-8

    tiny = flows._Problem(quad(torch.tensor([1.0, 4.0], dtype=torch.float64)), 1, 2,
                          torch.device("cpu"))

    class _Tiny:
        z = {"w": torch.tensor([[1.0, 1.0]], dtype=torch.float64)}
        nu = torch.tensor([[0.25, 0.01]], dtype=torch.float64)

    dense = flows._eff_sharpness(tiny, opt, _Tiny)
    assert abs(dense[0] / (0.1 * max(1.0 / 0.5, 4.0 / 0.1)) - 1) < 1e-12


def test_stiff_stable_flow_leaves_rk45_inside_the_solver_and_finishes():
    # S_eff = eta * lambda = 1e6: RK45 would need ~1e6 evaluations per unit of time; the cap
    # must stop it inside solve_ivp (the hang of the first network recordings), and the
    # implicit path then finishes at a few dozen evaluations per step
    lam = torch.tensor([1e7, 1.0], dtype=torch.float64)
    r = flows.race(quad(lam), torch.tensor([1.0, 1.0], dtype=torch.float64), "gd", {"lr": 0.1}, 2,
                   flows=("discrete", "stable"), sharpness_every=0)
    assert any("stable flow stiff at step 0" in n for n in r.notes)
    assert r.costs["stable"]["gradients_per_step"] <= flows.MAX_STABLE_NFEV + 100
    np.testing.assert_allclose(r.iterates["stable"][2, 0], [0.0, math.exp(-0.2)], rtol=1e-5, atol=1e-8)


def test_network_mlp_drops_pixels_constant_over_the_samples():
    from momentumlab.empirics.data import digits

    x, _ = digits(n=64)
    varying = int((x != x[:1]).any(dim=0).sum())
    f, w0 = flows.network("mlp", n=64, width=8, seeds=(0,))
    assert w0.shape[1] == varying * 8 + 8 + 8 * 8 + 8 + 8 * 10 + 10
    w = w0[0].clone().requires_grad_(True)
    g = torch.autograd.grad(f(w), w)[0]
    assert int((g[:varying * 8] == 0).sum()) == 0  # no first-layer weight without a gradient


def _synthetic_race(sign):
    """Discrete iterates ``c + (-1)^t d`` and a rod that predicts ``c - sign (-1)^t d``."""
    T, B, P = 30, 1, 2
    t = np.arange(T + 1)[:, None, None]
    c = np.broadcast_to(np.array([1.0, -2.0]), (T + 1, B, P)) + 0.01 * t
    d = np.broadcast_to(np.array([0.3, 0.1]), (T + 1, B, P))
    alt = np.where(t % 2 == 0, 1.0, -1.0)
    w = c + alt * d
    hat = c - sign * alt * d
    return flows.Race("gd", {}, ("discrete", "rod"), T, {"discrete": w, "rod": hat}, {}, {}, None,
                      {}, np.full((T + 1, B), np.nan), 2.0, {}, rod_centre=c), w


def test_parity_aligned_takes_the_other_end_of_the_rod_when_out_of_phase():
    # the rod in phase (its prediction is the discrete iterate): kept as predicted
    r, w = _synthetic_race(-1.0)
    aligned, agrees = flows.parity_aligned(r, [5])
    assert agrees.tolist() == [True] and np.allclose(aligned, w, rtol=0, atol=1e-12)
    # out of phase (the other end at every step): replaced by 2c - w_hat, which is w here
    r, w = _synthetic_race(1.0)
    assert np.linalg.norm(r.iterates["rod"] - w, axis=-1).min() > 0.6  # 2 ||d|| apart
    aligned, agrees = flows.parity_aligned(r, [5])
    assert agrees.tolist() == [False] and np.allclose(aligned, w, rtol=0, atol=1e-12)


def test_parity_aligned_reads_only_the_onset_window():
    # the rod's parity flips after the onset window: the alignment read at the onset is kept, so
    # the error after the flip shows (a wrong phase later is a tracking error, not alignment)
    r, w = _synthetic_race(-1.0)
    r.iterates["rod"][20:] = 2 * r.rod_centre[20:] - r.iterates["rod"][20:]
    aligned, agrees = flows.parity_aligned(r, [5], window=10)
    assert agrees.tolist() == [True]
    assert np.allclose(aligned[:20], w[:20]) and not np.allclose(aligned[20:], w[20:])
    with pytest.raises(ValueError, match="rod flow"):
        flows.parity_aligned(flows.Race("gd", {}, ("discrete",), 1, {}, {}, {}, None, {}, None,
                                        2.0, {}), [0])
