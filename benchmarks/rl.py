"""Deep RL side by side with Stable-Baselines3 / sb3-contrib (ch6.2).

    .venv-peers/bin/python -m benchmarks.rl [--algos=ppo,a2c,trpo] [--envs=CartPole-v1]
        [--seeds=3] [--first_seed=0] [--env_steps=0] [--eval_episodes=10]
        [--out=runs/bench_rl.jsonl]

For every seed, algorithm and environment it trains this package's algorithm (`mp.rl.deep`,
through the engine's Trainer) and its SB3 counterpart with rl-baselines3-zoo's
hyperparameters (copied below: there is no network access to the zoo here), each in a
subprocess of its own, the two in alternating order from seed to seed (interleaved, so a
slow phase of the machine hurts both). Measured per run: the env step and the wall second at
which the running mean of the last 20 training episodes first reached the target (475 on
CartPole-v1), the deterministic evaluation after the budget (`--eval_episodes` seeded
episodes, the same seeds for both), the last 20 training returns and env steps per second.
It prints a markdown table (median [min, max] over seeds) and appends every run to `--out`.

CPU seconds (`time.process_time`, training only) are recorded too: on a shared core they
measure the work where wall seconds measure the neighbours. Run it pinned to one core for
fair wall times, e.g. `taskset -c 1 ...`; PyTorch is limited to
one thread and TensorFlow sees only that core.

Off-policy (`--algos=dqn,double_dqn --envs=CartPole-v1`, `--algos=td3,ddpg
--envs=Pendulum-v1`): SB3's DQN, TD3 and DDPG with the zoo's dqn/td3/ddpg.yml; SB3 has no
Double DQN, so `double_dqn` runs this package's alone (compare it with `dqn` on the same
seeds). This package's Pendulum preset updates once per 200-step episode with 200 gradient
steps (the zoo's earlier setting, `mp.rl.deep`); SB3 runs today's zoo, one gradient step
per env step: the same number of gradient steps per env step.
mp's CartPole DQN uses the package's own preset (`mp.rl.deep._DQN_CARTPOLE`: epsilon to
0.01, Adam decayed to zero over the first half of the budget, meant for `--env_steps=100000`);
SB3 keeps the zoo's (give both the same `--env_steps`).

Differences that remain: the zoo's Pendulum/MountainCarContinuous settings use gSDE
(`use_sde`), which this package does not implement (its PPO uses a plain Gaussian, with
reward scaling instead); SB3 normalises advantages per minibatch as this package does.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

TARGETS = {"CartPole-v1": 475.0, "Acrobot-v1": -100.0, "Pendulum-v1": -200.0}
WINDOW = 20


def _lin(value):
    return ("lin", value)


_DQN_CARTPOLE = dict(
    n_envs=1, n_timesteps=50_000, learning_rate=2.3e-3, batch_size=64, buffer_size=100_000,
    learning_starts=1000, gamma=0.99, target_update_interval=10, train_freq=256,
    gradient_steps=128, exploration_fraction=0.16, exploration_final_eps=0.04,
    policy_kwargs=dict(net_arch=[256, 256]))
_TD3_PENDULUM = dict(
    n_envs=1, n_timesteps=20_000, gamma=0.98, buffer_size=200_000, learning_starts=10_000,
    noise_std=0.1, gradient_steps=1, train_freq=1, learning_rate=1e-3,
    policy_kwargs=dict(net_arch=[400, 300]))

# rl-baselines3-zoo hyperparams/{ppo,a2c,trpo,dqn,td3,ddpg}.yml (SB3 argument names; "lin" =
# linear decay; noise_std: Gaussian action noise of that sigma)
ZOO = {
    ("ppo", "CartPole-v1"): dict(
        n_envs=8, n_timesteps=100_000, n_steps=32, batch_size=256, gae_lambda=0.8, gamma=0.98,
        n_epochs=20, ent_coef=0.0, learning_rate=_lin(1e-3), clip_range=_lin(0.2)),
    ("ppo", "Pendulum-v1"): dict(
        n_envs=4, n_timesteps=100_000, n_steps=1024, gae_lambda=0.95, gamma=0.9, n_epochs=10,
        ent_coef=0.0, learning_rate=1e-3, clip_range=0.2, use_sde=True, sde_sample_freq=4),
    ("ppo", "Acrobot-v1"): dict(
        normalize=True, n_envs=16, n_timesteps=1_000_000, n_steps=256, gae_lambda=0.94,
        gamma=0.99, n_epochs=4, ent_coef=0.0),
    ("a2c", "CartPole-v1"): dict(n_envs=8, n_timesteps=500_000, ent_coef=0.0),
    ("a2c", "Acrobot-v1"): dict(normalize=True, n_envs=16, n_timesteps=500_000, ent_coef=0.0),
    ("trpo", "CartPole-v1"): dict(
        n_envs=2, n_timesteps=100_000, n_steps=512, batch_size=512, cg_damping=1e-3,
        gae_lambda=0.98, gamma=0.99, learning_rate=1e-3, n_critic_updates=20),
    ("trpo", "Pendulum-v1"): dict(
        n_envs=2, n_timesteps=100_000, n_steps=1024, gamma=0.9, n_critic_updates=15,
        use_sde=True, sde_sample_freq=4),
    ("trpo", "Acrobot-v1"): dict(normalize=True, n_envs=2, n_timesteps=100_000, n_steps=1024),
    ("dqn", "CartPole-v1"): _DQN_CARTPOLE,
    ("double_dqn", "CartPole-v1"): _DQN_CARTPOLE,  # this package only (SB3 has no Double DQN)
    ("dqn", "Acrobot-v1"): dict(
        n_envs=1, n_timesteps=100_000, learning_rate=6.3e-4, batch_size=128,
        buffer_size=50_000, learning_starts=0, gamma=0.99, target_update_interval=250,
        train_freq=4, gradient_steps=-1, exploration_fraction=0.12, exploration_final_eps=0.1,
        policy_kwargs=dict(net_arch=[256, 256])),
    ("td3", "Pendulum-v1"): _TD3_PENDULUM,
    ("ddpg", "Pendulum-v1"): _TD3_PENDULUM,
}
MP_ONLY = ("double_dqn",)


def _episode_metrics(episodes, seconds, target):
    from mp.rl.deep import threshold_crossing

    steps, wall = threshold_crossing(np.asarray(episodes).reshape(-1, 3), seconds, target)
    returns = np.asarray(episodes).reshape(-1, 3)[:, 1]
    return {
        "steps_to_threshold": steps,
        "seconds_to_threshold": wall,
        "mean_return": float(np.mean(returns[-WINDOW:])) if len(returns) else None,
        "episodes": int(len(returns)),
    }


def run_mp(algo, env_id, seed, env_steps, eval_episodes):
    from mp.engine import Trainer, seed_everything
    from mp.rl import deep

    seed_everything(seed)
    task = deep.make_task(algo, env_id, env_steps, seed=seed)
    cpu = time.process_time()
    with tempfile.TemporaryDirectory() as model_dir:
        trainer = Trainer(task, model_dir, train_steps=task.total_updates,
                          log_every=task.total_updates, checkpoint_every=10**9, progress=False)
        trainer.fit(task.data)
    cpu = time.process_time() - cpu
    c = task.collector
    mean, std = deep.evaluate(task, eval_episodes, seed)
    return _episode_metrics(c.episodes, c.episode_seconds, TARGETS.get(env_id)) | {
        "env_steps": int(c.env_steps.numpy()),
        "wall_seconds": c.seconds(),
        "cpu_seconds": cpu,
        "eval_mean_return": mean,
        "eval_std_return": std,
    }


def run_sb3(algo, env_id, seed, env_steps, eval_episodes):
    import gymnasium as gym
    import torch
    from stable_baselines3 import A2C, DDPG, DQN, PPO, TD3
    from stable_baselines3.common.noise import NormalActionNoise
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize
    from sb3_contrib import TRPO

    torch.set_num_threads(1)
    hp = dict(ZOO[(algo, env_id)])
    n_envs, normalize = hp.pop("n_envs"), hp.pop("normalize", False)
    hp.pop("n_timesteps")
    for key, value in list(hp.items()):
        if isinstance(value, tuple) and value[0] == "lin":
            hp[key] = (lambda v: lambda progress: progress * v)(value[1])
    env = make_vec_env(env_id, n_envs=n_envs, seed=seed)
    if normalize:
        env = VecNormalize(env, gamma=hp.get("gamma", 0.99))
    if "noise_std" in hp:
        dim = env.action_space.shape[0]
        hp["action_noise"] = NormalActionNoise(np.zeros(dim), hp.pop("noise_std") * np.ones(dim))
    cls = {"ppo": PPO, "a2c": A2C, "trpo": TRPO, "dqn": DQN, "td3": TD3, "ddpg": DDPG}[algo]
    model = cls("MlpPolicy", env, seed=seed, device="cpu", verbose=0, **hp)

    class Record(BaseCallback):
        def __init__(self):
            super().__init__()
            self.episodes, self.seconds = [], []

        def _on_training_start(self):
            self.start = time.perf_counter()

        def _on_step(self):
            for info in self.locals["infos"]:
                if "episode" in info:
                    episode = info["episode"]
                    self.episodes.append((self.num_timesteps, episode["r"], episode["l"]))
                    self.seconds.append(time.perf_counter() - self.start)
            return True

    record = Record()
    tic, cpu = time.perf_counter(), time.process_time()
    model.learn(total_timesteps=env_steps, callback=record)
    wall, cpu = time.perf_counter() - tic, time.process_time() - cpu
    returns = []
    single = gym.make(env_id)
    for episode in range(eval_episodes):
        obs, _ = single.reset(seed=seed + 10_000 + episode)
        total, done = 0.0, False
        while not done:
            o = env.normalize_obs(obs) if normalize else obs
            action, _ = model.predict(o, deterministic=True)
            obs, reward, term, trunc, _ = single.step(action)
            total += float(reward)
            done = term or trunc
        returns.append(total)
    return _episode_metrics(record.episodes, record.seconds, TARGETS.get(env_id)) | {
        "env_steps": int(model.num_timesteps),
        "wall_seconds": wall,
        "cpu_seconds": cpu,
        "eval_mean_return": float(np.mean(returns)),
        "eval_std_return": float(np.std(returns)),
    }


def _summary(values):
    values = [v for v in values if v is not None]
    if not values:
        return "never"
    return f"{statistics.median(values):.4g} [{min(values):.4g}, {max(values):.4g}]"


def table(rows):
    """A markdown table: median [min, max] over seeds per (env, algo, impl)."""
    lines = [
        "| env | algo | impl | seeds | env steps to target | seconds to target | reached | "
        "eval return | last-20 return | env steps/s | env steps/CPU s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    groups = {}
    for row in rows:
        groups.setdefault((row["env"], row["algo"], row["impl"]), []).append(row)
    for (env, algo, impl), runs in sorted(groups.items()):
        reached = sum(r["steps_to_threshold"] is not None for r in runs)
        rate = [r["env_steps"] / r["wall_seconds"] for r in runs]
        cpu_rate = [r["env_steps"] / r["cpu_seconds"] for r in runs if r.get("cpu_seconds")]
        lines.append(
            f"| {env} | {algo} | {impl} | {len(runs)} | "
            f"{_summary([r['steps_to_threshold'] for r in runs])} | "
            f"{_summary([r['seconds_to_threshold'] for r in runs])} | {reached}/{len(runs)} | "
            f"{_summary([r['eval_mean_return'] for r in runs])} | "
            f"{_summary([r['mean_return'] for r in runs])} | {_summary(rate)} | "
            f"{_summary(cpu_rate)} |"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--algos", default="ppo,a2c,trpo")
    parser.add_argument("--envs", default="CartPole-v1")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first_seed", type=int, default=0)
    parser.add_argument("--env_steps", type=int, default=0, help="0: the zoo's n_timesteps")
    parser.add_argument("--eval_episodes", type=int, default=10)
    parser.add_argument("--impls", default="mp,sb3")
    parser.add_argument("--out", default="runs/bench_rl.jsonl")
    parser.add_argument("--worker", nargs=4, metavar=("IMPL", "ALGO", "ENV", "SEED"))
    args = parser.parse_args(argv)

    if args.worker:
        impl, algo, env_id, seed = args.worker
        fn = run_mp if impl == "mp" else run_sb3
        steps = args.env_steps or ZOO[(algo, env_id)]["n_timesteps"]
        result = fn(algo, env_id, int(seed), steps, args.eval_episodes)
        print("RESULT " + json.dumps(result), flush=True)
        return

    rows = []
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    impls = args.impls.split(",")
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        for env_id in args.envs.split(","):
            for algo in args.algos.split(","):
                if (algo, env_id) not in ZOO:
                    print(f"skip {algo} on {env_id}: no zoo entry", file=sys.stderr)
                    continue
                order = impls if seed % 2 == 0 else impls[::-1]  # interleaved
                order = [i for i in order if i == "mp" or algo not in MP_ONLY]
                for impl in order:
                    command = [sys.executable, "-m", "benchmarks.rl", "--worker", impl, algo,
                               env_id, str(seed), "--env_steps", str(args.env_steps),
                               "--eval_episodes", str(args.eval_episodes)]
                    done = subprocess.run(command, capture_output=True, text=True)
                    lines = [l for l in done.stdout.splitlines() if l.startswith("RESULT ")]
                    if done.returncode or not lines:
                        print(f"{impl} {algo} {env_id} seed {seed} failed:\n{done.stderr[-2000:]}",
                              file=sys.stderr)
                        continue
                    row = {"impl": impl, "algo": algo, "env": env_id, "seed": seed}
                    row |= json.loads(lines[-1][len("RESULT "):])
                    rows.append(row)
                    with open(args.out, "a") as f:
                        f.write(json.dumps(row) + "\n")
                    print(f"{impl:4s} {algo:5s} {env_id} seed {seed}: to target "
                          f"{row['steps_to_threshold']} steps / {row['seconds_to_threshold']} s, "
                          f"eval {row['eval_mean_return']:.1f}, {row['wall_seconds']:.1f} s",
                          flush=True)
    print(table(rows))


if __name__ == "__main__":
    main()
