"""Helpers every subcommand shares: checked argument types, output modes (``--quiet``,
``--json`` lines), the TOML config file, and what a run records about its environment."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import Any, Callable, Optional, Union, cast

from ..types import PathLike


def warn(msg: str) -> None:
    bar = "!" * 78
    print(f"{bar}\n{msg}\n{bar}", file=sys.stderr)


# -- argument types: a bad value is a usage error (exit 2) that names the flag -----------------
def positive_int(text: str) -> int:
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def non_negative_int(text: str) -> int:
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {text}")
    return value


def positive_float(text: str) -> float:
    value = _float(text)
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be positive and finite, got {text}")
    return value


def non_negative_float(text: str) -> float:
    value = _float(text)
    if not (value >= 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be non-negative and finite, got {text}")
    return value


def unit_interval(text: str) -> float:
    """A float in [0, 1) (momentum, dropout probability)."""
    value = _float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must lie in [0, 1), got {text}")
    return value


def _int(text: str) -> int:
    if isinstance(text, bool):
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}")
    if isinstance(text, int):
        return text
    try:
        return int(str(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _float(text: str) -> float:
    if isinstance(text, bool):
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}")
    try:
        return float(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


class UsageError(ValueError):
    """A command line that cannot run as given (exit status 2, like a bad flag), e.g. an
    output folder that would be overwritten."""


class DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` with ``(default: X)`` after every option that has a default worth showing
    (not for on/off flags, nor where the default depends on other options: None)."""

    def _get_help_string(self, action: argparse.Action) -> Optional[str]:
        if action.default is None or isinstance(action.default, bool) or action.default is argparse.SUPPRESS:
            return action.help
        if "default:" in (action.help or "") or "%(default)" in (action.help or ""):
            return action.help  # the help states its default itself
        if isinstance(action.default, (list, tuple)):  # 64 256, not [64, 256]
            shown = " ".join(map(str, action.default)).replace("%", "%%")
            return f"{action.help or ''} (default: {shown})".strip()
        return super()._get_help_string(action)


def add_output_flags(p: Union[argparse.ArgumentParser, "argparse._ArgumentGroup"]) -> None:
    """``--quiet`` and ``--json`` (and ``--no-progress``) on a subcommand."""
    p.add_argument("--quiet", "-q", action="store_true", help="print only the result (and errors)")
    p.add_argument("--json", action="store_true",
                   help="write JSON lines to stdout (one object per event) instead of text")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (default: a bar when "
                   "stderr is a terminal)")


class Reporter:
    """Where a subcommand's output goes: text (``say`` unless quiet, ``result`` always) or
    JSON lines (``event`` objects only; text suppressed)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.quiet = bool(getattr(args, "quiet", False))
        self.json = bool(getattr(args, "json", False))
        self.progress = False if (self.quiet or self.json or getattr(args, "no_progress", False)) else None

    def say(self, text: str = "") -> None:
        if not (self.quiet or self.json):
            print(text, flush=True)

    def result(self, text: str) -> None:
        if not self.json:
            print(text, flush=True)

    def event(self, kind: str, **data: Any) -> None:
        if self.json:
            from ..history import json_default

            print(json.dumps({"event": kind, **data}, default=json_default), flush=True)


# -- the TOML config file: its values become defaults, so flags win ---------------------------
def config_defaults(parser: argparse.ArgumentParser, path: PathLike) -> dict:
    """Read ``path`` (TOML) and return the parser defaults it sets, converted and checked.

    Keys are the long option names with ``-`` or ``_`` (``batch-size`` or ``batch_size``);
    an unknown key, a value of the wrong type or outside the choices is an error naming the
    key and the file.  A ``[train]`` (or any subcommand) table is read when present, else
    the top level.
    """
    import tomllib

    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"config file {path}: not valid TOML ({err})") from None
    command = parser.prog.split()[-1]
    if isinstance(data.get(command), dict):
        data = data[command]
    actions = {a.dest: a for a in parser._actions if a.option_strings}
    out = {}
    for key, value in data.items():
        dest = key.replace("-", "_")
        action = actions.get(dest)
        if action is None or dest in ("help", "config"):
            valid = sorted(d for d in actions if d not in ("help", "config"))
            raise ConfigError(f"config file {path}: unknown key {key!r}; valid keys: {', '.join(valid)}")
        out[dest] = _convert(action, value, f"config file {path}: {key}")
    return out


class ConfigError(ValueError):
    """A config file is missing, not TOML, or holds a key or value the command does not take."""


def _convert(action: argparse.Action, value: Any, where: str) -> Any:
    if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
        return value
    many = action.nargs in ("+", "*") or isinstance(action.nargs, int)
    items = value if isinstance(value, list) else [value]
    if not many and isinstance(value, list):
        raise ConfigError(f"{where} takes one value, got a list {value!r}")
    converted = []
    for item in items:
        if action.type is not None:
            try:
                item = cast(Callable[[Any], Any], action.type)(item)  # the project passes functions only
            except (argparse.ArgumentTypeError, TypeError, ValueError) as err:
                raise ConfigError(f"{where}: {err}") from None
        if action.choices is not None and item not in action.choices:
            raise ConfigError(f"{where}: {item!r} is not one of {', '.join(map(str, action.choices))}")
        converted.append(item)
    return converted if many else converted[0]


# -- what every run records --------------------------------------------------------------------
def environment() -> dict:
    """Versions, threads and BLAS, recorded next to every run's results."""
    import platform

    import numpy as np

    from .. import __version__

    env: dict[str, Any] = {"tinygrad_mnist": __version__, "numpy": np.__version__, "python": platform.python_version(),
           "platform": platform.platform(), "cpu_count": os.cpu_count()}
    for name in ("torch", "matplotlib", "scikit-learn", "tqdm", "pillow", "threadpoolctl"):
        env[name] = package_version(name)
    env["blas"] = blas_info()
    return env


def package_version(name: str) -> Optional[str]:
    """The installed version of ``name`` without importing it (None when absent)."""
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def blas_info() -> list:
    """numpy's BLAS libraries and their thread counts (through threadpoolctl when installed)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    return [{k: d.get(k) for k in ("internal_api", "version", "num_threads", "threading_layer",
                                   "architecture")} for d in threadpool_info() if d.get("user_api") == "blas"]
