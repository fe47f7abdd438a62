"""mp: the Machine Perception course as tested TensorFlow / Keras code.

One subpackage per chapter of the course notes:

    mp.basics      ch1  perceptron, logistic regression, losses, MLP
    mp.training    ch2  activations, initialisers, optimisers, regularisation, gradcheck
    mp.cnn         ch3  convolutional networks: operations, VGG, Inception, ResNet,
                        DenseNet, fully convolutional networks, transfer learning
    mp.rnn         ch4  recurrent cells (LSTM, GRU, ...), truncated BPTT, sequence tasks
    mp.generative  ch5  generative models: autoencoders, VAE (TFP), GAN, classifier-feature FID
    mp.divergences ch7  KL and Jensen-Shannon divergences
    mp.rl          ch6  reinforcement learning: MDPs, dynamic programming, Monte Carlo, TD
    mp.data             datasets as tf.data (digits embedded, Fashion-MNIST, MNIST)
    mp.engine           the one training loop every chapter plugs into
    mp.plotting         confusion matrices and learning curves (matplotlib, lazily)

Importing `mp` registers every layer and model of the package with Keras, so a
saved `.keras` file that uses them loads with `keras.saving.load_model` after
`import mp`.

Glossary (the names used throughout the package):
    x, images     model inputs, channels last: [batch, height, width, channels]
    y, labels     integer class labels, [batch]
    logits        unnormalised class scores, [batch, num_classes]; every loss
                  takes logits, never probabilities (ch7.1)
    num_classes   number of classes; `num_classes=None` makes a builder return
                  features instead of logits
    units         width of a dense layer; `filters`: channels of a conv layer
    global_step   the int64 counter of training steps, saved in every checkpoint
"""

import os as _os

# Quiet TensorFlow's C++ log (level 3: a CPU-only machine otherwise gets a CUDA
# start-up error line); a TF_CPP_MIN_LOG_LEVEL set by the user wins.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from mp import data  # noqa: E402
from mp import engine  # noqa: E402
from mp import basics  # noqa: E402
from mp import training  # noqa: E402
from mp import cnn  # noqa: E402
from mp import rnn  # noqa: E402
from mp import divergences  # noqa: E402
from mp import generative  # noqa: E402
from mp import rl  # noqa: E402
from mp import plotting  # noqa: E402

__version__ = "0.1.0"
__all__ = [
    "basics",
    "cnn",
    "data",
    "divergences",
    "engine",
    "generative",
    "plotting",
    "rl",
    "rnn",
    "training",
]
