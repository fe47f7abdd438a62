"""Conformance cases of chapter 4's recurrent cells (mp.rnn.cells).

Each case is `(name, build_fn, input_shape, output_shape, trainable_params)`:
a sequence of 5 steps of 3 features through `keras.layers.RNN(cell(4))`,
which returns the last output [4]. The parameter counts are worked out by
hand in the comments (input_dim D = 3, units u = 4).
"""

import keras

from mp.rnn.cells import (
    ClockworkRNNCell,
    CoupledLSTMCell,
    GRUCell,
    LSTMCell,
    PeepholeLSTMCell,
    SimpleRNNCell,
)

STEPS, INPUT_DIM, UNITS = 5, 3, 4


def _model(make):
    def build():
        inputs = keras.Input((STEPS, INPUT_DIM))
        return keras.Model(inputs, keras.layers.RNN(make())(inputs))

    return build


CASES = [
    # kernel D*u = 12, recurrent_kernel u*u = 16, bias u = 4: 32.
    ("rnn_vanilla", _model(lambda: SimpleRNNCell(UNITS)), (STEPS, INPUT_DIM), (UNITS,), 32),
    # Four gates of 32 each: 4 * 32 = 128.
    ("rnn_lstm", _model(lambda: LSTMCell(UNITS)), (STEPS, INPUT_DIM), (UNITS,), 128),
    # The LSTM's 128 plus three peephole vectors of u = 4: 128 + 12 = 140.
    (
        "rnn_peephole_lstm",
        _model(lambda: PeepholeLSTMCell(UNITS)),
        (STEPS, INPUT_DIM),
        (UNITS,),
        140,
    ),
    # Three blocks (i, c~, o), no forget block: 3 * 32 = 96.
    ("rnn_coupled_lstm", _model(lambda: CoupledLSTMCell(UNITS)), (STEPS, INPUT_DIM), (UNITS,), 96),
    # reset_after: kernel 3*12 = 36, recurrent_kernel 3*16 = 48, bias [2, 3u] = 24: 108.
    ("rnn_gru", _model(lambda: GRUCell(UNITS)), (STEPS, INPUT_DIM), (UNITS,), 108),
    # reset before: one bias row, 36 + 48 + 12 = 96.
    (
        "rnn_gru_reset_before",
        _model(lambda: GRUCell(UNITS, reset_after=False)),
        (STEPS, INPUT_DIM),
        (UNITS,),
        96,
    ),
    # Periods (1, 2, 4, 8), one unit per module: stored like the vanilla cell, 12 + 16 + 4 = 32
    # (of the 16 recurrent weights the mask keeps the 4*5/2 = 10 of the allowed blocks).
    ("rnn_clockwork", _model(lambda: ClockworkRNNCell(UNITS)), (STEPS, INPUT_DIM), (UNITS,), 32),
]
