"""The audit's building blocks: the :class:`Claim` row, verdicts, tolerances and the run context."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from flowgeom.flow import SaveAt, integrate
from flowgeom.problem import Problem

VERDICTS = ("holds", "holds, bound loose", "holds with correction", "contradicted")

# Tolerances of the audit. The flow is integrated far tighter than any effect measured.
AUDIT_RTOL = 1e-10
AUDIT_ATOL = 1e-12
# A conserved quantity "is conserved" when its relative drift stays below this (1e4 x rtol:
# the global error of a 5th-order method at rtol 1e-10 over the horizons used here).
INVARIANT_DRIFT_TOL = 1e-6
# "Converged" for the audit: ||grad L|| below this. An explicit adaptive scheme near a stable
# critical point settles into step sizes at its stability limit, where the state keeps noise of
# the order of the tolerances; at atol ~1e-12 the gradient norm floors near 1e-10, so the test is
# set well above that floor and far below any plateau's gradient.
CONVERGED_GRAD = 1e-8
# Proposition 1 allows slow (t^-alpha) convergence, and large initializations are stiff for an
# explicit scheme; a trajectory counts as converging when it ends this close to a critical point.
NEAR_CRITICAL_GRAD = 1e-4


@dataclass(frozen=True)
class Claim:
    """One row of the audit.

    Attributes
    ----------
    key : str
        Short identifier (``"lemma1"``, ``"prop2_iii"``, ...).
    source : str
        Where the paper states it (``"Lemma 1"``).
    statement : str
        The claim, paraphrased.
    measured : str
        What was measured, with the numbers.
    problems : str
        The problems (widths, singular values, samples) it was measured on.
    verdict : str
        One of :data:`VERDICTS`.
    numbers : dict
        The key measured numbers (floats / ints), for the Dataset.
    """

    key: str
    source: str
    statement: str
    measured: str
    problems: str
    verdict: str
    numbers: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"`verdict` must be one of {VERDICTS}; got {self.verdict!r}.")


@dataclass
class _Context:
    quick: bool
    seed: int
    cache: dict = field(default_factory=dict)

    def rng(self, salt: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, salt])

    def n(self, full: int, quick: int) -> int:
        return quick if self.quick else full


def _fmt(x: float) -> str:
    return f"{x:.3g}"


def _describe(problem: Problem) -> str:
    s = ", ".join(f"{v:g}" for v in problem.singular_values)
    return f"widths {problem.widths}, s = ({s})" + ("" if problem.whitened else " (data, not whitened)")


def _tight(model, theta0, t1, ctx, *, n_log=60):
    return integrate(
        model, theta0, t1, rtol=AUDIT_RTOL, atol=AUDIT_ATOL, saveat=SaveAt(n_log=n_log), grad_tol=1e-11
    )
