r"""The registry of integration methods: one record per method, aliases resolved in one place.

``METHODS`` maps every accepted name (aliases included) to a :class:`MethodInfo`; unknown
names raise one :class:`~flowgeom._validate.InputError` that lists the registry.
"""

from __future__ import annotations

from dataclasses import dataclass

from flowgeom._validate import InputError

__all__ = ["METHODS", "MethodInfo", "resolve_method"]


@dataclass(frozen=True)
class MethodInfo:
    """What a method is.

    Attributes
    ----------
    name : str
        Canonical name (``Trajectory.method`` holds it).
    order : int
        Classical order of the propagated solution (0 for the automatic choice).
    implicit : bool
        Solves linear or nonlinear systems with the Jacobian :math:`-\\nabla^2 L`.
    needs_hessian : bool
        Calls ``model.hessian`` (or ``model.hvp`` for large models).
    conserves_quadratic : bool
        Conserves every quadratic first integral (e.g. the Lemma 1 invariants) exactly.
    l_stable : bool
        Its stability function vanishes at infinity (stiff components are damped in one step).
    description : str
    """

    name: str
    order: int
    implicit: bool
    needs_hessian: bool
    conserves_quadratic: bool
    l_stable: bool
    description: str


_RECORDS = (
    MethodInfo("dopri5", 5, False, False, False, False,
               "explicit Dormand-Prince 5(4), dense output of order 4"),
    MethodInfo("gauss-legendre", 4, True, True, True, False,
               "2-stage Gauss-Legendre collocation, conserves quadratic invariants"),
    MethodInfo("implicit-midpoint", 2, True, True, True, False,
               "1-stage Gauss collocation, conserves quadratic invariants"),
    MethodInfo("rosenbrock", 4, True, True, False, True,
               "RODAS4 Rosenbrock 4(3), L-stable, exact Hessian as Jacobian, for stiff flows"),
    MethodInfo("auto", 0, False, False, False, False,
               "dopri5 or rosenbrock, chosen per ensemble from a stiffness estimate at t0"),
)
_ALIASES = {"invariant": "gauss-legendre", "stiff": "rosenbrock", "rodas4": "rosenbrock"}

#: name or alias -> :class:`MethodInfo`
METHODS: dict[str, MethodInfo] = {r.name: r for r in _RECORDS}
METHODS.update({alias: METHODS[target] for alias, target in _ALIASES.items()})


def resolve_method(method) -> MethodInfo:
    """The record of ``method`` (case-insensitive, aliases allowed); InputError listing the registry otherwise."""
    key = method.lower() if isinstance(method, str) else None
    if key not in METHODS:
        listing = "; ".join(
            f"{name!r}" + (f" (= {METHODS[name].name!r})" if METHODS[name].name != name else "")
            for name in METHODS
        )
        raise InputError(f"`method` must be one of {listing}; got {method!r}.")
    return METHODS[key]
