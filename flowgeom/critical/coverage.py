r"""How complete a critical-point search is: accumulation curve and Good–Turing estimate.

A search (a random start, or a descent run with its plateau points) finds critical classes; after
:math:`T` searches with :math:`Q_1` classes found by exactly one of them, the probability that the next
search finds a class not seen yet is estimated by :math:`Q_1 / T` (:func:`good_turing_p_new`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from flowgeom.critical.search import CriticalSearch

__all__ = ["COVERAGE_TARGET", "Coverage", "good_turing_p_new", "search_coverage"]

COVERAGE_TARGET = 0.05
"""Default target of the Good-Turing estimate at which a searched atlas stops raising its budget."""


@dataclass(frozen=True)
class Coverage:
    r"""How complete a search is: the accumulation curve and the Good–Turing estimate of what it missed.

    Attributes
    ----------
    searches : int
        Searches run (independent draws; a descent run's plateau points are one search).
    classes : int
        Distinct critical classes the searches found.
    singletons : int
        Classes found by exactly one search (:math:`Q_1`).
    p_new : float
        :math:`\hat p_{\rm new} = Q_1 / T`, T = ``searches``: the Good–Turing estimate of the probability
        that the next search finds a class not seen yet (:func:`good_turing_p_new`).
    target : float
        The target of the budget rule (NaN when none was set).
    curve_searches, curve_classes : ndarray of int
        The accumulation curve: distinct classes found by the first ``curve_searches[j]`` searches,
        in search order.
    rounds : int
        Batches of searches run.
    """

    searches: int
    classes: int
    singletons: int
    p_new: float
    target: float
    curve_searches: np.ndarray = field(repr=False)
    curve_classes: np.ndarray = field(repr=False)
    rounds: int = 1

    @property
    def reached(self) -> bool:
        """``p_new <= target``."""
        return bool(self.p_new <= self.target)

    def summary(self) -> str:
        """One line for logs and the CLI."""
        return (f"coverage: {self.classes} classes from {self.searches} searches ({self.rounds} batches), "
                f"{self.singletons} found once; Good-Turing P(next search finds a new class) = {self.p_new:.3f} "
                f"(target {self.target:g}: {'reached' if self.reached else 'NOT reached'})")


def good_turing_p_new(incidence: Sequence[int], n_searches: int) -> float:
    r"""Good–Turing estimate of the probability that the next search finds a new class.

    With :math:`T` searches and :math:`Q_1` the number of classes found by exactly one of them,

    .. math:: \hat p_{\rm new} = Q_1 / T.

    For i.i.d. searches that each find one class this is Good's (1953) estimate of the missing mass
    (the total probability of the classes not seen), unbiased up to :math:`O(1/T)`:
    :math:`E[Q_1/T] = \sum_k p_k (1 - p_k)^{T-1} \ge E[\sum_{k \text{ unseen}} p_k] = \sum_k p_k(1-p_k)^T`.
    Where a search can find several classes (a descent run's plateaus) it is the incidence-data
    form of Chao et al. (2014).

    Parameters
    ----------
    incidence : sequence of int
        For each class found, the number of searches that found it (>= 1).
    n_searches : int
        T (> 0).

    Returns
    -------
    float
        In [0, 1]; 1.0 when ``n_searches`` is 0.

    References
    ----------
    I. J. Good, "The population frequencies of species and the estimation of population parameters",
    Biometrika 40 (1953) 237–264. A. Chao, N. J. Gotelli et al., "Rarefaction and extrapolation with Hill
    numbers", Ecological Monographs 84 (2014) 45–67.
    """
    inc = np.asarray(incidence, dtype=np.int64)
    if n_searches <= 0:
        return 1.0
    return float(min(1.0, np.sum(inc == 1) / n_searches))


def search_coverage(search: CriticalSearch, *, target: float = float("nan")) -> Coverage:
    """The :class:`Coverage` of a finished search (classes = its ``points``; gradient-flat points excluded)."""
    units = search.units if search.units is not None else np.arange(search.n_starts)
    units = np.asarray(units, dtype=np.int64)
    rand = units >= 0
    uniq = np.unique(units[rand])
    first_seen: dict[int, int] = {}
    found_by: dict[int, set] = {}
    for pos, u in enumerate(uniq):
        cls = {int(c) for c in search.assignment[rand & (units == u)] if c >= 0}
        for c in cls:
            first_seen.setdefault(c, pos)
            found_by.setdefault(c, set()).add(int(u))
    T = int(uniq.size)
    curve_s = np.arange(1, T + 1, dtype=np.int64)
    new_at = np.bincount(np.asarray(list(first_seen.values()), dtype=np.int64), minlength=T)[:T] if T else np.zeros(0)
    curve_c = np.cumsum(new_at).astype(np.int64)
    inc = [len(v) for v in found_by.values()]
    return Coverage(searches=T, classes=len(found_by), singletons=int(sum(1 for v in inc if v == 1)),
                    p_new=good_turing_p_new(inc, T), target=float(search.settings.get("coverage_target", target)),
                    curve_searches=curve_s, curve_classes=curve_c, rounds=int(search.settings.get("rounds", 1)))


def _incidence(search: CriticalSearch) -> dict[int, int]:
    """Number of searches (units) that found each point index of ``search``."""
    units = search.units if search.units is not None else np.arange(search.n_starts)
    out: dict[int, set] = {}
    for a, u in zip(search.assignment, units):
        if a >= 0 and u >= 0:
            out.setdefault(int(a), set()).add(int(u))
    return {k: len(v) for k, v in out.items()}
