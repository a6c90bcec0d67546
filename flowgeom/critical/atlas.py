r"""The atlas: the critical sets of a model and where a parameter vector sits among them.

This is the one seam of flowgeom. Let :math:`L(\theta)` be the loss of a
:class:`flowgeom.models.Model` and :math:`\mathrm{Crit}(L) = \{\theta : \nabla L(\theta) = 0\}`.
An *atlas* lists the connected pieces of :math:`\mathrm{Crit}(L)` that matter (the *critical
sets*: for a deep linear network the strata labelled by learned singular modes, for any other
model the classes a search found) and answers one question for the rest of the pipeline,

.. math:: \mathrm{locate}(\theta) = \begin{cases} k & \theta \text{ is at (or, for a plateau, near) critical set } k \\
          -3 & \text{no known critical set} \end{cases}

Basins, transitions, the ``strata`` Dataset, plots and the command line are written once
against this contract; they never ask which model they run on. Two implementations ship:
:class:`flowgeom.linear.ClosedFormAtlas` (deep linear networks: every stratum in closed form)
and :class:`flowgeom.critical.SearchedAtlas` (any model: a multi-start search that can grow).

For developers
--------------
In order to implement an atlas you need to provide (the model of the design is
Attractors.jl's ``BasinMap``):

1. ``model``: the :class:`~flowgeom.models.Model` whose flow the pipeline integrates (in the
   coordinates the flow runs in).
2. ``sets()``: the critical sets known now, a list of :class:`CriticalSet` in display order
   (critical value descending). Each carries a ``key``: an int that identifies the set for the
   lifetime of the atlas, the same in every process (keys travel from worker processes back to
   the parent; they must not depend on discovery order in a worker).
3. ``get(key)``: the :class:`CriticalSet` with that key (a closed-form atlas may build it on
   demand: every key is valid).
4. ``locate(theta, loss, *, plateau=False)``: batched, ``theta`` (N, n) and ``loss`` (N,) ->
   int64 keys (N,), or ``UNCLASSIFIED`` (-3). With ``plateau=False`` the states are limits of
   the flow (the gradient has converged): a match must be tight. With ``plateau=True`` they are
   plateau points of a trajectory lingering near a saddle: a match may be loose, but a slow
   passage that is near no critical set must give -3. ``locate`` never changes the atlas, so it
   can run on worker processes (the atlas must be picklable).
5. ``grow(theta, *, plateau=False)``: called in the parent process only, in a deterministic
   order, with points that ``locate`` left unclassified; refines them to critical points and adds
   the new sets. Returns their keys (or -3 where a point is not near a critical point; with
   ``plateau`` also where the refined point is too far to explain a plateau). An atlas that is
   complete (closed form) only locates.
6. ``measure(keys)``: linearize the listed sets (inertia at sampled points, local dimension,
   Morse–Bott test, kind) and return them; unmeasured sets have ``measured=False``.
7. ``attrs()``: JSON-able provenance for the Datasets.
8. ``loss_offset``: the constant the model's loss carries above the atlas's critical values
   (the part of the data no network can fit); 0.0 for most models.

Critical values are reported without that offset (for deep linear networks they are the
paper's canonical values :math:`\tfrac12\sum_{i\notin S}s_i^2`); ``locate`` receives the model's
loss, offset included.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence, runtime_checkable

import numpy as np

from flowgeom._types import FloatArray, Params
from flowgeom.models.base import Model

__all__ = [
    "Atlas",
    "CriticalSet",
    "KINDS",
    "Limit",
    "UNCLASSIFIED",
    "set_kind",
]


class Limit(enum.IntEnum):
    """Outcomes of a sample that are not a critical set (stored as negative ``limit`` codes)."""

    UNCONVERGED = -1
    DIVERGED = -2
    UNCLASSIFIED = -3

    @property
    def message(self) -> str:
        return _LIMIT_MESSAGES[self]


_LIMIT_MESSAGES = {
    Limit.UNCONVERGED: "unconverged: the gradient had not converged by the last horizon",
    Limit.DIVERGED: "diverged: non-finite state or ||theta|| > max_norm",
    Limit.UNCLASSIFIED: "unclassified: converged to a critical point outside every known critical set",
}

UNCLASSIFIED = int(Limit.UNCLASSIFIED)

KINDS = (
    "global_min",
    "local_min",
    "strict_saddle",
    "non_strict_saddle",
    "degenerate",
    "undecided",
    "gradient_flat",
)
r"""The one vocabulary of ``kind`` (see :func:`set_kind`):

- ``global_min``: the set is a global minimum (known in closed form, or certified by a zero loss,
  or the lowest local minimum a search found: the strata Dataset says which in ``certified``);
- ``local_min``: :math:`n_- = 0` and Morse–Bott at every measured point, not the global minimum;
- ``strict_saddle``: a negative Hessian eigenvalue at every measured point;
- ``non_strict_saddle``: not a minimum (known), yet some point has no negative eigenvalue;
- ``degenerate``: :math:`n_- = 0` somewhere and not Morse–Bott there: second order cannot tell a
  minimum from a non-strict saddle;
- ``undecided``: no measured point has a decided inertia (no spectral gap at the tolerance);
- ``gradient_flat``: not a critical set: a searched atlas's record of where refinement stalled with the
  gradient in the Hessian's near-kernel (Frye et al., Neural Computation 33:1469, 2021); never located."""


def set_kind(
    n_negative: Sequence[int],
    morse_bott: Sequence[bool],
    decided: Sequence[bool],
    *,
    minimum: bool | None = None,
    global_min: bool = False,
) -> str:
    r"""The kind of a critical set from the linearization at its measured points (the one rule).

    Parameters
    ----------
    n_negative, morse_bott, decided : sequences, one entry per measured point
        :math:`n_-` of the Hessian, the Morse–Bott test
        (:func:`flowgeom.critical.linearization.is_morse_bott`) and whether the inertia was decided.
    minimum : bool or None, default None
        What is known beyond second order: True, the set is a local minimum; False, it is not (a
        closed form says so); None, unknown (second order decides where it can).
    global_min : bool, default False
        The set is known (or certified) to be a global minimum.

    Returns
    -------
    str
        One of :data:`KINDS`.
    """
    if global_min:
        return "global_min"
    nn = np.asarray(n_negative, dtype=np.int64)
    dec = np.asarray(decided, dtype=bool)
    mb = np.asarray(morse_bott, dtype=bool)
    if nn.size == 0 or not dec.any():
        return "undecided" if minimum is None else ("local_min" if minimum else "undecided")
    nn, mb = nn[dec], mb[dec]
    if np.all(nn > 0):
        return "strict_saddle"
    if minimum is False:
        return "non_strict_saddle"
    if minimum is True or (np.all(nn == 0) and np.all(mb)):
        return "local_min"
    return "degenerate"


@dataclass(frozen=True, eq=False)
class CriticalSet:
    r"""One critical set of an atlas: identity, value, and the linearization at sampled points.

    Attributes
    ----------
    key : int
        Identifies the set within its atlas, in every process (see :class:`Atlas`).
    label : str
        ``"{0,2}"`` (deep linear stratum: learned modes) or ``"c3"`` (a searched class).
    critical_value : float
        The loss on the set, without the atlas's ``loss_offset``.
    rank : int
        Rank of the end-to-end product on the set; -1 where it means nothing.
    kind : str
        One of :data:`KINDS` (from :func:`set_kind`); ``"undecided"`` until measured.
    measured : bool
        Whether ``points`` holds the linearization at sampled points.
    points : dict of str to ndarray
        Per-point columns, each of length k (k sampled points): at least ``theta`` (k, n) in the
        flow's coordinates, ``grad_norm``, ``loss``, ``n_negative``, ``n_zero``, ``n_positive``,
        ``decided``, ``manifold_dim`` (-1 unknown), ``morse_bott``, ``stable_codim`` (-1 undecided),
        ``stable_codim_lower``; implementations add their own (family, layer ranks, flatness).
    info : dict
        Per-set extras written to the ``strata`` Dataset as variables of the same name
        (e.g. ``kind_closed_form``, ``count``, ``certified``).
    """

    key: int
    label: str
    critical_value: float
    rank: int = -1
    kind: str = "undecided"
    measured: bool = False
    points: dict = field(default_factory=dict, repr=False)
    info: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"`kind` must be one of {KINDS}; got {self.kind!r}.")
        object.__setattr__(self, "key", int(self.key))
        object.__setattr__(self, "rank", int(self.rank))
        object.__setattr__(self, "critical_value", float(self.critical_value))

    @property
    def n_points(self) -> int:
        th = self.points.get("theta")
        return 0 if th is None else int(np.asarray(th).shape[0])

    @property
    def inertia(self) -> tuple[int, int, int] | None:
        """(n_negative, n_zero, n_positive) at the first measured point, or None."""
        if not self.n_points:
            return None
        return tuple(int(self.points[k][0]) for k in ("n_negative", "n_zero", "n_positive"))  # type: ignore[return-value]


@runtime_checkable
class Atlas(Protocol):
    """The critical sets of a model and ``locate``; see the module docstring for the contract."""

    @property
    def model(self) -> Model: ...

    @property
    def loss_offset(self) -> float: ...

    def sets(self) -> list[CriticalSet]: ...

    def get(self, key: int) -> CriticalSet: ...

    def locate(self, theta: Params, loss: FloatArray, *, plateau: bool = False) -> np.ndarray: ...

    def grow(self, theta: Params, *, plateau: bool = False) -> np.ndarray: ...

    def measure(self, keys: Sequence[int], *, progress: bool = False) -> list[CriticalSet]: ...

    def attrs(self) -> dict[str, Any]: ...
