"""What a run writes to its `model_dir`, once for every app (`apps.runner.Experiment`).

    flags.cfg      the effective flags (`--flagfile=<model_dir>/flags.cfg` replays the run);
                   on a resume with other flags the earlier file is kept beside it
    .lock          held while the run lives: a second run on the folder is refused
    model.keras    the task's model (`Task.export`), figures, history.json
    metrics.json   last and atomically, with `wall_seconds`

Every file is written atomically (`apps.common.atomic_write`): an interrupted run leaves the
old file or the new one, never half of one.
"""

import os
import shutil

from apps import common


class Outputs:
    """The writing half of `Experiment`: the folder, its lock and the files in it.

    Under `--strategy=multi_worker` every worker runs the same program; only the chief
    writes to `model_dir`, the others to a throw-away `model_dir/.worker_<i>/`.
    """

    def _chief(self):
        from mp.engine import is_chief

        return self._strategy is None or is_chief(self._strategy)

    def _worker_dir(self):
        return os.path.join(self.model_dir, f".worker_{self._strategy.cluster_resolver.task_id}")

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
        if self._chief():
            self.lock()
            start_run(self.model_dir, self.hparams, resumed_from_step, self.progress)
        else:
            os.makedirs(self._worker_dir(), exist_ok=True)
        self._started = True

    def path(self, name):
        if self._chief():
            return os.path.join(self.model_dir, name)
        os.makedirs(self._worker_dir(), exist_ok=True)  # the Trainer removes it after fit
        return os.path.join(self._worker_dir(), name)

    def save_model(self, model, name="model.keras"):
        common.save_model(model, self.path(name))

    def export(self, task, name="model.keras"):
        """Saves what `task.export` saves (its main model), without leaving half a file."""
        common.atomic_write(self.path(name), task.export)

    def save_figure(self, figure, name):
        common.save_figure(figure, self.path(name))

    def metrics(self, result=None, train_steps=None):
        """The keys every app's `metrics.json` starts with."""
        supported = self.app.supported
        metrics = {"app": self.app.name}
        if "dataset" in supported:
            metrics["dataset"] = self.config.dataset
        if result is not None:
            metrics |= {
                "global_step": result["global_step"],
                "train_steps": train_steps,
                "resumed_from_step": result["resumed_from_step"],
                "train_seconds": result["wall_seconds"],
                "num_replicas": self.strategy.num_replicas_in_sync,
            }
            if "early_stopping_patience" in supported:
                metrics["stopped_early"] = result["stopped_early"]
            if self.steps_per_epoch:
                metrics["epochs"] = round(result["global_step"] / self.steps_per_epoch, 3)
        return metrics

    def finish(self, metrics, summary=None, history=None):
        """Writes `history.json` (of the last trainer, or `history`), then `metrics.json` last.

        Adds `wall_seconds`; prints `summary` and where the artifacts are. Puts back the
        global dtype policy the run replaced (`--precision`).
        """
        self.restore_precision()
        history = history if history is not None else (
            self.trainers[-1].history if self.trainers else None
        )
        if history is not None:
            common.write_json(self.path("history.json"), history_json(history))
        metrics["wall_seconds"] = self.clock.seconds()
        common.write_json(self.path("metrics.json"), metrics)
        from mp.engine import lock

        lock.unlock(self.model_dir)
        if not self._chief():
            shutil.rmtree(self._worker_dir(), ignore_errors=True)
            return metrics
        if self.progress and summary:
            print(
                f"{summary} after {metrics.get('global_step', '-')} steps, "
                f"{metrics['wall_seconds']:.1f} s; artifacts in {self.model_dir}/",
                flush=True,
            )
        return metrics


def start_run(model_dir, hparams, resumed_from_step=None, progress=False):
    """Creates `model_dir` and writes its `flags.cfg`, once every input has been checked.

    With `progress`, says so when the run resumes from a checkpoint at `resumed_from_step`.
    """
    os.makedirs(model_dir, exist_ok=True)
    path = os.path.join(model_dir, "flags.cfg")
    text = flags_cfg(hparams)
    if resumed_from_step is not None and os.path.exists(path) and common.read_text(path) != text:
        # Resumed with other flags: keep the ones the earlier steps ran with.
        n = 1
        while os.path.exists(os.path.join(model_dir, f"flags.until-step-{resumed_from_step}.{n}.cfg")):
            n += 1
        os.replace(path, os.path.join(model_dir, f"flags.until-step-{resumed_from_step}.{n}.cfg"))
    common.write_text(path, text)
    if resumed_from_step is not None and progress:
        print(f"resuming from global_step {resumed_from_step} in {model_dir}", flush=True)


def flags_cfg(hparams):
    """The flagfile text that replays a run with `hparams` (flag name -> value)."""
    lines = []
    for name, value in sorted(hparams.items()):
        if value is None:
            continue
        if isinstance(value, bool):
            lines.append(f"--{name}" if value else f"--no{name}")
        elif isinstance(value, (list, tuple)):
            lines.append(f"--{name}={','.join(str(v) for v in value)}")
        else:
            lines.append(f"--{name}={value}")
    return "\n".join(lines) + "\n"


def history_json(history):
    """`Trainer.history` as JSON: lists of {"step": ..., metric: value}."""
    return {
        part: [{"step": step, **values} for step, values in entries]
        for part, entries in history.items()
    }
