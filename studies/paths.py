"""Every path the studies use, derived from this file's location (never from the current directory).

``ROOT`` is the repository root, ``FIGURES`` the committed figures, ``DATA`` the cache of computed
Datasets (``studies/data/<name>.nc``, not committed) and ``QUICK`` where ``--quick`` runs write
their (tiny, throw-away) outputs so that they never overwrite the committed figures.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STUDIES = ROOT / "studies"
FIGURES = ROOT / "figures"
DATA = STUDIES / "data"
QUICK = DATA / "quick"
STYLE = STUDIES / "flowgeom.mplstyle"
