"""The ``tinygrad-mnist`` command (also ``python -m tinygrad_mnist``): one subcommand per
file in this package.

Exit codes: 0 success, 1 failure (a check failed, bad data, a diverged run), 2 usage error
(a bad flag, or an output folder that a run would overwrite).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Dict, List, Optional

from .. import __version__
from .bench import add_parser as add_bench_parser
from .common import ConfigError, UsageError, config_defaults
from .evaluate import add_parser as add_evaluate_parser
from .explore import add_parser as add_explore_parser
from .gradcheck import add_parser as add_gradcheck_parser
from .info import add_parser as add_info_parser
from .list_models import add_parser as add_models_parser
from .predict import add_parser as add_predict_parser
from .train import add_train_parser


class CommandParser(argparse.ArgumentParser):
    """The top-level parser; ``subcommands`` keeps the subparsers a ``--config`` file fills."""

    subcommands: Dict[str, argparse.ArgumentParser]


def build_parser() -> CommandParser:
    parser = CommandParser(prog="tinygrad-mnist",
                                     description="A from-scratch numpy neural-network engine for MNIST.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=argparse.ArgumentParser)
    parser.subcommands = {"train": add_train_parser(sub), "evaluate": add_evaluate_parser(sub),
                          "predict": add_predict_parser(sub), "info": add_info_parser(sub)}
    add_gradcheck_parser(sub)
    add_bench_parser(sub)
    add_explore_parser(sub)
    add_models_parser(sub)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); returns the exit status.

    A ``--config FILE.toml`` supplies defaults for the subcommand's options (flags given
    on the command line win): the file's values are checked like flags, and a bad key or
    value is a usage error (status 2).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"]:  # every option after it belongs to the benchmarks package
        from .bench import run_bench_argv

        try:
            return run_bench_argv(argv[1:])
        except (ValueError, OSError) as err:
            print(f"tinygrad-mnist: error: {err}", file=sys.stderr)
            return 1
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    if getattr(args, "config", None):
        sub = parser.subcommands[args.command]
        try:
            sub.set_defaults(**config_defaults(sub, args.config))
        except ConfigError as err:
            sub.error(str(err))
        args = parser.parse_args(argv)
    args.argv = argv
    try:
        return args.func(args)
    except UsageError as err:
        print(f"tinygrad-mnist {args.command}: error: {err}", file=sys.stderr)
        if getattr(args, "json", False) is True:
            print(json.dumps({"event": "error", "type": "UsageError", "message": str(err)}), flush=True)
        return 2
    except (ValueError, OSError, FloatingPointError) as err:
        print(f"tinygrad-mnist: error: {err}", file=sys.stderr)
        if getattr(args, "json", False) is True:
            print(json.dumps({"event": "error", "type": type(err).__name__, "message": str(err)}), flush=True)
        return 1
    except KeyboardInterrupt:
        print("tinygrad-mnist: interrupted", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
