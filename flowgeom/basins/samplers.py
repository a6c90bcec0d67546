r"""Initialization samplers for basin measurements: named, parametrized and split-invariant.

A sampler draws initial parameter vectors :math:`\theta_0^{(i)} \in \mathbb{R}^n`,
i = 0, 1, ..., for the gradient flow :math:`\dot\theta = -\nabla L(\theta)`. Sample i depends
only on the root seed and on i, never on how a run is split into chunks or workers: samples
are generated in fixed blocks of :data:`SAMPLE_BLOCK` consecutive indices, block b from the
generator ``np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(b,)))`` (the b-th
child of ``SeedSequence(seed).spawn``), and a range ``[start, stop)`` is cut out of the blocks
that cover it.

Built-in samplers (``name``):

- ``"gaussian"``: i.i.d. entries :math:`N(0, \mathrm{scale}^2)` (default scale 1).
- ``"orthogonal"``: each :math:`W_j = \mathrm{scale}\cdot Q_j` with :math:`Q_j` a Haar-distributed
  (semi-)orthogonal :math:`d_j\times d_{j-1}` matrix (orthonormal columns if
  :math:`d_j \ge d_{j-1}`, else orthonormal rows); biases, if any, are zero.
- ``"balanced"``: points with :math:`C_j = W_{j+1}^T W_{j+1} - W_j W_j^T = 0` for every j
  (exactly, up to round-off), a measure-zero set invariant under the flow:
  :math:`W_j = U_j \,\mathrm{diag}(\sigma)\, U_{j-1}^T` with Haar frames
  :math:`U_j \in \mathbb{R}^{d_j\times k}` (orthonormal columns) and :math:`\sigma` the
  singular values of a :math:`k\times k` matrix with i.i.d. :math:`N(0,\mathrm{scale}^2)`
  entries; then :math:`W_{j+1}^T W_{j+1} = U_j \mathrm{diag}(\sigma^2) U_j^T = W_j W_j^T`.
  The rank k defaults to the smallest width.
- ``"stable-set"``: near the stable set of a critical point p: the stable set is tangent at p
  to :math:`E = \mathrm{span}\{v : \nabla^2 L(p) v = \lambda v,\ \lambda \ge 0\}` (stable and
  center directions), so :math:`\theta_0 = p + \mathrm{radius}\cdot E z + \delta\, \xi` with
  :math:`z \sim N(0, I_{\dim E})`, :math:`\xi \sim N(0, I_n)`. With :math:`\delta = 0` the
  points lie on the tangent space, which is the stable set itself only where that set is flat
  (e.g. the line :math:`w_2 = -w_1` through the origin of :math:`\tfrac12(s - w_2 w_1)^2`).
  p is ``point=`` (flat, in the flow's coordinates) or, for deep linear problems, a point of
  the stratum ``stratum=`` (a learned-set label such as ``"{0}"``); default: the origin.
- ``"file:PATH.npy"`` (or an array passed as ``init``): row i of a user-supplied
  ``(N, n_params)`` array is sample i (the seed is not used).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from flowgeom._validate import InputError

from flowgeom._types import FloatArray, Params

__all__ = [
    "SAMPLE_BLOCK",
    "SAMPLERS",
    "Initializer",
    "make_initializer",
    "sample_initializations",
    "haar_semi_orthogonal",
    "balanced_critical_point",
]

SAMPLE_BLOCK = 1024
"""Samples per generator block. Changing it changes which numbers sample i gets, so it is
recorded in every basin Dataset's attrs and checked when a store is resumed."""

SAMPLERS = ("gaussian", "orthogonal", "balanced", "stable-set", "file")
"""Names accepted by :func:`make_initializer` (``"file"`` as ``"file:PATH.npy"``)."""

# Hessian eigenvalues >= -STABLE_EIG_RTOL * max(1, max |lambda|) count as stable or center
# directions for the "stable-set" sampler: round-off makes exact zeros slightly negative.
STABLE_EIG_RTOL = 1e-9


# ---------------------------------------------------------------------------- building blocks
def haar_semi_orthogonal(rng: np.random.Generator, size: int, d_out: int, d_in: int) -> FloatArray:
    r"""Haar-distributed (semi-)orthogonal matrices, shape ``(size, d_out, d_in)``.

    For :math:`d_{out} \ge d_{in}` the columns are orthonormal (:math:`Q^T Q = I`), else the
    rows (:math:`Q Q^T = I`). Drawn as the Q factor of a Gaussian matrix with the signs of
    R's diagonal moved into Q, which makes the distribution exactly Haar (Mezzadri 2007).

    References
    ----------
    F. Mezzadri, "How to generate random matrices from the classical compact groups",
    Notices of the AMS 54 (2007).
    """
    tall = d_out >= d_in
    a, b = (d_out, d_in) if tall else (d_in, d_out)
    Z = rng.standard_normal((size, a, b))
    Q, R = np.linalg.qr(Z)
    d = np.diagonal(R, axis1=-2, axis2=-1)
    Q = Q * np.where(d >= 0, 1.0, -1.0)[..., None, :]
    return Q if tall else np.swapaxes(Q, -1, -2)


def _layer_shapes(model, sampler: str):
    shapes = getattr(model, "shapes", None)
    if shapes is None or not hasattr(model, "pack"):
        raise TypeError(
            f"the {sampler!r} sampler needs a layered model with `shapes` and `pack` (DeepLinearNetwork, "
            f"MLP); got {type(model).__name__}. Use init='gaussian' or pass an array of initializations."
        )
    return [tuple(s) for s in shapes]


def _pack(model, W):
    if getattr(model, "bias", False):
        return model.pack(W, [np.zeros(W[0].shape[:-2] + (s[0],)) for s in model.shapes])
    return model.pack(W)


def balanced_critical_point(problem, learned, coordinates: str = "auto") -> Params:
    r"""A balanced critical point of a deep linear problem on the stratum of learned set S.

    In canonical coordinates every layer is :math:`\bar W_j = \sum_{i\in S} s_i^{1/(H+1)} e_i e_i^T`
    (the top-left :math:`d_y\times d_y` block, zero elsewhere), so
    :math:`\bar W_{H+1}\cdots\bar W_1 = \Sigma_S` (s_i at (i, i) for i in S) and every gradient
    block :math:`(\bar W_{>j})^T (\Sigma_S - \Sigma)(\bar W_{<j})^T` vanishes because the
    supports of :math:`\Sigma_S` and :math:`\Sigma - \Sigma_S` are disjoint. The point is then
    mapped to the coordinates of ``problem.network(coordinates)``.

    Parameters
    ----------
    problem : flowgeom.Problem
    learned : iterable of int
        S, 0-based indices into the singular values (sorted descending).
    coordinates : {"auto", "canonical", "original"}, default "auto"

    Returns
    -------
    ndarray, shape (n_params,)
    """
    w = problem.widths
    s = np.asarray(problem.singular_values)
    S = sorted({int(i) for i in learned})
    if any(i < 0 or i >= len(s) for i in S):
        raise InputError(f"`learned` must hold indices in 0..{len(s) - 1}; got {S}.")
    L = len(w) - 1
    Wbar = []
    for j in range(L):
        Wj = np.zeros((w[j + 1], w[j]))
        for i in S:
            Wj[i, i] = s[i] ** (1.0 / L)
        Wbar.append(Wj)
    if coordinates == "auto":
        coordinates = "canonical" if problem.whitened else "original"
    W = Wbar if coordinates == "canonical" else problem.from_canonical(Wbar)
    net = problem.network(coordinates)
    return net.pack(W)


def _parse_label(label: str) -> list[int]:
    text = str(label).strip()
    if not (text.startswith("{") and "}" in text):
        raise InputError(f"`stratum` must be a learned-set label like '{{}}', '{{0}}' or '{{0,2}}'; got {label!r}.")
    inner = text[1 : text.index("}")].strip()
    return [int(x) for x in inner.split(",")] if inner else []


# ---------------------------------------------------------------------------- the initializer
@dataclass(frozen=True, eq=False)
class Initializer:
    r"""A named, parametrized initialization distribution, split-invariant by construction.

    Build one with :func:`make_initializer`. ``sample(model, start, stop, seed)`` returns
    samples ``start .. stop-1``; sample i depends only on ``(seed, i)``.

    Attributes
    ----------
    name : str
        ``"gaussian"``, ``"orthogonal"``, ``"balanced"``, ``"stable-set"`` or ``"file"``.
    scale : float
        Scale of the distribution (std of entries; orthogonal multiplier; radius for
        ``"stable-set"``); 0.0 for ``"file"``.
    params : dict
        Further parameters (``rank``, ``delta``, ``stratum``, ``path``, ...), recorded in attrs.
    """

    name: str
    scale: float
    params: dict = field(default_factory=dict)
    _data: dict = field(default_factory=dict, repr=False)
    _array: Any = field(default=None, repr=False)

    @property
    def seeded(self) -> bool:
        """False for user-supplied arrays (``"file"``/``"array"``), whose samples ignore the seed."""
        return self.name not in ("file", "array")

    def attrs(self) -> dict:
        """Provenance attributes (``init``, ``init_scale``, ``init_params``, ``sample_block``)."""
        return {
            "init": self.name,
            "init_scale": float(self.scale),
            "init_params": {k: _jsonable(v) for k, v in sorted(self.params.items())},
            "sample_block": SAMPLE_BLOCK,
        }

    def sample(self, model, start: int, stop: int, seed: int) -> Params:
        """Samples ``start .. stop-1``, shape ``(stop - start, model.n_params)``."""
        n = model.n_params
        if stop < start:
            raise InputError(f"`stop` ({stop}) must be >= `start` ({start}).")
        if not self.seeded:
            arr = self._array if self._array is not None else np.load(self.params["path"], mmap_mode="r")
            if stop > arr.shape[0]:
                raise InputError(
                    f"the initialization array holds {arr.shape[0]} samples; samples up to {stop} were "
                    f"requested. Pass n_samples <= {arr.shape[0]}."
                )
            return np.array(arr[start:stop], dtype=np.float64)
        out = np.empty((stop - start, n))
        b0, b1 = start // SAMPLE_BLOCK, -(-stop // SAMPLE_BLOCK)
        for b in range(b0, b1):
            rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(b,)))
            block = _DRAW[self.name](self, model, rng, SAMPLE_BLOCK)
            lo, hi = max(start, b * SAMPLE_BLOCK), min(stop, (b + 1) * SAMPLE_BLOCK)
            out[lo - start : hi - start] = block[lo - b * SAMPLE_BLOCK : hi - b * SAMPLE_BLOCK]
        return out


def _jsonable(v):
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, (np.integer, np.floating)):
        return v.item()
    return v


def _check_scale(scale, default: float) -> float:
    if scale is None:
        return default
    try:
        val = float(scale)
    except (TypeError, ValueError):
        raise TypeError(f"`scale` must be a positive float; got {scale!r}.") from None
    if not np.isfinite(val) or val <= 0:
        raise InputError(f"`scale` must be a positive finite float; got {scale!r}.")
    return val


def make_initializer(init, model, *, scale: float | None = None, problem=None, **params) -> Initializer:
    r"""Build an :class:`Initializer` from a name, ``"file:PATH.npy"`` or an array.

    Parameters
    ----------
    init : str or array_like
        One of :data:`SAMPLERS` (see the module docstring), ``"file:PATH.npy"``, or an
        array of shape ``(N, n_params)`` whose row i is sample i.
    model : Model
        The model whose flow is run (samples are in its coordinates).
    scale : float, optional
        Distribution scale; default 1.0 (``"stable-set"``: the radius along E, default 1.0).
    problem : flowgeom.Problem, optional
        Needed by ``"stable-set"`` with ``stratum=``.
    **params
        ``"balanced"``: ``rank`` (int, default min width). ``"stable-set"``: ``delta``
        (float >= 0, default 0.0), ``point`` (flat array, default the origin) or ``stratum``
        (label, needs ``problem``), ``coordinates`` (default ``"auto"``, the coordinates of
        ``problem.network()``).

    Returns
    -------
    Initializer

    Raises
    ------
    ValueError
        Unknown name, bad parameter values, array of the wrong shape or non-finite.
    TypeError
        A layered sampler asked of a model without layers; unexpected parameters.
    """
    n = model.n_params
    if not isinstance(init, str):
        arr = np.asarray(init, dtype=np.float64)
        return _array_initializer(arr, n, "array", params)
    if init.startswith("file:"):
        path = init[len("file:") :]
        if not os.path.exists(path):
            raise InputError(f"`init` {init!r}: file {path!r} does not exist; pass 'file:PATH.npy'.")
        arr = np.load(path, mmap_mode="r")
        return _array_initializer(arr, n, "file", dict(params, path=os.path.abspath(path)))
    if init not in SAMPLERS or init == "file":
        raise InputError(
            f"`init` must be one of 'gaussian', 'orthogonal', 'balanced', 'stable-set', 'file:PATH.npy' or "
            f"an array; got {init!r}."
        )
    sc = _check_scale(scale, 1.0)
    if init == "gaussian":
        _no_params(init, params)
        return Initializer("gaussian", sc, {})
    if init == "orthogonal":
        _no_params(init, params)
        _layer_shapes(model, init)
        return Initializer("orthogonal", sc, {})
    if init == "balanced":
        rank = params.pop("rank", None)
        _no_params(init, params)
        shapes = _layer_shapes(model, init)
        if getattr(model, "bias", False):
            raise TypeError("the 'balanced' sampler needs a model without biases (C_j is defined for chains W_j only).")
        widths = [shapes[0][1]] + [a for a, _ in shapes]
        kmax = min(widths)
        k = kmax if rank is None else int(rank)
        if rank is not None and (k != rank or not 1 <= k <= kmax):
            raise InputError(f"`rank` must be an integer in 1..{kmax} (the smallest width); got {rank!r}.")
        return Initializer("balanced", sc, {"rank": k}, {"widths": widths})
    # stable-set
    delta = float(params.pop("delta", 0.0))
    point = params.pop("point", None)
    stratum = params.pop("stratum", None)
    coordinates = params.pop("coordinates", "auto")
    _no_params(init, params)
    if not np.isfinite(delta) or delta < 0:
        raise InputError(f"`delta` must be a finite float >= 0; got {delta!r}.")
    if point is not None and stratum is not None:
        raise InputError("pass either `point` or `stratum` to the 'stable-set' sampler, not both.")
    if stratum is not None:
        if problem is None:
            raise InputError(f"`stratum={stratum!r}` needs a deep linear `problem`; pass `point=` for other models.")
        p = balanced_critical_point(problem, _parse_label(stratum), coordinates)
        label = str(stratum)
    elif point is not None:
        p = np.asarray(point, dtype=np.float64)
        label = None
    else:
        p = np.zeros(n)
        label = None
    if p.shape != (n,) or not np.all(np.isfinite(p)):
        raise InputError(f"`point` must be a finite flat vector of shape ({n},); got shape {p.shape}.")
    lam, V = np.linalg.eigh(model.hessian(p))
    keep = lam >= -STABLE_EIG_RTOL * max(1.0, float(np.max(np.abs(lam))))
    E = np.ascontiguousarray(V[:, keep])
    info = {"delta": delta, "point": p.tolist(), "stable_center_dim": int(E.shape[1])}
    if label is not None:
        info["stratum"] = label
    return Initializer("stable-set", sc, info, {"p": p, "E": E, "delta": delta})


# ---------------------------------------------------------------------------- draws (module level: picklable)
def _draw_gaussian(ini, model, rng, m):
    return ini.scale * rng.standard_normal((m, model.n_params))


def _draw_orthogonal(ini, model, rng, m):
    return _pack(model, [ini.scale * haar_semi_orthogonal(rng, m, a, b) for a, b in model.shapes])


def _draw_balanced(ini, model, rng, m):
    widths, k = ini._data["widths"], ini.params["rank"]
    frames = [haar_semi_orthogonal(rng, m, d, k) for d in widths]
    sig = np.linalg.svd(ini.scale * rng.standard_normal((m, k, k)), compute_uv=False)
    W = [(frames[j + 1] * sig[:, None, :]) @ np.swapaxes(frames[j], -1, -2) for j in range(len(widths) - 1)]
    return model.pack(W)


def _draw_stable_set(ini, model, rng, m):
    p, E, delta = ini._data["p"], ini._data["E"], ini._data["delta"]
    z = rng.standard_normal((m, E.shape[1]))
    xi = rng.standard_normal((m, p.shape[0]))
    return p + ini.scale * (z @ E.T) + delta * xi


_DRAW = {
    "gaussian": _draw_gaussian,
    "orthogonal": _draw_orthogonal,
    "balanced": _draw_balanced,
    "stable-set": _draw_stable_set,
}


def _no_params(name, params):
    if params:
        raise TypeError(f"unexpected parameter(s) {sorted(params)} for the {name!r} sampler.")


def _array_initializer(arr, n, name, params) -> Initializer:
    if arr.ndim != 2 or arr.shape[1] != n:
        raise InputError(
            f"the initialization array must have shape (N, n_params) = (N, {n}); got shape {arr.shape}."
        )
    if arr.dtype.kind not in "iuf":
        raise InputError(f"the initialization array must be real numbers; got dtype {arr.dtype}.")
    # hash in slabs so a memory-mapped file is never loaded whole
    h = hashlib.sha256()
    finite = True
    for i in range(0, arr.shape[0], 65536):
        slab = np.ascontiguousarray(arr[i : i + 65536], dtype=np.float64)
        finite &= bool(np.all(np.isfinite(slab)))
        h.update(slab.tobytes())
    if not finite:
        raise InputError("the initialization array contains NaN or inf; pass finite initial states.")
    info = dict(params, n_rows=int(arr.shape[0]), sha256=h.hexdigest())
    # a file is re-opened (memory-mapped) where it is sampled instead of travelling with the job
    return Initializer(name, 0.0, info, {}, None if name == "file" else arr)


def sample_initializations(
    model_or_problem,
    name="gaussian",
    n: int = 1,
    *,
    scale: float | None = None,
    seed: int = 0,
    start: int = 0,
    **params,
) -> Params:
    r"""Draw initial states ``start .. start+n-1`` of a named distribution.

    Parameters
    ----------
    model_or_problem : Model or flowgeom.Problem
        A Problem is replaced by ``problem.network()`` (the flow the user runs).
    name : str or array_like, default "gaussian"
        See :func:`make_initializer`.
    n : int, default 1
        Number of samples.
    scale : float, optional
        Distribution scale (default 1.0).
    seed : int, default 0
        Root seed; sample i depends only on (seed, i).
    start : int, default 0
        Index of the first sample.
    **params
        Sampler parameters (see :func:`make_initializer`).

    Returns
    -------
    ndarray, shape (n, n_params)

    Examples
    --------
    >>> from flowgeom import Problem
    >>> from flowgeom.basins.samplers import sample_initializations
    >>> a = sample_initializations(Problem.default(), "gaussian", 6, seed=1)
    >>> b = sample_initializations(Problem.default(), "gaussian", 3, seed=1, start=3)
    >>> bool((a[3:] == b).all())
    True
    """
    model, problem = _model_and_problem(model_or_problem)
    if int(n) != n or n < 0:
        raise InputError(f"`n` must be a non-negative integer; got {n!r}.")
    if int(start) != start or start < 0:
        raise InputError(f"`start` must be a non-negative integer; got {start!r}.")
    ini = make_initializer(name, model, scale=scale, problem=problem, **params)
    return ini.sample(model, int(start), int(start) + int(n), _check_seed(seed))


def _check_seed(seed) -> int:
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"`seed` must be a non-negative integer; got {seed!r}.")
    return int(seed)


def _model_and_problem(obj):
    from flowgeom.problem import Problem

    if isinstance(obj, Problem):
        return obj.network(), obj
    for attr in ("n_params", "loss", "grad"):
        if not hasattr(obj, attr):
            raise TypeError(
                f"`model_or_problem` must be a flowgeom.Problem or a Model (n_params, loss, grad, hvp, hessian, "
                f"conserved); got {type(obj).__name__} without `{attr}`."
            )
    return obj, None
