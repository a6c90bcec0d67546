r"""Basins of attraction: sample initializations, run the flow, locate the limits, count with intervals.

Submodules
----------
samplers
    Named, split-invariant initialization samplers.
classifiers
    Which critical set a converged state reached.
"""

from flowgeom._lazy import attach as _attach

# name -> module, imported on first use (flowgeom._lazy)
_EXPORTS = {
    "flowgeom.basins._sample": ("sample_basins",),
    "flowgeom.basins.store": ("StoreError",),
    "flowgeom.basins.stats": ("BasinFractions", "basin_fractions", "clopper_pearson_interval", "wilson_interval"),
}
__getattr__, __dir__ = _attach(__name__, _EXPORTS)

__all__ = ["BasinFractions", "StoreError", "basin_fractions", "clopper_pearson_interval", "sample_basins", "wilson_interval"]
