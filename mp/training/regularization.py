"""Regularization: ways to make a network generalise beyond its training set.

Each technique here is a Keras layer (or regularizer) written from its
definition, so it can be placed in any model and is saved with it.

Inverted dropout (Srivastava, Hinton, Krizhevsky, Sutskever, Salakhutdinov,
"Dropout: a simple way to prevent neural networks from overfitting", JMLR
2014). In training every unit is kept with probability `p = 1 - rate` and
zeroed otherwise; kept units are divided by `p`:

    m_i ~ Bernoulli(p),   y_i = m_i * x_i / p,   so  E[y_i] = p * x_i / p = x_i

A unit cannot count on any particular other unit being present, which
discourages co-adapted feature detectors; and each step trains one of the
exponentially many thinned networks, all sharing weights, a cheap form of
model averaging. The original recipe leaves training unscaled and multiplies
the weights by `p` at test time; dividing by `p` in training instead
("inverted" dropout) gives the same expected activation and leaves inference
as the identity.

Batch normalisation (Ioffe, Szegedy, "Batch normalization: accelerating deep
network training by reducing internal covariate shift", ICML 2015). In
training each channel is standardised with the statistics of the batch (over
every axis but the channel axis), then scaled and shifted by learned `gamma`
and `beta`:

    mu = mean(x),   var = mean((x - mu)^2)           (biased variance)
    x_hat = (x - mu) / sqrt(var + epsilon),   y = gamma * x_hat + beta

and moving averages of `mu` and `var` are kept for inference, where they
replace the batch statistics, so a prediction does not depend on the rest of
the batch:

    moving_mean <- momentum * moving_mean + (1 - momentum) * mu      (same for var)

The paper puts it between the linear map and the nonlinearity.

Noise injection: `GaussianNoise` adds `N(0, stddev^2)` to its input in
training, so the network must be robust to small perturbations.

Norm penalties: `L1L2` adds `l1 * sum |w| + l2 * sum w^2` to the loss (see its
docstring for the gradients), as a Keras `kernel_regularizer`;
`weight_penalty` computes the same for every kernel of a model. Pulling every
weight towards zero at each step acts like gradual forgetting.

Data augmentation: `RandomShift` and `RandomFlip` transform images in training
(translation by a few pixels, mirror image) without changing what they show,
so the label still holds, and the classifier learns to be invariant to these
transformations. Put them at the start of the model; they are the identity at
inference. `shift_images` and `flip_left_right` are the deterministic
transformations they sample from.

Early stopping is part of the training loop, not of the model: see
`mp.engine.Trainer(early_stopping_patience=..., early_stopping_metric=...)`,
which stops when the evaluation metric has not improved for that many
evaluations and restores the best weights.

Every layer takes `training` in `call`; the random ones draw from their own
`keras.random.SeedGenerator(seed)`, whose state is a variable: each call
gives new random numbers (also inside a `tf.function`), and two layers built
with the same seed give the same sequence.

Course: ch2.3 Regularization methods.
"""

import keras
import tensorflow as tf
from keras import ops


def _check_seed(seed):
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise ValueError(f"seed must be an integer or None. Received: seed={seed!r}")


@keras.saving.register_keras_serializable(package="mp")
class Dropout(keras.layers.Layer):
    """Inverted dropout: keep each unit with probability `1 - rate`, scaled by `1 / (1 - rate)`.

    Args:
      rate: fraction of units dropped in training, in [0, 1).
      seed: seed of the masks; `None` draws one at random.
      **kwargs: standard layer arguments (`name`, `dtype`, ...).

    Raises:
      ValueError: if `rate` is outside [0, 1).
    """

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0 <= rate < 1:
            raise ValueError(f"rate must be in [0, 1). Received: rate={rate}")
        _check_seed(seed)
        self.rate = float(rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True

    def call(self, inputs, training=False):
        if not training or self.rate == 0:
            return inputs
        keep_prob = 1.0 - self.rate
        u = keras.random.uniform(ops.shape(inputs), dtype=inputs.dtype, seed=self.seed_generator)
        mask = ops.cast(u < keep_prob, inputs.dtype)  # P(u < p) = p for u ~ U[0, 1)
        return inputs * mask / keep_prob

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"rate": self.rate, "seed": self.seed})
        return config


@keras.saving.register_keras_serializable(package="mp")
class BatchNormalization(keras.layers.Layer):
    """Batch normalisation: batch statistics in training, moving averages at inference.

    Matches `keras.layers.BatchNormalization` with the same arguments. As
    there, a layer with `trainable = False` (a frozen layer, e.g. when
    fine-tuning) normalises with its moving statistics even in training and
    leaves them unchanged.

    Args:
      momentum: weight of the old value in the moving averages, in [0, 1).
      epsilon: added to the variance before the square root, > 0.
      center: learn the shift `beta` (else `beta = 0`).
      scale: learn the scale `gamma` (else `gamma = 1`).
      axis: the channel axis, normalised separately (-1 for [B, C] and
        [B, H, W, C]).
      **kwargs: standard layer arguments (`name`, `dtype`, ...).

    Raises:
      ValueError: for `momentum` or `epsilon` out of range, or an `axis` the
        input does not have.
    """

    def __init__(self, momentum=0.99, epsilon=1e-3, center=True, scale=True, axis=-1, **kwargs):
        super().__init__(**kwargs)
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1). Received: momentum={momentum}")
        if not epsilon > 0:
            raise ValueError(f"epsilon must be > 0. Received: epsilon={epsilon}")
        if not isinstance(axis, int):
            raise ValueError(f"axis must be an integer. Received: axis={axis!r}")
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.center = bool(center)
        self.scale = bool(scale)
        self.axis = axis
        self.supports_masking = True

    def build(self, input_shape):
        rank = len(input_shape)
        if not -rank <= self.axis < rank or self.axis % rank == 0:
            raise ValueError(
                f"axis must be a non-batch axis of the input. Received: axis={self.axis} "
                f"for an input of shape {tuple(input_shape)}"
            )
        channel_axis = self.axis % rank
        if input_shape[channel_axis] is None:
            raise ValueError(
                f"The channel axis must have a known size. Received: input_shape={tuple(input_shape)}"
            )
        channels = (input_shape[channel_axis],)
        self.gamma, self.beta = None, None
        if self.scale:
            self.gamma = self.add_weight(shape=channels, initializer="ones", name="gamma")
        if self.center:
            self.beta = self.add_weight(shape=channels, initializer="zeros", name="beta")
        self.moving_mean = self.add_weight(
            shape=channels, initializer="zeros", trainable=False, name="moving_mean"
        )
        self.moving_variance = self.add_weight(
            shape=channels, initializer="ones", trainable=False, name="moving_variance"
        )
        self._reduction_axes = [i for i in range(rank) if i != channel_axis]
        # Shape that broadcasts a per-channel vector against the input: [1, ..., C, ..., 1].
        self._broadcast_shape = [1] * rank
        self._broadcast_shape[channel_axis] = input_shape[channel_axis]

    def call(self, inputs, training=False):
        per_channel = lambda v: ops.reshape(ops.cast(v, inputs.dtype), self._broadcast_shape)
        if training and self.trainable:
            mean = ops.mean(inputs, axis=self._reduction_axes, keepdims=True)
            variance = ops.mean(ops.square(inputs - mean), axis=self._reduction_axes, keepdims=True)
            m = self.momentum
            batch_mean = ops.cast(ops.reshape(mean, [-1]), self.moving_mean.dtype)
            batch_variance = ops.cast(ops.reshape(variance, [-1]), self.moving_variance.dtype)
            self.moving_mean.assign(self.moving_mean * m + batch_mean * (1.0 - m))
            self.moving_variance.assign(self.moving_variance * m + batch_variance * (1.0 - m))
        else:
            mean, variance = per_channel(self.moving_mean), per_channel(self.moving_variance)
        x_hat = (inputs - mean) / ops.sqrt(variance + self.epsilon)
        outputs = x_hat
        if self.scale:
            outputs = per_channel(self.gamma) * outputs
        if self.center:
            outputs = outputs + per_channel(self.beta)
        return outputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "momentum": self.momentum,
                "epsilon": self.epsilon,
                "center": self.center,
                "scale": self.scale,
                "axis": self.axis,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="mp")
class GaussianNoise(keras.layers.Layer):
    """Noise injection: `y = x + stddev * eps`, `eps ~ N(0, 1)`, in training only.

    Args:
      stddev: standard deviation of the noise, >= 0.
      seed: seed of the noise; `None` draws one at random.
      **kwargs: standard layer arguments (`name`, `dtype`, ...).

    Raises:
      ValueError: if `stddev` is negative.
    """

    def __init__(self, stddev, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not stddev >= 0:
            raise ValueError(f"stddev must be >= 0. Received: stddev={stddev}")
        _check_seed(seed)
        self.stddev = float(stddev)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True

    def call(self, inputs, training=False):
        if not training or self.stddev == 0:
            return inputs
        eps = keras.random.normal(ops.shape(inputs), dtype=inputs.dtype, seed=self.seed_generator)
        return inputs + self.stddev * eps

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"stddev": self.stddev, "seed": self.seed})
        return config


@keras.saving.register_keras_serializable(package="mp")
class L1L2(keras.regularizers.Regularizer):
    """Norm penalty on a weight tensor: `l1 * sum |w| + l2 * sum w^2`.

    Pass it as `kernel_regularizer=L1L2(l2=1e-4)`: Keras collects the penalty
    in `model.losses` and `mp.engine`'s tasks add it to the loss. Its gradient
    pulls every weight towards zero:

        d/dw (l1 * |w|) = l1 * sgn(w)     (the subgradient; 0 at w = 0)
        d/dw (l2 * w^2) = 2 * l2 * w

    The L2 term has no factor 1/2, as in Keras' own `keras.regularizers.L1L2`,
    so `l2` here is half of the "weight decay" `lambda` of the form
    `lambda / 2 * ||w||^2` (whose gradient is `lambda * w`).

    Args:
      l1: coefficient of the L1 norm, >= 0.
      l2: coefficient of the squared L2 norm, >= 0.

    Raises:
      ValueError: for a negative coefficient.
    """

    def __init__(self, l1=0.0, l2=0.0):
        if not (l1 >= 0 and l2 >= 0):
            raise ValueError(f"l1 and l2 must be >= 0. Received: l1={l1}, l2={l2}")
        self.l1 = float(l1)
        self.l2 = float(l2)

    def __call__(self, x):
        penalty = ops.zeros((), dtype=x.dtype)
        if self.l1:
            penalty += self.l1 * ops.sum(ops.abs(x))  # d|w|/dw = sgn(w), 0 at 0
        if self.l2:
            penalty += self.l2 * ops.sum(ops.square(x))
        return penalty

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}


def weight_penalty(model, l1=0.0, l2=0.0):
    """`l1 * sum |w| + l2 * sum w^2` over every kernel of `model`, to add to a loss by hand.

    Kernels are the trainable weights whose name ends in `kernel` (the weight
    matrices and filters of `Dense`, `Conv2D`, recurrent layers, ...); biases,
    batch-norm scales and shifts are not penalised, as usual.

    Args:
      model: a `keras.layers.Layer` or `keras.Model` (built).
      l1: coefficient of the L1 norm, >= 0.
      l2: coefficient of the squared L2 norm, >= 0.

    Returns:
      A scalar tensor (0 when the model has no kernel).

    Raises:
      ValueError: for a negative coefficient.
    """
    penalty = L1L2(l1, l2)
    kernels = [w for w in model.trainable_weights if w.name.endswith("kernel")]
    if not kernels:
        return ops.zeros(())
    return ops.sum(ops.stack([penalty(w) for w in kernels]))


def shift_images(images, shifts, max_shift):
    """Translates each image by its own whole number of pixels, filling with zeros.

        output[b, i, j, c] = images[b, i - dy_b, j - dx_b, c]   (0 outside the image)

    The images are padded with `max_shift` zeros on every side, then each is
    cropped back to its size at an offset of `max_shift - shift`.

    Args:
      images: a [B, H, W, C] tensor.
      shifts: an int [B, 2] tensor of `(dy, dx)`: positive moves content down
        and right.
      max_shift: an int >= max |shifts|, the padding.

    Returns:
      A [B, H, W, C] tensor.
    """
    height, width = tf.shape(images)[1], tf.shape(images)[2]
    shifts = tf.cast(shifts, tf.int32)
    padded = tf.pad(images, [[0, 0], [max_shift, max_shift], [max_shift, max_shift], [0, 0]])
    # In `padded` the pixel (i, j) of the image sits at (i + max_shift, j + max_shift).
    rows = tf.range(height)[None, :] + max_shift - shifts[:, :1]  # [B, H]
    cols = tf.range(width)[None, :] + max_shift - shifts[:, 1:]  # [B, W]
    cropped_rows = tf.gather(padded, rows, axis=1, batch_dims=1)  # [B, H, W + 2 max_shift, C]
    return tf.gather(cropped_rows, cols, axis=2, batch_dims=1)  # [B, H, W, C]


def flip_left_right(images):
    """Mirrors [B, H, W, C] images horizontally: `output[b, i, j] = images[b, i, W - 1 - j]`."""
    return images[:, :, ::-1, :]


def _check_images(layer, input_shape):
    if len(input_shape) != 4:
        raise ValueError(
            f"{type(layer).__name__} expects images [batch, height, width, channels]. "
            f"Received: input_shape={tuple(input_shape)}"
        )


@keras.saving.register_keras_serializable(package="mp")
class RandomShift(keras.layers.Layer):
    """Data augmentation: translates each image by a random `(dy, dx)` in training.

    `dy` and `dx` are drawn uniformly from the integers in
    [-max_shift, max_shift], independently for every image; see `shift_images`.

    Args:
      max_shift: largest translation in pixels, an integer >= 0.
      seed: seed of the shifts; `None` draws one at random.
      **kwargs: standard layer arguments (`name`, `dtype`, ...).

    Raises:
      ValueError: if `max_shift` is not a non-negative integer, or the input
        is not a batch of images.
    """

    def __init__(self, max_shift, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(max_shift, int) or isinstance(max_shift, bool) or max_shift < 0:
            raise ValueError(
                f"max_shift must be an integer >= 0. Received: max_shift={max_shift!r}"
            )
        _check_seed(seed)
        self.max_shift = max_shift
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape):
        _check_images(self, input_shape)

    def sample_shifts(self, batch_size):
        """Draws the [batch_size, 2] int32 `(dy, dx)` of one call (advances the seed)."""
        m = self.max_shift
        return keras.random.randint(
            (batch_size, 2), minval=-m, maxval=m + 1, dtype="int32", seed=self.seed_generator
        )

    def call(self, inputs, training=False):
        if not training or self.max_shift == 0:
            return inputs
        shifts = self.sample_shifts(ops.shape(inputs)[0])
        return shift_images(inputs, shifts, self.max_shift)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"max_shift": self.max_shift, "seed": self.seed})
        return config


@keras.saving.register_keras_serializable(package="mp")
class RandomFlip(keras.layers.Layer):
    """Data augmentation: mirrors each image horizontally with probability 1/2 in training.

    Only for data whose label a mirror image keeps (clothes, most objects; not
    digits or text).

    Args:
      seed: seed of the coin flips; `None` draws one at random.
      **kwargs: standard layer arguments (`name`, `dtype`, ...).

    Raises:
      ValueError: if the input is not a batch of images.
    """

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        _check_seed(seed)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape):
        _check_images(self, input_shape)

    def call(self, inputs, training=False):
        if not training:
            return inputs
        u = keras.random.uniform((ops.shape(inputs)[0], 1, 1, 1), seed=self.seed_generator)
        return ops.where(u < 0.5, flip_left_right(inputs), inputs)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"seed": self.seed})
        return config
