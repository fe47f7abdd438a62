"""Where dataset files are looked for, in which order, and the error when missing."""

import os

import numpy as np
import pytest

import mp.data
from mp.data import DatasetNotFoundError, find_files


def _dirs(files):
    return {os.path.dirname(p) for p in files.values()}


def test_data_dir_itself(isolated, make_dataset):
    make_dataset(isolated / "mine")
    files = find_files("fashion_mnist", data_dir=isolated / "mine")
    assert set(files) == {"train_images", "train_labels", "test_images", "test_labels"}
    assert _dirs(files) == {str(isolated / "mine")}
    assert files["train_images"].endswith("train-images-idx3-ubyte.gz")


@pytest.mark.parametrize("sub", ["fashion_mnist", "fashion-mnist"])
def test_data_dir_subdirectory_both_spellings(isolated, make_dataset, sub):
    make_dataset(isolated / "root" / sub)
    files = find_files("fashion_mnist", data_dir=str(isolated / "root"))
    assert _dirs(files) == {str(isolated / "root" / sub)}


def test_raw_files_accepted(isolated, make_dataset):
    arrays = make_dataset(isolated / "raw", gz=False)
    files = find_files("fashion_mnist", data_dir=isolated / "raw")
    assert files["test_labels"].endswith("t10k-labels-idx1-ubyte")
    x, y = mp.data.load_numpy("fashion_mnist", "test", data_dir=isolated / "raw")
    np.testing.assert_array_equal(x[..., 0], arrays["test"][0])
    np.testing.assert_array_equal(y, arrays["test"][1])


def test_data_dir_must_exist(isolated):
    missing = isolated / "x" / "y"
    with pytest.raises(DatasetNotFoundError) as e:
        find_files("fashion_mnist", data_dir=missing)
    assert str(e.value) == f"data_dir does not exist: {missing}"
    with pytest.raises(DatasetNotFoundError):
        mp.data.load("fashion_mnist", "train", data_dir=missing)


def test_mp_data_dir(isolated, make_dataset, monkeypatch):
    make_dataset(isolated / "env" / "fashion_mnist")
    monkeypatch.setenv("MP_DATA_DIR", str(isolated / "env"))
    assert _dirs(find_files("fashion_mnist")) == {str(isolated / "env" / "fashion_mnist")}


def test_cwd_data_dir(isolated, make_dataset):
    make_dataset(isolated / "data" / "fashion-mnist")
    assert _dirs(find_files("fashion_mnist")) == {str(isolated / "data" / "fashion-mnist")}


def test_system_dir(isolated, make_dataset):
    make_dataset(isolated / "system" / "fashion-mnist")
    assert _dirs(find_files("fashion_mnist")) == {str(isolated / "system" / "fashion-mnist")}


def test_keras_cache(isolated, make_dataset):
    make_dataset(isolated / "home" / "keras" / "datasets" / "fashion-mnist")
    files = find_files("fashion_mnist")
    assert _dirs(files) == {str(isolated / "home" / "keras" / "datasets" / "fashion-mnist")}


def test_keras_cache_defaults_to_home(isolated, make_dataset, monkeypatch):
    monkeypatch.delenv("KERAS_HOME")
    make_dataset(isolated / "home" / ".keras" / "datasets" / "fashion-mnist")
    assert _dirs(find_files("fashion_mnist")) == {
        str(isolated / "home" / ".keras" / "datasets" / "fashion-mnist")
    }


def test_search_order(isolated, make_dataset, monkeypatch):
    places = [
        isolated / "home" / "keras" / "datasets" / "fashion-mnist",
        isolated / "system" / "fashion_mnist",
        isolated / "data" / "fashion_mnist",
        isolated / "env",
        isolated / "given" / "fashion_mnist",
        isolated / "given",
    ]
    monkeypatch.setenv("MP_DATA_DIR", str(isolated / "env"))
    # Fill from the last place to the first: each time, the new one must win.
    for place in places:
        make_dataset(place)
        data_dir = isolated / "given" if "given" in str(place) else None
        assert _dirs(find_files("fashion_mnist", data_dir=data_dir)) == {str(place)}


def test_incomplete_directory_is_skipped(isolated, make_dataset):
    make_dataset(isolated / "data" / "fashion_mnist")
    os.remove(isolated / "data" / "fashion_mnist" / "t10k-labels-idx1-ubyte.gz")
    make_dataset(isolated / "system" / "fashion-mnist")
    assert _dirs(find_files("fashion_mnist")) == {str(isolated / "system" / "fashion-mnist")}


def test_missing_fashion_mnist_message(isolated, make_dataset, monkeypatch):
    monkeypatch.setenv("MP_DATA_DIR", str(isolated / "env"))
    make_dataset(isolated / "data" / "fashion_mnist")
    os.remove(isolated / "data" / "fashion_mnist" / "t10k-labels-idx1-ubyte.gz")
    (isolated / "given").mkdir()
    with pytest.raises(DatasetNotFoundError) as e:
        find_files("fashion_mnist", data_dir=isolated / "given")
    message = str(e.value)
    assert "\n" not in message
    expected_dirs = [
        isolated / "given",
        isolated / "given" / "fashion_mnist",
        isolated / "given" / "fashion-mnist",
        isolated / "env",
        isolated / "env" / "fashion_mnist",
        isolated / "data" / "fashion_mnist",
        isolated / "data" / "fashion-mnist",
        isolated / "system" / "fashion_mnist",
        isolated / "system" / "fashion-mnist",
        isolated / "home" / "keras" / "datasets" / "fashion-mnist",
    ]
    positions = [message.index(str(d) + s) for d, s in zip(expected_dirs, [",", ","] + [""] * 8)]
    assert positions == sorted(positions)  # listed in search order
    assert "sudo apt-get install dataset-fashion-mnist" in message
    assert "t10k-labels-idx1-ubyte[.gz]" in message  # the incomplete directory is explained
    assert "data_dir" in message
    assert isinstance(e.value, FileNotFoundError)


def test_missing_error_from_load(isolated):
    with pytest.raises(DatasetNotFoundError, match="Fashion-MNIST files not found"):
        mp.data.load("fashion_mnist", "train")
    with pytest.raises(DatasetNotFoundError, match="mnist.npz"):
        mp.data.load_numpy("mnist", "test")


def test_mnist_idx_files(isolated, make_dataset):
    arrays = make_dataset(isolated / "data" / "mnist")
    x, y = mp.data.load_numpy("mnist", "train")
    np.testing.assert_array_equal(x[..., 0], arrays["train"][0])
    np.testing.assert_array_equal(y, arrays["train"][1])


def test_mnist_npz_in_keras_cache(isolated):
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, (30, 28, 28), dtype=np.uint8),
        "y_train": (np.arange(30) % 10).astype(np.uint8),
        "x_test": rng.integers(0, 256, (10, 28, 28), dtype=np.uint8),
        "y_test": (np.arange(10) % 10).astype(np.uint8),
    }
    cache = isolated / "home" / "keras" / "datasets"
    cache.mkdir(parents=True)
    np.savez(cache / "mnist.npz", **arrays)
    assert find_files("mnist") == {"npz": str(cache / "mnist.npz")}
    for split in ("train", "test"):
        x, y = mp.data.load_numpy("mnist", split)
        assert x.shape == arrays[f"x_{split}"].shape + (1,) and x.dtype == np.uint8
        assert y.dtype == np.int64
        np.testing.assert_array_equal(x[..., 0], arrays[f"x_{split}"])
        np.testing.assert_array_equal(y, arrays[f"y_{split}"])
    batch = next(iter(mp.data.load("mnist", "test", batch_size=4)))
    assert batch[0].shape == (4, 28, 28, 1)


def test_mnist_npz_corrupt(isolated):
    cache = isolated / "home" / "keras" / "datasets"
    cache.mkdir(parents=True)
    (cache / "mnist.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(mp.data.IdxFormatError, match="mnist.npz"):
        mp.data.load_numpy("mnist", "train")


def test_files_are_reread_when_changed(isolated, make_dataset):
    first = make_dataset(isolated / "d")
    x1, _ = mp.data.load_numpy("fashion_mnist", "test", data_dir=isolated / "d")
    np.testing.assert_array_equal(x1[..., 0], first["test"][0])
    arrays = {k: (v[0][::-1].copy(), v[1]) for k, v in first.items()}
    make_dataset(isolated / "d", arrays)
    stat = os.stat(isolated / "d" / "t10k-images-idx3-ubyte.gz")
    os.utime(
        isolated / "d" / "t10k-images-idx3-ubyte.gz",
        ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9),
    )
    x2, _ = mp.data.load_numpy("fashion_mnist", "test", data_dir=isolated / "d")
    np.testing.assert_array_equal(x2[..., 0], arrays["test"][0])
