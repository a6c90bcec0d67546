r"""Identification of plateaus: which stratum (critical set) a plateau point is near.

A node of the transition graph is a :class:`StratumNode` (label, rank, critical value, inertia,
kind); an :class:`Identifier` maps a plateau point :math:`\theta` to the node of the stratum it
is near, or to None for a slow passage that is near no critical point.
:class:`AtlasIdentifier` locates it with an atlas (:mod:`flowgeom.critical.atlas`), the same
for every model: the closed form of a deep linear network or a searched atlas. GraphML encodes
an inertia as a string (:func:`format_inertia`, :func:`parse_inertia`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, Sequence, runtime_checkable

import numpy as np

from flowgeom._types import FloatArray

__all__ = [
    "StratumNode",
    "Identifier",
    "AtlasIdentifier",
    "node_of",
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
        Stratum label, e.g. ``"{0,1}"`` (flowgeom.schema), or ``"c3"`` for a critical point found by
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
    """The label of a learned set: ``() -> "{}"``, ``(0, 2) -> "{0,2}"``."""
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
    r"""Identify plateau points with the critical sets of an atlas (any model).

    A plateau point :math:`\theta` with loss :math:`L` is located with
    ``atlas.locate(theta, L, plateau=True)`` (:mod:`flowgeom.critical.atlas`): the closed form
    of a deep linear network matches the canonical end-to-end product to a stratum's
    :math:`\Sigma_S` and the loss to its value; a searched atlas refines the point to a critical
    point nearby and matches that. A plateau no known set explains is passed to
    ``atlas.grow(theta, plateau=True)`` when ``grow`` is True (a searched atlas adds the critical
    point it refines to, if that point is near), else it is rejected as a slow passage.

    Parameters
    ----------
    atlas : Atlas, flowgeom.Problem or Model
        Resolved with :func:`flowgeom._resolve.as_atlas` (closed form for a Problem, search for a Model).
    grow : bool, default True
        Let plateaus at unknown critical points grow the atlas.
    """

    def __init__(self, atlas, *, grow: bool = True):
        from flowgeom._resolve import as_atlas

        self.atlas = as_atlas(atlas)
        self.grow = bool(grow)
        self.loss_offset = float(self.atlas.loss_offset)

    @property
    def nodes(self) -> Sequence[StratumNode]:
        return tuple(node_of(cs) for cs in self.atlas.sets())

    def __call__(self, theta: FloatArray | None, loss: float) -> StratumNode | None:
        if theta is None:
            # no states saved: identify by the critical value alone, only when unambiguous
            vals = np.array([cs.critical_value for cs in self.atlas.sets()])
            level = float(loss) - self.loss_offset
            gaps = np.diff(np.unique(vals))
            half = 0.5 * float(gaps.min()) if gaps.size else 0.5 * max(1.0, abs(level))
            hits = np.flatnonzero(np.abs(vals - level) <= half)
            return node_of(self.atlas.sets()[int(hits[0])]) if hits.size == 1 else None
        theta = np.asarray(theta, dtype=np.float64)[None, :]
        key = int(self.atlas.locate(theta, np.array([float(loss)]), plateau=True)[0])
        if key < 0 and self.grow:
            key = int(self.atlas.grow(theta, plateau=True)[0])
        return None if key < 0 else node_of(self.atlas.get(key))


def node_of(cs) -> StratumNode:
    """The graph node of a :class:`flowgeom.critical.atlas.CriticalSet`."""
    learned = cs.info.get("learned")
    kind = cs.kind if cs.measured else str(cs.info.get("kind_closed_form", "unknown"))
    inertia = cs.inertia
    if inertia is not None and min(inertia) < 0:
        inertia = None
    return StratumNode(
        label=cs.label,
        rank=cs.rank,
        critical_value=cs.critical_value,
        inertia=inertia,
        kind=kind if kind != "undecided" else "unknown",
        learned=None if not learned else tuple(int(i) for i in learned.strip("{}").split(",") if i),
    )
