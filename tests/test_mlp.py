"""Tests for flowgeom.mlp: exact derivatives, agreement with the linear network, symmetries.

References used here (independent of the code under test):
- complex-step differentiation (Squire & Trapp 1998; Martins, Sturdza & Alonso 2003):
  Im F(theta + i h v) / h with h = 1e-30 is the directional derivative to round-off for analytic F;
- central finite differences (a second, cruder reference that does not go through complex arithmetic);
- flowgeom.networks.DeepLinearNetwork (closed-form gradient, forward-mode HVP) for activation="linear".
"""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowgeom import Problem
from flowgeom.models.mlp import ACTIVATIONS, MLP
from flowgeom.models.teacher import teacher_student

H_CS = 1e-30


def _cs_grad(net, theta):
    """Gradient of net.loss at one theta by complex step, one basis vector at a time."""
    n = net.n_params
    return np.array([net.loss(theta + 1j * H_CS * e).imag / H_CS for e in np.eye(n)])


def _random_net(rng, widths, activation, bias, m=6):
    X = rng.standard_normal((widths[0], m))
    Y = rng.standard_normal((widths[-1], m))
    return MLP(widths, X, Y, activation=activation, bias=bias)


widths_st = st.lists(st.integers(1, 4), min_size=3, max_size=5).map(tuple)


@settings(max_examples=40, deadline=None)
@given(
    widths=widths_st,
    activation=st.sampled_from(ACTIVATIONS),
    bias=st.booleans(),
    scale=st.sampled_from([0.1, 1.0, 3.0]),
    seed=st.integers(0, 2**31 - 1),
)
def test_grad_and_hvp_match_complex_step(widths, activation, bias, scale, seed):
    rng = np.random.default_rng(seed)
    net = _random_net(rng, widths, activation, bias)
    theta = net.random_params(rng, scale, size=2)
    v = rng.standard_normal(net.n_params)
    g = net.grad(theta)
    assert g.shape == theta.shape
    for b in range(2):
        ref = _cs_grad(net, theta[b])
        np.testing.assert_allclose(g[b], ref, rtol=0, atol=1e-12 * (1 + np.abs(ref).max()))
    hv = net.hvp(theta, v)  # v broadcasts against the batch
    ref = net.grad(theta + 1j * H_CS * v).imag / H_CS
    assert hv.shape == theta.shape
    np.testing.assert_allclose(hv, ref, rtol=0, atol=1e-12 * (1 + np.abs(ref).max()))


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_hvp_matches_central_differences(rng, activation):
    # a second reference outside complex arithmetic (accuracy ~ eps^(2/3))
    net = _random_net(rng, (3, 4, 3, 2), activation, True)
    theta, v = net.random_params(rng), rng.standard_normal(net.n_params)
    eps = 1e-5
    ref = (net.grad(theta + eps * v) - net.grad(theta - eps * v)) / (2 * eps)
    np.testing.assert_allclose(net.hvp(theta, v), ref, rtol=0, atol=1e-7 * (1 + np.abs(ref).max()))


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_hessian_symmetric_and_matches_hvp(rng, activation):
    net = _random_net(rng, (2, 3, 3, 2), activation, False)
    theta = net.random_params(rng, size=(2,))
    E = np.eye(net.n_params)
    raw = np.stack([net.hvp(theta, e) for e in E], axis=-2)  # unsymmetrised rows
    assert np.abs(raw - np.swapaxes(raw, -1, -2)).max() <= 1e-12 * (1 + np.abs(raw).max())
    H = net.hessian(theta)
    assert H.shape == (2, net.n_params, net.n_params)
    v = rng.standard_normal(net.n_params)
    np.testing.assert_allclose(H @ v, net.hvp(theta, v), atol=1e-12 * (1 + np.abs(H).max()))


@pytest.mark.parametrize("activation", ["softplus", "sigmoid", "tanh"])
def test_large_preactivations_no_overflow(rng, activation):
    # pre-activations of order 100s: the stable sigmoid/softplus forms must not overflow
    # (warnings are errors in this suite) and complex step must still be exact.
    net = _random_net(rng, (3, 2, 2), activation, True)
    theta = net.random_params(rng, 50.0)
    g = net.grad(theta)
    ref = _cs_grad(net, theta)
    assert np.all(np.isfinite(g))
    np.testing.assert_allclose(g, ref, rtol=0, atol=1e-12 * (1 + np.abs(ref).max()))


@pytest.mark.parametrize("widths", [(3, 2, 2), (4, 3, 2), (4, 3, 3, 2), (5, 4, 3, 3, 2)])
def test_linear_activation_agrees_with_deep_linear_network(rng, widths):
    m = 9
    X = rng.standard_normal((widths[0], m))
    Y = rng.standard_normal((widths[-1], m))
    dln = Problem.from_data(X, Y, widths).network("original")
    mlp = MLP(widths, X, Y, activation="linear")
    assert mlp.n_params == dln.n_params
    theta = dln.random_params(rng, size=(3,))
    v = rng.standard_normal((3, dln.n_params))
    scale = 1 + np.abs(dln.loss(theta)).max()
    np.testing.assert_allclose(mlp.loss(theta), dln.loss(theta), rtol=1e-11, atol=1e-12 * scale)
    np.testing.assert_allclose(mlp.grad(theta), dln.grad(theta), rtol=0, atol=1e-11 * scale)
    np.testing.assert_allclose(mlp.hvp(theta, v), dln.hvp(theta, v), rtol=0, atol=1e-11 * scale)
    np.testing.assert_allclose(mlp.conserved(theta), dln.conserved(theta), atol=1e-12)


def test_linear_with_bias_invariants_conserved_by_flow(rng):
    # d/dt C(theta(t)) = DC(theta)[-grad L(theta)] must vanish; complex step gives DC exactly.
    net = _random_net(rng, (3, 3, 2, 2), "linear", True)
    theta = net.random_params(rng, size=(4,))
    g = net.grad(theta)
    dC = net.conserved(theta - 1j * H_CS * g).imag / H_CS
    assert dC.shape == (4, 3 * 3 + 2 * 2)
    assert np.abs(dC).max() <= 1e-12 * (1 + np.abs(g).max() ** 2)
    # and they are not trivially constant: a random direction changes them
    u = rng.standard_normal(theta.shape)
    assert np.abs(net.conserved(theta + 1j * H_CS * u).imag / H_CS).max() > 1e-3


@pytest.mark.parametrize("activation", ["tanh", "softplus", "sigmoid"])
def test_nonlinear_conserved_empty_and_no_data_independent_law(rng, activation):
    net = _random_net(rng, (2, 3, 2), activation, False)
    theta = net.random_params(rng, size=(5, 2))
    c = net.conserved(theta)
    assert c.shape == (5, 2, 0)
    with pytest.raises(ValueError, match="invariants"):
        net.invariants(theta)
    # Justification of k = 0: the output Jacobian over many inputs has full rank n, so no
    # nonconstant h has grad h orthogonal to every per-sample gradient (Marcotte et al. 2023).
    Xp = rng.standard_normal((2, 40))
    th = theta[0, 0]
    J = np.stack(
        [net.predict(th + 1j * H_CS * e, Xp).imag.ravel() / H_CS for e in np.eye(net.n_params)], axis=1
    )
    s = np.linalg.svd(J, compute_uv=False)
    assert s[-1] > 1e-6 * s[0]


def test_linear_output_jacobian_rank_deficiency_equals_gl_dimension(rng):
    # the counterpart for linear: rank = n - d_1^2 for H = 1, d_1 <= min(d_x, d_y)
    net = _random_net(rng, (3, 2, 3), "linear", False)
    th = net.random_params(rng)
    Xp = rng.standard_normal((3, 20))
    J = np.stack(
        [net.predict(th + 1j * H_CS * e, Xp).imag.ravel() / H_CS for e in np.eye(net.n_params)], axis=1
    )
    s = np.linalg.svd(J, compute_uv=False)
    assert int(np.sum(s > 1e-9 * s[0])) == net.n_params - 4


# ---------------------------------------------------------------------- symmetries
CASES = [(a, b) for a in ACTIVATIONS for b in (False, True)]


@pytest.mark.parametrize("activation,bias", CASES)
@pytest.mark.parametrize("widths", [(2, 3, 2), (3, 4, 3, 2)])
def test_group_leaves_function_and_canonical_form_unchanged(rng, activation, bias, widths):
    net = _random_net(rng, widths, activation, bias)
    theta = net.random_params(rng)
    Xp = rng.standard_normal((widths[0], 15))
    f0 = net.predict(theta, Xp)
    c0 = net.canonicalize(theta)
    k0 = net.symmetry_orbit_key(theta)
    np.testing.assert_allclose(net.predict(c0, Xp), f0, atol=1e-12)
    for _ in range(5):
        t2 = net.random_symmetry(theta, rng)
        np.testing.assert_allclose(net.predict(t2, Xp), f0, atol=1e-12)
        np.testing.assert_allclose(net.loss(t2), net.loss(theta), rtol=1e-13)
        np.testing.assert_allclose(net.canonicalize(t2), c0, atol=1e-12)
        assert net.symmetry_orbit_key(t2) == k0
        d, aligned = net.orbit_distance(theta, t2)
        assert d < 1e-12
        np.testing.assert_allclose(aligned, theta, atol=1e-12)


def test_canonicalize_is_batched(rng):
    net = _random_net(rng, (3, 4, 3, 2), "tanh", True)
    theta = net.random_params(rng, size=(3, 2))
    c = net.canonicalize(theta)
    assert c.shape == theta.shape
    for i in range(3):
        for j in range(2):
            np.testing.assert_array_equal(c[i, j], net.canonicalize(theta[i, j]))
    # idempotent
    np.testing.assert_allclose(net.canonicalize(c), c, atol=0)


@pytest.mark.parametrize("activation,bias", [("softplus", False), ("softplus", True), ("sigmoid", False)])
def test_sign_flip_is_not_a_symmetry_for_non_odd_activations(rng, activation, bias):
    net = _random_net(rng, (2, 3, 2), activation, bias)
    assert not net.has_sign_flips
    theta = net.random_params(rng)
    with pytest.raises(ValueError, match="sign flips"):
        net.apply_symmetry(theta, 1, [0, 1, 2], [-1, 1, 1])
    # the odd-activation flip (negate in, out, bias) really changes f here, so must not be used
    W, b = net._layers(theta)
    W[0][0] *= -1
    b[0][0] *= -1
    W[1][:, 0] *= -1
    flipped = net._repack(W, b)
    assert np.abs(net.predict(flipped) - net.predict(theta)).max() > 1e-3
    d, _ = net.orbit_distance(theta, flipped)
    assert d > 1e-3
    assert net.symmetry_orbit_key(flipped) != net.symmetry_orbit_key(theta)


def test_orbit_distance_separates_different_points(rng):
    net = _random_net(rng, (2, 3, 2), "tanh", False)
    t1, t2 = net.random_params(rng, size=2)
    d, aligned = net.orbit_distance(t1, t2)
    assert d > 0.1
    # the aligned point is group-related to t2 and no farther than t2 itself
    np.testing.assert_allclose(net.predict(aligned), net.predict(t2), atol=1e-12)
    assert d <= np.linalg.norm(t1 - t2) + 1e-12
    # H = 1: brute force over all 3! * 2^3 group elements gives the same minimum
    best = np.inf
    for perm in itertools.permutations(range(3)):
        for signs in itertools.product([-1, 1], repeat=3):
            best = min(best, np.linalg.norm(t1 - net.apply_symmetry(t2, 1, perm, signs)))
    assert abs(d - best) < 1e-12


# ---------------------------------------------------------------------- construction, data
def test_pack_unpack_roundtrip(rng):
    net = _random_net(rng, (3, 4, 2), "tanh", True)
    theta = net.random_params(rng, size=(2,))
    W, b = net.unpack(theta), net.biases(theta)
    assert [w.shape for w in W] == [(2, 4, 3), (2, 2, 4)]
    assert [x.shape for x in b] == [(2, 4), (2, 2)]
    np.testing.assert_array_equal(net.pack(W, b), theta)
    # layout: W_1, b_1, W_2, b_2
    np.testing.assert_array_equal(theta[..., 12:16], b[0])
    nob = MLP((3, 4, 2), net.X, net.Y)
    assert nob.n_params == 20 and nob.biases(np.zeros(20)) == []


def test_bad_input_messages(rng):
    X, Y = rng.standard_normal((3, 5)), rng.standard_normal((2, 5))
    with pytest.raises(ValueError, match="`activation`"):
        MLP((3, 4, 2), X, Y, activation="relu")
    with pytest.raises(ValueError, match="`X` must have 3 rows"):
        MLP((3, 4, 2), X.T, Y)
    with pytest.raises(ValueError, match="same number of samples"):
        MLP((3, 4, 2), X, Y[:, :4])
    with pytest.raises(ValueError, match="NaN"):
        MLP((3, 4, 2), np.full((3, 5), np.nan), Y)
    with pytest.raises(TypeError, match="`bias`"):
        MLP((3, 4, 2), X, Y, bias="yes")
    net = MLP((3, 4, 2), X, Y)
    with pytest.raises(ValueError, match=r"`theta` must have shape \(\.\.\., 20\)"):
        net.loss(np.zeros(7))
    with pytest.raises(ValueError, match="`layer`"):
        net.apply_symmetry(np.zeros(20), 2, [0, 1, 2, 3])
    with pytest.raises(ValueError, match="`perm`"):
        net.apply_symmetry(np.zeros(20), 1, [0, 0, 1, 2])
    with pytest.raises(TypeError, match="`rng`"):
        teacher_student((3, 2, 2), 10, rng=0)
    with pytest.raises(ValueError, match="`m`"):
        teacher_student((3, 2, 2), 0, rng=rng)


def test_teacher_student(rng):
    data = teacher_student((3, 2, 2), 25, rng=np.random.default_rng(5), weight_scale=2.0)
    again = teacher_student((3, 2, 2), 25, rng=np.random.default_rng(5), weight_scale=2.0)
    np.testing.assert_array_equal(data.X, again.X)
    np.testing.assert_array_equal(data.Y, again.Y)
    assert data.X.shape == (3, 25) and data.Y.shape == (2, 25)
    assert data.teacher.loss(data.theta_teacher) == 0.0
    # Y is really produced by a tanh teacher: recompute by hand
    W1 = data.theta_teacher[:6].reshape(2, 3)
    W2 = data.theta_teacher[6:].reshape(2, 2)
    np.testing.assert_allclose(data.Y, W2 @ np.tanh(W1 @ data.X), atol=1e-14)
    student = data.student((3, 4, 2))
    assert student.activation == "tanh" and student.n_params == 20
    noisy = teacher_student((3, 2, 2), 2000, rng=np.random.default_rng(5), noise=0.1)
    # the noise energy: 1/2 * 0.01 * d_y * m = 20, within a few standard deviations
    assert abs(float(noisy.teacher.loss(noisy.theta_teacher)) - 20.0) < 3.0


def test_satisfies_model_protocol_and_batches(rng):
    from flowgeom.models.base import Model

    net = _random_net(rng, (3, 4, 3, 2), "tanh", True)
    assert isinstance(net, Model)
    theta = net.random_params(rng, size=(2, 3))
    assert net.loss(theta).shape == (2, 3)
    assert net.grad(theta).shape == (2, 3, net.n_params)
    assert net.hessian(theta).shape == (2, 3, net.n_params, net.n_params)
    # batched results equal per-element results (no cross-talk between batch entries)
    for i, j in itertools.product(range(2), range(3)):
        np.testing.assert_allclose(net.grad(theta)[i, j], net.grad(theta[i, j]), rtol=1e-14, atol=1e-14)
        np.testing.assert_allclose(net.loss(theta)[i, j], net.loss(theta[i, j]), rtol=1e-15)
