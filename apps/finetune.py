"""Fine-tune a pretrained network on few labels: `python -m apps.finetune --flagfile=...`.

    base (pretrained, --base, --weights) + new head -> phase 1: head only
    -> phase 2: top --unfreeze layers too, lower learning rate -> test accuracy

`--base=vgg16|resnet50` takes Keras' applications; `--weights=imagenet` makes
Keras fetch its ImageNet file (offline: place the file named in the error, or
pass `--weights=/path/to/file`). `--base=mp:<model>` takes one of the package's
registered models with `--weights=<its model.keras>` (from `apps/train_cnn.py`),
which works offline. `--compare_scratch` also trains the same network from
random weights on the same labels for as many steps, so metrics.json shows
what the pretraining is worth (`scratch_test_accuracy`).

`model_dir` receives flags.cfg, `phase1/` and `phase2/` (checkpoints and
summaries of each phase; rerun to resume), `scratch/` with `--compare_scratch`,
model.keras, learning_curves.png (both phases), confusion_matrix.png and,
last, metrics.json.

Course: ch7.1 TensorFlow tips (Keras' ImageNet weights for VGG and ResNet),
ch2.3 Regularization methods (transfer learning).
"""

import os

import keras
import numpy as np
import tensorflow as tf
from absl import flags

import mp.data
from apps import common, common_flags
from mp import plotting
from mp.engine import make_optimizer, seed_everything

FLAGS = flags.FLAGS
APP = "finetune"
EVAL_BATCH_SIZE = 250

common_flags.define(dataset="digits", batch_size=32, epochs=10, learning_rate=1e-3)
common_flags.define_once(
    flags.DEFINE_string,
    "base",
    "vgg16",
    "Pretrained base: vgg16, resnet50 (Keras applications) or mp:<registered model>, "
    "e.g. mp:classic_cnn.",
)
common_flags.define_once(
    flags.DEFINE_string,
    "weights",
    "imagenet",
    "imagenet (Keras' download), none (random: training from scratch), or a weights "
    "file: .h5/.weights.h5, or a .keras model (needed for mp: bases).",
)
common_flags.define_once(
    flags.DEFINE_integer,
    "image_size",
    32,
    "Images are resized to image_size x image_size (VGG16/ResNet50: >= 32, 224 for "
    "ImageNet weights; mp: bases: the saved model's input size).",
    lower_bound=1,
)
common_flags.define_once(
    flags.DEFINE_integer,
    "labels_per_class",
    10,
    "Labelled training examples per class (a fixed stratified subset of the train split).",
    lower_bound=1,
)
common_flags.define_once(
    flags.DEFINE_integer, "head_steps", 200, "Phase 1 steps (base frozen).", lower_bound=1
)
common_flags.define_once(
    flags.DEFINE_float, "head_learning_rate", 1e-3, "Phase 1 learning rate.", lower_bound=0.0
)
common_flags.define_once(
    flags.DEFINE_integer,
    "finetune_steps",
    200,
    "Phase 2 steps (top of the base unfrozen); 0 skips phase 2.",
    lower_bound=0,
)
common_flags.define_once(
    flags.DEFINE_float,
    "finetune_learning_rate",
    1e-4,
    "Phase 2 learning rate, lower than phase 1's.",
    lower_bound=0.0,
)
common_flags.define_once(
    flags.DEFINE_string,
    "unfreeze",
    "",
    "Phase 2 trains the top N weight layers of the base (an integer) or every layer "
    "from this name on; empty: the last block (block5_conv1, conv5_block1_1_conv; "
    "mp: bases the last weight layer).",
)
common_flags.define_once(
    flags.DEFINE_float, "head_dropout", 0.0, "Dropout before the new logits, in [0, 1)."
)
common_flags.define_once(
    flags.DEFINE_enum, "pooling", "avg", ["avg", "max"], "Global pooling of feature maps."
)
common_flags.define_once(
    flags.DEFINE_boolean,
    "compare_scratch",
    False,
    "Also train the same network from random weights (all layers, head_steps + "
    "finetune_steps steps at head_learning_rate) on the same labels.",
)

APP_FLAGS = (
    "base",
    "weights",
    "image_size",
    "labels_per_class",
    "head_steps",
    "head_learning_rate",
    "finetune_steps",
    "finetune_learning_rate",
    "unfreeze",
    "head_dropout",
    "pooling",
    "compare_scratch",
)
COMMON_FLAGS = (
    "model_dir",
    "dataset",
    "data_dir",
    "batch_size",
    "optimizer",
    "seed",
    "deterministic",
    "log_every",
    "checkpoint_every",
    "eval_every",
)


def few_labels(labels, per_class):
    """Indices of a fixed, stratified subset: the first `per_class` of each class
    in an order that depends on the labels only (a fixed seed), never on `--seed`."""
    rng = np.random.default_rng(20190913)
    chosen = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        if len(members) < per_class:
            raise ValueError(
                f"class {label} has only {len(members)} training examples. "
                f"Received: labels_per_class={per_class}"
            )
        chosen.append(rng.permutation(members)[:per_class])
    return np.sort(np.concatenate(chosen))


def _parse_unfreeze(unfreeze, base):
    """`--unfreeze` as `fit_two_phases` takes it: an int, a layer name, or the default."""
    from mp.cnn import transfer

    if unfreeze == "":
        return transfer.FAMILIES[base][2] if base in transfer.FAMILIES else 1
    try:
        return int(unfreeze)
    except ValueError:
        return unfreeze


def run(
    model_dir=None,
    *,
    base="vgg16",
    weights="imagenet",
    image_size=32,
    labels_per_class=10,
    head_steps=200,
    head_learning_rate=1e-3,
    finetune_steps=200,
    finetune_learning_rate=1e-4,
    unfreeze="",
    head_dropout=0.0,
    pooling="avg",
    compare_scratch=False,
    dataset="digits",
    data_dir=None,
    batch_size=32,
    optimizer="adam",
    seed=0,
    deterministic=False,
    log_every=100,
    checkpoint_every=1000,
    eval_every=0,
    progress=True,
):
    """Fine-tunes `base` on `labels_per_class` labels of `dataset`; returns the metrics.

    Everything that can be wrong (flags, data, weights file, sizes) is checked
    before anything is written to `model_dir`.
    """
    from mp.cnn import transfer

    clock = common.Clock()
    hparams = {k: v for k, v in locals().items() if k not in ("clock", "transfer", "progress")}
    # --- check everything before writing anything -----------------------
    for name, value in (
        ("head_steps", head_steps),
        ("batch_size", batch_size),
        ("log_every", log_every),
        ("checkpoint_every", checkpoint_every),
        ("labels_per_class", labels_per_class),
        ("image_size", image_size),
    ):
        if not isinstance(value, int) or value <= 0:
            raise ValueError(f"{name} must be a positive integer. Received: {name}={value}")
    if finetune_steps < 0 or eval_every < 0:
        raise ValueError(
            "finetune_steps and eval_every must be >= 0. "
            f"Received: {finetune_steps}, {eval_every}"
        )
    common.check_positive(
        head_learning_rate=head_learning_rate, finetune_learning_rate=finetune_learning_rate
    )
    info = mp.data.info(dataset)
    train_images, train_labels = mp.data.load_numpy(dataset, "train", data_dir)
    test_images, test_labels = mp.data.load_numpy(dataset, "test", data_dir)
    subset = few_labels(train_labels, labels_per_class)
    if batch_size > len(subset):
        raise ValueError(
            f"batch_size {batch_size} exceeds the {len(subset)} labelled examples "
            f"({labels_per_class} per class)"
        )
    mean, std = mp.data.standardization_stats(dataset, data_dir)
    channels = info.image_shape[-1] if base.startswith(transfer.MP_PREFIX) else 3
    input_shape = (image_size, image_size, channels)
    unfreeze = _parse_unfreeze(unfreeze, base)
    model_dir = model_dir or common.default_model_dir(APP, dataset)
    hparams["model_dir"] = model_dir

    seed_everything(seed, deterministic)

    def head(network_base):
        return transfer.transfer_model(
            network_base, info.num_classes, dropout=head_dropout, pooling=pooling
        )

    pretrained_base = transfer.build_base(base, weights, input_shape)  # bad name, file, size
    model = head(pretrained_base)
    # The same architecture with fresh random weights (clone_model re-initialises).
    scratch = head(keras.models.clone_model(pretrained_base)) if compare_scratch else None

    def make_opt(learning_rate):
        return make_optimizer(optimizer, learning_rate)

    def prepare(images, labels):
        x = transfer.resize_and_preprocess(images, image_size, base, mean=mean, std=std)
        return x, labels

    x_few = train_images[subset]
    y_few = train_labels[subset].astype(np.int32)

    def train_data(start_step):
        """The same batches, in the same order, from any step on (resumption)."""
        ds = tf.data.Dataset.from_tensor_slices((x_few, y_few))
        ds = ds.shuffle(len(y_few), seed=seed, reshuffle_each_iteration=True).repeat()
        ds = ds.batch(batch_size, drop_remainder=True).skip(start_step)
        return ds.map(prepare).prefetch(tf.data.AUTOTUNE)

    test_data = (
        tf.data.Dataset.from_tensor_slices((test_images, test_labels.astype(np.int32)))
        .batch(EVAL_BATCH_SIZE)
        .map(prepare)
        .cache()
    )
    train_kwargs = dict(
        log_every=log_every,
        checkpoint_every=checkpoint_every,
        eval_every=eval_every,
        progress=progress,
    )

    # --- train ------------------------------------------------------------
    common.start_run(model_dir, hparams)
    results = transfer.fit_two_phases(
        model,
        pretrained_base,
        model_dir,
        train_data=train_data,
        eval_data=test_data,
        make_optimizer=make_opt,
        head_steps=head_steps,
        head_learning_rate=head_learning_rate,
        finetune_steps=finetune_steps,
        finetune_learning_rate=finetune_learning_rate,
        unfreeze=unfreeze,
        **train_kwargs,
    )
    head_eval = results["phase1"]["eval"]
    final = (results["phase2"] or results["phase1"])["eval"]
    scratch_eval = None
    if scratch is not None:
        from mp.engine import ClassificationTask, Trainer

        scratch_steps = head_steps + finetune_steps
        trainer = Trainer(
            ClassificationTask(scratch, lambda: make_opt(head_learning_rate)),
            os.path.join(model_dir, "scratch"),
            train_steps=scratch_steps,
            **{**train_kwargs, "log_every": min(log_every, scratch_steps)},
        )
        scratch_eval = trainer.fit(train_data, test_data)["eval"]

    # --- artifacts, metrics.json last ---------------------------------------
    common.save_model(model, os.path.join(model_dir, "model.keras"))
    predictions = np.argmax(model.predict(test_data.map(lambda x, y: x), verbose=0), axis=-1)
    matrix = plotting.confusion_matrix(test_labels, predictions, info.num_classes)
    common.save_figure(
        plotting.confusion_matrix_figure(
            matrix,
            info.class_names,
            title=f"{model.name} on {dataset}: test accuracy {final['top1']:.4f}",
        ),
        os.path.join(model_dir, "confusion_matrix.png"),
    )
    history = _joined_history(results["trainers"], head_steps)
    common.write_json(
        os.path.join(model_dir, "history.json"),
        {part: [{"step": s, **v} for s, v in entries] for part, entries in history.items()},
    )
    common.save_figure(
        plotting.learning_curves_figure(history, eval_label="test"),
        os.path.join(model_dir, "learning_curves.png"),
    )
    global_step = results["phase1"]["global_step"] + (
        results["phase2"]["global_step"] if results["phase2"] else 0
    )
    metrics = {
        "app": APP,
        "dataset": dataset,
        "base": base,
        "weights": weights,
        "model": model.name,
        "num_parameters": int(model.count_params()),
        "labelled_examples": int(len(subset)),
        "global_step": global_step,
        "head_steps": head_steps,
        "finetune_steps": finetune_steps,
        "unfrozen_layers": results["unfrozen"],
        "head_test_accuracy": head_eval["top1"],
        "test_accuracy": final["top1"],
        "test_top5": final["top5"],
        "test_loss": final["loss"],
        "test_examples": final["count"],
        "scratch_test_accuracy": scratch_eval["top1"] if scratch_eval else None,
        "scratch_steps": head_steps + finetune_steps if scratch_eval else None,
        "wall_seconds": clock.seconds(),
    }
    common.write_json(os.path.join(model_dir, "metrics.json"), metrics)
    if progress:
        line = (
            f"test accuracy {final['top1']:.4f} (after phase 1: {head_eval['top1']:.4f}"
            + (f"; from scratch: {scratch_eval['top1']:.4f}" if scratch_eval else "")
            + f") after {global_step} steps, {metrics['wall_seconds']:.1f} s; "
            f"artifacts in {model_dir}/"
        )
        print(line, flush=True)
    return metrics


def _joined_history(trainers, offset):
    """Both phases' `Trainer.history` on one step axis (phase 2 starts at `offset`)."""
    history = {"train": [], "eval": []}
    for i, trainer in enumerate(trainers):
        shift = offset if i else 0
        for part in history:
            history[part] += [(step + shift, values) for step, values in trainer.history[part]]
    return history


def flag_values():
    """The keyword arguments of `run` as the parsed flags give them."""
    return {name: FLAGS[name].value for name in APP_FLAGS + COMMON_FLAGS}


def main(argv):
    del argv
    run(**flag_values())


if __name__ == "__main__":
    common.cli(main)
