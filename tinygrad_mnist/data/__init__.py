"""Data: the IDX format, MNIST (find, download, verify), other sources, and batches.

===========  ==================================================================
file         what it holds
===========  ==================================================================
idx.py       read/write the IDX format (gzip or raw)
mnist.py     MNIST and IDX folders: find, download, verify, load; load_dataset
datasets.py  Dataset (uint8 images, labels), PNG folders, 8×8 digits, splits
loader.py    DataLoader: seeded float mini-batches, one epoch per ``iter()``
===========  ==================================================================
"""

from .datasets import Dataset, load_digits, load_png_folder, train_val_split
from .idx import IDXFormatError, read_idx, write_idx
from .loader import DataLoader
from .mnist import (
    MNIST_FILES,
    MNIST_MD5,
    MNIST_MIRRORS,
    MNISTNotFoundError,
    default_cache_dir,
    download_mnist,
    find_mnist,
    load_dataset,
    load_idx_dir,
    load_mnist,
)

__all__ = ["IDXFormatError", "read_idx", "write_idx", "MNIST_FILES", "MNIST_MD5", "MNIST_MIRRORS",
           "Dataset", "load_idx_dir", "MNISTNotFoundError", "default_cache_dir", "find_mnist",
           "download_mnist", "load_mnist", "load_png_folder", "load_digits", "load_dataset",
           "train_val_split", "DataLoader"]
