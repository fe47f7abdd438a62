"""The canvas segmentation dataset (mp.data.canvas): shapes, labels, seeds, no leakage."""

import numpy as np
import pytest

import mp.data
from mp.data.canvas import canvas_data, make_canvases


@pytest.fixture(scope="module")
def digits_canvases():
    return make_canvases("digits", "train", 60, (32, 32), (1, 3), seed=3, return_items=True)


def test_shapes_dtypes_and_ranges(digits_canvases):
    images, labels, items = digits_canvases
    assert images.shape == (60, 32, 32, 1) and images.dtype == np.float32
    assert labels.shape == (60, 32, 32) and labels.dtype == np.int32
    assert 0.0 <= images.min() and images.max() <= 1.0
    assert 0 <= labels.min() and labels.max() <= 10  # 10 digit classes + background
    assert all(1 <= len(canvas_items) <= 3 for canvas_items in items)
    assert {len(canvas_items) for canvas_items in items} == {1, 2, 3}


def test_every_item_is_a_pasted_train_image_with_its_class(digits_canvases):
    images, labels, items = digits_canvases
    pixels, classes = mp.data.load_numpy("digits", "train")
    for n, canvas_items in enumerate(items):
        covered = np.zeros((32, 32), bool)
        for index, label, top, left in canvas_items:
            window = (slice(top, top + 8), slice(left, left + 8))
            assert not covered[window].any()  # items never overlap
            covered[window] = True
            item = pixels[index, :, :, 0] / 255.0
            assert label == classes[index]
            np.testing.assert_allclose(images[n][window][..., 0], item, rtol=0, atol=1e-7)
            # On: class + 1 where the item is brighter than the threshold 0.2; else background.
            expected = np.where(item > 0.2, label + 1, 0)
            np.testing.assert_array_equal(labels[n][window], expected)
        # Background wherever no item lies: zero pixels and label 0.
        assert not images[n][~covered].any()
        assert not labels[n][~covered].any()


def test_same_seed_same_canvases_other_seed_others():
    first = make_canvases("digits", "test", 20, seed=7)
    second = make_canvases("digits", "test", 20, seed=7)
    other = make_canvases("digits", "test", 20, seed=8)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[1], other[1])


def test_train_canvases_use_no_test_image():
    """Every 8x8 item window of a train canvas is a train image; none comes from test only."""
    train_pixels, _ = mp.data.load_numpy("digits", "train")
    test_pixels, _ = mp.data.load_numpy("digits", "test")
    train_set = {p.tobytes() for p in train_pixels}
    test_only = {p.tobytes() for p in test_pixels} - train_set
    assert len(test_only) > 400  # the digits splits share no (or almost no) image
    images, _, items = make_canvases("digits", "train", 200, seed=0, return_items=True)
    test_items = make_canvases("digits", "test", 50, seed=0, return_items=True)[2]
    for n, canvas_items in enumerate(items):
        for _, _, top, left in canvas_items:
            window = images[n, top : top + 8, left : left + 8, :]
            raw = np.round(window * 255).astype(np.uint8).tobytes()
            assert raw in train_set and raw not in test_only
    # And the test canvases draw from the test split (indices within its 450 images).
    assert max(index for canvas in test_items for index, *_ in canvas) < len(test_pixels)


def test_fashion_canvases_default_to_64(fake_fashion):
    data_dir, arrays = fake_fashion
    images, labels = make_canvases("fashion_mnist", "train", 4, seed=0, data_dir=data_dir)
    assert images.shape == (4, 64, 64, 1) and labels.shape == (4, 64, 64)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"split": "validation"}, "split must be"),
        ({"num_canvases": 0}, "num_canvases"),
        ({"canvas_size": (6, 32)}, "must hold one 8x8"),
        ({"items_per_canvas": (3, 1)}, "items_per_canvas"),
        ({"threshold": 1.0}, "threshold"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_canvases("digits", **({"split": "train", "num_canvases": 2} | kwargs))


def test_canvas_data_is_both_splits_and_their_pipelines():
    data = canvas_data("digits", num_train=20, num_test=7, canvas_size=(16, 16), seed=3)
    train = make_canvases("digits", "train", 20, (16, 16), (1, 3), seed=3)
    test = make_canvases("digits", "test", 7, (16, 16), (1, 3), seed=3)
    arrays = (data.train_images, data.train_labels, data.test_images, data.test_labels)
    for a, b in zip(arrays, (*train, *test)):
        np.testing.assert_array_equal(a, b)
    assert data.canvas_size == (16, 16) and data.num_classes == 11
    assert data.class_names[:2] == ("background", "0")
    # Training batches: full, shuffled, repeated; from step 3 on, what step 3 was.
    batches = list(data.train_data(batch_size=8, seed=1)(0).take(5))
    assert all(images.shape == (8, 16, 16, 1) for images, _ in batches)
    resumed = next(iter(data.train_data(batch_size=8, seed=1)(3)))
    np.testing.assert_array_equal(resumed[1].numpy(), batches[3][1].numpy())
    assert [len(labels) for _, labels in data.test_data(batch_size=3)] == [3, 3, 1]
    # canvas_size None (or 0) is the dataset's default.
    assert canvas_data("digits", num_train=1, num_test=1).canvas_size == (32, 32)
