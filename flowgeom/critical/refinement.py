r"""Model-agnostic critical points: refine an approximate point, estimate the local dimension of the critical set.

Refinement solves :math:`\nabla L(\theta) = 0` by Levenberg–Marquardt on
:math:`\tfrac12\|\nabla L(\theta)\|^2`, whose Gauss–Newton matrix is :math:`(\nabla^2 L)^2`:

.. math::

    \delta = -\left((\nabla^2 L)^2 + \mu I\right)^{-1} \nabla^2 L \,\nabla L ,

with :math:`\mu` decreased after every successful step (down to :math:`\mu = 0`, the minimum-norm
Newton step :math:`\delta = -(\nabla^2 L)^+ \nabla L`) and increased when :math:`\|\nabla L\|`
does not decrease. Critical sets are non-isolated, so :math:`\nabla^2 L` is singular on them; the
minimum-norm step moves only in :math:`\mathrm{range}(\nabla^2 L)`, i.e. normal to the critical
manifold at a Morse–Bott point, and converges quadratically to a nearby critical point [1]_.

References
----------
.. [1] K. Levenberg (1944), D. Marquardt (1963); for singular systems see J. Fan, Y. Yuan,
   "On the quadratic convergence of the Levenberg–Marquardt method without nonsingularity
   assumption", Computing 74 (2005) 23–39.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import scipy.sparse.linalg as spla

from flowgeom._types import FloatArray, Params
from flowgeom.models.base import Model, check_params

__all__ = [
    "RefineResult",
    "LocalDimension",
    "refine",
    "local_dimension",
    "REFINE_GRAD_TOL",
]

REFINE_GRAD_TOL = 1e-12
"""Default absolute tolerance on :math:`\\|\\nabla L\\|_2` for :func:`refine` (round-off is ~1e-15 for O(1) weights)."""

_PINV_RTOL = 1e-11  # eigenvalues below this * ||H|| are treated as zero in the undamped (mu = 0) step


@dataclass(frozen=True)
class RefineResult:
    """Outcome of :func:`refine`.

    Attributes
    ----------
    theta : ndarray, shape (n,)
        The refined point (the last accepted iterate).
    grad_norm : float
        :math:`\\|\\nabla L\\|_2` at ``theta``.
    loss : float
    n_iter : int
        Accepted steps.
    status : str
        ``"converged"`` (grad_norm <= grad_tol), ``"max_iter"``, ``"stagnated"`` (no damping gave a
        decrease: usually the round-off floor) or ``"nonfinite"``.
    displacement : float
        :math:`\\|\\theta - \\theta_0\\|_2`.
    """

    theta: FloatArray = field(repr=False)
    grad_norm: float
    loss: float
    n_iter: int
    status: str
    displacement: float

    @property
    def converged(self) -> bool:
        return self.status == "converged"


def refine(
    model: Model,
    theta0: Params,
    *,
    grad_tol: float = REFINE_GRAD_TOL,
    max_iter: int = 100,
    method: Literal["auto", "dense", "lsmr"] = "auto",
    mu0: float = 1e-4,
    dense_max: int = 3000,
    max_tries: int = 20,
) -> RefineResult:
    r"""Converge from an approximate point to a nearby critical point (Levenberg–Marquardt on :math:`\|\nabla L\|^2`).

    Parameters
    ----------
    model : Model
        Any model with ``grad``, ``hvp`` (and ``hessian`` for ``"dense"``).
    theta0 : ndarray, shape (n,)
        Starting point.
    grad_tol : float, default ``REFINE_GRAD_TOL`` (1e-12)
        Stop when :math:`\|\nabla L\|_2 \le` ``grad_tol``.
    max_iter : int, default 100
        Maximum number of accepted steps.
    method : {"auto", "dense", "lsmr"}, default "auto"
        ``"dense"``: eigendecomposition of the dense Hessian each step (n <= ``dense_max``);
        ``"lsmr"``: matrix-free, the damped least-squares step by ``scipy.sparse.linalg.lsmr``
        on the HVP operator (``damp`` = :math:`\sqrt{\mu}`).
    mu0 : float, default 1e-4
        Initial damping relative to :math:`\|\nabla^2 L\|^2`.
    dense_max : int, default 3000
        ``"auto"`` uses ``"dense"`` up to this many parameters.
    max_tries : int, default 20
        Damping increases (x10 each) tried per step before declaring ``"stagnated"``.

    Returns
    -------
    RefineResult
        A failure to converge is reported in ``status``, never raised.
    """
    n = model.n_params
    theta = np.array(check_params(theta0, n), dtype=np.float64)
    if theta.ndim != 1:
        raise ValueError(f"`theta0` must be one parameter vector of shape ({n},); got shape {theta.shape}.")
    if not (grad_tol > 0) or max_iter < 0 or not (mu0 >= 0):
        raise ValueError(
            f"`grad_tol` must be > 0, `max_iter` >= 0 and `mu0` >= 0; got {grad_tol!r}, {max_iter!r}, {mu0!r}."
        )
    if method not in ("auto", "dense", "lsmr"):
        raise ValueError(f"`method` must be 'auto', 'dense' or 'lsmr'; got {method!r}.")
    if method == "auto":
        method = "dense" if n <= dense_max else "lsmr"
    start = theta.copy()
    g = model.grad(theta)
    gn = float(np.linalg.norm(g))
    mu_rel = float(mu0)
    status = "max_iter"
    it = 0
    if not np.isfinite(gn):
        return RefineResult(theta, gn, float(model.loss(theta)), 0, "nonfinite", 0.0)
    while True:
        if gn <= grad_tol:
            status = "converged"
            break
        if it >= max_iter:
            status = "max_iter"
            break
        if method == "dense":
            Hm = model.hessian(theta)
            lam, V = np.linalg.eigh(0.5 * (Hm + Hm.T))
            scale = max(float(np.max(np.abs(lam))), np.finfo(float).tiny)
            gh = V.T @ g

            def step(mu_abs):
                if mu_abs == 0.0:
                    keep = np.abs(lam) > _PINV_RTOL * scale
                    f = np.where(keep, 1.0 / np.where(keep, lam, 1.0), 0.0)
                else:
                    f = lam / (lam * lam + mu_abs)
                return -(V @ (f * gh))
        else:
            mv = lambda v, th=theta: model.hvp(th, np.ravel(v))  # noqa: E731
            op = spla.LinearOperator((n, n), matvec=mv, rmatvec=mv, dtype=np.float64)  # symmetric
            scale = max(float(np.linalg.norm(model.hvp(theta, g / gn))), np.finfo(float).tiny)

            def step(mu_abs, op=op, g=g):
                sol = spla.lsmr(op, -g, damp=math.sqrt(mu_abs), atol=1e-15, btol=1e-15, maxiter=4 * n)
                return sol[0]
        accepted = False
        for _ in range(max_tries):
            mu_abs = mu_rel * scale * scale
            delta = step(mu_abs)
            trial = theta + delta
            g_trial = model.grad(trial)
            gn_trial = float(np.linalg.norm(g_trial))
            if np.isfinite(gn_trial) and gn_trial < gn:
                theta, g, gn = trial, g_trial, gn_trial
                mu_rel = 0.0 if mu_rel < 1e-12 else mu_rel / 10.0
                accepted = True
                break
            mu_rel = max(mu_rel * 10.0, 1e-12)
            if mu_rel > 1e12:
                break
        if not accepted:
            status = "stagnated"
            break
        it += 1
    loss = float(model.loss(theta))
    if not (np.isfinite(gn) and np.isfinite(loss)):
        status = "nonfinite"
    return RefineResult(theta, gn, loss, it, status, float(np.linalg.norm(theta - start)))


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
    :func:`refine`, and fit the displacements linearly,
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
        Passed to :func:`refine`.
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
    disp = []
    coef = []
    for i in range(m):
        xi = basis @ C[:, i]
        pair = []
        for sign in (1.0, -1.0):
            res = refine(model, theta + sign * eps * xi, grad_tol=grad_tol, max_iter=max_iter, method="dense",
                         max_tries=12)
            pair.append(res if res.converged else None)
        if pair[0] is None or pair[1] is None:
            continue
        for sign, res in zip((1.0, -1.0), pair):
            disp.append((res.theta - theta) / eps)
            coef.append(sign * C[:, i])
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
