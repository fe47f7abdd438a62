"""Architectures by name, so `--model=` is the one flag that picks a network.

    model = mp.cnn.get_model("classic_cnn", input_shape=(28, 28, 1), num_classes=10)

Each builder takes `input_shape`, `num_classes` (`None` returns features) and
its own keyword arguments. Chapter 3's model families register here.
"""

_BUILDERS = {}


def register(name):
    """Decorator adding a model builder to the registry under `name`."""

    def decorator(builder):
        if name in _BUILDERS:
            raise ValueError(f"A model is already registered as {name!r}")
        _BUILDERS[name] = builder
        return builder

    return decorator


def model_names():
    """The registered names, sorted."""
    return tuple(sorted(_BUILDERS))


def get_model(name, input_shape, num_classes=None, **kwargs):
    """Builds the registered model `name`.

    Raises:
      ValueError: if `name` is not registered.
    """
    if name not in _BUILDERS:
        raise ValueError(
            f"Unknown model. Expected one of {', '.join(model_names())}. Received: model={name!r}"
        )
    return _BUILDERS[name](input_shape=input_shape, num_classes=num_classes, **kwargs)
