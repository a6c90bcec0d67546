r"""Limits of the exact flow: round-off escapes from saddles, limits decided early, finite horizons.

Not public API: :func:`flowgeom.basins.sample_basins` calls these per chunk.

**Exact-limit certification.** A trajectory of the exact flow
:math:`\dot\theta = -\nabla L(\theta)` that lies on the stable manifold of a strict saddle
:math:`\theta^*` (Hessian eigenvalue :math:`-\lambda < 0`) converges to it. In floating point
the component along the unstable direction is re-seeded at the level
:math:`\delta_0 \approx` integration error + invariant drift + :math:`\varepsilon_{\rm mach}\|\theta\|`
and grows like :math:`\delta_0 e^{\lambda t}`: the computed trajectory leaves after
:math:`\tau \approx \ln(r/\delta_0)/\lambda` (r the size of the saddle's neighbourhood) and reaches a
lower critical set, a limit the exact flow never reaches. The escape time of a trajectory whose
unstable component is :math:`c` is :math:`\tau(c) \approx \ln(r/c)/\lambda`, so perturbing the
initial state by :math:`\delta` (random direction) gives

.. math:: \tau(\delta_1) - \tau(\delta_2) \approx \begin{cases}
   \ln(\delta_2/\delta_1)/\lambda & c \ll \delta_1 \ (\text{the escape is the perturbation's: round-off}) \\
   0 & c \gg \delta_2 \ (\text{a genuine escape}). \end{cases}

For every sample whose path comes close to a strict saddle above its numerical limit (its loss is
above the limit's by ``APPROACH_LOSS_GAP`` and the gradient norm at a save point falls below
``APPROACH_GRAD`` :math:`(1 + L)`), the state of minimal :math:`\|\nabla L\|` is located
(``atlas.locate(plateau=True)``), :math:`\lambda` is the negative of the smallest Hessian eigenvalue there,
and the sample is re-run twice from :math:`\theta_0 + \delta_i \|\theta_0\| \xi` (:math:`\xi` a seeded
random unit vector, :math:`\delta_1 = 10^{-10}`, :math:`\delta_2 = 10^{-6}`) with DOPRI5 (or, when the
chunk's flow was stiff, the L-stable Rosenbrock method that ran it: DOPRI5 at this tolerance would need
millions of steps there) at ``RERUN_RTOL`` = 1e-12 (its leak into the unstable direction is then far below :math:`\delta_1`; the
invariant-preserving Gauss--Legendre scheme gave the same decisions on balanced 2x2x2 inits at about
12 times the cost, and neither float64 scheme stays on the stable manifold by itself). The ratio
:math:`\rho = \lambda(\tau(\delta_1) - \tau(\delta_2))/\ln(\delta_2/\delta_1)` decides: :math:`\rho \ge`
``ROUNDOFF_RATIO`` means the unstable component of the exact trajectory is below
:math:`\sim\delta_1\|\theta_0\|` (indistinguishable from zero: a genuine component that small has
probability :math:`O(\delta_1)`), so its exact limit is the saddle; :math:`\rho \le` ``GENUINE_RATIO``
keeps the numerical limit; in between the sample is undecided. Non-strict saddles (no negative
eigenvalue) are never re-labelled: a round-off seed escapes from them only polynomially slowly
(:math:`\sim \varepsilon_{\rm mach}^{-(H-1)}`), so an escape seen in a finite run is genuine.
Cost: one tight re-run to the approach and two to :math:`t_{\rm approach} + 40/\lambda` per candidate plus one dense Hessian
(measured: 100 balanced 2x2x2 samples in 3.9 s, against 0.15 s for 200 Gaussian ones that pass no saddle closely);
samples that pass no saddle closely cost only the loss and gradient norm at the save points.
Models with more than ``CERTIFY_DENSE_MAX`` parameters are not certified: their candidates are
reported undecided.

**Limits decided early** (issue 13). Along the flow :math:`L` decreases, so a state with
:math:`L(\theta) - L_{\rm off} < L_b`, the smallest critical value above the global minimum value
:math:`L_\star`, has a limit (a critical point, by the Lojasiewicz inequality for the analytic loss) of value
:math:`< L_b`: a global minimum. This certificate is exact whenever the atlas lists every critical value
(the closed-form atlas of a deep linear problem) and immune to round-off (no saddle lies in the
sublevel set); such samples stop without the gradient-descent end game.

**Finite horizons.** At each horizon :math:`T` the state :math:`\theta(T)` is located with
``plateau=True``: "near critical set k" or in transit (-3).
"""

from __future__ import annotations

import numpy as np

from flowgeom.critical.atlas import UNCLASSIFIED
from flowgeom.flow import SaveAt, Status, integrate

# A save point counts as an approach to a saddle when its loss exceeds the final loss by this
# (relative to 1 + |L|) and its gradient norm is below APPROACH_GRAD (1 + L).
APPROACH_LOSS_GAP = 1e-3
APPROACH_GRAD = 1e-2
# Save points per flow segment (loss and gradient norm only): resolves dwell times of O(1/lambda).
SAVES_PER_SEGMENT = 65
# Re-runs: relative perturbation levels, tolerance of the invariant-preserving scheme.
DELTAS = (1e-10, 1e-6)
RERUN_METHOD = "dopri5"
RERUN_RTOL = 1e-12
RERUN_ATOL = 1e-15
# Step budget of a re-run; a row that exhausts it (or fails otherwise) is undecided, never relabelled.
RERUN_MAX_STEPS = 10**6
RERUN_SAVES = 400
ROUNDOFF_RATIO = 0.6
GENUINE_RATIO = 0.25
# Hessian eigenvalues below -STRICT_TOL (1 + |lambda|_max) make a strict saddle.
STRICT_TOL = 1e-6
CERTIFY_DENSE_MAX = 1024


def sublevel_barrier(atlas) -> tuple[float, float] | None:
    r"""``(L_star, L_b)``: the global minimum value and the next critical value, or None.

    Known only for an atlas that lists every critical value in closed form (deep linear
    problems): with singular values :math:`s_1 \ge \dots \ge s_{d_y}` and rank bound r,
    :math:`L_\star = \tfrac12\sum_{i>r}s_i^2` and :math:`L_b = L_\star + \tfrac12(s_r^2 - s_{r+1}^2)`
    (swap the weakest learned mode for the strongest unlearned one) or :math:`L_\star + \tfrac12 s_r^2`
    when :math:`r = d_y` (drop it). None when the two coincide (repeated singular values).
    """
    problem = getattr(atlas, "problem", None)
    if problem is None or not hasattr(atlas, "n_strata_total"):
        return None
    s = np.sort(np.asarray(problem.singular_values, dtype=np.float64))[::-1]
    r = min(int(min(problem.widths)), s.size)
    if r == 0:
        return None
    star = 0.5 * float(np.sum(s[r:] ** 2))
    gap = 0.5 * (s[r - 1] ** 2 - (s[r] ** 2 if r < s.size else 0.0))
    if not gap > 1e-12 * (1.0 + s[0] ** 2):
        return None
    return star, star + float(gap)


def decided_early(atlas, y, loss) -> np.ndarray:
    r"""Keys of samples whose limit is certified a global minimum (sublevel certificate), else -3.

    The key is that of the atlas's one critical set of value :math:`L_\star` (unique when the
    barrier exists: the top-r stratum), so a sample is decided as soon as its loss is below the
    barrier, however far it still is from the minimum; with several such sets (an atlas listing
    them otherwise) the state is located instead.
    """
    out = np.full(y.shape[0], UNCLASSIFIED, dtype=np.int64)
    bar = sublevel_barrier(atlas)
    if bar is None or y.shape[0] == 0:
        return out
    star, barrier = bar
    margin = 1e-6 * (1.0 + abs(barrier))
    below = np.isfinite(loss) & (loss - atlas.loss_offset < barrier - margin)
    idx = np.flatnonzero(below)
    if idx.size:
        minima = [cs.key for cs in atlas.sets() if abs(cs.critical_value - star) <= margin]
        if len(minima) == 1:
            out[idx] = int(minima[0])
            return out
        keys = np.asarray(atlas.locate(y[idx], loss[idx]), dtype=np.int64)
        ok = np.array([k >= 0 and abs(atlas.get(int(k)).critical_value - star) <= margin for k in keys], dtype=bool)
        out[idx[ok]] = keys[ok]
    return out


def approach_candidates(t_saves, loss_saves, grad_saves, final_loss, offset=0.0):
    """Per sample: the save time of the closest approach to a set above the limit, or NaN.

    Loss gaps and gradient thresholds are relative to the loss above the data's constant ``offset``
    (``atlas.loss_offset``: the part no parameter can remove), so a large offset does not make every
    save point look like an approach.
    """
    fl = final_loss[:, None] - offset
    thr = fl + APPROACH_LOSS_GAP * (1.0 + np.abs(fl))
    rel = loss_saves - offset
    g = np.where((rel > thr) & np.isfinite(grad_saves), grad_saves, np.inf)
    j = np.argmin(g, axis=1)
    gmin = g[np.arange(g.shape[0]), j]
    lp = rel[np.arange(g.shape[0]), j]
    cand = gmin <= APPROACH_GRAD * (1.0 + np.abs(lp))
    return np.where(cand, t_saves[np.arange(g.shape[0]), j], np.nan)


def _rerun_ok(tr) -> np.ndarray:
    """Rows of a re-run that reached its final time (the others decide nothing)."""
    return np.asarray(tr.status) == int(Status.REACHED_T1)


def _escape_time(model, theta, t_end, level, method):
    """First time the loss falls below ``level`` (per row), inf if never before t_end; and which rows ran to t_end."""
    ts = np.linspace(0.0, t_end, RERUN_SAVES + 1)
    tr = integrate(model, theta, t_end, method=method, rtol=RERUN_RTOL, atol=RERUN_ATOL,
                   saveat=SaveAt(ts=ts, states=False), grad_tol=0.0, max_steps=RERUN_MAX_STEPS)
    below = tr.loss <= level[:, None]
    first = np.argmax(below, axis=1)
    # a row that escaped before failing still has its escape time; one that failed before escaping has none
    ok = _rerun_ok(tr) | below.any(axis=1)
    return np.where(below.any(axis=1), ts[first], np.inf), ok


def certify(model, atlas, theta0, t_approach, final_loss, limit_key, *, seed, index0, method=RERUN_METHOD):
    """Exact-flow limits of candidate samples (module docstring).

    ``method`` is the integrator of the re-runs: ``RERUN_METHOD`` (DOPRI5), or "rosenbrock" when the
    samples' flow is stiff. Rows whose re-runs fail (step budget, non-finite) stay undecided.

    Returns ``(limit_exact, decided, rho)`` for all rows; rows without a candidate approach
    (``t_approach`` NaN) keep ``limit_key`` and are decided.
    """
    N = theta0.shape[0]
    exact = np.asarray(limit_key, dtype=np.int64).copy()
    decided = np.ones(N, dtype=bool)
    rho = np.full(N, np.nan)
    cand = np.flatnonzero(np.isfinite(t_approach) & (np.asarray(limit_key) >= 0))
    if cand.size == 0:
        return exact, decided, rho
    if model.n_params > CERTIFY_DENSE_MAX:  # no dense Hessian: candidates stay undecided
        decided[cand] = False
        return exact, decided, rho
    # the approach states, re-integrated (one batched run saving at every candidate's approach time)
    tps = np.unique(t_approach[cand])
    pos = np.searchsorted(tps, t_approach[cand])
    if tps[-1] > 0:
        tr = integrate(model, theta0[cand], float(tps[-1]), method=method, rtol=RERUN_RTOL, atol=RERUN_ATOL,
                       saveat=SaveAt(ts=np.concatenate([[0.0], tps]), states=True), grad_tol=0.0,
                       max_steps=RERUN_MAX_STEPS)
        yp = tr.ys[np.arange(cand.size), pos + 1]
        reached = _rerun_ok(tr)
    else:
        yp = theta0[cand].copy()
        reached = np.ones(cand.size, dtype=bool)
    ok = np.all(np.isfinite(yp), axis=1) & reached
    decided[cand[~ok]] = False
    yp = np.where(ok[:, None], yp, theta0[cand])
    lp = model.loss(yp)
    keys = np.asarray(atlas.locate(yp, lp, plateau=True), dtype=np.int64)
    with np.errstate(all="ignore"):
        ev = np.linalg.eigvalsh(model.hessian(yp))
    lam = -ev[:, 0]
    strict = lam > STRICT_TOL * (1.0 + np.abs(ev).max(axis=1))
    run = np.flatnonzero((keys >= 0) & strict & ok)
    if run.size == 0:
        return exact, decided, rho
    rows = cand[run]
    level = 0.5 * (lp[run] + final_loss[rows])
    t_end = t_approach[rows] + 40.0 / lam[run]
    taus, ran = [], np.ones(rows.size, dtype=bool)
    for d in DELTAS:
        th = theta0[rows].copy()
        for i, c in enumerate(rows):
            xi = np.random.default_rng([int(seed), int(index0 + c), 17]).standard_normal(th.shape[1])
            th[i] += d * np.linalg.norm(th[i]) * xi / np.linalg.norm(xi)
        tau, ok_d = _escape_time(model, th, float(t_end.max()), level, method)
        ran &= ok_d
        taus.append(np.where(tau <= t_end, tau, np.inf))
    with np.errstate(all="ignore"):
        r = lam[run] * (taus[0] - taus[1]) / np.log(DELTAS[1] / DELTAS[0])
    r = np.where(np.isinf(taus[0]) & np.isfinite(taus[1]), np.inf, r)
    rho[rows] = r
    roundoff = r >= ROUNDOFF_RATIO
    genuine = r <= GENUINE_RATIO
    roundoff &= ran
    exact[rows[roundoff]] = keys[run][roundoff]
    decided[rows] = (roundoff | genuine) & ran
    return exact, decided, rho


def locate_horizons(model, atlas, theta0, horizons, *, y_final, t_final, done, rtol, atol, max_steps, max_norm,
                    backend, method):
    """Keys (N, n_horizons) of the states at the horizons (``plateau=True``; -3 in transit).

    A sample whose limit is decided (``done``) by ``t_final`` sits at its limit for every later horizon:
    its final state is located there, and the flow is re-integrated only up to the horizons still needed.
    """
    hs = np.asarray(horizons, dtype=np.float64)
    N, n = theta0.shape
    need = np.where(done, np.minimum(t_final, hs.max()), hs.max())
    t_run = float(hs[np.searchsorted(hs, need.max(), side="left").clip(max=hs.size - 1)])
    ts_run = hs[hs <= t_run]
    ys = np.repeat(y_final[:, None, :], hs.size, axis=1)
    if ts_run.size:
        tr = integrate(model, theta0, float(ts_run[-1]), method=method, rtol=rtol, atol=atol,
                       saveat=SaveAt(ts=np.concatenate([[0.0], ts_run]), states=True), grad_tol=0.0,
                       max_steps=max_steps, max_norm=max_norm, backend=backend)
        late = done[:, None] & (t_final[:, None] <= ts_run[None, :])
        ys[:, : ts_run.size] = np.where(late[:, :, None], ys[:, : ts_run.size], tr.ys[:, 1:, :])
    # horizons after the run's end: the final state (decided samples) or in transit (NaN)
    beyond = ~done[:, None] & (hs[None, :] > ts_run[-1] if ts_run.size else True)
    ys = np.where(beyond[:, :, None], np.nan, ys)
    flat = ys.reshape(N * hs.size, n)
    ok = np.all(np.isfinite(flat), axis=1)
    keys = np.full(N * hs.size, UNCLASSIFIED, dtype=np.int64)
    if ok.any():
        keys[ok] = atlas.locate(flat[ok], model.loss(flat[ok]), plateau=True)
    return keys.reshape(N, hs.size)
