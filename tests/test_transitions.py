"""Tests of flowgeom.transitions: plateau detection, identification, the transition graph,
the theory of sequential mode learning, the Dataset and the GraphML round trip.

Reference values and their sources:
- Saxe, McClelland & Ganguli (2014), arXiv:1312.6120, eq. (7): a balanced mode u = a.b of
  the H = 1 whitened loss 1/2||Sigma - W2 W1||^2 obeys du/dt = 2u(s - u), so it reaches
  u = q s at t = log(q (s - u0) / ((1 - q) u0)) / (2 s). For Gaussian init the effective
  u0 = eps^2/2 chi^2_{d1-k}, E log chi^2_nu = digamma(nu/2) + log 2 (standard).
- Balanced scalar chain dw/dt = w^H (s - w^{H+1}): checked here against scipy's solve_ivp
  with an event, independently of the quadrature in the module.
- Wilson score interval: scipy.stats.binomtest(...).proportion_ci(method="wilson").
- Critical values 1/2 sum_{i not in S} s_i^2 recomputed here from s (flowgeom.schema).
"""

from __future__ import annotations

import itertools
import math
from types import SimpleNamespace

import networkx as nx
import numpy as np
import pytest
from scipy.integrate import solve_ivp

from flowgeom import Problem
from flowgeom.linear.strata import enumerate_strata
from flowgeom.flow import SaveAt, integrate
from flowgeom.linear import ClosedFormAtlas
from flowgeom.transitions import (
    MIDPOINT_Q,
    UNIDENTIFIED,
    AtlasIdentifier,
    StratumNode,
    TransitionGraph,
    Visits,
    build_transition_graph,
    detect_visits,
    format_inertia,
    graph_from_dataset,
    parse_inertia,
    read_graphml,
    sample_transitions,
    save_transitions,
    to_graphml,
    transition_theory,
    _scalar_chain_time,
)

# The numpy backend of the integrator: deterministic and free of JIT compilation time.
NUMPY = {"backend": "numpy"}

S421 = (4.0, 2.0, 1.0)
W543 = (5, 4, 3)


def _crit_value(s, learned):
    return 0.5 * sum(si**2 for i, si in enumerate(s) if i not in learned)


def _label(S):
    return "{" + ",".join(str(i) for i in sorted(S)) + "}"


@pytest.fixture(scope="module")
def small_eps_ds():
    """H = 1, whitened, s = (4, 2, 1), Gaussian init eps = 1e-6, 40 trajectories."""
    pb = Problem.from_spectrum(S421, W543)
    return pb, sample_transitions(pb, 40, init_scale=1e-6, seed=11, integrate_options=NUMPY, measure_visited=True)


# ----------------------------------------------------------------------------- theory
@pytest.mark.parametrize("H", [1, 2, 3])
@pytest.mark.parametrize("s", [3.0, 0.7])
def test_scalar_chain_time_matches_ode_event(H, s):
    # Independent reference: integrate the scalar ODE to the event u = w^{H+1} = q s.
    w0 = 0.05
    q = MIDPOINT_Q

    def ev(t, w):
        return w[0] ** (H + 1) - q * s

    ev.terminal = True
    sol = solve_ivp(lambda t, w: w**H * (s - w ** (H + 1)), (0, 1e7), [w0], events=ev, rtol=1e-12, atol=1e-14)
    t_ref = sol.t_events[0][0]
    t, lead = _scalar_chain_time(s, w0, H)
    assert t == pytest.approx(t_ref, rel=1e-7)
    # leading order: log(1/w0)/s for H = 1, w0^{1-H}/((H-1)s) for H >= 2
    expect_lead = math.log(1 / w0) / s if H == 1 else w0 ** (1 - H) / ((H - 1) * s)
    assert lead == pytest.approx(expect_lead, rel=1e-14)


def test_theory_jump_times_match_a_monte_carlo_of_the_flow():
    """The theory's jump times (Gaussian init, H = 1) against an independent Monte-Carlo reference:
    the mean time at which the simulated loss crosses the midpoint between consecutive plateau levels,
    over 200 trajectories of the true gradient flow (solve_ivp-grade tolerances), within 4 standard errors
    plus the O(eps) bias of the asymptotic theory."""
    pb = Problem.from_spectrum(S421, W543)
    eps = 1e-5
    th = transition_theory(pb, eps)
    assert list(th["theory_source"].values) == ["{}", "{0}", "{0,1}"]
    assert list(th["theory_target"].values) == ["{0}", "{0,1}", "{0,1,2}"]
    net = pb.network()
    theta0 = eps * np.random.default_rng(21).standard_normal((200, net.n_params))
    t1 = 3.0 * float(np.max(th["theory_t_jump"].values)) + 10.0
    ts = np.linspace(0.0, t1, 4001)
    tr = integrate(net, theta0, t1, rtol=1e-9, atol=1e-13, saveat=SaveAt(ts=ts), grad_tol=0.0)
    levels = [_crit_value(S421, tuple(range(r))) for r in range(4)]
    for k in range(3):
        mid = 0.5 * (levels[k] + levels[k + 1])
        below = tr.loss <= mid
        first = np.argmax(below, axis=1)
        assert np.all(below.any(axis=1))
        # linear interpolation of the crossing between saves
        i1, i0 = first, first - 1
        L0, L1 = tr.loss[np.arange(200), i0], tr.loss[np.arange(200), i1]
        t_cross = ts[i0] + (L0 - mid) / (L0 - L1) * (ts[i1] - ts[i0])
        mean, se = float(np.mean(t_cross)), float(np.std(t_cross, ddof=1) / np.sqrt(200))
        assert abs(mean - float(th["theory_t_jump"].values[k])) <= 4 * se + 0.02 * mean, (k, mean, se)
    assert th.attrs["theory_exact"] is True


def test_theory_rejects_bad_input():
    pb = Problem.from_spectrum(S421, W543)
    with pytest.raises(ValueError, match="`init_scale`"):
        transition_theory(pb, -1.0)
    with pytest.raises(ValueError, match="`init`"):
        transition_theory(pb, 1e-3, init="orthogonal")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((5, 12))
    Y = rng.standard_normal((3, 12))
    with pytest.raises(ValueError, match="whitened"):
        transition_theory(Problem.from_data(X, Y, W543), 1e-3)


# ----------------------------------------------------------------------------- known answers
def test_small_init_h1_follows_theory(small_eps_ds):
    pb, ds = small_eps_ds
    # dominant path: modes learned in order of decreasing s
    assert ds.attrs["dominant_path"] == ["{}", "{0}", "{0,1}", "{0,1,2}"]
    assert ds.attrs["dominant_path_fraction"] >= 0.9
    assert ds.attrs["n_rejected"] == 0
    assert ds.attrs["non_minimum_sinks"] == []
    assert ds.attrs["n_unfinished"] == 0
    # jump times: the Saxe et al. prediction within sampling error (3 standard errors) plus the
    # 1.5% accuracy of the two-phase (linear, then logistic) approximation
    obs = ds["observed_t_jump"].values
    sd = ds["observed_t_jump_std"].values
    n = ds["observed_n"].values
    th = ds["theory_t_jump"].values
    assert np.all(n >= 36)
    assert np.all(np.abs(obs - th) <= 3 * sd / np.sqrt(n) + 0.015 * th), (obs, th)
    # spread predicted by Var log chi^2: same order (a factor 1.6 either way at n = 40)
    th_sd = ds["theory_t_jump_std"].values
    assert np.all((sd / th_sd > 1 / 1.6) & (sd / th_sd < 1.6)), (sd, th_sd)
    assert np.allclose(ds["t_jump_ratio"].values, obs / th)
    assert np.allclose(ds["plateau_ratio"].values, ds["observed_plateau"].values / ds["theory_plateau"].values)


def test_small_init_h1_plateau_levels_and_atlas(small_eps_ds):
    pb, ds = small_eps_ds
    atlas = {_label(S): _crit_value(S421, S) for r in range(4) for S in itertools.combinations(range(3), r)}
    for lab, L in zip(ds["stratum"].values, ds["loss_plateau"].values):
        assert lab in atlas  # every visit's stratum has an atlas entry
        # plateau level at the critical value, to 5% of the gap between critical values (0.5 here)
        assert abs(L - atlas[lab]) <= 0.05 * 0.5
    for lab, cv, rank in zip(ds["label"].values, ds["critical_value"].values, ds["rank"].values):
        assert cv == pytest.approx(atlas[lab], abs=1e-14)
        assert rank == len(lab.strip("{}").split(",")) if lab != "{}" else rank == 0
    # visits are well ordered in time
    assert np.all(ds["t_exit"].values >= ds["t_enter"].values)
    # the global minimum is the only sink and is a minimum
    assert ds.attrs["sinks"] == ["{0,1,2}"]
    kinds = dict(zip(ds["label"].values, ds["kind"].values))
    assert kinds["{0,1,2}"] == "global_min"
    assert kinds["{}"] == "strict_saddle"


def test_large_init_skips_saddles():
    pb = Problem.from_spectrum(S421, W543)
    ds = sample_transitions(pb, 30, init_scale=1e-2, seed=5, theory=False, integrate_options=NUMPY)
    ranks = dict(zip(ds["label"].values, ds["rank"].values))
    jumps = [ranks[t] - ranks[s] for s, t in zip(ds["source"].values, ds["target"].values)]
    assert max(jumps) >= 2  # some transition skips at least one saddle
    assert ds.attrs["dominant_path"] != ["{}", "{0}", "{0,1}", "{0,1,2}"]
    assert "step" not in ds.dims
    assert ds.attrs["non_minimum_sinks"] == []
    # probabilities out of each node sum to one
    for lab in set(ds["source"].values):
        assert ds["probability"].values[ds["source"].values == lab].sum() == pytest.approx(1.0)


def test_h2_aligned_init_matches_scalar_chain():
    pb = Problem.from_spectrum(S421, (4, 3, 3, 3))
    ds = sample_transitions(pb, 1, init_scale=0.05, init="aligned", seed=0, integrate_options=NUMPY)
    assert ds.attrs["dominant_path"] == ["{}", "{0}", "{0,1}", "{0,1,2}"]
    assert ds.attrs["theory_exact"] is True
    # exact theory; the observed crossing is interpolated on the log-spaced save grid
    assert np.allclose(ds["t_jump_ratio"].values, 1.0, atol=2e-3)


def test_h2_gaussian_escape_power_law():
    # The small-weight dynamics is homogeneous of degree H: with W = eps V and the same V(0),
    # t_escape * eps^(H-1) tends to a constant as eps -> 0 (here H = 2).
    pb = Problem.from_spectrum(S421, (4, 3, 3, 3))
    t_esc = {}
    for eps in (1e-2, 2e-3):
        # run just past the escape from the origin (about 1/(eps s_0) for this init)
        ds = sample_transitions(pb, 4, init_scale=eps, seed=7, t1=1.5 / (eps * S421[0]), n_save=300, integrate_options=NUMPY)
        first = [np.nonzero(ds["trajectory"].values == j)[0][0] for j in range(4)]
        assert all(ds["stratum"].values[i] == "{}" for i in first)
        t_esc[eps] = ds["t_jump"].values[first] * eps
        assert ds.attrs["theory_exact"] is False
    np.testing.assert_allclose(t_esc[2e-3], t_esc[1e-2], rtol=0.05)


# ----------------------------------------------------------------------------- detection
def _synthetic(ts, drops, s_levels):
    """Loss L(t) = L_inf + sum_k dL_k (1 - sigma(r_k (t - t_k))) and the gradient-flow norm
    ||grad|| = sqrt(-dL/dt), a noise-free sequence of plateaus."""
    L = np.full_like(ts, float(s_levels[-1]))
    dLdt = np.zeros_like(ts)
    for (tk, rk), (a, b) in zip(drops, zip(s_levels[:-1], s_levels[1:])):
        sig = 1 / (1 + np.exp(-rk * (ts - tk)))
        L += (a - b) * (1 - sig)
        dLdt -= (a - b) * rk * sig * (1 - sig)
    return L, np.sqrt(-dLdt)


class ValueIdentify:
    """Identify a plateau by its loss level alone (synthetic curves have no states)."""

    def __init__(self, levels):
        self._nodes = tuple(
            StratumNode(f"L{v:g}", critical_value=v, kind="global_min" if v == 0 else "strict_saddle") for v in levels
        )

    @property
    def nodes(self):
        return self._nodes

    def __call__(self, theta, loss):
        d = [abs(loss - n.critical_value) for n in self._nodes]
        return self._nodes[int(np.argmin(d))]


class _Model:
    """A stand-in Model for synthetic curves (never called: the identifier needs no states)."""

    n_params = 1

    def loss(self, theta):
        return np.zeros(np.shape(theta)[:-1])

    grad = hvp = hessian = conserved = loss


def _traj(ts, L, g, ys=None):
    return SimpleNamespace(ts=ts, loss=L[None], grad_norm=g[None], ys=ys, status=np.array([1]))


SYN_LEVELS = [10.0, 4.0, 1.0, 0.0]
SYN_DROPS = [(5.0, 4.0), (15.0, 3.0), (40.0, 2.0)]


def _reference_margin(t, c, gmax):
    """The plateau margin of `detect_visits` (default thresholds) written out on the analytic
    curve: max(|L - L_c| / (0.05 gap_c), t ||g||^2 / (1.0 gap_c), ||g|| / (0.2 max ||g||))."""
    L, g = _synthetic(np.array([t]), SYN_DROPS, SYN_LEVELS)
    gap = {10.0: 6.0, 4.0: 3.0, 1.0: 1.0, 0.0: 1.0}[SYN_LEVELS[c]]  # distance to the nearest other level
    return max(abs(L[0] - SYN_LEVELS[c]) / (0.05 * gap), t * g[0] ** 2 / gap, g[0] / (0.2 * gmax))


@pytest.mark.parametrize("n_save", [150, 600])
def test_detection_on_synthetic_plateaus_is_grid_robust(n_save):
    from scipy.optimize import brentq

    ts = np.concatenate([[0.0], np.geomspace(1e-3, 100.0, n_save)])
    L, g = _synthetic(ts, SYN_DROPS, SYN_LEVELS)
    v = detect_visits(_traj(ts, L, g), _Model(), identify=ValueIdentify(SYN_LEVELS))
    assert list(v.stratum) == ["L10", "L4", "L1", "L0"]
    assert v.final.tolist() == [False, False, False, True]
    assert v.t_enter[0] == 0.0 and v.t_exit[-1] == ts[-1]
    # reference entry/exit times: roots of the margin on the analytic curve (brentq)
    gmax = _synthetic(np.linspace(0, 100, 200001), SYN_DROPS, SYN_LEVELS)[1].max()
    ref_exit = [brentq(lambda t: _reference_margin(t, k, gmax) - 1, tk - 5, tk) for k, (tk, _) in enumerate(SYN_DROPS)]
    ref_enter = [brentq(lambda t: _reference_margin(t, k + 1, gmax) - 1, tk, tk + 8) for k, (tk, _) in enumerate(SYN_DROPS)]
    # interpolation between saves: within a quarter of the local save spacing
    spacing = np.array([np.diff(ts)[np.searchsorted(ts, tk) - 1] for tk, _ in SYN_DROPS])
    assert np.all(np.abs(v.t_exit[:3] - ref_exit) <= 0.25 * spacing)
    assert np.all(np.abs(v.t_enter[1:] - ref_enter) <= 0.25 * spacing)
    # jump = crossing of the midpoint level: t_k exactly for these symmetric sigmoids
    assert np.all(np.abs(v.t_jump[:3] - [tk for tk, _ in SYN_DROPS]) <= 0.25 * spacing)


def test_detection_same_on_linear_and_log_grids():
    # the same curve saved on a log-spaced and on a uniform grid of comparable resolution
    grids = [
        np.concatenate([[0.0], np.geomspace(1e-3, 100.0, 1500)]),
        np.linspace(0.0, 100.0, 1001),
    ]
    out = []
    for ts in grids:
        L, g = _synthetic(ts, SYN_DROPS, SYN_LEVELS)
        out.append(detect_visits(_traj(ts, L, g), _Model(), identify=ValueIdentify(SYN_LEVELS)))
    a, b = out
    assert list(a.stratum) == list(b.stratum)
    np.testing.assert_allclose(a.t_enter[1:], b.t_enter[1:], atol=0.05)
    np.testing.assert_allclose(a.t_exit[:-1], b.t_exit[:-1], atol=0.05)
    np.testing.assert_allclose(a.t_jump[:-1], b.t_jump[:-1], atol=0.01)


def test_short_fragments_dropped_and_blips_merged():
    levels = [10.0, 4.0, 0.0]
    ts = np.concatenate([[0.0], np.geomspace(1e-3, 100.0, 400)])
    L, g = _synthetic(ts, [(5.0, 4.0), (30.0, 3.0)], levels)
    # a one-save blip of the gradient inside the middle plateau splits it into two fragments
    i = np.argmin(np.abs(ts - 15.0))
    g_blip = g.copy()
    g_blip[i] = 10 * g.max()
    v = detect_visits(_traj(ts, L, g_blip), _Model(), identify=ValueIdentify(levels))
    assert list(v.stratum) == ["L10", "L4", "L0"]
    # without fragment merging the two fragments are still one visit (merged by label)
    v2 = detect_visits(_traj(ts, L, g_blip), _Model(), identify=ValueIdentify(levels), merge_log_gap=0.0)
    assert list(v2.stratum) == ["L10", "L4", "L0"]
    assert v2.t_enter[1] == pytest.approx(v.t_enter[1]) and v2.t_exit[1] == pytest.approx(v.t_exit[1])
    # a fast passage through a level is not a visit: the middle "plateau" of this curve lasts
    # about half a time unit at t ~ 21 (log-time dwell ~ 0.02)
    L3, g3 = _synthetic(ts, [(20.0, 3.0), (22.5, 3.0)], levels)
    v3 = detect_visits(_traj(ts, L3, g3), _Model(), identify=ValueIdentify(levels))
    assert list(v3.stratum) == ["L10", "L0"]
    # ... it is the speed / gradient / dwell criteria that reject it: switched off, it is kept
    loose = dict(min_log_dwell=0.0, speed_rtol=1e6, grad_rtol=1e6)
    v4 = detect_visits(_traj(ts, L3, g3), _Model(), identify=ValueIdentify(levels), **loose)
    assert list(v4.stratum) == ["L10", "L4", "L0"]


def test_detection_matches_between_integrate_and_solve_ivp():
    pb = Problem.from_spectrum(S421, W543)
    net = pb.network()
    rng = np.random.default_rng(2)
    theta0 = 1e-5 * rng.standard_normal((3, net.n_params))
    t1 = 40.0
    tr = integrate(net, theta0, t1, rtol=1e-9, atol=1e-13, saveat=SaveAt(n_log=300), backend="numpy")
    ys = np.stack(
        [
            solve_ivp(lambda t, y: -net.grad(y), (0, t1), th, t_eval=tr.ts, rtol=1e-11, atol=1e-14, method="DOP853").y.T
            for th in theta0
        ]
    )
    ref = SimpleNamespace(ts=tr.ts, ys=ys, loss=net.loss(ys), grad_norm=np.linalg.norm(net.grad(ys), axis=-1))
    va = detect_visits(tr, pb)
    vb = detect_visits(ref, pb)
    assert list(va.stratum) == list(vb.stratum)
    np.testing.assert_allclose(va.t_jump[~va.final], vb.t_jump[~vb.final], rtol=1e-4)
    assert va.paths() == [("{}", "{0}", "{0,1}", "{0,1,2}")] * 3


def test_states_not_saved_identify_by_value():
    pb = Problem.from_spectrum(S421, W543)
    net = pb.network()
    theta0 = 1e-6 * np.random.default_rng(4).standard_normal((2, net.n_params))
    tr = integrate(net, theta0, 40.0, rtol=1e-8, atol=1e-12, saveat=SaveAt(n_log=300, states=False), backend="numpy")
    v = detect_visits(tr, pb)
    assert v.paths() == [("{}", "{0}", "{0,1}", "{0,1,2}")] * 2


def test_slow_passage_rejected_by_atlas():
    # A point near a critical *value* but far from every stratum: the 0.5 level of s = (4, 2, 1)
    # reached with mode 1 only partly learned and mode 2 partly learned (cancellation).
    pb = Problem.from_spectrum(S421, W543)
    closed = ClosedFormAtlas(pb)
    closed.measure()
    ident = AtlasIdentifier(closed)
    net = pb.network()
    W1 = np.zeros((4, 5))
    W2 = np.zeros((3, 4))
    diag = [4.0, 2.0 - 0.35, 0.48]  # loss = 1/2(0.35^2 + 0.52^2) ~ 0.196 + ... at a non-critical P
    for i, u in enumerate(diag):
        W1[i, i] = W2[i, i] = math.sqrt(u)
    theta = net.pack([W1, W2])
    assert ident(theta, float(net.loss(theta))) is None
    # and a point on the stratum {0,1} is identified
    W1[2, 2] = W2[2, 2] = 0.0
    W1[1, 1] = W2[1, 1] = math.sqrt(2.0)
    theta = net.pack([W1, W2])
    node = ident(theta, float(net.loss(theta)))
    assert node.label == "{0,1}" and node.critical_value == pytest.approx(0.5)
    assert node.inertia is not None and sum(node.inertia) == net.n_params


def test_searched_atlas_identifies_plateaus_of_a_bare_model():
    # The bare-model path: plateaus located in a searched atlas (refined to critical points,
    # matched by critical value; new ones grow it), against the closed form of the same network.
    from flowgeom.critical import SearchedAtlas

    pb = Problem.from_spectrum(S421, W543)
    net = pb.network()
    theta0 = 1e-6 * np.random.default_rng(9).standard_normal((2, net.n_params))
    tr = integrate(net, theta0, 40.0, rtol=1e-9, atol=1e-13, saveat=SaveAt(n_log=300), backend="numpy")
    searched = SearchedAtlas(net, n_starts=12, seed=1)
    ident = AtlasIdentifier(searched)
    v = detect_visits(tr, net, identify=ident)
    va = detect_visits(tr, pb)
    assert len(v) == len(va) and v.n_rejected == 0
    atlas = {_label(S): _crit_value(S421, S) for r in range(4) for S in itertools.combinations(range(3), r)}
    mapping = {}
    for a, b in zip(v.stratum, va.stratum):
        mapping.setdefault(a, set()).add(b)
    # every searched label corresponds to one closed-form stratum, with its critical value
    nodes = {n.label: n for n in ident.nodes}
    for lab, (atlas_label,) in mapping.items():
        assert nodes[lab].critical_value == pytest.approx(atlas[atlas_label], abs=1e-9)
    closed = ClosedFormAtlas(pb)
    closed.measure()
    closed_inertia = {cs.label: cs.inertia for cs in closed.sets()}
    for lab, (atlas_label,) in mapping.items():
        # for H = 1 the inertia is the same at every point of a stratum
        assert nodes[lab].inertia == closed_inertia[atlas_label]
        assert nodes[lab].kind == ("global_min" if atlas_label == "{0,1,2}" else "strict_saddle")


def test_detect_visits_rejects_bad_input():
    pb = Problem.from_spectrum(S421, W543)
    ts = np.linspace(0, 1, 5)
    tr = _traj(ts, np.ones(5), np.ones(5))
    with pytest.raises(ValueError, match="`loss_rtol`"):
        detect_visits(tr, pb, loss_rtol=0.0)
    with pytest.raises(ValueError, match="`min_log_dwell`"):
        detect_visits(tr, pb, min_log_dwell=-1.0)
    with pytest.raises(TypeError, match="`traj`"):
        detect_visits(object(), pb)
    with pytest.raises(TypeError, match="`problem_or_model` must be"):
        detect_visits(tr, "not a model")
    with pytest.raises(ValueError, match="strictly increasing"):
        detect_visits(_traj(ts[::-1], np.ones(5), np.ones(5)), pb)


# ----------------------------------------------------------------------------- graph
def _hand_visits():
    # trajectory 0: A -> B -> D ; 1: A -> C -> D ; 2: A -> B -> D ; 3: A -> B (stops at B)
    rows = [
        (0, "A", 0.0, 2.0, False), (0, "B", 3.0, 5.0, False), (0, "D", 6.0, 9.0, True),
        (1, "A", 0.0, 4.0, False), (1, "C", 5.0, 6.0, False), (1, "D", 7.0, 9.0, True),
        (2, "A", 0.0, 1.0, False), (2, "B", 2.0, 6.0, False), (2, "D", 7.0, 9.0, True),
        (3, "A", 0.0, 3.0, False), (3, "B", 4.0, 9.0, True),
    ]
    tr, st, te, tx, fi = zip(*rows)
    stratum = np.empty(len(st), dtype=object)
    stratum[:] = st
    nodes = (
        StratumNode("A", 0, 3.0, (2, 1, 3), "strict_saddle"),
        StratumNode("B", 1, 2.0, (1, 2, 3), "strict_saddle"),
        StratumNode("C", 1, 1.5, None, "strict_saddle"),
        StratumNode("D", 2, 0.0, (0, 3, 3), "global_min"),
    )
    return Visits(
        trajectory=np.array(tr), stratum=stratum, t_enter=np.array(te, float), t_exit=np.array(tx, float),
        loss_plateau=np.zeros(len(st)), grad_norm_plateau=np.zeros(len(st)), final=np.array(fi),
        t_jump=np.where(np.array(fi), np.nan, np.array(tx, float) + 0.5), n_trajectories=4, nodes=nodes,
    )


def test_graph_counts_probabilities_dwell():
    tg = build_transition_graph(_hand_visits())
    G = tg.graph
    assert G.edges["A", "B"]["count"] == 3 and G.edges["A", "C"]["count"] == 1
    assert G.edges["A", "B"]["probability"] == pytest.approx(3 / 4)
    assert G.edges["B", "D"]["probability"] == pytest.approx(1.0)  # the B visit that never left is not a trial
    assert G.nodes["B"]["visits"] == 3 and G.nodes["B"]["n_left"] == 2 and G.nodes["B"]["n_final"] == 1
    assert G.edges["A", "B"]["mean_dwell"] == pytest.approx(np.mean([2.0, 1.0, 3.0]))
    assert G.edges["A", "B"]["dwell_std"] == pytest.approx(np.std([2.0, 1.0, 3.0]))
    assert G.edges["B", "D"]["mean_t_jump"] == pytest.approx(np.mean([5.5, 6.5]))
    for u in G:
        ps = [G.edges[u, v]["probability"] for v in G.successors(u)]
        if ps:
            assert sum(ps) == pytest.approx(1.0)
    for _, _, d in G.edges(data=True):
        assert d["probability_low"] <= d["probability"] <= d["probability_high"]
    assert tg.sinks == ("D",) and tg.non_minimum_sinks == ()
    assert tg.n_unfinished == 1  # trajectory 3 stopped at saddle B
    assert tg.dominant_path == ("A", "B", "D") and tg.dominant_path_fraction == pytest.approx(0.5)
    assert G.nodes["A"]["inertia"] == "(2,1,3)" and G.nodes["C"]["inertia"] == ""
    assert G.nodes["C"]["n_negative"] == -1


def test_non_minimum_sink_reported():
    v = _hand_visits()
    keep = v.trajectory == 3  # only the trajectory stuck at saddle B
    sub = Visits(
        trajectory=np.zeros(int(keep.sum()), dtype=int), stratum=v.stratum[keep], t_enter=v.t_enter[keep],
        t_exit=v.t_exit[keep], loss_plateau=v.loss_plateau[keep], grad_norm_plateau=v.grad_norm_plateau[keep],
        final=v.final[keep], t_jump=v.t_jump[keep], n_trajectories=1, nodes=v.nodes,
    )
    tg = build_transition_graph(sub)
    assert tg.non_minimum_sinks == ("B",)
    assert [set(c) for c in nx.attracting_components(tg.graph)] == [{"B"}]


def test_graphml_round_trip(tmp_path, small_eps_ds):
    pb, ds = small_eps_ds
    G = graph_from_dataset(ds)
    path = to_graphml(G, tmp_path / "t.graphml")
    G2 = read_graphml(path)
    assert G2.graph == G.graph
    assert list(G2.nodes) == list(G.nodes)
    for n in G:
        a, b = G.nodes[n], G2.nodes[n]
        assert a.keys() == b.keys()
        for k in a:
            assert type(a[k]) is type(b[k]), k
            assert a[k] == b[k] or (isinstance(a[k], float) and np.isnan(a[k]) and np.isnan(b[k])), k
    assert list(G2.edges(data=True)) == list(G.edges(data=True))
    for n in G2:
        inertia = parse_inertia(G2.nodes[n]["inertia"])
        assert inertia == (G2.nodes[n]["n_negative"], G2.nodes[n]["n_zero"], G2.nodes[n]["n_positive"])
        assert sum(inertia) == pb.network().n_params


def test_dataset_and_graph_files(tmp_path, small_eps_ds):
    from flowgeom.io import load_dataset

    pb, ds = small_eps_ds
    nc, gm = save_transitions(ds, tmp_path)
    assert nc.name == "transitions.nc" and gm.name == "transitions.graphml"
    back = load_dataset(nc)
    assert back.identical(ds)
    # contract names (flowgeom.schema)
    for name in ("source", "target", "count", "probability", "probability_low", "probability_high", "mean_dwell"):
        assert back[name].dims == ("edge",)
    for name in ("trajectory", "stratum", "t_enter", "t_exit", "loss_plateau"):
        assert back[name].dims == ("visit",)
    for key in ("flowgeom_version", "widths", "singular_values", "depth_H", "whitened", "seed"):
        assert key in back.attrs
    G = read_graphml(gm)
    for n in G:
        assert {"label", "rank", "critical_value", "inertia", "kind"} <= set(G.nodes[n])


def test_transition_graph_result_is_frozen():
    tg = build_transition_graph(_hand_visits())
    assert isinstance(tg, TransitionGraph)
    with pytest.raises(AttributeError):
        tg.sinks = ()  # type: ignore[misc]


def test_inertia_text_round_trip_and_errors():
    assert parse_inertia(format_inertia((2, 5, 3))) == (2, 5, 3)
    assert parse_inertia(format_inertia(None)) is None
    for bad in ("2,5,3", "(2,5)", "(a,b,c)"):
        with pytest.raises(ValueError, match="`text`"):
            parse_inertia(bad)
    with pytest.raises(ValueError, match="`inertia`"):
        StratumNode("x", inertia=(1, -1, 2))
    assert UNIDENTIFIED == "?"


def test_strata_from_critical_module_become_nodes():
    pb = Problem.from_spectrum(S421, W543)
    strata = enumerate_strata(pb)
    closed = ClosedFormAtlas(pb)
    closed.measure()
    ident = AtlasIdentifier(closed)
    assert [n.label for n in ident.nodes] == [s.label for s in strata]
    for n, s in zip(ident.nodes, strata):
        assert n.learned == s.learned and n.kind == s.kind and n.critical_value == s.critical_value
        assert sum(n.inertia) == pb.network().n_params


# ----------------------------------------------------------------------------- other flows
def test_unwhitened_data_original_coordinates():
    # X with singular values 1.3 .. 0.8 (not whitened): the flow runs in the original
    # coordinates, plateau points are mapped by to_canonical, levels carry the loss offset.
    rng = np.random.default_rng(3)
    m = 8
    U, _ = np.linalg.qr(rng.standard_normal((5, 5)))
    V, _ = np.linalg.qr(rng.standard_normal((m, 5)))
    SX = np.diag([1.3, 1.15, 1.0, 0.9, 0.8])
    X = U @ SX @ V.T
    A = np.zeros((3, 5))
    A[0, 0], A[1, 1], A[2, 2] = 4.0, 2.0, 1.0
    Y = A @ SX @ V.T + 0.05 * rng.standard_normal((3, m))
    pb = Problem.from_data(X, Y, W543)
    assert not pb.whitened and pb.loss_offset > 0
    ds = sample_transitions(pb, 4, init_scale=1e-6, seed=1, integrate_options=NUMPY)
    assert "step" not in ds.dims  # no mode theory for unwhitened data
    assert ds.attrs["n_rejected"] == 0 and ds.attrs["n_unfinished"] == 0
    assert ds.attrs["dominant_path"] == ["{}", "{0}", "{0,1}", "{0,1,2}"]
    cv = dict(zip(ds["label"].values, ds["critical_value"].values))
    s = pb.singular_values
    for lab, L in zip(ds["stratum"].values, ds["loss_plateau"].values):
        S = tuple(int(i) for i in lab.strip("{}").split(",")) if lab != "{}" else ()
        assert cv[lab] == pytest.approx(_crit_value(s, S), rel=1e-12)
        assert L == pytest.approx(cv[lab] + pb.loss_offset, abs=0.05 * 0.5)


def test_gradient_descent_trajectories():
    # Discrete GD at a small step visits the same saddles, at times t = k lr close to the flow's.
    from flowgeom.flow import gradient_descent

    pb = Problem.from_spectrum(S421, W543)
    net = pb.network()
    theta0 = 1e-6 * np.random.default_rng(5).standard_normal((3, net.n_params))
    gd = gradient_descent(net, theta0, 0.005, t1=30.0, saveat=SaveAt(n_log=300), backend="numpy")
    fl = integrate(net, theta0, 30.0, rtol=1e-9, atol=1e-13, saveat=SaveAt(n_log=300), backend="numpy")
    vg = detect_visits(gd, pb)
    vf = detect_visits(fl, pb)
    assert vg.paths() == vf.paths() == [("{}", "{0}", "{0,1}", "{0,1,2}")] * 3
    # GD with step lr follows the flow with an O(lr) relative time shift
    np.testing.assert_allclose(vg.t_jump[~vg.final], vf.t_jump[~vf.final], rtol=0.02)


def test_truncated_record_has_no_final_visit():
    ts = np.concatenate([[0.0], np.geomspace(1e-3, 100.0, 400)])
    L, g = _synthetic(ts, SYN_DROPS, SYN_LEVELS)
    L, g = L.copy(), g.copy()
    cut = np.searchsorted(ts, 60.0)
    L[cut:] = np.nan  # the trajectory failed at t = 60, while resting at the minimum
    g[cut:] = np.nan
    v = detect_visits(_traj(ts, L, g), _Model(), identify=ValueIdentify(SYN_LEVELS))
    assert list(v.stratum) == ["L10", "L4", "L1", "L0"]
    assert not v.final.any()
    assert v.t_exit[-1] == ts[cut - 1]
    tg = build_transition_graph(v)
    assert tg.graph.nodes["L0"]["n_final"] == 0 and tg.n_unfinished == 1


def test_generic_path_without_levels_separates_plateaus():
    # Levels unknown (no atlas): consecutive plateaus must not be merged across a drop of the
    # loss, even when the transition between them is short on the save grid (H = 2).
    pb = Problem.from_spectrum(S421, (4, 3, 3, 3))
    net = pb.network()
    theta0 = 0.03 * np.random.default_rng(1).standard_normal((1, net.n_params))
    tr = integrate(net, theta0, 60.0, rtol=1e-7, atol=1e-11, saveat=SaveAt(n_log=300), backend="numpy")
    assert detect_visits(tr, pb).paths() == [("{}", "{0}", "{0,1}")]
    ident = _RefineOnly(net)
    v = detect_visits(tr, net, identify=ident)
    # the saddles {0} and {0,1} (the degenerate origin of H = 2 is not reached by Newton
    # refinement from the plateau point and is rejected: counted, not guessed)
    assert [round(n.critical_value, 9) for n in ident.nodes] == [2.5, 0.5]
    assert v.n_rejected == 1
    assert len(v) == 2


class _RefineOnly:
    """An Identifier with no levels known in advance: refine, then one node per critical value."""

    def __init__(self, model):
        self.model = model
        self.nodes = []

    def __call__(self, theta, loss):
        from flowgeom.critical import refine_critical

        res = refine_critical(self.model, np.asarray(theta)[None], max_iter=60)
        if not res.converged[0] or np.linalg.norm(res.theta[0] - theta) > 0.25 * (1 + np.linalg.norm(res.theta[0])):
            return None
        value = float(res.loss[0])
        for n in self.nodes:
            if abs(n.critical_value - value) <= 1e-8 * (1 + abs(value)):
                return n
        node = StratumNode(f"c{len(self.nodes)}", critical_value=value)
        self.nodes.append(node)
        return node


def test_searched_atlas_symmetry_dedup_mlp():
    # A tanh MLP: a critical point and its image under a hidden-unit permutation and a sign
    # flip (symmetries of f) must get one label; a different critical value must not.
    from flowgeom.critical import SearchedAtlas, find_critical_points
    from flowgeom.models.teacher import teacher_student

    data = teacher_student((3, 2, 1), 20, rng=np.random.default_rng(0), weight_scale=2.0)
    net = data.student((3, 4, 1))
    theta = 1e-3 * np.random.default_rng(1).standard_normal(net.n_params)
    atlas = SearchedAtlas(net, find_critical_points(net, theta[None], rng=np.random.default_rng(0)))
    (a,) = atlas.locate(theta[None], net.loss(theta[None]), plateau=True)
    assert a >= 0 and atlas.get(a).kind == "strict_saddle"
    W1 = theta[:12].reshape(4, 3).copy()
    W2 = theta[12:].reshape(1, 4).copy()
    perm = [2, 0, 3, 1]
    W1, W2 = W1[perm], W2[:, perm]
    W1[1] *= -1.0  # tanh is odd: flip unit 1's incoming and outgoing weights
    W2[:, 1] *= -1.0
    image = np.concatenate([W1.ravel(), W2.ravel()])
    assert float(net.loss(image)) == pytest.approx(float(net.loss(theta)), rel=1e-12)
    (b,) = atlas.locate(image[None], net.loss(image[None]), plateau=True)
    assert b == a and len(atlas.sets()) == 1
    far = 2.0 * np.random.default_rng(2).standard_normal(net.n_params)
    (c,) = atlas.locate(far[None], net.loss(far[None]), plateau=True)
    assert c != a