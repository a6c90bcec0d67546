"""Exact-flow limits, limits decided early, finite horizons (flowgeom.basins.limits)."""

import itertools
import warnings

import numpy as np
import pytest

from flowgeom import Problem
from flowgeom._resolve import as_atlas
from flowgeom.basins._sample import sample_basins
from flowgeom.basins.limits import decided_early, sublevel_barrier
from flowgeom.basins.samplers import balanced_critical_point


def _all_values(s, r):
    """Critical values of every stratum by enumeration (independent of the closed form used)."""
    s = np.asarray(s)
    return sorted({round(0.5 * float(np.sum(np.delete(s, list(S)) ** 2)), 12)
                   for k in range(r + 1) for S in itertools.combinations(range(s.size), k)})


@pytest.mark.parametrize("s, widths", [([3.0, 2.0, 1.0], (3, 3, 3)), ([3.0, 2.5, 1.0], (4, 3, 3)), ([2.0, 1.0], (2, 2, 2))])
def test_barrier_is_the_second_critical_value(s, widths):
    pb = Problem.from_spectrum(s, widths)
    star, barrier = sublevel_barrier(as_atlas(pb))
    vals = _all_values(s, min(widths))
    assert star == pytest.approx(vals[0], abs=1e-12)
    assert barrier == pytest.approx(vals[1], abs=1e-12)


def test_decided_early_only_below_the_barrier():
    pb = Problem.from_spectrum([2.0, 1.0], (2, 2, 2))
    at = as_atlas(pb)
    m = at.model
    gmin = np.atleast_2d(balanced_critical_point(pb, (0, 1)))
    saddle = np.atleast_2d(balanced_critical_point(pb, (0,)))
    y = np.vstack([gmin + 1e-4, saddle + 1e-4])
    keys = decided_early(at, y, m.loss(y))
    assert keys[0] >= 0 and at.get(int(keys[0])).label == "{0,1}"
    assert keys[1] == -3  # at the saddle {0}: loss 0.5 is above the barrier 0.5 - margin


def _det_sign(theta0):
    W1 = theta0[:, :4].reshape(-1, 2, 2)
    W2 = theta0[:, 4:].reshape(-1, 2, 2)
    return np.sign(np.linalg.det(W1) * np.linalg.det(W2))


def test_balanced_inits_with_negative_determinant_stay_at_the_saddle():
    # independent reference: det(W2 W1) keeps its sign along the exact flow of balanced 2x2x2 inits,
    # and a target with positive determinant cannot be reached from det < 0: the limit is the saddle {0}
    pb = Problem.from_spectrum([2.0, 1.0], (2, 2, 2))
    ds = sample_basins(pb, 24, init="balanced", seed=3, scheduler="synchronous", progress=False, keep_states=True)
    neg = _det_sign(ds.theta0.values) < 0
    assert 4 <= neg.sum() <= 20
    labels = ds.label.values
    assert np.all(labels[ds.limit_numerical.values] == "{0,1}")  # floating point escapes
    assert ds.limit_decided.values.all()
    assert np.array_equal(labels[ds.limit.values] == "{0}", neg)
    assert np.array_equal(labels[ds.limit.values] == "{0,1}", ~neg)
    assert float(ds.fraction.sel(stratum=list(labels).index("{0}"))) == pytest.approx(neg.mean())
    assert ds.attrs["n_relabelled"] == int(neg.sum())


def test_gaussian_inits_are_never_relabelled():
    pb = Problem.from_spectrum([2.0, 1.0], (2, 2, 2))
    ds = sample_basins(pb, 64, seed=5, scheduler="synchronous", progress=False)
    assert np.array_equal(ds.limit.values, ds.limit_numerical.values)
    assert ds.fraction.values[list(ds.label.values).index("{0,1}")] == 1.0
    off = sample_basins(pb, 64, seed=5, scheduler="synchronous", progress=False, certify=False)
    assert np.array_equal(off.limit.values, ds.limit.values)
    assert off.attrs["certification"] == "off"


def test_early_stop_agrees_with_the_end_game():
    pb = Problem.from_spectrum([3.0, 2.0, 1.0], (3, 3, 3))
    kw = dict(seed=2, scheduler="synchronous", progress=False, certify=False)
    fast = sample_basins(pb, 32, **kw)
    slow = sample_basins(pb, 32, early_stop=False, **kw)
    assert np.array_equal(fast.limit.values, slow.limit.values)
    assert fast.attrs["fraction_endgame"] < slow.attrs["fraction_endgame"]
    assert fast.n_grad_evals.values.sum() < slow.n_grad_evals.values.sum()


def test_horizons_small_init_deep():
    pb = Problem.from_spectrum([3.0, 2.0, 1.0], (3, 3, 3, 3))
    hz = (5.0, 50.0, 2000.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ds = sample_basins(pb, 16, init_scale=0.02, seed=0, horizons=hz, certify=False,
                           scheduler="synchronous", progress=False)
    assert ds.horizon.values.tolist() == list(hz)
    labels = list(ds.label.values)
    f = ds.fraction_by_horizon.values
    # every sample is near one stratum or in transit
    np.testing.assert_allclose(f.sum(axis=1) + ds.fraction_in_transit.values, 1.0)
    assert f[0, labels.index("{}")] >= 0.9
    g = f[:, labels.index("{0,1,2}")]
    assert g[-1] >= 0.9 and np.all(np.diff(g) >= 0)
    assert np.all(ds.fraction_by_horizon_low.values <= f + 1e-15)
    assert np.all(ds.fraction_by_horizon_high.values >= f - 1e-15)


@pytest.mark.parametrize("bad", [(), (5.0, 1.0), (-1.0,), (np.inf,)])
def test_horizons_rejected(bad):
    pb = Problem.from_spectrum([2.0, 1.0], (2, 2, 2))
    with pytest.raises(ValueError, match="`horizons`"):
        sample_basins(pb, 2, seed=0, horizons=bad, scheduler="synchronous", progress=False)


def test_horizons_through_a_store_match_memory(tmp_path):
    pb = Problem.from_spectrum([2.0, 1.0], (2, 2, 2))
    kw = dict(seed=4, init_scale=0.1, horizons=(1.0, 10.0), scheduler="synchronous", progress=False, chunk_size=4)
    mem = sample_basins(pb, 8, **kw)
    sto = sample_basins(pb, 8, store=tmp_path / "b.zarr", **kw)
    assert np.array_equal(mem.horizon_limit.values, sto.horizon_limit.values)
    assert np.array_equal(mem.limit_exact.values, sto.limit_exact.values)
    np.testing.assert_array_equal(mem.fraction_by_horizon.values, sto.fraction_by_horizon.values)


def test_approach_candidates_measure_losses_above_the_data_offset():
    """A constant data offset (Problem.from_data's irreducible loss) changes no candidate: the same save
    curves shifted by c with offset=c give the same approach times; without the offset, the thresholds scale
    with c (the gap with 1e-3 c, the gradient with 1e-2 c) and decide on the size of the offset instead."""
    from flowgeom.basins.limits import approach_candidates

    t = np.tile(np.linspace(0.0, 10.0, 11), (3, 1))
    loss = np.array([np.linspace(5.0, 0.0, 11),  # plain descent, no plateau
                     np.r_[5.0, 2.0, 2.0, 2.0, 1.0, 0.5, 0.1, 0.0, 0.0, 0.0, 0.0],  # plateau at 2
                     np.linspace(3.0, 0.0, 11)])
    grad = np.array([np.full(11, 1.0), np.r_[3.0, 1e-4, 1e-5, 1e-4, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0],
                     np.full(11, 2.0)])
    final = loss[:, -1].copy()
    base = approach_candidates(t, loss, grad, final)
    assert np.isnan(base[0]) and base[1] == 2.0 and np.isnan(base[2])
    c = 1e4
    shifted = approach_candidates(t, loss + c, grad, final + c, offset=c)
    np.testing.assert_array_equal(np.isnan(shifted), np.isnan(base))
    assert shifted[1] == 2.0
    assert np.isnan(approach_candidates(t, loss + c, grad, final + c)[1])  # the bug this guards: plateau missed
