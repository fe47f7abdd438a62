"""Conformance cases of VGG and GoogLeNet (mp.cnn.vgg, mp.cnn.inception).

Each case is `(name, build_fn, input_shape, output_shape, trainable_params)`,
in small configurations so that each entry costs a few seconds; the standard
224x224 networks are checked in tests/cnn/test_vgg.py and test_inception.py.
The parameter counts are worked out in the comments.
"""

import keras

from mp.cnn.inception import InceptionModule, googlenet, inception_small
from mp.cnn.vgg import vgg_small


def _inception_module_model():
    """One module with every branch, in a model of its own (for `.keras` saving)."""
    inputs = keras.Input((9, 9, 7))
    return keras.Model(inputs, InceptionModule(4, 3, 5, 2, 6, 3)(inputs), name="inception_module")


def _naive_inception_module_model():
    """The module without 1x1 reductions or pool projection."""
    inputs = keras.Input((6, 6, 3))
    return keras.Model(
        inputs, InceptionModule(2, None, 3, None, 2, None)(inputs), name="naive_inception_module"
    )


CASES = [
    # vgg_small at 8x8: convs 1*9*32+32 = 320, 32*9*32+32 = 9,248, 32*9*64+64 = 18,496,
    # 64*9*64+64 = 36,928, 64*9*128+128 = 73,856, 128*9*128+128 = 147,584: 286,432.
    # Pools 8 -> 4 -> 2 -> 1: fc1 1*1*128*256+256 = 33,024; fc2 256*256+256 = 65,792;
    # logits 256*10+10 = 2,570. Total 286,432 + 33,024 + 65,792 + 2,570 = 387,818.
    ("vgg_small_digits", lambda: vgg_small((8, 8, 1), 10), (8, 8, 1), (10,), 387_818),
    # Features at 28x28: 28 -> 14 -> 7 -> 3, the convolutions alone: 286,432.
    ("vgg_small_features", lambda: vgg_small((28, 28, 1), None), (28, 28, 1), (3, 3, 128), 286_432),
    # Batch norm and the GAP head at 8x8: convs without biases 286,432 - 448 = 285,984,
    # gamma and beta 2*(32+32+64+64+128+128) = 896, logits 128*10+10 = 1,290:
    # 285,984 + 896 + 1,290 = 288,170.
    (
        "vgg_small_bn_gap",
        lambda: vgg_small((8, 8, 1), 10, batch_norm=True, classifier="gap"),
        (8, 8, 1),
        (10,),
        288_170,
    ),
    # C = 7: 1x1 7*4+4 = 32; 7*3+3 + 9*3*5+5 = 24 + 140 = 164; 7*2+2 + 25*2*6+6 = 16 + 306
    # = 322; pool projection 7*3+3 = 24. Total 32 + 164 + 322 + 24 = 542; channels
    # 4 + 5 + 6 + 3 = 18.
    ("inception_module", _inception_module_model, (9, 9, 7), (9, 9, 18), 542),
    # C = 3: 3*2+2 = 8; 9*3*3+3 = 84; 25*3*2+2 = 152. Total 244; channels 2 + 3 + 2 + 3 = 10.
    ("naive_inception_module", _naive_inception_module_model, (6, 6, 3), (6, 6, 10), 244),
    # inception_small (width 0.25) on 8x8 digits, the inference model (no auxiliary heads).
    # Stem: conv1 9*1*16+16 = 160; conv2_reduce 16*16+16 = 272; conv2 9*16*48+48 = 6,960
    # (7,392). Modules with the filters of GOOGLENET_LAYOUT / 4 (f1, r3, f3, r5, f5, fp), each
    # term c_in*c_out + c_out or k*k*c_in*c_out + c_out:
    #   3a C=48  (16, 24, 32, 4, 8, 8)     -> 784 + 1,176+6,944 + 196+808 + 392 = 10,300; out 64
    #   3b C=64  (32, 32, 48, 8, 24, 16)   -> 2,080 + 2,080+13,872 + 520+4,824 + 1,040 = 24,416;
    #                                       out 120
    #   4a C=120 (48, 24, 52, 4, 12, 16)   -> 5,808 + 2,904+11,284 + 484+1,212 + 1,936 = 23,628;
    #                                       out 128
    #   4b C=128 (40, 28, 56, 6, 16, 16)   -> 5,160 + 3,612+14,168 + 774+2,416 + 2,064 = 28,194;
    #                                       out 128
    #   4c C=128 (32, 32, 64, 6, 16, 16)   -> 4,128 + 4,128+18,496 + 774+2,416 + 2,064 = 32,006;
    #                                       out 128
    #   4d C=128 (28, 36, 72, 8, 16, 16)   -> 3,612 + 4,644+23,400 + 1,032+3,216 + 2,064
    #                                       = 37,968; out 132
    #   4e C=132 (64, 40, 80, 8, 32, 32)   -> 8,512 + 5,320+28,880 + 1,064+6,432 + 4,256
    #                                       = 54,464; out 208
    #   5a C=208 (64, 40, 80, 8, 32, 32)   -> 13,376 + 8,360+28,880 + 1,672+6,432 + 6,688
    #                                       = 65,408; out 208
    #   5b C=208 (96, 48, 96, 12, 32, 32)  -> 20,064 + 10,032+41,568 + 2,508+9,632 + 6,688
    #                                       = 90,492; out 256
    # Modules 366,876; logits 256*10+10 = 2,570. Total 7,392 + 366,876 + 2,570 = 376,838.
    ("inception_small_digits", lambda: inception_small((8, 8, 1), 10), (8, 8, 1), (10,), 376_838),
    # A shallow GoogLeNet's features (global average pooling, no heads), 16x16x3, width 1:
    # stem conv1 9*3*64+64 = 1,792, conv2_reduce 4,160, conv2 110,784; module (8, 4, 8, 2, 4,
    # 4) on C=192: 1,544 + 772+296 + 386+204 + 772 = 3,974; 24 channels out.
    # Total 1,792 + 4,160 + 110,784 + 3,974 = 120,710.
    (
        "googlenet_shallow_features",
        lambda: googlenet(
            (16, 16, 3), None, stem="small", layout=(("3a", 8, 4, 8, 2, 4, 4),), aux_heads=False
        ),
        (16, 16, 3),
        (24,),
        120_710,
    ),
]
