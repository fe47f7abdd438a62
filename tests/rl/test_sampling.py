"""Tests of mp.rl.sampling: what Monte Carlo and TD share (checks, tables, seeded episodes, RMS)."""

import math

import numpy as np
import pytest

from mp.rl import policies, sampling, tabular


def test_checks_of_the_common_arguments():
    sampling.check_common(1.0, 3)
    with pytest.raises(ValueError, match=r"gamma must be in \[0, 1\]"):
        sampling.check_common(1.5, 3)
    for episodes in (0, 2.5):
        with pytest.raises(ValueError, match="episodes must be a positive integer"):
            sampling.check_common(0.9, episodes)
    sampling.check_alpha(0.1)
    sampling.check_alpha(policies.linear_decay(0.5, 0.1, 10))  # a schedule
    sampling.check_alpha(None, allow_none=True)  # sample averages
    for alpha in (None, 0.0, -0.1):
        with pytest.raises(ValueError, match="alpha must be positive or a schedule"):
            sampling.check_alpha(alpha)
    sampling.check_epsilon(0.0)
    sampling.check_epsilon(policies.linear_decay(1.0, 0.0, 10))
    with pytest.raises(ValueError, match=r"epsilon must be in \[0, 1\]"):
        sampling.check_epsilon(1.5)


def test_table_zeroes_the_terminal_states():
    env = tabular.make_env("FrozenLake-v1")  # holes 5, 7, 11, 12 and the goal 15 end episodes
    v = sampling.table(0.5, (16,), env)
    assert isinstance(v, list) and len(v) == 16
    assert [s for s in range(16) if v[s] == 0.0] == [5, 7, 11, 12, 15]
    q = sampling.table(np.ones((16, 4)), (16, 4), env)
    assert isinstance(q[0], list) and q[0] == [1.0] * 4 and q[15] == [0.0] * 4
    assert sampling.table(0.5, (3,)) == [0.5, 0.5, 0.5]  # no environment: nothing is terminal
    with pytest.raises(ValueError, match="Initial values must have shape"):
        sampling.table(np.zeros(5), (16,), env)


def test_rms_tracker_counts_the_non_terminal_states_only():
    env = tabular.make_env("RandomWalk")  # states 0 and 6 terminal, true values 1/6 .. 5/6
    true_v = tabular.RANDOM_WALK_TRUE_VALUES
    rms = sampling.rms_tracker(env, true_v)
    # All zeros: sqrt(mean((k/6)^2, k = 1..5)) = sqrt(55 / 180).
    assert rms([0.0] * 7) == pytest.approx(math.sqrt(55 / 180))
    assert rms([9.0] + list(true_v[1:6]) + [9.0]) == pytest.approx(0.0)
    assert sampling.rms_tracker(env, None) is None
    with pytest.raises(ValueError, match="true_v must have shape"):
        sampling.rms_tracker(env, np.zeros(5))


def test_one_seeded_stream_of_episodes():
    def starts(seed):
        env = tabular.make_env("Blackjack-v1")
        rng = sampling.seed_env(env, seed)
        observations = []
        for episode in range(20):
            observations.append(sampling.reset(env, episode, seed))
            env.step(0)  # stick: the hand is over
        return observations, rng.random(), env.action_space.sample()

    assert starts(3) == starts(3)
    assert starts(3)[0] != starts(4)[0]
    assert len(set(starts(3)[0])) > 1  # reset(seed) once, then the stream goes on
