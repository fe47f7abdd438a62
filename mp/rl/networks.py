"""Policies and value functions of deep RL as Keras 3 models; policies return TFP distributions.

    PolicyNetwork(num_actions, discrete=True)   observation -> tfd.Categorical(logits)
    PolicyNetwork(action_dim, discrete=False)   observation -> diagonal Gaussian with a
                                                state-independent log standard deviation:
        action_bound="clip"   tfd.Independent(tfd.Normal(mu(s), exp(log_std)), 1); the
                              environment receives the sample clipped to its box (the
                              log-probability is the unclipped sample's, as in SB3)
        action_bound="tanh"   a = low + (high - low) (tanh(u) + 1) / 2, u ~ N(mu, sigma): a
                              tfd.TransformedDistribution whose log-probability carries the
                              change of variables,
                                log pi(a|s) = sum_j [log N(u_j; mu_j, sigma_j)
                                              - log(1 - tanh(u_j)^2) - log((high_j - low_j) / 2)]
                              (no closed-form entropy: the base Gaussian's stands in for it)
    ValueNetwork()                              observation -> V(s), a scalar per observation

The policy gradient needs only `log pi(a|s)` and its gradient; the entropy bonus the
distribution's entropy; the trust-region methods the KL divergence between the old and
the new distribution: all three come from `tfp.distributions` (`log_prob`, `entropy`,
`kl_divergence`). The networks are MLPs with orthogonal initialisation (gain sqrt(2) in
the hidden layers, 0.01 for the policy's head, 1 for the value head, as in the PPO
implementations that the benchmarks compare with). Outputs are float32 under any mixed
precision policy (`mp.engine.task.float32`): logits, means and log-probabilities must
not be rounded to 16 bits.

Course: ch6.2 Deep Reinforcement Learning (the policy as a stochastic function
approximator parametrised by a neural network; actor and critic).
"""

import math

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from mp.engine.task import float32

tfd = tfp.distributions
tfb = tfp.bijectors

ACTION_BOUNDS = ("clip", "tanh")


def _mlp(hidden_units, activation):
    # a Sequential, not a list: tf.train.Checkpoint tracks attributes, not a list's layers
    return keras.Sequential([
        keras.layers.Dense(
            units,
            activation=activation,
            kernel_initializer=keras.initializers.Orthogonal(math.sqrt(2.0)),
            name=f"hidden_{i}",
        )
        for i, units in enumerate(hidden_units)
    ], name="body")


def _build_body_and_head(model, input_shape):
    """Builds `model.hidden` (the MLP) and `model.head` for inputs of `input_shape`."""
    shape = tuple(input_shape)
    model.hidden.build(shape)
    units = model.hidden_units[-1] if model.hidden_units else shape[-1]
    model.head.build((*shape[:-1], units))
    model.built = True


@keras.saving.register_keras_serializable(package="mp")
class PolicyNetwork(keras.Model):
    """A stochastic policy: `distribution(observations)` is a TFP distribution over actions.

    `call` returns the float32 parameters: the logits [B, num_actions], or the Gaussian's
    means and log standard deviations side by side [B, 2 * action_dim].

    Args:
      action_size: the number of actions (discrete) or the action dimension (continuous).
      discrete: Categorical policy, else diagonal Gaussian.
      hidden_units: widths of the hidden layers.
      activation: their activation.
      log_std_init: the initial log standard deviation (continuous).
      action_bound: "clip" or "tanh" (continuous; see the module docstring).
      low, high: the action box (continuous), lists of `action_size` numbers.
    """

    def __init__(
        self,
        action_size,
        *,
        discrete=True,
        hidden_units=(64, 64),
        activation="tanh",
        log_std_init=0.0,
        action_bound="clip",
        low=None,
        high=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if int(action_size) < 1:
            raise ValueError(f"action_size must be >= 1. Received: action_size={action_size}")
        if action_bound not in ACTION_BOUNDS:
            raise ValueError(
                f"action_bound must be one of {ACTION_BOUNDS}. Received: {action_bound!r}"
            )
        self.action_size = int(action_size)
        self.discrete = bool(discrete)
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.activation = activation
        self.log_std_init = float(log_std_init)
        self.action_bound = action_bound
        self.low = None if low is None else [float(x) for x in np.ravel(low)]
        self.high = None if high is None else [float(x) for x in np.ravel(high)]
        if not self.discrete and action_bound == "tanh" and (self.low is None or self.high is None):
            raise ValueError("action_bound='tanh' needs the action box: pass low and high")
        self.hidden = _mlp(self.hidden_units, activation)
        self.head = keras.layers.Dense(
            self.action_size,
            kernel_initializer=keras.initializers.Orthogonal(0.01),
            name="head",
        )
        self.log_std = None
        if not self.discrete:
            self.log_std = self.add_weight(
                shape=(self.action_size,),
                initializer=keras.initializers.Constant(self.log_std_init),
                name="log_std",
            )

    def call(self, observations):
        x = self.hidden(observations)
        params = float32(self.head(x))
        if self.discrete:
            return params
        log_std = tf.cast(self.log_std, params.dtype) * tf.ones_like(params)
        return tf.concat([params, log_std], axis=-1)

    def distribution_from(self, params):
        """The action distribution given `call`'s output (no second forward pass)."""
        if self.discrete:
            return tfd.Categorical(logits=params)
        mean, log_std = tf.split(params, 2, axis=-1)
        base = tfd.Independent(tfd.Normal(mean, tf.exp(log_std)), reinterpreted_batch_ndims=1)
        if self.action_bound == "clip":
            return base
        low = tf.constant(self.low, tf.float32)
        half = tf.constant(self.high, tf.float32) / 2.0 - low / 2.0
        squash = tfb.Chain([tfb.Shift(low + half), tfb.Scale(half), tfb.Tanh()])
        return tfd.TransformedDistribution(base, squash)

    def distribution(self, observations):
        """`pi(. | observations)` as a TFP distribution (batch shape [B])."""
        return self.distribution_from(self(observations))

    def log_prob(self, params, actions):
        """`log pi(actions | s)` given `call`'s output; a squashed action is first kept
        strictly inside the box (atanh of the bound is infinite)."""
        dist = self.distribution_from(params)
        if not self.discrete and self.action_bound == "tanh":
            low, high = tf.constant(self.low), tf.constant(self.high)
            eps = 1e-6 * (high - low)
            actions = tf.clip_by_value(actions, low + eps, high - eps)
        return dist.log_prob(actions)

    def entropy(self, params):
        """The entropy of `pi(. | s)`; for a squashed Gaussian the base Gaussian's (the
        squashed one has no closed form), a constant offset that the bonus can use alike."""
        dist = self.distribution_from(params)
        if not self.discrete and self.action_bound == "tanh":
            return dist.distribution.entropy()
        return dist.entropy()

    def build(self, input_shape):
        _build_body_and_head(self, input_shape)

    def mode(self, params):
        """The deterministic action: argmax of the logits, the (squashed) mean."""
        if self.discrete:
            return tf.argmax(params, axis=-1, output_type=tf.int32)
        mean = params[..., : self.action_size]
        if self.action_bound == "tanh":
            return self.distribution_from(params).bijector.forward(mean)
        return mean

    def numpy_sampler(self):
        """`(observations, rng) -> actions`: a NumPy copy of the policy with today's weights
        that samples as the distribution does, for acting one step at a time (a call of a
        `tf.function` costs ~0.5 ms, the NumPy MLP ~20 us). `None` for an activation it
        does not know (act through TF then)."""
        functions = {"tanh": np.tanh, "relu": lambda x: np.maximum(x, 0.0), "linear": lambda x: x}
        if self.activation not in functions:
            return None
        activation = functions[self.activation]
        layers = [(d.kernel.numpy(), d.bias.numpy()) for d in self.hidden.layers]
        head = (self.head.kernel.numpy(), self.head.bias.numpy())
        std = None if self.discrete else np.exp(self.log_std.numpy())
        low, high = (None, None) if self.discrete else (np.array(self.low), np.array(self.high))

        def sample(observations, rng):
            x = np.asarray(observations, np.float32)
            for kernel, bias in layers:
                x = activation(x @ kernel + bias)
            params = x @ head[0] + head[1]
            if self.discrete:  # Gumbel-max: argmax(logits + Gumbel noise) ~ Categorical(logits)
                return np.argmax(params + rng.gumbel(size=params.shape), axis=-1).astype(np.int32)
            u = (params + std * rng.standard_normal(params.shape)).astype(np.float32)
            if self.action_bound == "tanh":
                return (low + (high - low) * (np.tanh(u) + 1.0) / 2.0).astype(np.float32)
            return u

        return sample

    def get_config(self):
        return super().get_config() | {
            "action_size": self.action_size,
            "discrete": self.discrete,
            "hidden_units": list(self.hidden_units),
            "activation": self.activation,
            "log_std_init": self.log_std_init,
            "action_bound": self.action_bound,
            "low": self.low,
            "high": self.high,
        }


@keras.saving.register_keras_serializable(package="mp")
class ValueNetwork(keras.Model):
    """The critic `V(s)`: an MLP with one float32 output per observation, shape [B].

    Args:
      hidden_units: widths of the hidden layers.
      activation: their activation.
    """

    def __init__(self, *, hidden_units=(64, 64), activation="tanh", **kwargs):
        super().__init__(**kwargs)
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.activation = activation
        self.hidden = _mlp(self.hidden_units, activation)
        self.head = keras.layers.Dense(
            1, kernel_initializer=keras.initializers.Orthogonal(1.0), name="head"
        )

    def call(self, observations):
        x = self.hidden(observations)
        return float32(self.head(x))[..., 0]

    def build(self, input_shape):
        _build_body_and_head(self, input_shape)

    def get_config(self):
        return super().get_config() | {
            "hidden_units": list(self.hidden_units),
            "activation": self.activation,
        }


def for_spaces(observation_space, action_space, *, hidden_units=(64, 64), activation="tanh",
               log_std_init=0.0, action_bound="clip"):
    """A built `(PolicyNetwork, ValueNetwork)` pair for gymnasium spaces.

    Raises:
      ValueError: for an observation space that is not a flat Box, or an action space that is
        neither Discrete nor a flat Box.
    """
    import gymnasium as gym

    if not isinstance(observation_space, gym.spaces.Box) or len(observation_space.shape) != 1:
        raise ValueError(
            f"observations must be a flat Box. Received: observation_space={observation_space}"
        )
    options = dict(hidden_units=hidden_units, activation=activation)
    if isinstance(action_space, gym.spaces.Discrete):
        policy = PolicyNetwork(int(action_space.n), discrete=True, **options, name="policy")
    elif isinstance(action_space, gym.spaces.Box) and len(action_space.shape) == 1:
        policy = PolicyNetwork(
            action_space.shape[0],
            discrete=False,
            log_std_init=log_std_init,
            action_bound=action_bound,
            low=action_space.low,
            high=action_space.high,
            **options,
            name="policy",
        )
    else:
        raise ValueError(
            f"actions must be Discrete or a flat Box. Received: action_space={action_space}"
        )
    value = ValueNetwork(**options, name="value")
    dummy = tf.zeros((1, observation_space.shape[0]))
    policy(dummy)
    value(dummy)
    return policy, value
