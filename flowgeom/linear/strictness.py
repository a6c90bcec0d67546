r"""Strict and non-strict saddles of deep linear networks: a closed-form criterion from the second-order expansion.

At a critical point :math:`W = (W_1, \dots, W_{H+1})` of the canonical loss
:math:`L(W) = \tfrac12\|\Sigma - W_{H+1:1}\|_F^2` (:math:`W_{b:a} = W_b \cdots W_a`, the identity
when :math:`b < a`; :math:`E = \Sigma - W_{H+1:1}` the residual), the Hessian quadratic form is

.. math::

    Q(\dot W) = \Big\|\sum_{j=1}^{H+1} W_{H+1:j+1}\,\dot W_j\,W_{j-1:1}\Big\|_F^2
      - 2\sum_{h_1 < h_2}\big\langle E,\; W_{H+1:h_2+1}\,\dot W_{h_2}\,W_{h_2-1:h_1+1}\,\dot W_{h_1}\,W_{h_1-1:1}\big\rangle .

With distinct :math:`s_1 > \dots > s_{d_y} > 0`, every critical point has
:math:`W_{H+1:1} = \Sigma_S` for a learned set S of rank :math:`r = |S|`; let
:math:`r_{\max} = \min_j d_j`. :func:`saddle_strictness` returns

- ``"minimum"`` when :math:`S = \{0, \dots, r_{\max}-1\}` (a global minimizer);
- ``"strict"`` with a witness, a direction of negative curvature written in closed form:

  * ``"rotation"``: some :math:`k \notin S` and :math:`i \in S` have :math:`s_k > s_i`. Rotating
    :math:`W_{H+1}` by the angle :math:`t` in the output plane :math:`(e_i, e_k)` and :math:`W_1` by
    :math:`t` in the input plane :math:`(f_i, f_k)` gives :math:`L(t) = L(0) - s_i(s_k - s_i)\sin^2 t`,
    so :math:`Q = -2s_i(s_k - s_i) < 0` along the curve's velocity (the gradient vanishes, so the
    curve's acceleration does not contribute);
  * ``"pair"``: layers :math:`h_1 < h_2` with
    :math:`G = W_{H+1:h_2+1}^T E\,W_{h_1-1:1}^T \ne 0` and

    .. math::

        \operatorname{rk} W_{H+1:h_1+1} < \operatorname{rk} W_{h_2-1:h_1+1}
        \quad\text{or}\quad
        \operatorname{rk} W_{h_2-1:1} < \operatorname{rk} W_{h_2-1:h_1+1}.

    In the first case take :math:`x \ne 0` with :math:`W_{H+1:h_1+1}x = 0`, :math:`W_{h_2-1:h_1+1}x \ne 0`,
    :math:`w` with :math:`Gw \ne 0`, and :math:`\dot W_{h_1} = \tau\,x w^T`,
    :math:`\dot W_{h_2} = Gw\,(W_{h_2-1:h_1+1}x)^T`: the first-order term of layer :math:`h_1` vanishes
    and :math:`Q(\tau) = c - 2\tau\|Gw\|^2\|W_{h_2-1:h_1+1}x\|^2 \to -\infty`. The second case is the
    mirror image (the first-order term of layer :math:`h_2` vanishes);

- ``"non_strict"`` otherwise: S = {0..r-1}, :math:`r < r_{\max}` and no pair of layers is a witness.

Which criterion is implemented. The two witnesses above are *proved* sufficient for a negative
Hessian eigenvalue (the argument is in the bullets). That their absence leaves no negative direction
is the content of the full characterization of Achour, Malgouyres & Gerchinovitz (2024): among
first-order critical points, the non-strict saddles are the global minimizers of the loss under
the constraint rank :math:`\le r` (here S = {0..r-1}) whose partial products satisfy rank
conditions ("tightened" pivots). The full statement of their theorem was not available to us, so
this module implements the criterion *derived from the second-order expansion* (the
three-products rank test above, applied to every pair of layers) and does not claim to transcribe
their theorem; the sufficiency direction is proved here, the necessity direction is checked
against measured Hessian inertia (:func:`flowgeom.critical.hessian_inertia`) at every point of every
chart family of :mod:`flowgeom.linear.charts`, under random gauge transforms, and at mixed-rank
critical points (``tests/test_strictness.py``). For H = 1 the criterion always answers "strict"
below full rank (pair (1, 2): :math:`\operatorname{rk} W_2 \le r < d_1`), which is the paper's
Proposition 2 (iii) and the measured result.

References
----------
E. M. Achour, F. Malgouyres, S. Gerchinovitz, "The loss landscape of deep linear neural networks:
a second-order analysis", JMLR 25(242):1-76, 2024 (arXiv:2107.13289).
K. Kawaguchi, "Deep learning without poor local minima", NeurIPS 2016 (non-strict saddles exist
for H >= 2).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from flowgeom._types import FloatArray
from flowgeom._validate import InputError, check_positive
from flowgeom.linear.strata import CLASSIFY_RTOL, _learned_set

__all__ = ["STRICTNESS_KINDS", "StrictnessResult", "add_strictness_columns", "partial_product", "saddle_strictness"]

STRICTNESS_KINDS = ("minimum", "strict", "non_strict", "not_critical")
"""Values of :attr:`StrictnessResult.kind`."""

RANK_RTOL = 1e-8
"""Singular values of a partial product below ``RANK_RTOL`` times the product's scale count as zero."""


@dataclass(frozen=True)
class StrictnessResult:
    r"""The predicted second-order kind of one critical point, with its witness.

    Attributes
    ----------
    kind : str
        ``"minimum"``, ``"strict"``, ``"non_strict"``, or ``"not_critical"`` (the end-to-end product
        matches no :math:`\Sigma_S`, so the point is not a critical point of the canonical loss).
    learned : tuple of int or None
        The learned set S (None when not critical).
    witness : str
        ``"rotation"``, ``"pair"`` (strict), ``"top rank"`` (minimum), ``"none"`` (non-strict) or
        ``"not critical"``.
    layers : tuple of int or None
        The witnessing pair :math:`(h_1, h_2)` (1-based layers) for ``"pair"``; for ``"rotation"``
        the modes :math:`(i, k)`, :math:`i \in S`, :math:`k \notin S`, :math:`s_k > s_i`.
    ranks : tuple of int or None
        For ``"pair"``: :math:`(\operatorname{rk} W_{H+1:h_1+1}, \operatorname{rk} W_{h_2-1:h_1+1},
        \operatorname{rk} W_{h_2-1:1})`.
    curvature : float
        For ``"rotation"``, :math:`-2s_i(s_k - s_i)`: the second derivative of L along the rotation
        curve (unit angle speed); NaN otherwise.
    product_ranks : tuple of int
        Ranks of the partial products :math:`W_{H+1:h+1}` (h = 0..H) and :math:`W_{h:1}` (h = 1..H+1),
        in that order, for reports.
    """

    kind: str
    learned: tuple[int, ...] | None
    witness: str
    layers: tuple[int, int] | None = None
    ranks: tuple[int, int, int] | None = None
    curvature: float = float("nan")
    product_ranks: tuple[int, ...] = ()

    @property
    def describe(self) -> str:
        """One line: the kind and its witness."""
        if self.witness == "pair":
            h1, h2 = self.layers
            a, m, b = self.ranks
            return (f"strict: layers ({h1},{h2}), rk W_(H+1:{h1 + 1}) = {a}, rk W_({h2 - 1}:{h1 + 1}) = {m}, "
                    f"rk W_({h2 - 1}:1) = {b}")
        if self.witness == "rotation":
            i, k = self.layers
            return f"strict: rotate learned mode {i} toward larger unlearned mode {k} (curvature {self.curvature:.3g})"
        return f"{self.kind} ({self.witness})"


def partial_product(W: Sequence[FloatArray], a: int, b: int) -> FloatArray:
    r""":math:`W_{b:a} = W_b W_{b-1}\cdots W_a` (1-based layers); the identity of size :math:`d_{a-1}` when :math:`b < a`.

    Parameters
    ----------
    W : list of ndarray
        ``[W_1, ..., W_{H+1}]``, :math:`W_j` of shape :math:`(d_j, d_{j-1})`.
    a, b : int
        First and last factor, :math:`1 \le a \le H + 2`, :math:`a - 1 \le b \le H + 1`.
    """
    n = len(W)
    if not (1 <= a <= n + 1 and a - 1 <= b <= n):
        raise InputError(f"`a`, `b` must satisfy 1 <= a <= {n + 1}, a - 1 <= b <= {n}; got a = {a}, b = {b}.")
    if b < a:
        d = W[a - 1].shape[1] if a <= n else W[-1].shape[0]
        return np.eye(d)
    M = W[a - 1]
    for j in range(a + 1, b + 1):
        M = W[j - 1] @ M
    return M


def _rank(M: FloatArray, scale: float, rtol: float) -> int:
    if M.size == 0:
        return 0
    sv = np.linalg.svd(M, compute_uv=False)
    return int(np.sum(sv > rtol * scale))


def _check_inputs(widths, singular_values):
    w = tuple(int(d) for d in widths)
    if len(w) < 3 or any(d < 1 for d in w):
        raise InputError(f"`widths` must hold >= 3 positive ints (d_x, hidden..., d_y); got {tuple(widths)!r}.")
    s = np.asarray(singular_values, dtype=np.float64).ravel()
    if s.shape != (w[-1],) or not np.all(np.isfinite(s)) or np.any(s <= 0) or np.any(np.diff(s) >= 0):
        raise InputError(
            f"`singular_values` must hold d_y = {w[-1]} distinct positive values in descending order "
            f"(the criterion assumes distinct s); got {np.asarray(singular_values).tolist()!r}."
        )
    return w, s


def _as_layers(w, W):
    shapes = [(w[j], w[j - 1]) for j in range(1, len(w))]
    if isinstance(W, np.ndarray) and W.ndim == 1:
        n = sum(a * b for a, b in shapes)
        if W.size != n:
            raise InputError(f"`W` as a flat vector must have {n} entries for widths {w}; got {W.size}.")
        out, k = [], 0
        for shp in shapes:
            size = shp[0] * shp[1]
            out.append(W[k : k + size].reshape(shp))
            k += size
        return out
    W = [np.asarray(Wj, dtype=np.float64) for Wj in W]
    if [Wj.shape for Wj in W] != shapes:
        raise InputError(f"`W` must be [W_1, ..., W_(H+1)] with shapes {shapes}; got {[Wj.shape for Wj in W]}.")
    return W


def saddle_strictness(
    widths: Sequence[int],
    singular_values,
    W,
    *,
    rank_rtol: float = RANK_RTOL,
    atol: float | None = None,
) -> StrictnessResult | list[StrictnessResult]:
    r"""Predict whether a critical point of the canonical loss is a minimum, a strict or a non-strict saddle.

    .. math::

        \text{strict} \iff \exists\,k\notin S,\ i\in S: s_k > s_i
        \ \ \text{or}\ \ \exists\,h_1<h_2:\ W_{H+1:h_2+1}^T E\,W_{h_1-1:1}^T \ne 0,\
        \operatorname{rk}W_{h_2-1:h_1+1} > \min(\operatorname{rk}W_{H+1:h_1+1}, \operatorname{rk}W_{h_2-1:1})

    (see the module docstring for the derivation and for which direction is proved).

    Parameters
    ----------
    widths : sequence of int
        :math:`(d_x, d_1, \dots, d_H, d_y)`.
    singular_values : array_like, shape (d_y,)
        s, distinct, positive, descending (canonical :math:`\Sigma = [\mathrm{diag}(s) \mid 0]`).
    W : list of ndarray, or ndarray of shape (n,) or (m, n)
        One point as ``[W_1, ..., W_{H+1}]`` or as a flat parameter vector (packed as
        :class:`~flowgeom.models.DeepLinearNetwork` does, W_1 first, row-major); a 2-D array is a
        batch of m points.
    rank_rtol : float, default ``RANK_RTOL`` (1e-8)
        A singular value of a partial product of k layers counts as non-zero above
        ``rank_rtol`` :math:`\cdot \max(\sigma_{\max}, s_1^{k/(H+1)})`; G counts as non-zero above
        ``rank_rtol`` times the product of the norms that bound it.
    atol : float, optional
        Tolerance matching the end-to-end product to :math:`\Sigma_S`
        (default ``CLASSIFY_RTOL * s_1``, as :func:`flowgeom.linear.classify_point`).

    Returns
    -------
    StrictnessResult, or list of StrictnessResult for a batch
    """
    w, s = _check_inputs(widths, singular_values)
    rank_rtol = check_positive("rank_rtol", rank_rtol)
    if isinstance(W, np.ndarray) and W.ndim == 2:
        return [saddle_strictness(w, s, row, rank_rtol=rank_rtol, atol=atol) for row in W]
    Ws = _as_layers(w, W if not isinstance(W, np.ndarray) else np.asarray(W, dtype=np.float64))
    H = len(w) - 2
    dx, dy = w[0], w[-1]
    atol = CLASSIFY_RTOL * float(s[0]) if atol is None else check_positive("atol", atol)
    Sigma = np.zeros((dy, dx))
    Sigma[np.arange(dy), np.arange(dy)] = s
    P = partial_product(Ws, 1, H + 1)
    c = float(s[0]) ** (1.0 / (H + 1))

    def rk(a, b):
        M = partial_product(Ws, a, b)
        k = max(b - a + 1, 0)
        sv0 = float(np.linalg.norm(M, 2)) if M.size else 0.0
        return _rank(M, max(sv0, c**k), rank_rtol)

    prods = tuple(rk(h + 1, H + 1) for h in range(H + 1)) + tuple(rk(1, h) for h in range(1, H + 2))
    S = _learned_set(P, s, atol)
    if S is None:
        return StrictnessResult("not_critical", None, "not critical", product_ranks=prods)
    r = len(S)
    r_max = min(w)
    unlearned = [k for k in range(dy) if k not in S]
    # witness 1: a learned mode below an unlearned one (rotation in the (i, k) planes)
    pairs = [(i, k) for i in S for k in unlearned if s[k] > s[i]]
    if pairs:
        i, k = max(pairs, key=lambda p: s[p[0]] * (s[p[1]] - s[p[0]]))
        return StrictnessResult("strict", S, "rotation", layers=(i, k),
                                curvature=float(-2.0 * s[i] * (s[k] - s[i])), product_ranks=prods)
    if r == r_max:
        return StrictnessResult("minimum", S, "top rank", product_ranks=prods)
    E = Sigma - P
    nE = float(np.linalg.norm(E))
    # witness 2: a pair of layers whose middle product has a direction killed on one side only
    for h1 in range(1, H + 2):
        B = partial_product(Ws, 1, h1 - 1)
        for h2 in range(h1 + 1, H + 2):
            A = partial_product(Ws, h2 + 1, H + 1)
            G = A.T @ E @ B.T
            bound = max(np.linalg.norm(A, 2), c ** (H + 1 - h2)) * nE * max(np.linalg.norm(B, 2), c ** (h1 - 1))
            if not np.linalg.norm(G) > rank_rtol * bound:
                continue
            m = rk(h1 + 1, h2 - 1)
            up, low = rk(h1 + 1, H + 1), rk(1, h2 - 1)
            if up < m or low < m:
                return StrictnessResult("strict", S, "pair", layers=(h1, h2), ranks=(up, m, low), product_ranks=prods)
    return StrictnessResult("non_strict", S, "none", product_ranks=prods)


def add_strictness_columns(strata):
    r"""Join the closed-form prediction onto a strata Dataset, beside the measured inertia, point by point.

    .. math::

        \text{measured kind} = \begin{cases}\text{strict} & n_- > 0\\ \text{minimum} & n_- = 0,\ r = r_{\max}\\
        \text{non\_strict} & n_- = 0,\ r < r_{\max}\end{cases}
        \qquad\text{compared with}\qquad \text{saddle\_strictness}(\theta).

    Parameters
    ----------
    strata : xarray.Dataset
        A deep-linear strata Dataset (:func:`flowgeom.linear.build_strata_dataset`) with the stored
        points ``point_theta`` (canonical coordinates), ``point_stratum``, ``point_n_negative``,
        ``point_inertia_decided``, coordinate ``rank`` and attrs ``widths``, ``singular_values``.

    Returns
    -------
    xarray.Dataset
        A copy with ``point_strictness`` (predicted kind, :data:`STRICTNESS_KINDS`),
        ``point_strictness_witness`` (:attr:`StrictnessResult.describe`), ``point_strictness_measured``
        (the measured kind, ``"undecided"`` where the inertia is), ``point_strictness_agrees`` (bool;
        False where undecided) and, per stratum, ``strictness_disagreements`` (count of decided points
        where prediction and measurement differ).
    """
    need = ["point_theta", "point_stratum", "point_n_negative", "point_inertia_decided"]
    missing = [v for v in need if v not in strata]
    if missing or "widths" not in strata.attrs or "singular_values" not in strata.attrs:
        raise InputError(
            f"`strata` must be a deep-linear strata Dataset with stored points (missing {missing or 'attrs'}); "
            "build it with store_points=True."
        )
    w = tuple(int(d) for d in np.atleast_1d(strata.attrs["widths"]))
    s = np.asarray(strata.attrs["singular_values"], dtype=np.float64)
    r_max = min(w)
    ranks = np.asarray(strata["rank"].values)
    pst = np.asarray(strata["point_stratum"].values)
    pred, wit, meas, agree = [], [], [], []
    for i, th in enumerate(np.asarray(strata["point_theta"].values)):
        res = saddle_strictness(w, s, th)
        pred.append(res.kind)
        wit.append(res.describe)
        if not bool(strata["point_inertia_decided"].values[i]):
            m = "undecided"
        elif int(strata["point_n_negative"].values[i]) > 0:
            m = "strict"
        else:
            m = "minimum" if int(ranks[pst[i]]) == r_max else "non_strict"
        meas.append(m)
        agree.append(m == res.kind)
    out = strata.copy()
    out["point_strictness"] = ("point", np.array(pred, dtype=object))
    out["point_strictness_witness"] = ("point", np.array(wit, dtype=object))
    out["point_strictness_measured"] = ("point", np.array(meas, dtype=object))
    out["point_strictness_agrees"] = ("point", np.array(agree, dtype=bool))
    decided = np.array([m != "undecided" for m in meas], dtype=bool)
    bad = decided & ~np.array(agree, dtype=bool)
    out["strictness_disagreements"] = (
        "stratum", np.array([int(np.sum(bad & (pst == k))) for k in range(strata.sizes["stratum"])], dtype=np.int64)
    )
    return out
