"""Tests of mp.rnn.problems: the chapter's problems as objects, without the app or absl."""

import json
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from mp.engine import ClassificationTask, Trainer
from mp.rnn import charlm, problems
from mp.rnn.data import adding_problem, sequential_images
from mp.rnn.many_to_one import RegressionTask
from mp.rnn.tbptt import TBPTTTask, dominant_eigenvalue, gradient_norms

TEXT = "the cat sat on the mat.\n" * 200  # 4,800 characters over 12 distinct ones


def _text_file(tmp_path, text=TEXT):
    path = tmp_path / "text.txt"
    path.write_text(text, encoding="utf-8")
    return str(path)


# --- the adding problem --------------------------------------------------------------


def test_adding_problem_data_model_task_and_options():
    problem = problems.AddingProblem(seq_len=6, num_test_examples=30, batch_size=8, seed=4)
    assert problem.name == "adding"
    assert problem.options == {"seq_len": 6, "num_test_examples": 30}
    assert problem.steps_per_epoch == 10_000 // 8  # an epoch is 10,000 fresh sequences
    x, y = adding_problem(30, 6, seed=4)  # the test set is the seed's fixed set
    np.testing.assert_array_equal(np.concatenate([b[0] for b in problem.eval_data]), x)
    first = next(iter(problem.train_data(0)))
    assert first[0].shape == (8, 6, 2)
    np.testing.assert_array_equal(  # resuming at step 1 gives the batch of step 1
        next(iter(problem.train_data(1)))[0], list(problem.train_data(0).take(2))[1][0]
    )
    model = problem.build_model("gru", units=4, num_layers=2)
    assert model.input_shape == (None, 6, 2) and model.output_shape == (None, 1)
    assert isinstance(problem.task(model, keras.optimizers.SGD(0.1)), RegressionTask)
    np.testing.assert_array_equal(problem.gradient_inputs(model), x)  # 30 < 64 examples


def test_adding_problem_report_and_baseline():
    problem = problems.AddingProblem(seq_len=5, num_test_examples=40, seed=1)
    metrics, files = problem.report(None, {"mse": 0.05, "count": 40.0})
    _, y = adding_problem(40, 5, seed=1)
    # The constant prediction 1 on the same test set: mean (y - 1)^2 (about 1/6).
    assert metrics["baseline_mse"] == pytest.approx(np.mean((y.astype(np.float64) - 1) ** 2))
    assert metrics | {"baseline_mse": 0} == {
        "seq_len": 5,
        "test_mse": 0.05,
        "baseline_mse": 0,
        "test_examples": 40.0,
    }
    assert files == {}
    baseline = metrics["baseline_mse"]
    assert problem.summary(metrics) == f"test_mse 0.0500, baseline_mse {baseline:.4f}"


# --- images read row by row --------------------------------------------------------------


def test_sequential_digits_problem():
    problem = problems.SequentialImages("digits", batch_size=32, seed=2)
    assert problem.name == "seq_digits" and problem.options == {}
    assert problem.input_shape == (8, 8) and problem.output_units == 10
    x, labels = next(iter(problem.eval_data))
    reference, reference_labels = next(iter(sequential_images("digits", "test", batch_size=500)))
    np.testing.assert_array_equal(x, reference)
    np.testing.assert_array_equal(labels, reference_labels)
    np.testing.assert_allclose(problem.gradient_inputs(None), reference[:64], atol=1e-7)
    assert next(iter(problem.train_data(0)))[0].shape == (32, 8, 8)
    model = problem.build_model("lstm", units=4)
    assert isinstance(problem.task(model, keras.optimizers.SGD(0.1)), ClassificationTask)
    metrics, files = problem.report(model, {"top1": 0.5, "loss": 1.2, "count": 100.0})
    assert metrics == {
        "dataset": "digits",
        "seq_len": 8,
        "test_accuracy": 0.5,
        "test_loss": 1.2,
        "test_examples": 100.0,
        "chance_accuracy": 0.1,
    }
    assert files == {}


def test_sequential_images_refuse_a_batch_larger_than_the_training_split():
    with pytest.raises(ValueError, match="exceeds the .* training examples of digits"):
        problems.SequentialImages("digits", batch_size=100_000)


# --- the character language model -------------------------------------------------------


def test_charlm_problem_splits_primes_and_measures(tmp_path):
    problem = problems.CharLM(
        _text_file(tmp_path), seq_len=10, tbptt_steps=6, sample_length=7, batch_size=4, seed=3
    )
    # The last 5% of 4,800 characters (240) is held out; the rest trains.
    assert len(problem.test_ids) == 240 and len(problem.train_ids) == 4_560
    # The priming is the training text's last characters, cut after a line break.
    assert problem.priming.endswith("mat.\n") and len(problem.priming) <= 1000
    assert TEXT[:4_560].endswith(problem.priming)
    # Streams of (4,560 - 1) // 4 = 1,139 ids: 1,139 // 6 = 189 segments each.
    assert problem.steps_per_epoch == 189
    assert problem.eval_streams == 4  # min(batch, (240 - 1) // 6 = 39)
    assert problem.window_ids.shape == (24, 10)  # min(64, 240 // 10) windows of seq_len
    model = problem.build_model("gru", units=8)
    assert model.vocab_size == 12
    assert isinstance(problem.task(model, keras.optimizers.SGD(0.1)), TBPTTTask)
    np.testing.assert_allclose(
        problem.gradient_inputs(model), model.embedding(problem.window_ids).numpy()
    )


def test_charlm_report_scores_samples_and_files(tmp_path):
    problem = problems.CharLM(
        _text_file(tmp_path),
        seq_len=10,
        tbptt_steps=6,
        sample_length=9,
        temperature=0.7,
        sample_prompt="the",
        batch_size=4,
        seed=5,
    )
    keras.utils.set_random_seed(0)
    model = problem.build_model("lstm", units=8)
    metrics, files = problem.report(model, None, "runs/x")
    assert metrics["bits_per_char"] == pytest.approx(
        charlm.bits_per_char(model, problem.test_ids, batch_size=4, segment_length=6)
    )
    assert metrics["uniform_bits_per_char"] == pytest.approx(math.log2(12))
    assert metrics["sample"] == problem.sample(model)  # at temperature 0.7, seeded
    assert metrics["sample"].startswith("the") and len(metrics["sample"]) == 3 + 9
    assert metrics["sample_temperature"] == 0.7 and metrics["tbptt_steps"] == 6
    assert json.loads(files["vocab.json"]) == {"chars": "".join(problem.vocab.chars)}
    samples = files["samples.txt"]
    assert samples.startswith("# 3 samples of 9 characters from runs/x")
    for temperature in (0.5, 0.7, 1.0):
        assert f"=== temperature {temperature} ===\n" in samples
    assert problem.summary(metrics) == f"bits_per_char {metrics['bits_per_char']:.4f}"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"sample_prompt": "Z"}, "vocabulary"),
        ({"tbptt_steps": 2_000}, "too short"),
        ({"seq_len": 500}, "held-out .* too short"),  # 240 held-out characters
        ({"temperature": 0.0}, "temperature must be positive"),
        ({"seq_len": 1}, "seq_len must be an integer >= 2"),
    ],
)
def test_charlm_refuses_what_does_not_fit(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        problems.CharLM(_text_file(tmp_path), **({"batch_size": 4} | kwargs))


def test_charlm_runs_on_one_replica_only(tmp_path, monkeypatch):
    problem = problems.CharLM(_text_file(tmp_path), seq_len=10, tbptt_steps=6, batch_size=4)
    model = problem.build_model("rnn", units=4)

    class TwoReplicas:  # the strategy in scope, as MirroredStrategy over two devices says
        num_replicas_in_sync = 2

    monkeypatch.setattr(tf.distribute, "get_strategy", TwoReplicas)
    with pytest.raises(ValueError, match="one replica only"):
        problem.task(model, keras.optimizers.SGD(0.1))


# --- make_problem ----------------------------------------------------------------------


def test_make_problem_by_task_name(tmp_path):
    assert isinstance(problems.make_problem("adding", seq_len=4), problems.AddingProblem)
    digits = problems.make_problem("seq_digits", data_dir=None, batch_size=16)
    assert isinstance(digits, problems.SequentialImages) and digits.dataset == "digits"
    lm = problems.make_problem("charlm", text_file=_text_file(tmp_path), tbptt_steps=5)
    assert lm.tbptt_steps == 5 and lm.seq_len == 100  # None or absent: the task's default
    assert problems.TASKS == ("adding", "seq_fashion_mnist", "seq_digits", "charlm")


@pytest.mark.parametrize(
    "task, options, match",
    [
        ("parity", {}, "task must be one of adding, seq_fashion_mnist, seq_digits, charlm"),
        ("adding", {"text_file": "t.txt"}, r"text_file is for task=charlm only.*'adding'"),
        ("adding", {"data_dir": "d"}, "data_dir is for task=seq_fashion_mnist/seq_digits only"),
        ("seq_digits", {"seq_len": 50}, "seq_len is for task=adding/charlm only"),
        # Values are checked before which task reads them.
        ("adding", {"tbptt_steps": 0}, "tbptt_steps must be a positive integer"),
        ("adding", {"num_test_examples": 2.5}, "num_test_examples must be a positive integer"),
    ],
)
def test_make_problem_refuses(task, options, match):
    with pytest.raises(ValueError, match=match):
        problems.make_problem(task, **options)


# --- gradient norms and figures --------------------------------------------------------


def test_gradient_norms_before_and_after_with_the_vanilla_eigenvalue():
    problem = problems.AddingProblem(seq_len=5, num_test_examples=10)
    keras.utils.set_random_seed(0)
    model = problem.build_model("rnn", units=4)
    norms = problems.GradientNorms(problem.gradient_inputs(model))
    cell = model.get_layer("rnn_1").cell
    before = norms.measure(model, "initial")
    np.testing.assert_allclose(before, gradient_norms(cell, problem.x_test))
    cell.recurrent_kernel.assign(0.5 * cell.recurrent_kernel)
    after = norms.measure(model, "halved W_hh")
    assert list(norms.curves) == ["initial", "halved W_hh"] and after.shape == (5,)
    assert norms.eigenvalues["halved W_hh"] == pytest.approx(
        dominant_eigenvalue(cell.recurrent_kernel)
    )
    assert problems.GradientNorms.first_to_last(np.array([1.0, 4.0])) == 0.25
    assert problems.GradientNorms.first_to_last(np.array([1.0, 0.0])) is None
    assert len(norms.figure("a title").axes[0].get_lines()) == 2
    gated = problem.build_model("lstm", units=4)
    problems.GradientNorms(problem.gradient_inputs(gated)).measure(gated, "lstm")
    assert "lstm" not in norms.eigenvalues  # only the vanilla RNN has one W_hh to show


def test_learning_curves_figure_draws_train_test_and_baseline():
    history = {
        "train": [(1, {"loss/mse": 0.3}), (2, {"loss/mse": 0.2})],
        "eval": [(2, {"mse": 0.25})],
    }
    figure = problems.AddingProblem(seq_len=4, num_test_examples=5).learning_curves_figure(history)
    labels = [line.get_label() for line in figure.axes[0].get_lines()]
    assert labels == ["train", "test", "baseline 0.167"]


def test_a_notebook_trains_a_problem_with_the_engine(tmp_path):
    # The module docstring's recipe, on a tiny budget.
    problem = problems.AddingProblem(seq_len=4, num_test_examples=20, batch_size=8)
    model = problem.build_model("lstm", units=4)
    task = problem.task(model, keras.optimizers.Adam(1e-2), clip_norm=1.0)
    trainer = Trainer(task, str(tmp_path / "run"), train_steps=3, progress=False)
    result = trainer.fit(problem.train_data, problem.eval_data)
    metrics, _ = problem.report(model, result["eval"])
    predictions = model.predict(problem.x_test, verbose=0)[:, 0]
    assert metrics["test_mse"] == pytest.approx(np.mean((predictions - problem.y_test) ** 2))
