"""Tabular algorithms side by side on one environment: checked set-up, seeded runs, metrics.

The experiments of chapter 6.1 put algorithms of the registry side by side on one environment
(S&B example 6.6: SARSA and Q-learning on the cliff; example 6.2: TD(0) and constant-alpha Monte
Carlo on the random walk; policy and value iteration on FrozenLake)::

    from mp.rl import comparison, evaluation

    setup = comparison.Comparison(
        ["sarsa", "qlearning"], "CliffWalking-v1", alpha=0.5, epsilon=0.1, episodes=500, runs=10
    )
    results, seconds = setup.train()         # name -> [Result of each run], wall seconds
    metrics = setup.metrics(results)         # mean_return, success_rate, v_start, ...
    evaluation.learning_curves_figure(results, setup.sampling, title="CliffWalking-v1")

Every argument is checked when the `Comparison` is made, before anything runs. Each algorithm
takes the options its signature accepts (`gamma`, `alpha`, `epsilon`, ...) and keeps its own
defaults for the others. Sampling algorithms (Monte Carlo, TD) run `runs` times with seeds
`seed, seed + 1, ...`, each on a fresh environment; dynamic programming is deterministic and
runs once.

Course: ch6.1 Bootcamp (6.1.1 Dynamic Programming, 6.1.2 Monte Carlo, 6.1.3 TD).
"""

import inspect
import sys
import time

import numpy as np

from mp.rl import dp, evaluation, montecarlo, policies, registry, tabular, td  # noqa: F401


def _check_range(name, value, low, high, low_open=False):
    if value is None:
        return
    ok = (low < value if low_open else low <= value) and value <= high
    if not ok:
        interval = f"{'(' if low_open else '['}{low}, {high}]"
        raise ValueError(f"{name} must be in {interval}. Received: {name}={value}")


def _check_count(name, value, minimum=1):
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
        what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"{name} must be {what}. Received: {name}={value}")


def per_algorithm_alpha(alpha, algos):
    """`alpha` (None, a number, or a list of one or len(algos) values) -> {algo: float or None}.

    Raises:
        ValueError: for values that are not numbers or a list of the wrong length.
    """
    if alpha is None or isinstance(alpha, (int, float)):
        return {name: alpha for name in algos}
    try:
        values = [float(a) for a in alpha]
    except (TypeError, ValueError):
        raise ValueError(f"alpha must be numbers. Received: alpha={alpha}") from None
    if not values:
        return {name: None for name in algos}
    if len(values) == 1:
        values = values * len(algos)
    if len(values) != len(algos):
        raise ValueError(
            f"alpha must be one value or one per algorithm ({len(algos)}). "
            f"Received: alpha={','.join(map(str, values))}"
        )
    return dict(zip(algos, values))


class Comparison:
    """Algorithms of :mod:`mp.rl.registry`, checked and set up to run on one environment.

    Args:
        algos: an algorithm name or a list of them (``mp.rl.names()``).
        env: environment name (:func:`mp.rl.tabular.make_env`).
        env_kwargs: the environment's arguments, e.g. ``{"map_name": "8x8"}``.
        gamma: discount factor in [0, 1].
        alpha: constant step size (> 0): a number for every algorithm, or a list with one per
            algorithm; None or [] keeps each algorithm's default (sample averages for Monte
            Carlo).
        epsilon: exploration in [0, 1]; None keeps each algorithm's default.
        epsilon_end, decay_episodes: if ``epsilon_end`` is set, epsilon decays linearly from
            ``epsilon`` to ``epsilon_end`` over ``decay_episodes`` episodes (0: all of them).
        v_init: prediction: initial value of the non-terminal states.
        lambda_, traces: TD(lambda)'s trace decay and kind of traces.
        first_visit, exploring_starts: Monte Carlo options.
        evaluation: DP policy evaluation, ``"linear"`` or ``"iterative"``.
        policy: the named policy (:func:`mp.rl.tabular.named_policy`) that prediction
            algorithms and ``policy_evaluation`` evaluate.
        episodes: training episodes per run of a sampling algorithm.
        runs: runs of each sampling algorithm, with seeds ``seed .. seed + runs - 1``.
        eval_episodes: episodes of the greedy policy after training (0: no evaluation).
        last_episodes: ``mean_return`` averages this many final training episodes.
        seed: the first seed (of the runs, and of the evaluation episodes).

    Attributes:
        algos: the algorithm names; ``kinds``: name -> ``"dp"``, ``"prediction"`` or
            ``"control"``; ``sampling``: the names that are not dynamic programming.
        env: an environment made once (for pictures and the model); ``mdp``: its model or
            None, ``terminal`` its [S] mask of terminal states or None; ``true_v``: the true
            values of ``policy`` where prediction has a model.

    Raises:
        ValueError: for any argument that is out of range or does not fit the environment.
    """

    def __init__(
        self,
        algos,
        env="FrozenLake-v1",
        env_kwargs=None,
        *,
        gamma=1.0,
        alpha=None,
        epsilon=None,
        epsilon_end=None,
        decay_episodes=0,
        v_init=0.0,
        lambda_=0.9,
        traces="accumulating",
        first_visit=True,
        exploring_starts=False,
        evaluation="linear",
        policy="uniform",
        episodes=500,
        runs=1,
        eval_episodes=1000,
        last_episodes=100,
        seed=0,
    ):
        algos = [algos] if isinstance(algos, str) else list(algos)
        self.algos = [a.strip() for a in algos if a.strip()]
        if not self.algos:
            raise ValueError("algo must name at least one algorithm. Received: algo=''")
        if len(set(self.algos)) != len(self.algos):
            raise ValueError(
                f"algo names an algorithm twice. Received: algo={','.join(self.algos)}"
            )
        self._fns = {}
        self.kinds = {}
        for name in self.algos:  # ValueError lists the known ones
            self._fns[name], self.kinds[name] = registry.get(name)
        self.sampling = [n for n in self.algos if self.kinds[n] != "dp"]
        _check_range("gamma", gamma, 0.0, 1.0)
        self.alphas = per_algorithm_alpha(alpha, self.algos)
        for a in self.alphas.values():
            _check_range("alpha", a, 0.0, np.inf, low_open=True)
        _check_range("epsilon", epsilon, 0.0, 1.0)
        _check_range("epsilon_end", epsilon_end, 0.0, 1.0)
        if epsilon_end is not None and epsilon is None:
            raise ValueError("epsilon_end needs a start value: set epsilon as well.")
        _check_range("lambda_", lambda_, 0.0, 1.0)
        _check_count("episodes", episodes)
        _check_count("runs", runs)
        _check_count("last_episodes", last_episodes)
        _check_count("decay_episodes", decay_episodes, minimum=0)
        _check_count("eval_episodes", eval_episodes, minimum=0)
        self.runs, self.eval_episodes, self.last_episodes = runs, eval_episodes, last_episodes
        self.seed = seed
        self.env_name, self.env_kwargs = env, dict(env_kwargs or {})
        self.env = self.make_env()  # ValueError for unknown environments
        self.mdp = tabular.mdp_from_env(self.env) if tabular.has_model(self.env) else None
        self.terminal = self.mdp.terminal if self.mdp is not None else None
        planners = [n for n in self.algos if self.kinds[n] == "dp"]
        if planners and self.mdp is None:
            raise ValueError(
                f"{','.join(planners)} needs a model of the environment, and {env} has none "
                "(env.unwrapped.P); use a Monte Carlo or TD algorithm."
            )
        kinds = set(self.kinds.values())
        fixed_policy = None
        if "prediction" in kinds or "policy_evaluation" in self.algos:
            fixed_policy = tabular.named_policy(policy, self.env)
        if exploring_starts and "mc_control" in self.algos:
            montecarlo.exploring_starts_for(self.env)  # ValueError where it cannot start anywhere
        self.true_v = None
        if "prediction" in kinds and self.mdp is not None:
            try:
                self.true_v = dp.evaluate_linear(self.mdp, fixed_policy, gamma)
            except ValueError:  # the policy may never end (gamma = 1): then no RMS error
                self.true_v = None
        if epsilon_end is not None:  # a schedule episode -> epsilon
            epsilon = policies.linear_decay(epsilon, epsilon_end, decay_episodes or episodes)
        self.gamma, self.episodes = gamma, episodes
        self.options = {
            "gamma": gamma,
            "v_init": v_init,
            "epsilon": epsilon,
            "lambda_": lambda_,
            "traces": traces,
            "first_visit": first_visit,
            "exploring_starts": exploring_starts,
            "evaluation": evaluation,
            "method": evaluation,
            "episodes": episodes,
            "policy": fixed_policy,
            "true_v": self.true_v,
        }

    def make_env(self):
        """A fresh environment, as every run and evaluation gets one."""
        return tabular.make_env(self.env_name, **self.env_kwargs)

    def kwargs(self, name):
        """The options algorithm `name` accepts (by its signature); None keeps its default."""
        accepted = inspect.signature(self._fns[name]).parameters
        options = self.options | {"alpha": self.alphas[name]}
        return {k: v for k, v in options.items() if k in accepted and v is not None}

    def train(self, *, log_every=None, stream=None):
        """Runs every algorithm, one after the other.

        Args:
            log_every: episodes between progress updates (:class:`EpisodeProgress`); None
                prints nothing.
            stream: where the progress goes (default `sys.stdout`).

        Returns:
            ``(results, seconds)``: dicts ``name -> [Result of each run]`` (one for dynamic
            programming) and ``name -> wall seconds``.
        """
        seed, results, seconds = self.seed, {}, {}
        for name in self.algos:
            start = time.time()
            fn, kwargs = self._fns[name], self.kwargs(name)
            if self.kinds[name] == "dp":
                results[name] = [fn(self.env, seed=seed, **kwargs)]
            else:
                bar = EpisodeProgress(name, self.episodes * self.runs, log_every, stream)
                results[name] = [
                    fn(self.make_env(), seed=seed + r, callback=bar, **kwargs)
                    for r in range(self.runs)
                ]
            seconds[name] = time.time() - start
        return results, seconds

    def metrics(self, results, seconds=None):
        """The numbers of each algorithm and of the comparison, from `train`'s results.

        Per algorithm (under ``"results"``, and at the top level as well when there is only
        one algorithm): ``kind``; ``mean_return``, the mean return of the last
        ``last_episodes`` training episodes averaged over the runs (sampling algorithms);
        ``success_rate`` and ``eval_mean_return`` of the greedy policy of the first run over
        ``eval_episodes`` episodes seeded with ``seed`` (control and DP; the success rate
        where the environment defines success); ``v_start = sum_s start(s) v(s)`` (where
        there is a model); ``sweeps`` (DP); ``final_rms_error`` and
        ``rms_error_last_episodes`` (prediction with true values); ``episodes``, ``runs``,
        ``global_step`` (episodes of all runs, or DP sweeps) and ``wall_seconds``.

        With several DP control algorithms, ``dp_policies_agree`` and
        ``dp_max_value_difference`` say whether they found the same policy and values.
        """
        per_algo = {n: self._algorithm_metrics(n, results[n]) for n in self.algos}
        for name, s in (seconds or {}).items():
            per_algo[name]["wall_seconds"] = s
        metrics = {
            "env": self.env_name,
            "env_kwargs": self.env_kwargs,
            "algo": self.algos,
            "gamma": self.gamma,
            "seed": self.seed,
            "global_step": int(sum(m["global_step"] for m in per_algo.values())),
            "results": per_algo,
        }
        planners = [n for n in self.algos if self.kinds[n] == "dp" and n != "policy_evaluation"]
        if len(planners) > 1:  # do policy and value iteration find the same policy and values?
            live = ~self.mdp.terminal
            actions = [np.argmax(results[n][0].policy[live], axis=1) for n in planners]
            values = [results[n][0].v for n in planners]
            metrics["dp_policies_agree"] = all(np.array_equal(actions[0], a) for a in actions)
            metrics["dp_max_value_difference"] = float(
                max(np.abs(values[0] - v).max() for v in values)
            )
        if len(self.algos) == 1:
            only = per_algo[self.algos[0]]
            metrics.update({k: v for k, v in only.items() if k != "global_step"})
        return metrics

    def _algorithm_metrics(self, name, runs):
        kind, first = self.kinds[name], runs[0]
        m = {"kind": kind}
        if kind == "dp":
            m.update(sweeps=int(first.sweeps), episodes=0, global_step=int(first.sweeps))
        else:
            returns = np.stack([r.episode_returns for r in runs])  # [runs, episodes]
            m.update(episodes=returns.shape[1], runs=len(runs), global_step=returns.size)
            last = self.last_episodes
            m["mean_return"] = float(returns[:, -last:].mean())
            if first.rms_errors is not None:
                rms = np.stack([r.rms_errors for r in runs])
                m["final_rms_error"] = float(rms[:, -1].mean())
                m["rms_error_last_episodes"] = float(rms[:, -last:].mean())
        v = evaluation.state_values(first)
        if self.mdp is not None and v is not None:
            m["v_start"] = float(self.mdp.start @ v)
        evaluable = kind != "prediction" and name != "policy_evaluation"
        if evaluable and self.eval_episodes and first.policy is not None:
            out = evaluation.evaluate_policy(
                self.make_env(), first.policy, episodes=self.eval_episodes, seed=self.seed
            )
            m["eval_mean_return"] = out["mean_return"]
            m["eval_episodes"] = self.eval_episodes
            if out["success_rate"] is not None:
                m["success_rate"] = out["success_rate"]
        return m

    def shown(self, results):
        """``name -> (v, policy)`` of each algorithm's first run, as the pictures show them."""
        return {n: evaluation.values_and_policy(results[n][0], self.kinds[n]) for n in self.algos}


class EpisodeProgress:
    """A ``callback(episode, episode_return)`` that shows the progress of training runs.

    A Keras progress bar over episodes on a terminal, else a plain line
    ``<name> episode <done>/<target>  return <mean>`` every ``log_every`` episodes (and at
    the end), with the mean return since the previous line. ``log_every=None`` shows nothing.

    Args:
        name: the algorithm's name.
        target: the episodes of all runs together.
        log_every: episodes between updates, or None.
        stream: where the lines go (default `sys.stdout`).
    """

    def __init__(self, name, target, log_every, stream=None):
        self.name, self.target, self.log_every = name, target, log_every
        self.stream = stream or sys.stdout
        self.bar = None
        self.done = 0
        self.recent = []
        if log_every is not None and hasattr(self.stream, "isatty") and self.stream.isatty():
            import keras

            self.bar = keras.utils.Progbar(target, unit_name="episode")

    def __call__(self, episode, episode_return):
        self.done += 1
        self.recent.append(episode_return)
        if self.log_every is None or (self.done % self.log_every and self.done != self.target):
            return
        mean = float(np.mean(self.recent))
        self.recent = []
        if self.bar is not None:
            self.bar.update(self.done, [("return", mean)])
        else:
            print(
                f"{self.name} episode {self.done}/{self.target}  return {mean:.4g}",
                file=self.stream,
                flush=True,
            )
