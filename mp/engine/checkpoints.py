"""Finding, checking and restoring the checkpoints of a run, and what to do when one is damaged.

A run's `ckpt/` folder holds `ckpt-<step>.index` and `.data-*` files and a
`checkpoint` state file that names the newest. Any of them can be damaged (a
full disk, a copy cut short, a kill during the write). The rules:

* the files on disk are the truth: the state file is rebuilt from them when it
  is missing, unreadable or out of step, never trusted to mean "no checkpoint";
* a checkpoint is trusted only once it has been restored (TensorFlow checks
  each tensor's checksum while reading); the newest intact one wins, with one
  warning line naming what was skipped; damaged files move to `ckpt/damaged/`;
* when checkpoints exist but none is intact, the run stops with one line
  naming them, instead of starting again from step 0 over them;
* `resume_from_step` goes back to an earlier checkpoint (after a divergence);
  the newer ones move to `ckpt/discarded/`, so they are kept but no longer
  the latest.

Course: ch7.1 TensorFlow tips (saving and restoring).
"""

import glob
import os
import re
import shutil
import sys

import tensorflow as tf

_NAME = re.compile(r"^ckpt-(\d+)\.(index|data-\d+-of-\d+)$")


class CheckpointMismatch(ValueError):
    """An intact checkpoint that does not fit the model (the flags changed)."""


def list_checkpoints(directory):
    """`{step: path prefix}` of the checkpoints with an `.index` or `.data` file in `directory`.

    A checkpoint with one of the two missing is listed too: restoring it is what
    tells that it is damaged.
    """
    found = {}
    for path in glob.glob(os.path.join(glob.escape(directory), "ckpt-*")):
        match = _NAME.match(os.path.basename(path))
        if match:
            found[int(match.group(1))] = os.path.join(directory, f"ckpt-{match.group(1)}")
    return dict(sorted(found.items()))


def _reason(error):
    text = getattr(error, "message", None) or str(error) or type(error).__name__
    return f"{type(error).__name__}: {' '.join(text.split())[:160]}"


def _move(prefix, folder):
    os.makedirs(folder, exist_ok=True)
    for path in glob.glob(glob.escape(prefix) + ".*"):
        shutil.move(path, os.path.join(folder, os.path.basename(path)))


def _damage(error):
    """True for errors that mean the files are unreadable, False for a model mismatch."""
    # A truncated .data file gives IndexError ("Read less bytes than requested").
    if isinstance(error, (tf.errors.OpError, IndexError, UnicodeDecodeError, EOFError, OSError)):
        return True
    try:  # a garbled object graph
        from google.protobuf.message import DecodeError
    except ImportError:  # pragma: no cover
        return False
    return isinstance(error, DecodeError)


def restore(
    checkpoint, directory, *, resume_from_step=None, warn=None, partial=False, read_only=False
):
    """Restores the newest intact checkpoint of `directory` into `checkpoint`.

    Args:
      checkpoint: the `tf.train.Checkpoint` to fill.
      directory: the `ckpt/` folder (it may not exist yet).
      resume_from_step: restore the checkpoint of this step instead of the newest, and
        move the newer ones to `directory/discarded/`; `None` takes the newest.
      warn: `warn(line)` for the warning lines; default: stderr.
      partial: `checkpoint` holds only some of the saved objects (e.g. just the step, to
        inspect a run); by default every saved value must find its object, so a run with
        another optimizer or model is refused instead of half restored.
      read_only: change nothing in `directory` (no moves, no state file, no warnings): how
        the other workers of a multi-worker run read the chief's checkpoints.

    Returns:
      The step restored, or `None` when `directory` holds no checkpoint.

    Raises:
      ValueError: `resume_from_step` names no checkpoint, or none is intact (naming the
        damaged files and what to do).
      CheckpointMismatch: an intact checkpoint that does not fit the model.
    """
    warn = warn or (lambda line: print(line, file=sys.stderr, flush=True))
    if read_only:
        warn = lambda line: None  # noqa: E731 - the chief says it
        move = lambda prefix, folder: None  # noqa: E731
    else:
        move = _move
    found = list_checkpoints(directory)
    if resume_from_step is not None:
        if resume_from_step not in found:
            kept = ", ".join(map(str, found)) or "none"
            raise ValueError(
                f"resume_from_step={resume_from_step}: no checkpoint of that step in "
                f"{directory} (kept steps: {kept})"
            )
        for step in [s for s in found if s > resume_from_step]:
            move(found.pop(step), os.path.join(directory, "discarded"))
        warn(
            f"warning: resuming from step {resume_from_step}; the newer checkpoints moved "
            f"to {os.path.join(directory, 'discarded')}"
        )
    damaged = []
    for step in sorted(found, reverse=True):
        prefix = found[step]
        try:
            status = checkpoint.restore(prefix)
            if partial:
                status.expect_partial().assert_existing_objects_matched()
            else:
                status.assert_consumed()
        except Exception as error:  # noqa: BLE001 - sorted into damage and mismatch below
            if not _damage(error):
                raise CheckpointMismatch(
                    f"the checkpoint {prefix} does not fit this model "
                    f"({str(error).strip().splitlines()[0][:200]}); were the flags changed? "
                    "Train in a new --model_dir or delete this one."
                ) from error
            damaged.append((step, prefix, _reason(error)))
            continue
        if damaged:
            for _, bad, _ in damaged:
                move(bad, os.path.join(directory, "damaged"))
            names = ", ".join(f"{os.path.basename(b)} ({r})" for _, b, r in damaged)
            warn(
                f"warning: damaged checkpoint {names}; resumed from the intact "
                f"{os.path.basename(prefix)} (the damaged files moved to "
                f"{os.path.join(directory, 'damaged')})"
            )
        intact = [found[s] for s in sorted(found) if s <= step and found[s] not in _bad(damaged)]
        if not read_only:
            _write_state(directory, prefix, intact, warn)
        return step
    if damaged:
        names = "; ".join(f"{os.path.basename(b)}: {r}" for _, b, r in damaged)
        raise ValueError(
            f"every checkpoint in {directory} is damaged ({names}); move that folder away to "
            "train from the start, or copy an intact checkpoint back into it"
        )
    return None


def _bad(damaged):
    return {prefix for _, prefix, _ in damaged}


def _write_state(directory, latest, all_paths, warn):
    """Rewrites the `checkpoint` state file from the files on disk if it says otherwise.

    The file is `tf.train.CheckpointManager`'s text proto: the newest checkpoint, every
    kept one, and their times.
    """
    state = os.path.join(directory, "checkpoint")
    names = [os.path.basename(p) for p in all_paths]
    try:
        with open(state, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError):
        text = None
    if text is not None:
        said = re.findall(r'^all_model_checkpoint_paths: "([^"]*)"', text, re.M)
        newest = re.findall(r'^model_checkpoint_path: "([^"]*)"', text, re.M)
        if newest == [os.path.basename(latest)] and [os.path.basename(n) for n in said] == names:
            return
    if text is None or "model_checkpoint_path" not in text or not names[-1:] == [
        os.path.basename(latest)
    ]:
        what = "missing" if text is None and not os.path.exists(state) else "unreadable"
        warn(f"warning: {state} was {what}; rebuilt it from the checkpoint files on disk")
    lines = [f'model_checkpoint_path: "{os.path.basename(latest)}"']
    lines += [f'all_model_checkpoint_paths: "{n}"' for n in names]
    lines += [f"all_model_checkpoint_timestamps: {os.path.getmtime(p + '.index')}" for p in all_paths]
    tmp = state + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, state)


def remove_temporary(directory):
    """Removes the `*_temp*` folders and files a failed save leaves in `directory`."""
    for path in glob.glob(os.path.join(glob.escape(directory), "*_temp*")):
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            try:
                os.remove(path)
            except OSError:
                pass
