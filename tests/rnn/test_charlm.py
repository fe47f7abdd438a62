"""Tests of mp.rnn.charlm: vocabulary, language model, sampling, bits per character."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from mp.rnn.charlm import CharVocab, LanguageModel, bits_per_char, language_model, sample

TEXT = "to be, or not to be: that is the question."


def test_vocab_round_trip_and_unknown_character():
    vocab = CharVocab.from_text(TEXT)
    # Distinct characters: " ,.:abehinoqrstu" = 16, in code-point order.
    assert vocab.size == 16
    assert "".join(vocab.chars) == " ,.:abehinoqrstu"
    ids = vocab.encode(TEXT)
    assert ids.dtype == np.int32 and ids.shape == (len(TEXT),)
    assert vocab.encode("a")[0] == 4  # " ,.:" come first
    assert vocab.decode(ids) == TEXT
    again = CharVocab.from_json(vocab.to_json())
    assert again.chars == vocab.chars and again.decode(ids) == TEXT
    with pytest.raises(ValueError, match="'z'"):
        vocab.encode("to bez")
    with pytest.raises(ValueError, match=r"\[16\]"):
        vocab.decode([3, 16])


def _model(vocab_size=6, cell="lstm", num_layers=2, units=8):
    keras.utils.set_random_seed(0)
    return language_model(
        vocab_size, cell=cell, units=units, num_layers=num_layers, embedding_dim=4
    )


def test_language_model_shapes_parameters_and_state():
    model = _model(num_layers=2)
    ids = np.random.default_rng(0).integers(0, 6, size=(3, 10)).astype(np.int32)
    logits, state = model(ids, return_state=True)
    assert logits.shape == (3, 10, 6)
    assert [tuple(s.shape) for s in state] == [(3, 8)] * 4  # [h1, c1, h2, c2]
    # Embedding 6*4 = 24; LSTM 1: 4*(4*8 + 8*8 + 8) = 416; LSTM 2: 4*(8*8 + 8*8 + 8) = 544;
    # logits 8*6 + 6 = 54. Sum 1,038.
    assert model.count_params() == 1_038
    # Two halves with the state carried == one pass over the whole sequence.
    first, state_1 = model(ids[:, :4], return_state=True)
    second = model(ids[:, 4:], initial_state=state_1)
    np.testing.assert_allclose(
        np.concatenate([first, second], axis=1), logits, rtol=1e-5, atol=1e-6
    )


def test_language_model_saves_and_loads(tmp_path):
    model = _model(cell="gru", num_layers=1)
    path = tmp_path / "lm.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, LanguageModel) and loaded.get_config()["cell"] == "gru"
    ids = np.array([[1, 2, 3, 4, 5]], np.int32)
    np.testing.assert_allclose(loaded(ids), model(ids), rtol=1e-6)


def test_language_model_rejects_bad_sizes():
    with pytest.raises(ValueError, match="units"):
        language_model(5, units=0)


def test_bits_per_char_of_uniform_model_is_log2_v():
    # Zero readout weights: every logit is 0, p = 1/V, cross-entropy ln V nats = log2 V bits.
    model = _model(vocab_size=6)
    model.head.kernel.assign(tf.zeros_like(model.head.kernel))
    model.head.bias.assign(tf.zeros_like(model.head.bias))
    ids = np.random.default_rng(1).integers(0, 6, size=200)
    assert bits_per_char(model, ids, batch_size=3, segment_length=7) == pytest.approx(
        math.log2(6), rel=1e-7
    )


def test_bits_per_char_carries_the_state_over_segments():
    # 199 pairs over 3 streams: stride 66, 66 // 7 = 9 segments of 7, so each stream is one
    # run of 63 predictions from the zero state. One model pass per stream is the reference.
    model = _model(vocab_size=6)
    ids = np.random.default_rng(2).integers(0, 6, size=200)
    total = 0.0
    for b in range(3):
        start = 66 * b
        logits = model(ids[None, start : start + 63])
        total += float(
            tf.reduce_sum(
                tf.nn.sparse_softmax_cross_entropy_with_logits(
                    labels=ids[None, start + 1 : start + 64], logits=logits
                )
            )
        )
    expected = total / (3 * 63) / math.log(2)
    assert bits_per_char(model, ids, batch_size=3, segment_length=7) == pytest.approx(
        expected, rel=1e-5
    )


def test_sampling_at_low_temperature_is_greedy_decoding():
    vocab = CharVocab.from_text("abcdef")
    model = _model(vocab_size=6, cell="rnn", units=16, num_layers=1)
    # A larger W_hh makes the next character depend on the whole history, not only on the
    # last one, so a sampler that failed to carry the state would produce another text.
    recurrent = model.rnns[0].cell.recurrent_kernel
    recurrent.assign(3.0 * recurrent)
    # Greedy reference without carried state: rerun the whole prefix and take the argmax.
    text = "abc"
    for _ in range(12):
        logits = model(vocab.encode(text)[None, :])
        text += vocab.decode([int(np.argmax(logits[0, -1]))])
    assert sample(model, vocab, prompt="abc", length=12, temperature=1e-4, seed=7) == text


def test_sampling_is_seeded_and_checks_arguments():
    vocab = CharVocab.from_text("abcdef")
    model = _model(vocab_size=6)
    a = sample(model, vocab, prompt="a", length=40, temperature=1.0, seed=1)
    assert len(a) == 41 and a.startswith("a") and set(a) <= set("abcdef")
    assert sample(model, vocab, prompt="a", length=40, temperature=1.0, seed=1) == a
    assert sample(model, vocab, prompt="a", length=40, temperature=1.0, seed=2) != a
    with pytest.raises(ValueError, match="temperature"):
        sample(model, vocab, prompt="a", length=5, temperature=0.0)
    with pytest.raises(ValueError, match="prompt"):
        sample(model, vocab, prompt="", length=5)


def test_step_function_is_built_once_per_model_and_reused():
    import gc
    import weakref

    from mp.rnn import charlm

    vocab = CharVocab.from_text("abcdef")
    model = _model(vocab_size=6)
    step = charlm.step_function(model)
    assert charlm.step_function(model) is step
    ids = np.random.default_rng(3).integers(0, 6, size=100)
    sample(model, vocab, prompt="ab", length=3, seed=1)
    bits_per_char(model, ids, batch_size=3, segment_length=7)
    traces = step.experimental_get_tracing_count()  # [1, 2], [1, 1] and [3, 7] ids
    assert traces == 3
    # Called again, sample and bits_per_char reuse the traces instead of tracing anew.
    sample(model, vocab, prompt="cd", length=3, seed=2)
    bits_per_char(model, ids, batch_size=3, segment_length=7)
    assert charlm.step_function(model) is step
    assert step.experimental_get_tracing_count() == traces
    other = _model(vocab_size=6)
    assert charlm.step_function(other) is not step  # one per model
    sample(other, vocab, prompt="a", length=2)  # traced: its variables are captured
    # The function does not keep its model alive.
    other_ref = weakref.ref(other)
    del other
    gc.collect()
    assert other_ref() is None
