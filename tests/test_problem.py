"""Problem: assumptions, canonical reduction (Section 2.1) and which gradient flow is simulated.

The reduction's claims checked here, independently of the implementation's formulas:
- the data loss equals the canonical loss plus a constant (computed from the raw data);
- gradients correspond through the chain rule of the change of variables;
- the gradient *flows* correspond only when X X^T = I (solve_ivp, rtol 1e-12, both sides).
"""

import warnings

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from flowgeom import AssumptionError, DeepLinearNetwork, Problem


def _data(rng, dx=5, dy=3, m=12, whiten=False):
    X = rng.standard_normal((dx, m))
    if whiten:
        # X X^T = I: orthonormal rows
        Q, _ = np.linalg.qr(rng.standard_normal((m, dx)))
        X = Q.T
    Y = rng.standard_normal((dy, m))
    return X, Y


def _data_loss(W, X, Y):
    P = W[0]
    for Wj in W[1:]:
        P = Wj @ P
    return 0.5 * np.linalg.norm(Y - P @ X) ** 2


@pytest.mark.parametrize("widths", [(5, 4, 3), (5, 5, 4, 3), (5, 4, 4, 3, 3)])
def test_loss_and_gradient_agree_between_coordinates(rng, widths):
    X, Y = _data(rng)
    prob = Problem.from_data(X, Y, widths)
    assert not prob.whitened
    orig = prob.network("original")
    with pytest.warns(UserWarning, match="NOT the data's gradient flow"):
        canon = prob.network("canonical")
    theta = rng.standard_normal(orig.n_params)
    W = orig.unpack(theta)
    Wbar = prob.to_canonical(W)
    # loss: data loss (independent formula) = canonical loss + 1/2 ||Y V_X^2||^2
    L_data = _data_loss(W, X, Y)
    assert orig.loss(theta) == pytest.approx(L_data, rel=1e-12)
    # the canonical network carries the data's constant offset: its loss is the data loss
    assert canon.loss(canon.pack(Wbar)) == pytest.approx(L_data, rel=1e-10)
    assert canon.offset == pytest.approx(prob.loss_offset)
    # gradient: dL/dW_1 = dL/dWbar_1 K^T ; dL/dW_{H+1} = U_Y dL/dWbar_{H+1}; middle layers equal
    g = orig.unpack(orig.grad(theta))
    gbar = canon.unpack(canon.grad(canon.pack(Wbar)))
    np.testing.assert_allclose(g[0], gbar[0] @ prob.K.T, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(g[-1], prob.U_Y @ gbar[-1], rtol=1e-9, atol=1e-9)
    for j in range(1, len(W) - 1):
        np.testing.assert_allclose(g[j], gbar[j], rtol=1e-9, atol=1e-9)
    # maps are inverse to each other
    for a, b in zip(prob.from_canonical(Wbar), W):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def _flow(net, theta0, t1):
    sol = solve_ivp(lambda t, y: -net.grad(y), (0, t1), theta0, method="DOP853", rtol=1e-12, atol=1e-13)
    assert sol.success
    return sol.y[:, -1]


@pytest.mark.parametrize("whiten", [True, False])
def test_gradient_flow_maps_to_canonical_flow_only_when_whitened(rng, whiten):
    """Section 2.1 implies the flows correspond; that holds iff X X^T = I (measured here)."""
    X, Y = _data(rng, whiten=whiten)
    prob = Problem.from_data(X, Y, (5, 4, 3))
    assert prob.whitened is whiten
    orig = prob.network("original")
    canon = DeepLinearNetwork.canonical(prob.widths, prob.singular_values)
    theta0 = 0.3 * rng.standard_normal(orig.n_params)
    t1 = 2.0
    end_orig = prob.to_canonical(orig.unpack(_flow(orig, theta0, t1)))
    end_canon = canon.unpack(_flow(canon, canon.pack(prob.to_canonical(orig.unpack(theta0))), t1))
    gap = max(np.abs(a - b).max() for a, b in zip(end_orig, end_canon))
    if whiten:
        assert gap < 1e-8
        # auto = canonical, plus the data's constant (so the model's loss is the data loss)
        assert prob.network().loss(theta0) == pytest.approx(canon.loss(theta0) + prob.loss_offset)
    else:
        assert gap > 1e-2
        # the auto network is the data's own flow
        assert prob.network().input_factor is not None


def test_metric_explains_the_non_whitened_velocity(rng):
    """d Wbar_1/dt = -grad_{Wbar_1} L  V_Y^T S_X^2 V_Y for the data flow, exactly."""
    X, Y = _data(rng)
    prob = Problem.from_data(X, Y, (5, 4, 3))
    orig = prob.network("original")
    canon = DeepLinearNetwork.canonical(prob.widths, prob.singular_values)
    theta = rng.standard_normal(orig.n_params)
    W = orig.unpack(theta)
    vel = orig.unpack(-orig.grad(theta))
    vel_bar_1 = vel[0] @ prob.K  # pushforward of the velocity
    gbar = canon.unpack(canon.grad(canon.pack(prob.to_canonical(W))))
    metric = prob.V_Y.T @ np.diag(prob.S_X**2) @ prob.V_Y
    np.testing.assert_allclose(vel_bar_1, -gbar[0] @ metric, rtol=1e-9, atol=1e-9)


def test_singular_values_are_those_of_reduced_target(rng):
    X, Y = _data(rng, m=20)
    prob = Problem.from_data(X, Y, (5, 4, 3))
    # independent route: Ybar = Y V_X^1 with V_X^1 from the eigenvectors of X^T X
    U, S, Vt = np.linalg.svd(X, full_matrices=False)
    expected = np.linalg.svd(Y @ Vt.T, compute_uv=False)
    np.testing.assert_allclose(prob.singular_values, expected, rtol=1e-12)
    np.testing.assert_allclose(prob.Sigma[:, :3], np.diag(expected), rtol=1e-12)
    # offset = 1/2 ||Y (I - V1 V1^T)||^2
    proj = Y - (Y @ Vt.T) @ Vt
    assert prob.loss_offset == pytest.approx(0.5 * np.linalg.norm(proj) ** 2, rel=1e-9, abs=1e-12)


def test_spectrum_problem_and_default():
    p = Problem.default()
    assert p.widths == (5, 4, 3) and p.depth_H == 1 and p.whitened
    np.testing.assert_array_equal(p.singular_values, [3.0, 2.0, 1.0])
    q = Problem.from_spectrum([1.0, 3.0, 2.0], (5, 4, 3))
    np.testing.assert_array_equal(q.singular_values, [3.0, 2.0, 1.0])
    assert p.attrs() == {"widths": [5, 4, 3], "singular_values": [3.0, 2.0, 1.0], "depth_H": 1, "whitened": True}


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda X, Y: Problem.from_data(X, Y[:, :5], (5, 4, 3)), ValueError, "same number of samples"),
        (lambda X, Y: Problem.from_data(X[None], Y, (5, 4, 3)), ValueError, "`X` must be 2-D"),
        (lambda X, Y: Problem.from_data(X[:, :0], Y[:, :0], (5, 4, 3)), ValueError, "`X` is empty"),
        (lambda X, Y: Problem.from_data(np.where(X > 1, np.nan, X), Y, (5, 4, 3)), ValueError, "`X` contains NaN"),
        (lambda X, Y: Problem.from_data(X, np.where(Y > 1, np.inf, Y), (5, 4, 3)), ValueError, "`Y` contains NaN or inf"),
        (lambda X, Y: Problem.from_data(X, Y, (6, 4, 3)), ValueError, "must start with d_x = X.shape\\[0\\] = 5"),
        (lambda X, Y: Problem.from_data(X, Y, (5, 6, 3)), AssumptionError, "Assumption 1.*hidden width 6 > d_x = 5"),
        (lambda X, Y: Problem.from_data(X, Y, (5, 2, 3)), AssumptionError, "Assumption 1.*hidden width 2 < d_y = 3"),
        (lambda X, Y: Problem.from_data(X[:, :4], Y[:, :4], (5, 4, 3)), AssumptionError, "m = 4 samples < d_x = 5"),
        (lambda X, Y: Problem.from_data(np.vstack([X[:4], X[:1]]), Y, (5, 4, 3)), AssumptionError, "`X` must have full row rank"),
        (lambda X, Y: Problem.from_data(X, np.vstack([Y[:2], Y[:1]]), (5, 4, 3)), AssumptionError, "`Y` must have full row rank"),
        (lambda X, Y: Problem.from_spectrum([3.0, 2.0, 2.0], (5, 4, 3)), AssumptionError, "Assumption 3.*s\\[1\\] = 2 ~ s\\[2\\] = 2"),
        (lambda X, Y: Problem.from_spectrum([3.0, 2.0, -1.0], (5, 4, 3)), AssumptionError, "must be positive"),
        (lambda X, Y: Problem.from_spectrum([3.0, np.nan, 1.0], (5, 4, 3)), ValueError, "NaN or inf"),
        (lambda X, Y: Problem.from_spectrum([3.0, 2.0], (5, 4, 3)), ValueError, "length d_y = 3"),
        (lambda X, Y: Problem.from_spectrum([3.0, 2.0, 1.0], (5, 4)), ValueError, "at least 3 widths"),
        (lambda X, Y: Problem.from_spectrum([3.0, 2.0, 1.0], (5, 4, 3), on_violation="ignore"), ValueError, "`on_violation`"),
        (lambda X, Y: Problem.default().network("weird"), ValueError, "`coordinates`"),
    ],
)
def test_bad_input_is_named(rng, call, exc, match):
    X, Y = _data(rng, m=12)
    with pytest.raises(exc, match=match):
        call(X, Y)


def test_assumption_error_says_which():
    with pytest.raises(AssumptionError) as info:
        Problem.from_spectrum([3.0, 2.0, 2.0], (5, 4, 3))
    assert info.value.assumption == 3


def test_violations_can_be_accepted_with_a_warning():
    with pytest.warns(UserWarning, match="Assumption 3"):
        p = Problem.from_spectrum([2.0, 2.0], (3, 2, 2), on_violation="warn")
    assert len(p.violations) == 1
    with pytest.warns(UserWarning, match="Assumption 1"):
        p = Problem.from_spectrum([2.0, 1.0], (3, 5, 2), on_violation="warn")
    # the flow is still well defined on such problems
    net = p.network()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isfinite(net.loss(np.ones(net.n_params)))


def test_import_does_not_load_heavy_optional_modules():
    """`import flowgeom` must not load matplotlib (only flowgeom.plot may) nor the optional JAX."""
    import subprocess
    import sys

    code = "import sys, flowgeom; print(sorted(m for m in ('matplotlib', 'jax') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_canonical_end_to_end_matches_mapped_weights(rng):
    X, Y = _data(rng)
    prob = Problem.from_data(X, Y, (5, 4, 4, 3))
    net = prob.network("original")
    theta = rng.standard_normal(net.n_params)
    Wbar = prob.to_canonical(net.unpack(theta))
    expected = Wbar[2] @ Wbar[1] @ Wbar[0]
    np.testing.assert_allclose(prob.canonical_end_to_end(net.end_to_end(theta)), expected, rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="`P` must have shape"):
        prob.canonical_end_to_end(np.zeros((5, 3)))
