"""Recurrent cells: vanilla RNN, LSTM and its variants, GRU, Clockwork RNN.

A recurrent network applies the same transition to every step of a
sequence, `s_t = f(s_{t-1}, x_t; theta)`. A *cell* is that transition for
one step: `call(x_t, states) -> (output_t, new_states)`. `keras.layers.RNN`
unrolls a cell over the time axis, so every cell here works in any Keras
model, returns sequences or states like Keras' own layers, and stacks with
`keras.layers.StackedRNNCells`.

Weight convention. The notes write column vectors, `W x`; Keras multiplies
row vectors from the right, `x @ kernel`, for a batch `[B, D]`. So a matrix
of the notes is the transpose of the stored one:

    W_xh = kernel^T            kernel:           [input_dim, units]
    W_hh = recurrent_kernel^T  recurrent_kernel: [units, units]

The gated cells keep all gates in one matrix, one column block per gate, so
one product computes every gate's pre-activation and a named slice picks
each one out. The layout is Keras' own, so weights copy between these cells
and `keras.layers.LSTM` / `GRU` unchanged:

    LSTMCell, PeepholeLSTMCell  kernel [D, 4u], recurrent_kernel [u, 4u], bias [4u];
                                blocks i, f, c~, o
    CoupledLSTMCell             kernel [D, 3u], recurrent_kernel [u, 3u], bias [3u];
                                blocks i, c~, o (no forget block: f = 1 - i)
    GRUCell                     kernel [D, 3u], recurrent_kernel [u, 3u]; blocks z, r, h~;
                                bias [2, 3u] (row 0 input, row 1 recurrent) with
                                reset_after=True, bias [3u] with reset_after=False

Every cell adds a bias `b` (the notes fold it into `W` by appending a
constant 1 to the input). A cell's output is its hidden state `h_t`; the
readout `y_t = W_hy h_t` of the notes is a `keras.layers.Dense` on the
outputs of the RNN layer. The cells have no dropout of their own; put
`keras.layers.Dropout` between RNN layers.

Stacking (the matrix form of the notes): layer `l` reads the hidden state of
the layer below at the same step and its own previous state,

    h_t^l = tanh(W^l [h_t^{l-1}; h_{t-1}^l] + b^l),   W^l = [W_xh^l  W_hh^l]
                                                      = [kernel^l; recurrent_kernel^l]^T,

with `h_t^0 = x_t`, which is `keras.layers.StackedRNNCells([cell_1, ..., cell_L])` (or L RNN
layers with `return_sequences=True`, one after the other).

References:
  Hochreiter & Schmidhuber, "Long short-term memory", Neural Computation 1997.
  Gers & Schmidhuber, "Recurrent nets that time and count", IJCNN 2000 (peepholes).
  Greff et al., "LSTM: A search space odyssey", IEEE TNNLS 2017 (coupled gates).
  Cho et al., "Learning phrase representations using RNN encoder-decoder", EMNLP 2014 (GRU).
  Koutnik et al., "A Clockwork RNN", ICML 2014.

Course: ch4 Recurrent Neural Networks; ch4.3 Long Short Term Memory (LSTM).
"""

import numbers

import keras
import numpy as np
from keras import ops

CELLS = ("rnn", "lstm", "peephole", "coupled", "gru", "clockwork")


def _check_units(units):
    if isinstance(units, bool) or not isinstance(units, numbers.Integral) or units <= 0:
        raise ValueError(f"units must be a positive integer. Received: units={units!r}")
    return int(units)


class _Cell(keras.layers.Layer):
    """What every cell shares: `units`, the three initializers and their config."""

    def __init__(
        self,
        units,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = _check_units(units)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.recurrent_initializer = keras.initializers.get(recurrent_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.output_size = self.units

    def _weights(self, input_dim, gates, bias_initializer=None, bias_shape=None):
        """Adds `kernel` [input_dim, gates*units], `recurrent_kernel` [units, gates*units], `bias`."""
        width = gates * self.units
        self.kernel = self.add_weight(
            shape=(input_dim, width), initializer=self.kernel_initializer, name="kernel"
        )
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, width),
            initializer=self.recurrent_initializer,
            name="recurrent_kernel",
        )
        self.bias = self.add_weight(
            shape=bias_shape or (width,),
            initializer=bias_initializer or self.bias_initializer,
            name="bias",
        )

    def get_initial_state(self, batch_size=None):
        """Zeros for every state (for the Clockwork RNN: step counter 0)."""
        return [ops.zeros((batch_size, size), dtype=self.compute_dtype) for size in self.state_size]

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "recurrent_initializer": keras.initializers.serialize(self.recurrent_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
        }


def _forget_bias_initializer(base, units, num_gates, forget_block, value):
    """`base` for the bias, with block `forget_block` (of `num_gates`) set to `value`."""

    def initializer(shape, dtype=None):
        blocks = [base((units,), dtype=dtype) for _ in range(num_gates)]
        blocks[forget_block] = ops.full((units,), value, dtype=dtype)
        return ops.concatenate(blocks)

    return initializer


@keras.saving.register_keras_serializable(package="mp")
class SimpleRNNCell(_Cell):
    """Vanilla (Elman) RNN cell.

        h_t = tanh(W_hh h_{t-1} + W_xh x_t + b)

    with `W_xh = kernel^T` [units, input_dim] and `W_hh = recurrent_kernel^T`
    [units, units] (see the module docstring for the transposes). The output
    is `h_t`; the readout `y_t = W_hy h_t` is a Dense layer after the RNN.
    Matches `keras.layers.SimpleRNNCell` with the same weights.

    Args:
      units: size of the hidden state `h`.
      activation: the nonlinearity, `"tanh"` in the notes.
      kernel_initializer: initializer of `kernel` (input weights).
      recurrent_initializer: initializer of `recurrent_kernel`.
      bias_initializer: initializer of `bias`.
      **kwargs: passed to `keras.layers.Layer` (name, dtype, ...).

    Raises:
      ValueError: if `units` is not a positive integer.
    """

    def __init__(self, units, activation="tanh", **kwargs):
        super().__init__(units, **kwargs)
        self.activation = keras.activations.get(activation)
        self.state_size = [self.units]

    def build(self, input_shape):
        self._weights(input_shape[-1], gates=1)

    def call(self, inputs, states, training=False):
        h_prev = states[0]
        h = self.activation(
            ops.matmul(h_prev, self.recurrent_kernel) + ops.matmul(inputs, self.kernel) + self.bias
        )
        return h, [h]

    def get_config(self):
        return {**super().get_config(), "activation": keras.activations.serialize(self.activation)}


@keras.saving.register_keras_serializable(package="mp")
class LSTMCell(_Cell):
    """Long short-term memory cell (Hochreiter & Schmidhuber 1997).

    One product gives the pre-activations of the four gates, then

        i   = sigm(W_i [x_t; h_{t-1}] + b_i)      input gate
        f   = sigm(W_f [x_t; h_{t-1}] + b_f)      forget gate
        c~  = tanh(W_c [x_t; h_{t-1}] + b_c)      candidate (g in the notes)
        o   = sigm(W_o [x_t; h_{t-1}] + b_o)      output gate
        c_t = f * c_{t-1} + i * c~                additive cell-state update
        h_t = o * tanh(c_t)

    (`*` elementwise). The state is `[h_t, c_t]`, the output `h_t`. Weights in
    Keras' layout, gate blocks in the order i, f, c~, o: `kernel`
    [input_dim, 4*units], `recurrent_kernel` [units, 4*units], `bias`
    [4*units]; so `W_i = [kernel[:, :u]^T  recurrent_kernel[:, :u]^T]` etc.
    Matches `keras.layers.LSTMCell` with the same weights.

    Args:
      units: size of `h` and `c`.
      unit_forget_bias: start the forget-gate bias at 1 (the rest of the bias
        from `bias_initializer`), so `f ~ 0.73` and the cell remembers from
        the first step (Jozefowicz et al. 2015).
      kernel_initializer: initializer of `kernel`.
      recurrent_initializer: initializer of `recurrent_kernel`.
      bias_initializer: initializer of `bias`.
      **kwargs: passed to `keras.layers.Layer`.

    Raises:
      ValueError: if `units` is not a positive integer.
    """

    def __init__(self, units, unit_forget_bias=True, **kwargs):
        super().__init__(units, **kwargs)
        self.unit_forget_bias = bool(unit_forget_bias)
        self.state_size = [self.units, self.units]

    def build(self, input_shape):
        bias_initializer = None
        if self.unit_forget_bias:  # block 1 of i, f, c~, o
            bias_initializer = _forget_bias_initializer(
                self.bias_initializer, self.units, 4, 1, 1.0
            )
        self._weights(input_shape[-1], gates=4, bias_initializer=bias_initializer)

    def _gates(self, inputs, h_prev):
        """Pre-activations of i, f, c~, o: one product, four named slices."""
        z = ops.matmul(inputs, self.kernel) + ops.matmul(h_prev, self.recurrent_kernel) + self.bias
        return ops.split(z, 4, axis=-1)

    def call(self, inputs, states, training=False):
        h_prev, c_prev = states
        z_i, z_f, z_c, z_o = self._gates(inputs, h_prev)
        i = ops.sigmoid(z_i)
        f = ops.sigmoid(z_f)
        c_tilde = ops.tanh(z_c)
        o = ops.sigmoid(z_o)
        c = f * c_prev + i * c_tilde
        h = o * ops.tanh(c)
        return h, [h, c]

    def get_config(self):
        return {**super().get_config(), "unit_forget_bias": self.unit_forget_bias}


@keras.saving.register_keras_serializable(package="mp")
class PeepholeLSTMCell(LSTMCell):
    """LSTM with peephole connections (Gers & Schmidhuber 2000).

    The gates also look at the cell state, through diagonal (elementwise)
    weights `p_i`, `p_f`, `p_o` [units]: the input and forget gates see the
    previous cell state, the output gate the new one:

        i   = sigm(W_i [x_t; h_{t-1}] + p_i * c_{t-1} + b_i)
        f   = sigm(W_f [x_t; h_{t-1}] + p_f * c_{t-1} + b_f)
        c~  = tanh(W_c [x_t; h_{t-1}] + b_c)
        c_t = f * c_{t-1} + i * c~
        o   = sigm(W_o [x_t; h_{t-1}] + p_o * c_t + b_o)
        h_t = o * tanh(c_t)

    `kernel`, `recurrent_kernel`, `bias` as in `LSTMCell` (blocks i, f, c~,
    o); the peepholes are `input_peephole`, `forget_peephole`,
    `output_peephole`. With zero peepholes it is exactly `LSTMCell`.

    Args:
      units: size of `h` and `c`.
      peephole_initializer: initializer of the three peephole vectors.
      **kwargs: the arguments of `LSTMCell` (`unit_forget_bias`, initializers,
        layer arguments).

    Raises:
      ValueError: if `units` is not a positive integer.
    """

    def __init__(self, units, peephole_initializer="glorot_uniform", **kwargs):
        super().__init__(units, **kwargs)
        self.peephole_initializer = keras.initializers.get(peephole_initializer)

    def build(self, input_shape):
        super().build(input_shape)
        self.input_peephole, self.forget_peephole, self.output_peephole = (
            self.add_weight(shape=(self.units,), initializer=self.peephole_initializer, name=name)
            for name in ("input_peephole", "forget_peephole", "output_peephole")
        )

    def call(self, inputs, states, training=False):
        h_prev, c_prev = states
        z_i, z_f, z_c, z_o = self._gates(inputs, h_prev)
        i = ops.sigmoid(z_i + self.input_peephole * c_prev)
        f = ops.sigmoid(z_f + self.forget_peephole * c_prev)
        c_tilde = ops.tanh(z_c)
        c = f * c_prev + i * c_tilde
        o = ops.sigmoid(z_o + self.output_peephole * c)
        h = o * ops.tanh(c)
        return h, [h, c]

    def get_config(self):
        return {
            **super().get_config(),
            "peephole_initializer": keras.initializers.serialize(self.peephole_initializer),
        }


@keras.saving.register_keras_serializable(package="mp")
class CoupledLSTMCell(_Cell):
    """LSTM with coupled input and forget gates (Greff et al. 2017, "CIFG").

    The cell forgets exactly as much as it writes, `f = 1 - i`, so there is
    no forget block and a quarter fewer weights:

        i   = sigm(W_i [x_t; h_{t-1}] + b_i)
        c~  = tanh(W_c [x_t; h_{t-1}] + b_c)
        o   = sigm(W_o [x_t; h_{t-1}] + b_o)
        c_t = (1 - i) * c_{t-1} + i * c~
        h_t = o * tanh(c_t)

    Weights: `kernel` [input_dim, 3*units], `recurrent_kernel`
    [units, 3*units], `bias` [3*units], blocks in the order i, c~, o (the
    LSTM's order without f).

    Args:
      units: size of `h` and `c`.
      unit_forget_bias: start the forget gate where `LSTMCell` starts it,
        `f = sigm(1)`: since `1 - sigm(z) = sigm(-z)`, this sets the
        input-gate bias to -1.
      kernel_initializer: initializer of `kernel`.
      recurrent_initializer: initializer of `recurrent_kernel`.
      bias_initializer: initializer of `bias`.
      **kwargs: passed to `keras.layers.Layer`.

    Raises:
      ValueError: if `units` is not a positive integer.
    """

    def __init__(self, units, unit_forget_bias=True, **kwargs):
        super().__init__(units, **kwargs)
        self.unit_forget_bias = bool(unit_forget_bias)
        self.state_size = [self.units, self.units]

    def build(self, input_shape):
        bias_initializer = None
        if self.unit_forget_bias:  # block 0 of i, c~, o: b_i = -1 gives f = sigm(1)
            bias_initializer = _forget_bias_initializer(
                self.bias_initializer, self.units, 3, 0, -1.0
            )
        self._weights(input_shape[-1], gates=3, bias_initializer=bias_initializer)

    def call(self, inputs, states, training=False):
        h_prev, c_prev = states
        z = ops.matmul(inputs, self.kernel) + ops.matmul(h_prev, self.recurrent_kernel) + self.bias
        z_i, z_c, z_o = ops.split(z, 3, axis=-1)
        i = ops.sigmoid(z_i)
        f = 1.0 - i
        c_tilde = ops.tanh(z_c)
        o = ops.sigmoid(z_o)
        c = f * c_prev + i * c_tilde
        h = o * ops.tanh(c)
        return h, [h, c]

    def get_config(self):
        return {**super().get_config(), "unit_forget_bias": self.unit_forget_bias}


@keras.saving.register_keras_serializable(package="mp")
class GRUCell(_Cell):
    """Gated recurrent unit (Cho et al. 2014), in Keras' convention.

    An update gate `z` mixes the old state with a candidate; a reset gate
    `r` decides how much of the old state the candidate sees. No separate
    cell state:

        z   = sigm(W_z x_t + U_z h_{t-1} + b_z)
        r   = sigm(W_r x_t + U_r h_{t-1} + b_r)
        h~  = tanh(W_h x_t + r * (U_h h_{t-1} + b'_h) + b_h)   reset_after=True
        h~  = tanh(W_h x_t + U_h (r * h_{t-1}) + b_h)          reset_after=False
        h_t = z * h_{t-1} + (1 - z) * h~

    (`z` near 1 keeps the old state: Keras' and Cho et al.'s convention.)
    `reset_after=True` (Keras' default, cuDNN's form) applies `r` after the
    recurrent product and has a second, recurrent bias `b'`: `bias` is
    [2, 3*units], row 0 the input bias, row 1 the recurrent bias (added to
    `U h` for all three blocks). `reset_after=False` is the original GRU with
    one `bias` [3*units]. `kernel` [input_dim, 3*units] holds `W_z, W_r, W_h`
    transposed, `recurrent_kernel` [units, 3*units] holds `U_z, U_r, U_h`,
    blocks in the order z, r, h~. Matches `keras.layers.GRUCell` with the same
    `reset_after` and weights.

    Args:
      units: size of `h`.
      reset_after: where the reset gate applies (see above).
      kernel_initializer: initializer of `kernel`.
      recurrent_initializer: initializer of `recurrent_kernel`.
      bias_initializer: initializer of `bias`.
      **kwargs: passed to `keras.layers.Layer`.

    Raises:
      ValueError: if `units` is not a positive integer.
    """

    def __init__(self, units, reset_after=True, **kwargs):
        super().__init__(units, **kwargs)
        self.reset_after = bool(reset_after)
        self.state_size = [self.units]

    def build(self, input_shape):
        bias_shape = (2, 3 * self.units) if self.reset_after else (3 * self.units,)
        self._weights(input_shape[-1], gates=3, bias_shape=bias_shape)

    def call(self, inputs, states, training=False):
        h_prev = states[0]
        input_bias = self.bias[0] if self.reset_after else self.bias
        x_z, x_r, x_h = ops.split(ops.matmul(inputs, self.kernel) + input_bias, 3, axis=-1)
        u_z, u_r, u_h = ops.split(self.recurrent_kernel, 3, axis=-1)
        if self.reset_after:  # the recurrent bias b'
            rb_z, rb_r, rb_h = ops.split(self.bias[1], 3, axis=-1)
        else:
            rb_z = rb_r = 0.0
        z = ops.sigmoid(x_z + ops.matmul(h_prev, u_z) + rb_z)
        r = ops.sigmoid(x_r + ops.matmul(h_prev, u_r) + rb_r)
        if self.reset_after:
            h_tilde = ops.tanh(x_h + r * (ops.matmul(h_prev, u_h) + rb_h))
        else:
            h_tilde = ops.tanh(x_h + ops.matmul(r * h_prev, u_h))
        h = z * h_prev + (1.0 - z) * h_tilde
        return h, [h]

    def get_config(self):
        return {**super().get_config(), "reset_after": self.reset_after}


@keras.saving.register_keras_serializable(package="mp")
class ClockworkRNNCell(_Cell):
    """Clockwork RNN (Koutnik et al. 2014).

    The hidden units are split into `g = len(periods)` equal modules with
    periods `T_1 < ... < T_g`. At step `t` (counted from 0) module `k` runs
    only if `t mod T_k == 0`; otherwise it keeps its state, so slow modules
    hold information over long spans:

        h~_t    = tanh(W_hh h_{t-1} + W_xh x_t + b)
        h_t[k]  = h~_t[k]        if t mod T_k == 0
                  h_{t-1}[k]     otherwise

    A module reads only from itself and slower modules: in the notes'
    convention `W_hh` is block upper triangular, block `(k, j)` (from module
    `j` into module `k`) is zero for `j < k`. The stored `recurrent_kernel =
    W_hh^T` is therefore block *lower* triangular; a fixed mask multiplies it
    in every step (and at initialisation), so the zero blocks get zero
    gradient and stay zero under any optimizer.

    State: `[h_t, t]`, where `t` [batch, 1] is the step counter, kept in the
    state (a float: exact up to 2^24 steps in float32) so that `keras.layers.RNN`
    with `return_state`, `initial_state` or a stateful layer carries the
    clock across calls. The zero initial state starts the clock at 0, where
    every module runs. The output is `h_t`.

    Args:
      units: size of `h`; a multiple of `len(periods)`.
      periods: strictly increasing positive integer periods, one per module
        (the paper uses powers of two).
      activation: the nonlinearity.
      kernel_initializer: initializer of `kernel` [input_dim, units].
      recurrent_initializer: initializer of `recurrent_kernel` [units, units],
        masked to the allowed blocks.
      bias_initializer: initializer of `bias` [units].
      **kwargs: passed to `keras.layers.Layer`.

    Raises:
      ValueError: if `units` is not a positive multiple of `len(periods)`, or
        the periods are not strictly increasing positive integers.
    """

    def __init__(self, units, periods=(1, 2, 4, 8), activation="tanh", **kwargs):
        super().__init__(units, **kwargs)
        periods = tuple(periods)
        if (
            not periods
            or any(isinstance(p, bool) or not isinstance(p, numbers.Integral) for p in periods)
            or any(p <= 0 for p in periods)
            or any(a >= b for a, b in zip(periods, periods[1:]))
        ):
            raise ValueError(
                f"periods must be strictly increasing positive integers. Received: periods={periods}"
            )
        if self.units % len(periods):
            raise ValueError(
                f"units must be a multiple of the number of modules ({len(periods)}). "
                f"Received: units={self.units}, periods={periods}"
            )
        self.periods = tuple(int(p) for p in periods)
        self.activation = keras.activations.get(activation)
        self.state_size = [self.units, 1]
        size = self.units // len(self.periods)
        module = np.repeat(np.arange(len(self.periods)), size)  # module of each unit
        self._unit_periods = np.repeat(self.periods, size).astype("float32")
        # recurrent_kernel[j, k] carries unit j into unit k: allowed from slower modules.
        self._mask = (module[:, None] >= module[None, :]).astype("float32")

    @property
    def recurrent_mask(self):
        """The 0/1 mask [units, units] of `recurrent_kernel` (block lower triangular)."""
        return self._mask

    def build(self, input_shape):
        base = self.recurrent_initializer
        mask = self._mask

        def masked_initializer(shape, dtype=None):
            return base(shape, dtype=dtype) * ops.cast(mask, dtype)

        self.kernel = self.add_weight(
            shape=(input_shape[-1], self.units), initializer=self.kernel_initializer, name="kernel"
        )
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, self.units), initializer=masked_initializer, name="recurrent_kernel"
        )
        self.bias = self.add_weight(
            shape=(self.units,), initializer=self.bias_initializer, name="bias"
        )

    def call(self, inputs, states, training=False):
        h_prev, t = states
        masked_kernel = self.recurrent_kernel * ops.cast(self._mask, self.compute_dtype)  # W_hh^T
        h_tilde = self.activation(
            ops.matmul(h_prev, masked_kernel) + ops.matmul(inputs, self.kernel) + self.bias
        )
        periods = ops.cast(self._unit_periods, t.dtype)
        active = ops.equal(ops.mod(t, periods), 0.0)  # [batch, units], t broadcast
        h = ops.where(active, h_tilde, h_prev)
        return h, [h, ops.stop_gradient(t + 1.0)]

    def get_config(self):
        return {
            **super().get_config(),
            "periods": list(self.periods),
            "activation": keras.activations.serialize(self.activation),
        }


_CLASSES = {
    "rnn": SimpleRNNCell,
    "lstm": LSTMCell,
    "peephole": PeepholeLSTMCell,
    "coupled": CoupledLSTMCell,
    "gru": GRUCell,
    "clockwork": ClockworkRNNCell,
}


def make_cell(name, units, **kwargs):
    """A cell by name, for `--cell=` flags.

        layer = keras.layers.RNN(make_cell("lstm", 128), return_sequences=True)

    Args:
      name: one of `CELLS`: "rnn", "lstm", "peephole", "coupled", "gru", "clockwork".
      units: size of the hidden state.
      **kwargs: further arguments of that cell's class (e.g. `reset_after` for
        "gru", `periods` for "clockwork").

    Returns:
      A new, unbuilt cell.

    Raises:
      ValueError: for an unknown name, a keyword the cell does not take, or a
        value it rejects.
    """
    if name not in _CLASSES:
        raise ValueError(f"Unknown cell; expected one of {CELLS}. Received: name={name!r}")
    return _CLASSES[name](units, **kwargs)
