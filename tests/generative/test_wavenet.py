"""WaveNet (mp.generative.wavenet): causal field, exact normalisation, queue generation.

Receptive field by hand for kernel 2 and dilations 1, 2, 4: the input conv reads
x_{t-2}, x_{t-1} (after the shift), each layer adds (k-1) d: F = 2 + 1 + 2 + 4 = 9.
"""

import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf

from mp.generative import tcn, wavenet
from tests.generative import causality
from tests.generative.test_tcn import window_allowed

SMALL = dict(filters=3, skip_channels=3, head_units=4, kernel_size=2, dilations=(1, 2, 4))


def _model(num_classes=3, **kwargs):
    model = wavenet.WaveNet(num_classes, **(SMALL | kwargs))
    model(np.zeros((1, 4), np.int64))
    return model


def test_receptive_field_formula():
    assert wavenet.receptive_field(2, (1, 2, 4)) == 9
    assert wavenet.receptive_field(2, wavenet.stacked_dilations(10, stacks=2)) == 2 + 2 * 1023
    assert wavenet.receptive_field(3, (1, 2)) == 2 + 2 * 3
    with pytest.raises(ValueError, match="dilation"):
        wavenet.WaveNet(4, dilations=(1, 0))


def test_causality_harness_measures_the_formula_and_nothing_from_the_future():
    model = causality.build_in_float64(lambda: _model(3))
    assert model.receptive_field == 9
    causality.cannot_hide(model)
    steps = 12
    inputs = causality.random_inputs((steps, 3))
    # Output t (3 logits) may read the inputs at t-9 .. t-1 (3 values each), not t itself.
    allowed = window_allowed(steps, 9, strict=True, outputs_per_step=3, inputs_per_step=3)
    report = causality.check(model, inputs, allowed)
    assert report.ok, report.describe()
    # Lags 1..F: t - (first step seen) + 1 = F + 1.
    jac = causality.jacobians(model, inputs)
    assert tcn.measured_receptive_field(jac, 3, 3) == 9 + 1


def test_probabilities_sum_to_one_over_all_sequences():
    # V = 2, T = 5: the 32 sequences' probabilities sum to 1 exactly (autoregressive
    # factorisation with a softmax per step), in float64.
    model = causality.build_in_float64(lambda: _model(2))
    causality.cannot_hide(model)  # far from uniform conditionals
    ids = np.array(list(itertools.product([0, 1], repeat=5)), np.int64)
    log_probs = model.log_prob(tf.constant(ids)).numpy()
    assert np.exp(log_probs).sum() == pytest.approx(1.0, abs=1e-12)
    assert np.ptp(log_probs) > 0.1


def test_step_with_queues_equals_the_full_pass():
    keras.utils.set_random_seed(1)
    model = _model(5)
    ids = np.random.default_rng(0).integers(0, 5, size=(2, 20))
    full = model(ids).numpy()
    queues = model.initial_queues(2)
    previous = tf.zeros([2, 5])
    for t in range(20):
        logits, queues = model.step(previous, queues)
        np.testing.assert_allclose(logits, full[:, t], rtol=1e-5, atol=1e-5)
        previous = tf.one_hot(ids[:, t], 5)


def test_step_with_queues_under_mixed_bfloat16():
    # float32 variables, bfloat16 activations: the step casts the kernels as the full
    # pass's convolutions do (it raised a dtype error before), to bfloat16 round-off.
    from mp.engine.precision import precision_scope

    keras.utils.set_random_seed(1)
    with precision_scope("mixed_bfloat16"):
        model = _model(5)
    ids = np.random.default_rng(0).integers(0, 5, size=(2, 8))
    full = model(ids).numpy()
    queues = model.initial_queues(2)
    previous = tf.zeros([2, 5], tf.bfloat16)
    for t in range(8):
        logits, queues = model.step(previous, queues)
        assert logits.dtype == tf.float32
        np.testing.assert_allclose(logits, full[:, t], atol=0.05)
        previous = tf.one_hot(ids[:, t], 5, dtype=tf.bfloat16)


def test_fast_generation_draws_the_naive_samples():
    keras.utils.set_random_seed(2)
    model = _model(6, filters=8, skip_channels=8, head_units=16)
    for layer in model.layers_:  # sharper conditionals than at initialisation
        layer.dilated.kernel.assign(layer.dilated.kernel * 3.0)
    prompt = [1, 2, 3]
    fast = wavenet.fast_generate(model, 3, 30, seed=5, temperature=0.7, prompt=prompt)
    naive = wavenet.naive_generate(model, 3, 30, seed=5, temperature=0.7, prompt=prompt)
    np.testing.assert_array_equal(fast, naive)
    assert (fast[:, :3] == prompt).all() and len(np.unique(fast[:, 3:])) > 1
    other = wavenet.fast_generate(model, 3, 30, seed=6, temperature=0.7, prompt=prompt)
    assert not np.array_equal(other, fast)


def test_bits_per_char_scores_every_character_after_the_field_once():
    keras.utils.set_random_seed(3)
    model = _model(4)
    ids = np.random.default_rng(1).integers(0, 4, size=100)
    bits, count = wavenet.bits_per_char(model, ids, window=24, batch_size=3)
    # Reference: one pass over all 100 ids; position t >= F = 9 sees the same 9 ids.
    logits = model(ids[None])[0].numpy().astype(np.float64)
    log_softmax = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    nll = -log_softmax[np.arange(100), ids][9:]
    assert count == 91
    assert bits == pytest.approx(nll.mean() / np.log(2.0), rel=1e-5)


# --- as chapter 4's language model (apps/train_rnn.py --cell=wavenet) ----------------


def _text_problem(tmp_path, **kwargs):
    path = tmp_path / "text.txt"
    path.write_text("the cat sat on the mat.\n" * 200, encoding="utf-8")  # 4,800 characters
    options = dict(seq_len=16, batch_size=4, seed=7, filters=3, skip_channels=3, dilations=(1, 2))
    return wavenet.CharLMProblem(str(path), **(options | kwargs))


def test_language_model_windows_are_slices_of_the_training_text_from_any_step(tmp_path):
    problem = _text_problem(tmp_path)
    assert problem.receptive_field == 2 + 1 + 2
    # The text less its held-out 5%; the samples are primed with the last F characters.
    assert len(problem.train_ids) == 4800 - 240 and problem.priming == "mat.\n"
    from_start = [b.numpy() for b in problem.train_data(0).take(6)]
    resumed = next(iter(problem.train_data(5))).numpy()
    np.testing.assert_array_equal(resumed, from_start[5])  # a resumed run reads the same batch
    assert not np.array_equal(from_start[0], from_start[1])
    windows = np.lib.stride_tricks.sliding_window_view(problem.train_ids, 16)
    for batch in from_start:
        assert batch.shape == (4, 16)
        for row in batch:  # text[s : s + 16] for some start s
            assert (windows == row).all(axis=1).any()


def test_next_char_gradient_norms_vanish_before_the_field(tmp_path):
    # F = 5: the prediction after a window of 16 reads its last 5 characters only.
    problem = _text_problem(tmp_path)
    keras.utils.set_random_seed(4)
    model = problem.build_model()
    norms = wavenet.NextCharGradientNorms(problem.gradient_inputs(model))
    curve = norms.measure(model, "initial")
    assert curve.shape == (16,)
    assert (curve[:-5] == 0).all() and (curve[-5:] > 0).all()


def test_language_model_refuses_a_field_longer_than_the_held_out_text(tmp_path):
    # 240 held-out characters; dilations 1..128 give F = 2 + 255 = 257.
    with pytest.raises(ValueError, match="receptive field"):
        _text_problem(tmp_path, dilations=wavenet.stacked_dilations(8))
    with pytest.warns(UserWarning, match="not longer than the receptive"):
        _text_problem(tmp_path, seq_len=5)
