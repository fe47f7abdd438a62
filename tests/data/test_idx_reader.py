"""The idx reader: round trips, and every kind of corruption is an IdxFormatError."""

import gzip
import os

import numpy as np
import pytest

import mp.data
from mp.data import IdxFormatError, read_idx


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize(
    "array",
    [
        np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4),
        np.array([3, 1, 4, 1, 5], dtype=np.uint8),
        np.array([[-7, 70000], [1, -2]], dtype=np.int32),
        np.array([-1, 2], dtype=np.int8),
        np.array([[1.5, -2.25, 1e6]], dtype=np.float32),
        np.array([1e-300, -3.0], dtype=np.float64),
        np.array([-300, 301], dtype=np.int16),
    ],
    ids=["u8x3", "u8x1", "i32", "i8", "f32", "f64", "i16"],
)
def test_round_trip(tmp_path, write_idx, array, gz):
    path = write_idx(tmp_path / ("a.gz" if gz else "a"), array, gz=gz)
    out = read_idx(path)
    assert out.dtype == array.dtype and out.dtype.isnative
    np.testing.assert_array_equal(out, array)


def test_gzip_recognised_by_content(tmp_path, write_idx):
    array = np.arange(10, dtype=np.uint8)
    write_idx(tmp_path / "no-suffix", array, gz=True)
    write_idx(tmp_path / "raw.gz", array, gz=False)
    np.testing.assert_array_equal(read_idx(tmp_path / "no-suffix"), array)
    np.testing.assert_array_equal(read_idx(str(tmp_path / "raw.gz")), array)


def test_known_header_layout(tmp_path):
    # 0x00000801 = uint8, 1 dim; dim 3 (big-endian), then 3 bytes.
    path = tmp_path / "labels"
    path.write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 8, 9]))
    np.testing.assert_array_equal(read_idx(path), [7, 8, 9])
    # 0x00000803: 3 dims (1, 2, 2), 4 bytes.
    path.write_bytes(bytes([0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 2, 1, 2, 3, 4]))
    np.testing.assert_array_equal(read_idx(path), [[[1, 2], [3, 4]]])


def _good(encode_idx):
    return encode_idx(np.arange(24, dtype=np.uint8).reshape(2, 3, 4))


def _assert_idx_error(path, match, **kwargs):
    with pytest.raises(IdxFormatError, match=match) as e:
        read_idx(path, **kwargs)
    message = str(e.value)
    assert str(path) in message  # names the file
    assert "\n" not in message


@pytest.mark.parametrize(
    "header, match",
    [
        (b"\x01\x00\x08\x03", "magic"),  # first byte not zero
        (b"\x00\x01\x08\x03", "magic"),  # second byte not zero
        (b"\x00\x00\x07\x03", "magic"),  # unknown type code
    ],
)
def test_bad_magic(tmp_path, encode_idx, header, match):
    data = header + _good(encode_idx)[4:]
    path = tmp_path / "bad"
    path.write_bytes(data)
    _assert_idx_error(path, match)


def test_too_short_for_header(tmp_path):
    path = tmp_path / "short"
    path.write_bytes(b"\x00\x00")
    _assert_idx_error(path, "too short")
    path.write_bytes(b"\x00\x00\x08\x03\x00\x00\x00\x02")  # 3 dims announced, 1 given
    _assert_idx_error(path, "truncated header")


def test_wrong_dim_count(tmp_path, encode_idx):
    path = tmp_path / "images"
    path.write_bytes(_good(encode_idx))
    _assert_idx_error(path, "expected 1 dimension", ndim=1)
    assert read_idx(path, ndim=3).shape == (2, 3, 4)


def test_dim_count_disagrees_with_payload(tmp_path, encode_idx):
    # Header says 2 dims (2, 3) but the payload holds 24 bytes.
    data = bytearray(_good(encode_idx))
    data[3] = 2
    path = tmp_path / "dims"
    path.write_bytes(bytes(data[:4] + data[4:12] + data[16:]))
    _assert_idx_error(path, "extra bytes")


@pytest.mark.parametrize("gz", [False, True])
def test_truncated_payload(tmp_path, encode_idx, gz):
    # A well-formed (complete) gzip stream of a too short idx file.
    data = _good(encode_idx)[:-1]
    path = tmp_path / "truncated"
    path.write_bytes(gzip.compress(data) if gz else data)
    _assert_idx_error(path, "truncated payload")


def test_extra_bytes(tmp_path, encode_idx):
    path = tmp_path / "extra"
    path.write_bytes(_good(encode_idx) + b"\x00")
    _assert_idx_error(path, "extra bytes")


def test_truncated_gzip_stream(tmp_path, encode_idx):
    packed = gzip.compress(_good(encode_idx) * 1)
    path = tmp_path / "cut.gz"
    path.write_bytes(packed[: len(packed) // 2])
    _assert_idx_error(path, "gzip")


def test_corrupt_gzip_stream(tmp_path, encode_idx):
    packed = bytearray(gzip.compress(_good(encode_idx)))
    packed[-6] ^= 0xFF  # damage the CRC
    path = tmp_path / "crc.gz"
    path.write_bytes(bytes(packed))
    _assert_idx_error(path, "gzip")


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "nope")


# Dataset-level checks: the two files of a split must agree.


def _arrays(num_train=12, num_test=5):
    rng = np.random.default_rng(1)
    return {
        "train": (
            rng.integers(0, 256, (num_train, 28, 28), dtype=np.uint8),
            np.arange(num_train, dtype=np.uint8) % 10,
        ),
        "test": (
            rng.integers(0, 256, (num_test, 28, 28), dtype=np.uint8),
            np.arange(num_test, dtype=np.uint8) % 10,
        ),
    }


def test_dataset_label_count_mismatch(tmp_path, make_dataset, write_idx):
    make_dataset(tmp_path, _arrays())
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(11, np.uint8), gz=True)
    with pytest.raises(IdxFormatError, match="11 labels for 12 images") as e:
        mp.data.load_numpy("fashion_mnist", "train", data_dir=tmp_path)
    assert "train-labels-idx1-ubyte.gz" in str(e.value)
    # The other split is still fine.
    assert mp.data.load_numpy("fashion_mnist", "test", data_dir=tmp_path)[0].shape == (5, 28, 28, 1)


def test_dataset_label_out_of_range(tmp_path, make_dataset, write_idx):
    make_dataset(tmp_path, _arrays())
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.array([0, 1, 2, 10, 3], np.uint8), gz=True)
    with pytest.raises(IdxFormatError, match=r"labels must be in \[0, 10\)"):
        mp.data.load_numpy("fashion_mnist", "test", data_dir=tmp_path)


def test_dataset_wrong_dims(tmp_path, make_dataset, write_idx):
    make_dataset(tmp_path, _arrays())
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros((12, 1), np.uint8), gz=True)
    with pytest.raises(IdxFormatError, match="expected 1 dimension"):
        mp.data.load_numpy("fashion_mnist", "train", data_dir=tmp_path)
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((5, 8, 8), np.uint8), gz=True)
    with pytest.raises(IdxFormatError, match=r"shape \[N, 28, 28\]"):
        mp.data.load_numpy("fashion_mnist", "test", data_dir=tmp_path)


def test_dataset_truncated_file(tmp_path, make_dataset):
    make_dataset(tmp_path, _arrays(), gz=False)
    path = os.path.join(tmp_path, "train-images-idx3-ubyte")
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) - 28)
    with pytest.raises(IdxFormatError, match="truncated payload"):
        mp.data.load_numpy("fashion_mnist", "train", data_dir=tmp_path)
