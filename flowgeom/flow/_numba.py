r"""Optional compiled kernels (numba) for DeepLinearNetwork: DOPRI5 and gradient descent.

Each trajectory's whole adaptive loop runs in compiled code; the ensemble is dealt to worker
threads (the kernels release the GIL; ``FLOWGEOM_NUM_THREADS`` sets their number). The algorithm, its constants and its statuses are those of the
numpy path in :mod:`flowgeom.integrate` (same tableau, controller, dense output, save-point
and divergence rules), so both backends return the same statuses and agree to round-off
(amplified by the flow). Products are hand-written loops: for the tiny matrices of these
networks, per-call overhead of BLAS or numpy dominates.

Two DOPRI5 kernels: for H = 1 without input factor and at most ``_numba_soa.MAX_STATE`` = 160
parameters, :mod:`flowgeom.flow._numba_soa` advances blocks of 32 trajectories together (structure of
arrays, SIMD over trajectories; measured 5.4x faster than one trajectory at a time at widths (4,3,2),
1.2-1.6x up to 160 parameters, 2x slower at (16,12,8)); every other network runs ``_dopri5_one``, one
trajectory at a time.

numba is optional: importing this module without numba sets ``HAVE_NUMBA = False`` and
:mod:`flowgeom.integrate` uses numpy. Compiled code is cached on disk (``cache=True``), so only
the first run on a machine pays the compilation (tens of seconds), and that run says so on stderr
(:mod:`flowgeom.flow._numba_compile`).
"""

from __future__ import annotations

import os

import numpy as np

try:  # pragma: no cover - exercised by both CI configurations
    import numba  # noqa: F401
    from numba import njit

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover
    HAVE_NUMBA = False

# Floating-point flags: allow reassociation (vectorized dot products) but not "no NaN/inf"
# assumptions, which would break the divergence checks.
_FM = {"nsz", "arcp", "contract", "reassoc"}

# status codes and controller constants: imported (never re-typed); numba captures these
# module-level ints and floats as compile-time constants.
from flowgeom._validate import InputError, check_choice
from flowgeom.flow._numba_compile import compile_report
from flowgeom.flow._numba_dln import _network_arrays
from flowgeom.flow._status import CONVERGED as _CONVERGED
from flowgeom.flow._status import DIVERGED as _DIVERGED
from flowgeom.flow._status import FAILED as _FAILED
from flowgeom.flow._status import MAX_STEPS as _MAX_STEPS
from flowgeom.flow._status import REACHED_T1 as _REACHED_T1
from flowgeom.flow._status import RUNNING as _RUNNING

if HAVE_NUMBA:
    from flowgeom.flow._base import DP_A, DP_B, DP_D, DP_E

    _A = np.ascontiguousarray(DP_A)
    _B = np.ascontiguousarray(DP_B)
    _E = np.ascontiguousarray(DP_E)
    _D = np.ascontiguousarray(DP_D)

    from flowgeom.flow._numba_dln import _allfinite, _conserved, _norm, _rhs, _step_factor

    @njit(cache=True, fastmath=_FM, inline="always")
    def _stage(s, h, y, K, yn):
        """yn = y + h * sum_{r<s} A[s, r] K[r]: the input of stage s, one fused pass (unrolled per s)."""
        n = y.shape[0]
        if s == 1:
            a0 = h * _A[1, 0]
            for q in range(n):
                yn[q] = y[q] + a0 * K[0, q]
        elif s == 2:
            a0, a1 = h * _A[2, 0], h * _A[2, 1]
            for q in range(n):
                yn[q] = y[q] + a0 * K[0, q] + a1 * K[1, q]
        elif s == 3:
            a0, a1, a2 = h * _A[3, 0], h * _A[3, 1], h * _A[3, 2]
            for q in range(n):
                yn[q] = y[q] + a0 * K[0, q] + a1 * K[1, q] + a2 * K[2, q]
        elif s == 4:
            a0, a1, a2, a3 = h * _A[4, 0], h * _A[4, 1], h * _A[4, 2], h * _A[4, 3]
            for q in range(n):
                yn[q] = y[q] + a0 * K[0, q] + a1 * K[1, q] + a2 * K[2, q] + a3 * K[3, q]
        elif s == 5:
            a0, a1, a2, a3, a4 = h * _A[5, 0], h * _A[5, 1], h * _A[5, 2], h * _A[5, 3], h * _A[5, 4]
            for q in range(n):
                yn[q] = y[q] + a0 * K[0, q] + a1 * K[1, q] + a2 * K[2, q] + a3 * K[3, q] + a4 * K[4, q]
        else:  # s == 6: A[6, 1] = 0
            a0, a2, a3, a4, a5 = h * _A[6, 0], h * _A[6, 2], h * _A[6, 3], h * _A[6, 4], h * _A[6, 5]
            for q in range(n):
                yn[q] = y[q] + a0 * K[0, q] + a2 * K[2, q] + a3 * K[3, q] + a4 * K[4, q] + a5 * K[5, q]

    @njit(cache=True)
    def _start(i, y, lval, gn, ts, t0, max_norm, grad_tol, store, ys, loss_s, gn_s):
        """Save slots at or before t0 get the initial state; returns (next save slot, initial status)."""
        js = 0
        while js < ts.shape[0] and ts[js] <= t0:
            if store:
                ys[i, js, :] = y
            loss_s[i, js] = lval
            gn_s[i, js] = gn
            js += 1
        status = _RUNNING
        if not np.isfinite(gn) or _norm(y) > max_norm:
            status = _DIVERGED
        elif gn <= grad_tol:
            status = _CONVERGED
        return js, status

    @njit(cache=True)
    def _initial_step(y, f, yn, fs, t0, t1, rtol, atol, exponent,
                      is_h1, shp, off, T, Tf, R, has_R, c, pre, pre_off, bufA, bufB, M):
        """Hairer's starting step (II.4, as flowgeom.flow._base._initial_step) with
        ``exponent`` = 1 / (order + 1); costs one gradient (at yn), which the caller counts."""
        n = y.shape[0]
        d0 = 0.0
        d1 = 0.0
        for q in range(n):
            sc = atol + abs(y[q]) * rtol
            d0 += (y[q] / sc) ** 2
            d1 += (f[q] / sc) ** 2
        d0 = np.sqrt(d0 / n)
        d1 = np.sqrt(d1 / n)
        if d0 < 1e-5 or d1 < 1e-5:
            h0 = 1e-6
        else:
            h0 = 0.01 * d0 / d1
        h0 = min(h0, t1 - t0)
        for q in range(n):
            yn[q] = y[q] + h0 * f[q]
        _rhs(yn, fs, is_h1, shp, off, T, Tf, R, has_R, c, pre, pre_off, bufA, bufB, M)
        d2 = 0.0
        for q in range(n):
            sc = atol + abs(y[q]) * rtol
            d2 += ((fs[q] - f[q]) / sc) ** 2
        d2 = np.sqrt(d2 / n) / h0
        dm = max(d1, d2)
        if not dm > 1e-15:
            hb = max(1e-6, h0 * 1e-3)
        else:
            hb = (0.01 / dm) ** exponent
        return min(min(100 * h0, hb), t1 - t0)

    @njit(cache=True)
    def _drift_scale(y, c0, wts, shp, off):
        """c0 = the invariants at y (in place); returns 1 + their weighted norm, the drift's denominator."""
        _conserved(y, c0, shp, off)
        s = 0.0
        for q in range(wts.shape[0]):
            s += wts[q] * c0[q] * c0[q]
        return 1.0 + np.sqrt(s)

    @njit(cache=True)
    def _drift(y, cc, c0, c0s, wts, shp, off):
        """Weighted norm of the invariants' change from c0 to y, over ``c0s`` (inf when not finite)."""
        _conserved(y, cc, shp, off)
        dd = 0.0
        for q in range(wts.shape[0]):
            dd += wts[q] * (cc[q] - c0[q]) ** 2
        dd = np.sqrt(dd) / c0s
        return dd if np.isfinite(dd) else np.inf

    @njit(cache=True)
    def _fill_nan(i, js, ys, loss_s, gn_s, store):
        """Save slots js.. of trajectory i that were never reached (outputs are allocated uninitialised)."""
        for j in range(js, loss_s.shape[1]):
            if store:
                ys[i, j, :] = np.nan
            loss_s[i, j] = np.nan
            gn_s[i, j] = np.nan

    @njit(cache=True)
    def _finish_row(i, status, js, y, lv, gn, t_end, drift, n_steps, n_rhs, store, ys, loss_s, gn_s, y_final,
                    out_i, out_f):
        """Write trajectory i's final state, repeat it over the remaining save slots when it is a limit
        (converged or reached t1; NaN otherwise), and its status, counters, final time and drift."""
        for q in range(y.shape[0]):
            y_final[i, q] = y[q]
        if status == _CONVERGED or status == _REACHED_T1:
            for j in range(js, loss_s.shape[1]):
                if store:
                    ys[i, j, :] = y
                loss_s[i, j] = lv
                gn_s[i, j] = gn
        else:
            _fill_nan(i, js, ys, loss_s, gn_s, store)
        out_i[i, 0] = status
        out_i[i, 1] = n_steps
        out_i[i, 2] = n_rhs
        out_f[i, 0] = t_end
        out_f[i, 1] = drift

    @njit(cache=True, fastmath=_FM)
    def _rms_scaled(x, y0, y1, rtol, atol):
        n = x.shape[0]
        s = 0.0
        for q in range(n):
            sc = atol + rtol * max(abs(y0[q]), abs(y1[q]))
            v = x[q] / sc
            s += v * v
        return np.sqrt(s / n)

    @njit(cache=True)
    def _dopri5_one(i, y0, ts, t0, t1, rtol, atol, grad_tol, max_steps, max_norm, dt0, adaptive, store,
                    is_h1, shp, off, T, Tf, R, has_R, c, pre_off, nbuf, wts,
                    ys, loss_s, gn_s, y_final, out_i, out_f):
        n = y0.shape[0]
        S = ts.shape[0]
        pre = np.empty(pre_off[-1])
        bufA = np.empty(nbuf)
        bufB = np.empty(nbuf)
        M = np.empty(T.shape[0] * T.shape[1])
        K = np.empty((7, n))
        y = y0.copy()
        yn = np.empty(n)
        ys_ = np.empty(n)
        fs = np.empty(n)
        err = np.empty(n)
        r5v = np.empty(n)
        c0 = np.empty(wts.shape[0])
        cc = np.empty(wts.shape[0])
        c0s = _drift_scale(y, c0, wts, shp, off)
        drift = 0.0
        n_rhs = 1
        n_steps = 0
        lval = _rhs(y, K[0], is_h1, shp, off, T, Tf, R, has_R, c, pre, pre_off, bufA, bufB, M)
        js, status = _start(i, y, lval, _norm(K[0]), ts, t0, max_norm, grad_tol, store, ys, loss_s, gn_s)
        t = t0
        h = dt0
        if status == _RUNNING and adaptive and dt0 <= 0.0:
            h = _initial_step(y, K[0], yn, fs, t0, t1, rtol, atol, 1.0 / 5.0,
                              is_h1, shp, off, T, Tf, R, has_R, c, pre, pre_off, bufA, bufB, M)
            n_rhs += 1
        rejected = False
        attempts = 0
        while status == _RUNNING:
            if not adaptive:
                h = dt0
                if t1 - t <= dt0 * (1 + 1e-8):
                    h = t1 - t
            h = min(h, t1 - t)
            for s in range(1, 7):
                _stage(s, h, y, K, yn)
                _rhs(yn, K[s], is_h1, shp, off, T, Tf, R, has_R, c, pre, pre_off, bufA, bufB, M)
            n_rhs += 6
            attempts += 1
            finite = _allfinite(yn) and _allfinite(K[6])
            if adaptive:
                e0, e2, e3, e4, e5, e6 = h * _E[0], h * _E[2], h * _E[3], h * _E[4], h * _E[5], h * _E[6]
                for q in range(n):  # E[1] = 0
                    err[q] = e0 * K[0, q] + e2 * K[2, q] + e3 * K[3, q] + e4 * K[4, q] + e5 * K[5, q] + e6 * K[6, q]
                en = _rms_scaled(err, y, yn, rtol, atol)
                accept = finite and en <= 1.0
            else:
                en = 0.0
                accept = finite
            t_new = t1 if h >= t1 - t else t + h
            if accept:
                # save points in (t, t_new] by the continuous extension
                if js < S and ts[js] <= t_new:
                    for q in range(n):
                        r5v[q] = 0.0
                    for r in range(7):
                        a = h * _D[r]
                        if a != 0.0:
                            for q in range(n):
                                r5v[q] += a * K[r, q]
                    while js < S and ts[js] <= t_new:
                        th = (ts[js] - t) / h
                        th = min(max(th, 0.0), 1.0)
                        for q in range(n):
                            dyq = yn[q] - y[q]
                            r3 = h * K[0, q] - dyq
                            r4 = dyq - h * K[6, q] - r3
                            ys_[q] = y[q] + th * (dyq + (1 - th) * (r3 + th * (r4 + (1 - th) * r5v[q])))
                        lv = _rhs(ys_, fs, is_h1, shp, off, T, Tf, R, has_R, c, pre, pre_off, bufA, bufB, M)
                        if store:
                            ys[i, js, :] = ys_
                        loss_s[i, js] = lv
                        gn_s[i, js] = _norm(fs)
                        js += 1
                n_steps += 1
                big = _norm(yn) > max_norm
                drift = max(drift, _drift(yn, cc, c0, c0s, wts, shp, off))
                if big:
                    status = _DIVERGED  # keep the last good state
                else:
                    for q in range(n):
                        y[q] = yn[q]
                        K[0, q] = K[6, q]
                    t = t_new
                    gn = _norm(K[0])
                    if gn <= grad_tol:
                        status = _CONVERGED
                    elif t >= t1:
                        status = _REACHED_T1
            if adaptive:
                h = h * _step_factor(en, accept, rejected)
                rejected = not accept
                if (not accept) and h < 10 * np.spacing(max(abs(t), 1.0)) and status == _RUNNING:
                    status = _FAILED
            elif not accept and status == _RUNNING:
                status = _FAILED
            if status == _RUNNING and attempts >= max_steps:
                status = _MAX_STEPS
        # finish: final state; repeat it over the remaining save points if it is a limit
        lv, g2 = np.nan, np.nan
        if (status == _CONVERGED or status == _REACHED_T1) and js < S:
            lv = _rhs(y, fs, is_h1, shp, off, T, Tf, R, has_R, c, pre, pre_off, bufA, bufB, M)
            g2 = _norm(fs)
        _finish_row(i, status, js, y, lv, g2, t, drift, n_steps, n_rhs, store, ys, loss_s, gn_s, y_final,
                    out_i, out_f)

    @njit(cache=True, nogil=True)
    def _dopri5_batch(rows, Y0, ts, t0, t1, rtol, atol, grad_tol, max_steps, max_norm, dt0, adaptive, store,
                      is_h1, shp, off, T, Tf, R, has_R, c, pre_off, nbuf, wts, ys, loss_s, gn_s, y_final, out_i, out_f):
        for k in range(rows.shape[0]):
            i = rows[k]
            _dopri5_one(i, Y0[i], ts, t0, t1, rtol, atol, grad_tol, max_steps, max_norm, dt0, adaptive, store,
                        is_h1, shp, off, T, Tf, R, has_R, c, pre_off, nbuf, wts, ys, loss_s, gn_s, y_final, out_i,
                        out_f)

    @njit(cache=True)
    def _gd_one(i, y0, lr, n_total, ks, grad_tol, max_norm, max_loss, store, track,
                is_h1, shp, off, T, Tf, R, has_R, c, pre_off, nbuf, wts, ys, loss_s, gn_s, y_final, out_i, out_f):
        n = y0.shape[0]
        S = ks.shape[0]
        pre = np.empty(pre_off[-1])
        bufA = np.empty(nbuf)
        bufB = np.empty(nbuf)
        M = np.empty(T.shape[0] * T.shape[1])
        f = np.empty(n)
        fs = np.empty(n)
        y = y0.copy()
        yn = np.empty(n)
        kc = wts.shape[0]
        c0 = np.empty(kc)
        cc = np.empty(kc)
        c0s = 0.0
        drift = 0.0
        if track:
            _conserved(y, c0, shp, off)
            for q in range(kc):
                c0s += wts[q] * c0[q] * c0[q]
        c0s = 1.0 + np.sqrt(c0s)
        js = 0
        status = _RUNNING
        n_rhs = 0
        n_steps = 0
        k = 0
        lv = 0.0
        gn = 0.0
        while True:
            lv = _rhs(y, f, is_h1, shp, off, T, Tf, R, has_R, c, pre, pre_off, bufA, bufB, M)
            n_rhs += 1
            gn = _norm(f)
            while js < S and ks[js] == k:
                if store:
                    ys[i, js, :] = y
                loss_s[i, js] = lv
                gn_s[i, js] = gn
                js += 1
            if not np.isfinite(gn):
                status = _DIVERGED
            elif gn <= grad_tol:
                status = _CONVERGED
            elif k == n_total:
                status = _REACHED_T1
            else:
                for q in range(n):
                    yn[q] = y[q] + lr * f[q]
                bad = (not _allfinite(yn)) or _norm(yn) > max_norm
                if not bad and max_loss < np.inf:
                    lnew = _rhs(yn, fs, is_h1, shp, off, T, Tf, R, has_R, c, pre, pre_off, bufA, bufB, M)
                    bad = not (lnew <= max_loss)
                if bad:
                    status = _DIVERGED
            if status != _RUNNING:
                break
            for q in range(n):
                y[q] = yn[q]
            n_steps += 1
            k += 1
            if track:
                _conserved(y, cc, shp, off)
                dd = 0.0
                for q in range(kc):
                    dd += wts[q] * (cc[q] - c0[q]) ** 2
                dd = np.sqrt(dd) / c0s
                if not np.isfinite(dd):
                    dd = np.inf
                drift = max(drift, dd)
        _finish_row(i, status, js, y, lv, gn, k * lr, drift if track else np.nan, n_steps, n_rhs, store, ys,
                    loss_s, gn_s, y_final, out_i, out_f)

    @njit(cache=True, nogil=True)
    def _gd_batch(rows, Y0, lr, n_total, ks, grad_tol, max_norm, max_loss, store, track, is_h1, shp, off, T, Tf,
                  R, has_R, c, pre_off, nbuf, wts, ys, loss_s, gn_s, y_final, out_i, out_f):
        for k in range(rows.shape[0]):
            i = rows[k]
            _gd_one(i, Y0[i], lr, n_total, ks, grad_tol, max_norm, max_loss, store, track, is_h1, shp, off, T, Tf,
                    R, has_R, c, pre_off, nbuf, wts, ys, loss_s, gn_s, y_final, out_i, out_f)


def n_threads() -> int:
    """Worker threads for the compiled kernels: ``FLOWGEOM_NUM_THREADS`` or the usable CPU count."""
    env = os.environ.get("FLOWGEOM_NUM_THREADS", "").strip()
    if env:
        return max(1, int(env))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


# Slices of the ensemble: each kernel call runs about SLICE_SECONDS of work (adapted from the
# measured time per row), so the caller's thread returns to Python, where signals are handled,
# at least that often; a slice is never more than 1 / SLICE_SHARE of a thread's rows (balance).
SLICE_SECONDS = 0.05
SLICE_FIRST_ROWS = 4
SLICE_SHARE = 4


def _run_threaded(kernel, N, args, threads=None):
    """Run ``kernel(rows, *args)`` over trajectory indices 0..N-1 in short slices, on threads.

    The kernels release the GIL; each thread takes the next slice of consecutive rows from a shared
    cursor until none are left (dynamic balance: slow trajectories do not hold up a thread's fixed
    share). Every kernel call is short (``SLICE_SECONDS``), so the run is interruptible: a
    KeyboardInterrupt (Ctrl-C, or SIGTERM turned into one) raised in the calling thread, which
    waits in Python, stops the other threads after their current slice and propagates within
    about ``SLICE_SECONDS`` (measured: 0.1-0.3 s on the (16, 12, 8) ensemble, against 80 s when
    each thread ran one uninterruptible call over its whole share). Each row is written by one
    kernel call whatever the slicing, so results do not depend on it. With one thread the slices
    run in the calling thread.
    """
    import threading
    import time

    threads = n_threads() if threads is None else max(1, int(threads))
    threads = min(threads, N)
    cap = max(1, -(-N // (SLICE_SHARE * threads)))
    lock = threading.Lock()
    state = {"next": 0, "stop": False, "error": None}

    def work():
        rows = min(SLICE_FIRST_ROWS, cap)
        while True:
            with lock:
                a = state["next"]
                if state["stop"] or a >= N:
                    return
                b = min(N, a + rows)
                state["next"] = b
            t = time.perf_counter()
            try:
                kernel(np.arange(a, b, dtype=np.int64), *args)
            except BaseException as e:  # noqa: BLE001 - handed to the calling thread
                with lock:
                    state["stop"] = True
                    state["error"] = state["error"] or e
                return
            per_row = (time.perf_counter() - t) / (b - a)
            rows = int(min(cap, max(1, SLICE_SECONDS / per_row if per_row > 0 else cap)))

    if threads <= 1:
        work()
    else:
        pool = [threading.Thread(target=work, name=f"flowgeom-kernel-{k}", daemon=True) for k in range(threads)]
        try:
            for th in pool:
                th.start()
            for th in pool:
                while th.is_alive():
                    th.join(0.25)
        except BaseException:
            with lock:
                state["stop"] = True  # the others finish their slice and return; nobody waits for them
            raise
    if state["error"] is not None:
        raise state["error"]


def _outputs(N, S, n, states):
    # uninitialised: every slot is written by the kernels (values or NaN), first touched by the
    # worker threads
    ys = np.empty((N, S, n)) if states else np.empty((1, 1, 1))
    return ys, np.empty((N, S)), np.empty((N, S)), np.empty((N, n)), np.zeros((N, 3), np.int64), np.zeros((N, 2))


def _trajectory(net, ts, ys, loss_s, gn_s, y_final, out_i, out_f, states, method, rtol, atol, lr=None):
    from flowgeom.flow._base import build_trajectory

    return build_trajectory(
        net, ts=ts, ys=ys if states else None, loss=loss_s, grad_norm=gn_s, y_final=y_final,
        t_final=out_f[:, 0].copy(), status=out_i[:, 0], n_steps=out_i[:, 1].copy(), n_rhs=out_i[:, 2].copy(),
        drift=out_f[:, 1].copy(), method=method, rtol=rtol, atol=atol, backend="numba", lr=lr,
    )


def dopri5_dln(net, y0, ts, t0, t1, *, states, rtol, atol, grad_tol, max_steps, max_norm, dt0, adaptive,
               kernel=None):
    """Run the compiled DOPRI5 ensemble for a DeepLinearNetwork; returns a Trajectory.

    ``kernel``: "soa" (lanes of trajectories advanced together, :mod:`flowgeom.flow._numba_soa`; H = 1
    without input factor only), "row" (one trajectory at a time, any depth) or None (default: "soa"
    when the network allows it and has at most ``_numba_soa.MAX_STATE`` parameters, else "row").
    """
    arrs, wts = _network_arrays(net)
    N, n = y0.shape
    ys, loss_s, gn_s, y_final, out_i, out_f = _outputs(N, ts.shape[0], n, states)
    common = (np.ascontiguousarray(y0), np.ascontiguousarray(ts, dtype=np.float64), float(t0), float(t1),
              float(rtol), float(atol), float(grad_tol), int(max_steps), float(max_norm),
              -1.0 if dt0 is None else float(dt0), bool(adaptive), bool(states))
    outs = (ys, loss_s, gn_s, y_final, out_i, out_f)
    if kernel is None:
        from flowgeom.flow._numba_soa import MAX_STATE

        kernel = "soa" if arrs[0] and n <= MAX_STATE else "row"
    check_choice("kernel", kernel, ("soa", "row"))
    if kernel == "soa" and not arrs[0]:
        raise InputError("`kernel='soa'` needs a network with one hidden layer and no input factor; "
                         "use kernel='row' or None.")
    if kernel == "soa":  # H = 1, R = I: a block of trajectories per step (flowgeom.flow._numba_soa)
        from flowgeom.flow._numba_soa import LANES, _dopri5_soa_batch

        shp, Tf, c = arrs[1], arrs[4], arrs[7]
        args = (*common, int(shp[0, 1]), int(shp[0, 0]), int(shp[1, 0]), Tf, c, wts, LANES, *outs)
        with compile_report():
            _run_threaded(_dopri5_soa_batch, N, args)
    else:
        with compile_report():
            _run_threaded(_dopri5_batch, N, (*common, *arrs, wts, *outs))
    return _trajectory(net, ts, ys, loss_s, gn_s, y_final, out_i, out_f, states, "dopri5", rtol, atol)


def gd_dln(net, y0, lr, n_total, ks, ts, *, states, grad_tol, max_norm, max_loss, track_invariants):
    """Run compiled gradient descent for a DeepLinearNetwork; returns a Trajectory."""
    arrs, wts = _network_arrays(net)
    N, n = y0.shape
    ys, loss_s, gn_s, y_final, out_i, out_f = _outputs(N, ts.shape[0], n, states)
    args = (np.ascontiguousarray(y0), float(lr), int(n_total), np.ascontiguousarray(ks, dtype=np.int64),
            float(grad_tol), float(max_norm), np.inf if max_loss is None else float(max_loss), bool(states),
            bool(track_invariants), *arrs, wts, ys, loss_s, gn_s, y_final, out_i, out_f)
    with compile_report():
        _run_threaded(_gd_batch, N, args)
    tr = _trajectory(net, ts, ys, loss_s, gn_s, y_final, out_i, out_f, states, "gd", np.nan, np.nan, lr=float(lr))
    return tr
