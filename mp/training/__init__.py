"""Chapter 2: training neural networks.

    activations.py     sigmoid, tanh, softmax, ReLU, leaky ReLU, PReLU, with derivatives
    initializers.py    zeros (the pitfall), small normal, Xavier/Glorot, He
    optimizers.py      SGD, momentum, Nesterov, Adagrad, RMSProp, Adam from the update rules
    regularization.py  inverted dropout, batch normalisation, noise, L1/L2 penalties,
                       augmentation layers (early stopping: mp.engine.Trainer)
    gradcheck.py       centred finite differences against tf.GradientTape, in float64
    diagnostics.py     dead-ReLU fraction, per-layer gradient norms
    network.py         configurable_mlp: an MLP with every technique above as a keyword
                       argument (mp.basics.mlp is chapter 1's plain one)
    engine (shared)    learning-rate schedules, gradient clipping, early stopping: see below

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
from mp.training.network import configurable_mlp

# Chapter-2 techniques that every chapter's training uses live in the engine:
# learning-rate schedules (mp.engine.schedules: constant, cosine with warm-up,
# exponential, step), gradient clipping by global norm (`clip_norm` of
# mp.engine.SingleModelTask) and early stopping (`early_stopping_patience` of
# mp.engine.Trainer). They are named here so that the chapter finds them.
from mp.engine import make_schedule

__all__ = [
    "activations",
    "diagnostics",
    "gradcheck",
    "initializers",
    "configurable_mlp",
    "make_schedule",
    "network",
    "optimizers",
    "regularization",
]
