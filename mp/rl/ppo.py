"""Proximal policy optimisation (Schulman et al., 2017), an engine `Task`.

Each update takes one rollout of T steps in N environments (`mp.rl.rollout`), estimates
advantages by GAE(lambda) (`mp.rl.advantages`) with the critic before the update, then runs
`epochs` passes over the T * N transitions in shuffled minibatches, minimising

    L(theta) = - E[ min(rho_t A_t, clip(rho_t, 1 - eps, 1 + eps) A_t) ]      clipped surrogate
               + c_v E[ (V(s_t) - R_t)^2 ]                                   value regression
               - c_e E[ H(pi(. | s_t)) ]                                     entropy bonus

with `rho_t = pi_theta(a_t | s_t) / pi_old(a_t | s_t)`, `A_t` the advantages (normalised
per minibatch to zero mean and unit variance, n - 1 in its denominator), `R_t = A_t +
V_old(s_t)` the lambda-returns. The clip removes the incentive to move the ratio beyond
`[1 - eps, 1 + eps]`: a cheap first-order stand-in for TRPO's KL constraint. Options: the
value prediction clipped to `V_old +- eps_v` (`clip_range_vf`), a stop of the update once
the approximate KL `E[(rho - 1) - log rho]` exceeds `1.5 * target_kl`, the learning rate
and `eps` annealed linearly to zero (`mp.rl.onpolicy.remaining`: SB3's schedule). Logged:
the three losses, the approximate KL, the clip fraction (`|rho - 1| > eps`) and the
critic's explained variance.

All epochs and minibatches run inside the one `tf.function` of the update (the Trainer's
step): one trace per run.

Course: ch6.2 Deep Reinforcement Learning (PPO: a clipped objective instead of TRPO's
KL-constrained step).
"""

import tensorflow as tf

from mp.engine.task import minimize
from mp.rl.onpolicy import BiasCorrectedAdam, OnPolicyTask, remaining


def clipped_surrogate(log_probs, old_log_probs, adv, clip_range):
    """Per-sample PPO policy loss `-min(rho A, clip(rho, 1-eps, 1+eps) A)` and `rho`."""
    ratio = tf.exp(log_probs - old_log_probs)
    clipped = tf.clip_by_value(ratio, 1.0 - clip_range, 1.0 + clip_range)
    return -tf.minimum(ratio * adv, clipped * adv), ratio


def value_loss(predictions, returns, old_values=None, clip_range_vf=None):
    """`(V - R)^2`, or with clipping `max((V - R)^2, (V_old + clip(V - V_old) - R)^2)`."""
    loss = tf.square(predictions - returns)
    if clip_range_vf is None:
        return loss
    clipped = old_values + tf.clip_by_value(predictions - old_values, -clip_range_vf, clip_range_vf)
    return tf.maximum(loss, tf.square(clipped - returns))


def normalize(adv):
    """`(A - mean) / (std + 1e-8)` with the unbiased (n - 1) standard deviation, as PyTorch's
    `std` in SB3; a single advantage is left as it is (SB3 skips it too)."""
    n = tf.cast(tf.shape(adv)[0], adv.dtype)
    mean, var = tf.nn.moments(adv, axes=[0])
    std = tf.sqrt(var * n / tf.maximum(n - 1.0, 1.0))
    return tf.where(n > 1.0, (adv - mean) / (std + 1e-8), adv)


class PPOTask(OnPolicyTask):
    """PPO (see the module docstring). Arguments beyond `OnPolicyTask`'s:

    Args:
      epochs: passes over each rollout.
      minibatch_size: transitions per gradient step; must divide T * N.
      clip_range: eps of the clipped surrogate.
      anneal_clip: decay `clip_range` linearly to zero over the updates.
      clip_range_vf: clip the value prediction around the old one; `None`: no clipping.
      vf_coef, ent_coef: c_v and c_e.
      normalize_advantage: normalise the advantages per minibatch.
      target_kl: stop the update's epochs when the approximate KL exceeds 1.5 * target_kl;
        `None`: never.
      adam_epsilon: Adam's epsilon.
    """

    name = "ppo"

    def __init__(self, env_id, *, epochs=10, minibatch_size=64, clip_range=0.2,
                 anneal_clip=False, clip_range_vf=None, vf_coef=0.5, ent_coef=0.0,
                 normalize_advantage=True, target_kl=None, adam_epsilon=1e-5, **kwargs):
        super().__init__(env_id, **kwargs)
        self.check_minibatch(minibatch_size)
        if not clip_range > 0:
            raise ValueError(f"clip_range must be positive. Received: clip_range={clip_range}")
        self.epochs, self.minibatch_size = int(epochs), int(minibatch_size)
        self.clip_range, self.anneal_clip = float(clip_range), bool(anneal_clip)
        self.clip_range_vf = clip_range_vf
        self.vf_coef, self.ent_coef = float(vf_coef), float(ent_coef)
        self.normalize_advantage = bool(normalize_advantage)
        self.target_kl = target_kl
        self.adam_epsilon = float(adam_epsilon)

    def make_optimizers(self):
        return {"adam": BiasCorrectedAdam(self.rate(), epsilon=self.adam_epsilon)}

    def loss(self, obs, actions, old_log_probs, adv, returns, old_values, clip_range):
        """The PPO loss of one minibatch and its parts (see the module docstring)."""
        params = self.policy(obs)
        log_probs = self.policy.log_prob(params, actions)
        entropy = tf.reduce_mean(self.policy.entropy(params))
        if self.normalize_advantage:
            adv = normalize(adv)
        surrogate, ratio = clipped_surrogate(log_probs, old_log_probs, adv, clip_range)
        policy_loss = tf.reduce_mean(surrogate)
        v_loss = tf.reduce_mean(
            value_loss(self.value(obs), returns, old_values, self.clip_range_vf)
        )
        total = policy_loss + self.vf_coef * v_loss - self.ent_coef * entropy
        log_ratio = log_probs - old_log_probs
        approx_kl = tf.reduce_mean(tf.exp(log_ratio) - 1.0 - log_ratio)
        clip_fraction = tf.reduce_mean(tf.cast(tf.abs(ratio - 1.0) > clip_range, tf.float32))
        return total, (policy_loss, v_loss, entropy, approx_kl, clip_fraction)

    def train_step(self, batch):
        self.traces += 1
        values, adv, returns = self.values_and_advantages(batch)
        obs, actions = self.flat(batch["obs"]), self.flat(batch["actions"])
        old_log_probs = self.old_log_probs(batch)
        adv, returns, values = self.flat(adv), self.flat(returns), self.flat(values)
        clip_range = tf.constant(self.clip_range)
        if self.anneal_clip:  # the learning rate's schedule (`LinearDecay`)
            clip_range = self.clip_range * remaining(self.global_step, self.total_updates)
        optimizer = self.optimizers["adam"]
        variables = self.optimizer_variables("adam")
        n_mini = self.batch_size // self.minibatch_size
        sums = tf.zeros(5)
        count = tf.constant(0.0)
        stop = tf.constant(False)
        for _ in tf.range(self.epochs):
            if stop:
                break
            order = tf.argsort(self.generator.uniform([self.batch_size]))
            for m in tf.range(n_mini):
                idx = order[m * self.minibatch_size:(m + 1) * self.minibatch_size]
                with tf.GradientTape() as tape:
                    total, parts = self.loss(
                        tf.gather(obs, idx), tf.gather(actions, idx), tf.gather(old_log_probs, idx),
                        tf.gather(adv, idx), tf.gather(returns, idx), tf.gather(values, idx),
                        clip_range,
                    )
                if self.target_kl is not None and parts[3] > 1.5 * self.target_kl:
                    stop = True
                    break
                minimize(optimizer, tape, total, variables, self.max_grad_norm)
                sums += tf.stack(parts)
                count += 1.0
        means = sums / tf.maximum(count, 1.0)
        lr = optimizer.learning_rate
        return {
            "losses/policy": means[0],
            "losses/value": means[1],
            "losses/entropy": means[2],
            "losses/approx_kl": means[3],
            "charts/clip_fraction": means[4],
            "charts/explained_variance": self.explained_variance(values, returns),
            "charts/learning_rate": tf.cast(lr, tf.float32),
            "charts/clip_range": tf.cast(clip_range, tf.float32),
            "charts/gradient_steps": count,
        } | self.rollout_outputs(batch)
