r"""Benchmark of flowgeom.basins: the user's command against the bare integrator, and worker scaling.

**User level** (``--user``, issue 13): the standard (16, 12, 8) workload -- canonical target
:math:`\Sigma = [\mathrm{diag}(s) | 0]`, s = linspace(3, 1, 8), N = 4096 Gaussian initial states of
scale :math:`1/\sqrt{d_1}` (``numpy.random.default_rng(20240601)``, rows in the flat layout of
``DeepLinearNetwork``), rtol 1e-6, atol 1e-9. In interleaved rounds of one run:

- *bare*: ``flowgeom.integrate`` of the 4096 states to T = 50 (final state only, ``grad_tol=0``);
- *command*: ``python -m flowgeom basins --widths 16,12,8 --singular-values ... --init file:Y0.npy
  --samples 4096`` in a subprocess, whole wall time (interpreter start, imports, kernel load from the
  compile cache, the run, writing basins.nc); also with ``--no-early-stop`` (every sample integrated
  to ``grad_tol`` or t1 = 100 and the end game) and ``--scheduler processes``;
- *in-process*: :func:`flowgeom.basins.sample_basins` on the same states;

and prints each time and its ratio bare / that (>= 0.8 is the issue's target for the command).

    python benchmarks/bench_basins.py --user [--rounds 3] [--samples 4096]

**Scaling** (default): widths (4, 3, 2), singular values (2, 1) (H = 1, whitened), Gaussian
initializations (scale 1), the default adaptive flow integrator with its default tolerances and
the GD end game.

    python benchmarks/bench_basins.py            # N = 10^5
    python benchmarks/bench_basins.py --quick    # N = 10^4

"1 worker" runs the chunks in this process (``n_workers=1``: no inter-process traffic);
"2 workers" runs them on a local process pool (``n_workers=2``). Both give the identical
Dataset, which is checked. The compiled (numba) integrator also runs threads inside a process
(FLOWGEOM_NUM_THREADS, default all cores), so the process scaling is measured with
FLOWGEOM_NUM_THREADS=1 (one thread per worker process), and the default in-process run (threads
on all cores) is timed beside it. A short warm-up run first compiles the numba kernels (when numba
is installed), so compile time is not counted. The machine's load average is printed beside
the numbers: on a shared machine it bounds what the scaling can show.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from flowgeom import Problem
from flowgeom.basins import sample_basins


def _cpu_seconds() -> float:
    """CPU time of this process plus its finished children (the pool's workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def run(n: int, n_workers: int, problem, chunk_size, seed: int, backend: str):
    t, c = time.perf_counter(), _cpu_seconds()
    ds = sample_basins(problem, n, seed=seed, n_workers=n_workers, chunk_size=chunk_size, progress=False,
                       backend=backend)
    return ds, time.perf_counter() - t, _cpu_seconds() - c


# ---------------------------------------------------------------------------- user level (issue 13)
USER_WIDTHS = (16, 12, 8)
USER_T = 50.0
USER_SEED = 20240601


def _standard_inits(n: int) -> np.ndarray:
    """The standard workload's initial states: N(0, 1/d_1) entries, flat (W_1, W_2) rows."""
    dx, d1, dy = USER_WIDTHS
    return np.random.default_rng(USER_SEED).standard_normal((n, d1 * dx + dy * d1)) * (1.0 / np.sqrt(d1))


def _command(variant: str, y0_path: Path, n: int, out: Path, tree: str | None = None) -> float:
    s = ",".join(repr(float(v)) for v in np.linspace(3.0, 1.0, USER_WIDTHS[-1]))
    cmd = [sys.executable, "-m", "flowgeom", "basins", "--widths", ",".join(map(str, USER_WIDTHS)),
           "--singular-values", s, "--init", f"file:{y0_path}", "--samples", str(n), "--out", str(out)]
    cmd += variant.split()
    tree = tree or str(Path(__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [tree, os.environ.get("PYTHONPATH")])))
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=out.parent)  # not the repo: -m puts cwd first
    dt = time.perf_counter() - t
    if r.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr[-500:]}")
    return dt


def user_level(n: int, rounds: int, baseline: str | None = None) -> int:
    """Bare integrator vs the basins command vs sample_basins, interleaved; prints medians and ratios."""
    from flowgeom import DeepLinearNetwork, Problem, SaveAt, integrate

    y0 = _standard_inits(n)
    s = np.linspace(3.0, 1.0, USER_WIDTHS[-1])
    net = DeepLinearNetwork.canonical(USER_WIDTHS, s)
    problem = Problem.from_spectrum(s, USER_WIDTHS)
    save = SaveAt(ts=[0.0, USER_T])

    def bare():
        t = time.perf_counter()
        integrate(net, y0, USER_T, grad_tol=0.0, saveat=save)
        return time.perf_counter() - t

    def in_process():
        t = time.perf_counter()
        sample_basins(problem, n, init=y0, seed=0, progress=False)
        return time.perf_counter() - t

    variants = {"command": ("", None), "command --no-early-stop": ("--no-early-stop", None),
                "command --scheduler processes": ("--scheduler processes", None)}
    if baseline:
        variants[f"command of {Path(baseline).name}"] = ("", baseline)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "y0.npy"
        np.save(path, y0)
        integrate(net, y0[:8], USER_T, grad_tol=0.0, saveat=save)  # kernels loaded (compiled once, cached)
        for v, tree in variants.values():
            _command(v, path, 64, Path(tmp) / "warm", tree)
        print(f"flowgeom basins vs the bare integrator: widths {USER_WIDTHS}, N = {n}, T = {USER_T:g}, "
              f"{os.cpu_count()} cores, {rounds} interleaved rounds")
        times: dict[str, list[float]] = {"bare integrate to T = 50": [], "sample_basins (in process)": []}
        times.update({k: [] for k in variants})
        for r in range(rounds):
            load = os.getloadavg()[0]
            times["bare integrate to T = 50"].append(bare())
            for k, (v, tree) in variants.items():
                times[k].append(_command(v, path, n, Path(tmp) / "out", tree))
            times["sample_basins (in process)"].append(in_process())
            print(f"  round {r + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items())
                  + f"  (load average before: {load:.2f})", flush=True)
    base = times["bare integrate to T = 50"]
    print(f"  {'':34s} {'median s':>9s} {'traj/s':>8s} {'bare / this (median of rounds)':>32s}")
    for k, v in times.items():
        ratio = np.median(np.asarray(base) / np.asarray(v))
        print(f"  {k:34s} {np.median(v):9.2f} {n / np.median(v):8.0f} {ratio:32.2f}")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--user", action="store_true",
                    help="the basins command against the bare integrator on the standard (16,12,8) workload")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds of --user (default 3)")
    ap.add_argument("--baseline", default=None, help="with --user: also time the command of another source tree")
    ap.add_argument("--quick", action="store_true", help="N = 10^4 instead of 10^5")
    ap.add_argument("--samples", type=int, default=None, help="override N")
    ap.add_argument("--chunk-size", type=int, default=None, help="default: sample_basins' choice")
    ap.add_argument("--singular-values", default="2,1")
    ap.add_argument("--backend", default="auto", choices=["auto", "numpy", "numba"])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.user:
        return user_level(args.samples or 4096, args.rounds, args.baseline)
    n = args.samples or (10_000 if args.quick else 100_000)
    s = [float(x) for x in args.singular_values.split(",")]
    problem = Problem.from_spectrum(s, (4, 3, 2))

    sample_basins(problem, 64, seed=args.seed, n_workers=1, progress=False, backend=args.backend)  # warm-up
    print(f"flowgeom basins benchmark: widths (4, 3, 2), s = {s}, N = {n}, chunk_size = {args.chunk_size}, "
          f"backend = {args.backend}, cores = {os.cpu_count()}")
    results = {}
    user_threads = os.environ.get("FLOWGEOM_NUM_THREADS")
    for label, w, threads in (("1 process, 1 thread ", 1, "1"), ("2 processes, 1 thread", 2, "1"),
                              ("1 process, default threads", 1, user_threads)):
        if threads is None:
            os.environ.pop("FLOWGEOM_NUM_THREADS", None)
        else:
            os.environ["FLOWGEOM_NUM_THREADS"] = threads
        load = os.getloadavg()[0]
        ds, dt, cpu = run(n, w, problem, args.chunk_size, args.seed, args.backend)
        results[label] = (ds, dt)
        print(f"  {label:28s}: {dt:8.2f} s wall  {n / dt:8.0f} samples/s   "
              f"{cpu:8.2f} s CPU  {n / cpu:8.0f} samples/CPU-s   (load average before: {load:.2f})")
    (ds1, t1), (ds2, t2), (ds3, _) = results.values()
    print(f"  speed-up 1 -> 2 worker processes: {t1 / t2:.2f}x;  identical Datasets: "
          f"{ds1.identical(ds2) and ds1.identical(ds3)}")
    print("  fractions: " + ", ".join(
        f"{lab} {f:.4g} [{lo:.3g}, {hi:.3g}]"
        for lab, f, lo, hi in zip(ds1.label.values, ds1.fraction.values, ds1.fraction_low.values,
                                  ds1.fraction_high.values)))
    print(f"  unconverged {int(ds1.count_unconverged)}, diverged {int(ds1.count_diverged)}, "
          f"unclassified {int(ds1.count_unclassified)}; GD end game used by {int(ds1.polished.sum())}; "
          f"mean gradient evaluations per sample {float(ds1.n_grad_evals.mean()):.0f}; "
          f"max invariant drift {float(ds1.invariant_drift.max()):.2e}; median t_final "
          f"{float(np.median(ds1.t_final)):.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
