"""Residual networks (ResNet): very deep CNNs made trainable by identity shortcuts.

He, Zhang, Ren, Sun, "Deep residual learning for image recognition", CVPR 2016
(arXiv:1512.03385, 2015).

A plain stack of layers gets *harder* to optimise as it gets deeper: past
some depth the training error itself goes up. A residual block therefore
learns only a correction `F(x)` to its input and adds the input back:

    y = relu(F(x) + x)                 (identity shortcut: shapes match)
    y = relu(F(x) + BN(W_s * x))       (projection: a strided 1x1 conv when they do not)

If the best a block can do is nothing, it only has to push `F` to zero,
which is easy, instead of learning an identity through several nonlinear
layers. The gradient flows back through the `+ x` unchanged, so even the
first layers of a 50- or 152-layer network receive a useful signal.
Residual branches `F`:

- `basic_block` (ResNet-18/34): conv 3x3 - BN - ReLU - conv 3x3 - BN.
- `bottleneck_block` (ResNet-50 and deeper): conv 1x1 reduces to `filters`
  channels, conv 3x3 works on the thin tensor, conv 1x1 expands to
  `4 * filters`; three layers for about the cost of two 3x3 ones.

Architectures (every stage after the first halves the image and doubles the
filters; the classifier is global average pooling and one dense layer, so
ResNets have far fewer parameters than VGG and run faster despite being
much deeper):

- `resnet18`, `resnet34`, `resnet50`: the ImageNet layout: a 7x7/2 conv and
  a 3x3/2 max-pool (224 -> 56), then four stages of 64, 128, 256, 512 filters
  with [2, 2, 2, 2] basic, [3, 4, 6, 3] basic or [3, 4, 6, 3] bottleneck
  blocks (224 -> 56 -> 28 -> 14 -> 7).
- `resnet18_small`: ResNet-18 with a 3x3/1 stem and no max-pool, for small
  images (28x28 -> 28 -> 14 -> 7 -> 4).
- `resnet_cifar`: the paper's CIFAR network: a 3x3 conv of 16 filters, then
  three stages of `n` basic blocks with 16, 32, 64 filters (depth `6n + 2`,
  ResNet-20 for `n = 3`; 32x32 -> 32 -> 16 -> 8).

Conventions. Layer names follow `keras.applications.ResNet50` (`conv1_conv`,
`conv1_bn`, `conv1_relu`, `pool1_pool`, `conv2_block1_1_conv`, ...,
`conv2_block1_out`, `avg_pool`, `predictions`): the output of stage `s`
is `conv{s}_block{last}_out` (see `stage_outputs`). `resnet50` also follows
that model's other choices, so its weights can be copied one to one: every
convolution has a bias (`use_bias=True`) although the batch norm after it
subtracts the mean and makes that bias useless, and the bottleneck's stride
sits on its first 1x1 conv (the original layout; "ResNet v1.5" moves it to
the 3x3). The other builders have no convolution biases (`use_bias=False`),
as in the paper. A projection shortcut is used exactly when the block changes
the shape (the paper's option B, also on CIFAR where the paper pads with
zeros instead).

Course: ch3.1 Layers and Architectures (ResNet).
"""

import keras

from mp.cnn.batch_norm import FusedBatchNormalization
from mp.cnn.registry import register

BN_EPSILON = 1.001e-5  # as keras.applications, so their weights give the same outputs
POOLINGS = ("avg", "max", None)


def _conv(x, filters, kernel_size, stride, use_bias, name, padding="same"):
    return keras.layers.Conv2D(
        filters,
        kernel_size,
        strides=stride,
        padding=padding,
        use_bias=use_bias,
        kernel_initializer="he_normal",  # Var[w] = 2 / fan_in: keeps ReLU activations' scale
        name=name,
    )(x)


def _bn(x, name, zero_gamma=False):
    # Keras' BatchNormalization computed by TensorFlow's fused kernel (mp.cnn.batch_norm).
    return FusedBatchNormalization(
        epsilon=BN_EPSILON, gamma_initializer="zeros" if zero_gamma else "ones", name=name
    )(x)


def _shortcut(x, out_channels, stride, use_bias, name):
    """The identity if the block keeps the shape, else a projection `BN(W_s * x)`."""
    if stride == 1 and x.shape[-1] == out_channels:
        return x
    x = _conv(x, out_channels, 1, stride, use_bias, f"{name}_0_conv")
    return _bn(x, f"{name}_0_bn")


def basic_block(x, filters, stride=1, *, use_bias=False, zero_init_residual=False, name="block"):
    """The residual block of ResNet-18/34: `y = relu(F(x) + shortcut(x))`.

    `F(x) = BN(conv3x3(relu(BN(conv3x3_stride(x)))))`, `filters` channels out.

    Args:
      x: a Keras tensor `[batch, height, width, channels]`.
      filters: output channels of both convolutions (and of the block).
      stride: stride of the first convolution (and of the projection); 2
        halves the image.
      use_bias: give the convolutions a bias.
      zero_init_residual: initialise the last batch norm's `gamma` to 0, so
        that the block starts as `relu(shortcut(x))` (Goyal et al. 2017).
      name: prefix of the layer names (`{name}_1_conv`, ..., `{name}_out`).

    Returns:
      The block's output, `[batch, height / stride, width / stride, filters]`.
    """
    shortcut = _shortcut(x, filters, stride, use_bias, name)
    x = _conv(x, filters, 3, stride, use_bias, f"{name}_1_conv")
    x = _bn(x, f"{name}_1_bn")
    x = keras.layers.Activation("relu", name=f"{name}_1_relu")(x)
    x = _conv(x, filters, 3, 1, use_bias, f"{name}_2_conv")
    x = _bn(x, f"{name}_2_bn", zero_gamma=zero_init_residual)
    x = keras.layers.Add(name=f"{name}_add")([shortcut, x])  # y = F(x) + x
    return keras.layers.Activation("relu", name=f"{name}_out")(x)


def bottleneck_block(
    x, filters, stride=1, *, use_bias=True, zero_init_residual=False, name="block"
):
    """The residual block of ResNet-50 and deeper: `y = relu(F(x) + shortcut(x))`.

    `F(x)`: conv 1x1 (stride) to `filters` - BN - ReLU - conv 3x3 - BN - ReLU -
    conv 1x1 to `4 * filters` - BN.

    Args:
      x: a Keras tensor `[batch, height, width, channels]`.
      filters: channels of the thin 1x1 and 3x3 convolutions; the block
        outputs `4 * filters`.
      stride: stride of the first 1x1 convolution (and of the projection).
      use_bias: give the convolutions a bias (True in Keras' ResNet50).
      zero_init_residual: initialise the last batch norm's `gamma` to 0.
      name: prefix of the layer names.

    Returns:
      The block's output, `[batch, height / stride, width / stride, 4 * filters]`.
    """
    shortcut = _shortcut(x, 4 * filters, stride, use_bias, name)
    x = _conv(x, filters, 1, stride, use_bias, f"{name}_1_conv")
    x = _bn(x, f"{name}_1_bn")
    x = keras.layers.Activation("relu", name=f"{name}_1_relu")(x)
    x = _conv(x, filters, 3, 1, use_bias, f"{name}_2_conv")
    x = _bn(x, f"{name}_2_bn")
    x = keras.layers.Activation("relu", name=f"{name}_2_relu")(x)
    x = _conv(x, 4 * filters, 1, 1, use_bias, f"{name}_3_conv")
    x = _bn(x, f"{name}_3_bn", zero_gamma=zero_init_residual)
    x = keras.layers.Add(name=f"{name}_add")([shortcut, x])  # y = F(x) + x
    return keras.layers.Activation("relu", name=f"{name}_out")(x)


BLOCKS = {"basic": basic_block, "bottleneck": bottleneck_block}


def resnet(
    input_shape,
    num_classes=None,
    *,
    stages,
    block="basic",
    width=64,
    stem="imagenet",
    use_bias=False,
    zero_init_residual=False,
    pooling="avg",
    name="resnet",
):
    """Builds a ResNet from its stage depths; the registered builders call this.

    Args:
      input_shape: `(height, width, channels)`; height and width may be `None`
        (the network is fully convolutional up to the pooling).
      num_classes: size of the logits; `None` returns features (see `pooling`).
      stages: number of blocks in each stage, e.g. `(2, 2, 2, 2)`. Stage `i`
        (named `conv{i + 2}`) has `width * 2**i` filters and, except the first,
        stride 2.
      block: `"basic"` or `"bottleneck"` (outputs `4 * filters` channels).
      width: filters of the stem and of the first stage.
      stem: `"imagenet"` (conv 7x7/2 and max-pool 3x3/2: the image shrinks by 4)
        or `"small"` (conv 3x3/1, no pooling).
      use_bias: give every convolution a bias.
      zero_init_residual: start each residual branch's last `gamma` at 0.
      pooling: `"avg"` (global average pooling), `"max"` or `None`. With
        `num_classes=None` and `pooling=None` the model returns the last
        feature map `[batch, h, w, channels]`, for FCN and transfer heads.
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
    if block not in BLOCKS:
        raise ValueError(f"block must be one of {tuple(BLOCKS)}. Received: block={block!r}")
    if stem not in ("imagenet", "small"):
        raise ValueError(f"stem must be 'imagenet' or 'small'. Received: stem={stem!r}")
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}. Received: pooling={pooling!r}")
    if num_classes is not None and (pooling is None or num_classes < 1):
        raise ValueError(
            "A classifier needs pooling 'avg' or 'max' and num_classes >= 1. "
            f"Received: num_classes={num_classes}, pooling={pooling!r}"
        )
    if width < 1 or not stages or min(stages) < 1:
        raise ValueError(
            "width and every stage depth must be >= 1. "
            f"Received: width={width}, stages={tuple(stages)}"
        )
    images = keras.Input(shape=input_shape, name="images")
    if stem == "imagenet":
        # Explicit padding then "valid", as Keras' ResNet50: 224 -> 112 (conv) -> 56 (pool).
        x = keras.layers.ZeroPadding2D(3, name="conv1_pad")(images)
        x = _conv(x, width, 7, 2, use_bias, "conv1_conv", padding="valid")
    else:
        x = _conv(images, width, 3, 1, use_bias, "conv1_conv")
    x = _bn(x, "conv1_bn")
    x = keras.layers.Activation("relu", name="conv1_relu")(x)
    if stem == "imagenet":
        x = keras.layers.ZeroPadding2D(1, name="pool1_pad")(x)
        x = keras.layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)
    block_fn = BLOCKS[block]
    for i, depth in enumerate(stages):
        for j in range(depth):
            x = block_fn(
                x,
                width * 2**i,
                stride=2 if (i > 0 and j == 0) else 1,
                use_bias=use_bias,
                zero_init_residual=zero_init_residual,
                name=f"conv{i + 2}_block{j + 1}",
            )
    if pooling == "avg":
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif pooling == "max":
        x = keras.layers.GlobalMaxPooling2D(name="max_pool")(x)
    if num_classes is not None:
        x = keras.layers.Dense(num_classes, name="predictions")(x)  # logits
    return keras.Model(images, x, name=name)


def stage_outputs(model):
    """The end points of a ResNet built here: `{"conv1": ..., "conv2": ..., ...}`.

    `conv1` is the stem's activation; `conv{s}` the output of stage `s`'s last
    block. Use them for multi-scale features:
    `keras.Model(model.input, list(stage_outputs(model).values()))`.
    """
    points = {"conv1": model.get_layer("conv1_relu").output}
    for layer in model.layers:
        if layer.name.startswith("conv") and layer.name.endswith("_out"):
            points[layer.name.split("_")[0]] = layer.output  # the last block of a stage wins
    return points


@register("resnet18")
def resnet18(input_shape=(224, 224, 3), num_classes=None, *, width=64, use_bias=False, **kwargs):
    """ResNet-18: ImageNet stem, basic blocks [2, 2, 2, 2]; 11,689,512 trainable parameters.

    Args: see `resnet` (`stem`, `zero_init_residual`, `pooling`, `name` as keywords).
    """
    kwargs.setdefault("name", "resnet18")
    return resnet(
        input_shape, num_classes, stages=(2, 2, 2, 2), width=width, use_bias=use_bias, **kwargs
    )


@register("resnet34")
def resnet34(input_shape=(224, 224, 3), num_classes=None, *, width=64, use_bias=False, **kwargs):
    """ResNet-34: ImageNet stem, basic blocks [3, 4, 6, 3]; 21,797,672 trainable parameters.

    Args: see `resnet`.
    """
    kwargs.setdefault("name", "resnet34")
    return resnet(
        input_shape, num_classes, stages=(3, 4, 6, 3), width=width, use_bias=use_bias, **kwargs
    )


@register("resnet50")
def resnet50(input_shape=(224, 224, 3), num_classes=None, *, width=64, use_bias=True, **kwargs):
    """ResNet-50: ImageNet stem, bottleneck blocks [3, 4, 6, 3], as `keras.applications.ResNet50`.

    With the default `use_bias=True` it has the same layers, names and
    25,636,712 parameters (at 1000 classes; 25,583,592 trainable, the rest
    batch-norm moving statistics) as Keras' model, whose ImageNet weights
    therefore load layer by layer. `use_bias=False` drops 26,560 biases and
    leaves the paper's 25,557,032 trainable parameters.

    Args: see `resnet`.
    """
    kwargs.setdefault("name", "resnet50")
    return resnet(
        input_shape,
        num_classes,
        stages=(3, 4, 6, 3),
        block="bottleneck",
        width=width,
        use_bias=use_bias,
        **kwargs,
    )


@register("resnet18_small")
def resnet18_small(input_shape=(28, 28, 1), num_classes=None, *, width=64, **kwargs):
    """ResNet-18 for small images: a 3x3/1 stem and no max-pool (28 -> 28 -> 14 -> 7 -> 4).

    Args: see `resnet`.
    """
    kwargs.setdefault("name", "resnet18_small")
    kwargs.setdefault("stem", "small")
    return resnet(input_shape, num_classes, stages=(2, 2, 2, 2), width=width, **kwargs)


@register("resnet_cifar")
def resnet_cifar(input_shape=(32, 32, 3), num_classes=None, *, depth=20, width=16, **kwargs):
    """The paper's CIFAR ResNet: depth `6n + 2`, three stages of `n` basic blocks.

    Filters `width`, `2 * width`, `4 * width` (16, 32, 64); 32 -> 32 -> 16 -> 8,
    28 -> 28 -> 14 -> 7, 8 -> 8 -> 4 -> 2. ResNet-20 (`n = 3`) is the default.

    Args:
      depth: `6n + 2` layers with weights: 20, 32, 44, 56, 110, ... (8 for n = 1).
      width: filters of the stem and the first stage.
      **kwargs: see `resnet`.

    Raises:
      ValueError: if `depth` is not `6n + 2` with `n >= 1`.
    """
    if depth < 8 or (depth - 2) % 6:
        raise ValueError(f"depth must be 6n + 2 with n >= 1. Received: depth={depth}")
    n = (depth - 2) // 6
    kwargs.setdefault("name", f"resnet{depth}_cifar")
    kwargs.setdefault("stem", "small")
    return resnet(input_shape, num_classes, stages=(n, n, n), width=width, **kwargs)
