r"""The directed graph of observed transitions, its tables and its GraphML form.

Consecutive visits along a trajectory make one observed transition; the graph carries counts,
probabilities conditional on leaving with Wilson intervals, dwell times, and the check that
every sink is a minimum (:func:`build_transition_graph`, :class:`TransitionGraph`). GraphML
cannot store tuples or ``None``: a node's inertia is stored both as the string
``"(n_negative,n_zero,n_positive)"`` (``""`` when unknown) and as three int attributes
``n_negative``, ``n_zero``, ``n_positive`` (``-1`` when unknown); every attribute is a Python
``str``, ``int`` or ``float``, so ``networkx.read_graphml(networkx.write_graphml(G))`` gives back
``G`` attribute for attribute (:func:`to_graphml`, :func:`read_graphml`,
:func:`graph_from_dataset`).

References
----------
E. B. Wilson, "Probable inference, the law of succession, and statistical inference",
J. Amer. Statist. Assoc. 22 (1927).
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import networkx as nx
import numpy as np
import xarray as xr

from flowgeom.basins.stats import wilson_interval
from flowgeom.transitions._common import _objarr
from flowgeom.transitions.detect import Visits
from flowgeom.transitions.identify import MINIMUM_KINDS, UNIDENTIFIED, StratumNode

__all__ = [
    "TransitionGraph",
    "build_transition_graph",
    "graph_from_dataset",
    "to_graphml",
    "read_graphml",
]


# Default confidence level of the Wilson intervals of edge probabilities.
CONFIDENCE_LEVEL = 0.95


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


def _value_of(known, lab) -> float:
    n = known.get(lab)
    v = n.critical_value if n is not None else float("nan")
    return v if np.isfinite(v) else -np.inf


def _component_of(G, node):
    for comp in nx.attracting_components(G):
        if node in comp:
            return comp
    return {node}


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
