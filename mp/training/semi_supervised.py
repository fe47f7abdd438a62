"""Semi-supervised learning: an autoencoder and a classifier that share an encoder.

Labels are expensive, images are cheap. With `L` labelled examples and many
unlabelled ones, train one encoder `f` for two jobs at once:

    labelled x    -> f -> code -> head g    -> logits   (cross-entropy with y)
                              \\-> decoder h -> x_hat    (reconstruction)
    unlabelled x  -> f -> code -> decoder h -> x_hat    (reconstruction)

The loss of one step, over a labelled batch `B_l` and an unlabelled batch `B_u`:

    L = CE + w * REC
    CE  = mean over i in B_l of  -log softmax(g(f(x_i)))[y_i]
    REC = mean over i in B_l + B_u of  mean over pixels of (h(f(x_i)) - x_i)^2

Gradients follow the graph: the head `g` learns from CE alone, the decoder `h`
from REC alone, and the shared encoder `f` from both, so the unlabelled images
shape the features the classifier reads. The autoencoder only provides that
training signal; at test time the classifier `g(f(x))` is all that is used.
The supervised baseline is the same `g(f(x))` trained on the labelled
examples alone (`mp.engine.ClassificationTask`).

The idea goes back to autoencoder pre-training (Hinton & Salakhutdinov,
"Reducing the dimensionality of data with neural networks", Science 2006);
training both losses jointly as here is the approach of Ranzato & Szummer,
"Semi-supervised learning of compact document representations with deep
networks", ICML 2008 (ladder networks, Rasmus et al. 2015, refine it).

Course: ch2.3 Regularization methods (semi-supervised learning).
"""

import keras
import numpy as np
import tensorflow as tf

from mp.engine import ClassificationTask, SingleModelTask, global_mean
from mp.engine.precision import unscaled
from mp.engine.task import float32
from mp.plotting import pyplot

__all__ = [
    "SemiSupervisedData",
    "SemiSupervisedTask",
    "autoencoder_classifier",
    "classifier",
    "labelled_batches",
    "labelled_subset",
    "make_decoder",
    "make_encoder",
    "make_head",
    "make_tasks",
    "reconstructions_figure",
    "semi_supervised_batches",
    "sweep_figure",
]

KINDS = ("conv", "dense")


# --- data ------------------------------------------------------------------


def labelled_subset(labels, per_class, seed=0):
    """Chooses `per_class` labelled examples of every class; the rest is unlabelled.

    The choice is stratified (exactly `per_class` of each class, so the labelled
    set is balanced) and a function of `labels`, `per_class` and `seed` only.

    Args:
      labels: integer class labels `[N]` of the training set.
      per_class: labelled examples kept per class, a positive integer.
      seed: seed of the random choice.

    Returns:
      `(labelled, unlabelled)`: two sorted int64 index arrays into `labels`,
      disjoint, together covering `range(N)`.

    Raises:
      ValueError: `per_class` is not a positive integer, or a class has fewer
        than `per_class` examples.
    """
    labels = np.asarray(labels)
    if isinstance(per_class, bool) or not isinstance(per_class, (int, np.integer)) or per_class < 1:
        raise ValueError(f"per_class must be a positive integer. Received: per_class={per_class!r}")
    rng = np.random.default_rng(seed)
    chosen = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        if len(members) < per_class:
            raise ValueError(
                f"class {label} has only {len(members)} examples. "
                f"Received: per_class={per_class}"
            )
        chosen.append(rng.choice(members, size=per_class, replace=False))
    labelled = np.sort(np.concatenate(chosen)).astype(np.int64)
    unlabelled = np.setdiff1d(np.arange(len(labels)), labelled).astype(np.int64)
    return labelled, unlabelled


def _index_batches(indices, batch_size, seed):
    """Batches of `indices`, shuffled with a new order each pass, forever."""
    ds = tf.data.Dataset.from_tensor_slices(np.asarray(indices, dtype=np.int64))
    ds = ds.shuffle(len(indices), seed=seed, reshuffle_each_iteration=True).repeat()
    return ds.batch(batch_size, drop_remainder=True)


def _standardizer(images, mean, std):
    """`gather(indices)`: uint8 images at `indices` -> float32 `(x / 255 - mean) / std`."""
    images = tf.constant(images)

    def gather(indices):
        x = tf.cast(tf.gather(images, indices), tf.float32) / 255.0
        return (x - mean) / std

    return gather


def labelled_batches(
    images, labels, labelled, *, batch_size, seed=0, skip_batches=0, mean=0.0, std=1.0
):
    """Endless shuffled `(x, y)` batches of the labelled examples only (the baseline's data).

    Args:
      images: uint8 images `[N, H, W, C]` of the whole training set.
      labels: integer labels `[N]`.
      labelled: indices of the labelled examples (`labelled_subset`).
      batch_size: examples per batch.
      seed: seed of the shuffle.
      skip_batches: leading batches to drop, to resume a run on the batches it
        would have seen.
      mean, std: standardisation, `x -> (x / 255 - mean) / std`.

    Returns:
      A repeated `tf.data.Dataset` of `(x float32 [B, H, W, C], y int32 [B])`.
    """
    gather = _standardizer(images, mean, std)
    labels = tf.constant(labels, dtype=tf.int32)
    ds = _index_batches(labelled, batch_size, seed).skip(skip_batches)
    ds = ds.map(lambda i: (gather(i), tf.gather(labels, i)), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def semi_supervised_batches(
    images,
    labels,
    labelled,
    unlabelled,
    *,
    batch_size,
    unlabelled_batch_size,
    seed=0,
    skip_batches=0,
    mean=0.0,
    std=1.0,
):
    """Endless `((x_labelled, y_labelled), x_unlabelled)` batches.

    Two repeated, shuffled streams zipped together: the labelled stream is the
    very one `labelled_batches` gives for the same seed, so the semi-supervised
    model and its baseline see the same labelled batches in the same order.
    The unlabelled images' labels are never read.

    Args:
      images, labels, labelled, batch_size, seed, skip_batches, mean, std: as
        for `labelled_batches`.
      unlabelled: indices of the unlabelled examples.
      unlabelled_batch_size: unlabelled images per batch.

    Returns:
      A repeated `tf.data.Dataset` of `((x [B, H, W, C], y [B]), x_u [B_u, H, W, C])`.
    """
    gather = _standardizer(images, mean, std)
    labels = tf.constant(labels, dtype=tf.int32)
    ds = tf.data.Dataset.zip(
        _index_batches(labelled, batch_size, seed),
        _index_batches(unlabelled, unlabelled_batch_size, seed + 1),
    ).skip(skip_batches)
    ds = ds.map(
        lambda i, j: ((gather(i), tf.gather(labels, i)), gather(j)),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    return ds.prefetch(tf.data.AUTOTUNE)


class SemiSupervisedData:
    """One experiment's data: `per_class` labels kept per class, and both models' batches.

    The labelled examples are `labelled_subset(labels, per_class, seed)`; every
    other training image is unlabelled. The semi-supervised model reads
    `semi_supervised_data()`, its supervised baseline `supervised_data()`: the
    same labelled batches in the same order (the unlabelled stream comes beside).

        data = SemiSupervisedData(images, labels, 10, batch_size=32,
                                  unlabelled_batch_size=128, mean=mean, std=std)
        batches = data.semi_supervised_data()(0)   # from step 0

    Args:
      images: uint8 training images `[N, H, W, C]`.
      labels: their integer labels `[N]`.
      per_class: labelled examples per class.
      batch_size: labelled examples per batch (both models).
      unlabelled_batch_size: unlabelled images per batch (the semi-supervised model).
      seed: seed of the labelled choice and of both shuffles.
      mean, std: standardisation, `x -> (x / 255 - mean) / std`
        (`mp.data.standardization_stats`).

    Raises:
      ValueError: `labelled_subset`'s, or a batch size larger than its set.
    """

    def __init__(
        self,
        images,
        labels,
        per_class,
        *,
        batch_size,
        unlabelled_batch_size,
        seed=0,
        mean=0.0,
        std=1.0,
    ):
        self.labelled, self.unlabelled = labelled_subset(labels, per_class, seed)
        if len(self.labelled) < batch_size or len(self.unlabelled) < unlabelled_batch_size:
            raise ValueError(
                f"with {per_class} labels per class, {len(self.labelled)} labelled and "
                f"{len(self.unlabelled)} unlabelled images do not fill a batch. Received: "
                f"batch_size={batch_size}, unlabelled_batch_size={unlabelled_batch_size}"
            )
        self.images, self.labels, self.per_class = images, labels, per_class
        self.batch_size, self.unlabelled_batch_size = batch_size, unlabelled_batch_size
        self.seed, self.mean, self.std = seed, mean, std

    def semi_supervised_data(self):
        """`start_step -> semi_supervised_batches(...)` from that step on (resumable)."""

        def data(start_step):
            return semi_supervised_batches(
                self.images,
                self.labels,
                self.labelled,
                self.unlabelled,
                batch_size=self.batch_size,
                unlabelled_batch_size=self.unlabelled_batch_size,
                seed=self.seed,
                skip_batches=start_step,
                mean=self.mean,
                std=self.std,
            )

        return data

    def supervised_data(self):
        """`start_step -> labelled_batches(...)`: the baseline's batches from that step on."""

        def data(start_step):
            return labelled_batches(
                self.images,
                self.labels,
                self.labelled,
                batch_size=self.batch_size,
                seed=self.seed,
                skip_batches=start_step,
                mean=self.mean,
                std=self.std,
            )

        return data


# --- models ----------------------------------------------------------------


def _check(input_shape, kind, code_units):
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}. Received: kind={kind!r}")
    if kind == "conv" and (input_shape[0] % 4 or input_shape[1] % 4):
        raise ValueError(
            "the conv encoder pools twice by 2, so height and width must be divisible by 4. "
            f"Received: input_shape={tuple(input_shape)}"
        )
    if code_units < 1:
        raise ValueError(f"code_units must be positive. Received: code_units={code_units}")


def make_encoder(
    input_shape,
    *,
    kind="conv",
    code_units=128,
    filters=(32, 64),
    hidden_units=256,
    noise_stddev=0.0,
):
    """The shared encoder `f`: images -> a code of `code_units` features.

        [Gaussian noise on the images, in training only]
        conv:   conv 3x3 filters[0], ReLU -> max-pool 2 -> conv 3x3 filters[1], ReLU
                -> max-pool 2 -> flatten -> dense code_units, ReLU
        dense:  flatten -> dense hidden_units, ReLU -> dense code_units, ReLU

    Args:
      input_shape: `(height, width, channels)`; divisible by 4 for `conv`.
      kind: `conv` or `dense`.
      code_units: width of the code.
      filters: channels of the two convolutions (`conv`).
      hidden_units: width of the hidden layer (`dense`).
      noise_stddev: standard deviation of Gaussian noise added to the images in
        training (ch2.3 noise injection); the decoder still reconstructs the
        clean image, which makes the autoencoder a denoising one.

    Returns:
      A functional `keras.Model` named `encoder`.
    """
    _check(input_shape, kind, code_units)
    if not noise_stddev >= 0:
        raise ValueError(f"noise_stddev must be >= 0. Received: noise_stddev={noise_stddev}")
    images = keras.Input(shape=tuple(input_shape), name="images")
    x = images
    if noise_stddev:
        x = keras.layers.GaussianNoise(noise_stddev, name="noise")(x)
    if kind == "conv":
        for i, f in enumerate(filters, start=1):
            x = keras.layers.Conv2D(f, 3, padding="same", activation="relu", name=f"conv{i}")(x)
            x = keras.layers.MaxPooling2D(2, name=f"pool{i}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    if kind == "dense":
        x = keras.layers.Dense(hidden_units, activation="relu", name="hidden")(x)
    code = keras.layers.Dense(code_units, activation="relu", name="code")(x)
    return keras.Model(images, code, name="encoder")


def make_decoder(input_shape, *, kind="conv", code_units=128, filters=(32, 64), hidden_units=256):
    """The decoder `h`: a code -> a reconstruction of the (standardised) image.

    The mirror image of `make_encoder` with the same arguments; transposed
    convolutions with stride 2 undo the pools. The output is linear, since the
    standardised pixels it reconstructs are not bounded.

    Returns:
      A functional `keras.Model` named `decoder` mapping `[B, code_units]` to
      `[B, *input_shape]`.
    """
    _check(input_shape, kind, code_units)
    height, width, channels = input_shape
    code = keras.Input(shape=(code_units,), name="code")
    if kind == "conv":
        size = (height // 4, width // 4, filters[1])
        x = keras.layers.Dense(int(np.prod(size)), activation="relu", name="expand")(code)
        x = keras.layers.Reshape(size, name="reshape")(x)
        x = keras.layers.Conv2DTranspose(
            filters[0], 3, strides=2, padding="same", activation="relu", name="deconv1"
        )(x)
        x = keras.layers.Conv2DTranspose(channels, 3, strides=2, padding="same", name="deconv2")(x)
    else:
        x = keras.layers.Dense(hidden_units, activation="relu", name="hidden")(code)
        x = keras.layers.Dense(height * width * channels, name="pixels")(x)
        x = keras.layers.Reshape(tuple(input_shape), name="reshape")(x)
    return keras.Model(code, x, name="decoder")


def make_head(code_units, num_classes, *, dropout=0.0):
    """The classifier head `g`: a code -> dropout -> dense logits."""
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1). Received: dropout={dropout}")
    code = keras.Input(shape=(code_units,), name="code")
    x = keras.layers.Dropout(dropout, name="dropout")(code)
    logits = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(code, logits, name="head")


def autoencoder_classifier(
    input_shape,
    num_classes,
    *,
    kind="conv",
    code_units=128,
    filters=(32, 64),
    hidden_units=256,
    dropout=0.0,
    noise_stddev=0.0,
):
    """Builds `(encoder, decoder, head)` that fit together; see the `make_*` functions."""
    sizes = {"kind": kind, "code_units": code_units, "filters": filters}
    sizes["hidden_units"] = hidden_units
    return (
        make_encoder(input_shape, noise_stddev=noise_stddev, **sizes),
        make_decoder(input_shape, **sizes),
        make_head(code_units, num_classes, dropout=dropout),
    )


def classifier(encoder, head, name="classifier"):
    """The model used at test time, `head(encoder(x))`, sharing their layers."""
    images = keras.Input(shape=encoder.input_shape[1:], name="images")
    return keras.Model(images, head(encoder(images)), name=name)


# --- the task ----------------------------------------------------------------


def _build(factory):
    """Calls `factory` if it is a function, else returns it as it is."""
    if isinstance(factory, (keras.Model, keras.optimizers.Optimizer)) or not callable(factory):
        return factory
    return factory()


class SemiSupervisedTask(SingleModelTask):
    """Trains encoder, decoder and head on `L = CE + reconstruction_weight * REC`.

    A batch is `((x_labelled, y_labelled), x_unlabelled)`
    (`semi_supervised_batches`); evaluation batches are `(x, y)`. The task's
    `model` is the classifier `head(encoder(x))`, what is tested and exported;
    one optimizer updates encoder, decoder and head together through the
    engine's `_minimize`, so `clip_norm` bounds the global norm of the three.

    Args:
      encoder: a `keras.Model` images -> codes, or a function returning one
        (under a distribution strategy the variables must be made in its scope).
      decoder: a `keras.Model` codes -> images, or a function returning one.
      classifier_head: a `keras.Model` codes -> logits, or a function returning one.
      optimizer: a `keras.optimizers.Optimizer`, or a function returning one.
      reconstruction_weight: `w >= 0`, the weight of the reconstruction loss.
        0 trains the classifier alone (the decoder then gets a zero gradient).
      clip_norm: if set, the gradient is rescaled to this global norm at most
        (`mp.engine.SingleModelTask`); `None` leaves it as it is.

    Raises:
      ValueError: a negative `reconstruction_weight`, a `clip_norm` that is not positive.
    """

    def __init__(
        self,
        encoder,
        decoder,
        classifier_head,
        optimizer,
        reconstruction_weight=1.0,
        *,
        clip_norm=None,
    ):
        if not reconstruction_weight >= 0:
            raise ValueError(
                "reconstruction_weight must be >= 0. "
                f"Received: reconstruction_weight={reconstruction_weight}"
            )
        super().__init__(None, optimizer, clip_norm=clip_norm)  # the model is built in build()
        self._factories = (encoder, decoder, classifier_head)
        self.reconstruction_weight = float(reconstruction_weight)
        self.encoder = self.decoder = self.head = None

    def build(self):
        self.encoder, self.decoder, self.head = map(_build, self._factories)
        self.optimizer = _build(self._optimizer_factory)
        self.model = classifier(self.encoder, self.head)
        self.optimizer.build(self.trainable_variables)

    @property
    def classifier(self):
        """The model used at test time, `head(encoder(x))` (the task's `model`)."""
        return self.model

    @property
    def trainable_variables(self):
        return (
            self.encoder.trainable_variables
            + self.decoder.trainable_variables
            + self.head.trainable_variables
        )

    def checkpoint_items(self):
        return {
            "encoder": self.encoder,
            "decoder": self.decoder,
            "head": self.head,
            "optimizer": unscaled(self.optimizer),
        }

    def losses(self, batch, training=True):
        """The two losses of a batch, each a global-mean share, and the logits.

        Returns:
          `(cross_entropy, reconstruction, logits)`: CE over the labelled
          examples, REC over labelled and unlabelled ones, logits `[B_l, K]`.
        """
        (x_labelled, y_labelled), x_unlabelled = batch
        # Labelled images go to both ends, unlabelled ones to the decoder only.
        code_labelled = self.encoder(x_labelled, training=training)
        code_unlabelled = self.encoder(x_unlabelled, training=training)
        logits = float32(self.head(code_labelled, training=training))
        cross_entropy = tf.nn.compute_average_loss(
            tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y_labelled, logits=logits)
        )
        x = tf.concat([x_labelled, x_unlabelled], axis=0)
        x_hat = float32(
            tf.concat(
                [
                    self.decoder(code_labelled, training=training),
                    self.decoder(code_unlabelled, training=training),
                ],
                axis=0,
            )
        )
        squared_error = tf.reduce_mean(tf.square(x_hat - x), axis=[1, 2, 3])  # per image
        reconstruction = tf.nn.compute_average_loss(squared_error)
        return cross_entropy, reconstruction, logits

    def train_step(self, batch):
        (_, y_labelled), _ = batch
        with tf.GradientTape() as tape:
            cross_entropy, reconstruction, logits = self.losses(batch, training=True)
            loss = cross_entropy + self.reconstruction_weight * reconstruction
        grad_norm = self._minimize(tape, loss, self.trainable_variables)
        return {
            "loss/total": loss,
            "loss/cross_entropy": cross_entropy,
            "loss/reconstruction": reconstruction,
            "metrics/top1": global_mean(
                tf.math.in_top_k(targets=y_labelled, predictions=logits, k=1)
            ),
        } | self._charts(grad_norm)

    def eval_step(self, batch):
        images, labels = batch
        code = self.encoder(images, training=False)
        logits = float32(self.head(code, training=False))
        x_hat = float32(self.decoder(code, training=False))
        cross_entropy = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
        correct = tf.math.in_top_k(targets=labels, predictions=logits, k=1)
        return {
            "loss": tf.reduce_sum(cross_entropy),
            "top1": tf.reduce_sum(tf.cast(correct, tf.float32)),
            "reconstruction": tf.reduce_sum(tf.reduce_mean(tf.square(x_hat - images), [1, 2, 3])),
            "count": tf.cast(tf.shape(labels)[0], tf.float32),
        }

    def export(self, path):
        """Saves the classifier `head(encoder(x))`; the decoder is not needed at test time."""
        self.model.save(path)


def make_tasks(
    input_shape,
    num_classes,
    optimizer,
    reconstruction_weight=1.0,
    *,
    seed=0,
    clip_norm=None,
    **sizes,
):
    """The semi-supervised task and its supervised baseline, from the same initial weights.

    Both models are built by `autoencoder_classifier` right after
    `keras.utils.set_random_seed(seed)`, so the baseline's encoder and head start
    where the semi-supervised model's do. Call it in a strategy's scope to train
    under one.

    Args:
      input_shape, num_classes: the images' shape and the number of classes.
      optimizer: a function returning a new optimizer (each task calls it once).
      reconstruction_weight: `w` of the semi-supervised loss.
      seed: the seed set before each build.
      clip_norm: both tasks' gradient clipping (`None`: none).
      sizes: `autoencoder_classifier`'s keyword arguments (`kind`, `code_units`, `dropout`...).

    Returns:
      `(SemiSupervisedTask, ClassificationTask)`; the baseline's model is
      `classifier(encoder, head)`.
    """
    keras.utils.set_random_seed(seed)
    semi = SemiSupervisedTask(
        *autoencoder_classifier(input_shape, num_classes, **sizes),
        optimizer,
        reconstruction_weight,
        clip_norm=clip_norm,
    )
    keras.utils.set_random_seed(seed)
    encoder, _, head = autoencoder_classifier(input_shape, num_classes, **sizes)
    return semi, ClassificationTask(classifier(encoder, head), optimizer, clip_norm=clip_norm)


# --- figures -------------------------------------------------------------------


def sweep_figure(curves, accuracies, *, labels_per_class, dataset="", reconstruction_weight=1.0):
    """Test accuracy against steps (one setting) and final test accuracy against labels.

    Args:
      curves: `{model label: Trainer.history["eval"]}` at `labels_per_class`, i.e.
        `[(global_step, {"top1": test accuracy, ...}), ...]` per model, e.g. for
        `"semi-supervised"` and `"supervised only"` (colours C0, C1, ...).
      accuracies: `{model label: {labels per class: final test accuracy}}`, the same labels.
      labels_per_class: the setting of `curves`, for the title.
      dataset: its name, for the title.
      reconstruction_weight: `w` of the semi-supervised loss, for the title.

    Returns:
      A matplotlib figure (closed: save it, or show it with `IPython.display`).
    """
    plt = pyplot()
    fig, (steps, sweep) = plt.subplots(1, 2, figsize=(11, 4))
    for i, (label, curve) in enumerate(curves.items()):
        color = f"C{i}"
        steps.plot(
            [s for s, _ in curve], [r["top1"] for _, r in curve], "o-", color=color, label=label
        )
        sizes = sorted(accuracies[label])
        values = [accuracies[label][n] for n in sizes]
        sweep.plot(sizes, values, "o-", color=color, label=label)
        for n, a in zip(sizes, values):
            sweep.annotate(
                f"{a:.3f}",
                (n, a),
                textcoords="offset points",
                xytext=(4, 4),
                fontsize=8,
                color=color,
            )
    steps.set_xlabel("global step")
    steps.set_ylabel("test accuracy")
    steps.set_title(f"{dataset}, {labels_per_class} labels per class")
    sweep.set_xscale("log")
    sizes = sorted({n for values in accuracies.values() for n in values})
    sweep.set_xticks(sizes, [str(n) for n in sizes])
    sweep.minorticks_off()
    sweep.set_xlabel("labelled examples per class")
    sweep.set_ylabel("final test accuracy")
    sweep.set_title(f"reconstruction weight {reconstruction_weight:g}")
    for ax in (steps, sweep):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    plt.close(fig)
    return fig


def reconstructions_figure(images, encoder, decoder, *, mean=0.0, std=1.0):
    """Images (top row) and their reconstructions `decoder(encoder(x))` (bottom row).

    Args:
      images: standardised images `[n, H, W, 1]` (`(x / 255 - mean) / std`).
      encoder, decoder: the autoencoder's halves (`SemiSupervisedTask.encoder`, `.decoder`).
      mean, std: the standardisation, undone for display.

    Returns:
      A matplotlib figure (closed).
    """
    plt = pyplot()
    images = np.asarray(images)
    x_hat = np.asarray(decoder(encoder(images, training=False), training=False))
    fig, axes = plt.subplots(2, len(images), figsize=(1.2 * len(images), 2.6), squeeze=False)
    for row, batch in enumerate((images, x_hat)):
        for ax, image in zip(axes[row], batch):
            ax.imshow(np.clip(image[..., 0] * std + mean, 0, 1), cmap="gray", vmin=0, vmax=1)
            ax.axis("off")
    axes[0][0].set_title("test images", loc="left", fontsize=9)
    axes[1][0].set_title("reconstructions", loc="left", fontsize=9)
    fig.tight_layout()
    plt.close(fig)
    return fig
