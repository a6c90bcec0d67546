r"""A stiff integrator for the gradient flow: L-stable Rosenbrock methods (RODAS4, RODAS3) with the exact Hessian.

For :math:`\dot y = f(y) = -\nabla L(y)` with Jacobian :math:`J = -\nabla^2 L(y_0)` (exact, from
the model), an s-stage Rosenbrock step of size h solves, in the transformed variables of
Hairer & Wanner [2] (Sec. IV.7, eq. (7.4)) as written in KPP [1],

.. math::
    \Big(\frac{I}{h\gamma} + \nabla^2 L(y_0)\Big)\, k_i = f\Big(y_0 + \sum_{j<i} a_{ij} k_j\Big)
        + \sum_{j<i} \frac{c_{ij}}{h} k_j, \qquad
    y_1 = y_0 + \sum_i m_i k_i, \qquad \mathrm{err} = \sum_i e_i k_i .

The default coefficients are RODAS4 (Hairer & Wanner [2], Sec. VI.4; the KPP form of [1]):
6 stages, order 4, L-stable, stiffly accurate (:math:`y_1` is the last stage value),
:math:`\gamma = 1/4`, with an embedded order-3 solution whose difference is :math:`k_6` (error
estimate :math:`O(h^4)`). RODAS3 (Sandu et al. [1]: 4 stages, order 3(2), :math:`\gamma = 1/2`)
is kept as ``tableau="rodas3"``; on the raw-units data problem of issue 12 at rtol 1e-6 RODAS4
takes half its steps and time. Per step: one Hessian, one factorisation, s solves, s - 1 new
gradients, and the gradient at :math:`y_1`, which the next step, the convergence test and the
dense output share.

Compiled path. For a :class:`~flowgeom.models.deep_linear.DeepLinearNetwork` with the dense solver,
:func:`flowgeom.flow.integrate` runs the same algorithm with these coefficients in a numba kernel
(:mod:`flowgeom.flow._numba_rosenbrock`: compiled Hessian, one LU per step; measured 17x this
module on the linnerud workload, 64 trajectories, 2 threads). This module is the path for other
models, ``backend="numpy"`` and the Krylov solver.

Linear algebra. For ``n_params <= DENSE_MAX_PARAMS`` the matrix is formed from
``model.hessian`` and inverted once per step and trajectory (batched LAPACK). Above that, a model
that solves :math:`(I + \eta\nabla^2 L)x = v` exactly (``shifted_hessian_solver``: a
:class:`~flowgeom.models.deep_linear.DeepLinearNetwork`, by a Schur complement on the layers after
the first, :mod:`flowgeom.models._dln_shifted`) is used directly (solver "structured"); otherwise each
solve is GMRES [3] on :math:`v \mapsto v + h\gamma\,\nabla^2 L\,v` with ``model.hvp`` (matrix
free), to a relative residual ``KRYLOV_RTOL``; a solve that does not converge rejects the step
(a smaller h makes the system better conditioned). A model that offers
``gauss_newton_solver`` (:class:`~flowgeom.models.deep_linear.DeepLinearNetwork`: the exact
inverse of :math:`I + h\gamma J^T J` by a Woodbury/Kronecker solve in residual space) left-
preconditions GMRES with it. Measured on the raw 10-class image problem (widths (61, 16, 10),
n = 1136, eig(X X^T) spanning 6.5e6, Hessian norm 1e8): 6.6 GMRES iterations per solve on average
(at most 10), none failing; without it GMRES stalled at its 60-iteration cap and the steps were
rejected.

What still limits the step there (measured, not a solver defect): the stiff directions are coupled
bilinearly (:math:`W_2 z_k = t_k` for the high-variance input directions k is a *curved* slow
manifold), and a linearly implicit step follows its tangent; the error estimate then grows like
:math:`h^5` and the accepted step saturates near 0.05 whatever rtol is (1e-4 and 1e-6 give the
same steps), about 150 steps per unit time in the slow phase. scipy's BDF (Newton iterations on
the nonlinear stage equation) takes about 5x larger steps there.

Dense output: RODAS4's own continuous extension of order 3 ([2] Sec. IV.7 and the code RODAS:
:math:`y(t_0+\theta h) = (1-\theta) y_0 + \theta (y_1 + (1-\theta)(q_1 + \theta q_2))`, :math:`q = D k`,
stiffly stable because it is built from the stages only. (A cubic Hermite interpolant of
:math:`(y_0, f_0, y_1, f_1)` is wrong on stiff data: its :math:`h f` terms put the stiff gradient
components at full size inside the step; measured on the raw 10-class image problem, it reported
losses that rose along the flow. RODAS3 keeps Hermite, [4] Sec. II.6.)

References
----------
.. [1] A. Sandu, J. G. Verwer, J. G. Blom, E. J. Spee, G. R. Carmichael, F. A. Potra,
   "Benchmarking stiff ODE solvers for atmospheric chemistry problems II: Rosenbrock
   solvers", Atmospheric Environment 31 (1997) 3459-3472 (RODAS3).
.. [2] E. Hairer, G. Wanner, "Solving Ordinary Differential Equations II", 2nd ed.,
   Springer (1996), Sec. IV.7.
.. [3] Y. Saad, M. H. Schultz, "GMRES: a generalized minimal residual algorithm for solving
   nonsymmetric linear systems", SIAM J. Sci. Stat. Comput. 7 (1986) 856-869.
.. [4] E. Hairer, S. P. Norsett, G. Wanner, "Solving Ordinary Differential Equations I",
   2nd ed., Springer (1993).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from flowgeom.flow._base import _begin, _retire, Status, _Recorder
from flowgeom.flow._controller import error_norm, step_factor, underflow
from flowgeom.flow._status import RUNNING as _RUNNING

DENSE_MAX_PARAMS = 200  # above this, the stage systems are solved by GMRES on model.hvp
KRYLOV_RTOL = 1e-10  # relative residual of the GMRES solves
KRYLOV_PRECONDITIONED_RTOL = 1e-2  # times rtol: the left-preconditioned residual is a relative error of k
KRYLOV_MAXITER = 60  # GMRES iterations (no restart) before the step is rejected

# ---------------------------------------------------------------- tableaus (KPP form, ref. [1])
def _lower(packed, s):
    """Strictly lower-triangular (s, s-1) matrix from KPP's row-wise packed list."""
    out = np.zeros((s, s - 1))
    k = 0
    for i in range(1, s):
        for j in range(i):
            out[i, j] = packed[k]
            k += 1
    return out


@dataclass(frozen=True, eq=False)
class RosenbrockTableau:
    """Coefficients of a Rosenbrock method in the transformed form above."""

    name: str
    order: int
    gamma: float
    a: np.ndarray  # (s, s-1)
    c: np.ndarray  # (s, s-1)
    m: np.ndarray  # (s,)
    e: np.ndarray  # (s,)
    new_f: tuple  # stage i needs a new f evaluation (False: a_ij = a_{i-1,j}, reuse)
    error_exponent: float  # -1 / (embedded order + 1)
    dense: np.ndarray | None = None  # (2, s): stiff-safe continuous output from the stages, or None (Hermite)


#: RODAS3 (Sandu et al. [1]): 4 stages, order 3(2), L-stable, stiffly accurate.
RODAS3 = RosenbrockTableau(
    "rodas3", 3, 0.5,
    _lower([0.0, 2.0, 0.0, 2.0, 0.0, 1.0], 4),
    _lower([4.0, 1.0, -1.0, 1.0, -1.0, -8.0 / 3.0], 4),
    np.array([2.0, 0.0, 1.0, 1.0]), np.array([0.0, 0.0, 0.0, 1.0]),
    (True, False, True, True), -1.0 / 3.0,
)
_R4A = [1.544, 0.9466785280815826, 0.2557011698983284, 3.314825187068521, 2.896124015972201,
        0.9986419139977817, 1.221224509226641, 6.019134481288629, 12.53708332932087, -0.687886036105895]
_R4A += _R4A[6:10] + [1.0]
#: RODAS4 (Hairer & Wanner [2], Sec. VI.4, Table 4.2 in KPP form [1]): 6 stages, order 4(3),
#: L-stable, stiffly accurate.
RODAS4 = RosenbrockTableau(
    "rodas4", 4, 0.25,
    _lower(_R4A, 6),
    _lower([-5.6688, -2.430093356833875, -0.2063599157091915, -0.1073529058151375, -9.594562251023355,
            -20.47028614809616, 7.496443313967647, -10.24680431464352, -33.99990352819905, 11.7089089320616,
            8.083246795921522, -7.981132988064893, -31.52159432874371, 16.31930543123136, -6.058818238834054], 6),
    np.array(_R4A[6:10] + [1.0, 1.0]), np.array([0.0, 0.0, 0.0, 0.0, 0.0, 1.0]),
    (True,) * 6, -1.0 / 4.0,
    # dense output of Hairer & Wanner's RODAS (rodas.f, coefficients D21..D35), order 3, built from the stages
    np.array([[10.12623508344586, -7.487995877610167, -34.80091861555747, -7.992771707568823,
               1.025137723295662, 0.0],
              [-0.6762803392801253, 6.087714651680015, 16.43084320892478, 24.76722511418386,
               -6.594389125716872, 0.0]]),
)
TABLEAUS = {"rodas3": RODAS3, "rodas4": RODAS4}
DEFAULT_TABLEAU = "rodas4"  # measured: half the steps and time of RODAS3 at rtol 1e-6 on raw data


def _stage_dense(y0, y1, q1, q2, theta):
    r"""RODAS continuous output :math:`(1-\theta) y_0 + \theta\,(y_1 + (1-\theta)(q_1 + \theta q_2))`, :math:`q = D k`.

    Built from the stage vectors only (no :math:`h f` terms), so it inherits the damping of the
    stiff components; a cubic Hermite interpolant does not (its :math:`h f_0, h f_1` carry the
    stiff components at full size into the interior of the step).
    """
    return (1.0 - theta) * y0 + theta * (y1 + (1.0 - theta) * (q1 + theta * q2))


def _hermite(y0, f0, y1, f1, h, theta):
    """Cubic Hermite interpolant at fraction ``theta`` (m, 1) of steps ``h`` (m, 1)."""
    t2 = theta * theta
    t3 = t2 * theta
    return ((2 * t3 - 3 * t2 + 1) * y0 + (t3 - 2 * t2 + theta) * h * f0
            + (-2 * t3 + 3 * t2) * y1 + (t3 - t2) * h * f1)


def _dense_solver(model, y, hg, rtol=None):
    """Solver ``r -> (I/(h gamma) + Hess)^{-1} r`` for each row, from the dense Hessian; and ok mask."""
    m, n = y.shape
    Gm = np.asarray(model.hessian(y), dtype=np.float64) + (1.0 / hg)[:, None, None] * np.eye(n)
    ok = np.all(np.isfinite(Gm), axis=(1, 2))
    Gm[~ok] = np.eye(n)
    try:
        Ginv = np.linalg.inv(Gm)
    except np.linalg.LinAlgError:
        Ginv = np.empty_like(Gm)
        for i in range(m):  # one singular matrix must not stop the batch
            try:
                Ginv[i] = np.linalg.inv(Gm[i])
            except np.linalg.LinAlgError:
                Ginv[i] = np.eye(n)
                ok[i] = False

    def solve(r):
        return (Ginv @ r[:, :, None])[:, :, 0], np.ones(m, dtype=bool)  # matmul: ~2x einsum here

    return solve, ok


def gmres(op, b, *, rtol=KRYLOV_RTOL, maxiter=KRYLOV_MAXITER):
    r"""Batched GMRES (no restart, x0 = 0) for :math:`A_i x_i = b_i`, rows independent.

    ``op(V)`` applies every row's matrix to the rows of ``V`` (m, n). Returns ``x`` (m, n) and
    the mask of rows whose residual reached ``rtol * ||b||`` (Givens-rotation residuals, [3]).
    """
    m, n = b.shape
    k = max(1, min(maxiter, n))
    beta = np.linalg.norm(b, axis=1)
    safe = np.where(beta > 0, beta, 1.0)
    V = np.empty((k + 1, m, n))  # only V[:j + 2] is ever read
    V[0] = b / safe[:, None]
    H = np.zeros((m, k + 1, k))
    cs = np.zeros((m, k))
    sn = np.zeros((m, k))
    g = np.zeros((m, k + 1))
    g[:, 0] = beta
    done = beta == 0
    used = np.zeros(m, dtype=np.int64)
    j = 0
    for j in range(k):
        w = op(V[j])
        for i in range(j + 1):  # modified Gram-Schmidt
            H[:, i, j] = np.einsum("mn,mn->m", w, V[i])
            w = w - H[:, i, j][:, None] * V[i]
        hn = np.linalg.norm(w, axis=1)
        H[:, j + 1, j] = hn
        V[j + 1] = w / np.where(hn > 0, hn, 1.0)[:, None]
        for i in range(j):  # apply the previous rotations to the new column
            a, c = H[:, i, j].copy(), H[:, i + 1, j].copy()
            H[:, i, j] = cs[:, i] * a + sn[:, i] * c
            H[:, i + 1, j] = -sn[:, i] * a + cs[:, i] * c
        a, c = H[:, j, j], H[:, j + 1, j]
        r = np.hypot(a, c)
        rs = np.where(r > 0, r, 1.0)
        cs[:, j], sn[:, j] = np.where(r > 0, a / rs, 1.0), np.where(r > 0, c / rs, 0.0)
        H[:, j, j] = r
        H[:, j + 1, j] = 0.0
        g[:, j + 1] = -sn[:, j] * g[:, j]
        g[:, j] = cs[:, j] * g[:, j]
        used = np.where(done, used, j + 1)
        done |= np.abs(g[:, j + 1]) <= rtol * beta
        if done.all():
            break
    # back substitution on each row's leading used x used triangle
    kk = j + 1
    z = np.zeros((m, kk))
    for i in range(kk - 1, -1, -1):
        act = used > i
        s = g[:, i] - np.einsum("mj,mj->m", H[:, i, i + 1:kk], z[:, i + 1:kk])
        d = H[:, i, i]
        z[:, i] = np.where(act & (d != 0), s / np.where(d != 0, d, 1.0), 0.0)
    x = np.einsum("jm,jmn->mn", z.T, V[:kk])
    return x, done & np.all(np.isfinite(x), axis=1)


def _krylov_solver(model, y, hg, rtol=1e-6):
    r"""Solver ``r -> (I/(h gamma) + Hess)^{-1} r`` by GMRES on HVPs, left-preconditioned when the model can.

    A model with ``gauss_newton_solver(y, h gamma)`` (the exact inverse :math:`P` of
    :math:`I + h\gamma J^T J`, the Gauss--Newton part of the Hessian) is left-preconditioned by it:
    GMRES solves :math:`P (I + h\gamma \nabla^2 L) k = P\, h\gamma r`, an identity plus the residual
    curvature, and its residual :math:`\|P(b - A k)\|` approximates the *error* of k. (The true
    residual would not do: with :math:`\mathrm{cond}(A) \sim h\gamma\lambda_{max} \sim 10^8` a
    small residual allows a large error along stiff directions, which the step's error estimate,
    built from the same solves, does not see.) Being a relative error, that residual is solved to
    ``KRYLOV_PRECONDITIONED_RTOL * rtol`` (at most 1e-8): on the raw 10-class image problem this gives
    the same steps and final losses (to 1e-9) as 1e-10, with 30% fewer HVPs. Otherwise the scaling by
    :math:`h\gamma` alone, to the true relative residual ``KRYLOV_RTOL``.
    """
    hgc = hg[:, None]
    pre = None
    gn = getattr(model, "gauss_newton_solver", None)
    if gn is not None:
        pre, _ = gn(y, hg)

    if pre is None:
        def op(v):
            return v + hgc * model.hvp(y, v)

        def solve(r):
            return gmres(op, hgc * r)
    else:
        def op(v):
            return pre(v + hgc * model.hvp(y, v))

        tol = min(KRYLOV_RTOL * 100.0, KRYLOV_PRECONDITIONED_RTOL * rtol)

        def solve(r):
            return gmres(op, pre(hgc * r), rtol=tol)

    return solve, np.ones(y.shape[0], dtype=bool)


def _structured_solver(model, y, hg, rtol=None):
    r"""Solver ``r -> (I/(h gamma) + Hess)^{-1} r`` from the model's exact ``shifted_hessian_solver``.

    ``model.shifted_hessian_solver(y, eta)`` solves :math:`(I + \eta \nabla^2 L)\,x = v` directly
    (:class:`~flowgeom.models.deep_linear.DeepLinearNetwork`: a Schur complement on the layers after
    the first), so :math:`k = (I + h\gamma\nabla^2 L)^{-1} h\gamma\, r`.
    """
    shifted, ok = model.shifted_hessian_solver(y, hg)
    hgc = hg[:, None]

    def solve(r):
        return shifted(hgc * r), np.ones(y.shape[0], dtype=bool)

    return solve, ok


def _has_structured_solver(model, n_probe=1) -> bool:
    """Whether ``model.shifted_hessian_solver`` exists and covers this model (it returns a solver)."""
    fn = getattr(model, "shifted_hessian_solver", None)
    if fn is None:
        return False
    solve, _ = fn(np.zeros((n_probe, model.n_params)), np.ones(n_probe))
    return solve is not None


def rosenbrock(rec: _Recorder, y0, t0, t1, *, rtol, atol, grad_tol, max_steps, max_norm, dt0, adaptive,
               solver="auto", tableau=None):
    """Per-trajectory adaptive RODAS3 over a shrinking active set; see the module docstring."""
    model = rec.model
    ts = rec.ts
    S = ts.shape[0]
    N, n = y0.shape
    if solver == "auto":
        if n <= DENSE_MAX_PARAMS:
            solver = "dense"
        else:
            solver = "structured" if _has_structured_solver(model) else "krylov"
    make_solver = {"dense": _dense_solver, "krylov": _krylov_solver, "structured": _structured_solver}[solver]
    tab = TABLEAUS[DEFAULT_TABLEAU if tableau is None else tableau]

    def fun(z):
        if z.shape[0] == 0:
            return np.empty_like(z)
        return -model.grad(z)

    begun = _begin(rec, fun, np.arange(N), y0, t0, t1, order=tab.order, rtol=rtol, atol=atol, dt0=dt0,
                   adaptive=adaptive, grad_tol=grad_tol, max_norm=max_norm)
    if begun is None:
        return
    idx, y, f, t, h, jsave = begun
    rejected = np.zeros(idx.size, dtype=bool)
    attempts = np.zeros(idx.size, dtype=np.int64)
    s = tab.m.size

    while idx.size:
        m = idx.size
        if not adaptive:
            h = np.full(m, float(dt0))
            h = np.where(t1 - t <= dt0 * (1 + 1e-8), t1 - t, h)
        h = np.minimum(h, t1 - t)
        hc = h[:, None]
        solve, ok = make_solver(model, y, tab.gamma * h, rtol)
        K = np.empty((s, m, n))
        F = f
        for i in range(s):
            if tab.new_f[i] and i > 0:
                F = fun(y + np.einsum("j,jmn->mn", tab.a[i, :i], K[:i]))
                rec.n_rhs[idx] += 1
            rhs = F + np.einsum("j,jmn->mn", tab.c[i, :i], K[:i]) / hc if i else F
            K[i], conv = solve(rhs)
            ok &= conv
        y_new = y + np.einsum("i,imn->mn", tab.m, K)
        attempts += 1
        finite = ok & np.all(np.isfinite(y_new), axis=1)
        if adaptive:
            en = error_norm(np.einsum("i,imn->mn", tab.e, K), y, y_new, rtol, atol)
            accept = finite & (en <= 1.0)
        else:
            en = np.zeros(m)
            accept = finite
        cand = np.flatnonzero(accept)
        f_cand = fun(y_new[cand])
        rec.n_rhs[idx[cand]] += 1
        fin = np.all(np.isfinite(f_cand), axis=1)
        accept[cand[~fin]] = False
        en[cand[~fin]] = np.inf
        acc = cand[fin]
        f_new = f_cand[fin]
        t_new = np.where(h >= t1 - t, t1, t + h)

        # ---- save points inside (t, t_new] by the stages' dense output (Hermite for RODAS3)
        if acc.size:
            jj = np.minimum(jsave[acc], S - 1)
            has = (jsave[acc] < S) & (ts[jj] <= t_new[acc])
            sel, fsel = acc[has], f_new[has]
            if tab.dense is not None and sel.size:
                q = np.einsum("ri,imn->rmn", tab.dense, K[:, sel])
                q1, q2 = q[0], q[1]
            while sel.size:
                js = jsave[sel]
                theta = np.clip((ts[js] - t[sel]) / h[sel], 0.0, 1.0)[:, None]
                if tab.dense is not None:
                    ys = _stage_dense(y[sel], y_new[sel], q1, q2, theta)
                else:
                    ys = _hermite(y[sel], f[sel], y_new[sel], fsel, h[sel][:, None], theta)
                rec.record(idx[sel], js, ys)
                jsave[sel] += 1
                more = (jsave[sel] < S) & (ts[np.minimum(jsave[sel], S - 1)] <= t_new[sel])
                sel, fsel = sel[more], fsel[more]
                if tab.dense is not None:
                    q1, q2 = q1[more], q2[more]

        # ---- accepted steps: advance, check, classify
        status = np.full(m, _RUNNING, dtype=np.int8)
        if acc.size:
            rec.n_steps[idx[acc]] += 1
            big = np.linalg.norm(y_new[acc], axis=1) > max_norm
            good = acc[~big]
            y[good] = y_new[good]
            f[good] = f_new[~big]
            t[good] = t_new[good]
            rec.update_drift(idx[good], y[good])
            gn = np.linalg.norm(f_new, axis=1)
            st = np.full(acc.size, _RUNNING, dtype=np.int8)
            st[gn <= grad_tol] = Status.CONVERGED
            st[(st == _RUNNING) & (t_new[acc] >= t1)] = Status.REACHED_T1
            st[big] = Status.DIVERGED  # keeps its last good state
            status[acc] = st
        if adaptive:
            h = h * step_factor(en, accept, rejected, tab.error_exponent)
            rejected = ~accept
            status[~accept & underflow(h, t) & (status == _RUNNING)] = Status.FAILED
        else:
            status[~accept & (status == _RUNNING)] = Status.FAILED
        keep = _retire(rec, status, attempts, max_steps, idx, y, t, jsave)
        if not keep.all():
            idx, y, f, t, h, jsave = idx[keep], y[keep], f[keep], t[keep], h[keep], jsave[keep]
            rejected, attempts = rejected[keep], attempts[keep]
