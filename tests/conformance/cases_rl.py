"""Conformance cases of the deep-RL networks (mp.rl.networks).

Each case is `(name, build_fn, input_shape, output_shape, trainable_params)`; a policy
called on observations returns its logits (discrete) or Gaussian means (continuous).
"""

from mp.rl.ddpg import DeterministicActor, QCritic
from mp.rl.dqn import QNetwork
from mp.rl.networks import PolicyNetwork, ValueNetwork


def _built(model, size):
    """Subclassed models get their weights when first built (a saved model keeps them)."""
    model.build((None, size))
    return model


CASES = [
    # 4 -> 8 tanh: 4*8+8 = 40; head 8 -> 2: 8*2+2 = 18. 58.
    ("policy_categorical", lambda: _built(PolicyNetwork(2, hidden_units=(8,)), 4), (4,), (2,), 58),
    # 3 -> 8: 32; head 8 -> 1: 9; log_std: 1. 42.
    (
        "policy_gaussian_tanh",
        lambda: _built(
            PolicyNetwork(
                1, discrete=False, hidden_units=(8,), action_bound="tanh", low=[-2.0], high=[2.0]
            ),
            3,
        ),
        (3,),
        (2,),  # the mean and the log standard deviation
        42,
    ),
    # 4 -> 8: 40; 8 -> 8: 72; head 8 -> 1: 9. 121; output one value per observation.
    ("value_network", lambda: _built(ValueNetwork(hidden_units=(8, 8)), 4), (4,), (), 121),
    # off-policy (ch6.2 part 2). 4 -> 8 relu: 40; head 8 -> 2: 18. 58 (Q of each action).
    ("q_network", lambda: _built(QNetwork(2, hidden_units=(8,)), 4), (4,), (2,), 58),
    # 3 -> 8: 32; head 8 -> 1: 9. 41; tanh output in [-1, 1].
    ("deterministic_actor", lambda: _built(DeterministicActor(1, hidden_units=(8,)), 3), (3,),
     (1,), 41),
    # [s, a] of 3 + 1: 4 -> 8: 40; 8 -> 8: 72; head 8 -> 1: 9. 121; one Q per input.
    ("q_critic", lambda: _built(QCritic(hidden_units=(8, 8)), 4), (4,), (), 121),
]
