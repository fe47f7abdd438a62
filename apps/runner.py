"""The experiment runner every app shares: one description of the shared flags, one run.

An app is three things: how to build its task, its data, and its report. The
rest is here, once:

    App("train_cnn", refuses=...)      which shared flags it honours, its own flags
    RunConfig(...)                     the shared flags, described and validated once
                                       (both in apps/config.py, imported from here)
    Experiment(app, config, own)       seed, strategy, precision, schedule, optimizer,
                                       Trainer, fit;
                                       and, from apps/outputs.py, the folder's lock,
                                       flags.cfg, history, figures, model.keras and, last
                                       and atomically, metrics.json

A shared flag that an app cannot honour is refused with one line naming it
(exit 2), never silently ignored. The exit codes are `apps.common`'s.
"""

import os
import sys

from apps import common
from apps.config import App, RunConfig, define_once  # noqa: F401 - an app imports the runner only
from apps.outputs import Outputs

EVAL_BATCH_SIZE = 500


class Experiment(Outputs):
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
        self._previous_precision = None
        self._started = False

    # --- set-up -------------------------------------------------------------

    def train_steps(self, num_examples=None, batch_size=None, *, steps_per_epoch=None):
        """`--train_steps`, or `--epochs` passes over `num_examples` at `batch_size`.

        A task with an epoch of its own (a synthetic problem, text segments) gives
        `steps_per_epoch` instead of `num_examples`.

        Raises:
          ValueError: when one batch is larger than the training set.
        """
        batch_size = batch_size or self.config.batch_size
        if steps_per_epoch is None:
            steps_per_epoch = num_examples // batch_size
        self.steps_per_epoch = steps_per_epoch
        if steps_per_epoch == 0:
            what = (
                f"the {num_examples} training examples of {self.config.dataset}"
                if num_examples is not None
                else f"one epoch of {self.app.name}'s data"
            )
            raise ValueError(f"batch_size {batch_size} exceeds {what}")
        from_epochs = self.config.epochs * self.steps_per_epoch
        return self.config.train_steps or from_epochs

    @property
    def strategy(self):
        """The `tf.distribute` strategy; the first use seeds every generator and sets the
        precision policy (every app builds its models in this scope, so after both)."""
        if self._strategy is None:
            from mp.engine import make_strategy, seed_everything

            seed_everything(self.config.seed, self.config.deterministic)
            self.set_precision()
            self._strategy = make_strategy(self.config.strategy)
        return self._strategy

    def set_precision(self):
        """Sets Keras' global dtype policy to `--precision` (`mp.engine.precision`), once;
        `finish` restores the previous one, so an in-process run does not leak it."""
        from mp.engine import precision

        if self._previous_precision is None:
            self._previous_precision = precision.set_precision(self.config.precision)
            if self.config.precision == "mixed_float16" and self.progress:
                import tensorflow as tf

                if not tf.config.list_physical_devices("GPU"):
                    print(
                        "warning: --precision=mixed_float16 without a GPU: CPUs have few "
                        "float16 kernels (a convolution ran ~250x slower than float32 here); "
                        "use mixed_bfloat16 on a CPU",
                        file=sys.stderr,
                        flush=True,
                    )

    def restore_precision(self):
        """Puts back the global dtype policy that `set_precision` replaced."""
        from mp.engine import precision

        if self._previous_precision is not None:
            precision.restore(self._previous_precision)
            self._previous_precision = None

    def optimizer(self, train_steps, learning_rate=None, name=None, **kwargs):
        """A factory of the configured optimizer under the configured schedule.

        `learning_rate` and `name` replace the flags' (e.g. a GAN's two rates);
        `kwargs` go to Keras' optimizer (e.g. `beta_1`). Under `--precision=mixed_float16`
        the optimizer scales the loss (`keras.optimizers.LossScaleOptimizer`).
        """
        from mp.engine import make_optimizer, make_schedule
        from mp.engine.precision import loss_scaled

        c = self.config
        schedule = make_schedule(
            c.lr_schedule, learning_rate or c.learning_rate, train_steps, warmup_steps=c.warmup_steps
        )
        name = name or c.optimizer

        def make():
            if c.optimizer_impl == "mp":
                from mp.training import optimizers

                return loss_scaled(optimizers.get(name, schedule, **kwargs), c.precision)
            return loss_scaled(make_optimizer(name, schedule, **kwargs), c.precision)

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

    def image_data(self, test_images, images, binarize, seed):
        """The data of a chapter 5 run on (binarised) images, from an `images` module.

        `images` is `mp.generative.vae` or `.autoregressive`: its `training_images` turns
        batches into the model's images (the same bits from any step on).

        Returns:
          `(train_data, test_x, test_data, validation_data)`: `start_step -> dataset`, the
          test images as an array and in batches, and validation batches or `None`.
        """
        import tensorflow as tf

        data = self.train_data(standardize=False, prefetch=False)

        def train_data(start_step):
            """The same batches and the same bits, in the same order, from any step on."""
            batches = data(start_step)
            return images.training_images(batches, binarize, seed, start_step).prefetch(2)

        test_x = images.evaluation_images(test_images, binarize)
        test_data = tf.data.Dataset.from_tensor_slices(test_x).batch(EVAL_BATCH_SIZE)
        validation_data = None
        if self.config.validation_fraction:
            validation = self.load("validation", standardize=False)
            validation_data = images.training_images(validation, binarize, seed)
        return train_data, test_x, test_data, validation_data

    def trainer(self, task, train_steps, *, model_dir=None, **kwargs):
        """A `Trainer` with the configured loop settings; then writes `flags.cfg` once.

        The trainer restores a checkpoint found in `model_dir` (and refuses one that does
        not fit) before anything is written there. `kwargs` override the flags' values.
        """
        from mp.engine import Trainer

        c = self.config
        self._check_folder()
        strategy = self.strategy  # made (and seeded) first: it tells which worker is the chief
        if os.path.isdir(self.model_dir) and self._chief():  # a run to resume: keep others out
            self.lock()
        options = dict(
            train_steps=train_steps,
            strategy=strategy,
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

    def fit(self, trainer, train_data, test_data, validation_data=None):
        """Trains; returns `(result, test_evaluation)`.

        Evaluations during training use `validation_data` when there is one (the test split
        is then scored once, at the end), else `test_data`.
        """
        result = trainer.fit(train_data, validation_data or test_data)
        evaluation = trainer.evaluate(test_data) if validation_data else result["eval"]
        return result, evaluation

    # --- outputs ----------------------------------------------------------------
