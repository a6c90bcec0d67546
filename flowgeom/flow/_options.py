r"""Integration options as one immutable, validated record shared by every caller.

:class:`FlowOptions` replaces the long keyword lists of :func:`flowgeom.flow.integrate` (and
of the stages that call it): build it once, pass ``options=``, derive variants with
:meth:`FlowOptions.replace`, and write :meth:`FlowOptions.attrs` into a Dataset.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from flowgeom._validate import InputError, check_choice, check_int, check_positive
from flowgeom.flow._methods import resolve_method

__all__ = ["FlowOptions"]

_EPS100 = 100 * 2.220446049250313e-16


@dataclass(frozen=True)
class FlowOptions:
    r"""How the gradient flow :math:`\dot\theta = -\nabla L(\theta)` is integrated.

    Parameters
    ----------
    method : str, default "dopri5"
        A name or alias of :data:`flowgeom.flow.METHODS`: ``"dopri5"``, ``"gauss-legendre"``
        (= ``"invariant"``), ``"implicit-midpoint"``, ``"rosenbrock"`` (= ``"stiff"``) or
        ``"auto"``; stored canonical (aliases resolved). ``"gd"`` is gradient descent (used by
        :func:`flowgeom.flow.gradient_descent` records; needs ``lr``).
    rtol, atol : float, default 1e-6, 1e-9
        Local error tolerances (RMS of err / (atol + rtol * max(|y|, |y_new|)) <= 1).
    grad_tol : float, default 1e-10
        Status CONVERGED once :math:`\|\nabla L\| \le` ``grad_tol``; 0 disables the test.
    max_steps : int, default 100_000
        Budget of attempted steps per trajectory (status MAX_STEPS).
    max_norm : float, default 1e8
        Status DIVERGED when :math:`\|\theta\|` exceeds it (inf allowed).
    backend : {"auto", "numpy", "numba"}, default "auto"
        Implementation; see :func:`flowgeom.flow.integrate`.
    dt0 : float or None, default None
        Initial (or, with ``adaptive=False``, fixed) step; None chooses it per trajectory.
    adaptive : bool, default True
        False takes fixed steps ``dt0`` (order checks).
    newton_tol : float, default 1e-13
        Implicit collocation methods: tolerance of the stage solve.
    solver : {"auto", "newton", "fixed-point", "krylov", "dense", "structured"}, default "auto"
        Linear/nonlinear solver of the implicit methods ("newton"/"fixed-point" for Gauss,
        "dense"/"krylov"/"structured" for Rosenbrock; "auto" picks by ``n_params`` and by what
        the model offers).
    lr : float or None, default None
        Step size of gradient descent (``method="gd"`` only).

    Raises
    ------
    InputError
        For a bad value (the message names the field and the fix).
    """

    method: str = "dopri5"
    rtol: float = 1e-6
    atol: float = 1e-9
    grad_tol: float = 1e-10
    max_steps: int = 100_000
    max_norm: float = 1e8
    backend: str = "auto"
    dt0: float | None = None
    adaptive: bool = True
    newton_tol: float = 1e-13
    solver: str = "auto"
    lr: float | None = None

    def __post_init__(self):
        put = object.__setattr__
        if isinstance(self.method, str) and self.method.lower() == "gd":
            put(self, "method", "gd")
            if self.lr is None:
                raise InputError("`method='gd'` needs a step size: pass `lr`.")
        else:
            put(self, "method", resolve_method(self.method).name)
        rtol = check_positive("rtol", self.rtol)
        if rtol < _EPS100:
            raise InputError(f"`rtol` must be at least 100 * machine epsilon (2.2e-14); got {self.rtol!r}.")
        put(self, "rtol", rtol)
        put(self, "atol", check_positive("atol", self.atol, allow_zero=True))
        put(self, "grad_tol", check_positive("grad_tol", self.grad_tol, allow_zero=True))
        put(self, "max_steps", check_int("max_steps", self.max_steps, minimum=1))
        put(self, "max_norm", check_positive("max_norm", self.max_norm, allow_inf=True))
        put(self, "backend", check_choice("backend", self.backend, ("auto", "numpy", "numba")))
        if self.dt0 is not None:
            put(self, "dt0", check_positive("dt0", self.dt0))
        if not isinstance(self.adaptive, bool):
            raise InputError(f"`adaptive` must be True or False; got {self.adaptive!r}.")
        if not self.adaptive and self.dt0 is None:
            raise InputError("`adaptive=False` needs a fixed step: pass `dt0`.")
        put(self, "newton_tol", check_positive("newton_tol", self.newton_tol))
        put(self, "solver", check_choice("solver", self.solver, ("auto", "newton", "fixed-point", "krylov", "dense",
                                                                      "structured")))
        if self.lr is not None:
            put(self, "lr", check_positive("lr", self.lr))

    def replace(self, **changes) -> FlowOptions:
        """A copy with ``changes`` applied (and validated); unknown names raise InputError."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise InputError(
                f"unknown flow option(s) {unknown}; the fields are "
                f"{[f.name for f in dataclasses.fields(self)]}."
            )
        return dataclasses.replace(self, **changes)

    def attrs(self, prefix: str = "flow_") -> dict:
        """The options as a flat dict fit for netCDF/JSON attrs (None -> "none", bool -> int)."""
        out = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if v is None:
                v = "none"
            elif isinstance(v, bool):
                v = int(v)
            out[prefix + f.name] = v
        return out
