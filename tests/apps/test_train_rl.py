"""The app contract (CONVENTIONS section 4) of train_rl.

In-process `run(...)` on tiny budgets (dynamic programming, TD control, TD prediction), bad
input that exits 2 before writing anything, and one subprocess run with flags/smoke_rl.cfg."""

import inspect
import json
import os

import numpy as np
import pytest

from apps import train_rl
from mp.rl import tabular, td
from tests.apps import cli

def _check_artifacts(model_dir, metrics, curves):
    names = ["flags.cfg", "values.npz", "values.png", "policy.txt", "metrics.json"]
    for name in names + (["learning_curves.png", "train"] if curves else []):
        assert os.path.exists(os.path.join(model_dir, name)), name
    with open(os.path.join(model_dir, "metrics.json")) as f:
        assert json.load(f) == json.loads(json.dumps(metrics))
    assert "global_step" in metrics and metrics["wall_seconds"] > 0


def test_dynamic_programming_in_process(tmp_path):
    model_dir = str(tmp_path / "dp")
    metrics = train_rl.run(
        model_dir,
        algo=["value_iteration", "policy_iteration"],
        env="FrozenLake-v1",
        slippery=False,
        gamma=0.9,
        eval_episodes=20,
        progress=False,
    )
    _check_artifacts(model_dir, metrics, curves=False)
    assert not os.path.exists(os.path.join(model_dir, "learning_curves.png"))
    assert metrics["dp_policies_agree"] and metrics["dp_max_value_difference"] < 1e-8
    for name in ("value_iteration", "policy_iteration"):
        m = metrics["results"][name]
        assert m["success_rate"] == 1.0 and m["eval_mean_return"] == 1.0
        # The shortest path takes 6 steps; only the last pays 1, so V(start) = 0.9^5.
        assert m["v_start"] == pytest.approx(0.9**5)
        assert m["sweeps"] >= 1
    with np.load(os.path.join(model_dir, "values.npz")) as arrays:
        assert arrays["value_iteration/v"][0] == pytest.approx(0.9**5)
        assert arrays["policy_iteration/policy"].shape == (16, 4)
    assert "--algo=value_iteration,policy_iteration" in (tmp_path / "dp" / "flags.cfg").read_text()
    assert "== value_iteration on FrozenLake-v1" in (tmp_path / "dp" / "policy.txt").read_text()


def test_td_control_and_prediction_in_process(tmp_path):
    # Q-learning on the cliff: mean_return is the mean of the last 10 episodes of both runs.
    model_dir = str(tmp_path / "cliff")
    kwargs = dict(gamma=1.0, alpha=0.5, epsilon=0.1, episodes=30)
    metrics = train_rl.run(
        model_dir,
        algo="qlearning",
        env="CliffWalking-v1",
        runs=2,
        last_episodes=10,
        eval_episodes=3,
        seed=7,
        progress=False,
        **kwargs,
    )
    _check_artifacts(model_dir, metrics, curves=True)
    expected = [
        td.qlearning(tabular.make_env("CliffWalking-v1"), seed=s, **kwargs).episode_returns[-10:]
        for s in (7, 8)
    ]
    assert metrics["mean_return"] == pytest.approx(np.mean(expected))
    assert metrics["episodes"] == 30 and metrics["runs"] == 2 and metrics["global_step"] == 60
    assert 0.0 <= metrics["success_rate"] <= 1.0
    assert os.listdir(os.path.join(model_dir, "train", "qlearning"))  # tf.summary events

    # TD(0) on the random walk: the RMS error against 1/6..5/6, averaged over the runs.
    model_dir = str(tmp_path / "walk")
    metrics = train_rl.run(
        model_dir, algo="td0", env="RandomWalk", alpha=0.1, episodes=20, runs=2, progress=False
    )
    _check_artifacts(model_dir, metrics, curves=True)
    expected = [
        td.td0(
            tabular.make_env("RandomWalk"),
            policy=np.full((7, 2), 0.5),
            alpha=0.1,
            episodes=20,
            true_v=tabular.RANDOM_WALK_TRUE_VALUES,
            seed=s,
        ).rms_errors[-1]
        for s in (0, 1)
    ]
    assert metrics["final_rms_error"] == pytest.approx(np.mean(expected))
    assert 0.0 < metrics["final_rms_error"] < 0.5
    assert "success_rate" not in metrics  # a fixed policy is predicted, not evaluated


def test_decaying_epsilon_is_the_linear_schedule(tmp_path):
    from mp.rl import policies

    common = dict(gamma=0.9, alpha=0.5, episodes=40)
    metrics = train_rl.run(
        str(tmp_path / "decay"),
        algo="qlearning",
        env="FrozenLake-v1",
        slippery=False,
        epsilon=1.0,
        epsilon_end=0.0,
        decay_episodes=20,
        last_episodes=40,
        eval_episodes=1,
        progress=False,
        **common,
    )
    env = tabular.make_env("FrozenLake-v1", is_slippery=False)
    schedule = policies.linear_decay(1.0, 0.0, 20)  # epsilon 1.0, 0.95, ..., 0.05, then 0
    expected = td.qlearning(env, epsilon=schedule, seed=0, **common).episode_returns
    assert metrics["mean_return"] == pytest.approx(np.mean(expected))
    assert "--epsilon_end=0.0" in (tmp_path / "decay" / "flags.cfg").read_text()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"algo": "nope"}, "Unknown algorithm 'nope'"),
        ({"env": "NoSuchEnv-v0"}, "Cannot make environment"),
        ({"gamma": 1.5}, r"gamma must be in \[0.0, 1.0\]"),
        ({"algo": "sarsa", "alpha": 0.0}, "alpha must be in"),
        ({"algo": "sarsa", "alpha": [0.1, 0.2]}, "one per algorithm"),
        ({"algo": "sarsa", "epsilon": -0.1}, "epsilon must be in"),
        ({"algo": "td_lambda", "lambda_": 2.0}, "lambda_ must be in"),
        ({"algo": "sarsa", "epsilon_end": 0.1}, "set epsilon as well"),
        ({"env": "Blackjack-v1"}, "needs a model of the environment"),
        ({"algo": "td0", "policy": "blackjack_stick20"}, "blackjack_stick20"),
        ({"algo": "sarsa", "episodes": 0}, "episodes must be a positive integer"),
    ],
)
def test_bad_input_writes_nothing(tmp_path, kwargs, match):
    model_dir = tmp_path / "run"
    with pytest.raises(ValueError, match=match):
        train_rl.run(str(model_dir), **kwargs, progress=False)
    assert not model_dir.exists()


def test_flag_values_are_the_arguments_of_run():
    # run() takes the own flags by name and the shared ones it honours through **shared.
    accepted = set(inspect.signature(train_rl.run).parameters) - {"progress", "shared"}
    assert set(train_rl.flag_values()) == accepted | set(train_rl.APP.supported)
    assert set(train_rl.APP.supported) == {"model_dir", "seed", "log_every", "deterministic"}


@pytest.mark.parametrize(
    "name, value",
    [("train_steps", 300), ("strategy", "mirrored"), ("learning_rate", 0.1), ("clip_norm", 1.0)],
)
def test_shared_flags_it_cannot_honour_are_refused(tmp_path, name, value):
    # The NumPy algorithms have no Trainer, optimizer or dataset: such a flag is an error.
    model_dir = tmp_path / "refused"
    with pytest.raises(ValueError, match=f"cannot honour --{name}={value}"):
        train_rl.run(str(model_dir), **{name: value}, progress=False)
    assert not model_dir.exists()


def test_log_every_and_seed_change_the_run(tmp_path, capsys):
    kwargs = dict(algo="qlearning", env="CliffWalking-v1", episodes=20, eval_episodes=1)
    first = train_rl.run(str(tmp_path / "a"), log_every=5, **kwargs)
    assert "qlearning episode 5/20" in capsys.readouterr().out
    other = train_rl.run(str(tmp_path / "b"), seed=1, progress=False, **kwargs)
    assert first["mean_return"] != other["mean_return"]
    assert "--seed=1" in (tmp_path / "b" / "flags.cfg").read_text()


def test_bad_flag_exits_2_with_one_error_line(tmp_path, capfd):
    model_dir = tmp_path / "bad"
    out = cli.in_process(
        capfd,
        "train_rl",
        "--algo=value_iteration",
        "--env=Blackjack-v1",
        f"--model_dir={model_dir}",
    )
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "model" in lines[0]
    assert not model_dir.exists()


def test_smoke_flagfile_subprocess(tmp_path):
    model_dir = tmp_path / "smoke"
    out = cli.in_subprocess(
        "train_rl",
        "--flagfile=flags/smoke_rl.cfg",
        f"--model_dir={model_dir}",
    )
    assert out.returncode == 0, out.stderr
    assert "qlearning episode 400/400" in out.stdout  # plain progress lines when not a TTY
    assert str(model_dir) in out.stdout
    metrics = json.loads((model_dir / "metrics.json").read_text())
    _check_artifacts(str(model_dir), metrics, curves=True)
    assert metrics["results"]["value_iteration"]["success_rate"] == 1.0
    assert set(metrics["results"]) == {"value_iteration", "qlearning"}


def test_small_budget_reproductions(tmp_path):
    # S&B example 6.6: with epsilon 0.1 SARSA's online return (safe path, about -25) stays above
    # Q-learning's (optimal path along the cliff, about -50: exploration drops it in now and then).
    metrics = train_rl.run(
        str(tmp_path / "cliff"),
        algo=["sarsa", "qlearning"],
        env="CliffWalking-v1",
        alpha=0.5,
        epsilon=0.1,
        episodes=150,
        runs=8,
        last_episodes=75,
        eval_episodes=1,
        progress=False,
    )
    sarsa, qlearning = metrics["results"]["sarsa"], metrics["results"]["qlearning"]
    assert sarsa["mean_return"] > qlearning["mean_return"] + 10
    assert qlearning["v_start"] == pytest.approx(-13, abs=0.5)  # its greedy path: 13 steps
    # S&B example 6.2: early on, TD(0) is much closer to the true values than constant-alpha MC.
    metrics = train_rl.run(
        str(tmp_path / "walk"),
        algo=["td0", "mc_prediction"],
        env="RandomWalk",
        alpha=[0.1, 0.02],
        v_init=0.5,
        episodes=30,
        runs=20,
        last_episodes=5,
        progress=False,
    )
    td0, mc = metrics["results"]["td0"], metrics["results"]["mc_prediction"]
    assert td0["rms_error_last_episodes"] < 0.5 * mc["rms_error_last_episodes"]
    # All values start at 0.5, so the RMS error starts near sqrt(mean((k/6 - 1/2)^2)) = 0.236.
    assert 0.1 < mc["final_rms_error"] < 0.236
