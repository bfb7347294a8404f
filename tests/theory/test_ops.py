"""The arithmetic namespaces against their contract (theory.ops.Ops docstring), with explicit
loops as the oracle: batch axes in front are kept, parameter axes reduced."""
import numpy as np
import pytest
import sympy as sp

from momentumlab.theory.ops import DIM, INDEX, SYMPY_INDEXED, SYMPY_SCALAR, numpy_ops

RNG = np.random.default_rng(3)


@pytest.mark.parametrize("batch", [0, 1, 2])
def test_numpy_ops_reduce_parameter_axes_only(batch):
    ops = numpy_ops(batch)
    bshape, pshape = (2, 3)[:batch], (4, 3, 2)
    x, y = RNG.normal(size=bshape + pshape), RNG.normal(size=bshape + pshape)
    assert ops.ndim(x) == len(pshape)
    inner = ops.inner(x, y)
    for idx in np.ndindex(*bshape):
        want = sum(x[idx][p] * y[idx][p] for p in np.ndindex(*pshape))
        assert np.ravel(inner[idx])[0] == pytest.approx(want, rel=1e-12)
        rows, flat = ops.rows(x)[idx], ops.flat(x)[idx]
        assert rows.shape == (4, 6) and flat.shape == (1, 24)
        assert np.array_equal(rows[1], x[idx][1].ravel()) and np.array_equal(flat[0], x[idx].ravel())
        r_in = ops.row_inner(ops.rows(x), ops.rows(y))[idx]
        assert r_in.shape == (4, 1)
        assert r_in[2, 0] == pytest.approx(float(np.dot(x[idx][2].ravel(), y[idx][2].ravel())))
        assert np.ravel(ops.amax_rows(ops.rows(x))[idx])[0] == x[idx].max()
    if batch:
        assert inner.shape == bshape + (1, 1, 1)
        assert ops.amax_rows(ops.rows(x)).shape == bshape + (1, 1)
    else:
        assert np.ndim(inner) == 0
    assert ops.unview(ops.rows(x), x).shape == x.shape


def test_sympy_modes():
    x, y = sp.IndexedBase("x"), sp.IndexedBase("y")
    s = SYMPY_INDEXED.inner(x[INDEX], 2 * y[INDEX]).subs(DIM, 3).doit()
    assert sp.expand(s - 2 * sum(x[k] * y[k] for k in (1, 2, 3))) == 0
    s = SYMPY_INDEXED.row_inner(x[INDEX], y[INDEX]).subs(DIM, 2).doit()
    assert sp.expand(s - x[1] * y[1] - x[2] * y[2]) == 0
    a, b = sp.symbols("a b")
    assert SYMPY_SCALAR.inner(a, b) == a * b and SYMPY_SCALAR.row_inner(a, b) == a * b
    for ops in (SYMPY_INDEXED, SYMPY_SCALAR):
        assert a + ops.zeros_like(a) == a  # an additive zero
    # a parameter is a vector (one axis) in indexed mode, a scalar in scalar mode
    assert SYMPY_INDEXED.ndim(x[INDEX]) == np.ndim(np.zeros(3))
    assert SYMPY_SCALAR.ndim(a) == np.ndim(0.0)
