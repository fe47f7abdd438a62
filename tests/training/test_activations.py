"""Tests of mp.training.activations against TensorFlow's own functions and autodiff."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mp.training import activations
from mp.training.activations import (
    ACTIVATIONS,
    PReLU,
    leaky_relu,
    leaky_relu_grad,
    relu,
    relu_grad,
    sigmoid,
    sigmoid_grad,
    softmax,
    softmax_jacobian,
    tanh,
    tanh_grad,
)

RNG = np.random.default_rng(0)


def random_inputs(*shape, scale=4.0, away_from_zero=1e-3, dtype=tf.float32):
    """Normal inputs, pushed at least `away_from_zero` from the kink at 0."""
    x = scale * RNG.standard_normal(shape)
    x = np.where(np.abs(x) < away_from_zero, away_from_zero, x)
    return tf.constant(x, dtype)


def autodiff(fn, x):
    """Elementwise derivative of `fn` at `x` by `tf.GradientTape` (fn acts elementwise)."""
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = fn(x)
    return tape.gradient(y, x)


# ---------------------------------------------------------------- functions


@pytest.mark.parametrize(
    "fn, reference",
    [
        (sigmoid, tf.math.sigmoid),
        (sigmoid, keras.activations.sigmoid),
        (tanh, tf.math.tanh),
        (tanh, keras.activations.tanh),
        (relu, tf.nn.relu),
        (relu, keras.activations.relu),
        (lambda x: leaky_relu(x, 0.2), lambda x: tf.nn.leaky_relu(x, alpha=0.2)),
        (lambda x: leaky_relu(x, 0.3), lambda x: keras.activations.leaky_relu(x, 0.3)),
    ],
)
def test_function_matches_reference(fn, reference):
    x = random_inputs(64, 9)
    np.testing.assert_allclose(fn(x), reference(x), rtol=1e-6, atol=1e-7)


def test_small_tanh_keeps_relative_precision():
    # tanh(x) ~ x for tiny x: expm1 avoids the cancellation of 1 - e^{-2x} (which is 0 in float32).
    x = tf.constant([1e-8, -3e-7, 2e-5])
    np.testing.assert_allclose(tanh(x), np.tanh(x.numpy().astype(np.float64)), rtol=1e-6)


@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_softmax_matches_tf(axis):
    x = random_inputs(5, 7, 3)
    np.testing.assert_allclose(softmax(x, axis=axis), tf.nn.softmax(x, axis=axis), rtol=1e-5)
    np.testing.assert_allclose(
        softmax(x, axis=axis), keras.activations.softmax(x, axis=axis), rtol=1e-5
    )


def test_softmax_sums_to_one_and_is_shift_invariant():
    x = random_inputs(16, 10)
    s = softmax(x)
    np.testing.assert_allclose(tf.reduce_sum(s, axis=-1), np.ones(16), rtol=1e-6)
    # Adding one constant per row cancels: exp(x_i + c) / sum_j exp(x_j + c) = softmax(x)_i.
    shifts = tf.constant(RNG.uniform(-50, 50, size=(16, 1)), tf.float32)
    np.testing.assert_allclose(softmax(x + shifts), s, rtol=1e-4, atol=1e-7)
    # Huge logits: without the max subtracted exp(1000) = inf and the result would be NaN.
    big = softmax(tf.constant([[1000.0, 999.0, 0.0]]))
    # Exactly: [1, e^-1, e^-1000] / (1 + e^-1 + e^-1000) = [0.7311, 0.2689, 0].
    np.testing.assert_allclose(big, [[0.7310586, 0.2689414, 0.0]], rtol=1e-6)


def test_tanh_is_a_scaled_sigmoid():
    x = random_inputs(200)
    np.testing.assert_allclose(tanh(x), 2.0 * sigmoid(2.0 * x) - 1.0, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("fn", [sigmoid, tanh])
def test_saturating_functions_are_finite_at_extremes(fn):
    x = tf.constant([-1000.0, -100.0, 100.0, 1000.0])
    y = fn(x)
    low = 0.0 if fn is sigmoid else -1.0
    np.testing.assert_array_equal(y, [low, low, 1.0, 1.0])
    # The gradient is 0 out there (saturation), and not NaN: no branch overflowed.
    np.testing.assert_array_equal(autodiff(fn, x), [0.0, 0.0, 0.0, 0.0])


# -------------------------------------------------------------- derivatives


@pytest.mark.parametrize(
    "fn, grad",
    [
        (sigmoid, sigmoid_grad),
        (tanh, tanh_grad),
        (relu, relu_grad),
        (leaky_relu, leaky_relu_grad),
        (lambda x: leaky_relu(x, 0.3), lambda x: leaky_relu_grad(x, 0.3)),
    ],
)
def test_derivative_equals_autodiff(fn, grad):
    # float64: in float32, 1 - tanh^2 near saturation keeps only a few correct digits.
    x = random_inputs(300, dtype=tf.float64)
    np.testing.assert_allclose(grad(x), autodiff(fn, x), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize(
    "grad, reference",
    [
        (sigmoid_grad, tf.math.sigmoid),
        (tanh_grad, tf.math.tanh),
        (relu_grad, tf.nn.relu),
        # 0.25, exact in binary: tf.nn.leaky_relu keeps alpha as a float32 attribute.
        (lambda x: leaky_relu_grad(x, 0.25), lambda x: tf.nn.leaky_relu(x, 0.25)),
    ],
)
def test_derivative_equals_autodiff_of_tensorflow(grad, reference):
    x = random_inputs(300, dtype=tf.float64)
    np.testing.assert_allclose(grad(x), autodiff(reference, x), rtol=1e-10, atol=1e-14)


def test_values_at_the_kink():
    zero = tf.constant([0.0])
    assert relu_grad(zero).numpy() == 0.0  # the documented choice, as tf.nn.relu
    assert leaky_relu_grad(zero, 0.1).numpy() == pytest.approx(0.1)
    assert autodiff(relu, zero).numpy() == 0.0
    assert autodiff(lambda x: leaky_relu(x, 0.1), zero).numpy() == pytest.approx(0.1)
    # Smooth functions: sigmoid'(0) = 1/2 * 1/2 = 1/4, tanh'(0) = 1 - 0 = 1, also by autodiff.
    np.testing.assert_allclose([sigmoid_grad(zero)[0], autodiff(sigmoid, zero)[0]], [0.25, 0.25])
    np.testing.assert_allclose([tanh_grad(zero)[0], autodiff(tanh, zero)[0]], [1.0, 1.0])


def test_softmax_jacobian_equals_autodiff():
    x = random_inputs(6, 5, scale=2.0)
    with tf.GradientTape() as tape:
        tape.watch(x)
        s = tf.nn.softmax(x)
    expected = tape.batch_jacobian(s, x)  # [6, 5, 5], expected[b, i, j] = d s_i / d x_j
    jacobian = softmax_jacobian(x)
    np.testing.assert_allclose(jacobian, expected, rtol=1e-5, atol=1e-7)
    # Row sums s_i * (1 - sum_j s_j) vanish up to float32 round-off of sum_j s_j (a few eps).
    np.testing.assert_allclose(tf.reduce_sum(jacobian, axis=-1), np.zeros((6, 5)), atol=1e-6)


# ------------------------------------------------------------ ReLU vs pooling


@pytest.mark.parametrize("ksize, strides, padding", [(2, 2, "VALID"), (3, 1, "SAME")])
def test_relu_commutes_with_max_pooling(ksize, strides, padding):
    x = random_inputs(4, 8, 8, 3)

    def pool(t):
        return tf.nn.max_pool2d(t, ksize=ksize, strides=strides, padding=padding)

    np.testing.assert_array_equal(relu(pool(x)), pool(relu(x)))


def test_relu_does_not_commute_with_average_pooling():
    # One 2x2 window holding -2, 1, 1, 1:
    #   relu(avg) = relu((-2 + 1 + 1 + 1) / 4) = 0.25;  avg(relu) = (0 + 1 + 1 + 1) / 4 = 0.75.
    x = tf.constant([[-2.0, 1.0], [1.0, 1.0]])[None, :, :, None]

    def pool(t):
        return tf.nn.avg_pool2d(t, ksize=2, strides=2, padding="VALID")

    assert relu(pool(x)).numpy().item() == 0.25
    assert pool(relu(x)).numpy().item() == 0.75
    # And on random data the two orders differ wherever a window mixes signs.
    x = random_inputs(4, 8, 8, 3)
    assert not np.allclose(relu(pool(x)), pool(relu(x)))


# ------------------------------------------------------------------- PReLU


def test_prelu_matches_keras_on_dense_features():
    x = random_inputs(10, 6)
    ours = PReLU()
    ours.build(x.shape)
    alpha = RNG.uniform(0.0, 0.5, size=6).astype(np.float32)
    ours.alpha.assign(alpha)
    theirs = keras.layers.PReLU(alpha_initializer=keras.initializers.Constant(alpha))
    np.testing.assert_allclose(ours(x), theirs(x), rtol=1e-6)
    assert ours.alpha.shape == theirs.alpha.shape == (6,)


def test_prelu_one_slope_per_channel_matches_keras_shared_spatial_axes():
    x = random_inputs(2, 5, 5, 4)
    ours = PReLU()  # one alpha per channel
    ours.build(x.shape)
    assert ours.alpha.shape == (4,)
    alpha = np.array([0.0, 0.1, 0.25, 0.9], np.float32)
    ours.alpha.assign(alpha)
    theirs = keras.layers.PReLU(shared_axes=[1, 2])  # alpha shape (1, 1, 4)
    theirs.build(x.shape)
    theirs.alpha.assign(alpha.reshape(1, 1, 4))
    np.testing.assert_allclose(ours(x), theirs(x), rtol=1e-6)
    # Keras' sharing rule is available too: the same axes give the same alpha shape.
    assert PReLU(shared_axes=[1, 2]).compute_output_shape(x.shape) == x.shape
    same = PReLU(shared_axes=[1, 2])
    same.build(x.shape)
    assert same.alpha.shape == (1, 1, 4)


def test_prelu_default_slope_and_config():
    layer = PReLU()
    x = tf.constant([[-2.0, 3.0]])
    # 0.25 * -2 = -0.5; 3 stays 3.
    np.testing.assert_allclose(layer(x), [[-0.5, 3.0]])
    clone = PReLU.from_config(layer.get_config())
    np.testing.assert_allclose(clone(x), [[-0.5, 3.0]])
    assert clone.get_config() == layer.get_config()
    with pytest.raises(ValueError, match="shared_axes"):
        PReLU(shared_axes=[0])


def test_prelu_alpha_gets_the_gradient_min_x_0():
    x = random_inputs(8, 3)
    layer = PReLU()
    with tf.GradientTape() as tape:
        y = tf.reduce_sum(layer(x))
    # d/dalpha_c sum_b f(x_bc) = sum_b min(x_bc, 0).
    expected = np.minimum(x.numpy(), 0.0).sum(axis=0)
    np.testing.assert_allclose(tape.gradient(y, layer.alpha), expected, rtol=1e-5)


def test_prelu_learns_the_slope_of_a_leaky_target():
    # Target: a leaky ReLU of slope 0.1. The loss mean (f(x) - t)^2 has
    # dL/dalpha = 2 (alpha - 0.1) mean(x^2 1[x < 0]) ~ (alpha - 0.1) for standard normal x,
    # so SGD with lr 0.5 halves the distance to 0.1 about every step.
    keras.utils.set_random_seed(0)
    x = random_inputs(256, 1, scale=1.0)
    target = leaky_relu(x, 0.1)
    model = keras.Sequential([keras.Input((1,)), PReLU()])
    optimizer = keras.optimizers.SGD(learning_rate=0.5)
    alphas = [float(model.layers[0].alpha[0])]
    for _ in range(20):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(model(x) - target))
        optimizer.apply_gradients(
            zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables)
        )
        alphas.append(float(model.layers[0].alpha[0]))
    assert alphas[0] == 0.25
    assert 0.1 < alphas[1] < 0.25  # the first step already moves towards the true slope
    assert abs(alphas[-1] - 0.1) < 1e-3


# ---------------------------------------------------------------- registry


def test_get_returns_fresh_layers_computing_the_functions():
    x = random_inputs(4, 3)
    expected = {
        "sigmoid": sigmoid(x),
        "tanh": tanh(x),
        "relu": relu(x),
        "leaky_relu": leaky_relu(x, 0.01),
        "prelu": leaky_relu(x, 0.25),  # PReLU starts at alpha = 0.25
    }
    assert set(ACTIVATIONS) == set(expected)
    for name in ACTIVATIONS:
        layer = activations.get(name)
        assert isinstance(layer, keras.layers.Layer)
        assert layer is not activations.get(name)
        np.testing.assert_allclose(layer(x), expected[name], rtol=1e-6)


def test_get_rejects_unknown_names():
    with pytest.raises(ValueError, match=r"one of .*'sigmoid'.*'prelu'.*Received: name='swish'"):
        activations.get("swish")


def test_leaky_relu_layer_rejects_negative_alpha():
    with pytest.raises(ValueError, match="Received: alpha=-0.1"):
        activations.LeakyReLU(alpha=-0.1)


def test_every_activation_layer_survives_keras_file(tmp_path):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6,))
    h = inputs
    for name in ACTIVATIONS:
        h = activations.get(name)(keras.layers.Dense(6)(h))
    model = keras.Model(inputs, h)
    model.layers[-1].alpha.assign(np.linspace(0.0, 0.5, 6, dtype=np.float32))  # a trained alpha
    path = str(tmp_path / "activations.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    x = random_inputs(5, 6)
    np.testing.assert_allclose(loaded(x), model(x), rtol=1e-6)
    assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in model.layers]
