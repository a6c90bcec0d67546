r"""Linearization of the gradient flow at a critical point: Hessian inertia, Morse–Bott test, stable codimension.

Near a critical point :math:`\theta^*` the flow :math:`\dot\theta = -\nabla L(\theta)` is, to first order,

.. math:: \dot{\delta} = -\nabla^2 L(\theta^*)\,\delta ,

so the Jacobian of the vector field is :math:`-\nabla^2 L`. With the Hessian inertia
:math:`(n_-, n_0, n_+)` (numbers of negative, zero and positive eigenvalues) the flow has
stable dimension :math:`n_+`, unstable dimension :math:`n_-` and center dimension :math:`n_0`.

When the critical set through :math:`\theta^*` is a manifold :math:`\mathcal{C}` of dimension
:math:`k` and :math:`n_0 = k` (Morse–Bott: every zero direction is tangent to
:math:`\mathcal{C}`), :math:`\mathcal{C}` is a normally hyperbolic manifold of equilibria; each of
its points has a stable fiber of dimension :math:`n_+`, and the points that flow into
:math:`\mathcal{C}` form an (immersed) manifold of dimension :math:`k + n_+ = n - n_-`: the
*stable codimension* is :math:`n_-`. When :math:`n_0 > k` the extra center directions, transverse
to :math:`\mathcal{C}`, are governed by terms of order >= 3: the linearization only gives the
lower bound :math:`\operatorname{codim} \ge n_-` (every orbit that stays near :math:`\theta^*` lies
in a center-stable manifold of dimension :math:`n_0 + n_+`), and the exact codimension is
*undecided by linearization* (reported as -1).

Three ways to count the inertia:

- ``"dense"``: eigenvalues of the dense Hessian (``numpy.linalg.eigvalsh``); records the spectral gap.
- ``"ldl"``: Sylvester's law of inertia on :math:`LDL^T` factorizations of shifted Hessians
  :math:`\nabla^2 L - \sigma I` (LAPACK ``sytrf``, Bunch–Kaufman): the number of negative
  eigenvalues of D is the number of eigenvalues below :math:`\sigma`. The Hessian is assembled
  from HVPs; no eigendecomposition. About 3x faster than ``eigvalsh`` and needs no eigenvectors.
- ``"lanczos"``: matrix-free, HVPs only (``scipy.sparse.linalg.eigsh`` on a ``LinearOperator``):
  the smallest eigenvalues are computed in growing blocks until the block passes the zero
  cluster. Efficient only when :math:`n_- + n_0` is small compared with n; otherwise it returns an
  undecided result.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import scipy.linalg as sla
import scipy.sparse.linalg as spla

from flowgeom._types import FloatArray, Params
from flowgeom.models.base import Model, check_params

__all__ = [
    "Inertia",
    "Linearization",
    "hessian_inertia",
    "linearize",
    "negative_eigenvalues",
    "stable_codimension",
    "is_morse_bott",
    "ZERO_RTOL",
    "GAP_MIN",
    "DENSE_MAX",
]

ZERO_RTOL = 1e-8
"""Default zero tolerance relative to the spectral norm: :math:`|\\lambda| \\le 10^{-8}\\|\\nabla^2 L\\|_2` counts as zero.
Round-off in an exact HVP at a point on the critical set gives :math:`|\\lambda| \\sim 10^{-15}\\|\\nabla^2 L\\|`;
a point off the set by :math:`\\delta` shifts the zero eigenvalues by :math:`O(\\delta)`, so points must be
refined to :math:`\\|\\nabla L\\| \\ll 10^{-8}` first."""

GAP_MIN = 1e3
"""A count is *decided* when the smallest non-zero :math:`|\\lambda|` exceeds the largest zero :math:`|\\lambda|` by this factor."""

DENSE_MAX = 6000
"""``method="auto"`` uses ``"dense"`` up to this many parameters, ``"ldl"`` above (while the Hessian fits in memory).
``eigvalsh`` was measured faster than the four shifted Bunch–Kaufman factorizations of the certified
``"ldl"`` count at n = 4608 on 2 cores (``benchmarks/bench_inertia.py``): LAPACK's ``sytrf`` parallelizes
less well than the tridiagonal reduction, although both cost O(n^3)."""

LDL_MAX_BYTES = 8 * 2**30
"""``method="auto"`` switches to ``"lanczos"`` when two dense copies of the Hessian would exceed this."""

# Relative floor for "exactly zero" spectral quantities: gaps are computed against
# max(max_zero, _TINY * scale) so that an exactly zero Hessian block does not divide by 0.
_TINY = np.finfo(np.float64).eps


@dataclass(frozen=True)
class Inertia:
    r"""Inertia :math:`(n_-, n_0, n_+)` of a Hessian, with the evidence that decided the zeros.

    Attributes
    ----------
    n_negative, n_zero, n_positive : int
        Eigenvalue counts with :math:`\lambda < -\tau`, :math:`|\lambda| \le \tau`, :math:`\lambda > \tau`;
        -1 when the method could not decide them (``"lanczos"`` beyond its budget).
    zero_tol : float
        :math:`\tau = \max(\text{zero\_atol}, \text{zero\_rtol}\cdot\text{scale})`.
    max_zero : float
        Largest :math:`|\lambda|` counted zero (``"dense"``, ``"lanczos"``); for ``"ldl"`` an upper bound
        (:math:`\tau/\sqrt{\text{gap\_min}}` when the gap check passed, else ``tau``); 0.0 when n_zero = 0.
    min_nonzero : float
        Smallest :math:`|\lambda|` counted non-zero (or, for ``"ldl"``, a lower bound); ``inf`` if none.
    gap : float
        ``min_nonzero / max(max_zero, eps * scale)``: the spectral gap that separated the zeros. For
        ``"ldl"`` the certified lower bound ``gap_min`` when the gap check passed (``inf`` when there is
        no zero or no non-zero eigenvalue), else 1.0.
    scale : float
        Spectral norm :math:`\|\nabla^2 L\|_2`: exact for ``"dense"``, a power-iteration estimate
        (a lower bound, typically within a few percent) for ``"ldl"``/``"lanczos"``.
    method : str
        ``"dense"``, ``"ldl"`` or ``"lanczos"``.
    decided : bool
        True when all counts are known and no eigenvalue magnitude lies within a factor
        :math:`\sqrt{\text{gap\_min}}` of :math:`\tau` on either side: the zero cluster and the rest
        of the spectrum are then separated by at least ``gap_min`` with the tolerance inside the gap.
        The same rule for all three methods (``"ldl"`` certifies it with shifted factorizations).
    eigenvalues : ndarray or None
        All eigenvalues ascending (``"dense"``), the computed low end (``"lanczos"``), or None.
    """

    n_negative: int
    n_zero: int
    n_positive: int
    zero_tol: float
    max_zero: float
    min_nonzero: float
    gap: float
    scale: float
    method: str
    decided: bool
    eigenvalues: FloatArray | None = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        if self.method not in ("dense", "ldl", "lanczos"):
            raise ValueError(f"`method` must be 'dense', 'ldl' or 'lanczos'; got {self.method!r}.")

    @property
    def dim(self) -> int:
        """n_negative + n_zero + n_positive (the number of parameters when decided)."""
        return self.n_negative + self.n_zero + self.n_positive

    @property
    def triple(self) -> tuple[int, int, int]:
        """(n_negative, n_zero, n_positive)."""
        return (self.n_negative, self.n_zero, self.n_positive)


def _spectral_scale(matvec, n, n_iter: int = 40) -> float:
    r"""Estimate of :math:`\|H\|_2` by power iteration on :math:`H^2` (``n_iter`` matvecs); 0.0 for a zero operator.

    A lower bound that is typically within a few percent after 40 iterations; the zero tolerance
    only needs the scale to within a small factor (the gap rule keeps a margin of
    :math:`\sqrt{\text{gap\_min}}` on both sides). ARPACK is avoided here: the spectra at critical
    points are highly degenerate (e.g. :math:`\pm s_i` repeated :math:`d_1` times), which makes
    ``eigsh(which="LM")`` slow to converge.
    """
    if n == 0:
        return 0.0
    v = np.random.default_rng(0).standard_normal(n)
    v /= np.linalg.norm(v)
    est = 0.0
    for _ in range(n_iter):
        w = matvec(v)
        nw = float(np.linalg.norm(w))
        if nw == 0.0:
            return est
        est = max(est, nw)
        v = w / nw
    return est


def _counts_from_eigs(lam, tau, scale, gap_min, method):
    absl = np.abs(lam)
    zero = absl <= tau
    n_neg = int(np.sum(lam < -tau))
    n_pos = int(np.sum(lam > tau))
    n_zero = int(np.sum(zero))
    max_zero = float(absl[zero].max()) if n_zero else 0.0
    min_nonzero = float(absl[~zero].min()) if (~zero).any() else math.inf
    gap = min_nonzero / max(max_zero, _TINY * max(scale, _TINY))
    return n_neg, n_zero, n_pos, max_zero, min_nonzero, gap


def _separated(max_zero, min_nonzero, tau, gap_min) -> bool:
    """The decision rule: no |lambda| within a factor sqrt(gap_min) of tau on either side."""
    g = math.sqrt(gap_min)
    return bool(max_zero <= tau / g and min_nonzero >= tau * g)


def _ldl_negative_count(A: FloatArray) -> int:
    """Number of negative eigenvalues of symmetric A from its Bunch–Kaufman LDL^T (Sylvester)."""
    lwork, _ = sla.lapack.dsytrf_lwork(A.shape[0], lower=1)  # optimal block size: ~1.5x faster than unblocked
    ldu, ipiv, info = sla.lapack.dsytrf(A, lower=1, overwrite_a=1, lwork=max(1, int(lwork)))
    if info < 0:  # pragma: no cover - argument error
        raise RuntimeError(f"LAPACK dsytrf argument error {info}")
    n = A.shape[0]
    neg = 0
    k = 0
    while k < n:
        if ipiv[k] > 0:
            neg += int(ldu[k, k] < 0)
            k += 1
        else:  # 2x2 block in rows/cols k, k+1 (ipiv[k] == ipiv[k+1] < 0)
            a, b, c = ldu[k, k], ldu[k + 1, k], ldu[k + 1, k + 1]
            det = a * c - b * b
            if det < 0:
                neg += 1
            elif det > 0:
                neg += 2 if a + c < 0 else 0
            else:  # singular block: one zero eigenvalue, the other has the sign of the trace
                neg += int(a + c < 0)
            k += 2
    return neg


def hessian_inertia(
    model: Model,
    theta: Params,
    *,
    method: Literal["auto", "dense", "ldl", "lanczos"] = "auto",
    zero_rtol: float = ZERO_RTOL,
    zero_atol: float = 0.0,
    gap_min: float = GAP_MIN,
    check_gap: bool = True,
    hessian: FloatArray | None = None,
    max_k: int = 600,
) -> Inertia:
    r"""Inertia :math:`(n_-, n_0, n_+)` of :math:`\nabla^2 L(\theta)` with the tolerance and gap that decided the zeros.

    An eigenvalue counts as zero when :math:`|\lambda| \le \tau`,
    :math:`\tau = \max(\text{zero\_atol}, \text{zero\_rtol}\,\|\nabla^2 L\|_2)`.

    Parameters
    ----------
    model : Model
        Provides ``hvp`` (and ``hessian`` for ``"dense"``).
    theta : ndarray, shape (n,)
        One parameter vector, ideally a critical point refined to round-off.
    method : {"auto", "dense", "ldl", "lanczos"}, default "auto"
        ``"auto"``: ``"dense"`` for n <= ``DENSE_MAX``, ``"ldl"`` while two dense n x n copies fit in
        ``LDL_MAX_BYTES``, else ``"lanczos"``. See the module docstring.
    zero_rtol : float, default ``ZERO_RTOL`` (1e-8)
        Zero tolerance relative to the spectral norm.
    zero_atol : float, default 0.0
        Absolute floor of the zero tolerance (use > 0 when the Hessian may vanish identically).
    gap_min : float, default ``GAP_MIN`` (1e3)
        The counts are ``decided`` only when no eigenvalue magnitude lies in
        :math:`[\tau/\sqrt{g}, \tau\sqrt{g}]`, g = ``gap_min``.
    check_gap : bool, default True
        For ``"ldl"``: factor at :math:`\pm\tau\sqrt{g}` and :math:`\pm\tau/\sqrt{g}` (g = ``gap_min``,
        4 factorizations) to certify the gap; False factors at :math:`\pm\tau` only (2) and leaves
        ``decided`` False.
    hessian : ndarray, shape (n, n), optional
        A precomputed dense Hessian (``"dense"``/``"ldl"``), to avoid recomputing it.
    max_k : int, default 600
        ``"lanczos"``: largest number of low eigenvalues computed before giving up (undecided).

    Returns
    -------
    Inertia

    Raises
    ------
    ValueError
        Bad ``theta`` shape, unknown ``method`` or non-positive tolerances.
    """
    n = model.n_params
    theta = check_params(theta, n)
    if theta.ndim != 1:
        raise ValueError(f"`theta` must be one parameter vector of shape ({n},); got shape {theta.shape}.")
    if method not in ("auto", "dense", "ldl", "lanczos"):
        raise ValueError(f"`method` must be 'auto', 'dense', 'ldl' or 'lanczos'; got {method!r}.")
    if not (zero_rtol > 0) or zero_atol < 0 or not (gap_min > 1):
        raise ValueError(
            f"`zero_rtol` must be > 0, `zero_atol` >= 0 and `gap_min` > 1; got {zero_rtol!r}, {zero_atol!r}, {gap_min!r}."
        )
    if method == "auto":
        if n <= DENSE_MAX:
            method = "dense"
        elif 2 * 8 * n * n <= LDL_MAX_BYTES:
            method = "ldl"
        else:
            method = "lanczos"
    if method == "dense":
        Hm = model.hessian(theta) if hessian is None else np.asarray(hessian, dtype=np.float64)
        lam = np.linalg.eigvalsh(0.5 * (Hm + Hm.T))
        scale = float(np.max(np.abs(lam))) if n else 0.0
        tau = max(zero_atol, zero_rtol * scale)
        n_neg, n_zero, n_pos, max_zero, min_nonzero, gap = _counts_from_eigs(lam, tau, scale, gap_min, method)
        return Inertia(n_neg, n_zero, n_pos, tau, max_zero, min_nonzero, float(gap), scale, "dense",
                       _separated(max_zero, min_nonzero, tau, gap_min), lam)
    if method == "ldl":
        Hm = model.hessian(theta) if hessian is None else np.asarray(hessian, dtype=np.float64)
        Hm = 0.5 * (Hm + Hm.T)
        scale = _spectral_scale(lambda v: Hm @ v, n)
        tau = max(zero_atol, zero_rtol * scale)
        diag = np.arange(n)

        def below(sigma):  # number of eigenvalues < sigma
            A = np.array(Hm, order="F")
            A[diag, diag] -= sigma
            return _ldl_negative_count(A)

        if check_gap:
            g = math.sqrt(gap_min)
            lo_neg, hi_neg = below(-tau * g), below(-tau / g)
            lo_pos, hi_pos = below(tau / g), below(tau * g)
            clean = lo_neg == hi_neg and lo_pos == hi_pos
            n_neg = lo_neg
            n_below_tau = hi_pos
            if clean:
                max_zero, min_nonzero = tau / g, tau * g
            else:  # some eigenvalue lies near tau: count at exactly +-tau, like the dense path
                n_neg, n_below_tau = below(-tau), below(tau)
                max_zero, min_nonzero = tau, tau
        else:
            n_neg = below(-tau)
            n_below_tau = below(tau)
            clean = False
            max_zero, min_nonzero = tau, tau
        n_zero = n_below_tau - n_neg
        n_pos = n - n_below_tau
        if n_zero == 0:
            max_zero = 0.0
        # certified: no eigenvalue has |lambda| in [tau/g, tau*g], so the gap is at least g^2 = gap_min
        gap = float(gap_min) if clean else 1.0
        if n_zero == 0 or n_zero == n:
            gap = math.inf if clean else gap
        return Inertia(n_neg, n_zero, n_pos, tau, max_zero, min_nonzero, gap, scale, "ldl", bool(clean), None)
    # lanczos, matrix-free
    def mv(v):
        return model.hvp(theta, np.asarray(v, dtype=np.float64).ravel())

    scale = _spectral_scale(mv, n)
    tau = max(zero_atol, zero_rtol * scale)
    op = spla.LinearOperator((n, n), matvec=mv, dtype=np.float64)
    v0 = np.random.default_rng(1).standard_normal(n)
    k = min(8, n - 1)
    lam = None
    while True:
        try:
            lam = np.sort(spla.eigsh(op, k=k, which="SA", v0=v0, return_eigenvectors=False,
                                     tol=1e-10, maxiter=50 * n))
        except spla.ArpackNoConvergence:
            lam = None
        if lam is not None and lam[-1] > tau * math.sqrt(gap_min):
            break
        if k >= min(max_k, n - 1):
            return Inertia(-1, -1, -1, tau, math.nan, math.nan, math.nan, scale, "lanczos", False, lam)
        k = min(2 * k, max_k, n - 1)
    n_neg, n_zero, _, max_zero, _, _ = _counts_from_eigs(lam, tau, scale, gap_min, "lanczos")
    above = lam[lam > tau]
    min_nonzero = float(min(np.abs(lam[lam < -tau]).min(initial=math.inf), above.min()))
    n_pos = n - n_neg - n_zero
    gap = min_nonzero / max(max_zero, _TINY * max(scale, _TINY))
    return Inertia(n_neg, n_zero, n_pos, tau, max_zero, min_nonzero, float(gap), scale, "lanczos",
                   _separated(max_zero, min_nonzero, tau, gap_min), lam)


def negative_eigenvalues(
    model: Model,
    theta: Params,
    *,
    zero_rtol: float = ZERO_RTOL,
    gap_min: float = GAP_MIN,
    max_k: int = 600,
) -> tuple[int, FloatArray, bool]:
    r"""Matrix-free count of the negative Hessian eigenvalues (the unstable dimension :math:`n_-`), HVPs only.

    Lanczos (``scipy.sparse.linalg.eigsh``, ``which="SA"``) on the HVP operator, with a block of
    k smallest eigenvalues doubled until it contains one :math:`\ge -	au/\sqrt{g}`; costs
    :math:`O(k)` HVPs per iteration and never forms the Hessian. Enough for the stable codimension
    when the critical manifold is known to be Morse–Bott, and for the strict-saddle test.

    Convergence is slow when the negative eigenvalues are small compared with
    :math:`\|\nabla^2 L\|_2` and lie next to a large zero cluster (e.g. the top strata of wide
    deep linear networks, where :math:`|\lambda_-| \sim |s_k - s_i|`); there the assembled-Hessian
    ``"ldl"`` path of :func:`hessian_inertia` is faster.

    Returns
    -------
    n_negative : int
        -1 when ``max_k`` eigenvalues were all negative.
    eigenvalues : ndarray
        The computed smallest eigenvalues, ascending.
    decided : bool
        No computed eigenvalue lies in :math:`[-	au\sqrt{g}, -	au/\sqrt{g}]` (g = ``gap_min``).
    """
    n = model.n_params
    theta = check_params(theta, n)

    def mv(v):
        return model.hvp(theta, np.asarray(v, dtype=np.float64).ravel())

    scale = _spectral_scale(mv, n)
    tau = zero_rtol * scale
    g = math.sqrt(gap_min)
    op = spla.LinearOperator((n, n), matvec=mv, dtype=np.float64)
    v0 = np.random.default_rng(1).standard_normal(n)
    k = min(8, n - 1)
    while True:
        lam = np.sort(spla.eigsh(op, k=k, which="SA", v0=v0, return_eigenvectors=False, tol=1e-10, maxiter=50 * n))
        if lam[-1] >= -tau / g:
            break
        if k >= min(max_k, n - 1):
            return -1, lam, False
        k = min(2 * k, max_k, n - 1)
    n_neg = int(np.sum(lam < -tau))
    decided = not bool(np.any((lam >= -tau * g) & (lam <= -tau / g)))
    return n_neg, lam, decided


def stable_codimension(inertia: Inertia, manifold_dim: int) -> tuple[int, int, str]:
    r"""Codimension of the set of initializations that flow into the critical manifold, where linearization decides it.

    Returns ``(stable_codim, lower_bound, reason)``:

    - Morse–Bott (:math:`n_0` equals ``manifold_dim``): ``(n_-, n_-, "morse_bott")``.
    - :math:`n_0 >` ``manifold_dim``: ``(-1, n_-, "undecided: ...")``; center directions transverse
      to the manifold are decided by higher-order terms. The set still lies in a center-stable
      manifold, so its codimension is at least :math:`n_-` (positive: measure zero; 0: no bound).
    - counts not decided, unknown ``manifold_dim`` (< 0), or :math:`n_0 <` ``manifold_dim``
      (inconsistent: the manifold's tangent space must lie in the kernel): ``(-1, -1, reason)``.
    """
    if not inertia.decided or inertia.n_zero < 0:
        return -1, -1, "undecided: inertia not decided (no clear spectral gap)"
    if manifold_dim < 0:
        return -1, inertia.n_negative, "undecided: manifold dimension unknown"
    if inertia.n_zero == manifold_dim:
        return inertia.n_negative, inertia.n_negative, "morse_bott"
    if inertia.n_zero > manifold_dim:
        return (
            -1,
            inertia.n_negative,
            f"undecided by linearization: {inertia.n_zero - manifold_dim} center direction(s) transverse "
            "to the critical manifold (not Morse-Bott)",
        )
    return -1, -1, (
        f"inconsistent: n_zero = {inertia.n_zero} < manifold dimension {manifold_dim} "
        "(the point is not on the critical set, or the tolerance is too small)"
    )


def is_morse_bott(inertia: Inertia, manifold_dim: int) -> bool:
    r"""The one Morse–Bott rule: the inertia is decided and :math:`n_0` equals the manifold dimension.

    At a Morse–Bott point every zero direction of the Hessian is tangent to the critical manifold;
    an undecided inertia (no spectral gap at the tolerance) or an unknown dimension (-1) never passes.
    """
    return bool(inertia.decided and manifold_dim >= 0 and inertia.n_zero == manifold_dim)


@dataclass(frozen=True)
class Linearization:
    r"""The linearized gradient flow :math:`\dot\delta = -\nabla^2 L(\theta^*)\,\delta` at a critical point.

    Attributes
    ----------
    inertia : Inertia
    grad_norm : float
        :math:`\|\nabla L(\theta^*)\|_2` (should be at round-off level).
    manifold_dim : int
        Dimension of the critical manifold through the point (-1 if unknown).
    morse_bott : bool
        ``n_zero == manifold_dim`` (False when unknown).
    stable_dim, unstable_dim, center_dim : int
        :math:`n_+`, :math:`n_-`, :math:`n_0` (the Jacobian of the field is :math:`-\nabla^2 L`).
    stable_codim : int
        Codimension of the set flowing into the manifold, -1 when undecided by linearization.
    stable_codim_lower : int
        A lower bound valid without Morse–Bott (:math:`n_-`), -1 if unknown.
    reason : str
        ``"morse_bott"`` or why ``stable_codim`` is undecided.
    kind : str
        ``"minimum"`` (:math:`n_- = 0` and Morse–Bott: a local minimum), ``"strict_saddle"``
        (:math:`n_- > 0`), ``"degenerate"`` (:math:`n_- = 0`, not Morse–Bott or manifold dimension
        unknown: terms of order >= 3 decide between a local minimum and a non-strict saddle; a
        caller who knows the global minimum value can tell) or ``"undecided"`` (inertia not decided).
    """

    inertia: Inertia
    grad_norm: float
    manifold_dim: int
    morse_bott: bool
    stable_dim: int
    unstable_dim: int
    center_dim: int
    stable_codim: int
    stable_codim_lower: int
    reason: str
    kind: str


def linearize(
    model: Model,
    theta: Params,
    *,
    manifold_dim: int | None = None,
    **inertia_options,
) -> Linearization:
    r"""Linearize the gradient flow at a critical point :math:`\theta^*`.

    Parameters
    ----------
    model : Model
    theta : ndarray, shape (n,)
        The critical point.
    manifold_dim : int, optional
        Dimension of the critical manifold through ``theta`` (e.g. the rank of a
        parametrization's Jacobian, :meth:`flowgeom.critical.manifolds.StratumChart.tangent_dim`,
        or :func:`flowgeom.critical.refine.local_dimension`). Default None: unknown, so the
        Morse–Bott test and the stable codimension are undecided.
    **inertia_options
        Passed to :func:`hessian_inertia` (``method``, ``zero_rtol``, ``zero_atol``, ``gap_min``, ...).

    Returns
    -------
    Linearization
    """
    theta = check_params(theta, model.n_params)
    inertia = hessian_inertia(model, theta, **inertia_options)
    g = float(np.linalg.norm(model.grad(theta)))
    k = -1 if manifold_dim is None else int(manifold_dim)
    codim, lower, reason = stable_codimension(inertia, k)
    mb = is_morse_bott(inertia, k)
    if not inertia.decided:
        kind = "undecided"
    elif inertia.n_negative > 0:
        kind = "strict_saddle"
    elif mb:
        kind = "minimum"
    else:
        kind = "degenerate"
    return Linearization(
        inertia=inertia,
        grad_norm=g,
        manifold_dim=k,
        morse_bott=mb,
        stable_dim=inertia.n_positive,
        unstable_dim=inertia.n_negative,
        center_dim=inertia.n_zero,
        stable_codim=codim,
        stable_codim_lower=lower,
        reason=reason,
        kind=kind,
    )
