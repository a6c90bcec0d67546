"""Tests of flowgeom.critical: strata enumeration, classification, parametrization, refinement, atlas."""

import itertools

import numpy as np
import pytest

from flowgeom import Problem
from flowgeom.linear.strata import (
    Stratum,
    classify_point,
    enumerate_strata,
    format_label,
    learned_set,
    parse_label,
)


@pytest.fixture
def pb322():
    return Problem.from_spectrum([2.0, 1.0], (3, 2, 2))


@pytest.fixture
def pb543():
    return Problem.from_spectrum([3.0, 2.0, 1.0], (5, 4, 3))


# ---------------------------------------------------------------------------- enumeration
def test_enumerate_all_sets_sorted_and_valued(pb543):
    strata = enumerate_strata(pb543)
    s = np.array([3.0, 2.0, 1.0])
    assert len(strata) == 2**3
    assert {st.learned for st in strata} == {
        S for r in range(4) for S in itertools.combinations(range(3), r)
    }
    vals = [st.critical_value for st in strata]
    assert vals == sorted(vals, reverse=True)
    assert strata[0].label == "{}" and strata[-1].label == "{0,1,2}"
    for st in strata:
        # critical value from the definition, independently of the code: 1/2 sum of unlearned s^2
        expected = 0.5 * sum(s[i] ** 2 for i in range(3) if i not in st.learned)
        assert st.critical_value == pytest.approx(expected, rel=1e-15)
        # end-to-end is Sigma with the unlearned diagonal entries removed
        Sig = np.zeros((3, 5))
        for i in st.learned:
            Sig[i, i] = s[i]
        np.testing.assert_array_equal(st.end_to_end, Sig)
        assert st.rank == len(st.learned)
        assert st.kind == ("global_min" if st.rank == 3 else "strict_saddle")
        assert parse_label(st.label) == st.learned
        assert not st.end_to_end.flags.writeable


def test_enumerate_selection(pb543):
    assert [st.label for st in enumerate_strata(pb543, top_only=True)] == ["{}", "{0}", "{0,1}", "{0,1,2}"]
    r1 = enumerate_strata(pb543, ranks=[1])
    assert sorted(st.label for st in r1) == ["{0}", "{1}", "{2}"]
    assert [st.label for st in enumerate_strata(pb543, ranks=[2], top_only=True)] == ["{0,1}"]
    assert [st.label for st in enumerate_strata(pb543, sets=[(2, 0), (1,)])] == ["{1}", "{0,2}"]


def test_enumerate_bad_input(pb543):
    with pytest.raises(ValueError, match="`ranks`"):
        enumerate_strata(pb543, ranks=[4])
    with pytest.raises(ValueError, match="`sets`"):
        enumerate_strata(pb543, sets=[(0, 3)])
    with pytest.raises(ValueError, match="`sets` cannot be combined"):
        enumerate_strata(pb543, sets=[(0,)], ranks=[1])
    with pytest.raises(ValueError, match="max_strata"):
        enumerate_strata(pb543, max_strata=4)
    with pytest.raises(TypeError, match="`problem`"):
        enumerate_strata("not a problem")


def test_kind_deep_top_sets_non_strict():
    pb = Problem.from_spectrum([3.0, 2.0, 1.0], (4, 3, 3, 3))
    kinds = {st.label: st.kind for st in enumerate_strata(pb)}
    assert kinds["{0,1,2}"] == "global_min"
    assert kinds["{}"] == kinds["{0}"] == kinds["{0,1}"] == "non_strict_saddle"
    assert kinds["{1}"] == kinds["{0,2}"] == "strict_saddle"


def test_labels_roundtrip():
    assert format_label(()) == "{}"
    assert format_label((2, 0)) == "{0,2}"
    assert parse_label("{0,2}") == (0, 2)
    with pytest.raises(ValueError, match="`label`"):
        parse_label("0,2")
    with pytest.raises(ValueError, match="`rank`"):
        Stratum("{0}", (0,), 2, 0.0, np.zeros((2, 3)), "strict_saddle")


# ---------------------------------------------------------------------------- classification
def test_classify_point_exact_and_perturbed(pb543, rng):
    strata = enumerate_strata(pb543)
    for k, st in enumerate(strata):
        assert classify_point(pb543, st.end_to_end, strata) == k
        noisy = st.end_to_end + 1e-5 * rng.standard_normal(st.end_to_end.shape)
        assert classify_point(pb543, noisy, strata) == k
        assert learned_set(pb543, noisy) == st.learned
    batch = np.stack([st.end_to_end for st in strata])
    np.testing.assert_array_equal(classify_point(pb543, batch, strata), np.arange(len(strata)))
    # half-learned mode, off-diagonal mass, NaN: no stratum
    P = strata[-1].end_to_end.copy()
    P[1, 1] = 1.0
    assert classify_point(pb543, P, strata) == -1
    P = strata[-1].end_to_end.copy()
    P[0, 4] = 0.1
    assert classify_point(pb543, P, strata) == -1
    assert classify_point(pb543, np.full((3, 5), np.nan), strata) == -1
    # a stratum that was not selected
    sub = enumerate_strata(pb543, top_only=True)
    assert classify_point(pb543, strata[1].end_to_end, sub) == (
        -1 if not strata[1].is_top else sub.index(strata[1])
    )


def test_classify_point_bad_input(pb543, pb322):
    strata = enumerate_strata(pb543)
    with pytest.raises(ValueError, match="`atol`"):
        classify_point(pb543, strata[0].end_to_end, strata, atol=0.6)
    with pytest.raises(ValueError, match="`end_to_end_canonical`"):
        classify_point(pb543, np.zeros((3, 4)), strata)
    with pytest.raises(ValueError, match="`strata`"):
        classify_point(pb322, np.zeros((2, 3)), strata)


# ---------------------------------------------------------------------------- charts (parametrization)
from flowgeom.critical import local_dimension, refine  # noqa: E402
from flowgeom.audit import add_paper_columns, paper_bounds  # noqa: E402
from flowgeom.linear import charts_for_stratum, make_chart, strata_table  # noqa: E402
from flowgeom.linear import build_strata_dataset as _build  # noqa: E402


def build_strata_dataset(pb, **kw):
    """The strata Dataset with the paper's columns joined (as the command line writes it)."""
    return add_paper_columns(_build(pb, **kw))

from flowgeom.models.deep_linear import DeepLinearNetwork  # noqa: E402

SHAPES = [(3, 2, 2), (4, 3, 2), (4, 4, 3), (6, 5, 4), (4, 3, 3, 2), (5, 4, 3, 3, 2)]


def _s(dy):
    return np.linspace(1.0, 2.0 + 0.5 * dy, dy)[::-1]


@pytest.mark.parametrize("widths", SHAPES, ids=lambda w: "x".join(map(str, w)))
def test_every_chart_point_is_critical_with_its_critical_value(widths, rng):
    dy = widths[-1]
    s = _s(dy)
    pb = Problem.from_spectrum(s, widths)
    net = DeepLinearNetwork.canonical(widths, s)
    for st in enumerate_strata(pb):
        for ch in charts_for_stratum(pb, st.learned):
            Z = ch.sample(rng, size=3)
            th = ch.point(Z)
            g = np.linalg.norm(net.grad(th), axis=-1)
            assert np.all(g < 1e-12 * max(1.0, s[0]) ** 2), (ch.label, g)
            # loss from the definition, independently of Stratum: 1/2 sum of unlearned s^2
            expected = 0.5 * sum(s[i] ** 2 for i in range(dy) if i not in st.learned)
            np.testing.assert_allclose(net.loss(th), expected, rtol=1e-13, atol=1e-13)
            P = net.end_to_end(th)
            assert all(classify_point(pb, P[k], [st]) == 0 for k in range(3))


def test_chart_jacobian_matches_finite_differences(rng):
    pb = Problem.from_spectrum([2.0, 1.0], (4, 3, 3, 2))
    for fam in ("outer", "tight"):
        ch = make_chart(pb, (0,), fam)
        z = ch.sample(rng)
        J = ch.jacobian(z)
        h = 1e-6
        for k in rng.choice(ch.n_free, size=5, replace=False):
            e = np.zeros(ch.n_free)
            e[k] = h
            fd = (ch.point(z + e) - ch.point(z - e)) / (2 * h)
            np.testing.assert_allclose(J[:, k], fd, atol=1e-7)


@pytest.mark.parametrize(
    "widths",
    [(3, 2, 2), (4, 3, 2), pytest.param((4, 4, 3), marks=pytest.mark.slow)],
    ids=lambda w: "x".join(map(str, w)),
)
def test_h1_chart_rank_equals_dimension_formula_and_refinement_cloud(widths, rng):
    dx, d1, dy = widths
    s = _s(dy)
    pb = Problem.from_spectrum(s, widths)
    net = pb.network()
    for st in enumerate_strata(pb):
        ch = make_chart(pb, st.learned)
        z = ch.sample(rng)
        r = st.rank
        # dimension of {C_{S^c}=0, A_{:,S^c}=0, Cbar Abar = D, Cbar B = 0}, counted by hand:
        # Cbar (r d1) + Abar fibre ((d1 - r) r) + B in ker Cbar ((d1 - r)(dx - dy))
        expected = r * d1 + (d1 - r) * r + (d1 - r) * (dx - dy)
        dim, gap = ch.tangent_dim(z)
        assert dim == expected and gap > 1e6
        ld = local_dimension(net, ch.point(z), rng=rng)
        assert ld.smooth and ld.dim == expected and ld.morse_bott
        # the tangent basis spans directions along which the gradient stays zero to second order
        T = ch.tangent_basis(z)
        assert T.shape[1] == expected
        Hm = net.hessian(ch.point(z))
        assert np.linalg.norm(Hm @ T) < 1e-10 * np.linalg.norm(Hm)
        # Lemma 3's number equals the measured dimension for every S with 1 <= r <= d_y - 1
        DC, US, PC = paper_bounds(widths, r)
        if 1 <= r <= dy - 1:
            assert DC == dim


def test_chart_bad_input(pb543):
    with pytest.raises(ValueError, match="`family`"):
        make_chart(pb543, (0,), "inner")
    with pytest.raises(ValueError, match="`learned`"):
        make_chart(pb543, (0, 5))
    with pytest.raises(ValueError, match="'origin'"):
        make_chart(pb543, (), "origin")  # H = 1
    ch = make_chart(pb543, (0,))
    with pytest.raises(ValueError, match="`z`"):
        ch.point(np.zeros(ch.n_free + 1))
    with pytest.raises(TypeError, match="`rng`"):
        ch.sample(0)


# ---------------------------------------------------------------------------- refinement
@pytest.mark.parametrize("method", ["dense", "lsmr"])
def test_refine_converges_to_nearby_critical_point(method, rng):
    pb = Problem.from_spectrum([3.0, 2.0, 1.0], (5, 4, 3))
    net = pb.network()
    strata = enumerate_strata(pb)
    for st in strata:
        ch = make_chart(pb, st.learned)
        th = ch.point(ch.sample(rng))
        start = th + 1e-3 * rng.standard_normal(th.size)
        res = refine(net, start, method=method)
        assert res.converged and res.grad_norm <= 1e-12
        assert res.loss == pytest.approx(st.critical_value, abs=1e-10)
        assert res.displacement < 1e-2  # a nearby point, not a far-away one
        assert classify_point(pb, net.end_to_end(res.theta), strata) == strata.index(st)


def test_refine_reports_failure_as_status():
    pb = Problem.from_spectrum([2.0, 1.0], (3, 2, 2))
    net = pb.network()
    res = refine(net, np.full(net.n_params, np.nan))
    assert res.status == "nonfinite" and not res.converged
    res = refine(net, np.ones(net.n_params), max_iter=0)
    assert res.status == "max_iter"
    with pytest.raises(ValueError, match="`method`"):
        refine(net, np.ones(net.n_params), method="bfgs")


def test_local_dimension_detects_non_manifold_point():
    # H = 2, the origin: every layer zero; the critical set there is a union of components
    # (two zero layers, outer family, ...): not a manifold, and the Hessian vanishes.
    pb = Problem.from_spectrum([2.0, 1.0], (3, 2, 2, 2))
    net = pb.network()
    ld = local_dimension(net, np.zeros(net.n_params))
    assert not ld.smooth and ld.dim == -1 and not ld.morse_bott


# ---------------------------------------------------------------------------- atlas Dataset
def test_strata_dataset_schema_and_invariants():
    pb = Problem.from_spectrum([2.0, 1.0], (3, 2, 2))
    ds = build_strata_dataset(pb, points_per_stratum=2, seed=3)
    for name in ("label", "rank", "critical_value"):
        assert name in ds.coords
    for name in ("n_negative", "n_zero", "n_positive", "manifold_dim", "morse_bott", "stable_codim", "kind",
                 "paper_dim_bound", "paper_escape_bound", "paper_codim_bound", "n_negative_min", "n_negative_max"):
        assert name in ds.data_vars, name
    for name in ("flowgeom_version", "widths", "singular_values", "depth_H", "whitened", "seed", "zero_rtol", "gap_min"):
        assert name in ds.attrs, name
    assert ds.attrs["seed"] == 3 and ds.attrs["depth_H"] == 1
    n = ds.attrs["dim_X"]
    assert np.all(ds.point_n_negative + ds.point_n_zero + ds.point_n_positive == n)
    assert np.all(ds.point_grad_norm < 1e-13) and np.all(ds.point_loss_error < 1e-13)
    assert np.all(ds.point_is_critical)
    assert list(ds.label.values) == ["{}", "{1}", "{0}", "{0,1}"]
    assert list(ds.kind.values) == ["strict_saddle"] * 3 + ["global_min"]
    assert bool(ds.morse_bott.all())
    # paper numbers only for H = 1 and 1 <= r <= d_y - 1
    assert list(ds.paper_dim_bound.values) == [-1, 4, 4, -1]
    assert list(ds.paper_escape_bound.values) == [-1, 6, 6, -1]
    assert list(ds.paper_codim_bound.values) == [-1, 2, 2, -1]
    # the measured contradiction: stratum {0} has one negative eigenvalue, codim 1 < 2
    i0 = list(ds.label.values).index("{0}")
    assert int(ds.stable_codim[i0]) == 1 and bool(ds.contradicts_paper[i0])
    table = strata_table(ds)
    assert "{0,1}" in table and "contradicts the paper" in table and "Lemma 4 violated" in table
    # reproducible from the seed
    ds2 = build_strata_dataset(pb, points_per_stratum=2, seed=3)
    np.testing.assert_array_equal(ds.point_theta.values, ds2.point_theta.values)


def test_strata_dataset_roundtrips_through_netcdf(tmp_path):
    import xarray as xr

    from flowgeom.io import load_dataset, save_dataset

    ds = build_strata_dataset(Problem.from_spectrum([2.0, 1.0], (3, 2, 2, 2)), points_per_stratum=1, local_dim=False)
    save_dataset(ds, tmp_path / "strata.nc")
    xr.testing.assert_identical(load_dataset(tmp_path / "strata.nc"), ds)


def test_strata_dataset_deep_points_differ_and_non_strict():
    pb = Problem.from_spectrum([2.0, 1.0], (3, 2, 2, 2))
    ds = build_strata_dataset(pb, points_per_stratum=1, local_dim=False)
    # the closed-form kinds of enumerate_strata agree with the measured ones
    assert list(ds.kind.values) == list(ds.kind_closed_form.values)
    lab = list(ds.label.values)
    i_empty, i0 = lab.index("{}"), lab.index("{0}")
    # {} holds the origin (Hessian zero: n_zero = dim X) and points with negative eigenvalues
    assert int(ds.n_zero_max[i_empty]) == ds.attrs["dim_X"]
    assert int(ds.n_negative_max[i_empty]) > 0 and int(ds.n_negative_min[i_empty]) == 0
    assert ds.kind.values[i_empty] == "non_strict_saddle" and ds.kind.values[i0] == "non_strict_saddle"
    assert int(ds.stable_codim[i_empty]) == -1  # undecided by linearization
    assert np.all(ds.point_n_negative + ds.point_n_zero + ds.point_n_positive == ds.attrs["dim_X"])
    assert np.all(ds.point_grad_norm < 1e-12)
    assert np.all(ds.paper_dim_bound == -1)  # the paper's Lemmas 3-4 are for H = 1


def test_strata_dataset_data_problem_matches_canonical(rng):
    X = rng.standard_normal((4, 9)) * np.array([[2.0], [1.0], [0.5], [1.5]])
    Y = rng.standard_normal((2, 4)) @ X + 0.2 * rng.standard_normal((2, 9))
    pb = Problem.from_data(X, Y, (4, 3, 2))
    assert not pb.whitened
    ds = build_strata_dataset(pb, points_per_stratum=1, local_dim=False)
    can = build_strata_dataset(Problem.from_spectrum(pb.singular_values, (4, 3, 2)), points_per_stratum=1,
                               local_dim=False)
    for name in ("n_negative", "n_zero", "n_positive", "manifold_dim", "stable_codim"):
        np.testing.assert_array_equal(ds[name].values, can[name].values)
    assert ds.attrs["whitened"] is False or ds.attrs["whitened"] == 0
    assert ds.attrs["loss_offset"] == pytest.approx(pb.loss_offset)


def test_strata_dataset_bad_input(pb322):
    with pytest.raises(ValueError, match="`points_per_stratum`"):
        build_strata_dataset(pb322, points_per_stratum=0)
    with pytest.raises(ValueError, match="`local_dim`"):
        build_strata_dataset(pb322, local_dim="yes")
