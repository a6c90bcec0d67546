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
    # report.html with the provenance (command line, seconds); every file says what made it
    html = (out / "report.html").read_text()
    assert "flowgeom atlas --widths 3,2,2" in html and all(lab in html for lab in strata["label"].values)
    assert all("flowgeom atlas --widths 3,2,2" in ds.attrs["history"] for ds in (strata, basins, trans))


# ---------------------------------------------------------------------------- inputs taken literally
def _err(capsys):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("flowgeom: error: "), err
    return err


@pytest.mark.parametrize(
    "argv, match",
    [
        (["strata", "--singular-values", "3,,1"], "`--singular-values` has an empty item"),
        (["strata", "--widths", ""], "`--widths` has an empty item"),
        (["strata", "--widths", ",,,"], "`--widths` has an empty item"),
        (["strata", "--ranks", ","], "`--ranks` has an empty item"),
        (["strata", "--ranks", "5"], "`--ranks` '5' selects no critical set"),
        (["strata", "--singular-values", "3,inf,1"], "finite"),
        (["strata", "--whiten"], "`--whiten` needs `--data`"),
        (["strata", "--model", "diagonal"], "`--model diagonal` needs `--data`"),
        (["basins", "--samples", "10", "--lr", "0.1"], "`--lr` is only used with `--integrator gd`"),
        (["basins", "--samples", "10", "--integrator", "gd", "--lr", "1e-300"], "`--lr` 1e-300 plans"),
        (["basins", "--samples", "10", "--integrator", "bogus", "--model", "tanh"], "`--integrator`"),
        (["basins", "--samples", "10", "--init", "bogus"], "`--init` must be one of"),
        (["basins", "--samples", "10", "--init-scale", "1e300"], "`--init-scale` 1e\\+300 makes"),
        (["transitions", "--samples", "2", "--init-scale", "1e300"], "`--init-scale` 1e\\+300 makes"),
        (["basins", "--samples", "10", "--scheduler", "bogus://x"], "unknown protocol"),
        (["basins", "--samples", "10", "--scheduler", "tcp://127.0.0.1:1"], "cannot be reached"),
        # resources: refused before any work, naming the option to lower
        (["basins", "--samples", "1e12"], "lower `--samples`"),
        (["strata", "--widths", "100000,4,3"], "lower `--widths`"),
        (["strata", "--widths", "3000,300,3"], "dense Hessian .* lower `--widths`"),
        (["transitions", "--samples", "100000000"], "lower `--samples`"),
    ],
)
def test_inputs_are_taken_literally(argv, match, capsys, tmp_path):
    assert main(argv + ["--out", str(tmp_path)]) == 2
    assert __import__("re").search(match, _err(capsys))


@pytest.mark.parametrize("flag, value", [("--seed", "-1"), ("--init-scale", "inf"), ("--lr", "inf"),
                                         ("--samples", "0"), ("--init-scale", "nan")])
def test_argparse_errors_are_one_line_naming_the_option(flag, value, capsys):
    argv = ["basins", "--samples", "4", flag, value] + (["--integrator", "gd"] if flag == "--lr" else [])
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert flag in _err(capsys)


def test_init_file_cases(tmp_path, capsys):
    from flowgeom.problem import Problem

    n = Problem.default().network().n_params
    np.save(tmp_path / "ok.npy", np.random.default_rng(0).standard_normal((2, n)))
    np.savez(tmp_path / "z.npz", a=np.ones(3))
    (tmp_path / "t.npy").write_bytes((tmp_path / "ok.npy").read_bytes()[:60])
    np.save(tmp_path / "shape.npy", np.ones((2, n + 1)))
    cases = [("file:" + str(tmp_path / "ok.npy"), ["--init-scale", "2"], "`--init-scale` is not used with a `file:`"),
             ("file:" + str(tmp_path / "z.npz"), [], "expected an existing .npy"),
             ("file:" + str(tmp_path), [], "got a directory"),
             ("file:" + str(tmp_path / "t.npy"), [], "not a readable .npy"),
             ("file:" + str(tmp_path / "shape.npy"), [], "shape")]
    for init, extra, match in cases:
        assert main(["basins", "--samples", "2", "--init", init, *extra, "--out", str(tmp_path / "o")]) == 2
        assert __import__("re").search(match, _err(capsys)), init
    assert not (tmp_path / "o" / "basins.nc").exists()


def _npz(path, **arrays):
    np.savez(path, **arrays)
    return str(path)


def test_data_files_taken_literally(tmp_path, capsys):
    rng = np.random.default_rng(1)
    X, Y = rng.standard_normal((3, 8)), rng.standard_normal((2, 8))
    collinear = X.copy()
    collinear[2] = 2 * collinear[1]
    (tmp_path / "random.npz").write_bytes(np.random.default_rng(2).bytes(300))
    _npz(tmp_path / "good.npz", X=X, Y=Y)
    (tmp_path / "trunc.npz").write_bytes((tmp_path / "good.npz").read_bytes()[:200])
    (tmp_path / "dir.npz").mkdir()
    cases = {
        _npz(tmp_path / "complex.npz", X=X + 1j, Y=Y): "complex `X`",
        _npz(tmp_path / "huge.npz", X=X * 1e300, Y=Y): "squares overflow; rescale",
        _npz(tmp_path / "collinear.npz", X=collinear, Y=Y): "1 of d_x = 3 near-zero singular values",
        _npz(tmp_path / "object.npz", X=np.array([None] * 3, dtype=object), Y=Y): "never loaded",
        str(tmp_path / "random.npz"): "not an .npz archive",
        str(tmp_path / "trunc.npz"): "not a readable .npz archive",
        str(tmp_path / "dir.npz"): "is a directory",
    }
    for path, match in cases.items():
        assert main(["strata", "--data", path, "--widths", "3,2,2", "--out", str(tmp_path)]) == 2
        err = _err(capsys)
        assert match in err, (path, err)
        assert "allow_pickle" not in err
    # constant/collinear features: the count, not every singular value (64 features, 10 collinear)
    X64 = rng.standard_normal((64, 200))
    X64[54:] = X64[:10] * 3.0
    path = _npz(tmp_path / "wide.npz", X=X64, Y=rng.standard_normal((2, 200)))
    assert main(["strata", "--data", path, "--widths", "64,4,2", "--out", str(tmp_path)]) == 2
    err = _err(capsys)
    assert "10 of d_x = 64 near-zero singular values" in err and len(err) < 400


def test_netcdf_data_and_whiten(tmp_path, capsys):
    import xarray as xr

    rng = np.random.default_rng(3)
    X, Y = rng.standard_normal((3, 9)) * [[1.0], [10.0], [100.0]], rng.standard_normal((2, 9))
    xr.Dataset({"X": (("feature", "sample"), X), "Y": (("target", "sample"), Y)}).to_netcdf(
        tmp_path / "d.nc", engine="h5netcdf")
    out_raw, out_white = tmp_path / "raw", tmp_path / "white"
    assert main(["strata", "--data", str(tmp_path / "d.nc"), "--widths", "3,2,2", "--out", str(out_raw)]) == 0
    assert main(["strata", "--data", str(tmp_path / "d.nc"), "--widths", "3,2,2", "--whiten", "--out",
                 str(out_white)]) == 0
    assert "DIFFERENT gradient flow" in capsys.readouterr().out
    raw, white = load_dataset(out_raw / "strata.nc"), load_dataset(out_white / "strata.nc")
    assert raw.attrs["whitened"] is False and white.attrs["whitened"] is True
    assert "--whiten" in white.attrs["history"]
    # whitening keeps the row space of X, hence Ybar = Y V_X^1 and its singular values (independent SVD)
    Vt = np.linalg.svd(X, full_matrices=False)[2]
    np.testing.assert_allclose(white.attrs["singular_values"], np.linalg.svd(Y @ Vt.T, compute_uv=False), rtol=1e-10)
    (tmp_path / "bad.nc").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
    assert main(["strata", "--data", str(tmp_path / "bad.nc"), "--widths", "3,2,2", "--out", str(tmp_path)]) == 2
    assert "not a readable NetCDF4/HDF5 file" in _err(capsys)


def test_diagonal_model_on_data(tmp_path, capsys):
    rng = np.random.default_rng(4)
    X, y = rng.standard_normal((6, 20)), rng.standard_normal((1, 20))
    path = _npz(tmp_path / "d.npz", X=X, Y=y)
    out = tmp_path / "o"
    assert main(["basins", "--model", "diagonal", "--data", path, "--samples", "4", "--scheduler", "synchronous",
                 "--out", str(out)]) == 0
    ds = load_dataset(out / "basins.nc")
    assert ds.sizes["sample"] == 4
    # the least-squares optimum (independent: numpy lstsq on the (n, d) design) bounds every final loss below
    beta = np.linalg.lstsq(X.T, y[0], rcond=None)[0]
    lstar = 0.5 * np.sum((X.T @ beta - y[0]) ** 2) / X.shape[1]
    assert np.all(ds["final_loss"].values >= lstar - 1e-9)
    capsys.readouterr()
    assert main(["strata", "--model", "diagonal", "--data", _npz(tmp_path / "y2.npz", X=X, Y=np.ones((2, 20))),
                 "--out", str(out)]) == 2
    assert "Y of shape (1, m)" in _err(capsys)


def test_out_is_checked_before_any_work(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    for out in (tmp_path / "file", tmp_path / "file" / "sub"):
        assert main(["basins", "--samples", "4", "--scheduler", "synchronous", "--out", str(out)]) == 2
        assert "`--out` directory" in _err(capsys)
        assert capsys.readouterr().out == ""  # nothing computed, nothing printed


def test_internal_errors_stay_tracebacks(monkeypatch, tmp_path):
    import flowgeom.critical.dataset as cd

    def boom(*a, **k):
        raise ValueError("an internal bug")

    monkeypatch.setattr(cd, "strata_dataset", boom)
    with pytest.raises(ValueError, match="an internal bug"):
        main(["strata", "--widths", "3,2,2", "--singular-values", "2,1", "--out", str(tmp_path)])


def test_assumption_errors_are_input_errors_and_speak_cli(capsys, tmp_path):
    from flowgeom._validate import InputError
    from flowgeom.problem import AssumptionError

    assert issubclass(AssumptionError, InputError)
    assert main(["strata", "--widths", "5,6,3", "--out", str(tmp_path)]) == 2
    assert "on_violation" not in _err(capsys)


def test_describe_and_report_on_saved_and_junk_files(tmp_path, capsys):
    out = tmp_path / "s"
    assert main(["strata", "--widths", "3,2,2", "--singular-values", "2,1", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["describe", str(out / "strata.nc")]) == 0
    text = capsys.readouterr().out
    assert "critical_value" in text and "flowgeom strata --widths 3,2,2" in text
    assert main(["report", str(out)]) == 0
    html = (out / "report.html").read_text()
    assert all(lab in html for lab in load_dataset(out / "strata.nc")["label"].values)
    (tmp_path / "junk.nc").write_bytes(b"not netcdf")
    (tmp_path / "j").mkdir()
    (tmp_path / "j" / "basins.nc").write_bytes(b"not netcdf")
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "strata.nc").write_bytes((out / "strata.nc").read_bytes())
    (tmp_path / "w" / "basins.nc").write_bytes((out / "strata.nc").read_bytes())  # the wrong kind
    for argv, match in [(["describe", str(tmp_path / "junk.nc")], "not a readable"),
                        (["describe", str(tmp_path / "none.nc")], "does not exist"),
                        (["report", str(tmp_path / "j")], "not a readable flowgeom Dataset"),
                        (["plot", str(tmp_path / "w")], "holds a strata Dataset, not a basins one"),
                        (["report", str(out), "--out", str(tmp_path / "r.txt")], "ending in .html")]:
        capsys.readouterr()
        assert main(argv) == 2
        assert match in _err(capsys), argv


def test_store_from_another_run_or_not_a_store(tmp_path, capsys):
    base = ["basins", "--widths", "3,2,2", "--singular-values", "2,1", "--samples", "3", "--scheduler", "synchronous",
            "--out", str(tmp_path)]
    store = str(tmp_path / "s.zarr")
    assert main(base + ["--store", store]) == 0
    capsys.readouterr()
    assert main(base + ["--store", store, "--seed", "3"]) == 2
    err = _err(capsys)
    assert "`--store`" in err and "different basin run" in err
    (tmp_path / "other.zarr").mkdir()
    (tmp_path / "other.zarr" / "x").write_text("not zarr")
    assert main(base + ["--store", str(tmp_path / "other.zarr")]) == 2
    assert "not a flowgeom basins store" in _err(capsys)
