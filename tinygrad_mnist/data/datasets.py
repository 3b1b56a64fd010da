"""Datasets in memory: :class:`Dataset` (uint8 images + int labels), PNG folders,
scikit-learn's bundled 8×8 digits, and seeded train/validation splits.

Images stay uint8 of shape (n, H, W); :class:`~tinygrad_mnist.data.loader.DataLoader`
converts one batch at a time to float.  Pillow and scikit-learn are imported inside the
functions that need them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple, Union

import numpy as np

from ..types import PathLike

__all__ = ["Dataset", "check_int", "load_png_folder", "load_digits", "train_val_split"]


def check_int(value: Any, what: str, lo: int, hi: Optional[int] = None) -> int:
    """Return ``value`` as an int in [lo, hi], else raise TypeError / ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{what} must be an int, got {value!r}")
    if value < lo or (hi is not None and value > hi):
        raise ValueError(f"{what} must be in [{lo}, {'inf' if hi is None else hi}], got {value}")
    return int(value)


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

    def __post_init__(self) -> None:
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
        self.num_classes = check_int(self.num_classes, f"{who}: num_classes", 1)
        if labels.size and (labels.min() < 0 or labels.max() >= self.num_classes):
            raise ValueError(f"{who}: labels must lie in [0, {self.num_classes}), found "
                             f"range [{labels.min()}, {labels.max()}]")
        self.labels = labels.astype(np.int64, copy=False)

    def __len__(self) -> int:
        return len(self.images)

    @property
    def image_shape(self) -> Tuple[int, int]:
        """tuple (H, W)"""
        return (self.images.shape[1], self.images.shape[2])  # images are (n, H, W) (checked)

    @property
    def n_features(self) -> int:
        """int: H * W, the length of one flattened image."""
        return int(np.prod(self.image_shape))

    def subset(self, indices: Union[Sequence[int], np.ndarray], name: Optional[str] = None) -> "Dataset":
        """Return the examples at ``indices`` (int array or boolean mask of length n)."""
        idx = np.asarray(indices) if len(indices) else np.zeros(0, dtype=np.intp)
        if idx.dtype != bool and idx.dtype.kind not in "iu":
            raise TypeError(f"Dataset {self.name!r}.subset: indices must be integers or a "
                            f"boolean mask, got dtype {idx.dtype}")
        images, labels = self.images[idx], self.labels[idx]
        return Dataset(images, labels, name or f"{self.name}[{len(labels)}]", self.num_classes)

    def first(self, n: int) -> "Dataset":
        """Return the first ``n`` examples (a view, no copy); ``0 <= n <= len(self)``."""
        n = check_int(n, f"Dataset {self.name!r}.first: n", 0, len(self))
        return Dataset(self.images[:n], self.labels[:n], f"{self.name}[:{n}]", self.num_classes)

    def __repr__(self) -> str:
        return (f"Dataset(name={self.name!r}, n={len(self)}, image_shape={self.image_shape}, "
                f"num_classes={self.num_classes})")


def load_png_folder(root: PathLike) -> Tuple[Dataset, Dataset]:
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
    if not root.is_dir():
        raise FileNotFoundError(f"PNG folder {root}: the directory does not exist")
    out: List[Tuple[np.ndarray, np.ndarray]] = []
    size: Optional[Tuple[int, ...]] = None
    first: Optional[Path] = None
    classes: Dict[int, Set[str]] = {}
    for split in ("Train", "Test"):
        base = next((root / s for s in (split, split.lower()) if (root / s).is_dir()), None)
        if base is None:
            raise FileNotFoundError(f"PNG folder {root}: no {split}/ or {split.lower()}/ "
                                    f"subdirectory (expected {root}/{split}/0..9/*.png)")
        class_dirs = sorted((d for d in base.iterdir() if d.is_dir() and d.name.isdigit()),
                            key=lambda d: int(d.name))
        images, labels = [], []
        for d in class_dirs:
            files = sorted(p for p in d.iterdir() if p.suffix.lower() == ".png")
            if not files:
                raise ValueError(f"PNG folder {root}: class {d.name} is missing: {d} holds no .png files")
            classes.setdefault(int(d.name), set()).add(base.name)
            for f in files:
                try:
                    with Image.open(f) as im:
                        img = np.asarray(im.convert("L"), dtype=np.uint8)
                except (OSError, ValueError, SyntaxError) as err:  # PIL's UnidentifiedImageError is an OSError
                    raise ValueError(f"PNG folder {root}: unreadable image {f}: {err}") from None
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
    splits = {b for seen in classes.values() for b in seen}
    lopsided = {c: sorted(splits - seen) for c, seen in classes.items() if seen != splits}
    if lopsided:
        raise ValueError(f"PNG folder {root}: missing classes: "
                         + "; ".join(f"class {c} has no folder in {', '.join(m)}/" for c, m in sorted(lopsided.items()))
                         + " (Train/ and Test/ must hold the same class folders)")
    k = max(10, max(int(lab.max()) for _, lab in out) + 1)
    return (Dataset(*out[0], name=f"{root.name}-train", num_classes=k),
            Dataset(*out[1], name=f"{root.name}-test", num_classes=k))


def _resolve_size(size: Union[int, float], n: int, what: str) -> int:
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


def load_digits(test_size: Union[int, float] = 0.2, seed: int = 0) -> Tuple[Dataset, Dataset]:
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


def train_val_split(dataset: Dataset, val_size: Union[int, float] = 10000,
                    seed: int = 0) -> Tuple[Dataset, Dataset]:
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
