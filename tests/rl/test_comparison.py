"""Tests of mp.rl.comparison: the checked set-up, the seeded runs and the metrics."""

import io

import numpy as np
import pytest

from mp.rl import comparison, dp, tabular, td


def test_dynamic_programming_side_by_side():
    setup = comparison.Comparison(
        ["value_iteration", "policy_iteration"],
        "FrozenLake-v1",
        {"is_slippery": False},
        gamma=0.9,
        eval_episodes=5,
    )
    assert setup.sampling == [] and setup.kinds["policy_iteration"] == "dp"
    assert setup.kwargs("value_iteration") == {"gamma": 0.9}  # only what its signature takes
    results, seconds = setup.train()
    assert set(seconds) == {"value_iteration", "policy_iteration"}
    expected = dp.value_iteration(tabular.make_env("FrozenLake-v1", is_slippery=False), gamma=0.9)
    np.testing.assert_array_equal(results["value_iteration"][0].v, expected.v)
    metrics = setup.metrics(results, seconds)
    assert metrics["dp_policies_agree"] and metrics["dp_max_value_difference"] < 1e-8
    assert metrics["global_step"] == sum(int(results[n][0].sweeps) for n in setup.algos)
    m = metrics["results"]["value_iteration"]
    # The shortest path takes 6 steps; only the last pays 1, so V(start) = 0.9^5.
    assert m["v_start"] == pytest.approx(0.9**5) and m["success_rate"] == 1.0
    assert m["episodes"] == 0 and m["wall_seconds"] == seconds["value_iteration"]
    assert "v_start" not in metrics  # per-algorithm numbers go to the top only for one algorithm


def test_runs_are_seeded_seed_to_seed_plus_runs_minus_1():
    kwargs = dict(alpha=0.5, epsilon=0.1, episodes=15)
    setup = comparison.Comparison(
        "qlearning", "CliffWalking-v1", runs=2, seed=5, last_episodes=4, eval_episodes=0, **kwargs
    )
    results, _ = setup.train()
    expected = [td.qlearning(tabular.make_env("CliffWalking-v1"), seed=s, **kwargs) for s in (5, 6)]
    for got, want in zip(results["qlearning"], expected):
        np.testing.assert_array_equal(got.q, want.q)
    metrics = setup.metrics(results)
    returns = np.stack([r.episode_returns for r in expected])
    assert metrics["mean_return"] == pytest.approx(returns[:, -4:].mean())
    assert metrics["runs"] == 2 and metrics["global_step"] == 30
    assert "success_rate" not in metrics  # eval_episodes=0: no evaluation


def test_prediction_gets_the_true_values_and_its_rms_error():
    setup = comparison.Comparison(
        ["td0", "mc_prediction"], "RandomWalk", alpha=[0.1, 0.02], episodes=10, runs=3
    )
    np.testing.assert_allclose(setup.true_v, tabular.RANDOM_WALK_TRUE_VALUES)
    assert setup.kwargs("td0")["alpha"] == 0.1 and setup.kwargs("mc_prediction")["alpha"] == 0.02
    results, _ = setup.train()
    metrics = setup.metrics(results)["results"]
    for name in setup.algos:
        rms = np.stack([r.rms_errors for r in results[name]])
        assert metrics[name]["final_rms_error"] == pytest.approx(rms[:, -1].mean())
        assert "success_rate" not in metrics[name]  # a fixed policy is predicted, not evaluated
    assert setup.shown(results)["td0"][1] is None  # the random policy's arrows say nothing


def test_per_algorithm_alpha():
    assert comparison.per_algorithm_alpha(None, ["a", "b"]) == {"a": None, "b": None}
    assert comparison.per_algorithm_alpha(0.5, ["a", "b"]) == {"a": 0.5, "b": 0.5}
    assert comparison.per_algorithm_alpha([], ["a"]) == {"a": None}
    assert comparison.per_algorithm_alpha(["0.1"], ["a", "b"]) == {"a": 0.1, "b": 0.1}
    assert comparison.per_algorithm_alpha(["0.1", "0.2"], ["a", "b"]) == {"a": 0.1, "b": 0.2}
    with pytest.raises(ValueError, match="one per algorithm"):
        comparison.per_algorithm_alpha([0.1, 0.2, 0.3], ["a", "b"])
    with pytest.raises(ValueError, match="alpha must be numbers"):
        comparison.per_algorithm_alpha(["fast"], ["a"])


@pytest.mark.parametrize(
    "args, kwargs, match",
    [
        ((["sarsa", "sarsa"],), {}, "names an algorithm twice"),
        (([" "],), {}, "at least one algorithm"),
        (("value_iteration", "Blackjack-v1"), {}, "needs a model of the environment"),
        (("sarsa",), {"epsilon_end": 0.0}, "set epsilon as well"),
        (("sarsa",), {"runs": 0}, "runs must be a positive integer"),
        (("sarsa",), {"eval_episodes": -1}, "eval_episodes must be an integer >= 0"),
        (("sarsa",), {"last_episodes": 0}, "last_episodes must be a positive integer"),
        (("mc_control", "Gambler", {"p_heads": 2.0}), {}, r"p_heads must be in \[0, 1\]"),
    ],
)
def test_bad_set_ups(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        comparison.Comparison(*args, **kwargs)


def test_episode_progress_lines():
    stream = io.StringIO()
    bar = comparison.EpisodeProgress("sarsa", 5, 2, stream)
    for episode, episode_return in enumerate([1.0, 3.0, 5.0, 7.0, 9.0]):
        bar(episode, episode_return)
    assert stream.getvalue().splitlines() == [
        "sarsa episode 2/5  return 2",  # the mean since the previous line
        "sarsa episode 4/5  return 6",
        "sarsa episode 5/5  return 9",  # and at the end
    ]
    quiet = io.StringIO()
    silent = comparison.EpisodeProgress("sarsa", 5, None, quiet)
    for episode in range(5):
        silent(episode, 0.0)
    assert quiet.getvalue() == ""
