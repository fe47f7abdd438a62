"""mp.rl.networks: the policies' distributions against closed forms."""

import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf

from mp.rl import networks


def _gaussian_policy(bound, low=(-2.0, -1.0), high=(2.0, 3.0)):
    policy = networks.PolicyNetwork(
        2, discrete=False, hidden_units=(5,), log_std_init=-0.3, action_bound=bound,
        low=list(low), high=list(high),
    )
    policy(tf.zeros((1, 3)))
    return policy


def test_squashed_log_prob_closed_form():
    policy = _gaussian_policy("tanh")
    obs = tf.random.stateless_normal((6, 3), seed=[1, 2])
    mu = policy(obs).numpy()[:, :2]
    sigma = np.exp(-0.3)
    u = np.random.default_rng(0).normal(size=(6, 2)) * 1.5
    low, high = np.array([-2.0, -1.0]), np.array([2.0, 3.0])
    half = (high - low) / 2
    actions = low + half * (np.tanh(u) + 1)
    # log pi(a) = sum_j [log N(u_j; mu_j, sigma) - log(1 - tanh(u_j)^2) - log(half_j)]
    log_normal = -0.5 * ((u - mu) / sigma) ** 2 - np.log(sigma) - 0.5 * np.log(2 * np.pi)
    expected = np.sum(log_normal - np.log(1 - np.tanh(u) ** 2) - np.log(half), axis=-1)
    got = policy.log_prob(policy(obs), actions.astype(np.float32)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    # sampled actions stay inside the box and the mode is the squashed mean
    samples = policy.distribution(obs).sample(seed=[3, 4]).numpy()
    assert np.all(samples > low) and np.all(samples < high)
    np.testing.assert_allclose(policy.mode(policy(obs)).numpy(), low + half * (np.tanh(mu) + 1), rtol=1e-4, atol=1e-6)
    # an action on the bound gets a finite log-probability
    assert np.all(np.isfinite(policy.log_prob(policy(obs), np.tile(high, (6, 1)).astype(np.float32))))


def test_gaussian_and_categorical_closed_forms():
    policy = _gaussian_policy("clip")
    obs = tf.random.stateless_normal((4, 3), seed=[5, 6])
    mu, sigma = policy(obs).numpy()[:, :2], np.exp(-0.3)
    a = mu + 0.7
    # two dimensions, each -(0.7/sigma)^2/2 - log sigma - log(2 pi)/2
    expected = 2 * (-0.5 * (0.7 / sigma) ** 2 + 0.3 - 0.5 * np.log(2 * np.pi))
    np.testing.assert_allclose(policy.distribution(obs).log_prob(a).numpy(), expected, rtol=1e-5)
    # entropy of a diagonal Gaussian: sum_j (1/2) log(2 pi e sigma^2)
    np.testing.assert_allclose(policy.distribution(obs).entropy().numpy(), 2 * (0.5 * np.log(2 * np.pi * np.e) - 0.3), rtol=1e-5)

    categorical = networks.PolicyNetwork(3, hidden_units=(4,))
    logits = categorical(obs).numpy()
    p = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    dist = categorical.distribution(obs)
    np.testing.assert_allclose(dist.log_prob([0, 1, 2, 1]).numpy(), np.log(p[np.arange(4), [0, 1, 2, 1]]), rtol=1e-5)
    np.testing.assert_allclose(dist.entropy().numpy(), -(p * np.log(p)).sum(-1), rtol=1e-5)


def test_for_spaces_and_bad_input():
    policy, value = networks.for_spaces(gym.spaces.Box(-1, 1, (4,)), gym.spaces.Discrete(2))
    assert policy.discrete and value(tf.zeros((3, 4))).shape == (3,)
    policy, _ = networks.for_spaces(gym.spaces.Box(-1, 1, (3,)), gym.spaces.Box(-2, 2, (1,)))
    assert not policy.discrete and policy.low == [-2.0]
    with pytest.raises(ValueError, match="actions must be"):
        networks.for_spaces(gym.spaces.Box(-1, 1, (3,)), gym.spaces.MultiDiscrete([2, 2]))
    with pytest.raises(ValueError, match="observations must be"):
        networks.for_spaces(gym.spaces.Discrete(3), gym.spaces.Discrete(2))
    with pytest.raises(ValueError, match="action_bound"):
        networks.PolicyNetwork(1, discrete=False, action_bound="sigmoid")
