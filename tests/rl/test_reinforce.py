"""REINFORCE: the loss by hand, the Monte Carlo mask, both baselines on CartPole."""

import numpy as np
import pytest
import tensorflow as tf

from mp.rl import reinforce
from tests.rl.deep_rl_helpers import last_returns, train


def test_complete_steps():
    # one env: episodes end at t=1 (terminated) and t=3 (truncated); t=4, 5 are unfinished
    term = [[0.0], [1.0], [0.0], [0.0], [0.0], [0.0]]
    trunc = [[0.0], [0.0], [0.0], [1.0], [0.0], [0.0]]
    got = reinforce.complete_steps(term, trunc).numpy()[:, 0]
    np.testing.assert_array_equal(got, [1, 1, 1, 1, 0, 0])


def test_reinforce_loss_by_hand():
    # log-probs log 0.5, log 0.25, log 0.8; returns 3, 1, 2; baseline 2; mask 1, 1, 0:
    #   weights (G - b) * mask = 1, -1, 0
    #   loss = -(log 0.5 * 1 + log 0.25 * -1) / 2 = -(-0.693147 + 1.386294) / 2 = -0.346574
    loss = reinforce.reinforce_loss(tf.math.log([0.5, 0.25, 0.8]), tf.constant([3.0, 1.0, 2.0]),
                                    tf.constant(2.0), tf.constant([1.0, 1.0, 0.0]))
    np.testing.assert_allclose(loss.numpy(), -0.346574, rtol=1e-5)


def test_bad_baseline():
    with pytest.raises(ValueError, match="baseline must be"):
        reinforce.ReinforceTask("CartPole-v1", total_updates=1, baseline="median")


@pytest.mark.parametrize("baseline", ["value", "moving_average"])
def test_learns_cartpole(tmp_path, baseline):
    task = reinforce.ReinforceTask(
        "CartPole-v1", total_updates=100, num_envs=2, num_steps=500, seed=0, baseline=baseline,
        learning_rate=5e-3, value_learning_rate=5e-3, value_epochs=10)
    train(task, tmp_path, 15)  # 15000 env steps, ~5-8 s
    assert last_returns(task) > 50  # value baseline measured 126, 101, 88 (seeds 0-2); random ~22
    assert task.traces == 1
    if baseline == "moving_average":  # the baseline follows the returns
        assert float(task.average_return.numpy()) > 10
