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
