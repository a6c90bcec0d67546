r"""Classifiers: which stratum a converged trajectory reached (the plug-in point for any model).

A :class:`Classifier` maps final states whose gradient has converged to indices of candidate
strata. :class:`StratumClassifier` uses the deep-linear atlas (end-to-end product in canonical
coordinates plus critical value); :class:`CriticalValueClassifier` uses the loss alone, for
models without an atlas. Labels below zero are the outcomes that are not a stratum:
``LIMIT_UNCONVERGED`` (-1), ``LIMIT_DIVERGED`` (-2) and ``LIMIT_UNCLASSIFIED`` (-3).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Protocol, Sequence, runtime_checkable

import numpy as np

from flowgeom._types import FloatArray, Params

__all__ = [
    "LIMIT_UNCONVERGED",
    "LIMIT_DIVERGED",
    "LIMIT_UNCLASSIFIED",
    "LIMIT_CODES",
    "Classifier",
    "StratumClassifier",
    "CriticalValueClassifier",
    "default_classifier",
]

LIMIT_UNCONVERGED = -1
"""Label of a trajectory whose gradient had not converged by ``t_max``."""
LIMIT_DIVERGED = -2
"""Label of a trajectory that diverged (non-finite or ``||theta|| > max_norm``)."""
LIMIT_UNCLASSIFIED = -3
"""Label of a converged trajectory whose limit matches none of the candidate strata."""
LIMIT_CODES = {LIMIT_UNCONVERGED: "unconverged", LIMIT_DIVERGED: "diverged", LIMIT_UNCLASSIFIED: "unclassified"}

# A converged loss is matched to a critical value when it lies within this fraction of the
# smallest gap between distinct candidate critical values (so that a match is unambiguous).
VALUE_GAP_FRACTION = 0.25


@runtime_checkable
class Classifier(Protocol):
    r"""Maps converged final states to strata: the plug-in point for any model.

    In order to implement a classifier you need to provide:

    1. ``labels``: sequence of str, one per candidate stratum (the ``stratum`` dimension).
    2. ``ranks``: sequence of int, one per stratum (-1 where a rank means nothing).
    3. ``critical_values``: sequence of float, the loss on each stratum.
    4. ``classify(theta, loss)``: for final states ``theta`` (N, n) whose gradient has
       converged and their losses (N,), return an int array (N,) of indices into ``labels``,
       or ``LIMIT_UNCLASSIFIED`` (-3) for a state that matches none.

    Optionally ``attrs()`` returning a JSON-able dict that identifies the classifier (stored
    in the Dataset attrs and compared when a store is resumed). A classifier must be
    picklable to run on worker processes.
    """

    @property
    def labels(self) -> Sequence[str]: ...

    @property
    def ranks(self) -> Sequence[int]: ...

    @property
    def critical_values(self) -> Sequence[float]: ...

    def classify(self, theta: Params, loss: FloatArray) -> np.ndarray: ...


def _value_atol(values) -> float:
    v = np.unique(np.asarray(values, dtype=np.float64))
    if v.size < 2:
        return 1e-3 * max(1.0, float(np.max(np.abs(v), initial=0.0)))
    return VALUE_GAP_FRACTION * float(np.min(np.diff(v)))


@dataclass(frozen=True, eq=False)
class CriticalValueClassifier:
    r"""Classify a converged state by its loss alone: the nearest critical value within ``atol``.

    For models without an atlas (e.g. nonlinear networks), given the critical values
    :math:`L_k` of the candidate strata: :math:`\lambda = \arg\min_k |L(\theta) - L_k|` if that
    distance is at most ``atol``, else -3.

    Parameters
    ----------
    values : sequence of float
        Critical values :math:`L_k`.
    labels : sequence of str, optional
        Default ``"L=<value>"``.
    ranks : sequence of int, optional
        Default -1 for each.
    atol : float, optional
        Default: 1/4 of the smallest gap between distinct values.
    """

    values: tuple
    labels: tuple = None  # type: ignore[assignment]
    ranks: tuple = None  # type: ignore[assignment]
    atol: float | None = None

    def __post_init__(self):
        v = tuple(float(x) for x in self.values)
        if not v or not all(np.isfinite(v)):
            raise ValueError(f"`values` must be a non-empty sequence of finite floats; got {self.values!r}.")
        object.__setattr__(self, "values", v)
        labels = tuple(f"L={x:.6g}" for x in v) if self.labels is None else tuple(str(x) for x in self.labels)
        ranks = tuple(-1 for _ in v) if self.ranks is None else tuple(int(r) for r in self.ranks)
        if len(labels) != len(v) or len(ranks) != len(v):
            raise ValueError("`labels` and `ranks` must have one entry per critical value.")
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "ranks", ranks)
        atol = _value_atol(v) if self.atol is None else float(self.atol)
        if not atol > 0:
            raise ValueError(f"`atol` must be positive; got {self.atol!r}.")
        object.__setattr__(self, "atol", atol)

    @property
    def critical_values(self) -> tuple:
        return self.values

    def classify(self, theta: Params, loss: FloatArray) -> np.ndarray:
        loss = np.asarray(loss, dtype=np.float64)
        d = np.abs(loss[:, None] - np.asarray(self.values)[None, :])
        k = np.argmin(d, axis=1)
        ok = d[np.arange(loss.size), k] <= self.atol
        return np.where(ok, k, LIMIT_UNCLASSIFIED).astype(np.int64)

    def attrs(self) -> dict:
        return {"type": "CriticalValueClassifier", "values": list(self.values), "labels": list(self.labels),
                "atol": self.atol}


@dataclass(frozen=True, eq=False)
class StratumClassifier:
    r"""Classify a converged deep-linear state by the atlas: end-to-end product and critical value.

    The state is mapped to canonical coordinates (:meth:`flowgeom.Problem.to_canonical` when the
    flow runs in original coordinates), its end-to-end product :math:`\bar P` is matched to a
    stratum's :math:`\Sigma_S` by :func:`flowgeom.critical.classify_point`, and the match is kept
    only if :math:`|L(\theta) - c - L_S| \le` ``value_atol`` (c = the data offset): the loss must sit
    at the stratum's critical value, not merely close to its product.

    Parameters
    ----------
    problem : flowgeom.Problem
    network : DeepLinearNetwork
        The model whose states are classified (used to unpack them).
    coordinates : {"canonical", "original"}
        The coordinates ``network`` runs in, relative to ``problem``.
    strata : sequence of Stratum, optional
        Candidates; default ``enumerate_strata(problem)`` (all :math:`2^{d_y}`).
    atol : float, optional
        Product tolerance of ``classify_point`` (its default when None).
    value_atol : float, optional
        Default: 1/4 of the smallest gap between distinct critical values.
    loss_offset : float, optional
        c; default ``problem.loss_offset``.
    """

    problem: Any
    network: Any
    coordinates: str
    strata: tuple = None  # type: ignore[assignment]
    atol: float | None = None
    value_atol: float | None = None
    loss_offset: float | None = None

    def __post_init__(self):
        from flowgeom.linear.strata import enumerate_strata

        if self.coordinates not in ("canonical", "original"):
            raise ValueError(f"`coordinates` must be 'canonical' or 'original'; got {self.coordinates!r}.")
        strata = tuple(enumerate_strata(self.problem) if self.strata is None else self.strata)
        if not strata:
            raise ValueError("`strata` must hold at least one Stratum.")
        object.__setattr__(self, "strata", strata)
        va = _value_atol([st.critical_value for st in strata]) if self.value_atol is None else float(self.value_atol)
        object.__setattr__(self, "value_atol", va)
        off = self.problem.loss_offset if self.loss_offset is None else float(self.loss_offset)
        object.__setattr__(self, "loss_offset", float(off))

    @property
    def labels(self) -> tuple:
        return tuple(st.label for st in self.strata)

    @property
    def ranks(self) -> tuple:
        return tuple(st.rank for st in self.strata)

    @property
    def critical_values(self) -> tuple:
        return tuple(float(st.critical_value) for st in self.strata)

    @property
    def kinds(self) -> tuple:
        return tuple(st.kind for st in self.strata)

    def classify(self, theta: Params, loss: FloatArray) -> np.ndarray:
        from flowgeom.linear.strata import classify_point

        theta = np.asarray(theta, dtype=np.float64)
        if theta.shape[0] == 0:
            return np.zeros(0, dtype=np.int64)
        P = self.network.end_to_end(theta)
        if self.coordinates == "original":
            P = self.problem.canonical_end_to_end(P)
        idx = np.asarray(classify_point(self.problem, P, self.strata, atol=self.atol), dtype=np.int64).reshape(-1)
        cv = np.asarray(self.critical_values)[np.maximum(idx, 0)]
        ok = (idx >= 0) & (np.abs(np.asarray(loss) - self.loss_offset - cv) <= self.value_atol)
        return np.where(ok, idx, LIMIT_UNCLASSIFIED).astype(np.int64)

    def attrs(self) -> dict:
        return {
            "type": "StratumClassifier",
            "labels": list(self.labels),
            "coordinates": self.coordinates,
            "atol": self.atol,
            "value_atol": self.value_atol,
            "loss_offset": self.loss_offset,
        }


def _problem_from_network(net):
    """A Problem whose 'original' coordinates are those of a DeepLinearNetwork, or None."""
    from flowgeom.problem import AssumptionError, Problem

    X = np.eye(net.widths[0]) if net.input_factor is None else np.asarray(net.input_factor)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            return Problem.from_data(X, np.asarray(net.target), net.widths)
    except (AssumptionError, ValueError, UserWarning):
        return None


def default_classifier(model, problem=None) -> Classifier:
    """The atlas classifier for deep linear problems/networks (see :class:`StratumClassifier`).

    Raises
    ------
    ValueError
        For a model that is not a deep linear network satisfying the paper's assumptions: pass
        ``classifier=`` (e.g. :class:`CriticalValueClassifier`).
    """
    from flowgeom.models.deep_linear import DeepLinearNetwork

    if problem is not None:
        return StratumClassifier(problem, model, "canonical" if problem.whitened else "original")
    if isinstance(model, DeepLinearNetwork):
        pb = _problem_from_network(model)
        if pb is not None:
            return StratumClassifier(pb, model, "original", loss_offset=model.offset)
    raise ValueError(
        f"no atlas for a {type(model).__name__}: pass `classifier=` (a flowgeom.classifiers.Classifier, e.g. "
        "CriticalValueClassifier(values=[...]) for known critical values)."
    )
