"""Benchmarks: the numpy engine against PyTorch, same model, same data order, interleaved."""
