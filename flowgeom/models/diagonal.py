r"""Diagonal linear networks on least-squares regression: loss, gradient, exact HVP, invariants, batched.

A diagonal linear network of depth :math:`D \ge 2` on inputs :math:`x \in \mathbb{R}^d` has D weight
vectors :math:`w_1, \dots, w_D \in \mathbb{R}^d` and predicts

.. math:: f(x) = \langle \beta, x \rangle, \qquad \beta = w_1 \odot w_2 \odot \cdots \odot w_D,

(depth 2: :math:`\beta = u \odot v`). On data :math:`X \in \mathbb{R}^{n \times d}`,
:math:`y \in \mathbb{R}^n` its loss is the least-squares loss of :math:`\beta`,

.. math:: L(w) = \frac{1}{2n}\,\|X\beta - y\|_2^2,

the normalisation of Pesme & Flammarion [1]_ (their :math:`L(\beta) = \frac{1}{2n}\sum_i (y_i - \langle
\beta, x_i\rangle)^2`), so that their time scale :math:`t\,\ln(1/\alpha)` applies unchanged to this model
(see :mod:`flowgeom.models.diagonal_theory`). With the residual gradient
:math:`r = \nabla_\beta L = X^T(X\beta - y)/n` and :math:`\pi_{k,i} = \prod_{l \ne k} w_{l,i}`,

.. math:: \frac{\partial L}{\partial w_{k,i}} = \pi_{k,i}\, r_i,

and the Hessian-vector product is its exact directional derivative along :math:`v = (v_1, \dots, v_D)`:

.. math:: (\nabla^2 L\, v)_{k,i} = \Big(\sum_{m \ne k} v_{m,i} \prod_{l \ne k, m} w_{l,i}\Big) r_i
          + \pi_{k,i}\, \big(X^T X\, \dot\beta / n\big)_i, \qquad
          \dot\beta_i = \sum_m v_{m,i}\, \pi_{m,i}.

The gradient flow conserves :math:`w_{k,i}^2 - w_{l,i}^2` for every coordinate i and pair (k, l), since
:math:`\frac{d}{dt} w_{k,i}^2 = -2\beta_i r_i` for every k.

References
----------
.. [1] S. Pesme, N. Flammarion, "Saddle-to-saddle dynamics in diagonal linear networks", NeurIPS 2023,
   arXiv:2304.00488.
.. [2] B. Woodworth et al., "Kernel and rich regimes in overparametrized models", COLT 2020.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from flowgeom._types import FloatArray, Params
from flowgeom._validate import InputError, check_int, check_positive
from flowgeom.models.base import check_params, hessian_from_hvp

__all__ = ["DiagonalLinearNetwork"]


def _products_except_one(W):
    r"""``pi[k] = prod_{l != k} W[l]`` for a list of D arrays, by prefix/suffix products (no division)."""
    D = len(W)
    pre = [None] * D  # pre[k] = W[0] ... W[k-1]
    suf = [None] * D  # suf[k] = W[k+1] ... W[D-1]
    acc = None
    for k in range(D):
        pre[k] = acc
        acc = W[k] if acc is None else acc * W[k]
    acc = None
    for k in range(D - 1, -1, -1):
        suf[k] = acc
        acc = W[k] if acc is None else acc * W[k]
    out = []
    for k in range(D):
        if pre[k] is None:
            out.append(suf[k])
        elif suf[k] is None:
            out.append(pre[k])
        else:
            out.append(pre[k] * suf[k])
    return out


@dataclass(frozen=True, eq=False)
class DiagonalLinearNetwork:
    r"""The loss :math:`L(w) = \frac{1}{2n}\|X (w_1 \odot \cdots \odot w_D) - y\|_2^2` of a diagonal linear network.

    Parameters
    ----------
    X : array_like, shape (n, d)
        Design matrix, one sample per row.
    y : array_like, shape (n,)
        Targets.
    depth : int, default 2
        D >= 2, the number of factors of :math:`\beta`. D = 2 is the ``u ⊙ v`` network of [1]_.

    Notes
    -----
    Parameters are packed factor by factor: ``theta = concat(w_1, ..., w_D)``, shape ``(..., D d)``;
    for D = 2, ``theta = concat(u, v)``. See :meth:`pack` / :meth:`unpack`. Every method accepts leading
    batch axes and complex input (complex-step differentiation: no ``abs`` or conjugation is used).

    Examples
    --------
    >>> import numpy as np
    >>> from flowgeom.models.diagonal import DiagonalLinearNetwork
    >>> net = DiagonalLinearNetwork(np.eye(2), [1.0, 2.0])
    >>> float(net.loss(np.zeros(net.n_params)))  # (1 + 4) / (2 * 2)
    1.25
    """

    X: FloatArray
    y: FloatArray
    depth: int = 2
    _gram: FloatArray = field(init=False, repr=False)
    _Xty: FloatArray = field(init=False, repr=False)

    def __post_init__(self):
        X = np.asarray(self.X, dtype=np.float64)
        y = np.asarray(self.y, dtype=np.float64)
        if X.ndim != 2 or X.shape[0] < 1 or X.shape[1] < 1:
            raise InputError(f"`X` must be a 2-D array (n, d) with n, d >= 1; got shape {X.shape}.")
        if y.shape != (X.shape[0],):
            raise InputError(f"`y` must have shape (n,) = ({X.shape[0]},) to match `X`; got {y.shape}.")
        if not (np.all(np.isfinite(X)) and np.all(np.isfinite(y))):
            raise InputError("`X` and `y` must be finite; remove NaN or inf entries.")
        D = check_int("depth", self.depth, minimum=2)
        X = X.copy()
        y = y.copy()
        X.setflags(write=False)
        y.setflags(write=False)
        object.__setattr__(self, "X", X)
        object.__setattr__(self, "y", y)
        object.__setattr__(self, "depth", D)
        n = X.shape[0]
        gram = X.T @ X / n
        Xty = X.T @ y / n
        gram.setflags(write=False)
        Xty.setflags(write=False)
        object.__setattr__(self, "_gram", gram)
        object.__setattr__(self, "_Xty", Xty)

    # ------------------------------------------------------------------ sizes
    @property
    def n_samples(self) -> int:
        """n, the number of rows of X."""
        return self.X.shape[0]

    @property
    def n_features(self) -> int:
        """d, the number of coordinates of :math:`\\beta`."""
        return self.X.shape[1]

    @property
    def n_params(self) -> int:
        """D d, the dimension of the state space."""
        return self.depth * self.X.shape[1]

    # ------------------------------------------------------------------ packing
    def unpack(self, theta: Params) -> list[FloatArray]:
        """Split flat parameters ``(..., D d)`` into ``[w_1, ..., w_D]``, each ``(..., d)`` (views)."""
        theta = check_params(theta, self.n_params)
        d = self.n_features
        return [theta[..., k * d : (k + 1) * d] for k in range(self.depth)]

    def pack(self, W: Sequence[FloatArray]) -> Params:
        """Concatenate ``[w_1, ..., w_D]`` (each ``(..., d)``, broadcast together) into ``(..., D d)``."""
        if len(W) != self.depth:
            raise InputError(f"`W` must hold D = {self.depth} factor vectors (w_1 first); got {len(W)}.")
        Ws = [np.asarray(w) for w in W]
        d = self.n_features
        for k, w in enumerate(Ws):
            if w.ndim == 0 or w.shape[-1] != d:
                raise InputError(f"`W[{k}]` must have shape (..., {d}); got {w.shape}.")
        batch = np.broadcast_shapes(*(w.shape[:-1] for w in Ws))
        return np.concatenate([np.broadcast_to(w, batch + (d,)) for w in Ws], axis=-1)

    # ------------------------------------------------------------------ forward quantities
    def beta(self, theta: Params) -> FloatArray:
        r"""The linear predictor :math:`\beta = w_1 \odot \cdots \odot w_D`, shape ``(..., d)``."""
        W = self.unpack(theta)
        b = W[0]
        for w in W[1:]:
            b = b * w
        return b

    def loss_beta(self, beta) -> FloatArray:
        r""":math:`L(\beta) = \frac{1}{2n}\|X\beta - y\|^2` as a function of :math:`\beta`, shape ``(...)``."""
        res = np.asarray(beta) @ self.X.T - self.y
        return 0.5 * np.sum(res * res, axis=-1) / self.n_samples

    def grad_beta(self, beta) -> FloatArray:
        r""":math:`\nabla_\beta L = X^T(X\beta - y)/n`, shape ``(..., d)``."""
        return np.asarray(beta) @ self._gram - self._Xty

    def loss(self, theta: Params) -> FloatArray:
        r"""Loss :math:`\frac{1}{2n}\|X\beta - y\|^2`, shape ``(...)``."""
        return self.loss_beta(self.beta(theta))

    def grad(self, theta: Params) -> Params:
        r"""Gradient, :math:`\partial L/\partial w_{k,i} = (\prod_{l\ne k} w_{l,i})\, r_i`, flat ``(..., D d)``."""
        W = self.unpack(theta)
        pi = _products_except_one(W)
        beta = W[0] * pi[0]
        r = self.grad_beta(beta)
        return np.concatenate([p * r for p in pi], axis=-1)

    def hvp(self, theta: Params, v: Params) -> Params:
        r"""Exact Hessian-vector product :math:`\nabla^2 L(\theta)\,v`, shape ``(..., D d)`` (formula in the module docstring)."""
        theta = check_params(theta, self.n_params)
        v = check_params(v, self.n_params, "v")
        batch = np.broadcast_shapes(theta.shape[:-1], v.shape[:-1])
        W = self.unpack(np.broadcast_to(theta, batch + (self.n_params,)))
        V = self.unpack(np.broadcast_to(v, batch + (self.n_params,)))
        D = self.depth
        pi = _products_except_one(W)
        beta = W[0] * pi[0]
        r = self.grad_beta(beta)
        dbeta = sum(V[m] * pi[m] for m in range(D))
        dr = dbeta @ self._gram
        out = []
        for k in range(D):
            # d(pi_k) = sum_{m != k} v_m prod_{l != k, m} w_l
            others = [W[l] for l in range(D) if l != k]
            vothers = [V[l] for l in range(D) if l != k]
            if D == 2:
                dpi = vothers[0]
            else:
                pio = _products_except_one(others)
                dpi = sum(vo * po for vo, po in zip(vothers, pio))
            out.append(dpi * r + pi[k] * dr)
        return np.concatenate(out, axis=-1)

    def hessian(self, theta: Params) -> FloatArray:
        """Dense Hessian, shape ``(..., D d, D d)``, assembled from exact HVPs (see :func:`hessian_from_hvp`)."""
        return hessian_from_hvp(self, theta)

    # ------------------------------------------------------------------ invariants
    def conserved(self, theta: Params) -> FloatArray:
        r"""The invariants :math:`w_{k,i}^2 - w_{k+1,i}^2`, k = 1..D-1, flattened, shape ``(..., (D-1) d)``.

        For D = 2 this is :math:`u_i^2 - v_i^2`. Every difference :math:`w_{k,i}^2 - w_{l,i}^2` is a sum of these.
        """
        W = self.unpack(theta)
        return np.concatenate([W[k] * W[k] - W[k + 1] * W[k + 1] for k in range(self.depth - 1)], axis=-1)

    # ------------------------------------------------------------------ initialisations
    def random_params(self, rng: np.random.Generator, scale: float = 1.0, size=None) -> Params:
        """I.i.d. N(0, scale^2) entries, shape ``size + (D d,)`` (``size=None`` gives ``(D d,)``)."""
        shape = (self.n_params,) if size is None else tuple(np.atleast_1d(size)) + (self.n_params,)
        return scale * rng.standard_normal(shape)

    def small_init(self, alpha: float) -> Params:
        r"""The initialisation of Pesme & Flammarion [1]_ at scale :math:`\alpha`, shape ``(D d,)``.

        Depth 2: :math:`u = \sqrt2\,\alpha\,\mathbf 1`, :math:`v = 0`, so :math:`\beta = 0` and
        :math:`u_i^2 - v_i^2 = 2\alpha^2`. Depth D >= 3: :math:`w_1 = \dots = w_{D-1} = \alpha\mathbf 1`,
        :math:`w_D = 0` (the analogue; the saddle-to-saddle time scale is then :math:`\alpha^{-(D-2)}`,
        not :math:`\ln(1/\alpha)`, and :func:`~flowgeom.models.diagonal_theory.saddle_sequence` does not apply).

        Parameters
        ----------
        alpha : float
            Positive scale.
        """
        a = check_positive("alpha", alpha)
        d = self.n_features
        if self.depth == 2:
            return np.concatenate([np.full(d, np.sqrt(2.0) * a), np.zeros(d)])
        return np.concatenate([np.full((self.depth - 1) * d, a), np.zeros(d)])
