"""Tests of mp.basics.perceptron: convergence, Novikoff's bound, XOR, the update rule."""

import numpy as np
import pytest

from mp.basics import Perceptron

# A known separating hyperplane u . x + u0 = 0 in 2-D.
U = np.array([0.8, -0.6])
U0 = 0.1


def separable_data(num_examples=200, min_distance=0.05, seed=0):
    """Points in [-1, 1]^2 at least `min_distance` away from the hyperplane (U, U0)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.0, 1.0, size=(4 * num_examples, 2))
    scores = x @ U + U0
    keep = np.abs(scores) >= min_distance * np.linalg.norm(U)
    x = x[keep][:num_examples]
    y = np.where(x @ U + U0 > 0, 1, -1)
    return x, y


def xor_data():
    x = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = np.array([0, 1, 1, 0])
    return x, y


def test_converges_on_separable_data():
    x, y = separable_data()
    model = Perceptron(max_epochs=1000).fit(x, y)
    assert model.converged
    assert model.mistakes_per_epoch[-1] == 0
    assert all(m > 0 for m in model.mistakes_per_epoch[:-1])
    assert model.num_updates == sum(model.mistakes_per_epoch) > 0
    np.testing.assert_array_equal(model.predict(x), y)
    # The sign of the score is the prediction.
    np.testing.assert_array_equal(np.sign(model.decision_function(x)), y)


@pytest.mark.parametrize("shuffle,seed", [(False, 0), (True, 0), (True, 1), (True, 2)])
def test_number_of_updates_respects_novikoff_bound(shuffle, seed):
    x, y = separable_data(min_distance=0.05, seed=seed)
    # Augment every input with a constant 1, so the bias is one more weight.
    z = np.concatenate([x, np.ones((len(x), 1))], axis=1)
    u = np.append(U, U0)
    u = u / np.linalg.norm(u)  # a unit vector that separates the data
    gamma = np.min(y * (z @ u))  # its margin on the augmented data
    radius = np.max(np.linalg.norm(z, axis=1))
    assert gamma > 0
    model = Perceptron(max_epochs=10_000, shuffle=shuffle, seed=seed).fit(x, y)
    assert model.converged
    k = model.num_updates
    assert k <= (radius / gamma) ** 2
    # The two halves of the proof, for the final augmented weights w_k:
    # each update adds at least gamma along u, and at most R^2 to ||w||^2.
    w = np.append(model.weights, model.bias)
    assert w @ u >= k * gamma
    assert w @ w <= k * radius**2


def test_does_not_converge_on_xor():
    x, y = xor_data()
    model = Perceptron(max_epochs=50).fit(x, y)
    assert not model.converged
    assert len(model.mistakes_per_epoch) == 50
    assert all(m > 0 for m in model.mistakes_per_epoch)
    # No line separates XOR, so some training example stays misclassified.
    assert np.any(model.predict(x) != y)


def test_no_update_on_correctly_classified_data():
    x, y = separable_data()
    model = Perceptron().fit(x, y)
    weights, bias, updates = model.weights.copy(), model.bias, model.num_updates
    # Every example is now correct: a further epoch changes nothing.
    assert model.partial_fit(x, y) == 0
    np.testing.assert_array_equal(model.weights, weights)
    assert model.bias == bias
    assert model.num_updates == updates


def test_update_on_a_mistake_adds_y_times_x():
    x, y = separable_data()
    model = Perceptron().fit(x, y)
    weights, bias = model.weights.copy(), model.bias
    # Flip one label: that example is now a mistake, so w += y x and b += y.
    x_wrong, y_wrong = x[:1], -y[:1]
    assert model.partial_fit(x_wrong, y_wrong) == 1
    np.testing.assert_allclose(model.weights, weights + y_wrong[0] * x_wrong[0])
    assert model.bias == bias + y_wrong[0]


def test_first_update_from_zero_weights():
    # Weights start at zero, so the first example scores 0, which counts as a
    # mistake: after one epoch on one example, w = y x and b = y.
    model = Perceptron()
    x = np.array([[2.0, -3.0]])
    assert model.partial_fit(x, [-1]) == 1
    np.testing.assert_array_equal(model.weights, [-2.0, 3.0])
    assert model.bias == -1.0
    # A correct example changes nothing, however close to the boundary it is:
    # score 3 * 0.5 - 1 = 0.5 > 0 with label +1 (a margin rule would update).
    assert model.partial_fit(np.array([[0.0, 0.5]]), [1]) == 0
    np.testing.assert_array_equal(model.weights, [-2.0, 3.0])
    assert model.bias == -1.0


def test_bias_parity_matches_number_of_updates():
    # Each update adds +1 or -1 to the bias, so bias and update count have the
    # same parity; an implementation that scales updates breaks this.
    x, y = separable_data(seed=3)
    model = Perceptron(seed=3).fit(x, y)
    assert float(model.bias).is_integer()
    assert (int(model.bias) - model.num_updates) % 2 == 0


def test_zero_one_labels_same_weights_and_predictions_in_zero_one():
    x, y = separable_data()
    signed = Perceptron(seed=4).fit(x, y)
    zero_one = Perceptron(seed=4).fit(x, (y + 1) // 2)
    np.testing.assert_array_equal(zero_one.weights, signed.weights)
    assert zero_one.bias == signed.bias
    np.testing.assert_array_equal(zero_one.predict(x), (y + 1) // 2)
    assert set(np.unique(signed.predict(x))) == {-1, 1}


def test_same_seed_same_result_and_no_shuffle_is_order_dependent():
    x, y = separable_data()
    a = Perceptron(seed=7).fit(x, y)
    b = Perceptron(seed=7).fit(x, y)
    np.testing.assert_array_equal(a.weights, b.weights)
    assert a.mistakes_per_epoch == b.mistakes_per_epoch


def test_bad_labels():
    x = np.zeros((3, 2))
    with pytest.raises(
        ValueError, match=r"labels must be in \{-1, \+1\} or \{0, 1\}. Received: \{0, 2\}"
    ):
        Perceptron().fit(x, [0, 2, 2])
    with pytest.raises(ValueError, match=r"Received: \{-1, 0, 1\}"):
        Perceptron().fit(x, [-1, 0, 1])


def test_bad_shapes_and_arguments():
    with pytest.raises(ValueError, match=r"x must have shape \[num_examples, num_features\]"):
        Perceptron().fit(np.zeros(3), [1, 1, -1])
    with pytest.raises(ValueError, match=r"y must have shape .*Received: y.shape=\(2,\)"):
        Perceptron().fit(np.zeros((3, 2)), [1, -1])
    with pytest.raises(
        ValueError, match="max_epochs must be a positive integer. Received: max_epochs=0"
    ):
        Perceptron(max_epochs=0)
    model = Perceptron().fit(*separable_data())
    with pytest.raises(ValueError, match=r"x must have 2 features. Received: x.shape=\(4, 3\)"):
        model.predict(np.zeros((4, 3)))
    with pytest.raises(RuntimeError, match="not trained"):
        Perceptron().predict(np.zeros((1, 2)))
