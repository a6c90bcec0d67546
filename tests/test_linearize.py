"""Tests of flowgeom.linearize: inertia counts (dense / LDL / Lanczos), gap rule, Morse-Bott and stable codimension.

Reference values:
- quadratic models with prescribed spectra (exact inertia by construction);
- Baldi & Hornik (1989), "Neural networks and principal component analysis: learning from
  examples without local minima", Neural Networks 2(1):53-58: the critical points of a two-layer
  linear network on data (X, Y) are W2 = U_I C, W1 = C^{-1} U_I^T Sigma_YX Sigma_XX^{-1}
  (U_I: eigenvectors of Sigma = Sigma_YX Sigma_XX^{-1} Sigma_XY for an index set I, C invertible),
  with loss 1/2 (tr Sigma_YY - sum_{i in I} lambda_i); only I = all top eigenvalues is a minimum.
"""

import itertools

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from flowgeom import DeepLinearNetwork, Problem
from flowgeom.linear.charts import apply_gauge, charts_for_stratum, make_chart, random_gauge
from flowgeom.critical.linearization import (
    Inertia,
    hessian_inertia,
    linearize,
    negative_eigenvalues,
    stable_codimension,
)


class Quadratic:
    """L = 1/2 theta^T A theta with A = Q diag(lam) Q^T (a minimal Model)."""

    def __init__(self, lam, rng):
        lam = np.asarray(lam, dtype=float)
        Q, _ = np.linalg.qr(rng.standard_normal((lam.size, lam.size)))
        self.A = (Q * lam) @ Q.T
        self.A = 0.5 * (self.A + self.A.T)

    @property
    def n_params(self):
        return self.A.shape[0]

    def loss(self, th):
        return 0.5 * np.einsum("...i,ij,...j->...", th, self.A, th)

    def grad(self, th):
        return th @ self.A

    def hvp(self, th, v):
        return np.broadcast_to(np.asarray(v) @ self.A, np.broadcast_shapes(np.shape(th), np.shape(v))).copy()

    def hessian(self, th):
        return np.broadcast_to(self.A, np.shape(th)[:-1] + self.A.shape).copy()

    def conserved(self, th):
        return np.zeros(np.shape(th)[:-1] + (0,))


# closed forms for H = 1 (derived in flowgeom/critical/manifolds.py docstring and the atlas notes,
# independently of the code): the stratum S has dimension 2 d1 r - r^2 + (d1 - r)(dx - dy), the
# Hessian kernel is exactly its tangent space, and the (a2, c2) block of unlearned mode k is
# [[Cbar^T Cbar, -s_k I], [-s_k I, Abar Abar^T + B B^T]], nonsingular with d1 - #{i in S: s_i > s_k}
# negative eigenvalues.
def closed_form_h1(widths, s, S):
    dx, d1, dy = widths
    r = len(S)
    dim = 2 * d1 * r - r * r + (d1 - r) * (dx - dy)
    neg = sum(d1 - sum(1 for i in S if s[i] > s[k]) for k in range(dy) if k not in S)
    n = d1 * (dx + dy)
    return neg, dim, n - neg - dim


# ---------------------------------------------------------------------------- inertia methods
@pytest.mark.parametrize("method", ["dense", "ldl", "lanczos"])
def test_inertia_quadratic_prescribed_spectrum(method, rng):
    lam = np.concatenate([-rng.uniform(0.5, 2.0, 3), np.zeros(4), rng.uniform(0.5, 2.0, 20)])
    m = Quadratic(lam, rng)
    inr = hessian_inertia(m, np.zeros(m.n_params), method=method)
    assert inr.triple == (3, 4, 20)
    assert inr.decided and inr.dim == m.n_params
    true = np.max(np.abs(lam))
    if method == "dense":
        assert inr.scale == pytest.approx(true, rel=1e-12)
    else:  # power-iteration estimate: a lower bound within a few percent
        assert 0.95 * true <= inr.scale <= true * (1 + 1e-12)


def test_inertia_gap_rule_flags_ambiguous_eigenvalue(rng):
    # tau = 1e-8 * scale = 2e-8; an eigenvalue 5e-8 lies within sqrt(1e3) ~ 31.6 of tau: undecided
    lam = np.array([-1.0, 0.0, 0.0, 5e-8, 1.0, 2.0])
    m = Quadratic(lam, rng)
    for method in ("dense", "ldl"):
        inr = hessian_inertia(m, np.zeros(6), method=method)
        assert inr.triple == (1, 2, 3)
        assert inr.decided is False
    # 1e-5 is far enough (500 tau): decided, and the recorded gap exceeds gap_min
    lam[3] = 1e-5
    m = Quadratic(lam, rng)
    for method in ("dense", "ldl"):
        inr = hessian_inertia(m, np.zeros(6), method=method)
        assert inr.triple == (1, 2, 3) and inr.decided and inr.gap >= 1e3
    dense = hessian_inertia(m, np.zeros(6), method="dense")
    assert dense.min_nonzero == pytest.approx(1e-5, rel=1e-6)
    assert dense.max_zero < 1e-14


def test_inertia_bad_input(rng):
    m = Quadratic([1.0, -1.0], rng)
    with pytest.raises(ValueError, match="`method`"):
        hessian_inertia(m, np.zeros(2), method="qr")
    with pytest.raises(ValueError, match="`theta`"):
        hessian_inertia(m, np.zeros((2, 2)))
    with pytest.raises(ValueError, match="`zero_rtol`"):
        hessian_inertia(m, np.zeros(2), zero_rtol=0.0)


def test_dense_ldl_lanczos_agree_on_network_points(rng):
    pb = Problem.from_spectrum([3.0, 2.0, 1.0], (6, 5, 3))
    net = pb.network()
    for S in [(), (0,), (1,), (0, 1), (0, 1, 2)]:
        ch = make_chart(pb, S)
        th = ch.point(ch.sample(rng))
        d = hessian_inertia(net, th, method="dense")
        l = hessian_inertia(net, th, method="ldl")
        assert d.decided and l.decided
        assert d.triple == l.triple
        if d.n_negative + d.n_zero < 20:
            z = hessian_inertia(net, th, method="lanczos")
            assert z.triple == d.triple


def test_negative_eigenvalues_matrix_free(rng):
    lam = np.concatenate([-np.linspace(0.5, 2.0, 11), np.zeros(5), np.linspace(0.5, 3.0, 30)])
    m = Quadratic(lam, rng)
    nneg, ev, decided = negative_eigenvalues(m, np.zeros(m.n_params))
    assert nneg == 11 and decided
    np.testing.assert_allclose(ev[:11], np.sort(lam)[:11], rtol=1e-8)
    nneg, _, decided = negative_eigenvalues(m, np.zeros(m.n_params), max_k=8)
    assert nneg == -1 and not decided


# ---------------------------------------------------------------------------- H = 1 closed forms
@pytest.mark.parametrize("widths", [(3, 2, 2), (4, 3, 2), (4, 4, 3), (6, 5, 4)])
def test_h1_inertia_matches_closed_form_and_is_morse_bott(widths, rng):
    dy = widths[-1]
    s = np.linspace(1.0, 2.5, dy)[::-1]
    pb = Problem.from_spectrum(s, widths)
    net = pb.network()
    for r in range(dy + 1):
        for S in itertools.combinations(range(dy), r):
            ch = make_chart(pb, S)
            z = ch.sample(rng)
            th = ch.point(z)
            dim, gap = ch.tangent_dim(z)
            lin = linearize(net, th, manifold_dim=dim)
            assert lin.inertia.triple == closed_form_h1(widths, s, S)
            assert lin.inertia.dim == net.n_params
            assert lin.morse_bott and lin.stable_codim == lin.inertia.n_negative
            assert lin.kind == ("minimum" if r == dy else "strict_saddle")


# ---------------------------------------------------------------------------- Sylvester along gauge orbits
@pytest.mark.parametrize("widths", [(4, 3, 2), (4, 3, 3, 2)])
def test_inertia_invariant_along_gauge_orbits(widths, rng):
    pb = Problem.from_spectrum([2.0, 1.0], widths)
    net = pb.network()
    for S in [(), (0,), (1,), (0, 1)]:
        for ch in charts_for_stratum(pb, S)[:2]:
            th = ch.point(ch.sample(rng))
            base = hessian_inertia(net, th, zero_atol=1e-12)
            for _ in range(3):
                W2 = apply_gauge(net.unpack(th), random_gauge(widths, rng))
                th2 = net.pack(W2)
                assert np.linalg.norm(net.grad(th2)) < 1e-12
                assert float(net.loss(th2)) == pytest.approx(float(net.loss(th)), abs=1e-12)
                assert hessian_inertia(net, th2, zero_atol=1e-12).triple == base.triple


# ---------------------------------------------------------------------------- Baldi-Hornik reference
def test_baldi_hornik_critical_points_on_data(rng):
    dx, d1, dy, m = 4, 3, 3, 12
    X = rng.standard_normal((dx, m)) * np.array([[2.0], [1.0], [0.7], [1.5]])
    Y = rng.standard_normal((dy, dx)) @ X + 0.3 * rng.standard_normal((dy, m))
    pb = Problem.from_data(X, Y, (dx, d1, dy))
    net = pb.network()  # original coordinates (not whitened)
    Sxx, Syx, Syy = X @ X.T, Y @ X.T, Y @ Y.T
    Sig = Syx @ np.linalg.solve(Sxx, Syx.T)
    lam, U = np.linalg.eigh(Sig)
    order = np.argsort(lam)[::-1]
    lam, U = lam[order], U[:, order]
    np.testing.assert_allclose(np.sqrt(lam), pb.singular_values, rtol=1e-10)
    can = DeepLinearNetwork.canonical(pb.widths, pb.singular_values)
    for r in range(dy + 1):
        for I in itertools.combinations(range(dy), r):
            C = np.eye(d1) + 0.3 * rng.standard_normal((d1, d1))
            UI = np.zeros((dy, d1))
            UI[:, :r] = U[:, list(I)]
            W2 = UI @ C
            W1 = np.linalg.solve(C, UI.T @ Syx @ np.linalg.inv(Sxx))
            th = net.pack([W1, W2])
            assert np.linalg.norm(net.grad(th)) < 1e-9
            expected = 0.5 * (np.trace(Syy) - lam[list(I)].sum())
            assert float(net.loss(th)) == pytest.approx(expected, rel=1e-10, abs=1e-10)
            # Sylvester: the data Hessian and the canonical Hessian at the mapped point are congruent
            thc = can.pack(pb.to_canonical([W1, W2]))
            a = hessian_inertia(net, th)
            b = hessian_inertia(can, thc)
            assert a.triple == b.triple
            # Baldi-Hornik: only I = {0..dy-1} is a local minimum; every other I is a saddle
            assert (a.n_negative == 0) == (r == dy)


# ---------------------------------------------------------------------------- stable codimension rule
def test_stable_codimension_rule():
    def mk(nn, nz, npos, decided=True):
        return Inertia(nn, nz, npos, 1e-8, 0.0, 1.0, 1e9, 1.0, "dense", decided)

    assert stable_codimension(mk(2, 5, 3), 5)[:2] == (2, 2)
    codim, lower, why = stable_codimension(mk(0, 7, 3), 5)
    assert (codim, lower) == (-1, 0) and "undecided by linearization" in why
    assert stable_codimension(mk(1, 3, 6), 5)[0] == -1  # n0 < dim: inconsistent
    assert stable_codimension(mk(1, 3, 6, decided=False), 3)[:2] == (-1, -1)
    assert stable_codimension(mk(1, 3, 6), -1)[:2] == (-1, 1)


# ---------------------------------------------------------------------------- the flow confirms codim 1
def test_stable_set_of_saddle_0_has_codimension_one_in_322(rng):
    r"""(3,2,2): measured n_- = 1 at stratum {0} (Morse-Bott), so its stable set is a hypersurface.

    Independent check with scipy's solve_ivp: the global minima {W2 W1 = Sigma} form two components
    (sign of det W2, W2 is 2 x 2 invertible there); their basins are open, so on a segment between
    initializations converging to different components there is a point converging elsewhere.
    Bisection finds it, and its trajectory plateaus at the critical value of {0}, 1/2 s_2^2:
    a set of codimension >= 2 (the paper's Proof 2 conclusion) could not separate the two basins.
    """
    pb = Problem.from_spectrum([2.0, 1.0], (3, 2, 2))
    net = pb.network()

    def run(th0, t1=60.0):
        sol = solve_ivp(lambda t, y: -net.grad(y), (0, t1), th0, rtol=1e-9, atol=1e-12, method="DOP853",
                        dense_output=True)
        return sol

    def sign_det(th):
        W1, W2 = net.unpack(th)
        return np.sign(np.linalg.det(W2))

    a = 0.5 * rng.standard_normal(net.n_params)
    b = a.copy()
    W1, W2 = net.unpack(b)
    W2b = W2.copy()
    W2b[1] *= -1  # flip the sign of det W2 and of the second output row
    W1b = W1.copy()
    b = net.pack([W1b, W2b])
    ya, yb = run(a).y[:, -1], run(b).y[:, -1]
    assert float(net.loss(ya)) < 1e-8 and float(net.loss(yb)) < 1e-8
    sa, sb = sign_det(ya), sign_det(yb)
    assert sa != sb
    lo, hi = 0.0, 1.0
    for _ in range(26):
        mid = 0.5 * (lo + hi)
        ym = run((1 - mid) * a + mid * b).y[:, -1]
        if float(net.loss(ym)) < 1e-6 and sign_det(ym) == sa:
            lo = mid
        elif float(net.loss(ym)) < 1e-6:
            hi = mid
        else:
            break
    sol = run((1 - lo) * a + lo * b, t1=60.0)
    ts = np.linspace(0, 60, 601)
    losses = net.loss(sol.sol(ts).T)
    near = np.abs(losses - 0.5 * 1.0**2) < 1e-3  # critical value of {0}
    assert near.sum() * 0.1 > 5.0  # lingers at the {0} plateau for a long time
    assert not np.any(np.abs(losses - 2.0) < 1e-3)  # not the {1} plateau (critical value 2.0)
