"""Multi-task learning against single-task training.

    python -m apps.train_multitask --flagfile=flags/multitask_fashion_mnist.cfg

One trunk with a head per task (`mp.training.multitask`) learns the dataset's
`class` and its coarser `group` (Fashion-MNIST: top / bottom / shoe / bag;
digits: even / odd) at once, on `L = sum_t w_t * CE_t` (`--loss_weights`).
For comparison each task is also learned alone by the same trunk with its one
head, from the same initial weights, on the same batches, for the same steps.

model_dir receives `flags.cfg`, `ckpt/`, `train/`, `eval/` and `model.keras`
(images -> {task: logits}) of the multi-task model, each single-task run in
`single_<task>/`, `multitask.png` (test accuracy per task, multi-task beside
single-task) and last `metrics.json`: per task `<task>_multitask_test_accuracy`
and `<task>_single_task_test_accuracy`, and `test_accuracy` (the multi-task
model on `class`).

Course: ch2.3 Regularization methods (multi-task learning).
"""

import os

from absl import flags

import mp.data
from apps import common, common_flags
from mp.engine import Trainer, make_optimizer, make_schedule, make_strategy, seed_everything
from mp.training import multitask

FLAGS = flags.FLAGS
EVAL_BATCH_SIZE = 500
APP = "train_multitask"

common_flags.define(dataset="digits", batch_size=64, epochs=10, learning_rate=1e-3)
common_flags.define_once(
    flags.DEFINE_list,
    "loss_weights",
    ["class=1", "group=1"],
    "Weight w_t of each task in L = sum_t w_t * CE_t, as task=weight (tasks: class, group).",
)
common_flags.define_once(
    flags.DEFINE_integer,
    "trunk_units",
    256,
    "Width of the shared features the heads read.",
    lower_bound=1,
)
common_flags.define_once(
    flags.DEFINE_float, "dropout", 0.0, "Dropout on the shared features, in [0, 1)."
)
common_flags.define_once(
    flags.DEFINE_boolean,
    "single_task",
    True,
    "Also train each task alone (same trunk and head, same steps) for comparison.",
)
common_flags.define_once(
    flags.DEFINE_string,
    "export_figure",
    None,
    "Also save the figure here (e.g. docs/ch2_multitask.png).",
)

MODEL_FLAGS = ("loss_weights", "trunk_units", "dropout", "single_task", "export_figure")
# Shared flags this app does not implement; a non-default value is an error.
UNSUPPORTED = ("validation_fraction", "early_stopping_patience", "log_diagnostics")


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
    augment=False,
    progress=True,
    **unsupported,
):
    """Trains the multi-task model and, with `single_task`, one model per task; returns the metrics.

    Args:
      model_dir: output directory (default `runs/train_multitask-<dataset>`).
      loss_weights: `task=weight` strings, or a dict `{task: weight}`.
      trunk_units, dropout: the trunk (`multitask.make_trunk`).
      single_task: also train each task alone, for comparison.
      export_figure: optional second path for `multitask.png`.
      progress: print progress lines.
      The rest: the shared flags (`apps/common_flags.py`).

    Raises:
      ValueError: for arguments that do not fit, before anything is written.
    """
    clock = common.Clock()
    hparams = {k: v for k, v in locals().items() if k not in ("clock", "progress", "unsupported")}
    # --- check everything before writing anything -----------------------
    for name, value in unsupported.items():
        if name not in UNSUPPORTED:
            raise TypeError(f"run() got an unexpected keyword argument {name!r}")
        if value:
            raise ValueError(f"{APP} does not support {name}. Received: {name}={value}")
    common.check_counts(
        batch_size=batch_size, epochs=epochs, log_every=log_every, checkpoint_every=checkpoint_every
    )
    common.check_non_negative(train_steps=train_steps, eval_every=eval_every)
    common.check_positive(learning_rate=learning_rate)
    if clip_norm:
        raise ValueError(f"{APP} does not support clip_norm. Received: clip_norm={clip_norm}")
    common.check_optimizer_impl(optimizer_impl)
    weights = loss_weights if isinstance(loss_weights, dict) else parse_loss_weights(loss_weights)
    tasks = multitask.derived_labels(dataset)
    if set(weights) != set(tasks):
        raise ValueError(
            f"loss_weights must give a weight to each task of {dataset}: {', '.join(tasks)}. "
            f"Received: loss_weights={loss_weights}"
        )
    info = mp.data.info(dataset)
    train_images, _ = mp.data.load_numpy(dataset, "train", data_dir)
    steps_per_epoch = len(train_images) // batch_size
    if steps_per_epoch == 0:
        raise ValueError(
            f"batch_size {batch_size} exceeds the {len(train_images)} training examples"
        )
    train_steps = train_steps or epochs * steps_per_epoch
    model_dir = model_dir or common.default_model_dir(APP, dataset)
    hparams["model_dir"] = model_dir
    hparams["loss_weights"] = [f"{t}={w:g}" for t, w in weights.items()]

    seed_everything(seed, deterministic)
    strategy = make_strategy(strategy)
    schedule = make_schedule(lr_schedule, learning_rate, train_steps, warmup_steps=warmup_steps)

    def new_optimizer():
        if optimizer_impl == "mp":
            from mp.training import optimizers

            return optimizers.get(optimizer, schedule)
        return make_optimizer(optimizer, schedule)

    def new_task(task_weights):
        # The same seed before each build: every model starts from the same trunk.
        seed_everything(seed, deterministic)
        with strategy.scope():
            trunk = multitask.make_trunk(info.image_shape, units=trunk_units, dropout=dropout)
            heads = {
                t: multitask.make_head(trunk_units, tasks[t][0], name=f"head_{t}") for t in tasks
            }
        heads = {t: heads[t] for t in task_weights}
        return multitask.MultiTaskTask(trunk, heads, task_weights, new_optimizer)

    def data(task_names, split):
        tables = {t: tasks[t][1] for t in task_names}
        if split == "test":
            test = mp.data.load(dataset, "test", data_dir, batch_size=EVAL_BATCH_SIZE)
            return multitask.multitask_batches(test, tables)

        def train_data(start_step):
            train = mp.data.load(
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
            )
            return multitask.multitask_batches(train, tables)

        return train_data

    runs = {"multitask": (weights, model_dir)}
    if single_task:
        runs |= {t: ({t: 1.0}, os.path.join(model_dir, f"single_{t}")) for t in tasks}
    # Every trainer restores its checkpoint (or refuses one that does not fit)
    # before a byte is written.
    trainers = {
        name: Trainer(
            new_task(task_weights),
            directory,
            train_steps=train_steps,
            strategy=strategy,
            log_every=log_every,
            checkpoint_every=checkpoint_every,
            eval_every=eval_every,
            jit_compile=jit_compile,
            progress=progress,
        )
        for name, (task_weights, directory) in runs.items()
    }
    common.start_run(model_dir, hparams)

    # --- train ------------------------------------------------------------
    results = {}
    for name, trainer in trainers.items():
        task_names = list(runs[name][0])
        if progress:
            print(f"{name}: {', '.join(task_names)}", flush=True)
        results[name] = trainer.fit(data(task_names, "train"), data(task_names, "test"))
        common.save_model(trainer.task.model, os.path.join(trainer.model_dir, "model.keras"))

    # --- figure, metrics.json last -------------------------------------------
    multi = results["multitask"]
    metrics = {
        "app": APP,
        "dataset": dataset,
        "tasks": {t: {"num_classes": tasks[t][0], "loss_weight": weights[t]} for t in tasks},
        "num_parameters": int(trainers["multitask"].task.model.count_params()),
        "global_step": multi["global_step"],
        "train_steps": train_steps,
        "epochs": round(multi["global_step"] / steps_per_epoch, 3),
        "resumed_from_step": multi["resumed_from_step"],
        "test_accuracy": multi["eval"]["metrics/class_top1"],
        "test_examples": multi["eval"]["count"],
    }
    for t in tasks:
        metrics[f"{t}_multitask_test_accuracy"] = multi["eval"][f"metrics/{t}_top1"]
        metrics[f"{t}_multitask_test_loss"] = multi["eval"][f"loss/{t}"]
        if single_task:
            metrics[f"{t}_single_task_test_accuracy"] = results[t]["eval"][f"metrics/{t}_top1"]
            metrics[f"{t}_single_task_test_loss"] = results[t]["eval"][f"loss/{t}"]
    figure = _figure(metrics, list(tasks), dataset, weights, train_steps)
    common.save_figure(figure, os.path.join(model_dir, "multitask.png"))
    if export_figure:
        os.makedirs(os.path.dirname(os.path.abspath(export_figure)), exist_ok=True)
        common.save_figure(figure, export_figure)
    metrics["train_seconds"] = sum(r["wall_seconds"] for r in results.values())
    metrics["wall_seconds"] = clock.seconds()
    metrics["num_replicas"] = strategy.num_replicas_in_sync
    common.write_json(os.path.join(model_dir, "metrics.json"), metrics)
    if progress:
        for t in tasks:
            single = metrics.get(f"{t}_single_task_test_accuracy")
            alone = f", single-task {single:.4f}" if single is not None else ""
            print(
                f"{t}: test accuracy multi-task {metrics[f'{t}_multitask_test_accuracy']:.4f}{alone}",
                flush=True,
            )
        print(
            f"after {metrics['global_step']} steps, {metrics['wall_seconds']:.1f} s; "
            f"artifacts in {model_dir}/",
            flush=True,
        )
    return metrics


def _figure(metrics, tasks, dataset, weights, train_steps):
    """Test accuracy per task: the multi-task model beside the single-task ones."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1.5 + 2.2 * len(tasks), 4))
    width = 0.38
    series = [("multitask", "multi-task", "C0"), ("single_task", "single-task", "C1")]
    for i, (key, label, color) in enumerate(series):
        values = [metrics.get(f"{t}_{key}_test_accuracy") for t in tasks]
        if None in values:
            continue
        offsets = [j + (i - 0.5) * width for j in range(len(tasks))]
        bars = ax.bar(offsets, values, width, label=label, color=color)
        ax.bar_label(bars, fmt="%.4f", fontsize=8)
    lowest = min(v for k, v in metrics.items() if k.endswith("_test_accuracy"))
    ax.set_ylim(max(0.0, lowest - 0.05), 1.0)
    ax.set_xticks(range(len(tasks)), [f"{t}\n(w={weights[t]:g})" for t in tasks])
    ax.set_ylabel("test accuracy")
    ax.set_title(f"{dataset}: one trunk for all tasks vs one per task, {train_steps} steps each")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False)
    fig.tight_layout()
    plt.close(fig)
    return fig


def flag_values():
    """The keyword arguments of `run` as the parsed flags give them."""
    return {name: FLAGS[name].value for name in MODEL_FLAGS} | common_flags.hparams()


def main(argv):
    del argv
    run(**flag_values())


if __name__ == "__main__":
    common.cli(main)
