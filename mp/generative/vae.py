"""Variational autoencoder (Kingma and Welling, "Auto-Encoding Variational Bayes", 2014).

A latent-variable model `p(x) = integral p(x | z) p(z) dz` with

    prior       p(z) = N(0, I)
    decoder     p(x | z): independent pixels, Bernoulli(logits = g(z)) for
                binary images; Gaussian or continuous Bernoulli (Loaiza-Ganem and
                Cunningham, "The continuous Bernoulli", 2019) for grey levels
    encoder     q(z | x) = N(mu(x), diag(sigma(x)^2)), sigma = softplus(.) + eps

The log-likelihood is intractable, so training maximises the evidence lower
bound (ELBO), which falls short of `log p(x)` by `KL(q(z|x) || p(z|x)) >= 0`:

    ELBO(x) = E_q[log p(x | z)] - KL(q(z | x) || p(z)) = -(distortion + rate)

`distortion = -E_q[log p(x|z)]` is estimated with one sample; `rate =
KL(q || p)` is closed form for two Gaussians (`kl_to_standard_normal`):

    KL(N(mu, sigma^2) || N(0, 1)) = 1/2 sum_j (mu_j^2 + sigma_j^2 - 1 - log sigma_j^2)

Gradients flow through the sample by the reparametrisation trick: draw
`eps ~ N(0, I)` and set `z = mu + sigma * eps`, a differentiable function of
`mu` and `sigma` with the randomness outside (`reparameterized_sample`).

Evaluation uses the tighter importance-weighted bound (Burda, Grosse and
Salakhutdinov, "Importance Weighted Autoencoders", 2016) with k samples
`z_i ~ q(z | x)`:

    IWAE_k(x) = log (1/k) sum_i p(x, z_i) / q(z_i | x),    E[IWAE_k(x)] <= log p(x)

The bound holds for the expectation over the draws `z_1..z_k`: one draw may
land above `log p(x)`, but the mean over a test set estimates the expected
bound. `IWAE_1` is the ELBO, the bound grows with k and tends to `log p(x)`;
its negative is the reported test negative log-likelihood in nats. It is
computed with `logsumexp` and in chunks of samples, so k = 5000 fits in
memory.

The same loss (`VAE.elbo_terms`) serves two training loops: the model's own
`train_step` (so `model.fit` works) and `VAETask` for `mp.engine.Trainer`.

What a run around it needs is here too, for a notebook as for `apps/train_vae.py`:
binarised training and test images (`training_images`, `evaluation_images`),
the test bound (`iwae_bounds`), the FIDs of samples (`fid_metrics`) and the
figures (`figures`, `latent_figure`, `learning_curves_figure`).

TensorFlow Probability is imported inside functions (`_tfd()`), so `import mp`
does not load it.

Course: ch5.1 Variational Autoencoders (5.1.1 Data log-likelihood, 5.1.2
Limitations of VAEs), ch7.2 Reparametrization trick.
"""

import math

import keras
import numpy as np
import tensorflow as tf

from mp.engine.task import SingleModelTask, float32, global_mean, minimize
from mp.generative.autoencoder import make_decoder, make_encoder

LIKELIHOODS = ("bernoulli", "gaussian", "continuous_bernoulli")
BINARIZATIONS = ("dynamic", "none")
TEST_BINARIZATION_SEED = 12345
IWAE_BATCH = 8  # test images per IWAE call; chunks of samples keep memory bounded
SCALE_EPSILON = 1e-4  # sigma = softplus(raw) + eps keeps the posterior scale away from 0


def _tfd():
    import tensorflow_probability as tfp

    return tfp.distributions


def reparameterized_sample(loc, scale, eps):
    """`z = mu + sigma * eps` (ch7.2): a sample of N(mu, sigma^2) that is differentiable in both."""
    return loc + scale * eps


def kl_to_standard_normal(loc, scale):
    """`KL(N(loc, diag(scale^2)) || N(0, I))`, summed over the last axis (nats).

    1/2 sum_j (mu_j^2 + sigma_j^2 - 1 - log sigma_j^2).
    """
    return 0.5 * tf.reduce_sum(loc**2 + scale**2 - 1.0 - 2.0 * tf.math.log(scale), axis=-1)


def importance_weighted_bound(x, posterior, prior, decode, k, *, chunk_size=100, seed=None):
    """`log (1/k) sum_i p(x | z_i) p(z_i) / q(z_i | x)`, `z_i ~ q(z | x)`, per example.

    Args:
      x: a batch of data `[B, ...]`.
      posterior: `q(z | x)`, a distribution with batch shape `[B]` and event `[d]`
        (e.g. `tfd.MultivariateNormalDiag`); it needs `loc` and `stddev()`.
      prior: `p(z)`, event shape `[d]`.
      decode: `z [N, d] -> p(x | z)`, a distribution with batch shape `[N]` whose
        event is one example.
      k: number of importance samples.
      chunk_size: samples drawn at once; memory grows with `chunk_size * B`.
      seed: an int (or int tensor) for reproducible samples, drawn statelessly with
        the seed `(seed, first sample index of the chunk)`; `None` draws fresh ones.

    Returns:
      A float tensor `[B]`: the bound in nats for each example.
    """
    if not isinstance(k, int) or k <= 0:
        raise ValueError(f"k must be a positive integer. Received: k={k}")
    if not isinstance(chunk_size, int) or chunk_size <= 0:
        raise ValueError(
            f"chunk_size must be a positive integer. Received: chunk_size={chunk_size}"
        )
    loc, scale = posterior.loc, posterior.stddev()
    batch = tf.shape(loc)[0]
    chunk_sums = []  # logsumexp of the log-weights of each chunk, [B] each
    for start in range(0, k, chunk_size):
        n = min(chunk_size, k - start)
        shape = tf.concat([[n], tf.shape(loc)], axis=0)
        if seed is None:
            eps = tf.random.normal(shape, dtype=loc.dtype)
        else:
            eps = tf.random.stateless_normal(shape, seed=[seed, start], dtype=loc.dtype)
        z = reparameterized_sample(loc, scale, eps)  # [n, B, d]
        flat_z = tf.reshape(z, [n * batch, -1])
        flat_x = tf.reshape(
            tf.repeat(x[tf.newaxis], n, axis=0), tf.concat([[n * batch], tf.shape(x)[1:]], 0)
        )
        log_likelihood = tf.reshape(decode(flat_z).log_prob(flat_x), [n, batch])
        # log w = log p(x | z) + log p(z) - log q(z | x), the log of p(x, z) / q(z | x).
        log_weights = log_likelihood + prior.log_prob(z) - posterior.log_prob(z)  # [n, B]
        chunk_sums.append(tf.reduce_logsumexp(log_weights, axis=0))
    # logsumexp is associative: the logsumexp of the chunks' logsumexps is the one over all k
    # log-weights. Subtracting log k turns the sum into the mean inside the log.
    return tf.reduce_logsumexp(tf.stack(chunk_sums), axis=0) - math.log(k)


@keras.saving.register_keras_serializable(package="mp")
class VAE(keras.Model):
    """A VAE with a Gaussian encoder and a factorised pixel decoder; see the module docstring.

    Calling the model (`vae(x)`) returns a deterministic reconstruction, the
    decoder's mean at the posterior mean, `E[x | z = mu(x)]`. Training uses
    `elbo_terms`, which samples.

    Args:
      encoder: a `keras.Model` `x -> [B, 2 * latent_dim]` (location, raw scale).
      decoder: a `keras.Model` `z -> [B, H, W, C]` of logits (`bernoulli`,
        `continuous_bernoulli`) or `[B, H, W, 2C]` (`gaussian`: location, raw scale).
      latent_dim: size of `z`.
      likelihood: one of `LIKELIHOODS`.
      seed: seed of the sampling noise (`keras.random.SeedGenerator`).
    """

    def __init__(self, encoder, decoder, latent_dim, likelihood="bernoulli", seed=None, **kwargs):
        super().__init__(**kwargs)
        if likelihood not in LIKELIHOODS:
            raise ValueError(
                f"likelihood must be one of {', '.join(LIKELIHOODS)}. "
                f"Received: likelihood={likelihood!r}"
            )
        if not isinstance(latent_dim, int) or latent_dim <= 0:
            raise ValueError(
                f"latent_dim must be a positive integer. Received: latent_dim={latent_dim}"
            )
        self.encoder = encoder
        self.decoder = decoder
        self.latent_dim = latent_dim
        self.likelihood = likelihood
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.elbo_tracker = keras.metrics.Mean(name="elbo")
        self.rate_tracker = keras.metrics.Mean(name="rate")
        self.distortion_tracker = keras.metrics.Mean(name="distortion")

    # --- the distributions ---------------------------------------------

    def posterior_params(self, x, training=False):
        """`(mu, sigma)` of `q(z | x)`, with `sigma = softplus(raw) + eps` (float32)."""
        outputs = float32(self.encoder(x, training=training))
        loc, raw_scale = outputs[..., : self.latent_dim], outputs[..., self.latent_dim :]
        return loc, tf.nn.softplus(raw_scale) + SCALE_EPSILON

    def posterior(self, x, training=False):
        """`q(z | x) = N(mu(x), diag(sigma(x)^2))` as a `tfd.MultivariateNormalDiag`."""
        loc, scale = self.posterior_params(x, training)
        return _tfd().MultivariateNormalDiag(loc=loc, scale_diag=scale)

    def prior(self, dtype=tf.float32):
        """`p(z) = N(0, I)`."""
        zeros = tf.zeros([self.latent_dim], dtype)
        return _tfd().MultivariateNormalDiag(loc=zeros, scale_diag=tf.ones_like(zeros))

    def likelihood_distribution(self, z, training=False):
        """`p(x | z)`: independent pixels, one distribution per example (event `[H, W, C]`).

        Its parameters are float32 under any precision policy, like the log-probabilities.
        """
        tfd = _tfd()
        outputs = float32(self.decoder(z, training=training))
        if self.likelihood == "bernoulli":
            pixels = tfd.Bernoulli(logits=outputs, dtype=outputs.dtype)
        elif self.likelihood == "continuous_bernoulli":
            pixels = tfd.ContinuousBernoulli(logits=outputs)
        else:
            loc, raw_scale = tf.split(outputs, 2, axis=-1)
            pixels = tfd.Normal(loc=loc, scale=tf.nn.softplus(raw_scale) + SCALE_EPSILON)
        return tfd.Independent(pixels, reinterpreted_batch_ndims=3)

    def decode_mean(self, z):
        """The decoder's mean `E[x | z]` (the picture usually shown as a "sample")."""
        return self.likelihood_distribution(z).mean()

    def call(self, x, training=False):
        loc, _ = self.posterior_params(x, training)
        return self.likelihood_distribution(loc, training).mean()

    # --- the loss ---------------------------------------------------------

    def elbo_terms(self, x, training=True):
        """Per-example `rate`, `distortion` and `elbo = -(rate + distortion)`, in nats.

        One reparametrised sample `z = mu + sigma * eps` estimates the distortion
        `-E_q[log p(x | z)]`; the rate `KL(q(z|x) || N(0, I))` is closed form.
        """
        loc, scale = self.posterior_params(x, training)
        eps = keras.random.normal(tf.shape(loc), dtype=loc.dtype, seed=self.seed_generator)
        z = reparameterized_sample(loc, scale, eps)
        distortion = -self.likelihood_distribution(z, training).log_prob(x)
        rate = kl_to_standard_normal(loc, scale)
        return {"rate": rate, "distortion": distortion, "elbo": -(rate + distortion)}

    def iwae_bound(self, x, k, *, chunk_size=None, seed=None):
        """The importance-weighted bound with `k` samples per example, `[B]` (nats).

        `chunk_size` (samples per example decoded at once) defaults to
        `4096 // B`, about 4096 decoded images per chunk; when `B` is unknown at
        tracing time it is taken as 8, so pass `chunk_size` for other batches.
        """
        x = tf.convert_to_tensor(x)
        chunk_size = chunk_size or max(1, min(k, 4096 // (x.shape[0] or 8)))
        return importance_weighted_bound(
            x,
            self.posterior(x),
            self.prior(x.dtype),
            self.likelihood_distribution,
            k,
            chunk_size=chunk_size,
            seed=seed,
        )

    def sample(self, num_samples, *, seed=None, mean=False):
        """Images from the model: `z ~ p(z)`, then `x ~ p(x | z)` (or its mean if `mean`).

        Stateless draws: the same `seed` (an int; `None` means 0) gives the same
        `z` (so the means and the samples of one seed belong together) and the
        same pixels. Pass different seeds for different images.
        """
        z = tf.random.stateless_normal([num_samples, self.latent_dim], seed=[seed or 0, 1])
        pixels = self.likelihood_distribution(z)
        return pixels.mean() if mean else tf.cast(pixels.sample(seed=(seed or 0, 2)), tf.float32)

    # --- model.fit -----------------------------------------------------------

    @property
    def metrics(self):
        return [self.elbo_tracker, self.rate_tracker, self.distortion_tracker]

    def _track(self, terms):
        self.elbo_tracker.update_state(terms["elbo"])
        self.rate_tracker.update_state(terms["rate"])
        self.distortion_tracker.update_state(terms["distortion"])
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, data):
        x = data[0] if isinstance(data, (tuple, list)) else data
        with tf.GradientTape() as tape:
            terms = self.elbo_terms(x, training=True)
            loss = -tf.reduce_mean(terms["elbo"])
        minimize(self.optimizer, tape, loss, self.trainable_variables)  # loss-scaled if need be
        return self._track(terms)

    def test_step(self, data):
        x = data[0] if isinstance(data, (tuple, list)) else data
        return self._track(self.elbo_terms(x, training=False))

    def get_config(self):
        config = super().get_config()
        config.update(
            encoder=keras.saving.serialize_keras_object(self.encoder),
            decoder=keras.saving.serialize_keras_object(self.decoder),
            latent_dim=self.latent_dim,
            likelihood=self.likelihood,
            seed=self.seed,
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["encoder"] = keras.saving.deserialize_keras_object(config["encoder"])
        config["decoder"] = keras.saving.deserialize_keras_object(config["decoder"])
        return cls(**config)


def make_vae(
    input_shape,
    latent_dim,
    *,
    kind="dense",
    likelihood="bernoulli",
    hidden_units=(256,),
    filters=(32, 64),
    activation="relu",
    seed=None,
):
    """A `VAE` with the encoder and decoder of `mp.generative.autoencoder`.

    Args:
      input_shape: `(height, width, channels)`.
      latent_dim: size of `z`.
      kind: `dense` or `conv` (see `make_encoder`).
      likelihood: one of `LIKELIHOODS`.
      hidden_units, filters, activation: see `make_encoder`.
      seed: seed of the sampling noise.

    Returns:
      A built `VAE` named `<kind>_vae`.
    """
    if likelihood not in LIKELIHOODS:
        raise ValueError(
            f"likelihood must be one of {', '.join(LIKELIHOODS)}. Received: likelihood={likelihood!r}"
        )
    if not isinstance(latent_dim, int) or latent_dim <= 0:
        raise ValueError(
            f"latent_dim must be a positive integer. Received: latent_dim={latent_dim}"
        )
    options = dict(kind=kind, hidden_units=hidden_units, filters=filters, activation=activation)
    channels = input_shape[-1] * (2 if likelihood == "gaussian" else 1)
    encoder = make_encoder(input_shape, 2 * latent_dim, **options)
    decoder = make_decoder(latent_dim, input_shape, output_channels=channels, **options)
    model = VAE(encoder, decoder, latent_dim, likelihood, seed=seed, name=f"{kind}_vae")
    model(tf.zeros([1, *input_shape]))
    return model


class VAETask(SingleModelTask):
    """Trains a `VAE` in `mp.engine.Trainer`: minimise `-ELBO` with one optimizer.

    A batch is `(images, labels)` or images alone; labels are ignored.
    Train outputs: `loss/total` (= -ELBO), `metrics/elbo`, `metrics/rate`,
    `metrics/distortion`; eval sums: `loss`, `elbo`, `rate`, `distortion`, `count`.

    Args: see `mp.engine.SingleModelTask` (`model` is a `VAE` or a function returning one).
    """

    @staticmethod
    def _images(batch):
        return batch[0] if isinstance(batch, (tuple, list)) else batch

    def train_step(self, batch):
        x = self._images(batch)
        with tf.GradientTape() as tape:
            terms = self.model.elbo_terms(x, training=True)
            loss = global_mean(-terms["elbo"])
        self._minimize(tape, loss)
        return {
            "loss/total": loss,
            "metrics/elbo": global_mean(terms["elbo"]),
            "metrics/rate": global_mean(terms["rate"]),
            "metrics/distortion": global_mean(terms["distortion"]),
        }

    def eval_step(self, batch):
        terms = self.model.elbo_terms(self._images(batch), training=False)
        sums = {name: tf.reduce_sum(value) for name, value in terms.items()}
        return sums | {
            "loss": -sums["elbo"],
            "count": tf.cast(tf.shape(terms["elbo"])[0], tf.float32),
        }


# --- binarised data -------------------------------------------------------------


def check_binarization(likelihood, binarize):
    """Raises ValueError unless `likelihood` is a likelihood of the pixels `binarize` gives.

    Bernoulli needs 0/1 pixels (`dynamic`); a Gaussian needs grey levels (`none`): on
    binary pixels its scale goes to zero and the likelihood to infinity.
    """
    for name, value, choices in (
        ("likelihood", likelihood, LIKELIHOODS),
        ("binarize", binarize, BINARIZATIONS),
    ):
        if value not in choices:
            raise ValueError(
                f"{name} must be one of {', '.join(choices)}. Received: {name}={value!r}"
            )
    if likelihood == "bernoulli" and binarize == "none":
        raise ValueError(
            "likelihood=bernoulli is a distribution over 0/1 pixels, so on grey levels its "
            "log_prob is no likelihood and nll_nats no NLL; use --binarize=dynamic, or "
            "--likelihood=continuous_bernoulli (or gaussian) for grey levels"
        )
    if likelihood == "gaussian" and binarize == "dynamic":
        raise ValueError(
            "likelihood=gaussian on binarised pixels drives the decoder's scale to zero and "
            "the likelihood to infinity; use --binarize=none with it"
        )


def binarize_batch(images, seed, step):
    """Bernoulli(grey level) pixels, a stateless draw keyed by `(seed, step)`."""
    uniform = tf.random.stateless_uniform(tf.shape(images), seed=tf.stack([seed, step]))
    return tf.cast(uniform < images, images.dtype)


def training_images(data, binarize, seed=0, start=0):
    """Batches `(images, labels)` with pixels in [0, 1] -> the VAE's batches of images.

    `binarize="dynamic"` redraws the pixels of batch `i` (counted from `start`, the
    step a resumed run starts at) as Bernoulli(grey level) with the stateless seed
    `(seed, i)`, so a resumed run sees the same bits; `"none"` keeps the grey levels.
    """
    if binarize != "dynamic":
        return data.map(lambda images, labels: images)

    def binarize_indexed(index, batch):
        return binarize_batch(batch[0], tf.constant(seed, tf.int64), index)

    return data.enumerate(start).map(binarize_indexed)


def evaluation_images(images, binarize):
    """uint8 test images -> float32 in [0, 1], binarised once with a fixed seed if `dynamic`.

    The seed is the same for every run, so every model is scored on the same bits.
    """
    x = images.astype(np.float32) / 255.0
    if binarize == "dynamic":
        uniform = np.random.default_rng(TEST_BINARIZATION_SEED).uniform(size=x.shape)
        x = (uniform < x).astype(np.float32)
    return x


# --- evaluation ---------------------------------------------------------------------


def iwae_bounds(model, images, k, *, seed=0, batch=IWAE_BATCH):
    """The k-sample importance-weighted bound of each image, as a NumPy array (nats).

    `batch` test images per call, each with `chunk_size` of its k samples decoded at
    once (about 4096 images per chunk), so memory stays bounded for any k. The draws
    are stateless (seeded by `seed` and the image's index): the same model and images
    give the same bounds. `-mean` of them bounds the test NLL from above.
    """
    chunk_size = max(1, min(k, 4096 // batch))

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, *images.shape[1:]], tf.float32),
            tf.TensorSpec([], tf.int64),
        ]
    )
    def bound(x, index):
        return model.iwae_bound(
            x, k, chunk_size=chunk_size, seed=tf.cast(seed, tf.int64) * 1_000_003 + index
        )

    return np.concatenate(
        [
            bound(images[i : i + batch], tf.constant(i, tf.int64)).numpy()
            for i in range(0, len(images), batch)
        ]
    )


def fid_metrics(
    model, dataset, num_samples, *, seed=0, binarized_test=None, cache_dir=None, data_dir=None
):
    """Classifier-feature FIDs of a VAE's samples (`mp.generative.fid.report_of`).

    `fid_classifier`: decoder means `E[x | z]` against the grey-level test images (the
    pictures usually shown). `fid_classifier_true_samples`: true samples `x ~ p(x | z)`
    of the same `z` against `binarized_test` if given (binary against binary), else the
    grey levels. `fid_real_floor`: as many real held-out images against the test split.
    """
    from mp.generative import fid

    options = dict(cache_dir=cache_dir, data_dir=data_dir)
    values = fid.report_of(
        lambda n: model.sample(n, seed=seed, mean=True).numpy(), dataset, num_samples, **options
    )
    draws = model.sample(values["fid_samples"], seed=seed, mean=False).numpy()
    values["fid_classifier_true_samples"] = fid.fid_classifier(
        draws, dataset, real_images=binarized_test, **options
    )
    return values


# --- figures ----------------------------------------------------------------------


def figures(model, images, labels, class_names, *, seed=0, num_reconstructions=12, grid=8):
    """The pictures of a trained VAE, by name: `reconstructions`, `samples_mean`, `samples`
    (true samples of the same `z`, `grid` x `grid`) and `latent` (`latent_figure`).

    Args:
      model: a `VAE`.
      images, labels: test images in [0, 1] (binarised as in training) and their classes.
      class_names: the names of the classes, for the latent plot's colour bar.
      seed: the seed of the samples (`VAE.sample`).
    """
    from mp.plotting import image_grid_figure

    x = images[:num_reconstructions]
    means = model.sample(grid * grid, seed=seed, mean=True).numpy()
    draws = model.sample(grid * grid, seed=seed, mean=False).numpy()
    return {
        "reconstructions": image_grid_figure(
            np.concatenate([x, model(x).numpy()]),
            "test images (top) and reconstructions E[x | z = mu(x)] (bottom)",
            rows=2,
            cols=len(x),
            size=9,
        ),
        "samples_mean": image_grid_figure(means, "decoder means E[x | z], z ~ p(z)", grid, grid),
        "samples": image_grid_figure(draws, "true samples x ~ p(x | z), same z", grid, grid),
        "latent": latent_figure(model, images, labels, class_names),
    }


def latent_figure(model, images, labels, class_names, max_points=2000, traversal=15):
    """Posterior means of test images coloured by class (PCA of them if latent_dim > 2).

    With a 2-D latent space a second panel decodes a grid of z over the prior's
    5%-95% quantiles (a latent traversal).
    """
    from scipy.stats import norm

    from mp.plotting import pyplot, show_tiles, tile_images

    plt = pyplot()
    loc = model.posterior_params(images[:max_points])[0].numpy()
    labels = labels[:max_points]
    two_d = model.latent_dim == 2
    if model.latent_dim > 2:
        centred = loc - loc.mean(axis=0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        points, names = centred @ vt[:2].T, ("PC 1 of mu(x)", "PC 2 of mu(x)")
    elif two_d:
        points, names = loc, ("z_1", "z_2")
    else:
        points, names = np.concatenate([loc, np.zeros_like(loc)], axis=1), ("z_1", "")
    figure, axes = plt.subplots(
        1, 2 if two_d else 1, figsize=(11 if two_d else 6, 5), squeeze=False
    )
    axis = axes[0, 0]
    scatter = axis.scatter(
        points[:, 0], points[:, 1], c=labels, cmap="tab10", s=4, vmin=-0.5, vmax=9.5
    )
    colourbar = figure.colorbar(scatter, ax=axis, ticks=range(len(class_names)))
    colourbar.ax.set_yticklabels(class_names, fontsize=7)
    axis.set_xlabel(names[0])
    axis.set_ylabel(names[1])
    axis.set_title("posterior means of test images", fontsize=9)
    if two_d:
        q = norm.ppf(np.linspace(0.05, 0.95, traversal))
        z = np.array([[a, b] for b in q[::-1] for a in q], dtype=np.float32)
        show_tiles(
            axes[0, 1],
            tile_images(model.decode_mean(z).numpy(), traversal, traversal),
            "decoder means on a grid of z (prior quantiles 5%-95%)",
        )
    figure.tight_layout()
    plt.close(figure)
    return figure


def learning_curves_figure(history):
    """-ELBO (train and eval) and the rate/distortion split against the step (`Trainer.history`
    of a `VAETask`)."""
    from mp.plotting import curves_figure

    return curves_figure(
        history,
        [
            {
                "ylabel": "-ELBO (nats per image)",
                "train": [("train", lambda o: -o["metrics/elbo"])],
                "eval": [("eval", lambda r: -r["elbo"])],
            },
            {
                "ylabel": "nats per image",
                "train": [
                    ("train rate", "metrics/rate"),
                    ("train distortion", "metrics/distortion"),
                ],
                "eval": [("eval rate", "rate"), ("eval distortion", "distortion")],
            },
        ],
    )
