r"""One progress-bar policy for every stage (basins, transitions, strata, claims).

A bar is shown when the caller asks for it (``enabled``), on a terminal or not: a user who redirects a
long run to a log file still sees how far it is and its ETA. Off a terminal the bar is refreshed at most
every ``LOG_INTERVAL_S`` seconds, so a log holds a few lines per minute, not one per tenth of a second.
"""

from __future__ import annotations

import sys

LOG_INTERVAL_S = 30.0
"""Seconds between refreshes of a bar written to something that is not a terminal."""


def progress_bar(iterable=None, *, enabled: bool, **kwargs):
    """A ``tqdm`` bar on stderr with an ETA, shown iff ``enabled`` (see the module docstring)."""
    from tqdm.auto import tqdm

    tty = bool(getattr(sys.stderr, "isatty", lambda: False)())
    if not tty:
        kwargs.setdefault("mininterval", LOG_INTERVAL_S)
        kwargs.setdefault("ascii", True)
    return tqdm(iterable, disable=not enabled, file=sys.stderr, **kwargs)
