"""Mini-batches: :class:`DataLoader` turns a uint8 :class:`~.datasets.Dataset` into float
batches ``(x, y)``, one seeded permutation per epoch."""

from __future__ import annotations

from typing import Iterator, Optional, Tuple, Union

import numpy as np
from numpy.typing import DTypeLike

from ..nn.module import resolve_dtype
from .datasets import Dataset, check_int

#: one batch: float images (flattened or (n, 1, H, W)) and int64 labels
Batch = Tuple[np.ndarray, np.ndarray]

__all__ = ["DataLoader"]


class DataLoader:
    """Iterate over a Dataset in float mini-batches ``(x, y)``, one epoch per ``iter()``.

    Parameters
    ----------
    dataset : Dataset
    batch_size : int, default=256
    shuffle : bool, default=True
        Epoch ``e`` uses the permutation ``np.random.default_rng([seed, e]).permutation(n)``,
        so the order depends only on ``(seed, epoch)``: two loaders with the same seed
        agree epoch by epoch, consecutive epochs differ, and :meth:`set_epoch` replays any.
    seed : int, default=0
    drop_last : bool, default=False
        Drop the final batch if it is smaller than ``batch_size``.
    flatten : bool, default=True
        ``x`` has shape (b, H*W) if True, else (b, 1, H, W).
    dtype : {np.float32, np.float64}, default=np.float32
    scale : float, default=1/255
        ``x = images * scale``, computed per batch (images stay uint8 in memory).

    Attributes
    ----------
    epoch : int
        The epoch the next ``iter()`` will produce; it advances by one on each ``iter()``.
    """

    def __init__(self, dataset: Dataset, batch_size: int = 256, shuffle: bool = True, seed: int = 0,
                 drop_last: bool = False, flatten: bool = True, dtype: DTypeLike = np.float32,
                 scale: float = 1 / 255) -> None:
        if not isinstance(dataset, Dataset):
            raise TypeError(f"DataLoader: expected a Dataset, got {type(dataset).__name__}")
        if not np.isfinite(scale):
            raise ValueError(f"DataLoader: scale must be finite, got {scale}")
        self.dataset, self.shuffle, self.drop_last = dataset, bool(shuffle), bool(drop_last)
        self.batch_size = check_int(batch_size, "DataLoader: batch_size", 1)
        self.seed = check_int(seed, "DataLoader: seed", 0)
        self.flatten, self.dtype, self.scale = bool(flatten), resolve_dtype(dtype, "DataLoader"), float(scale)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Make the next ``iter()`` produce epoch ``epoch`` (>= 0)."""
        self.epoch = check_int(epoch, "DataLoader.set_epoch: epoch", 0)

    def __len__(self) -> int:
        n, b = len(self.dataset), self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def __iter__(self) -> Iterator[Batch]:
        epoch, self.epoch = self.epoch, self.epoch + 1
        n = len(self.dataset)
        order = np.random.default_rng([self.seed, epoch]).permutation(n) if self.shuffle else None
        return self._batches(order)

    def _batches(self, order: Optional[np.ndarray]) -> Iterator[Batch]:
        d = self.dataset
        images, labels = d.images, d.labels
        shape = (-1, d.n_features) if self.flatten else (-1, 1, *d.image_shape)
        for i in range(len(self)):
            sel = slice(i * self.batch_size, (i + 1) * self.batch_size)
            idx: Union[slice, np.ndarray] = sel if order is None else order[sel]
            x = np.multiply(images[idx], self.scale, dtype=self.dtype)
            yield x.reshape(shape), labels[idx]

    def __repr__(self) -> str:
        return f"DataLoader({self.dataset!r}, batch_size={self.batch_size}, seed={self.seed})"
