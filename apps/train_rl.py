"""Tabular reinforcement learning: `python -m apps.train_rl --flagfile=flags/rl_frozenlake_dp.cfg`.

    environment (mp.rl.tabular) -> algorithm(s) (mp.rl.registry: dp, montecarlo, td)
    -> learning_curves.png, values.png, policy.txt, values.npz -> metrics.json

`--algo` names one algorithm or a comma list of them, trained one after the other on the same
environment and drawn in the same figures (e.g. `--algo=sarsa,qlearning` reproduces Sutton &
Barto's example 6.6). Sampling algorithms run `--runs` times with seeds `seed, seed + 1, ...`;
their learning curves are averaged over the runs. Dynamic programming is deterministic and
runs once.

metrics.json holds, per algorithm (under "results", and at the top level as well when there is
only one algorithm):
  - `mean_return`: mean return of the last `--last_episodes` training episodes, averaged over
    the runs (sampling algorithms);
  - `success_rate`, `eval_mean_return`: the greedy policy of the first run over
    `--eval_episodes` seeded episodes (control and DP, where the environment defines success);
  - `v_start`: the value of the start state(s), `sum_s start(s) v(s)` (where there is a model);
  - `sweeps`: sweeps over the state space (DP); `final_rms_error`: RMS error of v against the
    true values of the policy after the last episode (prediction, where there is a model);
  - `wall_seconds`, `episodes`, `runs`.

Course: ch6.1 Bootcamp (6.1.1 Dynamic Programming, 6.1.2 Monte Carlo, 6.1.3 TD).
"""

import inspect
import os
import sys

import numpy as np
from absl import flags

from apps import common, common_flags

FLAGS = flags.FLAGS

if "model_dir" not in FLAGS:  # the shared flags, so that any app can be imported after this one
    common_flags.define()
common_flags.define_once(flags.DEFINE_list, "algo", ["value_iteration"], "Algorithm(s).")
common_flags.define_once(
    flags.DEFINE_string,
    "env",
    "FrozenLake-v1",
    "Environment: FrozenLake-v1, CliffWalking-v1, Taxi-v4 (alias Taxi-v3), Blackjack-v1, "
    "RandomWalk, Gambler.",
)
common_flags.define_once(
    flags.DEFINE_string, "map_name", "4x4", "FrozenLake map: 4x4 or 8x8 (other envs: ignored)."
)
common_flags.define_once(
    flags.DEFINE_boolean, "slippery", True, "FrozenLake: slippery ice (other envs: ignored)."
)
common_flags.define_once(
    flags.DEFINE_float, "p_heads", 0.4, "Gambler: probability of winning a stake."
)
common_flags.define_once(flags.DEFINE_float, "gamma", 1.0, "Discount factor in [0, 1].")
common_flags.define_once(
    flags.DEFINE_list,
    "alpha",
    [],
    "Constant step size > 0, one for all algorithms or one per algorithm of --algo; unset: each "
    "algorithm's default (sample averages for Monte Carlo).",
)
common_flags.define_once(
    flags.DEFINE_float,
    "epsilon_end",
    None,
    "If set, epsilon decays linearly from --epsilon to this value over --decay_episodes.",
)
common_flags.define_once(
    flags.DEFINE_integer,
    "decay_episodes",
    0,
    "Episodes of the linear epsilon decay; 0 means all --episodes.",
)
common_flags.define_once(
    flags.DEFINE_float, "v_init", 0.0, "Prediction: initial value of the non-terminal states."
)
common_flags.define_once(
    flags.DEFINE_float, "epsilon", None, "Exploration in [0, 1]; unset: the algorithm's default."
)
common_flags.define_once(flags.DEFINE_float, "lambda_", 0.9, "td_lambda: trace decay in [0, 1].")
common_flags.define_once(
    flags.DEFINE_enum,
    "traces",
    "accumulating",
    ["accumulating", "replacing"],
    "td_lambda: eligibility traces.",
)
common_flags.define_once(
    flags.DEFINE_boolean, "first_visit", True, "Monte Carlo: first-visit (else every-visit)."
)
common_flags.define_once(
    flags.DEFINE_boolean, "exploring_starts", False, "mc_control: exploring starts."
)
common_flags.define_once(
    flags.DEFINE_enum,
    "evaluation",
    "linear",
    ["linear", "iterative"],
    "DP policy evaluation inside policy_iteration / for policy_evaluation: linear solve or sweeps.",
)
common_flags.define_once(
    flags.DEFINE_string,
    "policy",
    "uniform",
    "Prediction and policy_evaluation: the evaluated policy (uniform, blackjack_stick20).",
)
common_flags.define_once(flags.DEFINE_integer, "episodes", 500, "Training episodes per run.")
common_flags.define_once(flags.DEFINE_integer, "runs", 1, "Independent runs (seeds seed..).")
common_flags.define_once(
    flags.DEFINE_integer,
    "eval_episodes",
    1000,
    "Seeded episodes of the greedy policy after training; 0 skips the evaluation.",
)
common_flags.define_once(
    flags.DEFINE_integer, "last_episodes", 100, "mean_return averages the last these episodes."
)
common_flags.define_once(flags.DEFINE_integer, "smooth", 10, "Moving-average window of curves.")

RL_FLAGS = (
    "algo",
    "env",
    "map_name",
    "slippery",
    "p_heads",
    "gamma",
    "alpha",
    "epsilon",
    "epsilon_end",
    "decay_episodes",
    "v_init",
    "lambda_",
    "traces",
    "first_visit",
    "exploring_starts",
    "evaluation",
    "policy",
    "episodes",
    "runs",
    "eval_episodes",
    "last_episodes",
    "smooth",
)
SHARED_FLAGS = ("model_dir", "seed", "log_every")
MAX_SUMMARY_POINTS = 2000  # summaries of long runs keep one (averaged) point per stride


def _load_algorithms():
    """Imports the algorithm modules so that their `@register` lines run."""
    import mp.rl.dp  # noqa: F401
    import mp.rl.montecarlo  # noqa: F401
    import mp.rl.td  # noqa: F401
    from mp.rl import registry

    return registry


def _env_kwargs(env, map_name, slippery, p_heads):
    if env == "FrozenLake-v1":
        return {"map_name": map_name, "is_slippery": slippery}
    if env == "Gambler":
        return {"p_heads": p_heads}
    return {}


def _check_range(name, value, low, high, low_open=False):
    if value is None:
        return
    ok = (low < value if low_open else low <= value) and value <= high
    if not ok:
        interval = f"{'(' if low_open else '['}{low}, {high}]"
        raise ValueError(f"{name} must be in {interval}. Received: {name}={value}")


def _per_algorithm_alpha(alpha, algos):
    """`alpha` (None, a number, or a list of one or len(algos) values) -> {algo: float or None}."""
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


def _algorithm_kwargs(fn, kind, options):
    """The options `fn` accepts (by its signature); `None` leaves the algorithm's default."""
    accepted = inspect.signature(fn).parameters
    return {k: v for k, v in options.items() if k in accepted and v is not None}


class _Progress:
    """A Keras progress bar over episodes on a terminal, plain lines every `log_every` otherwise."""

    def __init__(self, name, target, log_every, enabled, stream=sys.stdout):
        self.name, self.target, self.log_every = name, target, log_every
        self.enabled, self.stream = enabled, stream
        self.bar = None
        self.done = 0
        self.recent = []
        if enabled and hasattr(stream, "isatty") and stream.isatty():
            import keras

            self.bar = keras.utils.Progbar(target, unit_name="episode")

    def __call__(self, episode, episode_return):
        self.done += 1
        self.recent.append(episode_return)
        if not self.enabled or (self.done % self.log_every and self.done != self.target):
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


def run(
    model_dir=None,
    *,
    algo=("value_iteration",),
    env="FrozenLake-v1",
    map_name="4x4",
    slippery=True,
    p_heads=0.4,
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
    smooth=10,
    seed=0,
    log_every=100,
    progress=True,
):
    """Trains tabular algorithm(s) on one environment; returns the metrics of metrics.json.

    Args:
      model_dir: output directory (default `runs/train_rl-<env>`).
      algo: algorithm name or list of names (`mp.rl.registry.names()`).
      env: environment name (`mp.rl.tabular.make_env`); `map_name` and `slippery` configure
        FrozenLake, `p_heads` the Gambler.
      gamma: discount factor in [0, 1].
      alpha: constant step size (> 0): a number for every algorithm, or a list with one per
        algorithm; None or [] keeps each algorithm's default.
      epsilon: exploration in [0, 1]; None keeps each algorithm's default.
      epsilon_end, decay_episodes: if `epsilon_end` is set, epsilon decays linearly from
        `epsilon` to `epsilon_end` over `decay_episodes` episodes (0: all of them), then stays.
      v_init: prediction algorithms: initial value of the non-terminal states (S&B's random
        walk starts from 0.5).
      lambda_, traces: TD(lambda)'s trace decay and kind of traces.
      first_visit, exploring_starts: Monte Carlo options.
      evaluation: DP policy evaluation, `linear` or `iterative`.
      policy: the named policy (`mp.rl.tabular.named_policy`) of prediction algorithms and of
        `policy_evaluation`.
      episodes, runs: training episodes per run; runs with seeds `seed .. seed + runs - 1`.
      eval_episodes: seeded episodes of the final greedy policy (0: no evaluation).
      last_episodes: `mean_return` averages this many final training episodes.
      smooth: moving-average window of the plotted learning curves.
      seed: first seed.
      log_every: episodes between progress updates.
      progress: print progress (False in tests).

    Returns:
      The metrics dict written to `model_dir/metrics.json`.

    Raises:
      ValueError: for bad input, before anything is written.
    """
    hparams = {k: v for k, v in locals().items() if k != "progress"}
    clock = common.Clock()
    registry = _load_algorithms()
    from mp.rl import dp, evaluation as rl_eval, montecarlo, tabular

    # --- check everything before writing anything -----------------------
    algos = [algo] if isinstance(algo, str) else list(algo)
    algos = [a.strip() for a in algos if a.strip()]
    if not algos:
        raise ValueError("algo must name at least one algorithm. Received: algo=''")
    if len(set(algos)) != len(algos):
        raise ValueError(f"algo names an algorithm twice. Received: algo={','.join(algos)}")
    specs = {name: registry.get(name) for name in algos}  # ValueError lists the known ones
    _check_range("gamma", gamma, 0.0, 1.0)
    alphas = _per_algorithm_alpha(alpha, algos)
    for a in alphas.values():
        _check_range("alpha", a, 0.0, np.inf, low_open=True)
    _check_range("epsilon", epsilon, 0.0, 1.0)
    _check_range("epsilon_end", epsilon_end, 0.0, 1.0)
    if epsilon_end is not None and epsilon is None:
        raise ValueError("epsilon_end needs a start value: set epsilon as well.")
    _check_range("lambda_", lambda_, 0.0, 1.0)
    _check_range("p_heads", p_heads, 0.0, 1.0)
    common.check_counts(
        episodes=episodes,
        runs=runs,
        last_episodes=last_episodes,
        smooth=smooth,
        log_every=log_every,
    )
    common.check_non_negative(eval_episodes=eval_episodes, decay_episodes=decay_episodes)
    env_kwargs = _env_kwargs(env, map_name, slippery, p_heads)
    probe = tabular.make_env(env, **env_kwargs)  # ValueError for unknown environments
    mdp = tabular.mdp_from_env(probe) if tabular.has_model(probe) else None
    kinds = {kind for _, kind in specs.values()}
    if "dp" in kinds and mdp is None:
        dp_algos = [n for n in algos if specs[n][1] == "dp"]
        raise ValueError(
            f"{','.join(dp_algos)} needs a model of the environment, and {env} has none "
            "(env.unwrapped.P); use a Monte Carlo or TD algorithm."
        )
    fixed_policy = None
    if kinds & {"prediction"} or "policy_evaluation" in algos:
        fixed_policy = tabular.named_policy(policy, probe)
    if exploring_starts and "mc_control" in algos:
        montecarlo.exploring_starts_for(probe)  # ValueError where the env cannot start anywhere
    true_v = None
    if "prediction" in kinds and mdp is not None:
        try:
            true_v = dp.evaluate_linear(mdp, fixed_policy, gamma)
        except ValueError:  # the policy may never end (gamma = 1): then no RMS error
            true_v = None
    model_dir = model_dir or common.default_model_dir("train_rl", env)
    hparams.update(model_dir=model_dir, algo=algos)

    # --- train (nothing is written until every algorithm has finished) ----
    if epsilon_end is not None:  # a schedule episode -> epsilon (mp.rl.policies)
        from mp.rl import policies

        epsilon = policies.linear_decay(epsilon, epsilon_end, decay_episodes or episodes)
    options = {
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
        "true_v": true_v,
    }
    results = {}  # name -> list of Result, one per run
    seconds = {}
    for name in algos:
        fn, kind = specs[name]
        kwargs = _algorithm_kwargs(fn, kind, options | {"alpha": alphas[name]})
        algo_clock = common.Clock()
        if kind == "dp":
            results[name] = [fn(probe, seed=seed, **kwargs)]
        else:
            bar = _Progress(name, episodes * runs, log_every, progress)
            results[name] = [
                fn(tabular.make_env(env, **env_kwargs), seed=seed + r, callback=bar, **kwargs)
                for r in range(runs)
            ]
        seconds[name] = algo_clock.seconds()

    # --- metrics -----------------------------------------------------------
    per_algo = {}
    for name in algos:
        kind = specs[name][1]
        first = results[name][0]
        m = {"kind": kind, "wall_seconds": seconds[name]}
        if kind == "dp":
            m["sweeps"] = int(first.sweeps)
            m["episodes"] = 0
            m["global_step"] = int(first.sweeps)
        else:
            returns = np.stack([r.episode_returns for r in results[name]])  # [runs, episodes]
            m["episodes"] = episodes
            m["runs"] = runs
            m["global_step"] = episodes * runs
            m["mean_return"] = float(returns[:, -last_episodes:].mean())
            if first.rms_errors is not None:
                rms = np.stack([r.rms_errors for r in results[name]])
                m["final_rms_error"] = float(rms[:, -1].mean())
                m["rms_error_last_episodes"] = float(rms[:, -last_episodes:].mean())
        v = _state_values(first)
        if mdp is not None and v is not None:
            m["v_start"] = float(mdp.start @ v)
        evaluable = kind != "prediction" and name != "policy_evaluation"
        if evaluable and eval_episodes and first.policy is not None:
            out = rl_eval.evaluate_policy(
                tabular.make_env(env, **env_kwargs), first.policy, episodes=eval_episodes, seed=seed
            )
            m["eval_mean_return"] = out["mean_return"]
            m["eval_episodes"] = eval_episodes
            if out["success_rate"] is not None:
                m["success_rate"] = out["success_rate"]
        per_algo[name] = m

    # --- artifacts, metrics.json last ---------------------------------------
    common.start_run(model_dir, hparams)
    _write_values_npz(os.path.join(model_dir, "values.npz"), results)
    terminal = mdp.terminal if mdp is not None else None
    shown = {}
    for name in algos:
        first = results[name][0]
        policy_shown = first.policy
        if specs[name][1] == "prediction" and not _deterministic(first.policy):
            policy_shown = None  # arrows of a random policy say nothing
        shown[name] = (_state_values(first), policy_shown)
    common.save_figure(
        rl_eval.values_figure(probe, shown, terminal), os.path.join(model_dir, "values.png")
    )
    text = []
    for name in algos:
        text.append(f"== {name} on {env}")
        text.append(rl_eval.render_text(probe, *shown[name], terminal))
    common.write_text(os.path.join(model_dir, "policy.txt"), "\n".join(text))
    sampling = [n for n in algos if specs[n][1] != "dp"]
    if sampling:
        figure = _curves_figure(results, sampling, smooth, env, runs)
        common.save_figure(figure, os.path.join(model_dir, "learning_curves.png"))
        _write_summaries(os.path.join(model_dir, "train"), results, sampling)
    metrics = {
        "app": "train_rl",
        "env": env,
        "env_kwargs": env_kwargs,
        "algo": algos,
        "gamma": gamma,
        "seed": seed,
        "global_step": int(sum(m["global_step"] for m in per_algo.values())),
        "results": per_algo,
    }
    dp_algos = [n for n in algos if specs[n][1] == "dp" and n != "policy_evaluation"]
    if len(dp_algos) > 1:  # do policy and value iteration find the same policy and values?
        live = ~mdp.terminal
        actions = [np.argmax(results[n][0].policy[live], axis=1) for n in dp_algos]
        values = [results[n][0].v for n in dp_algos]
        metrics["dp_policies_agree"] = all(np.array_equal(actions[0], a) for a in actions)
        metrics["dp_max_value_difference"] = float(max(np.abs(values[0] - v).max() for v in values))
    if len(algos) == 1:
        metrics.update({k: v for k, v in per_algo[algos[0]].items() if k != "global_step"})
    metrics["wall_seconds"] = clock.seconds()
    common.write_json(os.path.join(model_dir, "metrics.json"), metrics)
    if progress:
        for name, m in per_algo.items():
            shown_keys = ("mean_return", "success_rate", "v_start", "sweeps", "final_rms_error")
            parts = [f"{k} {m[k]:.4g}" for k in shown_keys if k in m]
            print(f"{name}: {', '.join(parts)}", flush=True)
        print(f"{metrics['wall_seconds']:.1f} s; artifacts in {model_dir}/", flush=True)
    return metrics


def _state_values(result):
    if result.v is not None:
        return result.v
    if result.q is not None:
        policy = result.policy if result.policy is not None else None
        if policy is not None:
            return np.sum(policy * result.q, axis=1)  # v_pi(s) = sum_a pi(a|s) q(s, a)
        return result.q.max(axis=1)
    return None


def _deterministic(policy):
    return policy is not None and np.all(np.isclose(policy.max(axis=1), 1.0))


def _write_values_npz(path, results):
    arrays = {}
    for name, runs in results.items():
        for field in ("v", "q", "policy"):
            value = getattr(runs[0], field)
            if value is not None:
                arrays[f"{name}/{field}"] = value

    def write(tmp):
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)

    common._atomic_write(path, write)


def _curves_figure(results, names, smooth, env, runs):
    """Sum of rewards per episode (algorithms without true values) and RMS error (with them)."""
    from mp.plotting import pyplot
    from mp.rl.evaluation import smooth as moving_average

    plt = pyplot()
    with_rms = [n for n in names if results[n][0].rms_errors is not None]
    with_returns = [n for n in names if n not in with_rms]
    panels = [p for p, members in (("returns", with_returns), ("rms", with_rms)) if members]
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.2), squeeze=False)
    runs_text = f"mean over {runs} run{'s' if runs > 1 else ''}"
    for ax, panel in zip(axes[0], panels):
        lows, highs = [], []
        for name in with_returns if panel == "returns" else with_rms:
            field = "episode_returns" if panel == "returns" else "rms_errors"
            curve = np.stack([getattr(r, field) for r in results[name]]).mean(axis=0)
            if panel == "returns":
                curve = moving_average(curve, smooth)
                lows.append(curve[curve.size // 10 :].min())  # ignore the first 10%
                highs.append(curve.max())
            ax.plot(np.arange(1, curve.size + 1), curve, label=name)
        ax.set_xlabel("episode")
        if panel == "returns":
            ax.set_ylabel(f"sum of rewards per episode (moving average of {smooth})")
            ax.set_title(f"{env}: {runs_text}")
            low, high = min(lows), max(highs)
            margin = 0.1 * (high - low) + 1e-6
            ax.set_ylim(low - margin, high + margin)  # the first episodes would flatten the rest
        else:
            ax.set_ylabel("RMS error of v over the non-terminal states")
            ax.set_title(f"{env}: error against the true values, {runs_text}")
        ax.legend()
    fig.tight_layout()
    plt.close(fig)
    return fig


def _write_summaries(directory, results, names):
    """`charts/episode_return` (and `charts/rms_error`) by episode, averaged over the runs.

    Long runs keep at most MAX_SUMMARY_POINTS points, each the mean over its stride of episodes.
    """
    import tensorflow as tf

    for name in names:
        returns = np.stack([r.episode_returns for r in results[name]]).mean(axis=0)
        curves = {"charts/episode_return": returns}
        if results[name][0].rms_errors is not None:
            curves["charts/rms_error"] = np.stack([r.rms_errors for r in results[name]]).mean(0)
        stride = max(1, -(-returns.size // MAX_SUMMARY_POINTS))
        writer = tf.summary.create_file_writer(os.path.join(directory, name))
        with writer.as_default():
            for start in range(0, returns.size, stride):
                episode = min(start + stride, returns.size)
                for tag, values in curves.items():
                    tf.summary.scalar(tag, float(values[start:episode].mean()), step=episode)
        writer.close()


def flag_values():
    """The keyword arguments of `run` as the parsed flags give them."""
    return {name: FLAGS[name].value for name in RL_FLAGS + SHARED_FLAGS}


def main(argv):
    del argv
    run(**flag_values())


if __name__ == "__main__":
    common.cli(main)
