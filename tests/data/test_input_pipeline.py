"""mp.data.load: order, shuffling, resumption by skipping, batching, augmentation."""

import itertools

import numpy as np
import pytest
import tensorflow as tf

import mp.data
from mp.data.pipeline import max_shift

CENTER = 14  # fake images hold their index at pixel (14, 14)


def _take(ds, n):
    return [(x.numpy(), y.numpy()) for x, y in itertools.islice(iter(ds), n)]


def _indices(batches):
    """Example indices, read back from the centre pixel of unstandardised images."""
    return np.concatenate(
        [
            np.round(np.reshape(x, (-1, 28, 28))[:, CENTER, CENTER] * 255).astype(int)
            for x, _ in batches
        ]
    )


def _assert_same(a, b):
    assert len(a) == len(b)
    for (xa, ya), (xb, yb) in zip(a, b):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)


def test_element_spec(fake_fashion):
    data_dir, _ = fake_fashion
    ds = mp.data.load("fashion_mnist", "train", data_dir)
    assert ds.element_spec == (
        tf.TensorSpec([28, 28, 1], tf.float32),
        tf.TensorSpec([], tf.int32),
    )
    ds = mp.data.load("fashion_mnist", "train", data_dir, batch_size=8, drop_remainder=True)
    assert ds.element_spec[0].shape == (8, 28, 28, 1)
    assert ds.element_spec[1].shape == (8,)


def test_file_order_without_shuffle(fake_fashion):
    data_dir, arrays = fake_fashion
    images, labels = arrays["test"]
    elems = _take(mp.data.load("fashion_mnist", "test", data_dir, standardize=False), 100)
    assert len(elems) == len(labels)
    np.testing.assert_allclose(np.stack([x for x, _ in elems])[..., 0], images / 255.0, atol=1e-7)
    np.testing.assert_array_equal([y for _, y in elems], labels)


def test_batching_and_remainder(fake_fashion):
    data_dir, _ = fake_fashion  # 60 train examples
    sizes = [
        len(y)
        for _, y in _take(mp.data.load("fashion_mnist", "train", data_dir, batch_size=25), 10)
    ]
    assert sizes == [25, 25, 10]
    sizes = [
        len(y)
        for _, y in _take(
            mp.data.load("fashion_mnist", "train", data_dir, batch_size=25, drop_remainder=True), 10
        )
    ]
    assert sizes == [25, 25]


def test_every_index_once_per_epoch_and_epochs_differ(fake_fashion):
    data_dir, _ = fake_fashion
    ds = mp.data.load(
        "fashion_mnist",
        "train",
        data_dir,
        batch_size=20,
        shuffle=True,
        repeat=True,
        seed=5,
        standardize=False,
    )
    order = _indices(_take(ds, 9)).reshape(3, 60)  # three epochs of 60
    for epoch in order:
        np.testing.assert_array_equal(np.sort(epoch), np.arange(60))
    assert not np.array_equal(order[0], np.arange(60))  # shuffled
    assert not np.array_equal(order[0], order[1]) and not np.array_equal(order[1], order[2])


def test_same_seed_same_order_different_seed_differs(fake_fashion):
    data_dir, _ = fake_fashion

    def order(seed):
        ds = mp.data.load(
            "fashion_mnist",
            "train",
            data_dir,
            batch_size=16,
            shuffle=True,
            repeat=True,
            seed=seed,
            standardize=False,
        )
        return _indices(_take(ds, 12))

    np.testing.assert_array_equal(order(1), order(1))
    assert not np.array_equal(order(1), order(2))


@pytest.mark.parametrize("augment", [False, True])
@pytest.mark.parametrize("skip", [1, 4, 13])
def test_skip_batches_reproduces_the_tail(fake_fashion, augment, skip):
    data_dir, _ = fake_fashion
    kwargs = dict(batch_size=7, shuffle=True, repeat=True, seed=3, augment=augment)
    full = _take(mp.data.load("fashion_mnist", "train", data_dir, **kwargs), 30)
    resumed = _take(
        mp.data.load("fashion_mnist", "train", data_dir, skip_batches=skip, **kwargs), 30 - skip
    )
    _assert_same(resumed, full[skip:])


def test_skip_without_repeat_or_shuffle(fake_fashion):
    data_dir, _ = fake_fashion
    full = _take(mp.data.load("fashion_mnist", "train", data_dir, batch_size=8), 100)
    tail = _take(
        mp.data.load("fashion_mnist", "train", data_dir, batch_size=8, skip_batches=3), 100
    )
    _assert_same(tail, full[3:])


def test_skip_on_digits_with_drop_remainder():
    kwargs = dict(
        batch_size=64, shuffle=True, repeat=True, seed=11, drop_remainder=True, augment=True
    )
    full = _take(mp.data.load("digits", "train", **kwargs), 50)  # crosses two epochs of 21 batches
    _assert_same(_take(mp.data.load("digits", "train", skip_batches=30, **kwargs), 20), full[30:])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(batch_size=-3), "batch_size must be a positive integer. Received: batch_size=-3"),
        (dict(batch_size=0), "batch_size must be a positive integer. Received: batch_size=0"),
        (dict(batch_size=2.5), "batch_size must be a positive integer. Received: batch_size=2.5"),
        (dict(batch_size=True), "batch_size must be a positive integer. Received: batch_size=True"),
        (
            dict(batch_size=4, skip_batches=-1),
            "skip_batches must be a non-negative integer. Received: skip_batches=-1",
        ),
        (
            dict(skip_batches=2),
            "skip_batches requires a batch_size. Received: skip_batches=2, batch_size=None",
        ),
        (dict(seed=-1), "seed must be a non-negative integer or None. Received: seed=-1"),
    ],
)
def test_argument_errors(kwargs, message):
    with pytest.raises(ValueError) as e:
        mp.data.load("digits", "train", **kwargs)
    assert str(e.value) == message


def test_numpy_integer_batch_size():
    x, _ = next(iter(mp.data.load("digits", "test", batch_size=np.int64(5))))
    assert x.shape == (5, 8, 8, 1)


# Augmentation


def _reference_transforms(image, shift, flips):
    """All images augmentation may produce from `image` (H, W), keyed by (dy, dx, flip)."""
    h, w = image.shape
    padded = np.pad(image, shift)  # background: a 0 pixel
    out = {}
    for dy in range(2 * shift + 1):
        for dx in range(2 * shift + 1):
            crop = padded[dy : dy + h, dx : dx + w]
            out[(dy - shift, dx - shift, False)] = crop
            if flips:
                out[(dy - shift, dx - shift, True)] = crop[:, ::-1]
    return out


def _match(aug, raw, mean, std, shift, flips):
    """The (dy, dx, flip) whose transform of raw equals aug, standardised; None if none does."""
    for key, candidate in _reference_transforms(raw, shift, flips).items():
        if np.allclose(aug, (candidate / 255.0 - mean) / std, atol=1e-5):
            return key
    return None


def test_augmentation_is_a_valid_translation_or_flip(fake_fashion):
    data_dir, arrays = fake_fashion
    raw = arrays["train"][0]
    mean, std = mp.data.standardization_stats("fashion_mnist", data_dir)
    shift = max_shift(28)
    assert shift == 2
    plain = _take(mp.data.load("fashion_mnist", "train", data_dir, batch_size=60), 1)[0]
    aug = _take(
        mp.data.load("fashion_mnist", "train", data_dir, batch_size=60, augment=True, seed=0), 1
    )[0]
    assert aug[0].shape == plain[0].shape == (60, 28, 28, 1) and aug[0].dtype == np.float32
    np.testing.assert_array_equal(aug[1], plain[1])  # labels untouched, same order
    keys = [_match(aug[0][i, ..., 0], raw[i], mean, std, shift, flips=True) for i in range(60)]
    assert None not in keys
    assert sum(k != (0, 0, False) for k in keys) > 40  # most images change
    assert any(k[2] for k in keys) and not all(k[2] for k in keys)  # flips happen, sometimes
    assert {abs(k[0]) for k in keys} == {0, 1, 2} and {abs(k[1]) for k in keys} == {0, 1, 2}
    # The border uncovered by a shift holds the background value of a 0 pixel:
    # dy = -2 crops at row 0 of the padded image, whose first 2 rows are padding.
    i = next(i for i, k in enumerate(keys) if k[0] == -2)
    np.testing.assert_allclose(aug[0][i, :2, :, 0], -mean / std, atol=1e-6)


def test_digits_augmentation_never_flips():
    raw, _ = mp.data.load_numpy("digits", "train")
    mean, std = mp.data.standardization_stats("digits")
    aug = _take(mp.data.load("digits", "train", batch_size=200, augment=True, seed=4), 1)[0][0]
    shift = max_shift(8)
    assert shift == 1
    keys = [
        _match(aug[i, ..., 0], raw[i, ..., 0], mean, std, shift, flips=False) for i in range(200)
    ]
    assert None not in keys
    assert sum(k != (0, 0, False) for k in keys) > 100


def test_augmentation_deterministic_and_new_each_epoch(fake_fashion):
    data_dir, _ = fake_fashion

    def run(seed, n=6):
        return _take(
            mp.data.load(
                "fashion_mnist",
                "train",
                data_dir,
                batch_size=30,
                repeat=True,
                augment=True,
                seed=seed,
            ),
            n,
        )

    a, b = run(1), run(1)
    _assert_same(a, b)
    assert not np.array_equal(a[0][0], run(2)[0][0])
    # Without shuffling, epochs see the same examples in the same order, differently augmented.
    assert not np.array_equal(a[0][0], a[2][0]) and not np.array_equal(a[0][0], a[4][0])
    np.testing.assert_array_equal(a[0][1], a[2][1])


def test_augmentation_new_on_each_pass_without_repeat():
    # model.fit iterates a finite dataset once per epoch: each pass must draw anew.
    ds = mp.data.load("digits", "test", batch_size=450, augment=True, seed=0)
    first, second = _take(ds, 1)[0][0], _take(ds, 1)[0][0]
    assert not np.array_equal(first, second)


def test_augmentation_unbatched(fake_fashion):
    data_dir, _ = fake_fashion
    ds = mp.data.load("fashion_mnist", "test", data_dir, augment=True, seed=2)
    assert ds.element_spec[0].shape == (28, 28, 1)
    elems = _take(ds, 20)
    batch = _take(
        mp.data.load("fashion_mnist", "test", data_dir, augment=True, seed=2, batch_size=20), 1
    )[0]
    # Same elements and same random numbers, whether batched or not.
    np.testing.assert_array_equal(np.stack([x for x, _ in elems]), batch[0])
