"""Chapter 1, Deep Learning Basics: linear classifiers, their losses, the MLP.

    perceptron.py  the perceptron learning algorithm (mistake-driven updates)
    losses.py      hinge, binary and multi-class cross-entropy, from logits
    logistic.py    sigmoid, binary and multinomial logistic regression
    mlp.py         a plain multi-layer perceptron classifier

Course: ch1 Deep Learning Basics
"""

from mp.basics.logistic import logistic_regression, sigmoid, sigmoid_grad
from mp.basics.losses import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    categorical_cross_entropy_with_logits,
    hinge,
    sparse_categorical_cross_entropy_with_logits,
)
from mp.basics.mlp import mlp
from mp.basics.perceptron import Perceptron

__all__ = [
    "Perceptron",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "categorical_cross_entropy_with_logits",
    "hinge",
    "logistic_regression",
    "mlp",
    "sigmoid",
    "sigmoid_grad",
    "sparse_categorical_cross_entropy_with_logits",
]
