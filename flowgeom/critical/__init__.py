r"""Critical points of any model: refinement, linearization (inertia), multi-start search.

Submodules
----------
refinement
    :func:`refine` (Levenberg–Marquardt / minimum-norm Newton on the gradient) and
    :func:`local_dimension` (dimension of the critical set from a cloud of refined points).
linearization
    :func:`hessian_inertia`, :func:`linearize`: inertia, Morse–Bott test, stable codimension.
search
    :func:`find_critical_points`, :func:`search_critical_points`: multi-start search with
    symmetry deduplication.
"""

from flowgeom.critical.linearization import Inertia, Linearization, hessian_inertia, linearize
from flowgeom.critical.refinement import LocalDimension, RefineResult, local_dimension, refine
from flowgeom.critical.search import find_critical_points, refine_critical, search_critical_points

__all__ = [
    "Inertia", "Linearization", "LocalDimension", "RefineResult", "find_critical_points", "hessian_inertia",
    "linearize", "local_dimension", "refine", "refine_critical", "search_critical_points",
]
