"""Tests of mp.training.optimizers against Keras' built-ins, NumPy and the notes' claims."""

import copy

import keras
import numpy as np
import pytest
import tensorflow as tf

from mp.training.optimizers import (
    UPDATE_RULES,
    SGD,
    Adagrad,
    Adam,
    Momentum,
    Nesterov,
    RMSProp,
    get,
)

# ------------------------------------------------------------ shared problems

_RNG = np.random.default_rng(0)
_X = _RNG.normal(size=(64, 5)).astype(np.float32)
# Labels from a random linear "teacher", so the problem is learnable.
_Y = np.argmax(_X @ _RNG.normal(size=(5, 3)), axis=1)
_W0 = _RNG.normal(scale=0.5, size=(5, 3)).astype(np.float32)
_B0 = np.zeros(3, np.float32)


def _softmax_regression(optimizer, steps):
    """Trains softmax regression on fixed data from fixed weights; returns (w, b, losses)."""
    x, y = tf.constant(_X), tf.constant(_Y)
    w, b = keras.Variable(_W0), keras.Variable(_B0)
    optimizer.build([w, b])

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            logits = tf.matmul(x, w) + b
            loss = tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
            )
        gradients = tape.gradient(loss, [w, b])
        optimizer.apply_gradients(zip(gradients, [w, b]))
        return loss

    losses = [float(step()) for _ in range(steps)]
    return w.numpy(), b.numpy(), losses


def _run(optimizer, gradients, initial=0.0, dtype="float32"):
    """Applies the given gradients one after the other to one vector; returns w after each step."""
    gradients = np.asarray(gradients, dtype)
    w = keras.Variable(np.full(gradients.shape[1:], initial, dtype))
    optimizer.build([w])
    trajectory = []
    for g in gradients:
        optimizer.apply_gradients([(tf.constant(g), w)])
        trajectory.append(w.numpy().copy())
    return np.array(trajectory)


# The quadratic bowl f(w) = 0.5 * (w1^2 + 4 w2^2), gradient (w1, 4 w2), from w = (1, 1).
_A = np.array([1.0, 4.0], np.float32)


def _descend(optimizer, steps=3, a=_A, w0=(1.0, 1.0)):
    """Minimises 0.5 * sum(a * w^2) from `w0`; returns w after each step."""
    w = keras.Variable(np.array(w0, np.float32))
    optimizer.build([w])
    trajectory = []
    for _ in range(steps):
        optimizer.apply_gradients([(a * w, w)])  # gradient a * w
        trajectory.append(w.numpy().copy())
    return np.array(trajectory)


# ------------------------------------------------------------ agreement with Keras

# (name, our hyperparameters, Keras' optimizer with the same rule). Epsilon is 0 for the
# adaptive methods: Keras adds it inside the square root (Adagrad, RMSprop) or to the
# uncorrected root (Adam), see the module docstring; with 0 the rules are the same.
KERAS_CASES = [
    ("sgd", dict(learning_rate=0.5), lambda: keras.optimizers.SGD(0.5)),
    (
        "momentum",
        dict(learning_rate=0.1, momentum=0.9),
        lambda: keras.optimizers.SGD(0.1, momentum=0.9),
    ),
    (
        "nesterov",
        dict(learning_rate=0.1, momentum=0.9),
        lambda: keras.optimizers.SGD(0.1, momentum=0.9, nesterov=True),
    ),
    (
        "adagrad",
        dict(learning_rate=0.1, epsilon=0.0, initial_accumulator_value=0.1),
        lambda: keras.optimizers.Adagrad(0.1, epsilon=0.0, initial_accumulator_value=0.1),
    ),
    (
        "rmsprop",
        dict(learning_rate=0.01, rho=0.9, epsilon=0.0),
        lambda: keras.optimizers.RMSprop(0.01, rho=0.9, epsilon=0.0),
    ),
    (
        "adam",
        dict(learning_rate=0.01, beta_1=0.9, beta_2=0.999, epsilon=0.0),
        lambda: keras.optimizers.Adam(0.01, beta_1=0.9, beta_2=0.999, epsilon=0.0),
    ),
]


@pytest.mark.parametrize("name, hparams, reference", KERAS_CASES, ids=[c[0] for c in KERAS_CASES])
def test_matches_keras_over_100_steps(name, hparams, reference):
    w, b, losses = _softmax_regression(get(name, **hparams), steps=100)
    w_ref, b_ref, losses_ref = _softmax_regression(reference(), steps=100)
    assert np.abs(w - _W0).max() > 0.3  # the weights really moved
    assert losses[-1] < 0.75 * losses[0]  # and the loss went down
    # Same rule, different float32 operation order (Adam: Keras folds both bias
    # corrections into the step size): the last bits differ at each step and
    # accumulate over 100 steps to a few 1e-6 relative, hence rtol=1e-5.
    np.testing.assert_allclose(w, w_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(b, b_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(losses, losses_ref, rtol=1e-5)


def test_keras_kwargs_pass_through():
    # Clipping and weight decay are done by the base class before update_step.
    for ours, theirs in [
        (SGD(0.5, clipnorm=0.05), keras.optimizers.SGD(0.5, clipnorm=0.05)),
        (
            Momentum(0.1, global_clipnorm=0.1),
            keras.optimizers.SGD(0.1, momentum=0.9, global_clipnorm=0.1),
        ),
        (
            Adam(0.01, epsilon=0.0, weight_decay=0.1),
            keras.optimizers.Adam(0.01, epsilon=0.0, weight_decay=0.1),
        ),
    ]:
        w, b, _ = _softmax_regression(ours, steps=10)
        w_ref, b_ref, _ = _softmax_regression(theirs, steps=10)
        w_plain, _, _ = _softmax_regression(type(ours)(float(ours.learning_rate.numpy())), steps=10)
        np.testing.assert_allclose(w, w_ref, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(b, b_ref, rtol=1e-5, atol=1e-6)
        assert np.abs(w - w_plain).max() > 1e-3  # the argument changed something


# ------------------------------------------------------------ NumPy references, 3 steps


def test_sgd_by_hand():
    # lr = 0.1, w <- w - 0.1 * (w1, 4 w2), i.e. w1 *= 0.9, w2 *= 0.6:
    # (0.9, 0.6), (0.81, 0.36), (0.729, 0.216)
    expected = [[0.9, 0.6], [0.81, 0.36], [0.729, 0.216]]
    np.testing.assert_allclose(_descend(SGD(0.1)), expected, rtol=1e-6)


def test_momentum_by_hand():
    # lr = 0.1, mu = 0.9; v <- 0.9 v - 0.1 g; w <- w + v
    # 1: g = (1, 4)      v = (-0.1, -0.4)                                   w = (0.9, 0.6)
    # 2: g = (0.9, 2.4)  v = (-0.09 - 0.09, -0.36 - 0.24) = (-0.18, -0.6)   w = (0.72, 0)
    # 3: g = (0.72, 0)   v = (-0.162 - 0.072, -0.54) = (-0.234, -0.54)      w = (0.486, -0.54)
    expected = [[0.9, 0.6], [0.72, 0.0], [0.486, -0.54]]
    np.testing.assert_allclose(_descend(Momentum(0.1, momentum=0.9)), expected, atol=1e-6)


def test_nesterov_by_hand():
    # lr = 0.1, mu = 0.9; v <- 0.9 v - 0.1 g; w <- w + 0.9 v - 0.1 g
    # 1: g = (1, 4)            v = (-0.1, -0.4)
    #    w += (-0.09 - 0.1, -0.36 - 0.4)                      -> w = (0.81, 0.24)
    # 2: g = (0.81, 0.96)      v = (-0.09 - 0.081, -0.36 - 0.096) = (-0.171, -0.456)
    #    w += (-0.1539 - 0.081, -0.4104 - 0.096)              -> w = (0.5751, -0.2664)
    # 3: g = (0.5751, -1.0656) v = (-0.1539 - 0.05751, -0.4104 + 0.10656) = (-0.21141, -0.30384)
    #    w += (-0.190269 - 0.05751, -0.273456 + 0.10656)      -> w = (0.327321, -0.433296)
    expected = [[0.81, 0.24], [0.5751, -0.2664], [0.327321, -0.433296]]
    np.testing.assert_allclose(_descend(Nesterov(0.1, momentum=0.9)), expected, rtol=1e-6)


def test_nesterov_holds_the_look_ahead_point_of_the_original_rule():
    # Nesterov's own form takes the gradient at w + mu v:
    #   v <- mu v - lr grad(w + mu v);  w <- w + v
    # The optimizer holds p = w + mu v, on which it only needs grad(p).
    lr, mu = 0.1, 0.9
    w, v = np.array([1.0, 1.0]), np.zeros(2)
    look_ahead = []
    for _ in range(3):
        v = mu * v - lr * _A * (w + mu * v)
        w = w + v
        look_ahead.append(w + mu * v)
    np.testing.assert_allclose(_descend(Nesterov(lr, momentum=mu)), look_ahead, rtol=1e-6)


def test_adagrad_by_hand():
    # lr = 0.1, r0 = 0.1, eps = 0.1 (large, so that its place in the formula matters).
    # 1: g = (1, 4), r = (0.1 + 1, 0.1 + 16) = (1.1, 16.1), sqrt(r) = (1.04881, 4.01248)
    #    w = 1 - 0.1 * (1 / 1.14881, 4 / 4.11248) = (0.912953, 0.902735)
    lr, eps = 0.1, 0.1
    w, r = np.array([1.0, 1.0]), np.full(2, 0.1)
    expected = []
    for _ in range(3):
        g = _A * w
        r = r + g**2
        w = w - lr * g / (np.sqrt(r) + eps)
        expected.append(w)
    np.testing.assert_allclose(expected[0], [0.912953, 0.902735], rtol=1e-6)
    got = _descend(Adagrad(lr, epsilon=eps, initial_accumulator_value=0.1))
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_rmsprop_by_hand():
    # lr = 0.1, rho = 0.9, eps = 0.1.
    # 1: g = (1, 4), r = 0.1 * (1, 16) = (0.1, 1.6), sqrt(r) = (0.316228, 1.264911)
    #    w = 1 - 0.1 * (1 / 0.416228, 4 / 1.364911) = (0.759747, 0.706941)
    lr, rho, eps = 0.1, 0.9, 0.1
    w, r = np.array([1.0, 1.0]), np.zeros(2)
    expected = []
    for _ in range(3):
        g = _A * w
        r = rho * r + (1 - rho) * g**2
        w = w - lr * g / (np.sqrt(r) + eps)
        expected.append(w)
    np.testing.assert_allclose(expected[0], [0.759747, 0.706941], rtol=1e-6)
    np.testing.assert_allclose(_descend(RMSProp(lr, rho=rho, epsilon=eps)), expected, rtol=1e-6)


def test_adam_by_hand():
    # lr = 0.1, beta_1 = 0.5, beta_2 = 0.75, eps = 0.1. The betas are exact in float32:
    # with 0.999, 1 - beta_2^t in float32 keeps only ~4 significant digits (1 - 0.998001).
    # 1: g = (1, 4), m = 0.5 g = (0.5, 2), v = 0.25 g^2 = (0.25, 4)
    #    m_hat = m / 0.5 = (1, 4), v_hat = v / 0.25 = (1, 16)
    #    w = 1 - 0.1 * (1 / 1.1, 4 / 4.1) = (0.909091, 0.902439)
    lr, beta_1, beta_2, eps = 0.1, 0.5, 0.75, 0.1
    w, m, v = np.array([1.0, 1.0]), np.zeros(2), np.zeros(2)
    expected = []
    for t in range(1, 4):
        g = _A * w
        m = beta_1 * m + (1 - beta_1) * g
        v = beta_2 * v + (1 - beta_2) * g**2
        m_hat, v_hat = m / (1 - beta_1**t), v / (1 - beta_2**t)
        w = w - lr * m_hat / (np.sqrt(v_hat) + eps)
        expected.append(w)
    np.testing.assert_allclose(expected[0], [1 - 0.1 / 1.1, 1 - 0.4 / 4.1], rtol=1e-12)
    got = _descend(Adam(lr, beta_1=beta_1, beta_2=beta_2, epsilon=eps))
    np.testing.assert_allclose(got, expected, rtol=1e-6)


# ------------------------------------------------------------ behaviour from the notes


@pytest.mark.parametrize("cls", [Momentum, Nesterov])
def test_momentum_gets_further_along_a_ravine(cls):
    # f(w) = 0.5 * (0.01 w1^2 + w2^2): a long shallow valley along w1, steep across.
    # The w1 gradient keeps its sign: plain SGD moves w1 by 0.1 * 0.01 * w1 per step,
    # 1 - 0.999^50 = 0.049 in 50 steps; momentum builds up to ~10x that step.
    a = np.array([0.01, 1.0], np.float32)
    sgd = _descend(SGD(0.1), steps=50, a=a)
    fast = _descend(cls(0.1, momentum=0.9), steps=50, a=a)
    np.testing.assert_allclose(sgd[-1, 0], 0.999**50, rtol=1e-5)
    assert 1 - fast[-1, 0] > 5 * (1 - sgd[-1, 0])
    assert abs(fast[-1, 1]) < 0.1  # and it stays stable across the valley


def test_adagrad_rate_only_decreases_rmsprop_recovers():
    # 30 steps with gradient 1, then 30 with gradient 0.01. The effective learning
    # rate is |step| / |g|. Float64 so that Adagrad's tiny decrease in the second
    # phase (r grows by 1e-4 per step on ~30) is above rounding.
    lr = 0.01
    gradients = np.array([[1.0]] * 30 + [[0.01]] * 30)
    rates = {}
    for name, optimizer in [("adagrad", Adagrad(lr)), ("rmsprop", RMSProp(lr, rho=0.9))]:
        trajectory = _run(optimizer, gradients, dtype="float64")[:, 0]
        steps = np.diff(np.concatenate([[0.0], trajectory]))
        rates[name] = np.abs(steps) / gradients[:, 0]
    # Adagrad: r = 0.1 + sum g^2 only grows, so lr / sqrt(r) strictly decreases.
    assert np.all(np.diff(rates["adagrad"]) < 0)
    np.testing.assert_allclose(rates["adagrad"][-1], lr / (np.sqrt(0.1 + 30 + 30e-4) + 1e-7))
    # RMSProp: r ~ 1 after phase 1 (rate ~ lr), then decays by 0.9 per step to
    # ~0.9^30 = 0.042 (rate ~ lr / 0.21 ~ 5 lr).
    assert rates["rmsprop"][29] < 1.1 * lr
    assert np.all(np.diff(rates["rmsprop"][30:]) > 0)
    assert rates["rmsprop"][-1] > 4 * rates["rmsprop"][29]


@pytest.mark.parametrize("scale", [1e-3, 1.0, 1e3])
def test_adam_first_steps_have_size_lr_at_any_gradient_scale(scale):
    # A constant gradient g: m_hat = g and v_hat = g^2 exactly, so each step is
    # lr * g / (|g| + eps) ~ lr * sign(g). Without the corrections the first step
    # would be lr * (1 - beta_1) / sqrt(1 - beta_2) = 3.16 lr.
    lr = 0.001
    g = scale * np.array([1.0, -2.0, 0.5])
    trajectory = _run(Adam(lr), [g] * 3)
    steps = np.diff(np.concatenate([np.zeros((1, 3)), trajectory]), axis=0)
    np.testing.assert_allclose(steps, -lr * np.sign([g] * 3), rtol=1e-3)


# ------------------------------------------------------------ schedules, config, state


def test_exponential_decay_schedule_gives_the_expected_steps():
    # lr_k = 0.1 * 0.5^k at iteration k = 0, 1, 2, gradient 1.
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=1, decay_rate=0.5)
    ones = [[1.0]] * 3
    # SGD: steps -0.1, -0.05, -0.025 -> w = -0.1, -0.15, -0.175
    np.testing.assert_allclose(_run(SGD(schedule), ones)[:, 0], [-0.1, -0.15, -0.175], rtol=1e-6)
    # Momentum 0.9: v = -0.1, -0.09 - 0.05 = -0.14, -0.126 - 0.025 = -0.151
    # -> w = -0.1, -0.24, -0.391
    np.testing.assert_allclose(
        _run(Momentum(schedule), ones)[:, 0], [-0.1, -0.24, -0.391], rtol=1e-6
    )
    # Adam with a constant gradient steps by lr_k: w = -0.1, -0.15, -0.175
    np.testing.assert_allclose(_run(Adam(schedule), ones)[:, 0], [-0.1, -0.15, -0.175], rtol=1e-5)


CONFIG_CASES = [
    ("sgd", {}),
    ("momentum", dict(momentum=0.5)),
    ("nesterov", dict(momentum=0.5)),
    ("adagrad", dict(epsilon=0.01, initial_accumulator_value=0.5)),
    ("rmsprop", dict(rho=0.5, epsilon=0.01)),
    ("adam", dict(beta_1=0.5, beta_2=0.9, epsilon=0.01)),
]


@pytest.mark.parametrize("name, hparams", CONFIG_CASES, ids=[c[0] for c in CONFIG_CASES])
def test_config_round_trip(name, hparams):
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=2, decay_rate=0.5)
    optimizer = get(name, schedule, clipnorm=1.0, **hparams)
    config = optimizer.get_config()
    for key, value in hparams.items():
        assert config[key] == value
    restored = type(optimizer).from_config(copy.deepcopy(config))  # from_config edits its input
    assert restored.get_config() == config
    # Through Keras' registry, as when a saved model is loaded.
    serialized = keras.optimizers.serialize(optimizer)
    assert serialized["registered_name"] == f"mp>{type(optimizer).__name__}"
    deserialized = keras.optimizers.deserialize(serialized)
    assert type(deserialized) is type(optimizer)
    # The copies update like the original (a hyperparameter missing from the
    # config would come back at its default).
    gradients = [[1.0, -2.0], [0.5, 3.0], [-1.0, 1.0]]
    expected = _run(optimizer, gradients)
    np.testing.assert_allclose(_run(restored, gradients), expected, rtol=1e-6)
    np.testing.assert_allclose(_run(deserialized, gradients), expected, rtol=1e-6)


@pytest.mark.parametrize("name", UPDATE_RULES)
def test_checkpoint_restores_slots_and_iterations(name, tmp_path):
    def make():
        return get(name, 0.05)

    w = keras.Variable(np.array([1.0, -1.0], np.float32))
    optimizer = make()
    optimizer.build([w])

    def step(optimizer, w):
        optimizer.apply_gradients([(_A * w + 0.5, w)])

    for _ in range(3):
        step(optimizer, w)
    path = tf.train.Checkpoint(optimizer=optimizer, w=w).save(str(tmp_path / "ckpt"))
    saved_state = [v.numpy().copy() for v in optimizer.variables]
    for _ in range(2):
        step(optimizer, w)  # the uninterrupted run

    w2 = keras.Variable(np.zeros(2, np.float32))
    restored = make()
    restored.build([w2])
    tf.train.Checkpoint(optimizer=restored, w=w2).restore(path).assert_consumed()
    assert int(restored.iterations.numpy()) == 3
    assert len(restored.variables) == len(saved_state)
    for variable, value in zip(restored.variables, saved_state):
        np.testing.assert_array_equal(variable.numpy(), value)
    for _ in range(2):
        step(restored, w2)
    np.testing.assert_array_equal(w2.numpy(), w.numpy())
    for a, b in zip(restored.variables, optimizer.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize("name", UPDATE_RULES)
def test_tf_function_step_traces_once(name):
    schedule = keras.optimizers.schedules.ExponentialDecay(0.05, decay_steps=2, decay_rate=0.9)
    optimizer = get(name, schedule)
    w, b = keras.Variable(_W0), keras.Variable(_B0)
    optimizer.build([w, b])
    traces = []

    @tf.function
    def train_step(x, y):
        traces.append(1)  # Python side effect: runs only while tracing
        with tf.GradientTape() as tape:
            logits = tf.matmul(x, w) + b
            loss = tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
            )
        optimizer.apply_gradients(zip(tape.gradient(loss, [w, b]), [w, b]))
        return loss

    for i in range(5):
        train_step(tf.constant(_X[i * 8 : (i + 1) * 8]), tf.constant(_Y[i * 8 : (i + 1) * 8]))
    assert len(traces) == 1
    assert int(optimizer.iterations.numpy()) == 5
    assert not np.allclose(w.numpy(), _W0)


@pytest.mark.parametrize("name", UPDATE_RULES)
def test_mirrored_strategy_step_matches_plain_step(name):
    x, y = tf.constant(_X[:16]), tf.constant(_Y[:16])

    def make_step(optimizer, w, b):
        def step(x, y):
            with tf.GradientTape() as tape:
                logits = tf.matmul(x, w) + b
                loss = tf.reduce_mean(
                    tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
                )
            optimizer.apply_gradients(zip(tape.gradient(loss, [w, b]), [w, b]))
            return loss

        return step

    # Plain: two steps, eagerly.
    w_ref, b_ref = keras.Variable(_W0), keras.Variable(_B0)
    optimizer_ref = get(name, 0.05)
    optimizer_ref.build([w_ref, b_ref])
    step_ref = make_step(optimizer_ref, w_ref, b_ref)
    for _ in range(2):
        step_ref(x, y)

    strategy = tf.distribute.MirroredStrategy()  # the default device: one replica
    with strategy.scope():
        w, b = keras.Variable(_W0), keras.Variable(_B0)
        optimizer = get(name, 0.05)
        optimizer.build([w, b])
    step = make_step(optimizer, w, b)

    @tf.function
    def distributed_step(x, y):
        return strategy.run(step, args=(x, y))

    for _ in range(2):
        distributed_step(x, y)
    assert isinstance(w.value, tf.distribute.DistributedValues)
    np.testing.assert_allclose(w.numpy(), w_ref.numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(b.numpy(), b_ref.numpy(), rtol=1e-6, atol=1e-7)
    assert int(optimizer.iterations.numpy()) == 2


# ------------------------------------------------------------ names and errors


def test_get_returns_ours_by_name():
    classes = [SGD, Momentum, Nesterov, Adagrad, RMSProp, Adam]
    assert UPDATE_RULES == ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam")
    for name, cls in zip(UPDATE_RULES, classes):
        optimizer = get(name, 0.25)
        assert type(optimizer) is cls
        assert float(optimizer.learning_rate.numpy()) == 0.25
    assert get("momentum", 0.1, momentum=0.5).momentum == 0.5
    assert get("adam", 0.1, clipnorm=2.0).clipnorm == 2.0


def test_names_match_the_optimizer_flag():
    from mp.engine import OPTIMIZERS as flag_choices

    assert UPDATE_RULES == tuple(flag_choices)


def test_errors_name_what_was_received():
    with pytest.raises(
        ValueError, match=r"sgd, momentum, nesterov, adagrad, rmsprop, adam.*'adamw'"
    ):
        get("adamw", 0.1)
    with pytest.raises(ValueError, match=r"momentum must be in \[0, 1\)\. Received: momentum=1.0"):
        Momentum(momentum=1.0)
    with pytest.raises(ValueError, match=r"Received: momentum=-0.1"):
        Nesterov(momentum=-0.1)
    with pytest.raises(ValueError, match=r"epsilon must be >= 0\. Received: epsilon=-1"):
        Adagrad(epsilon=-1)
    with pytest.raises(ValueError, match=r"Received: initial_accumulator_value=-0.5"):
        Adagrad(initial_accumulator_value=-0.5)
    with pytest.raises(ValueError, match=r"Received: rho=1.5"):
        RMSProp(rho=1.5)
    with pytest.raises(ValueError, match=r"Received: beta_2=1.0"):
        Adam(beta_2=1.0)
