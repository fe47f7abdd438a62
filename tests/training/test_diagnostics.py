"""Tests of mp.training.diagnostics: dead ReLU counts and gradient norms."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import mp.data
from mp.training import activations, initializers
from mp.training.diagnostics import (
    dead_relu_fraction,
    gradient_norms,
    is_relu_layer,
    per_layer_gradient_norms,
)

RNG = np.random.default_rng(0)


def _inputs(n=50, d=6):
    return RNG.uniform(-1, 1, size=(n, d)).astype(np.float32)


def _relu_mlp():
    """6 -> dense1 (8, relu) -> dense2 (4) -> ReLU layer of the package -> keras ReLU (no-op) -> 3."""
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(8, activation="relu", name="dense1"),
            keras.layers.Dense(4, name="dense2"),
            activations.get("relu", name="relu2"),
            keras.layers.Dense(5, name="dense3"),
            keras.layers.ReLU(name="relu3"),
            keras.layers.Dense(3, name="logits"),
        ]
    )


def _kill(layer, units):
    """A bias of -1000 makes `units` negative for every input in [-1, 1]^d (|w^T x| < 10 here)."""
    bias = layer.bias.numpy()
    bias[list(units)] = -1000.0
    layer.bias.assign(bias)


def test_finds_relu_layers():
    model = _relu_mlp()
    assert [layer.name for layer in model.layers if is_relu_layer(layer)] == [
        "dense1",
        "relu2",
        "relu3",
    ]
    assert not is_relu_layer(keras.layers.LeakyReLU())
    assert not is_relu_layer(activations.get("leaky_relu"))
    assert is_relu_layer(keras.layers.Activation("relu"))
    assert is_relu_layer(keras.layers.Conv2D(3, 3, activation="relu"))


def test_forced_dead_units_are_counted_exactly():
    model = _relu_mlp()
    x = _inputs()
    before = dead_relu_fraction(model, x)
    assert before == {"dense1": 0.0, "relu2": 0.0, "relu3": 0.0, "all": 0.0}

    _kill(model.get_layer("dense1"), [0, 3, 5])
    _kill(model.get_layer("dense2"), [2])
    _kill(model.get_layer("dense3"), [0, 1])
    result = dead_relu_fraction(model, x, batch_size=7)  # 50 = 7 * 7 + 1: a short last batch
    # 3 of 8, 1 of 4, 2 of 5; pooled (3 + 1 + 2) / (8 + 4 + 5) = 6 / 17.
    assert result == {"dense1": 3 / 8, "relu2": 1 / 4, "relu3": 2 / 5, "all": 6 / 17}


def test_a_unit_that_fires_on_one_example_is_alive():
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((2,)), keras.layers.Dense(3, activation="relu", name="dense")]
    )
    # Unit 0: x0 - 0.5, positive only where x0 > 0.5; unit 1: always dead; unit 2: x1 (alive).
    model.layers[0].kernel.assign([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    model.layers[0].bias.assign([-0.5, -1.0, 0.0])
    x = np.zeros((20, 2), np.float32)
    x[:, 1] = 1.0
    x[13, 0] = 0.75  # the one example where unit 0 fires (0.75 - 0.5 = 0.25 > 0)
    assert dead_relu_fraction(model, x, batch_size=4) == {"dense": 1 / 3, "all": 1 / 3}
    x[13, 0] = 0.0  # without it, unit 0 is dead as well
    assert dead_relu_fraction(model, x, batch_size=4) == {"dense": 2 / 3, "all": 2 / 3}


def test_dataset_input_and_functional_conv_model():
    # Conv units are channels: a channel is dead only if it is 0 at every position of every image.
    keras.utils.set_random_seed(0)
    images = keras.Input((5, 5, 2))
    h = keras.layers.Conv2D(6, 3, activation="relu", name="conv")(images)
    logits = keras.layers.Dense(2)(keras.layers.Flatten()(h))
    model = keras.Model(images, logits)
    _kill(model.get_layer("conv"), [1, 4])
    x = RNG.uniform(-1, 1, size=(30, 5, 5, 2)).astype(np.float32)
    y = np.zeros(30, np.int64)
    expected = {"conv": 2 / 6, "all": 2 / 6}
    assert dead_relu_fraction(model, x) == expected
    assert (
        dead_relu_fraction(model, tf.data.Dataset.from_tensor_slices((x, y)).batch(8)) == expected
    )
    assert dead_relu_fraction(model, tf.data.Dataset.from_tensor_slices(x).batch(8)) == expected
    assert dead_relu_fraction(model, tf.constant(x)) == expected


def test_models_without_relu_or_without_inputs():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="tanh")])
    assert dead_relu_fraction(model, np.ones((2, 3), np.float32)) == {"all": 0.0}

    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(4, activation="relu")

        def call(self, x):
            return self.dense(x)

    subclassed = Subclassed()
    subclassed(np.ones((2, 3), np.float32))
    with pytest.raises(ValueError, match="functional or Sequential"):
        dead_relu_fraction(subclassed, np.ones((2, 3), np.float32))
    with pytest.raises(ValueError, match="Received: batch_size=0"):
        dead_relu_fraction(model, np.ones((2, 3), np.float32), batch_size=0)
    with pytest.raises(ValueError, match="at least one example"):
        dead_relu_fraction(_relu_mlp(), np.ones((0, 6), np.float32))


# ------------------------------------------------------------------ gradients


def test_gradient_norms_equal_a_manual_tape():
    model = _relu_mlp()
    x = _inputs(32)
    y = RNG.integers(0, 3, size=32)
    with tf.GradientTape() as tape:
        logits = model(x)
        loss = tf.reduce_mean(
            tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
        )
    grads = tape.gradient(loss, model.trainable_variables)
    expected = {v.path: float(tf.norm(g)) for v, g in zip(model.trainable_variables, grads)}

    norms = gradient_norms(model, x, y)
    assert list(norms) == list(expected)  # one entry per variable, e.g. "sequential/dense1/kernel"
    np.testing.assert_allclose(list(norms.values()), list(expected.values()), rtol=1e-6)
    assert all(value > 0 for value in norms.values())

    layers = per_layer_gradient_norms(model, x, y)
    assert list(layers) == [f"{model.name}/{n}" for n in ("dense1", "dense2", "dense3", "logits")]
    for layer, norm in layers.items():
        # Global norm of the layer: sqrt(||dL/dkernel||^2 + ||dL/dbias||^2).
        kernel, bias = expected[f"{layer}/kernel"], expected[f"{layer}/bias"]
        assert norm == pytest.approx(np.hypot(kernel, bias), rel=1e-6)


def test_gradient_norms_with_custom_loss_and_weight_penalty():
    keras.utils.set_random_seed(1)
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(3, kernel_regularizer=keras.regularizers.L2(0.1), name="dense"),
        ]
    )
    x, y = _inputs(16, 4), RNG.normal(size=(16, 3)).astype(np.float32)

    def mse(targets, outputs):
        return tf.reduce_mean(tf.square(outputs - targets))

    norms = gradient_norms(model, x, y, loss_fn=mse)
    # Closed form: L = mean((xW + b - y)^2) + 0.1 * sum(W^2) over 16 * 3 entries;
    # dL/dW = x^T (2 r / 48) + 0.2 W, dL/db = sum over rows of 2 r / 48, with r = xW + b - y.
    w, b = model.layers[0].kernel.numpy(), model.layers[0].bias.numpy()
    r = x @ w + b - y
    np.testing.assert_allclose(
        norms[model.layers[0].kernel.path],
        np.linalg.norm(x.T @ (2 * r / 48) + 0.2 * w),
        rtol=1e-5,
    )
    np.testing.assert_allclose(
        norms[model.layers[0].bias.path], np.linalg.norm((2 * r / 48).sum(axis=0)), rtol=1e-5
    )


# ------------------------------------------------------------- dying ReLUs


def test_high_learning_rate_kills_more_relus():
    # A 64-64-64-10 ReLU MLP (He init) on digits, 300 plain SGD steps of 64 examples.
    # Measured over seeds 0..3: lr = 1.0 leaves 99-100% of the hidden units dead,
    # lr = 0.01 only 2-6% (a few units of the first layer see only blank pixels).
    images, labels = mp.data.load_numpy("digits", "train")
    x = (images.reshape(len(images), -1) / 16.0).astype(np.float32)

    def train(learning_rate, steps=300, seed=0):
        keras.utils.set_random_seed(seed)
        model = keras.Sequential(
            [keras.Input((64,))]
            + [
                keras.layers.Dense(
                    64,
                    activation="relu",
                    kernel_initializer=initializers.HeNormal(seed=seed + i),
                    name=f"dense{i}",
                )
                for i in (1, 2)
            ]
            + [keras.layers.Dense(10, kernel_initializer=initializers.XavierNormal(seed=seed))]
        )

        @tf.function
        def step(xb, yb):
            with tf.GradientTape() as tape:
                logits = model(xb)
                loss = tf.reduce_mean(
                    tf.nn.sparse_softmax_cross_entropy_with_logits(labels=yb, logits=logits)
                )
            grads = tape.gradient(loss, model.trainable_variables)
            for v, g in zip(model.trainable_variables, grads):
                v.assign_sub(learning_rate * g)

        rng = np.random.default_rng(seed)
        for _ in range(steps):
            batch = rng.integers(0, len(x), 64)
            step(x[batch], labels[batch])
        return dead_relu_fraction(model, x)

    low, high = train(0.01), train(1.0)
    assert low["all"] < 0.15
    assert high["all"] > 0.8
    assert high["dense1"] > low["dense1"] and high["dense2"] > low["dense2"]
