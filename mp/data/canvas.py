"""A segmentation dataset made of real images: small items scattered on a canvas.

`make_canvases` pastes a few images of a classification dataset (digits,
Fashion-MNIST, MNIST) at random places on an empty canvas, and labels every
pixel of the canvas with the class of the item that covers it:

    label[i, j] = class of the item + 1   if that item's pixel (i, j) is "on"
                  0                        otherwise (background)

A pixel of an item is "on" when its intensity exceeds `threshold` (in [0, 1]
units, default 0.2), so the thin dark borders of an item's square stay
background, and the target is the item's shape, not its bounding box. Items
never overlap: each is placed at a random position whose square does not
intersect the squares already placed (rejection sampling, up to
`MAX_PLACEMENT_TRIES` tries per item; an item that finds no room is left out,
which only happens when the canvas is nearly full).

Training canvases are made from the training split and test canvases from the
test split only, so no test image is ever seen in training. The canvases are a
deterministic function of `(name, split, num_canvases, canvas_size,
items_per_canvas, seed)`.

Images are returned in [0, 1] (pixel / 255), not standardised: the background
must stay exactly 0, and the network's first batch normalisation does the
centring.

`canvas_data` makes both splits at once, with the datasets a training wants:

    data = canvas_data("digits", num_train=2000, num_test=500, seed=0)
    trainer.fit(data.train_data(batch_size=32, seed=0), data.test_data())

Course: ch3.1 Layers and Architectures (fully convolutional networks, the
per-pixel classification task they solve).
"""

import dataclasses

import numpy as np
import tensorflow as tf

from mp.data import arrays, registry

__all__ = [
    "MAX_PLACEMENT_TRIES",
    "CanvasData",
    "canvas_data",
    "default_canvas_size",
    "make_canvases",
]

MAX_PLACEMENT_TRIES = 100


def default_canvas_size(name):
    """(32, 32) for the 8x8 digits, (64, 64) for the 28x28 datasets."""
    height = registry.info(name).image_shape[0]
    return (32, 32) if height <= 8 else (64, 64)


def make_canvases(
    name="digits",
    split="train",
    num_canvases=1000,
    canvas_size=None,
    items_per_canvas=(1, 3),
    seed=0,
    data_dir=None,
    *,
    threshold=0.2,
    return_items=False,
):
    """Builds `num_canvases` segmentation examples from the images of `split`.

    Args:
      name: a dataset of `mp.data.DATASETS` (`digits`, `fashion_mnist`, `mnist`).
      split: `train` or `test`; the items come from this split only.
      num_canvases: how many canvases.
      canvas_size: `(height, width)` of a canvas; `None` gives
        `default_canvas_size(name)`. Each side must hold at least one item.
      items_per_canvas: `(low, high)`: each canvas gets a number of items drawn
        uniformly from `low..high` (both included).
      seed: seed of the choice of items, their number and positions.
      data_dir: where to look for the dataset's files (see `mp.data.load_numpy`).
      threshold: an item's pixel belongs to the item when its intensity in
        [0, 1] is above this value, in [0, 1).
      return_items: also return, per canvas, the list of placed items as
        `(index in split, class, top, left)` tuples (for tests and figures).

    Returns:
      `(images, labels)`: images float32 `[N, H, W, 1]` in [0, 1]; labels int32
      `[N, H, W]`, 0 for background and `class + 1` on an item. With
      `return_items`, a third element: the list of placed items per canvas.

    Raises:
      ValueError: an unknown dataset or split, or sizes that do not fit.
    """
    registry.check_name(name)
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test'. Received: split={split!r}")
    if not isinstance(num_canvases, (int, np.integer)) or num_canvases <= 0:
        raise ValueError(f"num_canvases must be a positive integer. Received: {num_canvases}")
    item_height, item_width, _ = registry.info(name).image_shape
    height, width = canvas_size if canvas_size is not None else default_canvas_size(name)
    if height < item_height or width < item_width:
        raise ValueError(
            f"the canvas must hold one {item_height}x{item_width} item of {name}. "
            f"Received: canvas_size={(height, width)}"
        )
    low, high = items_per_canvas
    if not 1 <= low <= high:
        raise ValueError(
            f"items_per_canvas must be (low, high) with 1 <= low <= high. "
            f"Received: items_per_canvas={tuple(items_per_canvas)}"
        )
    if not 0 <= threshold < 1:
        raise ValueError(f"threshold must be in [0, 1). Received: threshold={threshold}")

    pixels, classes = arrays.load_numpy(name, split, data_dir)
    rng = np.random.default_rng([seed, 0 if split == "train" else 1])
    images = np.zeros((num_canvases, height, width, 1), np.float32)
    labels = np.zeros((num_canvases, height, width), np.int32)
    placed = []
    for n in range(num_canvases):
        taken = []  # (top, left) of the items already on this canvas
        items = []
        for index in rng.integers(0, len(pixels), size=rng.integers(low, high + 1)):
            for _ in range(MAX_PLACEMENT_TRIES):
                top = int(rng.integers(0, height - item_height + 1))
                left = int(rng.integers(0, width - item_width + 1))
                # Two squares are disjoint when they are apart along rows or columns.
                if all(
                    abs(top - t) >= item_height or abs(left - l) >= item_width for t, l in taken
                ):
                    break
            else:
                continue  # no room left for this item
            taken.append((top, left))
            item = pixels[index, :, :, 0].astype(np.float32) / 255.0
            window = (n, slice(top, top + item_height), slice(left, left + item_width))
            images[window] = item[..., np.newaxis]
            labels[window] = np.where(item > threshold, int(classes[index]) + 1, 0)
            items.append((int(index), int(classes[index]), top, left))
        placed.append(items)
    return (images, labels, placed) if return_items else (images, labels)


@dataclasses.dataclass(frozen=True)
class CanvasData:
    """Training and test canvases of one dataset (`canvas_data`) and their pipelines.

    Attributes:
      train_images, train_labels, test_images, test_labels: as `make_canvases` returns them.
      class_names: the name of every label, `background` (0) first.
    """

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    class_names: tuple

    @property
    def num_classes(self):
        """Label values, background included: the channels of a segmentation's logits."""
        return len(self.class_names)

    @property
    def canvas_size(self):
        return tuple(self.train_images.shape[1:3])

    def train_data(self, batch_size, seed=0):
        """`start_step -> tf.data.Dataset`: shuffled, repeated batches of the training
        canvases, the same ones in the same order from any step on (resumption)."""

        def data(start_step):
            ds = tf.data.Dataset.from_tensor_slices((self.train_images, self.train_labels))
            ds = ds.shuffle(len(self.train_images), seed=seed, reshuffle_each_iteration=True)
            ds = ds.repeat().batch(batch_size, drop_remainder=True)
            return ds.skip(start_step).prefetch(2)

        return data

    def test_data(self, batch_size=250):
        """The test canvases once, in batches."""
        ds = tf.data.Dataset.from_tensor_slices((self.test_images, self.test_labels))
        return ds.batch(batch_size)


def canvas_data(
    name="digits",
    num_train=2000,
    num_test=500,
    canvas_size=None,
    items_per_canvas=(1, 3),
    seed=0,
    data_dir=None,
):
    """`num_train` canvases from the training split and `num_test` from the test split.

    Args: see `make_canvases`; `canvas_size` `None` (or 0) is `default_canvas_size(name)`.

    Returns:
      A `CanvasData`.
    """
    canvas_size = canvas_size or default_canvas_size(name)
    make = dict(canvas_size=canvas_size, items_per_canvas=items_per_canvas, seed=seed)
    train = make_canvases(name, "train", num_train, data_dir=data_dir, **make)
    test = make_canvases(name, "test", num_test, data_dir=data_dir, **make)
    return CanvasData(*train, *test, ("background", *registry.info(name).class_names))
