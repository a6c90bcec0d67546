r"""Closed forms for diagonal linear networks: critical sets, and the saddle-to-saddle limit of small initialisation.

Critical sets
-------------
For :class:`~flowgeom.models.diagonal.DiagonalLinearNetwork` of depth D, with
:math:`r = \nabla_\beta L = X^T(X\beta - y)/n` and :math:`\pi_{k,i} = \prod_{l\ne k} w_{l,i}`, the gradient is
:math:`\partial L/\partial w_{k,i} = \pi_{k,i} r_i`. So w is critical iff for every coordinate i either
:math:`r_i = 0`, or :math:`\pi_{k,i} = 0` for every k, i.e. at least two of the D factors
:math:`w_{1,i},\dots,w_{D,i}` vanish (for D = 2: :math:`u_i = v_i = 0`). Critical points are therefore
indexed by the support S of :math:`\beta`: :math:`r_S = 0` makes :math:`\beta_S` the least-squares fit
restricted to S, :math:`\beta_S = (X_S^T X_S)^{-1} X_S^T y` (X_S of full column rank), and
:math:`\beta_{S^c} = 0`. When :math:`r_i \neq 0` for all :math:`i \notin S` (*generic* S) the critical set is

.. math:: M_S = \{w : \textstyle\prod_k w_{k,i} = \beta_i \ (i \in S),\ \text{at least two } w_{k,i} = 0 \ (i \notin S)\},

of dimension :math:`|S|(D-1) + (d-|S|)(D-2)` and loss :math:`L(\beta_S)`. At its points where exactly two
factors of each inactive coordinate vanish (all of :math:`M_S` for D = 2) the Hessian has inertia

.. math:: (n_-, n_0, n_+) = \big(d - |S|,\ |S|(D-1) + (d-|S|)(D-2),\ d\big):

an inactive coordinate with zero factors a, b contributes the block
:math:`\begin{psmallmatrix}0 & c\,r_i\\ c\,r_i & 0\end{psmallmatrix}`, :math:`c = \prod_{l\ne a,b} w_{l,i} \ne 0`,
(eigenvalues :math:`\pm c r_i`) and D - 2 zeros; the active coordinates contribute
:math:`J^T (X_S^TX_S/n) J` with :math:`J_{i,(k,i)} = \pi_{k,i}`, of rank |S|; the cross terms vanish. So
:math:`n_0` equals the dimension of :math:`M_S` (Morse--Bott there), and :math:`M_S` is a strict saddle unless
:math:`S^c` is empty of coordinates with :math:`r_i \ne 0`, i.e. unless :math:`\beta_S` is a global minimiser.

Saddle-to-saddle dynamics (depth 2)
-----------------------------------
From :math:`u(0) = \sqrt2\,\alpha\mathbf 1`, :math:`v(0) = 0`, the variables :math:`u \pm v` evolve by
:math:`\frac{d}{dt}(u\pm v) = \mp (u \pm v)\odot r`, so :math:`\beta(t) = \alpha^2 \sinh(2 S(t))` with
:math:`S(t) = -\int_0^t r(\beta)`. In the time :math:`\tau = t/\ln(1/\alpha)` and with
:math:`s(\tau) = S/\ln(1/\alpha)`, a coordinate of :math:`\beta` is of order one only where
:math:`|s_i| = 1`. Pesme & Flammarion [1]_ prove that as :math:`\alpha \to 0`, :math:`\beta(\tau\ln(1/\alpha))`
converges to a piecewise-constant path of saddles :math:`\beta_0 = 0, \beta_1, \dots` given by their
Algorithm 1, which :func:`saddle_sequence` implements: starting from :math:`\tau_0 = 0`, :math:`s = 0`,

1. :math:`\Delta = \inf\{\delta > 0 : \exists i,\ |s_i - \delta\, r_i(\beta_k)| = 1\}`,
   :math:`\tau_{k+1} = \tau_k + \Delta`, :math:`s \leftarrow s - \Delta\, r(\beta_k)`;
2. :math:`\beta_{k+1} = \arg\min L(\beta)` subject to :math:`\beta_i \ge 0` where :math:`s_i = 1`,
   :math:`\beta_i \le 0` where :math:`s_i = -1`, :math:`\beta_i = 0` where :math:`|s_i| < 1`
   (a non-negative least-squares problem),

until :math:`r(\beta_k) = 0` (the minimum-:math:`\ell_1`-norm interpolator, or least-squares solution).

*Relation with the Lasso path* (tested against scikit-learn's ``lars_path``): because r is affine,
:math:`s(\tau)/\tau = -r(\bar\beta(\tau))` with the time average :math:`\bar\beta(\tau) = \frac1\tau
\int_0^\tau \beta`. If the path is *monotone* (every coordinate, once active, stays in the support of every
later saddle with the same sign) then :math:`s(\tau) \in \partial\|\bar\beta(\tau)\|_1`, which is the Lasso
optimality condition for :math:`\min \frac{1}{2n}\|X\beta-y\|^2 + \lambda\|\beta\|_1` at
:math:`\lambda = 1/\tau`. Hence in the monotone case the jump times are the reciprocal Lasso knots,
:math:`\tau_k = 1/\lambda_{k-1}` (:math:`\lambda_0 = \|X^Ty\|_\infty/n > \lambda_1 > \dots`), the supports and
signs of :math:`\beta_k` are the Lasso active sets on :math:`(\lambda_k, \lambda_{k-1})`, and
:math:`\hat\beta_{\rm lasso}(\lambda) = \bar\beta(1/\lambda)` (see :func:`time_average`). A Lasso path that drops
a variable is not monotone and the relation fails.

References
----------
.. [1] S. Pesme, N. Flammarion, "Saddle-to-saddle dynamics in diagonal linear networks", NeurIPS 2023,
   arXiv:2304.00488, Algorithm 1 and Theorem 2.
.. [2] B. Efron, T. Hastie, I. Johnstone, R. Tibshirani, "Least angle regression", Ann. Statist. 32 (2004).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from scipy.optimize import nnls

from flowgeom._types import FloatArray
from flowgeom._validate import InputError, check_int, check_positive
from flowgeom.models.diagonal import DiagonalLinearNetwork

__all__ = [
    "CriticalSet",
    "Saddle",
    "Plateau",
    "critical_sets",
    "critical_set_points",
    "saddle_sequence",
    "is_monotone",
    "time_average",
    "observed_saddle_sequence",
    "loss_crossing_times",
]


# ====================================================================== critical sets
@dataclass(frozen=True, eq=False)
class CriticalSet:
    r"""The critical set :math:`M_S` of one support S (see the module docstring).

    Attributes
    ----------
    support : tuple of int
        S, the coordinates where :math:`\beta \ne 0`.
    signs : tuple of int
        Signs of :math:`\beta_S` (+1 / -1).
    beta : ndarray, shape (d,)
        The least-squares fit restricted to S, zero off S.
    loss : float
        :math:`L(\beta)`.
    dimension : int
        :math:`|S|(D-1) + (d-|S|)(D-2)`.
    generic : bool
        :math:`|r_i| > 0` (beyond tolerance) for every :math:`i \notin S`; otherwise the set is larger and
        degenerate, and ``inertia`` is None.
    inertia : tuple of int or None
        :math:`(n_-, n_0, n_+) = (d-|S|, \text{dimension}, d)` at the points where exactly two factors of
        each inactive coordinate vanish (every point for D = 2).
    point : ndarray, shape (D d,)
        A representative point of that stratum: active :math:`w_{k,i} = |\beta_i|^{1/D}` (sign on
        :math:`w_{1,i}`), inactive :math:`w_{1,i} = w_{2,i} = 0`, other factors 1.
    """

    support: tuple
    signs: tuple
    beta: FloatArray
    loss: float
    dimension: int
    generic: bool
    inertia: tuple | None
    point: FloatArray

    @property
    def is_minimum(self) -> bool:
        """True when the Hessian has no negative direction (``inertia[0] == 0``): a global minimum set."""
        return self.inertia is not None and self.inertia[0] == 0


def critical_sets(model: DiagonalLinearNetwork, max_support: int | None = None, *, tol: float = 1e-9) -> list[CriticalSet]:
    r"""Enumerate the critical sets :math:`M_S` of a diagonal linear network, one per admissible support S.

    A support S is admissible when :math:`X_S` has full column rank and the restricted least-squares fit has no
    zero entry (``|beta_i| > tol * scale``); a fit with a zero entry belongs to a smaller support. Supports with
    rank-deficient :math:`X_S` (possible when d > n) are skipped: their critical sets are affine families not
    enumerated here.

    Parameters
    ----------
    model : DiagonalLinearNetwork
    max_support : int or None, default None
        Largest |S| enumerated; None means ``min(d, n)``. The count grows as :math:`\sum_k \binom{d}{k}`.
    tol : float, default 1e-9
        Relative tolerance (times :math:`\max(1, \|X^Ty\|_\infty/n)`) for zero entries of :math:`\beta` and of r.

    Returns
    -------
    list of CriticalSet
        Sorted by decreasing loss, then by support.
    """
    if not isinstance(model, DiagonalLinearNetwork):
        raise InputError(f"`model` must be a DiagonalLinearNetwork; got {type(model).__name__}.")
    n, d = model.X.shape
    D = model.depth
    kmax = min(d, n) if max_support is None else check_int("max_support", max_support, minimum=0, maximum=d)
    tol = check_positive("tol", tol)
    scale = max(1.0, float(np.max(np.abs(model.grad_beta(np.zeros(d))))))
    out = []
    for k in range(kmax + 1):
        for S in itertools.combinations(range(d), k):
            beta = np.zeros(d)
            if k:
                XS = model.X[:, S]
                sv = np.linalg.svd(XS, compute_uv=False)
                if sv[-1] <= 1e-12 * sv[0] * max(n, k):
                    continue
                beta[list(S)] = np.linalg.lstsq(XS, model.y, rcond=None)[0]
                if np.any(np.abs(beta[list(S)]) <= tol * scale):
                    continue
            r = model.grad_beta(beta)
            off = np.setdiff1d(np.arange(d), S)
            generic = bool(np.all(np.abs(r[off]) > tol * scale))
            dim = k * (D - 1) + (d - k) * (D - 2)
            out.append(CriticalSet(
                support=tuple(S), signs=tuple(int(np.sign(beta[i])) for i in S), beta=beta,
                loss=float(model.loss_beta(beta)), dimension=dim, generic=generic,
                inertia=(d - k, dim, d) if generic else None, point=_representative(model, beta, S),
            ))
    out.sort(key=lambda c: (-c.loss, len(c.support), c.support))
    return out


def _representative(model, beta, S):
    d, D = model.n_features, model.depth
    W = np.ones((D, d))
    act = np.zeros(d, dtype=bool)
    act[list(S)] = True
    W[:, act] = np.abs(beta[act]) ** (1.0 / D)
    W[0, act] *= np.sign(beta[act])
    W[:2, ~act] = 0.0
    return W.reshape(-1)


def critical_set_points(model: DiagonalLinearNetwork, cset: CriticalSet, rng: np.random.Generator, size: int) -> FloatArray:
    r"""Random points of :math:`M_S` on its stratum of known inertia, shape ``(size, D d)``.

    Active coordinate i: :math:`w_{k,i}`, k < D, are :math:`\pm e^{g}|\beta_i|^{1/D}` with random signs and
    :math:`g \sim N(0, 0.5^2)`; :math:`w_{D,i} = \beta_i / \prod_{k<D} w_{k,i}`. Inactive coordinate: two
    factors chosen at random are 0, the others N(0, 1).

    Parameters
    ----------
    model : DiagonalLinearNetwork
    cset : CriticalSet
    rng : numpy.random.Generator
    size : int
        Number of points (>= 1).
    """
    size = check_int("size", size, minimum=1)
    d, D = model.n_features, model.depth
    act = np.zeros(d, dtype=bool)
    act[list(cset.support)] = True
    W = rng.standard_normal((size, D, d))
    a = np.abs(cset.beta[act]) ** (1.0 / D)
    if act.any():
        mags = a * np.exp(0.5 * rng.standard_normal((size, D - 1, act.sum())))
        sg = rng.choice([-1.0, 1.0], size=(size, D - 1, act.sum()))
        W[:, : D - 1, act] = sg * mags
        W[:, D - 1, act] = cset.beta[act] / np.prod(W[:, : D - 1, act], axis=1)
    for i in np.flatnonzero(~act):
        for m in range(size):
            W[m, rng.choice(D, size=2, replace=False), i] = 0.0
    return W.reshape(size, D * d)


# ====================================================================== Algorithm 1 of Pesme & Flammarion
@dataclass(frozen=True, eq=False)
class Saddle:
    r"""One saddle :math:`\beta_k` of the limiting path, reached at rescaled time :math:`\tau_k`.

    Attributes
    ----------
    t : float
        :math:`\tau_k`, the jump time in units of :math:`\ln(1/\alpha)` (0 for :math:`\beta_0 = 0`).
    support : tuple of int
    signs : tuple of int
        Signs of :math:`\beta_k` on the support.
    beta : ndarray, shape (d,)
    s : ndarray, shape (d,)
        The dual variable :math:`s(\tau_k) \in [-1, 1]^d`.
    loss : float
        :math:`L(\beta_k)`.
    """

    t: float
    support: tuple
    signs: tuple
    beta: FloatArray
    s: FloatArray
    loss: float


def _constrained_lsq(X, y, s, tol):
    """argmin ||X b - y|| with b_i >= 0 (s_i = 1), b_i <= 0 (s_i = -1), b_i = 0 (|s_i| < 1)."""
    d = X.shape[1]
    beta = np.zeros(d)
    B = np.flatnonzero(np.abs(s) == 1.0)
    if B.size == 0:
        return beta
    sg = s[B]
    z, _ = nnls(X[:, B] * sg, y, maxiter=50 * max(B.size, 10))
    P = z > 0
    if P.any():  # polish on the strict support: nnls stops at its own tolerance
        zP = np.linalg.lstsq((X[:, B] * sg)[:, P], y, rcond=None)[0]
        if np.all(zP > 0):
            z[P] = zP
    beta[B] = sg * z
    beta[np.abs(beta) <= tol * max(1.0, float(np.max(np.abs(beta))))] = 0.0  # round-off of an exact zero
    return beta


def saddle_sequence(X, y, *, tol: float = 1e-10, max_saddles: int | None = None) -> list[Saddle]:
    r"""The saddles and rescaled jump times of depth-2 gradient flow from vanishing initialisation (Algorithm 1 of [1]_).

    Implements the recursion in the module docstring for :math:`L(\beta) = \frac{1}{2n}\|X\beta - y\|^2`,
    from :math:`u = \sqrt2\alpha\mathbf 1, v = 0` (:meth:`DiagonalLinearNetwork.small_init`): as
    :math:`\alpha\to 0`, :math:`\beta(\tau \ln(1/\alpha)) \to \beta_k` for :math:`\tau \in (\tau_k, \tau_{k+1})`.
    The constrained minimisations are non-negative least squares (``scipy.optimize.nnls``) on the columns
    with :math:`|s_i| = 1`, multiplied by :math:`s_i`.

    Parameters
    ----------
    X : array_like, shape (n, d)
    y : array_like, shape (n,)
    tol : float, default 1e-10
        Relative tolerance (times :math:`\max(1, \|X^Ty\|_\infty/n)`): the loop stops when
        :math:`\|r(\beta_k)\|_\infty` is below it; coordinates of s within it of :math:`\pm1` are snapped.
    max_saddles : int or None, default None
        Safety bound on the number of jumps; None means 10 d + 10.

    Returns
    -------
    list of Saddle
        :math:`\beta_0 = 0` at :math:`\tau_0 = 0` first; the last is a global minimiser of L.

    References
    ----------
    .. [1] S. Pesme, N. Flammarion, NeurIPS 2023, arXiv:2304.00488, Algorithm 1.
    """
    model = DiagonalLinearNetwork(X, y)
    X, y = model.X, model.y
    d = model.n_features
    tol = check_positive("tol", tol)
    kmax = 10 * d + 10 if max_saddles is None else check_int("max_saddles", max_saddles, minimum=1)
    scale = max(1.0, float(np.max(np.abs(model.grad_beta(np.zeros(d))))))
    beta, s, t = np.zeros(d), np.zeros(d), 0.0
    out = [Saddle(0.0, (), (), beta.copy(), s.copy(), float(model.loss_beta(beta)))]
    for _ in range(kmax):
        r = model.grad_beta(beta)
        if np.max(np.abs(r)) <= tol * scale:
            break
        moving = np.abs(r) > tol * scale
        room = 1.0 + s * np.sign(r)  # distance of s_i to the face it moves towards
        cand = moving & (room > tol)
        if not cand.any():  # cannot happen at a constrained minimiser (KKT); stop rather than loop
            break
        delta = np.full(d, np.inf)
        delta[cand] = room[cand] / np.abs(r[cand])
        dt = float(delta.min())
        t += dt
        s = np.clip(s - dt * r, -1.0, 1.0)
        hit = (np.abs(np.abs(s) - 1.0) <= tol) | (delta <= dt * (1 + 1e-12))  # snap round-off onto the faces
        s[hit] = np.where(delta[hit] <= dt * (1 + 1e-12), -np.sign(r[hit]), np.sign(s[hit]))
        beta = _constrained_lsq(X, y, s, tol)
        sup = tuple(int(i) for i in np.flatnonzero(beta != 0))
        out.append(Saddle(t, sup, tuple(int(np.sign(beta[i])) for i in sup), beta.copy(), s.copy(),
                          float(model.loss_beta(beta))))
    return out


def is_monotone(saddles: list[Saddle]) -> bool:
    """True when every support contains the previous one with the same signs (the Lasso relation then holds)."""
    for a, b in zip(saddles[:-1], saddles[1:]):
        sb = dict(zip(b.support, b.signs))
        if any(sb.get(i) != sg for i, sg in zip(a.support, a.signs)):
            return False
    return True


def time_average(saddles: list[Saddle], taus) -> FloatArray:
    r"""The time average :math:`\bar\beta(\tau) = \frac1\tau\int_0^\tau \beta(\sigma)\,d\sigma` of the limiting path.

    In the monotone case (:func:`is_monotone`) this is the Lasso solution at :math:`\lambda = 1/\tau`
    (module docstring).

    Parameters
    ----------
    saddles : list of Saddle
        From :func:`saddle_sequence`.
    taus : array_like, shape (m,)
        Positive rescaled times.

    Returns
    -------
    ndarray, shape (m, d)
    """
    taus = np.atleast_1d(np.asarray(taus, dtype=np.float64))
    if np.any(~(taus > 0)):
        raise InputError(f"`taus` must be positive; got {taus!r}.")
    tk = np.array([sd.t for sd in saddles])
    ends = np.minimum(np.append(tk[1:], np.inf)[None, :], taus[:, None])  # (m, K): end of each constant piece
    return np.clip(ends - tk, 0.0, None) @ np.array([sd.beta for sd in saddles]) / taus[:, None]


# ====================================================================== observed plateaus
@dataclass(frozen=True, eq=False)
class Plateau:
    r"""A plateau of a simulated path :math:`\beta(\tau)` (rescaled time).

    Attributes
    ----------
    t_jump : float
        Rescaled time at which the loss crosses the midpoint between the previous plateau's loss and this
        one's (0 for the first plateau).
    t_start, t_end : float
        The interval on which the path is slow.
    support, signs : tuple of int
        Coordinates with :math:`|\beta_i| >` ``support_tol`` at the plateau's slowest sample, and their signs.
    beta : ndarray, shape (d,)
        :math:`\beta` at the plateau's slowest sample (the closest passage by the saddle).
    loss : float
        Loss at that sample.
    """

    t_jump: float
    t_start: float
    t_end: float
    support: tuple
    signs: tuple
    beta: FloatArray
    loss: float


def observed_saddle_sequence(taus, betas, losses, *, speed_tol: float = 0.05, min_duration: float = 0.02,
                             support_tol: float = 0.02) -> list[Plateau]:
    r"""Plateaus of a simulated path and its rescaled jump times, from samples alone (no use of the prediction).

    A sample is *slow* when the rescaled speed :math:`\|d\beta/d\tau\|_\infty` (centred differences) is below
    ``speed_tol`` times :math:`\max(1, \max_\tau\|\beta\|_\infty)`; maximal runs of slow samples lasting at least
    ``min_duration`` are plateaus; consecutive plateaus with the same signed support are merged. The jump time
    into plateau k is the first sample time after plateau k-1 where the loss is below the midpoint of the two
    plateau losses, linearly interpolated.

    Parameters
    ----------
    taus : array_like, shape (m,)
        Increasing rescaled times :math:`t/\ln(1/\alpha)`; a fine uniform grid is expected.
    betas : array_like, shape (m, d)
    losses : array_like, shape (m,)
    speed_tol : float, default 0.05
    min_duration : float, default 0.02
    support_tol : float, default 0.02
        Threshold on :math:`|\beta_i|` for the support, relative to :math:`\max_\tau \|\beta\|_\infty`. At
        moderate :math:`\alpha` a coordinate about to activate is already
        :math:`\approx \alpha^{2(1-|s_i|)}/2` on the plateau before its jump, so the threshold must not be tiny.

    Returns
    -------
    list of Plateau
    """
    taus = np.asarray(taus, dtype=np.float64)
    betas = np.asarray(betas, dtype=np.float64)
    losses = np.asarray(losses, dtype=np.float64)
    if taus.ndim != 1 or taus.size < 3 or betas.shape[0] != taus.size or losses.shape != taus.shape:
        raise InputError("`taus` (m,), `betas` (m, d) and `losses` (m,) must have matching lengths m >= 3.")
    speed = np.max(np.abs(np.gradient(betas, taus, axis=0)), axis=1)
    bmax = max(1e-300, float(np.max(np.abs(betas))))
    slow = speed <= check_positive("speed_tol", speed_tol) * max(1.0, bmax)
    thr = check_positive("support_tol", support_tol) * bmax
    runs, start = [], None
    for m, flag in enumerate(np.append(slow, False)):
        if flag and start is None:
            start = m
        elif not flag and start is not None:
            if taus[m - 1] - taus[start] >= min_duration:
                runs.append((start, m - 1))
            start = None
    plats: list[dict] = []
    for a, b in runs:
        mid = a + int(np.argmin(speed[a : b + 1]))  # the closest passage by the saddle
        bt = betas[mid]
        sup = tuple(int(i) for i in np.flatnonzero(np.abs(bt) > thr))
        sg = tuple(int(np.sign(bt[i])) for i in sup)
        if plats and plats[-1]["support"] == sup and plats[-1]["signs"] == sg:
            plats[-1]["b"] = b
            continue
        plats.append(dict(a=a, b=b, mid=mid, support=sup, signs=sg))
    out = []
    for k, p in enumerate(plats):
        tj = 0.0
        if k:
            q = plats[k - 1]
            tj = _first_crossing(taus, losses, 0.5 * (losses[q["mid"]] + losses[p["mid"]]), q["b"], p["a"])
        out.append(Plateau(tj, float(taus[p["a"]]), float(taus[p["b"]]), p["support"], p["signs"],
                           betas[p["mid"]].copy(), float(losses[p["mid"]])))
    return out


def _first_crossing(taus, losses, level, lo=0, hi=None):
    """First time in samples lo..hi where ``losses <= level``, linearly interpolated; NaN if none."""
    hi = taus.size - 1 if hi is None else hi
    below = lo + np.flatnonzero(losses[lo : hi + 1] <= level)
    if below.size == 0:
        return np.nan
    j = int(below[0])
    if j == 0 or losses[j - 1] == losses[j]:
        return float(taus[j])
    frac = np.clip((losses[j - 1] - level) / (losses[j - 1] - losses[j]), 0.0, 1.0)
    return float(taus[j - 1] + frac * (taus[j] - taus[j - 1]))


def loss_crossing_times(taus, losses, saddles: list[Saddle]) -> FloatArray:
    r"""Rescaled times at which a simulated loss first falls below the midpoints of the predicted plateau losses.

    For k >= 1, :math:`\hat\tau_k = \inf\{\tau : L(\tau) \le (L(\beta_{k-1}) + L(\beta_k))/2\}` (linear
    interpolation between samples), NaN when never reached. Unlike :func:`observed_saddle_sequence` this needs no
    plateau to be resolved, so it measures the approach to the prediction also at moderate :math:`\alpha`, where
    consecutive plateaus blur together. Meaningful while the predicted losses decrease (always true:
    :math:`\beta_{k+1}` is feasible-improving in Algorithm 1).

    Parameters
    ----------
    taus : array_like, shape (m,)
        Increasing rescaled times.
    losses : array_like, shape (m,)
    saddles : list of Saddle

    Returns
    -------
    ndarray, shape (len(saddles) - 1,)
    """
    taus = np.asarray(taus, dtype=np.float64)
    losses = np.asarray(losses, dtype=np.float64)
    if taus.ndim != 1 or losses.shape != taus.shape:
        raise InputError(f"`taus` and `losses` must be 1-D of equal length; got {taus.shape} and {losses.shape}.")
    return np.array([_first_crossing(taus, losses, 0.5 * (a.loss + b.loss)) for a, b in zip(saddles[:-1], saddles[1:])])
