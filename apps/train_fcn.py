"""Train a fully convolutional network: `python -m apps.train_fcn --flagfile=flags/fcn_digits.cfg`.

    canvases (mp.data.canvas) -> fcn (mp.cnn.fcn) -> SegmentationTask -> Trainer
    -> model.keras, segmentation.png -> metrics.json (mean_iou, pixel_accuracy)

Every pixel of a canvas holding a few digits (or clothes) is classified as
background or as the class of the item under it. Training canvases come from
the dataset's training split, test canvases from its test split.

Course: ch3.1 Layers and Architectures (fully convolutional networks).
"""

import os

import numpy as np
import tensorflow as tf
from absl import flags

from apps import common, common_flags

FLAGS = flags.FLAGS
common_flags.define(dataset="digits", batch_size=32, epochs=10, learning_rate=1e-3)
common_flags.define_once(
    flags.DEFINE_integer,
    "canvas_size",
    0,
    "Side of the square canvases; 0 picks 32 for digits and 64 for the 28x28 datasets. "
    "Must be divisible by 2^(len(filters) - 1).",
    lower_bound=0,
)
common_flags.define_once(
    flags.DEFINE_integer, "num_train_canvases", 2000, "Training canvases.", lower_bound=1
)
common_flags.define_once(
    flags.DEFINE_integer, "num_test_canvases", 500, "Test canvases.", lower_bound=1
)
common_flags.define_once(
    flags.DEFINE_list,
    "items_per_canvas",
    ["1", "3"],
    "low,high: each canvas holds between low and high items (both included).",
)
common_flags.define_once(
    flags.DEFINE_list, "filters", ["16", "32", "64"], "Channels per level of the FCN."
)
common_flags.define_once(
    flags.DEFINE_enum,
    "upsampling",
    "transpose",
    ["transpose", "nearest"],
    "Learned (transpose convolution) or fixed (nearest-neighbour) up-sampling.",
)

MODEL_FLAGS = (
    "canvas_size",
    "num_train_canvases",
    "num_test_canvases",
    "items_per_canvas",
    "filters",
    "upsampling",
)
EVAL_BATCH_SIZE = 250
FIGURE_CANVASES = 6


def run(
    model_dir=None,
    *,
    canvas_size=0,
    num_train_canvases=2000,
    num_test_canvases=500,
    items_per_canvas=(1, 3),
    filters=(16, 32, 64),
    upsampling="transpose",
    dataset="digits",
    data_dir=None,
    batch_size=32,
    epochs=10,
    train_steps=0,
    learning_rate=1e-3,
    optimizer="adam",
    optimizer_impl="keras",
    lr_schedule="constant",
    warmup_steps=0,
    clip_norm=0.0,
    seed=0,
    deterministic=False,
    strategy="default",
    jit_compile=False,
    log_every=100,
    checkpoint_every=1000,
    eval_every=0,
    early_stopping_patience=0,
    validation_fraction=0.0,
    augment=False,
    log_diagnostics=False,
    progress=True,
):
    """Trains an FCN on canvases of `dataset`; returns the metrics written to metrics.json.

    Args:
      model_dir: output directory (default `runs/train_fcn-<dataset>`).
      canvas_size: side of the square canvases; 0 picks the dataset's default
        (`mp.data.canvas.default_canvas_size`).
      num_train_canvases, num_test_canvases: how many canvases per split.
      items_per_canvas: `(low, high)` items per canvas.
      filters: channels per level of `mp.cnn.fcn.fcn`.
      upsampling: `transpose` or `nearest`.
      The rest: see `apps/common_flags.py`. `augment`, `log_diagnostics`,
      `validation_fraction` and `early_stopping_patience` are classification
      options this app does not support; setting them is an error.

    Returns:
      The metrics dict: `mean_iou`, `pixel_accuracy`, `test_loss`,
      `global_step`, `wall_seconds`, ...
    """
    hparams = {k: v for k, v in locals().items() if k != "progress"}
    clock = common.Clock()
    import mp.data
    from apps.classifier import _optimizer
    from mp.cnn.fcn import SegmentationTask, fcn
    from mp.data import canvas
    from mp.engine import Trainer, make_schedule, make_strategy, seed_everything

    # --- check everything before writing anything -----------------------
    filters = common.positive_ints("filters", filters)
    items_per_canvas = common.positive_ints("items_per_canvas", items_per_canvas, count=2)
    hparams.update(filters=filters, items_per_canvas=items_per_canvas)
    common.check_counts(
        batch_size=batch_size,
        epochs=epochs,
        log_every=log_every,
        checkpoint_every=checkpoint_every,
        num_train_canvases=num_train_canvases,
        num_test_canvases=num_test_canvases,
    )
    common.check_non_negative(
        train_steps=train_steps, eval_every=eval_every, canvas_size=canvas_size
    )
    common.check_unsupported(
        "train_fcn",
        augment=augment,
        log_diagnostics=log_diagnostics,
        validation_fraction=validation_fraction,
        early_stopping_patience=early_stopping_patience,
    )
    common.check_positive(learning_rate=learning_rate)
    common.check_optimizer_impl(optimizer_impl)
    info = mp.data.info(dataset)
    size = (canvas_size, canvas_size) if canvas_size else canvas.default_canvas_size(dataset)
    factor = 2 ** (len(filters) - 1)
    if size[0] % factor:
        raise ValueError(
            f"canvas_size must be divisible by 2^(len(filters) - 1) = {factor} (the FCN pools "
            f"{len(filters) - 1} times by 2). Received: canvas_size={size[0]}, filters="
            f"{','.join(map(str, filters))}"
        )
    make = dict(
        name=dataset,
        canvas_size=size,
        items_per_canvas=items_per_canvas,
        seed=seed,
        data_dir=data_dir,
    )
    train_images, train_labels = canvas.make_canvases(
        split="train", num_canvases=num_train_canvases, **make
    )
    test_images, test_labels = canvas.make_canvases(
        split="test", num_canvases=num_test_canvases, **make
    )
    steps_per_epoch = num_train_canvases // batch_size
    if steps_per_epoch == 0:
        raise ValueError(
            f"batch_size {batch_size} exceeds the {num_train_canvases} training canvases"
        )
    train_steps = train_steps or epochs * steps_per_epoch
    model_dir = model_dir or common.default_model_dir("train_fcn", dataset)
    hparams["model_dir"] = model_dir
    num_classes = info.num_classes + 1  # background is class 0

    seed_everything(seed, deterministic)
    strategy = make_strategy(strategy)
    schedule = make_schedule(lr_schedule, learning_rate, train_steps, warmup_steps=warmup_steps)
    with strategy.scope():
        model = fcn((*size, 1), num_classes, filters=filters, upsampling=upsampling)
    task = SegmentationTask(
        model,
        lambda: _optimizer(optimizer, optimizer_impl, schedule),
        num_classes,
        clip_norm=clip_norm or None,
    )

    def train_data(start_step):
        """The same batches, in the same order, from any step on (resumption)."""
        data = tf.data.Dataset.from_tensor_slices((train_images, train_labels))
        data = data.shuffle(len(train_images), seed=seed, reshuffle_each_iteration=True)
        data = data.repeat().batch(batch_size, drop_remainder=True)
        return data.skip(start_step).prefetch(2)

    test_data = tf.data.Dataset.from_tensor_slices((test_images, test_labels)).batch(
        EVAL_BATCH_SIZE
    )

    # --- train ------------------------------------------------------------
    trainer = Trainer(
        task,
        model_dir,
        train_steps=train_steps,
        strategy=strategy,
        log_every=log_every,
        checkpoint_every=checkpoint_every,
        eval_every=eval_every,
        jit_compile=jit_compile,
        progress=progress,
    )
    common.start_run(model_dir, hparams, trainer.resumed_from_step, progress)
    result = trainer.fit(train_data, test_data)
    evaluation = result["eval"]
    mean_iou = SegmentationTask.mean_iou(evaluation)

    # --- artifacts, metrics.json last ---------------------------------------
    common.save_model(model, os.path.join(model_dir, "model.keras"))
    shown = slice(0, min(FIGURE_CANVASES, num_test_canvases))
    predictions = np.argmax(model.predict(test_images[shown], verbose=0), axis=-1)
    common.save_figure(
        segmentation_figure(
            test_images[shown],
            test_labels[shown],
            predictions,
            ("background", *info.class_names),
            title=f"{model.name} on {dataset} canvases: test mean IoU {mean_iou:.3f}",
        ),
        os.path.join(model_dir, "segmentation.png"),
    )
    metrics = {
        "app": "train_fcn",
        "dataset": dataset,
        "model": model.name,
        "num_parameters": int(model.count_params()),
        "canvas_size": list(size),
        "num_classes": num_classes,
        "global_step": result["global_step"],
        "train_steps": train_steps,
        "epochs": round(result["global_step"] / steps_per_epoch, 3),
        "resumed_from_step": result["resumed_from_step"],
        "mean_iou": mean_iou,
        "pixel_accuracy": evaluation["pixel_accuracy"],
        "test_loss": evaluation["loss"],
        "test_canvases": evaluation["count"],
        "train_loss": result["train"].get("loss/total"),
        "wall_seconds": clock.seconds(),
        "train_seconds": result["wall_seconds"],
        "num_replicas": strategy.num_replicas_in_sync,
    }
    common.write_json(os.path.join(model_dir, "metrics.json"), metrics)
    if progress:
        print(
            f"test mean IoU {mean_iou:.4f}, pixel accuracy {metrics['pixel_accuracy']:.4f} "
            f"after {metrics['global_step']} steps, {metrics['wall_seconds']:.1f} s; "
            f"artifacts in {model_dir}/",
            flush=True,
        )
    return metrics


def segmentation_figure(images, labels, predictions, class_names, title=""):
    """One row per canvas: the input, the true label map, the predicted one.

    Each class has its own colour (background black), with a legend.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    num_classes = len(class_names)
    colours = ["black"] + [plt.cm.tab10(i % 10) for i in range(num_classes - 1)]
    cmap = ListedColormap(colours)
    rows = len(images)
    height = 2.2 * rows + 0.8
    figure, axes = plt.subplots(rows, 3, figsize=(6.6, height), squeeze=False)
    for row in range(rows):
        panels = (
            (images[row, :, :, 0], "gray", "input"),
            (labels[row], cmap, "truth"),
            (predictions[row], cmap, "prediction"),
        )
        for axis, (picture, colour_map, name) in zip(axes[row], panels):
            kwargs = {"vmin": 0, "vmax": num_classes - 1} if name != "input" else {}
            axis.imshow(picture, cmap=colour_map, interpolation="nearest", **kwargs)
            axis.set_xticks([])
            axis.set_yticks([])
            if row == 0:
                axis.set_title(name)
    figure.legend(
        handles=[Patch(color=colours[c], label=class_names[c]) for c in range(num_classes)],
        loc="lower center",
        ncol=min(num_classes, 6),
        fontsize="small",
    )
    figure.suptitle(title)
    figure.tight_layout(rect=(0, 0.7 / height, 1, 1))  # 0.7 inch at the bottom for the legend
    return figure


def flag_values():
    """The keyword arguments of `run` as the parsed flags give them."""
    return {name: FLAGS[name].value for name in MODEL_FLAGS} | common_flags.hparams()


def main(argv):
    del argv
    run(**flag_values())


if __name__ == "__main__":
    common.cli(main)
