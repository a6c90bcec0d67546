r"""The critical atlas: every selected stratum, sampled, linearized and compared with the paper's counts.

For each stratum S (see :func:`flowgeom.critical.enumerate_strata`) and each family of points
(:mod:`flowgeom.critical.manifolds`), ``points_per_stratum`` points are drawn through the chart;
at each the gradient, loss, Hessian inertia (:func:`flowgeom.linearize.hessian_inertia`), the
chart's Jacobian rank and the model-agnostic local dimension of the critical set
(:func:`flowgeom.critical.refine.local_dimension`) are measured. The result is the ``strata``
Dataset (schema: flowgeom.schema), with a second dimension ``point`` holding the per-point measurements.

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

from typing import Iterable, Sequence

import numpy as np

from flowgeom.critical.linearization import GAP_MIN, ZERO_RTOL
from flowgeom.linear.strata import enumerate_strata
from flowgeom.linear.charts import RANK_RTOL

__all__ = [
    "build_strata_dataset",
    "strata_table",
]


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
    atlas=None,
):
    r"""The ``strata`` Dataset of a deep linear problem: measured linearization beside the paper's counts.

    Builds (or takes) the :class:`flowgeom.linear.ClosedFormAtlas` of ``problem``, measures the
    selected strata (:meth:`~flowgeom.linear.ClosedFormAtlas.measure`: ``points_per_stratum`` points
    per family drawn through the charts, inertia, chart rank, refinement-cloud dimension), writes the
    generic Dataset of :func:`flowgeom.critical.dataset.strata_dataset`. The paper's columns are
    joined by :func:`flowgeom.audit.add_paper_columns` (the command line and :func:`flowgeom.atlas`
    do it), so that deep-linear measurements and paper knowledge stay in separate places.

    Parameters
    ----------
    problem : Problem
    ranks, sets, top_only
        Stratum selection, as in :func:`flowgeom.linear.enumerate_strata`. Default: all strata.
    points_per_stratum, seed, families, inertia_method, zero_rtol, gap_min, rank_rtol, local_dim, chart_rank
        See :class:`flowgeom.linear.ClosedFormAtlas`.
    store_points : bool or "auto", default "auto"
        Keep ``point_theta`` (dims point x param); "auto": when n <= 20000.
    progress : bool, default False
        A progress bar over strata.
    atlas : ClosedFormAtlas, optional
        Measure in this atlas (it keeps the measurements) instead of a new one.

    Returns
    -------
    xarray.Dataset
        One row per selected stratum (coords ``label``, ``rank``, ``critical_value``) and one per
        sampled point; see :func:`flowgeom.critical.dataset.strata_dataset`.
    """
    from flowgeom.critical.dataset import strata_dataset
    from flowgeom.linear.atlas import ClosedFormAtlas, learned_key

    if store_points not in (True, False, "auto"):
        raise ValueError(f"`store_points` must be True, False or 'auto'; got {store_points!r}.")
    strata = enumerate_strata(problem, ranks=ranks, sets=sets, top_only=top_only)
    if atlas is None:
        atlas = ClosedFormAtlas(problem, points_per_stratum=points_per_stratum, seed=seed, families=families,
                                inertia_method=inertia_method, zero_rtol=zero_rtol, gap_min=gap_min,
                                rank_rtol=rank_rtol, local_dim=local_dim, chart_rank=chart_rank)
    keys = [learned_key(st.learned) for st in strata]
    atlas.measure(keys, progress=progress)
    ds = strata_dataset(atlas, keys)
    if store_points is False or (store_points == "auto" and atlas.model.n_params > 20000):
        ds = ds.drop_vars("point_theta", errors="ignore")
    return ds


def strata_table(ds) -> str:
    r"""A short human-readable table of a ``strata`` Dataset (any model): measured numbers beside the paper's.

    Columns: label, r, critical value, inertia (n-, n0, n+; ranges ``a..b`` where points differ),
    manifold dimension, Morse–Bott, stable codimension (``-`` undecided), kind, then, where the
    Dataset has them (deep linear problems), :math:`D_C^r`, :math:`n_0+n_-` vs :math:`U_S^r`, the
    paper's codimension, and a flag ``!`` where a measured number contradicts the paper. Unmeasured
    strata show ``.``.
    """
    def rng_(name, i):
        lo, hi = int(ds[name + "_min"].values[i]), int(ds[name + "_max"].values[i])
        return str(lo) if lo == hi else f"{lo}..{hi}"

    def opt(v):
        v = int(v)
        return "-" if v < 0 else str(v)

    paper = "paper_dim_bound" in ds
    measured = ds["measured"].values if "measured" in ds else np.ones(ds.sizes["stratum"], dtype=bool)
    w = ds.attrs.get("widths", [])
    head = (
        f"strata of widths {tuple(w)}, s = {tuple(ds.attrs.get('singular_values', []))}, "
        f"dim X = {ds.attrs.get('dim_X', '?')}"
    )
    if "n_strata_total" in ds.attrs:
        head += f"; {int(np.sum(measured))} measured of {ds.sizes['stratum']} listed, {ds.attrs['n_strata_total']} in all"
    offset = float(ds.attrs.get("loss_offset", 0.0))
    if offset:
        head += f"; data loss = critical value + {offset:.6g}"
    cols = ["label", "r", "L*", "n-", "n0", "n+", "dim", "MB", "codim", "kind"]
    if paper:
        cols += ["D_C", "n0+n-", "U_S", "paper codim", "!"]
    rows = []
    for i in range(ds.sizes["stratum"]):
        base = [str(ds["label"].values[i]), opt(ds["rank"].values[i]), f"{float(ds['critical_value'].values[i]):.4g}"]
        if not measured[i]:
            row = base + ["."] * 6 + [str(ds["kind_closed_form"].values[i]) if "kind_closed_form" in ds else "."]
            if paper:
                row += [opt(ds["paper_dim_bound"].values[i]), ".", opt(ds["paper_escape_bound"].values[i]),
                        opt(ds["paper_codim_bound"].values[i]), ""]
            rows.append(row)
            continue
        row = base + [
            rng_("n_negative", i),
            rng_("n_zero", i),
            rng_("n_positive", i),
            opt(ds["manifold_dim"].values[i]),
            "yes" if bool(ds["morse_bott"].values[i]) else "no",
            opt(ds["stable_codim"].values[i]),
            str(ds["kind"].values[i]),
        ]
        if paper:
            row += [
                opt(ds["paper_dim_bound"].values[i]),
                str(int(ds["escape_dim"].values[i])),
                opt(ds["paper_escape_bound"].values[i]),
                opt(ds["paper_codim_bound"].values[i]),
                "!" if bool(ds["contradicts_paper"].values[i]) else "",
            ]
        rows.append(row)
    widths_ = [max(len(c), *(len(r[j]) for r in rows)) if rows else len(c) for j, c in enumerate(cols)]
    fmt = lambda r: "  ".join(x.rjust(widths_[j]) if j else x.ljust(widths_[j]) for j, x in enumerate(r))  # noqa: E731
    lines = [head, fmt(cols), fmt(["-" * x for x in widths_])]
    lines += [fmt(r) for r in rows]
    if paper:
        flagged = [i for i in range(ds.sizes["stratum"]) if bool(ds["contradicts_paper"].values[i])]
        if flagged:
            lines.append("! contradicts the paper:")
            for i in flagged:
                lines.append(f"  {ds['label'].values[i]}: {ds['paper_check'].values[i]}")
    return "\n".join(lines)
