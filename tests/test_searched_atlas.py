"""The searched atlas you can trust: coverage (Good–Turing), gradient-flat points, closed-form cross checks.

Independent references:
- Good–Turing: the exact expectations sum_k p_k (1 - p_k)^(T-1) (of singletons / T) and sum_k p_k (1 - p_k)^T
  (of the missing mass) of a synthetic sampler with known class probabilities, and the missing mass itself
  computed from the classes drawn;
- the accumulation curve against len(set(prefix)) of the drawn classes;
- gradient-flat points of F(x) + y^2 - z^2 with F'(x) = (x - 2)(x^2 + 1): F'' vanishes at x = 1/3 where
  |F'| = 50/27 (a gradient-flat point), x = 2 is a strict saddle of L (closed forms);
- the closed-form critical sets of a diagonal linear network (diagonal_theory.critical_sets) and of the deep
  linear network (flowgeom.linear.ClosedFormAtlas).
"""

import numpy as np
import pytest

from flowgeom import Problem
from flowgeom.critical import (
    SearchedAtlas,
    find_critical_points,
    refine_critical,
    strata_dataset,
)
from flowgeom.critical.refinement import RefineStatus, point_quality
from flowgeom.critical.search import CriticalSearch
from flowgeom.critical.coverage import good_turing_p_new, search_coverage
from flowgeom.linear import ClosedFormAtlas
from flowgeom.models import diagonal_theory as dt
from flowgeom.models.diagonal import DiagonalLinearNetwork
from flowgeom.models.mlp import mlp_for_problem


# ---------------------------------------------------------------------------- Good–Turing
def test_good_turing_is_unbiased_for_the_missing_mass():
    K, T, n_rep = 40, 60, 4000
    p = 1.0 / np.arange(1, K + 1) ** 1.3
    p /= p.sum()
    rng = np.random.default_rng(0)
    est, miss = np.empty(n_rep), np.empty(n_rep)
    for r in range(n_rep):
        draws = rng.choice(K, size=T, p=p)
        counts = np.bincount(draws, minlength=K)
        est[r] = good_turing_p_new(counts[counts > 0], T)
        miss[r] = p[counts == 0].sum()
    e_est = np.sum(p * (1 - p) ** (T - 1))
    e_miss = np.sum(p * (1 - p) ** T)
    se = est.std() / np.sqrt(n_rep)
    assert abs(est.mean() - e_est) < 4 * se
    assert abs(miss.mean() - e_miss) < 4 * miss.std() / np.sqrt(n_rep)
    # the bias sum_k p_k^2 (1 - p_k)^(T-1) is small against the missing mass itself
    assert 0 <= e_est - e_miss < 0.1 * e_miss
    assert abs(est.mean() - miss.mean()) < 0.1 * miss.mean() + 4 * se
    assert good_turing_p_new([], 0) == 1.0 and good_turing_p_new([1, 1, 3], 4) == 0.5


def test_accumulation_curve_and_singletons_of_a_search():
    rng = np.random.default_rng(3)
    a = rng.choice(6, size=25, p=[0.4, 0.3, 0.15, 0.1, 0.04, 0.01])
    a[[4, 9]] = -1  # two failed searches count as searches that found nothing
    fake = CriticalSearch(points=(), assignment=a, refine=None, settings={})
    cov = search_coverage(fake)
    ref = [len({x for x in a[: j + 1] if x >= 0}) for j in range(a.size)]
    np.testing.assert_array_equal(cov.curve_classes, ref)
    np.testing.assert_array_equal(cov.curve_searches, np.arange(1, 26))
    vals, counts = np.unique(a[a >= 0], return_counts=True)
    assert cov.classes == vals.size and cov.singletons == int(np.sum(counts == 1))
    assert cov.p_new == pytest.approx(np.sum(counts == 1) / 25)
    # units: starts of one search count once
    units = np.repeat(np.arange(5), 5)
    cov5 = search_coverage(CriticalSearch(points=(), assignment=a, refine=None, settings={}, units=units))
    assert cov5.searches == 5 and cov5.curve_classes[-1] == vals.size


# ---------------------------------------------------------------------------- gradient-flat points
class _FlatToy:
    r"""L = F(x) + y^2 - z^2, F(x) = x^4/4 - 2x^3/3 + x^2/2 - 2x, F'(x) = (x - 2)(x^2 + 1), F''(x) = (3x - 1)(x - 1)."""

    n_params = 3

    def loss(self, t):
        x, y, z = t[..., 0], t[..., 1], t[..., 2]
        return x**4 / 4 - 2 * x**3 / 3 + x**2 / 2 - 2 * x + y**2 - z**2

    def grad(self, t):
        x, y, z = t[..., 0], t[..., 1], t[..., 2]
        return np.stack([(x - 2) * (x**2 + 1), 2 * y, -2 * z], axis=-1)

    def hessian(self, t):
        t = np.asarray(t)
        H = np.zeros(t.shape[:-1] + (3, 3))
        H[..., 0, 0] = (3 * t[..., 0] - 1) * (t[..., 0] - 1)
        H[..., 1, 1], H[..., 2, 2] = 2.0, -2.0
        return H

    def hvp(self, t, v):
        return np.einsum("...ij,...j->...i", self.hessian(t), v)

    def conserved(self, t):
        return np.zeros(np.shape(t)[:-1] + (0,))


class _CubicSaddle(_FlatToy):
    """L = x^3 + y^2 - z^2: a degenerate saddle at 0 approached with the gradient in the near-kernel."""

    def loss(self, t):
        return t[..., 0] ** 3 + t[..., 1] ** 2 - t[..., 2] ** 2

    def grad(self, t):
        return np.stack([3 * t[..., 0] ** 2, 2 * t[..., 1], -2 * t[..., 2]], axis=-1)

    def hessian(self, t):
        H = super().hessian(t)
        H[..., 0, 0] = 6 * np.asarray(t)[..., 0]
        return H


def test_newton_stalls_at_a_gradient_flat_point_and_says_so():
    m = _FlatToy()
    starts = np.array([[0.3, 0.2, 0.1], [0.45, -0.1, 0.3], [2.2, 0.1, -0.1], [1.8, -0.3, 0.2]])
    r = refine_critical(m, starts)
    flat = RefineStatus.GRADIENT_FLAT
    np.testing.assert_array_equal(r.status, [flat, flat, RefineStatus.CONVERGED, RefineStatus.CONVERGED])
    assert "near-kernel" in flat.message
    np.testing.assert_allclose(r.theta[:2], [[1 / 3, 0, 0]] * 2, atol=1e-6)
    np.testing.assert_allclose(r.grad_norm[:2], 50 / 27, rtol=1e-9)
    np.testing.assert_allclose(r.flatness[:2], 1.0, atol=1e-9)
    np.testing.assert_allclose(r.theta[2:], [[2, 0, 0]] * 2, atol=1e-14)
    assert np.all(r.residual[2:] < 1e-14) and np.all(r.residual[:2] > 0.1)
    # the search lists the saddle as a critical point and the flat point apart, never as a saddle
    res = find_critical_points(m, starts, rng=np.random.default_rng(0))
    assert [(p.kind, p.inertia) for p in res.points] == [("strict_saddle", (1, 0, 2))]
    assert [p.kind for p in res.flat_points] == ["gradient_flat"] and res.flat_points[0].count == 2
    np.testing.assert_array_equal(res.flat_assignment, [0, 0, -1, -1])
    atlas = SearchedAtlas(m, res)
    kinds = {cs.label: cs.kind for cs in atlas.sets()}
    assert sorted(kinds.values()) == ["gradient_flat", "strict_saddle"]
    fl = next(cs for cs in atlas.sets() if cs.kind == "gradient_flat")
    assert fl.points["grad_flatness"][0] == pytest.approx(1.0, abs=1e-9)
    assert fl.points["grad_norm"][0] == pytest.approx(50 / 27, rel=1e-9)
    th = r.theta[:1]
    assert atlas.locate(th, m.loss(th))[0] == -3  # never located: it is not a critical point
    sad = next(cs for cs in atlas.sets() if cs.kind == "strict_saddle")
    assert atlas.locate(r.theta[2:3], m.loss(r.theta[2:3]))[0] == sad.key
    ds = strata_dataset(atlas)
    assert "gradient_flat" in list(ds.kind.values) and "point_grad_flatness" in ds


def test_a_degenerate_saddle_is_never_marked_gradient_flat():
    # on the way to 0 the gradient (3x^2, 0, 0) lies in the near-kernel (6x << 2), yet the point is critical
    m = _CubicSaddle()
    rng = np.random.default_rng(1)
    starts = 0.5 * rng.standard_normal((20, 3))
    r = refine_critical(m, starts)
    assert not np.any(r.status == RefineStatus.GRADIENT_FLAT)
    assert np.all(r.converged) and np.all(r.grad_norm < 1e-11)
    # along the way the flatness is ~1: the status, not the measure alone, decides
    _, _, flat = point_quality(m, np.array([[1e-5, 0.0, 0.0]]))
    assert flat[0] == pytest.approx(1.0)
    res = find_critical_points(m, starts, rng=rng, measure_dimension=False)
    assert res.flat_points == () and [p.n_negative for p in res.points] == [1]


# ---------------------------------------------------------------------------- diagonal linear network
def test_searched_atlas_of_a_diagonal_network_is_complete_and_says_so():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((12, 3))
    y = X @ np.array([2.0, -1.0, 0.5]) + 0.05 * rng.standard_normal(12)
    m = DiagonalLinearNetwork(X, y)
    atlas = SearchedAtlas(m, n_starts=160, max_starts=160, init_scale=2.0, seed=0, n_steps=1000)
    cov = atlas.coverage()
    assert cov.searches == 160 and cov.rounds == 1
    assert cov.p_new < 0.05 and cov.reached
    sets = atlas.sets()
    closed = dt.critical_sets(m)
    assert len(sets) == len(closed) == 8
    for c in closed:
        (cs,) = [s for s in sets if abs(s.critical_value - c.loss) <= 1e-9 * (1 + c.loss)]
        assert cs.inertia == c.inertia
        assert cs.kind == ("global_min" if c.is_minimum else "strict_saddle")
        np.testing.assert_allclose(m.beta(cs.points["theta"][0]), c.beta, atol=1e-8)
        assert np.all(cs.points["refine_residual"] < 1e-12) and cs.info["n_searches"] >= 1
    ds = strata_dataset(atlas)
    assert ds.attrs["coverage_p_new"] == pytest.approx(cov.p_new)
    assert ds.attrs["coverage_target"] == 0.05 and ds.attrs["coverage_searches"] == 160
    assert list(ds.attrs["coverage_curve_classes"])[-1] == 8 == cov.curve_classes[-1]
    assert np.all(np.diff(ds.attrs["coverage_curve_classes"]) >= 0)
    for v in ("count", "singleton", "n_searches", "point_grad_norm", "point_refine_residual", "point_grad_flatness"):
        assert v in ds
    assert int(ds.singleton.sum()) == cov.singletons


def test_budget_is_raised_until_the_estimate_is_below_target():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((12, 3))
    y = X @ np.array([2.0, -1.0, 0.5]) + 0.05 * rng.standard_normal(12)
    m = DiagonalLinearNetwork(X, y)
    one = SearchedAtlas(m, n_starts=8, max_starts=8, init_scale=2.0, seed=4, n_steps=300)
    raised = SearchedAtlas(m, n_starts=8, max_starts=64, coverage_target=0.05, init_scale=2.0, seed=4, n_steps=300)
    c1, c2 = one.coverage(), raised.coverage()
    assert c1.rounds == 1 and c1.p_new > 0.05  # a small batch leaves singletons
    assert c2.rounds > 1 and c2.searches == 8 * c2.rounds
    assert c2.reached or c2.searches == 64
    assert len(c2.curve_classes) == c2.searches and c2.classes >= c1.classes
    # the first batch is the same draw: the curve starts the same way
    np.testing.assert_array_equal(c2.curve_classes[:8], c1.curve_classes)


# ---------------------------------------------------------------------------- deep linear network
def test_linear_mlp_searched_atlas_reproduces_the_closed_form():
    pb = Problem.from_spectrum([3.0, 2.0, 1.0], (5, 4, 3))
    m = mlp_for_problem(pb, "linear")
    atlas = SearchedAtlas(m, n_starts=24, max_starts=24, seed=0)
    closed = ClosedFormAtlas(pb)
    closed.measure()
    ref = {round(cs.critical_value, 9): cs for cs in closed.sets()}
    found = 0
    for cs in atlas.sets():
        c = ref[round(cs.critical_value, 9)]  # every class is a closed-form stratum
        assert cs.inertia == c.inertia, (cs.label, c.label)
        assert cs.kind == c.kind, (cs.label, c.label)
        found += 1
    assert found >= 4
