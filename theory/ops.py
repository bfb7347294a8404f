"""Arithmetic namespaces that let one update rule run on sympy, numpy and torch.

An update rule in :mod:`theory.rules` only uses ``+ - * /`` between its
arguments, python scalars, and the few functions collected in an :class:`Ops`
object.  Three kinds of operands are supported:

* sympy *indexed* mode (:data:`SYMPY_INDEXED`): a vector is the symbolic
  expression of its ``i``-th component and an inner product is
  ``Sum(x*y, (i, 1, n))`` with a symbolic dimension ``n`` -- identities proved in
  this mode hold in every dimension;
* sympy *scalar* mode (:data:`SYMPY_SCALAR`): one-dimensional models, used for
  linearisation on the quadratic ``f(w) = lam*w**2/2``;
* numpy arrays (:func:`numpy_ops`) and, in :mod:`empirics.backend`, torch
  tensors, optionally batched over leading axes (one axis per grid dimension of
  a sweep).

``theory`` never imports torch: the torch namespace lives in ``empirics``.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import sympy as sp

__all__ = ["Ops", "SYMPY_INDEXED", "SYMPY_SCALAR", "numpy_ops", "INDEX", "DIM", "frozen_sqrt"]

#: The summation index and the symbolic dimension of sympy indexed mode.
INDEX = sp.Symbol("i", integer=True, positive=True)
DIM = sp.Symbol("n", integer=True, positive=True)


@dataclass(frozen=True)
class Ops:
    """The functions an update rule may call besides ``+ - * /``.

    ``inner`` reduces over every parameter axis (not over batch axes);
    ``rows`` reshapes a parameter to the channel view ``(size(0), -1)`` and
    ``flat`` to the layer view ``(1, -1)`` (both keep batch axes in front);
    ``row_inner`` reduces the last axis keeping it, ``amax_rows`` is the maximum
    over rows; ``unview`` restores the parameter's shape.
    """

    name: str
    sqrt: Callable[[Any], Any]
    abs: Callable[[Any], Any]
    minimum: Callable[[Any, Any], Any]
    maximum: Callable[[Any, Any], Any]
    where: Callable[[Any, Any, Any], Any]
    inner: Callable[[Any, Any], Any]
    zeros_like: Callable[[Any], Any]
    ndim: Callable[[Any], int]
    rows: Callable[[Any], Any] | None = None
    flat: Callable[[Any], Any] | None = None
    row_inner: Callable[[Any, Any], Any] | None = None
    amax_rows: Callable[[Any], Any] | None = None
    unview: Callable[[Any, Any], Any] | None = None
    symbolic: bool = False

    def norm(self, x):
        """Euclidean norm ``sqrt(inner(x, x))``."""
        return self.sqrt(self.inner(x, x))


def _sympy_where(cond, a, b):
    return sp.Piecewise((a, cond), (b, True))


SYMPY_INDEXED = Ops(
    name="sympy-indexed",
    sqrt=sp.sqrt,
    abs=sp.Abs,
    minimum=sp.Min,
    maximum=sp.Max,
    where=_sympy_where,
    inner=lambda x, y: sp.Sum(sp.expand(x * y), (INDEX, 1, DIM)),
    zeros_like=lambda x: sp.Integer(0),
    ndim=lambda x: 1,
    row_inner=lambda x, y: sp.Sum(sp.expand(x * y), (INDEX, 1, DIM)),
    symbolic=True,
)

SYMPY_SCALAR = Ops(
    name="sympy-scalar",
    sqrt=sp.sqrt,
    abs=sp.Abs,
    minimum=sp.Min,
    maximum=sp.Max,
    where=_sympy_where,
    inner=lambda x, y: x * y,
    zeros_like=lambda x: sp.Integer(0),
    ndim=lambda x: 0,
    row_inner=lambda x, y: x * y,
    symbolic=True,
)


def numpy_ops(batch_dims: int = 0) -> Ops:
    """Numpy namespace; the first ``batch_dims`` axes are batch axes."""

    def param_axes(x):
        return tuple(range(batch_dims, np.ndim(x)))

    def rows(x):
        shape = np.shape(x)
        return np.reshape(x, shape[: batch_dims + 1] + (-1,))

    def flat(x):
        shape = np.shape(x)
        return np.reshape(x, shape[:batch_dims] + (1, -1))

    return Ops(
        name=f"numpy[{batch_dims}]",
        sqrt=np.sqrt,
        abs=np.abs,
        minimum=np.minimum,
        maximum=np.maximum,
        where=np.where,
        inner=lambda x, y: np.sum(x * y, axis=param_axes(x * y), keepdims=batch_dims > 0),
        zeros_like=np.zeros_like,
        ndim=lambda x: np.ndim(x) - batch_dims,
        rows=rows,
        flat=flat,
        row_inner=lambda x, y: np.sum(x * y, axis=-1, keepdims=True),
        amax_rows=lambda x: np.max(x, axis=(-2, -1), keepdims=batch_dims > 0),
        unview=lambda x, like: np.reshape(x, np.shape(like)),
    )


NUMPY = numpy_ops()


def frozen_sqrt(ops: Ops, value) -> Ops:
    """``ops`` whose ``sqrt`` returns ``value`` whatever its argument: a frozen preconditioner.

    For Adam-type rules whose only ``ops.sqrt`` is the square root of the second
    moment (``theory.stability`` checks this symbolically for every adaptive
    model), the rule then runs with ``sqrt(v_hat)`` held at ``value``
    (Cohen et al. 2022, arXiv 2207.14484, Sec. 3, "frozen Adam").
    """
    return dataclasses.replace(ops, name=f"{ops.name}+frozen-sqrt", sqrt=lambda x: value)
