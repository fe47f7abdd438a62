"""mp.rl.rollout: normaliser statistics, final observations of truncated episodes, samplers."""

import numpy as np
import pytest
import tensorflow as tf

from mp.rl import networks, rollout


def test_running_mean_std_equals_numpy_over_all_batches():
    rng = np.random.default_rng(0)
    batches = [rng.normal(3.0, 2.0, size=(n, 3)) for n in (5, 1, 17, 8)]
    rms = rollout.RunningMeanStd((3,), epsilon=0.0 + 1e-12)
    for b in batches:
        rms.update(b)
    everything = np.concatenate(batches)
    np.testing.assert_allclose(rms.mean.numpy(), everything.mean(0), rtol=1e-9)
    np.testing.assert_allclose(rms.var.numpy(), everything.var(0), rtol=1e-9)
    z = rms.normalize(everything)
    np.testing.assert_allclose(z.mean(0), 0.0, atol=1e-6)
    np.testing.assert_allclose(z.std(0), 1.0, atol=1e-5)


def _zero_policy(obs, rng):
    del rng
    return np.zeros(len(obs), np.int64)  # always push left


def test_truncation_keeps_the_final_observation():
    # CartPole cut after 3 steps; pushing left from a near-upright pole does not end it in 3.
    collector = rollout.Collector("CartPole-v1", num_envs=2, num_steps=7, seed=3,
                                  env_kwargs={"max_episode_steps": 3})
    batch = collector.collect(_zero_policy)
    trunc, term = batch["truncated"].numpy(), batch["terminated"].numpy()
    np.testing.assert_array_equal(trunc[:, 0], [0, 0, 1, 0, 0, 1, 0])
    assert not term.any()
    obs, final = batch["obs"].numpy(), batch["final_obs"].numpy()
    # within an episode the reached observation is the next one; at a cut it is not the
    # next episode's first observation but the old episode's last one, one push further
    np.testing.assert_array_equal(final[0], obs[1])
    assert not np.allclose(final[2], obs[3])
    assert final[2, 0, 1] < obs[2, 0, 1]  # cart velocity kept decreasing (pushed left)
    np.testing.assert_array_equal(batch["last_obs"].numpy(), final[-1])
    episodes = collector.episodes
    assert len(episodes) == 4 and np.all(episodes[:, 2] == 3) and np.all(episodes[:, 1] == 3.0)
    assert int(collector.env_steps.numpy()) == 14


def test_state_round_trip_continues_the_same_rollouts():
    def make():
        return rollout.Collector("CartPole-v1", num_envs=3, num_steps=20, seed=1, normalize_obs=True)

    def policy(obs, rng):
        return rng.integers(0, 2, size=len(obs))

    first = make()
    first.collect(policy)
    second = make()
    second.state.assign(first.state)
    second.env_steps.assign(first.env_steps)
    for a, b in zip(first.obs_rms.variables, second.obs_rms.variables):
        b.assign(a)
    one, two = first.collect(policy), second.collect(policy)
    for key in one:
        np.testing.assert_array_equal(one[key].numpy(), two[key].numpy(), err_msg=key)


def test_numpy_sampler_samples_the_distribution():
    rng = np.random.default_rng(0)
    policy = networks.PolicyNetwork(3, hidden_units=(4,))
    obs = np.tile(rng.normal(size=(1, 5)).astype(np.float32), (20000, 1))
    probs = tf.nn.softmax(policy(obs[:1])).numpy()[0]
    counts = np.bincount(policy.numpy_sampler()(obs, rng), minlength=3) / len(obs)
    np.testing.assert_allclose(counts, probs, atol=0.015)
    gaussian = networks.PolicyNetwork(2, discrete=False, hidden_units=(4,), log_std_init=-0.5,
                                      action_bound="tanh", low=[-2.0, 0.0], high=[2.0, 1.0])
    gaussian.build((None, 5))
    actions = gaussian.numpy_sampler()(obs, rng)
    # the NumPy sampler and TFP's sampler draw from one distribution: compare moments
    tfp_actions = gaussian.distribution(obs).sample(seed=[1, 2]).numpy()
    np.testing.assert_allclose(actions.mean(0), tfp_actions.mean(0), atol=0.02)
    np.testing.assert_allclose(actions.std(0), tfp_actions.std(0), atol=0.02)


def test_bad_environment():
    with pytest.raises(ValueError, match="unknown environment"):
        rollout.make_vector_env("NoSuchEnv-v0", 1)
    with pytest.raises(ValueError, match="num_envs"):
        rollout.make_vector_env("CartPole-v1", 0)
