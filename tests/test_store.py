"""The basin store cannot lie: damaged chunks are recomputed, foreign stores refused, writers locked out.

The reference of every damaged-store test is an independent run without a store: samples are
deterministic by (seed, index), so a resumed run must be *identical* to it.
"""

import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from flowgeom import Problem
from flowgeom._validate import InputError
from flowgeom.basins import sample_basins
from flowgeom.basins.store import StoreError, _assemble, _checksum, _missing_ranges

QUICK = dict(init_scale=0.5, t1=30.0, progress=False, backend="numpy", scheduler="synchronous")
N, CHUNK, SEED = 24, 8, 31


@pytest.fixture(scope="module")
def p322():
    return Problem.from_spectrum([2.0, 1.0], (3, 2, 2))


@pytest.fixture(scope="module")
def ref(p322):
    return sample_basins(p322, N, seed=SEED, **QUICK)


def _run(pb, store, **kw):
    done = []
    ds = sample_basins(pb, N, seed=SEED, chunk_size=CHUNK, store=store, on_chunk=lambda a, b: done.append((a, b)),
                       **QUICK, **kw)
    return ds, done


def _chunk(store, a, b):
    return os.path.join(store, f"chunk_{a:012d}_{b:012d}")


def _data_files(array_dir):
    return sorted(os.path.join(d, f) for d, _, fs in os.walk(array_dir) for f in fs if f != "zarr.json")


@pytest.fixture(scope="module")
def template(tmp_path_factory, p322, ref):
    store = str(tmp_path_factory.mktemp("template") / "run.zarr")
    ds, done = _run(p322, store)
    assert done == [(0, 8), (8, 16), (16, 24)] and ds.identical(ref)
    return store


@pytest.fixture
def full_store(tmp_path, template):
    """A fresh copy of a complete store of samples 0..23 in three chunks."""
    store = str(tmp_path / "run.zarr")
    shutil.copytree(template, store)
    return store


def test_checksum_sees_dtype_shape_and_bytes():
    a = np.arange(6, dtype=np.int64)
    assert _checksum(a) == _checksum(a.copy())
    assert _checksum(a) != _checksum(a.reshape(2, 3))
    assert _checksum(a) != _checksum(a.astype(np.int32))
    b = a.copy()
    b[3] = 0
    assert _checksum(a) != _checksum(b)


def test_untouched_store_resumes_with_no_work(full_store, p322, ref):
    ds, done = _run(p322, full_store)
    assert done == [] and ds.identical(ref)


@pytest.mark.parametrize("var", ["limit", "final_loss", "t_final"])
def test_deleted_array_file_is_recomputed_not_read_as_fill_value(full_store, p322, ref, var):
    # zarr would return the fill value 0 (stratum index 0) for the missing file
    files = _data_files(os.path.join(_chunk(full_store, 8, 16), var))
    assert files
    for f in files:
        os.remove(f)
    ds, done = _run(p322, full_store)
    assert done == [(8, 16)] and ds.identical(ref)


def test_truncated_chunk_file_is_recomputed(full_store, p322, ref):
    (f,) = _data_files(os.path.join(_chunk(full_store, 16, 24), "final_loss"))
    with open(f, "r+b") as fh:
        fh.truncate(os.path.getsize(f) // 2)
    ds, done = _run(p322, full_store)
    assert done == [(16, 24)] and ds.identical(ref)


def test_swapped_chunk_files_are_recomputed(full_store, p322, ref):
    (f0,) = _data_files(os.path.join(_chunk(full_store, 0, 8), "final_loss"))
    (f1,) = _data_files(os.path.join(_chunk(full_store, 8, 16), "final_loss"))
    tmp = f0 + ".tmp"
    os.replace(f0, tmp)
    os.replace(f1, f0)
    os.replace(tmp, f1)
    ds, done = _run(p322, full_store)
    assert sorted(done) == [(0, 8), (8, 16)] and ds.identical(ref)


def test_renamed_chunk_group_is_recomputed(full_store, p322, ref):
    # a chunk directory moved to another range's name: its recorded range gives it away
    shutil.rmtree(_chunk(full_store, 16, 24))
    os.rename(_chunk(full_store, 8, 16), _chunk(full_store, 16, 24))
    ds, done = _run(p322, full_store)
    assert sorted(done) == [(8, 16), (16, 24)] and ds.identical(ref)


def test_corrupt_chunk_metadata_and_missing_marker_are_recomputed(full_store, p322, ref):
    with open(os.path.join(_chunk(full_store, 0, 8), "zarr.json"), "w") as fh:
        fh.write("{not json")
    meta = os.path.join(_chunk(full_store, 16, 24), "zarr.json")
    with open(meta) as fh:
        m = json.load(fh)
    del m["attributes"]["complete"]
    with open(meta, "w") as fh:
        json.dump(m, fh)
    ds, done = _run(p322, full_store)
    assert sorted(done) == [(0, 8), (16, 24)] and ds.identical(ref)


def test_chunk_damaged_during_the_run_fails_loudly_then_resumes(tmp_path, p322, ref):
    store = str(tmp_path / "run.zarr")

    def vandal(a, b):
        if (a, b) == (16, 24):  # the last chunk: damage an earlier one before assembly
            for f in _data_files(os.path.join(_chunk(store, 0, 8), "limit")):
                os.remove(f)

    with pytest.raises(StoreError, match=r"chunk_000000000000_000000000008 \(samples 0\.\.7\) was damaged"):
        sample_basins(p322, N, seed=SEED, chunk_size=CHUNK, store=store, on_chunk=vandal, **QUICK)
    ds, done = _run(p322, store)
    assert done == [(0, 8)] and ds.identical(ref)


def test_corrupt_root_metadata_is_a_store_error(full_store, p322):
    with open(os.path.join(full_store, "zarr.json"), "w") as fh:
        fh.write('{"zarr_format": 3, "node_type": "gr')
    with pytest.raises(StoreError, match="is damaged and cannot be read.*delete it to start over"):
        _run(p322, full_store)


def test_other_parameters_are_refused(full_store, p322):
    with pytest.raises(StoreError, match=r"different basin run \(seed: store has 31, this call has 32\)"):
        sample_basins(p322, N, seed=SEED + 1, store=full_store, **QUICK)
    with pytest.raises(StoreError, match="init_scale"):
        sample_basins(p322, N, seed=SEED, store=full_store, **dict(QUICK, init_scale=0.25))


def test_foreign_directory_and_file_are_refused_untouched(tmp_path, p322):
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "cat.jpg").write_bytes(b"\xff\xd8")
    with pytest.raises(StoreError, match="not a flowgeom basins store"):
        sample_basins(p322, 4, seed=1, store=foreign, **QUICK)
    assert sorted(os.listdir(foreign)) == ["cat.jpg"]  # nothing written into it
    afile = tmp_path / "x.zarr"
    afile.write_text("hello")
    with pytest.raises(StoreError, match="is not a directory"):
        sample_basins(p322, 4, seed=1, store=afile, **QUICK)
    import zarr

    other = tmp_path / "other.zarr"
    zarr.open_group(str(other), mode="w").attrs["something"] = 1
    with pytest.raises(StoreError, match="a Zarr group but not a flowgeom basins store"):
        sample_basins(p322, 4, seed=1, store=other, **QUICK)
    assert issubclass(StoreError, InputError) and issubclass(StoreError, ValueError)


def test_empty_directory_becomes_a_store(tmp_path, p322, ref):
    store = tmp_path / "empty.zarr"
    store.mkdir()
    ds, _ = _run(p322, store)
    assert ds.identical(ref)


def test_lock_is_released_after_success_and_after_failure(tmp_path, p322, ref):
    store = str(tmp_path / "run.zarr")

    class Boom(Exception):
        pass

    def boom(a, b):
        raise Boom

    with pytest.raises(Boom):
        sample_basins(p322, N, seed=SEED, chunk_size=CHUNK, store=store, on_chunk=boom, **QUICK)
    ds, done = _run(p322, store)  # not refused as "in use" by ourselves
    assert done == [(8, 16), (16, 24)] and ds.identical(ref)
    ds, done = _run(p322, store)
    assert done == [] and ds.identical(ref)


def test_second_writer_is_refused_while_the_first_runs(tmp_path, p322, ref):
    store = str(tmp_path / "run.zarr")
    script = textwrap.dedent(f"""
        from flowgeom import Problem
        from flowgeom.basins import sample_basins
        pb = Problem.from_spectrum([2.0, 1.0], (3, 2, 2))
        try:
            sample_basins(pb, {N}, seed={SEED}, store={store!r}, **{QUICK!r})
        except Exception as e:
            print(type(e).__name__, e)
    """)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")])))
    outputs = []

    def second(a, b):
        if not outputs:
            proc = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True,
                                  env=env, timeout=60)
            outputs.append(proc.stdout + proc.stderr)

    ds = sample_basins(p322, N, seed=SEED, chunk_size=CHUNK, store=store, on_chunk=second, **QUICK)
    assert ds.identical(ref)
    assert f"StoreError `store` {store!r} is in use by pid {os.getpid()}" in outputs[0]


def test_missing_ranges_and_assembly_refuse_gaps():
    assert _missing_ranges(10, [(0, 3), (2, 5), (7, 12)]) == [(5, 7)]
    assert _missing_ranges(4, []) == [(0, 4)]
    piece = lambda a, b: (a, b, {"x": np.arange(a, b)})
    out = _assemble([piece(4, 9), piece(0, 5), piece(8, 10)], 10, ["x"])
    np.testing.assert_array_equal(out["x"], np.arange(10))
    with pytest.raises(RuntimeError, match=r"assembled samples 0\.\.4 of 0\.\.9"):
        _assemble([piece(0, 5), piece(6, 10)], 10, ["x"])
    with pytest.raises(StoreError, match=r"`store` 's\.zarr': assembled samples 0\.\.-1 of 0\.\.9"):
        _assemble([piece(1, 10)], 10, ["x"], "s.zarr")
    bad = (0, 10, {"x": np.arange(9)})  # a piece shorter than its range
    with pytest.raises(RuntimeError):
        _assemble([bad], 10, ["x"])


# ---------------------------------------------------------------------------- fuzz: random damage
def _fuzz_case(template, ops, p322, ref):
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        store = os.path.join(tmp, "run.zarr")
        shutil.copytree(template, store)
        files = sorted(os.path.relpath(os.path.join(d, f), store) for d, _, fs in os.walk(store) for f in fs)
        root_damaged = False
        for op, i, j, frac in ops:
            f = os.path.join(store, files[i % len(files)])
            g = os.path.join(store, files[j % len(files)])
            if not os.path.exists(f):
                continue
            root_damaged |= os.path.dirname(f) == store
            size = os.path.getsize(f)
            if op == "delete":
                os.remove(f)
            elif op == "truncate":
                with open(f, "r+b") as fh:
                    fh.truncate(int(size * frac))
            elif op == "flip" and size:
                with open(f, "r+b") as fh:
                    fh.seek(int(frac * (size - 1)))
                    b = fh.read(1)
                    fh.seek(-1, 1)
                    fh.write(bytes([b[0] ^ 0x5A]))
            elif op == "swap" and os.path.exists(g) and f != g:
                root_damaged |= os.path.dirname(g) == store
                os.replace(f, f + ".tmp")
                os.replace(g, f)
                os.replace(f + ".tmp", g)
        try:
            ds = sample_basins(p322, N, seed=SEED, chunk_size=CHUNK, store=store, **QUICK)
        except StoreError as e:
            assert root_damaged, e  # only a damaged root (the run's signature) may refuse the store
            return
        assert ds.identical(ref)


@pytest.mark.slow
def test_fuzz_damaged_store_resumes_to_the_undamaged_result(template, p322, ref):
    """Any deletion, truncation, byte flip or swap of a store's files: the exact result, or a StoreError."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as hs

    op = hs.tuples(hs.sampled_from(["delete", "truncate", "flip", "swap"]), hs.integers(0, 10**6),
                   hs.integers(0, 10**6), hs.floats(0.0, 1.0))

    @settings(max_examples=8, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(hs.lists(op, min_size=1, max_size=4))
    def check(ops):
        _fuzz_case(template, ops, p322, ref)

    check()
