"""Synchronous advantage actor-critic (A2C; Mnih et al., 2016, without the asynchrony).

N environments step together for T steps (n-step rollouts, T = 5 by default); one gradient
step on the whole rollout then minimises

    L(theta, phi) = - E[ log pi_theta(a_t | s_t) A_t ]         actor: policy gradient
                    + c_v E[ (V_phi(s_t) - R_t)^2 ]              critic: regression
                    - c_e E[ H(pi_theta(. | s_t)) ]              entropy bonus

with `A_t = R_t - V_phi(s_t)` the advantage estimate (the actor-critic estimator replaces
the return of REINFORCE by it: `Q(s, a) - V(s)` has the same expected gradient and less
variance). `R_t` is the n-step return, each step bootstrapping from the critic at the
rollout's end (GAE with lambda = 1, `mp.rl.advantages`); with `gae_lambda < 1` the
GAE(lambda) estimate. RMSprop, as in the paper and SB3.

Course: ch6.2 Deep Reinforcement Learning (actor-critic: advantage A(s, a) = Q(s, a) - V(s)).
"""

import keras
import tensorflow as tf

from mp.engine.task import minimize
from mp.rl.onpolicy import OnPolicyTask
from mp.rl.ppo import normalize


def actor_critic_loss(log_probs, adv, predictions, returns, entropy, vf_coef, ent_coef):
    """`(total, policy_loss, value_loss, entropy)` of the A2C loss (module docstring)."""
    policy_loss = -tf.reduce_mean(log_probs * tf.stop_gradient(adv))
    v_loss = tf.reduce_mean(tf.square(predictions - returns))
    entropy = tf.reduce_mean(entropy)
    return policy_loss + vf_coef * v_loss - ent_coef * entropy, policy_loss, v_loss, entropy


class A2CTask(OnPolicyTask):
    """A2C (module docstring). Arguments beyond `OnPolicyTask`'s:

    Args:
      vf_coef, ent_coef: c_v and c_e.
      normalize_advantage: normalise the advantages of the rollout.
      rms_prop_epsilon: RMSprop's epsilon as PyTorch (and SB3) adds it, outside the square
        root: `g / (sqrt(v) + eps)`. Keras adds its epsilon inside, `g / sqrt(v + eps')`, so
        `eps' = eps^2` is passed: with 1e-5 inside the root the steps were damped wherever
        v < 1e-5 (161k env steps to 475 on CartPole against SB3's 107k, seed 0).
    """

    name = "a2c"

    def __init__(self, env_id, *, vf_coef=0.5, ent_coef=0.0, normalize_advantage=False,
                 rms_prop_epsilon=1e-5, **kwargs):
        kwargs.setdefault("num_steps", 5)
        kwargs.setdefault("gae_lambda", 1.0)
        kwargs.setdefault("learning_rate", 7e-4)
        super().__init__(env_id, **kwargs)
        self.vf_coef, self.ent_coef = float(vf_coef), float(ent_coef)
        self.normalize_advantage = bool(normalize_advantage)
        self.rms_prop_epsilon = float(rms_prop_epsilon)

    def make_optimizers(self):
        rmsprop = keras.optimizers.RMSprop(
            self.rate(), rho=0.99, epsilon=self.rms_prop_epsilon**2  # see the class docstring
        )
        return {"rmsprop": rmsprop}

    def train_step(self, batch):
        self.traces += 1
        values, adv, returns = self.values_and_advantages(batch)
        obs, actions = self.flat(batch["obs"]), self.flat(batch["actions"])
        adv, returns, values = self.flat(adv), self.flat(returns), self.flat(values)
        if self.normalize_advantage:
            adv = normalize(adv)
        variables = self.optimizer_variables("rmsprop")
        with tf.GradientTape() as tape:
            params = self.policy(obs)
            total, policy_loss, v_loss, entropy = actor_critic_loss(
                self.policy.log_prob(params, actions), adv, self.value(obs), returns,
                self.policy.entropy(params), self.vf_coef, self.ent_coef,
            )
        minimize(self.optimizers["rmsprop"], tape, total, variables, self.max_grad_norm)
        return {
            "losses/policy": policy_loss,
            "losses/value": v_loss,
            "losses/entropy": entropy,
            "charts/explained_variance": self.explained_variance(values, returns),
            "charts/learning_rate": tf.cast(self.optimizers["rmsprop"].learning_rate, tf.float32),
        } | self.rollout_outputs(batch)
