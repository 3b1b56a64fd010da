"""MNIST and any dataset in its IDX layout: find, download, verify, load; and
:func:`load_dataset`, which resolves every source by name or folder.

An explicit ``data_dir`` is the only place searched; otherwise ``$TINYGRAD_MNIST_DATA``,
then the cache directory.  With internet the four files are downloaded and checked by MD5;
offline the error says which files were looked for, where, and how to supply them.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import tempfile
import urllib.request
import zlib
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from ..types import PathLike
from .datasets import Dataset, load_digits, load_png_folder
from .idx import GZIP_MAGIC, IDXFormatError, parse_idx, read_bytes, read_idx

__all__ = ["MNIST_FILES", "MNIST_MD5", "MNIST_MIRRORS", "load_idx_dir", "MNISTNotFoundError",
           "default_cache_dir", "find_mnist", "download_mnist", "load_mnist", "load_dataset",
           "torchvision_dirs", "dataset_name", "source_name", "is_mnist", "mnist_files", "TORCHVISION_FOLDERS"]


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
_MNIST_CACHE: Dict[Path, Dict[str, Any]] = {}  # resolved dir -> {"arrays": (4 read-only arrays), "verified": bool}


def _locate(directory: PathLike) -> Tuple[Dict[str, Path], List[str]]:
    """Return ``(found, missing)``: role -> Path of the files present, names absent."""
    found: Dict[str, Path] = {}
    missing: List[str] = []
    for role, name in MNIST_FILES.items():
        for candidate in (name, name[:-3]):
            if (Path(directory) / candidate).is_file():
                found[role] = Path(directory) / candidate
                break
        else:
            missing.append(name)
    return found, missing


#: torchvision's download layout: ``ROOT/<folder>/raw/`` holds the IDX files.
TORCHVISION_FOLDERS = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}


def torchvision_dirs(root: PathLike) -> List[Path]:
    """The directories an IDX dataset may sit in under ``root``: ``root`` itself, then
    torchvision's ``root/MNIST/raw`` and ``root/FashionMNIST/raw``."""
    root = Path(root)
    return [root] + [root / folder / "raw" for folder in TORCHVISION_FOLDERS.values()]


def dataset_name(directory: PathLike) -> str:
    """A dataset's name from its folder: torchvision's ``X/raw`` is named ``X``, any other
    folder by its own name (``".../fashion/"`` → ``"fashion"``)."""
    directory = Path(directory).resolve()
    return directory.parent.name if directory.name == "raw" and directory.parent.name else directory.name


def is_mnist(found: Mapping[str, PathLike]) -> bool:
    """True when both label files are byte for byte MNIST's (MD5 of 70 KB: cheap)."""
    return all(_md5(read_bytes(found[r])) == MNIST_MD5[r] for r in ("train_labels", "test_labels"))


def _datasets(arrays: Mapping[str, np.ndarray], paths: Mapping[str, Path],
              name: str) -> Tuple[Dataset, Dataset]:
    """Build (train, test) Datasets from the four arrays, naming the file on a problem."""
    for role, arr in arrays.items():
        images = role.endswith("images")
        if arr.ndim != (3 if images else 1) or (images and arr.dtype != np.uint8):
            want = "uint8 images of shape (n, H, W)" if images else "labels of shape (n,)"
            raise ValueError(f"{paths[role]}: expected {want}, got {arr.dtype} {arr.shape}")
    k = max(10, 1 + max(int(arrays[r].max(initial=0)) for r in ("train_labels", "test_labels")))
    return (Dataset(arrays["train_images"], arrays["train_labels"], f"{name}-train", k),
            Dataset(arrays["test_images"], arrays["test_labels"], f"{name}-test", k))


def load_idx_dir(path: PathLike, name: str = "idx") -> Tuple[Dataset, Dataset]:
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


def _not_found_message(searched: Sequence[Tuple[Path, str, Sequence[str]]], what: str = "MNIST files") -> str:
    """``searched``: (directory, how it was chosen, missing file names) per place looked."""
    lines = [f"{what} not found. Looked for (each also accepted without .gz): "
             + ", ".join(MNIST_FILES.values()) + "\nin:"]
    for directory, how, missing in searched:
        state = "missing " + ", ".join(missing) if directory.is_dir() else "does not exist"
        lines.append(f"  {directory} ({how}): {state}; also looked in its torchvision "
                     f"subfolders {', '.join(f'{f}/raw/' for f in TORCHVISION_FOLDERS.values())}")
    lines.append(f"Supply them by passing data_dir=... (or --data-dir on the command line), "
                 f"setting ${_DATA_ENV}, or placing the files in the cache dir "
                 f"{default_cache_dir()} (set by ${_CACHE_ENV}). With internet access "
                 "load_mnist(download=True) downloads them there automatically.")
    return "\n".join(lines)


def default_cache_dir() -> Path:
    """Return ``Path($TINYGRAD_MNIST_CACHE)`` or ``~/.cache/tinygrad_mnist/mnist``."""
    env = os.environ.get(_CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "tinygrad_mnist" / "mnist"


def find_mnist(data_dir: Optional[PathLike] = None) -> Path:
    """Return the first directory holding all four MNIST files, resolved.

    An explicit ``data_dir`` is the only place searched (a user who names a directory
    never silently gets another copy); otherwise ``$TINYGRAD_MNIST_DATA``, then
    :func:`default_cache_dir`.  Raises :class:`MNISTNotFoundError` naming every missing
    file and directory.
    """
    if data_dir is not None:
        places: List[Tuple[Optional[PathLike], str]] = [(data_dir, "data_dir argument")]
    else:
        places = [(os.environ.get(_DATA_ENV), f"${_DATA_ENV}"), (default_cache_dir(), "cache dir")]
    searched: List[Tuple[Path, str, List[str]]] = []
    for directory, how in ((Path(d).expanduser(), how) for d, how in places if d):
        for candidate in torchvision_dirs(directory):
            if not _locate(candidate)[1]:
                return candidate.resolve()
        searched.append((directory, how, _locate(directory)[1]))
    raise MNISTNotFoundError(_not_found_message(searched))


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def download_mnist(dest: PathLike, mirrors: Sequence[str] = MNIST_MIRRORS, timeout: float = 30) -> Path:
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
            if role in found and _md5(read_bytes(found[role])) == MNIST_MD5[role]:
                continue
        except IDXFormatError:
            pass  # a corrupt gzip left over: fetch it again
        errors = []
        for mirror in mirrors:
            url = mirror + name
            try:
                with urllib.request.urlopen(url, timeout=timeout) as response:
                    body = response.read()
                raw = gzip.decompress(body) if body[:2] == GZIP_MAGIC else body
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


def load_mnist(data_dir: Optional[PathLike] = None, download: bool = True,
               verify: bool = False) -> Tuple[Dataset, Dataset]:
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
        found = _locate(root)[0]
        arrays: Dict[str, np.ndarray] = {}
        for role, path in found.items():
            raw = read_bytes(path)
            if verify and _md5(raw) != MNIST_MD5[role]:
                raise ValueError(f"{path}: MD5 of decompressed data is {_md5(raw)}, expected "
                                 f"{MNIST_MD5[role]} (corrupt file or not the original MNIST)")
            arr = parse_idx(raw, path)
            arrays[role] = arr.astype(np.int64) if role.endswith("labels") else arr
            arrays[role].flags.writeable = False
        entry = _MNIST_CACHE[root] = {"arrays": arrays, "found": found, "verified": verify}
    return _datasets(entry["arrays"], entry["found"], "mnist")


def mnist_files(directory: PathLike) -> Dict[str, Path]:
    """role -> Path of the MNIST-layout files present in ``directory`` (``.gz`` or raw)."""
    return _locate(directory)[0]


def source_name(data_dir: Optional[PathLike] = None) -> str:
    """What :func:`load_mnist` with this ``data_dir`` really loads, by name: ``"mnist"`` when
    the label files are MNIST's (MD5), else the folder's name (:func:`dataset_name`), so a
    drop-in such as Fashion-MNIST is never reported as MNIST."""
    root = find_mnist(data_dir)
    return "mnist" if is_mnist(_locate(root)[0]) else dataset_name(root)


def load_dataset(name_or_path: PathLike = "mnist", data_dir: Optional[PathLike] = None,
                 download: bool = True) -> Tuple[Dataset, Dataset]:
    """Return ``(train, test)`` Datasets for ``"mnist"``, ``"digits"`` or a directory in
    the IDX layout (see :func:`load_idx_dir`) or else the PNG-folder layout."""
    key = name_or_path.lower().replace("_", "-") if isinstance(name_or_path, str) else None
    if key == "mnist":
        return load_mnist(data_dir=data_dir, download=download)
    if key == "digits":
        return load_digits()
    if key in ("fashion-mnist", "fashionmnist"):
        root = Path(data_dir if data_dir is not None else os.environ.get(_DATA_ENV) or ".").expanduser()
        for candidate in (root / "FashionMNIST" / "raw", root):
            if not _locate(candidate)[1]:
                return load_idx_dir(candidate, name=dataset_name(candidate))
        raise MNISTNotFoundError(_not_found_message([(root / "FashionMNIST" / "raw", "Fashion-MNIST under data_dir",
                                                      _locate(root / "FashionMNIST" / "raw")[1])],
                                                    what="Fashion-MNIST IDX files"))
    path = Path(name_or_path).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"load_dataset: {name_or_path!r} is neither 'mnist', 'digits', "
                                "'fashion-mnist' nor an existing directory")
    for candidate in torchvision_dirs(path):
        if not _locate(candidate)[1]:
            return load_idx_dir(candidate, name=dataset_name(candidate))
    missing = _locate(path)[1]
    if any((path / s).is_dir() for s in ("Train", "train")):
        return load_png_folder(path)
    raise FileNotFoundError(f"load_dataset: {path} is neither an IDX directory (missing "
                            f"{', '.join(missing)}) nor a PNG folder (no Train/ subdirectory)")
