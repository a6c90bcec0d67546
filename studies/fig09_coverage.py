r"""How complete is a searched atlas? Coverage curves of nonlinear networks, and an exactly solvable check.

Paper: beyond the paper (issue 16: searched atlases you can trust). No figure in the paper.

Caption. (a) Accumulation curves of the multi-start critical-point search
(``flowgeom.critical.SearchedAtlas``): distinct critical classes found against searches run, in search
order, for tanh and softplus networks (``flowgeom.models.mlp.mlp_for_problem``) on the whitened canonical
data of widths (5, 4, 3), s = (3, 2, 1) and of widths (6, 5, 4), s = (4, 3, 2, 1). A search is one random
start or one descent run (its plateau points); the budget is raised in batches until the Good–Turing
estimate of the probability that one more search finds a new class, :math:`Q_1/T` (classes found by one
search over searches), is below 5 % or the budget is spent; the legend gives the final estimate and the
number of distinct gradient-flat points (refinements that stalled or ran out of iterations with the
gradient in the Hessian's near-kernel, Frye et al. 2021: not critical, never counted as saddles; for these
networks they are mostly slow drifts of saturating units, :math:`\|\nabla L\| \sim 10^{-6}` to
:math:`10^{-3}`). (b) A diagonal linear network
:math:`f(x) = \langle u \odot v, x\rangle` on Gaussian least squares (n = 20, d = 5), gradient flow from
the initialization of scale :math:`\alpha` of Pesme & Flammarion (2023): loss against rescaled time
:math:`\tau = t/\ln(1/\alpha)`; dashed: the jump times and plateau values predicted by their Algorithm 1
(``flowgeom.models.diagonal_theory.saddle_sequence``). (c) Observed rescaled jump times (loss midpoint
crossings of the detected plateaus, ``observed_saddle_sequence``) against the prediction: they converge
as :math:`\alpha \to 0`, at the rate :math:`1/\ln(1/\alpha)`.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the `studies` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from flowgeom import Problem
from flowgeom.critical import SearchedAtlas
from flowgeom.flow import SaveAt, integrate
from flowgeom.models import diagonal_theory as dt
from flowgeom.models.diagonal import DiagonalLinearNetwork
from flowgeom.models.mlp import mlp_for_problem
from studies import common

NAME = "fig09_coverage"
SEED = 9
NETWORKS = {  # case -> (activation, widths, s)
    "tanh_small": ("tanh", (5, 4, 3), (3.0, 2.0, 1.0)),
    "softplus_small": ("softplus", (5, 4, 3), (3.0, 2.0, 1.0)),
    "tanh_large": ("tanh", (6, 5, 4), (4.0, 3.0, 2.0, 1.0)),
    "softplus_large": ("softplus", (6, 5, 4), (4.0, 3.0, 2.0, 1.0)),
}
CONFIG = dict(seed=SEED, n_starts=24, max_starts=192, coverage_target=0.05, n_steps=2000, measure_dimension=True,
              alphas=[1e-4, 1e-6, 1e-10], n_tau=3001, diag_seed=5)
QUICK_CONFIG = dict(seed=SEED, n_starts=8, max_starts=16, coverage_target=0.05, n_steps=200, measure_dimension=False,
                    alphas=[1e-4], n_tau=301, diag_seed=5)


def _diagonal_problem(seed, n=20, d=5, noise=0.05):
    """Gaussian design, target beta* = (2, -1, 0.5, 0, 0) plus noise (tests/test_diagonal.py's monotone problem)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    bstar = np.zeros(d)
    bstar[:3] = [2.0, -1.0, 0.5]
    return X, X @ bstar + noise * rng.standard_normal(n)


def compute(*, quick: bool = False) -> xr.Dataset:
    """Coverage of four searched atlases; predicted and simulated saddle sequences of a diagonal network."""
    cfg = QUICK_CONFIG if quick else CONFIG
    data, attrs = {}, {}
    for case, (act, widths, s) in NETWORKS.items():
        model = mlp_for_problem(Problem.from_spectrum(s, widths), act)
        atlas = SearchedAtlas(model, n_starts=cfg["n_starts"], max_starts=cfg["max_starts"], seed=cfg["seed"],
                              coverage_target=cfg["coverage_target"], n_steps=cfg["n_steps"],
                              measure_dimension=cfg["measure_dimension"])
        cov = atlas.coverage()
        print(f"[{NAME}] {case}: {cov.summary()}")
        data[f"{case}_classes"] = (f"{case}_search", cov.curve_classes)
        data[f"{case}_searches"] = (f"{case}_search", cov.curve_searches)
        attrs[f"{case}_p_new"] = float(cov.p_new)
        attrs[f"{case}_rounds"] = int(cov.rounds)
        attrs[f"{case}_n_params"] = int(model.n_params)
        attrs[f"{case}_n_gradient_flat"] = sum(cs.kind == "gradient_flat" for cs in atlas.sets())
        attrs[f"{case}_n_saddles"] = sum(cs.kind == "strict_saddle" for cs in atlas.sets())
    # diagonal linear network: Algorithm 1 of Pesme & Flammarion against simulated flows
    X, y = _diagonal_problem(cfg["diag_seed"])
    m = DiagonalLinearNetwork(X, y)
    sq = [sd for sd in dt.saddle_sequence(X, y) if sd.t < 10.0]
    taus = np.linspace(0.0, sq[-1].t + 1.0, cfg["n_tau"])
    data["pred_t"] = ("saddle", np.array([sd.t for sd in sq]))
    data["pred_loss"] = ("saddle", np.array([sd.loss for sd in sq]))
    data["pred_support"] = ("saddle", np.array([str(sd.support) for sd in sq], dtype=object))
    losses, jumps = [], []
    for alpha in cfg["alphas"]:
        L = np.log(1.0 / alpha)
        tr = integrate(m, m.small_init(alpha), taus[-1] * L, rtol=1e-10, atol=1e-14 * alpha,
                       saveat=SaveAt(ts=taus * L), grad_tol=0.0, max_steps=100_000)
        loss = tr.loss[0]
        obs = dt.observed_saddle_sequence(taus, m.beta(tr.ys[0]), loss)
        tj = np.full(len(sq), np.nan)  # matched by support (a plateau missed at large alpha stays NaN)
        for k, sd in enumerate(sq):
            hit = [p.t_jump for p in obs if p.support == sd.support]
            if hit:
                tj[k] = hit[0]
        losses.append(loss)
        jumps.append(tj)
        attrs[f"observed_supports_alpha_{alpha:g}"] = [str(p.support) for p in obs]
    data["loss"] = (("alpha", "tau"), np.array(losses))
    data["obs_t"] = (("alpha", "saddle"), np.array(jumps))
    return xr.Dataset(data, coords={"alpha": np.array(cfg["alphas"], dtype=float), "tau": taus}, attrs=attrs)


def plot(ds: xr.Dataset):
    """(a) accumulation curves, (b) diagonal loss against rescaled time, (c) jump times."""
    fig, axs = plt.subplots(1, 3, figsize=(11.0, 3.6), constrained_layout=True)
    ax = axs[0]
    styles = {"tanh": "tab:red", "softplus": "tab:purple"}
    for case, (act, widths, _) in NETWORKS.items():
        ls = "-" if case.endswith("small") else "--"
        ax.step(ds[f"{case}_searches"].values, ds[f"{case}_classes"].values, where="post", color=styles[act], ls=ls,
                label=(f"{act} {widths} (n={ds.attrs[f'{case}_n_params']}): "
                       f"$\\hat p_{{new}}$={ds.attrs[f'{case}_p_new']:.2f}, "
                       f"{ds.attrs[f'{case}_n_gradient_flat']} gradient-flat"))
    ax.set(xlabel="searches run", ylabel="distinct critical classes found")
    ax.set_title("(a) coverage of the searched atlases", fontsize=9)
    ax.legend(fontsize=6, loc="upper left")
    ax = axs[1]
    for i, alpha in enumerate(ds.alpha.values):
        ax.plot(ds.tau.values, ds["loss"].values[i], lw=1.0, label=f"alpha = {alpha:g}")
    for t, L in zip(ds.pred_t.values, ds.pred_loss.values):
        ax.axvline(t, color="0.5", ls=":", lw=0.7)
        ax.axhline(L, color="0.5", ls="--", lw=0.5)
    ax.set(xlabel=r"$\tau = t / \ln(1/\alpha)$", ylabel="loss", yscale="log")
    ax.set_title("(b) diagonal network: flow vs predicted saddles", fontsize=9)
    ax.legend(fontsize=7)
    ax = axs[2]
    pred = ds.pred_t.values[1:]
    for i, alpha in enumerate(ds.alpha.values):
        ax.plot(pred, ds["obs_t"].values[i, 1:], "o", ms=4, label=f"alpha = {alpha:g}")
    lim = [0.0, float(np.nanmax(pred)) * 1.1]
    ax.plot(lim, lim, color="0.4", lw=0.7)
    ax.set(xlabel="predicted jump time (Algorithm 1)", ylabel="observed jump time", xlim=lim, ylim=lim)
    ax.set_title("(c) rescaled jump times", fontsize=9)
    ax.legend(fontsize=7)
    return fig


def main(argv=None):
    """Compute (or reuse the cache), plot, and write ``figures/fig09_coverage.png``."""
    return common.run(NAME, compute, plot, CONFIG, QUICK_CONFIG, argv, doc=__doc__)


if __name__ == "__main__":
    main()
