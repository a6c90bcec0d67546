r"""Real data: basins and strata of deep linear networks on the shipped Linnerud and digits datasets.

Paper: Theorem 1 of Liao, Chitour & Couillet on data the paper never saw. The loss on data (X, Y) is
:math:`L(W) = \tfrac12\lVert W_H \cdots W_1 X - Y\rVert_F^2`; in the canonical coordinates of the paper
it equals the canonical loss (whose critical values are :math:`\tfrac12\sum_{i \notin \mathcal{I}} s_i^2`,
s the singular values of :math:`Y V_X`) plus a constant, the *data loss offset*
:math:`\tfrac12\lVert Y\rVert_F^2 - \tfrac12\lVert Y V_X\rVert_F^2` (the part of Y no linear map of X
reaches). Raw units make the flow stiff (eig :math:`X X^\top` from 275 to 6.3e5 for Linnerud, 0.74 to
4.8e6 for digits); whitening (:math:`X \to (X X^\top)^{-1/2} X`) is a different, well-conditioned flow
with the same canonical critical values.

Datasets (``flowgeom.datasets``): Linnerud (Tenenhaus 1998, 20 men, 3 exercise counts -> 3 physiological
measurements, raw units; BSD-3 via scikit-learn) and the UCI optical digits 8x8 test set (Alpaydin & Kaynak
1998, 1797 images, 61 non-constant pixels -> one-hot labels of 10 classes; CC BY 4.0), whitened.

Caption. One column per case: Linnerud raw H = 1 (widths 3,3,3), Linnerud raw H = 2 (3,3,3,3), digits
whitened H = 1 (61,16,10; 1024 strata, of which only the reached ones are measured). Top: the critical
values of the strata (canonical :math:`L^*`, left axis, grey ticks; every listed stratum) against the
stratum's rank, the strata the basins reached in colour; the data loss offset printed in the title so
that data loss = :math:`L^*` + offset. Bottom: basin fractions (Wilson 95% intervals) of Gaussian
initializations (the API defaults: method "auto", exact-flow certification) over the reached strata,
with the share of classified samples and the stage times. Black rings: strata visited as plateaus by
small-initialization transitions (default scale), with the dominant saddle-to-saddle path. Everything runs through
:func:`flowgeom.pipeline.atlas` with its defaults, so the study speeds up with the integrators.
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the `studies` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

from flowgeom import Problem, datasets  # noqa: E402
from flowgeom._data import whiten  # noqa: E402
from flowgeom.pipeline import atlas as run_atlas  # noqa: E402

from studies import common  # noqa: E402

NAME = "fig11_real_data"
SEED = 11
CASES = [
    dict(name="Linnerud raw, H = 1", data="linnerud", widths=[3, 3, 3], whiten=False, samples=64, transitions=8),
    dict(name="Linnerud raw, H = 2", data="linnerud", widths=[3, 3, 3, 3], whiten=False, samples=16, transitions=0),
    dict(name="digits whitened, H = 1", data="digits", widths=[61, 16, 10], whiten=True, samples=16, transitions=4),
]
CONFIG = dict(seed=SEED, cases=CASES, measure="reached")
QUICK_CONFIG = dict(seed=SEED, measure="reached", cases=[
    dict(name="Linnerud raw, H = 1", data="linnerud", widths=[3, 3, 3], whiten=False, samples=4, transitions=2),
])


def _config(quick: bool) -> dict:
    return QUICK_CONFIG if quick else CONFIG


def _problem(case) -> Problem:
    X, Y = datasets.load(case["data"])
    if case["whiten"]:
        X = whiten(X)
    return Problem.from_data(X, Y, tuple(case["widths"]))


def compute(*, quick: bool = False) -> xr.Dataset:
    """Run the atlas pipeline (API defaults) on every case; one row per (case, listed stratum)."""
    cfg = _config(quick)
    rows, cases = [], []
    for c, case in enumerate(cfg["cases"]):
        pb = _problem(case)
        t0 = time.perf_counter()
        with warnings.catch_warnings():  # e.g. the non-strict saddle note of the basins: reported in the figure
            warnings.simplefilter("ignore", UserWarning)
            out = run_atlas(pb, samples=case["samples"], transition_samples=case["transitions"],
                            seed=cfg["seed"] + c, measure=cfg["measure"])
        total = time.perf_counter() - t0
        st, b = out["strata"], out["basins"]
        tr = out.get("transitions")
        visited = set() if tr is None else {str(x) for x in tr["stratum"].values}
        path = "" if tr is None else " -> ".join(tr.attrs.get("dominant_path", []))
        frac_path = float("nan") if tr is None else float(tr.attrs.get("dominant_path_fraction", np.nan))
        counts = {str(lab): int(n) for lab, n in zip(b["label"].values, b["count"].values)}
        lo = {str(lab): float(v) for lab, v in zip(b["label"].values, b["fraction_low"].values)}
        hi = {str(lab): float(v) for lab, v in zip(b["label"].values, b["fraction_high"].values)}
        for k in range(st.sizes["stratum"]):
            lab = str(st["label"].values[k])
            rows.append((c, lab, int(st["rank"].values[k]), float(st["critical_value"].values[k]),
                         str(st["kind"].values[k]), bool(st["measured"].values[k]), counts.get(lab, 0),
                         lo.get(lab, 0.0), hi.get(lab, 0.0), lab in visited))
        cases.append(dict(name=case["name"], offset=float(pb.loss_offset), n=int(b.sizes["sample"]),
                          classified=float(np.mean(b["limit"].values >= 0)),
                          n_strata=int(st.sizes["stratum"]), n_measured=int(st["measured"].values.sum()),
                          t_strata=float(st.attrs["elapsed_s"]), t_basins=float(b.attrs["elapsed_s"]),
                          integrator=str(b.attrs.get("integrator", "")), total=total, path=path,
                          path_fraction=frac_path,
                          t_transitions=float(tr.attrs["elapsed_s"]) if tr is not None else 0.0))
    r = list(zip(*rows))
    ds = xr.Dataset(
        {
            "case_of": ("row", np.array(r[0], dtype=np.int64)),
            "critical_value": ("row", np.array(r[3])),
            "kind": ("row", np.array(r[4], dtype=object)),
            "measured": ("row", np.array(r[5], dtype=bool)),
            "count": ("row", np.array(r[6], dtype=np.int64)),
            "fraction_low": ("row", np.array(r[7])),
            "fraction_high": ("row", np.array(r[8])),
            "visited": ("row", np.array(r[9], dtype=bool)),
        },
        coords={"row": np.arange(len(rows)), "label": ("row", np.array(r[1], dtype=object)),
                "rank": ("row", np.array(r[2], dtype=np.int64)),
                "case": np.arange(len(cases)), "case_name": ("case", np.array([x["name"] for x in cases], dtype=object))},
    )
    for key in ("offset", "n", "classified", "n_strata", "n_measured", "t_strata", "t_basins", "t_transitions",
                "total", "path_fraction"):
        ds[key] = ("case", np.array([x[key] for x in cases]))
    for key in ("integrator", "path"):
        ds[key] = ("case", np.array([x[key] for x in cases], dtype=object))
    ds.attrs["datasets"] = "; ".join(f"{n}: {datasets.provenance(n)['license']}" for n in datasets.NAMES)
    return ds


def plot(ds: xr.Dataset):
    """Critical values by rank (reached strata in colour) and basin fractions, one column per case."""
    n = ds.sizes["case"]
    fig, axs = plt.subplots(2, n, figsize=(4.2 * n, 6.4), squeeze=False)
    for c in range(n):
        sel = ds["case_of"].values == c
        lab = ds["label"].values[sel]
        rank = ds["rank"].values[sel]
        L = ds["critical_value"].values[sel]
        cnt = ds["count"].values[sel]
        lo, hi = ds["fraction_low"].values[sel], ds["fraction_high"].values[sel]
        N = int(ds["n"].values[c])
        ax = axs[0, c]
        pos = L[L > 0]
        floor = 0.2 * float(pos.min()) if pos.size else 1.0
        Lp = np.maximum(L, floor)  # the minimum (L* = 0) drawn on the axis floor
        ax.plot(rank, Lp, "_", color="0.6", ms=10)
        if L.size <= 16:
            for r_, l_, s_ in zip(rank, Lp, lab):
                ax.annotate(s_, (r_, l_), xytext=(6, 0), textcoords="offset points", fontsize=6, va="center")
        ax.axhline(floor, color="0.85", lw=0.8, zorder=0)
        hit = cnt > 0
        ax.scatter(rank[hit], Lp[hit], s=30 + 200 * cnt[hit] / max(N, 1), color="C3", zorder=3, label="basin limit")
        vis = ds["visited"].values[sel]
        if vis.any():
            ax.scatter(rank[vis], Lp[vis], s=70, facecolors="none", edgecolors="k", zorder=4,
                       label="transition plateau")
        path = str(ds["path"].values[c])
        if path:
            short = path if len(path) < 60 else path[:57] + "..."
            ax.text(0.02, 0.02, f"dominant path ({100 * float(ds['path_fraction'].values[c]):.0f}%):\n{short}",
                    transform=ax.transAxes, fontsize=6, va="bottom")
        ax.set_yscale("log")
        ax.set_xlabel("rank of the stratum")
        ax.set_ylabel("canonical critical value $L^*$ (floor: $L^*$ = 0)")
        ax.set_title(f"{ds['case_name'].values[c]}\ndata loss = $L^*$ + {float(ds['offset'].values[c]):.4g}",
                     fontsize=9)
        ax.legend(fontsize=7, loc="center")
        ax = axs[1, c]
        order = np.argsort(L[hit])[::-1]
        labs = lab[hit][order]
        frac = cnt[hit][order] / max(N, 1)
        x = np.arange(labs.size)
        ax.bar(x, frac, color="C0")
        ax.errorbar(x, frac, yerr=[frac - lo[hit][order], hi[hit][order] - frac], fmt="none", color="k", lw=1)
        ax.set_xticks(x)
        ax.set_xticklabels([s if len(s) < 14 else s[:11] + "...}" for s in labs], fontsize=7, rotation=20)
        ax.set_ylim(0, 1.05)
        ax.set_ylabel(f"basin fraction ({N} Gaussian inits)")
        ax.set_title(f"classified {100 * float(ds['classified'].values[c]):.0f}%, {ds['integrator'].values[c]}; "
                     f"strata {int(ds['n_measured'].values[c])}/{int(ds['n_strata'].values[c])} measured\n"
                     f"basins {float(ds['t_basins'].values[c]):.0f} s, transitions "
                     f"{float(ds['t_transitions'].values[c]):.0f} s, strata {float(ds['t_strata'].values[c]):.0f} s",
                     fontsize=8)
    return fig


def main(argv=None):
    """Compute (or reuse the cache), plot, and write ``figures/fig11_real_data.png``."""
    return common.run(NAME, compute, plot, CONFIG, QUICK_CONFIG, argv, doc=__doc__)


if __name__ == "__main__":
    main()
