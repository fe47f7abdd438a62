"""Weight initialisation: why not zeros, why not tiny, and Xavier's variance.

A dense kernel `W` of shape `[n_in, n_out]` maps `n_in` inputs to `n_out`
units; a conv kernel `[kh, kw, c_in, c_out]` does the same for every
position, with `fan_in = kh * kw * c_in` inputs per output and
`fan_out = kh * kw * c_out` (`compute_fans`, the same rule as Keras).

* Zeros (`Zeros`): a pitfall. Every unit of a layer computes the same output,
  receives the same gradient and takes the same update, so the units stay
  identical for ever: the layer behaves like a single unit. Random weights
  break this symmetry. (Biases may start at 0: the random weights already
  make the units differ.)
* Small random numbers (`SmallNormal`, std 0.01): the units differ, but
  backpropagation multiplies the gradient signal `dL/dz` by every layer's
  weights, roughly by `std * sqrt(n)` per layer (0.01 * 8 = 0.08 for 64
  units): through ten layers it shrinks by about 0.08^10 ~ 1e-11. The
  activations shrink by the same factor going forward, so every kernel
  gradient `dL/dW_l = a_{l-1}^T dL/dz_l` of a ten-layer tanh MLP is ~1e-10
  (Xavier: ~0.3) and the network barely learns.
* Xavier / Glorot (`XavierNormal`, `XavierUniform`; Glorot and Bengio, 2010,
  "Understanding the difficulty of training deep feedforward neural
  networks"): choose `Var(W) = 2 / (n_in + n_out)`, the compromise between
  `1 / n_in`, which keeps the variance of the activations constant going
  forward, and `1 / n_out`, which keeps the variance of the gradients
  constant going backward (for a unit with slope 1 at 0, as tanh).
  A uniform on [-limit, limit] has variance limit^2 / 3, so
  `limit = sqrt(6 / (n_in + n_out))` gives the same variance.
* He (`HeNormal`; He et al., 2015, arXiv:1502.01852): `Var(W) = 2 / n_in`.
  A ReLU zeroes half of its inputs on average, halving the second moment;
  the factor 2 restores it.

Differences from Keras: `keras.initializers.GlorotNormal` and `HeNormal`
draw from a normal truncated at 2 standard deviations and widen it (std
divided by 0.8796) so the variance still equals the formula; the normal
initialisers here are not truncated (the plain normal of the formula): same
mean and variance, but rare values beyond the truncation point. Uniform
limits are identical.

Seeds: with an integer `seed` an initialiser returns the same values at
every call (and a saved model records the seed); with `seed=None` each call
draws new values from Keras' global generator, reproducible after
`keras.utils.set_random_seed`. (Keras' own unseeded initialisers repeat
their values instead.)

Course: ch2 Training Neural Networks ("Pitfall: all zero initialization",
"Warning: small random numbers", "Xavier initialization")
"""

import math

import keras

INITIALIZERS = ("zeros", "small", "xavier", "xavier_uniform", "he")


def compute_fans(shape):
    """`(fan_in, fan_out)` of a weight shape, as Keras computes them.

    Dense `[n_in, n_out]` -> `(n_in, n_out)`. Conv `[kh, kw, c_in, c_out]`
    (any number of spatial axes) -> `(kh * kw * c_in, kh * kw * c_out)`: each
    output sees a receptive field of `kh * kw` positions of `c_in` channels.
    A vector `[n]` gives `(n, n)`, a scalar `(1, 1)`.

    Args:
        shape: the weight's shape, a sequence of ints.

    Returns:
        A tuple of two ints.
    """
    shape = tuple(int(d) for d in shape)
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive_field = math.prod(shape[:-2])  # 1 for a dense kernel
    return shape[-2] * receptive_field, shape[-1] * receptive_field


class _Random(keras.initializers.Initializer):
    """Base of the random initialisers: the seed and its config."""

    def __init__(self, seed=None):
        if seed is not None and not isinstance(seed, int):
            raise ValueError(f"seed must be an int or None. Received: seed={seed!r}")
        self.seed = seed

    def get_config(self):
        return {"seed": self.seed}

    def _normal(self, shape, stddev, dtype):
        dtype = dtype or keras.backend.floatx()
        return keras.random.normal(shape, stddev=stddev, dtype=dtype, seed=self.seed)

    def _uniform(self, shape, limit, dtype):
        dtype = dtype or keras.backend.floatx()
        return keras.random.uniform(shape, -limit, limit, dtype=dtype, seed=self.seed)


@keras.saving.register_keras_serializable(package="mp")
class Zeros(keras.initializers.Initializer):
    """All weights 0. For biases it is fine; for kernels it is the symmetry pitfall."""

    def __call__(self, shape, dtype=None):
        return keras.ops.zeros(shape, dtype=dtype or keras.backend.floatx())

    def get_config(self):
        return {}


@keras.saving.register_keras_serializable(package="mp")
class SmallNormal(_Random):
    """Normal weights with a small fixed standard deviation, `W ~ N(0, stddev^2)`.

    Args:
        stddev: the standard deviation (default 0.01), > 0.
        seed: an int for the same values at every call, or None.

    Raises:
        ValueError: if `stddev <= 0` or `seed` is not an int.
    """

    def __init__(self, stddev=0.01, seed=None):
        super().__init__(seed)
        if stddev <= 0:
            raise ValueError(f"stddev must be > 0. Received: stddev={stddev}")
        self.stddev = float(stddev)

    def __call__(self, shape, dtype=None):
        return self._normal(shape, self.stddev, dtype)

    def get_config(self):
        return {**super().get_config(), "stddev": self.stddev}


@keras.saving.register_keras_serializable(package="mp")
class XavierNormal(_Random):
    """Xavier / Glorot normal: `W ~ N(0, 2 / (n_in + n_out))`, not truncated.

    Args:
        seed: an int for the same values at every call, or None.
    """

    def __call__(self, shape, dtype=None):
        fan_in, fan_out = compute_fans(shape)
        return self._normal(shape, math.sqrt(2.0 / (fan_in + fan_out)), dtype)


@keras.saving.register_keras_serializable(package="mp")
class XavierUniform(_Random):
    """Xavier / Glorot uniform: `W ~ U(-limit, limit)`, `limit = sqrt(6 / (n_in + n_out))`.

    Its variance `limit^2 / 3 = 2 / (n_in + n_out)` equals `XavierNormal`'s.

    Args:
        seed: an int for the same values at every call, or None.
    """

    def __call__(self, shape, dtype=None):
        fan_in, fan_out = compute_fans(shape)
        return self._uniform(shape, math.sqrt(6.0 / (fan_in + fan_out)), dtype)


@keras.saving.register_keras_serializable(package="mp")
class HeNormal(_Random):
    """He normal, for ReLU networks: `W ~ N(0, 2 / n_in)`, not truncated.

    Args:
        seed: an int for the same values at every call, or None.
    """

    def __call__(self, shape, dtype=None):
        fan_in, _ = compute_fans(shape)
        return self._normal(shape, math.sqrt(2.0 / fan_in), dtype)


_INITIALIZERS = {
    "zeros": lambda seed: Zeros(),
    "small": lambda seed: SmallNormal(0.01, seed=seed),
    "xavier": lambda seed: XavierNormal(seed=seed),
    "xavier_uniform": lambda seed: XavierUniform(seed=seed),
    "he": lambda seed: HeNormal(seed=seed),
}


def get(name, seed=None):
    """A new initialiser for a name of `INITIALIZERS` (the `--initializer=` flag).

    Names: `zeros` (`Zeros`), `small` (`SmallNormal(0.01)`), `xavier`
    (`XavierNormal`), `xavier_uniform` (`XavierUniform`), `he` (`HeNormal`).

    Args:
        name: one of `INITIALIZERS`.
        seed: int seed of the random initialisers (ignored by `zeros`), or None.

    Returns:
        A `keras.initializers.Initializer`.

    Raises:
        ValueError: if `name` is not one of `INITIALIZERS`.
    """
    if name not in _INITIALIZERS:
        raise ValueError(f"initializer must be one of {INITIALIZERS}. Received: name={name!r}")
    return _INITIALIZERS[name](seed)
