"""Generative Adversarial Networks: the minimax game, both generator losses, DCGAN and MLP nets.

Goodfellow et al. 2014, "Generative Adversarial Nets"; Radford et al. 2016,
"Unsupervised Representation Learning with Deep Convolutional GANs" (DCGAN).

A generator `G: z -> x` maps noise `z ~ N(0, I)` to samples; a discriminator
`D: x -> [0, 1]` gives the probability that `x` is real. They play

    min_G max_D  V(G, D) = E_{x~p_d}[log D(x)] + E_{z~p_z}[log(1 - D(G(z)))]

For a fixed G the best D is `D*(x) = p_d(x) / (p_d(x) + p_g(x))`, and then
`V(G, D*) = -log 4 + 2 JS(p_d || p_g)` (see `mp.divergences`): against the best
discriminator, the minimax ("saturating") generator minimises a Jensen-Shannon
divergence. The non-saturating loss below has the same fixed point but another
objective (against D* it minimises `KL(p_g || p_d) - 2 JS(p_d || p_g)`).

Both networks here return *logits* `l` with `D(x) = sigmoid(l)`, and every loss
is written with `softplus(a) = log(1 + e^a)`, which never takes the log of a
number that rounded to 0:

    -log D(x)        = -log sigmoid(l)     = softplus(-l)
    -log(1 - D(x))   = -log sigmoid(-l)    = softplus(l)

    discriminator    L_D = softplus(-l_real) + softplus(l_fake)
                         = -[log D(x) + log(1 - D(G(z)))]
    generator, "saturating"      minimise  log(1 - D(G(z))) = -softplus(l_fake)
    generator, "non_saturating"  minimise -log D(G(z))      =  softplus(-l_fake)

Both generator losses have the same fixed points, but early in training D
easily rejects the samples (`D(G(z)) ~ 0`) and there the saturating loss is
flat: its gradient with respect to the logit is `-sigmoid(l_fake) ~ 0`, while
the non-saturating one's is `-(1 - sigmoid(l_fake)) ~ -1`. That is why the
non-saturating loss is the one used in practice.

Training alternates, each network with its own optimizer: one iteration of
`GAN.adversarial_step(x)` makes `d_steps` discriminator updates (gradient
ascent on V), each on its own share of the real rows `x`, then one generator
update. The ratio is fixed by the step itself, with no counter and no
branch, so a resumed run keeps it and the step runs unchanged on several
replicas. The same step serves Keras' `model.fit` (the `train_step`
override) and the package's engine (`GANTask`). Training noise comes from a `tf.random.Generator` that is
also checkpointed, so a resumed run draws the same noise an uninterrupted one
would; samples drawn to look at or to score (`GAN.sample`, evaluation) come
from a second generator, so evaluating never changes what training draws.

Mode collapse: G may cover a few modes of `p_d` only. `modes_covered` and
`high_quality_fraction` measure it on a ring of Gaussians as in Srivastava et
al. 2017, "VEEGAN: Reducing Mode Collapse in GANs using Implicit Variational
Learning".

Pictures for a notebook as for `apps/train_gan.py`: `ring_figure` (samples over
the ring's modes) and `learning_curves_figure`; grids of images are
`mp.plotting.image_grid_figure`.

Course: ch5.2 Generative Adversarial Networks (5.2.1-5.2.4).
"""

import math

import keras
import numpy as np
import tensorflow as tf

from mp.engine.precision import unscaled
from mp.engine.task import Task, _build, float32, global_mean, minimize

GENERATOR_LOSSES = ("non_saturating", "saturating")


# --- losses --------------------------------------------------------------


def discriminator_loss(real_logits, fake_logits):
    """Per-example `-[log D(x) + log(1 - D(G(z)))]` from logits (module docstring)."""
    return tf.nn.softplus(-real_logits) + tf.nn.softplus(fake_logits)


def generator_loss(fake_logits, kind="non_saturating"):
    """Per-example generator loss from the logits `D` gives the samples.

    Args:
      fake_logits: logits of `D(G(z))`.
      kind: `"saturating"`: `log(1 - D(G(z))) = -softplus(l)`;
        `"non_saturating"`: `-log D(G(z)) = softplus(-l)`.

    Returns:
      The per-example loss, to be minimised.

    Raises:
      ValueError: for an unknown `kind`.
    """
    if kind == "saturating":
        return -tf.nn.softplus(fake_logits)
    if kind == "non_saturating":
        return tf.nn.softplus(-fake_logits)
    raise ValueError(f"kind must be one of {GENERATOR_LOSSES}. Received: kind={kind!r}")


# --- networks ------------------------------------------------------------


def _check_shape(output_shape):
    output_shape = tuple(int(s) for s in output_shape)
    if not output_shape or min(output_shape) <= 0:
        raise ValueError(f"output_shape must be positive sizes. Received: {output_shape}")
    return output_shape


def mlp_generator(latent_dim, output_shape, hidden_units=(256, 256), output_activation="sigmoid"):
    """`z -> x` through dense ReLU layers.

    Args:
      latent_dim: size of `z`.
      output_shape: shape of one sample, e.g. `(28, 28, 1)` or `(2,)`.
      hidden_units: widths of the hidden layers.
      output_activation: `"sigmoid"` for pixels in [0, 1], `None` for points
        in R^d (toy distributions).

    Returns:
      A functional `keras.Model`.
    """
    output_shape = _check_shape(output_shape)
    if latent_dim <= 0:
        raise ValueError(f"latent_dim must be positive. Received: latent_dim={latent_dim}")
    z = keras.Input((latent_dim,), name="z")
    x = z
    for i, units in enumerate(hidden_units, start=1):
        x = keras.layers.Dense(units, activation="relu", name=f"dense{i}")(x)
    x = keras.layers.Dense(math.prod(output_shape), activation=output_activation, name="out")(x)
    x = keras.layers.Reshape(output_shape, name="sample")(x)
    return keras.Model(z, x, name="mlp_generator")


def mlp_discriminator(input_shape, hidden_units=(256, 256), negative_slope=0.2):
    """`x -> logit` through dense leaky-ReLU layers.

    Args:
      input_shape: shape of one sample.
      hidden_units: widths of the hidden layers.
      negative_slope: slope of the leaky ReLU for negative inputs.

    Returns:
      A functional `keras.Model` returning one logit per sample, shape `[B, 1]`.
    """
    input_shape = _check_shape(input_shape)
    x_in = keras.Input(input_shape, name="x")
    x = keras.layers.Flatten(name="flatten")(x_in)
    for i, units in enumerate(hidden_units, start=1):
        x = keras.layers.Dense(units, name=f"dense{i}")(x)
        x = keras.layers.LeakyReLU(negative_slope, name=f"lrelu{i}")(x)
    logits = keras.layers.Dense(1, name="logit")(x)
    return keras.Model(x_in, logits, name="mlp_discriminator")


def _dcgan_base(image_shape):
    height, width, _ = _check_shape(image_shape)
    if height != width or height % 4:
        raise ValueError(
            "the DCGAN nets double the resolution twice, so images must be square with a side "
            f"divisible by 4. Received: image_shape={tuple(image_shape)}"
        )
    return height // 4


def dcgan_generator(latent_dim, image_shape, filters=128):
    """DCGAN generator: transposed convolutions only, no dense layer.

        z [1x1xlatent] -> convT k=s/4 valid -> s/4 x s/4 x filters  (BN, ReLU)
                       -> convT 4 stride 2  -> s/2 x s/2 x filters/2 (BN, ReLU)
                       -> convT 4 stride 2  -> s x s x channels      (sigmoid)

    for images of side `s` (8 for digits: 2 -> 4 -> 8; 28 for Fashion-MNIST:
    7 -> 14 -> 28). Batch normalisation and ReLU in the generator, a sigmoid
    for pixels in [0, 1], as Radford et al. recommend (they use tanh for
    [-1, 1]).

    Args:
      latent_dim: size of `z`.
      image_shape: `(s, s, channels)`, `s` divisible by 4.
      filters: channels of the first feature map (halved once).

    Returns:
      A functional `keras.Model` mapping `z [B, latent_dim]` to images.
    """
    base = _dcgan_base(image_shape)
    if latent_dim <= 0 or filters < 2:
        raise ValueError(
            f"latent_dim must be positive and filters >= 2. Received: latent_dim={latent_dim}, "
            f"filters={filters}"
        )
    z = keras.Input((latent_dim,), name="z")
    x = keras.layers.Reshape((1, 1, latent_dim), name="z_map")(z)
    x = keras.layers.Conv2DTranspose(filters, base, use_bias=False, name="project")(x)
    x = keras.layers.BatchNormalization(name="bn1")(x)
    x = keras.layers.ReLU(name="relu1")(x)
    x = keras.layers.Conv2DTranspose(
        filters // 2, 4, strides=2, padding="same", use_bias=False, name="up1"
    )(x)
    x = keras.layers.BatchNormalization(name="bn2")(x)
    x = keras.layers.ReLU(name="relu2")(x)
    x = keras.layers.Conv2DTranspose(
        image_shape[-1], 4, strides=2, padding="same", activation="sigmoid", name="up2"
    )(x)
    return keras.Model(z, x, name="dcgan_generator")


def dcgan_discriminator(image_shape, filters=64, negative_slope=0.2):
    """DCGAN discriminator: strided convolutions with leaky ReLU, no pooling, no dense layer.

        x [s x s] -> conv 4 stride 2 -> s/2 x s/2 x filters   (leaky ReLU)
                  -> conv 4 stride 2 -> s/4 x s/4 x 2 filters (leaky ReLU)
                  -> conv k=s/4 valid -> 1 x 1 x 1  (the logit)

    Batch normalisation is left out of D: its batch statistics would mix
    information across the separate real and fake batches.

    Args:
      image_shape: `(s, s, channels)`, `s` divisible by 4.
      filters: channels of the first convolution (doubled once).
      negative_slope: slope of the leaky ReLU.

    Returns:
      A functional `keras.Model` returning one logit per image, shape `[B, 1]`.
    """
    base = _dcgan_base(image_shape)
    x_in = keras.Input(tuple(image_shape), name="x")
    x = keras.layers.Conv2D(filters, 4, strides=2, padding="same", name="down1")(x_in)
    x = keras.layers.LeakyReLU(negative_slope, name="lrelu1")(x)
    x = keras.layers.Conv2D(2 * filters, 4, strides=2, padding="same", name="down2")(x)
    x = keras.layers.LeakyReLU(negative_slope, name="lrelu2")(x)
    x = keras.layers.Conv2D(1, base, name="logit_map")(x)
    logits = keras.layers.Reshape((1,), name="logit")(x)
    return keras.Model(x_in, logits, name="dcgan_discriminator")


def build_networks(model, latent_dim, sample_shape, *, hidden_units=(256, 256), filters=64):
    """`(generator, discriminator)` of the variant `model` (`"mlp"` or `"dcgan"`).

    For `mlp`, samples of rank 1 (points) get a linear output, images a
    sigmoid. Each option applies to one variant and the other ignores it:
    `hidden_units` (both nets of mlp) and `filters` (dcgan: D's first
    convolution; the generator gets `2 * filters`).
    """
    sample_shape = _check_shape(sample_shape)
    if model == "mlp":
        activation = None if len(sample_shape) == 1 else "sigmoid"
        return (
            mlp_generator(latent_dim, sample_shape, hidden_units, output_activation=activation),
            mlp_discriminator(sample_shape, hidden_units),
        )
    if model == "dcgan":
        return (
            dcgan_generator(latent_dim, sample_shape, filters=2 * filters),
            dcgan_discriminator(sample_shape, filters=filters),
        )
    raise ValueError(f"model must be 'mlp' or 'dcgan'. Received: model={model!r}")


def make_gan(
    model,
    latent_dim,
    sample_shape,
    *,
    hidden_units=(256, 256),
    filters=64,
    generator_loss="non_saturating",
    d_steps=1,
    seed=0,
):
    """A `GAN` of the networks `build_networks(model, ...)` makes, e.g. for `GANTask`.

    Under a distribution strategy pass `functools.partial(make_gan, ...)` to `GANTask`,
    so that the strategy's scope owns the variables. The arguments are those of
    `build_networks` and `GAN`.
    """
    generator, discriminator = build_networks(
        model, latent_dim, sample_shape, hidden_units=hidden_units, filters=filters
    )
    return GAN(
        generator,
        discriminator,
        latent_dim=latent_dim,
        generator_loss=generator_loss,
        d_steps=d_steps,
        seed=seed,
    )


# --- the game ------------------------------------------------------------


def split_rows(real, parts):
    """`real` (a tensor or a nest of tensors) cut into `parts` equal shares of rows, in order."""
    if parts == 1:
        return [real]
    pieces = [tf.split(t, parts) for t in tf.nest.flatten(real)]
    return [tf.nest.pack_sequence_as(real, [p[i] for p in pieces]) for i in range(parts)]


class GAN(keras.Model):
    """A generator and a discriminator trained against each other.

    Usable with `model.fit` (after `compile(d_optimizer=..., g_optimizer=...)`)
    and, through `GANTask`, with `mp.engine.Trainer`; with `d_steps > 1` each
    training batch holds the rows of `d_steps` discriminator updates. Calling
    the model maps latent codes to samples.

    Args:
      generator: a `keras.Model` from `z [B, latent_dim]` to samples.
      discriminator: a `keras.Model` from samples to logits `[B, 1]`.
      latent_dim: size of `z`.
      generator_loss: `"non_saturating"` (default) or `"saturating"`.
      d_steps: discriminator updates per generator update (>= 1), all in one
        `adversarial_step`.
      seed: seed of training's noise generator (`sample` draws with `seed + 1`).
    """

    def __init__(
        self,
        generator,
        discriminator,
        *,
        latent_dim,
        generator_loss="non_saturating",
        d_steps=1,
        seed=0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if generator_loss not in GENERATOR_LOSSES:
            raise ValueError(
                f"generator_loss must be one of {GENERATOR_LOSSES}. "
                f"Received: generator_loss={generator_loss!r}"
            )
        if not isinstance(d_steps, (int, np.integer)) or d_steps < 1:
            raise ValueError(f"d_steps must be a positive integer. Received: d_steps={d_steps}")
        self.generator = generator
        self.discriminator = discriminator
        self.latent_dim = int(latent_dim)
        self.generator_loss_kind = generator_loss
        self.d_steps = int(d_steps)
        # Training noise, checkpointed by `checkpoint_items`; samples to look at come from
        # their own stream.
        self.noise = tf.random.Generator.from_seed(seed)
        self.sample_noise = tf.random.Generator.from_seed(seed + 1)
        self.d_optimizer = None
        self.g_optimizer = None
        self.trackers = {
            name: keras.metrics.Mean(name=name) for name in ("d_loss", "g_loss", "d_real", "d_fake")
        }

    def compile(self, d_optimizer, g_optimizer, **kwargs):
        """Sets the two optimizers and builds their slots."""
        # No optimizer of Keras' own: the two below are the only ones that update anything.
        super().compile(optimizer=None, **kwargs)
        self.d_optimizer = d_optimizer
        self.g_optimizer = g_optimizer
        self.d_optimizer.build(self.discriminator.trainable_variables)
        self.g_optimizer.build(self.generator.trainable_variables)

    def call(self, z, training=False):
        return self.generator(z, training=training)

    def sample_latent(self, batch_size):
        """Training's `z ~ N(0, I)`, shape `[batch_size, latent_dim]` (checkpointed stream)."""
        return self.noise.normal([batch_size, self.latent_dim])

    def sample(self, num_samples):
        """`num_samples` samples of G (inference mode), as a tensor.

        Their noise comes from `sample_noise`, not from training's stream.
        """
        z = self.sample_noise.normal([num_samples, self.latent_dim])
        return float32(self.generator(z, training=False))

    def discriminator_step(self, real):
        """One update of D on the real batch `real` and as many fresh samples of G.

        Returns:
          Global-mean shares of `loss/discriminator`, `metrics/d_real` (mean D(x))
          and `metrics/d_fake` (mean D(G(z))).
        """
        fake = self.generator(self.sample_latent(tf.shape(real)[0]), training=True)
        with tf.GradientTape() as tape:
            real_logits = float32(self.discriminator(real, training=True))[:, 0]
            fake_logits = float32(self.discriminator(fake, training=True))[:, 0]
            loss = global_mean(discriminator_loss(real_logits, fake_logits))
        minimize(self.d_optimizer, tape, loss, self.discriminator.trainable_variables)
        return {
            "loss/discriminator": loss,
            "metrics/d_real": global_mean(tf.sigmoid(real_logits)),
            "metrics/d_fake": global_mean(tf.sigmoid(fake_logits)),
        }

    def _generator_loss(self, batch_size):
        fake = self.generator(self.sample_latent(batch_size), training=True)
        fake_logits = float32(self.discriminator(fake, training=True))
        return global_mean(generator_loss(fake_logits[:, 0], self.generator_loss_kind))

    def generator_step(self, batch_size):
        """One update of G on `batch_size` fresh latent codes; returns its loss share."""
        with tf.GradientTape() as tape:
            loss = self._generator_loss(batch_size)
        minimize(self.g_optimizer, tape, loss, self.generator.trainable_variables)
        return loss

    def adversarial_step(self, real):
        """One iteration of the game: `d_steps` updates of D, then one update of G.

        Args:
          real: the real rows of all `d_steps` discriminator updates, `d_steps`
            equal parts in order (`d_steps * B` rows for batches of B; the
            number of rows must divide by `d_steps`); a tensor, or a dict of
            tensors with rows in step (a conditional GAN's pairs).

        Returns:
          The discriminator's outputs averaged over its `d_steps` updates, plus
          `loss/generator`.
        """
        parts = split_rows(real, self.d_steps)
        steps = [self.discriminator_step(part) for part in parts]
        outputs = {key: tf.add_n([s[key] for s in steps]) / len(steps) for key in steps[0]}
        return outputs | self.generator_update(parts[-1])

    def generator_update(self, real):
        """The generator's update after D's, given the last share of real rows.

        G here needs only their number (as many fresh codes); a conditional GAN
        (`mp.generative.translation`) overrides it to translate them. Returns a dict
        with at least `loss/generator`.
        """
        return {"loss/generator": self.generator_step(tf.shape(tf.nest.flatten(real)[0])[0])}

    # Keras' model.fit

    @property
    def metrics(self):
        return list(self.trackers.values())

    def train_step(self, data):
        real = data[0] if isinstance(data, (tuple, list)) else data
        outputs = self.adversarial_step(real)
        for name, key in (
            ("d_loss", "loss/discriminator"),
            ("g_loss", "loss/generator"),
            ("d_real", "metrics/d_real"),
            ("d_fake", "metrics/d_fake"),
        ):
            self.trackers[name].update_state(outputs[key])
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    def checkpoint_items(self):
        """What a resumed run needs: both nets, both optimizers, the noise.

        A loss-scaled optimizer (mixed_float16) is saved as its inner one: the same
        checkpoint in every precision.
        """
        return {
            "generator": self.generator,
            "discriminator": self.discriminator,
            "d_optimizer": unscaled(self.d_optimizer),
            "g_optimizer": unscaled(self.g_optimizer),
            "noise": self.noise,
        }


class GANTask(Task):
    """The GAN game as an `mp.engine` task; one engine step is `GAN.adversarial_step`.

    A step reads `d_steps` batches at once: give it batches of `d_steps * B` rows.

    Args:
      gan: a `GAN`, or a function returning one (under a distribution strategy
        it must be a function, so that the strategy's scope owns the variables).
      d_optimizer, g_optimizer: optimizers (or functions returning them) of D and G.
    """

    def __init__(self, gan, d_optimizer, g_optimizer):
        self._gan_factory = gan
        self._optimizer_factories = (d_optimizer, g_optimizer)
        self.gan = None

    def build(self):
        self.gan = _build(self._gan_factory)
        self.gan.compile(*(_build(f) for f in self._optimizer_factories))

    def checkpoint_items(self):
        return self.gan.checkpoint_items()

    def train_step(self, batch):
        real = batch[0] if isinstance(batch, (tuple, list)) else batch
        return self.gan.adversarial_step(real)

    def eval_step(self, batch):
        """Sums of the discriminator loss, D(x) and D(G(z)) on held-out real data."""
        real = batch[0] if isinstance(batch, (tuple, list)) else batch
        count = tf.shape(real)[0]
        fake = self.gan.sample(count)
        real_logits = float32(self.gan.discriminator(real, training=False))[:, 0]
        fake_logits = float32(self.gan.discriminator(fake, training=False))[:, 0]
        return {
            "d_loss": tf.reduce_sum(discriminator_loss(real_logits, fake_logits)),
            "g_loss": tf.reduce_sum(generator_loss(fake_logits, self.gan.generator_loss_kind)),
            "d_real": tf.reduce_sum(tf.sigmoid(real_logits)),
            "d_fake": tf.reduce_sum(tf.sigmoid(fake_logits)),
            "count": tf.cast(count, tf.float32),
        }

    def export(self, path):
        self.gan.generator.save(path)


# --- a toy with modes: the ring of Gaussians ----------------------------


def ring_modes(num_modes=8, radius=2.0):
    """Centres of `num_modes` Gaussians evenly spaced on a circle, shape `[num_modes, 2]`."""
    angles = 2 * np.pi * np.arange(num_modes) / num_modes
    return radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def sample_ring(num_samples, *, num_modes=8, radius=2.0, std=0.02, seed=0):
    """Samples of the mixture of `num_modes` equally likely Gaussians on a ring (VEEGAN's toy).

    Returns:
      float32 points `[num_samples, 2]`.
    """
    rng = np.random.default_rng(seed)
    modes = ring_modes(num_modes, radius)[rng.integers(num_modes, size=num_samples)]
    return (modes + std * rng.normal(size=(num_samples, 2))).astype(np.float32)


def ring_dataset(batch_size, *, num_modes=8, radius=2.0, std=0.02, seed=0, skip_batches=0):
    """An infinite `tf.data.Dataset` of batches of ring points; `skip_batches` resumes the stream.

    Batch `i` is drawn with the seed `(seed, i)`, so batch `i` is the same
    whether or not the run was interrupted.
    """
    modes = tf.constant(ring_modes(num_modes, radius), tf.float32)

    def batch(i):
        seeds = tf.random.experimental.stateless_split(tf.stack([tf.cast(seed, tf.int64), i]), 2)
        index = tf.random.stateless_uniform(
            [batch_size], seeds[0], maxval=num_modes, dtype=tf.int32
        )
        noise = tf.random.stateless_normal([batch_size, 2], seeds[1])
        return tf.gather(modes, index) + std * noise

    return tf.data.Dataset.range(skip_batches, 2**62).map(batch)


def mode_statistics(samples, modes, std, *, threshold=3.0, min_share=0.01):
    """VEEGAN's mode-collapse diagnostics for samples of a Gaussian mixture.

    A sample is *high quality* if it lies within `threshold` standard
    deviations of its nearest mode. A mode is *covered* if it is the nearest
    mode of at least `min_share` of the high-quality samples (VEEGAN counts a
    mode with a single one; a small share instead ignores a few strays).

    Args:
      samples: points `[n, d]`.
      modes: the mixture's means `[k, d]`.
      std: the components' standard deviation.
      threshold: distance, in standard deviations, of a high-quality sample.
      min_share: share of the high-quality samples a mode must receive.

    Returns:
      A dict with `modes_covered` (int), `high_quality_fraction` (float) and
      `mode_counts` (high-quality samples per mode, a list).
    """
    samples, modes = np.asarray(samples, np.float64), np.asarray(modes, np.float64)
    if samples.ndim != 2 or modes.ndim != 2 or samples.shape[1] != modes.shape[1]:
        raise ValueError(
            f"samples [n, d] and modes [k, d] must share d. Received: {samples.shape}, {modes.shape}"
        )
    distances = np.linalg.norm(samples[:, None, :] - modes[None, :, :], axis=-1)
    nearest = distances.argmin(axis=1)
    good = distances.min(axis=1) <= threshold * std
    counts = np.bincount(nearest[good], minlength=len(modes))
    total = max(int(good.sum()), 1)
    return {
        "modes_covered": int(np.sum((counts > 0) & (counts >= min_share * total))),
        "high_quality_fraction": float(good.mean()) if len(samples) else 0.0,
        "mode_counts": counts.tolist(),
    }


def describe_modes(statistics):
    """`mode_statistics` in words: `"6/8 modes covered, high-quality fraction 0.912"`."""
    return (
        f"{statistics['modes_covered']}/{len(statistics['mode_counts'])} modes covered, "
        f"high-quality fraction {statistics['high_quality_fraction']:.3f}"
    )


def modes_covered(samples, modes, std, **kwargs):
    """Number of modes covered (see `mode_statistics`)."""
    return mode_statistics(samples, modes, std, **kwargs)["modes_covered"]


def high_quality_fraction(samples, modes, std, **kwargs):
    """Share of samples within `threshold` standard deviations of a mode (see `mode_statistics`)."""
    return mode_statistics(samples, modes, std, **kwargs)["high_quality_fraction"]


# --- figures ---------------------------------------------------------------------


def ring_figure(samples, modes, std, title=""):
    """Samples over the ring's modes, each mode with its 3-std circle (high quality inside)."""
    from mp.plotting import pyplot

    plt = pyplot()
    figure, axis = plt.subplots(figsize=(4.5, 4.5))
    axis.scatter(samples[:, 0], samples[:, 1], s=2, alpha=0.4, label="samples of G")
    axis.scatter(modes[:, 0], modes[:, 1], marker="x", color="red", label="modes")
    for centre in modes:
        axis.add_patch(plt.Circle(centre, 3 * std, fill=False, color="red", lw=0.8))
    limit = 1.5 * np.abs(modes).max()
    axis.set_xlim(-limit, limit)
    axis.set_ylim(-limit, limit)
    axis.set_aspect("equal")
    axis.legend(loc="upper right", fontsize="small")
    axis.set_title(title, fontsize="small")
    figure.tight_layout()
    plt.close(figure)
    return figure


def learning_curves_figure(history):
    """Losses of D and G, and D(x) and D(G(z)) (train), with the evaluations, against the step
    (`Trainer.history` of a `GANTask`)."""
    from mp.plotting import curves_figure

    return curves_figure(
        history,
        [
            {
                "ylabel": "loss",
                "train": [("D loss", "loss/discriminator"), ("G loss", "loss/generator")],
                "eval": [("D loss, test", "d_loss")],
                "eval_style": "o",
                "reference": (math.log(4), "log 4 (D = 1/2)"),
            },
            {
                "ylabel": "discriminator output",
                "train": [("D(x)", "metrics/d_real"), ("D(G(z))", "metrics/d_fake")],
                "eval": [("D(x), test", "d_real")],
                "eval_style": "o",
                "reference": (0.5, None),
            },
        ],
        xlabel="global step (generator updates)",
    )
