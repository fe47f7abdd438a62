"""Deep Q-networks (Mnih et al., 2015) and Double DQN (van Hasselt et al., 2016), engine Tasks.

DQN is the course's Q-learning update with a neural Q-function `Q_theta(s, a)` (one output
per action). The table update `Q(S,A) += alpha [R + gamma max_a Q(S',a) - Q(S,A)]` becomes
a regression of `Q_theta(s, a)` on the bootstrapped target

    y = r + gamma (1 - terminated) max_a' Q_target(s', a')                       DQN
    y = r + gamma (1 - terminated) Q_target(s', argmax_a' Q_theta(s', a'))       Double DQN

over minibatches replayed uniformly from a buffer (`mp.rl.replay`), with the Huber loss
`mean(huber(Q_theta(s, a) - y))` (quadratic within 1 of the target, linear beyond: a TD
error of an outlier does not blow up the gradient), the gradient clipped to a global norm
(10, as SB3) and Adam. Three choices keep the regression stable:

* the target network `Q_target`, a copy of `Q_theta` refreshed every `target_update_interval`
  env steps (hard copy, `tau = 1`; or Polyak-averaged with `tau < 1`), or moved by a small
  `tau` after every gradient step (`polyak_every_step`, as DDPG): the target does not follow
  each gradient step in full;
* experience replay: uncorrelated minibatches, old experience re-used (off-policy: the
  greedy target policy learns from the epsilon-greedy behaviour);
* Double DQN: `max` over noisy estimates is biased upwards; letting the online network pick
  the action and the target network evaluate it decouples selection from evaluation.

Behaviour is epsilon-greedy (course: Q-learning explores with an epsilon-greedy policy while
it learns the greedy one), epsilon falling linearly from `exploration_initial_eps` to
`exploration_final_eps` over the first `exploration_fraction` of the run's env steps, and
uniformly random before `learning_starts`. A transition that hit the time limit
(`truncated`) bootstraps from its real next observation; only `terminated` ends the sum.

Logged: `losses/td` (the Huber loss), `charts/q_values` (mean Q(s, a) of the replayed
actions), `charts/epsilon`.

Course: ch6.1.3 Temporal Difference Learning (Q-learning, off-policy, epsilon-greedy);
ch6.2 Deep Reinforcement Learning (Q-learning tricks: experience replay).
"""

import keras
import numpy as np
import tensorflow as tf

from mp.engine.task import float32, minimize
from mp.rl import replay
from mp.rl.networks import _build_body_and_head
from mp.rl.onpolicy import BiasCorrectedAdam, LinearDecay


@keras.saving.register_keras_serializable(package="mp")
class QNetwork(keras.Model):
    """`Q(s, .)`: an MLP from observations to one float32 value per action, [B, num_actions].

    Args:
      num_actions: the number of discrete actions.
      hidden_units: widths of the hidden layers.
      activation: their activation.
    """

    def __init__(self, num_actions, *, hidden_units=(64, 64), activation="relu", **kwargs):
        super().__init__(**kwargs)
        if int(num_actions) < 1:
            raise ValueError(f"num_actions must be >= 1. Received: num_actions={num_actions}")
        self.num_actions = int(num_actions)
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.activation = activation
        self.hidden = replay.mlp(self.hidden_units, activation)
        self.head = keras.layers.Dense(self.num_actions, kernel_initializer=replay.torch_kernel(),
                                       name="head")

    def call(self, observations):
        return float32(self.head(self.hidden(observations)))

    def build(self, input_shape):
        _build_body_and_head(self, input_shape)

    def get_config(self):
        return super().get_config() | {"num_actions": self.num_actions,
                                       "hidden_units": list(self.hidden_units),
                                       "activation": self.activation}


def q_learning_targets(rewards, terminated, next_q_target, gamma, next_q_online=None):
    """The bootstrapped targets `y` [B] (see the module docstring).

    Args:
      rewards, terminated: [B] float32.
      next_q_target: [B, A] `Q_target(s', .)`.
      gamma: the discount.
      next_q_online: [B, A] `Q_theta(s', .)` for Double DQN (it picks the action), or `None`.
    """
    if next_q_online is None:
        next_values = tf.reduce_max(next_q_target, axis=-1)
    else:
        best = tf.argmax(next_q_online, axis=-1, output_type=tf.int32)
        next_values = tf.gather(next_q_target, best, axis=-1, batch_dims=1)
    return rewards + gamma * (1.0 - terminated) * next_values


def huber(x, delta=1.0):
    """`x^2 / 2` where `|x| <= delta`, `delta (|x| - delta / 2)` beyond (PyTorch's smooth L1
    for delta = 1)."""
    a = tf.abs(x)
    return tf.where(a <= delta, 0.5 * tf.square(x), delta * (a - 0.5 * delta))


def linear_epsilon(env_steps, total_env_steps, fraction, start, end):
    """Epsilon after `env_steps`: from `start` to `end` linearly over `fraction *
    total_env_steps` env steps, then `end` (SB3's schedule)."""
    span = max(fraction * total_env_steps, 1e-9)
    progress = tf.minimum(tf.cast(env_steps, tf.float32) / span, 1.0) if tf.is_tensor(
        env_steps) else min(env_steps / span, 1.0)
    return start + progress * (end - start)


class DQNTask(replay.OffPolicyTask):
    """DQN as an engine Task; `double=True` (or `DoubleDQNTask`) is Double DQN.

    Args (besides `replay.OffPolicyTask`'s, whose defaults here are SB3's DQN ones: 1 env,
    train_frequency 4, 1 gradient step, buffer 1M, batch 32, learning_starts 100,
    learning rate 1e-4, tau 1, gamma 0.99, [64, 64] ReLU):
      double: Double DQN targets.
      target_update_interval: env steps between target-network updates.
      exploration_fraction, exploration_initial_eps, exploration_final_eps: the linear
        epsilon schedule.
      max_grad_norm: clip the gradient to this global norm; `None` does not clip.
      anneal_lr: decay the learning rate linearly to zero over the run's updates (as the
        on-policy methods' `anneal_lr`; read from the engine's step counter).
      anneal_fraction: with `anneal_lr`, the rate reaches zero after this fraction of the
        updates and stays there (the rest of the run acts with a frozen network, so the
        running mean of training returns measures one settled policy).
      polyak_every_step: move the target network by `tau` after every gradient step (as
        DDPG/TD3) instead of every `target_update_interval` env steps.
    """

    name = "dqn"
    discrete = True
    output_names = ("losses/td", "charts/q_values")
    extra_names = ("charts/epsilon",)
    DEFAULTS = dict(train_frequency=4, gradient_steps=1, buffer_size=1_000_000, batch_size=32,
                    learning_starts=100, learning_rate=1e-4, tau=1.0, hidden_units=(64, 64))

    def __init__(self, env_id, *, double=False, target_update_interval=10_000,
                 exploration_fraction=0.1, exploration_initial_eps=1.0,
                 exploration_final_eps=0.05, max_grad_norm=10.0, anneal_lr=False,
                 anneal_fraction=1.0, polyak_every_step=False, **kwargs):
        super().__init__(env_id, **(self.DEFAULTS | kwargs))
        if int(target_update_interval) < 1:
            raise ValueError("target_update_interval must be >= 1. Received: "
                             f"target_update_interval={target_update_interval}")
        for key, value in (("exploration_fraction", exploration_fraction),
                           ("exploration_initial_eps", exploration_initial_eps),
                           ("exploration_final_eps", exploration_final_eps)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{key} must be in [0, 1]. Received: {key}={value}")
        self.double = bool(double)
        self.target_update_interval = int(target_update_interval)
        self.exploration = (float(exploration_fraction), float(exploration_initial_eps),
                            float(exploration_final_eps))
        self.max_grad_norm = max_grad_norm
        self.anneal_lr = bool(anneal_lr)
        if not 0.0 < anneal_fraction <= 1.0:
            raise ValueError("anneal_fraction must be in (0, 1]. Received: "
                             f"anneal_fraction={anneal_fraction}")
        self.anneal_updates = max(1, round(float(anneal_fraction) * self.total_updates))
        self.polyak_every_step = bool(polyak_every_step)
        self.total_env_steps = self.total_updates * self.train_frequency * self.num_envs

    def update_targets_every_step(self):
        return self.polyak_every_step

    def epsilon(self, env_steps):
        fraction, start, end = self.exploration
        return linear_epsilon(env_steps, self.total_env_steps, fraction, start, end)

    def build_networks(self, observation_shape, action_space):
        options = dict(hidden_units=self.hidden_units, activation=self.activation)
        self.q = QNetwork(int(action_space.n), **options, name="q")
        self.q_target = QNetwork(int(action_space.n), **options, name="q_target")
        for network in (self.q, self.q_target):
            network.build((None, *observation_shape))
        rate = (LinearDecay(self.learning_rate, self.anneal_updates, self.global_step)
                if self.anneal_lr else self.learning_rate)
        self.optimizers = {"q": BiasCorrectedAdam(rate, epsilon=self.adam_epsilon)}
        self.act_deterministic = tf.function(
            lambda obs: tf.argmax(self.q(obs), axis=-1, output_type=tf.int32),
            input_signature=[tf.TensorSpec((None, *observation_shape), tf.float32)])

    def networks(self):
        return {"q": self.q, "q_target": self.q_target}

    def target_pairs(self):
        return [(self.q.variables, self.q_target.variables)]

    def optimizer_variables(self, name):
        return self.q.trainable_variables

    def export(self, path):
        self.q.save(path)

    def loss(self, sample):
        """The Huber TD loss of a sampled minibatch and the mean Q(s, a); the targets carry
        no gradient."""
        next_obs = sample["next_observations"]
        targets = q_learning_targets(
            sample["rewards"], sample["terminated"], self.q_target(next_obs), self.gamma,
            self.q(next_obs) if self.double else None)
        targets = tf.stop_gradient(targets)
        q = tf.gather(self.q(sample["observations"]), sample["actions"], axis=-1, batch_dims=1)
        return tf.reduce_mean(huber(q - targets)), tf.reduce_mean(q)

    def update(self, sample):
        with tf.GradientTape() as tape:
            loss, q_mean = self.loss(sample)
        minimize(self.optimizers["q"], tape, loss, self.q.trainable_variables, self.max_grad_norm)
        if self.polyak_every_step:
            self.move_targets()
        return tf.stack([loss, q_mean])

    def extra_outputs(self, env_steps):
        return {"charts/epsilon": self.epsilon(env_steps)}

    def behaviour(self):
        """Epsilon-greedy on a NumPy copy of today's Q-network; uniform before
        `learning_starts`."""
        forward = replay.numpy_mlp(self.q.hidden.layers, self.q.head, self.activation)
        if forward is None:
            forward = lambda obs: self.q(obs).numpy()  # noqa: E731
        step = [int(self.collector.env_steps.numpy())]

        def act(observations, rng):
            n = len(observations)
            explore = rng.random(n) < self.epsilon(step[0])
            random = self.random_actions(rng, n)
            if step[0] < self.learning_starts:
                explore[:] = True
            step[0] += n
            greedy = np.argmax(forward(observations), axis=-1).astype(np.int32)
            return np.where(explore, random, greedy)

        return act


class DoubleDQNTask(DQNTask):
    """Double DQN: `DQNTask(double=True)` under its own algorithm name."""

    name = "double_dqn"

    def __init__(self, env_id, *, double=True, **kwargs):
        super().__init__(env_id, double=double, **kwargs)
