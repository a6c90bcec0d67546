"""Where the chunks of a basin run execute: in this process, on local processes, or on a dask cluster.

Runs leave nothing behind and fail fast:

- local worker processes die with their parent, SIGKILL included: each worker asks the kernel
  for ``SIGKILL`` when its parent dies (``prctl(PR_SET_PDEATHSIG)``, Linux) and a watchdog
  thread exits it when its parent pid changes (any POSIX system);
- SIGTERM is handled like Ctrl-C (KeyboardInterrupt); on an interrupt the chunks that have
  finished are still handed over (stored), running ones are cancelled and the workers are
  terminated without waiting for them; a second Ctrl-C or SIGTERM exits at once (status 130);
- a dask scheduler address is checked before any work: an unknown protocol or a malformed
  address is an :class:`~flowgeom._validate.InputError` at once, a refused connection within
  ``_CONNECT_TIMEOUT`` seconds, a scheduler without workers after ``_WORKER_WAIT`` seconds.

Where the chunks run by default (``scheduler=None``, ``n_workers=None``): in this process, one chunk
after another, when the compiled kernel runs the flow (a DeepLinearNetwork with numba, integrator
"adaptive", "gd", "stiff" with at most 200 parameters (compiled RODAS4), or "auto" choosing a
compiled method: :func:`_kernel_threads_win`); the kernel's threads (``FLOWGEOM_NUM_THREADS``,
default every usable core) share each chunk's trajectories. Every other flow (Rosenbrock with the
Krylov solver, Gauss--Legendre, models without a kernel) runs numpy code on one core per process,
and goes to a local process pool. Measured on this 2-core machine (shared, load average
6-9), the whole ``flowgeom basins`` command on the standard (16,12,8) workload (4096 Gaussian inits
of scale 1/sqrt(12), warm compile cache): threads and the pool are a tie within the noise (bare
integrator to T = 50 / command: threads 1.50 and 1.21, pool 1.52 and 1.30, in two runs of
``benchmarks/bench_basins.py --user``, medians of 3 and 2 interleaved rounds); earlier runs of
``sample_basins`` at (4,3,2) gave the same tie (pool 15.9, 13.0, 14.7 s; threads 17.6, 11.7,
12.4 s). Threads win what does not show in those medians: no worker re-imports the package or
reloads the kernels (about 2 s of start-up per worker under that load), one copy of the problem
in memory, and nothing to kill or leak. The pool was the default while a Ctrl-C took 80 s to stop
the kernel's threads; the kernel now runs in short slices
(:func:`flowgeom.flow._numba._run_threaded`) and a Ctrl-C or SIGTERM stops a threaded command in
about as long as a pool's (2.4-2.6 s against 2.1-2.5 s at load average 12-13, most of it the
interpreter's exit; 0.8-1.1 s for a threaded integrate at load average 6).

Not public API. See :func:`flowgeom.basins.sample_basins`.
"""

from __future__ import annotations

import socket

from flowgeom._processes import (  # noqa: F401  (_worker_init, _interrupts: this module's names for tests)
    _interrupts, _usable_cpus, _worker_init, run_processes,
)
from flowgeom._validate import InputError
from flowgeom.basins.chunk import _run_chunk

# Bounds of the dask checks (seconds): a TCP connect to the scheduler, the client's handshake,
# and the wait for a first worker.
_CONNECT_TIMEOUT = 3.0
_CLIENT_TIMEOUT = 10.0
_WORKER_WAIT = 10.0
# Samples on which the default scheduler estimates stiffness (integrator "auto").
_PROBE_ROWS = 16


def _executor_kind(scheduler):
    if scheduler is None or scheduler == "processes":
        return "processes"
    if scheduler in ("synchronous", "serial", "threads"):
        return "serial"
    if isinstance(scheduler, str):
        if "://" in scheduler:
            return "dask"
        raise InputError(
            f"`scheduler` must be None (automatic), 'threads' or 'synchronous' (this process), 'processes' (local "
            f"cores), a dask scheduler address "
            f"such as 'tcp://host:8786', or a distributed.Client; got {scheduler!r}."
        )
    try:
        from distributed import Client
    except ImportError:  # pragma: no cover - distributed is a core dependency
        Client = ()
    if isinstance(scheduler, Client):
        return "dask"
    raise TypeError(f"`scheduler` must be a str, None or a distributed.Client; got {type(scheduler).__name__}.")


def _run_processes(job, tasks, workers, handle) -> None:
    run_processes(_run_chunk, job, tasks, workers, handle)


# ---------------------------------------------------------------------------- dask
def _check_address(address: str) -> None:
    """InputError at once for an unknown protocol or a malformed address; within a bound if unreachable."""
    from distributed.comm.registry import backends

    scheme, _, rest = address.partition("://")
    if scheme not in backends:
        raise InputError(
            f"`scheduler` {address!r} has an unknown protocol {scheme!r}; use one of "
            f"{', '.join(sorted(backends))}, e.g. 'tcp://host:8786'."
        )
    if scheme not in ("tcp", "tls", "ws", "wss"):
        return
    from distributed.comm.addressing import parse_host_port

    try:
        host, port = parse_host_port(rest)
    except (ValueError, TypeError):
        raise InputError(f"`scheduler` {address!r} is not a host:port address; e.g. 'tcp://127.0.0.1:8786'.") from None
    try:
        socket.create_connection((host, port), timeout=_CONNECT_TIMEOUT).close()
    except OSError as e:
        why = "timed out" if isinstance(e, socket.timeout) else (e.strerror or str(e))
        raise InputError(
            f"cannot reach the dask scheduler `scheduler` = {address!r} ({why} within {_CONNECT_TIMEOUT:g} s); "
            "start it (`dask scheduler`) or check the address."
        ) from None
    if scheme == "tcp":
        _probe(address)


def _probe(address: str) -> None:
    """Ask ``address`` who it is (one dask 'identity' message); InputError unless a dask scheduler answers.

    Done before a Client exists: a Client that fails to start on a server that does not speak
    dask lingers and stalls the interpreter's exit for 20 s.
    """
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from distributed.comm import connect

    async def identity():
        comm = await connect(address, timeout=_CONNECT_TIMEOUT)
        try:
            await comm.write({"op": "identity", "reply": True})
            return await asyncio.wait_for(comm.read(), _CONNECT_TIMEOUT)
        finally:
            comm.abort()

    with ThreadPoolExecutor(1) as ex:  # its own event loop, even when the caller runs one (Jupyter)
        try:
            who = ex.submit(asyncio.run, identity()).result()
        except Exception as e:  # a server that is not dask: garbage frames, closed comms, timeouts
            who = f"{type(e).__name__}: {str(e)[:120]}"
    if not (isinstance(who, dict) and who.get("type") == "Scheduler"):
        raise InputError(
            f"`scheduler` {address!r} does not answer as a dask scheduler ({who!r}); check the address and port."
        )


def _connect(scheduler):
    """(client, owned): a Client on ``scheduler`` with at least one worker, or InputError within the bounds."""
    from distributed import Client

    own = isinstance(scheduler, str)
    if own:
        _check_address(scheduler)
        try:
            client = Client(scheduler, set_as_default=False, timeout=_CLIENT_TIMEOUT)
        except Exception as e:  # refused, timed out, or not speaking dask (garbage frames: MemoryError, ...)
            raise InputError(
                f"cannot connect to the dask scheduler `scheduler` = {scheduler!r} ({type(e).__name__}: "
                f"{str(e)[:200]}); check that the address is a running dask scheduler."
            ) from None
    else:
        client = scheduler
    try:
        client.wait_for_workers(1, timeout=_WORKER_WAIT)
    except (TimeoutError, OSError):
        if own:
            client.close()
        raise InputError(
            f"the dask scheduler `scheduler` = {getattr(client.scheduler, 'address', scheduler)!r} has no workers "
            f"after {_WORKER_WAIT:g} s; start some (`dask worker ADDRESS`) or run locally without `scheduler`."
        ) from None
    return client, own


def _run_dask(job, tasks, scheduler, handle) -> None:
    from distributed import as_completed

    client, own = _connect(scheduler)
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


def _kernel_threads_win(job, tasks) -> bool:
    """True when the chunks' flow runs in the compiled kernel, whose threads then use every core.

    That is a DeepLinearNetwork (exact type) with numba, integrator "adaptive" or "gd", "stiff" with
    the dense solver (at most ``DENSE_MAX_PARAMS`` parameters: the compiled RODAS4 kernel), or "auto"
    when either method it may pick is compiled (dense) or the stiffness estimate (the one
    ``integrate(method="auto")`` makes, on the first ``_PROBE_ROWS`` samples) picks DOPRI5. Other
    flows (Rosenbrock with the Krylov solver, Gauss--Legendre, models without a kernel) run numpy code
    on one core per process: processes win.
    """
    if job.backend == "numpy" or job.integrator == "invariant" or not tasks:
        return False
    from flowgeom.flow import numba_available
    from flowgeom.flow._rosenbrock import DENSE_MAX_PARAMS
    from flowgeom.models.deep_linear import DeepLinearNetwork

    if type(job.model) is not DeepLinearNetwork or not numba_available():
        return False
    dense = job.model.n_params <= DENSE_MAX_PARAMS
    if job.integrator == "stiff":
        return dense
    if job.integrator != "auto" or dense:
        return True
    from flowgeom.flow._stiffness import stiffness

    start, stop, theta0 = tasks[0]
    stop = min(stop, start + _PROBE_ROWS)
    y = theta0[: stop - start] if theta0 is not None else job.initializer.sample(job.model, start, stop, job.seed)
    import numpy as np

    with np.errstate(all="ignore"):
        return not stiffness(job.model, np.asarray(y, dtype=np.float64), 0.0, job.t1, job.grad_tol)["stiff"]


def _execute(job, tasks, scheduler, n_workers, handle):
    """Run tasks [(start, stop, theta0 or None)], calling handle(result) as each finishes (any order).

    The default (``scheduler`` and ``n_workers`` None) runs the chunks in this process when the
    compiled kernel's threads win (:func:`_kernel_threads_win`), else on a local process pool.
    SIGTERM is handled like Ctrl-C (KeyboardInterrupt) while it runs.
    """
    kind = _executor_kind(scheduler)
    workers = 1
    if kind == "processes":
        workers = n_workers or _usable_cpus()
        if scheduler is None and n_workers is None and _kernel_threads_win(job, tasks):
            workers = 1
        if workers <= 1 or len(tasks) <= 1:
            kind = "serial"
    with _interrupts() as guard:
        handle = guard(handle)
        if kind == "serial":
            for start, stop, th in tasks:
                handle(_run_chunk(job, start, stop, th))
        elif kind == "processes":
            _run_processes(job, tasks, workers, handle)
        else:
            _run_dask(job, tasks, scheduler, handle)
