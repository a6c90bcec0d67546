r"""Refinement to :math:`\nabla L = 0` (one batched Levenberg–Marquardt / minimum-norm Newton) and local dimension.

Refinement solves :math:`\nabla L(\theta) = 0` by Levenberg–Marquardt on
:math:`\tfrac12\|\nabla L(\theta)\|^2`, whose Gauss–Newton matrix is :math:`(\nabla^2 L)^2`:

.. math::

    \delta = -\left((\nabla^2 L)^2 + \mu I\right)^{-1} \nabla^2 L \,\nabla L ,

starting from :math:`\mu = 0` (the minimum-norm Newton step :math:`\delta = -(\nabla^2 L)^+ \nabla L`),
:math:`\mu` decreased after every successful step and increased when :math:`\|\nabla L\|` does not
decrease. Critical sets are non-isolated, so :math:`\nabla^2 L` is singular on them; the minimum-norm
step moves only in :math:`\mathrm{range}(\nabla^2 L)`, i.e. normal to the critical manifold at a
Morse–Bott point, and converges quadratically to a nearby critical point [1]_. Newton's method is
attracted to saddles as well as minima, which is what a critical-point atlas needs.

Every refined point records :math:`\|\nabla L\|`, the relative residual of the equation and the
*gradient flatness* [2]_

.. math:: \phi(\theta) = \frac{\|P_0 \nabla L(\theta)\|}{\|\nabla L(\theta)\|}, \qquad
   P_0 = \sum_{|\lambda_i| \le \text{flat\_rtol}\,\max|\lambda|} q_i q_i^T,

the share of the gradient in the Hessian's near-kernel. A local minimum of :math:`\|\nabla L\|^2`
satisfies :math:`\nabla^2 L\,\nabla L = 0`: Newton-type finders stall there with :math:`\phi = 1`
although the point is not critical (a *gradient-flat* point, Frye et al. [2]_). Such points get
status :attr:`RefineStatus.GRADIENT_FLAT` and are never reported as critical.

References
----------
.. [1] K. Levenberg (1944), D. Marquardt (1963); for singular systems see J. Fan, Y. Yuan,
   "On the quadratic convergence of the Levenberg–Marquardt method without nonsingularity
   assumption", Computing 74 (2005) 23–39.
.. [2] C. G. Frye, J. Simon, N. S. Wadia, A. Ligeralde, M. R. DeWeese, K. E. Bouchard, "Critical
   point-finding methods reveal gradient-flat regions of deep network losses", Neural Computation
   33 (2021) 1469–1497.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import scipy.sparse.linalg as spla

from flowgeom._types import FloatArray, Params
from flowgeom._validate import InputError, check_choice, check_int, check_positive
from flowgeom.models.base import Model, check_params

__all__ = [
    "FLAT_RTOL",
    "FLAT_SHARE",
    "RCOND",
    "REFINE_GRAD_TOL",
    "PointRefinement",
    "RefineResult",
    "RefineStatus",
    "point_quality",
    "refine",
    "refine_critical",
]


class RefineStatus(enum.IntEnum):
    """Outcome of a refinement (one per point); ``.message`` says what it means."""

    CONVERGED = 0
    MAX_ITER = 1
    STALLED = 2
    GRADIENT_FLAT = 3
    NONFINITE = -1
    DIVERGED = -2

    @property
    def message(self) -> str:
        return _STATUS_MESSAGES[self]


_STATUS_MESSAGES = {
    RefineStatus.CONVERGED: "converged: ||grad L|| <= gtol (then polished to round-off)",
    RefineStatus.MAX_ITER: "max_iter: the iteration budget ran out before ||grad L|| <= gtol",
    RefineStatus.STALLED: ("stalled: no damped step reduces ||grad L|| although gtol is not met, and the gradient "
                           "is not in the Hessian's near-kernel"),
    RefineStatus.GRADIENT_FLAT: ("gradient_flat: not critical; the refinement stalled or ran out of iterations with "
                                 "the gradient in the Hessian's near-kernel (flatness >= FLAT_SHARE; Frye et al. 2021)"),
    RefineStatus.NONFINITE: "nonfinite: non-finite loss, gradient or Hessian",
    RefineStatus.DIVERGED: "diverged: ||theta|| > max_norm (e.g. tanh units running to saturation)",
}

REFINE_GRAD_TOL = 1e-12
"""Default absolute tolerance on :math:`\\|\\nabla L\\|_2` for :func:`refine` (round-off is ~1e-15 for O(1) weights)."""

RCOND = 1e-12
"""Relative eigenvalue cutoff of the Newton step: directions whose Hessian eigenvalue is below
``RCOND * max|lambda|`` are left alone (minimum-norm step). Round-off in an exact Hessian is ~1e-15
relative; 1e-12 leaves three digits of margin."""

FLAT_RTOL = 1e-4
r"""Near-kernel of the flatness measure: eigenvalues with :math:`|\lambda| \le` ``FLAT_RTOL`` :math:`\max|\lambda|`.
Where Newton stalls on :math:`x + x^3` the eigenvalue left is ~1e-8 relative (round-off of
:math:`1 + 3x^2`); 1e-4 also catches the slower stalls of saturated tanh units."""

FLAT_SHARE = 0.5
r"""A non-converged point with flatness :math:`\phi \ge` ``FLAT_SHARE`` is gradient-flat (most of its
gradient lies in the near-kernel)."""

_MU_UP, _MU_DOWN = 10.0, 1.0 / 3.0


@dataclass(frozen=True)
class RefineResult:
    r"""Result of :func:`refine_critical` (batched over the leading axes of the starts).

    Attributes
    ----------
    theta : ndarray, shape (..., n)
        Final iterates.
    grad_norm : ndarray, shape (...)
        :math:`\|\nabla L\|_2` at ``theta``.
    loss : ndarray, shape (...)
    status : ndarray of int, shape (...)
        :class:`RefineStatus` codes.
    n_iter : ndarray of int, shape (...)
    residual : ndarray, shape (...)
        Relative residual of :math:`\nabla L = 0`:
        :math:`\|\nabla L\| / (\max(1, \|\nabla^2 L\|_2)\max(1, \|\theta\|))`.
    flatness : ndarray, shape (...)
        :math:`\phi = \|P_0\nabla L\|/\|\nabla L\|` (module docstring); 0 where the gradient is exactly 0.
        At a converged point the gradient is round-off and its direction, hence :math:`\phi`, carries
        no information: the status decides, the flatness explains non-converged points.
    """

    theta: FloatArray
    grad_norm: FloatArray
    loss: FloatArray
    status: np.ndarray
    n_iter: np.ndarray
    residual: FloatArray
    flatness: FloatArray

    @property
    def converged(self) -> np.ndarray:
        """Boolean mask of :attr:`RefineStatus.CONVERGED`."""
        return self.status == RefineStatus.CONVERGED

    @property
    def gradient_flat(self) -> np.ndarray:
        """Boolean mask of :attr:`RefineStatus.GRADIENT_FLAT`."""
        return self.status == RefineStatus.GRADIENT_FLAT

    def messages(self) -> list[str]:
        """The :attr:`RefineStatus.message` of every point (flattened)."""
        return [RefineStatus(int(s)).message for s in np.ravel(self.status)]


def _steps(model, th, g, mu, method, rcond):
    """Damped steps for rows ``th`` (B, n) with damping ``mu`` (B,); also max|lambda| estimates (B,)."""
    if method == "dense":
        lam, Q = np.linalg.eigh(model.hessian(th))
        lmax = np.max(np.abs(lam), axis=-1)
        keep = np.abs(lam) > rcond * lmax[:, None]
        gq = np.einsum("bji,bj->bi", Q, g)
        denom = lam * lam + mu[:, None]
        coef = np.where(keep, lam / np.where(keep, denom, 1.0), 0.0)
        return -np.einsum("bij,bj->bi", Q, coef * gq), lmax
    n = th.shape[-1]
    out = np.zeros_like(th)
    lmax = np.zeros(th.shape[0])
    for b in range(th.shape[0]):
        mv = lambda v, t=th[b]: np.ravel(model.hvp(t[None], np.ravel(v)[None])[0])
        op = spla.LinearOperator((n, n), matvec=mv, rmatvec=mv, dtype=np.float64)  # symmetric
        gn = float(np.linalg.norm(g[b]))
        lmax[b] = float(np.linalg.norm(mv(g[b] / gn))) if gn > 0 else 0.0
        out[b] = spla.lsmr(op, -g[b], damp=math.sqrt(mu[b]), atol=1e-15, btol=1e-15, maxiter=4 * n)[0]
    return out, lmax


def _flatness(model, th, g, method, flat_rtol):
    """(flatness, ||H||_2 estimate) at rows ``th`` with gradients ``g``."""
    gn = np.linalg.norm(g, axis=-1)
    safe = np.where(gn > 0, gn, 1.0)
    if method == "dense":
        lam, Q = np.linalg.eigh(model.hessian(th))
        lmax = np.max(np.abs(lam), axis=-1)
        gq = np.einsum("bji,bj->bi", Q, g)
        ker = np.abs(lam) <= flat_rtol * lmax[:, None]
        flat = np.linalg.norm(np.where(ker, gq, 0.0), axis=-1) / safe
    else:  # the minimum-norm least-squares residual ||g + H d|| / ||g|| is the share of g outside range(H)
        d, lmax = _steps(model, th, g, np.zeros(th.shape[0]), "lsmr", 0.0)
        Hd = np.stack([model.hvp(t[None], x[None])[0] for t, x in zip(th, d)]) if th.shape[0] else d
        flat = np.linalg.norm(g + Hd, axis=-1) / safe
    return np.where(gn > 0, flat, 0.0), lmax


def refine_critical(
    model: Model,
    theta0: Params,
    *,
    gtol: float = 1e-11,
    max_iter: int = 200,
    max_norm: float | None = None,
    rcond: float = RCOND,
    method: Literal["dense", "lsmr"] = "dense",
    flat_rtol: float = FLAT_RTOL,
    flat_share: float = FLAT_SHARE,
    mu0: float = 0.0,
) -> RefineResult:
    r"""Refine starting points to critical points of ``model.loss``: the one (batched) refinement of flowgeom.

    Solves :math:`\nabla L(\theta) = 0`. With :math:`\nabla^2 L(\theta) = Q\Lambda Q^T`, the step is

    .. math:: \delta = -Q\,\mathrm{diag}\!\Big(\frac{\lambda_i}{\lambda_i^2 + \mu}\Big) Q^T \nabla L,
       \quad \text{components with } |\lambda_i| \le \mathrm{rcond}\max|\lambda| \text{ set to } 0,

    accepted when it decreases :math:`\|\nabla L\|` (then :math:`\mu \leftarrow \mu/3`, starting
    from the pure Newton step :math:`\mu = 0`), otherwise :math:`\mu` grows tenfold from
    :math:`10^{-6}\max\lambda^2`; :math:`\mu > 10^{16}\max\lambda^2` means stalled. Once
    :math:`\|\nabla L\| \le` ``gtol`` the iteration continues while a full Newton step still reduces
    the gradient norm, so converged points sit at round-off. All starts are iterated together
    (batched ``grad`` and ``hessian``). A point that does not converge and whose gradient lies in
    the Hessian's near-kernel (flatness :math:`\ge` ``flat_share``) is gradient-flat (module docstring).

    Parameters
    ----------
    model : Model
        Needs ``loss``, ``grad`` and ``hessian`` (dense, for small n) or ``hvp`` (``method="lsmr"``).
    theta0 : ndarray, shape (..., n)
    gtol : float, default 1e-11
        :math:`\|\nabla L\|_2` at or below which a point counts as critical.
    max_iter : int, default 200
        Iterations (accepted or rejected steps); 0 only evaluates the start.
    max_norm : float, optional
        Stop with :attr:`RefineStatus.DIVERGED` when :math:`\|\theta\|` exceeds it. Default, per start,
        ``20 * (1 + ||theta0||)``: tanh networks have critical points "at infinity" (saturated units)
        that Newton iterations chase slowly.
    rcond : float, default ``RCOND`` = 1e-12
        Relative eigenvalue cutoff of the (dense) step.
    method : {"dense", "lsmr"}, default "dense"
        ``"dense"``: eigendecomposition of the batched Hessian; ``"lsmr"``: matrix-free, the damped
        least-squares step by ``scipy.sparse.linalg.lsmr`` on the HVP operator (``damp`` = :math:`\sqrt{\mu}`),
        one point at a time.
    flat_rtol : float, default ``FLAT_RTOL`` = 1e-4
        Near-kernel of the flatness measure, relative to :math:`\max|\lambda|`.
    flat_share : float, default ``FLAT_SHARE`` = 0.5
        Flatness from which a non-converged point is gradient-flat.
    mu0 : float, default 0.0
        Initial damping relative to :math:`\max\lambda^2` (0: start with the pure Newton step, which
        may jump to a far critical point; 1e-4 keeps the first steps short, for "the critical point
        near this one").

    Returns
    -------
    RefineResult
        A failure is a status, never an exception.
    """
    theta0 = check_params(theta0, model.n_params, "theta0")
    if np.iscomplexobj(theta0):
        raise TypeError("`theta0` must be real.")
    check_positive("gtol", gtol)
    check_positive("rcond", rcond)
    check_positive("flat_rtol", flat_rtol)
    check_positive("flat_share", flat_share)
    max_iter = check_int("max_iter", max_iter, minimum=0)
    method = check_choice("method", method, ("dense", "lsmr"))
    batch = theta0.shape[:-1]
    n = model.n_params
    th = np.array(theta0.reshape(-1, n), dtype=np.float64)
    B = th.shape[0]
    if max_norm is None:
        max_norm = 20.0 * (1.0 + np.linalg.norm(th, axis=-1))
    else:
        check_positive("max_norm", max_norm)
        max_norm = np.full(B, float(max_norm))
    g = np.asarray(model.grad(th), dtype=np.float64).reshape(B, n)
    gn = np.linalg.norm(g, axis=-1)
    mu = np.zeros(B)
    status = np.full(B, int(RefineStatus.MAX_ITER), dtype=np.int64)
    n_iter = np.zeros(B, dtype=np.int64)
    active = np.isfinite(gn) & np.all(np.isfinite(th), axis=-1)
    status[~active] = RefineStatus.NONFINITE
    check_positive("mu0", mu0, allow_zero=True)
    if mu0 > 0 and active.any():
        with np.errstate(invalid="ignore", over="ignore"):
            _, l0 = _steps(model, th[active], g[active], np.zeros(int(active.sum())), method, rcond)
        mu[active] = mu0 * np.nan_to_num(l0) ** 2
    polishing = active & (gn <= gtol)  # reached gtol: only full Newton steps, stop at first failure
    for _ in range(max_iter):
        idx = np.nonzero(active)[0]
        if idx.size == 0:
            break
        m = np.where(polishing[idx], 0.0, mu[idx])
        with np.errstate(invalid="ignore", over="ignore"):
            try:
                step, lmax = _steps(model, th[idx], g[idx], m, method, rcond)
            except np.linalg.LinAlgError:
                step, lmax = np.full_like(th[idx], np.nan), np.full(idx.size, np.nan)
        bad = ~(np.all(np.isfinite(step), axis=-1) & np.isfinite(lmax))
        status[idx[bad]] = RefineStatus.NONFINITE
        active[idx[bad]] = False
        idx, step, lmax = idx[~bad], step[~bad], lmax[~bad]
        if idx.size == 0:
            break
        trial = th[idx] + step
        with np.errstate(invalid="ignore", over="ignore"):
            gt = np.asarray(model.grad(trial), dtype=np.float64).reshape(idx.size, n)
        gnt = np.linalg.norm(gt, axis=-1)
        n_iter[idx] += 1
        ok = np.isfinite(gnt) & (gnt < gn[idx])
        acc = idx[ok]
        th[acc], g[acc], gn[acc] = trial[ok], gt[ok], gnt[ok]
        mu[acc] *= _MU_DOWN
        rej = ~ok
        pol = polishing[idx]
        # a rejected step while polishing means round-off is reached: done
        done_pol = idx[rej & pol]
        status[done_pol] = RefineStatus.CONVERGED
        active[done_pol] = False
        grow_m = rej & ~pol
        grow = idx[grow_m]
        l2 = lmax[grow_m] ** 2
        mu[grow] = np.maximum(mu[grow] * _MU_UP, 1e-6 * l2)
        stalled = grow[mu[grow] > 1e16 * np.maximum(l2, 1e-300)]
        status[stalled] = RefineStatus.STALLED
        active[stalled] = False
        newly = idx[(gn[idx] <= gtol) & ~polishing[idx] & active[idx]]
        polishing[newly] = True
        far = idx[active[idx] & (np.linalg.norm(th[idx], axis=-1) > max_norm[idx])]
        status[far] = RefineStatus.DIVERGED
        active[far] = False
    # budget exhausted while polishing, or stopped below gtol, still counts as converged
    undecided = (status == RefineStatus.MAX_ITER) | (status == RefineStatus.STALLED)
    status[undecided & (gn <= gtol)] = RefineStatus.CONVERGED
    with np.errstate(invalid="ignore", over="ignore"):
        loss = np.asarray(model.loss(th), dtype=np.float64).reshape(B)
    flat = np.full(B, np.nan)
    hnorm = np.full(B, np.nan)
    fin = np.isfinite(gn) & np.all(np.isfinite(th), axis=-1) & (status != RefineStatus.NONFINITE)
    if fin.any():
        with np.errstate(invalid="ignore", over="ignore"):
            try:
                flat[fin], hnorm[fin] = _flatness(model, th[fin], g[fin], method, flat_rtol)
            except np.linalg.LinAlgError:
                pass
    residual = gn / (np.maximum(1.0, np.nan_to_num(hnorm, nan=1.0)) * np.maximum(1.0, np.linalg.norm(th, axis=-1)))
    is_flat = np.isin(status, (RefineStatus.MAX_ITER, RefineStatus.STALLED)) & (np.nan_to_num(flat) >= flat_share)
    status[is_flat] = RefineStatus.GRADIENT_FLAT
    return RefineResult(
        theta=th.reshape(batch + (n,)),
        grad_norm=gn.reshape(batch),
        loss=loss.reshape(batch),
        status=status.reshape(batch),
        n_iter=n_iter.reshape(batch),
        residual=residual.reshape(batch),
        flatness=flat.reshape(batch),
    )


def point_quality(model: Model, theta: Params, *, flat_rtol: float = FLAT_RTOL):
    r"""How critical given points are: :math:`\|\nabla L\|`, the relative residual and the gradient flatness.

    The same measures as :class:`RefineResult` (``residual``, ``flatness``), for points that were not
    just refined (e.g. canonical representatives of a class). Dense Hessian.

    Parameters
    ----------
    model : Model
    theta : ndarray, shape (k, n)
    flat_rtol : float, default ``FLAT_RTOL``

    Returns
    -------
    grad_norm, residual, flatness : ndarray, shape (k,)
    """
    th = np.atleast_2d(np.asarray(check_params(theta, model.n_params, "theta"), dtype=np.float64))
    g = np.asarray(model.grad(th), dtype=np.float64).reshape(th.shape)
    gn = np.linalg.norm(g, axis=-1)
    flat, hnorm = _flatness(model, th, g, "dense", flat_rtol)
    residual = gn / (np.maximum(1.0, hnorm) * np.maximum(1.0, np.linalg.norm(th, axis=-1)))
    return gn, residual, flat


@dataclass(frozen=True)
class PointRefinement:
    """Outcome of :func:`refine` (one point).

    Attributes
    ----------
    theta : ndarray, shape (n,)
    grad_norm, loss, residual, flatness : float
        As in :class:`RefineResult`.
    n_iter : int
    code : RefineStatus
    displacement : float
        :math:`\\|\\theta - \\theta_0\\|_2`.
    """

    theta: FloatArray = field(repr=False)
    grad_norm: float
    loss: float
    n_iter: int
    code: RefineStatus
    displacement: float
    residual: float = math.nan
    flatness: float = math.nan

    @property
    def status(self) -> str:
        """``code.name.lower()`` (``"converged"``, ``"max_iter"``, ``"nonfinite"``, ...)."""
        return self.code.name.lower()

    @property
    def converged(self) -> bool:
        return self.code == RefineStatus.CONVERGED


def refine(
    model: Model,
    theta0: Params,
    *,
    grad_tol: float = REFINE_GRAD_TOL,
    max_iter: int = 100,
    method: Literal["auto", "dense", "lsmr"] = "auto",
    dense_max: int = 3000,
    mu0: float = 1e-4,
) -> PointRefinement:
    r"""One point through :func:`refine_critical` (a thin wrapper for callers that hold a single point).

    Parameters
    ----------
    model : Model
    theta0 : ndarray, shape (n,)
    grad_tol : float, default ``REFINE_GRAD_TOL`` (1e-12)
        The ``gtol`` of :func:`refine_critical`.
    max_iter : int, default 100
    method : {"auto", "dense", "lsmr"}, default "auto"
        ``"auto"``: ``"dense"`` up to ``dense_max`` parameters, else ``"lsmr"``.
    dense_max : int, default 3000
    mu0 : float, default 1e-4
        Initial relative damping (short first steps: the critical point near ``theta0``).

    Returns
    -------
    PointRefinement
    """
    n = model.n_params
    theta = np.array(check_params(theta0, n, "theta0"), dtype=np.float64)
    if theta.ndim != 1:
        raise InputError(f"`theta0` must be one parameter vector of shape ({n},); got shape {theta.shape}.")
    method = check_choice("method", method, ("auto", "dense", "lsmr"))
    if method == "auto":
        method = "dense" if n <= dense_max else "lsmr"
    r = refine_critical(model, theta[None], gtol=grad_tol, max_iter=max_iter, method=method, mu0=mu0)
    disp = float(np.linalg.norm(r.theta[0] - theta)) if np.all(np.isfinite(theta)) else 0.0
    return PointRefinement(r.theta[0], float(r.grad_norm[0]), float(r.loss[0]), int(r.n_iter[0]),
                           RefineStatus(int(r.status[0])), disp, float(r.residual[0]), float(r.flatness[0]))
