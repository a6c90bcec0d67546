r"""The Zarr store of a basin run: one verified group per finished chunk, a lock, resume.

Layout (a directory)::

    run.zarr/zarr.json                   root group; attrs["flowgeom_basins"] = the run's signature
    run.zarr/owner/zarr.json             attrs["pid"]: the pid of the run holding the store
    run.zarr/chunk_<start>_<stop>/...    samples [start, stop): one array per per-sample variable

The run holds an exclusive ``flock(2)`` on the store directory itself for its whole duration
(released by the kernel if the process dies), so a second run on the same store is refused at
once, naming the owner's pid. A lock on the directory, not on a file in it, keeps the store a
pure Zarr hierarchy.

A chunk is *complete* only when its attributes hold, written in one metadata write after every
array, the checksums

.. math:: h_k = \operatorname{sha256}(\texttt{dtype} \,\|\, \texttt{shape} \,\|\, \texttt{bytes}(a_k))

of its arrays :math:`a_k`, its range, and (last) the marker ``complete = True``. A chunk is
trusted only if it verifies: every array is present, has ``stop - start`` rows and hashes to
:math:`h_k`. Anything else (a deleted, truncated, swapped or undecodable file, a missing
marker) is deleted and recomputed, which is exact because sample :math:`i` depends only on
(seed, i). Zarr itself would return the fill value for a deleted chunk file: the checksum is
what makes such a store unable to lie.

Not public API. See :func:`flowgeom.basins.sample_basins`.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import weakref
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from flowgeom._validate import InputError
from flowgeom.basins.chunk import _SAMPLE_VARS, _STATE_VARS

STORE_KEY = "flowgeom_basins"
_OWNER = "owner"
_CHUNK_RE = re.compile(r"^chunk_(\d+)_(\d+)$")
_HASH_KEY = "sha256"


class StoreError(InputError):
    """A basin store that cannot be used: foreign, from other parameters, damaged or in use."""


@dataclass(eq=False)
class _Store:
    """An open, locked basin store: its path, its root group and the lock's file descriptor."""

    path: str
    root: Any
    fd: int
    dropped: list[str] = field(default_factory=list)
    _finalizer: Any = None


def _canonical_json(obj) -> str:
    return json.dumps(obj, sort_keys=True, default=str)


def _checksum(a: np.ndarray) -> str:
    a = np.ascontiguousarray(a)
    h = hashlib.sha256(f"{a.dtype.str}|{a.shape}|".encode())
    h.update(a.tobytes())
    return h.hexdigest()


# ---------------------------------------------------------------------------- opening and locking
def _release(fd: int) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _owner(path: str) -> str:
    try:
        with open(os.path.join(path, _OWNER, "zarr.json")) as fh:
            return str(int(json.load(fh)["attributes"]["pid"]))
    except (OSError, ValueError, KeyError, TypeError):
        return "unknown"


def _lock(path: str) -> int:
    """flock the store directory (non-blocking) and record our pid; StoreError if another run holds it."""
    import zarr

    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as e:
        raise StoreError(f"`store` {path!r} cannot be opened ({e.strerror}); check the permissions "
                         "or choose another store.") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        os.close(fd)
        owner = _owner(path)
        if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise StoreError(
                f"`store` {path!r} is in use by pid {owner} (another basin run on the same store); wait for it "
                "to finish or use another store."
            ) from None
        raise StoreError(f"`store` {path!r}: cannot lock it ({e.strerror}); use a store on a local disk.") from None
    try:
        zarr.open_group(os.path.join(path, _OWNER), mode="w").attrs["pid"] = os.getpid()
    except Exception as e:
        _release(fd)
        raise StoreError(f"`store` {path!r} is not writable ({type(e).__name__}: {e}); choose another store.") from None
    return fd


def _read_signature(path: str):
    """The signature recorded at ``path``; None for an empty directory; StoreError if not a store."""
    if not os.path.isdir(path):
        raise StoreError(f"`store` {path!r} exists and is not a directory; a store is a directory: choose a new path.")
    entries = [e for e in os.listdir(path) if e != _OWNER]
    if not entries:
        return None
    if "zarr.json" not in entries:
        raise StoreError(
            f"`store` {path!r} is a non-empty directory that is not a flowgeom basins store (no zarr.json); "
            "choose a new path."
        )
    import zarr

    try:
        stored = zarr.open_group(path, mode="r").attrs.get(STORE_KEY)
    except Exception as e:  # corrupt metadata: JSONDecodeError, KeyError, codec errors, ...
        raise StoreError(
            f"`store` {path!r} is damaged and cannot be read ({type(e).__name__}: {e}); delete it to start over "
            "or choose another store."
        ) from None
    if not isinstance(stored, dict):
        raise StoreError(f"`store` {path!r} is a Zarr group but not a flowgeom basins store; choose a new path.")
    return stored


def _stored_seed(path) -> int | None:
    """The seed recorded in an existing store, or None (no store, not a store, unreadable)."""
    if path is None:
        return None
    try:
        stored = _read_signature(os.fspath(path)) if os.path.exists(os.fspath(path)) else None
        return None if stored is None else int(stored["seed"])
    except (StoreError, KeyError, TypeError, ValueError):
        return None


def _open_store(path, signature: dict) -> _Store:
    """Lock the store at ``path`` (creating it), check it belongs to this run, drop unverified chunks.

    Raises StoreError for a file, a foreign directory, a damaged store, a store written by a run
    with other parameters, and a store that another process holds.
    """
    import zarr

    path = os.fspath(path)
    mine = json.loads(_canonical_json(signature))
    if os.path.exists(path):
        _check_signature(path, _read_signature(path), mine)  # refuse foreign stores before touching them
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise StoreError(f"`store` {path!r} cannot be created ({e.strerror}); choose a writable path.") from None
    fd = _lock(path)
    try:
        stored = _read_signature(path)  # again, now that we hold the lock
        if stored is None:
            root = zarr.open_group(path, mode="a")  # not "w": it would delete the owner group
            root.attrs[STORE_KEY] = mine
        else:
            _check_signature(path, stored, mine)
            root = zarr.open_group(path, mode="r+")
        st = _Store(path, root, fd)
        st._finalizer = weakref.finalize(st, _release, fd)  # a safety net; _close_store is the rule
        _drop_unverified(st)
        return st
    except BaseException:
        _release(fd)
        raise


def _check_signature(path: str, stored, mine: dict) -> None:
    if stored is None or stored == mine:
        return
    diff = sorted(k for k in set(stored) | set(mine) if stored.get(k) != mine.get(k))
    details = "; ".join(f"{k}: store has {stored.get(k)!r}, this call has {mine.get(k)!r}" for k in diff[:6])
    raise StoreError(
        f"`store` {path!r} was written by a different basin run ({details}). Resume with the same "
        "problem, seed, init, integrator and tolerances, or use another store."
    )


def _close_store(st: _Store | None) -> None:
    """Release the store's lock (idempotent)."""
    if st is not None and st._finalizer is not None:
        st._finalizer()


# ---------------------------------------------------------------------------- chunks
def _chunk_names(st: _Store) -> list[tuple[int, int, str]]:
    out = []
    for name in os.listdir(st.path):
        m = _CHUNK_RE.match(name)
        if m:
            out.append((int(m.group(1)), int(m.group(2)), name))
    return sorted(out)


def _load_chunk(st: _Store, a: int, b: int, name: str) -> dict | None:
    """The verified arrays of chunk ``name`` (samples [a, b)), or None if it does not verify."""
    import zarr

    try:
        g = zarr.open_group(os.path.join(st.path, name), mode="r")
        attrs = dict(g.attrs)
        sums = attrs.get(_HASH_KEY)
        if (attrs.get("complete") is not True or not isinstance(sums, dict) or b <= a
                or attrs.get("start") != a or attrs.get("stop") != b or not set(_SAMPLE_VARS) <= set(sums)):
            return None
        data = {}
        for k, h in sums.items():
            if k not in _SAMPLE_VARS + _STATE_VARS:
                return None
            v = np.asarray(g[k][:])
            if v.ndim < 1 or v.shape[0] != b - a or _checksum(v) != h:
                return None
            data[k] = v
        return data
    except Exception:  # a damaged chunk is data to recompute, whatever zarr or the codec raised
        return None


def _drop(st: _Store, name: str) -> None:
    shutil.rmtree(os.path.join(st.path, name), ignore_errors=True)
    st.dropped.append(name)


def _drop_unverified(st: _Store) -> None:
    """Delete every chunk that is incomplete or fails verification (it will be recomputed)."""
    for a, b, name in _chunk_names(st):
        if _load_chunk(st, a, b, name) is None:
            _drop(st, name)


def _completed(st: _Store) -> list[tuple[int, int]]:
    """Sample ranges [a, b) of the complete chunks (verified when the store was opened)."""
    return [(a, b) for a, b, _ in _chunk_names(st)]


def _write_chunk(st: _Store, res: dict) -> None:
    a, b = int(res["start"]), int(res["stop"])
    name = f"chunk_{a:012d}_{b:012d}"
    g = st.root.create_group(name, overwrite=True)
    sums = {}
    for k in _SAMPLE_VARS + _STATE_VARS:
        if k in res:
            v = np.ascontiguousarray(res[k])
            g.create_array(k, data=v)
            sums[k] = _checksum(v)
    # one metadata write; a chunk without the marker (killed before it) is redone on resume
    g.attrs.update({"start": a, "stop": b, _HASH_KEY: sums, "complete": True})


def _read_chunks(st: _Store, names) -> list[tuple[int, int, dict]]:
    """Every chunk, verified as it is read; a chunk damaged during the run is deleted and StoreError raised."""
    pieces = []
    for a, b, name in _chunk_names(st):
        data = _load_chunk(st, a, b, name)
        if data is None or not set(names) <= set(data):
            _drop(st, name)
            raise StoreError(
                f"`store` {st.path!r}: chunk {name} (samples {a}..{b - 1}) was damaged during the run and has been "
                "deleted; rerun the same command to recompute it."
            )
        pieces.append((a, b, data))
    return pieces


# ---------------------------------------------------------------------------- ranges and assembly
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


def _assemble(pieces, n: int, names, store=None) -> dict[str, np.ndarray]:
    """Samples 0..n-1 in order from pieces [(a, b, arrays)] (overlaps allowed); fails on any gap.

    Raises StoreError (a store) or RuntimeError (in memory: an internal error) unless the
    result holds exactly n rows of every variable, each taken from a piece covering it.
    """
    cols: dict[str, list] = {k: [] for k in names}
    pos = 0
    for a, b, data in sorted(pieces, key=lambda p: (p[0], p[1])):
        if b <= pos or pos >= n:
            continue
        if a > pos:
            break
        hi = min(b, n)
        for k in names:
            v = np.asarray(data[k])
            if v.shape[0] != b - a:
                break
            cols[k].append(v[pos - a : hi - a])
        else:
            pos = hi
            continue
        break
    out = {k: np.concatenate(v) if v else np.empty(0) for k, v in cols.items()}
    if pos != n or any(v.shape[0] != n for v in out.values()):
        msg = f"assembled samples 0..{pos - 1} of 0..{n - 1}"
        if store is None:
            raise RuntimeError(f"internal error: {msg}.")
        raise StoreError(f"`store` {os.fspath(store)!r}: {msg}; rerun the same command to compute the rest.")
    return out
