r"""Gauss--Legendre collocation for the gradient flow: the invariant-preserving integrator.

The s-stage Gauss--Legendre method applied to :math:`\dot y = f(y) = -\nabla L(y)` solves,
for the stage increments :math:`Z_i = Y_i - y_0`,

.. math:: Z_i = h \sum_{j=1}^s a_{ij} f(y_0 + Z_j), \qquad
          y_1 = y_0 + h \sum_i b_i f(y_0 + Z_i) = y_0 + \sum_i d_i Z_i, \quad d^T = b^T A^{-1}.

It has order 2s and, being a symplectic collocation method, conserves every quadratic first
integral :math:`Q(y) = y^T S y` of the flow exactly (Hairer, Lubich, Wanner, *Geometric
Numerical Integration*, Thm. IV.2.2). The Lemma 1 invariants :math:`C_j` of a deep linear
network are quadratic, so they are conserved to the accuracy of the stage solve.

The stage equations are solved by simplified Newton iterations with the Jacobian
:math:`J = -\nabla^2 L(y_0)` (``model.hessian``, batched) frozen over the step. With
:math:`A = V \Lambda V^{-1}` the Newton matrix :math:`I - h A \otimes J` block-diagonalises into
the s complex systems :math:`(I - h\lambda_k J)\,w_k = r_k` (Hairer & Wanner, *Solving ODEs
II*, Sec. IV.8), whose inverses are formed once per step. On stiff problems (raw-units data) three
choices keep the solve from limiting the step: the iteration starts from :math:`Z = 0` (the
explicit-Euler guess :math:`Z_i = c_i h f(y_0)` is far off in stiff components and made the
iteration diverge), the second half step of the step-doubling pair uses the Hessian at its own
start, and an iteration that contracts slower than ``SLOW_RATE`` (or grows) refreshes the exact
Hessian at the current stage mean (at most ``MAX_REFRESH`` times per step) instead of failing.
Measured on the raw regression problem of issue 12 (4 trajectories, init scale 1, budget of 100
step pairs): stage-solve failures 8.4 % -> 1 %, time reached 0.004-0.45 -> 0.035-1.4. The scheme
stays A-stable but not L-stable (:math:`R(\infty) = 1`): stiff error components are not damped,
so on stiff data it is slow to reach a small ``grad_tol``; use ``"rosenbrock"`` there. This costs :math:`O(n^3)` per step and trajectory;
for large models ``solver="fixed-point"`` iterates :math:`Z \leftarrow hA f(y_0 + Z)` instead
(no Hessian; converges for :math:`h\|\nabla^2 L\| \lesssim 1`, which step-size control
enforces by rejecting steps whose iteration does not converge).

Step-size control (``adaptive=True``) is by step doubling: a step of size H is compared with
two steps of size H/2; the two half steps are kept (not the Richardson extrapolation, which
would break the conservation property), and the error of a half step pair is estimated as
:math:`(y_{H/2,H/2} - y_H)/(2^p - 1)`, p = 2s.
"""

from __future__ import annotations

import numpy as np

from flowgeom.flow._base import (
    _begin,
    _retire,
    _RUNNING,
    Status,
    _Recorder,
    _rms,
)
from flowgeom.flow._controller import step_factor, underflow

MAX_NEWTON = 12  # simplified-Newton iterations before the step is declared failed
MAX_FIXED_POINT = 40  # fixed-point iterations (linear convergence at rate ~ h ||Hess||)
STAGNATION_RATIO = 0.5  # an update shrinking by less than this is at the round-off floor...
STAGNATION_FLOOR = 100.0  # ...if it is also below STAGNATION_FLOOR * newton_tol
SLOW_RATE = 0.25  # simplified Newton contracting slower than this refreshes its Hessian...
MAX_REFRESH = 2  # ...at most this many times per step
MEMORY_BYTES = 128 * 2**20  # bound on the complex Newton matrices held at once (chunking)


def _gauss_tableau(s: int):
    if s == 1:
        A = np.array([[0.5]])
        b = np.array([1.0])
        c = np.array([0.5])
    elif s == 2:
        r = np.sqrt(3.0) / 6.0
        A = np.array([[0.25, 0.25 - r], [0.25 + r, 0.25]])
        b = np.array([0.5, 0.5])
        c = np.array([0.5 - r, 0.5 + r])
    else:  # pragma: no cover - guarded by the caller
        raise ValueError(f"`stages` must be 1 or 2; got {s!r}.")
    lam, V = np.linalg.eig(A)
    Vinv = np.linalg.inv(V)
    d = np.linalg.solve(A.T, b)  # d^T = b^T A^{-1}
    # For each eigenvalue, the index of an earlier eigenvalue it is the conjugate of (or -1):
    # its Newton inverse is then the conjugate one, since J is real.
    conj_of = []
    for k in range(s):
        prev = [j for j in range(k) if abs(lam[j] - np.conj(lam[k])) < 1e-12 and abs(lam[k].imag) > 0]
        conj_of.append(prev[0] if prev else -1)
    return A, b, c, d, lam, V, Vinv, conj_of


def gauss_legendre(rec: _Recorder, y0, t0, t1, *, stages, newton_tol, solver, rtol, atol, grad_tol, max_steps,
                   max_norm, dt0, adaptive):
    """Run the ensemble in memory-bounded chunks; see the module docstring."""
    N, n = y0.shape
    per = (16.0 * n * n * stages * (2 if adaptive else 1) + 8.0 * n * n) if solver == "newton" else 64.0 * n
    chunk = int(max(1, min(N, MEMORY_BYTES // per)))
    for start in range(0, N, chunk):
        idx = np.arange(start, min(N, start + chunk))
        _gl_chunk(rec, idx, y0[idx], t0, t1, stages=stages, newton_tol=newton_tol, solver=solver, rtol=rtol,
                  atol=atol,
                  grad_tol=grad_tol, max_steps=max_steps, max_norm=max_norm, dt0=dt0, adaptive=adaptive)


def _newton_inverses(hess, H, lam, conj_of):
    """inv(I + H * lam_k * Hess) for each stage eigenvalue (J = -Hess), shape (s, m, n, n)."""
    m, n, _ = hess.shape
    out = []
    eye = np.eye(n)
    for k, lk in enumerate(lam):
        if conj_of[k] >= 0:
            out.append(np.conj(out[conj_of[k]]))
            continue
        if abs(lk.imag) == 0:
            M = eye + (H * lk.real)[:, None, None] * hess
        else:
            M = eye + (H * lk)[:, None, None] * hess
        try:
            out.append(np.linalg.inv(M))
        except np.linalg.LinAlgError:
            # one singular matrix must not stop the batch: invert one by one, NaN where singular
            inv = np.full(M.shape, np.nan, dtype=M.dtype)
            for i in range(m):
                try:
                    inv[i] = np.linalg.inv(M[i])
                except np.linalg.LinAlgError:
                    pass
            out.append(inv)
    return out


def _gl_step(fun, y, f0, H, Minv, tab, newton_tol, n_rhs_add, refresh=None):
    """One Gauss step of size H (m,) from y (m, n); returns y1, ok (m,), rhs count (m,).

    ``refresh(rows, y_at, H_rows)``, when given, returns new Newton inverses for ``rows`` with the
    exact Hessian at ``y_at``; it is called (at most ``MAX_REFRESH`` times per row) when the
    simplified Newton iteration contracts slower than ``SLOW_RATE`` or grows.
    """
    A, b, c, d, lam, V, Vinv, conj_of = tab
    s = A.shape[0]
    m, n = y.shape
    Z = np.zeros((s, m, n)) if refresh is not None else (H[:, None] * f0)[None] * c[:, None, None]
    conv = np.zeros(m, dtype=bool)
    fail = np.zeros(m, dtype=bool)
    prev = np.full(m, np.inf)
    ymax = np.maximum(1.0, np.max(np.abs(y), axis=1))
    fixed_point = Minv is None
    complex_ = not fixed_point and (np.iscomplexobj(Vinv) or any(np.iscomplexobj(M) for M in Minv))
    max_iter = MAX_FIXED_POINT if fixed_point else MAX_NEWTON
    can_refresh = refresh is not None and not fixed_point
    if can_refresh:
        Minv = [M.copy() for M in Minv]
        n_ref = np.zeros(m, dtype=np.int64)
        max_iter += MAX_REFRESH * MAX_NEWTON
    for it in range(max_iter):
        act = np.flatnonzero(~conv & ~fail)
        if act.size == 0:
            break
        Za = Z[:, act]
        F = fun((y[act][None] + Za).reshape(s * act.size, n)).reshape(s, act.size, n)
        n_rhs_add[act] += s
        R = -(Za - H[act][None, :, None] * np.einsum("ij,jmn->imn", A, F))
        if fixed_point:
            dZ = R  # Z <- h A f(y + Z)
        else:
            Rt = np.einsum("ij,jmn->imn", Vinv if complex_ else Vinv.real, R)
            dW = np.stack([np.einsum("mab,mb->ma", Minv[k][act], Rt[k]) for k in range(s)])
            dZ = np.einsum("ij,jmn->imn", V, dW)
            dZ = dZ.real if np.iscomplexobj(dZ) else dZ
        Z[:, act] = Za + dZ
        nrm = np.max(np.abs(dZ), axis=(0, 2)) / ymax[act]
        ok_now = nrm <= newton_tol
        stagnant = (it >= 1) & (nrm <= STAGNATION_FLOOR * newton_tol) & (nrm >= STAGNATION_RATIO * prev[act])
        bad = ~np.isfinite(nrm) | ((it >= 2) & (nrm > prev[act]) & ~stagnant)
        conv[act] = ok_now | stagnant
        if can_refresh:
            # slow or diverging simplified Newton: refresh the Hessian at the current stage mean
            slow = ~conv[act] & np.isfinite(nrm) & (it >= 1) & (nrm > SLOW_RATE * prev[act]) & (n_ref[act] < MAX_REFRESH)
            if slow.any():
                rows = act[slow]
                new = refresh(rows, y[rows] + Z[:, rows].mean(axis=0), H[rows])
                for k in range(s):
                    Minv[k][rows] = new[k]
                n_ref[rows] += 1
                bad &= ~slow
                nrm = np.where(slow, np.inf, nrm)  # restart the rate test after a refresh
            fail[act] = (bad | ((it >= MAX_NEWTON * (1 + n_ref[act])) & ~conv[act])) & ~conv[act]
        else:
            fail[act] = bad & ~conv[act]
        prev[act] = nrm
    ok = conv & ~fail
    y1 = y + np.einsum("i,imn->mn", d, Z)
    return y1, ok


def _gl_chunk(rec, idx, y, t0, t1, *, stages, newton_tol, solver, rtol, atol, grad_tol, max_steps, max_norm, dt0,
              adaptive):
    model = rec.model
    ts = rec.ts
    S = ts.shape[0]
    tab = _gauss_tableau(stages)
    lam, conj_of = tab[4], tab[7]
    p = 2 * stages

    def fun(z):
        if z.shape[0] == 0:  # models need not accept an empty batch
            return np.empty_like(z)
        return -model.grad(z)

    begun = _begin(rec, fun, idx, y, t0, t1, order=p, rtol=rtol, atol=atol, dt0=dt0, adaptive=adaptive,
                   grad_tol=grad_tol, max_norm=max_norm)
    if begun is None:
        return
    idx, y, f, t, h, jsave = begun
    attempts = np.zeros(idx.size, dtype=np.int64)
    rejected = np.zeros(idx.size, dtype=bool)

    while idx.size:
        m = idx.size
        nxt = np.where(jsave < S, ts[np.minimum(jsave, S - 1)], t1)
        target = np.minimum(nxt, t1)
        gap = target - t
        landing = h >= gap if adaptive else h >= gap * (1 - 1e-8)
        H = np.where(landing, gap, h)
        add = np.zeros(m, dtype=np.int64)
        if solver == "newton":
            hess = np.asarray(model.hessian(y))

            def inverses(step, hs=hess):
                return _newton_inverses(hs, step, lam, conj_of)

            def refresh(rows, y_at, H_rows):
                return _newton_inverses(np.asarray(model.hessian(y_at)), H_rows, lam, conj_of)
        else:

            def inverses(step, hs=None):
                return None

            refresh = None
        if adaptive:
            Minv_full = inverses(H)
            Minv_half = inverses(0.5 * H)
            y_big, ok1 = _gl_step(fun, y, f, H, Minv_full, tab, newton_tol, add, refresh)
            y_mid, ok2 = _gl_step(fun, y, f, 0.5 * H, Minv_half, tab, newton_tol, add, refresh)
            f_mid = fun(y_mid)
            add += 1
            if solver == "newton":  # the second half step starts at y_mid: its own exact Hessian
                fin = np.all(np.isfinite(y_mid), axis=1)
                Minv_half = inverses(0.5 * H, np.asarray(model.hessian(np.where(fin[:, None], y_mid, y))))
            y_new, ok3 = _gl_step(fun, y_mid, f_mid, 0.5 * H, Minv_half, tab, newton_tol, add, refresh)
            ok = ok1 & ok2 & ok3 & np.all(np.isfinite(y_new), axis=1) & np.all(np.isfinite(y_big), axis=1)
            err = (y_new - y_big) / (2.0**p - 1.0)
            scale = atol + rtol * np.maximum(np.abs(y), np.abs(y_new))
            en = _rms(err / scale)
            accept = ok & (en <= 1.0)
        else:
            Minv = inverses(H)
            y_new, ok = _gl_step(fun, y, f, H, Minv, tab, newton_tol, add, refresh)
            ok &= np.all(np.isfinite(y_new), axis=1)
            y_mid = None
            en = np.zeros(m)
            accept = ok
        # the gradient at the new state is needed for the convergence test and the next step;
        # a non-finite one rejects the step like a non-finite stage does
        cand = np.flatnonzero(accept)
        f_cand = fun(y_new[cand])
        add[cand] += 1
        fin = np.all(np.isfinite(f_cand), axis=1)
        accept[cand[~fin]] = False
        ok[cand[~fin]] = False
        rec.n_rhs[idx] += add
        attempts += 1
        status = np.full(m, _RUNNING, dtype=np.int8)

        acc = np.flatnonzero(accept)
        if acc.size:
            g = idx[acc]
            f_new = f_cand[fin]
            rec.n_steps[g] += 2 if adaptive else 1
            if y_mid is not None:
                rec.update_drift(g, y_mid[acc])
            rec.update_drift(g, y_new[acc])
            t_new = np.where(landing[acc], target[acc], t[acc] + H[acc])
            big = np.linalg.norm(y_new[acc], axis=1) > max_norm
            gn = np.linalg.norm(f_new, axis=1)
            good = ~big
            y[acc[good]] = y_new[acc[good]]
            f[acc[good]] = f_new[good]
            t[acc[good]] = t_new[good]
            # save points reached exactly (steps land on them)
            sel = np.flatnonzero(good)
            while sel.size:
                a = acc[sel]
                has = (jsave[a] < S) & (ts[np.minimum(jsave[a], S - 1)] <= t[a])
                sel = sel[has]
                if sel.size == 0:
                    break
                a = acc[sel]
                rec.record(idx[a], jsave[a], y[a], gnorm=gn[sel])
                jsave[a] += 1
            st = np.full(acc.size, _RUNNING, dtype=np.int8)
            st[gn <= grad_tol] = Status.CONVERGED
            st[(st == _RUNNING) & (t[acc] >= t1)] = Status.REACHED_T1
            st[big] = Status.DIVERGED
            status[acc] = st
        if adaptive:
            fac = step_factor(en, accept, rejected, -1.0 / (p + 1))
            # a step shortened to land on a save time does not shrink the controller's step
            h_acc = np.where(landing, np.maximum(h, H * fac), H * fac)
            h_rej = np.where(ok, H * fac, 0.5 * H)
            h = np.where(accept, h_acc, h_rej)
            rejected = ~accept
            status[~accept & underflow(h, t) & (status == _RUNNING)] = Status.FAILED
        else:
            status[~accept & (status == _RUNNING)] = Status.FAILED
        keep = _retire(rec, status, attempts, max_steps, idx, y, t, jsave)
        if not keep.all():
            idx, y, f, t, h, jsave = idx[keep], y[keep], f[keep], t[keep], h[keep], jsave[keep]
            rejected, attempts = rejected[keep], attempts[keep]
