"""Tests for flowgeom.critical.search and .refinement: Newton-type refinement, symmetry deduplication, inertia, dimension.

Independent references:
- complex-step gradient of the loss (Im L(theta + i h e_k)/h, h = 1e-30) to verify found points;
- closed-form critical values of the deep linear network, 1/2 sum_{i not in S} s_i^2 (Baldi & Hornik
  1989; the paper's Lemma 2), and the dimension d_1^2 of its global-minimum set {W_2 W_1 = Sigma}
  for d_1 = d_y (the GL(d_1) orbit);
- the Fukumizu & Amari (2000) unit-duplication embedding, a line of critical points;
- the Taylor expansion tanh(z) = z + O(z^3): at theta = 0 the tanh and linear Hessians coincide.
"""

import itertools

import numpy as np
import pytest

from flowgeom import DeepLinearNetwork, Problem
from flowgeom.critical.linearization import hessian_inertia
from flowgeom.critical.dimension import local_dimension
from flowgeom.critical.refinement import RefineStatus
from flowgeom.critical.refinement import refine_critical
from flowgeom.critical.search import DIM_RTOL, duplicate_unit, find_critical_points, search_critical_points
from flowgeom.critical.starts import plateau_points
from flowgeom.models.mlp import MLP
from flowgeom.models.teacher import teacher_student

H_CS = 1e-30


def _cs_grad(model, theta):
    return np.array([model.loss(theta + 1j * H_CS * e).imag / H_CS for e in np.eye(model.n_params)])


@pytest.fixture(scope="module")
def ts_problem():
    data = teacher_student((2, 2, 1), 20, rng=np.random.default_rng(0), weight_scale=2.0, noise=0.1)
    return data.student((2, 2, 1))


@pytest.fixture(scope="module")
def ts_search(ts_problem):
    return search_critical_points(
        ts_problem, rng=np.random.default_rng(1), n_random=25, n_trajectories=10, n_steps=1500
    )


def test_found_points_are_critical_by_complex_step(ts_problem, ts_search):
    net = ts_problem
    assert len(ts_search.points) >= 3
    for p in ts_search.points:
        ref = _cs_grad(net, p.theta)
        assert np.linalg.norm(ref) < 1e-12, (p.loss, np.linalg.norm(ref))
        assert p.grad_norm < 1e-12
        assert p.n_negative + p.n_zero + p.n_positive == net.n_params
        for m in p.members:
            assert np.linalg.norm(_cs_grad(net, m)) < 1e-12
    losses = [p.loss for p in ts_search.points]
    assert losses == sorted(losses)
    # assignment: each converged start's refined point is group-related (or family-related) to its entry
    conv = np.nonzero(ts_search.assignment >= 0)[0]
    assert conv.size == ts_search.n_converged > 0
    for i in conv:
        p = ts_search.points[ts_search.assignment[i]]
        assert abs(ts_search.refine.loss[i] - p.loss) <= 1e-9 * (1 + p.loss)


def test_deduplication_up_to_permutations_and_sign_flips(ts_problem, ts_search):
    net = ts_problem
    rng = np.random.default_rng(7)
    base = np.stack([p.theta for p in ts_search.points if p.manifold_dim == 0])
    assert base.shape[0] >= 2
    # every group element of H = 1, d_1 = 2: 2! permutations x 2^2 sign patterns
    images = []
    for perm in itertools.permutations(range(2)):
        for signs in itertools.product([-1.0, 1.0], repeat=2):
            images.append(net.apply_symmetry(base, 1, perm, np.array(signs)))
    starts = np.concatenate(images, axis=0)
    # a tiny perturbation so that the refinement really runs
    starts = starts + 1e-7 * rng.standard_normal(starts.shape)
    res = find_critical_points(net, starts, rng=rng)
    assert res.n_converged == starts.shape[0]
    assert len(res.points) == base.shape[0]
    assert all(p.count == 8 for p in res.points)
    # starts that are images of the same base point land on the same entry
    a = res.assignment.reshape(8, base.shape[0])
    assert np.all(a == a[0])
    assert len(set(a[0].tolist())) == base.shape[0]
    # ... and without the symmetry-aware distance they would not be merged
    class Plain:
        n_params = net.n_params
        loss, grad, hvp, hessian, conserved = net.loss, net.grad, net.hvp, net.hessian, net.conserved

    plain = find_critical_points(Plain(), starts, rng=rng, measure_dimension=False)
    assert len(plain.points) > base.shape[0]


def test_canonical_representatives_identical_across_group(ts_problem, ts_search):
    net = ts_problem
    for p in ts_search.points:
        for _ in range(3):
            img = net.random_symmetry(p.theta, np.random.default_rng(11))
            np.testing.assert_allclose(net.canonicalize(img), net.canonicalize(p.theta), atol=1e-12)


def test_linear_network_critical_values_and_global_min_dimension():
    # closed form: critical values 1/2 sum_{i not in S} s_i^2; global-min set {W2 W1 = Sigma} of
    # dimension d_1^2 = 4 (GL(2) orbit) for widths (3, 2, 2); it is Morse-Bott there.
    s = np.array([2.0, 1.0])
    net = DeepLinearNetwork.canonical((3, 2, 2), s)
    rng = np.random.default_rng(3)
    res = find_critical_points(net, net.random_params(rng, size=30), rng=rng)
    values = {0.5 * sum(s[i] ** 2 for i in range(2) if i not in S) for r in range(3) for S in itertools.combinations(range(2), r)}
    assert res.n_converged >= 20
    for p in res.points:
        assert min(abs(p.loss - v) for v in values) < 1e-12
        assert p.grad_norm < 1e-12
    gmin = [p for p in res.points if abs(p.loss) < 1e-12]
    assert gmin, "no global minimum found"
    for p in gmin:
        assert p.n_negative == 0
        assert p.n_zero == 4
        assert p.manifold_dim == 4
        assert p.morse_bott and p.kind == "local_min"
    for p in res.points:
        if p.loss > 1e-6:
            assert p.n_negative > 0 and p.kind == "strict_saddle"


def test_fukumizu_amari_unit_duplication_line():
    data = teacher_student((2, 2, 1), 20, rng=np.random.default_rng(0), weight_scale=2.0, noise=0.1)
    narrow = data.student((2, 1, 1))
    rng = np.random.default_rng(5)
    r = refine_critical(narrow, narrow.random_params(rng, size=20))
    ok = r.converged & (np.linalg.norm(r.theta, axis=1) > 1e-3)  # a point with an active unit
    assert np.any(ok)
    i = int(np.argmin(np.where(ok, r.loss, np.inf)))
    theta_n = r.theta[i]
    walls = []
    for lam in (0.3, 0.7, 1.8):
        wide, theta_w = duplicate_unit(narrow, theta_n, 0, lam)
        walls.append(theta_w)
        assert wide.widths == (2, 2, 1)
        np.testing.assert_allclose(wide.loss(theta_w), narrow.loss(theta_n), rtol=1e-13)
        assert np.linalg.norm(_cs_grad(wide, theta_w)) < 1e-12
        ld = local_dimension(wide, theta_w, rng=rng)
        assert ld.dim >= 1 and ld.smooth, ld
    # lambda and 1 - lambda are the same point up to swapping the two units
    d, _ = wide.orbit_distance(walls[0], walls[1])
    assert d < 1e-12
    assert np.linalg.norm(walls[0] - walls[1]) > 1e-3


@pytest.mark.parametrize("widths", [(3, 3, 2), (3, 2, 2), (3, 3, 3, 2)])
def test_origin_inertia_tanh_matches_linear(widths):
    rng = np.random.default_rng(2)
    X = rng.standard_normal((widths[0], 12))
    Y = rng.standard_normal((widths[-1], 12))
    tanh = MLP(widths, X, Y, activation="tanh")
    dln = Problem.from_data(X, Y, widths).network("original")
    zero = np.zeros(tanh.n_params)
    assert np.linalg.norm(tanh.grad(zero)) == 0.0  # the origin is critical for bias-free tanh
    Ht, Hl = tanh.hessian(zero), dln.hessian(zero)
    np.testing.assert_allclose(Ht, Hl, atol=1e-12 * (1 + np.abs(Hl).max()))
    it = hessian_inertia(tanh, zero, method="dense", zero_atol=1e-12)
    il = hessian_inertia(dln, zero, method="dense", zero_atol=1e-12)
    assert it.triple == il.triple
    if len(widths) == 3:
        # H = 1: Hessian [[0, B], [B^T, 0]]-type, eigenvalues come in +- pairs
        assert it.n_negative == it.n_positive > 0
    else:
        assert it.n_zero == tanh.n_params  # H >= 2: the origin is degenerate to second order


def test_reported_inertia_and_gap_follow_linearize():
    # a quadratic model with a prescribed spectrum (-2, -1e-12, 0, 3e-14, 5): its only critical
    # point is 0; the search must report what flowgeom.linearize.hessian_inertia measures there
    Q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((5, 5)))
    lam = np.array([-2.0, -1e-12, 0.0, 3e-14, 5.0])
    A = Q @ np.diag(lam) @ Q.T
    quad = _Toy(5, lambda t: 0.5 * np.einsum("...i,ij,...j->...", t, A, t), lambda t: t @ A,
                lambda t: np.broadcast_to(A, np.shape(t)[:-1] + (5, 5)))
    res = find_critical_points(quad, np.zeros((1, 5)), rng=np.random.default_rng(0), measure_dimension=False)
    (p,) = res.points
    assert p.inertia == (1, 3, 1)
    ref = hessian_inertia(quad, np.zeros(5), method="dense")
    assert p.inertia == ref.triple and p.zero_tol == ref.zero_tol
    assert p.spectral_gap == pytest.approx(2.0 / 1e-12, rel=1e-3)  # eigvalsh round-off ~1e-15 on 1e-12
    np.testing.assert_allclose(p.eigenvalues, lam, atol=1e-14)


def test_refine_quadratic_convergence_and_statuses():
    # f(x, y) = (x^2 - 1)^2 + y^2 (as a Model): critical points (+-1, 0) minima, (0, 0) saddle
    class DoubleWell:
        n_params = 2

        def loss(self, t):
            return (t[..., 0] ** 2 - 1) ** 2 + t[..., 1] ** 2

        def grad(self, t):
            return np.stack([4 * t[..., 0] * (t[..., 0] ** 2 - 1), 2 * t[..., 1]], axis=-1)

        def hvp(self, t, v):
            return np.einsum("...ij,...j->...i", self.hessian(t), v)

        def hessian(self, t):
            t = np.asarray(t)
            H = np.zeros(t.shape[:-1] + (2, 2))
            H[..., 0, 0] = 12 * t[..., 0] ** 2 - 4
            H[..., 1, 1] = 2.0
            return H

        def conserved(self, t):
            return np.zeros(np.shape(t)[:-1] + (0,))

    m = DoubleWell()
    starts = np.array([[0.9, 0.3], [-1.2, -0.5], [0.1, 0.2]])
    r = refine_critical(m, starts)
    np.testing.assert_array_equal(r.status, 0)
    np.testing.assert_allclose(r.theta, [[1, 0], [-1, 0], [0, 0]], atol=1e-15)
    assert np.all(r.grad_norm < 1e-14) and np.all(r.n_iter < 15)
    # a start pushed outside max_norm is reported as diverged, not raised
    far = refine_critical(m, np.array([[50.0, 0.0]]), max_norm=10.0)
    assert far.status[0] == RefineStatus.DIVERGED
    assert "max_norm" in RefineStatus(int(far.status[0])).message
    few = refine_critical(m, np.array([[50.0, 0.0]]), max_iter=2)
    assert few.status[0] == RefineStatus.MAX_ITER
    res = find_critical_points(m, starts, rng=np.random.default_rng(0))
    assert [(p.inertia, p.kind) for p in res.points] == [
        ((0, 0, 2), "local_min"),
        ((0, 0, 2), "local_min"),
        ((1, 0, 1), "strict_saddle"),
    ]
    np.testing.assert_allclose([p.loss for p in res.points], [0.0, 0.0, 1.0], atol=1e-15)


def test_plateau_points_picks_local_minima_of_grad_norm():
    ys = np.arange(2 * 7 * 2, dtype=float).reshape(2, 7, 2)
    gn = np.array([[5, 3, 4, 1, 2, 0.5, 0.1], [3, 2, 1, np.nan, 0.5, 0.6, 0.4]])
    P = plateau_points(ys, gn, max_per_trajectory=3)
    # trajectory 0: final + minima at index 3 (1.0) and 1 (3.0); trajectory 1: final + min at 4 (after NaN skip)
    expected = [ys[0, 6], ys[0, 3], ys[0, 1], ys[1, 6], ys[1, 4]]
    np.testing.assert_array_equal(P, np.stack(expected))


def test_bad_inputs(ts_problem):
    net = ts_problem
    with pytest.raises(ValueError, match="`starts`"):
        find_critical_points(net, np.zeros(net.n_params), rng=np.random.default_rng(0))
    with pytest.raises(TypeError, match="`rng`"):
        find_critical_points(net, np.zeros((1, net.n_params)), rng=1)
    with pytest.raises(ValueError, match="`gtol`"):
        refine_critical(net, np.zeros(net.n_params), gtol=-1.0)
    with pytest.raises(ValueError, match="`unit`"):
        duplicate_unit(net, np.zeros(net.n_params), 5, 0.5)


class _Toy:
    """A Model from a polynomial loss with hand-written derivatives (closed-form critical sets)."""

    def __init__(self, n, loss, grad, hess):
        self.n_params, self._l, self._g, self._h = n, loss, grad, hess

    def loss(self, t):
        return self._l(np.asarray(t))

    def grad(self, t):
        return self._g(np.asarray(t))

    def hessian(self, t):
        return self._h(np.asarray(t))

    def hvp(self, t, v):
        return np.einsum("...ij,...j->...i", self.hessian(t), v)

    def conserved(self, t):
        return np.zeros(np.shape(t)[:-1] + (0,))


def _circle():
    # L = (x^2 + y^2 - 1)^2 + z^2: critical set = unit circle in z = 0 (dim 1, Morse-Bott) and the origin
    def loss(t):
        x, y, z = t[..., 0], t[..., 1], t[..., 2]
        return (x**2 + y**2 - 1) ** 2 + z**2

    def grad(t):
        x, y, z = t[..., 0], t[..., 1], t[..., 2]
        q = x**2 + y**2 - 1
        return np.stack([4 * x * q, 4 * y * q, 2 * z], axis=-1)

    def hess(t):
        x, y = t[..., 0], t[..., 1]
        q = x**2 + y**2 - 1
        H = np.zeros(t.shape[:-1] + (3, 3))
        H[..., 0, 0] = 4 * q + 8 * x * x
        H[..., 1, 1] = 4 * q + 8 * y * y
        H[..., 0, 1] = H[..., 1, 0] = 8 * x * y
        H[..., 2, 2] = 2.0
        return H

    return _Toy(3, loss, grad, hess)


def _quartic():
    # L = x^4 + y^2: the only critical point is 0, with a degenerate (non-Morse-Bott) direction x
    def loss(t):
        return t[..., 0] ** 4 + t[..., 1] ** 2

    def grad(t):
        return np.stack([4 * t[..., 0] ** 3, 2 * t[..., 1]], axis=-1)

    def hess(t):
        H = np.zeros(t.shape[:-1] + (2, 2))
        H[..., 0, 0] = 12 * t[..., 0] ** 2
        H[..., 1, 1] = 2.0
        return H

    return _Toy(2, loss, grad, hess)


def test_local_dimension_morse_bott_circle():
    m = _circle()
    rng = np.random.default_rng(4)
    theta = np.array([np.cos(0.4), np.sin(0.4), 0.0])
    ld = local_dimension(m, theta, rng=rng)
    assert ld.dim == 1 and ld.n_zero == 1 and ld.morse_bott
    res = find_critical_points(m, rng.standard_normal((12, 3)), rng=rng)
    on_circle = [p for p in res.points if p.loss < 1e-12]
    assert len(on_circle) == 1  # all circle points merged into one family entry
    p = on_circle[0]
    assert p.inertia == (0, 1, 2) and p.manifold_dim == 1 and p.morse_bott and p.kind == "local_min"
    r = np.hypot(p.members[:, 0], p.members[:, 1])
    np.testing.assert_allclose(r, 1.0, atol=1e-12)
    assert p.n_members == p.count  # distinct angles, no symmetry to identify them


def test_degenerate_point_is_not_morse_bott():
    m = _quartic()
    rng = np.random.default_rng(0)
    # x^4: the refinement of a probe (1e-3, 0) stops at x ~ 1.3e-5 (gradient 4x^3 at round-off),
    # a leftover of 1.3 % of the probe: the threshold must sit above it (DIM_RTOL = 0.1)
    ld = local_dimension(m, np.zeros(2), rng=rng, dim_rtol=DIM_RTOL)
    assert ld.dim == 0 and ld.n_zero == 1 and not ld.morse_bott
    res = find_critical_points(m, np.array([[0.5, 0.3], [-0.2, 0.1]]), rng=rng, gtol=1e-11)
    assert len(res.points) == 1
    p = res.points[0]
    # the refined point sits ~1e-7 from 0 (linear Newton convergence on 4x^3); the dimension is
    # measured 0 or undecided (-1: displacements not linear in the probes), never the kernel's 1
    assert p.inertia == (0, 1, 1) and p.manifold_dim in (0, -1)
    assert not p.morse_bott and p.kind == "degenerate"
