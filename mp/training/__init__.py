"""Chapter 2: training neural networks.

    activations.py     sigmoid, tanh, softmax, ReLU, leaky ReLU, PReLU, with derivatives
    initializers.py    zeros (the pitfall), small normal, Xavier/Glorot, He
    optimizers.py      SGD, momentum, Nesterov, Adagrad, RMSProp, Adam from the update rules
    regularization.py  inverted dropout, batch normalisation, noise, L1/L2 penalties,
                       augmentation layers (early stopping: mp.engine.Trainer)
    gradcheck.py       centred finite differences against tf.GradientTape, in float64
    diagnostics.py     dead-ReLU fraction, per-layer gradient norms
    network.py         an MLP with every technique above as a keyword argument

Course: ch2 Training Neural Networks.
"""

from mp.training import (
    activations,
    diagnostics,
    gradcheck,
    initializers,
    network,
    optimizers,
    regularization,
)
from mp.training.network import mlp

__all__ = [
    "activations",
    "diagnostics",
    "gradcheck",
    "initializers",
    "mlp",
    "network",
    "optimizers",
    "regularization",
]
