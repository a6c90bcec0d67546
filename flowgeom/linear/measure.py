r"""The critical atlas: every selected stratum, sampled, linearized and compared with the paper's counts.

For each stratum S (see :func:`flowgeom.critical.enumerate_strata`) and each family of points
(:mod:`flowgeom.critical.manifolds`), ``points_per_stratum`` points are drawn through the chart;
at each the gradient, loss, Hessian inertia (:func:`flowgeom.linearize.hessian_inertia`), the
chart's Jacobian rank and the model-agnostic local dimension of the critical set
(:func:`flowgeom.critical.refine.local_dimension`) are measured. The result is the ``strata``
Dataset of DESIGN.md, with a second dimension ``point`` holding the per-point measurements.

Paper's numbers (H = 1, 1 <= r <= d_y - 1 only; -1 elsewhere):

.. math::

    D_C^r = 2 d_1 r - r^2 + (d_1 - r)(d_x - d_y) \quad\text{(Lemma 3)}, \qquad
    U_S^r = D_C^r + (d_y - r)(d_1 - r) + 1 \quad\text{(Lemma 4)},

and the codimension its argument (Proof 2) assigns to the initializations converging to
:math:`\mathrm{Crit}_r`: :math:`U_S^r - D_C^r = (d_y - r)(d_1 - r) + 1 \ge 2`.

What is measured against them: ``manifold_dim`` against :math:`D_C^r`; ``escape_dim`` =
:math:`n_0 + n_-` (the dimension of the span of the Hessian's zero and negative eigenvectors, the
measured counterpart of :math:`\dim\mathcal{C}(\Xi)`, the span of variations that do not converge to
:math:`\Xi`) against :math:`U_S^r`; ``stable_codim`` against the paper's codimension.

What the measurements show for H = 1 (shapes (3,2,2), (4,3,2), (4,4,3), (6,5,4); all
:math:`2^{d_y}` strata; tests in ``tests/test_linearize.py`` check the closed forms below):

- Every stratum, including S = {} (r = 0, omitted by the paper's union over r = 1..d_y), is a
  manifold of dimension :math:`2d_1r - r^2 + (d_1-r)(d_x-d_y)`: Lemma 3's "upper bound"
  :math:`D_C^r` is attained by every S of rank r.
- The Hessian kernel is exactly the tangent space (Morse–Bott everywhere). In the basis of
  Lemma 2 the Hessian splits into a positive semi-definite block on :math:`(a_1, c_1, b)` whose
  kernel is the tangent space, and one block per unlearned mode k on :math:`(a_2^{(k)}, c_2^{(k)})`,
  :math:`\begin{bmatrix}\bar C^T\bar C & -s_k I\\ -s_k I & \bar A\bar A^T + BB^T\end{bmatrix}`,
  nonsingular because :math:`s_k^2` is not an eigenvalue of :math:`(\bar A\bar A^T + BB^T)\bar C^T\bar C`
  (whose non-zero eigenvalues are :math:`s_i^2`, i in S), with
  :math:`d_1 - \#\{i \in S: s_i > s_k\}` negative eigenvalues. Hence
  :math:`n_- = \sum_{k\notin S}(d_1 - \#\{i\in S: s_i > s_k\})` and, for the top set
  S = {0..r-1}, :math:`n_- = (d_y - r)(d_1 - r)`.
- So the set of initializations flowing into the top stratum of rank r has codimension
  :math:`(d_y-r)(d_1-r)`, one less than the :math:`(d_y-r)(d_1-r)+1` of Proof 2, and the measured
  :math:`n_0 + n_- = U_S^r - 1` violates Lemma 4's lower bound at every top stratum. The count in
  Lemma 4 treats the solutions :math:`c_2` of (14) as a space of dimension :math:`(d_y-r)(d_1-r)`,
  but :math:`c_2^T E_Y^2 = \bar C^T\bar C\bar A\bar A^T c_2^T` has only :math:`c_2 = 0` when
  :math:`s_k^2` is not an eigenvalue of :math:`\bar C^T\bar C\bar A\bar A^T` (distinct s). The
  measured number of negative directions at the top stratum happens to equal that miscounted
  :math:`(d_y-r)(d_1-r)`, so :math:`D_C^r + (d_y-r)(d_1-r)` is the right escape dimension and the
  extra "+1" (the negative eigenvalue of Proposition 2) is counted twice.
- For (3,2,2) the stratum {0} has :math:`n_- = 1`: its stable set is a hypersurface. It separates
  the basins of the two components of the global minimum set (sign of :math:`\det W_2`), which a
  set of codimension >= 2 could not do, so the paper's conclusion
  :math:`D_C^r + D_S^r \le \dim\mathcal{X} - 2` is false there (the measure-zero conclusion of
  Theorem 1 is unaffected). ``tests/test_linearize.py`` finds a point of this separatrix by
  bisection with ``scipy.integrate.solve_ivp`` and shows its trajectory stalling at the {0} value.
- Proposition 2's classification (all r < d_y strict saddles, r = d_y minima) is confirmed.

For H >= 2 (measured, not in the paper): the strata contain points whose linearizations differ.
Points of the family ``"outer"`` (generic middle layers) are Morse–Bott strict saddles; points of
``"tight"`` families with S = {0..r-1} have :math:`n_- = 0` and a critical set that is not a manifold
there (non-strict saddles, stable codimension undecided by linearization); the origin has a zero
Hessian. The ranges are reported per stratum (``n_negative_min``/``_max`` ...).

Coordinates. The atlas is computed for the canonical loss :math:`\tfrac12\|\Sigma - \bar P\|_F^2`.
For non-whitened data the data loss is :math:`L(\bar W) + c` under the linear change of variables
:meth:`flowgeom.Problem.to_canonical`, a diffeomorphism: critical points correspond, critical values
differ by the constant ``loss_offset`` (stored in the attrs), and Hessian inertia is the same
(Sylvester's law of inertia, since the Hessians are congruent at critical points).
Dimensions and codimensions are invariant under a diffeomorphism.
"""

from __future__ import annotations

from collections import Counter
from typing import Iterable, Sequence

import numpy as np

from flowgeom._version import __version__
from flowgeom.critical.linearization import GAP_MIN, ZERO_RTOL, hessian_inertia, stable_codimension
from flowgeom.models.deep_linear import DeepLinearNetwork
from flowgeom.linear.strata import Stratum, _problem_parts, enumerate_strata
from flowgeom.linear.charts import RANK_RTOL, charts_for_stratum
from flowgeom.critical.refinement import local_dimension

__all__ = [
    "paper_bounds",
    "build_strata_dataset",
    "strata_table",
    "LOCAL_DIM_MAX",
    "CHART_RANK_MAX",
]

LOCAL_DIM_MAX = 200
"""``local_dim="auto"`` measures the local dimension by refinement clouds up to this many parameters."""

CHART_RANK_MAX = 2000
"""``chart_rank="auto"`` computes the chart's Jacobian rank up to this many parameters."""

# A point counts as critical when ||grad L|| <= this * max(1, ||theta||)^(H+1) * max(1, s_max):
# round-off of the gradient of a product of H+1 factors. Points failing it are still recorded.
GRAD_ROUNDOFF = 1e-12


def paper_bounds(widths: Sequence[int], rank: int) -> tuple[int, int, int]:
    r"""The paper's :math:`(D_C^r, U_S^r, U_S^r - D_C^r)` for H = 1 and 1 <= r <= d_y - 1; (-1, -1, -1) elsewhere.

    :math:`D_C^r = 2d_1r - r^2 + (d_1-r)(d_x-d_y)` (Lemma 3),
    :math:`U_S^r = D_C^r + (d_y-r)(d_1-r) + 1` (Lemma 4), and the codimension of the set of
    initializations converging to :math:`\mathrm{Crit}_r` that Proof 2 concludes,
    :math:`\dim\mathcal{X} - (D_C^r + \dim\mathcal{X} - U_S^r) = (d_y-r)(d_1-r)+1`.
    """
    w = tuple(int(d) for d in widths)
    if len(w) != 3:
        return -1, -1, -1
    dx, d1, dy = w
    r = int(rank)
    if not (1 <= r <= dy - 1):
        return -1, -1, -1
    DC = 2 * d1 * r - r * r + (d1 - r) * (dx - dy)
    US = DC + (dy - r) * (d1 - r) + 1
    return DC, US, US - DC


def _layer_ranks(W, tol=1e-9):
    out = []
    for Wj in W:
        sv = np.linalg.svd(Wj, compute_uv=False)
        out.append(int(np.sum(sv > tol * max(1.0, sv[0] if sv.size else 0.0))) if sv.size and sv[0] > 0 else 0)
    return ",".join(str(k) for k in out)


def _seed_for(seed, learned, family_index):
    return np.random.default_rng([int(seed), len(learned), *[int(i) + 1 for i in learned], 1000 + family_index])


def build_strata_dataset(
    problem,
    *,
    ranks: Sequence[int] | None = None,
    sets: Iterable[Iterable[int]] | None = None,
    top_only: bool = False,
    points_per_stratum: int = 3,
    seed: int = 0,
    families: Sequence[str] | None = None,
    inertia_method: str = "auto",
    zero_rtol: float = ZERO_RTOL,
    gap_min: float = GAP_MIN,
    rank_rtol: float = RANK_RTOL,
    local_dim: bool | str = "auto",
    chart_rank: bool | str = "auto",
    store_points: bool | str = "auto",
    progress: bool = False,
):
    r"""Build the ``strata`` Dataset (DESIGN.md): per stratum, measured linearization beside the paper's counts.

    Parameters
    ----------
    problem : Problem
        The atlas is computed on its canonical loss (see the module docstring for non-whitened data).
    ranks, sets, top_only
        Stratum selection, as in :func:`flowgeom.critical.enumerate_strata`. Default: all
        :math:`2^{d_y}` strata.
    points_per_stratum : int, default 3
        Points drawn per family of each stratum (H = 1 has one family, ``"outer"``, the whole
        stratum; H >= 2 has several, see :func:`flowgeom.critical.manifolds.family_names`).
    seed : int, default 0
        Root seed; each (stratum, family) gets its own generator derived from (seed, S, family),
        so results do not depend on which other strata are selected.
    families : sequence of str, optional
        Override the families sampled (families invalid for a stratum are skipped).
    inertia_method : str, default "auto"
        Passed to :func:`flowgeom.linearize.hessian_inertia` (``"dense"``, ``"ldl"``, ``"lanczos"``).
    zero_rtol : float, default ``ZERO_RTOL`` (1e-8)
        Hessian zero tolerance relative to its spectral norm.
    gap_min : float, default ``GAP_MIN`` (1e3)
        Spectral gap required for a decided inertia.
    rank_rtol : float, default ``RANK_RTOL`` (1e-8)
        Relative singular-value cutoff for the chart's Jacobian rank.
    local_dim : bool or "auto", default "auto"
        Measure the local dimension of the critical set by refinement clouds
        (:func:`flowgeom.critical.refine.local_dimension`); "auto": when n <= ``LOCAL_DIM_MAX``.
    chart_rank : bool or "auto", default "auto"
        Compute the chart's Jacobian rank (complex step + SVD); "auto": when n <= ``CHART_RANK_MAX``.
    store_points : bool or "auto", default "auto"
        Store the sampled parameter vectors (``point_theta``, dims point x param); "auto": n <= 20000.
    progress : bool, default False
        Show a tqdm progress bar over strata.

    Returns
    -------
    xarray.Dataset
        Dimension ``stratum`` (coords ``label``, ``rank``, ``critical_value``) with ``n_negative``,
        ``n_zero``, ``n_positive`` (values at the stratum's most common point type) and their
        ``_min``/``_max`` over all sampled points, ``manifold_dim`` (+ ``_min``/``_max``),
        ``morse_bott``, ``stable_codim``, ``stable_codim_lower``, ``escape_dim``, ``kind``,
        ``kind_closed_form``, ``paper_kind``, ``paper_dim_bound``, ``paper_escape_bound``,
        ``paper_codim_bound``, ``contradicts_paper``, ``paper_check`` (text), ``n_points``,
        ``max_grad_norm``, ``max_loss_error``; dimension ``point`` with the per-point measurements
        (``point_stratum`` indexes ``stratum``).

    Notes
    -----
    Per point: ``manifold_dim`` is, for H = 1, the rank of the chart's Jacobian (the chart is onto
    the stratum, Lemma 2), cross-checked by the refinement-cloud dimension (``point_local_dim``);
    for H >= 2 the chart covers one family only, so ``manifold_dim`` is the refinement-cloud
    dimension of the critical set (-1 where the cloud shows that the critical set is not a
    manifold there, e.g. at the origin for H >= 2). ``morse_bott`` is ``n_zero == manifold_dim``.
    ``stable_codim`` is :math:`n_-` at Morse–Bott points and -1 ("undecided by linearization")
    elsewhere (see :mod:`flowgeom.linearize`); ``stable_codim_lower`` = :math:`n_-` is a lower
    bound valid at every point.

    Per stratum: ``manifold_dim`` is the largest dimension measured on it; ``morse_bott`` holds when
    every sampled point is Morse–Bott; ``stable_codim`` is the smallest :math:`n_-` when all points
    are Morse–Bott (the set flowing into a union of pieces has the smallest codimension of its
    pieces), else -1; ``kind`` is ``"global_min"`` for r = d_y, ``"non_strict_saddle"`` when some
    sampled point has no negative eigenvalue, else ``"strict_saddle"``.
    """
    import xarray as xr

    widths, s = _problem_parts(problem)
    H = len(widths) - 2
    dx, dy = widths[0], widths[-1]
    if isinstance(points_per_stratum, bool) or not isinstance(points_per_stratum, (int, np.integer)) or points_per_stratum < 1:
        raise ValueError(f"`points_per_stratum` must be a positive int; got {points_per_stratum!r}.")
    for name, val in (("local_dim", local_dim), ("chart_rank", chart_rank), ("store_points", store_points)):
        if val not in (True, False, "auto"):
            raise ValueError(f"`{name}` must be True, False or 'auto'; got {val!r}.")
    strata = enumerate_strata(problem, ranks=ranks, sets=sets, top_only=top_only)
    net = DeepLinearNetwork.canonical(widths, s)
    n = net.n_params
    do_local = (n <= LOCAL_DIM_MAX) if local_dim == "auto" else bool(local_dim)
    do_chart = (n <= CHART_RANK_MAX) if chart_rank == "auto" else bool(chart_rank)
    do_store = (n <= 20000) if store_points == "auto" else bool(store_points)
    grad_ok_scale = GRAD_ROUNDOFF * max(1.0, float(s[0]))

    P = {k: [] for k in (
        "stratum", "family", "label", "grad_norm", "loss", "loss_error", "n_negative", "n_zero", "n_positive",
        "zero_tol", "gap", "min_eigenvalue", "inertia_decided", "chart_dim", "chart_gap", "local_dim",
        "local_smooth", "local_residual", "manifold_dim", "morse_bott", "stable_codim", "stable_codim_lower",
        "layer_ranks", "reason", "is_critical",
    )}
    thetas = []
    iterator = enumerate(strata)
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, total=len(strata), desc="strata")
    for k, st in iterator:
        charts = charts_for_stratum(problem, st.learned)
        if families is not None:
            charts = []
            for f in families:
                try:
                    charts.extend(charts_for_stratum(problem, st.learned, families=[f]))
                except ValueError:
                    continue
        for fi, ch in enumerate(charts):
            rng = _seed_for(seed, st.learned, fi)
            for _ in range(points_per_stratum):
                z = ch.sample(rng)
                th = ch.point(z)
                g = float(np.linalg.norm(net.grad(th)))
                L = float(net.loss(th))
                inr = hessian_inertia(net, th, method=inertia_method, zero_rtol=zero_rtol, gap_min=gap_min)
                if do_chart:
                    cdim, cgap = ch.tangent_dim(z, rtol=rank_rtol)
                else:
                    cdim, cgap = -1, np.nan
                if do_local:
                    ld = local_dimension(net, th, rng=rng, zero_rtol=zero_rtol)
                    ldim, lsmooth, lres = ld.dim, ld.smooth, ld.residual
                else:
                    ldim, lsmooth, lres = -1, False, np.nan
                if H == 1:
                    mdim = cdim if cdim >= 0 else -1
                else:
                    mdim = ldim if (do_local and lsmooth) else -1
                codim, lower, reason = stable_codimension(inr, mdim)
                if H == 1 and do_local and cdim >= 0 and ldim != cdim:
                    reason += f"; WARNING chart rank {cdim} != refinement-cloud dimension {ldim}"
                crit_scale = grad_ok_scale * max(1.0, float(np.linalg.norm(th))) ** (H + 1)
                P["stratum"].append(k)
                P["family"].append(ch.family)
                P["label"].append(ch.label)
                P["grad_norm"].append(g)
                P["loss"].append(L)
                P["loss_error"].append(abs(L - st.critical_value))
                P["n_negative"].append(inr.n_negative)
                P["n_zero"].append(inr.n_zero)
                P["n_positive"].append(inr.n_positive)
                P["zero_tol"].append(inr.zero_tol)
                P["gap"].append(inr.gap)
                P["min_eigenvalue"].append(float(inr.eigenvalues[0]) if inr.eigenvalues is not None and inr.eigenvalues.size else np.nan)
                P["inertia_decided"].append(bool(inr.decided))
                P["chart_dim"].append(int(cdim))
                P["chart_gap"].append(float(cgap))
                P["local_dim"].append(int(ldim))
                P["local_smooth"].append(bool(lsmooth))
                P["local_residual"].append(float(lres))
                P["manifold_dim"].append(int(mdim))
                P["morse_bott"].append(bool(inr.decided and mdim >= 0 and inr.n_zero == mdim))
                P["stable_codim"].append(int(codim))
                P["stable_codim_lower"].append(int(lower))
                P["layer_ranks"].append(_layer_ranks(net.unpack(th)))
                P["reason"].append(reason)
                P["is_critical"].append(bool(g <= crit_scale))
                if do_store:
                    thetas.append(th)

    pst = np.array(P["stratum"], dtype=np.int64)
    rows = {key: [] for key in (
        "n_negative", "n_zero", "n_positive", "n_negative_min", "n_negative_max", "n_zero_min", "n_zero_max",
        "n_positive_min", "n_positive_max", "manifold_dim", "manifold_dim_min", "manifold_dim_max", "morse_bott",
        "stable_codim", "stable_codim_lower", "escape_dim", "kind", "kind_closed_form", "paper_kind",
        "paper_dim_bound", "paper_escape_bound", "paper_codim_bound", "contradicts_paper", "paper_check",
        "n_points", "max_grad_norm", "max_loss_error",
    )}
    for k, st in enumerate(strata):
        idx = np.nonzero(pst == k)[0]
        trip = [(P["n_negative"][i], P["n_zero"][i], P["n_positive"][i]) for i in idx]
        mode = Counter(trip).most_common(1)[0][0]
        for j, name in enumerate(("n_negative", "n_zero", "n_positive")):
            vals = [t[j] for t in trip]
            rows[name].append(mode[j])
            rows[name + "_min"].append(min(vals))
            rows[name + "_max"].append(max(vals))
        md = [P["manifold_dim"][i] for i in idx]
        known = [d for d in md if d >= 0]
        rows["manifold_dim"].append(max(known) if known else -1)
        rows["manifold_dim_min"].append(min(md))
        rows["manifold_dim_max"].append(max(md))
        mb_all = all(P["morse_bott"][i] for i in idx)
        rows["morse_bott"].append(bool(mb_all))
        rows["stable_codim"].append(int(min(P["n_negative"][i] for i in idx)) if mb_all else -1)
        lowers = [P["stable_codim_lower"][i] for i in idx]
        rows["stable_codim_lower"].append(min(lowers) if all(v >= 0 for v in lowers) else -1)
        esc = mode[0] + mode[1]
        rows["escape_dim"].append(esc)
        if st.rank == dy:
            kind = "global_min"
        elif any(P["n_negative"][i] == 0 for i in idx):
            kind = "non_strict_saddle"
        else:
            kind = "strict_saddle"
        rows["kind"].append(kind)
        rows["kind_closed_form"].append(st.kind)
        rows["paper_kind"].append(
            ("global_min" if st.rank == dy else "strict_saddle") if H == 1 else "n/a"
        )
        DC, US, PC = paper_bounds(widths, st.rank)
        rows["paper_dim_bound"].append(DC)
        rows["paper_escape_bound"].append(US)
        rows["paper_codim_bound"].append(PC)
        notes = []
        contra = False
        mdim = rows["manifold_dim"][-1]
        if DC >= 0:
            if mdim > DC:
                notes.append(f"dim {mdim} > D_C {DC}: Lemma 3 violated")
                contra = True
            elif mdim == DC:
                notes.append(f"dim {mdim} = D_C (bound attained)")
            elif mdim >= 0:
                notes.append(f"dim {mdim} < D_C {DC}")
            esc_min = min(P["n_negative"][i] + P["n_zero"][i] for i in idx)
            if esc_min < US:
                notes.append(f"n0+n- = {esc_min} < U_S {US}: Lemma 4 violated")
                contra = True
            else:
                notes.append(f"n0+n- = {esc_min} >= U_S {US}")
            sc = rows["stable_codim"][-1]
            if sc >= 0 and sc < PC:
                notes.append(f"stable codim {sc} < paper codim {PC}" + (" (< 2: paper's 'dim X - 2' fails)" if sc < 2 else ""))
                contra = True
            elif sc >= 0:
                notes.append(f"stable codim {sc} >= paper codim {PC}")
        if H == 1 and rows["kind"][-1] != rows["paper_kind"][-1]:
            notes.append(f"kind {rows['kind'][-1]} != Proposition 2's {rows['paper_kind'][-1]}")
            contra = True
        rows["contradicts_paper"].append(bool(contra))
        rows["paper_check"].append("; ".join(notes) if notes else "no paper count for this stratum")
        rows["n_points"].append(int(idx.size))
        rows["max_grad_norm"].append(float(max(P["grad_norm"][i] for i in idx)))
        rows["max_loss_error"].append(float(max(P["loss_error"][i] for i in idx)))

    str_vars = {"kind", "kind_closed_form", "paper_kind", "paper_check"}
    data_vars = {}
    for key, vals in rows.items():
        if key in str_vars:
            data_vars[key] = ("stratum", np.array(vals, dtype=object))
        elif key in ("morse_bott", "contradicts_paper"):
            data_vars[key] = ("stratum", np.array(vals, dtype=bool))
        elif key in ("max_grad_norm", "max_loss_error"):
            data_vars[key] = ("stratum", np.array(vals, dtype=np.float64))
        else:
            data_vars[key] = ("stratum", np.array(vals, dtype=np.int64))
    pstr = {"family", "label", "layer_ranks", "reason"}
    pbool = {"inertia_decided", "local_smooth", "morse_bott", "is_critical"}
    pfloat = {"grad_norm", "loss", "loss_error", "zero_tol", "gap", "min_eigenvalue", "chart_gap", "local_residual"}
    for key, vals in P.items():
        if key in pstr:
            arr = np.array(vals, dtype=object)
        elif key in pbool:
            arr = np.array(vals, dtype=bool)
        elif key in pfloat:
            arr = np.array(vals, dtype=np.float64)
        else:
            arr = np.array(vals, dtype=np.int64)
        data_vars["point_" + key] = ("point", arr)
    if do_store and thetas:
        data_vars["point_theta"] = (("point", "param"), np.array(thetas))
    coords = {
        "label": ("stratum", np.array([st.label for st in strata], dtype=object)),
        "rank": ("stratum", np.array([st.rank for st in strata], dtype=np.int64)),
        "critical_value": ("stratum", np.array([st.critical_value for st in strata], dtype=np.float64)),
    }
    attrs = dict(problem.attrs()) if hasattr(problem, "attrs") else {}
    attrs.update(
        {
            "flowgeom_version": __version__,
            "widths": list(widths),
            "singular_values": [float(v) for v in s],
            "depth_H": H,
            "seed": int(seed),
            "atlas_coordinates": "canonical",  # not "coordinates": a reserved CF attribute in netCDF
            "loss_offset": float(getattr(problem, "loss_offset", 0.0)),
            "dim_X": int(n),
            "points_per_stratum": int(points_per_stratum),
            "inertia_method": str(inertia_method),
            "zero_rtol": float(zero_rtol),
            "gap_min": float(gap_min),
            "rank_rtol": float(rank_rtol),
            "local_dim_measured": int(bool(do_local)),
            "chart_rank_measured": int(bool(do_chart)),
            "manifold_dim_source": "chart Jacobian rank (H = 1)" if H == 1 else "refinement-cloud local dimension (H >= 2)",
            "stable_codim_rule": "n_negative where every sampled point is Morse-Bott; -1 = undecided by linearization",
            "paper_bounds": "D_C^r (Lemma 3), U_S^r (Lemma 4), U_S^r - D_C^r (Proof 2); H = 1, 1 <= r <= d_y - 1 only",
        }
    )
    if "whitened" not in attrs:
        attrs["whitened"] = True
    return xr.Dataset(data_vars=data_vars, coords=coords, attrs=attrs)


def strata_table(ds) -> str:
    r"""A short human-readable table of a ``strata`` Dataset: measured numbers beside the paper's.

    Columns: label, r, critical value, inertia (n-, n0, n+; ranges ``a..b`` where points differ),
    manifold dimension, Morse–Bott, stable codimension (``-`` undecided), kind, then
    :math:`D_C^r`, :math:`n_0+n_-` vs :math:`U_S^r`, the paper's codimension, and a flag ``!``
    where a measured number contradicts the paper.
    """
    def rng_(name, i):
        lo, hi = int(ds[name + "_min"].values[i]), int(ds[name + "_max"].values[i])
        return str(lo) if lo == hi else f"{lo}..{hi}"

    def opt(v):
        v = int(v)
        return "-" if v < 0 else str(v)

    w = ds.attrs.get("widths", [])
    head = (
        f"strata of widths {tuple(w)}, s = {tuple(ds.attrs.get('singular_values', []))}, "
        f"dim X = {ds.attrs.get('dim_X', '?')}"
    )
    cols = ["label", "r", "L*", "n-", "n0", "n+", "dim", "MB", "codim", "kind", "D_C", "n0+n-", "U_S", "paper codim", "!"]
    rows = []
    for i in range(ds.sizes["stratum"]):
        rows.append([
            str(ds["label"].values[i]),
            str(int(ds["rank"].values[i])),
            f"{float(ds['critical_value'].values[i]):.4g}",
            rng_("n_negative", i),
            rng_("n_zero", i),
            rng_("n_positive", i),
            opt(ds["manifold_dim"].values[i]),
            "yes" if bool(ds["morse_bott"].values[i]) else "no",
            opt(ds["stable_codim"].values[i]),
            str(ds["kind"].values[i]),
            opt(ds["paper_dim_bound"].values[i]),
            str(int(ds["escape_dim"].values[i])),
            opt(ds["paper_escape_bound"].values[i]),
            opt(ds["paper_codim_bound"].values[i]),
            "!" if bool(ds["contradicts_paper"].values[i]) else "",
        ])
    widths_ = [max(len(c), *(len(r[j]) for r in rows)) if rows else len(c) for j, c in enumerate(cols)]
    fmt = lambda r: "  ".join(x.rjust(widths_[j]) if j else x.ljust(widths_[j]) for j, x in enumerate(r))
    lines = [head, fmt(cols), fmt(["-" * x for x in widths_])]
    lines += [fmt(r) for r in rows]
    flagged = [i for i in range(ds.sizes["stratum"]) if bool(ds["contradicts_paper"].values[i])]
    if flagged:
        lines.append("! contradicts the paper:")
        for i in flagged:
            lines.append(f"  {ds['label'].values[i]}: {ds['paper_check'].values[i]}")
    return "\n".join(lines)
