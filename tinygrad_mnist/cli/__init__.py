"""The ``tinygrad-mnist`` command line; see :mod:`.main`."""

from .main import build_parser, main

__all__ = ["main", "build_parser"]
