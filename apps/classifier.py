"""The run both classification apps share (`train_mlp`, `train_cnn`).

    data (mp.data) -> model (a builder) -> ClassificationTask -> Trainer
    -> model.keras, confusion_matrix.png, learning_curves.png -> metrics.json

Everything that can be wrong with the input (dataset, files, sizes) is checked
before the first byte goes to `model_dir`.
"""

import os

import numpy as np

import mp.data
from apps import common
from mp import plotting
from mp.engine import (
    ClassificationTask,
    Trainer,
    make_optimizer,
    make_schedule,
    make_strategy,
    seed_everything,
)

EVAL_BATCH_SIZE = 500


def run_classifier(
    *,
    app_name,
    build_model,
    model_hparams,
    task_class=None,
    model_dir=None,
    dataset="digits",
    data_dir=None,
    batch_size=64,
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
    """Trains and evaluates a classifier; returns the metrics written to metrics.json.

    Args:
      app_name: the app's name, for the default `model_dir`.
      build_model: `build_model(input_shape, num_classes) -> keras.Model` of logits.
      model_hparams: the app's own hyperparameters, recorded in `flags.cfg`.
      task_class: the `ClassificationTask` subclass to train with (e.g. GoogLeNet's,
        which adds its auxiliary heads' losses); `None` is `ClassificationTask`.
      The rest: see `apps/common_flags.py`.
    """
    clock = common.Clock()
    hparams = {
        k: v
        for k, v in locals().items()
        if k not in ("clock", "app_name", "build_model", "model_hparams", "progress", "task_class")
    }
    hparams.update(model_hparams)
    # --- check everything before writing anything -----------------------
    common.check_counts(
        batch_size=batch_size, epochs=epochs, log_every=log_every, checkpoint_every=checkpoint_every
    )
    common.check_non_negative(
        train_steps=train_steps,
        eval_every=eval_every,
        early_stopping_patience=early_stopping_patience,
    )
    common.check_positive(learning_rate=learning_rate)
    common.check_optimizer_impl(optimizer_impl)
    if early_stopping_patience and not (eval_every and validation_fraction):
        raise ValueError(
            "early_stopping_patience needs eval_every > 0 and validation_fraction "
            "> 0: early stopping compares validation losses, never test ones"
        )
    info = mp.data.info(dataset)
    train_images, _ = mp.data.load_numpy(
        dataset, "train", data_dir, validation_fraction=validation_fraction
    )
    test_images, test_labels = mp.data.load_numpy(dataset, "test", data_dir)
    steps_per_epoch = len(train_images) // batch_size
    if steps_per_epoch == 0:
        raise ValueError(
            f"batch_size {batch_size} exceeds the {len(train_images)} training "
            f"examples of {dataset}"
        )
    train_steps = train_steps or epochs * steps_per_epoch
    model_dir = model_dir or common.default_model_dir(app_name, dataset)
    hparams["model_dir"] = model_dir

    seed_everything(seed, deterministic)
    strategy = make_strategy(strategy)
    schedule = make_schedule(lr_schedule, learning_rate, train_steps, warmup_steps=warmup_steps)
    with strategy.scope():  # builder errors (sizes that do not fit) come before any output
        model = build_model(info.image_shape, info.num_classes)
    task = (task_class or ClassificationTask)(
        model, lambda: _optimizer(optimizer, optimizer_impl, schedule), clip_norm=clip_norm or None
    )

    def train_data(start_step):
        """The same batches, in the same order, from any step on (resumption)."""
        return mp.data.load(
            dataset,
            "train",
            data_dir,
            batch_size=batch_size,
            shuffle=True,
            seed=seed,
            repeat=True,
            skip_batches=start_step,
            drop_remainder=True,
            augment=augment,
            validation_fraction=validation_fraction,
        )

    test_data = mp.data.load(dataset, "test", data_dir, batch_size=EVAL_BATCH_SIZE)
    validation_data = (
        mp.data.load(
            dataset,
            "validation",
            data_dir,
            batch_size=EVAL_BATCH_SIZE,
            validation_fraction=validation_fraction,
        )
        if validation_fraction
        else None
    )

    # --- train ------------------------------------------------------------
    # The trainer restores a checkpoint found in model_dir (and refuses one that
    # does not fit) before anything is written there.
    trainer = Trainer(
        task,
        model_dir,
        train_steps=train_steps,
        strategy=strategy,
        log_every=log_every,
        checkpoint_every=checkpoint_every,
        eval_every=eval_every,
        jit_compile=jit_compile,
        early_stopping_patience=early_stopping_patience,
        early_stopping_metric="loss",
        progress=progress,
        diagnostics=_diagnostics(model, dataset, data_dir) if log_diagnostics else None,
    )
    common.start_run(model_dir, hparams, trainer.resumed_from_step, progress)
    result = trainer.fit(train_data, validation_data or test_data)
    evaluation = trainer.evaluate(test_data) if validation_data else result["eval"]

    # --- artifacts, metrics.json last ---------------------------------------
    common.save_model(model, os.path.join(model_dir, "model.keras"))
    images = test_data.map(lambda x, y: x)
    predictions = np.argmax(model.predict(images, verbose=0), axis=-1)
    matrix = plotting.confusion_matrix(test_labels, predictions, info.num_classes)
    common.save_figure(
        plotting.confusion_matrix_figure(
            matrix,
            info.class_names,
            title=f"{model.name} on {dataset}: test accuracy {evaluation['top1']:.4f}",
        ),
        os.path.join(model_dir, "confusion_matrix.png"),
    )
    common.write_json(os.path.join(model_dir, "history.json"), common.history_json(trainer.history))
    if len(trainer.history["train"]) > 1:
        common.save_figure(
            plotting.learning_curves_figure(
                trainer.history, eval_label="validation" if validation_data else "test"
            ),
            os.path.join(model_dir, "learning_curves.png"),
        )
    metrics = {
        "app": app_name,
        "dataset": dataset,
        "model": model.name,
        "num_parameters": int(model.count_params()),
        "global_step": result["global_step"],
        "train_steps": train_steps,
        "epochs": round(result["global_step"] / steps_per_epoch, 3),
        "resumed_from_step": result["resumed_from_step"],
        "stopped_early": result["stopped_early"],
        "test_accuracy": evaluation["top1"],
        "test_top5": evaluation["top5"],
        "test_loss": evaluation["loss"],
        "test_examples": evaluation["count"],
        "validation_loss": result["eval"]["loss"] if validation_data else None,
        "validation_accuracy": result["eval"]["top1"] if validation_data else None,
        "train_loss": result["train"].get("loss/total"),
        "wall_seconds": clock.seconds(),
        "train_seconds": result["wall_seconds"],
        "num_replicas": strategy.num_replicas_in_sync,
    }
    if log_diagnostics:
        metrics["dead_relu_fraction"] = result["train"]["diagnostics/dead_relu_fraction"]
    common.write_json(os.path.join(model_dir, "metrics.json"), metrics)
    if progress:
        print(
            f"test accuracy {metrics['test_accuracy']:.4f} (top-5 {metrics['test_top5']:.4f}) "
            f"after {metrics['global_step']} steps, {metrics['wall_seconds']:.1f} s; "
            f"artifacts in {model_dir}/",
            flush=True,
        )
    return metrics


def _optimizer(name, impl, learning_rate):
    """Keras' optimizer `name`, or the package's own (ch2, written from the update rules)."""
    if impl == "mp":
        from mp.training import optimizers

        return optimizers.get(name, learning_rate)
    return make_optimizer(name, learning_rate)


def _diagnostics(model, dataset, data_dir, num_examples=512):
    """Dead-ReLU fraction and per-layer gradient norms on a fixed training sample (ch2.1)."""
    from mp.training import diagnostics

    images, labels = next(iter(mp.data.load(dataset, "train", data_dir, batch_size=num_examples)))

    def measure(step):
        del step
        dead = diagnostics.dead_relu_fraction(model, images)
        norms = diagnostics.per_layer_gradient_norms(model, images, labels)
        values = {"dead_relu_fraction": dead.pop("all")}
        values |= {f"dead_relu/{name}": fraction for name, fraction in dead.items()}
        values |= {f"grad_norm/{name}": norm for name, norm in norms.items()}
        return values

    return measure
