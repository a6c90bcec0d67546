"""The shipped datasets (flowgeom.datasets): contents against scikit-learn's copies, checksums, packaging, --data names."""

import hashlib
import re
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from flowgeom import datasets
from flowgeom._data import resolve_data
from flowgeom._validate import InputError
from flowgeom.cli import main
from flowgeom.io import load_dataset

ROOT = Path(__file__).resolve().parent.parent

# Pinned when the files were built (studies/data/build_datasets.py); a rebuild that changes a byte must be deliberate.
PINNED_SHA256 = {
    "digits": "1c3dc950b0164ad91cee220f2659469ff3e5ea0397803fc2b8ece93437f906c1",
    "linnerud": "22eaab7df49a27e52e64cf659e03af08412bb3ea737f488e26f0ad6396926f98",
}


def test_files_are_found_by_importlib_resources_small_and_pinned():
    for name in datasets.NAMES:
        f = resources.files("flowgeom.datasets") / f"{name}.npz"
        assert f.is_file(), name
        raw = f.read_bytes()
        assert len(raw) < 100_000, (name, len(raw))
        assert hashlib.sha256(raw).hexdigest() == PINNED_SHA256[name] == datasets.SHA256[name]
        with np.load(f, allow_pickle=False) as z:  # compact integer storage, no pickles
            assert all(z[k].dtype.kind in "iu" for k in z.files), {k: z[k].dtype for k in z.files}


def test_digits_shapes_and_values():
    X, Y = datasets.load_digits()
    assert X.shape == (61, 1797) and Y.shape == (10, 1797)
    assert X.dtype == Y.dtype == np.float64
    assert X.min() == 0 and X.max() == 16 and np.all(X == np.round(X))
    assert np.all(np.ptp(X, axis=1) > 0)  # no constant pixel left
    assert np.all((Y == 0) | (Y == 1)) and np.all(Y.sum(axis=0) == 1)
    # class sizes of the UCI test set (optdigits.tes), stated on the UCI page: ~180 per class, 1797 in all
    counts = Y.sum(axis=1)
    assert counts.sum() == 1797 and counts.min() >= 170 and counts.max() <= 185
    assert np.linalg.matrix_rank(X) == 61  # Assumption 2 of the paper (full row rank)
    Xw, Yw = datasets.load_digits(whiten=True)
    np.testing.assert_allclose(Xw @ Xw.T, np.eye(61), atol=1e-10)
    np.testing.assert_array_equal(Yw, Y)


def test_linnerud_shapes_values_and_swap():
    X, Y = datasets.load_linnerud()
    assert X.shape == Y.shape == (3, 20) and X.dtype == Y.dtype == np.float64
    # Tenenhaus (1998) Table 1, first row (the first man): chins 5, situps 162, jumps 60; 191 lb, 36 in, 50 bpm
    np.testing.assert_array_equal(X[:, 0], [5, 162, 60])
    np.testing.assert_array_equal(Y[:, 0], [191, 36, 50])
    Xs, Ys = datasets.load_linnerud(swap=True)
    np.testing.assert_array_equal(Xs, Y)
    np.testing.assert_array_equal(Ys, X)


def test_same_data_as_scikit_learn():
    sk = pytest.importorskip("sklearn.datasets")
    d = sk.load_digits()
    X, Y = datasets.load_digits()
    keep = np.flatnonzero(np.ptp(d.data, axis=0) > 0)
    np.testing.assert_array_equal(X, d.data[:, keep].T)
    np.testing.assert_array_equal(np.argmax(Y, axis=0), d.target)
    lin = sk.load_linnerud()
    X, Y = datasets.load_linnerud()
    np.testing.assert_array_equal(X, lin.data.T)
    np.testing.assert_array_equal(Y, lin.target.T)


def test_provenance_and_describe():
    for name in datasets.NAMES:
        p = datasets.provenance(name)
        assert p["license"] and p["source"] and p["sha256"] == PINNED_SHA256[name]
        assert all(isinstance(v, (str, int)) for v in p.values())
        text = datasets.describe(name)
        assert text.startswith(name) and "eig(X X^T)" in text
    assert "CC BY 4.0" in datasets.provenance("digits")["license"]
    assert "BSD" in datasets.provenance("linnerud")["license"]
    with pytest.raises(InputError, match="`name` must be one of digits, linnerud"):
        datasets.load("iris")


def test_a_damaged_file_is_refused(monkeypatch):
    monkeypatch.setitem(datasets.SHA256, "linnerud", "0" * 64)
    with pytest.raises(OSError, match="damaged.*reinstall"):
        datasets.load_linnerud()


def test_names_never_shadow_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    X, Y, note = resolve_data("linnerud")
    assert X.shape == (3, 20) and note.startswith("data: the shipped dataset linnerud")
    (tmp_path / "linnerud").mkdir()  # e.g. an output directory: the name still means the dataset, and we say so
    X, Y, note = resolve_data("linnerud")
    assert X.shape == (3, 20) and "not the directory 'linnerud'" in note
    (tmp_path / "linnerud").rmdir()
    (tmp_path / "linnerud").write_bytes(b"junk")  # a user's file of that name wins, and the error says so
    with pytest.raises(InputError, match=r"must be a \.npz or \.nc file.*read the file 'linnerud' in this directory"):
        resolve_data("linnerud")
    # a real file path is read as a file, never replaced by a shipped dataset
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "mine.npz", X=rng.standard_normal((2, 5)), Y=rng.standard_normal((1, 5)))
    X, Y, note = resolve_data(str(tmp_path / "mine.npz"))
    assert X.shape == (2, 5) and note == ""
    with pytest.raises(InputError, match="shipped dataset: digits, linnerud"):
        resolve_data("lineurd")


def test_cli_accepts_a_dataset_name(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["strata", "--data", "linnerud", "--widths", "3,3,3", "--top-only", "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert "shipped dataset linnerud" in out
    ds = load_dataset(tmp_path / "o" / "strata.nc")
    X, Y = datasets.load_linnerud()
    Vt = np.linalg.svd(X, full_matrices=False)[2]  # singular values of Y V_X (independent of flowgeom's code)
    np.testing.assert_allclose(ds.attrs["singular_values"], np.linalg.svd(Y @ Vt.T, compute_uv=False), rtol=1e-10)


def _build_py(tmp_path: Path, pyproject: str) -> Path:
    """``setup.py build_py`` of a copy of the package: the files a wheel built from this tree would hold."""
    src = tmp_path / "src"
    shutil.copytree(ROOT / "flowgeom", src / "flowgeom", ignore=shutil.ignore_patterns("__pycache__"))
    (src / "pyproject.toml").write_text(pyproject)
    shutil.copy(ROOT / "README.md", src / "README.md")
    out = tmp_path / "build"
    subprocess.run([sys.executable, "-c", "import setuptools; setuptools.setup()", "-q", "build_py", "--build-lib",
                    str(out)], cwd=src, check=True, capture_output=True)
    return out / "flowgeom" / "datasets"


def test_pip_install_ships_the_files(tmp_path):
    pyproject = (ROOT / "pyproject.toml").read_text()
    built = _build_py(tmp_path / "with", pyproject)
    assert sorted(p.name for p in built.glob("*.npz")) == sorted(f"{n}.npz" for n in datasets.NAMES)
    # the check can fail: without the package-data entry setuptools leaves them out
    stripped = re.sub(r"\[tool\.setuptools\.package-data\][^\[]*", "", pyproject)
    assert stripped != pyproject
    assert not list(_build_py(tmp_path / "without", stripped).glob("*.npz"))
