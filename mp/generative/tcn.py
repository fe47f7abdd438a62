"""Temporal convolutional network (TCN): causal dilated 1-D convolutions in residual blocks.

Bai, Kolter and Koltun, "An Empirical Evaluation of Generic Convolutional and
Recurrent Networks for Sequence Modeling", 2018; the dilated causal convolution
comes from WaveNet (van den Oord et al., 2016, `mp.generative.wavenet`).

A TCN maps a sequence `x_1..x_T` to a sequence `y_1..y_T` of the same length in
which `y_t` reads only `x_{t-F+1}..x_t`: nothing from the future, and at most
`F` steps of the past (the receptive field). Three ingredients:

    causal       a convolution of kernel size k whose output at t reads t, t-1, ..,
                 t-(k-1): the input is padded with k-1 zeros on the left only
                 (Keras' `padding="causal"`)
    dilated      with dilation d the taps are t, t-d, .., t-(k-1)d: the same k
                 weights span (k-1)d + 1 steps
    residual     block i: two such convolutions with dilation d_i = 2^i, ReLU and
                 dropout after each, added to the block's input (through a 1x1
                 convolution when the widths differ), then a ReLU

Each convolution adds `(k-1) d` steps of past, so L blocks of two convolutions
with the dilations 1, 2, 4, .., 2^(L-1) see

    F = 1 + 2 (k-1) (2^L - 1)                                   (`receptive_field`)

steps: exponential in the depth, where undilated convolutions would grow it by
`2(k-1)` per block. Every convolution has stride 1: a strided convolution would
shorten the sequence, and an autoregressive model needs one output per input
step (the course's note on why TCNs do not subsample). The receptive field is
checked by the causality harness (`tests/generative/causality.py`): every
output's Jacobian is exactly zero outside `[t-F+1, t]` and non-zero inside it.

As a chapter-4 sequence model (`make_tcn`, `apps/train_rnn.py --cell=tcn`) it
reads its answer at the last step, like `mp.rnn.many_to_one.sequence_model`:
the adding problem needs `F >= T` (the first marked value can sit at t = 1),
which `check_receptive_field` warns about. The paper's weight normalisation is
left out.

Course: ch5.3.3 TCN, VRNN, C-VRNN, STCN (temporal convolutional networks).
"""

import warnings

import keras
import numpy as np
import tensorflow as tf

from mp.engine.task import float32
from mp.rnn import _checks


def check_dilations(dilations):
    """The dilations as a tuple of ints; ValueError unless every one is a positive integer."""
    dilations = tuple(dilations)
    if not dilations:
        raise ValueError("dilations must not be empty. Received: dilations=()")
    for d in dilations:
        _checks.count("dilation", d)
    return tuple(int(d) for d in dilations)


def exponential_dilations(num_blocks, base=2):
    """`1, base, base^2, .., base^(num_blocks - 1)`: the receptive field doubles per block."""
    num_blocks = _checks.count("num_blocks", num_blocks)
    return tuple(base**i for i in range(num_blocks))


def receptive_field(kernel_size, dilations, convs_per_block=2):
    """Steps of input one output sees: `1 + convs_per_block (k-1) sum(dilations)`.

    One causal convolution of kernel size k and dilation d reads `(k-1) d` steps
    before the current one; stacked convolutions add their reaches.
    """
    kernel_size = _checks.count("kernel_size", kernel_size)
    return 1 + convs_per_block * (kernel_size - 1) * sum(check_dilations(dilations))


def check_receptive_field(field, needed, what="the task"):
    """Warns (does not fail) when a receptive field `field` is shorter than `needed` steps."""
    if field < needed:
        warnings.warn(
            f"the receptive field ({field} steps) is shorter than {what} needs ({needed} "
            "steps): outputs cannot see the first inputs; add blocks or a larger kernel",
            stacklevel=2,
        )
        return False
    return True


@keras.saving.register_keras_serializable(package="mp")
class TemporalBlock(keras.layers.Layer):
    """Two causal dilated convolutions with ReLU and dropout, plus the input (Bai et al.).

        y = relu(x W_res + conv2(drop(relu(conv1(x)))))   (W_res: a 1x1 conv, or the identity)

    Args:
      filters: output channels.
      kernel_size: k, taps per convolution.
      dilation: d, the gap between taps.
      dropout: rate of the dropout after each convolution (training only).
    """

    def __init__(self, filters, kernel_size, dilation, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.filters = _checks.count("filters", filters)
        self.kernel_size = _checks.count("kernel_size", kernel_size)
        self.dilation = _checks.count("dilation", dilation)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1). Received: dropout={dropout}")
        self.dropout = float(dropout)
        conv = dict(
            padding="causal",
            strides=1,
            dilation_rate=self.dilation,
            activation="relu",
            dtype=self.dtype_policy,
        )
        self.conv1 = keras.layers.Conv1D(filters, kernel_size, name="conv1", **conv)
        self.conv2 = keras.layers.Conv1D(filters, kernel_size, name="conv2", **conv)
        self.drop1 = keras.layers.Dropout(self.dropout)
        self.drop2 = keras.layers.Dropout(self.dropout)
        self.downsample = None

    def build(self, input_shape):
        channels = int(input_shape[-1])
        self.conv1.build(input_shape)
        self.conv2.build((*input_shape[:-1], self.filters))
        if channels != self.filters:
            self.downsample = keras.layers.Conv1D(
                self.filters, 1, name="downsample", dtype=self.dtype_policy
            )
            self.downsample.build(input_shape)

    def call(self, x, training=False):
        y = self.drop1(self.conv1(x), training=training)
        y = self.drop2(self.conv2(y), training=training)
        residual = x if self.downsample is None else self.downsample(x)
        return tf.nn.relu(residual + y)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.filters)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "dilation": self.dilation,
            "dropout": self.dropout,
        }


@keras.saving.register_keras_serializable(package="mp")
class LastStep(keras.layers.Layer):
    """`[B, T, C] -> [B, C]`: the features of the last time step (a many-to-one readout)."""

    def call(self, x):
        return x[:, -1]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])


def make_tcn(
    input_shape,
    *,
    filters=32,
    kernel_size=3,
    num_blocks=None,
    dilations=None,
    output_units=1,
    dropout=0.0,
    return_sequences=False,
    pixel_by_pixel=False,
    name=None,
):
    """A TCN over sequences `[B, T, D]`: blocks of `TemporalBlock`, then a dense readout.

    Args:
      input_shape: `(T, D)` of one sequence (`T` may be `None` with `return_sequences`).
      filters: channels of every block.
      kernel_size: k of every convolution.
      num_blocks: blocks with dilations `1, 2, .., 2^(num_blocks-1)`; or give `dilations`.
      dilations: the dilation of each block (positive integers).
      output_units: size of the readout (1 for a regression, the classes for logits).
      dropout: dropout rate inside the blocks.
      return_sequences: a readout at every step `[B, T, output_units]` (the causality
        harness); else at the last step only, `[B, output_units]` (many-to-one, ch4).
      pixel_by_pixel: read a `(T, D)` input as `T * D` steps of one value (sequential
        MNIST pixel by pixel) instead of `T` steps of `D`.
      name: the model's name (default `tcn_k<k>_x<blocks>`).

    Returns:
      A functional `keras.Model` with attribute-free layers `block_1..block_L`; its
      receptive field is `receptive_field(kernel_size, dilations)` (in pixels with
      `pixel_by_pixel`).

    Raises:
      ValueError: neither or both of `num_blocks` and `dilations`, or a non-positive size.
    """
    if (num_blocks is None) == (dilations is None):
        raise ValueError(
            "give one of num_blocks and dilations. Received: "
            f"num_blocks={num_blocks}, dilations={dilations}"
        )
    if dilations is None:
        dilations = exponential_dilations(num_blocks)
    dilations = check_dilations(dilations)
    output_units = _checks.count("output_units", output_units)
    inputs = keras.Input(shape=tuple(input_shape), name="sequence")
    h = inputs
    if pixel_by_pixel:
        steps, width = input_shape
        h = keras.layers.Reshape((steps * width, 1), name="pixels")(h)
    for i, d in enumerate(dilations, start=1):
        h = TemporalBlock(filters, kernel_size, d, dropout, name=f"block_{i}")(h)
    if not return_sequences:
        h = LastStep(name="last_step")(h)
    outputs = keras.layers.Dense(output_units, name="readout")(h)  # tasks cast to float32
    return keras.Model(inputs, outputs, name=name or f"tcn_k{kernel_size}_x{len(dilations)}")


def model_receptive_field(model):
    """The receptive field of a model made by `make_tcn`, from its blocks' configuration."""
    blocks = [layer for layer in model.layers if isinstance(layer, TemporalBlock)]
    return receptive_field(blocks[0].kernel_size, [b.dilation for b in blocks])


def measured_receptive_field(jacobian, outputs_per_step=1, inputs_per_step=1):
    """The longest stretch of input steps any output step depends on, from a Jacobian.

    Args:
      jacobian: `[N, T_out * outputs_per_step, T_in * inputs_per_step]` (float64), e.g.
        `tests.generative.causality.jacobians`.

    Returns:
      `max_t (t - first input step with a non-zero entry for output t) + 1` over the
      output steps: the receptive field as the network realises it.
    """
    jacobian = np.abs(np.asarray(jacobian)).sum(axis=0)
    steps_out = jacobian.shape[0] // outputs_per_step
    steps_in = jacobian.shape[1] // inputs_per_step
    blocks = jacobian.reshape(steps_out, outputs_per_step, steps_in, inputs_per_step)
    depends = blocks.sum(axis=(1, 3)) != 0.0  # [t_out, t_in]
    field = 0
    for t in range(steps_out):
        seen = np.flatnonzero(depends[t])
        if seen.size:
            field = max(field, t - int(seen[0]) + 1)
    return field


class InputGradientNorms:
    """`||dL/dx_t||` over the input steps of a many-to-one model (the TCN's view of ch4.2).

    A TCN has no hidden state to differentiate through, so where `mp.rnn.problems.
    GradientNorms` measures `||dL/dh_t||` of a recurrent layer this measures the
    gradient reaching each input step: exactly zero before the receptive field
    starts, whatever the weights. The same interface (`measure`, `figure`,
    `first_to_last`), so `apps/train_rnn.py` uses it for `--cell=tcn`.

    Args:
      inputs: test inputs `[B, T, D]`.
    """

    def __init__(self, inputs):
        self.inputs = np.asarray(inputs, np.float32)
        self.curves = {}

    def measure(self, model, label):
        """`L_b = y_b . w` (a fixed random projection, seed 0); returns the curve `[T]`."""
        x = tf.constant(self.inputs)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = float32(model(x, training=False))
            w = tf.random.stateless_normal([int(y.shape[-1])], seed=[0, 0])
            loss = tf.reduce_sum(y * w)
        grads = tape.gradient(loss, x)  # [B, T, D]
        curve = tf.reduce_mean(tf.norm(grads, axis=-1), axis=0).numpy()
        self.curves[label] = curve
        return curve

    @staticmethod
    def first_to_last(curve):
        """`||dL/dx_1|| / ||dL/dx_T||`; `None` when the last step gets no gradient."""
        return float(curve[0] / curve[-1]) if curve[-1] > 0 else None

    def figure(self, title=None):
        """The curves on one log axis (steps with exactly zero gradient are not drawn)."""
        from matplotlib.figure import Figure

        figure = Figure(figsize=(6.5, 4))
        axis = figure.subplots()
        for label, curve in self.curves.items():
            steps = np.arange(1, len(curve) + 1)
            axis.semilogy(steps, np.where(curve > 0, curve, np.nan), label=label)
        axis.set_xlabel("input step t")
        axis.set_ylabel("||dL/dx_t||")
        axis.set_title(title or "gradient reaching each input step")
        axis.grid(alpha=0.3)
        axis.legend()
        figure.tight_layout()
        return figure


# --- as a chapter-4 model (apps/train_rnn.py --cell=tcn) ----------------------------

DEFAULT_KERNEL_SIZE = 3


def sequence_options(
    cell, task, num_layers, kernel_size=None, dilations=None, pixel_by_pixel=None
):
    """The TCN's options of `apps/train_rnn.py`, checked: `{}` for a recurrent cell.

    With `cell="tcn"`: `{"kernel_size", "dilations", "pixel_by_pixel"}`, the dilations
    `1, 2, .., 2^(L-1)` for `L = num_layers` unless given (then `num_layers` is 1 or
    their number); `pixel_by_pixel` (images only) reads one pixel per step.

    Raises:
      ValueError: a TCN option with a recurrent cell, the TCN on `task="charlm"`, a
        non-positive kernel size or dilation, or `num_layers` against `dilations`.
    """
    if pixel_by_pixel and not task.startswith("seq_"):
        raise ValueError(f"pixel_by_pixel is for task=seq_* only. Received: task={task!r}")
    if cell != "tcn":  # a recurrent cell reads pixel by pixel too (the TCN's comparison)
        for name, value in (("kernel_size", kernel_size), ("dilations", dilations)):
            if value is not None:
                raise ValueError(f"{name} is for cell=tcn or wavenet only. Received: cell={cell!r}")
        return {"pixel_by_pixel": True} if pixel_by_pixel else {}
    if task == "charlm":
        raise ValueError(
            "cell=tcn reads whole sequences (task=adding, seq_*); the convolutional language "
            "model is cell=wavenet. Received: task=charlm"
        )
    kernel_size = _checks.count(
        "kernel_size", DEFAULT_KERNEL_SIZE if kernel_size is None else kernel_size
    )
    options = {"kernel_size": kernel_size, "pixel_by_pixel": bool(pixel_by_pixel)}
    return options | {"dilations": layer_dilations(num_layers, dilations)}


def layer_dilations(num_layers, dilations=None):
    """`--dilations` of `apps/train_rnn.py` checked: one per layer (or TCN block).

    `1, 2, .., 2^(L-1)` for `L = num_layers` unless `dilations` are given (integers,
    or the strings of a flag's list); then `num_layers` must be 1 or their number.

    Raises:
      ValueError: a dilation that is not a positive integer, or `num_layers` against them.
    """
    if dilations is None:
        return exponential_dilations(num_layers)
    try:
        dilations = check_dilations(int(d) for d in dilations)
    except (TypeError, ValueError):
        raise ValueError(
            f"dilations must be positive integers. Received: dilations={dilations}"
        ) from None
    if num_layers not in (1, len(dilations)):
        raise ValueError(
            f"num_layers must be 1 or the number of dilations. Received: num_layers={num_layers}, "
            f"dilations={dilations}"
        )
    return dilations


def sequence_model(problem, *, filters, kernel_size, dilations, pixel_by_pixel=False):
    """A many-to-one TCN for a problem of `mp.rnn.problems` (its input shape and outputs).

    Warns (`check_receptive_field`) when the field is shorter than the sequence.
    """
    steps, width = problem.input_shape
    steps *= width if pixel_by_pixel else 1
    model = make_tcn(
        problem.input_shape,
        filters=filters,
        kernel_size=kernel_size,
        dilations=dilations,
        output_units=problem.output_units,
        pixel_by_pixel=pixel_by_pixel,
    )
    check_receptive_field(model_receptive_field(model), steps, f"a sequence of {steps} steps")
    return model
