"""Flags every training app shares (CONVENTIONS section 4).

`define()` declares them; `hparams()` reads them back as the keyword
arguments of the apps' `run(...)`. The library never reads FLAGS.
"""

from absl import flags

from mp.data import DATASETS
from mp.engine import OPTIMIZERS, SCHEDULES, STRATEGIES

FLAGS = flags.FLAGS

COMMON = (
    "model_dir",
    "dataset",
    "data_dir",
    "batch_size",
    "epochs",
    "train_steps",
    "learning_rate",
    "optimizer",
    "optimizer_impl",
    "lr_schedule",
    "warmup_steps",
    "clip_norm",
    "seed",
    "deterministic",
    "strategy",
    "jit_compile",
    "log_every",
    "checkpoint_every",
    "eval_every",
    "early_stopping_patience",
    "validation_fraction",
    "augment",
    "log_diagnostics",
)


def define_once(define_fn, name, default, *args, **kwargs):
    """Defines a flag, or only sets its default if another app already defined it.

    Apps are imported side by side (tests), so definitions must be idempotent;
    defaults change before parsing, never after. `args` and `kwargs` go to
    `define_fn` after the name and default (e.g. the choices of `DEFINE_enum`).
    """
    if name in FLAGS:
        FLAGS.set_default(name, default)
    else:
        define_fn(name, default, *args, **kwargs)


def define(*, dataset="digits", batch_size=64, epochs=10, learning_rate=1e-3, optimizer="adam"):
    """Declares the shared flags with an app's own defaults."""
    if "model_dir" in FLAGS:
        for name, value in (
            ("dataset", dataset),
            ("batch_size", batch_size),
            ("epochs", epochs),
            ("learning_rate", learning_rate),
            ("optimizer", optimizer),
        ):
            FLAGS.set_default(name, value)
        return
    flags.DEFINE_string(
        "model_dir",
        None,
        "Output directory: checkpoints, summaries, "
        "model.keras, figures and metrics.json. A directory holding a "
        "checkpoint is resumed. Default: runs/<app>-<dataset>.",
    )
    flags.DEFINE_enum("dataset", dataset, DATASETS, "Dataset (mp.data).")
    flags.DEFINE_string(
        "data_dir",
        None,
        "Directory with the dataset's files "
        "(default: search $MP_DATA_DIR, ./data, /usr/share/datasets, Keras cache).",
    )
    flags.DEFINE_integer(
        "batch_size", batch_size, "Global batch size (over all replicas).", lower_bound=1
    )
    flags.DEFINE_integer(
        "epochs", epochs, "Passes over the training set (if train_steps is 0).", lower_bound=1
    )
    flags.DEFINE_integer(
        "train_steps", 0, "Total training steps; 0 derives them from epochs.", lower_bound=0
    )
    flags.DEFINE_float("learning_rate", learning_rate, "Initial (peak) learning rate.")
    flags.DEFINE_enum("optimizer", optimizer, OPTIMIZERS, "Update rule (ch2).")
    flags.DEFINE_enum(
        "optimizer_impl",
        "keras",
        ["keras", "mp"],
        "Whose optimizer: Keras' built-in or the package's own, written from the "
        "update rules (mp.training.optimizers).",
    )
    flags.DEFINE_enum("lr_schedule", "constant", SCHEDULES, "Learning-rate schedule.")
    flags.DEFINE_integer(
        "warmup_steps", 0, "Linear warm-up steps (cosine schedule).", lower_bound=0
    )
    flags.DEFINE_float(
        "clip_norm", 0.0, "Clip gradients to this global norm; 0 disables.", lower_bound=0.0
    )
    flags.DEFINE_integer("seed", 0, "Seed of weights, data order and augmentation.")
    flags.DEFINE_boolean(
        "deterministic", False, "Deterministic TF ops (slower; same seed, " "same result)."
    )
    flags.DEFINE_enum(
        "strategy",
        "default",
        STRATEGIES,
        "tf.distribute strategy; " "multi_worker reads TF_CONFIG.",
    )
    flags.DEFINE_boolean("jit_compile", False, "Compile the training step with XLA.")
    flags.DEFINE_integer(
        "log_every", 100, "Steps between progress lines and summaries.", lower_bound=1
    )
    flags.DEFINE_integer("checkpoint_every", 1000, "Steps between checkpoints.", lower_bound=1)
    flags.DEFINE_integer(
        "eval_every",
        0,
        "Steps between evaluations during training (learning "
        "curves): on the validation split if there is one, else on the test "
        "split; 0 evaluates at the end only.",
        lower_bound=0,
    )
    flags.DEFINE_float(
        "validation_fraction",
        0.0,
        "Share of the training split held out "
        "(fixed, stratified) for evaluations during training.",
        lower_bound=0.0,
        upper_bound=0.9,
    )
    flags.DEFINE_integer(
        "early_stopping_patience",
        0,
        "Stop after this many evaluations "
        "without a lower validation loss and keep the best weights; 0 "
        "disables. Needs --validation_fraction and --eval_every.",
        lower_bound=0,
    )
    flags.DEFINE_boolean("augment", False, "Random shifts (and flips where they keep the label).")
    flags.DEFINE_boolean(
        "log_diagnostics",
        False,
        "Log the dead-ReLU fraction and per-layer gradient norms every --log_every steps "
        "(ch2.1); metrics.json gets dead_relu_fraction.",
    )
    flags.register_validator(
        "learning_rate", lambda v: v > 0, message="--learning_rate must be positive"
    )


def define_fid():
    """The FID flags of the generative apps (train_vae, train_gan): same names, same meaning."""
    define_once(
        flags.DEFINE_integer,
        "fid_samples",
        5000,
        "Samples scored by the FID (at most the classifier's held-out images, which give the "
        "floor with as many).",
        lower_bound=2,
    )
    define_once(
        flags.DEFINE_string,
        "fid_cache_dir",
        None,
        "Where the FID's feature classifier is cached (default $MP_CACHE_DIR or ~/.cache/mp).",
    )


def hparams(names=COMMON):
    """The current values of the flags `names`, as keyword arguments."""
    return {name: FLAGS[name].value for name in names}
