"""Lazy public names for package ``__init__`` files (PEP 562): a name's module is imported on first use.

A command imports only what it runs: ``python -m flowgeom basins`` no longer loads scipy.optimize
(the MLP symmetry code), scipy.integrate/stats (the audit) or the transitions. Measured with
``python -X importtime`` (sum of the top-level imports; 2 shared cores, load average 9-10, median of
three interleaved runs): ``import flowgeom`` 5.3 s -> 0.05 s; the ``basins`` command's imports
7.9 s -> 4.7 s (at load average 5-6: 3.3 s -> 2.3 s). What remains is what the command runs:
xarray with pandas and dask.array (xarray probes for dask arrays), distributed (xarray asks dask for
a scheduler when it writes netCDF), numba, scipy.linalg. Every public name still resolves (``flowgeom.X``,
``from flowgeom import X``, ``from flowgeom import *``, ``dir(flowgeom)``), and so does a submodule
reached as an attribute (``flowgeom.io``), as when the package imported it eagerly.

Not public API.
"""

from __future__ import annotations

import importlib
import sys


def attach(package: str, exports: dict[str, tuple[str, ...] | list[str]]):
    """``(__getattr__, __dir__)`` for ``package`` exporting ``{module: names}``, imported on first access.

    A resolved name is cached in the package's namespace, so later lookups cost nothing. An
    unknown name that is a submodule is imported (``flowgeom.io``); anything else is an
    AttributeError, as for any module.
    """
    where = {name: module for module, names in exports.items() for name in names}

    def __getattr__(name: str):
        module = where.get(name)
        if module is not None:
            value = getattr(importlib.import_module(module), name)
        elif name.startswith("__"):
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        else:
            try:
                value = importlib.import_module(f"{package}.{name}")
            except ModuleNotFoundError as e:
                if e.name != f"{package}.{name}":
                    raise
                raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        setattr(sys.modules[package], name, value)
        return value

    def __dir__():
        return sorted(set(vars(sys.modules[package])) | set(where))

    return __getattr__, __dir__
