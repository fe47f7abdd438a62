"""The shared flags across every app (CONVENTIONS section 4, apps/runner.py).

Each shared flag is, for each app, either honoured or refused:
- honoured: recorded in `flags.cfg` and read by the run (a flag the run never reads
  would be accepted and silently ignored); for train_mlp each one also changes what
  the run produces;
- refused: `run(...)` raises one ValueError naming it before anything is written, and
  on the command line that is one `error:` line and exit 2.
"""

import dataclasses
import importlib
import json
import os
import sys

import pytest

from apps import common, runner
from tests.apps import cli

SHARED = runner.RunConfig.names()

# The smallest run of each app (digits or its own synthetic data, a few steps).
TINY = {
    "train_mlp": dict(hidden_units=["8"], batch_size=16, train_steps=4, log_every=2),
    "train_cnn": dict(dense_units=8, batch_size=16, train_steps=2, log_every=1),
    "train_fcn": dict(
        canvas_size=16,
        num_train_canvases=32,
        num_test_canvases=8,
        filters=["4", "8"],
        batch_size=8,
        train_steps=2,
        log_every=1,
    ),
    "finetune": dict(
        base="mp:classic_cnn",
        weights="none",
        image_size=8,
        labels_per_class=3,
        batch_size=8,
        head_steps=2,
        finetune_steps=2,
        unfreeze="1",
        log_every=1,
    ),
    "train_rnn": dict(
        units=8, batch_size=16, train_steps=4, log_every=2, seq_len=6, num_test_examples=50
    ),
    "train_vae": dict(
        hidden_units=["8"],
        batch_size=16,
        train_steps=2,
        log_every=1,
        iwae_k=2,
        iwae_examples=4,
        fid=False,
    ),
    "train_gan": dict(
        model="dcgan",
        latent_dim=4,
        dcgan_filters=4,
        batch_size=16,
        train_steps=2,
        log_every=1,
        fid_samples=20,
    ),
    "train_semisupervised": dict(
        code_units=8, batch_size=16, unlabelled_batch_size=32, train_steps=2, log_every=1
    ),
    "train_multitask": dict(
        trunk_units=8, batch_size=16, train_steps=2, log_every=1, single_task=False
    ),
    "train_rl": dict(algo=["qlearning"], env="CliffWalking-v1", episodes=5, eval_episodes=1),
    "train_autoregressive": dict(
        model="made", hidden_units=["8"], batch_size=16, train_steps=2, log_every=1
    ),
}
APPS = {name: importlib.import_module(f"apps.{name}") for name in TINY}

# A valid value other than the shared default, for every shared flag.
OTHER = {
    "dataset": "fashion_mnist",
    "data_dir": "elsewhere",
    "batch_size": 8,
    "epochs": 1,
    "train_steps": 6,
    "learning_rate": 0.05,
    "optimizer": "sgd",
    "optimizer_impl": "mp",
    "lr_schedule": "cosine",
    "warmup_steps": 2,
    "clip_norm": 0.01,
    "seed": 7,
    "deterministic": True,
    "strategy": "mirrored",
    "jit_compile": True,
    "precision": "mixed_bfloat16",
    "run_eagerly": True,
    "resume_from_step": 2,
    "log_every": 3,
    "checkpoint_every": 2,
    "eval_every": 2,
    "early_stopping_patience": 1,
    "validation_fraction": 0.2,
    "augment": True,
    "log_diagnostics": True,
}


def test_every_shared_flag_has_another_value_here():
    assert set(OTHER) == set(SHARED) - {"model_dir"}
    for name, value in OTHER.items():
        assert value != runner.RunConfig.default(name), name


def _pairs(kind):
    for app_name, module in APPS.items():
        names = module.APP.refuses if kind == "refused" else module.APP.supported
        for flag in names:
            yield pytest.param(app_name, flag, id=f"{app_name}-{flag}")


@pytest.mark.parametrize("app_name, flag", list(_pairs("refused")))
def test_a_refused_flag_is_an_error_naming_it(tmp_path, app_name, flag):
    model_dir = tmp_path / "run"
    kwargs = TINY[app_name] | {flag: OTHER[flag]}
    with pytest.raises(ValueError, match=f"--{flag}="):
        APPS[app_name].run(str(model_dir), progress=False, **kwargs)
    assert not model_dir.exists()


# The command line turns the ValueError into the exit code the same way for every app
# (`apps.common.cli`); two apps show it, the one that refuses most and one with a reason.
@pytest.mark.parametrize("app_name", ["train_rl", "finetune"])
def test_a_refused_flag_exits_2_with_one_line(tmp_path, app_name, capfd):
    flag = APPS[app_name].APP.refuses[0]
    value = OTHER[flag]
    arg = (f"--{flag}" if value else f"--no{flag}") if isinstance(value, bool) else f"--{flag}={value}"
    out = cli.in_process(capfd, app_name, arg, f"--model_dir={tmp_path / 'run'}")
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and f"--{flag}=" in lines[0]
    assert not (tmp_path / "run").exists()


_SPIED = {}


def _spied_run(app_name, tmp_path_factory):
    """One tiny run of the app, recording which shared values it reads, and its flags.cfg."""
    if app_name not in _SPIED:
        reads = set()
        fields = set(SHARED)

        def spy(self, name):
            if name in fields and sys._getframe(1).f_code.co_name != "validate":
                reads.add(name)
            return object.__getattribute__(self, name)

        model_dir = tmp_path_factory.mktemp(app_name)
        kwargs = dict(TINY[app_name])
        with pytest.MonkeyPatch.context() as patch:
            if app_name == "train_gan":  # a tiny FID classifier (tests/conftest.py)
                from mp.generative import fid

                tiny = {"filters": (2, 4), "dense_units": 8, "epochs": 1}
                load = fid.load_extractor
                patch.setattr(fid, "load_extractor", lambda *a, **k: load(*a, **k, **tiny))
                kwargs["fid_cache_dir"] = str(model_dir / "fid_cache")
            runner.RunConfig.__getattribute__ = spy
            try:
                APPS[app_name].run(str(model_dir / "run"), progress=False, **kwargs)
            finally:
                del runner.RunConfig.__getattribute__
        model_dir = model_dir / "run"
        _SPIED[app_name] = reads, (model_dir / "flags.cfg").read_text()
    return _SPIED[app_name]


@pytest.mark.parametrize("app_name, flag", list(_pairs("honoured")))
def test_an_honoured_flag_is_recorded_and_read(tmp_path_factory, app_name, flag):
    reads, flags_cfg = _spied_run(app_name, tmp_path_factory)
    lines = flags_cfg.splitlines()
    if flag == "resume_from_step":  # a one-off action: a replay must not go back again
        assert not any("resume_from_step" in line for line in lines)
    elif flag != "data_dir":  # None is left out of flags.cfg
        assert any(line.split("=")[0].lstrip("-").removeprefix("no") == flag for line in lines)
    assert flag in reads, f"{app_name} accepts --{flag} but never reads it"


# --- train_mlp: each honoured flag changes what the run produces ------------------------


def _outcome(model_dir):
    """What a run produced: metrics (no times), history, and the files it wrote."""
    metrics = common.read_json(os.path.join(model_dir, "metrics.json"))
    metrics = {k: v for k, v in metrics.items() if "seconds" not in k}
    history = common.read_json(os.path.join(model_dir, "history.json"))
    files = sorted(
        os.path.relpath(os.path.join(d, f), model_dir)
        for d, _, names in os.walk(model_dir)
        for f in names
        if "events" not in f
    )
    return json.dumps([metrics, history, files], sort_keys=True)


# Flags whose effect is not in the numbers but in how the step runs: checked on the Trainer.
HOW_IT_RUNS = {"deterministic", "strategy", "jit_compile", "run_eagerly", "model_dir", "data_dir"}
HOW_IT_RUNS |= {"resume_from_step"}  # a fresh folder has nothing to resume: tests/apps/test_faults.py


@pytest.fixture(scope="module")
def mlp_base(tmp_path_factory):
    model_dir = tmp_path_factory.mktemp("mlp_base")
    APPS["train_mlp"].run(str(model_dir), progress=False, **TINY["train_mlp"])
    return _outcome(model_dir)


@pytest.mark.parametrize(
    "flag", [f for f in APPS["train_mlp"].APP.supported if f not in HOW_IT_RUNS | {"dataset"}]
)
def test_each_train_mlp_flag_changes_the_run(tmp_path, mlp_base, flag):
    extra = {flag: OTHER[flag]}
    if flag == "early_stopping_patience":
        extra |= {"eval_every": 1, "validation_fraction": 0.2, "learning_rate": 5.0}
    if flag == "warmup_steps":
        extra |= {"lr_schedule": "cosine"}
    if flag == "epochs":
        extra |= {"train_steps": 0, "batch_size": 256}
    APPS["train_mlp"].run(str(tmp_path), progress=False, **(TINY["train_mlp"] | extra))
    assert _outcome(tmp_path) != mlp_base, f"--{flag} changed nothing"
    if flag == "warmup_steps":  # against the same schedule without warm-up
        other = tmp_path / "no_warmup"
        APPS["train_mlp"].run(
            str(other), progress=False, **(TINY["train_mlp"] | {"lr_schedule": "cosine"})
        )
        assert _outcome(tmp_path) != _outcome(other)


def test_how_it_runs_reaches_the_trainer(tmp_path, monkeypatch):
    seen = {}
    make = runner.Experiment.trainer

    def trainer(self, task, train_steps, **kwargs):
        result = make(self, task, train_steps, **kwargs)
        seen.update(
            jit=result.jit_compile,
            eager=result.run_eagerly,
            replicas=result.strategy.num_replicas_in_sync,
            strategy=type(result.strategy).__name__,
        )
        return result

    monkeypatch.setattr(runner.Experiment, "trainer", trainer)
    APPS["train_mlp"].run(
        str(tmp_path / "a"), progress=False, jit_compile=True, **TINY["train_mlp"]
    )
    assert seen["jit"] and not seen["eager"]
    APPS["train_mlp"].run(
        str(tmp_path / "b"), progress=False, run_eagerly=True, **TINY["train_mlp"]
    )
    assert seen["eager"]
    APPS["train_mlp"].run(
        str(tmp_path / "c"), progress=False, strategy="mirrored", **TINY["train_mlp"]
    )
    assert seen["strategy"] == "MirroredStrategy"


def test_the_runner_validates_shared_values_once():
    config = dataclasses.replace(runner.RunConfig(), batch_size=0)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        config.validate()
    with pytest.raises(ValueError, match="optimizer must be one of"):
        runner.RunConfig(optimizer="adamw").validate()
    with pytest.raises(ValueError, match="validation_fraction must be <= 0.9"):
        runner.RunConfig(validation_fraction=0.95).validate()
    with pytest.raises(ValueError, match="never test"):
        runner.RunConfig(early_stopping_patience=2, eval_every=10).validate()
    with pytest.raises(ValueError, match="no option"):
        APPS["train_mlp"].APP.config({"batchsize": 3})
