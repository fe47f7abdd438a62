"""Tests of mp.rl.evaluation: policy evaluation, text and PNG maps, curves, summaries, files."""

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


def test_state_values_and_what_the_pictures_show():
    from mp.rl.registry import Result

    q = np.array([[1.0, 3.0], [2.0, 0.0]])
    policy = np.array([[0.5, 0.5], [1.0, 0.0]])
    np.testing.assert_array_equal(evaluation.state_values(Result(v=np.ones(2), q=q)), [1, 1])
    # v(s) = sum_a pi(a|s) q(s, a): 0.5 * 1 + 0.5 * 3 = 2, 1 * 2 = 2.
    np.testing.assert_array_equal(evaluation.state_values(Result(q=q, policy=policy)), [2, 2])
    np.testing.assert_array_equal(evaluation.state_values(Result(q=q)), [3, 2])  # max_a q
    assert evaluation.state_values(Result()) is None
    greedy = np.array([[0.0, 1.0], [1.0, 0.0]])
    random_policy = Result(v=np.zeros(2), policy=policy)
    assert evaluation.values_and_policy(random_policy, "prediction")[1] is None
    assert evaluation.values_and_policy(random_policy, "control")[1] is policy
    shown = evaluation.values_and_policy(Result(v=np.zeros(2), policy=greedy), "prediction")
    assert shown[1] is greedy  # a deterministic policy is worth its arrows


def test_policy_text_has_one_section_per_algorithm():
    env = tabular.make_env("FrozenLake-v1", is_slippery=False)
    result = dp.value_iteration(env, gamma=0.9)
    shown = {"a": (result.v, result.policy), "b": (None, result.policy)}
    text = evaluation.policy_text(env, shown, tabular.mdp_from_env(env).terminal)
    assert text.startswith("== a on FrozenLake-v1\nState values:\n")
    assert "\n== b on FrozenLake-v1\nGreedy policy:\n" in text
    assert evaluation.policy_text(env, shown, label="lake").startswith("== a on lake\n")


def _runs(field_values, rms=None):
    from mp.rl.registry import Result

    return [
        Result(episode_returns=np.asarray(x, float), rms_errors=None if rms is None else rms[i])
        for i, x in enumerate(field_values)
    ]


def test_learning_curves_figure_panels(tmp_path):
    results = {
        "sarsa": _runs([np.arange(30.0), np.arange(30.0) + 1]),
        "td0": _runs([np.zeros(30)], rms=[np.linspace(0.3, 0.1, 30)]),
    }
    fig = evaluation.learning_curves_figure(results, smooth_window=5, title="test")
    assert [ax.get_ylabel().split(" ")[0] for ax in fig.axes] == ["sum", "RMS"]
    # The returns panel draws the mean of the runs, smoothed: episode 1 is (0 + 1) / 2.
    line = fig.axes[0].get_lines()[0]
    assert line.get_ydata()[0] == pytest.approx(0.5)
    fig.savefig(tmp_path / "curves.png")
    only = evaluation.learning_curves_figure(results, ["sarsa"])
    assert len(only.axes) == 1


def test_write_summaries_keeps_at_most_max_points(tmp_path):
    import tensorflow as tf

    results = {"sarsa": _runs([np.arange(10.0), np.arange(10.0) + 2])}
    evaluation.write_summaries(str(tmp_path), results, max_points=4)  # stride ceil(10 / 4) = 3
    (events,) = (tmp_path / "sarsa").iterdir()
    points = [
        (e.step, tf.make_ndarray(v.tensor).item())
        for e in tf.compat.v1.train.summary_iterator(str(events))
        for v in e.summary.value
        if v.tag == "charts/episode_return"
    ]
    # The mean curve is 1, 2, ..., 10; strides [1..3], [4..6], [7..9], [10] logged at their end.
    assert points == [(3, 2.0), (6, 5.0), (9, 8.0), (10, 10.0)]


def test_save_values_round_trip(tmp_path):
    from mp.rl.registry import Result

    first = Result(q=np.ones((3, 2)), policy=np.eye(2)[[0, 1, 0]])
    results = {"sarsa": [first, Result(q=np.zeros((3, 2)))], "td0": [Result(v=np.arange(3.0))]}
    path = tmp_path / "values.npz"
    evaluation.save_values(str(path), results)
    with np.load(path) as arrays:
        assert sorted(arrays.files) == ["sarsa/policy", "sarsa/q", "td0/v"]
        np.testing.assert_array_equal(arrays["sarsa/q"], np.ones((3, 2)))  # the first run's
    assert [p.name for p in tmp_path.iterdir()] == ["values.npz"]  # no temporary file left
