"""Benchmark: the stiff gradient flow of raw-units data (issue 12), flowgeom vs scipy BDF / Radau loops.

Workload: a 3-feature, 20-sample multi-output regression set in raw units,
X = standard_normal((3, 20)) * [[1], [10], [300]], Y = standard_normal((3, 20)) (seeded), widths
(3, 3, 3), ``Problem.from_data(X, Y, widths).network()`` (original coordinates: the user's flow,
not whitened). N = 64 Gaussian inits N(0, scale^2) (scale 1 by default). Every method runs each
trajectory until ||grad L|| <= 1e-8 (checked at every accepted step; t1 = 1e4 as a cap), with the
same rtol = 1e-6, atol = 1e-9.

Measured in one run:
- flowgeom ``method="rosenbrock"`` (RODAS3, exact Hessian, batched over the ensemble);
- flowgeom ``method="auto"`` (stiffness estimate at t0 + the chosen method);
- scipy ``BDF`` and ``Radau`` with the exact Jacobian -Hess L (``model.hessian``), one
  trajectory at a time, stepped with the solver objects and stopped at the first step whose
  ||grad L|| <= 1e-8 (the same stopping rule as flowgeom);
- flowgeom ``method="dopri5"`` (explicit) on a few trajectories with the default 100,000-step
  budget, to show the stability limit;
- accuracy: final loss of each flowgeom trajectory against scipy Radau at rtol 1e-10,
  atol 1e-12 (the reference) on a subsample.

Usage: python benchmarks/bench_stiff.py [--quick] [--n N] [--scale S]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from scipy.integrate import BDF, Radau

from flowgeom.flow import SaveAt, integrate
from flowgeom.problem import Problem

SEED = 20261202
RTOL, ATOL, GRAD_TOL, T1 = 1e-6, 1e-9, 1e-8, 1e4


def raw_problem(seed=SEED):
    """The raw-units regression problem of issue 12 and its model (original coordinates)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((3, 20)) * np.array([[1.0], [10.0], [300.0]])
    Y = rng.standard_normal((3, 20))
    return Problem.from_data(X, Y, (3, 3, 3)).network()


def scipy_loop(model, theta0, solver_cls, rtol, atol, grad_tol=GRAD_TOL, t1=T1, max_steps=200_000):
    """Each trajectory with a scipy solver object until ||grad|| <= grad_tol; (y_final, nfev, njev, ok)."""
    out, nfev, njev, ok = [], 0, 0, []
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
        njev += s.njev
        ok.append(conv)
    return np.array(out), nfev, njev, np.array(ok)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=64, help="trajectories (default 64)")
    ap.add_argument("--scale", type=float, default=1.0, help="init scale (default 1.0)")
    ap.add_argument("--n-scipy", type=int, default=None, help="trajectories for the scipy loops (default: all)")
    ap.add_argument("--n-ref", type=int, default=8, help="trajectories checked against the tight reference")
    ap.add_argument("--quick", action="store_true", help="N = 16, 8 for scipy, 4 for the reference")
    a = ap.parse_args(argv)
    if a.quick:
        a.n, a.n_scipy, a.n_ref = 16, 8, 4
    n_scipy = a.n if a.n_scipy is None else min(a.n, a.n_scipy)
    model = raw_problem()
    theta0 = model.random_params(np.random.default_rng(SEED + 1), scale=a.scale, size=a.n)
    print(f"raw regression problem, widths (3, 3, 3), n_params = {model.n_params}, N = {a.n}, init scale "
          f"{a.scale}; rtol {RTOL}, atol {ATOL}, stop at ||grad|| <= {GRAD_TOL}; load {os.getloadavg()[0]:.1f}")
    sv = SaveAt(ts=[0.0, T1], states=False)
    rows = []

    def run_flowgeom(label, **kw):
        t = time.perf_counter()
        tr = integrate(model, theta0, T1, rtol=RTOL, atol=ATOL, grad_tol=GRAD_TOL, saveat=sv, **kw)
        dt = time.perf_counter() - t
        conv = int(np.sum(tr.status == 0))
        rows.append((label, a.n / dt, conv, a.n, float(np.mean(tr.n_steps)), float(np.mean(tr.n_rhs)),
                     float(np.max(tr.grad_norm_final))))
        return tr

    tr_ros = run_flowgeom("flowgeom rosenbrock", method="rosenbrock")
    tr_auto = run_flowgeom("flowgeom auto", method="auto")
    print(f"auto chose {tr_auto.method!r}: {tr_auto.info}")
    for name, cls in (("scipy BDF loop", BDF), ("scipy Radau loop", Radau)):
        t = time.perf_counter()
        y, nfev, _, ok = scipy_loop(model, theta0[:n_scipy], cls, RTOL, ATOL)
        dt = time.perf_counter() - t
        rows.append((name, n_scipy / dt, int(ok.sum()), n_scipy, float("nan"), nfev / n_scipy,
                     float(np.max(np.linalg.norm(model.grad(y), axis=1)))))
    n_dp = min(4, a.n)
    t = time.perf_counter()
    tr_dp = integrate(model, theta0[:n_dp], T1, method="dopri5", rtol=RTOL, atol=ATOL, grad_tol=GRAD_TOL, saveat=sv)
    dt = time.perf_counter() - t
    rows.append((f"flowgeom dopri5 ({tr_dp.backend}; rate of giving up, not of converging)", n_dp / dt, int(np.sum(tr_dp.status == 0)), n_dp,
                 float(np.mean(tr_dp.n_steps)), float(np.mean(tr_dp.n_rhs)), float(np.max(tr_dp.grad_norm_final))))
    print(f"dopri5 statuses: {tr_dp.counts()}, reached t = {np.round(tr_dp.t_final, 3).tolist()}")

    bdf_rate = next(r[1] for r in rows if r[0] == "scipy BDF loop")
    rad_rate = next(r[1] for r in rows if r[0] == "scipy Radau loop")
    print()
    print("| method | traj/s | converged | mean steps | mean grad evals | max final ||grad|| | vs BDF | vs Radau |")
    print("|---|---|---|---|---|---|---|---|")
    for label, rate, conv, n, steps, rhs, gmax in rows:
        print(f"| {label} | {rate:.3g} | {conv}/{n} | {steps:.0f} | {rhs:.0f} | {gmax:.1e} | "
              f"{rate / bdf_rate:.2f}x | {rate / rad_rate:.2f}x |")

    # accuracy against a tight reference
    n_ref = min(a.n_ref, a.n)
    y_ref, _, _, ok = scipy_loop(model, theta0[:n_ref], Radau, 1e-10, 1e-12, grad_tol=1e-10)
    l_ref = model.loss(y_ref)
    for label, tr in (("rosenbrock", tr_ros),):
        d = np.abs(tr.loss_final[:n_ref] - l_ref)
        print(f"\n{label}: max |L_final - L_ref| over {n_ref} = {d.max():.2e} (L_ref - offset = "
              f"{np.max(l_ref - model.offset):.2e}; reference Radau rtol 1e-10, "
              f"converged {int(ok.sum())}/{n_ref}); max ||theta - theta_ref|| = "
              f"{np.max(np.linalg.norm(tr.y_final[:n_ref] - y_ref, axis=1)):.2e}")


if __name__ == "__main__":
    main()
