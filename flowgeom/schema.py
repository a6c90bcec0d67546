r"""The flowgeom Dataset schemas, in code: every variable's dimensions, meaning and units.

flowgeom writes four kinds of :class:`xarray.Dataset` (plus the ``trajectory`` Dataset of
:func:`flowgeom.io.to_dataset`):

- ``strata``: the critical sets :math:`\mathcal{C}_k = \{\theta : \nabla L(\theta) = 0,\ L(\theta) = c_k\}`
  (one row per stratum, one per sampled point), written by
  :func:`flowgeom.linear.build_strata_dataset` and :func:`flowgeom.nonlinear_atlas.nonlinear_strata_dataset`;
- ``basins``: where the gradient flow :math:`\dot\theta = -\nabla L(\theta)` started at sampled
  initializations ends, and the fraction of each stratum with its confidence interval
  (:func:`flowgeom.basins.sample_basins`);
- ``transitions``: the saddle-to-saddle graph (edge, visit, node tables), the loss curves and the
  Saxe et al. (2014) theory beside the observation (:func:`flowgeom.transitions.transitions_dataset`);
- ``claims``: the audit of the paper's claims (:func:`flowgeom.audit.claims_dataset`).

:data:`SCHEMAS` maps each kind to a table ``name -> VariableSpec(dims, long_name, description,
units)``. :func:`describe_variables` writes ``long_name``, ``description`` and (where there are any)
``units`` on every variable and coordinate it knows, following the CF conventions (Eaton et al.,
*NetCDF Climate and Forecast Metadata Conventions*, version 1.11); :func:`global_attrs` gives the CF
global attributes; :func:`infer_kind` recognises a Dataset's kind. Unknown variables are left as
they are. ``units = "1"`` marks a dimensionless ratio (CF); flow time, losses and gradient norms are
in the model's own (dimensionless) units and carry ``units = "1"`` too.
"""

from __future__ import annotations

import datetime as _dt
import re
from typing import NamedTuple

import xarray as xr

from flowgeom._validate import check_choice
from flowgeom._version import __version__

__all__ = [
    "GLOBAL_ATTR_DESCRIPTIONS",
    "KINDS",
    "REFERENCES",
    "SCHEMAS",
    "VariableSpec",
    "describe_variables",
    "global_attrs",
    "infer_kind",
    "variable_spec",
]


class VariableSpec(NamedTuple):
    """One variable of a schema: its dimensions, CF ``long_name``, one-sentence meaning, units."""

    dims: tuple[str, ...]
    long_name: str
    description: str
    units: str | None = None


def _v(dims, long_name, description, units=None) -> VariableSpec:
    return VariableSpec(tuple(dims), long_name, description, units)


KINDS = ("strata", "basins", "transitions", "claims", "trajectory")
"""The Dataset kinds with a schema."""

REFERENCES = (
    "Z. Liao, Y. Chitour, R. Couillet, Almost global convergence to global minima for gradient descent "
    "in deep linear networks; A. M. Saxe, J. L. McClelland, S. Ganguli, Exact solutions to the nonlinear "
    "dynamics of learning in deep linear neural networks, ICLR 2014"
)
"""The papers flowgeom's Datasets measure (CF ``references``)."""

_TITLES = {
    "strata": "flowgeom strata: the critical sets of the loss",
    "basins": "flowgeom basins: where gradient flow from sampled initializations ends",
    "transitions": "flowgeom transitions: the saddle-to-saddle graph of gradient flow",
    "claims": "flowgeom claims: measured audit of the paper's claims",
    "trajectory": "flowgeom trajectories of gradient flow",
}

_S, _P = ("stratum",), ("point",)
_INERTIA = {
    "n_negative": "number of negative Hessian eigenvalues (escape directions)",
    "n_zero": "number of zero Hessian eigenvalues (within the zero tolerance)",
    "n_positive": "number of positive Hessian eigenvalues",
}
_ONE = "1"


def _stratum_core(dim=_S) -> dict[str, VariableSpec]:
    return {
        "label": _v(dim, "stratum label", "name of the critical set: the learned singular directions '{0,1}' "
                    "(deep linear) or 'c<k>' in order of decreasing critical value (searched atlas)"),
        "rank": _v(dim, "rank of the end-to-end map", "rank of W_{H+1}...W_1 on the set (-1 when not defined)"),
        "critical_value": _v(dim, "critical value", "loss L(theta) on the critical set", _ONE),
        "kind": _v(dim, "kind of critical set", "global_min, local_min, strict_saddle or degenerate"),
    }


_STRATA: dict[str, VariableSpec] = {
    **_stratum_core(),
    **{k: _v(_S, k.replace("_", " "), f"{d} at the stratum's representative point") for k, d in _INERTIA.items()},
    **{f"{k}_{m}": _v(_S, f"{m}imum {k.replace('_', ' ')}", f"{m}imum over the sampled points of the {d}")
       for k, d in _INERTIA.items() for m in ("min", "max")},
    "manifold_dim": _v(_S, "manifold dimension", "dimension of the critical manifold through the points"),
    "manifold_dim_min": _v(_S, "minimum manifold dimension", "minimum over the sampled points of manifold_dim"),
    "manifold_dim_max": _v(_S, "maximum manifold dimension", "maximum over the sampled points of manifold_dim"),
    "morse_bott": _v(_S, "Morse-Bott", "true when n_zero equals the manifold dimension at every sampled point"),
    "stable_codim": _v(_S, "codimension of the stable set", "n_negative where every sampled point is "
                       "Morse-Bott; -1 = undecided by linearization"),
    "stable_codim_lower": _v(_S, "lower bound on the stable-set codimension", "a lower bound valid without the "
                             "Morse-Bott property; -1 = none"),
    "stable_codim_reason": _v(_S, "why the stable codimension is (un)decided", "rule that decided stable_codim"),
    "escape_dim": _v(_S, "escape dimension", "n_negative + n_zero: directions not contracted by the linearized flow"),
    "kind_closed_form": _v(_S, "kind from the closed form", "kind predicted by the closed-form deep-linear theory"),
    "paper_kind": _v(_S, "kind stated by the paper", "kind of the set according to Liao, Chitour & Couillet"),
    "paper_dim_bound": _v(_S, "paper's dimension bound", "D_C^r of Lemma 3 (-1 when the paper gives none)"),
    "paper_escape_bound": _v(_S, "paper's escape bound", "U_S^r of Lemma 4 (-1 when the paper gives none)"),
    "paper_codim_bound": _v(_S, "paper's codimension bound", "U_S^r - D_C^r of the proof of Theorem 1 (-1: none)"),
    "contradicts_paper": _v(_S, "contradicts the paper", "true when a measured count violates a paper bound"),
    "paper_check": _v(_S, "paper check", "which paper bound was checked and how it came out"),
    "n_points": _v(_S, "sampled points", "number of points sampled and measured on the set"),
    "max_grad_norm": _v(_S, "maximum gradient norm", "largest ||grad L|| over the sampled points", _ONE),
    "max_loss_error": _v(_S, "maximum loss error", "largest |L(theta) - critical_value| over the points", _ONE),
    "spectral_gap": _v(_S, "spectral gap", "gap between the zero and the nonzero Hessian eigenvalues", _ONE),
    "count": _v(_S, "searches converged here", "number of searches that converged to the set"),
    "n_members": _v(_S, "members", "number of refined points identified with the set"),
    "inertia_decided": _v(_S, "inertia decided", "true when the spectral gap decides every inertia"),
    "certified": _v(_S, "certified global minimum", "true when the set is a global minimum at loss 0 (round-off)"),
    "representative": _v(("stratum", "param"), "representative point", "parameter vector theta of one point "
                         "of the set"),
    "measured": _v(_S, "measured", "true when the set was sampled and linearized (false: listed only)"),
    "key": _v(_S, "atlas key", "identifier of the set in its atlas (deep linear: the bit mask of the learned modes)"),
    "learned": _v(_S, "learned modes", "the learned set S of the stratum, as a label"),
    "n_searches": _v(_S, "searches that found the set", "number of independent searches (a random start or a "
                     "descent run) that reached the set"),
    "singleton": _v(_S, "found by one search", "true when exactly one search found the set (the Good-Turing Q1)"),
    "source": _v(_S, "source", "search, grown (added from a trajectory) or gradient_flat (not a critical set)"),
    "data_critical_value": _v(_S, "critical value on the data", "loss on the data (not the canonical problem)",
                              _ONE),
    "grad_flatness": _v(_S, "gradient flatness", "largest over the set's points of ||P_0 grad L|| / ||grad L||, "
                        "P_0 the projector on the Hessian's near-kernel (Frye et al. 2021)", _ONE),
    "refine_residual": _v(_S, "refinement residual", "largest over the set's points of ||grad L|| / (max(1, ||H||) "
                          "max(1, ||theta||)) after refinement", _ONE),
    "strictness_disagreements": _v(_S, "strictness disagreements", "sampled points where the closed-form "
                                   "strict/non-strict criterion disagrees with the measured inertia"),
    "coverage_searches": _v(("coverage",), "searches run", "cumulative number of critical-point searches"),
    "coverage_classes": _v(("coverage",), "classes found", "number of distinct critical sets found so far"),
    "p_new_class": _v(("coverage",), "probability of a new class", "Good-Turing estimate of the probability "
                      "that one more search finds an unseen critical set", _ONE),
    # one row per sampled point
    "point_stratum": _v(_P, "stratum of the point", "index into the stratum dimension"),
    "point_family": _v(_P, "family of the point", "closed-form family (chart) the point was sampled from"),
    "point_label": _v(_P, "label of the point", "label of the point's stratum"),
    "point_grad_norm": _v(_P, "gradient norm", "||grad L(theta)|| at the point", _ONE),
    "point_loss": _v(_P, "loss", "L(theta) at the point", _ONE),
    "point_loss_error": _v(_P, "loss error", "|L(theta) - critical_value|", _ONE),
    **{f"point_{k}": _v(_P, k.replace("_", " "), f"{d} at the point") for k, d in _INERTIA.items()},
    "point_zero_tol": _v(_P, "zero tolerance", "|eigenvalue| below which a Hessian eigenvalue counts as zero", _ONE),
    "point_gap": _v(_P, "spectral gap", "ratio of the smallest nonzero to the largest zero |eigenvalue|", _ONE),
    "point_min_eigenvalue": _v(_P, "smallest Hessian eigenvalue", "most negative Hessian eigenvalue", _ONE),
    "point_inertia_decided": _v(_P, "inertia decided", "true when the spectral gap exceeds gap_min"),
    "point_chart_dim": _v(_P, "chart dimension", "rank of the chart's Jacobian at the point"),
    "point_chart_gap": _v(_P, "chart singular-value gap", "gap deciding the chart Jacobian rank", _ONE),
    "point_local_dim": _v(_P, "local dimension", "dimension of the critical set measured by refinement clouds"),
    "point_local_smooth": _v(_P, "locally smooth", "true when the refinement cloud fits a smooth manifold"),
    "point_local_residual": _v(_P, "local fit residual", "residual of the local manifold fit", _ONE),
    "point_manifold_dim": _v(_P, "manifold dimension", "dimension of the critical manifold at the point"),
    "point_morse_bott": _v(_P, "Morse-Bott", "true when n_zero equals the manifold dimension at the point"),
    "point_stable_codim": _v(_P, "stable-set codimension", "n_negative when Morse-Bott, else -1"),
    "point_stable_codim_lower": _v(_P, "lower stable codimension", "lower bound on the stable codimension"),
    "point_layer_ranks": _v(_P, "layer ranks", "ranks of the layer matrices W_1, ..., W_{H+1}"),
    "point_reason": _v(_P, "reason", "why the point's stable codimension is (un)decided"),
    "point_is_critical": _v(_P, "is critical", "true when ||grad L|| is at round-off of the product"),
    "point_theta": _v(("point", "param"), "parameters", "parameter vector theta of the point"),
    "point_spectral_gap": _v(_P, "spectral gap", "ratio of the smallest nonzero to the largest zero |eigenvalue|",
                             _ONE),
    "point_refine_residual": _v(_P, "refinement residual", "||grad L|| / (max(1, ||H||) max(1, ||theta||)) at the "
                                "point", _ONE),
    "point_grad_flatness": _v(_P, "gradient flatness", "||P_0 grad L|| / ||grad L||, P_0 the Hessian near-kernel "
                              "projector (Frye et al. 2021)", _ONE),
    "point_strictness": _v(_P, "closed-form strictness", "strict / non_strict / minimum predicted from the ranks of "
                           "partial products (flowgeom.linear.strictness)"),
    "point_strictness_agrees": _v(_P, "strictness agrees", "true when the prediction matches the measured inertia"),
}

_SAMPLE = ("sample",)
_LIMIT = "index into stratum; -1 unconverged, -2 diverged, -3 unclassified"


def _fraction_family(prefix: str, dims, what: str, long: str) -> dict[str, VariableSpec]:
    return {
        prefix: _v(dims, long, f"fraction of the samples {what}", _ONE),
        f"{prefix}_low": _v(dims, f"{long}, lower bound", f"lower end of the confidence interval of {prefix}", _ONE),
        f"{prefix}_high": _v(dims, f"{long}, upper bound", f"upper end of the confidence interval of {prefix}",
                             _ONE),
    }


_BASINS: dict[str, VariableSpec] = {
    **_stratum_core(),
    "sample": _v(_SAMPLE, "sample index", "index of the sampled initialization"),
    "limit": _v(_SAMPLE, "limit stratum", _LIMIT),
    "final_loss": _v(_SAMPLE, "final loss", "L(theta) where the sample stopped (for samples whose limit was "
                      "decided early, on the way to that limit, not at it)", _ONE),
    "final_grad_norm": _v(_SAMPLE, "final gradient norm", "||grad L(theta)|| where the sample stopped (see "
                           "final_loss)", _ONE),
    "invariant_drift": _v(_SAMPLE, "invariant drift", "max drift of the conserved W_{i+1}^T W_{i+1} - W_i W_i^T "
                          "(NaN when not monitored)", _ONE),
    "t_final": _v(_SAMPLE, "final time", "flow time at which the trajectory stopped (its limit decided, "
                   "converged, or at the horizon)", _ONE),
    "status": _v(_SAMPLE, "integration status", "flowgeom.flow.Status of the last segment"),
    "n_grad_evals": _v(_SAMPLE, "gradient evaluations", "number of gradient evaluations used"),
    "polished": _v(_SAMPLE, "polished", "true when a final Newton/GD polish was applied"),
    "count": _v(_S, "count", "number of samples whose flow ends on the stratum"),
    **_fraction_family("fraction", _S, "whose flow ends on the stratum", "basin fraction"),
    **{f"count_{k}": _v((), f"{k} count", f"number of samples {k}") for k in ("unconverged", "diverged",
                                                                               "unclassified")},
    **{name: spec for k in ("unconverged", "diverged", "unclassified")
       for name, spec in _fraction_family(f"fraction_{k}", (), k, f"fraction {k}").items()},
    # coming (issue 15)
    "limit_numerical": _v(_SAMPLE, "numerical limit", "limit stratum found by integrating the flow; " + _LIMIT),
    "limit_exact": _v(_SAMPLE, "exact limit", "limit of the exact flow (round-off escapes from strict saddles "
                      "re-labelled to the saddle); " + _LIMIT),
    "escape_ratio": _v(_SAMPLE, "escape ratio", "lambda (tau_1 - tau_2) / ln(delta_2/delta_1) of the exact-limit "
                       "test; NaN where no strict saddle was passed closely", _ONE),
    "horizon_limit": _v(("sample", "horizon"), "limit at horizon", "stratum the state at the horizon is located "
                        "near (plateau); -3 in transit"),
    "count_undecided": _v((), "undecided count", "number of samples whose exact-flow limit was not decided"),
    **_fraction_family("fraction_undecided", (), "whose exact-flow limit was not decided", "fraction undecided"),
    "limit_decided": _v(_SAMPLE, "limit decided", "true when the limit is decided (not left in transit)"),
    "horizon": _v(("horizon",), "time horizon", "flow time at which the fractions are counted", _ONE),
    **_fraction_family("fraction_by_horizon", ("horizon", "stratum"), "on the stratum at the horizon",
                       "basin fraction by horizon"),
    **_fraction_family("fraction_in_transit", ("horizon",), "still in transit (not yet near a limit) at the "
                       "horizon", "fraction in transit"),
    "endgame": _v(_SAMPLE, "endgame", "true when the sample was sent to the gradient-descent end game"),
}

_E, _VI, _N, _ST = ("edge",), ("visit",), ("node",), ("step",)
_TRANSITIONS: dict[str, VariableSpec] = {
    **_stratum_core(_N),
    "edge": _v(_E, "edge index", "index of the transition source -> target"),
    "visit": _v(_VI, "visit index", "index of the plateau visit"),
    "node": _v(_N, "node index", "index of the visited stratum"),
    "sample": _v(_SAMPLE, "trajectory index", "index of the trajectory"),
    "time": _v(("time",), "flow time", "save times of the loss curves", _ONE),
    "step": _v(_ST, "theory step", "index of the step along the theory's path"),
    "source": _v(_E, "source stratum", "label of the stratum left"),
    "target": _v(_E, "target stratum", "label of the stratum entered next"),
    "count": _v(_E, "transitions", "number of observed jumps source -> target"),
    **_fraction_family("probability", _E, "leaving source that go to target", "transition probability"),
    "mean_dwell": _v(_E, "mean dwell", "mean flow time spent at source before the jump", _ONE),
    "dwell_std": _v(_E, "dwell standard deviation", "standard deviation of the dwell at source", _ONE),
    "mean_t_jump": _v(_E, "mean jump time", "mean flow time of the jump source -> target", _ONE),
    "trajectory": _v(_VI, "trajectory", "index of the trajectory making the visit"),
    "stratum": _v(_VI, "visited stratum", "label of the visited stratum"),
    "t_enter": _v(_VI, "entry time", "flow time the trajectory entered the plateau", _ONE),
    "t_exit": _v(_VI, "exit time", "flow time the trajectory left (last save time for a final visit)", _ONE),
    "loss_plateau": _v(_VI, "plateau loss", "loss at the save of smallest gradient norm within the visit", _ONE),
    "grad_norm_plateau": _v(_VI, "plateau gradient norm", "gradient norm there", _ONE),
    "final": _v(_VI, "final visit", "true when the trajectory never left"),
    "t_jump": _v(_VI, "jump time", "flow time of the jump out of the visit (NaN for a final visit)", _ONE),
    **{k: _v(_N, k.replace("_", " "), d) for k, d in _INERTIA.items()},
    "inertia": _v(_N, "inertia", "(n_negative, n_zero, n_positive) of the Hessian"),
    "learned": _v(_N, "learned directions", "deep-linear label of the singular directions learned at the node"),
    "visits": _v(_N, "visits", "number of visits to the node"),
    "n_left": _v(_N, "left", "number of visits that left the node"),
    "n_final": _v(_N, "final", "number of trajectories ending at the node"),
    "node_mean_dwell": _v(_N, "mean dwell", "mean flow time spent at the node per visit", _ONE),
    "node_dwell_std": _v(_N, "dwell standard deviation", "standard deviation of the dwell at the node", _ONE),
    "loss": _v(("sample", "time"), "loss", "loss curve L(theta(t)) of each trajectory", _ONE),
    "status": _v(_SAMPLE, "integration status", "flowgeom.flow.Status of the trajectory"),
    "path": _v(_SAMPLE, "path", "visited stratum labels joined by ' -> '"),
    "theory_source": _v(_ST, "theory source", "learned directions before the step (Saxe et al. 2014)"),
    "theory_target": _v(_ST, "theory target", "learned directions after the step"),
    "theory_t_jump": _v(_ST, "predicted jump time", "jump time predicted by the logistic-mode theory", _ONE),
    "theory_t_jump_std": _v(_ST, "predicted jump-time spread", "standard deviation predicted (NaN: not "
                            "predicted)", _ONE),
    "theory_t_jump_leading": _v(_ST, "leading-order jump time", "leading term of the predicted jump time", _ONE),
    "theory_plateau": _v(_ST, "predicted plateau length", "predicted time between consecutive jumps", _ONE),
    "theory_plateau_leading": _v(_ST, "leading-order plateau length", "leading term of the plateau", _ONE),
    "observed_t_jump": _v(_ST, "observed jump time", "mean observed jump time of the step", _ONE),
    "observed_t_jump_std": _v(_ST, "observed jump-time spread", "standard deviation of the observed jump "
                              "time", _ONE),
    "observed_n": _v(_ST, "observations", "number of trajectories making the step"),
    "t_jump_ratio": _v(_ST, "jump-time ratio", "observed_t_jump / theory_t_jump", _ONE),
    "observed_plateau": _v(_ST, "observed plateau length", "mean observed time between jumps", _ONE),
    "plateau_ratio": _v(_ST, "plateau ratio", "observed_plateau / theory_plateau", _ONE),
    # the jump chain (flowgeom.transitions.chain)
    "chain_state": _v(("chain_state",), "jump-chain state", "label of a state of the embedded Markov chain "
                      "over visited strata (minima and never-left states absorbing)"),
    "chain_target": _v(("chain_target",), "jump-chain target state", "label of the state jumped to"),
    "absorbing": _v(("absorbing",), "absorbing state", "label of an absorbing state of the jump chain"),
    "dwell_bin": _v(("dwell_bin",), "dwell-time bin", "index of the bin of the dwell-time histogram"),
    "dwell_edge": _v(("dwell_edge",), "dwell-time bin edge", "index of the edge of the dwell-time bins"),
    "chain_absorbing": _v(("chain_state",), "absorbing", "true for a minimum or a state never left"),
    "chain_count": _v(("chain_state", "chain_target"), "jump count", "number of observed jumps from "
                      "chain_state to chain_target between consecutive visits"),
    "chain_probability": _v(("chain_state", "chain_target"), "jump probability", "estimated transition matrix "
                            "P of the jump chain (counts over jumps out; identity rows for absorbing states)", _ONE),
    "initial_count": _v(("chain_state",), "first visits", "number of trajectories whose first visit is at the "
                        "state"),
    "initial_probability": _v(("chain_state",), "initial distribution", "empirical distribution pi_0 of the "
                              "first visits", _ONE),
    "chain_mean_dwell": _v(("chain_state",), "mean dwell per visit", "mean t_exit - t_enter of the visits that "
                           "left the state (d of tau = N d)", _ONE),
    "chain_n_dwell": _v(("chain_state",), "dwells observed", "number of visits that left the state"),
    "dwell_hist": _v(("chain_state", "dwell_bin"), "dwell-time histogram", "number of visits that left the "
                     "state per dwell-time bin"),
    "dwell_bin_edges": _v(("chain_state", "dwell_edge"), "dwell-time bin edges", "edges of the dwell-time bins "
                          "of the state (NaN: no dwell observed)", _ONE),
}
_JUMP_CHAIN = (
    ("absorption_probability", ("chain_state", "absorbing"), "absorption probability",
     "probability that the jump chain started at chain_state is absorbed at the absorbing state (B = N R, "
     "N = (I - Q)^-1, Kemeny & Snell 1960)", _ONE),
    ("absorption_from_start", ("absorbing",), "absorption probability from the start",
     "probability of absorption at the state from the initial distribution (pi_0 B)", _ONE),
    ("expected_jumps", ("chain_state",), "expected jumps to absorption",
     "expected number of jumps before absorption from the state (N 1)", None),
    ("expected_jumps_from_start", (), "expected jumps to absorption from the start",
     "expected number of jumps before absorption from the initial distribution (pi_0 N 1)", None),
    ("expected_hitting_time", ("chain_state",), "expected hitting time",
     "expected flow time on plateaus before absorption from the state (N d, d the mean dwell)", _ONE),
    ("expected_hitting_time_from_start", (), "expected hitting time from the start",
     "expected flow time on plateaus before absorption from the initial distribution (pi_0 N d)", _ONE),
)
for _name, _dims, _long, _desc, _units in _JUMP_CHAIN:
    _TRANSITIONS[_name] = _v(_dims, _long, _desc, _units)
    for _suffix, _end in (("_low", "lower"), ("_high", "upper")):
        _TRANSITIONS[_name + _suffix] = _v(_dims, f"{_long}, {_end} bound", f"{_end} end of the Dirichlet-posterior "
                                           f"interval of {_name} (chain_level)", _units)

_C = ("claim",)
_CLAIMS: dict[str, VariableSpec] = {
    "claim": _v(_C, "claim key", "short key of the claim"),
    "source": _v(_C, "source in the paper", "where the claim is stated (section, lemma, theorem)"),
    "statement": _v(_C, "statement", "what the paper claims"),
    "measured": _v(_C, "measured", "what flowgeom measured"),
    "problems": _v(_C, "problems", "the problems the claim was measured on"),
    "verdict": _v(_C, "verdict", "one of flowgeom.audit VERDICTS: holds; holds, bound loose; holds with "
                  "correction; contradicted"),
}

_T = ("trajectory",)
_TRAJECTORY: dict[str, VariableSpec] = {
    "time": _v(("time",), "flow time", "save times", _ONE),
    "ys": _v(("trajectory", "time", "param"), "parameters", "theta(t) at the save times", _ONE),
    "loss": _v(("trajectory", "time"), "loss", "L(theta(t))", _ONE),
    "grad_norm": _v(("trajectory", "time"), "gradient norm", "||grad L(theta(t))||", _ONE),
    "y_final": _v(("trajectory", "param"), "final parameters", "theta at the end", _ONE),
    "t_final": _v(_T, "final time", "flow time at the end", _ONE),
    "loss_final": _v(_T, "final loss", "L at the end", _ONE),
    "grad_norm_final": _v(_T, "final gradient norm", "||grad L|| at the end", _ONE),
    "status": _v(_T, "status", "flowgeom.flow.Status of the trajectory"),
    "n_steps": _v(_T, "steps", "number of accepted steps"),
    "n_rhs": _v(_T, "gradient evaluations", "number of right-hand-side evaluations"),
    "invariant_drift": _v(_T, "invariant drift", "max drift of the conserved balance quantities", _ONE),
}

SCHEMAS: dict[str, dict[str, VariableSpec]] = {
    "strata": _STRATA,
    "basins": _BASINS,
    "transitions": _TRANSITIONS,
    "claims": _CLAIMS,
    "trajectory": _TRAJECTORY,
}
"""kind -> {variable or coordinate name -> :class:`VariableSpec`}."""

GLOBAL_ATTR_DESCRIPTIONS: dict[str, str] = {
    "flowgeom_version": "flowgeom version that wrote the Dataset",
    "flowgeom_kind": "which flowgeom schema the Dataset follows",
    "widths": "layer widths d_x, d_1, ..., d_y",
    "singular_values": "singular values of the (whitened) target",
    "depth_H": "number of hidden layers H",
    "whitened": "true when the input covariance is the identity",
    "seed": "root seed of every random draw",
    "model": "model class",
    "n_strata_total": "number of strata enumerated (measured or not)",
    "n_samples": "number of sampled initializations",
    "n_trajectories": "number of trajectories",
    "init": "initialization distribution",
    "init_scale": "scale of the initialization",
    "integrator": "integrator",
    "tolerances": "integration tolerances",
    "ci_level": "confidence level of the intervals",
    "ci_method": "confidence-interval method",
    "confidence_level": "confidence level of the intervals",
    "quick": "true when the audit ran at reduced size",
    "atlas": "which atlas located the limits: closed_form (deep linear) or searched (any model)",
    "loss_offset": "constant of the data loss above the critical values (the part no network can fit)",
    "coverage_p_new": "Good-Turing estimate of the probability that one more search finds a new critical class",
    "coverage_target": "target of coverage_p_new at which the search stopped raising its budget",
    "coverage_searches": "number of searches run",
    "coverage_classes": "number of distinct critical classes found",
    "coverage_singletons": "classes found by exactly one search",
    "coverage_rounds": "rounds of searches run",
    "coverage_reached": "true when coverage_p_new reached the target",
    "coverage_curve_searches": "accumulation curve: searches run",
    "coverage_curve_classes": "accumulation curve: distinct classes found after that many searches",
    "coverage_rule": "how coverage is estimated",
    "gradient_flat_rule": "how gradient-flat points are told from critical points",
    "elapsed_s": "seconds spent on this stage",
    "chain_level": "posterior probability of the jump-chain intervals",
    "chain_prior": "Dirichlet concentration per admissible jump (0.5: Jeffreys)",
    "chain_support": "admissible jumps of the posterior: observed, or downhill (to lower critical values)",
    "chain_n_posterior": "Monte-Carlo draws of the jump-chain posterior",
    "chain_seed": "seed of the jump-chain posterior draws",
}
"""Meaning of the common provenance attributes (used by :func:`flowgeom.io.describe`)."""

_CLAIM_METRIC = re.compile(r"^([a-z0-9_]+?)__([a-z0-9_]+)$")


def variable_spec(name: str, kind: str | None) -> VariableSpec | None:
    r"""The schema entry of ``name`` in the ``kind`` table, or None when it is not known.

    Claims metrics ``<claim>__<quantity>`` get a generic entry.

    Parameters
    ----------
    name : str
        Variable or coordinate name.
    kind : str or None
        One of :data:`KINDS`; None gives None.

    Returns
    -------
    VariableSpec or None
    """
    if kind is None:
        return None
    table = SCHEMAS.get(kind, {})
    if name in table:
        return table[name]
    if kind == "claims":
        m = _CLAIM_METRIC.match(name)
        if m:
            claim, what = m.groups()
            return _v(_C, f"{claim} {what.replace('_', ' ')}",
                      f"measured {what.replace('_', ' ')} of claim {claim} (NaN for the other claims)")
    return None


def infer_kind(ds: xr.Dataset) -> str | None:
    r"""Recognise which schema a Dataset follows.

    The attribute ``flowgeom_kind`` (written by :func:`global_attrs`) decides when present; else
    the dimensions do: ``claim`` -> claims; ``edge``, ``visit`` or ``node`` -> transitions;
    ``sample`` with ``limit`` -> basins; ``stratum`` -> strata; ``flowgeom_type = "Trajectory"``
    -> trajectory.

    Parameters
    ----------
    ds : xarray.Dataset

    Returns
    -------
    str or None
        One of :data:`KINDS`, or None for a Dataset flowgeom did not write.
    """
    if not isinstance(ds, xr.Dataset):
        raise TypeError(f"`ds` must be an xarray.Dataset; got {type(ds).__name__}.")
    kind = ds.attrs.get("flowgeom_kind")
    if isinstance(kind, str) and kind in KINDS:
        return kind
    dims = set(ds.dims)
    if "claim" in dims:
        return "claims"
    if dims & {"edge", "visit", "node"}:
        return "transitions"
    if "limit" in ds.variables and "sample" in dims:
        return "basins"
    if "stratum" in dims:
        return "strata"
    if ds.attrs.get("flowgeom_type") == "Trajectory":
        return "trajectory"
    return None


def describe_variables(ds: xr.Dataset, kind: str | None = None) -> xr.Dataset:
    r"""Write ``long_name``, ``description`` and ``units`` on every variable the schema knows.

    For each variable and coordinate :math:`v` of ``ds`` with a schema entry
    :math:`(\mathrm{dims}, \mathrm{long\_name}, \mathrm{description}, \mathrm{units})`, sets the
    three attributes that are not already set (an attribute already present is never overwritten;
    ``units`` is skipped when the schema has none). Variables the schema does not know are left
    untouched. The Dataset is modified in place (its data are not copied) and returned.

    Parameters
    ----------
    ds : xarray.Dataset
    kind : str or None, default None
        One of :data:`KINDS`; None infers it with :func:`infer_kind` (nothing is written when the
        kind cannot be inferred).

    Returns
    -------
    xarray.Dataset
        ``ds`` itself.

    Raises
    ------
    TypeError
        ``ds`` is not a Dataset.
    flowgeom._validate.InputError
        ``kind`` is not one of :data:`KINDS`.
    """
    if not isinstance(ds, xr.Dataset):
        raise TypeError(f"`ds` must be an xarray.Dataset; got {type(ds).__name__}.")
    kind = infer_kind(ds) if kind is None else check_choice("kind", kind, KINDS)
    for name, var in ds.variables.items():
        spec = variable_spec(str(name), kind)
        if spec is None:
            continue
        var.attrs.setdefault("long_name", spec.long_name)
        var.attrs.setdefault("description", spec.description)
        if spec.units is not None and var.dtype.kind in "iuf":
            var.attrs.setdefault("units", spec.units)
    return ds


def global_attrs(kind: str | None, *, command: str | None = None, title: str | None = None,
                 time: _dt.datetime | None = None) -> dict[str, str]:
    r"""The CF-1.11 global attributes of a flowgeom Dataset.

    Parameters
    ----------
    kind : str or None
        One of :data:`KINDS`, or None for a Dataset of unknown kind (``flowgeom_kind`` is then
        omitted).
    command : str or None, default None
        What made the file, for ``history`` (e.g. ``"flowgeom atlas --widths 3,2,2"``); None
        gives ``"flowgeom.io.save_dataset"``.
    title : str or None, default None
        None gives the kind's standard title.
    time : datetime or None, default None
        Time stamp of ``history`` (UTC); None uses the current time.

    Returns
    -------
    dict
        ``Conventions = "CF-1.11"``, ``title``, ``history`` (``"<ISO 8601 time> <command>"``),
        ``source = "flowgeom <version>"``, ``references`` (:data:`REFERENCES`) and
        ``flowgeom_kind``.
    """
    if kind is not None:
        check_choice("kind", kind, KINDS)
    stamp = (time or _dt.datetime.now(_dt.timezone.utc)).replace(microsecond=0).isoformat()
    out = {
        "Conventions": "CF-1.11",
        "title": title or _TITLES.get(kind or "", "flowgeom dataset"),
        "history": f"{stamp} {command or 'flowgeom.io.save_dataset'}",
        "source": f"flowgeom {__version__}",
        "references": REFERENCES,
    }
    if kind is not None:
        out["flowgeom_kind"] = kind
    return out
