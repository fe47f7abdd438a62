"""The replay buffer, Polyak updates and the off-policy Task base (ch6.2 part 2)."""

import numpy as np
import pytest
import tensorflow as tf

from mp.rl import ddpg, dqn, replay
from tests.rl.deep_rl_helpers import whole_and_resumed


def _transitions(start, k, obs_dim=2):
    """k transitions whose every field says which one it is (row i holds start + i)."""
    i = np.arange(start, start + k, dtype=np.float32)
    return (np.stack([i, -i], 1)[:, :obs_dim], i.astype(np.int32), i * 10,
            np.stack([i + 0.5] * obs_dim, 1),
            (i % 2 == 0).astype(np.float32), (i % 3 == 0).astype(np.float32))


def test_circular_insert_fill_level_and_bytes():
    buffer = replay.ReplayBuffer(5, (2,), seed=0)
    # 2 observations of 2 float32 (16 bytes) + an int32 action (4) + 3 float32 scalars (12)
    assert buffer.bytes_per_transition == 32
    buffer.add(*_transitions(0, 3))
    assert int(buffer.position.numpy()) == 3 and int(buffer.size.numpy()) == 3
    buffer.add(*_transitions(3, 4))  # rows 3, 4, then 5 -> row 0, 6 -> row 1
    assert int(buffer.position.numpy()) == 2 and int(buffer.size.numpy()) == 5
    np.testing.assert_array_equal(buffer.actions.numpy(), [5, 6, 2, 3, 4])
    np.testing.assert_array_equal(buffer.rewards.numpy(), [50, 60, 20, 30, 40])
    np.testing.assert_array_equal(buffer.observations.numpy()[:, 1], [-5, -6, -2, -3, -4])
    np.testing.assert_array_equal(buffer.terminated.numpy(), [0, 1, 1, 0, 1])  # even ids
    np.testing.assert_array_equal(buffer.truncated.numpy(), [0, 1, 0, 1, 0])  # multiples of 3


def test_sample_draws_filled_rows_uniformly_and_consistently():
    buffer = replay.ReplayBuffer(100, (2,), seed=1)
    buffer.add(*_transitions(0, 10))  # 90 empty rows must never be drawn
    sample = buffer.sample(20_000)
    ids = sample["actions"].numpy()
    assert ids.min() == 0 and ids.max() == 9
    counts = np.bincount(ids, minlength=10)
    assert np.all(np.abs(counts - 2000) < 5 * np.sqrt(2000))  # uniform: 5 sigma
    # every field of a sampled transition belongs to the same row
    np.testing.assert_array_equal(sample["rewards"].numpy(), ids * 10)
    np.testing.assert_array_equal(sample["next_observations"].numpy()[:, 0], ids + 0.5)
    np.testing.assert_array_equal(sample["observations"].numpy()[:, 1], -ids)


def test_buffer_round_trip_through_a_checkpoint(tmp_path):
    """Every field, the insert position, the fill level and the generator's state."""
    buffer = replay.ReplayBuffer(8, (2,), seed=3)
    buffer.add(*_transitions(0, 6))
    buffer.add(*_transitions(6, 5))  # wrapped: position 3, full
    buffer.sample(7)  # moves the generator
    path = tf.train.Checkpoint(buffer=buffer).save(str(tmp_path / "ckpt"))
    expected = buffer.sample(16)

    restored = replay.ReplayBuffer(8, (2,), seed=99)
    tf.train.Checkpoint(buffer=restored).restore(path).assert_consumed()
    assert int(restored.position.numpy()) == 3 and int(restored.size.numpy()) == 8
    for name in replay.FIELDS:
        np.testing.assert_array_equal(getattr(restored, name).numpy(),
                                      getattr(buffer, name).numpy(), err_msg=name)
    again = restored.sample(16)  # the same draws as the saved buffer's next ones
    for name in replay.FIELDS:
        np.testing.assert_array_equal(again[name].numpy(), expected[name].numpy(), err_msg=name)


def test_polyak_update_by_hand():
    online = [tf.Variable([1.0, 2.0]), tf.Variable(4.0)]
    target = [tf.Variable([0.0, 10.0]), tf.Variable(-4.0)]
    replay.polyak_update(online, target, 0.25)
    # 0.25 * online + 0.75 * target: [0.25, 0.5 + 7.5], 1 - 3
    np.testing.assert_allclose(target[0].numpy(), [0.25, 8.0])
    np.testing.assert_allclose(target[1].numpy(), -2.0)
    replay.polyak_update(online, target, 1.0)
    np.testing.assert_array_equal(target[0].numpy(), [1.0, 2.0])


def test_truncated_transitions_keep_their_final_observation():
    """A time limit of 5 steps: the stored next observation of a truncated transition is the
    episode's last one, not the first of the next episode, and it is not `terminated`."""
    task = dqn.DQNTask("CartPole-v1", total_updates=1, train_frequency=12, buffer_size=12,
                       learning_starts=100, hidden_units=(8,), seed=0,
                       env_kwargs={"max_episode_steps": 5})
    task.build()
    task.train_step(next(task.data()))
    b = {name: getattr(task.buffer, name).numpy() for name in replay.FIELDS}
    ends = np.flatnonzero(b["truncated"])
    np.testing.assert_array_equal(ends, [4, 9])  # steps 5 and 10 hit the limit
    assert not b["terminated"][ends].any()
    for t in ends:  # next obs of row t is not the reset observation row t + 1 starts from
        assert not np.allclose(b["next_observations"][t], b["observations"][t + 1])
    for t in (0, 1, 2, 3, 5):  # inside an episode they are the same observation
        np.testing.assert_array_equal(b["next_observations"][t], b["observations"][t + 1])


SMALL = dict(num_envs=2, train_frequency=8, gradient_steps=3, buffer_size=40, batch_size=8,
             learning_starts=16, hidden_units=(8,), seed=3)
TASKS = {  # the buffer wraps (6 x 16 = 96 transitions > 40); TD3 with OU noise
    "dqn": lambda: dqn.DoubleDQNTask("CartPole-v1", total_updates=6, target_update_interval=24,
                                     **SMALL),
    "td3": lambda: ddpg.TD3Task("Pendulum-v1", total_updates=6, noise_type="ornstein-uhlenbeck",
                                noise_std=0.5, **SMALL),
}


def _state(task):
    """Every number a checkpoint holds (the pickled environments compare by the episodes and
    the next collection, as in test_onpolicy)."""
    variables = [task.buffer.generator.state]
    for item in task.checkpoint_items().values():
        if isinstance(item, tf.random.Generator):
            variables.append(item.state)
        else:
            variables += list(getattr(item, "variables", [item]))
    return [v.numpy() for v in variables if v.dtype != tf.string], task.collector.episodes


@pytest.mark.parametrize("name", sorted(TASKS))
def test_resume_equals_uninterrupted(tmp_path, name):
    whole, first, second, result = whole_and_resumed(TASKS[name], tmp_path)
    assert int(first.buffer.size.numpy()) == 40 and int(first.updates.numpy()) == 9
    assert result["resumed_from_step"] == 3
    assert int(second.collector.env_steps.numpy()) == 6 * 16
    assert int(second.updates.numpy()) == 6 * 3  # from the first call on: 16 env steps
    (a, episodes_a), (b, episodes_b) = _state(whole), _state(second)
    assert len(a) == len(b) > 20
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(episodes_a, episodes_b)
    assert second.traces == 1  # one trace per run
    one, two = whole.collector.collect(whole.behaviour()), second.collector.collect(
        second.behaviour())
    for key in one:  # the environments and the behaviour policy's noise continue alike
        np.testing.assert_array_equal(one[key].numpy(), two[key].numpy(), err_msg=key)
