"""Tests of mp.rl.policies: greedy / epsilon-greedy policies and schedules."""

import numpy as np
import pytest

from mp.rl import policies


def test_greedy_splits_ties_evenly():
    q = np.array([[1.0, 3.0, 2.0], [5.0, 5.0, 0.0], [0.0, 0.0, 0.0]])
    expected = np.array([[0, 1, 0], [0.5, 0.5, 0], [1 / 3, 1 / 3, 1 / 3]])
    np.testing.assert_allclose(policies.greedy(q), expected)


def test_epsilon_greedy_probs_by_hand():
    # A = 4, epsilon = 0.2: every action gets 0.2 / 4 = 0.05; the two maxima (indices 1 and 3)
    # share 1 - 0.2 = 0.8, i.e. 0.4 each: [0.05, 0.45, 0.05, 0.45].
    probs = policies.epsilon_greedy_probs([1.0, 2.0, 0.0, 2.0], 0.2)
    np.testing.assert_allclose(probs, [0.05, 0.45, 0.05, 0.45])
    soft = policies.epsilon_soft(np.array([[1.0, 2.0, 0.0, 2.0], [0.0, 0.0, 0.0, 9.0]]), 0.2)
    np.testing.assert_allclose(soft[0], probs)
    # Second row: one maximum, 0.05 + 0.8 = 0.85.
    np.testing.assert_allclose(soft[1], [0.05, 0.05, 0.05, 0.85])
    assert soft.min() >= 0.2 / 4  # epsilon-soft


def test_epsilon_greedy_samples_match_probs():
    rng = np.random.default_rng(0)
    q_row = [1.0, 2.0, 0.0, 2.0]
    n = 40_000
    counts = np.bincount([policies.epsilon_greedy(q_row, 0.2, rng) for _ in range(n)], minlength=4)
    expected = policies.epsilon_greedy_probs(q_row, 0.2)
    # Binomial standard error sqrt(p (1 - p) / n) <= 0.0025; allow 4 of them.
    np.testing.assert_allclose(counts / n, expected, atol=0.01)


def test_sampler_matches_policy_and_is_deterministic_on_one_hot_rows():
    policy = np.array([[0.2, 0.5, 0.3], [0.0, 1.0, 0.0]])
    sample = policies.sampler(policy)
    rng = np.random.default_rng(1)
    n = 40_000
    counts = np.bincount([sample(0, rng) for _ in range(n)], minlength=3)
    np.testing.assert_allclose(counts / n, policy[0], atol=0.01)
    assert {sample(1, rng) for _ in range(100)} == {1}
    with pytest.raises(ValueError, match="rows summing to 1"):
        policies.sampler(np.array([[0.5, 0.6]]))


def test_schedules():
    assert policies.constant(0.3)(1000) == 0.3
    lin = policies.linear_decay(1.0, 0.1, 10)
    # 1.0 + (5 / 10) * (0.1 - 1.0) = 0.55; after `steps` it stays at the end value.
    assert lin(0) == 1.0 and lin(5) == pytest.approx(0.55) and lin(10) == lin(50) == 0.1
    exp = policies.exponential_decay(1.0, 0.5, minimum=0.1)
    # 1.0 * 0.5 ** 2 = 0.25; 0.5 ** 4 = 0.0625 < 0.1, clipped to 0.1.
    assert exp(2) == 0.25 and exp(4) == 0.1
    assert policies.as_schedule(0.7)(3) == 0.7
    assert policies.as_schedule(lin) is lin


def test_bad_arguments():
    with pytest.raises(ValueError, match="Received: epsilon=1.5"):
        policies.epsilon_greedy_probs([0.0, 1.0], 1.5)
    with pytest.raises(ValueError, match="Received: steps=0"):
        policies.linear_decay(1.0, 0.0, 0)
    with pytest.raises(ValueError, match="Received: rate=0"):
        policies.exponential_decay(1.0, 0)
