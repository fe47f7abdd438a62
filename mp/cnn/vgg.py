"""VGG: deep stacks of 3x3 convolutions (Simonyan & Zisserman, 2014).

"Very Deep Convolutional Networks for Large-Scale Image Recognition",
https://arxiv.org/abs/1409.1556.

    image -> [conv 3x3 -> ReLU] x n_1 -> max-pool 2x2   (block1)
          -> [conv 3x3 -> ReLU] x n_2 -> max-pool 2x2   (block2)
          ...                                            (block5)
          -> flatten -> fc1 4096 -> dropout -> fc2 4096 -> dropout -> logits

Why small kernels: two stacked 3x3 convolutions see a 5x5 region of their
input, three see 7x7, yet with C channels in and out they cost
2 * 9 * C^2 = 18 C^2 and 3 * 9 * C^2 = 27 C^2 weights against 25 C^2 and
49 C^2 for one 5x5 or 7x7 convolution, and put a ReLU between each pair.
A stack of n 3x3 convolutions has a receptive field of 2n + 1 pixels; every
2x2 pool doubles the step between the next layer's pixels, so the receptive
field grows fast with depth while the parameter count stays moderate.

The paper's configurations are data (`CONFIGS`): each block is the list of its
convolutions' filters. "A" is VGG-11 (8 convolutions + 3 dense layers), "D" is
VGG-16 (13 + 3). Layer names follow Keras' applications (`block1_conv1`, ...,
`block5_pool`, `fc1`, `fc2`), so end points can be read with
`model.get_layer("block4_pool").output`.

Small inputs: every pool halves the size (floor(n / 2)), so five pools need at
least 32 pixels. The rule here: a block's pool is applied only when both
spatial sizes are at least 2 (the result would otherwise be 0 pixels); a
skipped pool is an identity layer that keeps the name `blockN_pool`, so end
points exist for any input. 28x28 Fashion-MNIST: 28 -> 14 -> 7 -> 3 -> 1 -> 1;
8x8 digits: 8 -> 4 -> 2 -> 1 -> 1 -> 1. With unknown sizes (`None`, a fully
convolutional features model) every pool is applied.

`num_classes=None` returns the convolutional features (the output of
`block5_pool`, like Keras' `include_top=False`): a model that accepts any
image size when built with `input_shape=(None, None, channels)`.

Course: ch3.1 Layers and Architectures (VGG: more depth, large receptive
fields, fewer parameters); ch7.1 TensorFlow tips (Keras' ImageNet weights).
"""

import keras

from mp.cnn.registry import register

# Filters of each convolution, block by block (Table 1 of the paper).
CONFIGS = {
    "A": ((64,), (128,), (256, 256), (512, 512), (512, 512)),  # VGG-11
    "D": ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512)),  # VGG-16
    "small": ((64, 64), (128, 128), (256, 256)),  # three blocks, for 8x8 and 28x28 images
}


def vgg(
    input_shape,
    num_classes=None,
    *,
    config="D",
    width=1.0,
    batch_norm=False,
    dropout=0.5,
    dense_units=4096,
    classifier="dense",
    name="vgg",
):
    """Builds a VGG network from a configuration of `CONFIGS`.

    Args:
      input_shape: `(height, width, channels)`; height and width may be `None`
        for a features model (`num_classes=None`) or `classifier="gap"`.
      num_classes: size of the logits; `None` returns the features of the last
        block (a 4-D tensor).
      config: a key of `CONFIGS`, or a tuple of blocks of filters.
      width: multiplies every filter count (rounded, at least 1); 1.0 is the paper.
      batch_norm: insert batch normalization between each convolution and its
        ReLU (a later addition, not in the paper; the convolution then has no bias).
      dropout: drop rate after each hidden dense layer (0.5 in the paper), in [0, 1).
      dense_units: width of the two hidden dense layers `fc1` and `fc2`.
      classifier: `"dense"` (flatten -> fc1 -> fc2 -> logits, the paper) or
        `"gap"` (global average pooling -> logits; `dense_units` is unused).
      name: the model's name.

    Returns:
      A functional `keras.Model` mapping images to logits (or features).

    Raises:
      ValueError: for arguments out of range.
    """
    blocks = CONFIGS[config] if isinstance(config, str) and config in CONFIGS else config
    if isinstance(blocks, str) or not blocks or not all(blocks):
        raise ValueError(
            f"config must be one of {', '.join(CONFIGS)} or a tuple of blocks of filters. "
            f"Received: config={config!r}"
        )
    if not width > 0:
        raise ValueError(f"width must be positive. Received: width={width}")
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1). Received: dropout={dropout}")
    if classifier not in ("dense", "gap"):
        raise ValueError(
            f"classifier must be 'dense' or 'gap'. Received: classifier={classifier!r}"
        )
    if classifier == "dense" and num_classes is not None and dense_units <= 0:
        raise ValueError(f"dense_units must be positive. Received: dense_units={dense_units}")
    if len(input_shape) != 3:
        raise ValueError(f"input_shape must be (height, width, channels). Received: {input_shape}")

    images = keras.Input(shape=tuple(input_shape), name="images")
    x = images
    height, width_px = input_shape[0], input_shape[1]
    for b, filters in enumerate(blocks, start=1):
        for c, f in enumerate(filters, start=1):
            conv_name = f"block{b}_conv{c}"
            f = max(1, round(f * width))
            if batch_norm:
                x = keras.layers.Conv2D(f, 3, padding="same", use_bias=False, name=conv_name)(x)
                x = keras.layers.BatchNormalization(name=f"{conv_name}_bn")(x)
                x = keras.layers.ReLU(name=f"{conv_name}_relu")(x)
            else:
                x = keras.layers.Conv2D(f, 3, padding="same", activation="relu", name=conv_name)(x)
        # Pool unless a known size is already 1 (floor(1 / 2) = 0 pixels).
        if (height is None or height >= 2) and (width_px is None or width_px >= 2):
            x = keras.layers.MaxPooling2D(2, strides=2, name=f"block{b}_pool")(x)
            height = None if height is None else height // 2
            width_px = None if width_px is None else width_px // 2
        else:
            x = keras.layers.Identity(name=f"block{b}_pool")(x)
    if num_classes is None:
        return keras.Model(images, x, name=name)

    if classifier == "gap":
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name="dropout")(x)
    else:
        x = keras.layers.Flatten(name="flatten")(x)
        for i in (1, 2):
            x = keras.layers.Dense(dense_units, activation="relu", name=f"fc{i}")(x)
            if dropout:
                x = keras.layers.Dropout(dropout, name=f"fc{i}_dropout")(x)
    logits = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(images, logits, name=name)


@register("vgg11")
def vgg11(input_shape=(224, 224, 3), num_classes=1000, *, name="vgg11", **kwargs):
    """VGG-11, configuration "A" of the paper; `kwargs` as in `vgg`."""
    return vgg(input_shape, num_classes, config="A", name=name, **kwargs)


@register("vgg16")
def vgg16(input_shape=(224, 224, 3), num_classes=1000, *, name="vgg16", **kwargs):
    """VGG-16, configuration "D" of the paper; `kwargs` as in `vgg`."""
    return vgg(input_shape, num_classes, config="D", name=name, **kwargs)


@register("vgg_small")
def vgg_small(
    input_shape=(28, 28, 1),
    num_classes=10,
    *,
    width=0.5,
    dense_units=256,
    name="vgg_small",
    **kwargs,
):
    """A three-block VGG for 8x8 digits and 28x28 Fashion-MNIST.

    Blocks of two 3x3 convolutions with 32, 64 and 128 filters (configuration
    "small" at `width=0.5`), then two dense layers of 256 units. At 28x28 the
    pools give 28 -> 14 -> 7 -> 3, at 8x8 they give 8 -> 4 -> 2 -> 1.
    `kwargs` as in `vgg`.
    """
    return vgg(
        input_shape,
        num_classes,
        config="small",
        width=width,
        dense_units=dense_units,
        name=name,
        **kwargs,
    )
