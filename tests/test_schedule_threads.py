"""The compiled kernel's threads: every row once, interruptible within a slice, chosen by default where they win."""

import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from flowgeom import DeepLinearNetwork, Problem, SaveAt, integrate, mlp_for_problem
from flowgeom.basins import sample_basins, schedule
from flowgeom.basins.chunk import _Job
from flowgeom.basins.samplers import make_initializer
from flowgeom.basins.store import _close_store, _completed, _open_store
from flowgeom.flow import _numba

from _helpers import store_has_complete_chunk


def _counting_kernel(delay=0.0):
    calls = []
    lock = threading.Lock()

    def kernel(rows, out):
        if delay:
            time.sleep(delay * rows.size)  # releases the GIL, like the compiled kernels
        with lock:
            calls.append(rows.copy())
            out[rows] += 1

    return kernel, calls


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("N", [1, 2, 5, 97, 1000])
def test_every_row_runs_exactly_once(threads, N):
    kernel, calls = _counting_kernel()
    out = np.zeros(N, dtype=np.int64)
    _numba._run_threaded(kernel, N, (out,), threads=threads)
    assert np.all(out == 1)
    # slices are runs of consecutive rows, none larger than a thread's share / SLICE_SHARE (rounded up)
    cap = -(-N // (_numba.SLICE_SHARE * min(threads, N)))
    for rows in calls:
        assert rows.size <= cap and np.array_equal(rows, np.arange(rows[0], rows[0] + rows.size))


def test_a_kernel_error_reaches_the_caller():
    def kernel(rows, out):
        if rows[0] > 10:
            raise ZeroDivisionError("boom")

    with pytest.raises(ZeroDivisionError, match="boom"):
        _numba._run_threaded(kernel, 200, (None,), threads=2)


@pytest.mark.parametrize("threads", [1, 2])
def test_an_interrupt_stops_the_run_within_a_slice(threads):
    # 20,000 rows of 5 ms each would take 50 s on each of two threads; an interrupt after 0.3 s must end the run
    # within about a slice (SLICE_SECONDS), and no slice starts afterwards
    kernel, calls = _counting_kernel(delay=0.005)
    out = np.zeros(20_000, dtype=np.int64)

    def raise_interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGUSR1, raise_interrupt)
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGUSR1))
    try:
        t0 = time.monotonic()
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            _numba._run_threaded(kernel, out.size, (out,), threads=threads)
        latency = time.monotonic() - t0 - 0.3
    finally:
        timer.cancel()
        signal.signal(signal.SIGUSR1, previous)
    assert latency < 1.0
    n_then = out.sum()
    time.sleep(0.3)  # slices running at the interrupt finish; none starts
    assert out.sum() - n_then <= threads * max(len(c) for c in calls)
    assert 0 < out.sum() < out.size and out.max() == 1


@pytest.mark.skipif(not _numba.HAVE_NUMBA, reason="numba not installed")
def test_the_compiled_kernel_gives_the_same_result_on_any_number_of_threads(monkeypatch):
    net = DeepLinearNetwork.canonical((4, 3, 2), [2.0, 1.0])
    y0 = np.random.default_rng(0).standard_normal((57, net.n_params))
    runs = []
    for threads in ("1", "2", "3"):
        monkeypatch.setenv("FLOWGEOM_NUM_THREADS", threads)
        tr = integrate(net, y0, 20.0, backend="numba", saveat=SaveAt(ts=[0.0, 5.0, 20.0]))
        runs.append(tr)
    for tr in runs[1:]:
        assert np.array_equal(tr.ys, runs[0].ys) and np.array_equal(tr.n_rhs, runs[0].n_rhs)


# ---------------------------------------------------------------------------- the default scheduler
def _job(model, integrator="auto", backend="auto", t1=100.0, scale=0.3):
    ini = make_initializer("gaussian", model, scale=scale)
    return _Job(model=model, atlas=None, initializer=ini, seed=0, integrator=integrator, lr=None, t1=t1, t_max=t1,
                rtol=1e-6, atol=1e-9, grad_tol=1e-10, max_steps=1000, max_norm=1e8, backend=backend,
                keep_states=False)


@pytest.mark.skipif(not _numba.HAVE_NUMBA, reason="numba not installed")
def test_threads_are_the_default_only_where_the_kernel_runs():
    net = Problem.from_spectrum([2.0, 1.0], (3, 2, 2)).network()
    tasks = [(0, 8, None)]
    assert schedule._kernel_threads_win(_job(net), tasks)
    assert schedule._kernel_threads_win(_job(net, "adaptive"), tasks)
    assert not schedule._kernel_threads_win(_job(net, backend="numpy"), tasks)
    assert schedule._kernel_threads_win(_job(net, "stiff"), tasks)  # compiled RODAS4 (dense, n <= 200)
    assert not schedule._kernel_threads_win(_job(net, "invariant"), tasks)
    mlp = mlp_for_problem(Problem.from_spectrum([2.0, 1.0], (3, 2, 2)), "tanh")
    assert not schedule._kernel_threads_win(_job(mlp), tasks)
    # "auto" on a stiff flow (raw data, features of scales 1 .. 300: tests/test_stiff.py) picks Rosenbrock:
    # compiled up to 200 parameters (threads), numpy Krylov beyond (processes)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((3, 20)) * np.array([[1.0], [10.0], [300.0]])
    raw = Problem.from_data(X, rng.standard_normal((3, 20)), (3, 3, 3)).network()
    assert schedule._kernel_threads_win(_job(raw, scale=1.0), tasks)
    X = rng.standard_normal((15, 40)) * np.geomspace(1.0, 300.0, 15)[:, None]
    big = Problem.from_data(X, rng.standard_normal((8, 40)), (15, 10, 8)).network()
    assert big.n_params > 200
    assert not schedule._kernel_threads_win(_job(big, scale=1.0), tasks)
    assert not schedule._kernel_threads_win(_job(big, "stiff"), tasks)


def test_the_default_runs_in_this_process_with_the_same_result(monkeypatch):
    pb = Problem.from_spectrum([2.0, 1.0], (3, 2, 2))
    seen = []
    real = schedule._run_processes
    monkeypatch.setattr(schedule, "_run_processes", lambda *a: (seen.append("processes"), real(*a)))
    kw = dict(seed=4, init_scale=0.5, t1=30.0, progress=False, chunk_size=16)
    ds = sample_basins(pb, 48, **kw)
    assert seen == ([] if _numba.HAVE_NUMBA else ["processes"])
    assert ds.identical(sample_basins(pb, 48, scheduler="processes", n_workers=2, **kw))
    assert seen[-1] == "processes"


# ---------------------------------------------------------------------------- Ctrl-C on the command
@pytest.mark.slow
@pytest.mark.skipif(not _numba.HAVE_NUMBA, reason="numba not installed")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["INT", "TERM"])
def test_a_threaded_command_stops_within_seconds_and_keeps_finished_chunks(tmp_path, sig):
    store = tmp_path / "t.zarr"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")])))
    cmd = [sys.executable, "-m", "flowgeom", "basins", "--widths", "16,12,8", "--samples", "4096", "--init-scale",
           "0.2887", "--no-early-stop", "--store", str(store), "--out", str(tmp_path / "out")]


    with subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env) as proc:
        try:
            t0 = time.monotonic()
            while not store_has_complete_chunk(store) and proc.poll() is None and time.monotonic() - t0 < 240:
                time.sleep(0.05)
            assert proc.poll() is None, "the run ended before it could be interrupted"
            assert not [p for p in os.listdir("/proc") if p.isdigit() and _ppid(int(p)) == proc.pid]  # no pool
            t0 = time.monotonic()
            proc.send_signal(sig)
            _, err = proc.communicate(timeout=30)
            latency = time.monotonic() - t0
        finally:
            proc.kill()
    assert proc.returncode == 130 and "Traceback" not in err, (proc.returncode, err)
    assert latency < 5.0, latency  # measured 0.5-1.5 s at load average 6 (pool: 1.0 s)
    import zarr

    st = _open_store(store, dict(zarr.open_group(str(store), mode="r").attrs["flowgeom_basins"]))
    try:
        assert _completed(st)
    finally:
        _close_store(st)


def _ppid(pid):
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return int(fh.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None
