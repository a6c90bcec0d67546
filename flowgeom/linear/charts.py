r"""Charts of the critical strata: maps from free parameters onto families of critical points.

For H = 1, Lemma 2 and equation (8) of the paper describe the stratum with learned set S
(in the basis where the permutation U of Lemma 2 puts S first): with
:math:`\bar W_2 = C`, :math:`\bar W_1 = [A \mid B]`,

.. math::

    C_{S^c,:} = 0,\quad A_{:,S^c} = 0,\quad \bar C \bar A = D_S,\quad \bar C B = 0,

where :math:`\bar C = C_{S,:}` (r x d_1, full rank r), :math:`\bar A = A_{:,S}` and
:math:`D_S = \mathrm{diag}(s_i)_{i\in S}`. The chart used here is

.. math::

    \bar A = \bar C^{+} D_S + \Pi X_a, \qquad B = \Pi X_b, \qquad
    \bar C^{+} = \bar C^T(\bar C\bar C^T)^{-1},\quad \Pi = I - \bar C^{+}\bar C,

with free parameters :math:`(\bar C, X_a, X_b)`. It is onto the stratum and a submersion
wherever :math:`\bar C` has full rank, so the rank of its Jacobian is the stratum's dimension,

.. math:: \dim = r d_1 + (d_1 - r) r + (d_1 - r)(d_x - d_y) = 2 d_1 r - r^2 + (d_1 - r)(d_x - d_y),

which is the paper's :math:`D_C^r` (Lemma 3) for every S, and extends to r = 0 and r = d_y.

For H >= 2 the same construction with :math:`\bar C` replaced by :math:`Z_S = \bar C W_H\cdots W_2`
(middle layers free) gives the family ``"outer"``: output rows outside S and input columns
outside S are zero. It is not the whole stratum: a stratum of a deep network is a union of
families whose points can differ in their Hessian inertia. This module also provides

- ``"tight"``: the orbit of the balanced point whose every layer carries only the r learned
  modes (all partial products of rank r) under the layer gauge
  :math:`(W_{j+1}G_j^{-1}, G_j W_j)`, :math:`G_j \in GL(d_j)`. For S = {0..r-1} and H >= 2 its
  points have no negative Hessian eigenvalue (non-strict saddles);
- ``"zero(a,b)"`` (S = {} only, H >= 2): layers a and b zero, the others free;
- ``"origin"`` (S = {} only, H >= 2): all layers zero (the Hessian vanishes).

All chart maps are analytic and written without conjugation, so their Jacobians are exact by
the complex step :math:`J e_k = \mathrm{Im}\,\phi(z + i h e_k)/h`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from flowgeom._types import FloatArray, Params
from flowgeom.linear.strata import _problem_parts, format_label

__all__ = [
    "StratumChart",
    "family_names",
    "make_chart",
    "charts_for_stratum",
    "apply_gauge",
    "random_gauge",
    "numerical_rank",
    "RANK_RTOL",
]

RANK_RTOL = 1e-8
"""Singular values below ``RANK_RTOL * sigma_max`` count as zero in :func:`numerical_rank`."""

_H_STEP = 1e-30  # complex step; any tiny value works since there is no subtractive cancellation


def numerical_rank(J: FloatArray, *, rtol: float = RANK_RTOL) -> tuple[int, float]:
    r"""Rank of J by SVD: singular values :math:`> \text{rtol}\,\sigma_{\max}`; also the gap :math:`\sigma_k/\sigma_{k+1}`.

    Returns
    -------
    rank : int
    gap : float
        Ratio of the smallest kept to the largest dropped singular value (``inf`` if none dropped).
    """
    if J.size == 0:
        return 0, np.inf
    sv = np.linalg.svd(J, compute_uv=False)
    if sv[0] == 0:
        return 0, np.inf
    k = int(np.sum(sv > rtol * sv[0]))
    if k == sv.size:
        return k, np.inf
    return k, float(sv[k - 1] / max(sv[k], np.finfo(float).tiny)) if k > 0 else 0.0


def _mT(A):
    return np.swapaxes(A, -1, -2)


def _pinv_rows(Z):
    """Right inverse Z^T (Z Z^T)^{-1} of a full-row-rank Z (..., r, d); analytic (complex-step safe)."""
    ZZt = Z @ _mT(Z)
    return _mT(np.linalg.solve(ZZt, Z))  # (Z Z^T)^{-1} Z, transposed; ZZt symmetric


@dataclass(frozen=True, eq=False)
class StratumChart:
    r"""A smooth map :math:`z \mapsto \theta(z)` from free parameters onto a family of critical points.

    Build with :func:`make_chart` or :func:`charts_for_stratum`.

    Attributes
    ----------
    widths : tuple of int
    singular_values : ndarray
        s, descending.
    learned : tuple of int
        The learned set S.
    family : str
        ``"outer"``, ``"tight"``, ``"zero(a,b)"`` (1-based layer indices) or ``"origin"``.
    n_free : int
        Number of free parameters (>= the family's dimension; the chart may be redundant).
    """

    widths: tuple[int, ...]
    singular_values: FloatArray
    learned: tuple[int, ...]
    family: str
    _blocks: tuple[tuple[str, tuple[int, ...]], ...] = field(init=False, repr=False)
    _base: tuple = field(init=False, repr=False)

    def __post_init__(self):
        w = self.widths
        H = len(w) - 2
        S = self.learned
        r = len(S)
        dx, dy = w[0], w[-1]
        s = np.asarray(self.singular_values, dtype=np.float64)
        blocks: list[tuple[str, tuple[int, ...]]] = []
        base: tuple = ()
        fam = self.family
        if fam == "outer":
            blocks.append(("Cbar", (r, w[H])))
            for j in range(2, H + 1):  # middle layers W_2..W_H, shapes (d_j, d_{j-1})
                blocks.append((f"W{j}", (w[j], w[j - 1])))
            blocks.append(("Xa", (w[1], r)))
            blocks.append(("Xb", (w[1], dx - dy)))
        elif fam == "tight":
            for j in range(1, H + 1):
                blocks.append((f"X{j}", (w[j], w[j])))
            if r > min(w[1:-1]):
                raise ValueError(f"family 'tight' needs r = {r} <= every hidden width {w[1:-1]}.")
            c = s[list(S)] ** (1.0 / (H + 1)) if r else np.zeros(0)
            W0 = []
            for j in range(1, H + 2):
                M = np.zeros((w[j], w[j - 1]))
                for a, i in enumerate(S):
                    row = i if j == H + 1 else a
                    col = i if j == 1 else a
                    M[row, col] = c[a]
                W0.append(M)
            base = tuple(W0)
        elif fam == "origin":
            if H < 2 or r != 0:
                raise ValueError("family 'origin' exists for S = {} and H >= 2 only (for H = 1 it is a point of 'outer').")
        elif fam.startswith("zero(") and fam.endswith(")"):
            try:
                a, b = (int(x) for x in fam[5:-1].split(","))
            except ValueError:
                raise ValueError(f"`family` must look like 'zero(1,2)'; got {fam!r}.") from None
            if H < 2 or r != 0 or not (1 <= a < b <= H + 1):
                raise ValueError(
                    f"family {fam!r} needs H >= 2, S = {{}} and 1 <= a < b <= H + 1 = {H + 1}; got H = {H}, S = {S}."
                )
            for j in range(1, H + 2):
                if j not in (a, b):
                    blocks.append((f"W{j}", (w[j], w[j - 1])))
            base = (a, b)
        else:
            raise ValueError(
                f"`family` must be 'outer', 'tight', 'zero(a,b)' or 'origin'; got {fam!r}."
            )
        object.__setattr__(self, "_blocks", tuple(blocks))
        object.__setattr__(self, "_base", base)

    # ------------------------------------------------------------------ sizes and labels
    @property
    def depth_H(self) -> int:
        return len(self.widths) - 2

    @property
    def n_params(self) -> int:
        w = self.widths
        return sum(w[j] * w[j - 1] for j in range(1, len(w)))

    @property
    def n_free(self) -> int:
        return int(sum(int(np.prod(shp)) for _, shp in self._blocks))

    @property
    def label(self) -> str:
        """``"{0,2}|outer"``: the stratum label and the family."""
        return format_label(self.learned) + "|" + self.family

    # ------------------------------------------------------------------ the map
    def _split(self, z):
        out = {}
        k = 0
        batch = z.shape[:-1]
        for name, shp in self._blocks:
            size = int(np.prod(shp))
            out[name] = z[..., k : k + size].reshape(batch + shp)
            k += size
        return out

    def weights(self, z) -> list[FloatArray]:
        r"""Weights :math:`[W_1, \dots, W_{H+1}]` at free parameters z, shape ``(..., n_free)``; complex z allowed."""
        z = np.asarray(z)
        if z.ndim == 0 or z.shape[-1] != self.n_free:
            raise ValueError(f"`z` must have shape (..., {self.n_free}) (the chart's n_free); got {z.shape}.")
        dtype = np.result_type(z.dtype, np.float64)
        z = z.astype(dtype, copy=False)
        batch = z.shape[:-1]
        w = self.widths
        H = self.depth_H
        S = list(self.learned)
        r = len(S)
        dx, dy = w[0], w[-1]
        s = np.asarray(self.singular_values)
        blk = self._split(z)
        fam = self.family
        if fam == "outer":
            WH1 = np.zeros(batch + (dy, w[H]), dtype=dtype)
            W1 = np.zeros(batch + (w[1], dx), dtype=dtype)
            mids = [blk[f"W{j}"] for j in range(2, H + 1)]
            Cbar = blk["Cbar"]
            if r:
                WH1[..., S, :] = Cbar
                Z = Cbar
                for Wj in reversed(mids):  # Z = Cbar W_H ... W_2
                    Z = Z @ Wj
                Zp = _pinv_rows(Z)  # (d1, r)
                Pi = np.eye(w[1]) - Zp @ Z
                Abar = Zp * s[S] + Pi @ blk["Xa"]
                B = Pi @ blk["Xb"]
                W1[..., :, S] = Abar
            else:
                B = blk["Xb"]
            W1[..., :, dy:] = B
            return [W1] + mids + [WH1]
        if fam == "tight":
            W0 = self._base
            G = [np.eye(w[j]) + blk[f"X{j}"] for j in range(1, H + 1)]
            out = []
            for j in range(1, H + 2):
                M = np.broadcast_to(W0[j - 1], batch + W0[j - 1].shape).astype(dtype)
                if j <= H:
                    M = G[j - 1] @ M
                if j >= 2:  # right-multiply by G_{j-1}^{-1}: solve(G^T, M^T)^T
                    M = _mT(np.linalg.solve(_mT(G[j - 2]), _mT(M)))
                out.append(M)
            return out
        if fam == "origin":
            return [np.zeros(batch + (w[j], w[j - 1]), dtype=dtype) for j in range(1, H + 2)]
        a, b = self._base
        return [
            np.zeros(batch + (w[j], w[j - 1]), dtype=dtype) if j in (a, b) else blk[f"W{j}"]
            for j in range(1, H + 2)
        ]

    def point(self, z) -> Params:
        """Flat parameters θ(z), shape ``(..., n_params)``, packed W_1 first, row-major (as DeepLinearNetwork)."""
        W = self.weights(z)
        batch = W[0].shape[:-2]
        return np.concatenate([Wj.reshape(batch + (-1,)) for Wj in W], axis=-1)

    def jacobian(self, z, *, chunk: int = 512) -> FloatArray:
        r"""Exact Jacobian :math:`\partial\theta/\partial z`, shape (n_params, n_free), by the complex step."""
        z = np.asarray(z, dtype=np.float64)
        if z.shape != (self.n_free,):
            raise ValueError(f"`z` must have shape ({self.n_free},); got {z.shape}.")
        J = np.empty((self.n_params, self.n_free))
        eye = np.eye(self.n_free)
        for start in range(0, self.n_free, chunk):
            stop = min(self.n_free, start + chunk)
            Z = z + 1j * _H_STEP * eye[start:stop]
            J[:, start:stop] = (self.point(Z).imag / _H_STEP).T
        return J

    def tangent_dim(self, z, *, rtol: float = RANK_RTOL) -> tuple[int, float]:
        """Rank of the Jacobian at z (the family's dimension there) and the singular-value gap that decided it."""
        if self.n_free == 0:
            return 0, np.inf
        return numerical_rank(self.jacobian(z), rtol=rtol)

    def tangent_basis(self, z, *, rtol: float = RANK_RTOL) -> FloatArray:
        """Orthonormal basis (n_params, k) of the tangent space (range of the Jacobian) at z."""
        if self.n_free == 0:
            return np.zeros((self.n_params, 0))
        U, sv, _ = np.linalg.svd(self.jacobian(z), full_matrices=False)
        k = int(np.sum(sv > rtol * sv[0])) if sv.size and sv[0] > 0 else 0
        return U[:, :k]

    def sample(self, rng: np.random.Generator, size=None) -> FloatArray:
        r"""Random free parameters giving well-conditioned points, shape ``size + (n_free,)``.

        Full-rank blocks (:math:`\bar C`, middle layers) are drawn as :math:`U\,\mathrm{diag}(\sigma)V^T`
        with Haar U, V and :math:`\sigma \sim \mathcal{U}(0.7, 1.3)\,c`, :math:`c = \bar s^{1/(H+1)}`
        (:math:`\bar s` the mean learned singular value), so that :math:`\bar C \bar C^T` is never
        near singular; kernel components and gauge generators are Gaussian, scaled to keep
        every gauge matrix :math:`I + X` invertible (:math:`\|X\|_2 \lesssim 0.5`).
        """
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"`rng` must be a numpy.random.Generator; got {type(rng).__name__}.")
        shape = () if size is None else tuple(np.atleast_1d(size))
        count = int(np.prod(shape)) if shape else 1
        H = self.depth_H
        s = np.asarray(self.singular_values)
        c = float(np.mean(s[list(self.learned)])) ** (1.0 / (H + 1)) if self.learned else float(np.mean(s)) ** (1.0 / (H + 1))
        out = np.empty((count, self.n_free))
        for n in range(count):
            parts = []
            for name, shp in self._blocks:
                if name == "Cbar" or (name.startswith("W") and self.family == "outer"):
                    parts.append(_well_conditioned(rng, shp, c).ravel())
                elif name.startswith("W"):
                    parts.append((c * rng.standard_normal(shp) / np.sqrt(max(shp[1], 1))).ravel())
                elif name.startswith("X") and self.family == "tight":
                    d = shp[0]
                    parts.append((0.25 * rng.standard_normal(shp) / np.sqrt(d)).ravel())
                else:  # Xa, Xb: kernel components
                    parts.append((c * rng.standard_normal(shp) / np.sqrt(max(shp[0], 1))).ravel())
            out[n] = np.concatenate(parts) if parts else np.zeros(0)
        return out.reshape(shape + (self.n_free,))


def _well_conditioned(rng, shape, c):
    m, n = shape
    k = min(m, n)
    if k == 0:
        return np.zeros(shape)
    U, _ = np.linalg.qr(rng.standard_normal((m, k)))
    V, _ = np.linalg.qr(rng.standard_normal((n, k)))
    sig = c * rng.uniform(0.7, 1.3, size=k)
    return (U * sig) @ V.T


def family_names(widths: Sequence[int], learned: Sequence[int]) -> list[str]:
    """The families sampled for a stratum: ``["outer"]`` for H = 1; for H >= 2 ``["outer", "tight"]``,
    plus ``"zero(a,b)"`` for every pair of layers and ``"origin"`` when S = {}."""
    H = len(widths) - 2
    if H == 1:
        return ["outer"]
    names = ["outer", "tight"]
    if len(learned) == 0:
        names += [f"zero({a},{b})" for a, b in itertools.combinations(range(1, H + 2), 2)]
        names.append("origin")
    return names


def make_chart(problem, learned: Sequence[int], family: str = "outer") -> StratumChart:
    """The chart of one family of stratum S for a Problem (canonical coordinates).

    Parameters
    ----------
    problem : Problem
    learned : sequence of int
        S (indices into s sorted descending).
    family : str, default "outer"
        See the module docstring.
    """
    widths, s = _problem_parts(problem)
    dy = widths[-1]
    S = tuple(sorted(int(i) for i in learned))
    if len(set(S)) != len(S) or any(i < 0 or i >= dy for i in S):
        raise ValueError(f"`learned` must hold distinct indices in 0..{dy - 1}; got {tuple(learned)!r}.")
    return StratumChart(widths, np.array(s), S, family)


def charts_for_stratum(problem, learned: Sequence[int], *, families: Sequence[str] | None = None) -> list[StratumChart]:
    """Charts of all default families of stratum S (see :func:`family_names`), or of ``families``."""
    widths, _ = _problem_parts(problem)
    names = family_names(widths, learned) if families is None else list(families)
    return [make_chart(problem, learned, f) for f in names]


def random_gauge(widths: Sequence[int], rng: np.random.Generator, *, scale: float = 0.3) -> list[FloatArray]:
    r"""Random invertible :math:`G_j = I + X_j`, j = 1..H, :math:`\|X_j\|_2 \approx 2\,\text{scale}`."""
    w = tuple(int(d) for d in widths)
    return [np.eye(w[j]) + scale * rng.standard_normal((w[j], w[j])) / np.sqrt(w[j]) for j in range(1, len(w) - 1)]


def apply_gauge(W: Sequence[FloatArray], G: Sequence[FloatArray]) -> list[FloatArray]:
    r"""The loss-preserving gauge action :math:`W_j \mapsto G_j W_j G_{j-1}^{-1}` (:math:`G_0 = I`, :math:`G_{H+1} = I`).

    Parameters
    ----------
    W : list of ndarray
        ``[W_1, ..., W_{H+1}]``.
    G : list of ndarray
        ``[G_1, ..., G_H]``, invertible, shapes (d_j, d_j).

    Notes
    -----
    The map is linear and invertible on parameter space, :math:`\theta \mapsto T\theta`, and
    :math:`L(T\theta) = L(\theta)`, so :math:`\nabla^2 L(T\theta) = T^{-T}\nabla^2 L(\theta)T^{-1}`
    at a critical point: the inertia is the same (Sylvester's law of inertia).
    """
    W = [np.asarray(Wj) for Wj in W]
    if len(G) != len(W) - 1:
        raise ValueError(f"`G` must hold H = {len(W) - 1} matrices (one per hidden layer); got {len(G)}.")
    out = []
    for j, Wj in enumerate(W):
        M = Wj
        if j < len(G):
            M = G[j] @ M
        if j >= 1:
            M = np.linalg.solve(G[j - 1].T, M.T).T
        out.append(M)
    return out
