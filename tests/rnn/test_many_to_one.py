"""Tests of mp.rnn.many_to_one: the many-to-one sequence model and its regression Task."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mp.rnn.data import adding_problem
from mp.rnn.many_to_one import RegressionTask, sequence_model


def test_sequence_model_parameter_count_and_shape():
    model = sequence_model("lstm", units=8, num_layers=2, output_units=3, input_shape=(5, 2))
    # LSTM layer: 4 gates x (D x u + u x u + u): 4 (2*8 + 8*8 + 8) = 352 and
    # 4 (8*8 + 8*8 + 8) = 544; readout 8*3 + 3 = 27; total 923.
    assert model.count_params() == 352 + 544 + 27
    assert model(np.zeros((4, 5, 2), np.float32)).shape == (4, 3)
    assert [layer.name for layer in model.layers[1:]] == ["rnn_1", "rnn_2", "readout"]


def test_sequence_model_reads_the_last_step_of_a_vanilla_rnn():
    rng = np.random.default_rng(0)
    model = sequence_model("rnn", units=4, output_units=2, input_shape=(6, 3))
    x = rng.normal(size=(2, 6, 3)).astype(np.float32)
    kernel, recurrent, bias = [w.numpy() for w in model.get_layer("rnn_1").cell.weights]
    w_hy, b_y = [w.numpy() for w in model.get_layer("readout").weights]
    h = np.zeros((2, 4))
    for t in range(6):  # h_t = tanh(W_xh x_t + W_hh h_{t-1} + b), row-vector form
        h = np.tanh(x[:, t] @ kernel + h @ recurrent + bias)
    np.testing.assert_allclose(model(x).numpy(), h @ w_hy + b_y, rtol=1e-5, atol=1e-5)


def test_pixel_by_pixel_reads_one_pixel_per_step():
    """The same weights on (T, D) pixel by pixel equal the row model on (T * D, 1)."""
    pixels = sequence_model("gru", units=4, output_units=3, input_shape=(5, 2), pixel_by_pixel=True)
    rows = sequence_model("gru", units=4, output_units=3, input_shape=(10, 1))
    rows.set_weights(pixels.get_weights())
    assert pixels.get_layer("rnn_1").input.shape == (None, 10, 1)
    x = np.random.default_rng(0).normal(size=(2, 5, 2)).astype(np.float32)
    np.testing.assert_allclose(pixels(x).numpy(), rows(x.reshape(2, 10, 1)).numpy(), rtol=1e-6)
    # Pixel order is row-major: swapping two pixels of one row changes the output.
    swapped = x.copy()
    swapped[:, 0, [0, 1]] = swapped[:, 0, [1, 0]]
    assert not np.allclose(pixels(x).numpy(), pixels(swapped).numpy())


def test_sequence_model_rejects_unknown_cell():
    with pytest.raises(ValueError, match="cell"):
        sequence_model("transformer", units=4, output_units=1, input_shape=(3, 1))


def test_regression_task_reports_the_mean_squared_error():
    model = sequence_model("gru", units=4, output_units=1, input_shape=(7, 2))
    task = RegressionTask(model, keras.optimizers.SGD(0.0))
    task.build()
    x, y = adding_problem(16, 7, seed=2)
    predictions = model(x).numpy()[:, 0]
    expected = np.mean((predictions - y) ** 2)
    outputs = task.train_step((tf.constant(x), tf.constant(y)))  # lr 0: weights unchanged
    assert float(outputs["loss/mse"]) == pytest.approx(expected, rel=1e-5)
    sums = task.eval_step((tf.constant(x), tf.constant(y)))
    assert float(sums["mse"]) == pytest.approx(16 * expected, rel=1e-5)
    assert float(sums["count"]) == 16


def test_regression_task_learns_a_linear_target():
    # y = sum of the values at every step: a linear function an RNN can fit.
    model = sequence_model("lstm", units=8, output_units=1, input_shape=(4, 1))
    task = RegressionTask(model, keras.optimizers.Adam(0.02), clip_norm=1.0)
    task.build()
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(64, 4, 1)).astype(np.float32)
    y = x.sum(axis=(1, 2))
    step = tf.function(task.train_step)
    losses = [float(step((x, y))["loss/mse"]) for _ in range(150)]
    assert losses[-1] < 0.1 * losses[0]


def test_regression_task_charts_the_learning_rate_and_gradient_norm():
    # One replica: the charts are the optimizer's rate and the global norm of dL/dW before
    # clipping, ||g|| = sqrt(sum_w ||dL/dw||^2), computed here with a tape of our own.
    model = sequence_model("rnn", units=3, output_units=1, input_shape=(4, 2))
    task = RegressionTask(model, keras.optimizers.SGD(0.25), clip_norm=100.0)
    task.build()
    x, y = adding_problem(8, 4, seed=3)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(model(x)[:, 0] - y))
    norm = tf.linalg.global_norm(tape.gradient(loss, model.trainable_variables))
    outputs = task.train_step((tf.constant(x), tf.constant(y)))
    assert float(outputs["charts/learning_rate"]) == pytest.approx(0.25)
    assert float(outputs["charts/grad_norm"]) == pytest.approx(float(norm), rel=1e-5)
