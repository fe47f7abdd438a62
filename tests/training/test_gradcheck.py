"""Tests of mp.training.gradcheck: closed forms, a planted wrong gradient, real layers."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mp.training import regularization
from mp.training.gradcheck import (
    assert_gradients_match,
    check_gradients,
    check_layer,
    check_model,
    numerical_gradient,
    relative_error,
    sample_coordinates,
)

RNG = np.random.default_rng(0)


def f_sin(x):
    return tf.reduce_sum(tf.sin(x) * x**2)


def df_sin(x):
    # d/dx (sin(x) x^2) = cos(x) x^2 + 2 x sin(x)
    return np.cos(x) * x**2 + 2 * x * np.sin(x)


def test_numerical_gradient_matches_the_closed_form():
    x = RNG.normal(size=(3, 4))
    np.testing.assert_allclose(numerical_gradient(f_sin, x), df_sin(x), rtol=1e-8, atol=1e-9)


def test_numerical_gradient_computes_only_the_sampled_coordinates():
    x = RNG.normal(size=(10,))
    g = numerical_gradient(f_sin, x, max_coordinates=3, seed=1)
    computed = ~np.isnan(g)
    assert computed.sum() == 3
    np.testing.assert_array_equal(np.flatnonzero(computed), sample_coordinates(10, 3, seed=1))
    np.testing.assert_allclose(g[computed], df_sin(x)[computed], rtol=1e-8)


def test_relative_error_bounds():
    g = RNG.normal(size=5)
    assert relative_error(np.zeros(5), np.zeros(5)) == 0.0
    assert relative_error(g, g) == 0.0
    assert relative_error(g, -g) == pytest.approx(1.0)  # ||2g|| / (||g|| + ||g||)


def test_check_gradients_passes_a_correct_gradient():
    errors = check_gradients(f_sin, {"x": RNG.normal(size=(4, 5))}, max_coordinates=None)
    assert errors["x"] < 1e-8
    assert_gradients_match(errors)


def test_a_wrong_custom_gradient_is_detected():
    @tf.custom_gradient
    def wrong_square(x):
        return x**2, lambda upstream: upstream * 4 * x  # the true derivative is 2x

    x = RNG.normal(size=(6,))
    errors = check_gradients(lambda x: tf.reduce_sum(wrong_square(x)), [x])
    # Backprop gives twice the true gradient g: ||2g - g|| / (||2g|| + ||g||) = 1/3.
    assert errors["arg0"] == pytest.approx(1 / 3, rel=1e-6)
    with pytest.raises(AssertionError, match="arg0: 0.333"):
        assert_gradients_match(errors)


def test_check_gradients_of_several_tensors_and_variables():
    x = RNG.normal(size=(3, 4))
    w = tf.Variable(RNG.normal(size=(4, 2)), name="w")
    # The function reads the variable and receives the copy of x that is perturbed.
    errors = check_gradients(lambda x, w: tf.reduce_sum(tf.tanh(x @ w) ** 2), [x, w])
    assert set(errors) == {"arg0", "w"}
    assert_gradients_match(errors, tolerance=1e-8)
    before = w.numpy().copy()
    check_gradients(lambda w: tf.reduce_sum(w**3), {"w": w})
    np.testing.assert_array_equal(w.numpy(), before)  # every perturbation undone


def test_an_unconnected_keras_variable_has_a_zero_gradient():
    used = keras.Variable(RNG.normal(size=(2,)), dtype="float64", name="used")
    unused = keras.Variable(RNG.normal(size=(3,)), dtype="float64", name="unused")
    errors = check_gradients(lambda u, _: tf.reduce_sum(u.value**2), {"u": used, "n": unused})
    # f does not read `unused`: both differences and the analytic gradient are zero there.
    assert errors["n"] == 0.0
    assert_gradients_match(errors, tolerance=1e-8)


def test_float32_variables_are_refused():
    w = tf.Variable(np.ones(3, "float32"))
    with pytest.raises(ValueError, match="float64"):
        check_gradients(lambda w: tf.reduce_sum(w), {"w": w})


def test_assert_gradients_match_lists_every_offender():
    with pytest.raises(AssertionError) as info:
        assert_gradients_match({"a": 1e-9, "b": 0.5, "c": float("nan"), "d": 1e-3})
    message = str(info.value)
    assert "b: 0.5" in message and "c: nan" in message and "d: 0.001" in message
    assert "a:" not in message


def test_dense_layer_passes_and_floatx_is_restored():
    keras.utils.set_random_seed(0)
    errors = check_layer(lambda: keras.layers.Dense(3, activation="tanh"), (4,), batch_size=3)
    names = sorted(errors)  # the input and the layer's two variables, by path
    assert len(names) == 3 and names[0].endswith("/bias") and names[1].endswith("/kernel")
    assert names[2] == "input"
    assert max(errors.values()) < 1e-7
    assert keras.config.floatx() == "float32"
    assert keras.layers.Dense(1).dtype_policy.name == "float32"  # later layers are float32

    def broken():
        raise RuntimeError("no layer")

    with pytest.raises(RuntimeError):
        check_layer(broken, (4,))
    assert keras.config.floatx() == "float32"
    assert keras.config.dtype_policy().name == "float32"


def test_max_variables_samples_the_variables_checked():
    build = lambda: keras.Sequential([keras.layers.Dense(4), keras.layers.Dense(2)])
    assert len(check_model(build, (3,), max_coordinates=2)) == 5  # input + 2 kernels + 2 biases
    errors = check_model(build, (3,), max_coordinates=2, max_variables=2)
    assert len(errors) == 3 and "input" in errors


class WrongScale(keras.layers.Layer):
    """y = x * w per feature, whose custom gradient reports twice the true dL/dw."""

    def __init__(self, initializer="random_normal", **kwargs):
        super().__init__(**kwargs)
        self.initializer = initializer

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1],), initializer=self.initializer)

    def call(self, x):
        @tf.custom_gradient
        def scale(x, w):
            def grad(upstream):  # true: upstream * w and sum_b upstream * x
                return upstream * w, 2 * tf.reduce_sum(upstream * x, axis=0)

            return x * w, grad

        return scale(x, tf.convert_to_tensor(self.w))


def test_check_layer_finds_the_wrong_weight_gradient_of_a_layer():
    errors = check_layer(WrongScale, (5,), batch_size=3)
    weight = next(name for name in errors if name != "input")
    assert errors["input"] < 1e-8
    assert errors[weight] == pytest.approx(1 / 3, rel=1e-6)  # as for the wrong square above


def test_a_wrong_gradient_is_found_even_where_the_output_is_zero():
    # With w = 0 the output is 0 and the squares alone give dL/dy = 2 r y = 0: every
    # gradient would be 0 and the check empty. The loss' linear term s * y gives
    # dL/dw = sum_b s * x, nonzero, so the doubled gradient still shows.
    errors = check_layer(lambda: WrongScale(initializer="zeros"), (5,), batch_size=3)
    weight = next(name for name in errors if name != "input")
    assert errors[weight] == pytest.approx(1 / 3, rel=1e-6)


REGULARIZATION_LAYERS = [
    ("dropout", lambda: regularization.Dropout(0.5, seed=1), (6,)),
    ("batch_norm_dense", lambda: regularization.BatchNormalization(momentum=0.5), (5,)),
    ("batch_norm_conv", lambda: regularization.BatchNormalization(), (4, 4, 3)),
    ("gaussian_noise", lambda: regularization.GaussianNoise(0.5, seed=2), (5,)),
    ("random_shift", lambda: regularization.RandomShift(2, seed=3), (6, 6, 2)),
    ("random_flip", lambda: regularization.RandomFlip(seed=4), (5, 5, 2)),
]


@pytest.mark.parametrize("training", [False, True], ids=["inference", "training"])
@pytest.mark.parametrize(
    "build, input_shape",
    [c[1:] for c in REGULARIZATION_LAYERS],
    ids=[c[0] for c in REGULARIZATION_LAYERS],
)
def test_regularization_layers_pass(build, input_shape, training):
    errors = check_layer(build, input_shape, batch_size=4, training=training, max_coordinates=None)
    assert_gradients_match(errors, tolerance=1e-7)


def test_dropout_inside_a_model_in_training_with_fixed_masks():
    def build():
        return keras.Sequential(
            [
                keras.layers.Dense(8, activation="tanh"),
                regularization.Dropout(0.5, seed=0),
                keras.layers.Dense(3),
            ]
        )

    assert_gradients_match(check_model(build, (4,), training=True), tolerance=1e-7)


def test_without_fixed_randomness_dropout_fails_the_check():
    # What `check_layer(training=True)` prevents: a new mask at every evaluation
    # turns the finite differences into noise.
    layer = regularization.Dropout(0.5, seed=0)
    x = RNG.normal(size=(20,))
    errors = check_gradients(lambda x: tf.reduce_sum(layer(x, training=True) ** 2), [x])
    assert errors["arg0"] > 0.1
