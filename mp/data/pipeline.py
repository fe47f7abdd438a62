"""Datasets as `tf.data` pipelines: standardised, shuffled, batched, augmented.

The images of a split live in memory as one uint8 tensor. The pipeline moves
only *indices* through the expensive stages and gathers pixels at the end:

    range(N) -> [zip per-example random ints, if augment]
             -> [shuffle(N, seed), reshuffled every epoch, if shuffle]
             -> [repeat(), if repeat] -> [batch(B)] -> [skip(k)]
             -> map(gather images and labels, augment, standardise)
             -> [prefetch]

Shuffling indices is cheap, so skipping the first k batches of a resumed run
costs almost nothing and yields exactly batches k, k+1, ... of the
uninterrupted run with the same seed; the augmentation's random numbers are
attached to the elements before the skip, so they line up too.

Standardisation (ch2.3): pixels become `x / 255`, then `(x - mean) / std` with
the TRAIN split's mean and std (`standardization_stats`) for every split, so
the test data sees exactly the affine map the model was trained with.

Augmentation (ch2.3) creates new training examples from old ones with
transformations that keep the label: a random translation by up to
`max(1, H // 14)` pixels in each direction (the border is filled with the
background, a 0 pixel) and, where `info(name).binary_flip_ok`, a random
left-right flip. It is a function of the seed and the element's position in
the stream, so it is reproducible; each epoch draws new transformations.

Speed note: tf.data's model-based autotuning is switched off for these
pipelines (`Options.autotune.enabled = False`; the map then runs with one call
per core and the prefetch buffer tunes itself). Measured on a 2-core machine,
an autotuned iterator fresh from `iter()` fed the classic CNN at a flat 60-75%
of its speed for its first hundreds of steps, with the process partly idle,
while an iterator that had run for a while, or one without autotuning, kept
the CPU busy; every `fit` call and every resumed run starts a fresh iterator.

Randomness note: like any seeded TensorFlow op, the shuffle order and the
augmentation depend on `seed` and on the global seed (`tf.random.set_seed`,
`keras.utils.set_random_seed`) if one has been set before `load` is called.

Course: ch2.3 Regularization methods (data standardization, data augmentation)
"""

import operator

import tensorflow as tf

from mp.data import registry
from mp.data.arrays import load_numpy, standardization_stats

__all__ = ["load", "max_shift"]


def _check_int(name, value, minimum, what):
    if isinstance(value, bool):
        raise ValueError(f"{name} must be {what}. Received: {name}={value!r}")
    try:
        value = operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be {what}. Received: {name}={value!r}") from None
    if value < minimum:
        raise ValueError(f"{name} must be {what}. Received: {name}={value!r}")
    return value


def max_shift(height):
    """The largest translation (pixels) augmentation applies to an image of `height` rows."""
    return max(1, height // 14)


def _augment_seed(seed):
    """Decorrelates the augmentation stream from the shuffle, which uses `seed` itself."""
    if seed is None:
        return None
    return (seed * 0x9E3779B1 + 0x2545F491) % (2**31 - 1)


def _augment(images, random_ints, shift, flip):
    """Randomly translates (and flips) a batch of images, one draw per image.

    Args:
        images: [B, H, W, C] tensor; the border is filled with zeros, so pass
            raw pixels (0 is the background) before standardising.
        random_ints: [B] int64, uniformly random; supplies every choice.
        shift: the maximum translation in pixels, in each direction.
        flip: whether random left-right flips are allowed.

    Returns:
        A tensor of the same shape and dtype.
    """
    height, width = images.shape[1], images.shape[2]
    choices = 2 * shift + 1
    r = random_ints
    dy = tf.cast(tf.math.floormod(r, choices), tf.int32)
    r = tf.math.floordiv(r, choices)
    dx = tf.cast(tf.math.floormod(r, choices), tf.int32)
    r = tf.math.floordiv(r, choices)
    padded = tf.pad(images, [[0, 0], [shift, shift], [shift, shift], [0, 0]])
    # Crop at offset (dy, dx) of the padded image: rows dy..dy+H-1, cols dx..dx+W-1.
    rows = dy[:, tf.newaxis] + tf.range(height, dtype=tf.int32)
    cols = tf.range(width, dtype=tf.int32)[tf.newaxis, :]
    if flip:
        flipped = tf.math.floormod(r, 2)[:, tf.newaxis] == 1
        cols = tf.where(flipped, width - 1 - cols, cols)
    cols = dx[:, tf.newaxis] + cols
    out = tf.gather(padded, rows, axis=1, batch_dims=1)
    return tf.gather(out, cols, axis=2, batch_dims=1)


def load(
    name,
    split,
    data_dir=None,
    *,
    batch_size=None,
    shuffle=False,
    seed=0,
    repeat=False,
    skip_batches=0,
    drop_remainder=False,
    standardize=True,
    augment=False,
    prefetch=True,
    validation_fraction=0.0,
):
    """One split of a dataset as a `tf.data.Dataset` of `(images, labels)`.

    Args:
        name: one of `mp.data.DATASETS`.
        split: "train", "validation" or "test".
        data_dir: optional directory searched first for the files (see
            `mp.data.find_files`).
        batch_size: examples per batch; None for single examples.
        shuffle: shuffle the examples, with a new order every epoch.
        seed: seed of the shuffle and the augmentation (an int, or None for a
            non-reproducible order).
        repeat: repeat forever (one long stream; iterate it with one iterator).
        skip_batches: number of leading batches to drop, to resume a run where
            it stopped. Requires `batch_size`.
        drop_remainder: drop a last, smaller batch (of each pass if not repeated).
        standardize: map pixels to `(x / 255 - mean) / std` with the TRAIN
            statistics; otherwise to `x / 255` in [0, 1].
        augment: random translation by up to `max(1, H // 14)` pixels and, for
            datasets whose labels survive it, random left-right flips. Meant for
            training data.
        prefetch: prefetch batches in the background.
        validation_fraction: hold out this share of the training split as
            the "validation" split (see `mp.data.load_numpy`).

    Returns:
        A `tf.data.Dataset` of `(images float32 [H, W, C], labels int32 [])`,
        or `[B, H, W, C]` and `[B]` when batched. Without `shuffle` the order is
        the order of the files.

    Raises:
        ValueError: unknown dataset or split, a non-positive `batch_size`, a
            negative `skip_batches`, or `skip_batches` without `batch_size`.
        DatasetNotFoundError: the files are not on this machine.
        IdxFormatError: a file is corrupt, truncated or inconsistent.
    """
    registry.check_name(name)
    registry.check_split(split)
    if batch_size is not None:
        batch_size = _check_int("batch_size", batch_size, 1, "a positive integer")
    skip_batches = _check_int("skip_batches", skip_batches, 0, "a non-negative integer")
    if batch_size is None and skip_batches:
        raise ValueError(
            f"skip_batches requires a batch_size. Received: skip_batches={skip_batches}, batch_size=None"
        )
    if seed is not None:
        seed = _check_int("seed", seed, 0, "a non-negative integer or None")

    spec = registry.info(name)
    images, labels = load_numpy(name, split, data_dir, validation_fraction=validation_fraction)
    num_examples = len(labels)
    mean, std = standardization_stats(name, data_dir) if standardize else (0.0, 1.0)
    shift = max_shift(spec.image_shape[0])
    flip = spec.binary_flip_ok

    images_t = tf.constant(images)  # uint8 [N, H, W, 1]; 4x smaller than float32
    labels_t = tf.constant(labels, dtype=tf.int32)

    def fetch(indices, random_ints=None):
        x = tf.gather(images_t, indices)
        y = tf.gather(labels_t, indices)
        if random_ints is not None:
            if batch_size is None:
                x = _augment(x[tf.newaxis], random_ints[tf.newaxis], shift, flip)[0]
            else:
                x = _augment(x, random_ints, shift, flip)
        x = tf.cast(x, tf.float32) / 255.0
        if standardize:
            x = (x - mean) / std
        return x, y

    ds = tf.data.Dataset.range(num_examples)
    if augment:
        random_ints = tf.data.Dataset.random(
            seed=_augment_seed(seed), rerandomize_each_iteration=True
        )
        ds = tf.data.Dataset.zip(ds, random_ints)
    if shuffle:
        ds = ds.shuffle(num_examples, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    if batch_size is not None:
        ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    if skip_batches:
        ds = ds.skip(skip_batches)
    ds = ds.map(fetch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if prefetch:
        ds = ds.prefetch(tf.data.AUTOTUNE)
    options = tf.data.Options()
    options.autotune.enabled = False  # see the speed note in the module docstring
    return ds.with_options(options)
