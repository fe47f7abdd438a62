"""Densely connected networks (DenseNet): every layer sees every earlier feature map.

Huang, Liu, van der Maaten, Weinberger, "Densely connected convolutional
networks", CVPR 2017 (arXiv:1608.06993, 2016).

Inside a dense block, layer `l` receives the concatenation of the block's
input and of the outputs of all layers before it, and adds `k` new channels
(the growth rate):

    x_l = H_l([x_0, x_1, ..., x_{l-1}]),     channels after L layers: c_0 + L * k

ResNet adds a layer's input to its output; DenseNet concatenates, so no
feature is overwritten and each layer can reuse all earlier ones. The layers
can then be thin (k = 12 or 32 channels), and the network needs far fewer
parameters than a ResNet of the same accuracy; every layer also gets a short
path to the loss.

- `dense_layer` `H_l`: BN - ReLU - conv 3x3 with `k` filters; with the
  bottleneck of DenseNet-B, BN - ReLU - conv 1x1 to `4k` - BN - ReLU - conv 3x3.
- `transition_block` between two dense blocks: BN - ReLU - conv 1x1 to
  `floor(theta * c)` channels (compression `theta`, 0.5 in DenseNet-C) - avg-pool
  2x2, which halves the image (concatenation needs equal sizes, so the
  down-sampling happens only here).
- DenseNet-BC uses both. After the last block: BN - ReLU - global average
  pooling - dense logits.

Architectures:

- `densenet121`: the ImageNet DenseNet-BC, k = 32: conv 7x7/2 with 64 filters,
  BN, ReLU, max-pool 3x3/2 (224 -> 56), dense blocks of [6, 12, 24, 16]
  layers with transitions (56 -> 28 -> 14 -> 7). Layers, names and
  8,062,504 parameters (1000 classes) as `keras.applications.DenseNet121`:
  convolutions without bias, since a batch norm follows or precedes each.
- `densenet_small`: the paper's CIFAR layout for small images: a 3x3 conv to
  `2k` channels, three dense blocks with two transitions (28 -> 28 -> 14 -> 7),
  `(depth - 4) / 6` bottleneck layers per block (DenseNet-BC-100 for
  `depth=100`; the default `depth=40`, k = 12, has 6 layers per block).

End points: block `b`'s output is `conv{b}_block{L}_concat`, transitions are
`pool{b}_*`, as in Keras.

Course: ch3.1 Layers and Architectures (DenseNet).
"""

import keras

from mp.cnn.batch_norm import FusedBatchNormalization
from mp.cnn.registry import register

BN_EPSILON = 1.001e-5  # as keras.applications
POOLINGS = ("avg", "max", None)


def _bn_relu(x, name):
    x = FusedBatchNormalization(epsilon=BN_EPSILON, name=f"{name}_bn")(x)
    return keras.layers.Activation("relu", name=f"{name}_relu")(x)


def _conv(x, filters, kernel_size, name):
    return keras.layers.Conv2D(
        filters,
        kernel_size,
        padding="same",
        use_bias=False,
        kernel_initializer="he_normal",
        name=name,
    )(x)


def dense_layer(x, growth_rate, *, bottleneck=True, name="layer"):
    """One layer of a dense block: `[x, H(x)]`, `growth_rate` channels more than `x`.

    Args:
      x: a Keras tensor `[batch, height, width, c]`.
      growth_rate: `k`, the channels `H` adds.
      bottleneck: put BN - ReLU - conv 1x1 to `4k` channels before the 3x3
        convolution (DenseNet-B).
      name: prefix of the layer names (`{name}_0_bn`, ..., `{name}_concat`).

    Returns:
      `[batch, height, width, c + growth_rate]`.
    """
    h = _bn_relu(x, f"{name}_0")
    if bottleneck:
        h = _conv(h, 4 * growth_rate, 1, f"{name}_1_conv")
        h = _bn_relu(h, f"{name}_1")
    h = _conv(h, growth_rate, 3, f"{name}_2_conv")
    return keras.layers.Concatenate(name=f"{name}_concat")([x, h])  # [x_0, ..., x_{l-1}, x_l]


def dense_block(x, num_layers, growth_rate, *, bottleneck=True, name="block"):
    """`num_layers` dense layers: `c_0` channels in, `c_0 + num_layers * growth_rate` out.

    Layer `i` is named `{name}_block{i}` (1-based).
    """
    for i in range(1, num_layers + 1):
        x = dense_layer(x, growth_rate, bottleneck=bottleneck, name=f"{name}_block{i}")
    return x


def transition_block(x, compression=0.5, *, name="pool"):
    """BN - ReLU - conv 1x1 to `floor(compression * c)` channels - average pool 2x2/2.

    Args:
      x: a Keras tensor `[batch, height, width, c]`.
      compression: `theta` in (0, 1].
      name: prefix of the layer names.

    Returns:
      `[batch, height / 2, width / 2, floor(theta * c)]`.
    """
    x = _bn_relu(x, name)
    x = _conv(x, int(x.shape[-1] * compression), 1, f"{name}_conv")
    return keras.layers.AveragePooling2D(2, strides=2, name=f"{name}_pool")(x)


def densenet(
    input_shape,
    num_classes=None,
    *,
    blocks,
    growth_rate=32,
    bottleneck=True,
    compression=0.5,
    stem="imagenet",
    stem_filters=None,
    pooling="avg",
    name="densenet",
):
    """Builds a DenseNet from its block sizes; the registered builders call this.

    Args:
      input_shape: `(height, width, channels)`; height and width may be `None`.
      num_classes: size of the logits; `None` returns features (see `pooling`).
      blocks: number of layers of each dense block, e.g. `(6, 12, 24, 16)`.
      growth_rate: `k`.
      bottleneck: 1x1 bottleneck in each layer (the B of BC).
      compression: `theta` of the transitions, in (0, 1] (0.5: the C of BC).
      stem: `"imagenet"` (conv 7x7/2, BN, ReLU, max-pool 3x3/2) or `"small"`
        (one conv 3x3/1).
      stem_filters: filters of the stem's convolution; default `2k`.
      pooling: `"avg"`, `"max"` or `None`. With `num_classes=None` and
        `pooling=None` the model returns the last feature map (after the final
        BN - ReLU).
      name: the model's name.

    Returns:
      A functional `keras.Model` from images to logits (no softmax) or features.

    Raises:
      ValueError: for arguments out of range.
    """
    input_shape = tuple(input_shape)
    if len(input_shape) != 3 or input_shape[-1] is None:
        raise ValueError(
            "input_shape must be (height, width, channels) with known channels. "
            f"Received: input_shape={input_shape}"
        )
    if stem not in ("imagenet", "small"):
        raise ValueError(f"stem must be 'imagenet' or 'small'. Received: stem={stem!r}")
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}. Received: pooling={pooling!r}")
    if num_classes is not None and (pooling is None or num_classes < 1):
        raise ValueError(
            "A classifier needs pooling 'avg' or 'max' and num_classes >= 1. "
            f"Received: num_classes={num_classes}, pooling={pooling!r}"
        )
    if not 0 < compression <= 1:
        raise ValueError(f"compression must be in (0, 1]. Received: compression={compression}")
    if growth_rate < 1 or not blocks or min(blocks) < 1:
        raise ValueError(
            "growth_rate and every block size must be >= 1. "
            f"Received: growth_rate={growth_rate}, blocks={tuple(blocks)}"
        )
    stem_filters = stem_filters or 2 * growth_rate
    images = keras.Input(shape=input_shape, name="images")
    if stem == "imagenet":
        x = keras.layers.ZeroPadding2D(3, name="conv1_pad")(images)
        x = keras.layers.Conv2D(
            stem_filters,
            7,
            strides=2,
            use_bias=False,
            kernel_initializer="he_normal",
            name="conv1_conv",
        )(x)
        x = _bn_relu(x, "conv1")
        x = keras.layers.ZeroPadding2D(1, name="pool1_pad")(x)
        x = keras.layers.MaxPooling2D(3, strides=2, name="pool1")(x)
    else:
        x = _conv(images, stem_filters, 3, "conv1_conv")
    for i, num_layers in enumerate(blocks):
        x = dense_block(x, num_layers, growth_rate, bottleneck=bottleneck, name=f"conv{i + 2}")
        if i < len(blocks) - 1:
            x = transition_block(x, compression, name=f"pool{i + 2}")
    x = FusedBatchNormalization(epsilon=BN_EPSILON, name="bn")(x)
    x = keras.layers.Activation("relu", name="relu")(x)
    if pooling == "avg":
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif pooling == "max":
        x = keras.layers.GlobalMaxPooling2D(name="max_pool")(x)
    if num_classes is not None:
        x = keras.layers.Dense(num_classes, name="predictions")(x)  # logits
    return keras.Model(images, x, name=name)


@register("densenet121")
def densenet121(input_shape=(224, 224, 3), num_classes=None, *, growth_rate=32, **kwargs):
    """DenseNet-121 (BC, k = 32, blocks [6, 12, 24, 16]), as `keras.applications.DenseNet121`.

    121 = 1 (stem) + 2 * (6 + 12 + 24 + 16) (two convs per layer) + 3 (transitions)
    + 1 (classifier). Channels: 64 -> 256 -> 128 -> 512 -> 256 -> 1024 -> 512 -> 1024.

    Args: see `densenet` (`pooling`, `name`, ... as keywords).
    """
    kwargs.setdefault("name", "densenet121")
    kwargs.setdefault("stem_filters", 64)
    return densenet(
        input_shape, num_classes, blocks=(6, 12, 24, 16), growth_rate=growth_rate, **kwargs
    )


@register("densenet_small")
def densenet_small(
    input_shape=(28, 28, 1), num_classes=None, *, depth=40, growth_rate=12, **kwargs
):
    """DenseNet-BC for small images: 3x3 stem, three dense blocks of `(depth - 4) / 6` layers.

    Depth counts the layers with weights: the stem, two convolutions per
    dense layer, the two transitions and the classifier: `depth = 6L + 4`.
    `depth=100, growth_rate=12` is the paper's DenseNet-BC-100 (k = 12).

    Args:
      depth: `6L + 4` with `L >= 1` layers per block (10, 16, 22, 40, 100, ...).
      growth_rate: `k`.
      **kwargs: see `densenet` (`compression`, `pooling`, `name`, ...).

    Raises:
      ValueError: if `depth` is not `6L + 4`.
    """
    if depth < 10 or (depth - 4) % 6:
        raise ValueError(f"depth must be 6L + 4 with L >= 1. Received: depth={depth}")
    num_layers = (depth - 4) // 6
    kwargs.setdefault("name", f"densenet_bc{depth}_small")
    kwargs.setdefault("stem", "small")
    return densenet(
        input_shape, num_classes, blocks=(num_layers,) * 3, growth_rate=growth_rate, **kwargs
    )
