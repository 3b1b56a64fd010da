"""``python -m benchmarks``: the numpy engine against PyTorch (see benchmarks.harness)."""

import sys

from .harness import main

if __name__ == "__main__":
    sys.exit(main())
