"""The embedded digits dataset: fixed stratified split, pixel range, caching."""

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import mp.data


def test_split_sizes_and_dtypes():
    x_train, y_train = mp.data.load_numpy("digits", "train")
    x_test, y_test = mp.data.load_numpy("digits", "test")
    assert x_train.shape == (1347, 8, 8, 1) and y_train.shape == (1347,)
    assert x_test.shape == (450, 8, 8, 1) and y_test.shape == (450,)
    assert x_train.dtype == np.uint8 and x_test.dtype == np.uint8
    assert y_train.dtype == np.int64 and y_test.dtype == np.int64
    # 16 (the maximum of scikit-learn's scale) maps to 255, 0 to 0.
    assert x_train.min() == 0 and x_train.max() == 255


def test_labels_cover_all_classes():
    for split in ("train", "test"):
        _, y = mp.data.load_numpy("digits", split)
        assert y.min() == 0 and y.max() == 9
        assert set(np.unique(y)) == set(range(10))


def test_stratified():
    _, y_train = mp.data.load_numpy("digits", "train")
    _, y_test = mp.data.load_numpy("digits", "test")
    overall = np.bincount(np.concatenate([y_train, y_test]), minlength=10) / 1797
    for y in (y_train, y_test):
        share = np.bincount(y, minlength=10) / len(y)
        np.testing.assert_array_less(np.abs(share - overall), 0.01)


def test_split_is_disjoint_and_matches_the_fixed_recipe():
    # The split is train_test_split(test_size=0.25, stratify=y, random_state=0),
    # with each part kept in the original order; pixels are round(v * 255 / 16).
    bunch = load_digits()
    train_idx, test_idx = train_test_split(
        np.arange(1797), test_size=0.25, stratify=bunch.target, random_state=0
    )
    assert len(np.intersect1d(train_idx, test_idx)) == 0
    expected = np.rint(bunch.data * 255 / 16).astype(np.uint8).reshape(-1, 8, 8, 1)
    for split, idx in (("train", np.sort(train_idx)), ("test", np.sort(test_idx))):
        x, y = mp.data.load_numpy("digits", split)
        np.testing.assert_array_equal(x, expected[idx])
        np.testing.assert_array_equal(y, bunch.target[idx])


def test_rescaling_values():
    x, _ = mp.data.load_numpy("digits", "train")
    # v * 255 / 16 for v = 0..16, rounded: 0, 16, 32, 48, 64, 80, 96, 112, 128, ...
    expected = {int(round(v * 255 / 16)) for v in range(17)}
    assert set(np.unique(x).tolist()) <= expected
    assert 128 in set(np.unique(x).tolist())  # v = 8: 127.5 rounds to 128


def test_deterministic_and_cached():
    a = mp.data.load_numpy("digits", "train")
    b = mp.data.load_numpy("digits", "train")
    assert a[0] is b[0] and a[1] is b[1]
    with pytest.raises(ValueError):
        a[0][0, 0, 0, 0] = 1  # cached arrays are read-only


def test_split_independent_of_seed():
    x0, _ = next(iter(mp.data.load("digits", "test", batch_size=450, seed=0, standardize=False)))
    x1, _ = next(iter(mp.data.load("digits", "test", batch_size=450, seed=7, standardize=False)))
    x_np, _ = mp.data.load_numpy("digits", "test")
    np.testing.assert_array_equal(x0.numpy(), x1.numpy())
    np.testing.assert_allclose(x0.numpy(), x_np / 255.0, rtol=0, atol=1e-7)


def test_digits_ignores_data_dir():
    assert mp.data.find_files("digits") == {}
    x, _ = mp.data.load_numpy("digits", "test", data_dir="/nonexistent")
    assert x.shape[0] == 450
