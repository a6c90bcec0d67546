r"""The critical set of the loss: strata by learned set, their parametrization, refinement and atlas.

Submodules
----------
base
    :class:`Stratum`, :func:`enumerate_strata`, :func:`classify_point` (closed form, any depth).
manifolds
    :class:`StratumChart`: maps from free parameters onto families of critical points (Lemma 2,
    equation (8) for H = 1; outer / tight / zero-layer families for H >= 2), tangent bases, gauge.
refine
    :func:`refine` (Levenberg–Marquardt / minimum-norm Newton on the gradient, any Model) and
    :func:`local_dimension` (dimension of the critical set from a cloud of refined points).
atlas
    :func:`build_strata_dataset` (the ``strata`` Dataset) and :func:`strata_table`.
"""

from .atlas import build_strata_dataset, paper_bounds, strata_table
from .base import (
    KINDS,
    Stratum,
    classify_point,
    enumerate_strata,
    format_label,
    learned_set,
    parse_label,
)
from .manifolds import StratumChart, apply_gauge, charts_for_stratum, family_names, make_chart, random_gauge
from .refine import LocalDimension, RefineResult, local_dimension, refine

__all__ = [
    "KINDS",
    "LocalDimension",
    "RefineResult",
    "Stratum",
    "StratumChart",
    "apply_gauge",
    "build_strata_dataset",
    "charts_for_stratum",
    "classify_point",
    "enumerate_strata",
    "family_names",
    "format_label",
    "learned_set",
    "local_dimension",
    "make_chart",
    "paper_bounds",
    "parse_label",
    "random_gauge",
    "refine",
    "strata_table",
]
