"""Tests of mp.rl.td: TD(0), SARSA, expected SARSA, Q-learning and TD(lambda)."""

import time

import gymnasium
import numpy as np
import pytest

from mp.rl import montecarlo, registry, tabular, td
from tests.rl.test_montecarlo import ScriptedEnv, assert_results_equal, greedy_rollout_return

CONTROL = {"sarsa": td.sarsa, "expected_sarsa": td.expected_sarsa, "qlearning": td.qlearning}


def uniform(env):
    return np.full((env.observation_space.n, env.action_space.n), 1.0 / env.action_space.n)


def test_registered():
    assert registry.get("td0") == (td.td0, "prediction")
    assert registry.get("td_lambda") == (td.td_lambda, "prediction")
    for name, fn in CONTROL.items():
        assert registry.get(name) == (fn, "control")
    assert registry.get("sarsa_lambda") == (td.sarsa_lambda, "control")


# The chain S = 0 -> 1 -> terminal 2 with rewards 1 then 2, whatever the actions; gamma = 0.9,
# alpha = 0.5, Q starts at [[3, 3], [2, 4], [0, 0]]. The first update is of Q(0, A_0):
#   Q-learning:      target = 1 + 0.9 * max(2, 4) = 4.6;          Q(0, A_0) = 3 + 0.5 * 1.6 = 3.8
#   expected SARSA (epsilon = 0.5): pi(.|1) = [0.25, 0.75], sum_a pi Q(1, a) = 0.5 + 3 = 3.5,
#                    target = 1 + 0.9 * 3.5 = 4.15;               Q(0, A_0) = 3 + 0.5 * 1.15 = 3.575
#   SARSA:           target = 1 + 0.9 * Q(1, A_1):  A_1 = 0: 2.8, Q(0, A_0) = 3 + 0.5 * -0.2 = 2.9
#                                                   A_1 = 1: 4.6, Q(0, A_0) = 3.8
# The second update is terminal: target = 2, Q(1, A_1) = Q(1, A_1) + 0.5 (2 - Q(1, A_1)):
#   A_1 = 0: 2 -> 2;  A_1 = 1: 4 -> 3.
@pytest.mark.parametrize("name", sorted(CONTROL))
def test_control_single_updates_by_hand(name):
    q_init = np.array([[3.0, 3.0], [2.0, 4.0], [0.0, 0.0]])
    seen_next_actions = set()
    for seed in range(8):
        env = ScriptedEnv([0, 1, 2], [1.0, 2.0])
        q = CONTROL[name](
            env, gamma=0.9, alpha=0.5, epsilon=0.5, episodes=1, q_init=q_init, seed=seed
        ).q
        a0, a1 = env.actions[0]
        seen_next_actions.add(a1)
        first = {"qlearning": 3.8, "expected_sarsa": 3.575, "sarsa": [2.9, 3.8][a1]}[name]
        assert q[0, a0] == pytest.approx(first) and q[0, 1 - a0] == 3.0
        assert q[1, a1] == pytest.approx([2.0, 3.0][a1]) and q[1, 1 - a1] == q_init[1, 1 - a1]
    assert seen_next_actions == {0, 1}  # both SARSA cases were checked


class LoopEnv(gymnasium.Env):
    """One state that loops to itself with reward 1; ``terminate=True`` ends in state 1 instead."""

    def __init__(self, terminate):
        self.terminate = terminate
        self.observation_space = gymnasium.spaces.Discrete(2)
        self.action_space = gymnasium.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return 0, {}

    def step(self, action):
        return (1, 1.0, True, False, {}) if self.terminate else (0, 1.0, False, False, {})


@pytest.mark.parametrize("name", ["td0", "td_lambda", "sarsa_lambda", *sorted(CONTROL)])
def test_truncated_bootstraps_terminated_does_not(name):
    # One step from state 0 (values start at 2, gamma = 0.9, alpha = 0.5):
    #   truncated by the time limit: target = 1 + 0.9 * 2 = 2.8, value = 2 + 0.5 * 0.8 = 2.4
    #   terminated:                  target = 1,             value = 2 + 0.5 * (1 - 2) = 1.5
    # (for the control methods every bootstrap value of state 0 is 2: max, sample, expectation).
    values = {}
    for terminate in (False, True):
        env = gymnasium.wrappers.TimeLimit(LoopEnv(terminate), max_episode_steps=1)
        args = dict(gamma=0.9, alpha=0.5, episodes=1, seed=0)
        if name in CONTROL or name == "sarsa_lambda":
            fn = CONTROL.get(name, td.sarsa_lambda)
            q = fn(env, epsilon=0.5, q_init=2.0, **args).q
            (values[terminate],) = q[0][q[0] != 2.0]  # the one updated entry Q(0, A_0)
        else:
            fn = td.td0 if name == "td0" else td.td_lambda
            values[terminate] = fn(env, policy=uniform(env), v_init=2.0, **args).v[0]
    assert values[False] == pytest.approx(2.4)
    assert values[True] == pytest.approx(1.5)


@pytest.mark.parametrize("traces, v0", [("accumulating", 0.453929688), ("replacing", 0.436125)])
def test_td_lambda_one_episode_by_hand(traces, v0):
    # S = 0, 1, 0, terminal 2 with rewards 1, 2, 3; gamma = 0.5, lambda = 0.5 (gamma lambda =
    # 0.25), alpha = 0.1, V = 0, online updates:
    #   t=0: delta = 1 + 0.5 * 0 - 0 = 1;            e = {0: 1};          V(0) = 0.1
    #   t=1: delta = 2 + 0.5 * 0.1 - 0 = 2.05;       e = {0: 0.25, 1: 1}; V(0) = 0.1 + 0.05125
    #        = 0.15125, V(1) = 0.205
    #   t=2: delta = 3 - 0.15125 = 2.84875 (terminal); e(1) = 0.25, e(0) = 0.0625 + 1 = 1.0625
    #        (accumulating) or 1 (replacing):
    #        V(0) = 0.15125 + 0.1 * 2.84875 * 1.0625 = 0.453929688 (accumulating)
    #        V(0) = 0.15125 + 0.1 * 2.84875 = 0.436125            (replacing)
    #        V(1) = 0.205 + 0.1 * 2.84875 * 0.25 = 0.27621875
    env = ScriptedEnv([0, 1, 0, 2], [1.0, 2.0, 3.0])
    result = td.td_lambda(
        env, policy=uniform(env), gamma=0.5, alpha=0.1, lambda_=0.5, traces=traces, episodes=1
    )
    np.testing.assert_allclose(result.v, [v0, 0.27621875, 0.0], rtol=1e-8)


def random_walk():
    env = tabular.make_env("RandomWalk")
    return env, uniform(env), tabular.RANDOM_WALK_TRUE_VALUES


def test_td_lambda_zero_is_td0_exactly():
    env, policy, true_v = random_walk()
    args = dict(policy=policy, gamma=0.9, alpha=0.1, episodes=50, v_init=0.5, true_v=true_v)
    a = td.td0(env, seed=7, **args)
    for traces in ("accumulating", "replacing"):
        b = td.td_lambda(env, lambda_=0.0, traces=traces, seed=7, **args)
        assert_results_equal(a, b)


@pytest.mark.parametrize("gamma", [1.0, 0.8])
def test_offline_td_lambda_one_is_every_visit_constant_alpha_mc(gamma):
    # With accumulating traces, lambda = 1, and the updates of an episode summed with the values
    # of its start, alpha sum_t delta_t e_t(s) = alpha sum_{t: S_t = s} sum_{k >= t}
    # gamma^(k-t) delta_k = alpha sum_{t: S_t = s} (G_t - V(s)) (the TD errors telescope, V of
    # the terminal state is 0): the every-visit constant-alpha MC update, on the same episodes.
    env, policy, true_v = random_walk()
    args = dict(policy=policy, gamma=gamma, alpha=0.05, episodes=40, v_init=0.5, seed=3)
    mc = montecarlo.mc_prediction(env, first_visit=False, **args)
    tdl = td.td_lambda(env, lambda_=1.0, traces="accumulating", online=False, **args)
    np.testing.assert_array_equal(mc.episode_lengths, tdl.episode_lengths)  # same episodes
    np.testing.assert_allclose(tdl.v, mc.v, rtol=1e-12, atol=1e-12)
    assert not np.allclose(tdl.v, 0.5)  # something was learned


def test_sarsa_lambda_zero_is_sarsa_exactly_and_traces_help_learning():
    env = tabular.make_env("CliffWalking-v1")
    a = td.sarsa(env, epsilon=0.1, alpha=0.5, episodes=60, seed=3)
    for traces in ("accumulating", "replacing"):
        b = td.sarsa_lambda(
            env, epsilon=0.1, alpha=0.5, lambda_=0.0, traces=traces, episodes=60, seed=3
        )
        assert_results_equal(a, b)
    env = tabular.make_env("FrozenLake-v1", is_slippery=False)
    result = td.sarsa_lambda(env, gamma=0.9, alpha=0.3, lambda_=0.8, episodes=300, seed=0)
    assert greedy_rollout_return(env, result.q) == 1.0


def test_replacing_and_accumulating_traces_differ_only_on_revisits():
    env, uniform_policy, _ = random_walk()
    always_right = np.tile([0.0, 1.0], (env.observation_space.n, 1))  # C, D, E, exit: no revisit
    args = dict(gamma=1.0, alpha=0.1, lambda_=0.8, episodes=20, seed=0)
    acc = td.td_lambda(env, policy=always_right, traces="accumulating", **args)
    rep = td.td_lambda(env, policy=always_right, traces="replacing", **args)
    np.testing.assert_array_equal(acc.v, rep.v)
    assert acc.v[3] > 0  # learned something
    acc = td.td_lambda(env, policy=uniform_policy, traces="accumulating", **args)
    rep = td.td_lambda(env, policy=uniform_policy, traces="replacing", **args)
    assert (acc.episode_lengths > 3).any()  # some episode revisited a state
    assert not np.allclose(acc.v, rep.v)


def test_td0_and_td_lambda_random_walk_rms_error():
    # S&B example 6.2 (values start at 0.5): RMS error below 0.1 within a few hundred episodes.
    env, policy, true_v = random_walk()
    for fn, extra in ((td.td0, {}), (td.td_lambda, {"lambda_": 0.5})):
        result = fn(
            env, policy=policy, alpha=0.05, episodes=300, v_init=0.5, true_v=true_v, seed=0, **extra
        )
        assert result.rms_errors[0] > 0.2  # starts near 0.236
        assert result.rms_errors[-50:].mean() < 0.1
        assert result.v[0] == result.v[-1] == 0.0


def test_qlearning_frozenlake_deterministic_learns_optimal_policy():
    env = tabular.make_env("FrozenLake-v1", is_slippery=False)
    result = td.qlearning(env, gamma=0.9, alpha=0.5, epsilon=0.1, episodes=300, seed=0)
    assert greedy_rollout_return(env, result.q) == 1.0  # success rate 1.0 (deterministic env)
    # Optimal: the start's value is gamma^5 (6 steps, reward 1 on the last) = 0.59049.
    assert result.q[0].max() == pytest.approx(0.9**5, rel=1e-3)


def test_cliff_walking_sarsa_safer_than_qlearning():
    # S&B example 6.6 (epsilon = 0.1, alpha = 0.5): online, SARSA's safe path returns more per
    # episode (about -25) than Q-learning's cliff-edge path (about -50, epsilon-falls cost -100).
    env = tabular.make_env("CliffWalking-v1")
    mean = {}
    for name in ("sarsa", "qlearning"):
        runs = [
            CONTROL[name](env, epsilon=0.1, alpha=0.5, episodes=300, seed=s).episode_returns
            for s in range(4)
        ]
        mean[name] = np.mean([r[-100:].mean() for r in runs])
    assert mean["sarsa"] > mean["qlearning"] + 5


def test_sarsa_speed_cliff_walking():
    env = tabular.make_env("CliffWalking-v1")
    start = time.perf_counter()
    result = td.sarsa(env, epsilon=0.1, alpha=0.5, episodes=200, seed=0)
    seconds = time.perf_counter() - start
    # Measured about 3,500 episodes/s (90,000 steps/s); fail only when far slower.
    assert result.episode_lengths.sum() / seconds > 10_000


@pytest.mark.parametrize("name", sorted(CONTROL))
def test_same_seed_same_result(name):
    env = tabular.make_env("FrozenLake-v1")  # slippery: the environment's randomness matters
    runs = [CONTROL[name](env, gamma=0.95, episodes=200, seed=s) for s in (1, 1, 2)]
    assert_results_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0].episode_lengths, runs[2].episode_lengths)


def test_bad_arguments():
    env, policy, _ = random_walk()
    with pytest.raises(ValueError, match="Received: lambda_=1.5"):
        td.td_lambda(env, policy=policy, lambda_=1.5)
    with pytest.raises(ValueError, match="Received: traces='dutch'"):
        td.td_lambda(env, policy=policy, traces="dutch")
    with pytest.raises(ValueError, match="Received: alpha=0"):
        td.td0(env, policy=policy, alpha=0)
    with pytest.raises(ValueError, match="Received: epsilon=2"):
        td.qlearning(env, epsilon=2)
    with pytest.raises(ValueError, match="rows summing to 1"):
        td.td0(env, policy=np.ones((7, 2)))
