r"""Basins of attraction: sample initializations, run the flow, locate the limits, count with intervals.

Submodules
----------
samplers
    Named, split-invariant initialization samplers.
classifiers
    Which critical set a converged state reached.
"""

from flowgeom.basins._sample import sample_basins
from flowgeom.basins.store import StoreError
from flowgeom.basins.stats import BasinFractions, basin_fractions, clopper_pearson_interval, wilson_interval

__all__ = ["BasinFractions", "StoreError", "basin_fractions", "clopper_pearson_interval", "sample_basins", "wilson_interval"]
