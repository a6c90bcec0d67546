"""flowgeom: gradient descent on a network's loss as a dynamical system.

The public API; each name is re-exported here exactly once. ``flowgeom.plot`` (matplotlib)
is not imported here: ``import flowgeom`` never loads matplotlib.
"""

from ._version import __version__
from .basins import basin_fractions, clopper_pearson_interval, sample_basins, wilson_interval
from .classifiers import Classifier, CriticalValueClassifier, StratumClassifier
from .claims import Claim, claims_dataset, claims_markdown, verify_claims
from .critical import (
    Stratum,
    build_strata_dataset,
    classify_point,
    enumerate_strata,
    local_dimension,
    refine,
    strata_table,
)
from .integrate import (
    STATUS_MESSAGES,
    SaveAt,
    Status,
    Trajectory,
    flow_norm_bound,
    gradient_descent,
    integrate,
    safe_learning_rate,
)
from .io import load_dataset, save_dataset
from .jax_model import JaxModel
from .linearize import Inertia, Linearization, hessian_inertia, linearize
from .mlp import MLP, teacher_student
from .models import Model, hessian_from_hvp
from .networks import DeepLinearNetwork
from .nonlinear_atlas import (
    CriticalClassClassifier,
    CriticalClassIdentifier,
    mlp_for_problem,
    nonlinear_atlas,
    nonlinear_strata_dataset,
)
from .nonlinear_critical import find_critical_points, refine_critical, search_critical_points
from .problem import AssumptionError, Problem
from .samplers import make_initializer, sample_initializations
from .transitions import (
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
