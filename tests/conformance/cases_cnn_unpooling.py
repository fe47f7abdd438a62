"""Conformance cases of the down- and up-sampling layers (mp.cnn.unpooling).

Each case is `(name, build_fn, input_shape, output_shape, trainable_params)`:
small encoder-decoders over 8x8x3 inputs, each with convolutions around the
weightless layers so the checkpoint and gradient tests have weights to move.
The parameter counts are worked out in the comments (a k x k convolution from
c_in to c_out channels has k*k*c_in*c_out + c_out parameters).
"""

import keras

from mp.cnn.unpooling import (
    BedOfNailsUnpooling2D,
    MaxPoolingWithArgmax2D,
    MaxUnpooling2D,
    NearestNeighborUnpooling2D,
)


def _max_unpooling_encoder_decoder():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    pooled, argmax = MaxPoolingWithArgmax2D(2)(x)  # 4x4x4 and where each max was
    x = keras.layers.Conv2D(4, 1)(pooled)  # the decoder may change values, not the shape
    x = MaxUnpooling2D(2)([x, argmax])  # 8x8x4, zeros off the maxima
    outputs = keras.layers.Conv2D(3, 3, padding="same")(x)
    return keras.Model(inputs, outputs, name="max_unpooling_encoder_decoder")


def _bed_of_nails():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same")(inputs)  # 4x4x4
    x = BedOfNailsUnpooling2D(2)(x)  # 8x8x4
    outputs = keras.layers.Conv2D(3, 3, padding="same")(x)
    return keras.Model(inputs, outputs, name="bed_of_nails")


def _nearest_neighbor():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.AveragePooling2D(2)(inputs)  # 4x4x3
    x = keras.layers.Conv2D(4, 1)(x)
    outputs = NearestNeighborUnpooling2D(2)(x)  # 8x8x4
    return keras.Model(inputs, outputs, name="nearest_neighbor")


def _transposed_convolution():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same")(inputs)  # 4x4x4
    outputs = keras.layers.Conv2DTranspose(3, 2, strides=2)(x)  # 8x8x3
    return keras.Model(inputs, outputs, name="transposed_convolution")


CASES = [
    # 3*3*3*4+4 = 112; 1*1*4*4+4 = 20; 3*3*4*3+3 = 111. Sum 243.
    ("max_unpooling_encoder_decoder", _max_unpooling_encoder_decoder, (8, 8, 3), (8, 8, 3), 243),
    # 112 + 111 = 223.
    ("bed_of_nails_unpooling", _bed_of_nails, (8, 8, 3), (8, 8, 3), 223),
    # 1*1*3*4+4 = 16.
    ("nearest_neighbor_unpooling", _nearest_neighbor, (8, 8, 3), (8, 8, 4), 16),
    # 112; transposed 2*2*4*3+3 = 51. Sum 163.
    ("transposed_convolution", _transposed_convolution, (8, 8, 3), (8, 8, 3), 163),
]
