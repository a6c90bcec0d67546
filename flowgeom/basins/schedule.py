"""Where the chunks of a basin run execute: in this process, on local processes, or on a dask cluster.

Not public API. See :func:`flowgeom.basins.sample_basins`.
"""

from __future__ import annotations

import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

from flowgeom.basins.chunk import _run_chunk

def _executor_kind(scheduler):
    if scheduler is None or scheduler == "processes":
        return "processes"
    if scheduler in ("synchronous", "serial"):
        return "serial"
    if isinstance(scheduler, str):
        if "://" in scheduler:
            return "dask"
        raise ValueError(
            f"`scheduler` must be None/'processes' (local cores), 'synchronous', a dask scheduler address "
            f"such as 'tcp://host:8786', or a distributed.Client; got {scheduler!r}."
        )
    try:
        from distributed import Client
    except ImportError:  # pragma: no cover - distributed is a core dependency
        Client = ()
    if isinstance(scheduler, Client):
        return "dask"
    raise TypeError(f"`scheduler` must be a str, None or a distributed.Client; got {type(scheduler).__name__}.")


def _usable_cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _worker_init(threads: int) -> None:
    if not os.environ.get("FLOWGEOM_NUM_THREADS", "").strip():
        os.environ["FLOWGEOM_NUM_THREADS"] = str(threads)


def _execute(job, tasks, scheduler, n_workers, handle):
    """Run tasks [(start, stop, theta0 or None)], calling handle(result) as each finishes (any order)."""
    kind = _executor_kind(scheduler)
    if kind == "processes":
        workers = n_workers or _usable_cpus()
        if workers <= 1 or len(tasks) <= 1:
            kind = "serial"
    if kind == "serial":
        for start, stop, th in tasks:
            handle(_run_chunk(job, start, stop, th))
        return
    if kind == "processes":
        window = 2 * workers
        it = iter(tasks)
        # the compiled integrator runs FLOWGEOM_NUM_THREADS threads per process (default: all
        # cores); split the cores between the workers instead of oversubscribing them
        threads = max(1, _usable_cpus() // workers)
        with ProcessPoolExecutor(max_workers=workers, initializer=_worker_init, initargs=(threads,)) as ex:
            pending = set()
            try:
                for task in it:
                    pending.add(ex.submit(_run_chunk, job, *task))
                    if len(pending) >= window:
                        done, pending = wait(pending, return_when=FIRST_COMPLETED)
                        for f in done:
                            handle(f.result())
                while pending:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for f in done:
                        handle(f.result())
            finally:
                for f in pending:
                    f.cancel()
        return
    from distributed import Client, as_completed

    own = isinstance(scheduler, str)
    client = Client(scheduler, set_as_default=False) if own else scheduler
    try:
        nw = max(1, len(client.scheduler_info().get("workers", {})))
        window = 2 * nw
        job_f = client.scatter(job, broadcast=True)
        it = iter(tasks)
        first = [client.submit(_run_chunk, job_f, *task, pure=False) for _, task in zip(range(window), it)]
        ac = as_completed(first, loop=client.loop)
        try:
            for f in ac:
                handle(f.result())
                for task in it:
                    ac.add(client.submit(_run_chunk, job_f, *task, pure=False))
                    break
        finally:
            for f in list(ac.futures):
                f.cancel()
    finally:
        if own:
            client.close()
