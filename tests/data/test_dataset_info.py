"""mp.data.DATASETS and mp.data.info: names, shapes, classes, argument errors."""

import dataclasses

import pytest

import mp.data


def test_dataset_names():
    assert mp.data.DATASETS == ("digits", "fashion_mnist", "mnist")


@pytest.mark.parametrize(
    "name, image_shape, train, test, flip_ok",
    [
        ("digits", (8, 8, 1), 1347, 450, False),
        ("fashion_mnist", (28, 28, 1), 60000, 10000, True),
        ("mnist", (28, 28, 1), 60000, 10000, False),
    ],
)
def test_info(name, image_shape, train, test, flip_ok):
    spec = mp.data.info(name)
    assert isinstance(spec, mp.data.DatasetInfo)
    assert spec.name == name
    assert spec.image_shape == image_shape
    assert spec.num_classes == 10
    assert len(spec.class_names) == 10 and all(isinstance(c, str) for c in spec.class_names)
    assert spec.num_examples == {"train": train, "test": test}
    assert spec.binary_flip_ok is flip_ok


def test_info_is_frozen_and_hashable():
    spec = mp.data.info("digits")
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.num_classes = 3
    hash(spec)
    spec.num_examples["train"] = 0  # a fresh dict per call: the package's copy is untouched
    assert mp.data.info("digits").num_examples["train"] == 1347


def test_fashion_class_names():
    names = mp.data.info("fashion_mnist").class_names
    assert names[0] == "T-shirt/top" and names[9] == "Ankle boot"


@pytest.mark.parametrize("fn", [mp.data.info, mp.data.find_files, mp.data.standardization_stats])
def test_unknown_dataset(fn):
    with pytest.raises(ValueError) as e:
        fn("foo")
    assert str(e.value) == "Unknown dataset 'foo'. Available: digits, fashion_mnist, mnist"


@pytest.mark.parametrize("fn", [mp.data.load_numpy, mp.data.load])
def test_unknown_dataset_and_split(fn):
    with pytest.raises(
        ValueError, match=r"^Unknown dataset 'foo'\. Available: digits, fashion_mnist, mnist$"
    ):
        fn("foo", "train")
    with pytest.raises(ValueError, match="'validation'"):
        fn("digits", "validation")
