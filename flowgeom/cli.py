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
    PROBLEM:  --widths dx,d1,...,dy --singular-values s1,...,s_dy | --data FILE(.npz/.nc with X, Y) [--whiten]
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
import contextlib
import itertools
import math
import os
import shlex
import signal
import sys
import time
from pathlib import Path

import numpy as np

from flowgeom._validate import InputError  # AssumptionError subclasses it

__all__ = ["build_parser", "main"]

DEFAULT_OUT = "./flowgeom-out"
MODELS = ("linear", "tanh", "softplus", "sigmoid", "diagonal")
INTEGRATORS = ("auto", "adaptive", "stiff", "invariant", "gd")
INITS = ("gaussian", "orthogonal", "balanced", "stable-set")
# Small enough that a trajectory from s = (3, 2, 1) passes close to every saddle: the closest
# approach to the stratum {0} improves like eps^(2(1 - s_1/s_0)), and at 1e-4 the passage near
# {0} is a shoulder of the loss curve (||grad|| ~ 0.5), not a plateau.
DEFAULT_TRANSITION_SCALE = 1e-8
MAX_GD_STEPS = 1e8  # --lr below t1 / MAX_GD_STEPS is refused (the run would never finish)
BASINS_T1 = 100.0  # flowgeom.basins.sample_basins's default horizon
TRANSITION_SAVES = 400  # flowgeom.transitions.sample_transitions's default n_save


class BadInput(Exception):
    """A user error: reported as one line on stderr with exit status 2."""


@contextlib.contextmanager
def _checking(prefix: str = ""):
    """Checks before work: any ValueError or OSError raised inside is the input's fault (BadInput)."""
    try:
        yield
    except BadInput:
        raise
    except (ValueError, OSError, OverflowError) as e:
        raise BadInput(prefix + _first_line(e)) from None


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    if isinstance(e, OSError) and e.strerror and e.filename:
        text = f"{e.filename!r}: {e.strerror}"
    return text.splitlines()[0] if text else type(e).__name__


# ---------------------------------------------------------------------------- literal parsing
def _items(text: str, name: str, example: str) -> list[str]:
    parts = text.split(",")
    if not text.strip() or any(not p.strip() for p in parts):
        raise BadInput(f"`{name}` has an empty item in {text!r}; give comma-separated values like {example}")
    return [p.strip() for p in parts]


def _ints(text: str, name: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in _items(text, name, "5,4,3"))
    except ValueError:
        raise BadInput(f"`{name}` must be comma-separated integers like 5,4,3; got {text!r}") from None


def _floats(text: str, name: str) -> tuple[float, ...]:
    try:
        vals = tuple(float(x) for x in _items(text, name, "3,2,1"))
    except ValueError:
        raise BadInput(f"`{name}` must be comma-separated numbers like 3,2,1; got {text!r}") from None
    if not all(math.isfinite(v) for v in vals):
        raise BadInput(f"`{name}` must be finite numbers like 3,2,1; got {text!r}")
    return vals


def _number(kind: str):
    """An argparse ``type``: ``count`` (integer > 0, 1e3 allowed), ``positive`` or ``seed`` (integer >= 0)."""

    def parse(text: str):
        try:
            v = float(text)
            if kind != "positive":
                if not (math.isfinite(v) and v == int(v)):
                    raise ValueError
                v = int(text) if text.strip().lstrip("+-").isdigit() else int(v)
        except (ValueError, OverflowError):
            noun = "finite positive number" if kind == "positive" else "integer"
            raise argparse.ArgumentTypeError(f"must be a {noun}; got {text!r}") from None
        ok = v >= 0 if kind == "seed" else v > 0
        if not ok or (kind == "positive" and not math.isfinite(v)):
            noun = {"seed": "non-negative integer", "count": "positive integer", "positive": "finite positive number"}
            raise argparse.ArgumentTypeError(f"must be a {noun[kind]}; got {text!r}")
        return v

    return parse


# ---------------------------------------------------------------------------- the problem
def _add_problem_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("problem")
    g.add_argument("--widths", help="layer widths dx,d1,...,dy (default 5,4,3)")
    g.add_argument("--singular-values", help="singular values s1,...,s_dy of the target (default 3,2,1)")
    g.add_argument("--data", help="a .npz or .nc file holding arrays X (d_x, m) and Y (d_y, m)")
    g.add_argument("--whiten", action="store_true",
                   help="simulate the whitened problem X -> (X X^T)^(-1/2) X (a different flow; needs --data)")
    g.add_argument("--model", default="linear", help="linear (default), tanh, softplus, sigmoid, or diagonal "
                   "(a diagonal linear network on --data with Y of one row)")
    g.add_argument("--seed", type=_number("seed"), default=0, help="root seed of every random draw (default 0)")
    p.add_argument("--out", default=DEFAULT_OUT, help=f"output directory (default {DEFAULT_OUT})")


def _assumption_message(e) -> str:
    return _first_line(e).replace(" Pass on_violation='warn' to run the flow anyway.",
                                  " Choose widths and data (or singular values) that satisfy it.")


def _check_size(widths):
    """Refuse widths whose problem cannot be built in memory (d_x x d_x bases, the parameters)."""
    from flowgeom._validate import check_memory

    if len(widths) > 1 and min(widths) >= 1:
        n = sum(a * b for a, b in itertools.pairwise(widths))
        with _checking():
            check_memory(f"a problem with d_x = {widths[0]:,} and n = {n:,} parameters",
                         8.0 * (3 * widths[0] ** 2 + 64 * n), "lower `--widths`")
    return widths


def make_problem(args):
    """Build the Problem from parsed arguments; raises BadInput."""
    from flowgeom._data import load_data, whiten
    from flowgeom.problem import (
        DEFAULT_SINGULAR_VALUES,
        DEFAULT_WIDTHS,
        AssumptionError,
        Problem,
    )

    if args.whiten and not args.data:
        raise BadInput("`--whiten` needs `--data` (it whitens the inputs X of a data file)")
    try:
        if args.data:
            if args.singular_values:
                raise BadInput("give either `--data` or `--singular-values`, not both")
            if not args.widths:
                raise BadInput("`--widths` is required with `--data` (e.g. --widths 5,4,3)")
            widths = _check_size(_ints(args.widths, "--widths"))
            X, Y = load_data(args.data)
            if args.whiten:
                X = whiten(X)
            return Problem.from_data(X, Y, widths)
        widths = _check_size(_ints(args.widths, "--widths")) if args.widths is not None else DEFAULT_WIDTHS
        if args.singular_values is not None:
            s = _floats(args.singular_values, "--singular-values")
        elif args.widths is not None:
            s = tuple(np.linspace(3.0, 1.0, widths[-1])) if widths[-1] > 1 else (1.0,)
        else:
            s = DEFAULT_SINGULAR_VALUES
        return Problem.from_spectrum(s, widths)
    except AssumptionError as e:
        raise BadInput(_assumption_message(e)) from None
    except (ValueError, MemoryError, OverflowError) as e:  # the constructors' messages name the argument and the fix
        raise BadInput(_first_line(e).replace("`widths`", "`--widths`")) from None


def _diagonal_target(args):
    from flowgeom._data import load_data, whiten
    from flowgeom.models.diagonal import DiagonalLinearNetwork

    if not args.data:
        raise BadInput("`--model diagonal` needs `--data` with X (d, m) and y of shape (1, m)")
    for flag, val in (("--widths", args.widths), ("--singular-values", args.singular_values)):
        if val is not None:
            raise BadInput(f"`{flag}` is not used by `--model diagonal` (its size comes from X); drop it")
    X, Y = load_data(args.data, full_rank=False)
    if Y.shape[0] != 1:
        raise BadInput(f"`--model diagonal` needs Y of shape (1, m) (one target per sample); got {Y.shape}")
    if args.whiten:
        X = whiten(X)
    return DiagonalLinearNetwork(X.T, Y[0])


def make_target(args):
    """The Problem (``--model linear``), a nonlinear network on the problem's data, or a diagonal network."""
    if args.model not in MODELS:
        raise BadInput(f"`--model` must be one of {', '.join(MODELS)}; got {args.model!r}")
    with _checking():
        if args.model == "diagonal":
            target = _diagonal_target(args)
        else:
            problem = make_problem(args)
            if args.model == "linear":
                target = problem
            else:
                from flowgeom.models.mlp import mlp_for_problem

                target = mlp_for_problem(problem, args.model)
    if args.whiten:
        print("note: --whiten simulates the whitened problem X -> (X X^T)^(-1/2) X: a DIFFERENT gradient flow "
              "from the raw data's (same end-to-end minimizers up to that change of coordinates).")
    return target


def _model_of(target):
    return target.network() if hasattr(target, "network") else target


def _out_dir(args) -> Path:
    """Create ``--out`` and prove it writable (a probe file), before any work."""
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".flowgeom-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise BadInput(f"`--out` directory {args.out!r} is not writable ({e.strerror or e}); choose another "
                       "directory") from None
    return out


# ---------------------------------------------------------------------------- checks before work
def _check_scale_overflow(name: str, scale, model) -> None:
    if scale is None:
        return
    depth = len(getattr(model, "widths", (0, 0))) - 1 if hasattr(model, "widths") else getattr(model, "depth", 2)
    log10_loss = 2 * max(depth, 1) * math.log10(scale) + math.log10(max(model.n_params, 1))
    if log10_loss > 250:
        raise BadInput(f"`{name}` {scale:g} makes the initial weights' products overflow (~1e{log10_loss:.0f} "
                       f"with {depth} layers); lower it (e.g. 1)")


def _check_scheduler(address) -> None:
    if address is None or address in ("processes", "synchronous", "serial"):
        return
    if "://" not in address:
        raise BadInput(f"`--scheduler` must be 'processes', 'synchronous' or a dask address like "
                       f"tcp://host:8786; got {address!r}")
    scheme, rest = address.split("://", 1)
    if scheme not in ("tcp", "tls", "ws", "wss", "inproc", "ucx"):
        raise BadInput(f"`--scheduler` {address!r} has an unknown protocol {scheme!r}; use tcp://host:port")
    if scheme != "tcp":
        return
    import socket

    host, _, port = rest.rstrip("/").rpartition(":")
    try:
        with socket.create_connection((host.strip("[]") or "localhost", int(port)), timeout=5.0):
            pass
    except (ValueError, OSError) as e:
        reason = "connection refused" if isinstance(e, ConnectionRefusedError) else (
            "no answer within 5 s" if isinstance(e, TimeoutError) else _first_line(e))
        raise BadInput(f"`--scheduler` {address!r} cannot be reached ({reason}); start it with `dask scheduler` "
                       "or drop --scheduler to use local cores") from None


def _check_store(store) -> None:
    if store is None:
        return
    if not str(store).endswith(".zarr"):
        raise BadInput(f"`--store` must be a path ending in .zarr; got {store!r}")
    p = Path(store)
    if not p.exists():
        return
    if not p.is_dir():
        raise BadInput(f"`--store` {store!r} exists and is not a Zarr store (a directory); choose another path")
    if any(p.iterdir()):
        import zarr

        from flowgeom.basins.store import STORE_KEY

        try:
            ok = STORE_KEY in zarr.open_group(str(p), mode="r").attrs
        except Exception:  # noqa: BLE001 - any failure to open means: not a usable store
            ok = False
        if not ok:
            raise BadInput(f"`--store` {store!r} exists but is not a flowgeom basins store; choose another path")


def _check_init(args, target) -> None:
    from flowgeom.basins.samplers import make_initializer

    init = args.init
    if init.startswith("file:"):
        path = Path(init[len("file:"):])
        if args.init_scale is not None:
            raise BadInput("`--init-scale` is not used with a `file:` init (the file holds the initial states); "
                           "drop it or scale the file")
        if path.suffix != ".npy" or not path.is_file():
            raise BadInput(f"`--init` {init!r}: expected an existing .npy file (np.save(path, thetas), shape "
                           f"(N, n_params)); got {'a directory' if path.is_dir() else 'no such .npy file'}")
        try:
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
        except Exception:  # noqa: BLE001 - damaged headers raise ValueError, EOFError, UnicodeDecodeError, ...
            raise BadInput(f"`--init` {init!r} is not a readable .npy array (damaged, truncated or pickled); "
                           "write it with np.save(path, thetas)") from None
        if not isinstance(arr, np.ndarray):
            raise BadInput(f"`--init` {init!r} is not a single .npy array; write it with np.save(path, thetas)")
    elif init not in INITS:
        raise BadInput(f"`--init` must be one of {', '.join(INITS)} or file:PATH.npy; got {init!r}")
    problem = target if hasattr(target, "network") else None
    with _checking("`--init`: "):
        try:
            make_initializer(init, _model_of(target), scale=args.init_scale, problem=problem)
        except TypeError as e:
            raise BadInput(f"`--init` {init!r} does not apply to this model: {_first_line(e)}") from None


def _check_sampling(args, target) -> None:
    """Every basins option, before any work."""
    if args.integrator not in INTEGRATORS:
        raise BadInput(f"`--integrator` must be one of {', '.join(INTEGRATORS)}; got {args.integrator!r}")
    if args.integrator == "gd" and args.lr is None:
        raise BadInput("`--integrator gd` needs `--lr` (a step size, e.g. --lr 0.01)")
    if args.integrator != "gd" and args.lr is not None:
        raise BadInput(f"`--lr` is only used with `--integrator gd`; drop it or add --integrator gd "
                       f"(got --integrator {args.integrator})")
    if args.lr is not None and BASINS_T1 / args.lr > MAX_GD_STEPS:
        raise BadInput(f"`--lr` {args.lr:g} plans {BASINS_T1 / args.lr:.3g} gradient steps to t = {BASINS_T1:g}; "
                       f"raise it to at least {BASINS_T1 / MAX_GD_STEPS:g}")
    model = _model_of(target)
    _check_scale_overflow("--init-scale", args.init_scale, model)
    _check_store(args.store)
    _check_init(args, target)
    _check_scheduler(args.scheduler)


def _check_resources(command: str, args, target) -> None:
    """Refuse work that cannot fit in memory, naming the option to change."""
    from flowgeom._validate import check_memory

    n = int(_model_of(target).n_params)
    shape = "`--data` (fewer features)" if args.data else "`--widths` (fewer or narrower layers)"
    with _checking():
        if command in ("strata", "atlas") or getattr(args, "integrator", None) == "invariant":
            check_memory(f"a dense Hessian of the n = {n:,} parameters", 8.0 * n * n, f"lower {shape}")
        if command in ("basins", "atlas"):
            check_memory(f"{args.samples:,} basin samples of {n:,} parameters",
                         8.0 * args.samples * (16 + min(n, 4096)), "lower `--samples`")
        samples = args.samples if command == "transitions" else getattr(args, "transition_samples", 0)
        if command in ("transitions", "atlas") and samples:
            name = "--samples" if command == "transitions" else "--transition-samples"
            check_memory(f"{samples:,} transition trajectories x {TRANSITION_SAVES} saves x {n:,} parameters",
                         8.0 * samples * TRANSITION_SAVES * (n + 2), f"lower `{name}`")


@contextlib.contextmanager
def _store_errors():
    """A store written by another run is the user's input (sample_basins documents it as a ValueError)."""
    try:
        yield
    except ValueError as e:
        if isinstance(e, InputError) or not str(e).startswith("`store`"):
            raise
        raise BadInput(_first_line(e).replace("`store`", "`--store`", 1)) from None


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
    out = _out_dir(args)
    with _store_errors():
        ds = sample_basins(target, args.samples, init=args.init, init_scale=args.init_scale,
                           integrator=args.integrator, lr=args.lr, seed=args.seed, scheduler=args.scheduler,
                           store=args.store, progress=True)
    _save(ds, out / "basins.nc", args)
    print(f"basins of {args.samples} initializations ({args.init}, integrator {args.integrator}):")
    _print_fractions(ds)
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
    ds = sample_transitions(target, args.samples, init_scale=args.init_scale, seed=args.seed, measure_visited=True)
    nc, gm = _save_transitions(ds, out, args)
    _print_transitions(ds, args.samples, args.init_scale)
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


def cmd_atlas(args) -> int:
    from flowgeom.pipeline import atlas

    t0 = time.perf_counter()
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
            target, samples=args.samples, transition_samples=args.transition_samples,
            transition_scale=args.transition_scale, seed=args.seed, measure=args.strata,
            basins_options={"init": args.init, "init_scale": args.init_scale, "integrator": args.integrator,
                            "lr": args.lr, "scheduler": args.scheduler, "store": args.store},
            progress=True,
        )
    print("\n== strata")
    print(_strata_table(results["strata"]))
    _print_coverage(results["strata"])
    _save(results["strata"], out / "strata.nc", args)
    print(f"\n== basins ({args.samples} samples)")
    _print_fractions(results["basins"])
    _save(results["basins"], out / "basins.nc", args)
    if "transitions" in results:
        print(f"\n== transitions ({args.transition_samples} samples, init scale {args.transition_scale:g})")
        _print_transitions(results["transitions"], args.transition_samples, args.transition_scale)
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
    p.add_argument("--scheduler", default=None, help="address of a dask.distributed scheduler")
    p.add_argument("--store", default=None, help="Zarr store (PATH.zarr) to checkpoint and resume")


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
    _add_sampling_args(p, samples_default=2000)
    p.add_argument("--transition-samples", type=_number("seed"), default=100,
                   help="trajectories for the transition graph (default 100; 0 skips it)")
    p.add_argument("--transition-scale", type=_number("positive"), default=DEFAULT_TRANSITION_SCALE,
                   help=f"init scale for the transition graph (default {DEFAULT_TRANSITION_SCALE:g})")
    p.add_argument("--strata", choices=("auto", "all", "reached"), default="auto",
                   help="which critical sets to measure: auto (default: all when few, else the reached ones and the "
                   "top chain), all, reached")
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
    p.add_argument("--samples", type=_number("count"), required=True, help="number of trajectories")
    p.add_argument("--init-scale", type=_number("positive"), default=DEFAULT_TRANSITION_SCALE,
                   help=f"init scale (default {DEFAULT_TRANSITION_SCALE:g})")
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

