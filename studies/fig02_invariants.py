r"""Conservation of the Lemma 1 invariants by the flow, by two integrators, and their drift under gradient descent.

Paper: Lemma 1 (no figure in the paper): along the gradient flow of a deep linear network,
:math:`C_j = W_{j+1}^T W_{j+1} - W_j W_j^T` is constant for every j.

Caption. (a)-(c) Relative invariant drift :math:`\|c(t) - c(0)\| / (1 + \|c(0)\|)`
(c = all :math:`C_j` stacked, Frobenius norm) along the same ensembles integrated with the explicit
adaptive Dormand-Prince 5(4) scheme at rtol = 1e-6 and 1e-10, and with the invariant-preserving
2-stage Gauss-Legendre scheme (rtol = 1e-6). Lines: median over the ensemble, bands: min-max.
(a) H = 1, widths (5, 4, 3), s = (3, 2, 1), Gaussian initialization (scale 1); (b) the same from
balanced initializations (c(0) = 0); (c) H = 2, widths (4, 3, 3, 2), s = (2, 1). The explicit scheme's
drift grows with time and scales with its tolerance; Gauss-Legendre keeps the invariants to round-off.
(d) Discrete gradient descent does not conserve C: the largest drift :math:`\max_k \|C_k - C^0\|_2`
over a run (H = 1, Gaussian init) grows like :math:`\eta` (dashed: the a-priori bound
:math:`\delta = 2\eta(L(\theta_0) - L^*)` of ``flowgeom.integrate.safe_learning_rate``, which holds
for :math:`\eta \le \eta_{safe}` (dotted vertical line) and is still above the measurement beyond it).
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
from flowgeom.flow import SaveAt, gradient_descent, integrate  # noqa: E402
from flowgeom.linear import safe_learning_rate  # noqa: E402
from flowgeom.basins.samplers import sample_initializations  # noqa: E402

from studies import common  # noqa: E402

NAME = "fig02_invariants"
SEED = 2
CONFIG = dict(seed=SEED, n_samples=8, t1=60.0, n_save=120, lrs=[1e-3, 3e-3, 1e-2, 3e-2, 6e-2])
QUICK_CONFIG = dict(seed=SEED, n_samples=2, t1=5.0, n_save=12, lrs=[1e-2, 5e-2])

PROBLEMS = {"H1": ((5, 4, 3), (3.0, 2.0, 1.0)), "H2": ((4, 3, 3, 2), (2.0, 1.0))}
PANELS = [("H1", "gaussian"), ("H1", "balanced"), ("H2", "gaussian")]
METHODS = {  # label -> (method, rtol, atol)
    "dopri5 rtol=1e-6": ("dopri5", 1e-6, 1e-9),
    "dopri5 rtol=1e-10": ("dopri5", 1e-10, 1e-13),
    "Gauss-Legendre (invariant)": ("gauss-legendre", 1e-6, 1e-9),
}
INIT_SCALE = 1.0


def _config(quick: bool) -> dict:
    return QUICK_CONFIG if quick else CONFIG


def _drift(net, ys):
    """Relative drift ||c(t) - c(0)|| / (1 + ||c(0)||) at every save time, shape (N, n_save)."""
    c = net.conserved(ys)
    c0 = c[:, :1]
    return np.linalg.norm(c - c0, axis=-1) / (1 + np.linalg.norm(c0, axis=-1))


def compute(*, quick: bool = False) -> xr.Dataset:
    """Integrate the same ensembles with each method; run GD at several step sizes."""
    cfg = _config(quick)
    n = cfg["n_samples"]
    saveat = SaveAt(n_log=cfg["n_save"], t_first=1e-2)
    drift = np.full((len(PANELS), len(METHODS), n, cfg["n_save"] + 1), np.nan)
    reported = np.full((len(PANELS), len(METHODS), n), np.nan)
    steps = np.zeros((len(PANELS), len(METHODS), n), dtype=np.int64)
    ts = None
    for ip, (pkey, init) in enumerate(PANELS):
        widths, s = PROBLEMS[pkey]
        problem = Problem.from_spectrum(s, widths)
        net = problem.network()
        theta0 = sample_initializations(problem, init, n, scale=INIT_SCALE, seed=cfg["seed"] + ip)
        for im, (method, rtol, atol) in enumerate(METHODS.values()):
            tr = integrate(net, theta0, cfg["t1"], method=method, rtol=rtol, atol=atol, saveat=saveat, grad_tol=0.0)
            ts = tr.ts
            drift[ip, im] = _drift(net, tr.ys)
            reported[ip, im] = tr.invariant_drift
            steps[ip, im] = tr.n_steps
    # gradient descent (H = 1, Gaussian init): spectral drift of C vs the a-priori bound
    widths, s = PROBLEMS["H1"]
    problem = Problem.from_spectrum(s, widths)
    net = problem.network()
    theta0 = sample_initializations(problem, "gaussian", n, scale=INIT_SCALE, seed=cfg["seed"])
    safe = safe_learning_rate(net, theta0)
    lrs = np.asarray(cfg["lrs"], dtype=float)
    gd_drift = np.full((len(lrs), n), np.nan)
    gd_status = np.zeros((len(lrs), n), dtype=np.int64)
    C0 = net.invariants(theta0)[0]
    for k, lr in enumerate(lrs):
        g = gradient_descent(net, theta0, lr, t1=cfg["t1"], saveat=SaveAt(n_log=cfg["n_save"]), grad_tol=0.0)
        # the GD drift is monotone in k only on average: take the max over every saved iterate
        C = net.invariants(g.ys)[0]
        gd_drift[k] = np.nanmax(np.linalg.norm(C - C0[:, None], 2, axis=(-2, -1)), axis=1)
        gd_status[k] = g.status
    loss0 = net.loss(theta0)  # L* = 0 for this problem (d_1 >= d_y)
    return xr.Dataset(
        {
            "drift": (("panel", "scheme", "sample", "time"), drift),
            "reported_drift": (("panel", "scheme", "sample"), reported),
            "n_steps": (("panel", "scheme", "sample"), steps),
            "gd_drift": (("lr", "sample"), gd_drift),
            "gd_status": (("lr", "sample"), gd_status),
            "gd_bound_delta": (("lr", "sample"), 2 * lrs[:, None] * loss0[None, :]),
            "safe_lr": (("sample",), safe.lr),
            "loss0": (("sample",), loss0),
        },
        coords={
            "panel": [f"{p}/{i}" for p, i in PANELS],
            "scheme": list(METHODS),
            "time": ts,
            "lr": lrs,
        },
        attrs={"init_scale": INIT_SCALE, "problems": {k: [list(w), list(s)] for k, (w, s) in PROBLEMS.items()}},
    )


def plot(ds: xr.Dataset):
    """Drift vs time per method (three panels) and GD drift vs step size."""
    fig, axs = plt.subplots(2, 2, figsize=(7.6, 6.4))
    t = ds["time"].values
    colors = ["tab:orange", "tab:red", "tab:blue"]
    titles = {
        "H1/gaussian": "(a) H=1, (5,4,3), Gaussian init",
        "H1/balanced": "(b) H=1, (5,4,3), balanced init (c(0)=0)",
        "H2/gaussian": "(c) H=2, (4,3,3,2), Gaussian init",
    }
    for ax, panel in zip(axs.ravel()[:3], ds["panel"].values):
        for color, method in zip(colors, ds["scheme"].values):
            d = ds["drift"].sel(panel=panel, scheme=method).values[:, 1:]
            floor = 1e-17  # exact zeros (t = 0, or a drift below round-off) drawn at the axis floor
            d = np.maximum(d, floor)
            med = np.nanmedian(d, axis=0)
            steps = float(ds["n_steps"].sel(panel=panel, scheme=method).mean())
            ax.loglog(t[1:], med, color=color, label=f"{method} ({steps:.0f} steps)")
            ax.fill_between(t[1:], np.nanmin(d, axis=0), np.nanmax(d, axis=0), color=color, alpha=0.2, lw=0)
        final = ds["drift"].sel(panel=panel).values[..., -1]
        ax.set(xlabel="t", ylabel="$\\|c(t)-c(0)\\|/(1+\\|c(0)\\|)$", ylim=(1e-17, 1e-2))
        ax.set_title(titles.get(str(panel), str(panel)) + "\nfinal median drift: "
                     + ", ".join(f"{np.nanmedian(f):.0e}" for f in final))
        ax.legend(loc="upper left", fontsize=6)
    ax = axs[1, 1]
    lrs = ds["lr"].values
    gd = ds["gd_drift"].values
    for k, lr in enumerate(lrs):
        ax.loglog(np.full(gd.shape[1], lr), gd[k], ".", color="tab:purple", alpha=0.5, ms=4)
    ax.loglog(lrs, np.nanmedian(gd, axis=1), "-o", color="tab:purple", ms=3, label="measured max$_k\\|C_k-C^0\\|_2$ (median)")
    ax.loglog(lrs, np.nanmedian(ds["gd_bound_delta"].values, axis=1), "k--", lw=1,
              label="bound $\\delta=2\\eta L(\\theta_0)$ (median)")
    eta_safe = float(np.min(ds["safe_lr"].values))
    ax.axvline(eta_safe, color="0.4", ls=":", lw=1, label=f"$\\eta_{{safe}}$ = {eta_safe:.1e} (smallest)")
    # slope of log drift vs log eta
    ok = np.all(np.isfinite(gd), axis=1)
    slope = np.polyfit(np.log(lrs[ok]), np.log(np.nanmedian(gd[ok], axis=1)), 1)[0] if ok.sum() >= 2 else np.nan
    n_div = int(np.sum(ds["gd_status"].values == 2))
    ax.set(xlabel="GD step size $\\eta$", ylabel="invariant drift over the run")
    ax.set_title(f"(d) gradient descent, H=1, Gaussian init: drift $\\propto\\eta^{{{slope:.2f}}}$\n"
                 f"({n_div} diverged runs)")
    ax.legend(fontsize=6, loc="upper left")
    return fig


def main(argv=None):
    """Compute (or reuse the cache), plot, and write ``figures/fig02_invariants.png``."""
    return common.run(NAME, compute, plot, CONFIG, QUICK_CONFIG, argv, doc=__doc__)


if __name__ == "__main__":
    main()
