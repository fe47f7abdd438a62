"""Semi-supervised learning against its supervised baseline.

    python -m apps.train_semisupervised --flagfile=flags/semisupervised_fashion_mnist.cfg

`--labels_per_class` examples of each class keep their label; every other training image
is used without it. Two models with the same encoder and head (`mp.training.semi_supervised`),
initial weights, labelled batches and number of steps are trained and tested:

    semi-supervised   encoder + head + decoder on CE + w * reconstruction,
                      the reconstruction over labelled and unlabelled images
    supervised        encoder + head on the labelled images only (the baseline)

`--sweep_labels=10,30` repeats the pair for other numbers of labels per class (each in
`model_dir/labels_<n>/`) to draw accuracy against labels. model_dir receives the usual
outputs of the semi-supervised classifier, the baseline's run in `supervised/`, the figures
`semisupervised.png` (test accuracy against steps and labels per class) and
`reconstructions.png`, and last `metrics.json` (`test_accuracy`, `supervised_test_accuracy`).

Course: ch2.3 Regularization methods (semi-supervised learning).
"""

import os

from absl import flags

from apps import common, runner
from mp.training.semi_supervised import KINDS

runner.define_once(
    flags.DEFINE_integer,
    "labels_per_class",
    10,
    "Labelled training examples per class; the other training images are unlabelled.",
    lower_bound=1,
)
runner.define_once(
    flags.DEFINE_float,
    "reconstruction_weight",
    1.0,
    "Weight w of the reconstruction loss: L = CE + w * reconstruction.",
    lower_bound=0.0,
)
runner.define_once(
    flags.DEFINE_integer,
    "unlabelled_batch_size",
    128,
    "Unlabelled images per step (--batch_size counts the labelled ones). One epoch is "
    "(training images / unlabelled_batch_size) steps.",
    lower_bound=1,
)
runner.define_once(flags.DEFINE_enum, "encoder", "conv", KINDS, "Encoder and decoder family.")
runner.define_once(
    flags.DEFINE_integer, "code_units", 128, "Width of the code the head reads.", lower_bound=1
)
runner.define_once(
    flags.DEFINE_float, "dropout", 0.5, "Dropout on the code before the head, in [0, 1)."
)
runner.define_once(
    flags.DEFINE_list,
    "sweep_labels",
    [],
    "More labels-per-class settings for the accuracy-against-labels figure, e.g. 10,30.",
)
runner.define_once(
    flags.DEFINE_string,
    "export_figure",
    None,
    "Also save the main figure here (e.g. docs/ch2_semisupervised.png).",
)
APP = runner.App(
    "train_semisupervised",
    own=(
        "labels_per_class",
        "reconstruction_weight",
        "unlabelled_batch_size",
        "encoder",
        "code_units",
        "dropout",
        "sweep_labels",
        "export_figure",
    ),
    defaults={"batch_size": 32},
    # Its own labelled/unlabelled streams (no held-out split, no augmentation), two models.
    refuses=("validation_fraction", "early_stopping_patience", "augment", "log_diagnostics"),
)
MODES = {"semi": "semi-supervised", "supervised": "supervised only"}


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
    progress=True,
    **shared,
):
    """Trains the semi-supervised model and its baseline (per setting); returns the metrics.

    The own arguments are the flags above; `shared` the shared flags (`apps.runner.RunConfig`),
    `batch_size` the labelled batch of both models. Raises ValueError for arguments that do
    not fit, before anything is written.
    """
    import mp.data
    from mp.training import semi_supervised as ss

    own = {name: value for name, value in locals().items() if name in APP.own}
    common.check_counts(unlabelled_batch_size=unlabelled_batch_size)
    others = common.positive_ints("sweep_labels", sweep_labels) if len(sweep_labels) else ()
    sweep = sorted({*others, labels_per_class})
    own["sweep_labels"] = [n for n in sweep if n != labels_per_class]
    config = APP.config(shared | {"model_dir": model_dir})
    run = runner.Experiment(APP, config, own, progress=progress)
    info = mp.data.info(config.dataset)
    images, labels = mp.data.load_numpy(config.dataset, "train", config.data_dir)
    mean, std = mp.data.standardization_stats(config.dataset, config.data_dir)
    streams = {"batch_size": config.batch_size, "unlabelled_batch_size": unlabelled_batch_size}
    streams |= {"seed": config.seed, "mean": mean, "std": std}
    data = {n: ss.SemiSupervisedData(images, labels, n, **streams) for n in sweep}
    train_steps = run.train_steps(len(images), unlabelled_batch_size)
    optimizer = run.optimizer(train_steps)
    options = {"kind": encoder, "code_units": code_units, "dropout": dropout}
    options |= {"seed": config.seed, "clip_norm": run.clip_norm}
    trainers, where = {}, {}  # semi-supervised in model_dir or labels_<n>/, baselines below
    for n in sweep:
        with run.strategy.scope():
            tasks = ss.make_tasks(
                info.image_shape, info.num_classes, optimizer, reconstruction_weight, **options
            )
        directory = "." if n == labels_per_class else f"labels_{n}"
        for mode, task, sub in zip(MODES, tasks, (directory, f"{directory}/supervised")):
            where[n, mode] = os.path.normpath(sub)
            folder = os.path.normpath(run.path(where[n, mode]))
            trainers[n, mode] = run.trainer(task, train_steps, model_dir=folder)

    test_data = run.load("test")
    results = {}
    for n in sorted(sweep, key=lambda n: n != labels_per_class):  # the main setting first
        batches = {"semi": data[n].semi_supervised_data(), "supervised": data[n].supervised_data()}
        for mode in MODES:
            if progress:
                print(f"{mode}: {n} labels per class", flush=True)
            results[n, mode] = trainers[n, mode].fit(batches[mode], test_data)
            run.export(trainers[n, mode].task, os.path.join(where[n, mode], "model.keras"))

    # --- figures, metrics.json last -----------------------------------------------
    accuracy = {m: {n: results[n, m]["eval"]["top1"] for n in sweep} for m in MODES}
    figure = ss.sweep_figure(
        {MODES[m]: trainers[labels_per_class, m].history["eval"] for m in MODES},
        {MODES[m]: accuracy[m] for m in MODES},
        labels_per_class=labels_per_class,
        dataset=config.dataset,
        reconstruction_weight=reconstruction_weight,
    )
    run.save_figure(figure, "semisupervised.png")
    if export_figure:
        os.makedirs(os.path.dirname(os.path.abspath(export_figure)), exist_ok=True)
        common.save_figure(figure, export_figure)
    semi = trainers[labels_per_class, "semi"].task
    images = next(iter(test_data))[0][:10].numpy()
    figure = ss.reconstructions_figure(images, semi.encoder, semi.decoder, mean=mean, std=std)
    run.save_figure(figure, "reconstructions.png")
    main, baseline = results[labels_per_class, "semi"], results[labels_per_class, "supervised"]
    metrics = run.metrics(main, train_steps) | {
        "encoder": encoder,
        "labels_per_class": labels_per_class,
        "labelled_examples": len(data[labels_per_class].labelled),
        "unlabelled_examples": len(data[labels_per_class].unlabelled),
        "reconstruction_weight": reconstruction_weight,
        "num_parameters": int(semi.classifier.count_params()),
        "supervised_global_step": baseline["global_step"],
        "test_accuracy": main["eval"]["top1"],
        "test_loss": main["eval"]["loss"],
        "test_reconstruction": main["eval"]["reconstruction"],
        "supervised_test_accuracy": baseline["eval"]["top1"],
        "supervised_test_loss": baseline["eval"]["loss"],
        "test_examples": main["eval"]["count"],
        "sweep": [
            {
                "labels_per_class": n,
                "test_accuracy": accuracy["semi"][n],
                "supervised_test_accuracy": accuracy["supervised"][n],
            }
            for n in sweep
        ],
        "train_seconds": sum(result["wall_seconds"] for result in results.values()),
    }
    summary = "\n".join(
        f"{n} labels per class: test accuracy {accuracy['semi'][n]:.4f} semi-supervised, "
        f"{accuracy['supervised'][n]:.4f} supervised"
        for n in sweep
    )
    return run.finish(metrics, summary, history=trainers[labels_per_class, "semi"].history)


flag_values = APP.flag_values

if __name__ == "__main__":
    APP.cli(run)
