"""REINFORCE (Williams, 1992): the Monte Carlo policy gradient, with a baseline.

The policy-gradient theorem with the log-derivative ("REINFORCE") trick,

    grad J(theta) = E[ sum_t grad log pi_theta(a_t | s_t) (G_t - b(s_t)) ],

needs no model of the environment: the return `G_t = sum_k gamma^k r_{t+k}` of the sampled
episode stands in for `Q(s_t, a_t)`. Subtracting a baseline `b` that does not depend on the
action keeps the estimate unbiased and lowers its variance. Two baselines:

    baseline="moving_average"   b = a running mean of the returns, b <- b + beta (mean G - b)
    baseline="value"            b(s) = V_phi(s), regressed on the returns,
                                minimising E[(V_phi(s_t) - G_t)^2] (a second optimizer)

Loss minimised: `- mean_t [log pi_theta(a_t | s_t) (G_t - b(s_t))]` (the course's factor
`gamma^t` is dropped, as is customary). The estimator is Monte Carlo: only steps whose
episode ends within the rollout have a complete return and enter the loss (`complete`); the
steps of an episode still running at the rollout's end are learnt from in the next rollout,
which continues it, so a rollout of T steps per environment should be longer than typical
episodes. A time-limit truncation ends the return without a bootstrap (no critic is
assumed); with `baseline="value"`, `bootstrap_truncation=True` adds `gamma V(final obs)`.

Course: ch6.2 Deep Reinforcement Learning (REINFORCE: unbiased, high variance; the
REINFORCE trick makes the update independent of the transition probabilities).
"""

import tensorflow as tf

from mp.engine.task import minimize
from mp.rl import advantages
from mp.rl.onpolicy import BiasCorrectedAdam, OnPolicyTask

BASELINES = ("moving_average", "value", "none")


def complete_steps(terminated, truncated):
    """[T, N] 1.0 where the step's episode ends within the rollout (its return is known)."""
    done = tf.maximum(tf.cast(terminated, tf.float32), tf.cast(truncated, tf.float32))
    return tf.scan(
        lambda later, d: tf.maximum(d, later), done, initializer=tf.zeros_like(done[0]),
        reverse=True,
    )


def reinforce_loss(log_probs, returns, baseline, mask):
    """`- sum(mask * log pi * (G - b)) / sum(mask)`: the REINFORCE surrogate over complete steps."""
    weight = tf.stop_gradient((returns - baseline) * mask)
    return -tf.reduce_sum(log_probs * weight) / tf.maximum(tf.reduce_sum(mask), 1.0)


class ReinforceTask(OnPolicyTask):
    """REINFORCE (module docstring). Arguments beyond `OnPolicyTask`'s:

    Args:
      baseline: "moving_average", "value" or "none".
      baseline_rate: beta of the moving average.
      value_learning_rate: the critic's learning rate (baseline="value").
      value_epochs: critic gradient steps per update.
      normalize_advantage: divide `G - b` by its standard deviation over the rollout.
      bootstrap_truncation: see the module docstring.
    """

    name = "reinforce"

    def __init__(self, env_id, *, baseline="value", baseline_rate=0.05, value_learning_rate=1e-3,
                 value_epochs=5, normalize_advantage=True, bootstrap_truncation=False, **kwargs):
        kwargs.setdefault("num_steps", 500)
        kwargs.setdefault("learning_rate", 1e-3)
        kwargs.setdefault("max_grad_norm", None)
        super().__init__(env_id, **kwargs)
        if baseline not in BASELINES:
            raise ValueError(
                f"baseline must be one of {BASELINES}. Received: baseline={baseline!r}"
            )
        self.baseline = baseline
        self.baseline_rate = float(baseline_rate)
        self.value_learning_rate = float(value_learning_rate)
        self.value_epochs = int(value_epochs)
        self.normalize_advantage = bool(normalize_advantage)
        self.bootstrap_truncation = bool(bootstrap_truncation) and baseline == "value"

    def make_optimizers(self):
        optimizers = {"policy": BiasCorrectedAdam(self.rate())}
        if self.baseline == "value":
            optimizers["value"] = BiasCorrectedAdam(self.rate(self.value_learning_rate))
        return optimizers

    def optimizer_variables(self, name):
        return (self.policy if name == "policy" else self.value).trainable_variables

    def build(self):
        super().build()
        self.average_return = tf.Variable(0.0, trainable=False, name="average_return")

    def checkpoint_items(self):
        return super().checkpoint_items() | {"average_return": self.average_return}

    def train_step(self, batch):
        self.traces += 1
        T, N = self.num_steps, self.num_envs
        term, trunc = batch["terminated"], batch["truncated"]
        final_values = tf.zeros((T, N))
        if self.bootstrap_truncation:
            obs_shape = batch["obs"].shape[2:]
            final = tf.reshape(batch["final_obs"], (T * N, *obs_shape))
            final_values = tf.reshape(self.value(final), (T, N)) * trunc
        # the tail after the last episode end is masked, so its bootstrap value is irrelevant
        returns = self.flat(advantages.discounted_returns(
            batch["rewards"], final_values, term, trunc, self.gamma
        ))
        mask = self.flat(complete_steps(term, trunc))
        count = tf.maximum(tf.reduce_sum(mask), 1.0)
        obs, actions = self.flat(batch["obs"]), self.flat(batch["actions"])
        if self.baseline == "value":
            baseline = self.value(obs)
        elif self.baseline == "moving_average":
            baseline = tf.fill(tf.shape(returns), self.average_return)
        else:
            baseline = tf.zeros_like(returns)
        adv = returns - baseline
        if self.normalize_advantage:
            mean = tf.reduce_sum(adv * mask) / count
            std = tf.sqrt(tf.reduce_sum(tf.square(adv - mean) * mask) / count)
            adv = (adv - mean) / (std + 1e-8) + baseline  # so that returns - baseline = adv
            returns_used = adv
        else:
            returns_used = returns
        with tf.GradientTape() as tape:
            params = self.policy(obs)
            log_probs = self.policy.log_prob(params, actions)
            policy_loss = reinforce_loss(log_probs, returns_used, baseline, mask)
            entropy = tf.reduce_sum(self.policy.entropy(params) * mask) / count
        minimize(self.optimizers["policy"], tape, policy_loss,
                 self.optimizer_variables("policy"), self.max_grad_norm)
        v_loss = tf.constant(0.0)
        if self.baseline == "value":
            for _ in tf.range(self.value_epochs):
                with tf.GradientTape() as tape:
                    v_loss = tf.reduce_sum(tf.square(self.value(obs) - returns) * mask) / count
                minimize(self.optimizers["value"], tape, v_loss, self.optimizer_variables("value"))
        elif self.baseline == "moving_average":
            mean_return = tf.reduce_sum(returns * mask) / count
            if tf.reduce_sum(mask) > 0:
                step = self.baseline_rate * (mean_return - self.average_return)
                self.average_return.assign_add(step)
        return {
            "losses/policy": policy_loss,
            "losses/value": v_loss,
            "losses/entropy": entropy,
            "charts/baseline": tf.reduce_sum(baseline * mask) / count,
            "charts/complete_fraction": tf.reduce_mean(mask),
        } | self.rollout_outputs(batch)
