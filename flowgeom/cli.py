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

__all__ = ["main", "build_parser"]

DEFAULT_OUT = "./flowgeom-out"


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
    from .problem import DEFAULT_SINGULAR_VALUES, DEFAULT_WIDTHS, Problem

    if args.model not in ("linear", "tanh", "softplus", "sigmoid"):
        raise BadInput(f"`--model` must be linear, tanh, softplus or sigmoid; got {args.model!r}")
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


def _out_dir(args) -> Path:
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BadInput(f"`--out` directory {args.out!r} cannot be created: {e.strerror}") from None
    return out


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer; got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer; got {text!r}")
    return v


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive number; got {text!r}") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number; got {text!r}")
    return v


# ---------------------------------------------------------------------------- commands
def cmd_verify(args) -> int:
    from .claims import claims_dataset, claims_markdown, verify_claims
    from .io import save_dataset

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flowgeom",
        description="Gradient descent as a dynamical system: critical strata, basins, saddle-to-saddle graphs, "
        "and an audit of Liao-Chitour-Couillet.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("verify", help="measure every claim of the paper; writes claims.md and claims.nc")
    p.add_argument("--out", default=DEFAULT_OUT, help=f"output directory (default {DEFAULT_OUT})")
    p.add_argument("--seed", type=int, default=0, help="root seed (default 0)")
    p.add_argument("--quick", action="store_true", help="smaller ensembles (seconds)")
    p.set_defaults(func=cmd_verify)
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
    except KeyboardInterrupt:
        print("flowgeom: interrupted", file=sys.stderr)
        return 130
