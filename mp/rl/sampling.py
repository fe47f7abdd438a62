"""What the sampling algorithms (Monte Carlo and TD) share: checks, tables, seeded episodes.

Dynamic programming plans with the model; the algorithms of :mod:`mp.rl.montecarlo` and
:mod:`mp.rl.td` learn from sampled episodes instead, and so share

- the checks of their common arguments (``gamma``, ``episodes``, a step size ``alpha``, an
  exploration rate ``epsilon``, each a number or a schedule ``episode -> value``);
- value tables as nested Python lists (indexing a list per step is much faster than a NumPy
  array), with the entries of terminal states fixed at 0;
- one seeded stream of episodes: ``env.action_space`` and the algorithm's generator seeded
  with ``seed``, the environment by the first ``reset(seed=seed)`` only;
- the RMS error of ``v`` against the true values over the non-terminal states, after each
  episode of a prediction algorithm (S&B figure 6.2's curves).

Course: ch6.1.2 Monte Carlo Sampling, ch6.1.3 Temporal-Difference Learning.
"""

import math

import numpy as np


def check_common(gamma, episodes):
    """Validates the arguments every sampling algorithm shares."""
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma must be in [0, 1]. Received: gamma={gamma}")
    if int(episodes) != episodes or episodes < 1:
        raise ValueError(f"episodes must be a positive integer. Received: episodes={episodes}")


def check_alpha(alpha, allow_none=False):
    """Validates a step size (a positive float or a schedule)."""
    if alpha is None and allow_none:
        return
    if not callable(alpha) and not (alpha is not None and alpha > 0.0):
        raise ValueError(f"alpha must be positive or a schedule. Received: alpha={alpha}")


def check_epsilon(epsilon):
    """Validates an exploration rate (a float in [0, 1] or a schedule)."""
    if not callable(epsilon) and not 0.0 <= epsilon <= 1.0:
        raise ValueError(f"epsilon must be in [0, 1] or a schedule. Received: epsilon={epsilon}")


def table(init, shape, env=None):
    """A value table as nested Python lists (fast to index per step) from a float or an array.

    When ``env`` has a model, the entries of its terminal states are set to 0: no reward follows
    a terminal state, and the algorithms never bootstrap from one.
    """
    init = np.array(init, dtype=np.float64)
    if init.ndim == 0:
        init = np.full(shape, float(init))
    if init.shape != tuple(shape):
        raise ValueError(f"Initial values must have shape {tuple(shape)}. Received: {init.shape}")
    if env is not None:
        from mp.rl import tabular

        if tabular.has_model(env):
            init[tabular.mdp_from_env(env).terminal] = 0.0
    return init.tolist()


def rms_tracker(env, true_v):
    """A function ``v -> RMS error`` against ``true_v`` over the non-terminal states.

    Terminal states are known from the environment's model when it has one (their value is 0 by
    definition and never learned); otherwise every state counts.

    Returns:
        The function, or ``None`` when ``true_v`` is ``None``.
    """
    if true_v is None:
        return None
    from mp.rl import tabular

    true_v = np.asarray(true_v, dtype=np.float64)
    if true_v.shape != (env.observation_space.n,):
        raise ValueError(
            f"true_v must have shape [{env.observation_space.n}]. Received: {true_v.shape}"
        )
    if tabular.has_model(env):
        states = np.flatnonzero(~tabular.mdp_from_env(env).terminal).tolist()
    else:
        states = list(range(true_v.size))
    targets = [float(true_v[s]) for s in states]

    def rms(v):
        return math.sqrt(sum((v[s] - t) ** 2 for s, t in zip(states, targets)) / len(states))

    return rms


def seed_env(env, seed):
    """Seeds ``env.action_space`` and returns the algorithm's generator ``default_rng(seed)``.

    The environment itself is seeded by the first :func:`reset`.
    """
    env.action_space.seed(seed)
    return np.random.default_rng(seed)


def reset(env, episode, seed):
    """``env.reset(seed=seed)`` on the first episode, then ``env.reset()``: one seeded stream."""
    observation, _ = env.reset(seed=seed if episode == 0 else None)
    return int(observation)
