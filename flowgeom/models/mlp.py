r"""Smooth multilayer perceptrons with squared loss: exact gradients and Hessian-vector products.

An MLP with H hidden layers and widths :math:`(d_0, d_1, \dots, d_{H+1})`, :math:`d_0 = d_x`,
:math:`d_{H+1} = d_y`, has weights :math:`W_j \in \mathbb{R}^{d_j\times d_{j-1}}` (the layer
convention of :class:`flowgeom.networks.DeepLinearNetwork`) and, optionally, biases
:math:`b_j \in \mathbb{R}^{d_j}`. On data :math:`X \in \mathbb{R}^{d_x\times m}` it computes

.. math::

    A_0 = X, \qquad Z_j = W_j A_{j-1} + b_j \mathbf 1^T, \qquad
    A_j = \sigma(Z_j)\ (j = 1..H), \qquad f(X) = Z_{H+1},

with the activation :math:`\sigma` applied at hidden layers only (the output layer is linear),
and its loss on targets :math:`Y \in \mathbb{R}^{d_y\times m}` is

.. math:: L(\theta) = \tfrac12 \|Y - f(X)\|_F^2 .

The gradient is backpropagation, :math:`\Delta_{H+1} = f(X) - Y`,
:math:`\Delta_{j} = (W_{j+1}^T \Delta_{j+1}) \odot \sigma'(Z_j)`,
:math:`\nabla_{W_j} L = \Delta_j A_{j-1}^T`, :math:`\nabla_{b_j} L = \Delta_j \mathbf 1`.
The Hessian-vector product is Pearlmutter's R-operator: the directional derivative
:math:`\mathcal R\{\cdot\} = \tfrac{d}{d\epsilon}(\cdot)(\theta + \epsilon v)|_{\epsilon=0}` pushed
forward through the forward pass and then through the backward pass (forward-over-reverse),
which is exact to round-off.

Every method accepts complex ``theta`` and uses no conjugation and no ``abs`` on analytic
quantities, so complex-step differentiation (:math:`\operatorname{Im} F(\theta + i h v)/h`,
:math:`h = 10^{-30}`) of :meth:`MLP.loss` and :meth:`MLP.grad` is exact to round-off; the
tests use it as the independent reference.

References
----------
B. A. Pearlmutter, "Fast exact multiplication by the Hessian", Neural Computation 6 (1994).
H. J. Sussmann, "Uniqueness of the weights for minimal feedforward nets with a given
input-output map", Neural Networks 5 (1992).
K. Fukumizu and S. Amari, "Local minima and plateaus in hierarchical structures of
multilayer perceptrons", Neural Networks 13 (2000).
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass, field
from typing import Literal, Sequence

import numpy as np

from flowgeom._types import FloatArray, Params
from flowgeom.models.base import check_params, hessian_from_hvp
from flowgeom.models._mlp_symmetry import CANONICAL_ATOL, _HiddenUnitSymmetry  # noqa: F401
from flowgeom.models.deep_linear import validate_widths

__all__ = [
    "MLP", "ACTIVATIONS", "mlp_for_problem",
]

ACTIVATIONS = ("tanh", "softplus", "sigmoid", "linear")
"""Names of the built-in activations (all analytic, so complex-step differentiation is exact)."""


def _mT(A):
    """Transpose of the last two axes (no conjugation, so complex-step stays valid)."""
    return np.swapaxes(A, -1, -2)


def _stable_sigmoid_parts(z):
    """Return (s, e) with e = exp(-|Re z|-ish) for overflow-free sigmoid/softplus.

    ``s`` is +1 where Re z >= 0 and -1 elsewhere (piecewise constant, so the formulas that
    use it are analytic in z on each piece and complex-step differentiation stays exact);
    ``e = exp(-s z)`` has modulus <= 1.
    """
    s = np.where(np.real(z) >= 0, 1.0, -1.0)
    return s, np.exp(-s * z)


def _activation(name: str, z, order: int):
    r"""Return :math:`(\sigma(z), \sigma'(z), \sigma''(z))` up to ``order`` (0, 1 or 2)."""
    if name == "tanh":
        t = np.tanh(z)
        if order == 0:
            return (t,)
        d1 = 1.0 - t * t
        return (t, d1) if order == 1 else (t, d1, -2.0 * t * d1)
    if name == "linear":
        if order == 0:
            return (z,)
        one = np.ones_like(z)
        return (z, one) if order == 1 else (z, one, np.zeros_like(z))
    s, e = _stable_sigmoid_parts(z)
    pos = s > 0
    # sigmoid(z) = 1/(1+e^{-z}) = e^{z}/(1+e^{z}); choose the form whose exponential is <= 1.
    sig = np.where(pos, 1.0 / (1.0 + e), e / (1.0 + e))
    dsig = sig * (1.0 - sig)
    if name == "sigmoid":
        if order == 0:
            return (sig,)
        return (sig, dsig) if order == 1 else (sig, dsig, dsig * (1.0 - 2.0 * sig))
    if name == "softplus":
        # softplus(z) = log(1 + e^z) = max-part + log1p(e^{-|z|}), written analytically per piece.
        sp = np.where(pos, z, 0.0) + np.log1p(e)
        if order == 0:
            return (sp,)
        return (sp, sig) if order == 1 else (sp, sig, dsig)
    raise AssertionError(name)  # validated in MLP.__post_init__


@dataclass(frozen=True, eq=False)
class MLP(_HiddenUnitSymmetry):
    r"""Squared loss of a multilayer perceptron, :math:`L(\theta) = \tfrac12\|Y - f_\theta(X)\|_F^2`.

    Satisfies the :class:`flowgeom.models.Model` protocol (batched over leading axes of theta).

    Parameters
    ----------
    widths : sequence of int
        ``(d_x, d_1, ..., d_H, d_y)``, H = len(widths) - 2 >= 1 hidden layers.
    X : array_like, shape (d_x, m)
        Inputs as columns.
    Y : array_like, shape (d_y, m)
        Targets as columns.
    activation : {"tanh", "softplus", "sigmoid", "linear"}, default "tanh"
        :math:`\sigma`, applied elementwise at the hidden layers only (the output is linear).
        ``"linear"`` gives the deep linear network :math:`f(X) = W_{H+1}\cdots W_1 X`.
    bias : bool, default False
        Whether each layer j = 1..H+1 has a bias :math:`b_j \in \mathbb{R}^{d_j}`.

    Notes
    -----
    **Packing.** ``theta = concat(W_1.ravel(), [b_1], W_2.ravel(), [b_2], ..., W_{H+1}.ravel(),
    [b_{H+1}])``: layer by layer, W_1 first, each matrix row-major, each layer's bias (when
    ``bias=True``) right after its weight matrix. Without biases this is exactly the packing of
    :class:`~flowgeom.networks.DeepLinearNetwork`.

    **Conserved quantities.** Gradient-flow conservation laws that hold for every data set come
    from continuous symmetries of :math:`\theta \mapsto f_\theta` (Marcotte, Gribonval & Peyré,
    2023). For ``"linear"`` the group :math:`W_j \mapsto G W_j`, :math:`b_j \mapsto G b_j`,
    :math:`W_{j+1} \mapsto W_{j+1} G^{-1}` gives the invariants
    :math:`C_j = W_{j+1}^T W_{j+1} - W_j W_j^T - b_j b_j^T` (Lemma 1 of the paper when there
    are no biases), returned by :meth:`conserved`. tanh, softplus and sigmoid are not
    homogeneous (the layer-norm differences conserved for ReLU are not conserved here) and
    their networks have only finitely many symmetries, hidden-unit permutations and sign flips
    (Sussmann 1992); the span of :math:`\{\nabla_\theta f_\theta(x)_k\}` over inputs x is then
    the whole parameter space at generic :math:`\theta` (tested), which rules out any
    data-independent conservation law: :meth:`conserved` returns an empty ``(..., 0)`` array.

    **Symmetries** (used by :meth:`canonicalize` and :meth:`orbit_distance`): permuting the
    units of a hidden layer (rows of :math:`W_j, b_j` and columns of :math:`W_{j+1}`); for odd
    activations (tanh, linear), flipping the sign of a unit's incoming weights, bias and outgoing
    weights; for sigmoid *with* biases, the same flip plus :math:`b_{j+1} \mathrel{+}= W_{j+1}[:, k]`
    (because :math:`\sigma(-z) = 1 - \sigma(z)`). softplus (and sigmoid without biases) has
    permutations only. For ``"linear"`` the full symmetry group is :math:`GL(d_j)` per layer (with
    biases also the translations :math:`b_j \mapsto b_j + \delta`,
    :math:`b_{j+1} \mapsto b_{j+1} - W_{j+1}\delta`, which yield no further conserved quantity of
    the form above); only the permutation-and-sign subgroup is used here.

    Examples
    --------
    >>> import numpy as np
    >>> from flowgeom.models.mlp import MLP
    >>> rng = np.random.default_rng(0)
    >>> X, Y = rng.standard_normal((3, 10)), rng.standard_normal((2, 10))
    >>> net = MLP((3, 4, 2), X, Y, activation="tanh")
    >>> net.n_params
    20
    >>> bool(np.isclose(net.loss(np.zeros(net.n_params)), 0.5 * np.sum(Y**2)))
    True
    """

    widths: tuple[int, ...]
    X: FloatArray
    Y: FloatArray
    _: KW_ONLY
    activation: Literal["tanh", "softplus", "sigmoid", "linear"] = "tanh"
    bias: bool = False
    _shapes: tuple[tuple[int, int], ...] = field(init=False, repr=False)
    _w_slices: tuple[slice, ...] = field(init=False, repr=False)
    _b_slices: tuple[slice, ...] = field(init=False, repr=False)
    _n: int = field(init=False, repr=False)

    def __post_init__(self):
        w = validate_widths(self.widths)
        object.__setattr__(self, "widths", w)
        if self.activation not in ACTIVATIONS:
            raise ValueError(
                f"`activation` must be one of {ACTIVATIONS}; got {self.activation!r}."
            )
        if not isinstance(self.bias, (bool, np.bool_)):
            raise TypeError(f"`bias` must be True or False; got {self.bias!r}.")
        object.__setattr__(self, "bias", bool(self.bias))
        arrays = {}
        for name, A, d in (("X", self.X, w[0]), ("Y", self.Y, w[-1])):
            A = np.array(A, dtype=np.float64)
            if A.ndim != 2:
                raise ValueError(
                    f"`{name}` must be 2-D with samples as columns, shape (d, m); got shape {A.shape}."
                )
            if A.shape[1] == 0:
                raise ValueError(f"`{name}` is empty (shape {A.shape}); pass at least one sample.")
            if A.shape[0] != d:
                raise ValueError(
                    f"`{name}` must have {d} rows to match `widths` {w} (d_x first, d_y last); "
                    f"got shape {A.shape}. If samples are rows, pass {name}.T."
                )
            if not np.all(np.isfinite(A)):
                raise ValueError(f"`{name}` contains NaN or inf; remove or impute those samples.")
            A.setflags(write=False)
            arrays[name] = A
        if arrays["X"].shape[1] != arrays["Y"].shape[1]:
            raise ValueError(
                f"`X` and `Y` must have the same number of samples (columns); got "
                f"{arrays['X'].shape[1]} and {arrays['Y'].shape[1]}."
            )
        object.__setattr__(self, "X", arrays["X"])
        object.__setattr__(self, "Y", arrays["Y"])
        shapes = tuple((w[j + 1], w[j]) for j in range(len(w) - 1))
        ws, bs = [], []
        off = 0
        for a, b in shapes:
            ws.append(slice(off, off + a * b))
            off += a * b
            if self.bias:
                bs.append(slice(off, off + a))
                off += a
        object.__setattr__(self, "_shapes", shapes)
        object.__setattr__(self, "_w_slices", tuple(ws))
        object.__setattr__(self, "_b_slices", tuple(bs))
        object.__setattr__(self, "_n", off)

    # ------------------------------------------------------------------ sizes
    @property
    def n_params(self) -> int:
        r"""Dimension n of theta: :math:`\sum_j d_j d_{j-1}` (+ :math:`\sum_j d_j` with biases)."""
        return self._n

    @property
    def depth_H(self) -> int:
        """Number of hidden layers H."""
        return len(self.widths) - 2

    @property
    def n_layers(self) -> int:
        """Number of weight matrices, H + 1."""
        return len(self.widths) - 1

    @property
    def n_samples(self) -> int:
        """m, the number of data columns."""
        return int(self.X.shape[1])

    @property
    def shapes(self) -> tuple[tuple[int, int], ...]:
        """Shapes ``(d_j, d_{j-1})`` of W_1 .. W_{H+1}."""
        return self._shapes

    @property
    def odd(self) -> bool:
        """Whether sigma is odd (tanh, linear): then hidden-unit sign flips are symmetries."""
        return self.activation in ("tanh", "linear")

    @property
    def has_sign_flips(self) -> bool:
        """Whether hidden-unit sign flips are symmetries (odd sigma, or sigmoid with biases)."""
        return self.odd or (self.activation == "sigmoid" and self.bias)

    # ------------------------------------------------------------------ packing
    def unpack(self, theta: Params) -> list[FloatArray]:
        """Weights ``[W_1, ..., W_{H+1}]`` of flat ``theta`` (..., n), shapes ``(..., d_j, d_{j-1})`` (views)."""
        theta = check_params(theta, self.n_params)
        batch = theta.shape[:-1]
        return [theta[..., s].reshape(batch + shp) for s, shp in zip(self._w_slices, self._shapes)]

    def biases(self, theta: Params) -> list[FloatArray]:
        """Biases ``[b_1, ..., b_{H+1}]`` of flat ``theta``, shapes ``(..., d_j)``; ``[]`` if ``bias=False``."""
        theta = check_params(theta, self.n_params)
        return [theta[..., s] for s in self._b_slices]

    def pack(self, W: Sequence[FloatArray], b: Sequence[FloatArray] | None = None) -> Params:
        """Flatten ``W = [W_1..W_{H+1}]`` (and ``b = [b_1..b_{H+1}]`` when ``bias=True``) into ``(..., n)``."""
        if len(W) != self.n_layers:
            raise ValueError(f"`W` must hold H + 1 = {self.n_layers} matrices (W_1 first); got {len(W)}.")
        Ws = [np.asarray(Wj) for Wj in W]
        for j, (Wj, shp) in enumerate(zip(Ws, self._shapes)):
            if Wj.shape[-2:] != shp:
                raise ValueError(
                    f"`W[{j}]` (layer {j + 1}) must have shape (..., {shp[0]}, {shp[1]}); got {Wj.shape}."
                )
        if self.bias:
            if b is None or len(b) != self.n_layers:
                raise ValueError(
                    f"`b` must hold H + 1 = {self.n_layers} bias vectors for a network with bias=True; "
                    f"got {None if b is None else len(b)}."
                )
            bs = [np.asarray(bj) for bj in b]
            for j, (bj, shp) in enumerate(zip(bs, self._shapes)):
                if bj.shape[-1:] != (shp[0],):
                    raise ValueError(f"`b[{j}]` (layer {j + 1}) must have shape (..., {shp[0]}); got {bj.shape}.")
        elif b is not None and len(b) > 0:
            raise ValueError("`b` must be None for a network with bias=False; construct MLP(..., bias=True).")
        else:
            bs = []
        batch = np.broadcast_shapes(*(Wj.shape[:-2] for Wj in Ws), *(bj.shape[:-1] for bj in bs))
        parts = []
        for j, Wj in enumerate(Ws):
            parts.append(np.broadcast_to(Wj, batch + Wj.shape[-2:]).reshape(batch + (-1,)))
            if self.bias:
                parts.append(np.broadcast_to(bs[j], batch + bs[j].shape[-1:]))
        return np.concatenate(parts, axis=-1)

    def random_params(self, rng: np.random.Generator, scale: float = 1.0, size=None) -> Params:
        """I.i.d. N(0, scale^2) entries, shape ``size + (n,)`` (``size=None`` gives ``(n,)``)."""
        shape = (self.n_params,) if size is None else tuple(np.atleast_1d(size)) + (self.n_params,)
        return scale * rng.standard_normal(shape)

    # ------------------------------------------------------------------ forward / loss
    def _forward(self, W, b, X, order: int):
        """Forward pass: lists Z (pre-activations, j = 1..H+1), A (A_0..A_H), dsig, d2sig (j = 1..H)."""
        A = [X]
        Z, D1, D2 = [], [], []
        for j in range(self.n_layers):
            Zj = W[j] @ A[-1]
            if self.bias:
                Zj = Zj + b[j][..., None]
            Z.append(Zj)
            if j < self.n_layers - 1:
                out = _activation(self.activation, Zj, order)
                A.append(out[0])
                if order >= 1:
                    D1.append(out[1])
                if order >= 2:
                    D2.append(out[2])
        return Z, A, D1, D2

    def predict(self, theta: Params, X=None) -> FloatArray:
        r"""Network output :math:`f_\theta(X)`, shape ``(..., d_y, m)``; ``X`` defaults to the model's data."""
        if X is None:
            X = self.X
        else:
            X = np.asarray(X)
            if X.ndim < 2 or X.shape[-2] != self.widths[0]:
                raise ValueError(f"`X` must have shape (..., d_x = {self.widths[0]}, m); got {X.shape}.")
        Z, _, _, _ = self._forward(self.unpack(theta), self.biases(theta), X, 0)
        return Z[-1]

    def loss(self, theta: Params) -> FloatArray:
        r"""Loss :math:`\tfrac12\|Y - f_\theta(X)\|_F^2`, shape ``(...)``."""
        E = self.predict(theta) - self.Y
        return 0.5 * np.sum(E * E, axis=(-2, -1))

    def residual(self, theta: Params) -> FloatArray:
        r"""Residual :math:`Y - f_\theta(X)`, shape ``(..., d_y, m)``."""
        return self.Y - self.predict(theta)

    # ------------------------------------------------------------------ derivatives
    def grad(self, theta: Params) -> Params:
        r"""Gradient :math:`\nabla L` by backpropagation, shape ``(..., n)``."""
        W = self.unpack(theta)
        b = self.biases(theta)
        Z, A, D1, _ = self._forward(W, b, self.X, 1)
        Delta = Z[-1] - self.Y
        gW = [None] * self.n_layers
        gb = [None] * self.n_layers
        for j in range(self.n_layers - 1, -1, -1):
            gW[j] = Delta @ _mT(A[j]) if j > 0 else Delta @ self.X.T
            gb[j] = np.sum(Delta, axis=-1)
            if j > 0:
                Delta = (_mT(W[j]) @ Delta) * D1[j - 1]
        return self.pack(gW, gb if self.bias else None)

    def hvp(self, theta: Params, v: Params) -> Params:
        r"""Exact Hessian-vector product :math:`\nabla^2 L(\theta)\,v` (Pearlmutter's R-operator), shape ``(..., n)``.

        Notes
        -----
        With :math:`\mathcal R\{\cdot\}` the directional derivative along v
        (:math:`\mathcal R\{W_j\} = V_j`, :math:`\mathcal R\{b_j\} = c_j`, :math:`\mathcal R\{A_0\} = 0`):

        .. math::

            \mathcal R\{Z_j\} &= V_j A_{j-1} + W_j \mathcal R\{A_{j-1}\} + c_j \mathbf 1^T, \qquad
            \mathcal R\{A_j\} = \sigma'(Z_j) \odot \mathcal R\{Z_j\},\\
            \mathcal R\{\Delta_{H+1}\} &= \mathcal R\{Z_{H+1}\},\\
            \mathcal R\{\Delta_j\} &= (V_{j+1}^T \Delta_{j+1} + W_{j+1}^T \mathcal R\{\Delta_{j+1}\})
                \odot \sigma'(Z_j) + (W_{j+1}^T \Delta_{j+1}) \odot \sigma''(Z_j) \odot \mathcal R\{Z_j\},\\
            (\nabla^2 L\, v)_{W_j} &= \mathcal R\{\Delta_j\} A_{j-1}^T + \Delta_j \mathcal R\{A_{j-1}\}^T,
            \qquad (\nabla^2 L\, v)_{b_j} = \mathcal R\{\Delta_j\} \mathbf 1.
        """
        theta = check_params(theta, self.n_params)
        v = check_params(v, self.n_params, "v")
        batch = np.broadcast_shapes(theta.shape[:-1], v.shape[:-1])
        theta = np.broadcast_to(theta, batch + (self.n_params,))
        v = np.broadcast_to(v, batch + (self.n_params,))
        W, b = self.unpack(theta), self.biases(theta)
        V, c = self.unpack(v), self.biases(v)
        Z, A, D1, D2 = self._forward(W, b, self.X, 2)
        L = self.n_layers
        # forward R-pass
        RZ = []
        RA = [None]  # R{A_0} = 0
        for j in range(L):
            RZj = V[j] @ A[j]
            if j > 0:
                RZj = RZj + W[j] @ RA[j]
            if self.bias:
                RZj = RZj + c[j][..., None]
            RZ.append(RZj)
            if j < L - 1:
                RA.append(D1[j] * RZj)
        # backward pass with its R-derivative
        Delta = Z[-1] - self.Y
        RDelta = RZ[-1]
        hW = [None] * L
        hb = [None] * L
        for j in range(L - 1, -1, -1):
            if j == 0:
                hW[j] = RDelta @ self.X.T
            else:
                hW[j] = RDelta @ _mT(A[j]) + Delta @ _mT(RA[j])
            hb[j] = np.sum(RDelta, axis=-1)
            if j > 0:
                back = _mT(W[j]) @ Delta
                Rback = _mT(V[j]) @ Delta + _mT(W[j]) @ RDelta
                Delta, RDelta = back * D1[j - 1], Rback * D1[j - 1] + back * D2[j - 1] * RZ[j - 1]
        return self.pack(hW, hb if self.bias else None)

    def hessian(self, theta: Params) -> FloatArray:
        """Dense Hessian, shape ``(..., n, n)``, assembled from exact HVPs (see :func:`~flowgeom.models.hessian_from_hvp`)."""
        return hessian_from_hvp(self, theta)

    # ------------------------------------------------------------------ invariants
    def invariants(self, theta: Params) -> list[FloatArray]:
        r"""For ``activation="linear"``: :math:`C_j = W_{j+1}^T W_{j+1} - W_j W_j^T - b_j b_j^T`, j = 1..H.

        Raises
        ------
        ValueError
            For a nonlinear activation, which has no such invariants (see the class Notes).
        """
        if self.activation != "linear":
            raise ValueError(
                f"`invariants` exist only for activation='linear'; this network uses "
                f"{self.activation!r}, whose gradient flow has no data-independent conserved "
                "quantities (see MLP Notes). `conserved(theta)` returns an empty array for it."
            )
        W, b = self.unpack(theta), self.biases(theta)
        C = []
        for j in range(self.n_layers - 1):
            Cj = _mT(W[j + 1]) @ W[j + 1] - W[j] @ _mT(W[j])
            if self.bias:
                Cj = Cj - b[j][..., :, None] * b[j][..., None, :]
            C.append(Cj)
        return C

    def conserved(self, theta: Params) -> FloatArray:
        """Conserved quantities, shape ``(..., k)``: the flattened :meth:`invariants` for "linear", else k = 0."""
        theta = check_params(theta, self.n_params)
        batch = theta.shape[:-1]
        if self.activation != "linear":
            return np.zeros(batch + (0,), dtype=theta.dtype)
        return np.concatenate([c.reshape(batch + (-1,)) for c in self.invariants(theta)], axis=-1)


# ---------------------------------------------------------------------- teacher-student data
def mlp_for_problem(problem, activation: str = "tanh", *, bias: bool = False) -> MLP:
    r"""The MLP of ``activation`` on the data of a deep linear :class:`~flowgeom.problem.Problem`.

    A spectrum problem (no data) gives the whitened canonical data :math:`X = I_{d_x}`,
    :math:`Y = \Sigma = [\mathrm{diag}(s) \mid 0]` (m = d_x samples), on which the linear MLP's loss
    :math:`\tfrac12\|\Sigma - W_{H+1}\cdots W_1\|_F^2` is the paper's canonical loss; a data problem
    keeps its (X, Y) (the linear MLP is then ``problem.network("original")``).

    Parameters
    ----------
    problem : flowgeom.Problem
    activation : {"tanh", "softplus", "sigmoid", "linear"}, default "tanh"
    bias : bool, default False
        Biases per layer (the deep linear network has none; for tanh, the origin is a critical
        point only without biases).

    Returns
    -------
    MLP
        Same widths and parameter packing as ``problem.network()``.
    """
    if not all(hasattr(problem, k) for k in ("widths", "X", "Y", "Sigma", "d_x")):
        raise TypeError(f"`problem` must be a flowgeom.Problem; got {type(problem).__name__}.")
    if problem.X is None:
        X = np.eye(problem.d_x)
        Y = problem.Sigma
    else:
        X, Y = problem.X, problem.Y
    return MLP(problem.widths, X, Y, activation=activation, bias=bias)
