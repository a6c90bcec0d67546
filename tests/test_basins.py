"""Tests of flowgeom.samplers and flowgeom.basins.

Independent references used here:
- scipy.stats.binomtest(...).proportion_ci (methods "wilson" and "exact") for the intervals;
- scipy.integrate.solve_ivp (tight tolerances) for where a trajectory ends;
- a plain numpy gradient-descent loop for which GD runs diverge;
- closed forms: Haar moments E[Q_00^2] = 1/d, the stable line w2 = -w1 of 1/2 (s - w2 w1)^2,
  the balanced invariants C_j = 0, the critical points Sigma_S of the canonical loss.
"""

import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from scipy import stats
from scipy.integrate import solve_ivp

from flowgeom import DeepLinearNetwork, Problem
from flowgeom.critical import Atlas, Limit, SearchedAtlas, find_critical_points
from flowgeom.linear import ClosedFormAtlas
from flowgeom.linear.atlas import learned_key

LIMIT_UNCONVERGED, LIMIT_DIVERGED, LIMIT_UNCLASSIFIED = (int(c) for c in Limit)
from flowgeom.basins import (
    basin_fractions,
    clopper_pearson_interval,
    sample_basins,
    wilson_interval,
)
from flowgeom.linear.strata import enumerate_strata
from flowgeom.io import load_dataset, save_dataset
from flowgeom.basins.samplers import (
    SAMPLE_BLOCK,
    balanced_critical_point,
    make_initializer,
    sample_initializations,
)

# The numpy backend keeps the default test run free of JIT compilation time; the numba backend
# is the integrate module's to test (and is exercised by the slow tests below).
FAST = dict(progress=False, backend="numpy")
# small inits converge within a short first horizon: keeps each run at a fraction of a second
QUICK = dict(init_scale=0.5, t1=30.0, **FAST)


@pytest.fixture
def p322():
    return Problem.from_spectrum([2.0, 1.0], (3, 2, 2))


@pytest.fixture
def scalar():
    return Problem.from_spectrum([1.0], (1, 1, 1))


# ---------------------------------------------------------------------------- samplers
@pytest.mark.parametrize("name", ["gaussian", "orthogonal", "balanced", "stable-set"])
def test_samples_depend_only_on_seed_and_index(p322, name):
    n = SAMPLE_BLOCK + 80
    full = sample_initializations(p322, name, n, seed=7)
    part = sample_initializations(p322, name, 100, seed=7, start=SAMPLE_BLOCK - 20)  # straddles a block
    np.testing.assert_array_equal(part, full[SAMPLE_BLOCK - 20 : SAMPLE_BLOCK + 80])
    other = sample_initializations(p322, name, 5, seed=8)
    assert not np.array_equal(other, full[:5])


def test_gaussian_moments(p322):
    x = sample_initializations(p322, "gaussian", 4000, scale=0.3, seed=1)
    assert abs(x.mean()) < 0.01
    assert abs(x.std() - 0.3) < 0.01


def test_orthogonal_is_semi_orthogonal_and_haar():
    net = DeepLinearNetwork.canonical((4, 3, 3, 2), [3.0, 1.0])
    x = sample_initializations(net, "orthogonal", 3000, scale=2.0, seed=2)
    W = net.unpack(x)
    for Wj in W:
        d_out, d_in = Wj.shape[-2:]
        G = np.swapaxes(Wj, -1, -2) @ Wj if d_out >= d_in else Wj @ np.swapaxes(Wj, -1, -2)
        np.testing.assert_allclose(G, np.broadcast_to(4.0 * np.eye(min(d_out, d_in)), G.shape), atol=1e-12)
    # square 3x3 layer: Haar O(3) has E[Q_00^2] = 1/3 and det = +-1 with probability 1/2 each
    Q = W[1] / 2.0
    assert abs(np.mean(Q[:, 0, 0] ** 2) - 1 / 3) < 0.03
    assert abs(np.mean(np.linalg.det(Q) > 0) - 0.5) < 0.05


@pytest.mark.parametrize("widths", [(3, 2, 2), (5, 4, 3, 3, 2), (1, 1, 1)])
def test_balanced_has_zero_invariants(widths):
    net = DeepLinearNetwork.canonical(widths, np.linspace(2.0, 1.0, widths[-1]))
    x = sample_initializations(net, "balanced", 50, scale=1.5, seed=3)
    C = net.conserved(x)
    assert np.max(np.abs(C)) < 1e-13 * max(1.0, np.max(np.abs(x)) ** 2)
    assert np.min(np.linalg.norm(x, axis=1)) > 1e-3  # not the trivial balanced point 0
    # rank-1 balanced points: every end-to-end product has rank 1
    x1 = sample_initializations(net, "balanced", 20, seed=3, rank=1)
    P = net.end_to_end(x1)
    assert np.all(np.linalg.matrix_rank(P) == 1)
    assert np.max(np.abs(net.conserved(x1))) < 1e-13


def test_stable_set_of_the_scalar_origin_is_the_line(scalar):
    x = sample_initializations(scalar, "stable-set", 100, seed=4)
    np.testing.assert_array_equal(x[:, 1], -x[:, 0])  # exactly on w2 = -w1
    y = sample_initializations(scalar, "stable-set", 2000, seed=4, delta=1e-3)
    off = (y[:, 0] + y[:, 1]) / np.sqrt(2)  # normal component: N(0, delta^2)
    assert abs(off.std() - 1e-3) < 1e-4


def test_stable_set_dimension_and_strata_points():
    pb = Problem.from_spectrum([3.0, 2.0], (4, 3, 2))
    net = pb.network()
    ini = make_initializer("stable-set", net, problem=pb)
    lam = np.linalg.eigvalsh(net.hessian(np.zeros(net.n_params)))
    # at the origin of an H = 1 network the Hessian is [[0, -Sigma^T x I], ...]: eigenvalues
    # +-s_i (each d_1 times) and zeros; stable + center = n - (number of negative eigenvalues)
    assert ini.params["stable_center_dim"] == net.n_params - 3 * 2 == int(np.sum(lam > -1e-9))
    for st in enumerate_strata(pb):
        p = balanced_critical_point(pb, st.learned)
        assert np.max(np.abs(net.grad(p))) < 1e-14
        np.testing.assert_allclose(net.end_to_end(p), st.end_to_end, atol=1e-14)
        assert abs(net.loss(p) - st.critical_value) < 1e-13


def test_file_and_array_inits(tmp_path, p322):
    arr = np.random.default_rng(0).standard_normal((30, 10))
    path = tmp_path / "init.npy"
    np.save(path, arr)
    got = sample_initializations(p322, f"file:{path}", 10, start=5, seed=99)
    np.testing.assert_array_equal(got, arr[5:15])
    np.testing.assert_array_equal(sample_initializations(p322, arr, 30), arr)
    with pytest.raises(ValueError, match="holds 30 samples"):
        sample_initializations(p322, arr, 31)
    with pytest.raises(ValueError, match=r"shape \(N, n_params\)"):
        sample_initializations(p322, arr[:, :4], 3)
    with pytest.raises(ValueError, match="does not exist"):
        sample_initializations(p322, "file:/nonexistent.npy", 3)


def test_sampler_errors(p322):
    with pytest.raises(ValueError, match="`init` must be one of"):
        sample_initializations(p322, "uniform", 3)
    with pytest.raises(ValueError, match="`scale` must be a positive"):
        sample_initializations(p322, "gaussian", 3, scale=-1.0)
    with pytest.raises(ValueError, match="`rank` must be an integer in 1..2"):
        sample_initializations(p322, "balanced", 3, rank=3)
    with pytest.raises(TypeError, match="unexpected parameter"):
        sample_initializations(p322, "gaussian", 3, delta=0.1)
    with pytest.raises(ValueError, match="`seed` must be a non-negative integer"):
        sample_initializations(p322, "gaussian", 3, seed=-1)
    with pytest.raises(TypeError, match="needs a layered model"):
        make_initializer("orthogonal", _Quadratic())


# ---------------------------------------------------------------------------- intervals
@pytest.mark.parametrize("level", [0.9, 0.95, 0.99])
def test_intervals_match_scipy_binomtest(level):
    for n in (1, 7, 50, 1000):
        for k in sorted({0, 1, n // 3, n - 1, n}):
            if k < 0:
                continue
            ci_w = stats.binomtest(k, n).proportion_ci(confidence_level=level, method="wilson")
            ci_e = stats.binomtest(k, n).proportion_ci(confidence_level=level, method="exact")
            lo, hi = wilson_interval(k, n, level)
            np.testing.assert_allclose([lo, hi], [ci_w.low, ci_w.high], rtol=1e-10, atol=1e-14)
            lo, hi = clopper_pearson_interval(k, n, level)
            np.testing.assert_allclose([lo, hi], [ci_e.low, ci_e.high], rtol=1e-9, atol=1e-14)


def test_basin_fractions_sum_to_one_and_validate():
    rng = np.random.default_rng(1)
    lam = rng.integers(-3, 4, size=500)
    fr = basin_fractions(lam, 4, level=0.9, method="clopper-pearson")
    total = fr.fraction.sum() + sum(v[1] for v in fr.special.values())
    assert total == pytest.approx(1.0, abs=1e-15)
    assert np.all((fr.low <= fr.fraction) & (fr.fraction <= fr.high))
    assert fr.special["diverged"][0] == np.sum(lam == -2)
    with pytest.raises(ValueError, match="`limits` must lie in -3..3"):
        basin_fractions(np.array([4]), 4)
    with pytest.raises(ValueError, match="`method` must be"):
        basin_fractions(lam, 4, method="bootstrap")
    with pytest.raises(ValueError, match="`level` must lie in"):
        basin_fractions(lam, 4, level=95)


# ---------------------------------------------------------------------------- locating limits in the atlas
def test_closed_form_atlas_locates_critical_points_whitened_and_not():
    pb = Problem.from_spectrum([3.0, 2.0, 1.0], (4, 3, 3))
    rng = np.random.default_rng(5)
    X = rng.standard_normal((4, 9))
    Y = rng.standard_normal((3, 9))
    pd = Problem.from_data(X, Y, (4, 3, 3))
    U, _, Vt = np.linalg.svd(X, full_matrices=False)
    pw = Problem.from_data(U @ Vt, Y, (4, 3, 3))  # whitened data: X X^T = I, with a loss offset
    assert pw.whitened and pw.loss_offset > 0
    for prob in (pb, pd, pw):
        atlas = ClosedFormAtlas(prob)
        assert isinstance(atlas, Atlas)
        net = atlas.model
        strata = enumerate_strata(prob)
        pts = np.stack([balanced_critical_point(prob, st.learned) for st in strata])
        assert np.max(np.abs(net.grad(pts))) < 1e-10
        got = atlas.locate(pts, net.loss(pts))
        np.testing.assert_array_equal(got, [learned_key(st.learned) for st in strata])
        # a point that is not critical (end-to-end product 0.8 of the minimum's) is unclassified
        assert atlas.locate(0.8 * pts[-1:], net.loss(0.8 * pts[-1:]))[0] == LIMIT_UNCLASSIFIED


def test_whitened_data_problem_basins_are_classified():
    """Regression test for issue 12: whitened from_data problems were never classified (loss offset)."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((5, 30))
    U, _, Vt = np.linalg.svd(X, full_matrices=False)
    pw = Problem.from_data(U @ Vt, rng.standard_normal((3, 30)), (5, 4, 3))
    ds = sample_basins(pw, 16, seed=0, scheduler="synchronous", **QUICK)
    assert int(ds.count_unclassified) == 0
    assert float(ds.fraction.values[-1]) == 1.0


def test_network_passed_directly_gets_the_atlas(p322):
    net = p322.network()
    a = sample_basins(p322, 12, seed=1, scheduler="synchronous", **QUICK)
    b = sample_basins(net, 12, seed=1, scheduler="synchronous", **QUICK)
    assert list(b.label.values) == [st.label for st in enumerate_strata(p322)]
    np.testing.assert_array_equal(a.limit, b.limit)


class _Quadratic:
    """L = 1/2 (|theta|^2 - 1)^2: a generic Model with a circle of minima and a max at 0."""

    n_params = 2

    def loss(self, th):
        return 0.5 * (np.sum(th**2, axis=-1) - 1.0) ** 2

    def grad(self, th):
        return 2.0 * (np.sum(th**2, axis=-1, keepdims=True) - 1.0) * th

    def hvp(self, th, v):
        r = np.sum(th**2, axis=-1, keepdims=True) - 1.0
        return 2.0 * r * v + 4.0 * th * np.sum(th * v, axis=-1, keepdims=True)

    def hessian(self, th):
        from flowgeom.models.base import hessian_from_hvp

        return hessian_from_hvp(self, th)

    def conserved(self, th):
        return np.zeros(np.shape(th)[:-1] + (0,))


def test_generic_model_gets_a_searched_atlas():
    m = _Quadratic()
    rng = np.random.default_rng(0)
    starts = np.array([[0.0, 0.0], [0.9, 0.3], [-0.2, 1.1], [0.5, -0.7]])
    atlas = SearchedAtlas(m, find_critical_points(m, starts, rng=rng))
    init = np.array([[0.3, 0.1], [2.0, -1.0], [0.0, 0.0], [1e-3, 0.0]])
    ds = sample_basins(m, 4, init=init, atlas=atlas, scheduler="synchronous", t1=20.0, **FAST)
    # the origin is a critical point (a maximum) and stays there; the others reach the circle
    assert np.all(ds.limit.values >= 0)
    kinds = [str(ds.kind.values[k]) for k in ds.limit.values]
    assert kinds == ["global_min", "global_min", "strict_saddle", "global_min"]  # Hessian -2I at the origin
    np.testing.assert_allclose([ds.critical_value.values[k] for k in ds.limit.values], [0.0, 0.0, 0.5, 0.0],
                               atol=1e-12)


# ---------------------------------------------------------------------------- sample_basins
def _check_contract(ds, n, n_strata):
    assert ds.sizes["sample"] == n and ds.sizes["stratum"] == n_strata
    for v in ("limit", "final_loss", "final_grad_norm", "invariant_drift", "fraction", "fraction_low",
              "fraction_high"):
        assert v in ds
    for c in ("label", "rank", "critical_value"):
        assert c in ds.coords
    for a in ("flowgeom_version", "widths", "singular_values", "depth_H", "whitened", "seed", "integrator",
              "tolerances", "init", "ci_level", "ci_method"):
        assert a in ds.attrs
    total = float(ds.fraction.sum()) + sum(float(ds[f"fraction_{k}"]) for k in ("unconverged", "diverged",
                                                                                   "unclassified"))
    assert total == pytest.approx(1.0, abs=1e-14)
    assert int(ds["count"].sum()) + sum(int(ds[f"count_{k}"]) for k in ("unconverged", "diverged", "unclassified")) == n
    assert np.all(ds.fraction_low <= ds.fraction) and np.all(ds.fraction <= ds.fraction_high)


def test_fractions_sum_to_one_and_limits_are_critical(p322):
    # early_stop=False: every sample is finished by the flow + end game to grad_tol (tests/test_limits.py
    # checks that the early decision gives the same limits)
    ds = sample_basins(p322, 40, seed=11, init_scale=0.5, scheduler="synchronous", ci_method="clopper-pearson",
                       ci_level=0.9, early_stop=False, **FAST)
    _check_contract(ds, 40, 4)
    assert ds.attrs["ci_level"] == 0.9 and ds.attrs["ci_method"] == "clopper-pearson"
    conv = ds.limit.values >= 0
    assert conv.all()  # gaussian inits of a well-posed problem all converge
    # every labelled sample sits at its stratum's critical value with a vanishing gradient
    cv = ds.critical_value.values[ds.limit.values[conv]]
    np.testing.assert_allclose(ds.final_loss.values[conv], cv, atol=1e-12)
    assert np.all(ds.final_grad_norm.values[conv] <= 1e-10)
    assert np.all(ds.invariant_drift.values < 1e-4)


def test_limits_agree_with_solve_ivp(p322):
    """Independent reference: scipy's LSODA at tight tolerance, classified by the end product."""
    net = p322.network()
    ds = sample_basins(p322, 6, seed=12, scheduler="synchronous", keep_states=True, **FAST)
    for i in range(6):
        sol = solve_ivp(lambda t, y: -net.grad(y), (0.0, 400.0), ds.theta0.values[i], method="LSODA",
                        rtol=1e-11, atol=1e-13)
        P = net.end_to_end(sol.y[:, -1])
        d = [np.max(np.abs(P - st.end_to_end)) for st in enumerate_strata(p322)]
        assert int(np.argmin(d)) == int(ds.limit[i]) and min(d) < 1e-4


def test_same_result_for_any_split(p322):
    kw = dict(seed=13, **QUICK)
    one = sample_basins(p322, 30, chunk_size=30, scheduler="synchronous", **kw)
    many = sample_basins(p322, 30, chunk_size=7, scheduler="synchronous", **kw)
    assert one.identical(many)


def test_same_result_on_a_local_dask_cluster(p322):
    distributed = pytest.importorskip("distributed")
    kw = dict(seed=13, **QUICK)
    one = sample_basins(p322, 30, chunk_size=30, scheduler="synchronous", **kw)
    with distributed.LocalCluster(n_workers=2, processes=False, threads_per_worker=1,
                                  dashboard_address=":0") as cluster:
        with distributed.Client(cluster) as client:
            by_client = sample_basins(p322, 30, chunk_size=8, scheduler=client, **kw)
    assert one.identical(by_client)


@pytest.mark.slow
def test_same_result_on_worker_processes(p322):
    distributed = pytest.importorskip("distributed")
    # default backend (numba when installed) and real worker processes, by address
    kw = dict(seed=13, init_scale=0.7, progress=False)
    one = sample_basins(p322, 60, chunk_size=60, scheduler="synchronous", **kw)
    pool = sample_basins(p322, 60, chunk_size=9, n_workers=2, **kw)
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                  dashboard_address=":0") as cluster:
        dask = sample_basins(p322, 60, chunk_size=13, scheduler=cluster.scheduler_address, **kw)
    assert one.identical(pool) and one.identical(dask)


class _Interrupt(Exception):
    pass


def test_resume_after_interruption(tmp_path, p322):
    kw = dict(seed=14, scheduler="synchronous", **QUICK)
    ref = sample_basins(p322, 30, chunk_size=30, **kw)
    store = tmp_path / "b.zarr"
    seen = []

    def crash_after_two(a, b):
        seen.append((a, b))
        if len(seen) == 2:
            raise _Interrupt

    with pytest.raises(_Interrupt):
        sample_basins(p322, 30, chunk_size=8, store=store, on_chunk=crash_after_two, **kw)
    redone = []
    # resume with another chunk size: only samples 16..29 are computed, none twice
    got = sample_basins(p322, 30, chunk_size=5, store=store, on_chunk=lambda a, b: redone.append((a, b)), **kw)
    assert redone == [(16, 21), (21, 26), (26, 30)]
    assert got.identical(ref)
    # a rerun computes nothing; the seed defaults to the store's
    again = []
    same = sample_basins(p322, 30, store=store, scheduler="synchronous", on_chunk=lambda a, b: again.append(a),
                         **QUICK)
    assert again == [] and same.identical(ref)
    # extending the run computes only the new samples, which equal a fresh run's
    more = sample_basins(p322, 36, store=store, **kw)
    fresh = sample_basins(p322, 36, **kw)
    assert more.identical(fresh)
    with pytest.raises(ValueError, match=r"different basin run \(seed: store has 14"):
        sample_basins(p322, 30, store=store, seed=15, scheduler="synchronous", **QUICK)
    with pytest.raises(ValueError, match="init_scale"):
        sample_basins(p322, 30, store=store, seed=14, scheduler="synchronous", **dict(QUICK, init_scale=2.0))


def test_incomplete_chunk_without_marker_is_recomputed(tmp_path, p322):
    import zarr

    kw = dict(seed=15, scheduler="synchronous", chunk_size=10, **QUICK)
    store = tmp_path / "c.zarr"
    ref = sample_basins(p322, 20, store=store, **kw)
    root = zarr.open_group(str(store), mode="a")
    g = root["chunk_000000000010_000000000020"]
    g.attrs["complete"] = False  # as if killed between the data and the marker
    g["limit"][:] = 99  # garbage that must not be counted
    redone = []
    got = sample_basins(p322, 20, store=store, on_chunk=lambda a, b: redone.append((a, b)), **kw)
    assert redone == [(10, 20)] and got.identical(ref)


@pytest.mark.slow
def test_resume_after_sigkill(tmp_path):
    store = tmp_path / "k.zarr"
    script = textwrap.dedent(f"""
        import os, signal
        from flowgeom import Problem
        from flowgeom.basins import sample_basins
        pb = Problem.from_spectrum([2.0, 1.0], (3, 2, 2))
        n = [0]
        def kill(a, b):
            n[0] += 1
            if n[0] == 3:
                os.kill(os.getpid(), signal.SIGKILL)
        sample_basins(pb, 64, seed=21, chunk_size=8, store={str(store)!r}, scheduler="synchronous",
                      progress=False, backend="numpy", on_chunk=kill)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert proc.returncode == -signal.SIGKILL
    pb = Problem.from_spectrum([2.0, 1.0], (3, 2, 2))
    redone = []
    got = sample_basins(pb, 64, seed=21, chunk_size=16, store=store, scheduler="synchronous", progress=False,
                        backend="numpy", on_chunk=lambda a, b: redone.append(a))
    assert redone == [24, 40, 56]
    ref = sample_basins(pb, 64, seed=21, scheduler="synchronous", progress=False, backend="numpy")
    assert got.identical(ref)


def test_start_on_the_stable_line_reaches_the_saddle(scalar):
    a = np.array([0.3, -0.7, 1.5, 2.0])
    init = np.stack([a, -a], axis=1)  # exactly on w2 = -w1, the stable set of the origin
    ds = sample_basins(scalar, 4, init=init, scheduler="synchronous", **FAST)
    origin = list(ds.label.values).index("{}")
    np.testing.assert_array_equal(ds.limit.values, origin)
    assert np.all(ds.final_grad_norm.values <= 1e-10)
    # the stable-set sampler (delta = 0) puts its points on the line, with the same outcome
    ds = sample_basins(scalar, 10, init="stable-set", seed=1, scheduler="synchronous", **FAST)
    assert np.all(ds.limit.values == origin)
    # off the line the origin repels: the fraction reaching it falls to 0
    ds = sample_basins(scalar, 10, init="stable-set", init_params={"delta": 1e-3}, seed=1,
                       scheduler="synchronous", **FAST)
    assert float(ds.fraction.sel(stratum=origin)) == 0.0
    assert float(ds.fraction.sel(stratum=1 - origin)) == 1.0


def _numpy_gd_diverges(net, theta, lr, n_steps):
    with np.errstate(all="ignore"):
        for _ in range(n_steps):
            theta = theta - lr * net.grad(theta)
            if not np.all(np.isfinite(theta)) or np.linalg.norm(theta) > 1e8:
                return True
    return False


def test_diverging_gd_is_counted_as_diverged(p322):
    net = p322.network()
    ds = sample_basins(p322, 24, seed=16, integrator="gd", lr=0.45, t1=45.0, scheduler="synchronous",
                       keep_states=True, **FAST)
    _check_contract(ds, 24, 4)
    div = ds.limit.values == LIMIT_DIVERGED
    assert 0 < div.sum() < 24
    assert int(ds.count_diverged) == div.sum()
    for i in range(24):
        assert _numpy_gd_diverges(net, ds.theta0.values[i], 0.45, 100) == div[i]


def test_unconverged_are_kept(p322):
    ds = sample_basins(p322, 10, seed=17, t1=0.05, t_max=0.1, polish_steps=0, scheduler="synchronous", **FAST)
    assert np.all(ds.limit.values == LIMIT_UNCONVERGED)
    assert float(ds.fraction_unconverged) == 1.0
    np.testing.assert_allclose(ds.t_final.values, 0.1)


def test_invariant_integrator_and_balanced_init(p322):
    ds = sample_basins(p322, 8, seed=18, init="balanced", integrator="invariant", t1=40.0,
                       scheduler="synchronous", **FAST)
    _check_contract(ds, 8, 4)
    assert ds.attrs["init"] == "balanced" and ds.attrs["integrator"] == "invariant"
    assert np.all(ds.invariant_drift.values < 1e-8)


def test_roundtrip_through_io(tmp_path, p322):
    ds = sample_basins(p322, 8, seed=19, scheduler="synchronous", **QUICK)
    back = load_dataset(save_dataset(ds, tmp_path / "basins.nc"))
    assert back.identical(ds)
    assert back.attrs["whitened"] is True and isinstance(back.attrs["tolerances"], dict)


def test_bad_arguments(p322):
    with pytest.raises(ValueError, match="`n_samples` must be a positive integer"):
        sample_basins(p322, 0, **FAST)
    with pytest.raises(ValueError, match="`lr` must be a positive float for integrator='gd'"):
        sample_basins(p322, 3, integrator="gd", **FAST)
    with pytest.raises(ValueError, match="`integrator` must be one of"):
        sample_basins(p322, 3, integrator="rk4", **FAST)
    with pytest.raises(ValueError, match="`scheduler` must be"):
        sample_basins(p322, 3, scheduler="fibers", **FAST)
    with pytest.raises(TypeError, match="`atlas` must implement"):
        sample_basins(p322, 3, atlas=object(), **FAST)
    with pytest.raises(ValueError, match="`t_max` must be"):
        sample_basins(p322, 3, t1=10.0, t_max=5.0, **FAST)
    with pytest.raises(TypeError, match="`problem_or_model` must be"):
        sample_basins("problem", 3, **FAST)


def test_mlp_plugs_in():
    from flowgeom.models.mlp import MLP

    rng = np.random.default_rng(3)
    X = rng.standard_normal((2, 6))
    teacher = MLP((2, 1, 1), X, np.zeros((1, 6)), activation="tanh")
    Y = teacher.predict(np.array([1.0, -0.5, 1.2]))  # realizable: global minimum value 0
    net = MLP((2, 1, 1), X, Y, activation="tanh")
    ds = sample_basins(net, 12, seed=20, scheduler="synchronous", t1=50.0, **FAST)
    _check_contract(ds, 12, ds.sizes["stratum"])
    zero = int(np.argmin(np.abs(ds.critical_value.values)))
    assert abs(float(ds.critical_value.values[zero])) < 1e-12
    fit = ds.limit.values == zero
    assert fit.any()
    assert np.all(ds.final_loss.values[fit] < 1e-12)


def test_unwhitened_data_and_deeper_network(capsys):
    rng = np.random.default_rng(8)
    # X = U_X diag(1.5, 1.2, 0.8) Q^T and Y = U_Y [diag(2, 1) | 0] Q^T (Q: 12 x 3 orthonormal):
    # not whitened, but well conditioned with reduced singular values (2, 1): no slow modes
    Q = np.linalg.qr(rng.standard_normal((12, 3)))[0]
    U_X = np.linalg.qr(rng.standard_normal((3, 3)))[0]
    U_Y = np.linalg.qr(rng.standard_normal((2, 2)))[0]
    X = U_X @ np.diag([1.5, 1.2, 0.8]) @ Q.T
    Y = U_Y @ np.array([[2.0, 0, 0], [0, 1.0, 0]]) @ Q.T
    pb = Problem.from_data(X, Y, (3, 2, 2))
    assert not pb.whitened
    ds = sample_basins(pb, 3, seed=22, scheduler="synchronous", t1=30.0, backend="numpy", progress=True,
                       early_stop=False)
    assert "sample" in capsys.readouterr().err  # the tqdm bar: samples done and rate
    _check_contract(ds, 3, 4)
    ok = ds.limit.values >= 0
    assert ok.all()
    # final losses are the canonical critical values plus the data offset
    np.testing.assert_allclose(ds.final_loss.values, ds.critical_value.values[ds.limit.values] + pb.loss_offset,
                               atol=1e-10)
    # the early decision (sublevel certificate, data offset included) gives the same limits
    early = sample_basins(pb, 3, seed=22, scheduler="synchronous", t1=30.0, backend="numpy", progress=False)
    assert np.array_equal(early.limit.values, ds.limit.values)
    deep = Problem.from_spectrum([2.0, 1.0], (3, 2, 2, 2))
    dd = sample_basins(deep, 8, seed=23, scheduler="synchronous", **QUICK)
    _check_contract(dd, 8, 4)
    assert dd.attrs["depth_H"] == 2 and list(dd.kind.values)[-1] == "global_min"
    conv = dd.status.values == 0  # converged: at the limit
    np.testing.assert_allclose(dd.final_loss.values[conv], dd.critical_value.values[dd.limit.values[conv]],
                               atol=1e-10)
    # decided early: stopped on the way down, between the global minimum value and the next critical value
    early = (dd.limit.values >= 0) & ~conv
    assert early.any()
    assert np.all(dd.final_loss.values[early] >= dd.critical_value.values[-1])
    assert np.all(dd.final_loss.values[early] < np.sort(np.unique(dd.critical_value.values))[1])


def test_degenerate_saddle_convergence_is_flagged():
    """H = 2: ||grad L|| ~ s |W|^2 at the origin, so a 1e-6 init meets grad_tol at t = 0 (a plateau)."""
    deep = Problem.from_spectrum([2.0, 1.0], (3, 2, 2, 2))
    with pytest.warns(UserWarning, match=r"non-strict saddle strata \{'\{\}': 4\}"):
        ds = sample_basins(deep, 4, seed=24, init_scale=1e-6, scheduler="synchronous", **FAST)
    assert np.all(ds.label.values[ds.limit.values] == "{}") and np.all(ds.t_final.values == 0.0)
