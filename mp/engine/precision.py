"""Mixed precision: the `--precision` of every app, loss scaling, and what stays float32.

    float32          layers compute in float32 and keep float32 variables (the default)
    mixed_bfloat16   layers compute in bfloat16, their variables stay float32 (Keras casts
                     each one as a layer reads it); bfloat16 has float32's exponent range
                     and an 8-bit mantissa, so gradients need no scaling. Fast on CPUs with
                     AVX-512 bf16 / AMX and on TPUs.
    mixed_float16    layers compute in float16 (a GPU's tensor cores); its exponent range is
                     narrow (smallest normal 6e-5), so small gradients would underflow to
                     zero. The optimizer is wrapped in `keras.optimizers.LossScaleOptimizer`:
                     the backward pass starts from `S * loss` and the optimizer divides the
                     gradients by `S` before the update; `S` starts at 2^15, halves (and the
                     step is skipped) when a gradient overflows, doubles after 2000 good steps.

The policy is Keras' global dtype policy, read by each layer when it is created: set it
before the models are built (the experiment runner does) and restore it afterwards.

Whatever is a probability or a loss stays float32: every task casts logits and
distribution parameters to float32 (`mp.engine.task.float32`) before softmax
cross-entropy, metrics and TFP distributions, where bfloat16's 3 significant digits
would round log-probabilities. Batch normalisation keeps its moving statistics in
float32 variables and normalises in float32, as Keras does.

Checkpoints hold the float32 variables, the same in every precision: a run resumes
under another precision. The loss scale of `mixed_float16` is not checkpointed (a
resumed run starts again from 2^15, as a new one does; an overflow costs one skipped
step), so that a checkpoint fits every precision. A saved `model.keras` loads under any
global policy and computes in the precision it was saved with (Keras records each
layer's dtype policy in the file); `recast(model)` rebuilds it for another precision.

Course: ch7.1 TensorFlow tips (speed: mixed precision).
"""

import contextlib

import keras

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")


def _check(precision):
    if precision not in PRECISIONS:
        raise ValueError(
            f"precision must be one of {', '.join(PRECISIONS)}. Received: precision={precision!r}"
        )


def current():
    """The name of Keras' global dtype policy (e.g. `float32`, `mixed_bfloat16`)."""
    return keras.config.dtype_policy().name


def set_precision(precision):
    """Sets Keras' global dtype policy to `precision`; returns the previous policy's name.

    Layers created afterwards compute in the policy's dtype; existing ones keep theirs.

    Raises:
      ValueError: for a name not in `PRECISIONS`.
    """
    _check(precision)
    previous = current()
    keras.config.set_dtype_policy(precision)
    return previous


def recast(model, precision=None):
    """`model` rebuilt to compute in `precision` (default: the global policy), same weights.

    A loaded `.keras` model computes in the precision it was saved with, whatever the
    global policy says. The layers that share the model's most common policy (its
    precision when it was built) take the new one; a layer that was set apart (a float32
    head in a mixed model) keeps its own. The variables stay float32 in every policy, so
    the weights carry over unchanged. Returns `model` itself if nothing changes.

    Args:
      model: a functional or sequential `keras.Model`.
      precision: a name of `PRECISIONS`; `None` reads the global policy.
    """
    target = precision or current()
    _check(target)
    policies = [layer.dtype_policy.name for layer in model.layers]
    saved = max(set(policies), key=policies.count) if policies else target
    if saved == target:
        return model

    def clone(layer):
        config = layer.get_config()
        if layer.dtype_policy.name == saved:
            config["dtype"] = target
        return layer.__class__.from_config(config)

    copy = keras.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy


def restore(name):
    """Sets the global policy back to `name` (a value `set_precision` returned)."""
    keras.config.set_dtype_policy(name)


@contextlib.contextmanager
def precision_scope(precision):
    """`with precision_scope("mixed_bfloat16"): model = ...` builds under that policy only."""
    previous = set_precision(precision)
    try:
        yield
    finally:
        restore(previous)


def loss_scaled(optimizer, precision=None):
    """`optimizer` wrapped in a `LossScaleOptimizer` under `mixed_float16`, else as it is.

    Args:
      optimizer: a `keras.optimizers.Optimizer` (Keras' or `mp.training.optimizers`').
      precision: a name of `PRECISIONS`; `None` reads the global policy.
    """
    precision = precision or current()
    if precision == "mixed_float16" and not isinstance(
        optimizer, keras.optimizers.LossScaleOptimizer
    ):
        return keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def unscaled(optimizer):
    """The optimizer that holds the update's state: a `LossScaleOptimizer`'s inner one.

    Checkpoints hold this one, so a checkpoint is the same in every precision.
    """
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return optimizer.inner_optimizer
    return optimizer
