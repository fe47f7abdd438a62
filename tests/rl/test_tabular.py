"""Tests of mp.rl.tabular: MDPs from gymnasium models, RandomWalk, Gambler, DiscreteObservation."""

import numpy as np
import pytest

from mp.rl import tabular


def _naive_mdp_arrays(transitions, num_states, num_actions):
    """P and R accumulated one transition at a time from a toy-text dictionary."""
    P = np.zeros((num_states, num_actions, num_states))
    R = np.zeros((num_states, num_actions))
    for s in range(num_states):
        for a in range(num_actions):
            for prob, s2, r, _ in transitions[s][a]:
                P[s, a, s2] += prob
                R[s, a] += prob * r
    return P, R


@pytest.mark.parametrize(
    "kwargs", [{"is_slippery": True}, {"map_name": "8x8", "is_slippery": False}]
)
def test_frozenlake_model_matches_env(kwargs):
    env = tabular.make_env("FrozenLake-v1", **kwargs)
    mdp = tabular.mdp_from_env(env)
    P, R = _naive_mdp_arrays(env.unwrapped.P, mdp.num_states, mdp.num_actions)
    np.testing.assert_allclose(mdp.P, P, atol=1e-12)
    np.testing.assert_allclose(mdp.R, R, atol=1e-12)
    desc = np.asarray(env.unwrapped.desc).astype(str).ravel()
    np.testing.assert_array_equal(mdp.terminal, np.isin(desc, ["H", "G"]))
    np.testing.assert_array_equal(mdp.start, desc == "S")
    np.testing.assert_allclose(mdp.P.sum(axis=2), 1.0)


def test_frozenlake_slippery_probabilities():
    mdp = tabular.mdp_from_env(tabular.make_env("FrozenLake-v1", is_slippery=True))
    # From the start (0) action "right" (2) slides down (to 4), right (to 1) or up (stays 0),
    # each with probability 1/3.
    np.testing.assert_allclose(mdp.P[0, 2, [0, 1, 4]], [1 / 3, 1 / 3, 1 / 3])
    # State 14 action "right": reward 1 when it slides into the goal 15, which happens with
    # probability 1/3, so E[r] = 1/3.
    assert mdp.R[14, 2] == pytest.approx(1 / 3)


def test_cliffwalking_model():
    mdp = tabular.mdp_from_env(tabular.make_env("CliffWalking-v1"))
    assert mdp.terminal.nonzero()[0].tolist() == [47]
    assert np.argmax(mdp.start) == 36
    # Stepping right from the start falls off the cliff: -100 and back to the start.
    assert mdp.R[36, 1] == -100 and mdp.P[36, 1, 36] == 1.0
    # Up from the start is an ordinary -1 step to 24.
    assert mdp.R[36, 0] == -1 and mdp.P[36, 0, 24] == 1.0
    # The goal is absorbing with reward 0 (the gymnasium table lists moves out of it).
    assert np.all(mdp.P[47, :, 47] == 1.0) and np.all(mdp.R[47] == 0.0)


def test_random_walk_dynamics():
    env = tabular.make_env("RandomWalk")
    mdp = tabular.mdp_from_env(env)
    assert mdp.num_states == 7 and mdp.num_actions == 2
    assert mdp.terminal.tolist() == [True, False, False, False, False, False, True]
    assert np.argmax(mdp.start) == 3  # state C
    for s in range(1, 6):
        assert mdp.P[s, 0, s - 1] == 1.0 and mdp.P[s, 1, s + 1] == 1.0
    # Only stepping off the right end (E -> 6) pays +1.
    expected_r = np.zeros((7, 2))
    expected_r[5, 1] = 1.0
    np.testing.assert_array_equal(mdp.R, expected_r)
    # Rolling the environment out agrees with the model; the return is 1 iff it ends at 6.
    env.reset(seed=0)
    env.action_space.seed(0)
    for _ in range(20):
        s, _ = env.reset()
        total, terminated = 0.0, False
        while not terminated:
            a = env.action_space.sample()
            s2, r, terminated, truncated, _ = env.step(a)
            assert not truncated and mdp.P[s, a, s2] == 1.0 and r == mdp.R[s, a]
            total += r
            s = s2
        assert total == (1.0 if s == 6 else 0.0)
    assert tabular.RANDOM_WALK_TRUE_VALUES[1:-1] == pytest.approx(np.arange(1, 6) / 6)


def test_gambler_dynamics():
    env = tabular.make_env("Gambler", goal=100, p_heads=0.4)
    mdp = tabular.mdp_from_env(env)
    assert mdp.P.shape == (101, 50, 101)
    assert mdp.terminal.nonzero()[0].tolist() == [0, 100]
    # Capital 50, action 49 = stake 50: win (0.4) reaches 100 and pays 1, lose (0.6) ends at 0.
    assert mdp.P[50, 49, 100] == pytest.approx(0.4) and mdp.P[50, 49, 0] == pytest.approx(0.6)
    assert mdp.R[50, 49] == pytest.approx(0.4)
    # Capital 99: every stake is capped at min(99, 100 - 99) = 1 coin.
    for a in (0, 10, 49):
        assert mdp.P[99, a, 100] == pytest.approx(0.4) and mdp.P[99, a, 98] == pytest.approx(0.6)
    # Capital 30, action 4 = stake 5: 35 or 25, no reward.
    assert mdp.P[30, 4, 35] == pytest.approx(0.4) and mdp.P[30, 4, 25] == pytest.approx(0.6)
    assert mdp.R[30, 4] == 0.0
    assert mdp.start[1:100] == pytest.approx(np.full(99, 1 / 99))


def test_seeded_env_is_reproducible():
    def rollout(seed):
        env = tabular.make_env("FrozenLake-v1", is_slippery=True)
        s, _ = env.reset(seed=seed)
        env.action_space.seed(seed)
        states = [s]
        for _ in range(30):
            s, _, terminated, truncated, _ = env.step(env.action_space.sample())
            states.append(s)
            if terminated or truncated:
                s, _ = env.reset()
                states.append(s)
        return states

    assert rollout(3) == rollout(3)
    assert rollout(3) != rollout(4)


def test_discrete_observation_round_trip_on_blackjack():
    import gymnasium

    env = tabular.make_env("Blackjack-v1")
    assert isinstance(env, tabular.DiscreteObservation)
    assert env.observation_space.n == 32 * 11 * 2
    for index in range(env.observation_space.n):
        assert env.observation(env.unravel(index)) == index
    # The wrapped observation numbers the raw one as (sum * 11 + dealer) * 2 + ace.
    raw = gymnasium.make("Blackjack-v1")
    for seed in range(20):
        (player, dealer, ace), _ = raw.reset(seed=seed)
        index, _ = env.reset(seed=seed)
        assert index == (player * 11 + dealer) * 2 + ace
        assert env.unravel(index) == (player, dealer, ace)


def test_discrete_observation_rejects_other_spaces():
    with pytest.raises(ValueError, match="Tuple of Discrete"):
        tabular.DiscreteObservation(tabular.make_env("RandomWalk"))


def test_named_policies():
    env = tabular.make_env("Blackjack-v1")
    policy = tabular.named_policy("blackjack_stick20", env)
    assert policy.shape == (704, 2)
    np.testing.assert_allclose(policy.sum(axis=1), 1.0)
    for index in range(704):
        player_sum = env.unravel(index)[0]
        expected = 0 if player_sum in (20, 21) or player_sum > 21 else 1  # 0 stick, 1 hit
        assert policy[index, expected] == 1.0
    uniform = tabular.named_policy("uniform", tabular.make_env("CliffWalking-v1"))
    np.testing.assert_allclose(uniform, np.full((48, 4), 0.25))
    with pytest.raises(ValueError, match="blackjack_stick20"):
        tabular.named_policy("blackjack_stick20", tabular.make_env("RandomWalk"))
    with pytest.raises(ValueError, match="Unknown policy"):
        tabular.named_policy("nope", env)


def test_errors():
    with pytest.raises(ValueError, match="does not expose a transition model"):
        tabular.mdp_from_env(tabular.make_env("Blackjack-v1"))
    with pytest.raises(ValueError, match="Cannot make environment"):
        tabular.make_env("NoSuchEnv-v0")
    # State 1 is entered both ending and not ending the episode.
    transitions = {0: {0: [(0.5, 1, 0.0, True), (0.5, 2, 0.0, False)]}, 1: {0: [(1.0, 1, 0, True)]}}
    transitions[2] = {0: [(1.0, 1, 0.0, False)]}
    with pytest.raises(ValueError, match="both with and without termination"):
        tabular.mdp_from_transitions(transitions, 3, 1, [1.0, 0.0, 0.0])
    bad = {0: {0: [(0.5, 0, 0.0, False)]}}
    with pytest.raises(ValueError, match="sum to 0.5"):
        tabular.mdp_from_transitions(bad, 1, 1, [1.0])
