r"""Sampling transitions: simulate an ensemble from small initializations, end to end.

:func:`sample_transitions` draws Gaussian or aligned initializations, integrates the gradient
flow at log-spaced save times, detects and identifies the visits against the atlas, builds the
graph and sets the theory beside it, returning the ``transitions`` Dataset.
"""

from __future__ import annotations

from typing import Any, Literal, Mapping, Sequence

import numpy as np
import xarray as xr

from flowgeom.problem import Problem
from flowgeom.transitions._common import _check_positive
from flowgeom.transitions.dataset import transitions_dataset
from flowgeom.transitions.detect import detect_visits
from flowgeom.transitions.graph import CONFIDENCE_LEVEL, build_transition_graph
from flowgeom.transitions.identify import AtlasIdentifier
from flowgeom.linear.theory import _scalar_chain_time, transition_theory

__all__ = [
    "sample_transitions",
]


def _transition_inits(
    problem: Problem, n_samples: int, *, init_scale: float, init: str = "gaussian", seed: int | None = 0,
    coordinates: Literal["auto", "canonical", "original"] = "auto",
) -> np.ndarray:
    r"""Initial parameters, shape ``(n_samples, n)``, in the coordinates of ``problem.network(coordinates)``.

    ``"gaussian"``: i.i.d. :math:`N(0, \varepsilon^2)` entries. ``"aligned"``: every sample
    :math:`W_j = \varepsilon E_j` with ones at (i, i), i < d_y (the balanced scalar chains of
    :func:`transition_theory`; deterministic).
    """
    n_samples = int(n_samples)
    if n_samples < 1:
        raise ValueError(f"`n_samples` must be a positive int; got {n_samples!r}.")
    eps = _check_positive("init_scale", init_scale)
    net = problem.network(coordinates)
    if init == "gaussian":
        rng = np.random.default_rng(seed)
        return eps * rng.standard_normal((n_samples, net.n_params))
    if init == "aligned":
        W = []
        for (dj, dj1) in net.shapes:
            Wj = np.zeros((dj, dj1))
            for i in range(problem.d_y):
                Wj[i, i] = eps
            W.append(Wj)
        theta = net.pack(W)
        if coordinates != "canonical" and not problem.whitened:
            raise ValueError("`init='aligned'` is defined in canonical coordinates; use whitened data.")
        return np.broadcast_to(theta, (n_samples, net.n_params)).copy()
    raise ValueError(f"`init` must be 'gaussian' or 'aligned'; got {init!r}.")


def sample_transitions(
    problem: Problem,
    n_samples: int,
    *,
    init_scale: float = 1e-8,
    init: Literal["gaussian", "aligned"] = "gaussian",
    seed: int | None = 0,
    t1: float | None = None,
    method: str = "dopri5",
    rtol: float = 1e-8,
    atol: float = 1e-12,
    n_save: int = 400,
    grad_tol: float = 1e-10,
    strata: Sequence[Any] | None = None,
    detect_options: Mapping[str, Any] | None = None,
    confidence_level: float = CONFIDENCE_LEVEL,
    theory: bool = True,
    integrate_options: Mapping[str, Any] | None = None,
) -> xr.Dataset:
    r"""Simulate an ensemble from small initializations and return the ``transitions`` Dataset.

    Samples ``n_samples`` initializations (Gaussian or aligned, see ``init``), integrates the
    gradient flow :math:`\dot\theta = -\nabla L(\theta)` of ``problem.network("auto")`` (the
    flow the user runs) with :func:`flowgeom.integrate.integrate` at log-spaced save times,
    detects and identifies the visits against the atlas (:func:`detect_visits`), builds the
    graph (:func:`build_transition_graph`) and, for whitened data, sets the theory beside it
    (:func:`transition_theory`).

    Parameters
    ----------
    problem : Problem
    n_samples : int
    init_scale : float, default 1e-8
        :math:`\varepsilon`, the scale of the initialization. Small enough that trajectories pass
        close to every saddle of the sequence: the closest approach to a saddle improves as a
        positive power of :math:`\varepsilon`, and at 1e-4 the passage near ``{0}`` of the default
        problem s = (3, 2, 1) is a shoulder of the loss curve, not a plateau.
    init : {"gaussian", "aligned"}, default "gaussian"
    seed : int or None, default 0
    t1 : float or None, default None
        End time; default three times (ten times for a Gaussian init with H >= 2, whose
        escape prefactor is random) the latest predicted jump time (scalar-chain estimate
        with :math:`w(0) = \varepsilon`, divided by :math:`\min_i S_{X,i}^2` for unwhitened
        data) plus :math:`20/s_{min}`. Check ``n_unfinished`` in the result.
    method, rtol, atol, grad_tol : see :func:`flowgeom.integrate.integrate`
        Defaults "dopri5", 1e-8, 1e-12, 1e-10.
    n_save : int, default 400
        Number of log-spaced save times.
    strata : sequence of Stratum, optional
        The atlas (default ``flowgeom.critical.enumerate_strata(problem)``).
    detect_options : mapping, optional
        Keyword arguments of :func:`detect_visits` (thresholds).
    confidence_level : float, default 0.95
    theory : bool, default True
        Add the theory (whitened problems only).
    integrate_options : mapping, optional
        Further keyword arguments of :func:`flowgeom.integrate.integrate` (e.g. ``backend``,
        ``max_steps``).

    Returns
    -------
    xarray.Dataset
        See :func:`transitions_dataset`.
    """
    from flowgeom.flow import SaveAt, integrate

    if not isinstance(problem, Problem):
        raise TypeError(f"`problem` must be a flowgeom.Problem; got {type(problem).__name__}.")
    eps = _check_positive("init_scale", init_scale)
    net = problem.network("auto")
    theta0 = _transition_inits(problem, n_samples, init_scale=eps, init=init, seed=seed)
    s = np.asarray(problem.singular_values)
    if t1 is None:
        t_pred = max(_scalar_chain_time(float(sk), eps, problem.depth_H)[0] for sk in s)
        slow = 1.0 if problem.whitened else 1.0 / float(np.min(problem.S_X)) ** 2
        factor = 10.0 if (init == "gaussian" and problem.depth_H >= 2) else 3.0
        t1 = (factor * t_pred + 20.0 / float(s.min())) * slow
    t1 = _check_positive("t1", t1)
    saveat = SaveAt(n_log=int(n_save))
    traj = integrate(
        net, theta0, t1, method=method, rtol=rtol, atol=atol, saveat=saveat, grad_tol=grad_tol,
        **dict(integrate_options or {}),
    )
    ident = AtlasIdentifier(problem, strata)
    visits = detect_visits(traj, problem, strata=ident.strata, identify=ident, **dict(detect_options or {}))
    tg = build_transition_graph(visits, ident.nodes, confidence_level=confidence_level)
    th = None
    if theory and problem.whitened:
        th = transition_theory(problem, eps, init=init)
    attrs = dict(problem.attrs())
    attrs.update(
        seed=seed, init=init, init_scale=eps, n_samples=int(n_samples), t1=float(t1), integrator=method,
        loss_offset=float(problem.loss_offset),
        rtol=float(rtol), atol=float(atol), grad_tol=float(grad_tol),
    )
    return transitions_dataset(tg, theory=th, traj=traj, attrs=attrs)
