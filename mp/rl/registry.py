"""A registry of the tabular reinforcement-learning algorithms and their common result type.

Every algorithm of the chapter is a plain function

    fn(env, *, gamma, seed=0, **its_own_keyword_arguments) -> Result

registered under a name with a *kind*:

- ``"dp"``: dynamic programming (planning with the model ``P(s' | s, a)``, no sampling),
- ``"prediction"``: estimates the value ``v_pi`` of a given policy ``pi`` from episodes,
- ``"control"``: learns a good policy (and its action values) from episodes.

The training app looks algorithms up by name (``--algo=value_iteration``), so a new algorithm
joins the app by decorating its function with :func:`register`; the registry stays open for the
deep algorithms of later sections.

Course: ch6.1 Bootcamp
"""

import dataclasses

import numpy as np

KINDS = ("dp", "prediction", "control")


@dataclasses.dataclass
class Result:
    """What an algorithm returns. Fields an algorithm does not compute stay ``None``.

    Attributes:
        v: [S] state values.
        q: [S, A] action values.
        policy: [S, A] action probabilities (every row sums to 1).
        episode_returns: [episodes] undiscounted sum of rewards of each training episode.
        episode_lengths: [episodes] number of steps of each training episode.
        rms_errors: [episodes] root-mean-square error of ``v`` against the true values after
            each episode (prediction algorithms, when the true values are given).
        sweeps: dynamic programming: number of sweeps over the state space.
        extra: anything else an algorithm wants to report (name -> value).
    """

    v: np.ndarray | None = None
    q: np.ndarray | None = None
    policy: np.ndarray | None = None
    episode_returns: np.ndarray | None = None
    episode_lengths: np.ndarray | None = None
    rms_errors: np.ndarray | None = None
    sweeps: int | None = None
    extra: dict = dataclasses.field(default_factory=dict)


# name -> (function, kind)
ALGORITHMS = {}


def register(name, *, kind):
    """Decorator that registers an algorithm function under ``name``.

    Args:
        name: the name used by ``--algo=`` (e.g. ``"value_iteration"``).
        kind: one of ``"dp"``, ``"prediction"``, ``"control"``.

    Returns:
        A decorator that records the function and returns it unchanged.

    Raises:
        ValueError: if ``kind`` is unknown or ``name`` is already registered to another function.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}. Received: kind={kind!r}")

    def decorator(fn):
        old = ALGORITHMS.get(name)
        if old is not None and old[0].__qualname__ != fn.__qualname__:
            raise ValueError(f"An algorithm named {name!r} is already registered: {old[0]!r}")
        ALGORITHMS[name] = (fn, kind)
        return fn

    return decorator


def get(name):
    """Returns ``(function, kind)`` of the algorithm registered as ``name``.

    Raises:
        ValueError: if no algorithm has that name (the message lists the known ones).
    """
    if name not in ALGORITHMS:
        raise ValueError(f"Unknown algorithm {name!r}. Known algorithms: {', '.join(names())}")
    return ALGORITHMS[name]


def names(kind=None):
    """Sorted names of the registered algorithms, optionally only those of one ``kind``."""
    return sorted(n for n, (_, k) in ALGORITHMS.items() if kind is None or k == kind)


# The deep off-policy algorithms (ch6.2) and the action space each needs; `mp.rl.deep` maps
# them to their Task classes (imported on use: they need TensorFlow).
OFF_POLICY = {"dqn": "discrete", "double_dqn": "discrete", "ddpg": "continuous",
              "td3": "continuous"}
# Their integer options that train_rl takes as flags (unset: the preset's value).
OFF_POLICY_OPTIONS = (
    ("train_frequency", "Off-policy: env steps per environment between updates."),
    ("gradient_steps", "Off-policy: gradient steps per update (one tf.function call)."),
    ("buffer_size", "Off-policy: replay buffer capacity in transitions."),
    ("learning_starts", "Off-policy: env steps of random behaviour before learning."),
)
