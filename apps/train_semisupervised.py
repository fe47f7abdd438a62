"""Semi-supervised learning against its supervised baseline.

    python -m apps.train_semisupervised --flagfile=flags/semisupervised_fashion_mnist.cfg

`--labels_per_class` examples of each class keep their label; every other
training image is used without it. Two models with the same encoder and head
(`mp.training.semi_supervised`), the same initial weights, the same labelled
batches and the same number of steps are trained and tested:

    semi-supervised   encoder + head + decoder on CE + w * reconstruction,
                      the reconstruction over labelled and unlabelled images
    supervised        encoder + head on the labelled images only (the baseline)

`--sweep_labels=10,30` repeats the pair for other numbers of labels per class
(each in `model_dir/labels_<n>/`) to draw accuracy against labels.

model_dir receives, besides the usual `flags.cfg`, `ckpt/`, `train/`, `eval/`
and `model.keras` of the semi-supervised classifier, the baseline's run in
`supervised/`, the figures `semisupervised.png` (test accuracy against steps and
against labels per class) and `reconstructions.png`, and last `metrics.json`
with `test_accuracy` (semi-supervised) and `supervised_test_accuracy`.

Course: ch2.3 Regularization methods (semi-supervised learning).
"""

import os

import numpy as np
from absl import flags

import mp.data
from apps import common, common_flags
from mp.plotting import pyplot
from mp.engine import (
    ClassificationTask,
    Trainer,
    make_optimizer,
    make_schedule,
    make_strategy,
    seed_everything,
)
from mp.training import semi_supervised

FLAGS = flags.FLAGS
EVAL_BATCH_SIZE = 500
APP = "train_semisupervised"

common_flags.define(dataset="digits", batch_size=32, epochs=10, learning_rate=1e-3)
common_flags.define_once(
    flags.DEFINE_integer,
    "labels_per_class",
    10,
    "Labelled training examples per class; the other training images are unlabelled.",
    lower_bound=1,
)
common_flags.define_once(
    flags.DEFINE_float,
    "reconstruction_weight",
    1.0,
    "Weight w of the reconstruction loss: L = CE + w * reconstruction.",
    lower_bound=0.0,
)
common_flags.define_once(
    flags.DEFINE_integer,
    "unlabelled_batch_size",
    128,
    "Unlabelled images per step (--batch_size counts the labelled ones). One epoch is "
    "(training images / unlabelled_batch_size) steps.",
    lower_bound=1,
)
common_flags.define_once(
    flags.DEFINE_enum, "encoder", "conv", semi_supervised.KINDS, "Encoder and decoder family."
)
common_flags.define_once(
    flags.DEFINE_integer, "code_units", 128, "Width of the code the head reads.", lower_bound=1
)
common_flags.define_once(
    flags.DEFINE_float, "dropout", 0.5, "Dropout on the code before the head, in [0, 1)."
)
common_flags.define_once(
    flags.DEFINE_list,
    "sweep_labels",
    [],
    "More labels-per-class settings for the accuracy-against-labels figure, e.g. 10,30.",
)
common_flags.define_once(
    flags.DEFINE_string,
    "export_figure",
    None,
    "Also save the main figure here (e.g. docs/ch2_semisupervised.png).",
)

MODEL_FLAGS = (
    "labels_per_class",
    "reconstruction_weight",
    "unlabelled_batch_size",
    "encoder",
    "code_units",
    "dropout",
    "sweep_labels",
    "export_figure",
)
# Shared flags this app does not implement; a non-default value is an error.
UNSUPPORTED = ("validation_fraction", "early_stopping_patience", "augment", "log_diagnostics")


def run(
    model_dir=None,
    *,
    labels_per_class=10,
    reconstruction_weight=1.0,
    unlabelled_batch_size=128,
    encoder="conv",
    code_units=128,
    dropout=0.5,
    sweep_labels=(),
    export_figure=None,
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
    progress=True,
    **unsupported,
):
    """Trains the semi-supervised model and its baseline; returns the metrics.

    Args:
      model_dir: output directory (default `runs/train_semisupervised-<dataset>`).
      labels_per_class: labelled examples per class.
      reconstruction_weight: `w` in `L = CE + w * REC`.
      unlabelled_batch_size: unlabelled images per step.
      encoder, code_units, dropout: the models (`semi_supervised.autoencoder_classifier`).
      sweep_labels: further labels-per-class settings, each trained as a pair too.
      export_figure: optional second path for `semisupervised.png`.
      progress: print progress lines.
      The rest: the shared flags (`apps/common_flags.py`); `batch_size` is the
      labelled batch, the same for both models.

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
        batch_size=batch_size,
        unlabelled_batch_size=unlabelled_batch_size,
        epochs=epochs,
        log_every=log_every,
        checkpoint_every=checkpoint_every,
    )
    common.check_non_negative(train_steps=train_steps, eval_every=eval_every)
    common.check_positive(learning_rate=learning_rate)
    if clip_norm:
        raise ValueError(f"{APP} does not support clip_norm. Received: clip_norm={clip_norm}")
    common.check_optimizer_impl(optimizer_impl)
    try:
        sweep = sorted({int(n) for n in sweep_labels} | {labels_per_class})
    except ValueError:
        raise ValueError(f"sweep_labels must be integers. Received: {sweep_labels}") from None
    info = mp.data.info(dataset)
    images, labels = mp.data.load_numpy(dataset, "train", data_dir)
    mean, std = mp.data.standardization_stats(dataset, data_dir)
    subsets = {n: semi_supervised.labelled_subset(labels, n, seed) for n in sweep}
    for n, (labelled, unlabelled) in subsets.items():
        if len(labelled) < batch_size or len(unlabelled) < unlabelled_batch_size:
            raise ValueError(
                f"with {n} labels per class, {len(labelled)} labelled and {len(unlabelled)} "
                f"unlabelled images do not fill a batch. Received: batch_size={batch_size}, "
                f"unlabelled_batch_size={unlabelled_batch_size}"
            )
    steps_per_epoch = max(1, len(images) // unlabelled_batch_size)
    train_steps = train_steps or epochs * steps_per_epoch
    model_dir = model_dir or common.default_model_dir(APP, dataset)
    hparams["model_dir"] = model_dir
    hparams["sweep_labels"] = [n for n in sweep if n != labels_per_class]

    seed_everything(seed, deterministic)
    strategy = make_strategy(strategy)
    schedule = make_schedule(lr_schedule, learning_rate, train_steps, warmup_steps=warmup_steps)
    test_data = mp.data.load(dataset, "test", data_dir, batch_size=EVAL_BATCH_SIZE)

    def new_optimizer():
        if optimizer_impl == "mp":
            from mp.training import optimizers

            return optimizers.get(optimizer, schedule)
        return make_optimizer(optimizer, schedule)

    def build():
        # The same seed before each build: both models start from the same weights.
        seed_everything(seed, deterministic)
        with strategy.scope():
            return semi_supervised.autoencoder_classifier(
                info.image_shape,
                info.num_classes,
                kind=encoder,
                code_units=code_units,
                dropout=dropout,
            )

    def trainer(task, directory):
        return Trainer(
            task,
            directory,
            train_steps=train_steps,
            strategy=strategy,
            log_every=log_every,
            checkpoint_every=checkpoint_every,
            eval_every=eval_every,
            jit_compile=jit_compile,
            progress=progress,
        )

    # Every trainer restores its checkpoint (or refuses one that does not fit)
    # before a byte is written.
    runs = {}
    for n in sweep:
        labelled, unlabelled = subsets[n]
        directory = model_dir if n == labels_per_class else os.path.join(model_dir, f"labels_{n}")
        encoder_model, decoder_model, head_model = build()
        semi_task = semi_supervised.SemiSupervisedTask(
            encoder_model, decoder_model, head_model, new_optimizer, reconstruction_weight
        )
        encoder_model, _, head_model = build()
        supervised_task = ClassificationTask(
            semi_supervised.classifier(encoder_model, head_model), new_optimizer
        )
        data = _data_functions(
            images, labels, labelled, unlabelled, batch_size, unlabelled_batch_size, seed, mean, std
        )
        runs[n] = {
            "semi": (trainer(semi_task, directory), data[0]),
            "supervised": (
                trainer(supervised_task, os.path.join(directory, "supervised")),
                data[1],
            ),
            "labelled": len(labelled),
            "unlabelled": len(unlabelled),
        }
    common.start_run(model_dir, hparams)

    # --- train: each pair, the main setting first ---------------------------
    results = {}
    for n in sorted(sweep, key=lambda n: n != labels_per_class):
        results[n] = {}
        for mode in ("semi", "supervised"):
            trainer_, data = runs[n][mode]
            if progress:
                print(f"{mode}: {n} labels per class", flush=True)
            result = trainer_.fit(data, test_data)
            results[n][mode] = {"result": result, "history": trainer_.history}
        main = runs[n]["semi"][0]
        common.save_model(main.task.classifier, os.path.join(main.model_dir, "model.keras"))
        baseline = runs[n]["supervised"][0]
        common.save_model(baseline.task.model, os.path.join(baseline.model_dir, "model.keras"))

    # --- figures, metrics.json last -----------------------------------------
    semi_task = runs[labels_per_class]["semi"][0].task
    figure = _figure(results, labels_per_class, dataset, reconstruction_weight)
    common.save_figure(figure, os.path.join(model_dir, "semisupervised.png"))
    if export_figure:
        os.makedirs(os.path.dirname(os.path.abspath(export_figure)), exist_ok=True)
        common.save_figure(figure, export_figure)
    test_images = next(iter(test_data))[0][:10]
    common.save_figure(
        _reconstructions_figure(test_images.numpy(), semi_task, mean, std),
        os.path.join(model_dir, "reconstructions.png"),
    )
    main = results[labels_per_class]
    semi_eval, supervised_eval = (
        main["semi"]["result"]["eval"],
        main["supervised"]["result"]["eval"],
    )
    metrics = {
        "app": APP,
        "dataset": dataset,
        "encoder": encoder,
        "labels_per_class": labels_per_class,
        "labelled_examples": runs[labels_per_class]["labelled"],
        "unlabelled_examples": runs[labels_per_class]["unlabelled"],
        "reconstruction_weight": reconstruction_weight,
        "num_parameters": int(semi_task.classifier.count_params()),
        "global_step": main["semi"]["result"]["global_step"],
        "supervised_global_step": main["supervised"]["result"]["global_step"],
        "train_steps": train_steps,
        "resumed_from_step": main["semi"]["result"]["resumed_from_step"],
        "test_accuracy": semi_eval["top1"],
        "test_loss": semi_eval["loss"],
        "test_reconstruction": semi_eval["reconstruction"],
        "supervised_test_accuracy": supervised_eval["top1"],
        "supervised_test_loss": supervised_eval["loss"],
        "test_examples": semi_eval["count"],
        "sweep": [
            {
                "labels_per_class": n,
                "test_accuracy": results[n]["semi"]["result"]["eval"]["top1"],
                "supervised_test_accuracy": results[n]["supervised"]["result"]["eval"]["top1"],
            }
            for n in sweep
        ],
        "train_seconds": sum(
            r["result"]["wall_seconds"] for v in results.values() for r in v.values()
        ),
        "wall_seconds": clock.seconds(),
        "num_replicas": strategy.num_replicas_in_sync,
    }
    common.write_json(os.path.join(model_dir, "metrics.json"), metrics)
    if progress:
        for row in metrics["sweep"]:
            print(
                f"{row['labels_per_class']} labels per class: test accuracy "
                f"{row['test_accuracy']:.4f} semi-supervised, "
                f"{row['supervised_test_accuracy']:.4f} supervised",
                flush=True,
            )
        print(
            f"after {metrics['global_step']} steps, {metrics['wall_seconds']:.1f} s; "
            f"artifacts in {model_dir}/",
            flush=True,
        )
    return metrics


def _data_functions(
    images, labels, labelled, unlabelled, batch_size, unlabelled_batch_size, seed, mean, std
):
    """`start_step -> Dataset` for both models: the same labelled batches, resumable."""

    def semi(start_step):
        return semi_supervised.semi_supervised_batches(
            images,
            labels,
            labelled,
            unlabelled,
            batch_size=batch_size,
            unlabelled_batch_size=unlabelled_batch_size,
            seed=seed,
            skip_batches=start_step,
            mean=mean,
            std=std,
        )

    def supervised(start_step):
        return semi_supervised.labelled_batches(
            images,
            labels,
            labelled,
            batch_size=batch_size,
            seed=seed,
            skip_batches=start_step,
            mean=mean,
            std=std,
        )

    return semi, supervised


def _figure(results, labels_per_class, dataset, reconstruction_weight):
    """Test accuracy against steps (main setting) and against labels per class."""
    plt = pyplot()
    fig, (curves, sweep) = plt.subplots(1, 2, figsize=(11, 4))
    styles = {"semi": ("semi-supervised", "C0"), "supervised": ("supervised only", "C1")}
    for mode, (label, color) in styles.items():
        run_ = results[labels_per_class][mode]
        # Evaluations during training (--eval_every), else the final one alone.
        evals = run_["history"]["eval"] or [(run_["result"]["global_step"], run_["result"]["eval"])]
        if evals:
            curves.plot(
                [s for s, _ in evals], [r["top1"] for _, r in evals], "o-", color=color, label=label
            )
        sizes = sorted(results)
        accuracies = [results[n][mode]["result"]["eval"]["top1"] for n in sizes]
        sweep.plot(sizes, accuracies, "o-", color=color, label=label)
        for n, a in zip(sizes, accuracies):
            sweep.annotate(
                f"{a:.3f}",
                (n, a),
                textcoords="offset points",
                xytext=(4, 4),
                fontsize=8,
                color=color,
            )
    curves.set_xlabel("global step")
    curves.set_ylabel("test accuracy")
    curves.set_title(f"{dataset}, {labels_per_class} labels per class")
    sweep.set_xscale("log")
    sizes = sorted(results)
    sweep.set_xticks(sizes, [str(n) for n in sizes])
    sweep.minorticks_off()
    sweep.set_xlabel("labelled examples per class")
    sweep.set_ylabel("final test accuracy")
    sweep.set_title(f"reconstruction weight {reconstruction_weight:g}")
    for ax in (curves, sweep):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    plt.close(fig)
    return fig


def _reconstructions_figure(images, task, mean, std):
    """Test images (top row) and their reconstructions by the decoder (bottom row)."""
    plt = pyplot()
    x_hat = task.decoder(task.encoder(images, training=False), training=False).numpy()
    fig, axes = plt.subplots(2, len(images), figsize=(1.2 * len(images), 2.6))
    for row, batch in enumerate((images, x_hat)):
        for ax, image in zip(axes[row], batch):
            ax.imshow(np.clip(image[..., 0] * std + mean, 0, 1), cmap="gray", vmin=0, vmax=1)
            ax.axis("off")
    axes[0][0].set_title("test images", loc="left", fontsize=9)
    axes[1][0].set_title("reconstructions", loc="left", fontsize=9)
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
