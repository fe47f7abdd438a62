"""The app contract (CONVENTIONS section 4) of train_gan.

In-process `run(...)` on tiny budgets (ring and digits), resuming both optimizers and the
step ratio, bad input that writes nothing, and one subprocess run with flags/smoke_gan.cfg."""

import inspect
import json
import os

import numpy as np
import pytest

from apps import train_gan
from tests.apps import cli

ARTIFACTS = (
    "flags.cfg",
    "ckpt",
    "train",
    "eval",
    "model.keras",
    "discriminator.keras",
    "samples.png",
    "learning_curves.png",
    "history.json",
    "metrics.json",
)
RING = dict(
    data="ring", model="mlp", latent_dim=2, hidden_units=["8"], batch_size=32, progress=False
)


def _check_artifacts(model_dir, metrics):
    for name in ARTIFACTS:
        assert os.path.exists(os.path.join(model_dir, name)), name
    with open(os.path.join(model_dir, "metrics.json")) as f:
        assert json.load(f) == json.loads(json.dumps(metrics))
    for key in ("global_step", "wall_seconds"):
        assert key in metrics


def test_ring_run_in_process_and_resume_keeps_the_optimizers(tmp_path):
    model_dir = str(tmp_path / "ring")
    kwargs = dict(RING, d_steps=2, log_every=5, checkpoint_every=5, eval_every=5)
    metrics = train_gan.run(model_dir, train_steps=9, **kwargs)
    _check_artifacts(model_dir, metrics)
    assert os.path.exists(os.path.join(model_dir, "samples_step5.png"))
    assert metrics["global_step"] == 9
    # Each step: 2 D updates, then 1 G update.
    assert (metrics["d_updates"], metrics["g_updates"]) == (18, 9)
    assert 0 <= metrics["modes_covered"] <= 8 and 0.0 <= metrics["high_quality_fraction"] <= 1.0
    assert sum(metrics["mode_counts"]) <= 2500
    history = json.loads((tmp_path / "ring" / "history.json").read_text())
    assert [e["step"] for e in history["train"]] == [5, 9]
    assert "diagnostics/modes_covered" in history["train"][0]
    # Resume with a larger budget: the restored optimizers count on from 18 and 9 (fresh
    # ones would end at 10 and 5).
    resumed = train_gan.run(model_dir, train_steps=14, **kwargs)
    assert resumed["resumed_from_step"] == 9 and resumed["global_step"] == 14
    assert (resumed["d_updates"], resumed["g_updates"]) == (28, 14)
    assert "--d_steps=2" in (tmp_path / "ring" / "flags.cfg").read_text()


def test_digits_run_reports_fid_and_its_floor(tmp_path, tiny_fid_cache):
    model_dir = str(tmp_path / "digits")
    metrics = train_gan.run(
        model_dir,
        dataset="digits",
        model="dcgan",
        latent_dim=4,
        dcgan_filters=4,
        batch_size=16,
        train_steps=4,
        log_every=2,
        eval_every=2,
        fid_samples=50,
        fid_cache_dir=tiny_fid_cache,
        progress=False,
    )
    _check_artifacts(model_dir, metrics)
    assert os.path.exists(os.path.join(model_dir, "samples_step2.png"))
    assert metrics["fid_samples"] == 50
    assert np.isfinite(metrics["fid_classifier"]) and metrics["fid_classifier"] >= 0
    assert 0 <= metrics["fid_real_floor"] < metrics["fid_classifier"]  # 4 steps: far from the data
    assert metrics["epochs"] == pytest.approx(4 / (1347 // 16), abs=1e-3)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"data": "ring", "model": "dcgan", "train_steps": 5}, "needs model=mlp"),
        ({"data": "ring", "model": "mlp"}, "set train_steps"),
        ({"model": "vae"}, "Received: model='vae'"),
        ({"generator_loss": "wasserstein"}, "generator_loss"),
        ({"d_steps": 0}, "d_steps must be a positive integer"),
        ({"hidden_units": ["8", "x"]}, "hidden_units must be integers"),
        ({"beta_1": 1.0}, r"beta_1 must be in \[0, 1\)"),
        ({"augment": True}, "cannot honour --augment"),
        ({"data": "ring", "model": "mlp", "dataset": "mnist", "train_steps": 5}, "not use --dataset"),
        ({"optimizer": "sgd", "beta_1": 0.9}, "beta_1 is Adam's"),
        ({"batch_size": 5000}, "exceeds"),
        ({"dataset": "cifar"}, "cifar"),
    ],
)
def test_bad_input_writes_nothing(tmp_path, kwargs, match):
    model_dir = tmp_path / "run"
    with pytest.raises(ValueError, match=match):
        train_gan.run(str(model_dir), **kwargs, progress=False)
    assert not model_dir.exists()


def test_flag_values_are_the_arguments_of_run():
    own = set(inspect.signature(train_gan.run).parameters) - {"model_dir", "progress", "shared"}
    assert own == set(train_gan.APP.own)
    assert set(train_gan.flag_values()) == own | set(train_gan.APP.supported)
    assert not set(train_gan.APP.refuses) & set(train_gan.flag_values())


def test_smoke_flagfile_subprocess(tmp_path):
    model_dir = tmp_path / "smoke"
    out = cli.in_subprocess(
        "train_gan",
        "--flagfile=flags/smoke_gan.cfg",
        f"--model_dir={model_dir}",
    )
    assert out.returncode == 0, out.stderr
    assert "modes covered" in out.stdout and str(model_dir) in out.stdout
    assert "step 20/20" in out.stdout  # plain progress lines when not a TTY
    metrics = json.loads((model_dir / "metrics.json").read_text())
    _check_artifacts(str(model_dir), metrics)
    assert (metrics["d_updates"], metrics["g_updates"]) == (40, 20)
    assert "error" not in out.stderr.lower(), out.stderr


def test_bad_flag_exits_2_with_one_error_line(tmp_path, capfd):
    model_dir = tmp_path / "bad"
    out = cli.in_process(
        capfd,
        "train_gan",
        "--data=ring",
        "--model=dcgan",
        "--train_steps=5",
        f"--model_dir={model_dir}",
    )
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "model=mlp" in lines[0]
    assert not model_dir.exists()
