"""Benchmark: Hessian inertia at the top-r strata of a wide two-layer problem, (d_x, d_1, d_y) = (64, 48, 32).

dim X = 48 * (64 + 32) = 4608 parameters. For each selected top-r stratum S = {0..r-1} one point is
drawn through the stratum's chart, and its inertia is computed by

- ``ldl``: Hessian assembled from exact HVPs, Sylvester inertia of LDL^T factorizations of the
  shifted Hessian (4 factorizations with the gap check; no eigendecomposition);
- ``lanczos-neg`` (``--lanczos``): matrix-free (HVPs only) count of the negative eigenvalues by
  Lanczos, when n_- is small enough for the block budget. Slow at these points: the negative
  eigenvalues are small compared with ||H|| and lie next to a zero cluster of dimension ~D_C, so
  ARPACK needs many restarts;
- ``dense``: ``numpy.linalg.eigvalsh`` of the same Hessian, for agreement (``--no-dense`` skips it).

The closed form for H = 1 (derived in flowgeom.critical.atlas / tests): n_0 = 2 d1 r - r^2 +
(d1 - r)(dx - dy), n_- = (dy - r)(d1 - r) for the top sets. Not a timed test; run

    python benchmarks/bench_inertia.py [--ranks 0,8,16,24,31,32] [--all] [--no-dense]

The machine is assumed to be 2 cores; the time per stratum is printed.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from flowgeom import Problem
from flowgeom.linear.charts import make_chart
from flowgeom.critical.linearization import hessian_inertia, negative_eigenvalues
from flowgeom.models.deep_linear import DeepLinearNetwork

WIDTHS = (64, 48, 32)
SEED = 0


def closed_form(widths, r):
    dx, d1, dy = widths
    n0 = 2 * d1 * r - r * r + (d1 - r) * (dx - dy)
    nneg = (dy - r) * (d1 - r)
    n = d1 * (dx + dy)
    return nneg, n0, n - nneg - n0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ranks", default="0,8,16,24,31,32", help="comma-separated ranks r of the top sets {0..r-1}")
    ap.add_argument("--all", action="store_true", help="every rank 0..d_y")
    ap.add_argument("--no-dense", action="store_true", help="skip the dense eigvalsh comparison")
    ap.add_argument("--lanczos", action="store_true",
                    help="also count n_- matrix-free by Lanczos (slow here: the negative eigenvalues are small "
                         "next to ||H|| and sit beside a zero cluster of dimension ~D_C)")
    ap.add_argument("--lanczos-max-k", type=int, default=256)
    args = ap.parse_args(argv)
    dy = WIDTHS[-1]
    ranks = list(range(dy + 1)) if args.all else [int(x) for x in args.ranks.split(",")]
    s = np.linspace(4.0, 1.0, dy)
    pb = Problem.from_spectrum(s, WIDTHS)
    net = DeepLinearNetwork.canonical(WIDTHS, s)
    rng = np.random.default_rng(SEED)
    print(f"widths {WIDTHS}, dim X = {net.n_params}")
    print(f"{'r':>3} {'assemble':>9} {'ldl':>7} {'ldl (n-, n0, n+)':>20} {'lanczos-neg':>12} {'dense':>7} agree closed-form")
    total = 0.0
    ok = True
    for r in ranks:
        ch = make_chart(pb, tuple(range(r)))
        th = ch.point(ch.sample(rng))
        t0 = time.perf_counter()
        Hm = net.hessian(th)
        t_asm = time.perf_counter() - t0
        t0 = time.perf_counter()
        inr = hessian_inertia(net, th, method="ldl", hessian=Hm)
        t_ldl = time.perf_counter() - t0
        ref = closed_form(WIDTHS, r)
        lan = ""
        if args.lanczos and ref[0] + 1 <= args.lanczos_max_k:
            t0 = time.perf_counter()
            nneg, _, dec = negative_eigenvalues(net, th, max_k=args.lanczos_max_k)
            lan = f"{nneg}{'' if dec else '?'} {time.perf_counter() - t0:5.1f}s"
            ok &= nneg == inr.n_negative
        dense = ""
        agree = ""
        if not args.no_dense:
            t0 = time.perf_counter()
            d = hessian_inertia(net, th, method="dense", hessian=Hm)
            dense = f"{time.perf_counter() - t0:6.1f}s"
            agree = "yes" if d.triple == inr.triple else "NO"
            ok &= d.triple == inr.triple
        ok &= inr.triple == ref and inr.decided
        total += t_asm + t_ldl
        print(f"{r:>3} {t_asm:8.2f}s {t_ldl:6.1f}s {str(inr.triple):>20} {lan:>12} {dense:>7} {agree:>5} "
              f"{'yes' if inr.triple == ref else 'NO ' + str(ref)}")
    print(f"total assemble + ldl: {total:.1f}s for {len(ranks)} strata ({total / max(1, len(ranks)):.1f}s each)")
    print("all agree" if ok else "DISAGREEMENT")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
