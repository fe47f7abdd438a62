"""NADE: the neural autoregressive distribution estimator (Larochelle and Murray, "The Neural
Autoregressive Distribution Estimator", 2011).

One hidden layer computes every conditional of binary `x` in raster order, the
weights shared across the conditionals:

    h_k = sigmoid(b + W[:, <k] x_<k)                 (H hidden units)
    p(x_k = 1 | x_<k) = sigmoid(c_k + V_k . h_k)

Computed one conditional at a time this costs O(D^2 H) (`naive_logits`). The
pre-activations of consecutive conditionals differ by one column,

    a_1 = b,   a_{k+1} = a_k + W[:, k] x_k,   h_k = sigmoid(a_k),

so all D of them cost O(DH) per image (`call`; the running sum is a cumulative
sum over k, exclusive so that `a_k` stops before `x_k`). Training feeds the
observed pixels (teacher forcing) and `log p(x)` is exact. Sampling runs the
same recursion with the drawn pixels in place of observed ones (`sample`), also
O(DH) per image.

Weights here: `W` is stored `[D, H]` (row k is the course's column `W[:, k]`)
and `V` `[D, H]`.

Course: ch5.3.1 NADE and MADE.
"""

import keras
import numpy as np
import tensorflow as tf

from mp.generative.autoregressive import AutoregressiveMixin, draw, sampling_noise


@keras.saving.register_keras_serializable(package="mp")
class NADE(AutoregressiveMixin, keras.Model):
    """NADE over the pixels of binary `[H, W, 1]` images, in raster order.

    `call(x)` returns the logits of `p(x_k = 1 | x_<k)` for every pixel, `[B, H, W, 1]`.

    Args:
      image_shape: `(H, W, 1)`.
      hidden_units: H (Larochelle and Murray used 500).
    """

    def __init__(self, image_shape, hidden_units=500, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(hidden_units, int) or hidden_units < 1:
            raise ValueError(f"hidden_units must be a positive integer. Received: {hidden_units}")
        self.image_shape = tuple(image_shape)
        self.hidden_units = hidden_units
        self.num_pixels = int(np.prod(image_shape))

    def build(self, input_shape):
        d, h = self.num_pixels, self.hidden_units
        init = keras.initializers.RandomNormal(stddev=0.01)
        self.w = self.add_weight(shape=(d, h), initializer=init, name="w")
        self.b = self.add_weight(shape=(h,), initializer="zeros", name="b")
        self.v = self.add_weight(shape=(d, h), initializer=init, name="v")
        self.c = self.add_weight(shape=(d,), initializer="zeros", name="c")
        self.built = True

    def call(self, x, training=False):
        del training
        x = tf.reshape(tf.cast(x, self.compute_dtype), [-1, self.num_pixels])
        # a_k = b + sum_{j<k} x_j W[j]: an exclusive cumulative sum over the pixels, O(DH).
        steps = x[:, :, None] * self.w[None]  # [B, D, H]: x_j W[j]
        a = self.b + tf.cumsum(steps, axis=1, exclusive=True)
        logits = tf.reduce_sum(tf.sigmoid(a) * self.v, axis=-1) + self.c  # [B, D]
        return tf.reshape(logits, [-1, *self.image_shape])

    def naive_logits(self, x):
        """The same logits, each conditional from scratch, O(D^2 H):
        `h_k = sigmoid(b + x_<k W[<k])`."""
        x = tf.reshape(tf.cast(x, self.compute_dtype), [-1, self.num_pixels])
        columns = []
        for k in range(self.num_pixels):
            h = tf.sigmoid(self.b + tf.matmul(x[:, :k], self.w[:k]))
            columns.append(tf.reduce_sum(h * self.v[k], axis=-1) + self.c[k])
        return tf.reshape(tf.stack(columns, axis=1), [-1, *self.image_shape])

    def sample(self, num_samples, *, seed=0):
        """Ancestral samples with the running activation: O(DH) per image (not D passes).

        The noise is `sampling_noise(seed)`, so the draws equal `ancestral_sample`'s
        (one full pass per pixel) for the same seed.
        """
        w, b, v, c = (np.asarray(t, np.float64) for t in (self.w, self.b, self.v, self.c))
        noise = sampling_noise(num_samples, self.num_pixels, seed=seed)
        x = np.zeros([num_samples, self.num_pixels], np.float32)
        a = np.tile(b, (num_samples, 1))
        for k in range(self.num_pixels):
            logits = 1.0 / (1.0 + np.exp(-a)) @ v[k] + c[k]
            x[:, k] = draw(logits, noise[:, k])
            a += x[:, k : k + 1] * w[k]
        return x.reshape(num_samples, *self.image_shape)

    def get_config(self):
        return super().get_config() | {
            "image_shape": list(self.image_shape),
            "hidden_units": self.hidden_units,
        }


def make_nade(image_shape, hidden_units=500, **kwargs):
    """A built `NADE`."""
    model = NADE(image_shape, hidden_units, **kwargs)
    model(tf.zeros([1, *image_shape], model.compute_dtype))
    return model
