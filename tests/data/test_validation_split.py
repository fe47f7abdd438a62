"""The validation split: a fixed, stratified hold-out of the training split."""

import numpy as np
import pytest

import mp.data


def test_validation_is_a_disjoint_stratified_part_of_train():
    full_x, full_y = mp.data.load_numpy("digits", "train")
    train_x, train_y = mp.data.load_numpy("digits", "train", validation_fraction=0.2)
    val_x, val_y = mp.data.load_numpy("digits", "validation", validation_fraction=0.2)
    assert len(train_y) + len(val_y) == len(full_y)
    # Together they are the training split, example for example (no overlap, no loss).
    rows = lambda x, y: sorted(
        r.tobytes() + bytes([int(l)]) for r, l in zip(x.reshape(len(x), -1), y)
    )
    assert rows(np.concatenate([train_x, val_x]), np.concatenate([train_y, val_y])) == rows(
        full_x, full_y
    )
    for label in range(10):  # 20% of each class, rounded
        assert np.sum(val_y == label) == round(0.2 * np.sum(full_y == label))


def test_validation_split_is_fixed_and_the_test_split_untouched():
    a = mp.data.load_numpy("digits", "validation", validation_fraction=0.1)
    b = mp.data.load_numpy("digits", "validation", validation_fraction=0.1)
    np.testing.assert_array_equal(a[0], b[0])
    test_plain = mp.data.load_numpy("digits", "test")
    test_with = mp.data.load_numpy("digits", "test", validation_fraction=0.1)
    np.testing.assert_array_equal(test_plain[1], test_with[1])


def test_validation_pipeline_and_errors():
    ds = mp.data.load("digits", "validation", batch_size=1000, validation_fraction=0.1)
    images, labels = next(iter(ds))
    _, full_y = mp.data.load_numpy("digits", "train")
    expected = sum(round(0.1 * np.sum(full_y == c)) for c in range(10))  # rounded per class
    assert images.shape == (expected, 8, 8, 1) and labels.shape == (expected,)
    with pytest.raises(ValueError, match="needs validation_fraction > 0"):
        mp.data.load_numpy("digits", "validation")
    with pytest.raises(ValueError, match=r"validation_fraction must be in \(0, 1\)"):
        mp.data.load_numpy("digits", "train", validation_fraction=1.5)
