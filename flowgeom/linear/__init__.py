r"""Deep-linear knowledge in one place: closed-form strata, charts, a-priori bounds, mode theory.

Everything here is specific to the deep linear network
:math:`L(W) = \tfrac12\|\Sigma - W_{H+1}\cdots W_1\|_F^2` of the paper; a reader extending flowgeom
to another model never needs to open it.

Submodules
----------
atlas
    :class:`ClosedFormAtlas`: the deep linear atlas (every stratum, located by its end-to-end product).
strata
    :class:`Stratum`, :func:`enumerate_strata`, :func:`classify_point`: the critical set by learned
    singular modes S (any depth).
charts
    :class:`StratumChart`: maps from free parameters onto families of critical points.
measure
    :func:`build_strata_dataset`: sampled points of each stratum, linearized.
bounds
    Proposition 1 made explicit: :func:`flow_norm_bound`, :func:`safe_learning_rate` (H = 1).
strictness
    :func:`saddle_strictness`: strict / non-strict saddles for H >= 2 from ranks of partial products.
theory
    Saxe et al. mode dynamics: :func:`transition_theory`.
"""

from flowgeom._lazy import attach as _attach

# name -> module, imported on first use (flowgeom._lazy)
_EXPORTS = {
    "flowgeom.linear.atlas": ("ClosedFormAtlas",),
    "flowgeom.linear.bounds": ("NormBound", "SafeLearningRate", "flow_norm_bound", "safe_learning_rate"),
    "flowgeom.linear.charts": (
        "StratumChart", "apply_gauge", "charts_for_stratum", "family_names", "make_chart", "random_gauge"
    ),
    "flowgeom.linear.measure": ("build_strata_dataset", "strata_table"),
    "flowgeom.linear.strata": (
        "KINDS", "Stratum", "classify_point", "enumerate_strata", "format_label", "learned_set", "parse_label"
    ),
    "flowgeom.linear.strictness": (
        "STRICTNESS_KINDS", "StrictnessResult", "add_strictness_columns", "saddle_strictness"
    ),
    "flowgeom.linear.theory": ("transition_theory",),
}
__getattr__, __dir__ = _attach(__name__, _EXPORTS)

__all__ = [
    "ClosedFormAtlas", "KINDS", "NormBound", "SafeLearningRate", "Stratum", "StratumChart", "apply_gauge", "build_strata_dataset",
    "charts_for_stratum", "classify_point", "enumerate_strata", "family_names", "flow_norm_bound", "format_label",
    "learned_set", "make_chart", "parse_label",
    "STRICTNESS_KINDS", "StrictnessResult", "add_strictness_columns", "saddle_strictness", "random_gauge", "safe_learning_rate",
    "strata_table", "transition_theory",
]
