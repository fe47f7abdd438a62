"""Tests of mp.rl.returns against naive loops written straight from the definitions."""

import numpy as np
import pytest

from mp.rl import returns


def naive_return(rewards, gamma, t, h, bootstrap):
    """sum_{k=t}^{h-1} gamma^(k-t) R_{k+1} + gamma^(h-t) V(S_h), straight from the definition."""
    g = 0.0
    for k in range(t, h):
        g += gamma ** (k - t) * rewards[k]
    return g + gamma ** (h - t) * bootstrap


def naive_n_step(rewards, values, gamma, n, terminated):
    T = len(rewards)
    v = list(values)
    if terminated:
        v[T] = 0.0
    return [naive_return(rewards, gamma, t, min(t + n, T), v[min(t + n, T)]) for t in range(T)]


def naive_lambda(rewards, values, gamma, lam, terminated):
    # G^lambda_t = (1 - lambda) sum_{n=1}^{T-t-1} lambda^(n-1) G_{t:t+n} + lambda^(T-t-1) G_{t:T}
    T = len(rewards)
    out = []
    for t in range(T):
        g = 0.0
        for n in range(1, T - t):
            g += (1 - lam) * lam ** (n - 1) * naive_n_step(rewards, values, gamma, n, terminated)[t]
        g += lam ** (T - t - 1) * naive_n_step(rewards, values, gamma, T, terminated)[t]
        out.append(g)
    return out


@pytest.fixture
def episode():
    rng = np.random.default_rng(0)
    rewards = rng.normal(size=9)
    values = rng.normal(size=10)
    return rewards, values


def test_discounted_returns_by_hand():
    # gamma = 0.5, rewards 1, 2, 4: G_2 = 4, G_1 = 2 + 0.5 * 4 = 4, G_0 = 1 + 0.5 * 4 = 3.
    np.testing.assert_allclose(returns.discounted_returns([1.0, 2.0, 4.0], 0.5), [3.0, 4.0, 4.0])
    # With a bootstrap value 8 after the last step: G_2 = 4 + 0.5 * 8 = 8, G_1 = 6, G_0 = 4.
    np.testing.assert_allclose(
        returns.discounted_returns([1.0, 2.0, 4.0], 0.5, bootstrap_value=8.0), [4.0, 6.0, 8.0]
    )


@pytest.mark.parametrize("gamma", [0.0, 0.9, 1.0])
def test_discounted_returns_against_loop(episode, gamma):
    rewards, values = episode
    T = len(rewards)
    expected = [naive_return(rewards, gamma, t, T, values[-1]) for t in range(T)]
    got = returns.discounted_returns(rewards, gamma, bootstrap_value=values[-1])
    np.testing.assert_allclose(got, expected, rtol=1e-12)


@pytest.mark.parametrize("terminated", [True, False])
@pytest.mark.parametrize("n", [1, 2, 4, 9, 20])
def test_n_step_returns_against_loop(episode, n, terminated):
    rewards, values = episode
    got = returns.n_step_returns(rewards, values, 0.9, n, terminated=terminated)
    np.testing.assert_allclose(got, naive_n_step(rewards, values, 0.9, n, terminated), rtol=1e-12)


@pytest.mark.parametrize("terminated", [True, False])
@pytest.mark.parametrize("lam", [0.0, 0.3, 0.8, 1.0])
def test_lambda_returns_against_loop(episode, lam, terminated):
    rewards, values = episode
    got = returns.lambda_returns(rewards, values, 0.9, lam, terminated=terminated)
    expected = naive_lambda(rewards, values, 0.9, lam, terminated)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


def test_lambda_return_limits(episode):
    rewards, values = episode
    # lambda = 0: the one-step TD target R_{t+1} + gamma V(S_{t+1}) = the 1-step return.
    np.testing.assert_allclose(
        returns.lambda_returns(rewards, values, 0.9, 0.0),
        returns.n_step_returns(rewards, values, 0.9, 1),
        rtol=1e-12,
    )
    # lambda = 1: the Monte Carlo return (terminated episode, no bootstrap).
    np.testing.assert_allclose(
        returns.lambda_returns(rewards, values, 0.9, 1.0),
        returns.discounted_returns(rewards, 0.9),
        rtol=1e-12,
    )


def test_lambda_return_is_discounted_sum_of_td_errors(episode):
    # G^lambda_t - V(S_t) = sum_k (gamma lambda)^k delta_{t+k}  (the TD errors telescope).
    rewards, values = episode
    gamma, lam = 0.9, 0.7
    for terminated in (True, False):
        deltas = returns.td_errors(rewards, values, gamma, terminated=terminated)
        T = len(rewards)
        expected = [
            values[t] + sum((gamma * lam) ** (k - t) * deltas[k] for k in range(t, T))
            for t in range(T)
        ]
        got = returns.lambda_returns(rewards, values, gamma, lam, terminated=terminated)
        np.testing.assert_allclose(got, expected, rtol=1e-10)


def test_bad_arguments(episode):
    rewards, values = episode
    with pytest.raises(ValueError, match="Received: n=0"):
        returns.n_step_returns(rewards, values, 0.9, 0)
    with pytest.raises(ValueError, match="Received: gamma=1.5"):
        returns.discounted_returns(rewards, 1.5)
    with pytest.raises(ValueError, match=r"shape \[T \+ 1\]"):
        returns.lambda_returns(rewards, values[:-1], 0.9, 0.5)
    with pytest.raises(ValueError, match="Received: lambda_=2"):
        returns.lambda_returns(rewards, values, 0.9, 2)
