"""Fine-tune a pretrained network on few labels: `python -m apps.finetune --flagfile=...`.

    base (--base, --weights) + new head -> phase 1: head only -> phase 2: top
    --unfreeze layers too, lower learning rate -> test accuracy (mp.cnn.transfer)

`--base=vgg16|resnet50`: Keras' applications (`--weights=imagenet` fetches Keras'
file; offline, place the file the error names or pass its path), resized to
`--image_size` >= 32 (224 for ImageNet weights). `--base=mp:<model>`: one of the
package's models, `--weights=<model.keras>` of `apps/train_cnn.py` at its input
size. The labelled examples are the same for every seed. `--compare_scratch`
also trains the network from random weights (`scratch_test_accuracy`). Each
phase has its own steps and rate, so `--epochs`, `--train_steps` and
`--learning_rate` are refused; `--lr_schedule` runs within each phase.

`model_dir`: flags.cfg, `phase1/`, `phase2/` (`scratch/`) checkpoints and summaries
(rerun to resume), model.keras, learning_curves.png, confusion_matrix.png,
history.json and, last, metrics.json.

Course: ch7.1 TensorFlow tips (Keras' ImageNet weights for VGG and ResNet),
ch2.3 Regularization methods (transfer learning).
"""

import functools

import keras
from absl import flags

import mp.data
from apps import common, runner
from mp import plotting
from mp.cnn import transfer
from mp.engine import ClassificationTask

define = runner.define_once
define(flags.DEFINE_string, "base", "vgg16", "vgg16, resnet50 (Keras) or mp:<registered model>.")
define(flags.DEFINE_string, "weights", "imagenet", "imagenet, none (random), a .h5 or .keras file.")
define(flags.DEFINE_integer, "image_size", 32, "Side of the resized images.", lower_bound=1)
define(flags.DEFINE_integer, "labels_per_class", 10, "Labelled training examples per class.")
define(flags.DEFINE_integer, "head_steps", 200, "Phase 1 steps (base frozen).")
define(flags.DEFINE_float, "head_learning_rate", 1e-3, "Phase 1 learning rate.")
define(flags.DEFINE_integer, "finetune_steps", 200, "Phase 2 steps; 0 skips phase 2.")
define(flags.DEFINE_float, "finetune_learning_rate", 1e-4, "Phase 2 learning rate.")
define(
    flags.DEFINE_string,
    "unfreeze",
    "",
    "Phase 2 trains the top N weight layers of the base (an integer) or every layer from "
    "this name on; empty: the last block (mp: bases: the last weight layer).",
)
define(flags.DEFINE_float, "head_dropout", 0.0, "Dropout before the new logits, in [0, 1).")
define(flags.DEFINE_enum, "pooling", "avg", ["avg", "max"], "Global pooling of feature maps.")
define(flags.DEFINE_boolean, "compare_scratch", False, "Also train from random weights.")
PHASES = ("head_steps", "head_learning_rate", "finetune_steps", "finetune_learning_rate")
APP = runner.App(
    "finetune",
    own=(
        "base",
        "weights",
        "image_size",
        "labels_per_class",
        *PHASES,
        "unfreeze",
        "head_dropout",
        "pooling",
        "compare_scratch",
    ),
    defaults={"batch_size": 32},
    # The phases have their own steps and rates; the test split is the evaluation data.
    refuses={
        "epochs": "use --head_steps and --finetune_steps",
        "train_steps": "use --head_steps and --finetune_steps",
        "learning_rate": "use --head_learning_rate and --finetune_learning_rate",
        "resume_from_step": "each phase counts its own steps",
        "validation_fraction": "the few labelled images are all for training",
        "early_stopping_patience": "there is no validation split",
        "augment": "not implemented for the pretrained bases",
        "log_diagnostics": "not implemented for the pretrained bases",
    },
)


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
    progress=True,
    **shared,
):
    """Fine-tunes `base` on `labels_per_class` labels of `shared["dataset"]`; returns the
    metrics. Flags, data, weights file and sizes are checked before anything is written.
    """
    own = {name: value for name, value in locals().items() if name in APP.own}
    common.check_counts(head_steps=head_steps, labels_per_class=labels_per_class)
    common.check_counts(image_size=image_size)
    common.check_non_negative(finetune_steps=finetune_steps)
    common.check_positive(
        head_learning_rate=head_learning_rate, finetune_learning_rate=finetune_learning_rate
    )
    config = APP.config(shared | {"model_dir": model_dir})
    run = runner.Experiment(APP, config, own, progress=progress)
    info = mp.data.info(config.dataset)
    train_data, test_data, labelled = transfer.few_label_data(
        config.dataset,
        base,
        image_size,
        labels_per_class,
        batch_size=config.batch_size,
        seed=config.seed,
        data_dir=config.data_dir,
    )
    head = functools.partial(
        transfer.transfer_model, num_classes=info.num_classes, dropout=head_dropout, pooling=pooling
    )
    input_shape = transfer.input_shape_of(base, image_size, info.image_shape[-1])
    with run.strategy.scope():
        pretrained = transfer.build_base(base, weights, input_shape)  # bad name, file, size
        model = head(pretrained)
        # The same architecture with fresh random weights (clone_model re-initialises).
        scratch = head(keras.models.clone_model(pretrained)) if compare_scratch else None

    def trainer(task, directory, steps):
        return run.trainer(task, steps, model_dir=directory, log_every=min(config.log_every, steps))

    results = transfer.fit_two_phases(
        model,
        pretrained,
        run.model_dir,
        train_data=train_data,
        eval_data=test_data,
        make_optimizer=lambda learning_rate, steps: run.optimizer(steps, learning_rate)(),
        unfreeze=_unfreeze(unfreeze, base),
        clip_norm=run.clip_norm,
        make_trainer=trainer,
        **{name: own[name] for name in PHASES},
    )
    head_accuracy, final = results["phase1"]["eval"]["top1"], results["eval"]
    scratch_steps = head_steps + finetune_steps if compare_scratch else None
    if compare_scratch:
        optimizer = run.optimizer(scratch_steps, head_learning_rate)
        task = ClassificationTask(scratch, optimizer, clip_norm=run.clip_norm)
        scratch_eval = trainer(task, run.path("scratch"), scratch_steps).fit(train_data, test_data)
        scratch_accuracy = scratch_eval["eval"]["top1"]

    run.save_model(model)
    title = f"{model.name} on {config.dataset}: test accuracy {final['top1']:.4f}"
    run.save_figure(
        plotting.confusion_matrix_figure_of(model, test_data, info.class_names, title=title),
        "confusion_matrix.png",
    )
    curves = plotting.learning_curves_figure(results["history"], eval_label="test")
    run.save_figure(curves, "learning_curves.png")
    metrics = run.metrics() | {
        **{name: own[name] for name in ("base", "weights", "head_steps", "finetune_steps")},
        "model": model.name,
        "num_parameters": int(model.count_params()),
        "num_replicas": run.strategy.num_replicas_in_sync,
        "labelled_examples": labelled,
        "global_step": results["global_step"],
        "unfrozen_layers": results["unfrozen"],
        "head_test_accuracy": head_accuracy,
        "test_accuracy": final["top1"],
        "test_top5": final["top5"],
        "test_loss": final["loss"],
        "test_examples": final["count"],
        "scratch_test_accuracy": scratch_accuracy if compare_scratch else None,
        "scratch_steps": scratch_steps,
    }
    scratch_text = f"; from scratch: {scratch_accuracy:.4f}" if compare_scratch else ""
    summary = f"test accuracy {final['top1']:.4f} (after phase 1: {head_accuracy:.4f}"
    return run.finish(metrics, f"{summary}{scratch_text})", history=results["history"])


def _unfreeze(text, base):
    """`--unfreeze` as `fit_two_phases` takes it: an int, a layer name, or the default."""
    try:
        return int(text) if text else transfer.default_unfreeze(base)
    except ValueError:
        return text


flag_values = APP.flag_values

if __name__ == "__main__":
    APP.cli(run)
