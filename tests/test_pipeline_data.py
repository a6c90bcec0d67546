"""The atlas pipeline on data problems: strata.nc holds (measured) every stratum the basins and transitions reached."""

from __future__ import annotations

import numpy as np
import pytest

from flowgeom import Problem
from flowgeom._data import whiten
from flowgeom.pipeline import atlas as run_atlas


def _labels(ds, var):
    lab = ds["label"].values
    v = np.asarray(ds[var].values).ravel()
    return {str(lab[k]) for k in np.unique(v[v >= 0])}


def _reached(out):
    b, t = out.get("basins"), out.get("transitions")
    got = set()
    if b is not None:
        for var in ("limit", "limit_numerical", "limit_exact", "horizon_limit"):
            if var in b:
                got |= _labels(b, var)
    if t is not None:
        if "stratum" in t and t["stratum"].size:
            got |= {str(s) for s in t["stratum"].values}
        got |= {str(s) for s in t["label"].values}  # graph nodes
    return got


@pytest.mark.parametrize("H", [1, 2])
@pytest.mark.parametrize("white", [False, True])
def test_strata_hold_every_reached_stratum(H, white):
    rng = np.random.default_rng(10 * H + white)
    X = rng.standard_normal((4, 30)) * np.array([[0.5], [1.0], [2.0], [4.0]])  # raw units (mildly stiff)
    Y = rng.standard_normal((3, 4)) @ X / 4 + 0.3 * rng.standard_normal((3, 30))
    if white:
        X = whiten(X)
    pb = Problem.from_data(X, Y, (4,) + (3,) * H + (3,))
    out = run_atlas(pb, samples=16, transition_samples=4, seed=1, measure="reached",
                    basins_options={"certify": False, "horizons": [0.5, 5.0], "scheduler": "synchronous"})
    strata = out["strata"]
    reached = _reached(out)
    assert reached, "nothing reached"
    listed = {str(x) for x in strata["label"].values}
    measured = {str(x) for x, m in zip(strata["label"].values, strata["measured"].values) if m}
    assert reached <= listed, reached - listed
    assert reached <= measured, reached - measured
    # and the basins actually reached a limit (a data problem is classified)
    assert np.mean(out["basins"]["limit"].values >= 0) >= 0.9
