"""Trust region policy optimisation (Schulman et al., 2015), an engine `Task`.

TRPO maximises the importance-sampled surrogate under a bound on how far the policy moves:

    maximise   L(theta) = E[ pi_theta(a_t | s_t) / pi_old(a_t | s_t) A_t ]
    subject to KL_bar(theta) = E_s[ KL(pi_old(. | s) || pi_theta(. | s)) ] <= delta

Linearising L (gradient g) and taking the KL to second order (its Hessian at theta_old is
the Fisher information matrix F) gives the natural-gradient step

    s = F^{-1} g,     theta = theta_old + alpha^j sqrt(2 delta / s^T F s) s

F is never formed: conjugate gradient (`conjugate_gradient`) solves F s = g with
Fisher-vector products `F v = grad (grad KL_bar . v) + damping v`, two nested gradient
tapes. The backtracking line search (`backtracking_line_search`) shrinks the step by
alpha = 0.8 until the exact KL is within delta and the surrogate improved; if no step
passes, the policy stays. The critic V_phi is fitted separately by regression on the
lambda-returns, `n_critic_updates` passes in minibatches of `minibatch_size` (Adam). Advantages
come from GAE(lambda), normalised over the rollout.

The whole update (CG, line search, critic epochs) is the Trainer's one traced step.

Course: ch6.2 Deep Reinforcement Learning (TRPO: the policy update as an optimisation
constrained by the KL divergence between old and new policies).
"""

import tensorflow as tf
import tensorflow_probability as tfp

from mp.engine.task import minimize
from mp.rl.onpolicy import BiasCorrectedAdam, OnPolicyTask
from mp.rl.ppo import normalize

tfd = tfp.distributions


def conjugate_gradient(matvec, b, iterations=15, tolerance=1e-10):
    """Solves `A x = b` for a symmetric positive definite A given only `matvec(v) = A v`.

    Starts from x = 0; stops after `iterations` steps or when the squared residual falls
    below `tolerance`. In exact arithmetic it solves an n x n system in n steps.
    """
    b = tf.convert_to_tensor(b)
    x = tf.zeros_like(b)
    r, p = b, b
    rr = tf.reduce_sum(r * r)
    for _ in tf.range(iterations):
        if rr < tolerance:
            break
        ap = matvec(p)
        alpha = rr / tf.reduce_sum(p * ap)
        x += alpha * p
        r -= alpha * ap
        rr_new = tf.reduce_sum(r * r)
        p = r + (rr_new / rr) * p
        rr = rr_new
    return x


def backtracking_line_search(evaluate, max_kl, *, shrink=0.8, max_iter=10):
    """The largest `shrink**j`, j < max_iter, whose step keeps the KL within `max_kl` and
    improves the objective; 0 when none does.

    Args:
      evaluate: `fraction -> (improvement, kl)` of the step scaled by `fraction`.
    """
    accepted = tf.constant(0.0)
    fraction = tf.constant(1.0)
    for _ in tf.range(max_iter):
        improvement, kl = evaluate(fraction)
        if kl <= max_kl and improvement > 0.0:
            accepted = fraction
            break
        fraction *= shrink
    return accepted


def _flat(tensors):
    return tf.concat([tf.reshape(t, [-1]) for t in tensors], 0)


def _assign_flat(variables, flat):
    offset = 0
    for v in variables:
        size = v.shape.num_elements()
        v.assign(tf.reshape(flat[offset:offset + size], v.shape))
        offset += size


class TRPOTask(OnPolicyTask):
    """TRPO (module docstring). Arguments beyond `OnPolicyTask`'s (`learning_rate` is the
    critic's):

    Args:
      target_kl: delta, the bound on the mean KL of one update.
      cg_iterations, cg_damping: conjugate gradient's steps and the Fisher's damping.
      line_search_shrink, line_search_max_iter: the backtracking line search.
      n_critic_updates: passes of the critic over each rollout.
      minibatch_size: the critic's minibatch; must divide T * N.
    """

    name = "trpo"

    def __init__(self, env_id, *, target_kl=0.01, cg_iterations=15, cg_damping=0.1,
                 line_search_shrink=0.8, line_search_max_iter=10, n_critic_updates=10,
                 minibatch_size=128, **kwargs):
        kwargs.setdefault("learning_rate", 1e-3)
        kwargs.setdefault("max_grad_norm", None)
        super().__init__(env_id, **kwargs)
        self.check_minibatch(minibatch_size)
        if not target_kl > 0:
            raise ValueError(f"target_kl must be positive. Received: target_kl={target_kl}")
        self.target_kl = float(target_kl)
        self.cg_iterations, self.cg_damping = int(cg_iterations), float(cg_damping)
        self.line_search_shrink = float(line_search_shrink)
        self.line_search_max_iter = int(line_search_max_iter)
        self.n_critic_updates, self.minibatch_size = int(n_critic_updates), int(minibatch_size)

    def make_optimizers(self):
        return {"value": BiasCorrectedAdam(self.rate())}

    def optimizer_variables(self, name):
        return self.value.trainable_variables

    def mean_kl(self, old_params, params):
        """E_s KL(pi_old(. | s) || pi_theta(. | s)); a squashed Gaussian's is its base's (the
        KL is invariant under the bijection)."""
        old, new = self.policy.distribution_from(old_params), self.policy.distribution_from(params)
        if isinstance(new, tfd.TransformedDistribution):
            old, new = old.distribution, new.distribution
        return tf.reduce_mean(tfd.kl_divergence(old, new))

    def policy_update(self, obs, actions, old_log_probs, adv):
        """The natural-gradient step with its line search; returns diagnostics."""
        variables = self.policy.trainable_variables
        old_params = tf.stop_gradient(self.policy(obs))

        def surrogate():
            params = self.policy(obs)
            ratio = tf.exp(self.policy.log_prob(params, actions) - old_log_probs)
            return tf.reduce_mean(ratio * adv), params

        with tf.GradientTape() as tape:
            objective, _ = surrogate()
        g = _flat(tape.gradient(objective, variables))

        def fisher_vector_product(v):
            with tf.GradientTape() as outer:
                with tf.GradientTape() as inner:
                    kl = self.mean_kl(old_params, self.policy(obs))
                grad_kl = _flat(inner.gradient(kl, variables))
                grad_kl_v = tf.reduce_sum(grad_kl * tf.stop_gradient(v))
            return _flat(outer.gradient(grad_kl_v, variables)) + self.cg_damping * v

        direction = conjugate_gradient(fisher_vector_product, g, self.cg_iterations)
        shs = tf.reduce_sum(direction * fisher_vector_product(direction))
        step = tf.sqrt(2.0 * self.target_kl / tf.maximum(shs, 1e-12)) * direction
        old = _flat(variables)

        def evaluate(fraction):
            _assign_flat(variables, old + fraction * step)
            new_objective, params = surrogate()
            return new_objective - objective, self.mean_kl(old_params, params)

        fraction = backtracking_line_search(
            evaluate, self.target_kl, shrink=self.line_search_shrink,
            max_iter=self.line_search_max_iter,
        )
        _assign_flat(variables, old + fraction * step)
        new_objective, params = surrogate()
        return {
            "losses/policy": -new_objective,
            "losses/approx_kl": self.mean_kl(old_params, params),
            "losses/entropy": tf.reduce_mean(self.policy.entropy(params)),
            "charts/step_fraction": fraction,
            "charts/improvement": new_objective - objective,
        }

    def train_step(self, batch):
        self.traces += 1
        values, adv, returns = self.values_and_advantages(batch)
        obs, actions = self.flat(batch["obs"]), self.flat(batch["actions"])
        adv, returns, values = normalize(self.flat(adv)), self.flat(returns), self.flat(values)
        outputs = self.policy_update(obs, actions, self.old_log_probs(batch), adv)
        variables = self.optimizer_variables("value")
        v_loss = tf.constant(0.0)
        n_mini = self.batch_size // self.minibatch_size
        for _ in tf.range(self.n_critic_updates):
            order = tf.argsort(self.generator.uniform([self.batch_size]))
            for m in tf.range(n_mini):
                idx = order[m * self.minibatch_size:(m + 1) * self.minibatch_size]
                with tf.GradientTape() as tape:
                    predictions = self.value(tf.gather(obs, idx))
                    v_loss = tf.reduce_mean(tf.square(predictions - tf.gather(returns, idx)))
                minimize(self.optimizers["value"], tape, v_loss, variables, self.max_grad_norm)
        return outputs | {
            "losses/value": v_loss,
            "charts/explained_variance": self.explained_variance(values, returns),
        } | self.rollout_outputs(batch)
