r"""The gradient flow :math:`\dot\theta = -\nabla L(\theta)` and gradient descent, for ensembles.

Public names: :func:`integrate`, :func:`gradient_descent`, :class:`FlowOptions`,
:class:`SaveAt`, :class:`Trajectory`, :class:`Status` (with ``Status.X.message``),
``STATUS_MESSAGES`` (derived from the enum), ``METHODS`` (the method registry, name or alias
-> :class:`MethodInfo`), :func:`numba_available`.

Private modules, one concept each: ``_status`` (statuses), ``_controller`` (the step-size
controller and its constants), ``_methods`` (registry), ``_options`` (FlowOptions),
``_base`` (SaveAt, Trajectory, the recorder, DOPRI5 tableau), ``_explicit`` (numpy DOPRI5,
GD), ``_implicit`` (Gauss--Legendre), ``_rosenbrock`` (RODAS4, stiff), ``_stiffness``
(``method="auto"``), ``_numba`` (compiled kernels), ``_numba_soa`` (compiled DOPRI5 on blocks of
trajectories), ``_numba_rosenbrock`` (compiled RODAS4, dense, n <= 200), ``_numba_compile`` (the
compile report), ``_integrate`` (entry points).
"""

from flowgeom.flow._integrate import (
    STATUS_MESSAGES,
    SaveAt,
    Status,
    Trajectory,
    gradient_descent,
    integrate,
    numba_available,
)
from flowgeom.flow._methods import METHODS, MethodInfo
from flowgeom.flow._options import FlowOptions

__all__ = ["METHODS", "STATUS_MESSAGES", "FlowOptions", "MethodInfo", "SaveAt", "Status", "Trajectory",
           "gradient_descent", "integrate", "numba_available"]
