"""Tests of mp.cnn.inception: the module, GoogLeNet's layout, the training-only auxiliary heads."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import mp.data
from mp.cnn import get_model
from mp.cnn.inception import (
    GOOGLENET_LAYOUT,
    TASKS,
    InceptionModule,
    InceptionTask,
    googlenet,
    inception,
    inception_small,
    training_model,
)
from mp.engine import Trainer


def _params(model_or_layer):
    return sum(int(np.prod(w.shape)) for w in model_or_layer.trainable_weights)


def _module_params(c, f1, r3, f3, r5, f5, fp):
    """The docstring's formula: 1x1 | 1x1 -> 3x3 | 1x1 -> 5x5 | pool -> 1x1."""
    return (
        (c * f1 + f1)
        + (c * r3 + r3 + 9 * r3 * f3 + f3)
        + (c * r5 + r5 + 25 * r5 * f5 + f5)
        + (c * fp + fp)
    )


# A shallow GoogLeNet for tests of the training machinery: a large graph takes long to trace.
TINY_LAYOUT = (("3a", 8, 4, 8, 2, 4, 4), "pool", ("4a", 8, 4, 8, 2, 4, 4), ("4d", 8, 4, 8, 2, 4, 4))


def _tiny(input_shape=(8, 8, 1), num_classes=10):
    return googlenet(input_shape, num_classes, width=0.25, stem="small", layout=TINY_LAYOUT)


def _inputs(shape, batch=2, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, *shape)).astype("float32")


def test_module_channels_and_parameters_by_hand():
    # Module 3a on 192 channels: f1 64, r3 96, f3 128, r5 16, f5 32, fp 32.
    #   1x1: 192*64+64 = 12,352
    #   3x3: 192*96+96 + 9*96*128+128 = 18,528 + 110,720 = 129,248
    #   5x5: 192*16+16 + 25*16*32+32 = 3,088 + 12,832 = 15,920
    #   pool projection: 192*32+32 = 6,176
    #   total 12,352 + 129,248 + 15,920 + 6,176 = 163,696; channels 64+128+32+32 = 256.
    module = InceptionModule(64, 96, 128, 16, 32, 32)
    y = module(_inputs((28, 28, 192), batch=1))
    assert y.shape == (1, 28, 28, 256)
    assert module.compute_output_shape((None, 28, 28, 192)) == (None, 28, 28, 256)
    assert _params(module) == 163_696 == _module_params(192, 64, 96, 128, 16, 32, 32)


def test_reductions_cut_the_parameters():
    # The same module without 1x1 reductions ("naive", the paper's Figure 2a):
    #   1x1: 12,352; 3x3 on 192 channels: 9*192*128+128 = 221,312;
    #   5x5 on 192 channels: 25*192*32+32 = 153,632; pool branch: no weights.
    #   total 12,352 + 221,312 + 153,632 = 387,296, 2.4 times the 163,696 with reductions;
    #   channels 64 + 128 + 32 + 192 (the pooled input) = 416.
    naive = InceptionModule(64, None, 128, None, 32, None)
    y = naive(_inputs((14, 14, 192), batch=1))
    assert y.shape == (1, 14, 14, 416)
    assert _params(naive) == 387_296
    reduced = InceptionModule(64, 96, 128, 16, 32, 32)
    reduced(keras.Input((14, 14, 192)))
    assert _params(reduced) == 163_696 < _params(naive)


def test_module_equals_keras_layers_with_the_same_weights():
    """The module against the same graph written with Keras layers and copied weights."""
    keras.utils.set_random_seed(0)
    module = InceptionModule(4, 3, 5, 2, 6, 3)
    x = _inputs((9, 9, 7))
    y = module(x)
    relu = dict(padding="same", activation="relu")
    inputs = keras.Input((9, 9, 7))
    b1 = keras.layers.Conv2D(4, 1, **relu)
    r3, c3 = keras.layers.Conv2D(3, 1, **relu), keras.layers.Conv2D(5, 3, **relu)
    r5, c5 = keras.layers.Conv2D(2, 1, **relu), keras.layers.Conv2D(6, 5, **relu)
    proj = keras.layers.Conv2D(3, 1, **relu)
    pooled = keras.layers.MaxPooling2D(3, strides=1, padding="same")(inputs)
    out = keras.layers.Concatenate()([b1(inputs), c3(r3(inputs)), c5(r5(inputs)), proj(pooled)])
    reference = keras.Model(inputs, out)
    for ours, theirs in (
        (module.branch_1x1, b1),
        (module.reduce_3x3, r3),
        (module.branch_3x3, c3),
        (module.reduce_5x5, r5),
        (module.branch_5x5, c5),
        (module.pool_proj, proj),
    ):
        theirs.set_weights(ours.get_weights())
    np.testing.assert_allclose(y, reference(x), rtol=1e-5, atol=1e-6)


def test_module_config_round_trip_and_errors():
    module = InceptionModule(8, None, 16, 4, 8, None, name="m")
    clone = InceptionModule.from_config(module.get_config())
    assert clone.get_config() == module.get_config()
    assert clone.compute_output_shape((None, 5, 5, 3)) == (None, 5, 5, 8 + 16 + 8 + 3)
    with pytest.raises(ValueError, match="Received: filters_1x1=0"):
        InceptionModule(0, 1, 1, 1, 1, 1)
    with pytest.raises(ValueError, match="Received: filters_3x3=None"):
        InceptionModule(1, 1, None, 1, 1, 1)


def test_googlenet_parameters_by_hand():
    # Stem: conv1 7*7*3*64+64 = 9,472; conv2_reduce 64*64+64 = 4,160; conv2 9*64*192+192 =
    # 110,784; together 124,416. Modules (formula above, input channels = previous output):
    # 3a 163,696  3b 388,736  4a 376,176  4b 449,160  4c 510,104  4d 605,376  4e 868,352
    # 5a 1,043,456  5b 1,444,080; together 5,849,136. Logits 1024*1000+1000 = 1,025,000.
    # Total 124,416 + 5,849,136 + 1,025,000 = 6,998,552.
    channels, modules = 192, 0
    for entry in GOOGLENET_LAYOUT:
        if entry != "pool":
            _, f1, r3, f3, r5, f5, fp = entry
            modules += _module_params(channels, f1, r3, f3, r5, f5, fp)
            channels = f1 + f3 + f5 + fp
    assert (modules, channels) == (5_849_136, 1024)
    model = inception((224, 224, 3), 1000)
    assert _params(model) == 124_416 + modules + 1_025_000 == 6_998_552
    # Auxiliary heads (4a: 14x14x512, 4d: 14x14x528 -> avg-pool 5/3 -> 4x4):
    #   aux1 512*128+128 = 65,664; 4*4*128*1024+1024 = 2,098,176; 1024*1000+1000 = 1,025,000
    #        -> 3,188,840
    #   aux2 528*128+128 = 67,712 -> 67,712 + 2,098,176 + 1,025,000 = 3,190,888
    assert _params(training_model(model)) == 6_998_552 + 3_188_840 + 3_190_888
    assert model.get_layer("inception_4e").output.shape == (None, 14, 14, 832)
    assert model.get_layer("inception_5b").output.shape == (None, 7, 7, 1024)
    assert _params(get_model("inception", (224, 224, 3), None)) == 124_416 + modules


def test_output_shapes():
    small = inception_small((28, 28, 1), 10)
    assert small(_inputs((28, 28, 1))).shape == (2, 10)
    assert small.get_layer("inception_4d").output.shape[1:3] == (7, 7)  # 28 -> 14 -> 7
    assert small.get_layer("inception_5b").output.shape[1:3] == (4, 4)  # ceil(7 / 2)
    assert [o.shape for o in training_model(small).outputs] == [(None, 10)] * 3
    assert inception_small((8, 8, 1), 10)(_inputs((8, 8, 1))).shape == (2, 10)
    assert googlenet((28, 28, 1), None, width=0.25, stem="small").output.shape == (None, 256)
    full = inception((224, 224, 3), 1000)
    assert full.output.shape == (None, 1000)
    assert full(_inputs((224, 224, 3), batch=1)).shape == (1, 1000)


def test_aux_heads_only_in_the_training_model():
    model = inception_small((28, 28, 1), 10)
    train = training_model(model)
    names = {layer.name for layer in model.layers}
    train_names = {layer.name for layer in train.layers}
    heads = {f"aux{i}_{part}" for i in (1, 2) for part in ("pool", "conv", "fc", "logits")}
    assert heads <= train_names and not heads & names
    # Shared layers: the training model's first output is the inference model's logits.
    x = _inputs((28, 28, 1))
    logits, aux1, aux2 = train(x, training=False)
    np.testing.assert_allclose(logits, model(x, training=False), rtol=1e-6, atol=1e-6)
    assert not np.allclose(aux1, logits)
    inference_ids = {id(w) for w in model.trainable_weights}
    assert inference_ids < {id(w) for w in train.trainable_weights}
    assert training_model(inception_small((28, 28, 1), 10, aux_heads=False)) is None
    assert training_model(inception_small((28, 28, 1), None)) is None
    with pytest.raises(ValueError, match="Received: aux_after"):
        googlenet((8, 8, 1), 10, stem="small", layout=TINY_LAYOUT[:1])  # no 4a, no 4d


def test_aux_losses_reach_lower_layers_only():
    keras.utils.set_random_seed(0)
    model = inception_small((28, 28, 1), 10)
    x, labels = _inputs((28, 28, 1), batch=4), tf.constant([0, 1, 2, 3])
    with_aux = InceptionTask(model, keras.optimizers.SGD(0.1))
    without = InceptionTask(model, keras.optimizers.SGD(0.1), aux_weight=0.0)
    with_aux.build(), without.build()
    conv1 = model.get_layer("conv1").kernel
    top = model.get_layer("inception_5b").branch_1x1.kernel

    def grads(task):
        with tf.GradientTape() as tape:
            loss, parts, _ = task.compute_losses(x, labels, training=False)
        return loss, parts, tape.gradient(loss, [conv1, top])

    loss, parts, (g_conv1, g_top) = grads(with_aux)
    loss0, parts0, (g0_conv1, g0_top) = grads(without)
    # loss = CE + 0.3 * (aux1 + aux2); the heads sit after 4a and 4d, below 5b.
    expected = parts["loss/cross_entropy"] + 0.3 * (parts["loss/aux1"] + parts["loss/aux2"])
    np.testing.assert_allclose(loss, expected, rtol=1e-6)
    np.testing.assert_allclose(loss0, parts0["loss/cross_entropy"], rtol=1e-6)
    assert np.abs(g_conv1 - g0_conv1).max() > 1e-4 * np.abs(g0_conv1).max()
    np.testing.assert_allclose(g_top, g0_top, rtol=1e-6, atol=1e-9)
    # Inference ignores the heads: eval_step's loss is the main cross-entropy alone.
    sums = with_aux.eval_step((x, labels))
    np.testing.assert_allclose(sums["loss"] / 4, parts["loss/cross_entropy"], rtol=1e-5)


def test_task_trains_with_the_engine_and_exports_the_inference_model(tmp_path):
    keras.utils.set_random_seed(0)
    assert TASKS["inception"] is TASKS["inception_small"] is InceptionTask
    model = _tiny()
    task = InceptionTask(model, keras.optimizers.Adam(1e-3))
    train = mp.data.load(
        "digits", "train", batch_size=32, shuffle=True, seed=0, repeat=True, drop_remainder=True
    )
    trainer = Trainer(task, tmp_path, train_steps=20, log_every=10, progress=False)
    result = trainer.fit(train, mp.data.load("digits", "test", batch_size=450))
    assert {"loss/aux1", "loss/aux2", "loss/cross_entropy"} <= set(result["train"])
    optimizer_vars = len(task.optimizer.variables)
    assert optimizer_vars > len(model.trainable_variables)  # slots for the heads too
    path = str(tmp_path / "model.keras")
    task.export(path)
    loaded = keras.saving.load_model(path)
    x = _inputs((8, 8, 1))
    np.testing.assert_allclose(loaded(x), model(x), rtol=1e-5, atol=1e-6)
    assert not any(layer.name.startswith("aux") for layer in loaded.layers)


def test_keras_fit_with_the_training_model():
    """A student's route: compile the three-output model with loss weights 1, 0.3, 0.3."""
    keras.utils.set_random_seed(0)
    model = _tiny()
    train = training_model(model)
    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    train.compile(keras.optimizers.Adam(1e-3), loss=[ce, ce, ce], loss_weights=[1.0, 0.3, 0.3])
    x, y = mp.data.load_numpy("digits", "train")
    x = x[:256].astype("float32") / 16.0
    y = y[:256]
    before = model(x[:8]).numpy()
    history = train.fit(x, (y, y, y), batch_size=32, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][-1])
    assert not np.allclose(model(x[:8]), before)  # the inference model shares the trained layers


def test_keras_file_round_trip(tmp_path):
    model = inception_small((28, 28, 1), 10)
    path = str(tmp_path / "inception_small.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    x = _inputs((28, 28, 1))
    np.testing.assert_allclose(loaded(x), model(x), rtol=1e-6, atol=1e-6)
    assert isinstance(loaded.get_layer("inception_3a"), InceptionModule)
    assert training_model(loaded) is None  # the file holds the inference model only
