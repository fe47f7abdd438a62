"""WaveNet: gated dilated causal convolutions over discrete values, and its fast generation.

van den Oord et al., "WaveNet: A Generative Model for Raw Audio", 2016; the queue
generator of Paine et al., "Fast Wavenet Generation Algorithm", 2016.

A sequence of discrete values `x_1..x_T` (characters, or quantised audio samples)
is modelled autoregressively, `p(x) = prod_t p(x_t | x_<t)`, with a softmax over
the `num_classes` values at every step. The network (here, one-hot inputs):

    shift         the input moves one step right (a zero column first), so the
                  output at t can read x_<t only
    input conv    a causal convolution of kernel 2 to `filters` channels
    layer l       a causal convolution of kernel k and dilation d_l to 2 * filters
                  channels, split into f and g, and the gated unit
                      z = tanh(f) * sigmoid(g)
                  residual: h <- h + W_res z (1x1; not in the last layer, whose h
                  nothing reads);  skip: s_l = W_skip z (1x1)
    head          relu(sum_l s_l) -> 1x1 conv, relu -> 1x1 conv to the logits

The output at t sees `F = 2 + sum_l (k-1) d_l` inputs before it (`receptive_field`;
the dilations usually double, 1, 2, .., 2^(n-1), repeated in stacks), checked by
the causality harness (`tests/generative/test_wavenet.py`).

**Generation.** Drawing `x_t` needs `p(x_t | x_<t)`, so sampling is sequential.
The naive way (`naive_generate`) runs the whole network over the sequence drawn
so far for every new value: `T` passes of `T` columns. But a layer's output at t
reads its input at t, t-d, .., t-(k-1)d only, and those inputs were computed at
earlier steps. `fast_generate` keeps, per layer, a queue of its last `(k-1) d`
inputs; one step pushes the new column through every layer (one column each),
appends it to the queues and drops the oldest: `T` steps of one column, the cost
no longer grows with the length. Both draw from the same Gumbel noise
(`mp.generative.autoregressive.sampling_noise`), so they draw the same sequences.

**As chapter 4's character language model** (`apps/train_rnn.py --cell=wavenet`):
`CharLMProblem` keeps `mp.rnn.problems.CharLM`'s text, held-out split and sample
priming, and replaces truncated BPTT by windows of the training text at random
starts (`LanguageModelTask`: every position predicts its next character, no state
to carry); the held-out text is scored by `bits_per_char` and the samples are
drawn by `fast_generate`.

Course: ch5.3.3 TCN, VRNN, C-VRNN, STCN (TCNs: PixelCNN's idea for audio,
dilations for long dependencies, inference speed).
"""

import time
import warnings

import keras
import numpy as np
import tensorflow as tf

from mp.engine.task import SingleModelTask, _build, float32, global_mean
from mp.generative.autoregressive import sampling_noise
from mp.generative.tcn import (
    InputGradientNorms,
    check_dilations,
    exponential_dilations,
    layer_dilations,
)
from mp.rnn import _checks, problems

INPUT_KERNEL = 2


def receptive_field(kernel_size, dilations):
    """Inputs before t that the output at t sees: `INPUT_KERNEL + sum_l (k-1) d_l`."""
    kernel_size = _checks.count("kernel_size", kernel_size)
    return INPUT_KERNEL + (kernel_size - 1) * sum(check_dilations(dilations))


def stacked_dilations(layers_per_stack, stacks=1):
    """`(1, 2, .., 2^(layers_per_stack-1))` repeated `stacks` times (the paper's blocks)."""
    return exponential_dilations(layers_per_stack) * _checks.count("stacks", stacks)


def _dense_column(conv, taps):
    """One output column `[B, F]` of the `Conv1D` `conv` from its `k` input taps `[B, k, C]`.

    In the taps' dtype: under a mixed policy the variables are float32 and the
    activations 16-bit, as the convolution itself computes (Keras casts the kernel).
    """
    kernel = tf.cast(conv.kernel, taps.dtype)
    return tf.einsum("bkc,kcf->bf", taps, kernel) + tf.cast(conv.bias, taps.dtype)


def gate(a):
    """`tanh(f) * sigmoid(g)` with `[f, g]` the two halves of the last axis of `a`."""
    f, g = tf.split(a, 2, axis=-1)
    return tf.tanh(f) * tf.sigmoid(g)


@keras.saving.register_keras_serializable(package="mp")
class GatedResidualLayer(keras.layers.Layer):
    """One WaveNet layer: dilated causal conv, gated unit, residual and skip 1x1 convs.

    `call(h) -> (h + W_res z, W_skip z)` over whole sequences `[B, T, C]`;
    `step(h_t, queue) -> (h_t + W_res z_t, W_skip z_t, queue')` for one column, with
    `queue` the layer's inputs at the `(k-1) d` steps before t.

    Args:
      filters: residual channels C (the input's channels).
      skip_channels: channels of the skip output.
      kernel_size: k.
      dilation: d.
      residual: whether the layer has its residual 1x1 conv (the last layer of a
        WaveNet has none: only its skip output is read).
    """

    def __init__(self, filters, skip_channels, kernel_size=2, dilation=1, residual=True, **kwargs):
        super().__init__(**kwargs)
        self.filters = _checks.count("filters", filters)
        self.skip_channels = _checks.count("skip_channels", skip_channels)
        self.kernel_size = _checks.count("kernel_size", kernel_size)
        self.dilation = _checks.count("dilation", dilation)
        policy = dict(dtype=self.dtype_policy)
        self.dilated = keras.layers.Conv1D(
            2 * filters, kernel_size, dilation_rate=dilation, padding="causal", name="dilated",
            **policy,
        )
        self.has_residual = bool(residual)
        self.residual = (
            keras.layers.Conv1D(filters, 1, name="residual", **policy) if residual else None
        )
        self.skip = keras.layers.Conv1D(skip_channels, 1, name="skip", **policy)

    @property
    def span(self):
        """Steps of past input one output column reads: `(k-1) d` (the queue's length)."""
        return (self.kernel_size - 1) * self.dilation

    def build(self, input_shape):
        self.dilated.build(input_shape)
        if self.residual is not None:
            self.residual.build((*input_shape[:-1], self.filters))
        self.skip.build((*input_shape[:-1], self.filters))

    def call(self, h):
        z = gate(self.dilated(h))
        return self._add_residual(h, z), self.skip(z)

    def _add_residual(self, h, z):
        return h if self.residual is None else h + self.residual(z)

    def step(self, h_t, queue):
        """One column: `h_t [B, C]`, `queue [B, span, C]` (oldest first)."""
        window = tf.concat([queue, h_t[:, None]], axis=1)  # times t - span .. t
        taps = window[:, :: self.dilation]  # t - (k-1)d, .., t - d, t: kernel[0..k-1]
        a = _dense_column(self.dilated, taps)
        z = gate(a)[:, None]
        return self._add_residual(h_t[:, None], z)[:, 0], self.skip(z)[:, 0], window[:, 1:]

    def compute_output_shape(self, input_shape):
        return input_shape, (*input_shape[:-1], self.skip_channels)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "skip_channels": self.skip_channels,
            "kernel_size": self.kernel_size,
            "dilation": self.dilation,
            "residual": self.has_residual,
        }


@keras.saving.register_keras_serializable(package="mp")
class WaveNet(keras.Model):
    """WaveNet over `num_classes` discrete values; see the module docstring.

    `model(x)` takes ids `[B, T]` (int) or one-hot / soft inputs `[B, T, V]` (float)
    and returns float32 logits `[B, T, V]`: row t is `p(x_t | x_<t)`. Train it
    with `model.compile(loss=SparseCategoricalCrossentropy(from_logits=True))` and
    `model.fit(ids, ids)` (the targets are the inputs: the shift is inside).

    Args:
      num_classes: V.
      filters: residual channels.
      skip_channels: channels of the skip connections.
      head_units: channels of the 1x1 layer before the logits.
      kernel_size: k of the dilated convolutions.
      dilations: one per layer (default `stacked_dilations(5)`: 1, 2, 4, 8, 16).
    """

    def __init__(
        self,
        num_classes,
        *,
        filters=32,
        skip_channels=64,
        head_units=64,
        kernel_size=2,
        dilations=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_classes = _checks.count("num_classes", num_classes, minimum=2)
        self.filters = _checks.count("filters", filters)
        self.skip_channels = _checks.count("skip_channels", skip_channels)
        self.head_units = _checks.count("head_units", head_units)
        self.kernel_size = _checks.count("kernel_size", kernel_size)
        self.dilations = check_dilations(stacked_dilations(5) if dilations is None else dilations)
        self.input_conv = keras.layers.Conv1D(filters, INPUT_KERNEL, padding="causal", name="input")
        for i, d in enumerate(self.dilations, start=1):  # attributes: TF checkpoints see only those
            last = i == len(self.dilations)
            layer = GatedResidualLayer(
                filters, skip_channels, kernel_size, d, residual=not last, name=f"layer_{i}"
            )
            setattr(self, f"layer_{i}", layer)
        self.head = keras.layers.Conv1D(head_units, 1, activation="relu", name="head")
        self.logits_conv = keras.layers.Conv1D(num_classes, 1, name="logits")

    @property
    def layers_(self):
        """The `GatedResidualLayer`s, in order."""
        return [getattr(self, f"layer_{i}") for i in range(1, len(self.dilations) + 1)]

    @property
    def receptive_field(self):
        return receptive_field(self.kernel_size, self.dilations)

    def build(self, input_shape=None):
        """Creates the weights by a pass over zeros (ids or one-hot inputs make the same ones).

        Keras calls it with the recorded input shape when a saved model is loaded, before
        the weights are read into the variables.
        """
        del input_shape
        self.call(tf.zeros([1, INPUT_KERNEL], tf.int32))
        self.built = True

    def _one_hot(self, inputs):
        inputs = tf.convert_to_tensor(inputs)
        if inputs.dtype.is_integer:
            return tf.one_hot(inputs, self.num_classes, dtype=self.compute_dtype)
        return tf.cast(inputs, self.compute_dtype)

    def _head(self, skips):
        return float32(self.logits_conv(self.head(tf.nn.relu(skips))))

    def call(self, inputs):
        x = self._one_hot(inputs)
        x = tf.pad(x, [[0, 0], [1, 0], [0, 0]])[:, :-1]  # the shift: step t reads x_<t
        h = self.input_conv(x)
        skips = 0.0
        for layer in self.layers_:
            h, skip = layer(h)
            skips += skip
        return self._head(skips)

    def initial_queues(self, batch_size):
        """Zero queues (the causal zero padding): the input conv's and each layer's."""
        dtype = self.compute_dtype
        queues = [tf.zeros([batch_size, INPUT_KERNEL - 1, self.num_classes], dtype)]
        return queues + [tf.zeros([batch_size, l.span, self.filters], dtype) for l in self.layers_]

    def step(self, previous, queues):
        """`p(x_t | x_<t)` from `x_{t-1}` (one-hot `[B, V]`, zeros at t = 0) and the queues.

        Returns `(logits [B, V] float32, queues)`: every layer computes one column.
        """
        previous = tf.cast(previous, self.compute_dtype)
        window = tf.concat([queues[0], previous[:, None]], axis=1)  # x_{t-2}, x_{t-1}
        h = _dense_column(self.input_conv, window)
        new_queues = [window[:, 1:]]
        skips = 0.0
        for layer, queue in zip(self.layers_, queues[1:]):
            h, skip, queue = layer.step(h, queue)
            new_queues.append(queue)
            skips += skip
        return self._head(skips[:, None])[:, 0], new_queues

    def log_prob(self, ids):
        """`log p(x)` of each sequence of ids `[B, T]`, in nats (float32)."""
        logits = self(ids)
        return -tf.reduce_sum(
            tf.nn.sparse_softmax_cross_entropy_with_logits(labels=ids, logits=logits), axis=-1
        )

    def get_config(self):
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "filters": self.filters,
            "skip_channels": self.skip_channels,
            "head_units": self.head_units,
            "kernel_size": self.kernel_size,
            "dilations": list(self.dilations),
        }


def _draws(logits, noise, temperature):
    """Gumbel-max: `argmax_v(logits_v / temperature + g_v)`, a draw from softmax(logits / T)."""
    return np.argmax(np.asarray(logits, np.float64) / temperature + noise, axis=-1)


def _check_generation(length, temperature, prompt):
    length = _checks.count("length", length)
    temperature = _checks.positive("temperature", temperature)
    prompt = np.asarray([] if prompt is None else prompt, np.int64).reshape(-1)
    if len(prompt) > length:
        raise ValueError(f"prompt is longer than length. Received: {len(prompt)} > {length}")
    return length, temperature, prompt


def fast_generate(model, num_samples, length, *, seed=0, temperature=1.0, prompt=None):
    """`num_samples` sequences of `length` ids, one column per layer and step (queues).

    Args:
      model: a `WaveNet`.
      num_samples: N.
      length: T, ids per sequence (the prompt included).
      seed: the seed of the Gumbel noise (`sampling_noise`): the same seed, the same
        sequences as `naive_generate`.
      temperature: > 0; the draws are from `softmax(logits / temperature)`.
      prompt: optional ids every sequence starts with (teacher-forced, not drawn).

    Returns:
      int64 ids `[N, T]`.
    """
    length, temperature, prompt = _check_generation(length, temperature, prompt)
    noise = sampling_noise(num_samples, length, model.num_classes, seed=seed, dtype="float64")
    step = getattr(model, "_fast_step", None)
    if step is None:
        step = model._fast_step = tf.function(model.step)
    queues = model.initial_queues(num_samples)
    previous = tf.zeros([num_samples, model.num_classes], model.compute_dtype)
    ids = np.zeros([num_samples, length], np.int64)
    for t in range(length):
        logits, queues = step(previous, queues)
        ids[:, t] = prompt[t] if t < len(prompt) else _draws(logits, noise[:, t], temperature)
        previous = tf.one_hot(ids[:, t], model.num_classes, dtype=model.compute_dtype)
    return ids


def naive_generate(model, num_samples, length, *, seed=0, temperature=1.0, prompt=None):
    """As `fast_generate`, by a pass of the whole network over all `T` columns per step."""
    length, temperature, prompt = _check_generation(length, temperature, prompt)
    noise = sampling_noise(num_samples, length, model.num_classes, seed=seed, dtype="float64")
    forward = tf.function(lambda ids: model(ids))
    ids = np.zeros([num_samples, length], np.int64)
    for t in range(length):
        if t < len(prompt):
            ids[:, t] = prompt[t]
            continue
        logits = forward(tf.constant(ids))[:, t]  # ids after t are still 0: never read
        ids[:, t] = _draws(logits, noise[:, t], temperature)
    return ids


# --- a character language model -----------------------------------------------------


def random_windows(ids, window, batch_size, seed=0):
    """Endless batches `[B, window]` of windows of `ids` at random starts (seeded)."""
    ids = np.asarray(ids, np.int64)
    rng = np.random.default_rng(seed)
    while True:
        starts = rng.integers(0, len(ids) - window + 1, size=batch_size)
        yield np.stack([ids[s : s + window] for s in starts])


def bits_per_char(model, ids, *, window=512, batch_size=16):
    """Mean `-log2 p(x_t | x_<t)` over `ids[F:]`, each character with its full field of F.

    The text is cut into windows that overlap by `F = model.receptive_field`
    characters; the last `window - F` positions of each are scored, so every scored
    character sees the `F` characters before it. Returns `(bits, characters scored)`.
    """
    field = model.receptive_field
    ids = np.asarray(ids, np.int64)
    if window <= field or len(ids) < window:
        raise ValueError(
            f"window must exceed the receptive field ({field}) and fit in the text "
            f"({len(ids)} ids). Received: window={window}"
        )
    function = tf.function(lambda x: model(x))
    stride = window - field
    starts = list(range(0, len(ids) - window + 1, stride))
    # (start, first scored offset): every window scores its last `stride` positions; a
    # last window ending at the text's end scores what the others left.
    pieces = [(s, field) for s in starts]
    end = starts[-1] + window
    if end < len(ids):
        pieces.append((len(ids) - window, window - (len(ids) - end)))
    total, count = 0.0, 0
    for i in range(0, len(pieces), batch_size):
        chunk = pieces[i : i + batch_size]
        batch = np.stack([ids[s : s + window] for s, _ in chunk])
        nll = tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=batch, logits=function(tf.constant(batch))
        ).numpy()
        for row, (_, first) in enumerate(chunk):
            total += float(nll[row, first:].sum())
            count += window - first
    return total / (count * np.log(2.0)), count


# --- as chapter 4's character language model (apps/train_rnn.py --cell=wavenet) ------

DEFAULT_KERNEL_SIZE = 2
DEFAULT_WINDOW = 256


def language_model_options(
    task, num_layers, units, kernel_size=None, dilations=None, skip_channels=None, tbptt_steps=None
):
    """The WaveNet's options of `apps/train_rnn.py --cell=wavenet`, checked.

    Returns `{"kernel_size", "dilations", "skip_channels"}`: kernel 2 unless given, the
    dilations `1, 2, .., 2^(L-1)` for `L = num_layers` unless given (`tcn.layer_dilations`),
    `2 * units` skip channels unless given (the head's 1x1 layer has as many).

    Raises:
      ValueError: a task other than `charlm`, `tbptt_steps` (a recurrent cell's), a
        non-positive size or dilation, or `num_layers` against `dilations`.
    """
    if task != "charlm":
        raise ValueError(
            f"cell=wavenet is a language model: task=charlm only. Received: task={task!r}"
        )
    if tbptt_steps is not None:
        raise ValueError(
            "tbptt_steps is for the recurrent cells (truncated BPTT); cell=wavenet trains on "
            f"windows of --seq_len characters. Received: tbptt_steps={tbptt_steps}"
        )
    units = _checks.count("units", units)
    skip_channels = 2 * units if skip_channels is None else skip_channels
    return {
        "kernel_size": _checks.count(
            "kernel_size", DEFAULT_KERNEL_SIZE if kernel_size is None else kernel_size
        ),
        "dilations": layer_dilations(num_layers, dilations),
        "skip_channels": _checks.count("skip_channels", skip_channels),
    }


def _cross_entropy(model, ids):
    ids = tf.cast(ids, tf.int32)
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=ids, logits=float32(model(ids)))


class LanguageModelTask(SingleModelTask):
    """Trains a `WaveNet` on batches of windows of ids `[B, W]`: every position's next id.

    The loss is the mean cross-entropy of the `B * W` predictions `p(x_t | x_<t)`
    (the shift is inside the model: the targets are the inputs); the first
    positions of a window see fewer than the receptive field's characters, the
    zeros of the causal padding standing for the rest.

    Train outputs: `loss/total` (nats), `metrics/bits_per_char` (the same / ln 2),
    `charts/grad_norm`, `charts/learning_rate`. Eval sums: `loss`, `count`.

    Args: see `mp.engine.task.SingleModelTask`.
    """

    def build(self):
        self.model = _build(self._model_factory)
        self.model(tf.zeros([1, 2], tf.int32))  # creates the weights of a model not yet called
        self.optimizer = _build(self._optimizer_factory)
        self.optimizer.build(self.model.trainable_variables)

    def train_step(self, batch):
        with tf.GradientTape() as tape:
            loss = global_mean(tf.reshape(_cross_entropy(self.model, batch), [-1]))
        grad_norm = self._minimize(tape, loss)
        outputs = {"loss/total": loss, "metrics/bits_per_char": loss / np.log(2.0)}
        return outputs | self._charts(grad_norm)

    def eval_step(self, batch):
        return {
            "loss": tf.reduce_sum(_cross_entropy(self.model, batch)),
            "count": tf.cast(tf.size(batch), tf.float32),
        }


class NextCharGradientNorms(InputGradientNorms):
    """`||dL/dx_t||` of the prediction of the character after each test window.

    A zero column appended to a window `x_1..x_T` makes the model's last row
    `p(x_{T+1} | x_1..x_T)`; `L` is its logits against a fixed random projection
    (`tcn.InputGradientNorms`). The curve is exactly zero before the last
    `receptive_field` characters.
    """

    def measure(self, model, label):
        def next_char(x, training=False):
            del training
            return model(tf.pad(x, [[0, 0], [0, 1], [0, 0]]))[:, -1]

        return super().measure(next_char, label)


class CharLMProblem(problems.CharLM):
    """Chapter 4's character language model (`mp.rnn.problems.CharLM`) with a WaveNet.

    The same text, held-out last 5% and sample priming as the LSTM's, so the bits
    per character compare. Training reads `batch_size` windows of `seq_len`
    characters at random starts of the training text (stateless draws from
    `(seed, step)`: a resumed run reads the batches it would have read); scoring
    is `bits_per_char` on the held-out text, every character with its full
    receptive field; the samples are drawn by `fast_generate`, primed with the
    last `receptive_field` characters of the priming text (all the model can see).

    Args:
      text_file, sample_length, temperature, sample_prompt, batch_size, seed: as `CharLM`.
      seq_len: characters per training window (also the gradient-norm windows).
      filters, skip_channels, kernel_size, dilations: the `WaveNet` (`head_units` =
        `skip_channels`).

    Raises:
      FileNotFoundError, ValueError: as `CharLM`; a held-out text not longer than the
        receptive field, or a training text shorter than one window.
    """

    def __init__(
        self,
        text_file=None,
        *,
        seq_len=DEFAULT_WINDOW,
        sample_length=500,
        temperature=0.8,
        sample_prompt="",
        batch_size=64,
        seed=0,
        filters=64,
        skip_channels=128,
        kernel_size=DEFAULT_KERNEL_SIZE,
        dilations=None,
    ):
        problems.Problem.__init__(self, batch_size=batch_size, seed=seed)
        seq_len, self.sample_length, self.temperature = problems._check(
            seq_len=seq_len, sample_length=sample_length, temperature=temperature
        )
        self.network = {
            "filters": _checks.count("filters", filters),
            "skip_channels": _checks.count("skip_channels", skip_channels),
            "head_units": skip_channels,
            "kernel_size": _checks.count("kernel_size", kernel_size),
            "dilations": check_dilations(stacked_dilations(5) if dilations is None else dilations),
        }
        self.receptive_field = receptive_field(kernel_size, self.network["dilations"])
        self._read_text(text_file, seq_len, sample_prompt)
        self.tbptt_steps = None
        windows = min(problems.GRADIENT_EXAMPLES, len(self.test_ids) // seq_len)
        if len(self.test_ids) <= self.receptive_field or windows < 1:
            raise ValueError(
                f"the held-out last {self.HELD_OUT_FRACTION:.0%} of the text "
                f"({len(self.test_ids)} characters) is too short: it needs more than the "
                f"receptive field ({self.receptive_field}) and at least seq_len = {seq_len} "
                "characters; use a longer text, fewer layers or a shorter seq_len"
            )
        if len(self.train_ids) < seq_len:
            raise ValueError(
                f"the training text ({len(self.train_ids)} characters) is shorter than one "
                f"window of seq_len = {seq_len}"
            )
        if seq_len <= self.receptive_field:
            warnings.warn(
                f"the training windows (seq_len = {seq_len}) are not longer than the receptive "
                f"field ({self.receptive_field}): no position trains with its whole field, "
                "which bits_per_char gives every scored character; use a longer seq_len",
                stacklevel=2,
            )
        self.window_ids = self.test_ids[: windows * seq_len].reshape(windows, seq_len)
        self.priming = self.priming[-self.receptive_field :]
        # One epoch: as many characters as the training text has.
        self.steps_per_epoch = max(1, len(self.train_ids) // (self.batch_size * seq_len))

    @property
    def options(self):
        return {k: v for k, v in super().options.items() if k != "tbptt_steps"}

    def train_data(self, start_step=0):
        ids = tf.constant(self.train_ids, tf.int32)
        starts_below = len(self.train_ids) - self.seq_len + 1
        offsets = tf.range(self.seq_len, dtype=tf.int64)

        def windows(step):
            seed = tf.stack([tf.constant(self.seed, tf.int64), step])
            starts = tf.random.stateless_uniform(
                [self.batch_size], seed, minval=0, maxval=starts_below, dtype=tf.int64
            )
            return tf.gather(ids, starts[:, None] + offsets)

        steps = tf.data.Dataset.range(int(start_step), np.iinfo(np.int64).max)
        return steps.map(windows)

    def build_model(self, cell="wavenet", *, units=None, num_layers=None):
        """The problem's `WaveNet`, built (its size is the problem's, not `units`, `num_layers`)."""
        del units, num_layers
        if cell != "wavenet":
            raise ValueError(f"CharLMProblem builds cell=wavenet only. Received: cell={cell!r}")
        model = WaveNet(self.vocab.size, **self.network)
        model(np.zeros((1, 2), np.int64))
        return model

    def task(self, model, optimizer, *, clip_norm=None):
        return LanguageModelTask(model, optimizer, clip_norm=clip_norm)

    def gradient_inputs(self, model):
        del model
        return np.eye(self.vocab.size, dtype=np.float32)[self.window_ids]  # one-hot windows

    def sample(self, model, temperature=None):
        """`sample_length` characters after the priming and `sample_prompt` (`fast_generate`)."""
        prompt = self.vocab.encode(self.priming + self.sample_prompt)
        ids = fast_generate(
            model,
            1,
            len(prompt) + self.sample_length,
            seed=self.seed,
            temperature=self.temperature if temperature is None else temperature,
            prompt=prompt,
        )
        return self.vocab.decode(ids[0, len(self.priming) :])

    def report(self, model, evaluation=None, model_dir=None):
        del evaluation  # scored here, on the held-out text
        window = min(len(self.test_ids), max(4 * self.receptive_field, 1024))
        bits, scored = bits_per_char(model, self.test_ids, window=window)
        fast_generate(model, 1, 2)  # traces the step once: sample_seconds is generation only
        tic = time.perf_counter()
        sample = self.sample(model)
        seconds = time.perf_counter() - tic
        scores = {"bits_per_char": float(bits), "chars_scored": scored}
        metrics, files = self._report(model, model_dir, scores, {self.temperature: sample})
        return metrics | {
            "receptive_field": self.receptive_field,
            "seq_len": self.seq_len,
            "sample_seconds": seconds,
            "sample_steps": len(self.priming) + len(sample),  # priming, prompt and sample
        }, files
