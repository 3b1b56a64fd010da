"""Benchmarks: the numpy engine against PyTorch, same model, same data order, interleaved.

``python -m benchmarks`` (also ``tinygrad-mnist bench``) runs :mod:`benchmarks.harness`;
``add_arguments(parser)`` and ``run(args)`` let another command line host it.
"""

from .harness import RECORD_KEYS, BenchConfig, add_arguments, compare, run

__all__ = ["add_arguments", "run", "compare", "BenchConfig", "RECORD_KEYS"]
