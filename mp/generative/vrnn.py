"""Variational RNN (VRNN) with a learned prior, and its class-conditional variant (C-VRNN).

Chung, Kastner, Dinh, Goel, Courville and Bengio, "A Recurrent Latent Variable
Model for Sequential Data", 2015; the conditioning follows the idea of Aksan,
Pece and Hilliges, "DeepWriting: Making Digital Ink Editable via Deep Generative
Modeling", 2018 (C-VRNN): content and style in separate variables.

A VRNN puts a VAE (ch5.1) at every step of a recurrent network. With `h_{t-1}`
the state of the RNN (a cell of `mp.rnn.cells`) and `phi_x`, `phi_z` feature
layers:

    prior      p(z_t | h_{t-1})       = N(mu_0,t, sigma_0,t^2)  from h_{t-1}: learned,
                                        it changes along the sequence (unlike the
                                        VAE's fixed N(0, I))
    encoder    q(z_t | x_t, h_{t-1})  = N(mu_z,t, sigma_z,t^2)  from [phi_x(x_t), h_{t-1}]
    decoder    p(x_t | z_t, h_{t-1})  = Bernoulli(logits)       from [phi_z(z_t), h_{t-1}]
    recurrence h_t = f([phi_x(x_t), phi_z(z_t)], h_{t-1})

Every scale is `softplus(.) + min_scale`: a scale that reaches 0 makes a log-density
and the KL infinite. The recurrence is never cut: the gradient of step t's terms
flows back through `h_{t-1}` into every earlier step, the prior included.

The ELBO of a whole sequence sums one VAE bound per step; the KL between the two
diagonal Gaussians is closed form (`tfd.kl_divergence`):

    ELBO(x) = sum_t E_q[ log p(x_t | z_t, h_{t-1}) - KL(q(z_t | x_t, h_{t-1}) || p(z_t | h_{t-1})) ]
    KL(N(m1, s1^2) || N(m0, s0^2)) = sum_j log(s0/s1) + (s1^2 + (m1 - m0)^2) / (2 s0^2) - 1/2

with one reparametrised sample `z_t = mu_z,t + sigma_z,t * eps_t` per step. The
test score is the importance-weighted bound with k whole trajectories
(`iwae_bound`): `log (1/k) sum_i prod_t p(x_t|z_t^i,.) p(z_t^i|h_{t-1}^i) / q(z_t^i|x_t,.)`,
a lower bound on `log p(x)` that tightens with k, comparable with the VAE's and the
exact NLLs of part 1 on the same test bits.

An image is read row by row (28 steps of 28 pixels for Fashion-MNIST, 8 of 8 for
the digits), the order of chapter 4's sequential images. Sampling runs the prior:
`z_t ~ p(z_t | h_{t-1})`, `x_t ~ p(x_t | z_t, h_{t-1})`, `h_t = f(x_t, z_t, h_{t-1})`.

**C-VRNN.** With `num_classes`, a content variable `c` (the class, one-hot) is
given to the prior, the encoder and the decoder at every step, while the style
latents `z_t` carry the rest. The two stay apart: `c` is never inferred from the
latents and never enters them, so a style (the prior noise of `z_1..z_T`, or the
latents the encoder reads off an image) can be rendered as each of the classes
(`sample(..., labels=...)` with one seed for every class; `render`).

Course: ch5.3.3 TCN, VRNN, C-VRNN, STCN (VRNN: one VAE per time step, a dynamic
prior; C-VRNN: style and content decoupled); ch5.1 VAE; ch4 RNN cells.
"""

import math
import time

import keras
import numpy as np
import tensorflow as tf

from mp.engine.task import SingleModelTask, float32, global_mean
from mp.rnn import _checks
from mp.rnn.cells import make_cell

MIN_SCALE = 1e-3
# The steps are a Python loop over a static T, unrolled when traced; AutoGraph has
# nothing to convert there, and converting it cost more than the rest of the tracing.
_plain_python = tf.autograph.experimental.do_not_convert


def _tfd():
    import tensorflow_probability as tfp

    return tfp.distributions


def diagonal_gaussian(loc, scale):
    """`N(loc, diag(scale^2))` over the last axis (`tfd.MultivariateNormalDiag`)."""
    return _tfd().MultivariateNormalDiag(loc=loc, scale_diag=scale)


def gaussian_kl(loc_q, scale_q, loc_p, scale_p):
    """`KL(N(loc_q, scale_q^2) || N(loc_p, scale_p^2))`, diagonal, summed over the last axis."""
    q, p = diagonal_gaussian(loc_q, scale_q), diagonal_gaussian(loc_p, scale_p)
    return _tfd().kl_divergence(q, p)


def bernoulli_log_prob(x, logits):
    """`sum_d log Bernoulli(x_d; sigmoid(logits_d))` over the last axis."""
    return -tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(labels=x, logits=logits), -1)


@keras.saving.register_keras_serializable(package="mp")
class VRNN(keras.Model):
    """A VRNN (or C-VRNN with `num_classes`) over binary sequences `[B, T, D]`.

    Images `[B, H, W, 1]` are read as `H` steps of `W` pixels. `model(x)` (or
    `model((x, labels))` for a C-VRNN) returns each step's ELBO term `[B, T]`,
    `log p(x_t | z_t, h_{t-1}) - KL(q_t || p_t)`, with every `z_t` at its posterior
    mean: deterministic (for tests and saved models), and every weight, the prior's
    included, takes part. `elbo_terms`, `iwae_bound` and `sample` are the
    probabilistic interface; `unroll` gives every per-step quantity.

    Args:
      input_dim: D, values per step.
      steps: T, steps per sequence.
      latent_dim: size of each `z_t`.
      units: size of the RNN state `h`.
      hidden_units: width of `phi_x`, `phi_z` and of the hidden layer of the prior,
        the encoder and the decoder.
      cell: a cell of `mp.rnn.cells.CELLS` (its first state is `h`).
      num_classes: `None` for a VRNN; the number of classes of the content variable
        for a C-VRNN.
      min_scale: added to every softplus scale.
    """

    def __init__(
        self,
        input_dim,
        steps,
        *,
        latent_dim=16,
        units=128,
        hidden_units=128,
        cell="gru",
        num_classes=None,
        min_scale=MIN_SCALE,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.input_dim = _checks.count("input_dim", input_dim)
        self.steps = _checks.count("steps", steps)
        self.latent_dim = _checks.count("latent_dim", latent_dim)
        self.units = _checks.count("units", units)
        self.hidden_units = _checks.count("hidden_units", hidden_units)
        if num_classes is not None:
            num_classes = _checks.count("num_classes", num_classes)
        self.num_classes = num_classes
        self.min_scale = _checks.positive("min_scale", min_scale)
        self.cell_name = cell
        self.image_shape = (self.steps, self.input_dim, 1)

        def dense(width, name, activation=None):
            return keras.layers.Dense(width, activation=activation, name=name)

        self.phi_x = dense(hidden_units, "phi_x", "relu")
        self.phi_z = dense(hidden_units, "phi_z", "relu")
        self.prior_hidden = dense(hidden_units, "prior_hidden", "relu")
        self.prior_params = dense(2 * latent_dim, "prior_params")
        self.encoder_hidden = dense(hidden_units, "encoder_hidden", "relu")
        self.encoder_params = dense(2 * latent_dim, "encoder_params")
        self.decoder_hidden = dense(hidden_units, "decoder_hidden", "relu")
        self.decoder_logits = dense(input_dim, "decoder_logits")
        self.cell = make_cell(cell, units)

    def build(self, input_shape=None):
        """Builds every layer from the configuration (any `input_shape`, e.g. `(x, labels)`)."""
        del input_shape
        content = self.num_classes or 0
        hidden, latent, units = self.hidden_units, self.latent_dim, self.units
        shapes = {
            self.phi_x: self.input_dim,
            self.phi_z: latent,
            self.prior_hidden: units + content,
            self.prior_params: hidden,
            self.encoder_hidden: hidden + units + content,
            self.encoder_params: hidden,
            self.decoder_hidden: hidden + units + content,
            self.decoder_logits: hidden,
            self.cell: 2 * hidden,
        }
        for layer, width in shapes.items():
            layer.build((None, width))
        self.built = True

    @property
    def conditional(self):
        return self.num_classes is not None

    # --- the pieces of one step ---------------------------------------------------------

    def _split(self, inputs):
        """`inputs` -> `(x [B, T, D], content [B, C] or None)` in the compute dtype."""
        labels = None
        if isinstance(inputs, (tuple, list)):
            inputs, labels = inputs
        x = tf.convert_to_tensor(inputs)
        if x.shape.rank == 4:  # images, read row by row
            x = x[..., 0]
        x = tf.cast(x, self.compute_dtype)
        return x, self.content(labels, tf.shape(x)[0])

    def content(self, labels, batch_size=None):
        """The content variable: one-hot labels `[B, C]` (C-VRNN), or `None` (VRNN)."""
        if not self.conditional:
            if labels is not None:
                raise ValueError("labels are for a C-VRNN (num_classes); this VRNN has none")
            return None
        if labels is None:
            raise ValueError("a C-VRNN needs labels: model((x, labels))")
        labels = tf.convert_to_tensor(labels)
        if labels.dtype.is_integer:
            return tf.one_hot(labels, self.num_classes, dtype=self.compute_dtype)
        return tf.cast(labels, self.compute_dtype)

    def _with_content(self, parts, content):
        return tf.concat(parts + ([] if content is None else [content]), axis=-1)

    def _gaussian(self, params):
        loc, raw = tf.split(float32(params), 2, axis=-1)
        return loc, tf.nn.softplus(raw) + self.min_scale

    def prior(self, h, content=None):
        """`(loc, scale)` of `p(z_t | h_{t-1}, c)`, float32."""
        hidden = self.prior_hidden(self._with_content([h], content))
        return self._gaussian(self.prior_params(hidden))

    def posterior(self, features_x, h, content=None):
        """`(loc, scale)` of `q(z_t | x_t, h_{t-1}, c)` from `phi_x(x_t)`, float32."""
        inputs = self._with_content([features_x, h], content)
        return self._gaussian(self.encoder_params(self.encoder_hidden(inputs)))

    def decode(self, features_z, h, content=None):
        """The logits of `p(x_t | z_t, h_{t-1}, c)` from `phi_z(z_t)`, float32."""
        inputs = self._with_content([features_z, h], content)
        return float32(self.decoder_logits(self.decoder_hidden(inputs)))

    def _recur(self, features_x, features_z, states):
        _, states = self.cell(tf.concat([features_x, features_z], -1), states)
        return states

    # --- teacher-forced pass over whole sequences ------------------------------------------

    @_plain_python
    def unroll(self, x, content=None, *, eps=None, z=None, training=False):
        """Runs the VRNN over the observed `x [B, T, D]`; every output `[B, T, ...]` float32.

        `z_t` is `z[:, t]` if `z` is given, else `mu_z,t + sigma_z,t * eps[:, t]` if
        `eps` is given, else the posterior mean. Returns a dict: `prior_loc`,
        `prior_scale`, `posterior_loc`, `posterior_scale`, `z`, `logits`.
        """
        del training  # no dropout or batch norm
        states = self.cell.get_initial_state(tf.shape(x)[0])
        keys = ("prior_loc", "prior_scale", "posterior_loc", "posterior_scale", "z", "logits")
        out = {key: [] for key in keys}
        for t in range(x.shape[1]):
            h = states[0]
            features_x = self.phi_x(x[:, t])
            prior_loc, prior_scale = self.prior(h, content)
            loc, scale = self.posterior(features_x, h, content)
            if z is not None:
                z_t = tf.cast(z[:, t], loc.dtype)
            elif eps is not None:
                z_t = loc + scale * tf.cast(eps[:, t], loc.dtype)  # reparametrised
            else:
                z_t = loc
            features_z = self.phi_z(tf.cast(z_t, self.compute_dtype))
            logits = self.decode(features_z, h, content)
            for key, value in zip(keys, (prior_loc, prior_scale, loc, scale, z_t, logits)):
                out[key].append(value)
            states = self._recur(features_x, features_z, states)  # never detached
        return {key: tf.stack(values, axis=1) for key, values in out.items()}

    @_plain_python
    def call(self, inputs, training=False):
        x, content = self._split(inputs)
        log_likelihood, kl = self._step_terms(x, self.unroll(x, content, training=training))
        return log_likelihood - kl

    @staticmethod
    def _step_terms(x, out):
        """`log p(x_t | z_t, h_{t-1})` and the closed-form `KL(q_t || p_t)`, each `[B, T]`."""
        log_likelihood = bernoulli_log_prob(float32(x), out["logits"])
        kl = gaussian_kl(
            out["posterior_loc"], out["posterior_scale"], out["prior_loc"], out["prior_scale"]
        )
        return log_likelihood, kl

    def noise(self, batch_size, seed, steps=None):
        """Standard normal `eps [B, T, latent_dim]`, a stateless draw of `seed` (two ints)."""
        shape = tf.stack([batch_size, steps or self.steps, self.latent_dim])
        return tf.random.stateless_normal(shape, seed=seed, dtype=tf.float32)

    @_plain_python
    def elbo_terms(self, inputs, *, eps=None, seed=(0, 0), training=False):
        """Per-sequence `elbo`, `distortion = -sum_t log p(x_t|.)`, `rate = sum_t KL_t`, `[B]`,
        and `kl_steps`, each step's `KL_t`, `[B, T]`.

        One reparametrised sample per step: `eps` (`[B, T, latent_dim]`) or drawn with
        the stateless `seed`.
        """
        x, content = self._split(inputs)
        if eps is None:
            eps = self.noise(tf.shape(x)[0], seed, x.shape[1])
        out = self.unroll(x, content, eps=eps, training=training)
        log_likelihood, kl = self._step_terms(x, out)
        log_likelihood, rate = tf.reduce_sum(log_likelihood, axis=1), tf.reduce_sum(kl, axis=1)
        return {
            "elbo": log_likelihood - rate,
            "distortion": -log_likelihood,
            "rate": rate,
            "kl_steps": kl,
        }

    @_plain_python
    def log_weights(self, inputs, eps):
        """`log p(x, z) - log q(z | x)` of each sequence for the posterior sample `eps`, `[B]`."""
        x, content = self._split(inputs)
        out = self.unroll(x, content, eps=eps)
        z = out["z"]
        log_prior = diagonal_gaussian(out["prior_loc"], out["prior_scale"]).log_prob(z)
        log_q = diagonal_gaussian(out["posterior_loc"], out["posterior_scale"]).log_prob(z)
        log_likelihood = bernoulli_log_prob(float32(x), out["logits"])
        return tf.reduce_sum(log_likelihood + log_prior - log_q, axis=1)

    @_plain_python
    def iwae_bound(self, inputs, k, *, seed=0, chunk_size=50):
        """`log (1/k) sum_i w_i` over k posterior trajectories per sequence, `[B]` (nats).

        The `k` samples are drawn in chunks of `chunk_size` (the batch is repeated
        `chunk_size` times); sample `i` uses the stateless seed `(seed, i // chunk_size)`.
        """
        k = _checks.count("k", k)
        x, content = self._split(inputs)
        batch = tf.shape(x)[0]
        sums = []
        for start in range(0, k, chunk_size):
            n = min(chunk_size, k - start)
            tiled = tf.tile(x, [n, 1, 1])  # sample-major: row i*B + b
            tiled_content = None if content is None else tf.tile(content, [n, 1])
            eps = self.noise(n * batch, (seed, start // chunk_size), x.shape[1])
            inputs_n = tiled if content is None else (tiled, tiled_content)
            log_w = tf.reshape(self.log_weights(inputs_n, eps), [n, batch])
            sums.append(tf.reduce_logsumexp(log_w, axis=0))
        return tf.reduce_logsumexp(tf.stack(sums), axis=0) - math.log(k)

    # --- generation ----------------------------------------------------------------------

    def sample(self, num_samples, *, labels=None, seed=0, z=None, eps=None, mean=False):
        """Sequences from the model, `[N, T, D]` float32 (binary, or probabilities with `mean`).

        `z_t ~ p(z_t | h_{t-1}, c)` (or `z[:, t]` when `z` is given: `render`), `x_t ~
        p(x_t | z_t, h_{t-1}, c)`, `h_t = f(x_t, z_t, h_{t-1})`. The noise comes from
        `seed` alone (normal for `z`, uniform for `x`), so one seed with different
        `labels` renders one style as different classes; `eps` (`[N, T, latent_dim]`)
        replaces the seed's prior noise.
        """
        content = self.content(labels, num_samples)
        eps = self.noise(num_samples, (seed, 1)) if eps is None else tf.cast(eps, tf.float32)
        uniform = tf.random.stateless_uniform([num_samples, self.steps, self.input_dim], (seed, 2))
        states = self.cell.get_initial_state(num_samples)
        rows = []
        for t in range(self.steps):
            h = states[0]
            if z is None:
                loc, scale = self.prior(h, content)
                z_t = loc + scale * eps[:, t]
            else:
                z_t = tf.cast(z[:, t], tf.float32)
            features_z = self.phi_z(tf.cast(z_t, self.compute_dtype))
            probs = tf.sigmoid(self.decode(features_z, h, content))
            x_t = probs if mean else tf.cast(uniform[:, t] < probs, tf.float32)
            rows.append(x_t)
            states = self._recur(self.phi_x(tf.cast(x_t, self.compute_dtype)), features_z, states)
        return tf.stack(rows, axis=1).numpy()

    def render(self, images, labels, new_labels, *, seed=0):
        """Re-renders `images` (their posterior-mean style latents) as the classes `new_labels`."""
        x, content = self._split((images, labels) if self.conditional else images)
        z = self.unroll(x, content)["posterior_loc"]
        return self.sample(len(images), labels=new_labels, seed=seed, z=z)

    def get_config(self):
        return {
            **super().get_config(),
            "input_dim": self.input_dim,
            "steps": self.steps,
            "latent_dim": self.latent_dim,
            "units": self.units,
            "hidden_units": self.hidden_units,
            "cell": self.cell_name,
            "num_classes": self.num_classes,
            "min_scale": self.min_scale,
        }


class VRNNTask(SingleModelTask):
    """Trains a (C-)VRNN in `mp.engine.Trainer`: minimise the negative ELBO per sequence.

    A batch is images (or `(images, labels)` for a C-VRNN). The posterior noise of
    a step is a stateless draw keyed by `(seed, global_step)`, so a resumed run
    draws the same. Train outputs: `loss/total` (-ELBO, nats per sequence),
    `loss/distortion`, `loss/rate`, `metrics/bits_per_dim`; eval sums: `loss`, `count`.

    `free_bits` (lambda, nats) keeps the latents in use (Kingma et al., "Improved
    Variational Inference with Inverse Autoregressive Flow", 2016): the minimised
    objective charges each step's batch-mean KL as `max(KL_t, lambda)`, so pushing a
    step's KL below lambda gains nothing. A decoder that reads the previous rows
    through `h` can otherwise model the data alone and leave `q = p` (the rate near
    0: posterior collapse). `loss/total` stays the true -ELBO; the objective is
    `loss/objective`.
    """

    def __init__(self, model, optimizer, *, clip_norm=None, seed=0, free_bits=0.0):
        super().__init__(model, optimizer, clip_norm=clip_norm)
        self.seed = seed
        if not free_bits >= 0.0:
            raise ValueError(f"free_bits must be >= 0. Received: free_bits={free_bits}")
        self.free_bits = float(free_bits)

    def _inputs(self, batch):
        if self.model.conditional:
            return tuple(batch)
        return batch[0] if isinstance(batch, (tuple, list)) else batch

    def train_step(self, batch):
        seed = tf.stack([tf.constant(self.seed, tf.int64), tf.cast(self.global_step, tf.int64)])
        with tf.GradientTape() as tape:
            terms = self.model.elbo_terms(self._inputs(batch), seed=seed, training=True)
            loss = global_mean(-terms["elbo"])
            objective = loss
            if self.free_bits:
                replicas = tf.distribute.get_strategy().num_replicas_in_sync
                kl = tf.maximum(tf.reduce_mean(terms["kl_steps"], axis=0), self.free_bits)
                objective = global_mean(terms["distortion"]) + tf.reduce_sum(kl) / replicas
        grad_norm = self._minimize(tape, objective)
        pixels = float(self.model.steps * self.model.input_dim)
        extra = {"loss/objective": objective} if self.free_bits else {}
        return extra | {
            "loss/total": loss,
            "loss/distortion": global_mean(terms["distortion"]),
            "loss/rate": global_mean(terms["rate"]),
            "metrics/bits_per_dim": loss / (pixels * math.log(2.0)),
        } | self._charts(grad_norm)

    def eval_step(self, batch):
        terms = self.model.elbo_terms(self._inputs(batch), seed=(self.seed, -1))
        nll = -terms["elbo"]
        return {"loss": tf.reduce_sum(nll), "count": tf.cast(tf.shape(nll)[0], tf.float32)}


# --- what the app builds and reports --------------------------------------------------

MODELS = ("vrnn", "cvrnn")


def make_model(kind, image_shape, *, latent_dim=16, units=128, hidden_units=128, cell="gru",
               num_classes=10):
    """A built (C-)VRNN reading images of `image_shape` `(H, W, 1)` row by row."""
    if kind not in MODELS:
        raise ValueError(f"model must be one of {', '.join(MODELS)}. Received: model={kind!r}")
    height, width = image_shape[:2]
    model = VRNN(
        width,
        height,
        latent_dim=latent_dim,
        units=units,
        hidden_units=hidden_units,
        cell=cell,
        num_classes=num_classes if kind == "cvrnn" else None,
        name=kind,
    )
    x = np.zeros((1, height, width), np.float32)
    model((x, np.zeros((1,), np.int32)) if model.conditional else x)
    return model


class ImageData:
    """The app's images for a (C-)VRNN: `mp.generative.autoregressive`'s bits, with labels.

    `training_images` and `evaluation_images` as in `autoregressive` (the same bits:
    the VAE's seeds), keeping the labels when the model is a C-VRNN (`test_labels`
    are then returned with the test images).
    """

    def __init__(self, conditional, test_labels=None):
        self.conditional, self.test_labels = conditional, test_labels

    def training_images(self, data, binarize, seed=0, start=0):
        from mp.generative import autoregressive as ar
        from mp.generative import vae

        if not self.conditional:
            return ar.training_images(data, binarize, seed, start)
        if binarize == "static":

            def threshold(images, labels):
                return tf.cast(images > ar.STATIC_THRESHOLD, images.dtype), labels

            return data.map(threshold)

        def binarize_indexed(index, batch):
            images, labels = batch
            return vae.binarize_batch(images, tf.constant(seed, tf.int64), index), labels

        return data.enumerate(start).map(binarize_indexed)

    def evaluation_images(self, images, binarize):
        from mp.generative import autoregressive as ar

        x = ar.evaluation_images(images, binarize)
        return (x, self.test_labels.astype(np.int32)) if self.conditional else x


def iwae_nll(model, test_x, k, *, seed=0, batch=100):
    """`-IWAE_k` of each test sequence (NumPy, nats), in batches through one tf.function."""
    function = tf.function(
        lambda inputs: model.iwae_bound(inputs, k, seed=seed), autograph=False
    )
    conditional = isinstance(test_x, tuple)
    count = len(test_x[0]) if conditional else len(test_x)
    values = []
    for i in range(0, count, batch):
        inputs = tuple(a[i : i + batch] for a in test_x) if conditional else test_x[i : i + batch]
        values.append(-function(inputs).numpy())
    return np.concatenate(values)


def report(model, test_x, *, seed=0, iwae_k=100, num_samples=64):
    """Test bounds, samples and figures of a trained (C-)VRNN.

    Returns `(metrics, figures)`: `nll_nats` (`-IWAE_k`, a bound: `nll_bound` says
    so), `elbo_nats` (`-ELBO`, one sample), `bits_per_dim`, `iwae_k`, `test_images`,
    `sample_seconds`; figures `samples` and, for a C-VRNN, `class_styles`.
    """
    from mp.generative import autoregressive as ar

    pixels = model.steps * model.input_dim
    nll = iwae_nll(model, test_x, iwae_k, seed=seed)
    elbo_fn = tf.function(
        lambda inputs: model.elbo_terms(inputs, seed=(seed, 3))["elbo"], autograph=False
    )
    conditional = isinstance(test_x, tuple)
    elbo = -elbo_fn(test_x).numpy()
    metrics = ar.nll_metrics(-nll, pixels) | {
        "nll_bound": f"iwae_{iwae_k}",
        "elbo_nats": float(np.mean(elbo)),
        "iwae_k": iwae_k,
        "test_images": int(len(nll)),
    }
    labels = np.arange(num_samples) % model.num_classes if conditional else None
    tic = time.perf_counter()
    images = model.sample(num_samples, labels=labels, seed=seed)
    metrics["sample_seconds"] = time.perf_counter() - tic
    title = f"{num_samples} samples of {model.name}"
    figures = {"samples": ar.samples_figure(images[..., None], title)}
    if conditional:
        from mp.plotting import image_grid_figure

        styles = 6
        figures["class_styles"] = image_grid_figure(
            same_style_grid(model, styles, seed=seed),
            "one style (prior noise) per row, the classes across",
            rows=styles,
            cols=model.num_classes,
        )
    return metrics, figures


def same_style_grid(model, num_styles=6, *, seed=0):
    """C-VRNN: `[num_styles * C, H, W, 1]` pixel means; row s renders style s as each class.

    Style s is the prior noise of `z_1..z_T` drawn with seed `seed + s`, shared by every
    class in its row (the pixels are the decoder's means, so no pixel noise differs).
    """
    classes = np.arange(model.num_classes)
    rows = []
    for s in range(num_styles):
        eps = tf.tile(model.noise(1, (seed + s, 1)), [len(classes), 1, 1])
        rows.append(model.sample(len(classes), labels=classes, eps=eps, mean=True))
    return np.concatenate(rows)[..., None]
