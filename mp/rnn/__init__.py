"""Chapter 4: recurrent networks.

    cells        vanilla RNN, LSTM, peephole LSTM, coupled input-forget LSTM, GRU, Clockwork
                 RNN: Keras RNN cells (`keras.layers.RNN(mp.rnn.LSTMCell(64))`),
                 `make_cell(name, units)`
    many_to_one  stacked recurrent layers read at the last step, and their regression Task
    tbptt        truncated backpropagation through time (state carried, gradient cut at
                 segment borders) as an engine Task; ||dL/dh_t|| across time; the spectral
                 radius of W_hh
    charlm       a character-level language model: vocabulary, model, sampling with
                 temperature, bits per character
    data         the adding problem, images read row by row, the default English text
    problems     the chapter's problems as objects (data, model, Task, evaluation, report):
                 `AddingProblem`, `SequentialImages`, `CharLM`; `GradientNorms`
    vanishing    ||dL/dh_t|| cell by cell, at initialisation and after training (ch4.2)
    tasks        the former home of `data` and `many_to_one`, kept for old imports

Course: ch4 Recurrent Neural Networks (4.1 BPTT, 4.2 vanishing gradients, 4.3 LSTM).
"""

from mp.rnn import cells, charlm, data, many_to_one, problems, tasks, tbptt, vanishing
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
from mp.rnn.many_to_one import RegressionTask, sequence_model
from mp.rnn.problems import AddingProblem, CharLM, GradientNorms, SequentialImages, make_problem
