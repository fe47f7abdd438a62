"""PPO: the loss by hand on a tiny batch, and a short CartPole run."""

import math

import numpy as np
import pytest
import tensorflow as tf

from mp.rl import ppo
from tests.rl.deep_rl_helpers import last_returns, train


def test_clipped_surrogate_by_hand():
    # ratios: 0.6 / 0.4 = 1.5 and 0.2 / 0.4 = 0.5; eps = 0.2; advantages 1 and -2:
    #   sample 1: min(1.5 * 1, clip(1.5) = 1.2 * 1) = 1.2          -> loss -1.2
    #   sample 2: min(0.5 * -2 = -1, clip(0.5) = 0.8 * -2 = -1.6) = -1.6 -> loss 1.6
    log_probs = tf.math.log([0.6, 0.2])
    old = tf.math.log([0.4, 0.4])
    loss, ratio = ppo.clipped_surrogate(log_probs, old, tf.constant([1.0, -2.0]), 0.2)
    np.testing.assert_allclose(ratio.numpy(), [1.5, 0.5], rtol=1e-6)
    np.testing.assert_allclose(loss.numpy(), [-1.2, 1.6], rtol=1e-6)
    # inside the clip range the surrogate is the plain importance-weighted advantage
    loss, _ = ppo.clipped_surrogate(tf.math.log([0.44]), tf.math.log([0.4]), tf.constant([3.0]), 0.2)
    np.testing.assert_allclose(loss.numpy(), [-1.1 * 3.0], rtol=1e-6)


def test_value_loss_by_hand():
    # predictions 1 and 2.2, returns 2 and 2, old values 1.5 and 1.0, clip 0.2:
    #   unclipped (1 - 2)^2 = 1, (2.2 - 2)^2 = 0.04
    #   clipped: 1.5 + clip(-0.5) = 1.3 -> 0.49;  1.0 + clip(1.2) = 1.2 -> 0.64
    #   max: 1 and 0.64 (the clipped prediction is worse for sample 2, so it counts)
    got = ppo.value_loss(tf.constant([1.0, 2.2]), tf.constant([2.0, 2.0]),
                         tf.constant([1.5, 1.0]), 0.2)
    np.testing.assert_allclose(got.numpy(), [1.0, 0.64], rtol=1e-5)
    got = ppo.value_loss(tf.constant([1.0, 2.2]), tf.constant([2.0, 2.0]))
    np.testing.assert_allclose(got.numpy(), [1.0, 0.04], rtol=1e-5)


def test_task_loss_and_diagnostics_by_hand(tmp_path):
    """PPOTask.loss on two transitions, against the policy's own softmax in NumPy."""
    task = ppo.PPOTask("CartPole-v1", total_updates=1, num_envs=1, num_steps=2, minibatch_size=2,
                       normalize_advantage=False, vf_coef=0.5, ent_coef=0.01)
    task.build()
    obs = tf.constant([[0.1, 0.0, -0.2, 0.3], [0.0, 1.0, 0.0, -1.0]])
    actions = tf.constant([0, 1])
    logits = task.policy(obs).numpy()
    p = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    log_pi = np.log(p[[0, 1], [0, 1]])
    old = log_pi - np.log([1.5, 0.5])  # ratios 1.5 and 0.5 as above
    adv, returns, old_values = np.array([1.0, -2.0]), np.array([2.0, 2.0]), task.value(obs).numpy()
    total, (policy_loss, v_loss, entropy, approx_kl, clip_fraction) = task.loss(
        obs, actions, tf.constant(old, tf.float32), tf.constant(adv, tf.float32),
        tf.constant(returns, tf.float32), tf.constant(old_values), tf.constant(0.2))
    # policy: mean(-1.2, 1.6) = 0.2; approx KL: mean((r - 1) - log r) over r = 1.5, 0.5 =
    #   mean(0.5 - 0.405465, -0.5 + 0.693147) = mean(0.094535, 0.193147) = 0.143841
    np.testing.assert_allclose(policy_loss.numpy(), 0.2, rtol=1e-5)
    np.testing.assert_allclose(approx_kl.numpy(), 0.143841, rtol=1e-4)
    np.testing.assert_allclose(clip_fraction.numpy(), 1.0)  # |r - 1| = 0.5 > 0.2 for both
    expected_value = np.mean((old_values - returns) ** 2)
    expected_entropy = np.mean(-(p * np.log(p)).sum(-1))
    np.testing.assert_allclose(v_loss.numpy(), expected_value, rtol=1e-5)
    np.testing.assert_allclose(entropy.numpy(), expected_entropy, rtol=1e-5)
    np.testing.assert_allclose(total.numpy(), 0.2 + 0.5 * expected_value - 0.01 * expected_entropy, rtol=1e-5)


def test_normalize_uses_the_unbiased_std():
    # [1, 2, 3, 4]: mean 2.5, squared deviations 2.25 + 0.25 + 0.25 + 2.25 = 5, over n - 1 = 3:
    # std sqrt(5 / 3) = 1.2909944 (PyTorch's default, which SB3 uses); the biased one is 1.118
    got = ppo.normalize(tf.constant([1.0, 2.0, 3.0, 4.0]))
    np.testing.assert_allclose(got.numpy(), np.array([-1.5, -0.5, 0.5, 1.5]) / 1.2909944, rtol=1e-6)
    np.testing.assert_allclose(ppo.normalize(tf.constant([3.0])).numpy(), [3.0])  # one: as is


def test_first_update_anneals_like_sb3():
    """SB3 sets the progress remaining after each rollout: its first of 4 updates already runs
    at 3/4 of the learning rate and of the clip range."""
    task = ppo.PPOTask("CartPole-v1", total_updates=4, num_envs=2, num_steps=8, seed=0,
                       epochs=1, minibatch_size=16, learning_rate=1e-3, clip_range=0.2,
                       anneal_lr=True, anneal_clip=True, hidden_units=(8,))
    task.build()
    outputs = tf.function(task.train_step)(next(task.data()))
    np.testing.assert_allclose(float(outputs["charts/clip_range"]), 0.15, rtol=1e-6)
    np.testing.assert_allclose(float(outputs["charts/learning_rate"]), 7.5e-4, rtol=1e-6)


def test_bad_arguments():
    with pytest.raises(ValueError, match="minibatch_size must divide"):
        ppo.PPOTask("CartPole-v1", total_updates=1, num_envs=2, num_steps=5, minibatch_size=4)


def test_learns_cartpole(tmp_path):
    # rl-baselines3-zoo's CartPole settings; a random policy's episodes last ~22 steps
    task = ppo.PPOTask("CartPole-v1", total_updates=390, num_envs=8, num_steps=32, seed=0,
                       gamma=0.98, gae_lambda=0.8, epochs=20, minibatch_size=256,
                       learning_rate=1e-3, anneal_lr=True, anneal_clip=True)
    train(task, tmp_path, 60)  # 15360 env steps, ~6 s
    assert last_returns(task) > 80  # measured 126, 216, 259 for seeds 0, 1, 2
    assert task.traces == 1
    assert math.isclose(float(task.collector.env_steps.numpy()), 60 * 256)


def test_target_kl_stops_the_update():
    """With a tiny KL target the update stops after the first step: the first minibatch has
    ratio 1 (KL 0) and is taken, the next one already exceeds 1.5 * target."""
    def update(target_kl):
        task = ppo.PPOTask("CartPole-v1", total_updates=1, num_envs=2, num_steps=32, seed=0,
                           epochs=4, minibatch_size=16, target_kl=target_kl,
                           learning_rate=1e-2)
        task.build()
        return tf.function(task.train_step)(next(task.data()))

    assert float(update(1e-9)["charts/gradient_steps"]) == 1.0
    assert float(update(None)["charts/gradient_steps"]) == 4 * 4  # epochs x minibatches
