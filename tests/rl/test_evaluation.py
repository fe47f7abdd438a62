"""Tests of mp.rl.evaluation: seeded policy evaluation, text and PNG renderings, smoothing."""

import numpy as np
import pytest

from mp.rl import dp, evaluation, tabular


def _success_probability(mdp, policy, horizon, goal):
    """Pr(reach `goal` within `horizon` steps) from the start, by a finite-horizon NumPy loop.

    u_k(s) = sum_{s'} P_pi(s, s') (1[s' = goal] + 1[s' not terminal] u_{k-1}(s')), u_0 = 0.
    """
    p_pi = np.einsum("sa,sat->st", policy, mdp.P)
    u = np.zeros(mdp.num_states)
    for _ in range(horizon):
        u_new = np.zeros(mdp.num_states)
        for s in np.flatnonzero(~mdp.terminal):
            for s2 in range(mdp.num_states):
                u_new[s] += p_pi[s, s2] * ((s2 == goal) + (not mdp.terminal[s2]) * u[s2])
        u = u_new
    return float(mdp.start @ u)


def test_greedy_optimal_policy_always_succeeds_without_slipping():
    env = tabular.make_env("FrozenLake-v1", is_slippery=False)
    result = dp.value_iteration(env, gamma=0.99)
    out = evaluation.evaluate_policy(env, result.policy, episodes=20, seed=0)
    assert out["success_rate"] == 1.0 and out["mean_return"] == 1.0
    assert out["mean_length"] == 6.0  # 3 steps down and 3 right on the 4x4 map


def test_success_rate_matches_exact_probability_on_slippery_lake():
    env = tabular.make_env("FrozenLake-v1", is_slippery=True)
    mdp = tabular.mdp_from_env(env)
    policy = dp.value_iteration(mdp, gamma=0.99).policy
    exact = _success_probability(mdp, policy, horizon=100, goal=15)  # 100 = the time limit
    episodes = 2000
    out = evaluation.evaluate_policy(env, policy, episodes=episodes, seed=1)
    sigma = np.sqrt(exact * (1 - exact) / episodes)  # binomial standard error, about 0.01
    assert abs(out["success_rate"] - exact) < 4 * sigma
    assert out["success_rate"] == out["mean_return"]  # the only reward is 1 at the goal


def test_sampled_policy_and_seeding():
    env = tabular.make_env("RandomWalk")
    uniform = tabular.named_policy("uniform", env)
    out = evaluation.evaluate_policy(env, uniform, episodes=2000, seed=0, greedy=False)
    # v(C) = 1/2: the mean return estimates it with standard error 0.5 / sqrt(2000) ~ 0.011.
    assert out["mean_return"] == pytest.approx(0.5, abs=0.045)
    again = evaluation.evaluate_policy(env, uniform, episodes=2000, seed=0, greedy=False)
    np.testing.assert_array_equal(out["returns"], again["returns"])
    other = evaluation.evaluate_policy(env, uniform, episodes=2000, seed=1, greedy=False)
    assert not np.array_equal(out["returns"], other["returns"])


def test_episodes_are_cut_after_max_steps():
    env = tabular.make_env("CliffWalking-v1")
    always_up = np.zeros((48, 4))
    always_up[:, 0] = 1.0
    out = evaluation.evaluate_policy(env, always_up, episodes=3, max_steps=50)
    assert out["success_rate"] == 0.0 and out["mean_length"] == 50.0
    assert out["mean_return"] == -50.0  # 50 steps of reward -1
    with pytest.raises(ValueError, match="episodes must be >= 1"):
        evaluation.evaluate_policy(env, always_up, episodes=0)
    with pytest.raises(ValueError, match="policy must have shape"):
        evaluation.evaluate_policy(env, np.ones((3, 4)), episodes=1)


def test_success_rules():
    assert evaluation.success_rule(tabular.make_env("FrozenLake-v1")) == "positive_reward"
    assert evaluation.success_rule(tabular.make_env("CliffWalking-v1")) == "terminated"
    assert evaluation.success_rule(tabular.make_env("Blackjack-v1")) == "positive_reward"


def test_render_text_grid_world():
    env = tabular.make_env("FrozenLake-v1", map_name="8x8")
    mdp = tabular.mdp_from_env(env)
    always_right = np.zeros((64, 4))
    always_right[:, 2] = 1.0
    v = np.arange(64) / 100.0
    text = evaluation.render_text(env, v, always_right, mdp.terminal).splitlines()
    assert text[0] == "State values:" and text[9] == "Greedy policy:"
    desc = np.asarray(env.unwrapped.desc).astype(str)
    for r in range(8):
        values = [float(x) for x in text[1 + r].split()]
        np.testing.assert_allclose(values, v[8 * r : 8 * r + 8])
        cells = text[10 + r].split()
        expected = [d if d in ("H", "G") else "\u2192" for d in desc[r]]  # right arrow
        assert cells == expected


def test_render_text_blackjack_policy():
    env = tabular.make_env("Blackjack-v1")
    text = evaluation.render_text(env, None, tabular.named_policy("blackjack_stick20", env))
    lines = text.splitlines()
    assert len(lines) == 22  # two headers and 10 player sums for each ace case
    for line in lines[1:11] + lines[12:22]:
        player_sum, actions = line.split("|")
        assert actions.strip() == ("S" if int(player_sum) >= 20 else "H") * 10


@pytest.mark.parametrize(
    "name, kwargs", [("CliffWalking-v1", {}), ("Gambler", {"goal": 20}), ("Blackjack-v1", {})]
)
def test_values_figure_is_written(tmp_path, name, kwargs):
    env = tabular.make_env(name, **kwargs)
    n, a = env.observation_space.n, env.action_space.n
    v = np.linspace(-1, 1, n)
    policy = np.eye(a)[np.arange(n) % a]
    fig = evaluation.values_figure(env, {"first": (v, policy), "second": (v, None)})
    path = tmp_path / "values.png"
    fig.savefig(path)
    assert path.stat().st_size > 1000


def test_smooth_equals_naive_moving_average():
    x = np.random.default_rng(0).normal(size=37)
    window = 5
    expected = [np.mean(x[max(0, i + 1 - window) : i + 1]) for i in range(len(x))]
    np.testing.assert_allclose(evaluation.smooth(x, window), expected)
    np.testing.assert_array_equal(evaluation.smooth(x, 1), x)
