"""A character-level language model: vocabulary, model, sampling, bits per character.

A language model gives the probability of a text one character at a time,

    p(x_1 .. x_N) = prod_t p(x_t | x_1 .. x_{t-1}),

with an RNN whose state h_t summarises the prefix (synced many-to-many, ch4):

    e_t = E[x_t]                           embedding of the current character
    h_t = RNN(h_{t-1}, e_t)                one or more stacked recurrent layers
    logits_t = W_hy h_t + b                scores of the next character x_{t+1}

Training uses *teacher forcing*: the input at step t is the true character x_t,
whatever the model would have predicted. Sampling feeds the model its own
predictions instead: draw x_{t+1} ~ softmax(logits_t / temperature) and feed it
back, carrying the state. A temperature below 1 sharpens the distribution
(towards greedy argmax decoding as it goes to 0), above 1 flattens it.

Quality is measured in *bits per character*, the mean cross-entropy in base 2,
`-1/N sum_t log2 p(x_{t+1} | x_1..x_t) = nats / ln 2`: a model that knows
nothing (uniform over V characters) scores log2 V, English text compresses to
roughly 1-1.5 bits per character with good models (Graves, 2013, "Generating
sequences with recurrent neural networks"; Karpathy, 2015, "The unreasonable
effectiveness of recurrent neural networks").

Course: ch4 Recurrent Neural Networks (many-to-many), ch4.1 Backpropagation
through time (BPTT), ch4.3 Long Short Term Memory (LSTM).
"""

import json
import math
import weakref

import keras
import numpy as np
import tensorflow as tf

from mp.engine.task import float32
from mp.rnn.tbptt import segment_arrays, state_shapes


class CharVocab:
    """The characters of a text and their integer ids (sorted by code point).

    Args:
      chars: the distinct characters, in id order.
    """

    def __init__(self, chars):
        chars = list(chars)
        if len(set(chars)) != len(chars) or not chars:
            raise ValueError(
                f"chars must be distinct and non-empty. Received: {len(chars)} characters"
            )
        self.chars = chars
        self._ids = {c: i for i, c in enumerate(chars)}

    @classmethod
    def from_text(cls, text):
        """The vocabulary of every distinct character in `text`."""
        if not text:
            raise ValueError("text must not be empty")
        return cls(sorted(set(text)))

    @property
    def size(self):
        """The number of characters V."""
        return len(self.chars)

    def encode(self, text):
        """Text -> int32 ids [len(text)].

        Raises:
          ValueError: naming the characters that are not in the vocabulary.
        """
        try:
            return np.array([self._ids[c] for c in text], dtype=np.int32)
        except KeyError:
            unknown = sorted(set(text) - set(self._ids))
            raise ValueError(
                f"text has characters not in the vocabulary. Received: {unknown[:10]!r}"
            ) from None

    def decode(self, ids):
        """Ids -> text.

        Raises:
          ValueError: for an id outside [0, size).
        """
        ids = np.asarray(ids).reshape(-1)
        bad = ids[(ids < 0) | (ids >= self.size)]
        if bad.size:
            raise ValueError(f"ids must be in [0, {self.size}). Received: {bad[:10].tolist()}")
        return "".join(self.chars[i] for i in ids)

    def to_json(self):
        """The vocabulary as a JSON string (see `from_json`)."""
        return json.dumps({"chars": "".join(self.chars)})

    @classmethod
    def from_json(cls, s):
        """The vocabulary saved by `to_json`."""
        return cls(json.loads(s)["chars"])


@keras.saving.register_keras_serializable(package="mp")
class LanguageModel(keras.Model):
    """Embedding -> stacked RNN layers -> Dense logits, with its state exposed.

    `model(ids)` maps ids [B, T] to logits [B, T, V] from the zero state.
    `model(ids, initial_state=states, return_state=True)` starts from `states`
    and also returns the final states: a flat list with the states of layer 1
    first (e.g. [h1, c1, h2, c2] for two LSTM layers), as
    `get_initial_state(batch_size)` makes them. This is what `TBPTTTask` and
    `sample` use to carry the state from one call to the next.

    Args:
      vocab_size: V, the number of characters.
      cell: a cell name of `mp.rnn.cells.CELLS`.
      units: hidden units per recurrent layer.
      num_layers: number of stacked recurrent layers (layer l reads the outputs
        h^{l-1}_t of layer l - 1, as in the matrix form of ch4).
      embedding_dim: size of the character embedding.
      **kwargs: passed to `keras.Model`.
    """

    def __init__(
        self, vocab_size, *, cell="lstm", units=256, num_layers=1, embedding_dim=64, **kwargs
    ):
        from mp.rnn.cells import make_cell

        super().__init__(**kwargs)
        for name, value in (
            ("vocab_size", vocab_size),
            ("units", units),
            ("num_layers", num_layers),
            ("embedding_dim", embedding_dim),
        ):
            if not isinstance(value, (int, np.integer)) or value <= 0:
                raise ValueError(f"{name} must be a positive integer. Received: {name}={value}")
        self.vocab_size = int(vocab_size)
        self.cell_name = cell
        self.units = int(units)
        self.num_layers = int(num_layers)
        self.embedding_dim = int(embedding_dim)
        self.embedding = keras.layers.Embedding(vocab_size, embedding_dim, name="embedding")
        self.rnns = [
            keras.layers.RNN(
                make_cell(cell, units),
                return_sequences=True,
                return_state=True,
                name=f"rnn_{layer + 1}",
            )
            for layer in range(num_layers)
        ]
        self.head = keras.layers.Dense(vocab_size, name="logits")
        self._state_counts = [len(state_shapes(rnn.cell)) for rnn in self.rnns]

    def get_initial_state(self, batch_size):
        """The zero state: a flat list of [batch_size, ...] tensors, layer by layer."""
        return [
            tf.zeros((batch_size,) + shape) for rnn in self.rnns for shape in state_shapes(rnn.cell)
        ]

    def call(self, ids, initial_state=None, return_state=False, training=False):
        """Logits of the next character at every step.

        Args:
          ids: int ids [B, T].
          initial_state: flat list of state tensors (see `get_initial_state`);
            `None` starts from zeros.
          return_state: also return the final states.
          training: passed to the layers.

        Returns:
          logits [B, T, V], or `(logits, final_states)` with `return_state`.
        """
        x = self.embedding(ids)  # e_t = E[x_t]
        if initial_state is None:
            initial_state = self.get_initial_state(tf.shape(ids)[0])
        initial_state = list(initial_state)
        final_state = []
        start = 0
        for rnn, count in zip(self.rnns, self._state_counts):
            # h_t^l = cell(h_t^{l-1}, h_{t-1}^l), the whole sequence of layer l at once
            x, *states = rnn(
                x, initial_state=initial_state[start : start + count], training=training
            )
            final_state.extend(states)
            start += count
        logits = self.head(x)  # logits_t = W_hy h_t + b, [B, T, V]
        return (logits, final_state) if return_state else logits

    def get_config(self):
        return {
            **super().get_config(),
            "vocab_size": self.vocab_size,
            "cell": self.cell_name,
            "units": self.units,
            "num_layers": self.num_layers,
            "embedding_dim": self.embedding_dim,
        }


def language_model(vocab_size, *, cell="lstm", units=256, num_layers=1, embedding_dim=64):
    """A character-level language model; see `LanguageModel` for the state protocol.

    Args:
      vocab_size: V, the number of characters.
      cell: a cell name of `mp.rnn.cells.CELLS` (`rnn`, `lstm`, `gru`, ...).
      units: hidden units per recurrent layer.
      num_layers: number of stacked recurrent layers.
      embedding_dim: size of the character embedding.

    Returns:
      A built `LanguageModel` mapping ids [B, T] to logits [B, T, V].

    Raises:
      ValueError: for non-positive sizes or an unknown cell name.
    """
    model = LanguageModel(
        vocab_size, cell=cell, units=units, num_layers=num_layers, embedding_dim=embedding_dim
    )
    model(tf.zeros([1, 1], tf.int32))  # creates the weights
    return model


# One step function per model, built on first use and kept while the model lives:
# `sample` and `bits_per_char` called again reuse its traces instead of tracing anew.
_STEP_FUNCTIONS = weakref.WeakKeyDictionary()


def step_function(model):
    """`(ids, states) -> (logits, states)` of `model` as a `tf.function`, one per model.

    Logits and states come out float32 whatever the model computes in (a mixed
    precision policy), so the states fed back keep the signature of the first call.

    The first call for a model builds it; later calls (every `sample` and
    `bits_per_char`) return the same function, which traces once per input shape
    and reuses its traces. It refers to the model weakly, so it does not keep a
    model alive.
    """
    step = _STEP_FUNCTIONS.get(model)
    if step is None:
        model_ref = weakref.ref(model)

        @tf.function
        def step(ids, states):
            return float32(
                model_ref()(ids, initial_state=states, return_state=True, training=False)
            )

        _STEP_FUNCTIONS[model] = step
    return step


def sample(model, vocab, *, prompt, length, temperature=1.0, seed=0):
    """Generates text from the model's own predictions.

    The prompt is fed with teacher forcing to set the state; then `length`
    times the next id is drawn from `softmax(logits / temperature)` (a seeded
    NumPy generator) and fed back as the next input, carrying the state.

    Args:
      model: a model following the `LanguageModel` state protocol.
      vocab: the `CharVocab` of the model.
      prompt: non-empty text to start from (characters of `vocab`).
      length: number of characters to generate (>= 0).
      temperature: > 0; small values approach greedy argmax decoding.
      seed: seed of the draws: the same seed gives the same text.

    Returns:
      `prompt` followed by the `length` generated characters.

    Raises:
      ValueError: for temperature <= 0, an empty prompt, a negative length or
        characters outside the vocabulary.
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0. Received: temperature={temperature}")
    if not prompt:
        raise ValueError("prompt must contain at least one character. Received: prompt=''")
    if not isinstance(length, (int, np.integer)) or length < 0:
        raise ValueError(f"length must be a non-negative integer. Received: length={length}")
    rng = np.random.default_rng(seed)
    step = step_function(model)
    states = model.get_initial_state(1)
    logits, states = step(tf.constant(vocab.encode(prompt)[None, :]), states)
    generated = []
    for _ in range(length):
        scores = logits[0, -1].numpy().astype(np.float64) / temperature
        p = np.exp(scores - scores.max())  # softmax, shifted so the largest exponent is 0
        p /= p.sum()
        next_id = int(rng.choice(len(p), p=p))
        generated.append(next_id)
        logits, states = step(tf.constant([[next_id]], tf.int32), states)
    return prompt + vocab.decode(np.array(generated, dtype=np.int64))


def bits_per_char(model, ids, *, batch_size, segment_length):
    """Mean cross-entropy of a stream in bits per character, state carried.

    The stream is cut as `segment_dataset` cuts it (`batch_size` parallel
    streams of segments of `segment_length`; the remainder that does not fill
    a segment is left out); one pass over the segments runs from the zero state,
    carrying the state from each segment to the next.

    Args:
      model: a model following the `LanguageModel` state protocol.
      ids: 1-D integer array, the encoded text.
      batch_size: number of parallel streams.
      segment_length: time steps per call.

    Returns:
      `sum_t CE_t / (count * ln 2)` over every predicted character, a float.
    """
    inputs, targets = segment_arrays(ids, batch_size=batch_size, segment_length=segment_length)
    step = step_function(model)
    states = model.get_initial_state(batch_size)
    total, count = 0.0, 0
    for x, y in zip(inputs, targets):
        logits, states = step(tf.constant(x), states)
        cross_entropy = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
        total += float(tf.reduce_sum(tf.cast(cross_entropy, tf.float64)))
        count += y.size
    return total / count / math.log(2.0)
