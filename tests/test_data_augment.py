"""Data augmentation (tinygrad_mnist.data.augment): exact shifts and turns, reproducible
loaders, and the whole-pixel draws of ``shift_order="per_axis"`` that replay the batches of
``tinygrad-mnist train --augment-shift`` and the numpy_cnn study bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from tinygrad_mnist.data import DataLoader, Dataset
from tinygrad_mnist.data.augment import (
    AugmentedLoader,
    affine_batch,
    draw_shifts,
    random_affine,
    shift_batch,
)


def test_rotation_turns_anticlockwise():
    x = np.zeros((1, 5, 5), np.uint8)
    x[0, 0, 2] = 200                               # top middle
    turned = affine_batch(x, np.array([90.0]), np.zeros((1, 2)))
    assert turned[0, 2, 0] == 200 and turned.sum() == 200   # now middle left
    moved = affine_batch(x, np.array([0.0]), np.array([[1.0, -2.0]]))
    assert moved[0, 1, 0] == 200 and moved.sum() == 200     # one down, two left


@pytest.mark.parametrize("dy, dx", [(0, 0), (2, -1), (-2, 2), (1, 0)])
def test_integer_shifts_are_exact_translations(dy, dx):
    x = np.random.default_rng(0).integers(0, 256, size=(3, 1, 9, 9)).astype(np.float32)
    shifts = np.tile([dy, dx], (3, 1))
    fast = shift_batch(x, shifts)
    np.testing.assert_array_equal(fast, affine_batch(x, np.zeros(3), shifts.astype(float)))
    h, w = x.shape[-2:]
    expected = np.zeros_like(x)
    expected[..., max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        x[..., max(-dy, 0):h - max(dy, 0), max(-dx, 0):w - max(dx, 0)]
    np.testing.assert_array_equal(fast, expected)


def test_random_affine_checks_its_arguments():
    x = np.zeros((2, 4, 4), np.float32)
    assert random_affine(x, np.random.default_rng(0)) is x
    with pytest.raises(ValueError, match="max_degrees"):
        random_affine(x, np.random.default_rng(0), 1, 200)
    with pytest.raises(TypeError, match="Generator"):
        random_affine(x, 0, 1)
    with pytest.raises(ValueError, match="max_shift"):
        AugmentedLoader(Dataset(np.zeros((2, 4, 4), np.uint8), np.zeros(2, int), "t"), max_shift=-1)


def test_augmented_loader_is_reproducible_and_leaves_the_data_alone():
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(40, 10, 10)).astype(np.uint8)
    data = Dataset(images.copy(), rng.integers(0, 10, 40), "t")
    a = AugmentedLoader(data, max_shift=2, max_degrees=15, batch_size=16, seed=7, flatten=False)
    b = AugmentedLoader(data, max_shift=2, max_degrees=15, batch_size=16, seed=7, flatten=False)
    first, again = list(a), list(b)
    for (x1, y1), (x2, y2) in zip(first, again, strict=True):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
    second = list(a)                                # the next epoch: new shuffles and turns
    assert not np.array_equal(first[0][0], second[0][0])
    a.set_epoch(0)
    np.testing.assert_array_equal(next(iter(a))[0], first[0][0])
    np.testing.assert_array_equal(data.images, images)
    assert first[0][0].dtype == np.float32 and first[0][0].shape == (16, 1, 10, 10)


# -- the per-axis draws: the batches the CLI's and numpy_cnn's shift loader gave -------------
def _windowed_shift_reference(x: np.ndarray, max_shift: int, rng: np.random.Generator) -> np.ndarray:
    """The shift the ``--augment-shift`` loader used to apply, kept verbatim as the reference:
    window ``(dy_n, dx_n)`` of the zero-padded batch, offsets drawn as a (2, N) array."""
    n, c, h, w = x.shape
    s = int(max_shift)
    padded = np.pad(x, ((0, 0), (0, 0), (s, s), (s, s)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (h, w), axis=(2, 3))
    dy, dx = rng.integers(0, 2 * s + 1, size=(2, n))
    return np.ascontiguousarray(windows[np.arange(n), :, dy, dx])


def _reference_batches(loader: DataLoader, max_shift: int) -> list:
    """One epoch of the former shift loader: the plain loader's batches, shifted with the
    generator ``default_rng([seed, epoch, 1])`` batch after batch."""
    rng = np.random.default_rng([loader.seed, loader.epoch, 1])
    h, w = loader.dataset.image_shape
    out = []
    for x, y in loader:
        out.append((_windowed_shift_reference(x.reshape(-1, 1, h, w), max_shift, rng).reshape(x.shape), y))
    return out


@pytest.mark.parametrize("flatten", [True, False])
@pytest.mark.parametrize("max_shift", [1, 2, 3])
def test_per_axis_shifts_give_the_former_shift_loaders_batches_bit_for_bit(flatten, max_shift):
    rng = np.random.default_rng(11)
    data = Dataset(rng.integers(0, 256, size=(50, 9, 9)).astype(np.uint8), rng.integers(0, 10, 50), "t")
    kwargs = dict(batch_size=16, shuffle=True, seed=4, flatten=flatten)
    augmented = AugmentedLoader(data, max_shift=max_shift, shift_order="per_axis", **kwargs)
    plain = DataLoader(data, **kwargs)
    for epoch in range(3):
        augmented.set_epoch(epoch)
        plain.set_epoch(epoch)
        expected = _reference_batches(plain, max_shift)
        got = list(augmented)
        assert len(got) == len(expected)
        for (x, y), (x_ref, y_ref) in zip(got, expected, strict=True):
            assert x.shape == x_ref.shape and x.dtype == x_ref.dtype
            np.testing.assert_array_equal(x, x_ref)
            np.testing.assert_array_equal(y, y_ref)


def test_the_two_shift_orders_draw_the_same_distribution_in_a_different_order():
    per_image = draw_shifts(np.random.default_rng(0), 4000, 2)
    per_axis = draw_shifts(np.random.default_rng(0), 4000, 2, shift_order="per_axis")
    assert per_image.shape == per_axis.shape == (4000, 2)
    for shifts in (per_image, per_axis):
        values, counts = np.unique(shifts, return_counts=True)
        np.testing.assert_array_equal(values, [-2, -1, 0, 1, 2])
        assert counts.min() > 0.17 * shifts.size          # each of 5 values near 1/5 of the draws
    assert not np.array_equal(per_image, per_axis)


def test_shift_order_is_checked():
    data = Dataset(np.zeros((2, 4, 4), np.uint8), np.zeros(2, int), "t")
    with pytest.raises(ValueError, match="shift_order"):
        AugmentedLoader(data, max_shift=1, shift_order="per_row")
    with pytest.raises(ValueError, match="per_axis"):
        AugmentedLoader(data, max_shift=1, shift_order="per_axis", integer_shifts=False)
    with pytest.raises(ValueError, match="shift_order"):
        draw_shifts(np.random.default_rng(0), 3, 1, shift_order="columns")
