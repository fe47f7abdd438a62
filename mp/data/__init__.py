"""Datasets of the course as NumPy arrays and `tf.data` pipelines.

    import mp.data
    mp.data.info("fashion_mnist").image_shape          # (28, 28, 1)
    ds = mp.data.load("digits", "train", batch_size=32, shuffle=True, repeat=True)
    images, labels = mp.data.load_numpy("digits", "test")

Datasets (`DATASETS`):
    digits         8x8 digits shipped with scikit-learn, fixed stratified split
    fashion_mnist  Fashion-MNIST idx files (Debian: `dataset-fashion-mnist`)
    mnist          MNIST idx files or a Keras `mnist.npz`, where the user has them

Files are looked up in `data_dir`, `$MP_DATA_DIR`, `./data/<name>`,
`/usr/share/datasets/<name>` and the Keras cache (see `mp.data.locate`);
nothing is ever downloaded.

Every split is standardised with the TRAIN split's pixel mean and standard
deviation (`standardization_stats`), and training data can be augmented by
small random translations and, where labels allow it, flips.

Course: ch2.3 Regularization methods (data standardization, data augmentation)
"""

from mp.data.arrays import load_numpy, standardization_stats
from mp.data.idx import IdxFormatError, read_idx
from mp.data.locate import DatasetNotFoundError, find_files
from mp.data.pipeline import load
from mp.data.registry import DATASETS, SPLITS, DatasetInfo, info

__all__ = [
    "DATASETS",
    "SPLITS",
    "DatasetInfo",
    "DatasetNotFoundError",
    "IdxFormatError",
    "find_files",
    "info",
    "load",
    "load_numpy",
    "read_idx",
    "standardization_stats",
]
