"""The app contract of train_semisupervised: in-process runs, errors before output, smoke run."""

import json
import os

import keras
import pytest

from apps import train_semisupervised
from tests.apps import cli

ARTIFACTS = (
    "flags.cfg",
    "ckpt",
    "train",
    "eval",
    "model.keras",
    "history.json",
    "semisupervised.png",
    "reconstructions.png",
    "supervised/ckpt",
    "supervised/model.keras",
    "metrics.json",
)
TINY = dict(code_units=16, batch_size=16, unlabelled_batch_size=32, log_every=20, progress=False)


def _check_artifacts(model_dir, metrics):
    for name in ARTIFACTS:
        assert os.path.exists(os.path.join(model_dir, name)), name
    with open(os.path.join(model_dir, "metrics.json")) as f:
        assert json.load(f) == json.loads(json.dumps(metrics))
    for key in (
        "global_step",
        "wall_seconds",
        "test_accuracy",
        "supervised_test_accuracy",
        "labels_per_class",
    ):
        assert key in metrics, key


def test_run_in_process_with_a_sweep(tmp_path):
    model_dir = str(tmp_path / "run")
    metrics = train_semisupervised.run(
        model_dir,
        labels_per_class=10,
        sweep_labels=["3"],
        train_steps=40,
        eval_every=20,
        clip_norm=100.0,  # honoured (the tasks clip: tests/training), too large to change this run
        **TINY,
    )
    _check_artifacts(model_dir, metrics)
    assert metrics["global_step"] == metrics["supervised_global_step"] == 40
    assert metrics["labelled_examples"] == 100 and metrics["unlabelled_examples"] == 1347 - 100
    assert (
        metrics["test_accuracy"] > 0.3 and metrics["supervised_test_accuracy"] > 0.3
    )  # 0.1: chance
    assert [row["labels_per_class"] for row in metrics["sweep"]] == [3, 10]
    assert os.path.exists(os.path.join(model_dir, "labels_3", "supervised", "model.keras"))
    # The saved model is the classifier: images -> logits.
    model = keras.saving.load_model(os.path.join(model_dir, "model.keras"))
    assert model.output_shape == (None, 10)
    flags_cfg = (tmp_path / "run" / "flags.cfg").read_text()
    assert "--labels_per_class=10\n" in flags_cfg and "--sweep_labels=3\n" in flags_cfg
    assert "--clip_norm=100.0\n" in flags_cfg


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"labels_per_class": 500}, "only"),  # digits has ~135 training images per class
        ({"augment": True}, "cannot honour --augment=True"),
        ({"validation_fraction": 0.2}, "cannot honour --validation_fraction=0.2"),
        ({"sweep_labels": ["3", "x"]}, "sweep_labels must be"),
        ({"batch_size": 200, "labels_per_class": 10}, "do not fill a batch"),
        ({"encoder": "conv", "dropout": 1.5}, "dropout"),
    ],
)
def test_bad_arguments_fail_before_writing(tmp_path, kwargs, match):
    model_dir = tmp_path / "run"
    with pytest.raises(ValueError, match=match):
        train_semisupervised.run(str(model_dir), train_steps=5, progress=False, **kwargs)
    assert not model_dir.exists()


def test_smoke_flagfile_subprocess(tmp_path):
    model_dir = tmp_path / "smoke"
    out = cli.in_subprocess(
        "train_semisupervised",
        "--flagfile=flags/smoke_semisupervised.cfg",
        f"--model_dir={model_dir}",
    )
    assert out.returncode == 0, out.stderr
    assert "semi-supervised" in out.stdout and "step 40/40" in out.stdout
    metrics = json.loads((model_dir / "metrics.json").read_text())
    _check_artifacts(str(model_dir), metrics)
    assert out.stderr.strip() == "", out.stderr
