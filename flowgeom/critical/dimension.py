r"""The local dimension of a critical set at a point, from a cloud of refined perturbed points.

Perturb a critical point :math:`\theta^*` to :math:`\theta^* \pm \epsilon\,\xi_i`, refine each back onto
the critical set (:func:`flowgeom.critical.refinement.refine_critical`) and fit the displacements
linearly: where the critical set is a manifold the fitted map is the projector on its tangent space,
whose rank is the dimension (see :func:`local_dimension`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from flowgeom._types import FloatArray, Params
from flowgeom.critical.refinement import refine_critical
from flowgeom.models.base import Model, check_params

__all__ = ["LocalDimension", "local_dimension"]


@dataclass(frozen=True)
class LocalDimension:
    r"""Local dimension of the critical set at a point, from a cloud of refined perturbed points.

    Attributes
    ----------
    dim : int
        Number of singular values of the fitted displacement map P above ``dim_rtol`` times the
        largest; -1 when the cloud is not smooth (``smooth`` False) or too few points converged.
    gap : float
        :math:`\sigma_{k}/\sigma_{k+1}` of P (``inf`` when nothing was dropped).
    smooth : bool
        The refined displacements are a linear function of the perturbation to within
        ``smooth_tol`` (relative least-squares residual) and the Hessian kernel dimension is the
        same at refined cloud points: the critical set is a manifold there.
    residual : float
        That relative residual.
    singular_values : ndarray
        Of P.
    n_zero : int
        Dimension of the subspace perturbed (the numerical kernel of the Hessian for
        ``subspace="kernel"``, n for ``"full"``).
    n_samples, n_converged : int
    radius : float
        Absolute perturbation size used.
    kernel_consistent : bool
        The Hessian kernel dimension at refined cloud points equals the one at the centre.
    """

    dim: int
    gap: float
    smooth: bool
    residual: float
    singular_values: FloatArray = field(repr=False)
    n_zero: int
    n_samples: int
    n_converged: int
    radius: float
    kernel_consistent: bool

    @property
    def morse_bott(self) -> bool:
        """The critical set is a manifold whose tangent space is the whole Hessian kernel (``subspace="kernel"``)."""
        return self.smooth and self.dim == self.n_zero


def local_dimension(
    model: Model,
    theta: Params,
    *,
    rng: np.random.Generator | None = None,
    subspace: Literal["kernel", "full"] = "kernel",
    radius: float = 1e-3,
    n_samples: int | None = None,
    dim_rtol: float = 1e-2,
    smooth_tol: float = 1e-2,
    zero_rtol: float = 1e-8,
    grad_tol: float | None = None,
    max_iter: int = 30,
    n_check: int = 4,
) -> LocalDimension:
    r"""Estimate the dimension of the critical set through a critical point :math:`\theta^*`.

    Perturb :math:`\theta_i = \theta^* \pm \epsilon\,\xi_i` (symmetric pairs), refine each with
    :func:`refine_critical` (all probes in one batch), and fit the displacements linearly,
    :math:`\theta_i^{\text{ref}} - \theta^* \approx \epsilon P \xi_i`. Where the critical set is a
    manifold :math:`\mathcal{C}` the minimum-norm Newton correction is normal to it, so
    :math:`P = \Pi_{T\mathcal{C}}` (the orthogonal projector on the tangent space) up to
    :math:`O(\epsilon)`; symmetric pairs cancel the curvature term, so the fit residual is
    :math:`O(\epsilon^2)/\epsilon`. The dimension is the number of singular values of P above
    ``dim_rtol`` (they are ~1 for tangent directions and :math:`O(\epsilon)` otherwise); the gap
    :math:`\sigma_k/\sigma_{k+1}` is reported. Where the critical set is not a manifold (a cone,
    crossing components) the displacement is not a linear function of the perturbation: the fit
    residual is O(1) and the result says ``smooth=False``, ``dim=-1``.

    Parameters
    ----------
    model : Model
    theta : ndarray, shape (n,)
        A critical point (refine it first).
    rng : numpy.random.Generator, optional
        Source of the random directions; default ``np.random.default_rng(0)``.
    subspace : {"kernel", "full"}, default "kernel"
        Perturb within the numerical kernel of the Hessian (the tangent space of the critical set
        always lies in it; needs the dense Hessian) or in all of parameter space.
    radius : float, default 1e-3
        Perturbation size relative to :math:`\max(1, \|\theta^*\|)`. Large enough that a
        direction along which L is cubic or quartic has a gradient (~radius^2..3) well above
        the refinement tolerance, small enough that curvature stays below ``smooth_tol``.
    n_samples : int, optional
        Number of symmetric pairs; default ``d + 4`` with d the subspace dimension.
    dim_rtol : float, default 1e-2
        Singular values of P below ``dim_rtol * max(1, sigma_max)`` are dropped.
    smooth_tol : float, default 1e-2
        Largest relative fit residual accepted as "smooth".
    zero_rtol : float, default 1e-8
        Kernel tolerance relative to :math:`\|\nabla^2 L\|_2` (``subspace="kernel"``).
    grad_tol : float, optional
        Refinement tolerance; default :math:`10^{-14}\max(1, \|\nabla^2 L\|_2)\max(1, \|\theta^*\|)`
        (close to round-off, so that slowly varying degenerate directions are not mistaken for
        critical ones).
    max_iter : int, default 30
        Passed to :func:`refine_critical`.
    n_check : int, default 4
        Number of refined cloud points at which the Hessian kernel dimension is recomputed; on a
        Morse–Bott manifold it equals the one at :math:`\theta^*` (the inertia is locally constant),
        so a mismatch marks the cloud as not smooth (``kernel_consistent`` False).

    Returns
    -------
    LocalDimension
    """
    n = model.n_params
    theta = np.asarray(check_params(theta, n), dtype=np.float64)
    if theta.ndim != 1:
        raise ValueError(f"`theta` must be one parameter vector of shape ({n},); got shape {theta.shape}.")
    if subspace not in ("kernel", "full"):
        raise ValueError(f"`subspace` must be 'kernel' or 'full'; got {subspace!r}.")
    if not (0 < radius < 1):
        raise ValueError(f"`radius` must lie in (0, 1); got {radius!r}.")
    rng = np.random.default_rng(0) if rng is None else rng
    tnorm = float(np.linalg.norm(theta))
    eps = radius * max(1.0, tnorm)
    Hm = model.hessian(theta)
    lam, V = np.linalg.eigh(0.5 * (Hm + Hm.T))
    scale = float(np.max(np.abs(lam))) if n else 0.0
    if grad_tol is None:
        grad_tol = 1e-14 * max(1.0, scale) * max(1.0, tnorm)
    ztol = zero_rtol * scale
    if subspace == "kernel":
        basis = V[:, np.abs(lam) <= ztol] if scale > 0 else np.eye(n)
    else:
        basis = np.eye(n)
    d = basis.shape[1]
    n_zero0 = int(np.sum(np.abs(lam) <= ztol)) if scale > 0 else n
    if d == 0:
        return LocalDimension(0, math.inf, True, 0.0, np.zeros(0), 0, 0, 0, eps, True)
    m = d + 4 if n_samples is None else int(n_samples)
    if m < d:
        raise ValueError(f"`n_samples` must be >= the subspace dimension {d}; got {m}.")
    C = rng.standard_normal((d, m))
    C /= np.linalg.norm(C, axis=0, keepdims=True)
    probes = np.concatenate([theta + eps * (basis @ C).T, theta - eps * (basis @ C).T])  # (2m, n): pairs i, m + i
    res = refine_critical(model, probes, gtol=grad_tol, max_iter=max_iter, method="dense", mu0=1e-4)
    both = res.converged[:m] & res.converged[m:]
    disp = [(res.theta[i] - theta) / eps for i in np.flatnonzero(both)] + \
           [(res.theta[m + i] - theta) / eps for i in np.flatnonzero(both)]
    coef = [C[:, i] for i in np.flatnonzero(both)] + [-C[:, i] for i in np.flatnonzero(both)]
    n_conv = len(disp) // 2
    if n_conv < max(1, (d + 1) // 2):
        return LocalDimension(-1, math.nan, False, math.nan, np.zeros(0), d, m, n_conv, eps, False)
    consistent = True
    for i in range(min(n_check, len(disp))):
        pt = theta + eps * disp[i]
        Hc = model.hessian(pt)
        lc = np.linalg.eigvalsh(0.5 * (Hc + Hc.T))
        sc = float(np.max(np.abs(lc)))
        if int(np.sum(np.abs(lc) <= zero_rtol * sc)) != n_zero0:
            consistent = False
    D = np.array(disp).T  # (n, 2 n_conv)
    Xi = np.array(coef).T  # (d, 2 n_conv)
    # least squares fit D ~ P Xi  (P: n x d)
    P_T, *_ = np.linalg.lstsq(Xi.T, D.T, rcond=None)
    P = P_T.T
    resid = float(np.linalg.norm(D - P @ Xi) / max(np.linalg.norm(D), np.finfo(float).tiny))
    sv = np.linalg.svd(P, compute_uv=False)
    thresh = dim_rtol * max(1.0, float(sv[0]) if sv.size else 1.0)
    k = int(np.sum(sv > thresh))
    gap = math.inf if k == sv.size else float(sv[k - 1] / max(sv[k], np.finfo(float).tiny)) if k else 0.0
    smooth = bool(resid <= smooth_tol and consistent)
    return LocalDimension(k if smooth else -1, gap, smooth, resid, sv, d, m, n_conv, eps, consistent)
