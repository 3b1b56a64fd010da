"""The course CNN only: ``python -m benchmarks.bench_cnn [bench options]``.

Kept for the commands in older notes; it is ``python -m benchmarks --models course-cnn
--batch-sizes 64`` with any further options passed through (``--profile``, ``--quick``,
``--json FILE`` ...).  See :mod:`benchmarks.harness` for the method.
"""

from __future__ import annotations

import sys

from .harness import main as harness_main


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    defaults = []
    if "--models" not in argv:
        defaults += ["--models", "course-cnn"]
    if "--batch-sizes" not in argv:
        defaults += ["--batch-sizes", "64"]
    return harness_main(defaults + argv)


if __name__ == "__main__":
    sys.exit(main())
