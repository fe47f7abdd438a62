"""Train a fully convolutional network: `python -m apps.train_fcn --flagfile=flags/fcn_digits.cfg`.

    canvases (mp.data.canvas) -> fcn (mp.cnn.fcn) -> SegmentationTask -> Trainer
    -> model.keras, segmentation.png -> metrics.json (mean_iou, pixel_accuracy)

Every pixel of a canvas holding a few digits (or clothes) is classified as
background or as the class of the item under it. Training canvases come from
the dataset's training split, test canvases from its test split; evaluations
run on the test canvases, so the classifiers' `--validation_fraction`,
`--early_stopping_patience`, `--augment` and `--log_diagnostics` are refused.

Course: ch3.1 Layers and Architectures (fully convolutional networks).
"""

from absl import flags

from apps import common, runner
from mp.cnn.fcn import SegmentationTask, fcn, segmentation_figure_of
from mp.data import canvas

runner.define_once(
    flags.DEFINE_integer,
    "canvas_size",
    0,
    "Side of the square canvases; 0 picks 32 for digits and 64 for the 28x28 datasets. "
    "Must be divisible by 2^(len(filters) - 1).",
    lower_bound=0,
)
runner.define_once(
    flags.DEFINE_integer, "num_train_canvases", 2000, "Training canvases.", lower_bound=1
)
runner.define_once(flags.DEFINE_integer, "num_test_canvases", 500, "Test canvases.", lower_bound=1)
runner.define_once(
    flags.DEFINE_list,
    "items_per_canvas",
    ["1", "3"],
    "low,high: each canvas holds between low and high items (both included).",
)
runner.define_once(
    flags.DEFINE_list, "filters", ["16", "32", "64"], "Channels per level of the FCN."
)
runner.define_once(
    flags.DEFINE_enum,
    "upsampling",
    "transpose",
    ["transpose", "nearest"],
    "Learned (transpose convolution) or fixed (nearest-neighbour) up-sampling.",
)
APP = runner.App(
    "train_fcn",
    own=(
        "canvas_size",
        "num_train_canvases",
        "num_test_canvases",
        "items_per_canvas",
        "filters",
        "upsampling",
    ),
    defaults={"batch_size": 32},
    refuses=("validation_fraction", "early_stopping_patience", "augment", "log_diagnostics"),
)
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
    progress=True,
    **shared,
):
    """Trains an FCN on canvases of `shared["dataset"]`; returns the metrics (metrics.json).

    Args:
      model_dir: output directory (default `runs/train_fcn-<dataset>`).
      canvas_size: side of the square canvases; 0 picks the dataset's default
        (`mp.data.canvas.default_canvas_size`).
      num_train_canvases, num_test_canvases: how many canvases per split.
      items_per_canvas: `(low, high)` items per canvas.
      filters: channels per level of `mp.cnn.fcn.fcn`.
      upsampling: `transpose` or `nearest`.
      shared: the shared flags (`apps.runner.RunConfig`).

    Returns:
      The metrics: `mean_iou`, `pixel_accuracy`, `test_loss`, `global_step`, ...
    """
    filters = common.positive_ints("filters", filters)
    items_per_canvas = common.positive_ints("items_per_canvas", items_per_canvas, count=2)
    common.check_counts(num_train_canvases=num_train_canvases, num_test_canvases=num_test_canvases)
    common.check_non_negative(canvas_size=canvas_size)
    own = {name: value for name, value in locals().items() if name in APP.own}
    config = APP.config(shared | {"model_dir": model_dir})
    run = runner.Experiment(APP, config, own, progress=progress)
    size = (canvas_size,) * 2 if canvas_size else canvas.default_canvas_size(config.dataset)
    factor = 2 ** (len(filters) - 1)
    if size[0] % factor:
        raise ValueError(
            f"canvas_size must be divisible by 2^(len(filters) - 1) = {factor} (the FCN pools "
            f"{len(filters) - 1} times by 2). Received: canvas_size={size[0]}, filters="
            f"{','.join(map(str, filters))}"
        )
    train_steps = run.train_steps(num_train_canvases)
    data = canvas.canvas_data(
        config.dataset,
        num_train_canvases,
        num_test_canvases,
        size,
        items_per_canvas,
        seed=config.seed,
        data_dir=config.data_dir,
    )
    with run.strategy.scope():
        model = fcn((*size, 1), data.num_classes, filters=filters, upsampling=upsampling)
    task = SegmentationTask(
        model, run.optimizer(train_steps), data.num_classes, clip_norm=run.clip_norm
    )
    trainer = run.trainer(task, train_steps)
    train_data = data.train_data(config.batch_size, config.seed)
    result, evaluation = run.fit(trainer, train_data, data.test_data())
    mean_iou = SegmentationTask.mean_iou(evaluation)

    run.export(task)
    shown = slice(0, FIGURE_CANVASES)
    title = f"{model.name} on {config.dataset} canvases: test mean IoU {mean_iou:.3f}"
    run.save_figure(
        segmentation_figure_of(
            model, data.test_images[shown], data.test_labels[shown], data.class_names, title
        ),
        "segmentation.png",
    )
    metrics = run.metrics(result, train_steps) | {
        "model": model.name,
        "num_parameters": int(model.count_params()),
        "canvas_size": list(size),
        "num_classes": data.num_classes,
        "mean_iou": mean_iou,
        "pixel_accuracy": evaluation["pixel_accuracy"],
        "test_loss": evaluation["loss"],
        "test_canvases": evaluation["count"],
        "train_loss": result["train"].get("loss/total"),
    }
    return run.finish(
        metrics, f"test mean IoU {mean_iou:.4f}, pixel accuracy {metrics['pixel_accuracy']:.4f}"
    )


flag_values = APP.flag_values

if __name__ == "__main__":
    APP.cli(run)
