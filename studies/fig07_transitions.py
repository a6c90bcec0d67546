r"""Saddle-to-saddle dynamics from small initializations: loss plateaus at critical values, and the transition graph.

Paper: no figure; the landscape of Proposition 2 (every critical value is :math:`\tfrac12\sum_{i\notin S}s_i^2`)
seen by trajectories from small initializations (Saxe et al. 2014; Jacot et al. 2021).

Caption. Top row: H = 1, widths (5, 4, 3), s = (3, 2, 1), Gaussian initialization of scale 1e-10.
Bottom row: H = 2, widths (5, 4, 4, 3), same s, scale 3e-3. Left: loss against time (log axis) of every
trajectory with the critical values of the strata as dashed lines: the loss sits on the plateaus
{} -> {0} -> {0,1} -> {0,1,2}, learning one singular mode at a time in order of decreasing s_i.
Middle: the transition graph measured from the detected visits (``flowgeom.transitions``; node area:
visits, edge label: transition probability). Right: observed jump times (mean, sd) beside the
theory of ``flowgeom.transitions.transition_theory`` (H = 1: Saxe et al.'s logistic modes with
a chi-square initial strength, exact to leading order; H = 2: an order-of-magnitude scalar-chain
estimate, so an O(1) ratio is expected there).
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
from flowgeom.plot import plot_jump_times, plot_loss_curves, plot_transition_graph  # noqa: E402
from flowgeom.transitions import sample_transitions  # noqa: E402

from studies import common  # noqa: E402

NAME = "fig07_transitions"
SEED = 7
S = (3.0, 2.0, 1.0)
CASES = {  # prefix -> (widths, init scale)
    "h1_": ((5, 4, 3), 1e-10),
    "h2_": ((5, 4, 4, 3), 3e-3),
}
CONFIG = dict(seed=SEED, n_samples=40)
QUICK_CONFIG = dict(seed=SEED, n_samples=3)


def _config(quick: bool) -> dict:
    return QUICK_CONFIG if quick else CONFIG


def _prefixed(ds: xr.Dataset, p: str) -> xr.Dataset:
    """Rename every variable, coordinate and dimension of ``ds`` with prefix ``p`` (attrs kept apart)."""
    names = set(ds.variables) | set(ds.dims)
    out = ds.rename({n: p + n for n in names})
    out.attrs = {}
    return out


def _unprefixed(ds: xr.Dataset, p: str) -> xr.Dataset:
    """Inverse of :func:`_prefixed` for the variables carrying prefix ``p``; attrs from ``ds.attrs[p + 'attrs']``."""
    keep = [v for v in ds.data_vars if str(v).startswith(p)]
    sub = ds[keep]
    sub = sub.drop_vars([c for c in sub.coords if not str(c).startswith(p)])
    names = set(sub.variables) | set(sub.dims)
    sub = sub.rename({n: n[len(p):] for n in names})
    sub.attrs = dict(ds.attrs.get(p + "attrs", {}))
    return sub


def compute(*, quick: bool = False) -> xr.Dataset:
    """Sample transitions for both cases (``flowgeom.transitions.sample_transitions``)."""
    cfg = _config(quick)
    parts, attrs = [], {}
    for k, (p, (widths, eps)) in enumerate(CASES.items()):
        problem = Problem.from_spectrum(S, widths)
        ds = sample_transitions(problem, cfg["n_samples"], init_scale=eps, seed=cfg["seed"] + k)
        parts.append(_prefixed(ds, p))
        attrs[p + "attrs"] = dict(ds.attrs)
    out = xr.merge(parts)
    out.attrs.update(attrs)
    return out


def plot(ds: xr.Dataset):
    """2 x 3 panels: loss curves, transition graph, jump times, for H = 1 and H = 2."""
    fig, axs = plt.subplots(2, 3, figsize=(10.5, 6.6), gridspec_kw={"width_ratios": [1.25, 1, 1]})
    for row, p in enumerate(CASES):
        sub = _unprefixed(ds, p)
        a = sub.attrs
        widths = tuple(a.get("widths", CASES[p][0]))
        H = len(widths) - 2
        ax = plot_loss_curves(sub, ax=axs[row, 0], max_curves=40)
        ax.set_title(f"H={H}, widths {widths}, $\\varepsilon$={a.get('init_scale', CASES[p][1]):g}: "
                     f"{a.get('n_trajectories', '?')} runs,\n{a.get('n_unfinished', '?')} unfinished, "
                     f"non-minimum sinks: {a.get('non_minimum_sinks') or 'none'}")
        ax = plot_transition_graph(sub, ax=axs[row, 1])
        path = " -> ".join(a.get("dominant_path", []))
        ax.set_title(f"dominant path ({100 * float(a.get('dominant_path_fraction', np.nan)):.0f}% of runs):\n{path}",
                     fontsize=7.5)
        ax = axs[row, 2]
        if "theory_t_jump" in sub:
            plot_jump_times(sub, ax=ax)
            ratio = sub["t_jump_ratio"].values
            ax.set_title(("exact theory" if a.get("theory_exact") else "order-of-magnitude theory")
                         + ":\nobserved/theory = " + ", ".join(f"{r:.2f}" for r in ratio), fontsize=7)
        else:
            ax.text(0.5, 0.5, "no theory", ha="center", va="center", transform=ax.transAxes)
    return fig


def main(argv=None):
    """Compute (or reuse the cache), plot, and write ``figures/fig07_transitions.png``."""
    return common.run(NAME, compute, plot, CONFIG, QUICK_CONFIG, argv, doc=__doc__)


if __name__ == "__main__":
    main()
