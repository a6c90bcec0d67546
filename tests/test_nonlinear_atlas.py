"""Tests for flowgeom.nonlinear_atlas: the strata/basins/transitions Datasets of nonlinear networks.

Independent references:
- the deep linear network in closed form: critical values 1/2 sum_{i not in S} s_i^2 and the strata
  Dataset of flowgeom.critical.build_strata_dataset (charts of Lemma 2, not a search), which the
  *linear* MLP run through the nonlinear pipeline must reproduce;
- DeepLinearNetwork's loss/gradient/HVP (its own tests check them by finite differences) for
  `mlp_for_problem(..., "linear")`;
- complex-step gradients (h = 1e-30) at the representatives;
- the Taylor expansion tanh(z) = z + O(z^3): the tanh Hessian at the origin equals the linear one.
"""

import numpy as np
import pytest

from flowgeom import Problem
from flowgeom.basins.classifiers import LIMIT_UNCLASSIFIED
from flowgeom.linear.measure import build_strata_dataset, strata_table
from flowgeom.critical.linearization import hessian_inertia
from flowgeom.nonlinear_atlas import (
    CriticalClassClassifier,
    CriticalClassIdentifier,
    mlp_for_problem,
    nonlinear_atlas,
    nonlinear_strata_dataset,
    search_for_atlas,
)

DESIGN_STRATA_VARS = (
    "n_negative", "n_zero", "n_positive", "manifold_dim", "morse_bott", "stable_codim", "kind",
    "paper_dim_bound", "paper_escape_bound", "paper_codim_bound",
)


def _cs_grad(model, theta, h=1e-30):
    return np.array([model.loss(theta + 1j * h * e).imag / h for e in np.eye(model.n_params)])


def test_linear_mlp_is_the_canonical_network():
    pb = Problem.from_spectrum((3.0, 2.0, 1.0), (5, 4, 3))
    mlp, net = mlp_for_problem(pb, "linear"), pb.network()
    rng = np.random.default_rng(0)
    th, v = rng.standard_normal((2, 4, net.n_params))
    np.testing.assert_allclose(mlp.loss(th), net.loss(th), rtol=1e-13)
    np.testing.assert_allclose(mlp.grad(th), net.grad(th), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(mlp.hvp(th, v), net.hvp(th, v), rtol=1e-12, atol=1e-11)


def test_linear_mlp_on_data_is_the_original_network():
    rng = np.random.default_rng(1)
    X, Y = rng.standard_normal((4, 9)), rng.standard_normal((2, 9))
    pb = Problem.from_data(X, Y, (4, 3, 2))
    mlp, net = mlp_for_problem(pb, "linear"), pb.network("original")
    th = rng.standard_normal((3, net.n_params))
    np.testing.assert_allclose(mlp.loss(th), net.loss(th), rtol=1e-12)
    np.testing.assert_allclose(mlp.grad(th), net.grad(th), rtol=1e-11, atol=1e-11)
    with pytest.raises(TypeError, match="`problem`"):
        mlp_for_problem(X, "tanh")


@pytest.fixture(scope="module")
def linear_case():
    pb = Problem.from_spectrum((2.0, 1.0), (3, 2, 2))
    m = mlp_for_problem(pb, "linear")
    search = search_for_atlas(m, n_starts=24, seed=3)
    return pb, m, search, nonlinear_strata_dataset(m, search, seed=3)


def test_linear_mlp_classes_match_the_closed_form_atlas(linear_case):
    pb, m, search, ds = linear_case
    ref = build_strata_dataset(pb, seed=0)
    ref_values = ref["critical_value"].values
    vals = ds["critical_value"].values
    assert np.all(np.diff(vals) < 0)  # c0 highest
    assert list(ds["label"].values) == [f"c{k}" for k in range(vals.size)]
    assert vals.size >= 3
    for k, L in enumerate(vals):
        j = int(np.argmin(np.abs(ref_values - L)))
        assert abs(ref_values[j] - L) < 1e-12, (L, ref_values)
        for name in ("n_negative", "n_zero", "n_positive", "manifold_dim", "morse_bott", "stable_codim", "rank"):
            assert ds[name].values[k] == ref[name].values[j], (name, L)
        if ref["kind"].values[j] == "global_min":
            assert ds["kind"].values[k] == "global_min" and bool(ds["certified"].values[k])
        else:
            assert ds["kind"].values[k] == "strict_saddle" and not bool(ds["certified"].values[k])
    for name in DESIGN_STRATA_VARS + ("certified", "representative"):
        assert name in ds
    assert np.all(ds["paper_dim_bound"].values == -1)
    assert "c0" in strata_table(ds)  # the linear atlas' table reads it


def test_linear_classifier_maps_symmetric_images_and_rejects_unknown_values(linear_case):
    pb, m, search, ds = linear_case
    clf = CriticalClassClassifier.from_strata(m, ds, search=search)
    reps = ds["representative"].values
    rng = np.random.default_rng(4)
    imgs = np.stack([m.random_symmetry(r, rng) for r in reps])
    np.testing.assert_array_equal(clf.classify(imgs, m.loss(imgs)), np.arange(reps.shape[0]))
    # a value far from every class is unclassified, never forced into a class
    out = clf.classify(reps[:1], np.array([ds["critical_value"].values[0] + 0.123]))
    assert out[0] == LIMIT_UNCLASSIFIED


@pytest.fixture(scope="module")
def tanh_atlas():
    pb = Problem.from_spectrum((1.0,), (2, 2, 1))
    m = mlp_for_problem(pb, "tanh")
    res = nonlinear_atlas(m, n_starts=12, n_samples=12, seed=0, transition_samples=4, scheduler="synchronous",
                          attrs=pb.attrs())
    return pb, m, res


def test_tanh_atlas_end_to_end(tanh_atlas):
    pb, m, res = tanh_atlas
    ds, b, tr = res["strata"], res["basins"], res["transitions"]
    for name in DESIGN_STRATA_VARS:
        assert name in ds
    for rep in ds["representative"].values:
        assert np.linalg.norm(_cs_grad(m, rep)) < 1e-12
    assert ds.attrs["widths"] == [2, 2, 1] and ds.attrs["singular_values"] == [1.0] and ds.attrs["whitened"]
    # the origin lies in a class (here the family {W_2 = 0, W_1 e_1 = 0}), whose inertia is the
    # linear network's at the origin (tanh(z) = z + O(z^3))
    zero = np.zeros((1, m.n_params))
    k = int(CriticalClassClassifier.from_strata(m, ds).classify(zero, m.loss(zero))[0])
    assert k >= 0
    lin = hessian_inertia(pb.network(), zero[0], method="dense")
    assert hessian_inertia(m, zero[0], method="dense").triple == lin.triple
    assert (ds["n_negative"].values[k], ds["n_zero"].values[k], ds["n_positive"].values[k]) == lin.triple
    # basins: every sample accounted for; labels and values are the strata's
    assert list(b["label"].values) == list(ds["label"].values)
    total = b["count"].sum() + b["count_unconverged"] + b["count_diverged"] + b["count_unclassified"]
    assert int(total) == 12
    assert np.all((b["fraction"] >= 0) & (b["fraction"] <= 1))
    conv = b["limit"].values >= 0
    np.testing.assert_allclose(b["final_loss"].values[conv], ds["critical_value"].values[b["limit"].values[conv]],
                               atol=1e-6)
    # transitions: visits labelled by the classes; small initializations start at the origin class
    assert set(tr["stratum"].values) <= set(ds["label"].values) | {f"u{i}" for i in range(10)}
    first = [tr["stratum"].values[np.nonzero(tr["trajectory"].values == j)[0][0]]
             for j in range(4) if np.any(tr["trajectory"].values == j)]
    assert first and all(lab == ds["label"].values[k] for lab in first)


def test_identifier_refines_plateau_points_and_rejects_passages(tanh_atlas):
    pb, m, res = tanh_atlas
    ds = res["strata"]
    ident = CriticalClassIdentifier(CriticalClassClassifier.from_strata(m, ds))
    rng = np.random.default_rng(2)
    for k, rep in enumerate(ds["representative"].values):
        node = ident(rep + 1e-4 * rng.standard_normal(rep.shape), float(m.loss(rep)))
        assert node is not None and node.label == ds["label"].values[k]
        assert node.inertia == (ds["n_negative"].values[k], ds["n_zero"].values[k], ds["n_positive"].values[k])
    assert {n.label for n in ident.nodes} == set(ds["label"].values)


def test_saved_datasets_round_trip(tanh_atlas, tmp_path):
    from flowgeom.io import load_dataset, save_dataset

    for name, ds in tanh_atlas[2].items():
        back = load_dataset(save_dataset(ds, tmp_path / f"{name}.nc"))
        assert set(back.data_vars) == set(ds.data_vars)


def test_bad_inputs(linear_case):
    pb, m, search, ds = linear_case
    with pytest.raises(ValueError, match="`n_starts`"):
        search_for_atlas(m, n_starts=2)
    with pytest.raises(TypeError, match="`search`"):
        nonlinear_strata_dataset(m, ds)
    with pytest.raises(ValueError, match="`n_samples`"):
        nonlinear_atlas(m, n_samples=0)
    with pytest.raises(ValueError, match="`labels`"):
        CriticalClassClassifier(m, (), (), (), (), ())


def test_fig08_quick_origin_inertia_agrees():
    # the study's own claim, on its CI-sized run: tanh and linear Hessians coincide at the origin
    import sys
    from pathlib import Path

    root = str(Path(__file__).resolve().parent.parent)
    if root not in sys.path:
        sys.path.insert(0, root)
    from studies import fig08_tanh_vs_linear as fig08

    ds = fig08.compute(quick=True)
    assert float(ds["hessian_max_diff"]) <= 1e-14
    np.testing.assert_array_equal(ds["inertia_linear"].values, ds["inertia_tanh"].values)
    # H = 1 canonical: the origin's eigenvalues are +-s_i, each d_1 times, and 0 (Saxe et al. 2014)
    s, d1 = np.array(fig08.S), fig08.WIDTHS[1]
    expected_nonzero = np.sort(np.concatenate([np.repeat(-s, d1), np.repeat(s, d1)]))
    eig = ds["eig_tanh"].values
    np.testing.assert_allclose(eig[np.abs(eig) > 1e-12], expected_nonzero, atol=1e-12)
    assert ds["tanh_path"].values.size == fig08.QUICK_CONFIG["n_trajectories"]
