"""The shared flags, described once, and what each app declares about them.

    RunConfig   every shared flag: name, type, default, help, bounds; validated once
    App         an app's name, its own flags, its defaults and the shared flags it refuses

A shared flag an app cannot honour is refused with one line naming it (exit 2), never
silently ignored. `apps.runner` runs the experiment."""

import dataclasses
import math

from absl import flags

from apps import common
from mp.data import DATASETS
from mp.engine import OPTIMIZERS, SCHEDULES, STRATEGIES
from mp.engine.precision import PRECISIONS

FLAGS = flags.FLAGS


def _flag(default, help, *, kind=None, choices=None, lower=None, upper=None):
    meta = {"help": help, "kind": kind, "choices": choices, "lower": lower, "upper": upper}
    return dataclasses.field(default=default, metadata=meta)


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """The shared flags: name, type, default, help and bounds, in one place.

    Each field is one `--flag` of every app (its kind, bounds and choices make the
    absl definition) and one keyword of every app's `run(...)`. `validate()` checks
    the values once, whichever way they came (command line or a notebook).
    """

    model_dir: str = _flag(
        None,
        "Output directory: checkpoints, summaries, model.keras, figures and metrics.json. "
        "A directory holding a checkpoint is resumed. Default: runs/<app>-<dataset>.",
        kind="string",
    )
    dataset: str = _flag("digits", "Dataset (mp.data).", choices=DATASETS)
    data_dir: str = _flag(
        None, "Folder of the dataset's files (default: data/README.md's search).", kind="string"
    )
    batch_size: int = _flag(64, "Global batch size (over all replicas).", lower=1)
    epochs: int = _flag(10, "Passes over the training set (if train_steps is 0).", lower=1)
    train_steps: int = _flag(0, "Total training steps; 0 derives them from epochs.", lower=0)
    learning_rate: float = _flag(1e-3, "Initial (peak) learning rate.", lower=0.0)
    optimizer: str = _flag("adam", "Update rule (ch2).", choices=OPTIMIZERS)
    optimizer_impl: str = _flag(
        "keras",
        "Whose optimizer: Keras' built-in or the package's own, written from the update "
        "rules (mp.training.optimizers).",
        choices=("keras", "mp"),
    )
    lr_schedule: str = _flag("constant", "Learning-rate schedule.", choices=SCHEDULES)
    warmup_steps: int = _flag(0, "Linear warm-up steps (cosine schedule).", lower=0)
    clip_norm: float = _flag(0.0, "Clip gradients to this global norm; 0 disables.", lower=0.0)
    seed: int = _flag(0, "Seed of weights, data order, augmentation and sampling.")
    deterministic: bool = _flag(False, "Deterministic TF ops (slower; same seed, same result).")
    strategy: str = _flag(
        "default", "tf.distribute strategy; multi_worker reads TF_CONFIG.", choices=STRATEGIES
    )
    jit_compile: bool = _flag(False, "Compile the training step with XLA.")
    precision: str = _flag(
        "float32",
        "Keras' dtype policy: mixed_* compute in 16 bits with float32 variables, logits and "
        "losses (faster on CPUs with AVX-512 bf16, GPUs); a checkpoint resumes under any.",
        choices=PRECISIONS,
    )
    run_eagerly: bool = _flag(False, "Run the step op by op to debug it (slow; prints work).")
    resume_from_step: int = _flag(
        None,
        "Resume from the checkpoint of this step instead of the newest (e.g. from before a "
        "divergence); the newer checkpoints move to ckpt/discarded/. Not recorded in flags.cfg.",
        kind="int",
        lower=1,
    )
    log_every: int = _flag(100, "Steps between progress lines and summaries.", lower=1)
    checkpoint_every: int = _flag(1000, "Steps between checkpoints.", lower=1)
    eval_every: int = _flag(
        0,
        "Steps between evaluations during training (learning curves): on the validation "
        "split if there is one, else on the test split; 0 evaluates at the end only.",
        lower=0,
    )
    early_stopping_patience: int = _flag(
        0,
        "Stop after this many evaluations without a lower validation loss and keep the best "
        "weights; 0 disables. Needs --validation_fraction and --eval_every.",
        lower=0,
    )
    validation_fraction: float = _flag(
        0.0, "Share of the training split held out (fixed, stratified).", lower=0.0, upper=0.9
    )
    augment: bool = _flag(False, "Random shifts (and flips where they keep the label).")
    log_diagnostics: bool = _flag(
        False,
        "Log the dead-ReLU fraction and per-layer gradient norms every --log_every steps "
        "(ch2.1); metrics.json gets dead_relu_fraction.",
    )

    @classmethod
    def names(cls):
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def default(cls, name):
        return next(f.default for f in dataclasses.fields(cls) if f.name == name)

    def validate(self):
        """Raises ValueError naming the first shared value that is out of its range."""
        for field in dataclasses.fields(self):
            name, value, meta = field.name, getattr(self, field.name), field.metadata
            if value is None and field.default is None:
                continue
            kind = _kind(field)
            if kind is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                what = {int: "an integer", float: "a number", str: "a string"}.get(kind, "a boolean")
                raise ValueError(f"{name} must be {what}. Received: {name}={value!r}")
            if kind is float and not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number. Received: {name}={value}")
            if meta["choices"] and value not in meta["choices"]:
                choices = ", ".join(meta["choices"])
                raise ValueError(f"{name} must be one of {choices}. Received: {name}={value!r}")
            if meta["lower"] is not None and value < meta["lower"]:
                raise ValueError(f"{name} must be >= {meta['lower']}. Received: {name}={value}")
            if meta["upper"] is not None and value > meta["upper"]:
                raise ValueError(f"{name} must be <= {meta['upper']}. Received: {name}={value}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be positive. Received: {self.learning_rate}")
        if self.early_stopping_patience and not (self.eval_every and self.validation_fraction):
            raise ValueError(
                "early_stopping_patience needs eval_every > 0 and validation_fraction > 0: "
                "early stopping compares validation losses, never test ones"
            )


def _kind(field):
    kind = field.metadata["kind"]
    if kind == "string" or field.metadata["choices"]:
        return str
    return int if kind == "int" else field.type


def _define(field, default):
    meta = field.metadata
    if meta["choices"]:
        flags.DEFINE_enum(field.name, default, list(meta["choices"]), meta["help"])
        return
    kind = _kind(field)
    if kind is str:
        flags.DEFINE_string(field.name, default, meta["help"])
    elif kind is bool:
        flags.DEFINE_boolean(field.name, default, meta["help"])
    else:
        define = flags.DEFINE_integer if kind is int else flags.DEFINE_float
        define(
            field.name, default, meta["help"], lower_bound=meta["lower"], upper_bound=meta["upper"]
        )


def define_once(define_fn, name, default, *args, **kwargs):
    """Defines an app's own flag, or only sets its default if another app defined it.

    Apps are imported side by side (tests, `apps.compare`), so definitions are
    idempotent; defaults change before parsing, never after.
    """
    if name in FLAGS:
        FLAGS.set_default(name, default)
    else:
        define_fn(name, default, *args, **kwargs)


class App:
    """What an app declares: its name, its own flags, its defaults and what it refuses.

    Args:
      name: the app's module name (`train_cnn`), for messages and `runs/<name>-<dataset>`.
      own: the names of the app's own flags (defined by the app with `define_once`).
      defaults: the app's defaults of shared flags, e.g. `{"epochs": 50}`.
      refuses: the shared flags the app cannot honour; a value other than the shared
        default is an error naming them. A dict maps each to the reason, which the error
        gives (e.g. what to use instead).
    """

    def __init__(self, name, *, own=(), defaults=None, refuses=()):
        self.name = name
        self.own = tuple(own)
        self.defaults = dict(defaults or {})
        self.refuses = tuple(refuses)
        self.reasons = dict(refuses) if isinstance(refuses, dict) else {}
        for key in (*self.defaults, *self.refuses):
            if key not in RunConfig.names():
                raise ValueError(f"{name}: {key} is not a shared flag")
        self.supported = tuple(n for n in RunConfig.names() if n not in self.refuses)
        for field in dataclasses.fields(RunConfig):
            default = self.defaults.get(field.name, field.default)
            if field.name in FLAGS:
                FLAGS.set_default(field.name, default)
            else:
                _define(field, default)

    def config(self, shared):
        """The validated `RunConfig` of the keyword arguments `shared` (app defaults applied).

        Raises:
          ValueError: for an unknown keyword, a refused flag that is set, or a value out of
            range, naming it.
        """
        unknown = set(shared) - set(RunConfig.names())
        if unknown:
            raise ValueError(f"{self.name} has no option {', '.join(sorted(unknown))}")
        given = [
            f"--{n}={shared[n]}"
            for n in self.refuses
            if n in shared and shared[n] != RunConfig.default(n)
        ]
        if given:
            names = [g.split("=")[0][2:] for g in given]
            why = "; ".join(self.reasons[n] for n in names if n in self.reasons)
            raise ValueError(
                f"{self.name} cannot honour {', '.join(given)}; leave "
                f"{'it' if len(given) == 1 else 'them'} unset" + (f" ({why})" if why else "")
            )
        config = RunConfig(**(self.defaults | shared))
        config.validate()
        return config

    def flag_values(self):
        """The keyword arguments of the app's `run` as the parsed flags give them.

        A refused flag is passed on when it was given, so that `config` refuses it.
        """
        given = tuple(n for n in self.refuses if FLAGS[n].present)
        return {n: FLAGS[n].value for n in (*self.own, *self.supported, *given)}

    def cli(self, run):
        """`python -m apps.<name>`: runs `run(**flag_values())` under the error contract."""

        def main(argv):
            del argv
            run(**self.flag_values())

        common.cli(main)
