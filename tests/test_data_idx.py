"""Tests for the IDX format (tinygrad_mnist.data.idx): reading, writing, gzip, malformed files.

Every file is built in tmp_path; the network and the user's cache dir are never touched
(the ``isolated_data_env`` fixture of conftest.py).
"""
import gzip
import os
import struct
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_mnist.data import IDXFormatError, read_idx, write_idx

from .conftest import REPO, idx_header
from .strategies import seeds  # also loads the project's hypothesis profile

IDX_CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C,
             np.float32: 0x0D, np.float64: 0x0E}  # from the IDX specification
IDX_DTYPES = list(IDX_CODES)

pytestmark = pytest.mark.usefixtures("isolated_data_env")  # no network, no real cache dir


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
