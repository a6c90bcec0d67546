r"""The ``transitions`` Dataset (schema: flowgeom.schema) and its files.

:func:`transitions_dataset` gathers the edge, visit and node tables of a
:class:`~flowgeom.transitions.TransitionGraph`, the loss curves and, when given, the theory
beside the observed jump times; :func:`save_transitions` writes ``transitions.nc`` and
``transitions.graphml``; :func:`chain_dataset` and :func:`chain_from_dataset` put the jump chain
(:mod:`~flowgeom.transitions.chain`) in it and take it out.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import networkx as nx
import numpy as np
import xarray as xr

from flowgeom._validate import InputError
from flowgeom._version import __version__
from flowgeom.transitions._common import _objarr
from flowgeom.transitions.chain import JumpChain, jump_chain
from flowgeom.transitions.detect import _traj_arrays
from flowgeom.transitions.graph import TransitionGraph, graph_from_dataset, to_graphml
from flowgeom.transitions.identify import UNIDENTIFIED

__all__ = [
    "transitions_dataset",
    "save_transitions",
    "chain_dataset",
    "chain_from_dataset",
]


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


_TRIPLES = {
    # JumpChain field -> Dataset variable (with _low/_high)
    "absorption": "absorption_probability",
    "expected_jumps": "expected_jumps",
    "expected_time": "expected_hitting_time",
    "start_absorption": "absorption_from_start",
    "start_jumps": "expected_jumps_from_start",
    "start_time": "expected_hitting_time_from_start",
}
_DIMS = {
    "absorption": ("chain_state", "absorbing"),
    "expected_jumps": ("chain_state",),
    "expected_time": ("chain_state",),
    "start_absorption": ("absorbing",),
    "start_jumps": (),
    "start_time": (),
}


def chain_dataset(chain: JumpChain) -> xr.Dataset:
    r"""The jump chain as Dataset variables (dimensions ``chain_state``, ``absorbing``; schema: flowgeom.schema).

    Coordinates ``chain_state`` and ``chain_target`` (state labels), ``absorbing`` (absorbing
    labels), ``dwell_bin``, ``dwell_edge``; variables ``chain_absorbing``, ``chain_count``
    (chain_state, chain_target), ``chain_probability`` (the estimated :math:`P`),
    ``initial_count``, ``initial_probability``, ``absorption_probability`` (chain_state,
    absorbing), ``expected_jumps``, ``expected_hitting_time`` (chain_state),
    ``absorption_from_start`` (absorbing), ``expected_jumps_from_start``,
    ``expected_hitting_time_from_start`` (scalars), each with ``_low``/``_high``;
    ``chain_mean_dwell``, ``chain_n_dwell``, ``dwell_hist`` (chain_state, dwell_bin),
    ``dwell_bin_edges`` (chain_state, dwell_edge). Attrs ``chain_level``, ``chain_prior``,
    ``chain_support``, ``chain_n_posterior``, ``chain_seed``.
    """
    if not isinstance(chain, JumpChain):
        raise TypeError(f"`chain` must be a JumpChain (from jump_chain); got {type(chain).__name__}.")
    data: dict[str, Any] = {
        "chain_absorbing": ("chain_state", np.asarray(chain.absorbing, dtype=bool)),
        "chain_count": (("chain_state", "chain_target"), np.asarray(chain.counts, dtype=np.int64)),
        "chain_probability": (("chain_state", "chain_target"), np.asarray(chain.P, dtype=np.float64)),
        "initial_count": ("chain_state", np.asarray(chain.initial_counts, dtype=np.int64)),
        "initial_probability": ("chain_state", np.asarray(chain.initial, dtype=np.float64)),
        "chain_mean_dwell": ("chain_state", np.asarray(chain.mean_dwell, dtype=np.float64)),
        "chain_n_dwell": ("chain_state", np.asarray(chain.n_dwell, dtype=np.int64)),
        "dwell_hist": (("chain_state", "dwell_bin"), np.asarray(chain.dwell_hist, dtype=np.int64)),
        "dwell_bin_edges": (("chain_state", "dwell_edge"), np.asarray(chain.dwell_edges, dtype=np.float64)),
    }
    for field, name in _TRIPLES.items():
        for suffix in ("", "_low", "_high"):
            data[name + suffix] = (_DIMS[field], np.asarray(getattr(chain, field + suffix), dtype=np.float64))
    labels = _objarr(list(chain.states))
    ds = xr.Dataset(
        data,
        coords={
            "chain_state": labels,
            "chain_target": labels.copy(),
            "absorbing": _objarr(list(chain.absorbing_states)),
            "dwell_bin": np.arange(chain.dwell_hist.shape[1], dtype=np.int64),
            "dwell_edge": np.arange(chain.dwell_edges.shape[1], dtype=np.int64),
        },
    )
    ds.attrs = {"chain_level": float(chain.level), "chain_prior": float(chain.prior), "chain_support": chain.support,
                "chain_n_posterior": int(chain.n_posterior), "chain_seed": int(chain.seed)}
    return ds


def chain_from_dataset(ds: xr.Dataset) -> JumpChain:
    """Read a :class:`JumpChain` back from a Dataset holding :func:`chain_dataset`'s variables."""
    if not isinstance(ds, xr.Dataset):
        raise TypeError(f"`ds` must be an xarray.Dataset; got {type(ds).__name__}.")
    if "chain_state" not in ds.coords or "chain_count" not in ds:
        raise InputError("`ds` holds no jump chain (no `chain_state`/`chain_count`): write it with "
                         "transitions_dataset(..., chain=True).")
    kw: dict[str, Any] = {
        "states": tuple(str(s) for s in ds["chain_state"].values),
        "absorbing": np.asarray(ds["chain_absorbing"].values, dtype=bool),
        "counts": np.asarray(ds["chain_count"].values, dtype=np.int64),
        "P": np.asarray(ds["chain_probability"].values, dtype=np.float64),
        "initial_counts": np.asarray(ds["initial_count"].values, dtype=np.int64),
        "initial": np.asarray(ds["initial_probability"].values, dtype=np.float64),
        "mean_dwell": np.asarray(ds["chain_mean_dwell"].values, dtype=np.float64),
        "n_dwell": np.asarray(ds["chain_n_dwell"].values, dtype=np.int64),
        "dwell_hist": np.asarray(ds["dwell_hist"].values, dtype=np.int64),
        "dwell_edges": np.asarray(ds["dwell_bin_edges"].values, dtype=np.float64),
        "level": float(ds.attrs["chain_level"]), "prior": float(ds.attrs["chain_prior"]),
        "support": str(ds.attrs["chain_support"]), "n_posterior": int(ds.attrs["chain_n_posterior"]),
        "seed": int(ds.attrs["chain_seed"]),
    }
    for field, name in _TRIPLES.items():
        for suffix in ("", "_low", "_high"):
            v = np.asarray(ds[name + suffix].values, dtype=np.float64)
            kw[field + suffix] = float(v) if v.ndim == 0 else v
    return JumpChain(**kw)



def _node_of_graph(G: nx.DiGraph, label: str):
    """A StratumNode from a graph node's attributes (label, kind, critical value)."""
    from flowgeom.transitions.identify import StratumNode

    a = G.nodes[label]
    return StratumNode(str(label), rank=int(a.get("rank", -1)), critical_value=float(a.get("critical_value", np.nan)),
                       kind=str(a.get("kind", "unknown")))


def transitions_dataset(
    tg: TransitionGraph,
    *,
    theory: xr.Dataset | None = None,
    traj: Any = None,
    attrs: Mapping[str, Any] | None = None,
    chain: bool | JumpChain = True,
) -> xr.Dataset:
    r"""The ``transitions`` Dataset (schema: flowgeom.schema) from a :class:`TransitionGraph`.

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
      ``t_jump_ratio``, ``observed_plateau``, ``plateau_ratio``;
    - ``chain_state``, ``absorbing`` (when ``chain`` is not False and there are visits): the jump
      chain of :func:`~flowgeom.transitions.chain.jump_chain` (absorption probabilities, expected
      jumps and hitting times with intervals, dwell histograms), see
      :func:`~flowgeom.transitions.chain.chain_dataset`; read back with
      :func:`~flowgeom.transitions.chain.chain_from_dataset`.

    ``chain`` : bool or JumpChain, default True. True computes :func:`jump_chain` of ``tg.visits``
    with its defaults (nodes: the graph's node table, so measured kinds count), a JumpChain is
    stored as given, False stores none.

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
    chain_attrs: dict[str, Any] = {}
    if chain is True and len(tg.visits) > 0:
        chain = jump_chain(tg.visits, [_node_of_graph(tg.graph, n) for n in tg.graph.nodes],
                           level=tg.confidence_level)
    if isinstance(chain, JumpChain):
        cds = chain_dataset(chain)
        chain_attrs = dict(cds.attrs)
        parts.append(cds.drop_attrs() if hasattr(cds, "drop_attrs") else cds)
    elif chain not in (True, False):
        raise TypeError(f"`chain` must be a bool or a JumpChain; got {type(chain).__name__}.")
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
    out_attrs.update(chain_attrs)
    if theory is not None:
        out_attrs.update({k: v for k, v in theory.attrs.items() if k.startswith("theory_")})
    if attrs:
        out_attrs.update(attrs)
    ds.attrs = out_attrs
    return ds


def save_transitions(ds: xr.Dataset, out_dir: str | os.PathLike, *, graph: nx.DiGraph | None = None) -> tuple[Path, Path]:
    """Write ``out_dir/transitions.nc`` and ``out_dir/transitions.graphml``.

    ``graph`` defaults to :func:`graph_from_dataset` of ``ds``.
    """
    from flowgeom.io import save_dataset

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    nc = save_dataset(ds, out / "transitions.nc")
    gm = to_graphml(graph if graph is not None else graph_from_dataset(ds), out / "transitions.graphml")
    return nc, gm
