r"""The atlas of a nonlinear network: critical classes, basins and saddle-to-saddle transitions.

For a smooth model without closed-form critical sets (e.g. :class:`flowgeom.mlp.MLP`) with loss
:math:`L(\theta)`, the critical set :math:`\{\nabla L = 0\}` is *sampled*
(:func:`flowgeom.nonlinear_critical.find_critical_points`): a multi-start Newton search lists the
critical points distinct up to the model's symmetries, merging the points of one continuous
family. Each entry is a **critical class**; this module turns the classes into the same three
Datasets as the deep linear atlas (DESIGN.md), so that the CLI, the plots and the studies treat
both alike:

- ``strata`` (:func:`nonlinear_strata_dataset`): one row per class, labelled ``"c0"``, ``"c1"``,
  ... in order of *decreasing* critical value (c0 the highest), with the measured inertia
  :math:`(n_-, n_0, n_+)` of :math:`\nabla^2 L`, the measured local dimension of the critical set,
  the Morse–Bott test and the stable codimension exactly as in
  :func:`flowgeom.critical.build_strata_dataset`;
- ``basins`` (:func:`flowgeom.basins.sample_basins` with :class:`CriticalClassClassifier`);
- ``transitions`` (:func:`nonlinear_transitions`, visits identified by
  :class:`CriticalClassIdentifier`).

What a sampled atlas cannot certify
-----------------------------------
The search finds the critical points its starts lead to, not all of them. Hence:

- ``kind = "global_min"`` means *the lowest local minimum found* (:math:`n_- = 0`, Morse–Bott, the
  smallest critical value of the search). It is certified (variable ``certified``) only when its
  critical value is 0 up to round-off, because :math:`L \ge 0` for the squared loss. Other
  classes with :math:`n_- = 0` and Morse–Bott are ``"local_min"``; ``n_- > 0`` gives
  ``"strict_saddle"``; :math:`n_- = 0` without Morse–Bott (or with an undecided inertia) is
  ``"degenerate"`` (terms of order >= 3 decide between a local minimum and a non-strict saddle).
  The deep linear atlas's ``"non_strict_saddle"`` needs the closed form and is never assigned.
- Basin samples whose limit is a critical point the search missed are labelled -3
  (unclassified) and counted, never forced into a class.
- ``rank`` is -1 for nonlinear activations (a nonlinear network has no end-to-end matrix); for
  ``activation="linear"`` it is the rank of the end-to-end product :math:`W_{H+1}\cdots W_1` at
  the representative (the deep linear stratum's r).
- ``paper_dim_bound``, ``paper_escape_bound``, ``paper_codim_bound`` are -1: the paper's counts are
  for deep linear networks.

Data of a deep linear :class:`~flowgeom.problem.Problem` (:func:`mlp_for_problem`)
---------------------------------------------------------------------------------
A spectrum problem (widths, s) becomes the whitened canonical data set
:math:`X = I_{d_x}` (m = d_x samples), :math:`Y = \Sigma = [\mathrm{diag}(s) \mid 0]`; then
:math:`\tfrac12\|Y - W_{H+1}\cdots W_1 X\|_F^2` is exactly the canonical loss of the paper, so
the linear MLP *is* :meth:`flowgeom.networks.DeepLinearNetwork.canonical` (same packing, same
loss and gradient, tested), and the tanh network is the nonlinear network on the same data. A
data problem keeps its own (X, Y): the linear MLP is ``problem.network("original")``.

References
----------
K. Fukumizu and S. Amari, "Local minima and plateaus in hierarchical structures of multilayer
perceptrons", Neural Networks 13 (2000). A. M. Saxe, J. L. McClelland, S. Ganguli, ICLR 2014.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping, Sequence

import numpy as np

from flowgeom._types import FloatArray, Params
from flowgeom._version import __version__
from flowgeom.basins.classifiers import LIMIT_UNCLASSIFIED
from flowgeom.critical.linearization import GAP_MIN, ZERO_RTOL, hessian_inertia, stable_codimension
from flowgeom.models.mlp import MLP
from flowgeom.models.base import Model, check_params
from flowgeom.critical.search import (
    CriticalSearch,
    descent_trajectories,
    find_critical_points,
    plateau_points,
    refine_critical,
)

__all__ = [
    "mlp_for_problem",
    "search_for_atlas",
    "nonlinear_strata_dataset",
    "CriticalClassClassifier",
    "CriticalClassIdentifier",
    "nonlinear_transitions",
    "nonlinear_atlas",
    "KINDS",
]

KINDS = ("global_min", "local_min", "strict_saddle", "degenerate")
"""Kinds of a nonlinear critical class (see the module docstring)."""

# A class's critical value matches a loss within VALUE_RTOL * (1 + |L_k|). A state converged to
# ||grad L|| <= 1e-10 near a Morse-Bott point has |L - L_k| ~ ||grad||^2 / lambda_min+ << 1e-12;
# 1e-6 leaves room for slowly converging (degenerate) limits while separating distinct values.
VALUE_RTOL = 1e-6

# A loss is certified as the global minimum value when it is below this times (1 + ||Y||_F^2 / 2):
# L >= 0, and round-off of a converged L = 0 point is ~1e-30; 1e-12 is far above that.
CERTIFY_RTOL = 1e-12

# Relative singular-value cutoff of the end-to-end product's rank (activation="linear").
PRODUCT_RANK_RTOL = 1e-8

# Largest number of members of a class whose inertia is measured (for the _min/_max variables).
MAX_POINTS_PER_CLASS = 8

# Step budget per flow segment of the basins (sample_basins' default is 100_000): a nonlinear
# network can have limits at infinity (saturated tanh units) or very flat minima, which an
# explicit solver chases for ~1e6 gradient evaluations (measured on a (2,2,1) tanh
# teacher-student problem with m = 20); such samples are reported unconverged (-1) instead.
BASIN_MAX_STEPS = 20_000

# Transitions: a refined critical point farther than this (relative to 1 + ||theta*||) from the
# plateau point does not explain the plateau (as flowgeom.transitions.identify.REFINE_MAX_STEP_RTOL).
MAX_STEP_RTOL = 0.25


# ---------------------------------------------------------------------------- data
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
    from flowgeom.problem import Problem

    if not isinstance(problem, Problem):
        raise TypeError(f"`problem` must be a flowgeom.Problem; got {type(problem).__name__}.")
    if problem.X is None:
        X = np.eye(problem.d_x)
        Y = problem.Sigma
    else:
        X, Y = problem.X, problem.Y
    return MLP(problem.widths, X, Y, activation=activation, bias=bias)


def _data_attrs(model) -> dict:
    """DESIGN.md provenance attrs of a model with data X, Y (s of Y V_X^1, as in Problem)."""
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


def _check_rng_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"`seed` must be a non-negative int; got {seed!r}.")
    return int(seed)


# ---------------------------------------------------------------------------- search
def search_for_atlas(
    model: Model,
    *,
    n_starts: int = 40,
    seed: int = 0,
    init_scale: float = 1.0,
    small_scale: float = 1e-3,
    n_steps: int = 3000,
    include_origin: bool = True,
    **find_options,
) -> CriticalSearch:
    r"""Multi-start search for an atlas: random starts, plateau points of descent from two scales, the origin.

    The starts are: ``n_starts // 2`` i.i.d. :math:`N(0, \text{init\_scale}^2)` points; the
    plateau points (:func:`~flowgeom.nonlinear_critical.plateau_points`) of ``n_starts // 4``
    gradient-descent runs from that distribution (the limits the basins will see) and of
    ``n_starts - n_starts//2 - n_starts//4`` runs from :math:`N(0, \text{small\_scale}^2)` (the
    saddles a small initialization visits: the transitions' plateaus); and the origin, a critical
    point of every bias-free network with :math:`\sigma(0) = 0` (tanh, linear), where the
    small-initialization trajectories start.

    Parameters
    ----------
    model : Model
    n_starts : int, default 40
        Number of random draws (>= 4); plateau points add up to 3 starts per trajectory.
    seed : int, default 0
        Root of all randomness (``np.random.default_rng(seed)``).
    init_scale : float, default 1.0
    small_scale : float, default 1e-3
    n_steps : int, default 3000
        Gradient-descent steps of :func:`~flowgeom.nonlinear_critical.descent_trajectories`.
    include_origin : bool, default True
        Add the origin as a start (it is kept only where it is critical).
    **find_options
        Passed to :func:`~flowgeom.nonlinear_critical.find_critical_points`.

    Returns
    -------
    CriticalSearch
    """
    if isinstance(n_starts, bool) or not isinstance(n_starts, (int, np.integer)) or n_starts < 4:
        raise ValueError(f"`n_starts` must be an int >= 4; got {n_starts!r}.")
    seed = _check_rng_seed(seed)
    for name, v in (("init_scale", init_scale), ("small_scale", small_scale)):
        if not (np.isfinite(v) and v > 0):
            raise ValueError(f"`{name}` must be a positive float; got {v!r}.")
    rng = np.random.default_rng(seed)
    n = model.n_params
    n_rand, n_traj = n_starts // 2, n_starts // 4
    n_small = n_starts - n_rand - n_traj
    parts = [init_scale * rng.standard_normal((n_rand, n))]
    for k, sc in ((n_traj, init_scale), (n_small, small_scale)):
        ys, gn = descent_trajectories(model, sc * rng.standard_normal((k, n)), n_steps=n_steps)
        parts.append(plateau_points(ys, gn))
    if include_origin:
        zero = np.zeros((1, n))
        if np.all(np.isfinite(model.grad(zero))) and float(np.linalg.norm(model.grad(zero))) == 0.0:
            parts.append(zero)
    return find_critical_points(model, np.concatenate(parts, axis=0), rng=rng, **find_options)


# ---------------------------------------------------------------------------- strata
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


def _kinds(values, n_neg, morse_bott, decided) -> list[str]:
    kinds = []
    for L, nn, mb, dec in zip(values, n_neg, morse_bott, decided):
        if dec and nn > 0:
            kinds.append("strict_saddle")
        elif dec and mb:
            kinds.append("local_min")
        else:
            kinds.append("degenerate")
    mins = [i for i, k in enumerate(kinds) if k == "local_min"]
    if mins:
        lowest = min(values[i] for i in mins)
        if lowest <= min(values):  # the lowest class found is a local minimum
            for i in mins:
                if values[i] == lowest:
                    kinds[i] = "global_min"
    return kinds


def nonlinear_strata_dataset(
    model: Model,
    search: CriticalSearch,
    *,
    seed: int = 0,
    attrs: Mapping[str, Any] | None = None,
    zero_rtol: float = ZERO_RTOL,
    gap_min: float = GAP_MIN,
    max_points: int = MAX_POINTS_PER_CLASS,
):
    r"""The ``strata`` Dataset (DESIGN.md) of the critical classes found by a search.

    One row per :class:`~flowgeom.nonlinear_critical.CriticalPointInfo` of ``search``, sorted by
    critical value descending and labelled ``"c0"``, ``"c1"``, ...; at up to ``max_points``
    members of each class the inertia is measured with :func:`flowgeom.linearize.hessian_inertia`
    (dense), and linearized like :func:`flowgeom.critical.build_strata_dataset`.

    Parameters
    ----------
    model : Model
        The model searched (e.g. :class:`flowgeom.mlp.MLP`).
    search : CriticalSearch
        From :func:`search_for_atlas` or :func:`flowgeom.nonlinear_critical.find_critical_points`.
    seed : int, default 0
        Recorded in attrs (the seed of the search).
    attrs : mapping, optional
        Extra attrs (e.g. a Problem's ``attrs()``), applied last.
    zero_rtol : float, default ``ZERO_RTOL`` (1e-8)
    gap_min : float, default ``GAP_MIN`` (1e3)
        Spectral gap for a decided inertia.
    max_points : int, default 8
        Members per class whose inertia is measured.

    Returns
    -------
    xarray.Dataset
        Dimension ``stratum`` with coords ``label``, ``rank``, ``critical_value``; ``n_negative``,
        ``n_zero``, ``n_positive`` (at the representative) and ``_min``/``_max`` over the measured
        members; ``manifold_dim`` (+ ``_min``/``_max``), ``morse_bott``, ``stable_codim`` (n_- where
        every measured point is Morse–Bott with a decided inertia, else -1),
        ``stable_codim_lower``, ``escape_dim`` (n_- + n_0), ``kind``, ``certified``,
        ``paper_dim_bound``/``paper_escape_bound``/``paper_codim_bound`` (-1),
        ``contradicts_paper`` (False), ``paper_check``, ``n_points``, ``max_grad_norm``,
        ``spectral_gap``, ``count`` (starts that converged to the class), ``n_members``; and
        ``representative`` (dims ``stratum``, ``param``).
    """
    import xarray as xr

    if not isinstance(search, CriticalSearch):
        raise TypeError(f"`search` must be a flowgeom.nonlinear_critical.CriticalSearch; got {type(search).__name__}.")
    if not search.points:
        raise ValueError("`search` found no critical point (all refinements failed); use more `n_starts`.")
    pts = sorted(search.points, key=lambda p: -p.loss)
    K = len(pts)
    rows: dict[str, list] = {k: [] for k in (
        "n_negative", "n_zero", "n_positive", "n_negative_min", "n_negative_max", "n_zero_min", "n_zero_max",
        "n_positive_min", "n_positive_max", "manifold_dim", "manifold_dim_min", "manifold_dim_max", "morse_bott",
        "stable_codim", "stable_codim_lower", "escape_dim", "n_points", "max_grad_norm", "spectral_gap", "count",
        "n_members", "decided", "rank", "reason",
    )}
    for p in pts:
        mem = p.members[: max(1, int(max_points))]
        inerts = [hessian_inertia(model, th, method="dense", zero_rtol=zero_rtol, gap_min=gap_min) for th in mem]
        rep = hessian_inertia(model, p.theta, method="dense", zero_rtol=zero_rtol, gap_min=gap_min)
        for j, name in enumerate(("n_negative", "n_zero", "n_positive")):
            vals = [i.triple[j] for i in inerts] + [rep.triple[j]]
            rows[name].append(rep.triple[j])
            rows[name + "_min"].append(min(vals))
            rows[name + "_max"].append(max(vals))
        d = int(p.manifold_dim)
        rows["manifold_dim"].append(d)
        rows["manifold_dim_min"].append(d)
        rows["manifold_dim_max"].append(d)
        codims = [stable_codimension(i, d) for i in inerts + [rep]]
        mb_all = all(c[2] == "morse_bott" for c in codims)
        rows["morse_bott"].append(bool(mb_all))
        rows["stable_codim"].append(int(min(c[0] for c in codims)) if mb_all else -1)
        lowers = [c[1] for c in codims]
        rows["stable_codim_lower"].append(int(min(lowers)) if all(v >= 0 for v in lowers) else -1)
        rows["escape_dim"].append(rep.n_negative + rep.n_zero)
        rows["n_points"].append(len(inerts))
        rows["max_grad_norm"].append(float(np.max(np.linalg.norm(model.grad(mem), axis=-1))))
        rows["spectral_gap"].append(float(p.spectral_gap))
        rows["count"].append(int(p.count))
        rows["n_members"].append(int(p.n_members))
        rows["decided"].append(bool(rep.decided and all(i.decided for i in inerts)))
        rows["rank"].append(_product_rank(model, p.theta))
        rows["reason"].append(codims[-1][2])
    values = [float(p.loss) for p in pts]
    kinds = _kinds(values, rows["n_negative_max"], rows["morse_bott"], rows["decided"])
    yy = float(0.5 * np.sum(np.asarray(model.Y) ** 2)) if hasattr(model, "Y") else 0.0
    certified = [k == "global_min" and v <= CERTIFY_RTOL * (1.0 + yy) for k, v in zip(kinds, values)]
    data_vars: dict[str, Any] = {}
    for key, vals in rows.items():
        if key in ("rank",):
            continue
        if key == "reason":
            data_vars["stable_codim_reason"] = ("stratum", np.array(vals, dtype=object))
        elif key in ("morse_bott", "decided"):
            data_vars["inertia_decided" if key == "decided" else key] = ("stratum", np.array(vals, dtype=bool))
        elif key in ("max_grad_norm", "spectral_gap"):
            data_vars[key] = ("stratum", np.array(vals, dtype=np.float64))
        else:
            data_vars[key] = ("stratum", np.array(vals, dtype=np.int64))
    data_vars["kind"] = ("stratum", np.array(kinds, dtype=object))
    data_vars["certified"] = ("stratum", np.array(certified, dtype=bool))
    for name in ("paper_dim_bound", "paper_escape_bound", "paper_codim_bound"):
        data_vars[name] = ("stratum", np.full(K, -1, dtype=np.int64))
    data_vars["contradicts_paper"] = ("stratum", np.zeros(K, dtype=bool))
    data_vars["paper_check"] = ("stratum", np.array(["no paper count (nonlinear model)"] * K, dtype=object))
    data_vars["representative"] = (("stratum", "param"), np.stack([np.asarray(p.theta) for p in pts]))
    coords = {
        "label": ("stratum", np.array([f"c{k}" for k in range(K)], dtype=object)),
        "rank": ("stratum", np.array(rows["rank"], dtype=np.int64)),
        "critical_value": ("stratum", np.array(values, dtype=np.float64)),
    }
    out_attrs: dict[str, Any] = {"flowgeom_version": __version__}
    out_attrs.update(_data_attrs(model))
    out_attrs.update(
        seed=int(seed),
        coordinates="model",
        n_starts=int(search.n_starts),
        n_converged=int(search.n_converged),
        zero_rtol=float(zero_rtol),
        gap_min=float(gap_min),
        labels="c<k> in order of decreasing critical value",
        kind_rule=(
            "strict_saddle: n_- > 0; global_min: the lowest class found, n_- = 0 and Morse-Bott (certified only "
            "when its value is 0); local_min: other n_- = 0 Morse-Bott classes; degenerate: n_- = 0, not "
            "Morse-Bott or inertia undecided"
        ),
        rank_rule="rank of W_{H+1}...W_1 for activation='linear', else -1",
        manifold_dim_source="refinement-cloud local dimension (flowgeom.critical.refine.local_dimension)",
        stable_codim_rule="n_negative where every measured point is Morse-Bott; -1 = undecided by linearization",
        **{f"search_{k}": (v if isinstance(v, (int, float, str)) else str(v)) for k, v in search.settings.items()},
    )
    if attrs:
        out_attrs.update(dict(attrs))
    return xr.Dataset(data_vars=data_vars, coords=coords, attrs=out_attrs)


# ---------------------------------------------------------------------------- classifier
def _dist_fn(model):
    od = getattr(model, "orbit_distance", None)
    if callable(od):
        return lambda a, b: float(od(a, b)[0])
    return lambda a, b: float(np.linalg.norm(np.asarray(a) - np.asarray(b)))


@dataclass(frozen=True, eq=False)
class CriticalClassClassifier:
    r"""Classify converged states of a model by the critical classes of its atlas (a :class:`flowgeom.classifiers.Classifier`).

    A converged final state :math:`\theta` (:math:`\|\nabla L\| \le` grad_tol) with loss
    :math:`L(\theta)` is matched to the classes k with
    :math:`|L(\theta) - L_k| \le \mathrm{value\_rtol}\,(1 + |L_k|)`; of several, the one with a
    member nearest to :math:`\theta` up to symmetry (``model.orbit_distance``, else Euclidean)
    wins; with none, :data:`flowgeom.classifiers.LIMIT_UNCLASSIFIED` (-3): a critical point the search
    did not find. (Unconverged -1 and diverged -2 are assigned by :func:`~flowgeom.basins.sample_basins`.)

    Build it with :meth:`from_strata` (from a ``strata`` Dataset of :func:`nonlinear_strata_dataset`)
    or :meth:`from_search`.

    Parameters
    ----------
    model : Model
    labels : tuple of str
    critical_values : tuple of float
    kinds : tuple of str
    ranks : tuple of int
    points : tuple of ndarray, each (k_i, n)
        Members (at least the representative) of each class.
    inertias : tuple of (int, int, int)
        Of each class (for the transition-graph nodes).
    value_rtol : float, default ``VALUE_RTOL`` (1e-6)
    """

    model: Any
    labels: tuple
    critical_values: tuple
    kinds: tuple
    ranks: tuple
    points: tuple = field(repr=False)
    inertias: tuple = ()
    value_rtol: float = VALUE_RTOL

    def __post_init__(self):
        K = len(self.labels)
        if K == 0:
            raise ValueError("`labels` is empty: the classifier needs at least one critical class.")
        for name in ("critical_values", "kinds", "ranks", "points"):
            if len(getattr(self, name)) != K:
                raise ValueError(f"`{name}` must have one entry per label ({K}); got {len(getattr(self, name))}.")
        if not (np.isfinite(self.value_rtol) and self.value_rtol > 0):
            raise ValueError(f"`value_rtol` must be a positive float; got {self.value_rtol!r}.")
        object.__setattr__(self, "critical_values", tuple(float(v) for v in self.critical_values))
        object.__setattr__(self, "labels", tuple(str(v) for v in self.labels))
        object.__setattr__(self, "kinds", tuple(str(v) for v in self.kinds))
        object.__setattr__(self, "ranks", tuple(int(v) for v in self.ranks))
        pts = tuple(np.atleast_2d(np.asarray(p, dtype=np.float64)) for p in self.points)
        n = self.model.n_params
        for p in pts:
            if p.shape[-1] != n:
                raise ValueError(f"`points` must have {n} columns (the model's n_params); got shape {p.shape}.")
        object.__setattr__(self, "points", pts)

    @classmethod
    def from_search(cls, model: Model, search: CriticalSearch, **kwargs) -> "CriticalClassClassifier":
        """From a search (classes in the order and labels of :func:`nonlinear_strata_dataset`)."""
        return cls.from_strata(model, nonlinear_strata_dataset(model, search), search=search, **kwargs)

    @classmethod
    def from_strata(cls, model: Model, strata, *, search: CriticalSearch | None = None, **kwargs) -> "CriticalClassClassifier":
        """From a ``strata`` Dataset of :func:`nonlinear_strata_dataset` (its ``representative`` points;
        with ``search``, every member of each class)."""
        if "representative" not in strata:
            raise ValueError("`strata` has no `representative` variable: build it with nonlinear_strata_dataset.")
        vals = [float(v) for v in strata["critical_value"].values]
        if search is not None:
            by_value = sorted(search.points, key=lambda p: -p.loss)
            points = tuple(np.asarray(p.members) for p in by_value)
        else:
            points = tuple(np.asarray(r)[None, :] for r in strata["representative"].values)
        inertias = tuple(
            (int(a), int(b), int(c))
            for a, b, c in zip(strata["n_negative"].values, strata["n_zero"].values, strata["n_positive"].values)
        )
        return cls(model, tuple(strata["label"].values), tuple(vals), tuple(strata["kind"].values),
                   tuple(strata["rank"].values), points, inertias, **kwargs)

    def _candidates(self, loss: float) -> list[int]:
        return [k for k, L in enumerate(self.critical_values) if abs(loss - L) <= self.value_rtol * (1.0 + abs(L))]

    def _nearest(self, theta, cands) -> int:
        if len(cands) == 1:
            return cands[0]
        dist = _dist_fn(self.model)
        d = [min(dist(p, theta) for p in self.points[k]) for k in cands]
        return cands[int(np.argmin(d))]

    def classify(self, theta: Params, loss: FloatArray) -> np.ndarray:
        """Indices into ``labels`` (or -3) for converged states ``theta`` (N, n) with losses (N,)."""
        theta = np.atleast_2d(np.asarray(theta, dtype=np.float64))
        loss = np.asarray(loss, dtype=np.float64).reshape(-1)
        out = np.full(loss.shape[0], LIMIT_UNCLASSIFIED, dtype=np.int64)
        for i in range(loss.shape[0]):
            c = self._candidates(float(loss[i]))
            if c:
                out[i] = self._nearest(theta[i], c)
        return out

    def attrs(self) -> dict:
        return {"type": "CriticalClassClassifier", "labels": list(self.labels),
                "critical_values": list(self.critical_values), "value_rtol": self.value_rtol}


# ---------------------------------------------------------------------------- identifier
class CriticalClassIdentifier:
    r"""Identify plateaus of a nonlinear model with the critical classes of its atlas (a :class:`flowgeom.transitions.Identifier`).

    The plateau point :math:`\theta_p` is refined to a critical point :math:`\theta^\ast`
    (:func:`flowgeom.nonlinear_critical.refine_critical`); it explains the plateau only if
    :math:`\|\theta^\ast - \theta_p\| \le` ``max_step_rtol`` :math:`(1 + \|\theta^\ast\|)`
    (else None: a slow passage, not a visit). :math:`\theta^\ast` is then matched to a class by
    ``classifier`` (critical value, then orbit distance). A critical point outside every class
    becomes a new node ``"u0"``, ``"u1"``, ... (its inertia measured; kind ``strict_saddle``,
    ``minimum`` or ``degenerate``), matched by critical value afterwards.
    Without a saved state (``theta=None``) the plateau loss is matched to the unique class within
    half the smallest gap between class values, else None.

    Parameters
    ----------
    classifier : CriticalClassClassifier
    max_step_rtol : float, default ``MAX_STEP_RTOL`` (0.25)
    """

    def __init__(self, classifier: CriticalClassClassifier, *, max_step_rtol: float = MAX_STEP_RTOL):
        from flowgeom.transitions import StratumNode

        if not isinstance(classifier, CriticalClassClassifier):
            raise TypeError(f"`classifier` must be a CriticalClassClassifier; got {type(classifier).__name__}.")
        if not (np.isfinite(max_step_rtol) and max_step_rtol > 0):
            raise ValueError(f"`max_step_rtol` must be a positive float; got {max_step_rtol!r}.")
        self.classifier = classifier
        self.model = classifier.model
        self.max_step_rtol = float(max_step_rtol)
        inert = classifier.inertias or (None,) * len(classifier.labels)
        self._nodes = [
            StratumNode(label=lab, rank=r, critical_value=v, inertia=i, kind=k)
            for lab, r, v, i, k in zip(classifier.labels, classifier.ranks, classifier.critical_values, inert,
                                       classifier.kinds)
        ]
        self._extra: list[tuple[Any, FloatArray]] = []
        vals = np.unique(classifier.critical_values)
        self._half_gap = 0.5 * float(np.min(np.diff(vals))) if vals.size > 1 else 0.5 * max(1.0, float(abs(vals[0])))

    @property
    def nodes(self):
        return tuple(self._nodes) + tuple(e[0] for e in self._extra)

    def __call__(self, theta, loss):
        from flowgeom.transitions import StratumNode

        if theta is None:
            hits = [k for k, v in enumerate(self.classifier.critical_values) if abs(float(loss) - v) <= self._half_gap]
            return self._nodes[hits[0]] if len(hits) == 1 else None
        theta = np.asarray(theta, dtype=np.float64)
        res = refine_critical(self.model, theta[None, :])
        if not bool(res.converged[0]):
            return None
        ts = res.theta[0]
        if np.linalg.norm(ts - theta) > self.max_step_rtol * (1.0 + np.linalg.norm(ts)):
            return None
        value = float(res.loss[0])
        k = int(self.classifier.classify(ts[None, :], np.array([value]))[0])
        if k >= 0:
            return self._nodes[k]
        for node, _ in self._extra:
            if abs(node.critical_value - value) <= self.classifier.value_rtol * (1.0 + abs(value)):
                return node
        inert = hessian_inertia(self.model, ts, method="dense")
        kind = "strict_saddle" if inert.n_negative > 0 else ("minimum" if inert.n_zero == 0 else "degenerate")
        node = StratumNode(label=f"u{len(self._extra)}", critical_value=value, inertia=inert.triple, kind=kind)
        self._extra.append((node, ts))
        return node


# ---------------------------------------------------------------------------- transitions
def _default_t1(model, eps: float) -> float:
    r"""Linear-regime escape-time estimate: 10 log(1/eps)/s_min (H = 1), 10 eps^{1-H}/((H-1) s_min) (H >= 2).

    s = nonzero singular values of :math:`Y X^T` (the linearized network's target
    correlation; :math:`\Sigma` for canonical data).
    """
    H = len(model.widths) - 2
    C = np.asarray(model.Y) @ np.asarray(model.X).T
    s = np.linalg.svd(C, compute_uv=False)
    s = s[s > 1e-10 * max(1.0, float(s[0]))] if s.size else s
    smin = float(s.min()) if s.size else 1.0
    if H == 1:
        return 10.0 * math.log(1.0 / eps) / smin + 20.0 / smin
    return 10.0 * eps ** (1 - H) / ((H - 1) * smin) + 20.0 / smin


def nonlinear_transitions(
    model: Model,
    identify: CriticalClassIdentifier,
    n_samples: int,
    *,
    init_scale: float = 1e-3,
    seed: int = 0,
    t1: float | None = None,
    n_save: int = 300,
    rtol: float = 1e-8,
    atol: float = 1e-12,
    grad_tol: float = 1e-10,
    detect_options: Mapping[str, Any] | None = None,
    integrate_options: Mapping[str, Any] | None = None,
    attrs: Mapping[str, Any] | None = None,
):
    r"""Saddle-to-saddle transitions of a nonlinear model from small initializations: the ``transitions`` Dataset.

    Integrates :math:`\dot\theta = -\nabla L(\theta)` from :math:`\theta_0 \sim N(0, \varepsilon^2 I)`
    with :func:`flowgeom.integrate.integrate` at log-spaced save times, detects the plateaus at the
    classes' critical values (:func:`flowgeom.transitions.detect_visits`), identifies them with
    ``identify`` and builds the graph (:func:`flowgeom.transitions.build_transition_graph`,
    :func:`flowgeom.transitions.transitions_dataset`).

    Parameters
    ----------
    model : Model
    identify : CriticalClassIdentifier
    n_samples : int
        Number of trajectories.
    init_scale : float, default 1e-3
        :math:`\varepsilon`.
    seed : int, default 0
    t1 : float, optional
        End time; default the linear-regime escape estimate
        :math:`10\log(1/\varepsilon)/s_{min} + 20/s_{min}` (H = 1; :math:`10\varepsilon^{1-H}/((H-1)s_{min})
        + 20/s_{min}` for H >= 2), s the singular values of :math:`YX^T`. Check ``n_unfinished``.
    n_save : int, default 300
    rtol, atol, grad_tol : float, default 1e-8, 1e-12, 1e-10
    detect_options, integrate_options : mapping, optional
        Keywords of :func:`~flowgeom.transitions.detect_visits` and :func:`~flowgeom.integrate.integrate`.
    attrs : mapping, optional
        Extra attrs.

    Returns
    -------
    xarray.Dataset
        See :func:`flowgeom.transitions.transitions_dataset`.
    """
    from flowgeom.flow import SaveAt, integrate
    from flowgeom.transitions import build_transition_graph, detect_visits, transitions_dataset

    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
        raise ValueError(f"`n_samples` must be a positive int; got {n_samples!r}.")
    if not (np.isfinite(init_scale) and init_scale > 0):
        raise ValueError(f"`init_scale` must be a positive float; got {init_scale!r}.")
    seed = _check_rng_seed(seed)
    if t1 is None:
        t1 = _default_t1(model, float(init_scale))
    if not (np.isfinite(t1) and t1 > 0):
        raise ValueError(f"`t1` must be a positive float; got {t1!r}.")
    rng = np.random.default_rng(seed)
    theta0 = init_scale * rng.standard_normal((int(n_samples), model.n_params))
    traj = integrate(model, theta0, float(t1), rtol=rtol, atol=atol, saveat=SaveAt(n_log=int(n_save)),
                     grad_tol=grad_tol, **dict(integrate_options or {}))
    visits = detect_visits(traj, model, strata=identify.nodes[: len(identify.classifier.labels)],
                           identify=identify, **dict(detect_options or {}))
    tg = build_transition_graph(visits, identify.nodes)
    out_attrs = {"flowgeom_version": __version__}
    out_attrs.update(_data_attrs(model))
    out_attrs.update(seed=seed, init="gaussian", init_scale=float(init_scale), n_samples=int(n_samples), t1=float(t1),
                     integrator="dopri5", rtol=float(rtol), atol=float(atol), grad_tol=float(grad_tol),
                     n_discovered=len(identify.nodes) - len(identify.classifier.labels))
    if attrs:
        out_attrs.update(dict(attrs))
    return transitions_dataset(tg, traj=traj, attrs=out_attrs)


# ---------------------------------------------------------------------------- everything
def nonlinear_atlas(
    model: Model,
    *,
    n_starts: int = 40,
    n_samples: int = 200,
    seed: int = 0,
    init_scale: float = 1.0,
    transition_samples: int = 20,
    transition_scale: float = 1e-3,
    scheduler=None,
    progress: bool = False,
    attrs: Mapping[str, Any] | None = None,
    search_options: Mapping[str, Any] | None = None,
    basins_options: Mapping[str, Any] | None = None,
    transitions_options: Mapping[str, Any] | None = None,
) -> dict:
    r"""The atlas of a (nonlinear) model: ``{"strata", "basins", "transitions"}`` Datasets as for linear networks.

    1. Critical classes: :func:`search_for_atlas` (``n_starts`` random draws, plateau points of
       descent from ``init_scale`` and from ``transition_scale``, the origin), then
       :func:`nonlinear_strata_dataset`.
    2. Basins: :func:`flowgeom.basins.sample_basins` of ``n_samples`` Gaussian initializations of
       scale ``init_scale``, limits classified by :class:`CriticalClassClassifier`.
    3. Transitions: :func:`nonlinear_transitions` of ``transition_samples`` trajectories from
       scale ``transition_scale``, identified by :class:`CriticalClassIdentifier`.

    Parameters
    ----------
    model : Model
        E.g. :func:`mlp_for_problem` or :meth:`flowgeom.mlp.TeacherStudent.student`.
    n_starts : int, default 40
        Random draws of the critical-point search (>= 4).
    n_samples : int, default 200
        Basin samples.
    seed : int, default 0
        Root seed: the search uses ``seed``, the basins ``seed + 1``, the transitions ``seed + 2``.
    init_scale : float, default 1.0
        Scale of the basin initializations (and of the search's random starts).
    transition_samples : int, default 20
        Trajectories of the transition graph (0 skips it).
    transition_scale : float, default 1e-3
        Their initialization scale (small: saddle-to-saddle regime).
    scheduler : optional, default None
        Passed to :func:`~flowgeom.basins.sample_basins` (None: local processes; "synchronous").
    progress : bool, default False
        Progress bar of the basins.
    attrs : mapping, optional
        Extra attrs for every Dataset (e.g. a Problem's ``attrs()``).
    search_options, basins_options, transitions_options : mapping, optional
        Further keywords of :func:`search_for_atlas`, :func:`~flowgeom.basins.sample_basins`
        (defaults here: ``init_scale`` as above, ``max_steps=BASIN_MAX_STEPS`` = 20000 per
        segment), :func:`nonlinear_transitions`.

    Returns
    -------
    dict of str to xarray.Dataset
        ``"strata"``, ``"basins"`` and (if ``transition_samples`` > 0) ``"transitions"``.
    """
    from flowgeom.basins._sample import sample_basins

    seed = _check_rng_seed(seed)
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
        raise ValueError(f"`n_samples` must be a positive int; got {n_samples!r}.")
    if isinstance(transition_samples, bool) or not isinstance(transition_samples, (int, np.integer)) or transition_samples < 0:
        raise ValueError(f"`transition_samples` must be a non-negative int; got {transition_samples!r}.")
    search = search_for_atlas(model, n_starts=n_starts, seed=seed, init_scale=init_scale,
                              small_scale=transition_scale, **dict(search_options or {}))
    strata = nonlinear_strata_dataset(model, search, seed=seed, attrs=attrs)
    clf = CriticalClassClassifier.from_strata(model, strata, search=search)
    bopts = dict(basins_options or {})
    bopts.setdefault("init_scale", init_scale)
    bopts.setdefault("max_steps", BASIN_MAX_STEPS)
    basins = sample_basins(model, int(n_samples), classifier=clf, seed=seed + 1, scheduler=scheduler,
                           progress=progress, **bopts)
    basins.attrs.update(_data_attrs(model))
    if attrs:
        basins.attrs.update(dict(attrs))
    out = {"strata": strata, "basins": basins}
    if transition_samples > 0:
        ident = CriticalClassIdentifier(clf)
        out["transitions"] = nonlinear_transitions(
            model, ident, int(transition_samples), init_scale=transition_scale, seed=seed + 2, attrs=attrs,
            **dict(transitions_options or {}),
        )
    return out
