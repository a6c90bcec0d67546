"""Benchmark: the stiff raw-units regression flow (issue 12), the `flowgeom basins` command vs a scipy BDF loop.

Workload: a small multi-output regression set in its raw units (default: the shipped `linnerud` dataset,
X (3, 20) exercise counts, Y (3, 20) physiological measures; eig(X X^T) spans ~2.7e2 .. 1e5), widths
(3, 3, 3), the user's flow (original coordinates, not whitened). What is compared, in one run:

1. the command a user runs, timed whole from the shell (process start, imports, stiffness estimate,
   integration, limit classification and certification, writing basins.nc):
   ``python -m flowgeom basins --data FILE --widths 3,3,3 --samples N --seed S --out DIR``
   (``method="auto"``; its samples stop at ||grad L|| <= 1e-10 or, by default, as soon as the loss is
   below every other critical value and the state locates at the global minimum); its rate is
   samples / wall seconds. The same command with ``--no-early-stop`` (every sample to 1e-10) too.
2. ``flowgeom.flow.integrate(method="rosenbrock")`` in this process on the same initializations
   (the command's Gaussian sampler, same seed), each trajectory to ||grad L|| <= 1e-8.
3. a scipy ``BDF`` loop with the exact Jacobian -Hess L (``model.hessian``), one trajectory at a
   time, stepped with the solver object and stopped at the first step with ||grad L|| <= 1e-8 (the
   same rule), on the first ``--n-scipy`` of the same initializations. Radau likewise (``--radau``).

Every solver uses rtol 1e-6, atol 1e-9. Accuracy: the final losses of 2. against a scipy Radau loop at
rtol 1e-10, atol 1e-12 on a subsample. Threads: set OPENBLAS_NUM_THREADS=1 etc. for comparable numbers.

Usage: python benchmarks/bench_stiff.py [--data FILE] [--n N] [--n-scipy M] [--radau] [--quick]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.integrate import BDF, Radau

from flowgeom._data import resolve_data
from flowgeom.basins.samplers import make_initializer
from flowgeom.flow import SaveAt, integrate
from flowgeom.problem import Problem

RTOL, ATOL, GRAD_TOL, T1 = 1e-6, 1e-9, 1e-8, 1e4
WIDTHS = (3, 3, 3)
SEED = 0
ROOT = Path(__file__).resolve().parents[1]


def scipy_loop(model, theta0, solver_cls, rtol, atol, grad_tol=GRAD_TOL, t1=T1, max_steps=200_000):
    """Each trajectory with a scipy solver object until ||grad|| <= grad_tol; (y_final, nfev, ok)."""
    out, nfev, ok = [], 0, []
    for y0 in theta0:
        s = solver_cls(lambda t, y: -model.grad(y), 0.0, y0, t1, rtol=rtol, atol=atol,
                       jac=lambda t, y: -model.hessian(y))
        conv = False
        for _ in range(max_steps):
            if s.step() is not None or s.status != "running":
                break
            if np.linalg.norm(model.grad(s.y)) <= grad_tol:
                conv = True
                break
        out.append(s.y.copy())
        nfev += s.nfev
        ok.append(conv)
    return np.array(out), nfev, np.array(ok)


def run_command(data, n, extra=()):
    """Wall time and the basins Dataset of the CLI command (a fresh process, like a user's shell)."""
    import xarray as xr

    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "flowgeom", "basins", "--data", str(data), "--widths",
               ",".join(map(str, WIDTHS)), "--samples", str(n), "--seed", str(SEED), "--out", out, *extra]
        env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        t = time.perf_counter()
        subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        dt = time.perf_counter() - t
        with xr.open_dataset(Path(out) / "basins.nc") as ds:
            ds = ds.load()
    return dt, ds, " ".join(cmd[1:])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="linnerud", help="raw regression set: a shipped name or .npz with X, Y")
    ap.add_argument("--n", type=int, default=64, help="samples of the command and of integrate (default 64)")
    ap.add_argument("--n-scipy", type=int, default=16, help="trajectories of the scipy loops (default 16)")
    ap.add_argument("--n-ref", type=int, default=4, help="trajectories checked against the tight reference")
    ap.add_argument("--radau", action="store_true", help="also time a scipy Radau loop")
    ap.add_argument("--quick", action="store_true", help="N = 16, 4 for scipy, 2 for the reference")
    a = ap.parse_args(argv)
    if a.quick:
        a.n, a.n_scipy, a.n_ref = 16, 4, 2
    X, Y, _ = resolve_data(a.data)
    model = Problem.from_data(X, Y, WIDTHS).network()
    ini = make_initializer("gaussian", model)
    theta0 = ini.sample(model, 0, a.n, SEED)  # the command's initializations (same sampler, seed)
    ev = np.linalg.eigvalsh(X @ X.T)
    print(f"{a.data}: widths {WIDTHS}, n_params {model.n_params}, eig(X X^T) {ev[0]:.3g} .. {ev[-1]:.3g}; "
          f"N = {a.n}, init gaussian scale {ini.scale}; rtol {RTOL}, atol {ATOL}; load {os.getloadavg()[0]:.1f}")
    rows = []

    for extra in ((), ("--no-early-stop",)):
        dt, ds, cmd = run_command(a.data, a.n, extra)
        gmin = int(np.argmin(ds.critical_value.values))
        rows.append((f"`{cmd.replace(str(a.data), Path(a.data).name)}` (whole command)", a.n / dt, dt,
                     f"{int((ds.limit.values >= 0).sum())}/{a.n} classified, "
                     f"{float(ds.fraction.values[gmin]):.3f} at the global minimum"))

    t = time.perf_counter()
    tr = integrate(model, theta0, T1, method="rosenbrock", rtol=RTOL, atol=ATOL, grad_tol=GRAD_TOL,
                   saveat=SaveAt(ts=[0.0, T1], states=False))
    dt = time.perf_counter() - t
    rows.append(("flowgeom integrate(method='rosenbrock'), in process", a.n / dt, dt,
                 f"{int(np.sum(tr.status == 0))}/{a.n} to ||grad|| <= {GRAD_TOL:g}, "
                 f"mean {np.mean(tr.n_steps):.0f} steps"))

    loops = (("scipy BDF loop, exact Jacobian", BDF),) + ((("scipy Radau loop, exact Jacobian", Radau),) if a.radau else ())
    for name, cls in loops:
        t = time.perf_counter()
        y, nfev, ok = scipy_loop(model, theta0[: a.n_scipy], cls, RTOL, ATOL)
        dt = time.perf_counter() - t
        rows.append((name, a.n_scipy / dt, dt, f"{int(ok.sum())}/{a.n_scipy} to ||grad|| <= {GRAD_TOL:g}, "
                     f"{nfev / a.n_scipy:.0f} f-evals each"))

    bdf = next(r[1] for r in rows if r[0].startswith("scipy BDF"))
    print()
    print("| what | traj/s | wall s | outcome | vs BDF loop |")
    print("|---|---|---|---|---|")
    for label, rate, dt, note in rows:
        print(f"| {label} | {rate:.3g} | {dt:.1f} | {note} | {rate / bdf:.1f}x |")

    n_ref = min(a.n_ref, a.n)
    y_ref, _, ok = scipy_loop(model, theta0[:n_ref], Radau, 1e-10, 1e-12, grad_tol=1e-10)
    d = np.abs(tr.loss_final[:n_ref] - model.loss(y_ref))
    print(f"\nintegrate vs Radau (rtol 1e-10) on {n_ref}: max |L_final - L_ref| = {d.max():.2e}, "
          f"max ||theta - theta_ref|| = {np.max(np.linalg.norm(tr.y_final[:n_ref] - y_ref, axis=1)):.2e} "
          f"(reference converged {int(ok.sum())}/{n_ref})")


if __name__ == "__main__":
    main()
