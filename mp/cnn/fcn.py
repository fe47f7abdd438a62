"""Fully convolutional network for semantic segmentation (a small U-Net).

A classifier answers one class per image; a segmentation network answers one
class per pixel, so its output is as large as its input: logits
`[B, H, W, num_classes]`. Convolutions at full resolution are expensive and see
little context, so the network goes down and comes back up:

    encoder  level l = 0..L-1:  x -> conv3x3-BN-ReLU -> skip_l -> max-pool 2x2
    bottom                      x -> conv3x3-BN-ReLU                 (H / 2^L)
    decoder  level l = L-1..0:  x -> up-sample x2 -> concat(x, skip_l)
                                  -> conv3x3-BN-ReLU
    head                        x -> conv1x1 -> per-pixel logits

with `L = len(filters) - 1`. Up-sampling is either learned, a transpose
convolution with a 2x2 kernel and stride 2 (each input pixel paints a 2x2
patch of output, `kernel * x`), or fixed nearest-neighbour unpooling (each
value copied into a 2x2 block). The skip connections hand the decoder the
encoder's fine, full-resolution detail that pooling threw away: the deep path
says *what*, the skip says *where* (Long, Shelhamer and Darrell, "Fully
Convolutional Networks for Semantic Segmentation", CVPR 2015; Ronneberger,
Fischer and Brox, "U-Net", MICCAI 2015).

There is no dense layer, so the same weights apply to an image of any size
whose sides are divisible by 2^L: the model accepts `input_shape=(None, None, 1)`.

Metrics (functions of integer label maps):

    pixel accuracy = #{pixels with prediction == label} / #pixels
    IoU_c          = TP_c / (TP_c + FP_c + FN_c)   (intersection over union)
    mean IoU       = mean of IoU_c over the classes with TP_c + FP_c + FN_c > 0,

i.e. over the classes present in the truth or in the prediction (the same
convention as `keras.metrics.MeanIoU`). `SegmentationTask` trains the model
in `mp.engine` with the per-pixel cross-entropy, on canvases of
`mp.data.canvas.canvas_data`; `segmentation_figure_of` draws what it predicts.

Course: ch3.1 Layers and Architectures (fully convolutional networks,
downsampling and upsampling inside the network, transpose convolution).
"""

import keras
import numpy as np
import tensorflow as tf

from mp.cnn.registry import register
from mp.engine.task import ClassificationTask, float32

__all__ = [
    "SegmentationTask",
    "confusion_matrix",
    "fcn",
    "iou_from_confusion",
    "mean_iou",
    "pixel_accuracy",
    "segmentation_figure",
    "segmentation_figure_of",
]

UPSAMPLING = ("transpose", "nearest")


def _conv_bn_relu(x, filters, name):
    """3x3 convolution (no bias: BN's beta replaces it), batch norm, ReLU."""
    x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
    return keras.layers.ReLU(name=f"{name}_relu")(x)


@register("fcn")
def fcn(
    input_shape=(32, 32, 1),
    num_classes=11,
    *,
    filters=(16, 32, 64),
    upsampling="transpose",
    name="fcn",
):
    """Builds the fully convolutional network of the module docstring.

    Args:
      input_shape: `(height, width, channels)`; height and width divisible by
        `2 ** (len(filters) - 1)`, or `None` for any such size.
      num_classes: channels of the per-pixel logits (background included);
        `None` returns the last decoder features `[B, H, W, filters[0]]`.
      filters: channels per level, from full resolution to the bottom; at least
        two levels (one pooling).
      upsampling: `transpose` (learned, `Conv2DTranspose` 2x2, stride 2) or
        `nearest` (fixed nearest-neighbour unpooling).
      name: the model's name.

    Returns:
      A functional `keras.Model` mapping images `[B, H, W, C]` to logits
      `[B, H, W, num_classes]`.

    Raises:
      ValueError: for arguments or sizes that do not fit.
    """
    filters = tuple(int(f) for f in filters)
    if len(filters) < 2 or min(filters) <= 0:
        raise ValueError(
            f"filters must be at least two positive integers. Received: filters={filters}"
        )
    if upsampling not in UPSAMPLING:
        raise ValueError(
            f"upsampling must be one of {', '.join(UPSAMPLING)}. Received: upsampling={upsampling!r}"
        )
    if num_classes is not None and num_classes < 1:
        raise ValueError(f"num_classes must be positive. Received: num_classes={num_classes}")
    levels = len(filters) - 1
    factor = 2**levels
    for side in input_shape[:2]:
        if side is not None and side % factor:
            raise ValueError(
                f"fcn pools {levels} times by 2, so height and width must be divisible by "
                f"{factor}. Received: input_shape={tuple(input_shape)}"
            )

    images = keras.Input(shape=tuple(input_shape), name="images")
    x = images
    skips = []
    for level in range(levels):  # encoder: features, then halve the resolution
        x = _conv_bn_relu(x, filters[level], name=f"down{level}")
        skips.append(x)
        x = keras.layers.MaxPooling2D(2, name=f"down{level}_pool")(x)
    x = _conv_bn_relu(x, filters[-1], name="bottom")
    for level in reversed(range(levels)):  # decoder: double the resolution, add the skip
        if upsampling == "transpose":
            x = keras.layers.Conv2DTranspose(
                filters[level], 2, strides=2, name=f"up{level}_transpose"
            )(x)
        else:
            x = keras.layers.UpSampling2D(2, interpolation="nearest", name=f"up{level}_nearest")(x)
        x = keras.layers.Concatenate(name=f"up{level}_skip")([x, skips[level]])
        x = _conv_bn_relu(x, filters[level], name=f"up{level}")
    if num_classes is None:
        return keras.Model(images, x, name=name)
    logits = keras.layers.Conv2D(num_classes, 1, name="logits")(x)
    return keras.Model(images, logits, name=name)


# --- metrics ---------------------------------------------------------------


def pixel_accuracy(labels, predictions):
    """Fraction of pixels whose predicted class equals the label.

    Args:
      labels: integer class map `[..., H, W]`.
      predictions: integer class map of the same shape (e.g. `argmax` of the
        logits over the last axis).

    Returns:
      A float in [0, 1].

    Raises:
      ValueError: if the shapes differ.
    """
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    if labels.shape != predictions.shape:
        raise ValueError(
            f"labels and predictions must have the same shape. Received: {labels.shape} "
            f"and {predictions.shape}"
        )
    return float(np.mean(labels == predictions))


def confusion_matrix(labels, predictions, num_classes):
    """Pixel counts `[true class, predicted class]` of a `num_classes` square."""
    labels = np.asarray(labels).reshape(-1)
    predictions = np.asarray(predictions).reshape(-1)
    matrix = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(matrix, (labels, predictions), 1)
    return matrix


def iou_from_confusion(matrix):
    """Per-class IoU from a confusion matrix; NaN for classes absent from both sides.

    With TP_c = matrix[c, c], FN_c = row sum - TP_c, FP_c = column sum - TP_c:
    IoU_c = TP_c / (TP_c + FP_c + FN_c) = TP_c / (row_c + column_c - TP_c).
    """
    matrix = np.asarray(matrix, np.float64)
    intersection = np.diag(matrix)
    union = matrix.sum(axis=0) + matrix.sum(axis=1) - intersection
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, intersection / union, np.nan)


def mean_iou(labels, predictions, num_classes):
    """Mean intersection over union of integer class maps.

    The mean runs over the classes present in `labels` or `predictions` (union
    > 0), the convention of `keras.metrics.MeanIoU`; a class absent from both
    says nothing about the model and is left out.

    Args:
      labels: integer class map `[..., H, W]`, values in `[0, num_classes)`.
      predictions: integer class map of the same shape.
      num_classes: number of classes, background included.

    Returns:
      A float in [0, 1].
    """
    return float(np.nanmean(iou_from_confusion(confusion_matrix(labels, predictions, num_classes))))


# --- figures -----------------------------------------------------------------


def segmentation_figure(images, labels, predictions, class_names, title=""):
    """One row per image: the input, the true label map, the predicted one.

    Args:
      images: `[N, H, W, C]`; the first channel is drawn in grey.
      labels, predictions: integer class maps `[N, H, W]`.
      class_names: the name of every class, background (0, drawn black) first; each
        other class has its own colour, shown in a legend.
      title: the figure's title.

    Returns:
      The matplotlib figure.
    """
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    from mp.plotting import pyplot

    plt = pyplot()
    num_classes = len(class_names)
    colours = ["black"] + [plt.cm.tab10(i % 10) for i in range(num_classes - 1)]
    cmap = ListedColormap(colours)
    rows = len(images)
    height = 2.2 * rows + 0.8
    figure, axes = plt.subplots(rows, 3, figsize=(6.6, height), squeeze=False)
    for row in range(rows):
        panels = (
            (images[row, :, :, 0], "gray", "input"),
            (labels[row], cmap, "truth"),
            (predictions[row], cmap, "prediction"),
        )
        for axis, (picture, colour_map, name) in zip(axes[row], panels):
            kwargs = {"vmin": 0, "vmax": num_classes - 1} if name != "input" else {}
            axis.imshow(picture, cmap=colour_map, interpolation="nearest", **kwargs)
            axis.set_xticks([])
            axis.set_yticks([])
            if row == 0:
                axis.set_title(name)
    figure.legend(
        handles=[Patch(color=colours[c], label=class_names[c]) for c in range(num_classes)],
        loc="lower center",
        ncol=min(num_classes, 6),
        fontsize="small",
    )
    figure.suptitle(title)
    figure.tight_layout(rect=(0, 0.7 / height, 1, 1))  # 0.7 inch at the bottom for the legend
    plt.close(figure)  # saved, not shown: pyplot need not keep it
    return figure


def segmentation_figure_of(model, images, labels, class_names, title=""):
    """`segmentation_figure` of what `model` (per-pixel logits) predicts for `images`."""
    predictions = np.argmax(model.predict(images, verbose=0), axis=-1)
    return segmentation_figure(images, labels, predictions, class_names, title=title)


# --- training ----------------------------------------------------------------


class SegmentationTask(ClassificationTask):
    """Per-pixel classification in `mp.engine`: softmax cross-entropy at every pixel.

    The loss of one image is the mean over its pixels of
    `-log softmax(logits[i, j])[label[i, j]]`; the batch loss is the mean over
    images (`tf.nn.compute_average_loss`, so it reads the same on any number of
    replicas).

    `eval_step` returns sums over the images of a batch, as the engine wants:
    the loss, the pixel accuracy, and for every class `c` the intersection
    `TP_c` and the union `TP_c + FP_c + FN_c` as fractions of an image's pixels
    (`iou/intersection_c`, `iou/union_c`). The engine divides every sum by the
    number of images; the ratio of two such means is the ratio of the sums, so
    `SegmentationTask.mean_iou(trainer.evaluate(data))` is the mean IoU of the
    whole evaluation set.

    Args:
      model: a `keras.Model` mapping images to per-pixel logits, or a function
        returning one.
      optimizer: a `keras.optimizers.Optimizer`, or a function returning one.
      num_classes: number of classes of the logits, background included.
      clip_norm: optional global-norm gradient clipping (see `ClassificationTask`).
    """

    def __init__(self, model, optimizer, num_classes, *, clip_norm=None):
        super().__init__(model, optimizer, clip_norm=clip_norm)
        if num_classes < 1:
            raise ValueError(f"num_classes must be positive. Received: num_classes={num_classes}")
        self.num_classes = int(num_classes)

    @staticmethod
    def per_image_loss(labels, logits):
        """Cross-entropy averaged over the pixels of each image: `[B, H, W] -> [B]`."""
        cross_entropy = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
        return tf.reduce_mean(cross_entropy, axis=[1, 2])

    def train_step(self, batch):
        images, labels = batch
        with tf.GradientTape() as tape:
            logits = float32(self.model(images, training=True))
            data_loss = tf.nn.compute_average_loss(self.per_image_loss(labels, logits))
            loss = data_loss
            if self.model.losses:
                loss += tf.nn.scale_regularization_loss(tf.add_n(self.model.losses))
        grad_norm = self._minimize(tape, loss)
        correct = tf.cast(
            tf.equal(tf.argmax(logits, axis=-1, output_type=labels.dtype), labels), tf.float32
        )
        return {
            "loss/total": loss,
            "loss/cross_entropy": data_loss,
            "metrics/pixel_accuracy": tf.nn.compute_average_loss(
                tf.reduce_mean(correct, axis=[1, 2])
            ),
        } | self._charts(grad_norm)

    def eval_step(self, batch):
        images, labels = batch
        logits = self.predict_logits(images)
        predictions = tf.argmax(logits, axis=-1, output_type=labels.dtype)
        outputs = {
            "loss": tf.reduce_sum(self.per_image_loss(labels, logits)),
            "pixel_accuracy": tf.reduce_sum(
                tf.reduce_mean(tf.cast(tf.equal(predictions, labels), tf.float32), axis=[1, 2])
            ),
        }
        for c in range(self.num_classes):
            truth, guess = tf.equal(labels, c), tf.equal(predictions, c)
            # Per image: the fraction of its pixels in truth AND guess, and in truth OR guess.
            outputs[f"iou/intersection_{c}"] = tf.reduce_sum(
                tf.reduce_mean(tf.cast(truth & guess, tf.float32), axis=[1, 2])
            )
            outputs[f"iou/union_{c}"] = tf.reduce_sum(
                tf.reduce_mean(tf.cast(truth | guess, tf.float32), axis=[1, 2])
            )
        outputs["count"] = tf.cast(tf.shape(labels)[0], tf.float32)
        return outputs

    @staticmethod
    def mean_iou(results):
        """Mean IoU from `Trainer.evaluate` results (means of the `iou/...` sums).

        The mean runs over the classes with a non-zero union, as `mean_iou` does.
        """
        ious = []
        c = 0
        while f"iou/union_{c}" in results:
            union = results[f"iou/union_{c}"]
            if union > 0:
                ious.append(results[f"iou/intersection_{c}"] / union)
            c += 1
        return float(np.mean(ious)) if ious else float("nan")
