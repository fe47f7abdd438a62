"""Multi-task learning: one shared trunk, one head per task, a weighted sum of losses.

The parameters split into shared ones (the trunk `f`) and task-specific ones
(a head `g_t` per task `t`). Every task's logits read the same features, and
the tasks are learned at the same time from one loss:

    x -> f -> features -> g_t -> logits_t     for every task t
    L = sum over t of  w_t * CE_t,   CE_t = mean over the batch of -log softmax(logits_t)[y_t]

The head `g_t` gets gradient from `CE_t` alone; the trunk gets the weighted sum
of all of them, so what one task needs to see shapes the features the others
read. A task with `w_t = 0` is only monitored: its head is left out of the
update, so it stays as it was built. Transfer learning differs in that the
tasks come one after the other: train on one, then reuse the trunk for the next.

Here the tasks of Fashion-MNIST are its 10 classes (`class`) and a coarser
`group` of each class (`FASHION_GROUPS`); on the 8x8 digits the group is the
parity of the digit. Both label sets come from the one class label
(`derived_labels`).

Reference: R. Caruana, "Multitask learning", Machine Learning 28, 1997 (hard
parameter sharing, as here).

Course: ch2.3 Regularization methods (multi-task learning).
"""

import keras
import numpy as np
import tensorflow as tf

from mp.engine import SingleModelTask, global_mean
from mp.engine.precision import unscaled
from mp.engine.task import float32
from mp.plotting import pyplot

__all__ = [
    "DIGIT_GROUPS",
    "FASHION_GROUPS",
    "MultiTaskTask",
    "accuracy_figure",
    "derived_labels",
    "group_table",
    "make_head",
    "make_task",
    "make_trunk",
    "multitask_batches",
]

# Fashion-MNIST class -> group. A dress is worn from the shoulders down and
# its outline is closest to the long tops (coat, shirt), so it joins `top`:
# the group then says which part of the body a garment covers first.
FASHION_GROUPS = {
    "top": (0, 2, 3, 4, 6),  # T-shirt/top, Pullover, Dress, Coat, Shirt
    "bottom": (1,),  # Trouser
    "shoe": (5, 7, 9),  # Sandal, Sneaker, Ankle boot
    "bag": (8,),  # Bag
}
# Digits: the group is the parity.
DIGIT_GROUPS = {"even": (0, 2, 4, 6, 8), "odd": (1, 3, 5, 7, 9)}
GROUPS = {"fashion_mnist": FASHION_GROUPS, "digits": DIGIT_GROUPS, "mnist": DIGIT_GROUPS}


def group_table(groups, num_classes=10):
    """`table[c]` is the index of the group of class `c` (groups in the dict's order).

    Raises:
      ValueError: a class is in no group or in two, or is out of range.
    """
    table = np.full(num_classes, -1, dtype=np.int64)
    for index, (name, classes) in enumerate(groups.items()):
        for c in classes:
            if not 0 <= c < num_classes or table[c] != -1:
                raise ValueError(
                    f"every class must be in exactly one group. Received: class {c} in {name!r}"
                )
            table[c] = index
    if (table < 0).any():
        raise ValueError(
            f"every class must be in exactly one group. Received: classes "
            f"{np.flatnonzero(table < 0).tolist()} in none"
        )
    return table


def derived_labels(dataset):
    """The tasks of `dataset`: `{task: (num_classes, table)}`, `table[class]` = task label."""
    if dataset not in GROUPS:
        raise ValueError(
            f"no task groups for this dataset. Expected one of {', '.join(GROUPS)}. "
            f"Received: dataset={dataset!r}"
        )
    groups = GROUPS[dataset]
    return {"class": (10, np.arange(10)), "group": (len(groups), group_table(groups))}


def multitask_batches(data, tables):
    """Maps a dataset of `(x, class)` to `(x, {task: table[class]})`.

    Args:
      data: a `tf.data.Dataset` of `(images, labels)` (e.g. `mp.data.load`).
      tables: `{task: table}`, `table[class]` the task's label of a class.
    """
    tables = {task: tf.constant(table, dtype=tf.int32) for task, table in tables.items()}
    return data.map(
        lambda x, y: (x, {task: tf.gather(table, y) for task, table in tables.items()}),
        num_parallel_calls=tf.data.AUTOTUNE,
    )


# --- models ----------------------------------------------------------------


def make_trunk(input_shape, *, filters=(32, 64), units=256, dropout=0.0, name="trunk"):
    """The shared trunk: conv 3x3 -> pool -> conv 3x3 -> pool -> dense `units` -> dropout.

    Args:
      input_shape: `(height, width, channels)`, height and width divisible by 4.
      filters: channels of the two convolutions (ReLU, "same" padding).
      units: width of the shared features (ReLU).
      dropout: drop rate on the features, in [0, 1).

    Returns:
      A functional `keras.Model` images -> features `[B, units]`.
    """
    if input_shape[0] % 4 or input_shape[1] % 4:
        raise ValueError(
            "the trunk pools twice by 2, so height and width must be divisible by 4. "
            f"Received: input_shape={tuple(input_shape)}"
        )
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1). Received: dropout={dropout}")
    images = keras.Input(shape=tuple(input_shape), name="images")
    x = images
    for i, f in enumerate(filters, start=1):
        x = keras.layers.Conv2D(f, 3, padding="same", activation="relu", name=f"conv{i}")(x)
        x = keras.layers.MaxPooling2D(2, name=f"pool{i}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(units, activation="relu", name="features")(x)
    x = keras.layers.Dropout(dropout, name="dropout")(x)
    return keras.Model(images, x, name=name)


def make_head(units, num_classes, name):
    """A task head: dense logits on the trunk's `units` features."""
    features = keras.Input(shape=(units,), name="features")
    return keras.Model(
        features, keras.layers.Dense(num_classes, name="logits")(features), name=name
    )


# --- the task ----------------------------------------------------------------


def make_task(
    input_shape,
    num_classes,
    loss_weights,
    optimizer,
    *,
    units=256,
    dropout=0.0,
    seed=0,
    clip_norm=None,
):
    """A `MultiTaskTask` on a new trunk that learns the tasks of `loss_weights`.

    The trunk and a head for every task of `num_classes` (in its order) are
    built right after `keras.utils.set_random_seed(seed)`, and the heads of
    tasks left out of `loss_weights` are dropped: the multi-task model and each
    single-task one then start from the same trunk and heads. Call it in a
    strategy's scope to train under one.

    Args:
      input_shape: `(height, width, channels)` of the images (`make_trunk`).
      num_classes: `{task: number of classes}` of every task (`derived_labels`).
      loss_weights: `{task: w_t}` of the tasks to learn, a subset of `num_classes`.
      optimizer: a `keras.optimizers.Optimizer`, or a function returning one.
      units, dropout: the trunk's (`make_trunk`).
      seed: the seed set before the build.
      clip_norm: the task's gradient clipping (`MultiTaskTask`).

    Raises:
      ValueError: a task of `loss_weights` that `num_classes` lacks, and `MultiTaskTask`'s.
    """
    unknown = set(loss_weights) - set(num_classes)
    if unknown:
        raise ValueError(
            f"loss_weights name tasks without heads: {', '.join(sorted(unknown))}. "
            f"Expected some of {', '.join(num_classes)}"
        )
    keras.utils.set_random_seed(seed)
    trunk = make_trunk(input_shape, units=units, dropout=dropout)
    heads = {t: make_head(units, k, name=f"head_{t}") for t, k in num_classes.items()}
    return MultiTaskTask(
        trunk, {t: heads[t] for t in loss_weights}, loss_weights, optimizer, clip_norm=clip_norm
    )



def _build(factory):
    """Calls `factory` if it is a function, else returns it as it is."""
    if isinstance(factory, (keras.Model, keras.optimizers.Optimizer)) or not callable(factory):
        return factory
    return factory()


class MultiTaskTask(SingleModelTask):
    """Trains a trunk and its heads on `L = sum_t w_t * CE_t`.

    A batch is `(x, {task: labels})` (`multitask_batches`), for training and
    evaluation alike. The task's `model` maps images to `{task: logits}`; one
    optimizer updates trunk and heads through the engine's `_minimize`, so
    `clip_norm` bounds their global gradient norm.

    Args:
      trunk: a `keras.Model` images -> features, or a function returning one.
      heads: `{task: head}`, each a `keras.Model` features -> logits (or a
        function returning one).
      loss_weights: `{task: w_t}`, the same tasks as `heads`, every `w_t >= 0`
        and at least one positive.
      optimizer: a `keras.optimizers.Optimizer`, or a function returning one.
      clip_norm: if set, the gradient is rescaled to this global norm at most
        (`mp.engine.SingleModelTask`); `None` leaves it as it is.

    Raises:
      ValueError: the tasks of `heads` and `loss_weights` differ, or a weight
        is negative, or all weights are 0, or `clip_norm` is not positive.
    """

    def __init__(self, trunk, heads, loss_weights, optimizer, *, clip_norm=None):
        if not heads or set(heads) != set(loss_weights):
            raise ValueError(
                "heads and loss_weights must name the same tasks. Received: "
                f"heads={sorted(heads)}, loss_weights={sorted(loss_weights)}"
            )
        if any(not w >= 0 for w in loss_weights.values()) or not any(loss_weights.values()):
            raise ValueError(
                f"loss weights must be >= 0, one at least positive. Received: {loss_weights}"
            )
        super().__init__(None, optimizer, clip_norm=clip_norm)  # the model is built in build()
        self._factories = (trunk, dict(heads))
        self.tasks = tuple(heads)
        self.loss_weights = {t: float(loss_weights[t]) for t in self.tasks}
        self.trunk = self.heads = None

    def build(self):
        trunk, heads = self._factories
        self.trunk = _build(trunk)
        self.heads = {t: _build(heads[t]) for t in self.tasks}
        self.optimizer = _build(self._optimizer_factory)
        images = keras.Input(shape=self.trunk.input_shape[1:], name="images")
        features = self.trunk(images)
        self.model = keras.Model(
            images, {t: head(features) for t, head in self.heads.items()}, name="multitask"
        )
        self.optimizer.build(self.trainable_variables)

    @property
    def trainable_variables(self):
        """The trunk's and the heads' of tasks with a positive weight."""
        variables = list(self.trunk.trainable_variables)
        for t in self.tasks:
            if self.loss_weights[t] > 0:
                variables += self.heads[t].trainable_variables
        return variables

    def checkpoint_items(self):
        return {"trunk": self.trunk, "optimizer": unscaled(self.optimizer)} | {
            f"head_{t}": head for t, head in self.heads.items()
        }

    def losses(self, batch, training=True):
        """Per-task cross-entropies (global-mean shares) and logits of a batch.

        Returns:
          `(cross_entropies, logits)`, two dicts keyed by task.
        """
        images, labels = batch
        features = self.trunk(images, training=training)
        logits = {t: float32(self.heads[t](features, training=training)) for t in self.tasks}
        cross_entropies = {
            t: tf.nn.compute_average_loss(
                tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels[t], logits=logits[t])
            )
            for t in self.tasks
        }
        return cross_entropies, logits

    def train_step(self, batch):
        _, labels = batch
        with tf.GradientTape() as tape:
            cross_entropies, logits = self.losses(batch, training=True)
            # L = sum_t w_t * CE_t
            loss = tf.add_n([self.loss_weights[t] * cross_entropies[t] for t in self.tasks])
        grad_norm = self._minimize(tape, loss, self.trainable_variables)
        outputs = {"loss/total": loss}
        for t in self.tasks:
            outputs[f"loss/{t}"] = cross_entropies[t]
            outputs[f"metrics/{t}_top1"] = global_mean(
                tf.math.in_top_k(targets=labels[t], predictions=logits[t], k=1)
            )
        return outputs | self._charts(grad_norm)

    def eval_step(self, batch):
        """Sums over the batch, tagged like the training outputs (`loss/<task>`, ...)."""
        images, labels = batch
        features = self.trunk(images, training=False)
        outputs = {}
        total = 0.0
        for t in self.tasks:
            logits = float32(self.heads[t](features, training=False))
            cross_entropy = tf.nn.sparse_softmax_cross_entropy_with_logits(
                labels=labels[t], logits=logits
            )
            correct = tf.math.in_top_k(targets=labels[t], predictions=logits, k=1)
            outputs[f"loss/{t}"] = tf.reduce_sum(cross_entropy)
            outputs[f"metrics/{t}_top1"] = tf.reduce_sum(tf.cast(correct, tf.float32))
            total += self.loss_weights[t] * outputs[f"loss/{t}"]
        outputs["loss"] = total
        outputs["count"] = tf.cast(tf.shape(images)[0], tf.float32)
        return outputs

    def export(self, path):
        """Saves the model images -> `{task: logits}`."""
        self.model.save(path)


# --- figures -------------------------------------------------------------------


def accuracy_figure(accuracies, loss_weights, *, title=""):
    """Test accuracy per task: one bar per model, models side by side.

    Args:
      accuracies: `{model label: {task: test accuracy}}`, e.g.
        `{"multi-task": {...}, "single-task": {...}}` (colours C0, C1); the
        first model's tasks, in its order, make the groups of bars.
      loss_weights: `{task: w_t}`, written under each task.
      title: the figure's title.

    Returns:
      A matplotlib figure (closed: save it, `IPython.display` it).
    """
    plt = pyplot()
    tasks = list(next(iter(accuracies.values())))
    fig, ax = plt.subplots(figsize=(1.5 + 2.2 * len(tasks), 4))
    width = 0.38
    for i, (label, values) in enumerate(accuracies.items()):
        offsets = [j + (i - 0.5) * width for j in range(len(tasks))]
        bars = ax.bar(offsets, [values[t] for t in tasks], width, label=label, color=f"C{i}")
        ax.bar_label(bars, fmt="%.4f", fontsize=8)
    lowest = min(a for values in accuracies.values() for a in values.values())
    ax.set_ylim(max(0.0, lowest - 0.05), 1.0)
    ax.set_xticks(range(len(tasks)), [f"{t}\n(w={loss_weights[t]:g})" for t in tasks])
    ax.set_ylabel("test accuracy")
    ax.set_title(title)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False)
    fig.tight_layout()
    plt.close(fig)
    return fig
