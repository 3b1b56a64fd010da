"""Tests for tinygrad_mnist.data: IDX files, loaders, splits and the batch iterator.

Unit tests build tiny IDX / PNG files in tmp_path.  The network is never used: an
autouse fixture makes ``urllib.request.urlopen`` fail, and the download tests replace
it with a fake serving local bytes.  One test reads the real MNIST files if present.
"""
import gzip
import hashlib
import io
import os
import struct
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_mnist import data
from tinygrad_mnist.data import (
    MNIST_FILES, MNIST_MD5, MNIST_MIRRORS, DataLoader, Dataset, IDXFormatError,
    MNISTNotFoundError, default_cache_dir, download_mnist, find_mnist, load_dataset,
    load_digits, load_idx_dir, load_mnist, load_png_folder, read_idx, train_val_split,
    write_idx,
)

from .strategies import seeds  # also loads the project's hypothesis profile

REPO = Path(__file__).resolve().parents[1]
REAL_MNIST = Path(os.environ.get("TINYGRAD_MNIST_DATA")
                  or Path(__file__).resolve().parents[2] / "shared/data/mnist")
HAVE_REAL_MNIST = all((REAL_MNIST / name).is_file() for name in MNIST_FILES.values())
needs_real_mnist = pytest.mark.skipif(not HAVE_REAL_MNIST,
                                      reason=f"real MNIST not found in {REAL_MNIST}")
IDX_CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C,
             np.float32: 0x0D, np.float64: 0x0E}  # from the IDX specification
IDX_DTYPES = list(IDX_CODES)


# ----------------------------------------------------------------------------- helpers

@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    """No network, no real cache dir, no inherited data dir in any test."""
    def no_network(*args, **kwargs):
        raise urllib.error.URLError("network disabled in tests")
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    monkeypatch.setenv("TINYGRAD_MNIST_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("TINYGRAD_MNIST_DATA", raising=False)


def make_idx_dir(path, n_train=6, n_test=4, shape=(3, 2), gz=(True, False, True, False),
                 num_classes=10, seed=0):
    """Write a tiny MNIST-layout drop-in; ``gz[i]`` picks .gz or plain name per file."""
    rng = np.random.default_rng(seed)
    arrays = {"train_images": rng.integers(0, 256, (n_train, *shape), dtype=np.uint8),
              "train_labels": rng.integers(0, num_classes, n_train).astype(np.uint8),
              "test_images": rng.integers(0, 256, (n_test, *shape), dtype=np.uint8),
              "test_labels": rng.integers(0, num_classes, n_test).astype(np.uint8)}
    path.mkdir(parents=True, exist_ok=True)
    for (role, name), compressed in zip(MNIST_FILES.items(), gz):
        write_idx(path / (name if compressed else name[:-3]), arrays[role])
    return arrays


def indexed_dataset(n, name="idx", num_classes=10):
    """Dataset whose image i encodes i in its three bytes, so examples can be traced."""
    idx = np.arange(n)
    images = np.stack([idx % 256, idx // 256 % 256, idx // 65536], axis=1).astype(np.uint8)
    return Dataset(images.reshape(n, 1, 3), idx % num_classes, name, num_classes)


def decode_index(x):
    """Invert indexed_dataset on a batch of flattened images scaled by 1/255."""
    b = np.rint(np.asarray(x, dtype=np.float64).reshape(len(x), 3) * 255).astype(np.int64)
    return b[:, 0] + 256 * b[:, 1] + 65536 * b[:, 2]


def idx_header(code, dims):
    return bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)


class FakeServer:
    """Stands in for urllib.request.urlopen: serves ``files[name]`` bytes per mirror."""

    def __init__(self, files, fail_mirrors=()):
        self.files, self.fail_mirrors, self.urls = files, fail_mirrors, []

    def __call__(self, url, timeout=None):
        self.urls.append(url)
        if any(url.startswith(m) for m in self.fail_mirrors):
            raise urllib.error.URLError(f"mirror down: {url}")
        return io.BytesIO(self.files[url.rsplit("/", 1)[1]])


# ----------------------------------------------------------------------------- IDX

def test_module_imports_no_pillow_or_sklearn():
    code = ("import sys, tinygrad_mnist.data; "
            "print(sorted(m for m in ('PIL', 'sklearn', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(REPO)}, check=True)
    assert out.stdout.strip() == "[]"


def test_read_idx_decodes_hand_written_big_endian_bytes(tmp_path):
    path = tmp_path / "x.idx"
    path.write_bytes(idx_header(0x0C, (2, 2)) + struct.pack(">4i", 256, -1, 7, -2**31))
    arr = read_idx(path)
    assert arr.dtype == np.dtype(np.int32) and arr.dtype.isnative
    np.testing.assert_array_equal(arr, [[256, -1], [7, -2**31]])
    path.write_bytes(idx_header(0x0D, (3,)) + struct.pack(">3f", 1.5, -0.25, 3e38))
    np.testing.assert_array_equal(read_idx(path), np.array([1.5, -0.25, 3e38], np.float32))


@pytest.mark.parametrize("dtype", IDX_DTYPES)
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_write_read_round_trip(tmp_path, dtype, suffix):
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else np.finfo(dtype)
    arr = np.array([[info.min, 0, 1], [2, info.max, 3]], dtype=dtype)
    path = tmp_path / f"a.idx{suffix}"
    write_idx(path, arr)
    raw = path.read_bytes()
    assert (raw[:2] == b"\x1f\x8b") == (suffix == ".gz")
    big_endian = arr.astype(np.dtype(dtype).newbyteorder(">")).tobytes()
    expected = idx_header(IDX_CODES[dtype], (2, 3)) + big_endian
    assert (gzip.decompress(raw) if suffix else raw) == expected
    out = read_idx(path)
    assert out.dtype == arr.dtype and out.dtype.isnative and out.flags.writeable
    np.testing.assert_array_equal(out, arr)


def test_gzip_detected_by_content_not_name(tmp_path):
    arr = np.arange(6, dtype=np.uint8).reshape(2, 3)
    write_idx(tmp_path / "a.gz", arr)
    (tmp_path / "gz_named_plain").write_bytes((tmp_path / "a.gz").read_bytes())
    write_idx(tmp_path / "b", arr)
    (tmp_path / "plain_named.gz").write_bytes((tmp_path / "b").read_bytes())
    np.testing.assert_array_equal(read_idx(tmp_path / "gz_named_plain"), arr)
    np.testing.assert_array_equal(read_idx(tmp_path / "plain_named.gz"), arr)


# (dtype, shape, seed, gzip?) for an IDX array; candidate for tests/strategies.py
idx_specs = st.tuples(st.sampled_from(IDX_DTYPES),
                      st.lists(st.integers(0, 4), min_size=1, max_size=4).map(tuple),
                      seeds, st.booleans())


@given(spec=idx_specs)
def test_round_trip_property(tmp_path_factory, spec):
    dtype, shape, seed, compressed = spec
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        arr = rng.standard_normal(shape).astype(dtype) * 1e3
    else:
        info = np.iinfo(dtype)
        arr = rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)
    path = tmp_path_factory.getbasetemp() / ("prop.idx.gz" if compressed else "prop.idx")
    write_idx(path, arr)
    out = read_idx(path)
    assert out.shape == shape and out.dtype == arr.dtype
    np.testing.assert_array_equal(out, arr)


@pytest.mark.parametrize("payload, match", [
    (b"", r"bad magic.*empty file"),
    (b"\x01\x00\x08\x01" + b"\x00\x00\x00\x01" + b"\x05", r"bad magic.*01 00 08 01"),
    (b"\x00\x00\x07\x01" + b"\x00\x00\x00\x01" + b"\x05",
     r"unknown dtype code 0x07.*0x08 \(uint8\)"),
    (b"\x00\x00\x08\x00", r"number of dimensions is 0"),
    (b"\x00\x00\x08\x02\x00\x00\x00\x02", r"truncated header: expected 12 bytes.*got 8"),
    (idx_header(0x0C, (3,)) + b"\x00" * 11, r"truncated: expected 12 payload bytes.*got 11"),
    (idx_header(0x08, (2, 2)) + b"\x00" * 6, r"2 trailing bytes: expected 4 .*found 6"),
    (gzip.compress(idx_header(0x08, (4,)) + b"abcd")[:-6], r"corrupt gzip"),
    (b"\x1f\x8b" + b"not really gzip data", r"corrupt gzip"),
])
def test_malformed_idx_raises_informative_error(tmp_path, payload, match):
    path = tmp_path / "bad-file.idx"
    path.write_bytes(payload)
    with pytest.raises(IDXFormatError, match=match) as info:
        read_idx(path)
    assert "bad-file.idx" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_write_idx_rejects_unstorable_arrays(tmp_path):
    with pytest.raises(TypeError, match="int64"):
        write_idx(tmp_path / "a", np.zeros(3, dtype=np.int64))
    with pytest.raises(ValueError, match="1 to 255 dims"):
        write_idx(tmp_path / "a", np.uint8(3))


def test_read_idx_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "nope")


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


# ----------------------------------------------------------------------------- IDX dirs

def test_load_idx_dir_tiny_drop_in(tmp_path):
    arrays = make_idx_dir(tmp_path / "drop")
    train, test = load_idx_dir(tmp_path / "drop", name="tiny")
    assert (train.name, test.name) == ("tiny-train", "tiny-test")
    np.testing.assert_array_equal(train.images, arrays["train_images"])
    np.testing.assert_array_equal(test.labels, arrays["test_labels"])
    assert train.images.shape == (6, 3, 2) and train.labels.dtype == np.int64


def test_load_idx_dir_more_classes_and_bad_files(tmp_path):
    make_idx_dir(tmp_path / "letters", num_classes=26, n_train=200)
    train, _ = load_idx_dir(tmp_path / "letters")
    assert train.num_classes == 26
    (tmp_path / "letters" / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(MNISTNotFoundError, match="missing t10k-labels-idx1-ubyte.gz"):
        load_idx_dir(tmp_path / "letters")
    make_idx_dir(tmp_path / "f")
    write_idx(tmp_path / "f" / "train-images-idx3-ubyte", np.zeros((6, 3, 2), np.float32))
    (tmp_path / "f" / "train-images-idx3-ubyte.gz").unlink()
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte: expected uint8 images"):
        load_idx_dir(tmp_path / "f")


# ----------------------------------------------------------------------------- finding MNIST

def test_default_cache_dir(monkeypatch, tmp_path):
    assert default_cache_dir() == tmp_path / "cache"
    monkeypatch.delenv("TINYGRAD_MNIST_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "tinygrad_mnist" / "mnist"


def test_find_mnist_search_order(monkeypatch, tmp_path):
    for d in ("arg", "env", "cache"):
        make_idx_dir(tmp_path / d)
    make_idx_dir(tmp_path / "partial")
    (tmp_path / "partial" / "train-labels-idx1-ubyte").unlink()
    monkeypatch.setenv("TINYGRAD_MNIST_DATA", str(tmp_path / "env"))
    assert find_mnist(tmp_path / "arg") == (tmp_path / "arg").resolve()
    assert find_mnist() == (tmp_path / "env").resolve()
    monkeypatch.delenv("TINYGRAD_MNIST_DATA")
    assert find_mnist() == (tmp_path / "cache").resolve()
    # An explicit directory is the only place searched: no silent fall-back to another copy.
    for explicit in (tmp_path / "partial", tmp_path / "nowhere"):
        with pytest.raises(MNISTNotFoundError, match="data_dir argument") as info:
            find_mnist(str(explicit))
        assert "cache dir" not in str(info.value).split("Supply them")[0]


def check_not_found_message(msg, places):
    for name in MNIST_FILES.values():
        assert name in msg
    for place in places:
        assert str(place) in msg
    for hint in ("data_dir=", "--data-dir", "TINYGRAD_MNIST_DATA", "download"):
        assert hint in msg


def test_not_found_offline_names_files_and_places(monkeypatch, tmp_path):
    make_idx_dir(tmp_path / "partial")
    (tmp_path / "partial" / "t10k-images-idx3-ubyte.gz").unlink()
    monkeypatch.setenv("TINYGRAD_MNIST_DATA", str(tmp_path / "envdir"))
    with pytest.raises(MNISTNotFoundError) as info:
        load_mnist(tmp_path / "partial", download=False)
    msg = str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    check_not_found_message(msg, [tmp_path / "partial"])
    assert f"{tmp_path / 'partial'} (data_dir argument): missing t10k-images-idx3-ubyte.gz" in msg
    with pytest.raises(MNISTNotFoundError) as info:
        load_mnist(download=False)
    msg = str(info.value)
    check_not_found_message(msg, [tmp_path / "envdir", tmp_path / "cache"])
    assert f"{tmp_path / 'envdir'} ($TINYGRAD_MNIST_DATA): does not exist" in msg


def test_not_found_with_failed_download_includes_the_error(tmp_path):
    with pytest.raises(MNISTNotFoundError) as info:
        load_mnist(tmp_path / "given", download=True)
    msg = str(info.value)
    check_not_found_message(msg, [tmp_path / "given"])
    assert "Download failed" in msg and "network disabled in tests" in msg
    assert f"could not download train-images-idx3-ubyte.gz into {tmp_path / 'given'}" in msg
    for mirror in MNIST_MIRRORS:
        assert mirror + "train-images-idx3-ubyte.gz" in msg
    assert list((tmp_path / "given").iterdir()) == []  # nothing half-written left behind
    with pytest.raises(MNISTNotFoundError) as info:
        load_mnist(download=True)  # no directory named: downloads into the cache dir
    assert f"into {tmp_path / 'cache'}" in str(info.value)
    assert list((tmp_path / "cache").iterdir()) == []


# ----------------------------------------------------------------------------- downloading

@pytest.fixture(scope="module")
def real_gz_bytes():
    if not HAVE_REAL_MNIST:
        pytest.skip(f"real MNIST not found in {REAL_MNIST}")
    return {name: (REAL_MNIST / name).read_bytes() for name in MNIST_FILES.values()}


def test_download_mnist_from_second_mirror(monkeypatch, tmp_path, real_gz_bytes):
    server = FakeServer(real_gz_bytes, fail_mirrors=(MNIST_MIRRORS[0],))
    monkeypatch.setattr(urllib.request, "urlopen", server)
    dest = download_mnist(tmp_path / "dl")
    assert sorted(p.name for p in dest.iterdir()) == sorted(MNIST_FILES.values())
    for name in MNIST_FILES.values():
        assert (dest / name).read_bytes() == real_gz_bytes[name]
    assert server.urls == [m + n for n in MNIST_FILES.values() for m in MNIST_MIRRORS]
    download_mnist(dest)  # everything present and valid: nothing fetched again
    assert len(server.urls) == 8


def test_load_mnist_downloads_into_cache(monkeypatch, tmp_path, real_gz_bytes):
    monkeypatch.setattr(urllib.request, "urlopen", FakeServer(real_gz_bytes))
    train, test = load_mnist(download=True)
    assert len(train) == 60000 and len(test) == 10000
    assert find_mnist() == (tmp_path / "cache").resolve()


def test_download_md5_mismatch_leaves_no_file(monkeypatch, tmp_path):
    bogus = gzip.compress(idx_header(0x08, (1,)) + b"\x00")
    server = FakeServer({name: bogus for name in MNIST_FILES.values()})
    monkeypatch.setattr(urllib.request, "urlopen", server)
    with pytest.raises(OSError, match=r"MD5 mismatch, expected 6bbc9ace898e44ae57da46a324031adb"):
        download_mnist(tmp_path / "dl")
    assert list((tmp_path / "dl").iterdir()) == []
    assert len(server.urls) == len(MNIST_MIRRORS)


def test_download_uses_patched_md5_for_tiny_files(monkeypatch, tmp_path):
    make_idx_dir(tmp_path / "src", gz=(True,) * 4)
    files = {n: (tmp_path / "src" / n).read_bytes() for n in MNIST_FILES.values()}
    md5 = {role: hashlib.md5(gzip.decompress(files[n])).hexdigest()
           for role, n in MNIST_FILES.items()}
    monkeypatch.setattr(data.mnist, "MNIST_MD5", md5)
    monkeypatch.setattr(urllib.request, "urlopen", FakeServer(files))
    (tmp_path / "dl").mkdir()
    (tmp_path / "dl" / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b broken leftover")
    download_mnist(tmp_path / "dl")
    assert not [p for p in (tmp_path / "dl").iterdir() if p.name.startswith(".")]
    train, _ = load_mnist(tmp_path / "dl", download=False, verify=True)
    src_images = read_idx(tmp_path / "src" / MNIST_FILES["train_images"])
    np.testing.assert_array_equal(train.images, src_images)


# ----------------------------------------------------------------------------- load_mnist

def test_load_mnist_caches_read_only_arrays(tmp_path):
    arrays = make_idx_dir(tmp_path / "m")
    train1, test1 = load_mnist(tmp_path / "m", download=False)
    train2, _ = load_mnist(tmp_path / "m", download=False)
    assert train1 is not train2 and train1.images is train2.images
    assert (train1.name, test1.name) == ("mnist-train", "mnist-test")
    np.testing.assert_array_equal(test1.images, arrays["test_images"])
    assert not train1.images.flags.writeable and not train1.labels.flags.writeable
    with pytest.raises(ValueError):
        train1.images[0, 0, 0] = 1
    with pytest.raises(ValueError, match="MD5 of decompressed data"):
        load_mnist(tmp_path / "m", download=False, verify=True)


@needs_real_mnist
def test_real_mnist():
    train, test = load_mnist(REAL_MNIST, download=False, verify=True)
    assert train.images.shape == (60000, 28, 28) and test.images.shape == (10000, 28, 28)
    assert train.images.dtype == np.uint8 and train.labels.dtype == np.int64
    for ds in (train, test):
        assert set(np.unique(ds.labels)) == set(range(10))
    np.testing.assert_array_equal(train.labels[:10], [5, 0, 4, 1, 9, 2, 1, 3, 1, 4])
    assert train.images.max() == 255 and train.images.min() == 0
    raw = gzip.decompress((REAL_MNIST / MNIST_FILES["test_labels"]).read_bytes())
    assert hashlib.md5(raw).hexdigest() == MNIST_MD5["test_labels"]


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
    for oa, ob in zip(orders_a, orders_b):
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
