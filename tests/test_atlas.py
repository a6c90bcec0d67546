"""The atlas seam: the contract, the one kind rule, and the two implementations agreeing.

Independent references: the closed-form strata of the paper (learned sets, critical values
1/2 sum_{i not in S} s_i^2 recomputed here), critical points built by hand (balanced diagonal
points), and the closed form against the searched atlas of the same network.
"""

import importlib
import itertools
import pickle
import pkgutil

import numpy as np
import pytest

import flowgeom
from flowgeom import Problem
from flowgeom.critical import KINDS, UNCLASSIFIED, Atlas, CriticalSet, SearchedAtlas, set_kind
from flowgeom.linear import ClosedFormAtlas
from flowgeom.linear.atlas import key_learned, learned_key


def test_no_public_name_shadows_a_submodule():
    for info in pkgutil.walk_packages(flowgeom.__path__, "flowgeom."):
        if info.name.endswith("jax_model"):
            continue
        parent, _, child = info.name.rpartition(".")
        mod = importlib.import_module(parent)
        sub = importlib.import_module(info.name)
        if hasattr(mod, child):
            assert getattr(mod, child) is sub, f"{parent}.{child} is not the submodule {info.name}"


def test_kind_rule():
    # strict: every measured, decided point has a negative eigenvalue
    assert set_kind([2, 1], [True, True], [True, True]) == "strict_saddle"
    # known not a minimum, a point with n_- = 0: non-strict
    assert set_kind([2, 0], [True, False], [True, True], minimum=False) == "non_strict_saddle"
    # second order decides a local minimum only when Morse-Bott everywhere
    assert set_kind([0, 0], [True, True], [True, True]) == "local_min"
    assert set_kind([0, 0], [True, False], [True, True]) == "degenerate"
    assert set_kind([0], [False], [False]) == "undecided"
    assert set_kind([0], [True], [True], global_min=True) == "global_min"
    with pytest.raises(ValueError, match="`kind`"):
        CriticalSet(key=0, label="x", critical_value=0.0, kind="maximum")
    assert set(KINDS) >= {"global_min", "strict_saddle", "non_strict_saddle"}


@pytest.mark.parametrize("dy", [3, 5])
def test_keys_are_learned_set_bit_masks(dy):
    for r in range(dy + 1):
        for S in itertools.combinations(range(dy), r):
            assert key_learned(learned_key(S), dy) == S


def _balanced(problem, S):
    """A critical point of stratum S by hand: W_j = diag(s_i^(1/(H+1)), i in S) (canonical coordinates)."""
    H = problem.depth_H
    W = []
    w = problem.widths
    for j in range(1, H + 2):
        Wj = np.zeros((w[j], w[j - 1]))
        for i in S:
            Wj[i, i] = problem.singular_values[i] ** (1.0 / (H + 1))
        W.append(Wj)
    return W


@pytest.mark.parametrize("widths", [(4, 3, 3), (4, 3, 3, 3)])
def test_closed_form_atlas_contract(widths):
    s = np.array([3.0, 2.0, 1.0])
    pb = Problem.from_spectrum(s, widths)
    atlas = ClosedFormAtlas(pb)
    assert isinstance(atlas, Atlas)
    sets = atlas.sets()
    assert len(sets) == 2**3
    values = [cs.critical_value for cs in sets]
    assert values == sorted(values, reverse=True)
    net = atlas.model
    pts, want = [], []
    for cs in sets:
        S = key_learned(cs.key, 3)
        assert cs.critical_value == pytest.approx(0.5 * sum(s[i] ** 2 for i in range(3) if i not in S))
        assert cs.label == "{" + ",".join(map(str, S)) + "}"
        pts.append(net.pack(_balanced(pb, S)))
        want.append(cs.key)
    pts = np.array(pts)
    assert np.max(np.linalg.norm(net.grad(pts), axis=-1)) < 1e-12
    np.testing.assert_array_equal(atlas.locate(pts, net.loss(pts)), want)
    # picklable, and the keys are the same after the round trip (worker processes)
    back = pickle.loads(pickle.dumps(atlas))
    np.testing.assert_array_equal(back.locate(pts, net.loss(pts)), want)
    # the product alone is not enough: a loss away from the critical value is unclassified
    assert atlas.locate(pts[:1], net.loss(pts[:1]) + 0.3)[0] == UNCLASSIFIED
    # a plateau point near a saddle (product within 0.1 s_min) is located only in plateau mode
    near = pts[-2] * (1 - 0.005)  # product off by 1%: > the limit tolerance 1e-3 s_max, < 0.1 s_min
    assert atlas.locate(near[None], net.loss(near[None]))[0] == UNCLASSIFIED
    assert atlas.locate(near[None], net.loss(near[None]), plateau=True)[0] == want[-2]


def test_closed_form_atlas_measures_on_demand_and_scales_with_dy():
    dy = 14  # 16384 strata: listed lazily, the top chain only
    widths = (16, 15, dy)
    pb = Problem.from_spectrum(np.linspace(3.0, 1.0, dy), widths)
    atlas = ClosedFormAtlas(pb, points_per_stratum=1, local_dim=False, chart_rank=False)
    assert atlas.n_strata_total == 2**dy
    assert len(atlas.sets()) == dy + 1 and not any(cs.measured for cs in atlas.sets())
    key = learned_key((0, 3))  # not listed: materialised on demand
    assert atlas.get(key).label == "{0,3}" and len(atlas.sets()) == dy + 2
    (cs,) = atlas.measure([learned_key(range(dy))])
    assert cs.measured and cs.kind == "global_min" and cs.inertia[0] == 0


def test_searched_atlas_of_a_linear_mlp_reproduces_the_closed_form():
    """Cross check: the search on the linear-activation MLP (= the canonical deep linear loss) finds
    critical values and inertia of the closed-form strata."""
    pb = Problem.from_spectrum([3.0, 2.0, 1.0], (3, 3, 3))
    mlp = flowgeom.mlp_for_problem(pb, "linear")
    searched = SearchedAtlas(mlp, n_starts=24, seed=2)
    closed = ClosedFormAtlas(pb)
    closed.measure()
    by_value = {round(cs.critical_value, 8): cs for cs in closed.sets()}
    assert len(searched.sets()) >= 4
    for cs in searched.sets():
        ref = by_value[round(cs.critical_value, 8)]
        assert cs.inertia == ref.inertia, (cs.label, ref.label)
        assert cs.rank == ref.rank
        assert cs.kind == ("global_min" if ref.kind == "global_min" else "strict_saddle")
