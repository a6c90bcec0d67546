r"""The step-size controller shared by every adaptive method of :mod:`flowgeom.flow`.

With the scaled error norm :math:`e = \mathrm{RMS}\big(\mathrm{err} / (\mathrm{atol} +
\mathrm{rtol}\max(|y|, |y_{new}|))\big)` of a step of size :math:`h` whose error is
:math:`O(h^{q})`, the next step is

.. math:: h_{new} = h \cdot \min\big(F_{max}, \max(F_{min}, \; s\, e^{-1/q})\big),

with no growth right after a rejection (Hairer, Norsett & Wanner, *Solving ODEs I*, 2nd ed.,
Sec. II.4, eq. (4.13); the constants are scipy's RK45 ones, so step counts compare). The numba
kernel keeps a compiled copy of the formula but imports these constants.
"""

from __future__ import annotations

import numpy as np

SAFETY = 0.9  # fraction of the optimal step actually taken
MIN_FACTOR = 0.2  # largest decrease of the step in one rejection
MAX_FACTOR = 10.0  # largest increase of the step after an accepted step


def rms(x):
    """Root mean square over the last axis."""
    return np.sqrt(np.mean(x * x, axis=-1))


def error_norm(err, y, y_new, rtol, atol):
    """Scaled RMS norm of the local error estimate, one value per trajectory."""
    return rms(err / (atol + rtol * np.maximum(np.abs(y), np.abs(y_new))))


def step_factor(en, accept, rejected, exponent):
    r"""Factor :math:`h_{new}/h` for each trajectory.

    Parameters
    ----------
    en : ndarray, shape (m,)
        Scaled error norms (NaN or inf for a non-finite step).
    accept : ndarray of bool, shape (m,)
        Whether the step was accepted.
    rejected : ndarray of bool, shape (m,)
        Whether the previous attempt was rejected (then an accepted step does not grow h).
    exponent : float
        :math:`-1/q` for an error estimate of order :math:`O(h^q)`.
    """
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        fac = SAFETY * en**exponent
    fac = np.where(np.isfinite(fac), fac, np.where(en == 0, MAX_FACTOR, MIN_FACTOR))
    grow = np.minimum(MAX_FACTOR, fac)
    grow = np.where(rejected, np.minimum(1.0, grow), grow)
    shrink = np.maximum(MIN_FACTOR, np.minimum(fac, 1.0))
    return np.where(accept, grow, shrink)


def underflow(h, t):
    """True where the step has become too small to advance ``t`` (status FAILED)."""
    return h < 10 * np.spacing(np.maximum(np.abs(t), 1.0))
