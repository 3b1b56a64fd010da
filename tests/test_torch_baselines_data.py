"""The torch side's ``torch.utils.data`` pipeline replays the numpy DataLoader: the same
indices in the same batches, the same float values, epoch by epoch; and training through
it is bit for bit the training on the numpy batches it replaced.
"""

from __future__ import annotations

import numpy as np
import pytest

from tinygrad_mnist.data import DataLoader
from tinygrad_mnist.models import MLPSpec

from .conftest import decode_index, indexed_dataset, square_images

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from torch_baselines import data, models, train, utils  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _epoch_pairs(numpy_loader, torch_loader, epoch):
    """The numpy and torch batches of ``epoch``, zipped, with the sampler's indices."""
    numpy_loader.set_epoch(epoch)
    torch_loader.batch_sampler.set_epoch(epoch)
    indices = list(torch_loader.batch_sampler)
    torch_loader.batch_sampler.set_epoch(epoch)
    return list(zip(numpy_loader, torch_loader, indices, strict=True))


@pytest.mark.parametrize("flatten", [True, False], ids=["flat", "image"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("drop_last", [False, True], ids=["keep-last", "drop-last"])
def test_torch_loader_yields_the_numpy_loaders_batches_for_two_shuffled_epochs(flatten, dtype, drop_last):
    dataset = indexed_dataset(53)  # image i encodes i: every example can be traced
    numpy_loader = DataLoader(dataset, batch_size=8, shuffle=True, seed=3, drop_last=drop_last,
                              flatten=flatten, dtype=dtype)
    loader = data.torch_loader(numpy_loader)
    assert isinstance(loader, torch.utils.data.DataLoader) and loader.num_workers == 0
    assert len(loader) == len(numpy_loader) == (6 if drop_last else 7)
    orders = []
    for epoch in (0, 1):
        pairs = _epoch_pairs(numpy_loader, loader, epoch)
        assert len(pairs) == len(numpy_loader)
        for (x, y), (xt, yt), idx in pairs:
            assert isinstance(xt, torch.Tensor) and xt.dtype == torch.from_numpy(x).dtype
            assert xt.shape == x.shape == ((len(idx), 3) if flatten else (len(idx), 1, 1, 3))
            assert yt.dtype == torch.int64 and yt.shape == (len(idx),)
            np.testing.assert_array_equal(decode_index(x.reshape(len(x), -1)), idx)  # numpy's indices
            np.testing.assert_array_equal(xt.numpy(), x)                             # bit for bit
            np.testing.assert_array_equal(yt.numpy(), y)
            np.testing.assert_array_equal(yt.numpy(), dataset.labels[idx])
        order = np.concatenate([idx for _, _, idx in pairs])
        assert len(set(order.tolist())) == len(order) == (48 if drop_last else 53)
        orders.append(order)
    assert not np.array_equal(orders[0], orders[1])  # a new permutation each epoch


def test_the_sampler_advances_an_epoch_per_pass_and_replays_any():
    numpy_loader = DataLoader(indexed_dataset(30), batch_size=4, shuffle=True, seed=1)
    sampler = data.NumpyOrderSampler(numpy_loader)
    assert sampler.epoch == 0 and len(sampler) == 8
    first, second = [list(map(np.ndarray.tolist, sampler)) for _ in range(2)]
    assert sampler.epoch == 2 and first != second
    sampler.set_epoch(1)
    assert list(map(np.ndarray.tolist, sampler)) == second
    expected = [decode_index(x).tolist() for x, _ in numpy_loader]  # the numpy loader's epoch 0
    assert first == expected
    numpy_loader.set_epoch(5)
    assert data.NumpyOrderSampler(numpy_loader).epoch == 5  # starts where the numpy loader stands


def test_unshuffled_batches_are_in_order():
    numpy_loader = DataLoader(indexed_dataset(10), batch_size=4, shuffle=False)
    assert [b.tolist() for b in data.NumpyOrderSampler(numpy_loader)] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


class _PerItem(torch.utils.data.Dataset):
    """Hides ``__getitems__``: torch fetches one item at a time and stacks them."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        return self.dataset[i]


def test_batched_fetch_equals_per_item_fetch_with_default_collation():
    """``__getitems__`` (one fancy index per batch) gives what torch's per-item path gives,
    and an ImageDataset in a plain DataLoader (default collation) gives the same batches."""
    dataset = square_images(20, 8, 0, 4, per_row=2, value=200, name="squares")
    images = data.ImageDataset(dataset, flatten=False, dtype=np.float64)
    x0, y0 = images[3]
    assert x0.shape == (1, 8, 8) and x0.dtype == torch.float64 and y0.ndim == 0 and int(y0) == dataset.labels[3]
    np.testing.assert_array_equal(x0.numpy(), dataset.images[3][None] * (1 / 255))
    batched = data.torch_loader(DataLoader(dataset, batch_size=6, shuffle=False, flatten=False, dtype=np.float64))
    per_item = torch.utils.data.DataLoader(_PerItem(images), batch_size=6)
    plain = torch.utils.data.DataLoader(images, batch_size=6)
    subset = torch.utils.data.DataLoader(torch.utils.data.Subset(images, range(20)), batch_size=6)
    for (xa, ya), (xb, yb), (xc, yc), (xd, yd) in zip(per_item, batched, plain, subset, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
        assert torch.equal(xc, xb) and torch.equal(yc, yb) and torch.equal(xd, xb) and torch.equal(yd, yb)


def test_bad_arguments_raise():
    with pytest.raises(TypeError, match="ImageDataset"):
        data.ImageDataset(np.zeros((2, 3, 3), np.uint8))
    with pytest.raises(TypeError, match="ImageDataset"):
        data.ImageDataset(indexed_dataset(4), dtype=np.int32)
    with pytest.raises(TypeError, match="NumpyOrderSampler"):
        data.NumpyOrderSampler(indexed_dataset(4))


def _old_torch_epoch(model, optimizer, numpy_loader):
    """The loop ``fit`` used before ``torch.utils.data``: numpy batches made into tensors."""
    losses = []
    for x, y in numpy_loader:
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(torch.from_numpy(x)), torch.from_numpy(y))
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("name", ["mlp", "course-cnn"])
def test_one_epoch_through_the_torch_loader_is_unchanged_bit_for_bit(name):
    dataset = square_images(200, 28, 4, 10, per_row=4, value=255, name="squares28")
    flatten = name == "mlp"

    def build():
        utils.seed_everything(0)
        model = (models.build_mlp(MLPSpec((784, 32, 10), "relu")) if flatten
                 else models.build_course_cnn(seed=0))
        return model, torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)

    before, opt = build()
    old_losses = _old_torch_epoch(before, opt, DataLoader(dataset, batch_size=32, seed=7, flatten=flatten))
    after, opt = build()
    history = train.fit(after, nn.CrossEntropyLoss(), opt, dataset, epochs=1, batch_size=32, seed=7,
                        flatten=flatten, progress=False)
    assert history.batch_loss[0] == old_losses
    for p, q in zip(before.parameters(), after.parameters(), strict=True):
        assert torch.equal(p, q)
    # the same run, handed a torch DataLoader directly
    again, opt = build()
    loader = data.torch_loader(DataLoader(dataset, batch_size=32, seed=7, flatten=flatten))
    h = train.fit(again, nn.CrossEntropyLoss(), opt, loader, epochs=1, progress=False)
    assert h.batch_loss[0] == old_losses


def test_an_augmented_loader_gives_the_same_moved_images_on_both_sides():
    from tinygrad_mnist.data.augment import AugmentedLoader

    dataset = square_images(40, size=10, seed=1, classes=4, per_row=2, value=200, name="squares")
    numpy_loader = AugmentedLoader(dataset, max_shift=2, max_degrees=15, batch_size=8, shuffle=True, seed=5,
                                   flatten=False)
    loader = data.torch_loader(numpy_loader)
    assert isinstance(loader, data.AugmentingTorchLoader)
    plain = DataLoader(dataset, batch_size=8, shuffle=True, seed=5, flatten=False)
    for epoch in (0, 1):
        numpy_loader.set_epoch(epoch)
        loader.batch_sampler.set_epoch(epoch)
        plain.set_epoch(epoch)
        for (x, y), (xt, yt), (xp, _) in zip(numpy_loader, loader, plain, strict=True):
            np.testing.assert_array_equal(xt.numpy(), x)
            np.testing.assert_array_equal(yt.numpy(), y)
            assert not np.array_equal(x, xp)          # the images really moved


def test_a_loader_without_a_torch_twin_is_refused():
    class Odd(DataLoader):
        pass

    with pytest.raises(TypeError, match="no torch twin for a Odd"):
        data.torch_loader(Odd(indexed_dataset(8), batch_size=4))
