"""Shared helpers of :mod:`flowgeom.transitions` (re-exported from the package-wide modules)."""

from flowgeom._types import str_array as _objarr  # noqa: F401
from flowgeom._validate import check_positive as _check_positive  # noqa: F401
