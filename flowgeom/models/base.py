r"""The plug-in point: what any smooth model must provide to enter flowgeom.

Let :math:`\theta \in \mathbb{R}^n` be the flat parameter vector of a model with a
smooth loss :math:`L(\theta)`. flowgeom studies the gradient flow

.. math:: \frac{d\theta}{dt} = -\nabla L(\theta)

and its discretisation, gradient descent. Every later stage (integration, critical
points, linearization, basins, transitions) talks to the model only through the
:class:`Model` protocol below, so a nonlinear network or a user's own model enters the
same pipeline as the deep linear network of the paper.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from flowgeom._types import FloatArray, Params

__all__ = ["Model", "check_params", "hessian_from_hvp"]


@runtime_checkable
class Model(Protocol):
    r"""A smooth loss :math:`L(\theta)` with exact first and second derivatives.

    In order to implement a model you need to provide:

    1. ``n_params`` (int): the dimension n of the flat parameter vector.
    2. ``loss(theta)``: :math:`L(\theta)`; ``theta`` has shape ``(..., n)`` and the result
       shape ``(...)``. Leading axes are batch axes: a batch of thousands of parameter
       vectors must be evaluated without a Python loop over it.
    3. ``grad(theta)``: :math:`\nabla L(\theta)`, shape ``(..., n)``. The flow's vector
       field is its negative.
    4. ``hvp(theta, v)``: the Hessian-vector product :math:`\nabla^2 L(\theta)\,v`, shapes
       ``(..., n)`` broadcasting against each other. It must be exact to round-off
       (analytic, forward-mode or complex-step), not a finite difference: the inertia
       counts of :mod:`flowgeom.linearize` depend on telling zero eigenvalues from small ones.
    5. ``hessian(theta)``: the dense Hessian, shape ``(..., n, n)``, symmetric.
       :func:`hessian_from_hvp` gives a correct default from ``hvp``.
    6. ``conserved(theta)``: quantities conserved by the gradient flow, flattened to shape
       ``(..., k)``; ``k = 0`` (an empty last axis) for a model that has none. flowgeom
       monitors their drift as a check of the integrator.

    All arrays are float64. Methods must not modify their inputs.
    """

    @property
    def n_params(self) -> int: ...

    def loss(self, theta: Params) -> FloatArray: ...

    def grad(self, theta: Params) -> Params: ...

    def hvp(self, theta: Params, v: Params) -> Params: ...

    def hessian(self, theta: Params) -> FloatArray: ...

    def conserved(self, theta: Params) -> FloatArray: ...


def check_params(theta, n_params: int, name: str = "theta") -> FloatArray:
    """Validate a (batch of) flat parameter vector(s) at a public boundary.

    Parameters
    ----------
    theta : array_like, shape (..., n_params)
    n_params : int
        Expected length of the last axis.
    name : str, default "theta"
        Argument name used in the error message.

    Returns
    -------
    ndarray
        ``theta`` as a float array (float64 unless complex, which is kept for
        complex-step differentiation).

    Raises
    ------
    ValueError
        If the last axis does not have length ``n_params``.
    """
    arr = np.asarray(theta)
    if not np.iscomplexobj(arr):
        arr = arr.astype(np.float64, copy=False)
    if arr.ndim == 0 or arr.shape[-1] != n_params:
        raise ValueError(
            f"`{name}` must have shape (..., {n_params}) (the model's n_params); got shape "
            f"{arr.shape}. Use `model.pack(W)` to build a flat parameter vector."
        )
    return arr


def hessian_from_hvp(model: Model, theta: Params, *, chunk: int = 256) -> FloatArray:
    r"""Dense Hessian :math:`\nabla^2 L(\theta)` assembled column by column from ``model.hvp``.

    Column i is :math:`\nabla^2 L(\theta)\,e_i`; the columns are computed ``chunk`` at a
    time as one batched ``hvp`` call, and the result is symmetrised,
    :math:`(H + H^T)/2`, to remove round-off asymmetry.

    Parameters
    ----------
    model : Model
    theta : ndarray, shape (..., n)
    chunk : int, default 256
        Number of basis vectors per batched ``hvp`` call (bounds memory).

    Returns
    -------
    ndarray, shape (..., n, n)
    """
    theta = check_params(theta, model.n_params)
    n = model.n_params
    batch = theta.shape[:-1]
    H = np.empty(batch + (n, n), dtype=theta.dtype)
    eye = np.eye(n)
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        E = eye[start:stop]  # (c, n)
        # broadcast theta (..., 1, n) against basis vectors (c, n) -> (..., c, n)
        cols = model.hvp(theta[..., None, :], E)
        H[..., start:stop, :] = cols  # rows = H e_i (H symmetric)
    return 0.5 * (H + np.swapaxes(H, -1, -2))
