"""Vanishing gradients, cell by cell: `||dL/dh_t||` at initialisation and after training.

Two measurements side by side (`mp.rnn.tbptt.gradient_norms`, T = 100 steps):

    initial = vanishing.initial_curves()     # fresh cells on N(0, 1) inputs; the loss is a
                                             # fixed random projection of h_T
    trained = vanishing.trained_curves(1000) # rnn, lstm, gru after Adam steps on the adding
                                             # problem; the loss is their squared error
    figure = vanishing.figure(initial, trained)

At initialisation the vanilla RNN's curve falls like |lambda|max(W_hh)^(T - t)
(the orthogonal initialisation has |lambda| = 1, but tanh' < 1 still shrinks it;
W_hh scaled to 0.5 vanishes fast, to 1.5 it need not), and the LSTM's falls like
the product of its forget gates (faster with forget bias 1 than 3). After
training on the adding problem the gated cells keep the gradient level across
the sequence (the first marked value must be carried), the vanilla RNN's still
vanishes and it stays at the 1/6 baseline. `benchmarks/gradient_norms.py` makes
the README's figure, docs/ch4_gradient_norms.png, with these functions.

Course: ch4.2 Vanishing gradients problem, ch4.3 Long Short Term Memory (LSTM).
"""

import dataclasses
import time

import keras
import numpy as np
import tensorflow as tf

from mp.rnn import _checks
from mp.rnn.cells import make_cell
from mp.rnn.data import adding_problem
from mp.rnn.many_to_one import sequence_model
from mp.rnn.tbptt import dominant_eigenvalue, gradient_norms, plot_gradient_norms

SEQ_LEN, UNITS, BATCH = 100, 32, 32
# One colour per cell and variant, the same in both panels.
COLORS = {"rnn": "C0", "rnn 0.5": "C9", "rnn 1.5": "C4", "lstm": "C1", "lstm 3": "C3", "gru": "C2"}
# (cell, variant) at initialisation: the vanilla RNN's W_hh rescaled to a spectral radius,
# the LSTM's forget bias set; None is the cell's own initialisation.
INITIAL_CELLS = (
    ("rnn", None),
    ("rnn", 0.5),
    ("rnn", 1.5),
    ("lstm", None),
    ("lstm", 3.0),
    ("gru", None),
)
TRAINED_CELLS = ("rnn", "lstm", "gru")
GRADIENT_EXAMPLES = 64  # test sequences of the trained curves


@dataclasses.dataclass
class Curves:
    """One panel of curves: label -> `||dL/dh_t||` [T], with what the legend and notes need.

    Attributes:
      title: the panel's title.
      curves: label -> array [T] of `gradient_norms`.
      eigenvalues: label -> dominant eigenvalue of W_hh (vanilla RNN curves).
      colors: label -> matplotlib colour.
      test_mse: cell -> test MSE on the adding problem (trained curves only).
      train_seconds: cell -> training time in seconds (trained curves only).
    """

    title: str
    curves: dict = dataclasses.field(default_factory=dict)
    eigenvalues: dict = dataclasses.field(default_factory=dict)
    colors: dict = dataclasses.field(default_factory=dict)
    test_mse: dict = dataclasses.field(default_factory=dict)
    train_seconds: dict = dataclasses.field(default_factory=dict)

    def summary(self):
        """label -> `{"first_to_last_ratio": ||dL/dh_1|| / ||dL/dh_T||, "norms": [...]}`."""
        return {
            label: {"first_to_last_ratio": float(norms[0] / norms[-1]), "norms": norms.tolist()}
            for label, norms in self.curves.items()
        }


def initial_curves(seq_len=SEQ_LEN, units=UNITS, batch=BATCH):
    """Freshly initialised cells (`INITIAL_CELLS`, seed 0) on `[batch, seq_len, 2]` N(0, 1) inputs.

    The loss is `gradient_norms`' default, a fixed random projection of h_T.

    Returns:
      `Curves`, with the dominant eigenvalue of each vanilla RNN's W_hh.
    """
    seq_len = _checks.count("seq_len", seq_len)
    units, batch = _checks.count("units", units), _checks.count("batch", batch)
    x = np.random.default_rng(0).normal(size=(batch, seq_len, 2)).astype(np.float32)
    out = Curves(f"At initialisation: T = {seq_len} random inputs")
    for name, value in INITIAL_CELLS:
        keras.utils.set_random_seed(0)
        cell = make_cell(name, units)
        cell.build((None, 2))
        label = name
        if name == "rnn":
            label = "rnn (orthogonal W_hh)"
            if value is not None:  # rescale W_hh to spectral radius `value`
                w = cell.recurrent_kernel.numpy()
                cell.recurrent_kernel.assign(w * value / dominant_eigenvalue(w))
                label = f"rnn (W_hh scaled to {value:g})"
            out.eigenvalues[label] = dominant_eigenvalue(cell.recurrent_kernel)
        if name == "lstm":
            bias = cell.bias.numpy()  # Keras layout i, f, c~, o: the forget block is the 2nd
            if value is not None:
                bias[units : 2 * units] = value
                cell.bias.assign(bias)
            label = f"lstm (forget bias {bias[units]:g})"
        out.curves[label] = gradient_norms(cell, x)
        out.colors[label] = COLORS[name + ("" if value is None else f" {value:g}")]
    return out


def trained_curves(train_steps=1000, seq_len=SEQ_LEN, units=UNITS, batch=BATCH):
    """`TRAINED_CELLS` after `train_steps` Adam steps on the adding problem (`model.fit`).

    Each network (`sequence_model`, seed 0) trains with Adam at 1e-2, gradients
    clipped to norm 1, on `train_steps * batch` sequences (seed 1), once through;
    the curves use 64 of 512 test sequences (seed 2) and each model's own squared
    error as the loss.

    Returns:
      `Curves`, with each cell's test MSE and training seconds, and the dominant
      eigenvalue of the vanilla RNN's W_hh.
    """
    train_steps = _checks.count("train_steps", train_steps)
    seq_len = _checks.count("seq_len", seq_len, minimum=2)
    units, batch = _checks.count("units", units), _checks.count("batch", batch)
    x_train, y_train = adding_problem(train_steps * batch, seq_len, seed=1)
    x_test, y_test = adding_problem(512, seq_len, seed=2)
    out = Curves(
        f"After {train_steps} steps on the adding problem (T = {seq_len}, baseline MSE 0.167)"
    )
    for name in TRAINED_CELLS:
        keras.utils.set_random_seed(0)
        model = sequence_model(name, units=units, output_units=1, input_shape=(seq_len, 2))
        model.compile(optimizer=keras.optimizers.Adam(1e-2, clipnorm=1.0), loss="mse")
        tic = time.time()
        model.fit(x_train, y_train, batch_size=batch, epochs=1, verbose=0)
        out.train_seconds[name] = time.time() - tic
        mse = out.test_mse[name] = float(model.evaluate(x_test, y_test, verbose=0))
        cell, readout = model.get_layer("rnn_1").cell, model.get_layer("readout")
        y = tf.constant(y_test[:GRADIENT_EXAMPLES])
        label = f"{name}, test MSE {mse:.4f}"
        out.curves[label] = gradient_norms(
            cell,
            x_test[:GRADIENT_EXAMPLES],
            loss_fn=lambda h, readout=readout, y=y: tf.square(readout(h)[:, 0] - y),
        )
        out.colors[label] = COLORS[name]
        if name == "rnn":
            out.eigenvalues[label] = dominant_eigenvalue(cell.recurrent_kernel)
    return out


def figure(*panels):
    """One panel per `Curves`, side by side, log axes (`plot_gradient_norms`).

    Returns:
      A matplotlib `Figure`.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7 * len(panels), 5))
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    for ax, panel in zip(axes, panels):
        plot_gradient_norms(panel.curves, eigenvalues=panel.eigenvalues, title=panel.title, ax=ax)
        for line, label in zip(ax.get_lines(), panel.curves):
            line.set_color(panel.colors[label])
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
