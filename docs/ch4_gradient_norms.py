"""Makes docs/ch4_gradient_norms.png and docs/ch4_gradient_norms.json.

    .venv/bin/python docs/ch4_gradient_norms.py [train_steps=1000]

Left: ||dL/dh_t|| of freshly initialised cells on T = 100 random inputs (loss: the
default random projection of h_T of `mp.rnn.tbptt.gradient_norms`). Right: the same
after `train_steps` Adam steps on the adding problem at T = 100 (loss: the model's own
squared error). About 2-3 minutes on 2 CPU cores.

Course: ch4.2 Vanishing gradients problem, ch4.3 Long Short Term Memory (LSTM).
"""

import json
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from mp.rnn.cells import make_cell
from mp.rnn.tasks import ADDING_BASELINE_MSE, adding_problem, sequence_model
from mp.rnn.tbptt import dominant_eigenvalue, gradient_norms, plot_gradient_norms

T, UNITS, BATCH = 100, 32, 32
TRAIN_STEPS = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
COLORS = {"rnn": "C0", "rnn 0.5": "C9", "rnn 1.5": "C4", "lstm": "C1", "lstm 3": "C3", "gru": "C2"}


def init_curves():
    """(curves, eigenvalues, colors) at initialisation."""
    x = np.random.default_rng(0).normal(size=(BATCH, T, 2)).astype(np.float32)
    curves, eigenvalues, colors = {}, {}, {}
    for name, value in [
        ("rnn", None),
        ("rnn", 0.5),
        ("rnn", 1.5),
        ("lstm", None),
        ("lstm", 3.0),
        ("gru", None),
    ]:
        keras.utils.set_random_seed(0)
        cell = make_cell(name, UNITS)
        cell.build((None, 2))
        label = name
        if name == "rnn":
            label = "rnn (orthogonal W_hh)"
            if value is not None:  # rescale W_hh to spectral radius `value`
                w = cell.recurrent_kernel.numpy()
                cell.recurrent_kernel.assign(w * value / dominant_eigenvalue(w))
                label = f"rnn (W_hh scaled to {value:g})"
            eigenvalues[label] = dominant_eigenvalue(cell.recurrent_kernel)
        if name == "lstm":
            bias = cell.bias.numpy()  # Keras layout i, f, c~, o: the forget block is the 2nd
            if value is not None:
                bias[UNITS : 2 * UNITS] = value
                cell.bias.assign(bias)
            label = f"lstm (forget bias {bias[UNITS]:g})"
        key = name + ("" if value is None else f" {value:g}")
        curves[label] = gradient_norms(cell, x)
        colors[label] = COLORS[key]
    return curves, eigenvalues, colors


def trained_curves():
    """(curves, eigenvalues, colors, test_mse) after training on the adding problem."""
    x_train, y_train = adding_problem(TRAIN_STEPS * BATCH, T, seed=1)
    x_test, y_test = adding_problem(512, T, seed=2)
    curves, eigenvalues, colors, mse, seconds = {}, {}, {}, {}, {}
    for name in ("rnn", "lstm", "gru"):
        keras.utils.set_random_seed(0)
        model = sequence_model(name, units=UNITS, output_units=1, input_shape=(T, 2))
        model.compile(optimizer=keras.optimizers.Adam(1e-2, clipnorm=1.0), loss="mse")
        tic = time.time()
        model.fit(x_train, y_train, batch_size=BATCH, epochs=1, verbose=0)
        seconds[name] = time.time() - tic
        mse[name] = float(model.evaluate(x_test, y_test, verbose=0))
        cell, readout = model.get_layer("rnn_1").cell, model.get_layer("readout")
        y = tf.constant(y_test[:64])
        label = f"{name}, test MSE {mse[name]:.4f}"
        curves[label] = gradient_norms(
            cell, x_test[:64], loss_fn=lambda h: tf.square(readout(h)[:, 0] - y)
        )
        colors[label] = COLORS[name]
        if name == "rnn":
            eigenvalues[label] = dominant_eigenvalue(cell.recurrent_kernel)
        print(name, "test MSE", mse[name], "train seconds", round(seconds[name], 1), flush=True)
    return curves, eigenvalues, colors, mse, seconds


def main():
    from matplotlib.figure import Figure

    init, init_eig, init_colors = init_curves()
    trained, trained_eig, trained_colors, mse, seconds = trained_curves()
    fig = Figure(figsize=(14, 5))
    axes = fig.subplots(1, 2)
    for ax, curves, eigenvalues, colors, title in (
        (axes[0], init, init_eig, init_colors, f"At initialisation: T = {T} random inputs"),
        (
            axes[1],
            trained,
            trained_eig,
            trained_colors,
            f"After {TRAIN_STEPS} steps on the adding problem (T = {T}, baseline MSE 0.167)",
        ),
    ):
        plot_gradient_norms(curves, eigenvalues=eigenvalues, title=title, ax=ax)
        for line, label in zip(ax.get_lines(), curves):
            line.set_color(colors[label])
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig("docs/ch4_gradient_norms.png", dpi=100)

    def summary(curves):
        return {
            k: {"first_to_last_ratio": float(v[0] / v[-1]), "norms": v.tolist()}
            for k, v in curves.items()
        }

    out = {
        "command": "python docs/ch4_gradient_norms.py " + str(TRAIN_STEPS),
        "seq_len": T,
        "units": UNITS,
        "note": "norm 0.0 = below the float32 range (drawn as a gap)",
        "init": {
            "inputs": f"N(0, 1), [{BATCH}, {T}, 2]",
            "loss": "default fixed random projection of h_T",
            "eigenvalues": init_eig,
            "curves": summary(init),
        },
        "trained": {
            "task": f"adding problem T={T}, {TRAIN_STEPS} Adam steps "
            f"(lr 1e-2, clipnorm 1, batch {BATCH}), {UNITS} units",
            "loss": "the model's squared error on 64 test sequences",
            "test_mse": mse,
            "baseline_mse": ADDING_BASELINE_MSE,
            "train_seconds": seconds,
            "eigenvalues": trained_eig,
            "curves": summary(trained),
        },
    }
    with open("docs/ch4_gradient_norms.json", "w") as f:
        json.dump(out, f, indent=1)
    for part in ("init", "trained"):
        print(part, {k: v["first_to_last_ratio"] for k, v in out[part]["curves"].items()})


if __name__ == "__main__":
    main()
