"""The app contract (CONVENTIONS section 4) of train_fcn.

In-process `run(...)` on a tiny budget, one subprocess run with flags/smoke_fcn.cfg, and bad
input that exits 2 before writing anything."""

import inspect
import json
import os

import keras
import numpy as np
import pytest

from apps import train_fcn
from mp.cnn.fcn import mean_iou, pixel_accuracy
from mp.data.canvas import make_canvases
from tests.apps import cli

ARTIFACTS = (
    "flags.cfg",
    "ckpt",
    "train",
    "eval",
    "model.keras",
    "segmentation.png",
    "metrics.json",
)


def _check_artifacts(model_dir, metrics):
    for name in ARTIFACTS:
        assert os.path.exists(os.path.join(model_dir, name)), name
    with open(os.path.join(model_dir, "metrics.json")) as f:
        assert json.load(f) == json.loads(json.dumps(metrics))
    for key in ("global_step", "wall_seconds", "mean_iou", "pixel_accuracy"):
        assert key in metrics


def test_run_in_process_and_metrics_match_the_saved_model(tmp_path):
    model_dir = str(tmp_path / "run")
    metrics = train_fcn.run(
        model_dir,
        canvas_size=16,
        num_train_canvases=64,
        num_test_canvases=20,
        items_per_canvas=["1", "2"],
        filters=["4", "8"],
        batch_size=16,
        train_steps=10,
        log_every=5,
        eval_every=5,
        seed=1,
        progress=False,
    )
    _check_artifacts(model_dir, metrics)
    assert metrics["global_step"] == 10 and metrics["test_canvases"] == 20
    assert metrics["num_classes"] == 11 and metrics["canvas_size"] == [16, 16]
    # The saved model, run on the same test canvases, gives the reported metrics.
    model = keras.saving.load_model(os.path.join(model_dir, "model.keras"))
    assert model.output_shape == (None, 16, 16, 11)
    images, labels = make_canvases("digits", "test", 20, (16, 16), (1, 2), seed=1)
    predictions = np.argmax(model.predict(images, verbose=0), axis=-1)
    assert metrics["mean_iou"] == pytest.approx(mean_iou(labels, predictions, 11), rel=1e-4)
    assert metrics["pixel_accuracy"] == pytest.approx(pixel_accuracy(labels, predictions))
    assert "--filters=4,8" in (tmp_path / "run" / "flags.cfg").read_text()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"canvas_size": 18}, "divisible by 2"),
        ({"items_per_canvas": ["3"]}, "items_per_canvas must be 2"),
        ({"filters": ["8", "x"]}, "filters must be integers"),
        ({"augment": True}, "cannot honour --augment=True"),
        ({"batch_size": 100, "num_train_canvases": 50}, "exceeds"),
    ],
)
def test_bad_input_writes_nothing(tmp_path, kwargs, match):
    model_dir = tmp_path / "run"
    with pytest.raises(ValueError, match=match):
        train_fcn.run(str(model_dir), **({"filters": ["4", "8", "16"]} | kwargs), progress=False)
    assert not model_dir.exists()


def test_flag_values_are_the_arguments_of_run():
    from absl import flags

    # flag_values() reads the app's own flags, which run() takes by name, and the shared
    # ones it honours, which run() takes through **shared; `progress` is for in-process
    # callers only.
    parameters = set(inspect.signature(train_fcn.run).parameters)
    own = parameters - {"model_dir", "progress", "shared"}
    assert own == set(train_fcn.APP.own)
    assert set(train_fcn.flag_values()) == own | set(train_fcn.APP.supported)
    assert all(name in flags.FLAGS for name in train_fcn.flag_values())


def test_smoke_flagfile_subprocess(tmp_path):
    model_dir = tmp_path / "smoke"
    out = cli.in_subprocess(
        "train_fcn",
        "--flagfile=flags/smoke_fcn.cfg",
        f"--model_dir={model_dir}",
    )
    assert out.returncode == 0, out.stderr
    assert "test mean IoU" in out.stdout and str(model_dir) in out.stdout
    assert "step 20/20" in out.stdout  # plain progress lines when not a TTY
    metrics = json.loads((model_dir / "metrics.json").read_text())
    _check_artifacts(str(model_dir), metrics)
    assert out.stderr.strip() == "", out.stderr


def test_bad_flag_exits_2_with_one_error_line(tmp_path, capfd):
    model_dir = tmp_path / "bad"
    # 18 is not divisible by 2^2 = 4 (three levels of filters pool twice).
    out = cli.in_process(
        capfd,
        "train_fcn",
        "--canvas_size=18",
        "--filters=4,8,16",
        f"--model_dir={model_dir}",
    )
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "canvas_size" in lines[0]
    assert not model_dir.exists()
