"""Helpers shared by several test modules (not tests themselves)."""

from __future__ import annotations

import os

import numpy as np


class Quadratic:
    """L = theta^T A theta / 2 with a fixed symmetric matrix A; flow theta(t) = exp(-A t) theta0."""

    def __init__(self, A):
        self.A = np.asarray(A, dtype=float)

    @property
    def n_params(self):
        return self.A.shape[0]

    def loss(self, th):
        return 0.5 * np.einsum("...i,ij,...j->...", th, self.A, th)

    def grad(self, th):
        return th @ self.A

    def hvp(self, th, v):
        return np.broadcast_to(v @ self.A, np.broadcast_shapes(th.shape, v.shape)).copy()

    def hessian(self, th):
        return np.broadcast_to(self.A, th.shape[:-1] + self.A.shape).copy()

    def conserved(self, th):
        return np.zeros(th.shape[:-1] + (0,))


def store_has_complete_chunk(store) -> bool:
    """True once a basins store holds a chunk whose completion marker is written."""
    for name in os.listdir(store) if os.path.exists(store) else []:
        try:
            with open(os.path.join(store, name, "zarr.json")) as fh:
                if name.startswith("chunk_") and '"complete": true' in fh.read():
                    return True
        except OSError:
            pass
    return False
