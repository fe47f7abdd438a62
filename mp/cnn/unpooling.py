"""Down- and up-sampling layers of fully convolutional networks: pooling with argmax and unpooling.

A fully convolutional network (Long, Shelhamer, Darrell, "Fully convolutional
networks for semantic segmentation", CVPR 2015) shrinks the image to work at
low resolution, then grows it back to the input's size to predict per pixel.
Down-sampling is pooling or a strided convolution; the ways back up, for a
factor `s` and an input `x` `[N, H, W, C]` giving `y` `[N, s H, s W, C]`:

    nearest neighbour:  y[s i + a, s j + b] = x[i, j]                    for a, b in [0, s)
    bed of nails:       y[s i, s j] = x[i, j],  y = 0 elsewhere
    max unpooling:      y[argmax of pooling window (i, j)] = x[i, j],  y = 0 elsewhere

Max unpooling needs the positions of the maxima, remembered by the matching
max pooling (`MaxPoolingWithArgmax2D`, as in SegNet: Badrinarayanan, Kendall,
Cipolla, "SegNet: a deep convolutional encoder-decoder architecture for image
segmentation", TPAMI 2017), so each value goes back where it came from.

The learnable way up is the transposed convolution (`keras.layers.Conv2DTranspose`;
also called up-convolution, fractionally strided or backward strided
convolution, and, wrongly, deconvolution). A strided convolution is a linear
map `y = C x`; the transposed convolution applies `C^T`, which is what
backpropagation computes for `dE/dx` from `dE/dy`. Each input value paints a
copy of the kernel, scaled by the value, onto the output, `s` pixels apart,
overlapping copies adding up:

    y[s i + m, s j + n, c] += sum_o x[i, j, o] K[m, n, c, o]

(see tests/cnn/test_unpooling.py for a worked example). Max unpooling is
likewise the transpose of the selection that max pooling makes.

Argmax convention (`tf.nn.max_pool_with_argmax`): the position of a maximum
is one integer, its index in the flattened tensor, row-major over
`[H, W, C]`: `argmax = (y * W + x) * C + c`, or with
`include_batch_in_index=True` over `[N, H, W, C]`:
`((b * H + y) * W + x) * C + c`. `MaxPoolingWithArgmax2D` returns the index
within the image (`include_batch_in_index=False`), so it does not depend on
the batch; `MaxUnpooling2D` adds the image's offset `b * H * W * C`.

Course: ch3.1 Layers and Architectures (Fully Convolutional Networks:
down- and up-sampling).
"""

import keras
import tensorflow as tf


def _check_positive(name, value):
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer. Received: {name}={value!r}")


@keras.saving.register_keras_serializable(package="mp")
class MaxPoolingWithArgmax2D(keras.layers.Layer):
    """Max pooling that also returns where each maximum was (for `MaxUnpooling2D`).

    `pooled[b, i, j, c] = max_{a, e in [0, pool_size)} x[b, s i + a, s j + e, c]`
    and `argmax[b, i, j, c]` the flattened index of that maximum within its
    image, `(y * W + x) * C + c` (see the module docstring), int64.

    Args:
      pool_size: side of the pooling window.
      strides: step between windows; None for `pool_size`.
      padding: `"valid"` or `"same"`.
      **kwargs: passed to `keras.layers.Layer`.

    Raises:
      ValueError: for a non-positive size or stride, or an unknown padding.
    """

    def __init__(self, pool_size=2, strides=None, padding="valid", **kwargs):
        super().__init__(**kwargs)
        strides = pool_size if strides is None else strides
        _check_positive("pool_size", pool_size)
        _check_positive("strides", strides)
        if padding not in ("valid", "same"):
            raise ValueError(f"padding must be 'valid' or 'same'. Received: padding={padding!r}")
        self.pool_size, self.strides, self.padding = pool_size, strides, padding

    def call(self, inputs):
        pooled, argmax = tf.nn.max_pool_with_argmax(
            inputs,
            ksize=self.pool_size,
            strides=self.strides,
            padding=self.padding.upper(),
            include_batch_in_index=False,  # index within one image: (y * W + x) * C + c
        )
        return pooled, argmax

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        size = lambda d: (
            None
            if d is None
            else (
                -(-d // self.strides)
                if self.padding == "same"
                else (d - self.pool_size) // self.strides + 1
            )
        )
        shape = (n, size(h), size(w), c)
        return shape, shape

    def compute_output_spec(self, inputs):
        shape = self.compute_output_shape(inputs.shape)[0]
        return (
            keras.KerasTensor(shape, dtype=inputs.dtype),
            keras.KerasTensor(shape, dtype="int64"),
        )

    def get_config(self):
        config = super().get_config()
        config.update(pool_size=self.pool_size, strides=self.strides, padding=self.padding)
        return config


@keras.saving.register_keras_serializable(package="mp")
class MaxUnpooling2D(keras.layers.Layer):
    """Puts each value back at the position its max pooling took it from; zeros elsewhere.

    Called on `(values, argmax)`, the two outputs of `MaxPoolingWithArgmax2D`
    (possibly with layers between that keep the shape of `values`):

        y.flat[b * H W C + argmax[b, i, j, c]] += values[b, i, j, c],   y = 0 elsewhere

    with `(H, W)` the size before pooling. Overlapping windows (strides smaller
    than the pool) can share a maximum; its values then add up, which makes
    this exactly the transpose of max pooling's selection (its gradient).
    Backwards, `dE/dvalues[b, i, j, c] = dE/dy.flat[b * H W C + argmax[b, i, j, c]]`:
    a gather at the remembered positions.

    Args:
      size: the pooling stride, for the output size `(size * h, size * w)`;
        ignored when `output_size` is given.
      output_size: `(H, W)`, the size before pooling (for sizes not a multiple
        of the stride); None for `size` times the input's.
      **kwargs: passed to `keras.layers.Layer`.

    Raises:
      ValueError: for a non-positive size.
    """

    def __init__(self, size=2, output_size=None, **kwargs):
        super().__init__(**kwargs)
        _check_positive("size", size)
        if output_size is not None:
            output_size = tuple(output_size)
            if len(output_size) != 2:
                raise ValueError(f"output_size must be (H, W). Received: output_size={output_size}")
            for d in output_size:
                _check_positive("output_size", d)
        self.size, self.output_size = size, output_size

    def _out_hw(self, h, w):
        if self.output_size is not None:
            return self.output_size
        return (None if h is None else h * self.size, None if w is None else w * self.size)

    def call(self, inputs):
        values, argmax = inputs
        shape = tf.shape(values)
        n, c = shape[0], shape[3]
        h_out, w_out = self._out_hw(shape[1], shape[2])
        per_image = h_out * w_out * c
        # Index into the flattened batch: b * (H W C) + argmax.
        offsets = tf.cast(tf.range(n) * per_image, tf.int64)[:, None, None, None]
        indices = tf.reshape(argmax + offsets, [-1, 1])
        y = tf.scatter_nd(indices, tf.reshape(values, [-1]), tf.cast([n * per_image], tf.int64))
        return tf.reshape(y, tf.stack([n, h_out, w_out, c]))

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape[0]
        return (n, *self._out_hw(h, w), c)

    def get_config(self):
        config = super().get_config()
        config.update(size=self.size, output_size=self.output_size)
        return config


@keras.saving.register_keras_serializable(package="mp")
class BedOfNailsUnpooling2D(keras.layers.Layer):
    """Each value at the top-left corner of its `size x size` block, zeros elsewhere.

        y[s i, s j, c] = x[i, j, c],   y[s i + a, s j + b, c] = 0 for (a, b) != (0, 0)

    Args:
      size: the up-sampling factor `s`.
      **kwargs: passed to `keras.layers.Layer`.

    Raises:
      ValueError: for a non-positive size.
    """

    def __init__(self, size=2, **kwargs):
        super().__init__(**kwargs)
        _check_positive("size", size)
        self.size = size

    def call(self, inputs):
        shape = tf.shape(inputs)
        n, h, w, c = shape[0], shape[1], shape[2], shape[3]
        s = self.size
        # [N, H, 1, W, 1, C] padded with s - 1 zeros after each value in both directions.
        x = inputs[:, :, None, :, None, :]
        x = tf.pad(x, [[0, 0], [0, 0], [0, s - 1], [0, 0], [0, s - 1], [0, 0]])
        return tf.reshape(x, tf.stack([n, h * s, w * s, c]))

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        return (n, None if h is None else h * self.size, None if w is None else w * self.size, c)

    def get_config(self):
        config = super().get_config()
        config.update(size=self.size)
        return config


@keras.saving.register_keras_serializable(package="mp")
class NearestNeighborUnpooling2D(keras.layers.Layer):
    """Each value repeated over its `size x size` block: `y[s i + a, s j + b, c] = x[i, j, c]`.

    (The same as `keras.layers.UpSampling2D(size, interpolation="nearest")`.)

    Args:
      size: the up-sampling factor `s`.
      **kwargs: passed to `keras.layers.Layer`.

    Raises:
      ValueError: for a non-positive size.
    """

    def __init__(self, size=2, **kwargs):
        super().__init__(**kwargs)
        _check_positive("size", size)
        self.size = size

    def call(self, inputs):
        return tf.repeat(tf.repeat(inputs, self.size, axis=1), self.size, axis=2)

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        return (n, None if h is None else h * self.size, None if w is None else w * self.size, c)

    def get_config(self):
        config = super().get_config()
        config.update(size=self.size)
        return config
