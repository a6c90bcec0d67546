r"""Basins of attraction: how much of the initialization space drains to each stratum, with error bars.

Sample initial states :math:`\theta_0^{(i)} \sim \mu` (see :mod:`flowgeom.samplers`), run the
gradient flow :math:`\dot\theta = -\nabla L(\theta)` (or gradient descent) from each, and record
where it ends:

.. math:: \lambda_i = \begin{cases} k & \theta^{(i)}(t) \to \text{stratum } k
   \ (\|\nabla L\| \le \texttt{grad\_tol} \text{ and the limit matches stratum } k)\\
   -1 & \text{unconverged by } t_{\max}\\ -2 & \text{diverged}\\
   -3 & \text{converged to a critical point outside the candidate strata} \end{cases}

The basin fraction of stratum k is :math:`\hat p_k = \#\{i : \lambda_i = k\}/N`, reported with a
binomial confidence interval (Wilson or Clopper--Pearson). The fractions of the strata and of
the three special outcomes sum to 1: nothing is dropped.

A trajectory is only ever classified from a state where the gradient has converged: a
trajectory slowed down near a saddle (a plateau) is *not* at a minimum, so unconverged
trajectories are re-launched from where they stopped with a doubled horizon
(:math:`t_1, 2t_1, 4t_1, \dots` up to ``t_max``) and labelled -1 if they still have not
converged. Trajectories whose gradient has stalled at the adaptive solver's resolution are
finished by a short gradient-descent end game (``polish_steps``). A converged state is assigned to the stratum whose end-to-end product it matches
(:func:`flowgeom.critical.classify_point`, in canonical coordinates) *and* whose critical value
its loss matches to within a fraction of the gap between critical values.

Exact-flow limits (``certify``, default on): a floating-point trajectory on the stable manifold of a
strict saddle escapes after :math:`\sim\ln(1/\varepsilon)/\lambda`; such samples are detected by how
their escape time scales with seeded perturbations of the initial state and re-labelled to the saddle
(:mod:`flowgeom.basins.limits`). Samples whose loss falls below the smallest critical value above the
global minimum stop there (``early_stop``): their limit is a global minimum. ``horizons`` adds
finite-time fractions.

Scale: samples are processed in chunks of consecutive indices; sample i's initial state
depends only on (seed, i) and each trajectory is integrated on its own adaptive step sequence,
so the result does not depend on the chunking or on the scheduler (serial, local processes,
a dask.distributed cluster). Each finished chunk can be written to a Zarr store; a rerun with
the same store skips what is done.

References
----------
G. Datseris and A. Wagemakers, "Effortless estimation of basins of attraction", Chaos 32 (2022)
(the Attractors.jl BasinMap conventions: label -1 for "no attractor found").
E. B. Wilson, "Probable inference, the law of succession, and statistical inference",
JASA 22 (1927). C. J. Clopper and E. S. Pearson, Biometrika 26 (1934).
"""

from __future__ import annotations

import hashlib
import os
import pickle
import warnings
from typing import Callable

import numpy as np

from flowgeom._validate import InputError
import xarray as xr

from flowgeom.basins.stats import _CI, _check_level
from flowgeom.basins._dataset import _build_dataset, _kind_of
from flowgeom.basins.chunk import DEFAULT_POLISH_STEPS, _SAMPLE_VARS, _Job
from flowgeom.basins.schedule import _execute, _executor_kind
from flowgeom.basins.store import (
    _assemble, _close_store, _completed, _missing_ranges, _open_store, _read_chunks, _stored_seed, _write_chunk,
)
from flowgeom._version import __version__
from flowgeom.critical.atlas import UNCLASSIFIED, Atlas, Limit
from flowgeom.basins.samplers import Initializer, _check_seed, make_initializer

__all__ = ["sample_basins"]

INTEGRATORS = ("auto", "adaptive", "stiff", "invariant", "gd")
# basins integrator names -> flowgeom.flow methods ("auto" chooses per ensemble from a stiffness estimate)
FLOW_METHODS = {"auto": "auto", "adaptive": "dopri5", "stiff": "rosenbrock", "invariant": "gauss-legendre", "gd": "gd"}
# Default number of horizon doublings: t_max = t1 * 2**DEFAULT_DOUBLINGS.
DEFAULT_DOUBLINGS = 6


# ---------------------------------------------------------------------------- the public entry point
def _provenance(model, problem) -> dict:
    if problem is not None:
        a = dict(problem.attrs())
        if problem.X is not None:
            h = hashlib.sha256(np.ascontiguousarray(problem.X).tobytes() + np.ascontiguousarray(problem.Y).tobytes())
            a["data_sha256"] = h.hexdigest()
        return a
    widths = [int(w) for w in getattr(model, "widths", ())]
    sv: list[float] = []
    target = getattr(model, "target", None)
    if target is not None:
        sv = [float(v) for v in np.linalg.svd(np.asarray(target), compute_uv=False)]
    return {
        "widths": widths,
        "singular_values": sv,
        "depth_H": int(getattr(model, "depth_H", -1)),
        "whitened": bool(getattr(model, "whitened", False)),
    }


def _model_fingerprint(model) -> str:
    try:
        return type(model).__name__ + ":" + hashlib.sha256(pickle.dumps(model)).hexdigest()
    except Exception:  # an unpicklable model: identify it by type only
        return type(model).__name__


CHUNK_MIN = 64
"""Smallest default chunk (samples per task) for models with at most ``CHUNK_MIN_PARAMS`` parameters."""
CHUNK_MIN_PARAMS = 200
CHUNK_MIN_LARGE = 16
"""Smallest default chunk for larger models, whose samples are expensive."""


def sample_basins(
    problem_or_model,
    n_samples: int,
    *,
    init="gaussian",
    init_scale: float | None = None,
    init_params: dict | None = None,
    integrator: str = "auto",
    lr: float | None = None,
    t1: float = 100.0,
    t_max: float | None = None,
    rtol: float = 1e-6,
    atol: float = 1e-9,
    grad_tol: float = 1e-10,
    max_steps: int = 100_000,
    max_norm: float = 1e8,
    polish_steps: int = DEFAULT_POLISH_STEPS,
    atlas: Atlas | None = None,
    grow: bool = True,
    chunk_size: int | None = None,
    seed: int | None = None,
    scheduler=None,
    n_workers: int | None = None,
    store: str | os.PathLike | None = None,
    progress: bool = True,
    ci_level: float = 0.95,
    ci_method: str = "wilson",
    keep_states: bool = False,
    backend: str = "auto",
    on_chunk: Callable[[int, int], None] | None = None,
    certify: bool = True,
    horizons=None,
    early_stop: bool = True,
) -> xr.Dataset:
    r"""Measure basins: sample initializations, run the flow, classify limits, count with CIs.

    For samples :math:`i = 0..N-1` with :math:`\theta_0^{(i)}` from ``init``, integrate
    :math:`\dot\theta = -\nabla L(\theta)` (or gradient descent) until
    :math:`\|\nabla L\| \le` ``grad_tol``, doubling the horizon from ``t1`` up to ``t_max``
    for trajectories that have not converged, and label each limit (module docstring).

    Parameters
    ----------
    problem_or_model : flowgeom.Problem or Model
        A Problem runs ``problem.network()`` (the flow the user runs) and classifies with its
        atlas. A DeepLinearNetwork gets its atlas too; any other model needs ``classifier``.
    n_samples : int
        N >= 1.
    init : str or array_like, default "gaussian"
        ``"gaussian"``, ``"orthogonal"``, ``"balanced"``, ``"stable-set"``, ``"file:PATH.npy"``
        or an (N, n_params) array (:mod:`flowgeom.samplers`).
    init_scale : float, optional
        The sampler's scale (default 1.0).
    init_params : dict, optional
        Sampler parameters, e.g. ``{"delta": 1e-3, "stratum": "{0}"}`` for ``"stable-set"``.
    integrator : {"auto", "adaptive", "stiff", "invariant", "gd"}, default "auto"
        "auto": DOPRI5 or the L-stable Rosenbrock method (RODAS4), chosen per chunk from a stiffness
        estimate at the start (the largest Hessian eigenvalue against the horizon; see
        :mod:`flowgeom.flow`); "adaptive": Dormand--Prince 5(4); "stiff": Rosenbrock; "invariant": the
        invariant-preserving Gauss--Legendre flow; "gd": discrete gradient descent with step ``lr``
        (time t = k * lr).
    lr : float, optional
        Required for ``"gd"``.
    t1 : float, default 100.0
        First horizon.
    t_max : float, optional
        Cap of the doubled horizons; default ``t1 * 2**6``.
    rtol, atol : float, default 1e-6, 1e-9
        Flow tolerances (the defaults of :func:`flowgeom.integrate.integrate`).
    grad_tol : float, default 1e-10
        Convergence test :math:`\|\nabla L\| \le` ``grad_tol``.
    max_steps : int, default 100_000
        Step budget per segment (a segment that exhausts it is continued like one that
        reached its horizon).
    max_norm : float, default 1e8
        Divergence threshold on :math:`\|\theta\|`.
    polish_steps : int, default 2000
        End game of the flow integrators: after each flow segment, unconverged trajectories
        try up to this many gradient-descent steps with a per-trajectory step
        :math:`2^{\lfloor\log_2(0.5/\lambda_{\max})\rfloor}` (:math:`\lambda_{\max}` of the Hessian
        at the flow's state); those that reach ``grad_tol`` are converged there (``polished``
        is True), the others continue the flow from the flow's state. An explicit solver's
        gradient stalls near a limit at a level set by ``rtol``/``atol`` (about 1e-5 for the
        defaults), far above ``grad_tol``. 0 disables.
    atlas : Atlas, optional
        Where limits are located (:mod:`flowgeom.critical.atlas`); default the closed form of a
        Problem or DeepLinearNetwork, a search for any other model. The ``stratum`` dimension of the
        result lists the atlas's critical sets after the run.
    grow : bool, default True
        Converged limits that match no known critical set are refined and added to the atlas
        (:meth:`Atlas.grow`, in this process, in sample order) and located again.
    chunk_size : int, optional
        Samples per task; default ``min(2048, max(m, ceil(N / (4 * workers))))`` with m = ``CHUNK_MIN``
        (64), or ``CHUNK_MIN_LARGE`` (16) beyond ``CHUNK_MIN_PARAMS`` parameters. The result does not
        depend on it.
    seed : int, optional
        Root seed; default: fresh entropy (recorded in attrs), or the seed of an existing
        ``store``.
    scheduler : None, "threads", "processes", "synchronous", str or distributed.Client, default None
        None: in this process on the compiled kernel's threads when it runs the flow (a
        DeepLinearNetwork with numba, integrator "adaptive", "gd" or "auto" choosing DOPRI5), else a
        local process pool (:mod:`flowgeom.basins.schedule` has the measurements);
        "threads"/"synchronous": in this process (the compiled kernel still uses
        ``FLOWGEOM_NUM_THREADS`` threads, default every core); "processes": a process pool on
        ``n_workers`` local cores; ``"tcp://host:port"`` or a Client: a dask.distributed cluster.
    n_workers : int, optional
        Local processes; default ``os.cpu_count()``. Given with ``scheduler`` None, it asks for
        the process pool (1: in this process).
    store : path, optional
        A Zarr store (directory) receiving each finished chunk; rerunning with the same store
        resumes (its recorded run parameters must match, else ValueError).
    progress : bool, default True
        Show a tqdm progress bar (samples done and rate).
    ci_level : float, default 0.95
    ci_method : {"wilson", "clopper-pearson"}, default "wilson"
    keep_states : bool, default False
        Also return ``theta0`` and ``theta_final`` (dims sample, param).
    backend : {"auto", "numpy", "numba"}, default "auto"
        Passed to the integrator.
    on_chunk : callable, optional
        ``on_chunk(start, stop)`` after each chunk is recorded (and stored).
    certify : bool, default True
        Decide the limit of the *exact* flow for samples that pass a strict saddle closely
        (:mod:`flowgeom.basins.limits`): a sample whose escape is driven by round-off and
        integration error (the escape time grows like :math:`\ln(\delta_2/\delta_1)/\lambda`
        between two seeded perturbations of its initial state, :math:`\delta = 10^{-10}, 10^{-6}`)
        is re-labelled to the saddle. ``limit_numerical`` keeps the computed limit,
        ``limit_exact`` the decision, ``limit_decided`` whether the test was conclusive;
        ``limit`` and the fractions use ``limit_exact``. Cost: two re-runs (DOPRI5,
        rtol 1e-12) of each candidate only.
    horizons : sequence of float, optional
        Finite horizons :math:`T_1 < T_2 < \dots`: adds the ``horizon`` dimension with
        ``fraction_by_horizon`` (horizon, stratum) and ``fraction_in_transit`` (each with
        ``_low``/``_high``): the state at T located with ``plateau=True`` (near stratum k) or not
        (in transit). Costs one more integration per sample to :math:`\max T`.
    early_stop : bool, default True
        Stop a sample once its loss is below the smallest critical value above the global
        minimum value (a certificate exact for atlases that list every critical value: the limit
        of the flow is then a global minimum, the atlas's one set of that value); such samples
        skip the gradient-descent end game (``endgame`` False). The first horizon pauses for this
        test at :math:`t_1/32, t_1/16, \dots, t_1/2` (``chunk.EARLY_CHECKS``; a stiff flow at
        :math:`t_1/4^6, \dots, t_1/4`), so a sample runs at most about twice (four times) as long as its
        limit takes to be decided (standard (16,12,8) Gaussian inits: all decided at t = 3.125 instead of
        running to t1 = 100; the raw 10-class image problem: at t = 0.024). ``t_final``,
        ``final_loss`` and ``final_grad_norm`` are then those of the state where it stopped, on
        its way to the minimum (``status`` REACHED_T1, ``limit`` the minimum).

    Returns
    -------
    xarray.Dataset
        The ``basins`` Dataset (flowgeom.schema): dims ``sample``, ``stratum``; ``limit``,
        ``final_loss``, ``final_grad_norm``, ``invariant_drift``, ``t_final``, ``status``
        (integrate.Status), ``n_grad_evals`` per sample; ``count``, ``fraction``,
        ``fraction_low``, ``fraction_high`` per stratum; ``count_<outcome>``,
        ``fraction_<outcome>`` (+ ``_low``/``_high``) for unconverged, diverged, unclassified;
        coords ``label``, ``rank``, ``critical_value`` (and ``kind`` for the atlas).
        Exact-flow limits: ``limit_numerical`` (what the floating-point flow reached),
        ``limit_exact``, ``limit_decided``, ``escape_ratio`` (the certification's
        :math:`\rho`, NaN where no saddle was passed closely) per sample, ``count_undecided``,
        ``fraction_undecided`` (+ ``_low``/``_high``); attrs ``certification`` (method and
        tolerances), ``n_relabelled``. ``endgame`` per sample (sent to the gradient-descent end game)
        and attr ``fraction_endgame``. With ``horizons``: dim ``horizon``, ``fraction_by_horizon``
        (horizon, stratum), ``fraction_in_transit`` (horizon), each with ``_low``/``_high``, and
        ``horizon_limit`` (sample, horizon).

    Raises
    ------
    ValueError, TypeError
        Bad arguments (named in the message); a store written by a different run.

    Notes
    -----
    Explicit adaptive solvers resolve the state only to about ``atol + rtol * |theta|``; near
    a stable limit the gradient norm therefore stalls around :math:`\lambda_{\max}` times that
    (about 1e-5 for the defaults on small deep linear problems) instead of reaching
    ``grad_tol``. Trajectories that stall there are finished by gradient descent (see
    ``polish_steps``; flagged by the ``polished`` variable). A run with the same store, seed
    and parameters is bit-identical however it is chunked or scheduled, provided every worker
    uses the same integrator backend.

    Examples
    --------
    >>> from flowgeom import Problem
    >>> from flowgeom.basins._sample import sample_basins
    >>> pb = Problem.from_spectrum([2.0, 1.0], (3, 2, 2))
    >>> ds = sample_basins(pb, 8, seed=0, init_scale=0.5, scheduler="synchronous", progress=False)
    >>> ds.label.values.tolist()
    ['{}', '{1}', '{0}', '{0,1}']
    >>> ds.fraction.values.tolist()
    [0.0, 0.0, 0.0, 1.0]
    """
    from flowgeom._resolve import as_atlas
    from flowgeom.problem import Problem

    # ---- validate
    problem = problem_or_model if isinstance(problem_or_model, Problem) else None
    if isinstance(problem_or_model, Atlas) and not hasattr(problem_or_model, "n_params"):
        atlas = problem_or_model if atlas is None else atlas
        problem = getattr(atlas, "problem", None)
        model = atlas.model
    elif problem is not None:
        model = problem.network()
    else:
        model = problem_or_model
        for attr in ("n_params", "loss", "grad", "conserved"):
            if not hasattr(model, attr):
                raise TypeError(
                    f"`problem_or_model` must be a flowgeom.Problem, a Model or an Atlas; got "
                    f"{type(model).__name__} without `{attr}`."
                )
    if isinstance(n_samples, bool) or int(n_samples) != n_samples or n_samples < 1:
        raise InputError(f"`n_samples` must be a positive integer; got {n_samples!r}.")
    n = int(n_samples)
    if integrator not in INTEGRATORS:
        raise InputError(f"`integrator` must be one of {INTEGRATORS}; got {integrator!r}.")
    if integrator == "gd":
        if lr is None or not (np.isfinite(lr) and lr > 0):
            raise InputError(f"`lr` must be a positive float for integrator='gd'; got {lr!r}.")
        lr = float(lr)
    elif lr is not None:
        raise InputError(f"`lr` is only used with integrator='gd'; got lr={lr!r} with integrator={integrator!r}.")
    t1 = float(t1)
    if not (np.isfinite(t1) and t1 > 0):
        raise InputError(f"`t1` must be a positive finite float; got {t1!r}.")
    t_max = t1 * 2.0**DEFAULT_DOUBLINGS if t_max is None else float(t_max)
    if not (np.isfinite(t_max) and t_max >= t1):
        raise InputError(f"`t_max` must be a finite float >= t1 = {t1}; got {t_max!r}.")
    if ci_method not in _CI:
        raise InputError(f"`ci_method` must be 'wilson' or 'clopper-pearson'; got {ci_method!r}.")
    ci_level = _check_level(ci_level)
    if isinstance(polish_steps, bool) or int(polish_steps) != polish_steps or polish_steps < 0:
        raise InputError(f"`polish_steps` must be a non-negative integer; got {polish_steps!r}.")
    if chunk_size is not None and (isinstance(chunk_size, bool) or int(chunk_size) != chunk_size or chunk_size < 1):
        raise InputError(f"`chunk_size` must be a positive integer; got {chunk_size!r}.")
    if n_workers is not None and (int(n_workers) != n_workers or n_workers < 1):
        raise InputError(f"`n_workers` must be a positive integer; got {n_workers!r}.")
    _executor_kind(scheduler)
    if horizons is not None:
        hz = np.atleast_1d(np.asarray(horizons, dtype=np.float64))
        if hz.ndim != 1 or hz.size == 0 or not np.all(np.isfinite(hz) & (hz > 0)) or np.any(np.diff(hz) <= 0):
            raise ValueError(
                f"`horizons` must be a non-empty increasing sequence of positive times; got {horizons!r}. "
                "Pass e.g. horizons=(5, 50, 500)."
            )
        horizons = tuple(float(h) for h in hz)
    else:
        horizons = ()
    if atlas is None:
        atlas = as_atlas(problem if problem is not None else model)
    elif not isinstance(atlas, Atlas):
        raise TypeError(f"`atlas` must implement flowgeom.critical.Atlas; got {type(atlas).__name__}.")
    ini = make_initializer(init, model, scale=init_scale, problem=problem, **(init_params or {}))

    # ---- seed: explicit, else the store's, else fresh entropy
    if seed is None:
        seed = _stored_seed(store)
    seed = int(np.random.SeedSequence().entropy) if seed is None else _check_seed(seed)

    tolerances = {"rtol": rtol, "atol": atol} if integrator != "gd" else {"lr": lr}
    tolerances.update(polish_steps=int(polish_steps) if integrator != "gd" else 0)
    tolerances.update(certify=bool(certify), early_stop=bool(early_stop), horizons=list(horizons))
    tolerances.update(grad_tol=float(grad_tol), t1=t1, t_max=t_max, max_steps=int(max_steps), max_norm=float(max_norm))
    attrs = {"flowgeom_version": __version__}
    attrs.update(_provenance(model, problem))
    attrs.update(
        seed=seed,
        model=type(model).__name__,
        integrator=integrator,
        method=FLOW_METHODS[integrator],
        tolerances=tolerances,
        **ini.attrs(),
        atlas=str(atlas.attrs().get("atlas", type(atlas).__name__)),
        ci_level=ci_level,
        ci_method=ci_method,
        n_samples=n,
        limit_codes={str(int(c)): c.name.lower() for c in Limit},
    )
    signature = {k: v for k, v in attrs.items() if k not in ("flowgeom_version", "n_samples", "ci_level", "ci_method")}
    signature["model_fingerprint"] = _model_fingerprint(model)
    signature["keep_states"] = bool(keep_states)

    job = _Job(
        model=model, atlas=atlas, initializer=ini if ini.seeded else _strip_array(ini), seed=seed,
        integrator=integrator, lr=lr, t1=t1, t_max=t_max, rtol=float(rtol), atol=float(atol),
        grad_tol=float(grad_tol), max_steps=int(max_steps), max_norm=float(max_norm), backend=backend,
        keep_states=bool(keep_states), polish_steps=int(polish_steps), certify=bool(certify),
        horizons=horizons, early=bool(early_stop),
    )

    # ---- what is left to do
    root = None
    results: dict[int, dict] = {}
    done_ranges: list[tuple[int, int]] = []
    if store is not None:
        root = _open_store(store, signature)  # locked; damaged or incomplete chunks already deleted
        done_ranges = _completed(root)
    todo = _missing_ranges(n, done_ranges)
    n_todo = sum(b - a for a, b in todo)
    workers = 1 if _executor_kind(scheduler) == "serial" else (n_workers or os.cpu_count() or 1)
    if chunk_size is None:
        # small chunks where a sample is expensive (the numpy integrators beyond dense sizes: ~1 s per sample on
        # raw 10-class images), so that a short run still spreads over the workers
        smallest = CHUNK_MIN if model.n_params <= CHUNK_MIN_PARAMS else CHUNK_MIN_LARGE
        chunk_size = int(min(2048, max(smallest, -(-max(n_todo, 1) // (4 * workers)))))
    tasks = []
    for a, b in todo:
        for s0 in range(a, b, chunk_size):
            s1 = min(b, s0 + chunk_size)
            tasks.append((s0, s1, None if ini.seeded else ini.sample(model, s0, s1, seed)))

    from flowgeom._progress import progress_bar

    bar = progress_bar(total=n, initial=n - n_todo, unit="sample", unit_scale=True, desc="basins", enabled=progress)

    def handle(res):
        if root is not None:
            _write_chunk(root, res)
        else:
            results[res["start"]] = res
        bar.update(res["stop"] - res["start"])
        if on_chunk is not None:
            on_chunk(res["start"], res["stop"])

    names = _SAMPLE_VARS + (("theta0", "theta_final") if keep_states else ("theta_final",))
    names += ("horizon_limit",) if horizons else ()
    try:
        _execute(job, tasks, scheduler, n_workers, handle)
        # ---- samples 0..n-1 in order; stored chunks are verified again as they are read
        pieces = (_read_chunks(root, names) if root is not None
                  else [(r["start"], r["stop"], r) for r in results.values()])
    finally:
        bar.close()
        _close_store(root)
    arr = _assemble(pieces, n, names, store)
    if grow:
        lost = np.flatnonzero((arr["limit"] == UNCLASSIFIED) & (arr["status"] == 0))
        if lost.size:
            grown = atlas.grow(arr["theta_final"][lost])
            same = arr["limit_exact"][lost] == arr["limit"][lost]
            arr["limit"][lost] = grown
            arr["limit_exact"][lost[same]] = grown[same]
    if not keep_states:
        del arr["theta_final"]
    sets = atlas.sets()
    index = {cs.key: i for i, cs in enumerate(sets)}

    def to_index(keys):
        keys = np.asarray(keys)
        return np.array([index.get(int(k), UNCLASSIFIED) if k >= 0 else int(k) for k in keys.ravel()],
                        dtype=np.int64).reshape(keys.shape)

    arr["limit_numerical"] = to_index(arr.pop("limit"))
    arr["limit_exact"] = to_index(arr["limit_exact"])
    arr["limit"] = arr["limit_exact"].copy()
    if horizons:
        arr["horizon_limit"] = to_index(arr["horizon_limit"])
    _warn_non_strict(arr["limit"], sets, grad_tol)
    attrs = dict(attrs)
    attrs["certification"] = _CERT_DOC if certify else "off"
    attrs["horizons"] = list(horizons)
    return _build_dataset(arr, sets, attrs, ci_level, ci_method)


_CERT_DOC = (
    "exact-flow limits (flowgeom.basins.limits): samples whose path comes within ||grad|| <= 1e-2 (1 + L) of a "
    "strict saddle above their limit are re-run twice (DOPRI5, rtol 1e-12, atol 1e-15) from theta0 + "
    "delta ||theta0|| xi, delta = 1e-10 and 1e-6; rho = lambda (tau_1 - tau_2) / ln(1e4): rho >= 0.6 -> the exact "
    "limit is the saddle (round-off escape), rho <= 0.25 -> the numerical limit (genuine escape), else undecided"
)


def _warn_non_strict(limit, sets, grad_tol):
    """Warn when samples 'converged' to a non-strict saddle, where the gradient test is weakest.

    Near a degenerate saddle (e.g. the origin for H >= 2, where ||grad L|| ~ s |W|^H) the
    gradient falls below ``grad_tol`` within distance ~ (grad_tol / s)^(1/H) although the flow
    would leave after a time ~ 1 / (s |W|^(H-1)): no finite horizon tells the two apart.
    """
    kinds = [_kind_of(cs) for cs in sets]
    bad = [k for k, kind in enumerate(kinds) if kind == "non_strict_saddle"]
    hits = {str(sets[k].label): int(np.sum(limit == k)) for k in bad}
    hits = {k: v for k, v in hits.items() if v}
    if hits:
        warnings.warn(
            f"{sum(hits.values())} sample(s) reached grad_tol = {grad_tol:g} at non-strict saddle strata "
            f"{hits}: near a degenerate saddle the gradient is tiny well before the flow escapes (escape "
            "time ~ 1/(s |W|^(H-1))), so these may be plateaus, not limits. Lower `grad_tol` or raise "
            "`init_scale` to check.",
            UserWarning,
            stacklevel=3,
        )


def _strip_array(ini: Initializer) -> Initializer:
    """An array initializer without its array (the rows travel with each task instead)."""
    return Initializer(ini.name, ini.scale, ini.params, {}, None)
