"""Semi-supervised learning: the labelled subset, the data, where each loss's gradient goes."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mp.training import semi_supervised as ss

INPUT_SHAPE = (8, 8, 1)


def _models(kind="dense", seed=0):
    keras.utils.set_random_seed(seed)
    return ss.autoencoder_classifier(INPUT_SHAPE, 3, kind=kind, code_units=6, hidden_units=16)


def _task(reconstruction_weight=1.0, optimizer=None, kind="dense"):
    encoder, decoder, head = _models(kind)
    task = ss.SemiSupervisedTask(
        encoder,
        decoder,
        head,
        optimizer or keras.optimizers.SGD(0.1),
        reconstruction_weight=reconstruction_weight,
    )
    task.build()
    return task


def _batch(seed=0, labelled=4, unlabelled=6):
    rng = np.random.default_rng(seed)
    x_labelled = rng.normal(size=(labelled, *INPUT_SHAPE)).astype(np.float32)
    y_labelled = rng.integers(0, 3, size=labelled).astype(np.int32)
    x_unlabelled = rng.normal(size=(unlabelled, *INPUT_SHAPE)).astype(np.float32)
    return (tf.constant(x_labelled), tf.constant(y_labelled)), tf.constant(x_unlabelled)


def _weights(model):
    return [v.numpy().copy() for v in model.weights]


# --- labelled_subset ---------------------------------------------------------


def test_labelled_subset_is_stratified_disjoint_and_complete():
    labels = np.repeat(np.arange(4), [7, 9, 5, 11])  # 32 examples, the smallest class has 5
    labelled, unlabelled = ss.labelled_subset(labels, 5, seed=3)
    assert np.bincount(labels[labelled], minlength=4).tolist() == [5, 5, 5, 5]
    assert not set(labelled) & set(unlabelled)
    assert sorted(np.concatenate([labelled, unlabelled]).tolist()) == list(range(32))
    assert np.all(np.diff(labelled) > 0) and np.all(np.diff(unlabelled) > 0)  # sorted, unique


def test_labelled_subset_is_fixed_by_the_seed():
    labels = np.random.default_rng(0).integers(0, 10, size=1000)
    first, _ = ss.labelled_subset(labels, 10, seed=7)
    again, _ = ss.labelled_subset(labels, 10, seed=7)
    other, _ = ss.labelled_subset(labels, 10, seed=8)
    np.testing.assert_array_equal(first, again)
    assert set(first) != set(other)


@pytest.mark.parametrize("per_class", [0, -1, True, 2.5, 6])
def test_labelled_subset_rejects_bad_sizes(per_class):
    labels = np.repeat(np.arange(2), 5)  # 5 per class: 6 is too many
    with pytest.raises(ValueError, match="per_class"):
        ss.labelled_subset(labels, per_class)


# --- data ----------------------------------------------------------------------


def test_batches_draw_labelled_and_unlabelled_from_their_own_sets():
    # Image i is filled with the value i, so a batch tells which examples it holds.
    n = 40
    images = np.broadcast_to(np.arange(n, dtype=np.uint8)[:, None, None, None], (n, 2, 2, 1))
    labels = np.arange(n) % 4
    labelled, unlabelled = ss.labelled_subset(labels, 3, seed=0)
    data = ss.semi_supervised_batches(
        images, labels, labelled, unlabelled, batch_size=4, unlabelled_batch_size=5, seed=1
    )
    baseline = ss.labelled_batches(images, labels, labelled, batch_size=4, seed=1)
    seen_labelled, seen_unlabelled = set(), set()
    for ((x, y), x_u), (x_b, y_b) in zip(data.take(12), baseline.take(12)):
        assert x.shape == (4, 2, 2, 1) and x_u.shape == (5, 2, 2, 1)
        ids = np.round(x.numpy()[:, 0, 0, 0] * 255).astype(int)  # mean 0, std 1: x = id / 255
        np.testing.assert_array_equal(y.numpy(), labels[ids])
        seen_labelled |= set(ids.tolist())
        seen_unlabelled |= set(np.round(x_u.numpy()[:, 0, 0, 0] * 255).astype(int).tolist())
        # The baseline gets the very same labelled batches.
        np.testing.assert_array_equal(x_b.numpy(), x.numpy())
        np.testing.assert_array_equal(y_b.numpy(), y.numpy())
    assert seen_labelled == set(labelled.tolist())  # 12 batches of 4 cover the 12 over and over
    assert seen_unlabelled <= set(unlabelled.tolist()) and len(seen_unlabelled) == 28


def test_skip_batches_resumes_the_same_stream():
    images = np.arange(30, dtype=np.uint8).reshape(30, 1, 1, 1)
    labels = np.arange(30) % 3
    labelled, unlabelled = ss.labelled_subset(labels, 4, seed=0)
    kwargs = dict(batch_size=3, unlabelled_batch_size=4, seed=2, mean=0.5, std=2.0)
    full = list(ss.semi_supervised_batches(images, labels, labelled, unlabelled, **kwargs).take(7))
    resumed = list(
        ss.semi_supervised_batches(
            images, labels, labelled, unlabelled, skip_batches=5, **kwargs
        ).take(2)
    )
    for ((x, y), x_u), ((x_r, y_r), x_u_r) in zip(full[5:], resumed):
        np.testing.assert_array_equal(x.numpy(), x_r.numpy())
        np.testing.assert_array_equal(x_u.numpy(), x_u_r.numpy())
    # Standardised as (x / 255 - mean) / std.
    (x, _), _ = full[0]
    assert np.all(np.isin(np.round((x.numpy() * 2.0 + 0.5) * 255), np.arange(30)))


def test_semi_supervised_data_splits_checks_and_feeds_both_models():
    n = 40
    images = np.broadcast_to(np.arange(n, dtype=np.uint8)[:, None, None, None], (n, 2, 2, 1))
    labels = np.arange(n) % 4
    data = ss.SemiSupervisedData(images, labels, 3, batch_size=4, unlabelled_batch_size=5, seed=1)
    labelled, unlabelled = ss.labelled_subset(labels, 3, seed=1)
    np.testing.assert_array_equal(data.labelled, labelled)
    np.testing.assert_array_equal(data.unlabelled, unlabelled)
    # start_step -> the very batches of the stream functions, from that step on.
    kwargs = dict(batch_size=4, seed=1, skip_batches=2)
    expected = ss.semi_supervised_batches(
        images, labels, labelled, unlabelled, unlabelled_batch_size=5, **kwargs
    )
    for ((x, y), x_u), ((x_e, y_e), x_u_e) in zip(
        data.semi_supervised_data()(2).take(3), expected.take(3)
    ):
        np.testing.assert_array_equal(x.numpy(), x_e.numpy())
        np.testing.assert_array_equal(y.numpy(), y_e.numpy())
        np.testing.assert_array_equal(x_u.numpy(), x_u_e.numpy())
    expected = ss.labelled_batches(images, labels, labelled, **kwargs)
    for (x, y), (x_e, y_e) in zip(data.supervised_data()(2).take(3), expected.take(3)):
        np.testing.assert_array_equal(x.numpy(), x_e.numpy())
        np.testing.assert_array_equal(y.numpy(), y_e.numpy())
    # 12 labelled and 28 unlabelled images: a batch of 13 labelled ones cannot be filled.
    with pytest.raises(ValueError, match="12 labelled and 28 unlabelled images do not fill"):
        ss.SemiSupervisedData(images, labels, 3, batch_size=13, unlabelled_batch_size=5)
    with pytest.raises(ValueError, match="do not fill a batch"):
        ss.SemiSupervisedData(images, labels, 3, batch_size=4, unlabelled_batch_size=29)


def test_make_tasks_start_both_models_from_the_same_weights():
    semi, baseline = ss.make_tasks(
        INPUT_SHAPE,
        3,
        lambda: keras.optimizers.SGD(0.1),
        2.0,
        seed=5,
        clip_norm=1.5,
        kind="dense",
        code_units=6,
        hidden_units=16,
    )
    semi.build()
    baseline.build()
    assert semi.reconstruction_weight == 2.0 and semi.clip_norm == baseline.clip_norm == 1.5
    # The baseline is head(encoder(x)) with the semi-supervised model's initial weights.
    for a, b in zip(_weights(semi.classifier), _weights(baseline.model)):
        np.testing.assert_array_equal(a, b)
    other, _ = ss.make_tasks(
        INPUT_SHAPE, 3, keras.optimizers.SGD, seed=6, kind="dense", code_units=6, hidden_units=16
    )
    other.build()
    assert not np.array_equal(_weights(other.encoder)[0], _weights(semi.encoder)[0])


# --- gradient clipping -----------------------------------------------------------


class _Recording(keras.optimizers.SGD):
    """SGD that records the global norm of the gradient it is handed."""

    def apply_gradients(self, grads_and_vars):
        grads_and_vars = list(grads_and_vars)
        self.norm = float(tf.linalg.global_norm([g for g, _ in grads_and_vars]))
        return super().apply_gradients(grads_and_vars)


@pytest.mark.parametrize("clip_norm", [None, 0.01])
def test_the_optimizer_gets_the_clipped_gradient(clip_norm):
    encoder, decoder, head = _models()
    optimizer = _Recording(0.1)
    task = ss.SemiSupervisedTask(encoder, decoder, head, optimizer, clip_norm=clip_norm)
    task.build()
    outputs = task.train_step(_batch())
    raw = float(outputs["charts/grad_norm"])  # the norm before clipping
    assert raw > 0.1  # far longer than the clip
    np.testing.assert_allclose(optimizer.norm, raw if clip_norm is None else 0.01, rtol=1e-4)


# --- gradients -----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["dense", "conv"])
def test_each_loss_reaches_only_its_own_end(kind):
    task = _task(kind=kind)
    with tf.GradientTape(persistent=True) as tape:
        cross_entropy, reconstruction, _ = task.losses(_batch(), training=True)
    encoder, decoder, head = (
        task.encoder.trainable_variables,
        task.decoder.trainable_variables,
        task.head.trainable_variables,
    )

    def reached(loss, variables):
        grads = tape.gradient(loss, variables)
        return [g is not None and float(tf.reduce_max(tf.abs(g))) > 0 for g in grads]

    # The encoder learns from both losses ...
    assert all(reached(cross_entropy, encoder)) and all(reached(reconstruction, encoder))
    # ... the head from the cross-entropy only, the decoder from the reconstruction only.
    assert all(reached(cross_entropy, head)) and not any(reached(reconstruction, head))
    assert all(reached(reconstruction, decoder)) and not any(reached(cross_entropy, decoder))


def test_unlabelled_images_do_not_touch_the_head():
    task = _task()
    start = [_weights(m) for m in (task.encoder, task.decoder, task.head)]
    labelled, x_unlabelled = _batch(seed=0)
    other_unlabelled = _batch(seed=1)[1]
    after = []
    for x_u in (x_unlabelled, other_unlabelled):
        for model, weights in zip((task.encoder, task.decoder, task.head), start):
            model.set_weights(weights)
        task.train_step((labelled, x_u))  # plain SGD: w <- w - 0.1 * dL/dw
        after.append([_weights(m) for m in (task.encoder, task.decoder, task.head)])
    (enc_a, dec_a, head_a), (enc_b, dec_b, head_b) = after
    for a, b in zip(head_a, head_b):
        np.testing.assert_array_equal(a, b)  # same labelled batch: same head update
    assert any(not np.array_equal(a, b) for a, b in zip(enc_a, enc_b))
    assert any(not np.array_equal(a, b) for a, b in zip(dec_a, dec_b))
    assert any(not np.array_equal(a, b) for a, b in zip(head_a, start[2]))  # it did learn


def _log_softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def test_train_step_loss_is_cross_entropy_plus_weighted_reconstruction():
    task = _task(reconstruction_weight=2.5)
    (x, y), x_u = _batch()
    # Expected values from the models' outputs, before the step changes them.
    logits = task.head(task.encoder(x)).numpy()
    cross_entropy = -_log_softmax(logits)[np.arange(4), y.numpy()].mean()
    images = np.concatenate([x.numpy(), x_u.numpy()])
    x_hat = task.decoder(task.encoder(images)).numpy()
    reconstruction = ((x_hat - images) ** 2).mean()  # over 10 images x 64 pixels
    top1 = np.mean(logits.argmax(axis=1) == y.numpy())
    outputs = task.train_step(((x, y), x_u))
    np.testing.assert_allclose(outputs["loss/cross_entropy"], cross_entropy, rtol=1e-5)
    np.testing.assert_allclose(outputs["loss/reconstruction"], reconstruction, rtol=1e-5)
    np.testing.assert_allclose(
        outputs["loss/total"], cross_entropy + 2.5 * reconstruction, rtol=1e-5
    )
    np.testing.assert_allclose(outputs["metrics/top1"], top1)


def test_eval_step_returns_sums_and_count():
    task = _task()
    (x, y), _ = _batch()
    outputs = task.eval_step((x, y))
    logits = task.classifier(x).numpy()
    np.testing.assert_allclose(
        outputs["loss"], -_log_softmax(logits)[np.arange(4), y.numpy()].sum(), rtol=1e-5
    )
    assert float(outputs["top1"]) == np.sum(logits.argmax(axis=1) == y.numpy())
    assert float(outputs["count"]) == 4


def test_export_saves_the_classifier(tmp_path):
    task = _task(kind="conv")
    (x, _), _ = _batch()
    path = str(tmp_path / "classifier.keras")
    task.export(path)
    reloaded = keras.saving.load_model(path)
    np.testing.assert_allclose(reloaded(x).numpy(), task.classifier(x).numpy(), rtol=1e-5)


def test_builders_check_their_arguments():
    with pytest.raises(ValueError, match="divisible by 4"):
        ss.make_encoder((6, 6, 1), kind="conv")
    with pytest.raises(ValueError, match="kind"):
        ss.make_decoder((8, 8, 1), kind="rnn")
    with pytest.raises(ValueError, match="dropout"):
        ss.make_head(4, 10, dropout=1.0)
    with pytest.raises(ValueError, match="reconstruction_weight"):
        ss.SemiSupervisedTask(None, None, None, None, reconstruction_weight=-1.0)
    decoder = ss.make_decoder((28, 28, 1), kind="conv", code_units=5)
    assert decoder.output_shape == (None, 28, 28, 1)


# --- figures -------------------------------------------------------------------


def test_sweep_figure_draws_curves_and_accuracy_against_labels():
    curves = {
        "semi-supervised": [(10, {"top1": 0.4}), (20, {"top1": 0.6})],
        "supervised only": [(10, {"top1": 0.3}), (20, {"top1": 0.5})],
    }
    accuracies = {"semi-supervised": {3: 0.5, 10: 0.6}, "supervised only": {3: 0.4, 10: 0.5}}
    figure = ss.sweep_figure(curves, accuracies, labels_per_class=10, dataset="digits")
    steps, sweep = figure.axes
    assert [line.get_label() for line in steps.get_lines()] == list(curves)
    np.testing.assert_array_equal(steps.get_lines()[0].get_ydata(), [0.4, 0.6])
    np.testing.assert_array_equal(sweep.get_lines()[1].get_xdata(), [3, 10])
    np.testing.assert_array_equal(sweep.get_lines()[1].get_ydata(), [0.4, 0.5])
    assert steps.get_title() == "digits, 10 labels per class"


def test_reconstructions_figure_shows_images_over_their_reconstructions():
    task = _task(kind="conv")
    images = _batch()[0][0].numpy()
    figure = ss.reconstructions_figure(images, task.encoder, task.decoder, mean=0.5, std=0.25)
    assert len(figure.axes) == 2 * len(images)
    shown = figure.axes[0].get_images()[0].get_array()
    np.testing.assert_allclose(shown, np.clip(images[0, ..., 0] * 0.25 + 0.5, 0, 1))
