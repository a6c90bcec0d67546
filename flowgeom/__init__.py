"""flowgeom: gradient descent on a network's loss as a dynamical system.

Public API; each name is re-exported here exactly once.
"""

from ._version import __version__
from .models import Model, hessian_from_hvp
from .networks import DeepLinearNetwork
from .problem import AssumptionError, Problem

__all__ = [
    "__version__",
    "AssumptionError",
    "DeepLinearNetwork",
    "Model",
    "Problem",
    "hessian_from_hvp",
]
