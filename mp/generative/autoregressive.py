"""What NADE, MADE and the PixelCNNs share: exact likelihoods, ancestral sampling, training.

An autoregressive model factorises a distribution over D pixels along an ordering
`o` (a permutation of the pixel indices):

    p(x) = prod_k p(x_{o(k)} | x_{o(1)}, ..., x_{o(k-1)})

Each network here maps an image `x` to one set of logits per pixel in a single
pass, and the logits of pixel `o(k)` may depend only on the pixels before it in
the ordering (the autoregressive property; `tests/generative/causality.py`
checks it on every model). Then `log p(x)` is exact: the sum over pixels of
the log-probability of the observed value under its logits, computed for all
pixels at once with the observed (teacher-forced) values as inputs:

    Bernoulli (binary pixels, one logit l):  log p(x_d | .) = -softplus(-l) if x_d = 1,
                                                              -softplus(l)  if x_d = 0
    categorical (K grey levels, K logits):   log softmax(l)[round(x_d (K - 1))]

Sampling cannot be parallel: pixel `o(k)` needs the values drawn before it, so
`ancestral_sample` runs the network once per pixel (D passes). The draws come
from noise fixed up front by a seed (`sampling_noise`: a uniform number per
pixel for Bernoulli, Gumbel noise per level for the categorical), so two
samplers that compute the same conditionals draw the same images.

Also here: the training task for `mp.engine.Trainer`, the exact test NLL in
nats and bits per dimension, the enumeration of all `2^D` binary images of a
small shape (the exact-normalisation check), and the figures of the app
(`apps/train_autoregressive.py`).

Course: ch5.3 Autoregressive models (5.3.1 NADE and MADE, 5.3.2 PixelCNN).
"""

import itertools
import math
import time

import keras
import numpy as np
import tensorflow as tf

from mp.engine.task import SingleModelTask, float32, global_mean, minimize


def check_num_levels(num_levels):
    """Raises ValueError unless `num_levels` (values a pixel takes) is an integer >= 2."""
    if not isinstance(num_levels, int) or num_levels < 2:
        raise ValueError(f"num_levels must be an integer >= 2. Received: num_levels={num_levels}")


def pixel_log_probs(x, logits, num_levels=2):
    """`log p(x_d | x_<d)` of every pixel, `[B, ...]` like `x` without the channel.

    Args:
      x: images `[B, H, W, 1]` (or vectors `[B, D]`) with values in [0, 1]: 0/1 for
        `num_levels=2`, else multiples of `1 / (num_levels - 1)`.
      logits: `[B, H, W, 1]` (`[B, D]`) for Bernoulli, `[B, H, W, num_levels]` otherwise.
      num_levels: 2 for a Bernoulli pixel, more for a softmax over grey levels.
    """
    logits = float32(logits)
    x = tf.cast(x, logits.dtype)
    if num_levels == 2:
        return -tf.nn.sigmoid_cross_entropy_with_logits(labels=x, logits=logits)
    labels = tf.cast(tf.round(x[..., 0] * (num_levels - 1)), tf.int32)
    return -tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)


def sum_per_example(values):
    """Sums every axis but the first: `[B, ...] -> [B]`."""
    return tf.reduce_sum(tf.reshape(values, [tf.shape(values)[0], -1]), axis=1)


def sampling_noise(num_samples, num_pixels, num_levels=2, *, seed=0, dtype="float32"):
    """The noise every sampler of a seed shares: `[N, D]` uniforms, or `[N, D, K]` Gumbels.

    Pixel `d` of sample `n` is `u[n, d] < sigmoid(logit)` (Bernoulli), or
    `argmax_k(logits_k + g[n, d, k])` (categorical, the Gumbel-max trick). Stateless:
    the same seed gives the same noise.
    """
    seed = tf.constant([seed or 0, 17], tf.int64)
    if num_levels == 2:
        return tf.random.stateless_uniform([num_samples, num_pixels], seed, dtype=dtype).numpy()
    uniform = tf.random.stateless_uniform(
        [num_samples, num_pixels, num_levels], seed, minval=1e-12, maxval=1.0, dtype=dtype
    )
    return (-tf.math.log(-tf.math.log(uniform))).numpy()


def draw(logits, noise, num_levels=2):
    """Pixel values in [0, 1] from their logits `[N, K]` (or `[N]`) and their noise."""
    logits = np.asarray(logits, dtype=np.float64)
    if num_levels == 2:
        logits = logits.reshape(noise.shape)
        return (noise < 1.0 / (1.0 + np.exp(-logits))).astype(np.float32)
    return np.argmax(logits + noise, axis=-1).astype(np.float32) / (num_levels - 1)


def ancestral_sample(logits_fn, image_shape, num_samples, *, order=None, num_levels=2, seed=0):
    """The naive sampler: one full pass of the network per pixel, in the model's order.

    Args:
      logits_fn: images `[N, H, W, C]` -> logits `[N, H, W, K]` (`[N, H, W, 1]` Bernoulli).
      image_shape: `(H, W, C)`, `C = 1`.
      num_samples: N.
      order: the pixel indices (raster positions `i * W + j`) in sampling order; default
        the raster order.
      num_levels: 2 (Bernoulli) or K.
      seed: the seed of `sampling_noise`.

    Returns:
      float32 images `[N, H, W, C]` with values in [0, 1].
    """
    height, width, channels = image_shape
    num_pixels = height * width * channels
    order = range(num_pixels) if order is None else order
    noise = sampling_noise(num_samples, num_pixels, num_levels, seed=seed)
    x = np.zeros([num_samples, num_pixels], np.float32)
    for d in order:
        logits = np.asarray(logits_fn(x.reshape(num_samples, *image_shape)))
        logits = logits.reshape(num_samples, num_pixels, -1)[:, d]
        x[:, d] = draw(logits, noise[:, d], num_levels)
    return x.reshape(num_samples, *image_shape)


def all_binary_images(image_shape):
    """Every one of the `2^D` binary images of `image_shape`, `[2^D, *image_shape]` float64.

    Small D only (D = 12 gives 4096 images): the exact-normalisation check sums
    `p(x)` over all of them.
    """
    num_pixels = int(np.prod(image_shape))
    if num_pixels > 20:
        raise ValueError(f"2^D images with D > 20 is too many. Received: D={num_pixels}")
    bits = np.array(list(itertools.product([0.0, 1.0], repeat=num_pixels)))
    return bits.reshape(-1, *image_shape)


class AutoregressiveMixin:
    """`log_prob`, `sample` and a `train_step` for `model.fit`, over a model's `call`.

    A model using it defines `call(x) -> logits`, the attributes `image_shape`
    and `num_levels`, and may override `sample`, `order` and `_fit_kwargs`.
    """

    num_levels = 2

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.nll_tracker = keras.metrics.Mean(name="nll")  # model.fit's metric

    def log_prob(self, x, training=False, **kwargs):
        """The exact `log p(x)` of each image, `[B]`, in nats (float32, or float64)."""
        logits = self(x, training=training, **kwargs)
        return sum_per_example(pixel_log_probs(x, logits, self.num_levels))

    def order(self):
        """The sampling order (raster positions), by default the raster order."""
        return list(range(int(np.prod(self.image_shape))))

    def sample(self, num_samples, *, seed=0):
        """Images from the model by `ancestral_sample` (one network pass per pixel)."""
        return ancestral_sample(
            self.predict_logits,
            self.image_shape,
            num_samples,
            order=self.order(),
            num_levels=self.num_levels,
            seed=seed,
        )

    def predict_logits(self, x):
        """`self(x)` in inference mode through one `tf.function` (traced once per shape)."""
        if getattr(self, "_predict", None) is None:
            self._predict = tf.function(lambda images: float32(self(images, training=False)))
        return self._predict(tf.cast(tf.convert_to_tensor(x), self.compute_dtype)).numpy()

    def _fit_kwargs(self):
        """Extra arguments of `call` for one training step of `model.fit` (MADE: its mask)."""
        return {}

    def train_step(self, data):
        x = data[0] if isinstance(data, (tuple, list)) else data
        with tf.GradientTape() as tape:
            nll = -self.log_prob(x, training=True, **self._fit_kwargs())
            loss = tf.reduce_mean(nll)
        minimize(self.optimizer, tape, loss, self.trainable_variables)
        self.nll_tracker.update_state(nll)
        return {"nll": self.nll_tracker.result()}

    def test_step(self, data):
        x = data[0] if isinstance(data, (tuple, list)) else data
        self.nll_tracker.update_state(-self.log_prob(x))
        return {"nll": self.nll_tracker.result()}

    @property
    def metrics(self):
        return [self.nll_tracker]


class AutoregressiveTask(SingleModelTask):
    """Trains an autoregressive model in `mp.engine.Trainer`: minimise the exact NLL.

    A batch is images (binarised or grey levels). A MADE with several masks
    draws one per step, a stateless draw keyed by `(seed, global_step)`, so a
    resumed run picks the same masks. Train outputs: `loss/total` (NLL, nats
    per image), `metrics/bits_per_dim`; eval sums: `loss`, `count`.

    Args:
      model, optimizer, clip_norm: see `mp.engine.SingleModelTask`.
      seed: the seed of the mask draws.
    """

    def __init__(self, model, optimizer, *, clip_norm=None, seed=0):
        super().__init__(model, optimizer, clip_norm=clip_norm)
        self.seed = seed

    def _step_kwargs(self):
        num_masks = getattr(self.model, "num_masks", 1)
        if num_masks == 1:
            return {}
        seed = tf.stack([tf.constant(self.seed, tf.int64), tf.cast(self.global_step, tf.int64)])
        index = tf.random.stateless_uniform([], seed, maxval=num_masks, dtype=tf.int32)
        return {"mask_index": index}

    def train_step(self, batch):
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        with tf.GradientTape() as tape:
            nll = -self.model.log_prob(x, training=True, **self._step_kwargs())
            loss = global_mean(nll)
        grad_norm = self._minimize(tape, loss)
        pixels = float(np.prod(self.model.image_shape))
        return {"loss/total": loss, "metrics/bits_per_dim": loss / (pixels * math.log(2.0))} | (
            self._charts(grad_norm)
        )

    def eval_step(self, batch):
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        nll = -self.model.log_prob(x)
        return {"loss": tf.reduce_sum(nll), "count": tf.cast(tf.shape(nll)[0], tf.float32)}


# --- evaluation and figures -------------------------------------------------------


def test_log_probs(model, images, *, batch=500, **kwargs):
    """The exact `log p(x)` of each image (NumPy, nats), in batches through one tf.function."""
    function = tf.function(lambda x: model.log_prob(x, **kwargs))
    return np.concatenate(
        [function(tf.constant(images[i : i + batch])).numpy() for i in range(0, len(images), batch)]
    )


def nll_metrics(log_probs, num_pixels):
    """`nll_nats` (mean `-log p(x)` per image) and `bits_per_dim` (`nll / (D ln 2)`)."""
    nll = float(-np.mean(log_probs))
    return {"nll_nats": nll, "bits_per_dim": nll / (num_pixels * math.log(2.0))}


def timed_samples(sample_fn, num_samples=64, *, seed=0):
    """`(images, seconds)`: `sample_fn(num_samples, seed=seed)` and its wall time."""
    tic = time.perf_counter()
    images = sample_fn(num_samples, seed=seed)
    return images, time.perf_counter() - tic


def samples_figure(images, title):
    """A grid of samples (8 x 8 for 64)."""
    from mp.plotting import image_grid_figure

    return image_grid_figure(images, title)


def learning_curves_figure(history):
    """NLL in nats per image (train and eval) against the step (`Trainer.history`)."""
    from mp.plotting import curves_figure

    return curves_figure(
        history,
        [
            {
                "ylabel": "NLL (nats per image)",
                "train": [("train", "loss/total")],
                "eval": [("eval", lambda r: r["loss"])],
            }
        ],
    )


def positive_weights(model, seed=0):
    """Sets every trainable weight to a small positive value: weights that cannot hide a
    dependency (`tests/generative/causality.py`, `receptive_field_figure`).

    Kernels (2-D or more) uniform in [0.5, 1.5] / fan-in (the product of all dimensions
    but the last), vectors (biases) in [0.05, 0.15]. With inputs in [0, 1] every
    pre-activation is then a positive sum: no ReLU is off, no two paths cancel, and
    sums stay small enough that no tanh or sigmoid saturates to an exact 0 derivative.
    """
    rng = np.random.default_rng(seed)
    for weight in model.trainable_weights:
        shape = tuple(weight.shape)
        if len(shape) >= 2:
            value = rng.uniform(0.5, 1.5, size=shape) / int(np.prod(shape[:-1]))
        else:
            value = rng.uniform(0.05, 0.15, size=shape)
        weight.assign(value.astype(weight.dtype))
    return model


# --- what the app builds and reports --------------------------------------------------

MODELS = ("nade", "made", "pixelcnn", "gated_pixelcnn")
BINARIZATIONS = ("dynamic", "static")
STATIC_THRESHOLD = 0.5


def make_model(
    kind,
    image_shape,
    *,
    hidden_units=(500,),
    num_masks=1,
    order_agnostic=None,
    filters=32,
    num_layers=5,
    kernel_size=3,
    head_units=64,
    seed=0,
):
    """A built model by name (`MODELS`) for binary images of `image_shape`.

    NADE uses `hidden_units[0]`; MADE all of `hidden_units`, `num_masks` and
    `order_agnostic` (default: `num_masks > 1`); PixelCNN `filters`, `num_layers`
    residual blocks, `kernel_size` and `head_units`; Gated PixelCNN `filters`, `num_layers`
    gated layers, `kernel_size` and `head_units`.
    """
    from mp.generative import made, nade, pixelcnn

    if kind not in MODELS:
        raise ValueError(f"model must be one of {', '.join(MODELS)}. Received: model={kind!r}")
    if kind == "nade":
        return nade.make_nade(image_shape, int(hidden_units[0]))
    if kind == "made":
        return made.make_made(
            image_shape,
            tuple(hidden_units),
            num_masks=num_masks,
            order_agnostic=order_agnostic,
            seed=seed,
        )
    options = dict(filters=filters, kernel_size=kernel_size, head_units=head_units)
    if kind == "pixelcnn":
        return pixelcnn.make_pixelcnn(image_shape, num_blocks=num_layers, **options)
    return pixelcnn.make_gated_pixelcnn(image_shape, num_layers=num_layers, **options)


def check_binarization(binarize):
    if binarize not in BINARIZATIONS:
        raise ValueError(
            f"binarize must be one of {', '.join(BINARIZATIONS)}. Received: binarize={binarize!r}"
        )


def training_images(data, binarize, seed=0, start=0):
    """Batches `(images, labels)` in [0, 1] -> binary image batches.

    `dynamic`: redrawn as Bernoulli(grey level) each time, keyed by `(seed, batch index)`
    (`mp.generative.vae.training_images`: the VAE's and this chapter's bits are the same);
    `static`: thresholded at `STATIC_THRESHOLD`.
    """
    from mp.generative import vae

    if binarize == "dynamic":
        return vae.training_images(data, "dynamic", seed, start)
    return data.map(lambda images, labels: tf.cast(images > STATIC_THRESHOLD, images.dtype))


def evaluation_images(images, binarize):
    """uint8 test images -> binary float32: `dynamic` draws them once with the VAE's fixed
    seed (`vae.TEST_BINARIZATION_SEED`: every model of chapter 5 is scored on the same
    bits), `static` thresholds them."""
    from mp.generative import vae

    if binarize == "dynamic":
        return vae.evaluation_images(images, "dynamic")
    return (images.astype(np.float32) / 255.0 > STATIC_THRESHOLD).astype(np.float32)


def binarization_metrics(binarize):
    """How the test bits were made, for `metrics.json`."""
    from mp.generative import vae

    if binarize == "dynamic":
        return {"binarization": "dynamic", "binarization_seed": vae.TEST_BINARIZATION_SEED}
    return {"binarization": "static", "binarization_threshold": STATIC_THRESHOLD}


def report(model, test_x, *, seed=0, num_samples=64, time_naive_sampler=False):
    """Exact test NLL, samples and their timing, and the figures of a trained model.

    Returns `(metrics, figures)`: `nll_nats` and `bits_per_dim` (MADE with several
    masks: of the mixture over masks, plus `nll_nats_one_mask` of mask 0),
    `test_images`, `sample_seconds` (the model's own sampler: NADE's O(DH) recursion,
    the PixelCNNs' band sampler, MADE's D passes) and with `time_naive_sampler` for the
    PixelCNNs `sample_seconds_naive`, `sample_speedup` and `samples_identical`; figures
    `samples` and, for the PixelCNNs, `receptive_field`.
    """
    from mp.generative import pixelcnn

    num_pixels = int(np.prod(model.image_shape))
    metrics = nll_metrics(test_log_probs(model, test_x), num_pixels)
    if getattr(model, "num_masks", 1) > 1:
        one = nll_metrics(test_log_probs(model, test_x, mask_index=0), num_pixels)
        metrics["nll_nats_one_mask"] = one["nll_nats"]
        metrics["num_masks"] = model.num_masks
    metrics["test_images"] = len(test_x)
    images, metrics["sample_seconds"] = timed_samples(model.sample, num_samples, seed=seed)
    pixel_model = isinstance(model, (pixelcnn.PixelCNN, pixelcnn.GatedPixelCNN))
    if pixel_model and time_naive_sampler:
        sampler = lambda n, seed: pixelcnn.naive_sample(model, n, seed=seed)  # noqa: E731
        naive, seconds = timed_samples(sampler, num_samples, seed=seed)
        metrics |= {
            "sample_seconds_naive": seconds,
            "sample_speedup": seconds / metrics["sample_seconds"],
            "samples_identical": bool(np.array_equal(naive, images)),
        }
    figures = {"samples": samples_figure(images, f"{num_samples} samples of {model.name}")}
    if pixel_model:
        figures["receptive_field"] = pixelcnn.comparison_figure(model)
    return metrics, figures
