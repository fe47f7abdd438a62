"""Conformance cases of the GAN networks (mp.generative.gan), tiny for the gradient checks.

Each case is `(name, build_fn, input_shape, output_shape, trainable_params)`; the
parameter counts are worked out by hand in the comments (a transposed-convolution
kernel is kh*kw*out*in; batch normalisation trains gamma and beta, 2 per channel).
"""

import numpy as np

from mp.generative import gan


def _dcgan_generator():
    """A tiny DCGAN generator with batch-norm offsets moved off 0.

    At initialisation beta = 0, and a position whose transposed-convolution inputs
    are all ReLU zeros is exactly 0 after batch normalisation: on the ReLU's kink,
    where finite differences disagree with any one-sided derivative.
    """
    model = gan.dcgan_generator(2, (8, 8, 1), filters=4)
    rng = np.random.default_rng(0)
    for name in ("bn1", "bn2"):
        layer = model.get_layer(name)
        layer.beta.assign(rng.uniform(0.1, 0.5, size=layer.beta.shape))
    return model


CASES = [
    # dense1 3*4+4 = 16, out 4*2+2 = 10: 26.
    (
        "gan_mlp_generator",
        lambda: gan.mlp_generator(3, (2,), hidden_units=(4,), output_activation=None),
        (3,),
        (2,),
        26,
    ),
    # dense1 2*4+4 = 12, logit 4*1+1 = 5: 17.
    (
        "gan_mlp_discriminator",
        lambda: gan.mlp_discriminator((2,), hidden_units=(4,)),
        (2,),
        (1,),
        17,
    ),
    # project 2*2*4*2 = 32 (no bias), bn1 2*4 = 8, up1 4*4*2*4 = 128 (no bias), bn2 2*2 = 4,
    # up2 4*4*1*2+1 = 33: 205.
    (
        "gan_dcgan_generator",
        _dcgan_generator,
        (2,),
        (8, 8, 1),
        205,
    ),
    # down1 4*4*1*2+2 = 34, down2 4*4*2*4+4 = 132, logit_map 2*2*4*1+1 = 17: 183.
    (
        "gan_dcgan_discriminator",
        lambda: gan.dcgan_discriminator((8, 8, 1), filters=2),
        (8, 8, 1),
        (1,),
        183,
    ),
]
