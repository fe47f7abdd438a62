"""Tests of mp.rnn.cells: Keras equivalence, NumPy references of the equations, gradients."""

import keras
import numpy as np
import pytest
import tensorflow as tf

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
from mp.training.gradcheck import assert_gradients_match, check_layer

BATCH, STEPS, INPUT_DIM, UNITS = 3, 7, 5, 4

# Every cell, plus the GRU's second bias convention.
VARIANTS = [(name, {}) for name in CELLS] + [("gru", {"reset_after": False})]
VARIANT_IDS = [name + ("_reset_before" if kwargs else "") for name, kwargs in VARIANTS]


def _inputs(batch=BATCH, steps=STEPS, dim=INPUT_DIM, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, steps, dim)).astype("float32")


def _randomize(layer, seed=1, scale=0.5):
    """Random weights everywhere (biases too), so no block of the layout is left untested."""
    rng = np.random.default_rng(seed)
    layer.set_weights([scale * rng.normal(size=w.shape).astype("float32") for w in layer.weights])


def _rnn(cell, x, **kwargs):
    layer = keras.layers.RNN(cell, return_sequences=True, **kwargs)
    layer(x)  # build
    _randomize(layer)
    return layer


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


# NumPy references, written in the notes' column convention: W_xh = kernel^T, W_hh =
# recurrent_kernel^T, states are columns [units, batch]. Each returns the outputs [B, T, units].


def _vanilla_reference(x, kernel, recurrent_kernel, bias):
    w_xh, w_hh = kernel.T, recurrent_kernel.T
    h = np.zeros((w_hh.shape[0], x.shape[0]))
    outputs = []
    for t in range(x.shape[1]):
        h = np.tanh(w_hh @ h + w_xh @ x[:, t].T + bias[:, None])
        outputs.append(h.T)
    return np.stack(outputs, axis=1)


def _lstm_reference(x, kernel, recurrent_kernel, bias, peepholes=None, coupled=False):
    """LSTM with W = [W_x W_h] acting on [x_t; h_{t-1}]; optional peepholes or f = 1 - i."""
    units = recurrent_kernel.shape[0]
    w = np.concatenate([kernel, recurrent_kernel], axis=0).T  # [gates*units, D + units]
    h = np.zeros((units, x.shape[0]))
    c = np.zeros_like(h)
    p_i, p_f, p_o = (np.zeros((units, 1)),) * 3 if peepholes is None else peepholes
    outputs = []
    for t in range(x.shape[1]):
        a = w @ np.concatenate([x[:, t].T, h]) + bias[:, None]
        if coupled:  # blocks i, c~, o
            i = _sigmoid(a[:units])
            f = 1.0 - i
            g = np.tanh(a[units : 2 * units])
            z_o = a[2 * units :]
        else:  # blocks i, f, c~, o (the notes list them as i, f, o, g)
            i = _sigmoid(a[:units] + p_i * c)
            f = _sigmoid(a[units : 2 * units] + p_f * c)
            g = np.tanh(a[2 * units : 3 * units])
            z_o = a[3 * units :]
        c = f * c + i * g
        o = _sigmoid(z_o + p_o * c)
        h = o * np.tanh(c)
        outputs.append(h.T)
    return np.stack(outputs, axis=1)


def _gru_reference(x, kernel, recurrent_kernel, bias, reset_after):
    units = recurrent_kernel.shape[0]
    w_z, w_r, w_h = np.split(kernel.T, 3)
    u_z, u_r, u_h = np.split(recurrent_kernel.T, 3)
    if reset_after:
        b_z, b_r, b_h = np.split(bias[0][:, None], 3)
        rb_z, rb_r, rb_h = np.split(bias[1][:, None], 3)
    else:
        b_z, b_r, b_h = np.split(bias[:, None], 3)
        rb_z = rb_r = rb_h = 0.0
    h = np.zeros((units, x.shape[0]))
    outputs = []
    for t in range(x.shape[1]):
        x_t = x[:, t].T
        z = _sigmoid(w_z @ x_t + b_z + u_z @ h + rb_z)
        r = _sigmoid(w_r @ x_t + b_r + u_r @ h + rb_r)
        if reset_after:
            h_tilde = np.tanh(w_h @ x_t + b_h + r * (u_h @ h + rb_h))
        else:
            h_tilde = np.tanh(w_h @ x_t + b_h + u_h @ (r * h))
        h = z * h + (1 - z) * h_tilde
        outputs.append(h.T)
    return np.stack(outputs, axis=1)


def _clockwork_reference(x, kernel, recurrent_kernel, bias, periods):
    """Koutnik et al.: module k runs at steps t = 0, T_k, 2 T_k, ...; W_hh block upper triangular."""
    units, g = recurrent_kernel.shape[0], len(periods)
    size = units // g
    w_xh, w_hh = kernel.T, recurrent_kernel.T.copy()
    for k in range(g):  # block row k (into module k) reads only modules j >= k
        for j in range(k):
            w_hh[k * size : (k + 1) * size, j * size : (j + 1) * size] = 0.0
    h = np.zeros((units, x.shape[0]))
    outputs = []
    for t in range(x.shape[1]):
        h_tilde = np.tanh(w_hh @ h + w_xh @ x[:, t].T + bias[:, None])
        for k, period in enumerate(periods):
            if t % period == 0:
                h[k * size : (k + 1) * size] = h_tilde[k * size : (k + 1) * size]
        outputs.append(h.T.copy())
    return np.stack(outputs, axis=1)


# --- Keras equivalence ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ours, theirs",
    [
        (lambda: SimpleRNNCell(UNITS), lambda **kw: keras.layers.SimpleRNN(UNITS, **kw)),
        (lambda: LSTMCell(UNITS), lambda **kw: keras.layers.LSTM(UNITS, **kw)),
        (lambda: GRUCell(UNITS), lambda **kw: keras.layers.GRU(UNITS, **kw)),
        (
            lambda: GRUCell(UNITS, reset_after=False),
            lambda **kw: keras.layers.GRU(UNITS, reset_after=False, **kw),
        ),
    ],
    ids=["rnn", "lstm", "gru", "gru_reset_before"],
)
def test_matches_keras_layer_with_copied_weights(ours, theirs):
    x = _inputs()
    layer = _rnn(ours(), x, return_state=True)
    reference = theirs(return_sequences=True, return_state=True)
    reference(x)
    assert [w.shape for w in reference.weights] == [w.shape for w in layer.weights]
    reference.set_weights(layer.get_weights())
    got, expected = layer(x), reference(x)
    assert len(got) == len(expected)  # sequence, then every state
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_lstm_initial_bias_equals_keras():
    # unit_forget_bias: bias = [0]*u (i), [1]*u (f), [0]*2u (c~, o), in both.
    x = _inputs()
    ours = keras.layers.RNN(LSTMCell(UNITS))
    theirs = keras.layers.LSTM(UNITS)
    ours(x), theirs(x)
    np.testing.assert_array_equal(ours.cell.bias.numpy(), theirs.cell.bias.numpy())
    np.testing.assert_array_equal(ours.cell.bias.numpy(), np.repeat([0.0, 1.0, 0.0, 0.0], UNITS))


def test_forget_bias_of_the_variants():
    x = _inputs()
    peephole = keras.layers.RNN(PeepholeLSTMCell(UNITS))
    coupled = keras.layers.RNN(CoupledLSTMCell(UNITS))
    plain = keras.layers.RNN(LSTMCell(UNITS, unit_forget_bias=False))
    for layer in (peephole, coupled, plain):
        layer(x)
    np.testing.assert_array_equal(
        peephole.cell.bias.numpy(), np.repeat([0.0, 1.0, 0.0, 0.0], UNITS)
    )
    # Coupled: f = 1 - sigm(b_i) = sigm(-b_i), so f = sigm(1) needs b_i = -1 (blocks i, c~, o).
    np.testing.assert_array_equal(coupled.cell.bias.numpy(), np.repeat([-1.0, 0.0, 0.0], UNITS))
    np.testing.assert_array_equal(plain.cell.bias.numpy(), np.zeros(4 * UNITS))


def test_peephole_with_zero_peepholes_equals_lstm():
    x = _inputs()
    peephole = _rnn(PeepholeLSTMCell(UNITS), x)
    lstm = _rnn(LSTMCell(UNITS), x)
    for name in ("kernel", "recurrent_kernel", "bias"):
        getattr(lstm.cell, name).assign(getattr(peephole.cell, name))
    assert not np.allclose(peephole(x), lstm(x), atol=1e-3)  # random peepholes do matter
    for p in (peephole.cell.input_peephole, peephole.cell.forget_peephole):
        p.assign(np.zeros(UNITS))
    assert not np.allclose(peephole(x), lstm(x), atol=1e-3)  # the output peephole alone too
    peephole.cell.output_peephole.assign(np.zeros(UNITS))
    np.testing.assert_allclose(peephole(x), lstm(x), rtol=1e-6, atol=1e-7)


# --- NumPy references of the equations --------------------------------------------------------


@pytest.mark.parametrize("name, kwargs", VARIANTS, ids=VARIANT_IDS)
def test_matches_numpy_reference(name, kwargs):
    x = _inputs()
    units = 8 if name == "clockwork" else UNITS  # two units per module of (1, 2, 4, 8)
    layer = _rnn(make_cell(name, units, **kwargs), x)
    cell = layer.cell
    weights = [cell.kernel.numpy(), cell.recurrent_kernel.numpy(), cell.bias.numpy()]
    x64 = x.astype(np.float64)
    if name == "rnn":
        expected = _vanilla_reference(x64, *weights)
    elif name == "lstm":
        expected = _lstm_reference(x64, *weights)
    elif name == "peephole":
        peepholes = [
            p.numpy()[:, None]
            for p in (cell.input_peephole, cell.forget_peephole, cell.output_peephole)
        ]
        expected = _lstm_reference(x64, *weights, peepholes=peepholes)
    elif name == "coupled":
        expected = _lstm_reference(x64, *weights, coupled=True)
    elif name == "gru":
        expected = _gru_reference(x64, *weights, reset_after=cell.reset_after)
    else:
        expected = _clockwork_reference(x64, *weights, periods=cell.periods)
    np.testing.assert_allclose(layer(x), expected, rtol=1e-5, atol=1e-5)


# --- Clockwork RNN ------------------------------------------------------------------------------


def test_clockwork_module_keeps_its_state_between_ticks():
    x = _inputs(steps=9)
    layer = _rnn(ClockworkRNNCell(8, periods=(1, 2, 4, 8)), x)
    h = layer(x).numpy()  # [B, 9, 8]; module k holds units 2k, 2k+1
    slow = h[:, :, 4:6]  # period 4: runs at t = 0, 4, 8
    for t in (1, 2, 3):
        np.testing.assert_array_equal(slow[:, t], slow[:, 0])
    for t in (5, 6, 7):
        np.testing.assert_array_equal(slow[:, t], slow[:, 4])
    assert np.all(slow[:, 4] != slow[:, 3])  # ...and does change at the tick
    fast = h[:, :, 0:2]  # period 1: changes at every step
    assert np.all(fast[:, 1:] != fast[:, :-1])


def test_clockwork_step_counter_is_carried_in_the_state():
    # Two calls of 3 and 4 steps, the state passed on, equal one call of 7 steps.
    x = _inputs()
    layer = _rnn(ClockworkRNNCell(8), x, return_state=True)
    whole, _, counter = layer(x)
    np.testing.assert_array_equal(counter, np.full((BATCH, 1), STEPS))
    first, h, t = layer(x[:, :3])
    second, _, _ = layer(x[:, 3:], initial_state=[h, t])
    np.testing.assert_allclose(np.concatenate([first, second], axis=1), whole, atol=1e-6)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_clockwork_lower_blocks_of_w_hh_stay_zero(optimizer):
    x = _inputs()
    cell = ClockworkRNNCell(8, periods=(1, 2, 4, 8))
    layer = keras.layers.RNN(cell, return_sequences=True)
    layer(x)
    lower = np.tril(np.ones((4, 4)), k=-1).astype(bool)  # block (k, j), j < k: module j into k

    def lower_blocks(w_hh):  # [8, 8] in blocks of 2 -> the entries of the lower blocks
        return w_hh.reshape(4, 2, 4, 2).transpose(0, 2, 1, 3)[lower]

    w_hh = cell.recurrent_kernel.numpy().T  # the notes' W_hh
    assert np.all(lower_blocks(w_hh) == 0) and np.all(
        w_hh[~np.kron(lower, np.ones((2, 2))).astype(bool)] != 0
    )
    opt = keras.optimizers.get(optimizer)
    for _ in range(2):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.square(layer(x) - 1.0))
        grads = tape.gradient(loss, layer.trainable_variables)
        opt.apply_gradients(zip(grads, layer.trainable_variables))
    w_hh_after = cell.recurrent_kernel.numpy().T
    assert np.all(lower_blocks(grads[1].numpy().T) == 0)
    assert np.all(lower_blocks(w_hh_after) == 0)
    assert not np.allclose(w_hh_after, w_hh)  # the allowed blocks did move


# --- Stacking (the matrix form of the notes) ----------------------------------------------------


def test_stacked_cells_equal_two_layers_in_sequence():
    x = _inputs()
    stacked = _rnn(keras.layers.StackedRNNCells([LSTMCell(UNITS), GRUCell(3)]), x)
    first = keras.layers.RNN(LSTMCell(UNITS), return_sequences=True)
    second = keras.layers.RNN(GRUCell(3), return_sequences=True)
    second(first(x))
    first.set_weights(stacked.get_weights()[:3])
    second.set_weights(stacked.get_weights()[3:])
    np.testing.assert_allclose(stacked(x), second(first(x)), rtol=1e-5, atol=1e-6)


def test_stacked_vanilla_matches_the_matrix_form():
    # h_t^l = tanh(W^l [h_t^{l-1}; h_{t-1}^l] + b^l), W^l = [kernel^l; recurrent_kernel^l]^T.
    x = _inputs()
    stacked = _rnn(keras.layers.StackedRNNCells([SimpleRNNCell(UNITS), SimpleRNNCell(3)]), x)
    (k1, r1, b1), (k2, r2, b2) = (
        (c.kernel.numpy(), c.recurrent_kernel.numpy(), c.bias.numpy()) for c in stacked.cell.cells
    )
    w = [np.concatenate([k1, r1]).T, np.concatenate([k2, r2]).T]
    b = [b1[:, None], b2[:, None]]
    h = [np.zeros((UNITS, BATCH)), np.zeros((3, BATCH))]
    outputs = []
    for t in range(STEPS):
        below = x[:, t].T.astype(np.float64)  # h_t^0 = x_t
        for level in range(2):
            h[level] = np.tanh(w[level] @ np.concatenate([below, h[level]]) + b[level])
            below = h[level]
        outputs.append(below.T)
    np.testing.assert_allclose(stacked(x), np.stack(outputs, axis=1), rtol=1e-5, atol=1e-5)


# --- Gradients, serialization, tracing ----------------------------------------------------------


@pytest.mark.parametrize("name, kwargs", VARIANTS, ids=VARIANT_IDS)
def test_gradients_match_finite_differences(name, kwargs):
    # float64, 4 steps of 2 inputs, 3 units (clockwork: periods (1, 2, 4), one unit per module).
    if name == "clockwork":
        kwargs = {"periods": (1, 2, 4)}
    keras.utils.set_random_seed(0)
    errors = check_layer(
        lambda: keras.layers.RNN(make_cell(name, 3, **kwargs), return_sequences=True),
        (4, 2),
        max_coordinates=8,
    )
    assert len(errors) >= 4  # the input and kernel, recurrent_kernel, bias (+ peepholes)
    assert_gradients_match(errors, tolerance=1e-6)


def _model(name, kwargs):
    inputs = keras.Input((STEPS, INPUT_DIM))
    outputs = keras.layers.RNN(make_cell(name, 8, **kwargs), return_sequences=True)(inputs)
    return keras.Model(inputs, outputs)


@pytest.mark.parametrize("name, kwargs", VARIANTS, ids=VARIANT_IDS)
def test_config_round_trip_and_keras_file(name, kwargs, tmp_path):
    cell = make_cell(name, 8, **kwargs)
    clone = type(cell).from_config(cell.get_config())
    assert clone.get_config() == cell.get_config()
    model = _model(name, kwargs)
    _randomize(model)
    path = str(tmp_path / f"{name}.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded.layers[1].cell) is type(cell)
    x = _inputs()
    np.testing.assert_allclose(loaded(x), model(x), rtol=1e-6, atol=1e-6)


# One argument away from its default per cell, so a key missing from `get_config` shows; constant
# initializers, so a clone made from the config alone must start with the very same weights.
CONSTANT_INIT = {
    "kernel_initializer": "ones",
    "recurrent_initializer": {"class_name": "Constant", "config": {"value": 0.1}},
    "bias_initializer": {"class_name": "Constant", "config": {"value": 0.2}},
}
NON_DEFAULT = {
    "rnn": {"activation": "relu"},
    "lstm": {"unit_forget_bias": False},
    "peephole": {"peephole_initializer": {"class_name": "Constant", "config": {"value": 0.3}}},
    "coupled": {"unit_forget_bias": False},
    "gru": {"reset_after": False},
    "clockwork": {"periods": (1, 3), "activation": "sigmoid"},
}


@pytest.mark.parametrize("name", CELLS)
def test_get_config_keeps_every_argument(name):
    cell = make_cell(name, 8, **CONSTANT_INIT, **NON_DEFAULT[name])
    clone = type(cell).from_config(cell.get_config())
    assert clone.get_config() == cell.get_config()
    x = _inputs()
    layer, copy = keras.layers.RNN(cell), keras.layers.RNN(clone)
    np.testing.assert_allclose(copy(x), layer(x), rtol=1e-6, atol=1e-6)
    for w, w_copy in zip(layer.weights, copy.weights, strict=True):
        np.testing.assert_array_equal(w_copy.numpy(), w.numpy())
    # The arguments matter: with the defaults (and the same initializers) the weights or the
    # outputs differ, so the comparisons above would catch an argument the config lost.
    default = keras.layers.RNN(make_cell(name, 8, **CONSTANT_INIT))
    same_outputs = np.allclose(default(x), layer(x), atol=1e-4)
    same_weights = [w.shape for w in default.weights] == [w.shape for w in layer.weights] and all(
        np.array_equal(a, b) for a, b in zip(default.get_weights(), layer.get_weights())
    )
    assert not (same_outputs and same_weights)


@pytest.mark.parametrize("name, kwargs", VARIANTS, ids=VARIANT_IDS)
def test_eager_equals_tf_function(name, kwargs):
    model = _model(name, kwargs)
    _randomize(model)
    function = tf.function(
        lambda x: model(x), input_signature=[tf.TensorSpec((None, STEPS, INPUT_DIM), tf.float32)]
    )
    for batch in (1, 3):
        x = _inputs(batch=batch, seed=batch)
        np.testing.assert_allclose(function(x), model(x), rtol=1e-5, atol=1e-6)
    assert function.experimental_get_tracing_count() == 1


# --- make_cell ----------------------------------------------------------------------------------


def test_make_cell_builds_each_class():
    classes = [
        SimpleRNNCell,
        LSTMCell,
        PeepholeLSTMCell,
        CoupledLSTMCell,
        GRUCell,
        ClockworkRNNCell,
    ]
    for name, cls in zip(CELLS, classes):
        cell = make_cell(name, 8)
        assert type(cell) is cls and cell.units == 8
    assert make_cell("gru", 4, reset_after=False).reset_after is False


def test_make_cell_errors():
    with pytest.raises(ValueError, match=r"lstm.*Received: name='lstn'"):
        make_cell("lstn", 4)
    for units in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="units must be a positive integer"):
            make_cell("lstm", units)
    with pytest.raises(ValueError, match=r"multiple of the number of modules \(4\)"):
        make_cell("clockwork", 6)
    for periods in ((2, 1), (1, 1), (0, 2), (), (1, 2.5)):
        with pytest.raises(ValueError, match="strictly increasing positive integers"):
            make_cell("clockwork", 4, periods=periods)
    with pytest.raises(ValueError, match="Unrecognized keyword arguments"):
        make_cell("lstm", 4, reset_after=False)  # a GRU argument
