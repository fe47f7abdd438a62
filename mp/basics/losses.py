"""Classification losses, written from their formulas with TensorFlow ops.

Every function returns one loss per example (`reduction="none"`), or their
sum or mean. Notation: `y` are labels, `s` scores, `z` logits (unnormalised
log-probabilities), `p` probabilities.

Hinge loss, labels `y` in {-1, +1} and a real score `s`:

    hinge(y, s) = max(0, 1 - y * s),   d/ds = -y if y * s < 1 else 0

It is zero once an example is on the right side with margin at least 1.

Binary cross-entropy, label `y` in [0, 1] and probability `p = sigmoid(z)`:

    bce(y, p) = -y * log(p) - (1 - y) * log(1 - p)

Computed from `p` it breaks down when `p` rounds to 0 or 1: `sigmoid(40.)` is
exactly 1 in float32, so `log(1 - p)` is `-inf`. Substituting `p = sigmoid(z)`
and simplifying gives a form that is exact for any logit:

    bce(y, z) = max(z, 0) - z * y + log(1 + exp(-|z|)),   d/dz = sigmoid(z) - y

(`exp(-|z|)` is at most 1, so nothing overflows.)

Multi-class cross-entropy over `K` classes, target distribution `y` (one-hot
or soft) and `p = softmax(z)`:

    ce(y, z) = -sum_k y_k * log(p_k) = -sum_k y_k * (z_k - logsumexp(z))
    logsumexp(z) = m + log(sum_k exp(z_k - m)),   m = max_k z_k
    d/dz = softmax(z) * sum_k y_k - y    (= softmax(z) - y for a distribution)

Subtracting the largest logit `m` keeps every `exp` at most 1 without changing
the value. For an integer label `c` the loss is `logsumexp(z) - z_c`.

This is why the models of this package end in a layer without activation:
the losses take logits, and the softmax / sigmoid happens inside them, in the
stable form.

Course: ch1 Deep Learning Basics (hinge, binary and multi-class cross-entropy);
ch7.1 TensorFlow tips (why the losses take logits)
"""

import tensorflow as tf

_REDUCTIONS = ("none", "sum", "mean")


def _as_float(values, dtype=None):
    """Converts to a floating tensor (float32 unless already floating or `dtype`)."""
    values = tf.convert_to_tensor(values)
    if dtype is not None:
        return tf.cast(values, dtype)
    if not values.dtype.is_floating:
        values = tf.cast(values, tf.float32)
    return values


def _reduce(losses, reduction):
    """Applies `reduction` ("none", "sum" or "mean") to per-example losses."""
    if reduction == "none":
        return losses
    if reduction == "sum":
        return tf.reduce_sum(losses)
    return tf.reduce_mean(losses)


def _check_reduction(reduction):
    if reduction not in _REDUCTIONS:
        raise ValueError(
            f"reduction must be one of {_REDUCTIONS}. Received: reduction={reduction!r}"
        )


def hinge(labels, scores, reduction="none"):
    """Hinge loss `max(0, 1 - y * s)`.

    Args:
        labels: labels in {-1, +1}, any shape.
        scores: real-valued scores, same shape as `labels`.
        reduction: "none" (per-example losses), "sum" or "mean".

    Returns:
        The losses, shaped like `scores` (or a scalar after a reduction).

    Raises:
        ValueError: on an unknown `reduction`.
    """
    _check_reduction(reduction)
    scores = _as_float(scores)
    labels = _as_float(labels, scores.dtype)
    # relu has derivative 0 at the hinge point y * s = 1.
    return _reduce(tf.nn.relu(1.0 - labels * scores), reduction)


def binary_cross_entropy_with_logits(labels, logits, reduction="none"):
    """Binary cross-entropy from logits, in the stable form.

    `max(z, 0) - z * y + log(1 + exp(-|z|))`, equal to
    `-y log sigmoid(z) - (1 - y) log(1 - sigmoid(z))` but finite for any `z`.

    Args:
        labels: targets in [0, 1] (usually {0, 1}), any shape.
        logits: real-valued logits `z`, same shape as `labels`.
        reduction: "none" (per-example losses), "sum" or "mean".

    Returns:
        The losses, shaped like `logits` (or a scalar after a reduction).

    Raises:
        ValueError: on an unknown `reduction`.
    """
    _check_reduction(reduction)
    logits = _as_float(logits)
    labels = _as_float(labels, logits.dtype)
    # max(z, 0) and -|z| written with one shared condition so that the
    # gradient at z = 0 is the true one, sigmoid(0) - y = 0.5 - y.
    positive = logits >= 0
    relu_logits = tf.where(positive, logits, tf.zeros_like(logits))
    neg_abs_logits = tf.where(positive, -logits, logits)
    losses = relu_logits - logits * labels + tf.math.log1p(tf.exp(neg_abs_logits))
    return _reduce(losses, reduction)


def binary_cross_entropy(labels, probabilities, epsilon=1e-7, reduction="none"):
    """Binary cross-entropy from probabilities: the textbook form.

    `-y log p - (1 - y) log(1 - p)` with `p` clipped to `[epsilon, 1 - epsilon]`.
    The clipping keeps the value finite, but it is wrong for confident
    mistakes: the loss is capped at about `-log(epsilon)` (16.1 for 1e-7)
    and its gradient is zero there. Prefer `binary_cross_entropy_with_logits`.

    Args:
        labels: targets in [0, 1], any shape.
        probabilities: predicted probabilities `p` of the positive class, same
            shape as `labels`.
        epsilon: clipping constant, in [0, 0.5). 0 disables clipping (and gives
            inf or nan at p = 0 or 1).
        reduction: "none" (per-example losses), "sum" or "mean".

    Returns:
        The losses, shaped like `probabilities` (or a scalar after a reduction).

    Raises:
        ValueError: on an unknown `reduction` or `epsilon` outside [0, 0.5).
    """
    _check_reduction(reduction)
    if not 0.0 <= epsilon < 0.5:
        raise ValueError(f"epsilon must be in [0, 0.5). Received: epsilon={epsilon}")
    probabilities = _as_float(probabilities)
    labels = _as_float(labels, probabilities.dtype)
    p = tf.clip_by_value(probabilities, epsilon, 1.0 - epsilon)
    losses = -labels * tf.math.log(p) - (1.0 - labels) * tf.math.log(1.0 - p)
    return _reduce(losses, reduction)


def _log_softmax(logits):
    """`z - logsumexp(z)` over the last axis, with the largest logit subtracted."""
    # The shift m is a constant for the maths (it cancels), so no gradient
    # needs to flow through it.
    m = tf.stop_gradient(tf.reduce_max(logits, axis=-1, keepdims=True))
    shifted = logits - m
    return shifted - tf.math.log(tf.reduce_sum(tf.exp(shifted), axis=-1, keepdims=True))


def sparse_categorical_cross_entropy_with_logits(labels, logits, reduction="none"):
    """Multi-class cross-entropy from logits and integer labels.

    `logsumexp(z) - z[label]`, computed with the largest logit subtracted.

    Args:
        labels: integer class indices in [0, num_classes), shape [...].
        logits: logits, shape [..., num_classes].
        reduction: "none" (per-example losses), "sum" or "mean".

    Returns:
        The losses, shape [...] (or a scalar after a reduction).

    Raises:
        ValueError: on an unknown `reduction` or labels whose shape is not
            that of `logits` without its last axis.
    """
    _check_reduction(reduction)
    logits = _as_float(logits)
    labels = tf.cast(labels, tf.int32)
    if labels.shape.rank is None or labels.shape.rank + 1 != logits.shape.rank:
        raise ValueError(
            "labels must have the shape of logits without the class axis. "
            f"Received: labels.shape={labels.shape}, logits.shape={logits.shape}"
        )
    # Pick log p[label] for every example: batch_dims gathers along the last axis.
    log_p = tf.gather(_log_softmax(logits), labels, batch_dims=labels.shape.rank)
    return _reduce(-log_p, reduction)


def categorical_cross_entropy_with_logits(labels, logits, reduction="none"):
    """Multi-class cross-entropy from logits and one-hot (or soft) labels.

    `-sum_k y_k * (z_k - logsumexp(z))`, computed with the largest logit
    subtracted.

    Args:
        labels: target distributions (one-hot rows, or probabilities summing
            to 1), shape [..., num_classes].
        logits: logits, same shape as `labels`.
        reduction: "none" (per-example losses), "sum" or "mean".

    Returns:
        The losses, shape [...] (or a scalar after a reduction).

    Raises:
        ValueError: on an unknown `reduction`.
    """
    _check_reduction(reduction)
    logits = _as_float(logits)
    labels = _as_float(labels, logits.dtype)
    losses = -tf.reduce_sum(labels * _log_softmax(logits), axis=-1)
    return _reduce(losses, reduction)
