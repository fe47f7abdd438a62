"""Tests of mp.basics.logistic: the sigmoid, and logistic regression against scikit-learn."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from sklearn.datasets import load_digits, make_blobs
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

from mp.basics import (
    binary_cross_entropy_with_logits,
    logistic_regression,
    sigmoid,
    sigmoid_grad,
    sparse_categorical_cross_entropy_with_logits,
)


def sklearn_fit(x, y, **kwargs):
    """scikit-learn's LogisticRegression, fitted with one BLAS/OpenMP thread.

    On a busy 2-core machine its solver's threads spin against TensorFlow's
    and a 0.1 s fit can take 10 s.
    """
    with threadpool_limits(limits=1):
        return LogisticRegression(**kwargs).fit(x, y)


def gradient_descent(model, x, y, loss_fn, steps, learning_rate):
    """Plain full-batch gradient descent on loss_fn(y, logits) + the L2 penalty."""
    x, y = tf.constant(x), tf.constant(y)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(loss_fn(y, model(x))) + tf.add_n([0.0, *model.losses])
        for variable, grad in zip(
            model.trainable_variables, tape.gradient(loss, model.trainable_variables)
        ):
            variable.assign_sub(learning_rate * grad)

    for _ in range(steps):
        step()
    return model


def train_binary(model, x, y, steps=300, learning_rate=1.0):
    labels = y.astype(np.float32)[:, None]  # the model outputs [batch, 1]
    return gradient_descent(
        model, x, labels, binary_cross_entropy_with_logits, steps, learning_rate
    )


def train_multinomial(model, x, y, steps=300, learning_rate=1.0):
    return gradient_descent(
        model, x, y, sparse_categorical_cross_entropy_with_logits, steps, learning_rate
    )


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    return train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)


# --------------------------------------------------------------- sigmoid


def test_sigmoid_matches_formula_and_symmetry():
    x = np.linspace(-30, 30, 601)
    np.testing.assert_allclose(sigmoid(x), 1.0 / (1.0 + np.exp(-x)), rtol=1e-12)
    np.testing.assert_allclose(sigmoid(-x), 1.0 - sigmoid(x), atol=1e-12)
    assert sigmoid(0.0).numpy() == 0.5


def test_sigmoid_grad_matches_autodiff_and_finite_differences():
    x = tf.constant(np.linspace(-10, 10, 201))
    with tf.GradientTape() as tape:
        tape.watch(x)
        s = sigmoid(x)
    np.testing.assert_allclose(sigmoid_grad(x), tape.gradient(s, x), rtol=1e-10, atol=1e-14)
    h = 1e-5
    finite_diff = (sigmoid(x + h) - sigmoid(x - h)) / (2 * h)
    np.testing.assert_allclose(sigmoid_grad(x), finite_diff, rtol=1e-6, atol=1e-12)
    # The largest slope is 1/4, at 0.
    assert np.argmax(sigmoid_grad(x)) == 100 and sigmoid_grad(0.0).numpy() == 0.25


def test_sigmoid_stable_at_large_inputs():
    x = tf.constant([-1000.0, 1000.0])
    with tf.GradientTape() as tape:
        tape.watch(x)
        s = sigmoid(x)
    np.testing.assert_array_equal(s, [0.0, 1.0])
    np.testing.assert_array_equal(tape.gradient(s, x), [0.0, 0.0])  # finite, not nan
    np.testing.assert_array_equal(sigmoid_grad(x), [0.0, 0.0])


# ----------------------------------------------------------------- model


@pytest.mark.parametrize("num_classes,outputs", [(2, 1), (10, 10)])
def test_model_outputs_affine_logits(num_classes, outputs):
    model = logistic_regression((8, 8, 1), num_classes=num_classes)
    # 64 inputs to `outputs` units: 64 * outputs weights + outputs biases.
    assert model.count_params() == 64 * outputs + outputs
    rng = np.random.default_rng(0)
    kernel = rng.standard_normal((64, outputs)).astype(np.float32)
    bias = rng.standard_normal(outputs).astype(np.float32)
    model.get_layer("logits").set_weights([kernel, bias])
    x = rng.standard_normal((5, 8, 8, 1)).astype(np.float32)
    logits = model(x).numpy()
    assert logits.shape == (5, outputs)
    # No activation: exactly x W + b, negative values included.
    np.testing.assert_allclose(logits, x.reshape(5, 64) @ kernel + bias, rtol=1e-5, atol=1e-5)
    assert logits.min() < 0 and logits.max() > 1


def test_model_config_round_trip_and_save(tmp_path):
    model = logistic_regression((64,), num_classes=10, l2=0.01)
    model.get_layer("logits").set_weights(
        [np.ones((64, 10), np.float32), np.arange(10, dtype=np.float32)]
    )
    x = np.random.default_rng(0).uniform(size=(3, 64)).astype(np.float32)
    clone = keras.Model.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    np.testing.assert_allclose(clone(x), model(x))
    path = tmp_path / "logistic.keras"
    model.save(path)
    np.testing.assert_allclose(keras.saving.load_model(path)(x), model(x))


def test_l2_penalty():
    model = logistic_regression((4,), num_classes=3, l2=0.5)
    model.get_layer("logits").set_weights(
        [np.full((4, 3), 2.0, np.float32), np.ones(3, np.float32)]
    )
    # 0.5 * sum(W ** 2) = 0.5 * 12 * 2 ** 2 = 24; the bias is not penalised.
    np.testing.assert_allclose(tf.add_n(model.losses), 24.0)
    assert not logistic_regression((4,), num_classes=3).losses


def test_bad_arguments():
    with pytest.raises(
        ValueError, match="num_classes must be an integer >= 2. Received: num_classes=1"
    ):
        logistic_regression((4,), num_classes=1)
    with pytest.raises(ValueError, match="l2 must be >= 0. Received: l2=-1"):
        logistic_regression((4,), l2=-1)
    with pytest.raises(
        ValueError,
        match=r"input_shape must be a tuple of positive integers. Received: input_shape=\(0,\)",
    ):
        logistic_regression((0,))


# ------------------------------------------------ training vs scikit-learn


def test_binary_on_2d_problem_matches_sklearn():
    # Two overlapping Gaussian blobs: near-separable.
    x, y = make_blobs(
        n_samples=400, centers=[[-1.0, -1.0], [1.0, 1.0]], cluster_std=0.9, random_state=0
    )
    x = x.astype(np.float32)
    model = train_binary(logistic_regression((2,)), x, y)
    accuracy = np.mean((model(x).numpy()[:, 0] > 0) == y)
    reference = sklearn_fit(x, y).score(x, y)
    assert accuracy > 0.85
    assert abs(accuracy - reference) <= 0.02


def test_binary_digits_zero_vs_rest_matches_sklearn(digits):
    x_train, x_test, y_train, y_test = digits
    model = train_binary(logistic_regression((64,)), x_train, y_train == 0)
    accuracy = np.mean((model(x_test).numpy()[:, 0] > 0) == (y_test == 0))
    reference = sklearn_fit(x_train, y_train == 0).score(x_test, y_test == 0)
    assert abs(accuracy - reference) <= 0.02


def test_multinomial_digits_matches_sklearn(digits):
    x_train, x_test, y_train, y_test = digits
    model = train_multinomial(
        logistic_regression((64,), num_classes=10), x_train, y_train, steps=400
    )
    accuracy = np.mean(np.argmax(model(x_test), axis=1) == y_test)
    reference = sklearn_fit(x_train, y_train, max_iter=1000).score(x_test, y_test)
    assert accuracy > 0.9
    assert abs(accuracy - reference) <= 0.02


def regularised_objective(kernel, bias, x, y, l2):
    """mean cross-entropy + l2 * ||W||^2, in float64 NumPy; K = 1 means binary."""
    z = x.astype(np.float64) @ kernel + bias
    if kernel.shape[1] == 1:  # binary: the stable BCE with labels y in {0, 1}
        z = z[:, 0]
        nll = np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))
    else:
        m = z.max(axis=1, keepdims=True)
        log_sum_exp = m[:, 0] + np.log(np.exp(z - m).sum(axis=1))
        nll = log_sum_exp - z[np.arange(len(y)), y]
    return np.mean(nll) + l2 * np.sum(kernel**2)


@pytest.mark.parametrize("num_classes", [2, 10])
def test_reaches_sklearn_optimum_with_same_l2(digits, num_classes):
    x, _, y, _ = digits
    if num_classes == 2:
        y = (y == 0).astype(np.int64)
    # scikit-learn minimises 0.5 ||W||^2 + C sum_i loss_i; dividing by C n gives
    # mean_i loss_i + ||W||^2 / (2 C n), i.e. Keras' L2 factor l2 = 1 / (2 C n).
    c = 0.05
    l2 = 1.0 / (2 * c * len(x))
    reference = sklearn_fit(x.astype(np.float64), y, C=c, tol=1e-10, max_iter=10_000)
    optimum = regularised_objective(reference.coef_.T, reference.intercept_, x, y, l2)

    model = logistic_regression((64,), num_classes=num_classes, l2=l2)
    # Step sizes: about the largest that does not oscillate. As a function of
    # the logits, the binary loss has curvature at most 1/4 and the softmax
    # loss at most 1/2, so the binary model takes twice the step.
    if num_classes == 2:
        train_binary(model, x, y, steps=800, learning_rate=2.0)
    else:
        train_multinomial(model, x, y, steps=800, learning_rate=1.0)
    kernel, bias = (w.astype(np.float64) for w in model.get_layer("logits").get_weights())
    ours = regularised_objective(kernel, bias, x, y, l2)
    # The problem is convex, so gradient descent approaches the same minimum.
    assert ours - optimum < 1e-3
    assert ours > optimum - 1e-6  # sklearn's point is the optimum
