"""Schedulers fail fast and runs leave nothing behind (processes found through /proc: no psutil)."""

import os
import signal
import subprocess
import sys
import time

import pytest

from flowgeom import Problem
from flowgeom._validate import InputError
from flowgeom.basins import sample_basins, schedule
from flowgeom.basins.store import StoreError, _close_store, _completed, _open_store

from _helpers import store_has_complete_chunk

QUICK = dict(init_scale=0.5, t1=30.0, progress=False, backend="numpy")


@pytest.fixture(scope="module")
def p322():
    return Problem.from_spectrum([2.0, 1.0], (3, 2, 2))


def _stat(pid):
    try:
        with open(f"/proc/{pid}/stat") as fh:
            rest = fh.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return rest[0], int(rest[1])  # state, ppid


def _alive(pid):
    st = _stat(pid)
    return st is not None and st[0] not in ("Z", "X")


def _children(pid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            st = _stat(int(d))
            if st is not None and st[1] == pid and st[0] not in ("Z", "X"):
                out.append(int(d))
    return out


def _wait_for(cond, timeout, period=0.05):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if cond():
            return True
        time.sleep(period)
    return cond()


# ---------------------------------------------------------------------------- dask addresses
@pytest.mark.parametrize("address, match", [
    ("bogus://x", "unknown protocol 'bogus'"),
    ("tcp://127.0.0.1:notaport", "not a host:port address"),
    ("tcp://127.0.0.1:1", "cannot reach the dask scheduler.*start it"),
])
def test_bad_scheduler_address_fails_fast(p322, address, match):
    import distributed  # noqa: F401 - imported outside the timing

    t0 = time.perf_counter()
    with pytest.raises(InputError, match=match):
        sample_basins(p322, 4, seed=1, scheduler=address, **QUICK)
    assert time.perf_counter() - t0 < 5.0


def test_unknown_scheduler_name_is_an_input_error(p322):
    with pytest.raises(InputError, match="`scheduler` must be None \\(automatic\\), 'threads'"):
        sample_basins(p322, 4, seed=1, scheduler="procesess", **QUICK)


def test_scheduler_without_workers_fails_within_the_bound(p322, monkeypatch):
    distributed = pytest.importorskip("distributed")
    monkeypatch.setattr(schedule, "_WORKER_WAIT", 1.0)
    with distributed.LocalCluster(n_workers=0, processes=False, dashboard_address=None) as cluster:
        t0 = time.perf_counter()
        with pytest.raises(InputError, match=r"has no workers after 1 s; start some"):
            sample_basins(p322, 4, seed=1, scheduler=cluster.scheduler_address, **QUICK)
        assert time.perf_counter() - t0 < 6.0


# ---------------------------------------------------------------------------- local processes
def test_sigterm_becomes_keyboard_interrupt_and_is_restored():
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt), schedule._interrupts():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # interrupted at once by the handler
    assert signal.getsignal(signal.SIGTERM) is before


@pytest.mark.slow
def test_finished_chunks_are_handled_on_interrupt(p322, tmp_path):
    # a pool run interrupted from inside `handle`: what had finished is stored, the pool is gone
    # at once, and a resumed run only computes what is missing
    store = tmp_path / "i.zarr"
    seen = []

    def interrupt_after_one(a, b):
        seen.append((a, b))
        if len(seen) == 1:
            raise KeyboardInterrupt

    before = set(_children(os.getpid()))  # children of earlier tests (a dask cluster, a browser) are not ours
    t0 = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        sample_basins(p322, 32, seed=3, chunk_size=8, scheduler="processes", n_workers=2, store=store,
                      on_chunk=interrupt_after_one, **QUICK)
    assert time.perf_counter() - t0 < 60
    assert _wait_for(lambda: set(_children(os.getpid())) <= before, 5.0)
    redone = []
    got = sample_basins(p322, 32, seed=3, chunk_size=8, scheduler="synchronous", store=store,
                        on_chunk=lambda a, b: redone.append((a, b)), **QUICK)
    ref = sample_basins(p322, 32, seed=3, scheduler="synchronous", **QUICK)
    # every chunk handed over before or during the interrupt was stored: none is computed twice
    assert set(redone).isdisjoint(seen) and sorted(redone + seen) == [(0, 8), (8, 16), (16, 24), (24, 32)]
    assert got.identical(ref)


_SCRIPT = """
import os, sys, time
from concurrent.futures import ProcessPoolExecutor
from flowgeom.basins.schedule import _worker_init
ex = ProcessPoolExecutor(2, initializer=_worker_init, initargs=(1, os.getpid()))
pids = {f.result() for f in [ex.submit(os.getpid) for _ in range(8)]}
print(" ".join(map(str, sorted(pids))), flush=True)
time.sleep(60)
"""


@pytest.mark.slow
def test_pool_workers_die_with_a_sigkilled_parent():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")])))
    proc = subprocess.Popen([sys.executable, "-c", _SCRIPT], stdout=subprocess.PIPE, text=True, env=env)
    try:
        workers = [int(p) for p in proc.stdout.readline().split()]
        assert workers and all(_alive(p) for p in workers)
        proc.kill()
        proc.wait(10)
        assert _wait_for(lambda: not any(_alive(p) for p in workers), 5.0)
    finally:
        proc.kill()
        proc.stdout.close()


def _cli(store, out, *extra):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")])))
    cmd = [sys.executable, "-m", "flowgeom", "basins", "--widths", "3,2,2", "--singular-values", "2,1",
           "--samples", "4096", "--init-scale", "0.5", "--seed", "5", "--store", str(store), "--out", str(out),
           "--scheduler", "processes", *extra]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)


@pytest.mark.slow
def test_sigkill_of_the_cli_leaves_no_worker(tmp_path):
    with _cli(tmp_path / "k.zarr", tmp_path / "out") as proc:
        try:
            assert _wait_for(lambda: len(_children(proc.pid)) >= 2, 60.0)
            workers = _children(proc.pid)
            proc.kill()
            proc.wait(10)
            assert _wait_for(lambda: not any(_alive(p) for p in workers), 5.0), workers
        finally:
            proc.kill()


@pytest.mark.slow
@pytest.mark.parametrize("signals", [(signal.SIGTERM,), (signal.SIGINT, signal.SIGINT)], ids=["TERM", "INT-INT"])
def test_interrupted_cli_stores_finished_chunks_and_leaves_no_worker(tmp_path, signals):
    store = tmp_path / "t.zarr"
    with _cli(store, tmp_path / "out") as proc:
        try:
            assert _wait_for(lambda: len(_children(proc.pid)) >= 2 and store_has_complete_chunk(store), 60.0)
            workers = _children(proc.pid)
            t0 = time.monotonic()
            for sig in signals:
                proc.send_signal(sig)
                time.sleep(0.05)
            _, err = proc.communicate(timeout=10)
            assert time.monotonic() - t0 < 5.0
            assert proc.returncode == 130 and "Traceback" not in err, (proc.returncode, err)
            assert _wait_for(lambda: not any(_alive(p) for p in workers), 5.0)
        finally:
            proc.kill()
    st = _open_store(store, _signature_of(store))
    try:
        assert _completed(st)  # the finished chunks survived, verified
    finally:
        _close_store(st)
    with pytest.raises(StoreError, match="different basin run"):
        _close_store(_open_store(store, {"seed": -1}))


def _signature_of(store):
    import zarr

    return dict(zarr.open_group(str(store), mode="r").attrs["flowgeom_basins"])


def test_an_interrupt_while_a_chunk_is_stored_waits_for_the_chunk():
    stored = []

    def slow_handle(res):
        os.kill(os.getpid(), signal.SIGTERM)  # arrives in the middle of storing
        time.sleep(0.05)
        stored.append(res)

    with pytest.raises(KeyboardInterrupt), schedule._interrupts() as guard:
        guard(slow_handle)("chunk")
    assert stored == ["chunk"]


def test_a_server_that_is_not_dask_is_refused_fast(p322):
    import socketserver
    import threading

    class Garbage(socketserver.BaseRequestHandler):
        def handle(self):
            self.request.sendall(b"HTTP/1.0 200 OK\r\n\r\n" + b"\xff" * 64)

    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), Garbage) as srv:
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        try:
            t0 = time.perf_counter()
            with pytest.raises(InputError, match="does not answer as a dask scheduler"):
                sample_basins(p322, 4, seed=1, scheduler=f"tcp://127.0.0.1:{srv.server_address[1]}", **QUICK)
            assert time.perf_counter() - t0 < 5.0
        finally:
            srv.shutdown()
