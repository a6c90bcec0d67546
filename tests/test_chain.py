"""The jump-chain model of the transitions (flowgeom.transitions.chain).

References used as independent checks: the gambler's ruin closed forms (Feller, An Introduction to
Probability Theory, vol. I, ch. XIV) for N, B and the expected duration; the series N = sum_k Q^k;
direct averages over the visit sequences (the maximum-likelihood chain reproduces the empirical
absorption fractions, jump counts and plateau times exactly); the exact basin of a tilted double
well (the sign of x0 - x_saddle) and flowgeom.basins.sample_basins on independent samples.
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass

import numpy as np
import pytest
from scipy.stats import norm

from flowgeom import schema
from flowgeom._validate import InputError
from flowgeom.transitions import build_transition_graph, transitions_dataset
from flowgeom.transitions.chain import (
    JumpChain,
    JumpChainWarning,
    absorbing_chain,
    jump_chain,
    to_deeptime,
)
from flowgeom.transitions.dataset import chain_dataset, chain_from_dataset
from flowgeom.transitions.detect import Visits
from flowgeom.transitions.identify import StratumNode


# ----------------------------------------------------------------------------- helpers
def _visits(paths, nodes, dwell=None, final_last=True):
    """Visits along the given label paths; dwell(j, k) is the flow time of the k-th visit of path j."""
    tr, st, te, tx, fi = [], [], [], [], []
    for j, p in enumerate(paths):
        t = 0.0
        for k, s in enumerate(p):
            d = 1.0 if dwell is None else dwell(j, k)
            tr.append(j), st.append(s), te.append(t), tx.append(t + d), fi.append(final_last and k == len(p) - 1)
            t += d
    n = len(tr)
    return Visits(np.array(tr, dtype=np.int64), np.array(st, dtype=object), np.array(te), np.array(tx), np.zeros(n),
                  np.zeros(n), np.array(fi, dtype=bool), np.full(n, np.nan), len(paths), nodes=tuple(nodes))


def _ruin_nodes(M):
    # states 0..M; 0 and M are the "minima"; critical values decreasing in the label order used
    return [StratumNode(str(i), critical_value=float(M - i) if 0 < i < M else -1.0 - i,
                        kind="global_min" if i in (0, M) else "strict_saddle") for i in range(M + 1)]


def _ruin_paths(M, p, start, n, rng):
    paths = []
    for _ in range(n):
        i, path = start, [str(start)]
        while 0 < i < M:
            i += 1 if rng.random() < p else -1
            path.append(str(i))
        paths.append(path)
    return paths


def _ruin_closed_form(M, p):
    """Absorption at M and expected duration from i = 1..M-1 (Feller XIV.2-3)."""
    q = 1.0 - p
    i = np.arange(1, M)
    if p == 0.5:
        return i / M, i * (M - i)
    r = q / p
    win = (1 - r**i) / (1 - r**M)
    return win, i / (q - p) - M / (q - p) * win


def _ruin_P(M, p):
    P = np.zeros((M + 1, M + 1))
    P[0, 0] = P[M, M] = 1.0
    for i in range(1, M):
        P[i, i + 1], P[i, i - 1] = p, 1 - p
    return P


# ----------------------------------------------------------------------------- closed forms
@pytest.mark.parametrize("M,p", [(4, 0.5), (5, 0.4), (6, 0.7)])
def test_fundamental_matrix_matches_gamblers_ruin(M, p):
    P = _ruin_P(M, p)
    absorbing = np.zeros(M + 1, dtype=bool)
    absorbing[[0, M]] = True
    N, B, m, tau = absorbing_chain(P, absorbing)
    win, duration = _ruin_closed_form(M, p)
    np.testing.assert_allclose(B[:, 1], win, rtol=1e-12)
    np.testing.assert_allclose(B[:, 0], 1 - win, rtol=1e-12)
    np.testing.assert_allclose(m, duration, rtol=1e-12)
    np.testing.assert_allclose(tau, duration, rtol=1e-12)  # unit dwell
    Q = P[1:M, 1:M]
    series = sum(np.linalg.matrix_power(Q, k) for k in range(4000))
    np.testing.assert_allclose(N, series, rtol=1e-10, atol=1e-12)
    d = np.linspace(0.5, 2.0, M + 1)
    np.testing.assert_allclose(absorbing_chain(P, absorbing, d)[3], N @ d[1:M], rtol=1e-12)


def test_trapped_states_have_no_absorption_numbers():
    # 0 -> {1, 3}; 1 <-> 2 closed; 3 absorbing; 4 -> 3
    P = np.zeros((5, 5))
    P[0, 1] = P[0, 3] = 0.5
    P[1, 2] = P[2, 1] = 1.0
    P[3, 3] = 1.0
    P[4, 3] = 1.0
    absorbing = np.array([False, False, False, True, False])
    N, B, m, tau = absorbing_chain(P, absorbing)
    assert np.isnan(B[:3]).all() and np.isnan(m[:3]).all() and np.isnan(tau[:3]).all()
    assert B[3, 0] == 1.0 and m[3] == 1.0


# ----------------------------------------------------------------------------- estimation
def test_mle_chain_reproduces_the_empirical_averages():
    """With every path complete, pi0 B, pi0 N 1 and pi0 N d are the fractions, mean jumps and mean plateau time."""
    M, p = 5, 0.45
    rng = np.random.default_rng(11)
    paths = [pp for s in (1, 2, 3) for pp in _ruin_paths(M, p, s, 60, rng)]
    dw = rng.exponential(1.0, size=(len(paths), max(len(pp) for pp in paths)))
    v = _visits(paths, _ruin_nodes(M), dwell=lambda j, k: float(dw[j, k]))
    ch = jump_chain(v, n_posterior=300, seed=1)
    assert ch.absorbing_states == ("0", str(M)) or set(ch.absorbing_states) == {"0", str(M)}
    ends = Counter(pp[-1] for pp in paths)
    for a, lab in enumerate(ch.absorbing_states):
        assert ch.start_absorption[a] == pytest.approx(ends[lab] / len(paths), abs=1e-12)
        assert ch.start_absorption_low[a] <= ch.start_absorption[a] <= ch.start_absorption_high[a]
    assert ch.start_jumps == pytest.approx(np.mean([len(pp) - 1 for pp in paths]), rel=1e-12)
    plateau = [sum(dw[j, k] for k in range(len(pp) - 1)) for j, pp in enumerate(paths)]
    assert ch.start_time == pytest.approx(np.mean(plateau), rel=1e-12)
    assert ch.start_time_low < ch.start_time < ch.start_time_high
    # the dwell histograms hold every non-final visit once, within the bin edges
    for i, s in enumerate(ch.states):
        obs = [dw[j, k] for j, pp in enumerate(paths) for k in range(len(pp) - 1) if pp[k] == s]
        assert ch.dwell_hist[i].sum() == len(obs) == ch.n_dwell[i]
        if obs:
            assert ch.dwell_edges[i, 0] == pytest.approx(min(obs)) and ch.dwell_edges[i, -1] == pytest.approx(max(obs))
            assert ch.mean_dwell[i] == pytest.approx(np.mean(obs))


@pytest.mark.parametrize("p", [0.5, 0.35])
def test_intervals_cover_the_true_chain(p):
    """95% posterior intervals of B and m from one start cover the closed form in ~95% of repeated experiments."""
    M = 4
    win, duration = _ruin_closed_form(M, p)
    rng = np.random.default_rng(5)
    hits_b = hits_m = 0
    n_rep = 60
    for r in range(n_rep):
        paths = _ruin_paths(M, p, 2, 40, rng)
        ch = jump_chain(_visits(paths, _ruin_nodes(M)), n_posterior=400, seed=r)
        a = ch.absorbing_states.index(str(M))
        hits_b += ch.start_absorption_low[a] <= win[1] <= ch.start_absorption_high[a]
        hits_m += ch.start_jumps_low <= duration[1] <= ch.start_jumps_high
    assert hits_b / n_rep >= 0.85 and hits_m / n_rep >= 0.85, (hits_b, hits_m)


def test_absorbing_rules_and_censoring():
    nodes = [StratumNode("a", critical_value=3, kind="strict_saddle"), StratumNode("b", critical_value=2,
             kind="strict_saddle"), StratumNode("m", critical_value=0, kind="local_min")]
    # b is never left (a run stopped there): absorbing; m is left once (misclassified): still absorbing
    v = _visits([["a", "b"], ["a", "m", "b"], ["a", "m"]], nodes)
    ch = jump_chain(v, n_posterior=50)
    assert dict(zip(ch.states, ch.absorbing)) == {"a": False, "b": True, "m": True}
    np.testing.assert_allclose(ch.P[2], [0, 0, 1])
    # a censored visit (the record ends at a, not final) adds no jump
    v2 = _visits([["a", "m"], ["a"]], nodes, final_last=False)
    ch2 = jump_chain(v2, n_posterior=50)
    assert ch2.counts.sum() == 1 and ch2.absorption[0].tolist() == [1.0] and ch2.initial_counts.tolist() == [2, 0]


def test_downhill_support_widens_the_intervals():
    nodes = [StratumNode("a", critical_value=3, kind="strict_saddle"), StratumNode("m1", critical_value=1,
             kind="local_min"), StratumNode("m2", critical_value=0, kind="global_min")]
    nodes.append(StratumNode("b", critical_value=2, kind="strict_saddle"))
    v = _visits([["a", "m2"]] * 30 + [["b", "m1"]], nodes)
    obs = jump_chain(v, n_posterior=500)
    down = jump_chain(v, n_posterior=500, support="downhill", prior=1.0)
    a = obs.absorbing_states.index("m1")
    # from a, Dir(1 + 30, 1, 1) over {m2, b, m1}: the upper quantile of a's escape to m1 is ~ 0.1
    ia = obs.states.index("a")
    assert obs.absorption_high[ia, a] == 0.0 and 0.0 < down.absorption_high[ia, a] < 0.2
    with pytest.raises(InputError, match="`support`"):
        jump_chain(v, support="all")
    with pytest.raises(InputError, match="`level`"):
        jump_chain(v, level=1.5)
    with pytest.raises(TypeError, match="`visits`"):
        jump_chain(paths := [["a"]])  # noqa: F841


# ----------------------------------------------------------------------------- storage
def test_stored_in_transitions_dataset_and_read_back(tmp_path):
    from flowgeom.io import load_dataset, save_dataset

    M, p = 4, 0.5
    paths = _ruin_paths(M, p, 2, 30, np.random.default_rng(2))
    v = _visits(paths, _ruin_nodes(M))
    tg = build_transition_graph(v)
    ds = transitions_dataset(tg)
    assert {"chain_state", "absorbing"} <= set(ds.dims)
    schema.describe_variables(ds, "transitions")
    for name in ds.variables:
        if name in ds.variables and (set(ds[name].dims) & {"chain_state", "absorbing", "chain_target", "dwell_bin"}
                                     or name.startswith(("expected_", "absorption_"))):
            spec = schema.variable_spec(str(name), "transitions")
            assert spec is not None and spec.dims == ds[name].dims, name
    back = load_dataset(save_dataset(ds, tmp_path / "transitions.nc"))
    ch, ch2 = jump_chain(v, level=tg.confidence_level), chain_from_dataset(back)
    for f in JumpChain.__dataclass_fields__:
        a, b = getattr(ch, f), getattr(ch2, f)
        if isinstance(a, np.ndarray):
            np.testing.assert_array_equal(a, b, err_msg=f)
        else:
            assert a == b or (a != a and b != b), f
    assert "chain_state" not in transitions_dataset(tg, chain=False).dims
    with pytest.raises(InputError, match="no jump chain"):
        chain_from_dataset(transitions_dataset(tg, chain=False))


# ----------------------------------------------------------------------------- cross-check with basins
@dataclass(frozen=True)
class TiltedDoubleWell:
    r"""L(x, y) = x^4/4 - x^2/2 + c x + y^2/2: a saddle at the middle root x_s of x^3 - x + c and two minima.

    The flow in x is one-dimensional, so theta(0) ends at the right minimum exactly when x(0) > x_s.
    """

    tilt: float = 0.1

    @property
    def n_params(self):
        return 2

    def loss(self, th):
        th = np.asarray(th, float)
        x, y = th[..., 0], th[..., 1]
        return x**4 / 4 - x**2 / 2 + self.tilt * x + y**2 / 2

    def grad(self, th):
        th = np.asarray(th, float)
        return np.stack([th[..., 0] ** 3 - th[..., 0] + self.tilt, th[..., 1]], axis=-1)

    def hessian(self, th):
        th = np.asarray(th, float)
        H = np.zeros(th.shape + (2,))
        H[..., 0, 0] = 3 * th[..., 0] ** 2 - 1
        H[..., 1, 1] = 1.0
        return H

    def hvp(self, th, v):
        return np.einsum("...ij,...j->...i", self.hessian(th), np.asarray(v, float))

    def conserved(self, th):
        return np.zeros(np.shape(th)[:-1] + (0,))


def test_chain_absorption_agrees_with_basin_fractions_two_minima():
    from flowgeom import sample_basins, sample_transitions

    model, scale = TiltedDoubleWell(0.1), 0.1
    x_s = sorted(np.roots([1.0, 0.0, -1.0, model.tilt]).real)[1]
    exact = 1.0 - norm.cdf(x_s / scale)  # P(x0 > x_s) = 0.156: not trivial
    tr = sample_transitions(model, 300, init_scale=scale, seed=0, t1=40.0)
    bs = sample_basins(model, 1200, init_scale=scale, seed=3, t1=40.0, scheduler="synchronous", progress=False)
    assert tr.attrs["n_unfinished"] == 0
    right = [str(lab) for lab, k in zip(bs.label.values, bs.kind.values) if k == "local_min"]
    assert len(right) == 1
    b = {str(lab): i for i, lab in enumerate(bs.label.values)}
    for lab in [str(x) for x in tr.absorbing.values]:
        c = tr.sel(absorbing=lab)
        f, lo, hi = (float(bs[n].values[b[lab]]) for n in ("fraction", "fraction_low", "fraction_high"))
        lo_c, hi_c = float(c.absorption_from_start_low), float(c.absorption_from_start_high)
        assert max(lo, lo_c) <= min(hi, hi_c), (lab, (lo_c, hi_c), (lo, hi))  # the intervals overlap
        truth = exact if lab == right[0] else 1.0 - exact
        assert lo_c <= truth <= hi_c and lo <= truth <= hi, (lab, truth)
    # the absorption probabilities sum to one and the transient saddle is visited on the way
    assert float(tr.absorption_from_start.sum()) == pytest.approx(1.0)
    minima = bs.label.values[bs.kind.values != "strict_saddle"]
    assert set(str(x) for x in tr.absorbing.values) == set(str(x) for x in minima)


def test_chain_absorption_trivially_one_on_a_deep_linear_problem():
    from flowgeom import Problem, sample_basins, sample_transitions

    pb = Problem.from_spectrum((2.0, 1.0), (3, 2, 2))
    tr = sample_transitions(pb, 12, init_scale=1e-6, seed=4, integrate_options={"backend": "numpy"})
    bs = sample_basins(pb, 24, init_scale=1e-6, seed=5, scheduler="synchronous", progress=False)
    assert [str(x) for x in tr.absorbing.values] == ["{0,1}"]
    assert float(tr.absorption_from_start.values[0]) == 1.0
    # every trajectory was absorbed there: the posterior has no other absorbing state
    assert float(tr.absorption_from_start_low.values[0]) == pytest.approx(1.0, abs=1e-12)
    i = [str(x) for x in bs.label.values].index("{0,1}")
    assert float(bs.fraction_high.values[i]) == 1.0 and float(bs.fraction.values[i]) == 1.0
    # the saddles are transient and every path goes down through them
    absorbing = dict(zip([str(x) for x in tr.chain_state.values], tr.chain_absorbing.values))
    assert absorbing["{}"] is np.False_ or not absorbing["{}"]
    assert float(tr.expected_jumps_from_start) >= 1.0


# ----------------------------------------------------------------------------- deeptime
def _small_chain():
    M = 4
    paths = _ruin_paths(M, 0.5, 2, 20, np.random.default_rng(0))
    return jump_chain(_visits(paths, _ruin_nodes(M)), n_posterior=50)


def test_to_deeptime_without_deeptime_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "deeptime", None)
    monkeypatch.setitem(sys.modules, "deeptime.markov", None)
    with pytest.raises(ImportError, match="pip install deeptime"):
        to_deeptime(_small_chain())


def test_to_deeptime_warns_and_keeps_the_matrix():
    pytest.importorskip("deeptime")
    ch = _small_chain()
    with pytest.warns(JumpChainWarning, match="not ergodic.*not reversible.*no fixed lag time"):
        msm = to_deeptime(ch)
    np.testing.assert_allclose(msm.transition_matrix, ch.P)
    with pytest.warns(JumpChainWarning):
        counts = to_deeptime(ch, what="counts")
    t = ~ch.absorbing
    np.testing.assert_array_equal(np.asarray(counts.count_matrix)[t], ch.counts[t])


def test_chain_dataset_refuses_other_types():
    with pytest.raises(TypeError, match="`chain`"):
        chain_dataset({"states": ()})


def test_no_visits_gives_an_empty_chain_and_no_stored_chain():
    e = np.array([])
    v = Visits(e.astype(np.int64), e.astype(object), e, e, e, e, e.astype(bool), e, 3)
    ch = jump_chain(v, n_posterior=10)
    assert ch.states == () and ch.start_absorption.shape == (0,)
    assert np.isnan(ch.start_jumps) and np.isnan(ch.start_time_high)
    assert chain_dataset(ch).sizes["chain_state"] == 0
    assert "chain_state" not in transitions_dataset(build_transition_graph(v)).dims
