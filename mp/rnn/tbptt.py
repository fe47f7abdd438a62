"""Backpropagation through time: truncated BPTT, gradient clipping, vanishing gradients.

An RNN unrolled over T steps is a T-layer network whose layers share their
weights; backpropagation through that unrolled graph is *backpropagation through
time* (BPTT). Full BPTT keeps all T steps in memory and multiplies T Jacobians,
which is slow for long sequences and unstable. *Truncated* BPTT with
`k1 = k2 = k` cuts a long stream into segments of k steps:

    for each segment s:   h_0(s) = h_k(s - 1)          (state carried forward,
                          loss_s = CE over the k steps   no gradient across
                          update with d loss_s / d W     the border)

This is what `segment_dataset` + `TBPTTTask` implement: the stream is split
into `batch_size` parallel streams, step s trains on segment s of every stream,
and the final state of one step is the (constant) initial state of the next.
Full BPTT is the case of a batch holding whole sequences that each start from
the zero state: a many-to-one model (`mp.rnn.tasks.sequence_model`) trained by
a plain task, `keras.layers.RNN` backpropagating through all T steps.

Why gradients vanish or explode (Pascanu et al., 2013, "On the difficulty of
training recurrent neural networks"). For the vanilla cell
`h_t = tanh(W_hh h_{t-1} + W_xh x_t)` the chain rule gives

    dL/dh_t = W_hh^T diag(1 - h_{t+1}^2) dL/dh_{t+1}
            = prod_{s=t+1..T} [W_hh^T diag(1 - h_s^2)] dL/dh_T,

a product of T - t Jacobians. Since |tanh'| <= 1, a dominant eigenvalue of
W_hh (its spectral radius rho) below 1 makes the gradient vanish exponentially
over long spans, roughly like rho^(T - t); above 1 it *can* explode (rho > 1 is
necessary for that, not sufficient: saturated tanh units have tanh' near 0 and
still make it vanish). The LSTM's cell state is updated additively,
`c_t = f * c_{t-1} + i * g`, so along the cell path the gradient is scaled by
the forget gates f instead of being multiplied by W_hh at every step: it decays
like prod f, slowly where the gates are near 1 (a forget bias of 1 at
initialisation gives f ~ 0.73, which still vanishes over 100 steps; training or
a larger forget bias moves f towards 1). `gradient_norms` measures
`||dL/dh_t||` for t = 1..T so the behaviours can be plotted side by side;
clipping the gradient by its global norm (`clip_by_global_norm`) is the simple
remedy for explosions.

Course: ch4.1 Backpropagation through time (BPTT), ch4.2 Vanishing gradients
problem, ch4.3 Long Short Term Memory (LSTM).
"""

import math

import numpy as np
import tensorflow as tf

from mp.engine.precision import unscaled
from mp.engine.task import SingleModelTask, _build, float32, global_mean

# --- measuring vanishing gradients --------------------------------------------


def state_shapes(cell):
    """The flat list of per-example state shapes of a Keras RNN cell, e.g. [(u,), (u,)]."""
    sizes = cell.state_size if isinstance(cell.state_size, (list, tuple)) else [cell.state_size]
    return [tuple(s) if isinstance(s, (list, tuple)) else (int(s),) for s in sizes]


def gradient_norms(cell, inputs, loss_fn=None):
    """Measures `||dL/dh_t||` for t = 1..T of a cell unrolled over `inputs`.

    The cell runs from the zero state over the T steps of `inputs`; the loss
    depends only on the last hidden state h_T. Each step adds a zero "probe"
    tensor to h_t before it is passed on, so `dL/d probe_t` is the total
    derivative dL/dh_t through all later steps. h is the cell's first state
    tensor, which for the vanilla RNN, LSTM and GRU is also its output (for an
    LSTM it is the hidden state h, not the cell state c).

    Args:
      cell: a Keras RNN cell (`state_size`, `call(inputs, states)`), e.g.
        `mp.rnn.cells.make_cell("lstm", 32)`; built on first use if needed.
      inputs: float array [B, T, D].
      loss_fn: function `h_T [B, units] -> loss` returning one loss per example
        [B] (or their sum). Default: a fixed random projection of h_T,
        `L_b = h_T[b] . w` with `w ~ N(0, 1/units)` drawn with seed 0.

    Returns:
      A NumPy array [T]: entry t - 1 is the batch mean of `||dL_b/dh_t[b]||_2`
      (the losses are summed over the batch, so row b of dL/dh_t is the
      gradient of example b's own loss).
    """
    inputs = tf.convert_to_tensor(inputs, tf.float32)
    if inputs.shape.rank != 3:
        raise ValueError(f"inputs must have shape [B, T, D]. Received: shape={inputs.shape}")
    batch, steps = int(inputs.shape[0]), int(inputs.shape[1])
    if not getattr(cell, "built", False):
        cell.build((None, int(inputs.shape[2])))
    if loss_fn is None:
        units = state_shapes(cell)[0][0]
        w = tf.random.stateless_normal([units, 1], seed=[0, 0]) / math.sqrt(units)

        def loss_fn(h):
            return tf.squeeze(h @ w, axis=-1)

    # The cell's own precision (bfloat16 under a mixed policy); the norms are taken in float32.
    dtype = getattr(cell, "compute_dtype", None) or tf.float32
    states = [tf.zeros((batch,) + shape, dtype) for shape in state_shapes(cell)]
    probes = [tf.zeros_like(states[0]) for _ in range(steps)]
    with tf.GradientTape() as tape:
        tape.watch(probes)
        for t in range(steps):
            _, new_states = cell(inputs[:, t], states)
            states = list(tf.nest.flatten(new_states))
            states[0] = states[0] + probes[t]  # h_t, with dL/d probe_t = dL/dh_t
        loss = tf.reduce_sum(loss_fn(tf.cast(states[0], tf.float32)))
    grads = tape.gradient(loss, probes)
    return np.array(
        [
            0.0 if g is None else float(tf.reduce_mean(tf.norm(tf.cast(g, tf.float32), axis=-1)))
            for g in grads
        ]
    )


def dominant_eigenvalue(matrix):
    """The largest |eigenvalue| (spectral radius) of a square matrix such as W_hh.

    Transposing does not change eigenvalues, so Keras' `recurrent_kernel`
    (W_hh^T in the notes' column convention) can be passed as it is.

    Args:
      matrix: a square array, tensor or variable.

    Returns:
      `max_i |lambda_i|` as a Python float: < 1 makes the gradients of a tanh
      RNN vanish; > 1 is needed for them to explode (ch4.2).

    Raises:
      ValueError: if `matrix` is not square.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"matrix must be square. Received: shape={matrix.shape}")
    return float(np.max(np.abs(np.linalg.eigvals(matrix))))


def plot_gradient_norms(curves, path=None, *, eigenvalues=None, title=None, ax=None):
    """Plots `||dL/dh_t||` against t, one line per model, on a log scale.

    Args:
      curves: dict name -> array [T] (from `gradient_norms`).
      path: if given, the figure is also saved there (PNG).
      eigenvalues: optional dict name -> dominant eigenvalue of W_hh, shown
        in the legend as `|lambda|max`.
      title: optional axes title.
      ax: optional matplotlib `Axes` to draw into (e.g. one panel of several);
        a new figure is made if `None`.

    Returns:
      The matplotlib `Figure`.
    """
    from matplotlib.figure import Figure

    eigenvalues = eigenvalues or {}
    if ax is None:
        fig = Figure(figsize=(7, 4.5))  # not registered with pyplot: no GUI backend needed
        ax = fig.subplots()
    fig = ax.figure
    for name, values in curves.items():
        values = np.asarray(values, dtype=np.float64)
        label = name
        if name in eigenvalues:
            label += f", $|\\lambda|_{{max}}(W_{{hh}})$ = {eigenvalues[name]:.2f}"
        steps = np.arange(1, len(values) + 1)
        # A gradient that vanished below float32 range is exactly 0: not drawable on a log axis.
        ax.semilogy(steps, np.where(values > 0, values, np.nan), label=label)
    ax.set_xlabel("time step t")
    ax.set_ylabel("||dL / dh_t||  (loss on h_T)")
    ax.set_title(title or "Gradient norm flowing back through time")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=100)
    return fig


# --- truncated BPTT ----------------------------------------------------------


def segment_arrays(ids, *, batch_size, segment_length):
    """Cuts an id stream into parallel streams and segments (NumPy).

    The stream of N ids gives N - 1 (input, target) pairs, target = next id.
    Stream b is the contiguous chunk starting at `b * stride` with
    `stride = (N - 1) // batch_size`; each stream is cut into
    `segments = stride // segment_length` segments (the remainder is dropped).

    Returns:
      `(inputs, targets)`, int32 arrays [segments, batch_size, segment_length]:
      `inputs[s, b]` is segment s of stream b and `targets[s, b, j] ==
      inputs[s, b, j + 1]` (and the first id of the next segment for the last j).

    Raises:
      ValueError: for non-positive sizes or a stream too short for one segment.
    """
    ids = np.asarray(ids)
    if ids.ndim != 1:
        raise ValueError(f"ids must be a 1-D array. Received: shape={ids.shape}")
    for name, value in (("batch_size", batch_size), ("segment_length", segment_length)):
        if not isinstance(value, (int, np.integer)) or value <= 0:
            raise ValueError(f"{name} must be a positive integer. Received: {name}={value}")
    stride = (len(ids) - 1) // batch_size
    segments = stride // segment_length
    if segments == 0:
        raise ValueError(
            f"the stream of {len(ids)} ids is too short for batch_size={batch_size} streams of "
            f"at least one segment of segment_length={segment_length} (needs at least "
            f"{batch_size * segment_length + 1} ids)"
        )
    used = segments * segment_length
    starts = np.arange(batch_size)[:, None] * stride + np.arange(used)[None, :]  # [B, used]
    inputs = ids[starts].astype(np.int32)
    targets = ids[starts + 1].astype(np.int32)

    def cut(x):  # [B, segments * k] -> [segments, B, k]
        return x.reshape(batch_size, segments, segment_length).transpose(1, 0, 2)

    return cut(inputs), cut(targets)


def segment_dataset(ids, *, batch_size, segment_length):
    """A data function for truncated BPTT: consecutive steps continue each stream.

    Args:
      ids: 1-D integer array, the whole token stream (e.g. `CharVocab.encode`).
      batch_size: number of parallel streams B (the batch dimension).
      segment_length: k, the number of time steps per segment (k1 = k2 = k).

    Returns:
      A function `start_step -> tf.data.Dataset` whose element for global step s
      is `(inputs [B, k], targets [B, k])` int32, segment `s mod segments` of
      every stream: row b of step s + 1 starts where row b of step s ended, which
      is what carrying the RNN state across steps needs, and a run resumed at
      step s sees exactly the batches it would have seen. The dataset is
      infinite (after the last segment the streams start again, with the state
      carried over the seam); `.take(fn.segments_per_epoch)` gives one pass.
      The function has the attribute `segments_per_epoch`.

    Raises:
      ValueError: see `segment_arrays`.
    """
    inputs, targets = segment_arrays(ids, batch_size=batch_size, segment_length=segment_length)
    segments = inputs.shape[0]

    def dataset(start_step=0):
        x, y = tf.constant(inputs), tf.constant(targets)
        steps = tf.data.Dataset.range(int(start_step), np.iinfo(np.int64).max)
        return steps.map(lambda s: (tf.gather(x, s % segments), tf.gather(y, s % segments)))

    dataset.segments_per_epoch = segments
    return dataset


class TBPTTTask(SingleModelTask):
    """Truncated BPTT (k1 = k2 = segment length) for a stateful sequence model.

    The model must expose its recurrent state like `mp.rnn.charlm.LanguageModel`:

      * `model.get_initial_state(batch_size)` -> flat list of zero state
        tensors (every layer's states, e.g. [h, c] per LSTM layer);
      * `model(ids, initial_state=states, return_state=True, training=...)`
        -> `(logits [B, k, V], new_states)` with `new_states` in the same order.

    The state lives in non-trainable `tf.Variable`s of batch `batch_size`, one
    per state tensor, float32 in every precision, checkpointed with the model
    (`checkpoint_items`), so a resumed run continues with the state it had. Each
    `train_step` starts from the stored state, runs teacher forcing on the
    segment (the true previous character is the input at every step), applies
    the gradient clipped to a global norm of `clip_norm`, and stores the final
    state for the next step.

    Evaluation carries a state of its own. It is reset to zero at the first
    evaluation batch after the global step changed, i.e. at the start of every
    evaluation the `Trainer` runs during training, and, when `eval_segments` is
    set, every `eval_segments` batches (set it to the number of segments of one
    evaluation pass when one step may see several evaluations).

    One replica only: the carried state belongs to the single copy of the batch.

    Args:
      model: the model, or a function returning it.
      optimizer: a `keras.optimizers.Optimizer`, or a function returning one.
      batch_size: the number of parallel streams (batch dimension of every batch).
      clip_norm: if set, gradients are rescaled to a global norm of at most
        `clip_norm` (ch4.2); `None` leaves them as they are. The norm before
        clipping is logged as `charts/grad_norm`.
      eval_segments: if set, the evaluation state is also reset every
        `eval_segments` evaluation batches.

    Train outputs: `loss/total` (mean cross-entropy in nats over the B * k
    predictions), `metrics/bits_per_char` (the same in bits, nats / ln 2),
    `charts/grad_norm`, `charts/learning_rate`. Eval sums: `loss`,
    `bits_per_char`, `count` (predictions).
    """

    def __init__(self, model, optimizer, *, batch_size, clip_norm=None, eval_segments=None):
        if not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
            raise ValueError(f"batch_size must be a positive integer. Received: {batch_size}")
        super().__init__(model, optimizer, clip_norm=clip_norm)
        if eval_segments is not None and not (
            isinstance(eval_segments, (int, np.integer)) and eval_segments > 0
        ):
            raise ValueError(
                f"eval_segments must be a positive integer. Received: eval_segments={eval_segments}"
            )
        self.batch_size = int(batch_size)
        self.eval_segments = eval_segments
        self.state = None  # tf.Module holding the carried states (train and eval)

    def build(self):
        if tf.distribute.get_strategy().num_replicas_in_sync != 1:
            raise ValueError("TBPTTTask carries one RNN state and supports one replica only")
        self.model = _build(self._model_factory)
        self.model(tf.zeros([self.batch_size, 1], tf.int32))  # creates the weights
        self.optimizer = _build(self._optimizer_factory)
        self.optimizer.build(self.model.trainable_variables)
        zeros = self.model.get_initial_state(self.batch_size)
        self.state = tf.Module(name="rnn_state")
        self.state.train = [
            tf.Variable(z, trainable=False, name=f"train_state_{i}") for i, z in enumerate(zeros)
        ]
        self.state.eval = [
            tf.Variable(z, trainable=False, name=f"eval_state_{i}") for i, z in enumerate(zeros)
        ]
        self.state.eval_step = tf.Variable(-1, dtype=tf.int64, trainable=False)
        self.state.eval_batches = tf.Variable(0, dtype=tf.int64, trainable=False)

    def checkpoint_items(self):
        return {"model": self.model, "optimizer": unscaled(self.optimizer), "rnn_state": self.state}

    def reset_state(self):
        """Sets the carried training state to zeros (e.g. between unrelated texts)."""
        for v in self.state.train:
            v.assign(tf.zeros_like(v))

    def train_step(self, batch):
        inputs, targets = batch
        # The carried state enters as a constant: a variable's value has no tape
        # history, so no gradient flows into the previous segment. stop_gradient
        # only makes that visible; this is the truncation of truncated BPTT.
        initial_state = [tf.stop_gradient(v.value()) for v in self.state.train]
        with tf.GradientTape() as tape:
            logits, final_state = float32(
                self.model(inputs, initial_state=initial_state, return_state=True, training=True)
            )
            cross_entropy = tf.nn.sparse_softmax_cross_entropy_with_logits(
                labels=targets, logits=logits
            )
            loss = global_mean(tf.reshape(cross_entropy, [-1]))  # mean over B * k
        # Clipping (if set): g <- g * clip_norm / max(||g||, clip_norm), ||g|| over all
        # variables together; the embedding's sparse gradient is made dense first, so
        # characters seen twice in the segment count once with their summed rows.
        grad_norm = self._minimize(tape, loss)
        for variable, value in zip(self.state.train, final_state):
            variable.assign(value)  # the next segment starts where this one ended
        return {
            "loss/total": loss,
            "metrics/bits_per_char": loss / math.log(2.0),
        } | self._charts(grad_norm)

    def eval_step(self, batch):
        inputs, targets = batch
        new_eval = tf.not_equal(self.global_step, self.state.eval_step)
        if self.eval_segments is not None:
            new_eval = tf.logical_or(
                new_eval, tf.equal(self.state.eval_batches % self.eval_segments, 0)
            )
        keep = 1.0 - tf.cast(new_eval, tf.float32)  # 0 resets the state to zeros
        initial_state = [v.value() * keep for v in self.state.eval]
        self.state.eval_batches.assign(
            tf.where(new_eval, tf.constant(1, tf.int64), self.state.eval_batches + 1)
        )
        self.state.eval_step.assign(self.global_step)
        logits, final_state = float32(
            self.model(inputs, initial_state=initial_state, return_state=True, training=False)
        )
        for variable, value in zip(self.state.eval, final_state):
            variable.assign(value)
        cross_entropy = tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=targets, logits=logits
        )
        total = tf.reduce_sum(cross_entropy)
        return {
            "loss": total,
            "bits_per_char": total / math.log(2.0),
            "count": tf.cast(tf.size(targets), tf.float32),
        }
