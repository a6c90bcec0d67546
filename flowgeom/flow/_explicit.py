r"""Vectorized numpy implementations: per-trajectory adaptive DOPRI5 and gradient descent.

Internal module behind :func:`flowgeom.integrate.integrate` and
:func:`flowgeom.integrate.gradient_descent`; works for any :class:`flowgeom.models.Model`.
"""

from __future__ import annotations

import numpy as np

from flowgeom.flow._base import (
    _begin,
    _retire,
    _RUNNING,
    DP_A,
    DP_D,
    DP_E,
    DP_ERROR_EXPONENT,
    Status,
    _Recorder,
    _rms,
)
from flowgeom.flow._controller import step_factor, underflow


def _dopri5_numpy(rec: _Recorder, y0, t0, t1, *, rtol, atol, grad_tol, max_steps, max_norm, dt0, adaptive):
    """Per-trajectory adaptive Dormand-Prince 5(4) over a shrinking active set."""
    model = rec.model
    ts = rec.ts
    S = ts.shape[0]
    N, n = y0.shape

    def fun(y):
        return -model.grad(y)

    begun = _begin(rec, fun, np.arange(N), y0, t0, t1, order=4, rtol=rtol, atol=atol, dt0=dt0, adaptive=adaptive,
                   grad_tol=grad_tol, max_norm=max_norm)
    if begun is None:
        return
    idx, y, f, t, h, jsave = begun
    rejected = np.zeros(idx.size, dtype=bool)
    attempts = np.zeros(idx.size, dtype=np.int64)
    K = np.empty((7,) + y.shape)
    A, E, D = DP_A, DP_E, DP_D  # the 5th-order weights B are the last row of A (FSAL)

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
            h = h * step_factor(en, accept, rejected, DP_ERROR_EXPONENT)
            rejected = ~accept
            status[~accept & underflow(h, t) & (status == _RUNNING)] = Status.FAILED
        elif not np.all(accept):
            status[~accept] = Status.FAILED  # fixed step produced a non-finite state
        keep = _retire(rec, status, attempts, max_steps, idx, y, t, jsave)
        if not keep.all():
            idx, y, f, t, h, jsave = idx[keep], y[keep], f[keep], t[keep], h[keep], jsave[keep]
            rejected, attempts = rejected[keep], attempts[keep]


def _gd_numpy(rec: _Recorder, y0, lr, n_total, ks, *, grad_tol, max_norm, max_loss, track_invariants):
    model = rec.model
    N = y0.shape[0]
    S = ks.shape[0]
    idx = np.arange(N)
    y = y0.copy()
    jsave = np.zeros(N, dtype=np.int64)
    if not track_invariants:
        rec.drift[:] = np.nan
    for k in range(n_total + 1):
        if k and track_invariants:
            rec.update_drift(idx, y)
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
