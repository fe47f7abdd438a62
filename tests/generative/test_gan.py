"""Tests of mp/generative/gan.py: losses, the optimal discriminator, training, modes, resume."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from mp.engine import Trainer
from mp.generative import gan as gan_lib


def _affine_generator(scale, shift):
    """G(z) = scale * z + shift for 1-D z: p_g = N(shift, scale^2)."""
    z = keras.Input((1,))
    layer = keras.layers.Dense(1)
    model = keras.Model(z, layer(z))
    layer.set_weights([np.array([[scale]], np.float32), np.array([shift], np.float32)])
    return model


def _mlp(units, inputs=1):
    x = keras.Input((inputs,))
    h = x
    for u in units:
        h = keras.layers.Dense(u, activation="tanh")(h)
    return keras.Model(x, keras.layers.Dense(1)(h))


# --- losses ----------------------------------------------------------------


def test_losses_from_logits_equal_the_probability_forms():
    logits = tf.constant([-3.0, -0.5, 0.0, 2.0])
    d = tf.sigmoid(logits).numpy()
    real, fake = logits, logits[::-1]
    d_fake = d[::-1]
    np.testing.assert_allclose(
        gan_lib.discriminator_loss(real, fake), -(np.log(d) + np.log(1 - d_fake)), rtol=1e-5
    )
    np.testing.assert_allclose(
        gan_lib.generator_loss(fake, "saturating"), np.log(1 - d_fake), rtol=1e-5
    )
    np.testing.assert_allclose(
        gan_lib.generator_loss(fake, "non_saturating"), -np.log(d_fake), rtol=1e-5
    )
    # Stable where the probability form is not: D = sigmoid(-200) rounds to 0 in float32.
    assert np.isfinite(gan_lib.generator_loss(tf.constant([-200.0]), "non_saturating")).all()
    with pytest.raises(ValueError, match="Received: kind='wasserstein'"):
        gan_lib.generator_loss(logits, "wasserstein")


def test_saturating_gradient_vanishes_where_d_rejects_the_samples():
    # At logit l = -5, D(G(z)) = sigmoid(-5) = 1 / (1 + e^5) = 0.0066929.
    #   saturating:     d/dl [-softplus(l)] = -sigmoid(l)      = -0.0066929 (almost flat)
    #   non-saturating: d/dl [softplus(-l)] = -(1 - sigmoid(l)) = -0.9933071 (steep)
    # At l = +5 the roles swap.
    logits = tf.Variable([-5.0, 5.0])
    grads = {}
    for kind in gan_lib.GENERATOR_LOSSES:
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(gan_lib.generator_loss(logits, kind))
        grads[kind] = tape.gradient(loss, logits).numpy()
    s = 1 / (1 + math.exp(5))  # 0.0066929
    np.testing.assert_allclose(grads["saturating"], [-s, -(1 - s)], rtol=1e-5)
    np.testing.assert_allclose(grads["non_saturating"], [-(1 - s), -s], rtol=1e-5)
    assert abs(grads["non_saturating"][0]) > 100 * abs(grads["saturating"][0])


# --- the game ------------------------------------------------------------------


def test_discriminator_alone_learns_the_optimal_discriminator():
    # p_d = N(0, 1), p_g = N(1.5, 1) (G fixed). Then
    #   D*(x) = p_d / (p_d + p_g) = sigmoid(log p_d - log p_g)
    #         = sigmoid(-x^2/2 + (x - 1.5)^2/2) = sigmoid(-1.5 x + 1.125),
    # which a logistic-regression discriminator (one Dense unit) represents exactly.
    keras.utils.set_random_seed(0)
    gan = gan_lib.GAN(_affine_generator(1.0, 1.5), _mlp(()), latent_dim=1, seed=1)
    gan.compile(keras.optimizers.Adam(0.05), keras.optimizers.SGD(0.0))
    step = tf.function(gan.discriminator_step)
    rng = np.random.default_rng(0)
    for _ in range(400):
        step(tf.constant(rng.normal(size=(1000, 1)), tf.float32))
    grid = np.linspace(-2.0, 3.5, 23, dtype=np.float32)[:, None]
    d = tf.sigmoid(gan.discriminator(grid)).numpy()[:, 0]
    d_star = 1 / (1 + np.exp(-(-1.5 * grid[:, 0] + 1.125)))
    np.testing.assert_allclose(d, d_star, atol=0.04)
    kernel, bias = gan.discriminator.get_weights()
    assert kernel[0, 0] == pytest.approx(-1.5, abs=0.15)
    assert bias[0] == pytest.approx(1.125, abs=0.15)


def test_training_moves_the_generator_towards_the_data():
    # Data N(3, 0.5^2); G starts as N(0, 1) (an affine map of z). A few hundred
    # alternating updates bring the mean and the spread of G's samples close.
    keras.utils.set_random_seed(0)
    gan = gan_lib.GAN(_affine_generator(1.0, 0.0), _mlp((16, 16)), latent_dim=1, seed=2)
    gan.compile(keras.optimizers.Adam(0.01, beta_1=0.5), keras.optimizers.Adam(0.01, beta_1=0.5))
    step = tf.function(gan.adversarial_step)
    rng = np.random.default_rng(0)
    for _ in range(400):
        step(tf.constant(3.0 + 0.5 * rng.normal(size=(256, 1)), tf.float32))
    samples = gan.sample(5000).numpy()[:, 0]
    assert samples.mean() == pytest.approx(3.0, abs=0.3)  # started at 0
    assert samples.std() == pytest.approx(0.5, abs=0.25)  # started at 1


def test_one_step_is_d_steps_updates_of_d_on_their_own_rows_then_one_of_g():
    def fresh(d_steps):
        keras.utils.set_random_seed(0)
        g, d = gan_lib.build_networks("mlp", 2, (2,), hidden_units=(8,))
        gan = gan_lib.GAN(g, d, latent_dim=2, d_steps=d_steps, seed=7)
        gan.compile(keras.optimizers.Adam(1e-2), keras.optimizers.Adam(1e-2))
        return gan

    real = tf.constant(gan_lib.sample_ring(48, seed=3))
    game = fresh(3)
    outputs = tf.function(game.adversarial_step)(real)
    # The same by hand: D on rows 0-15, 16-31, 32-47 in turn, then G on 16 codes.
    by_hand = fresh(1)
    d_outputs = [by_hand.discriminator_step(real[i : i + 16]) for i in (0, 16, 32)]
    g_loss = by_hand.generator_step(16)
    assert int(game.d_optimizer.iterations.numpy()) == 3
    assert int(game.g_optimizer.iterations.numpy()) == 1
    for a, b in zip(game.weights, by_hand.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)
    mean_d_loss = np.mean([o["loss/discriminator"].numpy() for o in d_outputs])
    assert float(outputs["loss/discriminator"]) == pytest.approx(mean_d_loss, rel=1e-5)
    assert float(outputs["loss/generator"]) == pytest.approx(float(g_loss), rel=1e-5)
    with pytest.raises((tf.errors.InvalidArgumentError, ValueError)):  # 40 rows, 3 parts
        game.adversarial_step(real[:40])


def test_drawing_samples_leaves_training_noise_alone():
    # Two identical GANs; one draws samples (as evaluations and the FID do) between steps.
    # Training draws from its own stream, so both end with the same weights.
    def trained(look_in_between):
        keras.utils.set_random_seed(0)
        g, d = gan_lib.build_networks("mlp", 2, (2,), hidden_units=(8,))
        gan = gan_lib.GAN(g, d, latent_dim=2, seed=4)
        gan.compile(keras.optimizers.Adam(1e-2), keras.optimizers.Adam(1e-2))
        step = tf.function(gan.adversarial_step)
        for i in range(4):
            step(tf.constant(gan_lib.sample_ring(16, seed=i)))
            if look_in_between:
                gan.sample(32)
        return [w.numpy() for w in gan.weights], gan.sample(8).numpy()

    (quiet, samples), (looked, _) = trained(False), trained(True)
    for a, b in zip(quiet, looked):
        np.testing.assert_array_equal(a, b)
    # And samples are not the training stream's first draws.
    g, d = gan_lib.build_networks("mlp", 2, (2,), hidden_units=(8,))
    first, second = (gan_lib.GAN(g, d, latent_dim=2, seed=4) for _ in range(2))
    training_draw = g(first.sample_latent(8), training=False).numpy()
    assert not np.allclose(second.sample(8).numpy(), training_draw)


def test_model_fit_runs_the_same_step():
    g, d = gan_lib.build_networks("dcgan", 4, (8, 8, 1), filters=4)
    gan = gan_lib.GAN(g, d, latent_dim=4, d_steps=2)
    gan.compile(d_optimizer=keras.optimizers.Adam(1e-3), g_optimizer=keras.optimizers.Adam(1e-3))
    x = np.random.default_rng(0).uniform(size=(64, 8, 8, 1)).astype(np.float32)
    history = gan.fit(x, batch_size=16, epochs=1, verbose=0)  # 4 steps of 2 x 8 rows
    assert set(history.history) == {"d_loss", "g_loss", "d_real", "d_fake"}
    assert all(np.isfinite(v[0]) for v in history.history.values())
    assert int(gan.d_optimizer.iterations.numpy()) == 8
    assert int(gan.g_optimizer.iterations.numpy()) == 4
    assert gan(tf.zeros((3, 4))).shape == (3, 8, 8, 1)


def test_builders_check_their_arguments():
    with pytest.raises(ValueError, match=r"Received: image_shape=\(10, 10, 1\)"):
        gan_lib.dcgan_generator(8, (10, 10, 1))
    with pytest.raises(ValueError, match="Received: model='vae'"):
        gan_lib.build_networks("vae", 8, (8, 8, 1))
    g, d = gan_lib.build_networks("mlp", 2, (2,))
    with pytest.raises(ValueError, match="Received: d_steps=0"):
        gan_lib.GAN(g, d, latent_dim=2, d_steps=0)
    with pytest.raises(ValueError, match="Received: generator_loss='minimax'"):
        gan_lib.GAN(g, d, latent_dim=2, generator_loss="minimax")


# --- mode collapse -------------------------------------------------------------


def test_mode_statistics_on_hand_made_samples():
    modes = gan_lib.ring_modes(8, 2.0)
    std = 0.02
    rng = np.random.default_rng(0)
    # 100 samples per mode, 1 std around it: all within 3 std (|noise| < 0.06 here by clipping).
    noise = np.clip(std * rng.normal(size=(800, 2)), -0.04, 0.04)  # |noise| <= 0.057 < 0.06
    everywhere = np.repeat(modes, 100, axis=0) + noise
    stats = gan_lib.mode_statistics(everywhere, modes, std)
    assert stats["modes_covered"] == 8 and stats["high_quality_fraction"] == 1.0
    assert stats["mode_counts"] == [100] * 8
    # Mode collapse: everything on mode 0.
    collapsed = modes[0] + noise
    assert gan_lib.modes_covered(collapsed, modes, std) == 1
    assert gan_lib.high_quality_fraction(collapsed, modes, std) == 1.0
    # Half the samples at the centre of the ring (2 away from every mode): quality 1/2.
    half = np.concatenate([everywhere[::2], np.zeros((400, 2))])
    assert gan_lib.high_quality_fraction(half, modes, std) == 0.5
    assert gan_lib.modes_covered(half, modes, std) == 8
    # One stray sample on mode 3 among 800 on mode 0: 1/801 < 1% of the good ones.
    stray = np.concatenate([collapsed, modes[3:4]])
    assert gan_lib.modes_covered(stray, modes, std) == 1
    assert gan_lib.modes_covered(stray, modes, std, min_share=0.0) == 2
    # Just outside 3 std does not count: 0.061 > 3 * 0.02.
    assert gan_lib.high_quality_fraction(modes + [0.061, 0.0], modes, std) == 0.0


def test_ring_dataset_batches_are_fixed_by_their_index():
    full = list(gan_lib.ring_dataset(4, seed=3).take(3).as_numpy_iterator())
    resumed = next(iter(gan_lib.ring_dataset(4, seed=3, skip_batches=2)))
    np.testing.assert_array_equal(full[2], resumed.numpy())
    stats = gan_lib.mode_statistics(
        np.concatenate(list(gan_lib.ring_dataset(500).take(4))), gan_lib.ring_modes(), 0.02
    )
    assert stats["modes_covered"] == 8 and stats["high_quality_fraction"] > 0.98  # 3 std: 98.9%


# --- the engine and resuming ----------------------------------------------------


def _task(d_steps=2):
    def make_gan():
        g, d = gan_lib.build_networks("mlp", 2, (2,), hidden_units=(8,))
        return gan_lib.GAN(g, d, latent_dim=2, d_steps=d_steps, seed=5)

    return gan_lib.GANTask(
        make_gan, lambda: keras.optimizers.Adam(1e-2), lambda: keras.optimizers.Adam(1e-2)
    )


def test_resume_restores_both_optimizers_and_the_noise(tmp_path):
    def data(start):
        return gan_lib.ring_dataset(32, seed=1, skip_batches=start)

    keras.utils.set_random_seed(0)
    straight = _task()
    Trainer(straight, tmp_path / "straight", train_steps=6, log_every=1, progress=False).fit(data)

    keras.utils.set_random_seed(0)
    first = _task()
    Trainer(first, tmp_path / "resumed", train_steps=3, log_every=1, progress=False).fit(data)
    assert int(first.gan.d_optimizer.iterations.numpy()) == 6  # 3 steps of 2 D updates
    assert int(first.gan.g_optimizer.iterations.numpy()) == 3
    keras.utils.set_random_seed(123)  # a fresh process: other initial weights
    second = _task()
    trainer = Trainer(second, tmp_path / "resumed", train_steps=6, log_every=1, progress=False)
    assert trainer.resumed_from_step == 3
    assert int(second.gan.d_optimizer.iterations.numpy()) == 6
    assert int(second.gan.g_optimizer.iterations.numpy()) == 3
    trainer.fit(data)
    assert int(second.gan.d_optimizer.iterations.numpy()) == 12
    assert int(second.gan.g_optimizer.iterations.numpy()) == 6
    # Same data, same noise, same optimizer states: the same weights as without the restart.
    for a, b in zip(straight.gan.weights, second.gan.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)


def test_build_networks_refuses_an_unknown_option():
    # A misspelt option must not be ignored silently.
    with pytest.raises(TypeError, match="hidden_unit"):
        gan_lib.build_networks("mlp", 2, (2,), hidden_unit=(8,))


# --- what apps/train_gan.py calls --------------------------------------------------


def test_make_gan_builds_the_variant_with_the_game_options():
    gan = gan_lib.make_gan(
        "mlp", 3, (2,), hidden_units=(5,), generator_loss="saturating", d_steps=2, seed=4
    )
    assert (gan.latent_dim, gan.d_steps, gan.generator_loss_kind) == (3, 2, "saturating")
    assert gan.generator.name == "mlp_generator" and gan(tf.zeros((7, 3))).shape == (7, 2)
    assert gan.discriminator.get_layer("dense1").units == 5
    dcgan = gan_lib.make_gan("dcgan", 4, (8, 8, 1), filters=4)
    assert dcgan.generator(tf.zeros((1, 4))).shape == (1, 8, 8, 1)
    with pytest.raises(ValueError, match="Received: model='vae'"):
        gan_lib.make_gan("vae", 3, (2,))


def test_describe_modes_says_what_mode_statistics_found():
    modes = gan_lib.ring_modes(8, 2.0)
    stats = gan_lib.mode_statistics(np.concatenate([modes[:6], np.zeros((2, 2))]), modes, 0.02)
    assert gan_lib.describe_modes(stats) == "6/8 modes covered, high-quality fraction 0.750"
