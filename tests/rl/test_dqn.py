"""DQN and Double DQN: targets and losses by hand, epsilon, a short learning run, the app."""

import json

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.util import event_pb2

from apps import train_rl
from mp.engine import seed_everything
from mp.rl import dqn, rollout
from tests.rl.deep_rl_helpers import train

# a batch of three: an ordinary step, a terminal one, one cut by the time limit
REWARDS = np.array([1.0, 2.0, -1.0], np.float32)
TERMINATED = np.array([0.0, 1.0, 0.0], np.float32)  # the third is truncated: it bootstraps
NEXT_Q_TARGET = np.array([[1.0, 3.0], [5.0, 0.0], [2.0, 4.0]], np.float32)
NEXT_Q_ONLINE = np.array([[0.0, 1.0], [1.0, 0.0], [5.0, 0.0]], np.float32)


def test_q_learning_targets_by_hand():
    y = dqn.q_learning_targets(REWARDS, TERMINATED, NEXT_Q_TARGET, 0.9)
    # max of the target net: 1 + 0.9 * 3 = 3.7; terminal: 2; truncated: -1 + 0.9 * 4 = 2.6
    np.testing.assert_allclose(y.numpy(), [3.7, 2.0, 2.6], rtol=1e-6)


def test_double_dqn_target_picks_with_online_and_evaluates_with_target():
    y = dqn.q_learning_targets(REWARDS, TERMINATED, NEXT_Q_TARGET, 0.9, NEXT_Q_ONLINE)
    # online argmax: actions 1, 0, 0 -> target values 3, (5, terminal), 2
    # 1 + 0.9 * 3 = 3.7; 2; -1 + 0.9 * 2 = 0.8 (DQN's max would take 4)
    np.testing.assert_allclose(y.numpy(), [3.7, 2.0, 0.8], rtol=1e-6)


def test_huber_by_hand():
    # |x| <= 1: x^2 / 2; beyond: |x| - 1/2
    np.testing.assert_allclose(dqn.huber(tf.constant([0.5, -2.0, 1.0])).numpy(),
                               [0.125, 1.5, 0.5])


def test_linear_epsilon():
    # from 1 to 0.04 over 0.16 * 50000 = 8000 steps
    values = [dqn.linear_epsilon(s, 50_000, 0.16, 1.0, 0.04) for s in (0, 4000, 8000, 20_000)]
    np.testing.assert_allclose(values, [1.0, 0.52, 0.04, 0.04], rtol=1e-6)


@pytest.mark.parametrize("double", [False, True])
def test_loss_of_the_task_on_a_tiny_batch(double):
    """The task's TD loss against the same arithmetic in NumPy on the networks' outputs."""
    task = dqn.DQNTask("CartPole-v1", total_updates=1, hidden_units=(8,), double=double,
                       gamma=0.9, seed=0)
    task.build()
    for v in task.q_target.trainable_variables:  # a target net that differs from the online
        v.assign(v * 1.5 + 0.1)
    rng = np.random.default_rng(0)
    sample = {"observations": rng.normal(size=(3, 4)).astype(np.float32),
              "actions": np.array([1, 0, 1], np.int32), "rewards": REWARDS,
              "next_observations": rng.normal(size=(3, 4)).astype(np.float32),
              "terminated": TERMINATED, "truncated": np.array([0, 0, 1], np.float32)}
    q = task.q(sample["observations"]).numpy()
    next_target = task.q_target(sample["next_observations"]).numpy()
    next_online = task.q(sample["next_observations"]).numpy()
    pick = np.argmax(next_online if double else next_target, axis=1)
    y = REWARDS + 0.9 * (1 - TERMINATED) * next_target[np.arange(3), pick]
    error = q[np.arange(3), sample["actions"]] - y
    huber = np.where(np.abs(error) <= 1, 0.5 * error**2, np.abs(error) - 0.5)
    loss, q_mean = task.loss({k: tf.constant(v) for k, v in sample.items()})
    np.testing.assert_allclose(loss.numpy(), huber.mean(), rtol=1e-5)
    np.testing.assert_allclose(q_mean.numpy(), q[np.arange(3), sample["actions"]].mean(),
                               rtol=1e-5)


def test_hard_target_update_every_interval_of_env_steps():
    """Interval 10, 8 env steps per call: the target becomes a copy of the online network
    (as it was before the call's gradient steps) whenever a call passes a multiple of 10."""
    task = dqn.DQNTask("CartPole-v1", total_updates=5, train_frequency=8, buffer_size=64,
                       batch_size=8, learning_starts=0, target_update_interval=10,
                       hidden_units=(8,), seed=0)
    task.build()
    step = tf.function(task.train_step)
    data = task.data()
    copied = []
    for _ in range(5):  # env steps 8, 16, 24, 32, 40
        before = [v.numpy() for v in task.q_target.variables]
        online = [v.numpy() for v in task.q.variables]  # before this call's gradient steps
        step(next(data))
        after = [v.numpy() for v in task.q_target.variables]
        changed = not all(np.array_equal(a, b) for a, b in zip(before, after))
        copied.append(changed)
        if changed:
            for a, o in zip(after, online):
                np.testing.assert_array_equal(a, o)
    # multiples of 10 passed by each call: 8 none; 16 -> 10; 24 -> 20; 32 -> 30; 40 -> 40
    assert copied == [False, True, True, True, True]


def _annealed_rates_and_moves(**kwargs):
    """4 updates of 2 gradient steps with anneal_lr: the rate at each update and whether the
    update moved the Q-network."""
    task = dqn.DQNTask("CartPole-v1", total_updates=4, train_frequency=8, gradient_steps=2,
                       buffer_size=64, batch_size=8, learning_starts=0, learning_rate=1e-3,
                       hidden_units=(8,), anneal_lr=True, seed=0, **kwargs)
    task.build()
    step = tf.function(task.train_step)
    data = task.data()
    rates, moved = [], []
    for k in range(4):
        task.global_step.assign(k)
        rates.append(float(task.optimizers["q"].learning_rate.numpy()))
        before = [v.numpy() for v in task.q.trainable_variables]
        step(next(data))
        moved.append(not all(np.array_equal(b, v.numpy())
                             for b, v in zip(before, task.q.trainable_variables)))
    return rates, moved


def test_annealed_learning_rate_falls_linearly_to_zero_over_the_updates():
    """anneal_lr over 4 updates: the rate of update k (the engine's step counter) is
    1e-3 * (1 - (k + 1) / 4) = 7.5e-4, 5e-4, 2.5e-4, 0 (SB3's progress remaining); the last
    update leaves the Q-network as it was, the first moves it."""
    rates, moved = _annealed_rates_and_moves()
    np.testing.assert_allclose(rates, [7.5e-4, 5e-4, 2.5e-4, 0.0], atol=1e-9)
    assert moved == [True, True, True, False]


def test_annealed_learning_rate_reaches_zero_at_the_anneal_fraction():
    """anneal_fraction 0.5 of 4 updates: the rate falls over 2 updates, 1e-3 * (1 - (k + 1) /
    2) = 5e-4, 0, then stays 0; only the first update moves the Q-network."""
    rates, moved = _annealed_rates_and_moves(anneal_fraction=0.5)
    np.testing.assert_allclose(rates, [5e-4, 0.0, 0.0, 0.0], atol=1e-9)
    assert moved == [True, False, False, False]


def test_polyak_target_update_after_every_gradient_step():
    """polyak_every_step with tau 0.25: after gradient step i the target is 0.25 * online_i +
    0.75 * target_(i-1) (two steps by hand); a call's interval copy does not happen."""
    task = dqn.DQNTask("CartPole-v1", total_updates=2, train_frequency=8, gradient_steps=2,
                       buffer_size=64, batch_size=8, learning_starts=0, learning_rate=1e-2,
                       target_update_interval=1, tau=0.25, polyak_every_step=True,
                       hidden_units=(8,), seed=0)
    task.build()
    assert task.update_targets_every_step()
    for v in task.q_target.variables:  # a target that differs from the online network
        v.assign(v * 1.5 + 0.1)
    rng = np.random.default_rng(0)
    target = [v.numpy() for v in task.q_target.variables]
    for _ in range(2):
        sample = {"observations": rng.normal(size=(8, 4)).astype(np.float32),
                  "actions": rng.integers(0, 2, 8).astype(np.int32),
                  "rewards": np.ones(8, np.float32),
                  "next_observations": rng.normal(size=(8, 4)).astype(np.float32),
                  "terminated": np.zeros(8, np.float32), "truncated": np.zeros(8, np.float32)}
        task.update({k: tf.constant(v) for k, v in sample.items()})
        online = [v.numpy() for v in task.q.variables]
        target = [0.25 * o + 0.75 * t for o, t in zip(online, target)]
        for t, v in zip(target, task.q_target.variables):
            np.testing.assert_allclose(v.numpy(), t, rtol=1e-5, atol=1e-6)
    # through train_step: 2 gradient steps, each moving the target by a quarter, no copy
    before = [v.numpy() for v in task.q_target.variables]
    tf.function(task.train_step)(next(task.data()))
    after = [v.numpy() for v in task.q_target.variables]
    online = [v.numpy() for v in task.q.variables]
    assert not all(np.array_equal(a, b) for a, b in zip(before, after))
    assert not all(np.allclose(a, o) for a, o in zip(after, online))


def test_dqn_learns_cartpole(tmp_path):
    """4,096 env steps: the greedy policy balances far longer than a random one (~22 steps)
    or the untrained greedy one (~9: it pushes one way); seed 0 gave 74 [61, 107]."""
    seed_everything(0)
    task = dqn.DQNTask("CartPole-v1", total_updates=64, train_frequency=64, gradient_steps=32,
                       batch_size=64, learning_rate=2.3e-3, buffer_size=10_000,
                       learning_starts=512, target_update_interval=64,
                       exploration_fraction=0.3, exploration_final_eps=0.04,
                       hidden_units=(64, 64), seed=0)
    train(task, tmp_path, 64)
    returns = rollout.evaluate(task.act_deterministic, task.collector, 5, seed=123)
    assert returns.mean() > 50, returns


def test_app_refuses_the_wrong_action_space_and_writes_nothing(tmp_path):
    with pytest.raises(ValueError, match="needs a Discrete action space.*use one of ddpg, td3"):
        train_rl.run(str(tmp_path / "run"), algo=["dqn"], env="Pendulum-v1", progress=False)
    with pytest.raises(ValueError, match="needs a flat Box action space.*use one of dqn, double"):
        train_rl.run(str(tmp_path / "run"), algo=["ddpg"], env="CartPole-v1", progress=False)
    with pytest.raises(ValueError, match="cannot honour --train_frequency"):
        train_rl.run(str(tmp_path / "run"), algo=["ppo"], env="CartPole-v1", train_frequency=4,
                     progress=False)
    assert not (tmp_path / "run").exists()


def test_app_run_as_the_smoke_flagfile(tmp_path):
    """flags/smoke_rl_dqn.cfg in-process (train_rl's one subprocess smoke is part 1's)."""
    train_rl.run(str(tmp_path / "smoke"), algo=["dqn"], env="CartPole-v1", env_steps=1024,
                 train_frequency=128, gradient_steps=8, learning_starts=256, eval_episodes=2,
                 log_every=4, seed=0)
    metrics = json.loads((tmp_path / "smoke" / "metrics.json").read_text())
    assert {"env_steps", "mean_return", "eval_mean_return", "steps_to_threshold",
            "wall_seconds", "global_step", "buffer_fill"} <= set(metrics)
    assert metrics["env_steps"] == 1024 and metrics["buffer_fill"] == 1024
    assert metrics["gradient_steps"] == 7 * 8  # calls from env step 256 on: 256, ..., 1024
    assert (tmp_path / "smoke" / "model.keras").exists()
    tags, fill = {}, {}  # tag -> steps of rollouts/ (env steps); train/'s fill by update
    for folder in ("rollouts", "train"):
        for path in (tmp_path / "smoke" / folder).glob("events.out.tfevents.*"):
            for record in tf.data.TFRecordDataset(str(path)):
                event = event_pb2.Event.FromString(record.numpy())
                for value in event.summary.value:
                    if folder == "train" and value.tag == "rollout/buffer_fill":
                        fill[event.step] = float(tf.make_ndarray(value.tensor))
                    elif folder == "rollouts":
                        tags.setdefault(value.tag, []).append(event.step)
    assert fill == {4: 512.0, 8: 1024.0}  # the fill level, logged with the progress lines
    # the collection that passed env step 1000 wrote the update of env step 896
    for tag in ("losses/td", "charts/q_values", "charts/epsilon"):
        assert tags[tag] == [896], tag
    assert max(tags["charts/episodic_return"]) <= 1024
