"""The Zarr store of a basin run: one group per finished chunk, a completion marker, resume.

Not public API. See :func:`flowgeom.basins.sample_basins`.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

import numpy as np

from flowgeom.basins.chunk import _SAMPLE_VARS, _STATE_VARS

STORE_KEY = "flowgeom_basins"
_CHUNK_RE = re.compile(r"^chunk_(\d+)_(\d+)$")

def _canonical_json(obj) -> str:
    return json.dumps(obj, sort_keys=True, default=str)


def _open_store(path, signature: dict):
    import zarr

    path = os.fspath(path)
    exists = os.path.exists(path)
    root = zarr.open_group(path, mode="a")
    stored = root.attrs.get(STORE_KEY)
    if stored is None:
        if exists and len(list(root.group_keys())) + len(list(root.array_keys())) > 0:
            raise ValueError(f"`store` {path!r} exists but is not a flowgeom basins store; choose another path.")
        root.attrs[STORE_KEY] = json.loads(_canonical_json(signature))
        return root
    mine = json.loads(_canonical_json(signature))
    if stored != mine:
        diff = sorted(k for k in set(stored) | set(mine) if stored.get(k) != mine.get(k))
        details = "; ".join(f"{k}: store has {stored.get(k)!r}, this call has {mine.get(k)!r}" for k in diff[:6])
        raise ValueError(
            f"`store` {path!r} was written by a different basin run ({details}). Resume with the same "
            "problem, seed, init, integrator and tolerances, or use another store."
        )
    return root


def _completed(root) -> list[tuple[int, int, Any]]:
    out = []
    for name, g in root.groups():
        m = _CHUNK_RE.match(name)
        if m and g.attrs.get("complete") is True:
            out.append((int(m.group(1)), int(m.group(2)), g))
    return sorted(out, key=lambda r: r[0])


def _drop_incomplete(root):
    for name, g in list(root.groups()):
        if _CHUNK_RE.match(name) and g.attrs.get("complete") is not True:
            del root[name]


def _write_chunk(root, res: dict):
    name = f"chunk_{res['start']:012d}_{res['stop']:012d}"
    g = root.create_group(name, overwrite=True)
    for k in _SAMPLE_VARS + _STATE_VARS:
        if k in res:
            g.create_array(k, data=np.ascontiguousarray(res[k]))
    # the completion marker is written last: a chunk without it is redone on resume
    g.attrs["complete"] = True


def _missing_ranges(n, done: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out, pos = [], 0
    for a, b in sorted(done):
        if a > pos:
            out.append((pos, min(a, n)))
        pos = max(pos, b)
        if pos >= n:
            break
    if pos < n:
        out.append((pos, n))
    return [(a, b) for a, b in out if b > a]
