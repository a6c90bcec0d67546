r"""The ``strata`` Dataset of any atlas: one row per critical set, one row per measured point.

Written once against :class:`flowgeom.critical.atlas.Atlas`: the deep linear closed form and a
searched atlas give the same core variables. Per set (dimension ``stratum``, coordinates
``label``, ``rank``, ``critical_value``): the inertia :math:`(n_-, n_0, n_+)` at the set's most
common point type and its range over the measured points (``_min``/``_max``), the manifold
dimension, the Morse–Bott test, the stable codimension (:math:`n_-` where every point is
Morse–Bott, else -1: undecided by linearization), :math:`n_0 + n_-` (``escape_dim``), ``kind``,
whether the set was ``measured``, and the implementation's per-set extras. Per point (dimension
``point``): every column of :attr:`CriticalSet.points` as ``point_<name>``, the sampled
parameters as ``point_theta`` (dims ``point``, ``param``) and ``point_stratum`` (an index into
``stratum``).
"""

from __future__ import annotations

from collections import Counter
from typing import Sequence

import numpy as np

from flowgeom._types import str_array
from flowgeom._version import __version__
from flowgeom.critical.atlas import Atlas, CriticalSet

__all__ = ["strata_dataset"]

# Per-point columns every measured set provides (see CriticalSet.points).
CORE_POINT_COLUMNS = (
    "grad_norm", "loss", "n_negative", "n_zero", "n_positive", "decided", "manifold_dim", "morse_bott",
    "stable_codim", "stable_codim_lower",
)

# Dataset names of point columns whose name in CriticalSet.points is shorter (names kept from 0.1)
POINT_NAMES = {"decided": "inertia_decided"}

STORE_THETA_MAX_PARAMS = 20000
"""``point_theta`` is stored when the model has at most this many parameters."""


def _aggregate(cs: CriticalSet) -> dict:
    """Per-set summary of the measured points (the rules of the module docstring)."""
    P = cs.points
    k = cs.n_points
    if not cs.measured or k == 0:
        out = {name: -1 for name in (
            "n_negative", "n_zero", "n_positive", "n_negative_min", "n_negative_max", "n_zero_min",
            "n_zero_max", "n_positive_min", "n_positive_max", "manifold_dim", "manifold_dim_min",
            "manifold_dim_max", "stable_codim", "stable_codim_lower", "escape_dim")}
        out.update(morse_bott=False, n_points=0, max_grad_norm=np.nan)
        return out
    trip = list(zip(*(np.asarray(P[c], dtype=np.int64).tolist() for c in ("n_negative", "n_zero", "n_positive"))))
    mode = Counter(trip).most_common(1)[0][0]
    out = {}
    for j, name in enumerate(("n_negative", "n_zero", "n_positive")):
        vals = [t[j] for t in trip]
        out[name] = mode[j]
        out[name + "_min"] = min(vals)
        out[name + "_max"] = max(vals)
    md = np.asarray(P["manifold_dim"], dtype=np.int64)
    known = md[md >= 0]
    out["manifold_dim"] = int(known.max()) if known.size else -1
    out["manifold_dim_min"] = int(md.min())
    out["manifold_dim_max"] = int(md.max())
    mb = np.asarray(P["morse_bott"], dtype=bool)
    out["morse_bott"] = bool(mb.all())
    # the set flowing into a union of pieces has the smallest codimension of its pieces
    out["stable_codim"] = int(np.min(P["n_negative"])) if mb.all() else -1
    lower = np.asarray(P["stable_codim_lower"], dtype=np.int64)
    out["stable_codim_lower"] = int(lower.min()) if np.all(lower >= 0) else -1
    out["escape_dim"] = int(mode[0] + mode[1])
    out["n_points"] = int(k)
    out["max_grad_norm"] = float(np.max(P["grad_norm"]))
    return out


def _column(values) -> np.ndarray:
    """An array for a Dataset variable: strings as object arrays, others as numpy infers."""
    vals = list(values)
    if vals and isinstance(vals[0], str):
        return str_array(vals)
    arr = np.asarray(vals)
    if arr.dtype == object:
        return str_array(vals)
    return arr


def strata_dataset(atlas: Atlas, keys: Sequence[int] | None = None, *, attrs: dict | None = None):
    r"""The ``strata`` Dataset of ``atlas``: its critical sets (or those with ``keys``) and their measurements.

    Parameters
    ----------
    atlas : Atlas
    keys : sequence of int, optional
        The sets to include, in this order; default every set of ``atlas.sets()``.
    attrs : dict, optional
        Extra Dataset attributes (applied last).

    Returns
    -------
    xarray.Dataset
        See the module docstring; attrs from ``atlas.attrs()`` plus ``flowgeom_version``,
        ``loss_offset`` and ``n_sets_listed``.
    """
    import xarray as xr

    sets = atlas.sets() if keys is None else [atlas.get(int(k)) for k in keys]
    rows: dict[str, list] = {}
    point_cols: dict[str, list] = {}
    point_stratum: list[int] = []
    thetas: list[np.ndarray] = []
    info_keys: list[str] = []
    for cs in sets:
        for key in cs.info:
            if key not in info_keys:
                info_keys.append(key)
    extra_point_keys: list[str] = []
    for cs in sets:
        for key in cs.points:
            if key != "theta" and key not in CORE_POINT_COLUMNS and key not in extra_point_keys:
                extra_point_keys.append(key)
    n_params = atlas.model.n_params
    for i, cs in enumerate(sets):
        agg = _aggregate(cs)
        agg["kind"] = cs.kind
        agg["measured"] = bool(cs.measured)
        agg["key"] = cs.key
        for key in info_keys:
            agg[key] = cs.info.get(key, _missing_like(sets, key))
        for name, v in agg.items():
            rows.setdefault(name, []).append(v)
        if cs.measured and cs.n_points:
            k = cs.n_points
            point_stratum.extend([i] * k)
            for key in CORE_POINT_COLUMNS + tuple(extra_point_keys):
                col = cs.points.get(key)
                if col is None:
                    col = [_missing_point(key)] * k
                point_cols.setdefault(key, []).extend(list(col))
            if n_params <= STORE_THETA_MAX_PARAMS:
                thetas.append(np.asarray(cs.points["theta"], dtype=np.float64).reshape(k, n_params))
    data = {name: ("stratum", _column(vals)) for name, vals in rows.items()}
    if point_stratum:
        data["point_stratum"] = ("point", np.asarray(point_stratum, dtype=np.int64))
        for key, vals in point_cols.items():
            data["point_" + POINT_NAMES.get(key, key)] = ("point", _column(vals))
        if thetas:
            data["point_theta"] = (("point", "param"), np.concatenate(thetas, axis=0))
    coords = {
        "label": ("stratum", str_array([cs.label for cs in sets])),
        "rank": ("stratum", np.asarray([cs.rank for cs in sets], dtype=np.int64)),
        "critical_value": ("stratum", np.asarray([cs.critical_value for cs in sets], dtype=np.float64)),
    }
    out_attrs = {"flowgeom_version": __version__}
    out_attrs.update(atlas.attrs())
    out_attrs["loss_offset"] = float(atlas.loss_offset)
    out_attrs["dim_X"] = int(n_params)
    if attrs:
        out_attrs.update(attrs)
    return xr.Dataset(data_vars=data, coords=coords, attrs=out_attrs)


def _missing_like(sets, key):
    for cs in sets:
        if key in cs.info:
            v = cs.info[key]
            if isinstance(v, str):
                return ""
            if isinstance(v, (bool, np.bool_)):
                return False
            if isinstance(v, (int, np.integer)):
                return -1
            return np.nan
    return np.nan


def _missing_point(key):
    return "" if key in ("family", "label", "layer_ranks", "reason") else -1
