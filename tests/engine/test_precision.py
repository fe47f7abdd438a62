"""Mixed precision (`mp.engine.precision`, `--precision` of every app).

Under a mixed policy the layers compute in 16 bits, while variables, the logits that
reach a loss, and the losses stay float32; mixed_float16 scales the loss; checkpoints
and `model.keras` move between precisions. (tests/conftest.py resets the global policy
to float32 after every test.)
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mp.engine import ClassificationTask, Trainer
from mp.engine import precision as precision_lib
from mp.engine.precision import loss_scaled, precision_scope, set_precision, unscaled
from mp.engine.task import float32, minimize
from tests.conformance.test_conformance import CONFORMANCE, IDS

MIXED = ("mixed_bfloat16", "mixed_float16")
COMPUTE = {"float32": "float32", "mixed_bfloat16": "bfloat16", "mixed_float16": "float16"}
NUM_CLASSES = 3


def _problem(n=256, seed=0):
    """A linearly separable 3-class problem on 8x8 'images'."""
    w = np.random.default_rng(42).normal(size=(64, NUM_CLASSES))
    x = np.random.default_rng(seed).normal(size=(n, 8, 8, 1)).astype("float32")
    return x, np.argmax(x.reshape(n, 64) @ w, axis=1).astype("int32")


def _train_data(start_step):
    """Digits (8x8, 10 classes), the same batches from any step on, as apps resume."""
    import mp.data

    return mp.data.load(
        "digits",
        "train",
        batch_size=32,
        shuffle=True,
        seed=0,
        repeat=True,
        skip_batches=start_step,
        drop_remainder=True,
    )


def _eval_data():
    import mp.data

    return mp.data.load("digits", "test", batch_size=150)


def _digits(n):
    return next(iter(_eval_data().unbatch().batch(n)))


def _model(name):
    keras.utils.set_random_seed(1)
    if name == "mlp":
        from mp.basics import mlp

        return mlp((8, 8, 1), hidden_units=(32,), num_classes=10)
    from mp.cnn import get_model

    return get_model(
        "classic_cnn", (8, 8, 1), 10, filters=(8, 16), kernel_size=3, dense_units=32, dropout=0.0
    )


def _task(name="mlp", learning_rate=3e-3):
    """A classification task whose model and optimizer are made under the current policy."""
    return ClassificationTask(
        lambda: _model(name), lambda: loss_scaled(keras.optimizers.Adam(learning_rate))
    )


def _floats(variables):
    return [v for v in variables if "float" in str(v.dtype)]


# --- the policy ------------------------------------------------------------------------


def test_set_precision_returns_the_previous_policy_and_the_scope_restores_it():
    assert set_precision("mixed_bfloat16") == "float32"
    assert keras.config.dtype_policy().name == "mixed_bfloat16"
    with pytest.raises(RuntimeError), precision_scope("mixed_float16"):
        assert keras.layers.Dense(2).compute_dtype == "float16"
        raise RuntimeError("the policy comes back even so")
    assert precision_lib.current() == "mixed_bfloat16"
    with pytest.raises(ValueError, match="Received: precision='float64'"):
        set_precision("float64")


def test_only_mixed_float16_scales_the_loss():
    adam = keras.optimizers.Adam()
    assert loss_scaled(adam, "float32") is adam and loss_scaled(adam, "mixed_bfloat16") is adam
    scaled = loss_scaled(adam, "mixed_float16")
    assert isinstance(scaled, keras.optimizers.LossScaleOptimizer)
    assert loss_scaled(scaled, "mixed_float16") is scaled  # never twice
    assert unscaled(scaled) is adam and unscaled(adam) is adam
    with precision_scope("mixed_float16"):  # None reads the global policy
        assert isinstance(loss_scaled(keras.optimizers.SGD()), keras.optimizers.LossScaleOptimizer)


# --- what computes in 16 bits and what stays float32 -------------------------------------


def test_mixed_bfloat16_computes_in_bfloat16_but_variables_logits_and_losses_are_float32(
    monkeypatch,
):
    set_precision("mixed_bfloat16")
    task = _task("classic_cnn")
    task.build()
    x, y = _digits(32)
    assert task.model(x).dtype == tf.bfloat16  # the layers compute in bfloat16
    assert {layer.compute_dtype for layer in task.model.layers} == {"bfloat16"}
    assert {v.dtype for v in _floats(task.model.variables)} == {"float32"}
    seen = []
    loss_fn = tf.nn.sparse_softmax_cross_entropy_with_logits

    def spy(labels, logits, **kwargs):
        seen.append(logits.dtype)
        return loss_fn(labels=labels, logits=logits, **kwargs)

    monkeypatch.setattr(tf.nn, "sparse_softmax_cross_entropy_with_logits", spy)
    outputs = task.train_step((x, y))
    results = task.eval_step((x, y))
    assert seen == [tf.float32, tf.float32]  # the logits of the training and evaluation losses
    assert task.predict_logits(x).dtype == tf.float32
    for name, value in (outputs | results).items():
        assert value.dtype == tf.float32, name
    assert {v.dtype for v in _floats(task.optimizer.variables)} == {"float32"}  # Adam's slots


def test_float32_casts_floating_tensors_of_a_nest_only():
    nest = {"a": tf.ones([2], tf.bfloat16), "b": (tf.ones([1], tf.float16), tf.constant([3]))}
    cast = float32(nest)
    assert cast["a"].dtype == cast["b"][0].dtype == tf.float32
    assert cast["b"][1].dtype == tf.int32


@pytest.mark.parametrize("case", CONFORMANCE, ids=IDS)
def test_every_conformance_model_computes_in_bfloat16_with_float32_variables(case):
    _, build, input_shape, _, _ = case
    set_precision("mixed_bfloat16")
    keras.utils.set_random_seed(0)
    model = build()
    x = np.random.default_rng(0).normal(size=(2, *input_shape)).astype("float32")
    with tf.GradientTape() as tape:
        outputs = tf.nest.flatten(model(x, training=True))
        loss = tf.add_n([tf.reduce_sum(tf.cast(o, tf.float32)) for o in outputs])
    gradients = tape.gradient(loss, model.trainable_variables)
    assert {layer.dtype_policy.name for layer in model._flatten_layers()} == {"mixed_bfloat16"}
    assert {v.dtype for v in _floats(model.variables)} == {"float32"}
    assert all(g is not None and g.dtype == tf.float32 for g in gradients)
    assert np.isfinite(loss.numpy())


def _segmentation():
    from mp.cnn.fcn import SegmentationTask, fcn

    model = fcn((8, 8, 1), num_classes=3, filters=(4, 8))
    x = np.random.default_rng(0).uniform(size=(4, 8, 8, 1)).astype("float32")
    y = np.random.default_rng(1).integers(0, 3, size=(4, 8, 8)).astype("int32")
    return SegmentationTask(model, loss_scaled(keras.optimizers.Adam()), 3, clip_norm=1.0), (x, y)


def _regression():
    from mp.rnn.many_to_one import RegressionTask, sequence_model

    model = sequence_model("lstm", units=4, output_units=1, input_shape=(5, 2))
    x = np.random.default_rng(0).normal(size=(4, 5, 2)).astype("float32")
    return RegressionTask(model, loss_scaled(keras.optimizers.Adam())), (x, np.ones(4, "float32"))


def _tbptt():
    from mp.rnn.charlm import language_model
    from mp.rnn.tbptt import TBPTTTask

    ids = np.random.default_rng(0).integers(0, 7, size=(4, 6)).astype("int32")
    model = language_model(7, units=4, embedding_dim=3)
    task = TBPTTTask(model, loss_scaled(keras.optimizers.Adam()), batch_size=4, clip_norm=1.0)
    return task, (ids[:, :5], ids[:, 1:])


def _vae():
    from mp.generative.vae import VAETask, make_vae

    model = make_vae((8, 8, 1), 2, hidden_units=(8,))
    x = (np.random.default_rng(0).uniform(size=(4, 8, 8, 1)) > 0.5).astype("float32")
    return VAETask(model, loss_scaled(keras.optimizers.Adam())), x


def _gan():
    from mp.generative.gan import GANTask, make_gan

    task = GANTask(
        lambda: make_gan("mlp", 2, (2,), hidden_units=(8,)),
        loss_scaled(keras.optimizers.Adam()),
        loss_scaled(keras.optimizers.Adam()),
    )
    return task, np.random.default_rng(0).normal(size=(4, 2)).astype("float32")


def _semi_supervised():
    from mp.training import semi_supervised

    semi, _ = semi_supervised.make_tasks(
        (8, 8, 1), 3, lambda: loss_scaled(keras.optimizers.Adam()), code_units=4, filters=(2, 4)
    )
    x, y = _problem(8)
    return semi, ((x[:4], y[:4]), x[4:])


def _multitask():
    from mp.training import multitask

    weights = {"a": 1.0, "b": 0.5}
    task = multitask.make_task(
        (8, 8, 1), {"a": 3, "b": 2}, weights, loss_scaled(keras.optimizers.Adam()), units=8
    )
    x, y = _problem(4)
    return task, (x, {"a": y, "b": y % 2})


TASKS = {
    "segmentation": _segmentation,
    "regression": _regression,
    "tbptt": _tbptt,
    "vae": _vae,
    "gan": _gan,
    "semi_supervised": _semi_supervised,
    "multitask": _multitask,
}


@pytest.mark.parametrize("precision", MIXED)
@pytest.mark.parametrize("name", list(TASKS))
def test_every_engine_task_keeps_logits_and_losses_float32(monkeypatch, name, precision):
    set_precision(precision)
    seen = []
    loss_fn = tf.nn.sparse_softmax_cross_entropy_with_logits

    def spy(labels, logits, **kwargs):
        seen.append(logits.dtype)
        return loss_fn(labels=labels, logits=logits, **kwargs)

    monkeypatch.setattr(tf.nn, "sparse_softmax_cross_entropy_with_logits", spy)
    keras.utils.set_random_seed(0)
    task, batch = TASKS[name]()
    task.global_step = tf.Variable(0, dtype=tf.int64)
    task.build()
    before = [v.numpy().copy() for v in _trainable(task)]
    eval_batch = batch[0] if name == "semi_supervised" else batch
    for _ in range(4):  # float16: a first step may overflow at the initial loss scale 2^15
        outputs = task.train_step(batch)
        results = task.eval_step(eval_batch)
        for key, value in (outputs | results).items():
            assert value.dtype == tf.float32, key
            # An overflow shows as an infinite gradient norm; that update is skipped.
            skipped = key == "charts/grad_norm" and precision == "mixed_float16"
            assert skipped or np.isfinite(value.numpy()).all(), key
    assert set(seen) <= {tf.float32}
    assert any(not np.array_equal(b, v.numpy()) for b, v in zip(before, _trainable(task)))
    for item in task.checkpoint_items().values():  # the checkpoint holds no loss scale
        assert not isinstance(item, keras.optimizers.LossScaleOptimizer)


def _trainable(task):
    if hasattr(task, "gan"):
        return task.gan.generator.trainable_variables + task.gan.discriminator.trainable_variables
    return getattr(task, "trainable_variables", None) or task.model.trainable_variables


# --- training and resuming ---------------------------------------------------------------


@pytest.mark.parametrize("model", ["mlp", "classic_cnn"])
@pytest.mark.parametrize("precision", precision_lib.PRECISIONS)
def test_a_tiny_classification_run_trains_under_each_precision(tmp_path, model, precision):
    set_precision(precision)
    task = _task(model)
    trainer = Trainer(task, tmp_path, train_steps=60, log_every=20, progress=False)
    before = trainer.evaluate(_eval_data())
    result = trainer.fit(_train_data, _eval_data())
    losses = [outputs["loss/total"] for _, outputs in trainer.history["train"]]
    assert losses[-1] < 0.7 * losses[0], losses
    assert result["eval"]["loss"] < 0.7 * before["loss"]
    assert result["eval"]["top1"] > 0.6
    assert task.model.layers[-1].compute_dtype == COMPUTE[precision]
    scaled = isinstance(task.optimizer, keras.optimizers.LossScaleOptimizer)
    assert scaled == (precision == "mixed_float16")


@pytest.mark.parametrize(
    "first, then",
    [
        ("float32", "mixed_bfloat16"),
        ("mixed_bfloat16", "float32"),
        ("float32", "mixed_float16"),
        ("mixed_float16", "mixed_bfloat16"),
    ],
)
def test_a_checkpoint_and_model_keras_move_across_precisions(tmp_path, first, then):
    x, _ = _digits(16)
    set_precision(first)
    task = _task("classic_cnn")
    trainer = Trainer(task, tmp_path / "run", train_steps=20, log_every=10, progress=False)
    trainer.fit(_train_data, _eval_data())
    weights = [v.numpy() for v in task.model.weights]
    slots = [v.numpy() for v in unscaled(task.optimizer).variables]
    predictions = task.model(x).numpy()
    task.export(str(tmp_path / "model.keras"))

    set_precision(then)
    resumed = _task("classic_cnn")
    trainer = Trainer(resumed, tmp_path / "run", train_steps=40, log_every=10, progress=False)
    assert trainer.resumed_from_step == 20
    assert resumed.model.layers[-1].compute_dtype == COMPUTE[then]
    for saved, restored in zip(weights, resumed.model.weights):  # float32 in both: exact
        np.testing.assert_array_equal(saved, restored.numpy())
    for saved, restored in zip(slots, unscaled(resumed.optimizer).variables):
        np.testing.assert_array_equal(saved, restored.numpy())
    result = trainer.fit(_train_data, _eval_data())
    assert result["global_step"] == 40 and np.isfinite(result["eval"]["loss"])
    assert result["eval"]["top1"] > 0.6

    # model.keras computes in the precision it was saved with, whatever the policy now.
    loaded = keras.saving.load_model(str(tmp_path / "model.keras"))
    assert loaded.layers[-1].compute_dtype == COMPUTE[first]
    for saved, restored in zip(weights, loaded.weights):
        np.testing.assert_array_equal(saved, restored.numpy())
    np.testing.assert_array_equal(loaded(x).numpy(), predictions)


# --- loss scaling -------------------------------------------------------------------------


def _dense_step(precision, *, scale_loss, clip_norm=None, factor=1e-8):
    """One SGD step of a Dense layer on `factor * sum(outputs)`; returns (update, grad_norm).

    dL/dy = factor for every output, so dL/dW = factor * sum_b x_b (the same for each
    column of W). 1e-8 is below float16's smallest subnormal (6e-8): unscaled, the
    gradient that reaches the float16 layer is 0.
    """
    with precision_scope(precision):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
        optimizer = keras.optimizers.SGD(1e4)
        if scale_loss:
            optimizer = loss_scaled(optimizer, "mixed_float16")
        optimizer.build(model.trainable_variables)
        x = np.random.default_rng(0).uniform(1.0, 2.0, size=(8, 4)).astype("float32")
        kernel = model.layers[0].kernel
        before = kernel.numpy()
        with tf.GradientTape() as tape:
            loss = factor * tf.reduce_sum(float32(model(x)))
        grad_norm = minimize(optimizer, tape, loss, model.trainable_variables, clip_norm)
        return kernel.numpy() - before, float(grad_norm), x


def test_mixed_float16_scales_the_loss_and_applies_unscaled_gradients():
    expected, norm, x = _dense_step("float32", scale_loss=False)
    # SGD: W <- W - lr * dL/dW with dL/dW[i, j] = 1e-8 * sum_b x[b, i], lr = 1e4.
    np.testing.assert_allclose(expected, -1e-4 * np.tile(x.sum(0)[:, None], (1, 3)), rtol=1e-3)
    scaled, scaled_norm, _ = _dense_step("mixed_float16", scale_loss=True)
    np.testing.assert_allclose(scaled, expected, rtol=1e-2)  # unscaled before the update
    np.testing.assert_allclose(scaled_norm, norm, rtol=1e-2)  # the norm reported is unscaled
    unscaled_update, _, _ = _dense_step("mixed_float16", scale_loss=False)
    np.testing.assert_array_equal(unscaled_update, 0.0)  # underflow: why the loss is scaled


def test_mixed_float16_clips_the_unscaled_gradient():
    # The gradient's norm is about 4e-7 (12 kernel entries near 1e-8 * 12, 3 biases of
    # 1e-8 * 8): clip it to a tenth.
    _, norm, _ = _dense_step("float32", scale_loss=False)
    clipped, clipped_norm, _ = _dense_step("float32", scale_loss=False, clip_norm=norm / 10)
    scaled, scaled_norm, _ = _dense_step("mixed_float16", scale_loss=True, clip_norm=norm / 10)
    np.testing.assert_allclose(scaled, clipped, rtol=1e-2)
    np.testing.assert_allclose(scaled_norm, clipped_norm, rtol=1e-2)


@pytest.mark.parametrize("precision", MIXED)
def test_the_package_optimizers_keep_float32_slots(precision):
    from mp.training import optimizers

    set_precision(precision)
    model = _model("mlp")
    for name in optimizers.UPDATE_RULES:
        optimizer = loss_scaled(optimizers.get(name, 1e-3))
        optimizer.build(model.trainable_variables)
        x, y = _digits(8)
        with tf.GradientTape() as tape:
            logits = float32(model(x, training=True))
            loss = tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
            )
        minimize(optimizer, tape, loss, model.trainable_variables)
        assert {v.dtype for v in _floats(unscaled(optimizer).variables)} == {"float32"}, name
        assert all(np.isfinite(v.numpy()).all() for v in model.trainable_variables), name


# --- the runner ---------------------------------------------------------------------------


def test_the_runner_sets_the_policy_for_its_run_only(tmp_path):
    from apps import train_mlp

    tiny = dict(hidden_units=["8"], batch_size=16, train_steps=4, log_every=2, progress=False)
    for precision in ("mixed_float16", "float32"):
        model_dir = tmp_path / precision
        set_precision("mixed_bfloat16")  # e.g. a notebook's own choice, put back afterwards
        train_mlp.run(str(model_dir), precision=precision, optimizer_impl="mp", **tiny)
        assert precision_lib.current() == "mixed_bfloat16"
        assert f"--precision={precision}\n" in (model_dir / "flags.cfg").read_text()
        set_precision("float32")
        model = keras.saving.load_model(str(model_dir / "model.keras"))
        assert model.layers[-1].compute_dtype == COMPUTE[precision]
