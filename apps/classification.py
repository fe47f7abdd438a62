"""Not an app: the run that both classification apps (`train_mlp`, `train_cnn`) share.

    data (mp.data) -> model (the app's builder) -> ClassificationTask -> Trainer
    -> model.keras, confusion_matrix.png, learning_curves.png -> metrics.json

Everything that can be wrong with the input (dataset, files, sizes) is checked
before the first byte goes to `model_dir`.
"""

import mp.data
from apps.runner import Experiment
from mp import plotting


def run_classifier(app, build_model, *, shared, own, task_class=None, progress=True):
    """Trains and evaluates a classifier; returns the metrics written to metrics.json.

    Args:
      app: the calling app's `runner.App`.
      build_model: `build_model(input_shape, num_classes) -> keras.Model` of logits.
      shared: the shared flags' keyword arguments (`runner.RunConfig`).
      own: the app's own hyperparameters, recorded in `flags.cfg`.
      task_class: the `ClassificationTask` subclass to train with (e.g. GoogLeNet's, which
        adds its auxiliary heads' losses); `None` is `ClassificationTask`.
    """
    from mp.engine import ClassificationTask

    config = app.config(shared)
    run = Experiment(app, config, own, progress=progress)
    info = mp.data.info(config.dataset)
    train_images, _ = mp.data.load_numpy(
        config.dataset, "train", config.data_dir, validation_fraction=config.validation_fraction
    )
    mp.data.load_numpy(config.dataset, "test", config.data_dir)  # missing files: an error now
    train_steps = run.train_steps(len(train_images))
    with run.strategy.scope():  # builder errors (sizes that do not fit) come before any output
        model = build_model(info.image_shape, info.num_classes)
    task = (task_class or ClassificationTask)(
        model, run.optimizer(train_steps), clip_norm=run.clip_norm
    )
    test_data = run.load("test")
    validation_data = run.load("validation") if config.validation_fraction else None
    diagnostics = _diagnostics(model, run) if config.log_diagnostics else None
    trainer = run.trainer(task, train_steps, diagnostics=diagnostics)
    result, evaluation = run.fit(trainer, run.train_data(), test_data, validation_data)

    run.export(task)
    run.save_figure(
        plotting.confusion_matrix_figure_of(
            model,
            test_data,
            info.class_names,
            title=f"{model.name} on {config.dataset}: test accuracy {evaluation['top1']:.4f}",
        ),
        "confusion_matrix.png",
    )
    if len(trainer.history["train"]) > 1:
        run.save_figure(
            plotting.learning_curves_figure(
                trainer.history, eval_label="validation" if validation_data else "test"
            ),
            "learning_curves.png",
        )
    metrics = run.metrics(result, train_steps) | {
        "model": model.name,
        "num_parameters": int(model.count_params()),
        "test_accuracy": evaluation["top1"],
        "test_top5": evaluation["top5"],
        "test_loss": evaluation["loss"],
        "test_examples": evaluation["count"],
        "validation_loss": result["eval"]["loss"] if validation_data else None,
        "validation_accuracy": result["eval"]["top1"] if validation_data else None,
        "train_loss": result["train"].get("loss/total"),
    }
    if config.log_diagnostics:
        metrics["dead_relu_fraction"] = result["train"]["diagnostics/dead_relu_fraction"]
    return run.finish(
        metrics,
        f"test accuracy {metrics['test_accuracy']:.4f} (top-5 {metrics['test_top5']:.4f})",
    )


def _diagnostics(model, run, num_examples=512):
    """Dead-ReLU fraction and per-layer gradient norms on a fixed training sample (ch2.1)."""
    from mp.training import diagnostics

    images, labels = next(iter(run.load("train", batch_size=num_examples)))
    return diagnostics.monitor(model, images, labels)
