"""Hypothesis: for random hyperparameters every class still equals its rule (float64, 4 steps).

30 examples per optimizer (not the ``ci`` profile's 200): each example builds an optimizer and
runs the numpy oracle, ~20 ms, and the 20-step parity tests already cover the structure; the
draws here cover the hyperparameter ranges.
"""
from hypothesis import given, settings, strategies as st

from tests.empirics.optim.harness import run_parity

unit = st.floats(0.0, 0.99)
small = st.floats(1e-4, 0.3)
SHAPES = [(), (5,), (4, 3), (3, 2, 2, 2)]
few = settings(max_examples=30)
# delta = 0 never projects; a positive delta far below 1e-3 puts the threshold delta/sqrt(n) among
# the rounding noise of the cosine of an exactly orthogonal gradient (~1e-17), where the decision
# is arbitrary in any implementation
delta = st.one_of(st.just(0.0), st.floats(1e-3, 2.0))


@few
@given(lr=small, b1=unit, b2=unit, beta3=st.floats(0, 50), alpha1=st.floats(0, 30),
       eps=st.floats(1e-10, 1e-2), wd=st.floats(0, 0.5), power=st.sampled_from([1.0, 2.0, 2.5]),
       scope=st.sampled_from(["global", "group", "tensor"]), gate=st.sampled_from(["velocity", "gradient"]),
       maximize=st.booleans(), fused=st.booleans())
def test_vradam(lr, b1, b2, beta3, alpha1, eps, wd, power, scope, gate, maximize, fused):
    run_parity("VRAdam", steps=4, shapes=SHAPES, lr=lr, betas=(b1, b2), beta3=beta3, alpha1=alpha1,
               eps=eps, weight_decay=wd, power=power, norm_scope=scope, gate=gate,
               maximize=maximize, fused=fused)


@few
@given(lr=small, b1=unit, b2=unit, eps=st.floats(1e-10, 1e-2), wd=st.floats(0, 0.5),
       delta=delta, wd_ratio=st.floats(0, 1), nesterov=st.booleans(), maximize=st.booleans())
def test_adamp(lr, b1, b2, eps, wd, delta, wd_ratio, nesterov, maximize):
    run_parity("AdamP", steps=4, shapes=SHAPES, lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd,
               delta=delta, wd_ratio=wd_ratio, nesterov=nesterov, maximize=maximize)


@few
@given(lr=small, mu=unit, damp=unit, wd=st.floats(0, 0.1), delta=delta,
       wd_ratio=st.floats(0, 1), nesterov=st.booleans(), maximize=st.booleans(),
       project_buffer=st.booleans())
def test_sgdp(lr, mu, damp, wd, delta, wd_ratio, nesterov, maximize, project_buffer):
    run_parity("SGDP", steps=4, shapes=SHAPES, lr=lr, momentum=mu, dampening=damp, weight_decay=wd,
               delta=delta, wd_ratio=wd_ratio, nesterov=nesterov, maximize=maximize,
               project_buffer=project_buffer)


@few
@given(lr=small, mu=unit, decay=unit, eps=st.floats(0, 0.1), wd=st.floats(0, 0.5),
       scope=st.sampled_from(["tensor", "global"]), maximize=st.booleans())
def test_tam(lr, mu, decay, eps, wd, scope, maximize):
    run_parity("TAM", steps=4, shapes=SHAPES, lr=lr, momentum=mu, decay=decay, eps=eps,
               weight_decay=wd, cosine_scope=scope, maximize=maximize)


@few
@given(lr=small, b1=unit, b2=unit, decay=unit, eps=st.floats(1e-10, 1e-2), wd=st.floats(0, 0.5),
       bc=st.booleans(), scope=st.sampled_from(["tensor", "global"]), maximize=st.booleans())
def test_adatam(lr, b1, b2, decay, eps, wd, bc, scope, maximize):
    run_parity("AdaTAM", steps=4, shapes=SHAPES, lr=lr, betas=(b1, b2), decay=decay, eps=eps,
               weight_decay=wd, bias_correction=bc, cosine_scope=scope, maximize=maximize)
