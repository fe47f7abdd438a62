"""Batch normalisation of feature maps in one fused TensorFlow kernel.

Batch normalisation (Ioffe and Szegedy, 2015) standardises each channel with the
statistics of the batch, then scales and shifts it with learned `gamma` and `beta`:

    mu_c = mean over (n, h, w) of x[n, h, w, c]
    var_c = mean over (n, h, w) of (x[n, h, w, c] - mu_c)^2      (biased, 1 / N)
    y[n, h, w, c] = gamma_c * (x[n, h, w, c] - mu_c) / sqrt(var_c + eps) + beta_c

and keeps moving averages `m <- momentum * m + (1 - momentum) * batch statistic` for
inference, where it uses them in place of the batch's. `mp.training.regularization`
writes the layer out op by op for the course; Keras' `BatchNormalization` computes it the
same way, with separate ops for the moments, the normalisation and their gradients, in
float32 even under a mixed policy.

`FusedBatchNormalization` is Keras' layer (same arguments, weights, names, checkpoints
and `.keras` files) whose forward and backward pass on NHWC feature maps is TensorFlow's
fused kernel (`FusedBatchNormV3`): one pass computes the moments and the output, one the
three gradients, and it reads bfloat16 or float16 maps directly while `gamma`, `beta` and
the statistics stay float32. Measured on a 2-core CPU, it made ResNet-20's training step
1.4x faster in float32 and 2x faster in mixed bfloat16 (`benchmarks/RESULTS.md`). It
falls back to Keras' computation where the kernel does not apply: other ranks or axes,
masks, `synchronized=True`, batch renormalisation, float64 (gradient checks), or a
backend other than TensorFlow.

The fused kernel returns the batch variance with Bessel's correction (N / (N - 1)) for
the moving average; the layer scales it back to the biased estimate, so the moving
statistics are exactly those of Keras' layer.

Course: ch2.3 Regularization methods (batch normalization); ch7.1 TensorFlow tips (speed).
"""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="mp")
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization` computed by TensorFlow's fused kernel on 4-D maps.

    Args: those of `keras.layers.BatchNormalization`.
    """

    def _fused(self, inputs, mask):
        return (
            keras.backend.backend() == "tensorflow"
            and mask is None
            and len(inputs.shape) == 4
            and self.axis in (-1, 3)
            and not self.synchronized
            and not self.renorm
            and self.epsilon >= 1.001e-5  # the kernel's smallest epsilon
            and self.compute_dtype in ("float32", "bfloat16", "float16")  # no float64 kernel
        )

    def call(self, inputs, training=None, mask=None):
        if not self._fused(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        channels = inputs.shape[-1]
        gamma = self.gamma if self.scale else tf.ones([channels])
        beta = self.beta if self.center else tf.zeros([channels])
        x = tf.cast(inputs, self.compute_dtype)
        if training and self.trainable:
            y, mean, variance = tf.compat.v1.nn.fused_batch_norm(
                x, gamma, beta, epsilon=self.epsilon, is_training=True
            )
            count = tf.cast(tf.reduce_prod(tf.shape(x)[:-1]), variance.dtype)
            variance = variance * (count - 1.0) / tf.maximum(count, 1.0)  # N/(N-1) undone
            self.moving_mean.assign(
                self.moving_mean * self.momentum + mean * (1.0 - self.momentum)
            )
            self.moving_variance.assign(
                self.moving_variance * self.momentum + variance * (1.0 - self.momentum)
            )
        else:
            y, _, _ = tf.compat.v1.nn.fused_batch_norm(
                x,
                gamma,
                beta,
                mean=self.moving_mean,
                variance=self.moving_variance,
                epsilon=self.epsilon,
                is_training=False,
            )
        return y
