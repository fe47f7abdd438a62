"""Evaluating and showing tabular results: success rate, mean return, maps, curves, files.

:func:`evaluate_policy` runs a policy for many seeded episodes and reports the mean undiscounted
return ``G = R_1 + R_2 + ... + R_T`` and, where the environment has a notion of reaching a
goal, the success rate (the fraction of episodes that reach it). Acting greedily
(``a = argmax_a pi(a | s)``) measures what a learned policy has become, without exploration.

:func:`render_text` and :func:`values_figure` show a value function with its policy:
arrows on a grid world (FrozenLake, CliffWalking), the stake per capital for the gambler
(S&B figure 4.3), values along the chain for the random walk, and the value surface and the
stick/hit map for Blackjack (S&B figures 5.1 and 5.2).

:func:`learning_curves_figure` draws the training curves of sampling algorithms (the sum of
rewards per episode, or the RMS error against the true values, averaged over runs; S&B
figures 6.2 and 6.4), :func:`write_summaries` writes them as TensorBoard scalars and
:func:`save_values` keeps the learned tables in an ``.npz`` file.

Course: ch6.1 Bootcamp
"""

import os
import tempfile

import numpy as np

from mp.rl import tabular
from mp.plotting import pyplot

# Arrow of each action on the grid worlds.
_FROZENLAKE_ARROWS = "\u2190\u2193\u2192\u2191"  # 0 left, 1 down, 2 right, 3 up
_CLIFF_ARROWS = "\u2191\u2192\u2193\u2190"  # 0 up, 1 right, 2 down, 3 left
# Unit moves (dx, dy) in image coordinates (y grows downwards) for the PNG arrows.
_FROZENLAKE_MOVES = [(-1, 0), (0, 1), (1, 0), (0, -1)]
_CLIFF_MOVES = [(0, -1), (1, 0), (0, 1), (-1, 0)]


def env_name(env):
    """The registered id of ``env`` or the class name of a custom environment."""
    spec = getattr(env, "spec", None)
    if spec is not None:
        return spec.id
    return getattr(env.unwrapped, "name", type(env.unwrapped).__name__)


def success_rule(env):
    """How an episode counts as a success on ``env``, or None if the idea does not apply.

    Returns:
        ``"positive_reward"`` (FrozenLake: the goal pays 1; RandomWalk: leaving on the right;
        Gambler: reaching the goal; Blackjack: winning the hand), ``"terminated"``
        (CliffWalking, Taxi: the episode only terminates at the goal), or None.
    """
    name = type(env.unwrapped).__name__
    if name in ("FrozenLakeEnv", "RandomWalkEnv", "GamblerEnv", "BlackjackEnv"):
        return "positive_reward"
    if name in ("CliffWalkingEnv", "TaxiEnv"):
        return "terminated"
    return None


def evaluate_policy(env, policy, *, episodes=1000, seed=0, greedy=True, max_steps=1000):
    """Runs ``policy`` for ``episodes`` seeded episodes.

    The first episode starts from ``env.reset(seed=seed)``, the next ones from ``env.reset()``,
    so the sequence of episodes is fixed by ``seed``.

    Args:
        env: a gymnasium environment with ``Discrete`` observations and actions.
        policy: [S, A] action probabilities.
        episodes: number of episodes.
        seed: seed of the environment and of the action sampling.
        greedy: act with ``argmax_a policy[s, a]`` (lowest index on ties) instead of sampling.
        max_steps: an episode still running after this many steps is cut (it counts as a
            failure); CliffWalking, for instance, has no time limit of its own.

    Returns:
        dict with ``mean_return``, ``std_return``, ``mean_length``, ``success_rate`` (None
        where :func:`success_rule` is None), ``returns`` ([episodes] array).

    Raises:
        ValueError: if ``episodes`` is not positive or ``policy`` has the wrong shape.
    """
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1. Received: episodes={episodes}")
    policy = np.asarray(policy, dtype=np.float64)
    shape = (env.observation_space.n, env.action_space.n)
    if policy.shape != shape:
        raise ValueError(f"policy must have shape {shape}. Received: policy.shape={policy.shape}")
    rng = np.random.default_rng(seed)
    greedy_actions = np.argmax(policy, axis=1)
    rule = success_rule(env)
    returns = np.zeros(episodes)
    lengths = np.zeros(episodes, dtype=np.int64)
    successes = np.zeros(episodes, dtype=bool)
    for episode in range(episodes):
        state, _ = env.reset(seed=seed) if episode == 0 else env.reset()
        total, steps, reward, terminated, truncated = 0.0, 0, 0.0, False, False
        while not (terminated or truncated) and steps < max_steps:
            if greedy:
                action = greedy_actions[state]
            else:
                action = rng.choice(shape[1], p=policy[state])
            state, reward, terminated, truncated, _ = env.step(int(action))
            total += reward
            steps += 1
        returns[episode], lengths[episode] = total, steps
        if rule == "positive_reward":
            successes[episode] = terminated and reward > 0
        elif rule == "terminated":
            successes[episode] = terminated
    return {
        "mean_return": float(returns.mean()),
        "std_return": float(returns.std()),
        "mean_length": float(lengths.mean()),
        "success_rate": float(successes.mean()) if rule is not None else None,
        "returns": returns,
    }


def grid_layout(env):
    """The grid of a grid world: ``(labels [rows, cols] of str, arrows, moves)`` or None.

    ``labels`` holds the map letter of each cell (FrozenLake: S, F, H, G; CliffWalking: S, C for
    the cliff, G, and "." elsewhere); ``arrows`` the character of each action and ``moves``
    its (dx, dy) direction on the picture.
    """
    unwrapped = env.unwrapped
    name = type(unwrapped).__name__
    if name == "FrozenLakeEnv":
        labels = np.asarray(unwrapped.desc).astype(str)
        return labels, _FROZENLAKE_ARROWS, _FROZENLAKE_MOVES
    if name == "CliffWalkingEnv":
        rows, cols = unwrapped.shape
        labels = np.full((rows, cols), ".", dtype="<U1")
        labels[rows - 1, 1:-1] = "C"
        labels[rows - 1, 0] = "S"
        labels[rows - 1, -1] = "G"
        return labels, _CLIFF_ARROWS, _CLIFF_MOVES
    return None


def _blackjack_tables(env, v, policy):
    """Blackjack values and actions on S&B's grid: player sum 12..21 by dealer card 1..10.

    Returns:
        dict ``usable_ace -> (values [10, 10], stick [10, 10] bool)``, rows = player sum
        12..21, columns = dealer showing 1 (ace) .. 10.
    """
    tables = {}
    for ace in (1, 0):
        values = np.zeros((10, 10))
        stick = np.zeros((10, 10), dtype=bool)
        for i, player_sum in enumerate(range(12, 22)):
            for j, dealer in enumerate(range(1, 11)):
                s = env.observation((player_sum, dealer, ace))
                values[i, j] = v[s] if v is not None else np.nan
                stick[i, j] = np.argmax(policy[s]) == 0 if policy is not None else False
        tables[ace] = (values, stick)
    return tables


def render_text(env, v=None, policy=None, terminal=None):
    """A text picture of a value function and/or a (greedy) policy.

    Args:
        env: the environment.
        v: optional [S] state values.
        policy: optional [S, A] policy; its greedy action is shown.
        terminal: optional [S] bool; terminal states show their map letter, not an action.

    Returns:
        A multi-line string.
    """
    lines = []
    layout = grid_layout(env)
    if layout is not None:
        labels, arrows, _ = layout
        rows, cols = labels.shape
        if v is not None:
            lines.append("State values:")
            for r in range(rows):
                lines.append(" ".join(f"{v[r * cols + c]:8.3f}" for c in range(cols)))
        if policy is not None:
            lines.append("Greedy policy:")
            for r in range(rows):
                row = []
                for c in range(cols):
                    s = r * cols + c
                    is_terminal = terminal is not None and terminal[s]
                    if is_terminal or labels[r, c] in ("H", "C"):
                        row.append(labels[r, c])
                    else:
                        row.append(arrows[int(np.argmax(policy[s]))])
                lines.append(" ".join(row))
        return "\n".join(lines) + "\n"
    if tabular.is_blackjack(env) and hasattr(env, "observation"):
        tables = _blackjack_tables(env, v, policy)
        for ace in (1, 0):
            values, stick = tables[ace]
            lines.append(
                f"{'Usable' if ace else 'No usable'} ace (rows: player sum 12..21, "
                "columns: dealer showing A, 2..10)"
            )
            for i, player_sum in enumerate(range(12, 22)):
                cells = []
                if v is not None:
                    cells.append(" ".join(f"{x:6.2f}" for x in values[i]))
                if policy is not None:
                    cells.append("".join("S" if x else "H" for x in stick[i]))
                lines.append(f"{player_sum:3d} | " + " | ".join(cells))
        return "\n".join(lines) + "\n"
    # Any other environment: one line per state.
    for s in range(env.observation_space.n):
        parts = [f"state {s:4d}"]
        if v is not None:
            parts.append(f"v = {v[s]: .4f}")
        if policy is not None and not (terminal is not None and terminal[s]):
            parts.append(f"greedy action {int(np.argmax(policy[s]))}")
        lines.append("  ".join(parts))
    return "\n".join(lines) + "\n"


def _grid_axes(ax, env, v, policy, terminal, title):
    labels, _, moves = grid_layout(env)
    rows, cols = labels.shape
    values = np.zeros((rows, cols)) if v is None else np.asarray(v, float).reshape(rows, cols)
    image = ax.imshow(values, cmap="viridis")
    ax.figure.colorbar(image, ax=ax, fraction=0.046 if cols > rows else 0.2, pad=0.02)
    for r in range(rows):
        for c in range(cols):
            s = r * cols + c
            is_terminal = terminal is not None and terminal[s]
            letter = labels[r, c]
            if letter in ("H", "C", "G") or is_terminal:
                ax.text(c, r, letter, ha="center", va="center", color="red", fontsize=12)
                continue
            if policy is not None:
                dx, dy = moves[int(np.argmax(policy[s]))]
                ax.arrow(
                    c - 0.25 * dx,
                    r - 0.25 * dy,
                    0.3 * dx,
                    0.3 * dy,
                    head_width=0.15,
                    color="white",
                    length_includes_head=True,
                )
            if v is not None and rows * cols <= 64:
                ax.text(
                    c,
                    r + 0.35,
                    f"{values[r, c]:.2f}",
                    ha="center",
                    va="center",
                    color="white",
                    fontsize=6,
                )
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title)


def values_figure(env, results, terminal=None):
    """A figure of value functions and policies, one column per algorithm.

    Args:
        env: the environment the results belong to.
        results: dict ``algorithm name -> (v [S] or None, policy [S, A] or None)``.
        terminal: optional [S] bool mask of terminal states.

    Returns:
        A matplotlib figure (closed: save it, do not show it).
    """
    plt = pyplot()
    names = list(results)
    n = len(names)
    if grid_layout(env) is not None:
        rows, cols = grid_layout(env)[0].shape
        width = 0.45 * cols + 1.5
        fig, axes = plt.subplots(1, n, figsize=(width * n, 0.45 * rows + 1.2), squeeze=False)
        for ax, name in zip(axes[0], names):
            v, policy = results[name]
            _grid_axes(ax, env, v, policy, terminal, name)
    elif tabular.is_blackjack(env) and hasattr(env, "observation"):
        fig = plt.figure(figsize=(8.0 * n, 7.0))
        for k, name in enumerate(names):
            v, policy = results[name]
            tables = _blackjack_tables(env, v, policy)
            dealer, player = np.meshgrid(np.arange(1, 11), np.arange(12, 22))
            for row, ace in enumerate((1, 0)):
                values, stick = tables[ace]
                label = "usable ace" if ace else "no usable ace"
                if v is not None:
                    ax = fig.add_subplot(2, 2 * n, row * 2 * n + 2 * k + 1, projection="3d")
                    ax.plot_surface(dealer, player, values, cmap="viridis", vmin=-1, vmax=1)
                    ax.set_zlim(-1, 1)
                    ax.set_xlabel("dealer showing")
                    ax.set_ylabel("player sum")
                    ax.set_title(f"{name}: v, {label}", fontsize=9)
                if policy is not None:
                    ax = fig.add_subplot(2, 2 * n, row * 2 * n + 2 * k + 2)
                    ax.imshow(
                        stick,
                        origin="lower",
                        cmap="coolwarm",
                        vmin=0,
                        vmax=1,
                        extent=(0.5, 10.5, 11.5, 21.5),
                    )
                    ax.set_xticks(range(1, 11), ["A"] + [str(d) for d in range(2, 11)])
                    ax.set_yticks(range(12, 22))
                    ax.set_xlabel("dealer showing")
                    ax.set_ylabel("player sum")
                    ax.set_title(f"{name}: policy, {label} (red: stick)", fontsize=9)
    else:
        fig, axes = plt.subplots(1, 2, figsize=(11, 4), squeeze=False)
        ax_v, ax_p = axes[0]
        gambler = type(env.unwrapped).__name__ == "GamblerEnv"
        for name in names:
            v, policy = results[name]
            states = np.arange(env.observation_space.n)
            if v is not None:
                ax_v.plot(states, v, label=name)
            if policy is not None:
                action = np.argmax(policy, axis=1)
                if gambler:  # the stake a + 1, capped at min(s, goal - s)
                    goal = env.unwrapped.goal
                    action = np.minimum(action + 1, np.minimum(states, goal - states))
                ax_p.step(states, action, where="mid", label=name)
        ax_v.set_xlabel("capital" if gambler else "state")
        ax_v.set_ylabel("value")
        ax_v.set_title("state values")
        ax_p.set_xlabel("capital" if gambler else "state")
        ax_p.set_ylabel("stake" if gambler else "greedy action")
        ax_p.set_title("greedy policy")
        for ax in (ax_v, ax_p):
            if ax.get_legend_handles_labels()[0]:
                ax.legend()
    fig.tight_layout()
    plt.close(fig)
    return fig


def smooth(x, window):
    """Moving average over the last ``window`` points (shorter at the start), same length."""
    x = np.asarray(x, dtype=np.float64)
    if window <= 1:
        return x
    cumsum = np.cumsum(np.insert(x, 0, 0.0))
    i = np.arange(1, len(x) + 1)
    lo = np.maximum(i - window, 0)
    return (cumsum[i] - cumsum[lo]) / (i - lo)


def state_values(result):
    """The state values of a :class:`~mp.rl.registry.Result`: its ``v``, else from its ``q``.

    ``v_pi(s) = sum_a pi(a | s) q(s, a)`` with the result's policy, or ``max_a q(s, a)`` when it
    has none; None when the result has neither ``v`` nor ``q``.
    """
    if result.v is not None:
        return result.v
    if result.q is None:
        return None
    if result.policy is not None:
        return np.sum(result.policy * result.q, axis=1)
    return result.q.max(axis=1)


def values_and_policy(result, kind):
    """``(v, policy)`` of a result as :func:`values_figure` and :func:`render_text` show it.

    The arrows of a random policy say nothing, so the fixed policy of a ``"prediction"``
    algorithm is shown only when it is deterministic.
    """
    policy = result.policy
    if kind == "prediction" and not (
        policy is not None and np.all(np.isclose(policy.max(axis=1), 1.0))
    ):
        policy = None
    return state_values(result), policy


def policy_text(env, shown, terminal=None, label=None):
    """:func:`render_text` of each algorithm under a ``== name on <label>`` header.

    Args:
        env: the environment.
        shown: dict ``algorithm name -> (v or None, policy or None)``.
        terminal: optional [S] bool mask of terminal states.
        label: the environment's name in the headers (default :func:`env_name`).
    """
    label = label or env_name(env)
    return "\n".join(
        f"== {name} on {label}\n" + render_text(env, v, policy, terminal)
        for name, (v, policy) in shown.items()
    )


def _mean_curve(runs, field):
    return np.stack([getattr(r, field) for r in runs]).mean(axis=0)


def learning_curves_figure(results, names=None, smooth_window=10, title=""):
    """Training curves of sampling algorithms, averaged over their runs.

    Algorithms that report an RMS error against the true values (prediction with a model)
    are drawn in a panel of RMS errors; the others in a panel of the sum of rewards per
    episode, smoothed by a moving average of ``smooth_window`` episodes.

    Args:
        results: dict ``algorithm name -> [Result of each run]``.
        names: the algorithms to draw (default: all with ``episode_returns``).
        smooth_window: moving-average window of the returns.
        title: what the runs were on (e.g. the environment's name), for the panel titles.

    Returns:
        A matplotlib figure (closed: save it, do not show it).
    """
    plt = pyplot()
    if names is None:
        names = [n for n, runs in results.items() if runs[0].episode_returns is not None]
    with_rms = [n for n in names if results[n][0].rms_errors is not None]
    with_returns = [n for n in names if n not in with_rms]
    panels = [(p, m) for p, m in (("returns", with_returns), ("rms", with_rms)) if m]
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.2), squeeze=False)
    runs = max(len(results[n]) for n in names)
    runs_text = f"mean over {runs} run{'s' if runs > 1 else ''}"
    for ax, (panel, members) in zip(axes[0], panels):
        lows, highs = [], []
        for name in members:
            if panel == "returns":
                curve = smooth(_mean_curve(results[name], "episode_returns"), smooth_window)
                lows.append(curve[curve.size // 10 :].min())  # ignore the first 10%
                highs.append(curve.max())
            else:
                curve = _mean_curve(results[name], "rms_errors")
            ax.plot(np.arange(1, curve.size + 1), curve, label=name)
        ax.set_xlabel("episode")
        if panel == "returns":
            ax.set_ylabel(f"sum of rewards per episode (moving average of {smooth_window})")
            ax.set_title(f"{title}: {runs_text}")
            low, high = min(lows), max(highs)
            margin = 0.1 * (high - low) + 1e-6
            ax.set_ylim(low - margin, high + margin)  # the first episodes would flatten the rest
        else:
            ax.set_ylabel("RMS error of v over the non-terminal states")
            ax.set_title(f"{title}: error against the true values, {runs_text}")
        ax.legend()
    fig.tight_layout()
    plt.close(fig)
    return fig


MAX_SUMMARY_POINTS = 2000


def write_summaries(directory, results, names=None, max_points=MAX_SUMMARY_POINTS):
    """Writes ``charts/episode_return`` (and ``charts/rms_error``) by episode for TensorBoard.

    One folder ``directory/<name>`` per algorithm; the curves are averaged over the runs.
    Long runs keep at most ``max_points`` points, each the mean over its stride of episodes,
    logged at the stride's last episode.

    Args:
        directory: the summaries' folder (e.g. ``model_dir/train``).
        results: dict ``algorithm name -> [Result of each run]``.
        names: the algorithms to write (default: all with ``episode_returns``).
        max_points: the most points per curve.
    """
    import tensorflow as tf

    if names is None:
        names = [n for n, runs in results.items() if runs[0].episode_returns is not None]
    for name in names:
        returns = _mean_curve(results[name], "episode_returns")
        curves = {"charts/episode_return": returns}
        if results[name][0].rms_errors is not None:
            curves["charts/rms_error"] = _mean_curve(results[name], "rms_errors")
        stride = max(1, -(-returns.size // max_points))
        writer = tf.summary.create_file_writer(os.path.join(directory, name))
        with writer.as_default():
            for start in range(0, returns.size, stride):
                episode = min(start + stride, returns.size)
                for tag, values in curves.items():
                    tf.summary.scalar(tag, float(values[start:episode].mean()), step=episode)
        writer.close()


def save_values(path, results):
    """Saves the tables of the first run of each algorithm to an ``.npz`` file, atomically.

    The arrays are named ``<algorithm>/v``, ``<algorithm>/q`` and ``<algorithm>/policy``
    (those the algorithm computes); ``np.load(path)["sarsa/q"]`` reads one back. The file is
    written to a temporary name and renamed, so no half-written file is left behind.

    Args:
        path: the ``.npz`` file.
        results: dict ``algorithm name -> [Result of each run]``.
    """
    arrays = {}
    for name, runs in results.items():
        for field in ("v", "q", "policy"):
            value = getattr(runs[0], field)
            if value is not None:
                arrays[f"{name}/{field}"] = value
    directory = os.path.dirname(os.path.abspath(path))
    handle, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".npz")
    try:
        with os.fdopen(handle, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
