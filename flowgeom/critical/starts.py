r"""Starting points of critical-point searches: descent trajectories and their plateau points.

A gradient-descent trajectory lingers near the saddles it passes: the local minima in time of
:math:`\|\nabla L(\theta(t))\|` are good starts for a Newton-type refinement onto a critical point.
"""

from __future__ import annotations

import numpy as np

from flowgeom._types import FloatArray, Params
from flowgeom._validate import check_positive
from flowgeom.models.base import Model, check_params

__all__ = ["descent_trajectories", "plateau_points"]


def _check_positive(name, value):
    check_positive(name, value)


def descent_trajectories(
    model: Model,
    theta0: Params,
    *,
    n_steps: int = 3000,
    record_every: int = 10,
    lr: float | None = None,
) -> tuple[FloatArray, FloatArray]:
    r"""Batched gradient descent :math:`\theta_{k+1} = \theta_k - \eta_b \nabla L(\theta_k)`, recorded.

    A simple stand-in for :func:`flowgeom.integrate.gradient_descent` to generate plateau points;
    each trajectory's step is :math:`\eta_b = 1/\lambda_{\max}(\nabla^2 L(\theta_{0,b}))` unless
    ``lr`` is given, and is halved (the step undone) whenever the loss would increase.

    Parameters
    ----------
    model : Model
    theta0 : ndarray, shape (N, n)
    n_steps : int, default 3000
    record_every : int, default 10
    lr : float, optional
        A common initial step size.

    Returns
    -------
    ys : ndarray, shape (N, n_save, n)
        States every ``record_every`` steps (first = theta0).
    grad_norm : ndarray, shape (N, n_save)
    """
    th = np.array(check_params(theta0, model.n_params, "theta0"), dtype=np.float64)
    if th.ndim != 2:
        raise ValueError(f"`theta0` must have shape (N, n); got {th.shape}.")
    if lr is None:
        lam = np.linalg.eigvalsh(model.hessian(th))
        eta = 1.0 / np.maximum(np.max(np.abs(lam), axis=-1), 1e-12)
    else:
        _check_positive("lr", lr)
        eta = np.full(th.shape[0], float(lr))
    L = model.loss(th)
    g = model.grad(th)
    ys, gns = [th.copy()], [np.linalg.norm(g, axis=-1)]
    for k in range(1, n_steps + 1):
        trial = th - eta[:, None] * g
        Lt = model.loss(trial)
        ok = np.isfinite(Lt) & (Lt <= L)
        th[ok], L[ok] = trial[ok], Lt[ok]
        eta[~ok] *= 0.5
        g = model.grad(th)
        if k % record_every == 0:
            ys.append(th.copy())
            gns.append(np.linalg.norm(g, axis=-1))
    return np.stack(ys, axis=1), np.stack(gns, axis=1)


def plateau_points(ys: FloatArray, grad_norm: FloatArray, *, max_per_trajectory: int = 3,
                   return_trajectory: bool = False):
    r"""Points where trajectories linger near critical points: local minima in time of :math:`\|\nabla L(\theta(t))\|`.

    For each trajectory the interior strict local minima of the recorded gradient norm (the
    ``max_per_trajectory - 1`` smallest) and the final state are returned; non-finite records are
    skipped. Works on ``(Trajectory.ys, Trajectory.grad_norm)`` of :mod:`flowgeom.integrate` or
    the output of :func:`descent_trajectories`.

    Parameters
    ----------
    ys : ndarray, shape (N, n_save, n)
    grad_norm : ndarray, shape (N, n_save)
    max_per_trajectory : int, default 3
    return_trajectory : bool, default False
        Also return the index of the trajectory of each point.

    Returns
    -------
    ndarray, shape (k, n)
        (and, with ``return_trajectory``, an int array (k,) of trajectory indices)
    """
    ys = np.asarray(ys, dtype=np.float64)
    gn = np.asarray(grad_norm, dtype=np.float64)
    if ys.ndim != 3 or gn.shape != ys.shape[:2]:
        raise ValueError(
            f"`ys` must have shape (N, n_save, n) and `grad_norm` (N, n_save); got {ys.shape} and {gn.shape}."
        )
    out = []
    which: list[int] = []
    for j, (y, g) in enumerate(zip(ys, gn)):
        fin = np.isfinite(g) & np.all(np.isfinite(y), axis=-1)
        y, g = y[fin], g[fin]
        if g.size == 0:
            continue
        out.append(y[-1])
        which.append(j)
        if g.size >= 3 and max_per_trajectory > 1:
            mins = np.nonzero((g[1:-1] < g[:-2]) & (g[1:-1] < g[2:]))[0] + 1
            mins = mins[np.argsort(g[mins])][: max_per_trajectory - 1]
            out.extend(y[mins])
            which.extend([j] * mins.size)
    pts = np.stack(out) if out else np.zeros((0, ys.shape[-1]))
    if return_trajectory:
        return pts, np.asarray(which, dtype=np.int64)
    return pts
