"""Logistic regression, binary and multinomial, as a Keras model.

Binary logistic regression models the probability of the positive class as
the sigmoid of an affine score:

    z = w . x + b,   P(y = 1 | x) = sigmoid(z) = 1 / (1 + exp(-z))

The sigmoid maps the real line onto (0, 1), with `sigmoid(-z) = 1 - sigmoid(z)`
and the derivative `sigmoid'(z) = sigmoid(z) * (1 - sigmoid(z))` (at most 1/4,
at z = 0). Maximising the likelihood of the labels is minimising the binary
cross-entropy, a convex function of `(w, b)`: gradient descent finds its
global minimum, and starting from all-zero weights is fine.

Multinomial (softmax) regression has one affine score per class,
`z = W^T x + b` with `W` of shape [num_features, num_classes], and
`P(y = k | x) = softmax(z)_k = exp(z_k) / sum_j exp(z_j)`; its loss is the
multi-class cross-entropy, again convex.

The model returned here outputs the logits `z`, without the sigmoid or
softmax: the losses of `mp.basics.losses` (and TensorFlow's) take logits and
apply the sigmoid / softmax inside, in a numerically stable way.

Course: ch1 Deep Learning Basics (sigmoid function, logistic regression);
ch7.1 TensorFlow tips (outputs without activation, losses on logits)
"""

import keras
import tensorflow as tf


def sigmoid(x):
    """The logistic function `1 / (1 + exp(-x))`, elementwise.

    Computed through `e = exp(-|x|)`, which is at most 1: `1 / (1 + e)` for
    x >= 0 and `e / (1 + e)` for x < 0. Both branches are finite for any x,
    so the value and its gradient stay finite even at x = +-1000.

    Args:
        x: a tensor (or anything convertible to one).

    Returns:
        A tensor of the shape of `x`, values in [0, 1].
    """
    x = tf.convert_to_tensor(x)
    if not x.dtype.is_floating:
        x = tf.cast(x, tf.float32)
    positive = x >= 0
    # exp(-|x|), with -|x| written through the same condition as the branches:
    # tf.abs has derivative 0 at x = 0, which would make sigmoid'(0) = 0.
    e = tf.exp(tf.where(positive, -x, x))
    return tf.where(positive, 1.0 / (1.0 + e), e / (1.0 + e))


def sigmoid_grad(x):
    """Derivative of the sigmoid, `sigmoid(x) * (1 - sigmoid(x))`, elementwise.

    Args:
        x: a tensor (or anything convertible to one).

    Returns:
        A tensor of the shape of `x`, values in [0, 1/4].
    """
    s = sigmoid(x)
    return s * (1.0 - s)


def logistic_regression(input_shape, num_classes=2, l2=0.0, name="logistic_regression"):
    """Builds a logistic regression model that outputs logits.

    The input is flattened and fed to one `Dense` layer without activation.
    With `num_classes=2` the model has a single output, the logit of the
    positive class (train it with `binary_cross_entropy_with_logits`, labels
    in {0, 1}). With `num_classes > 2` it has one logit per class (train it
    with `sparse_categorical_cross_entropy_with_logits`). Weights start at
    zero: the loss is convex, so there is no symmetry to break.

    Example:
        model = logistic_regression((64,), num_classes=10)
        logits = model(x)                       # [batch, 10]
        probabilities = tf.nn.softmax(logits)   # only when you need them

    Args:
        input_shape: shape of one example, without the batch axis, e.g. (64,)
            or (8, 8, 1).
        num_classes: number of classes, at least 2.
        l2: L2 penalty factor on the weights (not the bias): the model's
            `losses` hold `l2 * sum(W ** 2)`.
        name: name of the model.

    Returns:
        A functional `keras.Model` mapping [batch, *input_shape] to logits of
        shape [batch, 1] (binary) or [batch, num_classes].

    Raises:
        ValueError: if `num_classes` is not an integer >= 2, `l2` is negative,
            or `input_shape` has a non-positive dimension.
    """
    input_shape = tuple(input_shape)
    if not input_shape or any(
        isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in input_shape
    ):
        raise ValueError(
            f"input_shape must be a tuple of positive integers. Received: input_shape={input_shape}"
        )
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(
            f"num_classes must be an integer >= 2. Received: num_classes={num_classes!r}"
        )
    if l2 < 0:
        raise ValueError(f"l2 must be >= 0. Received: l2={l2}")

    inputs = keras.Input(shape=input_shape, name="x")
    x = keras.layers.Flatten(name="flatten")(inputs)
    logits = keras.layers.Dense(
        1 if num_classes == 2 else num_classes,
        kernel_initializer="zeros",
        kernel_regularizer=keras.regularizers.L2(l2) if l2 > 0 else None,
        name="logits",
    )(x)
    return keras.Model(inputs, logits, name=name)
