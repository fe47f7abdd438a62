"""Finite Markov decision processes as dense NumPy arrays, and small tabular environments.

A finite MDP is a set of states ``S``, actions ``A`` and dynamics ``p(s', r | s, a)``. The
dynamic-programming algorithms only need two expectations of the dynamics,

    P[s, a, s'] = Pr(S_{t+1} = s' | S_t = s, A_t = a)          transition probabilities
    R[s, a]     = E[R_{t+1} | S_t = s, A_t = a]
                = sum_{s', r} p(s', r | s, a) r                   expected immediate reward

plus the set of terminal states (their value is 0 by definition: no reward follows them) and the
distribution of the start state. :class:`MDP` holds exactly these four arrays.

gymnasium's toy-text environments (FrozenLake, CliffWalking, Taxi) describe their dynamics as a
dictionary ``env.unwrapped.P[s][a] = [(prob, next_state, reward, terminated), ...]``;
:func:`mdp_from_env` turns it into an :class:`MDP`. Two small MDPs of Sutton & Barto are defined
here in the same format so that every algorithm can run on them:

- ``"RandomWalk"``: the five-state random walk of example 6.2. States 0..6, where 0 and 6 are
  terminal and 1..5 are the states A..E; the walk starts in C (state 3); stepping off the right
  end gives reward +1, every other reward is 0. Action 0 moves left, action 1 moves right, so the
  uniform random policy is the walk of the example, whose true values (gamma = 1) are
  ``v(A..E) = 1/6, 2/6, ..., 5/6`` (:data:`RANDOM_WALK_TRUE_VALUES`).
- ``"Gambler"``: the gambler's problem of example 4.3. The state is the capital ``s`` in
  0..goal; a stake is won with probability ``p_heads``; reaching the goal pays +1 and ends the
  episode, so does losing everything (reward 0).

Blackjack's observation is a tuple ``(player_sum, dealer_card, usable_ace)``;
:class:`DiscreteObservation` numbers such tuples ``0 .. S-1`` so that the tabular algorithms can
index arrays with them.

References:
    Sutton & Barto, Reinforcement Learning: An Introduction, 2nd ed. (2018), section 3.1 (finite
    MDPs), example 4.3 (gambler's problem), example 5.1 (blackjack), example 6.2 (random walk).

Course: ch6.1 Bootcamp
"""

import dataclasses
import functools

import numpy as np

# True values of the random walk (example 6.2) for states 0..6; the terminal states 0 and 6 have
# value 0, the states A..E (1..5) have v(s) = s / 6 (the probability of leaving on the right).
# The RMS error of example 6.2 is taken over A..E: RANDOM_WALK_TRUE_VALUES[1:-1].
RANDOM_WALK_TRUE_VALUES = np.array([0.0, 1 / 6, 2 / 6, 3 / 6, 4 / 6, 5 / 6, 0.0])

# gymnasium 1.x retired some ids used in the literature; they map to the current version.
ENV_ALIASES = {"Taxi-v3": "Taxi-v4", "CliffWalking-v0": "CliffWalking-v1"}

# Names of the environments defined in this module.
CUSTOM_ENVS = ("RandomWalk", "Gambler")


@dataclasses.dataclass
class MDP:
    """A finite MDP as dense arrays.

    Attributes:
        P: [S, A, S] transition probabilities ``Pr(s' | s, a)``; every row sums to 1.
        R: [S, A] expected immediate reward ``E[r | s, a]``.
        terminal: [S] bool, True for terminal states (their value is 0).
        start: [S] distribution of the start state.
    """

    P: np.ndarray
    R: np.ndarray
    terminal: np.ndarray
    start: np.ndarray

    @property
    def num_states(self):
        return self.P.shape[0]

    @property
    def num_actions(self):
        return self.P.shape[1]


def mdp_from_transitions(transitions, num_states, num_actions, start):
    """Builds an :class:`MDP` from a toy-text transition dictionary.

    Args:
        transitions: ``transitions[s][a]`` is a list of ``(prob, next_state, reward, terminated)``.
        num_states: number of states ``S``.
        num_actions: number of actions ``A``.
        start: [S] start-state distribution.

    Returns:
        An :class:`MDP`. A state is terminal when some transition enters it with
        ``terminated=True``.

    Raises:
        ValueError: if a state is entered both with and without termination, or the
            probabilities of a state-action pair do not sum to 1.
    """
    P = np.zeros((num_states, num_actions, num_states))
    R = np.zeros((num_states, num_actions))
    enters_terminal = np.zeros(num_states, dtype=bool)
    enters_nonterminal = np.zeros(num_states, dtype=bool)
    for s in range(num_states):
        for a in range(num_actions):
            for prob, next_state, reward, terminated in transitions[s][a]:
                P[s, a, next_state] += prob
                R[s, a] += prob * reward  # E[r | s, a] = sum_{s', r} p(s', r | s, a) r
                if prob > 0 and terminated:
                    enters_terminal[next_state] = True
    # Only the states reachable from the start must agree on which states end the episode (Taxi
    # lists moves out of states that never occur, such as its goal states).
    reachable = np.asarray(start) > 0
    frontier = list(np.flatnonzero(reachable))
    while frontier:
        s = frontier.pop()
        for a in range(num_actions):
            for prob, next_state, _, terminated in transitions[s][a]:
                if prob > 0 and not terminated:
                    enters_nonterminal[next_state] = True
                if prob > 0 and not terminated and not reachable[next_state]:
                    reachable[next_state] = True
                    frontier.append(next_state)
    clash = np.flatnonzero(enters_terminal & enters_nonterminal)
    if clash.size:
        raise ValueError(
            f"States {clash.tolist()} are entered both with and without termination; "
            "a tabular MDP needs a fixed set of terminal states."
        )
    sums = P.sum(axis=2)
    if not np.allclose(sums, 1.0):
        s, a = np.argwhere(~np.isclose(sums, 1.0))[0]
        raise ValueError(
            f"Transition probabilities of state {s}, action {a} sum to {sums[s, a]}, not 1."
        )
    # A terminal state has no future: make it absorbing with reward 0 whatever it said before
    # (CliffWalking, for instance, lists ordinary moves out of its goal state).
    P[enters_terminal] = 0.0
    for s in np.flatnonzero(enters_terminal):
        P[s, :, s] = 1.0
    R[enters_terminal] = 0.0
    return MDP(P=P, R=R, terminal=enters_terminal, start=np.asarray(start, dtype=np.float64))


def mdp_from_env(env):
    """Builds the :class:`MDP` of an environment that exposes its model as ``unwrapped.P``.

    Args:
        env: a gymnasium environment with ``Discrete`` observation and action spaces whose
            unwrapped environment has the toy-text attributes ``P`` and ``initial_state_distrib``
            (FrozenLake, CliffWalking, Taxi, and this module's RandomWalk and Gambler).

    Returns:
        The :class:`MDP`.

    Raises:
        ValueError: if the environment does not expose its model (e.g. Blackjack).
    """
    unwrapped = env.unwrapped
    if not hasattr(unwrapped, "P") or not hasattr(unwrapped, "initial_state_distrib"):
        name = env.spec.id if env.spec is not None else type(unwrapped).__name__
        raise ValueError(
            f"Environment {name} does not expose a transition model (env.unwrapped.P); "
            "dynamic programming needs one. Use a sampling algorithm (Monte Carlo or TD)."
        )
    return mdp_from_transitions(
        unwrapped.P,
        unwrapped.observation_space.n,
        unwrapped.action_space.n,
        unwrapped.initial_state_distrib,
    )


def has_model(env):
    """True when :func:`mdp_from_env` can build the model of ``env``."""
    unwrapped = env.unwrapped
    return hasattr(unwrapped, "P") and hasattr(unwrapped, "initial_state_distrib")


def random_walk_transitions(num_states=5):
    """Transitions of the random walk (example 6.2) with ``num_states`` non-terminal states.

    States are ``0 .. num_states + 1``; 0 and ``num_states + 1`` are terminal. Action 0 moves left,
    action 1 moves right; entering the right terminal state pays +1.

    Returns:
        ``(transitions, initial_state_distrib)`` in the toy-text format.
    """
    n = num_states + 2
    right_end = n - 1
    transitions = {}
    for s in range(n):
        if s in (0, right_end):
            transitions[s] = {a: [(1.0, s, 0.0, True)] for a in range(2)}
            continue
        transitions[s] = {}
        for a, step in ((0, -1), (1, +1)):
            s2 = s + step
            reward = 1.0 if s2 == right_end else 0.0
            transitions[s][a] = [(1.0, s2, reward, s2 in (0, right_end))]
    start = np.zeros(n)
    start[(n - 1) // 2] = 1.0  # the centre state (C for five states)
    return transitions, start


def gambler_transitions(goal=100, p_heads=0.4):
    """Transitions of the gambler's problem (example 4.3).

    States are the capital ``0 .. goal`` (0 and ``goal`` terminal). Action ``a`` stakes
    ``a + 1`` coins, capped at ``min(s, goal - s)`` so that every action is legal in every state
    (S&B allow the stakes ``1 .. min(s, goal - s)``; a stake of 0 would never end the episode).
    The stake is won with probability ``p_heads``; reaching the goal pays +1.

    Returns:
        ``(transitions, initial_state_distrib)``; the start capital is uniform over
        ``1 .. goal - 1``.
    """
    num_actions = goal // 2
    transitions = {}
    for s in range(goal + 1):
        if s in (0, goal):
            transitions[s] = {a: [(1.0, s, 0.0, True)] for a in range(num_actions)}
            continue
        transitions[s] = {}
        for a in range(num_actions):
            stake = min(a + 1, s, goal - s)
            win, lose = s + stake, s - stake
            transitions[s][a] = [
                (p_heads, win, 1.0 if win == goal else 0.0, win == goal),
                (1.0 - p_heads, lose, 0.0, lose == 0),
            ]
    start = np.zeros(goal + 1)
    start[1:goal] = 1.0 / (goal - 1)
    return transitions, start


@functools.cache
def _classes():
    """Defines the gymnasium classes on first use (``import mp`` must not import gymnasium)."""
    import gymnasium

    class TabularEnv(gymnasium.Env):
        """An environment given by a toy-text transition dictionary ``P[s][a]``.

        Args:
            transitions: ``P[s][a] = [(prob, next_state, reward, terminated), ...]``.
            initial_state_distrib: [S] start-state distribution.
            name: a name for messages.
        """

        metadata = {"render_modes": []}

        def __init__(self, transitions, initial_state_distrib, name="TabularEnv"):
            self.P = transitions
            self.initial_state_distrib = np.asarray(initial_state_distrib, dtype=np.float64)
            num_states = len(transitions)
            self.observation_space = gymnasium.spaces.Discrete(num_states)
            self.action_space = gymnasium.spaces.Discrete(len(transitions[0]))
            self.name = name
            self.s = 0

        def _sample(self, probs):
            return int(self.np_random.choice(len(probs), p=probs))

        def reset(self, *, seed=None, options=None):
            super().reset(seed=seed)
            self.s = self._sample(self.initial_state_distrib)
            return self.s, {}

        def step(self, action):
            outcomes = self.P[self.s][int(action)]
            prob, next_state, reward, terminated = outcomes[
                self._sample(np.array([o[0] for o in outcomes]))
            ]
            self.s = int(next_state)
            return self.s, float(reward), bool(terminated), False, {"prob": prob}

    class RandomWalkEnv(TabularEnv):
        """The random walk of Sutton & Barto example 6.2 (see the module docstring)."""

        def __init__(self, num_states=5):
            if num_states < 1:
                raise ValueError(f"num_states must be >= 1. Received: num_states={num_states}")
            transitions, start = random_walk_transitions(num_states)
            super().__init__(transitions, start, name="RandomWalk")

    class GamblerEnv(TabularEnv):
        """The gambler's problem of Sutton & Barto example 4.3 (see the module docstring)."""

        def __init__(self, goal=100, p_heads=0.4):
            if goal < 2:
                raise ValueError(f"goal must be >= 2. Received: goal={goal}")
            if not 0.0 <= p_heads <= 1.0:
                raise ValueError(f"p_heads must be in [0, 1]. Received: p_heads={p_heads}")
            transitions, start = gambler_transitions(goal, p_heads)
            super().__init__(transitions, start, name="Gambler")
            self.goal = goal

    class DiscreteObservation(gymnasium.ObservationWrapper):
        """Numbers the observations of a ``Tuple`` of ``Discrete`` spaces ``0 .. S-1``.

        The tuple ``(x_1, ..., x_k)`` with ``x_i`` in ``Discrete(n_i, start=b_i)`` becomes the
        row-major index ``np.ravel_multi_index((x_1 - b_1, ..., x_k - b_k), (n_1, ..., n_k))``,
        so ``S = n_1 * ... * n_k``. For Blackjack, ``(player_sum, dealer_card, usable_ace)``
        becomes ``(player_sum * 11 + dealer_card) * 2 + usable_ace``, one of 32 * 11 * 2 = 704.

        Args:
            env: an environment whose observation space is a ``Tuple`` of ``Discrete`` spaces.

        Raises:
            ValueError: for any other observation space.
        """

        def __init__(self, env):
            super().__init__(env)
            space = env.observation_space
            if not isinstance(space, gymnasium.spaces.Tuple) or not all(
                isinstance(sub, gymnasium.spaces.Discrete) for sub in space.spaces
            ):
                raise ValueError(
                    "DiscreteObservation needs a Tuple of Discrete observation spaces. "
                    f"Received: {space}"
                )
            self.dims = tuple(int(sub.n) for sub in space.spaces)
            self.offsets = np.array([int(sub.start) for sub in space.spaces])
            self.observation_space = gymnasium.spaces.Discrete(int(np.prod(self.dims)))

        def observation(self, observation):
            return int(np.ravel_multi_index(np.asarray(observation) - self.offsets, self.dims))

        def unravel(self, index):
            """The tuple observation numbered ``index`` (the inverse of :meth:`observation`)."""
            parts = np.unravel_index(int(index), self.dims)
            return tuple(int(p + b) for p, b in zip(parts, self.offsets))

    return {
        "TabularEnv": TabularEnv,
        "RandomWalkEnv": RandomWalkEnv,
        "GamblerEnv": GamblerEnv,
        "DiscreteObservation": DiscreteObservation,
    }


def __getattr__(name):
    # The gymnasium classes are created on first access (PEP 562), keeping `import mp` light.
    if name in ("TabularEnv", "RandomWalkEnv", "GamblerEnv", "DiscreteObservation"):
        return _classes()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def make_env(name, **kwargs):
    """Creates a tabular environment by name.

    Args:
        name: ``"RandomWalk"``, ``"Gambler"`` or a gymnasium id (``"FrozenLake-v1"``,
            ``"CliffWalking-v1"``, ``"Taxi-v4"`` (alias ``"Taxi-v3"``), ``"Blackjack-v1"``, ...).
        **kwargs: passed to the environment, e.g. ``map_name="8x8", is_slippery=False`` for
            FrozenLake, ``p_heads=0.25`` for Gambler, ``num_states=19`` for RandomWalk.

    Returns:
        A gymnasium environment with ``Discrete`` observations: a ``Tuple`` of ``Discrete``
        observations (Blackjack) is wrapped in :class:`DiscreteObservation`.

    Raises:
        ValueError: for an unknown name or arguments the environment rejects.
    """
    classes = _classes()
    if name == "RandomWalk":
        return classes["RandomWalkEnv"](**kwargs)
    if name == "Gambler":
        return classes["GamblerEnv"](**kwargs)
    import gymnasium

    name = ENV_ALIASES.get(name, name)
    try:
        env = gymnasium.make(name, **kwargs)
    except gymnasium.error.Error as e:
        raise ValueError(f"Cannot make environment {name!r}: {e}") from None
    except TypeError as e:
        raise ValueError(f"Bad arguments {kwargs} for environment {name!r}: {e}") from None
    if isinstance(env.observation_space, gymnasium.spaces.Tuple):
        env = classes["DiscreteObservation"](env)
    if not isinstance(env.observation_space, gymnasium.spaces.Discrete) or not isinstance(
        env.action_space, gymnasium.spaces.Discrete
    ):
        raise ValueError(
            f"Environment {name!r} is not tabular: observation space {env.observation_space}, "
            f"action space {env.action_space}."
        )
    return env


def is_blackjack(env):
    """True for a (wrapped) Blackjack environment."""
    return type(env.unwrapped).__name__ == "BlackjackEnv"


def named_policy(name, env):
    """A fixed policy by name, as [S, A] action probabilities.

    Args:
        name: ``"uniform"`` (every action equally likely) or ``"blackjack_stick20"`` (Sutton &
            Barto example 5.1: stick (action 0) on a player sum of 20 or 21, otherwise hit
            (action 1)).
        env: the environment (a Blackjack environment wrapped in :class:`DiscreteObservation`
            for ``"blackjack_stick20"``).

    Returns:
        [S, A] array; every row sums to 1.

    Raises:
        ValueError: for an unknown name, or ``"blackjack_stick20"`` on another environment.
    """
    num_states, num_actions = env.observation_space.n, env.action_space.n
    if name == "uniform":
        return np.full((num_states, num_actions), 1.0 / num_actions)
    if name == "blackjack_stick20":
        if not is_blackjack(env) or not hasattr(env, "unravel"):
            raise ValueError(
                "Policy 'blackjack_stick20' needs Blackjack-v1 with DiscreteObservation."
            )
        policy = np.zeros((num_states, num_actions))
        for s in range(num_states):
            player_sum = env.unravel(s)[0]
            policy[s, 0 if player_sum >= 20 else 1] = 1.0  # 0 = stick, 1 = hit
        return policy
    raise ValueError(
        f"Unknown policy {name!r}. Known policies: uniform, blackjack_stick20. "
        f"Received: policy={name!r}"
    )
