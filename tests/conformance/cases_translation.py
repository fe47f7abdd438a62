"""Conformance cases of the image-translation networks (mp.generative.translation), tiny.

Each case is `(name, build_fn, input_shape, output_shape, trainable_params)`; the
parameter counts are worked out by hand in the comments (a convolution's kernel is
kh*kw*in*out, a transposed one's kh*kw*out*in; batch and instance norms train gamma
and beta, 2 per channel).
"""

import numpy as np

from mp.generative import translation


def _generator(normalization):
    """A tiny U-Net with its norms' offsets moved off 0.

    With beta = 0 a ReLU input can sit exactly on the kink (a position whose
    convolution inputs are all zeros), where finite differences disagree with any
    one-sided derivative (as for the DCGAN generator's conformance case).
    """
    model = translation.unet_generator((8, 8, 1), filters=(2, 4), normalization=normalization)
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if hasattr(layer, "beta"):
            layer.beta.assign(rng.uniform(0.1, 0.5, size=layer.beta.shape))
    return model


# down0_conv 3*3*1*2 = 18 (no bias), norm 2*2 = 4, bottom_conv 3*3*2*4 = 72, norm 2*4 = 8,
# up0_transpose 2*2*2*4+2 = 34, up0_conv (4 channels after the skip) 3*3*4*2 = 72, norm 4,
# image 1*1*2*1+1 = 3: 215, with either norm.
UNET_PARAMS = 18 + 4 + 72 + 8 + 34 + 72 + 4 + 3

CASES = [
    ("translation_unet_generator", lambda: _generator("batch"), (8, 8, 1), (8, 8, 1), UNET_PARAMS),
    (
        "translation_unet_generator_instance_norm",
        lambda: _generator("instance"),
        (8, 8, 1),
        (8, 8, 1),
        UNET_PARAMS,
    ),
    # conv1 4*4*2*2+2 = 66, conv2 (stride 1, 4 channels) 4*4*2*4+4 = 132,
    # patch_logits 4*4*4*1+1 = 65: 263.
    (
        "translation_patch_discriminator",
        lambda: translation.patch_discriminator((8, 8, 2), filters=2),
        (8, 8, 2),
        (4, 4, 1),
        263,
    ),
    # The same with an instance norm after conv2, which then has no bias: 263 - 4 + 2*4 = 267.
    (
        "translation_patch_discriminator_instance_norm",
        lambda: translation.patch_discriminator((8, 8, 2), filters=2, normalization="instance"),
        (8, 8, 2),
        (4, 4, 1),
        267,
    ),
]
