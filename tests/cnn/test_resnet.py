"""Tests of mp.cnn.resnet: parameter counts against Keras and the paper, end points, shapes,
fully convolutional features, and the identity shortcut."""

import keras
import numpy as np
import pytest

from mp.cnn import get_model
from mp.cnn.resnet import (
    basic_block,
    bottleneck_block,
    resnet18,
    resnet18_small,
    resnet34,
    resnet50,
    resnet_cifar,
    stage_outputs,
)
from tests.shapes import shapes_only


def _counts(model):
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    return model.count_params(), trainable


@pytest.fixture(scope="module")
def resnet50_pair():
    """Our resnet50 and Keras' ResNet50 at 224x224x3, 1000 classes (built once: ~5 s)."""
    keras.utils.set_random_seed(0)
    return resnet50((224, 224, 3), 1000), keras.applications.ResNet50(weights=None)


def test_resnet50_parameter_counts_match_keras(resnet50_pair):
    ours, reference = resnet50_pair
    assert ours.count_params() == reference.count_params() == 25_636_712
    assert _counts(ours)[1] == _counts(reference)[1] == 25_583_592
    # Non-trainable: the moving mean and variance of every batch norm channel.
    assert ours.count_params() - _counts(ours)[1] == 53_120
    # Keras' convention: every conv has a bias (useless before a batch norm). Per stage of
    # filters f and n bottleneck blocks: n * (f + f + 4f) + 4f (projection); stem 64:
    # 64 + (3*384 + 256) + (4*768 + 512) + (6*1536 + 1024) + (3*3072 + 2048) = 26,560,
    # so without biases 25,583,592 - 26,560 = 25,557,032 trainable, the paper's count.
    biases = [layer.bias for layer in ours.layers if isinstance(layer, keras.layers.Conv2D)]
    assert sum(int(b.shape[0]) for b in biases) == 26_560


def test_resnet50_computes_keras_function_with_copied_weights(resnet50_pair):
    ours, reference = resnet50_pair
    weighted = {layer.name for layer in reference.layers if layer.weights}
    assert weighted == {layer.name for layer in ours.layers if layer.weights}
    for name in weighted:
        ours.get_layer(name).set_weights(reference.get_layer(name).get_weights())
    x = np.random.default_rng(0).normal(size=(1, 224, 224, 3)).astype("float32")
    features = lambda m: keras.Model(m.input, m.get_layer("conv5_block3_out").output)(x)
    np.testing.assert_allclose(features(ours), features(reference), rtol=1e-4, atol=1e-4)
    # Keras ends with a softmax; ours returns the logits.
    logits = ours(x)
    assert logits.shape == (1, 1000)
    probabilities = keras.ops.softmax(logits)
    np.testing.assert_allclose(probabilities, reference(x), rtol=1e-4, atol=1e-6)


def test_resnet18_and_resnet34_parameter_counts():
    # ResNet-18, no conv biases, BN 2 trainable + 2 moving values per channel:
    #   stem 7*7*3*64 = 9,408 + BN 128 = 9,536
    #   conv2: 2 blocks * (2 * 3*3*64*64 + 2*128) = 2 * 73,984 = 147,968
    #   conv3: 3*3*64*128 + 3*3*128*128 + 64*128 + 3*256 = 230,144; + (2 * 147,456 + 512)
    #          = 295,424 -> 525,568
    #   conv4: 294,912 + 589,824 + 32,768 + 1,536 = 919,040; + 1,180,672 -> 2,099,712
    #   conv5: 1,179,648 + 2,359,296 + 131,072 + 3,072 = 3,673,088; + 4,720,640 -> 8,393,728
    #   logits 512*1000 + 1000 = 513,000. Sum: 11,689,512 (the paper's ~11.7M).
    # Moving statistics: 2 * (64 + 2*2*64 + 5*128 + 5*256 + 5*512) = 2 * 4,800 = 9,600.
    with shapes_only():
        model = resnet18((224, 224, 3), 1000)
    assert _counts(model) == (11_689_512 + 9_600, 11_689_512)
    # ResNet-34, blocks [3, 4, 6, 3]: each extra basic block of width w adds 2 * 9 * w^2 + 4w:
    #   conv2 +1 * 73,984; conv3 +2 * 295,424; conv4 +4 * 1,180,672; conv5 +1 * 4,720,640
    #   11,689,512 + 73,984 + 590,848 + 4,722,688 + 4,720,640 = 21,797,672 (paper: ~21.8M).
    # Moving statistics: 9,600 + 2 * (2*64 + 4*128 + 8*256 + 2*512) = 9,600 + 7,424 = 17,024.
    with shapes_only():
        model = resnet34((224, 224, 3), 1000)
    assert _counts(model) == (21_797_672 + 17_024, 21_797_672)


def test_end_points_follow_keras_names_and_shapes():
    with shapes_only():
        model = resnet18((224, 224, 3), None, pooling=None)
    shapes = {name: tuple(t.shape[1:]) for name, t in stage_outputs(model).items()}
    # 224 -> 112 (conv 7x7/2) -> 56 (max-pool 3x3/2) -> 56, 28, 14, 7 (stages).
    assert shapes == {
        "conv1": (112, 112, 64),
        "conv2": (56, 56, 64),
        "conv3": (28, 28, 128),
        "conv4": (14, 14, 256),
        "conv5": (7, 7, 512),
    }
    assert stage_outputs(model)["conv5"] is model.get_layer("conv5_block2_out").output
    assert model.get_layer("pool1_pool").output.shape[1:] == (56, 56, 64)
    assert model.output.shape[1:] == (7, 7, 512)
    # The ImageNet stem on a small image: 32 -> 16 (conv 7x7/2) -> 8 (pool) -> 8, 4, 2, 1.
    small = resnet18((32, 32, 3), None, pooling=None)
    assert small(np.zeros((1, 32, 32, 3), "float32")).shape == (1, 1, 1, 512)


@pytest.mark.parametrize(
    "name, input_shape, kwargs, features",
    [
        ("resnet_cifar", (8, 8, 1), {"depth": 8}, (2, 2, 64)),  # 8 -> 8, 4, 2
        ("resnet_cifar", (28, 28, 1), {}, (7, 7, 64)),  # 28 -> 28, 14, 7
        ("resnet_cifar", (32, 32, 3), {}, (8, 8, 64)),
        ("resnet18_small", (28, 28, 1), {}, (4, 4, 512)),  # 28 -> 28, 14, 7, 4
    ],
)
def test_output_shapes(name, input_shape, kwargs, features):
    x = np.zeros((2, *input_shape), "float32")
    assert get_model(name, input_shape, 10, **kwargs)(x).shape == (2, 10)
    assert get_model(name, input_shape, None, **kwargs)(x).shape == (2, features[-1])
    feature_map = get_model(name, input_shape, None, pooling=None, **kwargs)
    assert feature_map(x).shape == (2, *features)


def test_fully_convolutional_features_on_larger_inputs():
    keras.utils.set_random_seed(1)
    fixed = resnet_cifar((8, 8, 1), None, depth=8, pooling=None)
    free = resnet_cifar((None, None, 1), None, depth=8, pooling=None)
    assert fixed.count_params() == free.count_params()
    free.set_weights(fixed.get_weights())
    small = np.random.default_rng(0).normal(size=(2, 8, 8, 1)).astype("float32")
    np.testing.assert_allclose(free(small), fixed(small), rtol=1e-5, atol=1e-5)
    # Total stride 4: 28 -> 7, 36 -> 9.
    assert free(np.zeros((1, 28, 28, 1), "float32")).shape == (1, 7, 7, 64)
    assert free(np.zeros((1, 36, 36, 1), "float32")).shape == (1, 9, 9, 64)


def _block(block, input_shape, filters, stride, **kwargs):
    images = keras.Input(shape=input_shape)
    return keras.Model(images, block(images, filters, stride, name="b", **kwargs))


@pytest.mark.parametrize(
    "block, input_shape, filters",
    [(basic_block, (6, 6, 8), 8), (bottleneck_block, (6, 6, 8), 2)],  # 4 * 2 = 8 channels
)
@pytest.mark.parametrize("training", [False, True])
def test_identity_shortcut_when_shapes_match(block, input_shape, filters, training):
    # With the last gamma of F at 0 (and beta at 0), F(x) = 0 and y = relu(F(x) + x) = relu(x).
    model = _block(block, input_shape, filters, 1, zero_init_residual=True)
    assert not any(layer.name.startswith("b_0_") for layer in model.layers)  # no projection
    x = np.random.default_rng(0).normal(size=(2, *input_shape)).astype("float32")
    np.testing.assert_allclose(model(x, training=training), np.maximum(x, 0), atol=1e-6)
    # With the initial gamma = 1, F(x) != 0.
    assert not np.allclose(_block(block, input_shape, filters, 1)(x), np.maximum(x, 0), atol=1e-3)


def test_projection_shortcut_when_shape_changes():
    model = _block(basic_block, (6, 6, 4), 8, 2, zero_init_residual=True)
    x = np.random.default_rng(0).normal(size=(2, 6, 6, 4)).astype("float32")
    y = model(x)
    assert y.shape == (2, 3, 3, 8)
    # F(x) = 0 again, so y = relu(BN(W_s * x)) with the 1x1 stride-2 projection.
    projection = model.get_layer("b_0_bn")(model.get_layer("b_0_conv")(x))
    np.testing.assert_allclose(y, np.maximum(projection, 0), atol=1e-6)


def test_residual_sum_matches_branch_plus_shortcut():
    # y = relu(F(x) + x) with F read off the block's own layers.
    model = _block(basic_block, (5, 5, 3), 3, 1)
    x = np.random.default_rng(2).normal(size=(1, 5, 5, 3)).astype("float32")
    branch = keras.Model(model.input, model.get_layer("b_2_bn").output)(x)
    np.testing.assert_allclose(model(x), np.maximum(branch + x, 0), atol=1e-5)


def test_resnet18_small_has_no_max_pool():
    model = resnet18_small((28, 28, 1), 10)
    assert not any(isinstance(layer, keras.layers.MaxPooling2D) for layer in model.layers)
    assert model.get_layer("conv1_conv").kernel.shape == (3, 3, 1, 64)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"depth": 21}, "depth must be 6n \\+ 2"),
        ({"pooling": "sum"}, "pooling must be one of"),
        ({"pooling": None, "num_classes": 10}, "A classifier needs pooling"),
        ({"stem": "huge"}, "stem must be"),
        ({"input_shape": (8, 8)}, "input_shape must be"),
    ],
)
def test_bad_arguments(kwargs, message):
    arguments = {"input_shape": (8, 8, 1), "num_classes": None, "depth": 8} | kwargs
    with pytest.raises(ValueError, match=message):
        resnet_cifar(**arguments)
