"""Fuzzing the command line: random argument lists and damaged --data files never give a traceback.

Each example runs in-process through :func:`flowgeom.cli.main` on small problems. The contract: exit
status 0, or 2 with exactly one stderr line starting ``flowgeom: error:``; no other exception escapes
(an escape is a bug: a traceback, exit 1); every run ends within a bound. The whole file runs in well
under 30 s (max_examples is small, sizes are tiny, the scheduler is never a local process pool).
"""

import contextlib
import io
import os
import tempfile
import time
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowgeom.cli import main

BOUND_S = 60.0  # one CLI run on a tiny problem (~1 s), generous: the test machine is shared
SETTINGS = {"deadline": None, "derandomize": True, "suppress_health_check": [HealthCheck.too_slow]}

GARBAGE = st.sampled_from(["", ",", ",,", "x", "-1", "0", "nan", "inf", "-inf", "1e300", "1e-300", "3,,1",
                           "1.5", " ", "--", "\x00", "é", "1e12"])


def _run(argv):
    """(status, stderr lines, seconds) of ``main(argv)``; anything but SystemExit escapes (a bug)."""
    err = io.StringIO()
    t = time.perf_counter()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            rc = main(argv)
        except SystemExit as e:
            rc = e.code
    return rc, err.getvalue().strip().splitlines(), time.perf_counter() - t


def _check(argv):
    rc, lines, seconds = _run(argv)
    assert rc in (0, 2), (argv, rc, lines)
    if rc == 2:
        assert len(lines) == 1 and lines[0].startswith("flowgeom: error: "), (argv, lines)
    assert "Traceback" not in "\n".join(lines)
    assert seconds < BOUND_S, (argv, seconds)
    return rc


# ---------------------------------------------------------------------------- argument lists
_PROBLEM = {
    "--widths": st.one_of(st.sampled_from(["3,2,2", "3,2,1", "2,2,2", "3,4,2", "3,2", "0,1,1", "3,2,2,2"]), GARBAGE),
    "--singular-values": st.one_of(st.sampled_from(["2,1", "1,1", "2,1,0.5", "-1,1", "1"]), GARBAGE),
    "--model": st.sampled_from(["linear", "relu", "diagonal", ""]),  # tanh: a searched atlas, seconds
    "--seed": st.one_of(st.sampled_from(["0", "7"]), GARBAGE),
    "--data": st.sampled_from(["/nonexistent.npz", "/", "x.txt", "/dev/null"]),
    "--whiten": st.just(None),
}
_SAMPLING = {
    "--samples": st.one_of(st.sampled_from(["1", "2", "3"]), GARBAGE),
    "--init": st.one_of(st.sampled_from(["gaussian", "orthogonal", "balanced", "stable-set", "file:/", "file:x.npy"]),
                        GARBAGE),
    "--init-scale": st.one_of(st.sampled_from(["0.5", "1"]), GARBAGE),
    "--integrator": st.one_of(st.sampled_from(["adaptive", "invariant", "gd"]), GARBAGE),
    "--lr": st.one_of(st.sampled_from(["0.05", "0.5"]), GARBAGE),
    "--scheduler": st.sampled_from(["synchronous", "tcp://127.0.0.1:1", "bogus://x", "nowhere"]),
    "--store": st.sampled_from(["s.db", "/proc/x.zarr"]),
}
_EXTRA = {
    "strata": {"--ranks": st.one_of(st.sampled_from(["0,1", "2", "9"]), GARBAGE), "--top-only": st.just(None)},
    "basins": _SAMPLING,
    "transitions": {"--samples": st.one_of(st.sampled_from(["1", "2"]), GARBAGE),
                    "--init-scale": st.one_of(st.sampled_from(["1e-3", "0.1"]), GARBAGE)},
}


@st.composite
def _argv(draw):
    command = draw(st.sampled_from(sorted(_EXTRA)))
    grammar = {**_PROBLEM, **_EXTRA[command], "--bogus-flag": GARBAGE}
    names = draw(st.lists(st.sampled_from(sorted(grammar)), max_size=4, unique=True))
    argv = [command, "--widths", "3,2,2", "--singular-values", "2,1"]  # tiny defaults; drawn flags override
    for name in names:
        value = draw(grammar[name])
        argv += [name] if value is None else [name, value]
    if command == "basins":
        argv += ["--samples", draw(st.sampled_from(["1", "2", "0", "x"])), "--scheduler", "synchronous"]
    if command == "transitions" and "--samples" not in names:
        argv += ["--samples", "1"]
    return argv


@settings(max_examples=40, **SETTINGS)
@given(argv=_argv())
def test_random_argument_lists_exit_0_or_2_with_one_line(argv):
    with tempfile.TemporaryDirectory() as d:
        cwd = os.getcwd()
        os.chdir(d)  # relative paths in the grammar (x.npy, s.db) land here
        try:
            _check(argv + ["--out", os.path.join(d, "out")])
        finally:
            os.chdir(cwd)


@settings(max_examples=15, **SETTINGS)
@given(command=st.sampled_from(["plot", "report", "describe"]), target=st.sampled_from(["", "f.nc", "f.npz", "d"]),
       content=st.binary(max_size=200))
def test_reading_commands_on_junk_exit_2_with_one_line(command, target, content):
    with tempfile.TemporaryDirectory() as d:
        os.makedirs(os.path.join(d, "d"))
        for name in ("strata.nc", "basins.nc", "f.nc", "f.npz"):
            with open(os.path.join(d, "d" if name[0] != "f" else "", name), "wb") as f:
                f.write(content)
        assert _check([command, os.path.join(d, target)]) == 2


# ---------------------------------------------------------------------------- damaged --data files
def _good_npz() -> bytes:
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    np.savez(buf, X=rng.standard_normal((3, 8)), Y=rng.standard_normal((2, 8)))
    return buf.getvalue()


GOOD = _good_npz()


@st.composite
def _damaged(draw):
    data = bytearray(GOOD)
    kind = draw(st.sampled_from(["truncate", "flip", "random", "splice"]))
    if kind == "truncate":
        return bytes(data[: draw(st.integers(0, len(data) - 1))])
    if kind == "random":
        return draw(st.binary(max_size=600))
    if kind == "splice":
        at = draw(st.integers(0, len(data)))
        return bytes(data[:at]) + draw(st.binary(min_size=1, max_size=64)) + bytes(data[at:])
    for _ in range(draw(st.integers(1, 8))):
        i = draw(st.integers(0, len(data) - 1))
        data[i] = draw(st.integers(0, 255))
    return bytes(data)


@settings(max_examples=40, **SETTINGS)
@given(blob=_damaged(), suffix=st.sampled_from([".npz", ".nc"]))
def test_damaged_data_files_exit_0_or_2_with_one_line(blob, suffix):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "data" + suffix)
        with open(path, "wb") as f:
            f.write(blob)
        rc = _check(["strata", "--data", path, "--widths", "3,2,2", "--ranks", "0", "--out", os.path.join(d, "o")])
        if rc == 0:  # a damage that left a valid archive: the arrays read back must be the undamaged ones
            with zipfile.ZipFile(path) as z, zipfile.ZipFile(io.BytesIO(GOOD)) as g:
                assert {n: z.read(n) for n in z.namelist() if n in ("X.npy", "Y.npy")} == \
                    {n: g.read(n) for n in ("X.npy", "Y.npy")}


@pytest.mark.parametrize("arrays", [
    {"X": np.ones((3, 8), dtype=complex), "Y": np.ones((2, 8))},
    {"X": np.full((3, 8), 1e300), "Y": np.ones((2, 8))},
    {"X": np.array([["a"] * 8] * 3), "Y": np.ones((2, 8))},
    {"X": np.ones(8), "Y": np.ones((2, 8))},
    {"X": np.ones((3, 0)), "Y": np.ones((2, 0))},
    {"X": np.full((3, 8), np.nan), "Y": np.ones((2, 8))},
    {"X": np.ones((3, 8)), "Y": np.ones((2, 7))},
    {"Z": np.ones((3, 8))},
])
def test_defective_arrays_exit_2_with_one_line(arrays, tmp_path):
    np.savez(tmp_path / "d.npz", **arrays)
    assert _check(["strata", "--data", str(tmp_path / "d.npz"), "--widths", "3,2,2", "--out", str(tmp_path)]) == 2
