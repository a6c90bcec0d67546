r"""Saving and loading flowgeom Datasets (NetCDF4 via h5netcdf, or Zarr), losslessly.

Every flowgeom result Dataset (``strata``, ``basins``, ``transitions``, ...) carries
provenance attributes (flowgeom.schema): ``flowgeom_version``, ``widths`` (a list), ``whitened``
(a bool), ``seed`` (an int or ``None``), tolerances, ... NetCDF attributes can only hold
strings, numbers and 1-D numeric arrays, so a bool, ``None``, a nested list or a dict would
either be refused by the writer or come back as a different type. :func:`save_dataset`
therefore encodes each attribute to a NetCDF-storable value and records, in one marker
attribute ``_flowgeom_attr_types`` (a JSON string), how to turn it back; :func:`load_dataset`
applies the inverse, so that

.. math:: \mathrm{load\_dataset}(\mathrm{save\_dataset}(ds)) \equiv ds

holds attribute by attribute, with the Python types of the original (``ds.identical`` is
True and ``type(attrs[k])`` is unchanged), for Dataset, coordinate and variable attributes.
Values that NetCDF stores natively (str, int, float, flat lists of int or float, 1-D numeric
arrays) stay readable by any NetCDF tool (``ncdump`` shows ``widths = 5, 4, 3``); the others
are JSON strings. Tuples come back as lists (JSON has no tuple).

String variables (coordinates such as ``label``) come back with the dtype they were saved
with (object or fixed-width unicode), recorded in the variable attribute
``_flowgeom_dtype``.

Files describe themselves: :func:`save_dataset` completes, on the Dataset it is given, the
``long_name``/``description``/``units`` of every variable the schema knows
(:func:`flowgeom.schema.describe_variables`) and the CF global attributes
(:func:`flowgeom.schema.global_attrs`), never overwriting an attribute already set, so that the
Dataset in memory and the file agree; :func:`describe` prints what a file holds.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from flowgeom._describe import describe_dataset
from flowgeom.schema import describe_variables, global_attrs, infer_kind

__all__ = [
    "ATTR_TYPES_KEY",
    "decode_attrs",
    "describe",
    "encode_attrs",
    "from_dataset",
    "load_dataset",
    "save_dataset",
    "to_dataset",
]

ATTR_TYPES_KEY = "_flowgeom_attr_types"
"""Name of the marker attribute recording how each attribute was encoded."""

_DTYPE_KEY = "_flowgeom_dtype"
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_FORMATS = {".nc": "netcdf", ".nc4": "netcdf", ".h5": "netcdf", ".zarr": "zarr"}


# ---------------------------------------------------------------------------- attrs
def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _is_float(v) -> bool:
    return isinstance(v, (float, np.floating))


def _safe_str(v: str) -> bool:
    # HDF5 strings are NUL-terminated and must be valid UTF-8 (no lone surrogates).
    if "\x00" in v:
        return False
    try:
        v.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _to_json(v) -> Any:
    """Convert numpy scalars/arrays (possibly nested) into JSON-able Python objects."""
    if isinstance(v, np.ndarray):
        return [_to_json(x) for x in v.tolist()] if v.ndim else _to_json(v.item())
    if isinstance(v, (np.bool_,)):
        return bool(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    if isinstance(v, (list, tuple)):
        return [_to_json(x) for x in v]
    if isinstance(v, dict):
        if not all(isinstance(k, str) for k in v):
            raise TypeError(f"dict attribute keys must be strings to be saved; got keys {list(v)!r}.")
        return {k: _to_json(x) for k, x in v.items()}
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    raise TypeError(
        f"attribute value {v!r} of type {type(v).__name__} cannot be saved; use str, int, float, "
        "bool, None, or (nested) lists/dicts/arrays of those."
    )


def _encode_value(v) -> tuple[Any, str]:
    """Return (storable value, type tag)."""
    if isinstance(v, (bool, np.bool_)):
        return np.int8(1 if v else 0), "bool"
    if v is None:
        return "", "none"
    if isinstance(v, str):
        return (v, "str") if _safe_str(v) else (json.dumps(v), "json")
    if _is_int(v):
        if _INT64_MIN <= int(v) <= _INT64_MAX:
            return np.int64(v), "int"
        return json.dumps(int(v)), "json"
    if _is_float(v):
        return np.float64(v), "float"
    if isinstance(v, np.ndarray):
        if v.ndim == 1 and v.size > 0 and v.dtype.kind in "iuf":
            return v, f"ndarray:{v.dtype.str}"
        return json.dumps({"dtype": v.dtype.str, "shape": list(v.shape), "data": _to_json(v.ravel())}), "ndarray_json"
    if isinstance(v, (list, tuple)) and len(v) > 0:
        if all(_is_int(x) for x in v) and all(_INT64_MIN <= int(x) <= _INT64_MAX for x in v):
            return np.array([int(x) for x in v], dtype=np.int64), "list_int"
        if all(_is_float(x) for x in v):
            return np.array([float(x) for x in v], dtype=np.float64), "list_float"
    return json.dumps(_to_json(v)), "json"


def _decode_value(v, tag: str):
    if tag == "bool":
        return bool(int(np.asarray(v).reshape(-1)[0]))
    if tag == "none":
        return None
    if tag == "str":
        return str(v)
    if tag == "int":
        return int(np.asarray(v).reshape(-1)[0])
    if tag == "float":
        return float(np.asarray(v).reshape(-1)[0])
    if tag == "json":
        return json.loads(str(v))
    if tag == "list_int":
        return [int(x) for x in np.atleast_1d(np.asarray(v))]
    if tag == "list_float":
        return [float(x) for x in np.atleast_1d(np.asarray(v))]
    if tag.startswith("ndarray:"):
        return np.atleast_1d(np.asarray(v)).astype(np.dtype(tag.split(":", 1)[1]))
    if tag == "ndarray_json":
        d = json.loads(str(v))
        return np.array(d["data"], dtype=np.dtype(d["dtype"])).reshape(d["shape"])
    raise ValueError(f"unknown attribute type tag {tag!r} in `{ATTR_TYPES_KEY}`; the file is corrupt or newer.")


def encode_attrs(attrs: dict) -> dict:
    """Encode an attribute dict so that NetCDF (and Zarr) can store every value.

    Parameters
    ----------
    attrs : dict
        str keys; values str, int, float, bool, None, numpy scalars or arrays, and
        (nested) lists, tuples or dicts of those.

    Returns
    -------
    dict
        Storable values plus the marker ``_flowgeom_attr_types`` (JSON: name -> tag).
        Inverse: :func:`decode_attrs`.

    Raises
    ------
    TypeError
        A key is not a str, or a value has an unsupported type.
    ValueError
        A key collides with the marker name.
    """
    out: dict = {}
    tags: dict[str, str] = {}
    for k, v in attrs.items():
        if not isinstance(k, str):
            raise TypeError(f"attribute names must be str; got {k!r}.")
        if k == ATTR_TYPES_KEY:
            raise ValueError(f"`attrs` must not contain the reserved key {ATTR_TYPES_KEY!r}.")
        out[k], tags[k] = _encode_value(v)
    if tags:
        out[ATTR_TYPES_KEY] = json.dumps(tags)
    return out


def decode_attrs(attrs: dict) -> dict:
    """Inverse of :func:`encode_attrs`; attributes without a recorded tag are passed through
    (numpy scalars become Python scalars, 1-D arrays stay arrays)."""
    attrs = dict(attrs)
    raw = attrs.pop(ATTR_TYPES_KEY, None)
    tags = json.loads(str(raw)) if raw is not None else {}
    out = {}
    for k, v in attrs.items():
        if k in tags:
            out[k] = _decode_value(v, tags[k])
        elif isinstance(v, np.generic):
            out[k] = v.item()
        else:
            out[k] = v
    return out


# ---------------------------------------------------------------------------- datasets
def _format_of(path: Path, format: str | None) -> str:
    if format is not None:
        if format not in ("netcdf", "zarr"):
            raise ValueError(f"`format` must be 'netcdf', 'zarr' or None (from the suffix); got {format!r}.")
        return format
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(
            f"`path` must end in .nc (NetCDF4) or .zarr (Zarr store), or pass format=...; got {str(path)!r}."
        )
    return fmt


# a global attribute named like a CF-reserved one is stored under another name (xarray would
# otherwise consume "coordinates" when reading the file back)
_RESERVED_GLOBAL = {"coordinates": "_flowgeom_global_coordinates"}


def _encode_dataset(ds: xr.Dataset) -> xr.Dataset:
    out = ds.copy(deep=False)
    out.attrs = encode_attrs({_RESERVED_GLOBAL.get(k, k): v for k, v in ds.attrs.items()})
    for name in list(out.variables):
        var = out.variables[name]
        attrs = dict(var.attrs)
        if _DTYPE_KEY in attrs:
            raise ValueError(f"variable {name!r} must not carry the reserved attribute {_DTYPE_KEY!r}.")
        if var.dtype.kind in "OUS" or var.dtype.kind == "T":
            attrs[_DTYPE_KEY] = var.dtype.str if var.dtype.kind in "US" else "object"
        var.attrs = encode_attrs(attrs)
    return out


def _decode_global(attrs: dict) -> dict:
    back = {v: k for k, v in _RESERVED_GLOBAL.items()}
    return {back.get(k, k): v for k, v in decode_attrs(attrs).items()}


def _decode_dataset(ds: xr.Dataset) -> xr.Dataset:
    ds.attrs = _decode_global(ds.attrs)
    for name in list(ds.variables):
        var = ds.variables[name]
        attrs = decode_attrs(var.attrs)
        dtype = attrs.pop(_DTYPE_KEY, None)
        var.attrs = attrs
        if dtype is not None:
            values = np.asarray(var.values)
            if dtype == "object":
                # fill a flat object array, then reshape: assigning a list to an n-d object
                # array would broadcast it against the first axis only
                flat = np.empty(values.size, dtype=object)
                flat[:] = [str(x) for x in values.ravel()]
                conv = flat.reshape(values.shape)
            else:
                conv = values.astype(np.dtype(dtype))
            if name in ds.indexes:
                ds = ds.assign_coords({name: (var.dims, conv, attrs)})
            else:
                var.values = conv
    return ds


def save_dataset(ds: xr.Dataset, path: str | os.PathLike, *, format: str | None = None,
                 command: str | None = None) -> Path:
    r"""Write a Dataset to NetCDF4 (``.nc``, engine h5netcdf) or a Zarr store (``.zarr``).

    Attributes of any supported type are encoded so that :func:`load_dataset` gives back
    an identical Dataset (see the module docstring). An existing file or store at ``path``
    is replaced. Before writing, ``ds`` is completed **in place** with the descriptive
    attributes of :mod:`flowgeom.schema` (``long_name``, ``description``, ``units`` per
    variable; ``Conventions``, ``title``, ``history``, ``source``, ``references``,
    ``flowgeom_kind`` globally), each only where not already set, so that
    ``load_dataset(save_dataset(ds, p)).identical(ds)`` holds.

    Parameters
    ----------
    ds : xarray.Dataset
    path : str or PathLike
        Destination; the suffix chooses the format unless ``format`` is given.
    format : {"netcdf", "zarr"} or None, default None
        Override the suffix-based choice.
    command : str or None, default None
        What made the Dataset, for the CF ``history`` attribute (e.g. the command line); None
        gives ``"flowgeom.io.save_dataset"``. Ignored when ``ds`` already has a ``history``.

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    TypeError
        ``ds`` is not a Dataset, or an attribute value has an unsupported type.
    ValueError
        Unknown suffix or ``format``.
    """
    if not isinstance(ds, xr.Dataset):
        raise TypeError(f"`ds` must be an xarray.Dataset; got {type(ds).__name__}.")
    path = Path(path)
    fmt = _format_of(path, format)
    _self_describe(ds, command)
    enc = _encode_dataset(ds)
    # drop encodings inherited from a previously loaded file (chunking, fill values of another
    # format) so that the writer chooses fresh ones.
    for v in enc.variables.values():
        v.encoding = {}
    if fmt == "zarr":
        # fixed-width unicode has no Zarr v3 specification (zarr warns); store it as variable-length
        # strings, load_dataset restores the dtype recorded in _flowgeom_dtype
        fixed = {n: v.astype(object) for n, v in enc.variables.items() if v.dtype.kind == "U"}
        enc = enc.assign_coords({n: v for n, v in fixed.items() if n in enc.coords})
        enc = enc.assign({n: v for n, v in fixed.items() if n not in enc.coords})
    if fmt == "netcdf":
        path.parent.mkdir(parents=True, exist_ok=True)
        enc.to_netcdf(path, engine="h5netcdf", mode="w")
    else:
        enc.to_zarr(path, mode="w", consolidated=False)
    return path


def load_dataset(path: str | os.PathLike, *, format: str | None = None) -> xr.Dataset:
    """Read a Dataset written by :func:`save_dataset` fully into memory (the file is closed).

    Parameters
    ----------
    path : str or PathLike
        A ``.nc`` file or ``.zarr`` store.
    format : {"netcdf", "zarr"} or None, default None
        Override the suffix-based choice.

    Returns
    -------
    xarray.Dataset
        With the original attribute types restored. Files written by other tools load
        too (their attributes are passed through, numpy scalars as Python scalars).

    Raises
    ------
    FileNotFoundError
        Nothing at ``path``.
    ValueError
        Unknown suffix or ``format``.
    """
    path = Path(path)
    fmt = _format_of(path, format)
    if not path.exists():
        raise FileNotFoundError(f"`path` {str(path)!r} does not exist.")
    if fmt == "netcdf":
        ds = xr.load_dataset(path, engine="h5netcdf")
    else:
        with xr.open_zarr(path, consolidated=False) as z:
            ds = z.load()
        for v in ds.variables.values():
            v.encoding = {}
    return _decode_dataset(ds)


# ---------------------------------------------------------------------------- self-description
def _self_describe(ds: xr.Dataset, command: str | None) -> None:
    """Complete ``ds`` in place with the schema's variable attrs and the CF global attrs."""
    kind = infer_kind(ds)
    describe_variables(ds, kind)
    for k, v in global_attrs(kind, command=command).items():
        ds.attrs.setdefault(k, v)


def describe(path: str | os.PathLike, *, format: str | None = None) -> str:
    r"""What a saved Dataset holds and how it was made, as print-ready text.

    Lists the kind (:func:`flowgeom.schema.infer_kind`), the CF global attributes (title, source,
    history, references), the dimensions, every coordinate and data variable with its dimensions,
    dtype, ``long_name``, ``units`` and ``description``, and the provenance attributes. The file is
    opened lazily (no data are read besides the attributes).

    Parameters
    ----------
    path : str or PathLike
        A ``.nc`` file or ``.zarr`` store (written by flowgeom or not).
    format : {"netcdf", "zarr"} or None, default None
        Override the suffix-based choice.

    Returns
    -------
    str
        Several lines, no trailing newline.

    Raises
    ------
    FileNotFoundError
        Nothing at ``path``.
    ValueError
        Unknown suffix or ``format``.
    """
    path = Path(path)
    fmt = _format_of(path, format)
    if not path.exists():
        raise FileNotFoundError(f"`path` {str(path)!r} does not exist.")
    opened = xr.open_dataset(path, engine="h5netcdf") if fmt == "netcdf" else xr.open_zarr(path, consolidated=False)
    with opened as ds:
        return describe_dataset(ds, path.name, _decode_global(ds.attrs), decode_attrs, _DTYPE_KEY)


# ---------------------------------------------------------------------------- results <-> datasets
# dims of each array field of flowgeom.integrate.Trajectory (N trajectories, n_save times, n params)
_TRAJECTORY_DIMS = {
    "ts": ("time",),
    "ys": ("trajectory", "time", "param"),
    "loss": ("trajectory", "time"),
    "grad_norm": ("trajectory", "time"),
    "y_final": ("trajectory", "param"),
    "t_final": ("trajectory",),
    "loss_final": ("trajectory",),
    "grad_norm_final": ("trajectory",),
    "status": ("trajectory",),
    "n_steps": ("trajectory",),
    "n_rhs": ("trajectory",),
    "invariant_drift": ("trajectory",),
}
_TYPE_KEY = "flowgeom_type"


def to_dataset(obj, attrs: dict | None = None) -> xr.Dataset:
    r"""Convert a flowgeom result to an xarray Dataset (inverse: :func:`from_dataset`).

    Supported: :class:`flowgeom.integrate.Trajectory` (dims ``trajectory``, ``time``,
    ``param``; coordinate ``time`` = ``ts``; ``ys`` omitted when it is None; ``method``,
    ``rtol``, ``atol``, ``backend``, ``lr`` as attrs), and an xarray Dataset (returned as is).

    Parameters
    ----------
    obj : Trajectory or xarray.Dataset
    attrs : dict, optional
        Extra provenance attributes (e.g. ``problem.attrs()``, ``seed``).

    Returns
    -------
    xarray.Dataset
        With attr ``flowgeom_type`` naming the result type.

    Raises
    ------
    TypeError
        For an unsupported object.
    """
    from flowgeom.flow import Trajectory

    if isinstance(obj, xr.Dataset):
        return obj
    if not isinstance(obj, Trajectory):
        raise TypeError(f"`obj` must be a flowgeom.integrate.Trajectory or an xarray.Dataset; got {type(obj).__name__}.")
    data = {}
    for name, dims in _TRAJECTORY_DIMS.items():
        if name == "ts":
            continue
        value = getattr(obj, name)
        if value is not None:
            data[name] = (dims, np.asarray(value))
    out_attrs = {_TYPE_KEY: "Trajectory", "method": obj.method, "rtol": float(obj.rtol),
                 "atol": float(obj.atol), "backend": obj.backend, "lr": None if obj.lr is None else float(obj.lr)}
    out_attrs.update(attrs or {})
    return xr.Dataset(data, coords={"time": ("time", np.asarray(obj.ts))}, attrs=out_attrs)


def from_dataset(ds: xr.Dataset):
    """Rebuild the result object a Dataset was made from by :func:`to_dataset`.

    Parameters
    ----------
    ds : xarray.Dataset
        With attr ``flowgeom_type`` (``"Trajectory"``).

    Returns
    -------
    Trajectory

    Raises
    ------
    ValueError
        If ``ds`` carries no (or an unknown) ``flowgeom_type``.
    """
    from flowgeom.flow import Trajectory

    kind = ds.attrs.get(_TYPE_KEY)
    if kind != "Trajectory":
        raise ValueError(
            f"`ds` must carry attr {_TYPE_KEY!r} = 'Trajectory' (made by flowgeom.io.to_dataset); got {kind!r}."
        )
    fields = {name: (np.asarray(ds[name].values) if name in ds else None) for name in _TRAJECTORY_DIMS if name != "ts"}
    fields["ts"] = np.asarray(ds["time"].values)
    lr = ds.attrs.get("lr")
    return Trajectory(method=str(ds.attrs["method"]), rtol=float(ds.attrs["rtol"]), atol=float(ds.attrs["atol"]),
                      backend=str(ds.attrs.get("backend", "numpy")), lr=None if lr is None else float(lr), **fields)
