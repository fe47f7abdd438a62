"""The app contract (CONVENTIONS section 4) of train_cnn and train_mlp.

In-process `run(...)` on tiny budgets, one subprocess run per app with its
smoke flagfile, the error exits, and SIGTERM followed by a resumed run.
"""

import gzip
import json
import os

import keras
import numpy as np
import pytest

from apps import train_cnn, train_mlp
from tests.apps import cli

ARTIFACTS = (
    "flags.cfg",
    "ckpt",
    "train",
    "eval",
    "model.keras",
    "confusion_matrix.png",
    "learning_curves.png",
    "metrics.json",
)


def _write_idx(path, array, gz=False):
    """idx format: 0, 0, dtype code 0x08 (uint8), ndim, then big-endian dims, then data."""
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    opener = gzip.open if gz else open
    with opener(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def tiny_mnist(tmp_path):
    """A 28x28 idx dataset whose class is the row of a bright bar: easy, but real files."""
    rng = np.random.default_rng(0)
    root = tmp_path / "mnist_files"
    root.mkdir()
    for split, n in (("train", 600), ("t10k", 200)):
        labels = rng.integers(0, 10, size=n)
        images = rng.integers(0, 60, size=(n, 28, 28))
        for i, label in enumerate(labels):
            images[i, 2 + 2 * label : 4 + 2 * label, 4:24] = 255
        _write_idx(root / f"{split}-images-idx3-ubyte.gz", images, gz=True)
        _write_idx(root / f"{split}-labels-idx1-ubyte", labels)
    return root


def _check_artifacts(model_dir, metrics):
    for name in ARTIFACTS:
        assert os.path.exists(os.path.join(model_dir, name)), name
    with open(os.path.join(model_dir, "metrics.json")) as f:
        assert json.load(f) == json.loads(json.dumps(metrics))
    for key in ("global_step", "wall_seconds", "test_accuracy", "test_top5"):
        assert key in metrics


def test_run_cnn_in_process_on_idx_files(tmp_path, tiny_mnist):
    model_dir = str(tmp_path / "run")
    metrics = train_cnn.run(
        model_dir,
        dataset="mnist",
        data_dir=str(tiny_mnist),
        dense_units=32,
        batch_size=32,
        train_steps=60,
        log_every=20,
        eval_every=30,
        progress=False,
    )
    _check_artifacts(model_dir, metrics)
    assert metrics["global_step"] == 60 and metrics["test_examples"] == 200
    assert metrics["test_accuracy"] > 0.5  # chance is 0.1
    # The saved model reloads and predicts as the metrics say.
    model = keras.saving.load_model(os.path.join(model_dir, "model.keras"))
    assert model.output_shape == (None, 10)


def test_parse_model_options():
    assert train_cnn.parse_model_options("depth=56, width=0.5,bottleneck=false,stem=small") == {
        "depth": 56,
        "width": 0.5,
        "bottleneck": False,
        "stem": "small",
    }
    assert train_cnn.parse_model_options("") == {}
    with pytest.raises(ValueError, match="name=value"):
        train_cnn.parse_model_options("depth")


def test_model_options_reach_the_builder(tmp_path):
    model_dir = tmp_path / "run"
    train_cnn.run(
        str(model_dir),
        model="resnet_cifar",
        model_options="depth=8,width=4",
        batch_size=32,
        train_steps=2,
        log_every=1,
        progress=False,
    )
    model = keras.saving.load_model(str(model_dir / "model.keras"))
    assert model.name == "resnet8_cifar"  # depth 8: one basic block per stage
    assert model.get_layer("conv1_conv").filters == 4  # the stem has `width` filters
    assert "--model_options=depth=8,width=4" in (model_dir / "flags.cfg").read_text()
    with pytest.raises(ValueError, match="6n \\+ 2"):
        train_cnn.run(str(tmp_path / "bad"), model="resnet_cifar", model_options="depth=9")
    assert not (tmp_path / "bad").exists()


def test_run_mlp_in_process_and_flags_cfg_replays(tmp_path, capfd):
    model_dir = str(tmp_path / "mlp")
    metrics = train_mlp.run(
        model_dir,
        hidden_units=["64"],
        train_steps=80,
        batch_size=32,
        log_every=40,
        eval_every=40,
        progress=False,
    )
    _check_artifacts(model_dir, metrics)
    assert metrics["test_accuracy"] > 0.8 and metrics["num_parameters"] == 64 * 64 + 64 + 650
    # Replaying flags.cfg resumes the finished run: same step, no training.
    out = cli.in_process(capfd, "train_mlp", f"--flagfile={model_dir}/flags.cfg")
    assert out.returncode == 0, out.stderr
    with open(os.path.join(model_dir, "metrics.json")) as f:
        replay = json.load(f)
    assert replay["resumed_from_step"] == 80 and replay["global_step"] == 80
    assert replay["test_accuracy"] == pytest.approx(metrics["test_accuracy"])


def test_resume_with_other_model_is_a_clear_error(tmp_path):
    train_mlp.run(str(tmp_path), hidden_units=["16"], train_steps=10, log_every=10, progress=False)
    before = (tmp_path / "flags.cfg").read_text()
    with pytest.raises(ValueError, match="does not fit this model"):
        train_mlp.run(str(tmp_path), hidden_units=["32"], train_steps=20, progress=False)
    assert (tmp_path / "flags.cfg").read_text() == before  # nothing rewritten


def test_early_stopping_watches_validation_not_test(tmp_path):
    with pytest.raises(ValueError, match="never test"):
        train_mlp.run(str(tmp_path / "a"), early_stopping_patience=2, eval_every=10)
    assert not (tmp_path / "a").exists()
    # A learning rate far too high: validation loss stops improving at once.
    metrics = train_mlp.run(
        str(tmp_path / "b"),
        hidden_units=["64"],
        batch_size=32,
        train_steps=400,
        learning_rate=0.5,
        optimizer="sgd",
        log_every=10,
        eval_every=10,
        validation_fraction=0.2,
        early_stopping_patience=2,
        progress=False,
    )
    assert metrics["stopped_early"] and metrics["global_step"] < 400
    assert metrics["validation_loss"] is not None and metrics["test_examples"] == 450


def test_divergence_stops_without_metrics(tmp_path):
    from mp.engine import TrainingDiverged

    with pytest.raises(TrainingDiverged, match="became (nan|inf)"):
        train_mlp.run(
            str(tmp_path),
            hidden_units=["64"],
            train_steps=200,
            optimizer="sgd",
            learning_rate=1e12,
            log_every=10,
            checkpoint_every=10,
            progress=False,
        )
    assert not (tmp_path / "metrics.json").exists()
    assert not (tmp_path / "model.keras").exists()


@pytest.mark.parametrize("app", ["train_cnn", "train_mlp"])
def test_smoke_flagfile_subprocess(tmp_path, app):
    model_dir = tmp_path / app
    out = cli.in_subprocess(
        app, f"--flagfile=flags/smoke_{app.split('_')[1]}.cfg", f"--model_dir={model_dir}"
    )
    assert out.returncode == 0, out.stderr
    assert "test accuracy" in out.stdout and str(model_dir) in out.stdout
    assert "step 40/40" in out.stdout  # plain progress lines when not a TTY
    metrics = json.loads((model_dir / "metrics.json").read_text())
    _check_artifacts(str(model_dir), metrics)
    # Quiet: no TensorFlow/absl log lines on stderr.
    assert out.stderr.strip() == "", out.stderr


def _truncate(path, keep):
    data = path.read_bytes()
    path.write_bytes(data[:keep])


@pytest.mark.parametrize(
    "case",
    [
        "unknown_dataset",
        "missing_data_dir",
        "negative_batch",
        "truncated_idx",
        "unknown_model",
        "unknown_model_option",
    ],
)
def test_bad_input_one_error_line_and_no_outputs(tmp_path, tiny_mnist, case, capfd):
    model_dir = tmp_path / "out"
    args = {
        "unknown_dataset": ["--dataset=cifar11"],
        "missing_data_dir": ["--dataset=fashion_mnist", f"--data_dir={tmp_path}/nowhere"],
        "negative_batch": ["--batch_size=-3"],
        "truncated_idx": ["--dataset=mnist", f"--data_dir={tiny_mnist}"],
        "unknown_model": ["--model=alexnet"],
        "unknown_model_option": ["--model=resnet_cifar", "--model_options=depth=8,colour=red"],
    }[case]
    if case == "truncated_idx":
        _truncate(tiny_mnist / "train-labels-idx1-ubyte", 300)
    out = cli.in_process(capfd, "train_cnn", *args, f"--model_dir={model_dir}", "--train_steps=5")
    assert out.returncode == 2, out
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    expected = {
        "unknown_dataset": "cifar11",
        "missing_data_dir": "nowhere",
        "negative_batch": "batch_size",
        "truncated_idx": "train-labels-idx1-ubyte",
        "unknown_model": "alexnet",
        "unknown_model_option": "colour",
    }[case]
    assert expected in lines[0]
    assert not model_dir.exists()


def test_sigterm_then_rerun_resumes(tmp_path, capfd):
    model_dir = tmp_path / "run"
    command = [
        "--flagfile=flags/cnn_digits.cfg",
        f"--model_dir={model_dir}",
        "--train_steps=400",
        "--log_every=10",
        "--eval_every=0",
        "--dense_units=128",
    ]
    stopped_at = cli.sigterm_at("train_cnn", *command, line_start="step 100/")
    assert 100 <= stopped_at < 400
    assert not (model_dir / "metrics.json").exists()
    assert (model_dir / "ckpt" / f"ckpt-{stopped_at}.index").exists()

    out = cli.in_process(capfd, "train_cnn", *command)  # the same command, rerun
    assert out.returncode == 0, out.stderr
    assert f"resuming from global_step {stopped_at}" in out.stdout
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert metrics["resumed_from_step"] == stopped_at
    assert metrics["global_step"] == 400
    assert metrics["test_accuracy"] > 0.95
