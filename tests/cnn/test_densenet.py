"""Tests of mp.cnn.densenet: parameter counts against Keras, channel growth c0 + L*k, shapes,
fully convolutional features, and the concatenation of dense layers."""

import keras
import numpy as np
import pytest

from mp.cnn import get_model
from mp.cnn.densenet import dense_layer, densenet121, densenet_small, transition_block


@pytest.fixture(scope="module")
def densenet121_pair():
    """Our densenet121 and Keras' DenseNet121 at 224x224x3, 1000 classes (built once: ~6 s)."""
    keras.utils.set_random_seed(0)
    return densenet121((224, 224, 3), 1000), keras.applications.DenseNet121(weights=None)


def test_densenet121_parameter_counts_match_keras(densenet121_pair):
    ours, reference = densenet121_pair
    assert ours.count_params() == reference.count_params() == 8_062_504
    trainable = lambda m: sum(int(np.prod(w.shape)) for w in m.trainable_weights)
    assert trainable(ours) == trainable(reference) == 7_978_856


def test_densenet121_computes_keras_function_with_copied_weights(densenet121_pair):
    ours, reference = densenet121_pair
    weighted = {layer.name for layer in reference.layers if layer.weights}
    assert weighted == {layer.name for layer in ours.layers if layer.weights}
    for name in weighted:
        ours.get_layer(name).set_weights(reference.get_layer(name).get_weights())
    x = np.random.default_rng(0).normal(size=(1, 224, 224, 3)).astype("float32")
    features = lambda m: keras.Model(m.input, m.get_layer("relu").output)(x)
    np.testing.assert_allclose(features(ours), features(reference), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(keras.ops.softmax(ours(x)), reference(x), rtol=1e-4, atol=1e-6)


def test_densenet121_channels_after_each_block(densenet121_pair):
    ours, _ = densenet121_pair
    channels = lambda name: ours.get_layer(name).output.shape[1:]
    # c0 + L*k with k = 32, and each transition halves (theta = 0.5) channels and image:
    # 64 + 6*32 = 256 -> 128; 128 + 12*32 = 512 -> 256; 256 + 24*32 = 1024 -> 512;
    # 512 + 16*32 = 1024. Images 56 -> 28 -> 14 -> 7.
    assert channels("conv2_block6_concat") == (56, 56, 256)
    assert channels("pool2_pool") == (28, 28, 128)
    assert channels("conv3_block12_concat") == (28, 28, 512)
    assert channels("pool3_pool") == (14, 14, 256)
    assert channels("conv4_block24_concat") == (14, 14, 1024)
    assert channels("pool4_pool") == (7, 7, 512)
    assert channels("conv5_block16_concat") == (7, 7, 1024)
    assert ours.output.shape[1:] == (1000,)


def test_densenet_small_channels_and_shapes():
    model = densenet_small((28, 28, 1), 10)  # depth 40: (40 - 4) / 6 = 6 layers, k = 12
    channels = lambda name: model.get_layer(name).output.shape[1:]
    # Stem 2k = 24; 24 + 6*12 = 96 -> 48; 48 + 72 = 120 -> 60; 60 + 72 = 132.
    assert channels("conv1_conv") == (28, 28, 24)
    assert channels("conv2_block6_concat") == (28, 28, 96)
    assert channels("pool2_pool") == (14, 14, 48)
    assert channels("conv3_block6_concat") == (14, 14, 120)
    assert channels("pool3_pool") == (7, 7, 60)
    assert channels("conv4_block6_concat") == (7, 7, 132)
    x = np.zeros((2, 28, 28, 1), "float32")
    assert model(x).shape == (2, 10)
    features = get_model("densenet_small", (28, 28, 1), None, pooling=None)
    assert features(x).shape == (2, 7, 7, 132)


def test_fully_convolutional_features_on_larger_inputs():
    keras.utils.set_random_seed(1)
    fixed = densenet_small((8, 8, 1), None, depth=10, growth_rate=4, pooling=None)
    free = densenet_small((None, None, 1), None, depth=10, growth_rate=4, pooling=None)
    free.set_weights(fixed.get_weights())
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 1)).astype("float32")
    np.testing.assert_allclose(free(x), fixed(x), rtol=1e-5, atol=1e-5)
    # Two transitions: total stride 4; channels 8 + 4 = 12 -> 6 + 4 = 10 -> 5 + 4 = 9.
    assert free(np.zeros((1, 28, 28, 1), "float32")).shape == (1, 7, 7, 9)
    assert free(np.zeros((1, 40, 40, 1), "float32")).shape == (1, 10, 10, 9)


@pytest.mark.parametrize("bottleneck", [True, False])
def test_dense_layer_concatenates_its_input_and_k_new_channels(bottleneck):
    images = keras.Input(shape=(5, 5, 7))
    model = keras.Model(images, dense_layer(images, 3, bottleneck=bottleneck, name="d"))
    x = np.random.default_rng(0).normal(size=(2, 5, 5, 7)).astype("float32")
    y = model(x).numpy()
    assert y.shape == (2, 5, 5, 7 + 3)
    np.testing.assert_array_equal(y[..., :7], x)  # earlier features pass unchanged
    new = keras.Model(model.input, model.get_layer("d_2_conv").output)(x)
    np.testing.assert_allclose(y[..., 7:], new, atol=1e-6)
    # BN - ReLU - (1x1 to 4k - BN - ReLU) - 3x3: 4 or 2 weighted layers.
    assert len([layer for layer in model.layers if layer.weights]) == (4 if bottleneck else 2)


def test_transition_compresses_and_halves():
    images = keras.Input(shape=(6, 6, 15))
    model = keras.Model(images, transition_block(images, 0.5, name="t"))
    # floor(0.5 * 15) = 7 channels, 6 -> 3.
    assert model.output.shape[1:] == (3, 3, 7)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"depth": 41}, "depth must be 6L \\+ 4"),
        ({"compression": 0.0}, "compression must be in"),
        ({"pooling": "sum"}, "pooling must be one of"),
        ({"pooling": None, "num_classes": 10}, "A classifier needs pooling"),
        ({"input_shape": (8, 8)}, "input_shape must be"),
    ],
)
def test_bad_arguments(kwargs, message):
    arguments = {"input_shape": (8, 8, 1), "num_classes": None, "depth": 10} | kwargs
    with pytest.raises(ValueError, match=message):
        densenet_small(**arguments)
