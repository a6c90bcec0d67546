"""``python -m flowgeom`` is the ``flowgeom`` command."""

import sys

from flowgeom.cli import main

if __name__ == "__main__":
    sys.exit(main())
