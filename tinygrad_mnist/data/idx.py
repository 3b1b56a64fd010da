"""The IDX file format (MNIST's): a reader that checks everything and a writer.

Layout: magic ``00 00 <dtype code> <ndim>``, then ``ndim`` big-endian uint32 sizes,
then the payload of ``prod(sizes)`` big-endian items.  Files may be gzip-compressed;
gzip is detected by its magic bytes ``1f 8b``, not by the file name.
"""
from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path
from typing import Any, Dict

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..types import PathLike

__all__ = ["IDXFormatError", "read_idx", "write_idx", "parse_idx", "read_bytes", "GZIP_MAGIC"]

_IDX_DTYPES: Dict[int, np.dtype] = {0x08: np.dtype(np.uint8), 0x09: np.dtype(np.int8), 0x0B: np.dtype(">i2"),
               0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
GZIP_MAGIC = b"\x1f\x8b"


class IDXFormatError(ValueError):
    """An IDX file is malformed (bad magic, truncated, trailing bytes, corrupt gzip)."""


def read_bytes(path: PathLike) -> bytes:
    """Return the decompressed bytes of ``path`` (gzip detected by its magic bytes)."""
    data = Path(path).read_bytes()
    if data[:2] == GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as err:
            raise IDXFormatError(f"{path}: corrupt gzip data ({err})") from err
    return data


def parse_idx(data: bytes, path: PathLike) -> NDArray[Any]:
    """Decode IDX bytes into a native-endian ndarray; ``path`` is used in messages."""
    if len(data) < 4 or data[:2] != b"\x00\x00":
        raise IDXFormatError(f"{path}: bad magic: expected 4 bytes starting 00 00, found "
                             f"{data[:4].hex(' ') or 'an empty file'}")
    code, ndim = data[2], data[3]
    if code not in _IDX_DTYPES:
        known = ", ".join(f"0x{c:02X} ({d.name})" for c, d in _IDX_DTYPES.items())
        raise IDXFormatError(f"{path}: bad magic: unknown dtype code 0x{code:02X}, "
                             f"expected one of {known}")
    if ndim == 0:
        raise IDXFormatError(f"{path}: bad magic: number of dimensions is 0, expected >= 1")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IDXFormatError(f"{path}: truncated header: expected {header} bytes for "
                             f"{ndim} dimensions, got {len(data)}")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    dtype = _IDX_DTYPES[code]
    expected = int(np.prod(dims, dtype=object)) * dtype.itemsize
    found = len(data) - header
    if found < expected:
        raise IDXFormatError(f"{path}: truncated: expected {expected} payload bytes for "
                             f"shape {dims} of {dtype.name}, got {found}")
    if found > expected:
        raise IDXFormatError(f"{path}: {found - expected} trailing bytes: expected "
                             f"{expected} payload bytes for shape {dims}, found {found}")
    arr = np.frombuffer(data, dtype=dtype, count=expected // dtype.itemsize, offset=header)
    return arr.astype(dtype.newbyteorder("="), copy=True).reshape(dims)


def read_idx(path: PathLike) -> NDArray[Any]:
    """Read an IDX file, raw or gzip-compressed (detected by content, not by name).

    Returns
    -------
    array : ndarray of shape dims
        Native-endian, writeable; uint8, int8, int16, int32, float32 or float64.

    Raises
    ------
    IDXFormatError
        Bad magic, unknown dtype code, truncated header or payload, trailing bytes or
        corrupt gzip; the message names the file, what was expected and what was found.
    """
    return parse_idx(read_bytes(path), path)


def write_idx(path: PathLike, array: ArrayLike) -> None:
    """Write ``array`` (uint8, int8, int16, int32, float32 or float64, 1 to 255 dims) as
    an IDX file, gzip-compressed if ``path`` ends with ``.gz``."""
    arr = np.asarray(array)
    codes = {dt.newbyteorder("="): code for code, dt in _IDX_DTYPES.items()}
    native = arr.dtype.newbyteorder("=")
    if native not in codes:
        raise TypeError(f"write_idx: dtype {arr.dtype} is not storable in IDX; expected "
                        "uint8, int8, int16, int32, float32 or float64")
    if not 1 <= arr.ndim <= 255 or max(arr.shape, default=0) >= 2**32:
        raise ValueError(f"write_idx: IDX holds 1 to 255 dims each < 2**32, got shape {arr.shape}")
    code = codes[native]
    raw = (bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
           + np.ascontiguousarray(arr, dtype=_IDX_DTYPES[code]).tobytes())
    if str(path).endswith(".gz"):
        raw = gzip.compress(raw, mtime=0)
    Path(path).write_bytes(raw)
