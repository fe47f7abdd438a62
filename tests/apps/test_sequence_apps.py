"""ch5.3 part 2 in the apps: `train_rnn --cell=tcn` and `train_autoregressive --model=cvrnn`.

In-process runs on tiny budgets (the C-VRNN's saved model reproduces the reported
bound on the part-1 test bits), and bad TCN / VRNN options that write nothing.
"""

import os

import keras
import numpy as np
import pytest

import mp.data
from apps import train_autoregressive, train_rnn
from mp.generative import vrnn


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
