"""Tests of mp.rl.montecarlo: MC prediction (first/every visit) and on-policy MC control."""

import dataclasses
import functools

import gymnasium
import numpy as np
import pytest

from mp.rl import montecarlo, registry, tabular


class ScriptedEnv(gymnasium.Env):
    """Plays back fixed observations and rewards whatever the actions; records the actions.

    ``observations`` has one entry more than ``rewards``; the last step terminates.
    """

    def __init__(self, observations, rewards, num_actions=2):
        self.observations, self.rewards = list(observations), list(rewards)
        self.observation_space = gymnasium.spaces.Discrete(max(observations) + 1)
        self.action_space = gymnasium.spaces.Discrete(num_actions)
        self.actions = []

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        self.actions.append([])
        return self.observations[0], {}

    def step(self, action):
        self.actions[-1].append(int(action))
        self.t += 1
        terminated = self.t == len(self.rewards)
        return self.observations[self.t], self.rewards[self.t - 1], terminated, False, {}


def assert_results_equal(a, b):
    for field in dataclasses.fields(registry.Result):
        x, y = getattr(a, field.name), getattr(b, field.name)
        if isinstance(x, dict):
            assert x.keys() == y.keys()
            for key in x:
                np.testing.assert_array_equal(x[key], y[key])
        else:
            np.testing.assert_array_equal(x, y)


def uniform(env):
    return np.full((env.observation_space.n, env.action_space.n), 1.0 / env.action_space.n)


def test_registered():
    assert registry.get("mc_prediction") == (montecarlo.mc_prediction, "prediction")
    assert registry.get("mc_control") == (montecarlo.mc_control, "control")


# One episode S = 0, 1, 0, then terminal state 2, with rewards 1, 2, 3 and gamma = 0.5:
#   G_2 = 3,  G_1 = 2 + 0.5 * 3 = 3.5,  G_0 = 1 + 0.5 * 3.5 = 2.75.
@pytest.mark.parametrize(
    "first_visit, alpha, v0, v1",
    [
        (True, None, 2.75, 3.5),  # first visit of state 0 at t = 0: V(0) = G_0
        (False, None, 2.875, 3.5),  # every visit: V(0) = (G_0 + G_2) / 2 = (2.75 + 3) / 2
        (True, 0.1, 0.275, 0.35),  # V(0) = 0 + 0.1 * (2.75 - 0), V(1) = 0.1 * 3.5
        (False, 0.1, 0.575, 0.35),  # V(0) = 0.1 * (2.75 - 0) + 0.1 * (3 - 0): values of the start
    ],
)
def test_mc_prediction_one_episode_by_hand(first_visit, alpha, v0, v1):
    env = ScriptedEnv([0, 1, 0, 2], [1.0, 2.0, 3.0])
    result = montecarlo.mc_prediction(
        env, policy=uniform(env), gamma=0.5, episodes=1, first_visit=first_visit, alpha=alpha
    )
    np.testing.assert_allclose(result.v, [v0, v1, 0.0])
    assert result.episode_returns.tolist() == [6.0] and result.episode_lengths.tolist() == [3]
    visits = [1, 1, 0] if first_visit else [2, 1, 0]
    assert result.extra["visits"].tolist() == visits


def test_mc_prediction_random_walk_rms_error():
    # S&B example 6.2: true values 1/6 .. 5/6. Both sample averages and constant alpha = 0.02
    # (started at 0.5 as in the book) get the RMS error below 0.1 within 300 episodes.
    env = tabular.make_env("RandomWalk")
    policy = tabular.named_policy("uniform", env)
    for alpha in (None, 0.02):
        result = montecarlo.mc_prediction(
            env,
            policy=policy,
            episodes=300,
            alpha=alpha,
            v_init=0.5,
            true_v=tabular.RANDOM_WALK_TRUE_VALUES,
            seed=0,
        )
        if alpha is not None:
            # Start: |0.5 - k/6| for k = 1..5 is 2/6, 1/6, 0, 1/6, 2/6: RMS sqrt(10/36/5) = 0.236,
            # and one episode moves each value by at most alpha = 0.02.
            assert 0.236 - 0.02 < result.rms_errors[0] < 0.236 + 0.02
        assert result.rms_errors[-50:].mean() < 0.1
        assert result.v[0] == result.v[-1] == 0.0  # terminal states


@functools.cache
def dealer_final_is_21(showing):
    """P(the dealer's final hand is 21 | showing card), infinite deck, dealer stands on 17+.

    The dealer holds ``showing`` and a hidden card, then hits while the hand's value (an ace
    counting 11 when that does not bust) is below 17, exactly as gymnasium's Blackjack-v1.
    """
    cards = {c: 1 / 13 for c in range(1, 10)}
    cards[10] = 4 / 13  # 10, J, Q, K

    @functools.cache
    def p21(hard_sum, has_ace):
        value = hard_sum + 10 if has_ace and hard_sum + 10 <= 21 else hard_sum
        if value >= 17:
            return 1.0 if value == 21 else 0.0
        return sum(p * p21(hard_sum + c, has_ace or c == 1) for c, p in cards.items())

    return sum(p * p21(showing + c, showing == 1 or c == 1) for c, p in cards.items())


def test_mc_prediction_blackjack_stick20_player_21():
    # S&B example 5.1, policy "stick on 20 or 21". In a state with player sum 21 the player
    # sticks, and the game is won unless the dealer also ends with 21 (a draw, reward 0), so
    # v(21, d, no usable ace) = 1 - P(dealer ends with 21 | d), computed exactly above (e.g. about
    # 0.89 for d = 10). With a usable ace, 21 can be a natural, which Blackjack-v1 (sab=True)
    # counts as a win unless the dealer also has one: at least as high.
    env = tabular.make_env("Blackjack-v1")
    policy = tabular.named_policy("blackjack_stick20", env)
    result = montecarlo.mc_prediction(env, policy=policy, episodes=15_000, seed=0)
    visits = result.extra["visits"]
    for ace in (0, 1):
        states = [env.observation((21, d, ace)) for d in range(1, 11)]
        expected = np.array([1 - dealer_final_is_21(d) for d in range(1, 11)])
        n = visits[states]
        assert n.min() >= 50
        # Standard error of a mean of rewards in {0, 1}: sqrt(p (1 - p) / n); allow 4 (+0.01).
        tolerance = 4 * np.sqrt(expected * (1 - expected) / n) + 0.01
        if ace == 0:
            np.testing.assert_array_less(np.abs(result.v[states] - expected), tolerance)
        else:
            np.testing.assert_array_less(expected - tolerance, result.v[states])
            assert result.v[states].mean() > 0.9
    # Player sum 13 with the dealer showing 10 (hit until 20): clearly losing, S&B figure 5.1.
    assert result.v[env.observation((13, 10, 0))] < -0.3


def blackjack_start_pairs(env, visits):
    """First-visit counts of every (state, action) of the S&B state space (200 states)."""
    return np.array(
        [
            visits[env.observation((s, d, u))]
            for s in range(12, 22)
            for d in range(1, 11)
            for u in (0, 1)
        ]
    )


def test_mc_control_exploring_starts_blackjack_covers_every_pair():
    # With epsilon = 0 (S&B's Monte Carlo ES) only exploring starts try every state-action pair:
    # each of the 200 x 2 pairs of figure 5.2 is the start with probability 1/(28 * 10 * 2) per
    # episode (28 kinds of player hand, 10 dealer cards, 2 actions): about 14 starts in 8000.
    env = tabular.make_env("Blackjack-v1")
    es = montecarlo.mc_control(env, episodes=8000, epsilon=0.0, exploring_starts=True, seed=0)
    assert blackjack_start_pairs(env, es.extra["visits"]).min() >= 1
    # Hard sums below 12 are started too, so the greedy policy is learned there as well.
    visits = es.extra["visits"].reshape(32, 11, 2, 2)
    assert (visits[4:12, 1:, 0, :] >= 1).all()
    plain = montecarlo.mc_control(env, episodes=6000, epsilon=0.0, seed=0)
    assert blackjack_start_pairs(env, plain.extra["visits"]).min() == 0


def test_mc_control_exploring_starts_toy_text_and_unsupported_env():
    env = tabular.make_env("FrozenLake-v1", is_slippery=False)
    result = montecarlo.mc_control(env, episodes=300, exploring_starts=True, gamma=0.9, seed=0)
    terminal = tabular.mdp_from_env(env).terminal  # holes and goal: 5, 7, 11, 12, 15
    assert (result.extra["visits"][~terminal].sum(axis=1) > 0).all()
    assert (result.extra["visits"][terminal] == 0).all()
    with pytest.raises(ValueError, match="exploring_starts"):
        montecarlo.mc_control(ScriptedEnv([0, 1], [1.0]), episodes=1, exploring_starts=True)


def greedy_rollout_return(env, q, max_steps=100):
    state, _ = env.reset(seed=0)
    total = 0.0
    for _ in range(max_steps):
        state, reward, terminated, truncated, _ = env.step(int(np.argmax(q[state])))
        total += reward
        if terminated or truncated:
            break
    return total


def test_mc_control_frozenlake_deterministic_learns_to_reach_the_goal():
    env = tabular.make_env("FrozenLake-v1", is_slippery=False)
    result = montecarlo.mc_control(env, gamma=0.9, epsilon=0.1, episodes=300, seed=0)
    assert greedy_rollout_return(env, result.q) == 1.0
    np.testing.assert_allclose(result.policy.sum(axis=1), 1.0)
    assert result.extra["behaviour_policy"].min() >= 0.1 / 4 - 1e-12  # epsilon-soft


def test_same_seed_same_result():
    env = tabular.make_env("Blackjack-v1")
    runs = [montecarlo.mc_control(env, episodes=500, epsilon=0.1, seed=s) for s in (3, 3, 4)]
    assert_results_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0].q, runs[2].q)
    env = tabular.make_env("RandomWalk")
    runs = [
        montecarlo.mc_prediction(env, policy=uniform(env), episodes=50, alpha=0.1, seed=s)
        for s in (5, 5)
    ]
    assert_results_equal(runs[0], runs[1])


def test_bad_arguments():
    env = tabular.make_env("RandomWalk")
    with pytest.raises(ValueError, match="Received: gamma=1.5"):
        montecarlo.mc_prediction(env, policy=uniform(env), gamma=1.5)
    with pytest.raises(ValueError, match="Received: alpha=0"):
        montecarlo.mc_prediction(env, policy=uniform(env), alpha=0)
    with pytest.raises(ValueError, match="Received: epsilon=-0.1"):
        montecarlo.mc_control(env, epsilon=-0.1)
    with pytest.raises(ValueError, match="Received: episodes=0"):
        montecarlo.mc_control(env, episodes=0)
