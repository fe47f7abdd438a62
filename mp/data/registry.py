"""The datasets `mp.data` knows, and what each one looks like.

Every dataset of the package is a small grey-scale image classification task:

    digits         8x8 handwritten digits shipped with scikit-learn (1797 images)
    fashion_mnist  28x28 clothing pictures, 60000 train / 10000 test, idx files
    mnist          28x28 handwritten digits, 60000 train / 10000 test, idx files

`info(name)` describes a dataset without reading any file, so a model can be
built (input shape, number of classes) before the data is touched.

Course: ch2.3 Regularization methods (data standardization, data augmentation)
"""

import dataclasses

__all__ = ["DATASETS", "SPLITS", "DatasetInfo", "info"]

DATASETS = ("digits", "fashion_mnist", "mnist")
SPLITS = ("train", "validation", "test")


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """Static description of a dataset.

    Attributes:
        name: the dataset's name, one of `DATASETS`.
        image_shape: `(height, width, channels)` of one image.
        num_classes: number of classes; labels are in `[0, num_classes)`.
        class_names: one human-readable name per class, indexed by label.
        num_examples: examples per split of the canonical files, e.g.
            `{"train": 60000, "test": 10000}`.
        binary_flip_ok: True when a horizontal (left-right) flip keeps the
            label of every class, so random flips are a valid augmentation.
            True for clothing; False for digits (a flipped 2 is not a 2).
    """

    name: str
    image_shape: tuple
    num_classes: int
    class_names: tuple
    num_examples: dict = dataclasses.field(hash=False)
    binary_flip_ok: bool


_DIGIT_NAMES = tuple(str(i) for i in range(10))
_FASHION_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

# name -> (image_shape, class_names, num_examples, binary_flip_ok)
_SPECS = {
    "digits": ((8, 8, 1), _DIGIT_NAMES, (("train", 1347), ("test", 450)), False),
    "fashion_mnist": ((28, 28, 1), _FASHION_NAMES, (("train", 60000), ("test", 10000)), True),
    "mnist": ((28, 28, 1), _DIGIT_NAMES, (("train", 60000), ("test", 10000)), False),
}


def check_name(name):
    """Returns `name` if it is a known dataset, else raises ValueError."""
    if not isinstance(name, str) or name not in _SPECS:
        raise ValueError(f"Unknown dataset {name!r}. Available: {', '.join(DATASETS)}")
    return name


def check_split(split):
    """Returns `split` if it is "train" or "test", else raises ValueError."""
    if not isinstance(split, str) or split not in SPLITS:
        raise ValueError(f"Unknown split {split!r}. Available: {', '.join(SPLITS)}")
    return split


def info(name):
    """Describes dataset `name` without reading its files.

    Args:
        name: one of `DATASETS`.

    Returns:
        A `DatasetInfo` (a fresh object each call: its `num_examples` dict may be
        modified by the caller without effect on the package).

    Raises:
        ValueError: `name` is not a known dataset.
    """
    check_name(name)
    image_shape, class_names, num_examples, flip_ok = _SPECS[name]
    return DatasetInfo(
        name=name,
        image_shape=image_shape,
        num_classes=len(class_names),
        class_names=class_names,
        num_examples=dict(num_examples),
        binary_flip_ok=flip_ok,
    )
