"""Transition sampling on deep networks and data: the depth-aware init scale, its refusal, the progress bar."""

from __future__ import annotations

import numpy as np
import pytest

from flowgeom import Problem
from flowgeom._validate import InputError
from flowgeom.flow import SaveAt, integrate
from flowgeom.linear.theory import _scalar_chain_time
from flowgeom.pipeline import atlas as run_atlas
from flowgeom.transitions import sample_transitions
from flowgeom.transitions.sample import _integrate_ensemble, default_init_scale

NUMPY = {"backend": "numpy"}


def test_default_scale_escapes_in_reasonable_time():
    # independent reference: the balanced scalar chain (closed form, checked against solve_ivp in
    # test_transitions) for the top mode s_1 = 3 escapes within ~1e3 time units at the default scale
    for H in (1, 2, 3):
        t_esc = _scalar_chain_time(3.0, default_init_scale(H), H)[0]
        assert 0 < t_esc < 1e3, (H, t_esc)
    assert default_init_scale(1) == 1e-8 and default_init_scale(2) == pytest.approx(1e-2)


def test_h2_tiny_scale_is_refused_not_an_empty_graph():
    pb = Problem.from_spectrum((3.0, 2.0, 1.0), (3, 3, 3, 3))
    # the gradient at eps = 1e-8 (H = 2) is ~ s eps^2, far below grad_tol: every trajectory would "converge" at t = 0
    g = np.linalg.norm(pb.network().grad(1e-8 * np.random.default_rng(0).standard_normal((4, pb.network().n_params))),
                       axis=1)
    assert np.all(g < 1e-10)
    with pytest.raises(InputError, match=r"`init_scale` = 1e-08 is too small for depth H = 2.*init_scale >= 0\.01"):
        sample_transitions(pb, 4, init_scale=1e-8, seed=0)
    with pytest.raises(InputError, match="too small for depth H = 2"):  # the pipeline refuses before the basins
        run_atlas(pb, samples=1_000_000, transition_samples=4, transition_scale=1e-8)
    ds = sample_transitions(pb, 4, seed=0, integrate_options=NUMPY)  # the default scale sees the saddles
    assert ds.attrs["init_scale"] == pytest.approx(0.01)
    assert ds.attrs["dominant_path"] == ["{}", "{0}", "{0,1}", "{0,1,2}"]


def test_h1_default_scale_unchanged():
    pb = Problem.from_spectrum((3.0, 2.0, 1.0), (3, 3, 3))
    ds = sample_transitions(pb, 2, seed=0, integrate_options=NUMPY)
    assert ds.attrs["init_scale"] == 1e-8


@pytest.mark.parametrize("method, x_scale, t1", [("dopri5", 1.0, 20.0), ("auto", 300.0, 1.0)])
def test_progress_chunks_give_the_same_trajectories(method, x_scale, t1):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((3, 12)) * np.array([[1.0], [3.0], [x_scale]])  # 300: raw units, auto picks "rosenbrock"
    Y = rng.standard_normal((2, 12))
    net = Problem.from_data(X, Y, (3, 2, 2)).network("original")
    theta0 = 0.1 * rng.standard_normal((5, net.n_params))
    kw = dict(rtol=1e-6, atol=1e-10, saveat=SaveAt(n_log=40), grad_tol=1e-8, **NUMPY)
    one = integrate(net, theta0, t1, method=method, **kw)
    chunked = _integrate_ensemble(net, theta0, t1, method=method, progress=True, **kw)
    assert chunked.method == one.method == ("dopri5" if method == "dopri5" else "rosenbrock")
    for name in ("loss", "grad_norm", "y_final", "t_final", "status", "n_steps", "ys"):
        np.testing.assert_array_equal(getattr(chunked, name), getattr(one, name), err_msg=name)
    if method == "auto":
        assert chunked.info["requested"] == "auto" and chunked.info["stiff"] == one.info["stiff"] is True


def test_progress_bar_is_written_to_a_log_too_and_silent_when_not_asked(capsys):
    """Off a terminal (pytest's capture) a bar that was asked for still reaches stderr, with its count;
    progress=False writes nothing."""
    pb = Problem.from_spectrum((3.0, 2.0, 1.0), (3, 3, 3))
    sample_transitions(pb, 4, seed=0, progress=True, integrate_options=NUMPY)
    err = capsys.readouterr().err
    assert "transitions" in err and "4/4" in err
    sample_transitions(pb, 4, seed=0, progress=False, integrate_options=NUMPY)
    assert "transitions" not in capsys.readouterr().err


def test_progress_bar_shows_an_eta_on_a_terminal(monkeypatch):
    import io

    import tqdm.auto

    buf = io.StringIO()
    real = tqdm.auto.tqdm

    def spy(*a, **k):  # a terminal: what tqdm prints when it is not disabled
        k["disable"] = False if k.get("disable") is None else k["disable"]
        k["file"] = buf
        return real(*a, **k)

    monkeypatch.setattr(tqdm.auto, "tqdm", spy)
    pb = Problem.from_spectrum((3.0, 2.0, 1.0), (3, 3, 3))
    sample_transitions(pb, 4, seed=0, progress=True, integrate_options=NUMPY)
    text = buf.getvalue()
    assert "transitions" in text and "4/4" in text and "<" in text  # elapsed<remaining


def test_claims_progress_bar(monkeypatch, capsys):
    import io

    import tqdm.auto

    import flowgeom.audit as audit

    calls = []

    def check_a(ctx):
        calls.append("a")
        return []

    def check_b(ctx):
        calls.append("b")
        return []

    monkeypatch.setattr(audit, "_CHECKS", [check_a, check_b])
    assert audit.verify_claims(quick=True, progress=True) == [] and calls == ["a", "b"]
    assert "2/2" in capsys.readouterr().err  # not a terminal: written all the same (a log)
    buf = io.StringIO()
    real = tqdm.auto.tqdm

    def spy(*a, **k):
        k["disable"] = False if k.get("disable") is None else k["disable"]
        k["file"] = buf
        return real(*a, **k)

    monkeypatch.setattr(tqdm.auto, "tqdm", spy)
    audit.verify_claims(quick=True, progress=True)
    assert "claims" in buf.getvalue() and "2/2" in buf.getvalue() and "b" in buf.getvalue()
    buf.truncate(0)
    audit.verify_claims(quick=True, progress=False)
    assert buf.getvalue().strip("\x00") == ""


def test_raw_data_default_horizon_reaches_the_minimum():
    # Linnerud in raw units (min singular value of X 16.6): the former horizon t1 / S_min^2 = 0.33 stopped every
    # trajectory on the {0,1} plateau; the loss must come down to the global minimum value (offset + 0)
    from flowgeom import datasets

    X, Y = datasets.load_linnerud()
    pb = Problem.from_data(X, Y, (3, 3, 3))
    ds = sample_transitions(pb, 2, seed=0)
    final = ds["loss"].values[:, -1]
    gap = 0.5 * pb.singular_values[-1] ** 2  # the {0,1} plateau lies this far above the minimum
    assert np.all(np.abs(final - pb.loss_offset) < 1e-3 * gap), (final - pb.loss_offset, ds.attrs["t1"])


def test_plateaus_after_a_fast_first_drop_are_detected():
    # whitened Linnerud: s = (767.7, 7.09, 0.818); the loss falls from 2.9e5 to the {0} level by t ~ 0.03, between
    # log-spaced saves, so the largest SAVED gradient underestimates the true one and the old log-time scale
    # (L(t0) - min L) / max||g||^2 ~ 2.8e3 squeezed the whole record into 0.03 e-folds: every plateau was dropped.
    # Reference: the closed-form levels {0} = (s_2^2 + s_3^2)/2 and {0,1} = s_3^2/2 lie on long flat stretches of the
    # loss curve (checked here on the record itself), so the path must visit them.
    from flowgeom import datasets
    from flowgeom._data import whiten

    X, Y = datasets.load_linnerud()
    pb = Problem.from_data(whiten(X), Y, (3, 3, 3))
    ds = sample_transitions(pb, 2, seed=0)
    s = pb.singular_values
    L = ds["loss"].values[0] - pb.loss_offset
    for level in (0.5 * (s[1] ** 2 + s[2] ** 2), 0.5 * s[2] ** 2):
        assert np.sum(np.abs(L - level) < 1e-3 * 0.5 * s[2] ** 2) >= 20  # >= 20 log-spaced saves on the plateau
    assert ds.attrs["dominant_path"] == ["{}", "{0}", "{0,1}", "{0,1,2}"]


@pytest.mark.parametrize("progress", [False, True])
def test_numpy_chunks_on_worker_processes_give_the_same_trajectories(monkeypatch, progress):
    """Where no compiled kernel runs the flow, several chunks go to worker processes; the trajectories are
    those of one batched call, in order (here 20 trajectories in chunks of 8 on 2 workers)."""
    import flowgeom._processes as processes

    calls = []
    real = processes.run_processes

    def spy(fn, first, tasks, workers, handle):
        calls.append((len(tasks), workers))
        return real(fn, first, tasks, workers, handle)

    monkeypatch.setattr(processes, "run_processes", spy)
    monkeypatch.setattr(processes, "_usable_cpus", lambda: 2)
    net = Problem.from_spectrum((2.0, 1.0), (3, 3, 2)).network()
    theta0 = 0.3 * np.random.default_rng(3).standard_normal((20, net.n_params))
    kw = dict(rtol=1e-7, atol=1e-10, saveat=SaveAt(n_log=30), grad_tol=1e-8, **NUMPY)
    one = integrate(net, theta0, 30.0, method="dopri5", **kw)
    parts = _integrate_ensemble(net, theta0, 30.0, method="dopri5", progress=progress, **kw)
    assert calls == [(3, 2)]
    for name in ("loss", "grad_norm", "y_final", "t_final", "status", "n_steps", "ys"):
        np.testing.assert_array_equal(getattr(parts, name), getattr(one, name), err_msg=name)
