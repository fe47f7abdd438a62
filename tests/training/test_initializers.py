"""Tests of mp.training.initializers: variances, Keras agreement, and the ch2 pitfalls."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import mp.data
from mp.training import activations, diagnostics, initializers
from mp.training.initializers import (
    INITIALIZERS,
    HeNormal,
    SmallNormal,
    XavierNormal,
    XavierUniform,
    Zeros,
    compute_fans,
)

DENSE = (512, 256)  # 131,072 samples: the sample variance is within ~0.4% (sqrt(2 / n)) of Var
CONV = (5, 5, 32, 64)  # 51,200 samples, fan_in = 5*5*32 = 800, fan_out = 5*5*64 = 1600


def test_compute_fans():
    assert compute_fans((64, 10)) == (64, 10)
    assert compute_fans((3, 3, 16, 32)) == (3 * 3 * 16, 3 * 3 * 32)  # (144, 288)
    assert compute_fans((5, 8, 8)) == (5 * 8, 5 * 8)  # conv1d [k, c_in, c_out]: (40, 40)
    assert compute_fans((7,)) == (7, 7)
    assert compute_fans(()) == (1, 1)
    # Keras' own rule (the private helper its initialisers use) for the same shapes.
    from keras.src.initializers.random_initializers import compute_fans as keras_fans

    for shape in [(64, 10), (3, 3, 16, 32), (5, 8, 8), (7,), (2, 3, 4, 5, 6)]:
        assert compute_fans(shape) == keras_fans(shape)


# Expected variances by hand: dense 512 -> 256, conv fans (800, 1600).
@pytest.mark.parametrize(
    "initializer, shape, variance",
    [
        (XavierNormal(seed=1), DENSE, 2 / (512 + 256)),  # 2.604e-3
        (XavierNormal(seed=1), CONV, 2 / (800 + 1600)),  # 8.333e-4
        (XavierUniform(seed=1), DENSE, 2 / (512 + 256)),  # limit^2 / 3 = (6 / 768) / 3
        (XavierUniform(seed=1), CONV, 2 / (800 + 1600)),
        (HeNormal(seed=1), DENSE, 2 / 512),  # 3.906e-3
        (HeNormal(seed=1), CONV, 2 / 800),  # 2.5e-3
        (SmallNormal(seed=1), DENSE, 0.01**2),
        (SmallNormal(0.1, seed=1), CONV, 0.1**2),
    ],
    ids=lambda value: (
        type(value).__name__ if isinstance(value, keras.initializers.Initializer) else str(value)
    ),
)
def test_empirical_variance_matches_formula(initializer, shape, variance):
    w = initializer(shape).numpy().astype(np.float64)
    assert w.shape == shape
    assert abs(w.mean()) < 0.02 * np.sqrt(variance)
    assert w.var() == pytest.approx(variance, rel=0.03)


@pytest.mark.parametrize("shape", [DENSE, CONV])
def test_xavier_uniform_limit_equals_keras(shape):
    fan_in, fan_out = compute_fans(shape)
    limit = np.sqrt(6 / (fan_in + fan_out))
    ours = XavierUniform(seed=3)(shape).numpy()
    theirs = keras.initializers.GlorotUniform(seed=3)(shape).numpy()
    for w in (ours, theirs):
        assert np.abs(w).max() <= limit
        assert np.abs(w).max() > 0.999 * limit  # the samples fill the interval
    assert ours.var() == pytest.approx(theirs.var(), rel=0.03)


@pytest.mark.parametrize(
    "ours, theirs, fan_sum",
    [
        (XavierNormal(seed=4), keras.initializers.GlorotNormal(seed=4), lambda i, o: (i + o) / 2),
        (HeNormal(seed=4), keras.initializers.HeNormal(seed=4), lambda i, o: i / 2),
    ],
)
@pytest.mark.parametrize("shape", [DENSE, CONV])
def test_normal_initializers_match_keras_in_variance_not_in_tails(ours, theirs, fan_sum, shape):
    std = 1.0 / np.sqrt(fan_sum(*compute_fans(shape)))  # sqrt(2 / (n_in + n_out)) or sqrt(2 / n_in)
    a, b = ours(shape).numpy(), theirs(shape).numpy()
    assert a.var() == pytest.approx(std**2, rel=0.03)
    assert b.var() == pytest.approx(std**2, rel=0.03)
    # Keras truncates a normal of std std / 0.8796 at 2 of its standard deviations: nothing
    # beyond 2 * std / 0.8796 = 2.27 std. Ours is the plain normal: P(|z| > 2.27) = 2.3%.
    bound = 2 * std / 0.87962566103423978
    assert np.abs(b).max() <= bound * (1 + 1e-6)
    assert np.mean(np.abs(a) > bound) == pytest.approx(0.0232, abs=0.003)


def test_zeros():
    np.testing.assert_array_equal(Zeros()((3, 4)), np.zeros((3, 4)))
    assert Zeros()((2,), dtype="float64").dtype == tf.float64


@pytest.mark.parametrize("cls", [XavierNormal, XavierUniform, HeNormal, SmallNormal])
def test_seeded_initializers_are_deterministic(cls):
    a = cls(seed=7)
    np.testing.assert_array_equal(a((16, 8)), a((16, 8)))  # same call, same values
    np.testing.assert_array_equal(a((16, 8)), cls(seed=7)((16, 8)))  # same seed, same values
    assert not np.allclose(a((16, 8)), cls(seed=8)((16, 8)))
    # Unseeded: new values at each call, reproducible from the global seed.
    keras.utils.set_random_seed(0)
    first, second = cls()((16, 8)), cls()((16, 8))
    assert not np.allclose(first, second)
    keras.utils.set_random_seed(0)
    np.testing.assert_array_equal(cls()((16, 8)), first)


@pytest.mark.parametrize(
    "initializer", [Zeros(), SmallNormal(0.05, seed=2), XavierNormal(seed=2), HeNormal()]
)
def test_config_round_trip_through_keras_serialization(initializer):
    config = keras.initializers.serialize(initializer)
    assert config["registered_name"] == f"mp>{type(initializer).__name__}"
    clone = keras.initializers.deserialize(config)
    assert type(clone) is type(initializer)
    assert clone.get_config() == initializer.get_config()
    if getattr(initializer, "seed", None) is not None:
        np.testing.assert_array_equal(clone((5, 3)), initializer((5, 3)))


def test_get():
    expected = {
        "zeros": Zeros,
        "small": SmallNormal,
        "xavier": XavierNormal,
        "xavier_uniform": XavierUniform,
        "he": HeNormal,
    }
    assert set(INITIALIZERS) == set(expected)
    for name in INITIALIZERS:
        assert type(initializers.get(name, seed=1)) is expected[name]
    assert initializers.get("small").stddev == 0.01
    assert initializers.get("he", seed=5).seed == 5
    with pytest.raises(ValueError, match=r"one of .*'zeros'.*Received: name='glorot'"):
        initializers.get("glorot")
    with pytest.raises(ValueError, match="Received: stddev=0"):
        SmallNormal(0)


# ------------------------------------------------------- the ch2 pitfalls


def _digits():
    images, labels = mp.data.load_numpy("digits", "train")
    return (images.reshape(len(images), -1) / 16.0).astype(np.float32), labels


def _mlp(initializer, activation, hidden_units, seed=0):
    """Dense layers with `initializer` kernels and zero biases, then 10 logits."""
    keras.utils.set_random_seed(seed)
    layers = [keras.Input((64,))]
    for i, units in enumerate(hidden_units, start=1):
        kernel = initializers.get(initializer, seed=None if initializer == "zeros" else seed + i)
        layers.append(keras.layers.Dense(units, kernel_initializer=kernel, name=f"dense{i}"))
        layers.append(activations.get(activation))
    kernel = initializers.get(initializer, seed=None if initializer == "zeros" else seed)
    layers.append(keras.layers.Dense(10, kernel_initializer=kernel, name="logits"))
    return keras.Sequential(layers)


def _loss(model, x, y):
    logits = model(x)
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))


def _train_sgd(model, x, y, steps, learning_rate, batch_size=64, seed=0):
    """Plain SGD, w <- w - lr * dL/dw, on random minibatches."""

    @tf.function
    def step(xb, yb):
        with tf.GradientTape() as tape:
            loss = _loss(model, xb, yb)
        for v, g in zip(model.trainable_variables, tape.gradient(loss, model.trainable_variables)):
            v.assign_sub(learning_rate * g)

    rng = np.random.default_rng(seed)
    for _ in range(steps):
        batch = rng.integers(0, len(x), batch_size)
        step(x[batch], y[batch])


def test_zero_initialization_keeps_hidden_units_identical():
    # A 64-16-16-10 sigmoid MLP. With every weight and bias 0, each hidden unit outputs
    # sigmoid(0) = 0.5, all units of a layer get the same gradient and the same update:
    # the weights move, but every column of a hidden kernel stays equal to the first.
    x, y = _digits()
    zero, xavier = _mlp("zeros", "sigmoid", (16, 16)), _mlp("xavier", "sigmoid", (16, 16))
    for model in (zero, xavier):
        _train_sgd(model, x, y, steps=50, learning_rate=0.5)

    for name in ("dense1", "dense2"):
        w = zero.get_layer(name).kernel.numpy()
        assert np.abs(w).max() > 0  # trained ...
        assert np.abs(w - w[:, :1]).max() == 0  # ... yet all units identical, exactly
        np.testing.assert_array_equal(
            zero.get_layer(name).bias.numpy(), zero.get_layer(name).bias[0]
        )
        w = xavier.get_layer(name).kernel.numpy()
        assert np.abs(w - w[:, :1]).max() > 0.1  # the Xavier units differ

    zero_loss, xavier_loss = float(_loss(zero, x, y)), float(_loss(xavier, x, y))
    assert xavier_loss < zero_loss - 0.3  # measured: 1.87 against 2.31 (ln 10 = 2.30 is chance)
    zero_accuracy = np.mean(np.argmax(zero(x), axis=-1) == y)
    largest_class = np.bincount(y).max() / len(y)  # ~0.10 on digits
    assert zero_accuracy <= largest_class + 0.02
    assert np.mean(np.argmax(xavier(x), axis=-1) == y) > 3 * zero_accuracy


def test_small_weights_starve_deep_layers_of_gradient():
    # Ten tanh layers of 64 units plus logits. With std 0.01 each layer multiplies the
    # backpropagated signal dL/dz by about 0.01 * sqrt(64) = 0.08, so the bias gradients
    # (dL/db_l = sum over the batch of dL/dz_l) shrink by ~0.08 per layer towards the input,
    # ~0.08^10 ~ 1e-11 in total. Kernel gradients dL/dW_l = a_{l-1}^T dL/dz_l are tiny in
    # every layer: the activations a shrink by the same factor going forward.
    x, y = _digits()
    x, y = x[:256], y[:256]
    depth = 10
    small, xavier = _mlp("small", "tanh", (64,) * depth), _mlp("xavier", "tanh", (64,) * depth)

    small_layers = list(diagnostics.per_layer_gradient_norms(small, x, y).values())
    xavier_layers = list(diagnostics.per_layer_gradient_norms(xavier, x, y).values())
    assert len(small_layers) == depth + 1
    assert small_layers[0] < 1e-3 * small_layers[-1]  # measured: ~7e-11 against ~2e-2
    assert max(xavier_layers) < 10 * min(xavier_layers)  # measured: within a factor ~2

    small_norms = diagnostics.gradient_norms(small, x, y)
    bias = [small_norms[v.path] for v in small.trainable_variables if v.path.endswith("bias")]
    ratios = np.array(bias[:-1]) / np.array(bias[1:])  # layer l against layer l + 1
    assert np.all(ratios < 0.3), ratios  # measured: ~0.08 to 0.12 per layer
    kernel = [small_norms[v.path] for v in small.trainable_variables if v.path.endswith("kernel")]
    xavier_norms = diagnostics.gradient_norms(xavier, x, y)
    xavier_kernel = [n for path, n in xavier_norms.items() if path.endswith("kernel")]
    assert max(kernel) < 1e-6 * min(xavier_kernel)  # measured: ~1e-10 against ~0.3
