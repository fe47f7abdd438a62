"""TRPO: conjugate gradient, the KL-bounded line search, a short CartPole run."""

import numpy as np
import pytest
import tensorflow as tf

from mp.rl import trpo
from tests.rl.deep_rl_helpers import last_returns, train


def test_conjugate_gradient_solves_a_known_system():
    # [[4, 1], [1, 3]] x = [1, 2]: x = [1/11, 7/11] (det 11; x1 = (3 - 2)/11, x2 = (8 - 1)/11)
    a = tf.constant([[4.0, 1.0], [1.0, 3.0]])
    x = trpo.conjugate_gradient(lambda v: tf.linalg.matvec(a, v), tf.constant([1.0, 2.0]), 10)
    np.testing.assert_allclose(x.numpy(), [1 / 11, 7 / 11], rtol=1e-5)
    # a random SPD 8 x 8 system in 8 steps (float64), and inside a tf.function
    rng = np.random.default_rng(0)
    m = rng.normal(size=(8, 8))
    spd = tf.constant(m @ m.T + 8 * np.eye(8))
    b = tf.constant(rng.normal(size=8))
    solve = tf.function(lambda b: trpo.conjugate_gradient(lambda v: tf.linalg.matvec(spd, v), b, 8, tolerance=1e-24))
    np.testing.assert_allclose(solve(b).numpy(), np.linalg.solve(spd.numpy(), b.numpy()), rtol=1e-7)


def test_line_search_never_accepts_a_step_above_the_kl_bound():
    # KL = 0.05 f^2 for a step scaled by f: within 0.01 needs f <= sqrt(0.2) = 0.447; the
    # fractions tried are 1, 0.8, 0.64, 0.512, 0.4096: 0.4096 is the first allowed
    tried = []

    def evaluate(f):
        tried.append(float(f))
        return f * 1.0, 0.05 * f * f

    assert float(trpo.backtracking_line_search(evaluate, 0.01)) == pytest.approx(0.4096)
    assert all(0.05 * f * f > 0.01 for f in tried[:-1])
    # an objective that never improves: no step at all
    assert float(trpo.backtracking_line_search(lambda f: (-f, 0.0 * f), 0.01)) == 0.0
    # KL always too large within the iterations: no step
    assert float(trpo.backtracking_line_search(lambda f: (f, 1.0 + 0 * f), 0.01, max_iter=5)) == 0.0


@pytest.mark.parametrize("target_kl", [0.001, 0.01, 0.05])
def test_update_respects_the_kl_bound(target_kl):
    task = trpo.TRPOTask("CartPole-v1", total_updates=3, num_envs=2, num_steps=64, seed=1,
                         minibatch_size=64, target_kl=target_kl, n_critic_updates=1)
    task.build()
    step = tf.function(task.train_step)
    data = task.data()
    for _ in range(3):
        batch = next(data)
        old = task.policy(task.flat(batch["obs"]))
        outputs = step(batch)
        kl = float(task.mean_kl(old, task.policy(task.flat(batch["obs"]))).numpy())
        assert kl <= target_kl * (1 + 1e-5)
        assert kl == pytest.approx(float(outputs["losses/approx_kl"]), rel=1e-4, abs=1e-9)
        assert float(outputs["charts/step_fraction"]) > 0  # a step was taken


def test_learns_cartpole(tmp_path):
    # zoo settings: 2 envs x 512 steps, critic Adam 1e-3 20 passes, CG damping 1e-3, lambda 0.98
    task = trpo.TRPOTask("CartPole-v1", total_updates=100, num_envs=2, num_steps=512, seed=0,
                         minibatch_size=512, cg_damping=1e-3, gae_lambda=0.98, n_critic_updates=20)
    train(task, tmp_path, 20)  # 20480 env steps, ~10 s
    assert last_returns(task) > 100  # measured 183, 175, 208 for seeds 0, 1, 2; random ~22
    assert task.traces == 1
