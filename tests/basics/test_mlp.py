"""Tests of mp.basics.mlp: shapes, parameter count, arguments, learning the digits."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from mp.basics import mlp, sparse_categorical_cross_entropy_with_logits

INPUT_SHAPE = (8, 8, 1)


def images(batch_size=4, seed=0):
    return np.random.default_rng(seed).uniform(size=(batch_size, *INPUT_SHAPE)).astype(np.float32)


def test_output_shape_and_logits_without_activation():
    model = mlp(INPUT_SHAPE, hidden_units=(32, 16), num_classes=10)
    logits = model(images(4))
    assert logits.shape == (4, 10)
    assert model.layers[1].__class__ is keras.layers.Flatten
    assert model.get_layer("logits").activation is keras.activations.linear


def test_trainable_parameter_count():
    model = mlp(INPUT_SHAPE, hidden_units=(32, 16), num_classes=10)
    # 8*8*1 = 64 inputs: 64*32+32 + 32*16+16 + 16*10+10 = 2080 + 528 + 170 = 2778.
    expected = 64 * 32 + 32 + 32 * 16 + 16 + 16 * 10 + 10
    assert expected == 2778
    assert sum(int(np.prod(v.shape)) for v in model.trainable_variables) == expected


def test_num_classes_none_returns_features():
    model = mlp(INPUT_SHAPE, hidden_units=(32, 16), num_classes=None, dropout=0.5)
    assert model(images(3)).shape == (3, 16)
    # The features are the last hidden layer's output, with no Dropout after it.
    assert model.layers[-1].name == "hidden_2"
    # Features of the classifier's last hidden layer: the same layers minus the head.
    classifier = mlp(INPUT_SHAPE, hidden_units=(32, 16), num_classes=10)
    assert sum(int(np.prod(v.shape)) for v in model.trainable_variables) == (
        sum(int(np.prod(v.shape)) for v in classifier.trainable_variables) - (16 * 10 + 10)
    )
    # No hidden layers and no head: the flattened input itself.
    flat = mlp(INPUT_SHAPE, hidden_units=(), num_classes=None)
    x = images(2)
    np.testing.assert_array_equal(flat(x), x.reshape(2, 64))


def test_dropout_only_in_training():
    model = mlp(INPUT_SHAPE, hidden_units=(32, 16), num_classes=10, dropout=0.5)
    # One Dropout before each Dense but the first: before hidden_2 and logits.
    assert sum(isinstance(layer, keras.layers.Dropout) for layer in model.layers) == 2
    x = images(8)
    np.testing.assert_array_equal(model(x, training=False), model(x, training=False))
    assert not np.allclose(model(x, training=True), model(x, training=False))


def test_eager_equals_tf_function_and_config_round_trip(tmp_path):
    model = mlp(INPUT_SHAPE, hidden_units=(32, 16), num_classes=10, activation="tanh")
    x = images(5)
    eager = model(x).numpy()
    np.testing.assert_allclose(tf.function(model)(x), eager, rtol=1e-5, atol=1e-6)
    clone = keras.Model.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    np.testing.assert_allclose(clone(x), eager, rtol=1e-6)
    path = tmp_path / "mlp.keras"
    model.save(path)
    np.testing.assert_allclose(keras.saving.load_model(path)(x), eager, rtol=1e-6)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (
            {"hidden_units": (32, -1)},
            r"hidden_units must be positive integers. Received: hidden_units=\(32, -1\)",
        ),
        ({"dropout": 1.0}, r"dropout must be in \[0, 1\). Received: dropout=1.0"),
        ({"dropout": -0.1}, r"dropout must be in \[0, 1\). Received: dropout=-0.1"),
        (
            {"num_classes": 0},
            "num_classes must be a positive integer or None. Received: num_classes=0",
        ),
        (
            {"input_shape": (8, 0)},
            r"input_shape must be a tuple of positive integers. Received: input_shape=\(8, 0\)",
        ),
    ],
)
def test_bad_arguments(kwargs, message):
    kwargs = {"input_shape": INPUT_SHAPE, **kwargs}
    with pytest.raises(ValueError, match=message):
        mlp(**kwargs)


def test_learns_digits_train_split():
    keras.utils.set_random_seed(0)
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).reshape(-1, 8, 8, 1).astype(np.float32)
    x_train, _, y_train, _ = train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)
    model = mlp(INPUT_SHAPE, hidden_units=(64, 32), num_classes=10)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        # Our loss takes [batch] labels; Keras may hand them over as [batch, 1].
        loss=lambda labels, logits: sparse_categorical_cross_entropy_with_logits(
            tf.reshape(labels, [-1]), logits
        ),
    )
    before = np.mean(np.argmax(model.predict(x_train, verbose=0), axis=1) == y_train)
    model.fit(x_train, y_train, batch_size=64, epochs=5, verbose=0)
    accuracy = np.mean(np.argmax(model.predict(x_train, verbose=0), axis=1) == y_train)
    assert before < 0.5 < 0.9 < accuracy
