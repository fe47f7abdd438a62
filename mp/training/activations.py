"""Activation functions, their derivatives, and layers that apply them.

A hidden layer computes `a = f(W^T x + b)` with a non-linear `f`; without it a
stack of layers collapses into one affine map. Backpropagation multiplies the
upstream gradient elementwise by `f'(z)` at the pre-activation `z`, so the
shape of `f'` decides how well gradients flow. The functions here are written
from their formulas with TensorFlow ops; `tf.GradientTape` differentiates
them, and each has its analytic derivative next to it for comparison.

    sigmoid(x)    = 1 / (1 + exp(-x))                 sigmoid' = s (1 - s)
    tanh(x)       = (e^x - e^-x) / (e^x + e^-x)        tanh'    = 1 - tanh^2
                  = 2 sigmoid(2x) - 1   (a scaled, shifted sigmoid)
    softmax(v)_i  = exp(v_i) / sum_j exp(v_j)          d s_i / d v_j = s_i (1[i=j] - s_j)
    relu(x)       = max(0, x)                          relu'    = 1[x > 0]
    leaky_relu(x) = x if x >= 0 else alpha x           leaky'   = 1 if x > 0 else alpha
    prelu(x)      = x if x >= 0 else alpha x, alpha learned per channel

Properties worth knowing:

* Sigmoid and tanh saturate: for large |x| their derivative is nearly 0 and
  the gradient through them vanishes. sigmoid' is at most 1/4 (at x = 0).
  Sigmoid outputs are all positive, tanh outputs are centred on 0.
* ReLU does not saturate for x > 0 and costs a comparison. A unit whose
  pre-activation is negative for every input outputs 0 and receives no
  gradient: it is "dead" and stays dead (`mp.training.diagnostics` counts
  them). Leaky ReLU keeps a small slope `alpha` for x < 0, PReLU learns it
  (He et al., 2015, "Delving Deep into Rectifiers", arXiv:1502.01852).
* ReLU and max pooling commute, relu(max(a, b)) = max(relu(a), relu(b)),
  because both are monotone; with average pooling they do not.

Numerics: `exp(-x)` overflows in float32 for x < -88, so `sigmoid` and
`tanh` only ever exponentiate non-positive numbers (one formula for each
sign, selected with `tf.where`); `softmax` subtracts the maximum of `v`
first, which leaves the result unchanged (softmax(v + c) = softmax(v)) and
keeps every exponent <= 0.

Value of the derivatives at the kinks (x = 0, where ReLU has no derivative):
`relu_grad(0) = 0` and `leaky_relu_grad(0) = alpha`, the left slope, as
`tf.nn.relu` and `tf.nn.leaky_relu` use, so the functions here and their
autodiff gradients agree with TensorFlow's everywhere.

`get(name)` returns a fresh Keras layer for `--activation=` flags; the layers
are registered, so a saved `.keras` model that uses them loads after
`import mp.training.activations` (or `import mp`).

Course: ch2.1 Activation Functions
"""

import keras
import tensorflow as tf

ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "prelu")


# ---------------------------------------------------------------- functions


def sigmoid(x):
    """The logistic sigmoid, `1 / (1 + exp(-x))`, elementwise.

    For x >= 0 it uses `1 / (1 + exp(-x))`, for x < 0 the equal form
    `exp(x) / (1 + exp(x))`; either way the exponent is <= 0, so nothing
    overflows (sigmoid(-1000) is 0, not NaN). The argument of each branch is
    clipped to its own sign so the unused branch cannot produce inf either
    (an inf there would turn the gradient into NaN).

    Args:
        x: a float tensor.

    Returns:
        A tensor of the shape of `x` with values in [0, 1].
    """
    x = tf.convert_to_tensor(x)
    e_pos = tf.exp(-tf.maximum(x, 0.0))  # exp(-x) for x >= 0, in (0, 1]
    e_neg = tf.exp(tf.minimum(x, 0.0))  # exp(x) for x < 0, in (0, 1]
    return tf.where(x >= 0, 1.0 / (1.0 + e_pos), e_neg / (1.0 + e_neg))


def sigmoid_grad(x):
    """The derivative of `sigmoid`: `s (1 - s)` with `s = sigmoid(x)`; at most 1/4."""
    s = sigmoid(x)
    return s * (1.0 - s)


def tanh(x):
    """The hyperbolic tangent, `(e^x - e^-x) / (e^x + e^-x)`, elementwise.

    Dividing numerator and denominator by `e^x` (x >= 0) or `e^-x` (x < 0)
    gives `(1 - e^{-2x}) / (1 + e^{-2x})` and `(e^{2x} - 1) / (e^{2x} + 1)`,
    whose exponents are <= 0. `expm1(t) = e^t - 1` keeps the numerator
    accurate for small |x|, where `e^t - 1` would cancel.

    Args:
        x: a float tensor.

    Returns:
        A tensor of the shape of `x` with values in [-1, 1].
    """
    x = tf.convert_to_tensor(x)
    m_pos = tf.math.expm1(-2.0 * tf.maximum(x, 0.0))  # e^{-2x} - 1 for x >= 0
    m_neg = tf.math.expm1(2.0 * tf.minimum(x, 0.0))  # e^{2x} - 1 for x < 0
    # (1 - e^{-2x}) / (1 + e^{-2x}) = -m / (2 + m);  (e^{2x} - 1) / (e^{2x} + 1) = m / (2 + m)
    return tf.where(x >= 0, -m_pos / (2.0 + m_pos), m_neg / (2.0 + m_neg))


def tanh_grad(x):
    """The derivative of `tanh`: `1 - tanh(x)^2`."""
    return 1.0 - tf.square(tanh(x))


def softmax(x, axis=-1):
    """Softmax along `axis`: `exp(x_i) / sum_j exp(x_j)`.

    The maximum along `axis` is subtracted first: the result is the same
    (the factor `exp(-max)` cancels), but every exponent is <= 0 so the sum
    cannot overflow and is >= 1 so it cannot be 0. The shift is a constant
    for the gradient (`tf.stop_gradient`): the output does not depend on it.

    Args:
        x: a float tensor of scores (logits).
        axis: the axis that sums to 1.

    Returns:
        A tensor of the shape of `x`, positive, summing to 1 along `axis`.
    """
    x = tf.convert_to_tensor(x)
    shift = tf.stop_gradient(tf.reduce_max(x, axis=axis, keepdims=True))
    e = tf.exp(x - shift)
    return e / tf.reduce_sum(e, axis=axis, keepdims=True)


def softmax_jacobian(x):
    """The Jacobian of `softmax` over the last axis, one matrix per example.

    With `s = softmax(x)`, `d s_i / d x_j = s_i (1[i = j] - s_j)`, i.e.
    `J = diag(s) - s s^T`. Each row of `J` sums to 0 (the outputs always sum
    to 1), and `J` is symmetric.

    Args:
        x: a float tensor `[..., n]`.

    Returns:
        A tensor `[..., n, n]` with `J[..., i, j] = d s_i / d x_j`.
    """
    s = softmax(x, axis=-1)
    return tf.linalg.diag(s) - s[..., :, None] * s[..., None, :]


def relu(x):
    """The rectified linear unit, `max(0, x)`, elementwise.

    Written with `tf.where(x > 0, x, 0)` so that autodiff gives slope 0 at
    x = 0, the same value as `relu_grad` and `tf.nn.relu`.
    """
    x = tf.convert_to_tensor(x)
    return tf.where(x > 0, x, tf.zeros_like(x))


def relu_grad(x):
    """The derivative of `relu`: 1 for x > 0, 0 for x < 0.

    ReLU has no derivative at x = 0; this returns 0 there (the left slope,
    TensorFlow's choice). Any value in [0, 1] is a valid subgradient.
    """
    x = tf.convert_to_tensor(x)
    return tf.cast(x > 0, x.dtype)


def leaky_relu(x, alpha=0.01):
    """Leaky ReLU: `x` for x >= 0, `alpha * x` for x < 0.

    The indicator form `1(x < 0) alpha x + 1(x >= 0) x`; both branches give 0
    at x = 0, so writing the condition as `x > 0` changes only the slope
    autodiff reports there (alpha, as `tf.nn.leaky_relu` and `leaky_relu_grad`).

    Args:
        x: a float tensor.
        alpha: the slope for negative inputs (0 gives `relu`).
    """
    x = tf.convert_to_tensor(x)
    return tf.where(x > 0, x, alpha * x)


def leaky_relu_grad(x, alpha=0.01):
    """The derivative of `leaky_relu`: 1 for x > 0, `alpha` for x <= 0 (left slope at 0)."""
    x = tf.convert_to_tensor(x)
    return tf.where(x > 0, tf.ones_like(x), alpha * tf.ones_like(x))


# ------------------------------------------------------------------- layers


@keras.saving.register_keras_serializable(package="mp")
class Sigmoid(keras.layers.Layer):
    """Applies `sigmoid` elementwise; no weights."""

    def call(self, x):
        return sigmoid(x)

    def compute_output_shape(self, input_shape):
        return input_shape


@keras.saving.register_keras_serializable(package="mp")
class Tanh(keras.layers.Layer):
    """Applies `tanh` elementwise; no weights."""

    def call(self, x):
        return tanh(x)

    def compute_output_shape(self, input_shape):
        return input_shape


@keras.saving.register_keras_serializable(package="mp")
class ReLU(keras.layers.Layer):
    """Applies `relu` elementwise; no weights. `diagnostics.dead_relu_fraction` finds it."""

    def call(self, x):
        return relu(x)

    def compute_output_shape(self, input_shape):
        return input_shape


@keras.saving.register_keras_serializable(package="mp")
class LeakyReLU(keras.layers.Layer):
    """Applies `leaky_relu` elementwise with a fixed slope `alpha`; no weights.

    Args:
        alpha: slope for negative inputs, >= 0.
        **kwargs: passed to `keras.layers.Layer` (e.g. `name`).

    Raises:
        ValueError: if `alpha` is negative.
    """

    def __init__(self, alpha=0.01, **kwargs):
        super().__init__(**kwargs)
        if alpha < 0:
            raise ValueError(f"alpha must be >= 0. Received: alpha={alpha}")
        self.alpha = float(alpha)

    def call(self, x):
        return leaky_relu(x, self.alpha)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha}


@keras.saving.register_keras_serializable(package="mp")
class PReLU(keras.layers.Layer):
    """Parametric ReLU (He et al., 2015): leaky ReLU whose slope is learned.

        f(x) = x          for x >= 0
        f(x) = alpha * x  for x < 0,    df/dalpha = min(x, 0)

    By default there is one `alpha` per channel (the last axis), shared over
    the batch and every other axis, as in the paper's channel-wise variant:
    a dense layer of `n` units gets `n` slopes, a conv layer of `c` filters
    gets `c`. `shared_axes` instead follows `keras.layers.PReLU`: start from
    one slope per element of an example and share along the listed axes
    (1-based, the batch axis 0 excluded); e.g. `shared_axes=[1, 2]` on images
    `[batch, h, w, c]` is the per-channel default, `shared_axes=None` here is
    NOT Keras' per-element default.

    Args:
        alpha_initializer: initial slope, a float (default 0.25, the paper's
            value) or a Keras initializer (name, dict or instance).
        shared_axes: None for one slope per channel, or a list of axes
            (1-based) along which the slope is shared, as in Keras.
        **kwargs: passed to `keras.layers.Layer` (e.g. `name`).
    """

    def __init__(self, alpha_initializer=0.25, shared_axes=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(alpha_initializer, (int, float)):
            alpha_initializer = keras.initializers.Constant(float(alpha_initializer))
        self.alpha_initializer = keras.initializers.get(alpha_initializer)
        if shared_axes is not None:
            shared_axes = [shared_axes] if isinstance(shared_axes, int) else list(shared_axes)
            if any(axis < 1 for axis in shared_axes):
                raise ValueError(
                    "shared_axes are 1-based (the batch axis 0 is always shared). "
                    f"Received: shared_axes={shared_axes}"
                )
        self.shared_axes = shared_axes

    def build(self, input_shape):
        if self.shared_axes is None:
            shape = [input_shape[-1]]  # one slope per channel, broadcast over the rest
        else:
            shape = list(input_shape[1:])
            for axis in self.shared_axes:
                shape[axis - 1] = 1
        if any(dim is None for dim in shape):
            raise ValueError(
                "PReLU needs the size of every axis that gets its own slope. "
                f"Received: input_shape={input_shape}, shared_axes={self.shared_axes}"
            )
        self.alpha = self.add_weight(shape=shape, initializer=self.alpha_initializer, name="alpha")

    def call(self, x):
        return tf.where(x > 0, x, self.alpha * x)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "alpha_initializer": keras.initializers.serialize(self.alpha_initializer),
            "shared_axes": self.shared_axes,
        }


_LAYERS = {
    "sigmoid": Sigmoid,
    "tanh": Tanh,
    "relu": ReLU,
    "leaky_relu": LeakyReLU,
    "prelu": PReLU,
}


def get(name, /, **kwargs):
    """A fresh activation layer for a name of `ACTIVATIONS` (the `--activation=` flag).

    Example:
        x = keras.layers.Dense(64)(x)
        x = activations.get("leaky_relu")(x)

    Args:
        name: one of `ACTIVATIONS` (positional only, so that `name=` below
            names the layer).
        **kwargs: passed to the layer (e.g. `name="relu1"`, `alpha=` for
            leaky_relu).

    Returns:
        A new `keras.layers.Layer` (a new one per call: PReLU has weights).

    Raises:
        ValueError: if `name` is not one of `ACTIVATIONS`.
    """
    if name not in _LAYERS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}. Received: name={name!r}")
    return _LAYERS[name](**kwargs)
