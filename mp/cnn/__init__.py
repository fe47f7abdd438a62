"""Chapter 3: convolutional networks.

    conv.py        correlation vs convolution, dilation, the backward pass, receptive fields
    unpooling.py   max pooling with argmax, max / bed-of-nails / nearest-neighbour unpooling
    classic.py     the classic conv-pool-conv-pool-dense network
    vgg.py         VGG-11/16 and a small VGG (Simonyan & Zisserman 2014)
    inception.py   the Inception module and GoogLeNet with auxiliary heads (Szegedy et al. 2014)
    resnet.py      basic and bottleneck residual blocks, ResNet-18/34/50, CIFAR-style ResNets
    densenet.py    dense blocks, transitions, DenseNet-121 and DenseNet-BC (Huang et al. 2016)
    fcn.py         a fully convolutional encoder-decoder for per-pixel classification
    transfer.py    Keras' VGG16 / ResNet50 (ImageNet weights) or our models, frozen then fine-tuned
    registry.py    architectures by name: `get_model("vgg16", (224, 224, 3), 1000)`

Importing this package registers every architecture, so `--model=` can pick it.

Course: ch3 Convolutional Neural Networks.
"""

from mp.cnn import conv, transfer, unpooling
from mp.cnn.batch_norm import FusedBatchNormalization
from mp.cnn.classic import classic_cnn
from mp.cnn.densenet import densenet
from mp.cnn.fcn import SegmentationTask, fcn, mean_iou, pixel_accuracy
from mp.cnn.inception import InceptionModule, InceptionTask, googlenet
from mp.cnn.registry import get_model, model_names, register
from mp.cnn.resnet import resnet
from mp.cnn.vgg import vgg

__all__ = [
    "FusedBatchNormalization",
    "InceptionModule",
    "InceptionTask",
    "SegmentationTask",
    "classic_cnn",
    "conv",
    "densenet",
    "fcn",
    "get_model",
    "googlenet",
    "mean_iou",
    "model_names",
    "pixel_accuracy",
    "register",
    "resnet",
    "transfer",
    "unpooling",
    "vgg",
]
