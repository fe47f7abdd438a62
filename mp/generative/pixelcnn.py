"""PixelCNN (van den Oord, Kalchbrenner and Kavukcuoglu, "Pixel Recurrent Neural Networks",
2016) and Gated PixelCNN (van den Oord, Kalchbrenner, Vinyals, Espeholt, Graves and
Kavukcuoglu, "Conditional Image Generation with PixelCNN Decoders", 2016).

Both model `p(x) = prod_{i,j} p(x_ij | pixels before (i, j) in raster order)`
with convolutions whose outputs at `(i, j)` never see `(i, j)` or later pixels.

**PixelCNN.** A masked convolution zeroes the kernel taps at and after the centre
in raster order (the mask is a constant multiplied into the kernel in `call`):

    type A (first layer)   taps in the rows above, and left of the centre in its row
    type B (later layers)  the same plus the centre: a feature at (i, j) may read the
                           features at (i, j), which already exclude pixel (i, j)

A 7x7 type-A convolution, residual blocks (ReLU, 1x1, ReLU, 3x3 type B, ReLU, 1x1,
plus the input), and two 1x1 convolutions give one logit per pixel (Bernoulli) or
`num_levels` (a softmax over grey levels). The stack has a **blind spot**: a tap
can only go up-left, up, up-right or left, so after n layers pixel (i, j) sees
(i - r, j + s) only if `s <= r`; the wedge up and to the right of that diagonal
is never seen, however deep the stack (`receptive_field_figure` draws it, and
`tests/generative/causality.py` fails on it).

**Gated PixelCNN.** Two stacks remove the blind spot:

    vertical stack     a (k//2 + 1) x k convolution over the rows above and the
                       current row (all columns within reach): no blind spot
    horizontal stack   a 1 x (k//2 + 1) convolution over the current row, left part
                       (first layer: strictly left of the centre)
    link               the vertical features shifted down by one row (so the
                       horizontal stack never sees the current row through them),
                       a 1x1 convolution, added to the horizontal pre-activations
    gate               y = tanh(W_f * x) . sigmoid(W_g * x)  in both stacks
    residual           the horizontal output is 1x1-convolved and added to its input
    conditioning       optional: a class label's embedding is added to both
                       stacks' pre-activations (`num_classes`)

The shift and the one-sided kernels are done with explicit zero padding and
"valid" convolutions, so no parameter is masked away.

Sampling is sequential: one network pass per pixel. Output row i needs only the
rows `i - receptive_rows .. i` (rows below are masked off or never padded in),
so `fast_sample` runs each pass on that band of rows instead of the whole image:
the same conditionals and, with the same seed's noise, the same images.

Course: ch5.3.2 PixelRNN, PixelCNN, Gated PixelCNN.
"""

import keras
import numpy as np
import tensorflow as tf

from mp.engine.task import float32
from mp.generative.autoregressive import (
    AutoregressiveMixin,
    check_num_levels,
    draw,
    pixel_log_probs,
    sampling_noise,
    sum_per_example,
)

MASK_TYPES = ("A", "B")


def causal_mask(kernel_size, mask_type):
    """The `[k, k]` 0/1 mask of a masked convolution (rows above; left of the centre; the
    centre itself for type B)."""
    if mask_type not in MASK_TYPES:
        raise ValueError(f"mask_type must be 'A' or 'B'. Received: mask_type={mask_type!r}")
    mask = np.zeros([kernel_size, kernel_size], np.float32)
    centre = kernel_size // 2
    mask[:centre] = 1.0
    mask[centre, :centre] = 1.0
    if mask_type == "B":
        mask[centre, centre] = 1.0
    return mask


@keras.saving.register_keras_serializable(package="mp")
class MaskedConv2D(keras.layers.Conv2D):
    """A `Conv2D` ("same" padding, odd square kernel) whose kernel is multiplied by the
    constant `causal_mask(kernel_size, mask_type)` in every call.

    Args:
      filters, kernel_size: as `keras.layers.Conv2D` (`kernel_size` an odd int).
      mask_type: "A" (excludes the centre: the first layer) or "B".
      **kwargs: `keras.layers.Conv2D`'s other arguments (not padding or strides).
    """

    def __init__(self, filters, kernel_size, mask_type="B", **kwargs):
        kernel_size = kernel_size[0] if isinstance(kernel_size, (list, tuple)) else kernel_size
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd. Received: kernel_size={kernel_size}")
        kwargs.pop("padding", None)
        super().__init__(filters, kernel_size, padding="same", **kwargs)
        self.mask_type = mask_type
        self.mask = causal_mask(kernel_size, mask_type)[:, :, None, None]

    def convolution_op(self, inputs, kernel):
        return super().convolution_op(inputs, kernel * tf.constant(self.mask, kernel.dtype))

    def get_config(self):
        config = super().get_config()
        config.pop("padding", None)
        return config | {"mask_type": self.mask_type}


def _relu(x):
    """`max(x, 0)` of a residual sum. As `tf.nn.relu` after an add, TensorFlow's graph
    optimiser (remapper) tried to fuse it into the convolution before and logged an error
    on every training graph; `tf.maximum` is left alone."""
    return tf.maximum(x, tf.zeros_like(x))


def _output_channels(num_levels):
    return 1 if num_levels == 2 else num_levels


class _PixelModel(AutoregressiveMixin, keras.Model):
    """What both PixelCNNs share: inputs, conditioning, the output head and the samplers."""

    num_classes = None

    def _split(self, inputs):
        if self.num_classes:
            if not isinstance(inputs, (tuple, list)):
                raise ValueError("a class-conditional model takes (images, labels)")
            return tf.cast(inputs[0], self.compute_dtype), inputs[1]
        return tf.cast(inputs, self.compute_dtype), None

    def log_prob(self, x, training=False, labels=None):
        """The exact `log p(x)` (given `labels` if class-conditional), `[B]`, nats."""
        inputs = (x, labels) if self.num_classes else x
        logits = self(inputs, training=training)
        return sum_per_example(pixel_log_probs(x, logits, self.num_levels))

    def _logits_function(self, labels=None):
        """One tf.function `images -> float32 logits` for any batch and height (traced once).

        Images come as float32 (float64 for a float64 model) and are cast to the compute
        dtype inside.
        """
        spec = tf.TensorSpec([None, None, self.image_shape[1], 1], _numpy_dtype(self))
        if self.num_classes:
            labels = tf.constant(labels, tf.int32)
            return tf.function(lambda x: float32(self((x, labels))), input_signature=[spec])
        return tf.function(lambda x: float32(self(x)), input_signature=[spec])

    def sample(self, num_samples, *, seed=0, labels=None, fast=True):
        """Samples, one pixel at a time in raster order (`fast_sample` or `naive_sample`)."""
        sampler = fast_sample if fast else naive_sample
        return sampler(self, num_samples, seed=seed, labels=labels)


def _numpy_dtype(model):
    """float64 for a float64 model, else float32 (NumPy has no bfloat16)."""
    return "float64" if model.compute_dtype == "float64" else "float32"


def naive_sample(model, num_samples, *, seed=0, labels=None):
    """Ancestral sampling with a pass of the network over the whole image per pixel."""
    return _sample(model, num_samples, seed, labels, band=None)


def fast_sample(model, num_samples, *, seed=0, labels=None):
    """The same draws, each pass over the rows `i - model.receptive_rows .. i` only."""
    return _sample(model, num_samples, seed, labels, band=model.receptive_rows)


def _sample(model, num_samples, seed, labels, band):
    height, width, _ = model.image_shape
    logits_of = model._logits_function(labels)
    noise = sampling_noise(num_samples, height * width, model.num_levels, seed=seed)
    noise = noise.reshape(num_samples, height, width, *noise.shape[2:])
    x = np.zeros([num_samples, height, width, 1], _numpy_dtype(model))
    for i in range(height):
        top = 0 if band is None else max(0, i - band)
        rows = x if band is None else x[:, top : i + 1]
        for j in range(width):
            logits = logits_of(tf.constant(rows)).numpy()[:, i - top, j]
            x[:, i, j, 0] = draw(logits, noise[:, i, j], model.num_levels)
            if band is not None:
                rows = x[:, top : i + 1]
    return x.astype(np.float32)


@keras.saving.register_keras_serializable(package="mp")
class PixelCNN(_PixelModel):
    """PixelCNN (van den Oord et al. 2016a) on `[H, W, 1]` images; see the module docstring.

    `call(x)` returns logits `[B, H, W, 1]` (Bernoulli) or `[B, H, W, num_levels]`.

    Args:
      image_shape: `(H, W, 1)`.
      filters: h; the residual blocks run at 2h channels with an h-channel bottleneck.
      num_blocks: residual blocks of 3x3 type-B convolutions.
      first_kernel: the type-A convolution's size (7 in the paper).
      kernel_size: the type-B convolutions' size (3).
      head_units: channels of the 1x1 layer before the logits.
      num_levels: 2 (Bernoulli) or the grey levels of a softmax (256).
    """

    def __init__(
        self,
        image_shape,
        filters=32,
        num_blocks=5,
        first_kernel=7,
        kernel_size=3,
        head_units=64,
        num_levels=2,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_num_levels(num_levels)
        self.image_shape, self.filters, self.num_blocks = tuple(image_shape), filters, num_blocks
        self.first_kernel, self.kernel_size = first_kernel, kernel_size
        self.head_units, self.num_levels = head_units, num_levels
        self.first = MaskedConv2D(2 * filters, first_kernel, "A", name="conv_a")
        # Attributes, not lists: TensorFlow checkpoints (the engine's) see only attributes.
        for b in range(num_blocks):
            for part, layer in (
                ("reduce", keras.layers.Conv2D(filters, 1, name=f"block{b}_reduce")),
                ("conv_b", MaskedConv2D(filters, kernel_size, "B", name=f"block{b}_conv_b")),
                ("expand", keras.layers.Conv2D(2 * filters, 1, name=f"block{b}_expand")),
            ):
                setattr(self, f"block{b}_{part}", layer)
        self.head = keras.layers.Conv2D(head_units, 1, name="head")
        self.logits_layer = keras.layers.Conv2D(_output_channels(num_levels), 1, name="logits")

    @property
    def blocks(self):
        """`(reduce, conv_b, expand)` of each residual block."""
        parts = ("reduce", "conv_b", "expand")
        return [[getattr(self, f"block{b}_{p}") for p in parts] for b in range(self.num_blocks)]

    @property
    def receptive_rows(self):
        """How many rows above its own an output pixel can see (`fast_sample`'s band)."""
        return self.first_kernel // 2 + self.num_blocks * (self.kernel_size // 2)

    def call(self, inputs, training=False):
        del training
        x, _ = self._split(inputs)
        h = self.first(x)
        for reduce, conv, expand in self.blocks:
            y = reduce(_relu(h))
            y = conv(tf.nn.relu(y))
            h = h + expand(tf.nn.relu(y))
        h = self.head(_relu(h))
        return float32(self.logits_layer(tf.nn.relu(h)))

    def get_config(self):
        return super().get_config() | {
            "image_shape": list(self.image_shape),
            "filters": self.filters,
            "num_blocks": self.num_blocks,
            "first_kernel": self.first_kernel,
            "kernel_size": self.kernel_size,
            "head_units": self.head_units,
            "num_levels": self.num_levels,
        }


# The shifts crop with `tf.slice`: the gradient of a strided slice (`x[:, :-1]`) cost ten
# times as much on a CPU, a third of a Gated PixelCNN's step (benchmarks/RESULTS.md).
def _shift_down(x):
    """Row i takes row i - 1's values (row 0 zeros)."""
    return tf.slice(tf.pad(x, [[0, 0], [1, 0], [0, 0], [0, 0]]), [0, 0, 0, 0], tf.shape(x))


def _shift_right(x):
    """Column j takes column j - 1's values (column 0 zeros)."""
    return tf.slice(tf.pad(x, [[0, 0], [0, 0], [1, 0], [0, 0]]), [0, 0, 0, 0], tf.shape(x))


def _gate(x):
    """`tanh(a) * sigmoid(b)` of the two halves `[a, b]` of the channels."""
    a, b = tf.split(x, 2, axis=-1)
    return tf.tanh(a) * tf.sigmoid(b)


@keras.saving.register_keras_serializable(package="mp")
class GatedBlock(keras.layers.Layer):
    """One layer of Gated PixelCNN: `(v, h[, labels]) -> (v', h')` (module docstring).

    Args:
      filters: p, the channels of both stacks' outputs (the gates use 2p).
      kernel_size: k (odd); the vertical kernel is (k//2 + 1) x k, the horizontal 1 x (k//2 + 1).
      first: the first layer (horizontal kernel strictly left of the centre; no residual).
      num_classes: add a learned per-class bias to both stacks' pre-activations.
    """

    def __init__(self, filters, kernel_size=3, first=False, num_classes=None, **kwargs):
        super().__init__(**kwargs)
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd. Received: kernel_size={kernel_size}")
        self.filters, self.kernel_size, self.first = filters, kernel_size, first
        self.num_classes = num_classes
        half = kernel_size // 2
        self.vertical = keras.layers.Conv2D(2 * filters, (half + 1, kernel_size), name="vertical")
        self.horizontal = keras.layers.Conv2D(2 * filters, (1, half + 1), name="horizontal")
        self.link = keras.layers.Conv2D(2 * filters, 1, name="link")
        self.residual = keras.layers.Conv2D(filters, 1, name="residual")
        self.condition = None
        if num_classes:
            self.condition = keras.layers.Embedding(num_classes, 4 * filters, name="condition")

    def build(self, input_shape):
        v_shape, h_shape = input_shape[0], input_shape[1]
        self.vertical.build((None, None, None, v_shape[-1]))
        self.horizontal.build((None, None, None, h_shape[-1]))
        self.link.build((None, None, None, 2 * self.filters))
        self.residual.build((None, None, None, self.filters))
        if self.condition is not None:
            self.condition.build((None,))
        self.built = True

    def call(self, inputs):
        v, h = inputs[0], inputs[1]
        half = self.kernel_size // 2
        # Vertical: rows i - half .. i, columns j - half .. j + half ("valid" after padding).
        v_features = self.vertical(tf.pad(v, [[0, 0], [half, 0], [half, half], [0, 0]]))
        # Horizontal: columns j - half .. j of row i; the first layer shifts right (j excluded).
        h_features = self.horizontal(tf.pad(h, [[0, 0], [0, 0], [half, 0], [0, 0]]))
        if self.first:
            h_features = _shift_right(h_features)
        # The link: vertical features of the rows above only (shifted down one row).
        h_features = h_features + self.link(_shift_down(v_features))
        if self.condition is not None:
            bias = self.condition(inputs[2])[:, None, None, :]
            v_bias, h_bias = tf.split(tf.cast(bias, v_features.dtype), 2, axis=-1)
            v_features, h_features = v_features + v_bias, h_features + h_bias
        h_out = self.residual(_gate(h_features))
        if not self.first:
            h_out = h_out + h
        return _gate(v_features), h_out

    def get_config(self):
        return super().get_config() | {
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "first": self.first,
            "num_classes": self.num_classes,
        }


@keras.saving.register_keras_serializable(package="mp")
class GatedPixelCNN(_PixelModel):
    """Gated PixelCNN (van den Oord et al. 2016b) on `[H, W, 1]` images.

    `call(x)` (or `call((x, labels))` with `num_classes`) returns logits `[B, H, W, 1]`
    (Bernoulli) or `[B, H, W, num_levels]`.

    Args:
      image_shape: `(H, W, 1)`.
      filters: p, channels of both stacks.
      num_layers: gated layers (the first included).
      first_kernel: k of the first layer (7 in the paper).
      kernel_size: k of the others (3).
      head_units: channels of the 1x1 layer before the logits.
      num_levels: 2 (Bernoulli) or the grey levels of a softmax.
      num_classes: condition on a class label (`None`: unconditional).
    """

    def __init__(
        self,
        image_shape,
        filters=32,
        num_layers=6,
        first_kernel=7,
        kernel_size=3,
        head_units=64,
        num_levels=2,
        num_classes=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_num_levels(num_levels)
        self.image_shape, self.filters, self.num_layers = tuple(image_shape), filters, num_layers
        self.first_kernel, self.kernel_size = first_kernel, kernel_size
        self.head_units, self.num_levels, self.num_classes = head_units, num_levels, num_classes
        for i in range(num_layers):  # attributes: TensorFlow checkpoints see only those
            block = GatedBlock(
                filters,
                first_kernel if i == 0 else kernel_size,
                first=i == 0,
                num_classes=num_classes,
                name=f"gated{i}",
            )
            setattr(self, f"gated{i}", block)
        self.head = keras.layers.Conv2D(head_units, 1, name="head")
        self.logits_layer = keras.layers.Conv2D(_output_channels(num_levels), 1, name="logits")

    @property
    def gated(self):
        """The `GatedBlock`s, in order."""
        return [getattr(self, f"gated{i}") for i in range(self.num_layers)]

    @property
    def receptive_rows(self):
        """Rows above its own an output pixel can see: the link's shift plus the vertical
        kernels' reach (`fast_sample`'s band)."""
        return 1 + self.first_kernel // 2 + (self.num_layers - 1) * (self.kernel_size // 2)

    def call(self, inputs, training=False):
        del training
        x, labels = self._split(inputs)
        v = h = x
        for layer in self.gated:
            v, h = layer((v, h, labels) if self.num_classes else (v, h))
        h = self.head(tf.nn.relu(h))
        return float32(self.logits_layer(tf.nn.relu(h)))

    def get_config(self):
        return super().get_config() | {
            "image_shape": list(self.image_shape),
            "filters": self.filters,
            "num_layers": self.num_layers,
            "first_kernel": self.first_kernel,
            "kernel_size": self.kernel_size,
            "head_units": self.head_units,
            "num_levels": self.num_levels,
            "num_classes": self.num_classes,
        }


def _built(model):
    height, width, channels = model.image_shape
    x = tf.zeros([1, height, width, channels], model.compute_dtype)
    model((x, tf.zeros([1], tf.int32)) if model.num_classes else x)
    return model


def make_pixelcnn(image_shape, **kwargs):
    """A built `PixelCNN`."""
    return _built(PixelCNN(image_shape, **kwargs))


def make_gated_pixelcnn(image_shape, **kwargs):
    """A built `GatedPixelCNN`."""
    return _built(GatedPixelCNN(image_shape, **kwargs))


# --- receptive fields -------------------------------------------------------------


def receptive_field(model, pixel, *, seed=0, num_inputs=4):
    """Which input pixels output `pixel = (i, j)`'s logits depend on: `[H, W]` of
    `sum |d logits(i, j) / dx|` over `num_inputs` random images.

    In the model's own weights: a zero means no path (or, rarely, paths whose
    contributions vanish at every one of the images, e.g. through dead ReLUs).
    """
    height, width, _ = model.image_shape
    x = tf.constant(
        np.random.default_rng(seed).uniform(size=(num_inputs, height, width, 1)),
        model.compute_dtype,
    )
    with tf.GradientTape() as tape:
        tape.watch(x)
        inputs = (x, tf.zeros([num_inputs], tf.int32)) if model.num_classes else x
        logits = model(inputs)
        target = tf.reduce_sum(tf.abs(logits[:, pixel[0], pixel[1]]))
    gradient = tape.gradient(target, x)  # per image: the gradient of its own logits only
    return np.abs(tf.cast(gradient, tf.float64).numpy()[..., 0]).sum(axis=0)


def receptive_field_figure(models, pixel=None, titles=None):
    """One panel per model: which earlier pixels output `pixel`'s logits depend on.

    White: seen. Red: earlier pixels inside the bounding box of the seen ones that it
    does not see (the blind spot). Grey: earlier pixels outside that box, beyond its
    reach (a finite receptive field, not a blind spot). Blue: the pixel itself.

    Args:
      models: PixelCNN-like models of one image shape.
      pixel: `(i, j)`; default `(H - 2, W // 4)`, left of centre so the blind spot, up
        and to the right, fits in the image.
      titles: one per model (default the model's name).
    """
    from mp.plotting import pyplot

    plt = pyplot()
    height, width, _ = models[0].image_shape
    pixel = pixel or (height - 2, width // 4)
    figure, axes = plt.subplots(1, len(models), figsize=(3.6 * len(models), 4), squeeze=False)
    for axis, model, title in zip(axes[0], models, titles or [m.name for m in models]):
        seen = receptive_field(model, pixel) > 0
        before = np.zeros([height, width], bool)
        before.flat[: pixel[0] * width + pixel[1]] = True
        reached = np.zeros([height, width], bool)  # the bounding box of what it sees
        if seen.any():
            rows, cols = np.flatnonzero(seen.any(axis=1)), np.flatnonzero(seen.any(axis=0))
            reached[rows.min() :, cols.min() : cols.max() + 1] = True
        blind = before & ~seen & reached
        picture = np.zeros([height, width, 3])
        picture[seen] = 1.0
        picture[before & ~seen & ~reached] = 0.45
        picture[blind] = (0.85, 0.1, 0.1)
        picture[pixel] = (0.2, 0.4, 1.0)
        axis.imshow(picture, interpolation="nearest")
        axis.set_xticks([])
        axis.set_yticks([])
        axis.set_title(
            f"{title}\nsees {int(seen.sum())} of {int(before.sum())} earlier pixels, "
            f"blind to {int(blind.sum())}",
            fontsize=8,
        )
    figure.tight_layout()
    plt.close(figure)
    return figure


def comparison_figure(model, pixel=None):
    """`receptive_field.png` of a run: the trained `model`'s receptive field next to a
    plain and a gated PixelCNN of the same depth and kernels with positive weights
    (`mp.generative.autoregressive.positive_weights`: no dependency hidden by dead
    units), where the plain one's blind spot and the gated one's full field show.
    """
    from mp.generative.autoregressive import positive_weights

    depth = model.num_blocks if isinstance(model, PixelCNN) else model.num_layers
    options = dict(
        filters=4, first_kernel=model.first_kernel, kernel_size=model.kernel_size, head_units=8
    )
    plain = positive_weights(make_pixelcnn(model.image_shape, num_blocks=depth, **options))
    gated = positive_weights(make_gated_pixelcnn(model.image_shape, num_layers=depth, **options))
    titles = [
        f"{model.name} (trained weights)",
        f"PixelCNN, {depth} blocks (positive weights)",
        f"Gated PixelCNN, {depth} layers (positive weights)",
    ]
    return receptive_field_figure([model, plain, gated], pixel, titles)
