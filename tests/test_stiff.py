"""Tests of the stiff integrator (RODAS4/RODAS3, ``method="rosenbrock"``) and of ``method="auto"`` (issue 12).

Independent references:
- scipy.integrate.solve_ivp (DOP853 on a smooth problem; Radau with the exact Jacobian on the
  stiff raw-units data problem), at tight tolerances;
- the closed form exp(-A t) theta0 of a quadratic loss, and the vanishing of the stability
  function at infinity (L-stability);
- numpy.linalg.solve for the batched GMRES;
- the gradient recomputed by the model at the returned state for convergence claims.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from flowgeom.flow import SaveAt, Status, integrate
from flowgeom.flow._base import _Recorder
from flowgeom.flow._rosenbrock import gmres, rosenbrock
from flowgeom.models.deep_linear import DeepLinearNetwork
from flowgeom.problem import Problem

from _helpers import Quadratic


class Quartic:
    r"""Separable L = sum(x^2/2 - x^4/4): f = -x + x^3. |x_i| < 1 converge to 0; |x_i| > 1 blow up in finite time."""

    n_params = 2

    def loss(self, x):
        return np.sum(x**2 / 2 - x**4 / 4, axis=-1)

    def grad(self, x):
        return x - x**3

    def hvp(self, x, v):
        return (1 - 3 * x**2) * v

    def hessian(self, x):
        d = 1 - 3 * x**2
        return d[..., :, None] * np.eye(2)

    def conserved(self, x):
        return np.zeros(x.shape[:-1] + (0,))


def raw_model(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((3, 20)) * np.array([[1.0], [10.0], [300.0]])
    Y = rng.standard_normal((3, 20))
    return Problem.from_data(X, Y, (3, 3, 3)).network()


# ---------------------------------------------------------------- accuracy
@pytest.mark.parametrize("tableau, order", [("rodas4", 4), ("rodas3", 3)])
def test_rosenbrock_order_on_smooth_problem(tableau, order):
    """Fixed-step global error at T = 1 against DOP853 (rtol 1e-13): slope of log err vs log h = order."""
    net = DeepLinearNetwork.canonical((3, 2, 2), [2.0, 1.0])
    y0 = net.random_params(np.random.default_rng(3), scale=0.7, size=1)
    T = 1.0
    ref = solve_ivp(lambda t, y: -net.grad(y), (0, T), y0[0], method="DOP853", rtol=1e-13, atol=1e-14).y[:, -1]
    hs = T / np.array([16, 32, 64, 128])
    errs = []
    for h in hs:
        if tableau == "rodas4":  # the default, through the public entry point
            tr = integrate(net, y0, T, method="rosenbrock", adaptive=False, dt0=h, grad_tol=0.0,
                           saveat=SaveAt(ts=[0.0, T]))
            assert tr.status[0] == Status.REACHED_T1
            y1 = tr.y_final[0]
        else:
            rec = _Recorder(net, y0, np.array([0.0, T]), False)
            rosenbrock(rec, y0, 0.0, T, rtol=1e-6, atol=1e-9, grad_tol=0.0, max_steps=10_000, max_norm=1e8,
                       dt0=h, adaptive=False, tableau=tableau)
            y1 = rec.y_final[0]
        errs.append(np.linalg.norm(y1 - ref))
    slope = np.polyfit(np.log(hs), np.log(errs), 1)[0]
    assert order - 0.3 < slope < order + 0.5, (slope, errs)


def test_rosenbrock_l_stable_on_very_stiff_quadratic():
    """One step h = 1 on eigenvalues up to 1e9: stiff modes damped (R(inf) = 0), slow mode accurate to O(h^3)."""
    lam = np.array([1e-1, 1e3, 1e9])
    model = Quadratic(np.diag(lam))
    y0 = np.ones(3)
    tr = integrate(model, y0, 1.0, method="rosenbrock", adaptive=False, dt0=1.0, grad_tol=0.0,
                   saveat=SaveAt(ts=[0.0, 1.0]))
    y1 = tr.y_final[0]
    assert abs(y1[2]) < 1e-8 and abs(y1[1]) < 1e-2
    assert abs(y1[0] - np.exp(-0.1)) < 1e-3


def test_rosenbrock_adaptive_matches_closed_form_with_saves():
    """Adaptive run on an SPD quadratic with spread 1e6: dense output at the save times vs exp(-At) theta0."""
    rng = np.random.default_rng(5)
    Q, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    lam = np.geomspace(1.0, 1e6, 6)
    A = (Q * lam) @ Q.T
    model = Quadratic(A)
    y0 = rng.standard_normal((3, 6))
    ts = np.array([0.0, 1e-4, 0.01, 0.3, 1.0, 3.0])
    tr = integrate(model, y0, 3.0, method="rosenbrock", rtol=1e-8, atol=1e-12, grad_tol=0.0, saveat=SaveAt(ts=ts))
    assert np.all(tr.status == Status.REACHED_T1)
    for j, t in enumerate(ts):
        exact = y0 @ ((Q * np.exp(-lam * t)) @ Q.T)
        assert np.max(np.abs(tr.ys[:, j] - exact)) < 1e-6, t
    assert tr.n_steps.max() < 10_000  # the explicit stability limit alone would need ~1e6 steps


@pytest.mark.parametrize("t_end", [0.1, pytest.param(2.0, marks=pytest.mark.slow)])
def test_rosenbrock_agrees_with_tight_radau_on_raw_data(t_end):
    """Raw-units data (Hessian eigenvalues to ~1e6): states at save times vs Radau rtol 1e-10 with the exact Jacobian."""
    model = raw_model()
    y0 = model.random_params(np.random.default_rng(7), scale=0.3, size=1)
    ts = np.array([0.0, 1e-3, 0.01, 0.05, 0.5, 2.0])
    ts = ts[ts <= t_end]
    tr = integrate(model, y0, ts[-1], method="rosenbrock", rtol=1e-7, atol=1e-10, grad_tol=0.0,
                   saveat=SaveAt(ts=ts))
    assert np.all(tr.status == Status.REACHED_T1)
    for i in range(y0.shape[0]):
        ref = solve_ivp(lambda t, y: -model.grad(y), (0, ts[-1]), y0[i], method="Radau", rtol=1e-10, atol=1e-12,
                        jac=lambda t, y: -model.hessian(y), t_eval=ts)
        assert ref.success
        err = np.max(np.abs(tr.ys[i] - ref.y.T) / (1 + np.abs(ref.y.T)))
        assert err < 2e-5, err


def test_rosenbrock_reaches_grad_tol_on_raw_data_where_dopri5_cannot():
    model = raw_model()
    y0 = model.random_params(np.random.default_rng(11), scale=1.0, size=4)
    sv = SaveAt(ts=[0.0, 1e4], states=False)
    tr = integrate(model, y0, 1e4, method="rosenbrock", grad_tol=1e-8, saveat=sv)
    assert np.all(tr.status == Status.CONVERGED)
    assert np.all(np.linalg.norm(model.grad(tr.y_final), axis=1) <= 1e-8)
    assert tr.n_steps.max() < 5000
    dp = integrate(model, y0[:1], 1e4, method="dopri5", grad_tol=1e-8, max_steps=5000, saveat=sv)
    assert dp.status[0] == Status.MAX_STEPS and dp.t_final[0] < 1.0


def test_krylov_solver_matches_dense():
    model = raw_model()
    y0 = model.random_params(np.random.default_rng(2), scale=0.5, size=2)
    sv = SaveAt(ts=[0.0, 0.001, 0.005])
    a = integrate(model, y0, 0.005, method="rosenbrock", solver="dense", saveat=sv)
    b = integrate(model, y0, 0.005, method="rosenbrock", solver="krylov", saveat=sv)
    assert np.all(a.status == b.status)
    assert np.max(np.abs(a.ys - b.ys)) < 1e-6


def test_batched_gmres_against_numpy_solve():
    rng = np.random.default_rng(4)
    m, n = 5, 12
    M = rng.standard_normal((m, n, n)) + 4 * np.eye(n)
    b = rng.standard_normal((m, n))
    x, ok = gmres(lambda v: np.einsum("mab,mb->ma", M, v), b, rtol=1e-12, maxiter=n)
    assert ok.all()
    np.testing.assert_allclose(x, np.linalg.solve(M, b[..., None])[..., 0], rtol=1e-9, atol=1e-10)


# ---------------------------------------------------------------- statuses
def test_statuses_per_member_do_not_stop_the_batch():
    model = Quartic()
    y0 = np.array([[0.5, -0.3], [1.5, 0.1], [0.0, 0.0], [0.9, 0.2]])
    tr = integrate(model, y0, 50.0, method="rosenbrock", grad_tol=1e-9, max_norm=1e3,
                   saveat=SaveAt(ts=[0.0, 1.0, 50.0]))
    assert tr.status.tolist() == [Status.CONVERGED, Status.DIVERGED, Status.CONVERGED, Status.CONVERGED]
    assert np.all(np.isfinite(tr.y_final[1])) and np.linalg.norm(tr.y_final[1]) <= 1e3
    assert np.all(np.isnan(tr.ys[1, 2]))  # a diverged member has NaN after its end
    # converged members: check against the closed form x(t) = x0 / sqrt(x0^2 + (1 - x0^2) e^{2t})
    x0 = y0[0]
    exact = x0 / np.sqrt(x0**2 + (1 - x0**2) * np.exp(2.0))
    np.testing.assert_allclose(tr.ys[0, 1], exact, rtol=1e-4)
    small = integrate(model, y0, 50.0, method="rosenbrock", grad_tol=1e-9, max_steps=5,
                      saveat=SaveAt(ts=[0.0, 50.0]))
    assert small.status.tolist() == [Status.MAX_STEPS, Status.MAX_STEPS, Status.CONVERGED, Status.MAX_STEPS]
    assert small.status[2] == Status.CONVERGED and small.t_final[2] == 0.0


# ---------------------------------------------------------------- automatic choice
def test_auto_picks_rosenbrock_on_stiff_data_and_dopri5_on_canonical():
    model = raw_model()
    y0 = model.random_params(np.random.default_rng(1), scale=1.0, size=4)
    tr = integrate(model, y0, 1e4, method="auto", grad_tol=1e-8, saveat=SaveAt(ts=[0.0, 1e4], states=False))
    assert tr.method == "rosenbrock" and tr.info["requested"] == "auto" and tr.info["stiff"]
    assert np.all(tr.status == Status.CONVERGED)
    # the estimate is the largest Hessian eigenvalue magnitude (median over the ensemble)
    ev = np.abs(np.linalg.eigvalsh(model.hessian(y0))).max(axis=1)
    assert tr.info["lambda_max"] == pytest.approx(np.median(ev), rel=1e-10)

    net = DeepLinearNetwork.canonical((3, 2, 2), [2.0, 1.0])
    y1 = net.random_params(np.random.default_rng(0), scale=0.5, size=4)
    tr2 = integrate(net, y1, 40.0, method="auto", saveat=SaveAt(ts=[0.0, 40.0]))
    assert tr2.method == "dopri5" and not tr2.info["stiff"]
    ref = integrate(net, y1, 40.0, method="dopri5", saveat=SaveAt(ts=[0.0, 40.0]))
    np.testing.assert_array_equal(tr2.y_final, ref.y_final)


# ---------------------------------------------------------------- invariant scheme on stiff data
def test_gauss_legendre_usable_on_stiff_raw_data():
    """Gauss-Legendre on raw data (Hessian ~1e7 at t0): Newton (Z0 = 0, exact Hessian refreshed when the
    iteration is slow) does not limit the step; the state agrees with the independent Rosenbrock run
    and the Lemma 1 invariants stay conserved."""
    model = raw_model()
    y0 = model.random_params(np.random.default_rng(1), scale=1.0, size=2)
    sv = SaveAt(ts=[0.0, 0.05])
    gl = integrate(model, y0, 0.05, method="invariant", grad_tol=0.0, max_steps=150, saveat=sv)
    assert np.all(gl.status == Status.REACHED_T1), gl.t_final
    assert np.all(gl.invariant_drift < 1e-11)
    ref = integrate(model, y0, 0.05, method="rosenbrock", grad_tol=0.0, rtol=1e-7, atol=1e-10, saveat=sv)
    assert np.max(np.abs(gl.y_final - ref.y_final)) < 1e-4
