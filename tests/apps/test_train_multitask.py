"""The app contract of train_multitask: in-process runs, errors before output, smoke run."""

import json
import os

import keras
import numpy as np
import pytest

from apps import train_multitask
from tests.apps import cli

ARTIFACTS = (
    "flags.cfg",
    "ckpt",
    "train",
    "eval",
    "model.keras",
    "history.json",
    "multitask.png",
    "single_class/ckpt",
    "single_class/model.keras",
    "single_group/model.keras",
    "metrics.json",
)


def _check_artifacts(model_dir, metrics):
    for name in ARTIFACTS:
        assert os.path.exists(os.path.join(model_dir, name)), name
    with open(os.path.join(model_dir, "metrics.json")) as f:
        assert json.load(f) == json.loads(json.dumps(metrics))
    for task in ("class", "group"):
        for kind in ("multitask", "single_task"):
            assert f"{task}_{kind}_test_accuracy" in metrics
    assert "global_step" in metrics and "wall_seconds" in metrics


def test_run_in_process_and_replay_resumes(tmp_path):
    model_dir = str(tmp_path / "run")
    metrics = train_multitask.run(
        model_dir,
        loss_weights=["class=1", "group=0.5"],
        trunk_units=32,
        batch_size=32,
        train_steps=60,
        log_every=20,
        eval_every=30,
        clip_norm=100.0,  # honoured (the tasks clip: tests/training), too large to change this run
        progress=False,
    )
    _check_artifacts(model_dir, metrics)
    assert "--clip_norm=100.0\n" in (tmp_path / "run" / "flags.cfg").read_text()
    assert metrics["global_step"] == 60 and metrics["tasks"]["group"]["num_classes"] == 2
    assert metrics["tasks"]["group"]["loss_weight"] == 0.5
    assert metrics["test_accuracy"] == metrics["class_multitask_test_accuracy"] > 0.5
    assert metrics["group_multitask_test_accuracy"] > 0.6  # parity: chance is 0.5
    model = keras.saving.load_model(os.path.join(model_dir, "model.keras"))
    logits = model(np.zeros((3, 8, 8, 1), np.float32))
    assert {t: tuple(v.shape) for t, v in logits.items()} == {"class": (3, 10), "group": (3, 2)}
    # The same call again resumes every finished run: no step is trained twice.
    again = train_multitask.run(
        model_dir,
        loss_weights=["class=1", "group=0.5"],
        trunk_units=32,
        batch_size=32,
        train_steps=60,
        log_every=20,
        eval_every=30,
        clip_norm=100.0,
        progress=False,
    )
    assert again["resumed_from_step"] == 60
    assert again["class_single_task_test_accuracy"] == pytest.approx(
        metrics["class_single_task_test_accuracy"]
    )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"loss_weights": ["class=1"]}, "each task"),
        ({"loss_weights": ["class=1", "group=x"]}, "look like"),
        ({"loss_weights": ["class=1", "group=-1"]}, "loss weights"),
        ({"validation_fraction": 0.1}, "cannot honour --validation_fraction=0.1"),
        ({"batch_size": 5000}, "exceeds"),
    ],
)
def test_bad_arguments_fail_before_writing(tmp_path, kwargs, match):
    model_dir = tmp_path / "run"
    with pytest.raises(ValueError, match=match):
        train_multitask.run(str(model_dir), train_steps=5, progress=False, **kwargs)
    assert not model_dir.exists()


def test_smoke_flagfile_subprocess(tmp_path):
    model_dir = tmp_path / "smoke"
    out = cli.in_subprocess(
        "train_multitask", "--flagfile=flags/smoke_multitask.cfg", f"--model_dir={model_dir}"
    )
    assert out.returncode == 0, out.stderr
    assert "single-task" in out.stdout and "step 40/40" in out.stdout
    metrics = json.loads((model_dir / "metrics.json").read_text())
    _check_artifacts(str(model_dir), metrics)
    assert out.stderr.strip() == "", out.stderr
