"""Tests of mp.rnn.tbptt: segmenting, truncated BPTT, gradient norms, eigenvalues."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from mp.engine import Trainer
from mp.rnn.cells import CELLS, make_cell
from mp.rnn.charlm import language_model
from mp.rnn.tbptt import (
    TBPTTTask,
    dominant_eigenvalue,
    gradient_norms,
    plot_gradient_norms,
    segment_dataset,
)


def _batches(data, start, count):
    return [(x.numpy(), y.numpy()) for x, y in data(start).take(count)]


# --- segment_dataset -----------------------------------------------------------


def test_segment_dataset_order():
    # ids 0..39 are their own positions. 39 (input, target) pairs over B = 3 streams:
    # stride 39 // 3 = 13, segments 13 // 4 = 3 of k = 4; stream b starts at 13 b.
    ids = np.arange(40)
    data = segment_dataset(ids, batch_size=3, segment_length=4)
    assert data.segments_per_epoch == 3
    batches = _batches(data, 0, 7)
    for step, (x, y) in enumerate(batches):
        assert x.dtype == np.int32 and y.dtype == np.int32 and x.shape == (3, 4)
        segment = step % 3
        expected = 13 * np.arange(3)[:, None] + 4 * segment + np.arange(4)[None, :]
        np.testing.assert_array_equal(x, expected)
        np.testing.assert_array_equal(y, x + 1)  # targets: the inputs shifted by one
    for (x0, y0), (x1, _) in zip(batches[:2], batches[1:3]):
        # Stream b's next segment starts where its previous one ended.
        np.testing.assert_array_equal(x1[:, 0], y0[:, -1])
    # Resuming at step 5 gives the batches a run from step 0 had at steps 5 and 6.
    for (x, y), (x_ref, y_ref) in zip(_batches(data, 5, 2), batches[5:7]):
        np.testing.assert_array_equal(x, x_ref)
        np.testing.assert_array_equal(y, y_ref)


def test_segment_dataset_rejects_short_stream_and_bad_sizes():
    with pytest.raises(ValueError, match="too short"):
        segment_dataset(np.arange(12), batch_size=3, segment_length=4)  # needs 3 * 4 + 1 ids
    with pytest.raises(ValueError, match="segment_length"):
        segment_dataset(np.arange(100), batch_size=3, segment_length=0)


# --- truncated BPTT ------------------------------------------------------------


def _task(vocab_size, learning_rate, *, cell="lstm", num_layers=2, batch_size=2, clip_norm=None):
    keras.utils.set_random_seed(0)
    model = language_model(vocab_size, cell=cell, units=8, num_layers=num_layers, embedding_dim=4)
    task = TBPTTTask(
        model,
        keras.optimizers.SGD(learning_rate),
        batch_size=batch_size,
        clip_norm=clip_norm,
    )
    task.global_step = tf.Variable(0, dtype=tf.int64)
    task.build()
    return task


@pytest.mark.parametrize("cell", CELLS)
def test_tbptt_carries_state_across_segments(cell):
    # Weights frozen (learning rate 0): segment 2 after segment 1 must give exactly what one
    # pass over segments 1 + 2 gives for its last 5 steps.
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 7, size=(2, 11)).astype(np.int32)
    task = _task(7, 0.0, cell=cell)
    x1, y1, x2, y2 = ids[:, 0:5], ids[:, 1:6], ids[:, 5:10], ids[:, 6:11]
    task.train_step((x1, y1))
    loss_2 = task.train_step((x2, y2))["loss/total"]

    logits, final_state = task.model(ids[:, :10], return_state=True)
    cross_entropy = tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=ids[:, 1:11], logits=logits
    )
    np.testing.assert_allclose(loss_2, tf.reduce_mean(cross_entropy[:, 5:]), rtol=1e-5)
    assert len(task.state.train) == len(final_state)
    for variable, expected in zip(task.state.train, final_state):
        np.testing.assert_allclose(variable.numpy(), expected.numpy(), rtol=1e-5, atol=1e-6)


def test_gradient_stops_at_segment_border():
    # Segment 1 only uses ids {0, 1}, segment 2 only ids {2, 3}. With plain SGD an embedding
    # row moves by -lr * gradient, so rows 0 and 1 staying put in the segment-2 step means the
    # segment-2 loss has no gradient into segment 1. Full BPTT over both segments has one.
    rng = np.random.default_rng(1)
    seg1 = rng.integers(0, 2, size=(2, 6)).astype(np.int32)
    seg2 = rng.integers(2, 4, size=(2, 6)).astype(np.int32)
    task = _task(4, 1.0)
    task.train_step((seg1[:, :5], seg1[:, 1:]))
    embeddings = task.model.embedding.embeddings
    before = embeddings.numpy()
    task.train_step((seg2[:, :5], seg2[:, 1:]))
    after = embeddings.numpy()
    np.testing.assert_array_equal(after[:2], before[:2])
    assert np.abs(after[2:] - before[2:]).max() > 1e-4  # segment 2's own rows do learn

    # Full BPTT: one pass over segments 1 + 2, loss on segment 2's predictions only.
    inputs = np.concatenate([seg1[:, :5], seg2[:, :5]], axis=1)
    targets = np.concatenate([seg1[:, 1:], seg2[:, 1:]], axis=1)
    with tf.GradientTape() as tape:
        logits = task.model(inputs)
        cross_entropy = tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=targets, logits=logits
        )
        loss_2 = tf.reduce_mean(cross_entropy[:, 5:])
    gradient = tf.convert_to_tensor(tape.gradient(loss_2, embeddings))
    assert np.abs(gradient.numpy()[:2]).max() > 1e-6


def test_clip_by_global_norm_and_logged_norm():
    # With SGD at lr 1 the update is -g, so after clipping ||update|| over all variables is
    # min(||g||, clip_norm) = clip_norm (the gradient norm at initialisation is above 0.05).
    rng = np.random.default_rng(2)
    ids = rng.integers(0, 5, size=(2, 6)).astype(np.int32)
    task = _task(5, 1.0, clip_norm=0.05)
    variables = task.model.trainable_variables
    before = [v.numpy() for v in variables]
    with tf.GradientTape() as tape:
        logits = task.model(ids[:, :5])
        loss = tf.reduce_mean(
            tf.nn.sparse_softmax_cross_entropy_with_logits(labels=ids[:, 1:], logits=logits)
        )
    # Dense gradients: the embedding's IndexedSlices repeat a row per occurrence of an id.
    expected_norm = tf.linalg.global_norm(
        [tf.convert_to_tensor(g) for g in tape.gradient(loss, variables)]
    )
    outputs = task.train_step((ids[:, :5], ids[:, 1:]))
    np.testing.assert_allclose(outputs["charts/grad_norm"], expected_norm, rtol=1e-5)
    np.testing.assert_allclose(outputs["metrics/bits_per_char"], loss / math.log(2), rtol=1e-6)
    step = math.sqrt(sum(np.sum((v.numpy() - b) ** 2) for v, b in zip(variables, before)))
    assert float(expected_norm) > 0.1
    np.testing.assert_allclose(step, 0.05, rtol=1e-4)


def _repetitive_ids():
    text = "the cat sat on the mat. " * 30  # 720 characters, 12 distinct
    chars = sorted(set(text))
    return np.array([chars.index(c) for c in text]), len(chars)


def test_tbptt_trains_on_stream_longer_than_a_segment(tmp_path):
    ids, vocab_size = _repetitive_ids()
    data = segment_dataset(ids, batch_size=4, segment_length=20)
    assert data.segments_per_epoch == 8  # (719 // 4) // 20: each stream spans 8 segments
    keras.utils.set_random_seed(0)
    task = TBPTTTask(
        lambda: language_model(vocab_size, cell="lstm", units=32, embedding_dim=8),
        lambda: keras.optimizers.Adam(1e-2),
        batch_size=4,
        clip_norm=1.0,
    )
    trainer = Trainer(task, tmp_path, train_steps=200, log_every=50, progress=False)
    result = trainer.fit(data, data(0).take(data.segments_per_epoch))
    first_loss = trainer.history["train"][0][1]["loss/total"]
    # Uniform guessing costs ln 12 = 2.48 nats; the text is deterministic after a few chars.
    assert result["eval"]["loss"] < 0.1 * math.log(vocab_size) < first_loss
    assert result["eval"]["count"] == 8 * 4 * 20


def test_resumed_run_restores_the_carried_state(tmp_path):
    ids, vocab_size = _repetitive_ids()
    data = segment_dataset(ids, batch_size=2, segment_length=10)

    def make_trainer(steps):
        keras.utils.set_random_seed(0)
        task = TBPTTTask(
            lambda: language_model(vocab_size, cell="gru", units=8, embedding_dim=4),
            lambda: keras.optimizers.Adam(1e-2),
            batch_size=2,
        )
        return task, Trainer(task, tmp_path, train_steps=steps, log_every=3, progress=False)

    task, trainer = make_trainer(3)
    trainer.fit(data)
    saved = [v.numpy() for v in task.state.train]
    assert np.abs(saved[0]).max() > 0
    task, trainer = make_trainer(6)
    assert trainer.resumed_from_step == 3
    for variable, value in zip(task.state.train, saved):
        np.testing.assert_array_equal(variable.numpy(), value)


def test_evaluation_resets_and_carries_its_own_state(tmp_path):
    # Evaluations at steps 2 and 4, then the final one, again at step 4: each must score the
    # eval stream from the zero state with the state carried, as bits_per_char does.
    from mp.rnn.charlm import bits_per_char

    ids, vocab_size = _repetitive_ids()
    data = segment_dataset(ids, batch_size=2, segment_length=10)
    segments = data.segments_per_epoch
    keras.utils.set_random_seed(0)
    task = TBPTTTask(
        lambda: language_model(vocab_size, cell="lstm", units=8, embedding_dim=4),
        lambda: keras.optimizers.Adam(1e-2),
        batch_size=2,
        eval_segments=segments,
    )
    trainer = Trainer(task, tmp_path, train_steps=4, log_every=2, eval_every=2, progress=False)
    result = trainer.fit(data, data(0).take(segments))
    expected = bits_per_char(task.model, ids, batch_size=2, segment_length=10)
    assert [step for step, _ in trainer.history["eval"]] == [2, 4]
    assert result["eval"]["bits_per_char"] == pytest.approx(expected, rel=1e-5)
    assert trainer.history["eval"][-1][1]["bits_per_char"] == pytest.approx(expected, rel=1e-5)
    assert result["eval"]["count"] == segments * 2 * 10  # one pass: segments * B * k


def test_tbptt_task_rejects_bad_arguments():
    with pytest.raises(ValueError, match="clip_norm"):
        TBPTTTask(None, None, batch_size=2, clip_norm=0.0)
    with pytest.raises(ValueError, match="batch_size"):
        TBPTTTask(None, None, batch_size=0)


# --- vanishing gradients -------------------------------------------------------


def test_gradient_norms_match_a_hand_written_backward_pass():
    # h_t = tanh(x_t K + h_{t-1} U + b) (Keras' row convention), L = sum_b h_3[b] . c.
    # Backward: dL/dh_3 = c; dL/dh_{t-1} = (dL/dh_t * (1 - h_t^2)) U^T.
    keras.utils.set_random_seed(3)
    cell = make_cell("rnn", 4)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 3, 3)).astype(np.float32)
    cell.build((None, 3))
    cell.bias.assign(rng.normal(size=4).astype(np.float32))
    c = rng.normal(size=4).astype(np.float32)
    norms = gradient_norms(cell, x, loss_fn=lambda h: tf.reduce_sum(h * c, axis=-1))

    kernel, recurrent, bias = (v.numpy().astype(np.float64) for v in cell.weights)
    h = [np.zeros((2, 4))]
    for t in range(3):
        h.append(np.tanh(x[:, t] @ kernel + h[-1] @ recurrent + bias))
    grads = [np.tile(c.astype(np.float64), (2, 1))]  # dL/dh_3
    for t in (3, 2):
        grads.insert(0, (grads[0] * (1 - h[t] ** 2)) @ recurrent.T)  # dL/dh_{t-1}
    expected = [np.linalg.norm(g, axis=-1).mean() for g in grads]
    np.testing.assert_allclose(norms, expected, rtol=1e-5)


def test_vanilla_rnn_gradient_vanishes_lstm_much_less():
    # Spectral radius 0.5 and |tanh'| <= 1: ||dL/dh_1|| / ||dL/dh_T|| shrinks roughly like
    # 0.5^(T-1) = 0.5^29 ~ 2e-9 for the vanilla RNN. The LSTM's cell path scales it by the
    # forget gates instead (about sigmoid(1) = 0.73 per step at initialisation).
    steps = 30
    x = np.random.default_rng(4).normal(size=(8, steps, 4)).astype(np.float32)
    keras.utils.set_random_seed(4)
    rnn = make_cell("rnn", 16)
    rnn.build((None, 4))
    recurrent = rnn.recurrent_kernel.numpy()
    rnn.recurrent_kernel.assign(recurrent * 0.5 / dominant_eigenvalue(recurrent))
    assert dominant_eigenvalue(rnn.recurrent_kernel) == pytest.approx(0.5, rel=1e-5)
    lstm = make_cell("lstm", 16)
    rnn_norms, lstm_norms = gradient_norms(rnn, x), gradient_norms(lstm, x)
    rnn_ratio = rnn_norms[0] / rnn_norms[-1]
    lstm_ratio = lstm_norms[0] / lstm_norms[-1]
    # Measured with this seed: rnn_ratio 2.3e-12, lstm_ratio 2.7e-4.
    assert rnn_ratio < 1e-8
    assert lstm_ratio > 1e-5
    assert lstm_ratio > 1e6 * rnn_ratio


def test_dominant_eigenvalue():
    # r * rotation(theta) has eigenvalues r e^{+-i theta}: spectral radius r = 0.9.
    theta = 0.7
    rotation = 0.9 * np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    assert dominant_eigenvalue(rotation) == pytest.approx(0.9, rel=1e-12)
    # [[0, 2], [0.5, 0]]: lambda^2 = 2 * 0.5 = 1, so lambda = +-1 (the norm of the matrix is 2).
    assert dominant_eigenvalue([[0.0, 2.0], [0.5, 0.0]]) == pytest.approx(1.0, rel=1e-12)
    matrix = np.random.default_rng(5).normal(size=(6, 6))
    assert dominant_eigenvalue(tf.constant(matrix)) == pytest.approx(
        np.abs(np.linalg.eigvals(matrix)).max(), rel=1e-12
    )
    with pytest.raises(ValueError, match="square"):
        dominant_eigenvalue(np.zeros((2, 3)))


def test_plot_gradient_norms(tmp_path):
    path = tmp_path / "norms.png"
    curves = {"rnn": 0.5 ** np.arange(10.0)[::-1], "lstm": np.ones(10)}
    fig = plot_gradient_norms(curves, path, eigenvalues={"rnn": 0.5})
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["rnn, $|\\lambda|_{max}(W_{hh})$ = 0.50", "lstm"]
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
