"""DeepLinearNetwork: derivatives against finite differences and complex step, batching, invariants.

References: central finite differences (O(h^2)), complex-step differentiation (Squire & Trapp
1998, exact to round-off for the polynomial loss), and scipy.integrate.solve_ivp at rtol 1e-12
for the invariance of C_j along the flow (Lemma 1 of the paper).
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.integrate import solve_ivp

from flowgeom import DeepLinearNetwork, Model


@st.composite
def networks(draw):
    """Random shapes with H = 1, 2, 3, random target and (half the time) a random input factor."""
    H = draw(st.integers(1, 3))
    widths = tuple(draw(st.lists(st.integers(1, 4), min_size=H + 2, max_size=H + 2)))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    T = rng.standard_normal((widths[-1], widths[0]))
    R = rng.standard_normal((widths[0], widths[0])) if draw(st.booleans()) else None
    net = DeepLinearNetwork(widths, T, input_factor=R, offset=float(rng.uniform(0, 1)))
    theta = rng.standard_normal(net.n_params)
    v = rng.standard_normal(net.n_params)
    return net, theta, v


@settings(max_examples=40, deadline=None)
@given(networks())
def test_grad_matches_central_differences(case):
    net, theta, _ = case
    h = 1e-6
    E = np.eye(net.n_params)
    fd = (net.loss(theta + h * E) - net.loss(theta - h * E)) / (2 * h)
    g = net.grad(theta)
    scale = 1 + np.abs(g).max()
    np.testing.assert_allclose(g, fd, atol=1e-6 * scale * (1 + np.abs(theta).max()) ** 4)


@settings(max_examples=40, deadline=None)
@given(networks())
def test_grad_matches_complex_step(case):
    net, theta, _ = case
    h = 1e-30
    E = np.eye(net.n_params)
    cs = net.loss(theta + 1j * h * E).imag / h
    np.testing.assert_allclose(net.grad(theta), cs, rtol=1e-12, atol=1e-12 * (1 + np.abs(cs).max()))


@settings(max_examples=40, deadline=None)
@given(networks())
def test_hvp_matches_complex_step_and_differences(case):
    net, theta, v = case
    Hv = net.hvp(theta, v)
    cs = net.grad(theta + 1e-30j * v).imag / 1e-30
    np.testing.assert_allclose(Hv, cs, rtol=1e-11, atol=1e-11 * (1 + np.abs(cs).max()))
    h = 1e-5
    fd = (net.grad(theta + h * v) - net.grad(theta - h * v)) / (2 * h)
    np.testing.assert_allclose(Hv, fd, atol=1e-5 * (1 + np.abs(fd).max()))


@settings(max_examples=30, deadline=None)
@given(networks())
def test_hessian_symmetric_and_consistent_with_hvp(case):
    net, theta, v = case
    Hs = net.hessian(theta)
    assert Hs.shape == (net.n_params, net.n_params)
    # symmetry before symmetrisation: compare the raw HVP columns with rows
    raw = net.hvp(theta[None, :], np.eye(net.n_params))
    np.testing.assert_allclose(raw, raw.T, atol=1e-11 * (1 + np.abs(raw).max()))
    np.testing.assert_allclose(Hs @ v, net.hvp(theta, v), atol=1e-10 * (1 + np.abs(Hs).max()))


def test_batched_equals_loop(rng):
    net = DeepLinearNetwork(
        (4, 3, 3, 2), rng.standard_normal((2, 4)), input_factor=rng.standard_normal((4, 4))
    )
    Theta = rng.standard_normal((5, 3, net.n_params))
    V = rng.standard_normal((5, 3, net.n_params))
    L = net.loss(Theta)
    G = net.grad(Theta)
    HV = net.hvp(Theta, V)
    C = net.conserved(Theta)
    Hs = net.hessian(Theta[0])
    assert L.shape == (5, 3) and G.shape == Theta.shape and HV.shape == Theta.shape
    assert Hs.shape == (3, net.n_params, net.n_params)
    for i in range(5):
        for k in range(3):
            assert L[i, k] == pytest.approx(net.loss(Theta[i, k]), rel=1e-14)
            np.testing.assert_allclose(G[i, k], net.grad(Theta[i, k]), rtol=1e-13, atol=1e-13)
            np.testing.assert_allclose(HV[i, k], net.hvp(Theta[i, k], V[i, k]), rtol=1e-13, atol=1e-13)
            np.testing.assert_allclose(C[i, k], net.conserved(Theta[i, k]), rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(Hs[1], net.hessian(Theta[0, 1]), atol=1e-13)


def test_empty_batch(small_net):
    """A batch of zero trajectories (an ensemble whose members all finished) evaluates to empty arrays."""
    theta = np.zeros((0, small_net.n_params))
    assert small_net.loss(theta).shape == (0,)
    assert small_net.grad(theta).shape == (0, small_net.n_params)
    assert small_net.hvp(theta, theta).shape == (0, small_net.n_params)
    assert small_net.conserved(theta).shape[0] == 0


def test_loss_formula_against_data(rng):
    """L = 1/2 ||T - W_{H+1}...W_1 R||^2 + c computed independently with an explicit product."""
    w = (3, 4, 2, 2)
    T = rng.standard_normal((2, 3))
    R = rng.standard_normal((3, 3))
    net = DeepLinearNetwork(w, T, input_factor=R, offset=0.25)
    theta = rng.standard_normal(net.n_params)
    W1, W2, W3 = net.unpack(theta)
    expected = 0.5 * np.linalg.norm(T - W3 @ W2 @ W1 @ R) ** 2 + 0.25
    assert net.loss(theta) == pytest.approx(expected, rel=1e-13)
    np.testing.assert_allclose(net.end_to_end(theta), W3 @ W2 @ W1, rtol=1e-13)


def test_pack_unpack_roundtrip(small_net, rng):
    theta = rng.standard_normal((2, small_net.n_params))
    W = small_net.unpack(theta)
    assert [Wj.shape[-2:] for Wj in W] == list(small_net.shapes)
    np.testing.assert_array_equal(small_net.pack(W), theta)
    assert isinstance(small_net, Model)


def test_invariants_conserved_along_tight_flow(small_net, rng):
    """Lemma 1: C_j(t) = C_j(0) along the gradient flow (solve_ivp, rtol 1e-12)."""
    theta0 = 0.5 * rng.standard_normal(small_net.n_params)
    sol = solve_ivp(
        lambda t, y: -small_net.grad(y), (0, 5.0), theta0, method="DOP853", rtol=1e-12, atol=1e-12
    )
    assert sol.success
    C0 = small_net.conserved(theta0)
    Ct = small_net.conserved(sol.y.T)
    drift = np.abs(Ct - C0).max()
    assert drift < 1e-9 * (1 + np.abs(C0).max())
    # and the flow did move: the loss decreased substantially, so the test is not vacuous
    assert small_net.loss(sol.y[:, -1]) < 0.9 * small_net.loss(theta0)
    # the invariant is not conserved by an arbitrary (non-gradient) motion
    other = theta0 + 0.1 * rng.standard_normal(theta0.shape)
    assert np.abs(small_net.conserved(other) - C0).max() > 1e-3


def test_gradient_vanishes_at_known_global_minimum():
    net = DeepLinearNetwork.canonical((3, 2, 2), [2.0, 1.0])
    W1 = np.array([[np.sqrt(2.0), 0, 0], [0, 1.0, 0]])
    W2 = np.array([[np.sqrt(2.0), 0], [0, 1.0]])
    theta = net.pack([W1, W2])
    assert net.loss(theta) == pytest.approx(0.0, abs=1e-28)
    assert np.abs(net.grad(theta)).max() < 1e-14


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(widths=(3, 2), target=np.zeros((2, 3))), "at least 3 widths"),
        (dict(widths=(3, 0, 2), target=np.zeros((2, 3))), "positive integers"),
        (dict(widths=(3, 2.5, 2), target=np.zeros((2, 3))), "positive integers"),
        (dict(widths=(3, 2, 2), target=np.zeros((3, 2))), r"`target` must have shape \(d_y, d_x\)"),
        (dict(widths=(3, 2, 2), target=np.full((2, 3), np.nan)), "NaN or inf"),
        (dict(widths=(3, 2, 2), target=np.zeros((2, 3)), input_factor=np.eye(2)), "`input_factor`"),
        (dict(widths=(3, 2, 2), target=np.zeros((2, 3)), offset=-1.0), "`offset`"),
    ],
)
def test_bad_construction(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DeepLinearNetwork(**kwargs)


def test_bad_params_shape():
    net = DeepLinearNetwork.canonical((3, 2, 2), [2.0, 1.0])
    with pytest.raises(ValueError, match=r"`theta` must have shape \(\.\.\., 10\)"):
        net.loss(np.zeros(9))
    with pytest.raises(ValueError, match=r"`W\[1\]` \(layer 2\)"):
        net.pack([np.zeros((2, 3)), np.zeros((3, 2))])
    with pytest.raises(ValueError, match="`singular_values` must have length d_y = 2"):
        DeepLinearNetwork.canonical((3, 2, 2), [1.0])
