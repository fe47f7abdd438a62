"""Experience replay for the off-policy methods (DQN, DDPG, TD3): the buffer and the Task base.

    ReplayBuffer     preallocated tf.Variables (observations, actions, rewards, next
                     observations, `terminated`, `truncated`), a circular insert position, a
                     fill level and a seeded `tf.random.Generator` for uniform sampling; all
                     of it is a `tf.Module`, so a `tf.train.Checkpoint` holds every field,
                     the position, the fill level and the generator's state, and a resumed
                     run does not start from an empty buffer. Memory is bounded by
                     `capacity` (`bytes_per_transition` per row: 4 bytes per float32 or
                     int32 number, 8 per int64).
    polyak_update    target <- tau * online + (1 - tau) * target (tau = 1: a hard copy)
    numpy_mlp        a NumPy copy of a Dense MLP for acting one step at a time
    ScaledCollector  `mp.rl.rollout.Collector` whose continuous actions live in [-1, 1] and
                     are mapped to the environment's box only when the environment gets them
    OffPolicyTask    the engine `Task` every off-policy algorithm shares: one Trainer step =
                     collect `train_frequency` env steps in each of `num_envs` environments
                     with the behaviour policy, then (one `tf.function`, traced once) insert
                     them into the buffer, update the target networks when their interval of
                     env steps has passed, and run `gradient_steps` updates on minibatches
                     sampled from the buffer (none before `learning_starts` env steps)

Off-policy learning re-uses old transitions: the experience of many earlier policies sits in
the buffer and is replayed, which is what makes DQN and DDPG more sample efficient than the
on-policy methods, whose rollouts are thrown away after one update (course: "We can also
incorporate Q-learning tricks, e.g. experience replay"; the sample-efficiency issue).
Sampling uniformly from a large buffer also decorrelates the consecutive transitions of one
episode.

Targets keep `terminated` and `truncated` apart: a transition that ended the episode at the
time limit still bootstraps from its real next observation (`final_obs` of the collector),
only a terminal state has value zero.

Course: ch6.2 Deep Reinforcement Learning (experience replay, actor-critic); ch6.1.3 TD
learning (the bootstrapped Q-learning target).
"""

import keras
import numpy as np
import tensorflow as tf

from mp.engine.task import Task
from mp.rl import rollout

FIELDS = ("observations", "actions", "rewards", "next_observations", "terminated", "truncated")


class ReplayBuffer(tf.Module):
    """A circular buffer of `capacity` transitions in preallocated variables.

    Args:
      capacity: the number of transitions kept (the oldest are overwritten).
      observation_shape: the shape of one observation (float32).
      action_shape: the shape of one action: `()` for a discrete action.
      action_dtype: `tf.int32` (discrete) or `tf.float32` (continuous).
      seed: seeds the sampling generator.
    """

    def __init__(self, capacity, observation_shape, action_shape=(), action_dtype=tf.int32,
                 seed=0, name=None):
        super().__init__(name=name)
        if not isinstance(capacity, (int, np.integer)) or capacity < 1:
            raise ValueError(f"capacity must be a positive integer. Received: capacity={capacity}")
        self.capacity = int(capacity)
        c = self.capacity
        self.observation_shape = tuple(observation_shape)
        self.action_shape = tuple(action_shape)
        self.action_dtype = tf.as_dtype(action_dtype)

        def variable(shape, dtype, name):
            return tf.Variable(tf.zeros(shape, dtype), trainable=False, name=name)

        self.observations = variable((c, *self.observation_shape), tf.float32, "observations")
        self.actions = variable((c, *self.action_shape), self.action_dtype, "actions")
        self.rewards = variable((c,), tf.float32, "rewards")
        self.next_observations = variable((c, *self.observation_shape), tf.float32,
                                          "next_observations")
        self.terminated = variable((c,), tf.float32, "terminated")
        self.truncated = variable((c,), tf.float32, "truncated")
        self.position = tf.Variable(0, dtype=tf.int64, trainable=False, name="position")
        self.size = tf.Variable(0, dtype=tf.int64, trainable=False, name="size")
        self.generator = tf.random.Generator.from_seed(seed)

    @property
    def bytes_per_transition(self):
        """Bytes one transition takes: two observations, the action, four float32 scalars."""
        obs = 2 * 4 * int(np.prod(self.observation_shape, dtype=np.int64))
        action = self.action_dtype.size * int(np.prod(self.action_shape, dtype=np.int64))
        return obs + action + 3 * 4  # rewards, terminated, truncated

    def add(self, observations, actions, rewards, next_observations, terminated, truncated):
        """Writes K transitions (K <= capacity, leading axis) at the insert position."""
        values = (observations, actions, rewards, next_observations, terminated, truncated)
        k = tf.shape(rewards, out_type=tf.int64)[0]
        if rewards.shape[0] is not None and rewards.shape[0] > self.capacity:
            raise ValueError(f"{rewards.shape[0]} transitions do not fit a buffer of "
                             f"{self.capacity}")
        index = ((self.position + tf.range(k, dtype=tf.int64)) % self.capacity)[:, None]
        for name, value in zip(FIELDS, values):
            variable = getattr(self, name)
            variable.scatter_nd_update(index, tf.cast(value, variable.dtype))
        self.position.assign((self.position + k) % self.capacity)
        self.size.assign(tf.minimum(self.size + k, self.capacity))

    def sample(self, batch_size):
        """`batch_size` transitions drawn uniformly (with replacement) from the filled rows.

        Returns:
          A dict of the `FIELDS` with a leading axis `batch_size`.
        """
        index = self.generator.uniform([batch_size], 0, tf.maximum(self.size, 1), dtype=tf.int64)
        return {name: tf.gather(getattr(self, name), index) for name in FIELDS}


def mlp(hidden_units, activation, name="body"):
    """A Sequential of Dense layers initialised as PyTorch's `nn.Linear` (kernel
    U(-1/sqrt(fan_in), 1/sqrt(fan_in)), what SB3's off-policy networks start from; biases 0)."""
    return keras.Sequential([
        keras.layers.Dense(units, activation=activation, kernel_initializer=torch_kernel(),
                           name=f"hidden_{i}")
        for i, units in enumerate(hidden_units)
    ], name=name)


def torch_kernel():
    """PyTorch's default kernel initialiser of `nn.Linear` (kaiming uniform, a = sqrt(5))."""
    return keras.initializers.VarianceScaling(1.0 / 3.0, "fan_in", "uniform")


def polyak_update(online, target, tau):
    """`target <- tau * online + (1 - tau) * target` for paired variable lists; tau = 1 copies."""
    for o, t in zip(online, target, strict=True):
        if tau == 1.0:
            t.assign(o)
        else:
            t.assign(tau * o + (1.0 - tau) * t)


def numpy_mlp(hidden, head, activation, output=None):
    """`x -> output(head(activation(...activation(x W1 + b1)...)))` in NumPy with today's
    weights of Keras Dense layers `hidden` (a list) and `head`; `None` for an activation it
    does not know (act through TF then). A `tf.function` call costs ~0.5 ms; this ~20 us."""
    functions = {"tanh": np.tanh, "relu": lambda x: np.maximum(x, 0.0), "linear": lambda x: x}
    if activation not in functions:
        return None
    f = functions[activation]
    layers = [(d.kernel.numpy(), d.bias.numpy()) for d in hidden]
    kernel, bias = head.kernel.numpy(), head.bias.numpy()

    def forward(x):
        x = np.asarray(x, np.float32)
        for w, b in layers:
            x = f(x @ w + b)
        y = x @ kernel + bias
        return y if output is None else output(y)

    return forward


class ScaledCollector(rollout.Collector):
    """A `rollout.Collector` whose continuous actions are in [-1, 1]: the policy, the buffer
    and the critic see `a`, the environment `low + (a + 1) (high - low) / 2` (as SB3 scales
    the actions of DDPG and TD3, so that noise scales mean the same in every box)."""

    def env_action(self, actions):
        if self.discrete:
            return super().env_action(actions)
        low, high = self.action_space.low, self.action_space.high
        return low + (np.clip(actions, -1.0, 1.0) + 1.0) * (high - low) / 2.0


class OffPolicyTask(Task):
    """The base of DQN, DDPG and TD3 (see the module docstring).

    Args:
      env_id: a gymnasium environment id.
      total_updates: Trainer steps of the run; each is `train_frequency * num_envs` env steps.
      num_envs: environments stepped together.
      train_frequency: env steps per environment between two calls of the update.
      gradient_steps: gradient steps per call (inside one `tf.function`).
      buffer_size: the replay buffer's capacity in transitions.
      batch_size: transitions per gradient step.
      learning_starts: env steps of uniformly random behaviour before the first update.
      gamma: the discount.
      tau: Polyak coefficient of the target networks (1: hard copy).
      learning_rate: Adam's learning rate.
      hidden_units, activation: the MLPs.
      adam_epsilon: Adam's epsilon (PyTorch's placement, `onpolicy.BiasCorrectedAdam`).
      seed: seeds the environments, the behaviour policy, the buffer's sampling and the
        update's noise.
      env_kwargs: keyword arguments of `gym.make`.
      summary_dir: if set, `data` writes there, keyed by environment steps, every finished
        episode's `charts/episodic_return` and `charts/episodic_length` and, every
        `summary_every` env steps, the outputs of the update before (`losses/td`,
        `charts/epsilon`, `charts/q_values`, ...) at the env steps it ran after.
      summary_every: env steps between two writes of the update's outputs.
    """

    name = None
    discrete = True  # the action space the algorithm needs

    def __init__(self, env_id, *, total_updates, num_envs=1, train_frequency=1,
                 gradient_steps=1, buffer_size=100_000, batch_size=256, learning_starts=100,
                 gamma=0.99, tau=1.0, learning_rate=1e-3, hidden_units=(256, 256),
                 activation="relu", adam_epsilon=1e-8, seed=0, env_kwargs=None,
                 summary_dir=None, summary_every=1000):
        for key, value in (("total_updates", total_updates), ("num_envs", num_envs),
                           ("train_frequency", train_frequency), ("buffer_size", buffer_size),
                           ("batch_size", batch_size)):
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{key} must be a positive integer. Received: {key}={value}")
        for key, value in (("gradient_steps", gradient_steps),
                           ("learning_starts", learning_starts)):
            if not isinstance(value, (int, np.integer)) or value < 0:
                raise ValueError(f"{key} must be an integer >= 0. Received: {key}={value}")
        if buffer_size < train_frequency * num_envs:
            raise ValueError(f"buffer_size must hold one collection of train_frequency x "
                             f"num_envs = {train_frequency * num_envs} transitions. Received: "
                             f"buffer_size={buffer_size}")
        if not (0.0 <= gamma <= 1.0 and 0.0 < tau <= 1.0):
            raise ValueError(f"gamma must be in [0, 1] and tau in (0, 1]. Received: gamma={gamma}, "
                             f"tau={tau}")
        if not learning_rate > 0:
            raise ValueError(f"learning_rate must be positive. Received: {learning_rate}")
        self.env_id = env_id
        self.total_updates, self.num_envs = int(total_updates), int(num_envs)
        self.train_frequency, self.gradient_steps = int(train_frequency), int(gradient_steps)
        self.buffer_size, self.batch_size = int(buffer_size), int(batch_size)
        self.learning_starts, self.gamma, self.tau = int(learning_starts), float(gamma), float(tau)
        self.learning_rate, self.adam_epsilon = float(learning_rate), float(adam_epsilon)
        self.hidden_units, self.activation = tuple(int(u) for u in hidden_units), activation
        self.seed = int(seed)
        self.summary_dir, self.summary_every = summary_dir, int(summary_every)
        self.traces = 0  # how often train_step was traced (one per run)
        self.collector = ScaledCollector(env_id, num_envs=self.num_envs,
                                         num_steps=self.train_frequency, seed=self.seed,
                                         gamma=self.gamma, env_kwargs=env_kwargs)
        self.check_spaces(self.collector.action_space)

    @classmethod
    def check_spaces(cls, action_space):
        """Raises ValueError unless the algorithm can act in `action_space`, naming the ones
        that can."""
        import gymnasium as gym

        from mp.rl.registry import OFF_POLICY

        discrete = isinstance(action_space, gym.spaces.Discrete)
        box = isinstance(action_space, gym.spaces.Box) and len(action_space.shape) == 1
        if (cls.discrete and not discrete) or (not cls.discrete and not box):
            kind = "continuous" if box else "discrete"
            fits = [n for n, k in OFF_POLICY.items() if k == kind] + ["reinforce", "a2c", "ppo",
                                                                      "trpo"]
            raise ValueError(
                f"--algo={cls.name} needs a {'Discrete' if cls.discrete else 'flat Box'} action "
                f"space; this environment's is {action_space}: use one of {', '.join(fits)}"
            )

    # --- what a subclass provides ----------------------------------------------

    def build_networks(self, observation_shape, action_space):
        """Creates the networks, their target copies and `self.optimizers`."""
        raise NotImplementedError

    def target_pairs(self):
        """`(online variables, target variables)` of the networks with a target copy."""
        raise NotImplementedError

    def update(self, sample):
        """One gradient step on a sampled minibatch; returns a float32 vector of outputs."""
        raise NotImplementedError

    output_names = ()  # the names of `update`'s outputs (means over the call's gradient steps)

    def behaviour(self):
        """`(observations, rng, env_step) -> actions` of the behaviour policy for one rollout."""
        raise NotImplementedError

    extra_names = ()  # the names of `extra_outputs`

    def extra_outputs(self, env_steps):
        """Scalars the update reports besides the gradient steps' means (e.g. epsilon)."""
        del env_steps
        return {}

    def update_targets_every_step(self):
        """Whether targets follow every gradient step (DDPG/TD3) instead of an interval."""
        return False

    def move_targets(self, tau=None):
        """Moves every target network towards its online one by `tau` (the task's; 1 copies)."""
        for online, target in self.target_pairs():
            polyak_update(online, target, self.tau if tau is None else tau)

    # --- building ---------------------------------------------------------------

    def build(self):
        if self.global_step is None:  # used without the engine (tests, notebooks)
            self.global_step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
        c = self.collector
        space = c.action_space
        continuous = not c.discrete
        self.buffer = ReplayBuffer(
            self.buffer_size, c.observation_space.shape,
            action_shape=space.shape if continuous else (),
            action_dtype=tf.float32 if continuous else tf.int32, seed=self.seed, name="buffer")
        self.generator = tf.random.Generator.from_seed(self.seed + 1)  # the update's noise
        self.updates = tf.Variable(0, dtype=tf.int64, trainable=False, name="gradient_steps")
        self.build_networks(c.observation_space.shape, space)
        self.move_targets(1.0)
        for name, optimizer in self.optimizers.items():
            optimizer.build(self.optimizer_variables(name))
        self.last = {k: tf.Variable(0.0, trainable=False)
                     for k in self.output_names + self.extra_names}

    def optimizer_variables(self, name):
        raise NotImplementedError

    def checkpoint_items(self):
        from mp.engine.precision import unscaled

        items = {"buffer": self.buffer, "generator": self.generator, "collector": self.collector,
                 "updates": self.updates} | self.networks()
        return items | {f"optimizer_{k}": unscaled(v) for k, v in self.optimizers.items()}

    def networks(self):
        """`{name: keras.Model}` of the online and target networks."""
        raise NotImplementedError

    # --- the Trainer's data and step ----------------------------------------------

    def data(self, start_step=0):
        """The Trainer's training data: an endless iterator of collections of
        `train_frequency` steps in each environment, acting with `behaviour()`."""
        del start_step  # the collector's checkpointed state says where the run is
        c = self.collector
        writer = tf.summary.create_file_writer(self.summary_dir) if self.summary_dir else None
        written = len(c.episodes)  # a resumed run wrote the earlier ones
        logged = int(c.env_steps.numpy()) // self.summary_every
        while True:
            batch = c.collect(self.behaviour())
            if writer is None:
                yield batch
                continue
            steps = int(c.env_steps.numpy())
            episodes = c.episodes[written:]
            written += len(episodes)
            with writer.as_default():
                for end, episode_return, length in episodes:
                    tf.summary.scalar("charts/episodic_return", episode_return, step=int(end))
                    tf.summary.scalar("charts/episodic_length", length, step=int(end))
                if steps // self.summary_every > logged and self.global_step.numpy() > 0:
                    logged = steps // self.summary_every
                    before = steps - self.train_frequency * self.num_envs  # the last update's
                    for key, variable in self.last.items():
                        tf.summary.scalar(key, variable.numpy(), step=before)
                    tf.summary.scalar("charts/env_steps_per_sec", steps / max(c.seconds(), 1e-9),
                                      step=steps)
                writer.flush()
            yield batch

    def outputs_from(self, sums, n):
        """`{name: value}` of the call from the sums of `update`'s outputs over `n` steps."""
        means = sums / tf.cast(tf.maximum(n, 1), tf.float32)
        return dict(zip(self.output_names, tf.unstack(means)))

    def train_step(self, batch):
        self.traces += 1
        flat = self.flat
        self.buffer.add(flat(batch["obs"]), flat(batch["actions"]), flat(batch["rewards"]),
                        flat(batch["final_obs"]), flat(batch["terminated"]),
                        flat(batch["truncated"]))
        env_steps = self.collector.env_steps  # already counts this collection
        if not self.update_targets_every_step():
            self.interval_target_update(env_steps)
        n = tf.where(env_steps >= self.learning_starts, self.gradient_steps, 0)
        sums = tf.zeros(len(self.output_names))
        for _ in tf.range(n):
            self.updates.assign_add(1)
            sums += self.update(self.buffer.sample(self.batch_size))
        outputs = self.outputs_from(sums, n) | self.extra_outputs(env_steps)
        for key, value in outputs.items():
            if key in self.last:
                self.last[key].assign(value)
        return outputs | {
            "charts/gradient_steps": tf.cast(n, tf.float32),
            "rollout/env_steps": batch["env_steps"],
            "rollout/return": batch["episodic_return"],
            "rollout/buffer_fill": tf.cast(self.buffer.size, tf.float32),
        }

    target_update_interval = 1  # env steps between target updates (DQN sets its own)

    def interval_target_update(self, env_steps):
        """Moves the targets once when a multiple of `target_update_interval` env steps was
        passed by this collection (SB3's DQN counts the same way)."""
        per_call = self.train_frequency * self.num_envs
        interval = self.target_update_interval
        if (env_steps // interval) > ((env_steps - per_call) // interval):
            self.move_targets()

    def flat(self, x):
        """[T, N, ...] -> [T * N, ...]."""
        return tf.reshape(x, (self.train_frequency * self.num_envs, *x.shape[2:]))

    def random_actions(self, rng, n):
        """Uniform actions of `n` environments: ints, or points of [-1, 1]^A."""
        space = self.collector.action_space
        if self.collector.discrete:
            return rng.integers(0, int(space.n), size=n).astype(np.int32)
        return rng.uniform(-1.0, 1.0, size=(n, *space.shape)).astype(np.float32)
