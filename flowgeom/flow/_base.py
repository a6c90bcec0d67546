r"""Shared types and bookkeeping of :mod:`flowgeom.integrate` (statuses, save times, results, tableau).

Internal module: import the public names from :mod:`flowgeom.integrate`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from flowgeom._types import FloatArray
from flowgeom.flow._controller import MAX_FACTOR, MIN_FACTOR, SAFETY  # noqa: F401
from flowgeom.flow._controller import rms as _rms
from flowgeom.flow._status import RUNNING as _RUNNING
from flowgeom.flow._status import STATUS_MESSAGES, Status  # noqa: F401

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
    info : dict or None, default None
        Extra JSON-able facts about the run, e.g. for ``method="auto"`` the method requested,
        the stiffness estimate and the reason of the choice (see :func:`flowgeom.flow.integrate`).
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
    info: dict | None = None

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
        return Status(int(self.status[i])).message

    def counts(self) -> dict[str, int]:
        """Number of trajectories per status name, e.g. ``{"CONVERGED": 10, ...}``."""
        return {s.name: int(np.sum(self.status == s)) for s in Status}


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

    def result(self, method, rtol, atol, backend="numpy", lr=None, info=None) -> Trajectory:
        assert np.all(self.status != _RUNNING), "internal error: a trajectory was left running"
        return build_trajectory(self.model, ts=self.ts, ys=self.ys, loss=self.loss, grad_norm=self.grad_norm,
                                y_final=self.y_final, t_final=self.t_final, status=self.status,
                                n_steps=self.n_steps, n_rhs=self.n_rhs, drift=self.drift, method=method,
                                rtol=rtol, atol=atol, backend=backend, lr=lr, info=info)


def build_trajectory(model, *, ts, ys, loss, grad_norm, y_final, t_final, status, n_steps, n_rhs, drift, method,
                     rtol, atol, backend="numpy", lr=None, info=None) -> Trajectory:
    """The one place a :class:`Trajectory` is assembled (numpy recorder and compiled kernels alike).

    Adds the final loss and gradient norm, evaluated by ``model`` at ``y_final``.
    """
    with np.errstate(all="ignore"):
        loss_f = np.asarray(model.loss(y_final), dtype=np.float64)
        gn_f = np.linalg.norm(model.grad(y_final), axis=-1)
    return Trajectory(
        ts=ts, ys=ys, loss=loss, grad_norm=grad_norm, y_final=y_final, t_final=t_final, loss_final=loss_f,
        grad_norm_final=gn_f, status=np.asarray(status, dtype=np.int8), n_steps=n_steps, n_rhs=n_rhs,
        invariant_drift=drift, method=method, rtol=float(rtol), atol=float(atol), backend=backend,
        lr=None if lr is None else float(lr), info=info,
    )


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


def _retire(rec: _Recorder, status, attempts, max_steps, idx, y, t, jsave):
    """End of a step of every adaptive method: out of budget -> MAX_STEPS; close every trajectory whose
    status is set; returns the mask of those still running (the caller compacts its own arrays)."""
    status[(status == _RUNNING) & (attempts >= max_steps)] = Status.MAX_STEPS
    done = status != _RUNNING
    if done.any():
        for code in Status:
            sel = np.flatnonzero(status == code)
            if sel.size:
                rec.finish(idx[sel], code, y[sel], t[sel], jsave[sel])
    return ~done


def _begin(rec: _Recorder, fun, idx, y0, t0, t1, *, order, rtol, atol, dt0, adaptive, grad_tol, max_norm):
    """Start of every adaptive method: the field at t0, the save points at t0, trajectories already
    done at t0 closed, and the first step (Hairer's guess, or ``dt0``).

    Returns ``(idx, y, f, t, h, jsave)`` of the trajectories to integrate, or None when none is left.
    """
    y = np.array(y0, dtype=np.float64, copy=True)
    f = fun(y)
    rec.n_rhs[idx] += 1
    keep, jsave = _start(rec, idx, y, f, t0, grad_tol, max_norm)
    idx, y, f, jsave = idx[keep], y[keep], f[keep], jsave[keep]
    if idx.size == 0:
        return None
    t = np.full(idx.size, t0)
    if adaptive and dt0 is None:
        h = _initial_step(fun, y, f, t1 - t, order, rtol, atol)
        rec.n_rhs[idx] += 1
    else:
        h = np.full(idx.size, float(dt0))
    return idx, y, f, t, h, jsave
