"""The app contract of train_rl's deep policy-gradient algorithms (ch6.2)."""

import json

import pytest
import tensorflow as tf
from tensorflow.core.util import event_pb2

from apps import train_rl
from tests.apps import cli

KEYS = {"env_steps", "mean_return", "eval_mean_return", "eval_std_return", "steps_to_threshold",
        "seconds_to_threshold", "wall_seconds", "global_step"}


def test_tiny_run_writes_the_metrics_and_figures(tmp_path):
    metrics = train_rl.run(str(tmp_path / "run"), algo=["a2c"], env="CartPole-v1", env_steps=400,
                           eval_episodes=2, log_every=5, progress=False)
    assert KEYS <= set(metrics)
    assert metrics["env_steps"] == 400 and metrics["global_step"] == 10  # 8 envs x 5 steps
    assert metrics["steps_to_threshold"] is None  # 400 steps cannot balance 475
    on_disk = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert on_disk["eval_mean_return"] == metrics["eval_mean_return"]
    for name in ("learning_curves.png", "model.keras", "flags.cfg"):
        assert (tmp_path / "run" / name).exists()
    assert "--algo=a2c" in (tmp_path / "run" / "flags.cfg").read_text()
    tags = {}  # tag -> steps of the summaries
    for path in (tmp_path / "run").glob("*/events.out.tfevents.*"):
        for record in tf.data.TFRecordDataset(str(path)):
            event = event_pb2.Event.FromString(record.numpy())
            for value in event.summary.value:
                tags.setdefault(value.tag, []).append(event.step)
    assert max(tags["charts/episodic_return"]) <= 400  # keyed by environment steps
    assert max(tags["charts/env_steps_per_sec"]) == 400
    assert max(tags["losses/policy"]) == 10  # keyed by update (train/, by the Trainer)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(algo=["ppo"], env="NoSuchEnv-v0"), "env must be one of"),
        (dict(algo=["ppo"], env="CartPole-v1", env_steps=0), "env_steps must be a positive"),
        (dict(algo=["ppo"], env="CartPole-v1", env_steps=100), "less than one rollout"),
        (dict(algo=["ppo", "a2c"], env="CartPole-v1"), "one deep algorithm at a time"),
        (dict(algo=["ppo"], env="CartPole-v1", alpha=["0.5"]), "cannot honour --alpha"),
        (dict(algo=["trpo"], env="CartPole-v1", num_envs=0), "num_envs must be"),
    ],
)
def test_bad_input_writes_nothing(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        train_rl.run(str(tmp_path / "run"), progress=False, **kwargs)
    assert not (tmp_path / "run").exists()


def test_smoke_flagfile(tmp_path, capfd):
    # Bad input on the command line is test_bad_input_writes_nothing in process, and the
    # one-line exit 2 of every app is tests/apps/test_contract.py's.
    smoke = cli.in_process(
        capfd, "train_rl", "--flagfile=flags/smoke_rl_ppo.cfg", f"--model_dir={tmp_path / 'smoke'}"
    )
    assert smoke.returncode == 0, smoke.stderr
    metrics = json.loads((tmp_path / "smoke" / "metrics.json").read_text())
    assert KEYS <= set(metrics) and metrics["env_steps"] == 2048


def test_dqn_sigterm_then_rerun_continues_with_its_buffer(tmp_path, capfd):
    """SIGTERM half-way through DQN, then the same command: the run goes on from the
    checkpoint with the transitions it had (a fresh buffer would end 128 per update short)."""
    model_dir = tmp_path / "run"
    command = [
        "--flagfile=flags/smoke_rl_dqn.cfg", f"--model_dir={model_dir}", "--env_steps=4096",
        "--log_every=1", "--buffer_size=8192",
    ]
    stopped_at = cli.sigterm_at("train_rl", *command, line_start="step 4/")
    assert 4 <= stopped_at < 32 and not (model_dir / "metrics.json").exists()

    out = cli.in_process(capfd, "train_rl", *command)  # the same command, rerun
    assert out.returncode == 0, out.stderr
    assert f"resuming from global_step {stopped_at}" in out.stdout
    # The first progress line after the restart shows the buffer as the stopped run left it.
    first = next(line for line in out.stdout.splitlines() if line.startswith("step "))
    assert first.startswith(f"step {stopped_at + 1}/32")
    assert f"buffer_fill {(stopped_at + 1) * 128}" in first
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert metrics["resumed_from_step"] == stopped_at and metrics["global_step"] == 32
    assert metrics["env_steps"] == 4096 and metrics["buffer_fill"] == 4096
