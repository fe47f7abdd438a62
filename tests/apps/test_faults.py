"""Fault injection: damaged checkpoints, busy and broken folders, divergence, late signals,
random state on resume (issue 13; README "When something goes wrong").

Each case runs the real program (`python -m apps.train_mlp` on the embedded digits) and
checks the exit code, the one `error:`/`warning:` line, that no traceback is printed, what
the folder holds afterwards and the step a rerun resumes from. Variants of one fault that
take the same path are checked in-process on `mp.engine.checkpoints`.
"""

import glob
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from apps import common, train_mlp
from mp.engine import checkpoints, lock
from tests.apps import cli

ROOT = cli.ROOT
TINY = ["--hidden_units=16", "--batch_size=32", "--log_every=10", "--checkpoint_every=10"]


def _mlp(model_dir, *args, preexec_fn=None):
    """The command line in its own process: for a lock, a resource limit or a signal."""
    return cli.in_subprocess(
        "train_mlp", *TINY, f"--model_dir={model_dir}", *args, preexec_fn=preexec_fn
    )


def _mlp_here(capfd, model_dir, *args):
    """The same command line run in this process: for what it does with its input."""
    return cli.in_process(capfd, "train_mlp", *TINY, f"--model_dir={model_dir}", *args)


def _lines(stderr, prefix):
    return [line for line in stderr.splitlines() if line.startswith(prefix)]


def _no_traceback(out):
    assert "Traceback" not in out.stderr and "Traceback" not in out.stdout, out.stderr


def _metrics(model_dir):
    with open(os.path.join(model_dir, "metrics.json")) as f:
        return json.load(f)


def _leftovers(model_dir):
    return glob.glob(os.path.join(model_dir, "**", "*_temp*"), recursive=True) + glob.glob(
        os.path.join(model_dir, "**", ".tmp-*"), recursive=True
    )


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished 30-step run with checkpoints at steps 10, 20 and 30."""
    model_dir = tmp_path_factory.mktemp("finished") / "run"
    train_mlp.run(
        str(model_dir),
        hidden_units=["16"],
        batch_size=32,
        log_every=10,
        checkpoint_every=10,
        train_steps=30,
        progress=False,
    )
    return model_dir


def _copy(finished, tmp_path):
    target = tmp_path / "run"
    shutil.copytree(finished, target)
    os.remove(target / ".lock")
    return target


# --- damaged checkpoints -------------------------------------------------------------------


def test_damaged_newest_checkpoint_falls_back_with_one_warning(finished, tmp_path, capfd):
    model_dir = _copy(finished, tmp_path)
    (data,) = glob.glob(str(model_dir / "ckpt" / "ckpt-30.data-*"))
    with open(data, "r+b") as f:
        f.truncate(64)
    out = _mlp_here(capfd, model_dir, "--train_steps=40")
    assert out.returncode == 0, out.stderr
    _no_traceback(out)
    (warning,) = _lines(out.stderr, "warning:")
    assert "ckpt-30" in warning and "ckpt-20" in warning
    assert _metrics(model_dir)["resumed_from_step"] == 20
    assert _metrics(model_dir)["global_step"] == 40
    assert sorted(os.listdir(model_dir / "ckpt" / "damaged")) == [
        "ckpt-30.data-00000-of-00001",
        "ckpt-30.index",
    ]


def test_every_checkpoint_damaged_is_one_error_and_nothing_changes(finished, tmp_path, capfd):
    model_dir = _copy(finished, tmp_path)
    for index in glob.glob(str(model_dir / "ckpt" / "ckpt-*.index")):
        with open(index, "r+b") as f:
            f.truncate(10)
    before = sorted(os.listdir(model_dir / "ckpt"))
    flags_cfg = (model_dir / "flags.cfg").read_text()
    out = _mlp_here(capfd, model_dir, "--train_steps=40")
    assert out.returncode == 2, out.stderr
    _no_traceback(out)
    (error,) = _lines(out.stderr, "error:")
    assert "every checkpoint" in error and "ckpt-10" in error and "move that folder away" in error
    assert sorted(os.listdir(model_dir / "ckpt")) == before
    assert (model_dir / "flags.cfg").read_text() == flags_cfg


@pytest.mark.parametrize("state", ["binary", "text", "deleted"])
def test_a_garbled_or_missing_state_file_is_rebuilt_not_a_restart(finished, tmp_path, state, capfd):
    model_dir = _copy(finished, tmp_path)
    path = model_dir / "ckpt" / "checkpoint"
    if state == "binary":
        path.write_bytes(b"\x00\xff\xfe\x80 garbage")
    elif state == "text":
        path.write_text("this is not a checkpoint state\n")
    else:
        path.unlink()
    if state != "binary":  # one subprocess shows the whole path; the others run in-process
        warnings = []
        step = tf.Variable(0, dtype=tf.int64)
        restored = checkpoints.restore(
            tf.train.Checkpoint(global_step=step),
            str(model_dir / "ckpt"),
            warn=warnings.append,
            partial=True,
        )
        assert restored == 30 and int(step.numpy()) == 30
        assert len(warnings) == 1 and "rebuilt" in warnings[0]
        assert 'model_checkpoint_path: "ckpt-30"' in path.read_text()
        return
    out = _mlp_here(capfd, model_dir, "--train_steps=40")
    assert out.returncode == 0, out.stderr
    _no_traceback(out)
    (warning,) = _lines(out.stderr, "warning:")
    assert "rebuilt" in warning
    assert _metrics(model_dir)["resumed_from_step"] == 30


def _model():
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])


def _saved(directory, steps):
    """A model checkpointed at `steps`; returns the checkpoint object and the model."""
    model = _model()
    step = tf.Variable(0, dtype=tf.int64)
    checkpoint = tf.train.Checkpoint(model=model, step=step)
    manager = tf.train.CheckpointManager(checkpoint, directory, max_to_keep=10)
    for s in steps:
        step.assign(s)
        model.layers[0].kernel.assign(np.full((4, 3), s, np.float32))
        manager.save(checkpoint_number=s)
    return checkpoint, model, step


@pytest.mark.parametrize(
    "damage", ["truncated data", "flipped bit in data", "missing index", "truncated index"]
)
def test_each_kind_of_damage_is_detected(tmp_path, damage):
    directory = str(tmp_path / "ckpt")
    checkpoint, model, step = _saved(directory, [10, 20])
    prefix = os.path.join(directory, "ckpt-20")
    (data,) = glob.glob(prefix + ".data-*")
    if damage == "truncated data":
        with open(data, "r+b") as f:
            f.truncate(16)
    elif damage == "flipped bit in data":
        raw = bytearray(open(data, "rb").read())
        raw[len(raw) // 2] ^= 0x10
        open(data, "wb").write(bytes(raw))
    elif damage == "missing index":
        os.remove(prefix + ".index")
    else:
        with open(prefix + ".index", "r+b") as f:
            f.truncate(20)
    warnings = []
    assert checkpoints.restore(checkpoint, directory, warn=warnings.append) == 10
    assert int(step.numpy()) == 10
    np.testing.assert_array_equal(model.layers[0].kernel.numpy(), np.full((4, 3), 10.0))
    assert len(warnings) == 1 and "ckpt-20" in warnings[0] and "ckpt-10" in warnings[0]
    assert os.path.isdir(os.path.join(directory, "damaged"))


def test_a_checkpoint_of_another_model_is_a_mismatch_not_damage(tmp_path):
    directory = str(tmp_path / "ckpt")
    _saved(directory, [10])
    other = tf.train.Checkpoint(model=keras.Sequential([keras.Input((5,)), keras.layers.Dense(3)]))
    with pytest.raises(checkpoints.CheckpointMismatch, match="does not fit this model"):
        checkpoints.restore(other, directory)
    assert not os.path.exists(os.path.join(directory, "damaged"))


# --- the folder -----------------------------------------------------------------------------


# The holder loads mp/engine/lock.py alone (it imports nothing else): a process that starts
# in milliseconds, where importing the package would take seconds.
HOLDER = """
import importlib.util, os, sys
spec = importlib.util.spec_from_file_location("lock", os.path.join("mp", "engine", "lock.py"))
lock = importlib.util.module_from_spec(spec)
spec.loader.exec_module(lock)
lock.lock(sys.argv[1])
print("locked", flush=True)
sys.stdin.read()
"""


def test_a_second_run_on_a_busy_folder_is_refused(tmp_path, capfd):
    model_dir = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(model_dir)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        out = _mlp_here(capfd, model_dir, "--train_steps=10")
        assert out.returncode == 2, out.stderr
        _no_traceback(out)
        (error,) = _lines(out.stderr, "error:")
        assert f"process {holder.pid}" in error and "in use" in error
        assert sorted(os.listdir(model_dir)) == [".lock"]
        # The lock of a process that ended, even by SIGKILL, is no lock: the next run takes it.
        holder.kill()
        assert holder.wait(timeout=60) == -signal.SIGKILL
    finally:
        holder.kill()
        holder.wait(timeout=60)
    lock.lock(str(model_dir))
    lock.unlock(str(model_dir))


def test_model_dir_that_is_a_file(tmp_path, capfd):
    path = tmp_path / "notes.txt"
    path.write_text("mine")
    out = _mlp_here(capfd, path, "--train_steps=10")
    assert out.returncode == 4, out.stderr
    _no_traceback(out)
    (error,) = _lines(out.stderr, "error:")
    assert "is a file" in error
    assert path.read_text() == "mine"


def test_a_folder_that_cannot_be_created_exits_4(tmp_path, capfd):
    """sysfs refuses new folders even to root: a model_dir nobody may write."""
    model_dir = f"/sys/mp_run_{os.getpid()}"
    out = _mlp_here(capfd, model_dir, "--train_steps=10")
    assert out.returncode == 4, out.stderr
    _no_traceback(out)
    (error,) = _lines(out.stderr, "error:")
    assert error.startswith("error: file system:") and model_dir in error
    assert not os.path.exists(model_dir)


def test_outputs_are_readable_by_others(finished):
    """A TA on a shared machine reads a student's results: the umask decides, not mkstemp."""
    mask = os.umask(0)
    os.umask(mask)
    for name in ("flags.cfg", "metrics.json", "model.keras", "confusion_matrix.png"):
        assert os.stat(finished / name).st_mode & 0o777 == 0o666 & ~mask, name


def _small_files(limit):
    """Files may grow to `limit` bytes: a full disk as a file write sees it (EFBIG)."""

    def apply():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_no_space_for_a_checkpoint_exits_4_and_leaves_no_temporary_files(tmp_path):
    model_dir = tmp_path / "run"
    # A 256-unit MLP's checkpoint (weights and Adam's two slots) is ~250 KB: over the limit.
    out = _mlp(
        model_dir, "--train_steps=20", "--hidden_units=256", preexec_fn=_small_files(100_000)
    )
    assert out.returncode == 4, out.stderr
    _no_traceback(out)
    (error,) = _lines(out.stderr, "error:")
    assert error.startswith("error: file system:") and "checkpoint" in error
    assert not _leftovers(model_dir)
    assert not (model_dir / "metrics.json").exists()


# --- divergence -------------------------------------------------------------------------------


def test_divergence_names_the_way_back_and_resume_from_step_takes_it(tmp_path, capfd):
    model_dir = tmp_path / "run"
    sgd = ("--optimizer=sgd", "--hidden_units=64")
    out = _mlp_here(capfd, model_dir, "--train_steps=20", *sgd, "--learning_rate=0.01")
    assert out.returncode == 0, out.stderr
    # The learning rate of the flags applies on resume, so this one blows up.
    out = _mlp_here(capfd, model_dir, "--train_steps=200", *sgd, "--learning_rate=1e12")
    assert out.returncode == 3, out.stderr
    _no_traceback(out)
    (error,) = _lines(out.stderr, "error:")
    assert "--resume_from_step=10" in error and "steps 10, 20" in error and "by step 30" in error
    kept = sorted(checkpoints.list_checkpoints(str(model_dir / "ckpt")))
    assert kept[:2] == [10, 20]
    out = _mlp_here(
        capfd,
        model_dir,
        "--train_steps=30",
        *sgd,
        "--learning_rate=0.01",
        "--resume_from_step=20",
    )
    assert out.returncode == 0, out.stderr
    assert _metrics(model_dir)["resumed_from_step"] == 20
    assert _metrics(model_dir)["global_step"] == 30
    assert "resume_from_step" not in (model_dir / "flags.cfg").read_text()  # no replay of it
    # The diverged run's checkpoints (if it saved any past 20) are kept aside, not latest.
    assert all(s <= 30 for s in checkpoints.list_checkpoints(str(model_dir / "ckpt")))
    # The flags the earlier steps ran with are kept beside the new flags.cfg.
    assert glob.glob(str(model_dir / "flags.until-step-20.*.cfg"))


def test_resume_from_a_step_without_checkpoint_is_an_error(finished, tmp_path, capfd):
    model_dir = _copy(finished, tmp_path)
    out = _mlp_here(capfd, model_dir, "--train_steps=40", "--resume_from_step=15")
    assert out.returncode == 2, out.stderr
    (error,) = _lines(out.stderr, "error:")
    assert "resume_from_step=15" in error and "10, 20, 30" in error


# --- signals after the last step ---------------------------------------------------------------


def test_sigterm_while_the_figures_are_written(tmp_path, capfd):
    """SIGTERM arrives in the middle of saving the first figure, after training, in a
    process of its own; the rerun only writes the outputs."""
    signum = signal.SIGTERM
    model_dir = tmp_path / "run"
    script = textwrap.dedent(
        f"""
        import os, sys
        from apps import common, train_mlp

        write = common.save_figure
        def save_figure(figure, path):
            def interrupted(tmp):
                figure.savefig(tmp)  # half of the work done...
                os.kill(os.getpid(), {int(signum)})  # ...when the signal comes
            common.atomic_write(path, interrupted)
        common.save_figure = save_figure
        sys.argv = ["train_mlp", *{TINY!r}, "--train_steps=20", "--model_dir={model_dir}"]
        train_mlp.APP.cli(train_mlp.run)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 128 + signum, out.stderr
    _no_traceback(out)
    (line,) = _lines(out.stderr, "interrupted:")
    assert signal.Signals(signum).name in line
    assert not _leftovers(model_dir)
    assert not (model_dir / "metrics.json").exists()
    out = _mlp_here(capfd, model_dir, "--train_steps=20")  # the rerun only writes the outputs
    assert out.returncode == 0, out.stderr
    assert _metrics(model_dir)["resumed_from_step"] == 20


def test_sigint_while_the_figures_are_written(tmp_path, capfd, monkeypatch):
    """The same with SIGINT (Ctrl-C), sent to this process while the command line runs in
    it (its handlers are installed then, and put back after)."""
    model_dir = tmp_path / "run"

    def save_figure(figure, path):
        def interrupted(tmp):
            figure.savefig(tmp)  # half of the work done...
            os.kill(os.getpid(), signal.SIGINT)  # ...when Ctrl-C comes

        common.atomic_write(path, interrupted)

    monkeypatch.setattr(common, "save_figure", save_figure)
    out = _mlp_here(capfd, model_dir, "--train_steps=20")
    assert out.returncode == 128 + signal.SIGINT, out.stderr
    _no_traceback(out)
    (line,) = _lines(out.stderr, "interrupted:")
    assert "SIGINT" in line and "outside training" in line
    assert not _leftovers(model_dir)
    assert not (model_dir / "metrics.json").exists()


# --- random state on resume ----------------------------------------------------------------------

RESUME_SCRIPT = """
import json, sys
import keras
from mp.engine import seed_everything

seed_everything(0, deterministic=True)
from apps import train_mlp, train_vae

RUNS = {
    "mlp_dropout": (
        train_mlp,
        dict(hidden_units=["32"], dropout=0.5, noise_stddev=0.3, augment=True),
    ),
    "vae": (train_vae, dict(hidden_units=["32"], iwae_k=4, iwae_examples=8)),
}


def weights(model_dir):
    return [w.tolist() for w in keras.saving.load_model(model_dir + "/model.keras").get_weights()]


same = {}
for name, (app, kwargs) in RUNS.items():
    base = dict(progress=False, log_every=10, deterministic=True, **kwargs)
    root = sys.argv[1] + "/" + name
    app.run(root + "/whole", train_steps=40, **base)
    app.run(root + "/split", train_steps=20, **base)  # stopped at step 20 ...
    app.run(root + "/split", train_steps=40, **base)  # ... and resumed
    same[name] = weights(root + "/whole") == weights(root + "/split")
print(json.dumps(same))
"""


def test_resumed_equals_uninterrupted(tmp_path):
    """Every random draw (dropout masks, input noise, augmentation, the VAE's sampling)
    resumes where it stopped: bit for bit the same weights as one uninterrupted run, which
    also shows that `--deterministic` runs repeat exactly. The GAN's noise and both of its
    optimizers: tests/generative/test_gan.py::test_resume_restores_both_optimizers_and_the_noise.
    """
    out = subprocess.run(
        [sys.executable, "-c", RESUME_SCRIPT, str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    same = json.loads(out.stdout.strip().splitlines()[-1])
    assert same == {"mlp_dropout": True, "vae": True}
