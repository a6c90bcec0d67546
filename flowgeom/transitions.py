r"""Saddle-to-saddle transitions: the heteroclinic graph seen in simulated trajectories.

Let :math:`\theta(t)` solve the gradient flow :math:`\dot\theta = -\nabla L(\theta)` from a small
initialization. For a deep linear network it lingers near a sequence of saddles -- long
plateaus of the loss at critical values -- before it reaches a minimum (Saxe, McClelland and
Ganguli 2014; Jacot et al. 2021). This module

1. detects the *visits* along saved trajectories (:func:`detect_visits`): time intervals
   :math:`[t_{enter}, t_{exit}]` during which the state is near a critical point;
2. identifies the visited stratum (:class:`AtlasIdentifier` for linear networks, against the
   closed-form atlas of :mod:`flowgeom.critical`; :class:`RefineIdentifier` for any model,
   refining the plateau point to a critical point and deduplicating up to symmetries);
3. builds the directed graph of observed transitions (:func:`build_transition_graph`):
   counts, probabilities with Wilson intervals, dwell times, and the check that every sink
   is a minimum;
4. sets the observation beside the theory of the mode dynamics (:func:`transition_theory`);
5. writes the ``transitions`` Dataset and GraphML file of DESIGN.md
   (:func:`sample_transitions`, :func:`transitions_dataset`, :func:`save_transitions`).

GraphML cannot store tuples or ``None``: a node's inertia is stored both as the string
``"(n_negative,n_zero,n_positive)"`` (``""`` when unknown) and as three int attributes
``n_negative``, ``n_zero``, ``n_positive`` (``-1`` when unknown); :func:`parse_inertia`
turns the string back into a tuple. Every attribute of :attr:`TransitionGraph.graph` is a
Python ``str``, ``int`` or ``float``, so ``networkx.read_graphml(networkx.write_graphml(G))``
gives back ``G`` attribute for attribute (:func:`to_graphml`, :func:`read_graphml`).

References
----------
A. M. Saxe, J. L. McClelland, S. Ganguli, "Exact solutions to the nonlinear dynamics of
learning in deep linear neural networks", ICLR 2014, arXiv:1312.6120.
A. Jacot, F. Ged, B. Simsek, C. Hongler, F. Gabriel, "Saddle-to-saddle dynamics in deep linear
networks: small initialization training, symmetry, and sparsity", arXiv:2106.15933 (2021).
E. B. Wilson, "Probable inference, the law of succession, and statistical inference",
J. Amer. Statist. Assoc. 22 (1927).
"""

from __future__ import annotations

import math
import os
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Mapping, Protocol, Sequence, runtime_checkable

import networkx as nx
import numpy as np
import xarray as xr
from scipy import integrate as _quad
from scipy import special as _special

from ._types import FloatArray
from .basins import wilson_interval
from ._version import __version__
from .models import Model
from .networks import DeepLinearNetwork
from .problem import Problem

__all__ = [
    "StratumNode",
    "Visits",
    "TransitionGraph",
    "Identifier",
    "AtlasIdentifier",
    "RefineIdentifier",
    "detect_visits",
    "build_transition_graph",
    "transition_theory",
    "sample_transitions",
    "transitions_dataset",
    "graph_from_dataset",
    "save_transitions",
    "to_graphml",
    "read_graphml",
    "parse_inertia",
    "format_inertia",
    "UNIDENTIFIED",
    "MINIMUM_KINDS",
]

# ----------------------------------------------------------------------------- constants
UNIDENTIFIED = "?"
"""Stratum label of a visit whose plateau point matched no stratum."""

MINIMUM_KINDS = ("global_min", "local_min", "minimum")
"""Node kinds that may be sinks of the graph (every other sink is reported)."""

# Loss fraction reached by a rising mode at the "jump": the loss crosses the midpoint between
# the critical values of source and target, 1/2 (s - u)^2 = s^2/4, i.e. u = q s with
# q = 1 - 1/sqrt(2). Both the observed and the predicted jump times use this level, so their
# ratio does not depend on detection thresholds.
MIDPOINT_Q = 1.0 - 1.0 / math.sqrt(2.0)

# With unknown critical values, the loss scale of the speed criterion is L - min L, floored at
# this fraction of the trajectory's total loss drop (see `detect_visits`).
UNKNOWN_LEVEL_FLOOR = 0.01

# Default plateau thresholds (see `detect_visits`).
LOSS_RTOL = 0.05
SPEED_RTOL = 1.0
GRAD_RTOL = 0.2
MIN_LOG_DWELL = 0.1
MERGE_LOG_GAP = 0.05
CONFIDENCE_LEVEL = 0.95

# Plateau points are matched to the atlas with the entrywise tolerance
# ||P - Sigma_S||_max <= ATLAS_MATCH_RTOL * s_min. Any value below 1/2 matches at most one
# stratum (two Sigma_S differ by >= s_min in some entry); 0.1 accepts plateau points whose
# product is within 10% of s_min of the stratum and rejects slow passages that only cross a
# critical *value* (their product is off by a sizeable fraction of a mode).
ATLAS_MATCH_RTOL = 0.1

# A refined critical point farther than this (relative to 1 + ||theta*||) from the plateau point
# does not explain the plateau: the candidate is rejected as a passage.
REFINE_MAX_STEP_RTOL = 0.25

# Largest model for which a dense Hessian is formed to measure an unknown inertia.
DENSE_HESSIAN_MAX_PARAMS = 2000


# ----------------------------------------------------------------------------- nodes
def format_inertia(inertia: tuple[int, int, int] | None) -> str:
    """GraphML encoding of an inertia: ``(2, 5, 3) -> "(2,5,3)"``, ``None -> ""``."""
    if inertia is None:
        return ""
    a, b, c = (int(x) for x in inertia)
    return f"({a},{b},{c})"


def parse_inertia(text: str) -> tuple[int, int, int] | None:
    """Inverse of :func:`format_inertia`: ``"(2,5,3)" -> (2, 5, 3)``, ``"" -> None``.

    Raises
    ------
    ValueError
        If ``text`` is neither empty nor three comma-separated integers in parentheses.
    """
    t = str(text).strip()
    if t == "":
        return None
    if not (t.startswith("(") and t.endswith(")")):
        raise ValueError(f"`text` must look like '(n_negative,n_zero,n_positive)' or ''; got {text!r}.")
    parts = t[1:-1].split(",")
    if len(parts) != 3:
        raise ValueError(f"`text` must hold three integers; got {text!r}.")
    try:
        a, b, c = (int(p) for p in parts)
    except ValueError:
        raise ValueError(f"`text` must hold three integers; got {text!r}.") from None
    return (a, b, c)


@dataclass(frozen=True)
class StratumNode:
    r"""A node of the transition graph: one stratum (critical set) with what is known about it.

    Attributes
    ----------
    label : str
        Stratum label, e.g. ``"{0,1}"`` (DESIGN.md), or ``"c3"`` for a critical point found by
        :class:`RefineIdentifier`, or :data:`UNIDENTIFIED`.
    rank : int, default -1
        Rank r = |S| of the stratum; -1 when unknown.
    critical_value : float, default nan
        The loss on the stratum.
    inertia : tuple of int or None, default None
        (n_negative, n_zero, n_positive) of the Hessian on the stratum; ``None`` when unknown.
    kind : str, default "unknown"
        ``global_min``, ``strict_saddle``, ``non_strict_saddle`` (atlas), ``minimum`` (a
        refined critical point with no negative eigenvalue, not known to be global), or
        ``unknown``.
    learned : tuple of int or None, default None
        The learned set S (linear networks), used to compare with the theory's order of visits.
    """

    label: str
    rank: int = -1
    critical_value: float = float("nan")
    inertia: tuple[int, int, int] | None = None
    kind: str = "unknown"
    learned: tuple[int, ...] | None = None

    def __post_init__(self):
        if not isinstance(self.label, str) or self.label == "":
            raise ValueError(f"`label` must be a non-empty str; got {self.label!r}.")
        object.__setattr__(self, "rank", int(self.rank))
        object.__setattr__(self, "critical_value", float(self.critical_value))
        if self.inertia is not None:
            inertia = tuple(int(x) for x in self.inertia)
            if len(inertia) != 3 or min(inertia) < 0:
                raise ValueError(
                    f"`inertia` must be three non-negative ints (n_negative, n_zero, n_positive) or "
                    f"None; got {self.inertia!r}."
                )
            object.__setattr__(self, "inertia", inertia)
        if self.learned is not None:
            object.__setattr__(self, "learned", tuple(int(i) for i in self.learned))

    @classmethod
    def from_stratum(cls, stratum: Any, inertia: tuple[int, int, int] | None = None) -> "StratumNode":
        """A node from a :class:`flowgeom.critical.Stratum` (or any object with ``label``,
        ``rank``, ``critical_value``, ``kind`` and optionally ``learned`` and ``inertia`` or
        ``n_negative``/``n_zero``/``n_positive``)."""
        if isinstance(stratum, StratumNode):
            return stratum if inertia is None else _replace(stratum, inertia=inertia)
        if inertia is None:
            inertia = getattr(stratum, "inertia", None)
            if inertia is not None and not isinstance(inertia, tuple):
                # an Inertia-like object with named fields
                inertia = tuple(int(getattr(inertia, f)) for f in ("n_negative", "n_zero", "n_positive"))
            if inertia is None and all(hasattr(stratum, f) for f in ("n_negative", "n_zero", "n_positive")):
                vals = tuple(int(getattr(stratum, f)) for f in ("n_negative", "n_zero", "n_positive"))
                inertia = vals if min(vals) >= 0 else None
        learned = getattr(stratum, "learned", None)
        return cls(
            label=str(stratum.label),
            rank=int(getattr(stratum, "rank", -1)),
            critical_value=float(getattr(stratum, "critical_value", float("nan"))),
            inertia=inertia,
            kind=str(getattr(stratum, "kind", "unknown")),
            learned=None if learned is None else tuple(learned),
        )

    def graphml_attrs(self) -> dict:
        """The node's attributes, GraphML-safe (str/int/float only)."""
        inert = self.inertia if self.inertia is not None else (-1, -1, -1)
        return {
            "label": self.label,
            "rank": int(self.rank),
            "critical_value": float(self.critical_value),
            "inertia": format_inertia(self.inertia),
            "n_negative": int(inert[0]),
            "n_zero": int(inert[1]),
            "n_positive": int(inert[2]),
            "kind": self.kind,
            "learned": "" if self.learned is None else _learned_label(self.learned),
        }


def _replace(node: StratumNode, **changes) -> StratumNode:
    import dataclasses

    return dataclasses.replace(node, **changes)


def _learned_label(learned: Sequence[int]) -> str:
    """DESIGN.md label of a learned set: ``() -> "{}"``, ``(0, 2) -> "{0,2}"``."""
    return "{" + ",".join(str(int(i)) for i in sorted(learned)) + "}"


# ----------------------------------------------------------------------------- identifiers
@runtime_checkable
class Identifier(Protocol):
    r"""Maps a plateau point to the stratum it is near: the plug-in point for any model.

    In order to implement an identifier you need to provide:

    1. ``__call__(theta, loss) -> StratumNode | None``: ``theta`` (shape ``(n,)``, in the
       coordinates the flow runs in, or ``None`` when the trajectory stored no states) is the
       saved point of smallest gradient norm inside a plateau candidate, ``loss`` its loss.
       Return the node of the stratum (critical set) the plateau belongs to, deduplicated up
       to the model's symmetries (two plateau points related by a symmetry must give the
       same label), or ``None`` when the point is near no critical point (the candidate is
       then rejected: a slow passage, not a visit). To keep a plateau that is near a critical
       point you cannot name, return ``StratumNode(UNIDENTIFIED)``.
    2. ``nodes`` (sequence of :class:`StratumNode`): the strata known so far (all of the
       atlas, or the ones discovered up to now); their critical values give the plateau
       levels of :func:`detect_visits` when it is not given strata explicitly.
    """

    @property
    def nodes(self) -> Sequence[StratumNode]: ...

    def __call__(self, theta: FloatArray | None, loss: float) -> StratumNode | None: ...


class AtlasIdentifier:
    r"""Identify a plateau of a deep linear network against the closed-form atlas of strata.

    The plateau point :math:`\theta` is mapped to canonical coordinates
    (:meth:`flowgeom.Problem.to_canonical` when the flow runs in the original coordinates),
    its end-to-end product :math:`\bar P = \bar W_{H+1}\cdots\bar W_1` is matched to the
    stratum whose canonical end-to-end product :math:`\Sigma_S` it equals
    (:func:`flowgeom.critical.classify_point`), and the match is accepted only if the loss is
    also within ``loss_atol`` of the stratum's critical value. The end-to-end product is
    invariant under the gauge symmetry :math:`W_j \to G_j W_j G_{j-1}^{-1}`, so points of one
    gauge orbit get one label.

    Parameters
    ----------
    problem : Problem
    strata : sequence of Stratum, optional
        The atlas; default ``flowgeom.critical.enumerate_strata(problem)``.
    coordinates : {"auto", "canonical", "original"}, default "auto"
        The coordinates the trajectories were integrated in (as in :meth:`Problem.network`).
    atol : float or None, default None
        Entrywise tolerance of ``classify_point``; default ``ATLAS_MATCH_RTOL * s_min``
        (0.1 s_min). A plateau point matching no stratum is not near a critical point (a slow
        passage through a critical value): the identifier returns None and the candidate is
        rejected.
    loss_atol : float or None, default None
        Largest accepted :math:`|L(\theta) - L_S|`; default half the smallest gap between
        distinct critical values (so that the loss alone could not pick a wrong level).
    inertia : {"atlas", "measure", "none"}, default "atlas"
        Where node inertias come from: the atlas strata when they carry one, else measured
        once per stratum with the dense Hessian at a balanced point of the stratum (H = 1
        canonical diagonal point, see Notes) when the model is small; "measure" always
        measures; "none" leaves them unknown.

    Notes
    -----
    The measured inertia uses the balanced diagonal point :math:`W_j = \mathrm{diag}
    (s_i^{1/(H+1)}, i \in S)` (zero elsewhere), a critical point of the canonical loss on the
    stratum labelled by S. For H = 1 the inertia is the same at every point of a stratum
    (checked on random points of the :mod:`flowgeom.critical` charts). For H >= 2 it is not:
    a stratum holds families of points with different partial-product ranks (e.g. for widths
    (4, 3, 3, 3), s = (4, 2, 1), stratum {0}: (0, 24, 6) on the balanced "tight" family,
    (4, 16, 10) on the "outer" one); the node carries the balanced value, the family a
    small initialization passes near (it stays balanced up to :math:`O(\varepsilon^2)`,
    Lemma 1).
    """

    def __init__(
        self,
        problem: Problem,
        strata: Sequence[Any] | None = None,
        *,
        coordinates: Literal["auto", "canonical", "original"] = "auto",
        atol: float | None = None,
        loss_atol: float | None = None,
        inertia: Literal["atlas", "measure", "none"] = "atlas",
    ):
        if not isinstance(problem, Problem):
            raise TypeError(f"`problem` must be a flowgeom.Problem; got {type(problem).__name__}.")
        if coordinates not in ("auto", "canonical", "original"):
            raise ValueError(f"`coordinates` must be 'auto', 'canonical' or 'original'; got {coordinates!r}.")
        if inertia not in ("atlas", "measure", "none"):
            raise ValueError(f"`inertia` must be 'atlas', 'measure' or 'none'; got {inertia!r}.")
        if strata is None:
            from .critical import enumerate_strata

            strata = enumerate_strata(problem)
        strata = list(strata)
        if not strata:
            raise ValueError("`strata` is empty; pass the atlas (flowgeom.critical.enumerate_strata(problem)).")
        self.problem = problem
        self.strata = strata
        if coordinates == "auto":
            coordinates = "canonical" if problem.whitened else "original"
        self.coordinates = coordinates
        self.network = problem.network(coordinates) if coordinates == "original" else DeepLinearNetwork.canonical(
            problem.widths, problem.singular_values
        )
        s_min = float(np.min(problem.singular_values))
        self.atol = float(atol) if atol is not None else ATLAS_MATCH_RTOL * s_min
        levels = np.unique([float(s.critical_value) for s in strata])
        gaps = np.diff(levels)
        self.loss_atol = float(loss_atol) if loss_atol is not None else (
            0.5 * float(gaps.min()) if gaps.size else 0.5 * max(float(levels[0]), 1.0)
        )
        self._offset = float(problem.loss_offset) if coordinates == "original" else 0.0
        nodes = []
        for s in strata:
            node = StratumNode.from_stratum(s)
            if inertia == "none":
                node = _replace(node, inertia=None)
            elif (inertia == "measure" or node.inertia is None) and self.network.n_params <= DENSE_HESSIAN_MAX_PARAMS:
                node = _replace(node, inertia=self._balanced_inertia(node))
            nodes.append(node)
        self._nodes = tuple(nodes)

    @property
    def nodes(self) -> Sequence[StratumNode]:
        return self._nodes

    def _balanced_inertia(self, node: StratumNode) -> tuple[int, int, int] | None:
        if node.learned is None:
            return None
        pb = self.problem
        net = DeepLinearNetwork.canonical(pb.widths, pb.singular_values)
        H = pb.depth_H
        W = []
        for (dj, dj1) in net.shapes:
            Wj = np.zeros((dj, dj1))
            for i in node.learned:
                Wj[i, i] = pb.singular_values[i] ** (1.0 / (H + 1))
            W.append(Wj)
        theta = net.pack(W)
        from .linearize import hessian_inertia

        inert = hessian_inertia(net, theta)
        return inert.triple if min(inert.triple) >= 0 else None

    def __call__(self, theta: FloatArray | None, loss: float) -> StratumNode | None:
        if theta is None:
            # no states saved: identify by the critical value alone, only when unambiguous
            hits = [n for n in self._nodes if abs(float(loss) - n.critical_value) <= self.loss_atol]
            return hits[0] if len(hits) == 1 else None
        from .critical import classify_point

        theta = np.asarray(theta, dtype=np.float64)
        P = self.network.end_to_end(theta)
        if self.coordinates == "original":
            P = self.problem.canonical_end_to_end(P)
        idx = int(classify_point(self.problem, P, self.strata, atol=self.atol))
        if idx < 0:
            return None
        node = self._nodes[idx]
        if abs((float(loss) - self._offset) - node.critical_value) > self.loss_atol:
            return None
        return node


class RefineIdentifier:
    r"""Identify plateaus of any model by refining to a critical point and deduplicating.

    From the plateau point :math:`\theta_p`, a critical point :math:`\theta^\ast` with
    :math:`\nabla L(\theta^\ast) = 0` is found (``refine``); it explains the plateau only if
    :math:`\|\theta^\ast - \theta_p\| \le` ``max_step_rtol`` :math:`(1 + \|\theta^\ast\|)`
    (otherwise None: the candidate was a passage, not a visit). It is then compared with the
    critical points found so far: the same stratum when the critical values agree to
    ``value_rtol`` and ``distance(theta_a, theta_b) <= distance_atol``. A new one gets the
    label ``"c<k>"`` (k = 0, 1, ... in order of discovery), its critical value, and the inertia
    of the dense Hessian at :math:`\theta^\ast` (:func:`flowgeom.linearize.hessian_inertia`);
    kind ``strict_saddle`` when :math:`n_- > 0`, else ``minimum`` (not known to be global).

    Parameters
    ----------
    model : Model
    refine : callable or None, default None
        ``refine(model, theta) -> theta_star``. Default:
        :func:`flowgeom.nonlinear_critical.refine_critical` (Levenberg-Marquardt /
        minimum-norm Newton on the gradient with the exact Hessian; moves orthogonally to a
        critical manifold, so the step length is the distance to it).
    distance : callable or None, default None
        ``distance(theta_a, theta_b) -> float`` (or a tuple whose first item is the distance),
        zero on a symmetry orbit, e.g. :meth:`flowgeom.mlp.MLP.orbit_distance` (permutations and
        sign flips of hidden units). With it, two critical points are one stratum when their
        values agree and their orbit distance is at most ``distance_atol``. Default None:
        deduplicate by invariants alone -- the same critical value and the same inertia make
        one stratum. Critical sets are usually manifolds (the gauge orbits of linear networks,
        the redundant units of an over-parameterized MLP), on which pointwise and orbit
        distances are not small between two points of one set; value and inertia are
        constant along a symmetry orbit (Sylvester's law of inertia).
    distance_atol : float, default 1e-4
        Largest distance for "same stratum" (scaled by 1 + ||theta*||), when ``distance`` is
        used.
    value_rtol : float, default 1e-8
        Tolerance on critical values, relative to 1 + |L|.
    max_step_rtol : float, default ``REFINE_MAX_STEP_RTOL`` = 0.25
    max_iter : int, default 200
        Iteration budget of the default ``refine``. Newton converges quadratically at
        non-degenerate and Morse-Bott critical points (a few iterations); at degenerate ones
        (the origin of a deep linear network with H >= 2, where the loss is cubic) it is
        linear and wanders along the degenerate directions, and the candidate is rejected.
    """

    def __init__(
        self,
        model: Model,
        *,
        refine: Callable[[Model, FloatArray], FloatArray] | None = None,
        distance: Callable[[FloatArray, FloatArray], Any] | None = None,
        distance_atol: float = 1e-4,
        value_rtol: float = 1e-8,
        max_step_rtol: float = REFINE_MAX_STEP_RTOL,
        max_iter: int = 200,
    ):
        if not isinstance(model, Model):
            raise TypeError(f"`model` must implement flowgeom.Model; got {type(model).__name__}.")
        self.model = model
        if int(max_iter) < 1:
            raise ValueError(f"`max_iter` must be a positive int; got {max_iter!r}.")
        self.refine = refine if refine is not None else (lambda m, th: _default_refine(m, th, int(max_iter)))
        if distance is not None and not callable(distance):
            raise TypeError(f"`distance` must be callable or None; got {type(distance).__name__}.")
        self.distance = distance
        self.distance_atol = _check_positive("distance_atol", distance_atol)
        self.value_rtol = _check_positive("value_rtol", value_rtol)
        self.max_step_rtol = _check_positive("max_step_rtol", max_step_rtol)
        self._found: list[tuple[StratumNode, FloatArray]] = []  # node, refined critical point

    @property
    def nodes(self) -> Sequence[StratumNode]:
        return tuple(f[0] for f in self._found)

    @property
    def points(self) -> tuple[FloatArray, ...]:
        """The refined critical point of each node, in order of discovery."""
        return tuple(f[1] for f in self._found)

    def __call__(self, theta: FloatArray | None, loss: float) -> StratumNode | None:
        from .linearize import hessian_inertia

        if theta is None:
            return None
        theta = np.asarray(theta, dtype=np.float64)
        ts = self.refine(self.model, theta)
        if ts is None:
            return None
        ts = np.asarray(ts, dtype=np.float64)
        if not np.all(np.isfinite(ts)):
            return None
        if np.linalg.norm(ts - theta) > self.max_step_rtol * (1.0 + np.linalg.norm(ts)):
            return None
        value = float(self.model.loss(ts))
        Hm = np.asarray(self.model.hessian(ts))
        inert = hessian_inertia(self.model, ts, method="dense", hessian=Hm)
        inertia = inert.triple if min(inert.triple) >= 0 else None
        scale = 1.0 + float(np.linalg.norm(ts))
        for node, tp in self._found:
            if abs(node.critical_value - value) > self.value_rtol * (1.0 + abs(value)):
                continue
            if self.distance is None:
                if node.inertia == inertia:
                    return node
                continue
            d = self.distance(tp, ts)
            d = float(d[0] if isinstance(d, tuple) else d)
            if d <= self.distance_atol * scale:
                return node
        node = StratumNode(
            label=f"c{len(self._found)}",
            critical_value=value,
            inertia=inertia,
            kind="unknown" if inertia is None else ("strict_saddle" if inertia[0] > 0 else "minimum"),
        )
        self._found.append((node, ts))
        return node


def _default_refine(model: Model, theta: FloatArray, max_iter: int) -> FloatArray | None:
    """Refine with :func:`flowgeom.nonlinear_critical.refine_critical`; None if not converged."""
    from .nonlinear_critical import refine_critical

    res = refine_critical(model, theta, max_iter=max_iter)
    return np.asarray(res.theta) if bool(np.all(res.converged)) else None


# ----------------------------------------------------------------------------- visits
@dataclass(frozen=True)
class Visits:
    r"""The visits detected along an ensemble of trajectories (one row per visit).

    Rows are sorted by trajectory, then by entry time. All arrays have shape ``(n_visits,)``.

    Attributes
    ----------
    trajectory : ndarray of int
        Index of the trajectory in the ensemble.
    stratum : ndarray of str (object)
        Label of the visited stratum (:data:`UNIDENTIFIED` when a custom identifier kept a
        plateau it could not name).
    t_enter, t_exit : ndarray of float
        Entry and exit times, interpolated between save points; for a final visit (the
        trajectory never left) ``t_exit`` is the last valid save time.
    loss_plateau : ndarray of float
        Loss at the plateau point (the save of smallest gradient norm within the visit).
    grad_norm_plateau : ndarray of float
        Gradient norm there.
    final : ndarray of bool
        Whether the visit lasts to the end of the trajectory's record (a record cut short by
        NaN -- a diverged or failed trajectory -- has no final visit).
    t_jump : ndarray of float
        Time at which the loss crosses the midpoint between this visit's critical value and
        the next visit's (interpolated); NaN for the last visit of a trajectory.
    n_trajectories : int
        Ensemble size (trajectories with no visit count too).
    nodes : tuple of StratumNode
        Every stratum that could be visited (the identifier's nodes after detection).
    n_rejected : int
        Plateau candidates the identifier matched to no stratum (slow passages through a
        critical value, or plateaus at critical points missing from the atlas); not visits.
    options : dict
        The detection thresholds used.
    """

    trajectory: np.ndarray
    stratum: np.ndarray
    t_enter: np.ndarray
    t_exit: np.ndarray
    loss_plateau: np.ndarray
    grad_norm_plateau: np.ndarray
    final: np.ndarray
    t_jump: np.ndarray
    n_trajectories: int
    nodes: tuple[StratumNode, ...] = ()
    n_rejected: int = 0
    options: dict = field(default_factory=dict)

    def __post_init__(self):
        n = len(self.trajectory)
        for name in ("stratum", "t_enter", "t_exit", "loss_plateau", "grad_norm_plateau", "final", "t_jump"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"`{name}` must have one entry per visit ({n}); got {len(getattr(self, name))}.")

    def __len__(self) -> int:
        return len(self.trajectory)

    @property
    def dwell(self) -> np.ndarray:
        """``t_exit - t_enter`` per visit."""
        return self.t_exit - self.t_enter

    def paths(self) -> list[tuple[str, ...]]:
        """Per trajectory, the sequence of visited stratum labels."""
        out: list[list[str]] = [[] for _ in range(self.n_trajectories)]
        for j, lab in zip(self.trajectory, self.stratum):
            out[int(j)].append(str(lab))
        return [tuple(p) for p in out]

    def to_dataset(self) -> xr.Dataset:
        """The per-visit table as a Dataset with dimension ``visit`` (DESIGN.md names)."""
        return xr.Dataset(
            {
                "trajectory": ("visit", np.asarray(self.trajectory, dtype=np.int64)),
                "stratum": ("visit", np.asarray(self.stratum, dtype=object)),
                "t_enter": ("visit", np.asarray(self.t_enter, dtype=np.float64)),
                "t_exit": ("visit", np.asarray(self.t_exit, dtype=np.float64)),
                "loss_plateau": ("visit", np.asarray(self.loss_plateau, dtype=np.float64)),
                "grad_norm_plateau": ("visit", np.asarray(self.grad_norm_plateau, dtype=np.float64)),
                "final": ("visit", np.asarray(self.final, dtype=bool)),
                "t_jump": ("visit", np.asarray(self.t_jump, dtype=np.float64)),
            },
            coords={"visit": np.arange(len(self), dtype=np.int64)},
        )


def _check_positive(name, value, allow_zero=False):
    v = float(value)
    if not np.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        raise ValueError(f"`{name}` must be a finite {'non-negative' if allow_zero else 'positive'} float; got {value!r}.")
    return v


def _traj_arrays(traj) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, np.ndarray, np.ndarray | None]:
    """(ts, ys, loss, grad_norm, status) from a Trajectory-like object, batched."""
    for name in ("ts", "loss", "grad_norm"):
        if not hasattr(traj, name):
            raise TypeError(
                f"`traj` must be a flowgeom.integrate.Trajectory (with ts, ys, loss, grad_norm); it has no `{name}`."
            )
    ts = np.asarray(traj.ts, dtype=np.float64)
    loss = np.asarray(traj.loss, dtype=np.float64)
    g = np.asarray(traj.grad_norm, dtype=np.float64)
    ys = getattr(traj, "ys", None)
    ys = None if ys is None else np.asarray(ys, dtype=np.float64)
    if loss.ndim == 1:
        loss, g = loss[None], g[None]
        ys = None if ys is None else ys[None]
    if ts.ndim != 1 or loss.shape[-1] != ts.shape[0] or g.shape != loss.shape:
        raise ValueError(
            f"`traj` arrays disagree: ts {ts.shape}, loss {loss.shape}, grad_norm {g.shape}; expected "
            "ts (n_save,), loss and grad_norm (N, n_save)."
        )
    if ys is not None and ys.shape[:2] != loss.shape:
        raise ValueError(f"`traj.ys` must have shape (N, n_save, n) = {loss.shape + ('n',)}; got {ys.shape}.")
    if np.any(np.diff(ts) <= 0):
        raise ValueError("`traj.ts` must be strictly increasing.")
    status = getattr(traj, "status", None)
    status = None if status is None else np.asarray(status)
    return ts, ys, loss, g, status


def _levels_and_gaps(nodes: Sequence[StratumNode]) -> tuple[np.ndarray, np.ndarray] | None:
    vals = np.array([n.critical_value for n in nodes if np.isfinite(n.critical_value)], dtype=np.float64)
    if vals.size == 0:
        return None
    levels = np.unique(vals)
    if levels.size == 1:
        gaps = np.array([max(abs(float(levels[0])), 1.0)])
    else:
        d = np.diff(levels)
        gaps = np.empty_like(levels)
        gaps[0] = d[0]
        gaps[-1] = d[-1]
        gaps[1:-1] = np.minimum(d[:-1], d[1:])
    return levels, gaps


def _crossing(tau_a, tau_b, fa, fb, level) -> float:
    """tau where the linear interpolant from (tau_a, fa) to (tau_b, fb) equals level."""
    if not (np.isfinite(fa) and np.isfinite(fb)) or fa == fb:
        return 0.5 * (tau_a + tau_b)
    w = (level - fa) / (fb - fa)
    w = min(1.0, max(0.0, w))
    return tau_a + w * (tau_b - tau_a)


def _detect_one(ts, L, g, lv, *, loss_rtol, speed_rtol, grad_rtol, min_log_dwell, merge_log_gap, time_scale):
    """Plateau fragments of one trajectory: list of dicts with i0, i1, t_enter, t_exit, level, final."""
    ok = np.isfinite(L) & np.isfinite(g)
    n = int(np.argmin(ok)) if not ok.all() else len(ok)
    truncated = n < len(ok)  # a diverged or failed record ends in NaN: its end is not a rest
    if n == 0:
        return [], None
    ts, L, g = ts[:n], L[:n], g[:n]
    t0 = ts[0]
    gmax = float(np.max(g))
    dL = float(L[0] - np.min(L))
    if time_scale is not None:
        tc = time_scale
    elif gmax > 0 and dL > 0:
        tc = dL / gmax**2
    else:
        tc = max(ts[-1] - t0, 1.0) * 1e-3
    tau = np.log(ts - t0 + tc)
    if lv is not None:
        levels, gaps = lv
        cidx = np.argmin(np.abs(L[:, None] - levels[None, :]), axis=1)
        gap_i = gaps[cidx]
    else:
        # critical values unknown: the loss scale at a save is the loss still to be lost,
        # L - min L, floored at a fraction of the whole drop (so that the final minimum, where
        # both vanish, stays a plateau)
        levels = np.array([np.nan])
        scale = dL if dL > 0 else 1.0
        gap_i = np.maximum(L - np.min(L), UNKNOWN_LEVEL_FLOOR * scale)
        gaps = None
        cidx = np.zeros(n, dtype=int)

    def phi(i, c):
        """Combined margin at save i for level c; inside the plateau when <= 1."""
        gap = gaps[c] if gaps is not None else gap_i[i]
        f_loss = 0.0 if lv is None else abs(L[i] - levels[c]) / (loss_rtol * gap)
        f_speed = (ts[i] - t0) * g[i] ** 2 / (speed_rtol * gap)
        f_grad = 0.0 if gmax == 0 else g[i] / (grad_rtol * gmax)
        return max(f_loss, f_speed, f_grad)

    f_loss_v = np.zeros(n) if lv is None else np.abs(L - levels[cidx]) / (loss_rtol * gap_i)
    f_speed_v = (ts - t0) * g**2 / (speed_rtol * gap_i)
    f_grad_v = np.zeros(n) if gmax == 0 else g / (grad_rtol * gmax)
    inside = np.maximum(np.maximum(f_loss_v, f_speed_v), f_grad_v) <= 1.0
    frags = []
    i = 0
    while i < n:
        if not inside[i]:
            i += 1
            continue
        c = cidx[i]
        j = i
        while j + 1 < n and inside[j + 1] and cidx[j + 1] == c:
            j += 1
        frags.append({"i0": i, "i1": j, "c": int(c)})
        i = j + 1

    def log_margin(i, c):
        v = phi(i, c)
        return math.log(v) if v > 0 else -np.inf

    for f in frags:
        i0, i1, c = f["i0"], f["i1"], f["c"]
        if i0 == 0:
            f["tau_enter"] = tau[0]
        else:
            a, b = log_margin(i0 - 1, c), log_margin(i0, c)
            f["tau_enter"] = _crossing(tau[i0 - 1], tau[i0], a, max(b, -50.0), 0.0)
        if i1 == n - 1:
            f["tau_exit"] = tau[n - 1]
            f["final"] = not truncated
        else:
            a, b = log_margin(i1, c), log_margin(i1 + 1, c)
            f["tau_exit"] = _crossing(tau[i1], tau[i1 + 1], max(a, -50.0), b, 0.0)
            f["final"] = False

    def same_level(p, f):
        if lv is not None:
            return p["c"] == f["c"]
        # levels unknown: the loss must not have dropped between the fragments
        return abs(L[p["i1"]] - L[f["i0"]]) <= loss_rtol * gap_i[p["i1"]]

    def merge(fr, max_gap):
        out = []
        for f in fr:
            if out and same_level(out[-1], f) and f["tau_enter"] - out[-1]["tau_exit"] <= max_gap:
                p = out[-1]
                p["i1"], p["tau_exit"], p["final"] = f["i1"], f["tau_exit"], f["final"]
            else:
                out.append(dict(f))
        return out

    frags = merge(frags, merge_log_gap)
    frags = [f for f in frags if f["final"] or f["tau_exit"] - f["tau_enter"] >= min_log_dwell]
    frags = merge(frags, merge_log_gap)
    for f in frags:
        f["t_enter"] = float(np.exp(f["tau_enter"]) - tc + t0) if f["i0"] > 0 else float(t0)
        f["t_exit"] = float(np.exp(f["tau_exit"]) - tc + t0) if f["i1"] < n - 1 else float(ts[n - 1])
        f["t_enter"] = min(max(f["t_enter"], ts[max(f["i0"] - 1, 0)]), ts[f["i0"]])
        if f["i1"] < n - 1:
            f["t_exit"] = min(max(f["t_exit"], ts[f["i1"]]), ts[f["i1"] + 1])
        seg = g[f["i0"] : f["i1"] + 1]
        f["ip"] = f["i0"] + int(np.argmin(seg))
        f["level"] = float(levels[f["c"]]) if lv is not None else float("nan")
    return frags, (ts, L, tau, tc, t0)


def detect_visits(
    traj: Any,
    model_or_problem: Model | Problem,
    strata: Sequence[Any] | None = None,
    *,
    identify: Identifier | None = None,
    coordinates: Literal["auto", "canonical", "original"] = "auto",
    loss_rtol: float = LOSS_RTOL,
    speed_rtol: float = SPEED_RTOL,
    grad_rtol: float = GRAD_RTOL,
    min_log_dwell: float = MIN_LOG_DWELL,
    merge_log_gap: float = MERGE_LOG_GAP,
    time_scale: float | None = None,
) -> Visits:
    r"""Detect the plateaus (visits near critical points) along saved gradient-flow trajectories.

    For the flow :math:`\dot\theta = -\nabla L(\theta)`, the loss changes in log-time at the
    rate :math:`|dL/d\log t| = t\,\|\nabla L\|^2`. A save point at time t (relative to the
    first save :math:`t_0`) is *inside a plateau at level* :math:`L_c` (the nearest critical
    value) when all three margins are at most one:

    .. math::

        \frac{|L - L_c|}{\rho_L\, g_c} \le 1, \qquad
        \frac{(t - t_0)\,\|\nabla L\|^2}{\rho_v\, g_c} \le 1, \qquad
        \frac{\|\nabla L\|}{\rho_g \max_t \|\nabla L\|} \le 1,

    where :math:`g_c` is the gap from :math:`L_c` to the nearest other critical value. The
    first says the loss sits at a critical value, the second that it is not moving on the
    log-time scale (a fast passage through the level fails it, however small the time step),
    the third that the gradient is small compared with the trajectory's own scale (which a
    large initialization fails at t near 0, where the second condition is void). Runs of
    inside points at one level are *fragments*; their entry and exit times are interpolated
    between save points, linearly in log-time :math:`\tau = \log(t - t_0 + t_c)`, at the
    crossing of the logarithm of the combined margin (the largest of the three) through zero.
    Fragments at one level separated by at most ``merge_log_gap`` in :math:`\tau` are merged;
    a fragment that does not last to the end of the record must last at least
    ``min_log_dwell`` in :math:`\tau`. Each remaining fragment is identified at its plateau
    point (the save of smallest gradient norm); a candidate the identifier matches to no
    stratum is not a visit (a slow passage that only crossed a critical *value*) and is
    counted in :attr:`Visits.n_rejected`. Consecutive visits to one stratum merge. Whether a
    short plateau counts as a visit is a matter of these thresholds: with larger
    initializations the plateaus shrink and the saddles are "skipped".

    Parameters
    ----------
    traj : Trajectory
        A :class:`flowgeom.integrate.Trajectory` (or any object with ``ts`` (n_save,),
        ``loss``, ``grad_norm`` (N, n_save) and ``ys`` (N, n_save, n) or None; NaN marks the
        end of a diverged record).
    model_or_problem : Model or Problem
        The model the trajectories ran on, or the :class:`Problem` (then the model is
        ``problem.network(coordinates)``, the strata default to the atlas and ``identify`` to
        :class:`AtlasIdentifier`).
    strata : sequence of Stratum or StratumNode, optional
        The critical sets: their critical values are the plateau levels. Default: the atlas
        for a Problem, ``identify.nodes`` otherwise; with neither, plateaus are found by the
        speed and gradient criteria alone, with :math:`g_c` replaced by the loss still to be
        lost, :math:`\max(L - \min_t L,\ 0.01\,(L(t_0) - \min_t L))` (``UNKNOWN_LEVEL_FLOOR``):
        a plateau is then where the loss changes slowly in log-time compared with what
        remains to be learned.
    identify : Identifier, optional
        Maps a plateau point to a stratum. Default: :class:`AtlasIdentifier` for a Problem,
        :class:`RefineIdentifier` for a bare model.
    coordinates : {"auto", "canonical", "original"}, default "auto"
        For a Problem: the coordinates the trajectories were integrated in.
    loss_rtol : float, default 0.05
        :math:`\rho_L`: largest :math:`|L - L_c|` as a fraction of the gap :math:`g_c`.
    speed_rtol : float, default 1.0
        :math:`\rho_v`: largest log-time speed :math:`t\|\nabla L\|^2` as a fraction of
        :math:`g_c` (at 1, the loss would need at least one e-fold of time to cross the gap).
        Late plateaus are short compared with t, so a tight value would miss them; fast
        passages are rejected by this criterion and by ``min_log_dwell``.
    grad_rtol : float, default 0.2
        :math:`\rho_g`: largest gradient norm as a fraction of the trajectory's maximum.
    min_log_dwell : float, default 0.1
        Shortest accepted visit, in log-time :math:`\tau` (a visit lasting to the end of the
        record is exempt).
    merge_log_gap : float, default 0.05
        Fragments at one level closer than this in :math:`\tau` are one visit.
    time_scale : float or None, default None
        :math:`t_c` of the log-time :math:`\tau = \log(t - t_0 + t_c)`; default per
        trajectory :math:`(L(t_0) - \min_t L) / \max_t\|\nabla L\|^2`, the shortest time over
        which the flow could lose its whole loss drop.

    Returns
    -------
    Visits

    Raises
    ------
    TypeError
        ``traj`` is not Trajectory-like, or ``model_or_problem`` neither a Model nor a Problem.
    ValueError
        A threshold is not positive, or the trajectory arrays disagree in shape.

    Examples
    --------
    >>> import numpy as np
    >>> from flowgeom import Problem
    >>> from flowgeom.integrate import SaveAt, integrate
    >>> from flowgeom.transitions import detect_visits
    >>> pb = Problem.from_spectrum([4.0, 2.0, 1.0], (5, 4, 3))
    >>> net = pb.network()
    >>> theta0 = 1e-6 * np.random.default_rng(0).standard_normal((2, net.n_params))
    >>> traj = integrate(net, theta0, 40.0, rtol=1e-8, atol=1e-12, saveat=SaveAt(n_log=300))
    >>> detect_visits(traj, pb).paths()
    [('{}', '{0}', '{0,1}', '{0,1,2}'), ('{}', '{0}', '{0,1}', '{0,1,2}')]
    """
    loss_rtol = _check_positive("loss_rtol", loss_rtol)
    speed_rtol = _check_positive("speed_rtol", speed_rtol)
    grad_rtol = _check_positive("grad_rtol", grad_rtol)
    min_log_dwell = _check_positive("min_log_dwell", min_log_dwell, allow_zero=True)
    merge_log_gap = _check_positive("merge_log_gap", merge_log_gap, allow_zero=True)
    if time_scale is not None:
        time_scale = _check_positive("time_scale", time_scale)
    ts, ys, loss, gnorm, _ = _traj_arrays(traj)
    if isinstance(model_or_problem, Problem):
        if identify is None:
            identify = AtlasIdentifier(model_or_problem, strata, coordinates=coordinates)
    elif isinstance(model_or_problem, Model):
        if identify is None:
            identify = RefineIdentifier(model_or_problem)
    else:
        raise TypeError(
            f"`model_or_problem` must be a flowgeom.Problem or a flowgeom.Model; got {type(model_or_problem).__name__}."
        )
    if not callable(identify):
        raise TypeError(f"`identify` must be callable (an Identifier); got {type(identify).__name__}.")
    if strata is not None:
        level_nodes = [StratumNode.from_stratum(s) for s in strata]
    else:
        level_nodes = list(getattr(identify, "nodes", ()))
    lv = _levels_and_gaps(level_nodes) if level_nodes else None
    offset = 0.0
    if isinstance(identify, AtlasIdentifier):
        offset = identify._offset  # loss levels of the original coordinates include the constant
    if lv is not None and offset:
        lv = (lv[0] + offset, lv[1])

    rows: dict[str, list] = defaultdict(list)
    n_rejected = 0
    for j in range(loss.shape[0]):
        frags, aux = _detect_one(
            ts, loss[j], gnorm[j], lv,
            loss_rtol=loss_rtol, speed_rtol=speed_rtol, grad_rtol=grad_rtol,
            min_log_dwell=min_log_dwell, merge_log_gap=merge_log_gap, time_scale=time_scale,
        )
        if not frags:
            continue
        ts_j, L_j, tau_j, tc_j, t0_j = aux
        visits = []
        for f in frags:
            ip = f["ip"]
            theta = None if ys is None else ys[j, ip]
            node = identify(theta, float(L_j[ip]))
            if node is None:
                n_rejected += 1
                continue
            visits.append(
                {
                    "label": node.label,
                    "value": (f["level"] if not np.isfinite(node.critical_value) else node.critical_value + offset),
                    "i0": f["i0"], "i1": f["i1"], "ip": ip,
                    "t_enter": f["t_enter"], "t_exit": f["t_exit"], "final": f["final"],
                }
            )
        # merge consecutive visits to one stratum (identified, so one plateau split by a blip)
        merged = []
        for v in visits:
            if merged and v["label"] != UNIDENTIFIED and merged[-1]["label"] == v["label"]:
                p = merged[-1]
                if gnorm[j, v["ip"]] < gnorm[j, p["ip"]]:
                    p["ip"] = v["ip"]
                p["i1"], p["t_exit"], p["final"] = v["i1"], v["t_exit"], v["final"]
            else:
                merged.append(v)
        for k, v in enumerate(merged):
            t_jump = float("nan")
            if k + 1 < len(merged):
                w = merged[k + 1]
                a = v["value"] if np.isfinite(v["value"]) else L_j[v["ip"]]
                b = w["value"] if np.isfinite(w["value"]) else L_j[w["ip"]]
                level = 0.5 * (a + b)
                t_jump = _level_crossing(ts_j, L_j, tau_j, tc_j, t0_j, v["i1"], w["i0"], level)
            rows["trajectory"].append(j)
            rows["stratum"].append(v["label"])
            rows["t_enter"].append(v["t_enter"])
            rows["t_exit"].append(v["t_exit"])
            rows["loss_plateau"].append(float(L_j[v["ip"]]))
            rows["grad_norm_plateau"].append(float(gnorm[j, v["ip"]]))
            rows["final"].append(bool(v["final"]))
            rows["t_jump"].append(t_jump)

    nodes = tuple(StratumNode.from_stratum(n) for n in getattr(identify, "nodes", ())) or tuple(level_nodes)
    stratum = np.empty(len(rows["stratum"]), dtype=object)
    stratum[:] = rows["stratum"]
    return Visits(
        trajectory=np.asarray(rows["trajectory"], dtype=np.int64),
        stratum=stratum,
        t_enter=np.asarray(rows["t_enter"], dtype=np.float64),
        t_exit=np.asarray(rows["t_exit"], dtype=np.float64),
        loss_plateau=np.asarray(rows["loss_plateau"], dtype=np.float64),
        grad_norm_plateau=np.asarray(rows["grad_norm_plateau"], dtype=np.float64),
        final=np.asarray(rows["final"], dtype=bool),
        t_jump=np.asarray(rows["t_jump"], dtype=np.float64),
        n_trajectories=int(loss.shape[0]),
        nodes=nodes,
        n_rejected=int(n_rejected),
        options={
            "loss_rtol": loss_rtol,
            "speed_rtol": speed_rtol,
            "grad_rtol": grad_rtol,
            "min_log_dwell": min_log_dwell,
            "merge_log_gap": merge_log_gap,
            "time_scale": -1.0 if time_scale is None else time_scale,
        },
    )


def _level_crossing(ts, L, tau, tc, t0, i_from, i_to, level) -> float:
    """First time in saves [i_from, i_to] where L drops through `level` (interpolated in tau)."""
    i_to = min(i_to, len(L) - 1)
    for i in range(max(i_from, 0) + 1, i_to + 1):
        if L[i] <= level < L[i - 1]:
            tau_x = _crossing(tau[i - 1], tau[i], L[i - 1], L[i], level)
            return float(np.exp(tau_x) - tc + t0)
    return float("nan")


# ----------------------------------------------------------------------------- graph
def _wilson(count, n, *, level: float = CONFIDENCE_LEVEL) -> tuple[np.ndarray, np.ndarray]:
    """Wilson intervals (:func:`flowgeom.basins.wilson_interval`), with the uninformative [0, 1] where n = 0."""
    k = np.asarray(count, dtype=np.int64)
    n = np.asarray(n, dtype=np.int64)
    k, n = np.broadcast_arrays(k, n)
    low, high = np.zeros(n.shape), np.ones(n.shape)
    ok = n > 0
    if np.any(ok):
        low[ok], high[ok] = wilson_interval(k[ok], n[ok], level=level)
    return low, high


@dataclass(frozen=True)
class TransitionGraph:
    r"""The directed graph of observed transitions, with its tables.

    Attributes
    ----------
    graph : networkx.DiGraph
        Nodes are stratum labels with attributes ``label, rank, critical_value, inertia
        (str), n_negative, n_zero, n_positive, kind, learned, visits, n_left, n_final,
        mean_dwell, dwell_std``; edges carry ``count, probability, probability_low,
        probability_high, mean_dwell, dwell_std, mean_t_jump``. All values are str, int or
        float (GraphML-safe, see module docstring); graph attributes ``confidence_level``,
        ``n_trajectories``.
    visits : Visits
    edges : xarray.Dataset
        The edge table (dimension ``edge``).
    nodes : xarray.Dataset
        The node table (dimension ``node``).
    sinks : tuple of str
        Nodes of the attracting components (:func:`networkx.attracting_components`).
    n_unfinished : int
        Trajectories that do not end resting at a minimum (:data:`MINIMUM_KINDS`): stopped
        near a saddle (``t1`` too short), cut short by divergence or failure, or with no
        visit at all.
    non_minimum_sinks : tuple of str
        Sinks whose kind is not a minimum (:data:`MINIMUM_KINDS`): trajectories stopped near
        a saddle (too short a run) or a stratum misclassified. Empty when all is well.
    dominant_path : tuple of str
        The most frequent complete sequence of visits over the trajectories.
    dominant_path_fraction : float
        Fraction of trajectories that followed it.
    confidence_level : float
    """

    graph: nx.DiGraph
    visits: Visits
    edges: xr.Dataset
    nodes: xr.Dataset
    sinks: tuple[str, ...]
    n_unfinished: int
    non_minimum_sinks: tuple[str, ...]
    dominant_path: tuple[str, ...]
    dominant_path_fraction: float
    confidence_level: float


def build_transition_graph(
    visits: Visits,
    strata: Sequence[Any] | None = None,
    *,
    confidence_level: float = CONFIDENCE_LEVEL,
) -> TransitionGraph:
    r"""Build the directed graph of observed saddle-to-saddle transitions.

    Along each trajectory, consecutive visits :math:`v \to w` make one observed transition
    (source :math:`v`'s stratum to target :math:`w`'s). Edge probabilities are conditional on
    leaving: :math:`p(A \to B) = \#(A \to B) / \#\{\text{visits of } A \text{ followed by
    another visit}\}`, so the probabilities out of a node sum to one; they carry Wilson score
    intervals. The dwell of an edge is the time ``t_exit - t_enter`` the trajectories spent
    near the source before jumping to the target (mean and standard deviation).

    Parameters
    ----------
    visits : Visits
        From :func:`detect_visits`.
    strata : sequence of Stratum or StratumNode, optional
        Node attributes; default ``visits.nodes``. Labels missing there get an ``unknown``
        node (:data:`UNIDENTIFIED` visits become an ``unidentified`` node, which a sink check
        reports).
    confidence_level : float, default 0.95
        Of the Wilson intervals.

    Returns
    -------
    TransitionGraph
        Only visited strata are nodes.
    """
    if not isinstance(visits, Visits):
        raise TypeError(f"`visits` must be a Visits (from detect_visits); got {type(visits).__name__}.")
    if not 0.0 < confidence_level < 1.0:
        raise ValueError(f"`confidence_level` must be in (0, 1); got {confidence_level!r}.")
    known = {n.label: n for n in (StratumNode.from_stratum(s) for s in (strata if strata is not None else visits.nodes))}
    paths = visits.paths()
    n_visits: Counter = Counter()
    n_left: Counter = Counter()
    n_final: Counter = Counter()
    node_dwell: dict[str, list] = defaultdict(list)
    edge_count: Counter = Counter()
    edge_dwell: dict[tuple, list] = defaultdict(list)
    edge_jump: dict[tuple, list] = defaultdict(list)
    order: list[str] = []
    for j in range(visits.n_trajectories):
        idx = np.nonzero(visits.trajectory == j)[0]
        for a, i in enumerate(idx):
            lab = str(visits.stratum[i])
            if lab not in n_visits:
                order.append(lab)
            n_visits[lab] += 1
            if visits.final[i]:
                n_final[lab] += 1
            if a + 1 < len(idx):
                nxt = str(visits.stratum[idx[a + 1]])
                n_left[lab] += 1
                d = float(visits.t_exit[i] - visits.t_enter[i])
                node_dwell[lab].append(d)
                edge_count[(lab, nxt)] += 1
                edge_dwell[(lab, nxt)].append(d)
                edge_jump[(lab, nxt)].append(float(visits.t_jump[i]))

    G = nx.DiGraph(confidence_level=float(confidence_level), n_trajectories=int(visits.n_trajectories))
    labels = sorted(order, key=lambda lab: (-_value_of(known, lab), lab))
    for lab in labels:
        node = known.get(lab)
        if node is None:
            node = StratumNode(lab, kind="unidentified" if lab == UNIDENTIFIED else "unknown")
        attrs = node.graphml_attrs()
        dw = node_dwell.get(lab, [])
        attrs.update(
            visits=int(n_visits[lab]),
            n_left=int(n_left[lab]),
            n_final=int(n_final[lab]),
            mean_dwell=float(np.mean(dw)) if dw else float("nan"),
            dwell_std=float(np.std(dw)) if dw else float("nan"),
        )
        G.add_node(lab, **attrs)
    edges = sorted(edge_count, key=lambda e: (labels.index(e[0]), labels.index(e[1])))
    counts = np.array([edge_count[e] for e in edges], dtype=np.int64)
    trials = np.array([n_left[e[0]] for e in edges], dtype=np.int64)
    low, high = _wilson(counts, trials, level=confidence_level)
    for e, c, nt, lo, hi in zip(edges, counts, trials, low, high):
        dw = np.asarray(edge_dwell[e])
        jm = np.asarray(edge_jump[e])
        jm = jm[np.isfinite(jm)]
        G.add_edge(
            e[0], e[1],
            count=int(c),
            probability=float(c / nt),
            probability_low=float(lo),
            probability_high=float(hi),
            mean_dwell=float(dw.mean()),
            dwell_std=float(dw.std()),
            mean_t_jump=float(jm.mean()) if jm.size else float("nan"),
        )

    sinks = []
    for comp in nx.attracting_components(G):
        sinks.extend(sorted(comp))
    sinks = sorted(sinks, key=labels.index)
    non_min = tuple(s for s in sinks if not (len(_component_of(G, s)) == 1 and G.nodes[s]["kind"] in MINIMUM_KINDS))
    n_unfinished = 0
    for j, p in enumerate(paths):
        last = np.nonzero(visits.trajectory == j)[0]
        if not p or G.nodes[p[-1]]["kind"] not in MINIMUM_KINDS or not bool(visits.final[last[-1]]):
            n_unfinished += 1
    complete = Counter(p for p in paths if p)
    if complete:
        dom, cnt = max(complete.items(), key=lambda kv: (kv[1], [-_value_of(known, x) for x in kv[0]]))
        frac = cnt / visits.n_trajectories
    else:
        dom, frac = (), 0.0

    edge_ds = xr.Dataset(
        {
            "source": ("edge", _objarr([e[0] for e in edges])),
            "target": ("edge", _objarr([e[1] for e in edges])),
            "count": ("edge", counts),
            "probability": ("edge", np.array([G.edges[e]["probability"] for e in edges], dtype=np.float64)),
            "probability_low": ("edge", np.asarray(low, dtype=np.float64)),
            "probability_high": ("edge", np.asarray(high, dtype=np.float64)),
            "mean_dwell": ("edge", np.array([G.edges[e]["mean_dwell"] for e in edges], dtype=np.float64)),
            "dwell_std": ("edge", np.array([G.edges[e]["dwell_std"] for e in edges], dtype=np.float64)),
            "mean_t_jump": ("edge", np.array([G.edges[e]["mean_t_jump"] for e in edges], dtype=np.float64)),
        },
        coords={"edge": np.arange(len(edges), dtype=np.int64)},
    )
    node_ds = _node_table(G, labels)
    return TransitionGraph(
        graph=G,
        visits=visits,
        edges=edge_ds,
        nodes=node_ds,
        sinks=tuple(sinks),
        n_unfinished=int(n_unfinished),
        non_minimum_sinks=non_min,
        dominant_path=tuple(dom),
        dominant_path_fraction=float(frac),
        confidence_level=float(confidence_level),
    )


_NODE_INT = ("rank", "n_negative", "n_zero", "n_positive", "visits", "n_left", "n_final")
_NODE_FLOAT = ("critical_value", "mean_dwell", "dwell_std")
_NODE_STR = ("inertia", "kind", "learned")
# node attributes whose Dataset name differs (the edge table has its own mean_dwell/dwell_std)
_NODE_DS_NAME = {"mean_dwell": "node_mean_dwell", "dwell_std": "node_dwell_std"}
_EDGE_INT = ("count",)
_EDGE_FLOAT = ("probability", "probability_low", "probability_high", "mean_dwell", "dwell_std", "mean_t_jump")


def _node_table(G: nx.DiGraph, labels: Sequence[str]) -> xr.Dataset:
    data = {}
    for k in _NODE_INT:
        data[k] = ("node", np.array([G.nodes[n][k] for n in labels], dtype=np.int64))
    for k in _NODE_FLOAT:
        data[_NODE_DS_NAME.get(k, k)] = ("node", np.array([G.nodes[n][k] for n in labels], dtype=np.float64))
    for k in _NODE_STR:
        data[k] = ("node", _objarr([G.nodes[n][k] for n in labels]))
    return xr.Dataset(data, coords={"node": np.arange(len(labels), dtype=np.int64), "label": ("node", _objarr(labels))})


def _objarr(items) -> np.ndarray:
    a = np.empty(len(items), dtype=object)
    a[:] = [str(x) for x in items]
    return a


def _value_of(known, lab) -> float:
    n = known.get(lab)
    v = n.critical_value if n is not None else float("nan")
    return v if np.isfinite(v) else -np.inf


def _component_of(G, node):
    for comp in nx.attracting_components(G):
        if node in comp:
            return comp
    return {node}


# ----------------------------------------------------------------------------- theory
def _scalar_chain_time(s: float, w0: float, H: int, q: float = MIDPOINT_Q) -> tuple[float, float]:
    r"""Time for the balanced scalar chain :math:`\dot w = w^H (s - w^{H+1})` to go from
    :math:`w_0` to :math:`u = w^{H+1} = q s`; also its leading small-:math:`w_0` term.

    H = 1: :math:`t = \frac{1}{2s}\log\frac{q (s - u_0)}{(1-q) u_0}`, :math:`u_0 = w_0^2`
    (Saxe et al. 2014, eq. (7) with :math:`\tau = 1`); leading :math:`\log(1/w_0)/s`.

    H >= 2: :math:`t = \frac{w_0^{1-H} - w_q^{1-H}}{(H-1)s} + \int_{w_0}^{w_q}
    \frac{w\,dw}{s(s - w^{H+1})}` (from :math:`\frac{1}{w^H(s-w^{H+1})} = \frac{1}{s w^H} +
    \frac{w}{s (s - w^{H+1})}`); leading :math:`w_0^{1-H}/((H-1)s)`.
    """
    u0 = w0 ** (H + 1)
    if u0 >= q * s:
        return 0.0, 0.0
    if H == 1:
        return math.log(q * (s - u0) / ((1 - q) * u0)) / (2 * s), math.log(1.0 / w0) / s
    wq = (q * s) ** (1.0 / (H + 1))
    rest, _ = _quad.quad(lambda w: w / (s * (s - w ** (H + 1))), w0, wq, epsabs=1e-13, epsrel=1e-12)
    t = (w0 ** (1 - H) - wq ** (1 - H)) / ((H - 1) * s) + rest
    return t, w0 ** (1 - H) / ((H - 1) * s)


def transition_theory(
    problem: Problem, init_scale: float, *, init: Literal["gaussian", "aligned"] = "gaussian"
) -> xr.Dataset:
    r"""Predicted order of visits and jump times for small initializations (whitened data).

    With whitened data the canonical flow of :math:`L = \tfrac12\|\Sigma - W_{H+1}\cdots
    W_1\|_F^2` learns the modes one at a time, in order of decreasing :math:`s_k`: the
    predicted path is :math:`\{\} \to \{0\} \to \{0,1\} \to \dots \to \{0..d_y-1\}`. Step k
    leaves :math:`\{0..k-1\}` for :math:`\{0..k\}`; its *jump time* :math:`t_k` is when the
    loss crosses the midpoint of the two critical values, i.e. when mode k's strength
    :math:`u_k = (\bar W_{H+1}\cdots\bar W_1)_{kk}` reaches :math:`q s_k`,
    :math:`q = 1 - 1/\sqrt2`. The plateau at :math:`\{0..k-1\}` lasts :math:`t_k - t_{k-1}`
    (:math:`t_{-1} = 0`).

    **H = 1, Gaussian init** (i.i.d. :math:`N(0, \varepsilon^2)` entries). Mode k's vectors
    :math:`a_k = W_1 e_k`, :math:`b_k = W_2^T e_k \in \mathbb{R}^{d_1}` obey, while small,
    :math:`\dot a_k = s_k b_k`, :math:`\dot b_k = s_k a_k`, so :math:`u_k = a_k\cdot b_k =
    |c_+|^2 e^{2 s_k t} - |c_-|^2 e^{-2 s_k t}`, :math:`c_\pm = (a_k(0) \pm b_k(0))/2`. Once
    large, the mode follows the balanced Saxe et al. (2014) logistic :math:`\dot u = 2u(s_k -
    u)` (their eq. (7) with :math:`\tau = 1` for this normalization), which matches the
    linear phase with :math:`u_0 = |c_+|^2`; hence

    .. math::

        t_k = \frac{1}{2 s_k}\Bigl[\log\Bigl(\frac{s_k}{u_0} - 1\Bigr) + \log\frac{q}{1-q}\Bigr].

    The components of :math:`c_+` along the hidden directions already used by the k modes
    learned before are damped at rate :math:`s_j - s_k > 0` (linearization at the saddle),
    so the effective :math:`u_0 = \tfrac{\varepsilon^2}{2}\chi^2_{d_1 - k}`, and with
    :math:`E\log\chi^2_\nu = \psi(\nu/2) + \log 2`,
    :math:`\mathrm{Var}\log\chi^2_\nu = \psi'(\nu/2)`:

    .. math::

        E\,t_k \approx \frac{\log s_k - \log\varepsilon^2 - \psi(\tfrac{d_1-k}{2}) + \log\frac{q}{1-q}}{2 s_k},
        \qquad \mathrm{sd}\,t_k \approx \frac{\sqrt{\psi'(\frac{d_1-k}{2})}}{2 s_k}.

    To leading order :math:`t_k \approx \log(1/\varepsilon)/s_k` and the plateaus last
    :math:`\log(1/\varepsilon)(1/s_k - 1/s_{k-1})`.

    **Aligned init, any H** (:math:`W_j = \varepsilon\,E_j`, ones at (i, i) for i < d_y):
    every mode is exactly a balanced scalar chain :math:`\dot w = w^H(s_k - w^{H+1})`,
    :math:`w(0) = \varepsilon`, and :math:`t_k` is its exact hitting time of :math:`u = q
    s_k` (:func:`_scalar_chain_time`); for H >= 2 this is the power law
    :math:`t_k \approx \varepsilon^{-(H-1)}/((H-1) s_k)`.

    **H >= 2, Gaussian init**: the small-weight dynamics is homogeneous of degree H, so
    rescaling :math:`W = \varepsilon V`, :math:`t = \varepsilon^{1-H}\tau` shows the escape
    time scales exactly as :math:`\varepsilon^{-(H-1)}` as :math:`\varepsilon \to 0`; its
    prefactor depends on the random :math:`V(0)` and has no closed form. The scalar-chain
    value with :math:`w(0) = \varepsilon` is recorded as the order of magnitude
    (``exact = False``); the ratio to the observation is then O(1), not 1.

    Parameters
    ----------
    problem : Problem
        Whitened (canonical flow).
    init_scale : float
        :math:`\varepsilon > 0`.
    init : {"gaussian", "aligned"}, default "gaussian"

    Returns
    -------
    xarray.Dataset
        Dimension ``step`` (k = 0..d_y-1): ``theory_source``, ``theory_target`` (learned-set
        labels), ``theory_t_jump``, ``theory_t_jump_std`` (NaN when not predicted),
        ``theory_t_jump_leading``, ``theory_plateau``, ``theory_plateau_leading``; attrs
        ``theory_exact`` (bool), ``theory_model`` (str).

    Raises
    ------
    ValueError
        Unwhitened data, or a bad ``init_scale`` / ``init``.
    """
    if not isinstance(problem, Problem):
        raise TypeError(f"`problem` must be a flowgeom.Problem; got {type(problem).__name__}.")
    if not problem.whitened:
        raise ValueError(
            "`problem` must have whitened data (X X^T = I) for the mode-by-mode theory; the data's "
            "flow carries the metric S_X^2 and the modes do not decouple."
        )
    eps = _check_positive("init_scale", init_scale)
    if init not in ("gaussian", "aligned"):
        raise ValueError(f"`init` must be 'gaussian' or 'aligned' for the theory; got {init!r}.")
    s = np.asarray(problem.singular_values, dtype=np.float64)
    H = problem.depth_H
    d1 = problem.widths[1]
    q = MIDPOINT_Q
    K = len(s)
    tj = np.empty(K)
    tj_sd = np.full(K, np.nan)
    tj_lead = np.empty(K)
    for k in range(K):
        if init == "gaussian" and H == 1:
            nu = d1 - k
            tj[k] = (math.log(s[k]) - math.log(eps**2) - _special.digamma(nu / 2) + math.log(q / (1 - q))) / (2 * s[k])
            tj_sd[k] = math.sqrt(_special.polygamma(1, nu / 2)) / (2 * s[k])
            tj_lead[k] = math.log(1 / eps) / s[k]
        else:
            tj[k], tj_lead[k] = _scalar_chain_time(float(s[k]), eps, H, q)
    prev = np.concatenate([[0.0], tj[:-1]])
    prev_lead = np.concatenate([[0.0], tj_lead[:-1]])
    exact = init == "aligned" or H == 1
    if init == "gaussian" and H == 1:
        model = "Saxe et al. (2014) logistic modes, u0 = eps^2/2 chi^2_{d1-k} (mean of log)"
    elif init == "aligned":
        model = "exact balanced scalar chains dw/dt = w^H (s_k - w^(H+1)), w(0) = eps"
    else:
        model = "order of magnitude: balanced scalar chains with w(0) = eps (Gaussian prefactor not predicted)"
    return xr.Dataset(
        {
            "theory_source": ("step", _objarr([_learned_label(range(k)) for k in range(K)])),
            "theory_target": ("step", _objarr([_learned_label(range(k + 1)) for k in range(K)])),
            "theory_t_jump": ("step", tj),
            "theory_t_jump_std": ("step", tj_sd),
            "theory_t_jump_leading": ("step", tj_lead),
            "theory_plateau": ("step", tj - prev),
            "theory_plateau_leading": ("step", tj_lead - prev_lead),
        },
        coords={"step": np.arange(K, dtype=np.int64)},
        attrs={"theory_exact": bool(exact), "theory_model": model, "init_scale": eps, "init": init},
    )


def _observed_steps(tg: TransitionGraph, theory: xr.Dataset) -> xr.Dataset:
    """Observed jump times and plateau lengths along the theory's path, per step."""
    learned_of = {}
    for lab in tg.graph.nodes:
        le = tg.graph.nodes[lab].get("learned", "")
        learned_of[lab] = le if le else None
    v = tg.visits
    K = theory.sizes["step"]
    src = [str(x) for x in theory["theory_source"].values]
    tgt = [str(x) for x in theory["theory_target"].values]
    jumps: list[list[float]] = [[] for _ in range(K)]
    plateaus: list[list[float]] = [[] for _ in range(K)]
    for j in range(v.n_trajectories):
        idx = np.nonzero(v.trajectory == j)[0]
        tj = np.full(K, np.nan)
        for a in range(len(idx) - 1):
            ls = learned_of.get(str(v.stratum[idx[a]]))
            lt = learned_of.get(str(v.stratum[idx[a + 1]]))
            for k in range(K):
                if ls == src[k] and lt == tgt[k]:
                    tj[k] = v.t_jump[idx[a]]
        for k in range(K):
            if np.isfinite(tj[k]):
                jumps[k].append(tj[k])
                prev = 0.0 if k == 0 else tj[k - 1]
                if np.isfinite(prev):
                    plateaus[k].append(tj[k] - prev)
    mean = np.array([np.mean(x) if x else np.nan for x in jumps])
    sd = np.array([np.std(x) if x else np.nan for x in jumps])
    pl = np.array([np.mean(x) if x else np.nan for x in plateaus])
    n = np.array([len(x) for x in jumps], dtype=np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return xr.Dataset(
            {
                "observed_t_jump": ("step", mean),
                "observed_t_jump_std": ("step", sd),
                "observed_n": ("step", n),
                "t_jump_ratio": ("step", mean / theory["theory_t_jump"].values),
                "observed_plateau": ("step", pl),
                "plateau_ratio": ("step", pl / theory["theory_plateau"].values),
            },
            coords={"step": theory["step"].values},
        )


# ----------------------------------------------------------------------------- dataset
def transitions_dataset(
    tg: TransitionGraph,
    *,
    theory: xr.Dataset | None = None,
    traj: Any = None,
    attrs: Mapping[str, Any] | None = None,
) -> xr.Dataset:
    r"""The ``transitions`` Dataset of DESIGN.md from a :class:`TransitionGraph`.

    Dimensions and variables:

    - ``edge``: ``source``, ``target`` (labels), ``count``, ``probability``,
      ``probability_low``, ``probability_high``, ``mean_dwell``, ``dwell_std``, ``mean_t_jump``;
    - ``visit``: ``trajectory``, ``stratum``, ``t_enter``, ``t_exit``, ``loss_plateau``,
      ``grad_norm_plateau``, ``final``, ``t_jump``;
    - ``node`` (coordinate ``label``): ``rank``, ``critical_value``, ``inertia`` (str),
      ``n_negative``, ``n_zero``, ``n_positive``, ``kind``, ``learned``, ``visits``, ``n_left``,
      ``n_final``, ``node_mean_dwell``, ``node_dwell_std`` -- everything :func:`graph_from_dataset` needs
      to rebuild the graph;
    - ``sample`` and ``time`` (when ``traj`` is given): ``loss`` (sample, time), ``status``,
      ``path`` (the visited labels joined by ``" -> "``);
    - ``step`` (when ``theory`` is given): the theory (:func:`transition_theory`) beside the
      observation, ``observed_t_jump``, ``observed_t_jump_std``, ``observed_n``,
      ``t_jump_ratio``, ``observed_plateau``, ``plateau_ratio``.

    Attrs: ``flowgeom_version``, ``confidence_level``, ``n_trajectories``, the detection
    thresholds, ``dominant_path`` (list of labels), ``dominant_path_fraction``, ``sinks``,
    ``non_minimum_sinks``, ``n_unidentified``, plus ``attrs``.
    """
    if not isinstance(tg, TransitionGraph):
        raise TypeError(f"`tg` must be a TransitionGraph; got {type(tg).__name__}.")
    parts = [tg.edges, tg.visits.to_dataset(), tg.nodes]
    if traj is not None:
        ts, _, loss, _, status = _traj_arrays(traj)
        paths = tg.visits.paths()
        parts.append(
            xr.Dataset(
                {
                    "loss": (("sample", "time"), loss),
                    "status": ("sample", np.asarray(status if status is not None else np.full(loss.shape[0], -1), dtype=np.int64)),
                    "path": ("sample", _objarr([" -> ".join(p) for p in paths])),
                },
                coords={"sample": np.arange(loss.shape[0], dtype=np.int64), "time": ts},
            )
        )
    if theory is not None:
        parts.append(theory.drop_attrs() if hasattr(theory, "drop_attrs") else theory)
        parts.append(_observed_steps(tg, theory))
    ds = xr.merge(parts, compat="no_conflicts", combine_attrs="drop")
    out_attrs: dict[str, Any] = {
        "flowgeom_version": __version__,
        "confidence_level": tg.confidence_level,
        "n_trajectories": int(tg.visits.n_trajectories),
        "dominant_path": list(tg.dominant_path),
        "dominant_path_fraction": tg.dominant_path_fraction,
        "sinks": list(tg.sinks),
        "non_minimum_sinks": list(tg.non_minimum_sinks),
        "n_unfinished": int(tg.n_unfinished),
        "n_unidentified": int(np.sum(tg.visits.stratum == UNIDENTIFIED)),
        "n_rejected": int(tg.visits.n_rejected),
    }
    out_attrs.update({f"detect_{k}": v for k, v in tg.visits.options.items()})
    if theory is not None:
        out_attrs.update({k: v for k, v in theory.attrs.items() if k.startswith("theory_")})
    if attrs:
        out_attrs.update(attrs)
    ds.attrs = out_attrs
    return ds


def graph_from_dataset(ds: xr.Dataset) -> nx.DiGraph:
    """Rebuild :attr:`TransitionGraph.graph` from a ``transitions`` Dataset (node and edge tables)."""
    for name in ("label", "source", "target", "count"):
        if name not in ds:
            raise ValueError(f"`ds` is not a transitions Dataset: it has no `{name}`.")
    G = nx.DiGraph(confidence_level=float(ds.attrs.get("confidence_level", CONFIDENCE_LEVEL)),
                   n_trajectories=int(ds.attrs.get("n_trajectories", 0)))
    for i, lab in enumerate(ds["label"].values):
        attrs: dict[str, Any] = {"label": str(lab)}
        for k in _NODE_INT:
            attrs[k] = int(ds[k].values[i])
        for k in _NODE_FLOAT:
            attrs[k] = float(ds[_NODE_DS_NAME.get(k, k)].values[i])
        for k in _NODE_STR:
            attrs[k] = str(ds[k].values[i])
        G.add_node(str(lab), **{k: attrs[k] for k in _graph_node_order()})
    for e in range(ds.sizes.get("edge", 0)):
        attrs = {k: int(ds[k].values[e]) for k in _EDGE_INT}
        attrs.update({k: float(ds[k].values[e]) for k in _EDGE_FLOAT})
        G.add_edge(str(ds["source"].values[e]), str(ds["target"].values[e]), **attrs)
    return G


def _graph_node_order():
    return ("label", "rank", "critical_value", "inertia", "n_negative", "n_zero", "n_positive", "kind", "learned",
            "visits", "n_left", "n_final", "mean_dwell", "dwell_std")


def to_graphml(graph: TransitionGraph | nx.DiGraph, path: str | os.PathLike) -> Path:
    """Write the transition graph as GraphML (attributes are already GraphML-safe)."""
    G = graph.graph if isinstance(graph, TransitionGraph) else graph
    if not isinstance(G, nx.DiGraph):
        raise TypeError(f"`graph` must be a TransitionGraph or networkx.DiGraph; got {type(graph).__name__}.")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nx.write_graphml(G, path)
    return path


def read_graphml(path: str | os.PathLike) -> nx.DiGraph:
    """Read a transition graph written by :func:`to_graphml` (node ids are stratum labels).

    The inertia comes back as its string; use :func:`parse_inertia` for the tuple.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"`path` {str(path)!r} does not exist.")
    G = nx.read_graphml(path)
    if not isinstance(G, nx.DiGraph):
        raise ValueError(f"`path` {str(path)!r} does not hold a directed graph.")
    # networkx adds empty default-attribute dicts on reading; drop them so that a graph
    # read back equals the graph written.
    for key in ("node_default", "edge_default"):
        if G.graph.get(key) == {}:
            del G.graph[key]
    return G


def save_transitions(ds: xr.Dataset, out_dir: str | os.PathLike, *, graph: nx.DiGraph | None = None) -> tuple[Path, Path]:
    """Write ``out_dir/transitions.nc`` and ``out_dir/transitions.graphml``.

    ``graph`` defaults to :func:`graph_from_dataset` of ``ds``.
    """
    from .io import save_dataset

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    nc = save_dataset(ds, out / "transitions.nc")
    gm = to_graphml(graph if graph is not None else graph_from_dataset(ds), out / "transitions.graphml")
    return nc, gm


# ----------------------------------------------------------------------------- sampling
def _transition_inits(
    problem: Problem, n_samples: int, *, init_scale: float, init: str = "gaussian", seed: int | None = 0,
    coordinates: Literal["auto", "canonical", "original"] = "auto",
) -> np.ndarray:
    r"""Initial parameters, shape ``(n_samples, n)``, in the coordinates of ``problem.network(coordinates)``.

    ``"gaussian"``: i.i.d. :math:`N(0, \varepsilon^2)` entries. ``"aligned"``: every sample
    :math:`W_j = \varepsilon E_j` with ones at (i, i), i < d_y (the balanced scalar chains of
    :func:`transition_theory`; deterministic).
    """
    n_samples = int(n_samples)
    if n_samples < 1:
        raise ValueError(f"`n_samples` must be a positive int; got {n_samples!r}.")
    eps = _check_positive("init_scale", init_scale)
    net = problem.network(coordinates)
    if init == "gaussian":
        rng = np.random.default_rng(seed)
        return eps * rng.standard_normal((n_samples, net.n_params))
    if init == "aligned":
        W = []
        for (dj, dj1) in net.shapes:
            Wj = np.zeros((dj, dj1))
            for i in range(problem.d_y):
                Wj[i, i] = eps
            W.append(Wj)
        theta = net.pack(W)
        if coordinates != "canonical" and not problem.whitened:
            raise ValueError("`init='aligned'` is defined in canonical coordinates; use whitened data.")
        return np.broadcast_to(theta, (n_samples, net.n_params)).copy()
    raise ValueError(f"`init` must be 'gaussian' or 'aligned'; got {init!r}.")


def sample_transitions(
    problem: Problem,
    n_samples: int,
    *,
    init_scale: float = 1e-8,
    init: Literal["gaussian", "aligned"] = "gaussian",
    seed: int | None = 0,
    t1: float | None = None,
    method: str = "dopri5",
    rtol: float = 1e-8,
    atol: float = 1e-12,
    n_save: int = 400,
    grad_tol: float = 1e-10,
    strata: Sequence[Any] | None = None,
    detect_options: Mapping[str, Any] | None = None,
    confidence_level: float = CONFIDENCE_LEVEL,
    theory: bool = True,
    integrate_options: Mapping[str, Any] | None = None,
) -> xr.Dataset:
    r"""Simulate an ensemble from small initializations and return the ``transitions`` Dataset.

    Samples ``n_samples`` initializations (Gaussian or aligned, see ``init``), integrates the
    gradient flow :math:`\dot\theta = -\nabla L(\theta)` of ``problem.network("auto")`` (the
    flow the user runs) with :func:`flowgeom.integrate.integrate` at log-spaced save times,
    detects and identifies the visits against the atlas (:func:`detect_visits`), builds the
    graph (:func:`build_transition_graph`) and, for whitened data, sets the theory beside it
    (:func:`transition_theory`).

    Parameters
    ----------
    problem : Problem
    n_samples : int
    init_scale : float, default 1e-8
        :math:`\varepsilon`, the scale of the initialization. Small enough that trajectories pass
        close to every saddle of the sequence: the closest approach to a saddle improves as a
        positive power of :math:`\varepsilon`, and at 1e-4 the passage near ``{0}`` of the default
        problem s = (3, 2, 1) is a shoulder of the loss curve, not a plateau.
    init : {"gaussian", "aligned"}, default "gaussian"
    seed : int or None, default 0
    t1 : float or None, default None
        End time; default three times (ten times for a Gaussian init with H >= 2, whose
        escape prefactor is random) the latest predicted jump time (scalar-chain estimate
        with :math:`w(0) = \varepsilon`, divided by :math:`\min_i S_{X,i}^2` for unwhitened
        data) plus :math:`20/s_{min}`. Check ``n_unfinished`` in the result.
    method, rtol, atol, grad_tol : see :func:`flowgeom.integrate.integrate`
        Defaults "dopri5", 1e-8, 1e-12, 1e-10.
    n_save : int, default 400
        Number of log-spaced save times.
    strata : sequence of Stratum, optional
        The atlas (default ``flowgeom.critical.enumerate_strata(problem)``).
    detect_options : mapping, optional
        Keyword arguments of :func:`detect_visits` (thresholds).
    confidence_level : float, default 0.95
    theory : bool, default True
        Add the theory (whitened problems only).
    integrate_options : mapping, optional
        Further keyword arguments of :func:`flowgeom.integrate.integrate` (e.g. ``backend``,
        ``max_steps``).

    Returns
    -------
    xarray.Dataset
        See :func:`transitions_dataset`.
    """
    from .integrate import SaveAt, integrate

    if not isinstance(problem, Problem):
        raise TypeError(f"`problem` must be a flowgeom.Problem; got {type(problem).__name__}.")
    eps = _check_positive("init_scale", init_scale)
    net = problem.network("auto")
    theta0 = _transition_inits(problem, n_samples, init_scale=eps, init=init, seed=seed)
    s = np.asarray(problem.singular_values)
    if t1 is None:
        t_pred = max(_scalar_chain_time(float(sk), eps, problem.depth_H)[0] for sk in s)
        slow = 1.0 if problem.whitened else 1.0 / float(np.min(problem.S_X)) ** 2
        factor = 10.0 if (init == "gaussian" and problem.depth_H >= 2) else 3.0
        t1 = (factor * t_pred + 20.0 / float(s.min())) * slow
    t1 = _check_positive("t1", t1)
    saveat = SaveAt(n_log=int(n_save))
    traj = integrate(
        net, theta0, t1, method=method, rtol=rtol, atol=atol, saveat=saveat, grad_tol=grad_tol,
        **dict(integrate_options or {}),
    )
    ident = AtlasIdentifier(problem, strata)
    visits = detect_visits(traj, problem, strata=ident.strata, identify=ident, **dict(detect_options or {}))
    tg = build_transition_graph(visits, ident.nodes, confidence_level=confidence_level)
    th = None
    if theory and problem.whitened:
        th = transition_theory(problem, eps, init=init)
    attrs = dict(problem.attrs())
    attrs.update(
        seed=seed, init=init, init_scale=eps, n_samples=int(n_samples), t1=float(t1), integrator=method,
        loss_offset=float(problem.loss_offset),
        rtol=float(rtol), atol=float(atol), grad_tol=float(grad_tol),
    )
    return transitions_dataset(tg, theory=th, traj=traj, attrs=attrs)
