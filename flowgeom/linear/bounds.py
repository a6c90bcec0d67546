r"""A-priori bounds on gradient-flow and gradient-descent trajectories (H = 1), and a safe step size.

Setting (one hidden layer, any whitened or non-whitened data): :math:`P = W_2 W_1`,

.. math:: L(W) = \tfrac12 \|T - P R\|_F^2 + c, \qquad F = \|W_1\|_F^2 + \|W_2\|_F^2,
          \qquad C = W_2^T W_2 - W_1 W_1^T,

with :math:`r_1 = \min(d_1, d_x)`, :math:`r_2 = \min(d_1, d_y)` (ranks of :math:`W_1W_1^T`,
:math:`W_2^TW_2`), :math:`\tau = \|T\|_2`, :math:`\rho = \|R\|_2`, :math:`\sigma = \sigma_{\min}(R)`
(:math:`\rho = \sigma = 1` for whitened data, where T is the paper's :math:`\Sigma` and
:math:`\tau = s_{\max}`).

**Flow (proof of Proposition 1, made explicit).** Along the flow,
:math:`dF/dt = 4\langle PR, T\rangle - 4\|PR\|_F^2`. Using
:math:`\langle PR, T\rangle \le \tau\rho\|P\|_* \le \tau\rho\|W_2\|_F\|W_1\|_F \le \tau\rho F/2`,
:math:`\|PR\|_F \ge \sigma\|P\|_F`, and
:math:`2\|P\|_F^2 = \mathrm{tr}(A^2) - \mathrm{tr}(AC) + \mathrm{tr}(B^2) + \mathrm{tr}(BC)`
(:math:`A = W_2^TW_2`, :math:`B = W_1W_1^T = A - C`) with
:math:`\mathrm{tr}(A^2) \ge (\mathrm{tr} A)^2 / r_2`, :math:`\mathrm{tr}(B^2) \ge (\mathrm{tr} B)^2/r_1`,
:math:`a^2/r_1 + b^2/r_2 \ge (a+b)^2/(r_1+r_2)` and :math:`|\mathrm{tr}(AC)| \le \|C\|_2 \mathrm{tr}A`:

.. math:: \frac{dF}{dt} \le c_1 F - c_2 F^2, \qquad c_1 = 2\tau\rho + 2\sigma^2\|C^0\|_2, \qquad
          c_2 = \frac{2\sigma^2}{r_1 + r_2},

since C is conserved (Lemma 1). (The paper's display bounds the C terms by
:math:`\lambda_{\max}(C^0)\,F`; that step fails when :math:`-\lambda_{\min}(C^0) > \lambda_{\max}(C^0)`,
e.g. for a negative definite :math:`C^0`; the spectral norm :math:`\|C^0\|_2` is what the two trace
bounds give. Boundedness, the conclusion, is unaffected.) Hence :math:`F(t) \le F_{\max} = \max(F(0), c_1/c_2)` for all
:math:`t \ge 0`. For the paper's canonical form (:math:`R = I`, :math:`T = \Sigma`):
:math:`c_1 = 2 s_{\max} + 2\|C^0\|_2`, :math:`c_2 = 2/(r_1 + r_2)`,
:math:`c_1/c_2 = (r_1+r_2)(s_{\max} + \|C^0\|_2)`. The bound is attained by the scalar network on
its balanced line (:math:`F \to 2s`).

**Gradient descent.** GD does not conserve C: one step changes it by
:math:`\eta^2(g_2^Tg_2 - g_1g_1^T)`, :math:`g_j = \nabla_{W_j}L`. Let :math:`\ell_0 = L(\theta_0) - c`
and :math:`\delta = 2\eta\ell_0`. If

.. math:: \eta\,\beta \le 1, \quad 2\eta c_2 F_{\max}^{GD} \le 1, \qquad
          F_{\max}^{GD} = \max(F(0), c_1'/c_2) + \delta, \quad c_1' = 2\tau\rho + 2\sigma^2(\|C^0\|_2 + \delta),
          \quad \beta = \tfrac32\rho^2 F_{\max}^{GD} + \rho\tau,

then by induction over k every iterate has :math:`F_k \le F_{\max}^{GD}`,
:math:`\|C_k - C^0\|_2 \le \delta`, and the loss decreases monotonically,
:math:`L_{k+1} \le L_k - \tfrac{\eta}{2}\|\nabla L_k\|^2`. The ingredients: β bounds
:math:`\|\nabla^2 L\|_2 \le \rho^2 F + \rho\|T - PR\|_2` on :math:`\{F \le F_{\max}^{GD}\}`, which is
convex, so the descent lemma applies on each step's segment; summing the descent gives
:math:`\sum_k \eta^2\|g_k\|^2 \le \delta` (with :math:`\eta\|g_k\|^2 \le 2\rho^2\eta F_k \ell_k \le 2\ell_k`
for the current step), which bounds both the drift of C and the excess of
:math:`F_{k+1} \le \varphi(F_k) + \eta^2\|g_k\|^2`, :math:`\varphi(F) = F + \eta(c_1'F - c_2F^2)`,
where :math:`\varphi` is increasing on :math:`[0, F_{\max}^{GD}]` by the second condition.
:func:`safe_learning_rate` returns the largest η meeting both conditions (by bisection, both are
monotone in η), times a safety factor.

**What is not available.** For H >= 2 the paper's proof of Proposition 1 cites Bah et al. for
boundedness and gives no explicit constants; an analogous derivation needs a lower bound on
:math:`\|W_{H+1}\cdots W_1\|` in terms of :math:`\sum_j\|W_j\|^2` from all H invariants, which is
not done here: the functions raise NotImplementedError. For other models no a-priori bound
exists in general (trajectories of a nonlinear network need not be bounded).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from flowgeom._types import FloatArray
from flowgeom.models.base import check_params

__all__ = ["NormBound", "SafeLearningRate", "flow_norm_bound", "safe_learning_rate"]


@dataclass(frozen=True, eq=False)
class NormBound:
    r"""A-priori bound :math:`F(t) \le F_{\max}` along the gradient flow, per trajectory.

    Attributes (arrays of shape (N,))
    ----------
    F0 : :math:`\|W_1\|_F^2 + \|W_2\|_F^2` at t = 0.
    C0_norm : :math:`\|C^0\|_2`, spectral norm of the invariant.
    c1, c2 : constants of :math:`dF/dt \le c_1F - c_2F^2`.
    F_max : :math:`\max(F_0, c_1/c_2)`.
    loss0 : :math:`L(\theta_0) - c` (the loss above its offset).
    """

    F0: FloatArray
    C0_norm: FloatArray
    c1: FloatArray
    c2: FloatArray
    F_max: FloatArray
    loss0: FloatArray


@dataclass(frozen=True, eq=False)
class SafeLearningRate:
    r"""A GD step size with a guarantee, per trajectory (arrays of shape (N,)).

    Attributes
    ----------
    lr : the step size; use ``lr.min()`` for a whole batch.
    F_max : bound on :math:`\|W_1\|_F^2 + \|W_2\|_F^2` over all GD iterates.
    hessian_bound : β, bound on :math:`\|\nabla^2 L\|_2` over :math:`\{F \le F_{\max}\}`.
    invariant_drift_bound : δ, bound on :math:`\|C_k - C^0\|_2` over all iterates.
    """

    lr: FloatArray
    F_max: FloatArray
    hessian_bound: FloatArray
    invariant_drift_bound: FloatArray


def _constants(model, theta0):
    from flowgeom.models.deep_linear import DeepLinearNetwork

    if not isinstance(model, DeepLinearNetwork):
        raise NotImplementedError(
            f"An a-priori trajectory bound is only available for DeepLinearNetwork with H = 1; got "
            f"{type(model).__name__}. A general model's trajectories need not be bounded."
        )
    if model.depth_H != 1:
        raise NotImplementedError(
            f"An explicit a-priori bound is derived here only for H = 1; got H = {model.depth_H}. "
            "The paper's Proposition 1 for H >= 2 relies on Bah et al. without explicit constants."
        )
    theta = check_params(theta0, model.n_params, "theta0")
    theta = np.atleast_2d(np.asarray(theta, dtype=np.float64))
    W1, W2 = model.unpack(theta)
    dx, d1, dy = model.widths
    r1, r2 = min(d1, dx), min(d1, dy)
    tau = np.linalg.norm(model.target, 2)
    if model.input_factor is None:
        rho = sigma = 1.0
    else:
        sv = np.linalg.svd(model.input_factor, compute_uv=False)
        rho, sigma = sv[0], sv[-1]
        if not sigma > 0:
            raise ValueError("`model.input_factor` is singular (X X^T not invertible): no bound of this form.")
    F0 = np.sum(W1**2, axis=(-2, -1)) + np.sum(W2**2, axis=(-2, -1))
    C0 = np.swapaxes(W2, -1, -2) @ W2 - W1 @ np.swapaxes(W1, -1, -2)
    cn = np.max(np.abs(np.linalg.eigvalsh(C0)), axis=-1)
    loss0 = np.asarray(model.loss(theta)) - model.offset
    return F0, cn, tau, rho, sigma, r1, r2, np.maximum(loss0, 0.0)


def flow_norm_bound(model, theta0) -> NormBound:
    r"""The a-priori bound :math:`\|W_1(t)\|_F^2 + \|W_2(t)\|_F^2 \le F_{\max}` for all t >= 0 (H = 1).

    Parameters
    ----------
    model : DeepLinearNetwork
        With H = 1 (any target T and invertible input factor R).
    theta0 : array_like, shape (n,) or (N, n)

    Returns
    -------
    NormBound
        Arrays of shape (N,); see the module docstring for the derivation of
        :math:`c_1 = 2\tau\rho + 2\sigma^2\|C^0\|_2`, :math:`c_2 = 2\sigma^2/(r_1+r_2)`.

    Raises
    ------
    NotImplementedError
        For H >= 2 or a model that is not a DeepLinearNetwork (no explicit bound available).
    """
    F0, cn, tau, rho, sigma, r1, r2, loss0 = _constants(model, theta0)
    c1 = 2 * tau * rho + 2 * sigma**2 * cn
    c2 = np.full_like(F0, 2 * sigma**2 / (r1 + r2))
    return NormBound(F0=F0, C0_norm=cn, c1=c1, c2=c2, F_max=np.maximum(F0, c1 / c2), loss0=loss0)


def _gd_quantities(eta, F0, cn, tau, rho, sigma, r1, r2, loss0):
    delta = 2 * eta * loss0
    c1 = 2 * tau * rho + 2 * sigma**2 * (cn + delta)
    c2 = 2 * sigma**2 / (r1 + r2)
    Fmax = np.maximum(F0, c1 / c2) + delta
    beta = 1.5 * rho**2 * Fmax + rho * tau
    ok = (eta * beta <= 1.0) & (2 * eta * c2 * Fmax <= 1.0)
    return ok, Fmax, beta, delta


def safe_learning_rate(model, theta0, *, safety: float = 0.9) -> SafeLearningRate:
    r"""A step size η for which gradient descent provably stays bounded and decreases the loss (H = 1).

    Parameters
    ----------
    model : DeepLinearNetwork
        With H = 1.
    theta0 : array_like, shape (n,) or (N, n)
    safety : float, default 0.9
        The returned η is ``safety`` times the largest η satisfying the conditions (in (0, 1]).

    Returns
    -------
    SafeLearningRate
        Per trajectory: η, :math:`F_{\max}^{GD}`, β and δ of the module docstring. The guarantee
        (``F_k <= F_max``, ``||C_k - C_0||_2 <= delta``, ``L_{k+1} <= L_k - eta/2 ||grad||^2``)
        holds for every η' <= η as well.

    Raises
    ------
    NotImplementedError
        For H >= 2 or other models.
    """
    if not (0 < float(safety) <= 1):
        raise ValueError(f"`safety` must be in (0, 1]; got {safety!r}.")
    consts = _constants(model, theta0)
    F0 = consts[0]
    lo = np.zeros_like(F0)
    # eta * beta <= 1 needs eta <= 1 / beta(0); start the bisection there
    hi = 1.0 / (1.5 * consts[3] ** 2 * np.maximum(F0, 1e-300) + consts[3] * consts[2])
    ok_hi, *_ = _gd_quantities(hi, *consts)
    lo = np.where(ok_hi, hi, lo)
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        ok, *_ = _gd_quantities(mid, *consts)
        lo = np.where(ok, mid, lo)
        hi = np.where(ok, hi, mid)
    eta = float(safety) * lo
    ok, Fmax, beta, delta = _gd_quantities(eta, *consts)
    assert np.all(ok), "internal error: bisection returned an unsafe step"
    return SafeLearningRate(lr=eta, F_max=Fmax, hessian_bound=beta, invariant_drift_bound=delta)
