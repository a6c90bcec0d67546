r"""Saddle-to-saddle transitions: the heteroclinic graph seen in simulated trajectories.

Let :math:`\theta(t)` solve the gradient flow :math:`\dot\theta = -\nabla L(\theta)` from a small
initialization. For a deep linear network it lingers near a sequence of saddles -- long
plateaus of the loss at critical values -- before it reaches a minimum (Saxe, McClelland and
Ganguli 2014; Jacot et al. 2021). This package

1. detects the *visits* along saved trajectories (:func:`detect_visits`, in
   :mod:`~flowgeom.transitions.detect`): time intervals :math:`[t_{enter}, t_{exit}]` during
   which the state is near a critical point;
2. identifies the visited stratum (:mod:`~flowgeom.transitions.identify`:
   :class:`AtlasIdentifier`, which locates a plateau point in an atlas (:mod:`flowgeom.critical.atlas`),
   the same for every model; formerly a second identifier refined the plateau
   point to a critical point and deduplicating up to symmetries);
3. builds the directed graph of observed transitions (:func:`build_transition_graph`, in
   :mod:`~flowgeom.transitions.graph`): counts, probabilities with Wilson intervals, dwell
   times, and the check that every sink is a minimum; GraphML in and out
   (:func:`to_graphml`, :func:`read_graphml`, :func:`parse_inertia`);
4. sets the observation beside the theory of the mode dynamics (:func:`transition_theory`, in
   :mod:`~flowgeom.transitions.theory`);
5. writes the ``transitions`` Dataset and GraphML file (schema: flowgeom.schema)
   (:func:`transitions_dataset`, :func:`save_transitions` in
   :mod:`~flowgeom.transitions.dataset`; :func:`sample_transitions` in
   :mod:`~flowgeom.transitions.sample` runs the whole pipeline).

Imports inside the package flow one way: ``_common -> identify -> detect -> graph -> chain -> dataset
-> sample``. 6. The jump chain over the visited strata (:func:`jump_chain`, :func:`to_deeptime`).

References
----------
A. M. Saxe, J. L. McClelland, S. Ganguli, "Exact solutions to the nonlinear dynamics of
learning in deep linear neural networks", ICLR 2014, arXiv:1312.6120.
A. Jacot, F. Ged, B. Simsek, C. Hongler, F. Gabriel, "Saddle-to-saddle dynamics in deep linear
networks: small initialization training, symmetry, and sparsity", arXiv:2106.15933 (2021).
E. B. Wilson, "Probable inference, the law of succession, and statistical inference",
J. Amer. Statist. Assoc. 22 (1927).
"""

from __future__ import annotations

from flowgeom._lazy import attach as _attach

# name -> module, imported on first use (flowgeom._lazy)
_EXPORTS = {
    "flowgeom.transitions.chain": ("JumpChain", "JumpChainWarning", "absorbing_chain", "jump_chain", "to_deeptime"),
    "flowgeom.transitions.dataset": ("chain_dataset", "chain_from_dataset", "save_transitions", "transitions_dataset"),
    "flowgeom.transitions.detect": ("Visits", "detect_visits"),
    "flowgeom.transitions.graph": (
        "TransitionGraph", "build_transition_graph", "graph_from_dataset", "read_graphml", "to_graphml"
    ),
    "flowgeom.transitions.identify": (
        "MINIMUM_KINDS", "UNIDENTIFIED", "AtlasIdentifier", "Identifier", "node_of", "StratumNode",
        "format_inertia", "parse_inertia"
    ),
    "flowgeom.transitions.sample": ("sample_transitions",),
    "flowgeom.linear.theory": ("MIDPOINT_Q", "_scalar_chain_time", "transition_theory"),
}
__getattr__, __dir__ = _attach(__name__, _EXPORTS)

__all__ = [
    "JumpChain",
    "JumpChainWarning",
    "absorbing_chain",
    "chain_dataset",
    "chain_from_dataset",
    "jump_chain",
    "to_deeptime",
    "StratumNode",
    "Visits",
    "TransitionGraph",
    "Identifier",
    "AtlasIdentifier",
    "node_of",
    "detect_visits",
    "build_transition_graph",
    "transition_theory",
    "sample_transitions",
    "transitions_dataset",
    "graph_from_dataset",
    "save_transitions",
    "to_graphml",
    "read_graphml",
    "parse_inertia",
    "format_inertia",
    "UNIDENTIFIED",
    "MINIMUM_KINDS",
]
