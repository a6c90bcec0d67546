r"""The gradient flow :math:`\dot\theta = -\nabla L(\theta)` and gradient descent, for ensembles.

Public names: :func:`integrate`, :func:`gradient_descent`, :class:`SaveAt`,
:class:`Trajectory`, :class:`Status`. The implementation modules are private
(``_integrate``, ``_base``, ``_explicit``, ``_implicit``, ``_numba``).
"""

from flowgeom.flow._integrate import (
    METHODS,
    STATUS_MESSAGES,
    SaveAt,
    Status,
    Trajectory,
    gradient_descent,
    integrate,
    numba_available,
)

__all__ = ["METHODS", "STATUS_MESSAGES", "SaveAt", "Status", "Trajectory", "gradient_descent", "integrate",
           "numba_available"]
