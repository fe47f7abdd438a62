"""Conformance cases of chapter 2's regularization layers (mp.training.regularization).

Each case is `(name, build_fn, input_shape, output_shape, trainable_params)`.
A layer without weights sits in a tiny model with a dense or convolutional
layer, so that the checkpoint test (which perturbs the weights) has weights
that change the output; the random layers take fixed seeds. The parameter
counts are worked out in the comments.
"""

import keras

from mp.training.regularization import (
    L1L2,
    BatchNormalization,
    Dropout,
    GaussianNoise,
    RandomFlip,
    RandomShift,
)


def _dropout_dense():
    inputs = keras.Input((8,))
    x = keras.layers.Dense(4, activation="tanh")(inputs)
    return keras.Model(inputs, Dropout(0.5, seed=1)(x), name="dropout_dense")


def _batch_norm_dense():
    inputs = keras.Input((6,))
    x = keras.layers.Dense(4, use_bias=False)(inputs)
    return keras.Model(inputs, BatchNormalization(momentum=0.9)(x), name="batch_norm_dense")


def _batch_norm_conv():
    inputs = keras.Input((6, 6, 2))
    x = keras.layers.Conv2D(3, 3, padding="same")(inputs)
    return keras.Model(inputs, BatchNormalization()(x), name="batch_norm_conv")


def _noise_dense():
    inputs = keras.Input((5,))
    x = GaussianNoise(0.1, seed=2)(inputs)
    return keras.Model(inputs, keras.layers.Dense(3)(x), name="noise_dense")


def _augmented_cnn():
    penalty = L1L2(l1=1e-4, l2=1e-3)
    inputs = keras.Input((8, 8, 1))
    x = RandomShift(2, seed=3)(inputs)
    x = RandomFlip(seed=4)(x)
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", kernel_regularizer=penalty)(x)
    x = keras.layers.Flatten()(x)
    logits = keras.layers.Dense(10, kernel_regularizer=penalty)(x)
    return keras.Model(inputs, logits, name="augmented_cnn")


CASES = [
    # Dense 8*4+4 = 36; dropout has no weights.
    ("dropout_dense", _dropout_dense, (8,), (4,), 36),
    # Dense without bias 6*4 = 24; gamma and beta 4 + 4 = 8 (the moving mean and
    # variance are not trainable). 24 + 8 = 32.
    ("batch_norm_dense", _batch_norm_dense, (6,), (4,), 32),
    # Conv 3*3*2*3+3 = 57; gamma and beta 3 + 3 = 6. 57 + 6 = 63.
    ("batch_norm_conv", _batch_norm_conv, (6, 6, 2), (6, 6, 3), 63),
    # Dense 5*3+3 = 18.
    ("gaussian_noise_dense", _noise_dense, (5,), (3,), 18),
    # Conv 3*3*1*4+4 = 40; "same" keeps 8x8, flatten 8*8*4 = 256; dense 256*10+10
    # = 2,570. 40 + 2,570 = 2,610.
    ("augmented_cnn", _augmented_cnn, (8, 8, 1), (10,), 2_610),
]
