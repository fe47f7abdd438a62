"""Tests of mp.cnn.unpooling: pooling with argmax, max / bed-of-nails / nearest unpooling,
and the transposed convolution as the adjoint of a strided convolution."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mp.cnn.unpooling import (
    BedOfNailsUnpooling2D,
    MaxPoolingWithArgmax2D,
    MaxUnpooling2D,
    NearestNeighborUnpooling2D,
)

# One 4x4 image, one channel:
#   [[ 1,  5,  2,  0],
#    [ 3,  4,  8,  1],
#    [ 9,  0,  6,  7],
#    [ 2,  1,  3, 10]]
X = np.array([[1, 5, 2, 0], [3, 4, 8, 1], [9, 0, 6, 7], [2, 1, 3, 10]], "float32")[None, :, :, None]


def test_max_pooling_with_argmax_by_hand():
    pooled, argmax = MaxPoolingWithArgmax2D(2)(X)
    # Windows: top-left {1, 5, 3, 4} -> 5 at (0, 1); top-right {2, 0, 8, 1} -> 8 at (1, 2);
    # bottom-left {9, 0, 2, 1} -> 9 at (2, 0); bottom-right {6, 7, 3, 10} -> 10 at (3, 3).
    np.testing.assert_array_equal(pooled[0, :, :, 0], [[5, 8], [9, 10]])
    # Flattened index (y * W + x) * C + c with W = 4, C = 1: 0*4+1 = 1, 1*4+2 = 6, 2*4+0 = 8,
    # 3*4+3 = 15.
    np.testing.assert_array_equal(argmax[0, :, :, 0], [[1, 6], [8, 15]])
    assert argmax.dtype == tf.int64


def test_max_unpooling_by_hand():
    pooled, argmax = MaxPoolingWithArgmax2D(2)(X)
    y = MaxUnpooling2D(2)([pooled, argmax])
    # Each maximum back where it was, zeros elsewhere:
    expected = [[0, 5, 0, 0], [0, 0, 8, 0], [9, 0, 0, 0], [0, 0, 0, 10]]
    np.testing.assert_array_equal(y[0, :, :, 0], expected)


def test_bed_of_nails_and_nearest_by_hand():
    x = np.array([[1, 2], [3, 4]], "float32")[None, :, :, None]
    nails = [[1, 0, 2, 0], [0, 0, 0, 0], [3, 0, 4, 0], [0, 0, 0, 0]]  # top-left of each 2x2
    nearest = [[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]]  # repeated
    np.testing.assert_array_equal(BedOfNailsUnpooling2D(2)(x)[0, :, :, 0], nails)
    np.testing.assert_array_equal(NearestNeighborUnpooling2D(2)(x)[0, :, :, 0], nearest)


def _numpy_max_unpool(x, s):
    """Reference: max pool x [N, H, W, C] in s x s windows, put each max back, zeros elsewhere."""
    n, h, w, c = x.shape
    y = np.zeros_like(x)
    for b in range(n):
        for i in range(h // s):
            for j in range(w // s):
                for ch in range(c):
                    window = x[b, s * i : s * i + s, s * j : s * j + s, ch]
                    a, e = np.unravel_index(np.argmax(window), window.shape)
                    y[b, s * i + a, s * j + e, ch] = window[a, e]
    return y


@pytest.mark.parametrize("size", [2, 3])
def test_max_unpooling_of_max_pooling_batch_and_channels(size):
    x = np.random.default_rng(0).normal(size=(3, 6, 12, 4)).astype("float32")
    pooled, argmax = MaxPoolingWithArgmax2D(size)(x)
    y = MaxUnpooling2D(size)([pooled, argmax]).numpy()
    assert y.shape == x.shape
    np.testing.assert_array_equal(y, _numpy_max_unpool(x, size))
    # Each maximum exactly where it was, and nowhere else: y is x on the maxima and 0 elsewhere.
    kept = y != 0
    assert kept.sum() == pooled.numpy().size
    np.testing.assert_array_equal(y[kept], x[kept])


def test_max_unpooling_output_size_for_odd_sizes():
    x = np.random.default_rng(1).normal(size=(2, 5, 7, 3)).astype("float32")
    pooled, argmax = MaxPoolingWithArgmax2D(2, padding="same")(x)  # 3x4
    y = MaxUnpooling2D(output_size=(5, 7))([pooled, argmax]).numpy()
    assert y.shape == x.shape
    # The reference on x padded with -inf to 6x8 (where "same" pooling never picks the padding).
    padded = np.pad(x, ((0, 0), (0, 1), (0, 1), (0, 0)), constant_values=-np.inf)
    np.testing.assert_array_equal(
        y, np.nan_to_num(_numpy_max_unpool(padded, 2), neginf=0)[:, :5, :7]
    )


def test_max_unpooling_gradient_is_a_gather_at_argmax():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 4, 6, 3)).astype("float32")
    pooled, argmax = MaxPoolingWithArgmax2D(2)(x)
    g = rng.normal(size=x.shape).astype("float32")  # upstream dE/dy
    values = tf.Variable(pooled)
    with tf.GradientTape() as tape:
        e = tf.reduce_sum(MaxUnpooling2D(2)([values, argmax]) * g)
    grad = tape.gradient(e, values).numpy()
    # dE/dvalues[b, i, j, c] = g[b].flat[argmax[b, i, j, c]].
    expected = np.stack([g[b].reshape(-1)[argmax[b].numpy()] for b in range(2)])
    np.testing.assert_array_equal(grad, expected)
    # And through pooling too: pool -> unpool passes the gradient at the maxima only.
    xv = tf.Variable(x)
    with tf.GradientTape() as tape:
        e = tf.reduce_sum(MaxUnpooling2D(2)(MaxPoolingWithArgmax2D(2)(xv)) * g)
    np.testing.assert_array_equal(
        tape.gradient(e, xv).numpy(), np.where(_numpy_max_unpool(x, 2) != 0, g, 0)
    )


def test_up_sampling_batch_channels_against_numpy_and_keras():
    x = np.random.default_rng(3).normal(size=(2, 3, 5, 4)).astype("float32")
    nearest = NearestNeighborUnpooling2D(3)(x).numpy()
    np.testing.assert_array_equal(nearest, x.repeat(3, axis=1).repeat(3, axis=2))
    np.testing.assert_array_equal(nearest, keras.layers.UpSampling2D(3)(x))
    nails = BedOfNailsUnpooling2D(3)(x).numpy()
    assert nails.shape == (2, 9, 15, 4)
    np.testing.assert_array_equal(nails[:, ::3, ::3], x)
    nails[:, ::3, ::3] = 0
    assert not nails.any()  # zeros everywhere else


def test_layers_in_a_function_with_unknown_batch_and_size():
    layer_pool, layer_unpool = MaxPoolingWithArgmax2D(2), MaxUnpooling2D(2)
    f = tf.function(
        lambda x: layer_unpool(layer_pool(x)),
        input_signature=[tf.TensorSpec((None, None, None, 2), tf.float32)],
    )
    for shape in [(1, 4, 4, 2), (3, 6, 2, 2)]:
        x = np.random.default_rng(4).normal(size=shape).astype("float32")
        np.testing.assert_array_equal(f(x), _numpy_max_unpool(x, 2))
    assert f.experimental_get_tracing_count() == 1


def test_get_config_round_trip_and_errors():
    for layer in [
        MaxPoolingWithArgmax2D(3, strides=2, padding="same"),
        MaxUnpooling2D(2, output_size=(5, 7)),
        BedOfNailsUnpooling2D(3),
        NearestNeighborUnpooling2D(4),
    ]:
        clone = layer.__class__.from_config(layer.get_config())
        assert clone.get_config() == layer.get_config()
    with pytest.raises(ValueError, match="size=0"):
        BedOfNailsUnpooling2D(0)
    with pytest.raises(ValueError, match="padding='full'"):
        MaxPoolingWithArgmax2D(2, padding="full")
    with pytest.raises(ValueError, match="output_size"):
        MaxUnpooling2D(output_size=(4,))


# ---------------------------------------------------------------------- transposed convolution


def _transposed(kernel, strides, padding, x):
    """keras.layers.Conv2DTranspose without bias, with `kernel` [kh, kw, C_out, C_in]."""
    layer = keras.layers.Conv2DTranspose(
        kernel.shape[2], kernel.shape[:2], strides=strides, padding=padding, use_bias=False
    )
    layer.build(x.shape)
    layer.kernel.assign(kernel)
    return layer(x).numpy()


def test_transposed_convolution_by_hand():
    # Stride 2, 2x2 kernel [[1, 10], [100, 1000]]: each input value paints value * K onto its
    # own 2x2 block, y[2i + m, 2j + n] = x[i, j] K[m, n] (no overlap):
    #   x = [[1, 2], [3, 4]] ->
    #   [[  1,   10,   2,   20],
    #    [100, 1000, 200, 2000],
    #    [  3,   30,   4,   40],
    #    [300, 3000, 400, 4000]]
    x = np.array([[1, 2], [3, 4]], "float32")[None, :, :, None]
    k = np.array([[1, 10], [100, 1000]], "float32")[:, :, None, None]
    expected = [[1, 10, 2, 20], [100, 1000, 200, 2000], [3, 30, 4, 40], [300, 3000, 400, 4000]]
    np.testing.assert_array_equal(_transposed(k, 2, "valid", x)[0, :, :, 0], expected)
    # A 3x3 kernel of ones at stride 2 overlaps by one pixel: overlaps add up.
    #   x = [[1, 2]] (1x2) -> 3x5 rows [1, 1, 1+2, 2, 2] = [1, 1, 3, 2, 2].
    y = _transposed(
        np.ones((3, 3, 1, 1), "float32"), 2, "valid", np.array([[[[1], [2]]]], "float32")
    )
    np.testing.assert_array_equal(y[0, :, :, 0], [[1, 1, 3, 2, 2]] * 3)


@pytest.mark.parametrize("kernel_size, padding", [(2, "valid"), (3, "valid"), (4, "same")])
def test_transposed_convolution_is_the_adjoint_of_a_strided_convolution(kernel_size, padding):
    # y = C x with C the stride-2 convolution; the transposed convolution applies C^T: for any
    # z, C^T z = d/dx <C x, z>, the gradient backpropagation computes.
    rng = np.random.default_rng(5)
    k = rng.normal(size=(kernel_size, kernel_size, 3, 4)).astype("float32")  # [kh, kw, C_x, C_y]
    x = tf.Variable(rng.normal(size=(2, 8, 8, 3)).astype("float32"))
    with tf.GradientTape() as tape:
        y = tf.nn.conv2d(x, k, strides=2, padding=padding.upper())
        z = tf.constant(rng.normal(size=y.shape).astype("float32"))
        inner = tf.reduce_sum(y * z)
    adjoint = tape.gradient(inner, x).numpy()
    # Conv2DTranspose's kernel is [kh, kw, filters (= C_x), inputs (= C_y)]: the same array.
    transposed = _transposed(k, 2, padding, z)
    if kernel_size == 3:  # (3 - 1) * 2 + 3 = 7: the conv ignored x's last row/column
        adjoint = adjoint[:, :7, :7]
    np.testing.assert_allclose(transposed, adjoint, rtol=1e-5, atol=1e-5)
    # <C x, z> == <x, C^T z>.
    np.testing.assert_allclose(
        float(inner),
        float(np.sum(x.numpy()[:, : adjoint.shape[1], : adjoint.shape[2]] * transposed)),
        rtol=1e-4,
    )
