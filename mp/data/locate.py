"""Finding the files of a dataset on this machine; nothing is ever downloaded.

Directories are tried in this order, the first complete set of files wins:

    1. `data_dir` and `data_dir/<name>`         (when a data_dir is given)
    2. `$MP_DATA_DIR` and `$MP_DATA_DIR/<name>` (when the variable is set)
    3. `./data/<name>`                          (relative to the working directory)
    4. `<d>/<name>` for each `d` in `SYSTEM_DIRS` (Debian: /usr/share/datasets)
    5. the Keras cache: `$KERAS_HOME` or `~/.keras`, below `datasets/`

`<name>` is tried both as written (`fashion_mnist`) and with a hyphen
(`fashion-mnist`, Debian's spelling). A directory holds a dataset when it has
all four idx files, each either gzip-compressed (`.gz`) or raw; for MNIST a
`mnist.npz` (the Keras cache format) is accepted too.

Course: ch2.3 Regularization methods (the data behind standardization)
"""

import os

from mp.data import registry

__all__ = ["DatasetNotFoundError", "SYSTEM_DIRS", "IDX_FILES", "find_files"]

# System-wide dataset roots. A module-level list so tests can replace it.
SYSTEM_DIRS = ["/usr/share/datasets"]

# key of the find_files() dict -> file name without the optional ".gz"
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

MNIST_NPZ = "mnist.npz"

_PRETTY = {"fashion_mnist": "Fashion-MNIST", "mnist": "MNIST"}


class DatasetNotFoundError(FileNotFoundError):
    """The files of a dataset are not on this machine.

    The message names every directory searched and how to get the files.
    """


def _spellings(name):
    """`fashion_mnist` -> ["fashion_mnist", "fashion-mnist"]."""
    return list(dict.fromkeys([name, name.replace("_", "-")]))


def _keras_home():
    return os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")


def candidate_dirs(name, data_dir=None):
    """The directories searched for dataset `name`, in order, as absolute paths.

    Raises:
        DatasetNotFoundError: `data_dir` is given but does not exist.
    """
    dirs = []
    spellings = _spellings(name)

    def add_root(root):
        dirs.append(root)
        dirs.extend(os.path.join(root, s) for s in spellings)

    if data_dir is not None:
        data_dir = os.path.abspath(os.path.expanduser(os.fspath(data_dir)))
        if not os.path.isdir(data_dir):
            if os.path.exists(data_dir):
                raise DatasetNotFoundError(f"data_dir is not a directory: {data_dir}")
            raise DatasetNotFoundError(f"data_dir does not exist: {data_dir}")
        add_root(data_dir)
    env_dir = os.environ.get("MP_DATA_DIR")
    if env_dir:
        add_root(os.path.abspath(os.path.expanduser(env_dir)))
    dirs.extend(os.path.abspath(os.path.join("data", s)) for s in spellings)
    for root in SYSTEM_DIRS:
        dirs.extend(os.path.join(os.path.abspath(root), s) for s in spellings)
    keras_datasets = os.path.join(os.path.abspath(os.path.expanduser(_keras_home())), "datasets")
    if name == "mnist":
        dirs.append(keras_datasets)  # Keras keeps datasets/mnist.npz
    else:
        dirs.extend(os.path.join(keras_datasets, s) for s in spellings)
    return list(dict.fromkeys(dirs))  # drop duplicates, keep the order


def _idx_set(directory):
    """Returns (files dict or None, list of missing file names) for a directory."""
    found, missing = {}, []
    for key, base in IDX_FILES.items():
        for candidate in (base + ".gz", base):
            path = os.path.join(directory, candidate)
            if os.path.isfile(path):
                found[key] = path
                break
        else:
            missing.append(base + "[.gz]")
    return (found if not missing else None), missing


def _install_hint(name):
    names = ", ".join(f"{b}.gz" for b in IDX_FILES.values())
    if name == "fashion_mnist":
        return (
            "To get it: `sudo apt-get install dataset-fashion-mnist` (Debian/Ubuntu), "
            f"or place the four idx files ({names}) in ./data/fashion_mnist "
            "or in a directory passed as data_dir (--data_dir in the apps)"
        )
    return (
        f"To get it: place the four idx files ({names}) or a Keras {MNIST_NPZ} "
        "in ./data/mnist or in a directory passed as data_dir (--data_dir in the apps)"
    )


def find_files(name, data_dir=None):
    """Locates the files of dataset `name`.

    Args:
        name: one of `mp.data.DATASETS`.
        data_dir: optional directory searched first (itself and `data_dir/<name>`).

    Returns:
        A dict of absolute paths: for idx datasets the keys `train_images`,
        `train_labels`, `test_images`, `test_labels`; for an MNIST found as a
        Keras cache file the single key `npz`. `digits` ships with
        scikit-learn and needs no files: `{}` (data_dir is ignored).

    Raises:
        ValueError: unknown dataset name.
        DatasetNotFoundError: `data_dir` does not exist, or no searched
            directory holds the dataset. The message lists every directory
            searched and how to install the files.
    """
    registry.check_name(name)
    if name == "digits":
        return {}
    searched, notes = [], []
    for directory in candidate_dirs(name, data_dir):
        searched.append(directory)
        if not os.path.isdir(directory):
            continue
        files, missing = _idx_set(directory)
        if files is not None:
            return files
        if name == "mnist" and os.path.isfile(os.path.join(directory, MNIST_NPZ)):
            return {"npz": os.path.join(directory, MNIST_NPZ)}
        if len(missing) < len(IDX_FILES):
            notes.append(f"{directory} lacks {', '.join(missing)}")
    message = f"{_PRETTY[name]} files not found. Searched: {', '.join(searched)}."
    if notes:
        message += f" Incomplete: {'; '.join(notes)}."
    raise DatasetNotFoundError(f"{message} {_install_hint(name)}.")
