"""Policies over tabular action values, and schedules for the exploration rate and step size.

A tabular policy is an array ``pi[s, a]`` of action probabilities (every row sums to 1). From
action values ``q[s, a]``:

- the greedy policy puts all its mass on ``argmax_a q(s, a)``. Ties are split evenly among the
  maximising actions, so ``greedy(q)`` is a proper distribution that does not favour the lowest
  action index;
- the epsilon-greedy policy explores with probability ``epsilon`` (a uniformly random action)
  and is greedy otherwise::

      pi(a | s) = epsilon / |A| + (1 - epsilon) * [a in argmax q(s, .)] / |argmax q(s, .)|

  It is *epsilon-soft*: every action has probability at least ``epsilon / |A|`` (Sutton & Barto,
  section 5.4), which on-policy Monte Carlo control needs to keep exploring.

:func:`epsilon_greedy` samples an action with exactly the probabilities of
:func:`epsilon_greedy_probs` (random tie-breaking among the maxima), which expected SARSA relies
on. It works on one row of ``q`` and on plain Python lists, because the tabular algorithms call it
once per environment step and small NumPy calls there cost more than the arithmetic itself.

Schedules are callables ``episode -> value`` (episode counted from 0): :func:`constant`,
:func:`linear_decay`, :func:`exponential_decay`. :func:`as_schedule` turns a float into a
constant schedule, so every algorithm accepts either.

Course: ch6.1.3 Temporal Difference Learning (epsilon-greedy and epsilon-soft policies).
Book: Sutton & Barto, Reinforcement Learning: An Introduction, 2nd ed. (2018), sections 2.2, 5.4.
"""

import math

import numpy as np


def _check_epsilon(epsilon):
    if not 0.0 <= epsilon <= 1.0:
        raise ValueError(f"epsilon must be in [0, 1]. Received: epsilon={epsilon}")


def greedy(q):
    """The greedy policy of action values ``q``; ties are split evenly among the maxima.

    Args:
        q: [S, A] action values.

    Returns:
        [S, A] float64 action probabilities; row ``s`` is uniform over ``argmax_a q[s, a]``.
    """
    q = np.asarray(q, dtype=np.float64)
    if q.ndim != 2:
        raise ValueError(f"q must have shape [S, A]. Received: q.shape={q.shape}")
    best = q == q.max(axis=1, keepdims=True)
    return best / best.sum(axis=1, keepdims=True)


def epsilon_greedy_probs(q_row, epsilon):
    """Action probabilities of the epsilon-greedy policy in one state.

    Args:
        q_row: [A] action values of one state (array or list).
        epsilon: exploration probability in [0, 1].

    Returns:
        [A] float64 probabilities ``epsilon / A + (1 - epsilon) * greedy``.
    """
    _check_epsilon(epsilon)
    q_row = np.asarray(q_row, dtype=np.float64)
    best = q_row == q_row.max()
    return epsilon / q_row.size + (1.0 - epsilon) * best / best.sum()


def epsilon_soft(q, epsilon):
    """The epsilon-greedy policy of ``q`` in every state: an epsilon-soft policy.

    Args:
        q: [S, A] action values.
        epsilon: exploration probability in [0, 1].

    Returns:
        [S, A] probabilities, each at least ``epsilon / A``.
    """
    _check_epsilon(epsilon)
    q = np.asarray(q, dtype=np.float64)
    return epsilon / q.shape[1] + (1.0 - epsilon) * greedy(q)


def argmax_random(q_row, rng):
    """Index of a maximum of ``q_row``; ties broken uniformly at random with ``rng``."""
    best = max(q_row)
    maxima = [a for a, value in enumerate(q_row) if value == best]
    if len(maxima) == 1:
        return maxima[0]
    # rng.random() is in [0, 1), so the index is in [0, len(maxima)).
    return maxima[int(rng.random() * len(maxima))]


def epsilon_greedy(q_row, epsilon, rng):
    """Samples an action from the epsilon-greedy policy of one state.

    With probability ``epsilon`` a uniformly random action, otherwise a maximising action (ties
    broken at random), so the probabilities are those of :func:`epsilon_greedy_probs`.

    Args:
        q_row: [A] action values of one state (a list of floats is fastest).
        epsilon: exploration probability in [0, 1].
        rng: a ``numpy.random.Generator``.

    Returns:
        The action, a Python int.
    """
    if epsilon > 0.0 and rng.random() < epsilon:
        return int(rng.random() * len(q_row))
    return argmax_random(q_row, rng)


def sampler(policy):
    """Turns a tabular policy into a fast function ``(state, rng) -> action``.

    Deterministic rows (one action with probability 1) cost no random number; the others are
    sampled by inverting the cumulative distribution with one uniform number.

    Args:
        policy: [S, A] action probabilities (rows sum to 1).

    Returns:
        A function ``sample(state, rng) -> int``.

    Raises:
        ValueError: if ``policy`` is not [S, A] with non-negative rows summing to 1.
    """
    policy = np.asarray(policy, dtype=np.float64)
    if policy.ndim != 2 or np.any(policy < 0) or not np.allclose(policy.sum(axis=1), 1.0):
        raise ValueError(
            "policy must be [S, A] probabilities with rows summing to 1. "
            f"Received: shape={policy.shape}, row sums={np.unique(policy.sum(axis=-1))[:5]}"
        )
    deterministic = [int(np.argmax(row)) if row.max() == 1.0 else None for row in policy]
    cumulative = [list(np.cumsum(row)) for row in policy]
    last = policy.shape[1] - 1

    def sample(state, rng):
        action = deterministic[state]
        if action is not None:
            return action
        u = rng.random()
        for a, c in enumerate(cumulative[state]):
            if u < c:
                return a
        return last  # u above a cumulative sum rounded slightly below 1

    return sample


def constant(value):
    """The schedule ``episode -> value``."""

    def schedule(episode):
        return value

    schedule.__doc__ = f"constant({value})"
    return schedule


def linear_decay(start, end, steps):
    """Linear interpolation from ``start`` (episode 0) to ``end`` (episode ``steps`` and after).

    Raises:
        ValueError: if ``steps`` is not positive.
    """
    if steps <= 0:
        raise ValueError(f"steps must be positive. Received: steps={steps}")

    def schedule(episode):
        if episode >= steps:
            return end
        return start + episode / steps * (end - start)

    schedule.__doc__ = f"linear_decay({start}, {end}, {steps})"
    return schedule


def exponential_decay(start, rate, minimum=0.0):
    """The schedule ``episode -> max(minimum, start * rate ** episode)``.

    Raises:
        ValueError: if ``rate`` is not in (0, 1].
    """
    if not 0.0 < rate <= 1.0:
        raise ValueError(f"rate must be in (0, 1]. Received: rate={rate}")

    def schedule(episode):
        return max(minimum, start * math.pow(rate, episode))

    schedule.__doc__ = f"exponential_decay({start}, {rate}, {minimum})"
    return schedule


def as_schedule(x):
    """A schedule from a float (constant) or a callable ``episode -> value`` (returned as is)."""
    if callable(x):
        return x
    return constant(float(x))
