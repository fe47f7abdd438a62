"""FusedBatchNormalization against Keras' BatchNormalization with the same weights."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mp.cnn.batch_norm import FusedBatchNormalization
from mp.engine.precision import precision_scope


def _pair(shape, **kwargs):
    """Keras' layer and the fused one, built on `shape`, with the same random weights."""
    rng = np.random.default_rng(0)
    ref, fused = keras.layers.BatchNormalization(**kwargs), FusedBatchNormalization(**kwargs)
    ref.build(shape)
    fused.build(shape)
    for a, b in zip(ref.weights, fused.weights):
        value = rng.uniform(0.5, 1.5, a.shape).astype("float32")
        a.assign(value)
        b.assign(value)
    return ref, fused


@pytest.mark.parametrize("kwargs", [{}, {"center": False}, {"scale": False, "momentum": 0.9}])
def test_training_pass_equals_keras(kwargs):
    x = tf.constant(np.random.default_rng(1).normal(2.0, 3.0, (4, 5, 6, 3)), tf.float32)
    ref, fused = _pair(x.shape, **kwargs)
    initial = [w.numpy() for w in fused.non_trainable_weights]
    results = []
    for layer in (ref, fused):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(y * tf.sin(tf.range(3, dtype=tf.float32)) + y**2)
        grads = tape.gradient(loss, [x] + layer.trainable_weights)
        results.append((y, grads, [w.numpy() for w in layer.non_trainable_weights]))
    (y0, g0, s0), (y1, g1, s1) = results
    np.testing.assert_allclose(y1, y0, rtol=1e-5, atol=1e-5)
    for a, b in zip(g0, g1):  # d/dx, d/dgamma, d/dbeta
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-4)
    for a, b in zip(s0, s1):  # moving mean and the biased moving variance
        np.testing.assert_allclose(b, a, rtol=1e-5)
    # By hand: m <- momentum * m_0 + (1 - momentum) * batch mean, and the same for the
    # variance with the biased (1 / N) batch variance.
    momentum = kwargs.get("momentum", 0.99)
    batch = x.numpy().reshape(-1, 3)
    expected = [momentum * initial[0] + (1 - momentum) * batch.mean(0),
                momentum * initial[1] + (1 - momentum) * batch.var(0)]
    for a, b in zip(expected, s1):
        np.testing.assert_allclose(b, a, rtol=1e-5)


def test_inference_pass_equals_keras_and_uses_the_moving_statistics():
    x = tf.constant(np.random.default_rng(2).normal(size=(2, 3, 3, 4)), tf.float32)
    ref, fused = _pair(x.shape)
    np.testing.assert_allclose(fused(x, training=False), ref(x, training=False), atol=1e-5)
    # y = gamma * (x - m) / sqrt(v + eps) + beta with the stored m, v.
    gamma, beta, m, v = (w.numpy() for w in fused.weights)
    expected = gamma * (x.numpy() - m) / np.sqrt(v + fused.epsilon) + beta
    np.testing.assert_allclose(fused(x, training=False), expected, atol=1e-5)
    before = [w.numpy() for w in fused.non_trainable_weights]
    fused(x, training=False)
    for a, b in zip(before, fused.non_trainable_weights):
        np.testing.assert_array_equal(a, b.numpy())


def test_mixed_bfloat16_keeps_float32_statistics():
    x = tf.constant(np.random.default_rng(3).normal(size=(8, 4, 4, 5)), tf.float32)
    with precision_scope("mixed_bfloat16"):
        ref, fused = _pair(x.shape)
    y_ref, y = ref(x, training=True), fused(x, training=True)
    assert y.dtype == tf.bfloat16 == y_ref.dtype
    assert all(w.dtype == "float32" for w in fused.weights)
    np.testing.assert_allclose(
        tf.cast(y, tf.float32), tf.cast(y_ref, tf.float32), atol=0.05, rtol=0.02
    )
    for a, b in zip(ref.non_trainable_weights, fused.non_trainable_weights):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-2)


@pytest.mark.parametrize("shape, kwargs", [((4, 6), {}), ((4, 3, 3, 2), {"axis": 1}),
                                           ((4, 3, 3, 2), {"epsilon": 1e-6})])
def test_falls_back_to_keras_where_the_kernel_does_not_apply(shape, kwargs):
    # A rank-2 input, a channels-first axis, an epsilon below the kernel's minimum.
    x = tf.constant(np.random.default_rng(4).normal(size=shape), tf.float32)
    ref, fused = _pair(x.shape, **kwargs)
    assert not fused._fused(x, None)
    np.testing.assert_allclose(fused(x, training=True), ref(x, training=True), atol=1e-6)


def test_traces_once_and_round_trips(tmp_path):
    layer = FusedBatchNormalization(momentum=0.9, epsilon=1e-4, name="bn")
    model = keras.Sequential([keras.Input((None, None, 3)), layer])
    spec = tf.TensorSpec([None, None, None, 3], tf.float32)
    step = tf.function(lambda x: model(x, training=True), input_signature=[spec])
    for batch, side in ((2, 4), (5, 4), (3, 7)):
        assert step(tf.ones((batch, side, side, 3))).shape == (batch, side, side, 3)
    assert step.experimental_get_tracing_count() == 1  # any batch and map size
    path = str(tmp_path / "bn.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.layers[-1], FusedBatchNormalization)
    assert loaded.layers[-1].get_config() == layer.get_config()
    for a, b in zip(model.weights, loaded.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_float64_falls_back_to_keras():
    # The fused kernel has no float64 version; gradient checks run in float64.
    x = tf.constant(np.random.default_rng(5).normal(size=(3, 2, 2, 4)), tf.float64)
    ref, fused = _pair(x.shape, dtype="float64")
    np.testing.assert_allclose(fused(x, training=True), ref(x, training=True), atol=1e-12)
