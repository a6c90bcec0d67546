r"""Data files of the command line's ``--data``: load, check and (optionally) whiten arrays X, Y.

A data file holds inputs :math:`X \in \mathbb{R}^{d_x \times m}` and targets
:math:`Y \in \mathbb{R}^{d_y \times m}`, samples as columns (the paper's convention), as a NumPy
``.npz`` archive (arrays ``X`` and ``Y``; never unpickled) or a NetCDF ``.nc`` file (variables ``X``
and ``Y``, read with h5netcdf). Every defect a user can fix is an :class:`~flowgeom._validate.InputError`
with one line that names the file and the fix: unreadable or damaged files, missing arrays, complex or
non-numeric values, NaN/inf, magnitudes whose squares overflow, and constant or collinear features
(the count of near-zero singular values of :math:`X`, not the whole spectrum).

Whitening replaces :math:`X` by :math:`(X X^\top)^{-1/2} X`, so that :math:`X X^\top = I` (the normal form
of Liao, Chitour & Couillet); it is a different gradient flow with the same global minimizers of the
end-to-end map up to the change of coordinates.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from flowgeom._validate import InputError

__all__ = ["check_data", "load_data", "resolve_data", "whiten"]

#: singular values of X below this fraction of the largest count as zero (constant/collinear features)
RANK_RTOL = 1e-10
#: largest magnitude accepted: its square summed over samples must stay far from float64 overflow
MAX_ABS = 1e150


def _fail(path, what: str) -> InputError:
    return InputError(f"`--data` file {str(path)!r} {what}")


def _read_npz(path: Path) -> dict:
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic != b"PK\x03\x04":  # not a zip archive: np.load would try (and refuse) to unpickle it
        raise _fail(path, "is not an .npz archive (damaged or another format); save with np.savez(path, X=X, Y=Y).")
    try:
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as z:  # our handle: closed on any failure
            if not isinstance(z, np.lib.npyio.NpzFile):
                raise _fail(path, "is a single .npy array, not an .npz archive; save with np.savez(path, X=X, Y=Y).")
            out = {}
            for name in ("X", "Y"):
                if name in z.files:
                    out[name] = z[name]
            if len(out) < 2:
                raise _fail(path, f"must hold arrays named X and Y; it has {sorted(z.files)} "
                                  "(save with np.savez(path, X=X, Y=Y)).")
            return out
    except InputError:
        raise
    except ValueError as e:
        if "pickle" in str(e).lower():
            raise _fail(path, "holds Python objects (pickled arrays), which are never loaded; "
                              "save numeric arrays with np.savez(path, X=X, Y=Y).") from None
        raise _fail(path, "is not a readable .npz archive (damaged or not NumPy data); "
                          "save with np.savez(path, X=X, Y=Y).") from None
    except (zipfile.BadZipFile, EOFError, KeyError, OSError, zipfile.LargeZipFile, NotImplementedError,
            RuntimeError, UnicodeDecodeError, TypeError, AttributeError, IndexError, OverflowError,
            MemoryError):
        raise _fail(path, "is not a readable .npz archive (damaged, truncated or not NumPy data); "
                          "save with np.savez(path, X=X, Y=Y).") from None


def _read_nc(path: Path) -> dict:
    import xarray as xr

    try:
        with xr.open_dataset(path, engine="h5netcdf") as ds:
            missing = [n for n in ("X", "Y") if n not in ds.variables]
            if missing:
                raise _fail(path, f"must hold variables X and Y; it has {sorted(map(str, ds.variables))}.")
            return {n: np.asarray(ds[n].values) for n in ("X", "Y")}
    except InputError:
        raise
    except Exception:  # noqa: BLE001 - h5py/h5netcdf raise many types on damaged files; all mean the same to a user
        raise _fail(path, "is not a readable NetCDF4/HDF5 file (damaged, truncated or another format); "
                          "write it with xarray.Dataset.to_netcdf(path, engine='h5netcdf').") from None


def check_data(X, Y, path="<arrays>", *, full_rank: bool = True) -> tuple[np.ndarray, np.ndarray]:
    r"""``X`` (d_x, m) and ``Y`` (d_y, m) as float64 arrays, or an InputError naming the defect and the fix.

    Parameters
    ----------
    X, Y : array_like
        Inputs and targets, samples as columns.
    path : str, default "<arrays>"
        Shown in messages.
    full_rank : bool, default True
        Require :math:`X` of full row rank d_x (deep linear problems, Assumption 2); False for models
        that accept more features than samples (e.g. diagonal networks).

    Raises
    ------
    InputError
        Non-numeric or complex values, not 2-D, different sample counts, NaN/inf, entries above
        :data:`MAX_ABS` in magnitude, or :math:`X` without full row rank (constant or collinear features).
    """
    arrays = {}
    for name, A in (("X", X), ("Y", Y)):
        A = np.asarray(A)
        if A.dtype.kind == "c":
            raise _fail(path, f"holds complex `{name}` ({A.dtype}); pass real numbers (the real part is not taken "
                              "for you).")
        if A.dtype.kind not in "biuf":
            raise _fail(path, f"holds non-numeric `{name}` (dtype {A.dtype}); pass real numbers.")
        if A.ndim != 2:
            raise _fail(path, f"has `{name}` of shape {A.shape}; it must be 2-D (features, samples).")
        if A.size == 0:
            raise _fail(path, f"has an empty `{name}` (shape {A.shape}); pass at least one sample.")
        A = A.astype(np.float64)
        if not np.all(np.isfinite(A)):
            raise _fail(path, f"has NaN or inf in `{name}`; remove or impute those samples.")
        big = float(np.max(np.abs(A)))
        if big > MAX_ABS:
            raise _fail(path, f"has `{name}` entries up to {big:.3g}, whose squares overflow; rescale the data "
                              f"(e.g. divide by {big:.0e}) to magnitudes below {MAX_ABS:.0e}.")
        arrays[name] = A
    X, Y = arrays["X"], arrays["Y"]
    if X.shape[1] != Y.shape[1]:
        raise _fail(path, f"has {X.shape[1]} samples (columns) in X but {Y.shape[1]} in Y; if samples are rows, "
                          "store X.T and Y.T.")
    with np.errstate(over="ignore", invalid="ignore"):
        scale = float(np.sum(X * X)) + float(np.sum(Y * Y))
    if not np.isfinite(scale):
        raise _fail(path, "has magnitudes whose squared sum overflows; rescale X and Y.")
    if not full_rank:
        return X, Y
    sv = np.linalg.svd(X, compute_uv=False)
    if sv.size < X.shape[0] or sv[-1] <= RANK_RTOL * sv[0]:
        zero = int(X.shape[0] - np.sum(sv > RANK_RTOL * sv[0])) if sv[0] > 0 else X.shape[0]
        const = int(np.sum(np.ptp(X, axis=1) == 0))
        hint = f" ({const} constant)" if const else ""
        raise _fail(path, f"has {zero} of d_x = {X.shape[0]} near-zero singular values of X{hint}: constant or "
                          f"collinear features (or fewer samples than features); drop or combine those features "
                          f"(e.g. keep the top {X.shape[0] - zero} principal components).")
    return X, Y


def load_data(path, *, full_rank: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Read and check ``X`` (d_x, m) and ``Y`` (d_y, m) from a ``.npz`` or ``.nc`` file (see the module docstring).

    ``full_rank`` is passed to :func:`check_data`.

    Raises
    ------
    InputError
        Missing, unreadable or damaged file, wrong suffix, missing arrays, or any defect of :func:`check_data`.
    """
    f = Path(path)
    if not f.exists():
        from flowgeom.datasets import NAMES

        raise _fail(path, f"does not exist (give a .npz/.nc file or a shipped dataset: {', '.join(NAMES)}).")
    if f.is_dir():
        raise _fail(path, "is a directory; pass a .npz or .nc file.")
    if f.suffix not in (".npz", ".nc"):
        raise InputError(f"`--data` must be a .npz or .nc file; got {str(path)!r}.")
    try:
        with open(f, "rb"):
            pass
    except OSError as e:
        raise _fail(path, f"cannot be read ({e.strerror}); check its permissions.") from None
    arrays = _read_npz(f) if f.suffix == ".npz" else _read_nc(f)
    return check_data(arrays["X"], arrays["Y"], path, full_rank=full_rank)


def resolve_data(spec, *, full_rank: bool = True) -> tuple[np.ndarray, np.ndarray, str]:
    """``(X, Y, note)`` for the command line's ``--data``: a file path, or the name of a shipped dataset.

    An existing file always wins: a file named like a shipped dataset (:data:`flowgeom.datasets.NAMES`)
    is read as a file, and ``note`` says so (a name never shadows a user's file, and a user's file never
    shadows a name silently). Otherwise a name in :data:`~flowgeom.datasets.NAMES` loads
    :func:`flowgeom.datasets.load` (a directory of that name, e.g. an output directory, is mentioned in
    ``note``) and ``note`` names its source and licence; any other string is read as a file by
    :func:`load_data` (whose errors list the shipped names).
    """
    from flowgeom import datasets

    text = str(spec)
    path = Path(text)
    if path.is_file() or (path.exists() and text not in datasets.NAMES):
        if text not in datasets.NAMES:
            return (*load_data(text, full_rank=full_rank), "")
        shadow = (f"the file {text!r} in this directory, not the shipped dataset {text!r} (rename or move the file "
                  "to use the shipped one)")
        try:
            X, Y = load_data(text, full_rank=full_rank)
        except InputError as e:
            raise InputError(f"{str(e).rstrip('.')}; `--data {text}` read {shadow}.") from None
        return X, Y, f"note: `--data {text}` read {shadow}"
    if text in datasets.NAMES:
        X, Y = datasets.load(text)
        X, Y = check_data(X, Y, text, full_rank=full_rank)
        p = datasets.provenance(text)
        note = f"data: the shipped dataset {text} ({p['title']}; {p['license']}; X {X.shape}, Y {Y.shape})"
        if path.exists():
            note += f" (not the directory {text!r} here)"
        return X, Y, note
    return (*load_data(text, full_rank=full_rank), "")


def whiten(X) -> np.ndarray:
    r"""The whitened inputs :math:`(X X^\top)^{-1/2} X`, so that their Gram matrix is the identity.

    Computed from the thin SVD :math:`X = U S V^\top` as :math:`U V^\top` (exactly
    :math:`(X X^\top)^{-1/2} X = U S^{-1} U^\top U S V^\top`), which never forms :math:`X X^\top`.
    """
    U, _, Vt = np.linalg.svd(np.asarray(X, dtype=np.float64), full_matrices=False)
    return U @ Vt
