r"""A tanh network beside the deep linear network on the same data: Hessian at the origin, critical values, saddle graphs.

Paper: beyond the paper (its closing question: how does the picture extend to nonlinear networks?).
No figure in the paper.

Caption. Widths (5, 4, 3), whitened canonical data :math:`X = I_5`, :math:`Y = \Sigma = [\mathrm{diag}(3,2,1) \mid 0]`
(``flowgeom.nonlinear_atlas.mlp_for_problem``), no biases. (a) Hessian spectrum at the origin of the
linear network and of the tanh network: since :math:`\tanh z = z + O(z^3)` the two Hessians coincide
there, and so do their inertias (the maximal eigenvalue difference is printed). (b) Loss curves of the
same Gaussian initializations (scale :math:`10^{-3}`, identical draws) for both networks; dotted: the
linear network's critical values :math:`\tfrac12\sum_{i\notin S}s_i^2`, dashed: the critical values of the
tanh classes found by the multi-start Newton search. (c), (d) Saddle-to-saddle transition graphs
(node height = critical value, edge label = transition probability) of the linear network (strata
labelled by the learned set S) and of the tanh network (critical classes c0, c1, ... by decreasing
value, identified by Newton refinement of the plateau points and matching up to hidden-unit
permutations and sign flips).
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the `studies` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import networkx as nx  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

from flowgeom import Problem  # noqa: E402
from flowgeom.linear.strata import enumerate_strata  # noqa: E402
from flowgeom.critical.linearization import hessian_inertia  # noqa: E402
from flowgeom.critical import SearchedAtlas, strata_dataset  # noqa: E402
from flowgeom.models import mlp_for_problem  # noqa: E402
from flowgeom.plot import plot_transition_graph  # noqa: E402
from flowgeom.transitions import sample_transitions  # noqa: E402

from studies import common  # noqa: E402

NAME = "fig08_tanh_vs_linear"
SEED = 8
WIDTHS = (5, 4, 3)
S = (3.0, 2.0, 1.0)
CONFIG = dict(seed=SEED, widths=list(WIDTHS), s=list(S), n_trajectories=40, n_starts=48, init_scale=1e-3,
              t1=100.0, n_save=300, measure_dimension=True, max_iter=200)
QUICK_CONFIG = dict(seed=SEED, widths=list(WIDTHS), s=list(S), n_trajectories=3, n_starts=4, init_scale=1e-3,
                    t1=40.0, n_save=80, measure_dimension=False, max_iter=40)


def _tables(prefix: str, ds: xr.Dataset) -> dict:
    """Edge and node tables of a transitions Dataset, renamed with ``prefix`` (own dimensions)."""
    out = {}
    for k in ("source", "target", "count", "probability"):
        out[f"{prefix}_edge_{k}"] = (f"{prefix}_edge", ds[k].values)
    for k in ("rank", "critical_value", "kind", "visits", "n_negative", "n_zero", "n_positive"):
        out[f"{prefix}_node_{k}"] = (f"{prefix}_node", ds[k].values)
    out[f"{prefix}_node_label"] = (f"{prefix}_node", ds["label"].values)
    out[f"{prefix}_loss"] = (("sample", "time"), ds["loss"].values)
    out[f"{prefix}_path"] = ("sample", ds["path"].values)
    return out


def compute(*, quick: bool = False) -> xr.Dataset:
    """Origin Hessians, tanh critical classes, and both transition ensembles from identical initializations."""
    cfg = QUICK_CONFIG if quick else CONFIG
    problem = Problem.from_spectrum(S, WIDTHS)
    lin = problem.network()
    tanh = mlp_for_problem(problem, "tanh")
    zero = np.zeros(lin.n_params)
    H_lin, H_tanh = lin.hessian(zero), tanh.hessian(zero)
    in_lin = hessian_inertia(lin, zero, method="dense", hessian=H_lin)
    in_tanh = hessian_inertia(tanh, zero, method="dense", hessian=H_tanh)
    # tanh: critical classes and the transitions of small initializations
    atlas = SearchedAtlas(tanh, n_starts=cfg["n_starts"], seed=cfg["seed"], small_scale=cfg["init_scale"],
                          measure_dimension=cfg["measure_dimension"], max_iter=cfg["max_iter"])
    n_found = len(atlas.sets())
    tr_tanh = sample_transitions(tanh, cfg["n_trajectories"], atlas=atlas, init_scale=cfg["init_scale"],
                                 seed=cfg["seed"], t1=cfg["t1"], n_save=cfg["n_save"])
    strata = strata_dataset(atlas)
    # linear: the closed-form atlas; the same draws (both use default_rng(seed) * init_scale)
    tr_lin = sample_transitions(problem, cfg["n_trajectories"], init_scale=cfg["init_scale"], seed=cfg["seed"],
                                t1=cfg["t1"], n_save=cfg["n_save"], theory=False)
    np.testing.assert_array_equal(tr_lin["time"].values, tr_tanh["time"].values)
    lin_strata = enumerate_strata(problem)
    data = {
        "eig_linear": ("param", np.linalg.eigvalsh(H_lin)),
        "eig_tanh": ("param", np.linalg.eigvalsh(H_tanh)),
        "inertia_linear": ("inertia_part", np.array(in_lin.triple, dtype=np.int64)),
        "inertia_tanh": ("inertia_part", np.array(in_tanh.triple, dtype=np.int64)),
        "hessian_max_diff": ((), float(np.max(np.abs(H_lin - H_tanh)))),
        "linear_value": ("stratum", np.array([st.critical_value for st in lin_strata])),
        "linear_label": ("stratum", np.array([st.label for st in lin_strata], dtype=object)),
        "tanh_value": ("tanh_class", strata["critical_value"].values),
        "tanh_label": ("tanh_class", strata["label"].values),
        "tanh_n_negative": ("tanh_class", strata["n_negative"].values),
        "tanh_n_zero": ("tanh_class", strata["n_zero"].values),
        "tanh_manifold_dim": ("tanh_class", strata["manifold_dim"].values),
        "tanh_kind": ("tanh_class", strata["kind"].values),
    }
    data.update(_tables("lin", tr_lin))
    data.update(_tables("tanh", tr_tanh))
    return xr.Dataset(
        data,
        coords={"time": tr_lin["time"].values, "inertia_part": ["n_negative", "n_zero", "n_positive"]},
        attrs={
            "lin_dominant_path": list(tr_lin.attrs["dominant_path"]),
            "tanh_dominant_path": list(tr_tanh.attrs["dominant_path"]),
            "lin_n_unfinished": int(tr_lin.attrs["n_unfinished"]),
            "tanh_n_unfinished": int(tr_tanh.attrs["n_unfinished"]),
            "tanh_n_discovered": int(strata.sizes["stratum"] - n_found),
            "n_classes_tanh": int(strata.sizes["stratum"]),
        },
    )


def _graph(ds: xr.Dataset, prefix: str) -> nx.DiGraph:
    G = nx.DiGraph(n_trajectories=int(ds.sizes["sample"]))
    for i, lab in enumerate(ds[f"{prefix}_node_label"].values):
        G.add_node(str(lab), rank=int(ds[f"{prefix}_node_rank"].values[i]),
                   critical_value=float(ds[f"{prefix}_node_critical_value"].values[i]),
                   kind=str(ds[f"{prefix}_node_kind"].values[i]), visits=int(ds[f"{prefix}_node_visits"].values[i]))
    for e in range(ds.sizes.get(f"{prefix}_edge", 0)):
        G.add_edge(str(ds[f"{prefix}_edge_source"].values[e]), str(ds[f"{prefix}_edge_target"].values[e]),
                   count=int(ds[f"{prefix}_edge_count"].values[e]),
                   probability=float(ds[f"{prefix}_edge_probability"].values[e]))
    return G


def plot(ds: xr.Dataset):
    """(a) origin spectra, (b) loss curves, (c) linear graph, (d) tanh graph."""
    fig, axs = plt.subplots(2, 2, figsize=(8.0, 6.6), constrained_layout=True)
    ax = axs[0, 0]
    k = np.arange(ds.sizes["param"])
    ax.plot(k, ds["eig_linear"].values, "o", mfc="none", color="tab:blue", ms=6, label="linear")
    ax.plot(k, ds["eig_tanh"].values, "x", color="tab:red", ms=4, label="tanh")
    ax.axhline(0, color="0.6", lw=0.5)
    il, it = tuple(int(v) for v in ds["inertia_linear"].values), tuple(int(v) for v in ds["inertia_tanh"].values)
    ax.set(xlabel="eigenvalue index", ylabel=r"eigenvalue of $\nabla^2 L(0)$")
    ax.set_title(f"(a) Hessian at the origin: inertia linear {il}, tanh {it}\n"
                 f"max |H_lin - H_tanh| = {float(ds['hessian_max_diff']):.1e}", fontsize=8)
    ax.legend(fontsize=7)
    ax = axs[0, 1]
    t = ds["time"].values[1:]
    for name, color in (("lin", "tab:blue"), ("tanh", "tab:red")):
        L = ds[f"{name}_loss"].values[:, 1:]
        for j in range(L.shape[0]):
            ax.semilogx(t, L[j], color=color, lw=0.6, alpha=0.5, label=("linear" if name == "lin" else "tanh") if j == 0 else None)
    for v in np.unique(ds["linear_value"].values):
        ax.axhline(v, color="tab:blue", ls=":", lw=0.6)
    for v in ds["tanh_value"].values:
        ax.axhline(v, color="tab:red", ls="--", lw=0.6)
    ax.set(xlabel="t", ylabel="loss")
    ax.set_title("(b) same initializations (scale 1e-3): loss curves\n"
                 f"dominant paths: linear {' -> '.join(ds.attrs['lin_dominant_path'])}; "
                 f"tanh {' -> '.join(ds.attrs['tanh_dominant_path'])}", fontsize=8)
    ax.legend(fontsize=7)
    plot_transition_graph(_graph(ds, "lin"), ax=axs[1, 0])
    axs[1, 0].set_title(f"(c) linear network: strata S ({ds.attrs['lin_n_unfinished']} unfinished)", fontsize=8)
    plot_transition_graph(_graph(ds, "tanh"), ax=axs[1, 1])
    items = [f"{lab}: L={v:.3g}, n-={int(n)}" for lab, v, n in
             zip(ds["tanh_label"].values, ds["tanh_value"].values, ds["tanh_n_negative"].values)]
    classes = "\n".join("; ".join(items[i:i + 3]) for i in range(0, len(items), 3))
    axs[1, 1].set_title(f"(d) tanh network: critical classes ({ds.attrs['tanh_n_unfinished']} unfinished)\n{classes}",
                        fontsize=6)
    axs[1, 1].set_xlabel("(rank undefined for tanh: -1)")
    return fig


def main(argv=None):
    """Compute (or reuse the cache), plot, and write ``figures/fig08_tanh_vs_linear.png``."""
    return common.run(NAME, compute, plot, CONFIG, QUICK_CONFIG, argv, doc=__doc__)


if __name__ == "__main__":
    main()
