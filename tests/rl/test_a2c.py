"""A2C: the loss by hand on a tiny batch, and a short CartPole run."""

import numpy as np
import tensorflow as tf

from mp.rl import a2c
from tests.rl.deep_rl_helpers import last_returns, train


def test_actor_critic_loss_by_hand():
    # log-probs log 0.5, log 0.1; advantages 2, -1; V 1, 0; returns 3, -1; entropies 0.6, 0.4
    #   policy  -(2 * -0.693147 + (-1) * -2.302585) / 2 = -(-1.386294 + 2.302585) / 2 = -0.458146
    #   value   ((1 - 3)^2 + (0 + 1)^2) / 2 = 2.5;   entropy (0.6 + 0.4) / 2 = 0.5
    #   total   -0.458146 + 0.5 * 2.5 - 0.01 * 0.5 = 0.786854
    total, policy, value, entropy = a2c.actor_critic_loss(
        tf.math.log([0.5, 0.1]), tf.constant([2.0, -1.0]), tf.constant([1.0, 0.0]),
        tf.constant([3.0, -1.0]), tf.constant([0.6, 0.4]), 0.5, 0.01)
    np.testing.assert_allclose([total, policy, value, entropy], [0.786854, -0.458146, 2.5, 0.5], rtol=1e-5)


def test_advantages_carry_no_gradient_into_the_actor():
    adv = tf.Variable([2.0, -1.0])
    with tf.GradientTape() as tape:
        total, *_ = a2c.actor_critic_loss(tf.math.log([0.5, 0.1]), adv, tf.zeros(2), tf.zeros(2),
                                          tf.zeros(2), 0.5, 0.0)
    assert tape.gradient(total, adv) is None


def test_learns_cartpole(tmp_path):
    # zoo settings: 8 envs, 5-step rollouts, RMSprop 7e-4, gamma 0.99, no GAE (lambda 1)
    task = a2c.A2CTask("CartPole-v1", total_updates=500, num_envs=8, num_steps=5, seed=0)
    train(task, tmp_path, 500)  # 20000 env steps, ~7-10 s
    assert last_returns(task) > 80  # measured 394, 204, 163 for seeds 0, 1, 2; random ~22
    assert task.traces == 1
