"""Temporal-difference learning: TD(0), SARSA, expected SARSA, Q-learning and eligibility traces.

TD methods update an estimate after every step towards a *target* made of the reward just
received and the current estimate of the next state (they bootstrap), instead of waiting for the
end of the episode like Monte Carlo:

    TD(0) prediction    V(S) <- V(S) + alpha [R + gamma V(S') - V(S)]                   (eq. 6.2)
    SARSA               Q(S,A) <- Q(S,A) + alpha [R + gamma Q(S',A') - Q(S,A)]          (eq. 6.7)
    Q-learning          Q(S,A) <- Q(S,A) + alpha [R + gamma max_a Q(S',a) - Q(S,A)]     (eq. 6.8)
    expected SARSA      Q(S,A) <- Q(S,A) + alpha [R + gamma sum_a pi(a|S') Q(S',a) - Q(S,A)]
                                                                                        (eq. 6.9)

SARSA is on-policy (``A'`` is the action the epsilon-greedy policy really takes next);
Q-learning is off-policy (it learns the greedy policy's values while acting epsilon-greedily);
expected SARSA averages over the epsilon-greedy policy's next action, which for
epsilon-greedy is ``(epsilon / |A|) sum_a Q(S',a) + (1 - epsilon) max_a Q(S',a)``.

TD(lambda) (backward view, S&B section 12.2) keeps an eligibility trace ``e(s)`` per state and
sends every TD error ``delta_t = R_{t+1} + gamma V(S_{t+1}) - V(S_t)`` back to all recently
visited states::

    e(s) <- gamma lambda e(s)           for all s
    e(S_t) <- e(S_t) + 1                accumulating traces
    e(S_t) <- 1                         replacing traces (Singh & Sutton, 1996)
    V(s) <- V(s) + alpha delta_t e(s)   for all s

``lambda = 0`` is TD(0). With ``lambda = 1`` and the updates of an episode summed and applied at
its end (``online=False``, values fixed during the episode), the update of ``V(s)`` is
``alpha sum_{t: S_t = s} (G_t - V(s))``: every-visit constant-alpha Monte Carlo. The two kinds of
traces differ only when a state is visited twice within an episode. Traces below ``1e-12`` are
dropped, which keeps the per-step cost proportional to the number of recent states.
SARSA(lambda) (S&B section 12.7) does the same with traces over state-action pairs and the SARSA
error ``R + gamma Q(S', A') - Q(S, A)``.

Terminated vs truncated: when the environment says ``terminated``, ``S'`` is terminal and the
target is ``R`` alone; when it says ``truncated`` (a time limit), the episode stops but ``S'``
is an ordinary state, so the target still bootstraps from its value.

All value tables are nested Python lists inside the loops (a NumPy scalar access costs more than
the update itself); results are returned as NumPy arrays. Control algorithms return the greedy
policy of the learned ``Q`` as ``policy`` and the final epsilon-greedy one as
``extra["behaviour_policy"]``.

Course: ch6.1.3 Temporal Difference Learning.
Book: Sutton & Barto, Reinforcement Learning: An Introduction, 2nd ed. (2018), sections 6.1-6.6
(example 6.2 random walk, example 6.6 cliff walking), 12.1-12.2, 12.7; 1st ed. (1998), section 7.4
(equivalence of offline TD(1) and every-visit MC), 7.8 (replacing traces). Singh & Sutton,
Reinforcement learning with replacing eligibility traces, Machine Learning 22 (1996).
"""

import numpy as np

from mp.rl import policies
from mp.rl.sampling import (
    check_alpha,
    check_common,
    check_epsilon,
    reset,
    rms_tracker,
    seed_env,
    table,
)
from mp.rl.registry import Result, register

TRACE_CUTOFF = 1e-12


def _check_lambda(lambda_):
    if not 0.0 <= lambda_ <= 1.0:
        raise ValueError(f"lambda_ must be in [0, 1]. Received: lambda_={lambda_}")


@register("td0", kind="prediction")
def td0(
    env,
    *,
    policy,
    gamma=1.0,
    alpha=0.1,
    episodes=100,
    v_init=0.0,
    true_v=None,
    seed=0,
    callback=None,
):
    """TD(0) prediction of ``v_pi``.

    Args:
        env: gymnasium environment with ``Discrete`` observations and actions.
        policy: [S, A] action probabilities of the policy to evaluate.
        gamma: discount factor in [0, 1].
        alpha: step size (> 0) or a schedule ``episode -> step size``.
        episodes: number of episodes.
        v_init: initial values, a float or an [S] array (S&B example 6.2 uses 0.5); terminal
            states of an environment with a model start at 0.
        true_v: optional [S] true values; then ``rms_errors`` holds the RMS error over the
            non-terminal states after every episode.
        seed: seed of the environment and of the action sampling.
        callback: optional ``callback(episode, episode_return)`` called after every episode.

    Returns:
        A :class:`~mp.rl.registry.Result` with ``v``, ``episode_returns``, ``episode_lengths``
        and ``rms_errors`` (if ``true_v``).
    """
    check_common(gamma, episodes)
    check_alpha(alpha)
    sample = policies.sampler(policy)
    step_size = policies.as_schedule(alpha)
    rms = rms_tracker(env, true_v)
    V = table(v_init, (env.observation_space.n,), env)
    rng = seed_env(env, seed)
    episode_returns, episode_lengths, rms_errors = [], [], []
    for episode in range(episodes):
        a = step_size(episode)
        state = reset(env, episode, seed)
        total, steps = 0.0, 0
        while True:
            next_state, reward, terminated, truncated, _ = env.step(sample(state, rng))
            next_state = int(next_state)
            target = reward if terminated else reward + gamma * V[next_state]
            V[state] += a * (target - V[state])
            total += reward
            steps += 1
            if terminated or truncated:
                break
            state = next_state
        episode_returns.append(total)
        episode_lengths.append(steps)
        if rms is not None:
            rms_errors.append(rms(V))
        if callback is not None:
            callback(episode, total)
    return Result(
        v=np.array(V),
        episode_returns=np.array(episode_returns, dtype=np.float64),
        episode_lengths=np.array(episode_lengths),
        rms_errors=np.array(rms_errors) if rms is not None else None,
    )


def _td_control(method, env, gamma, alpha, epsilon, episodes, q_init, seed, callback):
    """The loop shared by SARSA, expected SARSA and Q-learning; ``method`` picks the target."""
    check_common(gamma, episodes)
    check_alpha(alpha)
    check_epsilon(epsilon)
    num_states, num_actions = env.observation_space.n, env.action_space.n
    step_size = policies.as_schedule(alpha)
    explore = policies.as_schedule(epsilon)
    Q = table(q_init, (num_states, num_actions), env)
    rng = seed_env(env, seed)
    episode_returns, episode_lengths = [], []
    for episode in range(episodes):
        a, eps = step_size(episode), explore(episode)
        state = reset(env, episode, seed)
        action = policies.epsilon_greedy(Q[state], eps, rng)
        total, steps = 0.0, 0
        while True:
            next_state, reward, terminated, truncated, _ = env.step(action)
            next_state = int(next_state)
            q_next = Q[next_state]
            if method == "sarsa":
                # A' is the action the policy takes next (also needed to bootstrap a truncation).
                next_action = policies.epsilon_greedy(q_next, eps, rng)
                bootstrap = q_next[next_action]
            elif method == "qlearning":
                bootstrap = max(q_next)
            else:  # expected_sarsa: sum_a pi(a|S') Q(S', a) for the epsilon-greedy pi
                bootstrap = eps / num_actions * sum(q_next) + (1.0 - eps) * max(q_next)
            target = reward if terminated else reward + gamma * bootstrap
            Q[state][action] += a * (target - Q[state][action])
            total += reward
            steps += 1
            if terminated or truncated:
                break
            state = next_state
            if method == "sarsa":
                action = next_action
            else:
                action = policies.epsilon_greedy(q_next, eps, rng)
        episode_returns.append(total)
        episode_lengths.append(steps)
        if callback is not None:
            callback(episode, total)
    q = np.array(Q)
    return Result(
        q=q,
        policy=policies.greedy(q),
        episode_returns=np.array(episode_returns, dtype=np.float64),
        episode_lengths=np.array(episode_lengths),
        extra={"behaviour_policy": policies.epsilon_soft(q, explore(episodes - 1))},
    )


_CONTROL_ARGS = """
    Args:
        env: gymnasium environment with ``Discrete`` observations and actions.
        gamma: discount factor in [0, 1].
        alpha: step size (> 0) or a schedule ``episode -> step size``.
        epsilon: exploration rate of the epsilon-greedy behaviour policy, in [0, 1], or a
            schedule ``episode -> epsilon``.
        episodes: number of episodes.
        q_init: initial action values, a float or an [S, A] array; the rows of terminal
            states of an environment with a model start at 0.
        seed: seed of the environment and of the action sampling.
        callback: optional ``callback(episode, episode_return)`` called after every episode.

    Returns:
        A :class:`~mp.rl.registry.Result` with ``q``, ``policy`` (greedy in ``q``, ties split
        evenly), ``episode_returns`` (the online sum of rewards of each training episode),
        ``episode_lengths`` and ``extra["behaviour_policy"]``.
"""


@register("sarsa", kind="control")
def sarsa(
    env, *, gamma=1.0, alpha=0.5, epsilon=0.1, episodes=500, q_init=0.0, seed=0, callback=None
):
    return _td_control("sarsa", env, gamma, alpha, epsilon, episodes, q_init, seed, callback)


@register("expected_sarsa", kind="control")
def expected_sarsa(
    env, *, gamma=1.0, alpha=0.5, epsilon=0.1, episodes=500, q_init=0.0, seed=0, callback=None
):
    return _td_control(
        "expected_sarsa", env, gamma, alpha, epsilon, episodes, q_init, seed, callback
    )


@register("qlearning", kind="control")
def qlearning(
    env, *, gamma=1.0, alpha=0.5, epsilon=0.1, episodes=500, q_init=0.0, seed=0, callback=None
):
    return _td_control("qlearning", env, gamma, alpha, epsilon, episodes, q_init, seed, callback)


sarsa.__doc__ = "SARSA: on-policy TD control (S&B section 6.4).\n" + _CONTROL_ARGS
expected_sarsa.__doc__ = "Expected SARSA (S&B section 6.6).\n" + _CONTROL_ARGS
qlearning.__doc__ = "Q-learning: off-policy TD control (S&B section 6.5).\n" + _CONTROL_ARGS


@register("td_lambda", kind="prediction")
def td_lambda(
    env,
    *,
    policy,
    gamma=1.0,
    alpha=0.1,
    lambda_=0.9,
    traces="accumulating",
    online=True,
    episodes=100,
    v_init=0.0,
    true_v=None,
    seed=0,
    callback=None,
):
    """TD(lambda) prediction of ``v_pi`` with eligibility traces (backward view).

    Args:
        env: gymnasium environment with ``Discrete`` observations and actions.
        policy: [S, A] action probabilities of the policy to evaluate.
        gamma: discount factor in [0, 1].
        alpha: step size (> 0) or a schedule ``episode -> step size``.
        lambda_: trace decay in [0, 1].
        traces: ``"accumulating"`` (``e(S) <- e(S) + 1``) or ``"replacing"`` (``e(S) <- 1``).
        online: True to update ``V`` at every step; False to sum the updates of an episode,
            computed with the values of its start, and apply them at its end (offline TD(lambda)).
        episodes: number of episodes.
        v_init: initial values, a float or an [S] array; terminal states of an environment with
            a model start at 0.
        true_v: optional [S] true values; then ``rms_errors`` holds the RMS error over the
            non-terminal states after every episode.
        seed: seed of the environment and of the action sampling.
        callback: optional ``callback(episode, episode_return)`` called after every episode.

    Returns:
        A :class:`~mp.rl.registry.Result` with ``v``, ``episode_returns``, ``episode_lengths``
        and ``rms_errors`` (if ``true_v``).
    """
    check_common(gamma, episodes)
    check_alpha(alpha)
    _check_lambda(lambda_)
    if traces not in ("accumulating", "replacing"):
        raise ValueError(
            f"traces must be 'accumulating' or 'replacing'. Received: traces={traces!r}"
        )
    sample = policies.sampler(policy)
    step_size = policies.as_schedule(alpha)
    rms = rms_tracker(env, true_v)
    V = table(v_init, (env.observation_space.n,), env)
    decay = gamma * lambda_
    rng = seed_env(env, seed)
    episode_returns, episode_lengths, rms_errors = [], [], []
    for episode in range(episodes):
        a = step_size(episode)
        state = reset(env, episode, seed)
        e = {}  # eligibility traces of the recently visited states
        pending = {}  # offline: summed updates of this episode
        total, steps = 0.0, 0
        while True:
            next_state, reward, terminated, truncated, _ = env.step(sample(state, rng))
            next_state = int(next_state)
            target = reward if terminated else reward + gamma * V[next_state]
            delta = target - V[state]
            # e(s) <- gamma lambda e(s), dropping the traces that have faded away.
            e = {s: trace * decay for s, trace in e.items() if trace * decay > TRACE_CUTOFF}
            if traces == "accumulating":
                e[state] = e.get(state, 0.0) + 1.0
            else:
                e[state] = 1.0
            if online:
                for s, trace in e.items():
                    V[s] += a * delta * trace
            else:
                for s, trace in e.items():
                    pending[s] = pending.get(s, 0.0) + a * delta * trace
            total += reward
            steps += 1
            if terminated or truncated:
                break
            state = next_state
        for s, dv in pending.items():
            V[s] += dv
        episode_returns.append(total)
        episode_lengths.append(steps)
        if rms is not None:
            rms_errors.append(rms(V))
        if callback is not None:
            callback(episode, total)
    return Result(
        v=np.array(V),
        episode_returns=np.array(episode_returns, dtype=np.float64),
        episode_lengths=np.array(episode_lengths),
        rms_errors=np.array(rms_errors) if rms is not None else None,
    )


@register("sarsa_lambda", kind="control")
def sarsa_lambda(
    env,
    *,
    gamma=1.0,
    alpha=0.5,
    epsilon=0.1,
    lambda_=0.9,
    traces="accumulating",
    episodes=500,
    q_init=0.0,
    seed=0,
    callback=None,
):
    """SARSA(lambda): SARSA with eligibility traces over state-action pairs (S&B section 12.7).

    Every step sends the SARSA error ``delta = R + gamma Q(S', A') - Q(S, A)`` back to the
    recently taken pairs: ``e <- gamma lambda e``, ``e(S, A) <- e(S, A) + 1`` (or ``<- 1``),
    ``Q <- Q + alpha delta e``. ``lambda_ = 0`` is SARSA.

    Args:
        env: gymnasium environment with ``Discrete`` observations and actions.
        gamma: discount factor in [0, 1].
        alpha: step size (> 0) or a schedule ``episode -> step size``.
        epsilon: exploration rate of the epsilon-greedy policy, in [0, 1], or a schedule.
        lambda_: trace decay in [0, 1].
        traces: ``"accumulating"`` or ``"replacing"``.
        episodes: number of episodes.
        q_init: initial action values, a float or an [S, A] array; the rows of terminal
            states of an environment with a model start at 0.
        seed: seed of the environment and of the action sampling.
        callback: optional ``callback(episode, episode_return)`` called after every episode.

    Returns:
        A :class:`~mp.rl.registry.Result` like :func:`sarsa`'s.
    """
    check_common(gamma, episodes)
    check_alpha(alpha)
    check_epsilon(epsilon)
    _check_lambda(lambda_)
    if traces not in ("accumulating", "replacing"):
        raise ValueError(
            f"traces must be 'accumulating' or 'replacing'. Received: traces={traces!r}"
        )
    num_states, num_actions = env.observation_space.n, env.action_space.n
    step_size = policies.as_schedule(alpha)
    explore = policies.as_schedule(epsilon)
    Q = table(q_init, (num_states, num_actions), env)
    decay = gamma * lambda_
    rng = seed_env(env, seed)
    episode_returns, episode_lengths = [], []
    for episode in range(episodes):
        a, eps = step_size(episode), explore(episode)
        state = reset(env, episode, seed)
        action = policies.epsilon_greedy(Q[state], eps, rng)
        e = {}  # eligibility traces of the recently taken (state, action) pairs
        total, steps = 0.0, 0
        while True:
            next_state, reward, terminated, truncated, _ = env.step(action)
            next_state = int(next_state)
            next_action = policies.epsilon_greedy(Q[next_state], eps, rng)
            target = reward if terminated else reward + gamma * Q[next_state][next_action]
            delta = target - Q[state][action]
            e = {sa: trace * decay for sa, trace in e.items() if trace * decay > TRACE_CUTOFF}
            if traces == "accumulating":
                e[(state, action)] = e.get((state, action), 0.0) + 1.0
            else:
                e[(state, action)] = 1.0
            for (s, act), trace in e.items():
                Q[s][act] += a * delta * trace
            total += reward
            steps += 1
            if terminated or truncated:
                break
            state, action = next_state, next_action
        episode_returns.append(total)
        episode_lengths.append(steps)
        if callback is not None:
            callback(episode, total)
    q = np.array(Q)
    return Result(
        q=q,
        policy=policies.greedy(q),
        episode_returns=np.array(episode_returns, dtype=np.float64),
        episode_lengths=np.array(episode_lengths),
        extra={"behaviour_policy": policies.epsilon_soft(q, explore(episodes - 1))},
    )
