"""Tests of the structure-of-arrays DOPRI5 kernel (flowgeom.flow._numba_soa) and of the compile report.

Independent references: scipy.integrate.solve_ivp (DOP853, rtol = atol = 1e-12) for final states
and save points; the numpy DOPRI5 path (a separate implementation) for statuses; the model's own
numpy gradient for the compiled field; a batch design whose statuses follow from the dynamics
(critical points, escape from a small init past ``max_norm``, an init beyond ``max_norm``).
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from flowgeom.flow import SaveAt, Status, integrate, numba_available
from flowgeom.models.deep_linear import DeepLinearNetwork

pytestmark = pytest.mark.skipif(not numba_available(), reason="numba not available")


def tight(net, y0, ts):
    """States at times ts by scipy DOP853, rtol = atol = 1e-12 (one trajectory at a time)."""
    out = []
    for y in np.atleast_2d(y0):
        sol = solve_ivp(lambda t, v: -net.grad(v), (ts[0], ts[-1]), y, method="DOP853", rtol=1e-12, atol=1e-12,
                        t_eval=ts)
        out.append(sol.y.T)
    return np.array(out)


def soa(net, y0, ts, t1, kernel="soa", **kw):
    from flowgeom.flow._numba import dopri5_dln

    opts = dict(states=True, rtol=1e-6, atol=1e-9, grad_tol=0.0, max_steps=100_000, max_norm=1e6, dt0=None,
                adaptive=True)
    opts.update(kw)
    return dopri5_dln(net, np.atleast_2d(y0), np.asarray(ts, float), float(ts[0]), t1, kernel=kernel, **opts)


@pytest.mark.parametrize("widths", [(4, 3, 2), (6, 5, 3)])
def test_soa_field_is_minus_the_gradient(rng, widths):
    from flowgeom.flow._numba_soa import _field_soa

    net = DeepLinearNetwork.canonical(widths, np.linspace(3.0, 1.0, widths[-1]))
    dx, d1, dy = widths
    th = net.random_params(rng, scale=0.8, size=37)  # (lanes, n)
    out = np.empty((net.n_params, 37))
    lossv = np.empty(37)
    _field_soa(np.ascontiguousarray(th.T), out, lossv, dx, d1, dy, net.target.ravel().copy(),
               np.empty((dy * dx, 37)), float(net.offset))
    np.testing.assert_allclose(out.T, -net.grad(th), rtol=0, atol=1e-13 * max(1.0, np.abs(net.grad(th)).max()))
    np.testing.assert_allclose(lossv, net.loss(th), rtol=1e-13)


@pytest.mark.parametrize("widths, scale", [((4, 3, 2), 0.6), ((6, 5, 3), 0.45)])
def test_soa_final_states_and_save_points_match_tight_scipy(rng, widths, scale):
    net = DeepLinearNetwork.canonical(widths, np.linspace(3.0, 1.0, widths[-1]))
    y0 = net.random_params(rng, scale=scale, size=40)  # more than one block of lanes
    ts = np.array([0.0, 0.37, 2.0, 5.5, 12.0])
    ref = tight(net, y0[:8], ts)
    tr = integrate(net, y0, 12.0, saveat=SaveAt(ts=ts), grad_tol=0.0, rtol=1e-10, atol=1e-12, backend="numba")
    assert np.all(tr.status == Status.REACHED_T1)
    np.testing.assert_allclose(tr.y_final[:8], ref[:, -1], rtol=0, atol=2e-8)
    np.testing.assert_allclose(tr.ys[:8], ref, rtol=0, atol=2e-8)  # save points (dense output)
    # losses and gradient norms at save points are those of the saved states
    np.testing.assert_allclose(tr.loss, net.loss(tr.ys), rtol=1e-12, atol=1e-18)
    np.testing.assert_allclose(tr.grad_norm, np.linalg.norm(net.grad(tr.ys), axis=-1), rtol=1e-10, atol=1e-14)
    # the benchmark tolerances: final losses within 1e-10 of the tight reference
    loose = integrate(net, y0[:8], 12.0, saveat=SaveAt(ts=[0.0, 12.0]), grad_tol=0.0, backend="numba")
    np.testing.assert_allclose(loose.loss_final, net.loss(ref[:, -1]), rtol=0, atol=1e-8)


def mixed_batch(net):
    """A batch whose statuses follow from the dynamics (grad_tol 1e-5, max_norm 2, t1 = 8)."""
    dx, d1, dy = net.widths
    def aligned(a, mode):  # balanced, mode-aligned weights: an invariant subspace of the flow
        W1, W2 = np.zeros((d1, dx)), np.zeros((dy, d1))
        W1[mode, mode] = W2[mode, mode] = a
        return net.pack([W1, W2])
    rng = np.random.default_rng(7)
    return np.array([
        np.zeros(net.n_params),                       # a critical point: CONVERGED at t0
        aligned(0.9, 1),                              # converges to the mode-2 saddle (s = 1, norm 1.41)
        rng.standard_normal(net.n_params) * 1.0,      # norm ~ 4 > max_norm: DIVERGED at t0
        net.random_params(rng, scale=0.05),           # escapes toward the minimum (norm 2.83): DIVERGED
        aligned(1e-4, 1),                             # still escaping the origin at t1: REACHED_T1
    ]), [Status.CONVERGED, Status.CONVERGED, Status.DIVERGED, Status.DIVERGED, Status.REACHED_T1]


def test_soa_statuses_match_numpy_on_a_mixed_batch():
    net = DeepLinearNetwork.canonical((4, 3, 2), [3.0, 1.0])
    y0, expected = mixed_batch(net)
    y0 = np.concatenate([y0] * 8)  # 40 rows: lanes are refilled
    expected = expected * 8
    kw = dict(saveat=SaveAt(ts=[0.0, 0.5, 4.0, 8.0]), grad_tol=1e-5, max_norm=2.0)
    a = integrate(net, y0, 8.0, backend="numpy", **kw)
    b = integrate(net, y0, 8.0, backend="numba", **kw)
    np.testing.assert_array_equal(a.status, expected)
    np.testing.assert_array_equal(b.status, a.status)
    np.testing.assert_allclose(b.t_final, a.t_final, rtol=1e-6)
    np.testing.assert_array_equal(np.isnan(b.loss), np.isnan(a.loss))
    np.testing.assert_allclose(b.ys, a.ys, rtol=0, atol=1e-6)
    assert np.max(np.abs(a.n_steps - b.n_steps)) <= 2
    # a step budget: the running trajectories stop with MAX_STEPS, the others as before
    a = integrate(net, y0, 8.0, backend="numpy", max_steps=6, **kw)
    b = integrate(net, y0, 8.0, backend="numba", max_steps=6, **kw)
    assert set(a.status[[3, 4]]) == {Status.MAX_STEPS}
    np.testing.assert_array_equal(b.status, a.status)
    np.testing.assert_array_equal(b.n_steps, a.n_steps)
    np.testing.assert_array_equal(np.isnan(b.loss), np.isnan(a.loss))


def test_soa_agrees_with_the_per_trajectory_kernel_and_fixed_steps():
    net = DeepLinearNetwork.canonical((5, 4, 3), [3.0, 2.0, 1.0])
    y0 = net.random_params(np.random.default_rng(3), scale=0.5, size=45)
    ts = np.linspace(0.0, 10.0, 7)
    a, b = soa(net, y0, ts, 10.0, rtol=1e-9, atol=1e-12), soa(net, y0, ts, 10.0, kernel="row", rtol=1e-9,
                                                              atol=1e-12)
    np.testing.assert_array_equal(a.status, b.status)
    np.testing.assert_allclose(a.ys, b.ys, rtol=0, atol=1e-8)
    np.testing.assert_allclose(a.invariant_drift, b.invariant_drift, rtol=0.5, atol=1e-12)
    assert np.max(np.abs(a.n_steps - b.n_steps)) <= 2
    deep = DeepLinearNetwork.canonical((4, 3, 3, 2), [3.0, 1.0])
    with pytest.raises(ValueError, match="`kernel='soa'`"):
        soa(deep, np.zeros(deep.n_params), ts, 10.0)
    with pytest.raises(ValueError, match="`kernel`"):
        soa(net, y0, ts, 10.0, kernel="simd")
    fa = soa(net, y0, ts, 10.0, adaptive=False, dt0=0.01)
    fb = integrate(net, y0, 10.0, saveat=SaveAt(ts=ts), grad_tol=0.0, adaptive=False, dt0=0.01, backend="numpy")
    np.testing.assert_array_equal(fa.n_steps, fb.n_steps)
    np.testing.assert_allclose(fa.ys, fb.ys, rtol=0, atol=1e-11)


def test_soa_lanes_are_independent():
    """A trajectory's result does not depend on its block, its lane or its neighbours (bit for bit)."""
    net = DeepLinearNetwork.canonical((4, 3, 2), [3.0, 1.0])
    rng = np.random.default_rng(11)
    y0 = net.random_params(rng, scale=0.6, size=37)
    y0[5] *= 40.0  # a neighbour that diverges at t0
    ts = np.array([0.0, 1.0, 7.5, 20.0])
    kw = dict(max_norm=100.0)
    batch = soa(net, y0, ts, 20.0, **kw)
    perm = rng.permutation(37)
    shuffled = soa(net, y0[perm], ts, 20.0, **kw)
    for k in (0, 5, 17, 36):
        one = soa(net, y0[k], ts, 20.0, **kw)
        for tr, j in ((batch, k), (shuffled, int(np.flatnonzero(perm == k)[0]))):
            np.testing.assert_array_equal(tr.ys[j], one.ys[0])
            np.testing.assert_array_equal(tr.loss[j], one.loss[0])
            assert tr.status[j] == one.status[0] and tr.n_steps[j] == one.n_steps[0]
            assert tr.invariant_drift[j] == one.invariant_drift[0]


# ---------------------------------------------------------------- compile report
def test_compile_report_speaks_when_compiling_and_not_when_compiled(capsys):
    from numba import njit

    from flowgeom.flow._numba_compile import compile_report

    @njit
    def plus_one(x):
        return x + 1

    with compile_report():
        assert plus_one(1) == 2  # compiles now
    err = capsys.readouterr().err
    assert err.count("flowgeom: compiling kernels, once") == 1 and "compiled in" in err
    with compile_report():
        assert plus_one(2) == 3  # already compiled
    assert capsys.readouterr().err == ""


def test_compile_report_is_silent_when_loading_from_the_disk_cache(tmp_path, capsys):
    """Two fresh dispatchers of one cached function (the same file imported twice): the first compiles and
    writes the disk cache (message), the second loads it (no message)."""
    import importlib.util

    from flowgeom.flow._numba_compile import compile_report

    src = tmp_path / "cachedmod.py"
    src.write_text("from numba import njit\n\n\n@njit(cache=True)\ndef twice(x):\n    return 2 * x\n")
    errs = []
    for name in ("cachedmod_a", "cachedmod_b"):
        spec = importlib.util.spec_from_file_location(name, src)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        with compile_report():
            assert mod.twice(21.0) == 42.0
        errs.append(capsys.readouterr().err)
        assert len(mod.twice.stats.cache_hits) == (name == "cachedmod_b")  # numba's own account
    assert "compiling kernels, once" in errs[0] and errs[1] == ""


@pytest.mark.slow
def test_real_kernels_compile_once_then_load_silently(tmp_path):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    code = ("import numpy as np; from flowgeom import DeepLinearNetwork; from flowgeom.flow import integrate; "
            "net = DeepLinearNetwork.canonical((3, 2, 2), [2.0, 1.0]); "
            "print(integrate(net, np.full((3, net.n_params), 0.3), 1.0, backend='numba').counts())")
    runs = [subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
            for _ in range(2)]
    assert all(r.returncode == 0 for r in runs), [r.stderr for r in runs]
    assert runs[0].stderr.count("compiling kernels, once") == 1
    assert "compiling" not in runs[1].stderr
