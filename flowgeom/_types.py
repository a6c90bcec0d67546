"""Type aliases shared across flowgeom."""

from __future__ import annotations

from typing import Sequence, Union

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.floating]
"""A float ndarray; shapes are given in each docstring."""

Params = FloatArray
"""Flat parameter vector(s), shape ``(..., n_params)``; leading axes are batch axes."""

Weights = Sequence[FloatArray]
"""Weight matrices ``W[0] .. W[H]`` (layers j = 1..H+1), shapes ``(..., d_j, d_{j-1})``."""

ArrayLike = Union[npt.ArrayLike, FloatArray]


def str_array(items) -> np.ndarray:
    """A 1-D object array of Python ``str`` (how flowgeom Datasets store labels)."""
    a = np.empty(len(items), dtype=object)
    a[:] = [str(x) for x in items]
    return a
