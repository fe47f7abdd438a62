"""Learning-rate schedules selectable by name.

Every schedule is a `keras.optimizers.schedules.LearningRateSchedule`, so it
is saved with the optimizer and works with any Keras optimizer.
"""

import keras

SCHEDULES = ("constant", "cosine", "exponential", "step")


def make_schedule(
    name, learning_rate, train_steps, *, warmup_steps=0, decay_rate=0.1, decay_steps=None, alpha=0.0
):
    """Returns a learning rate (a float for `constant`) or a schedule.

    Args:
      name: `constant`, `cosine` (to `alpha * learning_rate` at `train_steps`),
        `exponential` (times `decay_rate` every `decay_steps`, smoothly) or `step`
        (times `decay_rate` at each multiple of `decay_steps`).
      learning_rate: the initial (after warm-up: peak) learning rate.
      train_steps: total number of training steps.
      warmup_steps: linear warm-up from 0, for `cosine` only.
      decay_rate: factor for `exponential` and `step`.
      decay_steps: period of `exponential` and `step`; default `train_steps // 3`.
      alpha: final fraction of the learning rate for `cosine`.

    Raises:
      ValueError: for an unknown name or a non-positive learning rate.
    """
    if not learning_rate > 0:
        raise ValueError(f"learning_rate must be positive. Received: learning_rate={learning_rate}")
    decay_steps = decay_steps or max(1, train_steps // 3)
    if name == "constant":
        return float(learning_rate)
    if name == "cosine":
        if warmup_steps:
            return keras.optimizers.schedules.CosineDecay(
                0.0,
                max(1, train_steps - warmup_steps),
                alpha=alpha,
                warmup_target=learning_rate,
                warmup_steps=warmup_steps,
            )
        return keras.optimizers.schedules.CosineDecay(
            learning_rate, max(1, train_steps), alpha=alpha
        )
    if name == "exponential":
        return keras.optimizers.schedules.ExponentialDecay(learning_rate, decay_steps, decay_rate)
    if name == "step":
        boundaries = list(range(decay_steps, max(train_steps, decay_steps + 1), decay_steps))
        values = [learning_rate * decay_rate**i for i in range(len(boundaries) + 1)]
        return keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)
    raise ValueError(
        f"Unknown lr_schedule. Expected one of {', '.join(SCHEDULES)}. "
        f"Received: lr_schedule={name!r}"
    )
