r"""Bounded trajectories and convergence to critical points (Proposition 1), with the explicit a-priori bound.

Paper: Proposition 1 (no figure): every gradient-flow trajectory is bounded and converges to a critical
point (at rate at least :math:`t^{-\alpha}`); its proof for H = 1 bounds :math:`F = \|W_1\|_F^2 +
\|W_2\|_F^2` using the conserved :math:`C = W_2^T W_2 - W_1 W_1^T`, and the paper notes that this gives
an a-priori step size for gradient descent.

Caption. H = 1, widths (5, 4, 3), s = (3, 2, 1); ensembles from Gaussian initializations of scale 0.01,
1 and 3, Haar-orthogonal and balanced ones. (a) :math:`F(t)/F_{\max}` with
:math:`F_{\max} = \max(F(0), c_1/c_2)` from ``flowgeom.integrate.flow_norm_bound``
(:math:`dF/dt \le c_1 F - c_2 F^2`); the bound holds if every curve stays below 1. (b) The largest
:math:`F` reached vs the bound :math:`F_{\max}` (how loose it is). (c) Gradient norm along the flow:
trajectories converge (status CONVERGED at :math:`\|\nabla L\| \le 10^{-8}`, dopri5 at rtol 1e-10); small
initializations linger at saddles first. (d) Gradient descent with the a-priori step size
:math:`\eta_{safe}` of ``safe_learning_rate`` and with multiples of it: the largest
:math:`F_k / F^{GD}_{\max}` over the run and whether the loss ever increased.
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
from flowgeom.flow import SaveAt, Status, gradient_descent, integrate  # noqa: E402
from flowgeom.linear import flow_norm_bound, safe_learning_rate  # noqa: E402
from flowgeom.basins.samplers import sample_initializations  # noqa: E402

from studies import common  # noqa: E402

NAME = "fig03_boundedness"
SEED = 3
WIDTHS = (5, 4, 3)
S = (3.0, 2.0, 1.0)
INITS = [("gaussian", 0.01), ("gaussian", 1.0), ("gaussian", 3.0), ("orthogonal", 1.0), ("balanced", 1.0)]
CONFIG = dict(seed=SEED, n_per_init=16, t1=400.0, n_save=200, gd_factors=[1, 3, 10, 30, 100], gd_t1=40.0)
QUICK_CONFIG = dict(seed=SEED, n_per_init=2, t1=30.0, n_save=20, gd_factors=[1, 10], gd_t1=4.0)
GRAD_TOL = 1e-8
# Tight tolerances: at the default rtol = 1e-6 the explicit scheme's step-size noise near a minimum
# keeps ||grad L|| at ~1e-6..1e-5 (measured), so a gradient tolerance could never be met.
RTOL, ATOL = 1e-10, 1e-12


def _config(quick: bool) -> dict:
    return QUICK_CONFIG if quick else CONFIG


def compute(*, quick: bool = False) -> xr.Dataset:
    """Integrate every ensemble, evaluate F(t) and the a-priori bounds; run GD at multiples of the safe step."""
    cfg = _config(quick)
    problem = Problem.from_spectrum(S, WIDTHS)
    net = problem.network()
    n = cfg["n_per_init"]
    theta0 = np.concatenate([
        sample_initializations(problem, name, n, scale=scale, seed=cfg["seed"] + k)
        for k, (name, scale) in enumerate(INITS)
    ])
    group = np.repeat(np.arange(len(INITS)), n)
    bound = flow_norm_bound(net, theta0)
    tr = integrate(net, theta0, cfg["t1"], saveat=SaveAt(n_log=cfg["n_save"], t_first=1e-3), grad_tol=GRAD_TOL,
                   rtol=RTOL, atol=ATOL)
    F = np.sum(tr.ys**2, axis=-1)
    # gradient descent at multiples of the (per-batch) safe step, Gaussian scale-1 ensemble
    sel = group == 1
    safe = safe_learning_rate(net, theta0[sel])
    eta_safe = float(np.min(safe.lr))
    factors = np.asarray(cfg["gd_factors"], dtype=float)
    gd_ratio = np.full((len(factors), int(sel.sum())), np.nan)
    gd_increase = np.zeros((len(factors), int(sel.sum())), dtype=bool)
    gd_status = np.zeros((len(factors), int(sel.sum())), dtype=np.int64)
    for k, fac in enumerate(factors):
        g = gradient_descent(net, theta0[sel], fac * eta_safe, t1=cfg["gd_t1"], saveat=SaveAt(n_log=400),
                             grad_tol=GRAD_TOL)
        Fk = np.sum(g.ys**2, axis=-1)
        gd_ratio[k] = np.nanmax(Fk, axis=1) / safe.F_max
        dl = np.diff(g.loss, axis=1)
        gd_increase[k] = np.any(dl > 1e-12 * np.maximum(1.0, np.abs(g.loss[:, :-1])), axis=1)
        gd_status[k] = g.status
    return xr.Dataset(
        {
            "F": (("sample", "time"), F),
            "grad_norm": (("sample", "time"), tr.grad_norm),
            "loss": (("sample", "time"), tr.loss),
            "F_max": (("sample",), bound.F_max),
            "F0": (("sample",), bound.F0),
            "C0_norm": (("sample",), bound.C0_norm),
            "group": (("sample",), group),
            "status": (("sample",), tr.status.astype(np.int64)),
            "t_final": (("sample",), tr.t_final),
            "loss_final": (("sample",), tr.loss_final),
            "gd_ratio": (("factor", "gd_sample"), gd_ratio),
            "gd_loss_increased": (("factor", "gd_sample"), gd_increase),
            "gd_status": (("factor", "gd_sample"), gd_status),
        },
        coords={"time": tr.ts, "factor": factors, "init": [f"{a} {b:g}" for a, b in INITS]},
        attrs={"widths": list(WIDTHS), "singular_values": list(S), "grad_tol": GRAD_TOL, "eta_safe": eta_safe,
               "integrator": "dopri5", "rtol": tr.rtol, "atol": tr.atol},
    )


def plot(ds: xr.Dataset):
    """Four panels: F/F_max, sup F vs F_max, gradient norm, GD with a-priori step size."""
    fig, axs = plt.subplots(2, 2, figsize=(7.6, 6.6))
    t = ds["time"].values
    colors = plt.get_cmap("tab10").colors
    inits = list(ds["init"].values)
    group = ds["group"].values
    ratio = ds["F"].values / ds["F_max"].values[:, None]
    ax = axs[0, 0]
    for i in range(ratio.shape[0]):
        ax.semilogx(t[1:], ratio[i, 1:], color=colors[group[i]], lw=0.7, alpha=0.7)
    ax.axhline(1.0, color="k", lw=1, ls="--")
    worst = float(np.nanmax(ratio))
    ax.set(xlabel="t", ylabel="$F(t)/F_{\\max}$", ylim=(0, 1.1))
    ax.set_title(f"(a) $F=\\|W_1\\|^2+\\|W_2\\|^2$ vs the a-priori bound\nmax over all runs of "
                 f"$F(t)/F_{{\\max}}$ = {worst:.3f} ({'holds' if worst <= 1 + 1e-9 else 'VIOLATED'})")
    for k, lab in enumerate(inits):
        ax.plot([], [], color=colors[k], label=lab)
    ax.legend(fontsize=6, loc="lower left")
    ax = axs[0, 1]
    supF = np.nanmax(ds["F"].values, axis=1)
    Fm = ds["F_max"].values
    for k, lab in enumerate(inits):
        m = group == k
        ax.loglog(Fm[m], supF[m], "o", color=colors[k], ms=3, label=lab)
    lo, hi = min(supF.min(), Fm.min()) * 0.7, max(supF.max(), Fm.max()) * 1.4
    ax.loglog([lo, hi], [lo, hi], "k--", lw=1, label="sup F = $F_{\\max}$")
    ax.set(xlabel="a-priori bound $F_{\\max}=\\max(F(0), c_1/c_2)$", ylabel="$\\sup_t F(t)$", xlim=(lo, hi),
           ylim=(lo, hi))
    r = supF / Fm
    ax.set_title(f"(b) tightness: sup F / $F_{{\\max}}$ from {r.min():.2g} to {r.max():.2g}\n"
                 f"(median {np.median(r):.2g})")
    ax.legend(fontsize=6, loc="upper left")
    ax = axs[1, 0]
    g = ds["grad_norm"].values
    for i in range(g.shape[0]):
        ax.loglog(t[1:], np.maximum(g[i, 1:], 1e-16), color=colors[group[i]], lw=0.7, alpha=0.7)
    ax.axhline(ds.attrs["grad_tol"], color="k", lw=0.8, ls=":")
    st = ds["status"].values
    n_conv = int(np.sum(st == int(Status.CONVERGED)))
    ax.set(xlabel="t", ylabel="$\\|\\nabla L(\\theta(t))\\|$", ylim=(1e-12, None))
    ax.set_title(f"(c) gradient norm: {n_conv}/{len(st)} reached $\\|\\nabla L\\|\\leq$"
                 f"{ds.attrs['grad_tol']:.0e} by t = {ds['time'].values[-1]:.0f};\nthe others still converging "
                 f"(largest final loss {np.nanmax(ds['loss_final'].values):.1e})")
    ax = axs[1, 1]
    fac = ds["factor"].values
    gr = ds["gd_ratio"].values
    for k, f in enumerate(fac):
        x = np.full(gr.shape[1], f) * np.exp(0.05 * np.linspace(-1, 1, gr.shape[1]))
        inc = ds["gd_loss_increased"].values[k]
        div = ds["gd_status"].values[k] == int(Status.DIVERGED)
        y = np.where(div, 30.0, np.minimum(gr[k], 30.0))  # diverged runs drawn at the top edge
        ax.loglog(x[~inc], y[~inc], "o", color="tab:blue", ms=3)
        ax.loglog(x[inc], y[inc], "x", color="tab:red", ms=4)
        if div.any():
            ax.text(f, 12, f"{div.sum()}\ndiverged", ha="center", fontsize=6, color="tab:red")
    ax.plot([], [], "o", color="tab:blue", ms=3, label="loss monotone")
    ax.plot([], [], "x", color="tab:red", ms=4, label="loss increased at some step")
    ax.axhline(1.0, color="k", lw=1, ls="--", label="$F^{GD}_{\\max}$ (valid for factor $\\leq 1$)")
    ax.set(xlabel=f"GD step / $\\eta_{{safe}}$  ($\\eta_{{safe}}$ = {ds.attrs['eta_safe']:.1e})",
           ylabel="$\\max_k F_k / F^{GD}_{\\max}$", ylim=(0.1, 40))
    n_inc = ds["gd_loss_increased"].values.sum(axis=1)
    ax.set_title(f"(d) GD at multiples of the a-priori step ({gr.shape[1]} runs);\nruns whose loss increased: "
                 + ", ".join(f"{int(c)} at {f:g}x" for c, f in zip(n_inc, fac)))
    ax.legend(fontsize=6, loc="center left")
    return fig


def main(argv=None):
    """Compute (or reuse the cache), plot, and write ``figures/fig03_boundedness.png``."""
    return common.run(NAME, compute, plot, CONFIG, QUICK_CONFIG, argv, doc=__doc__)


if __name__ == "__main__":
    main()
