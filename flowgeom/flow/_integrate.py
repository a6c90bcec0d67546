r"""Ensembles of gradient-flow trajectories, discrete gradient descent, and an invariant-preserving scheme.

Let :math:`L(\theta)` be the loss of a :class:`flowgeom.models.Model`. This module solves the
gradient flow

.. math:: \frac{d\theta}{dt} = -\nabla L(\theta), \qquad \theta(t_0) = \theta_0,

for a whole ensemble of initial conditions at once (a batch ``(N, n)``), each trajectory with
its own adaptive step size, and runs discrete gradient descent
:math:`\theta_{k+1} = \theta_k - \eta \nabla L(\theta_k)` with the same interface.

Methods (``integrate(..., method=...)``):

- ``"dopri5"`` (default): Dormand--Prince 5(4) with per-trajectory step-size control and the
  4th-order continuous extension for save points (no step is forced onto a save time).
  Vectorized over the ensemble in numpy for any model; for
  :class:`~flowgeom.networks.DeepLinearNetwork` a compiled numba kernel runs each
  trajectory's whole adaptive loop (``backend="auto"``; numba is optional).
- ``"gauss-legendre"`` (alias ``"invariant"``): 2-stage Gauss--Legendre collocation
  (order 4). It conserves every quadratic first integral of the flow, in particular the
  Lemma 1 invariants :math:`C_j = W_{j+1}^T W_{j+1} - W_j W_j^T` of a deep linear network,
  up to the tolerance of its nonlinear solve. ``"implicit-midpoint"`` is its 1-stage
  (order 2) member.

Every trajectory ends with a :class:`Status` (data, never an exception): a trajectory that
diverges or fails does not stop the others.

References
----------
.. [1] J. R. Dormand, P. J. Prince, "A family of embedded Runge-Kutta formulae", J. Comput.
   Appl. Math. 6 (1980).
.. [2] E. Hairer, S. P. Norsett, G. Wanner, "Solving Ordinary Differential Equations I",
   2nd ed., Springer (1993), Sec. II.4 (step size control), II.6 (dense output, DOPRI5).
.. [3] E. Hairer, C. Lubich, G. Wanner, "Geometric Numerical Integration", 2nd ed.,
   Springer (2006), Sec. IV.2 (quadratic invariants are conserved by Gauss collocation).
"""

from __future__ import annotations

import dataclasses
import math
import os

import numpy as np

from flowgeom._types import FloatArray
from flowgeom._validate import InputError
from flowgeom.flow._base import (
    NEWTON_MAX_PARAMS,
    STATUS_MESSAGES,
    SaveAt,
    Status,
    Trajectory,
    _Recorder,
)
from flowgeom.flow._explicit import _dopri5_numpy, _gd_numpy
from flowgeom.flow._implicit import gauss_legendre
from flowgeom.flow._methods import METHODS
from flowgeom.flow._options import FlowOptions
from flowgeom.flow._rosenbrock import DENSE_MAX_PARAMS, rosenbrock
from flowgeom.flow._stiffness import stiffness
from flowgeom.models.base import Model, check_params

__all__ = [
    "METHODS",
    "STATUS_MESSAGES",
    "SaveAt",
    "Status",
    "Trajectory",
    "gradient_descent",
    "integrate",
    "numba_available",
]


def numba_available() -> bool:
    """True when the optional numba backend can be used (numba importable and not disabled).

    Set the environment variable ``FLOWGEOM_DISABLE_NUMBA=1`` to force the pure-numpy path.
    """
    if os.environ.get("FLOWGEOM_DISABLE_NUMBA", "").strip() not in ("", "0"):
        return False
    try:
        from flowgeom.flow import _numba
    except Exception:  # ImportError, or numba failing to set up its cache: fall back to numpy
        return False
    return _numba.HAVE_NUMBA


# ---------------------------------------------------------------- validation helpers
def _check_model(model) -> None:
    if not isinstance(model, Model):
        raise TypeError(
            f"`model` must implement flowgeom.models.Model (n_params, loss, grad, hvp, hessian, "
            f"conserved); got {type(model).__name__}."
        )


def _check_theta0(model, theta0) -> FloatArray:
    theta = check_params(theta0, model.n_params, "theta0")
    if np.iscomplexobj(theta):
        raise TypeError("`theta0` must be real; got a complex array.")
    if theta.ndim == 1:
        theta = theta[None, :]
    elif theta.ndim != 2:
        raise ValueError(f"`theta0` must have shape (n,) or (N, n); got shape {theta.shape}.")
    if theta.shape[0] == 0:
        raise ValueError("`theta0` holds no trajectories (N = 0); pass at least one initial condition.")
    bad = ~np.all(np.isfinite(theta), axis=1)
    if bad.any():
        raise ValueError(
            f"`theta0` must be finite; rows {np.flatnonzero(bad)[:10].tolist()} contain NaN or inf."
        )
    return np.ascontiguousarray(theta, dtype=np.float64)


def _positive(value, name, allow_zero=False, allow_inf=False):
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"`{name}` must be a real number; got {value!r}.") from None
    ok = (v >= 0 if allow_zero else v > 0) and (allow_inf or np.isfinite(v)) and not np.isnan(v)
    if not ok:
        kind = "non-negative" if allow_zero else "positive"
        raise ValueError(f"`{name}` must be a {kind} {'' if allow_inf else 'finite '}number; got {value!r}.")
    return v


def _resolve_backend(backend: str, model, method: str, solver: str = "auto") -> str:
    """"numba" or "numpy". Compiled: DeepLinearNetwork with DOPRI5, gradient descent, or Rosenbrock with
    the dense solver (``solver`` "auto" or "dense" and at most ``DENSE_MAX_PARAMS`` parameters)."""
    if backend not in ("auto", "numpy", "numba"):
        raise ValueError(f"`backend` must be 'auto', 'numpy' or 'numba'; got {backend!r}.")
    from flowgeom.models.deep_linear import DeepLinearNetwork

    # exact type: a subclass may override loss/grad, which the compiled kernel would ignore
    dense = solver == "dense" or (solver == "auto" and model.n_params <= DENSE_MAX_PARAMS)
    supported = type(model) is DeepLinearNetwork and (
        method in ("dopri5", "gd") or (method == "rosenbrock" and dense))
    if backend == "numpy":
        return "numpy"
    if backend == "numba":
        if not numba_available():
            raise ValueError(
                "`backend='numba'` needs numba installed and FLOWGEOM_DISABLE_NUMBA unset; "
                "use backend='numpy' or 'auto'."
            )
        if not supported:
            raise ValueError(
                f"`backend='numba'` supports DeepLinearNetwork with method 'dopri5', 'rosenbrock' (dense "
                f"solver, n_params <= {DENSE_MAX_PARAMS}) or gradient descent; got {type(model).__name__} with "
                f"method {method!r} (solver {solver!r}, n_params {model.n_params}). Use backend='auto'."
            )
        return "numba"
    return "numba" if (supported and numba_available()) else "numpy"


# ---------------------------------------------------------------- public entry points
def integrate(
    model: Model,
    theta0,
    t1: float,
    *,
    options: FlowOptions | None = None,
    saveat: SaveAt | None = None,
    t0: float = 0.0,
    **overrides,
) -> Trajectory:
    r"""Integrate the gradient flow :math:`\dot\theta = -\nabla L(\theta)` for an ensemble of initial conditions.

    Parameters
    ----------
    model : Model
        Any model of the plug-in protocol (:class:`flowgeom.models.Model`).
    theta0 : array_like, shape (n,) or (N, n)
        Initial conditions; results always carry a leading axis N (N = 1 for a single vector).
    t1 : float
        Final time, ``t1 > t0``.
    options : FlowOptions or None, default None
        How to integrate; None means ``FlowOptions()`` (DOPRI5, rtol 1e-6, atol 1e-9,
        grad_tol 1e-10, max_steps 100_000, max_norm 1e8; see :class:`FlowOptions`).
    saveat : SaveAt or None, default None
        Save times and whether to keep states; None means ``SaveAt()`` (t0 plus 200
        log-spaced times).
    t0 : float, default 0.0
        Initial time.
    **overrides
        Any :class:`FlowOptions` field (``method``, ``rtol``, ``atol``, ``grad_tol``,
        ``max_steps``, ``max_norm``, ``backend``, ``dt0``, ``adaptive``, ``newton_tol``,
        ``solver``), applied on top of ``options``. The methods:

        - ``"dopri5"`` (default): explicit Dormand--Prince 5(4), per-trajectory adaptive
          steps, save points by its 4th-order dense output.
        - ``"gauss-legendre"`` (= ``"invariant"``): 2-stage Gauss--Legendre collocation, order
          4, conserves quadratic invariants; step doubling; steps land on save times.
          ``"implicit-midpoint"``: its 1-stage (order 2) member. ``solver``: "newton" (dense
          Hessian), "fixed-point", or "auto" (newton for n <= 200).
        - ``"rosenbrock"`` (= ``"stiff"``): L-stable RODAS4, order 4(3), the exact Hessian as
          Jacobian (``solver``: "dense" LU for n <= 200; beyond, "structured" where the model
          solves its shifted Hessian exactly (``model.shifted_hessian_solver``: deep linear
          networks), else "krylov" GMRES on ``model.hvp``; "auto" picks); RODAS4's
          stage-based dense output (order 3). For stiff flows (raw data).
        - ``"auto"``: a stiffness estimate at t0 (:func:`flowgeom.flow._stiffness.stiffness`)
          picks "rosenbrock" or "dopri5"; ``Trajectory.method`` is the method that ran and
          ``Trajectory.info`` holds the estimate and ``{"requested": "auto"}``.

        Tolerances: the local error test is RMS(err / (atol + rtol * max(|y|, |y_new|))) <= 1.
        ``grad_tol``: status CONVERGED once :math:`\|\nabla L\|_2 \le` ``grad_tol`` at an
        accepted step (0 disables). ``max_steps``: budget of attempted steps per trajectory
        (MAX_STEPS). ``max_norm``: DIVERGED when :math:`\|\theta\|_2` exceeds it or the state
        is non-finite. ``dt0``: initial step (None: Hairer's choice per trajectory); with
        ``adaptive=False`` the fixed step. ``backend``: "auto" uses the compiled numba kernel
        for DeepLinearNetwork with "dopri5", and with "rosenbrock" and the dense solver
        (n <= 200), when numba is available; "numpy" otherwise.

    Returns
    -------
    Trajectory

    Raises
    ------
    TypeError
        If ``model`` does not implement the Model protocol.
    ValueError
        For bad arguments (:class:`~flowgeom._validate.InputError`; the message names the
        argument and the fix).

    Notes
    -----
    Finished trajectories (converged, reached t1, diverged, failed, out of steps) leave the
    active set, so the batch shrinks as the ensemble settles. Error control is per trajectory:
    one stiff or diverging member does not shrink the others' steps.

    Examples
    --------
    >>> import numpy as np
    >>> from flowgeom.models.deep_linear import DeepLinearNetwork
    >>> from flowgeom.flow import integrate, SaveAt
    >>> net = DeepLinearNetwork.canonical((3, 2, 2), [2.0, 1.0])
    >>> theta0 = net.random_params(np.random.default_rng(0), scale=0.5, size=4)
    >>> traj = integrate(net, theta0, 40.0, saveat=SaveAt(ts=[0.0, 40.0]))
    >>> traj.ys.shape
    (4, 2, 10)
    >>> bool(np.all(traj.loss_final < 1e-8))
    True
    """
    _check_model(model)
    y0 = _check_theta0(model, theta0)
    if options is None:
        options = FlowOptions()
    elif not isinstance(options, FlowOptions):
        raise TypeError(f"`options` must be a FlowOptions or None; got {type(options).__name__}.")
    if overrides:
        options = options.replace(**overrides)
    if options.method == "gd":
        raise InputError("`method='gd'` is gradient descent: call flowgeom.flow.gradient_descent.")
    try:
        t0 = float(t0)
        t1 = float(t1)
    except (TypeError, ValueError):
        raise TypeError(f"`t0` and `t1` must be real numbers; got {t0!r}, {t1!r}.") from None
    if not np.isfinite(t0):
        raise InputError(f"`t0` must be finite; got {t0!r}.")
    if not (np.isfinite(t1) and t1 > t0):
        raise InputError(f"`t1` must be finite and greater than t0 = {t0}; got {t1!r}.")
    if saveat is None:
        saveat = SaveAt()
    elif not isinstance(saveat, SaveAt):
        raise TypeError(f"`saveat` must be a SaveAt or None; got {type(saveat).__name__}.")
    ts = saveat.times(t0, t1)
    o = options
    method = o.method
    info = None
    if method == "auto":
        with np.errstate(all="ignore"):
            est = stiffness(model, y0, t0, t1, o.grad_tol)
        method = "rosenbrock" if est["stiff"] else "dopri5"
        info = {"requested": "auto", **est}
    solver = o.solver
    if method in ("gauss-legendre", "implicit-midpoint"):
        if solver in ("dense", "krylov", "structured"):
            raise InputError(f"`solver` for {method!r} must be 'auto', 'newton' or 'fixed-point'; got {solver!r}.")
        if solver == "auto":
            solver = "newton" if model.n_params <= NEWTON_MAX_PARAMS else "fixed-point"
    elif method == "rosenbrock" and solver in ("newton", "fixed-point"):
        raise InputError(f"`solver` for 'rosenbrock' must be 'auto', 'dense', 'krylov' or 'structured'; got {solver!r}.")
    if method == "rosenbrock" and solver == "structured":
        from flowgeom.flow._rosenbrock import _has_structured_solver

        if not _has_structured_solver(model):
            raise InputError(f"`solver='structured'` needs a model with an exact `shifted_hessian_solver` "
                             f"({type(model).__name__} has none for this shape); use 'auto', 'dense' or 'krylov'.")
    be = _resolve_backend(o.backend, model, method, solver)

    opts = {"rtol": o.rtol, "atol": o.atol, "grad_tol": o.grad_tol, "max_steps": o.max_steps,
            "max_norm": o.max_norm, "dt0": o.dt0, "adaptive": o.adaptive}
    if method == "dopri5" and be == "numba":
        from flowgeom.flow._numba import dopri5_dln

        tr = dopri5_dln(model, y0, ts, t0, t1, states=saveat.states, **opts)
        return tr if info is None else dataclasses.replace(tr, info=info)
    if method == "rosenbrock" and be == "numba":
        from flowgeom.flow._numba_rosenbrock import rosenbrock_dln

        tr = rosenbrock_dln(model, y0, ts, t0, t1, states=saveat.states, **opts)
        return tr if info is None else dataclasses.replace(tr, info=info)
    rec = _Recorder(model, y0, ts, saveat.states)
    with np.errstate(all="ignore"):
        if method == "dopri5":
            _dopri5_numpy(rec, y0, t0, t1, **opts)
        elif method == "rosenbrock":
            rosenbrock(rec, y0, t0, t1, solver=solver, **opts)
        else:
            stages = 2 if method == "gauss-legendre" else 1
            gauss_legendre(rec, y0, t0, t1, stages=stages, newton_tol=o.newton_tol, solver=solver, **opts)
    return rec.result(method, o.rtol, o.atol, info=info)


# ---------------------------------------------------------------- gradient descent
def gradient_descent(
    model: Model,
    theta0,
    lr: float,
    *,
    n_steps: int | None = None,
    t1: float | None = None,
    saveat: SaveAt | None = None,
    grad_tol: float = 1e-10,
    max_norm: float = 1e8,
    max_loss: float | None = None,
    track_invariants: bool = True,
    backend: str = "auto",
) -> Trajectory:
    r"""Discrete gradient descent :math:`\theta_{k+1} = \theta_k - \eta\,\nabla L(\theta_k)` for an ensemble.

    Step k is placed at "time" :math:`t_k = k\eta`, so that GD lines up with the gradient flow
    it discretises.

    Parameters
    ----------
    model : Model
    theta0 : array_like, shape (n,) or (N, n)
    lr : float
        The step size :math:`\eta > 0` (see :func:`flowgeom.linear.safe_learning_rate` for
        one with a guarantee).
    n_steps : int or None, default None
        Number of GD steps. Exactly one of ``n_steps`` and ``t1`` must be given.
    t1 : float or None, default None
        Run ``ceil(t1 / lr)`` steps (so the final time is ``>= t1``).
    saveat : SaveAt or None, default None
        Save times; each is rounded to the nearest step, ``ts = k * lr``. The default log grid
        is rounded to distinct steps, so it may hold fewer than ``n_log + 1`` times.
    grad_tol : float, default 1e-10
        Status CONVERGED once :math:`\|\nabla L(\theta_k)\| \le` ``grad_tol``.
    max_norm : float, default 1e8
        Status DIVERGED when a step produces a non-finite state or :math:`\|\theta\| >` ``max_norm``.
    max_loss : float or None, default None
        Also DIVERGED when the loss of a new iterate exceeds ``max_loss`` (None: no loss test;
        setting it costs one loss evaluation per step).
    track_invariants : bool, default True
        Record ``invariant_drift`` (GD does not conserve the :math:`C_j`: one step changes
        them by :math:`\eta^2(g_{j+1}^Tg_{j+1} - g_jg_j^T)`); costs one ``model.conserved``
        per step. False skips it and reports NaN.
    backend : {"auto", "numpy", "numba"}, default "auto"
        As for :func:`integrate`.

    Returns
    -------
    Trajectory
        ``method == "gd"``, ``lr`` set, ``n_steps`` = GD updates performed, ``n_rhs`` =
        gradient evaluations. A diverged trajectory's ``y_final`` is its last iterate that
        passed the checks, so ``loss_final`` stays finite.
    """
    _check_model(model)
    y0 = _check_theta0(model, theta0)
    lr = _positive(lr, "lr")
    if (n_steps is None) == (t1 is None):
        raise ValueError("Pass exactly one of `n_steps` and `t1` (got both or neither).")
    if n_steps is None:
        t1 = _positive(t1, "t1")
        n_total = max(1, int(math.ceil(t1 / lr * (1 - 1e-12))))
    else:
        if isinstance(n_steps, bool) or int(n_steps) != n_steps or n_steps < 1:
            raise ValueError(f"`n_steps` must be a positive integer; got {n_steps!r}.")
        n_total = int(n_steps)
    grad_tol = _positive(grad_tol, "grad_tol", allow_zero=True)
    max_norm = _positive(max_norm, "max_norm", allow_inf=True)
    if max_loss is not None:
        max_loss = _positive(max_loss, "max_loss", allow_inf=True)
    if saveat is None:
        saveat = SaveAt()
    elif not isinstance(saveat, SaveAt):
        raise TypeError(f"`saveat` must be a SaveAt or None; got {type(saveat).__name__}.")
    T = n_total * lr
    if saveat.ts is not None:
        ks = np.rint(saveat.times(0.0, T) / lr).astype(np.int64)
    else:
        tf = 1e-3 * T if saveat.t_first is None else saveat.t_first
        k_first = max(1, int(round(tf / lr)))
        if k_first >= n_total:
            ks = np.array([0, n_total])
        else:
            ks = np.unique(np.rint(np.geomspace(k_first, n_total, saveat.n_log)).astype(np.int64))
            ks = np.concatenate([[0], ks])
    ks = np.clip(ks, 0, n_total)
    ts = ks * lr
    be = _resolve_backend(backend, model, "gd")
    if be == "numba":
        from flowgeom.flow._numba import gd_dln

        return gd_dln(model, y0, lr, n_total, ks, ts, states=saveat.states, grad_tol=grad_tol,
                      max_norm=max_norm, max_loss=max_loss, track_invariants=bool(track_invariants))
    rec = _Recorder(model, y0, ts, saveat.states)
    with np.errstate(all="ignore"):
        _gd_numpy(rec, y0, lr, n_total, ks, grad_tol=grad_tol, max_norm=max_norm, max_loss=max_loss,
                  track_invariants=bool(track_invariants))
    return rec.result("gd", np.nan, np.nan, lr=lr)


# The result types live in a private module; present them (repr, docs, pickling) as part of this one.
for _cls in (SaveAt, Trajectory):
    _cls.__module__ = __name__
del _cls
