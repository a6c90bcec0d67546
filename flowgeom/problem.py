r"""Problems: data or a spectrum, the paper's assumptions, and the canonical reduction.

A problem is the data-target pair :math:`X \in \mathbb{R}^{d_x\times m}`,
:math:`Y \in \mathbb{R}^{d_y \times m}` (or directly the singular values s of the reduced
target) together with the network widths. Section 2.1 of the paper reduces the loss with
the SVDs

.. math::

    X = U_X [S_X \mid 0] V_X^T, \qquad \bar Y = Y V_X^1 = U_Y \Sigma V_Y^T,
    \qquad \Sigma = [\mathrm{diag}(s) \mid 0],

and the change of variables :math:`\bar W_1 = W_1 U_X S_X V_Y`,
:math:`\bar W_{H+1} = U_Y^T W_{H+1}`, :math:`\bar W_j = W_j` otherwise, to

.. math:: \mathcal{L}(W) = \tfrac12\|\Sigma - \bar W_{H+1}\cdots\bar W_1\|_F^2 + \tfrac12\|Y V_X^2\|_F^2.

The loss is preserved, but the *gradient flow* is not unless :math:`S_X = I`: the map
:math:`W_1 \mapsto W_1 K`, :math:`K = U_X S_X V_Y`, sends the flow of
:math:`\mathcal{L}` to :math:`\dot{\bar W}_1 = -\nabla_{\bar W_1} L \; K^T K` with
:math:`K^T K = V_Y^T S_X^2 V_Y`, a gradient flow of L only for a different metric. flowgeom
therefore simulates, by default, the flow the user actually runs: in canonical coordinates
when the data are whitened (:math:`XX^T = I`), and otherwise in the original coordinates.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Literal, Sequence

import numpy as np

from flowgeom._types import FloatArray
from flowgeom._validate import InputError
from flowgeom.models.deep_linear import DeepLinearNetwork, validate_widths

__all__ = ["Problem", "AssumptionError", "DEFAULT_WIDTHS", "DEFAULT_SINGULAR_VALUES"]

DEFAULT_WIDTHS = (5, 4, 3)
DEFAULT_SINGULAR_VALUES = (3.0, 2.0, 1.0)

# Relative tolerances deciding rank (Assumption 2), distinctness (Assumption 3) and
# whitening. They are relative to the largest singular value, as in numpy.linalg.matrix_rank
# (which uses max(shape) * eps); we use a fixed, documented value so that the decision is
# reproducible across shapes.
RANK_RTOL = 1e-10
DISTINCT_RTOL = 1e-8
WHITENED_ATOL = 1e-10


class AssumptionError(InputError):
    """An assumption of the paper (1, 2 or 3) fails for this problem.

    Subclass of :class:`flowgeom._validate.InputError` (a ValueError); raised at construction
    when ``on_violation="raise"``.
    The attribute ``assumption`` (1, 2 or 3) says which.
    """

    def __init__(self, assumption: int, message: str):
        super().__init__(message)
        self.assumption = assumption


def _as_weights(W, name="W"):
    if isinstance(W, np.ndarray) and W.dtype != object:
        raise TypeError(
            f"`{name}` must be a list of weight matrices [W_1, ..., W_{{H+1}}]; got a single array. "
            "Use `network.unpack(theta)` to split flat parameters."
        )
    return [np.asarray(Wj, dtype=np.float64) for Wj in W]


@dataclass(frozen=True, eq=False)
class Problem:
    r"""A deep-linear-network learning problem, its assumptions and its canonical form.

    Build one with :meth:`from_data` or :meth:`from_spectrum` (or :meth:`default`).

    Attributes
    ----------
    widths : tuple of int
        ``(d_x, d_1, ..., d_H, d_y)``.
    singular_values : ndarray, shape (d_y,)
        s, the singular values of :math:`\bar Y = Y V_X^1`, sorted descending.
    X, Y : ndarray or None
        The data, shapes (d_x, m), (d_y, m); ``None`` for a spectrum problem.
    whitened : bool
        Whether :math:`X X^T = I` (always True for a spectrum problem).
    U_X, S_X, V_Y, U_Y : ndarray
        The reduction's factors (identities for a spectrum problem); S_X is the vector of
        singular values of X.
    loss_offset : float
        :math:`\tfrac12\|Y V_X^2\|_F^2`, the part of the loss no network can fit.
    violations : tuple of str
        Messages of the assumptions that failed but were accepted with ``on_violation="warn"``.
    """

    widths: tuple[int, ...]
    singular_values: FloatArray
    X: FloatArray | None = None
    Y: FloatArray | None = None
    U_X: FloatArray = field(default=None, repr=False)  # type: ignore[assignment]
    S_X: FloatArray = field(default=None, repr=False)  # type: ignore[assignment]
    V_Y: FloatArray = field(default=None, repr=False)  # type: ignore[assignment]
    U_Y: FloatArray = field(default=None, repr=False)  # type: ignore[assignment]
    loss_offset: float = 0.0
    violations: tuple[str, ...] = ()

    # ------------------------------------------------------------------ constructors
    @classmethod
    def default(cls) -> "Problem":
        """The embedded default problem: H = 1, widths (5, 4, 3), s = (3, 2, 1)."""
        return cls.from_spectrum(DEFAULT_SINGULAR_VALUES, DEFAULT_WIDTHS)

    @classmethod
    def from_spectrum(
        cls,
        singular_values,
        widths: Sequence[int],
        *,
        on_violation: Literal["raise", "warn"] = "raise",
    ) -> "Problem":
        r"""A problem given directly in canonical form, :math:`\Sigma = [\mathrm{diag}(s)\mid 0]`.

        Equivalent to whitened data (:math:`XX^T = I`) whose reduced target has singular values s.

        Parameters
        ----------
        singular_values : array_like, shape (d_y,)
            Positive, distinct (Assumption 3); sorted descending internally.
        widths : sequence of int
            ``(d_x, d_1, ..., d_H, d_y)``, satisfying Assumption 1 (without m).
        on_violation : {"raise", "warn"}, default "raise"
            What to do when Assumption 1 or 3 fails: raise :class:`AssumptionError`, or warn
            and go on (the flow is still well defined; the paper's analysis is not).

        Raises
        ------
        ValueError
            Bad shapes or values (non-finite, non-positive singular values).
        AssumptionError
            An assumption fails and ``on_violation="raise"``.
        """
        _check_on_violation(on_violation)
        w = validate_widths(widths)
        s = np.asarray(singular_values, dtype=np.float64)
        if s.ndim != 1 or s.shape[0] != w[-1]:
            raise ValueError(
                f"`singular_values` must be a 1-D array of length d_y = {w[-1]} (the last entry of "
                f"`widths`); got shape {s.shape}."
            )
        if not np.all(np.isfinite(s)):
            raise ValueError("`singular_values` contains NaN or inf; pass finite positive values.")
        if np.any(s <= 0):
            raise AssumptionError(
                2,
                f"`singular_values` must be positive (Assumption 2: Y of full row rank); got {s.tolist()}.",
            )
        s = np.sort(s)[::-1].copy()
        violations = _check_widths(w, m=None, on_violation=on_violation)
        violations += _check_distinct(s, on_violation=on_violation)
        dx, dy = w[0], w[-1]
        return cls(
            widths=w,
            singular_values=_frozen(s),
            U_X=_frozen(np.eye(dx)),
            S_X=_frozen(np.ones(dx)),
            V_Y=_frozen(np.eye(dx)),
            U_Y=_frozen(np.eye(dy)),
            violations=violations,
        )

    @classmethod
    def from_data(
        cls,
        X,
        Y,
        widths: Sequence[int],
        *,
        on_violation: Literal["raise", "warn"] = "raise",
    ) -> "Problem":
        r"""A problem from data :math:`X` (d_x, m) and targets :math:`Y` (d_y, m).

        Parameters
        ----------
        X : array_like, shape (d_x, m)
            Inputs as columns (the paper's convention).
        Y : array_like, shape (d_y, m)
            Targets as columns.
        widths : sequence of int
            ``(d_x, d_1, ..., d_H, d_y)``; d_x and d_y must match X and Y.
        on_violation : {"raise", "warn"}, default "raise"
            For Assumptions 1 and 3 (see :meth:`from_spectrum`). Assumption 2 (full row
            rank of X and Y) always raises: the canonical reduction needs it.

        Raises
        ------
        ValueError
            Bad shapes, empty or non-finite data.
        AssumptionError
            Assumption 2 fails, or 1 or 3 fails with ``on_violation="raise"``.
        """
        _check_on_violation(on_violation)
        w = validate_widths(widths)
        X = np.asarray(X, dtype=np.float64)
        Y = np.asarray(Y, dtype=np.float64)
        for name, A in (("X", X), ("Y", Y)):
            if A.ndim != 2:
                raise ValueError(
                    f"`{name}` must be 2-D with samples as columns, shape (d, m); got shape {A.shape}."
                )
            if A.size == 0:
                raise ValueError(f"`{name}` is empty (shape {A.shape}); pass at least one sample.")
            if not np.all(np.isfinite(A)):
                raise ValueError(f"`{name}` contains NaN or inf; remove or impute those samples.")
        if X.shape[1] != Y.shape[1]:
            raise ValueError(
                f"`X` and `Y` must have the same number of samples (columns); got {X.shape[1]} and "
                f"{Y.shape[1]}. If samples are rows, pass X.T and Y.T."
            )
        if X.shape[0] != w[0] or Y.shape[0] != w[-1]:
            raise ValueError(
                f"`widths` must start with d_x = X.shape[0] = {X.shape[0]} and end with d_y = "
                f"Y.shape[0] = {Y.shape[0]}; got {w}."
            )
        dx, m = X.shape
        dy = Y.shape[0]
        violations = _check_widths(w, m=m, on_violation=on_violation)
        # Assumption 2 and the reduction (thin SVD of X: V_X^1 only, never the m x m V_X).
        U_X, S_X, V1t = np.linalg.svd(X, full_matrices=False)
        if S_X[-1] <= RANK_RTOL * S_X[0]:
            raise AssumptionError(
                2,
                f"`X` must have full row rank d_x = {dx} (Assumption 2); its singular values are "
                f"{S_X.tolist()}. Remove redundant input features (paper, footnote 1).",
            )
        Ybar = Y @ V1t.T  # (dy, dx)
        U_Y, s, V_Yt = np.linalg.svd(Ybar, full_matrices=True)
        sY_all = np.linalg.svd(Y, compute_uv=False)
        if sY_all[-1] <= RANK_RTOL * sY_all[0]:
            raise AssumptionError(
                2,
                f"`Y` must have full row rank d_y = {dy} (Assumption 2); its singular values are "
                f"{sY_all.tolist()}. Remove redundant target components.",
            )
        if s[-1] <= RANK_RTOL * s[0]:
            raise AssumptionError(
                2,
                f"the reduced target Ybar = Y V_X^1 must have full row rank d_y = {dy}; its singular "
                f"values are {s.tolist()} (the targets are not linearly predictable from X).",
            )
        violations += _check_distinct(s, on_violation=on_violation)
        offset = 0.5 * max(0.0, float(np.sum(Y * Y) - np.sum(Ybar * Ybar)))
        return cls(
            widths=w,
            singular_values=_frozen(s),
            X=_frozen(X),
            Y=_frozen(Y),
            U_X=_frozen(U_X),
            S_X=_frozen(S_X),
            V_Y=_frozen(V_Yt.T),
            U_Y=_frozen(U_Y),
            loss_offset=offset,
            violations=violations,
        )

    # ------------------------------------------------------------------ properties
    @property
    def depth_H(self) -> int:
        """Number of hidden layers H."""
        return len(self.widths) - 2

    @property
    def d_x(self) -> int:
        return self.widths[0]

    @property
    def d_y(self) -> int:
        return self.widths[-1]

    @property
    def n_samples(self) -> int | None:
        """m, or None for a spectrum problem."""
        return None if self.X is None else int(self.X.shape[1])

    @property
    def whitened(self) -> bool:
        r"""Whether :math:`X X^T = I` (to ``WHITENED_ATOL``); True for spectrum problems."""
        return bool(np.all(np.abs(self.S_X - 1.0) <= WHITENED_ATOL))

    @property
    def Sigma(self) -> FloatArray:
        r"""Canonical target :math:`\Sigma = [\mathrm{diag}(s) \mid 0]`, shape (d_y, d_x)."""
        S = np.zeros((self.d_y, self.d_x))
        S[np.arange(self.d_y), np.arange(self.d_y)] = self.singular_values
        return S

    @property
    def K(self) -> FloatArray:
        r""":math:`K = U_X S_X V_Y` (d_x, d_x), the first layer's change of variables :math:`\bar W_1 = W_1 K`."""
        return (self.U_X * self.S_X) @ self.V_Y

    def attrs(self) -> dict:
        """Provenance attributes for Datasets (see flowgeom.schema)."""
        return {
            "widths": list(self.widths),
            "singular_values": [float(v) for v in self.singular_values],
            "depth_H": self.depth_H,
            "whitened": bool(self.whitened),
        }

    # ------------------------------------------------------------------ networks
    def network(
        self, coordinates: Literal["auto", "canonical", "original"] = "auto"
    ) -> DeepLinearNetwork:
        r"""The loss as a :class:`DeepLinearNetwork` in the chosen coordinates.

        Parameters
        ----------
        coordinates : {"auto", "canonical", "original"}, default "auto"
            - ``"canonical"``: the paper's :math:`L(\bar W) = \tfrac12\|\Sigma - \bar P\|_F^2`, plus
              the constant :attr:`loss_offset` so that it equals the data loss.
              Its gradient flow is the user's flow (mapped by :meth:`to_canonical`) only for
              whitened data; otherwise a ``UserWarning`` says so.
            - ``"original"``: the user's :math:`\mathcal{L}(W) = \tfrac12\|Y - PX\|_F^2`
              exactly (including the constant :attr:`loss_offset`).
            - ``"auto"``: ``"canonical"`` when the data are whitened, else ``"original"``:
              always the flow the user runs.

        Returns
        -------
        DeepLinearNetwork
        """
        if coordinates not in ("auto", "canonical", "original"):
            raise ValueError(
                f"`coordinates` must be 'auto', 'canonical' or 'original'; got {coordinates!r}."
            )
        if coordinates == "auto":
            coordinates = "canonical" if self.whitened else "original"
        if coordinates == "canonical":
            if not self.whitened:
                warnings.warn(
                    "the data are not whitened (X X^T != I): the canonical loss equals the data "
                    "loss under `to_canonical`, but its gradient flow is NOT the data's gradient "
                    "flow (the first layer carries the metric V_Y^T S_X^2 V_Y). Use "
                    "coordinates='original' (or 'auto') to simulate the data's flow.",
                    UserWarning,
                    stacklevel=2,
                )
            # the offset keeps the model's loss equal to the data loss (0 for a spectrum problem)
            return DeepLinearNetwork(self.widths, self.Sigma, offset=self.loss_offset)
        if self.X is None:
            return DeepLinearNetwork(self.widths, self.Sigma)
        # original coordinates: T = Y V_X^1 = U_Y Sigma V_Y^T, R = U_X S_X.
        T = (self.U_Y @ self.Sigma) @ self.V_Y.T
        R = self.U_X * self.S_X
        return DeepLinearNetwork(self.widths, T, input_factor=R, offset=self.loss_offset)

    # ------------------------------------------------------------------ coordinate maps
    def to_canonical(self, W: Sequence[FloatArray]) -> list[FloatArray]:
        r"""Map original weights to canonical: :math:`\bar W_1 = W_1 U_X S_X V_Y`, :math:`\bar W_{H+1} = U_Y^T W_{H+1}`.

        Parameters
        ----------
        W : list of ndarray, shapes (..., d_j, d_{j-1})

        Returns
        -------
        list of ndarray
        """
        W = _as_weights(W)
        self._check_weights(W)
        out = list(W)
        out[0] = W[0] @ self.K
        out[-1] = self.U_Y.T @ out[-1]
        return out

    def from_canonical(self, Wbar: Sequence[FloatArray]) -> list[FloatArray]:
        r"""Inverse of :meth:`to_canonical`: :math:`W_1 = \bar W_1 V_Y^T S_X^{-1} U_X^T`, :math:`W_{H+1} = U_Y \bar W_{H+1}`."""
        Wbar = _as_weights(Wbar, "Wbar")
        self._check_weights(Wbar, "Wbar")
        out = list(Wbar)
        Kinv = (self.V_Y.T / self.S_X) @ self.U_X.T
        out[0] = Wbar[0] @ Kinv
        out[-1] = self.U_Y @ out[-1]
        return out

    def canonical_end_to_end(self, P):
        r"""Map an end-to-end product from original to canonical coordinates: :math:`\bar P = U_Y^T P K`.

        Parameters
        ----------
        P : ndarray, shape (..., d_y, d_x)
            :math:`W_{H+1}\cdots W_1` in original coordinates.

        Returns
        -------
        ndarray, shape (..., d_y, d_x)
            :math:`\bar W_{H+1}\cdots\bar W_1`, to be compared with :math:`\Sigma_S` of the strata.
        """
        P = np.asarray(P, dtype=np.float64)
        if P.shape[-2:] != (self.d_y, self.d_x):
            raise ValueError(f"`P` must have shape (..., {self.d_y}, {self.d_x}); got {P.shape}.")
        return self.U_Y.T @ P @ self.K

    def _check_weights(self, W, name="W"):
        if len(W) != len(self.widths) - 1:
            raise ValueError(
                f"`{name}` must hold H + 1 = {len(self.widths) - 1} matrices; got {len(W)}."
            )
        for j, Wj in enumerate(W):
            shp = (self.widths[j + 1], self.widths[j])
            if Wj.shape[-2:] != shp:
                raise ValueError(f"`{name}[{j}]` must have shape (..., {shp[0]}, {shp[1]}); got {Wj.shape}.")


def _frozen(a):
    a = np.array(a, dtype=np.float64)
    a.setflags(write=False)
    return a


def _check_on_violation(on_violation):
    if on_violation not in ("raise", "warn"):
        raise ValueError(f"`on_violation` must be 'raise' or 'warn'; got {on_violation!r}.")


def _violate(assumption: int, message: str, on_violation: str) -> tuple[str, ...]:
    if on_violation == "raise":
        raise AssumptionError(
            assumption, message + " Pass on_violation='warn' to run the flow anyway."
        )
    warnings.warn(message + " The paper's analysis does not cover this case.", UserWarning, stacklevel=4)
    return (message,)


def _check_widths(w, m, on_violation) -> tuple[str, ...]:
    """Assumption 1: m >= d_x >= max(d_1..d_H) >= min(d_1..d_H) >= d_y."""
    dx, hidden, dy = w[0], w[1:-1], w[-1]
    problems = []
    if m is not None and m < dx:
        problems.append(f"m = {m} samples < d_x = {dx}")
    if max(hidden) > dx:
        problems.append(f"a hidden width {max(hidden)} > d_x = {dx}")
    if min(hidden) < dy:
        problems.append(f"a hidden width {min(hidden)} < d_y = {dy}")
    if not problems:
        return ()
    return _violate(
        1,
        f"Assumption 1 (m >= d_x >= max d_j >= min d_j >= d_y) fails for widths {tuple(w)}"
        + (f" and m = {m}" if m is not None else "")
        + ": "
        + "; ".join(problems)
        + ".",
        on_violation,
    )


def _check_distinct(s, on_violation) -> tuple[str, ...]:
    """Assumption 3: the d_y singular values of Ybar are distinct."""
    s_sorted = np.sort(s)[::-1]
    gaps = -np.diff(s_sorted)
    bad = np.nonzero(gaps <= DISTINCT_RTOL * s_sorted[0])[0]
    if bad.size == 0:
        return ()
    pairs = ", ".join(f"s[{i}] = {s_sorted[i]:.12g} ~ s[{i + 1}] = {s_sorted[i + 1]:.12g}" for i in bad)
    return _violate(
        3,
        f"Assumption 3 (distinct singular values of Ybar) fails: {pairs}. Critical sets are then "
        "continuous families rotated by O(k) instead of finitely many strata.",
        on_violation,
    )
