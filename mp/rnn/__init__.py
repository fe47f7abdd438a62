"""Chapter 4: recurrent networks.

    cells    vanilla RNN, LSTM, peephole LSTM, coupled input-forget LSTM, GRU, Clockwork RNN:
             Keras RNN cells (`keras.layers.RNN(mp.rnn.LSTMCell(64))`), `make_cell(name, units)`
    tbptt    truncated backpropagation through time (state carried, gradient cut at segment
             borders) as an engine Task; ||dL/dh_t|| across time; the spectral radius of W_hh
    charlm   a character-level language model: vocabulary, model, sampling with temperature,
             bits per character
    tasks    the adding problem, images read row by row, the default English text,
             many-to-one sequence models, a regression Task

Course: ch4 Recurrent Neural Networks (4.1 BPTT, 4.2 vanishing gradients, 4.3 LSTM).
"""

from mp.rnn import cells, charlm, tasks, tbptt
from mp.rnn.cells import (
    CELLS,
    ClockworkRNNCell,
    CoupledLSTMCell,
    GRUCell,
    LSTMCell,
    PeepholeLSTMCell,
    SimpleRNNCell,
    make_cell,
)
