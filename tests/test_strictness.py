"""The strict / non-strict criterion against MEASURED Hessian inertia (an independent method).

The reference is the eigenvalue count of the dense Hessian of DeepLinearNetwork.canonical
(flowgeom.critical.hessian_inertia), at
- every sampled point of every chart family of every stratum (flowgeom.linear.charts), before and
  after a random layer gauge (the gauge keeps criticality and inertia, changes every matrix);
- mixed-rank critical points built independently here: the tight point plus random blocks on the
  unlearned coordinates, broken in >= 2 layers (so the end-to-end product and every gradient are
  unchanged), with random ranks, then gauged.
The strict witnesses are also checked directly: the direction they describe has v^T (hess L) v < 0,
computed by the model's Hessian-vector product.
"""

import numpy as np
import pytest

from flowgeom._validate import InputError
from flowgeom.critical.linearization import hessian_inertia
from flowgeom.linear.charts import apply_gauge, charts_for_stratum, random_gauge
from flowgeom.linear.strata import enumerate_strata
from flowgeom.linear.strictness import partial_product, saddle_strictness
from flowgeom.models.deep_linear import DeepLinearNetwork
from flowgeom.problem import Problem

CASES = [
    ((3, 3, 3, 3), (3.0, 2.0, 1.0)),
    ((4, 3, 3, 2), (2.0, 1.0)),
    ((5, 4, 3, 3, 2), (2.0, 0.7)),
    ((4, 4, 4, 4, 4), (2.0, 1.5, 1.0, 0.5)),
]


def _measured_kind(inr, rank, r_max):
    assert inr.decided, "inertia undecided: the reference itself is ambiguous"
    if inr.n_negative > 0:
        return "strict"
    return "minimum" if rank == r_max else "non_strict"


def _chart_points(widths, s, rng, per_family=3):
    prob = Problem.from_spectrum(np.array(s), widths)
    for st in enumerate_strata(prob):
        for ch in charts_for_stratum(prob, st.learned):
            for _ in range(per_family):
                th = ch.point(ch.sample(rng))
                yield st, ch.family, th


def _compare(widths, s, points, net):
    agree, disagree, seen = 0, [], {}
    for st, fam, th in points:
        res = saddle_strictness(widths, s, th)
        inr = hessian_inertia(net, th)
        meas = _measured_kind(inr, st.rank, min(widths))
        assert res.learned == st.learned
        seen.setdefault((st.label, fam), set()).add((meas, (inr.n_negative, inr.n_zero, inr.n_positive)))
        if res.kind == meas:
            agree += 1
        else:
            disagree.append((st.label, fam, res.describe, meas, inr.n_negative, inr.n_zero))
    return agree, disagree, seen


@pytest.mark.parametrize("widths, s", CASES)
def test_criterion_agrees_with_measured_inertia_on_every_chart_point(widths, s):
    rng = np.random.default_rng(17)
    net = DeepLinearNetwork.canonical(widths, np.array(s))
    pts = []
    for st, fam, th in _chart_points(widths, s, rng):
        pts.append((st, fam, th))
        G = random_gauge(widths, rng, scale=0.4)
        pts.append((st, fam + "+gauge", net.pack(apply_gauge(net.unpack(th), G))))
    for _, _, th in pts:
        assert np.linalg.norm(net.grad(th)) < 1e-9
    agree, disagree, _ = _compare(widths, s, pts, net)
    assert disagree == [] and agree == len(pts)


def test_origin_stratum_of_3333_holds_strict_and_non_strict_points():
    widths, s = CASES[0]
    rng = np.random.default_rng(5)
    net = DeepLinearNetwork.canonical(widths, np.array(s))
    pts = [(st, f, th) for st, f, th in _chart_points(widths, s, rng) if st.label == "{0}"]
    _agree, disagree, seen = _compare(widths, s, pts, net)
    assert disagree == []
    inertias = {t for v in seen.values() for t in v}
    assert ("strict", (4, 14, 9)) in inertias
    assert ("non_strict", (0, 22, 5)) in inertias


def _mixed_point(widths, s, S, rng):
    """Tight point of S plus random blocks on the unlearned coordinates, zero in >= 2 layers, gauged."""
    H = len(widths) - 2
    dy = widths[-1]
    r = len(S)
    c = np.asarray(s)[list(S)] ** (1.0 / (H + 1))
    zero = set(rng.choice(np.arange(1, H + 2), size=int(rng.integers(2, H + 2)), replace=False).tolist())
    W = []
    for j in range(1, H + 2):
        M = np.zeros((widths[j], widths[j - 1]))
        rows = [i for i in range(dy) if i not in S] if j == H + 1 else list(range(r, widths[j]))
        cols = [i for i in range(widths[0]) if i not in S] if j == 1 else list(range(r, widths[j - 1]))
        for a, i in enumerate(S):
            M[i if j == H + 1 else a, i if j == 1 else a] = c[a]
        if j not in zero and rows and cols:
            k = int(rng.integers(0, min(len(rows), len(cols)) + 1))
            blk = rng.standard_normal((len(rows), k)) @ rng.standard_normal((k, len(cols))) / np.sqrt(max(k, 1))
            M[np.ix_(rows, cols)] = blk
        W.append(M)
    return apply_gauge(W, random_gauge(widths, rng, scale=0.3))


@pytest.mark.parametrize("widths, s", CASES)
def test_criterion_agrees_at_mixed_rank_critical_points(widths, s):
    rng = np.random.default_rng(11)
    net = DeepLinearNetwork.canonical(widths, np.array(s))
    prob = Problem.from_spectrum(np.array(s), widths)
    pts = []
    for st in enumerate_strata(prob):
        for _ in range(6):
            th = net.pack(_mixed_point(widths, s, st.learned, rng))
            assert np.linalg.norm(net.grad(th)) < 1e-9
            pts.append((st, "mixed", th))
    agree, disagree, _ = _compare(widths, s, pts, net)
    assert disagree == [] and agree == len(pts)
    kinds = {saddle_strictness(widths, s, th).kind for _, _, th in pts}
    assert {"strict", "non_strict", "minimum"} <= kinds


def _hvp_quadratic(net, th, V):
    v = net.pack(V)
    return float(v @ net.hvp(th, v))


@pytest.mark.parametrize("widths, s", CASES[:2])
def test_pair_witness_is_a_direction_of_negative_curvature(widths, s):
    """Build the direction of the docstring from the returned pair and check v^T H v < 0 by HVP."""
    rng = np.random.default_rng(2)
    net = DeepLinearNetwork.canonical(widths, np.array(s))
    H = len(widths) - 2
    Sig = np.zeros((widths[-1], widths[0]))
    Sig[np.arange(widths[-1]), np.arange(widths[-1])] = s
    checked = 0
    for st, fam, th in _chart_points(widths, s, rng, per_family=2):
        res = saddle_strictness(widths, s, th)
        if res.witness != "pair":
            continue
        W = net.unpack(th)
        h1, h2 = res.layers
        E = Sig - partial_product(W, 1, H + 1)
        A, B = partial_product(W, h2 + 1, H + 1), partial_product(W, 1, h1 - 1)
        G = A.T @ E @ B.T
        M = partial_product(W, h1 + 1, h2 - 1)
        V = [np.zeros_like(Wj) for Wj in W]
        up, m, low = res.ranks
        w_vec = np.linalg.svd(G)[2][0]  # G w != 0
        if up < m:  # x in ker W_(H+1:h1+1) with M x != 0
            _, _, vt = np.linalg.svd(partial_product(W, h1 + 1, H + 1))
            ker = vt[up:].T
            x = ker @ np.linalg.svd(M @ ker)[2][0]
            V[h1 - 1] = 1e3 * np.outer(x, w_vec)
            V[h2 - 1] = np.outer(G @ w_vec, M @ x)
        else:  # z in ker W_(h2-1:1)^T with M^T z != 0
            u, _, _ = np.linalg.svd(partial_product(W, 1, h2 - 1))
            ker = u[:, low:]
            z = ker @ np.linalg.svd(M.T @ ker)[2][0]
            y = G @ w_vec
            V[h2 - 1] = 1e3 * np.outer(y, z)
            V[h1 - 1] = np.outer(M.T @ z, w_vec)
        q_plus, q_minus = _hvp_quadratic(net, th, V), _hvp_quadratic(net, th, [Vj * (1 if j == h1 - 1 else -1) for j, Vj in enumerate(V)])
        assert min(q_plus, q_minus) < 0
        checked += 1
    assert checked >= 3


def test_rotation_witness_curvature_matches_hvp():
    """Non-top S: Q along the rotation velocity equals -2 s_i (s_k - s_i) (closed form vs HVP)."""
    widths, s = (3, 3, 3, 3), (3.0, 2.0, 1.0)
    net = DeepLinearNetwork.canonical(widths, np.array(s))
    prob = Problem.from_spectrum(np.array(s), widths)
    th = charts_for_stratum(prob, (1,), families=["outer"])[0].point(
        charts_for_stratum(prob, (1,), families=["outer"])[0].sample(np.random.default_rng(0)))
    res = saddle_strictness(widths, s, th)
    assert res.witness == "rotation" and res.layers == (1, 0)
    i, k = res.layers
    W = net.unpack(th)
    J = np.zeros((3, 3))
    J[k, i], J[i, k] = 1.0, -1.0  # d/dt of the rotation taking e_i toward e_k
    V = [np.zeros_like(Wj) for Wj in W]
    V[-1] = J @ W[-1]
    V[0] = W[0] @ J.T
    assert _hvp_quadratic(net, th, V) == pytest.approx(res.curvature, rel=1e-9)


def test_h1_is_always_strict_below_full_rank():
    widths, s = (4, 3, 2), (2.0, 1.0)
    rng = np.random.default_rng(0)
    kinds = {}
    for st, fam, th in _chart_points(widths, s, rng):
        kinds.setdefault(st.rank, set()).add(saddle_strictness(widths, s, th).kind)
    assert kinds == {0: {"strict"}, 1: {"strict"}, 2: {"minimum"}}


def test_batch_and_list_inputs_and_errors():
    widths, s = CASES[0]
    net = DeepLinearNetwork.canonical(widths, np.array(s))
    th = np.stack([net.pack([np.zeros((3, 3))] * 3), net.random_params(np.random.default_rng(0))])
    out = saddle_strictness(widths, s, th)
    assert [o.kind for o in out] == ["non_strict", "not_critical"]
    assert saddle_strictness(widths, s, net.unpack(th[0])).kind == "non_strict"
    with pytest.raises(InputError, match="`singular_values`"):
        saddle_strictness(widths, (1.0, 2.0, 3.0), th[0])
    with pytest.raises(InputError, match="`W`"):
        saddle_strictness(widths, s, th[0][:-1])


def test_strictness_columns_on_a_built_strata_dataset():
    from flowgeom.linear.measure import build_strata_dataset
    from flowgeom.linear.strictness import add_strictness_columns

    widths, s = CASES[0]
    ds = build_strata_dataset(Problem.from_spectrum(np.array(s), widths), points_per_stratum=1, seed=2,
                              local_dim=False, store_points=True)
    out = add_strictness_columns(ds)
    assert int(out["strictness_disagreements"].sum()) == 0
    assert bool(out["point_strictness_agrees"].all())
    kinds = set(out["point_strictness"].values.tolist())
    assert kinds == {"strict", "non_strict", "minimum"}
    with pytest.raises(InputError, match="`strata`"):
        add_strictness_columns(ds.drop_vars("point_theta"))
