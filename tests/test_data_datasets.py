"""Tests for Dataset, the other sources (PNG folders, digits, load_dataset) and train/val splits.

Unit tests build tiny IDX / PNG files in tmp_path; the network and the user's cache dir
are never touched (the ``isolated_data_env`` fixture of conftest.py).
"""
import numpy as np
import pytest

from tinygrad_mnist.data import Dataset, load_dataset, load_digits, load_png_folder, train_val_split

from .conftest import decode_index, indexed_dataset, make_idx_dir

pytestmark = pytest.mark.usefixtures("isolated_data_env")  # no network, no real cache dir


# ----------------------------------------------------------------------------- Dataset

def test_dataset_properties_subset_first():
    ds = indexed_dataset(12, name="toy")
    assert len(ds) == 12 and ds.image_shape == (1, 3) and ds.n_features == 3
    assert ds.labels.dtype == np.int64
    assert repr(ds) == "Dataset(name='toy', n=12, image_shape=(1, 3), num_classes=10)"
    sub = ds.subset([3, 1, 3])
    np.testing.assert_array_equal(decode_index(sub.images / 255), [3, 1, 3])
    np.testing.assert_array_equal(sub.labels, [3, 1, 3])
    mask = np.arange(12) % 4 == 0
    np.testing.assert_array_equal(ds.subset(mask, name="m").labels, [0, 4, 8])
    assert ds.subset(mask, name="m").name == "m"
    assert len(ds.subset([])) == 0 and ds.subset([]).image_shape == (1, 3)
    head = ds.first(5)
    assert len(head) == 5 and np.shares_memory(head.images, ds.images)
    assert len(ds.first(12)) == 12 and len(ds.first(0)) == 0
    with pytest.raises(ValueError, match=r"first: n must be in \[0, 12\], got 13"):
        ds.first(13)
    with pytest.raises(ValueError):
        ds.first(-1)
    with pytest.raises(TypeError):
        ds.first(2.0)
    with pytest.raises(TypeError, match="boolean mask"):
        ds.subset(np.array([0.5]))


@pytest.mark.parametrize("images, labels, kwargs, exc, match", [
    ([[[0]]], [0], {}, TypeError, "numpy array"),
    (np.zeros((2, 3, 3), np.float32), [0, 1], {}, TypeError, "dtype uint8, got float32"),
    (np.zeros((2, 9), np.uint8), [0, 1], {}, ValueError, r"shape \(n, H, W\), got \(2, 9\)"),
    (np.zeros((2, 3, 3), np.uint8), [0, 1, 2], {}, ValueError, r"labels of shape \(2,\)"),
    (np.zeros((2, 3, 3), np.uint8), [0.0, 1.0], {}, TypeError, "labels must be integers"),
    (np.zeros((2, 3, 3), np.uint8), [0, 10], {}, ValueError, r"\[0, 10\), found range \[0, 10\]"),
    (np.zeros((2, 3, 3), np.uint8), [-1, 1], {}, ValueError, "found range"),
    (np.zeros((2, 3, 3), np.uint8), [0, 2], {"num_classes": 2}, ValueError, r"\[0, 2\)"),
    (np.zeros((2, 3, 3), np.uint8), [0, 1], {"num_classes": 0}, ValueError, "num_classes"),
])
def test_dataset_validation(images, labels, kwargs, exc, match):
    with pytest.raises(exc, match=match) as info:
        Dataset(images, labels, "bad-set", **kwargs)
    assert "bad-set" in str(info.value)
# ----------------------------------------------------------------------------- PNG, digits

def write_png_tree(root, split_names=("Train", "Test"), size=(4, 3), mode="L"):
    Image = pytest.importorskip("PIL.Image")
    expected = {}
    for split in split_names:
        for label in (0, 1, 7):
            for k in range(2):
                value = 10 * label + k + (100 if split.lower() == "test" else 0)
                path = root / split / str(label) / f"img{k}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                color = value if mode == "L" else (value, value, value)
                Image.new(mode, size, color).save(path)
                expected.setdefault(split.lower(), []).append((label, value))
    (root / split_names[0] / "notes").mkdir()  # non-digit folders are ignored
    return expected


@pytest.mark.parametrize("split_names, mode", [(("Train", "Test"), "L"),
                                               (("train", "test"), "RGB")])
def test_load_png_folder(tmp_path, split_names, mode):
    expected = write_png_tree(tmp_path / "pngs", split_names, mode=mode)
    train, test = load_png_folder(tmp_path / "pngs")
    for ds, split in ((train, "train"), (test, "test")):
        assert ds.images.shape == (6, 3, 4) and ds.images.dtype == np.uint8
        np.testing.assert_array_equal(ds.labels, [lab for lab, _ in expected[split]])
        np.testing.assert_array_equal(ds.images[:, 0, 0], [v for _, v in expected[split]])
    assert train.name == "pngs-train"


def test_load_png_folder_errors(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    write_png_tree(tmp_path / "p")
    Image.new("L", (5, 5)).save(tmp_path / "p" / "Test" / "7" / "odd.png")
    with pytest.raises(ValueError, match=r"one size.*4x3.*odd.png is 5x5"):
        load_png_folder(tmp_path / "p")
    write_png_tree(tmp_path / "q", split_names=("Train",))
    with pytest.raises(FileNotFoundError, match="no Test/ or test/"):
        load_png_folder(tmp_path / "q")


def test_load_digits():
    train, test = load_digits()
    assert (len(train), len(test)) == (1438, 359)
    assert train.images.shape[1:] == (8, 8) and train.images.dtype == np.uint8
    assert train.labels.dtype == np.int64 and train.images.max() == 255
    allowed = {round(v * 255 / 16) for v in range(17)}
    assert set(np.unique(np.concatenate([train.images.ravel(), test.images.ravel()]))) <= allowed
    counts = np.bincount(test.labels, minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37  # stratified: ~10% per class
    again, _ = load_digits()
    np.testing.assert_array_equal(again.images, train.images)
    other, _ = load_digits(seed=1)
    assert not np.array_equal(other.labels, train.labels)
    assert len(load_digits(test_size=5)[1]) == 5
    with pytest.raises(ValueError, match="test_size"):
        load_digits(test_size=1.0)


def test_load_dataset_dispatch(tmp_path):
    arrays = make_idx_dir(tmp_path / "fashion")
    train, _ = load_dataset(str(tmp_path / "fashion"))
    assert train.name == "fashion-train"
    np.testing.assert_array_equal(train.images, arrays["train_images"])
    train, _ = load_dataset("MNIST", data_dir=tmp_path / "fashion", download=False)
    assert train.name == "mnist-train"
    assert load_dataset("digits")[0].image_shape == (8, 8)
    pytest.importorskip("PIL")
    write_png_tree(tmp_path / "pngs")
    assert load_dataset(tmp_path / "pngs")[0].image_shape == (3, 4)
    with pytest.raises(FileNotFoundError, match="neither"):
        load_dataset(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="neither an IDX directory"):
        load_dataset(tmp_path / "empty")


# ----------------------------------------------------------------------------- splits

def test_train_val_split_default_sizes_disjoint_and_seeded():
    ds = indexed_dataset(60000)
    train, val = train_val_split(ds)
    assert (len(train), len(val)) == (50000, 10000)
    a, b = decode_index(train.images / 255), decode_index(val.images / 255)
    assert np.intersect1d(a, b).size == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([a, b])), np.arange(60000))
    np.testing.assert_array_equal(train.labels, a % 10)
    same = train_val_split(ds, seed=0)[1]
    np.testing.assert_array_equal(same.images, val.images)
    assert not np.array_equal(train_val_split(ds, seed=1)[1].images, val.images)


@pytest.mark.parametrize("val_size, n_val", [(0.25, 25), (1, 1), (99, 99), (0.5, 50)])
def test_train_val_split_sizes(val_size, n_val):
    train, val = train_val_split(indexed_dataset(100), val_size=val_size)
    assert (len(train), len(val)) == (100 - n_val, n_val)


@pytest.mark.parametrize("val_size, exc", [(0, ValueError), (100, ValueError), (-1, ValueError),
                                           (0.0, ValueError), (1.0, ValueError),
                                           (0.001, ValueError), (True, TypeError),
                                           ("10", TypeError)])
def test_train_val_split_rejects_bad_sizes(val_size, exc):
    with pytest.raises(exc, match="val_size"):
        train_val_split(indexed_dataset(100), val_size=val_size)


def test_train_val_split_default_too_big_for_small_dataset():
    with pytest.raises(ValueError, match=r"got 10000, expected 1..99"):
        train_val_split(indexed_dataset(100))
