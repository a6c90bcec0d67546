r"""Critical points of any model: refinement, linearization (inertia), multi-start search.

Submodules
----------
dimension
    :func:`local_dimension`: the dimension of the critical set from a cloud of refined points.
refinement
    :func:`refine_critical` (batched; :func:`refine` wraps one point; Levenberg–Marquardt / minimum-norm Newton on the gradient) and
    :func:`local_dimension` (dimension of the critical set from a cloud of refined points).
linearization
    :func:`hessian_inertia`, :func:`linearize`: inertia, Morse–Bott test, stable codimension.
search
    :func:`find_critical_points`, :func:`search_critical_points`: multi-start search with
    symmetry deduplication.
atlas
    The seam: the :class:`Atlas` contract, :class:`CriticalSet`, the one ``kind`` rule.
coverage
    :class:`Coverage`, :func:`good_turing_p_new`: how complete a search is.
searched
    :class:`SearchedAtlas`: the atlas of any model from a search.
dataset
    :func:`strata_dataset`: the ``strata`` Dataset of any atlas.
"""

from flowgeom._lazy import attach as _attach

# name -> module, imported on first use (flowgeom._lazy)
_EXPORTS = {
    "flowgeom.critical.atlas": ("KINDS", "UNCLASSIFIED", "Atlas", "CriticalSet", "Limit", "set_kind"),
    "flowgeom.critical.dataset": ("strata_dataset",),
    "flowgeom.critical.linearization": ("Inertia", "Linearization", "hessian_inertia", "is_morse_bott", "linearize"),
    "flowgeom.critical.dimension": ("LocalDimension", "local_dimension"),
    "flowgeom.critical.refinement": (
        "PointRefinement", "RefineResult", "RefineStatus", "point_quality", "refine", "refine_critical"
    ),
    "flowgeom.critical.search": ("find_critical_points", "search_critical_points"),
    "flowgeom.critical.coverage": ("COVERAGE_TARGET", "Coverage", "good_turing_p_new", "search_coverage"),
    "flowgeom.critical.searched": ("SearchedAtlas", "search_for_atlas"),
}
__getattr__, __dir__ = _attach(__name__, _EXPORTS)

__all__ = [
    "COVERAGE_TARGET", "Coverage", "PointRefinement", "RefineStatus", "good_turing_p_new", "point_quality",
    "search_coverage", "Atlas", "CriticalSet", "KINDS", "Limit", "SearchedAtlas", "UNCLASSIFIED", "is_morse_bott", "search_for_atlas",
    "set_kind", "strata_dataset",
    "Inertia", "Linearization", "LocalDimension", "RefineResult", "find_critical_points", "hessian_inertia",
    "linearize", "local_dimension", "refine", "refine_critical", "search_critical_points",
]
