"""``python -m trautoml``: the ``trautoml`` command (see trautoml.cli)."""
import sys

from trautoml.cli import main

if __name__ == "__main__":
    sys.exit(main())
