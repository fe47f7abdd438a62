"""Tests of mp.basics.losses against TensorFlow's own losses and closed forms."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mp.basics import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    categorical_cross_entropy_with_logits,
    hinge,
    sparse_categorical_cross_entropy_with_logits,
)

RNG = np.random.default_rng(0)
NUM_EXAMPLES, NUM_CLASSES = 64, 7


def np_sigmoid(z):
    return 1.0 / (1.0 + np.exp(-np.asarray(z, np.float64)))


def np_softmax(z):
    z = np.asarray(z, np.float64)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def random_logits(*shape):
    return (3.0 * RNG.standard_normal(shape)).astype(np.float32)


# ------------------------------------------------------------ agreement


def test_hinge_matches_formula_and_keras():
    labels = RNG.choice([-1.0, 1.0], size=NUM_EXAMPLES).astype(np.float32)
    scores = random_logits(NUM_EXAMPLES)
    losses = hinge(labels, scores).numpy()
    np.testing.assert_allclose(losses, np.maximum(0.0, 1.0 - labels * scores), rtol=1e-6)
    # keras.losses.hinge averages over the last axis: give it one element each.
    reference = keras.losses.hinge(labels[:, None], scores[:, None])
    np.testing.assert_allclose(losses, reference, rtol=1e-6, atol=1e-6)
    assert np.any(losses == 0) and np.any(losses > 0)  # both sides of the hinge


@pytest.mark.parametrize("soft", [False, True])
def test_binary_cross_entropy_with_logits_matches_tf(soft):
    logits = random_logits(NUM_EXAMPLES, 3)
    if soft:
        labels = RNG.uniform(size=logits.shape).astype(np.float32)
    else:
        labels = RNG.integers(0, 2, size=logits.shape).astype(np.float32)
    reference = tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)
    losses = binary_cross_entropy_with_logits(labels, logits)
    assert losses.shape == logits.shape
    np.testing.assert_allclose(losses, reference, rtol=1e-5, atol=1e-6)


def test_binary_cross_entropy_from_probabilities_matches_formula():
    labels = RNG.integers(0, 2, size=NUM_EXAMPLES).astype(np.float32)
    p = RNG.uniform(0.01, 0.99, size=NUM_EXAMPLES).astype(np.float32)
    expected = -labels * np.log(p) - (1 - labels) * np.log(1 - p)
    np.testing.assert_allclose(binary_cross_entropy(labels, p), expected, rtol=1e-5)
    # Same value as the logits form at z = log(p / (1 - p)).
    z = np.log(p / (1 - p))
    np.testing.assert_allclose(
        binary_cross_entropy(labels, p), binary_cross_entropy_with_logits(labels, z), rtol=1e-4
    )


def test_sparse_categorical_cross_entropy_matches_tf():
    logits = random_logits(NUM_EXAMPLES, NUM_CLASSES)
    labels = RNG.integers(0, NUM_CLASSES, size=NUM_EXAMPLES)
    reference = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    losses = sparse_categorical_cross_entropy_with_logits(labels, logits)
    assert losses.shape == (NUM_EXAMPLES,)
    np.testing.assert_allclose(losses, reference, rtol=1e-5, atol=1e-6)


def test_sparse_categorical_cross_entropy_extra_axes():
    # Per-position labels, e.g. a sequence or a segmentation map: [batch, time].
    logits = random_logits(4, 5, NUM_CLASSES)
    labels = RNG.integers(0, NUM_CLASSES, size=(4, 5))
    reference = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    np.testing.assert_allclose(
        sparse_categorical_cross_entropy_with_logits(labels, logits),
        reference,
        rtol=1e-5,
        atol=1e-6,
    )


@pytest.mark.parametrize("soft", [False, True])
def test_categorical_cross_entropy_matches_tf(soft):
    logits = random_logits(NUM_EXAMPLES, NUM_CLASSES)
    if soft:
        labels = np_softmax(random_logits(NUM_EXAMPLES, NUM_CLASSES)).astype(np.float32)
    else:
        labels = np.eye(NUM_CLASSES, dtype=np.float32)[RNG.integers(0, NUM_CLASSES, NUM_EXAMPLES)]
    reference = tf.nn.softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    losses = categorical_cross_entropy_with_logits(labels, logits)
    assert losses.shape == (NUM_EXAMPLES,)
    np.testing.assert_allclose(losses, reference, rtol=1e-5, atol=1e-6)


def test_sparse_and_one_hot_forms_agree():
    logits = random_logits(NUM_EXAMPLES, NUM_CLASSES)
    labels = RNG.integers(0, NUM_CLASSES, size=NUM_EXAMPLES)
    one_hot = np.eye(NUM_CLASSES, dtype=np.float32)[labels]
    np.testing.assert_allclose(
        sparse_categorical_cross_entropy_with_logits(labels, logits),
        categorical_cross_entropy_with_logits(one_hot, logits),
        rtol=1e-6,
    )


@pytest.mark.parametrize("reduction,np_reduce", [("sum", np.sum), ("mean", np.mean)])
def test_reductions(reduction, np_reduce):
    logits = random_logits(NUM_EXAMPLES, NUM_CLASSES)
    labels = RNG.integers(0, NUM_CLASSES, size=NUM_EXAMPLES)
    per_example = sparse_categorical_cross_entropy_with_logits(labels, logits).numpy()
    reduced = sparse_categorical_cross_entropy_with_logits(labels, logits, reduction=reduction)
    assert reduced.shape == ()
    np.testing.assert_allclose(reduced, np_reduce(per_example), rtol=1e-5)


def test_bad_arguments():
    with pytest.raises(ValueError, match="reduction must be one of .* Received: reduction='avg'"):
        hinge([1.0], [0.5], reduction="avg")
    with pytest.raises(ValueError, match=r"epsilon must be in \[0, 0.5\). Received: epsilon=0.5"):
        binary_cross_entropy([1.0], [0.5], epsilon=0.5)
    with pytest.raises(
        ValueError, match="labels must have the shape of logits without the class axis"
    ):
        sparse_categorical_cross_entropy_with_logits(
            np.zeros((4, 1), np.int32), random_logits(4, 3)
        )


# ----------------------------------------------------- stability at +-1000


def test_binary_cross_entropy_stable_at_large_logits():
    logits = np.array([1000.0, -1000.0, 1000.0, -1000.0], np.float32)
    labels = np.array([1.0, 1.0, 0.0, 0.0], np.float32)
    # Right answers: ~0 when the sign agrees with the label, |z| = 1000 otherwise.
    expected = [0.0, 1000.0, 1000.0, 0.0]
    losses = binary_cross_entropy_with_logits(labels, logits).numpy()
    np.testing.assert_allclose(losses, expected, atol=1e-6)

    # The textbook form through probabilities: sigmoid(+-1000) is exactly 1 or 0
    # in float32, so log(0) appears (and 0 * log(0) = nan).
    p = tf.sigmoid(logits)
    naive = -labels * tf.math.log(p) - (1 - labels) * tf.math.log(1 - p)
    assert not np.all(np.isfinite(naive))
    # Clipping makes it finite, but caps the loss near -log(1e-7) = 16.1.
    clipped = binary_cross_entropy(labels, p).numpy()
    assert np.all(np.isfinite(clipped))
    assert np.max(clipped) < 17.0


def test_categorical_cross_entropy_stable_at_large_logits():
    logits = np.array([[1000.0, -1000.0, 0.0]] * 3, np.float32)
    labels = np.array([0, 1, 2])
    # logsumexp(1000, -1000, 0) = 1000 (to float32), loss = 1000 - z[label].
    expected = [0.0, 2000.0, 1000.0]
    np.testing.assert_allclose(
        sparse_categorical_cross_entropy_with_logits(labels, logits), expected, atol=1e-6
    )
    one_hot = np.eye(3, dtype=np.float32)
    np.testing.assert_allclose(
        categorical_cross_entropy_with_logits(one_hot, logits), expected, atol=1e-6
    )

    # Naive softmax exp(z) / sum(exp(z)): exp(1000) = inf, inf / inf = nan.
    naive_p = tf.exp(logits) / tf.reduce_sum(tf.exp(logits), axis=-1, keepdims=True)
    naive = -tf.reduce_sum(one_hot * tf.math.log(naive_p), axis=-1)
    assert not np.all(np.isfinite(naive))


def test_gradients_finite_at_large_logits():
    logits = tf.constant([[1000.0, -1000.0, 0.0]], tf.float32)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(logits)
        ce = sparse_categorical_cross_entropy_with_logits([1], logits)
        bce = binary_cross_entropy_with_logits(tf.ones_like(logits), logits)
    # d CE / dz = softmax(z) - onehot(1) = [1, 0, 0] - [0, 1, 0].
    np.testing.assert_allclose(tape.gradient(ce, logits), [[1.0, -1.0, 0.0]], atol=1e-6)
    # d BCE / dz = sigmoid(z) - 1 = [0, -1, -0.5].
    np.testing.assert_allclose(tape.gradient(bce, logits), [[0.0, -1.0, -0.5]], atol=1e-6)


# ------------------------------------------------------------- gradients


def test_binary_cross_entropy_gradient_is_sigmoid_minus_label():
    logits = tf.constant(np.append(random_logits(NUM_EXAMPLES - 1), 0.0).astype(np.float32))
    labels = RNG.integers(0, 2, size=NUM_EXAMPLES).astype(np.float32)
    with tf.GradientTape() as tape:
        tape.watch(logits)
        loss = tf.reduce_sum(binary_cross_entropy_with_logits(labels, logits))
    # Includes z = 0, where max(z, 0) and |z| both have a kink.
    expected = np_sigmoid(logits.numpy()) - labels
    np.testing.assert_allclose(tape.gradient(loss, logits), expected, atol=1e-6)


def test_sparse_categorical_cross_entropy_gradient_is_softmax_minus_one_hot():
    logits = tf.constant(random_logits(NUM_EXAMPLES, NUM_CLASSES))
    labels = RNG.integers(0, NUM_CLASSES, size=NUM_EXAMPLES)
    with tf.GradientTape() as tape:
        tape.watch(logits)
        loss = tf.reduce_sum(sparse_categorical_cross_entropy_with_logits(labels, logits))
    expected = np_softmax(logits.numpy()) - np.eye(NUM_CLASSES)[labels]
    np.testing.assert_allclose(tape.gradient(loss, logits), expected, atol=1e-6)


def test_categorical_cross_entropy_gradient_with_soft_labels():
    logits = tf.constant(random_logits(NUM_EXAMPLES, NUM_CLASSES))
    labels = np_softmax(random_logits(NUM_EXAMPLES, NUM_CLASSES)).astype(np.float32)
    with tf.GradientTape() as tape:
        tape.watch(logits)
        loss = tf.reduce_sum(categorical_cross_entropy_with_logits(labels, logits))
    # labels sum to 1 per row, so the gradient is softmax(z) - y.
    expected = np_softmax(logits.numpy()) - labels
    np.testing.assert_allclose(tape.gradient(loss, logits), expected, atol=1e-5)


def test_hinge_subgradient():
    labels = RNG.choice([-1.0, 1.0], size=NUM_EXAMPLES).astype(np.float32)
    scores = random_logits(NUM_EXAMPLES)
    scores[:2] = labels[:2]  # two examples exactly at the hinge, y * s = 1
    scores = tf.constant(scores)
    with tf.GradientTape() as tape:
        tape.watch(scores)
        loss = tf.reduce_sum(hinge(labels, scores))
    margins = labels * scores.numpy()
    # The subgradient chosen at the kink y * s = 1 is 0 (the flat side).
    expected = np.where(margins < 1, -labels, 0.0)
    assert np.any(margins < 1) and np.any(margins > 1)
    np.testing.assert_array_equal(tape.gradient(loss, scores), expected)
