"""Argument checks shared by every public entry point (one place, like scipy's ``common.validate_*``).

Each check names the argument in backticks, shows the value and says the fix. Errors a user's
input causes are :class:`InputError` (a ``ValueError``); the command line turns them into exit
status 2 with one line.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["InputError", "check_positive", "check_int", "check_seed", "check_choice", "check_probability",
           "check_memory", "memory_budget"]


class InputError(ValueError):
    """An argument or an input file is unusable; the message names it and says the fix."""


def check_positive(name: str, value, allow_zero: bool = False, allow_inf: bool = False) -> float:
    """``value`` as a float that is > 0 (>= 0 with ``allow_zero``), finite unless ``allow_inf``."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"`{name}` must be a real number; got {value!r}.") from None
    if isinstance(value, (bool, np.bool_)) or isinstance(value, complex):
        raise InputError(f"`{name}` must be a real number; got {value!r}.")
    ok = (v >= 0 if allow_zero else v > 0) and not math.isnan(v) and (allow_inf or math.isfinite(v))
    if not ok:
        kind = "non-negative" if allow_zero else "positive"
        raise InputError(f"`{name}` must be a {'' if allow_inf else 'finite '}{kind} number; got {value!r}.")
    return v


def check_int(name: str, value, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` as an int within [minimum, maximum]; bools and non-integral floats are refused."""
    if isinstance(value, (bool, np.bool_)):
        raise InputError(f"`{name}` must be an integer; got {value!r}.")
    try:
        v = int(value)
        if v != value:
            raise ValueError
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"`{name}` must be an integer; got {value!r}.") from None
    if minimum is not None and v < minimum:
        raise InputError(f"`{name}` must be >= {minimum}; got {value!r}.")
    if maximum is not None and v > maximum:
        raise InputError(f"`{name}` must be <= {maximum}; got {value!r}.")
    return v


def check_seed(value) -> int:
    """A root seed: a non-negative integer (numpy's SeedSequence refuses negative entropy)."""
    return check_int("seed", value, minimum=0)


def check_choice(name: str, value, choices) -> str:
    """``value`` must be one of ``choices`` (strings)."""
    if not isinstance(value, str) or value not in choices:
        raise InputError(f"`{name}` must be one of {', '.join(map(repr, choices))}; got {value!r}.")
    return value


def check_probability(name: str, value) -> float:
    """A level in the open interval (0, 1), e.g. a confidence level."""
    v = check_positive(name, value)
    if not v < 1:
        raise InputError(f"`{name}` must lie in (0, 1), e.g. 0.95; got {value!r}.")
    return v


def check_memory(what: str, nbytes: float, fix: str, budget: float | None = None) -> None:
    """Refuse work whose estimated memory ``nbytes`` exceeds ``budget`` (default: half the available RAM).

    ``what`` says what needs the memory, ``fix`` which option to lower or raise; the message shows
    both sizes, so a user sees the limit before a MemoryError half-way through.
    """
    budget = memory_budget() if budget is None else float(budget)
    if not nbytes <= budget:
        raise InputError(f"{what} needs about {_size(nbytes)}, more than the {_size(budget)} available; {fix}.")


def memory_budget() -> float:
    """Half of the memory available now (``MemAvailable`` of /proc/meminfo), or 4 GB where unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return 0.5 * 1024 * float(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 4e9


def _size(n: float) -> str:
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n / 1e3:.3g} kB"
