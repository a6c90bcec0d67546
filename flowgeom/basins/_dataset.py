"""The ``basins`` Dataset: per-sample limits, fractions per stratum (and per horizon) with intervals.

Not public API: :func:`flowgeom.basins.sample_basins` builds it.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from flowgeom.basins.stats import _CI, basin_fractions


def _kind_of(cs) -> str:
    """The measured kind, else the closed form's where the atlas has one."""
    if cs.measured:
        return cs.kind
    return str(cs.info.get("kind_closed_form", cs.kind))


def _build_dataset(arr, sets, attrs, level, method) -> xr.Dataset:
    n = arr["limit"].shape[0]
    labels = [cs.label for cs in sets]
    K = len(labels)
    fr = basin_fractions(arr["limit"], K, level=level, method=method)
    data = {
        "limit": ("sample", arr["limit"].astype(np.int64)),
        "final_loss": ("sample", arr["final_loss"]),
        "final_grad_norm": ("sample", arr["final_grad_norm"]),
        "invariant_drift": ("sample", arr["invariant_drift"]),
        "t_final": ("sample", arr["t_final"]),
        "status": ("sample", arr["status"].astype(np.int8)),
        "n_grad_evals": ("sample", arr["n_grad_evals"].astype(np.int64)),
        "polished": ("sample", arr["polished"].astype(bool)),
        "endgame": ("sample", arr["endgame"].astype(bool)),
        "limit_numerical": ("sample", arr["limit_numerical"].astype(np.int64)),
        "limit_exact": ("sample", arr["limit_exact"].astype(np.int64)),
        "limit_decided": ("sample", arr["limit_decided"].astype(bool)),
        "escape_ratio": ("sample", arr["escape_ratio"].astype(np.float64)),
        "count": ("stratum", fr.count),
        "fraction": ("stratum", fr.fraction),
        "fraction_low": ("stratum", fr.low),
        "fraction_high": ("stratum", fr.high),
    }
    for name, (c, f, lo, hi) in fr.special.items():
        data[f"count_{name}"] = ((), np.int64(c))
        data[f"fraction_{name}"] = ((), np.float64(f))
        data[f"fraction_{name}_low"] = ((), np.float64(lo))
        data[f"fraction_{name}_high"] = ((), np.float64(hi))
    und = int(np.sum(~arr["limit_decided"]))
    lo_u, hi_u = _CI[method](und, n, level)
    data["count_undecided"] = ((), np.int64(und))
    data["fraction_undecided"] = ((), np.float64(und / n))
    data["fraction_undecided_low"] = ((), np.float64(lo_u))
    data["fraction_undecided_high"] = ((), np.float64(hi_u))
    hz = attrs.get("horizons") or []
    if hz:
        hl = arr["horizon_limit"]
        frs = [basin_fractions(hl[:, j], K, level=level, method=method) for j in range(len(hz))]
        data["fraction_by_horizon"] = (("horizon", "stratum"), np.stack([f.fraction for f in frs]))
        data["fraction_by_horizon_low"] = (("horizon", "stratum"), np.stack([f.low for f in frs]))
        data["fraction_by_horizon_high"] = (("horizon", "stratum"), np.stack([f.high for f in frs]))
        for suffix, pos in (("", 1), ("_low", 2), ("_high", 3)):
            data["fraction_in_transit" + suffix] = ("horizon", np.array([f.special["unclassified"][pos] for f in frs]))
        data["horizon_limit"] = (("sample", "horizon"), hl)
    if "theta0" in arr:
        data["theta0"] = (("sample", "param"), arr["theta0"])
        data["theta_final"] = (("sample", "param"), arr["theta_final"])
    coords = {
        "sample": ("sample", np.arange(n, dtype=np.int64)),
        "label": ("stratum", np.array(labels, dtype=object)),
        "rank": ("stratum", np.asarray([cs.rank for cs in sets], dtype=np.int64)),
        "critical_value": ("stratum", np.asarray([cs.critical_value for cs in sets], dtype=np.float64)),
        "kind": ("stratum", np.array([_kind_of(cs) for cs in sets], dtype=object)),
    }
    if hz:
        coords["horizon"] = ("horizon", np.asarray(hz, dtype=np.float64))
    attrs = dict(attrs)
    n_dec = arr["endgame"].astype(bool)
    attrs["fraction_endgame"] = float(np.mean(n_dec))
    attrs["n_relabelled"] = int(np.sum(arr["limit_exact"] != arr["limit_numerical"]))
    ds = xr.Dataset(data, coords=coords, attrs=attrs)
    ds["limit"].attrs["description"] = "index into stratum; -1 unconverged, -2 diverged, -3 unclassified"
    ds["status"].attrs["description"] = "flowgeom.integrate.Status of the last segment"
    return ds
