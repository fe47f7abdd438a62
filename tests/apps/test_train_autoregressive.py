"""The app contract (CONVENTIONS section 4) of train_autoregressive.

In-process `run(...)` of every model on a tiny budget (the saved model reproduces the
reported exact NLL on the same test bits), one subprocess run with
flags/smoke_autoregressive.cfg, and bad input that exits 2 before writing anything."""

import inspect
import json
import math
import os

import keras
import numpy as np
import pytest

import mp.data
from apps import train_autoregressive
from mp.generative import autoregressive as ar
from tests.apps import cli

ARTIFACTS = ("flags.cfg", "ckpt", "train", "eval", "model.keras", "samples.png")
ARTIFACTS += ("learning_curves.png", "history.json", "metrics.json")
KEYS = ("nll_nats", "bits_per_dim", "binarization", "test_images", "sample_seconds")
KEYS += ("global_step", "wall_seconds", "train_seconds", "num_parameters")
TINY = dict(
    dataset="digits",
    hidden_units=["16"],
    conv_filters=4,
    conv_layers=2,
    head_units=8,
    batch_size=32,
    train_steps=6,
    log_every=3,
    eval_every=3,
    seed=3,
    progress=False,
)


def _check_artifacts(model_dir, metrics, pixel_model):
    for name in ARTIFACTS + (("receptive_field.png",) if pixel_model else ()):
        assert os.path.exists(os.path.join(model_dir, name)), name
    assert os.path.exists(os.path.join(model_dir, "receptive_field.png")) == pixel_model
    with open(os.path.join(model_dir, "metrics.json")) as f:
        assert json.load(f) == json.loads(json.dumps(metrics))
    for key in KEYS:
        assert key in metrics, key


@pytest.mark.parametrize(
    "model, extra",
    [
        ("nade", {}),
        ("made", {"num_masks": 3}),
        ("pixelcnn", {}),
        ("gated_pixelcnn", {"ar_binarize": "static", "conv_kernel": 5}),
    ],
)
def test_run_in_process_and_the_saved_model_reproduces_the_nll(tmp_path, model, extra):
    model_dir = str(tmp_path / "run")
    metrics = train_autoregressive.run(model_dir, model=model, **(TINY | extra))
    _check_artifacts(model_dir, metrics, model.endswith("pixelcnn"))
    assert metrics["global_step"] == 6 and metrics["test_images"] == 450
    # bits per dimension = nats per image / (64 pixels * ln 2).
    assert metrics["bits_per_dim"] == pytest.approx(metrics["nll_nats"] / (64 * math.log(2)))
    binarize = extra.get("ar_binarize", "dynamic")
    assert metrics["binarization"] == binarize
    # The exact NLL, recomputed from the saved model on the same test bits.
    saved = keras.saving.load_model(os.path.join(model_dir, "model.keras"))
    images, _ = mp.data.load_numpy("digits", "test")
    x = ar.evaluation_images(images, binarize)
    assert set(np.unique(x)) == {0.0, 1.0}
    if model.endswith("pixelcnn"):  # --conv_kernel reaches the layers after the first
        assert saved.kernel_size == extra.get("conv_kernel", 3)
    assert metrics["nll_nats"] == pytest.approx(-ar.test_log_probs(saved, x).mean(), rel=1e-5)
    if model == "made":  # the mixture over masks, and mask 0 alone
        one = -ar.test_log_probs(saved, x, mask_index=0).mean()
        assert metrics["nll_nats_one_mask"] == pytest.approx(one, rel=1e-5)
        assert metrics["num_masks"] == 3


def test_resume_continues_the_step_count(tmp_path):
    model_dir = str(tmp_path / "run")
    train_autoregressive.run(model_dir, model="made", num_masks=2, **TINY)
    again = train_autoregressive.run(
        model_dir, model="made", num_masks=2, **(TINY | {"train_steps": 9})
    )
    assert again["resumed_from_step"] == 6 and again["global_step"] == 9


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"model": "pixelrnn"}, "model must be one of"),
        ({"hidden_units": ["8", "x"]}, "hidden_units must be integers"),
        ({"num_masks": 0}, "num_masks must be a positive integer"),
        ({"model": "nade", "num_masks": 2}, "num_masks is MADE's"),
        ({"ar_binarize": "otsu"}, "binarize must be one of"),
        ({"model": "gated_pixelcnn", "conv_kernel": 4}, "conv_kernel must be odd"),
        ({"augment": True}, "cannot honour --augment"),
        ({"batch_size": 5000}, "exceeds"),
    ],
)
def test_bad_input_writes_nothing(tmp_path, kwargs, match):
    model_dir = tmp_path / "run"
    with pytest.raises(ValueError, match=match):
        train_autoregressive.run(str(model_dir), **(TINY | kwargs))
    assert not model_dir.exists()


def test_flag_values_are_the_arguments_of_run():
    own = set(inspect.signature(train_autoregressive.run).parameters)
    own -= {"model_dir", "progress", "shared"}
    assert own == set(train_autoregressive.APP.own)
    values = set(train_autoregressive.flag_values())
    assert values == own | set(train_autoregressive.APP.supported)
    assert not set(train_autoregressive.APP.refuses) & values


def test_smoke_flagfile_subprocess(tmp_path):
    model_dir = tmp_path / "smoke"
    out = cli.in_subprocess(
        "train_autoregressive",
        "--flagfile=flags/smoke_autoregressive.cfg",
        f"--model_dir={model_dir}",
    )
    assert out.returncode == 0, out.stderr
    assert "test NLL" in out.stdout and str(model_dir) in out.stdout
    assert "step 20/20" in out.stdout
    metrics = json.loads((model_dir / "metrics.json").read_text())
    _check_artifacts(str(model_dir), metrics, pixel_model=True)
    # --time_naive_sampler: both samplers drew the same 64 images.
    assert metrics["samples_identical"] is True and metrics["sample_seconds_naive"] > 0
    assert out.stderr.strip() == "", out.stderr


def test_bad_flag_exits_2_with_one_error_line(tmp_path, capfd):
    model_dir = tmp_path / "bad"
    out = cli.in_process(
        capfd,
        "train_autoregressive",
        "--model=pixelrnn",
        f"--model_dir={model_dir}",
    )
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "model" in lines[0]
    assert not model_dir.exists()
