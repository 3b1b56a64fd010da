"""Data augmentation on the batch: small random shifts and rotations, for both engines.

:class:`AugmentedLoader` is a :class:`~tinygrad_mnist.data.loader.DataLoader` whose
training batches are moved and turned at random before they reach the model.  It lives
on the data side, in numpy, so the numpy ``fit`` and ``torch_baselines.fit`` (which both
read batches through this loader) train on exactly the same augmented images::

    loader = AugmentedLoader(train, batch_size=64, seed=0, flatten=False, max_shift=2, max_degrees=10)
    fit(model, loss, optimizer, loader, ...)                  # numpy
    torch_baselines.fit(twin, loss_fn, opt, loader, ...)      # torch, the same batches

The transform of image ``n`` maps each output pixel ``p`` (row, column) to the source
point ``s = R(-θ_n)(p - c) + c - t_n`` (``c`` the image centre, ``R`` a rotation, ``t_n``
the shift) and reads the source by bilinear interpolation, zeros outside the image.
Integer shifts without rotation reproduce a plain translation exactly.
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np

from .datasets import Dataset
from .loader import Batch, DataLoader

__all__ = ["random_affine", "draw_shifts", "affine_batch", "shift_batch", "check_ranges", "AugmentedLoader",
           "SHIFT_ORDERS"]

#: How :func:`draw_shifts` reads the shifts of a batch from the generator (see there).
SHIFT_ORDERS = ("per_image", "per_axis")


def affine_batch(images: np.ndarray, degrees: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """Rotate image ``n`` by ``degrees[n]`` about its centre and shift it by ``shifts[n]``.

    ``out[n, i, j] = bilinear(images[n], s)``, ``s = R(-θ)((i, j) - c) + c - (dy, dx)``,
    zero outside the image; the result has the input's dtype (rounded for integers).

    Parameters
    ----------
    images : ndarray of shape (N, H, W) or (N, C, H, W)
    degrees : ndarray of shape (N,)
        Anticlockwise rotation angle of each image, in degrees.
    shifts : ndarray of shape (N, 2)
        ``(dy, dx)`` of each image in pixels (down, right).

    Returns
    -------
    ndarray of the shape and dtype of ``images``, a new array
    """
    x = np.asarray(images)
    if x.ndim not in (3, 4):
        raise ValueError(f"affine_batch: images must have shape (N, H, W) or (N, C, H, W), got {x.shape}")
    n, (h, w) = x.shape[0], x.shape[-2:]
    degrees = np.asarray(degrees, dtype=np.float64)
    shifts = np.asarray(shifts, dtype=np.float64)
    if degrees.shape != (n,) or shifts.shape != (n, 2):
        raise ValueError(f"affine_batch: expected degrees of shape ({n},) and shifts of shape ({n}, 2), "
                         f"got {degrees.shape} and {shifts.shape}")
    # Pad every image with P zeros on each side, enough for any source point of a turn
    # (≤ (√2 - 1)/2 of the size beyond the image) plus the shift: no bounds checks needed.
    pad = int(np.ceil(0.21 * max(h, w) + np.abs(shifts).max(initial=0.0))) + 2
    hp, wp = h + 2 * pad, w + 2 * pad
    theta = np.deg2rad(degrees).astype(np.float32)[:, None, None]
    cos, sin = np.cos(theta), np.sin(theta)
    ii = (np.arange(h, dtype=np.float32) - (h - 1) / 2.0)[:, None]                   # about the centre
    jj = (np.arange(w, dtype=np.float32) - (w - 1) / 2.0)[None, :]
    off_i = ((h - 1) / 2.0 + pad - shifts[:, 0]).astype(np.float32)[:, None, None]
    off_j = ((w - 1) / 2.0 + pad - shifts[:, 1]).astype(np.float32)[:, None, None]
    # rows grow downwards: an anticlockwise turn on screen reads its source at R(-θ)p in (x, y) = (j, -i)
    src_i = np.clip(cos * ii + sin * jj + off_i, 0, hp - 2)                          # in padded coordinates
    src_j = np.clip(cos * jj - sin * ii + off_j, 0, wp - 2)
    i0, j0 = np.floor(src_i), np.floor(src_j)
    fi, fj = src_i - i0, src_j - j0
    base = i0.astype(np.intp) * wp + j0.astype(np.intp) + (np.arange(n) * (hp * wp))[:, None, None]
    flat = x.reshape(n, -1, h, w)
    out: np.ndarray = np.empty(flat.shape, np.float32)
    padded = np.zeros((n, hp, wp), np.float32)
    for c in range(flat.shape[1]):
        padded[:, pad:pad + h, pad:pad + w] = flat[:, c]
        p = padded.ravel()
        top = p[base]
        top += fj * (p[base + 1] - top)
        bottom = p[base + wp]
        bottom += fj * (p[base + wp + 1] - bottom)
        out[:, c] = top + fi * (bottom - top)
    out = out.reshape(x.shape)
    if np.issubdtype(x.dtype, np.integer):
        info = np.iinfo(x.dtype)
        return np.clip(np.rint(out), info.min, info.max).astype(x.dtype)
    return out.astype(x.dtype, copy=False)


def check_ranges(max_shift: float, max_degrees: float, who: str) -> None:
    """Raise ValueError unless ``0 <= max_shift`` and ``0 <= max_degrees <= 180`` (finite)."""
    if not (np.isfinite(max_shift) and max_shift >= 0 and np.isfinite(max_degrees) and 0 <= max_degrees <= 180):
        raise ValueError(f"{who}: need 0 <= max_shift and 0 <= max_degrees <= 180, got {max_shift} and {max_degrees}")


def draw_shifts(rng: np.random.Generator, n: int, max_shift: float, integer_shifts: bool = True,
                shift_order: str = "per_image") -> np.ndarray:
    """The random shifts ``(dy, dx)`` of ``n`` images, each uniform in ``[-max_shift, max_shift]``.

    Whole pixels when ``integer_shifts`` (``s = int(max_shift)``), real numbers otherwise.
    Both orders give the same distribution; they differ in which draw becomes which shift:

    - ``"per_image"``: the generator gives ``(dy, dx)`` image after image,
      ``shifts = rng.integers(-s, s + 1, size=(n, 2))``;
    - ``"per_axis"`` (whole pixels only): it gives every image's window offset ``o`` along
      the rows, then along the columns, ``o = rng.integers(0, 2s + 1, size=(2, n))``, and
      ``shifts = (s - o)ᵀ``, the draws of ``tinygrad-mnist train --augment-shift`` and of
      the ``numpy_cnn`` study, so that their runs replay unchanged.

    Returns
    -------
    ndarray of shape (n, 2), float64
    """
    if shift_order not in SHIFT_ORDERS:
        raise ValueError(f"draw_shifts: shift_order must be one of {SHIFT_ORDERS}, got {shift_order!r}")
    if shift_order == "per_axis":
        if not integer_shifts:
            raise ValueError("draw_shifts: shift_order 'per_axis' draws whole pixels; it needs integer_shifts=True")
        s = int(max_shift)
        return (s - rng.integers(0, 2 * s + 1, size=(2, n))).T.astype(np.float64)
    if integer_shifts:
        s = int(max_shift)
        return rng.integers(-s, s + 1, size=(n, 2)).astype(np.float64)
    return rng.uniform(-max_shift, max_shift, size=(n, 2))


def random_affine(images: np.ndarray, rng: np.random.Generator, max_shift: float = 0,
                  max_degrees: float = 0.0, integer_shifts: bool = True, shift_order: str = "per_image") -> np.ndarray:
    """Each image moved by its own random shift and turned by its own random angle.

    Shifts ``(dy, dx)`` are uniform in ``[-max_shift, max_shift]`` (whole pixels when
    ``integer_shifts``, drawn in ``shift_order``, see :func:`draw_shifts`), angles uniform
    in ``[-max_degrees, max_degrees]``; see :func:`affine_batch`.  With both 0 the images
    are returned unchanged (no copy).

    Parameters
    ----------
    images : ndarray of shape (N, H, W) or (N, C, H, W)
    rng : np.random.Generator
    max_shift : float, default=0
    max_degrees : float, default=0
    integer_shifts : bool, default=True
    shift_order : {"per_image", "per_axis"}, default="per_image"
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"random_affine: rng must be a np.random.Generator, got {type(rng).__name__}")
    check_ranges(max_shift, max_degrees, "random_affine")
    if not max_shift and not max_degrees:
        return images
    n = len(images)
    shifts = draw_shifts(rng, n, max_shift, integer_shifts, shift_order)
    if not max_degrees and integer_shifts:
        return shift_batch(images, shifts.astype(np.intp))
    degrees = rng.uniform(-max_degrees, max_degrees, size=n) if max_degrees else np.zeros(n)
    return affine_batch(images, degrees, shifts)


def shift_batch(images: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """Translate image ``n`` by the whole pixels ``shifts[n] = (dy, dx)``, zeros shifted in.

    ``out[n, ..., i, j] = images[n, ..., i - dy, j - dx]`` (0 outside): zero-pad by the
    largest shift, view every ``H×W`` window of the padded batch and pick one per image;
    the same as :func:`affine_batch` with zero angles, without the interpolation.
    """
    x = np.asarray(images)
    shifts = np.asarray(shifts)
    if x.ndim not in (3, 4) or shifts.shape != (len(x), 2) or shifts.dtype.kind not in "iu":
        raise ValueError(f"shift_batch: expected images (N, [C,] H, W) and integer shifts (N, 2), "
                         f"got {x.shape} and {shifts.shape} {shifts.dtype}")
    n, (h, w) = len(x), x.shape[-2:]
    s = int(np.abs(shifts).max(initial=0))
    flat = x.reshape(n, -1, h, w)
    padded = np.pad(flat, ((0, 0), (0, 0), (s, s), (s, s)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (h, w), axis=(2, 3))  # (N, C, 2s+1, 2s+1, H, W)
    return windows[np.arange(n), :, s - shifts[:, 0], s - shifts[:, 1]].reshape(x.shape)


class AugmentedLoader(DataLoader):
    """A :class:`DataLoader` whose batches are randomly shifted and rotated.

    Takes the DataLoader's parameters plus:

    max_shift : float, default=2
        Largest shift in pixels along each axis (whole pixels unless ``integer_shifts=False``).
    max_degrees : float, default=0
        Largest rotation angle in degrees, either way.
    integer_shifts : bool, default=True
    shift_order : {"per_image", "per_axis"}, default="per_image"
        How the shifts are read from the generator (:func:`draw_shifts`).

    The transforms of epoch ``e`` are drawn from ``np.random.default_rng([seed, e, 1])``:
    reproducible, independent of the shuffling, and replayed by :meth:`set_epoch`.  The
    dataset itself is never changed (``fit(eval_train=True)`` evaluates the plain images).
    """

    def __init__(self, dataset: Dataset, max_shift: float = 2, max_degrees: float = 0.0, integer_shifts: bool = True,
                 shift_order: str = "per_image", **kwargs: Any) -> None:
        super().__init__(dataset, **kwargs)
        check_ranges(max_shift, max_degrees, "AugmentedLoader")
        if shift_order not in SHIFT_ORDERS or (shift_order == "per_axis" and not integer_shifts):
            raise ValueError(f"AugmentedLoader: shift_order must be one of {SHIFT_ORDERS} ('per_axis' with "
                             f"integer_shifts only), got {shift_order!r} with integer_shifts={integer_shifts}")
        self.max_shift, self.max_degrees = float(max_shift), float(max_degrees)
        self.integer_shifts, self.shift_order = bool(integer_shifts), shift_order

    def __iter__(self) -> Iterator[Batch]:
        rng = np.random.default_rng([self.seed, self.epoch, 1])
        image_shape = self.dataset.image_shape
        for x, y in super().__iter__():
            moved = random_affine(x.reshape(len(x), *image_shape), rng, self.max_shift, self.max_degrees,
                                  self.integer_shifts, self.shift_order)
            yield moved.reshape(x.shape), y

    def __repr__(self) -> str:
        return (f"AugmentedLoader({self.dataset!r}, batch_size={self.batch_size}, seed={self.seed}, "
                f"max_shift={self.max_shift:g}, max_degrees={self.max_degrees:g}"
                + ("" if self.shift_order == "per_image" else f", shift_order={self.shift_order!r}") + ")")
