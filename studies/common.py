"""Plumbing shared by the studies scripts: configuration attrs, the Dataset cache, the style, saving.

Every study script defines ``CONFIG`` (full size) and ``QUICK_CONFIG`` (CI size): dicts of the
constants it uses (``seed`` and sizes). :func:`run` is its ``main``: it parses the command line,
reuses ``DATA/<name>.nc`` when that file's attrs match the configuration and the installed
flowgeom version, otherwise calls ``compute``, saves the Dataset, calls ``plot`` and writes
``FIGURES/<name>.png``.

Nothing here is specific to one figure; nothing here computes science (that is flowgeom's job).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import inspect
import json
import time
from pathlib import Path
from typing import Callable, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

import flowgeom  # noqa: E402
from flowgeom.io import load_dataset, save_dataset  # noqa: E402

from . import paths  # noqa: E402

__all__ = ["study_attrs", "cache_matches", "load_or_compute", "save_figure", "style", "run", "parse_args"]

DPI = 110
"""Resolution of the committed PNGs (small files, legible in a README)."""

QUICK_DPI = 50
"""Resolution of ``--quick`` outputs (throw-away smoke-test pictures: rendering time matters, not detail)."""

MAX_PNG_BYTES = 150_000
"""A figure larger than this is reported (not refused): the README gallery should stay light."""


def _canon(v):
    """A JSON-comparable form of an attribute value (tuples -> lists, numpy -> Python)."""
    if isinstance(v, dict):
        return {str(k): _canon(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, np.ndarray)):
        return [_canon(x) for x in list(v)]
    if isinstance(v, (np.bool_, bool)):
        return bool(v)
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating, float)):
        return float(v)
    return v


def compute_fingerprint(compute: Callable, plot: Callable | None = None) -> str:
    """SHA-256 of the source file defining ``compute``, without the source of ``plot``.

    Stored in the cached Dataset's attrs, so that editing the computation (or a constant it
    uses) invalidates the cache while editing only the plotting does not.
    """
    src = inspect.getsource(inspect.getmodule(compute))
    if plot is not None:
        src = src.replace(inspect.getsource(plot), "")
    return hashlib.sha256(src.encode()).hexdigest()[:16]


def study_attrs(name: str, config: dict, *, quick: bool) -> dict:
    """The attrs that identify a computed study Dataset: name, config entries, quick flag, version."""
    attrs = {"study": name, "quick": bool(quick), "flowgeom_version": flowgeom.__version__}
    for k, v in config.items():
        attrs[k] = _canon(v)
    return attrs


def cache_matches(ds: xr.Dataset, expected: dict) -> bool:
    """True when every expected attr is present in ``ds.attrs`` with an equal value."""
    for k, v in expected.items():
        if k not in ds.attrs:
            return False
        if json.dumps(_canon(ds.attrs[k]), sort_keys=True) != json.dumps(_canon(v), sort_keys=True):
            return False
    return True


def load_or_compute(
    name: str,
    compute: Callable[..., xr.Dataset],
    config: dict,
    *,
    quick: bool,
    data_dir: Path,
    force: bool = False,
    verbose: bool = True,
) -> xr.Dataset:
    """Reuse ``data_dir/<name>.nc`` if its attrs match, else compute (and cache) the Dataset."""
    expected = study_attrs(name, config, quick=quick)
    path = Path(data_dir) / f"{name}.nc"
    if path.exists() and not force:
        try:
            ds = load_dataset(path)
        except Exception as exc:  # a corrupt or foreign cache is recomputed, not trusted
            if verbose:
                print(f"[{name}] ignoring unreadable cache {path}: {exc}")
        else:
            if cache_matches(ds, expected):
                if verbose:
                    print(f"[{name}] reusing cached {path}")
                return ds
            if verbose:
                print(f"[{name}] cache {path} does not match the configuration; recomputing")
    t0 = time.perf_counter()
    ds = compute(quick=quick)
    ds.attrs.update(expected)
    ds.attrs["compute_seconds"] = round(time.perf_counter() - t0, 2)
    save_dataset(ds, path)
    if verbose:
        print(f"[{name}] computed in {ds.attrs['compute_seconds']:.1f} s -> {path}")
    return ds


@contextlib.contextmanager
def style():
    """The studies' matplotlib style (``studies/flowgeom.mplstyle``)."""
    with plt.style.context(str(paths.STYLE)):
        yield


def _quantize_png(path: Path) -> None:
    """Re-encode a PNG with an adaptive 256-colour palette when that makes it smaller.

    Line plots use few colours, so the palette image is visually identical and 2-4x lighter
    (the README gallery loads every figure). Pillow ships with matplotlib.
    """
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - matplotlib depends on pillow
        return
    with Image.open(path) as im:
        im.load()
    q = im.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    tmp = path.with_suffix(".q.png")
    q.save(tmp, optimize=True)
    if tmp.stat().st_size < path.stat().st_size:
        tmp.replace(path)
    else:
        tmp.unlink()


def save_figure(fig, path: Path, *, dpi: int = DPI, verbose: bool = True) -> Path:
    """Write ``fig`` as PNG at ``dpi`` and close it; report the size if above :data:`MAX_PNG_BYTES`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    _quantize_png(path)
    size = path.stat().st_size
    if verbose:
        flag = "  (larger than the gallery budget)" if size > MAX_PNG_BYTES else ""
        print(f"wrote {path} ({size / 1000:.0f} kB){flag}")
    return path


def parse_args(name: str, argv: Sequence[str] | None, doc: str | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=f"studies/{name}.py", description=(doc or "").split("\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny CI-sized run (outputs go to studies/data/quick/)")
    p.add_argument("--force", action="store_true", help="recompute even if a matching cache exists")
    p.add_argument("--out", type=Path, default=None, help="directory for the PNG (default: figures/)")
    p.add_argument("--data", type=Path, default=None, help="directory for the cached Dataset (default: studies/data/)")
    return p.parse_args(list(argv) if argv is not None else None)


def run(
    name: str,
    compute: Callable[..., xr.Dataset],
    plot: Callable[[xr.Dataset], "plt.Figure"],
    config: dict,
    quick_config: dict,
    argv: Sequence[str] | None = None,
    *,
    doc: str | None = None,
) -> Path:
    """The body of every study's ``main``: parse, load-or-compute, plot, save. Returns the PNG path."""
    args = parse_args(name, argv, doc)
    quick = bool(args.quick)
    out_dir = args.out if args.out is not None else (paths.QUICK if quick else paths.FIGURES)
    data_dir = args.data if args.data is not None else (paths.QUICK if quick else paths.DATA)
    cfg = dict(quick_config if quick else config)
    cfg["compute_source_sha256"] = compute_fingerprint(compute, plot)
    ds = load_or_compute(name, compute, cfg, quick=quick, data_dir=data_dir, force=args.force)
    with style():
        fig = plot(ds)
    return save_figure(fig, Path(out_dir) / f"{name}.png", dpi=QUICK_DPI if quick else DPI)
