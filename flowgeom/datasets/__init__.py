r"""Two small real datasets shipped with flowgeom, as arrays :math:`X \in \mathbb{R}^{d_x \times m}`, :math:`Y \in \mathbb{R}^{d_y \times m}`.

Samples are columns (the convention of Liao, Chitour & Couillet and of :meth:`flowgeom.Problem.from_data`), so
``Problem.from_data(*load_digits(), widths)`` is the deep linear regression
:math:`L(W) = \tfrac12 \lVert W_H \cdots W_1 X - Y \rVert_F^2` on real data. The command line accepts the names
(``flowgeom atlas --data digits --widths 61,16,10``); a file of that name in the current directory wins.

``digits``
    The UCI "Optical Recognition of Handwritten Digits" data (E. Alpaydin and C. Kaynak, Bogazici University,
    1998; https://archive.ics.uci.edu/dataset/80/optical+recognition+of+handwritten+digits), in the copy
    distributed with scikit-learn (``sklearn.datasets.load_digits``: the UCI *test* set, 1797 images of
    8x8 pixel counts 0..16 from 13 writers, 10 classes). Licence: CC BY 4.0 (UCI Machine Learning Repository).
    The 3 pixels that are 0 in every image are dropped (a constant feature makes :math:`X X^\top` singular,
    Assumption 2 of the paper), so :math:`X` is (61, 1797) in raw pixel counts and :math:`Y` the one-hot
    labels (10, 1797). Raw pixels give a stiff flow (eigenvalues of :math:`X X^\top` from 0.74 to 4.8e6);
    the whitened problem (``whiten=True``, CLI ``--whiten``) is a different, well-conditioned flow.
``linnerud``
    The Linnerud data (M. Tenenhaus, *La régression PLS : théorie et pratique*, Technip, 1998, Table 1,
    p. 15), as shipped with scikit-learn (BSD-3-Clause): 20 middle-aged men, :math:`X` = 3 exercise counts
    (chins, situps, jumps), :math:`Y` = 3 physiological measurements (weight [lb], waist [in], pulse
    [beats/min]), both in raw units (eigenvalues of :math:`X X^\top` from 275 to 6.3e5: a stiff flow).

The files (``digits.npz`` 45 kB, ``linnerud.npz`` 1 kB, integer dtypes, lossless) are written by
``studies/data/build_datasets.py`` from scikit-learn, once; scikit-learn is not needed at run time.
Every load checks the file's SHA-256 against :data:`SHA256`.
"""

from __future__ import annotations

import hashlib
import io
from importlib import resources

import numpy as np

__all__ = ["NAMES", "SHA256", "load", "load_digits", "load_linnerud", "provenance", "describe"]

NAMES = ("digits", "linnerud")
"""The shipped datasets, by the name the command line's ``--data`` accepts."""

SHA256 = {
    "digits": "1c3dc950b0164ad91cee220f2659469ff3e5ea0397803fc2b8ece93437f906c1",
    "linnerud": "22eaab7df49a27e52e64cf659e03af08412bb3ea737f488e26f0ad6396926f98",
}
"""SHA-256 of each shipped ``<name>.npz`` (as written by ``studies/data/build_datasets.py``)."""

_PROVENANCE = {
    "digits": {
        "title": "Optical Recognition of Handwritten Digits (8x8 test set, 1797 images)",
        "creators": "E. Alpaydin, C. Kaynak (Bogazici University, 1998)",
        "source": "UCI Machine Learning Repository, "
                  "https://archive.ics.uci.edu/dataset/80/optical+recognition+of+handwritten+digits; "
                  "copy distributed with scikit-learn (sklearn.datasets.load_digits)",
        "references": "C. Kaynak (1995), Methods of Combining Multiple Classifiers and Their Applications to "
                      "Handwritten Digit Recognition, MSc thesis, Bogazici University; E. Alpaydin, C. Kaynak "
                      "(1998), Cascading Classifiers, Kybernetika",
        "license": "CC BY 4.0",
        "X": "pixel counts 0..16 (number of on pixels in a 4x4 block of a 32x32 bitmap), 61 of the 64 pixels "
             "(the 3 constant ones dropped), samples as columns",
        "Y": "one-hot class labels (digit 0..9), samples as columns",
        "preprocessing": "pixels 0, 32, 39 (row-major 8x8), zero in every image, dropped; no scaling",
    },
    "linnerud": {
        "title": "Linnerud physical exercise and physiological data (20 men)",
        "creators": "M. Tenenhaus (1998), La regression PLS: theorie et pratique, Technip, Table 1, p. 15",
        "source": "copy shipped with scikit-learn (sklearn.datasets.load_linnerud)",
        "references": "M. Tenenhaus (1998), La regression PLS: theorie et pratique, Paris: Editions Technip",
        "license": "BSD-3-Clause (scikit-learn)",
        "X": "exercise counts: chins, situps, jumps (raw units), samples as columns",
        "Y": "physiological: weight [lb], waist [in], pulse [beats/min] (raw units), samples as columns",
        "preprocessing": "none",
    },
}


def _arrays(name: str) -> dict:
    """The arrays of the shipped ``<name>.npz``, after checking its SHA-256."""
    if name not in NAMES:
        from flowgeom._validate import InputError

        raise InputError(f"`name` must be one of {', '.join(NAMES)}; got {name!r}.")
    raw = (resources.files(__name__) / f"{name}.npz").read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != SHA256[name]:
        raise OSError(f"the shipped dataset {name}.npz is damaged (sha256 {digest[:12]}..., expected "
                      f"{SHA256[name][:12]}...); reinstall flowgeom.")
    with np.load(io.BytesIO(raw), allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def load_digits(*, whiten: bool = False) -> tuple[np.ndarray, np.ndarray]:
    r"""The handwritten digits: :math:`X` (61, 1797) raw pixel counts 0..16, :math:`Y` (10, 1797) one-hot labels.

    Parameters
    ----------
    whiten : bool, default False
        Return :math:`(X X^\top)^{-1/2} X` (:func:`flowgeom._data.whiten`) instead of the raw pixels: the
        paper's normal form :math:`X X^\top = I`, a different gradient flow.

    Returns
    -------
    X, Y : ndarray of float64
        Samples as columns. See the module docstring for the source and licence.
    """
    a = _arrays("digits")
    X = a["pixels"].astype(np.float64)
    Y = np.zeros((10, X.shape[1]))
    Y[a["label"].astype(np.intp), np.arange(X.shape[1])] = 1.0
    if whiten:
        from flowgeom._data import whiten as _whiten

        X = _whiten(X)
    return X, Y


def load_linnerud(*, swap: bool = False) -> tuple[np.ndarray, np.ndarray]:
    r"""The Linnerud data in raw units: :math:`X` (3, 20) exercise counts, :math:`Y` (3, 20) physiological values.

    Parameters
    ----------
    swap : bool, default False
        Predict exercise from physiology instead (:math:`X` physiological, :math:`Y` exercise).

    Returns
    -------
    X, Y : ndarray of float64
        Samples as columns. See the module docstring for the source and licence.
    """
    a = _arrays("linnerud")
    X, Y = a["exercise"].astype(np.float64), a["physiological"].astype(np.float64)
    return (Y, X) if swap else (X, Y)


def load(name: str) -> tuple[np.ndarray, np.ndarray]:
    """``(X, Y)`` of the shipped dataset ``name`` (one of :data:`NAMES`), with its defaults."""
    _arrays(name)  # the name check
    return load_digits() if name == "digits" else load_linnerud()


def provenance(name: str) -> dict:
    """Where the dataset ``name`` comes from: title, creators, source, references, licence, shapes, SHA-256.

    Suitable for a Dataset's attrs (every value is a string or a list of ints).
    """
    X, Y = load(name)
    out = {"dataset": name, **_PROVENANCE[name]}
    out.update(d_x=int(X.shape[0]), d_y=int(Y.shape[0]), n_samples=int(X.shape[1]), sha256=SHA256[name])
    return out


def describe(name: str) -> str:
    """Print-ready text of :func:`provenance` and of the spectrum of :math:`X X^\\top` (how stiff the raw flow is)."""
    p = provenance(name)
    X, _ = load(name)
    ev = np.linalg.eigvalsh(X @ X.T)
    lines = [f"{name}: {p['title']}"]
    lines += [f"  {k}: {v}" for k, v in p.items() if k not in ("dataset", "title")]
    lines.append(f"  eig(X X^T): {ev[0]:.3g} .. {ev[-1]:.3g} (condition {ev[-1] / ev[0]:.3g})")
    return "\n".join(lines)
