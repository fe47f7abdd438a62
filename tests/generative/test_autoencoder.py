"""Tests of mp.generative.autoencoder: the linear autoencoder is PCA; builders' shapes."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mp.generative import autoencoder


def _principal_angles(a, b):
    """Principal angles (radians) between the column spaces of `a` and `b`."""
    qa, _ = np.linalg.qr(a)
    qb, _ = np.linalg.qr(b)
    cosines = np.linalg.svd(qa.T @ qb, compute_uv=False)
    return np.arccos(np.clip(cosines, -1.0, 1.0))


def _centred_data(n=2000, d=10, seed=0):
    """Data with a clear spectral gap: standard deviations 5, 4, 3 then 0.3 along a random basis."""
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.normal(size=(d, d)))
    stds = np.array([5.0, 4.0, 3.0] + [0.3] * (d - 3))
    x = (rng.normal(size=(n, d)) * stds) @ basis.T
    return (x - x.mean(axis=0)).astype("float32")


def test_linear_autoencoder_spans_the_top_k_principal_subspace():
    keras.utils.set_random_seed(0)
    k = 3
    x = _centred_data()
    model = autoencoder.linear_autoencoder(x.shape[1], k)
    optimizer = keras.optimizers.Adam(0.02)
    data = tf.constant(x)

    @tf.function
    def train(steps):
        for _ in tf.range(steps):
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(tf.reduce_sum((data - model(data)) ** 2, axis=-1))
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    loss = float(train(tf.constant(1500)))
    # Reference: the top-k right singular vectors of the centred data matrix.
    _, singular_values, vt = np.linalg.svd(x, full_matrices=False)
    top = vt[:k].T
    # The reconstructions lie in the row space of the decoder's kernel [k, d].
    decoded_span = model.decoder.kernel.numpy().T
    angles = _principal_angles(decoded_span, top)
    assert angles.max() < 0.02, angles
    # The encoder's kernel [d, k] projects onto the same subspace.
    assert _principal_angles(model.encoder.kernel.numpy(), top).max() < 0.02
    # The loss reaches the PCA optimum: the discarded variance, sum of the smallest
    # squared singular values over n.
    assert loss == pytest.approx(np.sum(singular_values[k:] ** 2) / len(x), rel=0.02)
    # The measure can fail: the bottom-k subspace is orthogonal to the learned one.
    assert _principal_angles(decoded_span, vt[-k:].T).min() > 1.4


@pytest.mark.parametrize("kind", autoencoder.KINDS)
@pytest.mark.parametrize("shape", [(8, 8, 1), (28, 28, 1)])
def test_autoencoder_shapes_and_output_range(kind, shape):
    model = autoencoder.autoencoder(shape, 5, kind=kind, hidden_units=(16,), filters=(4, 8))
    x = np.random.default_rng(0).uniform(size=(3, *shape)).astype("float32")
    y = model(x).numpy()
    assert y.shape == (3, *shape)
    assert y.min() >= 0 and y.max() <= 1  # sigmoid output
    assert model.encoder(x).shape == (3, 5)


def test_bad_arguments_say_what_was_received():
    with pytest.raises(ValueError, match="kind=.mlp."):
        autoencoder.make_encoder((8, 8, 1), 4, kind="mlp")
    with pytest.raises(ValueError, match="divisible by 4"):
        autoencoder.make_encoder((10, 10, 1), 4, kind="conv")
    with pytest.raises(ValueError, match="latent_dim=0"):
        autoencoder.autoencoder((8, 8, 1), 0)
    # The convolutional nets halve the side twice: exactly two filter counts, never cut.
    for filters in ((16,), (8, 16, 32)):
        with pytest.raises(ValueError, match="filters must be 2 positive integers"):
            autoencoder.make_encoder((8, 8, 1), 4, kind="conv", filters=filters)
        with pytest.raises(ValueError, match="filters must be 2 positive integers"):
            autoencoder.make_decoder(2, (8, 8, 1), kind="conv", filters=filters)
