"""Experience for on-policy deep RL: vectorised environments, rollouts, running normalisers.

    make_vector_env     gymnasium.vector.SyncVectorEnv, autoreset mode SAME_STEP, seeded
    RunningMeanStd      running mean and variance (parallel algorithm of Chan et al.) in
                        tf.Variables, so that a checkpoint holds them
    Collector           `collect(act)` runs the current policy for `num_steps` steps in each
                        of `num_envs` environments and returns the [T, N] arrays the
                        algorithms learn from; records every finished episode's return and
                        length; optionally normalises observations and scales rewards
    evaluate            mean and standard deviation of the return of the deterministic policy

The autoreset mode is chosen explicitly: gymnasium >= 1.0 defaults to NEXT_STEP, in which
the step after an episode's end only resets that environment (its reward and action mean
nothing). SAME_STEP resets within the step that ended the episode: `step` returns the first
observation of the next episode and `infos["final_obs"]` the last one of the old episode.
The collector keeps that final observation (`final_obs[t]`), because a *truncated*
episode's return continues beyond the time limit and is bootstrapped from `V(final_obs)`
(`mp.rl.advantages`); a terminated one is not.

Resuming: a checkpoint holds the normalisers' statistics, the environment-step counter and
`state`, a string variable with the pickled environments (their internal state and random
generators), the current observations, the unfinished episodes' sums and the finished
episodes' records. It is refreshed after every rollout, so a run stopped after any update
and resumed continues exactly where the uninterrupted run would be.

Course: ch6.2 Deep Reinforcement Learning (sampling trajectories with the current policy).
"""

import pickle
import time
import types

import numpy as np
import tensorflow as tf

AUTORESET = "same_step"


def make_vector_env(env_id, num_envs, *, env_kwargs=None):
    """`num_envs` copies of `env_id` in a SyncVectorEnv with SAME_STEP autoreset.

    Raises:
      ValueError: for an environment gymnasium does not know (or cannot make).
    """
    import gymnasium as gym
    from gymnasium.vector import AutoresetMode, SyncVectorEnv

    if int(num_envs) < 1:
        raise ValueError(f"num_envs must be >= 1. Received: num_envs={num_envs}")
    try:
        gym.spec(env_id)
    except gym.error.Error as error:
        raise ValueError(f"unknown environment {env_id!r}: {error}") from None
    kwargs = dict(env_kwargs or {})

    def make():
        return gym.make(env_id, **kwargs)

    try:
        return SyncVectorEnv([make] * int(num_envs), autoreset_mode=AutoresetMode.SAME_STEP)
    except gym.error.DependencyNotInstalled as error:
        raise ValueError(
            f"environment {env_id} needs a package that is not installed: {error}"
        ) from None


class RunningMeanStd(tf.Module):
    """The running mean and variance of a stream of arrays, in float64 variables.

    Args:
      shape: the shape of one element.
      epsilon: the initial count (avoids dividing by zero before the first update).
    """

    def __init__(self, shape=(), epsilon=1e-4, name=None):
        super().__init__(name=name)
        self.mean = tf.Variable(np.zeros(shape), dtype=tf.float64, trainable=False, name="mean")
        self.var = tf.Variable(np.ones(shape), dtype=tf.float64, trainable=False, name="var")
        self.count = tf.Variable(epsilon, dtype=tf.float64, trainable=False, name="count")

    def update(self, batch):
        """Folds a batch [B, *shape] into the statistics (Chan et al.'s parallel formula)."""
        batch = np.asarray(batch, np.float64)
        mean, var, count = self.mean.numpy(), self.var.numpy(), float(self.count.numpy())
        b_mean, b_var, b_count = batch.mean(0), batch.var(0), batch.shape[0]
        delta = b_mean - mean
        total = count + b_count
        m2 = var * count + b_var * b_count + delta**2 * count * b_count / total
        self.mean.assign(mean + delta * b_count / total)
        self.var.assign(m2 / total)
        self.count.assign(total)

    def normalize(self, x, clip=10.0):
        """`clip((x - mean) / sqrt(var + 1e-8), -clip, clip)` as float32."""
        z = (np.asarray(x) - self.mean.numpy()) / np.sqrt(self.var.numpy() + 1e-8)
        return np.clip(z, -clip, clip).astype(np.float32)


class Collector(tf.Module):
    """Runs a policy in `num_envs` environments, `num_steps` steps per rollout.

    Args:
      env_id: a gymnasium id (e.g. `CartPole-v1`).
      num_envs: environments stepped together.
      num_steps: steps per environment and rollout (T).
      seed: the environments are reset with seeds `seed, seed + 1, ...` once, at the start.
      gamma: the discount of the reward scaling's running return.
      normalize_obs: feed the policy `(obs - mean) / std` of the running statistics.
      normalize_reward: divide rewards by the running standard deviation of the discounted
        return (as SB3's VecNormalize); returns are recorded unscaled.
      env_kwargs: keyword arguments of `gym.make`.
    """

    def __init__(
        self,
        env_id,
        *,
        num_envs,
        num_steps,
        seed=0,
        gamma=0.99,
        normalize_obs=False,
        normalize_reward=False,
        env_kwargs=None,
        name=None,
    ):
        super().__init__(name=name)
        if int(num_steps) < 1:
            raise ValueError(f"num_steps must be >= 1. Received: num_steps={num_steps}")
        self.env_id = env_id
        self.envs = make_vector_env(env_id, num_envs, env_kwargs=env_kwargs)
        self.num_envs, self.num_steps = int(num_envs), int(num_steps)
        self.seed, self.gamma = int(seed), float(gamma)
        self.observation_space = self.envs.single_observation_space
        self.action_space = self.envs.single_action_space
        self.discrete = hasattr(self.action_space, "n")
        shape = self.observation_space.shape
        self.obs_rms = RunningMeanStd(shape, name="obs_rms") if normalize_obs else None
        self.ret_rms = RunningMeanStd((), name="ret_rms") if normalize_reward else None
        self.env_steps = tf.Variable(0, dtype=tf.int64, trainable=False, name="env_steps")
        self.state = tf.Variable("", dtype=tf.string, trainable=False, name="state")
        # the Python-side state, loaded from `state` at the first rollout; in a namespace, which
        # tf.Module does not track (it would wrap the dict and refuse to checkpoint it)
        self._python = types.SimpleNamespace(live=None)

    # --- state ------------------------------------------------------------------

    def seconds(self):
        """Wall seconds of collecting and updating so far, over resumed runs too."""
        return self._python.live["seconds"] + time.perf_counter() - self._python.started

    def _start(self):
        self._python.started = time.perf_counter()
        if self.state.numpy():
            self._python.live = pickle.loads(self.state.numpy())
            self.envs.__dict__.update(self._python.live.pop("vector_env"))
            return
        observations, _ = self.envs.reset(seed=self.seed)
        self.envs.action_space.seed(self.seed)
        n = self.num_envs
        self._python.live = {
            "obs": observations,
            "episode_return": np.zeros(n),
            "episode_length": np.zeros(n, np.int64),
            "discounted": np.zeros(n),  # the reward scaling's running return
            "rng": np.random.default_rng(self.seed),  # the behaviour policy's sampling
            "episodes": [],  # (env_steps at the end, return, length)
            "episode_seconds": [],  # wall seconds at the end (`seconds()`)
            "seconds": 0.0,
        }

    def _save(self):
        self._python.live["seconds"] = self.seconds()
        self._python.started = time.perf_counter()
        vector_env = {k: v for k, v in self.envs.__dict__.items() if k != "env_fns"}
        self.state.assign(pickle.dumps(self._python.live | {"vector_env": vector_env}))

    @property
    def episodes(self):
        """Finished training episodes as an array [E, 3]: env steps at the end, return, length."""
        if self._python.live is None:
            self._start()
        return np.array(self._python.live["episodes"], np.float64).reshape(-1, 3)

    @property
    def episode_seconds(self):
        """Wall seconds (`seconds()`) at the end of each finished training episode."""
        if self._python.live is None:
            self._start()
        return np.array(self._python.live["episode_seconds"], np.float64)

    def observe(self, observations):
        """What the policy sees: normalised (if asked) float32 observations."""
        if self.obs_rms is None:
            return np.asarray(observations, np.float32)
        return self.obs_rms.normalize(observations)

    # --- rollouts ---------------------------------------------------------------

    def env_action(self, actions):
        """Actions as the environments take them: ints, or clipped to the box."""
        if self.discrete:
            return np.asarray(actions).astype(np.int64)
        return np.clip(actions, self.action_space.low, self.action_space.high)

    def collect(self, act):
        """One rollout of `num_steps` steps with `act(observations, rng) -> actions`.

        `observations` are float32 [N, D] as the policy sees them, `rng` a NumPy generator
        whose state is part of the collector's (checkpointed) state. The behaviour policy's
        log-probabilities are not recorded: the policy has not changed when the update
        starts, so the update recomputes them in its graph.

        Returns a dict of tensors: `obs` [T, N, D] (as the policy saw them), `actions`
        [T, N] or [T, N, A], `rewards` (scaled if asked), `terminated`, `truncated` [T, N]
        (float32 0/1), `final_obs` [T, N, D] (the observation each transition reached, the
        final one of an episode that ended), `last_obs` [N, D], and `env_steps` and
        `episodic_return` (the mean of the last 20 finished episodes, NaN before any)
        as scalars.
        """
        if self._python.live is None:
            self._start()
        live, T, N = self._python.live, self.num_steps, self.num_envs
        raw = live["obs"]
        if self.obs_rms is not None and int(self.env_steps.numpy()) == 0:
            self.obs_rms.update(raw)
        obs_shape = self.observation_space.shape
        obs = np.zeros((T, N, *obs_shape), np.float32)
        final_raw = np.zeros((T, N, *obs_shape), np.float64)
        rewards = np.zeros((T, N), np.float32)
        terminated = np.zeros((T, N), np.float32)
        truncated = np.zeros((T, N), np.float32)
        actions_list = []
        steps = int(self.env_steps.numpy())
        for t in range(T):
            obs[t] = self.observe(raw)
            actions = np.asarray(act(obs[t], live["rng"]))
            actions_list.append(actions)
            raw, reward, term, trunc, infos = self.envs.step(self.env_action(actions))
            steps += N
            done = term | trunc
            final_raw[t] = raw
            if done.any():
                final = infos["final_obs"]
                for i in np.flatnonzero(done):
                    final_raw[t, i] = final[i]
            live["episode_return"] += reward
            live["episode_length"] += 1
            for i in np.flatnonzero(done):
                live["episodes"].append(
                    (steps, float(live["episode_return"][i]), int(live["episode_length"][i]))
                )
                live["episode_seconds"].append(self.seconds())
            live["episode_return"][done] = 0.0
            live["episode_length"][done] = 0
            if self.ret_rms is not None:
                live["discounted"] = live["discounted"] * self.gamma + reward
                self.ret_rms.update(live["discounted"])
                reward = reward / np.sqrt(self.ret_rms.var.numpy() + 1e-8)
                live["discounted"][done] = 0.0
            if self.obs_rms is not None:
                self.obs_rms.update(raw)
            rewards[t], terminated[t], truncated[t] = reward, term, trunc
        live["obs"] = raw
        self.env_steps.assign(steps)
        recent = [e[1] for e in live["episodes"][-20:]]
        batch = {
            "obs": tf.constant(obs),
            "actions": tf.constant(np.stack(actions_list)),
            "rewards": tf.constant(rewards),
            "terminated": tf.constant(terminated),
            "truncated": tf.constant(truncated),
            "final_obs": tf.constant(self.observe(final_raw)),
            "last_obs": tf.constant(self.observe(raw)),
            "env_steps": tf.constant(float(steps), tf.float32),
            "episodic_return": tf.constant(np.mean(recent) if recent else np.nan, tf.float32),
        }
        self._save()
        return batch


def evaluate(mode_fn, collector, episodes, *, seed=10_000):
    """Returns of `episodes` seeded episodes of a deterministic policy.

    Args:
      mode_fn: `observations [N, D] float32 -> actions`, the deterministic policy.
      collector: the training `Collector` (its environment id, arguments and observation
        normaliser; its environments are not touched).
      episodes: the number of episodes, run on environments seeded `seed, seed + 1, ...`.

    Returns:
      An array [episodes] of undiscounted returns.
    """
    returns = []
    env = collector.envs.env_fns[0]()
    try:
        for episode in range(int(episodes)):
            observation, _ = env.reset(seed=seed + episode)
            total, done = 0.0, False
            while not done:
                action = mode_fn(tf.constant(collector.observe(observation[None])))
                action = collector.env_action(np.asarray(action)[0])
                observation, reward, term, trunc, _ = env.step(action)
                total += float(reward)
                done = term or trunc
            returns.append(total)
    finally:
        env.close()
    return np.array(returns)
