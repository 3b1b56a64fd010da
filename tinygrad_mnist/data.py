"""Datasets: MNIST / PNG-folder / 8x8-digits loaders, splits, batches.

Images stay uint8 of shape (n, H, W) in memory; :class:`DataLoader` converts one batch
at a time to float.  numpy and the standard library only; Pillow and scikit-learn are
imported inside the functions that need them.
"""
from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import tempfile
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .idx import _GZIP_MAGIC, IDXFormatError, _parse_idx, _read_bytes, read_idx, write_idx

__all__ = ["IDXFormatError", "read_idx", "write_idx", "MNIST_FILES", "MNIST_MD5", "MNIST_MIRRORS",
           "Dataset", "load_idx_dir", "MNISTNotFoundError", "default_cache_dir", "find_mnist",
           "download_mnist", "load_mnist", "load_png_folder", "load_digits", "load_dataset",
           "train_val_split", "DataLoader"]

# ----------------------------------------------------------------------------- helpers

def _int(value, what, lo, hi=None):
    """Return ``value`` as an int in [lo, hi], else raise TypeError / ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{what} must be an int, got {value!r}")
    if value < lo or (hi is not None and value > hi):
        raise ValueError(f"{what} must be in [{lo}, {'inf' if hi is None else hi}], got {value}")
    return int(value)


# ----------------------------------------------------------------------------- Dataset

@dataclass(repr=False, eq=False)
class Dataset:
    """Labelled grayscale images kept as uint8.

    Parameters
    ----------
    images : ndarray of shape (n, H, W), dtype uint8
    labels : ndarray of shape (n,)
        Integer class labels in ``[0, num_classes)``; stored as int64.
    name : str
    num_classes : int, default=10
    """

    images: np.ndarray
    labels: np.ndarray
    name: str
    num_classes: int = 10

    def __post_init__(self):
        who = f"Dataset {self.name!r}"
        if not isinstance(self.images, np.ndarray):
            raise TypeError(f"{who}: images must be a numpy array, "
                            f"got {type(self.images).__name__}")
        if self.images.dtype != np.uint8:
            raise TypeError(f"{who}: images must have dtype uint8, got {self.images.dtype}")
        if self.images.ndim != 3:
            raise ValueError(f"{who}: images must have shape (n, H, W), got {self.images.shape}")
        labels = np.asarray(self.labels)
        if labels.dtype.kind not in "iu":
            raise TypeError(f"{who}: labels must be integers, got dtype {labels.dtype}")
        if labels.shape != (len(self.images),):
            raise ValueError(f"{who}: expected labels of shape ({len(self.images)},) to match "
                             f"{len(self.images)} images, got {labels.shape}")
        self.num_classes = _int(self.num_classes, f"{who}: num_classes", 1)
        if labels.size and (labels.min() < 0 or labels.max() >= self.num_classes):
            raise ValueError(f"{who}: labels must lie in [0, {self.num_classes}), found "
                             f"range [{labels.min()}, {labels.max()}]")
        self.labels = labels.astype(np.int64, copy=False)

    def __len__(self):
        return len(self.images)

    @property
    def image_shape(self):
        """tuple (H, W)"""
        return tuple(self.images.shape[1:])

    @property
    def n_features(self):
        """int: H * W, the length of one flattened image."""
        return int(np.prod(self.image_shape))

    def subset(self, indices, name=None):
        """Return the examples at ``indices`` (int array or boolean mask of length n)."""
        idx = np.asarray(indices) if len(indices) else np.zeros(0, dtype=np.intp)
        if idx.dtype != bool and idx.dtype.kind not in "iu":
            raise TypeError(f"Dataset {self.name!r}.subset: indices must be integers or a "
                            f"boolean mask, got dtype {idx.dtype}")
        images, labels = self.images[idx], self.labels[idx]
        return Dataset(images, labels, name or f"{self.name}[{len(labels)}]", self.num_classes)

    def first(self, n):
        """Return the first ``n`` examples (a view, no copy); ``0 <= n <= len(self)``."""
        n = _int(n, f"Dataset {self.name!r}.first: n", 0, len(self))
        return Dataset(self.images[:n], self.labels[:n], f"{self.name}[:{n}]", self.num_classes)

    def __repr__(self):
        return (f"Dataset(name={self.name!r}, n={len(self)}, image_shape={self.image_shape}, "
                f"num_classes={self.num_classes})")


# ----------------------------------------------------------------------------- MNIST files

MNIST_FILES = {"train_images": "train-images-idx3-ubyte.gz",
               "train_labels": "train-labels-idx1-ubyte.gz",
               "test_images": "t10k-images-idx3-ubyte.gz",
               "test_labels": "t10k-labels-idx1-ubyte.gz"}
"""dict: role -> standard file name; the name without ``.gz`` is accepted too."""
MNIST_MD5 = {"train_images": "6bbc9ace898e44ae57da46a324031adb",
             "train_labels": "a25bea736e30d166cdddb491f175f624",
             "test_images": "2646ac647ad5339dbf082846283269ea",
             "test_labels": "27ae3e4e09519cfbb04c329615203637"}
"""dict: role -> MD5 of the *decompressed* file."""
MNIST_MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/",
                 "https://storage.googleapis.com/cvdf-datasets/mnist/")
_DATA_ENV, _CACHE_ENV = "TINYGRAD_MNIST_DATA", "TINYGRAD_MNIST_CACHE"
_MNIST_CACHE = {}  # resolved dir -> {"arrays": (4 read-only arrays), "verified": bool}


def _locate(directory):
    """Return ``(found, missing)``: role -> Path of the files present, names absent."""
    found, missing = {}, []
    for role, name in MNIST_FILES.items():
        for candidate in (name, name[:-3]):
            if (Path(directory) / candidate).is_file():
                found[role] = Path(directory) / candidate
                break
        else:
            missing.append(name)
    return found, missing


def _datasets(arrays, paths, name):
    """Build (train, test) Datasets from the four arrays, naming the file on a problem."""
    for role, arr in arrays.items():
        images = role.endswith("images")
        if arr.ndim != (3 if images else 1) or (images and arr.dtype != np.uint8):
            want = "uint8 images of shape (n, H, W)" if images else "labels of shape (n,)"
            raise ValueError(f"{paths[role]}: expected {want}, got {arr.dtype} {arr.shape}")
    k = max(10, 1 + max(int(arrays[r].max(initial=0)) for r in ("train_labels", "test_labels")))
    return (Dataset(arrays["train_images"], arrays["train_labels"], f"{name}-train", k),
            Dataset(arrays["test_images"], arrays["test_labels"], f"{name}-test", k))


def load_idx_dir(path, name="idx"):
    """Load a directory in the MNIST file layout (any IDX drop-in, e.g. Fashion-MNIST).

    Returns
    -------
    train, test : Dataset
        Named ``f"{name}-train"`` and ``f"{name}-test"``; ``num_classes`` is
        ``max(10, largest label + 1)``.
    """
    found, missing = _locate(path)
    if missing:
        raise MNISTNotFoundError(_not_found_message([(Path(path), "given directory", missing)],
                                                    what="IDX files"))
    return _datasets({role: read_idx(p) for role, p in found.items()}, found, name)


class MNISTNotFoundError(FileNotFoundError):
    """The MNIST files are in none of the searched directories (and could not be downloaded)."""


def _not_found_message(searched, what="MNIST files"):
    """``searched``: (directory, how it was chosen, missing file names) per place looked."""
    lines = [f"{what} not found. Looked for (each also accepted without .gz): "
             + ", ".join(MNIST_FILES.values()) + "\nin:"]
    for directory, how, missing in searched:
        state = "missing " + ", ".join(missing) if directory.is_dir() else "does not exist"
        lines.append(f"  {directory} ({how}): {state}")
    lines.append(f"Supply them by passing data_dir=... (or --data-dir on the command line), "
                 f"setting ${_DATA_ENV}, or placing the files in the cache dir "
                 f"{default_cache_dir()} (set by ${_CACHE_ENV}). With internet access "
                 "load_mnist(download=True) downloads them there automatically.")
    return "\n".join(lines)


def default_cache_dir():
    """Return ``Path($TINYGRAD_MNIST_CACHE)`` or ``~/.cache/tinygrad_mnist/mnist``."""
    env = os.environ.get(_CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "tinygrad_mnist" / "mnist"


def find_mnist(data_dir=None):
    """Return the first directory holding all four MNIST files, resolved.

    An explicit ``data_dir`` is the only place searched (a user who names a directory
    never silently gets another copy); otherwise ``$TINYGRAD_MNIST_DATA``, then
    :func:`default_cache_dir`.  Raises :class:`MNISTNotFoundError` naming every missing
    file and directory.
    """
    if data_dir is not None:
        places = [(data_dir, "data_dir argument")]
    else:
        places = [(os.environ.get(_DATA_ENV), f"${_DATA_ENV}"), (default_cache_dir(), "cache dir")]
    searched = []
    for directory, how in ((Path(d).expanduser(), how) for d, how in places if d):
        if not (missing := _locate(directory)[1]):
            return directory.resolve()
        searched.append((directory, how, missing))
    raise MNISTNotFoundError(_not_found_message(searched))


def _md5(data):
    return hashlib.md5(data).hexdigest()


def download_mnist(dest, mirrors=MNIST_MIRRORS, timeout=30):
    """Download the four MNIST ``.gz`` files into ``dest`` and return ``Path(dest)``.

    Files already there with the right MD5 are kept.  Each download is checked against
    the MD5 of its decompressed bytes, written to a temporary file in ``dest`` and renamed
    into place; on a network error or a mismatch the next mirror is tried.  Raises
    ``OSError`` listing every attempt if a file cannot be had from any mirror.
    """
    dest = Path(dest).expanduser()
    dest.mkdir(parents=True, exist_ok=True)
    found = _locate(dest)[0]
    for role, name in MNIST_FILES.items():
        try:
            if role in found and _md5(_read_bytes(found[role])) == MNIST_MD5[role]:
                continue
        except IDXFormatError:
            pass  # a corrupt gzip left over: fetch it again
        errors = []
        for mirror in mirrors:
            url = mirror + name
            try:
                with urllib.request.urlopen(url, timeout=timeout) as response:
                    body = response.read()
                raw = gzip.decompress(body) if body[:2] == _GZIP_MAGIC else body
            except (OSError, EOFError, ValueError, zlib.error, http.client.HTTPException) as err:
                errors.append(f"{url}: {type(err).__name__}: {err}")
                continue
            if _md5(raw) != MNIST_MD5[role]:
                errors.append(f"{url}: MD5 mismatch, expected {MNIST_MD5[role]}, got {_md5(raw)}")
                continue
            fd, tmp = tempfile.mkstemp(dir=dest, prefix=f".{name}.", suffix=".part")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(body)
                os.replace(tmp, dest / name)
            except BaseException:
                os.unlink(tmp)
                raise
            break
        else:
            raise OSError(f"could not download {name} into {dest}:\n  " + "\n  ".join(errors))
    return dest


def load_mnist(data_dir=None, download=True, verify=False):
    """Load MNIST as ``(train, test)`` Datasets: images uint8 of shape (60000, 28, 28)
    and (10000, 28, 28), labels int64.

    ``data_dir`` (if given, the only place searched), else ``$TINYGRAD_MNIST_DATA`` and
    the cache dir (see :func:`find_mnist`); if the files are not there and ``download``
    is true they are downloaded into ``data_dir`` or :func:`default_cache_dir`.  ``verify``
    checks each decompressed file's MD5 (``ValueError`` on mismatch).  The decoded arrays
    are cached per resolved directory for the life of the process and marked read-only;
    each call returns new Datasets sharing them.
    """
    try:
        root = find_mnist(data_dir)
    except MNISTNotFoundError as err:  # offline: say where we looked and why download failed
        if not download:
            raise
        try:
            root = download_mnist(data_dir if data_dir is not None else default_cache_dir()).resolve()
        except OSError as dl_err:
            raise MNISTNotFoundError(f"{err}\nDownload failed: {dl_err}") from dl_err
    entry = _MNIST_CACHE.get(root)
    if entry is None or (verify and not entry["verified"]):
        found, arrays = _locate(root)[0], {}
        for role, path in found.items():
            raw = _read_bytes(path)
            if verify and _md5(raw) != MNIST_MD5[role]:
                raise ValueError(f"{path}: MD5 of decompressed data is {_md5(raw)}, expected "
                                 f"{MNIST_MD5[role]} (corrupt file or not the original MNIST)")
            arr = _parse_idx(raw, path)
            arrays[role] = arr.astype(np.int64) if role.endswith("labels") else arr
            arrays[role].flags.writeable = False
        entry = _MNIST_CACHE[root] = {"arrays": arrays, "found": found, "verified": verify}
    return _datasets(entry["arrays"], entry["found"], "mnist")


# ----------------------------------------------------------------------------- other sources

def load_png_folder(root):
    """Load ``root/Train/<label>/*.png`` and ``root/Test/<label>/*.png`` (or lowercase).

    Class folders are named by their integer label; images are converted to grayscale
    and read in sorted file order.  All images must share one size.

    Returns
    -------
    train, test : Dataset
        Images of shape (n, H, W), uint8; ``num_classes = max(10, largest label + 1)``.
    """
    from PIL import Image

    root = Path(root)
    out, size, first = [], None, None
    for split in ("Train", "Test"):
        base = next((root / s for s in (split, split.lower()) if (root / s).is_dir()), None)
        if base is None:
            raise FileNotFoundError(f"PNG folder {root}: no {split}/ or {split.lower()}/ "
                                    f"subdirectory (expected {root}/{split}/0..9/*.png)")
        class_dirs = sorted((d for d in base.iterdir() if d.is_dir() and d.name.isdigit()),
                            key=lambda d: int(d.name))
        images, labels = [], []
        for d in class_dirs:
            for f in sorted(p for p in d.iterdir() if p.suffix.lower() == ".png"):
                with Image.open(f) as im:
                    img = np.asarray(im.convert("L"), dtype=np.uint8)
                if size is None:
                    size, first = img.shape, f
                elif img.shape != size:
                    raise ValueError(f"PNG folder {root}: all images must share one size; "
                                     f"{first} is {size[1]}x{size[0]} but {f} is "
                                     f"{img.shape[1]}x{img.shape[0]} (width x height)")
                images.append(img)
                labels.append(int(d.name))
        if not images:
            raise ValueError(f"PNG folder {base}: no .png files in digit-named class folders")
        out.append((np.stack(images), np.array(labels, dtype=np.int64)))
    k = max(10, max(int(lab.max()) for _, lab in out) + 1)
    return (Dataset(*out[0], name=f"{root.name}-train", num_classes=k),
            Dataset(*out[1], name=f"{root.name}-test", num_classes=k))


def _resolve_size(size, n, what):
    """Turn an int count or a fraction in (0, 1) into a count in [1, n - 1]."""
    if isinstance(size, bool) or not isinstance(size, (int, float, np.integer, np.floating)):
        raise TypeError(f"{what} must be an int or a float fraction, got {size!r}")
    if isinstance(size, (float, np.floating)):
        if not 0.0 < size < 1.0:
            raise ValueError(f"{what} as a fraction must be in (0, 1), got {size}")
        size = int(round(size * n))
    if not 1 <= size <= n - 1:
        raise ValueError(f"{what} must leave at least one example on each side of a split of "
                         f"{n} examples: got {size}, expected 1..{n - 1}")
    return int(size)


def load_digits(test_size=0.2, seed=0):
    """scikit-learn's bundled 8x8 digits (1,797 images, no download), split by ``seed``.

    Pixel values 0..16 are scaled to uint8 as ``round(v * 255 / 16)``.  The split is
    stratified by class when both sides can hold every class, plain otherwise.

    Returns
    -------
    train, test : Dataset
        Images of shape (n, 8, 8); ``test_size`` is a count or a fraction.
    """
    from sklearn.datasets import load_digits as sk_load_digits
    from sklearn.model_selection import train_test_split

    bunch = sk_load_digits()
    images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)  # 0..16 -> 0..255
    labels = bunch.target.astype(np.int64)
    k = _resolve_size(test_size, len(labels), "load_digits: test_size")
    stratify = labels if min(k, len(labels) - k) >= 10 else None
    train_idx, test_idx = train_test_split(np.arange(len(labels)), test_size=k,
                                           random_state=seed, stratify=stratify)
    return (Dataset(images[train_idx], labels[train_idx], "digits-train"),
            Dataset(images[test_idx], labels[test_idx], "digits-test"))


def load_dataset(name_or_path="mnist", data_dir=None, download=True):
    """Return ``(train, test)`` Datasets for ``"mnist"``, ``"digits"`` or a directory in
    the IDX layout (see :func:`load_idx_dir`) or else the PNG-folder layout."""
    key = name_or_path.lower() if isinstance(name_or_path, str) else None
    if key == "mnist":
        return load_mnist(data_dir=data_dir, download=download)
    if key == "digits":
        return load_digits()
    path = Path(name_or_path).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"load_dataset: {name_or_path!r} is neither 'mnist', "
                                "'digits' nor an existing directory")
    if not (missing := _locate(path)[1]):
        return load_idx_dir(path, name=path.name)
    if any((path / s).is_dir() for s in ("Train", "train")):
        return load_png_folder(path)
    raise FileNotFoundError(f"load_dataset: {path} is neither an IDX directory (missing "
                            f"{', '.join(missing)}) nor a PNG folder (no Train/ subdirectory)")


def train_val_split(dataset, val_size=10000, seed=0):
    """Seeded random split into ``(train, val)``; indices are kept in original order.

    Parameters
    ----------
    dataset : Dataset
    val_size : int or float, default=10000
        Number of validation examples, or a fraction in (0, 1).
    seed : int, default=0
        Seeds ``np.random.default_rng(seed)``.
    """
    if not isinstance(dataset, Dataset):
        raise TypeError(f"train_val_split: expected a Dataset, got {type(dataset).__name__}")
    k = _resolve_size(val_size, len(dataset), "train_val_split: val_size")
    perm = np.random.default_rng(seed).permutation(len(dataset))
    return (dataset.subset(np.sort(perm[k:]), name=f"{dataset.name}[train]"),
            dataset.subset(np.sort(perm[:k]), name=f"{dataset.name}[val]"))


# ----------------------------------------------------------------------------- batches

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

    def __init__(self, dataset, batch_size=256, shuffle=True, seed=0, drop_last=False,
                 flatten=True, dtype=np.float32, scale=1 / 255):
        if not isinstance(dataset, Dataset):
            raise TypeError(f"DataLoader: expected a Dataset, got {type(dataset).__name__}")
        if np.dtype(dtype) not in (np.float32, np.float64):
            raise TypeError(f"DataLoader: dtype must be float32 or float64, got {np.dtype(dtype)}")
        if not np.isfinite(scale):
            raise ValueError(f"DataLoader: scale must be finite, got {scale}")
        self.dataset, self.shuffle, self.drop_last = dataset, bool(shuffle), bool(drop_last)
        self.batch_size = _int(batch_size, "DataLoader: batch_size", 1)
        self.seed = _int(seed, "DataLoader: seed", 0)
        self.flatten, self.dtype, self.scale = bool(flatten), np.dtype(dtype), float(scale)
        self.epoch = 0

    def set_epoch(self, epoch):
        """Make the next ``iter()`` produce epoch ``epoch`` (>= 0)."""
        self.epoch = _int(epoch, "DataLoader.set_epoch: epoch", 0)

    def __len__(self):
        n, b = len(self.dataset), self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def __iter__(self):
        epoch, self.epoch = self.epoch, self.epoch + 1
        n = len(self.dataset)
        order = np.random.default_rng([self.seed, epoch]).permutation(n) if self.shuffle else None
        return self._batches(order)

    def _batches(self, order):
        d = self.dataset
        images, labels = d.images, d.labels
        shape = (-1, d.n_features) if self.flatten else (-1, 1, *d.image_shape)
        for i in range(len(self)):
            sel = slice(i * self.batch_size, (i + 1) * self.batch_size)
            idx = sel if order is None else order[sel]
            x = np.multiply(images[idx], self.scale, dtype=self.dtype)
            yield x.reshape(shape), labels[idx]

    def __repr__(self):
        return f"DataLoader({self.dataset!r}, batch_size={self.batch_size}, seed={self.seed})"
