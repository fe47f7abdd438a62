"""The 8x8 handwritten digits that ship with scikit-learn, with a fixed split.

scikit-learn's `load_digits()` holds 1797 images of 8x8 pixels with integer
intensities 0..16. They are rescaled to the 0..255 range of the other datasets
(`round(v * 255 / 16)`, so 16 -> 255 and 8 -> 128) and split once, stratified by
class: 75% train (1347 images), 25% test (450 images). The split does not
depend on any seed of the caller, so test accuracies are comparable between
runs. Each split keeps the original file order.

Needs no files and no network: the data is part of the scikit-learn package.

Course: ch2.3 Regularization methods (the data behind standardization)
"""

import functools

import numpy as np

__all__ = ["load_digits_split", "SPLIT_SEED", "TEST_FRACTION"]

SPLIT_SEED = 0
TEST_FRACTION = 0.25


@functools.lru_cache(maxsize=1)
def _splits():
    # scikit-learn is imported here, not at module import, to keep `import mp` fast.
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    images = np.rint(bunch.data * (255.0 / 16.0)).astype(np.uint8).reshape(-1, 8, 8, 1)
    labels = bunch.target.astype(np.int64)
    train_idx, test_idx = train_test_split(
        np.arange(len(labels)),
        test_size=TEST_FRACTION,
        stratify=labels,
        random_state=SPLIT_SEED,
    )
    out = {}
    for split, idx in (("train", np.sort(train_idx)), ("test", np.sort(test_idx))):
        x, y = images[idx], labels[idx]
        x.setflags(write=False)
        y.setflags(write=False)
        out[split] = (x, y)
    return out


def load_digits_split(split):
    """Returns `(images uint8 [N, 8, 8, 1] in 0..255, labels int64 [N])`.

    The arrays are cached and read-only; copy before modifying.
    """
    return _splits()[split]
