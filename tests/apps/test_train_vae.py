"""The app contract (CONVENTIONS section 4) of train_vae.

In-process `run(...)` on a tiny budget (the saved model reproduces the reported bound), one
subprocess run with flags/smoke_vae.cfg, and bad input that exits 2 before writing anything."""

import inspect
import json
import os

import keras
import numpy as np
import pytest

import mp.data
from apps import train_vae
from mp.generative import vae
from tests.apps import cli

ARTIFACTS = (
    "flags.cfg",
    "ckpt",
    "train",
    "eval",
    "model.keras",
    "reconstructions.png",
    "samples_mean.png",
    "samples.png",
    "latent.png",
    "learning_curves.png",
    "history.json",
    "metrics.json",
)
TINY = dict(
    dataset="digits",
    hidden_units=["8"],
    filters=["2", "4"],
    batch_size=32,
    train_steps=10,
    log_every=5,
    eval_every=5,
    iwae_k=30,
    iwae_examples=12,
    fid=False,
    seed=3,
    progress=False,
)


def _check_artifacts(model_dir, metrics):
    for name in ARTIFACTS:
        assert os.path.exists(os.path.join(model_dir, name)), name
    with open(os.path.join(model_dir, "metrics.json")) as f:
        assert json.load(f) == json.loads(json.dumps(metrics))
    for key in ("elbo", "rate", "distortion", "nll_nats", "iwae_k", "global_step", "wall_seconds"):
        assert key in metrics


def test_run_in_process_and_the_saved_model_reproduces_the_bound(tmp_path):
    model_dir = str(tmp_path / "run")
    metrics = train_vae.run(model_dir, model="conv", latent_dim=3, **TINY)
    _check_artifacts(model_dir, metrics)
    assert metrics["global_step"] == 10 and metrics["iwae_k"] == 30
    assert metrics["elbo"] == pytest.approx(-(metrics["rate"] + metrics["distortion"]), rel=1e-5)
    # The bound is computed with stateless seeds: the saved model, on the same binarised
    # test images, gives the same number.
    model = keras.saving.load_model(os.path.join(model_dir, "model.keras"))
    images, _ = mp.data.load_numpy("digits", "test")
    x = vae.evaluation_images(images, "dynamic")[:12]
    bounds = vae.iwae_bounds(model, x, 30, seed=3)
    assert metrics["nll_nats"] == pytest.approx(-bounds.mean(), rel=1e-5)
    assert "--model=conv" in (tmp_path / "run" / "flags.cfg").read_text()
    # Resuming in the same directory continues from the saved step.
    again = train_vae.run(model_dir, model="conv", latent_dim=3, **(TINY | {"train_steps": 15}))
    assert again["resumed_from_step"] == 10 and again["global_step"] == 15


def test_fid_scores_means_true_samples_and_the_real_floor(tmp_path, tiny_fid_cache):
    from mp.generative import fid

    model_dir = str(tmp_path / "run")
    metrics = train_vae.run(
        model_dir, **(TINY | dict(fid=True, fid_samples=60, fid_cache_dir=tiny_fid_cache))
    )
    _check_artifacts(model_dir, metrics)
    assert metrics["fid_samples"] == 60
    assert os.listdir(tiny_fid_cache)  # the classifier went to the given cache
    for key in ("fid_classifier", "fid_classifier_true_samples"):
        assert np.isfinite(metrics[key]) and metrics[key] > metrics["fid_real_floor"] > 0
    # The decoder means are scored against the test split, as is the floor.
    model = keras.saving.load_model(os.path.join(model_dir, "model.keras"))
    means = model.sample(60, seed=TINY["seed"], mean=True).numpy()
    expected = fid.fid_classifier(means, "digits", cache_dir=tiny_fid_cache)
    assert metrics["fid_classifier"] == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"model": "mlp"}, "model must be one of"),
        ({"likelihood": "poisson"}, "likelihood must be one of"),
        ({"filters": ["4"]}, "filters must be 2 positive integers"),
        ({"binarize": "none"}, "likelihood=bernoulli is a distribution over 0/1 pixels"),
        ({"hidden_units": ["8", "x"]}, "hidden_units must be integers"),
        ({"latent_dim": 0}, "latent_dim must be a positive integer"),
        ({"iwae_k": 0}, "iwae_k must be a positive integer"),
        ({"likelihood": "gaussian"}, "binarize=none"),
        ({"augment": True}, "cannot honour --augment"),
        ({"batch_size": 5000}, "exceeds"),
    ],
)
def test_bad_input_writes_nothing(tmp_path, kwargs, match):
    model_dir = tmp_path / "run"
    with pytest.raises(ValueError, match=match):
        train_vae.run(str(model_dir), **(TINY | kwargs))
    assert not model_dir.exists()


def test_flag_values_are_the_arguments_of_run():
    own = set(inspect.signature(train_vae.run).parameters) - {"model_dir", "progress", "shared"}
    assert own == set(train_vae.APP.own)
    assert set(train_vae.flag_values()) == own | set(train_vae.APP.supported)
    assert not set(train_vae.APP.refuses) & set(train_vae.flag_values())


def test_smoke_flagfile_subprocess(tmp_path):
    model_dir = tmp_path / "smoke"
    out = cli.in_subprocess(
        "train_vae",
        "--flagfile=flags/smoke_vae.cfg",
        f"--model_dir={model_dir}",
    )
    assert out.returncode == 0, out.stderr
    assert "test ELBO" in out.stdout and str(model_dir) in out.stdout
    assert "step 20/20" in out.stdout  # plain progress lines when not a TTY
    metrics = json.loads((model_dir / "metrics.json").read_text())
    _check_artifacts(str(model_dir), metrics)
    assert metrics["iwae_k"] == 20 and "fid_classifier" not in metrics
    assert out.stderr.strip() == "", out.stderr


def test_bad_flag_exits_2_with_one_error_line(tmp_path, capfd):
    model_dir = tmp_path / "bad"
    out = cli.in_process(capfd, "train_vae", "--model=mlp", f"--model_dir={model_dir}")
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "model" in lines[0]
    assert not model_dir.exists()
