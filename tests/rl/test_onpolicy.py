"""What every on-policy task shares: resumed runs equal uninterrupted ones, one trace per run."""

import numpy as np
import pytest
import tensorflow as tf

from mp.rl import a2c, onpolicy, ppo, reinforce, trpo
from tests.rl.deep_rl_helpers import whole_and_resumed

SMALL = dict(num_envs=2, num_steps=16, seed=3, hidden_units=(8,))
TASKS = {
    # obs and reward normalisation, a squashed Gaussian, annealing: every state a run has
    "ppo": lambda: ppo.PPOTask("Pendulum-v1", total_updates=6, minibatch_size=8, epochs=2,
                               normalize_obs=True, normalize_reward=True, action_bound="tanh",
                               anneal_lr=True, anneal_clip=True, **SMALL),
    "a2c": lambda: a2c.A2CTask("CartPole-v1", total_updates=6, **SMALL),
    "reinforce": lambda: reinforce.ReinforceTask("CartPole-v1", total_updates=6,
                                                 baseline="moving_average", **SMALL),
    "trpo": lambda: trpo.TRPOTask("CartPole-v1", total_updates=6, minibatch_size=16,
                                  n_critic_updates=2, **SMALL),
}


def _state(task):
    variables = list(task.policy.variables) + list(task.value.variables) + list(task.collector.variables)
    for optimizer in task.optimizers.values():
        variables += list(optimizer.variables)
    # the pickled environments compare by what they hold (episodes, the next rollout), not by
    # their bytes: pickle's memo numbers objects in the order it meets them
    numbers = [v.numpy() for v in variables if v.dtype != tf.string]
    return numbers, task.collector.episodes, task.generator.state.numpy()


@pytest.mark.parametrize("name", sorted(TASKS))
def test_resume_equals_uninterrupted(tmp_path, name):
    whole, _, second, result = whole_and_resumed(TASKS[name], tmp_path)
    assert result["resumed_from_step"] == 3
    assert int(second.collector.env_steps.numpy()) == 6 * 32
    (a, episodes_a, gen_a), (b, episodes_b, gen_b) = _state(whole), _state(second)
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(episodes_a, episodes_b)
    np.testing.assert_array_equal(gen_a, gen_b)
    sampler = whole.sampler()
    one, two = whole.collector.collect(sampler), second.collector.collect(second.sampler())
    for key in one:  # the environments, observations and sampling continue alike
        np.testing.assert_array_equal(one[key].numpy(), two[key].numpy(), err_msg=key)
    assert second.traces == 1  # one trace per run


def test_linear_decay_reads_the_update_counter():
    counter = tf.Variable(0, dtype=tf.int64)
    schedule = onpolicy.LinearDecay(1e-3, 4, counter)
    rates = []
    for step in range(5):
        counter.assign(step)
        rates.append(float(schedule(12345)))  # the optimizer's own iterations do not matter
    # SB3: update k runs at lr * (1 - env steps after its rollout / budget) = 1 - (k + 1) / 4:
    # 0.75, 0.5, 0.25, 0, and 0 past the end
    np.testing.assert_allclose(rates, [7.5e-4, 5e-4, 2.5e-4, 0.0, 0.0], rtol=1e-6, atol=1e-12)


def test_bias_corrected_adam_is_pytorchs_update():
    """Three steps against Adam as PyTorch writes it (eps added to sqrt(v_hat))."""
    w = tf.Variable([0.5, -1.0])
    optimizer = onpolicy.BiasCorrectedAdam(0.1, epsilon=1e-3)
    grads = [np.array([1e-3, -2.0]), np.array([2e-3, 1.0]), np.array([-1e-3, 0.5])]
    expected, m, v = np.array([0.5, -1.0]), np.zeros(2), np.zeros(2)
    for t, g in enumerate(grads, start=1):
        optimizer.apply_gradients([(tf.constant(g, tf.float32), w)])
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        expected = expected - 0.1 * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-3)
    np.testing.assert_allclose(w.numpy(), expected, rtol=1e-5)
