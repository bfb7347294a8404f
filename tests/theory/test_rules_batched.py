"""A rule batched over a leading axis (as the sweeps run it) equals the rule run per item.

AdamP's cosine test compares each row's |cos(g, w)| with delta/sqrt(row length): with a batch
axis in front the row length is the *last* axis.  The case below puts the cosine between
delta/sqrt(row length) and delta/sqrt(row count), so reading the wrong axis changes which
view is projected, and the batched step departs from the per-item one.
"""
import numpy as np

from momentumlab.theory.ops import numpy_ops
from momentumlab.theory.rules import get_rule

ROWS, COLS, DELTA = 4, 16, 0.1  # thresholds delta/sqrt(16) = 0.025 < delta/sqrt(4) = 0.05


def _gradient_at_cosine(w, cos, rng):
    """Per row, a gradient whose cosine with the row of ``w`` is ``cos``."""
    g = np.empty_like(w)
    for r, row in enumerate(w):
        u = row / np.linalg.norm(row)
        perp = rng.standard_normal(row.shape)
        perp -= (perp @ u) * u
        perp /= np.linalg.norm(perp)
        g[r] = cos * u + np.sqrt(1 - cos**2) * perp
    return g


def test_adamp_batched_equals_per_item_between_the_two_thresholds():
    rng = np.random.default_rng(0)
    rule = get_rule("adamp")
    hyper = rule.hyper(lr=0.1, delta=DELTA)
    ws = rng.standard_normal((3, ROWS, COLS))
    gs = np.stack([_gradient_at_cosine(w, 0.035, rng) for w in ws])
    single, batched = numpy_ops(0), numpy_ops(1)
    expected = [rule.step(w, g, rule.init(w, single), hyper, single)[0] for w, g in zip(ws, gs)]
    got, _ = rule.step(ws, gs, rule.init(ws, batched), hyper, batched)
    np.testing.assert_allclose(got, np.stack(expected), rtol=1e-12, atol=0)
    # the case is sharp: here no view is projected (0.035 > 0.025 per row, and the whole tensor
    # fails its own test), and a projected step would differ visibly from it
    projected = rule.step(ws[0], gs[0], rule.init(ws[0], single), rule.hyper(lr=0.1, delta=None),
                          single)[0]
    assert np.max(np.abs(expected[0] - projected)) > 1e-3
