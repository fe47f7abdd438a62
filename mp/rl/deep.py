"""Deep RL runs from a notebook or an app: algorithms by name, tuned settings, metrics, curves.

    ALGORITHMS              "reinforce", "a2c", "ppo", "trpo" -> their Task classes
    ENVIRONMENTS            the classic-control (and Box2D) environments the presets cover
    settings(algo, env)     the hyperparameters used for an environment: rl-baselines3-zoo's
                            where the zoo tunes that pair (without gSDE, which the package
                            does not implement), else the algorithm's defaults
    make_task(...)          a Task for an environment-step budget
    threshold_crossing      first env step / wall second where the running mean of the last
                            20 training returns reaches a target
    run_metrics             the metrics.json keys of a finished run
    learning_curves_figure  episodic return against environment steps

Course: ch6.2 Deep Reinforcement Learning.
"""

import numpy as np

from mp.rl import a2c, ppo, reinforce, rollout, trpo

ALGORITHMS = {
    "reinforce": reinforce.ReinforceTask,
    "a2c": a2c.A2CTask,
    "ppo": ppo.PPOTask,
    "trpo": trpo.TRPOTask,
}
ENVIRONMENTS = (
    "CartPole-v1", "Acrobot-v1", "Pendulum-v1", "MountainCarContinuous-v0", "LunarLander-v3",
)
WINDOW = 20  # training episodes in the running mean
# "solved" thresholds of the running mean (gymnasium's reward_threshold where it has one)
TARGETS = {"CartPole-v1": 475.0, "Acrobot-v1": -100.0, "Pendulum-v1": -200.0,
           "LunarLander-v3": 200.0, "MountainCarContinuous-v0": 90.0}

# rl-baselines3-zoo (hyperparams/{ppo,a2c,trpo}.yml), in this package's argument names
_ZOO = {
    ("ppo", "CartPole-v1"): dict(
        num_envs=8, num_steps=32, minibatch_size=256, gae_lambda=0.8, gamma=0.98, epochs=20,
        ent_coef=0.0, learning_rate=1e-3, anneal_lr=True, clip_range=0.2, anneal_clip=True),
    ("ppo", "Acrobot-v1"): dict(
        normalize_obs=True, normalize_reward=True, num_envs=16, num_steps=256, gae_lambda=0.94,
        gamma=0.99, epochs=4, ent_coef=0.0, minibatch_size=64, learning_rate=3e-4),
    # zoo: gSDE (use_sde) instead of the plain Gaussian; here reward scaling and a learning
    # rate annealed to zero stand in for it (at a constant 1e-3 the running mean reached -200
    # after 43k steps, then fell back to -289 by 100k)
    ("ppo", "Pendulum-v1"): dict(
        num_envs=4, num_steps=1024, gae_lambda=0.95, gamma=0.9, epochs=10, ent_coef=0.0,
        learning_rate=1e-3, anneal_lr=True, clip_range=0.2, minibatch_size=64,
        normalize_reward=True),
    ("ppo", "MountainCarContinuous-v0"): dict(
        normalize_obs=True, normalize_reward=True, num_envs=1, num_steps=8, minibatch_size=8,
        gamma=0.9999, learning_rate=7.77e-5, ent_coef=0.00429, clip_range=0.1, epochs=10,
        gae_lambda=0.9, max_grad_norm=5.0, vf_coef=0.19, log_std_init=-3.29),
    ("ppo", "LunarLander-v3"): dict(
        num_envs=16, num_steps=1024, minibatch_size=64, gae_lambda=0.98, gamma=0.999,
        epochs=4, ent_coef=0.01),
    ("a2c", "CartPole-v1"): dict(num_envs=8, ent_coef=0.0),
    ("a2c", "Acrobot-v1"): dict(normalize_obs=True, normalize_reward=True, num_envs=16),
    ("a2c", "LunarLander-v3"): dict(num_envs=8, gamma=0.995, num_steps=5, learning_rate=8.3e-4,
                                    anneal_lr=True, ent_coef=1e-5),
    ("trpo", "CartPole-v1"): dict(
        num_envs=2, num_steps=512, minibatch_size=512, cg_damping=1e-3, gae_lambda=0.98,
        gamma=0.99, learning_rate=1e-3, n_critic_updates=20),
    ("trpo", "Pendulum-v1"): dict(num_envs=2, num_steps=1024, gamma=0.9, n_critic_updates=15),
    ("trpo", "Acrobot-v1"): dict(normalize_obs=True, normalize_reward=True, num_envs=2,
                                 num_steps=1024),
    ("trpo", "LunarLander-v3"): dict(num_envs=2, num_steps=512, cg_damping=0.01,
                                     gae_lambda=0.98, gamma=0.999, n_critic_updates=15),
    # no zoo entry: measured here (value baseline reaches 475 in ~40k steps)
    ("reinforce", "CartPole-v1"): dict(num_envs=2, num_steps=500, learning_rate=5e-3,
                                       value_learning_rate=5e-3, value_epochs=10, gamma=0.99),
}
_DEFAULTS = {
    "reinforce": dict(num_envs=2, num_steps=1000),
    "a2c": dict(num_envs=8, num_steps=5),
    "ppo": dict(num_envs=8, num_steps=256, minibatch_size=64),
    "trpo": dict(num_envs=2, num_steps=1024, minibatch_size=128),
}


def settings(algo, env_id):
    """The keyword arguments of `ALGORITHMS[algo]` for `env_id` (a copy)."""
    check_algorithm(algo)
    return dict(_ZOO.get((algo, env_id), _DEFAULTS[algo]))


def check_algorithm(algo):
    if algo not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {algo!r}; choose one of {', '.join(ALGORITHMS)}")


def make_task(algo, env_id, env_steps, *, seed=0, summary_dir=None, **overrides):
    """A Task of `algo` on `env_id` for `env_steps` environment steps.

    `overrides` replace the preset's arguments (`settings`). The number of updates is
    `env_steps // (num_envs * num_steps)`.

    Raises:
      ValueError: an unknown algorithm or environment, a budget below one rollout, an
        argument out of range.
    """
    check_algorithm(algo)
    if not isinstance(env_steps, (int, np.integer)) or env_steps <= 0:
        raise ValueError(f"env_steps must be a positive integer. Received: env_steps={env_steps}")
    options = settings(algo, env_id) | {k: v for k, v in overrides.items() if v is not None}
    options.setdefault("num_envs", 8)
    cls = ALGORITHMS[algo]
    num_steps = options.get("num_steps", _num_steps_default(cls))
    for key, value in (("num_envs", options["num_envs"]), ("num_steps", num_steps)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{key} must be a positive integer. Received: {key}={value}")
    per_update = options["num_envs"] * num_steps
    updates = env_steps // per_update
    if updates < 1:
        raise ValueError(
            f"env_steps={env_steps} is less than one rollout of {options['num_envs']} envs x "
            f"{num_steps} steps = {per_update}"
        )
    return cls(env_id, total_updates=updates, seed=seed, summary_dir=summary_dir, **options)


def _num_steps_default(cls):
    return {a2c.A2CTask: 5, reinforce.ReinforceTask: 500}.get(cls, 32)


def threshold_crossing(episodes, seconds, target, window=WINDOW):
    """`(env_steps, seconds)` at which the mean of the last `window` training returns first
    reached `target`, or `(None, None)`.

    Args:
      episodes: [E, 3] (env steps at the end, return, length), as `Collector.episodes`.
      seconds: [E] wall seconds at the end of each episode.
    """
    returns = np.asarray(episodes)[:, 1] if len(episodes) else np.zeros(0)
    if target is None or len(returns) < window:
        return None, None
    running = np.convolve(returns, np.ones(window) / window, mode="valid")
    hits = np.flatnonzero(running >= target)
    if not len(hits):
        return None, None
    i = hits[0] + window - 1
    return int(episodes[i][0]), float(seconds[i])


def evaluate(task, episodes, seed):
    """Mean and standard deviation of the deterministic policy's return over `episodes`
    seeded episodes (`seed + 10000, ...`, apart from the training seeds)."""
    returns = rollout.evaluate(task.act_deterministic, task.collector, episodes, seed=seed + 10_000)
    return float(np.mean(returns)), float(np.std(returns))


def run_metrics(task, *, target_return=None, eval_episodes=10, seed=0):
    """The metrics of a finished run (see `apps/train_rl.py`)."""
    c = task.collector
    episodes, seconds = c.episodes, c.episode_seconds
    steps, wall = threshold_crossing(episodes, seconds, target_return)
    metrics = {
        "env_steps": int(c.env_steps.numpy()),
        "episodes": int(len(episodes)),
        "mean_return": float(np.mean(episodes[-WINDOW:, 1])) if len(episodes) else None,
        "steps_to_threshold": steps,
        "seconds_to_threshold": wall,
        "target_return": target_return,
        "env_steps_per_sec": float(c.env_steps.numpy()) / max(c.seconds(), 1e-9),
    }
    if eval_episodes:
        mean, std = evaluate(task, eval_episodes, seed)
        metrics |= {"eval_mean_return": mean, "eval_std_return": std,
                    "eval_episodes": eval_episodes}
    return metrics


def learning_curves_figure(curves, *, title=None, target=None, window=WINDOW):
    """Episodic return against environment steps, with the running mean of `window` episodes.

    Args:
      curves: `{label: episodes [E, 3]}`.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4))
    axes = figure.add_subplot()
    for label, episodes in curves.items():
        episodes = np.asarray(episodes)
        if not len(episodes):
            continue
        line, = axes.plot(episodes[:, 0], episodes[:, 1], alpha=0.25, linewidth=0.8)
        if len(episodes) >= window:
            running = np.convolve(episodes[:, 1], np.ones(window) / window, mode="valid")
            axes.plot(episodes[window - 1:, 0], running, color=line.get_color(),
                      label=f"{label} (mean of {window})")
    if target is not None:
        axes.axhline(target, color="grey", linestyle="--", linewidth=0.8,
                     label=f"target {target:g}")
    axes.set_xlabel("environment steps")
    axes.set_ylabel("episodic return")
    if title:
        axes.set_title(title)
    axes.legend(loc="best", fontsize=8)
    figure.tight_layout()
    return figure
