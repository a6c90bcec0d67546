r"""The closed-form atlas of a deep linear network: every stratum, located by its end-to-end product.

At every critical point of the canonical loss :math:`\tfrac12\|\Sigma - \bar W_{H+1}\cdots\bar W_1\|_F^2`
the end-to-end product is :math:`\Sigma_S` for a set S of learned singular modes
(:mod:`flowgeom.linear.strata`), so a state is located by reading S off its canonical product:

.. math:: i \in S \iff |\bar P_{ii} - s_i| \le \tau, \qquad i \notin S \iff |\bar P_{ii}| \le \tau,
          \qquad |\bar P_{ij}| \le \tau \ (i \ne j),

and the match is kept only when the loss sits at the critical value
:math:`\tfrac12\sum_{i\notin S}s_i^2` (plus the data offset). For limits of the flow
:math:`\tau = 10^{-3} s_{\max}` (``LIMIT_RTOL``); for plateau points of a trajectory lingering near
a saddle :math:`\tau = 0.1\, s_{\min}` (``PLATEAU_RTOL``). Any :math:`\tau < s_{\min}/2` matches at
most one stratum. The key of stratum S is the bit mask :math:`\sum_{i\in S} 2^i`: valid in every
process, for any :math:`d_y \le 62`, without listing the :math:`2^{d_y}` strata.

Strata are listed cheaply (labels and values); the linearization at sampled points (inertia,
dimension, Morse–Bott, kind) is measured only for the strata asked for
(:meth:`ClosedFormAtlas.measure`), because there are :math:`2^{d_y}` of them.

The flow runs in the coordinates of :meth:`flowgeom.Problem.network` (canonical for whitened
data, original otherwise); measurements are made on the canonical loss, whose critical points,
values (up to the constant ``loss_offset``) and inertia (Sylvester's law) are those of the data
loss under the linear change of variables :meth:`flowgeom.Problem.to_canonical`.
"""

from __future__ import annotations

import itertools
from typing import Any, Sequence

import numpy as np

from flowgeom._types import FloatArray, Params
from flowgeom.critical.atlas import UNCLASSIFIED, CriticalSet, set_kind
from flowgeom.critical.linearization import GAP_MIN, ZERO_RTOL, hessian_inertia, is_morse_bott, stable_codimension
from flowgeom.critical.dimension import local_dimension
from flowgeom.linear.charts import RANK_RTOL, charts_for_stratum
from flowgeom.linear.strata import Stratum, _make_stratum
from flowgeom.models.deep_linear import DeepLinearNetwork

__all__ = ["ClosedFormAtlas", "learned_key", "key_learned"]

LIMIT_RTOL = 1e-3
"""Product tolerance for limits, relative to :math:`s_{\\max}` (converged to ~3 digits)."""
PLATEAU_RTOL = 0.1
"""Product tolerance for plateau points, relative to :math:`s_{\\min}`."""
VALUE_RTOL_LIMIT = 1e-3
"""A limit's loss must be within this times :math:`s_{\\min}^2` of the stratum's value."""
VALUE_RTOL_PLATEAU = 0.25
"""A plateau's loss must be within this times :math:`s_{\\min}^2` of the stratum's value."""
ENUMERATE_MAX = 4096
"""``sets()`` lists every stratum when there are at most this many (d_y <= 12); beyond, the top
chain {}, {0}, {0,1}, ... and every stratum located or measured so far."""
LOCAL_DIM_MAX = 200
"""The local dimension is measured by refinement clouds up to this many parameters."""
CHART_RANK_MAX = 2000
"""The chart's Jacobian rank is computed up to this many parameters."""
GRAD_ROUNDOFF = 1e-12
"""A sampled point counts as critical when ``||grad L|| <= GRAD_ROUNDOFF * max(1, ||theta||)^(H+1) * max(1, s_max)``."""


def learned_key(learned: Sequence[int]) -> int:
    """The key of stratum S: the bit mask :math:`\\sum_{i \\in S} 2^i`."""
    return int(sum(1 << int(i) for i in learned))


def key_learned(key: int, d_y: int) -> tuple[int, ...]:
    """Inverse of :func:`learned_key`."""
    return tuple(i for i in range(d_y) if (int(key) >> i) & 1)


def _layer_ranks(W, tol=1e-9) -> str:
    out = []
    for Wj in W:
        sv = np.linalg.svd(Wj, compute_uv=False)
        out.append(int(np.sum(sv > tol * max(1.0, sv[0]))) if sv.size and sv[0] > 0 else 0)
    return ",".join(str(k) for k in out)


class ClosedFormAtlas:
    r"""The atlas of a deep linear :class:`flowgeom.Problem` (see the module docstring).

    Parameters
    ----------
    problem : flowgeom.Problem
    points_per_stratum : int, default 3
        Points drawn per family of each measured stratum (:mod:`flowgeom.linear.charts`).
    seed : int, default 0
        Root seed of the sampled points; each (stratum, family) gets its own generator from
        (seed, S, family), so a stratum's measurement does not depend on which others are measured.
    families : sequence of str, optional
        Override the families sampled (invalid ones for a stratum are skipped).
    inertia_method : str, default "auto"
        Passed to :func:`flowgeom.critical.hessian_inertia`.
    zero_rtol, gap_min, rank_rtol : float
        Tolerances of the inertia, its decision, and the chart's Jacobian rank.
    local_dim, chart_rank : bool or "auto", default "auto"
        Measure the refinement-cloud dimension (n <= ``LOCAL_DIM_MAX``) and the chart rank
        (n <= ``CHART_RANK_MAX``).
    coordinates : {"auto", "canonical", "original"}, default "auto"
        The coordinates the flow runs in (:meth:`flowgeom.Problem.network`); "auto" is the data's own flow.
    """

    def __init__(
        self,
        problem,
        *,
        points_per_stratum: int = 3,
        seed: int = 0,
        families: Sequence[str] | None = None,
        inertia_method: str = "auto",
        zero_rtol: float = ZERO_RTOL,
        gap_min: float = GAP_MIN,
        rank_rtol: float = RANK_RTOL,
        local_dim: bool | str = "auto",
        chart_rank: bool | str = "auto",
        coordinates: str = "auto",
    ):
        from flowgeom._validate import check_int, check_seed
        from flowgeom.problem import Problem

        if not isinstance(problem, Problem):
            raise TypeError(f"`problem` must be a flowgeom.Problem; got {type(problem).__name__}.")
        for name, val in (("local_dim", local_dim), ("chart_rank", chart_rank)):
            if val not in (True, False, "auto"):
                raise ValueError(f"`{name}` must be True, False or 'auto'; got {val!r}.")
        self.problem = problem
        self.points_per_stratum = check_int("points_per_stratum", points_per_stratum, minimum=1)
        self.seed = check_seed(seed)
        self.families = None if families is None else tuple(families)
        self.inertia_method = inertia_method
        self.zero_rtol, self.gap_min, self.rank_rtol = float(zero_rtol), float(gap_min), float(rank_rtol)
        if coordinates not in ("auto", "canonical", "original"):
            raise ValueError(f"`coordinates` must be 'auto', 'canonical' or 'original'; got {coordinates!r}.")
        if coordinates == "auto":
            coordinates = "canonical" if problem.whitened else "original"
        self.coordinates = coordinates
        self._model = problem.network(self.coordinates)
        self._canonical = DeepLinearNetwork.canonical(problem.widths, problem.singular_values)
        n = self._model.n_params
        self.do_local = (n <= LOCAL_DIM_MAX) if local_dim == "auto" else bool(local_dim)
        self.do_chart = (n <= CHART_RANK_MAX) if chart_rank == "auto" else bool(chart_rank)
        if problem.d_y > 62:
            raise ValueError(f"the closed-form atlas keys strata by bit masks: d_y <= 62; got d_y = {problem.d_y}.")
        self._sets: dict[int, CriticalSet] = {}
        dy = problem.d_y
        if 2**dy <= ENUMERATE_MAX:
            listed = [learned_key(S) for r in range(dy + 1) for S in itertools.combinations(range(dy), r)]
        else:
            listed = [learned_key(range(r)) for r in range(dy + 1)]
        for key in listed:
            self.get(key)

    # ------------------------------------------------------------------ the contract
    @property
    def model(self) -> DeepLinearNetwork:
        return self._model

    @property
    def loss_offset(self) -> float:
        return float(self.problem.loss_offset)

    @property
    def n_strata_total(self) -> int:
        """:math:`2^{d_y}`, the number of strata (listed or not)."""
        return 2**self.problem.d_y

    def sets(self) -> list[CriticalSet]:
        return sorted(self._sets.values(), key=lambda c: (-c.critical_value, c.rank, c.label))

    def stratum(self, key: int) -> Stratum:
        """The closed-form :class:`~flowgeom.linear.strata.Stratum` of a key."""
        return _make_stratum(self.problem.widths, np.asarray(self.problem.singular_values),
                             key_learned(key, self.problem.d_y))

    def get(self, key: int) -> CriticalSet:
        key = int(key)
        cs = self._sets.get(key)
        if cs is None:
            if key < 0 or key >= 2**self.problem.d_y:
                raise KeyError(f"no stratum with key {key} (d_y = {self.problem.d_y}).")
            st = self.stratum(key)
            cs = CriticalSet(key=key, label=st.label, critical_value=st.critical_value, rank=st.rank,
                             kind="undecided", info=self._info(st))
            self._sets[key] = cs
        return cs

    def _info(self, st: Stratum) -> dict:
        return {"kind_closed_form": st.kind, "learned": st.label}

    def canonical_product(self, theta: Params) -> FloatArray:
        """The canonical end-to-end product :math:`\\bar P` of states in the flow's coordinates."""
        P = self._model.end_to_end(theta)
        return self.problem.canonical_end_to_end(P) if self.coordinates == "original" else P

    def locate(self, theta: Params, loss: FloatArray, *, plateau: bool = False) -> np.ndarray:
        theta = np.atleast_2d(np.asarray(theta, dtype=np.float64))
        loss = np.asarray(loss, dtype=np.float64).reshape(-1)
        N = theta.shape[0]
        if N == 0:
            return np.zeros(0, dtype=np.int64)
        s = np.asarray(self.problem.singular_values)
        dy = s.shape[0]
        tau = PLATEAU_RTOL * float(s.min()) if plateau else LIMIT_RTOL * float(s.max())
        tau = min(tau, 0.49 * float(s.min()))
        vtol = (VALUE_RTOL_PLATEAU if plateau else VALUE_RTOL_LIMIT) * float(s.min()) ** 2
        with np.errstate(all="ignore"):
            P = self.canonical_product(theta)
            diag = P[:, np.arange(dy), np.arange(dy)]
            learned = np.abs(diag - s) <= tau
            unlearned = np.abs(diag) <= tau
            off = P.copy()
            off[:, np.arange(dy), np.arange(dy)] = 0.0
            ok = np.all(learned | unlearned, axis=1) & (np.max(np.abs(off), axis=(1, 2)) <= tau)
            ok &= np.all(np.isfinite(P), axis=(1, 2))
            keys = (learned.astype(np.int64) << np.arange(dy, dtype=np.int64)).sum(axis=1)
            values = 0.5 * np.sum(np.where(learned, 0.0, s * s), axis=1)
            ok &= np.abs(loss - self.loss_offset - values) <= vtol
        return np.where(ok, keys, UNCLASSIFIED).astype(np.int64)

    def grow(self, theta: Params, *, plateau: bool = False) -> np.ndarray:
        """Locate refined points (the closed form lists every stratum: nothing is ever new).

        Limits are refined to critical points first; a plateau point is located as it is (a plateau no
        stratum explains is a slow passage).
        """
        from flowgeom.critical.refinement import refine_critical

        theta = np.atleast_2d(np.asarray(theta, dtype=np.float64))
        if theta.shape[0] == 0:
            return np.zeros(0, dtype=np.int64)
        if plateau:
            keys = self.locate(theta, self._model.loss(theta), plateau=True)
            for k in np.unique(keys[keys >= 0]):
                self.get(int(k))
            return keys
        res = refine_critical(self._model, theta)
        keys = self.locate(res.theta, res.loss)
        keys = np.where(res.converged, keys, UNCLASSIFIED)
        for k in np.unique(keys[keys >= 0]):
            self.get(int(k))
        return keys

    def measure(self, keys: Sequence[int] | None = None, *, progress: bool = False) -> list[CriticalSet]:
        """Linearize the strata with ``keys`` (default: the listed ones) at sampled points; returns them."""
        keys = [c.key for c in self.sets()] if keys is None else [int(k) for k in keys]
        it = keys
        if progress and len(keys) > 1:
            from flowgeom._progress import progress_bar

            it = progress_bar(keys, desc="strata", unit="stratum", enabled=True)
        out = []
        for key in it:
            cs = self.get(key)
            if not cs.measured:
                cs = self._measure_one(cs)
                self._sets[key] = cs
            out.append(cs)
        return out

    def attrs(self) -> dict[str, Any]:
        pb = self.problem
        a = dict(pb.attrs())
        a.update(
            atlas="closed_form",
            atlas_coordinates="canonical",
            flow_coordinates=self.coordinates,
            n_strata_total=int(self.n_strata_total),
            points_per_stratum=int(self.points_per_stratum),
            seed=int(self.seed),
            inertia_method=str(self.inertia_method),
            zero_rtol=self.zero_rtol,
            gap_min=self.gap_min,
            rank_rtol=self.rank_rtol,
            local_dim_measured=int(self.do_local),
            chart_rank_measured=int(self.do_chart),
            manifold_dim_source=("chart Jacobian rank (H = 1)" if pb.depth_H == 1
                                 else "refinement-cloud local dimension (H >= 2)"),
            stable_codim_rule="n_negative where every sampled point is Morse-Bott; -1 = undecided by linearization",
        )
        return a

    # ------------------------------------------------------------------ measurement
    def _measure_one(self, cs: CriticalSet) -> CriticalSet:
        """Sample points of every family of the stratum through its charts and linearize at each."""
        pb, net = self.problem, self._canonical
        st = self.stratum(cs.key)
        H = pb.depth_H
        s = np.asarray(pb.singular_values)
        if self.families is None:
            charts = charts_for_stratum(pb, st.learned)
        else:
            charts = []
            for f in self.families:
                try:
                    charts.extend(charts_for_stratum(pb, st.learned, families=[f]))
                except ValueError:
                    continue
        cols: dict[str, list] = {k: [] for k in (
            "theta", "family", "grad_norm", "loss", "loss_error", "n_negative", "n_zero", "n_positive", "zero_tol",
            "gap", "min_eigenvalue", "decided", "chart_dim", "chart_gap", "local_dim", "local_smooth",
            "local_residual", "manifold_dim", "morse_bott", "stable_codim", "stable_codim_lower", "layer_ranks",
            "reason", "is_critical")}
        grad_ok = GRAD_ROUNDOFF * max(1.0, float(s[0]))
        for fi, ch in enumerate(charts):
            rng = np.random.default_rng([self.seed, len(st.learned), *[int(i) + 1 for i in st.learned], 1000 + fi])
            for _ in range(self.points_per_stratum):
                z = ch.sample(rng)
                th = ch.point(z)
                g = float(np.linalg.norm(net.grad(th)))
                L = float(net.loss(th))
                inr = hessian_inertia(net, th, method=self.inertia_method, zero_rtol=self.zero_rtol,
                                      gap_min=self.gap_min)
                cdim, cgap = ch.tangent_dim(z, rtol=self.rank_rtol) if self.do_chart else (-1, np.nan)
                if self.do_local:
                    ld = local_dimension(net, th, rng=rng, zero_rtol=self.zero_rtol)
                    ldim, lsmooth, lres = ld.dim, ld.smooth, ld.residual
                else:
                    ldim, lsmooth, lres = -1, False, np.nan
                mdim = (cdim if cdim >= 0 else -1) if H == 1 else (ldim if (self.do_local and lsmooth) else -1)
                codim, lower, reason = stable_codimension(inr, mdim)
                if H == 1 and self.do_local and cdim >= 0 and ldim != cdim:
                    reason += f"; WARNING chart rank {cdim} != refinement-cloud dimension {ldim}"
                eig = inr.eigenvalues
                cols["theta"].append(self._to_flow(th))
                cols["family"].append(ch.family)
                cols["grad_norm"].append(g)
                cols["loss"].append(L)
                cols["loss_error"].append(abs(L - st.critical_value))
                cols["n_negative"].append(inr.n_negative)
                cols["n_zero"].append(inr.n_zero)
                cols["n_positive"].append(inr.n_positive)
                cols["zero_tol"].append(inr.zero_tol)
                cols["gap"].append(inr.gap)
                cols["min_eigenvalue"].append(float(eig[0]) if eig is not None and eig.size else np.nan)
                cols["decided"].append(bool(inr.decided))
                cols["chart_dim"].append(int(cdim))
                cols["chart_gap"].append(float(cgap))
                cols["local_dim"].append(int(ldim))
                cols["local_smooth"].append(bool(lsmooth))
                cols["local_residual"].append(float(lres))
                cols["manifold_dim"].append(int(mdim))
                cols["morse_bott"].append(is_morse_bott(inr, mdim))
                cols["stable_codim"].append(int(codim))
                cols["stable_codim_lower"].append(int(lower))
                cols["layer_ranks"].append(_layer_ranks(net.unpack(th)))
                cols["reason"].append(reason)
                cols["is_critical"].append(bool(g <= grad_ok * max(1.0, float(np.linalg.norm(th))) ** (H + 1)))
        points = {k: np.asarray(v) for k, v in cols.items() if k != "theta"}
        points["theta"] = np.asarray(cols["theta"]).reshape(-1, self._model.n_params)
        is_min = st.rank == pb.d_y
        kind = set_kind(points["n_negative"], points["morse_bott"], points["decided"],
                        minimum=is_min, global_min=is_min)
        return CriticalSet(key=cs.key, label=cs.label, critical_value=cs.critical_value, rank=cs.rank, kind=kind,
                           measured=True, points=points, info=cs.info)

    def _to_flow(self, theta_canonical: Params) -> Params:
        if self.coordinates == "canonical":
            return np.asarray(theta_canonical)
        W = self._canonical.unpack(theta_canonical)
        return self._model.pack(self.problem.from_canonical(W))

