r"""Say when the compiled kernels are being compiled ("compiling kernels, once") instead of pausing silently.

The kernels of :mod:`flowgeom.flow._numba` are compiled by numba on first use and cached on disk
(``cache=True``: next to the sources, or under ``NUMBA_CACHE_DIR``). Loading them from the cache
takes a fraction of a second; compiling them takes tens of seconds. :func:`compile_report` listens
to numba's ``"numba:compile"`` event, which numba fires only for a real compilation (never for a
load from the disk cache), and prints one line to stderr the first time it fires during the reported
call, then one line with the time it took when the call returns; a call whose kernels all come from
the cache (or are already in memory) prints nothing. Internal module.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time

#: rough duration of a full compilation of the kernels on a 2-core machine (seconds), for the message
COMPILE_ESTIMATE_S = 20


class CompileNotice:
    """Whether the compile message was shown during one reported call, and when compiling started."""

    def __init__(self):
        self.shown = False
        self.started = None
        self._lock = threading.Lock()

    def start(self, stream):
        """Called when numba starts compiling something: print the message the first time."""
        with self._lock:
            if self.shown:
                return
            self.shown = True
            self.started = time.perf_counter()
        print(f"flowgeom: compiling kernels, once (~{COMPILE_ESTIMATE_S} s; cached for later runs) ...",
              file=stream if stream is not None else sys.stderr, flush=True)

    def finish(self, stream):
        """Called when the reported call returns: print the compile time if this call compiled."""
        with self._lock:
            started, self.started = self.started, None
        if started is not None:
            print(f"flowgeom: kernels compiled in {time.perf_counter() - started:.1f} s",
                  file=stream if stream is not None else sys.stderr, flush=True)


@contextlib.contextmanager
def compile_report(notice=None, stream=None):
    """Report numba compilations that happen inside the ``with`` block (see the module docstring).

    Parameters
    ----------
    notice : CompileNotice or None, default None
        Where "already shown" is recorded; None: a new one (the message at most once per ``with`` block).
    stream : file-like or None, default None
        Where to print; None is ``sys.stderr`` at the time of printing.
    """
    notice = CompileNotice() if notice is None else notice
    try:
        from numba.core import event
    except ImportError:  # pragma: no cover - numba absent: nothing is compiled
        yield notice
        return

    class _Listener(event.Listener):
        def on_start(self, ev):
            notice.start(stream)

        def on_end(self, ev):
            pass

    try:
        with event.install_listener("numba:compile", _Listener()):
            yield notice
    finally:
        notice.finish(stream)
