"""Tests of flowgeom.integrate: accuracy against closed forms and scipy, invariants, statuses, bounds.

References used as independent ground truth:
- scalar network u' = (s - uv) v, v' = (s - uv) u on its balanced line u = v: x = u^2 solves the
  logistic equation x' = 2 (s - x) x, x(t) = s x0 e^{2st} / (s + x0 (e^{2st} - 1));
- Saxe, McClelland, Ganguli (2014), "Exact solutions to the nonlinear dynamics of learning in
  deep linear neural networks", ICLR: for whitened H = 1 and a balanced init aligned with the
  singular vectors, each mode strength a_i (P = diag(a_i^2)) follows the same logistic law with s_i;
- scipy.integrate.solve_ivp (DOP853, rtol = atol = 1e-12) for random batches.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.integrate import solve_ivp

from flowgeom.flow import (
    STATUS_MESSAGES,
    SaveAt,
    Status,
    Trajectory,
    gradient_descent,
    integrate,
    numba_available,
)
from flowgeom.linear import flow_norm_bound, safe_learning_rate
from flowgeom.models.deep_linear import DeepLinearNetwork

BACKENDS = ["numpy"] + (["numba"] if numba_available() else [])


# ---------------------------------------------------------------- helpers and toy models
def logistic_u(t, s, u0):
    """Closed-form u(t) on the balanced line u = v of the scalar network (u0 > 0)."""
    x0 = u0**2
    e = np.exp(2 * s * t)
    return np.sqrt(s * x0 * e / (s + x0 * (e - 1.0)))


def saxe_setup(widths=(4, 3, 2), s=(3.0, 1.5), a0=(0.05, 0.2)):
    """Balanced, aligned init: W1 = [diag(a0) 0; 0 0], W2 = [diag(a0) 0] (Saxe et al. 2014)."""
    net = DeepLinearNetwork.canonical(widths, s)
    dx, d1, dy = widths
    W1 = np.zeros((d1, dx))
    W2 = np.zeros((dy, d1))
    for i, a in enumerate(a0):
        W1[i, i] = a
        W2[i, i] = a
    return net, net.pack([W1, W2]), np.asarray(s), np.asarray(a0)


def balanced_init(net, rng, N, scale=0.5):
    """H = 1 balanced weights (C = W2^T W2 - W1 W1^T = 0): W1 = U S1 Q1, W2 = Q2 S2 U^T."""
    dx, d1, dy = net.widths
    r = min(dx, d1, dy)
    out = []
    for _ in range(N):
        U = np.linalg.qr(rng.standard_normal((d1, d1)))[0]
        Q1 = np.linalg.qr(rng.standard_normal((dx, dx)))[0]
        Q2 = np.linalg.qr(rng.standard_normal((dy, dy)))[0]
        sig = scale * (0.5 + rng.random(r))
        S1 = np.zeros((d1, dx))
        S2 = np.zeros((dy, d1))
        S1[np.arange(r), np.arange(r)] = sig
        S2[np.arange(r), np.arange(r)] = sig
        out.append(net.pack([U @ S1 @ Q1, Q2 @ S2 @ U.T]))
    return np.array(out)


class Wrapped:
    """A DeepLinearNetwork seen only through the Model protocol (forces the generic numpy path)."""

    def __init__(self, net):
        self.net = net

    @property
    def n_params(self):
        return self.net.n_params

    def loss(self, theta):
        return self.net.loss(theta)

    def grad(self, theta):
        return self.net.grad(theta)

    def hvp(self, theta, v):
        return self.net.hvp(theta, v)

    def hessian(self, theta):
        return self.net.hessian(theta)

    def conserved(self, theta):
        return self.net.conserved(theta)


class DoubleWell:
    r"""Separable L = sum(theta^2/2 - theta^4/4): |theta_i| < 1 decays to 0, |theta_i| > 1 blows up in finite time."""

    n_params = 2

    def loss(self, th):
        th = np.asarray(th)
        return np.sum(th**2 / 2 - th**4 / 4, axis=-1)

    def grad(self, th):
        th = np.asarray(th)
        return th - th**3

    def hvp(self, th, v):
        return (1 - 3 * np.asarray(th) ** 2) * v

    def hessian(self, th):
        th = np.asarray(th)
        return (1 - 3 * th**2)[..., :, None] * np.eye(2)

    def conserved(self, th):
        return np.zeros(np.shape(th)[:-1] + (0,))


class Cliff:
    r"""L = -theta_0 - theta_1 (flow moves at unit speed) with a gradient that is NaN for theta_0 > 1."""

    n_params = 2

    def loss(self, th):
        th = np.asarray(th)
        return np.where(th[..., 0] > 1, np.nan, -th[..., 0] - th[..., 1])

    def grad(self, th):
        th = np.asarray(th)
        g = -np.ones_like(th)
        return np.where((th[..., :1] > 1), np.nan, g)

    def hvp(self, th, v):
        return np.zeros(np.broadcast_shapes(np.shape(th), np.shape(v)))

    def hessian(self, th):
        return np.zeros(np.shape(th) + (2,))

    def conserved(self, th):
        return np.zeros(np.shape(th)[:-1] + (0,))


def tight_reference(model, theta0, t_eval):
    out = []
    for th in np.atleast_2d(theta0):
        sol = solve_ivp(lambda t, y: -model.grad(y), (t_eval[0], t_eval[-1]), th, method="DOP853",
                        rtol=1e-12, atol=1e-12, t_eval=t_eval)
        assert sol.success
        out.append(sol.y.T)
    return np.array(out)


def assert_summaries_finite(tr: Trajectory):
    for name in ("y_final", "t_final", "loss_final", "grad_norm_final", "invariant_drift"):
        assert np.all(np.isfinite(getattr(tr, name))), name


# ---------------------------------------------------------------- order of accuracy
@pytest.mark.parametrize(
    "method,order,hs",
    [
        ("dopri5", 5, [0.4, 0.2, 0.1, 0.05]),
        ("gauss-legendre", 4, [0.4, 0.2, 0.1, 0.05]),
        ("implicit-midpoint", 2, [0.2, 0.1, 0.05, 0.025]),
    ],
)
def test_order_scalar_balanced_line(method, order, hs):
    s, u0, T = 1.0, 0.1, 6.0
    net = DeepLinearNetwork.canonical((1, 1, 1), [s])
    errs = []
    for h in hs:
        tr = integrate(net, [u0, u0], T, method=method, adaptive=False, dt0=h,
                       saveat=SaveAt(ts=[0.0, T]), grad_tol=0.0, backend="numpy")
        assert tr.status[0] == Status.REACHED_T1
        assert tr.n_steps[0] == round(T / h)
        errs.append(np.max(np.abs(tr.y_final[0] - logistic_u(T, s, u0))))
    slope = np.polyfit(np.log(hs), np.log(errs), 1)[0]
    assert abs(slope - order) < 0.4, (slope, errs)


@pytest.mark.parametrize("method,order", [("dopri5", 5), ("gauss-legendre", 4)])
def test_order_saxe_modes(method, order):
    net, th0, s, a0 = saxe_setup()
    T = 3.0
    hs = [0.1, 0.05, 0.025]
    errs = []
    for h in hs:
        tr = integrate(net, th0, T, method=method, adaptive=False, dt0=h, saveat=SaveAt(ts=[0.0, T]),
                       grad_tol=0.0, backend="numpy")
        P = net.end_to_end(tr.y_final[0])
        exact = np.diag(logistic_u(T, s, a0) ** 2)
        errs.append(np.max(np.abs(P[:, : len(s)] - exact)))
        assert np.max(np.abs(P[:, len(s):])) < 1e-14
    slope = np.polyfit(np.log(hs), np.log(errs), 1)[0]
    assert abs(slope - order) < 0.5, (slope, errs)


@pytest.mark.parametrize("backend", BACKENDS)
def test_adaptive_dense_output_matches_saxe(backend):
    """Adaptive run with tight tolerance; the dense-output save points follow the closed form."""
    net, th0, s, a0 = saxe_setup()
    ts = np.linspace(0.0, 6.0, 61)
    tr = integrate(net, th0, 6.0, rtol=1e-10, atol=1e-12, saveat=SaveAt(ts=ts), grad_tol=0.0, backend=backend)
    P = net.end_to_end(tr.ys[0])  # (n_save, dy, dx)
    exact = logistic_u(ts[:, None], s[None], a0[None]) ** 2
    got = np.stack([P[:, i, i] for i in range(len(s))], axis=1)
    assert np.max(np.abs(got - exact)) < 1e-8
    # loss and grad_norm columns are those of the saved states
    np.testing.assert_allclose(tr.loss[0], net.loss(tr.ys[0]), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(tr.grad_norm[0], np.linalg.norm(net.grad(tr.ys[0]), axis=-1), rtol=1e-12,
                               atol=1e-15)


def test_dense_output_order():
    """The continuous extension between steps is 4th order: fixed steps, mid-step save times."""
    s, u0, T = 1.0, 0.1, 6.0
    net = DeepLinearNetwork.canonical((1, 1, 1), [s])
    errs = []
    hs = [0.4, 0.2, 0.1]
    for h in hs:
        ts = np.arange(0.37 * h, T, h)  # never on a step
        tr = integrate(net, [u0, u0], T, adaptive=False, dt0=h, saveat=SaveAt(ts=ts), grad_tol=0.0,
                       backend="numpy")
        errs.append(np.max(np.abs(tr.ys[0, :, 0] - logistic_u(ts, s, u0))))
    slope = np.polyfit(np.log(hs), np.log(errs), 1)[0]
    assert slope > 4.5, (slope, errs)  # local order 5 of the interpolant (global 4 or better)


# ---------------------------------------------------------------- scipy comparison
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("widths", [(4, 3, 2), (3, 3, 2, 2)])
def test_matches_tight_solve_ivp(rng, widths, backend):
    net = DeepLinearNetwork.canonical(widths, np.linspace(3.0, 1.0, widths[-1]))
    th0 = net.random_params(rng, scale=1 / np.sqrt(widths[1]), size=4)
    ts = np.array([0.0, 0.3, 1.0, 2.5, 7.0, 20.0])
    tr = integrate(net, th0, 20.0, rtol=1e-10, atol=1e-12, saveat=SaveAt(ts=ts), grad_tol=0.0, backend=backend)
    ref = tight_reference(net, th0, ts)
    assert np.all(tr.status == Status.REACHED_T1)
    assert np.max(np.abs(tr.ys - ref)) < 1e-7
    # default tolerances: the final loss agrees with the tight reference to 1e-8
    tr2 = integrate(net, th0, 20.0, saveat=SaveAt(ts=[0.0, 20.0]), backend=backend)
    assert np.max(np.abs(tr2.loss_final - net.loss(ref[:, -1]))) < 1e-8


def test_generic_model_path_matches_network(rng):
    net = DeepLinearNetwork.canonical((4, 3, 2), [2.0, 1.0])
    th0 = net.random_params(rng, scale=0.5, size=5)
    a = integrate(net, th0, 10.0, backend="numpy", saveat=SaveAt(ts=[0, 1, 10]))
    b = integrate(Wrapped(net), th0, 10.0, saveat=SaveAt(ts=[0, 1, 10]))
    assert b.backend == "numpy"
    np.testing.assert_array_equal(a.n_steps, b.n_steps)
    np.testing.assert_allclose(a.ys, b.ys, rtol=0, atol=1e-13)
    g = integrate(Wrapped(net), th0[:2], 10.0, method="invariant", saveat=SaveAt(ts=[0, 1, 10]), rtol=1e-9)
    ref = tight_reference(net, th0[:2], np.array([0.0, 1.0, 10.0]))
    assert np.max(np.abs(g.ys - ref)) < 1e-6


@pytest.mark.skipif(not numba_available(), reason="numba not available")
def test_backends_agree(rng):
    net = DeepLinearNetwork.canonical((5, 4, 3), [3.0, 2.0, 1.0])
    th0 = net.random_params(rng, scale=0.4, size=12)
    th0[3] = 0.0  # a critical point: converged at t0
    kw = dict(saveat=SaveAt(n_log=40), grad_tol=1e-7)
    a = integrate(net, th0, 30.0, backend="numpy", **kw)
    b = integrate(net, th0, 30.0, backend="numba", **kw)
    assert b.backend == "numba"
    np.testing.assert_array_equal(a.status, b.status)
    np.testing.assert_array_equal(a.ts, b.ts)
    assert np.max(np.abs(a.n_steps - b.n_steps)) <= 2
    np.testing.assert_allclose(a.loss_final, b.loss_final, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(a.ys, b.ys, rtol=0, atol=1e-6)
    np.testing.assert_allclose(a.invariant_drift, b.invariant_drift, rtol=0.5, atol=1e-9)
    ga = gradient_descent(net, th0, 0.02, n_steps=500, backend="numpy", saveat=SaveAt(n_log=30))
    gb = gradient_descent(net, th0, 0.02, n_steps=500, backend="numba", saveat=SaveAt(n_log=30))
    np.testing.assert_array_equal(ga.status, gb.status)
    np.testing.assert_array_equal(ga.n_steps, gb.n_steps)
    np.testing.assert_allclose(ga.ys, gb.ys, rtol=0, atol=1e-10)
    np.testing.assert_allclose(ga.invariant_drift, gb.invariant_drift, rtol=1e-6, atol=1e-14)
    off = gradient_descent(net, th0, 0.02, n_steps=50, backend="numba", track_invariants=False)
    assert np.all(np.isnan(off.invariant_drift))


# ---------------------------------------------------------------- invariants
def test_invariant_drift_explicit_vs_gauss_legendre(rng):
    """Same balanced runs (C = 0): DOPRI5 drifts off the invariant set, Gauss-Legendre does not."""
    net = DeepLinearNetwork.canonical((4, 3, 2), [3.0, 1.0])
    th0 = balanced_init(net, rng, 6)
    assert np.max(np.abs(net.conserved(th0))) < 1e-14
    ts = np.linspace(0.0, 15.0, 31)
    ex = integrate(net, th0, 15.0, method="dopri5", saveat=SaveAt(ts=ts), grad_tol=0.0, backend="numpy")
    gl = integrate(net, th0, 15.0, method="gauss-legendre", saveat=SaveAt(ts=ts), grad_tol=0.0)
    # drift measured independently from the saved states
    c_ex = np.max(np.linalg.norm(net.conserved(ex.ys), axis=-1), axis=1)
    c_gl = np.max(np.linalg.norm(net.conserved(gl.ys), axis=-1), axis=1)
    assert np.all(c_gl < 1e-11), c_gl
    assert np.all(gl.invariant_drift < 1e-11)
    # reported max over accepted steps ~ max at (interpolated) save points
    np.testing.assert_allclose(ex.invariant_drift, c_ex, rtol=0.5)
    assert np.median(ex.invariant_drift) > 1e3 * np.max(gl.invariant_drift)
    # both still solve the same flow
    ref = tight_reference(net, th0, ts)
    assert np.max(np.abs(gl.ys - ref)) < 1e-4
    assert np.max(np.abs(ex.ys - ref)) < 1e-4


@pytest.mark.parametrize("solver", ["newton", "fixed-point"])
def test_invariants_conserved_unbalanced_gl_deep(rng, solver):
    net = DeepLinearNetwork.canonical((3, 3, 2, 2), [2.0, 1.0])
    th0 = net.random_params(rng, scale=0.7, size=3)
    tr = integrate(net, th0, 5.0, method="invariant", saveat=SaveAt(n_log=10), grad_tol=0.0, solver=solver)
    assert np.all(tr.status == Status.REACHED_T1)
    c0 = net.conserved(th0)
    dc = np.linalg.norm(net.conserved(tr.ys) - c0[:, None], axis=-1) / (1 + np.linalg.norm(c0, axis=-1))[:, None]
    assert np.max(dc) < 1e-11
    # the monitor is a max over accepted steps, and the steps land on every save time: it can be
    # neither below the drift at the saves nor zero (round-off moves C_j), nor above the tolerance
    assert np.all(tr.invariant_drift >= np.max(dc, axis=1) * (1 - 1e-9))
    assert np.all(tr.invariant_drift > 0)
    assert np.all(tr.invariant_drift < 1e-11)


def test_loss_nonincreasing_along_flow(rng):
    net = DeepLinearNetwork.canonical((4, 3, 2), [3.0, 1.0])
    tr = integrate(net, net.random_params(rng, scale=0.5, size=8), 30.0)
    d = np.diff(tr.loss, axis=1)
    assert np.all(d <= 1e-9 * (1 + np.abs(tr.loss[:, :-1])))


@settings(max_examples=4, deadline=None)
@given(
    widths=st.sampled_from([(2, 2, 2), (3, 2, 2), (4, 3, 2), (2, 3, 2, 2)]),
    log_scale=st.floats(-3.0, 0.3),
    seed=st.integers(0, 2**31 - 1),
)
def test_property_flow_invariants_and_descent(widths, log_scale, seed):
    """Any init: the loss never increases along DOPRI5 save points; Gauss-Legendre keeps C_j."""
    rng = np.random.default_rng(seed)
    net = DeepLinearNetwork.canonical(widths, np.linspace(2.0, 1.0, widths[-1]))
    th0 = net.random_params(rng, scale=10.0**log_scale, size=2)
    ex = integrate(net, th0, 10.0, saveat=SaveAt(n_log=30), backend="numpy")
    d = np.diff(ex.loss, axis=1)
    assert np.all(d <= 1e-9 * (1 + np.abs(ex.loss[:, :-1])))
    gl = integrate(net, th0, 10.0, method="invariant", saveat=SaveAt(n_log=8), grad_tol=0.0)
    assert np.all(gl.invariant_drift < 1e-11)
    np.testing.assert_allclose(gl.loss_final, ex.loss[:, -1], rtol=1e-4, atol=1e-6)


def test_nonzero_t0(rng):
    net = DeepLinearNetwork.canonical((3, 2, 2), [2.0, 1.0])
    th0 = net.random_params(rng, scale=0.5, size=2)
    a = integrate(net, th0, 5.0, saveat=SaveAt(n_log=5), backend="numpy")
    b = integrate(net, th0, 105.0, t0=100.0, saveat=SaveAt(n_log=5), backend="numpy")
    np.testing.assert_allclose(b.ts, a.ts + 100.0)
    np.testing.assert_allclose(b.ys, a.ys, rtol=0, atol=1e-10)
    assert np.all(b.t_final == 105.0)


# ---------------------------------------------------------------- save points
def test_default_log_save_times(rng):
    net = DeepLinearNetwork.canonical((4, 3, 2), [3.0, 1.0])
    tr = integrate(net, net.random_params(rng, scale=1e-4, size=2), 60.0, backend="numpy")
    assert tr.ts.shape == (201,)
    assert tr.ts[0] == 0.0 and tr.ts[-1] == 60.0
    assert np.isclose(tr.ts[1], 0.06)
    ratios = tr.ts[2:] / tr.ts[1:-1]
    np.testing.assert_allclose(ratios, ratios[0], rtol=1e-9)
    assert tr.ys.shape == (2, 201, net.n_params)
    st = integrate(net, tr.ys[:, 0], 60.0, saveat=SaveAt(states=False, n_log=50))
    assert st.ys is None and st.loss.shape == (2, 51)


def test_small_init_plateaus_visible(rng):
    """Small init: loss sits on plateaus 1/2 sum s^2 -> 1/2 s_2^2 -> 0; the default grid sees each."""
    net = DeepLinearNetwork.canonical((4, 3, 2), [3.0, 1.0])
    tr = integrate(net, net.random_params(rng, scale=1e-4, size=4), 60.0)
    for level in (5.0, 0.5):  # 1/2 (9 + 1), 1/2 (1)
        near = np.abs(tr.loss - level) < 1e-2 * level
        assert np.all(near.sum(axis=1) >= 5), level


def test_saveat_validation():
    net = DeepLinearNetwork.canonical((3, 2, 2), [2.0, 1.0])
    th = np.zeros(net.n_params) + 0.1
    with pytest.raises(ValueError, match="`saveat.ts` must lie within"):
        integrate(net, th, 1.0, saveat=SaveAt(ts=[0.0, 2.0]))
    with pytest.raises(ValueError, match="non-decreasing"):
        SaveAt(ts=[1.0, 0.5])
    with pytest.raises(ValueError, match="`n_log`"):
        SaveAt(n_log=0)
    with pytest.raises(ValueError, match="t_first"):
        integrate(net, th, 1.0, saveat=SaveAt(t_first=5.0))


# ---------------------------------------------------------------- statuses
@pytest.mark.parametrize("backend", BACKENDS)
def test_converged_status_repeats_final_state(rng, backend):
    net = DeepLinearNetwork.canonical((3, 2, 2), [2.0, 1.0])
    th0 = net.random_params(rng, scale=0.5, size=4)
    tr = integrate(net, th0, 200.0, grad_tol=1e-6, saveat=SaveAt(n_log=50), backend=backend)
    assert np.all(tr.status == Status.CONVERGED)
    assert np.all(tr.grad_norm_final <= 1e-6) and np.all(tr.t_final < 200.0)
    for i in range(4):
        after = tr.ts > tr.t_final[i]
        assert after.any()
        np.testing.assert_array_equal(tr.ys[i, after], np.broadcast_to(tr.y_final[i], tr.ys[i, after].shape))
        np.testing.assert_allclose(tr.loss[i, after], tr.loss_final[i], rtol=1e-10, atol=0)
    assert tr.message(0) == STATUS_MESSAGES[Status.CONVERGED]
    # a critical point converges at t0
    z = integrate(net, np.zeros(net.n_params), 5.0, backend=backend)
    assert z.status[0] == Status.CONVERGED and z.t_final[0] == 0.0 and z.n_steps[0] == 0


@pytest.mark.parametrize("method", ["dopri5", "gauss-legendre"])
def test_ode_divergence_in_batch_does_not_spoil_others(method):
    model = DoubleWell()
    th0 = np.array([[0.5, -0.3], [1.2, 0.1], [0.2, 0.4]])  # row 1 blows up in finite time
    tr = integrate(model, th0, 10.0, method=method, max_norm=1e3, saveat=SaveAt(ts=np.linspace(0, 10, 11)))
    assert tr.status[1] == Status.DIVERGED
    assert np.all(np.isnan(tr.ys[1, -1])) and np.all(np.isnan(tr.loss[1, -1]))
    assert_summaries_finite(tr)
    for i in (0, 2):
        assert tr.status[i] in (Status.CONVERGED, Status.REACHED_T1)
        alone = integrate(model, th0[i], 10.0, method=method, max_norm=1e3,
                          saveat=SaveAt(ts=np.linspace(0, 10, 11)))
        np.testing.assert_array_equal(tr.ys[i], alone.ys[0])
        ref = tight_reference(model, th0[i], np.linspace(0, 10, 11))[0]
        assert np.max(np.abs(tr.ys[i] - ref)) < 1e-6


@pytest.mark.parametrize("method", ["dopri5", "gauss-legendre"])
def test_failed_and_max_steps(method):
    tr = integrate(Cliff(), np.array([[0.0, 0.0], [-100.0, 0.0]]), 5.0, method=method, max_steps=10**4,
                   saveat=SaveAt(ts=[0.0, 0.5, 5.0]))
    assert tr.status[0] == Status.FAILED  # reaches the NaN cliff at t = 1: steps shrink to nothing
    assert abs(tr.t_final[0] - 1.0) < 1e-6
    assert tr.status[1] == Status.REACHED_T1
    assert np.isnan(tr.loss[0, 2]) and np.isfinite(tr.loss[0, 1])
    assert_summaries_finite(tr)
    m = integrate(DoubleWell(), [0.5, 0.5], 10.0, method=method, max_steps=3)
    assert m.status[0] == Status.MAX_STEPS and np.isnan(m.loss[0, -1])


@pytest.mark.parametrize("backend", BACKENDS)
def test_gd_divergence_is_a_status(rng, backend):
    net = DeepLinearNetwork.canonical((4, 3, 2), [3.0, 1.0])
    th0 = net.random_params(rng, scale=0.5, size=5)
    th0[2] *= 8.0  # large init: lr is far too big for this one
    lr = 0.05
    tr = gradient_descent(net, th0, lr, t1=40.0, backend=backend, saveat=SaveAt(n_log=40))
    assert tr.status[2] == Status.DIVERGED
    assert_summaries_finite(tr)
    assert np.all(np.isnan(tr.ys[2, -1]))
    others = [0, 1, 3, 4]
    assert np.all(np.isin(tr.status[others], [Status.CONVERGED, Status.REACHED_T1]))
    alone = gradient_descent(net, th0[others], lr, t1=40.0, backend=backend, saveat=SaveAt(n_log=40))
    np.testing.assert_array_equal(tr.ys[others], alone.ys)
    np.testing.assert_array_equal(tr.n_steps[others], alone.n_steps)
    # GD is GD: replay the iteration by hand
    y = th0[0].copy()
    for _ in range(int(alone.n_steps[0])):
        y = y - lr * net.grad(y)
    np.testing.assert_allclose(alone.y_final[0], y, rtol=0, atol=1e-12)
    # explicit loss test
    ml = gradient_descent(net, th0, lr, n_steps=200, max_loss=1e6, backend=backend)
    assert ml.status[2] == Status.DIVERGED and np.all(ml.loss_final <= 1e6)


def test_gd_approaches_flow_for_small_lr(rng):
    net = DeepLinearNetwork.canonical((3, 2, 2), [2.0, 1.0])
    th0 = net.random_params(rng, scale=0.5, size=2)
    ref = tight_reference(net, th0, np.array([0.0, 2.0]))[:, -1]
    errs = []
    for lr in (0.01, 0.005):
        g = gradient_descent(net, th0, lr, t1=2.0, saveat=SaveAt(ts=[0.0, 2.0]), grad_tol=0.0)
        assert np.allclose(g.ts, [0.0, 2.0])
        errs.append(np.max(np.abs(g.ys[:, -1] - ref)))
    assert 1.7 < errs[0] / errs[1] < 2.3  # first order


# ---------------------------------------------------------------- a-priori bounds and the safe step
@pytest.mark.parametrize("whitened", [True, False])
def test_flow_norm_bound_holds(rng, whitened):
    widths = (4, 3, 2)
    if whitened:
        net = DeepLinearNetwork.canonical(widths, [3.0, 1.0])
    else:
        R = rng.standard_normal((4, 4)) + 2 * np.eye(4)
        net = DeepLinearNetwork(widths, rng.standard_normal((2, 4)), input_factor=R)
    th0 = net.random_params(rng, scale=1.0, size=8)
    b = flow_norm_bound(net, th0)
    tr = integrate(net, th0, 30.0, rtol=1e-9, atol=1e-12, saveat=SaveAt(n_log=300))
    W1, W2 = net.unpack(tr.ys)
    F = np.sum(W1**2, axis=(-2, -1)) + np.sum(W2**2, axis=(-2, -1))
    assert np.all(F.max(axis=1) <= b.F_max * (1 + 1e-9))
    np.testing.assert_allclose(F[:, 0], b.F0)


def test_paper_prop1_inequality_needs_spectral_norm_of_C():
    """The proof of Proposition 1 bounds dF/dt with lambda_max(C0) (F + ...); that step fails when C0 is
    negative definite. With ||C0||_2 = max(lambda_max, -lambda_min) it holds (as used by flow_norm_bound).
    dF/dt is computed two ways: the closed form 4<P, Sigma> - 4||P||^2 and a finite difference along a tight flow.
    """
    net = DeepLinearNetwork.canonical((3, 2, 2), [2.0, 1.0])
    W1 = np.array([[1.5, 0.0, 0.2], [0.1, 1.2, 0.0]])
    W2 = 1e-2 * np.array([[1.0, 0.5], [0.3, -0.7]])
    P = W2 @ W1
    a, b = np.sum(W1**2), np.sum(W2**2)
    ev = np.linalg.eigvalsh(W2.T @ W2 - W1 @ W1.T)
    assert ev.max() < 0  # C0 negative definite
    dF = 4 * np.sum(P * net.target) - 4 * np.sum(P * P)
    dt = 1e-5
    tr = integrate(net, net.pack([W1, W2]), dt, rtol=1e-12, atol=1e-15, saveat=SaveAt(ts=[0.0, dt / 2, dt]),
                   grad_tol=0.0)
    F = np.sum(tr.ys[0] ** 2, axis=-1)
    fd = 2 * (F[1] - F[0]) / (dt / 2) - (F[2] - F[0]) / dt  # Richardson: O(dt^2)
    assert abs(fd - dF) < 1e-5 * abs(dF)
    common = 4 * np.sum(P * net.target) - (a**2 + b**2) / 2 - 2 * np.sum(P * P)  # d_1 = 2
    assert dF > common + ev.max() * (a + b)  # the paper's line, with lambda_max(C0): violated
    assert dF <= common + max(ev.max(), -ev.min()) * (a + b)  # with ||C0||_2: holds


def test_flow_norm_bound_is_tight_for_scalar_balanced():
    s = 2.0
    net = DeepLinearNetwork.canonical((1, 1, 1), [s])
    b = flow_norm_bound(net, [0.1, 0.1])
    assert np.isclose(b.F_max[0], 2 * s)  # c1/c2 = (1 + 1)(s + 0)
    tr = integrate(net, [0.1, 0.1], 20.0, rtol=1e-10)
    assert abs(np.sum(tr.y_final**2) - b.F_max[0]) < 1e-8


def test_safe_learning_rate_guarantees(rng):
    net = DeepLinearNetwork.canonical((4, 3, 2), [3.0, 1.0])
    th0 = net.random_params(rng, scale=1.0, size=6)
    safe = safe_learning_rate(net, th0)
    lr = float(safe.lr.min())
    n = 3000
    tr = gradient_descent(net, th0, lr, n_steps=n, saveat=SaveAt(ts=np.arange(n + 1) * lr), grad_tol=0.0)
    assert np.all(tr.status == Status.REACHED_T1)
    d = np.diff(tr.loss, axis=1)
    # monotone decrease, up to the round-off of evaluating L = |M|^2 / 2 (error ~ |M| eps |P|)
    assert np.all(d <= 1e-13 * tr.loss[:, :-1] + 1e-14 * np.sqrt(tr.loss[:, :-1]))
    W1, W2 = net.unpack(tr.ys)
    F = np.sum(W1**2, axis=(-2, -1)) + np.sum(W2**2, axis=(-2, -1))
    assert np.all(F.max(axis=1) <= safe.F_max)
    C = net.conserved(tr.ys).reshape(6, n + 1, 3, 3)
    drift = np.linalg.norm(C - C[:, :1], ord=2, axis=(-2, -1)).max(axis=1)
    assert np.all(drift <= safe.invariant_drift_bound * (1 + 1e-9) + 1e-14)
    # the reported drift is the same quantity in the Frobenius norm, relative to 1 + ||C0||
    c0 = net.conserved(th0)
    rel = np.max(np.linalg.norm(net.conserved(tr.ys) - c0[:, None], axis=-1), axis=1) / (1 + np.linalg.norm(c0, axis=-1))
    np.testing.assert_allclose(tr.invariant_drift, rel, rtol=1e-6, atol=1e-15)
    assert np.all(tr.invariant_drift > 0)
    assert tr.loss_final.max() < 1e-6


def test_bounds_not_available_beyond_h1():
    net = DeepLinearNetwork.canonical((3, 3, 2, 2), [2.0, 1.0])
    with pytest.raises(NotImplementedError, match="H = 1"):
        flow_norm_bound(net, np.zeros(net.n_params))
    with pytest.raises(NotImplementedError):
        safe_learning_rate(DoubleWell(), np.zeros(2))


# ---------------------------------------------------------------- input validation
def test_bad_inputs():
    net = DeepLinearNetwork.canonical((3, 2, 2), [2.0, 1.0])
    th = np.full(net.n_params, 0.1)
    with pytest.raises(ValueError, match="`method`"):
        integrate(net, th, 1.0, method="euler")
    with pytest.raises(ValueError, match="`theta0` must be finite"):
        integrate(net, np.full(net.n_params, np.nan), 1.0)
    with pytest.raises(ValueError, match="`theta0`"):
        integrate(net, np.zeros(3), 1.0)
    with pytest.raises(ValueError, match="`t1`"):
        integrate(net, th, -1.0)
    with pytest.raises(ValueError, match="`rtol`"):
        integrate(net, th, 1.0, rtol=0.0)
    with pytest.raises(ValueError, match="`dt0`"):
        integrate(net, th, 1.0, adaptive=False)
    with pytest.raises(TypeError, match="`model`"):
        integrate(object(), th, 1.0)
    with pytest.raises(ValueError, match="`backend`"):
        integrate(net, th, 1.0, backend="jax")
    with pytest.raises(ValueError, match="exactly one"):
        gradient_descent(net, th, 0.1)
    with pytest.raises(ValueError, match="`lr`"):
        gradient_descent(net, th, -0.1, n_steps=3)


def test_numba_can_be_disabled(monkeypatch):
    monkeypatch.setenv("FLOWGEOM_DISABLE_NUMBA", "1")
    assert not numba_available()
    net = DeepLinearNetwork.canonical((3, 2, 2), [2.0, 1.0])
    tr = integrate(net, np.full(net.n_params, 0.3), 2.0)
    assert tr.backend == "numpy"
    with pytest.raises(ValueError, match="numba"):
        integrate(net, np.full(net.n_params, 0.3), 2.0, backend="numba")


def test_suite_backend_env_is_respected():
    """When the suite runs with FLOWGEOM_DISABLE_NUMBA=1, "auto" must pick numpy."""
    net = DeepLinearNetwork.canonical((3, 2, 2), [2.0, 1.0])
    tr = integrate(net, np.full(net.n_params, 0.3), 2.0)
    expected = "numba" if numba_available() else "numpy"
    assert tr.backend == expected
    if os.environ.get("FLOWGEOM_DISABLE_NUMBA", "") not in ("", "0"):
        assert tr.backend == "numpy"


# ---------------------------------------------------------------- options, statuses, registry
def test_status_enum_carries_messages_and_kernels_import_codes():
    from flowgeom.flow import _controller, _status

    assert STATUS_MESSAGES == {s: s.message for s in Status}
    assert Status.MAX_STEPS.message.startswith("step budget")
    traj = integrate(DeepLinearNetwork.canonical((3, 2, 2), [2.0, 1.0]), np.zeros(10), 1.0,
                     saveat=SaveAt(ts=[0.0, 1.0]))
    assert traj.message(0) == Status(int(traj.status[0])).message
    if numba_available():
        from flowgeom.flow import _numba, _numba_dln

        for name in ("CONVERGED", "REACHED_T1", "DIVERGED", "MAX_STEPS", "FAILED", "RUNNING"):
            assert getattr(_numba, "_" + name) is getattr(_status, name)
        for name in ("SAFETY", "MIN_FACTOR", "MAX_FACTOR"):  # the compiled controller (_step_factor) lives there
            assert getattr(_numba_dln, name) is getattr(_controller, name)


def test_flow_options_validate_replace_attrs_and_overrides():
    import json

    from flowgeom._validate import InputError
    from flowgeom.flow import METHODS, FlowOptions

    o = FlowOptions(method="invariant", rtol=1e-8)
    assert o.method == "gauss-legendre" and o.rtol == 1e-8
    assert FlowOptions(method="stiff").method == "rosenbrock"
    o2 = o.replace(max_steps=10)
    assert o2.max_steps == 10 and o.max_steps == 100_000
    attrs = o.attrs()
    json.dumps(attrs)
    assert attrs["flow_method"] == "gauss-legendre" and attrs["flow_dt0"] == "none"
    for bad, match in [({"rtol": -1}, "`rtol`"), ({"max_steps": 0}, "`max_steps`"), ({"backend": "gpu"}, "`backend`"),
                       ({"adaptive": False}, "`dt0`"), ({"method": "rk4"}, "rosenbrock")]:
        with pytest.raises(InputError, match=match):
            FlowOptions(**bad)
    with pytest.raises(InputError, match="unknown flow option"):
        o.replace(rtoll=1e-3)
    assert METHODS["invariant"] is METHODS["gauss-legendre"] and METHODS["rosenbrock"].l_stable
    assert METHODS["gauss-legendre"].conserves_quadratic and not METHODS["dopri5"].implicit
    # options= and keyword overrides give the same run as the old keywords
    net = DeepLinearNetwork.canonical((3, 2, 2), [2.0, 1.0])
    y0 = net.random_params(np.random.default_rng(0), scale=0.5, size=3)
    sv = SaveAt(ts=[0.0, 5.0])
    a = integrate(net, y0, 5.0, rtol=1e-8, backend="numpy", saveat=sv)
    b = integrate(net, y0, 5.0, options=FlowOptions(rtol=1e-8, backend="numpy"), saveat=sv)
    c = integrate(net, y0, 5.0, options=FlowOptions(rtol=1e-3), rtol=1e-8, backend="numpy", saveat=sv)
    np.testing.assert_array_equal(a.y_final, b.y_final)
    np.testing.assert_array_equal(a.y_final, c.y_final)


@pytest.mark.skipif(not numba_available(), reason="numba not installed")
@pytest.mark.parametrize("widths, whitened", [((4, 3, 2), True), ((4, 3, 2), False), ((5, 4, 3, 2), True),
                                              ((5, 4, 3, 3, 2), False)])
def test_compiled_field_is_the_gradient_to_round_off(rng, widths, whitened):
    """The compiled vector field (both the H = 1 specialisation and the general chain) is -grad L."""
    from flowgeom.flow._numba_dln import _network_arrays, _rhs

    s = np.linspace(3.0, 1.0, widths[-1])
    if whitened:
        net = DeepLinearNetwork.canonical(widths, s)
    else:
        T = rng.standard_normal((widths[-1], widths[0]))
        R = rng.standard_normal((widths[0], widths[0])) + 3 * np.eye(widths[0])
        net = DeepLinearNetwork(widths, T, input_factor=R, offset=0.7)
    (is_h1, shp, off, T, Tf, R, has_R, c, pre_off, nbuf), _ = _network_arrays(net)
    pre, bufA, bufB, M = np.empty(pre_off[-1]), np.empty(nbuf), np.empty(nbuf), np.empty(T.size)
    for theta in net.random_params(rng, scale=0.8, size=5):
        out = np.empty(net.n_params)
        loss = _rhs(theta, out, is_h1, shp, off, T, Tf, R, has_R, c, pre, pre_off, bufA, bufB, M)
        g = net.grad(theta)
        scale = max(1.0, float(np.max(np.abs(g))))
        np.testing.assert_allclose(out, -g, rtol=0, atol=1e-13 * scale)
        assert loss == pytest.approx(float(net.loss(theta)), rel=1e-13)
