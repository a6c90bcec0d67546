r"""A cheap stiffness estimate at :math:`t_0` and the automatic choice between DOPRI5 and the Rosenbrock method.

An explicit method is stability-limited on :math:`\dot y = -\nabla L(y)` to steps
:math:`h \lesssim \rho / \lambda_{max}`, with :math:`\lambda_{max}` the largest Hessian
eigenvalue magnitude and :math:`\rho \approx 3.3` the extent of DOPRI5's stability region on
the negative real axis (Hairer & Wanner, *Solving ODEs II*, Sec. IV.2). Over a horizon
:math:`T` it needs at least :math:`n_{exp} = \lambda_{max} T / \rho` steps, whatever the
tolerance. The horizon is :math:`T = \min(t_1 - t_0, T_{conv})`, where
:math:`T_{conv} = c\,\ln(\|\nabla L(y_0)\| / \mathrm{grad\_tol}) / \lambda_{low}`
(:math:`c` = ``CONV_SAFETY`` = 10: the curvature at :math:`t_0` is not the one near the end) bounds the time
the slowest resolved mode (:math:`\lambda_{low}`: the smallest eigenvalue magnitude above
:math:`10^{-6}\lambda_{max}`, known only for dense Hessians) needs to reach ``grad_tol``.
``method="auto"`` picks ``"rosenbrock"`` when the ensemble's median :math:`n_{exp}` exceeds
``AUTO_STEPS`` (a stiff flow, where an L-stable step independent of :math:`\lambda_{max}` wins),
else ``"dopri5"``. Calibration (measured, 32 trajectories, 2 shared cores): the default canonical
problem (scale 1, t1 = 100) gives :math:`n_{exp} \approx 600`, and DOPRI5 (numba) is 6x faster
than RODAS4 there; Gaussian data (5, 4, 3) in raw units gives :math:`n_{exp} \approx 1.1 \cdot 10^4`
and RODAS4 is 4.6x faster than DOPRI5; the raw regression set of issue 12 gives
:math:`n_{exp} \approx 6 \cdot 10^6` (DOPRI5 exhausts 100,000 steps before t = 0.04).

:math:`\lambda_{max}` comes from ``numpy.linalg.eigvalsh`` of ``model.hessian`` for
``n_params <= DENSE_MAX_PARAMS``, else from ``POWER_ITERATIONS`` power iterations on
``model.hvp`` (a lower bound, accurate to a few percent for the dominant eigenvalue).
"""

from __future__ import annotations

import numpy as np

from flowgeom.flow._rosenbrock import DENSE_MAX_PARAMS

DOPRI5_STABILITY = 3.3  # extent of DOPRI5's stability region on the negative real axis
AUTO_STEPS = 10_000.0  # above this many stability-limited explicit steps, the flow counts as stiff
CONV_SAFETY = 10.0  # T_conv from t0 curvature underestimates the time to converge (curvature changes)
POWER_ITERATIONS = 20
LOW_CUTOFF = 1e-6  # eigenvalues below LOW_CUTOFF * lambda_max count as zero modes


def stiffness(model, y0, t0, t1, grad_tol, *, seed=0) -> dict:
    r"""Stiffness facts of an ensemble at :math:`t_0`: medians over trajectories.

    Returns
    -------
    dict
        ``lambda_max`` (largest Hessian eigenvalue magnitude), ``lambda_low`` (NaN when unknown),
        ``horizon`` (T above), ``explicit_steps`` (:math:`n_{exp}`), ``stiff`` (bool).
    """
    N, n = y0.shape
    with np.errstate(all="ignore"):
        if n <= DENSE_MAX_PARAMS:
            ev = np.abs(np.linalg.eigvalsh(np.asarray(model.hessian(y0))))
            lam_max = ev.max(axis=1)
            low = np.where(ev > LOW_CUTOFF * lam_max[:, None], ev, np.inf).min(axis=1)
        else:
            v = np.random.default_rng(seed).standard_normal(y0.shape)
            lam_max = np.zeros(N)
            for _ in range(POWER_ITERATIONS):
                v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-300)
                w = model.hvp(y0, v)
                lam_max = np.linalg.norm(w, axis=1)
                v = w
            low = np.full(N, np.nan)
        gn = np.linalg.norm(model.grad(y0), axis=1)
        T = np.full(N, float(t1 - t0))
        if grad_tol > 0:
            t_conv = CONV_SAFETY * np.log(np.maximum(gn / grad_tol, 1.0)) / low
            T = np.where(np.isfinite(t_conv), np.minimum(T, t_conv), T)
        n_exp = lam_max * T / DOPRI5_STABILITY
    med = float(np.nanmedian(n_exp)) if np.any(np.isfinite(n_exp)) else 0.0
    return {
        "lambda_max": float(np.nanmedian(lam_max)),
        "lambda_low": float(np.nanmedian(low)) if np.any(np.isfinite(low)) else float("nan"),
        "horizon": float(np.nanmedian(T)),
        "explicit_steps": med,
        "stiff": bool(med > AUTO_STEPS),
    }
