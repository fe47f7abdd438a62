"""The multi-layer perceptron (MLP): stacked dense layers.

An MLP maps a flattened input through `L` hidden layers and a linear output:

    h_0 = flatten(x)
    h_l = act(W_l^T h_{l-1} + b_l),   l = 1..L
    logits = W_out^T h_L + b_out

The activation must be non-linear: without it the whole stack is one affine
map written with more parameters. A dense layer from `n_in` to `n_out` units
has `n_in * n_out + n_out` parameters. The output layer has no activation;
the softmax lives inside the loss (`sparse_categorical_cross_entropy_with_logits`).

With `num_classes=None` the builder stops after the last hidden layer and
returns its features, so the same function provides a feature extractor
(for a new head, or for transfer learning).

Course: ch1 Deep Learning Basics; ch2 Training Neural Networks (why the
activation is non-linear)
"""

import keras


def mlp(
    input_shape,
    hidden_units=(256, 128),
    num_classes=10,
    activation="relu",
    dropout=0.0,
    name="mlp",
):
    """Builds a plain MLP classifier that outputs logits.

    Layers: Flatten, then one Dense per entry of `hidden_units` with
    `activation`, then a Dense of `num_classes` logits without activation.
    With `dropout > 0`, Dropout is applied to the input of every Dense layer
    except the first (i.e. after each hidden layer, before the next Dense).

    Example:
        model = mlp((8, 8, 1), hidden_units=(32, 16), num_classes=10)
        logits = model(images)                  # [batch, 10]

    Args:
        input_shape: shape of one example without the batch axis, e.g. (28, 28, 1).
        hidden_units: widths of the hidden layers; may be empty (then the model
            is multinomial logistic regression).
        num_classes: number of output logits, or None to return the features
            of the last hidden layer (the flattened input if there is none).
        activation: activation of the hidden layers (a Keras activation name
            or callable).
        dropout: dropout rate in [0, 1); 0 adds no Dropout layers.
        name: name of the model.

    Returns:
        A functional `keras.Model` mapping [batch, *input_shape] to
        [batch, num_classes] logits, or to [batch, hidden_units[-1]] features
        when `num_classes` is None.

    Raises:
        ValueError: on a non-positive input dimension, hidden width or
            `num_classes`, or on `dropout` outside [0, 1).
    """
    input_shape = tuple(input_shape)
    if not input_shape or any(_not_positive_int(d) for d in input_shape):
        raise ValueError(
            f"input_shape must be a tuple of positive integers. Received: input_shape={input_shape}"
        )
    hidden_units = tuple(hidden_units)
    if any(_not_positive_int(u) for u in hidden_units):
        raise ValueError(
            f"hidden_units must be positive integers. Received: hidden_units={hidden_units}"
        )
    if num_classes is not None and _not_positive_int(num_classes):
        raise ValueError(
            f"num_classes must be a positive integer or None. Received: num_classes={num_classes!r}"
        )
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1). Received: dropout={dropout}")

    inputs = keras.Input(shape=input_shape, name="x")
    x = keras.layers.Flatten(name="flatten")(inputs)
    for i, units in enumerate(hidden_units):
        if i > 0 and dropout > 0:
            x = keras.layers.Dropout(dropout, name=f"dropout_{i}")(x)
        x = keras.layers.Dense(units, activation=activation, name=f"hidden_{i + 1}")(x)
    if num_classes is not None:
        if hidden_units and dropout > 0:
            x = keras.layers.Dropout(dropout, name=f"dropout_{len(hidden_units)}")(x)
        x = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, x, name=name)


def _not_positive_int(value):
    return isinstance(value, bool) or not isinstance(value, int) or value < 1
