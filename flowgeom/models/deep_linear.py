r"""Deep linear networks: loss, gradient, Hessian and the Lemma 1 invariants, batched.

A deep linear network with H hidden layers and widths :math:`(d_0, d_1, \dots, d_{H+1})`,
:math:`d_0 = d_x`, :math:`d_{H+1} = d_y`, has weights :math:`W_j \in
\mathbb{R}^{d_j \times d_{j-1}}`, j = 1..H+1, and end-to-end map
:math:`P = W_{H+1} \cdots W_1`. Its squared loss on data (X, Y) is

.. math:: \mathcal{L}(W) = \tfrac12 \|Y - P X\|_F^2 = \tfrac12 \|T - P R\|_F^2 + c,

where :math:`R R^T = X X^T` (an *input factor*, :math:`R = U_X S_X` from the SVD of X),
:math:`T = Y V_X^1` and :math:`c = \tfrac12 \|Y V_X^2\|_F^2` (Section 2.1 of the paper).
The paper's canonical loss (2) is the case :math:`R = I`, :math:`T = \Sigma = [\mathrm{diag}(s) \mid 0]`,
:math:`c = 0`. Writing the loss through (T, R) rather than through the covariances
:math:`XX^T, YX^T` keeps :math:`\mathcal{L}` accurate near its minimum, where an
expansion in covariances would cancel catastrophically.

The gradient is, with :math:`G = \partial L / \partial P = -(T - PR) R^T`,

.. math:: \nabla_{W_j} L = (W_{H+1} \cdots W_{j+1})^T \, G \, (W_{j-1} \cdots W_1)^T,

and the Hessian-vector product is its exact directional derivative (forward mode through
the same products). Every method takes a leading batch of parameter vectors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from flowgeom._types import FloatArray, Params
from flowgeom.models.base import check_params, hessian_from_hvp

__all__ = ["DeepLinearNetwork", "validate_widths"]


def validate_widths(widths, name: str = "widths") -> tuple[int, ...]:
    """Check a width tuple ``(d_x, d_1, ..., d_H, d_y)`` and return it as ints.

    Raises
    ------
    ValueError
        If fewer than three widths are given (H >= 1 hidden layer is required) or a width
        is not a positive integer.
    """
    try:
        w = tuple(int(d) for d in widths)
        if any(int(d) != d for d in widths):
            raise ValueError
    except (TypeError, ValueError):
        raise ValueError(
            f"`{name}` must be a sequence of positive integers (d_x, d_1, ..., d_H, d_y); got {widths!r}."
        ) from None
    if len(w) < 3:
        raise ValueError(
            f"`{name}` must give at least 3 widths (d_x, d_1, d_y): a network with H >= 1 hidden "
            f"layer; got {w!r}."
        )
    if any(d < 1 for d in w):
        raise ValueError(f"`{name}` must be positive integers; got {w!r}.")
    return w


GN_DENSE_MAX = 1200  # H >= 2: largest residual-space size d_y d_x factorised densely by gauss_newton_solver


def _batched_inverse(C, good):
    """Inverses of the matrices ``C`` (..., k, k) of each batch row; rows that fail get the identity, good False."""
    try:
        out = np.linalg.inv(C)
    except np.linalg.LinAlgError:
        out = np.empty_like(C)
        for i in range(C.shape[0]):  # one singular matrix must not stop the batch
            try:
                out[i] = np.linalg.inv(C[i])
            except np.linalg.LinAlgError:
                out[i] = np.eye(C.shape[-1])
                good[i] = False
    bad = ~np.all(np.isfinite(out), axis=tuple(range(1, out.ndim)))
    good &= ~bad
    out[bad] = np.eye(C.shape[-1])
    return out


def _mT(A):
    """Transpose of the last two axes (no conjugation, so complex-step stays valid)."""
    return np.swapaxes(A, -1, -2)


@dataclass(frozen=True, eq=False)
class DeepLinearNetwork:
    r"""The squared loss of a deep linear network, :math:`L(W) = \tfrac12\|T - W_{H+1}\cdots W_1 R\|_F^2 + c`.

    Parameters
    ----------
    widths : sequence of int
        ``(d_x, d_1, ..., d_H, d_y)``; H = len(widths) - 2 >= 1.
    target : ndarray, shape (d_y, d_x)
        T. For the paper's canonical form, :math:`\Sigma = [\mathrm{diag}(s) \mid 0]`.
    input_factor : ndarray, shape (d_x, d_x), optional
        R with :math:`R R^T = X X^T`. Default ``None`` means R = I (whitened data).
    offset : float, default 0.0
        The constant c added to the loss (the part of :math:`\|Y\|^2` no network can fit).

    Notes
    -----
    Parameters are packed layer by layer, W_1 first, each matrix in row-major order:
    ``theta = concat(W_1.ravel(), ..., W_{H+1}.ravel())``; see :meth:`pack` / :meth:`unpack`.

    The Lemma 1 invariants are :math:`C_j = W_{j+1}^T W_{j+1} - W_j W_j^T`, j = 1..H,
    conserved by the gradient flow of *this* loss (for any T, R). Under a change of
    coordinates that is not orthogonal they are no longer of this form; see
    :class:`flowgeom.Problem`.

    Examples
    --------
    >>> import numpy as np
    >>> from flowgeom import DeepLinearNetwork
    >>> net = DeepLinearNetwork.canonical((3, 2, 2), [2.0, 1.0])
    >>> theta = np.zeros(net.n_params)
    >>> float(net.loss(theta))  # 1/2 (2^2 + 1^2)
    2.5
    """

    widths: tuple[int, ...]
    target: FloatArray
    input_factor: FloatArray | None = None
    offset: float = 0.0
    _shapes: tuple[tuple[int, int], ...] = field(init=False, repr=False)
    _offsets: tuple[int, ...] = field(init=False, repr=False)
    _RRt: FloatArray | None = field(init=False, repr=False)
    # eigenbasis of R R^T for the structured shifted-Hessian solves, computed on first use
    # (flowgeom.models._dln_shifted.input_eigenbasis)
    _shifted_basis: tuple | None = field(init=False, repr=False, default=None)

    def __post_init__(self):
        w = validate_widths(self.widths)
        object.__setattr__(self, "widths", w)
        T = np.asarray(self.target, dtype=np.float64)
        if T.shape != (w[-1], w[0]):
            raise ValueError(
                f"`target` must have shape (d_y, d_x) = ({w[-1]}, {w[0]}) to match `widths`; got {T.shape}."
            )
        if not np.all(np.isfinite(T)):
            raise ValueError("`target` contains NaN or inf; pass finite data.")
        T = T.copy()
        T.setflags(write=False)
        object.__setattr__(self, "target", T)
        R = self.input_factor
        if R is not None:
            R = np.asarray(R, dtype=np.float64)
            if R.shape != (w[0], w[0]):
                raise ValueError(
                    f"`input_factor` must have shape (d_x, d_x) = ({w[0]}, {w[0]}); got {R.shape}."
                )
            if not np.all(np.isfinite(R)):
                raise ValueError("`input_factor` contains NaN or inf; pass finite data.")
            R = R.copy()
            R.setflags(write=False)
            object.__setattr__(self, "_RRt", R @ R.T)
        else:
            object.__setattr__(self, "_RRt", None)
        object.__setattr__(self, "input_factor", R)
        if not np.isfinite(self.offset) or self.offset < 0:
            raise ValueError(f"`offset` must be a finite non-negative float; got {self.offset!r}.")
        object.__setattr__(self, "offset", float(self.offset))
        shapes = tuple((w[j + 1], w[j]) for j in range(len(w) - 1))
        offs = [0]
        for a, b in shapes:
            offs.append(offs[-1] + a * b)
        object.__setattr__(self, "_shapes", shapes)
        object.__setattr__(self, "_offsets", tuple(offs))

    # ------------------------------------------------------------------ construction
    @classmethod
    def canonical(cls, widths: Sequence[int], singular_values) -> "DeepLinearNetwork":
        r"""The paper's canonical loss (2): :math:`\tfrac12\|\Sigma - W_{H+1}\cdots W_1\|_F^2`, :math:`\Sigma = [\mathrm{diag}(s)\mid 0]`.

        Parameters
        ----------
        widths : sequence of int
            ``(d_x, d_1, ..., d_y)``.
        singular_values : array_like, shape (d_y,)
            s; any real values are accepted here (no assumption check; see
            :class:`flowgeom.Problem` for the checked entry point).
        """
        w = validate_widths(widths)
        s = np.asarray(singular_values, dtype=np.float64)
        if s.shape != (w[-1],):
            raise ValueError(
                f"`singular_values` must have length d_y = {w[-1]} (the last width); got shape {s.shape}."
            )
        Sigma = np.zeros((w[-1], w[0]))
        Sigma[np.arange(w[-1]), np.arange(w[-1])] = s
        return cls(w, Sigma)

    # ------------------------------------------------------------------ sizes
    @property
    def depth_H(self) -> int:
        """Number of hidden layers H."""
        return len(self.widths) - 2

    @property
    def n_layers(self) -> int:
        """Number of weight matrices, H + 1."""
        return len(self.widths) - 1

    @property
    def n_params(self) -> int:
        r"""Dimension of the state space, :math:`\sum_j d_j d_{j-1}`."""
        return self._offsets[-1]

    @property
    def shapes(self) -> tuple[tuple[int, int], ...]:
        """Shapes ``(d_j, d_{j-1})`` of W_1 .. W_{H+1}."""
        return self._shapes

    @property
    def whitened(self) -> bool:
        """True when R = I (the loss is the paper's canonical form up to T)."""
        return self.input_factor is None

    # ------------------------------------------------------------------ packing
    def unpack(self, theta: Params) -> list[FloatArray]:
        """Split flat parameters ``(..., n)`` into ``[W_1, ..., W_{H+1}]``, shapes ``(..., d_j, d_{j-1})``.

        The matrices are views into ``theta`` when possible.
        """
        theta = check_params(theta, self.n_params)
        batch = theta.shape[:-1]
        return [
            theta[..., self._offsets[j] : self._offsets[j + 1]].reshape(batch + self._shapes[j])
            for j in range(self.n_layers)
        ]

    def pack(self, W: Sequence[FloatArray]) -> Params:
        """Concatenate ``[W_1, ..., W_{H+1}]`` (each ``(..., d_j, d_{j-1})``) into flat ``(..., n)``."""
        if len(W) != self.n_layers:
            raise ValueError(
                f"`W` must hold H + 1 = {self.n_layers} matrices (W_1 first); got {len(W)}."
            )
        Ws = [np.asarray(Wj) for Wj in W]
        for j, (Wj, shp) in enumerate(zip(Ws, self._shapes)):
            if Wj.shape[-2:] != shp:
                raise ValueError(
                    f"`W[{j}]` (layer {j + 1}) must have shape (..., {shp[0]}, {shp[1]}); got {Wj.shape}."
                )
        batch = np.broadcast_shapes(*(Wj.shape[:-2] for Wj in Ws))
        # explicit sizes (not -1) so that an empty batch, shape (0, ...), packs too
        return np.concatenate(
            [np.broadcast_to(Wj, batch + Wj.shape[-2:]).reshape(batch + (Wj.shape[-2] * Wj.shape[-1],)) for Wj in Ws],
            axis=-1,
        )

    # ------------------------------------------------------------------ forward quantities
    def _prefixes(self, W):
        """[W_1, W_2 W_1, ..., W_{H+1} ... W_1]: Pre[j] = W_{j+1} ... W_1 (0-based list)."""
        pre = [W[0]]
        for Wj in W[1:]:
            pre.append(Wj @ pre[-1])
        return pre

    def end_to_end(self, theta: Params) -> FloatArray:
        """End-to-end map :math:`P = W_{H+1} \\cdots W_1`, shape ``(..., d_y, d_x)``."""
        return self._prefixes(self.unpack(theta))[-1]

    def _residual(self, P):
        """M = T - P R, shape (..., d_y, d_x)."""
        PR = P if self.input_factor is None else P @ self.input_factor
        return self.target - PR

    def _dL_dP(self, P):
        """G = dL/dP = -(T - P R) R^T."""
        M = self._residual(P)
        return -M if self.input_factor is None else -(M @ self.input_factor.T)

    def loss(self, theta: Params) -> FloatArray:
        r"""Loss :math:`\tfrac12\|T - W_{H+1}\cdots W_1 R\|_F^2 + c`, shape ``(...)``."""
        M = self._residual(self.end_to_end(theta))
        return 0.5 * np.sum(M * M, axis=(-2, -1)) + self.offset

    def residual(self, theta: Params) -> FloatArray:
        """The residual :math:`M = T - P R`, shape ``(..., d_y, d_x)`` (the paper's :math:`\\bar M`)."""
        return self._residual(self.end_to_end(theta))

    def grad(self, theta: Params) -> Params:
        r"""Gradient :math:`\nabla L`, flat ``(..., n)``; the flow's vector field is ``-grad``."""
        W = self.unpack(theta)
        pre = self._prefixes(W)
        G = self._dL_dP(pre[-1])
        return self.pack(self._backprop(W, pre, G))

    def _backprop(self, W, pre, G):
        # A_j = (W_{H+1} ... W_{j+1})^T G, built right to left; grad_j = A_j (W_{j-1}...W_1)^T.
        L = self.n_layers
        grads = [None] * L
        A = G
        for j in range(L - 1, -1, -1):
            grads[j] = A if j == 0 else A @ _mT(pre[j - 1])
            if j > 0:
                A = _mT(W[j]) @ A
        return grads

    def hvp(self, theta: Params, v: Params) -> Params:
        r"""Exact Hessian-vector product :math:`\nabla^2 L(\theta)\, v`, shape ``(..., n)``.

        Computed in forward mode: the directional derivative of :meth:`grad` along v,
        propagated through the same products (no finite differences).
        """
        theta = check_params(theta, self.n_params)
        v = check_params(v, self.n_params, "v")
        batch = np.broadcast_shapes(theta.shape[:-1], v.shape[:-1])
        # theta and v keep their own batch shapes (the products broadcast): many directions v at one
        # point theta (shape (m, 1, n) against (m, k, n)) cost the forward pass of theta once
        theta = theta.reshape((1,) * (len(batch) - theta.ndim + 1) + theta.shape)
        v = v.reshape((1,) * (len(batch) - v.ndim + 1) + v.shape)
        W = self.unpack(theta)
        V = self.unpack(v)
        L = self.n_layers
        pre = [W[0]]
        dpre = [V[0]]
        for j in range(1, L):
            pre.append(W[j] @ pre[-1])
            dpre.append(V[j] @ pre[-2] + W[j] @ dpre[-1])
        G = self._dL_dP(pre[-1])
        dP = dpre[-1]
        dG = dP if self._RRt is None else dP @ self._RRt
        out = [None] * L
        A, dA = G, dG
        for j in range(L - 1, -1, -1):
            if j == 0:
                out[j] = dA
            else:
                out[j] = dA @ _mT(pre[j - 1]) + A @ _mT(dpre[j - 1])
                A, dA = _mT(W[j]) @ A, _mT(V[j]) @ A + _mT(W[j]) @ dA
        return self.pack(out)

    def gauss_newton_solver(self, theta: Params, shift):
        r"""Exact solver of the shifted Gauss--Newton system :math:`(I + \eta\, J^T J)\, x = v`, batched.

        With the residual map :math:`\theta \mapsto P R` (P = W_{H+1} \cdots W_1) and its Jacobian J,
        :math:`J^T J` is the Gauss--Newton part of :math:`\nabla^2 L` (exact at a zero-residual
        minimum). By the Woodbury identity

        .. math:: (I + \eta J^T J)^{-1} = I - J^T (\eta^{-1} I + J J^T)^{-1} J,

        a solve in residual space (:math:`d_y d_x` unknowns), where
        :math:`J J^T E = \sum_{j=1}^{H+1} A_j E B_j` with
        :math:`A_j = W_{>j} W_{>j}^T` and :math:`B_j = R^T W_{<j}^T W_{<j} R`
        (:math:`W_{>H+1} = I`, :math:`W_{<1} = I`). For H = 1 the two terms are
        :math:`A_1 E\, R^T R + E\, B_2`: in the eigenbasis :math:`A_1 = Q \Lambda Q^T` row i of
        :math:`Q^T E` solves :math:`\tilde e_i (\lambda_i R^T R + B_2 + \eta^{-1} I) = \tilde f_i`,
        d_y inverses of size d_x (the structure K-FAC approximates [1] is here exact); when
        :math:`d_1 < d_x`, :math:`B_2 = (W_1 R)^T (W_1 R)` has rank d_1 and, in the eigenbasis of
        :math:`R^T R`, each is a diagonal plus rank-d_1 matrix inverted by Woodbury through
        :math:`d_1 \times d_1` matrices.
        For H >= 2 the :math:`d_y d_x` system is formed and inverted densely.

        Parameters
        ----------
        theta : ndarray, shape (m, n)
            Points (one system per row).
        shift : ndarray, shape (m,)
            :math:`\eta > 0` per row (for a Rosenbrock stage, :math:`h\gamma`).

        Returns
        -------
        solve : callable or None
            ``solve(v)`` for ``v`` of shape (m, n) returns x (m, n). None when the residual-space
            system is too large to factorise (H >= 2 and :math:`d_y d_x >` ``GN_DENSE_MAX``).
        ok : ndarray of bool, shape (m,)
            Rows whose factorisation succeeded (the others get the identity).

        References
        ----------
        .. [1] J. Martens, R. Grosse, "Optimizing neural networks with Kronecker-factored
           approximate curvature", ICML (2015).
        """
        theta = check_params(theta, self.n_params)
        eta = np.asarray(shift, dtype=np.float64)
        m = theta.shape[0]
        dy, dx = self.widths[-1], self.widths[0]
        if self.depth_H >= 2 and dy * dx > GN_DENSE_MAX:
            return None, np.zeros(m, dtype=bool)
        W = self.unpack(theta)
        pre = self._prefixes(W)  # pre[j] = W_{j+1} ... W_1
        R = self.input_factor
        L = self.n_layers
        # suffixes S[j] = W_{H+1} ... W_{j+2} (so that A_{j+1} = S[j] S[j]^T, 0-based layer j), S[L-1] = I
        suf = [None] * L
        acc = None
        for j in range(L - 1, -1, -1):
            suf[j] = acc
            acc = W[j] if acc is None else acc @ W[j]
        eye_x = np.eye(dx)
        RtR = eye_x if R is None else R.T @ R
        low_rank = L == 2 and self.widths[1] < dx
        Bs, As = [], []
        for j in range(L):
            if j == 0 or low_rank:  # (the low-rank path uses W_1 R itself, not B_2)
                B = np.broadcast_to(RtR, (m, dx, dx))
            else:
                Z = pre[j - 1] if R is None else pre[j - 1] @ R  # W_{<j} R, (m, d_{j}, dx)
                B = _mT(Z) @ Z
            A = None if suf[j] is None else suf[j] @ _mT(suf[j])
            Bs.append(B)
            As.append(A)
        inv = (1.0 / np.where(eta > 0, eta, np.inf))[:, None, None]
        ok = np.isfinite(eta) & (eta > 0) & np.all(np.isfinite(theta), axis=1)
        with np.errstate(all="ignore"):
            if L == 2:
                lam, Q = np.linalg.eigh(np.where(ok[:, None, None], As[0], np.eye(dy)))
            if low_rank:
                # C_i = lambda_i R^T R + eta^{-1} I + G^T G with G = W_1 R of rank d_1 < d_x: in the
                # eigenbasis R^T R = Qx diag(delta) Qx^T, C_i = D_i + G^T G with D_i diagonal, inverted by
                # Woodbury through d_1 x d_1 matrices K_i = (I + G D_i^{-1} G^T)^{-1}.
                if R is None:
                    delta, Qx = np.ones(dx), None
                    G = W[0]
                else:
                    delta, Qx = np.linalg.eigh(RtR)
                    G = W[0] @ (R @ Qx)
                Dinv = 1.0 / (lam[:, :, None] * delta + inv[:, :, 0][:, :, None])  # (m, dy, dx)
                Kmat = (G[:, None] * Dinv[:, :, None, :]) @ _mT(G)[:, None] + np.eye(self.widths[1])
                good = ok & np.all(np.isfinite(Kmat), axis=(1, 2, 3)) & np.all(np.isfinite(Dinv), axis=(1, 2))
                Kmat = np.where(good[:, None, None, None], Kmat, np.eye(self.widths[1]))
                Dinv = np.where(good[:, None, None], Dinv, 1.0)
                Kinv = _batched_inverse(Kmat, good)
            elif L == 2:
                C = lam[:, :, None, None] * np.asarray(Bs[0])[:, None] + (Bs[1] + inv * eye_x)[:, None]
            else:
                C = inv * np.eye(dy * dx)
                for A, B in zip(As, Bs):
                    Aj = np.broadcast_to(np.eye(dy), (m, dy, dy)) if A is None else A
                    C = C + np.einsum("mab,mcd->macbd", Aj, B).reshape(m, dy * dx, dy * dx)
            if not low_rank:
                good = np.all(np.isfinite(C), axis=tuple(range(1, C.ndim))) & ok
                C = np.where(good.reshape((m,) + (1,) * (C.ndim - 1)), C, np.eye(C.shape[-1]))
                Cinv = _batched_inverse(C, good)

        def J(v):
            V = self.unpack(v)
            dP = V[0]
            for j in range(1, L):
                dP = V[j] @ pre[j - 1] + W[j] @ dP
            return dP if R is None else dP @ R

        def Jt(E):
            G = E if R is None else E @ R.T
            return self.pack(self._backprop(W, pre, G))

        def solve(v):
            F = J(v)  # (m, dy, dx)
            with np.errstate(all="ignore"):
                if low_rank:
                    Ft = _mT(Q) @ F  # rows in the eigenbasis of A_1
                    if Qx is not None:
                        Ft = Ft @ Qx  # columns in the eigenbasis of R^T R
                    U = Ft * Dinv
                    w = (Kinv @ (U @ _mT(G))[..., None])[..., 0]  # batched matvec (matmul: ~2x einsum)
                    Et = U - (w @ G) * Dinv
                    if Qx is not None:
                        Et = Et @ Qx.T
                    E = Q @ Et
                elif L == 2:
                    Ft = _mT(Q) @ F  # rows in the eigenbasis of A_1
                    Et = (Cinv @ Ft[..., None])[..., 0]
                    E = Q @ Et
                else:
                    E = (Cinv @ F.reshape(m, dy * dx, 1)).reshape(m, dy, dx)
            x = v - Jt(E)
            return np.where(good[:, None], x, v)

        return solve, good

    def shifted_hessian_solver(self, theta: Params, shift):
        r"""Exact solver of :math:`(I + \eta\,\nabla^2 L(\theta))\,x = v`, batched.

        By the column structure of the first layer and a Schur complement on the layers after it
        (:mod:`flowgeom.models._dln_shifted`: closed-form blocks for H = 1, blocks from exact HVPs for
        H >= 2). Returns ``(solve, ok)`` as :meth:`gauss_newton_solver` does, or ``(None, ok=False)``
        when the head is too large (``_dln_shifted.DEEP_MAX_HEAD`` parameters).
        """
        theta = check_params(theta, self.n_params)
        from flowgeom.models._dln_shifted import shifted_hessian_solver, shifted_hessian_solver_deep

        if self.depth_H != 1:
            return shifted_hessian_solver_deep(self, theta, shift)
        return shifted_hessian_solver(self, theta, shift)

    def hessian(self, theta: Params) -> FloatArray:
        """Dense Hessian, shape ``(..., n, n)``, assembled from exact HVPs (see :func:`hessian_from_hvp`)."""
        return hessian_from_hvp(self, theta)

    # ------------------------------------------------------------------ invariants
    def invariants(self, theta: Params) -> list[FloatArray]:
        r"""Lemma 1 invariants :math:`C_j = W_{j+1}^T W_{j+1} - W_j W_j^T`, j = 1..H, shapes ``(..., d_j, d_j)``."""
        W = self.unpack(theta)
        return [_mT(W[j + 1]) @ W[j + 1] - W[j] @ _mT(W[j]) for j in range(self.n_layers - 1)]

    def conserved(self, theta: Params) -> FloatArray:
        """The invariants :math:`C_j` flattened and concatenated, shape ``(..., sum_j d_j^2)``."""
        C = self.invariants(theta)
        batch = C[0].shape[:-2]
        return np.concatenate([c.reshape(batch + (c.shape[-1] * c.shape[-2],)) for c in C], axis=-1)

    # ------------------------------------------------------------------ sampling
    def random_params(self, rng: np.random.Generator, scale: float = 1.0, size=None) -> Params:
        """I.i.d. N(0, scale^2) entries, shape ``size + (n,)`` (``size=None`` gives ``(n,)``)."""
        shape = (self.n_params,) if size is None else tuple(np.atleast_1d(size)) + (self.n_params,)
        return scale * rng.standard_normal(shape)
