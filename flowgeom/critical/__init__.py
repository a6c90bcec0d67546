r"""The critical set of the loss: strata by learned set, their parametrization, refinement and atlas.

Submodules
----------
base
    :class:`Stratum`, :func:`enumerate_strata`, :func:`classify_point` (closed form, any depth).
"""

from .base import (
    KINDS,
    Stratum,
    classify_point,
    enumerate_strata,
    format_label,
    learned_set,
    parse_label,
)

__all__ = [
    "KINDS",
    "Stratum",
    "classify_point",
    "enumerate_strata",
    "format_label",
    "learned_set",
    "parse_label",
]
