"""Gradient checking: backpropagation against finite differences.

Backpropagation computes every derivative of a loss with the chain rule, one
local gradient per operation; a mistake in one local gradient (a custom
layer, a `tf.custom_gradient`) gives a wrong gradient without any error. A
gradient check compares it with the centred finite difference, which needs
nothing but evaluations of the function:

    df/dx_i ~ (f(x + h e_i) - f(x - h e_i)) / (2h)

where `e_i` is the unit vector of coordinate `i`. Its error is of order
`h^2` (the `h^2 f'''/6` term of the Taylor series; the one-sided difference
`(f(x + h) - f(x)) / h` is only of order `h`), plus the rounding error of the
subtraction, of order `eps * |f| / h`. In float64 (`eps ~ 1e-16`) with
`h = 1e-5` both are around 1e-10 relative, so a correct gradient agrees to
about 1e-8 and a wrong one stands out. In float32 (`eps ~ 1e-7`) rounding
alone would be ~1e-2: always check in float64.

The comparison uses the relative error of a whole tensor over the checked
coordinates,

    error = ||g_num - g_ana|| / max(||g_num|| + ||g_ana||, tiny),

which is 0 for equal gradients and 1 when they have nothing in common,
whatever the scale of the gradient. Each coordinate costs two evaluations of
`f`, so `max_coordinates` checks a random sample of the coordinates of each
tensor: a wrong local gradient usually corrupts many coordinates, and a
sample finds it.

Kinks: where the function is not differentiable (ReLU at 0, max pooling at
a tie) the one-sided slopes differ, and a difference quotient whose interval
`[x - h, x + h]` contains a kink mixes them. One weight of a first
convolution moves thousands of pre-activations at once, so in a large ReLU
network one of them often lies within reach of `h = 1e-5` (relative errors of
1e-4 to 1e-2 on that tensor alone); `h = 1e-6` makes it ten times less likely
at a still negligible rounding cost in float64. A failure confined to one
tensor of a ReLU network that vanishes with a smaller `h` or another seed is
a kink, not a wrong gradient.

Randomness: a layer that samples in training (dropout, noise, augmentation)
is a different function at every call. `check_layer` calls it with
`training=False` by default; with `training=True` it resets every
non-trainable variable of the model (the seed generators' states, and batch
norm's moving statistics) to its starting value before each evaluation, so
every evaluation draws the same masks and noise and the function is fixed.

Course: ch2.2 Backpropagation.
"""

import keras
import numpy as np
import tensorflow as tf

_TINY = np.finfo(np.float64).tiny


def sample_coordinates(size, max_coordinates=None, seed=0):
    """The flat indices of a tensor of `size` entries to check.

    Args:
      size: number of entries of the tensor.
      max_coordinates: how many to check; `None` (or >= size) checks all.
      seed: seed of the random sample.

    Returns:
      A sorted int array of distinct flat indices.
    """
    if max_coordinates is None or max_coordinates >= size:
        return np.arange(size)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(size, size=max_coordinates, replace=False))


def relative_error(g_num, g_ana):
    """`||g_num - g_ana|| / max(||g_num|| + ||g_ana||, tiny)`, a float in [0, 1]."""
    g_num = np.asarray(g_num, np.float64).ravel()
    g_ana = np.asarray(g_ana, np.float64).ravel()
    scale = np.linalg.norm(g_num) + np.linalg.norm(g_ana)
    return float(np.linalg.norm(g_num - g_ana) / max(scale, _TINY))


def numerical_gradient(f, x, h=1e-5, max_coordinates=None, seed=0):
    """Centred finite-difference gradient of a scalar function of one tensor.

        g_i = (f(x + h e_i) - f(x - h e_i)) / (2h)

    Args:
      f: a function of one float64 tensor, returning a scalar.
      x: the point, an array-like (converted to float64).
      h: the step.
      max_coordinates: number of coordinates to compute, sampled at random;
        `None` computes all.
      seed: seed of the sample.

    Returns:
      A float64 array of the shape of `x`; coordinates left out of the sample
      are NaN.
    """
    x = np.array(x, dtype=np.float64)
    gradient = np.full(x.shape, np.nan)
    for i in sample_coordinates(x.size, max_coordinates, seed):
        x_plus, x_minus = x.copy(), x.copy()
        x_plus.flat[i] += h
        x_minus.flat[i] -= h
        f_plus = float(f(tf.constant(x_plus)))
        f_minus = float(f(tf.constant(x_minus)))
        gradient.flat[i] = (f_plus - f_minus) / (2 * h)
    return gradient


def _as_variables(variables_or_tensors):
    """A dict name -> variable; tensors and arrays become new float64 `tf.Variable`s."""
    if isinstance(variables_or_tensors, dict):
        items = list(variables_or_tensors.items())
    else:
        items = []
        for k, value in enumerate(variables_or_tensors):
            if isinstance(value, keras.Variable):
                name = value.path
            elif isinstance(value, tf.Variable):
                name = value.name.split(":")[0]  # "w:0" -> "w"
            else:
                name = f"arg{k}"
            items.append((name, value))
    named = {}
    for name, value in items:
        if not isinstance(value, (tf.Variable, keras.Variable)):
            value = tf.Variable(np.asarray(value, np.float64), name="checked")
        if value.dtype != "float64":
            raise ValueError(
                "Gradient checks need float64 variables (float32 rounding swamps a finite "
                f"difference). Received: {name!r} of dtype {value.dtype}"
            )
        key, n = name, 1
        while key in named:  # two variables with the same name
            key, n = f"{name}_{n}", n + 1
        named[key] = value
    return named


def check_gradients(f, variables_or_tensors, h=1e-5, max_coordinates=64, seed=0):
    """Relative error between backpropagation and finite differences, per tensor.

    `f` is called as `f(*values)` with the checked tensors in order (a
    variable is passed as itself, so `f` may also ignore its arguments and
    read the variables, e.g. through a model). Each tensor is perturbed in
    place one coordinate at a time; tensors and arrays are first copied into
    float64 `tf.Variable`s, which are what `f` receives.

        x = np.random.default_rng(0).normal(size=(3, 4))
        w = tf.Variable(np.ones((4, 2)))
        errors = check_gradients(lambda x, w: tf.reduce_sum(tf.sin(x @ w)), {"x": x, "w": w})
        assert_gradients_match(errors)

    Args:
      f: a function returning a scalar tensor.
      variables_or_tensors: a dict name -> variable or tensor, or a list
        (named by the variables' paths, or `arg0`, `arg1`, ...). All float64.
      h: the finite-difference step.
      max_coordinates: coordinates checked per tensor, sampled at random
        (each costs two evaluations of `f`); `None` checks all.
      seed: seed of the samples.

    Returns:
      A dict name -> relative error (see the module docstring).

    Raises:
      ValueError: if a variable is not float64.
    """
    named = _as_variables(variables_or_tensors)
    variables = list(named.values())
    # A Keras variable is differentiated through the tensor it wraps: the tape cannot take
    # the Keras object itself as a source (an unconnected one fails on its zero gradient).
    sources = [v.value if isinstance(v, keras.Variable) else v for v in variables]
    with tf.GradientTape() as tape:
        for source in sources:  # also the non-trainable ones
            tape.watch(source)
        loss = f(*variables)
    analytic = tape.gradient(loss, sources, unconnected_gradients=tf.UnconnectedGradients.ZERO)

    errors = {}
    for k, (name, v) in enumerate(named.items()):
        original = v.numpy()
        coordinates = sample_coordinates(original.size, max_coordinates, seed + k)
        g_num = np.empty(len(coordinates))
        for n, i in enumerate(coordinates):
            values = []
            for step in (h, -h):
                perturbed = original.copy()
                perturbed.flat[i] += step
                v.assign(perturbed)
                values.append(float(f(*variables)))
            g_num[n] = (values[0] - values[1]) / (2 * h)
        v.assign(original)
        g_ana = np.asarray(tf.convert_to_tensor(analytic[k])).ravel()[coordinates]
        errors[name] = relative_error(g_num, g_ana)
    return errors


def check_layer(
    build_fn,
    input_shape,
    batch_size=2,
    seed=0,
    *,
    training=False,
    h=1e-5,
    max_coordinates=64,
    max_variables=None,
):
    """Gradient check of a layer or model with respect to its input and every trainable variable.

    `build_fn` is called with Keras' floatx and global dtype policy set to
    float64 (the previous values are restored after), so its variables are
    float64. The input is a float64 standard normal batch and the loss

        L = sum(r * y^2 + s * y)

    with `y` the output (summed over the outputs, for several) and `r`, `s`
    fixed standard normal arrays of its shape, so every output coordinate
    matters, each with its own weight. The squares make `dL/dy = 2 r y + s`
    depend on the output; the linear term keeps it nonzero where `y = 0`
    (a model with zero-initialised weights outputs zeros, and with the
    squares alone every gradient would be 0 and the check empty).

    Args:
      build_fn: a function without arguments returning a `keras.layers.Layer`
        or `keras.Model`.
      input_shape: shape of one input, without the batch axis.
      batch_size: size of the random batch.
      seed: seed of the input, of `r` and `s`, and of the sampled variables
        and coordinates (not of the layer's weights: those follow Keras'
        global seed, `keras.utils.set_random_seed`).
      training: the `training` argument of the calls. With `True`, every
        non-trainable variable (seed generators, moving statistics) is reset
        before each evaluation, so the randomness is the same in each.
      h: the finite-difference step.
      max_coordinates: coordinates checked per tensor (`None` for all).
      max_variables: check a random sample of at most this many trainable
        variables (with the input always); `None` checks all. With both
        limits a check costs at most `2 * max_coordinates * (max_variables + 1)`
        forward passes, however large the model.

    Returns:
      A dict name -> relative error: `input` and the path of every checked
      trainable variable.

    Raises:
      ValueError: if the layer's variables are not float64 (a layer that
        ignores `floatx`).
    """
    # Layers take their dtype from the global dtype policy, which Keras derives
    # from floatx once, at the first layer made; so both are set, and restored.
    previous_floatx, previous_policy = keras.config.floatx(), keras.config.dtype_policy()
    keras.config.set_floatx("float64")
    keras.config.set_dtype_policy("float64")
    try:
        layer = build_fn()
        rng = np.random.default_rng(seed)
        x = tf.Variable(rng.normal(size=(batch_size, *input_shape)), name="input")
        # Building in inference mode leaves seeds and moving statistics untouched.
        outputs = tf.nest.flatten(layer(x, training=False))
        state = [v.numpy() for v in layer.non_trainable_variables]
        r = [tf.constant(rng.normal(size=y.shape), dtype=y.dtype) for y in outputs]
        s = [tf.constant(rng.normal(size=y.shape), dtype=y.dtype) for y in outputs]

        def loss(*_):
            if training:  # the same masks and noise in every evaluation
                for v, value in zip(layer.non_trainable_variables, state):
                    v.assign(value)
            outputs = tf.nest.flatten(layer(x, training=training))
            return tf.add_n(
                [tf.reduce_sum(r_i * tf.square(y) + s_i * y) for r_i, s_i, y in zip(r, s, outputs)]
            )

        checked = {"input": x}
        variables = layer.trainable_variables
        for i in sample_coordinates(len(variables), max_variables, seed):
            checked[variables[i].path] = variables[i]
        # One traced function: a deep model evaluated eagerly 100 times costs seconds.
        return check_gradients(
            tf.function(loss), checked, h=h, max_coordinates=max_coordinates, seed=seed
        )
    finally:
        keras.config.set_floatx(previous_floatx)
        keras.config.set_dtype_policy(previous_policy)


def check_model(model_fn, input_shape, **kwargs):
    """`check_layer` for a model builder (a `keras.Model` is a layer); same arguments."""
    return check_layer(model_fn, input_shape, **kwargs)


def assert_gradients_match(errors, tolerance=1e-6):
    """Raises if any relative error of `errors` (from `check_gradients`) exceeds `tolerance`.

    Args:
      errors: a dict name -> relative error.
      tolerance: the largest acceptable error.

    Raises:
      AssertionError: listing every offending tensor with its error.
    """
    offenders = {name: e for name, e in errors.items() if not e <= tolerance}  # NaN offends
    if offenders:
        lines = [f"  {name}: {e:.3g}" for name, e in sorted(offenders.items(), key=lambda i: -i[1])]
        raise AssertionError(
            f"Gradients differ from finite differences (tolerance {tolerance:g}):\n"
            + "\n".join(lines)
        )
