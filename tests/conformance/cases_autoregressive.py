"""Conformance cases of ch5.3's autoregressive models (mp.generative.nade, .made, .pixelcnn).

Each case is `(name, build_fn, input_shape, output_shape, trainable_params)`; the
counts are worked out in the comments (a kh x kw convolution from c_in to c_out
channels has kh*kw*c_in*c_out + c_out parameters; masked taps are still parameters,
zeroed in `call`). The models return their logits.

The top-left pixel of a causal model sees no input: with Keras' zero biases every
feature there is exactly 0, on ReLU's kink, and the finite-difference check of a
bias fails on a correct gradient. `_biased` gives the biases small non-zero values.
"""

import keras
import numpy as np

from mp.generative.made import MaskedDense, make_made
from mp.generative.nade import make_nade
from mp.generative.pixelcnn import (
    GatedBlock,
    MaskedConv2D,
    make_gated_pixelcnn,
    make_pixelcnn,
)


def _biased(build):
    """`build` with every bias set to a distinct value in [0.05, 0.25] (see above)."""

    def built():
        model = build()
        rng = np.random.default_rng(0)
        for weight in model.trainable_weights:
            if weight.path.endswith("bias"):
                weight.assign(rng.uniform(0.05, 0.25, size=weight.shape).astype(weight.dtype))
        return model

    return built


def _masked_dense():
    # Two masks over 5 inputs and 4 units (degrees as MADE's first hidden layer would draw).
    inputs = keras.Input((5,))
    layer = MaskedDense(
        4, [[1, 2, 3, 4, 5], [3, 1, 5, 2, 4]], [[1, 2, 3, 4], [4, 3, 2, 1]], activation="tanh"
    )
    return keras.Model(inputs, layer(inputs), name="masked_dense")


def _masked_convs():
    inputs = keras.Input((5, 5, 1))
    x = MaskedConv2D(3, 3, "A", activation="relu")(inputs)
    return keras.Model(inputs, MaskedConv2D(2, 3, "B")(x), name="masked_convs")


def _gated_block():
    inputs = keras.Input((5, 5, 1))
    _, h = GatedBlock(2, 3, first=True)((inputs, inputs))
    return keras.Model(inputs, h, name="gated_block")


CASES = [
    # 5*4 + 4 = 24.
    ("masked_dense", _masked_dense, (5,), (4,), 24),
    # 3x3 1->3: 9*3+3 = 30; 3x3 3->2: 9*3*2+2 = 56. 86.
    ("masked_conv2d", _biased(_masked_convs), (5, 5, 1), (5, 5, 2), 86),
    # vertical 2x3 1->4: 6*4+4 = 28; horizontal 1x2 1->4: 2*4+4 = 12; link 1x1 4->4: 20;
    # residual 1x1 2->2: 6. 66.
    ("gated_block", _biased(_gated_block), (5, 5, 1), (5, 5, 2), 66),
    # W 6*4 = 24, b 4, V 6*4 = 24, c 6: 58.
    ("nade", lambda: make_nade((2, 3, 1), 4), (2, 3, 1), (2, 3, 1), 58),
    # hidden 6*5+5 = 35; output 5*6+6 = 36: 71 (the masks add none).
    (
        "made_two_masks",
        lambda: make_made((2, 3, 1), (5,), num_masks=2, seed=0),
        (2, 3, 1),
        (2, 3, 1),
        71,
    ),
    # conv A 3x3 1->4: 40; block: 1x1 4->2: 10, 3x3 B 2->2: 38, 1x1 2->4: 12; head 1x1 4->4:
    # 20; logits 4->1: 5. 125.
    (
        "pixelcnn",
        _biased(
            lambda: make_pixelcnn((5, 5, 1), filters=2, num_blocks=1, first_kernel=3, head_units=4)
        ),
        (5, 5, 1),
        (5, 5, 1),
        125,
    ),
    # As above with 4 logits per pixel: 4*4+4 = 20 instead of 5. 140.
    (
        "pixelcnn_categorical",
        _biased(
            lambda: make_pixelcnn(
                (5, 5, 1), filters=2, num_blocks=1, first_kernel=3, head_units=4, num_levels=4
            )
        ),
        (5, 5, 1),
        (5, 5, 4),
        140,
    ),
    # layer 0: as gated_block, 66; layer 1: vertical 2x3 2->4: 6*2*4+4 = 52, horizontal
    # 1x2 2->4: 2*2*4+4 = 20, link 20, residual 6: 98; head 1x1 2->4: 12; logits 4->1: 5.
    # 66+98+12+5 = 181.
    (
        "gated_pixelcnn",
        _biased(
            lambda: make_gated_pixelcnn(
                (5, 5, 1), filters=2, num_layers=2, first_kernel=3, head_units=4
            )
        ),
        (5, 5, 1),
        (5, 5, 1),
        181,
    ),
]
