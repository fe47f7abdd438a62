"""Tests of mp.rl.dp: Bellman backups, policy evaluation, policy iteration, value iteration."""

import numpy as np
import pytest

from mp.rl import dp, registry, tabular


def _mdp(name, **kwargs):
    return tabular.mdp_from_env(tabular.make_env(name, **kwargs))


def _random_policy(mdp, seed):
    rng = np.random.default_rng(seed)
    policy = rng.uniform(0.1, 1.0, size=(mdp.num_states, mdp.num_actions))
    return policy / policy.sum(axis=1, keepdims=True)


def test_vectorised_backup_equals_naive_loop():
    env = tabular.make_env("FrozenLake-v1", is_slippery=True)
    mdp = tabular.mdp_from_env(env)
    gamma = 0.9
    v = np.random.default_rng(0).normal(size=mdp.num_states)
    # One Bellman backup written state by state from gymnasium's own table:
    # q(s, a) = sum_{s', r} p(s', r | s, a) [r + gamma v(s') (0 if the move ends the episode)].
    expected = np.zeros((mdp.num_states, mdp.num_actions))
    for s in range(mdp.num_states):
        if mdp.terminal[s]:
            continue
        for a in range(mdp.num_actions):
            for prob, s2, r, terminated in env.unwrapped.P[s][a]:
                expected[s, a] += prob * (r + (0.0 if terminated else gamma * v[s2]))
    np.testing.assert_allclose(dp.q_from_v(mdp, v, gamma), expected, atol=1e-12)


@pytest.mark.parametrize(
    "name, kwargs, gamma",
    [
        ("FrozenLake-v1", {"is_slippery": True}, 0.9),
        ("FrozenLake-v1", {"is_slippery": True}, 1.0),
        ("FrozenLake-v1", {"map_name": "8x8", "is_slippery": True}, 0.99),
        ("CliffWalking-v1", {}, 0.9),
        ("Gambler", {"goal": 20}, 1.0),
    ],
)
def test_iterative_evaluation_equals_linear_solve(name, kwargs, gamma):
    mdp = _mdp(name, **kwargs)
    policy = _random_policy(mdp, seed=1)
    v_iter, sweeps = dp.evaluate_iterative(mdp, policy, gamma, tol=1e-12)
    v_lin = dp.evaluate_linear(mdp, policy, gamma)
    assert 1 < sweeps < 100_000
    np.testing.assert_allclose(v_iter, v_lin, atol=1e-8)
    # v_pi satisfies its Bellman equation v = sum_a pi(a|s) q(s, a), and terminal values are 0.
    np.testing.assert_allclose(
        np.sum(policy * dp.q_from_v(mdp, v_lin, gamma), axis=1), v_lin, atol=1e-9
    )
    assert np.all(v_lin[mdp.terminal] == 0.0)


def test_random_walk_values_are_the_textbook_ones():
    # S&B example 6.2: under the uniform policy, v(A..E) = 1/6 .. 5/6 (gamma = 1).
    env = tabular.make_env("RandomWalk")
    for method in ("iterative", "linear"):
        result = dp.policy_evaluation(env, gamma=1.0, method=method)
        np.testing.assert_allclose(result.v, tabular.RANDOM_WALK_TRUE_VALUES, atol=1e-8)


def test_linear_evaluation_of_a_never_ending_policy_is_an_error():
    mdp = _mdp("CliffWalking-v1")
    always_up = np.zeros((mdp.num_states, mdp.num_actions))
    always_up[:, 0] = 1.0  # bumps into the top wall for ever: (I - P_pi) is singular
    with pytest.raises(ValueError, match="singular"):
        dp.evaluate_linear(mdp, always_up, 1.0)
    assert dp.evaluate_linear(mdp, always_up, 0.5)[0] == pytest.approx(-1 / (1 - 0.5))


@pytest.mark.parametrize(
    "name, kwargs, gamma",
    [
        ("FrozenLake-v1", {"is_slippery": True}, 0.99),
        ("FrozenLake-v1", {"map_name": "8x8", "is_slippery": True}, 0.99),
        ("CliffWalking-v1", {}, 1.0),
        ("Taxi-v4", {}, 0.95),
    ],
)
def test_policy_and_value_iteration_agree(name, kwargs, gamma):
    mdp = _mdp(name, **kwargs)
    vi = dp.value_iteration(mdp, gamma=gamma, tol=1e-12)
    pi = dp.policy_iteration(mdp, gamma=gamma)
    np.testing.assert_allclose(pi.v, vi.v, atol=1e-8)
    np.testing.assert_array_equal(pi.policy, vi.policy)
    # The policy is optimal: its own value (one linear solve) is v*, and v* satisfies the
    # Bellman optimality equation v*(s) = max_a q*(s, a).
    np.testing.assert_allclose(dp.evaluate_linear(mdp, vi.policy, gamma), vi.v, atol=1e-8)
    np.testing.assert_allclose(dp.q_from_v(mdp, vi.v, gamma).max(axis=1), vi.v, atol=1e-8)
    if (
        gamma < 1 and mdp.num_states <= 64
    ):  # iterative evaluation inside policy iteration reaches the same values
        pi_iter = dp.policy_iteration(mdp, gamma=gamma, evaluation="iterative", tol=1e-12)
        np.testing.assert_allclose(pi_iter.v, vi.v, atol=1e-8)
        np.testing.assert_array_equal(pi_iter.policy, vi.policy)
    assert vi.sweeps > 1 and pi.sweeps >= pi.extra["iterations"] > 1


def test_cliff_walking_optimal_path():
    result = dp.value_iteration(tabular.make_env("CliffWalking-v1"), gamma=1.0)
    # The shortest path along the cliff: up, 11 steps right, down = 13 steps of reward -1.
    assert result.v[36] == pytest.approx(-13.0)
    assert np.argmax(result.policy[36]) == 0  # up


def _gambler_reference(goal, p_heads, theta=1e-13):
    """S&B's in-place value iteration for the gambler (figure 4.3), one state at a time."""
    v = np.zeros(goal + 1)
    v[goal] = 1.0  # S&B's trick: reaching the goal is worth 1, so rewards are all 0
    while True:
        delta = 0.0
        for s in range(1, goal):
            stakes = np.arange(1, min(s, goal - s) + 1)
            best = np.max(p_heads * v[s + stakes] + (1 - p_heads) * v[s - stakes])
            delta = max(delta, abs(best - v[s]))
            v[s] = best
        if delta < theta:
            break
    v[goal] = 0.0  # the value of the terminal state itself is 0 in our convention
    return v


@pytest.mark.parametrize("p_heads", [0.4, 0.25])
def test_gambler_matches_reference_loop(p_heads):
    goal = 100
    env = tabular.make_env("Gambler", goal=goal, p_heads=p_heads)
    vi = dp.value_iteration(env, gamma=1.0, tol=1e-13)
    reference = _gambler_reference(goal, p_heads)
    np.testing.assert_allclose(vi.v, reference, atol=1e-8)
    pi = dp.policy_iteration(env, gamma=1.0)
    np.testing.assert_allclose(pi.v, reference, atol=1e-8)
    np.testing.assert_array_equal(pi.policy, vi.policy)
    # Bold play is optimal for p < 1/2: v(50) = p (stake everything once),
    # v(25) = p * v(50) = p^2, v(75) = p + (1 - p) v(50) = p + (1 - p) p.
    assert vi.v[50] == pytest.approx(p_heads)
    assert vi.v[25] == pytest.approx(p_heads**2)
    assert vi.v[75] == pytest.approx(p_heads + (1 - p_heads) * p_heads)


def test_greedy_policy_ties_and_previous():
    q = np.array([[1.0, 3.0, 3.0], [0.0, 0.0, 0.0], [2.0, 1.0, 2.0 + 1e-9]])
    np.testing.assert_array_equal(dp.greedy_policy(q), [[0, 1, 0], [1, 0, 0], [1, 0, 0]])
    previous = np.eye(3)[[2, 1, 0]]
    np.testing.assert_array_equal(
        dp.greedy_policy(q, previous=previous), [[0, 0, 1], [0, 1, 0], [1, 0, 0]]
    )


def test_registered_and_checked():
    assert {"policy_evaluation", "policy_iteration", "value_iteration"} <= set(registry.names("dp"))
    fn, kind = registry.get("value_iteration")
    assert fn is dp.value_iteration and kind == "dp"
    env = tabular.make_env("RandomWalk")
    with pytest.raises(ValueError, match="gamma must be in"):
        dp.value_iteration(env, gamma=1.5)
    with pytest.raises(ValueError, match="policy must have shape"):
        dp.policy_evaluation(env, gamma=1.0, policy=np.ones((3, 2)) / 2)
    with pytest.raises(ValueError, match="transition model"):
        dp.value_iteration(tabular.make_env("Blackjack-v1"), gamma=1.0)
