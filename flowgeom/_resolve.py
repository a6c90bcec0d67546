"""Which atlas a problem or model gets: the one place where deep linear and other models differ.

A :class:`flowgeom.Problem` (or a :class:`~flowgeom.models.DeepLinearNetwork` whose data satisfy the
paper's assumptions) gets the closed-form atlas; any other :class:`~flowgeom.models.Model` gets a
searched atlas; an atlas is used as it is.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np

from flowgeom.critical.atlas import Atlas

__all__ = ["as_atlas", "problem_of_network"]


def problem_of_network(net):
    """A Problem whose original coordinates are those of a DeepLinearNetwork, or None."""
    from flowgeom.problem import AssumptionError, Problem

    X = np.eye(net.widths[0]) if net.input_factor is None else np.asarray(net.input_factor)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            pb = Problem.from_data(X, np.asarray(net.target), net.widths)
    except (AssumptionError, ValueError, UserWarning):
        return None
    # X is square here, so the data offset is the network's own constant
    return dataclasses.replace(pb, loss_offset=float(net.offset))


def as_atlas(obj, *, name: str = "problem_or_model", **options) -> Atlas:
    """The atlas of ``obj``: an Atlas as it is, a Problem's closed form, a Model's search.

    Parameters
    ----------
    obj : Atlas, flowgeom.Problem or Model
    **options
        Keywords of :class:`flowgeom.linear.ClosedFormAtlas` or :class:`flowgeom.critical.SearchedAtlas`.

    Raises
    ------
    TypeError
        ``obj`` is none of these.
    """
    from flowgeom.critical.searched import SearchedAtlas
    from flowgeom.linear.atlas import ClosedFormAtlas
    from flowgeom.models.base import Model
    from flowgeom.models.deep_linear import DeepLinearNetwork
    from flowgeom.problem import Problem

    if isinstance(obj, (ClosedFormAtlas, SearchedAtlas)) or (isinstance(obj, Atlas) and not isinstance(obj, Model)):
        return obj
    if isinstance(obj, Problem):
        return ClosedFormAtlas(obj, **options)
    if type(obj) is DeepLinearNetwork:
        pb = problem_of_network(obj)
        if pb is not None:
            canonical = obj.input_factor is None and np.array_equal(np.asarray(obj.target), pb.Sigma)
            options.setdefault("coordinates", "canonical" if canonical else "original")
            return ClosedFormAtlas(pb, **options)
    if isinstance(obj, Model):
        return SearchedAtlas(obj, **options)
    raise TypeError(
        f"`{name}` must be a flowgeom.Problem, a Model or an Atlas; got {type(obj).__name__}. Build a problem with "
        "flowgeom.Problem.from_spectrum(s, widths) or flowgeom.Problem.from_data(X, Y, widths)."
    )
