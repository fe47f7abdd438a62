"""Optimizers by name, for the `--optimizer=` flag of every app.

Course: ch2 Training Neural Networks (parameter updates).
"""

import keras

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam")


def make_optimizer(name, learning_rate, *, momentum=0.9):
    """Returns the Keras optimizer `name` with `learning_rate` (a float or schedule).

    Args:
      name: `sgd` (vanilla update), `momentum`, `nesterov`, `adagrad`,
        `rmsprop` or `adam`.
      learning_rate: a float or a `LearningRateSchedule`.
      momentum: the momentum coefficient of `momentum` and `nesterov`.

    Raises:
      ValueError: for an unknown name.
    """
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate)
    if name in ("momentum", "nesterov"):
        return keras.optimizers.SGD(learning_rate, momentum=momentum, nesterov=name == "nesterov")
    if name == "adagrad":
        return keras.optimizers.Adagrad(learning_rate)
    if name == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate)
    if name == "adam":
        return keras.optimizers.Adam(learning_rate)
    raise ValueError(
        f"Unknown optimizer. Expected one of {', '.join(OPTIMIZERS)}. Received: optimizer={name!r}"
    )
