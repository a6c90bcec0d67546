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

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from flowgeom._types import FloatArray, Params
from flowgeom._validate import check_positive
from flowgeom.critical.linearization import ZERO_RTOL, Inertia, hessian_inertia
from flowgeom.critical.dimension import local_dimension
from flowgeom.critical.refinement import (
    RefineResult,
    RefineStatus,
    refine_critical,
)
from flowgeom.critical.starts import descent_trajectories, plateau_points
from flowgeom.models.base import Model, check_params

__all__ = [
    "CriticalPointInfo",
    "CriticalSearch",
    "RefineResult",
    "RefineStatus",
    "duplicate_unit",
    "find_critical_points",
    "search_critical_points",
]

DIM_RTOL = 0.1
"""Singular-value threshold of the fitted displacement map in the dimension measurement. Tangent
directions give ~1; along a degenerate non-tangent direction where L is quartic (x^4) the refinement
stops ~(gtol)^(1/3) from the critical point, a leftover of ~1-2% of the probe radius 1e-3: the
threshold 1e-2 would count such a direction as tangent (measured on x^4 + y^2), 0.1 does not."""


def _check_positive(name, value):
    check_positive(name, value)


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
        ``"degenerate"`` (n_- = 0, not Morse–Bott: second order does not decide), or
        ``"gradient_flat"`` (in :attr:`CriticalSearch.flat_points` only: not critical, the refinement
        stalled with the gradient in the Hessian's near-kernel).
    count : int
        Number of starts that converged here.
    members : ndarray, shape (k, n)
        The k points distinct up to symmetry merged into this entry: k = 1 for an isolated point;
        for ``manifold_dim > 0``, every found point with the same critical value, inertia and
        dimension (points of one continuous family, or of families indistinguishable by these
        invariants).
    residual, flatness : float
        Of the refinement that reached the representative (:class:`RefineResult`).
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
    residual: float = float("nan")
    flatness: float = float("nan")

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
    flat_points : tuple of CriticalPointInfo
        Distinct gradient-flat points (kind ``"gradient_flat"``; not critical), sorted by loss.
    units : ndarray of int, shape (n_starts,), optional
        The search (independent draw) each start belongs to, for coverage: the plateau points of one
        descent trajectory form one search; -1 marks deterministic starts (the origin). None: each
        start is its own search.
    flat_assignment : ndarray of int, shape (n_starts,)
        Index into ``flat_points`` of each start that ended gradient-flat; -1 elsewhere.
    """

    points: tuple[CriticalPointInfo, ...]
    assignment: np.ndarray
    refine: RefineResult
    settings: dict
    flat_points: tuple = ()
    flat_assignment: np.ndarray | None = None
    units: np.ndarray | None = None

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
    refined: RefineResult | None = None,
    flat_dedup_rtol: float = 1e-3,
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
    refined : RefineResult, optional
        The refinement of ``starts`` when already done (e.g. by an earlier search round); default
        :func:`refine_critical` with ``gtol`` and ``max_iter``.
    flat_dedup_rtol : float, default 1e-3
        Relative distance (and ``loss_rtol`` value) tolerance for "same gradient-flat point"
        (stalled iterates sit less precisely than critical points).

    Returns
    -------
    CriticalSearch
    """
    starts = check_params(starts, model.n_params, "starts")
    if starts.ndim != 2:
        raise ValueError(f"`starts` must have shape (N, n) = (N, {model.n_params}); got {starts.shape}.")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"`rng` must be a numpy.random.Generator (np.random.default_rng(seed)); got {rng!r}.")
    if refined is None:
        res = refine_critical(model, starts, gtol=gtol, max_iter=max_iter)
    else:
        res = refined
        if res.theta.shape != starts.shape:
            raise ValueError(f"`refined` must hold one result per start {starts.shape}; got {res.theta.shape}.")
    dist = _distance_fn(model)
    canon = getattr(model, "canonicalize", None)
    reps: list[FloatArray] = []
    rep_loss: list[float] = []
    counts: list[int] = []
    first_start: list[int] = []
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
            first_start.append(int(i))
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
                residual=float(res.residual[first_start[a]]),
                flatness=float(res.flatness[first_start[a]]),
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
    flat_points, flat_assignment = _flat_points(model, res, dist, loss_rtol=max(loss_rtol, flat_dedup_rtol),
                                                dedup_rtol=flat_dedup_rtol, zero_rtol=zero_rtol)
    settings["flat_dedup_rtol"] = flat_dedup_rtol
    return CriticalSearch(
        points=tuple(infos[k] for k in order), assignment=assignment, refine=res, settings=settings,
        flat_points=flat_points, flat_assignment=flat_assignment,
    )


def _flat_points(model, res: RefineResult, dist, *, loss_rtol, dedup_rtol, zero_rtol):
    """Distinct gradient-flat end points of a refinement (sorted by loss) and each start's index (-1 elsewhere)."""
    n_starts = res.status.shape[0]
    reps: list[int] = []
    counts: list[int] = []
    assign = np.full(n_starts, -1, dtype=np.int64)
    for i in np.flatnonzero(res.gradient_flat):
        th, L = res.theta[i], float(res.loss[i])
        found = -1
        for k, r in enumerate(reps):
            Lr = float(res.loss[r])
            if abs(L - Lr) <= loss_rtol * (1 + abs(Lr)) and dist(res.theta[r], th) <= dedup_rtol * (
                    1 + np.linalg.norm(res.theta[r])):
                found = k
                break
        if found < 0:
            reps.append(int(i))
            counts.append(0)
            found = len(reps) - 1
        counts[found] += 1
        assign[i] = found
    infos = []
    for r, c in zip(reps, counts):
        th = res.theta[r]
        inert = hessian_inertia(model, th, method="dense", hessian=model.hessian(th), zero_rtol=zero_rtol)
        infos.append(CriticalPointInfo(
            theta=th.copy(), loss=float(res.loss[r]), grad_norm=float(res.grad_norm[r]),
            n_negative=inert.n_negative, n_zero=inert.n_zero, n_positive=inert.n_positive, zero_tol=inert.zero_tol,
            eigenvalues=inert.eigenvalues, spectral_gap=_spectral_gap(inert), manifold_dim=-1, morse_bott=False,
            kind="gradient_flat", count=int(c), members=th[None].copy(), residual=float(res.residual[r]),
            flatness=float(res.flatness[r])))
    order = np.argsort([p.loss for p in infos], kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    ok = assign >= 0
    assign[ok] = rank[assign[ok]]
    return tuple(infos[k] for k in order), assign


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
