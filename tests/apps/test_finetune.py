"""apps/finetune.py: the app contract, weights from a file, and the offline ImageNet error."""

import json
import os

import numpy as np
import pytest

import mp.cnn
from apps import finetune
from mp.cnn import transfer
from tests.apps import cli

ARTIFACTS = (
    "flags.cfg",
    "phase1",
    "phase2",
    "model.keras",
    "confusion_matrix.png",
    "learning_curves.png",
    "history.json",
    "metrics.json",
)
TINY = dict(
    dataset="digits",
    image_size=8,
    labels_per_class=4,
    batch_size=8,
    head_steps=4,
    finetune_steps=3,
    log_every=2,
    checkpoint_every=4,
    progress=False,
)


def test_run_from_scratch_base_with_comparison(tmp_path):
    model_dir = str(tmp_path / "run")
    metrics = finetune.run(
        model_dir, base="mp:classic_cnn", weights="none", unfreeze="2", compare_scratch=True, **TINY
    )
    for name in ARTIFACTS + ("scratch",):
        assert os.path.exists(os.path.join(model_dir, name)), name
    with open(os.path.join(model_dir, "metrics.json")) as f:
        assert json.load(f) == json.loads(json.dumps(metrics))
    assert metrics["global_step"] == 4 + 3
    assert metrics["labelled_examples"] == 4 * 10
    assert metrics["unfrozen_layers"] == ["conv2", "dense"]
    assert metrics["scratch_steps"] == 7
    for key in ("test_accuracy", "head_test_accuracy", "scratch_test_accuracy"):
        assert 0.0 <= metrics[key] <= 1.0
    assert metrics["test_examples"] == 450
    # flags.cfg replays the run through the app's own flags.
    with open(os.path.join(model_dir, "flags.cfg")) as f:
        used = {line.split("=")[0].lstrip("-") for line in f.read().split()}
    assert {"base", "weights", "head_steps", "unfreeze"} <= used
    assert {name.removeprefix("no") for name in used} <= set(finetune.flag_values())


def test_run_from_saved_model_keeps_frozen_weights(tmp_path):
    """A model saved by the test is the base: phase 1 freezes it all, phase 2 unfreezes
    only `dense`, so conv1 and conv2 come out exactly as saved, and dense does not."""
    saved = mp.cnn.get_model("classic_cnn", (8, 8, 1), 10, filters=(4, 8), dense_units=16)
    path = str(tmp_path / "pretrained.keras")
    saved.save(path)
    # Loading alone (before any training) gives the saved weights.
    base = transfer.build_base("mp:classic_cnn", path, (8, 8, 1))
    for a, b in zip(saved.get_layer("dense").weights, base.get_layer("dense").weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())

    model_dir = str(tmp_path / "run")
    metrics = finetune.run(model_dir, base="mp:classic_cnn", weights=path, unfreeze="1", **TINY)
    assert metrics["unfrozen_layers"] == ["dense"]
    import keras

    tuned = keras.saving.load_model(os.path.join(model_dir, "model.keras"))
    tuned_base = tuned.get_layer("classic_cnn")
    for name in ("conv1", "conv2"):
        for a, b in zip(saved.get_layer(name).weights, tuned_base.get_layer(name).weights):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert not np.allclose(
        saved.get_layer("dense").kernel.numpy(), tuned_base.get_layer("dense").kernel.numpy()
    )


def test_bad_inputs_fail_before_writing(tmp_path):
    model_dir = str(tmp_path / "run")
    args = dict(TINY, base="mp:classic_cnn")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        finetune.run(model_dir, weights=str(tmp_path / "missing.keras"), **args)
    with pytest.raises(ValueError, match="batch_size 64 exceeds the 40 labelled"):
        finetune.run(model_dir, weights="none", **{**args, "batch_size": 64})
    with pytest.raises(ValueError, match="height and width >= 32"):
        finetune.run(model_dir, **{**args, "base": "vgg16", "weights": "none"})
    assert not os.path.exists(model_dir)


def test_smoke_flagfile_subprocess(tmp_path):
    model_dir = str(tmp_path / "smoke")
    result = cli.in_subprocess(
        "finetune",
        "--flagfile=flags/smoke_finetune.cfg",
        f"--model_dir={model_dir}",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    with open(os.path.join(model_dir, "metrics.json")) as f:
        metrics = json.load(f)
    assert metrics["global_step"] == 20  # head_steps 10 + finetune_steps 10
    for name in ARTIFACTS:
        assert os.path.exists(os.path.join(model_dir, name)), name


def test_offline_imagenet_exits_2_naming_the_file(tmp_path):
    """An empty Keras cache and an unreachable proxy: the real download path fails."""
    model_dir = str(tmp_path / "run")
    proxy = "http://127.0.0.1:9"  # the discard port: nothing listens, the connection is refused
    env = {
        "KERAS_HOME": str(tmp_path / "keras_home"),
        "https_proxy": proxy,
        "HTTPS_PROXY": proxy,
        "http_proxy": proxy,
        "HTTP_PROXY": proxy,
        "no_proxy": "",
        "NO_PROXY": "",
    }
    result = cli.in_subprocess(
        "finetune",
        "--base=vgg16",
        "--weights=imagenet",
        f"--model_dir={model_dir}",
        "--head_steps=1",
        env={**os.environ, **env},
    )
    assert result.returncode == 2, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr[-2000:]
    assert "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5" in errors[0]
    assert os.path.join(str(tmp_path / "keras_home"), "models") in errors[0]
    assert "--weights=" in errors[0]
    assert not os.path.exists(model_dir)
