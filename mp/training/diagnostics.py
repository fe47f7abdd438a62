"""Training diagnostics: dead ReLU units and gradient norms.

Dead ReLUs. A ReLU unit outputs `max(0, w^T x + b)` and passes gradient only
where its pre-activation is positive. One large update (a high learning rate)
can move `w` and `b` so that `w^T x + b < 0` for every input: the unit then
outputs 0 on the whole data set, its weights get zero gradient, and it stays
dead. `dead_relu_fraction` measures

    dead fraction of a layer = #{units j : a_j(x) = 0 for every x in the sample} / #units

where a "unit" is one entry of the last axis: a neuron of a dense layer, a
channel (filter) of a conv layer, which is dead only if it is 0 at every
position of every example. A unit that fires for a single example is alive.

Gradient norms. `gradient_norms` gives `||dL/dv||_2` for every trainable
variable `v` on one batch, and `per_layer_gradient_norms` the global norm
`sqrt(sum_v ||dL/dv||^2)` over the variables of each layer. Norms that shrink
by orders of magnitude from the output towards the input show vanishing
gradients (saturating units, too-small weights); norms that blow up show
exploding ones.

Course: ch2.1 Activation Functions ("Advantages and disadvantages of ReLU"),
ch2 Training Neural Networks ("Warning: small random numbers")
"""

import keras
import numpy as np
import tensorflow as tf

from mp.engine.task import float32
from mp.training import activations


def is_relu_layer(layer):
    """Whether the output of `layer` is a ReLU of something.

    True for `mp.training.activations.ReLU` (`activations.get("relu")`),
    `keras.layers.ReLU` without a negative slope or threshold, and any layer
    with `activation="relu"` (Dense, Conv*, `keras.layers.Activation`).

    Args:
        layer: a `keras.layers.Layer`.

    Returns:
        A bool.
    """
    if isinstance(layer, activations.ReLU):
        return True
    if isinstance(layer, keras.layers.ReLU):
        return layer.negative_slope == 0 and layer.threshold == 0
    return getattr(layer, "activation", None) in (keras.activations.relu, activations.relu)


def _batches(x, batch_size):
    """Yields input batches of `x`: an array or tensor, or a dataset of `(x, y)` or `x`."""
    if isinstance(x, tf.data.Dataset):
        for element in x:
            yield element[0] if isinstance(element, (tuple, list)) else element
    else:
        for start in range(0, len(x), batch_size):
            yield x[start : start + batch_size]


def dead_relu_fraction(model, x, batch_size=256):
    """The fraction of ReLU units that output exactly 0 for every example of `x`.

    Looks at the layers of `model` (top level) whose output is a ReLU
    (`is_relu_layer`), reads their outputs through one feature-extraction
    model in inference mode, and records per unit whether it was ever
    positive.

    Example:
        dead = dead_relu_fraction(model, images)   # {"dense1": 0.25, ..., "all": 0.2}

    Args:
        model: a built functional or Sequential `keras.Model`.
        x: the inputs: a NumPy array or tensor (sliced into batches of
            `batch_size`), or a `tf.data.Dataset` of `(x, y)` batches or of
            `x` batches.
        batch_size: batch size used to slice an array.

    Returns:
        A dict `{layer_name: fraction}` for every ReLU layer, plus `"all"`:
        the dead units of all those layers over their total number of units
        (0.0 when the model has no ReLU layer).

    Raises:
        ValueError: if `batch_size < 1`, `x` is empty, or the model has no
            symbolic inputs (a subclassed model that was never built
            functionally).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1. Received: batch_size={batch_size}")
    layers = [layer for layer in model.layers if is_relu_layer(layer)]
    if not layers:
        return {"all": 0.0}
    try:
        inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
        extractor = keras.Model(inputs, [layer.output for layer in layers])
    except (AttributeError, TypeError, ValueError) as error:
        raise ValueError(
            "dead_relu_fraction needs a functional or Sequential model with an Input. "
            f"Received: {type(model).__name__} ({error})"
        ) from error

    ever_active = [np.zeros(layer.output.shape[-1], bool) for layer in layers]  # one per unit
    num_examples = 0
    for batch in _batches(x, batch_size):
        outputs = extractor(batch, training=False)
        outputs = [outputs] if len(layers) == 1 else outputs
        num_examples += int(outputs[0].shape[0])
        for alive, out in zip(ever_active, outputs):
            # Active somewhere in this batch: > 0 for any example and any position.
            alive |= tf.reduce_any(tf.reshape(out > 0, [-1, out.shape[-1]]), axis=0).numpy()
    if num_examples == 0:
        raise ValueError("x must contain at least one example. Received: an empty x")

    result = {layer.name: float(np.mean(~alive)) for layer, alive in zip(layers, ever_active)}
    dead_units = sum(int(np.sum(~alive)) for alive in ever_active)
    total_units = sum(alive.size for alive in ever_active)
    result["all"] = dead_units / total_units
    return result


def _gradients(model, x, y, loss_fn):
    """`(variables, gradients)` of the loss on one batch, in inference mode."""
    if loss_fn is None:

        def loss_fn(labels, logits):
            return tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
            )

    variables = model.trainable_variables
    with tf.GradientTape() as tape:
        loss = loss_fn(y, float32(model(x, training=False)))  # float32 under a mixed policy
        if model.losses:  # penalties such as L2 weight decay are part of the trained loss
            loss += tf.add_n(model.losses)
    return variables, tape.gradient(loss, variables)


def gradient_norms(model, x, y, loss_fn=None):
    """The L2 norm `||dL/dv||` of the gradient of every trainable variable on one batch.

    The model runs in inference mode (`training=False`: dropout off, batch
    normalisation with its moving statistics), so measuring changes nothing
    in the model. The loss is `loss_fn(y, model(x))` plus the model's own
    losses (`model.losses`, e.g. weight penalties).

    Args:
        model: a `keras.Model` whose outputs `loss_fn` accepts.
        x: one batch of inputs.
        y: its targets (integer labels for the default loss).
        loss_fn: `loss_fn(y, outputs) -> scalar`; default: the mean of
            `tf.nn.sparse_softmax_cross_entropy_with_logits` (outputs are logits).

    Returns:
        A dict `{variable_path: norm}` (e.g. `"dense1/kernel"`), floats; a
        variable the loss does not depend on gets 0.0.
    """
    variables, grads = _gradients(model, x, y, loss_fn)
    return {
        v.path: 0.0 if g is None else float(tf.norm(tf.convert_to_tensor(g)))
        for v, g in zip(variables, grads)
    }


def per_layer_gradient_norms(model, x, y, loss_fn=None):
    """The global gradient norm of each layer: `sqrt(sum_v ||dL/dv||^2)` over its variables.

    Variables are grouped by the layer part of their path (`"dense1/kernel"`
    and `"dense1/bias"` form `"dense1"`). Same loss and mode as `gradient_norms`.

    Args:
        model: a `keras.Model`.
        x: one batch of inputs.
        y: its targets.
        loss_fn: as in `gradient_norms`.

    Returns:
        A dict `{layer_path: norm}` in the order of the model's variables, floats.
    """
    squares = {}
    for path, norm in gradient_norms(model, x, y, loss_fn).items():
        layer = path.rsplit("/", 1)[0]
        squares[layer] = squares.get(layer, 0.0) + norm**2
    return {layer: float(np.sqrt(total)) for layer, total in squares.items()}


def monitor(model, x, y):
    """A `step -> {name: value}` function for `Trainer(diagnostics=...)` on a fixed sample.

    It reports `dead_relu_fraction` over all ReLU layers, `dead_relu/<layer>` and
    `grad_norm/<layer>` (cross-entropy gradients of `x`, `y`).
    """

    def measure(step):
        del step
        dead = dead_relu_fraction(model, x)
        norms = per_layer_gradient_norms(model, x, y)
        values = {"dead_relu_fraction": dead.pop("all")}
        values |= {f"dead_relu/{name}": fraction for name, fraction in dead.items()}
        values |= {f"grad_norm/{name}": norm for name, norm in norms.items()}
        return values

    return measure
