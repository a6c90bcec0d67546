"""Command-line input: arguments parsed literally into a checked problem or model, before any work.

Internal module of :mod:`flowgeom.cli`: list parsing without silently dropped items, the problem or
model a command runs on (``--widths``/``--singular-values``, ``--data`` with ``--whiten``, ``--model``),
and the checks every command makes before it computes (sampling options, ``--init`` files, the
scheduler address, the store, memory). A failed check raises :class:`BadInput` (exit status 2).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import math
import os
from pathlib import Path

import numpy as np



DEFAULT_OUT = "./flowgeom-out"
MODELS = ("linear", "tanh", "softplus", "sigmoid", "diagonal")
INTEGRATORS = ("auto", "adaptive", "stiff", "invariant", "gd")
INITS = ("gaussian", "orthogonal", "balanced", "stable-set")
# None: flowgeom.transitions.sample.default_init_scale of the depth (1e-8 for H = 1: small enough that a
# trajectory from s = (3, 2, 1) passes close to every saddle; 10^(-2/(H-1)) for H >= 2, where at 1e-8 the
# gradient at the start is ~1e-15 and the flow never leaves the origin).
DEFAULT_TRANSITION_SCALE = None
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
    g.add_argument("--data", help="a .npz or .nc file holding arrays X (d_x, m) and Y (d_y, m), or a shipped "
                   "dataset: digits (61 x 1797, 10 classes) or linnerud (3 x 20, 3 targets); an existing file wins")
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
    from flowgeom._data import whiten
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
            X, Y = _read_data(args.data)
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


def _read_data(spec, *, full_rank: bool = True):
    """``--data``: a file, or a shipped dataset's name (an existing file wins; the note says which was read)."""
    from flowgeom._data import resolve_data

    X, Y, note = resolve_data(spec, full_rank=full_rank)
    if note:
        print(note)
    return X, Y


def _diagonal_target(args):
    from flowgeom._data import whiten
    from flowgeom.models.diagonal import DiagonalLinearNetwork

    if not args.data:
        raise BadInput("`--model diagonal` needs `--data` with X (d, m) and y of shape (1, m)")
    for flag, val in (("--widths", args.widths), ("--singular-values", args.singular_values)):
        if val is not None:
            raise BadInput(f"`{flag}` is not used by `--model diagonal` (its size comes from X); drop it")
    X, Y = _read_data(args.data, full_rank=False)
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
    if address is None or address in ("processes", "threads", "synchronous", "serial"):
        return
    if "://" not in address:
        raise BadInput(f"`--scheduler` must be 'threads', 'processes', 'synchronous' or a dask address like "
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
    """A store error (foreign, damaged, in use, or written by another run) names the option, `--store`."""
    try:
        yield
    except ValueError as e:
        if not str(e).startswith("`store`"):
            raise
        raise BadInput(_first_line(e).replace("`store`", "`--store`", 1)) from None
