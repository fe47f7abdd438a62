"""What a chapter plugs into the engine: a `Task` and its step functions.

The engine (`mp.engine.Trainer`) owns everything every chapter shares: the
`global_step`, checkpoints, summaries, the progress bar, signals and the
`tf.distribute` strategy. A task owns what differs: its models, optimizers and
what one training step does.

    classification  one model, one optimizer, cross-entropy from logits
    VAE             own loss (rate + distortion), still one optimizer
    GAN             two models, two optimizers, alternating updates in one step
    RL              the data iterator collects experience with the current
                    policy (Python), the step updates from it (graph)

The one rule across replicas: every value a step returns is this replica's
share of a mean over the *global* batch (divide sums by the global batch size;
`tf.nn.compute_average_loss` does exactly that). The engine sums the shares over
replicas, so a value reads the same on one device or eight. The exception is
declared, not divided by hand: outputs under `REPLICA_MEAN_PREFIXES` (`charts/`:
a learning rate, a gradient norm after the all-reduce) are whole on every
replica, and the engine averages them instead.

Mixed precision (`mp.engine.precision`): the models may compute in bfloat16 or
float16, but whatever is a probability or a loss stays float32. Every task passes
its model's outputs through `float32` before the cross-entropy, the metrics and
the distributions, and minimises through `minimize`, which scales the loss for a
`LossScaleOptimizer` (mixed_float16).

Course: ch1 (losses), ch7.1 TensorFlow tips (logits, `in_top_k`, `global_step`).
"""

import keras
import tensorflow as tf

from mp.engine.precision import unscaled


def float32(values):
    """`values` (a tensor or a nest of them) with every 16-bit float tensor cast to float32.

    Models under a mixed policy return bfloat16 or float16 logits; a softmax
    cross-entropy or a log-probability computed in them would be rounded to 3
    significant digits (bfloat16), or overflow (float16). float32 and float64 pass as
    they are (a float64 gradient check stays float64), and so do integer tensors.
    """

    def cast(value):
        value = tf.convert_to_tensor(value)
        return tf.cast(value, tf.float32) if value.dtype in (tf.bfloat16, tf.float16) else value

    return tf.nest.map_structure(cast, values)


def minimize(optimizer, tape, loss, variables, clip_norm=None, chart_step=None):
    """One update of `variables` by `optimizer` on `loss` (recorded by `tape`).

    With a `keras.optimizers.LossScaleOptimizer` (mixed_float16) the backward pass
    starts from `S * loss`, `S` the optimizer's loss scale, so that small float16
    gradients do not underflow; `apply_gradients` divides them by `S` again (and skips
    the update, halving `S`, when one is not finite). The tape has stopped recording,
    so the scaled loss is not formed: seeding the backward pass with `S` instead of 1
    (`output_gradients`) gives the same gradients, `d(S * loss)/dw = S * dloss/dw`.

    Args:
      optimizer: a `keras.optimizers.Optimizer`, loss-scaled or not.
      tape: the `tf.GradientTape` that recorded `loss`.
      loss: the scalar float32 loss (this replica's share).
      variables: the variables to update.
      clip_norm: if set, the gradient is rescaled to this global norm at most
        (`clip_gradients`).
      chart_step: `Task.chart_step` (see `clip_gradients`).

    Returns:
      The gradient's global norm (unscaled), or `None` (see `clip_gradients`).
    """
    scale = None
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        scale = optimizer.scale_loss(tf.ones_like(loss))  # S, the current loss scale
        gradients = tape.gradient(loss, variables, output_gradients=scale)
    else:
        gradients = tape.gradient(loss, variables)
    gradients, grad_norm = clip_gradients(gradients, clip_norm, scale=scale, chart_step=chart_step)
    optimizer.apply_gradients(zip(gradients, variables))
    return grad_norm


def clip_gradients(gradients, clip_norm=None, *, scale=None, chart_step=None):
    """Clips the global gradient by its global norm; returns it and the norm.

    With several replicas each holds a share of the gradient, and the
    optimizer sums the shares. Clipping must see the sum, so the shares are
    summed here first and handed on divided by the number of replicas. Without
    clipping only the one-replica norm is reported (it would need that sum).

    Args:
      gradients: a list of gradients (`tf.IndexedSlices` are made dense).
      clip_norm: the largest global norm, or `None` not to clip.
      scale: the loss scale the gradients carry (mixed_float16), or `None`. They are
        clipped to `clip_norm * scale` and handed on still scaled, for the loss-scale
        optimizer to divide; the norm returned is the unscaled one. A gradient that
        overflowed has an infinite norm and comes out NaN, so that update is skipped.
      chart_step: without clipping the norm is only a chart: with a bool tensor here it is
        computed where that is true and is 0 elsewhere (it costs a pass over every
        gradient, about 3% of a classic-CNN step); `None` computes it always.
    """
    # An embedding's gradient comes as IndexedSlices holding one row per lookup;
    # rows looked up twice must be summed before a norm is taken, so densify.
    gradients = [
        tf.convert_to_tensor(g) if isinstance(g, tf.IndexedSlices) else g for g in gradients
    ]
    context = tf.distribute.get_replica_context()
    replicas = context.num_replicas_in_sync
    if clip_norm is None:
        if replicas > 1:
            return gradients, None
        if chart_step is None:
            grad_norm = tf.linalg.global_norm(gradients)
        else:
            grad_norm = tf.cond(
                chart_step, lambda: tf.linalg.global_norm(gradients), lambda: tf.constant(0.0)
            )
        return gradients, grad_norm if scale is None else grad_norm / scale
    if replicas > 1:
        gradients = context.all_reduce(tf.distribute.ReduceOp.SUM, gradients)
    grad_norm = tf.linalg.global_norm(gradients)
    limit = clip_norm if scale is None else clip_norm * scale
    gradients, _ = tf.clip_by_global_norm(gradients, limit, use_norm=grad_norm)
    if replicas > 1:
        gradients = [g / replicas for g in gradients]
    return gradients, grad_norm if scale is None else grad_norm / scale


def global_mean(values):
    """This replica's share of the mean of `values` over the global batch."""
    return tf.nn.compute_average_loss(tf.cast(values, tf.float32))


def _build(factory):
    """Calls `factory` if it is a function, else returns it as it is."""
    return (
        factory()
        if callable(factory) and not isinstance(factory, (keras.Model, keras.optimizers.Optimizer))
        else factory
    )


class Task:
    """Base class of everything the engine can train.

    The engine sets `self.global_step` (an int64 `tf.Variable`) and calls `build`
    inside the strategy's scope, then calls `train_step` (and `eval_step`) once
    per batch through `strategy.run`, inside a `tf.function`.
    """

    global_step = None
    # Set by the engine while it traces a step: a scalar bool tensor, true on the steps
    # whose `charts/` outputs it keeps (the first of each `log_every` chunk). Charts that
    # cost work of their own (the gradient norm: a pass over every gradient) are computed
    # on those steps only. `None` (a step called directly): every step computes them.
    chart_step = None
    # Outputs every replica holds whole (not a share): averaged over replicas, not summed.
    REPLICA_MEAN_PREFIXES = ("charts/",)

    def build(self):
        """Creates models and optimizers, including the optimizer's slots."""
        raise NotImplementedError

    def checkpoint_items(self):
        """Returns the trackables to checkpoint, e.g. `{"model": ..., "optimizer": ...}`."""
        raise NotImplementedError

    def train_step(self, batch):
        """One update from `batch`; returns a dict of scalar global-mean shares.

        Keys are summary tags such as `loss/total` or `metrics/top1`. The NaN guard
        watches every key starting with `loss`; the progress bar shows all but the
        `charts/` ones.
        """
        raise NotImplementedError

    def eval_step(self, batch):
        """Returns per-replica *sums* over `batch`, with the example count in `count`."""
        raise NotImplementedError

    def export(self, path):
        """Saves the task's main model to `path` (a `.keras` file); apps call it at the end."""
        raise NotImplementedError


class SingleModelTask(Task):
    """A task with one model and one optimizer: what most chapters train.

    Subclasses write `train_step` (computing a loss under a `tf.GradientTape`,
    then `self._minimize(tape, loss)`) and `eval_step`.

    Args:
      model: a `keras.Model`, or a function returning one (needed under a
        distribution strategy, whose scope must own the variables).
      optimizer: a `keras.optimizers.Optimizer`, or a function returning one.
      clip_norm: if set, gradients are rescaled so that their global norm is at
        most `clip_norm` (ch4.2); `None` leaves them as they are.
    """

    def __init__(self, model, optimizer, *, clip_norm=None):
        if clip_norm is not None and not clip_norm > 0:
            raise ValueError(f"clip_norm must be positive. Received: clip_norm={clip_norm}")
        self._model_factory = model
        self._optimizer_factory = optimizer
        self.clip_norm = clip_norm
        self.model = None
        self.optimizer = None

    def build(self):
        self.model = _build(self._model_factory)
        self.optimizer = _build(self._optimizer_factory)
        self.optimizer.build(self.model.trainable_variables)

    def checkpoint_items(self):
        # The inner optimizer of a loss-scaled one: the same checkpoint in every precision.
        return {"model": self.model, "optimizer": unscaled(self.optimizer)}

    def export(self, path):
        self.model.save(path)

    def _minimize(self, tape, loss, variables=None):
        """One optimizer step on `loss` (`minimize`); returns the gradient's global norm.

        `variables` default to the model's trainable variables.
        """
        variables = self.model.trainable_variables if variables is None else variables
        return minimize(self.optimizer, tape, loss, variables, self.clip_norm, self.chart_step)

    def _charts(self, grad_norm):
        """The `charts/` outputs of an update: the learning rate and the gradient norm."""
        outputs = {"charts/learning_rate": tf.cast(self.optimizer.learning_rate, tf.float32)}
        if grad_norm is not None:
            outputs["charts/grad_norm"] = grad_norm
        return outputs


class ClassificationTask(SingleModelTask):
    """Supervised classification: softmax cross-entropy from logits.

    Args: see `SingleModelTask` (`model` maps images to logits).
    """

    def train_step(self, batch):
        images, labels = batch
        with tf.GradientTape() as tape:
            logits = float32(self.model(images, training=True))
            cross_entropy = tf.nn.sparse_softmax_cross_entropy_with_logits(
                labels=labels, logits=logits
            )
            data_loss = tf.nn.compute_average_loss(cross_entropy)
            loss = data_loss
            if self.model.losses:  # weight penalties, added once per global batch
                loss += tf.nn.scale_regularization_loss(tf.add_n(self.model.losses))
        grad_norm = self._minimize(tape, loss)
        return {
            "loss/total": loss,
            "loss/cross_entropy": data_loss,
            "metrics/top1": global_mean(tf.math.in_top_k(targets=labels, predictions=logits, k=1)),
        } | self._charts(grad_norm)

    def eval_step(self, batch):
        images, labels = batch
        logits = self.predict_logits(images)
        cross_entropy = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
        k = min(5, logits.shape[-1])
        return {
            "loss": tf.reduce_sum(cross_entropy),
            "top1": tf.reduce_sum(
                tf.cast(tf.math.in_top_k(targets=labels, predictions=logits, k=1), tf.float32)
            ),
            "top5": tf.reduce_sum(
                tf.cast(tf.math.in_top_k(targets=labels, predictions=logits, k=k), tf.float32)
            ),
            "count": tf.cast(tf.shape(labels)[0], tf.float32),
        }

    def predict_logits(self, images):
        """The model's logits for `images` in inference mode, float32."""
        return float32(self.model(images, training=False))
