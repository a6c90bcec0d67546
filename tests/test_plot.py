"""Agg smoke tests of flowgeom.plot: every function draws on / returns a matplotlib Axes."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import xarray as xr

from flowgeom import Problem
from flowgeom.transitions import build_transition_graph, read_graphml, sample_transitions, save_transitions


@pytest.fixture(scope="module")
def tds():
    pb = Problem.from_spectrum((4.0, 2.0, 1.0), (5, 4, 3))
    return sample_transitions(pb, 6, init_scale=1e-5, seed=3, n_save=200, integrate_options={"backend": "numpy"})


def test_import_does_not_load_matplotlib():
    import subprocess

    code = "import flowgeom, flowgeom.plot, flowgeom.transitions, sys; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_transition_graph_plot_from_dataset_graph_and_file(tds, tmp_path):
    from matplotlib.axes import Axes

    from flowgeom.plot import plot_transition_graph

    ax = plot_transition_graph(tds)
    assert isinstance(ax, Axes)
    # node and edge artists were drawn: one marker per visited stratum
    assert len(ax.collections) >= 1
    _, gm = save_transitions(tds, tmp_path)
    ax2 = plot_transition_graph(read_graphml(gm), labels=False, probabilities=False)
    assert isinstance(ax2, Axes)
    with pytest.raises(TypeError, match="`graph`"):
        plot_transition_graph(42)


def test_loss_curves_draw_critical_values(tds):
    from matplotlib.figure import Figure

    from flowgeom.plot import plot_loss_curves

    fig = Figure()
    ax = fig.add_subplot()
    out = plot_loss_curves(tds, ax=ax, max_curves=3)
    assert out is ax
    assert ax.get_xscale() == "log"
    ys = sorted(round(line.get_ydata()[0], 9) for line in ax.get_lines() if len(set(line.get_ydata())) == 1)
    assert set(np.round(tds["critical_value"].values, 9)) <= set(ys)
    with pytest.raises(ValueError, match="`ds`"):
        plot_loss_curves(xr.Dataset())


def test_jump_times_strata_basins_and_directory(tds, tmp_path):
    from matplotlib.axes import Axes

    from flowgeom.plot import plot_basins, plot_directory, plot_jump_times, plot_strata

    assert isinstance(plot_jump_times(tds), Axes)
    strata = xr.Dataset(
        {"rank": ("stratum", [0, 1, 2]), "critical_value": ("stratum", [2.5, 0.5, 0.0]),
         "kind": ("stratum", np.array(["strict_saddle", "strict_saddle", "global_min"], dtype=object)),
         "n_negative": ("stratum", [2, 1, 0]), "n_zero": ("stratum", [2, 3, 4]), "n_positive": ("stratum", [2, 2, 2])},
        coords={"label": ("stratum", np.array(["{}", "{0}", "{0,1}"], dtype=object))},
    )
    basins = xr.Dataset(
        {"fraction": ("stratum", [0.0, 0.1, 0.9]), "fraction_low": ("stratum", [0.0, 0.05, 0.85]),
         "fraction_high": ("stratum", [0.02, 0.15, 0.95])},
        coords={"label": ("stratum", np.array(["{}", "{0}", "{0,1}"], dtype=object))},
        attrs={"ci_level": 0.95, "ci_method": "wilson"},
    )
    assert isinstance(plot_strata(strata), Axes)
    assert isinstance(plot_basins(basins), Axes)
    paths = plot_directory({"strata": strata, "basins": basins, "transitions": tds}, tmp_path)
    assert [p.name for p in paths] == [
        "strata.png", "basins.png", "transitions_graph.png", "transitions_loss.png", "transitions_theory.png"
    ]
    assert all(p.stat().st_size > 1000 for p in paths)


def test_empty_graph_plot():
    from matplotlib.axes import Axes

    from flowgeom.plot import plot_transition_graph
    from flowgeom.transitions import Visits

    empty = Visits(
        trajectory=np.zeros(0, int), stratum=np.zeros(0, object), t_enter=np.zeros(0), t_exit=np.zeros(0),
        loss_plateau=np.zeros(0), grad_norm_plateau=np.zeros(0), final=np.zeros(0, bool), t_jump=np.zeros(0),
        n_trajectories=2,
    )
    assert isinstance(plot_transition_graph(build_transition_graph(empty)), Axes)
