r"""How a trajectory ended: one enum that carries its messages (diffrax's ``RESULTS`` style).

The integer codes are the single source of truth: the numpy paths compare with the members,
and the compiled numba kernels import the module-level ints below (numba captures them as
compile-time constants), so no code re-types them.
"""

from __future__ import annotations

import enum

__all__ = ["STATUS_MESSAGES", "Status"]

_MESSAGES = {
    0: "converged: ||grad L|| <= grad_tol (a critical point was reached, to tolerance)",
    1: "reached t1 without converging",
    2: "diverged: non-finite state or ||theta|| > max_norm (or GD loss above max_loss)",
    3: "step budget max_steps exhausted",
    4: "failed: step size underflow or nonlinear-solve failure",
}


class Status(enum.IntEnum):
    """How a trajectory ended. Stored as int8 in :attr:`Trajectory.status`; :attr:`message` explains it."""

    CONVERGED = 0
    REACHED_T1 = 1
    DIVERGED = 2
    MAX_STEPS = 3
    FAILED = 4

    @property
    def message(self) -> str:
        """Human-readable meaning of the status."""
        return _MESSAGES[int(self)]


#: ``{Status: message}``, derived from the enum (kept for callers of the old interface).
STATUS_MESSAGES: dict[int, str] = {s: s.message for s in Status}

# Plain ints for compiled kernels (captured as globals by numba's njit).
RUNNING = -1  # internal status of a trajectory still being integrated
CONVERGED = int(Status.CONVERGED)
REACHED_T1 = int(Status.REACHED_T1)
DIVERGED = int(Status.DIVERGED)
MAX_STEPS = int(Status.MAX_STEPS)
FAILED = int(Status.FAILED)
