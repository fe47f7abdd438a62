"""The classic small CNN: conv-pool-conv-pool-dense.

    image -> conv 5x5, 32, ReLU -> max-pool 2x2 -> conv 5x5, 64, ReLU
          -> max-pool 2x2 -> dense 1024, ReLU -> dropout 0.4 -> dense logits

This is the network of TensorFlow's original layers tutorial for MNIST; on
Fashion-MNIST it reaches about 91-92% test accuracy. Convolutions use "same"
padding, so each max-pool halves the image: 28x28 -> 14x14 -> 7x7 (and the
8x8 digits: 8 -> 4 -> 2). The last layer returns logits, no softmax: the loss
takes logits because that form is numerically stable (ch7.1).

Course: ch3 Convolutional Neural Networks, ch3.1 Layers and Architectures.
"""

import keras

from mp.cnn.registry import register


@register("classic_cnn")
def classic_cnn(
    input_shape=(28, 28, 1),
    num_classes=10,
    *,
    filters=(32, 64),
    kernel_size=5,
    dense_units=1024,
    dropout=0.4,
    name="classic_cnn",
):
    """Builds the classic CNN.

    Args:
      input_shape: `(height, width, channels)`; height and width divisible by 4.
      num_classes: size of the logits; `None` returns the dense features.
      filters: channels of the two convolutions.
      kernel_size: side of the square kernels.
      dense_units: width of the hidden dense layer.
      dropout: drop rate before the logits, in [0, 1).
      name: the model's name.

    Returns:
      A functional `keras.Model` mapping images to logits (or features).

    Raises:
      ValueError: for sizes that do not fit.
    """
    height, width = input_shape[0], input_shape[1]
    if height % 4 or width % 4:
        raise ValueError(
            "classic_cnn pools twice by 2, so height and width must be divisible by 4. "
            f"Received: input_shape={tuple(input_shape)}"
        )
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1). Received: dropout={dropout}")
    if len(filters) != 2 or min(filters) <= 0 or dense_units <= 0:
        raise ValueError(
            "filters must be two positive integers and dense_units positive. "
            f"Received: filters={filters}, dense_units={dense_units}"
        )
    images = keras.Input(shape=tuple(input_shape), name="images")
    x = images
    for i, f in enumerate(filters, start=1):
        x = keras.layers.Conv2D(f, kernel_size, padding="same", activation="relu", name=f"conv{i}")(
            x
        )
        x = keras.layers.MaxPooling2D(2, name=f"pool{i}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(dense_units, activation="relu", name="dense")(x)
    if num_classes is None:
        return keras.Model(images, x, name=name)
    x = keras.layers.Dropout(dropout, name="dropout")(x)
    logits = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(images, logits, name=name)
