"""The perceptron learning algorithm.

A perceptron is a linear classifier: it scores an example with
`s(x) = w . x + b` and predicts `sign(s(x))`. It learns by correcting its
mistakes, one example at a time. With labels `y` in {-1, +1}, an example is a
mistake when `y * s(x) <= 0` (a score of exactly zero counts as wrong, so the
all-zero start can learn), and the update is

    w <- w + y * x
    b <- b + y

Correct examples leave `w` and `b` untouched. There is no loss, no gradient and
no learning rate: scaling every update by a constant only rescales `w` and `b`,
which does not change any prediction.

Convergence (Novikoff, 1962). Write `z = (x, 1)` for an input augmented with a
constant 1, so the bias is one more weight. If some unit vector `u` separates
the data with margin `gamma = min_i y_i u . z_i > 0`, and `R = max_i ||z_i||`,
then the algorithm makes at most `(R / gamma)^2` updates in total, whatever the
order of the examples. On data that no hyperplane separates (XOR) some example
is misclassified in every epoch, and the weights never settle.

References:
    F. Rosenblatt, "The perceptron: a probabilistic model for information
    storage and organization in the brain", Psychological Review, 1958.
    A. B. J. Novikoff, "On convergence proofs on perceptrons", 1962.

Course: ch1 Deep Learning Basics
"""

import numpy as np


def _format_values(values, limit=10):
    """Formats a set of label values for an error message: `{0, 2}`."""
    shown = ", ".join(f"{v:g}" for v in values[:limit])
    if len(values) > limit:
        shown += ", ..."
    return "{" + shown + "}"


class Perceptron:
    """Rosenblatt's perceptron, trained by mistake-driven updates.

    Labels may be given in {-1, +1} or in {0, 1}; {0, 1} labels are mapped to
    {-1, +1} for training (0 -> -1), and `predict` answers in the convention
    that `fit` received. Labels that fit both conventions (all ones) are read
    as {-1, +1}.

    Example:
        model = Perceptron(max_epochs=50).fit(x, y)
        if model.converged:
            print(f"separated the data after {model.num_updates} updates")

    Args:
        max_epochs: maximum number of passes over the training set. Training
            stops early after the first epoch without a mistake.
        shuffle: visit the examples in a new random order each epoch.
        seed: seed of the NumPy generator used for shuffling.

    Attributes:
        weights: the weight vector `w`, shape [num_features], or None before
            training.
        bias: the bias `b` (a float).
        mistakes_per_epoch: number of mistakes (= updates) in each epoch
            since the last `fit`.
        converged: True once an epoch ended without a mistake, i.e. the
            training data are classified correctly.
        num_updates: total number of updates since the last `fit` (counting
            later `partial_fit` epochs).

    Raises:
        ValueError: if `max_epochs` is not a positive integer.
    """

    def __init__(self, max_epochs=100, shuffle=True, seed=0):
        if isinstance(max_epochs, bool) or not isinstance(max_epochs, int) or max_epochs < 1:
            raise ValueError(
                f"max_epochs must be a positive integer. Received: max_epochs={max_epochs!r}"
            )
        self.max_epochs = max_epochs
        self.shuffle = shuffle
        self.seed = seed
        self.weights = None
        self.bias = 0.0
        self.mistakes_per_epoch = []
        self.converged = False
        self.num_updates = 0
        self._zero_one_labels = False
        self._rng = np.random.default_rng(seed)

    # ------------------------------------------------------------------ checks
    def _check_x(self, x, match_weights=True):
        """Returns `x` as a float array of shape [num_examples, num_features]."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2:
            raise ValueError(
                f"x must have shape [num_examples, num_features]. Received: x.shape={x.shape}"
            )
        if match_weights and self.weights is not None and x.shape[1] != self.weights.shape[0]:
            raise ValueError(
                f"x must have {self.weights.shape[0]} features. Received: x.shape={x.shape}"
            )
        return x

    def _check_labels(self, x, y, all_ones_zero_one):
        """Returns `y` as floats in {-1, +1}, and whether it came as {0, 1}."""
        y = np.asarray(y)
        if y.shape != (x.shape[0],):
            raise ValueError(
                f"y must have shape [num_examples] = ({x.shape[0]},). Received: y.shape={y.shape}"
            )
        values = np.unique(y)
        found = set(values.tolist())
        if found <= {1}:  # fits both conventions
            zero_one = all_ones_zero_one
        elif found <= {-1, 1}:
            zero_one = False
        elif found <= {0, 1}:
            zero_one = True
        else:
            raise ValueError(
                "labels must be in {-1, +1} or {0, 1}. Received: " + _format_values(values)
            )
        return np.where(y == 1, 1.0, -1.0), zero_one

    # ---------------------------------------------------------------- training
    def fit(self, x, y):
        """Trains from all-zero weights until an epoch has no mistake.

        Args:
            x: inputs, shape [num_examples, num_features].
            y: labels, shape [num_examples], in {-1, +1} or {0, 1}.

        Returns:
            self, with `weights`, `bias`, `mistakes_per_epoch`, `converged` and
            `num_updates` set.

        Raises:
            ValueError: on inputs that are not 2-D, labels of the wrong shape,
                or labels outside {-1, +1} and {0, 1}.
        """
        x = self._check_x(x, match_weights=False)  # fit starts afresh
        y, self._zero_one_labels = self._check_labels(x, y, all_ones_zero_one=False)
        self.weights = np.zeros(x.shape[1])
        self.bias = 0.0
        self.mistakes_per_epoch = []
        self.converged = False
        self.num_updates = 0
        self._rng = np.random.default_rng(self.seed)
        for _ in range(self.max_epochs):
            if self._epoch(x, y) == 0:
                self.converged = True
                break
        return self

    def partial_fit(self, x, y):
        """Runs one epoch of updates, starting from the current weights.

        Starts from zero weights if the model has not been trained yet. Useful
        to watch the algorithm epoch by epoch, or to check that an example
        which is already classified correctly causes no update.

        Args:
            x: inputs, shape [num_examples, num_features].
            y: labels, shape [num_examples], in {-1, +1} or {0, 1}.

        Returns:
            The number of mistakes (= updates) made in this epoch.

        Raises:
            ValueError: as for `fit`.
        """
        x = self._check_x(x)
        # Labels that are all ones keep the convention of earlier calls.
        y, self._zero_one_labels = self._check_labels(x, y, self._zero_one_labels)
        if self.weights is None:
            self.weights = np.zeros(x.shape[1])
        mistakes = self._epoch(x, y)
        self.converged = mistakes == 0
        return mistakes

    def _epoch(self, x, y):
        """One pass over the data; returns the number of mistakes."""
        order = self._rng.permutation(len(x)) if self.shuffle else range(len(x))
        mistakes = 0
        for i in order:
            if y[i] * (x[i] @ self.weights + self.bias) <= 0:  # a mistake
                self.weights = self.weights + y[i] * x[i]
                self.bias = self.bias + y[i]
                mistakes += 1
        self.mistakes_per_epoch.append(mistakes)
        self.num_updates += mistakes
        return mistakes

    # --------------------------------------------------------------- inference
    def decision_function(self, x):
        """Scores `w . x + b`, shape [num_examples]; the sign is the class."""
        if self.weights is None:
            raise RuntimeError("the perceptron is not trained yet: call fit(x, y) first")
        x = self._check_x(x)
        return x @ self.weights + self.bias

    def predict(self, x):
        """Predicted labels, in the convention ({-1, +1} or {0, 1}) given to `fit`.

        A score of exactly zero predicts the negative class (-1, or 0).
        """
        positive = self.decision_function(x) > 0
        if self._zero_one_labels:
            return positive.astype(np.int64)
        return np.where(positive, 1, -1)
