r"""Sampling transitions: simulate an ensemble from small initializations, end to end.

:func:`sample_transitions` draws Gaussian or aligned initializations, integrates the gradient
flow at log-spaced save times, detects and identifies the visits against the atlas, builds the
graph and sets the theory beside it, returning the ``transitions`` Dataset.
"""

from __future__ import annotations

from typing import Any, Literal, Mapping

import numpy as np
import xarray as xr

from flowgeom._validate import InputError
from flowgeom.problem import Problem  # noqa: F401  (type of _transition_inits)
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
        raise InputError(f"`n_samples` must be a positive int; got {n_samples!r}.")
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
            raise InputError("`init='aligned'` is defined in canonical coordinates; use whitened data.")
        return np.broadcast_to(theta, (n_samples, net.n_params)).copy()
    raise InputError(f"`init` must be 'gaussian' or 'aligned'; got {init!r}.")


def _default_t1(atlas, eps: float, init: str) -> float:
    r"""End time: three times the latest predicted escape plus :math:`20/s_{min}`.

    Deep linear problems: the scalar-chain estimate of :func:`flowgeom.linear.theory` with
    :math:`w(0) = \varepsilon` (ten times for a Gaussian init with H >= 2, whose escape prefactor is
    random), times :math:`(\min_i S_{X,i})^{-2/(H+1)}` for unwhitened data: in the original coordinates only
    :math:`W_1` feels :math:`X` (:math:`W_1' = W_1 U_X S_X` moves with the preconditioner :math:`S_X^2`), so a
    balanced chain :math:`p = S w^{H+1}` obeys :math:`\dot p = (H+1) S^{2/(H+1)} p^{2H/(H+1)} (s - p)`: its time
    scale is the whitened one times :math:`S^{-2/(H+1)}` (the former factor :math:`S^{-2}` stopped raw
    Linnerud, :math:`S_{X,min} = 16.6`, at t1 = 0.33 before its last mode was learned). Other models with data (X, Y):
    the linear-regime estimate with s the singular values of :math:`Y X^T`.
    """
    problem = getattr(atlas, "problem", None)
    if problem is not None:
        s = np.asarray(problem.singular_values)
        t_pred = max(_scalar_chain_time(float(sk), eps, problem.depth_H)[0] for sk in s)
        slow = 1.0 if problem.whitened else float(np.min(problem.S_X)) ** (-2.0 / (problem.depth_H + 1))
        factor = 10.0 if (init == "gaussian" and problem.depth_H >= 2) else 3.0
        return (factor * t_pred + 20.0 / float(s.min())) * slow
    model = atlas.model
    X, Y = getattr(model, "X", None), getattr(model, "Y", None)
    if X is None or Y is None:
        raise InputError("`t1` is required for a model without data (X, Y): pass t1=...")
    widths = getattr(model, "widths", (0, 0, 0))
    H = len(widths) - 2
    sv = np.linalg.svd(np.asarray(Y) @ np.asarray(X).T, compute_uv=False)
    sv = sv[sv > 1e-10 * max(1.0, float(sv[0]))] if sv.size else sv
    smin = float(sv.min()) if sv.size else 1.0
    t_pred = max(_scalar_chain_time(smin, eps, max(H, 1))[0], 1.0 / smin)
    factor = 10.0 if H >= 2 else 3.0
    return factor * t_pred + 20.0 / smin


def _depth_of(atlas) -> int:
    """H (hidden layers) of the atlas's problem or layered model; 1 when unknown."""
    problem = getattr(atlas, "problem", None)
    if problem is not None:
        return int(problem.depth_H)
    widths = getattr(atlas.model, "widths", None)
    return max(1, len(widths) - 2) if widths is not None else 1


def default_init_scale(depth_H: int) -> float:
    r"""The default transition init scale: :math:`10^{-8}` for H = 1, :math:`10^{-2/(H-1)}` for H >= 2.

    For H = 1 the origin is a strict saddle: the escape from a scale :math:`\varepsilon` takes
    :math:`\sim\ln(1/\varepsilon)/s_1`, so a tiny scale costs little and makes every plateau long. For
    H >= 2 the origin is a non-strict saddle, :math:`\|\nabla L\| \sim s\,\varepsilon^H`, and the escape takes
    :math:`\sim\varepsilon^{-(H-1)}/((H-1)s_1)` (Saxe et al. 2014): at :math:`10^{-8}` the gradient is below any
    useful ``grad_tol`` (the run stops at the origin) and the escape time is astronomical. The scale with
    :math:`\varepsilon^{H-1} = 10^{-2}` (0.01 for H = 2, 0.1 for H = 3) keeps the escape ~100/s_1 and the
    plateaus clear (``{} -> {0} -> {0,1} -> ...`` for s = (3, 2, 1), H = 2).
    """
    H = int(depth_H)
    return 1e-8 if H <= 1 else float(10.0 ** (-2.0 / (H - 1)))


def check_init_scale(atlas, init_scale: float, *, grad_tol: float = 1e-10, seed: int | None = 0) -> None:
    r"""Refuse a transition init scale whose initializations already have :math:`\|\nabla L\| \le` ``grad_tol``.

    Such trajectories stop at the origin at t = 0 as "converged" and the graph is empty (H >= 2 at
    :math:`\varepsilon = 10^{-8}`). Checked on 8 Gaussian draws (median). Cheap: one gradient.

    Raises
    ------
    InputError
        Naming the scale, the depth, the gradient, and the fix (:func:`default_init_scale`).
    """
    eps = _check_positive("init_scale", init_scale)
    if not grad_tol > 0:
        return
    net = atlas.model
    theta = eps * np.random.default_rng(seed).standard_normal((8, net.n_params))
    with np.errstate(all="ignore"):
        g = float(np.median(np.linalg.norm(net.grad(theta), axis=1)))
    if g <= grad_tol:
        H = _depth_of(atlas)
        raise InputError(
            f"`init_scale` = {eps:g} is too small for depth H = {H}: the gradient at the initializations "
            f"(median {g:.2g}) is already below `grad_tol` = {grad_tol:g}, so every trajectory would stop at the "
            f"origin (for H >= 2 the escape takes ~ eps^-(H-1)). Use init_scale >= {default_init_scale(H):g} "
            "(the default for this depth; command line: --transition-scale of `atlas`, --init-scale of "
            "`transitions`) or a smaller grad_tol.")


PROGRESS_CHUNKS = 20
PROGRESS_MIN_CHUNK = 8  # trajectories per chunk at least: the numpy integrators amortize their per-step overhead
"""With ``progress=True`` the ensemble is integrated in about this many chunks (one bar update each)."""


def _concat_trajectories(parts):
    """One :class:`~flowgeom.flow.Trajectory` from chunks of the same run (same save times, method, tolerances)."""
    import dataclasses

    first = parts[0]
    if len(parts) == 1:
        return first
    per_sample = ("loss", "grad_norm", "y_final", "t_final", "loss_final", "grad_norm_final", "status", "n_steps",
                  "n_rhs", "invariant_drift")
    fields = {k: np.concatenate([getattr(p, k) for p in parts], axis=0) for k in per_sample}
    fields["ys"] = None if first.ys is None else np.concatenate([p.ys for p in parts], axis=0)
    return dataclasses.replace(first, **fields)


def _integrate_part(common, a, theta0):
    """One chunk of :func:`_integrate_ensemble` (module level: it runs in worker processes)."""
    from flowgeom.flow import integrate

    net, t1, method, kw = common
    return a, integrate(net, theta0, t1, method=method, **kw)


def _integrate_ensemble(net, theta0, t1, *, method, progress, **kw):
    r"""``integrate(net, theta0, t1, method=method, **kw)``, in chunks: on worker processes, with a progress bar.

    Every trajectory is integrated with its own adaptive step, so the chunks give the same trajectories as
    one batched call; ``method="auto"`` is decided once for the whole ensemble (the stiffness estimate of
    :func:`flowgeom.flow.integrate`, recorded in ``Trajectory.info`` as usual) and then imposed on every
    chunk. Where the flow runs numpy code (no compiled kernel: Rosenbrock beyond dense sizes, nonlinear
    models) and there are several chunks, they run on local worker processes (:mod:`flowgeom._processes`:
    they die with this one, Ctrl-C stops them); the compiled kernels use every core by themselves. The bar
    (tqdm, with an ETA; :mod:`flowgeom._progress`) is shown when ``progress`` is True.
    """
    import dataclasses

    from flowgeom._processes import _interrupts, _usable_cpus, run_processes
    from flowgeom._progress import progress_bar
    from flowgeom.flow import integrate
    from flowgeom.flow._integrate import _resolve_backend

    N = theta0.shape[0]
    info = None
    if method == "auto" and N >= 2:
        from flowgeom.flow._stiffness import stiffness

        with np.errstate(all="ignore"):
            est = stiffness(net, theta0, 0.0, float(t1), float(kw.get("grad_tol", 0.0)))
        method = "rosenbrock" if est["stiff"] else "dopri5"
        info = {"requested": "auto", **est}
    size = max(PROGRESS_MIN_CHUNK, -(-N // PROGRESS_CHUNKS))
    tasks = [(a, theta0[a:a + size]) for a in range(0, N, size)]
    compiled = method != "auto" and _resolve_backend(kw.get("backend", "auto"), net, method,
                                                     kw.get("solver", "auto")) == "numba"
    workers = 1 if compiled else min(_usable_cpus(), len(tasks))
    if workers < 2 and (not progress or N < 2):
        traj = integrate(net, theta0, t1, method=method, **kw)
        return traj if info is None else dataclasses.replace(traj, info=info)
    parts = {}
    with progress_bar(total=N, desc="transitions", unit="traj", enabled=progress) as bar:
        def handle(res):
            a, tr = res
            parts[a] = tr
            bar.update(tr.status.shape[0])

        with _interrupts() as guard:
            handle = guard(handle)
            if workers >= 2:
                run_processes(_integrate_part, (net, t1, method, kw), tasks, workers, handle)
            else:
                for a, th in tasks:
                    handle(_integrate_part((net, t1, method, kw), a, th))
    traj = _concat_trajectories([parts[a] for a, _ in tasks])
    return traj if info is None else dataclasses.replace(traj, info=info)


def sample_transitions(
    problem_or_model,
    n_samples: int,
    *,
    atlas=None,
    init_scale: float | None = None,
    init: Literal["gaussian", "aligned"] = "gaussian",
    seed: int | None = 0,
    t1: float | None = None,
    method: str = "auto",
    rtol: float = 1e-8,
    atol: float = 1e-12,
    n_save: int = 400,
    grad_tol: float = 1e-10,
    grow: bool = True,
    measure_visited: bool = False,
    detect_options: Mapping[str, Any] | None = None,
    confidence_level: float = CONFIDENCE_LEVEL,
    theory: bool = True,
    integrate_options: Mapping[str, Any] | None = None,
    progress: bool = False,
) -> xr.Dataset:
    r"""Simulate an ensemble from small initializations and return the ``transitions`` Dataset.

    Samples ``n_samples`` initializations (Gaussian :math:`N(0, \varepsilon^2 I)` in the flow's
    coordinates, or aligned, see ``init``), integrates the gradient flow
    :math:`\dot\theta = -\nabla L(\theta)` of the atlas's model (for a Problem, the flow the user
    runs) with :func:`flowgeom.flow.integrate` at log-spaced save times, detects the plateaus and
    locates them in the atlas (:func:`detect_visits`, :class:`AtlasIdentifier`), builds the graph
    (:func:`build_transition_graph`) and, for whitened deep linear problems, sets the theory beside
    it (:func:`flowgeom.linear.transition_theory`). Written once for every model: only the atlas
    differs (closed form for a Problem, a search for any other model).

    Parameters
    ----------
    problem_or_model : flowgeom.Problem, Model or Atlas
    n_samples : int
    atlas : Atlas, optional
        Default :func:`flowgeom._resolve.as_atlas` of ``problem_or_model``.
    init_scale : float or None, default None
        :math:`\varepsilon`; default :func:`default_init_scale` of the depth (1e-8 for H = 1, 0.01 for
        H = 2, 0.1 for H = 3). Small enough that trajectories pass close to every saddle of the sequence
        (at 1e-4 the passage near ``{0}`` of s = (3, 2, 1), H = 1, is a shoulder, not a plateau); a scale
        whose initial gradient is already below ``grad_tol`` is refused (:func:`check_init_scale`).
    init : {"gaussian", "aligned"}, default "gaussian"
        "aligned" (deep linear, whitened data): every sample :math:`W_j = \varepsilon E_j`, ones at
        (i, i), i < d_y (the balanced scalar chains of the theory; deterministic).
    seed : int or None, default 0
    t1 : float or None, default None
        End time; default :func:`_default_t1`. Check ``n_unfinished`` in the result.
    method, rtol, atol, grad_tol : see :func:`flowgeom.flow.integrate`
        Defaults "auto" (DOPRI5, or the L-stable Rosenbrock method on stiff problems such as data in raw
        units; the choice is recorded in the attrs), 1e-8, 1e-12, 1e-10.
    n_save : int, default 400
        Number of log-spaced save times.
    grow : bool, default True
        Plateaus at critical points the atlas does not know grow it (searched atlases).
    measure_visited : bool, default False
        Linearize the visited critical sets (:meth:`Atlas.measure`), so that the graph's nodes carry
        their measured inertia and kind.
    detect_options : mapping, optional
        Keyword arguments of :func:`detect_visits` (thresholds).
    confidence_level : float, default 0.95
    theory : bool, default True
        Add the theory (whitened deep linear problems only).
    integrate_options : mapping, optional
        Further keyword arguments of :func:`flowgeom.flow.integrate`.
    progress : bool, default False
        A progress bar with an ETA over the trajectories (the ensemble is then integrated in
        :data:`PROGRESS_CHUNKS` chunks; same trajectories) and over the measured visited strata
        (:mod:`flowgeom._progress`).

    Returns
    -------
    xarray.Dataset
        See :func:`transitions_dataset`.
    """
    from flowgeom._resolve import as_atlas
    from flowgeom._validate import InputError, check_int
    from flowgeom.flow import SaveAt

    atlas = as_atlas(problem_or_model if atlas is None else atlas)
    n_samples = check_int("n_samples", n_samples, minimum=1)
    eps = default_init_scale(_depth_of(atlas)) if init_scale is None else _check_positive("init_scale", init_scale)
    if init == "gaussian":
        check_init_scale(atlas, eps, grad_tol=grad_tol, seed=seed)
    problem = getattr(atlas, "problem", None)
    net = atlas.model
    if init == "gaussian":
        theta0 = eps * np.random.default_rng(seed).standard_normal((n_samples, net.n_params))
    elif init == "aligned" and problem is not None:
        theta0 = _transition_inits(problem, n_samples, init_scale=eps, init=init, seed=seed,
                                   coordinates=atlas.coordinates)
    else:
        raise InputError(f"`init` must be 'gaussian' (or 'aligned' for a deep linear problem); got {init!r}.")
    if t1 is None:
        t1 = _default_t1(atlas, eps, init)
    t1 = _check_positive("t1", t1)
    traj = _integrate_ensemble(
        net, theta0, t1, method=method, progress=progress, rtol=rtol, atol=atol, saveat=SaveAt(n_log=int(n_save)),
        grad_tol=grad_tol, **dict(integrate_options or {}),
    )
    ident = AtlasIdentifier(atlas, grow=grow)
    visits = detect_visits(traj, atlas, identify=ident, **dict(detect_options or {}))
    if measure_visited:
        labels = set(str(x) for x in visits.stratum)
        atlas.measure([cs.key for cs in atlas.sets() if cs.label in labels], progress=progress)
    tg = build_transition_graph(visits, ident.nodes, confidence_level=confidence_level)
    th = None
    if theory and problem is not None and problem.whitened:
        th = transition_theory(problem, eps, init=init)
    attrs = dict(problem.attrs()) if problem is not None else {}
    attrs.update(
        seed=seed, init=init, init_scale=eps, n_samples=int(n_samples), t1=float(t1), integrator=traj.method,
        integrator_requested=method,
        loss_offset=float(atlas.loss_offset), rtol=float(rtol), atol=float(atol), grad_tol=float(grad_tol),
        atlas=str(atlas.attrs().get("atlas", type(atlas).__name__)), model=type(net).__name__,
    )
    return transitions_dataset(tg, theory=th, traj=traj, attrs=attrs)
