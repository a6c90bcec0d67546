r"""Plateau detection: the visits near critical points along saved gradient-flow trajectories.

A save point is inside a plateau when the loss sits at a critical value, changes slowly in
log-time and the gradient is small (:func:`detect_visits`); runs of such points are fragments,
merged and filtered by their log-time length, then identified at their plateau point by an
:class:`~flowgeom.transitions.Identifier`. The result is the per-visit table :class:`Visits`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Literal, Sequence

import numpy as np
import xarray as xr

from flowgeom.models.base import Model
from flowgeom.problem import Problem
from flowgeom.transitions._common import _check_positive
from flowgeom.transitions.identify import UNIDENTIFIED, AtlasIdentifier, Identifier, StratumNode

__all__ = [
    "Visits",
    "detect_visits",
]


# With unknown critical values, the loss scale of the speed criterion is L - min L, floored at
# this fraction of the trajectory's total loss drop (see `detect_visits`).
UNKNOWN_LEVEL_FLOOR = 0.01


# Default plateau thresholds (see `detect_visits`).
LOSS_RTOL = 0.05
SPEED_RTOL = 1.0
GRAD_RTOL = 0.2
MIN_LOG_DWELL = 0.1
MERGE_LOG_GAP = 0.05


# ----------------------------------------------------------------------------- visits
@dataclass(frozen=True)
class Visits:
    r"""The visits detected along an ensemble of trajectories (one row per visit).

    Rows are sorted by trajectory, then by entry time. All arrays have shape ``(n_visits,)``.

    Attributes
    ----------
    trajectory : ndarray of int
        Index of the trajectory in the ensemble.
    stratum : ndarray of str (object)
        Label of the visited stratum (:data:`UNIDENTIFIED` when a custom identifier kept a
        plateau it could not name).
    t_enter, t_exit : ndarray of float
        Entry and exit times, interpolated between save points; for a final visit (the
        trajectory never left) ``t_exit`` is the last valid save time.
    loss_plateau : ndarray of float
        Loss at the plateau point (the save of smallest gradient norm within the visit).
    grad_norm_plateau : ndarray of float
        Gradient norm there.
    final : ndarray of bool
        Whether the visit lasts to the end of the trajectory's record (a record cut short by
        NaN -- a diverged or failed trajectory -- has no final visit).
    t_jump : ndarray of float
        Time at which the loss crosses the midpoint between this visit's critical value and
        the next visit's (interpolated); NaN for the last visit of a trajectory.
    n_trajectories : int
        Ensemble size (trajectories with no visit count too).
    nodes : tuple of StratumNode
        Every stratum that could be visited (the identifier's nodes after detection).
    n_rejected : int
        Plateau candidates the identifier matched to no stratum (slow passages through a
        critical value, or plateaus at critical points missing from the atlas); not visits.
    options : dict
        The detection thresholds used.
    """

    trajectory: np.ndarray
    stratum: np.ndarray
    t_enter: np.ndarray
    t_exit: np.ndarray
    loss_plateau: np.ndarray
    grad_norm_plateau: np.ndarray
    final: np.ndarray
    t_jump: np.ndarray
    n_trajectories: int
    nodes: tuple[StratumNode, ...] = ()
    n_rejected: int = 0
    options: dict = field(default_factory=dict)

    def __post_init__(self):
        n = len(self.trajectory)
        for name in ("stratum", "t_enter", "t_exit", "loss_plateau", "grad_norm_plateau", "final", "t_jump"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"`{name}` must have one entry per visit ({n}); got {len(getattr(self, name))}.")

    def __len__(self) -> int:
        return len(self.trajectory)

    @property
    def dwell(self) -> np.ndarray:
        """``t_exit - t_enter`` per visit."""
        return self.t_exit - self.t_enter

    def paths(self) -> list[tuple[str, ...]]:
        """Per trajectory, the sequence of visited stratum labels."""
        out: list[list[str]] = [[] for _ in range(self.n_trajectories)]
        for j, lab in zip(self.trajectory, self.stratum):
            out[int(j)].append(str(lab))
        return [tuple(p) for p in out]

    def to_dataset(self) -> xr.Dataset:
        """The per-visit table as a Dataset with dimension ``visit`` (names of flowgeom.schema)."""
        return xr.Dataset(
            {
                "trajectory": ("visit", np.asarray(self.trajectory, dtype=np.int64)),
                "stratum": ("visit", np.asarray(self.stratum, dtype=object)),
                "t_enter": ("visit", np.asarray(self.t_enter, dtype=np.float64)),
                "t_exit": ("visit", np.asarray(self.t_exit, dtype=np.float64)),
                "loss_plateau": ("visit", np.asarray(self.loss_plateau, dtype=np.float64)),
                "grad_norm_plateau": ("visit", np.asarray(self.grad_norm_plateau, dtype=np.float64)),
                "final": ("visit", np.asarray(self.final, dtype=bool)),
                "t_jump": ("visit", np.asarray(self.t_jump, dtype=np.float64)),
            },
            coords={"visit": np.arange(len(self), dtype=np.int64)},
        )


def _traj_arrays(traj) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, np.ndarray, np.ndarray | None]:
    """(ts, ys, loss, grad_norm, status) from a Trajectory-like object, batched."""
    for name in ("ts", "loss", "grad_norm"):
        if not hasattr(traj, name):
            raise TypeError(
                f"`traj` must be a flowgeom.integrate.Trajectory (with ts, ys, loss, grad_norm); it has no `{name}`."
            )
    ts = np.asarray(traj.ts, dtype=np.float64)
    loss = np.asarray(traj.loss, dtype=np.float64)
    g = np.asarray(traj.grad_norm, dtype=np.float64)
    ys = getattr(traj, "ys", None)
    ys = None if ys is None else np.asarray(ys, dtype=np.float64)
    if loss.ndim == 1:
        loss, g = loss[None], g[None]
        ys = None if ys is None else ys[None]
    if ts.ndim != 1 or loss.shape[-1] != ts.shape[0] or g.shape != loss.shape:
        raise ValueError(
            f"`traj` arrays disagree: ts {ts.shape}, loss {loss.shape}, grad_norm {g.shape}; expected "
            "ts (n_save,), loss and grad_norm (N, n_save)."
        )
    if ys is not None and ys.shape[:2] != loss.shape:
        raise ValueError(f"`traj.ys` must have shape (N, n_save, n) = {loss.shape + ('n',)}; got {ys.shape}.")
    if np.any(np.diff(ts) <= 0):
        raise ValueError("`traj.ts` must be strictly increasing.")
    status = getattr(traj, "status", None)
    status = None if status is None else np.asarray(status)
    return ts, ys, loss, g, status


def _levels_and_gaps(nodes: Sequence[StratumNode]) -> tuple[np.ndarray, np.ndarray] | None:
    vals = np.array([n.critical_value for n in nodes if np.isfinite(n.critical_value)], dtype=np.float64)
    if vals.size == 0:
        return None
    levels = np.unique(vals)
    if levels.size == 1:
        gaps = np.array([max(abs(float(levels[0])), 1.0)])
    else:
        d = np.diff(levels)
        gaps = np.empty_like(levels)
        gaps[0] = d[0]
        gaps[-1] = d[-1]
        gaps[1:-1] = np.minimum(d[:-1], d[1:])
    return levels, gaps


def _crossing(tau_a, tau_b, fa, fb, level) -> float:
    """tau where the linear interpolant from (tau_a, fa) to (tau_b, fb) equals level."""
    if not (np.isfinite(fa) and np.isfinite(fb)) or fa == fb:
        return 0.5 * (tau_a + tau_b)
    w = (level - fa) / (fb - fa)
    w = min(1.0, max(0.0, w))
    return tau_a + w * (tau_b - tau_a)


def _detect_one(ts, L, g, lv, *, loss_rtol, speed_rtol, grad_rtol, min_log_dwell, merge_log_gap, time_scale):
    """Plateau fragments of one trajectory: list of dicts with i0, i1, t_enter, t_exit, level, final."""
    ok = np.isfinite(L) & np.isfinite(g)
    n = int(np.argmin(ok)) if not ok.all() else len(ok)
    truncated = n < len(ok)  # a diverged or failed record ends in NaN: its end is not a rest
    if n == 0:
        return [], None
    ts, L, g = ts[:n], L[:n], g[:n]
    t0 = ts[0]
    gmax = float(np.max(g))
    dL = float(L[0] - np.min(L))
    if time_scale is not None:
        tc = time_scale
    elif gmax > 0 and dL > 0:
        tc = dL / gmax**2
        if n > 1 and ts[1] > t0:
            # gmax is the largest gradient at a SAVE: a grid that misses the fast first drop (Linnerud: L from
            # 2.9e5 in t ~ 0.02) underestimates it and tc by orders of magnitude, flattening log-time so that
            # every later plateau looks shorter than min_log_dwell; log-time cannot resolve below the first save
            tc = min(tc, float(ts[1] - t0))
    else:
        tc = max(ts[-1] - t0, 1.0) * 1e-3
    tau = np.log(ts - t0 + tc)
    if lv is not None:
        levels, gaps = lv
        cidx = np.argmin(np.abs(L[:, None] - levels[None, :]), axis=1)
        gap_i = gaps[cidx]
    else:
        # critical values unknown: the loss scale at a save is the loss still to be lost,
        # L - min L, floored at a fraction of the whole drop (so that the final minimum, where
        # both vanish, stays a plateau)
        levels = np.array([np.nan])
        scale = dL if dL > 0 else 1.0
        gap_i = np.maximum(L - np.min(L), UNKNOWN_LEVEL_FLOOR * scale)
        gaps = None
        cidx = np.zeros(n, dtype=int)

    def phi(i, c):
        """Combined margin at save i for level c; inside the plateau when <= 1."""
        gap = gaps[c] if gaps is not None else gap_i[i]
        f_loss = 0.0 if lv is None else abs(L[i] - levels[c]) / (loss_rtol * gap)
        f_speed = (ts[i] - t0) * g[i] ** 2 / (speed_rtol * gap)
        f_grad = 0.0 if gmax == 0 else g[i] / (grad_rtol * gmax)
        return max(f_loss, f_speed, f_grad)

    f_loss_v = np.zeros(n) if lv is None else np.abs(L - levels[cidx]) / (loss_rtol * gap_i)
    f_speed_v = (ts - t0) * g**2 / (speed_rtol * gap_i)
    f_grad_v = np.zeros(n) if gmax == 0 else g / (grad_rtol * gmax)
    inside = np.maximum(np.maximum(f_loss_v, f_speed_v), f_grad_v) <= 1.0
    frags = []
    i = 0
    while i < n:
        if not inside[i]:
            i += 1
            continue
        c = cidx[i]
        j = i
        while j + 1 < n and inside[j + 1] and cidx[j + 1] == c:
            j += 1
        frags.append({"i0": i, "i1": j, "c": int(c)})
        i = j + 1

    def log_margin(i, c):
        v = phi(i, c)
        return math.log(v) if v > 0 else -np.inf

    for f in frags:
        i0, i1, c = f["i0"], f["i1"], f["c"]
        if i0 == 0:
            f["tau_enter"] = tau[0]
        else:
            a, b = log_margin(i0 - 1, c), log_margin(i0, c)
            f["tau_enter"] = _crossing(tau[i0 - 1], tau[i0], a, max(b, -50.0), 0.0)
        if i1 == n - 1:
            f["tau_exit"] = tau[n - 1]
            f["final"] = not truncated
        else:
            a, b = log_margin(i1, c), log_margin(i1 + 1, c)
            f["tau_exit"] = _crossing(tau[i1], tau[i1 + 1], max(a, -50.0), b, 0.0)
            f["final"] = False

    def same_level(p, f):
        if lv is not None:
            return p["c"] == f["c"]
        # levels unknown: the loss must not have dropped between the fragments
        return abs(L[p["i1"]] - L[f["i0"]]) <= loss_rtol * gap_i[p["i1"]]

    def merge(fr, max_gap):
        out = []
        for f in fr:
            if out and same_level(out[-1], f) and f["tau_enter"] - out[-1]["tau_exit"] <= max_gap:
                p = out[-1]
                p["i1"], p["tau_exit"], p["final"] = f["i1"], f["tau_exit"], f["final"]
            else:
                out.append(dict(f))
        return out

    frags = merge(frags, merge_log_gap)
    frags = [f for f in frags if f["final"] or f["tau_exit"] - f["tau_enter"] >= min_log_dwell]
    frags = merge(frags, merge_log_gap)
    for f in frags:
        f["t_enter"] = float(np.exp(f["tau_enter"]) - tc + t0) if f["i0"] > 0 else float(t0)
        f["t_exit"] = float(np.exp(f["tau_exit"]) - tc + t0) if f["i1"] < n - 1 else float(ts[n - 1])
        f["t_enter"] = min(max(f["t_enter"], ts[max(f["i0"] - 1, 0)]), ts[f["i0"]])
        if f["i1"] < n - 1:
            f["t_exit"] = min(max(f["t_exit"], ts[f["i1"]]), ts[f["i1"] + 1])
        seg = g[f["i0"] : f["i1"] + 1]
        f["ip"] = f["i0"] + int(np.argmin(seg))
        f["level"] = float(levels[f["c"]]) if lv is not None else float("nan")
    return frags, (ts, L, tau, tc, t0)


def detect_visits(
    traj: Any,
    model_or_problem: Model | Problem,
    strata: Sequence[Any] | None = None,
    *,
    identify: Identifier | None = None,
    coordinates: Literal["auto", "canonical", "original"] = "auto",
    loss_rtol: float = LOSS_RTOL,
    speed_rtol: float = SPEED_RTOL,
    grad_rtol: float = GRAD_RTOL,
    min_log_dwell: float = MIN_LOG_DWELL,
    merge_log_gap: float = MERGE_LOG_GAP,
    time_scale: float | None = None,
) -> Visits:
    r"""Detect the plateaus (visits near critical points) along saved gradient-flow trajectories.

    For the flow :math:`\dot\theta = -\nabla L(\theta)`, the loss changes in log-time at the
    rate :math:`|dL/d\log t| = t\,\|\nabla L\|^2`. A save point at time t (relative to the
    first save :math:`t_0`) is *inside a plateau at level* :math:`L_c` (the nearest critical
    value) when all three margins are at most one:

    .. math::

        \frac{|L - L_c|}{\rho_L\, g_c} \le 1, \qquad
        \frac{(t - t_0)\,\|\nabla L\|^2}{\rho_v\, g_c} \le 1, \qquad
        \frac{\|\nabla L\|}{\rho_g \max_t \|\nabla L\|} \le 1,

    where :math:`g_c` is the gap from :math:`L_c` to the nearest other critical value. The
    first says the loss sits at a critical value, the second that it is not moving on the
    log-time scale (a fast passage through the level fails it, however small the time step),
    the third that the gradient is small compared with the trajectory's own scale (which a
    large initialization fails at t near 0, where the second condition is void). Runs of
    inside points at one level are *fragments*; their entry and exit times are interpolated
    between save points, linearly in log-time :math:`\tau = \log(t - t_0 + t_c)`, at the
    crossing of the logarithm of the combined margin (the largest of the three) through zero.
    Fragments at one level separated by at most ``merge_log_gap`` in :math:`\tau` are merged;
    a fragment that does not last to the end of the record must last at least
    ``min_log_dwell`` in :math:`\tau`. Each remaining fragment is identified at its plateau
    point (the save of smallest gradient norm); a candidate the identifier matches to no
    stratum is not a visit (a slow passage that only crossed a critical *value*) and is
    counted in :attr:`Visits.n_rejected`. Consecutive visits to one stratum merge. Whether a
    short plateau counts as a visit is a matter of these thresholds: with larger
    initializations the plateaus shrink and the saddles are "skipped".

    Parameters
    ----------
    traj : Trajectory
        A :class:`flowgeom.integrate.Trajectory` (or any object with ``ts`` (n_save,),
        ``loss``, ``grad_norm`` (N, n_save) and ``ys`` (N, n_save, n) or None; NaN marks the
        end of a diverged record).
    model_or_problem : Model or Problem
        The model the trajectories ran on, or the :class:`Problem` (then the model is
        ``problem.network(coordinates)``, the strata default to the atlas and ``identify`` to
        :class:`AtlasIdentifier`).
    strata : sequence of Stratum or StratumNode, optional
        The critical sets: their critical values are the plateau levels. Default: the atlas
        for a Problem, ``identify.nodes`` otherwise; with neither, plateaus are found by the
        speed and gradient criteria alone, with :math:`g_c` replaced by the loss still to be
        lost, :math:`\max(L - \min_t L,\ 0.01\,(L(t_0) - \min_t L))` (``UNKNOWN_LEVEL_FLOOR``):
        a plateau is then where the loss changes slowly in log-time compared with what
        remains to be learned.
    identify : Identifier, optional
        Maps a plateau point to a stratum. Default: :class:`AtlasIdentifier` of the atlas of
        ``model_or_problem`` (closed form for a Problem, a search for a bare model).
    coordinates : {"auto", "canonical", "original"}, default "auto"
        For a Problem: the coordinates the trajectories were integrated in.
    loss_rtol : float, default 0.05
        :math:`\rho_L`: largest :math:`|L - L_c|` as a fraction of the gap :math:`g_c`.
    speed_rtol : float, default 1.0
        :math:`\rho_v`: largest log-time speed :math:`t\|\nabla L\|^2` as a fraction of
        :math:`g_c` (at 1, the loss would need at least one e-fold of time to cross the gap).
        Late plateaus are short compared with t, so a tight value would miss them; fast
        passages are rejected by this criterion and by ``min_log_dwell``.
    grad_rtol : float, default 0.2
        :math:`\rho_g`: largest gradient norm as a fraction of the trajectory's maximum.
    min_log_dwell : float, default 0.1
        Shortest accepted visit, in log-time :math:`\tau` (a visit lasting to the end of the
        record is exempt).
    merge_log_gap : float, default 0.05
        Fragments at one level closer than this in :math:`\tau` are one visit.
    time_scale : float or None, default None
        :math:`t_c` of the log-time :math:`\tau = \log(t - t_0 + t_c)`; default per
        trajectory :math:`(L(t_0) - \min_t L) / \max_t\|\nabla L\|^2`, the shortest time over
        which the flow could lose its whole loss drop, capped at the first save time :math:`t_1 - t_0`
        (the maximum is over the saves, which can miss a fast first drop by orders of magnitude).

    Returns
    -------
    Visits

    Raises
    ------
    TypeError
        ``traj`` is not Trajectory-like, or ``model_or_problem`` neither a Model nor a Problem.
    ValueError
        A threshold is not positive, or the trajectory arrays disagree in shape.

    Examples
    --------
    >>> import numpy as np
    >>> from flowgeom import Problem
    >>> from flowgeom.flow import SaveAt, integrate
    >>> from flowgeom.transitions import detect_visits
    >>> pb = Problem.from_spectrum([4.0, 2.0, 1.0], (5, 4, 3))
    >>> net = pb.network()
    >>> theta0 = 1e-6 * np.random.default_rng(0).standard_normal((2, net.n_params))
    >>> traj = integrate(net, theta0, 40.0, rtol=1e-8, atol=1e-12, saveat=SaveAt(n_log=300))
    >>> detect_visits(traj, pb).paths()
    [('{}', '{0}', '{0,1}', '{0,1,2}'), ('{}', '{0}', '{0,1}', '{0,1,2}')]
    """
    loss_rtol = _check_positive("loss_rtol", loss_rtol)
    speed_rtol = _check_positive("speed_rtol", speed_rtol)
    grad_rtol = _check_positive("grad_rtol", grad_rtol)
    min_log_dwell = _check_positive("min_log_dwell", min_log_dwell, allow_zero=True)
    merge_log_gap = _check_positive("merge_log_gap", merge_log_gap, allow_zero=True)
    if time_scale is not None:
        time_scale = _check_positive("time_scale", time_scale)
    ts, ys, loss, gnorm, _ = _traj_arrays(traj)
    if identify is None:
        if isinstance(model_or_problem, Problem):
            from flowgeom.linear.atlas import ClosedFormAtlas

            model_or_problem = ClosedFormAtlas(model_or_problem, coordinates=coordinates)
        identify = AtlasIdentifier(model_or_problem)
    if not callable(identify):
        raise TypeError(f"`identify` must be callable (an Identifier); got {type(identify).__name__}.")
    if strata is not None:
        level_nodes = [StratumNode.from_stratum(s) for s in strata]
    else:
        level_nodes = list(getattr(identify, "nodes", ()))
    lv = _levels_and_gaps(level_nodes) if level_nodes else None
    # the model's loss carries the data offset above the critical values
    offset = float(getattr(identify, "loss_offset", 0.0))
    if lv is not None and offset:
        lv = (lv[0] + offset, lv[1])

    rows: dict[str, list] = defaultdict(list)
    n_rejected = 0
    for j in range(loss.shape[0]):
        frags, aux = _detect_one(
            ts, loss[j], gnorm[j], lv,
            loss_rtol=loss_rtol, speed_rtol=speed_rtol, grad_rtol=grad_rtol,
            min_log_dwell=min_log_dwell, merge_log_gap=merge_log_gap, time_scale=time_scale,
        )
        if not frags:
            continue
        ts_j, L_j, tau_j, tc_j, t0_j = aux
        visits = []
        for f in frags:
            ip = f["ip"]
            theta = None if ys is None else ys[j, ip]
            node = identify(theta, float(L_j[ip]))
            if node is None:
                n_rejected += 1
                continue
            visits.append(
                {
                    "label": node.label,
                    "value": (f["level"] if not np.isfinite(node.critical_value) else node.critical_value + offset),
                    "i0": f["i0"], "i1": f["i1"], "ip": ip,
                    "t_enter": f["t_enter"], "t_exit": f["t_exit"], "final": f["final"],
                }
            )
        # merge consecutive visits to one stratum (identified, so one plateau split by a blip)
        merged = []
        for v in visits:
            if merged and v["label"] != UNIDENTIFIED and merged[-1]["label"] == v["label"]:
                p = merged[-1]
                if gnorm[j, v["ip"]] < gnorm[j, p["ip"]]:
                    p["ip"] = v["ip"]
                p["i1"], p["t_exit"], p["final"] = v["i1"], v["t_exit"], v["final"]
            else:
                merged.append(v)
        for k, v in enumerate(merged):
            t_jump = float("nan")
            if k + 1 < len(merged):
                w = merged[k + 1]
                a = v["value"] if np.isfinite(v["value"]) else L_j[v["ip"]]
                b = w["value"] if np.isfinite(w["value"]) else L_j[w["ip"]]
                level = 0.5 * (a + b)
                t_jump = _level_crossing(ts_j, L_j, tau_j, tc_j, t0_j, v["i1"], w["i0"], level)
            rows["trajectory"].append(j)
            rows["stratum"].append(v["label"])
            rows["t_enter"].append(v["t_enter"])
            rows["t_exit"].append(v["t_exit"])
            rows["loss_plateau"].append(float(L_j[v["ip"]]))
            rows["grad_norm_plateau"].append(float(gnorm[j, v["ip"]]))
            rows["final"].append(bool(v["final"]))
            rows["t_jump"].append(t_jump)

    nodes = tuple(StratumNode.from_stratum(n) for n in getattr(identify, "nodes", ())) or tuple(level_nodes)
    stratum = np.empty(len(rows["stratum"]), dtype=object)
    stratum[:] = rows["stratum"]
    return Visits(
        trajectory=np.asarray(rows["trajectory"], dtype=np.int64),
        stratum=stratum,
        t_enter=np.asarray(rows["t_enter"], dtype=np.float64),
        t_exit=np.asarray(rows["t_exit"], dtype=np.float64),
        loss_plateau=np.asarray(rows["loss_plateau"], dtype=np.float64),
        grad_norm_plateau=np.asarray(rows["grad_norm_plateau"], dtype=np.float64),
        final=np.asarray(rows["final"], dtype=bool),
        t_jump=np.asarray(rows["t_jump"], dtype=np.float64),
        n_trajectories=int(loss.shape[0]),
        nodes=nodes,
        n_rejected=int(n_rejected),
        options={
            "loss_rtol": loss_rtol,
            "speed_rtol": speed_rtol,
            "grad_rtol": grad_rtol,
            "min_log_dwell": min_log_dwell,
            "merge_log_gap": merge_log_gap,
            "time_scale": -1.0 if time_scale is None else time_scale,
        },
    )


def _level_crossing(ts, L, tau, tc, t0, i_from, i_to, level) -> float:
    """First time in saves [i_from, i_to] where L drops through `level` (interpolated in tau)."""
    i_to = min(i_to, len(L) - 1)
    for i in range(max(i_from, 0) + 1, i_to + 1):
        if L[i] <= level < L[i - 1]:
            tau_x = _crossing(tau[i - 1], tau[i], L[i - 1], L[i], level)
            return float(np.exp(tau_x) - tc + t0)
    return float("nan")
