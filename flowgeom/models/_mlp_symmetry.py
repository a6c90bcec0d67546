r"""Hidden-unit symmetries of an MLP: permutations and sign flips, canonical forms, orbit distances.

A hidden layer's units can be permuted, :math:`W_j \to P W_j`, :math:`b_j \to P b_j`,
:math:`W_{j+1} \to W_{j+1} P^T`, and for an odd activation (tanh, linear) flipped,
:math:`W_j \to D W_j`, :math:`W_{j+1} \to W_{j+1} D` with :math:`D = \mathrm{diag}(\pm 1)`, without
changing the network function (so neither the loss nor the inertia of its Hessian). Mixed into
:class:`flowgeom.models.mlp.MLP`.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from flowgeom._types import Params
from flowgeom.models.base import check_params

# Entries whose magnitude is at most this decide nothing in `canonicalize` (sign choice and
# ordering): below it a value is treated as zero, so round-off cannot flip a sign choice.
CANONICAL_ATOL = 1e-8


def _mT(A):
    """Transpose of the last two axes."""
    return np.swapaxes(A, -1, -2)


class _HiddenUnitSymmetry:
    """Symmetry operations of :class:`flowgeom.models.mlp.MLP` (needs its widths, packing and activation)."""

    def _layers(self, theta):
        """Copies of W and b (b zeros when bias=False), for in-place symmetry operations."""
        theta = check_params(theta, self.n_params)
        W = [np.array(Wj) for Wj in self.unpack(theta)]
        if self.bias:
            b = [np.array(bj) for bj in self.biases(theta)]
        else:
            b = [np.zeros(theta.shape[:-1] + (shp[0],), dtype=theta.dtype) for shp in self._shapes]
        return W, b

    def _repack(self, W, b):
        return self.pack(W, b if self.bias else None)

    def apply_symmetry(self, theta: Params, layer: int, perm, signs=None) -> Params:
        r"""Apply a hidden-unit permutation and sign flips to layer ``layer`` (1..H).

        New unit k of the layer is old unit ``perm[k]`` multiplied by ``signs[k]``: rows of
        :math:`W_j, b_j` and columns of :math:`W_{j+1}` are permuted, then flipped; for sigmoid
        with biases a flip of unit k also adds the old outgoing column to :math:`b_{j+1}`.
        :math:`f_\theta` is unchanged.

        Parameters
        ----------
        theta : ndarray, shape (..., n)
        layer : int
            Hidden layer j in 1..H.
        perm : array_like of int, shape (..., d_j)
            A permutation of ``range(d_j)`` (per batch element).
        signs : array_like of {+1, -1}, shape (..., d_j), optional
            Default None (no flips). Flips are allowed only when :attr:`has_sign_flips`.

        Returns
        -------
        ndarray, shape (..., n)
        """
        if not (isinstance(layer, (int, np.integer)) and 1 <= layer <= self.depth_H):
            raise ValueError(f"`layer` must be a hidden layer index in 1..{self.depth_H}; got {layer!r}.")
        W, b = self._layers(theta)
        batch = W[0].shape[:-2]
        d = self.widths[layer]
        perm = np.broadcast_to(np.asarray(perm), batch + (d,))
        if not np.all(np.sort(perm, axis=-1) == np.arange(d)):
            raise ValueError(f"`perm` must be a permutation of range({d}) along its last axis; got {perm!r}.")
        if signs is None:
            signs = np.ones(batch + (d,))
        else:
            signs = np.broadcast_to(np.asarray(signs, dtype=np.float64), batch + (d,))
            if not np.all(np.abs(signs) == 1):
                raise ValueError(f"`signs` must contain only +1 and -1; got {signs!r}.")
            if np.any(signs < 0) and not self.has_sign_flips:
                raise ValueError(
                    f"sign flips are not symmetries for activation={self.activation!r} with "
                    f"bias={self.bias}; pass `signs=None`."
                )
        self._permute_flip(W, b, layer - 1, perm, signs)
        return self._repack(W, b)

    def _permute_flip(self, W, b, i, perm, signs):
        """In place: hidden layer i+1 (0-based weight index i) units -> perm then signs."""
        Wi = np.take_along_axis(W[i], perm[..., :, None], axis=-2)
        bi = np.take_along_axis(b[i], perm, axis=-1)
        Wn = np.take_along_axis(W[i + 1], perm[..., None, :], axis=-1)
        if self.activation == "sigmoid" and self.bias:
            flipped = (signs < 0).astype(Wn.dtype)
            b[i + 1] = b[i + 1] + np.sum(Wn * flipped[..., None, :], axis=-1)
        W[i] = Wi * signs[..., :, None]
        b[i] = bi * signs
        W[i + 1] = Wn * signs[..., None, :]

    def canonicalize(self, theta: Params, *, atol: float = CANONICAL_ATOL) -> Params:
        r"""A canonical representative of theta's orbit under hidden-unit permutations (and sign flips).

        Layer by layer (j = 1..H, so that the incoming weights of layer j are already expressed
        in layer j-1's canonical unit order), each unit's sign is chosen, when flips are
        symmetries, so that the first entry of its incoming vector :math:`(W_j[k,:], b_j[k])`
        with modulus > ``atol`` is positive (the outgoing column decides for a unit with zero
        incoming weights); then units are sorted lexicographically by (incoming vector, outgoing
        column), entries within ``atol`` of each other comparing equal. Batched over leading axes.

        Parameters
        ----------
        theta : ndarray, shape (..., n)
        atol : float, default ``CANONICAL_ATOL`` = 1e-8
            Entries this close are treated as equal, values this small as zero.

        Returns
        -------
        ndarray, shape (..., n)
            Equal (up to round-off) for two parameter vectors related by the symmetry group
            (and not nearly tied within ``atol``); :math:`f` is unchanged.

        Notes
        -----
        A lexicographic key is discontinuous where two units nearly tie; to compare critical
        points, prefer :meth:`orbit_distance`, which aligns units by optimal assignment.
        """
        W, b = self._layers(theta)
        batch = W[0].shape[:-2]
        for i in range(self.depth_H):
            d = self.widths[i + 1]
            inc = np.concatenate([W[i], b[i][..., None]], axis=-1)  # (..., d, d_{i}+1)
            out = _mT(W[i + 1])  # (..., d, d_{i+2})
            if self.has_sign_flips:
                key = np.concatenate([inc, out], axis=-1)
                sig = np.abs(key) > atol
                first = np.argmax(sig, axis=-1)
                lead = np.take_along_axis(key, first[..., None], axis=-1)[..., 0]
                signs = np.where(np.real(lead) < 0, -1.0, 1.0)
            else:
                signs = np.ones(batch + (d,))
            ident = np.broadcast_to(np.arange(d), batch + (d,))
            self._permute_flip(W, b, i, ident, signs)
            inc = np.concatenate([W[i], b[i][..., None]], axis=-1)
            key = np.concatenate([inc, _mT(W[i + 1])], axis=-1)
            q = np.round(np.real(key) / atol) * atol  # ties within atol compare equal
            perm = np.broadcast_to(np.arange(d), batch + (d,)).copy()
            for col in range(q.shape[-1] - 1, -1, -1):  # lexsort: least significant key first
                kcol = np.take_along_axis(q[..., col], perm, axis=-1)
                perm = np.take_along_axis(perm, np.argsort(kcol, axis=-1, kind="stable"), axis=-1)
            self._permute_flip(W, b, i, perm, np.ones(batch + (d,)))
        return self._repack(W, b)

    def symmetry_orbit_key(self, theta: Params, *, decimals: int = 6) -> tuple:
        """A hashable key of theta's symmetry orbit: the :meth:`canonicalize` form rounded to ``decimals``.

        Parameters
        ----------
        theta : ndarray, shape (n,)
        decimals : int, default 6

        Returns
        -------
        tuple of float
        """
        theta = check_params(theta, self.n_params)
        if theta.ndim != 1:
            raise ValueError(f"`theta` must be a single parameter vector of shape ({self.n_params},); got {theta.shape}.")
        c = np.round(self.canonicalize(theta, atol=0.5 * 10.0 ** (-decimals)), decimals)
        return tuple(float(x) + 0.0 for x in c)  # + 0.0 turns -0.0 into 0.0

    def orbit_distance(self, theta1: Params, theta2: Params) -> tuple[float, Params]:
        r"""Distance from theta1 to theta2's symmetry orbit, and the aligned image of theta2.

        .. math:: d(\theta_1, \theta_2) = \min_{g} \|\theta_1 - g\cdot\theta_2\|_2,

        g ranging over hidden-unit permutations (and sign flips where they are symmetries).
        Layer by layer, units of theta2 are matched to those of theta1 by an optimal assignment
        (Hungarian algorithm, :func:`scipy.optimize.linear_sum_assignment`) on the squared
        distance of incoming vectors :math:`(W_j[k,:], b_j[k])` plus outgoing columns (for the
        last hidden layer) or outgoing-column norms (for earlier layers, whose outgoing columns are
        not aligned yet).

        Parameters
        ----------
        theta1, theta2 : ndarray, shape (n,)

        Returns
        -------
        distance : float
            :math:`\|\theta_1 - g^\ast\theta_2\|` for the found g*: exact for H = 1 (the cost
            separates over units) except for sigmoid with biases; an upper bound otherwise.
        aligned : ndarray, shape (n,)
            :math:`g^\ast \cdot \theta_2`.
        """
        t1 = check_params(theta1, self.n_params, "theta1")
        t2 = check_params(theta2, self.n_params, "theta2")
        if t1.ndim != 1 or t2.ndim != 1:
            raise ValueError(
                f"`theta1` and `theta2` must be single vectors of shape ({self.n_params},); got "
                f"{t1.shape} and {t2.shape}."
            )
        W1, b1 = self._layers(t1)
        W2, b2 = self._layers(t2)
        for i in range(self.depth_H):
            d = self.widths[i + 1]
            last = i == self.depth_H - 1
            in1 = np.concatenate([W1[i], b1[i][:, None]], axis=1)
            in2 = np.concatenate([W2[i], b2[i][:, None]], axis=1)
            out1, out2 = W1[i + 1].T, W2[i + 1].T

            def cost(s):
                ci = np.sum((in1[:, None, :] - s * in2[None, :, :]) ** 2, axis=-1)
                if last:
                    co = np.sum((out1[:, None, :] - s * out2[None, :, :]) ** 2, axis=-1)
                else:
                    n1, n2 = np.linalg.norm(out1, axis=1), np.linalg.norm(out2, axis=1)
                    co = (n1[:, None] - n2[None, :]) ** 2
                return ci + co

            cp = cost(1.0)
            if self.has_sign_flips:
                cm = cost(-1.0)
                C = np.minimum(cp, cm)
                S = np.where(cm < cp, -1.0, 1.0)
            else:
                C, S = cp, np.ones((d, d))
            rows, cols = linear_sum_assignment(C)
            perm = cols[np.argsort(rows)]
            signs = S[np.arange(d), perm]
            self._permute_flip(W2, b2, i, perm, signs)
        aligned = self._repack(W2, b2)
        return float(np.linalg.norm(t1 - aligned)), aligned

    def random_symmetry(self, theta: Params, rng: np.random.Generator) -> Params:
        """Apply a uniformly random group element (permutations, and flips where allowed) to every hidden layer."""
        theta = check_params(theta, self.n_params)
        for j in range(1, self.depth_H + 1):
            d = self.widths[j]
            perm = rng.permutation(d)
            signs = rng.choice([-1.0, 1.0], size=d) if self.has_sign_flips else None
            theta = self.apply_symmetry(theta, j, perm, signs)
        return theta
