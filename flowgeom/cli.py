"""The ``flowgeom`` command line: parses arguments, checks them all, then calls the public API.

::

    flowgeom atlas       [PROBLEM] [SAMPLING] [--strata auto|all|reached] [--out DIR]
    flowgeom strata      [PROBLEM] [--ranks 1,2] [--top-only] [--out DIR]
    flowgeom basins      [PROBLEM] --samples N [SAMPLING] [--out DIR]
    flowgeom transitions [PROBLEM] --samples N [--init-scale X] [--out DIR]
    flowgeom verify      [--quick] [--out DIR]
    flowgeom plot        DIR
    flowgeom report      DIR [--out FILE.html]
    flowgeom describe    FILE
    PROBLEM:  --widths dx,d1,...,dy --singular-values s1,...,s_dy | --data FILE(.npz/.nc with X, Y) | digits | linnerud [--whiten]
              [--model linear|tanh|softplus|sigmoid|diagonal] [--seed N]
    SAMPLING: [--init NAME] [--init-scale X] [--integrator NAME] [--lr X] [--scheduler ADDRESS] [--store PATH.zarr]

Exit status: 0 on success; 2 when the user's input is at fault (arguments, files, resources, the
library's :class:`~flowgeom._validate.InputError`), with ONE line on stderr naming what was wrong and
the fix; 130 on Ctrl-C. Any other exception is a bug and keeps its traceback (exit 1).

Every command checks all its arguments (and that ``--out`` is writable, and that the work fits in
memory) before any computation: the checks run inside :func:`_checking`, where any ValueError or
OSError is the input's fault; during the work only InputError, OSError and MemoryError are.
"""

from __future__ import annotations

import argparse
import math
import shlex
import signal
import sys
import time
from pathlib import Path

import numpy as np

from flowgeom._validate import InputError  # AssumptionError subclasses it

from flowgeom._cli_input import (  # noqa: F401  (BadInput is part of the CLI's interface)
    _add_problem_args,
    _check_resources,
    _check_sampling,
    _check_scale_overflow,
    _checking,
    _first_line,
    _floats,
    _ints,
    _model_of,
    _number,
    _out_dir,
    _store_errors,
    BadInput,
    DEFAULT_OUT,
    DEFAULT_TRANSITION_SCALE,
    make_target,
)

__all__ = ["build_parser", "main"]


def _command_line(args) -> str:
    return "flowgeom " + shlex.join(args.argv)


def _save(ds, path: Path, args):
    from flowgeom.io import save_dataset

    return save_dataset(ds, path, command=_command_line(args))


# ---------------------------------------------------------------------------- commands
def _print_fractions(ds) -> None:
    labels = [str(v) for v in ds["label"].values]
    width = max([8] + [len(lab) for lab in labels])
    print(f"  {'stratum':<{width}}  {'L*':>8}  {'fraction':>9}  {'CI':>21}")
    for i, lab in enumerate(labels):
        f, lo, hi = (float(ds[k].values[i]) for k in ("fraction", "fraction_low", "fraction_high"))
        cv = float(ds["critical_value"].values[i])
        print(f"  {lab:<{width}}  {cv:8.4g}  {f:9.4f}  [{lo:.4f}, {hi:.4f}]")
    lim = ds["limit"].values
    print(f"  unconverged: {int((lim == -1).sum())}, diverged: {int((lim == -2).sum())}, "
          f"unclassified: {int((lim == -3).sum())}, samples: {lim.size}")


def _print_transitions(ds, samples, init_scale):
    print(f"transitions of {samples} trajectories from init scale {init_scale:g}:")
    src, dst, cnt = ds["source"].values, ds["target"].values, ds["count"].values
    prob = ds["probability"].values
    for i in np.argsort(-cnt):
        print(f"  {src[i]:>10} -> {dst[i]:<10} count {int(cnt[i]):5d}  p = {float(prob[i]):.3f}")


def _save_transitions(ds, out: Path, args):
    from flowgeom.schema import global_attrs
    from flowgeom.transitions import save_transitions

    ds.attrs.setdefault("history", global_attrs("transitions", command=_command_line(args))["history"])
    return save_transitions(ds, out)


def _strata_table(ds) -> str:
    from flowgeom.linear.measure import strata_table

    return strata_table(ds)


def _selected_keys(atlas, args) -> list:
    ranks = set(_ints(args.ranks, "--ranks")) if args.ranks is not None else None
    keys = []
    for cs in atlas.sets():
        if ranks is not None and cs.rank not in ranks:
            continue
        if args.top_only and cs.info.get("learned") != "{" + ",".join(map(str, range(cs.rank))) + "}":
            continue
        keys.append(cs.key)
    if ranks is not None and not keys:
        have = sorted({cs.rank for cs in atlas.sets()})
        raise BadInput(f"`--ranks` {args.ranks!r} selects no critical set; this problem has ranks {have}")
    return keys


def cmd_strata(args) -> int:
    from flowgeom._resolve import as_atlas
    from flowgeom.critical.dataset import strata_dataset

    target = make_target(args)
    if args.ranks is not None:
        _ints(args.ranks, "--ranks")
    _check_resources("strata", args, target)
    out = _out_dir(args)
    atlas = as_atlas(target, seed=args.seed)
    keys = _selected_keys(atlas, args)
    atlas.measure(keys, progress=True)
    ds = strata_dataset(atlas, keys)
    if getattr(atlas, "problem", None) is not None:
        from flowgeom.audit.paper import add_paper_columns

        ds = add_paper_columns(ds)
    _save(ds, out / "strata.nc", args)
    print(_strata_table(ds))
    _print_coverage(ds)
    print(f"-> {out / 'strata.nc'}")
    return 0


def _print_coverage(ds) -> None:
    """A searched atlas's strata say how complete the search is and how good each point is."""
    a = ds.attrs
    if "coverage_p_new" not in a:
        return
    print(f"coverage: {a.get('coverage_classes', '?')} classes from {a.get('coverage_searches', '?')} searches, "
          f"{a.get('coverage_singletons', '?')} found once; Good-Turing P(next search finds a new class) = "
          f"{float(a['coverage_p_new']):.3f} (target {float(a.get('coverage_target', float('nan'))):g})")
    for i, lab in enumerate(ds["label"].values):
        kind = str(ds["kind"].values[i])
        if kind.endswith("saddle") or kind == "gradient_flat":
            cols = [f"{lab}: {kind}", f"max ||grad L|| {float(ds['max_grad_norm'].values[i]):.1e}"]
            for name, text in (("refine_residual", "refinement residual"), ("grad_flatness", "gradient flatness")):
                if name in ds:
                    cols.append(f"{text} {float(ds[name].values[i]):.2g}")
            print("  " + ", ".join(cols))


def cmd_basins(args) -> int:
    from flowgeom.basins._sample import sample_basins

    target = make_target(args)
    _check_sampling(args, target)
    _check_resources("basins", args, target)
    horizons = _horizons(args)
    out = _out_dir(args)
    with _store_errors():
        ds = sample_basins(target, args.samples, init=args.init, init_scale=args.init_scale,
                           integrator=args.integrator, lr=args.lr, seed=args.seed, scheduler=args.scheduler,
                           store=args.store, progress=True, horizons=horizons, certify=not args.no_certify,
                           early_stop=not args.no_early_stop)
    _save(ds, out / "basins.nc", args)
    print(f"basins of {args.samples} initializations ({args.init}, integrator {args.integrator}):")
    _print_fractions(ds)
    _print_limits(ds)
    print(f"-> {out / 'basins.nc'}")
    return 0


_NO_DIAGONAL_TRANSITIONS = ("`transitions` has no time horizon for `--model diagonal` yet (the library estimates one "
                            "only for layered models with data X, Y); use --model linear")


def cmd_transitions(args) -> int:
    from flowgeom.transitions import sample_transitions

    if args.model == "diagonal":
        raise BadInput(_NO_DIAGONAL_TRANSITIONS)
    target = make_target(args)
    _check_scale_overflow("--init-scale", args.init_scale, _model_of(target))
    _check_resources("transitions", args, target)
    out = _out_dir(args)
    ds = sample_transitions(target, args.samples, init_scale=args.init_scale, seed=args.seed, measure_visited=True,
                            progress=True)
    nc, gm = _save_transitions(ds, out, args)
    _print_transitions(ds, args.samples, ds.attrs["init_scale"])
    print(f"-> {nc}, {gm}")
    return 0


def cmd_verify(args) -> int:
    from flowgeom.audit import claims_dataset, claims_markdown, verify_claims

    out = _out_dir(args)
    t = time.perf_counter()
    claims = verify_claims(quick=args.quick, seed=args.seed, progress=True)
    (out / "claims.md").write_text(claims_markdown(claims))
    _save(claims_dataset(claims, seed=args.seed, quick=args.quick), out / "claims.nc", args)
    width = max(len(c.source) for c in claims)
    print(f"\nclaims ({time.perf_counter() - t:.1f} s) -> {out / 'claims.md'}")
    for c in claims:
        print(f"  {c.source:<{width}}  {c.verdict}")
    return 0


def _load_checked(path: Path, kind: str | None = None):
    """A saved Dataset, or BadInput when it is damaged, not a Dataset, or of another kind."""
    from flowgeom.io import load_dataset
    from flowgeom.schema import infer_kind

    try:
        ds = load_dataset(path)
    except Exception:  # noqa: BLE001 - h5py/zarr/json raise many types on damaged files; all mean the same to a user
        raise BadInput(f"{str(path)!r} is not a readable flowgeom Dataset (damaged or another format); "
                       "re-create it with `flowgeom atlas`") from None
    if kind is not None and infer_kind(ds) != kind:
        raise BadInput(f"{str(path)!r} holds a {infer_kind(ds) or 'non-flowgeom'} Dataset, not a {kind} one; "
                       "re-create it with `flowgeom atlas`")
    return ds


def _atlas_dir(text: str, names=("strata", "basins", "transitions")) -> dict:
    d = Path(text)
    if not d.is_dir():
        raise BadInput(f"`DIR` {text!r} is not a directory (run `flowgeom atlas --out DIR` first)")
    found = [n for n in names if (d / f"{n}.nc").exists()]
    if not found:
        raise BadInput(f"`DIR` {text!r} holds none of {', '.join(n + '.nc' for n in names)}")
    return {n: _load_checked(d / f"{n}.nc", n) for n in found}


def cmd_plot(args) -> int:
    from flowgeom.plot import plot_directory

    datasets = _atlas_dir(args.dir)
    for path in plot_directory(datasets, Path(args.dir)):
        print(f"-> {path}")
    return 0


def cmd_report(args, provenance=None) -> int:
    from flowgeom.report import report_from_directory

    path = Path(args.out) if getattr(args, "out", None) else Path(args.dir) / "report.html"
    if path.suffix != ".html":
        raise BadInput(f"`--out` must be a file ending in .html; got {str(path)!r}")
    _atlas_dir(args.dir, names=("strata", "basins", "transitions", "claims"))
    with _checking("`--out`: "):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    prov = dict(provenance or {"command": _command_line(args)})
    print(f"-> {report_from_directory(args.dir, path=path, provenance=prov)}")
    return 0


def cmd_describe(args) -> int:
    from flowgeom.io import describe

    p = Path(args.file)
    if not p.exists():
        raise BadInput(f"`FILE` {args.file!r} does not exist")
    if p.suffix not in (".nc", ".zarr"):
        raise BadInput(f"`FILE` must be a .nc file or a .zarr store; got {args.file!r}")
    try:
        text = describe(p)
    except Exception:  # noqa: BLE001 - damaged files raise many types; all mean the same to a user
        raise BadInput(f"`FILE` {args.file!r} is not a readable NetCDF/Zarr Dataset (damaged or another "
                       "format)") from None
    print(text)
    return 0


ATLAS_BUDGET_S = 300.0
"""Default time budget (seconds) of the atlas command's basins and transitions when their counts are not given."""
ATLAS_SAMPLES = 2000
ATLAS_TRANSITION_SAMPLES = 100
"""Default counts of the atlas command (its parser leaves them None, so that a count given is told apart)."""


def _budget(text: str):
    """argparse type of --budget: 'none' or a finite positive number of seconds."""
    if text.strip().lower() == "none":
        return "none"
    return _number("positive")(text)


def _atlas_budget(args):
    """The atlas's time budget: --budget, else ATLAS_BUDGET_S unless --samples or --transition-samples was given;
    fills in the default counts."""
    given = args.samples is not None or args.transition_samples is not None
    if args.samples is None:
        args.samples = ATLAS_SAMPLES
    if args.transition_samples is None:
        args.transition_samples = ATLAS_TRANSITION_SAMPLES
    if args.budget is not None:
        return None if args.budget == "none" else args.budget
    return None if given else ATLAS_BUDGET_S


def _count_note(ds, option):
    """'N samples', with the request and the budget when the budget cut it short."""
    n = int(ds.attrs.get("n_samples", ds.sizes.get("sample", 0)))
    req = int(ds.attrs.get("n_requested", n))
    if n >= req:
        return f"{n} samples"
    return (f"{n} of {req} samples: what fits the time budget of {ds.attrs['budget_s']:.0f} s; "
            f"{option} {req} runs them all")


def cmd_atlas(args) -> int:
    from flowgeom.pipeline import atlas

    t0 = time.perf_counter()
    budget = _atlas_budget(args)
    target = make_target(args)
    if args.model == "diagonal" and args.transition_samples:
        raise BadInput(_NO_DIAGONAL_TRANSITIONS.replace("`transitions`", "the transition graph") +
                       " (or pass --transition-samples 0)")
    _check_sampling(args, target)
    _check_resources("atlas", args, target)
    out = _out_dir(args)
    kind = {"linear": "the deep linear network", "diagonal": "a diagonal linear network"}.get(
        args.model, f"a {args.model} network")
    print(f"== atlas of {kind}")
    with _store_errors():
        results = atlas(
            target, samples=args.samples, transition_samples=args.transition_samples, budget=budget,
            transition_scale=args.transition_scale, seed=args.seed, measure=args.strata,
            basins_options={"init": args.init, "init_scale": args.init_scale, "integrator": args.integrator,
                            "lr": args.lr, "scheduler": args.scheduler, "store": args.store,
                            "horizons": _horizons(args), "certify": not args.no_certify,
                            "early_stop": not args.no_early_stop},
            progress=True,
        )
    print("\n== strata")
    print(_strata_table(results["strata"]))
    _print_coverage(results["strata"])
    _save(results["strata"], out / "strata.nc", args)
    print(f"\n== basins ({_count_note(results['basins'], '--samples')})")
    _print_fractions(results["basins"])
    _print_limits(results["basins"])
    _save(results["basins"], out / "basins.nc", args)
    if "transitions" in results:
        scale = results["transitions"].attrs["init_scale"]
        n_tr = int(results["transitions"].attrs.get("n_samples", args.transition_samples))
        print(f"\n== transitions ({_count_note(results['transitions'], '--transition-samples')}, "
              f"init scale {scale:g})")
        _print_transitions(results["transitions"], n_tr, scale)
        _save_transitions(results["transitions"], out, args)
    if args.model == "linear" and not args.no_verify:
        print("\n== claims of the paper (measured now)")
        cmd_verify(argparse.Namespace(out=str(out), seed=args.seed, quick=not args.full_verify, argv=args.argv))
    print("\n== figures")
    cmd_plot(argparse.Namespace(dir=str(out)))
    print("\n== report")
    seconds = {f"{k} (s)": round(float(ds.attrs.get("elapsed_s", float("nan"))), 2) for k, ds in results.items()}
    cmd_report(argparse.Namespace(dir=str(out), out=None, argv=args.argv),
               provenance={"command": _command_line(args), "seconds": round(time.perf_counter() - t0, 2), **seconds})
    print(f"\natlas done in {time.perf_counter() - t0:.1f} s -> {out}")
    return 0


# ---------------------------------------------------------------------------- parser
class _Parser(argparse.ArgumentParser):
    """argparse with a ONE-line error (``flowgeom: error: ...``) and exit status 2."""

    def error(self, message):
        where = self.prog.removeprefix("flowgeom").strip()
        self.exit(2, f"flowgeom: error: {where + ': ' if where else ''}{message} (see `{self.prog} --help`)\n")


def _print_limits(ds) -> None:
    """How many limits the exact-flow certification re-decided, and the end game's share."""
    a = ds.attrs
    parts = []
    if "n_relabelled" in a:
        parts.append(f"re-decided by the exact flow: {int(a['n_relabelled'])}")
    if "count_undecided" in ds:
        parts.append(f"undecided: {int(ds['count_undecided'])}")
    if "fraction_endgame" in a:
        parts.append(f"end game: {float(a['fraction_endgame']):.1%} of samples")
    if parts:
        print("  " + ", ".join(parts))
    if "fraction_by_horizon" in ds:
        for j, T in enumerate(ds["horizon"].values):
            frac = ds["fraction_by_horizon"].values[j]
            best = int(np.argmax(frac))
            print(f"  T = {float(T):g}: {float(frac[best]):.3f} near {ds['label'].values[best]}, "
                  f"{float(ds['fraction_in_transit'].values[j]):.3f} in transit")


def _horizons(args):
    """``--horizons T1,T2,...``: positive, finite, increasing times (None when not given)."""
    if getattr(args, "horizons", None) is None:
        return None
    with _checking("--horizons"):
        ts = _floats(args.horizons, "--horizons")
        if not all(math.isfinite(t) and t > 0 for t in ts) or list(ts) != sorted(set(ts)):
            raise BadInput(f"`--horizons` must be increasing positive times like 5,50,500; got {args.horizons!r}")
    return tuple(ts)


def _add_sampling_args(p, samples_default=None):
    p.add_argument("--samples", type=_number("count"), required=samples_default is None, default=samples_default,
                   help="number of initializations" + (f" (default {samples_default})" if samples_default else ""))
    p.add_argument("--init", default="gaussian",
                   help="gaussian (default), orthogonal, balanced, stable-set, file:PATH.npy")
    p.add_argument("--init-scale", type=_number("positive"), default=None, help="scale of the initialization")
    p.add_argument("--integrator", default="auto",
                   help="auto (default: adaptive, or stiff when the flow is stiff), adaptive (DOPRI5), stiff "
                        "(Rosenbrock), invariant (Gauss-Legendre), gd (with --lr)")
    p.add_argument("--lr", type=_number("positive"), default=None, help="step size for --integrator gd")
    p.add_argument("--scheduler", default=None,
                   help="threads, processes, or the address of a dask.distributed scheduler (default: this "
                        "process's threads when the compiled kernel runs the flow, else local processes)")
    p.add_argument("--store", default=None, help="Zarr store (PATH.zarr) to checkpoint and resume")
    p.add_argument("--horizons", default=None,
                   help="finite horizons T1,T2,...: fractions near each critical set at each T, and in transit")
    p.add_argument("--no-certify", action="store_true",
                   help="skip the exact-flow certification of round-off escapes from strict saddles")
    p.add_argument("--no-early-stop", action="store_true",
                   help="always finish samples at grad_tol (no early decision near the global minimum)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="flowgeom",
        description="Gradient descent as a dynamical system: critical strata, basins, saddle-to-saddle graphs, "
        "and an audit of Liao-Chitour-Couillet.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("atlas", help="everything for one problem: strata, basins, transitions, claims, figures, "
                       "report.html")
    _add_problem_args(p)
    _add_sampling_args(p, samples_default=ATLAS_SAMPLES)
    p.add_argument("--transition-samples", type=_number("seed"), default=None,
                   help=f"trajectories for the transition graph (default {ATLAS_TRANSITION_SAMPLES}; 0 skips it)")
    p.add_argument("--transition-scale", type=_number("positive"), default=DEFAULT_TRANSITION_SCALE,
                   help="init scale for the transition graph (default: 1e-8 for H = 1, 10^(-2/(H-1)) for H >= 2)")
    p.add_argument("--strata", choices=("auto", "all", "reached"), default="auto",
                   help="which critical sets to measure: auto (default: all when few, else the reached ones and the "
                   "top chain), all, reached")
    p.add_argument("--budget", type=_budget, default=None,
                   help=f"time budget in seconds for the basins and transitions, or 'none' (default "
                        f"{ATLAS_BUDGET_S:.0f} unless --samples or --transition-samples is given): a pilot measures "
                        f"the cost per sample and the first N samples that fit are run")
    p.add_argument("--full-verify", action="store_true", help="run the claims audit at full size (slower)")
    p.add_argument("--no-verify", action="store_true", help="skip the claims audit (claims.md is not written)")
    p.set_defaults(func=cmd_atlas, ranks=None, top_only=False, samples=None)  # None: not given (_atlas_budget)

    p = sub.add_parser("strata", help="enumerate and linearize the critical strata; writes strata.nc")
    _add_problem_args(p)
    p.add_argument("--ranks", default=None, help="comma-separated ranks to include (default all)")
    p.add_argument("--top-only", action="store_true", help="only the top-r stratum {0..r-1} per rank")
    p.set_defaults(func=cmd_strata)

    p = sub.add_parser("basins", help="basin fractions of the strata with confidence intervals; writes basins.nc")
    _add_problem_args(p)
    _add_sampling_args(p)
    p.set_defaults(func=cmd_basins)

    p = sub.add_parser("transitions", help="saddle-to-saddle graph; writes transitions.nc and transitions.graphml")
    _add_problem_args(p)
    p.add_argument("--samples", type=_number("count"), required=True, help="number of trajectories")
    p.add_argument("--init-scale", type=_number("positive"), default=DEFAULT_TRANSITION_SCALE,
                   help="init scale (default: 1e-8 for H = 1, 10^(-2/(H-1)) for H >= 2)")
    p.set_defaults(func=cmd_transitions)

    p = sub.add_parser("verify", help="measure every claim of the paper; writes claims.md and claims.nc")
    p.add_argument("--out", default=DEFAULT_OUT, help=f"output directory (default {DEFAULT_OUT})")
    p.add_argument("--seed", type=_number("seed"), default=0, help="root seed (default 0)")
    p.add_argument("--quick", action="store_true", help="smaller ensembles (seconds)")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("plot", help="figures from the Datasets saved in DIR")
    p.add_argument("dir", metavar="DIR")
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser("report", help="report.html (self-contained, interactive) from the Datasets saved in DIR")
    p.add_argument("dir", metavar="DIR")
    p.add_argument("--out", default=None, help="the HTML file to write (default DIR/report.html)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("describe", help="what a saved Dataset (.nc or .zarr) holds and how it was made")
    p.add_argument("file", metavar="FILE")
    p.set_defaults(func=cmd_describe)
    return parser


def main(argv=None) -> int:
    """Entry point of the ``flowgeom`` command; returns the exit status (argparse errors raise SystemExit(2))."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    previous = _on_sigterm()
    try:
        return int(args.func(args) or 0)
    except _Terminated:
        print("flowgeom: terminated", file=sys.stderr)
        return 143
    except BadInput as e:
        message = str(e)
    except (InputError, OSError) as e:  # InputError/AssumptionError name the argument; OSError the file
        message = _first_line(e)
    except MemoryError:
        message = "out of memory; lower `--samples`, `--transition-samples` or the problem size (`--widths`)"
    except KeyboardInterrupt:
        # the run is over: a further Ctrl-C or SIGTERM while the interpreter exits must not turn
        # the clean exit into a death by signal
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)
        previous = None
        print("flowgeom: interrupted", file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    print(f"flowgeom: error: {' '.join(message.split())}", file=sys.stderr)
    return 2


class _Terminated(KeyboardInterrupt):
    """SIGTERM, delivered like Ctrl-C so that the same clean-up runs (pools shut down, finished chunks kept)."""


def _on_sigterm():
    """Turn SIGTERM into :class:`_Terminated` while a command runs; the previous handler (or None off the main thread)."""
    def handler(signum, frame):
        raise _Terminated

    try:
        return signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        return None

