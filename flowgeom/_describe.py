"""The text of :func:`flowgeom.io.describe` (internal): what a Dataset holds and how it was made."""

from __future__ import annotations

from collections.abc import Callable

import xarray as xr

from flowgeom.schema import GLOBAL_ATTR_DESCRIPTIONS, infer_kind

_CF_GLOBAL = ("title", "flowgeom_kind", "source", "Conventions", "history", "references")


def _short(v, width: int = 90) -> str:
    text = " ".join(str(v).split())
    return text if len(text) <= width else text[: width - 3] + "..."


def describe_dataset(ds: xr.Dataset, name: str, attrs: dict, decode: Callable[[dict], dict], dtype_key: str) -> str:
    """Print-ready description of ``ds`` (opened lazily from the file ``name``; ``attrs`` are its
    decoded global attributes, ``decode`` decodes variable attributes, ``dtype_key`` is the
    attribute recording a string variable's dtype)."""
    kind = attrs.get("flowgeom_kind") or infer_kind(ds)
    lines = [f"{name}: {attrs.get('title', 'untitled Dataset')}", f"  kind: {kind or 'unknown (no flowgeom schema)'}"]
    lines += [f"  {k}: {_short(attrs[k], 200)}" for k in _CF_GLOBAL[2:] if k in attrs]
    lines.append("dimensions: " + (", ".join(f"{d} = {n}" for d, n in ds.sizes.items()) or "none"))
    for title, names in (("coordinates", list(ds.coords)), ("data variables", list(ds.data_vars))):
        lines.append(f"{title} ({len(names)}):")
        for var in names:
            va = decode(ds[var].attrs)
            dtype = "str" if va.pop(dtype_key, None) is not None else str(ds[var].dtype)
            dims = "(" + ", ".join(map(str, ds[var].dims)) + ")"
            units = f" [{va['units']}]" if "units" in va else ""
            lines.append(f"  {var} {dims} {dtype}: {va.get('long_name', '(no long_name)')}{units}")
            if "description" in va:
                lines.append(f"      {_short(va['description'], 200)}")
    prov = [k for k in attrs if k not in _CF_GLOBAL]
    lines.append(f"provenance ({len(prov)} attributes):")
    for k in prov:
        meaning = GLOBAL_ATTR_DESCRIPTIONS.get(k)
        lines.append(f"  {k} = {_short(repr(attrs[k]))}" + (f"  ({meaning})" if meaning else ""))
    return "\n".join(lines)
