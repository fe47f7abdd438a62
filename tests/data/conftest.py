"""Shared helpers for the tests of mp.data: idx writers and small fake datasets."""

import gzip
import os

import numpy as np
import pytest

from mp.data import locate

# numpy dtype -> idx type code
_CODES = {
    np.dtype("u1"): 0x08,
    np.dtype("i1"): 0x09,
    np.dtype("i2"): 0x0B,
    np.dtype("i4"): 0x0C,
    np.dtype("f4"): 0x0D,
    np.dtype("f8"): 0x0E,
}


def idx_bytes(array):
    """The idx encoding of `array`: 0, 0, type code, ndim, big-endian dims, big-endian data."""
    array = np.asarray(array)
    header = bytes([0, 0, _CODES[array.dtype.newbyteorder("=")], array.ndim])
    dims = np.asarray(array.shape, dtype=">u4").tobytes()
    return header + dims + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_bytes(path, data, gz=False):
    path = os.fspath(path)
    if gz:
        data = gzip.compress(data)
    with open(path, "wb") as f:
        f.write(data)
    return path


@pytest.fixture
def write_idx():
    """write_idx(path, array, gz=False) -> path"""

    def write(path, array, gz=False):
        return write_bytes(path, idx_bytes(array), gz=gz)

    return write


def fake_arrays(num_train=60, num_test=20, size=28, seed=0):
    """Random images whose pixel (size//2, size//2) holds the example's index."""
    rng = np.random.default_rng(seed)
    out = {}
    for split, n in (("train", num_train), ("test", num_test)):
        images = rng.integers(0, 256, size=(n, size, size), dtype=np.uint8)
        images[:, size // 2, size // 2] = np.arange(n, dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        out[split] = (images, labels)
    return out


def write_fake_dataset(directory, arrays=None, gz=True):
    """Writes the four idx files of `arrays` (default: fake_arrays()) into directory."""
    arrays = arrays or fake_arrays()
    os.makedirs(directory, exist_ok=True)
    prefix = {"train": "train", "test": "t10k"}
    for split, (images, labels) in arrays.items():
        ext = ".gz" if gz else ""
        write_bytes(
            os.path.join(directory, f"{prefix[split]}-images-idx3-ubyte{ext}"),
            idx_bytes(images),
            gz,
        )
        write_bytes(
            os.path.join(directory, f"{prefix[split]}-labels-idx1-ubyte{ext}"),
            idx_bytes(labels),
            gz,
        )
    return arrays


@pytest.fixture
def fake_fashion(tmp_path):
    """(data_dir, arrays): a small Fashion-MNIST-shaped dataset in tmp_path/fashion_mnist."""
    arrays = write_fake_dataset(tmp_path / "fashion_mnist")
    return str(tmp_path), arrays


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No dataset anywhere: empty cwd, no MP_DATA_DIR, no system dirs, empty Keras cache."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MP_DATA_DIR", raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("KERAS_HOME", str(home / "keras"))
    monkeypatch.setattr(locate, "SYSTEM_DIRS", [str(tmp_path / "system")])
    return tmp_path


@pytest.fixture
def make_dataset():
    """make_dataset(directory, arrays=None, gz=True) -> arrays written there."""
    return write_fake_dataset


@pytest.fixture
def encode_idx():
    """encode_idx(array) -> bytes of the idx file."""
    return idx_bytes
