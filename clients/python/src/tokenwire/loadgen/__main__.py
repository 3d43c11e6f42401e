"""``python -m tokenwire.loadgen``: see ``tokenwire.loadgen.cli``."""

import sys

from tokenwire.loadgen.cli import main

if __name__ == "__main__":
    sys.exit(main())
