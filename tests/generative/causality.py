"""One causality harness for every autoregressive model (ch5.3; reusable by the TCN and VRNN).

A model is autoregressive in an ordering when each output may depend only on
the inputs that come before it. Checked on the float64 Jacobian `J[o, i] =
d output_o / d input_i`, exactly:

    forbidden  (input i not before output o's position)   J[o, i] == 0.0 exactly
    allowed    (input i before it)                         J[o, i] != 0.0

The second half makes a model that loses a dependency fail too (PixelCNN's
blind spot). A dependency can hide behind the weights: a dead ReLU, a saturated
tanh (in float64 `1 - tanh(20)^2` is exactly 0), two paths that cancel. So
`cannot_hide` first sets every weight to a small positive value (kernels uniform
in [0.5, 1.5] / fan-in, biases in [0.05, 0.15]): with inputs in [0, 1] every
pre-activation is a positive sum with no cancellation, ReLUs are on, and sums
stay small enough that nothing saturates. The Jacobian is taken at several
random inputs; an allowed entry must be non-zero at each.

`check_after_step` repeats the check after one optimiser step on the model's
NLL: a mask applied once to the variable (or as a constraint that is not
re-applied) passes at initialisation and fails here, because the step moves
the masked entries.

Usage, e.g. for a PixelCNN on 4 x 5 images in raster order:

    model = build_in_float64(lambda: make_pixelcnn((4, 5, 1), ...))
    cannot_hide(model)
    allowed = ordering_allowed(raster_order(20), outputs_per_position=1)
    report = check(model, random_inputs((4, 5, 1)), allowed)
    assert report.ok, report.describe()
"""

import contextlib
import dataclasses

import keras
import numpy as np
import tensorflow as tf

from mp.generative.autoregressive import positive_weights


@contextlib.contextmanager
def float64_keras():
    """Keras' floatx and dtype policy float64 inside the block (layers built there compute
    in float64); both are put back after it (Keras caches the policy: floatx alone is not
    enough, and not undone)."""
    previous, policy = keras.config.floatx(), keras.config.dtype_policy()
    keras.config.set_floatx("float64")
    keras.config.set_dtype_policy("float64")
    try:
        yield
    finally:
        keras.config.set_floatx(previous)
        keras.config.set_dtype_policy(policy)


def build_in_float64(build_fn):
    """`build_fn()` with Keras' floatx set to float64."""
    with float64_keras():
        return build_fn()


def cannot_hide(model, seed=0):
    """Sets every trainable weight to a small positive value (see the module docstring).

    `mp.generative.autoregressive.positive_weights`: kernels (2-D or more) uniform in
    [0.5, 1.5] / fan-in (all dimensions but the last), vectors in [0.05, 0.15].
    """
    return positive_weights(model, seed)


def random_inputs(shape, num_inputs=3, seed=1):
    """`num_inputs` float64 inputs uniform in [0, 1] of `shape` (one example's shape)."""
    return np.random.default_rng(seed).uniform(size=(num_inputs, *shape))


def raster_order(num_positions):
    """The natural order 0, 1, ..., D - 1."""
    return np.arange(num_positions)


def ordering_allowed(order, outputs_per_position=1, inputs_per_position=1):
    """`allowed[o, i]`: input `i` comes strictly before output `o` in `order`.

    Outputs and inputs are flattened; position `p` owns outputs
    `p * outputs_per_position ...` (e.g. the K logits of a categorical pixel) and
    inputs `p * inputs_per_position ...` (channels).
    """
    rank = np.empty(len(order), np.int64)
    rank[np.asarray(order)] = np.arange(len(order))  # rank[d]: when pixel d comes
    before = rank[None, :] < rank[:, None]  # [out position, in position]
    before = np.repeat(before, outputs_per_position, axis=0)
    return np.repeat(before, inputs_per_position, axis=1)


def jacobians(fn, inputs):
    """`[N, outputs, inputs]`: the Jacobian of `fn` (flattened) at each of the inputs, float64.

    `fn` maps a batch `[N, ...]` to a batch `[N, ...]`, each example on its own.
    """
    x = tf.constant(inputs, tf.float64)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf.cast(fn(x), tf.float64)
        y = tf.reshape(y, [tf.shape(y)[0], -1])
    jacobian = tape.batch_jacobian(y, x)  # [N, outputs, *input_shape]
    return tf.reshape(jacobian, [x.shape[0], y.shape[1], -1]).numpy()


@dataclasses.dataclass
class Report:
    """What `check` found: counts, and the first offending `(output, input)` pairs."""

    forbidden_nonzero: list
    allowed_zero: list
    num_forbidden: int
    num_allowed: int
    largest_forbidden: float

    @property
    def causal(self):
        """No forbidden dependency."""
        return not self.forbidden_nonzero

    @property
    def complete(self):
        """Every allowed dependency present (no blind spot)."""
        return not self.allowed_zero

    @property
    def ok(self):
        return self.causal and self.complete

    def describe(self):
        return (
            f"{len(self.forbidden_nonzero)} of {self.num_forbidden} forbidden entries non-zero "
            f"(largest |J| {self.largest_forbidden:.3g}; first {self.forbidden_nonzero[:5]}); "
            f"{len(self.allowed_zero)} of {self.num_allowed} allowed entries zero "
            f"(first {self.allowed_zero[:5]})"
        )


def check(fn, inputs, allowed):
    """The two halves of the check on the Jacobians of `fn` at `inputs` (`Report`).

    Args:
      fn: a batch of inputs -> a batch of outputs (e.g. a Keras model), float64.
      inputs: `[N, ...]` inputs (`random_inputs`).
      allowed: bool `[outputs, inputs]` (flattened per example), `ordering_allowed`.
    """
    jac = jacobians(fn, inputs)
    allowed = np.asarray(allowed, bool)
    if jac.shape[1:] != allowed.shape:
        raise ValueError(f"allowed is {allowed.shape}, the Jacobian {jac.shape[1:]}")
    forbidden_values = np.abs(jac[:, ~allowed])
    nonzero = np.argwhere((jac != 0.0).any(axis=0) & ~allowed)
    zero = np.argwhere((jac == 0.0).any(axis=0) & allowed)
    return Report(
        forbidden_nonzero=[tuple(int(v) for v in pair) for pair in nonzero],
        allowed_zero=[tuple(int(v) for v in pair) for pair in zero],
        num_forbidden=int((~allowed).sum()),
        num_allowed=int(allowed.sum()),
        largest_forbidden=float(forbidden_values.max()) if forbidden_values.size else 0.0,
    )


def one_step(model, loss_fn, inputs, learning_rate=1e-4):
    """One Adam step on `loss_fn(model, x)` (a scalar) at `inputs` (in place).

    Adam's first step moves every weight with a non-zero gradient by about
    `learning_rate`, well below `cannot_hide`'s smallest weights for the fan-ins of
    the tests' models, so the weights stay positive.
    """
    optimizer = keras.optimizers.Adam(learning_rate)
    x = tf.constant(inputs, model.compute_dtype)
    with tf.GradientTape() as tape:
        loss = loss_fn(model, x)
    gradients = tape.gradient(loss, model.trainable_variables)
    pairs = [(g, v) for g, v in zip(gradients, model.trainable_variables) if g is not None]
    optimizer.apply_gradients(pairs)
    return model


def check_after_step(model, fn, inputs, allowed, loss_fn, data):
    """`cannot_hide`, `check`, one optimiser step on `data`, `check` again: both `Report`s."""
    cannot_hide(model)
    before = check(fn, inputs, allowed)
    one_step(model, loss_fn, data)
    return before, check(fn, inputs, allowed)


def nll(model, x):
    """The mean negative log-likelihood of binary `x` (the loss of `one_step` for ch5.3)."""
    return -tf.reduce_mean(model.log_prob(tf.round(x)))
