"""ch5.3 part 2 in the apps: `train_rnn --cell=tcn|wavenet`, `train_autoregressive --model=cvrnn`.

In-process runs on tiny budgets (the C-VRNN's saved model reproduces the reported
bound on the part-1 test bits, the WaveNet's its bits per character), and bad TCN /
WaveNet / VRNN options that write nothing.
"""

import json
import math
import os

import keras
import numpy as np
import pytest

import mp.data
from apps import train_autoregressive, train_rnn
from mp.generative import vrnn, wavenet
from mp.rnn import charlm
from tests.apps import cli


def test_train_rnn_tcn_on_the_adding_problem(tmp_path):
    model_dir = str(tmp_path / "tcn")
    # k = 3, dilations 1, 2, 4: F = 1 + 2*2*7 = 29 < T = 40: a warning, not an error.
    with pytest.warns(UserWarning, match="receptive field"):
        metrics = train_rnn.run(
            model_dir, task="adding", cell="tcn", units=8, num_layers=3, seq_len=40,
            num_test_examples=200, batch_size=32, train_steps=4, log_every=2, seed=1,
            progress=False,
        )
    assert metrics["receptive_field"] == 29 and metrics["dilations"] == [1, 2, 4]
    assert metrics["kernel_size"] == 3 and metrics["test_examples"] == 200
    for name in ("model.keras", "gradient_norms.png", "metrics.json", "flags.cfg"):
        assert os.path.exists(os.path.join(model_dir, name)), name
    with open(os.path.join(model_dir, "flags.cfg")) as f:
        assert "--dilations=1,2,4" in f.read()


def test_train_rnn_recurrent_cell_pixel_by_pixel(tmp_path):
    """A chapter-4 cell reads the digits as 64 steps of one pixel, the TCN's comparison."""
    model_dir = str(tmp_path / "gru")
    metrics = train_rnn.run(
        model_dir, task="seq_digits", cell="gru", units=8, pixel_by_pixel=True, batch_size=32,
        train_steps=3, log_every=3, seed=1, progress=False,
    )
    assert metrics["pixel_by_pixel"] is True and metrics["seq_len"] == 64
    model = keras.models.load_model(os.path.join(model_dir, "model.keras"))
    assert model.get_layer("rnn_1").input.shape == (None, 64, 1)


def test_train_rnn_wavenet_charlm_command_line(tmp_path, capfd):
    text_file = tmp_path / "text.txt"
    text_file.write_text("the cat sat on the mat.\n" * 200, encoding="utf-8")  # 12 characters
    model_dir = tmp_path / "wavenet"
    args = [
        "--task=charlm", "--cell=wavenet", f"--text_file={text_file}", "--units=8",
        "--skip_channels=16", "--num_layers=3", "--seq_len=24", "--sample_length=30",
        "--sample_prompt=the", "--batch_size=8", "--train_steps=20", "--log_every=10",
        "--learning_rate=0.01", "--seed=1",
    ]
    out = cli.in_process(capfd, "train_rnn", *args, f"--model_dir={model_dir}")
    assert out.returncode == 0, out.stderr
    metrics = json.loads((model_dir / "metrics.json").read_text())
    # Dilations 1, 2, 4, kernel 2: F = 2 + 1 + 2 + 4 = 9; 240 held-out characters.
    assert metrics["dilations"] == [1, 2, 4] and metrics["receptive_field"] == 9
    assert metrics["held_out_chars"] == 240 and metrics["chars_scored"] == 240 - 9
    # Uniform guessing over the 12 characters: log2(12) = 3.58 bits; 20 steps learn some.
    assert math.isfinite(metrics["bits_per_char"])
    assert metrics["bits_per_char"] < metrics["uniform_bits_per_char"] == pytest.approx(
        math.log2(12)
    )
    # The saved model scores the held-out text as reported.
    saved = keras.saving.load_model(model_dir / "model.keras")
    vocab = charlm.CharVocab.from_json((model_dir / "vocab.json").read_text())
    held_out = vocab.encode(text_file.read_text(encoding="utf-8"))[-240:]
    bits, _ = wavenet.bits_per_char(saved, held_out, window=240)
    assert metrics["bits_per_char"] == pytest.approx(bits, rel=1e-5)
    # The LSTM's sample format: prompt + 30 characters, three temperatures; timed.
    samples = (model_dir / "samples.txt").read_text(encoding="utf-8")
    for temperature in (0.5, 0.8, 1.0):
        assert f"=== temperature {temperature} ===" in samples
    assert metrics["sample"].startswith("the") and len(metrics["sample"]) == 3 + 30
    assert metrics["sample_seconds"] > 0 and metrics["sample_steps"] == 9 + 3 + 30
    for name in ("gradient_norms.png", "learning_curves.png", "flags.cfg"):
        assert (model_dir / name).exists(), name
    bad = cli.in_process(capfd, "train_rnn", *args, "--dilations=1,0", f"--model_dir={tmp_path}/x")
    lines = bad.stderr.strip().splitlines()
    assert bad.returncode == 2 and len(lines) == 1, bad.stderr
    assert lines[0].startswith("error: dilations must be positive integers")
    assert not (tmp_path / "x").exists()


def test_train_autoregressive_cvrnn_reports_its_bound(tmp_path):
    model_dir = str(tmp_path / "cvrnn")
    metrics = train_autoregressive.run(
        model_dir, model="cvrnn", dataset="digits", hidden_units=["8"], head_units=8,
        latent_dim=2, iwae_k=3, free_bits=0.5, batch_size=32, train_steps=4, log_every=2,
        seed=3, progress=False,
    )
    assert metrics["nll_bound"] == "iwae_3" and metrics["test_images"] == 450
    for name in ("samples.png", "class_styles.png", "model.keras", "metrics.json"):
        assert os.path.exists(os.path.join(model_dir, name)), name
    saved = keras.saving.load_model(os.path.join(model_dir, "model.keras"))
    images, labels = mp.data.load_numpy("digits", "test")
    test_x = vrnn.ImageData(True, labels).evaluation_images(images, "dynamic")
    nll = vrnn.iwae_nll(saved, test_x, 3, seed=3)
    assert metrics["nll_nats"] == pytest.approx(float(np.mean(nll)), rel=1e-5)


@pytest.mark.parametrize(
    "app, kwargs, match",
    [
        (train_rnn, {"cell": "tcn", "dilations": ["1", "0"]}, "dilations must be positive"),
        (train_rnn, {"cell": "tcn", "task": "charlm"}, "cell=tcn reads whole sequences"),
        (train_rnn, {"cell": "gru", "kernel_size": 3}, "kernel_size is for cell=tcn"),
        (train_rnn, {"cell": "gru", "task": "adding", "pixel_by_pixel": True}, "task=seq_"),
        (train_rnn, {"cell": "wavenet"}, "cell=wavenet is a language model: task=charlm"),
        (train_rnn, {"cell": "wavenet", "task": "charlm", "tbptt_steps": 50}, "tbptt_steps is"),
        (train_rnn, {"cell": "wavenet", "task": "charlm", "skip_channels": 0}, "skip_channels"),
        (train_rnn, {"cell": "lstm", "skip_channels": 8}, "skip_channels is for cell=wavenet"),
        (train_autoregressive, {"model": "vrnn", "latent_dim": 0}, "latent_dim"),
        (train_autoregressive, {"model": "stcn"}, "model must be one of"),
        (train_autoregressive, {"model": "made", "free_bits": 1.0}, "free_bits is the VRNNs'"),
    ],
)
def test_bad_options_write_nothing(tmp_path, app, kwargs, match):
    model_dir = tmp_path / "run"
    with pytest.raises(ValueError, match=match):
        app.run(str(model_dir), train_steps=2, progress=False, **kwargs)
    assert not model_dir.exists()
