r"""Adapter for user models written in JAX: automatic gradient, Hessian-vector product and Hessian.

Given a scalar loss :math:`L : \mathbb{R}^n \to \mathbb{R}` written with ``jax.numpy`` for ONE
parameter vector, :class:`JaxModel` satisfies the :class:`flowgeom.models.Model` protocol
(batched over leading axes, numpy float64 in and out):

.. math::

    \nabla L = \texttt{jax.grad}(L), \qquad
    \nabla^2 L\, v = \frac{d}{d\epsilon}\nabla L(\theta + \epsilon v)\Big|_{\epsilon=0}
    \ \text{(forward-over-reverse: } \texttt{jax.jvp} \text{ of } \texttt{jax.grad)},

both exact to round-off (automatic differentiation, no finite differences), vectorized over the
batch with ``jax.vmap`` and compiled with ``jax.jit``.

JAX is an optional dependency: ``import flowgeom`` never imports it, and constructing a
:class:`JaxModel` without it raises ImportError with the fix (``pip install "flowgeom[jax]"``).
The adapter turns on 64-bit floats in JAX (``jax.config.update("jax_enable_x64", True)``, a global
JAX setting) because critical-point refinement and inertia counts need double precision.

References
----------
B. A. Pearlmutter, "Fast exact multiplication by the Hessian", Neural Computation 6 (1994).
J. Bradbury et al., "JAX: composable transformations of Python+NumPy programs" (2018).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from flowgeom._types import FloatArray, Params
from flowgeom.models.base import check_params

__all__ = ["JaxModel", "import_jax"]

_INSTALL_HINT = 'JaxModel needs JAX, an optional dependency: pip install "flowgeom[jax]" (or pip install jax).'


def import_jax():
    """Import ``jax`` with 64-bit floats enabled; ImportError with the install command if missing."""
    try:
        import jax
    except ImportError as exc:  # pragma: no cover - exercised with jax hidden
        raise ImportError(_INSTALL_HINT) from exc
    jax.config.update("jax_enable_x64", True)
    return jax


class JaxModel:
    r"""A :class:`flowgeom.models.Model` from a JAX loss function.

    Parameters
    ----------
    loss_fn : callable
        ``loss_fn(theta) -> scalar`` for one parameter vector ``theta`` of shape ``(n_params,)``,
        written with ``jax.numpy`` (differentiable, traceable by ``jax.jit``). For the model to
        be usable on worker processes (e.g. :func:`flowgeom.basins.sample_basins` with local
        processes) it must be picklable: a module-level function, not a lambda.
    n_params : int
        n, the length of ``theta``.
    conserved_fn : callable, optional
        ``conserved_fn(theta) -> array of shape (k,)``: quantities conserved by the gradient flow
        (e.g. the invariants of a linear network), checked by the integrators' drift
        measurements. Default None: no conserved quantity (``conserved`` returns shape ``(..., 0)``).

    Notes
    -----
    In order to be a Model the adapter provides ``n_params``, ``loss``, ``grad``, ``hvp``,
    ``hessian`` and ``conserved``, each accepting ``theta`` of shape ``(..., n)`` (and ``v`` of a
    broadcastable shape for ``hvp``) and returning float64 numpy arrays with the same leading
    axes. The first call of each method compiles it for the batch shape (later calls with the
    same shape are fast).

    Examples
    --------
    >>> import jax.numpy as jnp                                   # doctest: +SKIP
    >>> from flowgeom.models.jax_model import JaxModel  # doctest: +SKIP
    >>> def loss(t):                                              # doctest: +SKIP
    ...     return 0.5 * (3.0 - t[1] * t[0]) ** 2
    >>> m = JaxModel(loss, 2)                                       # doctest: +SKIP
    >>> m.grad([[1.0, 2.0]])                                        # doctest: +SKIP
    array([[-2., -1.]])
    """

    def __init__(self, loss_fn: Callable[[Any], Any], n_params: int, *, conserved_fn: Callable[[Any], Any] | None = None):
        if not callable(loss_fn):
            raise TypeError(f"`loss_fn` must be callable (theta -> scalar); got {type(loss_fn).__name__}.")
        if isinstance(n_params, bool) or not isinstance(n_params, (int, np.integer)) or n_params < 1:
            raise ValueError(f"`n_params` must be a positive int; got {n_params!r}.")
        if conserved_fn is not None and not callable(conserved_fn):
            raise TypeError(f"`conserved_fn` must be callable or None; got {type(conserved_fn).__name__}.")
        self.loss_fn = loss_fn
        self.conserved_fn = conserved_fn
        self._n = int(n_params)
        self._build()

    def _build(self) -> None:
        jax = import_jax()
        f = self.loss_fn
        g = jax.grad(f)

        def hvp1(theta, v):
            return jax.jvp(g, (theta,), (v,))[1]

        self._jloss = jax.jit(jax.vmap(f))
        self._jgrad = jax.jit(jax.vmap(g))
        self._jhvp = jax.jit(jax.vmap(hvp1))
        self._jhess = jax.jit(jax.vmap(jax.hessian(f)))
        self._jcons = None if self.conserved_fn is None else jax.jit(jax.vmap(self.conserved_fn))
        # probe once: a wrong n_params or a non-scalar loss fails here, not deep inside a run
        out = np.asarray(self._jloss(np.zeros((1, self._n))))
        if out.shape != (1,):
            raise ValueError(f"`loss_fn` must return a scalar for theta of shape ({self._n},); got shape {out.shape[1:]}.")

    # pickling: jitted functions are rebuilt from the user's functions
    def __getstate__(self) -> dict:
        return {"loss_fn": self.loss_fn, "conserved_fn": self.conserved_fn, "n_params": self._n}

    def __setstate__(self, state: dict) -> None:
        self.loss_fn = state["loss_fn"]
        self.conserved_fn = state["conserved_fn"]
        self._n = int(state["n_params"])
        self._build()

    def __repr__(self) -> str:
        return f"JaxModel({getattr(self.loss_fn, '__name__', 'loss_fn')}, n_params={self._n})"

    @property
    def n_params(self) -> int:
        """n, the number of parameters."""
        return self._n

    def _flat(self, theta) -> tuple[np.ndarray, tuple]:
        theta = check_params(theta, self._n)
        if np.iscomplexobj(theta):
            raise TypeError("`theta` must be real for a JaxModel.")
        theta = np.asarray(theta, dtype=np.float64)
        return theta.reshape(-1, self._n), theta.shape[:-1]

    def loss(self, theta: Params) -> FloatArray:
        """:math:`L(\\theta)`, shape ``(...)``."""
        th, batch = self._flat(theta)
        return np.asarray(self._jloss(th), dtype=np.float64).reshape(batch)

    def grad(self, theta: Params) -> Params:
        """:math:`\\nabla L(\\theta)` by reverse mode, shape ``(..., n)``."""
        th, batch = self._flat(theta)
        return np.asarray(self._jgrad(th), dtype=np.float64).reshape(batch + (self._n,))

    def hvp(self, theta: Params, v: Params) -> Params:
        """:math:`\\nabla^2 L(\\theta)\\,v` by forward-over-reverse differentiation, shape ``(..., n)``."""
        theta = check_params(theta, self._n)
        v = check_params(v, self._n, "v")
        batch = np.broadcast_shapes(theta.shape[:-1], v.shape[:-1])
        th = np.broadcast_to(np.asarray(theta, dtype=np.float64), batch + (self._n,)).reshape(-1, self._n)
        vv = np.broadcast_to(np.asarray(v, dtype=np.float64), batch + (self._n,)).reshape(-1, self._n)
        return np.asarray(self._jhvp(th, vv), dtype=np.float64).reshape(batch + (self._n,))

    def hessian(self, theta: Params) -> FloatArray:
        """Dense :math:`\\nabla^2 L(\\theta)` (``jax.hessian``, forward over reverse), shape ``(..., n, n)``."""
        th, batch = self._flat(theta)
        return np.asarray(self._jhess(th), dtype=np.float64).reshape(batch + (self._n, self._n))

    def conserved(self, theta: Params) -> FloatArray:
        """``conserved_fn`` per batch element, shape ``(..., k)`` (k = 0 without ``conserved_fn``)."""
        th, batch = self._flat(theta)
        if self._jcons is None:
            return np.zeros(batch + (0,))
        c = np.asarray(self._jcons(th), dtype=np.float64)
        return c.reshape(batch + (-1,))
