"""The one training loop of the package.

`Trainer(task, model_dir, train_steps=...).fit(train_data, eval_data)` runs a
`mp.engine.Task` (classification, VAE, GAN, RL, ...) and does for every one of
them what the course's TensorFlow tips ask for:

* a `global_step` counter (int64, not the optimizer's: a GAN has two) that is
  saved in every checkpoint, so a restarted run resumes where it stopped and,
  with a data function of the start step, on the same batches;
* the step as a `tf.function` traced once, running `steps` updates per call
  in graph mode over one repeated iterator, optionally compiled with XLA; the
  outputs of a call are the means over its steps, except `charts/` outputs,
  which are its first step's (a chart such as the gradient norm, which costs a
  pass over every gradient, is computed on that step only);
* `tf.train.CheckpointManager` saves every `checkpoint_every` steps, at the
  end and on SIGINT/SIGTERM; a NaN or Inf loss stops the run before anything
  is saved, so the last good checkpoint stays the latest;
* `tf.summary` scalars under `model_dir/train` and `model_dir/eval`;
* `model_dir=None` trains in memory: no checkpoint, no summary, nothing written
  (a notebook's quick run, or a speed measurement against `Model.fit`);
* a progress bar on a terminal, plain lines otherwise (CI, log files);
* early stopping on an evaluation metric, restoring the best weights;
* any `tf.distribute` strategy: variables are made in its scope, steps run
  through `strategy.run`, returned values are summed over replicas.

Course: ch2.3 Regularization methods (early stopping), ch7.1 TensorFlow tips.
"""

import glob
import math
import os
import shutil
import signal
import sys
import threading
import time

import keras
import numpy as np
import tensorflow as tf
from tensorflow.core.util import event_pb2

from mp.engine import checkpoints
from mp.engine import strategy as strategy_lib


class TrainingDiverged(RuntimeError):
    """The loss became NaN or Inf; the last good checkpoint is kept."""


class Interrupted(Exception):
    """SIGINT or SIGTERM stopped the run after a checkpoint was saved."""

    def __init__(self, signum, step, checkpoint):
        self.signum = signum
        self.step = step
        self.checkpoint = checkpoint
        name = signal.Signals(signum).name
        if checkpoint is None:  # trained in memory (model_dir=None)
            super().__init__(f"{name} at step {step}; no model_dir, so nothing was saved.")
            return
        super().__init__(
            f"{name} at step {step}; checkpoint saved to {checkpoint}. "
            "Run the same command again to resume."
        )


def seed_everything(seed, deterministic=False):
    """Seeds Python, NumPy and TensorFlow; optionally makes TF ops deterministic."""
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()


def _next_multiple(step, every):
    return (step // every + 1) * every if every else math.inf


class _Progress:
    """A Keras progress bar on a terminal, one plain line per call otherwise.

    The stream is looked up when training starts (standard output by default), so that
    `contextlib.redirect_stdout` or a notebook's capture sees the lines.
    """

    def __init__(self, target, start, enabled, stream=None):
        self.target = target
        self.stream = sys.stdout if stream is None else stream
        self.enabled = enabled
        self.tty = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.bar = None
        if self.tty:
            self.bar = keras.utils.Progbar(target, unit_name="step", stateful_metrics=None)
            self.bar.update(start)

    def update(self, step, values):
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.stateful_metrics = set(values)
            self.bar.update(step, list(values.items()))
            return
        text = "  ".join(f"{k} {_format(v)}" for k, v in values.items())
        print(f"step {step}/{self.target}  {text}", file=self.stream, flush=True)

    def note(self, step, name, values):
        """A line of its own, e.g. the results of an evaluation (nested keys left out)."""
        if self.enabled:
            text = "  ".join(f"{k} {_format(v)}" for k, v in values.items() if "/" not in k)
            print(
                f"{'' if not self.tty else chr(10)}{name} at step {step}:  {text}",
                file=self.stream,
                flush=True,
            )


def _format(value):
    return f"{value:.4g}" if isinstance(value, float) else str(value)


class Trainer:
    """Trains a `Task`; see the module docstring.

    Args:
      task: the `mp.engine.Task` to train.
      model_dir: where checkpoints (`ckpt/`) and summaries (`train/`, `eval/`)
        go. A `model_dir` holding a checkpoint is resumed. `None` trains in
        memory and writes nothing (early stopping keeps the best weights in memory).
      train_steps: total number of steps, counted by `global_step`.
      strategy: a `tf.distribute.Strategy` or its name (`default`, `mirrored`,
        `multi_worker`); `None` is the default strategy.
      log_every: steps between progress lines and train summaries; also the
        number of steps one `tf.function` call runs.
      checkpoint_every: steps between checkpoints (one is saved at the end too).
      eval_every: steps between evaluations on `eval_data`; 0 evaluates only
        at the end.
      max_to_keep: checkpoints kept in `ckpt/` (several, to go back past a divergence).
      resume_from_step: resume from the checkpoint of this step instead of the newest
        (e.g. from before a divergence); the newer ones move to `ckpt/discarded/`.
      jit_compile: compile the step with XLA. Measure first: it sped up an MLP
        but slowed convolutions on a CPU (benchmarks/RESULTS.md).
      run_eagerly: run the steps op by op, without `tf.function`, to debug a step
        (prints and breakpoints work; slow).
      early_stopping_patience: stop after this many evaluations without
        improvement of `early_stopping_metric`, then restore the best weights.
        0 disables early stopping.
      early_stopping_metric: an eval metric name (`loss`, `top1`, ...).
      early_stopping_mode: `min` or `max`.
      progress: show progress; `None` shows it.
      diagnostics: an optional function `step -> {name: float}` called every
        `log_every` steps outside the compiled step (it may run the model on
        data of its own, e.g. to count dead ReLUs); its values are logged as
        `diagnostics/<name>` in the train summaries and in `history`.
    """

    def __init__(
        self,
        task,
        model_dir,
        *,
        train_steps,
        strategy=None,
        log_every=100,
        checkpoint_every=1000,
        eval_every=0,
        max_to_keep=5,
        resume_from_step=None,
        jit_compile=False,
        run_eagerly=False,
        early_stopping_patience=0,
        early_stopping_metric="loss",
        early_stopping_mode="min",
        progress=None,
        diagnostics=None,
    ):
        for name, value in (
            ("train_steps", train_steps),
            ("log_every", log_every),
            ("checkpoint_every", checkpoint_every),
        ):
            if not isinstance(value, (int, np.integer)) or value <= 0:
                raise ValueError(f"{name} must be a positive integer. Received: {name}={value}")
        if eval_every < 0 or early_stopping_patience < 0:
            raise ValueError(
                "eval_every and early_stopping_patience must be >= 0. Received: "
                f"eval_every={eval_every}, early_stopping_patience={early_stopping_patience}"
            )
        if early_stopping_mode not in ("min", "max"):
            raise ValueError(
                f"early_stopping_mode must be 'min' or 'max'. Received: {early_stopping_mode!r}"
            )
        self.task = task
        self.model_dir = None if model_dir is None else os.fspath(model_dir)
        self.train_steps = int(train_steps)
        if strategy is None or isinstance(strategy, str):
            strategy = strategy_lib.make_strategy(strategy or "default")
        self.strategy = strategy
        self.log_every = int(log_every)
        self.checkpoint_every = int(checkpoint_every)
        self.eval_every = int(eval_every)
        self.jit_compile = jit_compile and not run_eagerly
        self.run_eagerly = run_eagerly
        self.patience = int(early_stopping_patience)
        self.monitor = early_stopping_metric
        self.sign = 1.0 if early_stopping_mode == "min" else -1.0
        self.progress = True if progress is None else progress
        self.diagnostics = diagnostics
        self.chief = strategy_lib.is_chief(strategy)

        with strategy.scope():
            self.global_step = tf.Variable(
                0,
                dtype=tf.int64,
                trainable=False,
                name="global_step",
                aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
            )
            # Early-stopping state lives in the checkpoint, so a resumed run keeps it.
            self.best_value = tf.Variable(math.inf, dtype=tf.float64, trainable=False)
            self.bad_evals = tf.Variable(0, dtype=tf.int64, trainable=False)
            self.stopped_early = tf.Variable(False, trainable=False)
            task.global_step = self.global_step
            task.build()
        items = task.checkpoint_items()
        self.checkpoint = tf.train.Checkpoint(
            global_step=self.global_step,
            best_value=self.best_value,
            bad_evals=self.bad_evals,
            stopped_early=self.stopped_early,
            random_state=tf.train.Checkpoint(**random_state(items)),
            **items,
        )
        # The best weights: models only, so restoring them keeps the step count.
        self.best_checkpoint = tf.train.Checkpoint(
            **{k: v for k, v in items.items() if isinstance(v, keras.Model)}
        )
        # Restored before the manager reads the state file, which may be damaged. A constant
        # learning rate is a variable of the optimizer, so it is in the checkpoint too; the
        # rate asked for now wins (resuming with a lower rate is how a divergence is mended).
        rates = _constant_rates(items)
        self.resumed_from_step = 0
        self.manager = self.best_manager = None
        self._best_weights = None  # in memory, when there is no model_dir
        if self.model_dir is not None:
            # Every worker resumes from the chief's checkpoints; the others only read them.
            self.resumed_from_step = checkpoints.restore(
                self.checkpoint,
                os.path.join(self.model_dir, "ckpt"),
                resume_from_step=resume_from_step,
                read_only=not self.chief,
            )
            self.manager = tf.train.CheckpointManager(
                self.checkpoint,
                self._dir("ckpt"),
                max_to_keep=max_to_keep,
                step_counter=self.global_step,
            )
            self.best_manager = tf.train.CheckpointManager(
                self.best_checkpoint, self._dir(os.path.join("ckpt", "best")), max_to_keep=1
            )
        elif resume_from_step is not None:
            raise ValueError("resume_from_step needs a model_dir to resume from")
        for optimizer, rate in rates:
            optimizer.learning_rate = rate
        self._saved_step = self.resumed_from_step
        self._train_fn = None
        self._eval_fns = {}  # one traced evaluation per dataset signature
        self._signal = None
        self._vote = None
        self._logged = {}  # the last step in each summary folder's event files
        # What this process saw, for learning curves: (step, outputs) pairs.
        self.history = {"train": [], "eval": []}

    # --- bookkeeping -----------------------------------------------------

    def _dir(self, name):
        """`model_dir/name` on the chief; a throw-away folder on other workers."""
        if self.chief:
            return os.path.join(self.model_dir, name)
        task_id = self.strategy.cluster_resolver.task_id
        return os.path.join(self.model_dir, f".worker_{task_id}", name)

    def save(self, force=True):
        """Saves a checkpoint now (`force`) or if the step is a multiple of `checkpoint_every`.

        Returns the checkpoint's path, or `None` when nothing was due.
        """
        step = int(self.global_step.numpy())
        if step == self._saved_step or not (force or step % self.checkpoint_every == 0):
            return None
        self._saved_step = step
        if self.manager is None:
            return None
        try:
            return self.manager.save(checkpoint_number=step)
        except (tf.errors.OpError, OSError) as error:  # no space, read-only, ...
            checkpoints.remove_temporary(self._dir("ckpt"))
            reason = getattr(error, "message", None) or str(error)
            raise OSError(
                f"could not write the checkpoint of step {step} to {self._dir('ckpt')}: "
                f"{' '.join(reason.split())[:200]}"
            ) from error

    # --- the step functions ---------------------------------------------

    def _replica_step(self):
        step = self.task.train_step
        return tf.function(step, jit_compile=True) if self.jit_compile else step

    def _reduce(self, outputs):
        """Sums each replica's share; averages the values a task declares whole per replica."""
        whole = self.task.REPLICA_MEAN_PREFIXES
        return {
            k: self.strategy.reduce(
                tf.distribute.ReduceOp.MEAN if k.startswith(whole) else tf.distribute.ReduceOp.SUM,
                v,
                axis=None,
            )
            for k, v in outputs.items()
        }

    def _make_train_fn(self):
        replica_step = self._replica_step()

        def one_step(batch, chart):
            # `chart`: whether this step's `charts/` outputs are kept (Task.chart_step).
            self.task.chart_step = chart
            try:
                outputs = self._reduce(self.strategy.run(replica_step, args=(batch,)))
            finally:
                self.task.chart_step = None
            self.global_step.assign_add(1)
            return outputs

        if not self.run_eagerly:
            # Traced once as a function of its own and called twice below (the first step,
            # which also creates the optimizer's variables, and the loop's body): inlined
            # in the graph, the step's Python runs once instead of twice per trace.
            one_step = tf.function(one_step)

        def train_steps(iterator, steps):
            """Runs `steps` updates in graph mode; returns the mean of each output.

            `charts/` outputs are the first step's: a chart samples the run once per chunk.
            """
            totals = one_step(next(iterator), tf.constant(True))
            for _ in tf.range(steps - 1):
                outputs = one_step(next(iterator), tf.constant(False))
                totals = {k: v if _chart(k) else v + outputs[k] for k, v in totals.items()}
            return {k: v if _chart(k) else v / tf.cast(steps, v.dtype) for k, v in totals.items()}

        def python_step(batch):
            """One update from a batch a Python iterator produced (e.g. RL rollouts)."""
            return one_step(batch, tf.constant(True))

        if self.run_eagerly:
            return train_steps, python_step
        return tf.function(train_steps), tf.function(python_step, reduce_retracing=True)

    def _make_eval_fn(self, element_spec):
        @tf.function(input_signature=[element_spec])
        def eval_step(batch):
            return self._reduce(self.strategy.run(self.task.eval_step, args=(batch,)))

        return eval_step

    # --- public API -----------------------------------------------------

    def evaluate(self, data):
        """Means of the task's eval sums over `data` (a finite `tf.data.Dataset`)."""
        dist = self._distribute(data)
        key = repr(dist.element_spec)
        if key not in self._eval_fns:
            self._eval_fns[key] = self._make_eval_fn(dist.element_spec)
        eval_fn = self._eval_fns[key]
        totals = None
        for batch in dist:
            outputs = {k: v.numpy() for k, v in eval_fn(batch).items()}
            totals = outputs if totals is None else {k: totals[k] + outputs[k] for k in totals}
        if not totals or totals.get("count", 0) == 0:
            raise ValueError("evaluation data is empty")
        count = totals.pop("count")
        return {k: float(v / count) for k, v in totals.items()} | {"count": int(count)}

    def fit(self, train_data, eval_data=None):
        """Trains up to `train_steps`; returns a summary dict.

        Args:
          train_data: an infinite (repeated) batched `tf.data.Dataset`; or a
            function `start_step -> Dataset` so that a resumed run continues on
            the very batches it would have seen (`mp.data.load(skip_batches=...)`);
            or any Python iterator of batches (RL: it collects experience with
            the current policy each time it is asked for a batch).
          eval_data: a finite batched `tf.data.Dataset` evaluated every
            `eval_every` steps and at the end, or `None`.

        Returns:
          A dict with `global_step`, `resumed_from_step`, `stopped_early`,
          `wall_seconds`, `steps_per_sec`, the last `train` outputs and the final
          `eval` results (after restoring the best weights under early stopping).

        Raises:
          TrainingDiverged: the loss became NaN or Inf.
          Interrupted: SIGINT/SIGTERM arrived; a checkpoint was saved first.
        """
        start_time = time.time()
        start = int(self.global_step.numpy())
        if callable(train_data) and not isinstance(train_data, tf.data.Dataset):
            train_data = train_data(start)
        graph_loop = isinstance(train_data, tf.data.Dataset)
        iterator = iter(self._distribute(train_data)) if graph_loop else iter(train_data)
        if self._train_fn is None:
            self._train_fn = self._make_train_fn()
        train_steps, python_step = self._train_fn
        writer = self._writer("train")
        progress = _Progress(self.train_steps, start, self.progress and self.chief)
        last = {}
        eval_results = {}
        self._install_signal_handlers()
        try:
            step = start
            while step < self.train_steps and not bool(self.stopped_early.numpy()):
                stop = min(
                    self.train_steps,
                    _next_multiple(step, self.log_every),
                    _next_multiple(step, self.checkpoint_every),
                    _next_multiple(step, self.eval_every),
                )
                tic = time.perf_counter()
                if graph_loop:
                    outputs = train_steps(iterator, tf.constant(stop - step, tf.int64))
                else:
                    for _ in range(stop - step):
                        outputs = python_step(next(iterator))
                outputs = {k: float(v.numpy()) for k, v in outputs.items()}
                steps_per_sec = (stop - step) / (time.perf_counter() - tic)
                step = int(self.global_step.numpy())
                self._check_finite(outputs, step)
                if self.diagnostics is not None:
                    outputs |= {
                        f"diagnostics/{k}": float(v) for k, v in self.diagnostics(step).items()
                    }
                last = outputs
                self.history["train"].append((step, outputs))
                self._summaries(writer, "train", step, outputs | {"charts/steps_per_sec": steps_per_sec})
                progress.update(
                    step,
                    {
                        _short(k): v
                        for k, v in outputs.items()
                        if not k.startswith(("charts/", "diagnostics/"))
                    }
                    | {"steps/s": steps_per_sec},
                )
                if eval_data is not None and self.eval_every and step % self.eval_every == 0:
                    eval_results = self._evaluate_and_track(eval_data, step)
                    self.history["eval"].append((step, eval_results))
                    progress.note(step, "eval", eval_results)
                stop = self._any_worker_signalled()
                self.save(force=stop)
                if stop:
                    signum = self._signal or signal.SIGTERM  # another worker's signal
                    raise Interrupted(signum, step, self._latest())
            self.save(force=True)
        finally:
            self._restore_signal_handlers()
            writer.flush()
        restored = self._restore_best()
        if eval_data is not None:
            final_step = int(self.global_step.numpy())
            if self.history["eval"] and self.history["eval"][-1][0] == final_step and not restored:
                eval_results = self.history["eval"][-1][1]  # evaluated at this step already
            else:
                eval_results = self.evaluate(eval_data)
                self._summaries(self._writer("eval"), "eval", final_step, eval_results)
                if not self.history["eval"] or self.history["eval"][-1][0] != final_step:
                    self.history["eval"].append((final_step, eval_results))  # curves end here
        wall = time.time() - start_time
        return {
            "global_step": int(self.global_step.numpy()),
            "resumed_from_step": self.resumed_from_step,
            "stopped_early": bool(self.stopped_early.numpy()),
            "wall_seconds": wall,
            "train": last,
            "eval": eval_results,
        }

    # --- helpers ----------------------------------------------------------

    def _distribute(self, data):
        if isinstance(self.strategy, tf.distribute.MultiWorkerMirroredStrategy):
            options = tf.data.Options()
            options.experimental_distribute.auto_shard_policy = (
                tf.data.experimental.AutoShardPolicy.DATA
            )
            data = data.with_options(options)
        if self.strategy.num_replicas_in_sync == 1 and not tf.distribute.has_strategy():
            return data
        return self.strategy.experimental_distribute_dataset(data)

    def _latest(self):
        return self.manager.latest_checkpoint if self.manager else None

    def _restore_best(self):
        """Puts the best weights of early stopping back; whether there were any."""
        if not self.patience:
            return False
        if self.best_manager is not None:
            if not self.best_manager.latest_checkpoint:
                return False
            self.best_checkpoint.restore(self.best_manager.latest_checkpoint).expect_partial()
            return True
        if self._best_weights is None:
            return False
        for model, weights in zip(self._best_models(), self._best_weights):
            model.set_weights(weights)
        return True

    def _best_models(self):
        return [v for v in self.task.checkpoint_items().values() if isinstance(v, keras.Model)]

    def _summaries(self, writer, name, step, values):
        """Writes `values` as scalars at `step`, unless that step is in the event files already.

        A resumed run replays the steps after its checkpoint; those the stopped run had
        logged are not written twice (TensorBoard would draw both).
        """
        if self.model_dir is None:
            return
        if name not in self._logged:
            self._logged[name] = _last_logged_step(os.path.join(self.model_dir, name))
        if step <= self._logged[name]:
            return
        with writer.as_default(step=step):
            for key, value in values.items():
                tf.summary.scalar(_tag(key), value)
        self._logged[name] = step

    def _writer(self, name):
        if not self.chief or self.model_dir is None:
            return tf.summary.create_noop_writer()
        return tf.summary.create_file_writer(os.path.join(self.model_dir, name))

    def _any_worker_signalled(self):
        """Whether any worker got SIGINT/SIGTERM: all stop at the same step, or none does.

        One worker alone cannot stop: the others would wait for it in the next all-reduce.
        """
        mine = self._signal is not None
        if getattr(self.strategy, "cluster_resolver", None) is None:
            return mine
        if self._vote is None:

            @tf.function
            def vote(flag):
                votes = self.strategy.run(lambda: tf.identity(flag))
                return self.strategy.reduce(tf.distribute.ReduceOp.SUM, votes, axis=None)

            self._vote = vote
        return float(self._vote(tf.constant(float(mine))).numpy()) > 0

    def _check_finite(self, outputs, step):
        """The NaN guard: every output whose key starts with `loss` must be finite."""
        bad = {k: v for k, v in outputs.items() if k.startswith("loss") and not math.isfinite(v)}
        if bad:
            key, value = next(iter(bad.items()))
            kept = checkpoints.list_checkpoints(self._dir("ckpt")) if self.manager else []
            if kept:
                back = (
                    f"Kept checkpoints: steps {', '.join(map(str, kept))}; the newest may already "
                    f"be on the way up, so rerun with --resume_from_step={min(kept)} (or a later "
                    "one) and a lower --learning_rate or a --clip_norm."
                )
            else:
                back = "No checkpoint was saved yet: lower --learning_rate or set --clip_norm."
            raise TrainingDiverged(f"{key} became {value} by step {step}; stopped without saving. {back}")

    def _evaluate_and_track(self, eval_data, step):
        results = self.evaluate(eval_data)
        self._summaries(self._writer("eval"), "eval", step, results)
        if self.patience:
            if self.monitor not in results:
                raise ValueError(
                    f"early_stopping_metric {self.monitor!r} is not an eval metric. "
                    f"Available: {', '.join(sorted(results))}"
                )
            value = self.sign * results[self.monitor]
            if value < float(self.best_value.numpy()):
                self.best_value.assign(value)
                self.bad_evals.assign(0)
                if self.best_manager is not None:
                    self.best_manager.save(checkpoint_number=step)
                else:
                    self._best_weights = [m.get_weights() for m in self._best_models()]
            else:
                self.bad_evals.assign_add(1)
                if int(self.bad_evals.numpy()) >= self.patience:
                    self.stopped_early.assign(True)
        return results

    def _install_signal_handlers(self):
        self._signal = None
        self._previous = {}
        if threading.current_thread() is not threading.main_thread():
            return

        def handler(signum, frame):
            del frame
            self._signal = signum

        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, handler)

    def _restore_signal_handlers(self):
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous = {}
        if not self.chief and self.model_dir is not None:
            shutil.rmtree(
                os.path.join(self.model_dir, f".worker_{self.strategy.cluster_resolver.task_id}"),
                ignore_errors=True,
            )


def _optimizers(items):
    """The optimizers among `items` and their models' attributes (a GAN keeps two)."""
    found = []
    for item in items.values():
        candidates = [item] + (list(vars(item).values()) if isinstance(item, keras.Model) else [])
        found += [c for c in candidates if isinstance(c, keras.optimizers.Optimizer)]
    return list({id(o): o for o in found}.values())


def _constant_rates(items):
    """`(optimizer, rate)` for every optimizer whose learning rate is a number, not a schedule."""
    schedule = keras.optimizers.schedules.LearningRateSchedule
    return [
        (o, float(o.learning_rate.numpy()))
        for o in _optimizers(items)
        if not isinstance(o._learning_rate, schedule)
    ]


def random_state(items):
    """The random-number state hidden in `items`' models, as checkpointable variables.

    Keras layers and models that draw random numbers (dropout masks, noise, the VAE's
    sampling) keep a `keras.random.SeedGenerator` whose state is a variable of the model
    but not one of its checkpoint dependencies; without it a resumed run would draw other
    masks than an uninterrupted one. Named by position, which is stable from run to run.
    """
    states = {}
    for name, item in items.items():
        if isinstance(item, keras.layers.Layer):
            seeds = [v for v in item.variables if v.path.endswith("seed_generator_state")]
            for i, variable in enumerate(seeds):
                states[f"{name}_{i}"] = variable
    return states


def _last_logged_step(directory):
    """The largest step with a scalar in `directory`'s event files; -1 when there is none."""
    last = -1
    for path in glob.glob(os.path.join(glob.escape(directory), "events.out.tfevents.*")):
        try:
            for record in tf.data.TFRecordDataset(path):
                event = event_pb2.Event.FromString(record.numpy())
                if event.summary.value:
                    last = max(last, event.step)
        except tf.errors.DataLossError:  # a file cut short by a kill: what was read counts
            pass
    return last


def _chart(key):
    return key.startswith("charts/")


def _short(key):
    """`loss/total` -> `loss`, `metrics/top1` -> `top1` for the progress bar."""
    head, _, tail = key.partition("/")
    return head if tail == "total" else (tail or head)


def _tag(key):
    return key if "/" in key else ("loss/total" if key == "loss" else f"metrics/{key}")
