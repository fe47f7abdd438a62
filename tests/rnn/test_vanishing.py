"""Tests of mp.rnn.vanishing: ||dL/dh_t|| cell by cell, at initialisation and after training."""

import keras
import numpy as np
import pytest

from mp.rnn import vanishing
from mp.rnn.cells import make_cell
from mp.rnn.tbptt import gradient_norms


def test_initial_curves_of_every_cell_and_variant():
    out = vanishing.initial_curves(seq_len=6, units=4, batch=3)
    assert list(out.curves) == [
        "rnn (orthogonal W_hh)",
        "rnn (W_hh scaled to 0.5)",
        "rnn (W_hh scaled to 1.5)",
        "lstm (forget bias 1)",
        "lstm (forget bias 3)",
        "gru",
    ]
    assert all(curve.shape == (6,) for curve in out.curves.values())
    # W_hh rescaled to a spectral radius: the recorded eigenvalue is that radius.
    assert out.eigenvalues["rnn (W_hh scaled to 0.5)"] == pytest.approx(0.5)
    assert out.eigenvalues["rnn (W_hh scaled to 1.5)"] == pytest.approx(1.5)
    assert set(out.eigenvalues) == {label for label in out.curves if label.startswith("rnn")}
    assert out.colors["gru"] == vanishing.COLORS["gru"]
    # The first curve is the seeded vanilla cell's, on the seeded N(0, 1) inputs.
    keras.utils.set_random_seed(0)
    cell = make_cell("rnn", 4)
    cell.build((None, 2))
    x = np.random.default_rng(0).normal(size=(3, 6, 2)).astype(np.float32)
    np.testing.assert_allclose(out.curves["rnn (orthogonal W_hh)"], gradient_norms(cell, x))
    gru = out.summary()["gru"]
    assert gru["norms"] == out.curves["gru"].tolist()
    assert gru["first_to_last_ratio"] == pytest.approx(gru["norms"][0] / gru["norms"][-1])


def test_trained_curves_and_the_figure():
    trained = vanishing.trained_curves(train_steps=2, seq_len=4, units=3, batch=4)
    assert set(trained.test_mse) == {"rnn", "lstm", "gru"} == set(trained.train_seconds)
    labels = [f"{name}, test MSE {mse:.4f}" for name, mse in trained.test_mse.items()]
    assert list(trained.curves) == labels
    assert list(trained.eigenvalues) == [labels[0]]  # the vanilla RNN's W_hh
    assert "After 2 steps" in trained.title
    initial = vanishing.initial_curves(seq_len=4, units=3, batch=2)
    figure = vanishing.figure(initial, trained)
    assert [len(ax.get_lines()) for ax in figure.axes] == [6, 3]
    assert figure.axes[1].get_lines()[2].get_color() == vanishing.COLORS["gru"]
