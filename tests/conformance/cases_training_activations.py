"""Conformance cases of chapter 2's activation layers and initialisers (mp.training).

Each case is `(name, build_fn, input_shape, output_shape, trainable_params)`;
the parameter counts are worked out by hand in the comments. The MLP uses every
activation layer of `activations.get` and every initialiser, so the `.keras`
round trip checks their registration and `get_config`.
"""

import keras

from mp.training import activations
from mp.training.initializers import HeNormal, SmallNormal, XavierNormal, XavierUniform, Zeros


def _prelu_dense():
    return keras.Sequential([keras.Input((5,)), activations.PReLU()], name="prelu_dense")


def _prelu_conv():
    return keras.Sequential(
        [
            keras.Input((6, 6, 3)),
            keras.layers.Conv2D(4, 3, kernel_initializer=XavierNormal(seed=0)),
            activations.PReLU(),  # one alpha per channel
        ],
        name="prelu_conv",
    )


def _mlp_all_activations():
    def dense(units, initializer):
        return keras.layers.Dense(units, kernel_initializer=initializer, bias_initializer=Zeros())

    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Flatten(),
            dense(16, XavierNormal()),
            activations.get("leaky_relu"),
            dense(16, XavierUniform(seed=1)),
            activations.get("tanh"),
            dense(16, HeNormal()),
            activations.get("sigmoid"),
            dense(16, SmallNormal(0.1, seed=2)),
            activations.get("relu"),
            dense(10, XavierNormal(seed=3)),
            activations.get("prelu"),
        ],
        name="mlp_all_activations",
    )


CASES = [
    # One alpha per channel: 5.
    ("prelu_dense", _prelu_dense, (5,), (5,), 5),
    # conv 3*3*3*4+4 = 112, 6 -> 4 with a 3x3 VALID kernel; alpha 4. Sum 116.
    ("prelu_conv", _prelu_conv, (6, 6, 3), (4, 4, 4), 116),
    # 64*16+16 = 1,040; three 16*16+16 = 272 -> 816; 16*10+10 = 170; prelu alpha 10.
    # Sum 1,040 + 816 + 170 + 10 = 2,036.
    ("mlp_all_activations", _mlp_all_activations, (8, 8, 1), (10,), 2_036),
]
