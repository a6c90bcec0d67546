"""Diagonal linear networks: derivatives vs complex step, invariants along the flow, closed-form critical sets
vs the gradient and the measured Hessian inertia, and the saddle-to-saddle prediction of Pesme & Flammarion
vs scikit-learn's Lasso path and vs simulated gradient flow."""

import numpy as np
import pytest

from flowgeom.critical import hessian_inertia, search_critical_points
from flowgeom.flow import SaveAt, integrate
from flowgeom.models.base import Model
from flowgeom.models.diagonal import DiagonalLinearNetwork
from flowgeom.models import diagonal_theory as dt
from flowgeom._validate import InputError


def _problem(seed, n=20, d=5, noise=0.05):
    """Gaussian design, sparse-ish target beta* = (2, -1, 0.5, 0, 0) plus noise (generic: every r_i != 0 off S)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    bstar = np.zeros(d)
    bstar[:3] = [2.0, -1.0, 0.5]
    return X, X @ bstar + noise * rng.standard_normal(n)


# seed 5: monotone path with three jumps before tau = 3 (and two late ones from the noise, tau > 200);
# seed 1: a coordinate (3) is activated and later dropped (non-monotone).
MONOTONE_SEED, NON_MONOTONE_SEED = 5, 1


# ---------------------------------------------------------------------------- the Model
@pytest.mark.parametrize("depth", [2, 3, 4])
def test_derivatives_match_complex_step(depth):
    rng = np.random.default_rng(depth)
    X, y = rng.standard_normal((7, 4)), rng.standard_normal(7)
    m = DiagonalLinearNetwork(X, y, depth=depth)
    assert isinstance(m, Model)
    th = rng.standard_normal((3, m.n_params))
    v = rng.standard_normal((3, m.n_params))
    # loss against an independent formula: product of factors with np.prod
    beta = np.prod(th.reshape(3, depth, 4), axis=1)
    np.testing.assert_allclose(m.loss(th), np.sum((beta @ X.T - y) ** 2, axis=1) / 14, rtol=1e-13)
    h = 1e-30
    E = np.eye(m.n_params)
    g_cs = np.stack([m.loss(th + 1j * h * E[i]).imag / h for i in range(m.n_params)], axis=-1)
    np.testing.assert_allclose(m.grad(th), g_cs, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(m.hvp(th, v), m.grad(th + 1j * h * v).imag / h, rtol=1e-12, atol=1e-13)
    # the raw columns (before symmetrisation) are symmetric: the HVP is a true second derivative
    Hraw = m.hvp(th[0][None, :], E)
    np.testing.assert_allclose(Hraw, Hraw.T, atol=1e-12)
    np.testing.assert_allclose(m.hessian(th)[1], m.hvp(th[1][None, :], E), atol=1e-12)
    # pack/unpack round trip; batch axes
    assert np.array_equal(m.pack(m.unpack(th)), th)
    assert m.grad(th.reshape(3, 1, -1)).shape == (3, 1, m.n_params)


def test_rejects_bad_input():
    with pytest.raises(InputError, match="`y`"):
        DiagonalLinearNetwork(np.ones((3, 2)), np.ones(4))
    with pytest.raises(InputError, match="`depth`"):
        DiagonalLinearNetwork(np.ones((3, 2)), np.ones(3), depth=1)
    with pytest.raises(InputError, match="`alpha`"):
        DiagonalLinearNetwork(np.ones((3, 2)), np.ones(3)).small_init(0.0)


@pytest.mark.parametrize("depth", [2, 3])
def test_invariants_conserved_and_loss_decreases(depth):
    X, y = _problem(0, d=4)
    m = DiagonalLinearNetwork(X, y, depth=depth)
    th0 = m.random_params(np.random.default_rng(1), 0.7, size=3)
    tr = integrate(m, th0, 30.0, rtol=1e-10, atol=1e-12, saveat=SaveAt(ts=np.linspace(0, 30, 301)), grad_tol=0)
    c = m.conserved(tr.ys)  # (N, n_save, (D-1) d)
    assert c.shape == (3, 301, (depth - 1) * 4)
    assert np.max(np.abs(c - c[:, :1])) < 1e-8
    assert np.all(np.diff(tr.loss, axis=1) <= 1e-12)
    assert tr.loss[:, -1].max() < tr.loss[:, 0].min()


# ---------------------------------------------------------------------------- closed-form critical sets
@pytest.mark.parametrize("depth", [2, 3])
def test_critical_sets_are_critical_with_predicted_inertia(depth):
    X, y = _problem(2, n=12, d=4)
    m = DiagonalLinearNetwork(X, y, depth=depth)
    sets = dt.critical_sets(m)
    assert len(sets) == 2 ** 4  # generic data: every support is admissible and generic
    assert all(c.generic for c in sets)
    assert [c.is_minimum for c in sets].count(True) == 1
    gmin = next(c for c in sets if c.is_minimum)
    assert gmin.support == (0, 1, 2, 3)
    np.testing.assert_allclose(gmin.beta, np.linalg.lstsq(X, y, rcond=None)[0], rtol=1e-10)
    rng = np.random.default_rng(3)
    gscale = np.abs(m.grad(m.random_params(rng, 1.0, size=50))).max()
    for c in sets:
        pts = np.vstack([c.point, dt.critical_set_points(m, c, rng, 4)])
        assert np.abs(m.grad(pts)).max() < 1e-12 * gscale
        np.testing.assert_allclose(m.loss(pts), c.loss, rtol=1e-12)
        np.testing.assert_allclose(m.beta(pts), np.broadcast_to(c.beta, (5, 4)), rtol=1e-10, atol=1e-14)
        for p in pts[:3]:
            inert = hessian_inertia(m, p, method="dense")
            assert inert.decided
            assert (inert.n_negative, inert.n_zero, inert.n_positive) == c.inertia
    # a point with only one zero factor on an inactive coordinate is not critical (the check can fail)
    c = next(c for c in sets if len(c.support) == 2)
    i = next(j for j in range(4) if j not in c.support)
    W = m.unpack(c.point.copy())
    W[0][i], W[1][i] = 0.3, 0.0
    assert np.abs(m.grad(m.pack(W))).max() > 1e-3


def test_critical_sets_max_support_and_degenerate_data():
    X, y = _problem(2, n=12, d=4)
    m = DiagonalLinearNetwork(X, y)
    assert [len(c.support) for c in dt.critical_sets(m, max_support=1)].count(1) == 4
    # noiseless target with beta*_3 = 0: r_3 = 0 at the fit on {0, 1, 2}, which is then not generic
    bstar = np.array([2.0, -1.0, 0.5, 0.0])
    sets = dt.critical_sets(DiagonalLinearNetwork(X, X @ bstar))
    c = next(c for c in sets if c.support == (0, 1, 2))
    assert not c.generic and c.inertia is None and c.loss < 1e-25
    assert all(c.support != (0, 1, 2, 3) for c in sets)  # its fit has beta_3 = 0: not a set of its own


def test_searched_atlas_finds_every_closed_form_set():
    """The generic multi-start search of flowgeom.critical finds all 2^d closed-form sets of a depth-2 network,
    with the predicted critical value, beta, inertia and (Morse-Bott) dimension, and nothing else."""
    X, y = _problem(2, n=12, d=3)
    m = DiagonalLinearNetwork(X, y)
    sets = dt.critical_sets(m)
    res = search_critical_points(m, rng=np.random.default_rng(0), n_random=60, n_trajectories=20, n_steps=2000)
    assert len(res.points) == len(sets) == 8
    for c in sets:
        hits = [p for p in res.points if abs(p.loss - c.loss) <= 1e-9 * (1 + c.loss)]
        assert len(hits) == 1, c.support
        p = hits[0]
        np.testing.assert_allclose(m.beta(p.theta), c.beta, atol=1e-8)
        assert (p.n_negative, p.n_zero, p.n_positive) == c.inertia
        assert p.manifold_dim == c.dimension


# ---------------------------------------------------------------------------- Algorithm 1 of Pesme & Flammarion
def test_saddle_sequence_is_feasible_and_optimal_each_step():
    """Every saddle minimises L under its sign constraints (checked with scipy's lsq_linear), s stays in
    [-1, 1]^d, losses decrease, and the last saddle is the least-squares solution (n > d)."""
    from scipy.optimize import lsq_linear

    for seed in (MONOTONE_SEED, NON_MONOTONE_SEED):
        X, y = _problem(seed)
        sq = dt.saddle_sequence(X, y)
        assert len(sq) >= 4
        assert np.all(np.diff([s.t for s in sq]) > 0) and np.all(np.diff([s.loss for s in sq]) < 0)
        for s in sq[1:]:
            assert np.all(np.abs(s.s) <= 1.0)
            lo = np.where(s.s == 1.0, 0.0, np.where(s.s == -1.0, -np.inf, -1e-300))
            hi = np.where(s.s == 1.0, np.inf, np.where(s.s == -1.0, 0.0, 1e-300))
            ref = lsq_linear(X, y, bounds=(lo, hi), tol=1e-14, method="bvls")
            np.testing.assert_allclose(s.beta, ref.x, atol=1e-8)
        np.testing.assert_allclose(sq[-1].beta, np.linalg.lstsq(X, y, rcond=None)[0], atol=1e-10)
    assert dt.is_monotone(dt.saddle_sequence(*_problem(MONOTONE_SEED)))
    assert not dt.is_monotone(dt.saddle_sequence(*_problem(NON_MONOTONE_SEED)))


def test_monotone_path_matches_lasso_knots():
    r"""Monotone case: :math:`\tau_k = 1/\lambda_{k-1}` with the knots of ``lars_path(method="lasso")`` (same
    :math:`\frac{1}{2n}` normalisation), the same active sets, and :math:`\hat\beta_{\rm lasso}(\lambda_k) =
    \bar\beta(1/\lambda_k)`, the time average of the limiting path (module docstring of diagonal_theory)."""
    sk = pytest.importorskip("sklearn.linear_model")
    X, y = _problem(MONOTONE_SEED)
    sq = dt.saddle_sequence(X, y)
    assert dt.is_monotone(sq)
    lam, _, coefs = sk.lars_path(X, y, method="lasso")
    assert lam.size == len(sq) and lam[-1] == 0.0
    np.testing.assert_allclose([1.0 / s.t for s in sq[1:]], lam[:-1], rtol=1e-10)
    for k in range(len(sq) - 1):  # lasso active set and signs on (lam_{k+1}, lam_k) = those of saddle k + 1
        sup = np.flatnonzero(coefs[:, k + 1])
        assert tuple(sup) == sq[k + 1].support
        assert tuple(np.sign(coefs[sup, k + 1]).astype(int)) == sq[k + 1].signs
    np.testing.assert_allclose(dt.time_average(sq, 1.0 / lam[:-1]), coefs[:, :-1].T, atol=1e-10)
    # non-monotone case: the relation holds up to the drop and fails after it
    X, y = _problem(NON_MONOTONE_SEED)
    sq = dt.saddle_sequence(X, y)
    lam = sk.lars_path(X, y, method="lasso")[0]
    assert not np.allclose([1.0 / s.t for s in sq[1:]], lam[: len(sq) - 1], rtol=1e-6)


# ---------------------------------------------------------------------------- simulated gradient flow
ALPHAS = (1e-4, 1e-6, 1e-10)


@pytest.fixture(scope="module")
def simulated():
    """Depth-2 flow from u = sqrt(2) alpha 1, v = 0 on the monotone problem, for each alpha in ALPHAS, sampled
    on a uniform grid of rescaled time tau = t / ln(1/alpha) up to (tau_K + 1), tau_K the third jump."""
    X, y = _problem(MONOTONE_SEED)
    m = DiagonalLinearNetwork(X, y)
    sq = [s for s in dt.saddle_sequence(X, y) if s.t < 10.0]
    out = {}
    for alpha in ALPHAS:
        L = np.log(1.0 / alpha)
        taus = np.linspace(0.0, sq[-1].t + 1.0, 3001)
        tr = integrate(m, m.small_init(alpha), taus[-1] * L, rtol=1e-10, atol=1e-14 * alpha,
                       saveat=SaveAt(ts=taus * L), grad_tol=0.0, max_steps=100_000)
        out[alpha] = (tr, taus, m.beta(tr.ys[0]), tr.loss[0])
    return sq, out


def test_flow_follows_predicted_saddles_at_alpha_1e_10(simulated):
    """Acceptance criterion of issue 16: at alpha = 1e-10 the plateaus of the simulated flow have the predicted
    supports and signs, and the rescaled jump times t / ln(1/alpha) are within 5 % of Algorithm 1's."""
    sq, runs = simulated
    assert len(sq) == 4  # beta_0 = 0 and three saddles reached by jumps
    tr, taus, B, loss = runs[1e-10]
    assert tr.status[0] == 1 and tr.invariant_drift[0] < 1e-12  # reached t1; u^2 - v^2 conserved
    obs = dt.observed_saddle_sequence(taus, B, loss)
    assert [(p.support, p.signs) for p in obs] == [(s.support, s.signs) for s in sq]
    pred = np.array([s.t for s in sq[1:]])
    rel = np.array([p.t_jump for p in obs[1:]]) / pred - 1.0
    assert np.max(np.abs(rel)) < 0.05, rel
    for p, s in zip(obs[1:], sq[1:]):  # the plateau values are the saddles
        np.testing.assert_allclose(p.beta, s.beta, atol=1e-3)


def test_jump_times_converge_like_one_over_log_alpha(simulated):
    """The error of the loss-midpoint crossing times decreases as alpha -> 0, at the rate 1/ln(1/alpha) (the
    activation of coordinate i is delayed by about ln|beta_i| / (2 |r_i| ln(1/alpha))); at alpha = 1e-6 the
    plateau detection already resolves every saddle."""
    sq, runs = simulated
    pred = np.array([s.t for s in sq[1:]])
    err = np.array([np.max(np.abs(dt.loss_crossing_times(runs[a][1], runs[a][3], sq) / pred - 1.0))
                    for a in ALPHAS])
    assert np.all(np.diff(err) < 0), err
    scaled = err * np.log(1.0 / np.array(ALPHAS))
    assert np.ptp(scaled) < 0.1 * scaled.mean(), scaled
    _, taus, B, loss = runs[1e-6]
    obs = dt.observed_saddle_sequence(taus, B, loss)
    assert [p.support for p in obs] == [s.support for s in sq]


@pytest.mark.slow
def test_non_monotone_sequence_with_a_drop_is_observed_at_tiny_alpha():
    """Non-monotone problem (coordinate 3 activates, then leaves the support): the predicted jump into (0, 3) has
    a large first-order error (about -1.6 / ln(1/alpha) relative: its gradient |r_3| is small), so the plateau
    (0, 1, 3), 0.37 long in rescaled time, is resolved only at very small alpha. At alpha = 1e-40 every predicted
    plateau, including the drop, is observed and the jump times are within 5 %; between 1e-10 and 1e-40 the
    relative error times ln(1/alpha) stays constant (convergence at rate 1/ln(1/alpha))."""
    X, y = _problem(NON_MONOTONE_SEED)
    m = DiagonalLinearNetwork(X, y)
    sq = [s for s in dt.saddle_sequence(X, y) if s.t < 10.0]
    assert [s.support for s in sq] == [(), (0,), (0, 3), (0, 1, 3), (0, 1, 2)]
    pred = np.array([s.t for s in sq[1:]])
    scaled = []
    for alpha in (1e-10, 1e-40):
        L = np.log(1.0 / alpha)
        taus = np.linspace(0.0, sq[-1].t + 1.0, 4001)
        tr = integrate(m, m.small_init(alpha), taus[-1] * L, rtol=1e-10, atol=1e-14 * alpha,
                       saveat=SaveAt(ts=taus * L), grad_tol=0.0, max_steps=100_000)
        assert tr.status[0] == 1
        scaled.append((dt.loss_crossing_times(taus, tr.loss[0], sq) / pred - 1.0) * L)
    obs = dt.observed_saddle_sequence(taus, m.beta(tr.ys[0]), tr.loss[0])
    assert [(p.support, p.signs) for p in obs] == [(s.support, s.signs) for s in sq]
    assert np.max(np.abs(np.array([p.t_jump for p in obs[1:]]) / pred - 1.0)) < 0.05
    np.testing.assert_allclose(scaled[0][:2], scaled[1][:2], rtol=0.02)
