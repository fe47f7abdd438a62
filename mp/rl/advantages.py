"""Returns and advantages of vectorised rollouts, as pure TensorFlow functions.

The tabular `mp.rl.returns` works on one episode in NumPy. Deep RL collects a rollout of
`T` steps from `N` environments at once, in which episodes end and restart anywhere, so
everything here takes `[T, N]` tensors, time first:

    rewards[t, i]      r_t, the reward of the transition from observation s_t
    values[t, i]       V(s_t)
    next_values[t, i]  V(s_{t+1}) of the observation the transition *reached*: the final
                       observation of an episode that ended at t (before the automatic
                       reset), else the next observation of the rollout, and after the last
                       step the value of the observation the next rollout starts from
    terminated[t, i]   the episode reached a terminal state at t: nothing follows, V = 0
    truncated[t, i]    a time limit cut the episode at t: the state was not terminal, so the
                       return continues beyond it and is estimated by V(final observation)

`terminated` and `truncated` are kept apart (gymnasium's API): a time limit is not part of
the task, and treating it as a termination teaches the value function that states near the
limit are worth less (Pardo et al., 2018, "Time limits in reinforcement learning"). With
`done_t = terminated_t or truncated_t`:

    discounted return  G_t = r_t + gamma (1 - terminated_t) X_t,  X_t = V(s_{t+1}) if done_t or
                       t = T-1 (bootstrap), else G_{t+1}
    n-step return      G_t^(n) = sum_{k<m} gamma^k r_{t+k} + gamma^m (1 - terminated) V(s_{t+m}),
                       m <= n the steps until the episode or the rollout ends
    TD error           delta_t = r_t + gamma (1 - terminated_t) V(s_{t+1}) - V(s_t)
    GAE(lambda)        A_t = delta_t + gamma lambda (1 - done_t) A_{t+1},   A_T = 0
                       (Schulman et al., 2016); lambda = 1 gives G_t - V(s_t), lambda = 0
                       the TD error; the lambda-return target of the critic is A_t + V(s_t).

Course: ch6.2 Deep Reinforcement Learning (actor-critic, advantage function), ch6.1.3 TD
learning (n-step and lambda-returns).
"""

import tensorflow as tf


def _prepare(rewards, terminated, truncated):
    rewards = tf.convert_to_tensor(rewards, tf.float32)
    if rewards.shape.rank != 2:
        raise ValueError(f"rewards must have shape [T, num_envs]. Received: shape={rewards.shape}")
    terminated = tf.cast(terminated, tf.float32)
    truncated = tf.cast(truncated, tf.float32)
    done = tf.maximum(terminated, truncated)
    return rewards, terminated, done


def next_values(values, last_values, dones, final_values):
    """`V(s_{t+1})` of every step: the next row of `values`, the final observation's value
    where an episode ended (`dones`), and `last_values` after the last step.

    Args:
      values: [T, N] V(s_t) of the observations the policy acted on.
      last_values: [N] V of the observations the next rollout starts from.
      dones: [T, N] bool, an episode ended at t (terminated or truncated).
      final_values: [T, N] V of the final observation where `dones` (anything elsewhere).
    """
    values = tf.convert_to_tensor(values, tf.float32)
    shifted = tf.concat([values[1:], tf.convert_to_tensor(last_values, tf.float32)[None]], 0)
    return tf.where(tf.cast(dones, tf.bool), tf.cast(final_values, tf.float32), shifted)


def discounted_returns(rewards, next_values, terminated, truncated, gamma):
    """[T, N] discounted returns `G_t`, bootstrapped at truncations and at the rollout's end."""
    rewards, terminated, done = _prepare(rewards, terminated, truncated)
    next_values = tf.convert_to_tensor(next_values, tf.float32)
    cut = tf.concat([done[:-1], tf.ones_like(done[-1:])], 0)  # the rollout's end cuts too

    def step(later, inputs):
        r, v_next, term, c = inputs
        continuation = c * v_next + (1.0 - c) * later
        return r + gamma * (1.0 - term) * continuation

    return tf.scan(
        step, (rewards, next_values, terminated, cut), initializer=tf.zeros_like(rewards[0]),
        reverse=True,
    )


def n_step_returns(rewards, next_values, terminated, truncated, gamma, n):
    """[T, N] n-step returns `G_t^(n)` (A2C's targets); fewer steps where an episode or the
    rollout ends first, bootstrapping there unless the episode terminated."""
    if int(n) < 1:
        raise ValueError(f"n must be >= 1. Received: n={n}")
    rewards, terminated, done = _prepare(rewards, terminated, truncated)
    next_values = tf.convert_to_tensor(next_values, tf.float32)
    num_steps = tf.shape(rewards)[0]
    total = tf.zeros_like(rewards)
    discount = tf.ones_like(rewards)
    alive = tf.ones_like(rewards)  # 1 while step t + k is still in t's window

    def ahead(x, k, fill):  # x[t + k] for every t, `fill` past the rollout
        pad = tf.fill(tf.stack([tf.minimum(k, num_steps), tf.shape(x)[1]]), fill)
        return tf.concat([x[k:], pad], 0)[:num_steps]

    for k in range(int(n)):
        r, v, term, d = (ahead(x, k, 0.0) for x in (rewards, next_values, terminated, done))
        in_rollout = ahead(tf.ones_like(rewards), k, 0.0)
        last_of_rollout = ahead(tf.ones_like(rewards), k + 1, 0.0) == 0.0
        stop = tf.maximum(d, tf.cast(last_of_rollout, tf.float32))
        if k == int(n) - 1:
            stop = tf.ones_like(stop)
        live = alive * in_rollout
        total += live * discount * (r + gamma * (1.0 - term) * stop * v)
        alive = live * (1.0 - stop)
        discount *= gamma
    return total


def td_errors(rewards, values, next_values, terminated, gamma):
    """[T, N] `delta_t = r_t + gamma (1 - terminated_t) V(s_{t+1}) - V(s_t)`."""
    rewards = tf.convert_to_tensor(rewards, tf.float32)
    terminated = tf.cast(terminated, tf.float32)
    return rewards + gamma * (1.0 - terminated) * next_values - values


def gae(rewards, values, next_values, terminated, truncated, gamma, lambda_):
    """Generalised advantage estimates and the critic's targets.

    Returns:
      `(advantages, returns)`, both [T, N]; `returns = advantages + values` is the
      lambda-return, the value function's regression target.
    """
    if not (0.0 <= gamma <= 1.0 and 0.0 <= lambda_ <= 1.0):
        raise ValueError(f"gamma and lambda_ must be in [0, 1]. Received: {gamma}, {lambda_}")
    rewards, terminated, done = _prepare(rewards, terminated, truncated)
    values = tf.convert_to_tensor(values, tf.float32)
    deltas = td_errors(rewards, values, tf.cast(next_values, tf.float32), terminated, gamma)

    def step(later, inputs):
        delta, d = inputs
        return delta + gamma * lambda_ * (1.0 - d) * later

    advantages = tf.scan(step, (deltas, done), initializer=tf.zeros_like(deltas[0]), reverse=True)
    return advantages, advantages + values
