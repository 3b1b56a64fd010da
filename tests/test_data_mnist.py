"""Tests for finding, downloading and loading MNIST (IDX directories, cache dir, mirrors, MD5).

Unit tests build tiny IDX files in tmp_path.  The network is never used: the
``isolated_data_env`` fixture of conftest.py makes ``urllib.request.urlopen`` fail, and the
download tests replace it with a fake serving local bytes.  One test reads the real MNIST
files if present.
"""
import gzip
import hashlib
import io
import os
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from tinygrad_mnist import data
from tinygrad_mnist.data import (
    MNIST_FILES,
    MNIST_MD5,
    MNIST_MIRRORS,
    MNISTNotFoundError,
    default_cache_dir,
    download_mnist,
    find_mnist,
    load_idx_dir,
    load_mnist,
    read_idx,
    write_idx,
)

from .conftest import idx_header, make_idx_dir

REAL_MNIST = Path(os.environ.get("TINYGRAD_MNIST_DATA")
                  or Path(__file__).resolve().parents[2] / "shared/data/mnist")
HAVE_REAL_MNIST = all((REAL_MNIST / name).is_file() for name in MNIST_FILES.values())
needs_real_mnist = pytest.mark.skipif(not HAVE_REAL_MNIST,
                                      reason=f"real MNIST not found in {REAL_MNIST}")

pytestmark = pytest.mark.usefixtures("isolated_data_env")  # no network, no real cache dir


class FakeServer:
    """Stands in for urllib.request.urlopen: serves ``files[name]`` bytes per mirror."""

    def __init__(self, files, fail_mirrors=()):
        self.files, self.fail_mirrors, self.urls = files, fail_mirrors, []

    def __call__(self, url, timeout=None):
        self.urls.append(url)
        if any(url.startswith(m) for m in self.fail_mirrors):
            raise urllib.error.URLError(f"mirror down: {url}")
        return io.BytesIO(self.files[url.rsplit("/", 1)[1]])
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
