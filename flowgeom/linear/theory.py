r"""The theory of the mode dynamics: predicted order of visits and jump times.

For whitened data and a small initialization the canonical flow learns the modes one at a time
in order of decreasing singular value; :func:`transition_theory` predicts, per step, the jump
time at which the loss crosses the midpoint of two consecutive critical values (Saxe et al.'s
logistic modes for H = 1 with a Gaussian init, exact balanced scalar chains for an aligned init,
the order of magnitude otherwise).

References
----------
A. M. Saxe, J. L. McClelland, S. Ganguli, "Exact solutions to the nonlinear dynamics of
learning in deep linear neural networks", ICLR 2014, arXiv:1312.6120.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import xarray as xr
from scipy import integrate as _quad
from scipy import special as _special

from flowgeom.problem import Problem
from flowgeom._types import str_array as _objarr
from flowgeom._validate import check_positive as _check_positive
from flowgeom.linear.strata import format_label as _learned_label

__all__ = [
    "transition_theory",
]


# Loss fraction reached by a rising mode at the "jump": the loss crosses the midpoint between
# the critical values of source and target, 1/2 (s - u)^2 = s^2/4, i.e. u = q s with
# q = 1 - 1/sqrt(2). Both the observed and the predicted jump times use this level, so their
# ratio does not depend on detection thresholds.
MIDPOINT_Q = 1.0 - 1.0 / math.sqrt(2.0)


def _scalar_chain_time(s: float, w0: float, H: int, q: float = MIDPOINT_Q) -> tuple[float, float]:
    r"""Time for the balanced scalar chain :math:`\dot w = w^H (s - w^{H+1})` to go from
    :math:`w_0` to :math:`u = w^{H+1} = q s`; also its leading small-:math:`w_0` term.

    H = 1: :math:`t = \frac{1}{2s}\log\frac{q (s - u_0)}{(1-q) u_0}`, :math:`u_0 = w_0^2`
    (Saxe et al. 2014, eq. (7) with :math:`\tau = 1`); leading :math:`\log(1/w_0)/s`.

    H >= 2: :math:`t = \frac{w_0^{1-H} - w_q^{1-H}}{(H-1)s} + \int_{w_0}^{w_q}
    \frac{w\,dw}{s(s - w^{H+1})}` (from :math:`\frac{1}{w^H(s-w^{H+1})} = \frac{1}{s w^H} +
    \frac{w}{s (s - w^{H+1})}`); leading :math:`w_0^{1-H}/((H-1)s)`.
    """
    u0 = w0 ** (H + 1)
    if u0 >= q * s:
        return 0.0, 0.0
    if H == 1:
        return math.log(q * (s - u0) / ((1 - q) * u0)) / (2 * s), math.log(1.0 / w0) / s
    wq = (q * s) ** (1.0 / (H + 1))
    rest, _ = _quad.quad(lambda w: w / (s * (s - w ** (H + 1))), w0, wq, epsabs=1e-13, epsrel=1e-12)
    t = (w0 ** (1 - H) - wq ** (1 - H)) / ((H - 1) * s) + rest
    return t, w0 ** (1 - H) / ((H - 1) * s)


def transition_theory(
    problem: Problem, init_scale: float, *, init: Literal["gaussian", "aligned"] = "gaussian"
) -> xr.Dataset:
    r"""Predicted order of visits and jump times for small initializations (whitened data).

    With whitened data the canonical flow of :math:`L = \tfrac12\|\Sigma - W_{H+1}\cdots
    W_1\|_F^2` learns the modes one at a time, in order of decreasing :math:`s_k`: the
    predicted path is :math:`\{\} \to \{0\} \to \{0,1\} \to \dots \to \{0..d_y-1\}`. Step k
    leaves :math:`\{0..k-1\}` for :math:`\{0..k\}`; its *jump time* :math:`t_k` is when the
    loss crosses the midpoint of the two critical values, i.e. when mode k's strength
    :math:`u_k = (\bar W_{H+1}\cdots\bar W_1)_{kk}` reaches :math:`q s_k`,
    :math:`q = 1 - 1/\sqrt2`. The plateau at :math:`\{0..k-1\}` lasts :math:`t_k - t_{k-1}`
    (:math:`t_{-1} = 0`).

    **H = 1, Gaussian init** (i.i.d. :math:`N(0, \varepsilon^2)` entries). Mode k's vectors
    :math:`a_k = W_1 e_k`, :math:`b_k = W_2^T e_k \in \mathbb{R}^{d_1}` obey, while small,
    :math:`\dot a_k = s_k b_k`, :math:`\dot b_k = s_k a_k`, so :math:`u_k = a_k\cdot b_k =
    |c_+|^2 e^{2 s_k t} - |c_-|^2 e^{-2 s_k t}`, :math:`c_\pm = (a_k(0) \pm b_k(0))/2`. Once
    large, the mode follows the balanced Saxe et al. (2014) logistic :math:`\dot u = 2u(s_k -
    u)` (their eq. (7) with :math:`\tau = 1` for this normalization), which matches the
    linear phase with :math:`u_0 = |c_+|^2`; hence

    .. math::

        t_k = \frac{1}{2 s_k}\Bigl[\log\Bigl(\frac{s_k}{u_0} - 1\Bigr) + \log\frac{q}{1-q}\Bigr].

    The components of :math:`c_+` along the hidden directions already used by the k modes
    learned before are damped at rate :math:`s_j - s_k > 0` (linearization at the saddle),
    so the effective :math:`u_0 = \tfrac{\varepsilon^2}{2}\chi^2_{d_1 - k}`, and with
    :math:`E\log\chi^2_\nu = \psi(\nu/2) + \log 2`,
    :math:`\mathrm{Var}\log\chi^2_\nu = \psi'(\nu/2)`:

    .. math::

        E\,t_k \approx \frac{\log s_k - \log\varepsilon^2 - \psi(\tfrac{d_1-k}{2}) + \log\frac{q}{1-q}}{2 s_k},
        \qquad \mathrm{sd}\,t_k \approx \frac{\sqrt{\psi'(\frac{d_1-k}{2})}}{2 s_k}.

    To leading order :math:`t_k \approx \log(1/\varepsilon)/s_k` and the plateaus last
    :math:`\log(1/\varepsilon)(1/s_k - 1/s_{k-1})`.

    **Aligned init, any H** (:math:`W_j = \varepsilon\,E_j`, ones at (i, i) for i < d_y):
    every mode is exactly a balanced scalar chain :math:`\dot w = w^H(s_k - w^{H+1})`,
    :math:`w(0) = \varepsilon`, and :math:`t_k` is its exact hitting time of :math:`u = q
    s_k` (:func:`_scalar_chain_time`); for H >= 2 this is the power law
    :math:`t_k \approx \varepsilon^{-(H-1)}/((H-1) s_k)`.

    **H >= 2, Gaussian init**: the small-weight dynamics is homogeneous of degree H, so
    rescaling :math:`W = \varepsilon V`, :math:`t = \varepsilon^{1-H}\tau` shows the escape
    time scales exactly as :math:`\varepsilon^{-(H-1)}` as :math:`\varepsilon \to 0`; its
    prefactor depends on the random :math:`V(0)` and has no closed form. The scalar-chain
    value with :math:`w(0) = \varepsilon` is recorded as the order of magnitude
    (``exact = False``); the ratio to the observation is then O(1), not 1.

    Parameters
    ----------
    problem : Problem
        Whitened (canonical flow).
    init_scale : float
        :math:`\varepsilon > 0`.
    init : {"gaussian", "aligned"}, default "gaussian"

    Returns
    -------
    xarray.Dataset
        Dimension ``step`` (k = 0..d_y-1): ``theory_source``, ``theory_target`` (learned-set
        labels), ``theory_t_jump``, ``theory_t_jump_std`` (NaN when not predicted),
        ``theory_t_jump_leading``, ``theory_plateau``, ``theory_plateau_leading``; attrs
        ``theory_exact`` (bool), ``theory_model`` (str).

    Raises
    ------
    ValueError
        Unwhitened data, or a bad ``init_scale`` / ``init``.
    """
    if not isinstance(problem, Problem):
        raise TypeError(f"`problem` must be a flowgeom.Problem; got {type(problem).__name__}.")
    if not problem.whitened:
        raise ValueError(
            "`problem` must have whitened data (X X^T = I) for the mode-by-mode theory; the data's "
            "flow carries the metric S_X^2 and the modes do not decouple."
        )
    eps = _check_positive("init_scale", init_scale)
    if init not in ("gaussian", "aligned"):
        raise ValueError(f"`init` must be 'gaussian' or 'aligned' for the theory; got {init!r}.")
    s = np.asarray(problem.singular_values, dtype=np.float64)
    H = problem.depth_H
    d1 = problem.widths[1]
    q = MIDPOINT_Q
    K = len(s)
    tj = np.empty(K)
    tj_sd = np.full(K, np.nan)
    tj_lead = np.empty(K)
    for k in range(K):
        if init == "gaussian" and H == 1:
            nu = d1 - k
            tj[k] = (math.log(s[k]) - math.log(eps**2) - _special.digamma(nu / 2) + math.log(q / (1 - q))) / (2 * s[k])
            tj_sd[k] = math.sqrt(_special.polygamma(1, nu / 2)) / (2 * s[k])
            tj_lead[k] = math.log(1 / eps) / s[k]
        else:
            tj[k], tj_lead[k] = _scalar_chain_time(float(s[k]), eps, H, q)
    prev = np.concatenate([[0.0], tj[:-1]])
    prev_lead = np.concatenate([[0.0], tj_lead[:-1]])
    exact = init == "aligned" or H == 1
    if init == "gaussian" and H == 1:
        model = "Saxe et al. (2014) logistic modes, u0 = eps^2/2 chi^2_{d1-k} (mean of log)"
    elif init == "aligned":
        model = "exact balanced scalar chains dw/dt = w^H (s_k - w^(H+1)), w(0) = eps"
    else:
        model = "order of magnitude: balanced scalar chains with w(0) = eps (Gaussian prefactor not predicted)"
    return xr.Dataset(
        {
            "theory_source": ("step", _objarr([_learned_label(range(k)) for k in range(K)])),
            "theory_target": ("step", _objarr([_learned_label(range(k + 1)) for k in range(K)])),
            "theory_t_jump": ("step", tj),
            "theory_t_jump_std": ("step", tj_sd),
            "theory_t_jump_leading": ("step", tj_lead),
            "theory_plateau": ("step", tj - prev),
            "theory_plateau_leading": ("step", tj_lead - prev_lead),
        },
        coords={"step": np.arange(K, dtype=np.int64)},
        attrs={"theory_exact": bool(exact), "theory_model": model, "init_scale": eps, "init": init},
    )
