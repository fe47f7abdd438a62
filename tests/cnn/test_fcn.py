"""The fully convolutional network (mp.cnn.fcn): shapes, up-sampling, metrics, training."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mp.cnn.fcn import (
    SegmentationTask,
    confusion_matrix,
    fcn,
    iou_from_confusion,
    mean_iou,
    pixel_accuracy,
    segmentation_figure_of,
)
from mp.cnn.registry import get_model
from mp.data.canvas import make_canvases
from mp.engine import Trainer


def _params(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def test_output_shape_and_parameter_count():
    model = get_model("fcn", (32, 32, 1), 11)
    assert model.output_shape == (None, 32, 32, 11)
    # down0 3*3*1*16 + BN 2*16 = 176; down1 3*3*16*32 + 2*32 = 4,672;
    # bottom 3*3*32*64 + 2*64 = 18,560;
    # up1 transpose 2*2*64*32+32 = 8,224, conv over concat(32+32) 3*3*64*32 + 2*32 = 18,496;
    # up0 transpose 2*2*32*16+16 = 2,064, conv over concat(16+16) 3*3*32*16 + 2*16 = 4,640;
    # logits 1x1: 16*11+11 = 187. Sum: 176+4,672+18,560+26,720+6,704+187 = 57,019.
    assert _params(model) == 57_019
    features = fcn((32, 32, 1), None)
    assert features.output_shape == (None, 32, 32, 16)
    assert _params(features) == 57_019 - 187


def test_fully_convolutional_on_any_divisible_size():
    fixed = fcn((32, 32, 1), 5, filters=(4, 8, 16))
    free = fcn((None, None, 1), 5, filters=(4, 8, 16))
    free.set_weights(fixed.get_weights())
    x = np.random.default_rng(0).normal(size=(2, 32, 32, 1)).astype("float32")
    np.testing.assert_allclose(free(x), fixed(x), rtol=1e-5, atol=1e-5)
    # The same weights on a larger, non-square image: logits for every pixel.
    big = np.random.default_rng(1).normal(size=(1, 64, 96, 1)).astype("float32")
    assert free(big).shape == (1, 64, 96, 5)


def test_transpose_upsampling_paints_kernel_times_value():
    """y[2i+a, 2j+b, o] = sum_c x[i, j, c] K[a, b, o, c] + bias[o] (Keras' kernel is [h, w, out, in])."""
    model = fcn((8, 8, 1), 3, filters=(2, 3))
    layer = model.get_layer("up0_transpose")
    rng = np.random.default_rng(0)
    layer.set_weights([rng.normal(size=w.shape) for w in layer.get_weights()])
    kernel, bias = (w.numpy() for w in layer.weights)
    x = rng.normal(size=(1, 4, 4, 3)).astype("float32")
    expected = np.einsum("nijc,aboc->niajbo", x, kernel).reshape(1, 8, 8, 2) + bias
    np.testing.assert_allclose(layer(x), expected, rtol=1e-5, atol=1e-5)


def test_nearest_upsampling_copies_and_has_no_upsampling_weights():
    model = fcn((8, 8, 1), 3, filters=(2, 3), upsampling="nearest")
    layer = model.get_layer("up0_nearest")
    x = np.arange(4, dtype="float32").reshape(1, 2, 2, 1)
    # [[0, 1], [2, 3]] -> every value copied into a 2x2 block.
    expected = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]], "float32")
    np.testing.assert_array_equal(layer(x)[0, :, :, 0], expected)
    assert not layer.weights
    # down0 9*1*2+4 = 22; bottom 9*2*3+6 = 60; up0 conv over concat(3+2) 9*5*2+4 = 94;
    # logits 2*3+3 = 9. Sum 185.
    assert _params(model) == 185


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"input_shape": (30, 32, 1)}, "divisible by 4"),
        ({"upsampling": "bilinear"}, "upsampling must be"),
        ({"filters": (8,)}, "at least two"),
        ({"num_classes": 0}, "num_classes"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        fcn(**({"input_shape": (32, 32, 1), "num_classes": 3, "filters": (4, 8, 16)} | kwargs))


# --- metrics ---------------------------------------------------------------

LABELS = np.array([[0, 0, 1], [1, 2, 2]])
PREDICTIONS = np.array([[0, 1, 1], [1, 2, 0]])


def test_pixel_accuracy_by_hand():
    # Equal at (0,0), (0,2), (1,0), (1,1): 4 of 6 pixels.
    assert pixel_accuracy(LABELS, PREDICTIONS) == pytest.approx(4 / 6)


def test_mean_iou_by_hand():
    # class 0: truth {(0,0),(0,1)}, guess {(0,0),(1,2)}: I = 1, U = 3 -> 1/3
    # class 1: truth {(0,2),(1,0)}, guess {(0,1),(0,2),(1,0)}: I = 2, U = 3 -> 2/3
    # class 2: truth {(1,1),(1,2)}, guess {(1,1)}: I = 1, U = 2 -> 1/2
    # class 3: absent from both: left out. Mean (1/3 + 2/3 + 1/2) / 3 = 0.5.
    np.testing.assert_allclose(
        iou_from_confusion(confusion_matrix(LABELS, PREDICTIONS, 4)), [1 / 3, 2 / 3, 1 / 2, np.nan]
    )
    assert mean_iou(LABELS, PREDICTIONS, num_classes=4) == pytest.approx(0.5)


def test_mean_iou_matches_keras():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, size=(3, 8, 8))
    predictions = np.where(rng.random((3, 8, 8)) < 0.6, labels, rng.integers(0, 4, (3, 8, 8)))
    labels[labels == 4] = 3  # class 4 absent from both: Keras leaves it out too
    reference = keras.metrics.MeanIoU(num_classes=5)
    reference.update_state(labels, predictions)
    assert mean_iou(labels, predictions, 5) == pytest.approx(float(reference.result()), rel=1e-6)


# --- training ----------------------------------------------------------------


def _canvases(n=8, seed=0):
    return make_canvases("digits", "train", n, (16, 16), (1, 2), seed=seed)


def test_per_image_loss_is_the_pixel_mean_of_cross_entropy():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 3, 4, 5)).astype("float32")
    labels = rng.integers(0, 5, size=(2, 3, 4)).astype("int32")
    # -log softmax(logits)[label] at every pixel, then the mean over the 12 pixels of each image.
    log_softmax = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    picked = np.take_along_axis(log_softmax, labels[..., None], axis=-1)[..., 0]
    expected = -picked.mean(axis=(1, 2))
    np.testing.assert_allclose(
        SegmentationTask.per_image_loss(labels, logits), expected, rtol=1e-5, atol=1e-6
    )


def test_a_few_canvases_are_overfit_and_eval_mean_iou_is_the_sum_ratio(tmp_path):
    keras.utils.set_random_seed(0)
    images, labels = _canvases()
    model = fcn((16, 16, 1), 11, filters=(8, 16))
    task = SegmentationTask(model, keras.optimizers.Adam(0.01), num_classes=11)
    trainer = Trainer(task, str(tmp_path), train_steps=150, log_every=10, progress=False)
    data = tf.data.Dataset.from_tensor_slices((images, labels)).repeat().batch(8)
    trainer.fit(data)
    losses = [outputs["loss/total"] for _, outputs in trainer.history["train"]]
    assert losses[-1] < 0.25 * losses[0]
    # Evaluate in batches of 3 (3 + 3 + 2): the engine averages per-batch sums, and the
    # mean IoU of the ratios of those averages equals the mean IoU over all pixels at once.
    results = trainer.evaluate(tf.data.Dataset.from_tensor_slices((images, labels)).batch(3))
    predictions = np.argmax(model(images, training=False), axis=-1)
    assert results["count"] == 8
    assert SegmentationTask.mean_iou(results) == pytest.approx(
        mean_iou(labels, predictions, 11), rel=1e-5
    )
    assert results["pixel_accuracy"] == pytest.approx(pixel_accuracy(labels, predictions))


def test_segmentation_figure_of_draws_input_truth_and_prediction():
    images, labels = _canvases(n=3)
    model = fcn((16, 16, 1), 11, filters=(4, 8))
    names = ("background", *(str(d) for d in range(10)))
    figure = segmentation_figure_of(model, images, labels, names, title="three canvases")
    axes = figure.get_axes()
    assert len(axes) == 3 * 3  # a row per canvas: input, truth, prediction
    assert [axis.get_title() for axis in axes[:3]] == ["input", "truth", "prediction"]
    predictions = np.argmax(model.predict(images, verbose=0), axis=-1)
    # The panels hold the canvas, its label map and the model's argmax, in that order.
    np.testing.assert_array_equal(axes[0].get_images()[0].get_array(), images[0, :, :, 0])
    np.testing.assert_array_equal(axes[1].get_images()[0].get_array(), labels[0])
    np.testing.assert_array_equal(axes[2].get_images()[0].get_array(), predictions[0])
    assert [t.get_text() for t in figure.legends[0].get_texts()] == list(names)
    assert figure._suptitle.get_text() == "three canvases"
