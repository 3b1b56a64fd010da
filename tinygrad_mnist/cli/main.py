"""The ``tinygrad-mnist`` command (also ``python -m tinygrad_mnist``): one subcommand per
file in this package.

Exit codes: 0 success, 1 failure (a check failed, bad data, a diverged run), 2 usage error.
"""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from .. import __version__
from .explore import add_parser as add_explore_parser
from .gradcheck import add_parser as add_gradcheck_parser
from .train import add_train_parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tinygrad-mnist", description="A from-scratch numpy neural-network engine for MNIST.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_train_parser(sub)
    add_gradcheck_parser(sub)
    add_explore_parser(sub)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, FloatingPointError) as err:
        print(f"tinygrad-mnist: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
