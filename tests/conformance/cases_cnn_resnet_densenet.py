"""Conformance cases of the ResNet and DenseNet families (mp.cnn.resnet, mp.cnn.densenet).

Small configurations only (8x8 inputs, n = 1, a few channels): the standard
ImageNet models are checked in tests/cnn/test_resnet.py and test_densenet.py.
Each case is `(name, build_fn, input_shape, output_shape, trainable_params)`;
the parameter counts are worked out by hand in the comments (batch norm:
2 trainable parameters per channel, gamma and beta).
"""

import keras

from mp.cnn.densenet import densenet_small
from mp.cnn.resnet import basic_block, bottleneck_block, resnet_cifar


def _block_model(block, input_shape, filters, stride):
    images = keras.Input(shape=input_shape)
    return keras.Model(images, block(images, filters, stride, name="block"))


CASES = [
    # ResNet-8 (n = 1), no conv biases, 8 -> 8 -> 4 -> 2. Stem 3*3*1*16 = 144 + BN 32 = 176.
    # conv2 (16 -> 16, identity): 2 * 3*3*16*16 = 4,608 + 2 BN 64 = 4,672.
    # conv3 (16 -> 32, projection): 3*3*16*32 = 4,608 + 3*3*32*32 = 9,216 + 1*1*16*32 = 512
    #   + 3 BN 192 = 14,528. conv4 (32 -> 64): 18,432 + 36,864 + 2,048 + 384 = 57,728.
    # Logits 64*10 + 10 = 650. Sum 176 + 4,672 + 14,528 + 57,728 + 650 = 77,754.
    (
        "resnet8_cifar_digits",
        lambda: resnet_cifar((8, 8, 1), 10, depth=8),
        (8, 8, 1),
        (10,),
        77_754,
    ),
    # Feature map without pooling or logits: 77,754 - 650 = 77,104.
    (
        "resnet8_cifar_feature_map",
        lambda: resnet_cifar((8, 8, 1), None, depth=8, pooling=None),
        (8, 8, 1),
        (2, 2, 64),
        77_104,
    ),
    # Identity shortcut (4 -> 4, stride 1): 2 * 3*3*4*4 = 288 + 2 BN 16 = 304.
    (
        "resnet_basic_block_identity",
        lambda: _block_model(basic_block, (8, 8, 4), 4, 1),
        (8, 8, 4),
        (8, 8, 4),
        304,
    ),
    # Bottleneck, filters 2, stride 2, 8 -> 8 channels, with biases: projection 8*8 + 8 = 72
    # + BN 16; 1x1 8*2 + 2 = 18 + BN 4; 3x3 3*3*2*2 + 2 = 38 + BN 4; 1x1 2*8 + 8 = 24 + BN 16.
    # Sum 72 + 16 + 18 + 4 + 38 + 4 + 24 + 16 = 192.
    (
        "resnet_bottleneck_block_projection",
        lambda: _block_model(bottleneck_block, (8, 8, 8), 2, 2),
        (8, 8, 8),
        (4, 4, 8),
        192,
    ),
    # DenseNet-BC-10, k = 4 (one layer per block), 8 -> 8 -> 4 -> 2. Stem 3*3*1*8 = 72.
    # conv2: BN(8) 16 + 1x1 8*16 = 128 + BN(16) 32 + 3x3 3*3*16*4 = 576 = 752; 8 + 4 = 12 ch.
    # pool2: BN(12) 24 + 1x1 12*6 = 72 = 96; 6 ch. conv3: 12 + 96 + 32 + 576 = 716; 10 ch.
    # pool3: 20 + 10*5 = 70; 5 ch. conv4: 10 + 80 + 32 + 576 = 698; 9 ch. Final BN(9) 18.
    # Logits 9*10 + 10 = 100. Sum 72 + 752 + 96 + 716 + 70 + 698 + 18 + 100 = 2,522.
    (
        "densenet_bc10_small_digits",
        lambda: densenet_small((8, 8, 1), 10, depth=10, growth_rate=4),
        (8, 8, 1),
        (10,),
        2_522,
    ),
]
