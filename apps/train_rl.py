"""Reinforcement learning: `python -m apps.train_rl --flagfile=flags/rl_frozenlake_dp.cfg`.

    environment (mp.rl.tabular) -> algorithm(s) (mp.rl.registry: dp, montecarlo, td)
    -> learning_curves.png, values.png, policy.txt, values.npz, train/ -> metrics.json

`--algo` names one algorithm or a comma list of them, trained one after the other on the same
environment and drawn in the same figures (e.g. `--algo=sarsa,qlearning` reproduces Sutton &
Barto's example 6.6). Sampling algorithms run `--runs` times with seeds `seed, seed + 1, ...`;
their learning curves are averaged over the runs. Dynamic programming is deterministic and
runs once. `mp.rl.comparison.Comparison` does the set-up, the runs and the metrics (documented
there); this app adds the flags and the files.

The tabular algorithms are NumPy loops over episodes, with no Trainer: of the shared flags
`--model_dir`, `--seed`, `--log_every` (episodes between progress lines) and `--deterministic`
(they are deterministic for a seed anyway) mean something here; the others are refused.

Deep RL (ch6.2): `--algo=reinforce|a2c|ppo|trpo|dqn|double_dqn|ddpg|td3 --env=CartPole-v1
--env_steps=100000 [--num_envs --num_steps --gamma --baseline; off-policy: --train_frequency
--gradient_steps --buffer_size --learning_starts]` trains one algorithm through
the engine (`mp.rl.deep`: rl-baselines3-zoo settings per environment, which the flags
override), `--log_every` updates between progress lines and checkpoints (losses per update in
train/, returns per env step in rollouts/); SIGTERM, then the same command resumes. Metrics:
`env_steps`, `mean_return` (last 20 episodes), `eval_mean_return`, `eval_std_return`
(deterministic policy), `steps_to_threshold`, `seconds_to_threshold` (running mean of 20
reaching `--target_return`, null if never), `wall_seconds`, `global_step` (updates).

Course: ch6.1 Bootcamp (6.1.1 DP, 6.1.2 Monte Carlo, 6.1.3 TD), ch6.2 Deep RL.
"""

import inspect
import os

from absl import flags

from apps import common, runner
from mp.rl.registry import OFF_POLICY_OPTIONS

_OWN_FLAGS = (
    (flags.DEFINE_list, "algo", ["value_iteration"], "Algorithm(s)."),
    (
        flags.DEFINE_string,
        "env",
        "FrozenLake-v1",
        "Environment: FrozenLake-v1, CliffWalking-v1, Taxi-v4 (alias Taxi-v3), Blackjack-v1, "
        "RandomWalk, Gambler; deep algorithms: CartPole-v1, Acrobot-v1, Pendulum-v1, "
        "MountainCarContinuous-v0, LunarLander-v3 (needs box2d).",
    ),
    (flags.DEFINE_string, "map_name", "4x4", "FrozenLake map: 4x4 or 8x8 (other envs: ignored)."),
    (flags.DEFINE_boolean, "slippery", True, "FrozenLake: slippery ice (other envs: ignored)."),
    (flags.DEFINE_float, "p_heads", 0.4, "Gambler: probability of winning a stake."),
    (flags.DEFINE_float, "gamma", None, "Discount in [0, 1]; unset: 1 (tabular), preset (deep)."),
    (
        flags.DEFINE_list,
        "alpha",
        [],
        "Constant step size > 0, one for all algorithms or one per algorithm of --algo; unset: "
        "each algorithm's default (sample averages for Monte Carlo).",
    ),
    (flags.DEFINE_float, "epsilon", None, "Exploration in [0, 1]; unset: the algorithm's default."),
    (
        flags.DEFINE_float,
        "epsilon_end",
        None,
        "If set, epsilon decays linearly from --epsilon to this value over --decay_episodes.",
    ),
    (flags.DEFINE_integer, "decay_episodes", 0, "Episodes of the epsilon decay; 0: --episodes."),
    (flags.DEFINE_float, "v_init", 0.0, "Prediction: initial value of the non-terminal states."),
    (flags.DEFINE_float, "lambda_", 0.9, "td_lambda: trace decay in [0, 1]."),
    (
        flags.DEFINE_enum,
        "traces",
        "accumulating",
        ["accumulating", "replacing"],
        "td_lambda: eligibility traces.",
    ),
    (flags.DEFINE_boolean, "first_visit", True, "Monte Carlo: first-visit (else every-visit)."),
    (flags.DEFINE_boolean, "exploring_starts", False, "mc_control: exploring starts."),
    (
        flags.DEFINE_enum,
        "evaluation",
        "linear",
        ["linear", "iterative"],
        "DP policy evaluation inside policy_iteration / for policy_evaluation: linear solve or "
        "sweeps.",
    ),
    (
        flags.DEFINE_string,
        "policy",
        "uniform",
        "Prediction and policy_evaluation: the evaluated policy (uniform, blackjack_stick20).",
    ),
    (flags.DEFINE_integer, "episodes", 500, "Training episodes per run."),
    (flags.DEFINE_integer, "runs", 1, "Independent runs (seeds seed..)."),
    (flags.DEFINE_integer, "eval_episodes", None, "Seeded episodes of the greedy policy after "
     "training; 0 skips the evaluation. Unset: 1000 (tabular), 10 (deep)."),
    (flags.DEFINE_integer, "last_episodes", 100, "mean_return averages the last these episodes."),
    (flags.DEFINE_integer, "smooth", 10, "Moving-average window of curves."),
    (flags.DEFINE_integer, "env_steps", 100_000, "Deep algorithms: environment steps."),
    (flags.DEFINE_integer, "num_envs", None, "Deep: environments stepped together (preset)."),
    (flags.DEFINE_integer, "num_steps", None, "Deep: steps per environment and update (preset)."),
    (flags.DEFINE_enum, "baseline", "value", ["value", "moving_average", "none"], "reinforce."),
    (flags.DEFINE_float, "target_return", None, "Deep: threshold of steps_to_threshold."),
) + tuple((flags.DEFINE_integer, name, None, text) for name, text in OFF_POLICY_OPTIONS)
for _define, _name, *_args in _OWN_FLAGS:
    runner.define_once(_define, _name, *_args)
HONOURED = ("model_dir", "seed", "log_every", "deterministic")  # no data, optimizer flags
APP = runner.App(
    "train_rl",
    own=tuple(row[1] for row in _OWN_FLAGS),
    refuses=tuple(n for n in runner.RunConfig.names() if n not in HONOURED),
)
NOT_COMPARISON = ("algo", "env", "map_name", "slippery", "p_heads", "smooth", "env_steps",
                  "num_envs", "num_steps", "baseline", "target_return",
                  *(name for name, _ in OFF_POLICY_OPTIONS))  # the app's own
DEEP_OWN = ("algo", "env", "gamma", "eval_episodes") + NOT_COMPARISON[6:]


def _env_kwargs(env, map_name, slippery, p_heads):
    if env == "FrozenLake-v1":
        return {"map_name": map_name, "is_slippery": slippery}
    if env == "Gambler":
        return {"p_heads": p_heads}
    return {}


def run(
    model_dir=None,
    *,
    algo=("value_iteration",),
    env="FrozenLake-v1",
    map_name="4x4",
    slippery=True,
    p_heads=0.4,
    gamma=None,
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
    eval_episodes=None,
    last_episodes=100,
    smooth=10,
    env_steps=100_000,
    num_envs=None,
    num_steps=None,
    baseline="value",
    target_return=None,
    train_frequency=None, gradient_steps=None, buffer_size=None, learning_starts=None,  # off-policy
    progress=True,
    **shared,
):
    """Trains tabular algorithm(s) on one environment; returns the metrics of metrics.json.

    The own arguments are `mp.rl.comparison.Comparison`'s (`env_kwargs` from `map_name` and
    `slippery` for FrozenLake, `p_heads` for the Gambler); `smooth` is the moving-average
    window of the learning curves; `shared` the shared flags that apply (`model_dir` defaults
    to `runs/train_rl-<env>`, `seed` is the first seed, `log_every` counts episodes).

    Raises:
      ValueError: for bad input, before anything is written.
    """
    from mp.rl import comparison, deep, evaluation as rl_eval

    algos = [algo] if isinstance(algo, str) else list(algo)
    if any(a in deep.ALGORITHMS for a in algos):
        own = {name: value for name, value in locals().items() if name in APP.own}
        return _run_deep(algos, own, model_dir, shared, progress)
    gamma = 1.0 if gamma is None else gamma
    eval_episodes = 1000 if eval_episodes is None else eval_episodes
    own = {name: value for name, value in locals().items() if name in APP.own}
    common.check_counts(smooth=smooth)
    model_dir = model_dir or common.default_model_dir(APP.name, env)
    config = APP.config(shared | {"model_dir": model_dir})
    assert config.deterministic in (True, False)  # NumPy algorithms: deterministic for a seed
    setup = comparison.Comparison(
        algo,
        env,
        _env_kwargs(env, map_name, slippery, p_heads),
        **{k: v for k, v in own.items() if k not in NOT_COMPARISON},
        seed=config.seed,
    )
    run = runner.Experiment(APP, config, own | {"algo": setup.algos}, progress=progress)
    log_every = config.log_every  # episodes between progress lines
    results, seconds = setup.train(log_every=log_every if progress else None)
    metrics = {"app": APP.name} | setup.metrics(results, seconds)

    # --- artifacts, metrics.json last (Experiment.finish) ----------------------
    run.start()
    rl_eval.save_values(run.path("values.npz"), results)
    shown = setup.shown(results)
    run.save_figure(rl_eval.values_figure(setup.env, shown, setup.terminal), "values.png")
    text = rl_eval.policy_text(setup.env, shown, setup.terminal, label=env)
    common.write_text(run.path("policy.txt"), text)
    if setup.sampling:
        figure = rl_eval.learning_curves_figure(results, setup.sampling, smooth, title=env)
        run.save_figure(figure, "learning_curves.png")
        rl_eval.write_summaries(run.path("train"), results, setup.sampling)
    shown_keys = ("mean_return", "success_rate", "v_start", "sweeps", "final_rms_error")
    summary = "; ".join(
        f"{name}: " + ", ".join(f"{k} {m[k]:.4g}" for k in shown_keys if k in m)
        for name, m in metrics["results"].items()
    )
    return run.finish(metrics, summary)


def _run_deep(algos, own, model_dir, shared, progress):
    """One deep RL algorithm through the engine (see the module docstring)."""
    from mp.rl import deep

    if len(algos) != 1:
        raise ValueError(f"train one deep algorithm at a time. Received: algo={','.join(algos)}")
    defaults = {k: p.default for k, p in inspect.signature(run).parameters.items()}
    tabular = [f"--{k}={v}" for k, v in own.items()
               if k not in DEEP_OWN and v != defaults[k] and (v or defaults[k] is not None)]
    if tabular:
        raise ValueError(f"--algo={algos[0]} cannot honour {', '.join(tabular)}; leave it unset")
    own["eval_episodes"], (algo,), env = own["eval_episodes"] or 10, algos, own["env"]
    deep.check_algorithm(algo, env)  # before any file is written
    common.check_counts(env_steps=own["env_steps"], eval_episodes=own["eval_episodes"] or 1)
    model_dir = model_dir or common.default_model_dir(APP.name, env)
    config = APP.config(shared | {"model_dir": model_dir})
    target = own["target_return"] if own["target_return"] is not None else deep.TARGETS.get(env)
    task = deep.make_task(algo, env, own["env_steps"], seed=config.seed,
                          summary_dir=os.path.join(config.model_dir, "rollouts"),
                          **deep.flag_options(algo, own))
    experiment = runner.Experiment(APP, config, own | {"algo": [algo]}, progress=progress)
    trainer = experiment.trainer(task, task.total_updates, checkpoint_every=config.log_every)
    result = trainer.fit(task.data)
    metrics = experiment.metrics(result, task.total_updates) | {"algo": algo, "env": env}
    metrics |= deep.run_metrics(task, target_return=target, eval_episodes=own["eval_episodes"],
                                seed=config.seed)
    experiment.export(task)
    figure = deep.learning_curves_figure({algo: task.collector.episodes}, title=env, target=target)
    experiment.save_figure(figure, "learning_curves.png")
    return experiment.finish(metrics, deep.summary_line(metrics))


flag_values = APP.flag_values

if __name__ == "__main__":
    APP.cli(run)
