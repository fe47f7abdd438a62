"""Datasets as NumPy arrays, and the statistics used to standardise them.

`load_numpy` returns the raw pixels (uint8, 0..255, channels last) and integer
labels of one split. `standardization_stats` returns the mean and standard
deviation of the TRAIN split's pixels, in [0, 1] units. Standardising every
split with the training numbers,

    x_std = (x / 255 - mean_train) / std_train,

makes the training inputs zero-mean and unit-variance while the test data goes
through exactly the same fixed affine map: test statistics never leak into the
model.

Both results are cached per set of files (path, size and modification time),
so repeated calls do not read or decompress anything again.

Course: ch2.3 Regularization methods (data standardization)
"""

import functools
import os
import zipfile

import numpy as np

from mp.data import digits, locate, registry
from mp.data.idx import IdxFormatError, read_idx

__all__ = ["load_numpy", "standardization_stats"]


def _file_key(files):
    """A hashable description of the files: path, size and mtime of each."""
    key = []
    for role, path in sorted(files.items()):
        st = os.stat(path)
        key.append((role, path, st.st_size, st.st_mtime_ns))
    return tuple(key)


def _check_pair(name, images, labels, images_path, labels_path):
    spec = registry.info(name)
    height, width, _ = spec.image_shape
    if images.ndim != 3 or images.shape[1:] != (height, width):
        raise IdxFormatError(
            f"{images_path}: expected images of shape [N, {height}, {width}], got {list(images.shape)}"
        )
    if images.dtype != np.uint8:
        raise IdxFormatError(f"{images_path}: expected uint8 pixels, got {images.dtype}")
    if labels.ndim != 1:
        raise IdxFormatError(
            f"{labels_path}: expected labels of shape [N], got {list(labels.shape)}"
        )
    if not np.issubdtype(labels.dtype, np.integer):
        raise IdxFormatError(f"{labels_path}: expected integer labels, got {labels.dtype}")
    if len(images) != len(labels):
        raise IdxFormatError(
            f"{labels_path}: {len(labels)} labels for {len(images)} images in {images_path}"
        )
    if len(labels) and (labels.min() < 0 or labels.max() >= spec.num_classes):
        raise IdxFormatError(
            f"{labels_path}: labels must be in [0, {spec.num_classes}), "
            f"found values in [{labels.min()}, {labels.max()}]"
        )


def _read_npz(name, path, split):
    suffix = "train" if split == "train" else "test"
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [k for k in (f"x_{suffix}", f"y_{suffix}") if k not in f.files]
            if missing:
                raise IdxFormatError(f"{path}: missing array(s) {', '.join(missing)}")
            images, labels = f[f"x_{suffix}"], f[f"y_{suffix}"]
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as e:
        if isinstance(e, IdxFormatError):
            raise
        raise IdxFormatError(
            f"{path}: not a readable .npz file ({type(e).__name__}: {e})"
        ) from None
    where = f"{path}[x_{suffix}]"
    _check_pair(name, images, labels, where, f"{path}[y_{suffix}]")
    return images, labels


@functools.lru_cache(maxsize=8)
def _read_split(name, split, file_key):
    files = {role: path for role, path, _, _ in file_key}
    if "npz" in files:
        images, labels = _read_npz(name, files["npz"], split)
    else:
        images_path, labels_path = files[f"{split}_images"], files[f"{split}_labels"]
        images = read_idx(images_path, ndim=3)
        labels = read_idx(labels_path, ndim=1)
        _check_pair(name, images, labels, images_path, labels_path)
    images = np.ascontiguousarray(images, dtype=np.uint8)[..., np.newaxis]
    labels = labels.astype(np.int64)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def holdout_mask(labels, fraction):
    """A fixed, stratified choice of `fraction` of the examples of each class.

    The choice depends on the labels only (a fixed generator seed), never on
    the run's seed, so every run of every app holds out the same examples.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"validation_fraction must be in (0, 1). Received: {fraction}")
    rng = np.random.default_rng(20190913)
    mask = np.zeros(len(labels), dtype=bool)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        chosen = rng.permutation(members)[: int(round(fraction * len(members)))]
        mask[chosen] = True
    return mask


def load_numpy(name, split, data_dir=None, *, validation_fraction=0.0):
    """Loads one split of a dataset as NumPy arrays.

    Args:
        name: one of `mp.data.DATASETS`.
        split: "train", "validation" or "test". "validation" is a fixed,
            stratified `validation_fraction` of the training split, and
            "train" is then the rest of it (disjoint by construction).
        data_dir: optional directory searched first for the files (see
            `mp.data.find_files`); ignored for `digits`.
        validation_fraction: share of the training split held out for
            validation (early stopping, model selection); 0 keeps all of it
            for training, and then "validation" is an error.

    Returns:
        `(images, labels)`: images uint8 `[N, H, W, 1]` with raw values 0..255
        (digits: scikit-learn's 0..16 rescaled, `round(v * 255 / 16)`), labels
        int64 `[N]`. The arrays are cached and read-only; copy to modify.

    Raises:
        ValueError: unknown dataset or split.
        DatasetNotFoundError: the files are not on this machine.
        IdxFormatError: a file is corrupt, truncated or inconsistent.
    """
    registry.check_name(name)
    registry.check_split(split)
    if split == "validation" and not validation_fraction:
        raise ValueError(
            "split 'validation' needs validation_fraction > 0 "
            "(the share of the training split to hold out)"
        )
    file_split = "test" if split == "test" else "train"
    if name == "digits":
        images, labels = digits.load_digits_split(file_split)
    else:
        images, labels = _read_split(name, file_split, _file_key(locate.find_files(name, data_dir)))
    if file_split == "test" or not validation_fraction:
        return images, labels
    keep = holdout_mask(labels, validation_fraction)
    if split == "train":
        keep = ~keep
    return images[keep], labels[keep]


def _mean_std(images):
    """Mean and std of uint8 pixels in [0, 1] units, exact via a histogram."""
    flat = images.reshape(-1)
    counts = np.zeros(256, dtype=np.int64)
    chunk = 1 << 20  # bincount widens its input to int64: bound that copy, and it is 10x faster
    for start in range(0, flat.size, chunk):
        counts += np.bincount(flat[start : start + chunk], minlength=256)
    counts = counts.astype(np.float64)
    values = np.arange(256, dtype=np.float64) / 255.0
    total = counts.sum()
    mean = float(counts @ values / total)
    var = float(counts @ (values - mean) ** 2 / total)
    return mean, float(np.sqrt(var))


@functools.lru_cache(maxsize=8)
def _train_stats(name, file_key):
    if name == "digits":
        images, _ = digits.load_digits_split("train")
    else:
        images, _ = _read_split(name, "train", file_key)
    mean, std = _mean_std(images)
    if not std > 0.0:  # constant images: only centre them
        std = 1.0
    return mean, std


def standardization_stats(name, data_dir=None):
    """Mean and standard deviation of the TRAIN split's pixels, in [0, 1] units.

    Use the same two numbers for every split: `(x / 255 - mean) / std`.

    Args:
        name: one of `mp.data.DATASETS`.
        data_dir: as for `load_numpy`.

    Returns:
        `(mean, std)` as Python floats (population std over all pixels of all
        training images; 1.0 if the training images are constant). Cached.

    Raises:
        As `load_numpy`.
    """
    registry.check_name(name)
    if name == "digits":
        return _train_stats(name, ())
    return _train_stats(name, _file_key(locate.find_files(name, data_dir)))
