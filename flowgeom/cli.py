"""The ``flowgeom`` command line: parses arguments and calls the public API, nothing more.

::

    flowgeom atlas       [PROBLEM] [--out DIR]
    flowgeom strata      [PROBLEM] [--ranks 1,2] [--out DIR]
    flowgeom basins      [PROBLEM] --samples N [--init NAME] [--init-scale X] [--integrator NAME]
                         [--scheduler ADDRESS] [--store PATH.zarr] [--out DIR]
    flowgeom transitions [PROBLEM] --samples N [--init-scale X] [--out DIR]
    flowgeom verify      [--out DIR]
    flowgeom plot        DIR
    PROBLEM: --widths dx,d1,...,dy --singular-values s1,...,s_dy | --data FILE(.npz/.nc with X, Y)
             [--model linear|tanh|softplus|sigmoid] [--seed N]

Exit status: 0 on success, 2 on bad input with a one-line reason on stderr.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

__all__ = ["main", "build_parser"]

DEFAULT_OUT = "./flowgeom-out"
MODELS = ("linear", "tanh", "softplus", "sigmoid")
# Small enough that a trajectory from s = (3, 2, 1) passes close to every saddle: the closest
# approach to the stratum {0} improves like eps^(2(1 - s_1/s_0)), and at 1e-4 the passage near
# {0} is a shoulder of the loss curve (||grad|| ~ 0.5), not a plateau.
DEFAULT_TRANSITION_SCALE = 1e-8


class BadInput(Exception):
    """A user error: reported as one line on stderr with exit status 2."""


def _ints(text: str, name: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise BadInput(f"`{name}` must be comma-separated integers like 5,4,3; got {text!r}") from None


def _floats(text: str, name: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise BadInput(f"`{name}` must be comma-separated numbers like 3,2,1; got {text!r}") from None


def _add_problem_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("problem")
    g.add_argument("--widths", help="layer widths dx,d1,...,dy (default 5,4,3)")
    g.add_argument("--singular-values", help="singular values s1,...,s_dy of the target (default 3,2,1)")
    g.add_argument("--data", help="a .npz or .nc file holding arrays X (d_x, m) and Y (d_y, m)")
    g.add_argument("--model", default="linear", help="linear (default), tanh, softplus or sigmoid")
    g.add_argument("--seed", type=int, default=0, help="root seed of every random draw (default 0)")
    p.add_argument("--out", default=DEFAULT_OUT, help=f"output directory (default {DEFAULT_OUT})")


def _load_data(path: str):
    import numpy as np

    f = Path(path)
    if not f.exists():
        raise BadInput(f"`--data` file {path!r} does not exist")
    if f.suffix == ".npz":
        with np.load(f) as z:
            if "X" not in z or "Y" not in z:
                raise BadInput(f"`--data` file {path!r} must hold arrays named X and Y; it has {sorted(z.files)}")
            return np.asarray(z["X"]), np.asarray(z["Y"])
    if f.suffix == ".nc":
        import xarray as xr

        with xr.open_dataset(f, engine="h5netcdf") as ds:
            if "X" not in ds or "Y" not in ds:
                raise BadInput(f"`--data` file {path!r} must hold variables X and Y")
            return ds["X"].values, ds["Y"].values
    raise BadInput(f"`--data` must be a .npz or .nc file; got {path!r}")


def make_problem(args):
    """Build the Problem (and the model name) from parsed arguments; raises BadInput."""
    from flowgeom.problem import DEFAULT_SINGULAR_VALUES, DEFAULT_WIDTHS, Problem

    if args.model not in MODELS:
        raise BadInput(f"`--model` must be one of {', '.join(MODELS)}; got {args.model!r}")
    try:
        if args.data:
            if args.singular_values:
                raise BadInput("give either `--data` or `--singular-values`, not both")
            X, Y = _load_data(args.data)
            widths = _ints(args.widths, "--widths") if args.widths else None
            if widths is None:
                raise BadInput("`--widths` is required with `--data` (e.g. --widths 5,4,3)")
            return Problem.from_data(X, Y, widths)
        widths = _ints(args.widths, "--widths") if args.widths else DEFAULT_WIDTHS
        if args.singular_values:
            s = _floats(args.singular_values, "--singular-values")
        elif args.widths:
            import numpy as np

            s = tuple(np.linspace(3.0, 1.0, widths[-1])) if widths[-1] > 1 else (1.0,)
        else:
            s = DEFAULT_SINGULAR_VALUES
        return Problem.from_spectrum(s, widths)
    except BadInput:
        raise
    except ValueError as e:  # the public constructors' messages name the argument and the fix
        raise BadInput(str(e).splitlines()[0]) from None


def make_target(args):
    """The Problem (``--model linear``) or the nonlinear network on the problem's data (other models)."""
    problem = make_problem(args)
    if args.model == "linear":
        return problem
    from flowgeom.models.mlp import mlp_for_problem

    return mlp_for_problem(problem, args.model)


def _out_dir(args) -> Path:
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BadInput(f"`--out` directory {args.out!r} cannot be created: {e.strerror}") from None
    return out


def _positive(cast, noun):
    """An argparse ``type`` that parses with ``cast`` and requires a value > 0."""

    def parse(text: str):
        try:
            v = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a positive {noun}; got {text!r}") from None
        if not v > 0:
            raise argparse.ArgumentTypeError(f"must be a positive {noun}; got {text!r}")
        return v

    return parse


_positive_int = _positive(int, "integer")
_positive_float = _positive(float, "number")


# ---------------------------------------------------------------------------- commands
def _print_fractions(ds) -> None:
    labels = [str(v) for v in ds["label"].values]
    width = max(8, max(len(lab) for lab in labels))
    print(f"  {'stratum':<{width}}  {'L*':>8}  {'fraction':>9}  {'CI':>21}")
    for i, lab in enumerate(labels):
        f, lo, hi = (float(ds[k].values[i]) for k in ("fraction", "fraction_low", "fraction_high"))
        cv = float(ds["critical_value"].values[i])
        print(f"  {lab:<{width}}  {cv:8.4g}  {f:9.4f}  [{lo:.4f}, {hi:.4f}]")
    lim = ds["limit"].values
    print(f"  unconverged: {int((lim == -1).sum())}, diverged: {int((lim == -2).sum())}, "
          f"unclassified: {int((lim == -3).sum())}, samples: {lim.size}")


def run_strata(target, args, out: Path, atlas=None):
    from flowgeom._resolve import as_atlas
    from flowgeom.critical.dataset import strata_dataset
    from flowgeom.io import save_dataset
    from flowgeom.audit.paper import add_paper_columns
    from flowgeom.linear.measure import strata_table

    atlas = as_atlas(target, seed=args.seed) if atlas is None else atlas
    ranks = set(_ints(args.ranks, "--ranks")) if getattr(args, "ranks", None) else None
    top_only = getattr(args, "top_only", False)
    keys = []
    for cs in atlas.sets():
        if ranks is not None and cs.rank not in ranks:
            continue
        if top_only and cs.info.get("learned") != "{" + ",".join(map(str, range(cs.rank))) + "}":
            continue
        keys.append(cs.key)
    if ranks is not None and not keys:
        raise BadInput(f"`--ranks` {args.ranks!r} selects no critical set")
    atlas.measure(keys, progress=True)
    ds = strata_dataset(atlas, keys)
    if getattr(atlas, "problem", None) is not None:
        ds = add_paper_columns(ds)
    save_dataset(ds, out / "strata.nc")
    print(strata_table(ds))
    print(f"-> {out / 'strata.nc'}")
    return ds


def run_basins(target, args, out: Path):
    from flowgeom.basins._sample import sample_basins
    from flowgeom.io import save_dataset

    ds = sample_basins(
        target,
        args.samples,
        init=args.init,
        init_scale=args.init_scale,
        integrator=args.integrator,
        lr=args.lr,
        seed=args.seed,
        scheduler=args.scheduler,
        store=args.store,
        progress=True,
    )
    save_dataset(ds, out / "basins.nc")
    print(f"basins of {args.samples} initializations ({args.init}, integrator {args.integrator}):")
    _print_fractions(ds)
    print(f"-> {out / 'basins.nc'}")
    return ds


def run_transitions(target, args, out: Path):
    from flowgeom.transitions import save_transitions, sample_transitions

    ds = sample_transitions(target, args.samples, init_scale=args.init_scale, seed=args.seed, measure_visited=True)
    nc, gm = save_transitions(ds, out)
    _print_transitions(ds, args.samples, args.init_scale)
    print(f"-> {nc}, {gm}")
    return ds


def _print_transitions(ds, samples, init_scale):
    print(f"transitions of {samples} trajectories from init scale {init_scale:g}:")
    src, dst, cnt = ds["source"].values, ds["target"].values, ds["count"].values
    prob = ds["probability"].values
    for i in np.argsort(-cnt):
        print(f"  {src[i]:>10} -> {dst[i]:<10} count {int(cnt[i]):5d}  p = {float(prob[i]):.3f}")


def _validate_sampling_args(args):
    if args.init_scale is not None and not args.init_scale > 0:
        raise BadInput(f"`--init-scale` must be positive; got {args.init_scale}")
    if args.integrator not in ("adaptive", "invariant", "gd"):
        raise BadInput(f"`--integrator` must be adaptive, invariant or gd; got {args.integrator!r}")
    if args.integrator == "gd" and args.lr is None:
        raise BadInput("`--integrator gd` needs `--lr` (a step size, e.g. --lr 0.01)")
    if args.store is not None and not str(args.store).endswith(".zarr"):
        raise BadInput(f"`--store` must be a path ending in .zarr; got {args.store!r}")


def cmd_strata(args) -> int:
    target = make_target(args)
    run_strata(target, args, _out_dir(args))
    return 0


def cmd_basins(args) -> int:
    _validate_sampling_args(args)
    target = make_target(args)
    run_basins(target, args, _out_dir(args))
    return 0


def cmd_transitions(args) -> int:
    target = make_target(args)
    run_transitions(target, args, _out_dir(args))
    return 0


def cmd_verify(args) -> int:
    from flowgeom.audit import claims_dataset, claims_markdown, verify_claims
    from flowgeom.io import save_dataset

    out = _out_dir(args)
    t = time.perf_counter()
    claims = verify_claims(quick=args.quick, seed=args.seed, progress=True)
    (out / "claims.md").write_text(claims_markdown(claims))
    save_dataset(claims_dataset(claims, seed=args.seed, quick=args.quick), out / "claims.nc")
    width = max(len(c.source) for c in claims)
    print(f"\nclaims ({time.perf_counter() - t:.1f} s) -> {out / 'claims.md'}")
    for c in claims:
        print(f"  {c.source:<{width}}  {c.verdict}")
    return 0


def cmd_plot(args) -> int:
    from flowgeom.io import load_dataset
    from flowgeom.plot import plot_directory

    d = Path(args.dir)
    if not d.is_dir():
        raise BadInput(f"`DIR` {args.dir!r} is not a directory (run `flowgeom atlas --out DIR` first)")
    found = [n for n in ("strata.nc", "basins.nc", "transitions.nc") if (d / n).exists()]
    if not found:
        raise BadInput(f"`DIR` {args.dir!r} holds none of strata.nc, basins.nc, transitions.nc")
    datasets = {n.removesuffix(".nc"): load_dataset(d / n) for n in found}
    for path in plot_directory(datasets, d):
        print(f"-> {path}")
    return 0


def cmd_atlas(args) -> int:
    from flowgeom.io import save_dataset
    from flowgeom.linear.measure import strata_table
    from flowgeom.pipeline import atlas
    from flowgeom.transitions import save_transitions

    _validate_sampling_args(args)
    out = _out_dir(args)
    t0 = time.perf_counter()
    target = make_target(args)
    print(f"== atlas of {'the deep linear network' if args.model == 'linear' else 'a ' + args.model + ' network'}")
    results = atlas(
        target,
        samples=args.samples,
        transition_samples=args.transition_samples,
        transition_scale=args.transition_scale,
        seed=args.seed,
        basins_options=dict(init=args.init, init_scale=args.init_scale, integrator=args.integrator, lr=args.lr,
                            scheduler=args.scheduler, store=args.store),
        progress=True,
    )
    print("\n== strata")
    print(strata_table(results["strata"]))
    save_dataset(results["strata"], out / "strata.nc")
    print(f"\n== basins ({args.samples} samples)")
    _print_fractions(results["basins"])
    save_dataset(results["basins"], out / "basins.nc")
    if "transitions" in results:
        print(f"\n== transitions ({args.transition_samples} samples, init scale {args.transition_scale:g})")
        _print_transitions(results["transitions"], args.transition_samples, args.transition_scale)
        save_transitions(results["transitions"], out)
    if args.model == "linear" and not args.no_verify:
        print("\n== claims of the paper (measured now)")
        cmd_verify(argparse.Namespace(out=str(out), seed=args.seed, quick=not args.full_verify))
    print("\n== figures")
    cmd_plot(argparse.Namespace(dir=str(out)))
    print(f"\natlas done in {time.perf_counter() - t0:.1f} s -> {out}")
    return 0


def _add_sampling_args(p, samples_default=None):
    p.add_argument("--samples", type=_positive_int, required=samples_default is None, default=samples_default,
                   help="number of initializations" + (f" (default {samples_default})" if samples_default else ""))
    p.add_argument("--init", default="gaussian",
                   help="gaussian (default), orthogonal, balanced, stable-set, file:PATH.npy")
    p.add_argument("--init-scale", type=float, default=None, help="scale of the initialization")
    p.add_argument("--integrator", default="adaptive", help="adaptive (default), invariant, gd")
    p.add_argument("--lr", type=_positive_float, default=None, help="step size for --integrator gd")
    p.add_argument("--scheduler", default=None, help="address of a dask.distributed scheduler")
    p.add_argument("--store", default=None, help="Zarr store (PATH.zarr) to checkpoint and resume")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flowgeom",
        description="Gradient descent as a dynamical system: critical strata, basins, saddle-to-saddle graphs, "
        "and an audit of Liao-Chitour-Couillet.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("atlas", help="everything for one problem: strata, basins, transitions, claims, figures")
    _add_problem_args(p)
    _add_sampling_args(p, samples_default=2000)
    p.add_argument("--transition-samples", type=_positive_int, default=100,
                   help="trajectories for the transition graph (default 100)")
    p.add_argument("--transition-scale", type=_positive_float, default=DEFAULT_TRANSITION_SCALE,
                   help=f"init scale for the transition graph (default {DEFAULT_TRANSITION_SCALE:g})")
    p.add_argument("--full-verify", action="store_true", help="run the claims audit at full size (slower)")
    p.add_argument("--no-verify", action="store_true", help="skip the claims audit (claims.md is not written)")
    p.set_defaults(func=cmd_atlas, ranks=None, top_only=False)

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
    p.add_argument("--samples", type=_positive_int, required=True, help="number of trajectories")
    p.add_argument("--init-scale", type=_positive_float, default=DEFAULT_TRANSITION_SCALE,
                   help=f"init scale (default {DEFAULT_TRANSITION_SCALE:g})")
    p.set_defaults(func=cmd_transitions)

    p = sub.add_parser("verify", help="measure every claim of the paper; writes claims.md and claims.nc")
    p.add_argument("--out", default=DEFAULT_OUT, help=f"output directory (default {DEFAULT_OUT})")
    p.add_argument("--seed", type=int, default=0, help="root seed (default 0)")
    p.add_argument("--quick", action="store_true", help="smaller ensembles (seconds)")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("plot", help="figures from the Datasets saved in DIR")
    p.add_argument("dir", metavar="DIR")
    p.set_defaults(func=cmd_plot)
    return parser


def main(argv=None) -> int:
    """Entry point of the ``flowgeom`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)  # argparse itself exits 2 with a usage line on bad syntax
    try:
        return int(args.func(args) or 0)
    except BadInput as e:
        print(f"flowgeom: error: {e}", file=sys.stderr)
        return 2
    except (ValueError, OSError) as e:  # the library's messages name the argument and the fix
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"flowgeom: error: {first}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("flowgeom: interrupted", file=sys.stderr)
        return 130
