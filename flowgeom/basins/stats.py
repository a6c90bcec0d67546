r"""Binomial confidence intervals and basin fractions: counts of limits with their uncertainty.

References
----------
E. B. Wilson, "Probable inference, the law of succession, and statistical inference",
JASA 22 (1927). C. J. Clopper and E. S. Pearson, Biometrika 26 (1934).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from flowgeom._types import FloatArray
from flowgeom.critical.atlas import Limit

__all__ = ["BasinFractions", "basin_fractions", "wilson_interval", "clopper_pearson_interval"]


# ---------------------------------------------------------------------------- confidence intervals
def _check_level(level) -> float:
    try:
        lv = float(level)
    except (TypeError, ValueError):
        raise TypeError(f"`level` must be a float in (0, 1); got {level!r}.") from None
    if not 0.0 < lv < 1.0:
        raise ValueError(f"`level` must lie in (0, 1), e.g. 0.95; got {level!r}.")
    return lv


def _counts(k, n):
    k = np.asarray(k, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    if np.any(n < 1) or np.any(k < 0) or np.any(k > n) or np.any(k != np.round(k)) or np.any(n != np.round(n)):
        raise ValueError(f"`k` and `n` must be integer counts with 0 <= k <= n and n >= 1; got k={k!r}, n={n!r}.")
    return k, n


def wilson_interval(k, n, level: float = 0.95) -> tuple[FloatArray, FloatArray]:
    r"""Wilson score interval for a binomial proportion.

    .. math:: \frac{\hat p + \frac{z^2}{2n} \pm z\sqrt{\frac{\hat p(1-\hat p)}{n} + \frac{z^2}{4n^2}}}{1 + z^2/n},
       \qquad \hat p = k/n,\ z = \Phi^{-1}\!\left(\tfrac{1+\text{level}}{2}\right).

    Parameters
    ----------
    k, n : array_like of int
        Successes and trials (broadcast), 0 <= k <= n, n >= 1.
    level : float, default 0.95
        Confidence level.

    Returns
    -------
    (low, high) : ndarrays
    """
    level = _check_level(level)
    k, n = _counts(k, n)
    from scipy.special import ndtri

    z = ndtri(0.5 * (1.0 + level))
    p = k / n
    denom = 1.0 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # the bounds at k = 0 and k = n are exactly 0 and 1; the formula leaves round-off there
    low = np.where(k == 0, 0.0, np.clip(center - half, 0.0, 1.0))
    high = np.where(k == n, 1.0, np.clip(center + half, 0.0, 1.0))
    return low, high


def clopper_pearson_interval(k, n, level: float = 0.95) -> tuple[FloatArray, FloatArray]:
    r"""Clopper--Pearson ("exact") interval from Beta quantiles.

    .. math:: p_{low} = B^{-1}\!\left(\tfrac{\alpha}{2}; k, n-k+1\right), \quad
       p_{high} = B^{-1}\!\left(1-\tfrac{\alpha}{2}; k+1, n-k\right), \quad \alpha = 1 - \text{level},

    with :math:`p_{low} = 0` for k = 0 and :math:`p_{high} = 1` for k = n.

    Parameters
    ----------
    k, n : array_like of int
    level : float, default 0.95

    Returns
    -------
    (low, high) : ndarrays
    """
    level = _check_level(level)
    k, n = _counts(k, n)
    from scipy.special import betaincinv

    alpha = 1.0 - level
    with np.errstate(invalid="ignore"):
        low = np.where(k > 0, betaincinv(np.maximum(k, 1), n - k + 1, alpha / 2), 0.0)
        high = np.where(k < n, betaincinv(k + 1, np.maximum(n - k, 1), 1 - alpha / 2), 1.0)
    return np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)


_CI = {"wilson": wilson_interval, "clopper-pearson": clopper_pearson_interval}


@dataclass(frozen=True)
class BasinFractions:
    r"""Counts and fractions per stratum and per special outcome, with confidence intervals.

    Attributes
    ----------
    n : int
        Number of samples.
    count, fraction, low, high : ndarray, shape (n_strata,)
    special : dict
        ``{"unconverged": (count, fraction, low, high), "diverged": ..., "unclassified": ...}``.
    level : float
    method : str
    """

    n: int
    count: np.ndarray
    fraction: FloatArray
    low: FloatArray
    high: FloatArray
    special: dict
    level: float
    method: str

    def __post_init__(self):
        total = int(self.count.sum()) + sum(int(v[0]) for v in self.special.values())
        if total != self.n:
            raise ValueError(f"counts sum to {total}, not to n = {self.n}.")


def basin_fractions(limits, n_strata: int, *, level: float = 0.95, method: str = "wilson") -> BasinFractions:
    r"""Fractions :math:`\hat p_k = \#\{i: \lambda_i = k\}/N` with confidence intervals.

    Parameters
    ----------
    limits : array_like of int, shape (N,)
        Labels: 0..n_strata-1, or -1 (unconverged), -2 (diverged), -3 (unclassified).
    n_strata : int
    level : float, default 0.95
        Confidence level of the intervals.
    method : {"wilson", "clopper-pearson"}, default "wilson"

    Returns
    -------
    BasinFractions

    Raises
    ------
    ValueError
        Labels out of range, empty ``limits``, bad ``level`` or ``method``.
    """
    lam = np.asarray(limits)
    if lam.ndim != 1 or lam.size == 0 or lam.dtype.kind not in "iu":
        raise ValueError(f"`limits` must be a non-empty 1-D integer array; got shape {lam.shape}, dtype {lam.dtype}.")
    if method not in _CI:
        raise ValueError(f"`method` must be 'wilson' or 'clopper-pearson'; got {method!r}.")
    level = _check_level(level)
    bad = (lam >= n_strata) | (lam < int(Limit.UNCLASSIFIED))
    if bad.any():
        raise ValueError(
            f"`limits` must lie in -3..{n_strata - 1}; got {np.unique(lam[bad])[:5].tolist()}."
        )
    n = lam.size
    count = np.bincount(lam[lam >= 0], minlength=n_strata).astype(np.int64)
    lo, hi = _CI[method](count, n, level) if n_strata else (np.zeros(0), np.zeros(0))
    special = {}
    for code, name in ((int(c), c.name.lower()) for c in Limit):
        c = int(np.sum(lam == code))
        slo, shi = _CI[method](c, n, level)
        special[name] = (c, c / n, float(slo), float(shi))
    return BasinFractions(n, count, count / n, np.asarray(lo), np.asarray(hi), special, level, method)
