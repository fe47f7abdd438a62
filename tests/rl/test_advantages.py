"""mp.rl.advantages against naive Python loops, and the time-limit check."""

import numpy as np
import pytest

from mp.rl import advantages

GAMMA, LAMBDA = 0.9, 0.8


def _rollout(seed, T=12, N=3):
    rng = np.random.default_rng(seed)
    rewards = rng.normal(size=(T, N)).astype(np.float32)
    values = rng.normal(size=(T, N)).astype(np.float32)
    final_values = rng.normal(size=(T, N)).astype(np.float32)
    last_values = rng.normal(size=N).astype(np.float32)
    terminated = rng.random((T, N)) < 0.15
    truncated = (rng.random((T, N)) < 0.15) & ~terminated
    return rewards, values, final_values, last_values, terminated, truncated


def _naive_next_values(values, last_values, dones, final_values):
    T, N = values.shape
    out = np.zeros_like(values)
    for i in range(N):
        for t in range(T):
            if dones[t, i]:
                out[t, i] = final_values[t, i]
            else:
                out[t, i] = values[t + 1, i] if t + 1 < T else last_values[i]
    return out


def _naive_n_step(rewards, nxt, term, trunc, gamma, n):
    """Sums rewards forward from each t until the window, the episode or the rollout ends."""
    T, N = rewards.shape
    out = np.zeros_like(rewards, dtype=np.float64)
    for i in range(N):
        for t in range(T):
            total, k = 0.0, 0
            while True:
                s = t + k
                total += gamma**k * rewards[s, i]
                if term[s, i]:
                    break  # terminal: nothing follows
                if trunc[s, i] or s == T - 1 or k == n - 1:
                    total += gamma ** (k + 1) * nxt[s, i]  # bootstrap from V(s_{t+k+1})
                    break
                k += 1
            out[t, i] = total
    return out


def _naive_gae(rewards, values, nxt, term, trunc, gamma, lam):
    T, N = rewards.shape
    adv = np.zeros((T, N))
    for i in range(N):
        later = 0.0
        for t in reversed(range(T)):
            delta = rewards[t, i] + gamma * (0.0 if term[t, i] else nxt[t, i]) - values[t, i]
            if term[t, i] or trunc[t, i]:
                later = 0.0  # a new episode starts at t + 1
            later = delta + gamma * lam * later
            adv[t, i] = later
    return adv


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_against_naive_loops(seed):
    rewards, values, final_values, last_values, term, trunc = _rollout(seed)
    dones = term | trunc
    nxt = advantages.next_values(values, last_values, dones, final_values).numpy()
    np.testing.assert_allclose(nxt, _naive_next_values(values, last_values, dones, final_values))
    returns = advantages.discounted_returns(rewards, nxt, term, trunc, GAMMA).numpy()
    T = rewards.shape[0]
    np.testing.assert_allclose(returns, _naive_n_step(rewards, nxt, term, trunc, GAMMA, T + 1), rtol=1e-5, atol=1e-5)
    for n in (1, 3, 5):
        got = advantages.n_step_returns(rewards, nxt, term, trunc, GAMMA, n).numpy()
        np.testing.assert_allclose(got, _naive_n_step(rewards, nxt, term, trunc, GAMMA, n), rtol=1e-5, atol=1e-5)
    adv, ret = advantages.gae(rewards, values, nxt, term, trunc, GAMMA, LAMBDA)
    np.testing.assert_allclose(adv.numpy(), _naive_gae(rewards, values, nxt, term, trunc, GAMMA, LAMBDA), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ret.numpy(), adv.numpy() + values, rtol=1e-6)


def test_gae_limits():
    rewards, values, final_values, last_values, term, trunc = _rollout(3)
    nxt = advantages.next_values(values, last_values, term | trunc, final_values)
    one, _ = advantages.gae(rewards, values, nxt, term, trunc, GAMMA, 1.0)
    returns = advantages.discounted_returns(rewards, nxt, term, trunc, GAMMA)
    np.testing.assert_allclose(one.numpy(), returns.numpy() - values, rtol=1e-5, atol=1e-5)
    zero, _ = advantages.gae(rewards, values, nxt, term, trunc, GAMMA, 0.0)
    deltas = advantages.td_errors(rewards, values, nxt, term, GAMMA)
    np.testing.assert_allclose(zero.numpy(), deltas.numpy(), rtol=1e-6)


def test_hand_example():
    # One env, 3 steps, rewards 1, 2, 3; the episode is truncated at t=1 (V(final)=10) and
    # the rollout ends at t=2 (V(last)=20). gamma = 0.5:
    #   G_2 = 3 + 0.5 * 20 = 13;  G_1 = 2 + 0.5 * 10 = 7 (bootstrapped, not G_2);
    #   G_0 = 1 + 0.5 * G_1 = 4.5.  Terminated at t=1 instead: G_1 = 2, G_0 = 2.
    rewards = [[1.0], [2.0], [3.0]]
    nxt = [[0.0], [10.0], [20.0]]  # V(s_1) irrelevant: G_0 uses G_1 (no cut at t=0)
    no = [[False]] * 3
    cut = [[False], [True], [False]]
    got = advantages.discounted_returns(rewards, nxt, no, cut, 0.5).numpy()[:, 0]
    np.testing.assert_allclose(got, [4.5, 7.0, 13.0])
    got = advantages.discounted_returns(rewards, nxt, cut, no, 0.5).numpy()[:, 0]
    np.testing.assert_allclose(got, [2.0, 2.0, 13.0])


@pytest.mark.parametrize("bootstrap", [True, False])
def test_time_limit_needs_bootstrapping(bootstrap):
    """A constant reward of 1 forever, cut by a time limit of 10 steps: the true value is
    1 / (1 - gamma) = 10 for gamma = 0.9. Fitting V (one state) to the GAE targets of
    rollouts over many cut episodes reaches it only when truncation is bootstrapped; treated
    as a termination it converges to the mean 10-step-horizon return, well below."""
    gamma, limit, T, N = 0.9, 10, 40, 4
    t = np.arange(T)[:, None] + np.arange(N)[None] * 3  # envs out of phase
    cut = (t % limit) == limit - 1
    rewards = np.ones((T, N), np.float32)
    v = 0.0
    for _ in range(300):
        values = np.full((T, N), v, np.float32)
        nxt = np.full((T, N), v, np.float32)  # one state: V(final obs) = V(next obs) = v
        term, trunc = (np.zeros_like(cut), cut) if bootstrap else (cut, np.zeros_like(cut))
        _, targets = advantages.gae(rewards, values, nxt, term, trunc, gamma, 0.95)
        v += 0.5 * (float(np.mean(targets)) - v)
    expected = 1.0 / (1.0 - gamma)
    if bootstrap:
        assert v == pytest.approx(expected, rel=1e-3)
    else:
        # the mean of sum_{k < remaining} 0.9^k over positions in a 10-step episode: ~5.6
        assert v < 0.7 * expected


def test_bad_input():
    with pytest.raises(ValueError, match="n must be"):
        advantages.n_step_returns([[1.0]], [[0.0]], [[False]], [[False]], 0.9, 0)
    with pytest.raises(ValueError, match="shape"):
        advantages.discounted_returns([1.0], [0.0], [False], [False], 0.9)
