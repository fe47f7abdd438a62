"""Image-to-image translation with GANs: pix2pix (paired) and CycleGAN (unpaired).

Both are the game of `mp.generative.gan` played with other players and other
terms; `Pix2Pix` and `CycleGAN` subclass `gan.GAN`, so one iteration is still
`GAN.adversarial_step`: `d_steps` discriminator updates, then one generator
update, each with its own optimizer, in the engine (`TranslationTask`, a
`GANTask`) or in `model.fit`. A batch is a dict `{"a": images of domain A,
"b": images of domain B}`; for pix2pix row i of `b` is the target of row i
of `a`, for CycleGAN the two are unrelated.

pix2pix (Isola et al. 2017, "Image-to-Image Translation with Conditional
Adversarial Networks") learns `G: a -> b` from pairs. G is the U-Net of
chapter 3 (`mp.cnn.fcn` without its class head, a sigmoid image head on top).
D is conditional: it sees the input beside an output, `D(concat(a, b))`, so
it can only call a pair real if the output fits *that* input. D is a
*PatchGAN*: a few strided convolutions and no dense layer, one logit per
patch of the image rather than one per image. With `n` stride-2 4x4
convolutions, then a stride-1 4x4 convolution and a stride-1 4x4 logit
convolution, each logit sees a square of side (receptive field, back to front
`r <- s * r + (k - s)` from `r = 1`)

    n = 1: 1 -> 4 -> 7 -> 16,   n = 2: 34,   n = 3: 70 (the paper's 70x70 PatchGAN)

(`patch_receptive_field`). Patches judge local texture and sharpness; the
global layout is left to the L1 term. The losses, per image (mean over
patches of `gan.discriminator_loss` and `gan.generator_loss`):

    L_D = softplus(-l(a, b)) + softplus(l(a, G(a)))
    L_G = softplus(-l(a, G(a)))  +  lambda * mean |b - G(a)|      (lambda = 100)

The L1 term alone (`adversarial_weight=0`) is plain regression: its best
answer to an uncertain input is the per-pixel median of the possible outputs,
which blurs; the adversarial term penalises outputs that do not look real.

CycleGAN (Zhu et al. 2017, "Unpaired Image-to-Image Translation using
Cycle-Consistent Adversarial Networks") has no pairs, only two collections. Two
generators `G: A -> B` and `F: B -> A` and two discriminators (`D_B` judges
B-images, `D_A` A-images). Any G whose outputs look like B fools `D_B`, so
translations are tied to their inputs by cycle consistency, `F(G(a)) ~ a` and
`G(F(b)) ~ b`; an identity term keeps `G(b) ~ b` (G should leave a B-image
alone). The adversarial loss is least squares (Mao et al. 2017, LSGAN) on the
raw scores `s` of the PatchGAN (no sigmoid):

    L_D = 1/2 [(s(real) - 1)^2 + s(fake)^2]          (per patch, both D's)
    L_G = (s_B(G(a)) - 1)^2 + (s_A(F(b)) - 1)^2
          + lambda_cyc (|F(G(a)) - a| + |G(F(b)) - b|)            (lambda_cyc = 10)
          + lambda_id  (|G(b) - b| + |F(a) - a|)                   (lambda_id = 5)

Its nets use instance normalisation (`GroupNormalization(groups=-1)`: one
group per channel, statistics over each image's own pixels), here in the U-Net
of chapter 3 in place of its batch norms (`unet_generator(normalization=
"instance")`). Left out from the paper: the pool of 50 past fakes D also sees,
and dropout as pix2pix's noise (the generators here are deterministic).

Evaluation, callable from a notebook: `pix2pix_report` (L1 on held-out pairs,
the accuracy of the package's classifier on the outputs, the classifier-
feature FID of `mp.generative.fid` against the real targets),
`cyclegan_report` (the rate at which the classifier assigns translations to
the target domain, the cycle reconstruction error, FIDs), and
`translation_figure` (rows of inputs, outputs, targets). Data: `edge_maps`
(the paired edges -> item task), `class_images` (the unpaired two-class task)
and `pairs_dataset` (both, deterministic from any step).

Course: ch5.2.4 Training GANs (the example models: pix2pix, a conditional GAN
on paired images, and CycleGAN, unpaired translation with an inverse mapping
and the cycle-consistency loss).
"""

import keras
import numpy as np
import tensorflow as tf

from mp.cnn.fcn import fcn
from mp.engine.task import float32, global_mean, minimize
from mp.generative import gan

NORMALIZATIONS = ("none", "batch", "instance")


# --- losses (per example; the steps take their global mean) ----------------


def _per_example_mean(values):
    """Mean over every axis but the first: one value per image."""
    values = tf.convert_to_tensor(values)
    return tf.reduce_mean(tf.reshape(values, [tf.shape(values)[0], -1]), axis=1)


def l1_distance(x, y):
    """Per-image mean absolute difference `mean |x - y|` over pixels and channels."""
    return _per_example_mean(tf.abs(float32(x) - float32(y)))


def patch_discriminator_loss(real_logits, fake_logits):
    """Per-image mean over patches of `gan.discriminator_loss` (PatchGAN logit maps)."""
    return _per_example_mean(gan.discriminator_loss(real_logits, fake_logits))


def patch_generator_loss(fake_logits):
    """Per-image mean over patches of the non-saturating `-log D(G(a))`."""
    return _per_example_mean(gan.generator_loss(fake_logits, "non_saturating"))


def lsgan_discriminator_loss(real_scores, fake_scores):
    """Per-image `1/2 [(s_real - 1)^2 + s_fake^2]`, mean over patches (LSGAN, a=0, b=1)."""
    return _per_example_mean(0.5 * (tf.square(real_scores - 1.0) + tf.square(fake_scores)))


def lsgan_generator_loss(fake_scores):
    """Per-image `(s_fake - 1)^2`, mean over patches (LSGAN, c=1)."""
    return _per_example_mean(tf.square(fake_scores - 1.0))


def cycle_loss(a, a_cycled, b, b_cycled):
    """Per-image `mean |F(G(a)) - a| + mean |G(F(b)) - b|` (rows of a and b unrelated)."""
    return l1_distance(a_cycled, a) + l1_distance(b_cycled, b)


# --- networks ----------------------------------------------------------------


def _normalization(kind, name):
    if kind == "batch":
        return keras.layers.BatchNormalization(name=name)
    if kind == "instance":
        return keras.layers.GroupNormalization(groups=-1, epsilon=1e-5, name=name)
    return None


def _check_normalization(normalization):
    if normalization not in NORMALIZATIONS:
        raise ValueError(
            f"normalization must be one of {NORMALIZATIONS}. Received: {normalization!r}"
        )


def unet_generator(
    image_shape,
    channels=None,
    *,
    filters=(32, 64, 128),
    normalization="batch",
    upsampling="transpose",
    name="unet_generator",
):
    """The U-Net of chapter 3 (`mp.cnn.fcn`) as an image-to-image generator.

    `fcn(num_classes=None)` gives the decoder's full-resolution features; a 1x1
    convolution with a sigmoid turns them into an image in [0, 1]. With
    `normalization="instance"` every batch norm of the U-Net is replaced by an
    instance norm (same places, same gamma and beta per channel).

    Args:
      image_shape: `(height, width, channels)` of the input; sides divisible by
        `2 ** (len(filters) - 1)`.
      channels: channels of the output (default: the input's).
      filters: channels per U-Net level (see `mp.cnn.fcn`).
      normalization: `"batch"` (chapter 3's) or `"instance"` (CycleGAN's).
      upsampling: `"transpose"` or `"nearest"` (see `mp.cnn.fcn`).
      name: the model's name.

    Returns:
      A functional `keras.Model` from images `[B, H, W, C]` to images
      `[B, H, W, channels]` in [0, 1].
    """
    if normalization not in ("batch", "instance"):
        raise ValueError(
            "normalization must be 'batch' or 'instance'. "
            f"Received: normalization={normalization!r}"
        )
    features = fcn(tuple(image_shape), None, filters=filters, upsampling=upsampling)
    if normalization == "instance":

        def swap(layer):
            if isinstance(layer, keras.layers.BatchNormalization):
                return _normalization("instance", layer.name.replace("_bn", "_in"))
            return layer.__class__.from_config(layer.get_config())

        def call(layer, *args, **kwargs):  # GroupNormalization takes no batch-norm mask
            if isinstance(layer, keras.layers.GroupNormalization):
                kwargs.pop("mask", None)
            return layer(*args, **kwargs)

        features = keras.models.clone_model(features, clone_function=swap, call_function=call)
    channels = image_shape[-1] if channels is None else int(channels)
    images = keras.layers.Conv2D(channels, 1, activation="sigmoid", name="image")(features.output)
    return keras.Model(features.input, images, name=name)


def patch_discriminator(
    input_shape,
    *,
    filters=64,
    num_downsamples=1,
    normalization="none",
    negative_slope=0.2,
    name="patch_discriminator",
):
    """PatchGAN: one logit per image patch (module docstring).

        conv 4x4 stride 2 (filters)                  leaky ReLU      } num_downsamples
        conv 4x4 stride 2 (filters * 2^i)     norm,  leaky ReLU      }   times
        conv 4x4 stride 1 (filters * 2^n)     norm,  leaky ReLU
        conv 4x4 stride 1 (1)                 the logit of each patch

    No normalisation on the first convolution (as in the paper). Fully
    convolutional: any input whose sides divide by `2^n`.

    Args:
      input_shape: `(height, width, channels)`; for pix2pix the input and the
        output stacked along channels.
      filters: channels of the first convolution (doubled at each further one).
      num_downsamples: stride-2 convolutions `n` (>= 1); the patch side is
        `patch_receptive_field(n)`.
      normalization: `"none"`, `"batch"` or `"instance"`. Instance norm makes
        every logit depend on the whole image through the statistics.
      negative_slope: slope of the leaky ReLU.
      name: the model's name.

    Returns:
      A functional `keras.Model` from `[B, H, W, C]` to logits `[B, H / 2^n,
      W / 2^n, 1]` (in the compute dtype; the games cast them to float32).
    """
    _check_normalization(normalization)
    if num_downsamples < 1 or filters < 1:
        raise ValueError(
            "num_downsamples and filters must be positive. Received: "
            f"num_downsamples={num_downsamples}, filters={filters}"
        )
    x_in = keras.Input(tuple(input_shape), name="pairs")
    x = x_in
    strides = [2] * num_downsamples + [1]
    for i, stride in enumerate(strides):
        norm = _normalization(normalization, f"norm{i + 1}") if i else None
        # A norm's beta replaces the bias (its mean subtraction would remove a bias).
        x = keras.layers.Conv2D(
            filters * 2**i, 4, stride, "same", use_bias=norm is None, name=f"conv{i + 1}"
        )(x)
        if norm is not None:
            x = norm(x)
        x = keras.layers.LeakyReLU(negative_slope, name=f"lrelu{i + 1}")(x)
    logits = keras.layers.Conv2D(1, 4, padding="same", name="patch_logits")(x)
    return keras.Model(x_in, logits, name=name)


def patch_receptive_field(num_downsamples, kernel_size=4):
    """Side of the input square one PatchGAN logit sees.

    Back from one logit (`r = 1`) through each convolution (kernel k, stride s):
    `r <- s * r + (k - s)`. The two stride-1 convolutions, then `num_downsamples`
    stride-2 ones.
    """
    r = 1
    for stride in [1, 1] + [2] * num_downsamples:
        r = stride * r + (kernel_size - stride)
    return r


def _pair_model(first, second, name):
    """Two models as one functional model `[x1, x2] -> [first(x1), second(x2)]`.

    Its variables are both models' (one optimizer updates both), and both stay
    reachable as layers by name.
    """
    if first.name == second.name:
        raise ValueError(f"the two models need distinct names. Received: {first.name!r} twice")
    inputs = [keras.Input(m.input_shape[1:], name=f"{m.name}_input") for m in (first, second)]
    return keras.Model(inputs, [first(inputs[0]), second(inputs[1])], name=name)


# --- the games -----------------------------------------------------------------


class TranslationGAN(gan.GAN):
    """What pix2pix and CycleGAN share on top of `gan.GAN`: no latent code, and a
    generator update that minimises `generator_losses(batch)["loss/generator"]`."""

    def __init__(self, generator, discriminator, **kwargs):
        super().__init__(generator, discriminator, latent_dim=0, **kwargs)

    def generator_losses(self, batch, training=True):
        """Global-mean shares of G's loss terms and their weighted sum, `loss/generator`."""
        raise NotImplementedError

    def generator_update(self, batch):
        """One update of G (both generators for CycleGAN) on the pairs or images `batch`."""
        with tf.GradientTape() as tape:
            losses = self.generator_losses(batch)
        variables = self.generator.trainable_variables
        minimize(self.g_optimizer, tape, losses["loss/generator"], variables)
        return losses


class Pix2Pix(TranslationGAN):
    """pix2pix: a conditional GAN on pairs, adversarial + L1 (module docstring).

    Args:
      generator: `a -> b`, e.g. `unet_generator`.
      discriminator: a PatchGAN on `concat(a, b)` along channels.
      l1_weight: lambda of the L1 term (the paper's 100).
      adversarial_weight: weight of the adversarial term; 0 trains G by L1
        alone (D still trains, but G ignores it).
      d_steps, seed: as for `gan.GAN`.
    """

    def __init__(
        self, generator, discriminator, *, l1_weight=100.0, adversarial_weight=1.0, **kwargs
    ):
        super().__init__(generator, discriminator, **kwargs)
        if l1_weight < 0 or adversarial_weight < 0:
            raise ValueError(
                "l1_weight and adversarial_weight must be >= 0. Received: "
                f"l1_weight={l1_weight}, adversarial_weight={adversarial_weight}"
            )
        self.l1_weight = float(l1_weight)
        self.adversarial_weight = float(adversarial_weight)

    def call(self, a, training=False):
        return self.generator(a, training=training)

    def pair_logits(self, a, b, training=False):
        """The PatchGAN's float32 logit map of the pairs `(a, b)`."""
        pairs = tf.concat([a, tf.cast(b, a.dtype)], axis=-1)
        return float32(self.discriminator(pairs, training=training))

    def discriminator_step(self, batch):
        """One update of D on the real pairs and as many pairs `(a, G(a))`."""
        a, b = batch["a"], batch["b"]
        fake = self.generator(a, training=True)
        with tf.GradientTape() as tape:
            real_logits = self.pair_logits(a, b, training=True)
            fake_logits = self.pair_logits(a, fake, training=True)
            loss = global_mean(patch_discriminator_loss(real_logits, fake_logits))
        minimize(self.d_optimizer, tape, loss, self.discriminator.trainable_variables)
        return {
            "loss/discriminator": loss,
            "metrics/d_real": global_mean(_per_example_mean(tf.sigmoid(real_logits))),
            "metrics/d_fake": global_mean(_per_example_mean(tf.sigmoid(fake_logits))),
        }

    def generator_losses(self, batch, training=True):
        """Global-mean shares of the adversarial and L1 terms and their weighted sum."""
        a, b = batch["a"], batch["b"]
        fake = self.generator(a, training=training)
        adversarial = global_mean(patch_generator_loss(self.pair_logits(a, fake, training)))
        l1 = global_mean(l1_distance(b, fake))
        total = self.adversarial_weight * adversarial + self.l1_weight * l1
        return {"loss/generator": total, "loss/adversarial": adversarial, "loss/l1": l1}

    def evaluation_sums(self, batch):
        """Sums over `batch` of the L1 error and D's loss and outputs (inference mode)."""
        a, b = batch["a"], batch["b"]
        fake = self.generator(a, training=False)
        real_logits = self.pair_logits(a, b)
        fake_logits = self.pair_logits(a, fake)
        return {
            "l1": tf.reduce_sum(l1_distance(b, fake)),
            "d_loss": tf.reduce_sum(patch_discriminator_loss(real_logits, fake_logits)),
            "d_real": tf.reduce_sum(_per_example_mean(tf.sigmoid(real_logits))),
            "d_fake": tf.reduce_sum(_per_example_mean(tf.sigmoid(fake_logits))),
        }

    def generators(self):
        """`{file stem: model}` of what an app exports."""
        return {"generator": self.generator}


class CycleGAN(TranslationGAN):
    """CycleGAN: two generators, two LSGAN PatchGAN critics, cycle and identity terms.

    The two generators form the `generator` of `gan.GAN` (one optimizer updates
    both), the two discriminators its `discriminator`; `generator_ab` and the
    others reach each one.

    Args:
      generator_ab, generator_ba: `G: A -> B` and `F: B -> A` (distinct names).
      discriminator_a, discriminator_b: PatchGANs judging A- and B-images.
      cycle_weight: lambda_cyc (the paper's 10).
      identity_weight: lambda_id (the paper's 0.5 * lambda_cyc = 5); 0 turns it off.
      d_steps, seed: as for `gan.GAN`.
    """

    def __init__(
        self,
        generator_ab,
        generator_ba,
        discriminator_a,
        discriminator_b,
        *,
        cycle_weight=10.0,
        identity_weight=5.0,
        **kwargs,
    ):
        if cycle_weight < 0 or identity_weight < 0:
            raise ValueError(
                "cycle_weight and identity_weight must be >= 0. Received: "
                f"cycle_weight={cycle_weight}, identity_weight={identity_weight}"
            )
        super().__init__(
            _pair_model(generator_ab, generator_ba, "generators"),
            _pair_model(discriminator_a, discriminator_b, "discriminators"),
            **kwargs,
        )
        self._names = (generator_ab.name, generator_ba.name, discriminator_a.name)
        self._names += (discriminator_b.name,)
        self.cycle_weight = float(cycle_weight)
        self.identity_weight = float(identity_weight)

    generator_ab = property(lambda self: self.generator.get_layer(self._names[0]))
    generator_ba = property(lambda self: self.generator.get_layer(self._names[1]))
    discriminator_a = property(lambda self: self.discriminator.get_layer(self._names[2]))
    discriminator_b = property(lambda self: self.discriminator.get_layer(self._names[3]))

    def call(self, a, training=False):
        return self.generator_ab(a, training=training)

    def discriminator_step(self, batch):
        """One update of both D's on real images and fresh translations of the other domain."""
        a, b = batch["a"], batch["b"]
        fake_b = self.generator_ab(a, training=True)
        fake_a = self.generator_ba(b, training=True)
        with tf.GradientTape() as tape:
            real_a, real_b = float32(self.discriminator([a, b], training=True))
            fake_a, fake_b = float32(self.discriminator([fake_a, fake_b], training=True))
            per_image = lsgan_discriminator_loss(real_a, fake_a)
            per_image += lsgan_discriminator_loss(real_b, fake_b)
            loss = global_mean(per_image)
        minimize(self.d_optimizer, tape, loss, self.discriminator.trainable_variables)
        return {  # LSGAN scores, not probabilities: real ones aim at 1, fakes at 0
            "loss/discriminator": loss,
            "metrics/d_real": global_mean(_per_example_mean(real_a) + _per_example_mean(real_b))
            / 2,
            "metrics/d_fake": global_mean(_per_example_mean(fake_a) + _per_example_mean(fake_b))
            / 2,
        }

    def generator_losses(self, batch, training=True):
        """Global-mean shares of the adversarial, cycle and identity terms and their sum."""
        a, b = batch["a"], batch["b"]
        g, f = self.generator_ab, self.generator_ba
        fake_b, fake_a = g(a, training=training), f(b, training=training)
        score_a, score_b = float32(self.discriminator([fake_a, fake_b], training=training))
        adversarial = global_mean(lsgan_generator_loss(score_b) + lsgan_generator_loss(score_a))
        cycle = global_mean(
            cycle_loss(a, f(fake_b, training=training), b, g(fake_a, training=training))
        )
        identity = global_mean(
            l1_distance(g(b, training=training), b) + l1_distance(f(a, training=training), a)
        )
        total = adversarial + self.cycle_weight * cycle + self.identity_weight * identity
        return {
            "loss/generator": total,
            "loss/adversarial": adversarial,
            "loss/cycle": cycle,
            "loss/identity": identity,
        }

    def evaluation_sums(self, batch):
        """Sums over `batch` of the cycle errors of both domains (inference mode)."""
        a, b = batch["a"], batch["b"]
        g, f = self.generator_ab, self.generator_ba
        return {
            "cycle_a": tf.reduce_sum(l1_distance(f(g(a)), a)),
            "cycle_b": tf.reduce_sum(l1_distance(g(f(b)), b)),
        }

    def generators(self):
        return {"generator_ab": self.generator_ab, "generator_ba": self.generator_ba}


class TranslationTask(gan.GANTask):
    """`Pix2Pix` or `CycleGAN` in the engine: `GANTask`'s step, their own evaluation.

    Batches are dicts `{"a": ..., "b": ...}` of `d_steps * B` rows for training.
    """

    def eval_step(self, batch):
        sums = self.gan.evaluation_sums(batch)
        return sums | {"count": tf.cast(tf.shape(batch["a"])[0], tf.float32)}

    def export(self, path):
        """Saves the first generator (pix2pix's, CycleGAN's `A -> B`)."""
        next(iter(self.gan.generators().values())).save(path)


def make_pix2pix(
    image_shape,
    *,
    unet_filters=(32, 64, 128),
    patch_filters=64,
    num_downsamples=1,
    l1_weight=100.0,
    adversarial_weight=1.0,
    d_steps=1,
    seed=0,
):
    """A `Pix2Pix` of a batch-norm U-Net and an unnormalised PatchGAN (for a `TranslationTask`)."""
    channels = image_shape[-1]
    generator = unet_generator(image_shape, filters=unet_filters)
    pair_shape = (*image_shape[:2], 2 * channels)
    discriminator = patch_discriminator(
        pair_shape, filters=patch_filters, num_downsamples=num_downsamples
    )
    return Pix2Pix(
        generator,
        discriminator,
        l1_weight=l1_weight,
        adversarial_weight=adversarial_weight,
        d_steps=d_steps,
        seed=seed,
    )


def make_cyclegan(
    image_shape,
    *,
    unet_filters=(32, 64, 128),
    patch_filters=64,
    num_downsamples=1,
    cycle_weight=10.0,
    identity_weight=5.0,
    d_steps=1,
    seed=0,
):
    """A `CycleGAN` of instance-norm U-Nets and instance-norm PatchGANs."""
    nets = [
        unet_generator(image_shape, filters=unet_filters, normalization="instance", name=name)
        for name in ("generator_ab", "generator_ba")
    ]
    nets += [
        patch_discriminator(
            image_shape,
            filters=patch_filters,
            num_downsamples=num_downsamples,
            normalization="instance",
            name=name,
        )
        for name in ("discriminator_a", "discriminator_b")
    ]
    return CycleGAN(
        *nets,
        cycle_weight=cycle_weight,
        identity_weight=identity_weight,
        d_steps=d_steps,
        seed=seed,
    )


# --- data -----------------------------------------------------------------------


def edge_maps(images, threshold=0.5):
    """Binary edge maps of grey images: where the Sobel gradient's magnitude exceeds `threshold`.

        g_x = [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]] * x,   g_y its transpose,
        edge = sqrt(g_x^2 + g_y^2) > threshold

    (correlation with replicated borders; a step from 0 to 1 gives 4).

    Args:
      images: `[N, H, W(, 1)]` in [0, 1].
      threshold: the magnitude above which a pixel is an edge.

    Returns:
      float32 `[N, H, W, 1]` of 0s and 1s.
    """
    x = np.asarray(images, np.float32)
    x = x[..., 0] if x.ndim == 4 else x
    p = np.pad(x, ((0, 0), (1, 1), (1, 1)), mode="edge")
    rows = p[:, :-2] + 2 * p[:, 1:-1] + p[:, 2:]  # vertical smoothing, [N, H, W + 2]
    cols = p[:, :, :-2] + 2 * p[:, :, 1:-1] + p[:, :, 2:]  # horizontal smoothing, [N, H + 2, W]
    g_x = rows[:, :, 2:] - rows[:, :, :-2]
    g_y = cols[:, 2:, :] - cols[:, :-2, :]
    return (np.hypot(g_x, g_y) > threshold).astype(np.float32)[..., np.newaxis]


def class_images(dataset, split, label, data_dir=None, *, validation_fraction=0.0):
    """The images of one class of a `mp.data` split, float32 `[N, H, W, 1]` in [0, 1]."""
    import mp.data

    images, labels = mp.data.load_numpy(
        dataset, split, data_dir, validation_fraction=validation_fraction
    )
    if not 0 <= label < mp.data.info(dataset).num_classes:
        raise ValueError(f"{dataset} has no class {label}. Received: label={label}")
    return images[labels == label].astype(np.float32) / 255.0


def _index_stream(size, seed, start):
    """Indices `0..size-1`, a fresh stateless shuffle each epoch, from position `start` on."""
    first_epoch, offset = divmod(int(start), int(size))

    def epoch(e):
        seeds = tf.stack([tf.constant(seed, tf.int64), e])
        order = tf.random.experimental.stateless_shuffle(tf.range(size, dtype=tf.int64), seeds)
        return tf.data.Dataset.from_tensor_slices(order)

    return tf.data.Dataset.range(first_epoch, 2**62).flat_map(epoch).skip(offset)


def pairs_dataset(images_a, images_b, batch_size, *, paired, seed=0, skip_batches=0):
    """An endless `tf.data.Dataset` of batches `{"a": [B, ...], "b": [B, ...]}` in [0, 1].

    Paired: row i of `images_b` goes with row i of `images_a` (one shuffled order).
    Unpaired: each collection has its own shuffled order (seeds `seed` and `seed + 1`).
    Batch `k` is the same whether or not the run stopped before it (`skip_batches`
    resumes the stream without reading the skipped batches).

    Args:
      images_a, images_b: arrays `[N_a, H, W, C]`, `[N_b, H, W, C]` in [0, 1]
        (stored as bytes: multiples of 1/255, as `mp.data`'s images and edge maps are).
      batch_size: rows per batch.
      paired: whether the rows correspond (then `N_a == N_b`).
      seed: the shuffles' seed.
      skip_batches: batches to skip, e.g. the global step a run resumes from.
    """
    if paired and len(images_a) != len(images_b):
        raise ValueError(
            f"paired images need as many a's as b's. Received: {len(images_a)}, {len(images_b)}"
        )
    stored = [
        tf.constant(np.round(np.asarray(x) * 255).astype(np.uint8)) for x in (images_a, images_b)
    ]
    start = skip_batches * batch_size
    index_a = _index_stream(len(images_a), seed, start)
    if paired:
        indices = index_a.map(lambda i: (i, i))
    else:
        indices = tf.data.Dataset.zip(index_a, _index_stream(len(images_b), seed + 1, start))

    def gather(i, j):
        return {
            "a": tf.cast(tf.gather(stored[0], i), tf.float32) / 255.0,
            "b": tf.cast(tf.gather(stored[1], j), tf.float32) / 255.0,
        }

    return indices.batch(batch_size, drop_remainder=True).map(gather).prefetch(2)


# --- evaluation (NumPy, for apps and notebooks) -----------------------------------


def translate(generator, images, batch_size=500):
    """`generator`'s outputs for `images` in inference mode, float32, in batches."""
    images = np.asarray(images, np.float32)
    return np.concatenate(
        [
            np.asarray(float32(generator(images[i : i + batch_size], training=False)))
            for i in range(0, len(images), batch_size)
        ]
    )


def predicted_classes(classifier, images, batch_size=500):
    """The class `classifier` (images -> logits) gives each image."""
    return translate(classifier, images, batch_size).argmax(axis=-1)


def pix2pix_report(generator, inputs, targets, labels, classifier, dataset, **fid_options):
    """How close pix2pix's outputs on held-out pairs are to their targets.

    Args:
      generator: `a -> b`.
      inputs, targets: held-out pairs `[N, H, W, C]` in [0, 1].
      labels: the targets' classes `[N]`.
      classifier: `images -> logits` of `dataset` (`mp.generative.fid.load_classifier`).
      dataset: the `mp.data` dataset of the targets.
      **fid_options: `cache_dir`, `data_dir` and classifier overrides of
        `fid.fid_classifier`.

    Returns:
      `l1` (mean |output - target| per pixel), `classifier_accuracy` (outputs
      classified as their target's class), `target_accuracy` (the same classifier
      on the targets themselves: the ceiling), `fid_classifier` (outputs against
      the targets) and `fid_real_floor` (as many held-out real images against the
      targets), `num_pairs`.
    """
    from mp.generative import fid

    outputs = translate(generator, inputs)
    labels = np.asarray(labels)
    floor_images = fid.held_out_images(dataset, len(targets), data_dir=fid_options.get("data_dir"))
    return {
        "l1": float(np.mean(np.abs(outputs - targets))),
        "classifier_accuracy": float(np.mean(predicted_classes(classifier, outputs) == labels)),
        "target_accuracy": float(np.mean(predicted_classes(classifier, targets) == labels)),
        "fid_classifier": fid.fid_classifier(outputs, dataset, real_images=targets, **fid_options),
        "fid_real_floor": fid.fid_classifier(
            floor_images, dataset, real_images=targets, **fid_options
        ),
        "num_pairs": len(targets),
    }


def cyclegan_report(
    generator_ab, generator_ba, images_a, images_b, classes, classifier, dataset, **fid_options
):
    """Both directions of a CycleGAN on held-out images of each domain.

    Args:
      generator_ab, generator_ba: `G: A -> B` and `F: B -> A`.
      images_a, images_b: held-out images of each domain, in [0, 1].
      classes: `(class of A, class of B)` of the classifier.
      classifier: `images -> logits` of `dataset`.
      dataset: the `mp.data` dataset of both domains.
      **fid_options: as for `pix2pix_report`.

    Returns:
      For each direction `ab` (A -> B) and `ba`: `domain_rate_<ab>` (translations
      the classifier assigns to the target class), `source_rate_<ab>` (inputs it
      already assigns there: the rate before translating), `cycle_error_<a>`
      (mean |F(G(a)) - a| per pixel), `fid_<ab>` (translations against the real
      target images) and `num_<a>`.
    """
    from mp.generative import fid

    report = {}
    directions = (
        ("ab", generator_ab, generator_ba, images_a, images_b, classes[1]),
        ("ba", generator_ba, generator_ab, images_b, images_a, classes[0]),
    )
    for name, forward, backward, source, target, target_class in directions:
        outputs = translate(forward, source)
        cycled = translate(backward, outputs)
        rate = lambda images: float(np.mean(predicted_classes(classifier, images) == target_class))
        report |= {
            f"domain_rate_{name}": rate(outputs),
            f"source_rate_{name}": rate(source),
            f"cycle_error_{name[0]}": float(np.mean(np.abs(cycled - source))),
            f"fid_{name}": fid.fid_classifier(outputs, dataset, real_images=target, **fid_options),
            f"num_{name[0]}": len(source),
        }
    return report


def translation_figure(rows, title="", count=8):
    """Rows of images, one named row per stage: e.g. input / output / target.

    Args:
      rows: `[(name, images [N, H, W(, 1)] in [0, 1]), ...]`; the first `count` of each.
      title: the figure's title.
      count: images per row.

    Returns:
      The matplotlib figure.
    """
    from mp.plotting import pyplot, show_tiles, tile_images

    plt = pyplot()
    figure, axes = plt.subplots(len(rows), 1, figsize=(count * 0.8, 0.95 * len(rows) + 0.5))
    axes = np.atleast_1d(axes)
    for axis, (name, images) in zip(axes, rows):
        show_tiles(axis, tile_images(np.asarray(images)[:count], rows=1, cols=count), name)
    figure.suptitle(title, fontsize="small")
    figure.tight_layout()
    plt.close(figure)
    return figure
