"""Parameter updates: six optimizers written from their update rules.

Each optimizer turns the gradient `g = dL/dw` of the loss with respect to a
parameter `w` into a change of `w`. All operations are elementwise, so every
scalar in a weight tensor has its own state (its own velocity, its own sum of
squares). `lr` is the learning rate, `t = 1, 2, ...` the step number.

    SGD        w <- w - lr * g
    Momentum   v <- mu * v - lr * g;   w <- w + v
    Nesterov   v <- mu * v - lr * g;   w <- w + mu * v - lr * g
    Adagrad    r <- r + g^2;           w <- w - lr * g / (sqrt(r) + eps)
    RMSProp    r <- rho * r + (1 - rho) * g^2;
               w <- w - lr * g / (sqrt(r) + eps)
    Adam       m <- beta_1 * m + (1 - beta_1) * g
               v <- beta_2 * v + (1 - beta_2) * g^2
               m_hat = m / (1 - beta_1^t);   v_hat = v / (1 - beta_2^t)
               w <- w - lr * m_hat / (sqrt(v_hat) + eps)

The vanilla update steps down the gradient. Momentum treats the gradient as
a force that changes a velocity `v`, and the velocity moves `w`: along a
direction where the gradient keeps its sign the velocity builds up to
`lr * g / (1 - mu)`, ten times the plain step for `mu = 0.9`, while
oscillating components cancel. Nesterov momentum evaluates the gradient at
the point the velocity is about to carry `w` to (see `Nesterov` for the form
used here). Adagrad divides each parameter's step by the root of the sum of
all its squared gradients so far: parameters with large gradients get a
smaller effective learning rate `lr / (sqrt(r) + eps)`, rarely updated ones a
larger one; since `r` only grows, the effective rate only shrinks, which
often stops deep networks from learning too early. RMSProp replaces the sum
by an exponential moving average, so the rate recovers when gradients become
small. Adam uses RMSProp's scaling on a moving average `m` of the gradient
(a smoothed gradient) instead of the raw one; both averages start at zero,
and dividing by `1 - beta^t` removes that bias, so the first steps have size
about `lr` whatever the scale of the gradient.

Every optimizer is a `keras.optimizers.Optimizer`: it accepts a float or a
`keras.optimizers.schedules.LearningRateSchedule` as `learning_rate` (the
schedule is evaluated at `optimizer.iterations`, 0 for the first step), and
the standard keyword arguments (`clipnorm`, `clipvalue`, `global_clipnorm`,
`weight_decay`, `use_ema`, `name`, ...) which the base class applies before
calling `update_step`. Slots are created with `add_variable_from_reference`,
so they are checkpointed with `tf.train.Checkpoint(optimizer=...)` and
mirrored under `tf.distribute` like Keras' own.

Differences from Keras' built-in optimizers (Keras 3.15), checked against its
source; the tests make the two coincide by the choices given here:

* `keras.optimizers.SGD(momentum=mu)` and `SGD(momentum=mu, nesterov=True)`:
  the same rules as `Momentum` and `Nesterov` (Keras writes the Nesterov
  step as `w <- w + mu * v - lr * g` with the new `v`, as here). Keras
  accepts `momentum = 1`, we require `0 <= mu < 1`.
* `keras.optimizers.Adagrad`: Keras puts epsilon inside the root,
  `w <- w - lr * g / sqrt(r + eps)`; here it is added to the root,
  `sqrt(r) + eps`, as in Duchi et al. Same defaults (`eps = 1e-7`,
  `initial_accumulator_value = 0.1`). Identical for `eps = 0`.
* `keras.optimizers.RMSprop`: epsilon inside the root too,
  `sqrt(r + eps)`; and Keras has `momentum` (a velocity on top of the
  scaled step) and `centered` (divide by the variance instead of the second
  moment), which we leave out. Identical for `eps = 0, momentum = 0,
  centered = False` (Keras' defaults for the last two).
* `keras.optimizers.Adam`: Keras folds the bias corrections into the step
  size and adds epsilon to the uncorrected root,
  `w <- w - lr * sqrt(1 - beta_2^t) / (1 - beta_1^t) * m / (sqrt(v) + eps)`,
  which equals `lr * m_hat / (sqrt(v_hat) + eps / sqrt(1 - beta_2^t))`:
  Keras' epsilon acts like ours divided by `sqrt(1 - beta_2^t)`, about 32
  times larger on the first step for `beta_2 = 0.999`, and tending to ours
  as `t` grows ("epsilon hat" in Kingma and Ba, Section 2). No constant
  choice makes them equal except `eps = 0`. Keras' `amsgrad` is left out.
* With the default `eps = 1e-7` the placement matters only for tiny
  gradients. Keras' `sqrt(r + eps)` never falls below `sqrt(eps) = 3.2e-4`,
  ours `sqrt(r) + eps` falls to `1e-7`: for a parameter whose RMS gradient
  `sqrt(r)` is below about 1e-3 (a bias near its optimum, a rarely used
  input) Keras' Adagrad and RMSprop take noticeably smaller steps. Keras'
  Adam epsilon, `eps / sqrt(1 - beta_2^t)`, is at most `3.2e-6`, and matters
  only for gradients below about 1e-5.

References:
  Polyak, "Some methods of speeding up the convergence of iteration
    methods", 1964 (momentum).
  Nesterov, "A method for solving the convex programming problem with
    convergence rate O(1/k^2)", 1983; Sutskever, Martens, Dahl, Hinton, "On
    the importance of initialization and momentum in deep learning", ICML
    2013 (Nesterov momentum for neural networks).
  Duchi, Hazan, Singer, "Adaptive subgradient methods for online learning
    and stochastic optimization", JMLR 2011 (Adagrad).
  Tieleman, Hinton, "Lecture 6.5 - RMSProp", Coursera: Neural Networks for
    Machine Learning, 2012.
  Kingma, Ba, "Adam: a method for stochastic optimization", ICLR 2015.

Course: ch2 Training Neural Networks (Parameter updates)
"""

import keras
from keras import ops

__all__ = ["SGD", "Momentum", "Nesterov", "Adagrad", "RMSProp", "Adam", "UPDATE_RULES", "get"]


def _check_unit_interval(name, value):
    """Raises ValueError unless 0 <= value < 1."""
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1). Received: {name}={value}")


def _check_non_negative(name, value):
    """Raises ValueError unless value >= 0."""
    if not value >= 0.0:
        raise ValueError(f"{name} must be >= 0. Received: {name}={value}")


class _Optimizer(keras.optimizers.Optimizer):
    """Shared helpers: one slot per trainable variable, looked up by variable."""

    def _add_slots(self, variables, name, initializer="zeros"):
        """Returns a list with one new variable shaped like each of `variables`."""
        return [
            self.add_variable_from_reference(variable, name=name, initializer=initializer)
            for variable in variables
        ]

    def _slot(self, slots, variable):
        """The entry of `slots` that belongs to `variable`."""
        return slots[self._get_variable_index(variable)]


@keras.saving.register_keras_serializable(package="mp")
class SGD(_Optimizer):
    """Vanilla gradient descent: a step against the gradient.

        w <- w - lr * g

    Args:
        learning_rate: a float or a `LearningRateSchedule`.
        **kwargs: standard Keras optimizer arguments (`clipnorm`,
            `global_clipnorm`, `weight_decay`, `name`, ...).
    """

    def __init__(self, learning_rate=0.01, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)

    def update_step(self, gradient, variable, learning_rate):
        """Applies one step to `variable` given its `gradient`."""
        lr = ops.cast(learning_rate, variable.dtype)
        g = ops.cast(gradient, variable.dtype)
        # w <- w - lr * g
        self.assign_sub(variable, ops.multiply(lr, g))


@keras.saving.register_keras_serializable(package="mp")
class Momentum(_Optimizer):
    """Gradient descent with (Polyak, "heavy ball") momentum.

    The gradient changes a velocity `v` (zero at the start), and the velocity
    changes the parameter:

        v <- mu * v - lr * g
        w <- w + v

    With a constant gradient `v` tends to `-lr * g / (1 - mu)`: steps grow up
    to `1 / (1 - mu)` times the vanilla step along consistent directions.

    Args:
        learning_rate: a float or a `LearningRateSchedule`.
        momentum: `mu`, in [0, 1); 0 gives vanilla SGD.
        **kwargs: standard Keras optimizer arguments.

    Raises:
        ValueError: if `momentum` is not in [0, 1).
    """

    def __init__(self, learning_rate=0.01, momentum=0.9, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        _check_unit_interval("momentum", momentum)
        self.momentum = momentum

    def build(self, variables):
        """Creates one velocity slot per variable, initialised to zero."""
        if self.built:
            return
        super().build(variables)
        self._velocities = self._add_slots(variables, "velocity")

    def update_step(self, gradient, variable, learning_rate):
        """Applies one step to `variable` given its `gradient`."""
        lr = ops.cast(learning_rate, variable.dtype)
        g = ops.cast(gradient, variable.dtype)
        mu = ops.cast(self.momentum, variable.dtype)
        v = self._slot(self._velocities, variable)
        # v <- mu * v - lr * g
        self.assign(v, ops.subtract(ops.multiply(mu, v), ops.multiply(lr, g)))
        # w <- w + v
        self.assign_add(variable, v)

    def get_config(self):
        config = super().get_config()
        config.update({"momentum": self.momentum})
        return config


@keras.saving.register_keras_serializable(package="mp")
class Nesterov(Momentum):
    """Nesterov momentum: the gradient is taken at the look-ahead point.

    Nesterov's rule, with the gradient at the point `w + mu * v` that the
    current velocity is about to reach:

        v <- mu * v - lr * grad L(w + mu * v)
        w <- w + v

    A training step only has the gradient at the parameters the model holds.
    So let the model hold the look-ahead point `p = w + mu * v` instead of `w`.
    Then `grad L(p)` is the ordinary gradient `g`, and in terms of `p`:

        v_new = mu * v - lr * g
        p_new = w_new + mu * v_new = (w + v_new) + mu * v_new
              = (p - mu * v) + v_new + mu * v_new
              = p + mu * v_new + (v_new - mu * v)
              = p + mu * v_new - lr * g           (as v_new - mu * v = -lr * g)

    which is the update implemented here (writing `w` for the parameter held):

        v <- mu * v - lr * g
        w <- w + mu * v - lr * g

    Equivalently `w <- w - mu * v_old + (1 + mu) * v_new`. At the start
    `v = 0`, so `p = w`; at the end `p` and `w` differ by `mu * v`, which goes
    to zero as training converges.

    Args:
        learning_rate: a float or a `LearningRateSchedule`.
        momentum: `mu`, in [0, 1); 0 gives vanilla SGD.
        **kwargs: standard Keras optimizer arguments.

    Raises:
        ValueError: if `momentum` is not in [0, 1).
    """

    # The velocity slot, the arguments and the config are those of `Momentum`; only the step
    # differs.

    def update_step(self, gradient, variable, learning_rate):
        """Applies one step to `variable` given its `gradient`."""
        lr = ops.cast(learning_rate, variable.dtype)
        g = ops.cast(gradient, variable.dtype)
        mu = ops.cast(self.momentum, variable.dtype)
        v = self._slot(self._velocities, variable)
        # v <- mu * v - lr * g
        self.assign(v, ops.subtract(ops.multiply(mu, v), ops.multiply(lr, g)))
        # w <- w + mu * v - lr * g   (w is the look-ahead point)
        self.assign_add(variable, ops.subtract(ops.multiply(mu, v), ops.multiply(lr, g)))


@keras.saving.register_keras_serializable(package="mp")
class Adagrad(_Optimizer):
    """Adagrad: per-parameter steps scaled by the sum of squared gradients.

        r <- r + g^2                          (r starts at initial_accumulator_value)
        w <- w - lr * g / (sqrt(r) + eps)

    The effective learning rate `lr / (sqrt(r) + eps)` of each parameter can
    only decrease.

    Args:
        learning_rate: a float or a `LearningRateSchedule`.
        epsilon: `eps` >= 0, added to `sqrt(r)` to avoid dividing by zero.
        initial_accumulator_value: the starting value of `r`, >= 0.
        **kwargs: standard Keras optimizer arguments.

    Raises:
        ValueError: if `epsilon` or `initial_accumulator_value` is negative.
    """

    def __init__(self, learning_rate=0.001, epsilon=1e-7, initial_accumulator_value=0.1, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        _check_non_negative("epsilon", epsilon)
        _check_non_negative("initial_accumulator_value", initial_accumulator_value)
        self.epsilon = epsilon
        self.initial_accumulator_value = initial_accumulator_value

    def build(self, variables):
        """Creates one accumulator `r` per variable."""
        if self.built:
            return
        super().build(variables)
        initializer = keras.initializers.Constant(self.initial_accumulator_value)
        self._accumulators = self._add_slots(variables, "accumulator", initializer)

    def update_step(self, gradient, variable, learning_rate):
        """Applies one step to `variable` given its `gradient`."""
        lr = ops.cast(learning_rate, variable.dtype)
        g = ops.cast(gradient, variable.dtype)
        eps = ops.cast(self.epsilon, variable.dtype)
        r = self._slot(self._accumulators, variable)
        # r <- r + g^2
        self.assign_add(r, ops.square(g))
        # w <- w - lr * g / (sqrt(r) + eps)
        self.assign_sub(variable, ops.divide(ops.multiply(lr, g), ops.add(ops.sqrt(r), eps)))

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "epsilon": self.epsilon,
                "initial_accumulator_value": self.initial_accumulator_value,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="mp")
class RMSProp(_Optimizer):
    """RMSProp: steps scaled by a moving average of squared gradients.

        r <- rho * r + (1 - rho) * g^2       (r starts at 0)
        w <- w - lr * g / (sqrt(r) + eps)

    `r` forgets old gradients with a time constant of about `1 / (1 - rho)`
    steps, so the effective learning rate `lr / (sqrt(r) + eps)` grows again
    when gradients become small.

    Args:
        learning_rate: a float or a `LearningRateSchedule`.
        rho: decay of the moving average, in [0, 1).
        epsilon: `eps` >= 0, added to `sqrt(r)` to avoid dividing by zero.
        **kwargs: standard Keras optimizer arguments.

    Raises:
        ValueError: if `rho` is not in [0, 1) or `epsilon` is negative.
    """

    def __init__(self, learning_rate=0.001, rho=0.9, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        _check_unit_interval("rho", rho)
        _check_non_negative("epsilon", epsilon)
        self.rho = rho
        self.epsilon = epsilon

    def build(self, variables):
        """Creates one moving average `r` per variable, initialised to zero."""
        if self.built:
            return
        super().build(variables)
        self._averages = self._add_slots(variables, "average_square")

    def update_step(self, gradient, variable, learning_rate):
        """Applies one step to `variable` given its `gradient`."""
        lr = ops.cast(learning_rate, variable.dtype)
        g = ops.cast(gradient, variable.dtype)
        rho = ops.cast(self.rho, variable.dtype)
        one_minus_rho = ops.cast(1.0 - self.rho, variable.dtype)
        eps = ops.cast(self.epsilon, variable.dtype)
        r = self._slot(self._averages, variable)
        # r <- rho * r + (1 - rho) * g^2
        self.assign(r, ops.add(ops.multiply(rho, r), ops.multiply(one_minus_rho, ops.square(g))))
        # w <- w - lr * g / (sqrt(r) + eps)
        self.assign_sub(variable, ops.divide(ops.multiply(lr, g), ops.add(ops.sqrt(r), eps)))

    def get_config(self):
        config = super().get_config()
        config.update({"rho": self.rho, "epsilon": self.epsilon})
        return config


@keras.saving.register_keras_serializable(package="mp")
class Adam(_Optimizer):
    """Adam: RMSProp's scaling applied to a moving average of the gradient.

        m <- beta_1 * m + (1 - beta_1) * g          (first moment, starts at 0)
        v <- beta_2 * v + (1 - beta_2) * g^2        (second moment, starts at 0)
        m_hat = m / (1 - beta_1^t)                  (bias corrections, t = 1, 2, ...)
        v_hat = v / (1 - beta_2^t)
        w <- w - lr * m_hat / (sqrt(v_hat) + eps)

    Both averages start at zero, so early on they are too small by the
    factor `1 - beta^t` (their weights `(1 - beta) * beta^k` sum to that);
    the corrections undo it. With a constant gradient `m_hat = g` and
    `v_hat = g^2` exactly, and every step has size `lr` (up to `eps`).

    Args:
        learning_rate: a float or a `LearningRateSchedule`.
        beta_1: decay of the first moment, in [0, 1).
        beta_2: decay of the second moment, in [0, 1).
        epsilon: `eps` >= 0, added to `sqrt(v_hat)` to avoid dividing by zero.
        **kwargs: standard Keras optimizer arguments.

    Raises:
        ValueError: if `beta_1` or `beta_2` is not in [0, 1), or `epsilon` is
            negative.
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        _check_unit_interval("beta_1", beta_1)
        _check_unit_interval("beta_2", beta_2)
        _check_non_negative("epsilon", epsilon)
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon

    def build(self, variables):
        """Creates the moment slots `m` and `v` per variable, initialised to zero."""
        if self.built:
            return
        super().build(variables)
        self._first_moments = self._add_slots(variables, "m")
        self._second_moments = self._add_slots(variables, "v")

    def update_step(self, gradient, variable, learning_rate):
        """Applies one step to `variable` given its `gradient`."""
        lr = ops.cast(learning_rate, variable.dtype)
        g = ops.cast(gradient, variable.dtype)
        beta_1 = ops.cast(self.beta_1, variable.dtype)
        beta_2 = ops.cast(self.beta_2, variable.dtype)
        one_minus_beta_1 = ops.cast(1.0 - self.beta_1, variable.dtype)
        one_minus_beta_2 = ops.cast(1.0 - self.beta_2, variable.dtype)
        eps = ops.cast(self.epsilon, variable.dtype)
        # t counts from 1: `iterations` is incremented after the update.
        t = ops.cast(self.iterations + 1, variable.dtype)
        m = self._slot(self._first_moments, variable)
        v = self._slot(self._second_moments, variable)
        # m <- beta_1 * m + (1 - beta_1) * g
        self.assign(m, ops.add(ops.multiply(beta_1, m), ops.multiply(one_minus_beta_1, g)))
        # v <- beta_2 * v + (1 - beta_2) * g^2
        self.assign(
            v, ops.add(ops.multiply(beta_2, v), ops.multiply(one_minus_beta_2, ops.square(g)))
        )
        # m_hat = m / (1 - beta_1^t),  v_hat = v / (1 - beta_2^t)
        m_hat = ops.divide(m, 1 - ops.power(beta_1, t))
        v_hat = ops.divide(v, 1 - ops.power(beta_2, t))
        # w <- w - lr * m_hat / (sqrt(v_hat) + eps)
        self.assign_sub(
            variable, ops.divide(ops.multiply(lr, m_hat), ops.add(ops.sqrt(v_hat), eps))
        )

    def get_config(self):
        config = super().get_config()
        config.update({"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon})
        return config


_CLASSES = {
    "sgd": SGD,
    "momentum": Momentum,
    "nesterov": Nesterov,
    "adagrad": Adagrad,
    "rmsprop": RMSProp,
    "adam": Adam,
}

# The package's own update rules by name; the same names as mp.engine.OPTIMIZERS (Keras').
UPDATE_RULES = tuple(_CLASSES)


def get(name, learning_rate, **kwargs):
    """Returns the optimizer `name` of this module.

    Args:
        name: one of `UPDATE_RULES`: "sgd", "momentum", "nesterov", "adagrad",
            "rmsprop", "adam".
        learning_rate: a float or a `LearningRateSchedule`.
        **kwargs: the optimizer's own hyperparameters (e.g. `momentum=0.5`)
            and standard Keras optimizer arguments (e.g. `clipnorm=1.0`).

    Returns:
        A `keras.optimizers.Optimizer`.

    Raises:
        ValueError: if `name` is not one of `UPDATE_RULES`.
    """
    if name not in _CLASSES:
        raise ValueError(
            f"Unknown optimizer. Expected one of {', '.join(UPDATE_RULES)}. Received: name={name!r}"
        )
    return _CLASSES[name](learning_rate=learning_rate, **kwargs)
