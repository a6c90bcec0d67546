r"""Strata of the critical set: enumeration by learned set and classification of end points.

At every critical point of the canonical loss :math:`L(W) = \tfrac12\|\Sigma - W_{H+1}\cdots W_1\|_F^2`
(any depth H, :math:`\Sigma = [\mathrm{diag}(s)\mid 0]`, s distinct and positive) the end-to-end
product is

.. math:: P = W_{H+1}\cdots W_1 = \Sigma_S, \qquad (\Sigma_S)_{ii} = s_i \text{ for } i \in S,
   \text{ all other entries } 0,

for a set :math:`S \subseteq \{0, \dots, d_y - 1\}` of *learned* singular modes, and the loss is
the critical value :math:`\tfrac12\sum_{i \notin S} s_i^2`. (Proof: :math:`\nabla_{W_{H+1}} L = 0`
and :math:`\nabla_{W_1} L = 0` give :math:`(P - \Sigma)P^T = 0` and :math:`P^T(P - \Sigma) = 0`, so
:math:`P = \Pi\Sigma` with :math:`\Pi` an orthogonal projector commuting with
:math:`\Sigma\Sigma^T = \mathrm{diag}(s^2)`; distinct s force :math:`\Pi` diagonal.) A stratum is
the set of critical points with one learned set S; there are :math:`2^{d_y}` of them. For H = 1
this is the paper's :math:`\mathrm{Crit}_r(L)` split by the permutation U of Lemma 2, together with
:math:`S = \{\}` (r = 0: :math:`W_2 = 0`, :math:`W_1 = [0 \mid B]`), which the paper's union
:math:`\cup_{r=1}^{d_y}` omits.

For non-whitened data the critical points of the data loss and of the canonical loss
correspond through :meth:`flowgeom.Problem.to_canonical` (a linear diffeomorphism that preserves
the loss up to its constant offset), so strata, critical values (plus ``loss_offset``) and Hessian
inertia (Sylvester's law of inertia) are the same; everything here works in canonical
coordinates.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from flowgeom._types import FloatArray

__all__ = [
    "Stratum",
    "enumerate_strata",
    "classify_point",
    "learned_set",
    "format_label",
    "parse_label",
    "KINDS",
    "MAX_STRATA",
]

KINDS = ("global_min", "strict_saddle", "non_strict_saddle")
"""Allowed values of :attr:`Stratum.kind`."""

MAX_STRATA = 65536
"""Default cap on the number of strata :func:`enumerate_strata` builds (2^16 = all sets for d_y = 16)."""

# classify_point's default tolerance, relative to the largest singular value. Any value below
# s_min / 2 (checked) gives an unambiguous match; 1e-3 * s_max accepts end points whose
# product is converged to ~3 digits, which a trajectory with ||grad L|| ~ 1e-6 easily meets.
CLASSIFY_RTOL = 1e-3


def format_label(learned: Iterable[int]) -> str:
    """Label string of a learned set: ``(0, 2) -> "{0,2}"``, ``() -> "{}"``."""
    return "{" + ",".join(str(int(i)) for i in sorted(learned)) + "}"


def parse_label(label: str) -> tuple[int, ...]:
    """Inverse of :func:`format_label`; a suffix after ``"}"`` (H >= 2 family) is ignored.

    Raises
    ------
    ValueError
        If ``label`` does not start with a brace-enclosed comma-separated list of integers.
    """
    if not isinstance(label, str) or not label.startswith("{") or "}" not in label:
        raise ValueError(f"`label` must look like '{{}}', '{{0}}' or '{{0,2}}'; got {label!r}.")
    body = label[1 : label.index("}")].strip()
    if not body:
        return ()
    try:
        return tuple(sorted(int(x) for x in body.split(",")))
    except ValueError:
        raise ValueError(f"`label` must look like '{{}}', '{{0}}' or '{{0,2}}'; got {label!r}.") from None


@dataclass(frozen=True, eq=False)
class Stratum:
    r"""One stratum of the critical set: the critical points whose end-to-end product is :math:`\Sigma_S`.

    Attributes
    ----------
    label : str
        ``"{}"``, ``"{0}"``, ``"{0,2}"``: the learned set S, 0-based indices into s sorted
        descending. (Rows of a ``strata`` Dataset for H >= 2 aggregate several families of
        points of one S; per-point families are in that Dataset, not in the label.)
    learned : tuple of int
        S, sorted ascending.
    rank : int
        r = |S|, the rank of the end-to-end product.
    critical_value : float
        :math:`\tfrac12\sum_{i \notin S} s_i^2` (canonical loss, without the data offset).
    end_to_end : ndarray, shape (d_y, d_x)
        :math:`\Sigma_S`, the canonical end-to-end product on the stratum (read-only).
    kind : str
        ``"global_min"`` (r = d_y), ``"strict_saddle"`` (every point has a negative Hessian
        eigenvalue) or ``"non_strict_saddle"`` (the stratum contains points whose Hessian
        has no negative eigenvalue). See :func:`enumerate_strata` for how it is decided and
        :func:`flowgeom.critical.build_strata_dataset` for the measured counterpart.
    """

    label: str
    learned: tuple[int, ...]
    rank: int
    critical_value: float
    end_to_end: FloatArray
    kind: str

    def __post_init__(self):
        learned = tuple(sorted(int(i) for i in self.learned))
        object.__setattr__(self, "learned", learned)
        if self.rank != len(learned):
            raise ValueError(f"`rank` must equal len(learned) = {len(learned)}; got {self.rank}.")
        if self.kind not in KINDS:
            raise ValueError(f"`kind` must be one of {KINDS}; got {self.kind!r}.")
        if parse_label(self.label) != learned:
            raise ValueError(f"`label` {self.label!r} does not name the learned set {learned}.")
        P = np.array(self.end_to_end, dtype=np.float64)
        P.setflags(write=False)
        object.__setattr__(self, "end_to_end", P)

    def __eq__(self, other):
        if not isinstance(other, Stratum):
            return NotImplemented
        return (
            self.label == other.label
            and self.kind == other.kind
            and self.critical_value == other.critical_value
            and self.end_to_end.shape == other.end_to_end.shape
            and bool(np.array_equal(self.end_to_end, other.end_to_end))
        )

    def __hash__(self):
        return hash((self.label, self.kind, self.critical_value, self.end_to_end.shape))

    @property
    def unlearned(self) -> tuple[int, ...]:
        """The complement of S in ``range(d_y)``."""
        dy = self.end_to_end.shape[0]
        return tuple(i for i in range(dy) if i not in self.learned)

    @property
    def is_top(self) -> bool:
        """True when S = {0, ..., r-1} (the r largest modes)."""
        return self.learned == tuple(range(self.rank))


def _problem_parts(problem) -> tuple[tuple[int, ...], FloatArray]:
    """(widths, s sorted descending) from a Problem (or anything with widths and singular_values)."""
    try:
        widths = tuple(int(d) for d in problem.widths)
        s = np.asarray(problem.singular_values, dtype=np.float64)
    except AttributeError:
        raise TypeError(
            f"`problem` must be a flowgeom.Problem (with `widths` and `singular_values`); got "
            f"{type(problem).__name__}. Build one with Problem.from_spectrum(s, widths)."
        ) from None
    if s.ndim != 1 or s.shape[0] != widths[-1]:
        raise ValueError(
            f"`problem.singular_values` must have length d_y = {widths[-1]}; got shape {s.shape}."
        )
    if np.any(np.diff(s) > 0):
        raise ValueError(
            f"`problem.singular_values` must be sorted descending (as Problem stores them); got {s.tolist()}."
        )
    return widths, s


def _sigma_S(widths, s, learned) -> FloatArray:
    P = np.zeros((widths[-1], widths[0]))
    idx = np.asarray(learned, dtype=int)
    P[idx, idx] = s[idx]
    return P


def _kind(widths, learned, dy) -> str:
    r = len(learned)
    if r == dy:
        return "global_min"
    if len(widths) - 2 == 1:
        # Proposition 2 iii) (and r = 0: the Hessian pairs c with a through -Sigma, eigenvalues +-s_i).
        return "strict_saddle"
    # H >= 2: for S = {0..r-1} the points whose partial products all have rank r (e.g. the
    # origin for r = 0) have no negative Hessian eigenvalue (the escaping mode needs >= 3
    # perturbed factors); other S have a pair i in S, k not in S with s_k > s_i whose 2x2
    # block is indefinite at every point. Measured in build_strata_dataset.
    return "non_strict_saddle" if tuple(learned) == tuple(range(r)) else "strict_saddle"


def _make_stratum(widths, s, learned) -> Stratum:
    learned = tuple(sorted(learned))
    dy = widths[-1]
    crit = 0.5 * float(sum(s[i] ** 2 for i in range(dy) if i not in learned))
    return Stratum(
        label=format_label(learned),
        learned=learned,
        rank=len(learned),
        critical_value=crit,
        end_to_end=_sigma_S(widths, s, learned),
        kind=_kind(widths, learned, dy),
    )


def enumerate_strata(
    problem,
    *,
    ranks: Sequence[int] | None = None,
    sets: Iterable[Iterable[int]] | None = None,
    top_only: bool = False,
    max_strata: int = MAX_STRATA,
) -> list[Stratum]:
    r"""The strata of the critical set, one per learned set :math:`S \subseteq \{0..d_y-1\}`.

    Stratum S holds the critical points with end-to-end product :math:`\Sigma_S` and loss
    :math:`\tfrac12\sum_{i\notin S}s_i^2` (see the module docstring for why every critical
    point, at any depth, lies in exactly one of them).

    Parameters
    ----------
    problem : Problem
        Supplies ``widths`` and the singular values s (sorted descending).
    ranks : sequence of int, optional
        Keep only strata with r = |S| in ``ranks`` (each 0 <= r <= d_y). Default ``None``: all ranks.
    sets : iterable of iterable of int, optional
        Explicit learned sets, e.g. ``[(0,), (0, 2)]``. Cannot be combined with ``ranks`` or
        ``top_only``. Default ``None``.
    top_only : bool, default False
        Keep only S = {0, ..., r-1} for each selected rank (d_y + 1 strata at most).
    max_strata : int, default ``MAX_STRATA`` (65536)
        Refuse to build more strata than this (there are :math:`2^{d_y}`).

    Returns
    -------
    list of Stratum
        Sorted by critical value descending ("{}" first, the global minimum last); ties (equal
        sums of squares) by rank, then by the learned set.

    Raises
    ------
    ValueError
        Bad ``ranks`` / ``sets`` values, conflicting options, or more than ``max_strata`` strata.

    Notes
    -----
    ``kind`` is decided in closed form here: ``"global_min"`` when r = d_y; for H = 1 every
    other stratum is a strict saddle (Proposition 2 iii) of the paper, and for r = 0 the Hessian
    couples :math:`W_2` with :math:`W_1` through :math:`-\Sigma`); for H >= 2 the top sets
    S = {0..r-1} (including {}) are ``"non_strict_saddle"`` because they contain points whose
    partial products all have rank r (the origin when r = 0), where no second-order direction
    decreases L, and the other sets are strict saddles. The atlas
    (:func:`flowgeom.critical.build_strata_dataset`) measures this at sampled points.

    Examples
    --------
    >>> from flowgeom import Problem
    >>> from flowgeom.linear.strata import enumerate_strata
    >>> [st.label for st in enumerate_strata(Problem.from_spectrum([2.0, 1.0], (3, 2, 2)))]
    ['{}', '{1}', '{0}', '{0,1}']
    """
    widths, s = _problem_parts(problem)
    dy = widths[-1]
    if not isinstance(top_only, (bool, np.bool_)):
        raise TypeError(f"`top_only` must be a bool; got {top_only!r}.")
    if isinstance(max_strata, bool) or not isinstance(max_strata, (int, np.integer)) or max_strata < 1:
        raise ValueError(f"`max_strata` must be a positive int; got {max_strata!r}.")
    if sets is not None:
        if ranks is not None or top_only:
            raise ValueError(
                "`sets` cannot be combined with `ranks` or `top_only`; pass the explicit sets only."
            )
        chosen = []
        seen = set()
        for raw in sets:
            try:
                S = tuple(sorted(int(i) for i in raw))
            except (TypeError, ValueError):
                raise ValueError(
                    f"`sets` must be an iterable of iterables of ints, e.g. [(0,), (0, 2)]; got element {raw!r}."
                ) from None
            if len(set(S)) != len(S) or any(i < 0 or i >= dy for i in S):
                raise ValueError(
                    f"`sets` element {raw!r} must hold distinct mode indices in 0..{dy - 1} (d_y = {dy})."
                )
            if S not in seen:
                seen.add(S)
                chosen.append(S)
        if len(chosen) > max_strata:
            raise ValueError(f"`sets` names {len(chosen)} strata > `max_strata` = {max_strata}.")
    else:
        if ranks is None:
            rank_list = list(range(dy + 1))
        else:
            try:
                rank_list = sorted({int(r) for r in ranks})
            except (TypeError, ValueError):
                raise ValueError(f"`ranks` must be a sequence of ints in 0..{dy}; got {ranks!r}.") from None
            bad = [r for r in rank_list if r < 0 or r > dy]
            if bad:
                raise ValueError(f"`ranks` must lie in 0..d_y = {dy}; got {list(ranks)!r}.")
        if top_only:
            chosen = [tuple(range(r)) for r in rank_list]
        else:
            total = sum(math.comb(dy, r) for r in rank_list)
            if total > max_strata:
                raise ValueError(
                    f"the selection has {total} strata (d_y = {dy}) > `max_strata` = {max_strata}; "
                    "select fewer with `ranks=`, `top_only=True` or `sets=`, or raise `max_strata`."
                )
            chosen = [S for r in rank_list for S in itertools.combinations(range(dy), r)]
    strata = [_make_stratum(widths, s, S) for S in chosen]
    strata.sort(key=lambda st: (-st.critical_value, st.rank, st.learned))
    return strata


def learned_set(problem, end_to_end_canonical, *, atol: float | None = None) -> tuple[int, ...] | None:
    r"""The learned set S with :math:`\|P - \Sigma_S\|_{\max} \le` ``atol``, or None.

    Parameters
    ----------
    problem : Problem
    end_to_end_canonical : array_like, shape (d_y, d_x)
        The end-to-end product in canonical coordinates.
    atol : float, optional
        Max-abs tolerance; default ``CLASSIFY_RTOL * s_max``. Must be below ``s_min / 2`` so that
        at most one S matches.

    Returns
    -------
    tuple of int or None
    """
    widths, s = _problem_parts(problem)
    P = np.asarray(end_to_end_canonical, dtype=np.float64)
    atol = _check_atol(atol, s)
    if P.shape != (widths[-1], widths[0]):
        raise ValueError(
            f"`end_to_end_canonical` must have shape (d_y, d_x) = ({widths[-1]}, {widths[0]}); got {P.shape}."
        )
    return _learned_set(P, s, atol)


def _check_atol(atol, s):
    if atol is None:
        return CLASSIFY_RTOL * float(s[0])
    atol = float(atol)
    if not (atol > 0 and atol < 0.5 * float(s[-1])):
        raise ValueError(
            f"`atol` must lie in (0, s_min / 2) = (0, {0.5 * float(s[-1]):.6g}) so that one stratum at most "
            f"matches; got {atol!r}."
        )
    return atol


def _learned_set(P, s, atol):
    dy = s.shape[0]
    if not np.all(np.isfinite(P)):
        return None
    diag = P[np.arange(dy), np.arange(dy)]
    learned = np.abs(diag - s) <= atol
    unlearned = np.abs(diag) <= atol
    if not np.all(learned | unlearned):
        return None
    off = P.copy()
    off[np.arange(dy), np.arange(dy)] = 0.0
    if np.max(np.abs(off), initial=0.0) > atol:
        return None
    return tuple(int(i) for i in np.nonzero(learned)[0])


def classify_point(problem, end_to_end_canonical, strata: Sequence[Stratum], *, atol: float | None = None):
    r"""Index into ``strata`` of the stratum whose :math:`\Sigma_S` matches a canonical end-to-end product.

    The match is :math:`\|P - \Sigma_S\|_{\max} \le` ``atol`` entrywise; since two distinct
    :math:`\Sigma_S` differ by at least :math:`s_{\min}` in some entry, at most one stratum
    matches when ``atol < s_min / 2``. Matching the product also matches the critical value
    (:math:`L = \tfrac12\|\Sigma - P\|_F^2` is continuous in P).

    Parameters
    ----------
    problem : Problem
    end_to_end_canonical : array_like, shape (d_y, d_x) or (..., d_y, d_x)
        :math:`\bar P = \bar W_{H+1}\cdots\bar W_1` in canonical coordinates (map data-space
        weights with ``problem.to_canonical`` first).
    strata : sequence of Stratum
        Candidates, e.g. from :func:`enumerate_strata`; the result indexes this sequence.
    atol : float, optional
        Default ``1e-3 * s_max``; must be in (0, s_min / 2).

    Returns
    -------
    int or ndarray of int
        The index, or -1 when no stratum of ``strata`` matches (not converged, non-finite, or
        a stratum that was not selected). An int for one product; an int array of the batch
        shape for a batch.

    Examples
    --------
    >>> from flowgeom import Problem
    >>> from flowgeom.linear.strata import enumerate_strata, classify_point
    >>> pb = Problem.from_spectrum([2.0, 1.0], (3, 2, 2))
    >>> strata = enumerate_strata(pb)
    >>> strata[classify_point(pb, [[2.0, 0, 0], [0, 0, 0]], strata)].label
    '{0}'
    """
    widths, s = _problem_parts(problem)
    atol = _check_atol(atol, s)
    P = np.asarray(end_to_end_canonical, dtype=np.float64)
    shape = (widths[-1], widths[0])
    if P.ndim < 2 or P.shape[-2:] != shape:
        raise ValueError(
            f"`end_to_end_canonical` must have shape (..., d_y, d_x) = (..., {shape[0]}, {shape[1]}); got {P.shape}."
        )
    index = {st.learned: k for k, st in enumerate(strata)}
    for st in strata:
        if not isinstance(st, Stratum):
            raise TypeError(f"`strata` must hold Stratum objects; got {type(st).__name__}.")
        if st.end_to_end.shape != shape:
            raise ValueError(
                f"`strata` were built for another problem: end_to_end shape {st.end_to_end.shape} != {shape}."
            )
    batch = P.shape[:-2]
    flat = P.reshape((-1,) + shape)
    out = np.full(flat.shape[0], -1, dtype=np.int64)
    for b in range(flat.shape[0]):
        S = _learned_set(flat[b], s, atol)
        if S is not None:
            out[b] = index.get(S, -1)
    if not batch:
        return int(out[0])
    return out.reshape(batch)
