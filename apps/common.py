"""What the apps share: the command-line wrapper and the output contract.

Every app's `main(argv)` turns FLAGS into `run(model_dir=..., **hparams)`;
`cli(main)` runs it so that any bad input (flag, data file, shape) ends with one
line `error: ...` on stderr and a non-zero exit:

    exit 0    finished; metrics.json written last
    exit 2    bad input: flags, missing or corrupt data, arguments that do not fit
    exit 3    training diverged (NaN/Inf loss); the last good checkpoint is kept
    exit 130  SIGINT, exit 143 SIGTERM: checkpoint saved, rerun to resume

`model_dir` receives `flags.cfg` (replay with `--flagfile=model_dir/flags.cfg`),
`ckpt/`, `train/` and `eval/` summaries, `model.keras`, PNG figures and, last
and atomically, `metrics.json`.
"""

import json
import os
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


def cli(main):
    """Runs `main(argv)` under absl with the error contract of this module."""
    from mp.engine import Interrupted, TrainingDiverged  # after TF's log level is set

    def parse(argv):
        try:
            return FLAGS(argv)
        except flags.Error as e:
            die(e)

    def wrapped(argv):
        if not FLAGS["verbosity"].present:  # TF's savers log at INFO through absl
            logging.set_verbosity(logging.WARNING)
        try:
            return main(argv)
        except Interrupted as e:
            sys.stderr.write(f"interrupted: {e}\n")
            sys.exit(128 + e.signum)
        except TrainingDiverged as e:
            die(e, code=3)
        except (ValueError, FileNotFoundError, NotADirectoryError) as e:
            die(e)

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


def check_optimizer_impl(optimizer_impl):
    """`keras` (the built-in optimizers) or `mp` (the package's own, ch2)."""
    if optimizer_impl not in ("keras", "mp"):
        raise ValueError(f"optimizer_impl must be 'keras' or 'mp'. Received: {optimizer_impl!r}")


def check_unsupported(app_name, **values):
    """Raises ValueError naming every shared flag set that `app_name` does not use.

    A value counts as set when it is truthy (pass `False` for a default left alone).
    """
    given = [f"{name}={value}" for name, value in values.items() if value]
    if given:
        raise ValueError(f"{app_name} does not support {', '.join(given)}; leave them unset")


def default_model_dir(app_name, dataset):
    return os.path.join("runs", f"{app_name}-{dataset}")


def atomic_write(path, write):
    """Calls `write(tmp_path)`, then renames the temporary file onto `path`."""
    directory = os.path.dirname(os.path.abspath(path))
    suffix = os.path.splitext(path)[1]
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=suffix)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


_atomic_write = atomic_write  # TODO(lead): remove once no app uses the old name


def write_text(path, text):
    def write(tmp):
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)

    atomic_write(path, write)


def write_json(path, obj):
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


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


def history_json(history):
    """`Trainer.history` as JSON: lists of {"step": ..., metric: value}."""
    return {
        part: [{"step": step, **values} for step, values in entries]
        for part, entries in history.items()
    }


def start_run(model_dir, hparams, resumed_from_step=None, progress=False):
    """Creates `model_dir` and writes its `flags.cfg`, once every input has been checked.

    With `progress`, says so when the run resumes from a checkpoint at `resumed_from_step`.
    """
    os.makedirs(model_dir, exist_ok=True)
    write_text(os.path.join(model_dir, "flags.cfg"), flags_cfg(hparams))
    if resumed_from_step is not None and progress:
        print(f"resuming from global_step {resumed_from_step} in {model_dir}", flush=True)


def flags_cfg(hparams):
    """The flagfile text that replays a run with `hparams` (flag name -> value)."""
    lines = []
    for name, value in sorted(hparams.items()):
        if value is None:
            continue
        if isinstance(value, bool):
            lines.append(f"--{name}" if value else f"--no{name}")
        elif isinstance(value, (list, tuple)):
            lines.append(f"--{name}={','.join(str(v) for v in value)}")
        else:
            lines.append(f"--{name}={value}")
    return "\n".join(lines) + "\n"


class Clock:
    """Wall time since construction."""

    def __init__(self):
        self.start = time.time()

    def seconds(self):
        return time.time() - self.start
