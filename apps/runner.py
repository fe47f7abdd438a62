"""The experiment runner every app shares: one description of the shared flags, one run.

An app is three things: how to build its task, its data, and its report. The
rest is here, once:

    App("train_cnn", refuses=...)      which shared flags it honours, its own flags
    RunConfig(...)                     the shared flags, described and validated once
    Experiment(app, config, own)       seed, strategy, schedule, optimizer, Trainer, fit,
                                       history, figures, model.keras, flags.cfg and,
                                       last and atomically, metrics.json

A shared flag that an app cannot honour is refused with one line naming it
(exit 2), never silently ignored. The exit codes are `apps.common`'s.
"""

import dataclasses
import math
import os

from absl import flags

from apps import common
from mp.data import DATASETS
from mp.engine import OPTIMIZERS, SCHEDULES, STRATEGIES

FLAGS = flags.FLAGS
EVAL_BATCH_SIZE = 500


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
        None,
        "Directory with the dataset's files "
        "(default: search $MP_DATA_DIR, ./data, /usr/share/datasets, Keras cache).",
        kind="string",
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
    run_eagerly: bool = _flag(
        False, "Run the training step eagerly, op by op, to debug it (slow; prints work)."
    )
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
        0.0,
        "Share of the training split held out (fixed, stratified) for evaluations during "
        "training.",
        lower=0.0,
        upper=0.9,
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
            value, meta = getattr(self, field.name), field.metadata
            if value is None and field.default is None:
                continue
            kind = _kind(field)
            ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
            if kind is float and isinstance(value, int) and not isinstance(value, bool):
                ok = True
            if not ok:
                raise ValueError(
                    f"{field.name} must be a {kind.__name__}. Received: {field.name}={value!r}"
                )
            if meta["choices"] and value not in meta["choices"]:
                raise ValueError(
                    f"{field.name} must be one of {', '.join(meta['choices'])}. "
                    f"Received: {field.name}={value!r}"
                )
            if meta["lower"] is not None and value < meta["lower"]:
                raise ValueError(
                    f"{field.name} must be >= {meta['lower']}. Received: {field.name}={value}"
                )
            if meta["upper"] is not None and value > meta["upper"]:
                raise ValueError(
                    f"{field.name} must be <= {meta['upper']}. Received: {field.name}={value}"
                )
        for name in ("learning_rate", "clip_norm", "validation_fraction"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"{name} must be a finite number. Received: {getattr(self, name)}")
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
        default is an error naming them.
    """

    def __init__(self, name, *, own=(), defaults=None, refuses=()):
        self.name = name
        self.own = tuple(own)
        self.defaults = dict(defaults or {})
        self.refuses = tuple(refuses)
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
            raise ValueError(
                f"{self.name} cannot honour {', '.join(given)} (it does not use "
                f"{'that flag' if len(given) == 1 else 'these flags'}); leave it unset"
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


class Experiment:
    """One run of an app: the set-up, the training and the outputs every app shares.

    Construct it once every argument has been checked; nothing is written to
    `model_dir` until `trainer()` (or `start()`) has checked the checkpoint too.

    Args:
      app: the `App`.
      config: its `RunConfig`.
      own: the app's own hyperparameters, recorded in `flags.cfg`.
      progress: print progress and a closing line.
    """

    def __init__(self, app, config, own=None, *, progress=True):
        self.clock = common.Clock()
        self.app = app
        self.config = config
        self.progress = progress
        self.model_dir = config.model_dir or common.default_model_dir(app.name, config.dataset)
        values = vars(config)  # every supported value is recorded, whether the run reads it or not
        # resume_from_step is a one-off action: a replay of flags.cfg must not go back again.
        self.hparams = {n: values[n] for n in app.supported if n != "resume_from_step"}
        self.hparams.update(own or {}, model_dir=self.model_dir)
        self.steps_per_epoch = None
        self.trainers = []
        self._strategy = None
        self._started = False

    # --- set-up -------------------------------------------------------------

    def train_steps(self, num_examples, batch_size=None):
        """`--train_steps`, or `--epochs` passes over `num_examples` at `batch_size`.

        Raises:
          ValueError: when one batch is larger than the training set.
        """
        batch_size = batch_size or self.config.batch_size
        self.steps_per_epoch = num_examples // batch_size
        if self.steps_per_epoch == 0:
            raise ValueError(
                f"batch_size {batch_size} exceeds the {num_examples} training examples of "
                f"{self.config.dataset}"
            )
        from_epochs = self.config.epochs * self.steps_per_epoch
        return self.config.train_steps or from_epochs

    @property
    def strategy(self):
        """The `tf.distribute` strategy; the first use seeds every generator."""
        if self._strategy is None:
            from mp.engine import make_strategy, seed_everything

            seed_everything(self.config.seed, self.config.deterministic)
            self._strategy = make_strategy(self.config.strategy)
        return self._strategy

    def optimizer(self, train_steps, learning_rate=None, name=None, **kwargs):
        """A factory of the configured optimizer under the configured schedule.

        `learning_rate` and `name` replace the flags' (e.g. a GAN's two rates);
        `kwargs` go to Keras' optimizer (e.g. `beta_1`).
        """
        from mp.engine import make_optimizer, make_schedule

        c = self.config
        schedule = make_schedule(
            c.lr_schedule, learning_rate or c.learning_rate, train_steps, warmup_steps=c.warmup_steps
        )
        name = name or c.optimizer

        def make():
            if c.optimizer_impl == "mp":
                from mp.training import optimizers

                return optimizers.get(name, schedule, **kwargs)
            optimizer = make_optimizer(name, schedule)
            for key, value in kwargs.items():
                setattr(optimizer, key, value)
            return optimizer

        return make

    @property
    def clip_norm(self):
        return self.config.clip_norm or None

    def load(self, split, **kwargs):
        """`mp.data.load` of the configured dataset; evaluation splits in fixed batches."""
        import mp.data

        c = self.config
        if split == "train":
            kwargs.setdefault("batch_size", c.batch_size)
        else:
            kwargs.setdefault("batch_size", EVAL_BATCH_SIZE)
        if split != "test":
            kwargs.setdefault("validation_fraction", c.validation_fraction)
        return mp.data.load(c.dataset, split, c.data_dir, **kwargs)

    def train_data(self, **kwargs):
        """`start_step -> dataset`: the same batches in the same order from any step on."""
        c = self.config

        def data(start_step):
            return self.load(
                "train",
                shuffle=True,
                seed=c.seed,
                repeat=True,
                skip_batches=start_step,
                drop_remainder=True,
                augment=c.augment,
                **kwargs,
            )

        return data

    def trainer(self, task, train_steps, *, model_dir=None, **kwargs):
        """A `Trainer` with the configured loop settings; then writes `flags.cfg` once.

        The trainer restores a checkpoint found in `model_dir` (and refuses one that does
        not fit) before anything is written there. `kwargs` override the flags' values.
        """
        from mp.engine import Trainer

        c = self.config
        self._check_folder()
        if os.path.isdir(self.model_dir):  # a run to resume: nobody else may touch it meanwhile
            self.lock()
        options = dict(
            train_steps=train_steps,
            strategy=self.strategy,
            log_every=c.log_every,
            checkpoint_every=c.checkpoint_every,
            eval_every=c.eval_every,
            jit_compile=c.jit_compile,
            run_eagerly=c.run_eagerly,
            resume_from_step=c.resume_from_step,
            early_stopping_patience=c.early_stopping_patience,
            early_stopping_metric="loss",
            progress=self.progress,
        )
        trainer = Trainer(task, model_dir or self.model_dir, **(options | kwargs))
        self.trainers.append(trainer)
        self.start(trainer.resumed_from_step)
        return trainer

    def _check_folder(self):
        if os.path.exists(self.model_dir) and not os.path.isdir(self.model_dir):
            raise common.RunFolderError(
                f"model_dir {self.model_dir} is a file, not a folder; choose another --model_dir"
            )

    def lock(self):
        """Holds `model_dir` for this run: a second run on it is refused (mp.engine.lock)."""
        from mp.engine import lock

        lock.lock(self.model_dir)

    def start(self, resumed_from_step=None):
        """Locks `model_dir`, creates it and writes `flags.cfg` (once per run)."""
        if self._started:
            return
        self._check_folder()
        self.lock()
        common.start_run(self.model_dir, self.hparams, resumed_from_step, self.progress)
        self._started = True

    def fit(self, trainer, train_data, test_data, validation_data=None):
        """Trains; returns `(result, test_evaluation)`.

        Evaluations during training use `validation_data` when there is one (the test split
        is then scored once, at the end), else `test_data`.
        """
        result = trainer.fit(train_data, validation_data or test_data)
        evaluation = trainer.evaluate(test_data) if validation_data else result["eval"]
        return result, evaluation

    # --- outputs ----------------------------------------------------------------

    def path(self, name):
        return os.path.join(self.model_dir, name)

    def save_model(self, model, name="model.keras"):
        common.save_model(model, self.path(name))

    def export(self, task, name="model.keras"):
        """Saves what `task.export` saves (its main model), without leaving half a file."""
        common.atomic_write(self.path(name), task.export)

    def save_figure(self, figure, name):
        common.save_figure(figure, self.path(name))

    def metrics(self, result=None, train_steps=None):
        """The keys every app's `metrics.json` starts with."""
        metrics = {"app": self.app.name, "dataset": self.config.dataset}
        if result is not None:
            metrics |= {
                "global_step": result["global_step"],
                "train_steps": train_steps,
                "resumed_from_step": result["resumed_from_step"],
                "stopped_early": result["stopped_early"],
                "train_seconds": result["wall_seconds"],
                "num_replicas": self.strategy.num_replicas_in_sync,
            }
            if self.steps_per_epoch:
                metrics["epochs"] = round(result["global_step"] / self.steps_per_epoch, 3)
        return metrics

    def finish(self, metrics, summary=None, history=None):
        """Writes `history.json` (of the last trainer, or `history`), then `metrics.json` last.

        Adds `wall_seconds`; prints `summary` and where the artifacts are.
        """
        history = history if history is not None else (
            self.trainers[-1].history if self.trainers else None
        )
        if history is not None:
            common.write_json(self.path("history.json"), common.history_json(history))
        metrics["wall_seconds"] = self.clock.seconds()
        common.write_json(self.path("metrics.json"), metrics)
        from mp.engine import lock

        lock.unlock(self.model_dir)
        if self.progress and summary:
            print(
                f"{summary} after {metrics.get('global_step', '-')} steps, "
                f"{metrics['wall_seconds']:.1f} s; artifacts in {self.model_dir}/",
                flush=True,
            )
        return metrics
