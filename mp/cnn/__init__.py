"""Chapter 3: convolutional networks.

Course: ch3 Convolutional Neural Networks.
"""

from mp.cnn.classic import classic_cnn
from mp.cnn.registry import get_model, model_names, register

__all__ = ["classic_cnn", "get_model", "model_names", "register"]
