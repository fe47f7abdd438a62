"""The app contract (CONVENTIONS section 4) of train_rnn.

In-process `run(...)` on tiny budgets for each kind of task, bad input that stops before
anything is written, and one subprocess run with flags/smoke_rnn.cfg."""

import inspect
import json
import math
import os

import keras
import numpy as np
import pytest

from apps import train_rnn
from mp.rnn import charlm, data
from mp.rnn.problems import CharLM
from tests.apps import cli

ARTIFACTS = (
    "flags.cfg",
    "ckpt",
    "train",
    "model.keras",
    "history.json",
    "learning_curves.png",
    "gradient_norms.png",
    "metrics.json",
)
TINY = dict(units=8, batch_size=16, train_steps=6, log_every=3, checkpoint_every=6, seed=1)


def _check_artifacts(model_dir, metrics, extra=()):
    for name in ARTIFACTS + tuple(extra):
        assert os.path.exists(os.path.join(model_dir, name)), name
    with open(os.path.join(model_dir, "metrics.json")) as f:
        assert json.load(f) == json.loads(json.dumps(metrics))
    assert metrics["global_step"] == TINY["train_steps"]
    assert metrics["wall_seconds"] > 0


def test_adding_in_process(tmp_path):
    model_dir = str(tmp_path / "adding")
    metrics = train_rnn.run(
        model_dir,
        task="adding",
        cell="lstm",
        seq_len=10,
        num_test_examples=100,
        **TINY,
        eval_every=3,
        progress=False,
    )
    _check_artifacts(model_dir, metrics, extra=("eval",))
    # The saved model on the same test set gives the reported MSE; the
    # baseline is the constant prediction 1 on that set.
    x, y = data.adding_problem(100, 10, seed=1)
    model = keras.saving.load_model(os.path.join(model_dir, "model.keras"))
    predictions = model.predict(x, verbose=0)[:, 0]
    assert math.isfinite(metrics["test_mse"])
    assert metrics["test_mse"] == pytest.approx(np.mean((predictions - y) ** 2), rel=1e-4)
    assert metrics["baseline_mse"] == pytest.approx(np.mean((y - 1.0) ** 2), rel=1e-6)
    assert metrics["seq_len"] == 10 and metrics["test_examples"] == 100
    assert "--cell=lstm" in (tmp_path / "adding" / "flags.cfg").read_text()


def test_seq_digits_in_process(tmp_path):
    model_dir = str(tmp_path / "digits")
    metrics = train_rnn.run(model_dir, task="seq_digits", cell="gru", **TINY, progress=False)
    _check_artifacts(model_dir, metrics, extra=("eval",))
    # The saved model reads the 8 rows of each 8x8 test digit: its accuracy is the metric.
    x, labels = next(iter(data.sequential_images("digits", "test", batch_size=1000)))
    model = keras.saving.load_model(os.path.join(model_dir, "model.keras"))
    assert model.input_shape == (None, 8, 8)
    accuracy = np.mean(np.argmax(model.predict(x, verbose=0), axis=-1) == labels.numpy())
    assert metrics["test_accuracy"] == pytest.approx(accuracy)
    assert metrics["chance_accuracy"] == pytest.approx(0.1)


def _small_text(tmp_path):
    # A repetitive text over 12 characters: a few dozen steps learn much of it.
    path = tmp_path / "text.txt"
    path.write_text("the cat sat on the mat.\n" * 400, encoding="utf-8")
    return str(path)


def test_charlm_in_process(tmp_path):
    text_file = _small_text(tmp_path)
    model_dir = str(tmp_path / "charlm")
    metrics = train_rnn.run(
        model_dir,
        task="charlm",
        cell="lstm",
        text_file=text_file,
        seq_len=12,
        tbptt_steps=12,
        sample_length=40,
        temperature=0.7,
        sample_prompt="the",
        **(TINY | dict(units=32, batch_size=8, train_steps=60, log_every=20, learning_rate=0.01)),
        progress=False,
    )
    for name in ARTIFACTS + ("samples.txt", "vocab.json"):
        assert os.path.exists(os.path.join(model_dir, name)), name
    text = open(text_file, encoding="utf-8").read()
    vocab = charlm.CharVocab.from_json(open(os.path.join(model_dir, "vocab.json")).read())
    assert vocab.chars == charlm.CharVocab.from_text(text).chars
    # 12 distinct characters: a model that learned nothing scores log2(12) = 3.58 bits.
    assert metrics["uniform_bits_per_char"] == pytest.approx(math.log2(12))
    assert math.isfinite(metrics["bits_per_char"])
    assert metrics["bits_per_char"] < metrics["uniform_bits_per_char"]
    samples = open(os.path.join(model_dir, "samples.txt"), encoding="utf-8").read()
    for temperature in (0.5, 0.7, 1.0):
        assert f"=== temperature {temperature} ===" in samples
    assert metrics["sample"].startswith("the") and len(metrics["sample"]) == 43  # prompt + 40
    assert metrics["held_out_chars"] == int(len(text) * CharLM.HELD_OUT_FRACTION)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"task": "parity"}, ValueError, "task must be one of"),
        ({"cell": "transformer"}, ValueError, "cell must be one of"),
        ({"seq_len": 1}, ValueError, "seq_len must be an integer >= 2"),
        ({"tbptt_steps": 0}, ValueError, "tbptt_steps must be a positive integer"),
        ({"task": "charlm", "temperature": 0.0}, ValueError, "temperature must be positive"),
        ({"task": "charlm", "text_file": "/nonexistent/t.txt"}, FileNotFoundError, "not exist"),
        ({"task": "charlm", "text_file": "EMPTY"}, ValueError, "empty"),
        ({"text_file": "EMPTY"}, ValueError, "for task=charlm only"),
        ({"task": "charlm", "text_file": "SMALL", "sample_prompt": "Z"}, ValueError, "vocabulary"),
        ({"task": "charlm", "text_file": "SMALL", "tbptt_steps": 500}, ValueError, "too short"),
        ({"augment": True}, ValueError, "cannot honour --augment=True"),
        # A flag the task does not use is refused, never ignored.
        ({"dataset": "fashion_mnist"}, ValueError, "cannot honour --dataset=fashion_mnist"),
        ({"num_test_examples": 50, "task": "seq_digits"}, ValueError, "for task=adding only"),
        ({"sample_length": 20}, ValueError, "sample_length is for task=charlm only"),
        ({"data_dir": "/tmp"}, ValueError, "data_dir is for task=seq_fashion_mnist/seq_digits"),
        ({"task": "charlm", "text_file": "SMALL", "eval_every": 3}, ValueError, "eval_every"),
    ],
)
def test_bad_input_writes_nothing(tmp_path, kwargs, error, match):
    if kwargs.get("text_file") == "EMPTY":
        (tmp_path / "empty.txt").write_text("")
        kwargs = kwargs | {"text_file": str(tmp_path / "empty.txt")}
    if kwargs.get("text_file") == "SMALL":
        kwargs = kwargs | {"text_file": _small_text(tmp_path)}
    model_dir = tmp_path / "run"
    with pytest.raises(error, match=match):
        train_rnn.run(str(model_dir), **(TINY | kwargs), progress=False)
    assert not model_dir.exists()


def test_flag_values_are_the_arguments_of_run():
    # flag_values() reads the app's own flags and the shared ones it honours; run() takes
    # each own flag by name and the shared ones as keywords.
    own = set(inspect.signature(train_rnn.run).parameters) - {"model_dir", "progress", "shared"}
    assert set(train_rnn.APP.own) == own
    supported = set(train_rnn.APP.supported)
    assert set(train_rnn.flag_values()) == own | supported
    assert {"dataset", "augment", "validation_fraction"}.isdisjoint(supported)
    assert all(name in train_rnn.flags.FLAGS for name in own | supported)


def test_flags_cfg_records_the_task_options_it_used(tmp_path):
    model_dir = tmp_path / "adding"
    train_rnn.run(str(model_dir), seq_len=4, num_test_examples=20, **TINY, progress=False)
    flags_cfg = (model_dir / "flags.cfg").read_text().splitlines()
    assert "--seq_len=4" in flags_cfg and "--num_test_examples=20" in flags_cfg
    assert not any(line.startswith(("--tbptt_steps", "--temperature")) for line in flags_cfg)
    assert not any(line.startswith(("--dataset", "--augment")) for line in flags_cfg)


def test_smoke_flagfile_subprocess(tmp_path):
    model_dir = tmp_path / "smoke"
    out = cli.in_subprocess(
        "train_rnn",
        "--flagfile=flags/smoke_rnn.cfg",
        f"--model_dir={model_dir}",
    )
    assert out.returncode == 0, out.stderr
    assert "test_mse" in out.stdout and str(model_dir) in out.stdout
    metrics = json.loads((model_dir / "metrics.json").read_text())
    for name in ARTIFACTS:
        assert (model_dir / name).exists(), name
    assert {"test_mse", "baseline_mse", "global_step", "wall_seconds"} <= set(metrics)
    assert out.stderr.strip() == "", out.stderr


def test_bad_flag_exits_2_with_one_error_line(tmp_path, capfd):
    model_dir = tmp_path / "bad"
    out = cli.in_process(
        capfd,
        "train_rnn",
        "--flagfile=flags/smoke_rnn.cfg",
        f"--model_dir={model_dir}",
        "--seq_len=1",
    )
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: seq_len must be"), out.stderr
    assert not model_dir.exists()
