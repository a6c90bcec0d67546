r"""The loss landscape of the smallest deep linear networks (numerical counterpart of the paper's Figure 2).

Paper: Liao, Chitour, Couillet, Figure 2 ("a geometric vision of the loss landscape"), Proposition 2.

Caption. (a) Scalar network, widths (1, 1, 1), :math:`L = \tfrac12 (s - w_2 w_1)^2`, s = 1: streamlines of
:math:`-\nabla L`, the manifold of global minima :math:`w_1 w_2 = s` (two branches), the saddle at the
origin, its stable set (the line :math:`w_2 = -w_1`, checked by integrating from points on it), level sets
of the Lemma 1 invariant :math:`c = w_2^2 - w_1^2` (dotted) and integrated trajectories, which stay on
them. (b) Distance to the saddle along trajectories started on the stable line (delta = 0) and at distance
delta off it: on the line the flow converges to the saddle at rate :math:`e^{-st}`; off it, the trajectory
lingers for a time :math:`\approx \log(1/\delta)/s` and leaves for a minimum. (c) 2x2x2 network, s = (2, 1):
the balanced diagonal plane :math:`W_1 = W_2 = \mathrm{diag}(x, y)` is invariant under the 8-dimensional
flow (measured off-plane velocity printed) and meets every stratum of critical points; Hessian inertia
:math:`(n_-, n_0, n_+)` of the full 8x8 Hessian is given at each. (d) A plane through the saddle
:math:`p \in \{0\}` spanned by its unstable Hessian eigenvector u (eigenvalue -1, the mode-2 direction)
and a zero-eigenvalue eigenvector z (tangent to the stratum): loss contours on that plane and the
projections onto it of 8-D trajectories started on it (they leave the plane: projections only).
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

from flowgeom import DeepLinearNetwork, Problem  # noqa: E402
from flowgeom.linear.strata import enumerate_strata  # noqa: E402
from flowgeom.flow import SaveAt, integrate  # noqa: E402
from flowgeom.critical.linearization import hessian_inertia  # noqa: E402

from studies import common  # noqa: E402

NAME = "fig01_landscape"
SEED = 20261126
S_SCALAR = 1.0
S_2X2 = (2.0, 1.0)
CONFIG = dict(seed=SEED, grid=41, n_traj=14, deltas=[1e-2, 1e-4, 1e-6, 1e-8], t1=40.0, n_save=400, slice_grid=61)
QUICK_CONFIG = dict(seed=SEED, grid=9, n_traj=4, deltas=[1e-2, 1e-6], t1=20.0, n_save=40, slice_grid=9)

BOX = 2.0  # half-width of the scalar panel
BOX2 = 1.9  # half-width of the 2x2x2 invariant plane panel
RTOL, ATOL = 1e-10, 1e-12  # tight: the trajectories are compared with exact level sets


def _config(quick: bool) -> dict:
    return QUICK_CONFIG if quick else CONFIG


def _scalar(cfg, rng):
    net = DeepLinearNetwork.canonical((1, 1, 1), [S_SCALAR])
    g = np.linspace(-BOX, BOX, cfg["grid"])
    W1, W2 = np.meshgrid(g, g, indexing="xy")  # x = w1, y = w2
    theta = np.stack([W1, W2], axis=-1)
    field = -net.grad(theta)
    ts = np.linspace(0.0, cfg["t1"], cfg["n_save"])
    sa = SaveAt(ts=ts)
    # trajectories from a ring of random starts (angles seeded)
    phi = np.sort(rng.uniform(0, 2 * np.pi, cfg["n_traj"]))
    r0 = rng.uniform(1.2, 1.9, cfg["n_traj"])
    starts = np.stack([r0 * np.cos(phi), r0 * np.sin(phi)], axis=-1)
    tr = integrate(net, starts, cfg["t1"], saveat=sa, rtol=RTOL, atol=ATOL, grad_tol=0.0)
    c0 = starts[:, 1] ** 2 - starts[:, 0] ** 2
    c_along = tr.ys[..., 1] ** 2 - tr.ys[..., 0] ** 2
    inv_err = np.nanmax(np.abs(c_along - c0[:, None]), axis=1)
    # stable-set check: starts on w2 = -w1 (delta = 0) and offset by delta along the unstable direction (1,1)/sqrt2
    a = 1.5
    on_line = np.array([[a, -a], [-a, a], [0.5, -0.5]])
    deltas = np.asarray(cfg["deltas"], dtype=float)
    off = np.array([a, -a]) + deltas[:, None] * np.array([1.0, 1.0]) / np.sqrt(2)
    chk = integrate(net, np.concatenate([on_line, off]), cfg["t1"], saveat=sa, rtol=RTOL, atol=ATOL, grad_tol=0.0)
    dist = np.linalg.norm(chk.ys, axis=-1)
    return xr.Dataset(
        {
            "scalar_u": (("gy", "gx"), field[..., 0]),
            "scalar_v": (("gy", "gx"), field[..., 1]),
            "scalar_loss": (("gy", "gx"), net.loss(theta)),
            "scalar_traj": (("traj", "time", "xy"), tr.ys),
            "scalar_traj_invariant_error": (("traj",), inv_err),
            "stable_start": (("check", "xy"), np.concatenate([on_line, off])),
            "stable_delta": (("check",), np.concatenate([np.zeros(len(on_line)), deltas])),
            "stable_dist": (("check", "time"), dist),
            "stable_loss": (("check", "time"), chk.loss),
            "stable_traj": (("check", "time", "xy"), chk.ys),
        },
        coords={"gx": g, "gy": g, "time": ts},
    )


def _diag_balanced(x, y):
    """Flat parameters of W1 = W2 = diag(x, y) for the (2, 2, 2) network."""
    x, y = np.broadcast_arrays(np.asarray(x, float), np.asarray(y, float))
    W = np.zeros(x.shape + (2, 2))
    W[..., 0, 0] = x
    W[..., 1, 1] = y
    return np.concatenate([W.reshape(x.shape + (4,)), W.reshape(x.shape + (4,))], axis=-1)


def _two_by_two(cfg, rng):
    problem = Problem.from_spectrum(S_2X2, (2, 2, 2))
    net = problem.network()
    s1, s2 = problem.singular_values
    g = np.linspace(-BOX2, BOX2, cfg["grid"])
    X, Y = np.meshgrid(g, g, indexing="xy")
    theta = _diag_balanced(X, Y)
    G = -net.grad(theta)
    # plane coordinates: x = W1[0,0] (= W2[0,0]), y = W1[1,1]; the plane's tangent basis is
    # e_x = (e_{W1[0,0]} + e_{W2[0,0]}), e_y likewise, so dx/dt = G[W1[0,0]] when the flow is tangent.
    ex = _diag_balanced(1.0, 0.0)
    ey = _diag_balanced(0.0, 1.0)
    P = np.stack([ex, ey], axis=0) / np.sqrt(2)  # orthonormal basis of the plane
    Gin = (G @ P.T) @ P
    offplane = float(np.max(np.linalg.norm(G - Gin, axis=-1)))
    u = G[..., 0]  # dx/dt
    v = G[..., 4 + 3]  # dy/dt: W2[1,1] (same as W1[1,1] on the plane)
    # critical points of every stratum on the plane, identified by the closed-form strata
    strata = enumerate_strata(problem)
    pts, labels, inertia, values = [], [], [], []
    for st in strata:
        xs = np.sqrt(s1) if 0 in st.learned else 0.0
        ys = np.sqrt(s2) if 1 in st.learned else 0.0
        th = _diag_balanced(xs, ys)
        inr = hessian_inertia(net, th)
        pts.append([xs, ys])
        labels.append(st.label)
        inertia.append(list(inr.triple))
        values.append(float(net.loss(th)))
    # trajectories in the plane (8-D integration from in-plane starts)
    n = cfg["n_traj"]
    phi = np.linspace(0, 2 * np.pi, n, endpoint=False) + rng.uniform(0, 2 * np.pi / n)
    starts_xy = 0.15 * np.stack([np.cos(phi), np.sin(phi)], axis=-1)
    ts = np.linspace(0.0, cfg["t1"] / 4, cfg["n_save"])
    tr = integrate(net, _diag_balanced(starts_xy[:, 0], starts_xy[:, 1]), ts[-1], saveat=SaveAt(ts=ts),
                   rtol=RTOL, atol=ATOL, grad_tol=0.0)
    traj_xy = np.stack([tr.ys[..., 0], tr.ys[..., 3]], axis=-1)
    traj_off = float(np.nanmax(np.abs(tr.ys[..., 4:] - tr.ys[..., :4])) + np.nanmax(np.abs(tr.ys[..., [1, 2]])))
    # slice through the {0} saddle p: u = most negative Hessian eigenvector, z = a zero eigenvector
    p = _diag_balanced(np.sqrt(s1), 0.0)
    lam, V = np.linalg.eigh(net.hessian(p))
    u_dir = V[:, 0]
    zero = np.flatnonzero(np.abs(lam) <= 1e-8 * np.max(np.abs(lam)))
    z_dir = V[:, zero[0]]
    # fix signs deterministically (eigh's sign is arbitrary)
    u_dir = u_dir * np.sign(u_dir[np.argmax(np.abs(u_dir))])
    z_dir = z_dir * np.sign(z_dir[np.argmax(np.abs(z_dir))])
    sg = np.linspace(-1.7, 1.7, cfg["slice_grid"])
    A, B = np.meshgrid(sg, sg, indexing="xy")
    slice_loss = net.loss(p + A[..., None] * u_dir + B[..., None] * z_dir)
    phi2 = np.linspace(0, 2 * np.pi, n, endpoint=False) + 0.1
    st2 = p + 0.6 * (np.cos(phi2)[:, None] * u_dir + np.sin(phi2)[:, None] * z_dir)
    tr2 = integrate(net, st2, ts[-1], saveat=SaveAt(ts=ts), rtol=RTOL, atol=ATOL, grad_tol=0.0)
    rel = tr2.ys - p
    proj = np.stack([rel @ u_dir, rel @ z_dir], axis=-1)
    out_of_slice = np.linalg.norm(rel - proj[..., :1] * u_dir - proj[..., 1:] * z_dir, axis=-1)
    return xr.Dataset(
        {
            "plane_u": (("gy2", "gx2"), u),
            "plane_v": (("gy2", "gx2"), v),
            "plane_loss": (("gy2", "gx2"), net.loss(theta)),
            "crit_xy": (("crit", "xy"), np.array(pts)),
            "crit_inertia": (("crit", "triple"), np.array(inertia, dtype=np.int64)),
            "crit_value": (("crit",), np.array(values)),
            "plane_traj": (("traj2", "time2", "xy"), traj_xy),
            "slice_loss": (("sb", "sa"), slice_loss),
            "slice_traj": (("traj2", "time2", "xy"), proj),
            "slice_out_of_plane": (("traj2", "time2"), out_of_slice),
            "slice_final_loss": (("traj2",), tr2.loss_final),
            "hessian_eigs_p": (("eig",), lam),
        },
        coords={"gx2": g, "gy2": g, "crit_label": (("crit",), np.array(labels, dtype=object)), "time2": ts,
                "sa": sg, "sb": sg},
        attrs={"plane_offplane_velocity_max": offplane, "plane_traj_offplane_max": traj_off,
               "slice_u_eigenvalue": float(lam[0]), "slice_z_eigenvalue": float(lam[zero[0]])},
    )


def compute(*, quick: bool = False) -> xr.Dataset:
    """Integrate and sample the scalar and 2x2x2 landscapes (see the module docstring)."""
    cfg = _config(quick)
    rng = np.random.default_rng(cfg["seed"])
    ds = xr.merge([_scalar(cfg, rng), _two_by_two(cfg, rng)], combine_attrs="drop_conflicts")
    ds.attrs.update(s_scalar=S_SCALAR, s_2x2=list(S_2X2), rtol=RTOL, atol=ATOL, integrator="dopri5")
    return ds


def _minima_branches(ax, s, box):
    w = np.linspace(s / box, box, 200)
    for sign in (1, -1):
        ax.plot(sign * w, sign * s / w, color="tab:green", lw=2.2, zorder=3,
                label="minima $w_1w_2=s$" if sign == 1 else None)


def plot(ds: xr.Dataset):
    """Four panels: scalar landscape, stable-set check, 2x2x2 invariant plane, slice through a saddle."""
    s = float(ds.attrs["s_scalar"])
    fig, axs = plt.subplots(2, 2, figsize=(7.6, 7.0))
    # (a) scalar landscape
    ax = axs[0, 0]
    g = ds["gx"].values
    ax.streamplot(g, g, ds["scalar_u"].values, ds["scalar_v"].values, color="0.55", density=1.0,
                  linewidth=0.6, arrowsize=0.7)
    c_grid = g[:, None] ** 2 - g[None, :] ** 2  # rows: w2, columns: w1
    ax.contour(g, g, c_grid, levels=[-3, -2, -1, -0.5, 0.5, 1, 2, 3], colors="tab:purple", linestyles=":",
               linewidths=0.8)
    _minima_branches(ax, s, BOX)
    ax.plot([-BOX, BOX], [BOX, -BOX], color="tab:red", lw=1.6, label="stable set $w_2=-w_1$")
    for tr in ds["scalar_traj"].values:
        ax.plot(tr[:, 0], tr[:, 1], color="tab:blue", lw=1.0)
        ax.plot(tr[0, 0], tr[0, 1], "o", color="tab:blue", ms=2.5)
    on = ds["stable_delta"].values == 0
    for tr in ds["stable_traj"].values[on]:
        ax.plot(tr[:, 0], tr[:, 1], color="darkred", lw=2.5, alpha=0.5)
    ax.plot(0, 0, "X", color="tab:red", ms=9, zorder=5, label="saddle (0,0)")
    ax.plot([], [], color="tab:purple", ls=":", label="invariant $w_2^2-w_1^2=c$")
    ax.plot([], [], color="tab:blue", label="trajectories")
    ax.set(xlim=(-BOX, BOX), ylim=(-BOX, BOX), xlabel="$w_1$", ylabel="$w_2$", aspect="equal")
    err = float(ds["scalar_traj_invariant_error"].max())
    ax.set_title(f"(a) scalar net, $L=\\frac{{1}}{{2}}(s-w_2w_1)^2$, s={s:g}\n"
                 f"max |c(t)-c(0)| along trajectories: {err:.1e}")
    ax.legend(loc="lower left", fontsize=6, framealpha=0.85, frameon=True)
    # (b) stable-set check
    ax = axs[0, 1]
    t = ds["time"].values
    deltas = ds["stable_delta"].values
    dist = ds["stable_dist"].values
    for i, d in enumerate(deltas):
        if d == 0:
            st = ds["stable_start"].values[i]
            ax.semilogy(t, np.maximum(dist[i], 1e-300), color="darkred", lw=2,
                        label=f"on $w_2=-w_1$, start ({st[0]:.1f},{st[1]:.1f})" if i < 2 else None)
        else:
            ax.semilogy(t, dist[i], lw=1.2, label=f"$\\delta$ = {d:.0e} off the line")
    ax.semilogy(t, 1.5 * np.sqrt(2) * np.exp(-s * t), "k--", lw=0.8, label="$\\propto e^{-st}$")
    ax.axhline(np.sqrt(2 * s), color="tab:green", lw=0.8, ls=":", label="$\\sqrt{2s}$ (nearest minima)")
    ax.text(t[0] + 0.5, 2e-14, f"solver floor near 1e-12 (atol={ds.attrs['atol']:.0e})", ha="left", va="bottom",
            fontsize=6)
    on_final = dist[deltas == 0, -1]
    ax.set(xlabel="t", ylabel="distance to the saddle $\\|\\theta(t)\\|$", ylim=(1e-14, 10))
    ax.set_title(f"(b) stable set of the saddle, checked: on the line\n"
                 f"$\\|\\theta(t_1)\\|\\leq${on_final.max():.0e}; off it, escape after ~log(1/$\\delta$)/s")
    ax.legend(fontsize=6, loc="center right")
    # (c) 2x2x2 invariant plane
    ax = axs[1, 0]
    g2 = ds["gx2"].values
    ax.streamplot(g2, g2, ds["plane_u"].values, ds["plane_v"].values, color="0.55", density=1.0,
                  linewidth=0.6, arrowsize=0.7)
    for tr in ds["plane_traj"].values:
        ax.plot(tr[:, 0], tr[:, 1], color="tab:blue", lw=1.0)
    colors = {0: "tab:green", 1: "tab:orange", 2: "tab:red"}
    s1, s2 = ds.attrs["s_2x2"]
    ax.axhline(0, color="tab:red", lw=0.9, alpha=0.6)
    ax.axvline(0, color="tab:red", lw=0.9, alpha=0.6)
    for xy, lab, inr, val in zip(ds["crit_xy"].values, ds["crit_label"].values, ds["crit_inertia"].values,
                                 ds["crit_value"].values):
        nneg = int(inr[0])
        for sx in ((1, -1) if xy[0] else (1,)):
            for sy in ((1, -1) if xy[1] else (1,)):
                ax.plot(sx * xy[0], sy * xy[1], "o" if nneg == 0 else "X", color=colors.get(min(nneg, 2)),
                        ms=8, zorder=5, mec="k", mew=0.5)
        val = 0.0 if abs(val) < 1e-12 else val
        ax.annotate(f"{lab} L={val:g}\n({inr[0]},{inr[1]},{inr[2]})", (xy[0], xy[1]), fontsize=6.5,
                    xytext=(4, 4), textcoords="offset points",
                    bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.8))
    ax.plot([], [], "o", color="tab:green", mec="k", mew=0.5, label="minimum ($n_-=0$)")
    ax.plot([], [], "X", color="tab:orange", mec="k", mew=0.5, label="saddle, $n_-=1$")
    ax.plot([], [], "X", color="tab:red", mec="k", mew=0.5, label="saddle, $n_-\\geq 2$")
    ax.plot([], [], color="tab:red", lw=0.9, alpha=0.6, label="in-plane stable sets")
    ax.legend(loc="lower left", fontsize=6, framealpha=0.85, frameon=True)
    ax.set(xlim=(-BOX2, BOX2), ylim=(-BOX2, BOX2), xlabel="x  ($W_1=W_2=$diag(x, y))", ylabel="y",
           aspect="equal")
    ax.set_title(f"(c) 2x2x2, s=({s1:g},{s2:g}): invariant plane, strata with\n"
                 f"inertia $(n_-,n_0,n_+)$; off-plane velocity {ds.attrs['plane_offplane_velocity_max']:.0e}")
    # (d) slice through the {0} saddle
    ax = axs[1, 1]
    sa = ds["sa"].values
    cs = ax.contour(sa, sa, ds["slice_loss"].values, levels=np.linspace(0.05, 1.5, 30), cmap="viridis",
                    linewidths=0.8)
    ax.clabel(cs, cs.levels[1::4], fontsize=6, fmt="%.2f")
    for tr in ds["slice_traj"].values:
        ax.plot(tr[:, 0], tr[:, 1], color="tab:blue", lw=1.0)
        ax.plot(tr[0, 0], tr[0, 1], "o", color="tab:blue", ms=2.5)
    ax.plot(0, 0, "X", color="tab:orange", ms=9, mec="k", mew=0.5, zorder=5)
    ax.set(xlim=(sa[0], sa[-1]), ylim=(sa[0], sa[-1]), aspect="equal",
           xlabel=f"a: unstable eigenvector u ($\\lambda$={ds.attrs['slice_u_eigenvalue']:.2f})",
           ylabel=f"b: zero eigenvector z ($\\lambda$={ds.attrs['slice_z_eigenvalue']:.0e})")
    ax.set_title(f"(d) loss contours on the plane p + a u + b z, p$\\in${{0}}\n"
                 f"blue: 8-D trajectories, projected (off-plane up to "
                 f"{float(np.nanmax(ds['slice_out_of_plane'].values)):.1f})")
    return fig


def main(argv=None):
    """Compute (or reuse the cache), plot, and write ``figures/fig01_landscape.png``."""
    return common.run(NAME, compute, plot, CONFIG, QUICK_CONFIG, argv, doc=__doc__)


if __name__ == "__main__":
    main()
