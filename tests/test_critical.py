"""Tests of flowgeom.critical: strata enumeration, classification, parametrization, refinement, atlas."""

import itertools

import numpy as np
import pytest

from flowgeom import Problem
from flowgeom.critical import Stratum, classify_point, enumerate_strata, format_label, learned_set, parse_label


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
