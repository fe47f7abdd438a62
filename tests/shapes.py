"""Building big models for their shapes only, without the memory of their weights."""

import keras


def shapes_only():
    """A scope in which Keras variables get a shape but never values.

    ImageNet-sized models hold 0.1-0.5 GB of weights, and TensorFlow's CPU allocator keeps
    the memory it once held for the rest of the process: one VGG16 built for its parameter
    count raised a pytest process by 1.4 GB for good. Counting parameters and reading
    symbolic output shapes need no values, so such tests build inside this scope:

        with shapes_only():
            model = vgg16((224, 224, 3), 1000)
        assert model.count_params() == 138_357_544

    A model built here cannot be called on data.
    """
    return keras.StatelessScope(initialize_variables=False)
