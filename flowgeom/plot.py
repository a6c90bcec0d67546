r"""Figures from flowgeom Datasets (the only module that imports matplotlib).

Every function takes a Dataset (or a result / graph) and an optional ``ax``, draws on it and
returns the Axes; none calls ``show`` or ``savefig`` except :func:`plot_directory`, which the
``flowgeom plot DIR`` command uses to write one PNG per figure. matplotlib is imported inside
the functions, so ``import flowgeom`` (and ``import flowgeom.plot``) does not load it; figures
are built with :class:`matplotlib.figure.Figure` (Agg canvas), never through ``pyplot``'s
global state.

Functions
---------
plot_transition_graph
    The saddle-to-saddle graph: strata placed at (rank, critical value), node area by number of
    visits, edge width by count.
plot_loss_curves
    Loss against time (log axis) for the sampled trajectories, with the critical values as
    horizontal lines.
plot_jump_times
    Observed jump times beside the theory (:func:`flowgeom.transitions.transition_theory`).
plot_strata
    Critical values of the strata by rank, coloured by kind, annotated with the inertia.
plot_basins
    Basin fractions with their confidence intervals.
plot_directory
    All of the above for the Datasets found in an output directory.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import xarray as xr

__all__ = [
    "plot_transition_graph",
    "plot_loss_curves",
    "plot_jump_times",
    "plot_strata",
    "plot_basins",
    "plot_directory",
]

# Node areas (points^2) of the graph drawing: NODE_AREA_MIN for one visit, growing with the
# square root of the visits up to NODE_AREA_MAX for the most visited node.
NODE_AREA_MIN = 60.0
NODE_AREA_MAX = 900.0
EDGE_WIDTH_MAX = 6.0

_KIND_COLORS = {
    "global_min": "#2ca02c",
    "minimum": "#2ca02c",
    "local_min": "#98df8a",
    "strict_saddle": "#d62728",
    "non_strict_saddle": "#ff7f0e",
    "unknown": "#7f7f7f",
    "unidentified": "#000000",
}


def _new_axes(ax, figsize=(4.0, 3.0)):
    if ax is not None:
        return ax
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, constrained_layout=True)
    return fig.add_subplot(1, 1, 1)


def _as_graph(obj):
    import networkx as nx

    from flowgeom.transitions import TransitionGraph, graph_from_dataset

    if isinstance(obj, TransitionGraph):
        return obj.graph
    if isinstance(obj, nx.DiGraph):
        return obj
    if isinstance(obj, xr.Dataset):
        return graph_from_dataset(obj)
    raise TypeError(
        f"`graph` must be a TransitionGraph, a networkx.DiGraph or a transitions Dataset; got {type(obj).__name__}."
    )


def _graph_positions(G) -> dict:
    """x = rank (nodes of one rank spread around it), y = critical value."""
    by_rank: dict[int, list] = {}
    for n, d in G.nodes(data=True):
        by_rank.setdefault(int(d.get("rank", -1)), []).append(n)
    pos = {}
    for r, nodes in by_rank.items():
        nodes = sorted(nodes, key=lambda n: (float(G.nodes[n].get("critical_value", np.nan)), str(n)))
        k = len(nodes)
        for i, n in enumerate(nodes):
            x = r + (0.0 if k == 1 else 0.6 * (i / (k - 1) - 0.5))
            y = float(G.nodes[n].get("critical_value", np.nan))
            pos[n] = (x, y if np.isfinite(y) else 0.0)
    return pos


def plot_transition_graph(graph: Any, ax=None, *, labels: bool = True, probabilities: bool = True):
    r"""Draw the transition graph: node area by visits, edge width by count.

    Nodes sit at x = rank of the stratum (spread when several share a rank) and y = its
    critical value, so every edge points downhill; node colour gives the kind (green minima,
    red strict saddles, orange non-strict saddles, grey unknown).

    Parameters
    ----------
    graph : TransitionGraph, networkx.DiGraph or xarray.Dataset
        A result of :func:`flowgeom.transitions.build_transition_graph`, its ``graph``, a graph
        read by :func:`flowgeom.transitions.read_graphml`, or a ``transitions`` Dataset.
    ax : matplotlib Axes, optional
        Drawn on; default a new Figure's Axes.
    labels : bool, default True
        Write the stratum labels on the nodes.
    probabilities : bool, default True
        Write each edge's transition probability at its middle.

    Returns
    -------
    matplotlib.axes.Axes
    """
    import networkx as nx

    G = _as_graph(graph)
    ax = _new_axes(ax)
    if G.number_of_nodes() == 0:
        ax.text(0.5, 0.5, "no visits", ha="center", va="center", transform=ax.transAxes)
        return ax
    pos = _graph_positions(G)
    visits = np.array([float(G.nodes[n].get("visits", 1)) for n in G], dtype=float)
    vmax = max(float(visits.max()), 1.0)
    sizes = NODE_AREA_MIN + (NODE_AREA_MAX - NODE_AREA_MIN) * np.sqrt(np.maximum(visits, 0) / vmax)
    colors = [_KIND_COLORS.get(str(G.nodes[n].get("kind", "unknown")), "#7f7f7f") for n in G]
    nx.draw_networkx_nodes(G, pos, ax=ax, node_size=sizes, node_color=colors, alpha=0.85, linewidths=0.5,
                           edgecolors="k")
    if G.number_of_edges():
        counts = np.array([float(d.get("count", 1)) for _, _, d in G.edges(data=True)])
        widths = 0.5 + (EDGE_WIDTH_MAX - 0.5) * counts / max(float(counts.max()), 1.0)
        nx.draw_networkx_edges(G, pos, ax=ax, width=widths, arrows=True, arrowstyle="-|>", arrowsize=10,
                               node_size=sizes, edge_color="0.3", connectionstyle="arc3,rad=0.08")
        if probabilities:
            elabels = {(u, v): f"{d.get('probability', np.nan):.2f}" for u, v, d in G.edges(data=True)}
            nx.draw_networkx_edge_labels(G, pos, edge_labels=elabels, ax=ax, font_size=6, rotate=False,
                                         bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.7})
    if labels:
        nx.draw_networkx_labels(G, pos, ax=ax, font_size=7)
    ranks = sorted({int(G.nodes[n].get("rank", -1)) for n in G})
    ax.set_xticks(ranks)
    ax.set_xlim(min(ranks) - 0.7, max(ranks) + 0.7)
    ax.set_xlabel("rank r of the stratum")
    ax.set_ylabel("critical value L")
    ax.tick_params(left=True, bottom=True, labelleft=True, labelbottom=True)
    n_traj = G.graph.get("n_trajectories")
    ax.set_title("saddle-to-saddle transitions" + (f" ({n_traj} trajectories)" if n_traj else ""))
    return ax


def plot_loss_curves(ds: xr.Dataset, ax=None, *, max_curves: int = 50, critical_values: bool = True):
    r"""Loss against time for the sampled trajectories, critical values as horizontal lines.

    Parameters
    ----------
    ds : xarray.Dataset
        A ``transitions`` Dataset with ``loss`` (sample, time) (written by
        :func:`flowgeom.transitions.sample_transitions`) and the node table (``label``,
        ``critical_value``).
    ax : matplotlib Axes, optional
    max_curves : int, default 50
        At most this many trajectories are drawn (the first ones).
    critical_values : bool, default True
        Draw the critical values of the visited strata as dashed horizontal lines, labelled.

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    ValueError
        ``ds`` has no ``loss`` curves.
    """
    if not isinstance(ds, xr.Dataset) or "loss" not in ds or "time" not in ds.coords:
        raise ValueError(
            "`ds` must be a transitions Dataset with `loss` (sample, time) curves, as written by "
            "flowgeom.transitions.sample_transitions."
        )
    if int(max_curves) < 1:
        raise ValueError(f"`max_curves` must be a positive int; got {max_curves!r}.")
    ax = _new_axes(ax)
    t = np.asarray(ds["time"].values, dtype=float)
    loss = np.asarray(ds["loss"].values, dtype=float)
    keep = t > 0  # log axis
    for row in loss[: int(max_curves)]:
        ax.plot(t[keep], row[keep], color="C0", alpha=0.35, lw=0.8)
    # critical values are canonical; the original-coordinate loss adds the unfittable constant
    offset = float(ds.attrs.get("loss_offset", 0.0) or 0.0)
    if critical_values and "critical_value" in ds:
        for lab, cv in zip(ds["label"].values, ds["critical_value"].values):
            if np.isfinite(cv):
                ax.axhline(cv + offset, color="0.4", ls="--", lw=0.7)
                ax.annotate(str(lab), (1.0, cv + offset), xycoords=("axes fraction", "data"), fontsize=6,
                            ha="left", va="center", color="0.3", annotation_clip=False)
    ax.set_xscale("log")
    ax.set_xlabel("time t")
    ax.set_ylabel("loss L(t)")
    ax.set_title("loss curves and critical values")
    return ax


def plot_jump_times(ds: xr.Dataset, ax=None):
    r"""Observed jump times (mean and standard deviation) beside the predicted ones, per step.

    Parameters
    ----------
    ds : xarray.Dataset
        A ``transitions`` Dataset with the ``step`` variables of
        :func:`flowgeom.transitions.transition_theory` and the observations.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    ValueError
        ``ds`` has no theory.
    """
    need = ("theory_t_jump", "observed_t_jump", "theory_source", "theory_target")
    if not isinstance(ds, xr.Dataset) or any(k not in ds for k in need):
        raise ValueError("`ds` must be a transitions Dataset with theory (sample_transitions(..., theory=True)).")
    ax = _new_axes(ax)
    k = np.asarray(ds["step"].values)
    th = np.asarray(ds["theory_t_jump"].values, float)
    obs = np.asarray(ds["observed_t_jump"].values, float)
    sd = np.asarray(ds["observed_t_jump_std"].values, float) if "observed_t_jump_std" in ds else None
    ax.plot(k, th, "s", mfc="none", color="C1", label="theory")
    if "theory_t_jump_std" in ds and np.any(np.isfinite(ds["theory_t_jump_std"].values)):
        ax.errorbar(k, th, yerr=ds["theory_t_jump_std"].values, fmt="none", ecolor="C1", capsize=2, lw=0.8)
    ax.errorbar(k + 0.08, obs, yerr=sd, fmt="o", color="C0", capsize=2, label="observed (mean, sd)")
    ax.set_xticks(k)
    ax.set_xticklabels([f"{a}->{b}" for a, b in zip(ds["theory_source"].values, ds["theory_target"].values)],
                       fontsize=6)
    ax.set_ylabel("jump time t_k")
    ax.set_title(str(ds.attrs.get("theory_model", "theory")), fontsize=6)
    ax.legend()
    return ax


def _require(ds, names, kind):
    """Raise a ValueError naming the first variable of a ``kind`` Dataset that ``ds`` lacks."""
    for k in names:
        if k not in ds:
            raise ValueError(f"`ds` must be a {kind} Dataset with `{k}`; it has {sorted(ds.variables)}.")


def plot_strata(ds: xr.Dataset, ax=None):
    r"""Critical values of the strata against rank, coloured by kind, annotated with inertia.

    Parameters
    ----------
    ds : xarray.Dataset
        A ``strata`` Dataset (``label``, ``rank``, ``critical_value``, optionally ``kind``,
        ``n_negative``, ``n_zero``, ``n_positive``).
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    _require(ds, ("label", "rank", "critical_value"), "strata")
    ax = _new_axes(ax)
    labels = [str(x) for x in ds["label"].values]
    ranks = np.asarray(ds["rank"].values, float)
    cv = np.asarray(ds["critical_value"].values, float)
    kinds = [str(x) for x in ds["kind"].values] if "kind" in ds else ["unknown"] * len(labels)
    colors = [_KIND_COLORS.get(k, "#7f7f7f") for k in kinds]
    ax.scatter(ranks, cv, c=colors, s=30, edgecolors="k", linewidths=0.4, zorder=3)
    has_inertia = all(k in ds for k in ("n_negative", "n_zero", "n_positive"))
    for i, lab in enumerate(labels):
        text = lab
        if has_inertia:
            text += f" ({int(ds['n_negative'].values[i])},{int(ds['n_zero'].values[i])},{int(ds['n_positive'].values[i])})"
        ax.annotate(text, (ranks[i], cv[i]), textcoords="offset points", xytext=(4, 2), fontsize=6)
    ax.set_xticks(sorted(set(ranks.astype(int).tolist())))
    ax.set_xlabel("rank r")
    ax.set_ylabel("critical value L")
    ax.set_title("strata" + (" (inertia n-, n0, n+)" if has_inertia else ""))
    return ax


def plot_basins(ds: xr.Dataset, ax=None):
    r"""Basin fractions per stratum with their confidence intervals.

    Parameters
    ----------
    ds : xarray.Dataset
        A ``basins`` Dataset (``fraction``, ``fraction_low``, ``fraction_high`` per stratum,
        coordinate ``label``).
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    _require(ds, ("fraction", "fraction_low", "fraction_high"), "basins")
    ax = _new_axes(ax)
    f = np.asarray(ds["fraction"].values, float)
    lo = np.asarray(ds["fraction_low"].values, float)
    hi = np.asarray(ds["fraction_high"].values, float)
    dim = ds["fraction"].dims[0]
    labels = [str(x) for x in ds["label"].values] if "label" in ds else [str(x) for x in ds[dim].values]
    x = np.arange(len(f))
    ax.bar(x, f, color="C0", alpha=0.8)
    ax.errorbar(x, f, yerr=[np.clip(f - lo, 0, None), np.clip(hi - f, 0, None)], fmt="none", ecolor="k",
                capsize=2, lw=0.8)
    ax.set_xticks(x)
    ax.set_xticklabels(labels, rotation=45, ha="right", fontsize=6)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("fraction of initializations")
    level = ds.attrs.get("ci_level", ds.attrs.get("confidence_level"))
    method = ds.attrs.get("ci_method")
    ci = "" if level is None else f" ({float(level):.0%} {method + ' ' if method else ''}CI)"
    n = ds.sizes.get("sample")
    ax.set_title("basins" + ci + (f", {n} samples" if n else ""))
    return ax


def plot_directory(datasets: Mapping[str, xr.Dataset], out_dir: str | os.PathLike) -> list[Path]:
    r"""Write one PNG per figure for the Datasets of an output directory.

    Parameters
    ----------
    datasets : mapping
        Keys ``"strata"``, ``"basins"``, ``"transitions"`` (any subset) to Datasets.
    out_dir : path
        Figures go to ``out_dir/figures/<name>.png``.

    Returns
    -------
    list of pathlib.Path
        The files written.
    """
    from matplotlib.figure import Figure

    out = Path(out_dir) / "figures"
    out.mkdir(parents=True, exist_ok=True)
    jobs = []
    if "strata" in datasets:
        jobs.append(("strata", plot_strata, datasets["strata"]))
    if "basins" in datasets:
        jobs.append(("basins", plot_basins, datasets["basins"]))
    if "transitions" in datasets:
        ds = datasets["transitions"]
        jobs.append(("transitions_graph", plot_transition_graph, ds))
        if "loss" in ds:
            jobs.append(("transitions_loss", plot_loss_curves, ds))
        if "theory_t_jump" in ds:
            jobs.append(("transitions_theory", plot_jump_times, ds))
    written = []
    for name, fn, ds in jobs:
        fig = Figure(figsize=(4.5, 3.4), constrained_layout=True)
        fn(ds, ax=fig.add_subplot(1, 1, 1))
        path = out / f"{name}.png"
        fig.savefig(path, dpi=130)
        written.append(path)
    return written
