"""Tests of mp.cnn.vgg: parameter counts against Keras' VGG16, end points, shapes, learning."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import mp.data
from mp.cnn import get_model
from mp.cnn.vgg import CONFIGS, vgg, vgg11, vgg16, vgg_small
from mp.engine import ClassificationTask, Trainer
from tests.shapes import shapes_only


def _params(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def test_vgg16_parameters_equal_keras_applications():
    # keras.applications.VGG16(weights=None) has 138,357,544 parameters, and
    # 14,714,688 with include_top=False (numbers Keras reports, checked here live).
    with shapes_only():
        reference = keras.applications.VGG16(weights=None)
        features_reference = keras.applications.VGG16(weights=None, include_top=False)
        assert reference.count_params() == 138_357_544
        assert features_reference.count_params() == 14_714_688
        assert _params(vgg16((224, 224, 3), 1000)) == reference.count_params()
        assert _params(vgg16((224, 224, 3), None)) == features_reference.count_params()


def test_vgg11_parameters_by_hand():
    # Configuration A, conv k*k*c_in*c_out + c_out:
    #   block1 3*3*3*64+64 = 1,792
    #   block2 3*3*64*128+128 = 73,856
    #   block3 3*3*128*256+256 = 295,168; 3*3*256*256+256 = 590,080
    #   block4 3*3*256*512+512 = 1,180,160; 3*3*512*512+512 = 2,359,808
    #   block5 2 * 2,359,808 = 4,719,616
    #   convolutions: 1,792+73,856+295,168+590,080+1,180,160+2,359,808+4,719,616 = 9,220,480
    # 224 -> 7 after five pools: fc1 7*7*512*4096+4096 = 102,764,544;
    # fc2 4096*4096+4096 = 16,781,312; logits 4096*1000+1000 = 4,097,000.
    # Total 9,220,480 + 102,764,544 + 16,781,312 + 4,097,000 = 132,863,336.
    with shapes_only():
        assert _params(vgg11((224, 224, 3), 1000)) == 132_863_336
        assert _params(vgg11((224, 224, 3), None)) == 9_220_480


def test_vgg16_features_match_keras_with_copied_weights():
    """Same layers in the same order: Keras' weights give Keras' features (32x32 keeps it cheap)."""
    keras.utils.set_random_seed(0)
    reference = keras.applications.VGG16(weights=None, include_top=False, input_shape=(32, 32, 3))
    model = vgg16((32, 32, 3), None)
    for layer in model.layers[1:]:
        layer.set_weights(reference.get_layer(layer.name).get_weights())
    x = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(model(x), reference(x), rtol=1e-5, atol=1e-5)


def test_end_points_named_like_keras():
    with shapes_only():
        model = vgg16((224, 224, 3), 1000)
    expected = [
        f"block{b}_conv{c}" for b, n in enumerate((2, 2, 3, 3, 3), 1) for c in range(1, n + 1)
    ]
    expected += [f"block{b}_pool" for b in range(1, 6)] + ["fc1", "fc2", "logits"]
    names = {layer.name for layer in model.layers}
    assert set(expected) <= names
    assert model.get_layer("block4_pool").output.shape == (None, 14, 14, 512)  # 224 / 2^4


@pytest.mark.parametrize(
    "builder, input_shape, num_classes, expected",
    [
        # Pools while a size is >= 2: 8 -> 4 -> 2 -> 1 (block3); 28 -> 14 -> 7 -> 3.
        (vgg_small, (8, 8, 1), 10, (10,)),
        (vgg_small, (8, 8, 1), None, (1, 1, 128)),
        (vgg_small, (28, 28, 1), None, (3, 3, 128)),
        # Five blocks: 8 -> 4 -> 2 -> 1 -> 1 -> 1 and 28 -> 14 -> 7 -> 3 -> 1 -> 1.
        (vgg16, (8, 8, 1), None, (1, 1, 512)),
        (vgg16, (28, 28, 1), None, (1, 1, 512)),
        (vgg16, (28, 28, 1), 10, (10,)),
        (vgg11, (32, 32, 3), None, (1, 1, 512)),  # 32 / 2^5 = 1
        (vgg16, (224, 224, 3), None, (7, 7, 512)),
    ],
)
def test_output_shapes(builder, input_shape, num_classes, expected):
    model = builder(input_shape, num_classes)
    assert model.output.shape == (None, *expected)
    x = np.zeros((2, *input_shape), "float32")
    assert model(x).shape == (2, *expected)


def test_skipped_pools_keep_their_names():
    # 8x8 digits: block4 and block5 start at 1x1, so their pools are identities.
    model = vgg16((8, 8, 1), None)
    assert isinstance(model.get_layer("block3_pool"), keras.layers.MaxPooling2D)
    assert isinstance(model.get_layer("block4_pool"), keras.layers.Identity)
    assert isinstance(model.get_layer("block5_pool"), keras.layers.Identity)


def test_fully_convolutional_features_grow_with_the_input():
    model = vgg_small((None, None, 3), None)  # three pools of 2
    small = np.zeros((1, 32, 32, 3), "float32")
    large = np.zeros((1, 64, 48, 3), "float32")
    assert model(small).shape == (1, 4, 4, 128)  # 32 / 8
    assert model(large).shape == (1, 8, 6, 128)  # 64 / 8, 48 / 8
    gap = vgg_small((None, None, 3), 10, classifier="gap")
    assert gap(small).shape == gap(large).shape == (1, 10)


def test_options_and_registry():
    # vgg_small at 28x28: convs 1*9*32+32 = 320, 32*9*32+32 = 9,248, 32*9*64+64 = 18,496,
    # 64*9*64+64 = 36,928, 64*9*128+128 = 73,856, 128*9*128+128 = 147,584 (sum 286,432);
    # fc1 3*3*128*256+256 = 295,168; fc2 256*256+256 = 65,792; logits 256*10+10 = 2,570.
    # Total 286,432 + 295,168 + 65,792 + 2,570 = 649,962.
    assert _params(get_model("vgg_small", (28, 28, 1), 10)) == 649_962
    # GAP head: 286,432 + 128*10+10 = 287,722.
    assert _params(vgg_small((28, 28, 1), 10, classifier="gap")) == 287_722
    # Batch norm: convolutions lose their biases (32+32+64+64+128+128 = 448) and each
    # gains gamma and beta (2*448 = 896 trainable): 649,962 - 448 + 896 = 650,410.
    bn = vgg_small((28, 28, 1), 10, batch_norm=True)
    assert _params(bn) == 650_410
    assert "block1_conv1_bn" in {layer.name for layer in bn.layers}
    # width 0.5 halves every filter of configuration "D": block1 3*3*3*32+32 = 896.
    half = vgg((32, 32, 3), None, config="D", width=0.5)
    assert half.get_layer("block1_conv1").count_params() == 896
    assert len(CONFIGS["A"]) == len(CONFIGS["D"]) == 5
    for kwargs in ({"dropout": 1.0}, {"classifier": "mlp"}, {"width": 0}):
        with pytest.raises(ValueError, match="Received"):
            vgg_small((28, 28, 1), 10, **kwargs)
    with pytest.raises(ValueError, match="Received: config='Z'"):
        vgg((28, 28, 1), 10, config="Z")


def test_vgg_small_learns_digits(tmp_path):
    """A few hundred steps with the engine: > 0.9 test accuracy on the 8x8 digits."""
    keras.utils.set_random_seed(0)
    train = mp.data.load(
        "digits", "train", batch_size=32, shuffle=True, seed=0, repeat=True, drop_remainder=True
    )
    test = mp.data.load("digits", "test", batch_size=450)
    task = ClassificationTask(
        vgg_small((8, 8, 1), 10, dense_units=128), keras.optimizers.Adam(1e-3)
    )
    trainer = Trainer(task, tmp_path, train_steps=300, log_every=100, progress=False)
    result = trainer.fit(train, test)
    assert result["eval"]["top1"] > 0.9, result["eval"]
    first_loss = trainer.history["train"][0][1]["loss/total"]
    assert result["train"]["loss/total"] < first_loss
