r"""Exponential convergence from an imbalanced start (Remark 1): which eigenvalue of C^0 sets the rate.

Paper: Remark 1: if :math:`C^0 = \bar W_2^T \bar W_2 - \bar W_1 \bar W_1^T` (d_1 x d_1) has at least d_y
positive eigenvalues, the flow converges to a global minimum "at the rate :math:`e^{-2\alpha t}` with
:math:`\alpha` the d_y-th smallest eigenvalue of :math:`C^0`". Its proof bounds
:math:`d\|\bar M\|_F^2/dt \le -2\lambda_{d_y}(C^0)\|\bar M\|_F^2` with eigenvalues sorted in decreasing
order (Weyl: :math:`\lambda_{\min}(\bar W_2 \bar W_2^T) = \lambda_{d_y}(\bar W_2^T \bar W_2) \ge
\lambda_{d_y}(C^0)`), i.e. :math:`\alpha` is the d_y-th *largest* eigenvalue. No figure in the paper.

Caption. H = 1, s = (3, 2, 1); widths (5, 4, 3) and (4, 3, 3); initializations :math:`W_2 = a G_2`,
:math:`W_1 = b G_1` (G Gaussian, a > b drawn at random) kept when :math:`C^0` has >= d_y positive
eigenvalues. (a) One run: :math:`L(t)/L(0)` and the two readings of the bound
:math:`e^{-2\alpha t}`. (b) For every run, the largest rate the run actually obeys,
:math:`\alpha_{emp} = \min_t \log(L(0)/L(t)) / (2t)`, against :math:`\alpha` of each reading; the
bound :math:`L(t) \le L(0)e^{-2\alpha t}` holds exactly when the point lies on or below the
diagonal. (c) The asymptotic rate (late-time slope of :math:`-\tfrac12 \log L`) vs the proof's
:math:`\alpha`: the bound is loose by the factor shown.
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
from flowgeom.flow import SaveAt, integrate  # noqa: E402
from flowgeom.basins.samplers import sample_initializations  # noqa: E402

from studies import common  # noqa: E402

NAME = "fig06_rates"
SEED = 6
SHAPES = [(5, 4, 3), (4, 3, 3)]
S = (3.0, 2.0, 1.0)
CONFIG = dict(seed=SEED, n_per_shape=60, t1=40.0, n_save=400)
QUICK_CONFIG = dict(seed=SEED, n_per_shape=4, t1=10.0, n_save=60)
RTOL, ATOL = 1e-11, 1e-14
LOSS_FLOOR = 1e-13  # relative loss below which the measured L(t) is dominated by round-off; not used for rates
REL_TOL = 1e-6  # a bound "holds" if L(t) <= L(0) exp(-2 alpha t) (1 + REL_TOL)


def _config(quick: bool) -> dict:
    return QUICK_CONFIG if quick else CONFIG


def _initial_states(net, n, rng, seed):
    """W2 = a G2, W1 = b G1 with a in [0.8, 2], b in [0.05, a/2]; keep those with >= d_y positive eigenvalues of C^0."""
    dy = net.widths[-1]
    out = []
    k = 0
    for _ in range(50):  # each round keeps a fixed positive fraction of 4n draws; 50 rounds never run out in practice
        if len(out) >= n:
            break
        g = sample_initializations(net, "gaussian", 4 * n, scale=1.0, seed=seed, start=k)
        k += 4 * n
        W1, W2 = net.unpack(g)
        a = rng.uniform(0.8, 2.0, size=(len(g), 1, 1))
        b = rng.uniform(0.05, 1.0, size=(len(g), 1, 1)) * a / 2
        theta = net.pack([b * W1, a * W2])
        C0 = net.invariants(theta)[0]
        lam = np.linalg.eigvalsh(C0)
        ok = np.sum(lam > 1e-9, axis=-1) >= dy
        out.extend(theta[ok])
    if len(out) < n:
        raise RuntimeError(f"only {len(out)} of {n} initializations had >= d_y positive eigenvalues of C^0")
    return np.asarray(out[:n])


def compute(*, quick: bool = False) -> xr.Dataset:
    """Integrate the ensembles tightly and measure the rates each run obeys."""
    cfg = _config(quick)
    rng = np.random.default_rng(cfg["seed"])
    parts = []
    for si, w in enumerate(SHAPES):
        problem = Problem.from_spectrum(S[: w[-1]], w)
        net = problem.network()
        dy, d1 = w[-1], w[1]
        theta0 = _initial_states(net, cfg["n_per_shape"], rng, cfg["seed"] + si)
        lam_desc = np.sort(np.linalg.eigvalsh(net.invariants(theta0)[0]), axis=-1)[:, ::-1]
        alpha_largest = lam_desc[:, dy - 1]  # the proof: lambda_{d_y} in decreasing order
        alpha_smallest = lam_desc[:, d1 - dy]  # the statement: d_y-th smallest = index d_y in increasing order
        tr = integrate(net, theta0, cfg["t1"], saveat=SaveAt(ts=np.linspace(0, cfg["t1"], cfg["n_save"])),
                       rtol=RTOL, atol=ATOL, grad_tol=0.0)
        t = tr.ts
        rel = tr.loss / tr.loss[:, :1]
        valid = (t[None, :] > 0) & (rel > LOSS_FLOOR) & np.isfinite(rel)
        with np.errstate(divide="ignore", invalid="ignore"):
            rate = np.where(valid, -np.log(rel) / (2 * t[None, :]), np.inf)
        alpha_emp = np.min(rate, axis=1)
        # asymptotic rate: slope of -1/2 log L over the last decade above the floor
        asym = np.full(len(theta0), np.nan)
        for i in range(len(theta0)):
            v = np.flatnonzero(valid[i] & (rel[i] < 1e-6))
            if v.size >= 5:
                asym[i] = -0.5 * np.polyfit(t[v], np.log(rel[i, v]), 1)[0]
        parts.append(xr.Dataset(
            {
                "rel_loss": (("run", "time"), rel),
                "alpha_largest": (("run",), alpha_largest),
                "alpha_smallest": (("run",), alpha_smallest),
                "alpha_emp": (("run",), alpha_emp),
                "alpha_asymptotic": (("run",), asym),
                "c0_eigs": (("run", "eig"), np.pad(lam_desc, ((0, 0), (0, 4 - d1)), constant_values=np.nan)),
                "status": (("run",), tr.status.astype(np.int64)),
            },
            coords={"time": t},
        ).expand_dims(shape=[",".join(map(str, w))]))
    ds = xr.concat(parts, dim="shape")
    ds.attrs.update(singular_values=list(S), rtol=RTOL, atol=ATOL, loss_floor=LOSS_FLOOR, rel_tol=REL_TOL)
    return ds


def plot(ds: xr.Dataset):
    """Three panels: one run vs both bounds, alpha_emp vs both readings, asymptotic rate vs the proof's alpha."""
    fig, axs = plt.subplots(1, 3, figsize=(10.0, 3.6))
    t = ds["time"].values
    shapes = list(ds["shape"].values)
    d0 = ds.sel(shape=shapes[0])
    # the run where the statement's reading fails the most (or the first run)
    gap = d0["alpha_smallest"].values - d0["alpha_emp"].values
    i = int(np.nanargmax(gap))
    ax = axs[0]
    ax.semilogy(t, d0["rel_loss"].values[i], color="k", lw=1.6, label="measured $L(t)/L(0)$")
    al, asm = float(d0["alpha_largest"][i]), float(d0["alpha_smallest"][i])
    ax.semilogy(t, np.exp(-2 * al * t), "--", color="tab:blue", label=f"$d_y$-th largest: $\\alpha$={al:.2f}")
    ax.semilogy(t, np.exp(-2 * asm * t), ":", color="tab:red", lw=1.6, label=f"$d_y$-th smallest: $\\alpha$={asm:.2f}")
    below = np.flatnonzero(d0["rel_loss"].values[i] < 1e-13)
    t_end = t[below[0]] * 1.3 if below.size else t[-1]
    ax.set(xlabel="t", ylabel="$L(t)/L(0)$", ylim=(1e-14, 2), xlim=(0, t_end))
    ax.set_title(f"(a) widths ({shapes[0]}), one run")
    ax.legend(fontsize=6.5, loc="lower left")
    ax = axs[1]
    tol = float(ds.attrs["rel_tol"])
    txt = []
    markers = ["o", "s"]
    for k, shp in enumerate(shapes):
        d = ds.sel(shape=shp)
        emp = d["alpha_emp"].values
        for name, color, lab in (("alpha_largest", "tab:blue", "$d_y$-th largest"),
                                 ("alpha_smallest", "tab:red", "$d_y$-th smallest")):
            a = d[name].values
            ok = np.isfinite(a)
            ax.plot(a[ok], emp[ok], markers[k], color=color, ms=3.5, mfc="none" if k else color, alpha=0.7,
                    label=f"({shp}) {lab}")
            viol = int(np.sum(a[ok] > emp[ok] * (1 + tol) + tol))
            txt.append(f"({shp}) {lab.replace('$d_y$-th ', '')}: {viol}/{int(ok.sum())} violated")
    vals = np.concatenate([ds[v].values.ravel() for v in ("alpha_smallest", "alpha_largest", "alpha_emp")])
    vals = vals[np.isfinite(vals) & (vals > 0)]
    lim = [vals.min() / 1.5, vals.max() * 1.5]
    ax.loglog(lim, lim, "k-", lw=0.8)
    ax.fill_between(lim, lim, [lim[1]] * 2, color="0.9", zorder=0)
    ax.text(lim[0] * 1.5, lim[1] / 1.5, "bound holds above the diagonal", fontsize=6.5, va="top")
    ax.set(xlim=lim, ylim=lim, xlabel="$\\alpha$ from $C^0$", ylabel="$\\alpha_{emp}=\\min_t\\log(L_0/L_t)/2t$")
    ax.set_title("(b) " + "\n".join([", ".join(txt[:2]), ", ".join(txt[2:])]), fontsize=6.5)
    ax.legend(fontsize=5.5, loc="lower right")
    ax = axs[2]
    ratios = []
    for k, shp in enumerate(shapes):
        d = ds.sel(shape=shp)
        a, asy = d["alpha_largest"].values, d["alpha_asymptotic"].values
        ax.plot(a, asy, markers[k], ms=3.5, color="tab:blue", mfc="none" if k else "tab:blue", label=f"({shp})")
        ratios.append(np.nanmedian(asy / a))
    lim2 = [0, np.nanmax([float(ds["alpha_asymptotic"].max()), float(ds["alpha_largest"].max())]) * 1.05]
    ax.plot(lim2, lim2, "k-", lw=0.8)
    ax.set(xlim=lim2, ylim=lim2, xlabel="$\\alpha = \\lambda_{d_y}^{\\downarrow}(C^0)$ (proof)",
           ylabel="asymptotic rate (late slope of $-\\frac{1}{2}\\log L$)")
    ax.set_title("(c) late rate / proof's $\\alpha$, median: " + ", ".join(f"{r:.1f}" for r in ratios))
    ax.legend(fontsize=6.5, loc="lower right")
    n_all = n_bad = n_bad_proof = 0
    for shp in shapes:
        d = ds.sel(shape=shp)
        emp = d["alpha_emp"].values
        n_all += emp.size
        n_bad += int(np.sum(d["alpha_smallest"].values > emp * (1 + tol) + tol))
        n_bad_proof += int(np.sum(d["alpha_largest"].values > emp * (1 + tol) + tol))
    fig.suptitle(f"Remark 1 as stated ($d_y$-th smallest eigenvalue of $C^0$) is contradicted in {n_bad}/{n_all} runs; "
                 f"with the proof's $d_y$-th largest: {n_bad_proof}/{n_all}", fontsize=8.5)
    return fig


def main(argv=None):
    """Compute (or reuse the cache), plot, and write ``figures/fig06_rates.png``."""
    return common.run(NAME, compute, plot, CONFIG, QUICK_CONFIG, argv, doc=__doc__)


if __name__ == "__main__":
    main()
