"""``python -m ensemble_core``: see :mod:`ensemble_core.cli`."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
