"""Returns and bootstrapped targets of one episode, as pure NumPy functions.

Indexing follows Sutton & Barto: an episode ``S_0, A_0, R_1, S_1, A_1, R_2, ..., S_T`` of ``T``
steps is stored as ``rewards[t] = R_{t+1}`` (length ``T``) and ``values[t] = V(S_t)`` (length
``T + 1``; ``values[T]`` is the value of the state the episode stopped in).

- Discounted return (S&B eq. 3.8), computed backwards with ``G_t = R_{t+1} + gamma G_{t+1}``::

      G_t = sum_{k=0}^{T-t-1} gamma^k R_{t+k+1} (+ gamma^{T-t} V(S_T) if the episode was cut)

- n-step return (S&B eq. 7.1), the first ``n`` rewards then the estimate of the state reached::

      G_{t:t+n} = R_{t+1} + ... + gamma^{n-1} R_{t+n} + gamma^n V(S_{t+n})   (t + n < T)

  and the full return ``G_t`` when ``t + n >= T``.
- lambda-return (S&B eq. 12.2 / 12.3), a geometric mixture of all n-step returns::

      G^lambda_t = (1 - lambda) sum_{n=1}^{T-t-1} lambda^{n-1} G_{t:t+n} + lambda^{T-t-1} G_t

  computed backwards with ``G^lambda_t = R_{t+1} + gamma [(1 - lambda) V(S_{t+1}) +
  lambda G^lambda_{t+1}]``. ``lambda = 0`` gives the one-step TD target, ``lambda = 1`` the
  Monte Carlo return.
- TD errors ``delta_t = R_{t+1} + gamma V(S_{t+1}) - V(S_t)``; the lambda-return minus
  ``V(S_t)`` is their ``(gamma lambda)``-discounted sum.

An episode that *terminated* (reached a terminal state) has ``V(S_T) = 0`` whatever
``values[T]`` holds: pass ``terminated=True``. An episode that was *truncated* (a time limit)
did not end in a terminal state, so its targets bootstrap from ``values[T]``: pass
``terminated=False``.

Course: ch6.1.2 Monte Carlo Sampling, ch6.1.3 Temporal Difference Learning.
Book: Sutton & Barto, Reinforcement Learning: An Introduction, 2nd ed. (2018), sections 3.3,
7.1, 12.1.
"""

import numpy as np


def _as_arrays(rewards, values=None, terminated=True):
    rewards = np.asarray(rewards, dtype=np.float64)
    if rewards.ndim != 1:
        raise ValueError(f"rewards must have shape [T]. Received: shape={rewards.shape}")
    if values is None:
        return rewards, None
    values = np.array(values, dtype=np.float64)  # a copy: the last entry may be zeroed
    if values.shape != (rewards.size + 1,):
        raise ValueError(
            "values must have shape [T + 1] (V(S_0) ... V(S_T)). "
            f"Received: values.shape={values.shape} for {rewards.size} rewards"
        )
    if terminated:
        values[-1] = 0.0
    return rewards, values


def _check_gamma(gamma):
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma must be in [0, 1]. Received: gamma={gamma}")


def discounted_returns(rewards, gamma, bootstrap_value=0.0):
    """Discounted returns ``G_t`` of every step of an episode.

    Args:
        rewards: [T] rewards, ``rewards[t] = R_{t+1}``.
        gamma: discount factor in [0, 1].
        bootstrap_value: ``V(S_T)``, added discounted to every return (0 for an episode that
            terminated; the estimate of the last state for a truncated one).

    Returns:
        [T] float64 returns.
    """
    _check_gamma(gamma)
    rewards, _ = _as_arrays(rewards)
    returns = np.empty_like(rewards)
    g = float(bootstrap_value)
    for t in range(rewards.size - 1, -1, -1):
        g = rewards[t] + gamma * g  # G_t = R_{t+1} + gamma G_{t+1}
        returns[t] = g
    return returns


def td_errors(rewards, values, gamma, *, terminated=True):
    """One-step TD errors ``delta_t = R_{t+1} + gamma V(S_{t+1}) - V(S_t)``.

    Args:
        rewards: [T] rewards.
        values: [T + 1] state values ``V(S_0) ... V(S_T)``.
        gamma: discount factor in [0, 1].
        terminated: whether ``S_T`` is terminal (then ``V(S_T) = 0``).

    Returns:
        [T] float64 TD errors.
    """
    _check_gamma(gamma)
    rewards, values = _as_arrays(rewards, values, terminated)
    return rewards + gamma * values[1:] - values[:-1]


def n_step_returns(rewards, values, gamma, n, *, terminated=True):
    """n-step returns ``G_{t:t+n}`` of every step of an episode.

    Args:
        rewards: [T] rewards.
        values: [T + 1] state values ``V(S_0) ... V(S_T)``.
        gamma: discount factor in [0, 1].
        n: number of rewards before bootstrapping, at least 1.
        terminated: whether ``S_T`` is terminal (then ``V(S_T) = 0``).

    Returns:
        [T] float64 targets.

    Raises:
        ValueError: if ``n < 1``.
    """
    _check_gamma(gamma)
    if n < 1:
        raise ValueError(f"n must be at least 1. Received: n={n}")
    rewards, values = _as_arrays(rewards, values, terminated)
    T = rewards.size
    returns = np.empty(T)
    for t in range(T):
        h = min(t + n, T)  # the horizon: the state we bootstrap from
        discounts = gamma ** np.arange(h - t)
        returns[t] = discounts @ rewards[t:h] + gamma ** (h - t) * values[h]
    return returns


def lambda_returns(rewards, values, gamma, lambda_, *, terminated=True):
    """lambda-returns ``G^lambda_t`` of every step of an episode (offline, forward view).

    Args:
        rewards: [T] rewards.
        values: [T + 1] state values ``V(S_0) ... V(S_T)``.
        gamma: discount factor in [0, 1].
        lambda_: trace-decay parameter in [0, 1]; 0 gives the TD(0) target, 1 the MC return.
        terminated: whether ``S_T`` is terminal (then ``V(S_T) = 0``).

    Returns:
        [T] float64 targets.
    """
    _check_gamma(gamma)
    if not 0.0 <= lambda_ <= 1.0:
        raise ValueError(f"lambda_ must be in [0, 1]. Received: lambda_={lambda_}")
    rewards, values = _as_arrays(rewards, values, terminated)
    returns = np.empty_like(rewards)
    g = values[-1]  # G^lambda_T = V(S_T)
    for t in range(rewards.size - 1, -1, -1):
        g = rewards[t] + gamma * ((1.0 - lambda_) * values[t + 1] + lambda_ * g)
        returns[t] = g
    return returns
