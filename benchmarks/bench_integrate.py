"""Benchmark: ensembles of gradient-flow trajectories (flowgeom.integrate) against scipy, side by side.

Workload (issue 3, reused by later benchmarks): H = 1, canonical Sigma with s = linspace(3, 1, d_y),
initial weights i.i.d. N(0, scale^2); widths (d_x, d_1, d_y) = (4, 3, 2) and (16, 12, 8);
N = 4096 trajectories; 'standard' scale 1/sqrt(d_1) to t = 50 and 'small init' scale 1e-4 to t = 60;
rtol 1e-6, atol 1e-9.

Measured in one run, on this machine:
- flowgeom, compiled backend (numba) and pure-numpy backend, final state only
  (``SaveAt(ts=[0, t1], states=False)``), and the numba backend with the default save grid
  (t0 + 200 log-spaced times, states stored);
- the compiled backend's two DOPRI5 kernels: the structure-of-arrays kernel (blocks of 32 trajectories
  advanced together, SIMD over trajectories; what ``integrate`` uses for H = 1 without input factor up
  to ``_numba_soa.MAX_STATE`` = 160 parameters: the (4, 3, 2) rows) and the per-trajectory kernel (one
  trajectory at a time; used for every other network, the (16, 12, 8) rows among them);
- diffrax (JAX; Tsit5, jit + vmap over blocks of 256 trajectories, float64, the faster way to run it
  on CPU), same ensemble and tolerances, timed interleaved with flowgeom in the same run; an
  OPTIONAL dependency of this script only (skipped with a note when jax/diffrax are not installed);
- scipy.integrate.solve_ivp (RK45, same tolerances), one trajectory at a time, on a subsample;
- accuracy: final losses against a tight scipy reference (DOP853, rtol = atol = 1e-12) on a
  subsample;
- the FLOP-based limit: matmul FLOPs per gradient evaluation x evaluations used / peak GFLOP/s
  measured with a large matmul.

The target of issue 13: flowgeom >= 3x diffrax-in-blocks in the same run at both sizes, with final
losses within 1e-10 of the tight reference.

Usage: python benchmarks/bench_integrate.py [--quick] [--n N] [--threads T] [--no-diffrax]
(diffrax column: run with a Python that has jax and diffrax, e.g. a separate venv, flowgeom on PYTHONPATH)
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

import numpy as np
from scipy.integrate import solve_ivp

from flowgeom.flow import SaveAt, integrate, numba_available
from flowgeom.models.deep_linear import DeepLinearNetwork

SEED = 20261126
RTOL, ATOL = 1e-6, 1e-9
SIZES = [(4, 3, 2), (16, 12, 8)]
# (name, scale(widths), t1)
REGIMES = [("standard", lambda w: 1 / np.sqrt(w[1]), 50.0), ("small init", lambda w: 1e-4, 60.0)]
TARGET_FACTOR = 3.0  # flowgeom / diffrax-in-blocks, measured side by side (issue 13)
TARGET_DL = 1e-10  # max |L_final - L_tight| for the target to count
DIFFRAX_BLOCK = 256


def peak_gflops(n=3000, repeats=3):
    """Peak double-precision GFLOP/s of this machine from a large BLAS matmul (all cores)."""
    rng = np.random.default_rng(0)
    A = rng.standard_normal((n, n))
    B = rng.standard_normal((n, n))
    A @ B
    best = np.inf
    for _ in range(repeats):
        t = time.perf_counter()
        A @ B
        best = min(best, time.perf_counter() - t)
    return 2.0 * n**3 / best / 1e9


def flops_per_rhs(w):
    dx, d1, dy = w
    # P = W2 W1 (dy d1 dx MACs), W2^T M (d1 dy dx), M W1^T (dy dx d1): 2 FLOPs per MAC
    return 6.0 * dx * d1 * dy


def timed(fn, repeats):
    """Median wall-clock and process CPU time (all threads) of ``fn()`` over ``repeats`` runs."""
    walls, cpus = [], []
    out = None
    for _ in range(repeats):
        c = time.process_time()
        t = time.perf_counter()
        out = fn()
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    return statistics.median(walls), statistics.median(cpus), out


def diffrax_blocks(net, t1, rtol=RTOL, atol=ATOL, block=DIFFRAX_BLOCK):
    """A runner ``th -> final states`` of diffrax Tsit5 (jit + vmap over blocks of ``block`` trajectories,
    float64, PID controller at the same tolerances) for an H = 1 whitened network, or (None, reason)
    when jax/diffrax are not installed. Compiles once (not timed)."""
    try:
        import diffrax
        import jax
        import jax.numpy as jnp
    except ImportError as e:  # optional dependency of this benchmark only
        return None, f"diffrax not measured ({e.name} not installed: pip install jax diffrax)"
    jax.config.update("jax_enable_x64", True)
    dx, d1, dy = net.widths
    T = jnp.asarray(net.target)
    term = diffrax.ODETerm(lambda t, y, args: (y[1].T @ (T - y[1] @ y[0]), (T - y[1] @ y[0]) @ y[0].T))
    solver, ctrl, save = diffrax.Tsit5(), diffrax.PIDController(rtol=rtol, atol=atol), diffrax.SaveAt(t1=True)

    def one(W1, W2):
        sol = diffrax.diffeqsolve(term, solver, t0=0.0, t1=t1, dt0=None, y0=(W1, W2), stepsize_controller=ctrl,
                                  saveat=save, max_steps=16384)
        return sol.ys[0][-1], sol.ys[1][-1]

    fn = jax.jit(jax.vmap(one)).lower(jnp.zeros((block, d1, dx)), jnp.zeros((block, dy, d1))).compile()

    def run(th):
        N = th.shape[0]
        out = []
        for k in range(0, N, block):
            part = th[k:k + block]
            m = part.shape[0]
            if m < block:  # pad the last block (the compiled function has a fixed shape)
                part = np.concatenate([part, np.repeat(part[-1:], block - m, axis=0)])
            W1, W2 = net.unpack(part)
            a, b = jax.block_until_ready(fn(jnp.asarray(W1), jnp.asarray(W2)))
            out.append(np.concatenate([np.asarray(a).reshape(block, -1), np.asarray(b).reshape(block, -1)],
                                      axis=1)[:m])
        return np.concatenate(out)

    return run, f"diffrax {diffrax.__version__} (jax {jax.__version__}), Tsit5, jit + vmap over blocks of {block}"


def scipy_one_at_a_time(net, th, t1, rtol=RTOL, atol=ATOL, method="RK45"):
    finals = []
    for y0 in th:
        sol = solve_ivp(lambda t, y: -net.grad(y), (0.0, t1), y0, method=method, rtol=rtol, atol=atol)
        finals.append(sol.y[:, -1])
    return np.array(finals)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="~1 min version (smaller ensembles and subsamples)")
    ap.add_argument("--n", type=int, default=None, help="ensemble size N (default 4096; 1024 with --quick)")
    ap.add_argument("--threads", type=int, default=None, help="worker threads of the compiled backend")
    ap.add_argument("--no-diffrax", action="store_true", help="skip the diffrax column even if installed")
    args = ap.parse_args(argv)
    if args.threads is not None:
        os.environ["FLOWGEOM_NUM_THREADS"] = str(args.threads)
    quick = args.quick
    N = args.n or (1024 if quick else 4096)
    n_scipy = 12 if quick else 48
    n_ref = 6 if quick else 24
    n_numpy = 256 if quick else 1024
    repeats = 1 if quick else 3
    have_numba = numba_available()

    from flowgeom.flow._numba import dopri5_dln, n_threads

    print(f"# flowgeom integrate benchmark  (python {platform.python_version()}, numpy {np.__version__}, "
          f"{os.cpu_count()} CPUs, load avg {os.getloadavg()[0]:.2f})")
    peak = peak_gflops(2000 if quick else 3000)
    print(f"peak GFLOP/s (BLAS matmul, all cores): {peak:.1f}")
    compile_s = float("nan")
    if have_numba:
        net0 = DeepLinearNetwork.canonical((3, 2, 2), [2.0, 1.0])
        t = time.perf_counter()
        integrate(net0, np.full((2, net0.n_params), 0.1), 1.0, backend="numba")
        dopri5_dln(net0, np.full((2, net0.n_params), 0.1), np.array([0.0, 1.0]), 0.0, 1.0, states=False,
                   rtol=RTOL, atol=ATOL, grad_tol=0.0, max_steps=1000, max_norm=1e6, dt0=None, adaptive=True,
                   kernel="row")
        compile_s = time.perf_counter() - t
        print(f"numba backend: first calls (JIT compile, or load from the on-disk cache) {compile_s:.2f} s; "
              f"{n_threads()} worker threads")
    else:
        print("numba backend: NOT available (pure numpy only)")
    dx_note = None if not args.no_diffrax else "diffrax skipped (--no-diffrax)"
    print(f"N = {N}; scipy baseline on {n_scipy} trajectories; accuracy reference on {n_ref}; "
          f"numpy backend on {n_numpy}; median of {repeats} interleaved timings\n")

    rows = []
    for w in SIZES:
        net = DeepLinearNetwork.canonical(w, np.linspace(3.0, 1.0, w[-1]))
        for rname, scale_fn, t1 in REGIMES:
            rng = np.random.default_rng([SEED, w[0], int(t1)])
            th = net.random_params(rng, scale=scale_fn(w), size=N)
            final_only = SaveAt(ts=[0.0, t1], states=False)
            kw = dict(rtol=RTOL, atol=ATOL)
            r = {"widths": w, "regime": rname}
            dx_run = None
            if dx_note is None:
                dx_run, note = diffrax_blocks(net, t1)
                if dx_run is None:
                    dx_note = note
                else:
                    r["diffrax_note"] = note
            if have_numba:
                # flowgeom and diffrax interleaved: the ratio is measured under the same machine load
                walls, cpus, dx_walls = [], [], []
                for _ in range(repeats):
                    c = time.process_time()
                    t = time.perf_counter()
                    tr = integrate(net, th, t1, saveat=final_only, backend="numba", **kw)
                    walls.append(time.perf_counter() - t)
                    cpus.append(time.process_time() - c)
                    if dx_run is not None:
                        t = time.perf_counter()
                        y_dx = dx_run(th)
                        dx_walls.append(time.perf_counter() - t)
                r["numba"], r["numba_cpu"] = N / statistics.median(walls), N / statistics.median(cpus)
                r["tr"] = tr
                if dx_walls:
                    r["diffrax"] = N / statistics.median(dx_walls)
                    r["ratio"] = statistics.median([d / f for d, f in zip(dx_walls, walls)])
                    r["y_dx"] = y_dx
                dt_row, _, _ = timed(lambda: dopri5_dln(
                    net, th, np.array([0.0, t1]), 0.0, t1, states=False, rtol=RTOL, atol=ATOL,
                    grad_tol=1e-10, max_steps=100_000, max_norm=1e6, dt0=None, adaptive=True, kernel="row"), 1)
                r["numba_row"] = N / dt_row
                dt_def, _, tr_def = timed(lambda: integrate(net, th, t1, backend="numba", **kw), 1)
                r["numba_default"] = N / dt_def
                del tr_def
            dt_np, cpu_np, tr_np = timed(lambda: integrate(net, th[:n_numpy], t1, saveat=final_only,
                                                           backend="numpy", **kw), 1)
            r["numpy"], r["numpy_cpu"] = n_numpy / dt_np, n_numpy / cpu_np
            if not have_numba:
                r["tr"] = tr_np
            tr = r["tr"]
            dt_sp, cpu_sp, _ = timed(lambda: scipy_one_at_a_time(net, th[:n_scipy], t1), 1)
            r["scipy"], r["scipy_cpu"] = n_scipy / dt_sp, n_scipy / cpu_sp
            ref = scipy_one_at_a_time(net, th[:n_ref], t1, rtol=1e-12, atol=1e-12, method="DOP853")
            loss_ref = net.loss(ref)
            r["err"] = float(np.max(np.abs(tr.loss_final[:n_ref] - loss_ref)))
            r["err_numpy"] = float(np.max(np.abs(tr_np.loss_final[: min(n_ref, n_numpy)]
                                                  - loss_ref[: min(n_ref, n_numpy)])))
            if "y_dx" in r:
                r["err_dx"] = float(np.max(np.abs(net.loss(r.pop("y_dx")[:n_ref]) - loss_ref)))
            r["status"] = tr.counts()
            r["steps"] = float(tr.n_steps.mean())
            r["rhs"] = float(tr.n_rhs.mean()) + 1  # + the gradient at the one save point t1
            best = max(r.get("numba", 0.0), r["numpy"])
            flop_time = flops_per_rhs(w) * r["rhs"] / (peak * 1e9)  # s per trajectory at peak
            r["flop_limit"] = 1.0 / flop_time
            r["frac_peak"] = best / r["flop_limit"]
            rows.append(r)
            print(f"  done {w} {rname}: {r.get('numba', float('nan')):.0f} traj/s (numba), "
                  f"{r.get('diffrax', float('nan')):.0f} (diffrax), {r['numpy']:.0f} (numpy), {r['scipy']:.1f} "
                  f"(scipy); max |dL| {r['err']:.1e}", flush=True)

    hdr = ("| widths | regime | flowgeom numba | numba traj/CPU-s | numba, 1 traj at a time | numba, default saves "
           "| flowgeom numpy | diffrax blocks of 256 | flowgeom / diffrax (same run) | target 3x diffrax "
           "| scipy (1 at a time) | numba / scipy | max abs dL_final vs tight (diffrax) | steps | grad evals "
           "| FLOP limit | % of FLOP limit |")
    print("\n" + hdr)
    print("|" + "|".join(["---"] * (hdr.count("|") - 1)) + "|")
    ok_all = True
    nan = float("nan")
    for r in rows:
        w = r["widths"]
        best = r.get("numba", r["numpy"])
        accurate = r["err"] <= TARGET_DL
        if "ratio" in r:
            ok = r["ratio"] >= TARGET_FACTOR and accurate
            ok_all &= ok
            verdict = "met" if ok else "NOT met"
        else:
            ok_all = False
            verdict = "n/a"
        print(f"| {w} | {r['regime']} | {r.get('numba', nan):,.0f} | {r.get('numba_cpu', nan):,.0f} "
              f"| {r.get('numba_row', nan):,.0f} | {r.get('numba_default', nan):,.0f} | {r['numpy']:,.0f} "
              f"| {r.get('diffrax', nan):,.0f} | {r.get('ratio', nan):.2f}x | {verdict} | {r['scipy']:,.1f} "
              f"| {best / r['scipy']:,.0f}x | {r['err']:.1e} ({r.get('err_dx', nan):.1e}) "
              f"| {r['steps']:.0f} | {r['rhs']:.0f} | {r['flop_limit']:,.0f} | {100 * r['frac_peak']:.1f}% |")
    print("\ntraj/s throughout (wall clock). 'flowgeom numba' is what integrate() runs: the structure-of-arrays "
          "kernel (32 trajectories per block, SIMD over trajectories) for H = 1 networks up to 160 parameters "
          "((4, 3, 2)), the per-trajectory kernel otherwise ((16, 12, 8)); '1 traj at a time' forces the "
          "per-trajectory kernel.")
    notes = {r.get("diffrax_note") for r in rows} - {None}
    print("diffrax: " + (", ".join(sorted(notes)) if notes else (dx_note or "not measured")) +
          f"; timed interleaved with flowgeom, ratio = median over rounds of (diffrax wall / flowgeom wall); "
          f"target: ratio >= {TARGET_FACTOR:g} with max |dL_final| <= {TARGET_DL:g} (issue 13).")
    print("traj/CPU-s = trajectories per second of process CPU time (all threads): less sensitive to other "
          "processes sharing the machine than wall-clock traj/s.")
    print("flowgeom columns: final state only (SaveAt(ts=[0, t1], states=False)); 'default saves' = t0 + 200 "
          "log-spaced save times with states (dense output; one extra gradient per save point).")
    print(f"FLOP limit = peak {peak:.1f} GFLOP/s / (6 d_x d_1 d_y FLOPs per gradient x gradient evaluations per "
          "trajectory); '% of FLOP limit' uses the faster flowgeom backend.")
    for r in rows:
        print(f"  statuses {r['widths']} {r['regime']}: {r['status']}")
    print(f"\noverall (flowgeom >= {TARGET_FACTOR:g}x diffrax in the same run, every row): "
          f"{'target met' if ok_all else 'target NOT met (or not measured)'} in this run "
          f"(load average now {os.getloadavg()[0]:.2f}; the machine may be shared)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
