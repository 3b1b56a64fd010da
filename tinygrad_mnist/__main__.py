"""``python -m tinygrad_mnist``: the same as the ``tinygrad-mnist`` command."""

import sys

from .cli import main

sys.exit(main())
