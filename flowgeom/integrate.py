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

import enum
import math
import os
from dataclasses import dataclass, field

import numpy as np

from ._types import FloatArray
from ._integrate_bounds import NormBound, SafeLearningRate, flow_norm_bound, safe_learning_rate
from .models import Model, check_params

__all__ = [
    "Status",
    "STATUS_MESSAGES",
    "SaveAt",
    "Trajectory",
    "integrate",
    "gradient_descent",
    "numba_available",
    "METHODS",
    "NormBound",
    "SafeLearningRate",
    "flow_norm_bound",
    "safe_learning_rate",
]


class Status(enum.IntEnum):
    """How a trajectory ended. Stored as int8 in :attr:`Trajectory.status`."""

    CONVERGED = 0
    REACHED_T1 = 1
    DIVERGED = 2
    MAX_STEPS = 3
    FAILED = 4


STATUS_MESSAGES: dict[int, str] = {
    Status.CONVERGED: "converged: ||grad L|| <= grad_tol (a critical point was reached, to tolerance)",
    Status.REACHED_T1: "reached t1 without converging",
    Status.DIVERGED: "diverged: non-finite state or ||theta|| > max_norm (or GD loss above max_loss)",
    Status.MAX_STEPS: "step budget max_steps exhausted",
    Status.FAILED: "failed: step size underflow or nonlinear-solve failure",
}

_RUNNING = -1  # internal status of a trajectory still being integrated

# Step-size controller constants (the same as scipy.integrate's RK45, so step counts compare).
SAFETY = 0.9  # fraction of the optimal step actually taken
MIN_FACTOR = 0.2  # largest decrease of the step in one rejection
MAX_FACTOR = 10.0  # largest increase of the step after an accepted step

METHODS = ("dopri5", "gauss-legendre", "invariant", "implicit-midpoint")
NEWTON_MAX_PARAMS = 200  # above this, implicit methods default to fixed-point stage iteration

# ---------------------------------------------------------------- Dormand-Prince 5(4) tableau
# Ref. [1]; the error weights E = b5 - b4 and the dense output coefficients D (the
# continuous extension of order 4 of Hairer's dopri5.f, ref. [2] Sec. II.6).
DP_C = np.array([0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0])
DP_A = np.array(
    [
        [0, 0, 0, 0, 0, 0],
        [1 / 5, 0, 0, 0, 0, 0],
        [3 / 40, 9 / 40, 0, 0, 0, 0],
        [44 / 45, -56 / 15, 32 / 9, 0, 0, 0],
        [19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729, 0, 0],
        [9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656, 0],
        [35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84],
    ]
)
DP_B = DP_A[6].copy()  # 5th-order weights; stage 7 is evaluated at y_new (FSAL)
DP_E = np.array(
    [71 / 57600, 0, -71 / 16695, 71 / 1920, -17253 / 339200, 22 / 525, -1 / 40]
)  # b5 - b4 (Hairer's e1..e7)
DP_D = np.array(
    [
        -12715105075 / 11282082432,
        0.0,
        87487479700 / 32700410799,
        -10690763975 / 1880347072,
        701980252875 / 199316789632,
        -1453857185 / 822651844,
        69997945 / 29380423,
    ]
)
DP_ERROR_EXPONENT = -1.0 / 5.0  # the error estimate is O(h^5)


def numba_available() -> bool:
    """True when the optional numba backend can be used (numba importable and not disabled).

    Set the environment variable ``FLOWGEOM_DISABLE_NUMBA=1`` to force the pure-numpy path.
    """
    if os.environ.get("FLOWGEOM_DISABLE_NUMBA", "").strip() not in ("", "0"):
        return False
    try:
        from . import _integrate_numba  # noqa: F401
    except ImportError:
        return False
    return _integrate_numba.HAVE_NUMBA


# ---------------------------------------------------------------- result types
@dataclass(frozen=True, eq=False)
class SaveAt:
    r"""Where a trajectory is recorded.

    Parameters
    ----------
    ts : array_like or None, default None
        Explicit save times, non-decreasing, within ``[t0, t1]``. ``None`` gives the
        log-spaced default: ``t0`` followed by ``n_log`` times
        :math:`t_0 + \tau_i`, :math:`\tau_i` log-spaced from ``t_first`` to ``t1 - t0``.
        Log spacing resolves the plateaus of small-initialization runs, which last times of
        order :math:`\log(1/\varepsilon)/s`.
    n_log : int, default 200
        Number of log-spaced save times after ``t0`` when ``ts`` is None.
    t_first : float or None, default None
        First positive offset of the log grid; ``None`` means ``1e-3 * (t1 - t0)``.
    states : bool, default True
        Store the states ``ys``; ``False`` keeps only loss and gradient norm at the save
        times (memory for large ensembles).
    """

    ts: FloatArray | None = None
    n_log: int = 200
    t_first: float | None = None
    states: bool = True

    def __post_init__(self):
        if self.ts is not None:
            ts = np.asarray(self.ts, dtype=np.float64).ravel().copy()
            if ts.size == 0 or not np.all(np.isfinite(ts)) or np.any(np.diff(ts) < 0):
                raise ValueError(
                    f"`ts` must be a non-empty, finite, non-decreasing sequence of times; got {self.ts!r}."
                )
            ts.setflags(write=False)
            object.__setattr__(self, "ts", ts)
        if isinstance(self.n_log, bool) or int(self.n_log) != self.n_log or self.n_log < 1:
            raise ValueError(f"`n_log` must be a positive integer; got {self.n_log!r}.")
        object.__setattr__(self, "n_log", int(self.n_log))
        if self.t_first is not None and not (np.isfinite(self.t_first) and self.t_first > 0):
            raise ValueError(f"`t_first` must be a positive finite float or None; got {self.t_first!r}.")
        object.__setattr__(self, "states", bool(self.states))

    def times(self, t0: float, t1: float) -> FloatArray:
        """The save times for the interval ``[t0, t1]``, shape ``(n_save,)``."""
        if self.ts is not None:
            span = max(abs(t0), abs(t1), 1.0) * 1e-12
            if self.ts[0] < t0 - span or self.ts[-1] > t1 + span:
                raise ValueError(
                    f"`saveat.ts` must lie within [t0, t1] = [{t0}, {t1}]; got times from "
                    f"{self.ts[0]} to {self.ts[-1]}."
                )
            return np.clip(self.ts, t0, t1)
        T = t1 - t0
        t_first = 1e-3 * T if self.t_first is None else self.t_first
        if t_first >= T:
            raise ValueError(
                f"`saveat.t_first` = {t_first} must be smaller than t1 - t0 = {T}; lower it or pass `ts`."
            )
        tau = np.geomspace(t_first, T, self.n_log)
        tau[-1] = T
        return np.concatenate([[t0], t0 + tau])


@dataclass(frozen=True, eq=False)
class Trajectory:
    r"""An ensemble of N trajectories recorded at shared save times.

    Attributes
    ----------
    ts : ndarray, shape (n_save,)
        Save times, shared by all trajectories.
    ys : ndarray, shape (N, n_save, n), or None
        States at ``ts`` (None when ``SaveAt(states=False)``). After a trajectory converges
        (or reaches t1) its final state is repeated; after divergence, failure or
        ``MAX_STEPS`` the entries are NaN.
    loss, grad_norm : ndarray, shape (N, n_save)
        :math:`L` and :math:`\|\nabla L\|_2` at the save times (NaN where ``ys`` is NaN).
    y_final : ndarray, shape (N, n)
        Last accepted state that passed the divergence checks.
    t_final : ndarray, shape (N,)
        Its time.
    loss_final, grad_norm_final : ndarray, shape (N,)
        Loss and gradient norm at ``y_final`` (finite even for diverged trajectories).
    status : ndarray of int8, shape (N,)
        :class:`Status` codes; see :meth:`message`.
    n_steps : ndarray of int, shape (N,)
        Accepted steps.
    n_rhs : ndarray of int, shape (N,)
        Gradient evaluations spent on stepping (including the initial step-size guess and,
        for implicit methods, the Newton iterations); the evaluations at save points for
        ``grad_norm`` are not counted.
    invariant_drift : ndarray, shape (N,)
        :math:`\max_k \|c(t_k) - c(t_0)\|_2 / (1 + \|c(t_0)\|_2)` over accepted steps,
        with :math:`c` = ``model.conserved`` (0.0 for models with no conserved quantities).
    method : str
    rtol, atol : float
    backend : str, default "numpy"
        Which implementation ran ("numpy" or "numba").
    lr : float or None, default None
        The step size of gradient descent (``method == "gd"``).
    """

    ts: FloatArray
    ys: FloatArray | None
    loss: FloatArray
    grad_norm: FloatArray
    y_final: FloatArray
    t_final: FloatArray
    loss_final: FloatArray
    grad_norm_final: FloatArray
    status: np.ndarray
    n_steps: np.ndarray
    n_rhs: np.ndarray
    invariant_drift: FloatArray
    method: str
    rtol: float
    atol: float
    backend: str = "numpy"
    lr: float | None = None

    def __post_init__(self):
        N = self.status.shape[0]
        for name in ("t_final", "loss_final", "grad_norm_final", "n_steps", "n_rhs", "invariant_drift"):
            if getattr(self, name).shape != (N,):
                raise ValueError(f"`{name}` must have shape (N,) = ({N},); got {getattr(self, name).shape}.")
        if self.loss.shape != (N, self.ts.shape[0]) or self.grad_norm.shape != self.loss.shape:
            raise ValueError("`loss` and `grad_norm` must have shape (N, n_save).")

    def __len__(self) -> int:
        return int(self.status.shape[0])

    def message(self, i: int) -> str:
        """Human-readable status of trajectory ``i``."""
        return STATUS_MESSAGES[int(self.status[i])]

    def counts(self) -> dict[str, int]:
        """Number of trajectories per status name, e.g. ``{"CONVERGED": 10, ...}``."""
        return {s.name: int(np.sum(self.status == s)) for s in Status}


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


def _resolve_backend(backend: str, model, method: str) -> str:
    if backend not in ("auto", "numpy", "numba"):
        raise ValueError(f"`backend` must be 'auto', 'numpy' or 'numba'; got {backend!r}.")
    from .networks import DeepLinearNetwork

    supported = isinstance(model, DeepLinearNetwork) and method in ("dopri5", "gd")
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
                f"`backend='numba'` supports DeepLinearNetwork with method 'dopri5' or gradient descent; "
                f"got {type(model).__name__} with method {method!r}. Use backend='auto'."
            )
        return "numba"
    return "numba" if (supported and numba_available()) else "numpy"


# ---------------------------------------------------------------- shared bookkeeping
class _Recorder:
    """Output arrays of an ensemble run and the bookkeeping shared by all methods."""

    def __init__(self, model, y0, ts, states):
        N, n = y0.shape
        S = ts.shape[0]
        self.model = model
        self.ts = ts
        self.ys = np.full((N, S, n), np.nan) if states else None
        self.loss = np.full((N, S), np.nan)
        self.grad_norm = np.full((N, S), np.nan)
        self.status = np.full(N, _RUNNING, dtype=np.int8)
        self.n_steps = np.zeros(N, dtype=np.int64)
        self.n_rhs = np.zeros(N, dtype=np.int64)
        self.y_final = y0.copy()
        self.t_final = np.zeros(N)
        self.drift = np.zeros(N)
        c0 = np.asarray(model.conserved(y0), dtype=np.float64).reshape(N, -1)
        self.c0 = c0
        self.c0_scale = 1.0 + np.linalg.norm(c0, axis=1)
        self.has_conserved = c0.shape[1] > 0

    def record(self, gidx, jsave, y, loss=None, gnorm=None):
        """Store states ``y`` (m, n) at save indices ``jsave`` (m,) of trajectories ``gidx``."""
        if gidx.size == 0:
            return
        if loss is None:
            loss = self.model.loss(y)
        if gnorm is None:
            gnorm = np.linalg.norm(self.model.grad(y), axis=-1)
        if self.ys is not None:
            self.ys[gidx, jsave] = y
        self.loss[gidx, jsave] = loss
        self.grad_norm[gidx, jsave] = gnorm

    def update_drift(self, gidx, y):
        if not self.has_conserved or gidx.size == 0:
            return
        c = np.asarray(self.model.conserved(y)).reshape(gidx.size, -1)
        d = np.linalg.norm(c - self.c0[gidx], axis=1) / self.c0_scale[gidx]
        d = np.where(np.isfinite(d), d, np.inf)
        self.drift[gidx] = np.maximum(self.drift[gidx], d)

    def finish(self, gidx, status, y, t, jsave, loss=None, gnorm=None):
        """Close trajectories ``gidx`` with ``status`` at state ``y`` (last good state) and time ``t``.

        Remaining save points (indices >= ``jsave``) repeat the final state when the
        trajectory converged or reached t1, and stay NaN otherwise.
        """
        if gidx.size == 0:
            return
        self.status[gidx] = status
        self.y_final[gidx] = y
        self.t_final[gidx] = t
        fill = (status == Status.CONVERGED) | (status == Status.REACHED_T1)
        if np.any(fill):
            S = self.ts.shape[0]
            sel = np.flatnonzero(fill & (jsave < S))
            if sel.size:
                if loss is None:
                    loss = self.model.loss(y)
                if gnorm is None:
                    gnorm = np.linalg.norm(self.model.grad(y), axis=-1)
                loss = np.broadcast_to(loss, (gidx.size,))
                gnorm = np.broadcast_to(gnorm, (gidx.size,))
                for i in sel:
                    g, j = gidx[i], jsave[i]
                    if self.ys is not None:
                        self.ys[g, j:] = y[i]
                    self.loss[g, j:] = loss[i]
                    self.grad_norm[g, j:] = gnorm[i]

    def result(self, method, rtol, atol, backend="numpy", lr=None) -> Trajectory:
        model = self.model
        with np.errstate(all="ignore"):
            loss_f = np.asarray(model.loss(self.y_final), dtype=np.float64)
            gn_f = np.linalg.norm(model.grad(self.y_final), axis=-1)
        assert np.all(self.status != _RUNNING), "internal error: a trajectory was left running"
        return Trajectory(
            ts=self.ts,
            ys=self.ys,
            loss=self.loss,
            grad_norm=self.grad_norm,
            y_final=self.y_final,
            t_final=self.t_final,
            loss_final=loss_f,
            grad_norm_final=gn_f,
            status=self.status,
            n_steps=self.n_steps,
            n_rhs=self.n_rhs,
            invariant_drift=self.drift,
            method=method,
            rtol=float(rtol),
            atol=float(atol),
            backend=backend,
            lr=lr,
        )


def _rms(x):
    return np.sqrt(np.mean(x * x, axis=-1))


def _initial_step(fun, y0, f0, t_span, order, rtol, atol):
    """Per-trajectory initial step (Hairer et al. [2], Sec. II.4; as scipy's select_initial_step).

    One extra gradient evaluation per trajectory.
    """
    scale = atol + np.abs(y0) * rtol
    d0 = _rms(y0 / scale)
    d1 = _rms(f0 / scale)
    small = (d0 < 1e-5) | (d1 < 1e-5)
    h0 = np.where(small, 1e-6, 0.01 * d0 / np.where(small, 1.0, d1))
    h0 = np.minimum(h0, t_span)
    y1 = y0 + h0[:, None] * f0
    f1 = fun(y1)
    d2 = _rms((f1 - f0) / scale) / h0
    dm = np.maximum(d1, d2)
    tiny = ~(dm > 1e-15)  # also catches NaN
    h1 = np.where(tiny, np.maximum(1e-6, h0 * 1e-3), (0.01 / np.where(tiny, 1.0, dm)) ** (1.0 / (order + 1)))
    return np.minimum(np.minimum(100 * h0, h1), t_span)


# ---------------------------------------------------------------- public entry points
def integrate(
    model: Model,
    theta0,
    t1: float,
    *,
    t0: float = 0.0,
    method: str = "dopri5",
    rtol: float = 1e-6,
    atol: float = 1e-9,
    saveat: SaveAt | None = None,
    grad_tol: float = 1e-10,
    max_steps: int = 100_000,
    max_norm: float = 1e8,
    dt0: float | None = None,
    adaptive: bool = True,
    newton_tol: float = 1e-13,
    solver: str = "auto",
    backend: str = "auto",
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
    t0 : float, default 0.0
        Initial time.
    method : {"dopri5", "gauss-legendre", "invariant", "implicit-midpoint"}, default "dopri5"
        ``"dopri5"``: explicit Dormand--Prince 5(4), per-trajectory adaptive steps, save points
        by its 4th-order dense output. ``"gauss-legendre"`` (= ``"invariant"``): 2-stage
        Gauss--Legendre collocation, order 4, conserves quadratic invariants; step-size control
        by step doubling; steps land on save times. ``"implicit-midpoint"``: 1-stage Gauss
        (order 2), same properties.
    rtol, atol : float, default 1e-6, 1e-9
        Local error tolerances (error norm: RMS of err / (atol + rtol * max(|y|, |y_new|))).
    saveat : SaveAt or None, default None
        Save times and whether to keep states; None means ``SaveAt()`` (t0 plus 200
        log-spaced times).
    grad_tol : float, default 1e-10
        A trajectory stops with status CONVERGED once :math:`\|\nabla L\|_2 \le` ``grad_tol``
        at an accepted step. ``0`` disables the test.
    max_steps : int, default 100_000
        Budget of attempted steps (accepted + rejected) per trajectory; status MAX_STEPS when
        exhausted.
    max_norm : float, default 1e8
        Status DIVERGED when :math:`\|\theta\|_2` exceeds it (or the state becomes non-finite).
    dt0 : float or None, default None
        Initial step; None chooses it per trajectory (Hairer's algorithm, one extra gradient
        evaluation). Required when ``adaptive=False``.
    adaptive : bool, default True
        False takes fixed steps ``dt0`` (the last one shortened to reach t1; for implicit
        methods also shortened to land on save times); used for order-of-accuracy checks.
    newton_tol : float, default 1e-13
        Implicit methods only: the stage equations are iterated until the update's max-norm
        is below ``newton_tol * max(1, |y|_inf)`` (or stagnates at round-off). The
        invariants are conserved to about this accuracy per step.
    solver : {"auto", "newton", "fixed-point"}, default "auto"
        Implicit methods only: how the stage equations are solved. "newton": simplified
        Newton with the dense Hessian ``model.hessian`` at the step's start (O(n^3) per step);
        "fixed-point": functional iteration, no Hessian (for large n; needs
        h ||Hess|| < ~1, enforced by rejecting non-converging steps); "auto": "newton" for
        ``model.n_params <= 200``, else "fixed-point".
    backend : {"auto", "numpy", "numba"}, default "auto"
        "auto" uses the compiled kernel for DeepLinearNetwork with ``"dopri5"`` when numba is
        available (and ``FLOWGEOM_DISABLE_NUMBA`` is unset), numpy otherwise. Both give the same
        statuses and agree to round-off amplified by the flow.

    Returns
    -------
    Trajectory

    Raises
    ------
    TypeError
        If ``model`` does not implement the Model protocol.
    ValueError
        For bad arguments (the message names the argument and the fix).

    Notes
    -----
    Finished trajectories (converged, reached t1, diverged, failed, out of steps) leave the
    active set, so the batch shrinks as the ensemble settles. Error control is per trajectory:
    one stiff or diverging member does not shrink the others' steps.

    Examples
    --------
    >>> import numpy as np
    >>> from flowgeom.networks import DeepLinearNetwork
    >>> from flowgeom.integrate import integrate, SaveAt
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
    t0 = float(t0)
    if not np.isfinite(t0):
        raise ValueError(f"`t0` must be finite; got {t0!r}.")
    try:
        t1 = float(t1)
    except (TypeError, ValueError):
        raise TypeError(f"`t1` must be a real number; got {t1!r}.") from None
    if not (np.isfinite(t1) and t1 > t0):
        raise ValueError(f"`t1` must be finite and greater than t0 = {t0}; got {t1!r}.")
    if not isinstance(method, str) or method.lower() not in METHODS:
        raise ValueError(f"`method` must be one of {METHODS}; got {method!r}.")
    method = method.lower()
    if method == "invariant":
        method = "gauss-legendre"
    rtol = _positive(rtol, "rtol")
    atol = _positive(atol, "atol", allow_zero=True)
    if rtol < 100 * np.finfo(float).eps:
        raise ValueError(f"`rtol` must be at least 100 * machine epsilon (2.2e-14); got {rtol!r}.")
    grad_tol = _positive(grad_tol, "grad_tol", allow_zero=True)
    if isinstance(max_steps, bool) or int(max_steps) != max_steps or max_steps < 1:
        raise ValueError(f"`max_steps` must be a positive integer; got {max_steps!r}.")
    max_steps = int(max_steps)
    max_norm = _positive(max_norm, "max_norm", allow_inf=True)
    if dt0 is not None:
        dt0 = _positive(dt0, "dt0")
    if not adaptive and dt0 is None:
        raise ValueError("`adaptive=False` needs a fixed step: pass `dt0`.")
    newton_tol = _positive(newton_tol, "newton_tol")
    if saveat is None:
        saveat = SaveAt()
    elif not isinstance(saveat, SaveAt):
        raise TypeError(f"`saveat` must be a SaveAt or None; got {type(saveat).__name__}.")
    ts = saveat.times(t0, t1)
    be = _resolve_backend(backend, model, method)

    opts = dict(
        rtol=rtol, atol=atol, grad_tol=grad_tol, max_steps=max_steps, max_norm=max_norm,
        dt0=dt0, adaptive=bool(adaptive),
    )
    if method == "dopri5":
        if be == "numba":
            from ._integrate_numba import dopri5_dln

            return dopri5_dln(model, y0, ts, t0, t1, states=saveat.states, **opts)
        rec = _Recorder(model, y0, ts, saveat.states)
        with np.errstate(all="ignore"):
            _dopri5_numpy(rec, y0, t0, t1, **opts)
        return rec.result(method, rtol, atol)
    from ._integrate_implicit import gauss_legendre

    if solver not in ("auto", "newton", "fixed-point"):
        raise ValueError(f"`solver` must be 'auto', 'newton' or 'fixed-point'; got {solver!r}.")
    if solver == "auto":
        solver = "newton" if model.n_params <= NEWTON_MAX_PARAMS else "fixed-point"
    stages = 2 if method == "gauss-legendre" else 1
    rec = _Recorder(model, y0, ts, saveat.states)
    with np.errstate(all="ignore"):
        gauss_legendre(rec, y0, t0, t1, stages=stages, newton_tol=newton_tol, solver=solver, **opts)
    return rec.result(method, rtol, atol)


def _start(rec: _Recorder, idx, y, f, t0, grad_tol, max_norm):
    """Record save points at t0 and close trajectories that are done at t0.

    Returns the mask of trajectories to integrate and their next save indices.
    """
    ts = rec.ts
    N = idx.size
    rec.t_final[idx] = t0
    gn = np.linalg.norm(f, axis=1)
    jsave = np.zeros(N, dtype=np.int64)
    at0 = int(np.searchsorted(ts, t0, side="right"))
    if at0:
        loss0 = rec.model.loss(y)
        for j in range(at0):
            rec.record(idx, np.full(N, j), y, loss0, gn)
        jsave[:] = at0
    bad = ~np.isfinite(gn) | (np.linalg.norm(y, axis=1) > max_norm)
    conv = ~bad & (gn <= grad_tol)
    rec.finish(idx[bad], Status.DIVERGED, y[bad], t0, jsave[bad])
    rec.finish(idx[conv], Status.CONVERGED, y[conv], t0, jsave[conv], gnorm=gn[conv])
    return ~(bad | conv), jsave


# ---------------------------------------------------------------- DOPRI5, vectorized numpy
def _dopri5_numpy(rec: _Recorder, y0, t0, t1, *, rtol, atol, grad_tol, max_steps, max_norm, dt0, adaptive):
    """Per-trajectory adaptive Dormand-Prince 5(4) over a shrinking active set."""
    model = rec.model
    ts = rec.ts
    S = ts.shape[0]
    N, n = y0.shape

    def fun(y):
        return -model.grad(y)

    idx = np.arange(N)
    y = y0.copy()
    f = fun(y)
    rec.n_rhs += 1
    keep, jsave = _start(rec, idx, y, f, t0, grad_tol, max_norm)
    idx, y, f, jsave = idx[keep], y[keep], f[keep], jsave[keep]
    t = np.full(idx.size, t0)
    if idx.size == 0:
        return
    if adaptive and dt0 is None:
        h = _initial_step(fun, y, f, t1 - t, 4, rtol, atol)
        rec.n_rhs[idx] += 1
    else:
        h = np.full(idx.size, dt0)
    rejected = np.zeros(idx.size, dtype=bool)
    attempts = np.zeros(idx.size, dtype=np.int64)
    K = np.empty((7,) + y.shape)
    A, B, E, D = DP_A, DP_B, DP_E, DP_D

    while idx.size:
        m = idx.size
        if K.shape[1] != m:
            K = np.empty((7, m, n))
        if not adaptive:
            # fixed steps: a last step within round-off of dt0 lands on t1 (no sliver step)
            h = np.full(m, dt0)
            h = np.where(t1 - t <= dt0 * (1 + 1e-8), t1 - t, h)
        h = np.minimum(h, t1 - t)
        hc = h[:, None]
        K[0] = f
        for i in range(1, 7):
            yi = y + hc * np.einsum("s,smn->mn", A[i, :i], K[:i]) if i > 1 else y + hc * (A[1, 0] * K[0])
            K[i] = fun(yi)
        y_new = yi  # stage 7 is evaluated at y + h * sum(b_i k_i)
        rec.n_rhs[idx] += 6
        attempts += 1
        finite = np.all(np.isfinite(y_new), axis=1) & np.all(np.isfinite(K[6]), axis=1)
        if adaptive:
            err = hc * np.einsum("s,smn->mn", E, K)
            scale = atol + rtol * np.maximum(np.abs(y), np.abs(y_new))
            en = _rms(err / scale)
            accept = finite & (en <= 1.0)
        else:
            en = np.zeros(m)
            accept = finite
        t_new = np.where(h >= t1 - t, t1, t + h)

        # ---- save points inside (t, t_new] by dense output
        acc = np.flatnonzero(accept)
        if acc.size:
            jj = np.minimum(jsave[acc], S - 1)
            has = (jsave[acc] < S) & (ts[jj] <= t_new[acc])
            sel = acc[has]
            if sel.size:
                dy = y_new[sel] - y[sel]
                hs = h[sel][:, None]
                r3 = hs * K[0, sel] - dy
                r4 = dy - hs * K[6, sel] - r3
                r5 = hs * np.einsum("s,smn->mn", D, K[:, sel])
                while sel.size:
                    js = jsave[sel]
                    theta = np.clip((ts[js] - t[sel]) / h[sel], 0.0, 1.0)[:, None]
                    ys = y[sel] + theta * (dy + (1 - theta) * (r3 + theta * (r4 + (1 - theta) * r5)))
                    rec.record(idx[sel], js, ys)
                    jsave[sel] += 1
                    more = (jsave[sel] < S) & (ts[np.minimum(jsave[sel], S - 1)] <= t_new[sel])
                    sel, dy, r3, r4, r5 = sel[more], dy[more], r3[more], r4[more], r5[more]

        # ---- accepted steps: advance, check, classify
        status = np.full(m, _RUNNING, dtype=np.int8)
        if acc.size:
            rec.n_steps[idx[acc]] += 1
            y_prev_acc = y[acc]
            t_prev_acc = t[acc]
            y[acc] = y_new[acc]
            f[acc] = K[6, acc]
            t[acc] = t_new[acc]
            rec.update_drift(idx[acc], y[acc])
            gn_acc = np.linalg.norm(f[acc], axis=1)
            big = np.linalg.norm(y[acc], axis=1) > max_norm
            st = np.full(acc.size, _RUNNING, dtype=np.int8)
            st[gn_acc <= grad_tol] = Status.CONVERGED
            st[(st == _RUNNING) & (t[acc] >= t1)] = Status.REACHED_T1
            st[big] = Status.DIVERGED
            status[acc] = st
            # a diverged trajectory keeps its last good state
            dv = np.flatnonzero(big)
            if dv.size:
                y[acc[dv]] = y_prev_acc[dv]
                t[acc[dv]] = t_prev_acc[dv]
        # ---- step-size update
        if adaptive:
            with np.errstate(divide="ignore"):
                fac = SAFETY * en ** DP_ERROR_EXPONENT
            fac = np.where(np.isfinite(fac), fac, np.where(en == 0, MAX_FACTOR, MIN_FACTOR))
            grow = np.minimum(MAX_FACTOR, fac)
            grow = np.where(rejected, np.minimum(1.0, grow), grow)
            shrink = np.maximum(MIN_FACTOR, np.minimum(fac, 1.0))
            h = np.where(accept, h * grow, h * shrink)
            rejected = ~accept
            underflow = ~accept & (h < 10 * np.spacing(np.maximum(np.abs(t), 1.0)))
            status[underflow & (status == _RUNNING)] = Status.FAILED
        elif not np.all(accept):
            status[~accept] = Status.FAILED  # fixed step produced a non-finite state
        status[(status == _RUNNING) & (attempts >= max_steps)] = Status.MAX_STEPS
        done = status != _RUNNING
        if done.any():
            for code in Status:
                sel = np.flatnonzero(done & (status == code))
                if sel.size:
                    rec.finish(idx[sel], code, y[sel], t[sel], jsave[sel])
            keep = ~done
            idx, y, f, t, h, jsave = idx[keep], y[keep], f[keep], t[keep], h[keep], jsave[keep]
            rejected, attempts = rejected[keep], attempts[keep]


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
        The step size :math:`\eta > 0` (see :func:`flowgeom.integrate.safe_learning_rate` for
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
        from ._integrate_numba import gd_dln

        return gd_dln(model, y0, lr, n_total, ks, ts, states=saveat.states, grad_tol=grad_tol,
                      max_norm=max_norm, max_loss=max_loss)
    rec = _Recorder(model, y0, ts, saveat.states)
    with np.errstate(all="ignore"):
        _gd_numpy(rec, y0, lr, n_total, ks, grad_tol=grad_tol, max_norm=max_norm, max_loss=max_loss)
    return rec.result("gd", np.nan, np.nan, lr=lr)


def _gd_numpy(rec: _Recorder, y0, lr, n_total, ks, *, grad_tol, max_norm, max_loss):
    model = rec.model
    N = y0.shape[0]
    S = ks.shape[0]
    idx = np.arange(N)
    y = y0.copy()
    jsave = np.zeros(N, dtype=np.int64)
    for k in range(n_total + 1):
        g = model.grad(y)
        rec.n_rhs[idx] += 1
        gn = np.linalg.norm(g, axis=1)
        # save points at step k (all active trajectories share k)
        j = int(jsave[0]) if idx.size else S
        while j < S and ks[j] == k:
            rec.record(idx, np.full(idx.size, j), y, gnorm=gn)
            j += 1
        jsave[:] = j
        status = np.full(idx.size, _RUNNING, dtype=np.int8)
        status[~np.isfinite(gn)] = Status.DIVERGED
        status[(status == _RUNNING) & (gn <= grad_tol)] = Status.CONVERGED
        if k == n_total:
            status[status == _RUNNING] = Status.REACHED_T1
            y_new = y
        else:
            y_new = y - lr * g
            bad = ~np.all(np.isfinite(y_new), axis=1) | (np.linalg.norm(y_new, axis=1) > max_norm)
            if max_loss is not None:
                bad |= ~(model.loss(y_new) <= max_loss)
            status[(status == _RUNNING) & bad] = Status.DIVERGED
        done = status != _RUNNING
        if done.any():
            for code in Status:
                sel = np.flatnonzero(status == code)
                if sel.size:
                    rec.finish(idx[sel], code, y[sel], k * lr, jsave[sel], gnorm=gn[sel])
            keep = ~done
            idx, y_new, jsave = idx[keep], y_new[keep], jsave[keep]
        if idx.size == 0:
            return
        rec.n_steps[idx] += 1
        y = y_new
