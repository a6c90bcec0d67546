r"""Compiled (numba) RODAS4 for small dense DeepLinearNetwork flows: one trajectory's whole adaptive loop.

The method is the numpy one of :mod:`flowgeom.flow._rosenbrock` with its ``RODAS4`` coefficients
(passed in, never re-typed): for :math:`\dot y = f(y) = -\nabla L(y)` each step of size h solves

.. math::
    \Big(\frac{I}{h\gamma} + \nabla^2 L(y_0)\Big)\, k_i = f\Big(y_0 + \sum_{j<i} a_{ij} k_j\Big)
        + \sum_{j<i} \frac{c_{ij}}{h} k_j, \qquad
    y_1 = y_0 + \sum_i m_i k_i, \qquad \mathrm{err} = \sum_i e_i k_i ,

with the exact Hessian (:func:`flowgeom.flow._numba_dln._hessian`), one LU factorisation with
partial pivoting per attempted step (the Hessian itself is kept across a rejection: same
:math:`y_0`), the shared error norm and controller (exponent :math:`-1/4`), the statuses,
the stage-based dense output at the save times and the counters (``n_rhs`` counts the gradients
of the stages, of :math:`y_1` and of the initial-step guess, as the numpy path does).
One difference in a pathological case: a step whose matrix is not finite or singular is rejected
with the error norm set to infinity (the numpy path solves with the identity and uses the error of
that solve).

Why: at n = 18 (linnerud, widths (3, 3, 3)) the numpy path spends its time in per-step Python and
numpy-call overhead, not in arithmetic. Internal module; used by :func:`flowgeom.flow.integrate`
for ``method="rosenbrock"`` with the dense solver (n <= ``DENSE_MAX_PARAMS``).
"""

from __future__ import annotations

import numpy as np

from flowgeom.flow._numba import HAVE_NUMBA, _outputs, _run_threaded, _trajectory
from flowgeom.flow._numba_compile import compile_report
from flowgeom.flow._numba_dln import _hessian_arrays, _network_arrays
from flowgeom.flow._status import CONVERGED as _CONVERGED
from flowgeom.flow._status import DIVERGED as _DIVERGED
from flowgeom.flow._status import FAILED as _FAILED
from flowgeom.flow._status import MAX_STEPS as _MAX_STEPS
from flowgeom.flow._status import REACHED_T1 as _REACHED_T1
from flowgeom.flow._status import RUNNING as _RUNNING

if HAVE_NUMBA:
    from numba import njit

    from flowgeom.flow._numba import _drift, _drift_scale, _finish_row, _initial_step, _rms_scaled, _start
    from flowgeom.flow._numba_dln import _allfinite, _hessian, _norm, _rhs, _step_factor_exp

    @njit(cache=True)
    def _lu(A, piv):
        """In-place LU with partial pivoting (Doolittle, rows swapped); False when a pivot is 0 or not finite."""
        n = A.shape[0]
        for k in range(n):
            p = k
            big = abs(A[k, k])
            for r in range(k + 1, n):
                v = abs(A[r, k])
                if v > big:
                    big = v
                    p = r
            if not (big > 0.0 and np.isfinite(big)):
                return False
            piv[k] = p
            if p != k:
                for q in range(n):
                    tmp = A[k, q]
                    A[k, q] = A[p, q]
                    A[p, q] = tmp
            inv = 1.0 / A[k, k]
            for r in range(k + 1, n):
                lr = A[r, k] * inv
                A[r, k] = lr
                if lr != 0.0:
                    for q in range(k + 1, n):
                        A[r, q] -= lr * A[k, q]
        return True

    @njit(cache=True)
    def _lu_solve(A, piv, x):
        """Solve in place A x = b (x holds b on entry) with the factors of :func:`_lu`."""
        n = A.shape[0]
        for k in range(n):
            p = piv[k]
            if p != k:
                tmp = x[k]
                x[k] = x[p]
                x[p] = tmp
        for r in range(1, n):
            s = x[r]
            for q in range(r):
                s -= A[r, q] * x[q]
            x[r] = s
        for r in range(n - 1, -1, -1):
            s = x[r]
            for q in range(r + 1, n):
                s -= A[r, q] * x[q]
            x[r] = s / A[r, r]

    @njit(cache=True)
    def _rodas_one(i, y0, ts, t0, t1, rtol, atol, grad_tol, max_steps, max_norm, dt0, adaptive, store,
                   gamma, ta, tc, tm, te, td, err_exp, init_exp,
                   is_h1, shp, off, T, Tf, R, has_R, c, pre_off, nbuf, RRt, LR, HS, wts,
                   ys, loss_s, gn_s, y_final, out_i, out_f):
        n = y0.shape[0]
        S = ts.shape[0]
        s_st = tm.shape[0]
        pre = np.empty(pre_off[-1])
        bufA = np.empty(nbuf)
        bufB = np.empty(nbuf)
        M = np.empty(T.shape[0] * T.shape[1])
        Hs = np.empty((n, n))
        Am = np.empty((n, n))
        piv = np.empty(n, dtype=np.int64)
        K = np.empty((s_st, n))
        y = y0.copy()
        f = np.empty(n)
        yn = np.empty(n)
        y1 = np.empty(n)
        f1 = np.empty(n)
        ys_ = np.empty(n)
        fs = np.empty(n)
        err = np.empty(n)
        q1 = np.empty(n)
        q2 = np.empty(n)
        c0 = np.empty(wts.shape[0])
        cc = np.empty(wts.shape[0])
        c0s = _drift_scale(y, c0, wts, shp, off)
        drift = 0.0
        n_rhs = 1
        n_steps = 0
        lval = _rhs(y, f, is_h1, shp, off, T, Tf, R, has_R, c, pre, pre_off, bufA, bufB, M)
        js, status = _start(i, y, lval, _norm(f), ts, t0, max_norm, grad_tol, store, ys, loss_s, gn_s)
        t = t0
        h = dt0
        if status == _RUNNING and adaptive and dt0 <= 0.0:
            h = _initial_step(y, f, yn, fs, t0, t1, rtol, atol, init_exp,
                              is_h1, shp, off, T, Tf, R, has_R, c, pre, pre_off, bufA, bufB, M)
            n_rhs += 1
        rejected = False
        attempts = 0
        have_hess = False
        while status == _RUNNING:
            if not adaptive:
                h = dt0
                if t1 - t <= dt0 * (1 + 1e-8):
                    h = t1 - t
            h = min(h, t1 - t)
            # the matrix I/(h gamma) + Hess(y), factorised once for the s stages
            if not have_hess:
                _hessian(y, Hs, shp, off, T, R, has_R, RRt, LR, HS)
                have_hess = True
            shift = 1.0 / (gamma * h)
            for a in range(n):
                for b in range(n):
                    Am[a, b] = Hs[a, b]
                Am[a, a] += shift
            ok = _lu(Am, piv)
            if ok:
                for st in range(s_st):
                    if st == 0:
                        for q in range(n):
                            K[0, q] = f[q]
                    else:
                        for q in range(n):
                            v = y[q]
                            for r in range(st):
                                v += ta[st, r] * K[r, q]
                            yn[q] = v
                        _rhs(yn, fs, is_h1, shp, off, T, Tf, R, has_R, c, pre, pre_off, bufA, bufB, M)
                        n_rhs += 1
                        for q in range(n):
                            v = 0.0
                            for r in range(st):
                                v += tc[st, r] * K[r, q]
                            K[st, q] = fs[q] + v / h
                    _lu_solve(Am, piv, K[st])
                for q in range(n):
                    v = y[q]
                    for r in range(s_st):
                        v += tm[r] * K[r, q]
                    y1[q] = v
            attempts += 1
            finite = ok and _allfinite(y1)
            if adaptive:
                if ok:
                    for q in range(n):
                        v = 0.0
                        for r in range(s_st):
                            v += te[r] * K[r, q]
                        err[q] = v
                    en = _rms_scaled(err, y, y1, rtol, atol)
                else:
                    en = np.inf
                accept = finite and en <= 1.0
            else:
                en = 0.0
                accept = finite
            if accept:
                _rhs(y1, f1, is_h1, shp, off, T, Tf, R, has_R, c, pre, pre_off, bufA, bufB, M)
                n_rhs += 1
                if not _allfinite(f1):
                    accept = False
                    en = np.inf
            t_new = t1 if h >= t1 - t else t + h
            if accept:
                # save points in (t, t_new] by the stages' dense output
                if js < S and ts[js] <= t_new:
                    for q in range(n):
                        v1 = 0.0
                        v2 = 0.0
                        for r in range(s_st):
                            v1 += td[0, r] * K[r, q]
                            v2 += td[1, r] * K[r, q]
                        q1[q] = v1
                        q2[q] = v2
                    while js < S and ts[js] <= t_new:
                        th = (ts[js] - t) / h
                        th = min(max(th, 0.0), 1.0)
                        for q in range(n):
                            ys_[q] = (1.0 - th) * y[q] + th * (y1[q] + (1.0 - th) * (q1[q] + th * q2[q]))
                        lv = _rhs(ys_, fs, is_h1, shp, off, T, Tf, R, has_R, c, pre, pre_off, bufA, bufB, M)
                        if store:
                            ys[i, js, :] = ys_
                        loss_s[i, js] = lv
                        gn_s[i, js] = _norm(fs)
                        js += 1
                n_steps += 1
                gn1 = _norm(f1)
                if _norm(y1) > max_norm:
                    status = _DIVERGED  # keeps its last good state
                else:
                    for q in range(n):
                        y[q] = y1[q]
                        f[q] = f1[q]
                    t = t_new
                    have_hess = False
                    drift = max(drift, _drift(y, cc, c0, c0s, wts, shp, off))
                    if gn1 <= grad_tol:
                        status = _CONVERGED
                    elif t_new >= t1:
                        status = _REACHED_T1
            if adaptive:
                h = h * _step_factor_exp(en, accept, rejected, err_exp)
                rejected = not accept
                if (not accept) and h < 10 * np.spacing(max(abs(t), 1.0)) and status == _RUNNING:
                    status = _FAILED
            elif not accept and status == _RUNNING:
                status = _FAILED
            if status == _RUNNING and attempts >= max_steps:
                status = _MAX_STEPS
        lv, g2 = np.nan, np.nan
        if (status == _CONVERGED or status == _REACHED_T1) and js < S:
            lv = _rhs(y, fs, is_h1, shp, off, T, Tf, R, has_R, c, pre, pre_off, bufA, bufB, M)
            g2 = _norm(fs)
        _finish_row(i, status, js, y, lv, g2, t, drift, n_steps, n_rhs, store, ys, loss_s, gn_s, y_final,
                    out_i, out_f)

    @njit(cache=True, nogil=True)
    def _rodas_batch(rows, Y0, ts, t0, t1, rtol, atol, grad_tol, max_steps, max_norm, dt0, adaptive, store,
                     gamma, ta, tc, tm, te, td, err_exp, init_exp,
                     is_h1, shp, off, T, Tf, R, has_R, c, pre_off, nbuf, RRt, LR, HS, wts,
                     ys, loss_s, gn_s, y_final, out_i, out_f):
        # the Hessian's scratch is per call: each thread runs its own slices
        LRk = np.empty_like(LR)
        HSk = np.empty_like(HS)
        for k in range(rows.shape[0]):
            i = rows[k]
            _rodas_one(i, Y0[i], ts, t0, t1, rtol, atol, grad_tol, max_steps, max_norm, dt0, adaptive, store,
                       gamma, ta, tc, tm, te, td, err_exp, init_exp,
                       is_h1, shp, off, T, Tf, R, has_R, c, pre_off, nbuf, RRt, LRk, HSk, wts,
                       ys, loss_s, gn_s, y_final, out_i, out_f)


def rosenbrock_dln(net, y0, ts, t0, t1, *, states, rtol, atol, grad_tol, max_steps, max_norm, dt0, adaptive,
                   tableau=None):
    """Run the compiled RODAS4 ensemble for a DeepLinearNetwork (dense Hessian and LU); returns a Trajectory."""
    from flowgeom.flow._rosenbrock import DEFAULT_TABLEAU, TABLEAUS

    tab = TABLEAUS[DEFAULT_TABLEAU if tableau is None else tableau]
    if tab.dense is None:  # pragma: no cover - guarded by the caller
        raise ValueError(f"the compiled Rosenbrock kernel needs a tableau with stage dense output; got {tab.name!r}")
    arrs, wts = _network_arrays(net)
    RRt, LR, HS = _hessian_arrays(net)
    N, n = y0.shape
    ys, loss_s, gn_s, y_final, out_i, out_f = _outputs(N, ts.shape[0], n, states)
    ta = np.zeros((tab.m.size, tab.m.size))
    tc = np.zeros((tab.m.size, tab.m.size))
    ta[:, : tab.m.size - 1] = tab.a
    tc[:, : tab.m.size - 1] = tab.c
    args = (np.ascontiguousarray(y0), np.ascontiguousarray(ts, dtype=np.float64), float(t0), float(t1),
            float(rtol), float(atol), float(grad_tol), int(max_steps), float(max_norm),
            -1.0 if dt0 is None else float(dt0), bool(adaptive), bool(states),
            float(tab.gamma), ta, tc, np.ascontiguousarray(tab.m, dtype=np.float64),
            np.ascontiguousarray(tab.e, dtype=np.float64), np.ascontiguousarray(tab.dense, dtype=np.float64),
            float(tab.error_exponent), 1.0 / (tab.order + 1), *arrs, RRt, LR, HS, wts, ys, loss_s, gn_s, y_final, out_i, out_f)
    with compile_report():
        _run_threaded(_rodas_batch, N, args)
    return _trajectory(net, ts, ys, loss_s, gn_s, y_final, out_i, out_f, states, "rosenbrock", rtol, atol)
