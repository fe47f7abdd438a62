"""The real Fashion-MNIST idx files, where Debian's dataset-fashion-mnist is installed."""

import os

import numpy as np
import pytest

import mp.data
from mp.data import locate

SYSTEM_COPY = "/usr/share/datasets/fashion-mnist"

pytestmark = pytest.mark.skipif(
    not os.path.isdir(SYSTEM_COPY),
    reason=f"{SYSTEM_COPY} absent (apt-get install dataset-fashion-mnist)",
)


@pytest.fixture
def system_only(tmp_path, monkeypatch):
    """Only the system copy is visible, whatever the user keeps elsewhere."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MP_DATA_DIR", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setattr(locate, "SYSTEM_DIRS", ["/usr/share/datasets"])


def test_found_in_the_system_directory(system_only):
    files = mp.data.find_files("fashion_mnist")
    assert {os.path.dirname(p) for p in files.values()} == {SYSTEM_COPY}


@pytest.mark.parametrize("split, n", [("train", 60000), ("test", 10000)])
def test_shapes_and_class_balance(system_only, split, n):
    images, labels = mp.data.load_numpy("fashion_mnist", split)
    spec = mp.data.info("fashion_mnist")
    assert n == spec.num_examples[split]
    assert images.shape == (n, 28, 28, 1) and images.dtype == np.uint8
    assert labels.shape == (n,) and labels.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(labels, minlength=10), [n // 10] * 10)
    assert images.max() == 255 and images.min() == 0


def test_statistics_and_pipeline(system_only):
    mean, std = mp.data.standardization_stats("fashion_mnist")
    # Known pixel statistics of the Fashion-MNIST training set.
    assert mean == pytest.approx(0.2860, abs=1e-3)
    assert std == pytest.approx(0.3530, abs=1e-3)
    ds = mp.data.load(
        "fashion_mnist", "train", batch_size=256, shuffle=True, repeat=True, augment=True
    )
    x, y = next(iter(ds))
    assert x.shape == (256, 28, 28, 1) and y.shape == (256,)
    assert x.dtype.name == "float32" and y.dtype.name == "int32"
