"""What the on-policy algorithms share: an engine `Task` that collects, then updates.

    OnPolicyTask   builds the collector (`mp.rl.rollout`), the policy and value networks
                   (`mp.rl.networks`), a seeded `tf.random.Generator` (action sampling and
                   minibatch shuffling) and the algorithm's optimizers; `data(start_step)` is
                   the Trainer's training data (one rollout per update, collected with the
                   current policy); `train_step(batch)` is one whole update, run by the
                   Trainer inside one `tf.function` traced once (fixed [T, N] shapes).
    LinearDecay    a learning rate falling linearly to zero over the run's updates (`remaining`:
                   Stable-Baselines3's progress remaining, counted after each rollout)
    BiasCorrectedAdam  Adam with PyTorch's placement of epsilon (the benchmarks' peers)

The checkpoint (`checkpoint_items`) holds the networks, the optimizers, the generator's
state and the collector (environment-step counter, normaliser statistics, pickled
environments), so a resumed run continues the very same trajectory.

Each algorithm (`reinforce`, `a2c`, `ppo`, `trpo`) subclasses it with its optimizers and its
`train_step`. `ALGORITHMS` maps `--algo` names to the classes.

Course: ch6.2 Deep Reinforcement Learning.
"""

import keras
import numpy as np
from keras import ops
import tensorflow as tf

from mp.engine.task import Task
from mp.rl import advantages, networks, rollout


def remaining(update, total_updates):
    """`max(1 - (update + 1) / total_updates, 0)`: the share of the run's rollouts still to
    come once update `update` (counted from 0) has collected its own. Stable-Baselines3
    anneals by this "progress remaining", computed after each rollout (`1 - env steps so far /
    budget`), so its first update already runs at `1 - 1 / total_updates` of the initial
    rate and its last one at (nearly) zero."""
    done = tf.cast(update, tf.float32) + 1.0
    return tf.maximum(1.0 - done / float(total_updates), 0.0)


@keras.saving.register_keras_serializable(package="mp")
class LinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """`initial * remaining(update, total_updates)`, read from a counter of updates (the
    engine's `global_step`), not from the optimizer's iterations: PPO takes many optimizer
    steps per update and may stop an update early, so every step of one update gets one
    rate."""

    def __init__(self, initial, total_updates, counter=None):
        self.initial = float(initial)
        self.total_updates = int(total_updates)
        self.counter = counter

    def __call__(self, step):
        update = step if self.counter is None else self.counter
        return self.initial * remaining(update, self.total_updates)

    def get_config(self):
        return {"initial": self.initial, "total_updates": self.total_updates}


@keras.saving.register_keras_serializable(package="mp")
class BiasCorrectedAdam(keras.optimizers.Adam):
    """Adam with epsilon added to the bias-corrected root, as PyTorch (and so SB3) computes it:

        theta -= lr * m_hat / (sqrt(v_hat) + eps),  m_hat = m / (1 - b1^t), v_hat = v / (1 - b2^t)

    Keras adds epsilon to the uncorrected `sqrt(v)` ("epsilon hat"), which is PyTorch's update
    with `eps / sqrt(1 - b2^t)`: 32 times larger at the first step, still 3 times at the 100th.
    With PPO's eps = 1e-5 and small early gradients that damped the first updates (CartPole:
    475 reached after 41k env steps [25k, 52k] over seeds 0-2, against 35k [35k, 38k] with
    a 100 times smaller epsilon).
    """

    def update_step(self, gradient, variable, learning_rate):
        dtype = variable.dtype
        lr = ops.cast(learning_rate, dtype)
        gradient = ops.cast(gradient, dtype)
        step = ops.cast(self.iterations + 1, dtype)
        correction_1 = 1 - ops.power(ops.cast(self.beta_1, dtype), step)
        correction_2 = 1 - ops.power(ops.cast(self.beta_2, dtype), step)
        m = self._momentums[self._get_variable_index(variable)]
        v = self._velocities[self._get_variable_index(variable)]
        self.assign_add(m, ops.multiply(ops.subtract(gradient, m), 1 - self.beta_1))
        self.assign_add(v, ops.multiply(ops.subtract(ops.square(gradient), v), 1 - self.beta_2))
        denominator = ops.add(ops.sqrt(ops.divide(v, correction_2)), self.epsilon)
        step_size = ops.multiply(lr, ops.divide(m, correction_1))
        self.assign_sub(variable, ops.divide(step_size, denominator))


class OnPolicyTask(Task):
    """Base class of the on-policy algorithms (see the module docstring).

    Args:
      env_id: a gymnasium environment id.
      total_updates: the run's number of updates (learning-rate and clip-range annealing).
      num_envs, num_steps: N environments, T steps each per rollout.
      seed: seeds the environments, the action sampling and the shuffling.
      gamma: the discount.
      gae_lambda: GAE's lambda (algorithms with a critic).
      hidden_units, activation: the MLPs of the policy and the value function.
      log_std_init, action_bound: continuous actions (`mp.rl.networks.PolicyNetwork`).
      normalize_obs, normalize_reward: running normalisation (`mp.rl.rollout.Collector`).
      env_kwargs: keyword arguments of `gym.make`.
      learning_rate: the (first) learning rate.
      anneal_lr: decay the learning rate linearly to zero over `total_updates`.
      max_grad_norm: clip the gradient to this global norm; `None` does not clip.
      summary_dir: if set, `data` writes TensorBoard scalars keyed by environment steps there:
        `charts/episodic_return` and `charts/episodic_length` of every finished episode and
        `charts/env_steps_per_sec` of every rollout. Not the Trainer's `train/`: it keys the
        update's losses by update (`rollout/env_steps` among them maps one onto the other),
        and skips steps below the last one in its folder.
    """

    name = None

    def __init__(
        self,
        env_id,
        *,
        total_updates,
        num_envs=8,
        num_steps=32,
        seed=0,
        gamma=0.99,
        gae_lambda=0.95,
        hidden_units=(64, 64),
        activation="tanh",
        log_std_init=0.0,
        action_bound="clip",
        normalize_obs=False,
        normalize_reward=False,
        env_kwargs=None,
        learning_rate=3e-4,
        anneal_lr=False,
        max_grad_norm=0.5,
        summary_dir=None,
    ):
        for key, value in (("total_updates", total_updates), ("num_envs", num_envs),
                           ("num_steps", num_steps)):
            if int(value) < 1:
                raise ValueError(f"{key} must be >= 1. Received: {key}={value}")
        if not (0.0 <= gamma <= 1.0 and 0.0 <= gae_lambda <= 1.0):
            raise ValueError(
                f"gamma and gae_lambda must be in [0, 1]. Received: {gamma}, {gae_lambda}"
            )
        if not learning_rate > 0:
            raise ValueError(f"learning_rate must be positive. Received: {learning_rate}")
        self.env_id = env_id
        self.total_updates = int(total_updates)
        self.num_envs, self.num_steps = int(num_envs), int(num_steps)
        self.seed, self.gamma, self.gae_lambda = int(seed), float(gamma), float(gae_lambda)
        self.network_options = dict(
            hidden_units=tuple(hidden_units), activation=activation,
            log_std_init=log_std_init, action_bound=action_bound,
        )
        self.collector_options = dict(
            normalize_obs=normalize_obs, normalize_reward=normalize_reward, env_kwargs=env_kwargs
        )
        self.learning_rate = float(learning_rate)
        self.anneal_lr = bool(anneal_lr)
        self.max_grad_norm = max_grad_norm
        self.summary_dir = summary_dir
        self.traces = 0  # how often train_step was traced (one per run)
        # what the algorithm can act on; the collector makes the environments, so check early
        self.collector = rollout.Collector(
            env_id, num_envs=self.num_envs, num_steps=self.num_steps, seed=self.seed,
            gamma=self.gamma, **self.collector_options,
        )
        self.check_spaces(self.collector.action_space)

    @classmethod
    def check_spaces(cls, action_space):
        """Raises ValueError if the algorithm cannot act in `action_space` (all here can act
        in Discrete and flat Box spaces; `networks.for_spaces` says what is refused)."""

    # --- building -------------------------------------------------------------

    def check_minibatch(self, minibatch_size):
        """Raises ValueError unless `minibatch_size` divides the rollout's T * N transitions."""
        if int(minibatch_size) < 1 or self.batch_size % int(minibatch_size):
            raise ValueError(
                f"minibatch_size must divide num_steps * num_envs = {self.batch_size}. "
                f"Received: minibatch_size={minibatch_size}"
            )

    @property
    def batch_size(self):
        """Transitions per rollout: T * N."""
        return self.num_steps * self.num_envs

    def rate(self, initial=None):
        """The learning rate: a constant, or `LinearDecay` over the updates with `anneal_lr`."""
        initial = self.learning_rate if initial is None else initial
        if self.anneal_lr:
            return LinearDecay(initial, self.total_updates, self.global_step)
        return initial

    def make_optimizers(self):
        """Returns `{name: optimizer}`; built on the variables they update by `build`."""
        raise NotImplementedError

    def optimizer_variables(self, name):
        """The variables optimizer `name` updates (default: policy and value)."""
        del name
        return self.policy.trainable_variables + self.value.trainable_variables

    def build(self):
        if self.global_step is None:  # used without the engine (tests, notebooks)
            self.global_step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
        c = self.collector
        self.policy, self.value = networks.for_spaces(
            c.observation_space, c.action_space, **self.network_options
        )
        self.generator = tf.random.Generator.from_seed(self.seed)
        self.optimizers = self.make_optimizers()
        for name, optimizer in self.optimizers.items():
            optimizer.build(self.optimizer_variables(name))
        obs_spec = tf.TensorSpec((self.num_envs, *c.observation_space.shape), tf.float32)
        seed_spec = tf.TensorSpec((2,), tf.int32)
        self._tf_act = tf.function(self._act, input_signature=[obs_spec, seed_spec])
        self.act_deterministic = tf.function(
            lambda obs: self.policy.mode(self.policy(obs)),
            input_signature=[tf.TensorSpec((None, *c.observation_space.shape), tf.float32)],
        )

    def checkpoint_items(self):
        from mp.engine.precision import unscaled

        items = {"policy": self.policy, "value": self.value, "generator": self.generator,
                 "collector": self.collector}
        return items | {f"optimizer_{k}": unscaled(v) for k, v in self.optimizers.items()}

    def export(self, path):
        self.policy.save(path)

    # --- acting ---------------------------------------------------------------

    def _act(self, observations, seed):
        return self.policy.distribution_from(self.policy(observations)).sample(seed=seed)

    def sampler(self):
        """`(observations, rng) -> actions` of the current policy: its NumPy copy when it has
        one, else the TFP distribution's sample (seeded from `rng`)."""
        fast = self.policy.numpy_sampler()
        if fast is not None:
            return fast
        def sample(obs, rng):
            seed = rng.integers(0, 2**31 - 1, size=2, dtype=np.int32)
            return self._tf_act(obs, seed).numpy()

        return sample

    def data(self, start_step=0):
        """The Trainer's training data: an endless iterator of rollouts (one per update)."""
        del start_step  # the collector's checkpointed state says where the run is
        c = self.collector
        writer = tf.summary.create_file_writer(self.summary_dir) if self.summary_dir else None
        written = len(c.episodes)  # a resumed run wrote the earlier ones
        while True:
            tic = c.seconds()
            batch = c.collect(self.sampler())
            if writer is not None:
                episodes = c.episodes[written:]
                written += len(episodes)
                with writer.as_default():
                    for steps, episode_return, length in episodes:
                        tf.summary.scalar("charts/episodic_return", episode_return, step=int(steps))
                        tf.summary.scalar("charts/episodic_length", length, step=int(steps))
                    rate = self.batch_size / max(c.seconds() - tic, 1e-9)
                    steps = int(c.env_steps.numpy())
                    tf.summary.scalar("charts/env_steps_per_sec", rate, step=steps)
                writer.flush()
            yield batch

    def old_log_probs(self, batch):
        """[T * N] log pi_old(a_t | s_t) of the behaviour policy: today's policy, as the update
        has not changed it yet."""
        obs, actions = self.flat(batch["obs"]), self.flat(batch["actions"])
        return tf.stop_gradient(self.policy.log_prob(self.policy(obs), actions))

    # --- shared pieces of the updates ---------------------------------------------

    def flat(self, x):
        """[T, N, ...] -> [T * N, ...]."""
        return tf.reshape(x, (self.batch_size, *x.shape[2:]))

    def values_and_advantages(self, batch):
        """V(s_t) of the rollout and GAE(lambda) advantages and returns, all [T, N]."""
        T, N = self.num_steps, self.num_envs
        obs_shape = batch["obs"].shape[2:]
        values = tf.reshape(self.value(self.flat(batch["obs"])), (T, N))
        final = tf.reshape(self.value(tf.reshape(batch["final_obs"], (T * N, *obs_shape))), (T, N))
        last = self.value(batch["last_obs"])
        done = tf.maximum(batch["terminated"], batch["truncated"])
        next_values = advantages.next_values(values, last, done, final)
        adv, returns = advantages.gae(
            batch["rewards"], values, next_values, batch["terminated"], batch["truncated"],
            self.gamma, self.gae_lambda,
        )
        return values, adv, returns

    @staticmethod
    def explained_variance(predictions, targets):
        """`1 - Var[targets - predictions] / Var[targets]`: 1 is a perfect critic, 0 no better
        than a constant."""
        var = tf.math.reduce_variance(targets)
        return tf.where(var > 0, 1.0 - tf.math.reduce_variance(targets - predictions) / var, np.nan)

    def rollout_outputs(self, batch):
        """What the progress bar shows besides the losses: env steps and the running return."""
        return {"rollout/env_steps": batch["env_steps"], "rollout/return": batch["episodic_return"]}
