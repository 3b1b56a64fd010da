"""Helpers every subcommand shares."""

from __future__ import annotations

import sys


def warn(msg: str) -> None:
    bar = "!" * 78
    print(f"{bar}\n{msg}\n{bar}", file=sys.stderr)
