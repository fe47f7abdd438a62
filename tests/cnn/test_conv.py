"""Tests of mp.cnn.conv: correlation vs convolution, dilation, backward pass, receptive field."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mp.cnn.conv import (
    LayerSpec,
    conv_backward_input,
    conv_backward_kernel,
    convolve2d,
    correlate2d,
    dilate_kernel,
    flip180,
    layers_from_keras,
    receptive_field,
)

RNG = np.random.default_rng(0)


def _tf_conv(x, k, padding="VALID", dilation=1):
    """tf.nn.conv2d on a `[N, H, W, C]` NumPy batch and a `[kh, kw, C_in, C_out]` kernel."""
    return tf.nn.conv2d(x, k, strides=1, padding=padding, dilations=dilation).numpy()


# ------------------------------------------------------------------ correlation vs convolution


def test_correlation_by_hand():
    # X = [[1, 2, 3], [4, 5, 6], [7, 8, 9]], K = [[1, 0], [0, -1]] (valid, 2x2 output):
    # correlation: Y[i, j] = X[i, j] - X[i+1, j+1]: 1-5, 2-6, 4-8, 5-9 = -4 everywhere.
    # convolution: the kernel flipped, [[-1, 0], [0, 1]]: Y[i, j] = X[i+1, j+1] - X[i, j] = +4.
    x = np.arange(1.0, 10.0).reshape(3, 3)
    k = np.array([[1.0, 0.0], [0.0, -1.0]])
    np.testing.assert_array_equal(correlate2d(x, k), np.full((2, 2), -4.0))
    np.testing.assert_array_equal(convolve2d(x, k), np.full((2, 2), 4.0))


@pytest.mark.parametrize("padding", ["valid", "same", "full"])
@pytest.mark.parametrize("dilation", [1, 2])
def test_convolution_is_correlation_with_flipped_kernel(padding, dilation):
    x = RNG.normal(size=(9, 8))
    k = RNG.normal(size=(3, 2))
    np.testing.assert_allclose(
        convolve2d(x, k, padding, dilation), correlate2d(x, flip180(k), padding, dilation)
    )
    xc = RNG.normal(size=(2, 9, 8, 3))
    kc = RNG.normal(size=(3, 3, 3, 4))
    np.testing.assert_allclose(
        convolve2d(xc, kc, padding, dilation), correlate2d(xc, flip180(kc), padding, dilation)
    )


def test_symmetric_kernel_makes_them_equal_asymmetric_does_not():
    x = RNG.normal(size=(7, 7))
    # Point symmetric: K(m, n) = K(-m, -n) around the centre, i.e. K == flip180(K).
    symmetric = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 4.0], [3.0, 2.0, 1.0]])
    assert np.array_equal(symmetric, flip180(symmetric))
    np.testing.assert_allclose(convolve2d(x, symmetric), correlate2d(x, symmetric))
    # A horizontal derivative [[-1, 0, 1]]: flipped it is [[1, 0, -1]], so convolution = -correlation.
    derivative = np.array([[-1.0, 0.0, 1.0]])
    ramp = np.tile(np.arange(5.0), (2, 1))  # X[i, j] = j
    np.testing.assert_array_equal(correlate2d(ramp, derivative), np.full((2, 3), 2.0))  # -j+(j+2)
    np.testing.assert_array_equal(convolve2d(ramp, derivative), np.full((2, 3), -2.0))  # j-(j+2)


@pytest.mark.parametrize("padding", ["valid", "same"])
def test_tf_conv2d_is_our_correlation_not_our_convolution(padding):
    x = RNG.normal(size=(2, 10, 9, 3)).astype("float32")
    k = RNG.normal(size=(3, 4, 3, 5)).astype("float32")  # even width: "same" pads unevenly
    expected = _tf_conv(x, k, padding.upper())
    np.testing.assert_allclose(correlate2d(x, k, padding), expected, rtol=1e-4, atol=1e-4)
    assert not np.allclose(convolve2d(x, k, padding), expected, atol=1e-2)
    # Single image [H, W, C] and single channel [H, W] shapes.
    np.testing.assert_allclose(correlate2d(x[0], k, padding), expected[0], rtol=1e-4, atol=1e-4)
    single = _tf_conv(x[:1, :, :, :1], k[:, :, :1, :1], padding.upper())[0, :, :, 0]
    np.testing.assert_allclose(
        correlate2d(x[0, :, :, 0], k[:, :, 0, 0], padding), single, rtol=1e-4, atol=1e-4
    )


@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("dilation", [2, 3])
def test_dilated_correlation(padding, dilation):
    x = RNG.normal(size=(2, 13, 12, 2)).astype("float32")
    k = RNG.normal(size=(3, 3, 2, 4)).astype("float32")
    ours = correlate2d(x, k, padding, dilation)
    np.testing.assert_allclose(
        ours, _tf_conv(x, k, padding.upper(), dilation), rtol=1e-4, atol=1e-4
    )
    # The holes: the same as an ordinary correlation with zeros between the taps.
    holes = dilate_kernel(k, dilation)
    assert holes.shape[:2] == (2 * dilation + 1, 2 * dilation + 1)  # d (k - 1) + 1
    np.testing.assert_allclose(ours, correlate2d(x, holes, padding), rtol=1e-5, atol=1e-5)


def test_dilate_kernel_by_hand():
    # [[1, 2], [3, 4]] with d = 2: one zero between taps, 3x3.
    np.testing.assert_array_equal(
        dilate_kernel(np.array([[1, 2], [3, 4]]), 2), [[1, 0, 2], [0, 0, 0], [3, 0, 4]]
    )


def test_argument_errors():
    with pytest.raises(ValueError, match="padding=.*'circular'"):
        correlate2d(np.ones((3, 3)), np.ones((2, 2)), padding="circular")
    with pytest.raises(ValueError, match="dilation=0"):
        correlate2d(np.ones((3, 3)), np.ones((2, 2)), dilation=0)
    with pytest.raises(ValueError, match="channels"):
        correlate2d(np.ones((3, 3, 2)), np.ones((2, 2, 3, 1)))
    with pytest.raises(ValueError, match="larger"):
        correlate2d(np.ones((3, 3)), np.ones((4, 4)))


# ----------------------------------------------------------------------------- backward pass


def _tape_gradients(x, k, dy, dilation=1):
    """dE/dX and dE/dK of E = sum(conv2d(X, K) * dY) (so dE/dY = dY) by tf.GradientTape.

    TensorFlow's CPU kernels have no dilated backward pass, so the dilation is
    made by spreading K with zeros inside the tape: `K_d[a, b] = sum_{m,n} S[a, m]
    S[b, n] K[m, n]` with `S[a, m] = 1` where `a = d m` (differentiable in K).
    """
    x, k = tf.Variable(x), tf.Variable(k)
    kh, kw = k.shape[:2]
    spread = lambda size: np.eye(dilation * (size - 1) + 1)[:, ::dilation]  # S: [d(k-1)+1, k]
    with tf.GradientTape() as tape:
        k_dilated = tf.einsum("am,bn,mnio->abio", spread(kh), spread(kw), k)
        e = tf.reduce_sum(tf.nn.conv2d(x, k_dilated, 1, "VALID") * dy)
    return [g.numpy() for g in tape.gradient(e, [x, k])]


@pytest.mark.parametrize("dilation", [1, 2])
def test_backward_single_channel(dilation):
    x = RNG.normal(size=(1, 9, 8, 1))
    k = RNG.normal(size=(3, 2, 1, 1))
    y = correlate2d(x[0, :, :, 0], k[:, :, 0, 0], dilation=dilation)
    dy = RNG.normal(size=y.shape)
    dx, dk = _tape_gradients(x, k, dy[None, :, :, None], dilation)
    np.testing.assert_allclose(conv_backward_input(dy, k[:, :, 0, 0], dilation), dx[0, :, :, 0])
    np.testing.assert_allclose(conv_backward_kernel(x[0, :, :, 0], dy, dilation), dk[:, :, 0, 0])
    # The input gradient is a full convolution of dE/dY with K.
    np.testing.assert_allclose(
        convolve2d(dy, k[:, :, 0, 0], "full", dilation), dx[0, :, :, 0], atol=1e-12
    )


@pytest.mark.parametrize("dilation", [1, 2])
def test_backward_multi_channel_batch(dilation):
    x = RNG.normal(size=(3, 10, 9, 2))
    k = RNG.normal(size=(3, 3, 2, 4))
    dy = RNG.normal(size=correlate2d(x, k, dilation=dilation).shape)
    dx, dk = _tape_gradients(x, k, dy, dilation)
    np.testing.assert_allclose(conv_backward_input(dy, k, dilation), dx, atol=1e-12)
    np.testing.assert_allclose(conv_backward_kernel(x, dy, dilation), dk, atol=1e-12)
    # One image [H, W, C]: the gradients of a batch of one.
    dx1, dk1 = _tape_gradients(x[:1], k, dy[:1], dilation)
    np.testing.assert_allclose(conv_backward_input(dy[0], k, dilation), dx1[0], atol=1e-12)
    np.testing.assert_allclose(conv_backward_kernel(x[0], dy[0], dilation), dk1, atol=1e-12)


def test_backward_by_hand():
    # X = [[1, 2, 3], [4, 5, 6], [7, 8, 9]], K 2x2, dE/dY = [[1, 0], [0, 0]] (only Y[0, 0] matters,
    # Y[0, 0] = sum K[m, n] X[m, n]): dE/dK = X[0:2, 0:2] = [[1, 2], [4, 5]], dE/dX = K in the
    # top-left corner, zeros elsewhere.
    x = np.arange(1.0, 10.0).reshape(3, 3)
    k = np.array([[1.0, 2.0], [3.0, 4.0]])
    dy = np.array([[1.0, 0.0], [0.0, 0.0]])
    np.testing.assert_array_equal(conv_backward_kernel(x, dy), [[1, 2], [4, 5]])
    np.testing.assert_array_equal(conv_backward_input(dy, k), [[1, 2, 0], [3, 4, 0], [0, 0, 0]])


# --------------------------------------------------------------------------- receptive field


def test_receptive_field_recurrence_by_hand():
    # Three 3x3 convs: r = 1 + 2 + 2 + 2 = 7 (a 7x7 with fewer weights, as in VGG).
    assert [r.size for r in receptive_field([(3, 1, 1)] * 3)] == [3, 5, 7]
    # 3x3 s2 then 3x3: r = 1 + 2*1 = 3, j = 2; then r = 3 + 2*2 = 7, j = 2.
    fields = receptive_field([(3, 2, 1), (3, 1, 1)])
    assert [(r.size, r.jump) for r in fields] == [(3, 2), (7, 2)]
    # Dilations 1, 2, 4 of 3x3 kernels (k_eff 3, 5, 9): r = 1 + 2 + 4 + 8 = 15, exponential growth.
    assert receptive_field([(3, 1, 1), (3, 1, 2), (3, 1, 4)])[-1].size == 15
    # Start: a valid 2x2 pool centres unit 0 between pixels 0 and 1 (0.5); a 3x3 conv padded
    # by 1 keeps it: 0.5 + (1 - 1) * 2.
    fields = receptive_field([LayerSpec(2, 2), LayerSpec(3, 1, 1, padding=1)])
    assert [r.start for r in fields] == [0.5, 0.5]
    with pytest.raises(ValueError, match="stride=0"):
        receptive_field([(3, 0, 1)])


def _probe_clone(model):
    """The model with linear activations, average instead of max pooling, and positive weights.

    Then every output is a positive combination of every input pixel in its
    receptive field (no ReLU or max pool cuts a path, nothing cancels), so the
    pixels with nonzero gradient are exactly the receptive field (inside the image).
    """

    def clone(layer):
        config = layer.get_config()
        if isinstance(layer, keras.layers.MaxPooling2D):
            return keras.layers.AveragePooling2D.from_config(config)
        if isinstance(layer, keras.layers.Activation):
            return keras.layers.Activation("linear", name=layer.name)
        if "activation" in config:
            config["activation"] = "linear"
        return layer.__class__.from_config(config)

    probe = keras.models.clone_model(model, clone_function=clone)
    for layer in probe.layers:
        if isinstance(layer, keras.layers.Conv2D):
            kh, kw, c_in, c_out = layer.kernel.shape
            layer.kernel.assign(np.full(layer.kernel.shape, 1.0 / (kh * kw * c_in)))  # an average
            if layer.use_bias:
                layer.bias.assign(np.zeros(layer.bias.shape))
    return probe


def _gradient_extent(probe, layer_name, input_size, unit):
    """Rows and columns of the input with nonzero gradient of unit `(unit, unit, 0)` of a layer."""
    sub = keras.Model(probe.inputs, probe.get_layer(layer_name).output)
    x = tf.Variable(tf.ones((1, input_size, input_size, probe.input_shape[-1])))
    with tf.GradientTape() as tape:
        y = sub(x, training=False)[0, unit, unit, 0]
    g = np.abs(tape.gradient(y, x).numpy()[0]).sum(axis=-1)
    rows, cols = np.nonzero(g.sum(axis=1))[0], np.nonzero(g.sum(axis=0))[0]
    return rows, cols


def _check_probe(model, probe, layer_name, input_size, unit, expect_equal=True):
    """Compares the calculator's field of `layer_name` with the gradient probe's extent."""
    field = receptive_field(layers_from_keras(model, layer_name))[-1]
    rows, cols = _gradient_extent(probe, layer_name, input_size, unit)
    extent = rows[-1] - rows[0] + 1
    assert cols[-1] - cols[0] + 1 == extent
    if expect_equal:  # the field lies inside the image: exactly the computed size and centre
        assert extent == field.size, (layer_name, extent, field)
        assert (rows[0] + rows[-1]) / 2 == field.start + unit * field.jump
    else:  # clipped by the image's borders
        assert extent <= field.size
    return field, extent


def test_receptive_field_of_a_plain_chain_against_gradient_probe():
    model = keras.Sequential(
        [
            keras.Input((48, 48, 1)),
            keras.layers.Conv2D(2, 3, activation="relu", padding="same", name="c1"),
            keras.layers.Conv2D(2, 3, strides=2, padding="same", name="c2"),
            keras.layers.MaxPooling2D(2, name="p1"),
            keras.layers.Conv2D(2, 3, dilation_rate=2, padding="same", name="c3"),
            keras.layers.Conv2D(2, 5, padding="valid", name="c4"),
        ]
    )
    # c1: 3; c2: 5, j 2; p1: 5 + 1*2 = 7, j 4; c3 (k_eff 5): 7 + 4*4 = 23; c4: 23 + 4*4 = 39.
    assert [r.size for r in receptive_field(layers_from_keras(model))] == [3, 5, 7, 23, 39]
    probe = _probe_clone(model)
    # Centres: c2 (pads 0 before) 0 + 1 = 1; p1 1 + 0.5*2 = 2; c3 2; c4 (valid) 2 + 2*4 = 10.
    # Unit 3 of c4 is centred at 10 + 3*4 = 22: rows 3..41, inside the 48x48 input.
    field, _ = _check_probe(model, probe, "c4", 48, unit=3)
    assert (field.size, field.start) == (39, 10.0)
    _check_probe(model, probe, "c3", 48, unit=4)  # centred at 2 + 4*4 = 18: rows 7..29


def test_receptive_field_of_vgg16_against_gradient_probe():
    model = keras.applications.VGG16(weights=None, include_top=False, input_shape=(None, None, 1))
    fields = {r.name: r for r in receptive_field(layers_from_keras(model))}
    # 1 + 2*2 (block1) + 1 (pool) = 6; +2*2*2 + 1*2 = 16; +3*2*4 + 4 = 44; +3*2*8 + 8 = 100;
    # +3*2*16 = 196; pool5 +16 = 212.
    assert fields["block4_pool"].size == 100
    assert fields["block5_conv3"].size == 196 and fields["block5_conv3"].jump == 16
    assert fields["block5_pool"].size == 212
    probe = _probe_clone(model)
    # Unit 7 of block5_conv3 (14x14) is centred at 7.5 + 7 * 16 = 119.5: rows 22..217.
    _check_probe(model, probe, "block5_conv3", 224, unit=7)
    # Unit 3 of block4_pool (14x14 at 224; use 112 -> 7x7) centred at 7.5 + 48: rows 6..105.
    _check_probe(model, probe, "block4_pool", 112, unit=3)


def test_receptive_field_of_resnet50_is_bounded_by_the_main_path():
    model = keras.applications.ResNet50(weights=None, include_top=False, input_shape=(64, 64, 3))
    # conv1 7x7 s2: 7, j 2; pool 3x3 s2: 7 + 2*2 = 11, j 4; three bottlenecks, one 3x3 each:
    # 11 + 3 * 2*4 = 35. The shortcuts (identity or 1x1) skip the 3x3s: their fields are
    # smaller and centred alike, so the union the Add sees is the main path's.
    path = layers_from_keras(model, "conv2_block3_out")
    assert receptive_field(path)[-1].size == 35
    assert "conv2_block3_2_conv" in [spec.name for spec in path]  # the 3x3, not the shortcut
    probe = _probe_clone(model)
    # 64x64: conv2 output 16x16, unit 8 centred at 32, rows 15..49: inside, so equal.
    _check_probe(model, probe, "conv2_block3_out", 64, unit=8)
    # conv3: 35 + 16 (block1's 3x3 at j 8) + 3 * 16 = 99 > 64: clipped by the borders.
    field, extent = _check_probe(model, probe, "conv3_block4_out", 64, unit=4, expect_equal=False)
    assert field.size == 99 and extent < 99
    # The full ResNet50 main path: 483 pixels, jump 32.
    final = receptive_field(layers_from_keras(model))[-1]
    assert (final.size, final.jump) == (483, 32)


def test_layers_from_keras_unknown_layer():
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(1, 3)])
    with pytest.raises(ValueError, match="until='nope'"):
        layers_from_keras(model, "nope")
