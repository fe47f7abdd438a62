"""Tests of mp.training.regularization against statistics, NumPy and Keras' own layers."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mp.training.regularization import (
    L1L2,
    BatchNormalization,
    Dropout,
    GaussianNoise,
    RandomFlip,
    RandomShift,
    flip_left_right,
    shift_images,
    weight_penalty,
)

RNG = np.random.default_rng(0)


# ------------------------------------------------------------ dropout


def test_dropout_keeps_the_expected_activation_of_every_unit():
    rate, n = 0.3, 4000
    p = 1 - rate
    x = np.tile(RNG.normal(size=(1, 64)), (n, 1)).astype("float32")
    y = Dropout(rate, seed=1)(x, training=True).numpy().astype("float64")
    # y_i = x_i * m_i / p with m_i ~ Bernoulli(p): E[y_i] = x_i and
    # Var[y_i] = x_i^2 (1 - p) / p, so the mean of n samples has standard error
    # |x_i| sqrt((1 - p) / (p n)) = |x_i| sqrt(0.3 / 2800) ~ 0.010 |x_i|. Without the
    # 1/p the mean would be 0.7 x_i, 30 standard errors away.
    standard_error = np.abs(x[0]) * np.sqrt((1 - p) / (p * n))
    assert np.all(np.abs(y.mean(axis=0) - x[0]) < 4 * standard_error)


def test_dropout_drops_a_fraction_rate_and_scales_the_rest():
    rate, n = 0.25, 100_000
    x = RNG.uniform(1.0, 2.0, size=(n,)).astype("float32")  # no zero of its own
    y = Dropout(rate, seed=2)(x, training=True).numpy()
    dropped = y == 0
    # The fraction dropped has standard error sqrt(rate (1 - rate) / n) ~ 0.0014.
    assert abs(dropped.mean() - rate) < 4 * np.sqrt(rate * (1 - rate) / n)
    np.testing.assert_allclose(y[~dropped], x[~dropped] / (1 - rate), rtol=1e-6)


def test_dropout_is_the_identity_at_inference_and_for_rate_zero():
    x = RNG.normal(size=(8, 5)).astype("float32")
    layer = Dropout(0.5, seed=0)
    np.testing.assert_array_equal(layer(x), x)
    np.testing.assert_array_equal(layer(x, training=False), x)
    np.testing.assert_array_equal(Dropout(0.0)(x, training=True), x)


def test_dropout_masks_change_per_call_and_repeat_with_the_seed():
    x = np.ones((10, 20), "float32")
    a, b, c = Dropout(0.5, seed=3), Dropout(0.5, seed=3), Dropout(0.5, seed=4)
    a1, a2 = a(x, training=True).numpy(), a(x, training=True).numpy()
    b1, b2 = b(x, training=True).numpy(), b(x, training=True).numpy()
    assert not np.array_equal(a1, a2)
    np.testing.assert_array_equal(a1, b1)
    np.testing.assert_array_equal(a2, b2)
    assert not np.array_equal(a1, c(x, training=True).numpy())


def test_dropout_masks_change_per_call_inside_tf_function():
    layer = Dropout(0.5, seed=5)
    step = tf.function(lambda x: layer(x, training=True))
    x = tf.ones((4, 30))
    assert not np.array_equal(step(x), step(x))
    assert step.experimental_get_tracing_count() == 1


@pytest.mark.parametrize("rate", [1.0, 1.5, -0.1])
def test_dropout_rejects_a_rate_outside_0_1(rate):
    with pytest.raises(ValueError, match=f"Received: rate={rate}"):
        Dropout(rate)


# ------------------------------------------------------------ batch normalisation


def _pair(axis, center, scale, momentum, input_shape):
    """Our layer and Keras' with the same (random, non-trivial) gamma and beta."""
    ours = BatchNormalization(
        momentum=momentum, epsilon=1e-3, center=center, scale=scale, axis=axis
    )
    theirs = keras.layers.BatchNormalization(
        momentum=momentum, epsilon=1e-3, center=center, scale=scale, axis=axis
    )
    ours.build(input_shape)
    theirs.build(input_shape)
    channels = input_shape[axis]
    if scale:
        gamma = RNG.uniform(0.5, 2.0, size=channels).astype("float32")
        ours.gamma.assign(gamma)
        theirs.gamma.assign(gamma)
    if center:
        beta = RNG.normal(size=channels).astype("float32")
        ours.beta.assign(beta)
        theirs.beta.assign(beta)
    return ours, theirs


@pytest.mark.parametrize(
    "input_shape, axis, center, scale",
    [
        ((16, 5), -1, True, True),  # dense [B, C]
        ((4, 6, 6, 3), -1, True, True),  # conv [B, H, W, C]
        ((4, 3, 6, 6), 1, True, True),  # channels first
        ((16, 5), -1, False, False),
    ],
    ids=["dense", "conv", "channels_first", "no_center_no_scale"],
)
def test_batch_norm_matches_keras_in_training_and_inference(input_shape, axis, center, scale):
    ours, theirs = _pair(axis, center, scale, 0.9, input_shape)
    for step in range(3):
        x = (3.0 + 2.0 * RNG.normal(size=input_shape)).astype("float32")
        np.testing.assert_allclose(
            ours(x, training=True), theirs(x, training=True), rtol=1e-5, atol=1e-5
        )
    # After three updates with momentum 0.9 the moving mean is 1 - 0.9^3 = 27% of the
    # way to ~3, far from its start at 0: a wrong update would show.
    np.testing.assert_allclose(ours.moving_mean, theirs.moving_mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours.moving_variance, theirs.moving_variance, rtol=1e-5, atol=1e-6)
    assert np.all(np.abs(ours.moving_mean.numpy()) > 0.3)
    x = RNG.normal(size=input_shape).astype("float32")
    np.testing.assert_allclose(
        ours(x, training=False), theirs(x, training=False), rtol=1e-5, atol=1e-5
    )
    np.testing.assert_allclose(ours(x), theirs(x), rtol=1e-5, atol=1e-5)


def test_batch_norm_training_step_matches_the_formula():
    x = RNG.normal(size=(32, 4)) * [1.0, 2.0, 3.0, 4.0] + [0.0, 1.0, -1.0, 5.0]
    layer = BatchNormalization(momentum=0.8, epsilon=1e-3)
    layer.build(x.shape)
    gamma, beta = np.array([1.0, 2.0, 0.5, -1.0]), np.array([0.0, 1.0, 2.0, 3.0])
    layer.gamma.assign(gamma)
    layer.beta.assign(beta)
    y = layer(x.astype("float32"), training=True).numpy()
    mean, variance = x.mean(axis=0), x.var(axis=0)  # NumPy's var is the biased one
    np.testing.assert_allclose(
        y, gamma * (x - mean) / np.sqrt(variance + 1e-3) + beta, rtol=1e-4, atol=1e-4
    )
    # moving = 0.8 * initial + 0.2 * batch, initial mean 0 and variance 1.
    np.testing.assert_allclose(layer.moving_mean, 0.2 * mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(layer.moving_variance, 0.8 + 0.2 * variance, rtol=1e-5)
    assert [w.name for w in layer.non_trainable_weights] == ["moving_mean", "moving_variance"]


def test_batch_norm_inference_uses_moving_statistics_not_the_batch():
    layer = BatchNormalization(momentum=0.5)
    for _ in range(4):
        layer(RNG.normal(size=(32, 3)).astype("float32") + 2.0, training=True)
    batch = RNG.normal(size=(8, 3)).astype("float32")
    one = layer(batch[:1]).numpy()
    np.testing.assert_allclose(layer(batch).numpy()[:1], one, rtol=1e-6)
    mean, variance = layer.moving_mean.numpy(), layer.moving_variance.numpy()
    np.testing.assert_allclose(one, (batch[:1] - mean) / np.sqrt(variance + 1e-3), rtol=1e-5)
    # In training the same example's output depends on the rest of the batch.
    assert not np.allclose(layer(batch, training=True).numpy()[:1], one, atol=1e-3)


def test_frozen_batch_norm_behaves_like_keras():
    x = RNG.normal(size=(8, 3)).astype("float32") + 1.0
    ours, theirs = _pair(-1, True, True, 0.9, x.shape)
    ours.trainable = theirs.trainable = False
    # atol: the module's random stream (its draws depend on which tests ran before) can
    # put an output near 0, where float32 rounding alone exceeds any relative tolerance.
    np.testing.assert_allclose(
        ours(x, training=True), theirs(x, training=True), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_array_equal(ours.moving_mean, np.zeros(3))


def test_batch_norm_rejects_bad_arguments():
    with pytest.raises(ValueError, match="Received: momentum=1"):
        BatchNormalization(momentum=1)
    with pytest.raises(ValueError, match="Received: epsilon=0"):
        BatchNormalization(epsilon=0)
    with pytest.raises(ValueError, match="axis"):
        BatchNormalization(axis=0)(np.ones((2, 3), "float32"))


# ------------------------------------------------------------ noise injection


def test_gaussian_noise_has_the_right_moments_and_is_off_at_inference():
    stddev, n = 0.3, 100_000
    x = RNG.normal(size=(n,)).astype("float32")
    layer = GaussianNoise(stddev, seed=1)
    np.testing.assert_array_equal(layer(x), x)
    noise = (layer(x, training=True).numpy() - x).astype("float64")
    # Mean of n draws: standard error stddev / sqrt(n) ~ 0.00095. Sample standard
    # deviation: standard error about stddev / sqrt(2 n) ~ 0.00067.
    assert abs(noise.mean()) < 4 * stddev / np.sqrt(n)
    assert abs(noise.std() - stddev) < 4 * stddev / np.sqrt(2 * n)


def test_gaussian_noise_changes_per_call_and_repeats_with_the_seed():
    x = np.zeros((5, 4), "float32")
    a, b = GaussianNoise(1.0, seed=7), GaussianNoise(1.0, seed=7)
    a1, b1 = a(x, training=True).numpy(), b(x, training=True).numpy()
    np.testing.assert_array_equal(a1, b1)
    assert not np.array_equal(a1, a(x, training=True).numpy())
    with pytest.raises(ValueError, match="Received: stddev=-1"):
        GaussianNoise(-1)


# ------------------------------------------------------------ norm penalties


def test_l1l2_equals_numpy_and_keras():
    w = RNG.normal(size=(7, 3))
    l1, l2 = 0.01, 0.003
    expected = l1 * np.abs(w).sum() + l2 * (w**2).sum()  # no 1/2 on the L2 term
    np.testing.assert_allclose(L1L2(l1, l2)(tf.constant(w)), expected, rtol=1e-12)
    # Keras rounds its coefficients to float32 (relative error ~1e-8).
    keras_penalty = keras.regularizers.L1L2(l1=l1, l2=l2)(tf.constant(w))
    np.testing.assert_allclose(L1L2(l1, l2)(tf.constant(w)), keras_penalty, rtol=1e-7)


def test_l1l2_gradient_is_l1_sign_plus_2_l2_w():
    w = tf.Variable(np.array([[-2.0, -0.5], [0.0, 0.25], [1.0, 3.0]]))
    l1, l2 = 0.1, 0.05
    with tf.GradientTape() as tape:
        penalty = L1L2(l1, l2)(w)
    # At w = 0 the subgradient sgn(0) = 0 is used: the gradient there is 0.
    expected = l1 * np.sign(w.numpy()) + 2 * l2 * w.numpy()
    np.testing.assert_allclose(tape.gradient(penalty, w), expected, rtol=1e-12)


def test_l1l2_as_kernel_regularizer_and_weight_penalty():
    keras.utils.set_random_seed(0)
    penalty = L1L2(l1=1e-3, l2=1e-2)
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(5, kernel_regularizer=penalty, bias_initializer="ones"),
            BatchNormalization(),
            keras.layers.Dense(2, kernel_regularizer=penalty, bias_initializer="ones"),
        ]
    )
    model(np.ones((2, 6), "float32"))
    k1, k2 = model.layers[0].kernel.numpy(), model.layers[2].kernel.numpy()
    expected = sum(1e-3 * np.abs(k).sum() + 1e-2 * (k**2).sum() for k in (k1, k2))
    np.testing.assert_allclose(sum(model.losses), expected, rtol=1e-5)
    # Biases (ones) and the batch norm's gamma (ones) are not penalised.
    np.testing.assert_allclose(weight_penalty(model, l1=1e-3, l2=1e-2), expected, rtol=1e-5)
    assert float(weight_penalty(keras.layers.Flatten(), l2=1.0)) == 0.0


def test_l1l2_serialises_and_rejects_negative_coefficients():
    penalty = L1L2(l1=0.5, l2=0.25)
    restored = keras.regularizers.deserialize(keras.regularizers.serialize(penalty))
    assert isinstance(restored, L1L2) and restored.get_config() == {"l1": 0.5, "l2": 0.25}
    with pytest.raises(ValueError, match="Received: l1=-1"):
        L1L2(l1=-1)


# ------------------------------------------------------------ augmentation


def _numpy_shift(images, shifts):
    out = np.zeros_like(images)
    height, width = images.shape[1:3]
    for b, (dy, dx) in enumerate(shifts):
        for i in range(height):
            for j in range(width):
                if 0 <= i - dy < height and 0 <= j - dx < width:
                    out[b, i, j] = images[b, i - dy, j - dx]
    return out


def test_shift_images_matches_a_numpy_loop():
    images = RNG.normal(size=(6, 5, 7, 2)).astype("float32")
    shifts = np.array([[0, 0], [3, -3], [-3, 3], [1, 2], [-2, -1], [3, 3]])
    np.testing.assert_array_equal(
        shift_images(images, shifts, max_shift=3), _numpy_shift(images, shifts)
    )


def test_random_shift_moves_a_one_hot_pixel_by_the_sampled_amount():
    batch, size, max_shift = 64, 9, 2
    images = np.zeros((batch, size, size, 1), "float32")
    images[:, 4, 4, 0] = 1.0  # the centre: a shift of at most 2 keeps it inside
    y = RandomShift(max_shift, seed=11)(images, training=True).numpy()
    assert y.shape == images.shape
    np.testing.assert_array_equal(y.sum(axis=(1, 2, 3)), np.ones(batch))  # one hot pixel each
    rows, cols = np.nonzero(y[..., 0])[1:]
    shifts = np.stack([rows - 4, cols - 4], axis=1)
    # A twin layer with the same seed draws the same shifts.
    np.testing.assert_array_equal(RandomShift(max_shift, seed=11).sample_shifts(batch), shifts)
    # 64 draws of 25 equally likely shifts: each of the 5 values of dy appears (a value
    # is missed with probability 5 * 0.8^64 ~ 3e-6).
    assert set(shifts[:, 0]) == set(range(-max_shift, max_shift + 1))
    np.testing.assert_array_equal(RandomShift(max_shift, seed=11)(images), images)


def test_flip_twice_is_the_identity_and_random_flip_flips_some():
    images = RNG.normal(size=(64, 4, 5, 2)).astype("float32")
    np.testing.assert_array_equal(flip_left_right(images), images[:, :, ::-1, :])
    np.testing.assert_array_equal(flip_left_right(flip_left_right(images)), images)
    layer = RandomFlip(seed=3)
    np.testing.assert_array_equal(layer(images), images)
    y = layer(images, training=True).numpy()
    flipped = np.all(y == images[:, :, ::-1, :], axis=(1, 2, 3))
    kept = np.all(y == images, axis=(1, 2, 3))
    assert np.all(flipped ^ kept)  # each image is one or the other
    assert 16 < flipped.sum() < 48  # Binomial(64, 1/2): mean 32, standard deviation 4


def test_augmentation_layers_run_in_a_tf_function_with_unknown_batch():
    shift, flip = RandomShift(1, seed=0), RandomFlip(seed=0)
    step = tf.function(
        lambda x: flip(shift(x, training=True), training=True),
        input_signature=[tf.TensorSpec((None, 6, 6, 1), tf.float32)],
    )
    for batch in (1, 3):
        assert step(tf.ones((batch, 6, 6, 1))).shape == (batch, 6, 6, 1)
    assert step.experimental_get_tracing_count() == 1


def test_augmentation_rejects_bad_arguments():
    with pytest.raises(ValueError, match="Received: max_shift=-1"):
        RandomShift(-1)
    with pytest.raises(ValueError, match="Received: max_shift=1.5"):
        RandomShift(1.5)
    with pytest.raises(ValueError, match="images"):
        RandomFlip()(np.ones((2, 3, 4), "float32"))


# ------------------------------------------------------------ configuration


@pytest.mark.parametrize(
    "layer",
    [
        Dropout(0.2, seed=1),
        BatchNormalization(momentum=0.9, epsilon=1e-4, center=False, axis=1),
        GaussianNoise(0.5, seed=2),
        RandomShift(3, seed=4),
        RandomFlip(seed=5),
    ],
    ids=lambda layer: type(layer).__name__,
)
def test_get_config_round_trip(layer):
    config = layer.get_config()
    assert type(layer).from_config(config).get_config() == config
