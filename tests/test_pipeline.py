"""flowgeom.atlas and the stage commands: one pipeline for every model, one schema for its outputs."""

import numpy as np
import pytest

import flowgeom
from flowgeom import Problem
from flowgeom.cli import main
from flowgeom.io import load_dataset

CORE_STRATA = {"n_negative", "n_zero", "n_positive", "manifold_dim", "morse_bott", "stable_codim", "kind", "measured"}
CORE_BASINS = {"limit", "final_loss", "final_grad_norm", "count", "fraction", "fraction_low", "fraction_high"}
CORE_TRANSITIONS = {"source", "target", "count", "probability", "probability_low", "probability_high",
                    "mean_dwell", "trajectory", "stratum", "t_enter", "t_exit"}
FAST_BASINS = dict(t1=20.0, max_steps=20_000, scheduler="synchronous")


@pytest.fixture(scope="module")
def linear_and_tanh():
    pb = Problem.from_spectrum([2.0, 1.0], (3, 2, 2))
    lin = flowgeom.atlas(pb, samples=24, transition_samples=4, basins_options=FAST_BASINS)
    tanh = flowgeom.atlas(flowgeom.mlp_for_problem(pb, "tanh"), samples=24, transition_samples=4,
                          transition_scale=1e-3, basins_options=FAST_BASINS, atlas_options={"n_starts": 12},
                          transitions_options={"t1": 60.0})
    return lin, tanh


def test_same_core_schema_for_every_model(linear_and_tanh):
    for out in linear_and_tanh:
        assert set(out) == {"strata", "basins", "transitions"}
        assert CORE_STRATA <= set(out["strata"].variables)
        assert CORE_BASINS <= set(out["basins"].variables)
        assert CORE_TRANSITIONS <= set(out["transitions"].variables)


def test_strata_and_basins_agree_on_every_kind_and_reached_strata_are_measured(linear_and_tanh):
    for out in linear_and_tanh:
        strata, basins = out["strata"], out["basins"]
        kind_of = dict(zip(strata["label"].values, strata["kind"].values))
        for lab, kind in zip(basins["label"].values, basins["kind"].values):
            assert kind_of[lab] == kind, lab
        reached = {basins["label"].values[k] for k in basins["limit"].values if k >= 0}
        measured = dict(zip(strata["label"].values, strata["measured"].values))
        assert reached and all(measured[lab] for lab in reached)
        visited = set(out["transitions"]["stratum"].values)
        assert all(measured[lab] for lab in visited)


def test_h2_kinds_agree_between_strata_and_basins():
    """For H >= 2 the closed-form kind and the measured one can differ: both files carry the measured one."""
    pb = Problem.from_spectrum([2.0, 1.0], (2, 2, 2, 2))
    out = flowgeom.atlas(pb, samples=12, transition_samples=0, basins_options=FAST_BASINS,
                         atlas_options={"points_per_stratum": 1})
    kind_of = dict(zip(out["strata"]["label"].values, out["strata"]["kind"].values))
    assert "non_strict_saddle" in kind_of.values()
    for lab, kind in zip(out["basins"]["label"].values, out["basins"]["kind"].values):
        assert kind_of[lab] == kind


@pytest.mark.parametrize("command", ["strata", "basins", "transitions"])
def test_every_stage_command_takes_a_nonlinear_model(command, tmp_path, capsys):
    argv = [command, "--model", "tanh", "--widths", "3,2,2", "--singular-values", "2,1", "--out", str(tmp_path)]
    if command == "basins":
        argv += ["--samples", "8"]
    if command == "transitions":
        argv += ["--samples", "3", "--init-scale", "1e-3"]
    assert main(argv) == 0
    name = {"strata": "strata", "basins": "basins", "transitions": "transitions"}[command]
    ds = load_dataset(tmp_path / f"{name}.nc")
    core = {"strata": CORE_STRATA, "basins": CORE_BASINS, "transitions": CORE_TRANSITIONS}[command]
    assert core <= set(ds.variables)
    assert all(str(lab)[0] in "cf" for lab in ds["label"].values)  # classes c<k>, gradient-flat sets f<k>


def test_atlas_rejects_bad_arguments():
    pb = Problem.default()
    with pytest.raises(ValueError, match="`samples` must be >= 0"):
        flowgeom.atlas(pb, samples=-1)
    with pytest.raises(ValueError, match="`measure`"):
        flowgeom.atlas(pb, samples=0, transition_samples=0, measure="some")
    with pytest.raises(TypeError, match="`problem_or_model` must be"):
        flowgeom.atlas("default", samples=0, transition_samples=0)


def test_main_job_on_raw_and_whitened_data(tmp_path):
    rng = np.random.default_rng(4)
    X = rng.standard_normal((4, 30)) * np.array([[1.0], [2.0], [0.5], [3.0]])
    Y = rng.standard_normal((3, 30))
    U, _, Vt = np.linalg.svd(X, full_matrices=False)
    for data in (X, U @ Vt):
        pb = Problem.from_data(data, Y, (4, 3, 3))
        out = flowgeom.atlas(pb, samples=16, transition_samples=3, basins_options=FAST_BASINS)
        b = out["basins"]
        assert int(b.count_unclassified) == 0
        # every limit found is the global minimum (raw units make the flow stiff: some samples may
        # still be converging at this short horizon, never misclassified)
        converged = b.limit.values >= 0
        assert converged.sum() >= 3
        assert np.all(b.limit.values[converged] == b.sizes["stratum"] - 1)
        assert out["strata"].attrs["loss_offset"] == pytest.approx(pb.loss_offset)


# ---------------------------------------------------------------- the atlas's time budget
class _Clock:
    """A fake perf_counter: runs advance it by fixed + per * n seconds."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_within_budget_runs_the_first_n_samples_that_fit(monkeypatch):
    import xarray as xr

    import flowgeom.pipeline as pipeline

    clock = _Clock()
    monkeypatch.setattr(pipeline.time, "perf_counter", clock)
    calls = []

    def run(n, quiet=False, fixed=3.0, per=0.5):
        calls.append(n)
        clock.now += fixed + per * n
        return xr.Dataset(attrs={"n_samples": n})

    ds = pipeline._within_budget(run, 2000, 64, 100.0)
    # t(1) = 3.5 s, t(64) = 35 s -> c = 31.5 / 63 = 0.5 s; (100 - 3.5 - 35) / 0.5 = 123
    assert calls == [1, 64, 123]
    assert ds.attrs["n_samples"] == 123 and ds.attrs["n_requested"] == 2000 and ds.attrs["budget_s"] == 100.0
    calls.clear()
    ds = pipeline._within_budget(run, 2000, 64, 30.0)  # the pilot alone overruns: it is kept, not re-run
    assert calls == [1, 64] and ds.attrs["n_samples"] == 64
    calls.clear()
    ds = pipeline._within_budget(run, 100, 64, 1e6)  # never more than requested
    assert calls == [1, 64, 100] and ds.attrs["n_samples"] == 100
    calls.clear()
    ds = pipeline._within_budget(run, 2000, 64, 100.0, warmup=False)  # c = 35 / 64; (100 - 35) / c = 118.8
    assert calls == [64, 118] and ds.attrs["n_samples"] == 118
    calls.clear()
    ds = pipeline._within_budget(run, 2000, 64, None)  # no budget: one plain run
    assert calls == [2000] and ds.attrs["n_requested"] == 2000 and "budget_s" not in ds.attrs


def test_atlas_budget_default_applies_only_when_counts_are_not_given():
    from flowgeom.cli import ATLAS_BUDGET_S, _atlas_budget, build_parser

    def budget(argv):
        args = build_parser().parse_args(["atlas", *argv])
        return _atlas_budget(args), args.samples, args.transition_samples

    assert budget([]) == (ATLAS_BUDGET_S, 2000, 100)
    assert budget(["--samples", "50"]) == (None, 50, 100)
    assert budget(["--sample", "50"]) == (None, 50, 100)  # an abbreviation argparse accepts
    assert budget(["--transition-samples=0"]) == (None, 2000, 0)
    assert budget(["--budget", "none"]) == (None, 2000, 100)
    assert budget(["--samples", "50", "--budget", "20"]) == (20.0, 50, 100)


def test_atlas_with_a_budget_records_the_request(tmp_path):
    pb = Problem.from_spectrum((3.0, 2.0, 1.0), (3, 3, 3))
    out = flowgeom.atlas(pb, samples=300, transition_samples=20, budget=1e4, seed=0,
                basins_options={"scheduler": "synchronous"})
    assert out["basins"].attrs["n_requested"] == 300 and out["basins"].sizes["sample"] == 300
    assert out["transitions"].attrs["n_requested"] == 20 and out["transitions"].attrs["n_samples"] == 20
