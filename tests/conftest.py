"""Shared fixtures: small networks and a seeded generator.

BLAS runs single-threaded in the tests: on two cores, multithreaded eigh/inverse of the many small
matrices of these tests is up to 60x slower (measured: a batched 32x32 eigh, 0.75 s vs 0.012 s).
"""

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

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
