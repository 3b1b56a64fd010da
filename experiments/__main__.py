"""The course experiments, one command each.

    python -m experiments list                          # the studies and their questions
    python -m experiments run baseline                  # one study, full mode
    python -m experiments run seeds --quick --jobs 2    # reduced mode, 2 local processes
    python -m experiments run grid_search --scheduler tcp://10.0.0.5:8786   # on a dask cluster
    python -m experiments run baseline --epochs 5 --lr 0.1 --train-size 2000 --val-size 10000
    python -m experiments run all --quick               # every study, reduced (minutes)
    python -m experiments report                        # results/report.md and results/report.pdf

Every field of a study's ``Config`` dataclass is a flag (``foo_bar`` → ``--foo-bar``;
``run NAME --help`` lists them).  ``--quick`` runs subsets with fewer epochs and states
what it changed on every figure; ``--smoke`` runs on tiny data in seconds (the tests use
it).  Results go to ``results/<name>/``: figures (PNG), tables (Markdown and CSV),
``metrics.json``, ``log.txt`` and ``manifest.json`` (the full config, seeds, git commit,
library versions, threads, wall time and the command that reruns it).

Adding a study: write ``experiments/studies/<kind>/<module>.py`` (see the protocol in
``experiments/registry.py``) and add ``"<name>": "<its module>"`` to ``MODULES`` there,
one line.
"""

import sys

from experiments.runner import main

if __name__ == "__main__":
    sys.exit(main())
