"""The Gauss--Newton preconditioner of the stiff path and RODAS4's stiff-safe dense output (issue 12).

Independent references:
- the residual-map Jacobian J built column by column by complex step, and numpy.linalg.solve of
  I + eta J^T J, for ``DeepLinearNetwork.gauss_newton_solver``;
- the closed form exp(-A t) theta0 of a quadratic loss for the dense output inside one large step;
- scipy ``solve_ivp(method="Radau")`` with the exact Hessian, at tight tolerances, for the
  preconditioned Krylov Rosenbrock (forced with ``solver="krylov"``) on raw-units data;
- the monotone decrease of the loss along a gradient flow, at the save times.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from flowgeom.flow import SaveAt, Status, integrate
from flowgeom.models.deep_linear import DeepLinearNetwork
from flowgeom.problem import Problem

from _helpers import Quadratic


def _jacobian_complex_step(net, theta):
    """d(P R)/d theta, shape (d_y d_x, n), by complex step (exact to round-off)."""
    n = net.n_params
    cols = []
    for k in range(n):
        z = theta.astype(complex)
        z[k] += 1e-30j
        P = net.end_to_end(z)
        PR = P if net.input_factor is None else P @ net.input_factor
        cols.append(PR.imag.ravel() / 1e-30)
    return np.array(cols).T


@pytest.mark.parametrize("widths", [(5, 4, 3), (4, 5, 3), (6, 3, 4, 2), (4, 5, 3, 3, 2)])
@pytest.mark.parametrize("raw", [False, True])
def test_gauss_newton_solver_against_dense_solve(widths, raw):
    rng = np.random.default_rng(11)
    dx, dy = widths[0], widths[-1]
    R = rng.standard_normal((dx, dx)) * np.geomspace(1.0, 30.0, dx) if raw else None
    net = DeepLinearNetwork(widths, rng.standard_normal((dy, dx)), input_factor=R)
    theta = net.random_params(rng, 1.0, 3)
    eta = np.array([1e-3, 0.3, 10.0])
    solve, ok = net.gauss_newton_solver(theta, eta)
    assert ok.all()
    v = rng.standard_normal(theta.shape)
    x = solve(v)
    for i in range(3):
        J = _jacobian_complex_step(net, theta[i])
        A = np.eye(net.n_params) + eta[i] * J.T @ J
        ref = np.linalg.solve(A, v[i])
        assert np.linalg.norm(x[i] - ref) <= 1e-12 * np.linalg.cond(A) * np.linalg.norm(ref)


def test_gauss_newton_solver_flags_bad_rows_and_keeps_the_batch():
    net = DeepLinearNetwork.canonical((4, 3, 2), [2.0, 1.0])
    theta = net.random_params(np.random.default_rng(0), 1.0, 3)
    theta[1, 0] = np.nan
    solve, ok = net.gauss_newton_solver(theta, np.array([0.1, 0.1, -1.0]))
    assert ok.tolist() == [True, False, False]
    v = np.ones_like(theta)
    x = solve(v)
    assert np.all(np.isfinite(x[0])) and np.array_equal(x[1:], v[1:])  # identity on bad rows


def test_dense_output_inside_a_stiff_step_near_the_slow_manifold():
    """Save points inside one step h = 1, eigenvalues up to 1e8, stiff modes 1e-6 off equilibrium.

    The stage-based output stays O(1e-6) in the stiff modes and O(h^3) accurate in the slow one.
    A cubic Hermite interpolant would multiply the offset by h * lambda through its h f_0 term
    (about 1e-6 * 1e8 * theta (1 - theta)^2 ~ 10 here).
    """
    lam = np.array([0.1, 1e4, 1e8])
    model = Quadratic(np.diag(lam))
    ts = np.array([0.0, 0.25, 0.5, 0.75, 1.0])
    y0 = np.array([1.0, 1e-6, 1e-6])
    tr = integrate(model, y0, 1.0, method="rosenbrock", adaptive=False, dt0=1.0, grad_tol=0.0,
                   saveat=SaveAt(ts=ts))
    ys = tr.ys[0]
    assert np.all(np.abs(ys[:, 1:]) <= 2e-6), ys
    assert np.max(np.abs(ys[:, 0] - np.exp(-0.1 * ts))) < 1e-3


def _raw_data_model(widths=(10, 4, 3), seed=3):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((widths[0], 80)) * np.geomspace(1.0, 1e3, widths[0])[:, None]
    Y = rng.standard_normal((widths[-1], 80))
    return Problem.from_data(X, Y, widths).network()


def test_preconditioned_krylov_rosenbrock_agrees_with_tight_radau():
    model = _raw_data_model()
    y0 = model.random_params(np.random.default_rng(4), scale=0.3, size=2)
    ts = [0.0, 1e-4, 1e-3, 1e-2]
    tr = integrate(model, y0, 1e-2, method="rosenbrock", solver="krylov", rtol=1e-8, atol=1e-10, grad_tol=0.0,
                   saveat=SaveAt(ts=ts))
    assert np.all(tr.status == Status.REACHED_T1)
    for i in range(2):
        ref = solve_ivp(lambda t, y: -model.grad(y), (0.0, 1e-2), y0[i], method="Radau", t_eval=ts,
                        rtol=1e-10, atol=1e-12, jac=lambda t, y: -model.hessian(y))
        assert ref.success
        err = np.max(np.abs(tr.ys[i] - ref.y.T), axis=1)
        assert np.all(err <= 1e-5 * (1.0 + np.max(np.abs(ref.y.T), axis=1))), err


def test_loss_at_save_times_never_rises_on_stiff_raw_data():
    """A gradient flow decreases L; the saved losses (dense output) must too, up to round-off."""
    model = _raw_data_model()
    y0 = model.random_params(np.random.default_rng(6), scale=1.0, size=2)
    tr = integrate(model, y0, 20.0, method="rosenbrock", grad_tol=0.0, max_steps=3000,
                   saveat=SaveAt(ts=np.linspace(0.0, 20.0, 81), states=False))
    assert np.all(tr.status == Status.REACHED_T1)
    d = np.diff(tr.loss, axis=1)
    assert np.all(d <= 1e-8 * (1.0 + np.abs(tr.loss[:, 1:]))), d.max()


@pytest.mark.slow
def test_basins_limits_on_raw_data_agree_with_a_tight_radau_reference():
    """sample_basins (integrator auto -> Rosenbrock on raw data) classifies each sample as a Radau
    solve at rtol 1e-10 with the exact Jacobian, run until ||grad L|| <= 1e-9, does.

    With the exact-flow certification on: its re-runs use the stiff method the chunk used (DOPRI5 at
    rtol 1e-12 did not finish on this flow).
    """
    from flowgeom._resolve import as_atlas
    from flowgeom.basins._sample import sample_basins
    from scipy.integrate import Radau

    rng = np.random.default_rng(21)
    X = rng.standard_normal((3, 20)) * np.array([[1.0], [10.0], [300.0]])
    Y = rng.standard_normal((3, 20))
    pb = Problem.from_data(X, Y, (3, 3, 3))
    ds = sample_basins(pb, 6, seed=3, scheduler="synchronous", progress=False, keep_states=True)
    assert ds.attrs["method"] in ("auto", "rosenbrock")
    model = pb.network()
    atlas = as_atlas(pb)
    keys = []
    for th0 in ds.theta0.values:
        s = Radau(lambda t, y: -model.grad(y), 0.0, th0, 1e5, rtol=1e-10, atol=1e-12,
                  jac=lambda t, y: -model.hessian(y))
        while s.status == "running" and np.linalg.norm(model.grad(s.y)) > 1e-9:
            s.step()
        assert np.linalg.norm(model.grad(s.y)) <= 1e-9
        keys.append(int(atlas.locate(s.y[None], model.loss(s.y[None]))[0]))
    labels = {int(k): lab for k, lab in zip(range(ds.sizes["stratum"]), ds.label.values)}
    got = [labels.get(int(k)) if k >= 0 else None for k in ds.limit.values]
    want = [atlas.get(k).label if k >= 0 else None for k in keys]
    assert got == want, (got, want)


# ---------------------------------------------------------------- the exact structured solve (H = 1)
@pytest.mark.parametrize("widths", [(5, 4, 3), (4, 5, 3), (6, 2, 4), (4, 4, 4), (3, 5, 2),
                                    (5, 4, 3, 2), (6, 3, 4, 2), (4, 5, 3, 3, 2)])
@pytest.mark.parametrize("raw", [False, True])
def test_shifted_hessian_solver_against_dense_solve(widths, raw):
    """(I + eta Hess) x = v solved by the Schur complement equals numpy.linalg.solve with the dense Hessian
    assembled column by column from complex-step derivatives of the gradient (independent of the HVP)."""
    rng = np.random.default_rng(12)
    dx, dy = widths[0], widths[-1]
    R = rng.standard_normal((dx, dx)) * np.geomspace(1.0, 30.0, dx) if raw else None
    net = DeepLinearNetwork(widths, rng.standard_normal((dy, dx)), input_factor=R)
    theta = net.random_params(rng, 1.0, 3)
    eta = np.array([1e-3, 0.3, 10.0])
    solve, ok = net.shifted_hessian_solver(theta, eta)
    assert ok.all()
    v = rng.standard_normal(theta.shape)
    x = solve(v)
    n = net.n_params
    for i in range(3):
        Hs = np.array([(net.grad(theta[i] + 1e-30j * np.eye(n)[k])).imag / 1e-30 for k in range(n)])
        A = np.eye(n) + eta[i] * Hs
        ref = np.linalg.solve(A, v[i])
        assert np.linalg.norm(x[i] - ref) <= 1e-11 * np.linalg.cond(A) * np.linalg.norm(ref)


@pytest.mark.parametrize("widths", [(4, 3, 2), (4, 3, 3, 2)])
def test_shifted_hessian_solver_flags_bad_rows_and_declines_large_heads(widths):
    from flowgeom.models import _dln_shifted

    big = DeepLinearNetwork.canonical((4, 25, 25, 2), [2.0, 1.0])  # head 675 > DEEP_MAX_HEAD
    assert big.n_params - 4 * 25 > _dln_shifted.DEEP_MAX_HEAD
    solve, ok = big.shifted_hessian_solver(np.zeros((2, big.n_params)), np.ones(2))
    assert solve is None and not ok.any()
    net = DeepLinearNetwork.canonical(widths, [2.0, 1.0])
    theta = net.random_params(np.random.default_rng(0), 1.0, 3)
    theta[1, 0] = np.nan
    solve, ok = net.shifted_hessian_solver(theta, np.array([0.1, 0.1, -1.0]))
    assert ok.tolist() == [True, False, False]
    v = np.ones_like(theta)
    x = solve(v)
    assert np.all(np.isfinite(x[0])) and np.array_equal(x[1:], v[1:])


def test_structured_rosenbrock_is_the_default_beyond_dense_sizes_and_matches_krylov_and_radau():
    """n = 208 > DENSE_MAX_PARAMS on raw-units data: "auto" runs the structured solve; it takes the
    same trajectory as the preconditioned Krylov solve and as a tight Radau reference."""
    rng = np.random.default_rng(5)
    X = rng.standard_normal((22, 60)) * np.geomspace(0.5, 40.0, 22)[:, None]
    Y = rng.standard_normal((4, 60))
    model = Problem.from_data(X, Y, (22, 8, 4)).network()
    assert model.n_params > 200
    y0 = model.random_params(np.random.default_rng(4), scale=0.3, size=2)
    ts = [0.0, 1e-3, 1e-2, 0.05]
    kw = dict(method="rosenbrock", rtol=1e-8, atol=1e-10, grad_tol=0.0, saveat=SaveAt(ts=ts))
    auto = integrate(model, y0, 0.05, **kw)
    structured = integrate(model, y0, 0.05, solver="structured", **kw)
    np.testing.assert_array_equal(auto.ys, structured.ys)
    assert np.all(structured.status == Status.REACHED_T1)
    kw["saveat"] = SaveAt(ts=ts[:2])
    krylov = integrate(model, y0, 1e-3, solver="krylov", **kw)  # 5x slower: a shorter run
    assert np.max(np.abs(structured.ys[:, :2] - krylov.ys)) <= 1e-6 * (1.0 + np.max(np.abs(krylov.ys)))
    ref = solve_ivp(lambda t, y: -model.grad(y), (0.0, 0.05), y0[0], method="Radau", t_eval=ts,
                    rtol=1e-10, atol=1e-12, jac=lambda t, y: -model.hessian(y))
    assert ref.success
    err = np.max(np.abs(structured.ys[0] - ref.y.T), axis=1)
    assert np.all(err <= 1e-5 * (1.0 + np.max(np.abs(ref.y.T), axis=1))), err


def test_structured_solver_is_refused_where_the_model_has_none():
    from flowgeom._validate import InputError

    big = DeepLinearNetwork.canonical((4, 25, 25, 2), [2.0, 1.0])
    with pytest.raises(InputError, match="structured"):
        integrate(big, np.zeros(big.n_params), 1.0, method="rosenbrock", solver="structured")
    with pytest.raises(InputError, match="structured"):
        integrate(Quadratic(np.eye(3)), np.zeros(3), 1.0, method="rosenbrock", solver="structured")


def test_deep_structured_solve_is_the_same_in_row_blocks(monkeypatch):
    """The Hessian columns are formed in row blocks bounded in memory; the blocks change nothing."""
    from flowgeom.models import _dln_shifted

    rng = np.random.default_rng(2)
    net = DeepLinearNetwork((5, 4, 3, 2), rng.standard_normal((2, 5)),
                            input_factor=rng.standard_normal((5, 5)) * np.geomspace(1.0, 30.0, 5))
    theta = net.random_params(rng, 1.0, 7)
    eta = np.full(7, 0.3)
    v = rng.standard_normal(theta.shape)
    whole = net.shifted_hessian_solver(theta, eta)[0](v)
    n_head = net.n_params - 4 * 5
    monkeypatch.setattr(_dln_shifted, "DEEP_HVP_BYTES", 2 * 8 * n_head * net.n_params)  # 2 rows a block
    np.testing.assert_array_equal(net.shifted_hessian_solver(theta, eta)[0](v), whole)
