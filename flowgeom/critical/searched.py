r"""The searched atlas of any model: critical classes found by a multi-start search, grown on demand.

For a smooth loss :math:`L(\theta)` without closed-form critical sets (e.g. a tanh
:class:`flowgeom.models.MLP`) the critical set :math:`\{\nabla L = 0\}` is sampled by
:func:`flowgeom.critical.search.find_critical_points`: Newton-type refinement of random starts,
of plateau points of descent trajectories from two scales and of the origin, deduplicated up to the
model's symmetries, positive-dimensional families merged. Each entry is a *critical class*, labelled
``c0``, ``c1``, ... in order of decreasing critical value at search time; classes found later by
:meth:`SearchedAtlas.grow` continue the numbering.

What a search cannot certify: it finds the critical points its starts lead to, not all of them.
``global_min`` means the lowest local minimum found (``certified`` only where its value is 0 up to
round-off, since the squared loss is non-negative); a limit at a class the search missed is
unclassified (-3) until :meth:`~SearchedAtlas.grow` adds it; a deep linear stratum's
``non_strict_saddle`` needs the closed form and is never assigned here (such points are
``degenerate``).

Coverage: the search runs in batches of independent *searches* (a random start, or a descent run
with its plateau points) and stops when the Good–Turing estimate :math:`Q_1/T` of the probability that
one more search finds a new class (:math:`Q_1` classes found by exactly one of the :math:`T` searches;
Good 1953, Chao et al. 2014) is at most ``coverage_target`` or the budget is spent
(:func:`search_for_atlas`, :meth:`SearchedAtlas.coverage`). It estimates the mass the sampling
distribution puts on unseen classes, not their number: a class no start can reach is invisible to it.

``locate`` for limits matches the loss to a class's critical value
(:math:`|L - L_k| \le 10^{-6}(1 + |L_k|)`) and, among several, takes the class with a member nearest
up to symmetry (``model.orbit_distance`` where the model has it). For plateau points it first refines
the point to a critical point :math:`\theta^\ast` and accepts it only if
:math:`\|\theta^\ast - \theta\| \le 0.25 (1 + \|\theta^\ast\|)` (else the point was a slow passage).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import fields, replace
from typing import Any

import numpy as np

from flowgeom._types import FloatArray, Params
from flowgeom.critical.atlas import UNCLASSIFIED, CriticalSet, set_kind
from flowgeom.critical.coverage import COVERAGE_TARGET, Coverage, _incidence, search_coverage
from flowgeom.critical.linearization import (
    GAP_MIN,
    ZERO_RTOL,
    hessian_inertia,
    is_morse_bott,
    stable_codimension,
)
from flowgeom.critical.refinement import RefineResult, point_quality
from flowgeom.critical.refinement import refine_critical
from flowgeom.critical.search import CriticalSearch, find_critical_points
from flowgeom.critical.starts import descent_trajectories, plateau_points
from flowgeom.models.base import Model

__all__ = ["SearchedAtlas", "search_for_atlas"]

"""Default target of the Good–Turing probability that one more search finds a new class."""

VALUE_RTOL = 1e-6
"""A loss matches a class when :math:`|L - L_k| \\le` ``VALUE_RTOL`` :math:`(1 + |L_k|)`."""
CERTIFY_RTOL = 1e-12
"""A class value below this times :math:`1 + \\tfrac12\\|Y\\|_F^2` certifies a global minimum (L >= 0)."""
MAX_STEP_RTOL = 0.25
"""A refined plateau point farther than this times :math:`1 + \\|\\theta^\\ast\\|` is a passage."""
MAX_POINTS_PER_CLASS = 8
"""Members of a class whose linearization is measured."""
PRODUCT_RANK_RTOL = 1e-8


def _dist_fn(model):
    od = getattr(model, "orbit_distance", None)
    if callable(od):
        return lambda a, b: float(od(a, b)[0])
    return lambda a, b: float(np.linalg.norm(np.asarray(a) - np.asarray(b)))


def _product_rank(model, theta) -> int:
    if getattr(model, "activation", None) != "linear" or getattr(model, "bias", False):
        return -1
    W = model.unpack(theta)
    P = W[0]
    for Wj in W[1:]:
        P = Wj @ P
    sv = np.linalg.svd(P, compute_uv=False)
    scale = max(1.0, float(np.max(np.abs(model.Y)))) if hasattr(model, "Y") else 1.0
    return int(np.sum(sv > PRODUCT_RANK_RTOL * scale))


def data_attrs(model) -> dict:
    """The provenance attrs of a model with data X, Y (s of Y V_X^1, as in Problem)."""
    widths = [int(w) for w in getattr(model, "widths", ())]
    out: dict[str, Any] = {"widths": widths, "depth_H": len(widths) - 2 if widths else -1}
    X, Y = getattr(model, "X", None), getattr(model, "Y", None)
    if X is None or Y is None:
        out.update(singular_values=[], whitened=False)
        return out
    X, Y = np.asarray(X, dtype=np.float64), np.asarray(Y, dtype=np.float64)
    _, sx, Vt = np.linalg.svd(X, full_matrices=False)
    r = int(np.sum(sx > 1e-10 * max(1.0, float(sx[0]) if sx.size else 0.0)))
    s = np.linalg.svd(Y @ Vt[:r].T, compute_uv=False) if r else np.zeros(0)
    out["singular_values"] = [float(v) for v in s]
    out["whitened"] = bool(np.allclose(X @ X.T, np.eye(X.shape[0]), atol=1e-10))
    out["data_sha256"] = hashlib.sha256(np.ascontiguousarray(X).tobytes() + np.ascontiguousarray(Y).tobytes()).hexdigest()
    out["model"] = type(model).__name__
    for k in ("activation", "bias"):
        if hasattr(model, k):
            out[k] = getattr(model, k) if k == "activation" else bool(getattr(model, k))
    out["dim_X"] = int(model.n_params)
    return out


def _draw_starts(model, rng, n_starts, init_scale, small_scale, n_steps):
    """One batch of ``n_starts`` searches: (starts (k, n), unit (k,) in 0..n_starts-1)."""
    n = model.n_params
    n_rand, n_traj = n_starts // 2, n_starts // 4
    n_small = n_starts - n_rand - n_traj
    parts = [init_scale * rng.standard_normal((n_rand, n))]
    units = [np.arange(n_rand)]
    offset = n_rand
    for k, sc in ((n_traj, init_scale), (n_small, small_scale)):
        ys, gn = descent_trajectories(model, sc * rng.standard_normal((k, n)), n_steps=n_steps)
        pts, which = plateau_points(ys, gn, return_trajectory=True)
        parts.append(pts)
        units.append(offset + which)
        offset += k
    return np.concatenate(parts, axis=0), np.concatenate(units)


def _concat(results: list[RefineResult]) -> RefineResult:
    return RefineResult(*(np.concatenate([getattr(r, f.name) for r in results]) for f in fields(RefineResult)))


def search_for_atlas(
    model: Model,
    *,
    n_starts: int = 40,
    seed: int = 0,
    init_scale: float = 1.0,
    small_scale: float = 1e-3,
    n_steps: int = 3000,
    include_origin: bool = True,
    coverage_target: float = COVERAGE_TARGET,
    max_starts: int | None = None,
    **find_options,
) -> CriticalSearch:
    r"""Multi-start search in batches, raised until the Good–Turing estimate of missing classes is below target.

    A batch is ``n_starts`` *searches* (independent draws): ``n_starts // 2`` i.i.d.
    :math:`N(0, \text{init\_scale}^2)` starts; the plateau points
    (:func:`~flowgeom.critical.search.plateau_points`) of ``n_starts // 4`` gradient-descent runs from
    that distribution (the limits the basins will see) and of the rest from
    :math:`N(0, \text{small\_scale}^2)` (the saddles a small initialization visits), the points of one
    run forming one search. The origin, a critical point of every bias-free network with
    :math:`\sigma(0) = 0`, is added once as a deterministic start (no search). After each batch the
    probability that the next search finds a new class is estimated by Good–Turing
    (:func:`good_turing_p_new`); batches are added while it exceeds ``coverage_target`` and
    ``max_starts`` searches are not exceeded.

    Parameters
    ----------
    model : Model
    n_starts : int, default 40
        Searches per batch (>= 4).
    seed : int, default 0
        Root of all randomness (batch r > 0 draws from ``default_rng([seed, r])``).
    init_scale, small_scale : float, default 1.0, 1e-3
    n_steps : int, default 3000
        Gradient-descent steps of each descent run.
    include_origin : bool, default True
        Add the origin as a start where it is critical.
    coverage_target : float, default ``COVERAGE_TARGET`` = 0.05
        Stop raising the budget once the estimated probability of a new class is at or below it.
    max_starts : int, optional
        Budget in searches; default ``4 * n_starts`` (``n_starts``: one batch, no raising).
    **find_options
        Passed to :func:`~flowgeom.critical.search.find_critical_points`.

    Returns
    -------
    CriticalSearch
        With ``units`` (the search of each start) and ``settings["rounds"]``, ``["coverage_target"]``,
        ``["max_starts"]``.
    """
    from flowgeom._validate import (
        check_int,
        check_positive,
        check_probability,
        check_seed,
    )

    n_starts = check_int("n_starts", n_starts, minimum=4)
    seed = check_seed(seed)
    check_positive("init_scale", init_scale)
    check_positive("small_scale", small_scale)
    coverage_target = check_probability("coverage_target", coverage_target)
    max_starts = 4 * n_starts if max_starts is None else check_int("max_starts", max_starts, minimum=n_starts)
    rng = np.random.default_rng(seed)
    n = model.n_params
    starts, units = _draw_starts(model, rng, n_starts, init_scale, small_scale, n_steps)
    if include_origin:
        zero = np.zeros((1, n))
        g0 = model.grad(zero)
        if np.all(np.isfinite(g0)) and float(np.linalg.norm(g0)) == 0.0:
            starts, units = np.concatenate([starts, zero]), np.concatenate([units, [-1]])
    refine_kw = {k: find_options[k] for k in ("gtol", "max_iter") if k in find_options}
    refined = refine_critical(model, starts, **refine_kw)
    search = find_critical_points(model, starts, rng=rng, refined=refined, **find_options)
    rounds, n_searches = 1, n_starts
    while n_searches + n_starts <= max_starts:
        cov = search_coverage(replace(search, units=units))
        if cov.p_new <= coverage_target:
            break
        r_rng = np.random.default_rng([seed, rounds])
        more, more_units = _draw_starts(model, r_rng, n_starts, init_scale, small_scale, n_steps)
        refined = _concat([refined, refine_critical(model, more, **refine_kw)])
        starts, units = np.concatenate([starts, more]), np.concatenate([units, n_searches + more_units])
        search = find_critical_points(model, starts, rng=np.random.default_rng([seed, rounds, 1]), refined=refined,
                                      **find_options)
        rounds += 1
        n_searches += n_starts
    settings = dict(search.settings, rounds=rounds, coverage_target=coverage_target, max_starts=max_starts,
                    batch=n_starts)
    return replace(search, units=units, settings=settings)


class SearchedAtlas:
    r"""The atlas of any :class:`~flowgeom.models.Model` from a critical-point search (module docstring).

    Parameters
    ----------
    model : Model
    search : CriticalSearch, optional
        A finished search; default :func:`search_for_atlas` with ``search_options``.
    seed : int, default 0
        Seed of the default search.
    zero_rtol, gap_min : float
        Inertia tolerances (see :func:`flowgeom.critical.hessian_inertia`).
    max_points : int, default ``MAX_POINTS_PER_CLASS``
        Members per class whose linearization is measured.
    value_rtol : float, default ``VALUE_RTOL``
    **search_options
        Keywords of :func:`search_for_atlas`, e.g. ``n_starts`` (searches per batch, default 40),
        ``coverage_target`` (default ``COVERAGE_TARGET`` = 0.05) and ``max_starts`` (default
        ``4 * n_starts``; ``n_starts`` runs one batch).

    Notes
    -----
    :meth:`coverage` says how complete the search is (:class:`Coverage`); :meth:`attrs` carries it as
    ``coverage_*`` attributes and every set's ``info`` its ``count`` (starts that reached it),
    ``n_searches`` (searches that found it), ``singleton`` (found by one search), ``source``
    (``search``, ``grown`` or ``gradient_flat``) and the largest ``refine_residual`` and
    ``grad_flatness`` of its measured points; every measured point its ``grad_norm``,
    ``refine_residual`` and ``grad_flatness`` (:func:`~flowgeom.critical.refinement.point_quality`).
    Gradient-flat points of the search are sets of kind ``gradient_flat`` labelled ``f<k>``: listed,
    never located, never a saddle.
    """

    def __init__(
        self,
        model: Model,
        search: CriticalSearch | None = None,
        *,
        seed: int = 0,
        zero_rtol: float = ZERO_RTOL,
        gap_min: float = GAP_MIN,
        max_points: int = MAX_POINTS_PER_CLASS,
        value_rtol: float = VALUE_RTOL,
        **search_options,
    ):
        if not isinstance(model, Model):
            raise TypeError(f"`model` must implement flowgeom.Model; got {type(model).__name__}.")
        self._model = model
        self.seed = int(seed)
        if search is None:
            search = search_for_atlas(model, seed=self.seed, **search_options)
        if not isinstance(search, CriticalSearch):
            raise TypeError(f"`search` must be a CriticalSearch; got {type(search).__name__}.")
        if not search.points:
            raise ValueError("the search found no critical point (every refinement failed); raise `n_starts`.")
        self.search_settings = dict(search.settings, n_starts=search.n_starts, n_converged=search.n_converged,
                                    n_gradient_flat=int(np.sum(search.refine.gradient_flat)))
        self._coverage = search_coverage(search)
        self.zero_rtol, self.gap_min = float(zero_rtol), float(gap_min)
        self.max_points = int(max_points)
        self.value_rtol = float(value_rtol)
        yy = float(0.5 * np.sum(np.asarray(model.Y) ** 2)) if hasattr(model, "Y") else 0.0
        self._certify_at = CERTIFY_RTOL * (1.0 + yy)
        self._members: dict[int, np.ndarray] = {}
        self._sets: dict[int, CriticalSet] = {}
        inc = _incidence(search)
        order = sorted(range(len(search.points)), key=lambda i: -search.points[i].loss)
        for key, i in enumerate(order):
            p = search.points[i]
            self._add(key, f"c{key}", np.asarray(p.members), int(p.manifold_dim), int(p.count), int(p.n_members),
                      n_searches=inc.get(i, 0))
        for j, p in enumerate(search.flat_points):
            key = len(order) + j
            self._add(key, f"f{key}", np.asarray(p.members), -1, int(p.count), 1, flat=True)
        self._relabel_kinds()

    # ------------------------------------------------------------------ the contract
    @property
    def model(self) -> Model:
        return self._model

    @property
    def loss_offset(self) -> float:
        return 0.0

    def sets(self) -> list[CriticalSet]:
        return sorted(self._sets.values(), key=lambda c: (-c.critical_value, c.key))

    def get(self, key: int) -> CriticalSet:
        try:
            return self._sets[int(key)]
        except KeyError:
            raise KeyError(f"no critical class with key {key}; known keys {sorted(self._sets)}.") from None

    def locate(self, theta: Params, loss: FloatArray, *, plateau: bool = False) -> np.ndarray:
        theta = np.atleast_2d(np.asarray(theta, dtype=np.float64))
        loss = np.asarray(loss, dtype=np.float64).reshape(-1)
        if theta.shape[0] == 0:
            return np.zeros(0, dtype=np.int64)
        if plateau:
            res = refine_critical(self._model, theta)
            step = np.linalg.norm(res.theta - theta, axis=-1)
            near = res.converged & (step <= MAX_STEP_RTOL * (1.0 + np.linalg.norm(res.theta, axis=-1)))
            keys = self._match(res.theta, res.loss)
            return np.where(near, keys, UNCLASSIFIED).astype(np.int64)
        return self._match(theta, loss)

    def grow(self, theta: Params, *, plateau: bool = False) -> np.ndarray:
        """Refine ``theta`` (k, n) to critical points; add those that match no class; return keys.

        With ``plateau`` a refined point farther than ``MAX_STEP_RTOL (1 + |theta*|)`` from its start
        does not explain the plateau and is not added (-3).
        """
        theta = np.atleast_2d(np.asarray(theta, dtype=np.float64))
        if theta.shape[0] == 0:
            return np.zeros(0, dtype=np.int64)
        res = refine_critical(self._model, theta)
        keys = np.full(theta.shape[0], UNCLASSIFIED, dtype=np.int64)
        ok = res.converged.copy()
        if plateau:
            step = np.linalg.norm(res.theta - theta, axis=-1)
            ok &= step <= MAX_STEP_RTOL * (1.0 + np.linalg.norm(res.theta, axis=-1))
        for i in np.flatnonzero(ok):
            th, L = res.theta[i], float(res.loss[i])
            k = int(self._match(th[None], np.array([L]))[0])
            if k < 0:
                k = max(self._sets) + 1
                dim = -1
                self._add(k, f"c{k}", th[None], dim, 1, 1, source="grown")
                self._relabel_kinds()
            keys[i] = k
        return keys

    def coverage(self) -> Coverage:
        """The :class:`Coverage` of the search this atlas was built from (classes grown later not counted)."""
        return self._coverage

    def measure(self, keys: Sequence[int] | None = None, *, progress: bool = False) -> list[CriticalSet]:
        """The classes are measured when found; returns them."""
        keys = [c.key for c in self.sets()] if keys is None else keys
        return [self.get(k) for k in keys]

    def attrs(self) -> dict[str, Any]:
        a: dict[str, Any] = data_attrs(self._model)
        a.update({
            "atlas": "searched",
            "model": type(self._model).__name__,
            "seed": self.seed,
            "zero_rtol": self.zero_rtol,
            "gap_min": self.gap_min,
            "labels": "c<k>: classes of the search in order of decreasing critical value; grown ones continue",
            "kind_rule": ("strict_saddle: n_- > 0 at every point; global_min: the lowest local minimum found "
                          "(certified only when its value is 0); local_min: other n_- = 0 Morse-Bott classes; "
                          "degenerate: n_- = 0 somewhere and not Morse-Bott"),
            "manifold_dim_source": "refinement-cloud local dimension",
            "stable_codim_rule": "n_negative where every measured point is Morse-Bott; -1 = undecided by linearization",
        })
        for k, v in self.search_settings.items():
            a[f"search_{k}"] = v if isinstance(v, (int, float, str)) else str(v)
        cov = self._coverage
        a.update({
            "coverage_p_new": float(cov.p_new),
            "coverage_target": float(cov.target),
            "coverage_searches": int(cov.searches),
            "coverage_classes": int(cov.classes),
            "coverage_singletons": int(cov.singletons),
            "coverage_rounds": int(cov.rounds),
            "coverage_reached": int(cov.reached),
            "coverage_curve_searches": [int(v) for v in cov.curve_searches],
            "coverage_curve_classes": [int(v) for v in cov.curve_classes],
            "coverage_rule": ("Good-Turing: P(next search finds a new class) = singletons / searches; a search is one "
                              "random start or one descent run (its plateau points); the budget is raised in batches "
                              "until the estimate is <= coverage_target or search_max_starts is spent"),
            "gradient_flat_rule": ("f<k>: refinements that stalled with ||P_0 grad|| / ||grad|| >= FLAT_SHARE "
                                   "(P_0: Hessian eigenvalues <= FLAT_RTOL max|lambda|; Frye et al. 2021): "
                                   "not critical points, never located"),
        })
        return a

    # ------------------------------------------------------------------ internals
    def _match(self, theta, loss) -> np.ndarray:
        dist = _dist_fn(self._model)
        keys = [k for k, cs in self._sets.items() if cs.kind != "gradient_flat"]
        vals = np.array([self._sets[k].critical_value for k in keys])
        out = np.full(loss.shape[0], UNCLASSIFIED, dtype=np.int64)
        for i in range(loss.shape[0]):
            if not np.isfinite(loss[i]):
                continue
            cand = np.flatnonzero(np.abs(loss[i] - vals) <= self.value_rtol * (1.0 + np.abs(vals)))
            if cand.size == 1:
                out[i] = keys[cand[0]]
            elif cand.size > 1:
                d = [min(dist(p, theta[i]) for p in self._members[keys[c]]) for c in cand]
                out[i] = keys[cand[int(np.argmin(d))]]
        return out

    def _add(self, key, label, members, manifold_dim, count, n_members, *, n_searches=0, flat=False,
             source="search"):
        model = self._model
        mem = members[: max(1, self.max_points)]
        cols: dict[str, list] = {k: [] for k in (
            "grad_norm", "loss", "n_negative", "n_zero", "n_positive", "decided", "manifold_dim", "morse_bott",
            "stable_codim", "stable_codim_lower", "spectral_gap", "reason")}
        if manifold_dim < 0 and mem.shape[0] and not flat:
            from flowgeom.critical.dimension import local_dimension

            manifold_dim = local_dimension(model, mem[0], rng=np.random.default_rng([self.seed, key]),
                                           zero_rtol=self.zero_rtol).dim
        for th in mem:
            inr = hessian_inertia(model, th, method="dense", zero_rtol=self.zero_rtol, gap_min=self.gap_min)
            codim, lower, reason = stable_codimension(inr, manifold_dim)
            cols["grad_norm"].append(float(np.linalg.norm(model.grad(th))))
            cols["loss"].append(float(model.loss(th)))
            cols["n_negative"].append(inr.n_negative)
            cols["n_zero"].append(inr.n_zero)
            cols["n_positive"].append(inr.n_positive)
            cols["decided"].append(bool(inr.decided))
            cols["manifold_dim"].append(int(manifold_dim))
            cols["morse_bott"].append(is_morse_bott(inr, manifold_dim))
            cols["stable_codim"].append(int(codim))
            cols["stable_codim_lower"].append(int(lower))
            cols["spectral_gap"].append(float(inr.gap))
            cols["reason"].append(reason)
        points = {k: np.asarray(v) for k, v in cols.items()}
        points["theta"] = np.asarray(mem, dtype=np.float64)
        points["grad_norm"], points["refine_residual"], points["grad_flatness"] = point_quality(model, mem)
        value = float(np.median(points["loss"]))
        self._members[key] = np.asarray(members)
        info = {"count": int(count), "n_members": int(n_members), "certified": False, "n_searches": int(n_searches),
                "singleton": bool(n_searches == 1), "source": "gradient_flat" if flat else source,
                "refine_residual": float(np.max(points["refine_residual"])),
                "grad_flatness": float(np.max(points["grad_flatness"]))}
        self._sets[key] = CriticalSet(key=key, label=label, critical_value=value,
                                      rank=_product_rank(model, mem[0]), kind="gradient_flat" if flat else "undecided",
                                      measured=True, points=points, info=info)

    def _relabel_kinds(self):
        """Apply the kind rule to every class (the global minimum depends on all of them)."""
        local = {}
        crit = {k: cs for k, cs in self._sets.items() if cs.kind != "gradient_flat"}
        for k, cs in crit.items():
            P = cs.points
            local[k] = set_kind(P["n_negative"], P["morse_bott"], P["decided"])
        mins = [k for k, kd in local.items() if kd == "local_min"]
        lowest_min = min((self._sets[k].critical_value for k in mins), default=None)
        lowest_all = min(cs.critical_value for cs in crit.values())
        for k, cs in list(crit.items()):
            kind = local[k]
            is_global = kind == "local_min" and cs.critical_value == lowest_min and lowest_min <= lowest_all
            certified = bool(is_global and cs.critical_value <= self._certify_at)
            if is_global:
                kind = "global_min"
            info = dict(cs.info, certified=certified)
            self._sets[k] = CriticalSet(key=cs.key, label=cs.label, critical_value=cs.critical_value, rank=cs.rank,
                                        kind=kind, measured=cs.measured, points=cs.points, info=info)
