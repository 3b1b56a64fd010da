"""Tests for DataLoader: batches, dtypes, shuffling per epoch and seed, validation.

The ``isolated_data_env`` fixture of conftest.py keeps the network and the user's cache
dir out of every test.
"""
import numpy as np
import pytest

from tinygrad_mnist.data import DataLoader, Dataset

from .conftest import decode_index, indexed_dataset

pytestmark = pytest.mark.usefixtures("isolated_data_env")  # no network, no real cache dir


# ----------------------------------------------------------------------------- DataLoader

def epoch_indices(loader):
    return np.concatenate([decode_index(x) for x, _ in loader])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_loader_batches_shapes_dtypes_values(dtype):
    ds = Dataset(np.arange(5 * 4 * 3, dtype=np.uint8).reshape(5, 4, 3), [0, 1, 2, 3, 4], "s")
    batches = list(DataLoader(ds, batch_size=2, shuffle=False, dtype=dtype))
    assert [x.shape for x, _ in batches] == [(2, 12), (2, 12), (1, 12)]
    x, y = batches[0]
    assert x.dtype == dtype and y.dtype == np.int64
    np.testing.assert_allclose(x, ds.images[:2].reshape(2, 12) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y, [0, 1])
    x4, _ = next(iter(DataLoader(ds, batch_size=3, flatten=False, scale=1.0, shuffle=False)))
    assert x4.shape == (3, 1, 4, 3)
    np.testing.assert_array_equal(x4[:, 0], ds.images[:3])
    assert ds.images.dtype == np.uint8


def test_loader_len_and_drop_last():
    ds = indexed_dataset(10)
    assert len(DataLoader(ds, batch_size=3)) == 4
    assert len(DataLoader(ds, batch_size=3, drop_last=True)) == 3
    assert len(DataLoader(ds, batch_size=5, drop_last=True)) == 2
    sizes = [len(y) for _, y in DataLoader(ds, batch_size=3, drop_last=True)]
    assert sizes == [3, 3, 3]
    assert len(list(DataLoader(ds, batch_size=3))) == 4
    assert len(DataLoader(ds.first(0))) == 0 and list(DataLoader(ds.first(0))) == []


def test_loader_each_example_once_per_epoch_and_epochs_differ():
    ds = indexed_dataset(1000)
    loader = DataLoader(ds, batch_size=64, seed=3)
    e0, e1 = epoch_indices(loader), epoch_indices(loader)
    np.testing.assert_array_equal(np.sort(e0), np.arange(1000))
    np.testing.assert_array_equal(np.sort(e1), np.arange(1000))
    assert not np.array_equal(e0, e1) and not np.array_equal(e0, np.arange(1000))
    assert loader.epoch == 2
    for x, y in DataLoader(ds, batch_size=64, seed=3):
        np.testing.assert_array_equal(y, decode_index(x) % 10)


def test_loader_same_seed_same_order_and_set_epoch():
    ds = indexed_dataset(300)
    a, b = DataLoader(ds, batch_size=50, seed=7), DataLoader(ds, batch_size=50, seed=7)
    orders_a = [epoch_indices(a) for _ in range(3)]
    orders_b = [epoch_indices(b) for _ in range(3)]
    for oa, ob in zip(orders_a, orders_b, strict=True):
        np.testing.assert_array_equal(oa, ob)
    c = DataLoader(ds, batch_size=50, seed=7)
    c.set_epoch(2)
    np.testing.assert_array_equal(epoch_indices(c), orders_a[2])
    c.set_epoch(0)
    np.testing.assert_array_equal(epoch_indices(c), orders_a[0])
    np.testing.assert_array_equal(
        epoch_indices(DataLoader(ds, batch_size=50, seed=7)),
        np.random.default_rng([7, 0]).permutation(300))  # the documented scheme
    assert not np.array_equal(epoch_indices(DataLoader(ds, batch_size=50, seed=8)), orders_a[0])


def test_loader_no_shuffle_keeps_order():
    loader = DataLoader(indexed_dataset(70), batch_size=32, shuffle=False)
    np.testing.assert_array_equal(epoch_indices(loader), np.arange(70))
    np.testing.assert_array_equal(epoch_indices(loader), np.arange(70))


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"batch_size": 0}, ValueError, "batch_size"),
    ({"batch_size": 2.5}, TypeError, "batch_size"),
    ({"dtype": np.int32}, TypeError, "float32 or float64"),
    ({"dtype": np.float16}, TypeError, "float32 or float64"),
    ({"seed": -1}, ValueError, "seed"),
    ({"scale": float("nan")}, ValueError, "scale"),
])
def test_loader_validation(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        DataLoader(indexed_dataset(4), **kwargs)
    with pytest.raises(TypeError, match="expected a Dataset"):
        DataLoader(np.zeros((4, 2, 2), np.uint8))
    with pytest.raises(ValueError, match="epoch"):
        DataLoader(indexed_dataset(4)).set_epoch(-1)
