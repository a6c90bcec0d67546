"""flowgeom: gradient descent on a network's loss as a dynamical system.

The public API; each name is re-exported here exactly once, and imported on first use
(:mod:`flowgeom._lazy`): ``import flowgeom`` loads none of numba, scipy, xarray or matplotlib, and
a command loads only what it runs. ``flowgeom.plot`` (matplotlib) is never re-exported.
"""

from flowgeom._lazy import attach as _attach
from flowgeom._version import __version__

# name -> module, imported on first use (PEP 562): a command loads only what it runs
_EXPORTS = {
    "flowgeom.audit": ("Claim", "claims_dataset", "claims_markdown", "verify_claims"),
    "flowgeom.basins": ("basin_fractions", "clopper_pearson_interval", "sample_basins", "wilson_interval"),
    "flowgeom.basins.samplers": ("make_initializer", "sample_initializations"),
    "flowgeom.critical": (
        "Atlas", "CriticalSet", "Inertia", "Limit", "Linearization", "SearchedAtlas", "find_critical_points",
        "hessian_inertia", "linearize", "local_dimension", "refine", "refine_critical", "search_critical_points",
        "strata_dataset",
    ),
    "flowgeom.flow": ("STATUS_MESSAGES", "FlowOptions", "SaveAt", "Status", "Trajectory", "gradient_descent", "integrate"),
    "flowgeom.io": ("describe", "load_dataset", "save_dataset"),
    "flowgeom.linear": (
        "ClosedFormAtlas", "Stratum", "build_strata_dataset", "classify_point", "enumerate_strata", "flow_norm_bound",
        "safe_learning_rate", "strata_table",
    ),
    "flowgeom.models": (
        "MLP", "DeepLinearNetwork", "DiagonalLinearNetwork", "JaxModel", "Model", "hessian_from_hvp", "mlp_for_problem",
        "teacher_student",
    ),
    "flowgeom.pipeline": ("atlas",),
    "flowgeom.problem": ("AssumptionError", "Problem"),
    "flowgeom.transitions": (
        "AtlasIdentifier", "Identifier", "TransitionGraph", "Visits", "build_transition_graph", "detect_visits",
        "read_graphml", "sample_transitions", "save_transitions", "transition_theory",
    ),
}
__getattr__, __dir__ = _attach(__name__, _EXPORTS)

__all__ = [
    "__version__",
    "AssumptionError",
    "Atlas",
    "atlas",
    "AtlasIdentifier",
    "basin_fractions",
    "build_strata_dataset",
    "build_transition_graph",
    "Claim",
    "claims_dataset",
    "claims_markdown",
    "classify_point",
    "clopper_pearson_interval",
    "ClosedFormAtlas",
    "CriticalSet",
    "DeepLinearNetwork",
    "DiagonalLinearNetwork",
    "FlowOptions",
    "describe",
    "detect_visits",
    "enumerate_strata",
    "find_critical_points",
    "flow_norm_bound",
    "gradient_descent",
    "hessian_from_hvp",
    "hessian_inertia",
    "Identifier",
    "Inertia",
    "integrate",
    "JaxModel",
    "Limit",
    "Linearization",
    "linearize",
    "load_dataset",
    "local_dimension",
    "make_initializer",
    "MLP",
    "mlp_for_problem",
    "Model",
    "Problem",
    "read_graphml",
    "refine",
    "refine_critical",
    "safe_learning_rate",
    "sample_basins",
    "sample_initializations",
    "sample_transitions",
    "save_dataset",
    "save_transitions",
    "SaveAt",
    "search_critical_points",
    "SearchedAtlas",
    "Status",
    "STATUS_MESSAGES",
    "strata_dataset",
    "strata_table",
    "Stratum",
    "teacher_student",
    "Trajectory",
    "transition_theory",
    "TransitionGraph",
    "verify_claims",
    "Visits",
    "wilson_interval",
]
