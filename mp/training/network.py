"""An MLP assembled from chapter 2's parts, one keyword argument per technique.

    images -> flatten -> [noise] -> (dense -> [batch norm] -> activation -> [dropout]) x L
           -> dense logits

Each bracketed block is one of the chapter's techniques, written in this
package (`mp.training.*`): Gaussian noise injection on the input, batch
normalisation before the nonlinearity (where the batch-norm paper applies it;
the dense layer then needs no bias, since the normalisation's beta takes its
place), inverted dropout after it, an L2 weight penalty on every kernel, and
the initialiser of every kernel (Xavier by default; `zeros` shows the pitfall
of identical units). `apps/train_mlp.py` exposes each as a flag and
`apps/compare.py` sweeps them.

Course: ch2 Training Neural Networks, ch2.1 Activation Functions,
ch2.3 Regularization methods.
"""

import keras

from mp.training import activations, initializers, regularization


def configurable_mlp(
    input_shape,
    hidden_units=(256, 128),
    num_classes=10,
    *,
    activation="relu",
    initializer="xavier",
    dropout=0.0,
    batch_norm=False,
    weight_decay=0.0,
    noise_stddev=0.0,
    seed=None,
    name="mlp",
):
    """Builds the MLP.

    Args:
      input_shape: shape of one input, e.g. `(28, 28, 1)`; it is flattened.
      hidden_units: widths of the hidden layers.
      num_classes: size of the logits; `None` returns the last hidden features.
      activation: a name of `mp.training.activations.ACTIVATIONS`.
      initializer: a name of `mp.training.initializers.INITIALIZERS`, used for
        every kernel (biases start at zero).
      dropout: inverted-dropout rate after each hidden activation, in [0, 1).
      batch_norm: batch normalisation between each dense layer and its activation.
      weight_decay: L2 penalty coefficient on every kernel (added to the loss).
      noise_stddev: standard deviation of Gaussian noise added to the inputs
        in training.
      seed: seed of the dropout masks and the noise (weights follow the global
        seed, `keras.utils.set_random_seed`).
      name: the model's name.

    Returns:
      A functional `keras.Model` mapping inputs to logits (or features).

    Raises:
      ValueError: for arguments out of range or unknown names.
    """
    units = tuple(hidden_units)
    if not units or any(int(u) != u or u <= 0 for u in units):
        raise ValueError(
            f"hidden_units must be positive integers. Received: hidden_units={hidden_units}"
        )
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1). Received: dropout={dropout}")
    if weight_decay < 0 or noise_stddev < 0:
        raise ValueError(
            "weight_decay and noise_stddev must be >= 0. Received: "
            f"weight_decay={weight_decay}, noise_stddev={noise_stddev}"
        )
    activations.get(activation)  # unknown names fail here, before any layer is made
    penalty = regularization.L1L2(l2=weight_decay) if weight_decay else None

    images = keras.Input(shape=tuple(input_shape), name="images")
    x = keras.layers.Flatten(name="flatten")(images)
    if noise_stddev:
        x = regularization.GaussianNoise(noise_stddev, seed=seed, name="input_noise")(x)
    for i, width in enumerate(units, start=1):
        x = keras.layers.Dense(
            width,
            use_bias=not batch_norm,
            kernel_initializer=initializers.get(initializer),
            kernel_regularizer=penalty,
            name=f"dense{i}",
        )(x)
        if batch_norm:
            x = regularization.BatchNormalization(name=f"batch_norm{i}")(x)
        x = activations.get(activation, name=f"{activation}{i}")(x)
        if dropout:
            x = regularization.Dropout(
                dropout, seed=None if seed is None else seed + i, name=f"dropout{i}"
            )(x)
    if num_classes is None:
        return keras.Model(images, x, name=name)
    logits = keras.layers.Dense(
        num_classes,
        kernel_initializer=initializers.get(initializer),
        kernel_regularizer=penalty,
        name="logits",
    )(x)
    return keras.Model(images, logits, name=name)
