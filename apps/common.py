"""What the apps share: the command-line wrapper and the output contract.

Every app's `main(argv)` turns FLAGS into `run(model_dir=..., **hparams)`;
`cli(main)` runs it so that any bad input (flag, data file, shape) ends with one
line `error: ...` on stderr and a non-zero exit:

    exit 0    finished; metrics.json written last
    exit 2    bad input: flags, missing or corrupt data, arguments that do not fit, every
              checkpoint damaged, a folder another run is using
    exit 3    training diverged (NaN/Inf loss); the kept checkpoints are named, and
              --resume_from_step=N goes back to one of them
    exit 4    the file system refused: model_dir read-only or a file, no space left; no
              temporary file is left behind
    exit 130  SIGINT, exit 143 SIGTERM, at any moment: during training a checkpoint is saved
              first; rerun the same command to resume

`model_dir` receives `flags.cfg` (replay with `--flagfile=model_dir/flags.cfg`),
`ckpt/`, `train/` and `eval/` summaries, `model.keras`, PNG figures and, last
and atomically, `metrics.json`.
"""

import json
import os
import signal
import sys
import tempfile
import time

from absl import app, flags, logging

FLAGS = flags.FLAGS


def die(message, code=2):
    """Prints `error: message` (one line) to stderr and exits with `code`."""
    text = " ".join(str(message).split())
    sys.stderr.write(f"error: {text}\n")
    sys.stderr.flush()
    sys.exit(code)


class RunFolderError(OSError):
    """The run folder cannot be used: a file in its place, read-only, no space left."""


class Stopped(BaseException):
    """SIGINT or SIGTERM outside the training loop (which saves a checkpoint first)."""

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


def _stop(signum, frame):
    del frame
    raise Stopped(signum)


# Messages of file-system failures that TensorFlow reports as its own errors.
_FILE_SYSTEM = ("No space left", "Read-only file system", "Permission denied", "Disk quota")


def cli(main):
    """Runs `main(argv)` under absl with the error contract of this module."""
    import tensorflow as tf

    from mp.engine import Interrupted, TrainingDiverged  # after TF's log level is set

    def parse(argv):
        try:
            return FLAGS(argv)
        except flags.Error as e:
            die(e)

    def wrapped(argv):
        if not FLAGS["verbosity"].present:  # TF's savers log at INFO through absl
            logging.set_verbosity(logging.WARNING)
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, _stop)  # the Trainer saves a checkpoint first while it trains
        try:
            return main(argv)
        except Interrupted as e:
            sys.stderr.write(f"interrupted: {e}\n")
            sys.exit(128 + e.signum)
        except Stopped as e:
            name = signal.Signals(e.signum).name
            sys.stderr.write(
                f"interrupted: {name} outside training; every checkpoint saved is complete. "
                "Run the same command again to finish.\n"
            )
            sys.exit(128 + e.signum)
        except TrainingDiverged as e:
            die(e, code=3)
        except (ValueError, FileNotFoundError, NotADirectoryError) as e:
            die(e)
        except OSError as e:
            die(f"file system: {e}", code=4)
        except tf.errors.OpError as e:
            if not any(text in e.message for text in _FILE_SYSTEM):
                raise
            die(f"file system: {e.message}", code=4)

    app.run(wrapped, flags_parser=parse)


def check_positive(**values):
    """Raises ValueError for the first value that is not a positive number."""
    for name, value in values.items():
        if value is None or not value > 0:
            raise ValueError(f"{name} must be positive. Received: {name}={value}")


def check_counts(**values):
    """Raises ValueError for the first value that is not a positive integer."""
    for name, value in values.items():
        if not isinstance(value, int) or value <= 0:
            raise ValueError(f"{name} must be a positive integer. Received: {name}={value}")


def positive_ints(name, values, count=None):
    """A list flag (e.g. `--filters=32,64`) as a tuple of positive ints, `count` of them if given.

    Raises:
      ValueError: naming the flag, for a non-integer, a value <= 0, an empty list or the
        wrong count.
    """
    try:
        values = tuple(int(v) for v in values)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be integers. Received: {name}={values}") from None
    if (count is not None and len(values) != count) or not values or min(values) <= 0:
        what = f"{count} positive integers" if count else "positive integers"
        raise ValueError(f"{name} must be {what}. Received: {name}={','.join(map(str, values))}")
    return values


def check_non_negative(**values):
    """Raises ValueError for the first value below zero."""
    for name, value in values.items():
        if value < 0:
            raise ValueError(f"{name} must be >= 0. Received: {name}={value}")


def default_model_dir(app_name, dataset):
    return os.path.join("runs", f"{app_name}-{dataset}")


def atomic_write(path, write):
    """Calls `write(tmp_path)`, then renames the temporary file onto `path`."""
    directory = os.path.dirname(os.path.abspath(path))
    suffix = os.path.splitext(path)[1]
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=suffix)
    os.close(fd)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 would hide results from a TA
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path, text):
    def write(tmp):
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)

    atomic_write(path, write)


def write_json(path, obj):
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_text(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def save_model(model, path):
    """Saves a Keras model to `path` (`.keras`) without leaving half a file."""
    atomic_write(path, model.save)


def save_figure(figure, path):
    def write(tmp):
        figure.savefig(tmp, dpi=120, bbox_inches="tight")

    atomic_write(path, write)


class Clock:
    """Wall time since construction."""

    def __init__(self):
        self.start = time.time()

    def seconds(self):
        return time.time() - self.start
