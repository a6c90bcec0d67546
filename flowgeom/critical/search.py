r"""Critical points of models without closed forms: multi-start Newton search, symmetry deduplication, inertia.

For a smooth loss :math:`L(\theta)` (any :class:`flowgeom.models.Model`, e.g.
:class:`flowgeom.mlp.MLP`) the critical set is :math:`\{\theta : \nabla L(\theta) = 0\}`. Unlike
the deep linear network it has no closed form, so it is sampled:

1. **Starts**: random parameter vectors, and *plateau points* of gradient-flow trajectories —
   the times where :math:`\|\nabla L(\theta(t))\|` has a local minimum, i.e. where the
   trajectory passes close to a saddle (:func:`plateau_points`, :func:`descent_trajectories`).
2. **Refinement** (:func:`refine_critical`): Levenberg–Marquardt on the equation
   :math:`\nabla L(\theta) = 0` with Jacobian the (exact, symmetric) Hessian,

   .. math:: \delta = -(\nabla^2 L^2 + \mu I)^{+} \nabla^2 L \,\nabla L,

   computed in the Hessian's eigenbasis with eigenvalues below ``rcond`` times the largest
   treated as zero (so :math:`\mu = 0` is the minimum-norm Newton step, which converges
   quadratically also onto non-isolated, Morse–Bott critical manifolds), iterated until
   :math:`\|\nabla L\|` stops decreasing at round-off.
3. **Deduplication** up to the model's symmetries: two points are the same when their critical
   values agree and the distance between one and the other's symmetry orbit (``model.orbit_distance``
   when the model has it, e.g. hidden-unit permutations and sign flips of an MLP; the Euclidean
   distance otherwise) is small.
4. **Local geometry** at each point: inertia :math:`(n_-, n_0, n_+)` of the dense Hessian with a
   recorded zero tolerance and spectral gap (:func:`flowgeom.linearize.hessian_inertia`); the local dimension of the critical set, measured by
   :func:`flowgeom.critical.refine.local_dimension` (probes :math:`\theta \pm \epsilon u`, u in the
   Hessian kernel, refined back onto the critical set; the rank of the fitted displacement map,
   with a check that the set is a manifold there); the Morse–Bott check :math:`n_0 = \dim`.

Continuous families of critical points exist for MLPs: e.g. embedding a critical point of a
narrower network by duplicating a hidden unit and splitting its outgoing weight
:math:`v \mapsto (\lambda v, (1-\lambda) v)` gives a line of critical points
(Fukumizu & Amari 2000; :func:`duplicate_unit`). Points of one family are not related by a
symmetry; :func:`find_critical_points` merges found points of positive local dimension that share
critical value, inertia and dimension into one entry (keeping them all).

References
----------
K. Levenberg (1944), D. Marquardt (1963); J. Nocedal and S. Wright, *Numerical Optimization*, 2nd
ed., Sec. 10.3.
K. Fukumizu and S. Amari, "Local minima and plateaus in hierarchical structures of multilayer
perceptrons", Neural Networks 13 (2000) 317–327.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from flowgeom._types import FloatArray, Params
from flowgeom.critical.refinement import local_dimension
from flowgeom.critical.linearization import ZERO_RTOL, Inertia, hessian_inertia
from flowgeom.models.base import Model, check_params

__all__ = [
    "RefineResult",
    "CriticalPointInfo",
    "CriticalSearch",
    "REFINE_STATUS",
    "refine_critical",
    "plateau_points",
    "descent_trajectories",
    "find_critical_points",
    "search_critical_points",
    "duplicate_unit",
]

REFINE_STATUS = {0: "converged", 1: "max_iter", 2: "stalled", -1: "diverged"}
"""Status codes of :func:`refine_critical`: 0 reached ``gtol``; 1 iteration budget exhausted;
2 no step reduces ||grad L|| although ``gtol`` is not met (a local minimum of ||grad L||^2 that
is not critical); -1 non-finite or ``||theta|| > max_norm`` (e.g. tanh units running to saturation)."""

# Relative eigenvalue cutoff of the Newton step: directions whose Hessian eigenvalue is below
# RCOND * max|lambda| are left alone (minimum-norm step). Round-off in an exact Hessian is
# ~1e-15 relative; 1e-12 leaves three digits of margin.
RCOND = 1e-12

# Default zero tolerance of the inertia, relative to max|lambda|: flowgeom.linearize.ZERO_RTOL (1e-8),
# the convention shared with flowgeom.critical.refine.local_dimension (so its kernel and n_0 agree).

# Singular-value threshold of the fitted displacement map in the dimension measurement. Tangent
# directions give ~1; along a degenerate non-tangent direction where L is quartic (x^4) the
# refinement stops ~(gtol)^(1/3) from the critical point, a leftover of ~1-2% of the probe radius
# 1e-3: the threshold 1e-2 would count such a direction as tangent (measured on x^4 + y^2), 0.1
# does not.
DIM_RTOL = 0.1

_MU_UP, _MU_DOWN = 10.0, 1.0 / 3.0


@dataclass(frozen=True)
class RefineResult:
    """Result of :func:`refine_critical` (batched over the leading axes of the starts).

    Attributes
    ----------
    theta : ndarray, shape (..., n)
        Final iterates.
    grad_norm : ndarray, shape (...)
        :math:`\\|\\nabla L\\|_2` at ``theta``.
    loss : ndarray, shape (...)
    status : ndarray of int, shape (...)
        Codes of :data:`REFINE_STATUS`.
    n_iter : ndarray of int, shape (...)
    """

    theta: FloatArray
    grad_norm: FloatArray
    loss: FloatArray
    status: np.ndarray
    n_iter: np.ndarray

    @property
    def converged(self) -> np.ndarray:
        """Boolean mask of status 0."""
        return self.status == 0


def _check_positive(name, value):
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"`{name}` must be a finite positive number; got {value!r}.")


def refine_critical(
    model: Model,
    theta0: Params,
    *,
    gtol: float = 1e-11,
    max_iter: int = 200,
    max_norm: float | None = None,
    rcond: float = RCOND,
) -> RefineResult:
    r"""Refine starting points to critical points of ``model.loss`` by Levenberg–Marquardt / minimum-norm Newton.

    Solves :math:`\nabla L(\theta) = 0`. With :math:`\nabla^2 L(\theta) = Q\Lambda Q^T`, the step is

    .. math:: \delta = -Q\,\mathrm{diag}\!\Big(\frac{\lambda_i}{\lambda_i^2 + \mu}\Big) Q^T \nabla L,
       \quad \text{components with } |\lambda_i| \le \mathrm{rcond}\max|\lambda| \text{ set to } 0,

    accepted when it decreases :math:`\|\nabla L\|` (then :math:`\mu \leftarrow \mu/3`, starting
    from the pure Newton step :math:`\mu = 0`), otherwise :math:`\mu` grows tenfold from
    :math:`10^{-6}\max\lambda^2`. Newton's method is attracted to saddles as well as minima,
    which is what a critical-point atlas needs. Once :math:`\|\nabla L\| \le` ``gtol`` the
    iteration continues while a full Newton step still reduces the gradient norm, so converged
    points sit at round-off. All starts are iterated together (batched ``grad`` and ``hessian``):
    this is the batched counterpart of :func:`flowgeom.critical.refine.refine` (the same damped
    step), for multi-start searches.

    Parameters
    ----------
    model : Model
        Needs ``loss``, ``grad`` and ``hessian`` (dense; this is meant for small n).
    theta0 : ndarray, shape (..., n)
    gtol : float, default 1e-11
        :math:`\|\nabla L\|_2` at or below which a point counts as critical (status 0); the
        iteration then goes on polishing to round-off.
    max_iter : int, default 200
    max_norm : float, optional
        Stop with status -1 when :math:`\|\theta\|` exceeds it. Default, per start,
        ``20 * (1 + ||theta0||)``: tanh networks have critical points "at infinity" (saturated
        units) that Newton iterations chase slowly; they are reported as diverged.
    rcond : float, default ``RCOND`` = 1e-12
        Relative eigenvalue cutoff of the step.

    Returns
    -------
    RefineResult
    """
    theta0 = check_params(theta0, model.n_params, "theta0")
    if np.iscomplexobj(theta0):
        raise TypeError("`theta0` must be real.")
    _check_positive("gtol", gtol)
    _check_positive("rcond", rcond)
    if not (isinstance(max_iter, (int, np.integer)) and max_iter >= 1):
        raise ValueError(f"`max_iter` must be a positive integer; got {max_iter!r}.")
    batch = theta0.shape[:-1]
    n = model.n_params
    th = np.array(theta0.reshape(-1, n), dtype=np.float64)
    B = th.shape[0]
    if max_norm is None:
        max_norm = 20.0 * (1.0 + np.linalg.norm(th, axis=-1))
    else:
        _check_positive("max_norm", max_norm)
        max_norm = np.full(B, float(max_norm))
    g = model.grad(th)
    gn = np.linalg.norm(g, axis=-1)
    mu = np.zeros(B)
    status = np.full(B, 1, dtype=np.int64)
    n_iter = np.zeros(B, dtype=np.int64)
    active = np.isfinite(gn)
    status[~active] = -1
    polishing = np.zeros(B, dtype=bool)  # reached gtol: only full Newton steps, stop at first failure
    for _ in range(max_iter):
        idx = np.nonzero(active)[0]
        if idx.size == 0:
            break
        Hs = model.hessian(th[idx])
        if not np.all(np.isfinite(Hs)):
            bad = ~np.all(np.isfinite(Hs), axis=(-2, -1))
            status[idx[bad]] = -1
            active[idx[bad]] = False
            idx, Hs = idx[~bad], Hs[~bad]
            if idx.size == 0:
                break
        lam, Q = np.linalg.eigh(Hs)
        lmax = np.max(np.abs(lam), axis=-1)
        keep = np.abs(lam) > rcond * lmax[:, None]
        gq = np.einsum("bji,bj->bi", Q, g[idx])
        m = np.where(polishing[idx], 0.0, mu[idx])
        denom = lam * lam + m[:, None]
        coef = np.where(keep, lam / np.where(keep, denom, 1.0), 0.0)
        step = -np.einsum("bij,bj->bi", Q, coef * gq)
        trial = th[idx] + step
        gt = model.grad(trial)
        gnt = np.linalg.norm(gt, axis=-1)
        n_iter[idx] += 1
        ok = np.isfinite(gnt) & (gnt < gn[idx])
        acc = idx[ok]
        th[acc], g[acc], gn[acc] = trial[ok], gt[ok], gnt[ok]
        mu[acc] *= _MU_DOWN
        rej = idx[~ok]
        # a rejected step while polishing means round-off is reached: done
        done_pol = rej[polishing[rej]]
        status[done_pol] = 0
        active[done_pol] = False
        grow = rej[~polishing[rej]]
        mu[grow] = np.maximum(mu[grow] * _MU_UP, 1e-6 * lmax[~ok][~polishing[rej]] ** 2)
        # stalled: damping so large that steps are negligible
        stalled = grow[mu[grow] > 1e16 * np.maximum(lmax[~ok][~polishing[rej]] ** 2, 1e-300)]
        status[stalled] = 2
        active[stalled] = False
        newly = idx[(gn[idx] <= gtol) & ~polishing[idx] & active[idx]]
        polishing[newly] = True
        far = idx[active[idx] & (np.linalg.norm(th[idx], axis=-1) > max_norm[idx])]
        status[far] = -1
        active[far] = False
    # iteration budget exhausted while polishing still counts as converged
    status[active & polishing] = 0
    status[(status == 2) & (gn <= gtol)] = 0
    loss = np.asarray(model.loss(th), dtype=np.float64)
    return RefineResult(
        theta=th.reshape(batch + (n,)),
        grad_norm=gn.reshape(batch),
        loss=loss.reshape(batch),
        status=status.reshape(batch),
        n_iter=n_iter.reshape(batch),
    )


# ---------------------------------------------------------------------- starts
def descent_trajectories(
    model: Model,
    theta0: Params,
    *,
    n_steps: int = 3000,
    record_every: int = 10,
    lr: float | None = None,
) -> tuple[FloatArray, FloatArray]:
    r"""Batched gradient descent :math:`\theta_{k+1} = \theta_k - \eta_b \nabla L(\theta_k)`, recorded.

    A simple stand-in for :func:`flowgeom.integrate.gradient_descent` to generate plateau points;
    each trajectory's step is :math:`\eta_b = 1/\lambda_{\max}(\nabla^2 L(\theta_{0,b}))` unless
    ``lr`` is given, and is halved (the step undone) whenever the loss would increase.

    Parameters
    ----------
    model : Model
    theta0 : ndarray, shape (N, n)
    n_steps : int, default 3000
    record_every : int, default 10
    lr : float, optional
        A common initial step size.

    Returns
    -------
    ys : ndarray, shape (N, n_save, n)
        States every ``record_every`` steps (first = theta0).
    grad_norm : ndarray, shape (N, n_save)
    """
    th = np.array(check_params(theta0, model.n_params, "theta0"), dtype=np.float64)
    if th.ndim != 2:
        raise ValueError(f"`theta0` must have shape (N, n); got {th.shape}.")
    if lr is None:
        lam = np.linalg.eigvalsh(model.hessian(th))
        eta = 1.0 / np.maximum(np.max(np.abs(lam), axis=-1), 1e-12)
    else:
        _check_positive("lr", lr)
        eta = np.full(th.shape[0], float(lr))
    L = model.loss(th)
    g = model.grad(th)
    ys, gns = [th.copy()], [np.linalg.norm(g, axis=-1)]
    for k in range(1, n_steps + 1):
        trial = th - eta[:, None] * g
        Lt = model.loss(trial)
        ok = np.isfinite(Lt) & (Lt <= L)
        th[ok], L[ok] = trial[ok], Lt[ok]
        eta[~ok] *= 0.5
        g = model.grad(th)
        if k % record_every == 0:
            ys.append(th.copy())
            gns.append(np.linalg.norm(g, axis=-1))
    return np.stack(ys, axis=1), np.stack(gns, axis=1)


def plateau_points(ys: FloatArray, grad_norm: FloatArray, *, max_per_trajectory: int = 3) -> FloatArray:
    r"""Points where trajectories linger near critical points: local minima in time of :math:`\|\nabla L(\theta(t))\|`.

    For each trajectory the interior strict local minima of the recorded gradient norm (the
    ``max_per_trajectory - 1`` smallest) and the final state are returned; non-finite records are
    skipped. Works on ``(Trajectory.ys, Trajectory.grad_norm)`` of :mod:`flowgeom.integrate` or
    the output of :func:`descent_trajectories`.

    Parameters
    ----------
    ys : ndarray, shape (N, n_save, n)
    grad_norm : ndarray, shape (N, n_save)
    max_per_trajectory : int, default 3

    Returns
    -------
    ndarray, shape (k, n)
    """
    ys = np.asarray(ys, dtype=np.float64)
    gn = np.asarray(grad_norm, dtype=np.float64)
    if ys.ndim != 3 or gn.shape != ys.shape[:2]:
        raise ValueError(
            f"`ys` must have shape (N, n_save, n) and `grad_norm` (N, n_save); got {ys.shape} and {gn.shape}."
        )
    out = []
    for y, g in zip(ys, gn):
        fin = np.isfinite(g) & np.all(np.isfinite(y), axis=-1)
        y, g = y[fin], g[fin]
        if g.size == 0:
            continue
        out.append(y[-1])
        if g.size >= 3 and max_per_trajectory > 1:
            mins = np.nonzero((g[1:-1] < g[:-2]) & (g[1:-1] < g[2:]))[0] + 1
            mins = mins[np.argsort(g[mins])][: max_per_trajectory - 1]
            out.extend(y[mins])
    if not out:
        return np.zeros((0, ys.shape[-1]))
    return np.stack(out)


# ---------------------------------------------------------------------- search
@dataclass(frozen=True)
class CriticalPointInfo:
    r"""One critical point, or one positive-dimensional critical family, found by :func:`find_critical_points`.

    Attributes
    ----------
    theta : ndarray, shape (n,)
        A representative (``model.canonicalize`` of the first start that reached it, when the
        model has it).
    loss : float
        Critical value.
    grad_norm : float
        :math:`\|\nabla L(\theta)\|_2` at the representative (round-off level).
    n_negative, n_zero, n_positive : int
        Hessian inertia at the representative, with absolute zero tolerance ``zero_tol``.
    zero_tol : float
    eigenvalues : ndarray, shape (n,)
        Hessian eigenvalues at the representative, ascending.
    spectral_gap : float
        ``min_nonzero / max_zero`` of the :class:`flowgeom.linearize.Inertia` (inf when n_0 = 0 or
        every zero eigenvalue is exactly 0): large means the inertia count is unambiguous.
    manifold_dim : int
        Measured local dimension of the critical set
        (:func:`flowgeom.critical.refine.local_dimension`); -1 if not measured, or where the
        critical set is not a manifold (crossing branches) or too few probes converged.
    morse_bott : bool
        ``n_zero == manifold_dim`` (False when not measured).
    kind : str
        ``"local_min"`` (n_- = 0 and Morse–Bott: a local minimum), ``"strict_saddle"`` (n_- > 0),
        ``"degenerate"`` (n_- = 0, not Morse–Bott: second order does not decide).
    count : int
        Number of starts that converged here.
    members : ndarray, shape (k, n)
        The k points distinct up to symmetry merged into this entry: k = 1 for an isolated point;
        for ``manifold_dim > 0``, every found point with the same critical value, inertia and
        dimension (points of one continuous family, or of families indistinguishable by these
        invariants).
    """

    theta: FloatArray
    loss: float
    grad_norm: float
    n_negative: int
    n_zero: int
    n_positive: int
    zero_tol: float
    eigenvalues: FloatArray = field(repr=False)
    spectral_gap: float
    manifold_dim: int
    morse_bott: bool
    kind: str
    count: int
    members: FloatArray = field(repr=False)

    @property
    def inertia(self) -> tuple[int, int, int]:
        """``(n_negative, n_zero, n_positive)``."""
        return (self.n_negative, self.n_zero, self.n_positive)

    @property
    def n_members(self) -> int:
        """Number of symmetry-distinct points merged into this entry."""
        return int(self.members.shape[0])


@dataclass(frozen=True)
class CriticalSearch:
    """Result of :func:`find_critical_points`.

    Attributes
    ----------
    points : tuple of CriticalPointInfo
        Distinct critical points up to symmetry (positive-dimensional families merged, see
        :class:`CriticalPointInfo`), sorted by critical value (ascending).
    assignment : ndarray of int, shape (n_starts,)
        Index into ``points`` of each start's limit; -1 where refinement did not converge.
    refine : RefineResult
        Raw refinement results, one per start.
    settings : dict
        Tolerances used (gtol, zero_rtol, dedup_rtol, loss_rtol, eps, max_iter).
    """

    points: tuple[CriticalPointInfo, ...]
    assignment: np.ndarray
    refine: RefineResult
    settings: dict

    @property
    def n_starts(self) -> int:
        return int(self.assignment.shape[0])

    @property
    def n_converged(self) -> int:
        return int(np.sum(self.assignment >= 0))


def _distance_fn(model) -> Callable[[FloatArray, FloatArray], float]:
    od = getattr(model, "orbit_distance", None)
    if callable(od):
        return lambda a, b: float(od(a, b)[0])
    return lambda a, b: float(np.linalg.norm(a - b))


def _spectral_gap(inert: Inertia) -> float:
    """``min_nonzero / max_zero`` (inf when there is no zero eigenvalue or all of them are exactly 0)."""
    if inert.n_zero and inert.max_zero > 0:
        return float(inert.min_nonzero / inert.max_zero)
    return float(np.inf)


def _kind(n_neg: int, morse_bott: bool) -> str:
    if n_neg > 0:
        return "strict_saddle"
    return "local_min" if morse_bott else "degenerate"


def find_critical_points(
    model: Model,
    starts: Params,
    *,
    rng: np.random.Generator,
    gtol: float = 1e-11,
    max_iter: int = 200,
    zero_rtol: float = ZERO_RTOL,
    dedup_rtol: float = 1e-6,
    loss_rtol: float = 1e-9,
    measure_dimension: bool = True,
    reuse_dimension: bool = True,
    merge_families: bool = True,
    eps: float = 1e-3,
    dim_rtol: float = DIM_RTOL,
) -> CriticalSearch:
    r"""Refine every start to a critical point and list the distinct ones up to symmetry.

    Two converged points :math:`\theta, \theta'` are the same when
    :math:`|L(\theta) - L(\theta')| \le \mathrm{loss\_rtol}\,(1 + |L(\theta)|)` and
    :math:`\min_g\|\theta - g\theta'\| \le \mathrm{dedup\_rtol}\,(1 + \|\theta\|)` (``model.orbit_distance``
    when available, else Euclidean distance). For each distinct point the dense Hessian gives the
    inertia (:func:`flowgeom.linearize.hessian_inertia`, dense) and
    :func:`flowgeom.critical.refine.local_dimension` the
    local dimension.
    Points of a continuous family are not related by a symmetry; with ``merge_families`` the
    points with positive dimension and equal (critical value, inertia, dimension) are merged into
    one entry that keeps all of them in ``members``.

    Parameters
    ----------
    model : Model
    starts : ndarray, shape (N, n)
        Starting points (random draws, :func:`plateau_points`, ...).
    rng : numpy.random.Generator
        For the dimension probes.
    gtol : float, default 1e-11
        Convergence tolerance on :math:`\|\nabla L\|_2` (see :func:`refine_critical`; converged
        points are then polished to round-off).
    max_iter : int, default 200
    zero_rtol : float, default ``ZERO_RTOL`` = 1e-8
        Relative zero tolerance of the inertia.
    dedup_rtol : float, default 1e-6
        Relative orbit-distance tolerance for "same point".
    loss_rtol : float, default 1e-9
        Relative critical-value tolerance for "same point" and for merging families.
    measure_dimension : bool, default True
        Measure ``manifold_dim`` (one batched refinement per point with a singular Hessian).
    reuse_dimension : bool, default True
        A point whose critical value and inertia equal those of an already measured Morse–Bott
        point (``manifold_dim == n_zero > 0``) gets that dimension without a new measurement
        (which costs ~2(n_0 + 4) refinements): points of one continuous family share value and
        inertia, and a family is typically hit by many starts. ``settings["n_dim_measured"]``
        records how many points were measured; False measures every point.
    merge_families : bool, default True
        Merge positive-dimensional points as described above (needs ``measure_dimension``).
    eps : float, default 1e-3
        Probe radius (relative to ``max(1, ||theta||)``) of
        :func:`flowgeom.critical.refine.local_dimension`.
    dim_rtol : float, default ``DIM_RTOL`` = 0.1
        Its singular-value threshold (tangent directions give ~1).

    Returns
    -------
    CriticalSearch
    """
    starts = check_params(starts, model.n_params, "starts")
    if starts.ndim != 2:
        raise ValueError(f"`starts` must have shape (N, n) = (N, {model.n_params}); got {starts.shape}.")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"`rng` must be a numpy.random.Generator (np.random.default_rng(seed)); got {rng!r}.")
    res = refine_critical(model, starts, gtol=gtol, max_iter=max_iter)
    dist = _distance_fn(model)
    canon = getattr(model, "canonicalize", None)
    reps: list[FloatArray] = []
    rep_loss: list[float] = []
    counts: list[int] = []
    assignment = np.full(starts.shape[0], -1, dtype=np.int64)
    for i in np.nonzero(res.converged)[0]:
        th, L = res.theta[i], float(res.loss[i])
        found = -1
        for k, (r, Lr) in enumerate(zip(reps, rep_loss)):
            if abs(L - Lr) <= loss_rtol * (1 + abs(Lr)) and dist(r, th) <= dedup_rtol * (1 + np.linalg.norm(r)):
                found = k
                break
        if found < 0:
            reps.append(canon(th) if callable(canon) else th.copy())
            rep_loss.append(L)
            counts.append(0)
            found = len(reps) - 1
        counts[found] += 1
        assignment[i] = found
    # local geometry of each distinct point
    geo = []
    n_measured = 0
    for a, th in enumerate(reps):
        inert = hessian_inertia(model, th, method="dense", hessian=model.hessian(th), zero_rtol=zero_rtol)
        dim = -1
        if measure_dimension:
            twin = -1
            if reuse_dimension and inert.n_zero > 0:
                for b in range(a):
                    ib, db = geo[b]
                    if (
                        db == ib.n_zero > 0
                        and ib.triple == inert.triple
                        and abs(rep_loss[a] - rep_loss[b]) <= loss_rtol * (1 + abs(rep_loss[b]))
                    ):
                        twin = b
                        break
            if twin >= 0:
                dim = geo[twin][1]
            else:
                dim = local_dimension(model, th, rng=rng, radius=eps, zero_rtol=zero_rtol, dim_rtol=dim_rtol).dim
                n_measured += 1
        geo.append((inert, int(dim)))
    # merge positive-dimensional points with equal (critical value, inertia, dimension)
    entry_of = np.arange(len(reps))
    if merge_families:
        for a in range(len(reps)):
            inert_a, dim_a = geo[a]
            if dim_a <= 0:
                continue
            for b in range(a):
                inert_b, dim_b = geo[b]
                if (
                    entry_of[b] == b
                    and dim_b == dim_a
                    and inert_a.triple == inert_b.triple
                    and abs(rep_loss[a] - rep_loss[b]) <= loss_rtol * (1 + abs(rep_loss[b]))
                ):
                    entry_of[a] = b
                    break
    heads = [a for a in range(len(reps)) if entry_of[a] == a]
    infos = []
    for a in heads:
        th = reps[a]
        inert, dim = geo[a]
        mem = [k for k in range(len(reps)) if entry_of[k] == a]
        gap = _spectral_gap(inert)
        mb = dim >= 0 and dim == inert.n_zero
        infos.append(
            CriticalPointInfo(
                theta=th,
                loss=float(model.loss(th)),
                grad_norm=float(np.linalg.norm(model.grad(th))),
                n_negative=inert.n_negative,
                n_zero=inert.n_zero,
                n_positive=inert.n_positive,
                zero_tol=inert.zero_tol,
                eigenvalues=inert.eigenvalues,
                spectral_gap=float(gap),
                manifold_dim=dim,
                morse_bott=bool(mb),
                kind=_kind(inert.n_negative, mb),
                count=int(sum(counts[k] for k in mem)),
                members=np.stack([reps[k] for k in mem]),
            )
        )
    # sort by critical value and remap the assignment (start -> distinct point -> entry -> sorted)
    order = np.argsort([p.loss for p in infos], kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    head_index = {a: i for i, a in enumerate(heads)}
    point_to_entry = np.array([rank[head_index[entry_of[k]]] for k in range(len(reps))], dtype=np.int64)
    conv = assignment >= 0
    assignment[conv] = point_to_entry[assignment[conv]]
    settings = {
        "gtol": gtol,
        "zero_rtol": zero_rtol,
        "dedup_rtol": dedup_rtol,
        "loss_rtol": loss_rtol,
        "eps": eps,
        "dim_rtol": dim_rtol,
        "max_iter": max_iter,
        "merge_families": merge_families,
        "reuse_dimension": reuse_dimension,
        "n_dim_measured": n_measured,
    }
    return CriticalSearch(
        points=tuple(infos[k] for k in order), assignment=assignment, refine=res, settings=settings
    )


def search_critical_points(
    model: Model,
    *,
    rng: np.random.Generator,
    n_random: int = 20,
    n_trajectories: int = 20,
    scale: float = 1.0,
    n_steps: int = 3000,
    **kwargs,
) -> CriticalSearch:
    r"""Multi-start search: ``n_random`` random starts plus plateau points of ``n_trajectories`` descent runs.

    Random starts and initializations are i.i.d. :math:`N(0, \mathrm{scale}^2)` (``model.random_params``
    when available); trajectories are :func:`descent_trajectories` with ``n_steps`` steps, and
    :func:`plateau_points` turns them into starts. Keywords go to :func:`find_critical_points`.

    Parameters
    ----------
    model : Model
    rng : numpy.random.Generator
        Source of all randomness (starts first, then initializations, then dimension probes).
    n_random : int, default 20
    n_trajectories : int, default 20
    scale : float, default 1.0
    n_steps : int, default 3000

    Returns
    -------
    CriticalSearch
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"`rng` must be a numpy.random.Generator (np.random.default_rng(seed)); got {rng!r}.")
    _check_positive("scale", scale)
    n = model.n_params

    def draw(k):
        rp = getattr(model, "random_params", None)
        return rp(rng, scale, size=k) if callable(rp) else scale * rng.standard_normal((k, n))

    parts = []
    if n_random > 0:
        parts.append(draw(n_random))
    if n_trajectories > 0:
        ys, gn = descent_trajectories(model, draw(n_trajectories), n_steps=n_steps)
        parts.append(plateau_points(ys, gn))
    if not parts:
        raise ValueError("`n_random` + `n_trajectories` must be positive: there is nothing to search from.")
    return find_critical_points(model, np.concatenate(parts, axis=0), rng=rng, **kwargs)


def duplicate_unit(model, theta: Params, unit: int, lam: float, *, layer: int = 1):
    r"""Embed a narrower MLP's parameters into one with an extra hidden unit (Fukumizu & Amari 2000).

    Given parameters of an MLP whose hidden layer ``layer`` has :math:`d_j` units, return
    parameters of the same architecture with :math:`d_j + 1` units, in which the new last unit
    copies the incoming weights (and bias) of ``unit`` and the outgoing column :math:`v` of
    ``unit`` is split as :math:`\lambda v` (old unit) and :math:`(1-\lambda) v` (new unit). The
    network function is unchanged; if theta is a critical point of the narrow loss, the image is a
    critical point of the wide loss for every :math:`\lambda` (a line of critical points).

    Parameters
    ----------
    model : flowgeom.mlp.MLP
        The narrow network (its ``unpack``/``biases``/``widths``).
    theta : ndarray, shape (n,)
    unit : int
        0-based index of the unit to duplicate in hidden layer ``layer``.
    lam : float
    layer : int, default 1
        Hidden layer j in 1..H.

    Returns
    -------
    wide : flowgeom.mlp.MLP
        The wider network on the same data.
    theta_wide : ndarray, shape (n_wide,)
    """
    from flowgeom.models.mlp import MLP

    if not isinstance(model, MLP):
        raise TypeError(f"`model` must be a flowgeom.mlp.MLP; got {type(model).__name__}.")
    if not (isinstance(layer, (int, np.integer)) and 1 <= layer <= model.depth_H):
        raise ValueError(f"`layer` must be a hidden layer index in 1..{model.depth_H}; got {layer!r}.")
    d = model.widths[layer]
    if not (isinstance(unit, (int, np.integer)) and 0 <= unit < d):
        raise ValueError(f"`unit` must be in 0..{d - 1} (hidden layer {layer} has {d} units); got {unit!r}.")
    theta = check_params(theta, model.n_params)
    W = [np.array(w) for w in model.unpack(theta)]
    b = [np.array(x) for x in model.biases(theta)]
    i = layer - 1
    W[i] = np.concatenate([W[i], W[i][unit : unit + 1]], axis=0)
    if model.bias:
        b[i] = np.concatenate([b[i], b[i][unit : unit + 1]])
    v = W[i + 1][:, unit].copy()
    W[i + 1] = np.concatenate([W[i + 1], (1.0 - lam) * v[:, None]], axis=1)
    W[i + 1][:, unit] = lam * v
    widths = list(model.widths)
    widths[layer] += 1
    wide = MLP(tuple(widths), model.X, model.Y, activation=model.activation, bias=model.bias)
    return wide, wide.pack(W, b if model.bias else None)
