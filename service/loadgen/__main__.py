"""``python -m service.loadgen``: see ``service.loadgen.cli``."""

import sys

from service.loadgen.cli import main

if __name__ == "__main__":
    sys.exit(main())
