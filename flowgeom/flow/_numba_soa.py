r"""Compiled DOPRI5 for the H = 1 whitened network, structure of arrays: a block of trajectories per step.

The field of :class:`~flowgeom.models.deep_linear.DeepLinearNetwork` with one hidden layer and
:math:`R = I` is

.. math:: M = T - W_2 W_1, \qquad \dot W_1 = W_2^\top M, \qquad \dot W_2 = M W_1^\top,
          \qquad L = \tfrac12 \|M\|_F^2 + c.

For tiny widths, e.g. :math:`(d_x, d_1, d_y) = (4, 3, 2)`, the per-trajectory kernel of
:mod:`flowgeom.flow._numba` spends most of its time in loop overhead (loops of length 2 to 4 do
not vectorize). Here ``nb`` trajectories ("lanes") are advanced together: every state, stage and
work array has the lane as its last, contiguous axis (shape ``(n, nb)``), so each scalar operation
of the per-trajectory algorithm becomes a loop over lanes that the compiler turns into SIMD
instructions. Step control stays per trajectory: each lane has its own step size, time, accept /
reject decision, save-point cursor, counters and status; a lane whose trajectory has finished is
refilled with the next trajectory of the batch (so a block never waits for its slowest member
except at the very end). The algorithm, constants, save-point rules and statuses are those of
:func:`flowgeom.flow._numba._dopri5_one` (Dormand & Prince 1980, the controller of Hairer, Norsett
& Wanner, *Solving ODEs I*, II.4), so the two kernels agree to round-off; per lane the arithmetic
does not depend on the other lanes, so a trajectory's result does not depend on its block.

Which kernel runs: :func:`flowgeom.flow._numba.dopri5_dln` uses this one for H = 1 without an
input factor (``is_h1``) and at most ``MAX_STATE`` parameters, the per-trajectory kernel otherwise
(see ``MAX_STATE`` and ``benchmarks/bench_integrate.py`` for the measured comparison).
"""

from __future__ import annotations

import numpy as np

from flowgeom.flow._numba_dln import HAVE_NUMBA
from flowgeom.flow._status import CONVERGED as _CONVERGED
from flowgeom.flow._status import DIVERGED as _DIVERGED
from flowgeom.flow._status import FAILED as _FAILED
from flowgeom.flow._status import MAX_STEPS as _MAX_STEPS
from flowgeom.flow._status import REACHED_T1 as _REACHED_T1
from flowgeom.flow._status import RUNNING as _RUNNING

# Floating-point flags: reassociation and contraction, never "no NaN/inf" (divergence checks).
_FM = {"nsz", "arcp", "contract", "reassoc"}

#: lanes per block (trajectories advanced together): wide enough for the SIMD loops over lanes
#: (measured: 32 beats 8 and 16 at both benchmark sizes and matches 64), small enough for a block's stages
#: to stay in cache.
LANES = 32
#: largest state (number of parameters) for which this kernel is the default. Measured against the
#: per-trajectory kernel on an idle 2-core machine (N = 4096, T = 50, standard init, wall clock, 2 threads):
#: 5.4x faster at (4, 3, 2) (18 parameters), 1.6x at (8, 6, 4) (72), 1.4x at (10, 8, 6) and (12, 8, 6)
#: (128, 144), 1.2x at (16, 8, 4) (160); slower beyond: 0.73x at (12, 10, 8) (200), 0.50x at (16, 12, 8)
#: (288; also 0.49x on one thread), 0.10x at (24, 16, 12) (576). (Earlier measurements on a loaded machine
#: had put the crossover near 768 parameters; they did not hold on an idle one.)
MAX_STATE = 160


if HAVE_NUMBA:
    from numba import njit

    from flowgeom.flow._base import DP_A, DP_D, DP_E
    from flowgeom.flow._numba import _finish_row
    from flowgeom.flow._numba_dln import _conserved, _field_h1, _norm, _step_factor

    _A = np.ascontiguousarray(DP_A)
    _E = np.ascontiguousarray(DP_E)
    _D = np.ascontiguousarray(DP_D)

    @njit(cache=True, fastmath=_FM)
    def _field_soa(th, out, lossv, dx, d1, dy, Tf, M, c):
        """out[:, l] = -grad L(th[:, l]) and lossv[l] = L(th[:, l]) for every lane l (M: work array)."""
        nb = th.shape[1]
        o2 = d1 * dx
        for l in range(nb):
            lossv[l] = 0.0
        for i in range(dy):
            for p in range(dx):
                m = i * dx + p
                tv = Tf[m]
                for l in range(nb):
                    M[m, l] = tv
                for a in range(d1):
                    w = o2 + i * d1 + a
                    v = a * dx + p
                    for l in range(nb):
                        M[m, l] -= th[w, l] * th[v, l]
                for l in range(nb):
                    lossv[l] += M[m, l] * M[m, l]
        for a in range(d1):
            for p in range(dx):
                o = a * dx + p
                for l in range(nb):
                    out[o, l] = 0.0
                for i in range(dy):
                    w = o2 + i * d1 + a
                    m = i * dx + p
                    for l in range(nb):
                        out[o, l] += th[w, l] * M[m, l]
        for i in range(dy):
            for a in range(d1):
                o = o2 + i * d1 + a
                for l in range(nb):
                    out[o, l] = 0.0
                for p in range(dx):
                    m = i * dx + p
                    v = a * dx + p
                    for l in range(nb):
                        out[o, l] += M[m, l] * th[v, l]
        for l in range(nb):
            lossv[l] = 0.5 * lossv[l] + c

    @njit(cache=True, fastmath=_FM)
    def _stage_soa(s, h, y, K, yn):
        """yn = y + h (sum_{r<s} A[s, r] K[r]) lane by lane: the input of stage s (unrolled per s)."""
        n, nb = y.shape
        if s == 1:
            a0 = _A[1, 0]
            for q in range(n):
                for l in range(nb):
                    yn[q, l] = y[q, l] + h[l] * (a0 * K[0, q, l])
        elif s == 2:
            a0, a1 = _A[2, 0], _A[2, 1]
            for q in range(n):
                for l in range(nb):
                    yn[q, l] = y[q, l] + h[l] * (a0 * K[0, q, l] + a1 * K[1, q, l])
        elif s == 3:
            a0, a1, a2 = _A[3, 0], _A[3, 1], _A[3, 2]
            for q in range(n):
                for l in range(nb):
                    yn[q, l] = y[q, l] + h[l] * (a0 * K[0, q, l] + a1 * K[1, q, l] + a2 * K[2, q, l])
        elif s == 4:
            a0, a1, a2, a3 = _A[4, 0], _A[4, 1], _A[4, 2], _A[4, 3]
            for q in range(n):
                for l in range(nb):
                    yn[q, l] = y[q, l] + h[l] * (a0 * K[0, q, l] + a1 * K[1, q, l] + a2 * K[2, q, l]
                                                 + a3 * K[3, q, l])
        elif s == 5:
            a0, a1, a2, a3, a4 = _A[5, 0], _A[5, 1], _A[5, 2], _A[5, 3], _A[5, 4]
            for q in range(n):
                for l in range(nb):
                    yn[q, l] = y[q, l] + h[l] * (a0 * K[0, q, l] + a1 * K[1, q, l] + a2 * K[2, q, l]
                                                 + a3 * K[3, q, l] + a4 * K[4, q, l])
        else:  # s == 6: A[6, 1] = 0
            a0, a2, a3, a4, a5 = _A[6, 0], _A[6, 2], _A[6, 3], _A[6, 4], _A[6, 5]
            for q in range(n):
                for l in range(nb):
                    yn[q, l] = y[q, l] + h[l] * (a0 * K[0, q, l] + a2 * K[2, q, l] + a3 * K[3, q, l]
                                                 + a4 * K[4, q, l] + a5 * K[5, q, l])

    @njit(cache=True, fastmath=_FM)
    def _measures_soa(h, y, yn, K, rtol, atol, d1, dx, dy, c0, wts, en2, ynn, gn2, dd2, acc):
        """Per lane: squared scaled error sum (E[1] = 0), |yn|^2, |K6|^2 and the weighted squared change
        of the conserved C = W2^T W2 - W1 W1^T (packed upper triangle, as ``_conserved``; acc: work array).
        Every sum runs over the state index with the lane innermost, so each lane's arithmetic is the same
        whatever the other lanes hold."""
        n, nb = y.shape
        e0, e2, e3, e4, e5, e6 = _E[0], _E[2], _E[3], _E[4], _E[5], _E[6]
        for l in range(nb):
            en2[l] = 0.0
            ynn[l] = 0.0
            gn2[l] = 0.0
            dd2[l] = 0.0
        for q in range(n):
            for l in range(nb):
                err = h[l] * (e0 * K[0, q, l] + e2 * K[2, q, l] + e3 * K[3, q, l] + e4 * K[4, q, l]
                              + e5 * K[5, q, l] + e6 * K[6, q, l])
                sc = atol + rtol * max(abs(y[q, l]), abs(yn[q, l]))
                v = err / sc
                en2[l] += v * v
                ynn[l] += yn[q, l] * yn[q, l]
                gn2[l] += K[6, q, l] * K[6, q, l]
        o2 = d1 * dx
        k = 0
        for a in range(d1):
            for b in range(a, d1):
                wk = wts[k]
                for l in range(nb):
                    acc[l] = 0.0
                for i in range(dy):
                    for l in range(nb):
                        acc[l] += yn[o2 + i * d1 + a, l] * yn[o2 + i * d1 + b, l]
                for p in range(dx):
                    for l in range(nb):
                        acc[l] -= yn[a * dx + p, l] * yn[b * dx + p, l]
                for l in range(nb):
                    dlt = acc[l] - c0[k, l]
                    dd2[l] += wk * dlt * dlt
                k += 1

    @njit(cache=True)
    def _finite_soa(yn, K6, fin):
        """fin[l] = 0 when yn[:, l] and K6[:, l] are finite, NaN otherwise (x - x is NaN iff x is not finite;
        compiled without fast-math so that it is not folded away)."""
        n, nb = yn.shape
        for l in range(nb):
            fin[l] = 0.0
        for q in range(n):
            for l in range(nb):
                fin[l] += (yn[q, l] - yn[q, l]) + (K6[q, l] - K6[q, l])

    @njit(cache=True)
    def _save_dense(l, i, js, ts, t, t_new, hh, y, yn, K, store, dx, d1, dy, Tf, c, Ms, ys_, fs, r5v, ys, loss_s,
                    gn_s):
        """Save points of lane l (trajectory i) in (t, t_new] by the continuous extension; returns new js."""
        n = y.shape[0]
        S = ts.shape[0]
        for q in range(n):
            r5v[q] = 0.0
        for r in range(7):
            a = hh * _D[r]
            if a != 0.0:
                for q in range(n):
                    r5v[q] += a * K[r, q, l]
        while js < S and ts[js] <= t_new:
            th = (ts[js] - t) / hh
            th = min(max(th, 0.0), 1.0)
            for q in range(n):
                dyq = yn[q, l] - y[q, l]
                r3 = hh * K[0, q, l] - dyq
                r4 = dyq - hh * K[6, q, l] - r3
                ys_[q] = y[q, l] + th * (dyq + (1 - th) * (r3 + th * (r4 + (1 - th) * r5v[q])))
            lv = _field_h1(ys_, fs, dx, d1, dy, Tf, Ms) + c
            if store:
                ys[i, js, :] = ys_
            loss_s[i, js] = lv
            gn_s[i, js] = _norm(fs)
            js += 1
        return js

    @njit(cache=True)
    def _start(i, Y0, ts, t0, t1, rtol, atol, grad_tol, max_norm, dt0, adaptive, store, dx, d1, dy, Tf, c, wts,
               col, fs, yn, f1, Ms, ccs, ys, loss_s, gn_s, lane_f, lane_i):
        """Start trajectory i (field at t0, save points at t0, first step; as ``_dopri5_one``) into col (state)
        and fs (field). Returns its status; lane_f = (t, h, drift, c0s), lane_i = (js, n_steps, n_rhs)."""
        n = col.shape[0]
        S = ts.shape[0]
        shp = np.empty((2, 2), np.int64)
        shp[0, 0], shp[0, 1], shp[1, 0], shp[1, 1] = d1, dx, dy, d1
        off = np.array([0, d1 * dx, d1 * dx + dy * d1], np.int64)
        for q in range(n):
            col[q] = Y0[i, q]
        lval = _field_h1(col, fs, dx, d1, dy, Tf, Ms) + c
        gn = _norm(fs)
        _conserved(col, ccs, shp, off)
        c0s = 0.0
        for q in range(wts.shape[0]):
            c0s += wts[q] * ccs[q] * ccs[q]
        js = 0
        while js < S and ts[js] <= t0:
            if store:
                ys[i, js, :] = col
            loss_s[i, js] = lval
            gn_s[i, js] = gn
            js += 1
        status = _RUNNING
        if not np.isfinite(gn) or _norm(col) > max_norm:
            status = _DIVERGED
        elif gn <= grad_tol:
            status = _CONVERGED
        n_rhs = 1
        h = dt0
        if status == _RUNNING and adaptive and dt0 <= 0.0:
            # initial step (Hairer II.4), as flowgeom.integrate._initial_step
            d0 = 0.0
            dd1 = 0.0
            for q in range(n):
                sc = atol + abs(col[q]) * rtol
                d0 += (col[q] / sc) ** 2
                dd1 += (fs[q] / sc) ** 2
            d0 = np.sqrt(d0 / n)
            dd1 = np.sqrt(dd1 / n)
            if d0 < 1e-5 or dd1 < 1e-5:
                h0 = 1e-6
            else:
                h0 = 0.01 * d0 / dd1
            h0 = min(h0, t1 - t0)
            for q in range(n):
                yn[q] = col[q] + h0 * fs[q]
            _field_h1(yn, f1, dx, d1, dy, Tf, Ms)
            n_rhs += 1
            d2 = 0.0
            for q in range(n):
                sc = atol + abs(col[q]) * rtol
                d2 += ((f1[q] - fs[q]) / sc) ** 2
            d2 = np.sqrt(d2 / n) / h0
            dm = max(dd1, d2)
            if not dm > 1e-15:
                hb = max(1e-6, h0 * 1e-3)
            else:
                hb = (0.01 / dm) ** (1.0 / 5.0)
            h = min(min(100 * h0, hb), t1 - t0)
        lane_f[0], lane_f[1], lane_f[2], lane_f[3] = t0, h, 0.0, 1.0 + np.sqrt(c0s)
        lane_i[0], lane_i[1], lane_i[2] = js, 0, n_rhs
        return status

    @njit(cache=True)
    def _finish(i, status, js, col, t, drift, n_steps, n_rhs, ts, store, dx, d1, dy, Tf, c, Ms, fs,
                ys, loss_s, gn_s, y_final, out_i, out_f):
        lv, g2 = np.nan, np.nan
        if (status == _CONVERGED or status == _REACHED_T1) and js < ts.shape[0]:
            lv = _field_h1(col, fs, dx, d1, dy, Tf, Ms) + c
            g2 = _norm(fs)
        _finish_row(i, status, js, col, lv, g2, t, drift, n_steps, n_rhs, store, ys, loss_s, gn_s, y_final,
                    out_i, out_f)

    @njit(cache=True, nogil=True)
    def _dopri5_soa_batch(rows, Y0, ts, t0, t1, rtol, atol, grad_tol, max_steps, max_norm, dt0, adaptive, store,
                          dx, d1, dy, Tf, c, wts, lanes, ys, loss_s, gn_s, y_final, out_i, out_f):
        """DOPRI5 for trajectories ``rows`` of Y0, ``lanes`` at a time (H = 1, R = I network)."""
        n = Y0.shape[1]
        S = ts.shape[0]
        kc = wts.shape[0]
        nb = max(1, min(lanes, rows.shape[0]))
        y = np.zeros((n, nb))
        yn = np.zeros((n, nb))
        K = np.zeros((7, n, nb))
        M = np.empty((dy * dx, nb))
        c0 = np.zeros((kc, nb))
        lossv = np.empty(nb)
        en2 = np.empty(nb)
        ynn = np.empty(nb)
        gn2 = np.empty(nb)
        dd2 = np.empty(nb)
        fin = np.empty(nb)
        hc = np.zeros(nb)  # step attempted by each lane (0 for idle lanes)
        t = np.zeros(nb)
        h = np.zeros(nb)
        drift = np.zeros(nb)
        c0s = np.ones(nb)
        row = np.full(nb, -1, np.int64)
        status = np.zeros(nb, np.int64)
        js = np.zeros(nb, np.int64)
        n_steps = np.zeros(nb, np.int64)
        n_rhs = np.zeros(nb, np.int64)
        attempts = np.zeros(nb, np.int64)
        rejected = np.zeros(nb, np.bool_)
        take = np.zeros(nb, np.bool_)
        col = np.empty(n)
        fs = np.empty(n)
        ys_ = np.empty(n)
        r5v = np.empty(n)
        Ms = np.empty(dy * dx)
        ccs = np.empty(kc)
        lane_f = np.empty(4)
        lane_i = np.empty(3, np.int64)
        nxt = 0
        n_rows = rows.shape[0]
        active = 0
        first = True
        while first or active > 0:
            # (re)fill idle lanes with the next trajectories; those finished at start-up are written at once
            for l in range(nb):
                if row[l] >= 0:
                    continue
                while nxt < n_rows:
                    i = rows[nxt]
                    nxt += 1
                    st = _start(i, Y0, ts, t0, t1, rtol, atol, grad_tol, max_norm, dt0, adaptive, store, dx, d1,
                                dy, Tf, c, wts, col, fs, ys_, r5v, Ms, ccs, ys, loss_s, gn_s, lane_f, lane_i)
                    if st != _RUNNING:
                        _finish(i, st, lane_i[0], col, lane_f[0], lane_f[2], lane_i[1], lane_i[2], ts, store, dx,
                                d1, dy, Tf, c, Ms, fs, ys, loss_s, gn_s, y_final, out_i, out_f)
                        continue
                    row[l] = i
                    status[l] = _RUNNING
                    t[l], h[l], drift[l], c0s[l] = lane_f[0], lane_f[1], lane_f[2], lane_f[3]
                    js[l], n_steps[l], n_rhs[l] = lane_i[0], lane_i[1], lane_i[2]
                    attempts[l] = 0
                    rejected[l] = False
                    for q in range(n):
                        y[q, l] = col[q]
                        K[0, q, l] = fs[q]
                    for q in range(kc):
                        c0[q, l] = ccs[q]
                    active += 1
                    break
            first = False
            if active == 0:
                break
            # step sizes of this attempt
            for l in range(nb):
                if row[l] < 0:
                    hc[l] = 0.0
                    continue
                hl = h[l]
                if not adaptive:
                    hl = dt0
                    if t1 - t[l] <= dt0 * (1 + 1e-8):
                        hl = t1 - t[l]
                hc[l] = min(hl, t1 - t[l])
            # the six stages, all lanes at once
            for s in range(1, 7):
                _stage_soa(s, hc, y, K, yn)
                _field_soa(yn, K[s], lossv, dx, d1, dy, Tf, M, c)
            _measures_soa(hc, y, yn, K, rtol, atol, d1, dx, dy, c0, wts, en2, ynn, gn2, dd2, lossv)
            _finite_soa(yn, K[6], fin)
            # per-lane step control, as _dopri5_one
            for l in range(nb):
                take[l] = False
                if row[l] < 0:
                    continue
                i = row[l]
                hh = hc[l]
                tl = t[l]
                n_rhs[l] += 6
                attempts[l] += 1
                finite = fin[l] == 0.0
                if adaptive:
                    en = np.sqrt(en2[l] / n)
                    accept = finite and en <= 1.0
                else:
                    en = 0.0
                    accept = finite
                t_new = t1 if hh >= t1 - tl else tl + hh
                st = _RUNNING
                if accept:
                    if js[l] < S and ts[js[l]] <= t_new:
                        js[l] = _save_dense(l, i, js[l], ts, tl, t_new, hh, y, yn, K, store, dx, d1, dy, Tf, c, Ms, ys_,
                                            fs, r5v, ys, loss_s, gn_s)
                    n_steps[l] += 1
                    big = np.sqrt(ynn[l]) > max_norm
                    dd = np.sqrt(dd2[l]) / c0s[l]
                    if not np.isfinite(dd):
                        dd = np.inf
                    drift[l] = max(drift[l], dd)
                    if big:
                        st = _DIVERGED  # keep the last good state
                    else:
                        take[l] = True
                        t[l] = t_new
                        gn = np.sqrt(gn2[l])
                        if gn <= grad_tol:
                            st = _CONVERGED
                        elif t_new >= t1:
                            st = _REACHED_T1
                if adaptive:
                    h[l] = hh * _step_factor(en, accept, rejected[l])
                    rejected[l] = not accept
                    if (not accept) and h[l] < 10 * np.spacing(max(abs(t[l]), 1.0)) and st == _RUNNING:
                        st = _FAILED
                elif not accept and st == _RUNNING:
                    st = _FAILED
                if st == _RUNNING and attempts[l] >= max_steps:
                    st = _MAX_STEPS
                status[l] = st
            # accepted lanes move on (y <- yn, FSAL K0 <- K6)
            for q in range(n):
                for l in range(nb):
                    if take[l]:
                        y[q, l] = yn[q, l]
                        K[0, q, l] = K[6, q, l]
            # finished lanes: write the row, free the lane
            for l in range(nb):
                if row[l] < 0 or status[l] == _RUNNING:
                    continue
                for q in range(n):
                    col[q] = y[q, l]
                _finish(row[l], status[l], js[l], col, t[l], drift[l], n_steps[l], n_rhs[l], ts, store, dx, d1,
                        dy, Tf, c, Ms, fs, ys, loss_s, gn_s, y_final, out_i, out_f)
                row[l] = -1
                active -= 1
                for q in range(n):
                    y[q, l] = 0.0
                    K[0, q, l] = 0.0
