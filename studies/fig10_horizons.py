r"""Finite horizons: how long small initializations stay stuck at the origin, for depth H = 1, 2, 3.

Paper: no figure; the escape from the saddle {0} of Liao, Chitour & Couillet's landscape as a function of
depth. For H = 1 the origin is a strict saddle and a Gaussian init of scale :math:`\varepsilon` escapes after
:math:`\sim \log(1/\varepsilon)/s_1`; for H >= 2 it is a non-strict saddle and the escape takes
:math:`\sim \varepsilon^{-(H-1)}/((H-1)s_1)` (the balanced scalar chain of
``flowgeom.linear.theory._scalar_chain_time``; Saxe et al. 2014).

Caption. s = (3, 2, 1), widths (3,)*(H+2), Gaussian inits of scale :math:`\varepsilon`. Left: the fraction of
samples still near the origin (``fraction_by_horizon`` of stratum {}, Wilson 95% band) against the horizon T,
one curve per :math:`\varepsilon`, one colour family per H. Right: the median escape time
:math:`T_{1/2}` (the horizon where the stuck fraction crosses 1/2, interpolated in log T) against
:math:`1/\varepsilon` with the fitted power law (H >= 2: slope of log T against log(1/eps), theory H - 1;
H = 1: slope of T against log(1/eps), theory 1/s_1) and the scalar-chain time (dashed) for
:math:`w_0 = \varepsilon`: the exponents are the test, the prefactor depends on how an init of scale
:math:`\varepsilon` projects on the top mode.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the `studies` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

from flowgeom import Problem  # noqa: E402
from flowgeom.basins._sample import sample_basins  # noqa: E402
from flowgeom.linear.theory import _scalar_chain_time  # noqa: E402

from studies import common  # noqa: E402

NAME = "fig10_horizons"
SEED = 10
S = (3.0, 2.0, 1.0)
CONFIG = dict(seed=SEED, n_samples=48, depths=[1, 2, 3],
              scales={"1": [1e-2, 1e-4, 1e-6, 1e-8], "2": [0.05, 0.02, 0.01, 0.005], "3": [0.1, 0.05, 0.03, 0.02]},
              n_horizons=60, t_lo=0.1, t_hi=2e4)
QUICK_CONFIG = dict(seed=SEED, n_samples=6, depths=[1, 2],
                    scales={"1": [1e-2, 1e-6], "2": [0.1, 0.05]}, n_horizons=8, t_lo=0.1, t_hi=500.0)


def _config(quick: bool) -> dict:
    return QUICK_CONFIG if quick else CONFIG


def compute(*, quick: bool = False) -> xr.Dataset:
    """Stuck fractions (stratum {}) on a log grid of horizons for every (H, eps)."""
    cfg = _config(quick)
    hz = np.geomspace(cfg["t_lo"], cfg["t_hi"], cfg["n_horizons"])
    rows = []
    for H in cfg["depths"]:
        pb = Problem.from_spectrum(S, (3,) * (H + 2))
        for k, eps in enumerate(cfg["scales"][str(H)]):
            with warnings.catch_warnings():  # samples that stall at the origin are what we measure
                warnings.simplefilter("ignore", UserWarning)
                ds = sample_basins(pb, cfg["n_samples"], init_scale=eps, seed=cfg["seed"] + 10 * H + k,
                                   horizons=hz, certify=False, t_max=max(6400.0, 2 * hz[-1]),
                                   scheduler="synchronous", progress=False)
            j = list(ds.label.values).index("{}")
            rows.append((H, eps, ds.fraction_by_horizon.values[:, j], ds.fraction_by_horizon_low.values[:, j],
                         ds.fraction_by_horizon_high.values[:, j]))
    case = np.arange(len(rows))
    out = xr.Dataset(
        {
            "stuck": (("case", "horizon"), np.stack([r[2] for r in rows])),
            "stuck_low": (("case", "horizon"), np.stack([r[3] for r in rows])),
            "stuck_high": (("case", "horizon"), np.stack([r[4] for r in rows])),
        },
        coords={"case": case, "horizon": hz, "depth_H": ("case", np.array([r[0] for r in rows])),
                "init_scale": ("case", np.array([r[1] for r in rows]))},
        attrs={"singular_values": list(S), "n_samples": cfg["n_samples"]},
    )
    out["t_half"] = ("case", np.array([_t_half(hz, r[2]) for r in rows]))
    out["t_theory"] = ("case", np.array([_scalar_chain_time(S[0], float(r[1]), int(r[0]))[0] for r in rows]))
    return out


def _t_half(hz, stuck) -> float:
    """The horizon where the stuck fraction first falls to 1/2 (linear in log T), NaN if never."""
    below = np.flatnonzero(stuck <= 0.5)
    if below.size == 0:
        return float("nan")
    i = int(below[0])
    if i == 0:
        return float(hz[0])
    x0, x1 = np.log(hz[i - 1]), np.log(hz[i])
    f0, f1 = stuck[i - 1], stuck[i]
    return float(np.exp(x0 + (f0 - 0.5) / (f0 - f1) * (x1 - x0)))


def fit_exponent(H: int, eps, t_half) -> float:
    """H = 1: slope of T against log(1/eps) (theory 1/s_1); H >= 2: slope of log T against log(1/eps) (theory H-1)."""
    eps, t = np.asarray(eps, dtype=float), np.asarray(t_half, dtype=float)
    ok = np.isfinite(t)
    if ok.sum() < 2:
        return float("nan")
    x = np.log(1.0 / eps[ok])
    y = t[ok] if H == 1 else np.log(t[ok])
    return float(np.polyfit(x, y, 1)[0])


def plot(ds: xr.Dataset):
    """Stuck fraction against horizon; median escape time against 1/eps with fits and theory."""
    fig, axs = plt.subplots(1, 2, figsize=(10.5, 4.2))
    cmaps = {1: plt.cm.Blues, 2: plt.cm.Oranges, 3: plt.cm.Greens}
    hz = ds.horizon.values
    depths = sorted(set(int(h) for h in ds.depth_H.values))
    for H in depths:
        cases = [int(c) for c in ds.case.values if int(ds.depth_H.values[c]) == H]
        for m, c in enumerate(cases):
            col = cmaps.get(H, plt.cm.Greys)(0.45 + 0.5 * m / max(1, len(cases) - 1))
            eps = float(ds.init_scale.values[c])
            axs[0].plot(hz, ds.stuck.values[c], color=col, label=f"H={H}, $\\varepsilon$={eps:g}")
            axs[0].fill_between(hz, ds.stuck_low.values[c], ds.stuck_high.values[c], color=col, alpha=0.15, lw=0)
        eps = ds.init_scale.values[cases]
        th = ds.t_half.values[cases]
        slope = fit_exponent(H, eps, th)
        theory = (1.0 / S[0]) if H == 1 else float(H - 1)
        col = cmaps.get(H, plt.cm.Greys)(0.8)
        axs[1].plot(1.0 / eps, th, "o", color=col, label=f"H={H}: fit {slope:.2f}, theory {theory:.2f}")
        axs[1].plot(1.0 / eps, ds.t_theory.values[cases], "--", color=col)
    axs[0].set_xscale("log")
    axs[0].set_xlabel("horizon T")
    axs[0].set_ylabel("fraction near the origin {}")
    axs[0].legend(fontsize=6, ncol=2)
    axs[1].set_xscale("log")
    axs[1].set_yscale("log")
    axs[1].set_xlabel("1 / init scale")
    axs[1].set_ylabel("median escape time $T_{1/2}$")
    axs[1].set_title("exponent: H=1 slope of T vs log(1/eps); H>=2 of log T vs log(1/eps)", fontsize=7)
    axs[1].legend(fontsize=7)
    return fig


def main(argv=None):
    """Compute (or reuse the cache), plot, and write ``figures/fig10_horizons.png``."""
    return common.run(NAME, compute, plot, CONFIG, QUICK_CONFIG, argv, doc=__doc__)


if __name__ == "__main__":
    main()
