"""Dynamic programming on a known finite MDP: policy evaluation, policy iteration, value iteration.

With the model of :mod:`mp.rl.tabular` (``P[s, a, s']``, ``R[s, a]``, terminal states whose value
is 0) every method is built from one Bellman backup, written for all states at once:

    q(s, a) = R[s, a] + gamma * sum_{s'} P[s, a, s'] v(s')                      (1)

- **Policy evaluation** computes ``v_pi`` for a fixed policy ``pi`` (S&B section 4.1). With
  ``r_pi(s) = sum_a pi(a|s) R[s, a]`` and ``P_pi(s, s') = sum_a pi(a|s) P[s, a, s']`` the
  Bellman equation ``v_pi = r_pi + gamma P_pi v_pi`` is linear, so ``v_pi`` is either the fixed
  point of the sweep ``v <- r_pi + gamma P_pi v`` (iterative evaluation), or the solution of
  the linear system ``(I - gamma P_pi) v = r_pi`` over the non-terminal states (terminal
  states are removed from the system: their value is 0).
- **Policy iteration** (S&B section 4.3) alternates evaluation and greedy improvement
  ``pi'(s) = argmax_a q_pi(s, a)`` until the policy no longer changes.
- **Value iteration** (S&B section 4.4) applies the Bellman optimality backup
  ``v(s) <- max_a q(s, a)`` until the largest change of a sweep is below a tolerance, then acts
  greedily with respect to the result.

All sweeps are synchronous ("Jacobi"): the new values are computed from the old ones for every
state at once, as one NumPy expression. S&B's in-place sweeps converge a little faster but
cannot be vectorised.

Greedy policies break ties by the lowest action index, counting actions within ``TIE_TOL`` of
the best as tied, so that policy and value iteration report the same policy when their values
agree to rounding. Inside its loop, policy iteration keeps the current action while it is still
among the best (otherwise two equally good actions can make it cycle forever).

Course: ch6.1.1 Dynamic Programming
"""

import numpy as np

from mp.rl import tabular
from mp.rl.registry import Result, register

# Action values closer than this count as equal when a greedy policy is read off.
TIE_TOL = 1e-6


def _check_gamma(gamma):
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma must be in [0, 1]. Received: gamma={gamma}")


def _as_mdp(env_or_mdp):
    if isinstance(env_or_mdp, tabular.MDP):
        return env_or_mdp
    return tabular.mdp_from_env(env_or_mdp)


def q_from_v(mdp, v, gamma):
    """One Bellman backup (1) for every state and action.

    Args:
        mdp: a :class:`mp.rl.tabular.MDP`.
        v: [S] state values.
        gamma: discount factor.

    Returns:
        [S, A] action values ``R + gamma * P v``; terminal states get 0.
    """
    v = np.where(mdp.terminal, 0.0, v)  # no reward follows a terminal state
    q = mdp.R + gamma * np.einsum("sat,t->sa", mdp.P, v)
    q[mdp.terminal] = 0.0
    return q


def policy_model(mdp, policy):
    """The Markov reward process of a policy: ``(P_pi [S, S], r_pi [S])``.

    ``P_pi(s, s') = sum_a pi(a|s) P[s, a, s']`` and ``r_pi(s) = sum_a pi(a|s) R[s, a]``.
    """
    p_pi = np.einsum("sa,sat->st", policy, mdp.P)
    r_pi = np.sum(policy * mdp.R, axis=1)
    return p_pi, r_pi


def greedy_policy(q, tol=TIE_TOL, previous=None):
    """The deterministic greedy policy of ``q`` as one-hot [S, A] probabilities.

    Args:
        q: [S, A] action values.
        tol: actions within ``tol`` of the maximum count as maxima.
        previous: optional [S, A] policy; where its action is still a maximum it is kept.

    Returns:
        [S, A] one-hot rows: the lowest-index maximum (or the previous action).
    """
    is_max = q >= q.max(axis=1, keepdims=True) - tol
    action = np.argmax(is_max, axis=1)  # first True: the lowest index among the maxima
    if previous is not None:
        old = np.argmax(previous, axis=1)
        keep = is_max[np.arange(len(q)), old]
        action = np.where(keep, old, action)
    return np.eye(q.shape[1])[action]


def evaluate_iterative(mdp, policy, gamma, *, tol=1e-10, max_sweeps=100_000, v0=None):
    """Iterative policy evaluation: sweeps ``v <- r_pi + gamma P_pi v`` until converged.

    Args:
        mdp: a :class:`mp.rl.tabular.MDP`.
        policy: [S, A] action probabilities.
        gamma: discount factor in [0, 1].
        tol: stop when the largest change of a sweep, ``max_s |v_new(s) - v(s)|``, is below
            ``tol``.
        max_sweeps: stop after this many sweeps at the latest.
        v0: optional [S] start values (default 0).

    Returns:
        ``(v, sweeps)``: [S] values and the number of sweeps done.
    """
    _check_gamma(gamma)
    p_pi, r_pi = policy_model(mdp, policy)
    live = ~mdp.terminal
    v = np.zeros(mdp.num_states) if v0 is None else np.where(live, v0, 0.0)
    for sweep in range(1, max_sweeps + 1):
        v_new = np.where(live, r_pi + gamma * p_pi @ v, 0.0)
        delta = np.max(np.abs(v_new - v))
        v = v_new
        if delta < tol:
            break
    return v, sweep


def evaluate_linear(mdp, policy, gamma):
    """Policy evaluation by solving ``(I - gamma P_pi) v = r_pi`` over the non-terminal states.

    Terminal states have ``v = 0``, so their columns drop out of ``P_pi v`` and their rows out of
    the system.

    Args:
        mdp: a :class:`mp.rl.tabular.MDP`.
        policy: [S, A] action probabilities.
        gamma: discount factor in [0, 1].

    Returns:
        [S] values ``v_pi``.

    Raises:
        ValueError: if the system is singular (with ``gamma = 1``: the policy can run forever).
    """
    _check_gamma(gamma)
    p_pi, r_pi = policy_model(mdp, policy)
    live = np.flatnonzero(~mdp.terminal)
    a = np.eye(live.size) - gamma * p_pi[np.ix_(live, live)]
    v = np.zeros(mdp.num_states)
    try:
        v[live] = np.linalg.solve(a, r_pi[live])
    except np.linalg.LinAlgError:
        raise ValueError(
            f"I - gamma P_pi is singular (gamma={gamma}): the policy never reaches a terminal "
            "state from some state. Use gamma < 1 or iterative evaluation."
        ) from None
    return v


def policy_iteration_mdp(mdp, gamma, *, evaluation="linear", tol=1e-10, max_iterations=1000):
    """Policy iteration on an :class:`MDP` (see :func:`policy_iteration`)."""
    _check_gamma(gamma)
    if evaluation not in ("linear", "iterative"):
        raise ValueError(
            f"evaluation must be 'linear' or 'iterative'. Received: evaluation={evaluation!r}"
        )
    # The uniform random policy ends every episode of the environments here, so v_pi is finite
    # even with gamma = 1 (an arbitrary deterministic policy may walk into a wall forever).
    policy = np.full((mdp.num_states, mdp.num_actions), 1.0 / mdp.num_actions)
    v = np.zeros(mdp.num_states)
    sweeps = 0
    for iteration in range(1, max_iterations + 1):
        if evaluation == "linear":
            v = evaluate_linear(mdp, policy, gamma)
        else:
            v, n = evaluate_iterative(mdp, policy, gamma, tol=tol, v0=v)
            sweeps += n
        q = q_from_v(mdp, v, gamma)
        sweeps += 1  # the improvement step is one more sweep over the states
        previous = policy if iteration > 1 else None
        new_policy = greedy_policy(q, tol=max(tol, 1e-9), previous=previous)
        if iteration > 1 and np.array_equal(new_policy, policy):
            break
        policy = new_policy
    # Report the lowest-index greedy policy of the final q (the same rule as value iteration).
    policy = greedy_policy(q)
    return Result(v=v, q=q, policy=policy, sweeps=sweeps, extra={"iterations": iteration})


def value_iteration_mdp(mdp, gamma, *, tol=1e-10, max_sweeps=100_000):
    """Value iteration on an :class:`MDP` (see :func:`value_iteration`)."""
    _check_gamma(gamma)
    v = np.zeros(mdp.num_states)
    for sweep in range(1, max_sweeps + 1):
        v_new = q_from_v(mdp, v, gamma).max(axis=1)  # v(s) <- max_a [R + gamma P v](s, a)
        delta = np.max(np.abs(v_new - v))
        v = v_new
        if delta < tol:
            break
    q = q_from_v(mdp, v, gamma)
    return Result(v=v, q=q, policy=greedy_policy(q), sweeps=sweep)


@register("policy_evaluation", kind="dp")
def policy_evaluation(
    env, *, gamma=1.0, seed=0, policy=None, method="iterative", tol=1e-10, max_sweeps=100_000
):
    """Evaluates a fixed policy on the model of ``env`` (S&B section 4.1).

    Args:
        env: an environment with a model (:func:`mp.rl.tabular.mdp_from_env`) or an ``MDP``.
        gamma: discount factor in [0, 1].
        seed: unused (DP is deterministic); accepted like every algorithm.
        policy: [S, A] action probabilities; default the uniform random policy.
        method: ``"iterative"`` (sweeps to tolerance ``tol``) or ``"linear"`` (one solve).
        tol: convergence tolerance of the iterative method.
        max_sweeps: at most this many sweeps.

    Returns:
        :class:`Result` with ``v``, ``q`` (= one backup of ``v``), ``policy`` and ``sweeps``.
    """
    mdp = _as_mdp(env)
    if policy is None:
        policy = np.full((mdp.num_states, mdp.num_actions), 1.0 / mdp.num_actions)
    policy = np.asarray(policy, dtype=np.float64)
    if policy.shape != (mdp.num_states, mdp.num_actions):
        raise ValueError(
            f"policy must have shape {(mdp.num_states, mdp.num_actions)}. "
            f"Received: policy.shape={policy.shape}"
        )
    if method == "iterative":
        v, sweeps = evaluate_iterative(mdp, policy, gamma, tol=tol, max_sweeps=max_sweeps)
    elif method == "linear":
        v, sweeps = evaluate_linear(mdp, policy, gamma), 0
    else:
        raise ValueError(f"method must be 'iterative' or 'linear'. Received: method={method!r}")
    return Result(v=v, q=q_from_v(mdp, v, gamma), policy=policy, sweeps=sweeps)


@register("policy_iteration", kind="dp")
def policy_iteration(
    env, *, gamma=1.0, seed=0, evaluation="linear", tol=1e-10, max_iterations=1000
):
    """Policy iteration (S&B section 4.3): evaluate, improve greedily, until stable.

    Starts from the uniform random policy.

    Args:
        env: an environment with a model (:func:`mp.rl.tabular.mdp_from_env`) or an ``MDP``.
        gamma: discount factor in [0, 1].
        seed: unused (DP is deterministic); accepted like every algorithm.
        evaluation: ``"linear"`` (solve the linear system) or ``"iterative"`` (sweeps, warm
            started from the previous values).
        tol: tolerance of iterative evaluation and of ties in the improvement step.
        max_iterations: at most this many improvement steps.

    Returns:
        :class:`Result` with ``v``, ``q``, the greedy ``policy``, ``sweeps`` (all sweeps over the
        state space: evaluation sweeps plus one per improvement) and
        ``extra["iterations"]`` (improvement steps).
    """
    return policy_iteration_mdp(
        _as_mdp(env), gamma, evaluation=evaluation, tol=tol, max_iterations=max_iterations
    )


@register("value_iteration", kind="dp")
def value_iteration(env, *, gamma=1.0, seed=0, tol=1e-10, max_sweeps=100_000):
    """Value iteration (S&B section 4.4): ``v <- max_a q(s, a)`` until converged, then greedy.

    Args:
        env: an environment with a model (:func:`mp.rl.tabular.mdp_from_env`) or an ``MDP``.
        gamma: discount factor in [0, 1].
        seed: unused (DP is deterministic); accepted like every algorithm.
        tol: stop when a sweep changes no value by ``tol`` or more.
        max_sweeps: at most this many sweeps.

    Returns:
        :class:`Result` with ``v``, ``q``, the greedy ``policy`` and ``sweeps``.
    """
    return value_iteration_mdp(_as_mdp(env), gamma, tol=tol, max_sweeps=max_sweeps)
