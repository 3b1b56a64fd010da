"""``tinygrad-mnist bench``: the numpy engine against PyTorch (``benchmarks`` package).

The ``benchmarks`` package (and torch) is imported only when the command runs, so the
other subcommands start fast; ``tinygrad-mnist bench --help`` lists its options.
"""

from __future__ import annotations

import argparse
from typing import Optional, Sequence

from .common import DefaultsFormatter


def add_parser(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "bench", help="benchmark the numpy engine against PyTorch (see `tinygrad-mnist bench --help`)",
        description="Runs the benchmarks package (python -m benchmarks); all options are its own.",
        add_help=False)
    p.add_argument("bench_args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)  # main() hands argv over
    p.set_defaults(func=run_bench)
    return p


def run_bench(args: argparse.Namespace) -> int:
    return run_bench_argv(args.bench_args)


def run_bench_argv(argv: Optional[Sequence[str]]) -> int:
    """Parse ``argv`` with the benchmarks' own options and run them (imported only now)."""
    try:
        import benchmarks
    except ImportError as err:
        raise ValueError(f"bench: the benchmarks package is not importable ({err}); install the project "
                         "with its benchmarks (pip install -e '.[torch]')") from None
    parser = argparse.ArgumentParser(prog="tinygrad-mnist bench", description=benchmarks.__doc__,
                                     formatter_class=DefaultsFormatter)
    benchmarks.add_arguments(parser)
    return benchmarks.run(parser.parse_args(argv))
