r"""The paper's counts in one place, and the ``paper_*`` columns joined onto a strata Dataset.

.. math::

    D_C^r = 2 d_1 r - r^2 + (d_1 - r)(d_x - d_y) \quad\text{(Lemma 3)}, \qquad
    U_S^r = D_C^r + (d_y - r)(d_1 - r) + 1 \quad\text{(Lemma 4)},

and the codimension :math:`U_S^r - D_C^r = (d_y - r)(d_1 - r) + 1` that Proof 2 assigns to the set of
initializations converging to :math:`\mathrm{Crit}_r`. The paper states them for H = 1 and
:math:`1 \le r \le d_y - 1` only; Proposition 2 classifies rank-:math:`d_y` points as global minima
and the others as strict saddles (H = 1).

:func:`add_paper_columns` compares a strata Dataset's *measured* variables with these numbers; it is
the only place where the paper's knowledge meets the measurements, so the strata builder of any
model stays free of it (for a model that is not a one-hidden-layer linear network every paper
column is -1 / ``"n/a"``).

References
----------
Z. Liao, Y. Chitour, R. Couillet, "Almost global convergence to global minima for gradient
descent in deep linear networks" (the paper in ``shared/paper``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from flowgeom._validate import InputError

__all__ = ["PAPER_COLUMNS", "add_paper_columns", "paper_bounds"]

PAPER_COLUMNS = (
    "paper_dim_bound", "paper_escape_bound", "paper_codim_bound", "paper_kind", "contradicts_paper", "paper_check",
)
"""The variables :func:`add_paper_columns` writes (dimension ``stratum``)."""

_NO_COUNT = "no paper count for this stratum"


def paper_bounds(widths: Sequence[int], rank: int) -> tuple[int, int, int]:
    r"""The paper's :math:`(D_C^r, U_S^r, U_S^r - D_C^r)` for H = 1 and 1 <= r <= d_y - 1; (-1, -1, -1) elsewhere.

    :math:`D_C^r = 2d_1r - r^2 + (d_1-r)(d_x-d_y)` (Lemma 3),
    :math:`U_S^r = D_C^r + (d_y-r)(d_1-r) + 1` (Lemma 4), and the codimension of the set of
    initializations converging to :math:`\mathrm{Crit}_r` that Proof 2 concludes,
    :math:`\dim\mathcal{X} - (D_C^r + \dim\mathcal{X} - U_S^r) = (d_y-r)(d_1-r)+1`.

    Parameters
    ----------
    widths : sequence of int
        :math:`(d_x, d_1, \dots, d_y)`; any depth (the bounds exist for H = 1 only).
    rank : int
        r, the number of learned modes.

    Returns
    -------
    (D_C, U_S, codim) : tuple of int
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


def _escape_min(strata: xr.Dataset, k: int) -> int:
    r"""Smallest :math:`n_0 + n_-` over the sampled points of stratum k (per-point variables when stored)."""
    if "point_stratum" in strata and "point_n_negative" in strata and "point_n_zero" in strata:
        idx = np.nonzero(np.asarray(strata["point_stratum"].values) == k)[0]
        if idx.size:
            return int(np.min(strata["point_n_negative"].values[idx] + strata["point_n_zero"].values[idx]))
    # without per-point data: n_-,min + n_0,min (a lower bound of the per-point minimum)
    return int(strata["n_negative_min"].values[k] + strata["n_zero_min"].values[k])


def _check_row(strata, k, widths, H, dy, DC, US, PC, paper_kind):
    notes, contra = [], False
    mdim = int(strata["manifold_dim"].values[k])
    if DC >= 0:
        if mdim > DC:
            notes.append(f"dim {mdim} > D_C {DC}: Lemma 3 violated")
            contra = True
        elif mdim == DC:
            notes.append(f"dim {mdim} = D_C (bound attained)")
        elif mdim >= 0:
            notes.append(f"dim {mdim} < D_C {DC}")
        esc_min = _escape_min(strata, k)
        if esc_min < US:
            notes.append(f"n0+n- = {esc_min} < U_S {US}: Lemma 4 violated")
            contra = True
        else:
            notes.append(f"n0+n- = {esc_min} >= U_S {US}")
        sc = int(strata["stable_codim"].values[k])
        if 0 <= sc < PC:
            notes.append(f"stable codim {sc} < paper codim {PC}" + (" (< 2: paper's 'dim X - 2' fails)" if sc < 2 else ""))
            contra = True
        elif sc >= 0:
            notes.append(f"stable codim {sc} >= paper codim {PC}")
    kind = str(strata["kind"].values[k])
    if H == 1 and kind != paper_kind:
        notes.append(f"kind {kind} != Proposition 2's {paper_kind}")
        contra = True
    return contra, ("; ".join(notes) if notes else _NO_COUNT)


def add_paper_columns(strata: xr.Dataset) -> xr.Dataset:
    r"""Join the paper's counts onto a strata Dataset and flag every measured contradiction.

    For each stratum of rank r (H = 1, :math:`1 \le r \le d_y - 1`):

    .. math::

        \text{contradicts} = [\dim > D_C^r] \vee [\min_{\text{points}}(n_0 + n_-) < U_S^r]
        \vee [0 \le \text{stable\_codim} < U_S^r - D_C^r] \vee [\text{kind} \ne \text{Proposition 2's kind}].

    Parameters
    ----------
    strata : xarray.Dataset
        Dimension ``stratum``; coordinates ``label``, ``rank``, ``critical_value``; variables
        ``n_negative``, ``n_negative_min``, ``n_negative_max``, ``n_zero``, ``n_zero_min``,
        ``n_zero_max``, ``manifold_dim``, ``stable_codim``, ``kind``; attrs ``widths`` and ``depth_H``.
        Per-point variables ``point_stratum``, ``point_n_negative``, ``point_n_zero`` are used when
        present (the exact minimum of :math:`n_0 + n_-` over points; otherwise
        ``n_negative_min + n_zero_min``). A Dataset of another model (no ``widths``/``rank``, or
        H != 1 ...) is accepted: its paper columns are -1 / ``"n/a"`` and nothing is flagged.

    Returns
    -------
    xarray.Dataset
        A copy with the variables of :data:`PAPER_COLUMNS`: ``paper_dim_bound``,
        ``paper_escape_bound``, ``paper_codim_bound`` (int, -1 where the paper gives none),
        ``paper_kind`` (``"global_min"``/``"strict_saddle"`` for H = 1, else ``"n/a"``),
        ``contradicts_paper`` (bool) and ``paper_check`` (the comparison in words).
    """
    if not isinstance(strata, xr.Dataset) or "stratum" not in strata.dims:
        raise InputError("`strata` must be an xarray.Dataset with a `stratum` dimension (a strata Dataset).")
    n = strata.sizes["stratum"]
    widths = tuple(int(d) for d in np.atleast_1d(strata.attrs.get("widths", ())))
    H = int(strata.attrs.get("depth_H", len(widths) - 2 if widths else -1))
    linear = len(widths) >= 3 and H == len(widths) - 2 and "rank" in strata.coords
    dy = widths[-1] if widths else -1
    cols = {name: [] for name in PAPER_COLUMNS}
    for k in range(n):
        rank = int(strata["rank"].values[k]) if linear else -1
        DC, US, PC = paper_bounds(widths, rank) if linear else (-1, -1, -1)
        pk = ("global_min" if rank == dy else "strict_saddle") if (linear and H == 1) else "n/a"
        if linear:
            missing = [v for v in ("manifold_dim", "stable_codim", "kind", "n_negative_min", "n_zero_min") if v not in strata]
            if missing:
                raise InputError(f"`strata` lacks the measured variables {missing}; build it with the strata builder.")
            if "measured" in strata and not bool(strata["measured"].values[k]):
                contra, check = False, "not measured"
            else:
                contra, check = _check_row(strata, k, widths, H, dy, DC, US, PC, pk)
        else:
            contra, check = False, _NO_COUNT
        for name, val in zip(PAPER_COLUMNS, (DC, US, PC, pk, contra, check)):
            cols[name].append(val)
    out = strata.copy()
    for name in ("paper_dim_bound", "paper_escape_bound", "paper_codim_bound"):
        out[name] = ("stratum", np.array(cols[name], dtype=np.int64))
    out["paper_kind"] = ("stratum", np.array(cols["paper_kind"], dtype=object))
    out["contradicts_paper"] = ("stratum", np.array(cols["contradicts_paper"], dtype=bool))
    out["paper_check"] = ("stratum", np.array(cols["paper_check"], dtype=object))
    out.attrs["paper_bounds"] = "D_C^r (Lemma 3), U_S^r (Lemma 4), U_S^r - D_C^r (Proof 2); H = 1, 1 <= r <= d_y - 1 only"
    return out
