"""Smoke tests of the studies scripts: every ``studies/fig*.py`` runs its CI-sized version end to end.

Each study's ``main(["--quick", "--out", tmp, "--data", tmp])`` computes the tiny Dataset, caches it,
plots it and writes a PNG into a temporary directory (never into ``figures/``). A second call must
reuse the cache; a cache whose attrs do not match must be recomputed.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

STUDIES = sorted(p.stem for p in (ROOT / "studies").glob("fig*.py"))

mpl = pytest.importorskip("matplotlib")
xr = pytest.importorskip("xarray")


def test_studies_exist():
    assert len(STUDIES) >= 1
    assert (ROOT / "studies" / "run_all.py").exists()


@pytest.mark.parametrize("name", STUDIES)
def test_study_quick(name, tmp_path, capsys):
    mod = importlib.import_module(f"studies.{name}")
    for attr in ("compute", "plot", "main", "CONFIG", "QUICK_CONFIG", "NAME"):
        assert hasattr(mod, attr), f"studies/{name}.py lacks `{attr}`"
    assert mod.NAME == name
    assert mod.__doc__ and len(mod.__doc__.strip()) > 40
    assert "seed" in mod.CONFIG and "seed" in mod.QUICK_CONFIG
    png = mod.main(["--quick", "--out", str(tmp_path), "--data", str(tmp_path)])
    assert Path(png) == tmp_path / f"{name}.png"
    assert png.stat().st_size > 2_000  # a real picture, not an empty canvas
    nc = tmp_path / f"{name}.nc"
    assert nc.exists()
    out = capsys.readouterr().out
    assert "computed" in out
    # the cached Dataset matches the configuration main uses, so it would be reused (no recompute)
    from studies import common

    cfg = dict(mod.QUICK_CONFIG, compute_source_sha256=common.compute_fingerprint(mod.compute, mod.plot))

    def fail(**kw):
        raise AssertionError("the cache should have been reused")

    ds = common.load_or_compute(name, fail, cfg, quick=True, data_dir=tmp_path)
    assert ds.attrs["seed"] == mod.QUICK_CONFIG["seed"]


def test_cache_mismatch_recomputes(tmp_path, capsys):
    from flowgeom.io import load_dataset, save_dataset
    from studies import common

    calls = []

    def compute(*, quick=False):
        calls.append(quick)
        return xr.Dataset({"a": ("x", [1.0, 2.0])})

    cfg = {"seed": 1, "n": 3}
    ds = common.load_or_compute("toy", compute, cfg, quick=True, data_dir=tmp_path)
    assert ds.attrs["seed"] == 1 and ds.attrs["quick"] is True and "flowgeom_version" in ds.attrs
    common.load_or_compute("toy", compute, cfg, quick=True, data_dir=tmp_path)
    assert len(calls) == 1
    common.load_or_compute("toy", compute, {"seed": 2, "n": 3}, quick=True, data_dir=tmp_path)
    assert len(calls) == 2
    # a different flowgeom version invalidates the cache too
    ds = load_dataset(tmp_path / "toy.nc")
    ds.attrs["flowgeom_version"] = "0.0.0-other"
    save_dataset(ds, tmp_path / "toy.nc")
    common.load_or_compute("toy", compute, {"seed": 2, "n": 3}, quick=True, data_dir=tmp_path)
    assert len(calls) == 3


def test_run_all_lists_every_study():
    from studies import run_all

    assert list(run_all.STUDIES) == STUDIES
