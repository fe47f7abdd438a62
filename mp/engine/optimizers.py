"""Optimizers by name, for the `--optimizer=` flag of every app.

Course: ch2 Training Neural Networks (parameter updates).
"""

import keras

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam")


def make_optimizer(name, learning_rate, *, momentum=0.9, **kwargs):
    """Returns the Keras optimizer `name` with `learning_rate` (a float or schedule).

    Args:
      name: `sgd` (vanilla update), `momentum`, `nesterov`, `adagrad`,
        `rmsprop` or `adam`.
      learning_rate: a float or a `LearningRateSchedule`.
      momentum: the momentum coefficient of `momentum` and `nesterov`.
      **kwargs: the Keras optimizer's own arguments, e.g. `beta_1=0.5` for `adam` (an
        argument the optimizer does not take is a TypeError, never ignored).

    Raises:
      ValueError: for an unknown name.
    """
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate, **kwargs)
    if name in ("momentum", "nesterov"):
        return keras.optimizers.SGD(
            learning_rate, momentum=momentum, nesterov=name == "nesterov", **kwargs
        )
    if name == "adagrad":
        return keras.optimizers.Adagrad(learning_rate, **kwargs)
    if name == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate, **kwargs)
    if name == "adam":
        return keras.optimizers.Adam(learning_rate, **kwargs)
    raise ValueError(
        f"Unknown optimizer. Expected one of {', '.join(OPTIMIZERS)}. Received: optimizer={name!r}"
    )
