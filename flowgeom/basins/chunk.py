"""One chunk of a basin run: integrate samples [start, stop), finish them, locate their limits.

Not public API. See :func:`flowgeom.basins.sample_basins` for the method.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from flowgeom._types import FloatArray
from flowgeom.critical.atlas import UNCLASSIFIED, Limit
from flowgeom.flow import SaveAt, Status, gradient_descent, integrate
from flowgeom.basins.samplers import Initializer
from flowgeom.basins.limits import (
    RERUN_METHOD, SAVES_PER_SEGMENT, approach_candidates, certify, decided_early, locate_horizons, sublevel_barrier,
)
from flowgeom.flow._stiffness import stiffness

# End game: an explicit adaptive solver cannot resolve the state below its error tolerance,
# so near a stable limit its gradient norm stalls at ~ lambda_max * (atol + rtol |theta|)
# (measured: ~1e-5 for rtol = 1e-6 on the (4,3,2) problem) and never meets grad_tol = 1e-10.
# Unconverged trajectories are therefore continued by gradient descent with a per-trajectory
# step lr = 2^floor(log2(POLISH_LR_FACTOR / lambda_max)) (a power of two, so that equal
# curvature estimates give bit-identical steps), which contracts every stable direction.
POLISH_LR_FACTOR = 0.5
DEFAULT_POLISH_STEPS = 2000
# Only trajectories whose gradient is already within POLISH_FLOOR_FACTOR times the solver's
# resolution, lambda_max * (atol + rtol * max|theta|), are handed to the end game: the path
# to the limit is the flow's, gradient descent only supplies the last digits.
POLISH_FLOOR_FACTOR = 100.0
# Dense Hessians up to this many parameters (in row blocks of <= POLISH_DENSE_BYTES);
# power iteration on hvp beyond.
POLISH_DENSE_MAX = 64
POLISH_DENSE_BYTES = 2**26
POLISH_POWER_ITERS = 60


@dataclass(frozen=True, eq=False)
class _Job:
    """Everything a worker needs to process samples [start, stop). Picklable."""

    model: Any
    atlas: Any
    initializer: Initializer
    seed: int
    integrator: str
    lr: float | None
    t1: float
    t_max: float
    rtol: float
    atol: float
    grad_tol: float
    max_steps: int
    max_norm: float
    backend: str
    keep_states: bool
    polish_steps: int = 0
    certify: bool = False
    horizons: tuple = ()
    early: bool = True


_RESUMABLE = (int(Status.REACHED_T1), int(Status.MAX_STEPS))
_FLOW_METHOD = {"auto": "auto", "adaptive": "dopri5", "stiff": "rosenbrock", "invariant": "gauss-legendre"}
# Early decisions: the first segment [0, t1] pauses at t1 / 2^k, k = EARLY_CHECKS..1 (t1 = 100: 3.125, 6.25, ...,
# 50), and a stiff flow (Rosenbrock) at t1 / 4^k, k = EARLY_CHECKS_STIFF..1 (0.024, 0.098, 0.39, 1.56, 6.25, 25).
# Each pause restarts the integrator (a fresh initial step). Measured: on the standard (16,12,8) workload
# (Gaussian init 1/sqrt(d1), compiled DOPRI5, 2048 samples in process) every sample is below the sublevel
# barrier by t = 3, and the 2^-k schedule takes 1.22 s against 1.44 s for the 4^-k one (restarts cost more
# than the earlier stops save); on the raw 10-class image problem (widths (61,16,10), Rosenbrock) every sample
# is below it by t = 0.02, where the stiff flow has taken a third of the steps it takes to t1 / 32 = 3.125.
EARLY_CHECKS = 5
EARLY_CHECKS_STIFF = 6
# The stiffness estimate of integrator "auto" (a median over the chunk) looks at most this many evenly spaced
# samples: 20 Hessian-vector products per sample cost 0.19 s per 1024 (16,12,8) samples, 18 % of their flow.
STIFFNESS_ROWS = 256


def _segment(job: _Job, y, duration, *, saves=None, method=None):
    """One flow segment of length ``duration`` from ``y`` (saves: relative save times, default 2 or the certify grid)."""
    if saves is None:
        saves = np.linspace(0.0, duration, SAVES_PER_SEGMENT if job.certify else 2)
    saveat = SaveAt(ts=saves, states=False)
    if job.integrator == "gd":
        return gradient_descent(job.model, y, job.lr, t1=duration, saveat=saveat, grad_tol=job.grad_tol,
                                max_norm=job.max_norm, backend=job.backend)
    if method is None:
        method = _FLOW_METHOD[job.integrator]
    return integrate(job.model, y, duration, method=method, rtol=job.rtol, atol=job.atol, saveat=saveat,
                     grad_tol=job.grad_tol, max_steps=job.max_steps, max_norm=job.max_norm, backend=job.backend)


def _stops(job: _Job, early: bool, stiff: bool = False) -> list[tuple[float, bool]]:
    r"""The schedule of a chunk: cumulative times ``(T, major)`` at which the flow pauses.

    Major stops are the doubled horizons :math:`t_1, 2t_1, 4t_1, \dots, t_{\max}` (end game,
    continuation). With early decisions (``early``), the first segment also pauses at
    :math:`t_1 2^{-k}`, ``k = EARLY_CHECKS..1`` (a ``stiff`` flow: :math:`t_1 4^{-k}`,
    ``k = EARLY_CHECKS_STIFF..1``), where samples whose limit is already decided stop: a sample then runs
    at most two (four) times as long as its limit takes to be decided, not to :math:`t_1`.
    """
    ratio, checks = (4.0, EARLY_CHECKS_STIFF) if stiff else (2.0, EARLY_CHECKS)
    stops = [(job.t1 * ratio**-k, False) for k in range(checks, 0, -1)] if early else []
    horizon = job.t1
    stops.append((horizon, True))
    while horizon < job.t_max * (1 - 1e-12):
        horizon = min(2.0 * horizon, job.t_max)
        stops.append((horizon, True))
    return stops


def _save_times(job: _Job, a: float, b: float):
    """Relative save times of the piece [a, b] of the first segment: the grid of ``SAVES_PER_SEGMENT`` points on
    [0, t1] that falls in [a, b] (so that pausing does not change where the certification looks), plus the ends."""
    if not job.certify:
        return np.array([0.0, b - a])
    grid = np.linspace(0.0, job.t1, SAVES_PER_SEGMENT)
    inner = grid[(grid > a * (1 + 1e-12)) & (grid < b * (1 - 1e-12))]
    return np.concatenate([[0.0], inner - a, [b - a]])


def _lambda_max(model, y) -> FloatArray:
    """Largest Hessian eigenvalue per row of ``y`` (dense for small n, else power iteration)."""
    n = y.shape[1]
    if n <= POLISH_DENSE_MAX:
        rows = max(1, POLISH_DENSE_BYTES // (8 * n * n))
        return np.concatenate([np.linalg.eigvalsh(model.hessian(y[i : i + rows]))[:, -1]
                               for i in range(0, y.shape[0], rows)])
    v = np.ones_like(y) / np.sqrt(n)
    lam = np.zeros(y.shape[0])
    for _ in range(POLISH_POWER_ITERS):
        w = model.hvp(y, v)
        nrm = np.linalg.norm(w, axis=1)
        lam = np.einsum("ij,ij->i", v, w)
        v = w / np.where(nrm > 0, nrm, 1.0)[:, None]
    return np.abs(lam) * 1.25  # power iteration approaches |lambda|_max from below


def _polish(job: _Job, y, gnorm):
    """Gradient descent from ``y`` with a per-trajectory power-of-two step; returns a dict of arrays.

    Rows whose gradient norm ``gnorm`` is above the end-game threshold are returned unchanged
    with status REACHED_T1 and no gradient evaluations.
    """
    N = y.shape[0]
    with np.errstate(all="ignore"):
        lam = _lambda_max(job.model, y)
    lam = np.where(np.isfinite(lam) & (lam > 0), lam, np.inf)
    resolution = lam * (job.atol + job.rtol * np.max(np.abs(y), axis=1))
    eligible = np.isfinite(lam) & (gnorm <= POLISH_FLOOR_FACTOR * resolution)
    lr_cap = job.t1 / job.polish_steps  # the polish never runs longer than one first horizon
    expo = np.floor(np.log2(np.minimum(POLISH_LR_FACTOR / lam, lr_cap)))
    expo = np.where(eligible, expo, np.nan)
    out = {
        "y": y.copy(), "t": np.zeros(N), "status": np.full(N, int(Status.REACHED_T1), dtype=np.int8),
        "loss": np.full(N, np.nan), "gnorm": np.full(N, np.nan), "drift": np.zeros(N),
        "n_rhs": np.zeros(N, dtype=np.int64), "eligible": eligible,
    }
    for e in np.unique(expo[eligible]):
        g = np.flatnonzero(expo == e)
        lr = float(2.0**e)
        tr = gradient_descent(job.model, y[g], lr, n_steps=job.polish_steps,
                              saveat=SaveAt(ts=np.array([0.0, lr * job.polish_steps]), states=False),
                              grad_tol=job.grad_tol, max_norm=job.max_norm, backend=job.backend)
        out["y"][g] = tr.y_final
        out["t"][g] = tr.t_final
        out["status"][g] = tr.status
        out["loss"][g] = tr.loss_final
        out["gnorm"][g] = tr.grad_norm_final
        out["drift"][g] = tr.invariant_drift
        out["n_rhs"][g] = tr.n_rhs
    return out


def _conserved_norm(model, y):
    c = np.asarray(model.conserved(y))
    return c, (np.linalg.norm(c, axis=-1) if c.shape[-1] else np.zeros(y.shape[0]))


def _run_chunk(job: _Job, start: int, stop: int, theta0=None) -> dict:
    """Integrate and classify samples [start, stop); returns per-sample arrays."""
    if theta0 is None:
        theta0 = job.initializer.sample(job.model, start, stop, job.seed)
    theta0 = np.asarray(theta0, dtype=np.float64)
    N = theta0.shape[0]
    y = theta0.copy()
    t = np.zeros(N)
    status = np.full(N, int(Status.REACHED_T1), dtype=np.int8)
    loss = np.full(N, np.nan)
    gnorm = np.full(N, np.nan)
    drift = np.zeros(N)
    n_rhs = np.zeros(N, dtype=np.int64)
    polished = np.zeros(N, dtype=bool)
    endgame = np.zeros(N, dtype=bool)
    early = np.full(N, UNCLASSIFIED, dtype=np.int64)
    saves_t, saves_l, saves_g = [], [], []
    c0, c0n = _conserved_norm(job.model, theta0)

    def record(idx, y_new, t_add, st, ls, gn, seg_drift, rhs, y_start):
        # drift relative to c(0): ||c(t) - c(0)|| <= ||c(t) - c(r)|| + ||c(r) - c(0)||, r = segment start
        cr, crn = _conserved_norm(job.model, y_start)
        back = np.linalg.norm(cr - c0[idx], axis=-1) if c0.shape[-1] else np.zeros(idx.size)
        drift[idx] = np.maximum(drift[idx], (np.asarray(seg_drift) * (1.0 + crn) + back) / (1.0 + c0n[idx]))
        y[idx] = y_new
        t[idx] += t_add
        status[idx] = st
        loss[idx] = ls
        gnorm[idx] = gn
        n_rhs[idx] += rhs

    decide = job.early and job.integrator != "gd"
    first_method = None
    if decide and sublevel_barrier(job.atlas) is not None:
        if job.integrator == "auto":  # the choice integrate(method="auto") makes for [0, t1], made once
            probe = theta0[:: max(1, -(-N // STIFFNESS_ROWS))]  # a median: evenly spaced rows suffice
            with np.errstate(all="ignore"):
                est = stiffness(job.model, probe, 0.0, job.t1, job.grad_tol)
            first_method = "rosenbrock" if est["stiff"] else "dopri5"
        stops = _stops(job, early=True, stiff=first_method == "rosenbrock" or job.integrator == "stiff")
    else:
        stops = _stops(job, early=False)
    active = np.arange(N)
    horizon = 0.0
    stiff_flow = False
    for pause, major in stops:
        duration = pause - horizon
        first = pause <= job.t1 * (1 + 1e-12)
        y_start = y[active].copy()
        tr = _segment(job, y_start, duration, saves=_save_times(job, horizon, pause) if first else None,
                      method=first_method if first else None)
        record(active, tr.y_final, tr.t_final, tr.status, tr.loss_final, tr.grad_norm_final,
               tr.invariant_drift, tr.n_rhs, y_start)
        if first and tr.method == "rosenbrock":
            stiff_flow = True  # the certification re-runs this flow: with the stiff method too
        if job.certify:
            for arr_, val in ((saves_t, horizon + tr.ts), (saves_l, tr.loss), (saves_g, tr.grad_norm)):
                full = np.full((N, tr.ts.size), np.nan)
                full[active] = val
                arr_.append(full)
        horizon = pause
        again = np.isin(tr.status, _RESUMABLE)
        if decide and again.any():
            sub = active[again]
            keys = decided_early(job.atlas, y[sub], loss[sub])
            hit = keys >= 0
            early[sub[hit]] = keys[hit]
            again[np.flatnonzero(again)[hit]] = False
        if major and job.polish_steps and job.integrator != "gd" and again.any():
            sub = active[again]
            pol = _polish(job, y[sub], gnorm[sub])
            ok = pol["status"] == int(Status.CONVERGED)
            endgame[sub[pol["eligible"]]] = True
            if ok.any():
                idx = sub[ok]
                record(idx, pol["y"][ok], pol["t"][ok], pol["status"][ok], pol["loss"][ok], pol["gnorm"][ok],
                       pol["drift"][ok], pol["n_rhs"][ok], y[idx].copy())
                polished[idx] = True
            n_rhs[sub[~ok]] += pol["n_rhs"][~ok]
            again[np.flatnonzero(again)[ok]] = False
        if not again.any():
            break
        active = active[again]
    limit = np.full(N, int(Limit.UNCONVERGED), dtype=np.int64)
    limit[status == int(Status.DIVERGED)] = int(Limit.DIVERGED)
    conv = np.flatnonzero(status == int(Status.CONVERGED))
    if conv.size:
        # keys of the atlas's critical sets (the parent maps them to strata)
        limit[conv] = np.asarray(job.atlas.locate(y[conv], loss[conv]), dtype=np.int64)
    limit = np.where(early >= 0, early, limit)
    exact, decided, rho = limit.copy(), np.ones(N, dtype=bool), np.full(N, np.nan)
    if job.certify and job.integrator != "gd":
        # the loss of the limit: a sample decided early stopped above it, on its way down
        limit_loss = loss.copy()
        for k in np.unique(early[early >= 0]):
            limit_loss[early == k] = job.atlas.get(int(k)).critical_value + job.atlas.loss_offset
        tap = approach_candidates(np.concatenate(saves_t, axis=1), np.concatenate(saves_l, axis=1),
                                  np.concatenate(saves_g, axis=1), limit_loss,
                                  offset=job.atlas.loss_offset)
        exact, decided, rho = certify(job.model, job.atlas, theta0, tap, limit_loss, limit, seed=job.seed,
                                      index0=start, method="rosenbrock" if stiff_flow else RERUN_METHOD)
    out = {
        "start": start,
        "stop": stop,
        "limit": limit,
        "final_loss": loss,
        "final_grad_norm": gnorm,
        "invariant_drift": drift,
        "t_final": t,
        "status": status,
        "n_grad_evals": n_rhs,
        "polished": polished,
        "endgame": endgame,
        "limit_exact": exact,
        "limit_decided": decided,
        "escape_ratio": rho,
    }
    if job.horizons:
        method = "invariant" if job.integrator == "invariant" else "dopri5"
        # converged samples sit at their limit; those decided early stopped on their way to it
        done = status == int(Status.CONVERGED)
        out["horizon_limit"] = locate_horizons(job.model, job.atlas, theta0, job.horizons, y_final=y, t_final=t,
                                               done=done, rtol=job.rtol,
                                               atol=job.atol, max_steps=job.max_steps, max_norm=job.max_norm,
                                               backend=job.backend, method=method)
    out["theta_final"] = y  # always: unclassified limits grow the atlas in the parent
    if job.keep_states:
        out["theta0"] = theta0
    return out


_SAMPLE_VARS = (
    "limit", "final_loss", "final_grad_norm", "invariant_drift", "t_final", "status", "n_grad_evals", "polished", "endgame",
    "limit_exact", "limit_decided", "escape_ratio",
)
_STATE_VARS = ("theta0", "theta_final", "horizon_limit")  # the store writes those present
