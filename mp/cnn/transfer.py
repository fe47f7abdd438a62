"""Transfer learning: reuse a network trained on one task as the start of another.

A network trained on a large data set (ImageNet for Keras' VGG16 and ResNet50,
or one of our own models trained on Fashion-MNIST) has learnt features that
help on related images. Transfer learning keeps those features and trains only
what the new task needs:

    images -> resize, to 3 channels, the family's preprocessing
           -> base (pretrained convolutions, include_top=False)
           -> global pooling -> dropout -> dense logits (new head, num_classes)

Training runs in two phases, each with its own optimizer:

    phase 1  base frozen; only the head learns, at a normal learning rate.
             A random head on top of good features would otherwise send large,
             random gradients into the base and wreck what it learnt.
    phase 2  the top layers of the base are unfrozen too and trained at a much
             lower learning rate: the features move a little towards the new task.

Between the phases the set of trainable variables changes, so the optimizer is
rebuilt for the new set (its slots, e.g. Adam's moments, exist per variable).
`fit_two_phases` gives each phase its own `mp.engine.Trainer` in
`model_dir/phase1` and `model_dir/phase2`: each has its own checkpoints and
`global_step`, so an interrupted run resumes in the phase where it stopped.

Few labels: `few_labels` picks a fixed, stratified subset of a training split
(the same examples for every seed), and `few_label_data` turns it and the test
split into the datasets the phases train and evaluate on:

    train, test, count = few_label_data("digits", "mp:classic_cnn", 8, 5, batch_size=16)
    base = build_base("mp:classic_cnn", "none", input_shape_of("mp:classic_cnn", 8, 1))
    model = transfer_model(base, 10)
    results = fit_two_phases(model, base, "runs/ft", train_data=train, eval_data=test,
                             make_optimizer=lambda lr, steps: keras.optimizers.Adam(lr),
                             head_steps=100, head_learning_rate=1e-3,
                             finetune_steps=100, finetune_learning_rate=1e-4, unfreeze=1)

Multi-task learning trains one network on several tasks at once, sharing the
features; transfer learning trains them one after the other, the first task
only providing a starting point for the second.

Paper: Yosinski et al., "How transferable are features in deep neural
networks?", NeurIPS 2014. Architectures: Simonyan & Zisserman 2015 (VGG),
He et al. 2016 (ResNet).

Course: ch7.1 TensorFlow tips (Keras' ImageNet weights for VGG and ResNet),
ch2.3 Regularization methods (multi-task and transfer learning).
"""

import os

import keras
import numpy as np
import tensorflow as tf

import mp.data
from mp.cnn import registry
from mp.data.arrays import holdout_mask
from mp.engine import ClassificationTask, Trainer, precision

__all__ = [
    "FAMILIES",
    "build_base",
    "default_unfreeze",
    "few_label_data",
    "few_labels",
    "fit_two_phases",
    "freeze",
    "imagenet_weights_file",
    "input_shape_of",
    "joined_history",
    "preprocess",
    "resize_and_preprocess",
    "transfer_model",
    "unfreeze_top",
]

# family -> (Keras application, its preprocess_input, first layer of its last block)
FAMILIES = {
    "vgg16": (
        keras.applications.VGG16,
        keras.applications.vgg16.preprocess_input,
        "block5_conv1",
    ),
    "resnet50": (
        keras.applications.ResNet50,
        keras.applications.resnet50.preprocess_input,
        "conv5_block1_1_conv",
    ),
}
MP_PREFIX = "mp:"


def imagenet_weights_file(name):
    """The file Keras downloads for `name`'s ImageNet weights without the top."""
    _check_family(name)
    return f"{name}_weights_tf_dim_ordering_tf_kernels_notop.h5"


def _check_family(name):
    if name not in FAMILIES:
        raise ValueError(
            f"Unknown base. Expected one of {', '.join(FAMILIES)}. Received: name={name!r}"
        )


def _keras_models_dir():
    """Where Keras caches downloaded weights: `$KERAS_HOME/models` or `~/.keras/models`."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return os.path.join(home, "models")


def build_base(name="vgg16", weights="imagenet", input_shape=(224, 224, 3)):
    """The convolutional part of a pretrained network (no classifier on top).

    Args:
      name: "vgg16" or "resnet50" (Keras applications), or "mp:<model>" for one
        of the package's registered models (`mp.cnn.model_names()`): with
        weights "none" its features (`num_classes=None`) are the base; with a
        saved `.keras` model, that model without its logits layer (and the
        dropout before them) is the base, architecture and weights as saved.
      weights: "imagenet" (Keras downloads its file into its cache; Keras
        families only), "none" (random initialisation), or the path of a weights
        file: `.h5`/`.weights.h5` (e.g. Keras' ImageNet file placed by hand) or,
        for Keras families, a saved `.keras` model whose weights are copied
        layer by layer by name.
      input_shape: `(height, width, channels)`; VGG16 and ResNet50 need three
        channels and at least 32x32. For an "mp:" base with a `.keras` file the
        shape must be the saved model's.

    Returns:
      A functional `keras.Model` from images to feature maps (VGG16, ResNet50)
      or feature vectors ("mp:" bases).

    Raises:
      ValueError: unknown name or weights, or an input shape that does not fit.
      FileNotFoundError: a weights file is missing, or the ImageNet download
        failed (the message names the file to place and where).
    """
    input_shape = tuple(int(d) for d in input_shape)
    if name.startswith(MP_PREFIX):
        return _mp_base(name[len(MP_PREFIX) :], weights, input_shape)
    _check_family(name)
    application = FAMILIES[name][0]
    if len(input_shape) != 3 or input_shape[-1] != 3 or min(input_shape[:2]) < 32:
        raise ValueError(
            f"{name} needs input_shape (height, width, 3) with height and width >= 32. "
            f"Received: input_shape={input_shape}"
        )
    if weights == "imagenet":
        try:
            return application(include_top=False, weights="imagenet", input_shape=input_shape)
        except Exception as e:  # Keras wraps the URLError in a plain Exception
            file = imagenet_weights_file(name)
            # Keras says "URL fetch failure on <url>: <errno> -- <reason>": keep the reason.
            reason = " ".join(str(e).split()).rsplit(" -- ", 1)[-1][:120]
            raise FileNotFoundError(
                f"could not fetch the ImageNet weights of {name} ({reason}): place "
                f"{file} in {_keras_models_dir()}/ ($KERAS_HOME/models/ if set), or pass "
                f"its path as the weights (--weights=/path/to/{file})"
            ) from None
    base = application(include_top=False, weights=None, input_shape=input_shape)
    if weights != "none":
        _load_weights(base, weights)
    return base


def _check_weights_path(weights):
    if not isinstance(weights, str) or not weights.endswith((".h5", ".keras")):
        raise ValueError(
            "weights must be 'imagenet', 'none' or the path of a .h5, .weights.h5 or "
            f".keras file. Received: weights={weights!r}"
        )
    if not os.path.isfile(weights):
        raise FileNotFoundError(f"weights file {weights} does not exist")


def _load_weights(base, weights):
    """Loads `weights` (a file path) into `base`: by file for .h5, by layer name for .keras."""
    _check_weights_path(weights)
    if weights.endswith(".h5"):
        base.load_weights(weights)
        return
    source = keras.saving.load_model(weights, compile=False)
    inner = {layer.name: layer for layer in source.layers}.get(base.name)
    if isinstance(inner, keras.Model):  # e.g. a model.keras of apps/finetune.py: base + head
        source = inner
    _copy_weights(source, base, weights)


def _copy_weights(source, target, path):
    """Copies the weights of every layer of `target` that `source` has by name."""
    copied = 0
    for layer in target.layers:
        if not layer.weights:
            continue
        try:
            donor = source.get_layer(layer.name)
        except ValueError:
            continue
        if [w.shape for w in donor.weights] != [w.shape for w in layer.weights]:
            raise ValueError(
                f"layer {layer.name} of {path} has weights of shapes "
                f"{[tuple(w.shape) for w in donor.weights]}, the base expects "
                f"{[tuple(w.shape) for w in layer.weights]}"
            )
        layer.set_weights(donor.get_weights())
        copied += 1
    if not copied:
        raise ValueError(f"{path} has no layer named like a layer of {target.name}")


def _mp_base(model, weights, input_shape):
    if model not in registry.model_names():
        raise ValueError(
            f"Unknown model. Expected mp:<one of {', '.join(registry.model_names())}>. "
            f"Received: name={MP_PREFIX + model!r}"
        )
    if weights == "imagenet":
        raise ValueError(
            f"{MP_PREFIX}{model} has no ImageNet weights: pass 'none' or the path of a "
            "model.keras saved by apps/train_cnn.py"
        )
    if weights == "none":
        return registry.get_model(model, input_shape, num_classes=None)
    _check_weights_path(weights)
    if not weights.endswith(".keras"):
        raise ValueError(f"an mp: base loads a saved .keras model. Received: weights={weights!r}")
    # A model.keras computes in the precision it was saved with: rebuild it for this one.
    source = precision.recast(keras.saving.load_model(weights, compile=False))
    saved_shape = tuple(source.input_shape[1:])
    if saved_shape != input_shape:
        raise ValueError(
            f"{weights} was trained on inputs of shape {saved_shape}; resize the images to "
            f"it (--image_size={saved_shape[0]}). Received: input_shape={input_shape}"
        )
    return _features(source)


def _features(model):
    """`model` without its last layer (the logits) and the dropout right before it.

    The layers are the saved ones, so the base holds exactly the saved weights.
    """
    layers = model.layers[:-1]
    while layers and isinstance(layers[-1], keras.layers.Dropout):
        layers = layers[:-1]
    if len(layers) < 2:
        raise ValueError(f"{model.name} has no layers below its output to reuse")
    return keras.Model(model.inputs, layers[-1].output, name=model.name)


def preprocess(name):
    """The family's `preprocess_input`: Keras' `vgg16` or `resnet50` one.

    Both expect RGB pixels in [0, 255]; they reorder the channels to BGR and
    subtract the ImageNet mean of each channel ("caffe" mode), as the weights
    were trained that way.
    """
    _check_family(name)
    return FAMILIES[name][1]


def resize_and_preprocess(images, size, name, *, mean=None, std=None, standardized=False):
    """Brings small grey images to what the base `name` expects.

    Args:
      images: `[N, H, W, C]` with C = 1 (grey) or 3; pixels in [0, 255] (e.g. the
        uint8 arrays of `mp.data.load_numpy`), or, with `standardized=True`,
        `(x / 255 - mean) / std` as `mp.data.load` gives them.
      size: the side of the output images (bilinear resizing).
      name: "vgg16" or "resnet50": grey is repeated to 3 channels and the
        family's `preprocess_input` is applied. An "mp:<model>" name keeps the
        channels and standardises with `mean` and `std`, as the package's data
        pipeline does for its own models.
      mean, std: pixel statistics in [0, 1] units (`mp.data.standardization_stats`),
        needed for "mp:" names and for `standardized=True`.
      standardized: the input is standardised with `mean`, `std`; it is mapped
        back to [0, 255] first.

    Returns:
      float32 `[N, size, size, 3]` (Keras families) or `[N, size, size, C]`.
    """
    needs_stats = standardized or name.startswith(MP_PREFIX)
    if needs_stats and (mean is None or not (std or 0) > 0):
        raise ValueError(f"{name} needs mean and a positive std. Received: {mean}, {std}")
    x = tf.cast(images, tf.float32)
    if standardized:
        x = (x * std + mean) * 255.0  # back to [0, 255]
    x = tf.image.resize(x, (size, size), method="bilinear")
    if name.startswith(MP_PREFIX):
        return (x / 255.0 - mean) / std
    if x.shape[-1] == 1:
        x = tf.repeat(x, 3, axis=-1)  # grey -> RGB with R = G = B
    return preprocess(name)(x)


def transfer_model(base, num_classes, *, dropout=0.0, pooling="avg"):
    """The base, then global pooling and a new dense head of logits.

    Args:
      base: a model from `build_base`.
      num_classes: number of logits.
      dropout: drop rate before the logits, in [0, 1).
      pooling: "avg" or "max" over height and width for feature maps
        (ignored when the base already returns vectors).

    Returns:
      A functional `keras.Model` named `transfer_<base.name>`; the base is
      its layer `base.name` and the head its layer `logits`.
    """
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1). Received: dropout={dropout}")
    if pooling not in ("avg", "max"):
        raise ValueError(f"pooling must be 'avg' or 'max'. Received: pooling={pooling!r}")
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer. Received: {num_classes}")
    images = keras.Input(shape=base.input_shape[1:], name="images")
    # training=None: the base follows the outer call, and frozen BN layers stay in inference.
    x = base(images)
    if len(x.shape) == 4:
        pool = (
            keras.layers.GlobalAveragePooling2D
            if pooling == "avg"
            else (keras.layers.GlobalMaxPooling2D)
        )
        x = pool(name=f"global_{pooling}_pool")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    logits = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(images, logits, name=f"transfer_{base.name}")


def freeze(base):
    """Makes every variable of `base` non-trainable (phase 1).

    A frozen Keras layer also runs in inference mode: BatchNormalization uses
    its moving mean and variance and stops updating them.
    """
    base.trainable = False
    return base


def unfreeze_top(base, n_layers=None, *, from_layer=None):
    """Unfreezes the top of `base` (phase 2), keeping BatchNormalization frozen.

    Exactly one of `n_layers` (the last `n_layers` layers that have weights,
    BatchNormalization not counted) and `from_layer` (this layer and all after
    it, e.g. "block5_conv1" for VGG16, "conv5_block1_1_conv" for ResNet50)
    says where the trainable part starts.

    BatchNormalization layers stay frozen, which in Keras also means inference
    mode: they keep normalising with the moving statistics of the pretraining
    data. Switching them to batch statistics of small batches of a new, small
    data set would shift every activation after them at once, and the
    pretrained weights that follow were trained for the old statistics: the
    first updates would destroy what fine-tuning wants to keep.

    Returns:
      The names of the layers made trainable, in order.
    """
    if (n_layers is None) == (from_layer is None):
        raise ValueError(
            f"pass exactly one of n_layers and from_layer. Received: n_layers={n_layers}, "
            f"from_layer={from_layer!r}"
        )
    layers = base.layers
    if from_layer is not None:
        names = [layer.name for layer in layers]
        if from_layer not in names:
            raise ValueError(f"{base.name} has no layer {from_layer!r}")
        start = names.index(from_layer)
    else:
        weighted = [
            i
            for i, layer in enumerate(layers)
            if layer.weights and not isinstance(layer, keras.layers.BatchNormalization)
        ]
        if not isinstance(n_layers, int) or not 1 <= n_layers <= len(weighted):
            raise ValueError(
                f"n_layers must be in [1, {len(weighted)}] for {base.name}. "
                f"Received: n_layers={n_layers}"
            )
        start = weighted[-n_layers]
    base.trainable = True  # the model itself, then layer by layer
    unfrozen = []
    for i, layer in enumerate(layers):
        layer.trainable = i >= start and not isinstance(layer, keras.layers.BatchNormalization)
        if layer.trainable and layer.weights:
            unfrozen.append(layer.name)
    return unfrozen


def input_shape_of(name, image_size, channels=1):
    """The input shape of the base `name` for images resized to `image_size`.

    Keras' families take RGB (`resize_and_preprocess` repeats grey), "mp:" bases the
    dataset's own `channels`.
    """
    return (image_size, image_size, channels if name.startswith(MP_PREFIX) else 3)


def default_unfreeze(name):
    """Where phase 2 starts unless told: the first layer of the last block of a Keras
    family (`block5_conv1`, `conv5_block1_1_conv`), else the base's last weight layer (1)."""
    return FAMILIES[name][2] if name in FAMILIES else 1


def few_labels(labels, per_class):
    """Indices (sorted) of a fixed, stratified subset: `per_class` examples of each class.

    They are the examples `mp.data` holds out first for validation (`holdout_mask`: a
    fixed permutation of each class that depends on the labels only), so every run,
    whatever its seed, learns from the same few labels.

    Raises:
      ValueError: for a class with fewer than `per_class` examples.
    """
    if not isinstance(per_class, (int, np.integer)) or per_class < 1:
        raise ValueError(f"labels_per_class must be a positive integer. Received: {per_class}")
    labels = np.asarray(labels)
    chosen = np.zeros(len(labels), dtype=bool)
    for label in np.unique(labels):
        members = labels == label
        count = int(members.sum())
        if count < per_class:
            raise ValueError(
                f"class {label} has only {count} training examples. "
                f"Received: labels_per_class={per_class}"
            )
        # holdout_mask keeps the first round(fraction * count) of each class's permutation:
        # at fraction per_class / count, the first per_class of this one.
        chosen |= members & (holdout_mask(labels, per_class / count) if per_class < count else True)
    return np.flatnonzero(chosen)


def few_label_data(
    dataset,
    base,
    image_size,
    labels_per_class,
    *,
    batch_size,
    seed=0,
    data_dir=None,
    eval_batch_size=250,
):
    """The few labelled training examples and the test split of `dataset`, ready for `base`.

    Args:
      dataset: one of `mp.data.DATASETS`.
      base: the base's name (see `build_base`): images are resized to `image_size` and
        preprocessed as it expects (`resize_and_preprocess`).
      image_size: the side of the resized images.
      labels_per_class: labelled training examples per class (`few_labels`).
      batch_size: training batch size, at most the number of labelled examples.
      seed: seed of the training order.
      data_dir: where the dataset's files are (see `mp.data.load_numpy`).
      eval_batch_size: batch size of the test data.

    Returns:
      `(train_data, test_data, num_labelled)`: `train_data(start_step)` gives the repeated,
      shuffled batches from `start_step` on (a resumed run sees the batches it would have
      seen), `test_data` the test split once, in batches.

    Raises:
      ValueError: a class with too few examples, or a batch larger than the subset.
    """
    train_images, train_labels = mp.data.load_numpy(dataset, "train", data_dir)
    test_images, test_labels = mp.data.load_numpy(dataset, "test", data_dir)
    subset = few_labels(train_labels, labels_per_class)
    if batch_size > len(subset):
        raise ValueError(
            f"batch_size {batch_size} exceeds the {len(subset)} labelled examples "
            f"({labels_per_class} per class)"
        )
    mean, std = mp.data.standardization_stats(dataset, data_dir)

    def prepare(images, labels):
        return resize_and_preprocess(images, image_size, base, mean=mean, std=std), labels

    labelled = (train_images[subset], train_labels[subset].astype(np.int32))

    def train_data(start_step):
        ds = tf.data.Dataset.from_tensor_slices(labelled)
        ds = ds.shuffle(len(subset), seed=seed, reshuffle_each_iteration=True).repeat()
        ds = ds.batch(batch_size, drop_remainder=True).skip(start_step)
        return ds.map(prepare).prefetch(tf.data.AUTOTUNE)

    test_data = tf.data.Dataset.from_tensor_slices((test_images, test_labels.astype(np.int32)))
    return train_data, test_data.batch(eval_batch_size).map(prepare).cache(), len(subset)


def fit_two_phases(
    model,
    base,
    model_dir,
    *,
    train_data,
    eval_data,
    make_optimizer,
    head_steps,
    head_learning_rate,
    finetune_steps,
    finetune_learning_rate,
    unfreeze,
    clip_norm=None,
    make_trainer=None,
    **trainer_options,
):
    """Phase 1 (head only), then phase 2 (head and top of the base), one Trainer each.

    Args:
      model: `transfer_model(base, ...)`.
      base: its base.
      model_dir: phase 1 checkpoints and summaries go to `model_dir/phase1`,
        phase 2's to `model_dir/phase2`. Rerunning resumes the unfinished phase.
      train_data: a function `start_step -> tf.data.Dataset` (repeated batches).
      eval_data: a finite batched `tf.data.Dataset`.
      make_optimizer: `make_optimizer(learning_rate, train_steps) -> optimizer`, called
        once per phase with that phase's rate and number of steps (for a schedule), so
        phase 2's optimizer is built for the variables trainable in phase 2 only.
      head_steps, head_learning_rate: phase 1.
      finetune_steps, finetune_learning_rate: phase 2; `finetune_steps=0` skips it.
      unfreeze: an int (`n_layers` of `unfreeze_top`) or a layer name (`from_layer`);
        see `default_unfreeze`.
      clip_norm: clip each phase's gradients to this global norm (`ClassificationTask`).
      make_trainer: `make_trainer(task, directory, train_steps) -> mp.engine.Trainer`,
        for a caller that sets its Trainers up itself; by default `Trainer(task,
        directory, train_steps=..., **trainer_options)`, logging at least once a phase.
      trainer_options: keyword arguments of `mp.engine.Trainer` (`strategy`,
        `log_every`, `eval_every`, `progress`, ...), when there is no `make_trainer`.

    Returns:
      `{"phase1": result, "phase2": result or None, "trainers": [Trainer, ...],
      "unfrozen": [names of the base's layers trained in phase 2], "history": both
      phases' `Trainer.history` on one step axis, "eval": the last phase's evaluation,
      "global_step": both phases' steps}`, results as `Trainer.fit` returns them.
    """
    if make_trainer is None:

        def make_trainer(task, directory, train_steps):
            log_every = min(trainer_options.get("log_every", 100), train_steps)
            options = trainer_options | {"log_every": log_every}
            return Trainer(task, directory, train_steps=train_steps, **options)

    elif trainer_options:
        raise ValueError(
            "pass the Trainer options to make_trainer, not with it. "
            f"Received: {', '.join(sorted(trainer_options))}"
        )
    phases = [("phase1", head_steps, head_learning_rate)]
    if finetune_steps:
        phases.append(("phase2", finetune_steps, finetune_learning_rate))
    results = {"phase1": None, "phase2": None, "trainers": [], "unfrozen": []}
    for phase, steps, learning_rate in phases:
        if phase == "phase1":
            freeze(base)
        elif isinstance(unfreeze, int):
            results["unfrozen"] = unfreeze_top(base, unfreeze)
        else:
            results["unfrozen"] = unfreeze_top(base, from_layer=unfreeze)
        # A new task: its optimizer is built on model.trainable_variables as they are now.
        task = ClassificationTask(
            model, lambda lr=learning_rate, n=steps: make_optimizer(lr, n), clip_norm=clip_norm
        )
        trainer = make_trainer(task, os.path.join(model_dir, phase), steps)
        results[phase] = trainer.fit(train_data, eval_data)
        results["trainers"].append(trainer)
    results["history"] = joined_history(results["trainers"], head_steps)
    results["eval"] = (results["phase2"] or results["phase1"])["eval"]
    results["global_step"] = sum(results[name]["global_step"] for name, _, _ in phases)
    return results


def joined_history(trainers, offset):
    """The `history` of both phases' Trainers on one step axis (phase 2 from `offset` on)."""
    history = {"train": [], "eval": []}
    for i, trainer in enumerate(trainers):
        shift = offset if i else 0
        for part in history:
            history[part] += [(step + shift, values) for step, values in trainer.history[part]]
    return history
