"""Shared fixtures: small networks and a seeded generator."""

import numpy as np
import pytest

from flowgeom import DeepLinearNetwork, Problem


@pytest.fixture
def rng():
    return np.random.default_rng(20261126)


@pytest.fixture(params=[(3, 2, 2), (4, 3, 2), (4, 3, 3, 2), (5, 4, 3, 3, 2)], ids=lambda w: "x".join(map(str, w)))
def small_net(request):
    w = request.param
    s = np.linspace(3.0, 1.0, w[-1])
    return DeepLinearNetwork.canonical(w, s)


@pytest.fixture
def default_problem():
    return Problem.default()
