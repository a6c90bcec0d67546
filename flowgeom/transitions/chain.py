r"""The jump-chain model of the transitions: an absorbing Markov chain over the visited strata.

Along each trajectory the visits :math:`v_0 \to v_1 \to \dots` (:class:`~flowgeom.transitions.Visits`)
form a path of the *embedded jump chain* over strata: its state is the stratum of the current
plateau and it moves at each jump, whatever the flow time spent there. With the minima absorbing,
order the states transient first; the transition matrix is

.. math::

    P = \begin{pmatrix} Q & R \\ 0 & I \end{pmatrix}, \qquad
    N = (I - Q)^{-1}, \qquad B = N R, \qquad m = N \mathbf{1}, \qquad \tau = N d,

where :math:`N_{ij}` is the expected number of visits to :math:`j` starting from :math:`i` (the
fundamental matrix of Kemeny and Snell 1960, ch. III), :math:`B_{ia}` the probability of absorption
in :math:`a`, :math:`m_i` the expected number of jumps before absorption and, with :math:`d_j` the
mean flow time spent at :math:`j` per visit, :math:`\tau_i` the expected flow time spent on
plateaus before absorption. :func:`jump_chain` estimates :math:`P` from the observed jump counts,
sets intervals from a Dirichlet posterior over each row, and bins the dwell times per state;
:func:`~flowgeom.transitions.dataset.chain_dataset` and
:func:`~flowgeom.transitions.dataset.chain_from_dataset` store it in and read it from the
``transitions`` Dataset; :func:`to_deeptime` hands the counts to deeptime.

References
----------
J. G. Kemeny, J. L. Snell, *Finite Markov Chains*, Van Nostrand, 1960 (the fundamental matrix).
H. Jeffreys, "An invariant form for the prior probability in estimation problems", Proc. R. Soc. A
186 (1946) (the Dirichlet(1/2) prior).
D. B. Rubin, "The Bayesian bootstrap", Ann. Statist. 9 (1981) (the posterior of the mean dwell).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from flowgeom._validate import InputError, check_choice, check_int, check_positive, check_probability, check_seed
from flowgeom.transitions.detect import Visits
from flowgeom.transitions.identify import MINIMUM_KINDS, StratumNode

__all__ = [
    "JumpChain",
    "JumpChainWarning",
    "jump_chain",
    "absorbing_chain",
    "to_deeptime",
]

PRIOR = 0.5
"""Dirichlet concentration added to every admissible transition (Jeffreys' prior)."""

N_DWELL_BINS = 10
"""Bins of the per-state dwell-time histograms."""


class JumpChainWarning(UserWarning):
    """A tool's assumptions fail for the jump chain (see :func:`to_deeptime`)."""


@dataclass(frozen=True)
class JumpChain:
    r"""The embedded jump chain over visited strata, with its absorption quantities.

    States are the visited stratum labels, in the order of the graph's nodes (decreasing critical
    value). Arrays indexed by state have length ``n = len(states)``; the point estimates use the
    maximum-likelihood :math:`\hat P_{ij} = n_{ij} / \sum_k n_{ik}`; the ``_low``/``_high``
    arrays are equal-tailed posterior quantiles at ``level``.

    Attributes
    ----------
    states : tuple of str
    absorbing : ndarray of bool, shape (n,)
        Minima (:data:`MINIMUM_KINDS`) and states never left.
    counts : ndarray of int, shape (n, n)
        Observed jumps :math:`n_{ij}` between consecutive visits (rows of absorbing states are
        kept as observed but ignored by the chain).
    P : ndarray, shape (n, n)
        Estimated transition matrix; absorbing rows are rows of the identity.
    initial_counts : ndarray of int, shape (n,)
        Number of trajectories whose first visit is at the state.
    initial : ndarray, shape (n,)
        :math:`\pi_0`, the empirical distribution of first visits.
    absorption : ndarray, shape (n, a)
        :math:`B` (rows of absorbing states: the identity), columns ``absorbing_states``.
    absorption_low, absorption_high : ndarray, shape (n, a)
    expected_jumps, expected_jumps_low, expected_jumps_high : ndarray, shape (n,)
        :math:`m = N\mathbf{1}` (0 at absorbing states).
    expected_time, expected_time_low, expected_time_high : ndarray, shape (n,)
        :math:`\tau = N d` (0 at absorbing states).
    start_absorption, start_absorption_low, start_absorption_high : ndarray, shape (a,)
        :math:`\pi_0 B` (the initial mass on absorbing states counts as absorbed there).
    start_jumps, start_jumps_low, start_jumps_high : float
        :math:`\pi_0 m`.
    start_time, start_time_low, start_time_high : float
        :math:`\pi_0 \tau`.
    mean_dwell : ndarray, shape (n,)
        :math:`d`: mean ``t_exit - t_enter`` of the visits that left the state (NaN when none).
    n_dwell : ndarray of int, shape (n,)
    dwell_hist : ndarray of int, shape (n, n_bins)
        Histogram of those dwell times per state.
    dwell_edges : ndarray, shape (n, n_bins + 1)
        Its bin edges (NaN for a state with no dwell observed).
    level, prior : float
    support : str
    n_posterior, seed : int
    """

    states: tuple[str, ...]
    absorbing: np.ndarray
    counts: np.ndarray
    P: np.ndarray
    initial_counts: np.ndarray
    initial: np.ndarray
    absorption: np.ndarray
    absorption_low: np.ndarray
    absorption_high: np.ndarray
    expected_jumps: np.ndarray
    expected_jumps_low: np.ndarray
    expected_jumps_high: np.ndarray
    expected_time: np.ndarray
    expected_time_low: np.ndarray
    expected_time_high: np.ndarray
    start_absorption: np.ndarray
    start_absorption_low: np.ndarray
    start_absorption_high: np.ndarray
    start_jumps: float
    start_jumps_low: float
    start_jumps_high: float
    start_time: float
    start_time_low: float
    start_time_high: float
    mean_dwell: np.ndarray
    n_dwell: np.ndarray
    dwell_hist: np.ndarray
    dwell_edges: np.ndarray
    level: float
    prior: float
    support: str
    n_posterior: int
    seed: int

    @property
    def absorbing_states(self) -> tuple[str, ...]:
        """Labels of the absorbing states (columns of :attr:`absorption`)."""
        return tuple(s for s, a in zip(self.states, self.absorbing) if a)

    @property
    def transient_states(self) -> tuple[str, ...]:
        return tuple(s for s, a in zip(self.states, self.absorbing) if not a)

    @property
    def Q(self) -> np.ndarray:
        """Transient-to-transient block of :attr:`P`."""
        t = ~self.absorbing
        return self.P[np.ix_(t, t)]

    @property
    def R(self) -> np.ndarray:
        """Transient-to-absorbing block of :attr:`P`."""
        return self.P[np.ix_(~self.absorbing, self.absorbing)]

    @property
    def N(self) -> np.ndarray:
        r"""Fundamental matrix :math:`(I - Q)^{-1}` of the point estimate (Kemeny and Snell 1960)."""
        return absorbing_chain(self.P, self.absorbing)[0]


def absorbing_chain(P, absorbing, dwell=None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    r"""Fundamental matrix, absorption probabilities, expected jumps and times of an absorbing chain.

    .. math::

        N = (I - Q)^{-1}, \quad B = N R, \quad m = N \mathbf{1}, \quad \tau = N d

    (Kemeny and Snell 1960, ch. III). Transient states from which absorption
    is not certain (they can reach a closed class of transient states) get NaN in ``B``, ``m``
    and ``tau``, and so do their rows of ``N``.

    Parameters
    ----------
    P : array_like, shape (n, n)
        Row-stochastic transition matrix.
    absorbing : array_like of bool, shape (n,)
    dwell : array_like, shape (n,), optional
        Mean time per visit :math:`d`; default ones (then :math:`\tau = m`).

    Returns
    -------
    N : ndarray, shape (t, t)
    B : ndarray, shape (t, a)
    m : ndarray, shape (t,)
    tau : ndarray, shape (t,)
        Over the transient states (rows) and absorbing states (columns of ``B``) in the order of ``P``.
    """
    P = np.asarray(P, dtype=np.float64)
    ab = np.asarray(absorbing, dtype=bool)
    if P.ndim != 2 or P.shape[0] != P.shape[1] or ab.shape != (P.shape[0],):
        raise InputError(f"`P` must be square (n, n) with `absorbing` of shape (n,); got {P.shape}, {ab.shape}.")
    tr = ~ab
    Q, R = P[np.ix_(tr, tr)], P[np.ix_(tr, ab)]
    d = np.ones(int(tr.sum())) if dwell is None else np.asarray(dwell, dtype=np.float64)[tr]
    t = Q.shape[0]
    ok = _certain_absorption(Q, R)
    N = np.full((t, t), np.nan)
    B = np.full((t, R.shape[1]), np.nan)
    if ok.any():
        Nok = np.linalg.solve(np.eye(int(ok.sum())) - Q[np.ix_(ok, ok)], np.eye(int(ok.sum())))
        N[np.ix_(ok, ok)] = Nok
        N[np.ix_(ok, ~ok)] = 0.0
        B[ok] = Nok @ R[ok]
    m = N.sum(axis=1)
    with np.errstate(invalid="ignore"):
        tau = N @ d
    tau[~ok] = np.nan
    return N, B, m, tau


def _certain_absorption(Q: np.ndarray, R: np.ndarray) -> np.ndarray:
    """Transient states from which every path with positive probability reaches an absorbing state."""
    t = Q.shape[0]
    adj = Q > 0
    # states that can reach absorption at all
    reach = R.sum(axis=1) > 0
    for _ in range(t):
        new = reach | (adj & reach[None, :]).any(axis=1)
        if np.array_equal(new, reach):
            break
        reach = new
    # states that can reach a state that cannot: absorption is not certain
    bad = ~reach
    for _ in range(t):
        new = bad | (adj & bad[None, :]).any(axis=1)
        if np.array_equal(new, bad):
            break
        bad = new
    return ~bad


def _node_table(visits: Visits, nodes) -> dict[str, StratumNode]:
    src = nodes if nodes is not None else visits.nodes
    return {n.label: n for n in (StratumNode.from_stratum(s) for s in src)}


def _value(known, lab) -> float:
    n = known.get(lab)
    v = n.critical_value if n is not None else float("nan")
    return v if np.isfinite(v) else -np.inf


def _support(counts, states, known, absorbing, support) -> np.ndarray:
    """Admissible transitions (n, n) of the posterior: observed, or to any state of lower critical value."""
    if support == "observed":
        S = counts > 0
    else:
        v = np.array([_value(known, s) for s in states])
        unknown = ~np.isfinite(v)
        S = (v[None, :] < v[:, None]) | unknown[None, :] | unknown[:, None]
        np.fill_diagonal(S, False)
        S |= counts > 0
    S[absorbing] = False
    return S


def jump_chain(
    visits: Visits,
    nodes: Sequence[Any] | None = None,
    *,
    level: float = 0.95,
    n_posterior: int = 2000,
    seed: int = 0,
    prior: float = PRIOR,
    support: str = "observed",
    n_bins: int = N_DWELL_BINS,
) -> JumpChain:
    r"""The embedded jump chain of the visit sequences, with minima absorbing.

    Counts :math:`n_{ij}` of consecutive visits :math:`i \to j` along each trajectory give the
    maximum-likelihood :math:`\hat P_{ij} = n_{ij} / \sum_k n_{ik}`; the states of kind in
    :data:`MINIMUM_KINDS` and the states never left (every visit final or the record cut there)
    are absorbing, all others transient. A visit that ends its record without leaving is censored:
    it adds no jump. From :math:`\hat P` it computes (:func:`absorbing_chain`; Kemeny and Snell
    1960) :math:`N = (I - Q)^{-1}`, :math:`B = NR`, :math:`m = N\mathbf{1}` and
    :math:`\tau = N d`, where :math:`d_j` is the mean dwell ``t_exit - t_enter`` of the visits that
    left :math:`j`, and their averages over the initial distribution :math:`\pi_0` (the empirical
    distribution of first visits): :math:`\pi_0 B` (initial mass on an absorbing state is absorbed
    there), :math:`\pi_0 m`, :math:`\pi_0 \tau`. :math:`\tau` counts the time on plateaus only,
    not the time before the first plateau or between plateaus.

    Intervals: each transient row is drawn from the Dirichlet posterior
    :math:`p_{i\cdot} \sim \mathrm{Dir}(n_{i\cdot} + \alpha)` over its admissible transitions
    (``support``), :math:`\pi_0 \sim \mathrm{Dir}(n_0 + \alpha)` over the states first visited (or
    all states, ``support="downhill"``), and each mean dwell from the Bayesian bootstrap of its
    observed dwells (Rubin 1981); the equal-tailed quantiles of ``n_posterior`` draws of
    :math:`B`, :math:`m`, :math:`\tau` and their :math:`\pi_0` averages are the intervals.

    Parameters
    ----------
    visits : Visits
        From :func:`~flowgeom.transitions.detect_visits`.
    nodes : sequence of StratumNode or Stratum, optional
        Kinds and critical values of the states; default ``visits.nodes``. A label without a node
        has kind ``unknown`` (absorbing only when never left).
    level : float, default 0.95
        Posterior probability of the intervals.
    n_posterior : int, default 2000
        Monte-Carlo draws of the posterior.
    seed : int, default 0
        Seed of the draws.
    prior : float, default 0.5
        Dirichlet concentration :math:`\alpha` per admissible transition: 1/2 is Jeffreys' prior
        (1946), 1 the uniform.
    support : {"observed", "downhill"}, default "observed"
        Admissible transitions of a row: those observed, or every state of lower critical value
        (the gradient flow only goes down in loss; then unobserved jumps get prior mass and the
        intervals widen).
    n_bins : int, default 10
        Bins of the dwell-time histogram of each state (between its smallest and largest dwell).

    Returns
    -------
    JumpChain

    Raises
    ------
    TypeError
        ``visits`` is not a :class:`Visits`.
    flowgeom._validate.InputError
        An argument is out of range.
    """
    if not isinstance(visits, Visits):
        raise TypeError(f"`visits` must be a Visits (from detect_visits); got {type(visits).__name__}.")
    level = check_probability("level", level)
    n_posterior = check_int("n_posterior", n_posterior, minimum=1)
    n_bins = check_int("n_bins", n_bins, minimum=1)
    seed = check_seed(seed)
    prior = check_positive("prior", prior)
    support = check_choice("support", support, ("observed", "downhill"))
    known = _node_table(visits, nodes)

    seen: list[str] = []
    for s in visits.stratum:
        if str(s) not in seen:
            seen.append(str(s))
    states = tuple(sorted(seen, key=lambda lab: (-_value(known, lab), lab)))
    idx = {s: i for i, s in enumerate(states)}
    n = len(states)
    counts = np.zeros((n, n), dtype=np.int64)
    init_counts = np.zeros(n, dtype=np.int64)
    dwells: list[list[float]] = [[] for _ in range(n)]
    for j in range(visits.n_trajectories):
        rows = np.nonzero(visits.trajectory == j)[0]
        if rows.size == 0:
            continue
        init_counts[idx[str(visits.stratum[rows[0]])]] += 1
        for a, b in zip(rows[:-1], rows[1:]):
            i = idx[str(visits.stratum[a])]
            counts[i, idx[str(visits.stratum[b])]] += 1
            dwells[i].append(float(visits.t_exit[a] - visits.t_enter[a]))
    kinds = [known[s].kind if s in known else "unknown" for s in states]
    absorbing = np.array([k in MINIMUM_KINDS for k in kinds], dtype=bool) | (counts.sum(axis=1) == 0)
    P = np.zeros((n, n))
    left = counts.sum(axis=1)
    tr = ~absorbing
    P[tr] = counts[tr] / left[tr, None]
    P[absorbing, np.nonzero(absorbing)[0]] = 1.0
    n_traj = int(init_counts.sum())
    pi0 = init_counts / n_traj if n_traj else np.full(n, np.nan)
    mean_dwell = np.array([np.mean(d) if d else np.nan for d in dwells])
    n_dwell = np.array([len(d) for d in dwells], dtype=np.int64)

    _, B, m, tau = absorbing_chain(P, absorbing, np.where(np.isfinite(mean_dwell), mean_dwell, 0.0))
    full_B, full_m, full_tau = _full(B, m, tau, absorbing)
    start = _start(pi0, full_B, full_m, full_tau)

    draws = _posterior(counts, init_counts, dwells, absorbing, _support(counts, states, known, absorbing, support),
                       support, prior, n_posterior, np.random.default_rng(seed))
    q = ((1.0 - level) / 2.0, (1.0 + level) / 2.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices (uncertain absorption)
        lo_hi = {k: np.nanquantile(v, q, axis=0) if v.size else np.full((2,) + v.shape[1:], np.nan)
                 for k, v in draws.items()}

    if n_traj == 0:  # no visit at all: nothing to average over
        start = (start[0], np.nan, np.nan)
        lo_hi["sm"], lo_hi["stau"] = np.full(2, np.nan), np.full(2, np.nan)
    hist = np.zeros((n, n_bins), dtype=np.int64)
    edges = np.full((n, n_bins + 1), np.nan)
    for i, d in enumerate(dwells):
        if d:
            h, e = np.histogram(np.asarray(d), bins=n_bins)
            hist[i], edges[i] = h, e
    return JumpChain(
        states=states, absorbing=absorbing, counts=counts, P=P, initial_counts=init_counts, initial=pi0,
        absorption=full_B, absorption_low=lo_hi["B"][0], absorption_high=lo_hi["B"][1],
        expected_jumps=full_m, expected_jumps_low=lo_hi["m"][0], expected_jumps_high=lo_hi["m"][1],
        expected_time=full_tau, expected_time_low=lo_hi["tau"][0], expected_time_high=lo_hi["tau"][1],
        start_absorption=start[0], start_absorption_low=lo_hi["sB"][0], start_absorption_high=lo_hi["sB"][1],
        start_jumps=float(start[1]), start_jumps_low=float(lo_hi["sm"][0]), start_jumps_high=float(lo_hi["sm"][1]),
        start_time=float(start[2]), start_time_low=float(lo_hi["stau"][0]), start_time_high=float(lo_hi["stau"][1]),
        mean_dwell=mean_dwell, n_dwell=n_dwell, dwell_hist=hist, dwell_edges=edges,
        level=level, prior=prior, support=support, n_posterior=n_posterior, seed=seed,
    )


def _full(B, m, tau, absorbing):
    """B, m, tau over all states: absorbing rows are absorbed at once (identity, 0 jumps, 0 time)."""
    n, a = absorbing.size, int(absorbing.sum())
    fB = np.zeros((n, a))
    fB[~absorbing] = B
    fB[np.nonzero(absorbing)[0], np.arange(a)] = 1.0
    fm = np.zeros(n)
    fm[~absorbing] = m
    ft = np.zeros(n)
    ft[~absorbing] = tau
    return fB, fm, ft


def _start(pi0, fB, fm, ft):
    return pi0 @ fB, float(pi0 @ fm), float(pi0 @ ft)


def _posterior(counts, init_counts, dwells, absorbing, S, support, prior, n_draws, rng) -> dict[str, np.ndarray]:
    """Draws of B, m, tau (all states) and of their pi0 averages."""
    n = absorbing.size
    Ps = np.zeros((n_draws, n, n))
    for i in np.nonzero(~absorbing)[0]:
        cols = np.nonzero(S[i])[0]
        Ps[:, i, cols] = rng.dirichlet(counts[i, cols] + prior, size=n_draws)
    ai = np.nonzero(absorbing)[0]
    Ps[:, ai, ai] = 1.0
    init_sup = np.ones(n, dtype=bool) if support == "downhill" else init_counts > 0
    pis = np.zeros((n_draws, n))
    if init_counts.sum() == 0:
        pis[:] = np.nan  # no trajectory visited anything: no initial distribution
    elif init_sup.any():
        pis[:, init_sup] = rng.dirichlet(init_counts[init_sup] + prior, size=n_draws)
    ds = np.zeros((n_draws, n))
    for i, d in enumerate(dwells):
        if d and not absorbing[i]:
            w = rng.dirichlet(np.ones(len(d)), size=n_draws)
            ds[:, i] = w @ np.asarray(d)
    # the support is the same in every draw, so is the set of states of certain absorption: solve in one batch
    tr = ~absorbing
    ok = _certain_absorption(S[np.ix_(tr, tr)].astype(float), S[np.ix_(tr, absorbing)].astype(float))
    t_idx = np.nonzero(tr)[0]
    k_ok = t_idx[ok]
    fB = np.zeros((n_draws, n, int(absorbing.sum())))
    fB[:, ai, np.arange(ai.size)] = 1.0
    fB[:, t_idx[~ok]] = np.nan
    fm = np.zeros((n_draws, n))
    ft = np.zeros((n_draws, n))
    fm[:, t_idx[~ok]] = np.nan
    ft[:, t_idx[~ok]] = np.nan
    if k_ok.size:
        A = np.eye(k_ok.size)[None] - Ps[:, k_ok[:, None], k_ok[None, :]]
        rhs = np.concatenate([Ps[:, k_ok[:, None], ai[None, :]], np.ones((n_draws, k_ok.size, 1)),
                              ds[:, k_ok, None]], axis=2)
        sol = np.linalg.solve(A, rhs)
        fB[:, k_ok] = sol[:, :, : ai.size]
        fm[:, k_ok] = sol[:, :, ai.size]
        ft[:, k_ok] = sol[:, :, ai.size + 1]
    out = {"B": fB, "m": fm, "tau": ft, "sB": np.einsum("kn,kna->ka", pis, fB), "sm": np.einsum("kn,kn->k", pis, fm),
           "stau": np.einsum("kn,kn->k", pis, ft)}
    return {k: np.asarray(v) for k, v in out.items()}


# ----------------------------------------------------------------------------- deeptime
_DEEPTIME_WARNING = (
    "the jump chain breaks the assumptions of a Markov state model: it is not ergodic (minima are "
    "absorbing, so there is no unique stationary distribution to speak of), not reversible (gradient flow "
    "only goes down in loss: detailed balance fails), and has no fixed lag time (one step is one jump "
    "between plateaus, whatever flow time it took). Use the counts and the transition matrix as they are; "
    "do not read implied timescales, stationary distributions or reversible estimates from them."
)


def to_deeptime(chain: JumpChain, *, what: str = "msm"):
    r"""Hand the jump chain to deeptime (optional extra, ``pip install deeptime``).

    ``what="counts"`` gives a ``deeptime.markov.TransitionCountModel`` of the count matrix
    :math:`n_{ij}` (lag time 1 = one jump, absorbing rows with one self-count so that every state
    is a state of the count model); ``what="msm"`` a ``deeptime.markov.msm.MarkovStateModel`` of
    the estimated :math:`\hat P` (absorbing rows are rows of the identity), with that count
    model. Both emit a :class:`JumpChainWarning`: the jump chain is not ergodic (absorbing
    minima), not reversible, and has no fixed lag time (jumps, not time steps); quantities that
    assume these (stationary distribution, implied timescales, reversible MLE) are meaningless.

    Parameters
    ----------
    chain : JumpChain
    what : {"msm", "counts"}, default "msm"

    Returns
    -------
    deeptime.markov.msm.MarkovStateModel or deeptime.markov.TransitionCountModel

    Raises
    ------
    ImportError
        deeptime is not installed (with the install hint).
    """
    if not isinstance(chain, JumpChain):
        raise TypeError(f"`chain` must be a JumpChain (from jump_chain); got {type(chain).__name__}.")
    what = check_choice("what", what, ("msm", "counts"))
    try:
        from deeptime.markov import TransitionCountModel
        from deeptime.markov.msm import MarkovStateModel
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("to_deeptime needs deeptime, an optional extra: pip install deeptime") from exc
    warnings.warn(_DEEPTIME_WARNING, JumpChainWarning, stacklevel=2)
    C = np.asarray(chain.counts, dtype=np.float64).copy()
    ai = np.nonzero(chain.absorbing)[0]
    C[ai] = 0.0
    C[ai, ai] = 1.0
    counts = TransitionCountModel(C, lagtime=1, state_symbols=np.arange(len(chain.states)))
    if what == "counts":
        return counts
    return MarkovStateModel(np.asarray(chain.P, dtype=np.float64), reversible=False, count_model=counts)
