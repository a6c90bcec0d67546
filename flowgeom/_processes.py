"""Local worker processes that leave nothing behind, and interrupts that lose nothing.

- local worker processes die with their parent, SIGKILL included: each worker asks the kernel
  for ``SIGKILL`` when its parent dies (``prctl(PR_SET_PDEATHSIG)``, Linux) and a watchdog
  thread exits it when its parent pid changes (any POSIX system);
- SIGTERM is handled like Ctrl-C (KeyboardInterrupt, :func:`_interrupts`); on an interrupt the
  tasks that have finished are still handed over, running ones are cancelled and the workers are
  terminated without waiting for them; a second Ctrl-C or SIGTERM exits at once (status 130).

Used by the basins (:mod:`flowgeom.basins.schedule`) and the transitions
(:mod:`flowgeom.transitions.sample`). Not public API.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

# How often a worker's watchdog looks at its parent pid (seconds).
_WATCHDOG_PERIOD = 0.5
_PR_SET_PDEATHSIG = 1


def _usable_cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


# ---------------------------------------------------------------------------- signals
@contextlib.contextmanager
def _interrupts():
    """In the main thread, for the duration: SIGTERM is handled like Ctrl-C, and a second one exits.

    The first SIGINT or SIGTERM raises KeyboardInterrupt (the clean-up then stores what has
    finished); a second one, while that clean-up still runs (e.g. waiting for compiled kernel
    threads, which cannot be interrupted), ends the process at once with status 130. Stored
    chunks stay consistent: a chunk without its completion marker is recomputed on resume.

    Yields ``guard(handle)``: a wrapper during which a first interrupt is deferred until the
    finished chunk has been handed over (stored), so that it is not lost half-written.
    """
    if threading.current_thread() is not threading.main_thread():
        yield lambda handle: handle
        return
    hits = [0]
    state = {"busy": False, "deferred": None}

    def handler(signum, frame):
        hits[0] += 1
        if hits[0] > 1:
            os.write(2, b"\nflowgeom: interrupted again, exiting now\n")
            os._exit(130)
        if state["busy"]:
            state["deferred"] = signum
            return
        raise KeyboardInterrupt(f"signal {signum}")

    def guard(handle):
        def guarded(res):
            state["busy"] = True
            try:
                handle(res)
            finally:
                state["busy"] = False
            signum, state["deferred"] = state["deferred"], None
            if signum is not None:
                raise KeyboardInterrupt(f"signal {signum}")
        return guarded

    prev = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield guard
    finally:
        for sig, h in prev.items():
            signal.signal(sig, h)


# ---------------------------------------------------------------------------- local processes
def _die_with_parent(parent: int) -> None:
    """Make this process exit when its parent dies: PR_SET_PDEATHSIG (Linux) and a watchdog thread."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    except (OSError, AttributeError):  # pragma: no cover - not Linux: the watchdog alone
        pass
    ppid = os.getppid()

    def gone() -> bool:
        if os.getppid() != ppid:
            return True
        try:
            os.kill(parent, 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # pragma: no cover - pid reused by another user
            return True
        return False

    if gone():  # the parent died before the death signal was armed
        os._exit(1)

    def watch():
        while not gone():
            time.sleep(_WATCHDOG_PERIOD)
        os._exit(1)

    threading.Thread(target=watch, name="flowgeom-parent-watchdog", daemon=True).start()


def _worker_init(threads: int, parent: int) -> None:
    # Ctrl-C reaches the whole process group: the parent handles it and terminates the workers
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the parent's handler, inherited by fork
    _die_with_parent(parent)
    if not os.environ.get("FLOWGEOM_NUM_THREADS", "").strip():
        os.environ["FLOWGEOM_NUM_THREADS"] = str(threads)


def _shutdown_now(ex: ProcessPoolExecutor) -> None:
    """Cancel what is queued, terminate the workers, and return without waiting for running tasks."""
    procs = list((getattr(ex, "_processes", None) or {}).values())
    ex.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        with contextlib.suppress(Exception):
            p.terminate()
    deadline = time.monotonic() + 2.0
    for p in procs:
        with contextlib.suppress(Exception):
            p.join(max(0.0, deadline - time.monotonic()))
            if p.is_alive():
                p.kill()


def _harvest(pending, handle) -> None:
    """Hand over the chunks that finished successfully but were not yet handled."""
    for f in list(pending):
        if f.done() and not f.cancelled() and f.exception() is None:
            pending.discard(f)
            handle(f.result())


def run_processes(fn, first, tasks, workers, handle) -> None:
    """Run ``fn(first, *task)`` for each task on ``workers`` local processes, ``handle(result)`` as each finishes."""
    # the compiled integrator runs FLOWGEOM_NUM_THREADS threads per process (default: all
    # cores); split the cores between the workers instead of oversubscribing them
    threads = max(1, _usable_cpus() // workers)
    window = 2 * workers
    ex = ProcessPoolExecutor(max_workers=workers, initializer=_worker_init, initargs=(threads, os.getpid()))
    pending: set = set()
    clean = False
    try:
        try:
            for task in tasks:
                pending.add(ex.submit(fn, first, *task))
                if len(pending) >= window:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for f in done:
                        handle(f.result())
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for f in done:
                    handle(f.result())
            clean = True
        except KeyboardInterrupt:
            _harvest(pending, handle)  # a second Ctrl-C here exits at once (_interrupts)
            raise
    finally:
        if clean:
            ex.shutdown(wait=True)
        else:
            _shutdown_now(ex)
