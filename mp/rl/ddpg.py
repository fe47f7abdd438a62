"""Deep deterministic policy gradients (Lillicrap et al., 2016) and TD3 (Fujimoto et al., 2018).

DDPG is an off-policy actor-critic for continuous actions: Q-learning with a critic
`Q_phi(s, a)` on (state, action) and, because `max_a Q(s, a)` has no closed form over a
box, a deterministic actor `mu_theta(s)` trained to be that argmax, by the deterministic
policy gradient through the critic (Silver et al., 2014):

    critic:  min_phi  E[(Q_phi(s, a) - y)^2],
             y = r + gamma (1 - terminated) Q_phi'(s', mu_theta'(s'))
    actor:   max_theta E[Q_phi(s, mu_theta(s))]     (gradient: dQ/da * dmu/dtheta)

with target networks `phi'`, `theta'` that follow the online ones by Polyak averaging,
`phi' <- tau phi + (1 - tau) phi'`, after every update. Actions live in [-1, 1] (a `tanh`
output; `mp.rl.replay.ScaledCollector` maps them to the environment's box), and exploration
adds noise to `mu(s)` when collecting data (course: DDPG "adds random noise when selecting
an action"): Gaussian, or an Ornstein-Uhlenbeck process (temporally correlated,
`x += theta (0 - x) dt + sigma sqrt(dt) N(0, 1)`), clipped to the box.

TD3 ("twin delayed DDPG") fixes DDPG's overestimation with three changes:

* twin critics, and the smaller of the two target critics in the target,
      y = r + gamma (1 - terminated) min_i Q_phi_i'(s', a~),
* target-policy smoothing: a~ = clip(mu_theta'(s') + clip(eps, -c, c), -1, 1), eps ~ N(0, s^2),
  so that the target does not exploit a narrow peak of the critic,
* delayed actor updates: the actor and all targets move every `policy_delay` critic steps.

DDPG is the special case of one critic, no smoothing, delay 1 (`DDPGTask`); `TD3Task` has
SB3's defaults (two critics, noise 0.2 clipped at 0.5, delay 2). Both critics minimise the
sum of their mean squared errors under one optimizer; the actor ascends the first critic.
Truncated episodes bootstrap from their real next observation; terminated ones do not.

Logged: `losses/td` (critic loss), `losses/actor` (-Q of the actor's actions, on the steps
the actor moved), `charts/q_values`.

Course: ch6.2 Deep Reinforcement Learning (Deep Deterministic Policy Gradients: actor-critic,
off-policy, (deep) Q-learning with deterministic policy gradients, noise for exploration).
"""

import keras
import numpy as np
import tensorflow as tf

from mp.engine.task import float32, minimize
from mp.rl import replay
from mp.rl.networks import _build_body_and_head
from mp.rl.onpolicy import BiasCorrectedAdam

NOISE_TYPES = ("normal", "ornstein-uhlenbeck", "none")


@keras.saving.register_keras_serializable(package="mp")
class DeterministicActor(keras.Model):
    """`mu(s)` in [-1, 1]^A: an MLP with a `tanh` output (float32).

    Args:
      action_dim: the action dimension.
      hidden_units, activation: the hidden layers.
    """

    def __init__(self, action_dim, *, hidden_units=(400, 300), activation="relu", **kwargs):
        super().__init__(**kwargs)
        if int(action_dim) < 1:
            raise ValueError(f"action_dim must be >= 1. Received: action_dim={action_dim}")
        self.action_dim = int(action_dim)
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.activation = activation
        self.hidden = replay.mlp(self.hidden_units, activation)
        self.head = keras.layers.Dense(self.action_dim, kernel_initializer=replay.torch_kernel(),
                                       name="head")

    def call(self, observations):
        return tf.tanh(float32(self.head(self.hidden(observations))))

    def build(self, input_shape):
        _build_body_and_head(self, input_shape)

    def get_config(self):
        return super().get_config() | {"action_dim": self.action_dim,
                                       "hidden_units": list(self.hidden_units),
                                       "activation": self.activation}


@keras.saving.register_keras_serializable(package="mp")
class QCritic(keras.Model):
    """`Q(s, a)`: an MLP on the concatenation `[s, a]` -> one float32 value, shape [B].

    Call it on `tf.concat([observations, actions], -1)`, or use `q(observations, actions)`.

    Args:
      hidden_units, activation: the hidden layers.
    """

    def __init__(self, *, hidden_units=(400, 300), activation="relu", **kwargs):
        super().__init__(**kwargs)
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.activation = activation
        self.hidden = replay.mlp(self.hidden_units, activation)
        self.head = keras.layers.Dense(1, kernel_initializer=replay.torch_kernel(), name="head")

    def call(self, inputs):
        return float32(self.head(self.hidden(inputs)))[..., 0]

    def q(self, observations, actions):
        return self(tf.concat([observations, tf.cast(actions, observations.dtype)], axis=-1))

    def build(self, input_shape):
        _build_body_and_head(self, input_shape)

    def get_config(self):
        return super().get_config() | {"hidden_units": list(self.hidden_units),
                                       "activation": self.activation}


def smoothed_target_actions(actions, noise, noise_clip):
    """TD3's target-policy smoothing: `clip(actions + clip(noise, -c, c), -1, 1)`."""
    return tf.clip_by_value(actions + tf.clip_by_value(noise, -noise_clip, noise_clip), -1.0, 1.0)


def twin_targets(rewards, terminated, next_q_values, gamma):
    """`r + gamma (1 - terminated) min_i Q_i'(s', a~)`; `next_q_values` [n_critics, B] (one
    critic: the DDPG target)."""
    return rewards + gamma * (1.0 - terminated) * tf.reduce_min(next_q_values, axis=0)


class DDPGTask(replay.OffPolicyTask):
    """DDPG as an engine Task; with `n_critics=2, policy_delay=2, target_policy_noise=0.2`
    it is TD3 (`TD3Task`).

    Args (besides `replay.OffPolicyTask`'s, whose defaults here are SB3's: 1 env, one
    gradient step per env step, buffer 1M, batch 256, learning_starts 100, Adam 1e-3,
    tau 0.005, gamma 0.99, [400, 300] ReLU):
      n_critics: critics (2: TD3's twin minimum).
      policy_delay: critic steps per actor (and target) step.
      target_policy_noise, target_noise_clip: target-policy smoothing (0: none).
      noise_type: exploration noise, "normal", "ornstein-uhlenbeck" or "none".
      noise_std: its standard deviation (sigma), in actions scaled to [-1, 1].
      ou_theta, ou_dt: the Ornstein-Uhlenbeck process's mean reversion and time step.
    """

    name = "ddpg"
    discrete = False
    output_names = ("losses/td", "losses/actor", "charts/q_values", "charts/actor_steps")
    DEFAULTS = dict(train_frequency=1, gradient_steps=1, buffer_size=1_000_000, batch_size=256,
                    learning_starts=100, learning_rate=1e-3, tau=0.005, hidden_units=(400, 300))
    TD3 = dict(n_critics=1, policy_delay=1, target_policy_noise=0.0)

    def __init__(self, env_id, *, n_critics=None, policy_delay=None, target_policy_noise=None,
                 target_noise_clip=0.5, noise_type="normal", noise_std=0.1, ou_theta=0.15,
                 ou_dt=1e-2, **kwargs):
        super().__init__(env_id, **(self.DEFAULTS | kwargs))
        given = dict(n_critics=n_critics, policy_delay=policy_delay,
                     target_policy_noise=target_policy_noise)
        options = self.TD3 | {k: v for k, v in given.items() if v is not None}
        for key in ("n_critics", "policy_delay"):
            if not isinstance(options[key], (int, np.integer)) or options[key] < 1:
                raise ValueError(
                    f"{key} must be a positive integer. Received: {key}={options[key]}")
        if noise_type not in NOISE_TYPES:
            raise ValueError(f"noise_type must be one of {NOISE_TYPES}. Received: {noise_type!r}")
        if options["target_policy_noise"] < 0 or target_noise_clip < 0 or noise_std < 0:
            raise ValueError("target_policy_noise, target_noise_clip and noise_std must be >= 0")
        self.n_critics, self.policy_delay = int(options["n_critics"]), int(options["policy_delay"])
        self.target_policy_noise = float(options["target_policy_noise"])
        self.target_noise_clip = float(target_noise_clip)
        self.noise_type, self.noise_std = noise_type, float(noise_std)
        self.ou_theta, self.ou_dt = float(ou_theta), float(ou_dt)

    def build_networks(self, observation_shape, action_space):
        action_dim = int(action_space.shape[0])
        options = dict(hidden_units=self.hidden_units, activation=self.activation)
        self.actor = DeterministicActor(action_dim, **options, name="actor")
        self.actor_target = DeterministicActor(action_dim, **options, name="actor_target")
        self.critics = [QCritic(**options, name=f"critic_{i}") for i in range(self.n_critics)]
        self.critic_targets = [QCritic(**options, name=f"critic_target_{i}")
                               for i in range(self.n_critics)]
        for network in (self.actor, self.actor_target):
            network.build((None, *observation_shape))
        for network in self.critics + self.critic_targets:
            network.build((None, observation_shape[0] + action_dim))
        self.optimizers = {
            "critic": BiasCorrectedAdam(self.learning_rate, epsilon=self.adam_epsilon),
            "actor": BiasCorrectedAdam(self.learning_rate, epsilon=self.adam_epsilon),
        }
        self.ou_state = tf.Variable(tf.zeros((self.num_envs, action_dim)), trainable=False,
                                    name="ou_state")
        self.act_deterministic = tf.function(
            self.actor, input_signature=[tf.TensorSpec((None, *observation_shape), tf.float32)])

    def networks(self):
        items = {"actor": self.actor, "actor_target": self.actor_target,
                 "ou_state": self.ou_state}
        for i in range(self.n_critics):
            items |= {f"critic_{i}": self.critics[i], f"critic_target_{i}": self.critic_targets[i]}
        return items

    def critic_variables(self, target=False):
        critics = self.critic_targets if target else self.critics
        return [v for c in critics for v in (c.variables if target else c.trainable_variables)]

    def target_pairs(self):
        return [([v for c in self.critics for v in c.variables], self.critic_variables(True)),
                (self.actor.variables, self.actor_target.variables)]

    def optimizer_variables(self, name):
        return self.critic_variables() if name == "critic" else self.actor.trainable_variables

    def update_targets_every_step(self):
        return True

    def export(self, path):
        self.actor.save(path)

    # --- the update ---------------------------------------------------------------

    def targets(self, sample, noise=None):
        """The critics' regression targets [B]; `noise` [B, A] is the smoothing noise
        (drawn from the task's generator when `None` and `target_policy_noise > 0`)."""
        next_obs = sample["next_observations"]
        next_actions = self.actor_target(next_obs)
        if noise is None and self.target_policy_noise > 0:
            noise = self.target_policy_noise * self.generator.normal(tf.shape(next_actions))
        if noise is not None:
            next_actions = smoothed_target_actions(next_actions, noise, self.target_noise_clip)
        next_q = tf.stack([c.q(next_obs, next_actions) for c in self.critic_targets])
        return tf.stop_gradient(
            twin_targets(sample["rewards"], sample["terminated"], next_q, self.gamma))

    def critic_loss(self, sample, targets):
        """The sum over critics of the mean squared error to the targets; and mean Q(s, a)."""
        obs, actions = sample["observations"], sample["actions"]
        q = [c.q(obs, actions) for c in self.critics]
        loss = tf.add_n([tf.reduce_mean(tf.square(qi - targets)) for qi in q])
        return loss, tf.reduce_mean(q[0])

    def actor_loss(self, observations):
        """`-mean Q_1(s, mu(s))`: the deterministic policy gradient through the critic."""
        return -tf.reduce_mean(self.critics[0].q(observations, self.actor(observations)))

    def update(self, sample):
        targets = self.targets(sample)
        with tf.GradientTape() as tape:
            critic_loss, q_mean = self.critic_loss(sample, targets)
        minimize(self.optimizers["critic"], tape, critic_loss, self.critic_variables())

        def actor_step():
            with tf.GradientTape() as actor_tape:
                loss = self.actor_loss(sample["observations"])
            minimize(self.optimizers["actor"], actor_tape, loss, self.actor.trainable_variables)
            self.move_targets()
            return tf.stack([loss, 1.0])

        actor = tf.cond(self.updates % self.policy_delay == 0, actor_step, lambda: tf.zeros(2))
        return tf.stack([critic_loss, actor[0], q_mean, actor[1]])

    def outputs_from(self, sums, n):
        outputs = replay.OffPolicyTask.outputs_from(self, sums, n)  # no super() in autograph
        actor_steps = sums[3]
        outputs["losses/actor"] = sums[1] / tf.maximum(actor_steps, 1.0)
        outputs["charts/actor_steps"] = actor_steps
        return outputs

    # --- acting ---------------------------------------------------------------------

    def behaviour(self):
        """`clip(mu(s) + noise, -1, 1)` on a NumPy copy of today's actor; uniform in [-1, 1]
        before `learning_starts`. The Ornstein-Uhlenbeck state is a checkpointed variable."""
        forward = replay.numpy_mlp(self.actor.hidden.layers, self.actor.head, self.activation,
                                   output=np.tanh)
        if forward is None:
            forward = lambda obs: self.actor(obs).numpy()  # noqa: E731
        ou_state = self.ou_state
        step = [int(self.collector.env_steps.numpy())]

        def act(observations, rng):
            n = len(observations)
            shape = (n, *self.collector.action_space.shape)
            random = self.random_actions(rng, n)
            if self.noise_type == "normal":
                noise = self.noise_std * rng.standard_normal(shape)
            elif self.noise_type == "ornstein-uhlenbeck":
                x = ou_state.numpy()
                noise = x + self.ou_theta * (0.0 - x) * self.ou_dt + (
                    self.noise_std * np.sqrt(self.ou_dt) * rng.standard_normal(shape))
                ou_state.assign(noise)
            else:
                noise = 0.0
            before = step[0] < self.learning_starts
            step[0] += n
            if before:
                return random
            return np.clip(forward(observations) + noise, -1.0, 1.0).astype(np.float32)

        return act


class TD3Task(DDPGTask):
    """TD3: `DDPGTask` with twin critics, target-policy smoothing and delayed actor updates
    (SB3's defaults: 2 critics, noise 0.2 clipped at 0.5, delay 2)."""

    name = "td3"
    TD3 = dict(n_critics=2, policy_delay=2, target_policy_noise=0.2)
