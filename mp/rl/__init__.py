"""Chapter 6: reinforcement learning.

The bootcamp's tabular methods (ch6.1), on gymnasium's toy-text environments and on small
MDPs defined in code:

    tabular      MDPs as dense arrays P[s, a, s'], R[s, a] (from `env.unwrapped.P`), make_env
    dp           policy evaluation (sweeps, linear solve), policy iteration, value iteration
    sampling     what Monte Carlo and TD share: argument checks, value tables, seeded
                 episodes, the RMS error against true values
    montecarlo   first-/every-visit prediction, on-policy control, exploring starts
    td           TD(0), SARSA, Q-learning, expected SARSA, TD(lambda), SARSA(lambda)
    policies     greedy, epsilon-greedy, epsilon-soft; step-size and epsilon schedules
    returns      discounted, n-step and lambda-returns as pure functions
    evaluation   greedy-policy success rate / mean return; text and PNG value maps, learning
                 curves, TensorBoard summaries, the learned tables as .npz
    registry     the algorithms by name (`mp.rl.get("sarsa")`)
    comparison   algorithms side by side on one environment: checked set-up, seeded runs,
                 metrics (what `apps/train_rl.py` runs)

Deep policy-gradient methods (ch6.2), engine Tasks on gymnasium.vector environments:

    advantages   discounted, n-step returns and GAE(lambda) over [T, num_envs] in TF,
                 terminated and truncated kept apart
    networks     PolicyNetwork (TFP Categorical / diagonal Gaussian, clipped or tanh-squashed),
                 ValueNetwork
    rollout      vector environments (SAME_STEP autoreset), Collector, RunningMeanStd
    onpolicy     the Task base: collect, then update in one traced step
    reinforce, a2c, ppo, trpo   the algorithms
    deep         algorithms by name, zoo presets, thresholds, metrics, learning curves

Off-policy deep RL (ch6.2 part 2), the same Task shape with a replay buffer:

    replay       ReplayBuffer (checkpointed with its fill level, position and RNG), Polyak
                 updates, OffPolicyTask: collect, insert, then gradient steps in one step
    dqn          DQN and Double DQN (QNetwork, epsilon-greedy, Huber TD loss)
    ddpg         DDPG and TD3 (DeterministicActor, QCritic, twin critics, target smoothing,
                 delayed actor updates, Gaussian or Ornstein-Uhlenbeck noise)

gymnasium and matplotlib are imported by the functions that need them, not here; the deep
modules (TensorFlow) are imported on use: `from mp.rl import ppo`.

Course: ch6 Reinforcement Learning; ch6.1 Bootcamp; ch6.2 Deep Reinforcement Learning.
"""

from mp.rl import comparison, dp, evaluation, montecarlo, policies, returns, sampling, tabular, td
from mp.rl.registry import ALGORITHMS, Result, get, names, register
from mp.rl.tabular import MDP, make_env, mdp_from_env
