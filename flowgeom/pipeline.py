r"""The main job as one function: :func:`atlas` maps a problem or model to its strata, basins and transitions.

The atlas of the model (:mod:`flowgeom.critical.atlas`: the closed form for a deep linear
problem, a search for any other model) is computed once and handed to every stage:

1. basins (:func:`flowgeom.basins.sample_basins`): limits of the flow from ``samples``
   initializations, located in the atlas (unknown limits grow it);
2. transitions (:func:`flowgeom.transitions.sample_transitions`): the saddle-to-saddle graph from
   small initializations, plateaus located in the atlas (unknown plateaus grow it);
3. strata (:func:`flowgeom.critical.dataset.strata_dataset`): every listed critical set, measured
   where it matters (every set the basins and transitions reached, the top chain, and all of them
   up to ``measure_max``), with the paper's columns joined for deep linear problems.

The command line (``flowgeom atlas``) only parses its arguments and calls this function.
"""

from __future__ import annotations

import time
from typing import Any, Mapping

import numpy as np

from flowgeom._validate import InputError, check_int, check_positive
from flowgeom.critical.atlas import Atlas

__all__ = ["atlas", "MEASURE_MAX"]

MEASURE_MAX = 32
"""``measure="auto"`` measures every listed critical set when there are at most this many; beyond,
the sets the basins and transitions reached, the top chain {}, {0}, {0,1}, ... and the global minimum."""


def _reached(ds, names=("limit", "limit_numerical", "horizon_limit")) -> set[str]:
    """Labels of the strata the basins reached: exact and numerical limits, and the states at the horizons."""
    if ds is None:
        return set()
    out = set()
    for name in names:
        if name in ds:
            lim = np.asarray(ds[name].values).ravel()
            out |= {str(ds["label"].values[k]) for k in np.unique(lim[lim >= 0])}
    return out


def _visited(ds) -> set[str]:
    """Labels of the strata the transitions visited (plateaus) and of the graph's nodes."""
    if ds is None:
        return set()
    out = {str(v) for v in ds["label"].values} if "label" in ds.coords and "node" in ds["label"].dims else set()
    if "stratum" in ds and "visit" in ds["stratum"].dims:
        out |= {str(v) for v in ds["stratum"].values}
    return out


def _sync_kinds(ds, atlas_: Atlas):
    """``kind`` of a basins (per stratum) or transitions (per node) Dataset from the atlas's final sets."""
    if ds is None or "label" not in ds.coords:
        return ds
    by_label = {cs.label: cs for cs in atlas_.sets()}
    kinds = []
    for lab in ds["label"].values:
        cs = by_label.get(str(lab))
        kinds.append("unknown" if cs is None else (cs.kind if cs.measured else
                                                   str(cs.info.get("kind_closed_form", cs.kind))))
    kinds = np.array(kinds, dtype=object)
    if "stratum" in ds.dims:
        return ds.assign_coords(kind=("stratum", kinds))
    if "node" in ds.dims and "kind" in ds:
        ds["kind"] = ("node", kinds)
        for j, name in enumerate(("n_negative", "n_zero", "n_positive")):
            if name in ds:
                vals = [(-1 if cs is None or cs.inertia is None else cs.inertia[j])
                        for cs in (by_label.get(str(lab)) for lab in ds["label"].values)]
                ds[name] = ("node", np.asarray(vals, dtype=np.int64))
    return ds


BUDGET_PILOT_BASINS = 64
"""Basin samples run first to measure the cost per sample when the atlas has a time budget."""
BUDGET_PILOT_TRANSITIONS = 16
"""Transition trajectories run first to measure their cost when the atlas has a time budget (two chunks of
8, so that the pilot runs batched and on two workers as the full run does: on raw 10-class images a pilot
of 2 measured 25 s per trajectory, the full run 6.4 s)."""
BUDGET_BASINS_SHARE = 2.0 / 3.0
"""Share of the atlas's time budget given to the basins; the transitions get the rest."""


def _within_budget(run, n_requested: int, n_pilot: int, seconds: float | None, warmup: bool = True):
    r"""``run(N)`` for the largest :math:`N \le` ``n_requested`` whose projected time fits ``seconds``.

    Samples are indexed (sample i depends on the seed and i only), so the first N samples of a run are
    the same whatever N is. A run of one sample takes the fixed costs (compilation, worker start-up,
    imports: :math:`t_1`; without ``warmup``, :math:`t_1 = 0` and no such run), a pilot of ``n_pilot``
    samples then gives the cost per sample :math:`c = (t_{pilot} - t_1) / (n_{pilot} - 1)`
    (:math:`t_{pilot} / n_{pilot}` without warm-up), and
    :math:`N = \min(n_{req}, \max(n_{pilot}, \lfloor (s - t_1 - t_{pilot}) / c \rfloor))` samples are run
    (the pilot's included again, so the Dataset is that of a plain run of N samples, and the whole takes
    about s). The pilot alone is kept when no more fit.
    """
    if seconds is None or n_requested <= n_pilot:
        ds = run(n_requested)
        ds.attrs["n_requested"] = int(n_requested)
        return ds
    t_fixed = 0.0
    if warmup:
        t = time.perf_counter()
        run(1, quiet=True)
        t_fixed = time.perf_counter() - t
    t = time.perf_counter()
    pilot = run(n_pilot)
    t_pilot = time.perf_counter() - t
    per = max(t_pilot - t_fixed, 0.05 * t_pilot) / (n_pilot - 1) if warmup else t_pilot / n_pilot
    n = int(min(n_requested, max(n_pilot, (seconds - t_fixed - t_pilot) // max(per, 1e-12))))
    ds = pilot if n == n_pilot else run(n)
    ds.attrs["n_requested"] = int(n_requested)
    ds.attrs["budget_s"] = float(seconds)
    return ds


def atlas(
    problem_or_model,
    *,
    samples: int = 2000,
    transition_samples: int = 100,
    transition_scale: float | None = None,
    seed: int = 0,
    measure: str = "auto",
    basins_options: Mapping[str, Any] | None = None,
    transitions_options: Mapping[str, Any] | None = None,
    atlas_options: Mapping[str, Any] | None = None,
    progress: bool = False,
    budget: float | None = None,
) -> dict:
    r"""The atlas of a problem or model: ``{"strata", "basins", "transitions"}`` Datasets, written once for every model.

    Parameters
    ----------
    problem_or_model : flowgeom.Problem, Model or Atlas
        A Problem gets the closed-form deep linear atlas, a Model a searched one
        (:func:`flowgeom._resolve.as_atlas`); an Atlas is used as it is.
    samples : int, default 2000
        Basin initializations (0 skips the basins).
    transition_samples : int, default 100
        Trajectories of the transition graph (0 skips it).
    transition_scale : float or None, default None
        Their initialization scale (saddle-to-saddle regime); default
        :func:`flowgeom.transitions.sample.default_init_scale` of the depth (1e-8 for H = 1, 0.01 for H = 2).
        A scale whose initial gradient is already below the transitions' ``grad_tol`` is refused before
        any work (:func:`flowgeom.transitions.sample.check_init_scale`).
    seed : int, default 0
        Root seed: the atlas uses ``seed``, the basins ``seed``, the transitions ``seed``.
    measure : {"auto", "all", "reached"}, default "auto"
        Which critical sets are linearized for ``strata`` (see :data:`MEASURE_MAX`).
    basins_options, transitions_options : mapping, optional
        Further keywords of :func:`flowgeom.basins.sample_basins` and
        :func:`flowgeom.transitions.sample_transitions`.
    atlas_options : mapping, optional
        Keywords of the atlas (:class:`flowgeom.linear.ClosedFormAtlas` or
        :class:`flowgeom.critical.SearchedAtlas`, e.g. ``n_starts``).
    progress : bool, default False
        Progress bars with an ETA for the basins, the transitions and the strata
        (:mod:`flowgeom._progress`).
    budget : float or None, default None
        A time budget in seconds for the basins and the transitions together (None: run every requested
        sample). Each stage first runs a pilot (the first ``BUDGET_PILOT_BASINS`` basin samples after a one-sample
        warm-up, the first ``BUDGET_PILOT_TRANSITIONS`` trajectories), measures its cost per sample, and then runs the first N
        samples that fit: the basins up to ``BUDGET_BASINS_SHARE`` of the budget, the transitions what is
        left of it (at least the rest of that share). N never exceeds the request and never falls below the
        pilot; it depends on timing only, never on outcomes, so the confidence intervals keep their meaning.
        Each Dataset records ``n_requested`` and ``budget_s``; the command line says when fewer ran. Basins
        checkpointed to a ``store`` are always run whole.

    Returns
    -------
    dict of str to xarray.Dataset
        ``"strata"``, and ``"basins"`` / ``"transitions"`` unless skipped; each Dataset's attrs record
        ``elapsed_s`` (seconds spent on that stage).
    """
    from flowgeom._resolve import as_atlas
    from flowgeom.basins import sample_basins
    from flowgeom.critical.dataset import strata_dataset
    from flowgeom.transitions import sample_transitions

    samples = check_int("samples", samples, minimum=0)
    transition_samples = check_int("transition_samples", transition_samples, minimum=0)
    if measure not in ("auto", "all", "reached"):
        raise InputError(f"`measure` must be 'auto', 'all' or 'reached'; got {measure!r}.")
    t0 = time.perf_counter()
    options = dict(atlas_options or {})
    options.setdefault("seed", seed)
    A = as_atlas(problem_or_model, **options)
    t_atlas = time.perf_counter() - t0
    topts = dict(transitions_options or {})
    topts.setdefault("init_scale", transition_scale)
    topts.setdefault("progress", progress)
    if transition_samples and topts["init_scale"] is not None and topts.get("init", "gaussian") == "gaussian":
        from flowgeom.transitions.sample import check_init_scale

        check_init_scale(A, topts["init_scale"], grad_tol=topts.get("grad_tol", 1e-10), seed=seed)  # before basins
    if budget is not None:
        budget = check_positive("budget", budget)
    out: dict = {}
    t_start = time.perf_counter()
    if samples:
        t = time.perf_counter()
        bopts = dict(basins_options or {})
        bopts.setdefault("progress", progress)
        # a checkpointed run (store) is one the user wants whole, and its store holds one sample count
        share = None if budget is None or bopts.get("store") is not None else BUDGET_BASINS_SHARE * budget

        def run_basins(n, quiet=False):
            return sample_basins(A, n, atlas=A, seed=seed, **dict(bopts, progress=bopts["progress"] and not quiet))

        out["basins"] = _within_budget(run_basins, samples, BUDGET_PILOT_BASINS, share)
        out["basins"].attrs["elapsed_s"] = time.perf_counter() - t
    if transition_samples:
        t = time.perf_counter()
        left = None if budget is None else max(budget - (t - t_start), (1.0 - BUDGET_BASINS_SHARE) * budget)

        def run_transitions(n, quiet=False):
            return sample_transitions(A, n, atlas=A, seed=seed, **dict(topts, progress=topts["progress"] and not quiet))

        # no warm-up: the basins have paid the fixed costs, and one stiff trajectory alone is expensive
        out["transitions"] = _within_budget(run_transitions, transition_samples, BUDGET_PILOT_TRANSITIONS, left,
                                            warmup=False)
        out["transitions"].attrs["elapsed_s"] = time.perf_counter() - t
    t = time.perf_counter()
    listed = A.sets()
    reached = _reached(out.get("basins")) | _visited(out.get("transitions"))
    if measure == "all" or (measure == "auto" and len(listed) <= MEASURE_MAX):
        keys = [cs.key for cs in listed]
    else:
        keys = [cs.key for cs in listed if cs.label in reached]
        if measure == "auto":
            top = [cs.key for cs in listed if cs.info.get("learned") == "{" + ",".join(map(str, range(cs.rank))) + "}"]
            keys = sorted(set(keys) | set(top), key=lambda k: [c.key for c in listed].index(k))
    A.measure(keys, progress=progress)
    strata = strata_dataset(A)
    if getattr(A, "problem", None) is not None:
        from flowgeom.audit.paper import add_paper_columns

        strata = add_paper_columns(strata)
    strata.attrs["elapsed_s"] = time.perf_counter() - t + t_atlas
    out = {name: _sync_kinds(ds, A) for name, ds in out.items()}
    out["strata"] = strata
    return {k: out[k] for k in ("strata", "basins", "transitions") if k in out}
