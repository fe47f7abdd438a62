"""GoogLeNet and its Inception module (Szegedy et al., 2014).

"Going Deeper with Convolutions", https://arxiv.org/abs/1409.4842.

The Inception module looks at its input at several scales at once and stacks
the answers on the channel axis:

    x -> conv 1x1 (f1)                       -+
    x -> conv 1x1 (r3) -> conv 3x3 (f3)       +-> concatenate: f1 + f3 + f5 + fp channels
    x -> conv 1x1 (r5) -> conv 5x5 (f5)       |
    x -> max-pool 3x3, stride 1 -> conv 1x1 (fp) -+

All convolutions use "same" padding and ReLU, so the four branches keep the
spatial size. The 1x1 convolutions before the 3x3 and 5x5 ones are the
dimensionality reduction: with C input channels the 5x5 branch costs
25 * C * f5 weights directly but C * r5 + 25 * r5 * f5 after a reduction to
r5 << C channels, and the pool projection keeps the pool branch from handing
all C channels on (which would make the channels grow module after module).

GoogLeNet stacks nine modules (3a ... 5b) after a small convolutional stem and
ends with global average pooling and one linear layer instead of big fully
connected layers. Two auxiliary classifiers, on the outputs of 4a and 4d,

    avg-pool 5x5, stride 3 -> conv 1x1 (128) -> dense 1024 -> dropout 0.7 -> logits

add their cross-entropies, weighted 0.3 each, to the loss during training: the
lower layers then get a gradient that did not travel through the whole network.
At inference the heads are dropped.

How this module implements "training only":

* `googlenet(...)` returns the inference model: images -> main logits, nothing
  else. It is what `ClassificationTask`, `apps/train_cnn.py`, evaluation,
  `model.predict` and the `.keras` file see.
* `training_model(model)` returns a second functional model over the *same
  layers* that outputs `[logits, aux1, aux2]`; only it holds the heads' weights.
* `InceptionTask` (an `mp.engine.ClassificationTask`) trains the training model
  with `loss = CE(logits) + 0.3 * (CE(aux1) + CE(aux2))` and evaluates the
  inference model. `TASKS` maps the registered names to it.
* With Keras' own loop:

      train = training_model(model)
      train.compile("adam", loss=[ce, ce, ce], loss_weights=[1.0, 0.3, 0.3])
      train.fit(x, (y, y, y))          # then model.predict(x) uses the main head

  with `ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)`.

The local response normalization of the paper's stem is left out (later
networks dropped it; it changes little).

Course: ch3.1 Layers and Architectures (GoogLeNet: Inception module, no FC
layers, dimensionality reduction via 1x1 convolutions, auxiliary
classification heads).
"""

import weakref

import keras
import tensorflow as tf

from mp.cnn.registry import register
from mp.engine import ClassificationTask, global_mean
from mp.engine.precision import unscaled
from mp.engine.task import float32


@keras.saving.register_keras_serializable(package="mp")
class InceptionModule(keras.layers.Layer):
    """Four parallel branches concatenated on the channel axis.

    With `C` input channels the trainable parameters are (weights + biases)

        C*f1 + f1                       1x1 branch
      + C*r3 + r3 + 9*r3*f3 + f3        1x1 reduction, 3x3
      + C*r5 + r5 + 25*r5*f5 + f5       1x1 reduction, 5x5
      + C*fp + fp                       pool projection

    and the output has `f1 + f3 + f5 + fp` channels. A reduction given as
    `None` is left out: the 3x3 (5x5) convolution then costs `9*C*f3 + f3`
    (`25*C*f5 + f5`), and without a pool projection the pooled input's `C`
    channels are concatenated as they are. With all three `None` this is the
    paper's "naive" module (its Figure 2a).

    Args:
      filters_1x1: `f1`, filters of the 1x1 branch.
      filters_3x3_reduce: `r3`, filters of the 1x1 before the 3x3, or `None`.
      filters_3x3: `f3`, filters of the 3x3 convolution.
      filters_5x5_reduce: `r5`, filters of the 1x1 before the 5x5, or `None`.
      filters_5x5: `f5`, filters of the 5x5 convolution.
      filters_pool_proj: `fp`, filters of the 1x1 after the 3x3 max-pool, or `None`.
      **kwargs: `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Raises:
      ValueError: if a filter count is not a positive integer.
    """

    def __init__(
        self,
        filters_1x1,
        filters_3x3_reduce,
        filters_3x3,
        filters_5x5_reduce,
        filters_5x5,
        filters_pool_proj,
        **kwargs,
    ):
        super().__init__(**kwargs)
        filters = {
            "filters_1x1": filters_1x1,
            "filters_3x3_reduce": filters_3x3_reduce,
            "filters_3x3": filters_3x3,
            "filters_5x5_reduce": filters_5x5_reduce,
            "filters_5x5": filters_5x5,
            "filters_pool_proj": filters_pool_proj,
        }
        optional = ("filters_3x3_reduce", "filters_5x5_reduce", "filters_pool_proj")
        for key, value in filters.items():
            if value is None and key in optional:
                continue
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{key} must be a positive integer. Received: {key}={value!r}")
        self.filters = filters

        def conv(f, size, name):
            return keras.layers.Conv2D(
                f, size, padding="same", activation="relu", dtype=self.dtype_policy, name=name
            )

        self.branch_1x1 = conv(filters_1x1, 1, "branch_1x1")
        self.reduce_3x3 = conv(filters_3x3_reduce, 1, "reduce_3x3") if filters_3x3_reduce else None
        self.branch_3x3 = conv(filters_3x3, 3, "branch_3x3")
        self.reduce_5x5 = conv(filters_5x5_reduce, 1, "reduce_5x5") if filters_5x5_reduce else None
        self.branch_5x5 = conv(filters_5x5, 5, "branch_5x5")
        self.pool = keras.layers.MaxPooling2D(3, strides=1, padding="same", name="pool")
        self.pool_proj = conv(filters_pool_proj, 1, "pool_proj") if filters_pool_proj else None

    def build(self, input_shape):
        channels_shape = lambda f: (*input_shape[:-1], f)  # noqa: E731
        self.branch_1x1.build(input_shape)
        for reduce, branch, key in (
            (self.reduce_3x3, self.branch_3x3, "filters_3x3_reduce"),
            (self.reduce_5x5, self.branch_5x5, "filters_5x5_reduce"),
        ):
            if reduce is not None:
                reduce.build(input_shape)
                branch.build(channels_shape(self.filters[key]))
            else:
                branch.build(input_shape)
        if self.pool_proj is not None:
            self.pool_proj.build(input_shape)
        self.built = True

    def call(self, x):
        b1 = self.branch_1x1(x)
        b3 = self.branch_3x3(x if self.reduce_3x3 is None else self.reduce_3x3(x))
        b5 = self.branch_5x5(x if self.reduce_5x5 is None else self.reduce_5x5(x))
        bp = self.pool(x)
        if self.pool_proj is not None:
            bp = self.pool_proj(bp)
        return keras.ops.concatenate([b1, b3, b5, bp], axis=-1)

    def output_channels(self, input_channels):
        """`f1 + f3 + f5 + fp`, with `fp = input_channels` without a pool projection."""
        f = self.filters
        return (
            f["filters_1x1"]
            + f["filters_3x3"]
            + f["filters_5x5"]
            + (f["filters_pool_proj"] or input_channels)
        )

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.output_channels(input_shape[-1]))

    def get_config(self):
        return super().get_config() | dict(self.filters)


# GoogLeNet's modules (Table 1 of the paper): name, f1, r3, f3, r5, f5, fp;
# "pool" is a 3x3 max-pool of stride 2 that halves the size.
GOOGLENET_LAYOUT = (
    ("3a", 64, 96, 128, 16, 32, 32),  # 256 channels out
    ("3b", 128, 128, 192, 32, 96, 64),  # 480
    "pool",
    ("4a", 192, 96, 208, 16, 48, 64),  # 512, auxiliary head 1
    ("4b", 160, 112, 224, 24, 64, 64),  # 512
    ("4c", 128, 128, 256, 24, 64, 64),  # 512
    ("4d", 112, 144, 288, 32, 64, 64),  # 528, auxiliary head 2
    ("4e", 256, 160, 320, 32, 128, 128),  # 832
    "pool",
    ("5a", 256, 160, 320, 32, 128, 128),  # 832
    ("5b", 384, 192, 384, 48, 128, 128),  # 1024
)
AUX_AFTER = ("4a", "4d")

# Inference model -> its training model (same layers plus the auxiliary heads).
_TRAINING_MODELS = weakref.WeakKeyDictionary()


def _scaled(f, width):
    return max(1, round(f * width))


def _aux_head(x, index, num_classes, width, dropout):
    """avg-pool 5x5 / 3 -> conv 1x1 (128) -> dense 1024 -> dropout -> logits."""
    size = min(5, x.shape[1], x.shape[2])  # 5x5 as in the paper; smaller maps pool whole
    prefix = f"aux{index}"
    x = keras.layers.AveragePooling2D(size, strides=3, name=f"{prefix}_pool")(x)
    x = keras.layers.Conv2D(_scaled(128, width), 1, activation="relu", name=f"{prefix}_conv")(x)
    x = keras.layers.Flatten(name=f"{prefix}_flatten")(x)
    x = keras.layers.Dense(_scaled(1024, width), activation="relu", name=f"{prefix}_fc")(x)
    x = keras.layers.Dropout(dropout, name=f"{prefix}_dropout")(x)
    return keras.layers.Dense(num_classes, name=f"{prefix}_logits")(x)


def googlenet(
    input_shape=(224, 224, 3),
    num_classes=None,
    *,
    aux_heads=True,
    width=1.0,
    stem="imagenet",
    layout=GOOGLENET_LAYOUT,
    aux_after=AUX_AFTER,
    dropout=0.4,
    aux_dropout=0.7,
    name="googlenet",
):
    """Builds GoogLeNet (Inception v1); returns the inference model.

    Stem `"imagenet"` (the paper, 224 -> 28 before module 3a): conv 7x7 / 2
    (64) -> max-pool 3x3 / 2 -> conv 1x1 (64) -> conv 3x3 (192) -> max-pool
    3x3 / 2. Stem `"small"` (for 28x28 images, 28 -> 14): the same layers with
    a 3x3 first convolution of stride 1 and no first pool. Then the modules of
    `GOOGLENET_LAYOUT`, global average pooling, dropout and the logits.

    Args:
      input_shape: `(height, width, channels)`.
      num_classes: size of the logits; `None` returns the features after the
        global average pooling (and no auxiliary heads).
      aux_heads: build the two auxiliary classifiers (reached through
        `training_model(model)`; the returned model never outputs them).
      width: multiplies every filter count and the heads' widths (rounded, at
        least 1); 1.0 is the paper.
      stem: `"imagenet"` or `"small"`.
      layout: the modules and pools after the stem, as in `GOOGLENET_LAYOUT`
        (a shorter layout gives a shallower network, e.g. for quick tests).
      aux_after: the names of the two modules of `layout` whose outputs feed
        the auxiliary heads.
      dropout: drop rate before the logits, in [0, 1) (0.4 in the paper).
      aux_dropout: drop rate in the auxiliary heads, in [0, 1) (0.7 in the paper).
      name: the model's name.

    Returns:
      A functional `keras.Model`, images -> logits (or features).

    Raises:
      ValueError: for arguments out of range.
    """
    if not width > 0:
        raise ValueError(f"width must be positive. Received: width={width}")
    if stem not in ("imagenet", "small"):
        raise ValueError(f"stem must be 'imagenet' or 'small'. Received: stem={stem!r}")
    for key, rate in (("dropout", dropout), ("aux_dropout", aux_dropout)):
        if not 0 <= rate < 1:
            raise ValueError(f"{key} must be in [0, 1). Received: {key}={rate}")
    if len(input_shape) != 3:
        raise ValueError(f"input_shape must be (height, width, channels). Received: {input_shape}")
    modules = [entry[0] for entry in layout if entry != "pool"]
    if aux_heads and (len(aux_after) != 2 or not set(aux_after) <= set(modules)):
        raise ValueError(
            f"aux_after must name two modules of the layout ({', '.join(modules)}). "
            f"Received: aux_after={aux_after!r}"
        )

    def conv(x, f, size, strides=1, name=None):
        return keras.layers.Conv2D(
            _scaled(f, width), size, strides=strides, padding="same", activation="relu", name=name
        )(x)

    def pool(x, name):
        return keras.layers.MaxPooling2D(3, strides=2, padding="same", name=name)(x)

    images = keras.Input(shape=tuple(input_shape), name="images")
    if stem == "imagenet":
        x = conv(images, 64, 7, strides=2, name="conv1")
        x = pool(x, "pool1")
    else:
        x = conv(images, 64, 3, name="conv1")
    x = conv(x, 64, 1, name="conv2_reduce")
    x = conv(x, 192, 3, name="conv2")
    x = pool(x, "pool2")

    taps = {}
    stage = 3
    for entry in layout:
        if entry == "pool":
            x = pool(x, f"pool{stage}")
            stage += 1
            continue
        module, *filters = entry
        x = InceptionModule(*(_scaled(f, width) for f in filters), name=f"inception_{module}")(x)
        taps[module] = x

    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if num_classes is None:
        return keras.Model(images, x, name=name)
    x = keras.layers.Dropout(dropout, name="dropout")(x)
    logits = keras.layers.Dense(num_classes, name="logits")(x)
    model = keras.Model(images, logits, name=name)
    if aux_heads:
        aux = [
            _aux_head(taps[module], i, num_classes, width, aux_dropout)
            for i, module in enumerate(aux_after, start=1)
        ]
        _TRAINING_MODELS[model] = keras.Model(images, [logits, *aux], name=f"{name}_training")
    return model


def training_model(model):
    """The model `images -> [logits, aux1, aux2]` sharing `model`'s layers.

    Args:
      model: an inference model returned by `googlenet` with `aux_heads=True`.

    Returns:
      A functional `keras.Model` with three outputs, or `None` if `model` has no
      auxiliary heads (built with `aux_heads=False`, or loaded from a `.keras`
      file, which holds the inference model only).
    """
    return _TRAINING_MODELS.get(model)


@register("inception")
def inception(input_shape=(224, 224, 3), num_classes=1000, *, name="googlenet", **kwargs):
    """GoogLeNet as in the paper; `kwargs` as in `googlenet`."""
    return googlenet(input_shape, num_classes, name=name, **kwargs)


@register("inception_small")
def inception_small(
    input_shape=(28, 28, 1), num_classes=10, *, width=0.25, name="inception_small", **kwargs
):
    """GoogLeNet for 28x28 images: the small stem and a quarter of the filters.

    Sizes at 28x28: stem 28 -> 14, modules 3a-3b at 14x14, 4a-4e at 7x7
    (auxiliary heads pool 5x5 / 3 -> 1x1), 5a-5b at 4x4. `kwargs` as in `googlenet`.
    """
    return googlenet(input_shape, num_classes, width=width, stem="small", name=name, **kwargs)


class InceptionTask(ClassificationTask):
    """Classification with GoogLeNet's auxiliary losses, for `mp.engine.Trainer`.

    Training minimises, per global batch,

        CE(logits) + aux_weight * (CE(aux1) + CE(aux2)) + weight penalties

    on `training_model(model)`; evaluation, `predict_logits` and `export` use the
    inference model, so the heads never matter there. A model without auxiliary
    heads trains exactly as with `ClassificationTask`.

    Args:
      model: an inference model from `googlenet` (or a function returning one).
      optimizer: a `keras.optimizers.Optimizer`, or a function returning one.
      clip_norm: as in `ClassificationTask`.
      aux_weight: weight of each auxiliary cross-entropy (0.3 in the paper), >= 0.
    """

    def __init__(self, model, optimizer, *, clip_norm=None, aux_weight=0.3):
        super().__init__(model, optimizer, clip_norm=clip_norm)
        if not aux_weight >= 0:
            raise ValueError(f"aux_weight must be >= 0. Received: aux_weight={aux_weight}")
        self.aux_weight = aux_weight
        self.training_model = None

    def build(self):
        factory = self._model_factory
        self.model = (
            factory() if callable(factory) and not isinstance(factory, keras.Model) else factory
        )
        self.training_model = training_model(self.model)
        optimizer = self._optimizer_factory
        self.optimizer = (
            optimizer()
            if callable(optimizer) and not isinstance(optimizer, keras.optimizers.Optimizer)
            else optimizer
        )
        self.optimizer.build(self._trained().trainable_variables)

    def _trained(self):
        return self.training_model or self.model

    def checkpoint_items(self):
        return {"model": self._trained(), "optimizer": unscaled(self.optimizer)}

    def compute_losses(self, images, labels, training=True):
        """The loss and its parts, as global-mean shares; also the main logits.

        Returns:
          `(loss, parts, logits)` with `parts` a dict `loss/cross_entropy`,
          `loss/aux1`, `loss/aux2` (the auxiliary ones only with heads).
        """

        def cross_entropy(logits):
            return tf.nn.compute_average_loss(
                tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
            )

        if self.training_model is None:
            logits = float32(self.model(images, training=training))
            parts = {"loss/cross_entropy": cross_entropy(logits)}
            loss = parts["loss/cross_entropy"]
        else:
            logits, aux1, aux2 = float32(self.training_model(images, training=training))
            parts = {
                "loss/cross_entropy": cross_entropy(logits),
                "loss/aux1": cross_entropy(aux1),
                "loss/aux2": cross_entropy(aux2),
            }
            loss = parts["loss/cross_entropy"] + self.aux_weight * (
                parts["loss/aux1"] + parts["loss/aux2"]
            )
        penalties = self._trained().losses
        if penalties:  # weight penalties, added once per global batch
            loss += tf.nn.scale_regularization_loss(tf.add_n(penalties))
        return loss, parts, logits

    def train_step(self, batch):
        images, labels = batch
        with tf.GradientTape() as tape:
            loss, parts, logits = self.compute_losses(images, labels, training=True)
        grad_norm = self._minimize(tape, loss, self._trained().trainable_variables)
        return {
            "loss/total": loss,
            **parts,
            "metrics/top1": global_mean(tf.math.in_top_k(targets=labels, predictions=logits, k=1)),
        } | self._charts(grad_norm)


# The task each registered name trains with (`apps/train_cnn.py`); others use
# `ClassificationTask`. Same constructor: `TASKS[name](model, optimizer, clip_norm=...)`.
TASKS = {"inception": InceptionTask, "inception_small": InceptionTask}
