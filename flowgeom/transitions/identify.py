r"""Identification of plateaus: which stratum (critical set) a plateau point is near.

A node of the transition graph is a :class:`StratumNode` (label, rank, critical value, inertia,
kind); an :class:`Identifier` maps a plateau point :math:`\theta` to the node of the stratum it
is near, or to None for a slow passage that is near no critical point.
:class:`AtlasIdentifier` matches a deep linear network's end-to-end product against the
closed-form atlas of :mod:`flowgeom.critical`; :class:`RefineIdentifier` works for any model
by refining the point to a critical point and deduplicating up to symmetries. GraphML encodes
an inertia as a string (:func:`format_inertia`, :func:`parse_inertia`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Literal, Protocol, Sequence, runtime_checkable

import numpy as np

from flowgeom._types import FloatArray
from flowgeom.models.base import Model
from flowgeom.models.deep_linear import DeepLinearNetwork
from flowgeom.problem import Problem
from flowgeom.transitions._common import _check_positive

__all__ = [
    "StratumNode",
    "Identifier",
    "AtlasIdentifier",
    "RefineIdentifier",
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
            from flowgeom.linear.strata import enumerate_strata

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
        from flowgeom.critical.linearization import hessian_inertia

        inert = hessian_inertia(net, theta)
        return inert.triple if min(inert.triple) >= 0 else None

    def __call__(self, theta: FloatArray | None, loss: float) -> StratumNode | None:
        if theta is None:
            # no states saved: identify by the critical value alone, only when unambiguous
            hits = [n for n in self._nodes if abs(float(loss) - n.critical_value) <= self.loss_atol]
            return hits[0] if len(hits) == 1 else None
        from flowgeom.linear.strata import classify_point

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
        from flowgeom.critical.linearization import hessian_inertia

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
    from flowgeom.critical.search import refine_critical

    res = refine_critical(model, theta, max_iter=max_iter)
    return np.asarray(res.theta) if bool(np.all(res.converged)) else None
