r"""Basin fractions: where gradient flow (and gradient descent) ends, by initialization scale and distribution.

Paper: Theorem 1 (no figure): for almost every initialization the gradient flow of a deep linear
network converges to a global minimum; the initializations converging to saddles form a set of
measure zero (a union of positive-codimension sets, Proof 2).

Caption. Problem H = 1, widths (5, 4, 3), s = (3, 2, 1). (a) Fraction of gradient-flow runs that converge
to the global-minimum stratum {0,1,2} (Wilson 95% intervals) vs the initialization scale, for Gaussian,
Haar-orthogonal and balanced (C = 0) initializations; every other outcome (a saddle, unconverged,
diverged) is counted in the complement. (b) The same initializations run by gradient descent with a
fixed step: the flow's guarantee does not transfer to a fixed step at large scales (fraction converged
to the minimum and fraction diverged). (c) Initializations on the tangent space E of the stable set
of a saddle plus an isotropic perturbation of size delta ('stable-set' sampler): fraction of runs that
converge to that saddle vs delta. Where the stable set is flat (the origin of the scalar and of the
2x2x2 network) delta = 0 lands on it and every run converges to the saddle; any delta > 0 escapes. Where
it is curved ((5,4,3), origin and {0}) the tangent space misses it and no run converges to the saddle.
(d) Escape time: median time to converge (to the minimum) vs delta for the flat cases, against
:math:`\log(1/\delta)/\lambda_{-}` with :math:`\lambda_{-}` the largest unstable Hessian eigenvalue
magnitude at the saddle.
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
from flowgeom.basins import sample_basins, wilson_interval  # noqa: E402
from flowgeom.linear.strata import enumerate_strata, parse_label  # noqa: E402
from flowgeom.flow import SaveAt, integrate  # noqa: E402
from flowgeom.basins.samplers import balanced_critical_point, sample_initializations  # noqa: E402

from studies import common  # noqa: E402

NAME = "fig05_basins"
SEED = 5
WIDTHS = (5, 4, 3)
S = (3.0, 2.0, 1.0)
DISTS = ("gaussian", "orthogonal", "balanced")
STABLE_CASES = {  # label -> (widths, s, stratum)
    "scalar (1,1,1), origin": ((1, 1, 1), (1.0,), "{}"),
    "(2,2,2), origin": ((2, 2, 2), (2.0, 1.0), "{}"),
    "(5,4,3), origin": ((5, 4, 3), (3.0, 2.0, 1.0), "{}"),
    "(5,4,3), {0}": ((5, 4, 3), (3.0, 2.0, 1.0), "{0}"),
}
CONFIG = dict(seed=SEED, n_samples=200, scales=[1e-3, 1e-2, 0.1, 0.5, 1.0, 2.0, 4.0], gd_lr=0.02, gd_samples=100,
              deltas=[0.0, 1e-12, 1e-9, 1e-6, 1e-3], n_stable=100, stable_radius=0.5, t1=50.0)
QUICK_CONFIG = dict(seed=SEED, n_samples=8, scales=[0.1, 1.0], gd_lr=0.02, gd_samples=8, deltas=[0.0, 1e-6],
                    n_stable=6, stable_radius=0.5, t1=20.0)
MIN_LABEL = "{0,1,2}"
ESCAPE_T1 = 200.0  # horizon for the escape-time runs (log(1e12) / 1 ~ 28 plus the approach)


def _config(quick: bool) -> dict:
    return QUICK_CONFIG if quick else CONFIG


def _fraction_of(ds, label):
    labels = list(ds["label"].values)
    k = labels.index(label)
    return int(ds["count"].values[k]), int(ds.sizes["sample"])


def _median_escape_time(pb, stratum, delta, cfg, seed):
    """Median time at which the loss falls halfway from the saddle's value to the run's final value."""
    theta0 = sample_initializations(pb, "stable-set", cfg["n_stable"], scale=cfg["stable_radius"], seed=seed,
                                    stratum=stratum, delta=delta)
    crit = {st.label: st.critical_value for st in enumerate_strata(pb)}[stratum]
    tr = integrate(pb.network(), theta0, ESCAPE_T1, saveat=SaveAt(n_log=400, t_first=1e-2), grad_tol=0.0)
    level = crit - 0.5 * (crit - tr.loss_final)
    below = tr.loss < level[:, None]
    t_esc = np.where(below.any(axis=1), tr.ts[np.argmax(below, axis=1)], np.nan)
    return float(np.nanmedian(t_esc)) if np.isfinite(t_esc).any() else np.nan


def compute(*, quick: bool = False) -> xr.Dataset:
    """Run sample_basins over scales x distributions (flow and GD) and the stable-set sweep."""
    cfg = _config(quick)
    problem = Problem.from_spectrum(S, WIDTHS)
    scales = np.asarray(cfg["scales"], dtype=float)
    common_kw = dict(progress=False, scheduler="synchronous", t1=cfg["t1"])
    shape = (len(DISTS), len(scales))
    flow_min = np.zeros(shape, dtype=np.int64)
    flow_n = np.zeros(shape, dtype=np.int64)
    flow_other = np.zeros(shape + (3,), dtype=np.int64)  # unconverged, diverged, saddle
    unconv_loss = np.zeros(shape)  # largest final loss among unconverged runs (0 if none)
    gd_min = np.zeros(shape, dtype=np.int64)
    gd_div = np.zeros(shape, dtype=np.int64)
    gd_n = np.zeros(shape, dtype=np.int64)
    for i, dist in enumerate(DISTS):
        for j, sc in enumerate(scales):
            seed = cfg["seed"] + 100 * i + j
            ds = sample_basins(problem, cfg["n_samples"], init=dist, init_scale=float(sc), seed=seed, **common_kw)
            flow_min[i, j], flow_n[i, j] = _fraction_of(ds, MIN_LABEL)
            flow_other[i, j] = [int(ds["count_unconverged"]), int(ds["count_diverged"]),
                                int(ds["count"].sum()) - flow_min[i, j]]
            unc = ds["limit"].values == -1
            unconv_loss[i, j] = float(ds["final_loss"].values[unc].max()) if unc.any() else 0.0
            g = sample_basins(problem, cfg["gd_samples"], init=dist, init_scale=float(sc), seed=seed,
                              integrator="gd", lr=cfg["gd_lr"], **common_kw)
            gd_min[i, j], gd_n[i, j] = _fraction_of(g, MIN_LABEL)
            gd_div[i, j] = int(g["count_diverged"])
    deltas = np.asarray(cfg["deltas"], dtype=float)
    cases = list(STABLE_CASES)
    st_hit = np.zeros((len(cases), len(deltas)), dtype=np.int64)
    st_n = np.zeros((len(cases), len(deltas)), dtype=np.int64)
    st_tmed = np.full((len(cases), len(deltas)), np.nan)
    st_lam = np.zeros(len(cases))
    for c, name in enumerate(cases):
        w, s, stratum = STABLE_CASES[name]
        pb = Problem.from_spectrum(s, w)
        for k, d in enumerate(deltas):
            ds = sample_basins(pb, cfg["n_stable"], init="stable-set", init_scale=cfg["stable_radius"],
                               init_params={"stratum": stratum, "delta": float(d)}, seed=cfg["seed"] + 7 * c + k,
                               **common_kw)
            st_hit[c, k], st_n[c, k] = _fraction_of(ds, stratum)
            if d > 0:
                st_tmed[c, k] = _median_escape_time(pb, stratum, float(d), cfg, cfg["seed"] + 7 * c + k)
        # unstable rate at the saddle: the most negative Hessian eigenvalue at a balanced point of it
        p = balanced_critical_point(pb, parse_label(stratum))
        lam = np.linalg.eigvalsh(pb.network().hessian(p))
        st_lam[c] = float(-lam[0])
    return xr.Dataset(
        {
            "flow_min": (("dist", "scale"), flow_min),
            "flow_n": (("dist", "scale"), flow_n),
            "flow_other": (("dist", "scale", "outcome"), flow_other),
            "flow_unconverged_max_loss": (("dist", "scale"), unconv_loss),
            "gd_min": (("dist", "scale"), gd_min),
            "gd_diverged": (("dist", "scale"), gd_div),
            "gd_n": (("dist", "scale"), gd_n),
            "stable_hit": (("case", "delta"), st_hit),
            "stable_n": (("case", "delta"), st_n),
            "stable_t_median": (("case", "delta"), st_tmed),
            "unstable_rate": (("case",), st_lam),
        },
        coords={"dist": list(DISTS), "scale": scales, "outcome": ["unconverged", "diverged", "saddle"],
                "case": cases, "delta": deltas},
        attrs={"widths": list(WIDTHS), "singular_values": list(S), "gd_lr": cfg["gd_lr"], "ci_level": 0.95,
               "integrator": "adaptive (dopri5)", "min_label": MIN_LABEL},
    )


def _ci(k, n):
    lo, hi = wilson_interval(np.asarray(k), np.asarray(n))
    p = np.asarray(k) / np.asarray(n)
    return p, p - lo, hi - p


def plot(ds: xr.Dataset):
    """Four panels: flow basins vs scale, GD vs scale, stable-set hits vs delta, escape times."""
    fig, axs = plt.subplots(2, 2, figsize=(7.6, 6.4))
    scales = ds["scale"].values
    colors = {"gaussian": "tab:blue", "orthogonal": "tab:orange", "balanced": "tab:green"}
    off = {"gaussian": 0.93, "orthogonal": 1.0, "balanced": 1.07}
    ax = axs[0, 0]
    for dist in ds["dist"].values:
        p, lo, hi = _ci(ds["flow_min"].sel(dist=dist).values, ds["flow_n"].sel(dist=dist).values)
        ax.errorbar(scales * off[str(dist)], p, yerr=[lo, hi], fmt="o-", ms=3, capsize=2, color=colors[str(dist)],
                    label=str(dist))
    tot = int(ds["flow_n"].sum())
    other = ds["flow_other"].sum(("dist", "scale")).values
    ax.set(xscale="log", xlabel="initialization scale", ylabel="fraction converging to the global minimum",
           ylim=(0.9, 1.005))
    ax.set_title(f"(a) gradient flow, (5,4,3): {tot - int(other.sum())}/{tot} runs to the minimum\n"
                 f"saddle {other[2]}, diverged {other[1]}, unconverged {other[0]} (at $t_{{max}}$, loss "
                 f"$\\leq${float(ds['flow_unconverged_max_loss'].max()):.0e})")
    ax.legend(fontsize=6.5, loc="lower left")
    ax = axs[0, 1]
    for dist in ds["dist"].values:
        p, lo, hi = _ci(ds["gd_min"].sel(dist=dist).values, ds["gd_n"].sel(dist=dist).values)
        ax.errorbar(scales * off[str(dist)], p, yerr=[lo, hi], fmt="o-", ms=3, capsize=2, color=colors[str(dist)],
                    label=f"{dist}: to minimum")
        q = ds["gd_diverged"].sel(dist=dist).values / ds["gd_n"].sel(dist=dist).values
        ax.plot(scales * off[str(dist)], q, "x--", ms=4, color=colors[str(dist)], lw=0.8, label=f"{dist}: diverged")
    ax.set(xscale="log", xlabel="initialization scale", ylabel="fraction", ylim=(-0.03, 1.03))
    ax.set_title(f"(b) gradient descent, fixed step $\\eta$ = {ds.attrs['gd_lr']:g}")
    ax.legend(fontsize=6, loc="center left")
    ax = axs[1, 0]
    deltas = ds["delta"].values
    pos = deltas > 0
    xs = np.where(pos, deltas, deltas[pos].min() * 1e-3 if pos.any() else 1e-15)
    markers = ["o", "s", "^", "v"]
    for c, case in enumerate(ds["case"].values):
        p, lo, hi = _ci(ds["stable_hit"].sel(case=case).values, ds["stable_n"].sel(case=case).values)
        ax.errorbar(xs * (1 + 0.25 * c), p, yerr=[lo, hi], fmt=markers[c] + "-", ms=4, capsize=2, label=str(case))
    ax.set_xscale("log")
    ticks = list(xs)
    ax.set_xticks(ticks, ["0"] + [f"{d:.0e}" for d in deltas[pos]] if not pos[0] else [f"{d:.0e}" for d in deltas])
    ax.set(xlabel="perturbation $\\delta$ off the tangent space of the stable set", ylabel="fraction converging to the saddle",
           ylim=(-0.05, 1.05))
    ax.set_title(f"(c) 'stable-set' sampler (radius along E, {int(ds['stable_n'].values[0, 0])} runs per point)")
    ax.legend(fontsize=6, loc="center right")
    ax = axs[1, 1]
    for c, case in enumerate(ds["case"].values):
        hit0 = ds["stable_hit"].sel(case=case).values[~pos]
        if hit0.size and hit0[0] == ds["stable_n"].sel(case=case).values[0]:  # flat stable set
            t = ds["stable_t_median"].sel(case=case).values[pos]
            lam = float(ds["unstable_rate"].sel(case=case))
            line, = ax.semilogx(deltas[pos], t, markers[c] + "-", ms=4, label=f"{case}: measured")
            slope = np.polyfit(np.log(1 / deltas[pos]), t, 1)[0] if pos.sum() >= 2 else np.nan
            ax.semilogx(deltas[pos], t[-1] + np.log(deltas[pos][-1] / deltas[pos]) / lam, ":", color=line.get_color(),
                        label=f"slope 1/$\\lambda_-$ = {1 / lam:.2f} (fit {slope:.2f})")
    ax.set(xlabel="$\\delta$", ylabel="median escape time (loss halfway down)")
    ax.set_title("(d) escape from a flat stable set: time $\\approx\\log(1/\\delta)/\\lambda_-$")
    ax.legend(fontsize=6)
    return fig


def main(argv=None):
    """Compute (or reuse the cache), plot, and write ``figures/fig05_basins.png``."""
    return common.run(NAME, compute, plot, CONFIG, QUICK_CONFIG, argv, doc=__doc__)


if __name__ == "__main__":
    main()
