"""Benchmark of flowgeom.basins.sample_basins: samples per second, and scaling from 1 to 2 worker processes.

Problem: widths (4, 3, 2), singular values (2, 1) (H = 1, whitened), Gaussian initializations
(scale 1), the default adaptive flow integrator with its default tolerances and the GD end game.

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
import time

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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="N = 10^4 instead of 10^5")
    ap.add_argument("--samples", type=int, default=None, help="override N")
    ap.add_argument("--chunk-size", type=int, default=None, help="default: sample_basins' choice")
    ap.add_argument("--singular-values", default="2,1")
    ap.add_argument("--backend", default="auto", choices=["auto", "numpy", "numba"])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
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
