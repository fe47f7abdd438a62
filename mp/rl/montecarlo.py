"""Monte Carlo prediction and on-policy Monte Carlo control, learning from complete episodes.

Monte Carlo methods estimate values as averages of sampled returns, without a model of the
environment and without bootstrapping: an update waits until the episode is over and its returns
``G_t = R_{t+1} + gamma R_{t+2} + ...`` are known (computed backwards, ``G_t = R_{t+1} +
gamma G_{t+1}``).

Prediction (``mc_prediction``, S&B section 5.1) estimates ``v_pi`` of a given policy:

- *first-visit* MC uses the return after the first visit of ``s`` in each episode, *every-visit*
  MC the returns after all visits;
- with ``alpha=None`` the estimate is the sample average of those returns, kept incrementally as
  ``V(s) <- V(s) + (G - V(s)) / N(s)``;
- with a constant step size, ``V(s) <- V(s) + alpha (G - V(s))`` (S&B eq. 6.1). The increments
  of one episode are computed from the values at its start and added at its end (for
  first-visit MC this is the same as applying them one by one). In this form every-visit
  constant-alpha MC is exactly offline TD(lambda = 1) with accumulating traces.

Control (``mc_control``, S&B sections 5.3-5.4) alternates evaluation and improvement episode by
episode: it acts epsilon-greedily with respect to its current action values ``Q`` (an
epsilon-soft policy, so every action keeps being tried), then moves ``Q(S_t, A_t)`` towards the
returns that followed. With ``exploring_starts=True`` each episode starts instead from a random
state and a random first action (S&B's Monte Carlo ES, figure 5.2, uses ``epsilon=0`` after that
first action). Starting anywhere needs help from the environment; it is done after a normal
``reset`` by

- Blackjack: dealing the player a uniformly random kind of hand, a hard sum 4..21 (two cards,
  or ten + ten + ace for a hard 21) or a soft sum 12..21 (ace + card), and the dealer a uniformly
  random showing card 1..10 plus a hidden card from the environment's own deck. S&B start at
  12 only, since below 12 hitting cannot bust; starting lower too means the learned greedy
  policy is right in every state the game can reach, not only in those of figure 5.2;
- toy-text environments with a model (FrozenLake, CliffWalking, Taxi, RandomWalk): setting the
  environment's current state ``unwrapped.s`` to a uniformly random non-terminal state.

A truncated episode (time limit) is treated like a finished one: its returns sum the rewards
observed, as Monte Carlo methods have nothing to bootstrap from.

Course: ch6.1.2 Monte Carlo Sampling.
Book: Sutton & Barto, Reinforcement Learning: An Introduction, 2nd ed. (2018), chapter 5
(example 5.1 blackjack, example 5.3 / figure 5.2 Monte Carlo ES) and section 6.2 (constant-alpha
MC on the random walk).
"""

import numpy as np

from mp.rl import policies
from mp.rl.registry import Result, register
from mp.rl.sampling import (
    check_alpha,
    check_common,
    check_epsilon,
    reset,
    rms_tracker,
    seed_env,
    table,
)


def _observe(env, raw_observation):
    """Passes an observation of the unwrapped environment through the observation wrappers."""
    import gymnasium

    wrappers = []
    e = env
    while isinstance(e, gymnasium.Wrapper):
        if isinstance(e, gymnasium.ObservationWrapper):
            wrappers.append(e)
        e = e.env
    for wrapper in reversed(wrappers):  # innermost first
        raw_observation = wrapper.observation(raw_observation)
    return int(raw_observation)


def exploring_starts_for(env):
    """A function ``rng -> observation`` that puts a freshly reset ``env`` in a random state.

    See the module docstring for how each environment is started.

    Raises:
        ValueError: if the environment cannot be started in an arbitrary state.
    """
    from mp.rl import tabular

    unwrapped = env.unwrapped
    if tabular.is_blackjack(env):
        from gymnasium.envs.toy_text.blackjack import draw_card

        def start_blackjack(rng):
            # Every player state: a hard sum 4..21 or a soft sum 12..21 (28 kinds, uniform).
            kind = int(rng.random() * 28)
            if kind < 18:  # hard (no usable ace), sums 4 .. 21
                player_sum = 4 + kind
                if player_sum <= 11:
                    player = [2, player_sum - 2]  # 2 + (2 .. 9)
                elif player_sum <= 20:
                    player = [10, player_sum - 10]  # 10 + (2 .. 10)
                else:
                    player = [10, 10, 1]  # a hard 21 (the ace counts 1)
            else:  # soft: the ace counts 11, 11 + (1 .. 10) = 12 .. 21
                player = [1, kind - 17]
            showing = 1 + int(rng.random() * 10)  # 1 (ace) .. 10
            unwrapped.player = player
            unwrapped.dealer = [showing, draw_card(unwrapped.np_random)]
            return _observe(env, unwrapped._get_obs())

        return start_blackjack
    if tabular.has_model(env):  # toy-text: the current state is `unwrapped.s`, set by reset
        nonterminal = np.flatnonzero(~tabular.mdp_from_env(env).terminal).tolist()

        def start_toy_text(rng):
            unwrapped.s = nonterminal[int(rng.random() * len(nonterminal))]
            if hasattr(unwrapped, "lastaction"):
                unwrapped.lastaction = None
            return _observe(env, unwrapped.s)

        return start_toy_text
    raise ValueError(
        "exploring_starts needs an environment that can start in any state (Blackjack-v1 or a "
        f"toy-text environment with a model). Received: {env}"
    )


def _returns(rewards, gamma):
    """Discounted returns of one episode as a list, ``G_t = R_{t+1} + gamma G_{t+1}``."""
    returns = [0.0] * len(rewards)
    g = 0.0
    for t in range(len(rewards) - 1, -1, -1):
        g = rewards[t] + gamma * g
        returns[t] = g
    return returns


@register("mc_prediction", kind="prediction")
def mc_prediction(
    env,
    *,
    policy,
    gamma=1.0,
    episodes=1000,
    first_visit=True,
    alpha=None,
    v_init=0.0,
    true_v=None,
    seed=0,
    callback=None,
):
    """Monte Carlo prediction of ``v_pi`` (first-visit or every-visit).

    Args:
        env: gymnasium environment with ``Discrete`` observations and actions.
        policy: [S, A] action probabilities of the policy to evaluate.
        gamma: discount factor in [0, 1].
        episodes: number of episodes.
        first_visit: True for first-visit MC, False for every-visit MC.
        alpha: ``None`` for sample averages, else a constant step size (> 0) or a schedule
            ``episode -> step size``.
        v_init: initial values, a float or an [S] array (unvisited states keep them; terminal
            states of an environment with a model start at 0).
        true_v: optional [S] true values; then ``rms_errors`` holds the RMS error over the
            non-terminal states after every episode.
        seed: seed of the environment and of the action sampling.
        callback: optional ``callback(episode, episode_return)`` called after every episode.

    Returns:
        A :class:`~mp.rl.registry.Result` with ``v``, ``episode_returns``, ``episode_lengths``,
        ``rms_errors`` (if ``true_v``) and ``extra["visits"]`` ([S] number of returns averaged).
    """
    check_common(gamma, episodes)
    check_alpha(alpha, allow_none=True)
    num_states = env.observation_space.n
    sample = policies.sampler(policy)
    step_size = None if alpha is None else policies.as_schedule(alpha)
    rms = rms_tracker(env, true_v)
    V = table(v_init, (num_states,), env)
    visits = [0] * num_states
    rng = seed_env(env, seed)
    episode_returns, episode_lengths, rms_errors = [], [], []
    for episode in range(episodes):
        # Generate an episode S_0, A_0, R_1, ..., S_T following pi.
        state = reset(env, episode, seed)
        states, rewards = [], []
        while True:
            next_state, reward, terminated, truncated, _ = env.step(sample(state, rng))
            states.append(state)
            rewards.append(float(reward))
            if terminated or truncated:
                break
            state = int(next_state)
        returns = _returns(rewards, gamma)
        first = {}
        for t, s in enumerate(states):
            first.setdefault(s, t)  # time step of the first visit of s
        a = None if step_size is None else step_size(episode)
        increments = {}
        for t, (s, g) in enumerate(zip(states, returns)):
            if first_visit and first[s] != t:
                continue
            visits[s] += 1
            if a is None:
                V[s] += (g - V[s]) / visits[s]  # running mean of the returns from s
            else:
                increments[s] = increments.get(s, 0.0) + a * (g - V[s])  # V(s) of episode start
        for s, dv in increments.items():
            V[s] += dv
        episode_returns.append(sum(rewards))
        episode_lengths.append(len(rewards))
        if rms is not None:
            rms_errors.append(rms(V))
        if callback is not None:
            callback(episode, episode_returns[-1])
    return Result(
        v=np.array(V),
        episode_returns=np.array(episode_returns),
        episode_lengths=np.array(episode_lengths),
        rms_errors=np.array(rms_errors) if rms is not None else None,
        extra={"visits": np.array(visits)},
    )


@register("mc_control", kind="control")
def mc_control(
    env,
    *,
    gamma=1.0,
    episodes=1000,
    epsilon=0.1,
    alpha=None,
    first_visit=True,
    exploring_starts=False,
    q_init=0.0,
    seed=0,
    callback=None,
):
    """On-policy first-visit (or every-visit) Monte Carlo control with epsilon-soft policies.

    Args:
        env: gymnasium environment with ``Discrete`` observations and actions.
        gamma: discount factor in [0, 1].
        episodes: number of episodes.
        epsilon: exploration rate in [0, 1] or a schedule ``episode -> epsilon``.
        alpha: ``None`` for sample averages, else a step size (> 0) or a schedule.
        first_visit: True for first-visit updates, False for every-visit.
        exploring_starts: start every episode in a random state with a random first action
            (Blackjack and toy-text environments; see the module docstring).
        q_init: initial action values, a float or an [S, A] array; the rows of terminal
            states of an environment with a model start at 0.
        seed: seed of the environment and of the action sampling.
        callback: optional ``callback(episode, episode_return)`` called after every episode.

    Returns:
        A :class:`~mp.rl.registry.Result` with ``q``, ``policy`` (greedy in ``q``),
        ``episode_returns``, ``episode_lengths``, ``extra["behaviour_policy"]`` (the final
        epsilon-soft policy) and ``extra["visits"]`` ([S, A] number of returns averaged).

    Raises:
        ValueError: for bad arguments, or ``exploring_starts`` on an environment that cannot
            start in an arbitrary state.
    """
    check_common(gamma, episodes)
    check_alpha(alpha, allow_none=True)
    check_epsilon(epsilon)
    num_states, num_actions = env.observation_space.n, env.action_space.n
    explore = policies.as_schedule(epsilon)
    step_size = None if alpha is None else policies.as_schedule(alpha)
    Q = table(q_init, (num_states, num_actions), env)
    visits = [[0] * num_actions for _ in range(num_states)]
    start = exploring_starts_for(env) if exploring_starts else None
    rng = seed_env(env, seed)
    episode_returns, episode_lengths = [], []
    for episode in range(episodes):
        eps = explore(episode)
        state = reset(env, episode, seed)
        if exploring_starts:
            state = start(rng)
            action = int(rng.random() * num_actions)
        else:
            action = policies.epsilon_greedy(Q[state], eps, rng)
        pairs, rewards = [], []
        while True:
            next_state, reward, terminated, truncated, _ = env.step(action)
            pairs.append((state, action))
            rewards.append(float(reward))
            if terminated or truncated:
                break
            state = int(next_state)
            action = policies.epsilon_greedy(Q[state], eps, rng)
        returns = _returns(rewards, gamma)
        first = {}
        for t, pair in enumerate(pairs):
            first.setdefault(pair, t)
        a = None if step_size is None else step_size(episode)
        increments = {}
        for t, ((s, act), g) in enumerate(zip(pairs, returns)):
            if first_visit and first[(s, act)] != t:
                continue
            visits[s][act] += 1
            if a is None:
                Q[s][act] += (g - Q[s][act]) / visits[s][act]
            else:
                increments[(s, act)] = increments.get((s, act), 0.0) + a * (g - Q[s][act])
        for (s, act), dq in increments.items():
            Q[s][act] += dq
        episode_returns.append(sum(rewards))
        episode_lengths.append(len(rewards))
        if callback is not None:
            callback(episode, episode_returns[-1])
    q = np.array(Q)
    return Result(
        q=q,
        policy=policies.greedy(q),
        episode_returns=np.array(episode_returns),
        episode_lengths=np.array(episode_lengths),
        extra={
            "behaviour_policy": policies.epsilon_soft(q, explore(episodes - 1)),
            "visits": np.array(visits),
        },
    )
