"""Multi-task learning against single-task training.

    python -m apps.train_multitask --flagfile=flags/multitask_fashion_mnist.cfg

One trunk with a head per task (`mp.training.multitask`) learns the dataset's
`class` and its coarser `group` (Fashion-MNIST: top / bottom / shoe / bag;
digits: even / odd) at once, on `L = sum_t w_t * CE_t` (`--loss_weights`).
For comparison each task is also learned alone by the same trunk with its one
head, from the same initial weights, on the same batches, for the same steps.

model_dir receives `flags.cfg`, `ckpt/`, `train/`, `eval/`, `history.json` and
`model.keras` (images -> {task: logits}) of the multi-task model, each single-task
run in `single_<task>/`, `multitask.png` (test accuracy per task, multi-task beside
single-task) and last `metrics.json`: per task `<task>_multitask_test_accuracy`
and `<task>_single_task_test_accuracy`, and `test_accuracy` (the multi-task
model on `class`).

Course: ch2.3 Regularization methods (multi-task learning).
"""

import os

from absl import flags

from apps import common, runner

runner.define_once(
    flags.DEFINE_list,
    "loss_weights",
    ["class=1", "group=1"],
    "Weight w_t of each task in L = sum_t w_t * CE_t, as task=weight (tasks: class, group).",
)
runner.define_once(
    flags.DEFINE_integer,
    "trunk_units",
    256,
    "Width of the shared features the heads read.",
    lower_bound=1,
)
runner.define_once(
    flags.DEFINE_float, "dropout", 0.0, "Dropout on the shared features, in [0, 1)."
)
runner.define_once(
    flags.DEFINE_boolean,
    "single_task",
    True,
    "Also train each task alone (same trunk and head, same steps) for comparison.",
)
runner.define_once(
    flags.DEFINE_string,
    "export_figure",
    None,
    "Also save the figure here (e.g. docs/ch2_multitask.png).",
)
APP = runner.App(
    "train_multitask",
    own=("loss_weights", "trunk_units", "dropout", "single_task", "export_figure"),
    # No held-out split of the training set (so no early stopping), and several models
    # per run for the one-model diagnostics.
    refuses=("validation_fraction", "early_stopping_patience", "log_diagnostics"),
)
LABELS = {"multitask": "multi-task", "single_task": "single-task"}


def parse_loss_weights(items):
    """`["class=1", "group=0.5"]` -> `{"class": 1.0, "group": 0.5}`."""
    weights = {}
    for item in items:
        task, sep, value = str(item).partition("=")
        try:
            weights[task.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not task.strip():
            raise ValueError(
                f"loss_weights must look like class=1,group=0.5. Received: loss_weights={items}"
            )
    return weights


def run(
    model_dir=None,
    *,
    loss_weights=("class=1", "group=1"),
    trunk_units=256,
    dropout=0.0,
    single_task=True,
    export_figure=None,
    progress=True,
    **shared,
):
    """Trains the multi-task model and, with `single_task`, one model per task; returns the metrics.

    The own arguments are the flags above (`loss_weights` as `task=weight` strings or a dict
    `{task: weight}`); `shared` the shared flags (`apps.runner.RunConfig`). Raises ValueError
    for arguments that do not fit, before anything is written.
    """
    import mp.data
    from mp.training import multitask

    own = {name: value for name, value in locals().items() if name in APP.own}
    weights = loss_weights if isinstance(loss_weights, dict) else parse_loss_weights(loss_weights)
    own["loss_weights"] = [f"{t}={w:g}" for t, w in weights.items()]
    config = APP.config(shared | {"model_dir": model_dir})
    tasks = multitask.derived_labels(config.dataset)
    if set(weights) != set(tasks):
        raise ValueError(
            f"loss_weights must give a weight to each task of {config.dataset}: "
            f"{', '.join(tasks)}. Received: loss_weights={loss_weights}"
        )
    run = runner.Experiment(APP, config, own, progress=progress)
    info = mp.data.info(config.dataset)
    train_images, _ = mp.data.load_numpy(config.dataset, "train", config.data_dir)
    train_steps = run.train_steps(len(train_images))
    optimizer = run.optimizer(train_steps)
    num_classes = {t: k for t, (k, _) in tasks.items()}

    def new_task(task_weights):  # every model starts from the same trunk and heads (seed)
        with run.strategy.scope():
            return multitask.make_task(
                info.image_shape,
                num_classes,
                task_weights,
                optimizer,
                units=trunk_units,
                dropout=dropout,
                seed=config.seed,
                clip_norm=run.clip_norm,
            )

    runs = {"multitask": (weights, ".")}
    if single_task:
        runs |= {t: ({t: 1.0}, f"single_{t}") for t in tasks}
    # Every trainer restores its checkpoint (or refuses one that does not fit) in turn.
    trainers = {
        name: run.trainer(new_task(w), train_steps, model_dir=os.path.normpath(run.path(where)))
        for name, (w, where) in runs.items()
    }
    train_data = run.train_data()
    results = {}
    for name, trainer in trainers.items():
        tables = {t: tasks[t][1] for t in runs[name][0]}
        if progress:
            print(f"{name}: {', '.join(tables)}", flush=True)
        results[name] = trainer.fit(
            lambda step, tables=tables: multitask.multitask_batches(train_data(step), tables),
            multitask.multitask_batches(run.load("test"), tables),
        )
        run.export(trainer.task, os.path.join(runs[name][1], "model.keras"))

    # --- figure, metrics.json last -----------------------------------------------
    multi = results["multitask"]
    metrics = run.metrics(multi, train_steps) | {
        "tasks": {t: {"num_classes": num_classes[t], "loss_weight": weights[t]} for t in tasks},
        "num_parameters": int(trainers["multitask"].task.model.count_params()),
        "test_accuracy": multi["eval"]["metrics/class_top1"],
        "test_examples": multi["eval"]["count"],
        "train_seconds": sum(r["wall_seconds"] for r in results.values()),
    }
    models = {"multitask": {t: multi for t in tasks}}
    if single_task:
        models["single_task"] = {t: results[t] for t in tasks}
    for kind, by_task in models.items():
        for t, result in by_task.items():
            metrics[f"{t}_{kind}_test_accuracy"] = result["eval"][f"metrics/{t}_top1"]
            metrics[f"{t}_{kind}_test_loss"] = result["eval"][f"loss/{t}"]
    accuracies = {
        LABELS[kind]: {t: metrics[f"{t}_{kind}_test_accuracy"] for t in tasks} for kind in models
    }
    figure = multitask.accuracy_figure(
        accuracies,
        weights,
        title=f"{config.dataset}: one trunk for all tasks vs one per task, "
        f"{train_steps} steps each",
    )
    run.save_figure(figure, "multitask.png")
    if export_figure:
        os.makedirs(os.path.dirname(os.path.abspath(export_figure)), exist_ok=True)
        common.save_figure(figure, export_figure)
    summary = "\n".join(
        f"{t}: test accuracy multi-task {accuracies['multi-task'][t]:.4f}"
        + (f", single-task {accuracies['single-task'][t]:.4f}" if single_task else "")
        for t in tasks
    )
    return run.finish(metrics, summary, history=trainers["multitask"].history)


flag_values = APP.flag_values

if __name__ == "__main__":
    APP.cli(run)
