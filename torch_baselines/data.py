"""The torch side's batches: a ``torch.utils.data`` pipeline that replays the numpy engine's.

- :class:`ImageDataset` is a ``torch.utils.data.Dataset`` over the **same** uint8 arrays as
  a :class:`tinygrad_mnist.data.Dataset` (no copy), converting to float exactly as the
  numpy :class:`~tinygrad_mnist.data.DataLoader` does: ``x = images[idx] * scale`` in the
  loader's dtype, flattened to (b, H*W) or shaped (b, 1, H, W).
- :class:`NumpyOrderSampler` is a batch sampler that yields the numpy ``DataLoader``'s
  batches of indices, epoch by epoch (its seeded permutation, its batch size, its
  ``drop_last``), so both engines see the same examples in the same batches.
- :func:`torch_loader` puts the two in a ``torch.utils.data.DataLoader`` (``num_workers=0``).

One batch is one fancy index and one conversion: the DataLoader calls
:meth:`ImageDataset.__getitems__` with the whole batch of indices (torch >= 2.1), which
returns an :class:`ImageBatch`, and :func:`collate_batch` hands over its ready tensors,
instead of fetching 64 single images and stacking them.  An ``ImageBatch`` also reads as
the list of its samples, so an ``ImageDataset`` in a DataLoader with torch's default
collation gives the same batches (the slow way).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Iterator, Tuple

import numpy as np
import torch
from torch.utils.data import DataLoader as TorchDataLoader
from torch.utils.data import Dataset as TorchDataset
from torch.utils.data import Sampler, default_collate

from tinygrad_mnist.data import DataLoader, Dataset
from tinygrad_mnist.data.augment import AugmentedLoader, random_affine
from tinygrad_mnist.nn import resolve_dtype

__all__ = ["AugmentingTorchLoader", "ImageBatch", "ImageDataset", "NumpyOrderSampler", "collate_batch",
           "torch_loader"]


class ImageBatch(Sequence):
    """A fetched batch: ``x`` float of shape (b, H*W) or (b, 1, H, W) and ``y`` int64 of
    shape (b,).  As a sequence it is its b samples ``(x[i], y[i])``, the list of samples
    torch's ``__getitems__`` contract asks for."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor):
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int | slice) -> Tuple[torch.Tensor, torch.Tensor]:
        return self.x[i], self.y[i]


def collate_batch(batch) -> Tuple[torch.Tensor, torch.Tensor]:
    """The collate function: an :class:`ImageBatch` as its ``(x, y)`` tensors (no copy);
    anything else through torch's ``default_collate``."""
    if isinstance(batch, ImageBatch):
        return batch.x, batch.y
    return default_collate(batch)


class ImageDataset(TorchDataset):
    """A torch ``Dataset`` view of a tinygrad_mnist :class:`~tinygrad_mnist.data.Dataset`.

    Parameters
    ----------
    dataset : tinygrad_mnist.data.Dataset
        Images uint8 of shape (n, H, W), labels int64 of shape (n,); kept, not copied.
    flatten : bool, default=True
        Items of shape (H*W,) if True, else (1, H, W).
    dtype : {np.float32, np.float64}, default=np.float32
    scale : float, default=1/255
        ``x = image * scale``, computed in ``dtype`` as the numpy loader does (bit for bit).
    """

    def __init__(self, dataset: Dataset, flatten: bool = True, dtype=np.float32, scale: float = 1 / 255):
        if not isinstance(dataset, Dataset):
            raise TypeError(f"ImageDataset: expected a tinygrad_mnist Dataset, got {type(dataset).__name__}")
        self.dataset, self.flatten, self.scale = dataset, bool(flatten), float(scale)
        self.dtype = resolve_dtype(dtype, "ImageDataset")
        self._shape = (-1, dataset.n_features) if self.flatten else (-1, 1, *dataset.image_shape)

    @classmethod
    def like(cls, loader: DataLoader) -> ImageDataset:
        """The dataset of a numpy ``DataLoader``, converted as that loader converts it."""
        return cls(loader.dataset, flatten=loader.flatten, dtype=loader.dtype, scale=loader.scale)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitems__(self, indices) -> ImageBatch:
        """A whole batch, ``indices`` of shape (b,): ``x`` float of shape (b, H*W) or
        (b, 1, H, W), ``y`` int64 of shape (b,), in one fancy index and one conversion."""
        idx = np.asarray(indices, dtype=np.intp)
        x = np.multiply(self.dataset.images[idx], self.scale, dtype=self.dtype)  # the numpy loader's formula
        return ImageBatch(torch.from_numpy(x.reshape(self._shape)), torch.from_numpy(self.dataset.labels[idx]))

    def __getitem__(self, index: int) -> Tuple[torch.Tensor, torch.Tensor]:
        """One example: ``x`` of shape (H*W,) or (1, H, W), ``y`` a 0-d int64 tensor."""
        return self.__getitems__([index])[0]

    def __repr__(self) -> str:
        return f"ImageDataset({self.dataset!r}, flatten={self.flatten}, dtype={self.dtype.name})"


# _ARRAY_BATCHES: torch's annotation asks a batch sampler for ``Sampler[list]``, but the DataLoader only
# hands each batch to ``__getitems__`` (or indexes with its items); an int64 array serves as well and
# saves two conversions per batch, so passing a NumpyOrderSampler is ignored for [arg-type].


class NumpyOrderSampler(Sampler[np.ndarray]):
    """Batch sampler yielding the numpy ``DataLoader``'s batches of indices.

    Each batch is an int64 array of shape (b,) (the DataLoader hands it to
    :meth:`ImageDataset.__getitems__` as is; an array, not a list, saves two conversions
    per batch).

    Epoch ``e`` is the numpy loader's epoch ``e``: with ``shuffle`` the permutation of
    ``(seed, e)``, cut into batches of ``batch_size`` (the last one dropped if it is short
    and ``drop_last``). The order is not computed here again: the sampler runs the numpy
    loader itself over a dataset whose labels are the indices ``0..n-1``, so it cannot
    drift from the numpy side.

    Parameters
    ----------
    loader : tinygrad_mnist.data.DataLoader
        Read for ``batch_size``, ``shuffle``, ``seed``, ``drop_last`` and the dataset size.

    Attributes
    ----------
    epoch : int
        The epoch the next ``iter()`` yields; it advances by one on each ``iter()``, and
        :meth:`set_epoch` replays any, as on the numpy loader.
    """

    def __init__(self, loader: DataLoader):
        if not isinstance(loader, DataLoader):
            raise TypeError(f"NumpyOrderSampler: expected a tinygrad_mnist DataLoader, got {type(loader).__name__}")
        n = len(loader.dataset)
        positions = Dataset(np.zeros((n, 1, 1), np.uint8), np.arange(n), "indices", num_classes=max(n, 1))
        self._positions = DataLoader(positions, batch_size=loader.batch_size, shuffle=loader.shuffle,
                                     seed=loader.seed, drop_last=loader.drop_last)
        self._positions.set_epoch(loader.epoch)

    @property
    def epoch(self) -> int:
        return self._positions.epoch

    def set_epoch(self, epoch: int) -> None:
        """Make the next ``iter()`` yield epoch ``epoch`` (>= 0)."""
        self._positions.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self._positions)

    def __iter__(self) -> Iterator[np.ndarray]:
        for _, indices in self._positions:
            yield indices


class AugmentingTorchLoader(TorchDataLoader):
    """The torch DataLoader of an :class:`~tinygrad_mnist.data.AugmentedLoader`: the same
    batches, each shifted and rotated by :func:`~tinygrad_mnist.data.augment.random_affine`
    with the numpy loader's generator for that epoch (``default_rng([seed, epoch, 1])``,
    drawn batch after batch), so both engines see the same moved images."""

    def __init__(self, loader: AugmentedLoader):
        super().__init__(ImageDataset.like(loader),
                         batch_sampler=NumpyOrderSampler(loader),  # type: ignore[arg-type]  # see _ARRAY_BATCHES
                         collate_fn=collate_batch, num_workers=0)
        self.augment = dict(max_shift=loader.max_shift, max_degrees=loader.max_degrees,
                            integer_shifts=loader.integer_shifts, shift_order=loader.shift_order)
        self.seed, self.image_shape = loader.seed, loader.dataset.image_shape

    def __iter__(self):
        rng = np.random.default_rng([self.seed, self.batch_sampler.epoch, 1])   # read before the pass advances it
        for x, y in super().__iter__():
            moved = random_affine(x.numpy().reshape(len(x), *self.image_shape), rng, **self.augment)
            yield torch.from_numpy(moved.reshape(x.shape)), y


def torch_loader(loader: DataLoader) -> TorchDataLoader:
    """A ``torch.utils.data.DataLoader`` yielding the same batches as the numpy ``loader``.

    Each epoch yields ``(x, y)`` tensors equal, index for index and value for value, to the
    numpy loader's epoch of the same number (``x`` float of shape (b, H*W) or
    (b, 1, H, W) in the loader's dtype, ``y`` int64 of shape (b,)). Call
    ``set_epoch`` on its ``batch_sampler`` to choose the epoch, as on the numpy loader.
    An :class:`~tinygrad_mnist.data.AugmentedLoader` gives an :class:`AugmentingTorchLoader`.
    """
    if isinstance(loader, AugmentedLoader):
        return AugmentingTorchLoader(loader)
    if type(loader) is not DataLoader:
        raise TypeError(f"torch_loader: no torch twin for a {type(loader).__name__}; expected a DataLoader or an "
                        "AugmentedLoader")
    return TorchDataLoader(ImageDataset.like(loader),
                           batch_sampler=NumpyOrderSampler(loader),  # type: ignore[arg-type]  # see _ARRAY_BATCHES
                           collate_fn=collate_batch, num_workers=0)
