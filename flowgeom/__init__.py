"""flowgeom: gradient descent on a network's loss as a dynamical system.

The public API; each name is re-exported here exactly once. ``flowgeom.plot`` (matplotlib)
is not imported here: ``import flowgeom`` never loads matplotlib.
"""

from flowgeom._version import __version__
from flowgeom.audit import Claim, claims_dataset, claims_markdown, verify_claims
from flowgeom.basins import basin_fractions, clopper_pearson_interval, sample_basins, wilson_interval
from flowgeom.basins.classifiers import Classifier, CriticalValueClassifier, StratumClassifier
from flowgeom.basins.samplers import make_initializer, sample_initializations
from flowgeom.critical import (
    Inertia,
    Linearization,
    find_critical_points,
    hessian_inertia,
    linearize,
    local_dimension,
    refine,
    refine_critical,
    search_critical_points,
)
from flowgeom.flow import STATUS_MESSAGES, SaveAt, Status, Trajectory, gradient_descent, integrate
from flowgeom.io import load_dataset, save_dataset
from flowgeom.linear import (
    Stratum,
    build_strata_dataset,
    classify_point,
    enumerate_strata,
    flow_norm_bound,
    safe_learning_rate,
    strata_table,
)
from flowgeom.models import MLP, DeepLinearNetwork, JaxModel, Model, hessian_from_hvp, teacher_student
from flowgeom.nonlinear_atlas import (
    CriticalClassClassifier,
    CriticalClassIdentifier,
    mlp_for_problem,
    nonlinear_atlas,
    nonlinear_strata_dataset,
)
from flowgeom.problem import AssumptionError, Problem
from flowgeom.transitions import (
    AtlasIdentifier,
    Identifier,
    RefineIdentifier,
    TransitionGraph,
    Visits,
    build_transition_graph,
    detect_visits,
    read_graphml,
    sample_transitions,
    save_transitions,
    transition_theory,
)

__all__ = [
    "__version__",
    # problems and models
    "AssumptionError",
    "DeepLinearNetwork",
    "JaxModel",
    "MLP",
    "Model",
    "Problem",
    "hessian_from_hvp",
    "mlp_for_problem",
    "teacher_student",
    # integration
    "STATUS_MESSAGES",
    "SaveAt",
    "Status",
    "Trajectory",
    "flow_norm_bound",
    "gradient_descent",
    "integrate",
    "safe_learning_rate",
    # critical sets and linearization
    "Inertia",
    "Linearization",
    "Stratum",
    "build_strata_dataset",
    "classify_point",
    "enumerate_strata",
    "find_critical_points",
    "hessian_inertia",
    "linearize",
    "local_dimension",
    "nonlinear_strata_dataset",
    "refine",
    "refine_critical",
    "search_critical_points",
    "strata_table",
    # basins
    "Classifier",
    "CriticalClassClassifier",
    "CriticalValueClassifier",
    "StratumClassifier",
    "basin_fractions",
    "clopper_pearson_interval",
    "make_initializer",
    "sample_basins",
    "sample_initializations",
    "wilson_interval",
    # transitions
    "AtlasIdentifier",
    "CriticalClassIdentifier",
    "Identifier",
    "RefineIdentifier",
    "TransitionGraph",
    "Visits",
    "build_transition_graph",
    "detect_visits",
    "read_graphml",
    "sample_transitions",
    "save_transitions",
    "transition_theory",
    # pipelines, io and the audit
    "Claim",
    "claims_dataset",
    "claims_markdown",
    "load_dataset",
    "nonlinear_atlas",
    "save_dataset",
    "verify_claims",
]
