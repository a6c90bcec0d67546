r"""Dimension and Hessian inertia of every stratum of critical points vs the paper's counts (Lemmas 3 and 4).

Paper: Lemma 3 (:math:`\dim \mathrm{Crit}_r \le D_C^r = 2d_1r - r^2 + (d_1-r)(d_x-d_y)`), Lemma 4 (the span
of non-converging variations at a saddle of rank r has dimension :math:`\ge U_S^r = D_C^r +
(d_y-r)(d_1-r) + 1`) and Proof 2 (the initializations converging to :math:`\mathrm{Crit}_r` have
codimension :math:`U_S^r - D_C^r \ge 2`). No figure in the paper.

Caption. One row per shape (H = 1, s = (d_y, ..., 1)); one column entry per stratum (learned set S,
sorted by rank r, then by critical value). Left: the measured dimension of the stratum (rank of its
chart's Jacobian at sampled points; for the two small shapes cross-checked by refinement clouds),
the number of zero Hessian eigenvalues :math:`n_0` (equal to it everywhere: Morse-Bott), beside
:math:`D_C^r`; and :math:`n_0 + n_-`, the dimension of the span of zero and negative eigenvectors (the
measured counterpart of :math:`\dim \mathcal{C}(\Xi)`), beside :math:`U_S^r`. Right: the measured
codimension of the set of initializations flowing into the stratum (:math:`n_-` at Morse-Bott points)
beside the paper's :math:`U_S^r - D_C^r`. Red labels mark strata where a measurement contradicts the
paper: there :math:`n_0 + n_- = U_S^r - 1` (Lemma 4's bound is off by one) and the codimension is one
less than the paper's, but still at least 2, so Theorem 1's conclusion (measure zero) survives.
Computed by ``flowgeom.critical.build_strata_dataset``.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the `studies` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

from flowgeom import Problem  # noqa: E402
from flowgeom.audit import add_paper_columns  # noqa: E402
from flowgeom.linear.measure import build_strata_dataset  # noqa: E402

from studies import common  # noqa: E402

NAME = "fig04_inertia"
SEED = 4
CONFIG = dict(seed=SEED, shapes=[[4, 3, 2], [4, 4, 3], [6, 5, 4]], points_per_stratum=3, local_dim_max_params=40)
QUICK_CONFIG = dict(seed=SEED, shapes=[[3, 2, 2], [4, 3, 2]], points_per_stratum=1, local_dim_max_params=0)

VARS = ["rank", "critical_value", "n_negative", "n_zero", "n_positive", "manifold_dim", "morse_bott", "stable_codim",
        "escape_dim", "paper_dim_bound", "paper_escape_bound", "paper_codim_bound", "contradicts_paper", "n_points",
        "max_grad_norm", "n_negative_min", "n_negative_max", "n_zero_min", "n_zero_max"]


def _config(quick: bool) -> dict:
    return QUICK_CONFIG if quick else CONFIG


def compute(*, quick: bool = False) -> xr.Dataset:
    """Build the strata Dataset of each shape and stack the per-stratum measurements."""
    cfg = _config(quick)
    parts = []
    for k, w in enumerate(cfg["shapes"]):
        w = tuple(int(d) for d in w)
        s = np.arange(w[-1], 0, -1, dtype=float)
        problem = Problem.from_spectrum(s, w)
        n_params = sum(a * b for a, b in zip(w[:-1], w[1:]))
        ds = add_paper_columns(build_strata_dataset(problem, points_per_stratum=cfg["points_per_stratum"], seed=cfg["seed"],
                                  local_dim=n_params <= cfg["local_dim_max_params"]))
        order = np.lexsort((-ds["critical_value"].values, ds["rank"].values))
        ds = ds.isel(stratum=order)
        sub = xr.Dataset({v: ("slot", np.asarray(ds[v].values)) for v in VARS})
        sub["label"] = ("slot", np.asarray(ds["label"].values, dtype=object))
        sub = sub.assign_coords(slot=np.arange(sub.sizes["slot"]))
        sub = sub.expand_dims(shape=[k])
        parts.append(sub)
    # pad shapes to a common number of strata (2^{d_y} differ): concat fills with NaN / None
    out = xr.concat(parts, dim="shape", join="outer", fill_value={"label": ""})
    out = out.assign_coords(shape=[",".join(map(str, w)) for w in cfg["shapes"]])
    # fixed-width strings: flowgeom.io (0.1.0) cannot reload 2-D object-dtype string variables
    out["label"] = out["label"].astype("U32")
    out.attrs.update(local_dim_max_params=cfg["local_dim_max_params"])
    return out


def plot(ds: xr.Dataset):
    """One row per shape: dimensions vs D_C and U_S (left), codimension vs the paper's (right)."""
    shapes = list(ds["shape"].values)
    fig, axs = plt.subplots(len(shapes), 2, figsize=(7.6, 2.35 * len(shapes) + 0.7),
                            gridspec_kw={"width_ratios": [1.6, 1]}, squeeze=False, layout="constrained")
    for row, shp in enumerate(shapes):
        d = ds.sel(shape=shp)
        labels = [str(x) for x in d["label"].values]
        keep = np.array([lab != "" and lab != "nan" for lab in labels])
        labels = [lab for lab, k in zip(labels, keep) if k]
        x = np.arange(len(labels))

        def v(name):
            return np.asarray(d[name].values[keep], dtype=float)

        bad = v("contradicts_paper").astype(bool)
        DC, US, PC = v("paper_dim_bound"), v("paper_escape_bound"), v("paper_codim_bound")
        has = DC >= 0
        ax = axs[row, 0]
        ax.plot(x, v("manifold_dim"), "o", color="tab:blue", ms=6, mfc="none", label="measured dim of stratum")
        ax.plot(x, v("n_zero"), "x", color="tab:blue", ms=4, label="$n_0$")
        ax.plot(x[has], DC[has], "_", color="tab:blue", ms=14, mew=2, label="$D_C^r$ (Lemma 3)")
        ax.plot(x, v("escape_dim"), "s", color="tab:orange", ms=5, mfc="none", label="$n_0+n_-$")
        ax.plot(x[has], US[has], "_", color="tab:orange", ms=14, mew=2, label="$U_S^r$ (Lemma 4)")
        ax.set_xticks(x, labels, rotation=45 if len(labels) > 8 else 0, fontsize=6.5)
        for t, b in zip(ax.get_xticklabels(), bad):
            if b:
                t.set_color("tab:red")
        n_bad = int(bad.sum())
        ax.set_title(f"widths ({shp}): dim X = {int(v('n_negative')[0] + v('n_zero')[0] + v('n_positive')[0])}, "
                     f"{n_bad} strata contradict Lemma 4", fontsize=8)
        ax.set_ylabel("dimension")
        ax = axs[row, 1]
        codim = v("stable_codim")
        ax.plot(x, codim, "o", color="tab:purple", ms=5, label="measured codim ($n_-$, Morse-Bott)")
        ax.plot(x[has], PC[has], "_", color="k", ms=12, mew=2, label="paper: $U_S^r-D_C^r$")
        ax.axhline(2, color="tab:red", lw=0.8, ls=":", label="2 (Proof 2 needs $\\geq 2$)")
        ax.set_ylim(-0.5, None)
        ax.set_xticks(x, labels, rotation=45 if len(labels) > 8 else 0, fontsize=6.5)
        for t, b in zip(ax.get_xticklabels(), bad):
            if b:
                t.set_color("tab:red")
        sad = has
        mn = int(np.min(codim[sad])) if sad.any() else -1
        ax.set_title(f"codim of the inflow (min over saddles: {mn})", fontsize=8)
    has = ds["paper_dim_bound"].values >= 0
    dim_ok = bool(np.all(ds["manifold_dim"].values[has] <= ds["paper_dim_bound"].values[has]))
    dim_eq = int(np.sum(ds["manifold_dim"].values[has] == ds["paper_dim_bound"].values[has]))
    esc_bad = int(np.sum(ds["escape_dim"].values[has] < ds["paper_escape_bound"].values[has]))
    codim_min = int(np.min(ds["stable_codim"].values[has])) if has.any() else -1
    fig.suptitle(f"Lemma 3 {'holds' if dim_ok else 'VIOLATED'} (dim = $D_C^r$ on {dim_eq}/{int(has.sum())} saddle strata); "
                 f"Lemma 4 contradicted on {esc_bad}/{int(has.sum())} (by one);\nsmallest codimension of the inflow "
                 f"into a saddle stratum: {codim_min} (Theorem 1's measure-zero conclusion needs $\\geq 1$)", fontsize=8)
    h0, l0 = axs[0, 0].get_legend_handles_labels()
    h1, l1 = axs[0, 1].get_legend_handles_labels()
    fig.legend(h0 + h1, l0 + l1, loc="outside lower center", ncol=4, fontsize=6.5)
    return fig


def main(argv=None):
    """Compute (or reuse the cache), plot, and write ``figures/fig04_inertia.png``."""
    return common.run(NAME, compute, plot, CONFIG, QUICK_CONFIG, argv, doc=__doc__)


if __name__ == "__main__":
    main()
