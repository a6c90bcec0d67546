"""Regenerate every figure: ``python studies/run_all.py [--quick] [--force]``.

Runs each ``studies/fig*.py`` in order (its ``main``), each reusing its cached Dataset in
``studies/data/`` when the attrs match. ``--quick`` runs the CI-sized versions and writes to
``studies/data/quick/`` instead of ``figures/``. Other options are passed to every study
(see ``python studies/fig01_landscape.py --help``). Exit status 1 if any study failed.
"""

from __future__ import annotations

import importlib
import sys
import time
import traceback
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the `studies` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from studies import paths  # noqa: E402

STUDIES = tuple(sorted(p.stem for p in paths.STUDIES.glob("fig*.py")))
"""Every study script, in figure order."""


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__)
        return 0
    failed = []
    t_all = time.perf_counter()
    for name in STUDIES:
        t0 = time.perf_counter()
        print(f"=== {name}")
        try:
            importlib.import_module(f"studies.{name}").main(argv)
        except Exception:  # one broken study must not hide the others
            traceback.print_exc()
            failed.append(name)
        print(f"=== {name}: {time.perf_counter() - t0:.1f} s")
    print(f"all studies: {time.perf_counter() - t_all:.1f} s; failed: {failed or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
