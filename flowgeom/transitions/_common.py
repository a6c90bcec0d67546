"""Shared helpers of :mod:`flowgeom.transitions`: the check of positive scalar arguments and the
object arrays of strings that the Datasets store labels in."""

from __future__ import annotations

import numpy as np


def _check_positive(name, value, allow_zero=False):
    v = float(value)
    if not np.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        raise ValueError(f"`{name}` must be a finite {'non-negative' if allow_zero else 'positive'} float; got {value!r}.")
    return v


def _objarr(items) -> np.ndarray:
    a = np.empty(len(items), dtype=object)
    a[:] = [str(x) for x in items]
    return a
