"""Standardisation with the TRAIN split's statistics for every split."""

import numpy as np
import pytest

import mp.data


def _all(ds):
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds])
    return np.concatenate(xs), np.concatenate(ys)


def test_stats_match_numpy():
    x, _ = mp.data.load_numpy("digits", "train")
    mean, std = mp.data.standardization_stats("digits")
    assert isinstance(mean, float) and isinstance(std, float)
    pixels = x.astype(np.float64) / 255.0
    assert mean == pytest.approx(pixels.mean(), rel=1e-12)
    assert std == pytest.approx(pixels.std(), rel=1e-12)


def test_train_split_is_standardised():
    x, _ = _all(mp.data.load("digits", "train", batch_size=500))
    assert x.dtype == np.float32
    assert abs(x.mean()) < 1e-4
    assert x.std() == pytest.approx(1.0, abs=1e-4)


def test_test_split_uses_train_statistics():
    mean, std = mp.data.standardization_stats("digits")
    raw, labels = mp.data.load_numpy("digits", "test")
    x, y = _all(mp.data.load("digits", "test", batch_size=100))
    # The exact affine map of the training data: (x / 255 - mean_train) / std_train.
    np.testing.assert_allclose(x, (raw.astype(np.float64) / 255.0 - mean) / std, rtol=0, atol=1e-5)
    np.testing.assert_array_equal(y, labels)
    # ... and not the test split's own statistics, which differ.
    test_pixels = raw.astype(np.float64) / 255.0
    assert abs(test_pixels.mean() - mean) > 1e-4
    assert abs(x.mean()) > 1e-4


def test_standardize_false_gives_unit_range():
    raw, _ = mp.data.load_numpy("digits", "test")
    x, _ = _all(mp.data.load("digits", "test", batch_size=450, standardize=False))
    np.testing.assert_allclose(x, raw / 255.0, rtol=0, atol=1e-7)
    assert x.min() == 0.0 and x.max() == 1.0


def test_fake_dataset_stats_and_cache(fake_fashion, monkeypatch):
    data_dir, arrays = fake_fashion
    train_images = arrays["train"][0].astype(np.float64) / 255.0
    mean, std = mp.data.standardization_stats("fashion_mnist", data_dir)
    assert mean == pytest.approx(train_images.mean(), rel=1e-12)
    assert std == pytest.approx(train_images.std(), rel=1e-12)
    # Cached: a second call does not read the files again.
    calls = []
    monkeypatch.setattr(mp.data.arrays, "read_idx", lambda *a, **k: calls.append(a))
    assert mp.data.standardization_stats("fashion_mnist", data_dir) == (mean, std)
    mp.data.load_numpy("fashion_mnist", "train", data_dir)
    assert calls == []
