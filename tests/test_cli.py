"""The command line: exit status 2 with a one-line reason on bad input, and outputs that reload."""

import numpy as np
import pytest

from flowgeom.cli import main
from flowgeom.io import load_dataset
from flowgeom.transitions import read_graphml


@pytest.mark.parametrize(
    "argv, match",
    [
        (["strata", "--widths", "5,4"], "at least 3 widths"),
        (["strata", "--widths", "5,x,3"], "`--widths` must be comma-separated integers"),
        (["strata", "--singular-values", "3,2,2"], "Assumption 3"),
        (["strata", "--widths", "5,6,3"], "Assumption 1"),
        (["strata", "--widths", "5,4,3", "--singular-values", "1,2"], "length d_y = 3"),
        (["strata", "--model", "relu"], "`--model`"),
        (["strata", "--data", "/nonexistent/file.npz", "--widths", "5,4,3"], "does not exist"),
        (["basins", "--samples", "10", "--integrator", "gd"], "needs `--lr`"),
        (["basins", "--samples", "10", "--integrator", "rk4"], "`--integrator`"),
        (["basins", "--samples", "10", "--store", "out.db"], "`--store` must be a path ending in .zarr"),
        (["plot", "/nonexistent/dir"], "is not a directory"),
    ],
)
def test_bad_input_exits_2_with_one_line(argv, match, capsys, tmp_path):
    argv = argv + (["--out", str(tmp_path)] if argv[0] != "plot" else [])
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("flowgeom: error: ")
    assert len(err.splitlines()) == 1
    assert __import__("re").search(match, err)


def test_argparse_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["basins"])  # --samples is required
    assert info.value.code == 2


def test_data_file_problem(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((3, 8)), rng.standard_normal((2, 8))
    np.savez(tmp_path / "d.npz", X=X, Y=Y)
    assert main(["strata", "--data", str(tmp_path / "d.npz"), "--widths", "3,2,2", "--out", str(tmp_path)]) == 0
    ds = load_dataset(tmp_path / "strata.nc")
    assert ds.attrs["whitened"] is False
    np.testing.assert_allclose(ds.attrs["singular_values"], np.linalg.svd(Y @ np.linalg.svd(X)[2][:3].T,
                                                                           compute_uv=False), rtol=1e-10)
    np.savez(tmp_path / "bad.npz", A=X)
    assert main(["strata", "--data", str(tmp_path / "bad.npz"), "--widths", "3,2,2", "--out", str(tmp_path)]) == 2


def test_atlas_writes_everything_and_it_reloads(tmp_path, capsys):
    out = tmp_path / "atlas"
    argv = ["atlas", "--widths", "3,2,2", "--singular-values", "2,1", "--samples", "64",
            "--transition-samples", "6", "--no-verify", "--out", str(out)]
    assert main(argv) == 0
    strata = load_dataset(out / "strata.nc")
    basins = load_dataset(out / "basins.nc")
    trans = load_dataset(out / "transitions.nc")
    graph = read_graphml(out / "transitions.graphml")
    assert list(strata["label"].values) == list(basins["label"].values)
    assert basins.sizes["sample"] == 64
    total = basins["fraction"].sum() + sum(
        float(basins[f"fraction_{k}"]) for k in ("unconverged", "diverged", "unclassified")
    )
    assert float(total) == pytest.approx(1.0)
    assert set(graph.nodes) <= set(strata["label"].values)
    assert trans.sizes["edge"] == graph.number_of_edges()
    assert any(p.suffix == ".png" for p in (out / "figures").iterdir())
    # `flowgeom plot DIR` re-plots from the saved Datasets
    assert main(["plot", str(out)]) == 0
